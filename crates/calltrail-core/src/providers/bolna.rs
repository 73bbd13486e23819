//! Bolna execution payloads: tolerant serde types, [`parse`], and normalization into a [`CallEvent`].
//!
//! Webhooks and `GET /executions/{id}` share one shape (docs/PROVIDERS.md §1). Only `id` and `status`
//! are required; every other field is optional and lenient: `null`, a missing key, a number sent as
//! a string (`"28"`), or an unparseable value never fails the payload, it just reads as `None`.
//! Unknown keys are skipped here: the body itself is what the log keeps (`events.payload`), so
//! nothing a provider sends is lost. Timestamps without a zone are UTC.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::lenient::parse_timestamp;
use super::lenient::{self, Stamp};
pub use super::PayloadError;
use super::{
    BodyVerifier, Parsed, ProviderEvent, SignatureError, Unsigned, VerifyRequest, WebhookProvider,
};
use crate::event::{CallEvent, Cost, CostUnit, Ending, LeadType, Provider};
use crate::lifecycle::LifecycleStatus;
use crate::phone::PhoneNumber;

/// One Bolna execution payload. Built by [`parse`] (or serde), so `id` and `status` are always usable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BolnaPayload {
    #[serde(deserialize_with = "lenient::required_id")]
    id: String,
    #[serde(deserialize_with = "lenient::required_status")]
    status: LifecycleStatus,
    /// The agent's id, as sent (see [`BolnaPayload::agent_id`] for the cleaned value).
    #[serde(default, deserialize_with = "lenient::string")]
    pub agent_id: Option<String>,
    /// Batch id for batch campaigns.
    #[serde(default, deserialize_with = "lenient::string")]
    pub batch_id: Option<String>,
    /// When Bolna created the execution.
    #[serde(default, deserialize_with = "lenient::timestamp_stamp")]
    pub created_at: Stamp,
    /// When Bolna last changed the execution: the event time of this webhook.
    #[serde(default, deserialize_with = "lenient::timestamp_stamp")]
    pub updated_at: Stamp,
    /// When the call was scheduled.
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub scheduled_at: Option<DateTime<Utc>>,
    /// When the call was rescheduled.
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub rescheduled_at: Option<DateTime<Utc>>,
    /// Talk time in seconds (e.g. 27.2).
    #[serde(default, deserialize_with = "lenient::number")]
    pub conversation_duration: Option<f64>,
    /// Older name of `conversation_duration`.
    #[serde(default, deserialize_with = "lenient::number")]
    pub conversation_time: Option<f64>,
    /// Total cost in cents.
    #[serde(default, deserialize_with = "lenient::number")]
    pub total_cost: Option<f64>,
    /// Plain-text transcript (`assistant: …\nuser: …`).
    #[serde(default, deserialize_with = "lenient::string")]
    pub transcript: Option<String>,
    /// Post-call summary.
    #[serde(default, deserialize_with = "lenient::string")]
    pub summary: Option<String>,
    /// Error message when the execution failed.
    #[serde(default, deserialize_with = "lenient::string")]
    pub error_message: Option<String>,
    /// Whether a voicemail answered.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub answered_by_voice_mail: Option<bool>,
    /// The transfer of the call to another number, when there was one (`TransferCallData`).
    #[serde(default, deserialize_with = "lenient::value")]
    pub transfer_call_data: Option<Value>,
    /// Output of the agent's extraction prompt.
    #[serde(default, deserialize_with = "lenient::value")]
    pub extracted_data: Option<Value>,
    /// The contact's number as Bolna records it.
    #[serde(default, deserialize_with = "lenient::string")]
    pub user_number: Option<String>,
    /// The agent's number.
    #[serde(default, deserialize_with = "lenient::string")]
    pub agent_number: Option<String>,
    /// Telephony provider name (`plivo`, `twilio`, …).
    #[serde(default, deserialize_with = "lenient::string")]
    pub provider: Option<String>,
    /// Telephony details (numbers, hangup, recording).
    #[serde(default, deserialize_with = "lenient::object")]
    pub telephony_data: Option<TelephonyData>,
    /// Data passed in when the call was placed (recipient data, phone).
    #[serde(default, deserialize_with = "lenient::object")]
    pub context_details: Option<ContextDetails>,
}

