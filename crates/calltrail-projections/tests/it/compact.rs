//! The compact copy of `data` (`events.compact`): old rows without one, mixed logs and
//! unusable copies fold exactly as rows read from `data` do, in replay and live.

use std::time::{Duration, Instant};

use calltrail_eventlog::{compact, Checkpoint};
use calltrail_projections::{replay, ReplayOptions};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

use crate::replay::mixed_log;
use crate::support::{TenantView, TestApp};

/// A plain connection to `app`'s database.
async fn connect(app: &TestApp) -> Client {
    let (client, connection) = tokio_postgres::connect(app.db.url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// What becomes of a row's compact copy when the log is copied.
#[derive(Clone, Copy)]
enum Rewrite {
    /// Every row as the appender wrote it.
    AsWritten,
    /// No row has a compact copy: a log written before migration 0011.
    Old,
    /// By position: as written, none, a future format, cut short, garbage after a good header.
    Mixed,
}

impl Rewrite {
    /// The compact value to store for the row at `position`, and whether a reader must fall
    /// back to `data` for it.
    fn apply(self, position: i64, written: Option<Vec<u8>>) -> (Option<Vec<u8>>, bool) {
        let Some(mut bytes) = written else {
            return (None, false);
        };
        match (self, position % 5) {
            (Rewrite::AsWritten, _) | (Rewrite::Mixed, 0) => (Some(bytes), false),
            (Rewrite::Old, _) | (Rewrite::Mixed, 1) => (None, false),
            (Rewrite::Mixed, 2) => {
                bytes[0] = compact::FORMAT + 1;
                (Some(bytes), true)
            }
            (Rewrite::Mixed, 3) => {
                bytes.truncate(bytes.len() / 2);
                (Some(bytes), true)
            }
            (Rewrite::Mixed, _) => {
                bytes.truncate(2);
                bytes.extend_from_slice(&[0xc1, 0xc1, 0xc1]);
                (Some(bytes), true)
            }
        }
    }
}

/// Copies `from`'s users and log into `to` (same positions, times and bodies) with the
/// compact copies changed as `how` says; returns how many rows a reader must fall back for.
async fn copy_log(from: &TestApp, to: &TestApp, how: Rewrite) -> usize {
    let (source, target) = (connect(from).await, connect(to).await);
    for user in source
        .query("SELECT id, email FROM users", &[])
        .await
        .unwrap()
    {
        let (id, email): (Uuid, String) = (user.get(0), user.get(1));
        target
            .execute(
                "INSERT INTO users (id, email) VALUES ($1, $2)",
                &[&id, &email],
            )
            .await
            .unwrap();
    }
    let rows = source
        .query(
            "SELECT position, tenant_id, provider, stream_id, event_type, schema_version,
                    occurred_at, recorded_at, data::text, payload::text, payload_hash,
                    metadata::text, compact
               FROM events ORDER BY txid, position",
            &[],
        )
        .await
        .unwrap();
    let mut unusable = 0;
    for row in rows {
        let position: i64 = row.get(0);
        let (compact, fallback) = how.apply(position, row.get(12));
        // The fold never reads the body of an event type it does not know (mixed_log's
        // `analysis.individual.completed`), so nothing falls back for it.
        let read = row.get::<_, String>(4) != "analysis.individual.completed";
        unusable += usize::from(fallback && read);
        let values: Vec<Box<dyn ToSql + Sync>> = vec![
            Box::new(position),
            Box::new(row.get::<_, Uuid>(1)),
            Box::new(row.get::<_, String>(2)),
            Box::new(row.get::<_, String>(3)),
            Box::new(row.get::<_, String>(4)),
            Box::new(row.get::<_, i32>(5)),
            Box::new(row.get::<_, chrono::DateTime<chrono::Utc>>(6)),
            Box::new(row.get::<_, chrono::DateTime<chrono::Utc>>(7)),
            Box::new(row.get::<_, String>(8)),
            Box::new(row.get::<_, Option<String>>(9)),
            Box::new(row.get::<_, Vec<u8>>(10)),
            Box::new(row.get::<_, String>(11)),
            Box::new(compact),
        ];
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        // One transaction per row, in the source's order: the same (txid, position) order.
        target
            .execute(
                "INSERT INTO events (position, tenant_id, provider, stream_id, event_type,
                                     schema_version, occurred_at, recorded_at, data, payload,
                                     payload_hash, metadata, compact)
                 OVERRIDING SYSTEM VALUE
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10::text::jsonb,
                         $11, $12::text::jsonb, $13)",
                &params,
            )
            .await
            .unwrap();
    }
    unusable
}

