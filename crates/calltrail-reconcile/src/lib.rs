//! calltrail-reconcile — reconciliation (docs/CONTRACT.md §6): a call whose last webhook never
//! came is fetched from its provider's API, and the statuses the API shows are appended as the
//! provider events the webhooks would have produced, under the same event keys.
//!
//! Knows no storage: the binary implements [`run::ReconcileStore`] over the event log and the
//! read side (as it implements the analysis worker's ports).
//!
//! Modules:
//! - [`client`]: [`ApiClient`], one HTTP client for every provider's call API: connect and
//!   request timeouts, retries on the shared [`calltrail_core::Backoff`] honouring
//!   `Retry-After` (seconds or an HTTP date) on 429/503, a per-provider rate limit.
//! - [`providers`]: each provider's request (endpoint, authentication) and the mapping of its
//!   call object into [`calltrail_core::providers::ProviderEvent`]s through the provider's own
//!   webhook parser.
//! - [`rate`]: [`rate::RateLimit`], requests spaced evenly at most N per second.
//! - [`run`]: [`run::Reconciler`], one run over the calls the store names, counting
//!   `checked`, `appended`, `unchanged` and `errors` per tenant and provider.

pub mod client;
pub mod providers;
pub mod rate;
pub mod run;

pub use client::{ApiClient, ClientConfig};
pub use run::{Candidate, Counts, ReconcileStore, Reconciler, RunOptions, RunSummary, TenantRun};

use calltrail_core::Provider;

/// A storage failure (kept whole for the log).
pub type StoreError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A tenant's API credential for one provider, decrypted. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiCredential {
    key: String,
    base_url: Option<String>,
}

impl ApiCredential {
    /// A key (Twilio: `AccountSid:AuthToken`) and, when not the provider's own, the API's base URL.
    pub fn new(key: impl Into<String>, base_url: Option<String>) -> Self {
        Self {
            key: key.into(),
            base_url: base_url.filter(|u| !u.trim().is_empty()),
        }
    }

    /// The key itself, for the request's authentication header only.
    pub fn expose(&self) -> &str {
        &self.key
    }

    /// The base URL given with the key, if any.
    pub fn base_url(&self) -> Option<&str> {
        self.base_url.as_deref()
    }
}

impl std::fmt::Debug for ApiCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCredential")
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// Why one call could not be reconciled, or a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The provider refused the credential (401/403): not retried.
    #[error("{provider} refused the API key ({status}): set a valid one with `calltrail admin set-provider-api-key`")]
    Unauthorized {
        /// The provider.
        provider: Provider,
        /// 401 or 403.
        status: u16,
    },
    /// The provider has no such call (404): not retried.
    #[error("{provider} has no call `{call_id}` (404): wrong account or base URL, or the call was deleted")]
    NotFound {
        /// The provider.
        provider: Provider,
        /// The call asked for.
        call_id: String,
    },
    /// Any other error status, after the retries a 429 or 5xx gets.
    #[error("{provider} answered HTTP {status} (after {attempts} attempts)")]
    Status {
        /// The provider.
        provider: Provider,
        /// The last status.
        status: u16,
        /// Requests made.
        attempts: u32,
    },
    /// The provider asked to wait longer than the client may.
    #[error("{provider} asked to wait {wait_secs} s before retrying (Retry-After), more than the {limit_secs} s allowed")]
    RetryAfterTooLong {
        /// The provider.
        provider: Provider,
        /// What it asked for.
        wait_secs: u64,
        /// The most the client waits.
        limit_secs: u64,
    },
    /// No answer within the request timeout, after the retries.
    #[error("{provider} did not answer within {timeout_ms} ms (after {attempts} attempts)")]
    Timeout {
        /// The provider.
        provider: Provider,
        /// The request timeout.
        timeout_ms: u128,
        /// Requests made.
        attempts: u32,
    },
    /// The API could not be reached (connection refused, DNS, TLS), after the retries.
    #[error("cannot reach {provider}'s API (after {attempts} attempts): {source}")]
    Transport {
        /// The provider.
        provider: Provider,
        /// Requests made.
        attempts: u32,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The answer is not a call object calltrail can read.
    #[error("{provider}'s answer is not a call calltrail can read: {reason}")]
    Garbage {
        /// The provider.
        provider: Provider,
        /// What is wrong with it.
        reason: String,
    },
    /// The stored credential cannot be used as this provider's key.
    #[error("the {provider} API key cannot be used: {reason}")]
    InvalidKey {
        /// The provider.
        provider: Provider,
        /// Why.
        reason: &'static str,
    },
    /// The stored base URL is not an http(s) URL.
    #[error("the {provider} API base URL `{url}` is not an http:// or https:// URL")]
    InvalidBaseUrl {
        /// The provider.
        provider: Provider,
        /// The URL as stored.
        url: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[source] StoreError),
}

impl Error {
    /// Whether the tenant's credential itself is refused, so the tenant's other calls of this
    /// provider are not tried in this run.
    pub fn is_credential_problem(&self) -> bool {
        matches!(
            self,
            Error::Unauthorized { .. } | Error::InvalidKey { .. } | Error::InvalidBaseUrl { .. }
        )
    }
}
