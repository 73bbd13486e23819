//! One reconciliation run ([`Reconciler::run`]) over the storage ports the binary implements
//! ([`ReconcileStore`]).
//!
//! For every call the store names (not in a terminal status, last event older than the
//! threshold): the tenant's credential for the call's provider (a tenant without one is skipped,
//! counted nowhere), the call from the provider's API, and of the provider events its answer
//! stands for, those whose event type the log does not have yet are appended. Each call counts
//! once: `appended` (at least one event appended), `unchanged` (the log already had them all,
//! or the API shows nothing new) or `errors` (it could not be fetched or read; a 404 is an
//! error too: the provider does not know the call). Every tenant with a key gets a result per
//! provider, zero counts included. Once a tenant's key is refused (401/403),
//! its other calls of that provider are errors without a request.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use calltrail_core::providers::ProviderEvent;
use calltrail_core::Provider;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::client::ApiClient;
use crate::{ApiCredential, Error, StoreError};

/// A call to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its tenant.
    pub tenant: Uuid,
    /// Its provider.
    pub provider: Provider,
    /// The provider's call id.
    pub call_id: String,
    /// Whether the tenant has an API key for the provider.
    pub has_key: bool,
}

/// What a run may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Only calls whose last event is older than this.
    pub older_than: Duration,
    /// Only this provider's calls.
    pub provider: Option<Provider>,
}

/// The storage a run needs (implemented by the binary over the event log and the read side).
pub trait ReconcileStore: Send + Sync {
    /// Calls not in a terminal status whose last event is older than `older_than`.
    fn candidates(
        &self,
        older_than: Duration,
        provider: Option<Provider>,
    ) -> impl Future<Output = Result<Vec<Candidate>, StoreError>> + Send;
    /// Every tenant with a current API key, with its provider (of `provider` only, when given).
    fn keyed_tenants(
        &self,
        provider: Option<Provider>,
    ) -> impl Future<Output = Result<Vec<(Uuid, Provider)>, StoreError>> + Send;
    /// The tenant's current API credential for the provider.
    fn credential(
        &self,
        tenant: Uuid,
        provider: Provider,
    ) -> impl Future<Output = Result<Option<ApiCredential>, StoreError>> + Send;
    /// Which of `event_types` the log already has for this call.
    fn recorded(
        &self,
        tenant: Uuid,
        provider: Provider,
        call_id: &str,
        event_types: &[String],
    ) -> impl Future<Output = Result<HashSet<String>, StoreError>> + Send;
    /// Appends the event as coming from reconciliation; `false` when its key was already
    /// recorded meanwhile (a webhook came first).
    fn append(
        &self,
        tenant: Uuid,
        event: ProviderEvent,
        fetched_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Keeps this process's hold on reconciliation; `false` when another process took it.
    fn keep_lease(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Stores one tenant's result for one provider.
    fn record_run(&self, run: &TenantRun) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Calls by what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls looked at.
    pub checked: u64,
    /// Calls that got at least one event.
    pub appended: u64,
    /// Calls whose log already had everything the API shows.
    pub unchanged: u64,
    /// Calls that could not be fetched or read.
    pub errors: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.checked += other.checked;
        self.appended += other.appended;
        self.unchanged += other.unchanged;
        self.errors += other.errors;
    }
}

/// One tenant's result for one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantRun {
    /// The tenant.
    pub tenant: Uuid,
    /// The provider.
    pub provider: Provider,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When this tenant's calls were done.
    pub finished_at: DateTime<Utc>,
    /// The counts.
    pub counts: Counts,
    /// The last error, when there was one.
    pub last_error: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// Every provider together.
    pub total: Counts,
    /// Per provider (every provider with a checked call or a tenant's key).
    pub providers: BTreeMap<Provider, Counts>,
    /// Per tenant and provider, as stored.
    pub tenants: Vec<TenantRun>,
    /// Whether the run stopped early because another process took reconciliation over.
    pub lease_lost: bool,
}

/// Runs reconciliation over a store with a client.
#[derive(Debug)]
pub struct Reconciler<S> {
    store: S,
    client: std::sync::Arc<ApiClient>,
    renewal: Duration,
}

/// How often a run renews its lease while it runs.
const LEASE_RENEWAL: Duration = Duration::from_secs(10);

