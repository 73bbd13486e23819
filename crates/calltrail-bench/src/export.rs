//! The `export` scenario: peak memory of the release `calltrail serve` while
//! `GET /v1/calls.csv` streams every call of one tenant, at several sizes, so it shows whether
//! memory stays flat as the export grows (CONTRACT §6: constant memory for a million calls).
//!
//! Each size gets a fresh database whose `calls` rows are written straight by SQL
//! (`generate_series`: the export reads only the read table, and a million calls through the
//! log and replay would take most of the run), then a fresh server, so its `VmHWM` (peak RSS
//! since start, sampled from `/proc` every 100 ms) covers its start and this one export. The
//! CSV is read chunk by chunk and counted, never kept.

use std::time::Instant;

use anyhow::Context;
use calltrail_testkit::TestDb;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::proc::{self, Sampler};
use crate::report::{bench_dir, round3, Report, Row};
use crate::server::{self, Server};

/// Calls written by one `INSERT … SELECT` (bounds one statement's transaction and WAL).
const SEED_BATCH: usize = 100_000;

/// Seeds `calls` calls for each size in `sizes` and times one full export of them, noting the
/// server's peak RSS.
pub async fn run(sizes: &[usize], report: &mut Report) -> anyhow::Result<()> {
    for &calls in sizes {
        let db = TestDb::new().await;
        let tenant = server::create_user(db.url()).await?;
        let seeding = Instant::now();
        seed(db.url(), tenant.user_id, calls).await?;
        let seed_seconds = seeding.elapsed().as_secs_f64();

        let log = bench_dir()?.join(format!("export-{calls}-serve.log"));
        let server = Server::start(db.url(), false, &log).await?;
        let idle_rss = proc::peak_rss_mib(server.pid())?;
        let sampler = Sampler::start(Some(server.pid()), Some(db.name().to_owned()));
        let client = reqwest::Client::builder().build()?;
        let started = Instant::now();
        let mut response = client
            .get(format!("http://{}/v1/calls.csv", server.addr()))
            .bearer_auth(&tenant.api_key)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET /v1/calls.csv answered {}",
            response.status()
        );
        let (mut bytes, mut lines) = (0_usize, 0_usize);
        while let Some(chunk) = response.chunk().await? {
            bytes += chunk.len();
            lines += chunk.iter().filter(|b| **b == b'\n').count();
        }
        let wall = started.elapsed();
        let samples = sampler.finish().await;
        server.stop().await?;
        anyhow::ensure!(
            lines == calls + 1,
            "the export has {lines} lines for {calls} calls (and a header)"
        );
        #[allow(clippy::as_conversions)] // a byte count far below 2^52
        let csv_mib = bytes as f64 / (1024.0 * 1024.0);
        report.push(
            Row::new("export", format!("calls={calls}"), calls, wall, Vec::new())
                .detail("peak_rss_mib", round3(samples.peak_rss_mib))
                .detail("rss_before_export_mib", round3(idle_rss))
                .detail("csv_mib", round3(csv_mib))
                .detail("server_cpu_s", round3(samples.cpu_s))
                .detail("postgres_cpu_s", round3(samples.postgres_cpu_s))
                .detail("seed_seconds", round3(seed_seconds)),
        );
    }
    Ok(())
}

/// Writes `calls` completed calls of `user`, one a second from 2025-10-01, with every column a
/// real call fills (ids, phone, agent, hangup, recording, times, charge, outcome, cost).
async fn seed(url: &str, user: Uuid, calls: usize) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    let mut first = 1_usize;
    while first <= calls {
        let last = (first + SEED_BATCH - 1).min(calls);
        sqlx::query(
            "INSERT INTO calls (user_id, execution_id, provider, agent_id, phone_number, lead_type,
                    call_lifecycle_status, status, duration_seconds, duration_minutes,
                    credits_used, hangup_by, hangup_reason, hangup_provider_code, recording_url,
                    ringing_started_at, call_answered_at, call_disconnected_at, completed_at,
                    created_at, state, last_position, outcome, cost, cost_unit)
             SELECT $1, 'export-' || g, 'bolna', 'agent-bench', '+1415' || lpad((g % 10000000)::text, 7, '0'),
                    'outbound', 'completed', 'completed', 28, 1, 1, 'Callee',
                    'Call recipient hung up', 4000, 'https://recordings.example/' || g || '.mp3',
                    t, t + interval '5 s', t + interval '33 s', t + interval '2 min', t, '{}', g,
                    'other', 4.87, 'cents'
               FROM generate_series($2::bigint, $3::bigint) g,
                    LATERAL (SELECT timestamptz '2025-10-01' + g * interval '1 s' AS t) x",
        )
        .bind(user)
        .bind(i64::try_from(first).context("too many calls")?)
        .bind(i64::try_from(last).context("too many calls")?)
        .execute(&mut conn)
        .await?;
        first = last + 1;
    }
    sqlx::query("VACUUM (ANALYZE) calls")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}
