//! Crashes: SIGKILL right after a burst of concurrent webhooks (every acknowledged one
//! survives), a graceful stop under load, and a projector process that dies between a batch's
//! writes and its commit (drill 3: nothing of the batch is visible, the restart catches up).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_webhook_survives_a_sigkill() {
    // The in-process app is only used for its database and helpers; the server under test is a child process.
    let app = spawn_app_with(|s| s.projector = false).await;
    let tenant = app.create_tenant().await;
    let port = free_port();
    let mut child = serve(app.db.url(), port);
    let client = reqwest::Client::new();
    wait_ready(&client, port).await;

    let success = fixtures::scenario("bolna/success");
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut senders = Vec::new();
    // 64 connections, as in the drill.
    for worker in 0..64 {
        let (client, token, acked, success) = (
            client.clone(),
            tenant.webhook_token.clone(),
            acked.clone(),
            success.clone(),
        );
        senders.push(tokio::spawn(async move {
            for i in 0..40 {
                let id = format!("crash-{worker}-{i}");
                for body in &success {
                    let mut value: Value = serde_json::from_slice(body).unwrap();
                    value["id"] = json!(id);
                    let status = value["status"].as_str().unwrap().to_owned();
                    let sent = client
                        .post(format!("http://127.0.0.1:{port}/v1/webhooks/bolna/{token}"))
                        .header("content-type", "application/json")
                        .body(serde_json::to_vec(&value).unwrap())
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status().as_u16() == 202 => {
                            acked.lock().await.push((id.clone(), status))
                        }
                        _ => return,
                    }
                }
            }
        }));
    }
    // Kill once a good part of the burst is acknowledged (poll, no fixed sleep).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().await.len() < 1500 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    for sender in senders {
        sender.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert!(!acked.is_empty());

    let restarted = std::time::Instant::now();
    let mut child = serve(app.db.url(), port);
    wait_ready(&client, port).await;
    let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
    let stored: Vec<(String, String)> = sqlx::query_as("SELECT stream_id, event_type FROM events")
        .fetch_all(&pool)
        .await
        .unwrap();
    let stored: std::collections::HashSet<_> = stored.into_iter().collect();
    let missing: Vec<_> = acked.iter().filter(|k| !stored.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged webhooks lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );

    // ... and the restarted server projects all of them (once the killed one's lease runs out).
    app.wait_until_projected().await;
    let projected: i64 = sqlx::query_scalar("SELECT count(DISTINCT execution_id) FROM calls")
        .fetch_one(&pool)
        .await
        .unwrap();
    let calls: std::collections::HashSet<_> = acked.iter().map(|(id, _)| id.clone()).collect();
    assert!(usize::try_from(projected).unwrap() >= calls.len());
    eprintln!(
        "crash drill: SIGKILL after {} acknowledged webhooks ({} in the log, so {} were written \
         but not acknowledged); all projected {:?} after the restart",
        acked.len(),
        stored.len(),
        stored.len() - acked.len(),
        restarted.elapsed()
    );

    // The projector was killed mid-stream too: what it built after the restart equals a full replay.
    child.kill().unwrap();
    child.wait().unwrap();
    pool.close().await;
    assert_read_tables_equal_replay(app.db.url(), "after a SIGKILL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_loses_no_acknowledged_webhook() {
    let mut app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let address = app.address.clone();
    let success = fixtures::scenario("bolna/success");
    let mut senders = Vec::new();
    for worker in 0..16 {
        let (client, address, token, success) = (
            app.client.clone(),
            address.clone(),
            tenant.webhook_token.clone(),
            success.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..200 {
                let mut value: Value = serde_json::from_slice(&success[i % 5]).unwrap();
                value["id"] = json!(format!("graceful-{worker}-{}", i / 5));
                let Ok(response) = client
                    .post(format!("{address}/v1/webhooks/bolna/{token}"))
                    .body(serde_json::to_vec(&value).unwrap())
                    .send()
                    .await
                else {
                    break;
                };
                if response.status().as_u16() == 202 {
                    acked.push((
                        value["id"].as_str().unwrap().to_owned(),
                        value["status"].as_str().unwrap().to_owned(),
                    ));
                }
            }
            acked
        }));
    }
    // Stop while the senders are busy (as soon as some webhooks have landed).
    let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap()
        < 100
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.stop().await;
    let mut acked = Vec::new();
    for sender in senders {
        acked.extend(sender.await.unwrap());
    }
    let stored: Vec<(String, String)> = sqlx::query_as("SELECT stream_id, event_type FROM events")
        .fetch_all(&pool)
        .await
        .unwrap();
    let stored: std::collections::HashSet<_> = stored.into_iter().collect();
    assert!(!acked.is_empty());
    assert!(
        acked.iter().all(|k| stored.contains(k)),
        "every 202 before shutdown is committed"
    );
    pool.close().await;
}

