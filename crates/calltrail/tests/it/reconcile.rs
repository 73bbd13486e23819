//! Reconciliation end to end (CONTRACT §6): `admin set-provider-api-key` and `calltrail
//! reconcile` (the real binary) against a local fake provider API, with real PostgreSQL and the
//! real application taking the webhooks.

use std::process::{Command, Output};
use std::time::Duration;

use calltrail::reconcile::ReconcileSettings;
use calltrail_projections::reconciliation::LeaseOutcome;

use calltrail_testkit::{MockProviderApi, Reply};
use serde_json::{json, Value};

use crate::helpers::{fixtures, metric_value, spawn_app_with, with_fields, TestApp, AGENT};
use crate::secrets::{with_key, KEY};

/// Runs the `calltrail` binary on the test's database with the secrets key (blocking: the
/// tests run on a multi-threaded runtime so the fake API keeps answering meanwhile).
fn calltrail(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(args)
        .env("DATABASE_URL", app.db.url())
        .env("CALLTRAIL_SECRETS_KEY", KEY)
        .env("RUST_LOG", "info")
        .output()
        .expect("calltrail runs")
}

/// The JSON lines a successful command printed.
fn json_lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn set_key(app: &TestApp, user: &str, provider: &str, key: &str, base_url: &str) -> Output {
    calltrail(
        app,
        &[
            "admin",
            "set-provider-api-key",
            "--user",
            user,
            "--provider",
            provider,
            "--key",
            key,
            "--base-url",
            base_url,
        ],
    )
}

fn reconcile(app: &TestApp) -> Output {
    calltrail(app, &["reconcile", "--older-than", "0s"])
}

/// A Bolna fixture of the success scenario with its execution id set to `id`.
fn bolna(file: &str, id: &str) -> Vec<u8> {
    with_fields(
        &fixtures::read(format!("bolna/success/{file}")),
        &[("id", json!(id))],
    )
}

/// Posts the success scenario up to `in-progress` for `id`.
async fn stuck_in_progress(app: &TestApp, token: &str, id: &str) {
    for file in [
        "01-initiated.json",
        "02-ringing.json",
        "03-in-progress.json",
    ] {
        let (status, body) = app.post_bolna_json(token, &bolna(file, id)).await;
        assert_eq!(status, 202, "{body}");
    }
}