/// `telephony_data` of a Bolna payload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TelephonyData {
    /// Billed telephony seconds (sent as a string like `"28"`, or a number).
    #[serde(default, deserialize_with = "lenient::number")]
    pub duration: Option<f64>,
    /// Callee number.
    #[serde(default, deserialize_with = "lenient::string")]
    pub to_number: Option<String>,
    /// Caller number.
    #[serde(default, deserialize_with = "lenient::string")]
    pub from_number: Option<String>,
    /// Recording URL (presigned, expires); present at `completed`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub recording_url: Option<String>,
    /// Whether Bolna hosts the telephony.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub hosted_telephony: Option<bool>,
    /// The telephony provider's call id.
    #[serde(default, deserialize_with = "lenient::string")]
    pub provider_call_id: Option<String>,
    /// `outbound` or `inbound`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub call_type: Option<String>,
    /// Telephony provider (`twilio`, `plivo`, …).
    #[serde(default, deserialize_with = "lenient::string")]
    pub provider: Option<String>,
    /// Who hung up (`Callee`, `Carrier`, …).
    #[serde(default, deserialize_with = "lenient::string")]
    pub hangup_by: Option<String>,
    /// Why the call ended.
    #[serde(default, deserialize_with = "lenient::string")]
    pub hangup_reason: Option<String>,
    /// Telephony hangup code (may arrive as a string).
    #[serde(default, deserialize_with = "lenient::integer")]
    pub hangup_provider_code: Option<i64>,
    /// Seconds of ringing.
    #[serde(default, deserialize_with = "lenient::number")]
    pub ring_duration: Option<f64>,
    /// Seconds between dial and ring.
    #[serde(default, deserialize_with = "lenient::number")]
    pub post_dial_delay: Option<f64>,
    /// Callee's carrier.
    #[serde(default, deserialize_with = "lenient::string")]
    pub to_number_carrier: Option<String>,
}

/// `context_details` of a Bolna payload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContextDetails {
    /// The user's own data about the recipient.
    #[serde(default, deserialize_with = "lenient::object")]
    pub recipient_data: Option<RecipientData>,
    /// The recipient's number.
    #[serde(default, deserialize_with = "lenient::string")]
    pub recipient_phone_number: Option<String>,
}

/// `context_details.recipient_data`: free-form, with a few keys calltrail reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecipientData {
    /// Contact name (preferred key).
    #[serde(default, deserialize_with = "lenient::string")]
    pub lead_name: Option<String>,
    /// Contact name (fallback key).
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: Option<String>,
    /// Contact company.
    #[serde(default, deserialize_with = "lenient::string")]
    pub company: Option<String>,
}

/// Parses a webhook body. Fails only when it is not JSON, not an object, or lacks `id`/`status`.
pub fn parse(body: &[u8]) -> Result<BolnaPayload, PayloadError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    // Fast path: straight from the bytes into the struct. Only an object can become a payload
    // (serde would also accept an array for a struct), and any error that is not about the
    // JSON text itself (a missing `id`, a duplicate key, …) is settled by the precise path.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        match serde_json::from_slice::<BolnaPayload>(body) {
            Ok(payload) => return Ok(payload),
            Err(e) if !e.is_data() => return Err(PayloadError::MalformedJson(e.to_string())),
            Err(_) => {}
        }
    }
    parse_precisely(body)
}

/// The slower path of [`parse`], through a `Value`: names the missing field, and lets the last
/// of duplicate keys win as PostgreSQL's `jsonb` does.
fn parse_precisely(body: &[u8]) -> Result<BolnaPayload, PayloadError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| PayloadError::MalformedJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(PayloadError::NotAnObject);
    };
    if map.get("id").and_then(lenient::id_from).is_none() {
        return Err(PayloadError::MissingField("id"));
    }
    if map.get("status").and_then(lenient::status_from).is_none() {
        return Err(PayloadError::MissingField("status"));
    }
    // Cannot fail now: `id` and `status` are checked and every other field is lenient.
    BolnaPayload::deserialize(Value::Object(map))
        .map_err(|e| PayloadError::MalformedJson(e.to_string()))
}

impl BolnaPayload {
    /// The execution id (opaque; a numeric `id` is stringified, surrounding spaces trimmed).
    pub fn execution_id(&self) -> &str {
        &self.id
    }

    /// The lifecycle status this webhook reports.
    pub fn status(&self) -> LifecycleStatus {
        self.status.clone()
    }

    /// The agent id, trimmed; `None` when absent or blank.
    pub fn agent_id(&self) -> Option<&str> {
        non_blank(self.agent_id.as_deref())
    }

    /// Talk time in seconds: `conversation_duration`, else the older `conversation_time`.
    pub fn conversation_seconds(&self) -> Option<f64> {
        self.conversation_duration.or(self.conversation_time)
    }

    /// Call direction from `telephony_data.call_type`.
    pub fn lead_type(&self) -> Option<LeadType> {
        self.telephony()
            .and_then(|t| t.call_type.as_deref())
            .and_then(LeadType::parse)
    }

