//! The OpenAI Responses API client: one `POST {base_url}/responses` per analysis, retried on
//! transient failures, its `output_text` parsed into a [`LeadAnalysis`].
//!
//! # Retry policy
//! - At most `max_retries` retries after the first request (3 ⇒ at most 4 requests).
//! - Retried: 429 (rate limit), 408, 409, every 5xx, connection errors, per-request timeouts,
//!   a 200 whose response `status` is `failed` with `server_error`/`rate_limit_exceeded`, and
//!   any status sent with `x-should-retry: true`.
//! - Final at once: 429 with `insufficient_quota` (or `credit_balance_exhausted`,
//!   `billing_hard_limit_reached`), any other 4xx (401/403 key, 404 prompt, 400 request),
//!   `x-should-retry: false`, a body that is not a Responses object, and model output that
//!   does not parse — asking again would only pay for the same answer.
//! - Wait before retry *n*: the server's `retry-after-ms`, else `Retry-After` seconds, used as
//!   given; without a hint the [`Backoff`] delay `initial × 2^(n−1)` capped at `max` (0.5 s → 8 s,
//!   as the official SDKs), minus up to 25 % random jitter ([`Backoff::jittered`]).
//!   A hint above `max_retry_after` (60 s) ends the job at once as retryable later
//!   ([`AnalysisError::RetryAfterTooLong`]) instead of holding a worker for minutes.
//!
//! Neither the API key nor transcripts are ever logged; the key header is marked sensitive.

use std::time::Duration;

use calltrail_core::{parse_model_output, AnalysisInput, AnalysisMeta, Backoff, LeadAnalysis};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use tracing::{info, warn};

use crate::error::{is_transient_response_code, AnalysisError};
use crate::responses::{
    error_message, is_valid_prompt_id, parse_error_body, read_response, request_body, Completed,
    ResponseFormat,
};
use crate::retry::{jitter_unit, server_hint};

/// `OPENAI_BASE_URL` default.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// `OPENAI_TIMEOUT_MS` default: 30 s per request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(30_000);
/// `OPENAI_MAX_RETRIES` default: 3 retries, at most 4 requests.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Waits between attempts without a server hint: 0.5 s doubling to 8 s, as the official SDKs.
pub const DEFAULT_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(500), Duration::from_secs(8));
/// Longest server-requested wait honoured within one job.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// An OpenAI API key; `Debug` never prints it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Settings of an [`OpenAiClient`] (CONTRACT §2 `OPENAI_*`).
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// `OPENAI_API_KEY`.
    pub api_key: ApiKey,
    /// `OPENAI_BASE_URL`, without the `/responses` path.
    pub base_url: String,
    /// `OPENAI_MODEL`; `None` uses the model stored with the prompt.
    pub model: Option<String>,
    /// `OPENAI_TIMEOUT_MS`: limit for one request, body included.
    pub timeout: Duration,
    /// `OPENAI_MAX_RETRIES`: retries after the first request.
    pub max_retries: u32,
    /// Waits between attempts when the server gives no hint (jittered).
    pub backoff: Backoff,
    /// Longest server-requested wait honoured; a longer one ends the job as retryable later.
    pub max_retry_after: Duration,
    /// How structured output is requested.
    pub response_format: ResponseFormat,
}

impl OpenAiConfig {
    /// The defaults of CONTRACT §2 with this key.
    pub fn new(api_key: ApiKey) -> Self {
        OpenAiConfig {
            api_key,
            base_url: DEFAULT_BASE_URL.to_owned(),
            model: None,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff: DEFAULT_BACKOFF,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            response_format: ResponseFormat::default(),
        }
    }
}

/// A Responses API client; cheap to clone, connections are pooled and reused.
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    endpoint: String,
    config: OpenAiConfig,
}

