//! `POST /v1/webhooks/{provider}/{webhook_token}` for every provider in the table: a thin
//! handler around [`intake`], which turns one received webhook into a committed event, an
//! ignored message, or a refusal kept in the rejected log.
//!
//! The steps, in order: the tenant of the token, the tenant's secrets for the provider, the
//! signature check started from the headers, the body streamed through it, the check's verdict,
//! the provider's parser, the agent check, the append, the receipt. The provider's own code
//! (`calltrail_core::providers`) does the checking and parsing; nothing here knows a provider.

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::Uri;
use actix_web::web::Bytes;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use calltrail_core::event::CALL_EVENT_SCHEMA_VERSION;
use calltrail_core::providers::{
    BodyVerifier, Headers, Parsed, ProviderEvent, ProviderSecret, SignatureError, VerifyRequest,
    WebhookProvider,
};
use calltrail_core::Provider;
use calltrail_eventlog::{NewEvent, RejectedWebhook};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use tracing::Instrument;
use uuid::Uuid;

use super::body::{read_body, BodyLimits, ReceivedBody};
use super::schemas::{BolnaWebhookBody, FormBody, WebhookOkBody};
use super::{redact_headers, IntakeBackend, WebhookAnswer, WebhookReceipt};
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// Longest provider name echoed back in an `unknown_provider` message.
const MAX_ECHOED_PROVIDER: usize = 64;

/// One received webhook request, as the handler hands it to [`intake`].
pub(crate) struct Delivery<'a, S> {
    /// The provider named in the path.
    pub provider: &'a dyn WebhookProvider,
    /// The webhook token from the path (a secret: never logged).
    pub token: &'a str,
    /// Request headers (redacted before they are stored).
    pub headers: &'a HeaderMap,
    /// The full URL the provider called, when `CALLTRAIL_PUBLIC_URL` is configured.
    pub public_url: Option<&'a str>,
    /// The body, as it arrives.
    pub body: S,
    /// When the request arrived: the event time when the payload has none.
    pub received_at: DateTime<Utc>,
}

/// The body limits of [`intake`], from the server settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IntakeLimits {
    /// `CALLTRAIL_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// `CALLTRAIL_MAX_AUDIO_BYTES`.
    pub max_audio_bytes: usize,
    /// How long a body may take to arrive.
    pub body_timeout: std::time::Duration,
}

impl From<&crate::ApiConfig> for IntakeLimits {
    fn from(config: &crate::ApiConfig) -> Self {
        Self {
            max_body_bytes: config.max_body_bytes,
            max_audio_bytes: config.max_audio_bytes,
            body_timeout: config.body_timeout,
        }
    }
}

/// Receives a provider's webhook.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{provider}/{webhook_token}",
    tag = "webhooks",
    params(
        ("provider" = String, Path, description = "The provider sending the webhook (any other name answers 404 `unknown_provider`)"),
        ("webhook_token" = String, Path, description = "The tenant's webhook token (from `calltrail admin create-user`)"),
    ),
    request_body(
        description = "The provider's payload exactly as it sends it: JSON for every provider but Twilio, whose bodies are forms. \
                       Read as raw bytes: the signature is checked over them before anything is parsed.",
        content(
            (inline(BolnaWebhookBody) = "application/json"),
            (inline(FormBody) = "application/x-www-form-urlencoded"),
        ),
    ),
    responses(
        (status = 202, description = "Committed as a new event", body = WebhookReceipt),
        (status = 200, description = "Either this event (provider, call id, event type) was already recorded (`WebhookReceipt`, `status: duplicate`), or the message says nothing about the call's lifecycle and was checked but not stored (`WebhookIgnored`, `status: ignored`, with the provider's message type and the call id when it names one)", body = inline(WebhookOkBody)),
        (status = 400, description = "`invalid_payload`: not the provider's payload (not JSON or not a form, no usable call id or status, …), or U+0000 in a string (which PostgreSQL cannot store); `invalid_body`: the body could not be read. Kept in the rejected log", body = ErrorBody),
        (status = 401, description = "`unknown_webhook_token`; `signature_not_configured`: the provider signs its webhooks and this tenant has no secret for it (every provider but Bolna is fail-closed); `invalid_signature`: a missing, malformed, expired or wrong signature. Kept in the rejected log", body = ErrorBody),
        (status = 403, description = "`agent_of_another_tenant` (kept in the rejected log)", body = ErrorBody),
        (status = 404, description = "`unknown_provider`", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body did not arrive in time", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: larger than `CALLTRAIL_MAX_BODY_BYTES`, refused before the token or the signature is looked at; only a provider's large message that is answered without being stored (ElevenLabs `post_call_audio`) may reach `CALLTRAIL_MAX_AUDIO_BYTES`. Kept in the rejected log", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is down; retry", body = ErrorBody),
    )
)]
pub async fn receive(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let received_at = Utc::now();
    let (name, token) = path.into_inner();
    let Ok(provider) = name.parse::<Provider>() else {
        let shown: String = name.chars().take(MAX_ECHOED_PROVIDER).collect();
        return Err(ApiError::UnknownProvider(shown));
    };
    let config = state.config();
    let public_url = config
        .public_url
        .as_deref()
        .map(|base| format!("{base}{}", path_and_query(req.uri())));
    let delivery = Delivery {
        provider: provider.webhooks(),
        token: &token,
        headers: req.headers(),
        public_url: public_url.as_deref(),
        body: payload,
        received_at,
    };
    let result = intake(state.get_ref(), IntakeLimits::from(config), delivery).await;
    let outcome = match &result {
        Ok(answer) => answer.outcome(),
        Err(err) => crate::metrics::WebhookOutcome::Rejected(err.code()),
    };
    state.metrics().webhook(provider, outcome);
    result.map(WebhookAnswer::into_response)
}

