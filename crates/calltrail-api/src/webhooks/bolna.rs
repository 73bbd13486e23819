//! `POST /v1/webhooks/bolna/{webhook_token}`: a thin handler around `intake`, which turns one
//! received Bolna webhook into a committed event or a refusal kept in the rejected log.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, HttpRequest, HttpResponse};
use calltrail_core::event::CALL_EVENT_SCHEMA_VERSION;
use calltrail_core::providers::bolna;
use calltrail_core::Provider;
use calltrail_eventlog::{NewEvent, RejectedWebhook};
use chrono::{DateTime, Utc};
use tracing::Instrument;
use utoipa::openapi::schema::{AdditionalProperties, AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{read_body, redact_headers, IntakeBackend, ReceivedBody, WebhookReceipt};
use crate::error::{ApiError, ErrorBody};
use crate::metrics::WebhookOutcome;
use crate::params::WHITESPACE;
use crate::AppState;

const PROVIDER: Provider = Provider::Bolna;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One received webhook request, as the handler hands it to [`intake`].
#[derive(Debug)]
pub(crate) struct Delivery<'a> {
    /// The webhook token from the path (a secret: never logged).
    pub token: &'a str,
    /// The body, possibly incomplete.
    pub body: ReceivedBody,
    /// Request headers (redacted before they are stored).
    pub headers: &'a HeaderMap,
    /// When the request arrived: the event time when the payload has none.
    pub received_at: DateTime<Utc>,
}

/// The documented shape of a Bolna webhook body. Only for the OpenAPI document: the handler
/// reads the raw bytes with `bolna::parse`, which needs `id` and `status` and reads every other
/// field leniently (a value of an unexpected type is ignored, never refused). U+0000 is refused
/// anywhere in the body (400 `invalid_payload`), as PostgreSQL cannot store it; the patterns
/// below say so for `id` and `status`, the description for the rest.
#[derive(Debug)]
pub struct BolnaWebhookBody;

impl utoipa::PartialSchema for BolnaWebhookBody {
    fn schema() -> RefOr<Schema> {
        // Not blank (at least one character that `str::trim` keeps), and no U+0000.
        let not_blank = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!(
                    r"^[^\u0000]*[^\u0000{WHITESPACE}][^\u0000]*$"
                )))
        };
        let id = AnyOfBuilder::new()
            .item(not_blank())
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .description(Some(
                "The execution id: a string that is not blank (trimmed), or a number (stringified)",
            ));
        let status = not_blank().description(Some(
            "The lifecycle status, e.g. `ringing`; a status calltrail does not know is still recorded",
        ));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("id", id)
            .property("status", status)
            .required("id")
            .required("status")
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .description(Some(
                "Every other key is optional, read leniently and kept as sent. No string or key \
                 may contain U+0000, which PostgreSQL cannot store (400 `invalid_payload`).",
            ))
            .examples([serde_json::json!({
                "id": "b3f1c2d4-7a8e-4c61-9f25-3e0d8a6b51c7",
                "agent_id": "9e2a4f70-5c13-4b8e-a1d6-72f04c3b9e18",
                "status": "ringing",
                "updated_at": "2025-10-08T09:15:02.118734",
            })])
            .into()
    }
}

impl ToSchema for BolnaWebhookBody {}

/// Receives a Bolna execution webhook.
#[utoipa::path(
    post,
    path = "/v1/webhooks/bolna/{webhook_token}",
    tag = "webhooks",
    params(("webhook_token" = String, Path, description = "The tenant's webhook token (from `calltrail admin create-user`)")),
    request_body(content = inline(BolnaWebhookBody), description = "A Bolna execution payload; `id` and `status` are required", content_type = "application/json"),
    responses(
        (status = 202, description = "Committed as a new event", body = WebhookReceipt),
        (status = 200, description = "This `(id, status)` was already recorded", body = WebhookReceipt),
        (status = 400, description = "`invalid_payload`: not JSON, not an object, no usable `id` or `status`, or U+0000 in a string (which PostgreSQL cannot store); `invalid_body`: the body could not be read. Kept in the rejected log", body = ErrorBody),
        (status = 401, description = "`unknown_webhook_token` (kept in the rejected log)", body = ErrorBody),
        (status = 403, description = "`agent_of_another_tenant` (kept in the rejected log)", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body did not arrive in time", body = ErrorBody),
        (status = 413, description = "`payload_too_large` (kept in the rejected log)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is down; retry", body = ErrorBody),
    )
)]
pub async fn receive(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let received_at = Utc::now();
    let config = state.config();
    let body = read_body(
        payload,
        req.headers(),
        config.max_body_bytes,
        config.body_timeout,
    )
    .await;
    let delivery = Delivery {
        token: token.as_str(),
        body,
        headers: req.headers(),
        received_at,
    };
    let result = intake(state.get_ref(), delivery).await;
    let outcome = match &result {
        Ok(receipt) => receipt.outcome(),
        Err(err) => WebhookOutcome::Rejected(err.code()),
    };
    state.metrics().webhook(PROVIDER.as_str(), outcome);
    result.map(WebhookReceipt::into_response)
}

