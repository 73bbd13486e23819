//! Lead analysis end to end: webhooks in, the projector enqueues jobs, workers ask a local
//! Responses API server (or the local analyzer), results come back as events and rows.
//! Failures, retries and crashes are in `analysis_failures`.

use std::process::Command;
use std::time::Duration;

use calltrail::startup::Settings;
use calltrail_analysis::{OpenAiConfig, PromptIds};
use calltrail_testkit::create_tenant;
use calltrail_testkit::responses::{MockResponses, FIXTURE_TOTAL_TOKENS, MOCK_MODEL, TEST_API_KEY};
use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) const USER_INDIVIDUAL: &str = "pmpt_userindividual01";
pub(crate) const USER_COMPLETE: &str = "pmpt_usercomplete01";
const SYSTEM_INDIVIDUAL: &str = "pmpt_systemindividual01";
const SYSTEM_COMPLETE: &str = "pmpt_systemcomplete01";
pub(crate) const PHONE: &str = "+14155550132";
/// Words of the fixture transcript.
const FIRST_WORDS: &str = "Twelve reps, and the spreadsheets are falling apart.";
const SECOND_TRANSCRIPT: &str = "assistant: Hi Rohan, following up on Thursday's demo.\nuser: The team loved it. Budget is approved, send the contract.\n";
const SECOND_WORDS: &str = "Budget is approved, send the contract.";

/// testkit's test configuration (2 s per request, generous for a busy machine; millisecond
/// backoffs) with one retry.
pub(crate) fn openai(mock: &MockResponses) -> OpenAiConfig {
    let mut config = mock.openai_config();
    config.max_retries = 1;
    config
}

/// The app with its analysis workers asking `mock`.
pub(crate) async fn spawn_with_mock(
    mock: &MockResponses,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let config = openai(mock);
    spawn_app_with(|s| {
        s.worker = true;
        s.openai = Some(config);
        configure(s);
    })
    .await
}

pub(crate) async fn tenant_with_prompts(
    app: &TestApp,
    individual: Option<&str>,
    complete: Option<&str>,
) -> Tenant {
    create_tenant(&app.store, |user| {
        user.individual_prompt_id = individual.map(str::to_owned);
        user.complete_prompt_id = complete.map(str::to_owned);
    })
    .await
}

/// Posts the answered-call fixture as call `id` of `phone`, optionally with another transcript
/// and creation time.
pub(crate) async fn post_call(
    app: &TestApp,
    tenant: &Tenant,
    id: &str,
    phone: &str,
    transcript: Option<&str>,
    created_at: Option<&str>,
) {
    for body in fixtures::scenario("bolna/success") {
        let mut value: Value = serde_json::from_slice(&body).unwrap();
        fixtures::bolna::as_call(&mut value, id, Some(phone));
        if let (Some(text), true) = (transcript, value["transcript"].is_string()) {
            value["transcript"] = json!(text);
        }
        if let Some(at) = created_at {
            value["created_at"] = json!(at);
        }
        let (status, answer) = app
            .post_bolna_json(&tenant.webhook_token, &serde_json::to_vec(&value).unwrap())
            .await;
        assert_eq!(status, 202, "{answer}");
    }
}

pub(crate) fn encoded(phone: &str) -> String {
    phone.replace('+', "%2B")
}

/// Polls `GET path` until `ready` holds, failing after 60 s: analyses go through the
/// projector, a worker, the mock and the projector again, on a machine that may be busy.
pub(crate) async fn wait_route(
    app: &TestApp,
    tenant: &Tenant,
    path: &str,
    ready: impl Fn(u16, &Value) -> bool,
) -> Value {
    app.wait_for_within(Duration::from_secs(60), tenant, path, ready)
        .await
}

pub(crate) async fn transcript_once(
    app: &TestApp,
    tenant: &Tenant,
    id: &str,
    status: &str,
) -> Value {
    let path = format!("/v1/calls/{id}/transcript");
    wait_route(app, tenant, &path, |code, body| {
        code == 200 && body["analysis_status"] == status
    })
    .await
}

