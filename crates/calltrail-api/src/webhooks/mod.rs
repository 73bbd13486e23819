//! Webhook intake: one generic intake serves `POST /v1/webhooks/{provider}/{webhook_token}` for
//! every provider in `calltrail_core::Provider`'s table. This module holds what it shares: header
//! redaction for the rejected log, the backend the intake talks to, and its answers.
//!
//! Modules:
//! - [`intake`]: the route's thin handler and the testable intake (token → secrets → streamed
//!   signature check → parse → agent check → append → receipt).
//! - `body` (private): the body read as a stream through the signature check, bounded.
//! - [`schemas`]: the route's OpenAPI shapes (provider names, request bodies, the 200 answer).

mod body;
pub mod intake;
pub mod schemas;

use std::sync::Arc;

use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use calltrail_core::providers::{Ignored, ProviderSecret};
use calltrail_core::Provider;
use calltrail_eventlog::{AppendOutcome, NewEvent, RejectedWebhook};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::ApiError;
use crate::metrics::WebhookOutcome;
use crate::AppState;

/// True for headers that must not be stored: credentials, cookies, signatures, tokens.
pub(crate) fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || ["token", "secret", "key", "signature", "auth"]
        .iter()
        .any(|word| name.contains(word))
}

/// Request headers as a JSON object for the rejected log, secrets removed; a repeated header
/// becomes an array.
pub(crate) fn redact_headers(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in headers.iter() {
        let name = name.as_str();
        if is_secret_header(name) {
            continue;
        }
        let value = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        match out.get_mut(name) {
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                out.insert(name.to_owned(), value);
            }
        }
    }
    Value::Object(out)
}

/// What webhook intake needs from the outside world (implemented by [`AppState`]; faked in tests).
pub(crate) trait IntakeBackend {
    /// The tenant owning a webhook token.
    async fn tenant_by_token(&self, token: &str) -> Result<Option<Uuid>, ApiError>;
    /// The tenant's currently valid signing secrets for a provider, the newest first (empty
    /// when none is configured).
    async fn provider_secrets(
        &self,
        tenant: Uuid,
        provider: Provider,
    ) -> Result<Arc<[ProviderSecret]>, ApiError>;
    /// After a signature failed with `seen`: the tenant's secrets read again when they may have
    /// changed since (at most about once a second), `None` when they did not.
    async fn fresher_provider_secrets(
        &self,
        tenant: Uuid,
        provider: Provider,
        seen: &[ProviderSecret],
    ) -> Result<Option<Arc<[ProviderSecret]>>, ApiError>;
    /// The tenant that registered a provider agent, if any did.
    async fn agent_owner(&self, provider: &str, agent_id: &str) -> Result<Option<Uuid>, ApiError>;
    /// Appends an event; answers only after its outcome is committed.
    async fn append(&self, event: NewEvent) -> Result<AppendOutcome, calltrail_eventlog::Error>;
    /// Keeps a refused request; a failure is logged, never raised (the answer goes out anyway).
    async fn record_rejected(&self, rejected: RejectedWebhook);
    /// The top-level fields of the latest conflicting re-delivery of the event at `position`
    /// that differ from the recorded event's (for the warning; a failure reads as none).
    async fn conflict_fields(&self, position: i64) -> Vec<String>;
}

impl IntakeBackend for AppState {
    async fn tenant_by_token(&self, token: &str) -> Result<Option<Uuid>, ApiError> {
        AppState::tenant_by_webhook_token(self, token).await
    }

    async fn provider_secrets(
        &self,
        tenant: Uuid,
        provider: Provider,
    ) -> Result<Arc<[ProviderSecret]>, ApiError> {
        AppState::provider_secrets(self, tenant, provider).await
    }

    async fn fresher_provider_secrets(
        &self,
        tenant: Uuid,
        provider: Provider,
        seen: &[ProviderSecret],
    ) -> Result<Option<Arc<[ProviderSecret]>>, ApiError> {
        AppState::fresher_provider_secrets(self, tenant, provider, seen).await
    }