/// The path and query exactly as the request line had them.
fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map_or(uri.path(), |pq| pq.as_str())
}

/// What is settled about a request before its body is read.
enum Gate {
    /// The token could not be checked (the database is down).
    Unavailable(ApiError),
    /// The token belongs to no tenant.
    UnknownToken,
    /// The tenant's secrets could not be read (the database is down).
    SecretsUnavailable(Uuid, ApiError),
    /// The signature check refused the request from its headers alone (with the secrets it
    /// had).
    Refused(Uuid, SignatureError, Secrets),
    /// The signature check waits for the body (with the secrets it has).
    Verifying(Uuid, Box<dyn BodyVerifier>, Secrets),
}

/// A tenant's signing secrets for one provider, as the backend hands them out.
type Secrets = Arc<[ProviderSecret]>;

impl Gate {
    fn tenant(&self) -> Option<Uuid> {
        match self {
            Gate::Unavailable(_) | Gate::UnknownToken => None,
            Gate::SecretsUnavailable(tenant, _)
            | Gate::Refused(tenant, ..)
            | Gate::Verifying(tenant, ..) => Some(*tenant),
        }
    }
}

/// Checks, parses, normalizes and appends one webhook. Every refusal except an unavailable
/// database is kept in the rejected log before the error is returned.
pub(crate) async fn intake<B, S, E>(
    backend: &B,
    limits: IntakeLimits,
    delivery: Delivery<'_, S>,
) -> Result<WebhookAnswer, ApiError>
where
    B: IntakeBackend,
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let Delivery {
        provider: webhooks,
        token,
        headers,
        public_url,
        body,
        received_at,
    } = delivery;
    let provider = webhooks.provider();
    let rejected = move |tenant_id: Option<Uuid>,
                         execution_id: Option<String>,
                         error: ApiError,
                         body: Vec<u8>| {
        reject(
            backend,
            Refusal {
                provider,
                headers,
                tenant_id,
                received_at,
            },
            execution_id,
            error,
            body,
        )
    };

    // The signature check needs the tenant's secrets, so both are looked up before the body
    // is read; what they settle is answered once the body is in (the rejected log keeps it).
    let mut gate = match backend.tenant_by_token(token).await {
        Err(err) => Gate::Unavailable(err),
        Ok(None) => Gate::UnknownToken,
        Ok(Some(tenant)) => match backend.provider_secrets(tenant, provider).await {
            Err(err) => Gate::SecretsUnavailable(tenant, err),
            Ok(secrets) => {
                let request = VerifyRequest {
                    headers: &HeaderAccess(headers),
                    secrets: &secrets,
                    public_url,
                    now: received_at,
                };
                match webhooks.verifier(&request) {
                    Ok(verifier) => Gate::Verifying(tenant, verifier, secrets),
                    Err(err) => Gate::Refused(tenant, err, secrets),
                }
            }
        },
    };

    let verifier: Option<&mut dyn BodyVerifier> = match &mut gate {
        Gate::Verifying(_, verifier, _) => Some(verifier.as_mut()),
        _ => None,
    };
    // Only a signature check under way can make an oversized body worth reading on.
    let read = if verifier.is_some() && webhooks.streams_large_bodies() {
        limits.max_audio_bytes.max(limits.max_body_bytes)
    } else {
        limits.max_body_bytes
    };
    let body_limits = BodyLimits {
        keep: limits.max_body_bytes,
        read,
        timeout: limits.body_timeout,
    };
    let body = read_body(body, content_length(headers), body_limits, verifier).await;
    let oversized = body.oversized();
    let ReceivedBody { bytes, problem, .. } = body;
    if let Some(problem) = problem {
        // The body is incomplete: refuse it whatever the token (the tenant is noted when known).
        return Err(rejected(gate.tenant(), None, problem, bytes).await);
    }
    let (tenant, verdict, seen) = match gate {
        Gate::Unavailable(err) | Gate::SecretsUnavailable(_, err) => return Err(err),
        Gate::UnknownToken => {
            return Err(rejected(None, None, ApiError::UnknownWebhookToken, bytes).await)
        }
        Gate::Refused(tenant, err, seen) => (tenant, Err(err), seen),
        Gate::Verifying(tenant, verifier, seen) => (tenant, verifier.finish(), seen),
    };
    let verdict = match verdict {
        Err(err) if !oversized && err.may_pass_with_other_secrets() => {
            let recheck = Recheck {
                webhooks,
                tenant,
                headers,
                public_url,
                received_at,
                body: &bytes,
            };
            recheck.with_fresher_secrets(backend, &seen, err).await?
        }
        verdict => verdict,
    };
    if oversized {
        // Larger than what is kept: answerable only as a verified message that is not stored.
        return match (verdict, webhooks.ignorable_prefix(&bytes)) {
            (Ok(()), Some(ignored)) => Ok(ignore(provider, ignored)),
            _ => {
                let error = ApiError::PayloadTooLarge {
                    limit: limits.max_body_bytes,
                };
                Err(rejected(Some(tenant), None, error, bytes).await)
            }
        };
    }
    if let Err(err) = verdict {
        return Err(rejected(Some(tenant), None, ApiError::Signature(err), bytes).await);
    }
    let ProviderEvent {
        event_type,
        event,
        payload,
    } = match webhooks.parse(&bytes, received_at) {
        Ok(Parsed::Event(parsed)) => *parsed,
        Ok(Parsed::Ignored(ignored)) => return Ok(ignore(provider, ignored)),
        Err(err) => return Err(rejected(Some(tenant), None, err.into(), bytes).await),
    };
    let execution_id = event.execution_id.clone();
    if let Some(agent_id) = event.agent_id.as_deref() {
        if let Some(owner) = backend.agent_owner(provider.as_str(), agent_id).await? {
            if owner != tenant {
                let error = ApiError::AgentOfAnotherTenant(agent_id.to_owned());
                return Err(rejected(Some(tenant), Some(execution_id), error, bytes).await);
            }
        }
    }

    let data = serde_json::to_string(&event).map_err(|err| ApiError::Internal(Box::new(err)))?;
    if holds_nul(&payload) || holds_nul(&data) {
        // PostgreSQL's jsonb cannot store U+0000: refused here, in our words, not by the database.
        let error = ApiError::NulInPayload;
        return Err(rejected(Some(tenant), Some(execution_id), error, bytes).await);
    }
    let new_event = NewEvent {
        tenant_id: tenant,
        provider: provider.as_str().to_owned(),
        stream_id: execution_id.clone(),
        event_type: event_type.clone(),
        schema_version: CALL_EVENT_SCHEMA_VERSION,
        occurred_at: event.occurred_at,
        data,
        payload: Some(payload),
        metadata: metadata(headers, received_at, bytes.len()),
    };
    match backend.append(new_event).await {
        Ok(outcome) => {
            let receipt = WebhookReceipt::new(execution_id, event_type, outcome);
            if receipt.conflict == Some(true) {
                let fields = backend.conflict_fields(receipt.position).await;
                tracing::warn!(
                    provider = provider.as_str(),
                    execution_id = %receipt.execution_id,
                    status = %receipt.event,
                    position = receipt.position,
                    fields = %fields.join(","),
                    "a re-delivery differs from the recorded webhook: answered as a duplicate and \
                     kept for review (`calltrail admin conflicts`)"
                );
            }
            // The one line per accepted webhook (CONTRACT §3's receipt, as fields).
            tracing::info!(
                provider = provider.as_str(),
                execution_id = %receipt.execution_id,
                status = %receipt.event,
                duplicate = receipt.duplicate,
                position = receipt.position,
                latency_ms = latency_ms(received_at),
                "webhook recorded"
            );
            Ok(WebhookAnswer::Recorded(receipt))
        }
        Err(err) => match ApiError::from_log(err) {
            refused @ ApiError::PayloadRefused(_) => {
                if let ApiError::PayloadRefused(reason) = &refused {
                    tracing::info!(%execution_id, %reason, "the event log refused a webhook's content");
                }
                Err(rejected(Some(tenant), Some(execution_id), refused, bytes).await)
            }
            other => Err(other),
        },
    }
}