impl OpenAiClient {
    /// Validates the configuration and builds the connection pool.
    pub fn new(mut config: OpenAiConfig) -> Result<Self, AnalysisError> {
        let key = config.api_key.0.trim();
        if key.is_empty() {
            return Err(AnalysisError::Config("OPENAI_API_KEY is empty".to_owned()));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
            AnalysisError::Config(
                "OPENAI_API_KEY contains characters that cannot be sent in an HTTP header"
                    .to_owned(),
            )
        })?;
        auth.set_sensitive(true);
        config.base_url = config.base_url.trim().trim_end_matches('/').to_owned();
        let valid_url = reqwest::Url::parse(&config.base_url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !valid_url {
            return Err(AnalysisError::Config(format!(
                "OPENAI_BASE_URL `{}` is not an http(s) URL",
                config.base_url
            )));
        }
        if config.timeout.is_zero() {
            return Err(AnalysisError::Config(
                "OPENAI_TIMEOUT_MS must be above 0".to_owned(),
            ));
        }
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("calltrail/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| AnalysisError::Config(format!("cannot build the HTTP client: {e}")))?;
        let endpoint = format!("{}/responses", config.base_url);
        Ok(OpenAiClient {
            http,
            endpoint,
            config,
        })
    }

    /// The configuration in use (key redacted in `Debug`).
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// Runs the stored prompt `prompt_id` on the input's transcript(s) and parses the answer.
    #[tracing::instrument(name = "openai_analyze", skip_all, fields(
        execution_id = %input.execution_id, kind = input.kind.as_str(), prompt_id = %prompt_id,
    ))]
    pub async fn analyze(
        &self,
        prompt_id: &str,
        input: &AnalysisInput,
    ) -> Result<(LeadAnalysis, AnalysisMeta), AnalysisError> {
        if !is_valid_prompt_id(prompt_id) {
            return Err(AnalysisError::InvalidPromptId(prompt_id.to_owned()));
        }
        let body = request_body(
            prompt_id,
            self.config.model.as_deref(),
            self.config.response_format,
            input,
        );
        let payload = serde_json::to_vec(&body)
            .map_err(|e| AnalysisError::Config(format!("cannot encode the request: {e}")))?;
        let max_attempts = self.config.max_retries.saturating_add(1);
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let transient = match self.send(prompt_id, &payload).await {
                Outcome::Done(text, meta) => {
                    let analysis = parse_model_output(&text)?;
                    info!(
                        attempts = attempt,
                        model = meta.model.as_deref().unwrap_or("-"),
                        response_id = meta.response_id.as_deref().unwrap_or("-"),
                        tokens_used = meta.tokens_used.unwrap_or(0),
                        "OpenAI analysis completed"
                    );
                    return Ok((analysis, meta));
                }
                Outcome::Final(error) => return Err(error),
                Outcome::Transient(t) => t,
            };
            if attempt >= max_attempts || !transient.retry_allowed {
                return Err(self.exhausted(transient.kind, attempt));
            }
            let delay = match transient.hint {
                Some(wait) if wait > self.config.max_retry_after => {
                    return Err(AnalysisError::RetryAfterTooLong {
                        wait,
                        limit: self.config.max_retry_after,
                        attempts: attempt,
                    });
                }
                Some(wait) => wait,
                None => self.config.backoff.jittered(attempt, jitter_unit()),
            };
            warn!(
                attempt,
                max_attempts,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                reason = transient.kind.describe(),
                request_id = transient.request_id.as_deref().unwrap_or("-"),
                "OpenAI request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One request and its classification.
    async fn send(&self, prompt_id: &str, payload: &[u8]) -> Outcome {
        let sent = self
            .http
            .post(&self.endpoint)
            .body(payload.to_vec())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return transport_failure(e),
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let hints = Hints {
            delay: server_hint(
                header("retry-after-ms").as_deref(),
                header("retry-after").as_deref(),
            ),
            should_retry: header("x-should-retry").map(|v| v.eq_ignore_ascii_case("true")),
            request_id: header("x-request-id"),
        };
        match response.bytes().await {
            Ok(body) => classify(status, hints, &body, prompt_id),
            Err(e) => transport_failure(e),
        }
    }

    /// The error for a transient failure that will not be retried any more.
    fn exhausted(&self, kind: TransientKind, attempts: u32) -> AnalysisError {
        match kind {
            TransientKind::RateLimited { message } => {
                AnalysisError::RateLimited { attempts, message }
            }
            TransientKind::Server { status, message } => AnalysisError::ServerError {
                status,
                attempts,
                message,
            },
            TransientKind::Timeout => AnalysisError::Timeout {
                timeout_ms: self.config.timeout.as_millis(),
                attempts,
            },
            TransientKind::Connection(source) => AnalysisError::Unreachable {
                base_url: self.config.base_url.clone(),
                attempts,
                source: Box::new(source),
            },
            TransientKind::Failed { code, message } => {
                AnalysisError::ResponseFailed { code, message }
            }
        }
    }
}

/// What one request came to.
enum Outcome {
    Done(String, AnalysisMeta),
    Final(AnalysisError),
    Transient(Transient),
}

struct Transient {
    kind: TransientKind,
    hint: Option<Duration>,
    request_id: Option<String>,
    retry_allowed: bool,
}

enum TransientKind {
    RateLimited { message: String },
    Server { status: u16, message: String },
    Timeout,
    Connection(reqwest::Error),
    Failed { code: String, message: String },
}

impl TransientKind {
    /// A short log word; never the message (it may quote request content).
    fn describe(&self) -> String {
        match self {
            TransientKind::RateLimited { .. } => "rate limited (429)".to_owned(),
            TransientKind::Server { status, .. } => format!("server error ({status})"),
            TransientKind::Timeout => "timed out".to_owned(),
            TransientKind::Connection(_) => "connection failed".to_owned(),
            TransientKind::Failed { code, .. } => format!("response failed ({code})"),
        }
    }
}

/// Response headers that steer retries.
struct Hints {
    delay: Option<Duration>,
    should_retry: Option<bool>,
    request_id: Option<String>,
}

fn transport_failure(e: reqwest::Error) -> Outcome {
    let kind = if e.is_timeout() {
        TransientKind::Timeout
    } else {
        TransientKind::Connection(e)
    };
    Outcome::Transient(Transient {
        kind,
        hint: None,
        request_id: None,
        retry_allowed: true,
    })
}

/// Error codes of a 429 that only a person can fix.
const QUOTA_CODES: [&str; 3] = [
    "insufficient_quota",
    "credit_balance_exhausted",
    "billing_hard_limit_reached",
];

/// Sorts a response into done, final or transient (see the module's retry policy).
fn classify(status: u16, hints: Hints, body: &[u8], prompt_id: &str) -> Outcome {
    let transient = |kind, hints: Hints| {
        Outcome::Transient(Transient {
            kind,
            hint: hints.delay,
            request_id: hints.request_id,
            retry_allowed: hints.should_retry != Some(false),
        })
    };
    if (200..300).contains(&status) {
        return match read_response(body) {
            Ok(Completed::Text(text, meta)) => Outcome::Done(text, meta),
            Ok(Completed::Failed { code, message }) if is_transient_response_code(&code) => {
                transient(TransientKind::Failed { code, message }, hints)
            }
            Ok(Completed::Failed { code, message }) => {
                Outcome::Final(AnalysisError::ResponseFailed { code, message })
            }
            Err(e) => Outcome::Final(e),
        };
    }
    let error = parse_error_body(body);
    let message = error_message(error.as_ref(), body);
    let code = error
        .as_ref()
        .and_then(|e| e.code.clone().or_else(|| e.kind.clone()))
        .unwrap_or_default();
    if status == 429 && !QUOTA_CODES.contains(&code.as_str()) {
        return transient(TransientKind::RateLimited { message }, hints);
    }
    if matches!(status, 408 | 409 | 500..=599)
        || (hints.should_retry == Some(true) && status != 429)
    {
        return transient(TransientKind::Server { status, message }, hints);
    }
    let names_prompt = error.as_ref().is_some_and(|e| {
        e.param.as_deref().is_some_and(|p| p.starts_with("prompt"))
            || e.message
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("prompt"))
    });
    let not_found = status == 404
        || (status == 400 && names_prompt && {
            let m = message.to_ascii_lowercase();
            m.contains("not found") || m.contains("does not exist")
        });
    Outcome::Final(match status {
        429 => AnalysisError::QuotaExhausted { code, message },
        401 | 403 => AnalysisError::Unauthorized { status, message },
        _ if not_found => AnalysisError::PromptNotFound {
            prompt_id: prompt_id.to_owned(),
            status,
            message,
        },
        _ => AnalysisError::Rejected { status, message },
    })
}