    async fn agent_owner(&self, provider: &str, agent_id: &str) -> Result<Option<Uuid>, ApiError> {
        AppState::agent_owner(self, provider, agent_id).await
    }

    async fn append(&self, event: NewEvent) -> Result<AppendOutcome, calltrail_eventlog::Error> {
        self.appender().append(event).await
    }

    async fn conflict_fields(&self, position: i64) -> Vec<String> {
        let log = self.log().clone();
        let failure = match self
            .on_db_runtime(async move { log.conflict_fields(position).await })
            .await
        {
            Ok(Ok(fields)) => return fields,
            Ok(Err(err)) => err.to_string(),
            Err(err) => err.to_string(),
        };
        tracing::warn!(position, error = %failure, "could not read a conflict's fields");
        Vec::new()
    }

    async fn record_rejected(&self, rejected: RejectedWebhook) {
        let log = self.log().clone();
        let (provider, status_code) = (rejected.provider.clone(), rejected.status_code);
        let recorded = self
            .on_db_runtime(async move { log.record_rejected(&rejected).await })
            .await;
        let failure = match recorded {
            Ok(Ok(())) => return,
            Ok(Err(err)) => err.to_string(),
            Err(err) => err.to_string(),
        };
        tracing::error!(
            %provider,
            status_code,
            error = %failure,
            "could not keep a rejected webhook in the rejected log"
        );
    }
}

/// The answer to an accepted or duplicate webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WebhookReceipt {
    /// `accepted` (202) or `duplicate` (200).
    #[schema(example = "accepted")]
    pub status: String,
    /// True when this `(execution_id, status)` was already recorded.
    pub duplicate: bool,
    /// The provider's execution id.
    pub execution_id: String,
    /// The event type: the provider status exactly as sent.
    #[schema(example = "completed")]
    pub event: String,
    /// Position of the event in the log (of the earlier one, for a duplicate).
    pub position: i64,
    /// For a duplicate: whether its body differed from the recorded one (kept for review).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<bool>,
}

impl WebhookReceipt {
    /// Builds the receipt for an append outcome.
    pub(crate) fn new(execution_id: String, event: String, outcome: AppendOutcome) -> Self {
        match outcome {
            AppendOutcome::Appended { position } => Self {
                status: "accepted".to_owned(),
                duplicate: false,
                execution_id,
                event,
                position,
                conflict: None,
            },
            AppendOutcome::Duplicate { position, conflict } => Self {
                status: "duplicate".to_owned(),
                duplicate: true,
                execution_id,
                event,
                position,
                conflict: Some(conflict),
            },
        }
    }

    /// How this receipt counts in the metrics.
    pub(crate) fn outcome(&self) -> WebhookOutcome {
        match (self.duplicate, self.conflict) {
            (false, _) => WebhookOutcome::Accepted,
            (true, Some(true)) => WebhookOutcome::Conflict,
            (true, _) => WebhookOutcome::Duplicate,
        }
    }

    /// 202 for a new event, 200 for a duplicate.
    pub(crate) fn into_response(self) -> HttpResponse {
        let status = if self.duplicate {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        HttpResponse::build(status).json(self)
    }
}

/// The answer to a message that says nothing about a call's lifecycle (a live transcript, an
/// audio upload, …): checked, not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WebhookIgnored {
    /// Always `ignored`.
    #[schema(example = "ignored")]
    pub status: String,
    /// The provider's message type, exactly as sent.
    #[schema(example = "transcript")]
    pub message_type: String,
    /// The call the message is about, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

impl From<Ignored> for WebhookIgnored {
    fn from(ignored: Ignored) -> Self {
        Self {
            status: "ignored".to_owned(),
            message_type: ignored.message_type,
            execution_id: ignored.execution_id,
        }
    }
}

/// How the intake answers a webhook it did not refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WebhookAnswer {
    /// Recorded (202) or already recorded (200).
    Recorded(WebhookReceipt),
    /// Checked and not stored (200).
    Ignored(WebhookIgnored),
}

