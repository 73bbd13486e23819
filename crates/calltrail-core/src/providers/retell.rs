//! Retell AI webhooks (`{"event", "call": {…}}`): the `x-retell-signature` check and the
//! normalization of `call_started`, `call_ended` and `call_analyzed` into a [`CallEvent`]
//! (CONTRACT §5, docs/PROVIDERS.md §5).
//!
//! `x-retell-signature: v=<unix ms>,d=<hex HMAC-SHA256(API key, body + ms)>` — the body first, the
//! decimal timestamp after it, no separator — within 5 min each way.
//!
//! Only `event` and `call.call_id` are required; every other field is lenient. `call_analyzed`
//! after a `dial_*` ending is timeline only: the payload repeats `disconnection_reason`, so a
//! missed call never becomes completed, whatever order the two webhooks arrive in.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::lenient::{self, owned_non_blank as owned, text};
use super::signature::{self, HmacSha256, MacVerifier, SHA256_LEN};
use super::Stamp;
use super::{
    BodyVerifier, Ignored, Parsed, PayloadError, ProviderEvent, SignatureError, VerifyRequest,
    WebhookProvider,
};
use crate::event::{CallEvent, Cost, CostUnit, Ending, LeadType, Provider};
use crate::lifecycle::LifecycleStatus;
use crate::phone::PhoneNumber;

/// How old a signature's `v` may be (CONTRACT §5).
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-retell-signature";

/// Retell's webhooks: HMAC-SHA256 signed JSON, keyed with the API key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retell;

impl WebhookProvider for Retell {
    fn provider(&self) -> Provider {
        Provider::Retell
    }

    fn verifier(
        &self,
        request: &VerifyRequest<'_>,
    ) -> Result<Box<dyn BodyVerifier>, SignatureError> {
        if request.secrets.is_empty() {
            return Err(SignatureError::NotConfigured(Provider::Retell));
        }
        let header = request
            .headers
            .header(SIGNATURE_HEADER)
            .ok_or(SignatureError::Missing(SIGNATURE_HEADER))?;
        let malformed = |problem| SignatureError::Malformed {
            header: SIGNATURE_HEADER,
            problem,
        };
        let mut timestamp = None;
        let mut digest = None;
        for (key, value) in signature::header_items(header) {
            match key {
                "v" if timestamp.is_none() => timestamp = Some(value),
                "d" if digest.is_none() => digest = Some(value),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or_else(|| malformed("it has no `v=` timestamp"))?;
        let signed_at = signature::parse_unix(timestamp)
            .ok_or_else(|| malformed("its `v` is not a Unix time in milliseconds"))?;
        let digest = digest.ok_or_else(|| malformed("it has no `d=` signature"))?;
        let presented = signature::decode_hex(digest, SHA256_LEN)
            .ok_or_else(|| malformed("its `d` is not 64 hex digits"))?;
        signature::check_window(signed_at, request.now, TOLERANCE_SECONDS)?;
        Ok(Box::new(MacVerifier::<HmacSha256>::new(
            request.secrets,
            b"",
            timestamp.as_bytes().to_vec(),
            vec![presented],
        )))
    }

    fn parse(&self, body: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, PayloadError> {
        let envelope: Envelope = lenient::json_object(body)?;
        let event = owned(envelope.event.as_deref()).ok_or(PayloadError::MissingField("event"))?;
        let call = envelope.call.unwrap_or_default();
        let call_id = owned(call.call_id.as_deref());
        if event == "transcript_updated" {
            return Ok(Parsed::Ignored(Ignored {
                message_type: event,
                execution_id: call_id,
            }));
        }
        let execution_id = call_id.ok_or(PayloadError::MissingField("call.call_id"))?;
        let normalized = call.normalize(execution_id, &event, received_at);
        Ok(Parsed::Event(Box::new(ProviderEvent {
            event_type: event,
            event: normalized,
            payload: super::json_text(body)?,
        })))
    }
}

/// The body: `{"event", "call"}`.
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "lenient::string")]
    event: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    call: Option<Call>,
}

/// The call object; only the fields calltrail reads.
#[derive(Debug, Default, Deserialize)]
struct Call {
    #[serde(default, deserialize_with = "lenient::string")]
    call_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    agent_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    metadata: Option<lenient::CampaignKey>,
    #[serde(default, deserialize_with = "lenient::string")]
    direction: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    from_number: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    to_number: Option<String>,
    #[serde(default, deserialize_with = "lenient::unix_millis_stamp")]
    start_timestamp: Stamp,
    #[serde(default, deserialize_with = "lenient::unix_millis_stamp")]
    end_timestamp: Stamp,
    #[serde(default, deserialize_with = "lenient::number")]
    duration_ms: Option<f64>,
    #[serde(default, deserialize_with = "lenient::string")]
    transcript: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    recording_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    disconnection_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    call_cost: Option<CallCost>,
    #[serde(default, deserialize_with = "lenient::object")]
    call_analysis: Option<CallAnalysis>,
}

