//! Drill 7: the primary dies under load, the standby is promoted, and calltrail follows by
//! itself. Needs the two clusters of `scripts/lib/replication.sh` (`CALLTRAIL_PAIR_*`), so it
//! is ignored in the plain suite; `./scripts/test` (short form) and `./scripts/drills` start
//! the clusters and run it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calltrail_projections::tenancy::NewUser;
use calltrail_projections::ReadStore;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

/// The clusters `scripts/lib/replication.sh` started.
struct Pair {
    standby_url: String,
    failover_url: String,
    primary_data: String,
    standby_data: String,
    pg_ctl: String,
}

impl Pair {
    fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!(
                    "{name} is not set: run this drill through ./scripts/drills or ./scripts/test"
                )
            })
        };
        Self {
            standby_url: var("CALLTRAIL_PAIR_STANDBY_URL"),
            failover_url: var("CALLTRAIL_PAIR_FAILOVER_URL"),
            primary_data: var("CALLTRAIL_PAIR_PRIMARY_DATA"),
            standby_data: var("CALLTRAIL_PAIR_STANDBY_DATA"),
            pg_ctl: var("CALLTRAIL_PAIR_PG_CTL"),
        }
    }

    /// SIGKILL to the primary's postmaster (the first line of `postmaster.pid`).
    fn kill_primary(&self) {
        let pid_file = format!("{}/postmaster.pid", self.primary_data);
        let pids = std::fs::read_to_string(&pid_file).unwrap();
        let pid = pids.lines().next().unwrap().trim().to_owned();
        let status = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -KILL {pid}");
    }

    /// `pg_ctl promote -w` on the standby.
    fn promote_standby(&self) {
        let output = std::process::Command::new(&self.pg_ctl)
            .args(["-D", &self.standby_data, "-w", "promote"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pg_ctl promote: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// What the 64 senders saw.
#[derive(Debug, Default)]
struct Seen {
    /// When each 2xx answer arrived.
    acknowledged: Vec<Instant>,
    /// When each 503 arrived.
    unavailable: Vec<Instant>,
    slowest: Duration,
    /// Anything but 200/202/503, or no answer.
    other: Vec<String>,
}

/// Senders, and how long each phase lasts (`CALLTRAIL_DRILL7_SECONDS`, default 3).
const SENDERS: usize = 64;
/// Longest a webhook answer may take, 503 included: the pools' acquire timeout (3 s) plus slack.
const ANSWER_LIMIT: Duration = Duration::from_secs(8);

/// Drill 7 (docs/reliability.md): 64 connections post whole lifecycles to a child
/// `calltrail serve` whose `DATABASE_URL` lists both clusters; the primary (synchronous
/// replication on) gets SIGKILL, the standby is promoted. Asserts: only 200/202/503 during
/// the switch, none slower than [`ANSWER_LIMIT`]; 2xx again without a restart; every
/// acknowledged webhook in the new primary's log exactly once; the projector resumes; the
/// read tables equal a full replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "kills a PostgreSQL primary: run by scripts/drills and scripts/test on their own clusters"]
async fn a_killed_primary_and_a_promoted_standby_lose_no_acknowledged_webhook() {
    let pair = Pair::from_env();
    let phase = Duration::from_secs(
        std::env::var("CALLTRAIL_DRILL7_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    let migrate = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .arg("migrate")
        .env("DATABASE_URL", &pair.failover_url)
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "calltrail migrate on the pair: {}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let store = ReadStore::connect(&pair.failover_url, 2).unwrap();
    let tenant = store
        .tenancy()
        .create_user(&NewUser {
            email: "drill7@tenant.example".to_owned(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    store
        .tenancy()
        .add_agent(tenant.user_id, "bolna", AGENT, None)
        .await
        .unwrap();

    let port = free_port();
    let log_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("drill7-serve.log");
    let mut command = serve_command(&pair.failover_url, port);
    command.stderr(std::fs::File::create(&log_path).unwrap());
    let mut server = Server::spawn(&mut command);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(SENDERS)
        .build()
        .unwrap();
    wait_ready(&client, port).await;

    let base = format!("http://127.0.0.1:{port}");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = CancellationToken::new();
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let (client, base, token, seen, stop) = (
            client.clone(),
            base.clone(),
            tenant.webhook_token.clone(),
            seen.clone(),
            stop.clone(),
        );
        senders.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut lifecycles = 0usize;
            // Whole lifecycles, each webhook retried until acknowledged, as a provider does.
            while !stop.is_cancelled() {
                let id = format!("drill7-{sender}-{lifecycles}");
                for body in fixtures::scenario("bolna/success") {
                    let body = with_fields(&body, &[("id", json!(id))]);
                    loop {
                        assert!(Instant::now() < deadline, "a webhook was never accepted");
                        let started = Instant::now();
                        let answer = client
                            .post(format!("{base}/v1/webhooks/bolna/{token}"))
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await
                            .map(|r| r.status().as_u16());
                        let done = Instant::now();
                        let accepted = {
                            let mut seen = seen.lock().unwrap();
                            seen.slowest = seen.slowest.max(done - started);
                            match answer {
                                Ok(200 | 202) => {
                                    seen.acknowledged.push(done);
                                    true
                                }
                                Ok(503) => {
                                    seen.unavailable.push(done);
                                    false
                                }
                                Ok(status) => {
                                    seen.other
                                        .push(format!("{status} after {:?}", done - started));
                                    false
                                }
                                Err(error) => {
                                    seen.other
                                        .push(format!("{error} after {:?}", done - started));
                                    false
                                }
                            }
                        };
                        if accepted {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                lifecycles += 1;
            }
            lifecycles
        }));
    }
    let acknowledged = |seen: &Mutex<Seen>| seen.lock().unwrap().acknowledged.len();

    // Before: the load flows for a phase (and at least one lifecycle per sender).
    let started = Instant::now();
    while started.elapsed() < phase || acknowledged(&seen) < SENDERS * 5 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the load did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = acknowledged(&seen);

    // The switch: SIGKILL, wait until the endpoint has answered 503, promote.
    let killed_at = Instant::now();
    pair.kill_primary();
    let outage_by = killed_at + Duration::from_secs(20);
    while seen.lock().unwrap().unavailable.is_empty() {
        assert!(
            Instant::now() < outage_by,
            "no 503 within 20 s of the primary's death"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first_503 = seen.lock().unwrap().unavailable[0] - killed_at;
    let promote_at = Instant::now();
    pair.promote_standby();
    let promoted_in = promote_at.elapsed();
    let back_by = Instant::now() + Duration::from_secs(30);
    let back_at = loop {
        let first_after = seen
            .lock()
            .unwrap()
            .acknowledged
            .iter()
            .copied()
            .find(|at| *at > promote_at);
        if let Some(at) = first_after {
            break at;
        }
        assert!(
            Instant::now() < back_by,
            "no 2xx within 30 s of the promotion"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    // After: the load flows for another phase against the new primary.
    tokio::time::sleep(phase).await;
    stop.cancel();
    let mut lifecycles = BTreeMap::new();
    for (sender, handle) in senders.into_iter().enumerate() {
        lifecycles.insert(sender, handle.await.unwrap());
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let total: usize = lifecycles.values().sum();
    // Time without service: the longest stretch with no 2xx at all, across every connection.
    let mut times = seen.acknowledged.clone();
    times.sort();
    let without_service = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    // Answers already on their way when the primary died (committed on both machines first).
    let in_flight = seen
        .acknowledged
        .iter()
        .filter(|at| **at > killed_at && **at < promote_at)
        .count();
    eprintln!(
        "failover drill: {before} webhooks acknowledged before the kill; first 503 {first_503:?} \
         after it; promoted {:?} after the kill (pg_ctl promote took {promoted_in:?}); first 2xx \
         after the promotion {:?} after the kill, {:?} after pg_ctl promote began; {} acknowledged in all ({total} \
         lifecycles over {SENDERS} connections), {in_flight} of them answered between the kill \
         and the promotion (in flight when the primary died); {} answers 503; slowest answer {:?}; time without \
         service {without_service:?}",
        promote_at - killed_at,
        back_at - killed_at,
        back_at - promote_at,
        seen.acknowledged.len(),
        seen.unavailable.len(),
        seen.slowest,
    );
    assert!(
        seen.other.is_empty(),
        "answers other than 200/202/503 (or none): {:?}",
        &seen.other[..seen.other.len().min(10)]
    );
    assert!(
        seen.slowest < ANSWER_LIMIT,
        "an answer took {:?}",
        seen.slowest
    );
    assert_eq!(seen.acknowledged.len(), total * 5);

    // Every acknowledged webhook is in the new primary's log, exactly once, and nothing else is.
    let standby = sqlx::PgPool::connect(&pair.standby_url).await.unwrap();
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&standby)
        .await
        .unwrap();
    assert!(!in_recovery, "the standby was promoted");
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT stream_id, count(*), count(DISTINCT event_type) FROM events GROUP BY stream_id",
    )
    .fetch_all(&standby)
    .await
    .unwrap();
    let logged: BTreeMap<String, (i64, i64)> = rows
        .into_iter()
        .map(|(id, n, distinct)| (id, (n, distinct)))
        .collect();
    let expected: BTreeMap<String, (i64, i64)> = lifecycles
        .iter()
        .flat_map(|(sender, n)| (0..*n).map(move |i| (format!("drill7-{sender}-{i}"), (5, 5))))
        .collect();
    if logged != expected {
        let missing: Vec<_> = expected
            .keys()
            .filter(|k| !logged.contains_key(*k))
            .take(5)
            .collect();
        let wrong: Vec<_> = logged
            .iter()
            .filter(|(k, v)| expected.get(*k) != Some(v))
            .take(5)
            .collect();
        panic!(
            "the new primary's log differs from what was acknowledged ({} calls logged, {} \
             acknowledged): missing {missing:?}, unexpected or incomplete {wrong:?}",
            logged.len(),
            expected.len()
        );
    }

    // The projector resumed on the new primary, in the same process.
    let projected_by = Instant::now() + Duration::from_secs(60);
    loop {
        let (completed,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM calls WHERE call_lifecycle_status = 'completed'")
                .fetch_one(&standby)
                .await
                .unwrap();
        if completed == i64::try_from(total).unwrap() {
            break;
        }
        assert!(
            Instant::now() < projected_by,
            "the projector did not resume: {completed} of {total} calls completed 60 s later \
             (server log: {})",
            log_path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    standby.close().await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert_read_tables_equal_replay(&pair.standby_url, "after the failover").await;
}
