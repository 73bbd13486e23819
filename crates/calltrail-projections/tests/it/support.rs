//! Test helpers: a migrated database, an appender, Bolna fixtures as call events (files from
//! `calltrail_testkit::fixtures`), and a projector driven to completion.

use std::time::{Duration, Instant};

use calltrail_core::event::CALL_EVENT_SCHEMA_VERSION;
use calltrail_core::CallEvent;
use calltrail_eventlog::{
    AppendOutcome, Appender, AppenderConfig, ConnectOptions, EventLog, NewEvent,
};
use calltrail_projections::views::{CallDetail, ContactView, CreditsView, TranscriptView};
use calltrail_projections::{BatchOutcome, CallFilter, Projector, ProjectorConfig, ReadStore};
use calltrail_testkit::{fixtures, TestDb};
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

/// A fresh database with the write and read sides connected.
pub struct TestApp {
    pub log: EventLog,
    pub store: ReadStore,
    pub appender: Appender,
    pub db: TestDb,
}

impl TestApp {
    pub async fn new() -> TestApp {
        let db = TestDb::new().await;
        let log = EventLog::connect(db.url(), &ConnectOptions::default()).unwrap();
        let store = ReadStore::connect(db.url(), 8).unwrap();
        let appender = log.appender(AppenderConfig::default());
        TestApp {
            log,
            store,
            appender,
            db,
        }
    }

    /// A user (tenant) with credentials.
    pub async fn user(&self, email: &str) -> Uuid {
        calltrail_testkit::create_tenant(&self.store, |user| user.email = email.to_owned())
            .await
            .user_id
    }

    pub fn projector(&self, batch_size: usize) -> Projector {
        Projector::new(
            self.log.clone(),
            self.store.clone(),
            ProjectorConfig {
                batch_size,
                poll_interval: Duration::from_millis(50),
                ..ProjectorConfig::default()
            },
        )
    }

    /// Appends a normalized call event the way the webhook endpoint does.
    pub async fn append_call(&self, tenant: Uuid, event: &CallEvent) -> i64 {
        let outcome = self
            .appender
            .append(NewEvent {
                tenant_id: tenant,
                provider: event.provider.as_str().to_owned(),
                stream_id: event.execution_id.clone(),
                event_type: event.status.as_str().to_owned(),
                schema_version: CALL_EVENT_SCHEMA_VERSION,
                occurred_at: event.occurred_at,
                data: serde_json::to_string(event).unwrap(),
                payload: None,
                metadata: "{}".to_owned(),
            })
            .await
            .unwrap();
        position(outcome)
    }

    /// Appends an arbitrary event.
    pub async fn append_raw(
        &self,
        tenant: Uuid,
        provider: &str,
        stream_id: &str,
        event_type: &str,
        schema_version: i32,
        data: &str,
    ) -> i64 {
        let outcome = self
            .appender
            .append(NewEvent {
                tenant_id: tenant,
                provider: provider.to_owned(),
                stream_id: stream_id.to_owned(),
                event_type: event_type.to_owned(),
                schema_version,
                occurred_at: t0(),
                data: data.to_owned(),
                payload: None,
                metadata: "{}".to_owned(),
            })
            .await
            .unwrap();
        position(outcome)
    }

    /// Appends a credit grant as `admin grant-credits` does.
    pub async fn grant(&self, tenant: Uuid, amount: i64) -> i64 {
        let stream = Uuid::new_v4().to_string();
        let data = format!("{{\"amount\": {amount}}}");
        self.append_raw(tenant, "calltrail", &stream, "credits.granted", 1, &data)
            .await
    }