    /// The contact's number: the callee (`to_number`) of an outbound call or the caller
    /// (`from_number`) of an inbound one, else `context_details.recipient_phone_number`, else
    /// `user_number`; the first that is a valid E.164 number.
    pub fn phone_number(&self) -> Option<PhoneNumber> {
        let telephony = self.telephony();
        let direct = match self.lead_type() {
            Some(LeadType::Outbound) => telephony.and_then(|t| t.to_number.as_deref()),
            Some(LeadType::Inbound) => telephony.and_then(|t| t.from_number.as_deref()),
            None => None,
        };
        let recipient = self
            .context_details
            .as_ref()
            .and_then(|c| c.recipient_phone_number.as_deref());
        [direct, recipient, self.user_number.as_deref()]
            .into_iter()
            .flatten()
            .find_map(|candidate| PhoneNumber::parse(candidate).ok())
    }

    /// Normalizes the payload into a [`CallEvent`]; `received_at` is the event time when the
    /// payload has no `updated_at`.
    pub fn normalize(&self, received_at: DateTime<Utc>) -> CallEvent {
        let telephony = self.telephony();
        let telephony_text = |field: fn(&TelephonyData) -> &Option<String>| {
            telephony.and_then(|t| owned_non_blank(field(t).as_deref()))
        };
        let recipient = self
            .context_details
            .as_ref()
            .and_then(|c| c.recipient_data.as_ref());
        let mut event = CallEvent {
            provider: Provider::Bolna,
            execution_id: self.id.clone(),
            status: self.status.clone(),
            occurred_at: received_at,
            call_created_at: None,
            agent_id: self.agent_id().map(str::to_owned),
            phone_number: self.phone_number(),
            lead_type: self.lead_type(),
            conversation_seconds: self.conversation_seconds(),
            hangup_by: telephony_text(|t| &t.hangup_by),
            hangup_reason: telephony_text(|t| &t.hangup_reason),
            hangup_provider_code: telephony.and_then(|t| t.hangup_provider_code),
            recording_url: telephony_text(|t| &t.recording_url),
            transcript: self
                .transcript
                .as_ref()
                .filter(|t| !t.trim().is_empty())
                .cloned(),
            contact_name: recipient
                .and_then(|r| {
                    owned_non_blank(r.lead_name.as_deref())
                        .or_else(|| owned_non_blank(r.name.as_deref()))
                })
                .or_else(|| self.extracted_text(&["name", "customer_name"])),
            contact_company: recipient
                .and_then(|r| owned_non_blank(r.company.as_deref()))
                .or_else(|| self.extracted_text(&["company", "company_name"])),
            contact_email: self
                .extracted_text(&["email", "email_address"])
                .filter(|e| e.contains('@')),
            batch_id: owned_non_blank(self.batch_id.as_deref()),
            anomalies: Vec::new(),
            ending: self.ending(),
            // `total_cost` is 0 until post-processing ends: only a terminal status's counts.
            cost: self
                .status
                .is_terminal()
                .then(|| Cost::of(self.total_cost, CostUnit::Cents))
                .flatten(),
        };
        if let Some(at) = self.updated_at.noted(&mut event) {
            event.occurred_at = at;
        }
        event.call_created_at = self.created_at.noted(&mut event);
        event
    }

    /// How the call ended: a missed or failed status says it; else `answered_by_voice_mail`
    /// true is a voicemail, and a `transfer_call_data` with any value a transfer.
    pub fn ending(&self) -> Option<Ending> {
        let transferred = self
            .transfer_call_data
            .as_ref()
            .and_then(Value::as_object)
            .is_some_and(|data| data.values().any(|v| !v.is_null()));
        Ending::of_status(&self.status)
            .or_else(|| (self.answered_by_voice_mail == Some(true)).then_some(Ending::Voicemail))
            .or_else(|| transferred.then_some(Ending::Transferred))
    }

    /// The first of these keys of `extracted_data` that holds non-blank text.
    fn extracted_text(&self, keys: &[&str]) -> Option<String> {
        let data = self.extracted_data.as_ref()?.as_object()?;
        keys.iter()
            .find_map(|key| owned_non_blank(data.get(*key)?.as_str()))
    }

    fn telephony(&self) -> Option<&TelephonyData> {
        self.telephony_data.as_ref()
    }
}

/// Bolna's webhooks: unsigned (Bolna documents only an IP allowlist), JSON execution payloads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bolna;

impl WebhookProvider for Bolna {
    fn provider(&self) -> Provider {
        Provider::Bolna
    }

    fn verifier(
        &self,
        _request: &VerifyRequest<'_>,
    ) -> Result<Box<dyn BodyVerifier>, SignatureError> {
        Ok(Box::new(Unsigned))
    }

    fn signs_webhooks(&self) -> bool {
        false
    }

    fn parse(&self, body: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, PayloadError> {
        let payload = parse(body)?;
        let event = payload.normalize(received_at);
        Ok(Parsed::Event(Box::new(ProviderEvent {
            event_type: event.status.as_str().to_owned(),
            event,
            payload: super::json_text(body)?,
        })))
    }
}

/// The trimmed text, or `None` when absent or blank.
fn non_blank(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn owned_non_blank(s: Option<&str>) -> Option<String> {
    non_blank(s).map(str::to_owned)
}
