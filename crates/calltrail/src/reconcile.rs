//! Reconciliation over the database: [`DbReconcileStore`] implements calltrail-reconcile's
//! storage port (stale calls and the lease from calltrail-projections, API keys opened with
//! `CALLTRAIL_SECRETS_KEY`, events appended through the group-commit appender with
//! `metadata.source = "reconciliation"`), and [`run_once`] / [`periodic`] run it under the
//! lease, for `calltrail reconcile` and `serve`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use calltrail_core::event::CALL_EVENT_SCHEMA_VERSION;
use calltrail_core::providers::ProviderEvent;
use calltrail_core::secrets::SecretsKey;
use calltrail_core::Provider;
use calltrail_eventlog::{AppendOutcome, Appender, EventLog, NewEvent};
use calltrail_projections::credentials::{secret_binding, SecretKind};
use calltrail_projections::reconciliation::{LeaseOutcome, ReconcileRun};
use calltrail_projections::ReadStore;
use calltrail_reconcile::{
    ApiClient, ApiCredential, Candidate, ReconcileStore, Reconciler, RunOptions, RunSummary,
    StoreError, TenantRun,
};
use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::atomic::AtomicU64;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a run holds reconciliation without renewing it (renewed every 10 s while it runs).
pub const LEASE: Duration = Duration::from_secs(60);

/// The event metadata's `source` of a reconciled event (the event log treats a later,
/// differing webhook under its key as a plain duplicate).
pub use calltrail_eventlog::RECONCILIATION_SOURCE as SOURCE;

/// The storage port over the event log and the read side.
pub struct DbReconcileStore {
    log: EventLog,
    store: ReadStore,
    appender: Appender,
    key: Option<SecretsKey>,
    owner: String,
}

impl DbReconcileStore {
    /// A store appending through `appender`, opening API keys with `key`, leasing as `owner`.
    pub fn new(
        log: EventLog,
        store: ReadStore,
        appender: Appender,
        key: Option<SecretsKey>,
        owner: String,
    ) -> Self {
        Self {
            log,
            store,
            appender,
            key,
            owner,
        }
    }
}

impl ReconcileStore for DbReconcileStore {
    async fn candidates(
        &self,
        older_than: Duration,
        provider: Option<Provider>,
    ) -> Result<Vec<Candidate>, StoreError> {
        let calls = self
            .store
            .stale_calls(older_than, provider.map(Provider::as_str))
            .await?;
        Ok(calls
            .into_iter()
            .filter_map(|call| match call.provider.parse::<Provider>() {
                Ok(provider) => Some(Candidate {
                    tenant: call.user_id,
                    provider,
                    call_id: call.execution_id,
                    has_key: call.has_key,
                }),
                Err(_) => None,
            })
            .collect())
    }

    async fn keyed_tenants(
        &self,
        provider: Option<Provider>,
    ) -> Result<Vec<(Uuid, Provider)>, StoreError> {
        let keyed = self
            .store
            .keyed_tenants(provider.map(Provider::as_str))
            .await?;
        Ok(keyed
            .into_iter()
            .filter_map(|(tenant, name)| name.parse::<Provider>().ok().map(|p| (tenant, p)))
            .collect())
    }

    async fn credential(
        &self,
        tenant: Uuid,
        provider: Provider,
    ) -> Result<Option<ApiCredential>, StoreError> {
        let sealed = self
            .store
            .tenancy()
            .provider_secrets(tenant, provider.as_str(), SecretKind::ApiKey)
            .await?;
        // The current key only: a replaced key stops at once.
        let Some(current) = sealed.into_iter().find(|s| s.valid_until.is_none()) else {
            return Ok(None);
        };
        let key = self.key.as_ref().ok_or(
            "an API key is stored but CALLTRAIL_SECRETS_KEY is not set, so it cannot be opened",
        )?;
        let secret = current.open(key, &secret_binding(tenant, provider, SecretKind::ApiKey))?;
        let text = String::from_utf8(secret.expose().to_vec())
            .map_err(|_| "the stored API key is not UTF-8 text")?;
        Ok(Some(ApiCredential::new(text, current.base_url)))
    }

