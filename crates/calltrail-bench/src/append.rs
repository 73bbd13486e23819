//! The append scenarios: calltrail's group commit, and plain SQL as the ceiling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use calltrail_eventlog::{AppendOutcome, AppenderConfig, ConnectOptions, EventLog, NewEvent};
use calltrail_testkit::TestDb;
use chrono::Utc;
use uuid::Uuid;

use crate::report::Row;
use crate::workload::{call_id, phone, CallKind, Workload};

/// A realistic ~2 KB Bolna `completed` payload with a unique id.
fn payload(i: usize) -> String {
    let transcript = "assistant: Hi, this is Maya calling from Brightline CRM. Am I speaking with Rohan?\\nuser: Yes, speaking.\\n".repeat(8);
    format!(
        r#"{{"id":"bench-{i}","agent_id":"9e2a4f70-5c13-4b8e-a1d6-72f04c3b9e18","status":"completed","conversation_duration":27.2,"created_at":"2025-10-08T09:14:58.412903","updated_at":"2025-10-08T09:28:12.540198","transcript":"{transcript}","telephony_data":{{"duration":"28","to_number":"+14155550132","from_number":"+14155550187","recording_url":"https://recordings.example/{i}.mp3","call_type":"outbound","provider":"plivo","hangup_by":"Callee","hangup_reason":"Call recipient hung up","hangup_provider_code":4000}}}}"#
    )
}

fn event(tenant: Uuid, i: usize) -> NewEvent {
    NewEvent {
        tenant_id: tenant,
        provider: "bolna".to_owned(),
        stream_id: format!("bench-{i}"),
        event_type: "completed".to_owned(),
        schema_version: 1,
        occurred_at: Utc::now(),
        data: r#"{"status":"completed","conversation_seconds":27.2}"#.to_owned(),
        payload: Some(payload(i)),
        metadata: "{}".to_owned(),
    }
}

/// N appends from C concurrent tasks through the appender.
pub async fn appender(events: usize, concurrency: usize) -> anyhow::Result<Row> {
    let db = TestDb::new().await;
    let log = EventLog::connect(db.url(), &ConnectOptions::default())?;
    let appender = log.appender(AppenderConfig::default());
    let tenant = Uuid::new_v4();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let appender = appender.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= events {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let t = Instant::now();
                let outcome = appender.append(event(tenant, i)).await?;
                anyhow::ensure!(
                    matches!(outcome, AppendOutcome::Appended { .. }),
                    "unexpected {outcome:?}"
                );
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(events);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let wall = started.elapsed();
    appender.shutdown().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&sqlx::PgPool::connect(db.url()).await?)
        .await?;
    anyhow::ensure!(
        usize::try_from(stored)? == events,
        "{stored} stored for {events} acknowledged"
    );
    log.close().await;
    Ok(Row::new(
        "append",
        format!("c={concurrency}"),
        events,
        wall,
        latencies,
    ))
}

/// The same events by plain SQL, `batch` rows per transaction, one connection.
pub async fn raw(events: usize, batch: usize) -> anyhow::Result<Row> {
    let db = TestDb::new().await;
    let pool = sqlx::PgPool::connect(db.url()).await?;
    let tenant = Uuid::new_v4();
    let started = Instant::now();
    let mut i = 0;
    while i < events {
        let end = (i + batch).min(events);
        let streams: Vec<String> = (i..end).map(|n| format!("bench-{n}")).collect();
        let payloads: Vec<String> = (i..end).map(payload).collect();
        sqlx::query(
            "INSERT INTO events (tenant_id, provider, stream_id, event_type, schema_version, occurred_at, data, payload, payload_hash)
             SELECT $1, 'bolna', s, 'completed', 1, now(), '{}'::jsonb, p::jsonb, sha256(convert_to(p, 'UTF8'))
               FROM unnest($2::text[], $3::text[]) AS u(s, p)",
        )
        .bind(tenant)
        .bind(&streams)
        .bind(&payloads)
        .execute(&pool)
        .await?;
        i = end;
    }
    let wall = started.elapsed();
    pool.close().await;
    Ok(Row::new(
        "raw",
        format!("batch={batch}"),
        events,
        wall,
        Vec::new(),
    ))
}

/// Rows like the ones a webhook becomes: the lifecycle workload's payloads, normalized `data`
/// and metadata, for tenant-less plain SQL.
struct LifecycleRows {
    streams: Vec<String>,
    types: Vec<String>,
    occurred: Vec<chrono::DateTime<Utc>>,
    data: Vec<String>,
    payloads: Vec<String>,
    metadata: Vec<String>,
}

