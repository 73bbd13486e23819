//! Replay equals live, and reads never fail or go empty while a replay runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::helpers::*;

/// Every read route's answer for a tenant, minus processing-time fields.
async fn snapshot(app: &TestApp, tenant: &Tenant) -> Value {
    let mut calls = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/calls?limit=100&cursor={c}"),
            None => "/v1/calls?limit=100".to_owned(),
        };
        let (status, page) = app.get(tenant, &path).await;
        assert_eq!(status, 200, "{page}");
        for call in page["items"].as_array().unwrap() {
            let id = call["execution_id"].as_str().unwrap();
            let (_, mut detail) = app.get(tenant, &format!("/v1/calls/{id}")).await;
            let (_, transcript) = app.get(tenant, &format!("/v1/calls/{id}/transcript")).await;
            detail.as_object_mut().unwrap().remove("updated_at");
            calls.push(json!({"call": detail, "transcript": transcript}));
        }
        match page["next_cursor"].as_str() {
            Some(next) => {
                cursor = Some(
                    next.replace('+', "%2B")
                        .replace('/', "%2F")
                        .replace('=', "%3D"),
                )
            }
            None => break,
        }
    }
    let (_, contacts) = app.get(tenant, "/v1/contacts?limit=100").await;
    let (_, credits) = app.get(tenant, "/v1/credits").await;
    json!({"calls": calls, "contacts": contacts, "credits": credits})
}

/// Posts `n` answered calls (ids replaced) plus the fixture missed calls.
async fn build_state(app: &TestApp, tenant: &Tenant, n: usize) {
    let success = fixtures::scenario("bolna/success");
    for i in 0..n {
        let id = format!("replay-{i:04}");
        let phone = format!("+1415555{:04}", i % 37);
        for body in &success {
            let mut value: Value = serde_json::from_slice(body).unwrap();
            value["id"] = json!(id);
            value["telephony_data"]["to_number"] = json!(phone);
            let (status, answer) = app
                .post_bolna_json(&tenant.webhook_token, &serde_json::to_vec(&value).unwrap())
                .await;
            assert_eq!(status, 202, "{answer}");
        }
    }
    for name in ["no-answer", "busy"] {
        for body in fixtures::scenario(format!("bolna/{name}")) {
            app.post_bolna_json(&tenant.webhook_token, &body).await;
        }
    }
}

fn run_replay(app: &TestApp) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .arg("replay")
        .env("DATABASE_URL", app.db.url())
        .env("RUST_LOG", "warn")
        .output()
        .expect("calltrail replay runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rebuilds_exactly_what_the_live_projector_built() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let other = app.create_tenant().await;
    build_state(&app, &tenant, 30).await;
    build_state(&app, &other, 3).await;
    app.wait_until_projected().await;
    let before = (snapshot(&app, &tenant).await, snapshot(&app, &other).await);

    let output = tokio::task::spawn_blocking({
        let url = app.db.url().to_owned();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
                .arg("replay")
                .env("DATABASE_URL", url)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["events"], 5 * 33 + 6 * 2, "{summary}");
    assert!(summary["seconds"].is_number() && summary["events_per_second"].is_number());
    // Each rebuilt read table's rows, as the tables hold them now.
    let tables = summary["tables"].as_object().unwrap();
    for table in [
        "calls",
        "contacts",
        "transcripts",
        "credit_balances",
        "credit_transactions",
        "call_events",
        "lead_analytics",
        "campaigns",
    ] {
        assert!(tables.contains_key(table), "{table}: {summary}");
    }
    let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
    for (table, listed) in tables {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(listed, &Value::from(rows), "{table}: {summary}");
    }
    pool.close().await;

    app.wait_until_projected().await;
    let after = (snapshot(&app, &tenant).await, snapshot(&app, &other).await);
    assert_eq!(after, before);

    // Idempotent: a second replay changes nothing either.
    let again = run_replay(&app);
    assert!(again.status.success());
    assert_eq!(
        (snapshot(&app, &tenant).await, snapshot(&app, &other).await),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_during_a_replay_never_fail_nor_see_an_empty_table() {
    let app = Arc::new(spawn_app().await);
    let tenant = app.create_tenant().await;
    build_state(&app, &tenant, 150).await;
    app.wait_until_projected().await;

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (app, tenant, done, reads) = (app.clone(), tenant.clone(), done.clone(), reads.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let (status, body) = app.get(&tenant, "/v1/calls?limit=5").await;
                assert_eq!(status, 200, "a read during replay failed: {body}");
                assert_eq!(
                    body["items"].as_array().map(Vec::len),
                    Some(5),
                    "a read during replay saw {body}"
                );
                let (status, body) = app.get(&tenant, "/v1/contacts?limit=5").await;
                assert_eq!(status, 200, "{body}");
                assert!(!body["items"].as_array().unwrap().is_empty());
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let url = app.db.url().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
            .arg("replay")
            .env("DATABASE_URL", url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    done.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        reads.load(Ordering::Relaxed) > 0,
        "reads ran while the replay did"
    );
}

/// `calltrail replay` with `args` on `url`, expected to fail: its stderr.
fn failed_replay(url: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .arg("replay")
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "off")
        .output()
        .expect("calltrail replay runs");
    assert!(!output.status.success(), "{output:?}");
    String::from_utf8(output.stderr).unwrap()
}

#[tokio::test]
async fn a_failed_replay_says_why_in_one_line() {
    let db = calltrail_testkit::TestDb::new().await;
    // An unknown projection is an argument error that names the valid ones.
    let stderr = failed_replay(db.url(), &["--projection", "nope"]);
    assert!(
        stderr.starts_with("error: invalid value 'nope' for '--projection <NAME>'")
            && stderr.contains("[possible values: read_models]"),
        "{stderr}"
    );

    // A database error names what the server said, once.
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    sqlx::query("DROP TABLE calls")
        .execute(&pool)
        .await
        .unwrap();
    let stderr = failed_replay(db.url(), &[]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("calltrail: replay failed: database error: db error: ERROR: ")
            && stderr.contains(r#"relation "public.calls" does not exist (SQLSTATE 42P01)"#),
        "{stderr}"
    );
    assert_eq!(stderr.matches("db error").count(), 1, "{stderr}");
}