    async fn recorded(
        &self,
        tenant: Uuid,
        provider: Provider,
        call_id: &str,
        event_types: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        let mut recorded = HashSet::new();
        for event_type in event_types {
            if self
                .log
                .has_event(tenant, provider.as_str(), call_id, event_type)
                .await?
            {
                recorded.insert(event_type.clone());
            }
        }
        Ok(recorded)
    }

    async fn append(
        &self,
        tenant: Uuid,
        event: ProviderEvent,
        fetched_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let ProviderEvent {
            event_type,
            event,
            payload,
        } = event;
        let data = serde_json::to_string(&event)?;
        let new_event = NewEvent {
            tenant_id: tenant,
            provider: event.provider.as_str().to_owned(),
            stream_id: event.execution_id.clone(),
            event_type,
            schema_version: CALL_EVENT_SCHEMA_VERSION,
            occurred_at: event.occurred_at,
            data,
            payload: Some(payload),
            metadata: serde_json::json!({ "source": SOURCE, "received_at": fetched_at })
                .to_string(),
        };
        match self.appender.append(new_event).await? {
            AppendOutcome::Appended { .. } => Ok(true),
            AppendOutcome::Duplicate { .. } => Ok(false),
        }
    }

    async fn keep_lease(&self) -> Result<bool, StoreError> {
        Ok(self.store.renew_reconcile_lease(&self.owner, LEASE).await?)
    }

    async fn record_run(&self, run: &TenantRun) -> Result<(), StoreError> {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let row = ReconcileRun {
            provider: run.provider.as_str().to_owned(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            checked: count(run.counts.checked),
            appended: count(run.counts.appended),
            unchanged: count(run.counts.unchanged),
            errors: count(run.counts.errors),
            last_error: run.last_error.clone(),
        };
        Ok(self.store.record_reconcile_run(run.tenant, &row).await?)
    }
}

/// Why a run did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Another process is reconciling.
    Held,
    /// The last run started less than the interval ago.
    NotDue,
}

/// One run under the lease (with `every`: only when the last run started at least that long
/// ago). `Ok(Err(_))` when it did not run.
pub async fn run_once(
    reconciler: &Reconciler<DbReconcileStore>,
    options: RunOptions,
    every: Option<Duration>,
) -> anyhow::Result<Result<RunSummary, Skipped>> {
    let store = reconciler.store();
    match store
        .store
        .take_reconcile_lease(&store.owner, LEASE, every)
        .await?
    {
        LeaseOutcome::Taken => {}
        LeaseOutcome::Held => return Ok(Err(Skipped::Held)),
        LeaseOutcome::NotDue => return Ok(Err(Skipped::NotDue)),
    }
    let result = reconciler.run(options).await;
    if let Err(error) = store.store.release_reconcile_lease(&store.owner).await {
        tracing::warn!(%error, "could not release the reconciliation lease; it frees itself when it runs out");
    }
    Ok(Ok(result?))
}

/// Counters for `/metrics`, added to after each run.
pub trait RunObserver: Send + Sync {
    /// One finished run.
    fn observe(&self, summary: &RunSummary);
}

/// serve's periodic task: every `interval` (checked every `min(interval, 30 s)`), one run by
/// whichever process takes the lease, until `shutdown`.
pub async fn periodic(
    reconciler: Arc<Reconciler<DbReconcileStore>>,
    interval: Duration,
    older_than: Duration,
    observer: Option<Arc<dyn RunObserver>>,
    shutdown: CancellationToken,
) {
    let tick = interval.min(Duration::from_secs(30));
    tracing::info!(
        interval_secs = interval.as_secs(),
        older_than_secs = older_than.as_secs(),
        "periodic reconciliation started"
    );
    let options = RunOptions {
        older_than,
        provider: None,
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            () = shutdown.cancelled() => break,
        }
        let outcome = tokio::select! {
            outcome = run_once(&reconciler, options, Some(interval)) => outcome,
            () = shutdown.cancelled() => {
                // Stopped mid-run: what was appended stays; the lease is handed back.
                let store = reconciler.store();
                if let Err(error) = store.store.release_reconcile_lease(&store.owner).await {
                    tracing::warn!(%error, "could not release the reconciliation lease");
                }
                break;
            }
        };
        match outcome {
            Ok(Ok(summary)) => {
                log_summary(&summary);
                if let Some(observer) = &observer {
                    observer.observe(&summary);
                }
            }
            Ok(Err(skipped)) => tracing::debug!(?skipped, "reconciliation not run"),
            Err(error) => tracing::warn!(%error, "reconciliation run failed; trying again later"),
        }
    }
}

