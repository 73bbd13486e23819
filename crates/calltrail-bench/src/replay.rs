//! The `replay` scenario: a log of N events written straight into `events` with binary `COPY`
//! (not through HTTP), then `calltrail replay` run as a child process.
//!
//! The log: calls of the [`CallKind`] mix (4.4 events a call on average, so 1,000,000 events
//! are ~227,000 calls; half the answered calls carry a transcript), contact numbers spread over
//! [`crate::workload::CONTACTS`], events of each call interleaved with ~[`SPREAD`] other calls
//! as webhooks arrive in practice (a call's events land on different replay pages). `data` is
//! the core normalization of each fixture with the call's id and number patched in; `payload`
//! the fixture with the same changes, hashed like the appender does.

use std::time::{Duration, Instant};

use anyhow::Context;
use calltrail_core::event::CALL_EVENT_SCHEMA_VERSION;
use calltrail_testkit::TestDb;
use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};
use tokio::io::AsyncBufReadExt;
use uuid::Uuid;

use crate::proc;
use crate::report::{round3, Report, Row};
use crate::server;
use crate::workload::{call_id, phone, CallKind, Workload};

/// A call's events are spread over this many calls' worth of the log.
const SPREAD: u64 = 2_000;
/// Events per `COPY` (one transaction each).
const EVENTS_PER_COPY: usize = 50_000;
/// Bytes buffered before they are sent to the server.
const SEND_BYTES: usize = 1 << 20;
/// The replay is given up after this long.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(1_800);

const COPY_EVENTS: &str =
    "COPY events (tenant_id, provider, stream_id, event_type, schema_version, occurred_at,
                    data, payload, payload_hash, metadata, compact) FROM STDIN (FORMAT binary)";

/// Generates the log, replays it, and checks the rebuilt read models.
pub async fn run(events: usize, report: &mut Report) -> anyhow::Result<()> {
    let mut db = TestDb::new().await;
    // CALLTRAIL_BENCH_KEEP=1 keeps the generated log, to run `calltrail replay` on it again.
    if std::env::var_os("CALLTRAIL_BENCH_KEEP").is_some() {
        db.keep();
    }
    let tenant = server::create_user(db.url()).await?;
    let run = Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(8)
        .collect::<String>();

    let started = Instant::now();
    let generated = generate(db.url(), tenant.user_id, &run, events).await?;
    let copy_wall = started.elapsed();
    let settle = Instant::now();
    let mut conn = PgConnection::connect(db.url()).await?;
    // A live log is vacuumed and analyzed as it grows; a freshly copied one is not (its first
    // reader would set every hint bit). Settle it first so the replay reads a normal table.
    sqlx::query("VACUUM (ANALYZE) events")
        .execute(&mut conn)
        .await?;
    let log_mib: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('events') / 1048576")
        .fetch_one(&mut conn)
        .await?;
    report.push(
        Row::new(
            "replay",
            "generate (binary COPY)".into(),
            generated.events,
            copy_wall,
            Vec::new(),
        )
        .detail("calls", generated.calls)
        .detail("answered_calls", generated.answered)
        .detail("calls_with_transcript", generated.with_transcript)
        .detail("vacuum_analyze_s", round3(settle.elapsed().as_secs_f64()))
        .detail("events_table_mib", log_mib),
    );

    let ceiling = read_ceiling(db.url(), db.name()).await?;
    let ceiling_rate = rate(ceiling.events, ceiling.wall);
    report.push(
        Row::new(
            "replay",
            "read ceiling (binary COPY of the log in replay order)".into(),
            ceiling.events,
            ceiling.wall,
            Vec::new(),
        )
        .detail("bytes", ceiling.bytes)
        .detail("postgres_cpu_s", round3(ceiling.samples.postgres_cpu_s))
        .detail(
            "postgres_cpu_us_per_event",
            per_event_us(ceiling.samples.postgres_cpu_s, ceiling.events),
        ),
    );

    let measured = run_replay(db.url(), db.name()).await?;
    let counts = |sql: &'static str| {
        let url = db.url().to_owned();
        async move {
            let mut conn = PgConnection::connect(&url).await?;
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await?;
            anyhow::Ok(n)
        }
    };
    let calls = counts("SELECT count(*) FROM calls").await?;
    let timeline = counts("SELECT count(*) FROM call_events").await?;
    let dead = counts("SELECT count(*) FROM dead_letters").await?;
    let ok = usize::try_from(calls).ok() == Some(generated.calls)
        && usize::try_from(timeline).ok() == Some(generated.events)
        && dead == 0;
    if !ok {
        eprintln!(
            "replay: read models differ from the log: {calls} calls for {} generated, {timeline} timeline rows for {} events, {dead} dead letters",
            generated.calls, generated.events
        );
    }
    let seconds = Duration::from_secs_f64(measured.seconds.max(0.0));
    let replayed = usize::try_from(measured.events)?;
    let row = Row::new(
        "replay",
        format!("events={}", measured.events),
        replayed,
        seconds,
        Vec::new(),
    );
    // `ratio` (set by main) divides by the append ceiling; this by PostgreSQL merely handing
    // the same events out.
    let to_read_ceiling = if ceiling_rate > 0.0 {
        round3(measured.events_per_second / ceiling_rate)
    } else {
        0.0
    };
    report.push(
        row.detail("events_per_second", measured.events_per_second.round())
            .detail("ratio_to_read_ceiling", to_read_ceiling)
            .detail(
                "replay_cpu_us_per_event",
                per_event_us(measured.samples.cpu_s, replayed),
            )
            .detail(
                "postgres_cpu_us_per_event",
                per_event_us(measured.samples.postgres_cpu_s, replayed),
            )
            .detail("process_wall_s", round3(measured.wall))
            .detail("peak_rss_mib", round3(measured.samples.peak_rss_mib))
            .detail("replay_cpu_s", round3(measured.samples.cpu_s))
            .detail("postgres_cpu_s", round3(measured.samples.postgres_cpu_s))
            .detail(
                "postgres_all_dbs_cpu_s",
                round3(measured.samples.postgres_all_cpu_s),
            )
            .detail(
                "machine_cores_busy",
                round3(measured.samples.machine_cores_busy),
            )
            .detail("calls_rows", calls)
            .detail("call_events_rows", timeline)
            .detail("dead_letters", dead)
            .detail("read_models_match", ok),
    );
    Ok(())
}

