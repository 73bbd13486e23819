//! ElevenLabs Agents post-call webhooks (`{type, event_timestamp, data}`): the signature check
//! and the normalization of `post_call_transcription` and `call_initiation_failure` into a
//! [`CallEvent`] (CONTRACT §5, docs/PROVIDERS.md §3).
//!
//! `ElevenLabs-Signature: t=<unix s>,v0=<hex HMAC-SHA256(secret, "t.body")>`, `t` within 30 min
//! (and at most 5 min ahead). `post_call_audio` carries the call's audio as base64, tens of MiB:
//! it is streamed through the signature check and answered without being stored, so
//! [`WebhookProvider::streams_large_bodies`] is true and [`WebhookProvider::ignorable_prefix`]
//! recognises it from the body's first bytes.
//!
//! Only `type` and `data.conversation_id` are required; every other field is lenient. A type
//! ElevenLabs adds later is kept on the call's timeline when it names a conversation, and
//! answered without storing when it does not (workspace notices such as `voice_removed`).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer as _};

use super::lenient::{self, owned_non_blank as owned};
use super::signature::{self, HmacSha256, MacVerifier, SHA256_LEN};
use super::Stamp;
use super::{
    BodyVerifier, Ignored, Parsed, PayloadError, ProviderEvent, SignatureError, VerifyRequest,
    WebhookProvider,
};
use crate::event::{CallEvent, Cost, CostUnit, Ending, LeadType, Provider};
use crate::lifecycle::LifecycleStatus;
use crate::phone::PhoneNumber;

/// How old a signature's `t` may be (CONTRACT §5).
pub const TOLERANCE_SECONDS: i64 = 30 * 60;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "ElevenLabs-Signature";

/// The message type that carries the call's audio: answered without being stored.
pub const AUDIO_TYPE: &str = "post_call_audio";

/// ElevenLabs' post-call webhooks: HMAC-SHA256 signed JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct ElevenLabs;

impl WebhookProvider for ElevenLabs {
    fn provider(&self) -> Provider {
        Provider::ElevenLabs
    }