/// Validates, normalizes and appends one Bolna webhook. Every refusal except an unavailable
/// database is kept in the rejected log before the error is returned.
pub(crate) async fn intake<B: IntakeBackend>(
    backend: &B,
    delivery: Delivery<'_>,
) -> Result<WebhookReceipt, ApiError> {
    let Delivery {
        token,
        body: ReceivedBody { bytes, problem },
        headers,
        received_at,
    } = delivery;
    let rejected = move |tenant_id: Option<Uuid>,
                         execution_id: Option<String>,
                         error: ApiError,
                         body: Vec<u8>| {
        reject(backend, headers, tenant_id, execution_id, error, body)
    };

    let tenant = backend.tenant_by_token(token).await;
    if let Some(problem) = problem {
        // The body is incomplete: refuse it whatever the token (the tenant is noted when known).
        return Err(rejected(tenant.ok().flatten(), None, problem, bytes).await);
    }
    let Some(tenant) = tenant? else {
        return Err(rejected(None, None, ApiError::UnknownWebhookToken, bytes).await);
    };
    let payload = match bolna::parse(&bytes) {
        Ok(payload) => payload,
        Err(err) => return Err(rejected(Some(tenant), None, err.into(), bytes).await),
    };
    let execution_id = payload.execution_id().to_owned();
    if let Some(agent_id) = payload.agent_id() {
        if let Some(owner) = backend.agent_owner(PROVIDER.as_str(), agent_id).await? {
            if owner != tenant {
                let error = ApiError::AgentOfAnotherTenant(agent_id.to_owned());
                return Err(rejected(Some(tenant), Some(execution_id.clone()), error, bytes).await);
            }
        }
    }

    let event = payload.normalize(received_at);
    let event_type = event.status.as_str().to_owned();
    let data = serde_json::to_string(&event).map_err(|err| ApiError::Internal(Box::new(err)))?;
    // `parse` accepted the body, so it is UTF-8 JSON; only a byte-order mark may precede it.
    let text = bytes.strip_prefix(UTF8_BOM).unwrap_or(&bytes);
    let text = match std::str::from_utf8(text) {
        Ok(text) => text.to_owned(),
        Err(err) => {
            let error = ApiError::PayloadRefused(format!("the body is not UTF-8 ({err})"));
            return Err(rejected(Some(tenant), Some(execution_id.clone()), error, bytes).await);
        }
    };
    let new_event = NewEvent {
        tenant_id: tenant,
        provider: PROVIDER.as_str().to_owned(),
        stream_id: execution_id.clone(),
        event_type: event_type.clone(),
        schema_version: CALL_EVENT_SCHEMA_VERSION,
        occurred_at: event.occurred_at,
        data,
        payload: Some(text),
        metadata: metadata(headers, received_at, bytes.len()),
    };
    match backend.append(new_event).await {
        Ok(outcome) => {
            let receipt = WebhookReceipt::new(execution_id, event_type, outcome);
            if receipt.conflict == Some(true) {
                tracing::info!(
                    execution_id = %receipt.execution_id,
                    event = %receipt.event,
                    position = receipt.position,
                    "duplicate webhook with a different body, kept for review"
                );
            } else {
                tracing::debug!(
                    execution_id = %receipt.execution_id,
                    event = %receipt.event,
                    position = receipt.position,
                    duplicate = receipt.duplicate,
                    "webhook recorded"
                );
            }
            Ok(receipt)
        }
        Err(err) => match ApiError::from_log(err) {
            refused @ ApiError::PayloadRefused(_) => {
                tracing::info!(%execution_id, "the event log refused a webhook's content");
                Err(rejected(Some(tenant), Some(execution_id.clone()), refused, bytes).await)
            }
            other => Err(other),
        },
    }
}

/// Keeps a refused request in the rejected log and hands the error back.
async fn reject<B: IntakeBackend>(
    backend: &B,
    headers: &HeaderMap,
    tenant_id: Option<Uuid>,
    execution_id: Option<String>,
    error: ApiError,
    body: Vec<u8>,
) -> ApiError {
    // Every line about a call carries its id: this one's, and the rejected log's if it fails.
    let span = tracing::info_span!("webhook_rejected", execution_id = tracing::field::Empty);
    if let Some(execution_id) = execution_id {
        span.record("execution_id", execution_id.as_str());
    }
    keep_rejected(backend, headers, tenant_id, error, body)
        .instrument(span)
        .await
}

async fn keep_rejected<B: IntakeBackend>(
    backend: &B,
    headers: &HeaderMap,
    tenant_id: Option<Uuid>,
    error: ApiError,
    body: Vec<u8>,
) -> ApiError {
    let (code, status, reason) = error.row();
    tracing::info!(
        provider = PROVIDER.as_str(),
        code,
        status = status.as_u16(),
        tenant_id = ?tenant_id,
        body_bytes = body.len(),
        "webhook rejected"
    );
    backend
        .record_rejected(RejectedWebhook {
            provider: PROVIDER.as_str().to_owned(),
            tenant_id,
            reason: reason.into_owned(),
            status_code: status.as_u16(),
            headers: redact_headers(headers),
            body,
        })
        .await;
    error
}

/// The request metadata stored with the event: receive time, content type, user agent, size.
fn metadata(headers: &HeaderMap, received_at: DateTime<Utc>, body_bytes: usize) -> String {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    serde_json::json!({
        "received_at": received_at,
        "content_type": text(header::CONTENT_TYPE),
        "user_agent": text(header::USER_AGENT),
        "body_bytes": body_bytes,
    })
    .to_string()
}

#[cfg(test)]
#[path = "bolna_tests.rs"]
mod tests;