/// Events per second.
fn rate(events: usize, wall: Duration) -> f64 {
    let seconds = wall.as_secs_f64();
    #[allow(clippy::as_conversions)] // a count converted for a rate
    let events = events as f64;
    if seconds > 0.0 {
        events / seconds
    } else {
        0.0
    }
}

/// CPU microseconds per event, rounded to 0.1.
fn per_event_us(cpu_s: f64, events: usize) -> f64 {
    #[allow(clippy::as_conversions)] // a count converted for a ratio
    let events = events.max(1) as f64;
    (cpu_s * 1e6 / events * 10.0).round() / 10.0
}

/// PostgreSQL reading the log alone, as the replay reads it.
struct Ceiling {
    events: usize,
    bytes: usize,
    wall: Duration,
    samples: proc::Samples,
}

/// The log copied out the way `calltrail replay` reads it (its columns, `(txid, position)`
/// order, binary `COPY`), counted and thrown away: the fastest PostgreSQL hands these events
/// out here, the ceiling replay's rate is compared with.
async fn read_ceiling(url: &str, database: &str) -> anyhow::Result<Ceiling> {
    use futures_util::StreamExt;
    let mut conn = PgConnection::connect(url).await?;
    // The index order replay's pages are read in (its LIMIT makes the planner choose it).
    sqlx::query("SET enable_sort = off")
        .execute(&mut conn)
        .await?;
    let sampler = proc::Sampler::start(None, Some(database.to_owned()));
    let started = Instant::now();
    let mut stream = conn
        .copy_out_raw(
            "COPY (SELECT position, txid, tenant_id, provider, stream_id, event_type,
                          schema_version, occurred_at, recorded_at, compact,
                          CASE WHEN compact IS NULL THEN data::text END
                     FROM events ORDER BY txid, position) TO STDOUT (FORMAT binary)",
        )
        .await?;
    let mut bytes = 0;
    let mut buffered = Vec::new();
    let mut events = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bytes += chunk.len();
        // Rows are counted by their field-count prefix (11 as a big-endian i16).
        buffered.extend_from_slice(&chunk);
        events += count_rows(&mut buffered);
    }
    drop(stream);
    let wall = started.elapsed();
    let samples = sampler.finish().await;
    conn.close().await?;
    Ok(Ceiling {
        events,
        bytes,
        wall,
        samples,
    })
}

