//! Vapi server messages (`{"message": {type, call, …}}`): the signature check and the
//! normalization of `status-update` and `end-of-call-report` into a [`CallEvent`]
//! (CONTRACT §5, docs/PROVIDERS.md §2). Every other message type is answered without storing.
//!
//! Vapi authenticates with a credential the user attaches to the server URL: the secret itself
//! in `X-Vapi-Secret` or `Authorization: Bearer …`, or Vapi's HMAC credential — `x-signature` =
//! hex HMAC-SHA256(secret, `{x-timestamp}.{body}`), the timestamp in Unix ms or s, within 5 min.
//!
//! Only `message.type` and `message.call.id` are required; every other field is lenient.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::lenient::{self, owned_non_blank as owned, text};
use super::signature::{self, HmacSha256, MacVerifier, SHA256_LEN};
use super::Stamp;
use super::{
    BodyVerifier, Ignored, Parsed, PayloadError, ProviderEvent, SignatureError, Unsigned,
    VerifyRequest, WebhookProvider,
};
use crate::event::{CallEvent, Cost, CostUnit, Ending, LeadType, Provider};
use crate::lifecycle::LifecycleStatus;
use crate::phone::PhoneNumber;

/// How old an HMAC-signed `x-timestamp` may be (CONTRACT §5).
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// The header carrying the shared secret (Vapi's legacy inline secret).
pub const SECRET_HEADER: &str = "X-Vapi-Secret";
/// The HMAC credential's signature header.
pub const SIGNATURE_HEADER: &str = "x-signature";
/// The HMAC credential's timestamp header.
pub const TIMESTAMP_HEADER: &str = "x-timestamp";

/// Vapi's webhooks: a shared secret or an HMAC signature, JSON server messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vapi;

impl WebhookProvider for Vapi {
    fn provider(&self) -> Provider {
        Provider::Vapi
    }

