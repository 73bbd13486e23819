//! A run over an in-memory store (the port the binary implements over PostgreSQL) and the fake
//! provider API: what is counted where, a refused key, keyless tenants, providers side by side.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calltrail_core::providers::ProviderEvent;
use calltrail_core::{Backoff, Provider};
use calltrail_reconcile::{
    ApiClient, ApiCredential, Candidate, ClientConfig, Counts, ReconcileStore, Reconciler,
    RunOptions, StoreError, TenantRun,
};
use calltrail_testkit::{MockProviderApi, Reply};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

#[derive(Default)]
struct MemStore {
    /// Another process took the lease.
    lease_lost: bool,
    candidates: Vec<Candidate>,
    keys: HashMap<(Uuid, Provider), ApiCredential>,
    log: Mutex<HashSet<(Uuid, Provider, String, String)>>,
    runs: Mutex<Vec<TenantRun>>,
}

impl ReconcileStore for MemStore {
    async fn candidates(
        &self,
        _: Duration,
        provider: Option<Provider>,
    ) -> Result<Vec<Candidate>, StoreError> {
        Ok(self
            .candidates
            .iter()
            .filter(|c| provider.is_none_or(|p| p == c.provider))
            .cloned()
            .collect())
    }
    async fn keyed_tenants(
        &self,
        _: Option<Provider>,
    ) -> Result<Vec<(Uuid, Provider)>, StoreError> {
        Ok(self.keys.keys().copied().collect())
    }
    async fn credential(
        &self,
        tenant: Uuid,
        provider: Provider,
    ) -> Result<Option<ApiCredential>, StoreError> {
        Ok(self.keys.get(&(tenant, provider)).cloned())
    }
    async fn recorded(
        &self,
        tenant: Uuid,
        provider: Provider,
        call_id: &str,
        types: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        let log = self.log.lock().unwrap();
        Ok(types
            .iter()
            .filter(|t| log.contains(&(tenant, provider, call_id.to_owned(), (*t).clone())))
            .cloned()
            .collect())
    }
    async fn append(
        &self,
        tenant: Uuid,
        event: ProviderEvent,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = (
            tenant,
            event.event.provider,
            event.event.execution_id.clone(),
            event.event_type,
        );
        Ok(self.log.lock().unwrap().insert(key))
    }
    async fn keep_lease(&self) -> Result<bool, StoreError> {
        Ok(!self.lease_lost)
    }
    async fn record_run(&self, run: &TenantRun) -> Result<(), StoreError> {
        self.runs.lock().unwrap().push(run.clone());
        Ok(())
    }
}

fn client(timeout: Duration, max_retries: u32) -> Arc<ApiClient> {
    Arc::new(
        ApiClient::new(ClientConfig {
            timeout,
            max_retries,
            backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(20)),
            rate_per_second: 1000.0,
            ..ClientConfig::default()
        })
        .unwrap(),
    )
}

fn call(tenant: Uuid, provider: Provider, id: &str, has_key: bool) -> Candidate {
    Candidate {
        tenant,
        provider,
        call_id: id.to_owned(),
        has_key,
    }
}

const OPTIONS: RunOptions = RunOptions {
    older_than: Duration::ZERO,
    provider: None,
};