/// Counts the complete binary COPY rows at the start of `buffer` and removes them (the file
/// header, 19 bytes, is skipped first; the trailer, -1, ends the count).
fn count_rows(buffer: &mut Vec<u8>) -> usize {
    const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0";
    let mut at = 0;
    if buffer.starts_with(HEADER) {
        if buffer.len() < HEADER.len() + 8 {
            return 0;
        }
        at = HEADER.len() + 8;
    }
    let mut rows = 0;
    'rows: while let Some(fields) = buffer
        .get(at..at + 2)
        .and_then(|s| <[u8; 2]>::try_from(s).ok())
        .map(i16::from_be_bytes)
    {
        if fields < 0 {
            at = buffer.len();
            break;
        }
        let mut next = at + 2;
        for _ in 0..fields {
            let Some(len) = buffer
                .get(next..next + 4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map(i32::from_be_bytes)
            else {
                break 'rows;
            };
            next += 4 + usize::try_from(len).unwrap_or(0);
            if next > buffer.len() {
                break 'rows;
            }
        }
        at = next;
        rows += 1;
    }
    buffer.drain(..at);
    rows
}

/// What was written.
#[derive(Debug, Default)]
pub(crate) struct Generated {
    events: usize,
    pub(crate) calls: usize,
    answered: usize,
    with_transcript: usize,
}

/// Writes about `target` events (whole calls) for `tenant` with binary COPY.
pub(crate) async fn generate(
    url: &str,
    tenant: Uuid,
    run: &str,
    target: usize,
) -> anyhow::Result<Generated> {
    let workload = Workload::new()?;
    let mut generated = Generated::default();
    // (sort key, call, step): step s of call c goes at c + s * SPREAD.
    let mut order: Vec<(u64, u64, usize)> = Vec::with_capacity(target + 8);
    let mut call = 0_u64;
    while order.len() < target {
        let kind = CallKind::of_call(call);
        let steps = workload.steps(kind).len();
        for (step, s) in (0..steps).zip(0_u64..) {
            order.push((call + s * SPREAD, call, step));
        }
        generated.calls += 1;
        generated.answered += usize::from(kind.answered());
        generated.with_transcript += usize::from(kind == CallKind::AnsweredWithTranscript);
        call += 1;
    }
    order.sort_unstable();
    generated.events = order.len();

    let metadata: Vec<Vec<String>> = CallKind::ALL
        .iter()
        .map(|&kind| {
            workload
                .steps(kind)
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "received_at": s.occurred_at,
                        "content_type": "application/json",
                        "user_agent": "calltrail-bench",
                        "body_bytes": s.payload.len(),
                    })
                    .to_string()
                })
                .collect()
        })
        .collect();

    let mut conn = PgConnection::connect(url)
        .await
        .context("cannot connect to the bench database")?;
    let mut scratch = Vec::with_capacity(4096);
    for chunk in order.chunks(EVENTS_PER_COPY) {
        let mut copy = conn.copy_in_raw(COPY_EVENTS).await?;
        let mut buffer = Vec::with_capacity(SEND_BYTES + 16 * 1024);
        buffer.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buffer.extend_from_slice(&0_i32.to_be_bytes()); // flags
        buffer.extend_from_slice(&0_i32.to_be_bytes()); // header extension
        for &(_, call, step_index) in chunk {
            let kind = CallKind::of_call(call);
            let step = workload
                .steps(kind)
                .get(step_index)
                .context("step out of range")?;
            let meta = metadata
                .get(kind.index())
                .and_then(|m| m.get(step_index))
                .context("metadata out of range")?;
            let (id, number) = (call_id(run, call), phone(call));
            buffer.extend_from_slice(&11_i16.to_be_bytes());
            field(&mut buffer, tenant.as_bytes())?;
            field(&mut buffer, b"bolna")?;
            field(&mut buffer, id.as_bytes())?;
            field(&mut buffer, step.status.as_bytes())?;
            field(&mut buffer, &CALL_EVENT_SCHEMA_VERSION.to_be_bytes())?;
            field(&mut buffer, &pg_timestamp(step.occurred_at).to_be_bytes())?;
            scratch.clear();
            scratch.push(1); // jsonb binary format version
            step.data.render_into(&mut scratch, &id, &number);
            field(&mut buffer, &scratch)?;
            // The compact copy the appender writes beside `data` (calltrail_eventlog::compact).
            let data = std::str::from_utf8(scratch.get(1..).unwrap_or_default())?;
            let compact = calltrail_eventlog::compact::encode(CALL_EVENT_SCHEMA_VERSION, data)
                .context("generated data has no compact copy")?;
            scratch.clear();
            scratch.push(1);
            step.payload.render_into(&mut scratch, &id, &number);
            field(&mut buffer, &scratch)?;
            field(
                &mut buffer,
                &Sha256::digest(scratch.get(1..).unwrap_or_default()),
            )?;
            let mut meta_field = Vec::with_capacity(meta.len() + 1);
            meta_field.push(1);
            meta_field.extend_from_slice(meta.as_bytes());
            field(&mut buffer, &meta_field)?;
            field(&mut buffer, &compact)?;
            if buffer.len() >= SEND_BYTES {
                copy.send(std::mem::take(&mut buffer)).await?;
                buffer.reserve(SEND_BYTES + 16 * 1024);
            }
        }
        buffer.extend_from_slice(&(-1_i16).to_be_bytes()); // trailer
        copy.send(buffer).await?;
        copy.finish().await.context("COPY into events failed")?;
    }
    conn.close().await?;
    Ok(generated)
}