async fn usage_rows(app: &TestApp, id: &str) -> i64 {
    app.sql_count(&format!(
        "SELECT count(*) FROM credit_transactions WHERE kind = 'usage' AND call_id = '{id}'"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_stuck_in_progress_gets_its_completed_from_the_api_and_is_charged_once() {
    let app = spawn_app_with(with_key).await;
    let tenant = app.create_tenant().await;
    app.add_agent(&tenant, AGENT).await;
    let id = "4f1e2d3c-0000-4000-8000-00000000a001";
    stuck_in_progress(&app, &tenant.webhook_token, id).await;
    app.wait_for(&tenant, &format!("/v1/calls/{id}"), |s, b| {
        s == 200 && b["call_lifecycle_status"] == "in-progress"
    })
    .await;

    let api = MockProviderApi::start().await;
    let completed = bolna("05-completed.json", id);
    api.set(
        &format!("/executions/{id}"),
        Reply::text(200, std::str::from_utf8(&completed).unwrap()),
    );
    let user = tenant.user_id.to_string();
    let set = json_lines(&set_key(
        &app,
        &user,
        "bolna",
        "bn-live-key",
        &api.base_url(),
    ));
    assert_eq!(set, [json!({"provider": "bolna", "configured": true})]);

    let output = reconcile(&app);
    let lines = json_lines(&output);
    assert_eq!(
        lines[0],
        json!({"checked": 1, "appended": 1, "unchanged": 0, "errors": 0})
    );
    assert_eq!(lines[1]["provider"], "bolna");
    // The key went to the API as a Bearer token and is nowhere in the output.
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some("Bearer bn-live-key")
    );
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!everything.contains("bn-live-key"));

    let call = app
        .wait_for(&tenant, &format!("/v1/calls/{id}"), |s, b| {
            s == 200 && b["call_lifecycle_status"] == "completed"
        })
        .await;
    let charged = call["credits_used"].clone();
    assert_eq!(charged, 1, "27.2 s → 1 minute at 1 credit/minute: {call}");
    assert_eq!(usage_rows(&app, id).await, 1);
    assert_eq!(
        app.sql_count(&format!(
            "SELECT count(*) FROM events WHERE stream_id = '{id}' AND event_type = 'completed'
                AND metadata->>'source' = 'reconciliation'"
        ))
        .await,
        1
    );

    // The webhook arriving after is a duplicate: nothing is charged twice.
    let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &completed).await;
    assert_eq!(
        (status, answer["duplicate"].clone()),
        (200, json!(true)),
        "{answer}"
    );
    app.wait_until_projected().await;
    assert_eq!(app.call(&tenant, id).await["credits_used"], charged);
    assert_eq!(usage_rows(&app, id).await, 1);

    // The call is terminal now: nothing left to check.
    let again = json_lines(&reconcile(&app));
    assert_eq!(
        again[0],
        json!({"checked": 0, "appended": 0, "unchanged": 0, "errors": 0})
    );
    assert_eq!(api.count(&format!("/executions/{id}")), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_an_error_naming_the_provider_and_is_not_retried() {
    let app = spawn_app_with(with_key).await;
    let tenant = app.create_tenant().await;
    app.add_agent(&tenant, AGENT).await;
    let ids = [
        "4f1e2d3c-0000-4000-8000-00000000b001",
        "4f1e2d3c-0000-4000-8000-00000000b002",
    ];
    for id in ids {
        stuck_in_progress(&app, &tenant.webhook_token, id).await;
    }
    app.wait_until_projected().await;
    let api = MockProviderApi::start().await;
    for id in ids {
        api.set(
            &format!("/executions/{id}"),
            Reply::json(401, json!({"message": "Invalid API key"})),
        );
    }
    let user = tenant.user_id.to_string();
    json_lines(&set_key(&app, &user, "bolna", "revoked", &api.base_url()));

    let output = reconcile(&app);
    let lines = json_lines(&output);
    assert_eq!(
        lines[0],
        json!({"checked": 2, "appended": 0, "unchanged": 0, "errors": 2})
    );
    assert_eq!(
        api.requests().len(),
        1,
        "one refusal is enough: no retry, no second call"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bolna refused the API key (401)"),
        "{stderr}"
    );

    // A replaced key is used at once; a 404 call counts as an error (documented).
    for id in ids {
        api.set(
            &format!("/executions/{id}"),
            Reply::json(404, json!({"message": "Not Found"})),
        );
    }
    json_lines(&set_key(&app, &user, "bolna", "fresh", &api.base_url()));
    let lines = json_lines(&reconcile(&app));
    assert_eq!(
        lines[0],
        json!({"checked": 2, "appended": 0, "unchanged": 0, "errors": 2})
    );
    assert!(api
        .requests()
        .iter()
        .skip(1)
        .all(|r| r.header("authorization") == Some("Bearer fresh")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_of_tenants_without_a_key_are_skipped_and_unchanged_calls_are_counted() {
    let app = spawn_app_with(with_key).await;
    let keyless = app.create_tenant().await;
    app.add_agent(&keyless, AGENT).await;
    stuck_in_progress(
        &app,
        &keyless.webhook_token,
        "4f1e2d3c-0000-4000-8000-00000000c001",
    )
    .await;
    let keyed = app.create_tenant().await;
    let id = "4f1e2d3c-0000-4000-8000-00000000c002";
    // Another tenant's agent would be refused: this one has none registered.
    for file in [
        "01-initiated.json",
        "02-ringing.json",
        "03-in-progress.json",
    ] {
        let body = with_fields(&bolna(file, id), &[("agent_id", Value::Null)]);
        let (status, answer) = app.post_bolna_json(&keyed.webhook_token, &body).await;
        assert_eq!(status, 202, "{answer}");
    }
    app.wait_until_projected().await;
    let api = MockProviderApi::start().await;
    // The API still says in-progress: the log has it already.
    let live = with_fields(
        &bolna("03-in-progress.json", id),
        &[("agent_id", Value::Null)],
    );
    api.set(
        &format!("/executions/{id}"),
        Reply::text(200, std::str::from_utf8(&live).unwrap()),
    );
    json_lines(&set_key(
        &app,
        &keyed.user_id.to_string(),
        "bolna",
        "k",
        &api.base_url(),
    ));

    let lines = json_lines(&reconcile(&app));
    assert_eq!(
        lines[0],
        json!({"checked": 1, "appended": 0, "unchanged": 1, "errors": 0})
    );
    assert_eq!(
        api.requests().len(),
        1,
        "only the keyed tenant's call is fetched"
    );

    // Without the secrets key the stored keys cannot be opened: refused at once, saying why.
    let keyless_run = Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(["reconcile"])
        .env("DATABASE_URL", app.db.url())
        .env_remove("CALLTRAIL_SECRETS_KEY")
        .output()
        .unwrap();
    assert!(!keyless_run.status.success());
    let stderr = String::from_utf8_lossy(&keyless_run.stderr);
    assert!(
        stderr.contains("CALLTRAIL_SECRETS_KEY is not set"),
        "{stderr}"
    );
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_provider_api_key_refuses_what_it_cannot_use() {
    let app = spawn_app_with(with_key).await;
    let tenant = app.create_tenant().await;
    let user = tenant.user_id.to_string();
    let twilio = set_key(&app, &user, "twilio", "no-colon", "https://api.twilio.com");
    assert!(!twilio.status.success());
    assert!(String::from_utf8_lossy(&twilio.stderr).contains("AccountSid:AuthToken"));
    let url = set_key(&app, &user, "vapi", "k", "ftp://nope");
    assert!(!url.status.success());
    assert!(String::from_utf8_lossy(&url.stderr).contains("--base-url"));
    let acme = set_key(&app, &user, "acme", "k", "https://x");
    assert!(!acme.status.success());
    assert!(String::from_utf8_lossy(&acme.stderr).contains("known providers"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reconciles_periodically_and_shows_the_last_run_per_provider() {
    let app = spawn_app_with(|settings| {
        with_key(settings);
        settings.reconcile = ReconcileSettings {
            interval: Duration::from_millis(300),
            older_than: Duration::ZERO,
            rate: 100.0,
        };
    })
    .await;
    let tenant = app.create_tenant().await;
    app.add_agent(&tenant, AGENT).await;
    let (status, before) = app.get(&tenant, "/v1/reconciliation").await;
    assert_eq!((status, before), (200, json!({"providers": []})));

    let id = "4f1e2d3c-0000-4000-8000-00000000d001";
    stuck_in_progress(&app, &tenant.webhook_token, id).await;
    let api = MockProviderApi::start().await;
    let completed = bolna("05-completed.json", id);
    api.set(
        &format!("/executions/{id}"),
        Reply::text(200, std::str::from_utf8(&completed).unwrap()),
    );
    json_lines(&set_key(
        &app,
        &tenant.user_id.to_string(),
        "bolna",
        "k",
        &api.base_url(),
    ));

    app.wait_for(&tenant, &format!("/v1/calls/{id}"), |s, b| {
        s == 200 && b["call_lifecycle_status"] == "completed"
    })
    .await;
    // The runs go on every 300 ms: the counters add up, the endpoint shows the latest run.
    let appended = r#"calltrail_reconcile_appended_total{provider="bolna"}"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let metrics = loop {
        let metrics = app.metrics().await;
        if metric_value(&metrics, appended) == Some(1.0) {
            break metrics;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let last = metric_value(&metrics, "calltrail_reconcile_last_run_timestamp_seconds");
    assert!(last.is_some_and(|t| t > 1.7e9), "{metrics}");
    // Once the call is terminal, a run has nothing to check for this tenant, and says so.
    let shown = app
        .wait_for(&tenant, "/v1/reconciliation", |s, b| {
            s == 200 && b["providers"][0]["checked"] == 0
        })
        .await;
    let run = &shown["providers"][0];
    assert_eq!(run["provider"], "bolna");
    assert_eq!(
        (run["appended"].clone(), run["errors"].clone()),
        (json!(0), json!(0))
    );
    assert!(
        run["started_at"].is_string() && run["finished_at"].is_string(),
        "{run}"
    );
    assert!(run.get("last_error").is_none(), "{run}");
    // Another tenant sees none of it.
    let other = app.create_tenant().await;
    assert_eq!(
        app.get(&other, "/v1/reconciliation").await.1,
        json!({"providers": []})
    );
    // The call is charged once, whatever the periodic runs did.
    app.wait_until_projected().await;
    assert_eq!(usage_rows(&app, id).await, 1);
    let metrics = app.metrics().await;
    assert_eq!(metric_value(&metrics, appended), Some(1.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_reconciles_at_a_time() {
    let app = spawn_app_with(with_key).await;
    let taken = app
        .store
        .take_reconcile_lease("another-process", Duration::from_secs(60), None)
        .await
        .unwrap();
    assert_eq!(taken, LeaseOutcome::Taken);
    let output = reconcile(&app);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("another process is reconciling"),
        "{stderr}"
    );
    // Handed back, the next run goes ahead.
    app.store
        .release_reconcile_lease("another-process")
        .await
        .unwrap();
    json_lines(&reconcile(&app));
}

/// Posts a Vapi server message for the tenant, authenticated with its shared secret.
async fn post_vapi(app: &TestApp, token: &str, secret: &str, message: Value) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/v1/webhooks/vapi/{token}", app.address))
        .header("content-type", "application/json")
        .header("x-vapi-secret", secret)
        .body(json!({ "message": message }).to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vapi_call_whose_report_never_came_is_completed_from_the_api_and_charged_once() {
    let app = spawn_app_with(with_key).await;
    let tenant = app.create_tenant().await;
    let user = tenant.user_id.to_string();
    let secret = calltrail(
        &app,
        &[
            "admin",
            "set-provider-secret",
            "--user",
            &user,
            "--provider",
            "vapi",
            "--secret",
            "vapi-hook-secret",
        ],
    );
    json_lines(&secret);
    let id = "vapi-call-e2e-1";
    let call = json!({
        "id": id, "type": "outboundPhoneCall", "createdAt": "2026-01-05T09:59:50Z",
        "customer": {"number": "+14155550132"},
    });
    let (status, body) = post_vapi(
        &app,
        &tenant.webhook_token,
        "vapi-hook-secret",
        json!({"type": "status-update", "status": "in-progress", "timestamp": 1_767_607_200_000_i64, "call": call}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    app.wait_for(&tenant, &format!("/v1/calls/{id}"), |s, b| {
        s == 200 && b["call_lifecycle_status"] == "in-progress"
    })
    .await;

    // The API's Call: ended after 90 s.
    let mut ended = call.clone();
    for (key, value) in [
        ("status", json!("ended")),
        ("endedReason", json!("customer-ended-call")),
        ("startedAt", json!("2026-01-05T10:00:00Z")),
        ("endedAt", json!("2026-01-05T10:01:30Z")),
        ("artifact", json!({"transcript": "AI: Hi\nUser: Hello"})),
    ] {
        ended[key] = value;
    }
    let api = MockProviderApi::start().await;
    api.set(&format!("/call/{id}"), Reply::json(200, ended.clone()));
    json_lines(&set_key(
        &app,
        &user,
        "vapi",
        "vapi-private-key",
        &api.base_url(),
    ));
    let lines = json_lines(&reconcile(&app));
    assert_eq!(
        lines[0],
        json!({"checked": 1, "appended": 1, "unchanged": 0, "errors": 0})
    );
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some("Bearer vapi-private-key")
    );

    let done = app
        .wait_for(&tenant, &format!("/v1/calls/{id}"), |s, b| {
            s == 200 && b["call_lifecycle_status"] == "completed"
        })
        .await;
    assert_eq!(done["duration_seconds"], 90, "{done}");
    assert_eq!(done["credits_used"], 2, "90 s → 2 minutes: {done}");
    assert_eq!(usage_rows(&app, id).await, 1);

    // Vapi's own report arrives late: a duplicate of the reconciled one, not a second charge.
    let (status, answer) = post_vapi(
        &app,
        &tenant.webhook_token,
        "vapi-hook-secret",
        json!({
            "type": "end-of-call-report", "endedReason": "customer-ended-call",
            "startedAt": "2026-01-05T10:00:00Z", "endedAt": "2026-01-05T10:01:30Z",
            "timestamp": 1_767_607_291_000_i64, "call": call,
        }),
    )
    .await;
    assert_eq!(
        (status, answer["duplicate"].clone()),
        (200, json!(true)),
        "{answer}"
    );
    app.wait_until_projected().await;
    let call = app.call(&tenant, id).await;
    assert_eq!(call["credits_used"], 2);
    assert_eq!(usage_rows(&app, id).await, 1);
    // Its body differs from the API's answer by nature: kept, marked, but not a conflict.
    assert_eq!(call["conflicts"], 0, "{call}");
    assert_eq!(
        app.sql_count(
            "SELECT count(*) FROM event_conflicts
              WHERE (metadata ->> 'after_reconciliation')::boolean"
        )
        .await,
        1,
        "the late report's body is kept"
    );
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(["admin", "conflicts"])
        .env("DATABASE_URL", app.db.url())
        .output()
        .unwrap();
    assert!(listed.status.success());
    assert!(
        String::from_utf8_lossy(&listed.stdout).trim().is_empty(),
        "admin conflicts lists no expected difference: {}",
        String::from_utf8_lossy(&listed.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_can_come_from_standard_input_and_is_never_printed() {
    use std::io::Write as _;
    let app = spawn_app_with(with_key).await;
    let tenant = app.create_tenant().await;
    app.add_agent(&tenant, AGENT).await;
    let id = "4f1e2d3c-0000-4000-8000-00000000e001";
    stuck_in_progress(&app, &tenant.webhook_token, id).await;
    app.wait_until_projected().await;
    let api = MockProviderApi::start().await;
    let live = bolna("03-in-progress.json", id);
    api.set(
        &format!("/executions/{id}"),
        Reply::text(200, std::str::from_utf8(&live).unwrap()),
    );
    let user = tenant.user_id.to_string();
    let base = api.base_url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args([
            "admin",
            "set-provider-api-key",
            "--user",
            &user,
            "--provider",
            "bolna",
            "--key",
            "-",
            "--base-url",
            &base,
        ])
        .env("DATABASE_URL", app.db.url())
        .env("CALLTRAIL_SECRETS_KEY", KEY)
        .env("RUST_LOG", "debug")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"key-from-stdin\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        json_lines(&output),
        [json!({"provider": "bolna", "configured": true})]
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("key-from-stdin"));

    let run = reconcile(&app);
    assert_eq!(json_lines(&run)[0]["unchanged"], 1);
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some("Bearer key-from-stdin")
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!printed.contains("key-from-stdin"), "{printed}");
}
