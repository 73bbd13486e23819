//! The `ingest` scenario: webhooks over HTTP into `calltrail serve`, end to end.
//!
//! Per level: a fresh database, a tenant made with `calltrail admin create-user`, the release
//! `calltrail serve` as a child process on a free loopback port, and the load generator
//! (`calltrail-bench loadgen`) as another child process. Measured: webhooks/s and latency (by
//! the load generator), the server's CPU seconds (`/proc/<pid>/stat` before and after) and peak
//! RSS (`VmHWM`), PostgreSQL's CPU seconds and how busy the machine was. Afterwards every
//! webhook answered 202 is looked up in the log by `(stream_id, event_type)`: `missing` must be
//! 0. With [`Mix::Mixed`] the tenant gets a signing secret of each provider (`calltrail admin
//! set-provider-secret`) and the calls are of all five providers, signed. The projector run
//! also reports how far the projector was behind when the load stopped
//! and how long it took to catch up. [`Level::log_level`] sets the server's `RUST_LOG` (the
//! `logs` scenario compares `info`, one line per webhook, with `warn`).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use calltrail_testkit::TestDb;
use sqlx::PgPool;
use uuid::Uuid;

use calltrail_core::Provider;

use crate::loadgen::{ClientKind, LoadgenArgs, Summary};
use crate::proc;
use crate::report::{bench_dir, round3, Row};
use crate::server::{self, Server};
use crate::workload::{bench_secret, Mix};

/// The `CALLTRAIL_SECRETS_KEY` of a mixed run's server (a bench database's made-up key).
const BENCH_SECRETS_KEY: &str = "Y2FsbHRyYWlsLWJlbmNoLW9ubHktc2VjcmV0cy1rZXk=";
/// The `CALLTRAIL_PUBLIC_URL` of a mixed run's server: what Twilio's signatures cover.
const BENCH_PUBLIC_URL: &str = "https://calltrail.bench.example";

/// The load generator is killed after this long.
const LOADGEN_TIMEOUT: Duration = Duration::from_secs(1_200);
/// The projector gets this long to catch up after the load.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(600);

/// One ingest run.
#[derive(Debug, Clone, Copy)]
pub struct Level {
    /// Connections of the load generator.
    pub connections: usize,
    /// Webhooks posted.
    pub webhooks: usize,
    /// Whether `serve` runs its projector.
    pub projector: bool,
    /// The load generator's HTTP client.
    pub client: ClientKind,
    /// Bolna's calls only, or all five providers'.
    pub mix: Mix,
    /// The server's `RUST_LOG` (`None`: `info`, as always).
    pub log_level: Option<&'static str>,
}

/// Runs one level against a fresh database and server.
pub async fn level(level: Level) -> anyhow::Result<Row> {
    let db = TestDb::new().await;
    let tenant = server::create_user(db.url()).await?;
    let dir = bench_dir()?;
    let label = format!(
        "ingest-c{}{}{}{}",
        level.connections,
        if level.projector { "-projector" } else { "" },
        if level.mix == Mix::Mixed {
            "-mixed"
        } else {
            ""
        },
        level
            .log_level
            .map(|l| format!("-log-{l}"))
            .unwrap_or_default()
    );
    let mut env = Vec::new();
    if level.mix == Mix::Mixed {
        for &provider in Provider::ALL {
            if provider.webhooks().signs_webhooks() {
                let secret = bench_secret(provider);
                server::set_provider_secret(
                    db.url(),
                    BENCH_SECRETS_KEY,
                    &tenant,
                    provider.as_str(),
                    &secret,
                )
                .await?;
            }
        }
        env.push(("CALLTRAIL_SECRETS_KEY", BENCH_SECRETS_KEY.to_owned()));
        env.push(("CALLTRAIL_PUBLIC_URL", BENCH_PUBLIC_URL.to_owned()));
    }
    if let Some(log_level) = level.log_level {
        env.push(("RUST_LOG", log_level.to_owned()));
    }
    let server = Server::start_env(
        db.url(),
        level.projector,
        &env,
        &dir.join(format!("{label}.serve.log")),
    )
    .await?;
    let run = Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(8)
        .collect::<String>();
    let args = LoadgenArgs {
        addr: server.addr(),
        path: match level.mix {
            Mix::Bolna => format!("/v1/webhooks/bolna/{}", tenant.webhook_token),
            Mix::Mixed => format!("/v1/webhooks/{{provider}}/{}", tenant.webhook_token),
        },
        mix: level.mix,
        public_url: BENCH_PUBLIC_URL.to_owned(),
        connections: level.connections,
        webhooks: level.webhooks,
        duplicates_per_mille: 30,
        seed: u64::try_from(level.connections).unwrap_or(0) + u64::from(level.projector),
        run,
        acked: dir.join(format!("{label}.acked.tsv")),
        client: level.client,
    };

    let pool = PgPool::connect(db.url())
        .await
        .context("cannot connect to the bench database")?;
    let sampler = proc::Sampler::start(Some(server.pid()), Some(db.name().to_owned()));
    let summary = run_loadgen(&args).await;
    let load = sampler.finish().await;
    let cpu_at_end = proc::cpu_seconds(server.pid())?;
    let summary = match summary {
        Ok(summary) => summary,
        Err(error) => {
            server.stop().await.ok();
            return Err(error);
        }
    };
    let caught_up = if level.projector {
        Some(catch_up(&pool).await)
    } else {
        None
    };
    let peak_rss = proc::peak_rss_mib(server.pid())?;
    let cpu_catch_up = proc::cpu_seconds(server.pid())? - cpu_at_end;
    server.stop().await?;
    let verified = verify(&pool, tenant.user_id, &args.acked).await?;
    pool.close().await;

    let server_cpu = load.cpu_s;
    let mut row = Row::new(
        "ingest",
        format!(
            "c={}{}",
            level.connections,
            if level.projector { " +projector" } else { "" }
        ),
        summary.sent,
        Duration::from_secs_f64(summary.seconds.max(0.0)),
        summary
            .latencies_us
            .iter()
            .map(|&us| Duration::from_micros(us))
            .collect(),
    )
    .detail("client", summary.client.as_str())
    .detail("accepted_202", summary.accepted)
    .detail("duplicates_200", summary.duplicates)
    .detail("errors", summary.errors)
    .detail("acked_twice", summary.acked_twice)
    .detail("missing", verified.missing)
    .detail("stored_twice", verified.stored_twice)
    .detail("unacked_in_log", verified.unacked_in_log)
    .detail("server_cpu_s", round3(server_cpu))
    .detail(
        "server_cpu_us_per_webhook",
        round3(per_webhook_us(server_cpu, summary.sent)),
    )
    .detail("server_peak_rss_mib", round3(peak_rss))
    .detail("loadgen_cpu_s", round3(summary.cpu_seconds))
    .detail("postgres_cpu_s", round3(load.postgres_cpu_s))
    .detail(
        "postgres_cpu_us_per_webhook",
        round3(per_webhook_us(load.postgres_cpu_s, summary.sent)),
    )
    .detail("postgres_all_dbs_cpu_s", round3(load.postgres_all_cpu_s))
    .detail("machine_cores_busy", round3(load.machine_cores_busy));
    if !summary.error_samples.is_empty() {
        row = row.detail("error_samples", summary.error_samples.clone());
    }
    if let Some(caught_up) = caught_up {
        let (lag, seconds) = caught_up?;
        row = row
            .detail("projector_lag_at_end", lag)
            .detail("projector_catch_up_s", round3(seconds))
            .detail("server_cpu_catch_up_s", round3(cpu_catch_up));
    }
    eprintln!(
        "ingest c={}: {} acknowledged, missing: {}",
        level.connections, verified.acknowledged, verified.missing
    );
    Ok(row)
}