    fn verifier(
        &self,
        request: &VerifyRequest<'_>,
    ) -> Result<Box<dyn BodyVerifier>, SignatureError> {
        if request.secrets.is_empty() {
            return Err(SignatureError::NotConfigured(Provider::ElevenLabs));
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
        let mut presented = Vec::new();
        for (key, value) in signature::header_items(header) {
            match key {
                "t" if timestamp.is_none() => timestamp = Some(value),
                "v0" => presented.push(
                    signature::decode_hex(value, SHA256_LEN)
                        .ok_or_else(|| malformed("its `v0` is not 64 hex digits"))?,
                ),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or_else(|| malformed("it has no `t=` timestamp"))?;
        let signed_at = signature::parse_unix(timestamp)
            .ok_or_else(|| malformed("its `t` is not a Unix time in seconds"))?;
        if presented.is_empty() {
            return Err(malformed("it has no `v0=` signature"));
        }
        signature::check_window(
            signed_at.saturating_mul(1000),
            request.now,
            TOLERANCE_SECONDS,
        )?;
        let prefix = format!("{timestamp}.");
        Ok(Box::new(MacVerifier::<HmacSha256>::new(
            request.secrets,
            prefix.as_bytes(),
            Vec::new(),
            presented,
        )))
    }

    fn streams_large_bodies(&self) -> bool {
        true
    }

    fn ignorable_prefix(&self, prefix: &[u8]) -> Option<Ignored> {
        (leading_type(prefix)? == AUDIO_TYPE).then(|| Ignored {
            message_type: AUDIO_TYPE.to_owned(),
            execution_id: None,
        })
    }

    fn parse(&self, body: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, PayloadError> {
        let envelope: Envelope = lenient::json_object(body)?;
        let kind = owned(envelope.kind.as_deref()).ok_or(PayloadError::MissingField("type"))?;
        let data = envelope.data.as_ref();
        let conversation_id = data.and_then(|d| owned(d.conversation_id.as_deref()));
        let status = match kind.as_str() {
            AUDIO_TYPE => None,
            "post_call_transcription" => Some(LifecycleStatus::Completed),
            "call_initiation_failure" => Some(initiation_failure(
                data.and_then(|d| d.failure_reason.as_deref()),
            )),
            // A type added later: on the timeline when it is about a call, else not stored.
            _ if conversation_id.is_some() => Some(LifecycleStatus::parse(&kind)),
            _ => None,
        };
        let Some(status) = status else {
            return Ok(Parsed::Ignored(Ignored {
                message_type: kind,
                execution_id: conversation_id,
            }));
        };
        let execution_id =
            conversation_id.ok_or(PayloadError::MissingField("data.conversation_id"))?;
        let event = envelope.normalize(execution_id, status, &kind, received_at);
        Ok(Parsed::Event(Box::new(ProviderEvent {
            event_type: kind,
            event,
            payload: super::json_text(body)?,
        })))
    }
}

/// `call_initiation_failure`: `busy` or `no-answer` when `failure_reason` says so, else `failed`.
fn initiation_failure(reason: Option<&str>) -> LifecycleStatus {
    let reason = reason
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .replace(['_', ' '], "-");
    if reason.contains("busy") {
        LifecycleStatus::Busy
    } else if reason.contains("no-answer") || reason.contains("unanswered") {
        LifecycleStatus::NoAnswer
    } else {
        LifecycleStatus::Failed
    }
}

/// The top-level `type` of a JSON object from its first bytes, if they show it: the keys
/// before it must be complete in `prefix`. `None` when the prefix is not the start of an
/// object or ends before `type`'s value does.
fn leading_type(prefix: &[u8]) -> Option<String> {
    let prefix = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(prefix);
    // Ends with an error on purpose once `type` is read (or at the end of the prefix).
    let _ = deserializer.deserialize_map(TypeFinder(&mut found));
    found
}

/// Reads an object's entries until `type`, storing its value, then stops.
struct TypeFinder<'a>(&'a mut Option<String>);

impl<'de> Visitor<'de> for TypeFinder<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "type" {
                *self.0 = Some(map.next_value::<String>()?);
                return Err(de::Error::custom("found"));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// The body: `{type, event_timestamp, data}`.
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(rename = "type", default, deserialize_with = "lenient::string")]
    kind: Option<String>,
    /// Unix seconds.
    #[serde(default, deserialize_with = "lenient::unix_seconds_stamp")]
    event_timestamp: Stamp,
    #[serde(default, deserialize_with = "lenient::object")]
    data: Option<Data>,
}

/// `data`: the conversation (GET Conversation's shape) or the failure; only what calltrail reads.
/// `post_call_audio`'s `full_audio` is not named, so it is skipped without being copied.
#[derive(Debug, Default, Deserialize)]
struct Data {
    #[serde(default, deserialize_with = "lenient::string")]
    agent_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    conversation_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::objects")]
    transcript: Option<Vec<Turn>>,
    #[serde(default, deserialize_with = "lenient::object")]
    metadata: Option<Metadata>,
    #[serde(default, deserialize_with = "lenient::string")]
    failure_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    conversation_initiation_client_data: Option<ClientData>,
}

/// `conversation_initiation_client_data`: the user's own values for the conversation.
#[derive(Debug, Default, Deserialize)]
struct ClientData {
    #[serde(default, deserialize_with = "lenient::object")]
    dynamic_variables: Option<lenient::CampaignKey>,
}

#[derive(Debug, Default, Deserialize)]
struct Turn {
    #[serde(default, deserialize_with = "lenient::string")]
    role: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default, deserialize_with = "lenient::unix_seconds")]
    start_time_unix_secs: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::number")]
    call_duration_secs: Option<f64>,
    #[serde(default, deserialize_with = "lenient::string")]
    termination_reason: Option<String>,
    /// The conversation's cost in ElevenLabs credits.
    #[serde(default, deserialize_with = "lenient::number")]
    cost: Option<f64>,
    #[serde(default, deserialize_with = "lenient::object")]
    phone_call: Option<PhoneCall>,
}

