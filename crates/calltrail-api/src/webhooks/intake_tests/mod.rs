//! Unit tests of the generic webhook intake against an in-memory backend: Bolna's cases
//! ([`bolna`]), and signatures, ignored messages and streamed large bodies through a test-only
//! signing provider ([`signed`]).

mod bolna;
mod signed;

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use calltrail_core::providers::{ProviderSecret, WebhookProvider};
use calltrail_core::Provider;
use calltrail_eventlog::{AppendOutcome, NewEvent, RejectedWebhook};
use chrono::{DateTime, TimeZone, Utc};
use futures_util::{stream, Stream};
use uuid::Uuid;

use super::{intake, Delivery, IntakeLimits};
use crate::error::ApiError;
use crate::webhooks::{IntakeBackend, WebhookAnswer, WebhookIgnored, WebhookReceipt};

const TOKEN: &str = "tok-a";

/// An in-memory backend: a tenant per token, agent owners, signing secrets, an event log keyed
/// like the real one.
#[derive(Default)]
struct Fake {
    tokens: HashMap<String, Uuid>,
    agents: HashMap<String, Uuid>,
    secrets: Vec<ProviderSecret>,
    /// What a re-read of the secrets finds (`None`: the same as `secrets`); re-reads counted.
    fresher_secrets: Option<Vec<ProviderSecret>>,
    rereads: RefCell<usize>,
    store_down: bool,
    secrets_down: bool,
    log_down: bool,
    refuse_content: bool,
    appended: RefCell<Vec<NewEvent>>,
    rejected: RefCell<Vec<RejectedWebhook>>,
}

impl Fake {
    fn new() -> (Self, Uuid) {
        let tenant = Uuid::new_v4();
        let mut fake = Fake::default();
        fake.tokens.insert(TOKEN.to_owned(), tenant);
        (fake, tenant)
    }
}

impl IntakeBackend for Fake {
    async fn tenant_by_token(&self, token: &str) -> Result<Option<Uuid>, ApiError> {
        if self.store_down {
            return Err(ApiError::Unavailable("down".into()));
        }
        Ok(self.tokens.get(token).copied())
    }

    async fn provider_secrets(
        &self,
        tenant: Uuid,
        provider: Provider,
    ) -> Result<Arc<[ProviderSecret]>, ApiError> {
        assert_eq!(provider, Provider::Bolna);
        assert!(self.tokens.values().any(|t| *t == tenant));
        if self.secrets_down {
            return Err(ApiError::Unavailable("down".into()));
        }
        Ok(self.secrets.clone().into())
    }

    async fn fresher_provider_secrets(
        &self,
        _tenant: Uuid,
        _provider: Provider,
        seen: &[ProviderSecret],
    ) -> Result<Option<Arc<[ProviderSecret]>>, ApiError> {
        *self.rereads.borrow_mut() += 1;
        if self.secrets_down {
            return Err(ApiError::Unavailable("down".into()));
        }
        Ok(self
            .fresher_secrets
            .clone()
            .filter(|fresh| fresh.as_slice() != seen)
            .map(Arc::from))
    }

    async fn agent_owner(&self, provider: &str, agent_id: &str) -> Result<Option<Uuid>, ApiError> {
        assert_eq!(provider, "bolna");
        Ok(self.agents.get(agent_id).copied())
    }

    async fn append(&self, event: NewEvent) -> Result<AppendOutcome, calltrail_eventlog::Error> {
        if self.log_down {
            return Err(calltrail_eventlog::Error::AppenderClosed);
        }
        if self.refuse_content {
            return Err(calltrail_eventlog::Error::InvalidEvent(
                "unsupported Unicode escape sequence".into(),
            ));
        }
        let mut log = self.appended.borrow_mut();
        let key = |e: &NewEvent| {
            (
                e.tenant_id,
                e.provider.clone(),
                e.stream_id.clone(),
                e.event_type.clone(),
            )
        };
        if let Some(index) = log.iter().position(|e| key(e) == key(&event)) {
            let conflict = log[index].payload != event.payload;
            return Ok(AppendOutcome::Duplicate {
                position: i64::try_from(index + 1).unwrap_or(i64::MAX),
                conflict,
            });
        }
        log.push(event);
        Ok(AppendOutcome::Appended {
            position: i64::try_from(log.len()).unwrap_or(i64::MAX),
        })
    }

    async fn record_rejected(&self, rejected: RejectedWebhook) {
        self.rejected.borrow_mut().push(rejected);
    }

    async fn conflict_fields(&self, _position: i64) -> Vec<String> {
        vec!["conversation_duration".to_owned()]
    }
}

/// Headers from `(name, value)` pairs (names in lowercase).
fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

fn received_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// The server's limits, with the webhook limit given.
fn limits(max_body_bytes: usize) -> IntakeLimits {
    IntakeLimits {
        max_body_bytes,
        max_audio_bytes: 64 * max_body_bytes,
        body_timeout: Duration::from_secs(5),
    }
}

/// A body arriving in chunks of at most `chunk` bytes.
fn chunked(body: &[u8], chunk: usize) -> impl Stream<Item = Result<Bytes, Infallible>> + Unpin {
    let chunks: Vec<_> = body
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks)
}

/// One request to the intake.
struct Request<'a> {
    provider: &'a dyn WebhookProvider,
    token: &'a str,
    headers: HeaderMap,
    public_url: Option<&'a str>,
    limits: IntakeLimits,
    chunk: usize,
}

impl<'a> Request<'a> {
    fn new(provider: &'a dyn WebhookProvider, headers: HeaderMap) -> Self {
        Self {
            provider,
            token: TOKEN,
            headers,
            public_url: Some("https://calltrail.example.com/v1/webhooks/bolna/tok-a"),
            limits: limits(2_097_152),
            chunk: 1024,
        }
    }

    async fn send(&self, backend: &Fake, body: &[u8]) -> Result<WebhookAnswer, ApiError> {
        let delivery = Delivery {
            provider: self.provider,
            token: self.token,
            headers: &self.headers,
            public_url: self.public_url,
            body: chunked(body, self.chunk),
            received_at: received_at(),
        };
        intake(backend, self.limits, delivery).await
    }
}

fn receipt(answer: Result<WebhookAnswer, ApiError>) -> Result<WebhookReceipt, ApiError> {
    answer.and_then(|answer| match answer {
        WebhookAnswer::Recorded(receipt) => Ok(receipt),
        WebhookAnswer::Ignored(ignored) => Err(ApiError::Internal(
            format!("expected a receipt, got {ignored:?}").into(),
        )),
    })
}

fn ignored(answer: &Result<WebhookAnswer, ApiError>) -> Option<&WebhookIgnored> {
    match answer {
        Ok(WebhookAnswer::Ignored(ignored)) => Some(ignored),
        _ => None,
    }
}

fn status_of<T>(result: &Result<T, ApiError>) -> Option<StatusCode> {
    result.as_ref().err().map(|e| e.row().1)
}
