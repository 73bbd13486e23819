//! Bolna fixtures as normalized events and small builders shared by the test modules (files
//! come from `calltrail-fixtures`).

use std::path::Path;

use calltrail_core::providers::{
    bolna, Ignored, Parsed, ProviderEvent, ProviderSecret, SignatureError, VerifyRequest,
};
use calltrail_core::{CallEvent, LifecycleStatus, Provider};
use calltrail_fixtures as fixtures;
use chrono::{DateTime, NaiveDateTime, Utc};

/// The three recorded Bolna scenarios (folders of `fixtures/bolna`).
pub const SCENARIOS: [&str; 3] = ["bolna/success", "bolna/no-answer", "bolna/busy"];

/// A receive time far from every fixture time, so using it by mistake shows.
pub fn received_at() -> DateTime<Utc> {
    utc("2030-01-01T00:00:00")
}

/// Parses and normalizes one Bolna fixture, e.g. `event("bolna/success/05-completed.json")`.
pub fn event(relative: impl AsRef<Path>) -> CallEvent {
    let relative = relative.as_ref();
    bolna::parse(&fixtures::read(relative))
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", relative.display()))
        .normalize(received_at())
}

/// A Bolna scenario's events in delivery (file) order, e.g. `scenario("bolna/success")`.
pub fn scenario(folder: &str) -> Vec<CallEvent> {
    calltrail_fixtures::files(folder)
        .into_iter()
        .map(event)
        .collect()
}

/// A zone-less timestamp read as UTC.
pub fn utc(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .unwrap()
        .and_utc()
}

/// A bare event of one call, for hand-written fold cases.
pub fn bare(status: &str, occurred_at: &str) -> CallEvent {
    CallEvent {
        provider: Provider::Bolna,
        execution_id: "exec-1".to_owned(),
        status: LifecycleStatus::parse(status),
        occurred_at: utc(occurred_at),
        call_created_at: None,
        agent_id: None,
        phone_number: None,
        lead_type: None,
        conversation_seconds: None,
        hangup_by: None,
        hangup_reason: None,
        hangup_provider_code: None,
        recording_url: None,
        transcript: None,
        contact_name: None,
        contact_company: None,
        contact_email: None,
        batch_id: None,
        anomalies: Vec::new(),
        ending: None,
        cost: None,
    }
}

/// Whole calls of one provider: a name and each message's body in delivery order.
pub type Lifecycles = Vec<(&'static str, Vec<Vec<u8>>)>;

/// Runs a provider's signature check the way the intake does: the verifier from the headers,
/// then the body fed in 7-byte chunks.
pub fn verify(
    provider: Provider,
    headers: &[(&str, &str)],
    secrets: &[&str],
    public_url: Option<&str>,
    now: DateTime<Utc>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let secrets: Vec<ProviderSecret> = secrets
        .iter()
        .map(|s| ProviderSecret::new(s.as_bytes().to_vec()))
        .collect();
    let request = VerifyRequest {
        headers: &headers,
        secrets: &secrets,
        public_url,
        now,
    };
    let mut verifier = provider.webhooks().verifier(&request)?;
    for chunk in body.chunks(7) {
        verifier.update(chunk);
    }
    verifier.finish()
}

/// Parses a body that must be a call event.
pub fn parse_event(provider: Provider, body: &[u8]) -> ProviderEvent {
    match provider.webhooks().parse(body, received_at()) {
        Ok(Parsed::Event(event)) => *event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Parses a body that must be an ignored message.
pub fn parse_ignored(provider: Provider, body: &[u8]) -> Ignored {
    match provider.webhooks().parse(body, received_at()) {
        Ok(Parsed::Ignored(ignored)) => ignored,
        other => panic!("expected an ignored message, got {other:?}"),
    }
}

/// Hex HMAC-SHA256 of the concatenated parts.
pub fn hmac_sha256_hex(key: &str, parts: &[&[u8]]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// A UTC instant from Unix milliseconds.
pub fn at_millis(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap()
}
