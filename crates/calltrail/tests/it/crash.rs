//! SIGKILL right after a burst of concurrent webhooks: every acknowledged one survives.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::helpers::*;

async fn wait_ready(client: &reqwest::Client, port: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            if response.status().is_success() {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_webhook_survives_a_sigkill() {
    // The in-process app is only used for its database and helpers; the server under test is a child process.
    let app = spawn_app_with(|s| s.projector = false).await;
    let tenant = app.create_tenant().await;
    let port = free_port();
    let mut child = serve(app.db.url(), port);
    let client = reqwest::Client::new();
    wait_ready(&client, port).await;

    let success = scenario("success");
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut senders = Vec::new();
    for worker in 0..32 {
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

    // The projector was killed mid-stream too: what it built after the restart equals a full replay.
    let read_tables = "SELECT ARRAY[(SELECT string_agg(concat_ws('|', execution_id, call_lifecycle_status, status,
                               duration_seconds, credits_used, contact_id, completed_at), ',' ORDER BY execution_id) FROM calls),
                     (SELECT string_agg(concat_ws('|', phone_number, not_connected, auto_created_from_call_id), ',' ORDER BY phone_number) FROM contacts),
                     (SELECT string_agg(concat_ws('|', amount, balance_after, call_id), ',' ORDER BY position) FROM credit_transactions),
                     (SELECT count(*)::text FROM call_events)]";
    child.kill().unwrap();
    child.wait().unwrap();
    let live: Vec<String> = sqlx::query_scalar(read_tables)
        .fetch_one(&pool)
        .await
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .arg("replay")
        .env("DATABASE_URL", app.db.url())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let replayed: Vec<String> = sqlx::query_scalar(read_tables)
        .fetch_one(&pool)
        .await
        .unwrap();
    for (table, (live, replayed)) in ["calls", "contacts", "credit_transactions", "call_events"]
        .iter()
        .zip(live.iter().zip(&replayed))
    {
        if live != replayed {
            let first = live
                .split(',')
                .zip(replayed.split(','))
                .find(|(a, b)| a != b);
            panic!("{table} after a crash differs from a full replay: first difference {first:?}");
        }
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_loses_no_acknowledged_webhook() {
    let mut app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let address = app.address.clone();
    let success = scenario("success");
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