fn per_webhook_us(seconds: f64, webhooks: usize) -> f64 {
    let n = u32::try_from(webhooks).map_or(f64::from(u32::MAX), f64::from);
    if n > 0.0 {
        seconds * 1e6 / n
    } else {
        0.0
    }
}

/// Runs `calltrail-bench loadgen` as a child process and reads its summary.
async fn run_loadgen(args: &LoadgenArgs) -> anyhow::Result<Summary> {
    let exe = std::env::current_exe().context("cannot locate this executable")?;
    let child = tokio::process::Command::new(exe)
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the load generator")?;
    let output = tokio::time::timeout(LOADGEN_TIMEOUT, child.wait_with_output())
        .await
        .context("the load generator did not finish in time")??;
    anyhow::ensure!(
        output.status.success(),
        "the load generator failed ({})",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .context("the load generator printed nothing")?;
    serde_json::from_str(line).context("unexpected load generator output")
}

/// Events after the projector's checkpoint (all of them when it has none yet).
const LAG: &str = "\
WITH c AS (SELECT coalesce(max(txid), 0) AS txid, coalesce(max(position), 0) AS position
             FROM projector_checkpoints WHERE name = 'read_models')
SELECT count(*) FROM events e, c WHERE (e.txid, e.position) > (c.txid::text::xid8, c.position)";

/// `(events behind when the load stopped, seconds until none)`.
async fn catch_up(pool: &PgPool) -> anyhow::Result<(i64, f64)> {
    let started = Instant::now();
    let at_end: i64 = sqlx::query_scalar(LAG).fetch_one(pool).await?;
    let mut behind = at_end;
    while behind > 0 {
        anyhow::ensure!(
            started.elapsed() < CATCH_UP_TIMEOUT,
            "the projector was still {behind} events behind after {CATCH_UP_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        behind = sqlx::query_scalar(LAG).fetch_one(pool).await?;
    }
    Ok((at_end, started.elapsed().as_secs_f64()))
}

/// The outcome of looking the acknowledged keys up in the log.
#[derive(Debug)]
struct Verified {
    acknowledged: usize,
    missing: i64,
    stored_twice: i64,
    unacked_in_log: i64,
}

/// Every key answered 202 must be in the log exactly once. Call ids are unique to the run
/// whatever the provider, so the key is looked up without it.
async fn verify(pool: &PgPool, tenant: Uuid, acked: &Path) -> anyhow::Result<Verified> {
    let text = std::fs::read_to_string(acked)
        .with_context(|| format!("cannot read {}", acked.display()))?;
    let (mut streams, mut types) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (stream, event_type) = line
            .split_once('\t')
            .with_context(|| format!("bad line in {}", acked.display()))?;
        streams.push(stream.to_owned());
        types.push(event_type.to_owned());
    }
    let (missing, stored_twice): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE n = 0), count(*) FILTER (WHERE n > 1)
           FROM (SELECT count(e.position) AS n
                   FROM unnest($2::text[], $3::text[]) AS a(s, t)
                   LEFT JOIN events e
                     ON e.tenant_id = $1 AND e.stream_id = a.s AND e.event_type = a.t
                  GROUP BY a.s, a.t) per_key",
    )
    .bind(tenant)
    .bind(&streams)
    .bind(&types)
    .fetch_one(pool)
    .await?;
    let in_log: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(pool)
        .await?;
    let acknowledged = streams.len();
    let found = i64::try_from(acknowledged)? - missing;
    Ok(Verified {
        acknowledged,
        missing,
        stored_twice,
        unacked_in_log: in_log - found,
    })
}
