//! Two projector processes: exactly one projects at a time; when it dies the other takes over,
//! and the result equals a full replay.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// A metric's value from a process's /metrics.
async fn metric(client: &reqwest::Client, port: u16, name: &str) -> Option<f64> {
    let text = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post_calls(client: &reqwest::Client, port: u16, token: &str, prefix: &str, n: usize) {
    for i in 0..n {
        for body in fixtures::scenario("bolna/success") {
            let mut value: Value = serde_json::from_slice(&body).unwrap();
            value["id"] = json!(format!("{prefix}-{i}"));
            let response = client
                .post(format!("http://127.0.0.1:{port}/v1/webhooks/bolna/{token}"))
                .body(serde_json::to_vec(&value).unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 202);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_projector_works_at_a_time_and_the_other_takes_over() {
    let app = spawn_app_with(|s| s.projector = false).await;
    let tenant = app.create_tenant().await;
    let client = reqwest::Client::new();
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = serve(app.db.url(), port_a);
    until("A is ready", async || {
        metric(&client, port_a, "calltrail_projector_events")
            .await
            .is_some()
    })
    .await;
    post_calls(&client, port_a, &tenant.webhook_token, "first", 5).await;
    until("A projects", async || {
        metric(&client, port_a, "calltrail_projector_events_total").await == Some(25.0)
    })
    .await;

    let mut b = serve(app.db.url(), port_b);
    until("B stands by", async || {
        metric(&client, port_b, "calltrail_projector_standby").await == Some(1.0)
    })
    .await;
    post_calls(&client, port_b, &tenant.webhook_token, "second", 5).await;
    until("A projects B's webhooks too", async || {
        metric(&client, port_a, "calltrail_projector_events_total").await == Some(50.0)
    })
    .await;
    assert_eq!(
        metric(&client, port_b, "calltrail_projector_events_total").await,
        Some(0.0),
        "B folded nothing while A was active"
    );

    a.kill().unwrap();
    a.wait().unwrap();
    let killed = std::time::Instant::now();
    post_calls(&client, port_b, &tenant.webhook_token, "third", 5).await;
    until("B takes over", async || {
        metric(&client, port_b, "calltrail_projector_events_total").await == Some(25.0)
    })
    .await;
    let took_over = killed.elapsed();
    let (_, page) = app.get(&tenant, "/v1/calls?limit=100").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 15);
    eprintln!("two projectors: B took over {took_over:?} after A's SIGKILL (lease 5 s)");

    // What the two processes built together equals a full replay.
    b.kill().unwrap();
    b.wait().unwrap();
    let compared = assert_read_tables_equal_replay(app.db.url(), "built by two projectors").await;
    assert_eq!(compared, 15);
}