#[derive(Debug, Default, Deserialize)]
struct PhoneCall {
    #[serde(default, deserialize_with = "lenient::string")]
    direction: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    external_number: Option<String>,
}

impl Envelope {
    /// The normalized event. Duration, transcript, creation time and termination reason come
    /// from the transcription only; phone, direction and agent from any message that has them.
    fn normalize(
        &self,
        execution_id: String,
        status: LifecycleStatus,
        kind: &str,
        received_at: DateTime<Utc>,
    ) -> CallEvent {
        let data = self.data.as_ref();
        let metadata = data.and_then(|d| d.metadata.as_ref());
        let phone_call = metadata.and_then(|m| m.phone_call.as_ref());
        let transcription = (kind == "post_call_transcription").then_some(metadata);
        let transcription = transcription.flatten();
        let mut event = CallEvent {
            provider: Provider::ElevenLabs,
            execution_id,
            status: status.clone(),
            occurred_at: received_at,
            call_created_at: transcription.and_then(|m| m.start_time_unix_secs),
            agent_id: data.and_then(|d| owned(d.agent_id.as_deref())),
            phone_number: phone_call
                .and_then(|p| p.external_number.as_deref())
                .and_then(|n| PhoneNumber::parse(n).ok()),
            lead_type: phone_call
                .and_then(|p| p.direction.as_deref())
                .and_then(LeadType::parse),
            conversation_seconds: transcription
                .and_then(|m| m.call_duration_secs)
                .filter(|s| *s >= 0.0),
            hangup_by: None,
            hangup_reason: transcription.and_then(|m| owned(m.termination_reason.as_deref())),
            hangup_provider_code: None,
            recording_url: None,
            transcript: (kind == "post_call_transcription")
                .then(|| {
                    data.and_then(|d| d.transcript.as_deref())
                        .and_then(transcript_text)
                })
                .flatten(),
            contact_name: None,
            contact_company: None,
            contact_email: None,
            batch_id: lenient::CampaignKey::batch_id(
                data.and_then(|d| d.conversation_initiation_client_data.as_ref())
                    .and_then(|c| c.dynamic_variables.as_ref()),
            ),
            anomalies: Vec::new(),
            ending: Ending::of_status(&status).or_else(|| {
                transcription.and_then(|m| termination_ending(m.termination_reason.as_deref()))
            }),
            cost: transcription.and_then(|m| Cost::of(m.cost, CostUnit::Credits)),
        };
        if let Some(at) = self.event_timestamp.noted(&mut event) {
            event.occurred_at = at;
        }
        event
    }
}

/// `metadata.termination_reason` is free text (ElevenLabs documents no list of values): one
/// that mentions a voicemail is a voicemail, one that mentions a transfer a transfer.
fn termination_ending(reason: Option<&str>) -> Option<Ending> {
    let reason = reason?.to_ascii_lowercase();
    if reason.contains("voicemail") || reason.contains("voice mail") {
        Some(Ending::Voicemail)
    } else if reason.contains("transfer") {
        Some(Ending::Transferred)
    } else {
        None
    }
}

/// The turns as `role: message` lines (turns without a message, e.g. tool calls, left out).
fn transcript_text(turns: &[Turn]) -> Option<String> {
    let mut text = String::new();
    for turn in turns {
        let Some(message) = lenient::non_blank(turn.message.as_deref()) else {
            continue;
        };
        let role = lenient::non_blank(turn.role.as_deref()).unwrap_or("unknown");
        text.push_str(role);
        text.push_str(": ");
        text.push_str(message);
        text.push('\n');
    }
    (!text.is_empty()).then_some(text)
}