pub(crate) async fn complete_once(
    app: &TestApp,
    tenant: &Tenant,
    phone: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/v1/contacts/{}/analysis", encoded(phone));
    wait_route(app, tenant, &path, |code, body| code == 200 && ready(body)).await
}

pub(crate) fn run_cli(app: &TestApp, args: &[&str], env: &[(&str, String)]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(args)
        .env("DATABASE_URL", app.db.url())
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("calltrail runs");
    assert!(
        output.status.success(),
        "calltrail {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_gets_both_analyses_for_one_request() {
    let mock = MockResponses::start().await;
    let app = spawn_with_mock(&mock, |_| {}).await;
    let tenant = tenant_with_prompts(&app, Some(USER_INDIVIDUAL), Some(USER_COMPLETE)).await;
    let stranger = app.create_tenant().await;
    post_call(&app, &tenant, SUCCESS, PHONE, None, None).await;

    let complete = complete_once(&app, &tenant, PHONE, |_| true).await;
    assert_eq!(complete["analysis_type"], "complete");
    assert_eq!(complete["latest_execution_id"], SUCCESS);
    assert!(complete.get("execution_id").is_none(), "{complete}");
    assert_eq!(complete["previous_calls_analyzed"], 1);
    assert_eq!(complete["phone_number"], PHONE);
    assert_eq!(complete["lead_status_tag"], "Hot");

    let (status, individual) = app
        .get(&tenant, &format!("/v1/calls/{SUCCESS}/analysis"))
        .await;
    assert_eq!(status, 200, "{individual}");
    assert_eq!(individual["analysis_type"], "individual");
    assert_eq!(individual["execution_id"], SUCCESS);
    assert!(individual.get("latest_execution_id").is_none());
    assert_eq!(individual["user_id"], json!(tenant.user_id));
    assert_eq!(individual["previous_calls_analyzed"], 0);
    assert_eq!(individual["total_score"], 82);
    assert_eq!(individual["lead_status_tag"], "Hot");
    assert_eq!(
        individual["extracted_email"],
        "rohan@acme-logistics.example"
    );
    assert_eq!(individual["company_name"], "Acme Logistics");
    assert_eq!(individual["cta_pricing_clicked"], true);
    assert_eq!(individual["cta_demo_clicked"], true);
    assert_eq!(
        individual["demo_book_datetime"],
        "2025-10-09T15:00:00-07:00"
    );
    assert_eq!(individual["analyzer"], "openai");
    assert_eq!(individual["model"], MOCK_MODEL);
    assert_eq!(individual["tokens_used"], FIXTURE_TOTAL_TOKENS);
    assert!(individual["reasoning"]["intent"].is_string());
    // The complete row starts from the individual one: same scores, no second request.
    for field in [
        "total_score",
        "lead_status_tag",
        "extracted_email",
        "reasoning",
    ] {
        assert_eq!(complete[field], individual[field], "{field}");
    }

    let transcript = transcript_once(&app, &tenant, SUCCESS, "completed").await;
    assert_eq!(transcript["analysis_error"], Value::Null);
    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "one model request for both analyses");
    assert_eq!(requests[0].prompt_id(), Some(USER_INDIVIDUAL));
    assert!(requests[0].input_text().contains(FIRST_WORDS));
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {TEST_API_KEY}").as_str())
    );

    // Results are events of the call's timeline; both jobs are done.
    let call = app.call(&tenant, SUCCESS).await;
    let types: Vec<&str> = call["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(types.contains(&"analysis.individual") && types.contains(&"analysis.complete"));
    let done = app
        .sql_count("SELECT count(*) FROM analysis_jobs WHERE state = 'completed'")
        .await;
    assert_eq!(done, 2);

    // Another tenant sees neither.
    let (status, _) = app
        .get(&stranger, &format!("/v1/calls/{SUCCESS}/analysis"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get(
            &stranger,
            &format!("/v1/contacts/{}/analysis", encoded(PHONE)),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = app.get(&tenant, "/v1/contacts/12/analysis").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_phone"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_call_updates_the_same_complete_analysis() {
    let mock = MockResponses::start().await;
    let app = spawn_with_mock(&mock, |_| {}).await;
    let tenant = tenant_with_prompts(&app, Some(USER_INDIVIDUAL), Some(USER_COMPLETE)).await;
    post_call(&app, &tenant, "first-call", PHONE, None, None).await;
    complete_once(&app, &tenant, PHONE, |_| true).await;

    let second = "second-call";
    let later = Some("2025-10-10T10:00:00");
    post_call(&app, &tenant, second, PHONE, Some(SECOND_TRANSCRIPT), later).await;
    let complete =
        complete_once(&app, &tenant, PHONE, |b| b["latest_execution_id"] == second).await;
    assert_eq!(complete["previous_calls_analyzed"], 2);
    assert_eq!(complete["analyzer"], "openai");

    let requests = mock.requests();
    assert_eq!(requests.len(), 3, "individual, individual, complete");
    assert_eq!(requests[1].prompt_id(), Some(USER_INDIVIDUAL));
    assert!(requests[1].input_text().contains(SECOND_WORDS));
    let combined = &requests[2];
    assert_eq!(combined.prompt_id(), Some(USER_COMPLETE));
    let text = combined.input_text();
    assert!(
        text.contains(FIRST_WORDS) && text.contains(SECOND_WORDS),
        "{text}"
    );
    assert!(
        text.find(FIRST_WORDS) < text.find(SECOND_WORDS),
        "oldest first"
    );
    assert_eq!(
        combined.body["metadata"]["analysis_type"], "complete",
        "{}",
        combined.body
    );
    let rows = app
        .sql_count("SELECT count(*) FROM lead_analytics WHERE analysis_type = 'complete'")
        .await;
    assert_eq!(rows, 1, "one complete row per user + phone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_prompt_ids_apply_when_the_user_has_none() {
    let mock = MockResponses::start().await;
    let app = spawn_with_mock(&mock, |s| {
        s.analysis.system_prompts = PromptIds {
            individual: Some(SYSTEM_INDIVIDUAL.to_owned()),
            complete: Some(SYSTEM_COMPLETE.to_owned()),
        };
    })
    .await;
    let tenant = tenant_with_prompts(&app, None, None).await;
    post_call(&app, &tenant, "sys-1", PHONE, None, None).await;
    complete_once(&app, &tenant, PHONE, |_| true).await;
    let later = Some("2025-10-10T10:00:00");
    post_call(
        &app,
        &tenant,
        "sys-2",
        PHONE,
        Some(SECOND_TRANSCRIPT),
        later,
    )
    .await;
    complete_once(&app, &tenant, PHONE, |b| b["previous_calls_analyzed"] == 2).await;
    let prompts: Vec<Option<String>> = mock
        .requests()
        .iter()
        .map(|r| r.prompt_id().map(str::to_owned))
        .collect();
    assert_eq!(
        prompts,
        [SYSTEM_INDIVIDUAL, SYSTEM_INDIVIDUAL, SYSTEM_COMPLETE].map(|p| Some(p.to_owned()))
    );
}

/// The analysis routes and transcripts of `calls`, the complete analyses of `phones`, and
/// every `lead_analytics` row.
async fn analysis_snapshot(
    app: &TestApp,
    tenant: &Tenant,
    calls: &[&str],
    phones: &[&str],
) -> Value {
    let mut routes = Vec::new();
    for id in calls {
        routes.push(app.get(tenant, &format!("/v1/calls/{id}/analysis")).await.1);
        routes.push(
            app.get(tenant, &format!("/v1/calls/{id}/transcript"))
                .await
                .1,
        );
    }
    for phone in phones {
        let path = format!("/v1/contacts/{}/analysis", encoded(phone));
        routes.push(app.get(tenant, &path).await.1);
    }
    let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
    let rows: Vec<Value> = sqlx::query_scalar(
        "SELECT to_jsonb(l) FROM lead_analytics l ORDER BY user_id, analysis_type, key",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    json!({ "routes": routes, "rows": rows })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_asks_no_model_and_reproduces_lead_analytics() {
    let mock = MockResponses::start().await;
    let app = spawn_with_mock(&mock, |_| {}).await;
    let tenant = tenant_with_prompts(&app, Some(USER_INDIVIDUAL), Some(USER_COMPLETE)).await;
    let other_phone = "+14155550177";
    post_call(&app, &tenant, "r-1", PHONE, None, None).await;
    complete_once(&app, &tenant, PHONE, |_| true).await;
    let later = Some("2025-10-10T10:00:00");
    post_call(&app, &tenant, "r-2", PHONE, Some(SECOND_TRANSCRIPT), later).await;
    post_call(&app, &tenant, "r-3", other_phone, None, None).await;
    complete_once(&app, &tenant, PHONE, |b| b["previous_calls_analyzed"] == 2).await;
    complete_once(&app, &tenant, other_phone, |_| true).await;
    app.wait_until_projected().await;

    let calls = ["r-1", "r-2", "r-3"];
    let phones = [PHONE, other_phone];
    let before = analysis_snapshot(&app, &tenant, &calls, &phones).await;
    assert_eq!(before["rows"].as_array().unwrap().len(), 5, "{before}");
    let requests = mock.request_count();
    run_cli(
        &app,
        &["replay"],
        &[
            ("OPENAI_API_KEY", "sk-test-analysis".to_owned()),
            ("OPENAI_BASE_URL", mock.base_url()),
        ],
    );
    let after = analysis_snapshot(&app, &tenant, &calls, &phones).await;
    assert_eq!(after, before);
    assert_eq!(mock.request_count(), requests, "replay never calls a model");
    let jobs = app
        .sql_count("SELECT count(*) FROM analysis_jobs WHERE state <> 'completed'")
        .await;
    assert_eq!(jobs, 0, "replay enqueues nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_the_local_analyzer_fills_the_rows() {
    let app = spawn_app_with(|s| s.worker = true).await;
    let tenant = app.create_tenant().await;
    post_call(&app, &tenant, SUCCESS, PHONE, None, None).await;
    let complete = complete_once(&app, &tenant, PHONE, |_| true).await;
    assert_eq!(complete["previous_calls_analyzed"], 1);
    let (status, individual) = app
        .get(&tenant, &format!("/v1/calls/{SUCCESS}/analysis"))
        .await;
    assert_eq!(status, 200, "{individual}");
    assert_eq!(individual["analyzer"], "local");
    assert_eq!(individual["model"], Value::Null);
    assert_eq!(individual["tokens_used"], Value::Null);
    assert_eq!(
        individual["extracted_email"],
        "rohan@acme-logistics.example"
    );
    assert_eq!(individual["cta_pricing_clicked"], true);
    assert_eq!(individual["cta_demo_clicked"], true);
    let tag = individual["lead_status_tag"].as_str().unwrap();
    assert!(tag == "Warm" || tag == "Hot", "{individual}");
    transcript_once(&app, &tenant, SUCCESS, "completed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_ids_may_hold_underscores_and_hyphens() {
    let app = spawn_app().await;
    // `serve` starts with such system prompt ids (it used to refuse `pmpt_abc_1` at start-up).
    let port = free_port();
    let mut command = serve_command(app.db.url(), port);
    command
        .env("OPENAI_INDIVIDUAL_PROMPT_ID", "pmpt_abc_1")
        .env("OPENAI_COMPLETE_PROMPT_ID", "pmpt_abc-2_x");
    let _server = Server::spawn(&mut command);
    wait_ready(&reqwest::Client::new(), port).await;

    // A user's own prompt ids too.
    let tenant = app.create_tenant().await;
    let user = tenant.user_id.to_string();
    let set = run_cli(
        &app,
        &[
            "admin",
            "set-prompts",
            "--user",
            &user,
            "--individual-prompt-id",
            "pmpt_user_1",
            "--complete-prompt-id",
            "pmpt_user-2",
        ],
        &[],
    );
    assert_eq!(set["individual_prompt_id"], "pmpt_user_1");
    assert_eq!(set["complete_prompt_id"], "pmpt_user-2");

    // Anything else is still refused, in one line naming the flag.
    let output = Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(["admin", "set-prompts", "--user", &user])
        .args(["--individual-prompt-id", "pmpt_a/b"])
        .env("DATABASE_URL", app.db.url())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--individual-prompt-id `pmpt_a/b` is not an OpenAI prompt id"),
        "{stderr}"
    );
}