/// A complete body whose signature the cached secrets refused, to check again.
struct Recheck<'a> {
    webhooks: &'a dyn WebhookProvider,
    tenant: Uuid,
    headers: &'a HeaderMap,
    public_url: Option<&'a str>,
    received_at: DateTime<Utc>,
    body: &'a [u8],
}

impl Recheck<'_> {
    /// The verdict with the tenant's secrets read again when they changed since they were
    /// cached (a secret set or rotated a moment ago verifies at once), else `first`.
    async fn with_fresher_secrets<B: IntakeBackend>(
        self,
        backend: &B,
        seen: &[ProviderSecret],
        first: SignatureError,
    ) -> Result<Result<(), SignatureError>, ApiError> {
        let provider = self.webhooks.provider();
        let Some(secrets) = backend
            .fresher_provider_secrets(self.tenant, provider, seen)
            .await?
        else {
            return Ok(Err(first));
        };
        let request = VerifyRequest {
            headers: &HeaderAccess(self.headers),
            secrets: &secrets,
            public_url: self.public_url,
            now: self.received_at,
        };
        Ok(self.webhooks.verifier(&request).and_then(|mut verifier| {
            verifier.update(self.body);
            verifier.finish()
        }))
    }
}

/// True when a JSON text holds U+0000 in a string or a key (`\u0000` escaped: JSON text cannot
/// hold it raw). Only a text containing the escape is parsed, so the usual webhook costs one scan.
fn holds_nul(json: &str) -> bool {
    fn any_nul(value: &serde_json::Value) -> bool {
        use serde_json::Value as V;
        match value {
            V::String(text) => text.contains('\0'),
            V::Array(items) => items.iter().any(any_nul),
            V::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || any_nul(v)),
            V::Null | V::Bool(_) | V::Number(_) => false,
        }
    }
    json.contains("\\u0000")
        && serde_json::from_str::<serde_json::Value>(json).is_ok_and(|value| any_nul(&value))
}

