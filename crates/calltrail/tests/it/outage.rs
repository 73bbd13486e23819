//! The database goes away under the running server and comes back.

use std::time::{Duration, Instant};

use calltrail_testkit::{DbProxy, TestDb};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_quickly_and_recovers_by_itself() {
    let db = TestDb::new().await;
    let proxy = DbProxy::start(db.url()).await;
    let through_proxy = proxy.url(db.url());
    let app = spawn_app_on(db, |s| s.database_url = through_proxy).await;
    let tenant = app.create_tenant().await;
    let bodies = scenario("success");
    let (status, _) = app.post_bolna_json(&tenant.webhook_token, &bodies[0]).await;
    assert_eq!(status, 202);

    proxy.cut().await;
    let started = Instant::now();
    let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &bodies[1]).await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "answered promptly: {:?}",
        started.elapsed()
    );
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "unavailable");
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200, "the process is alive");

    proxy.restore().await;
    // The provider retries: the same webhook is accepted once the pools reconnect.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &bodies[1]).await;
        assert_ne!(status, 500, "{answer}");
        if status == 202 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not recovered: {status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for body in &bodies[2..] {
        let (status, answer) = app.post_bolna_json(&tenant.webhook_token, body).await;
        assert_eq!(status, 202, "{answer}");
    }
    let call: Value = app
        .wait_for(&tenant, &format!("/v1/calls/{SUCCESS}"), |s, b| {
            s == 200 && b["call_lifecycle_status"] == "completed"
        })
        .await;
    assert_eq!(
        call["credits_used"],
        json!(1),
        "the projector resumed by itself"
    );
}
