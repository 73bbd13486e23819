//! Drill 6: slow and hostile clients must not stop others from being served. A child
//! `calltrail serve`, started with the common default soft limit of 1,024 open files (it raises
//! its own), holds 1,000 connections that never send a byte and one client trickling its body
//! byte by byte, while other clients post webhooks and read; then its header timeout closes
//! the idle connections.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Idle connections the drill holds (the volume).
const IDLE: usize = 1_000;

/// Descriptors a process needs besides the drill's connections (pools, pipes, the in-process app).
const SPARE_FILES: u64 = 200;

/// The soft open-files limit of process `pid`, from `/proc/<pid>/limits`.
fn open_files_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Descriptors process `pid` holds now.
fn open_files(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Polls until process `pid` holds at least `at_least` descriptors, or fails after `limit`.
async fn until_holding(pid: u32, at_least: usize, limit: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let held = open_files(pid).unwrap_or(0);
        if held >= at_least {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: the server holds {held} descriptors, expected at least {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_and_a_byte_by_byte_body_do_not_starve_other_clients() {
    // This process holds the client ends: raise its soft limit to the hard one, as the server does.
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    let own_limit = rlimit::increase_nofile_limit(hard.min(1 << 20)).unwrap();
    let app = spawn_app_with(|s| s.projector = false).await;
    let tenant = app.create_tenant().await;
    let client = reqwest::Client::new();
    let port = free_port();
    let mut server = Server::spawn(&mut serve_command_with_open_files(
        app.db.url(),
        port,
        1_024,
    ));
    let pid = server.id();
    wait_ready(&client, port).await;

    // The server raised its own soft limit (when the hard one allows more than 1,024).
    let server_limit = open_files_limit(pid).expect("/proc/<pid>/limits is readable");
    if hard > 1_024 {
        assert!(
            server_limit > 1_024,
            "calltrail serve kept the soft limit of 1,024 (hard {hard})"
        );
    }
    let budget = own_limit.min(server_limit).saturating_sub(SPARE_FILES);
    let idle_count = IDLE.min(usize::try_from(budget).unwrap());
    if idle_count < IDLE {
        eprintln!(
            "hostile: opening {idle_count} idle connections, not {IDLE}: open files limit \
             {own_limit} here, {server_limit} in the server (hard {hard})"
        );
    }
    assert!(
        idle_count >= 100,
        "too few descriptors for a meaningful drill"
    );

    // Connections that never send a byte; the server accepts every one of them.
    let held_before = open_files(pid).unwrap();
    let address = format!("127.0.0.1:{port}");
    let opened = Instant::now();
    let mut idle = Vec::with_capacity(idle_count);
    for _ in 0..idle_count {
        idle.push(TcpStream::connect(&address).await.unwrap());
    }
    until_holding(
        pid,
        held_before + idle_count,
        Duration::from_secs(10),
        "accepting the idle connections",
    )
    .await;
    let accepted_in = opened.elapsed();

    // One client trickling a webhook body one byte at a time.
    let body = fixtures::read("bolna/success/01-initiated.json");
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

    // Meanwhile everyone else is served promptly (bounds generous for a busy 2-core box; an
    // unloaded server answers in milliseconds, a starved one not at all).
    let base = format!("http://127.0.0.1:{port}");
    let mut slowest = Duration::ZERO;
    for body in fixtures::scenario("bolna/busy") {
        let started = Instant::now();
        let response = client
            .post(format!("{base}/v1/webhooks/bolna/{}", tenant.webhook_token))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
        slowest = slowest.max(started.elapsed());
    }
    let started = Instant::now();
    let response = client
        .get(format!("{base}/v1/calls"))
        .bearer_auth(&tenant.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    slowest = slowest.max(started.elapsed());
    assert!(
        slowest < Duration::from_secs(2),
        "other clients waited up to {slowest:?}"
    );
    assert!(
        !trickle.is_finished(),
        "the slow client was still sending while others were served"
    );
    // ... and all that while the server still held every idle connection.
    until_holding(
        pid,
        held_before + idle_count,
        Duration::ZERO,
        "serving others",
    )
    .await;

    // The header timeout (client_request_timeout, 5 s) closes connections that send nothing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for mut connection in idle {
        let mut buf = [0_u8; 256];
        let closed = tokio::time::timeout_at(deadline, connection.read(&mut buf)).await;
        assert!(
            closed.is_ok(),
            "an idle connection was still open {:?} after it was opened",
            opened.elapsed()
        );
    }
    eprintln!(
        "hostile: {idle_count} idle connections accepted in {accepted_in:?}; other clients \
         served in at most {slowest:?}; idle connections closed by the server after {:?}",
        opened.elapsed()
    );
    drop(trickle.await.unwrap());
    server.kill().unwrap();
    server.wait().unwrap();
}