/// The one log line of a run (CONTRACT §6: `{"checked","appended","unchanged","errors"}`).
pub fn log_summary(summary: &RunSummary) {
    let t = &summary.total;
    tracing::info!(
        checked = t.checked,
        appended = t.appended,
        unchanged = t.unchanged,
        errors = t.errors,
        lease_lost = summary.lease_lost,
        "reconciliation run finished"
    );
}

/// A client for the provider APIs at `rate` requests per second each.
pub fn client(rate: f64) -> anyhow::Result<Arc<ApiClient>> {
    let config = calltrail_reconcile::ClientConfig {
        rate_per_second: rate,
        ..calltrail_reconcile::ClientConfig::default()
    };
    Ok(Arc::new(ApiClient::new(config)?))
}

/// How `serve` reconciles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconcileSettings {
    /// How often (`CALLTRAIL_RECONCILE_INTERVAL`); zero turns the periodic task off.
    pub interval: Duration,
    /// Only calls whose last event is older than this (`CALLTRAIL_RECONCILE_OLDER_THAN`).
    pub older_than: Duration,
    /// Requests per second to each provider's API (`CALLTRAIL_RECONCILE_RATE`).
    pub rate: f64,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15 * 60),
            older_than: Duration::from_secs(15 * 60),
            rate: calltrail_reconcile::client::DEFAULT_RATE,
        }
    }
}

/// Labels of the reconciliation counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProviderLabels {
    provider: &'static str,
}

/// `calltrail_reconcile_{checked,appended,unchanged,errors}_total{provider}` and
/// `calltrail_reconcile_last_run_timestamp_seconds`, fed by this process's runs.
pub struct ReconcileMetrics {
    checked: Family<ProviderLabels, Counter>,
    appended: Family<ProviderLabels, Counter>,
    unchanged: Family<ProviderLabels, Counter>,
    errors: Family<ProviderLabels, Counter>,
    last_run: Gauge<f64, AtomicU64>,
}

impl ReconcileMetrics {
    /// Registers the metrics on the process's registry.
    pub fn register(metrics: &calltrail_api::Metrics) -> Arc<Self> {
        let this = Arc::new(Self {
            checked: Family::default(),
            appended: Family::default(),
            unchanged: Family::default(),
            errors: Family::default(),
            last_run: Gauge::default(),
        });
        metrics.with_registry(|r| {
            r.register(
                "reconcile_checked",
                "Calls reconciliation checked against their provider's API, by provider",
                this.checked.clone(),
            );
            r.register(
                "reconcile_appended",
                "Reconciled calls that got at least one status from the API, by provider",
                this.appended.clone(),
            );
            r.register(
                "reconcile_unchanged",
                "Reconciled calls whose log already had what the API shows, by provider",
                this.unchanged.clone(),
            );
            r.register(
                "reconcile_errors",
                "Calls reconciliation could not fetch or read, by provider",
                this.errors.clone(),
            );
            r.register(
                "reconcile_last_run_timestamp_seconds",
                "When this process's last reconciliation run finished (Unix seconds; 0: none yet)",
                this.last_run.clone(),
            );
        });
        this
    }
}

impl RunObserver for ReconcileMetrics {
    fn observe(&self, summary: &RunSummary) {
        for (provider, counts) in &summary.providers {
            let labels = ProviderLabels {
                provider: provider.as_str(),
            };
            self.checked.get_or_create(&labels).inc_by(counts.checked);
            self.appended.get_or_create(&labels).inc_by(counts.appended);
            self.unchanged
                .get_or_create(&labels)
                .inc_by(counts.unchanged);
            self.errors.get_or_create(&labels).inc_by(counts.errors);
        }
        let millis = summary.finished_at.timestamp_millis();
        #[allow(clippy::as_conversions)] // Unix milliseconds fit an f64 exactly until 2255.
        self.last_run.set(millis as f64 / 1000.0);
    }
}

/// This process's name in the lease.
pub fn owner() -> String {
    format!("{}-{}", std::process::id(), Uuid::new_v4().simple())
}