/// The projector's checkpoint: `(txid, position)`.
async fn checkpoint(pool: &sqlx::PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT txid, position FROM projector_checkpoints WHERE name = 'read_models'")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Posts `bodies` for each call id, in order, and expects each to be accepted.
async fn post_calls(app: &TestApp, token: &str, ids: &[String], bodies: &[Vec<u8>]) -> usize {
    let mut posted = 0;
    for id in ids {
        for body in bodies {
            let (status, answer) = app
                .post_bolna_json(token, &with_fields(body, &[("id", json!(id))]))
                .await;
            assert_eq!(status, 202, "{answer}");
            posted += 1;
        }
    }
    posted
}

/// Drill 3: a projector process aborts at the fail point between a batch's writes (read
/// tables, analysis jobs, checkpoint) and its COMMIT. Nothing of that batch is visible; the
/// restarted projector folds it again, and the read tables equal a full replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_between_its_writes_and_its_commit_leaves_nothing_half_written() {
    use std::os::unix::process::ExitStatusExt;

    // Webhooks go to the in-process app (HTTP only, it stays up); the projector is a child.
    let app = spawn_app_with(|s| s.projector = false).await;
    let tenant = app.create_tenant().await;
    let token = tenant.webhook_token.clone();
    let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
    let success = fixtures::scenario("bolna/success");
    let first: Vec<String> = (0..20).map(|i| format!("fp-first-{i}")).collect();
    let second: Vec<String> = (0..20).map(|i| format!("fp-second-{i}")).collect();

    // First wave, projected and committed by a projector without the fail point, which then
    // stops gracefully (releasing the projection): 20 calls, initiated and ringing.
    let wave1 = post_calls(&app, &token, &first, &success[..2]).await;
    let port = free_port();
    let mut projector = serve(app.db.url(), port);
    app.wait_until_projected().await;
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &projector.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(projector.wait().unwrap().success(), "a graceful stop");
    let committed = checkpoint(&pool).await;

    // Second wave, while no projector runs: the rest of those calls and 20 whole new ones.
    let wave2 = post_calls(&app, &token, &first, &success[2..]).await
        + post_calls(&app, &token, &second, &success).await;
    // A projector with the fail point armed dies in its first batch, after writing it. (Its
    // batch is usually the whole wave; it can be less when another transaction on the
    // server holds the log's read horizon back, which is fine: any batch must vanish.)
    let mut projector = Server::spawn(
        serve_command(app.db.url(), port)
            .env("FAILPOINTS", "projector-before-commit=return")
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped()),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = projector.try_wait().unwrap() {
            break status;
        }
        if tokio::time::Instant::now() >= deadline {
            projector.kill().unwrap();
            projector.wait().unwrap();
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut projector.stderr.take().unwrap(), &mut stderr)
                .unwrap();
            let state: (String, i64, Option<f64>) = sqlx::query_as(
                "SELECT (SELECT row_to_json(c)::text FROM projector_checkpoints c),
                        (SELECT count(*) FROM events),
                        (SELECT extract(epoch FROM max(now() - xact_start))::float8
                           FROM pg_stat_activity WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            panic!(
                "the projector did not reach its fail point in 30 s; checkpoint, events, \
                 oldest transaction on the server (s): {state:?}; its log:\n{stderr}"
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut projector.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(
        status.signal(),
        Some(6),
        "the projector died by SIGABRT at the fail point, not a clean exit: {status:?}\n{stderr}"
    );
    let aborted = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("projector-before-commit"))
        })
        .and_then(|l| l["events"].as_u64())
        .unwrap_or_else(|| panic!("no fail point line with its batch size: {stderr}"));
    assert!((1..=u64::try_from(wave2).unwrap()).contains(&aborted));

    // Nothing of the dead batch is visible: checkpoint and read tables are as the first wave left them.
    assert_eq!(checkpoint(&pool).await, committed);
    let (calls, completed, charges): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM calls),
                (SELECT count(*) FROM calls WHERE call_lifecycle_status = 'completed'),
                (SELECT count(*) FROM credit_transactions)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((calls, completed, charges), (20, 0, 0));
    assert_eq!(
        app.sql_count("SELECT count(*) FROM call_events").await,
        i64::try_from(wave1).unwrap()
    );

    // Restarted without the fail point, it takes over once the dead process's lease ends.
    let restarted = std::time::Instant::now();
    let mut projector = serve(app.db.url(), port);
    app.wait_until_projected().await;
    eprintln!(
        "projector crash drill: first wave ({wave1} events) committed; a batch of {aborted} of \
         the second wave's {wave2} events written, then SIGABRT before COMMIT, nothing of it \
         visible; the restarted projector caught up {:?} after its start",
        restarted.elapsed()
    );
    let (calls, completed): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE call_lifecycle_status = 'completed') FROM calls",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((calls, completed), (40, 40));
    projector.kill().unwrap();
    projector.wait().unwrap();
    pool.close().await;
    let compared =
        assert_read_tables_equal_replay(app.db.url(), "after a projector crash mid-batch").await;
    assert_eq!(compared, 40);
}