/// One binary COPY field: its length, then its bytes.
fn field(buffer: &mut Vec<u8>, bytes: &[u8]) -> anyhow::Result<()> {
    buffer.extend_from_slice(
        &i32::try_from(bytes.len())
            .context("a COPY field over 2 GiB")?
            .to_be_bytes(),
    );
    buffer.extend_from_slice(bytes);
    Ok(())
}

/// Microseconds since 2000-01-01 UTC: PostgreSQL's binary `timestamptz`.
fn pg_timestamp(at: DateTime<Utc>) -> i64 {
    let epoch = Utc
        .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .map_or(946_684_800_000_000, |e| e.timestamp_micros());
    at.timestamp_micros() - epoch
}

/// What the replay process reported and used.
#[derive(Debug, Default)]
pub(crate) struct Measured {
    events: u64,
    seconds: f64,
    events_per_second: f64,
    wall: f64,
    samples: proc::Samples,
}

/// The JSON summary `calltrail replay` prints last.
#[derive(Debug, serde::Deserialize)]
struct ReplaySummary {
    events: u64,
    seconds: f64,
    events_per_second: f64,
}

/// Runs `calltrail replay`, sampling its peak RSS and CPU time until it exits.
pub(crate) async fn run_replay(url: &str, database: &str) -> anyhow::Result<Measured> {
    let log_path = crate::report::bench_dir()?.join("replay.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let started = Instant::now();
    let mut child = server::calltrail(url)?
        .arg("replay")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .context("cannot start calltrail replay")?;
    let pid = child.id().context("calltrail replay exited at once")?;
    let sampler = proc::Sampler::start(Some(pid), Some(database.to_owned()));
    let stdout = child
        .stdout
        .take()
        .context("no stdout of calltrail replay")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut last_line = String::new();
    let status = tokio::time::timeout(REPLAY_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if !line.trim().is_empty() {
                last_line = line;
            }
        }
        // stdout closed: the process is ending.
        anyhow::Ok(child.wait().await?)
    })
    .await
    .context("calltrail replay did not finish in time")??;
    let wall = started.elapsed().as_secs_f64();
    let samples = sampler.finish().await;
    anyhow::ensure!(
        status.success(),
        "calltrail replay failed ({status}); see {}",
        log_path.display()
    );
    let summary: ReplaySummary = serde_json::from_str(&last_line)
        .with_context(|| format!("unexpected last line of calltrail replay: {last_line:?}"))?;
    Ok(Measured {
        events: summary.events,
        seconds: summary.seconds,
        events_per_second: summary.events_per_second,
        wall,
        samples,
    })
}