/// The answer to a checked message that is not stored.
fn ignore(provider: Provider, ignored: calltrail_core::providers::Ignored) -> WebhookAnswer {
    tracing::debug!(
        provider = provider.as_str(),
        message_type = %ignored.message_type,
        execution_id = ignored.execution_id.as_deref(),
        "webhook ignored: it says nothing about the call's lifecycle"
    );
    WebhookAnswer::Ignored(ignored.into())
}

/// The announced `Content-Length`, when it is a number.
fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The request headers as a provider's signature check reads them.
struct HeaderAccess<'a>(&'a HeaderMap);

impl Headers for HeaderAccess<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Milliseconds since `received_at` (the request's arrival), to the microsecond (up to an
/// hour and more).
fn latency_ms(received_at: DateTime<Utc>) -> f64 {
    let micros = (Utc::now() - received_at).num_microseconds().unwrap_or(0);
    f64::from(u32::try_from(micros.max(0)).unwrap_or(u32::MAX)) / 1000.0
}

/// What the rejected log needs to know about a refused request besides the error and body.
struct Refusal<'a> {
    provider: Provider,
    headers: &'a HeaderMap,
    tenant_id: Option<Uuid>,
    received_at: DateTime<Utc>,
}

/// Keeps a refused request in the rejected log and hands the error back.
async fn reject<B: IntakeBackend>(
    backend: &B,
    refusal: Refusal<'_>,
    execution_id: Option<String>,
    error: ApiError,
    body: Vec<u8>,
) -> ApiError {
    // Every line about a call carries its id: this one's, and the rejected log's if it fails.
    let span = tracing::info_span!("webhook_rejected", execution_id = tracing::field::Empty);
    if let Some(execution_id) = execution_id {
        span.record("execution_id", execution_id.as_str());
    }
    keep_rejected(backend, refusal, error, body)
        .instrument(span)
        .await
}

async fn keep_rejected<B: IntakeBackend>(
    backend: &B,
    refusal: Refusal<'_>,
    error: ApiError,
    body: Vec<u8>,
) -> ApiError {
    let Refusal {
        provider,
        headers,
        tenant_id,
        received_at,
    } = refusal;
    let (code, status, reason) = error.row();
    // The one line per refused webhook: plain values (the tenant's id, never `Some(…)`).
    tracing::info!(
        provider = provider.as_str(),
        code,
        http_status = status.as_u16(),
        tenant_id = tenant_id.as_ref().map(tracing::field::display),
        body_bytes = body.len(),
        latency_ms = latency_ms(received_at),
        "webhook rejected"
    );
    backend
        .record_rejected(RejectedWebhook {
            provider: provider.as_str().to_owned(),
            tenant_id,
            reason: reason.into_owned(),
            code: code.to_owned(),
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
#[path = "intake_tests/mod.rs"]
mod tests;
