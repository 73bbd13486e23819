//! `CALLTRAIL_READ_DATABASE_URL`: read queries go to a streaming replica while it is healthy,
//! to the primary otherwise; `/readyz` and `/metrics` say which and why.

use std::time::{Duration, Instant};

use calltrail_projections::tenancy::NewUser;
use calltrail_projections::ReadStore;
use serde_json::{json, Value};

use crate::helpers::*;

/// Polls `/readyz` on `base` until `ready` holds for its body, or fails after `limit`.
async fn readyz_until(
    client: &reqwest::Client,
    base: &str,
    limit: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let response = client.get(format!("{base}/readyz")).send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "/readyz with a replica: {body}");
        if ready(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz never got there: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_is_down_sends_reads_to_the_primary_and_the_node_stays_ready() {
    let port = free_port(); // nothing listens there
    let app = spawn_app_with(|s| {
        s.read_database_url = Some(format!("postgres://postgres@127.0.0.1:{port}/calltrail"));
    })
    .await;
    let tenant = app.create_tenant().await;
    for body in fixtures::scenario("bolna/busy") {
        let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &body).await;
        assert_eq!(status, 202, "{answer}");
    }
    let body = readyz_until(&app.client, &app.address, Duration::from_secs(15), |b| {
        b["replica"]["state"] == "down"
    })
    .await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["replica"]["reads"], "primary");
    // Served from the primary: the call reaches its final state.
    app.wait_for(&tenant, &format!("/v1/calls/{BUSY}"), |s, b| {
        s == 200 && b["call_lifecycle_status"] == "busy"
    })
    .await;
    let metrics = app.metrics().await;
    assert!(
        metrics.lines().any(|l| l == "calltrail_replica_reads 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_url_naming_a_primary_is_not_used_for_reads() {
    let app = spawn_app_with(|s| s.read_database_url = Some(s.database_url.clone())).await;
    let body = readyz_until(&app.client, &app.address, Duration::from_secs(15), |b| {
        b["replica"]["state"] != "starting"
    })
    .await;
    assert_eq!(body["replica"]["state"], "not_a_standby", "{body}");
    assert_eq!(body["replica"]["reads"], "primary");
}

/// Scans of `calls` counted on the standby (its own statistics: only queries run there).
async fn calls_scans_on(standby: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT (COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0))::bigint
           FROM pg_stat_user_tables WHERE relname = 'calls'",
    )
    .fetch_one(standby)
    .await
    .unwrap()
}

/// With a real asynchronous standby (`scripts/lib/replication.sh … off`, run by
/// `scripts/lib/drill7`): reads go to it (its own scan counters move), lag is reported, a
/// paused replay sends reads to the primary after `CALLTRAIL_READ_MAX_LAG_SECS`, and a stopped
/// standby leaves the node ready with reads on the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a streaming standby: run by scripts/lib/drill7 (scripts/test, scripts/drills)"]
async fn reads_go_to_a_streaming_replica_while_it_keeps_up() {
    let var =
        |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} (scripts/lib/drill7)"));
    let (primary_url, standby_url) = (
        var("CALLTRAIL_PAIR_PRIMARY_URL"),
        var("CALLTRAIL_PAIR_STANDBY_URL"),
    );
    let (pg_ctl, standby_data) = (
        var("CALLTRAIL_PAIR_PG_CTL"),
        var("CALLTRAIL_PAIR_STANDBY_DATA"),
    );
    let migrate = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .arg("migrate")
        .env("DATABASE_URL", &primary_url)
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let store = ReadStore::connect(&primary_url, 2).unwrap();
    let tenant = store
        .tenancy()
        .create_user(&NewUser {
            email: "replica@tenant.example".to_owned(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let port = free_port();
    let mut command = serve_command(&primary_url, port);
    command
        .env("CALLTRAIL_READ_DATABASE_URL", &standby_url)
        .env("CALLTRAIL_READ_MAX_LAG_SECS", "1");
    let mut server = Server::spawn(&mut command);
    let client = reqwest::Client::new();
    wait_ready(&client, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let post = |id: &str| {
        let (client, base, token, id) = (
            client.clone(),
            base.clone(),
            tenant.webhook_token.clone(),
            id.to_owned(),
        );
        async move {
            for body in fixtures::scenario("bolna/success") {
                let body = with_fields(&body, &[("id", json!(id))]);
                let response = client
                    .post(format!("{base}/v1/webhooks/bolna/{token}"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 202);
            }
        }
    };
    let get_call = |id: &str| {
        let (client, url, key) = (
            client.clone(),
            format!("{base}/v1/calls/{id}"),
            tenant.api_key.clone(),
        );
        async move {
            let response = client.get(url).bearer_auth(key).send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let wait_completed = |id: &'static str| async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = get_call(id).await;
            if status == 200 && body["call_lifecycle_status"] == "completed" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never completed: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    // Healthy: reads are served by the standby.
    let body = readyz_until(&client, &base, Duration::from_secs(15), |b| {
        b["replica"]["state"] == "ok"
    })
    .await;
    assert_eq!(body["replica"]["reads"], "replica", "{body}");
    post("replica-a").await;
    wait_completed("replica-a").await;
    let standby = sqlx::PgPool::connect(&standby_url).await.unwrap();
    let before = calls_scans_on(&standby).await;
    for _ in 0..5 {
        assert_eq!(get_call("replica-a").await.0, 200);
    }
    let counted_by = Instant::now() + Duration::from_secs(10);
    while calls_scans_on(&standby).await < before + 5 {
        assert!(
            Instant::now() < counted_by,
            "the standby did not serve the reads"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Replay paused: the replica falls behind, reads go to the primary.
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&standby)
        .await
        .unwrap();
    post("replica-b").await;
    let body = readyz_until(&client, &base, Duration::from_secs(15), |b| {
        b["replica"]["state"] == "lagging"
    })
    .await;
    eprintln!("replica drill: replay paused: {body}");
    assert_eq!(body["replica"]["reads"], "primary");
    assert!(body["replica"]["lag_bytes"].as_i64().unwrap() > 0, "{body}");
    wait_completed("replica-b").await;
    let on_standby: i64 =
        sqlx::query_scalar("SELECT count(*) FROM calls WHERE execution_id = 'replica-b'")
            .fetch_one(&standby)
            .await
            .unwrap();
    assert_eq!(
        on_standby, 0,
        "the paused standby does not have the call the API showed"
    );

    // Replay resumed: back to the replica.
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&standby)
        .await
        .unwrap();
    let body = readyz_until(&client, &base, Duration::from_secs(15), |b| {
        b["replica"]["state"] == "ok"
    })
    .await;
    eprintln!("replica drill: resumed: {body}");
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l == "calltrail_replica_reads 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("calltrail_replica_lag_seconds"),
        "{metrics}"
    );
    standby.close().await;

    // Standby stopped: the node stays ready, reads go to the primary.
    let output = std::process::Command::new(&pg_ctl)
        .args(["-D", &standby_data, "-m", "immediate", "-w", "stop"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let body = readyz_until(&client, &base, Duration::from_secs(15), |b| {
        b["replica"]["state"] == "down"
    })
    .await;
    assert_eq!(body["replica"]["reads"], "primary");
    let (status, call) = get_call("replica-b").await;
    assert_eq!(
        (status, &call["call_lifecycle_status"]),
        (200, &json!("completed"))
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