/// `call.call_cost`: only the total.
#[derive(Debug, Default, Deserialize)]
struct CallCost {
    /// Cents, as Retell documents it.
    #[serde(default, deserialize_with = "lenient::number")]
    combined_cost: Option<f64>,
}

/// `call.call_analysis` (`call_analyzed`): only the voicemail flag.
#[derive(Debug, Default, Deserialize)]
struct CallAnalysis {
    #[serde(default, deserialize_with = "lenient::boolean")]
    in_voicemail: Option<bool>,
}

impl Call {
    fn normalize(
        &self,
        execution_id: String,
        event: &str,
        received_at: DateTime<Utc>,
    ) -> CallEvent {
        let reason = owned(self.disconnection_reason.as_deref());
        let ending = matches!(event, "call_ended" | "call_analyzed");
        let status = match event {
            "call_started" => LifecycleStatus::InProgress,
            "call_ended" => missed(reason.as_deref()).unwrap_or(LifecycleStatus::CallDisconnected),
            "call_analyzed" => match missed(reason.as_deref()) {
                // Timeline only: the ending is `call_ended`'s.
                Some(_) => LifecycleStatus::parse(event),
                None => LifecycleStatus::Completed,
            },
            // `transfer_*` and events Retell adds later: timeline only.
            other => LifecycleStatus::parse(other),
        };
        let occurred_at = match event {
            "call_started" => self.start_timestamp,
            _ if ending => self.end_timestamp,
            _ => Stamp::Absent,
        };
        let (phone, lead_type) = match self.direction.as_deref().and_then(LeadType::parse) {
            Some(LeadType::Inbound) => (self.from_number.as_deref(), Some(LeadType::Inbound)),
            Some(LeadType::Outbound) => (self.to_number.as_deref(), Some(LeadType::Outbound)),
            None => (None, None),
        };
        let mut normalized = CallEvent {
            provider: Provider::Retell,
            execution_id,
            status,
            occurred_at: received_at,
            call_created_at: None,
            agent_id: owned(self.agent_id.as_deref()),
            phone_number: phone.and_then(|p| PhoneNumber::parse(p).ok()),
            lead_type,
            conversation_seconds: ending
                .then_some(self.duration_ms)
                .flatten()
                .filter(|ms| *ms >= 0.0)
                .map(|ms| ms / 1000.0),
            hangup_by: None,
            hangup_reason: reason,
            hangup_provider_code: None,
            recording_url: owned(self.recording_url.as_deref()),
            transcript: text(self.transcript.as_deref()),
            contact_name: None,
            contact_company: None,
            contact_email: None,
            batch_id: lenient::CampaignKey::batch_id(self.metadata.as_ref()),
            anomalies: Vec::new(),
            ending: self.ending(event, ending),
            cost: ending
                .then(|| {
                    let cents = self.call_cost.as_ref().and_then(|c| c.combined_cost);
                    Cost::of(cents, CostUnit::Cents)
                })
                .flatten(),
        };
        if let Some(at) = occurred_at.noted(&mut normalized) {
            normalized.occurred_at = at;
        }
        normalized.call_created_at = self.start_timestamp.noted(&mut normalized);
        normalized
    }

    /// How the call ended: `transfer_bridged` is a transfer; on `call_ended`/`call_analyzed`
    /// (`ended`) the `disconnection_reason` `dial_no_answer`, `dial_busy`, `dial_failed`,
    /// `voicemail_reached` or `call_transfer`, else `call_analysis.in_voicemail` true.
    fn ending(&self, event: &str, ended: bool) -> Option<Ending> {
        if event == "transfer_bridged" {
            return Some(Ending::Transferred);
        }
        if !ended {
            return None;
        }
        let by_reason = match self.disconnection_reason.as_deref().map(str::trim) {
            Some("dial_no_answer") => Some(Ending::NoAnswer),
            Some("dial_busy") => Some(Ending::Busy),
            Some("dial_failed") => Some(Ending::Failed),
            Some("voicemail_reached") => Some(Ending::Voicemail),
            Some("call_transfer") => Some(Ending::Transferred),
            _ => None,
        };
        let in_voicemail = self
            .call_analysis
            .as_ref()
            .and_then(|a| a.in_voicemail)
            .unwrap_or(false);
        by_reason.or_else(|| in_voicemail.then_some(Ending::Voicemail))
    }
}

/// The ending a `dial_*` disconnection reason stands for: the call was never answered.
fn missed(reason: Option<&str>) -> Option<LifecycleStatus> {
    match reason? {
        "dial_no_answer" => Some(LifecycleStatus::NoAnswer),
        "dial_busy" => Some(LifecycleStatus::Busy),
        "dial_failed" => Some(LifecycleStatus::Failed),
        _ => None,
    }
}