fn lifecycle_rows(events: usize) -> anyhow::Result<LifecycleRows> {
    let workload = Workload::new()?;
    let mut rows = LifecycleRows {
        streams: Vec::with_capacity(events),
        types: Vec::with_capacity(events),
        occurred: Vec::with_capacity(events),
        data: Vec::with_capacity(events),
        payloads: Vec::with_capacity(events),
        metadata: Vec::with_capacity(events),
    };
    let mut call = 0_u64;
    while rows.streams.len() < events {
        let (id, number) = (call_id("raw", call), phone(call));
        for step in workload.steps(CallKind::of_call(call)) {
            let payload = step.payload.render(&id, &number);
            rows.metadata.push(
                serde_json::json!({
                    "received_at": Utc::now(),
                    "content_type": "application/json",
                    "user_agent": "calltrail-bench",
                    "body_bytes": payload.len(),
                })
                .to_string(),
            );
            rows.streams.push(id.clone());
            rows.types.push(step.status.clone());
            rows.occurred.push(step.occurred_at);
            rows.data.push(step.data.render(&id, &number));
            rows.payloads.push(payload);
        }
        call += 1;
    }
    Ok(rows)
}

/// The lifecycle rows' insert statement (`$1` tenant, then one array per column).
const INSERT_LIFECYCLE: &str = "INSERT INTO events (tenant_id, provider, stream_id, event_type, schema_version, occurred_at,
                                 data, payload, payload_hash, metadata)
             SELECT $1, 'bolna', s, e, 1, o, d::jsonb, p::jsonb, sha256(convert_to(p, 'UTF8')), m::jsonb
               FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[])
                    AS u(s, e, o, d, p, m)";

/// PostgreSQL's concurrent ceiling for the rows ingest writes: the lifecycle rows of
/// [`raw_lifecycle`] in `batch`-row transactions from `connections` connections at once, into
/// the real `events` table with all its indexes (each connection takes the next batch).
pub async fn raw_lifecycle_concurrent(
    events: usize,
    batch: usize,
    connections: usize,
) -> anyhow::Result<Row> {
    let rows = Arc::new(lifecycle_rows(events)?);
    let db = TestDb::new().await;
    let connections = connections.max(1);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(u32::try_from(connections)?)
        .min_connections(u32::try_from(connections)?)
        .connect(db.url())
        .await?;
    let tenant = Uuid::new_v4();
    let batch = batch.max(1);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sampler = crate::proc::Sampler::start(None, Some(db.name().to_owned()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (pool, rows, next) = (pool.clone(), rows.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                if i >= events {
                    return Ok::<_, anyhow::Error>(());
                }
                let end = (i + batch).min(events);
                sqlx::query(INSERT_LIFECYCLE)
                    .bind(tenant)
                    .bind(&rows.streams[i..end])
                    .bind(&rows.types[i..end])
                    .bind(&rows.occurred[i..end])
                    .bind(&rows.data[i..end])
                    .bind(&rows.payloads[i..end])
                    .bind(&rows.metadata[i..end])
                    .execute(&pool)
                    .await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let wall = started.elapsed();
    let samples = sampler.finish().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(
        usize::try_from(stored)? == events,
        "{stored} stored of {events}"
    );
    pool.close().await;
    let rows_f = u32::try_from(events).map_or(f64::from(u32::MAX), f64::from);
    Ok(Row::new(
        "raw",
        format!("lifecycle batch={batch} connections={connections}"),
        events,
        wall,
        Vec::new(),
    )
    .detail(
        "postgres_cpu_us_per_row",
        crate::report::round3(samples.postgres_cpu_s * 1e6 / rows_f.max(1.0)),
    )
    .detail(
        "machine_cores_busy",
        crate::report::round3(samples.machine_cores_busy),
    ))
}

/// PostgreSQL's own ceiling for the rows ingest writes: the lifecycle workload (payload,
/// normalized `data`, metadata, sha256 computed by the server) inserted by plain SQL with
/// `batch` rows per transaction on one connection. Rows are built before the clock starts.
pub async fn raw_lifecycle(events: usize, batch: usize) -> anyhow::Result<Row> {
    let rows = lifecycle_rows(events)?;
    let db = TestDb::new().await;
    let pool = sqlx::PgPool::connect(db.url()).await?;
    let tenant = Uuid::new_v4();
    let batch = batch.max(1);
    let sampler = crate::proc::Sampler::start(None, Some(db.name().to_owned()));
    let started = Instant::now();
    let mut i = 0;
    while i < events {
        let end = (i + batch).min(events);
        sqlx::query(INSERT_LIFECYCLE)
            .bind(tenant)
            .bind(&rows.streams[i..end])
            .bind(&rows.types[i..end])
            .bind(&rows.occurred[i..end])
            .bind(&rows.data[i..end])
            .bind(&rows.payloads[i..end])
            .bind(&rows.metadata[i..end])
            .execute(&pool)
            .await?;
        i = end;
    }
    let wall = started.elapsed();
    let samples = sampler.finish().await;
    pool.close().await;
    let per_row_us = |seconds: f64| {
        let rows = u32::try_from(events).map_or(f64::from(u32::MAX), f64::from);
        crate::report::round3(seconds * 1e6 / rows.max(1.0))
    };
    Ok(Row::new(
        "raw",
        format!("lifecycle batch={batch}"),
        events,
        wall,
        Vec::new(),
    )
    .detail(
        "postgres_cpu_us_per_row",
        per_row_us(samples.postgres_cpu_s),
    )
    .detail(
        "machine_cores_busy",
        crate::report::round3(samples.machine_cores_busy),
    ))
}
