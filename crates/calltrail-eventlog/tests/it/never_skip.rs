//! docs/EVENTLOG.md §1: a reader must never skip an event committed late by a slower transaction.

use calltrail_eventlog::{Checkpoint, EventLog, StoredEvent};
use calltrail_testkit::TestDb;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::support::{config, event, log};

/// Reads everything currently visible, advancing the checkpoint.
async fn drain(log: &EventLog, checkpoint: &mut Checkpoint, seen: &mut Vec<String>) {
    loop {
        let batch: Vec<StoredEvent> = log.read_after(*checkpoint, 100).await.unwrap();
        if batch.is_empty() {
            return;
        }
        for e in batch {
            *checkpoint = e.checkpoint();
            seen.push(e.stream_id);
        }
    }
}

/// Drains until `expected` has been seen. Visibility is cluster-wide: a transaction of another
/// database on the same server (a parallel test) can hold readers back for a moment.
async fn drain_until(
    log: &EventLog,
    checkpoint: &mut Checkpoint,
    seen: &mut Vec<String>,
    expected: &[&str],
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        drain(log, checkpoint, seen).await;
        if seen.len() >= expected.len() || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The reader this design forbids: `position > checkpoint` over committed rows.
async fn naive_drain(conn: &mut PgConnection, last: &mut i64, seen: &mut Vec<String>) {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT position, stream_id FROM events WHERE position > $1 ORDER BY position",
    )
    .bind(*last)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for (position, stream) in rows {
        *last = position;
        seen.push(stream);
    }
}

async fn insert_in(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, tenant: Uuid, stream: &str) {
    sqlx::query(
        "INSERT INTO events (tenant_id, provider, stream_id, event_type, schema_version, occurred_at, data, payload_hash)
         VALUES ($1, 'bolna', $2, 'completed', 1, now(), '{}', '\\x00')",
    )
    .bind(tenant)
    .bind(stream)
    .execute(&mut **tx)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_writer_is_not_skipped_when_a_later_writer_commits_first() {
    let db = TestDb::new().await;
    let log = log(&db).await;
    let appender = log.appender(config());
    let tenant = Uuid::new_v4();
    appender
        .append(event(tenant, "before", "completed", "{}"))
        .await
        .unwrap();

    let (mut checkpoint, mut seen) = (Checkpoint::START, Vec::new());
    let mut naive_conn = PgConnection::connect(db.url()).await.unwrap();
    let (mut naive_last, mut naive_seen) = (0, Vec::new());
    drain_until(&log, &mut checkpoint, &mut seen, &["before"]).await;
    naive_drain(&mut naive_conn, &mut naive_last, &mut naive_seen).await;

    // A takes a position and stays open; B appends after it and commits.
    let mut a_conn = PgConnection::connect(db.url()).await.unwrap();
    let mut a = a_conn.begin().await.unwrap();
    insert_in(&mut a, tenant, "A").await;
    appender
        .append(event(tenant, "B", "completed", "{}"))
        .await
        .unwrap();

    // Both readers consume everything visible now.
    drain(&log, &mut checkpoint, &mut seen).await;
    naive_drain(&mut naive_conn, &mut naive_last, &mut naive_seen).await;
    assert_eq!(
        seen,
        ["before"],
        "B must wait behind the open transaction A"
    );

    a.commit().await.unwrap();
    drain_until(&log, &mut checkpoint, &mut seen, &["before", "A", "B"]).await;
    naive_drain(&mut naive_conn, &mut naive_last, &mut naive_seen).await;

    assert_eq!(
        seen,
        ["before", "A", "B"],
        "the gap-safe reader receives A after it commits"
    );
    assert_eq!(
        naive_seen,
        ["before", "B"],
        "the naive reader skips A forever: this test can tell the two apart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_with_an_earlier_txid_but_a_later_position_is_not_skipped() {
    let db = TestDb::new().await;
    let log = log(&db).await;
    let appender = log.appender(config());
    let tenant = Uuid::new_v4();
    appender
        .append(event(tenant, "before", "completed", "{}"))
        .await
        .unwrap();
    let (mut checkpoint, mut seen) = (Checkpoint::START, Vec::new());
    drain_until(&log, &mut checkpoint, &mut seen, &["before"]).await;

    // A takes its transaction id first ...
    let mut a_conn = PgConnection::connect(db.url()).await.unwrap();
    let mut a = a_conn.begin().await.unwrap();
    let a_txid: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut *a)
        .await
        .unwrap();
    // ... B appends (a later txid, an earlier position) and commits ...
    appender
        .append(event(tenant, "B", "completed", "{}"))
        .await
        .unwrap();
    drain(&log, &mut checkpoint, &mut seen).await;
    // ... then A takes a position after B's and commits.
    insert_in(&mut a, tenant, "A").await;
    a.commit().await.unwrap();
    drain_until(&log, &mut checkpoint, &mut seen, &["before", "A", "B"]).await;

    assert_eq!(
        seen,
        ["before", "A", "B"],
        "read in (txid, position) order, each exactly once"
    );
    let positions: Vec<(String, i64, String)> = {
        let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
        let rows =
            sqlx::query_as("SELECT stream_id, position, txid::text FROM events ORDER BY position")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        rows
    };
    let a_row = positions.iter().find(|r| r.0 == "A").unwrap();
    let b_row = positions.iter().find(|r| r.0 == "B").unwrap();
    assert!(
        a_row.1 > b_row.1,
        "A's position is after B's: {positions:?}"
    );
    assert_eq!(a_row.2, a_txid);
    // A reader whose checkpoint were the position alone would now be past A's position after
    // reading B first; the (txid, position) pair is what makes this order safe.
    assert!(
        checkpoint.position == b_row.1,
        "the checkpoint ends on B, the last in (txid, position) order"
    );
}