    /// Runs batches until the projector has read everything readable.
    pub async fn project(&self, projector: &Projector) -> BatchOutcome {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut total = BatchOutcome::default();
        loop {
            let outcome = projector.run_once().await.unwrap();
            total.events += outcome.events;
            total.dead_letters += outcome.dead_letters;
            if outcome.caught_up && projector.lag().await.unwrap() == 0 {
                total.caught_up = true;
                return total;
            }
            assert!(
                Instant::now() < deadline,
                "projector did not catch up in time"
            );
            if outcome.caught_up {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    pub async fn call(&self, tenant: Uuid, execution_id: &str) -> CallDetail {
        self.store
            .get_call(tenant, None, execution_id)
            .await
            .unwrap()
            .found()
            .expect("the call exists")
    }

    /// Every read query's answer for these tenants, with `updated_at` redacted.
    pub async fn snapshot(&self, tenants: &[Uuid]) -> Vec<TenantView> {
        let mut views = Vec::new();
        for tenant in tenants {
            let mut calls = Vec::new();
            let mut transcripts = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = self
                    .store
                    .list_calls(*tenant, &CallFilter::default(), cursor.as_deref(), 7)
                    .await
                    .unwrap();
                for call in &page.items {
                    let mut detail = self.call(*tenant, &call.execution_id).await;
                    detail.call.updated_at = epoch();
                    calls.push(detail);
                    transcripts.push(
                        self.store
                            .get_transcript(*tenant, None, &call.execution_id)
                            .await
                            .unwrap()
                            .found(),
                    );
                }
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
            let mut contacts = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = self
                    .store
                    .list_contacts(*tenant, cursor.as_deref(), 3)
                    .await
                    .unwrap();
                contacts.extend(page.items);
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
            let credits = self.store.credits(*tenant).await.unwrap();
            views.push(TenantView {
                calls,
                transcripts,
                contacts,
                credits,
            });
        }
        views
    }
}

/// What a tenant sees through every read query.
#[derive(Debug, PartialEq)]
pub struct TenantView {
    pub calls: Vec<CallDetail>,
    pub transcripts: Vec<Option<TranscriptView>>,
    pub contacts: Vec<ContactView>,
    pub credits: CreditsView,
}

fn position(outcome: AppendOutcome) -> i64 {
    match outcome {
        AppendOutcome::Appended { position } => position,
        AppendOutcome::Duplicate { position, .. } => position,
    }
}

pub fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// A fixed receive time for fixtures.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 8, 12, 0, 0).unwrap()
}

/// The raw bytes of a Bolna fixture, e.g. `("success", "05-completed")`.
pub fn fixture_bytes(scenario: &str, name: &str) -> Vec<u8> {
    fixtures::read(format!("bolna/{scenario}/{name}.json"))
}

/// A Bolna fixture normalized into a call event.
pub fn fixture(scenario: &str, name: &str) -> CallEvent {
    calltrail_core::providers::bolna::parse(&fixture_bytes(scenario, name))
        .unwrap()
        .normalize(t0())
}

/// A fixture with its execution id (and optionally phone number) replaced.
pub fn fixture_as(scenario: &str, name: &str, id: &str, phone: Option<&str>) -> CallEvent {
    let mut value = fixtures::json(format!("bolna/{scenario}/{name}.json"));
    fixtures::bolna::as_call(&mut value, id, phone);
    let bytes = serde_json::to_vec(&value).unwrap();
    calltrail_core::providers::bolna::parse(&bytes)
        .unwrap()
        .normalize(t0())
}

/// Every fixture of a Bolna scenario, in file order.
pub fn scenario(name: &str) -> Vec<CallEvent> {
    fixtures::scenario(format!("bolna/{name}"))
        .iter()
        .map(|bytes| {
            calltrail_core::providers::bolna::parse(bytes)
                .unwrap()
                .normalize(t0())
        })
        .collect()
}

/// Parses an RFC 3339 time (naive times are UTC).
pub fn at(text: &str) -> DateTime<Utc> {
    calltrail_core::providers::bolna::parse(
        format!("{{\"id\":\"x\",\"status\":\"queued\",\"updated_at\":\"{text}\"}}").as_bytes(),
    )
    .unwrap()
    .normalize(t0())
    .occurred_at
}
