//! [`ApiClient`]: GETs one call from a provider's API.
//!
//! - Timeouts: `connect_timeout` to open a connection, `timeout` for the whole request.
//! - Retries (at most `max_retries` after the first attempt) on 429, 5xx, timeouts and
//!   connection failures, `backoff` apart (the shared [`Backoff`], jittered by up to 25 %), or
//!   after the server's `Retry-After` (seconds or an HTTP date) when a 429 or 503 sends one; a
//!   hint longer than `max_retry_after` ends the attempt at once.
//! - Never retried: 401/403 (the key is refused), 404 (no such call), other 4xx, an answer that
//!   is not the call's object or is larger than [`MAX_BODY_BYTES`].
//! - Rate limit: each provider's requests (retries included) are spaced to at most
//!   `rate_per_second` ([`RateLimit`]), whoever makes them.

use std::collections::HashMap;
use std::time::Duration;

use calltrail_core::providers::ProviderEvent;
use calltrail_core::{Backoff, Provider};
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use crate::providers;
use crate::rate::RateLimit;
use crate::{ApiCredential, Error};

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for a whole answer.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Waits between attempts without a server hint.
    pub backoff: Backoff,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
    /// Requests per second per provider (`CALLTRAIL_RECONCILE_RATE`).
    pub rate_per_second: f64,
}

/// The default requests per second per provider.
pub const DEFAULT_RATE: f64 = 5.0;

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
            max_retries: 3,
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(8)),
            max_retry_after: Duration::from_secs(60),
            rate_per_second: DEFAULT_RATE,
        }
    }
}

/// One client for every provider's call API (cheap to share: hold it in an `Arc`).
#[derive(Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    config: ClientConfig,
    limits: HashMap<Provider, RateLimit>,
}

/// What a failed attempt leaves for the next one.
enum Attempt {
    /// Stop with this error.
    Fail(Error),
    /// Retry after the server's hint, or the backoff's delay, or stop with this error.
    Retry {
        hint: Option<Duration>,
        error: Error,
    },
}

impl ApiClient {
    /// A client with this configuration.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!(
                "calltrail/",
                env!("CARGO_PKG_VERSION"),
                " (reconciliation)"
            ))
            .build()
            .map_err(Error::Client)?;
        let limits = Provider::ALL
            .iter()
            .map(|p| (*p, RateLimit::new(config.rate_per_second)))
            .collect();
        Ok(Self {
            http,
            config,
            limits,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Fetches `call_id` from `provider`'s API with `credential`: the provider events its
    /// answer stands for (none when the API shows nothing a webhook would report yet).
    #[tracing::instrument(skip_all, fields(provider = %provider, execution_id = %call_id))]
    pub async fn fetch(
        &self,
        provider: Provider,
        credential: &ApiCredential,
        call_id: &str,
    ) -> Result<Vec<ProviderEvent>, Error> {
        let request = providers::request(provider, credential, call_id)?;
        let mut attempts = 0u32;
        loop {
            if let Some(limit) = self.limits.get(&provider) {
                limit.acquire().await;
            }
            attempts = attempts.saturating_add(1);
            let outcome = self.attempt(provider, &request, call_id, attempts).await;
            let (hint, error) = match outcome {
                Ok(events) => return Ok(events),
                Err(Attempt::Fail(error)) => return Err(error),
                Err(Attempt::Retry { hint, error }) => (hint, error),
            };
            if attempts > self.config.max_retries {
                return Err(error);
            }
            let wait = match hint {
                Some(hint) if hint > self.config.max_retry_after => {
                    return Err(Error::RetryAfterTooLong {
                        provider,
                        wait_secs: hint.as_secs(),
                        limit_secs: self.config.max_retry_after.as_secs(),
                    })
                }
                Some(hint) => hint,
                None => self.config.backoff.jittered(attempts, jitter_unit()),
            };
            tracing::info!(
                %error,
                attempt = attempts,
                retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "provider API request failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(
        &self,
        provider: Provider,
        request: &providers::Request,
        call_id: &str,
        attempts: u32,
    ) -> Result<Vec<ProviderEvent>, Attempt> {
        let sent = self
            .http
            .get(&request.url)
            .header(request.header, &request.value)
            .header("accept", "application/json")
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(source) => return Err(self.transport(provider, source, attempts)),
        };
        let status = response.status();
        let hint = retry_after(response.headers(), Utc::now());
        if status.is_success() {
            let body = match read_capped(response).await {
                Ok(Some(body)) => body,
                Ok(None) => {
                    return Err(Attempt::Fail(Error::Garbage {
                        provider,
                        reason: format!("the answer is larger than {MAX_BODY_BYTES} bytes"),
                    }))
                }
                Err(source) => return Err(self.transport(provider, source, attempts)),
            };
            return providers::events(provider, call_id, &body, Utc::now()).map_err(Attempt::Fail);
        }
        let error = Error::Status {
            provider,
            status: status.as_u16(),
            attempts,
        };
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(Attempt::Fail(Error::Unauthorized {
                    provider,
                    status: status.as_u16(),
                }))
            }
            StatusCode::NOT_FOUND => Err(Attempt::Fail(Error::NotFound {
                provider,
                call_id: call_id.to_owned(),
            })),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                Err(Attempt::Retry { hint, error })
            }
            s if s.is_server_error() => Err(Attempt::Retry { hint: None, error }),
            _ => Err(Attempt::Fail(error)),
        }
    }

    fn transport(&self, provider: Provider, source: reqwest::Error, attempts: u32) -> Attempt {
        let error = if source.is_timeout() {
            Error::Timeout {
                provider,
                timeout_ms: self.config.timeout.as_millis(),
                attempts,
            }
        } else {
            Error::Transport {
                provider,
                attempts,
                source,
            }
        };
        if error_is_retryable(&error) {
            Attempt::Retry { hint: None, error }
        } else {
            Attempt::Fail(error)
        }
    }
}

/// The largest answer read: a call object with its transcript and messages is far smaller.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The body, read chunk by chunk up to [`MAX_BODY_BYTES`]; `None` beyond.
async fn read_capped(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let declared = response.content_length().unwrap_or(0);
    if usize::try_from(declared).map_or(true, |n| n > MAX_BODY_BYTES) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len().saturating_add(chunk.len()) > MAX_BODY_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Timeouts and connection failures are retried; a body that broke off too.
fn error_is_retryable(error: &Error) -> bool {
    matches!(error, Error::Timeout { .. } | Error::Transport { .. })
}

/// The wait a `Retry-After` header asks for: delay seconds, or an HTTP date (how far it is
/// from `now`; a date in the past means at once).
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // An HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`) is an RFC 2822 date.
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// A uniformly random number in `[0, 1)`; 0.5 when the system gives no randomness.
fn jitter_unit() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:30Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(&headers("3"), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO),
            "a date in the past: at once"
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