#[tokio::test]
async fn each_call_counts_once_and_a_refused_key_stops_that_tenant_only() {
    let api = MockProviderApi::start().await;
    let (refused, good, keyless) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    api.set("/executions/b1", Reply::json(401, json!({})));
    api.set("/executions/b2", Reply::json(401, json!({})));
    api.set(
        "/call/v1",
        Reply::json(
            200,
            json!({"id": "v1", "status": "ended", "endedReason": "customer-ended-call"}),
        ),
    );
    let base = Some(api.base_url());
    let store = MemStore {
        candidates: vec![
            call(refused, Provider::Bolna, "b1", true),
            call(refused, Provider::Bolna, "b2", true),
            call(good, Provider::Vapi, "v1", true),
            call(keyless, Provider::Vapi, "v9", false),
        ],
        keys: HashMap::from([
            (
                (refused, Provider::Bolna),
                ApiCredential::new("bad", base.clone()),
            ),
            (
                (good, Provider::Vapi),
                ApiCredential::new("ok", base.clone()),
            ),
        ]),
        ..MemStore::default()
    };
    let reconciler = Reconciler::new(store, client(Duration::from_secs(2), 2));
    let summary = reconciler.run(OPTIONS).await.unwrap();
    let counts = |checked, appended, unchanged, errors| Counts {
        checked,
        appended,
        unchanged,
        errors,
    };
    assert_eq!(summary.total, counts(3, 1, 0, 2));
    assert_eq!(summary.providers[&Provider::Bolna], counts(2, 0, 0, 2));
    assert_eq!(summary.providers[&Provider::Vapi], counts(1, 1, 0, 0));
    assert_eq!(
        api.count("/executions/b1") + api.count("/executions/b2"),
        1,
        "one refusal is enough"
    );
    assert_eq!(
        api.count("/call/v9"),
        0,
        "a keyless tenant's call is not fetched"
    );
    // Both of the Vapi call's events are in the log: its status update and its report.
    assert_eq!(reconciler.store().log.lock().unwrap().len(), 2);
    let refused_run = summary
        .tenants
        .iter()
        .find(|t| t.tenant == refused)
        .unwrap();
    assert!(refused_run
        .last_error
        .as_deref()
        .unwrap()
        .contains("bolna refused the API key"));
    assert!(
        summary.tenants.iter().all(|t| t.tenant != keyless),
        "counted nowhere"
    );

    // Again: the log has everything the API shows.
    let again = reconciler.run(OPTIONS).await.unwrap();
    assert_eq!(again.providers[&Provider::Vapi], counts(1, 0, 1, 0));
    assert_eq!(
        reconciler.store().runs.lock().unwrap().len(),
        4,
        "each tenant and provider, each run"
    );
}

#[tokio::test]
async fn a_hanging_provider_does_not_hold_the_others_back() {
    let api = MockProviderApi::start().await;
    let tenant = Uuid::new_v4();
    api.set(
        "/executions/slow",
        Reply::json(200, json!({"id": "slow", "status": "completed"}))
            .after(Duration::from_secs(5)),
    );
    api.set(
        "/call/quick",
        Reply::json(200, json!({"id": "quick", "status": "in-progress"})),
    );
    let base = Some(api.base_url());
    let store = MemStore {
        candidates: vec![
            call(tenant, Provider::Bolna, "slow", true),
            call(tenant, Provider::Vapi, "quick", true),
        ],
        keys: HashMap::from([
            (
                (tenant, Provider::Bolna),
                ApiCredential::new("k", base.clone()),
            ),
            (
                (tenant, Provider::Vapi),
                ApiCredential::new("k", base.clone()),
            ),
        ]),
        ..MemStore::default()
    };
    let started = Instant::now();
    let summary = Reconciler::new(store, client(Duration::from_millis(1500), 0))
        .run(OPTIONS)
        .await
        .unwrap();
    let quick = api
        .requests()
        .into_iter()
        .find(|r| r.path == "/call/quick")
        .unwrap();
    assert!(
        quick.at - started < Duration::from_millis(1000),
        "Vapi waited for Bolna's timeout"
    );
    assert_eq!(summary.providers[&Provider::Bolna].errors, 1);
    assert_eq!(summary.providers[&Provider::Vapi].appended, 1);
}

#[tokio::test]
async fn a_run_whose_lease_was_taken_over_stops_before_its_next_call() {
    let api = MockProviderApi::start().await;
    let tenant = Uuid::new_v4();
    let slow = Reply::json(200, json!({"id": "b1", "status": "completed"}))
        .after(Duration::from_millis(600));
    api.set("/executions/b1", slow);
    api.set(
        "/executions/b2",
        Reply::json(200, json!({"id": "b2", "status": "completed"})),
    );
    let store = MemStore {
        lease_lost: true,
        candidates: vec![
            call(tenant, Provider::Bolna, "b1", true),
            call(tenant, Provider::Bolna, "b2", true),
        ],
        keys: HashMap::from([(
            (tenant, Provider::Bolna),
            ApiCredential::new("k", Some(api.base_url())),
        )]),
        ..MemStore::default()
    };
    let summary = Reconciler::new(store, client(Duration::from_secs(2), 0))
        .with_lease_renewal(Duration::from_millis(100))
        .run(OPTIONS)
        .await
        .unwrap();
    assert!(summary.lease_lost);
    assert_eq!(
        api.count("/executions/b2"),
        0,
        "the next call is left to the new holder"
    );
    assert_eq!(
        summary.total.checked, 1,
        "the call in flight is finished and counted"
    );
}
