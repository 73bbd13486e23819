//! Slow and hostile clients must not stop others from being served.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_a_byte_by_byte_body_do_not_starve_other_clients() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let address = app.address.trim_start_matches("http://").to_owned();

    // Many connections that never send a byte (kept well under the default fd limit of 1024).
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(&address).await.unwrap());
    }
    // One client trickling a webhook body one byte at a time.
    let body = fixture("success", "01-initiated.json");
    let head = format!(
        "POST /v1/webhooks/bolna/{} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        tenant.webhook_token,
        body.len()
    );
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(head.as_bytes()).await.unwrap();
    let trickle = tokio::spawn(async move {
        for byte in body.iter().take(40) {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        slow
    });

    // Meanwhile everyone else is served promptly.
    for body in scenario("busy") {
        let started = Instant::now();
        let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &body).await;
        assert_eq!(status, 202, "{answer}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "served in {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let (status, _) = app.get(&tenant, "/v1/calls").await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        !trickle.is_finished(),
        "the slow client was still sending while others were served"
    );
    drop(trickle.await.unwrap());
    drop(idle);
}