    fn verifier(
        &self,
        request: &VerifyRequest<'_>,
    ) -> Result<Box<dyn BodyVerifier>, SignatureError> {
        if request.secrets.is_empty() {
            return Err(SignatureError::NotConfigured(Provider::Vapi));
        }
        let headers = request.headers;
        if let Some(signature) = headers.header(SIGNATURE_HEADER) {
            return hmac_verifier(request, signature.trim());
        }
        let shared = headers.header(SECRET_HEADER);
        let authorization = headers.header("authorization");
        let bearer = authorization.and_then(bearer_token);
        match (shared, authorization, bearer) {
            (None, None, _) => return Err(SignatureError::Missing(SECRET_HEADER)),
            (None, Some(_), None) => {
                return Err(SignatureError::Malformed {
                    header: "Authorization",
                    problem: "it is not `Bearer <secret>`",
                })
            }
            _ => {}
        }
        // Each presented credential is compared with every secret (no early exit).
        let matched = [shared, bearer]
            .into_iter()
            .flatten()
            .fold(false, |matched, presented| {
                signature::secret_matches(presented.trim().as_bytes(), request.secrets) | matched
            });
        if matched {
            Ok(Box::new(Unsigned))
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    fn parse(&self, body: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, PayloadError> {
        let envelope: Envelope = lenient::json_object(body)?;
        let message = envelope.message.unwrap_or_default();
        let kind =
            owned(message.kind.as_deref()).ok_or(PayloadError::MissingField("message.type"))?;
        let call_id = message
            .call
            .as_ref()
            .and_then(|call| owned(call.id.as_deref()));
        let (event_type, status) = match kind.as_str() {
            "status-update" => {
                let status = owned(message.status.as_deref())
                    .ok_or(PayloadError::MissingField("message.status"))?;
                let normalized = status_update(&status);
                (status, normalized)
            }
            "end-of-call-report" => (kind, end_of_call(message.ended_reason.as_deref())),
            _ => {
                return Ok(Parsed::Ignored(Ignored {
                    message_type: kind,
                    execution_id: call_id,
                }))
            }
        };
        let execution_id = call_id.ok_or(PayloadError::MissingField("message.call.id"))?;
        let event = message.normalize(execution_id, status, &event_type, received_at);
        Ok(Parsed::Event(Box::new(ProviderEvent {
            event_type,
            event,
            payload: super::json_text(body)?,
        })))
    }
}

/// Starts an HMAC check: the timestamp is settled now, the signature once the body is read.
fn hmac_verifier(
    request: &VerifyRequest<'_>,
    signature: &str,
) -> Result<Box<dyn BodyVerifier>, SignatureError> {
    let timestamp = request
        .headers
        .header(TIMESTAMP_HEADER)
        .map(str::trim)
        .ok_or(SignatureError::Missing(TIMESTAMP_HEADER))?;
    let signed_at = signature::parse_unix(timestamp).ok_or(SignatureError::Malformed {
        header: TIMESTAMP_HEADER,
        problem: "it is not a Unix time in milliseconds or seconds",
    })?;
    // Milliseconds or seconds, told apart by size (10^11 ms is 1973, 10^11 s the year 5138).
    let signed_at_millis = if signed_at >= 100_000_000_000 {
        signed_at
    } else {
        signed_at.saturating_mul(1000)
    };
    signature::check_window(signed_at_millis, request.now, TOLERANCE_SECONDS)?;
    let presented =
        signature::decode_hex(signature, SHA256_LEN).ok_or(SignatureError::Malformed {
            header: SIGNATURE_HEADER,
            problem: "it is not 64 hex digits (an HMAC-SHA256)",
        })?;
    let prefix = format!("{timestamp}.");
    Ok(Box::new(MacVerifier::<HmacSha256>::new(
        request.secrets,
        prefix.as_bytes(),
        Vec::new(),
        vec![presented],
    )))
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `status-update`: `scheduled|queued|ringing|in-progress` as they are, `ended` →
/// `call-disconnected`, `forwarding` timeline only; a status Vapi adds later reads as in
/// Bolna's vocabulary when it is a word of it, else timeline only.
fn status_update(status: &str) -> LifecycleStatus {
    match status {
        "ended" => LifecycleStatus::CallDisconnected,
        other => LifecycleStatus::parse(other),
    }
}

/// `end-of-call-report`: `completed`, unless `endedReason` says the call never connected.
fn end_of_call(ended_reason: Option<&str>) -> LifecycleStatus {
    let reason = ended_reason.map(str::trim).unwrap_or_default();
    match reason {
        "customer-did-not-answer" => LifecycleStatus::NoAnswer,
        "customer-busy" => LifecycleStatus::Busy,
        r if r.contains("error") || r.contains("failed") => LifecycleStatus::Failed,
        _ => LifecycleStatus::Completed,
    }
}

/// How the call ended by `endedReason` (on `status-update` `ended` and `end-of-call-report`):
/// `customer-did-not-answer`, `customer-busy`, `voicemail`, `assistant-forwarded-call`
/// (transferred), and a reason containing `error` or `failed` (as for the lifecycle status);
/// any other reason is a normal ending (`None`).
fn ending(ended_reason: Option<&str>) -> Option<Ending> {
    match ended_reason.map(str::trim)? {
        "customer-did-not-answer" => Some(Ending::NoAnswer),
        "customer-busy" => Some(Ending::Busy),
        "voicemail" => Some(Ending::Voicemail),
        "assistant-forwarded-call" => Some(Ending::Transferred),
        r if r.contains("error") || r.contains("failed") => Some(Ending::Failed),
        _ => None,
    }
}

/// The body: `{"message": {…}}`.
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "lenient::object")]
    message: Option<Message>,
}

/// A server message; only the fields calltrail reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    #[serde(rename = "type", default, deserialize_with = "lenient::string")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    ended_reason: Option<String>,
    /// The call's cost in USD (`end-of-call-report`).
    #[serde(default, deserialize_with = "lenient::number")]
    cost: Option<f64>,
    /// Unix ms (an older client says so; seconds and RFC 3339 text are read too).
    #[serde(default, deserialize_with = "lenient::unix_or_text_stamp")]
    timestamp: Stamp,
    #[serde(default, deserialize_with = "lenient::timestamp")]
    started_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::timestamp")]
    ended_at: Option<DateTime<Utc>>,
    /// Legacy, not in the current schema: a fallback only.
    #[serde(default, deserialize_with = "lenient::number")]
    duration_seconds: Option<f64>,
    /// Legacy fallback of `artifact.transcript`.
    #[serde(default, deserialize_with = "lenient::string")]
    transcript: Option<String>,
    /// Legacy fallback of `artifact.recordingUrl`.
    #[serde(default, deserialize_with = "lenient::string")]
    recording_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    artifact: Option<Artifact>,
    #[serde(default, deserialize_with = "lenient::object")]
    call: Option<Call>,
    #[serde(default, deserialize_with = "lenient::object")]
    customer: Option<Customer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Artifact {
    #[serde(default, deserialize_with = "lenient::string")]
    transcript: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    recording_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    recording: Option<Recording>,
}

#[derive(Debug, Default, Deserialize)]
struct Recording {
    #[serde(default, deserialize_with = "lenient::object")]
    mono: Option<Mono>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mono {
    #[serde(default, deserialize_with = "lenient::string")]
    combined_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Call {
    #[serde(default, deserialize_with = "lenient::string")]
    id: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "lenient::string")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    assistant_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::timestamp_stamp")]
    created_at: Stamp,
    #[serde(default, deserialize_with = "lenient::object")]
    customer: Option<Customer>,
    #[serde(default, deserialize_with = "lenient::object")]
    metadata: Option<lenient::CampaignKey>,
    /// The call's cost in USD (fallback of the report's own `cost`).
    #[serde(default, deserialize_with = "lenient::number")]
    cost: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
struct Customer {
    #[serde(default, deserialize_with = "lenient::string")]
    number: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
}

impl Message {
    /// The normalized event. Duration, transcript and recording come from the
    /// `end-of-call-report` only (a status update carries none of them in Vapi's schema).
    fn normalize(
        &self,
        execution_id: String,
        status: LifecycleStatus,
        event_type: &str,
        received_at: DateTime<Utc>,
    ) -> CallEvent {
        let report = event_type == "end-of-call-report";
        let call = self.call.as_ref();
        let customers = [
            call.and_then(|c| c.customer.as_ref()),
            self.customer.as_ref(),
        ];
        let artifact = self.artifact.as_ref();
        let mut event = CallEvent {
            provider: Provider::Vapi,
            execution_id,
            status,
            occurred_at: received_at,
            call_created_at: None,
            agent_id: owned(call.and_then(|c| c.assistant_id.as_deref())),
            phone_number: customers
                .iter()
                .flatten()
                .filter_map(|c| c.number.as_deref())
                .find_map(|n| PhoneNumber::parse(n).ok()),
            lead_type: call.and_then(|c| match c.kind.as_deref().map(str::trim) {
                Some("inboundPhoneCall") => Some(LeadType::Inbound),
                Some("outboundPhoneCall") => Some(LeadType::Outbound),
                _ => None,
            }),
            conversation_seconds: report.then(|| self.duration()).flatten(),
            hangup_by: None,
            hangup_reason: owned(self.ended_reason.as_deref()),
            hangup_provider_code: None,
            recording_url: report
                .then(|| {
                    let mono = artifact
                        .and_then(|a| a.recording.as_ref())
                        .and_then(|r| r.mono.as_ref());
                    [
                        artifact.and_then(|a| a.recording_url.as_deref()),
                        mono.and_then(|m| m.combined_url.as_deref()),
                        self.recording_url.as_deref(),
                    ]
                    .into_iter()
                    .find_map(owned)
                })
                .flatten(),
            transcript: report
                .then(|| {
                    [
                        artifact.and_then(|a| a.transcript.as_deref()),
                        self.transcript.as_deref(),
                    ]
                    .into_iter()
                    .find_map(text)
                })
                .flatten(),
            contact_name: customers
                .iter()
                .flatten()
                .find_map(|c| owned(c.name.as_deref())),
            contact_company: None,
            contact_email: None,
            batch_id: lenient::CampaignKey::batch_id(call.and_then(|c| c.metadata.as_ref())),
            anomalies: Vec::new(),
            ending: ending(self.ended_reason.as_deref()),
            cost: report
                .then(|| Cost::of(self.cost.or(call.and_then(|c| c.cost)), CostUnit::Usd))
                .flatten(),
        };
        if let Some(at) = self.timestamp.noted(&mut event) {
            event.occurred_at = at;
        }
        event.call_created_at = call.and_then(|c| c.created_at.noted(&mut event));
        event
    }

    /// `endedAt − startedAt` in seconds, else the legacy `durationSeconds`.
    fn duration(&self) -> Option<f64> {
        let measured = match (self.started_at, self.ended_at) {
            (Some(start), Some(end)) => (end - start).to_std().ok().map(|d| d.as_secs_f64()),
            _ => None,
        };
        measured.or(self.duration_seconds.filter(|s| *s >= 0.0))
    }
}
