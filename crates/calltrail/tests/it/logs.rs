//! "The execution id on every line about a call": a child `calltrail serve` (JSON logs, debug
//! for calltrail's crates) takes one answered call through its webhooks, the projector and both
//! analyses; every line of the per-call code paths carries the call's execution id, as a field
//! or on an enclosing span.

use std::time::Duration;

use serde_json::{json, Value};

use crate::analysis::{complete_once, PHONE};
use crate::helpers::*;

/// Targets whose lines are about one call (webhook intake, analysis jobs, OpenAI requests).
const PER_CALL_TARGETS: &[&str] = &[
    "calltrail_api::webhooks",
    "calltrail_analysis::worker",
    "calltrail_analysis::openai",
    "calltrail::analysis_worker",
];

/// Lines of those targets about a worker rather than a call.
const WORKER_LINES: &[&str] = &["analysis worker started", "analysis worker stopped"];

/// The execution id a JSON log line carries: its own field, or the innermost span's that has one.
fn execution_id(line: &Value) -> Option<&str> {
    line["execution_id"].as_str().or_else(|| {
        line["spans"]
            .as_array()?
            .iter()
            .rev()
            .find_map(|span| span["execution_id"].as_str())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_about_a_call_carries_its_execution_id() {
    let app = spawn_app_with(|s| s.projector = false).await;
    let tenant = app.create_tenant().await;
    let id = "log-call-1";
    let path = std::env::temp_dir().join(format!("calltrail-logs-{}.jsonl", uuid::Uuid::new_v4()));
    let port = free_port();
    // The whole service in one process: HTTP, projector and one analysis worker (local analyzer).
    let mut server = Server::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
            .arg("serve")
            .env("DATABASE_URL", app.db.url())
            .env("CALLTRAIL_BIND", format!("127.0.0.1:{port}"))
            .env("CALLTRAIL_ANALYSIS_WORKERS", "1")
            .env(
                "RUST_LOG",
                "info,calltrail=debug,calltrail_api=debug,calltrail_analysis=debug",
            )
            .env_remove("OPENAI_API_KEY")
            .env_remove("FAILPOINTS")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&path).unwrap()),
    );
    let client = reqwest::Client::new();
    wait_ready(&client, port).await;

    for body in fixtures::scenario("bolna/success") {
        let response = client
            .post(format!(
                "http://127.0.0.1:{port}/v1/webhooks/bolna/{}",
                tenant.webhook_token
            ))
            .body(with_fields(&body, &[("id", json!(id))]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
    }
    complete_once(&app, &tenant, PHONE, |_| true).await;
    app.wait_for_within(
        Duration::from_secs(30),
        &tenant,
        &format!("/v1/calls/{id}/transcript"),
        |code, body| code == 200 && body["analysis_status"] == "completed",
    )
    .await;
    server.kill().unwrap();
    server.wait().unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    // A line cut short by the kill is not a line.
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let per_call: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            let target = l["target"].as_str().unwrap_or("");
            PER_CALL_TARGETS.iter().any(|t| target.starts_with(t))
                && !WORKER_LINES.contains(&l["message"].as_str().unwrap_or(""))
        })
        .collect();
    let without: Vec<&&Value> = per_call
        .iter()
        .filter(|l| execution_id(l) != Some(id))
        .collect();
    assert!(
        without.is_empty(),
        "{} of {} lines about the call lack execution_id={id}, e.g. {}",
        without.len(),
        per_call.len(),
        without[0]
    );
    // The lines that must be there: each webhook, each analysis result and its event.
    let count = |message: &str| per_call.iter().filter(|l| l["message"] == message).count();
    assert_eq!(count("webhook recorded"), 5, "{text}");
    assert_eq!(count("analysis recorded"), 2, "{text}");
    assert_eq!(count("analysis event appended"), 2, "{text}");
}

/// Every value of a JSON log line that reads like Rust's debug text of an `Option` or a struct.
fn debug_text(line: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(fields) = line.as_object() {
        for (key, value) in fields {
            if let Some(text) = value.as_str() {
                if text.starts_with("Some(") || text == "None" || text.contains(" { ") {
                    found.push(format!("{key}={text}"));
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_info_line_per_webhook_with_plain_values() {
    let app = spawn_app_with(|s| s.projector = false).await;
    let tenant = app.create_tenant().await;
    let path = std::env::temp_dir().join(format!("calltrail-logs-{}.jsonl", uuid::Uuid::new_v4()));
    let port = free_port();
    let mut server = Server::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
            .args(["serve", "--no-worker"])
            .env("DATABASE_URL", app.db.url())
            .env("CALLTRAIL_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .env_remove("FAILPOINTS")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&path).unwrap()),
    );
    let client = reqwest::Client::new();
    wait_ready(&client, port).await;
    let url = format!(
        "http://127.0.0.1:{port}/v1/webhooks/bolna/{}",
        tenant.webhook_token
    );
    let ringing = fixtures::read("bolna/success/02-ringing.json");
    for (body, expected) in [(&ringing[..], 202), (&ringing[..], 200), (b"{}", 400)] {
        let response = client.post(&url).body(body.to_vec()).send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected);
    }
    // The stored lines are written by the time the server has stopped.
    server.kill().unwrap();
    server.wait().unwrap();
    let replay = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .arg("replay")
        .env("DATABASE_URL", app.db.url())
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );

    let mut text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    text.push_str(&String::from_utf8_lossy(&replay.stderr));
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let recorded: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "webhook recorded")
        .collect();
    assert_eq!(recorded.len(), 2, "{text}");
    for (line, duplicate) in recorded.iter().zip([false, true]) {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["provider"], "bolna", "{line}");
        assert_eq!(line["execution_id"], SUCCESS, "{line}");
        assert_eq!(line["status"], "ringing", "{line}");
        assert_eq!(line["duplicate"], duplicate, "{line}");
        assert!(
            line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
            "{line}"
        );
    }
    let rejected: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "webhook rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "{text}");
    assert_eq!(rejected[0]["level"], "INFO");
    assert_eq!(rejected[0]["http_status"], 400);
    assert_eq!(rejected[0]["code"], "invalid_payload");
    assert_eq!(
        rejected[0]["tenant_id"],
        tenant.user_id.to_string(),
        "{}",
        rejected[0]
    );
    assert!(rejected[0]["latency_ms"].is_number());
    assert!(
        lines.iter().any(|l| l["message"] == "replay started"),
        "{text}"
    );
    let debug: Vec<String> = lines.iter().flat_map(debug_text).collect();
    assert!(debug.is_empty(), "debug text in log fields: {debug:?}");
}