impl WebhookAnswer {
    /// How this answer counts in the metrics.
    pub(crate) fn outcome(&self) -> WebhookOutcome {
        match self {
            WebhookAnswer::Recorded(receipt) => receipt.outcome(),
            WebhookAnswer::Ignored(_) => WebhookOutcome::Ignored,
        }
    }

    /// The HTTP answer.
    pub(crate) fn into_response(self) -> HttpResponse {
        match self {
            WebhookAnswer::Recorded(receipt) => receipt.into_response(),
            WebhookAnswer::Ignored(ignored) => HttpResponse::Ok().json(ignored),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn secrets_are_removed_from_stored_headers() {
        let map = headers(&[
            ("content-type", "application/json"),
            ("user-agent", "bolna/1.0"),
            ("authorization", "Bearer k"),
            ("proxy-authorization", "Basic x"),
            ("cookie", "session=1"),
            ("set-cookie", "a=b"),
            ("x-api-key", "k"),
            ("x-webhook-token", "t"),
            ("x-bolna-signature", "s"),
            ("x-client-secret", "s"),
            ("x-auth-user", "u"),
            // The signature and secret headers of every provider in docs/CONTRACT.md §5.
            ("x-twilio-signature", "s"),
            ("elevenlabs-signature", "t=1,v0=ab"),
            ("x-retell-signature", "v=1,d=ab"),
            ("x-vapi-secret", "s"),
            ("x-signature", "ab"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        let redacted = redact_headers(&map);
        assert_eq!(
            redacted,
            serde_json::json!({
                "content-type": "application/json",
                "user-agent": "bolna/1.0",
                "x-forwarded-for": ["10.0.0.1", "10.0.0.2"],
            })
        );
    }

    #[test]
    fn secret_names_are_matched_in_any_case() {
        assert!(is_secret_header("X-Signature"));
        assert!(is_secret_header("Authorization"));
        assert!(is_secret_header("ElevenLabs-Signature"));
        assert!(is_secret_header("X-Twilio-Signature"));
        assert!(!is_secret_header("keep-alive"));
        assert!(!is_secret_header("content-length"));
    }

    #[test]
    fn receipts_answer_202_or_200() {
        let accepted = WebhookReceipt::new(
            "e1".into(),
            "ringing".into(),
            AppendOutcome::Appended { position: 7 },
        );
        assert_eq!(accepted.outcome(), WebhookOutcome::Accepted);
        assert_eq!(
            accepted.clone().into_response().status(),
            StatusCode::ACCEPTED
        );
        assert_eq!(
            serde_json::to_value(&accepted).ok(),
            Some(
                serde_json::json!({"status":"accepted","duplicate":false,"execution_id":"e1","event":"ringing","position":7})
            )
        );
        let conflict = WebhookReceipt::new(
            "e1".into(),
            "ringing".into(),
            AppendOutcome::Duplicate {
                position: 7,
                conflict: true,
            },
        );
        assert_eq!(conflict.outcome(), WebhookOutcome::Conflict);
        assert_eq!(conflict.clone().into_response().status(), StatusCode::OK);
        assert_eq!(
            serde_json::to_value(&conflict).ok(),
            Some(
                serde_json::json!({"status":"duplicate","duplicate":true,"execution_id":"e1","event":"ringing","position":7,"conflict":true})
            )
        );
    }

    #[test]
    fn ignored_messages_answer_200_with_their_type() {
        let ignored = WebhookAnswer::Ignored(
            Ignored {
                message_type: "transcript".into(),
                execution_id: Some("c1".into()),
            }
            .into(),
        );
        assert_eq!(ignored.outcome(), WebhookOutcome::Ignored);
        let WebhookAnswer::Ignored(body) = &ignored else {
            panic!("not an ignored answer");
        };
        assert_eq!(
            serde_json::to_value(body).ok(),
            Some(
                serde_json::json!({"status":"ignored","message_type":"transcript","execution_id":"c1"})
            )
        );
        assert_eq!(ignored.into_response().status(), StatusCode::OK);
    }
}