/// Waits until every event of `app`'s log is readable: a transaction running anywhere on the
/// cluster (another test's) holds the gap-safe horizon back until it ends.
async fn settled(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let horizon = app
            .log
            .horizon()
            .await
            .unwrap()
            .unwrap_or(Checkpoint::START);
        if app.log.count_after(horizon).await.unwrap() == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the log did not settle in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Replays `app`'s whole log in small pages and returns what its tenants see.
async fn replayed(app: &TestApp, tenants: &[Uuid]) -> Vec<TenantView> {
    settled(app).await;
    replay(
        &app.log,
        &app.store,
        ReplayOptions {
            batch_size: 7,
            ..ReplayOptions::default()
        },
        |_, _| {},
    )
    .await
    .unwrap();
    app.snapshot(tenants).await
}

#[tokio::test]
async fn the_appender_writes_a_compact_copy_of_every_json_data() {
    let app = TestApp::new().await;
    mixed_log(&app, 2).await;
    let client = connect(&app).await;
    let row = client
        .query_one(
            "SELECT count(*), count(compact),
                    count(*) FILTER (WHERE get_byte(compact, 0) = $1
                                       AND get_byte(compact, 1) = schema_version)
               FROM events",
            &[&i32::from(compact::FORMAT)],
        )
        .await
        .unwrap();
    let (all, with_compact, current): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert!(all > 10);
    assert_eq!(with_compact, all, "every event's data is JSON");
    assert_eq!(current, all);
}

#[tokio::test]
async fn old_rows_mixed_logs_and_unusable_copies_replay_as_new_rows() {
    let new = TestApp::new().await;
    let tenants = mixed_log(&new, 9).await;
    new.project(&new.projector(5)).await;
    let live = new.snapshot(&tenants).await;
    assert!(live.iter().all(|v| v.calls.len() == 9));
    let dead_letters = new.store.dead_letter_count().await.unwrap();
    assert!(
        dead_letters > 0,
        "the mixed log has a dead letter per tenant"
    );
    assert_eq!(replayed(&new, &tenants).await, live);

    let copied = TestApp::new().await;
    assert_eq!(copy_log(&new, &copied, Rewrite::AsWritten).await, 0);
    assert_eq!(replayed(&copied, &tenants).await, live);

    let old = TestApp::new().await;
    assert_eq!(copy_log(&new, &old, Rewrite::Old).await, 0);
    assert_eq!(replayed(&old, &tenants).await, live);
    assert_eq!(old.store.dead_letter_count().await.unwrap(), dead_letters);

    let mixed = TestApp::new().await;
    let unusable = copy_log(&new, &mixed, Rewrite::Mixed).await;
    assert!(unusable >= 10, "{unusable} unusable compact copies");
    let before = compact::fallbacks();
    assert_eq!(replayed(&mixed, &tenants).await, live);
    let counted = compact::fallbacks() - before;
    // Other tests in this process may count theirs too.
    assert!(
        counted >= u64::try_from(unusable).unwrap(),
        "{counted} fallbacks counted for {unusable} unusable copies"
    );
    // Same dead letters, with the reasons JSON gives (an unusable copy is not one).
    assert_eq!(mixed.store.dead_letter_count().await.unwrap(), dead_letters);
}

#[tokio::test]
async fn the_live_projector_folds_mixed_logs_as_new_rows() {
    let new = TestApp::new().await;
    let tenants = mixed_log(&new, 6).await;
    new.project(&new.projector(4)).await;
    let live = new.snapshot(&tenants).await;

    let mixed = TestApp::new().await;
    let unusable = copy_log(&new, &mixed, Rewrite::Mixed).await;
    assert!(unusable > 0);
    let before = compact::fallbacks();
    mixed.project(&mixed.projector(4)).await;
    assert_eq!(mixed.snapshot(&tenants).await, live);
    assert!(compact::fallbacks() - before >= u64::try_from(unusable).unwrap());
    let reasons = |app: &TestApp| {
        let url = app.db.url().to_owned();
        async move {
            let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
            tokio::spawn(connection);
            let rows = client
                .query(
                    "SELECT position, error FROM dead_letters ORDER BY position",
                    &[],
                )
                .await
                .unwrap();
            rows.iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(reasons(&mixed).await, reasons(&new).await);
}