impl<S: ReconcileStore> Reconciler<S> {
    /// A reconciler over `store`, asking the providers through `client`.
    pub fn new(store: S, client: std::sync::Arc<ApiClient>) -> Self {
        Self {
            store,
            client,
            renewal: LEASE_RENEWAL,
        }
    }

    /// Renews the lease this often while a run goes on (default 10 s).
    pub fn with_lease_renewal(mut self, every: Duration) -> Self {
        self.renewal = every;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// One run. Fails only when storage fails before any call was checked (a storage
    /// failure on one call counts as that call's error).
    #[tracing::instrument(skip_all, fields(provider = ?options.provider, older_than_secs = options.older_than.as_secs()))]
    pub async fn run(&self, options: RunOptions) -> Result<RunSummary, Error> {
        let started_at = Utc::now();
        let candidates = self
            .store
            .candidates(options.older_than, options.provider)
            .await
            .map_err(Error::Store)?;
        // Each provider's calls in their own pass, side by side: a slow or hanging provider
        // (its rate limit, retries, timeouts) does not hold the others back.
        let mut by_provider: BTreeMap<Provider, Vec<Candidate>> = BTreeMap::new();
        for candidate in candidates {
            by_provider
                .entry(candidate.provider)
                .or_default()
                .push(candidate);
        }
        let lease_lost = AtomicBool::new(false);
        let passes = by_provider
            .into_values()
            .map(|calls| self.provider_pass(calls, started_at, &lease_lost));
        // The lease is renewed on its own clock while the passes run, however long one call
        // takes (a hanging provider: its timeouts and retries).
        let passes = futures_util::future::join_all(passes);
        tokio::pin!(passes);
        let results = loop {
            tokio::select! {
                results = &mut passes => break results,
                () = tokio::time::sleep(self.renewal) => match self.store.keep_lease().await {
                    Ok(true) => {}
                    Ok(false) => {
                        if !lease_lost.swap(true, Ordering::Relaxed) {
                            tracing::warn!("another process took reconciliation over; stopping this run");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "could not renew the reconciliation lease"),
                },
            }
        };
        let mut runs: BTreeMap<(Uuid, Provider), TenantRun> = BTreeMap::new();
        let mut skipped: BTreeMap<(Uuid, Provider), u64> = BTreeMap::new();
        for (pass_runs, pass_skipped) in results {
            runs.extend(pass_runs);
            skipped.extend(pass_skipped);
        }
        let lease_lost = lease_lost.load(Ordering::Relaxed);
        // Tenants with a key and nothing to check get a result too: their last run checked 0.
        if !lease_lost {
            match self.store.keyed_tenants(options.provider).await {
                Ok(keyed) => {
                    for (tenant, provider) in keyed {
                        let idle = Candidate {
                            tenant,
                            provider,
                            call_id: String::new(),
                            has_key: true,
                        };
                        entry(&mut runs, &idle, started_at);
                    }
                }
                Err(error) => tracing::warn!(%error, "could not list the tenants with API keys"),
            }
        }
        for ((tenant, provider), calls) in skipped {
            tracing::debug!(%tenant, %provider, calls, "no API key for this provider: calls not reconciled");
        }
        let finished_at = Utc::now();
        let mut total = Counts::default();
        let mut providers: BTreeMap<Provider, Counts> = BTreeMap::new();
        let mut tenants = Vec::with_capacity(runs.len());
        for (_, mut run) in runs {
            run.finished_at = finished_at;
            total.add(&run.counts);
            providers.entry(run.provider).or_default().add(&run.counts);
            if let Err(error) = self.store.record_run(&run).await {
                tracing::warn!(%error, tenant = %run.tenant, provider = %run.provider, "could not store the reconciliation result");
            }
            tenants.push(run);
        }
        Ok(RunSummary {
            started_at,
            finished_at,
            total,
            providers,
            tenants,
            lease_lost,
        })
    }

    /// One provider's calls, in order: the results per tenant and the calls skipped for want
    /// of a key.
    async fn provider_pass(
        &self,
        candidates: Vec<Candidate>,
        started_at: DateTime<Utc>,
        lease_lost: &AtomicBool,
    ) -> (
        BTreeMap<(Uuid, Provider), TenantRun>,
        BTreeMap<(Uuid, Provider), u64>,
    ) {
        let mut runs: BTreeMap<(Uuid, Provider), TenantRun> = BTreeMap::new();
        let mut credentials: HashMap<(Uuid, Provider), Option<ApiCredential>> = HashMap::new();
        let mut refused: HashMap<(Uuid, Provider), String> = HashMap::new();
        let mut skipped: BTreeMap<(Uuid, Provider), u64> = BTreeMap::new();
        for candidate in candidates {
            if lease_lost.load(Ordering::Relaxed) {
                break;
            }
            let key = (candidate.tenant, candidate.provider);
            if !candidate.has_key {
                *skipped.entry(key).or_default() += 1;
                continue;
            }
            let credential = match credentials.get(&key) {
                Some(known) => known.clone(),
                None => {
                    let loaded = self
                        .store
                        .credential(candidate.tenant, candidate.provider)
                        .await;
                    let loaded = match loaded {
                        Ok(c) => c,
                        Err(error) => {
                            let run = entry(&mut runs, &candidate, started_at);
                            fail(run, &candidate, &Error::Store(error));
                            continue;
                        }
                    };
                    credentials.insert(key, loaded.clone());
                    loaded
                }
            };
            let Some(credential) = credential else {
                // The key was removed after the candidates were read.
                *skipped.entry(key).or_default() += 1;
                continue;
            };
            let run = entry(&mut runs, &candidate, started_at);
            if let Some(reason) = refused.get(&key) {
                run.counts.checked += 1;
                run.counts.errors += 1;
                run.last_error = Some(reason.clone());
                continue;
            }
            match self.check(&candidate, &credential).await {
                Ok(true) => {
                    run.counts.checked += 1;
                    run.counts.appended += 1;
                }
                Ok(false) => {
                    run.counts.checked += 1;
                    run.counts.unchanged += 1;
                }
                Err(error) => {
                    fail(run, &candidate, &error);
                    if error.is_credential_problem() {
                        tracing::error!(
                            provider = %candidate.provider,
                            tenant = %candidate.tenant,
                            %error,
                            "reconciliation: the provider API refused this tenant's credential; \
                             its other calls of this provider are skipped in this run"
                        );
                        refused.insert(key, error.to_string());
                    }
                }
            }
        }
        (runs, skipped)
    }

    /// Fetches one call and appends what the log lacks; `true` when something was appended.
    async fn check(
        &self,
        candidate: &Candidate,
        credential: &ApiCredential,
    ) -> Result<bool, Error> {
        let events = self
            .client
            .fetch(candidate.provider, credential, &candidate.call_id)
            .await?;
        if events.is_empty() {
            return Ok(false);
        }
        let types: Vec<String> = events.iter().map(|e| e.event_type.clone()).collect();
        let recorded = self
            .store
            .recorded(
                candidate.tenant,
                candidate.provider,
                &candidate.call_id,
                &types,
            )
            .await
            .map_err(Error::Store)?;
        let fetched_at = Utc::now();
        let mut appended = false;
        for event in events {
            if recorded.contains(&event.event_type) {
                continue;
            }
            let event_type = event.event_type.clone();
            let added = self
                .store
                .append(candidate.tenant, event, fetched_at)
                .await
                .map_err(Error::Store)?;
            if added {
                tracing::info!(
                    provider = %candidate.provider,
                    tenant = %candidate.tenant,
                    execution_id = %candidate.call_id,
                    status = %event_type,
                    "reconciliation appended a status the webhooks did not bring"
                );
            }
            appended |= added;
        }
        Ok(appended)
    }
}

fn entry<'a>(
    runs: &'a mut BTreeMap<(Uuid, Provider), TenantRun>,
    candidate: &Candidate,
    started_at: DateTime<Utc>,
) -> &'a mut TenantRun {
    runs.entry((candidate.tenant, candidate.provider))
        .or_insert_with(|| TenantRun {
            tenant: candidate.tenant,
            provider: candidate.provider,
            started_at,
            finished_at: started_at,
            counts: Counts::default(),
            last_error: None,
        })
}

fn fail(run: &mut TenantRun, candidate: &Candidate, error: &Error) {
    run.counts.checked += 1;
    run.counts.errors += 1;
    run.last_error = Some(error.to_string());
    tracing::warn!(
        provider = %candidate.provider,
        tenant = %candidate.tenant,
        execution_id = %candidate.call_id,
        %error,
        "reconciliation could not check a call"
    );
}
