//! Lead analysis end to end: webhooks in, the projector enqueues jobs, workers ask a local
//! Responses API server (or the local analyzer), results come back as events and rows.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use calltrail::startup::{Application, Settings};
use calltrail_analysis::testing::{Behaviour, MockResponses, FIXTURE_TOTAL_TOKENS, MOCK_MODEL};
use calltrail_analysis::{ApiKey, Backoff, OpenAiConfig, PromptIds};
use calltrail_projections::tenancy::NewUser;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const USER_INDIVIDUAL: &str = "pmpt_userindividual01";
const USER_COMPLETE: &str = "pmpt_usercomplete01";
const SYSTEM_INDIVIDUAL: &str = "pmpt_systemindividual01";
const SYSTEM_COMPLETE: &str = "pmpt_systemcomplete01";
const PHONE: &str = "+14155550132";
/// Words of the fixture transcript.
const FIRST_WORDS: &str = "Twelve reps, and the spreadsheets are falling apart.";
const SECOND_TRANSCRIPT: &str = "assistant: Hi Rohan, following up on Thursday's demo.\nuser: The team loved it. Budget is approved, send the contract.\n";
const SECOND_WORDS: &str = "Budget is approved, send the contract.";

/// 500 ms per request, one retry, millisecond backoffs.
fn openai(mock: &MockResponses) -> OpenAiConfig {
    let mut config = OpenAiConfig::new(ApiKey::new("sk-test-analysis"));
    config.base_url = mock.base_url();
    config.timeout = Duration::from_millis(500);
    config.max_retries = 1;
    config.backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
    };
    config
}

/// The app with its analysis workers asking `mock`.
async fn spawn_with_mock(mock: &MockResponses, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let config = openai(mock);
    spawn_app_with(|s| {
        s.worker = true;
        s.openai = Some(config);
        configure(s);
    })
    .await
}

async fn tenant_with_prompts(
    app: &TestApp,
    individual: Option<&str>,
    complete: Option<&str>,
) -> Tenant {
    let issued = app
        .store
        .create_user(&NewUser {
            email: format!("{}@analysis.example", Uuid::new_v4().simple()),
            individual_prompt_id: individual.map(str::to_owned),
            complete_prompt_id: complete.map(str::to_owned),
            ..NewUser::default()
        })
        .await
        .unwrap();
    Tenant {
        user_id: issued.user_id,
        api_key: issued.api_key,
        webhook_token: issued.webhook_token,
    }
}

/// Posts the answered-call fixture as call `id` of `phone`, optionally with another transcript
/// and creation time.
async fn post_call(
    app: &TestApp,
    tenant: &Tenant,
    id: &str,
    phone: &str,
    transcript: Option<&str>,
    created_at: Option<&str>,
) {
    for body in scenario("success") {
        let mut value: Value = serde_json::from_slice(&body).unwrap();
        value["id"] = json!(id);
        value["telephony_data"]["to_number"] = json!(phone);
        value["context_details"]["recipient_phone_number"] = json!(phone);
        value["user_number"] = json!(phone);
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

fn encoded(phone: &str) -> String {
    phone.replace('+', "%2B")
}

async fn transcript_once(app: &TestApp, tenant: &Tenant, id: &str, status: &str) -> Value {
    app.wait_for(
        tenant,
        &format!("/v1/calls/{id}/transcript"),
        |code, body| code == 200 && body["analysis_status"] == status,
    )
    .await
}

async fn complete_once(
    app: &TestApp,
    tenant: &Tenant,
    phone: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/v1/contacts/{}/analysis", encoded(phone));
    app.wait_for(tenant, &path, |code, body| code == 200 && ready(body))
        .await
}

/// Polls until `cond` holds, failing after 20 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn run_cli(app: &TestApp, args: &[&str], env: &[(&str, String)]) -> Value {
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
        Some("Bearer sk-test-analysis")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_any_prompt_id_the_analysis_fails_until_one_is_set_and_retried() {
    let mock = MockResponses::start().await;
    let app = spawn_with_mock(&mock, |_| {}).await;
    let tenant = tenant_with_prompts(&app, None, None).await;
    post_call(&app, &tenant, SUCCESS, PHONE, None, None).await;

    let transcript = transcript_once(&app, &tenant, SUCCESS, "failed").await;
    let error = transcript["analysis_error"].as_str().unwrap();
    assert!(
        error.contains("no OpenAI prompt id") && error.contains("OPENAI_INDIVIDUAL_PROMPT_ID"),
        "{error}"
    );
    assert_eq!(
        mock.request_count(),
        0,
        "nothing is sent without a prompt id"
    );
    let (status, _) = app
        .get(&tenant, &format!("/v1/calls/{SUCCESS}/analysis"))
        .await;
    assert_eq!(status, 404);
    let failed = app
        .sql_count("SELECT count(*) FROM events WHERE event_type = 'analysis.failed'")
        .await;
    assert_eq!(failed, 1);

    let status = run_cli(&app, &["analysis", "status"], &[]);
    assert_eq!(status["counts"]["failed"], 1, "{status}");
    assert_eq!(status["counts"]["pending"], 0, "{status}");
    assert!(status["last_errors"][0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("OPENAI_INDIVIDUAL_PROMPT_ID")));

    // An operator sets the user's prompt id and re-runs the failed analysis.
    let user = tenant.user_id.to_string();
    let set = run_cli(
        &app,
        &[
            "admin",
            "set-prompts",
            "--user",
            &user,
            "--individual-prompt-id",
            USER_INDIVIDUAL,
        ],
        &[],
    );
    assert_eq!(set["individual_prompt_id"], USER_INDIVIDUAL);
    assert_eq!(set["complete_prompt_id"], Value::Null);
    let retried = run_cli(&app, &["analysis", "retry", "--execution-id", SUCCESS], &[]);
    assert_eq!(retried["requeued"], 1);
    transcript_once(&app, &tenant, SUCCESS, "completed").await;
    complete_once(&app, &tenant, PHONE, |_| true).await;
    assert_eq!(mock.requests()[0].prompt_id(), Some(USER_INDIVIDUAL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_request_is_retried_and_completes() {
    let mock = MockResponses::start().await;
    mock.push(Behaviour::RateLimited {
        retry_after_secs: Some(1),
    });
    let app = spawn_with_mock(&mock, |_| {}).await;
    let tenant = tenant_with_prompts(&app, Some(USER_INDIVIDUAL), Some(USER_COMPLETE)).await;
    post_call(&app, &tenant, SUCCESS, PHONE, None, None).await;
    transcript_once(&app, &tenant, SUCCESS, "completed").await;
    assert_eq!(mock.request_count(), 2, "the 429, then the success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_hanging_past_the_timeout_is_retried() {
    let mock = MockResponses::start().await;
    mock.push(Behaviour::Hang(Duration::from_secs(5)));
    let app = spawn_with_mock(&mock, |_| {}).await;
    let tenant = tenant_with_prompts(&app, Some(USER_INDIVIDUAL), Some(USER_COMPLETE)).await;
    post_call(&app, &tenant, SUCCESS, PHONE, None, None).await;
    transcript_once(&app, &tenant, SUCCESS, "completed").await;
    assert_eq!(mock.request_count(), 2, "the hung request, then the retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_server_errors_fail_after_bounded_attempts_without_blocking_others() {
    let mock = MockResponses::start().await;
    mock.respond_when("ALWAYS-500", Behaviour::ServerError);
    let app = spawn_with_mock(&mock, |s| {
        s.analysis.max_attempts = 3;
        s.analysis.retry_initial = Duration::from_millis(200);
    })
    .await;
    let tenant = tenant_with_prompts(&app, Some(USER_INDIVIDUAL), Some(USER_COMPLETE)).await;
    let broken = "assistant: Hello?\nuser: ALWAYS-500 please call me back.\n";
    post_call(&app, &tenant, "broken", "+14155550100", Some(broken), None).await;
    for i in 0..3 {
        let id = format!("healthy-{i}");
        post_call(&app, &tenant, &id, &format!("+1415555020{i}"), None, None).await;
    }
    for i in 0..3 {
        transcript_once(&app, &tenant, &format!("healthy-{i}"), "completed").await;
    }
    let failed = transcript_once(&app, &tenant, "broken", "failed").await;
    let error = failed["analysis_error"].as_str().unwrap();
    assert!(
        error.contains("server error (500)") && error.contains("gave up after 3 attempts"),
        "{error}"
    );
    let broken_requests = mock
        .requests()
        .iter()
        .filter(|r| r.input_text().contains("ALWAYS-500"))
        .count();
    assert_eq!(broken_requests, 6, "3 job attempts × (1 request + 1 retry)");
    let attempts = app
        .sql_count("SELECT attempts::int8 FROM analysis_jobs WHERE execution_id = 'broken'")
        .await;
    assert_eq!(attempts, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_that_is_not_json_fails_with_the_reason() {
    let mock = MockResponses::start().await;
    mock.push(Behaviour::NotJson);
    let app = spawn_with_mock(&mock, |_| {}).await;
    let tenant = tenant_with_prompts(&app, Some(USER_INDIVIDUAL), Some(USER_COMPLETE)).await;
    post_call(&app, &tenant, SUCCESS, PHONE, None, None).await;
    let transcript = transcript_once(&app, &tenant, SUCCESS, "failed").await;
    let error = transcript["analysis_error"].as_str().unwrap();
    assert!(error.starts_with("model output is not JSON"), "{error}");
    assert_eq!(
        mock.request_count(),
        1,
        "a bad answer is not paid for twice"
    );
}

fn serve_child(app: &TestApp, mock: &MockResponses) -> Child {
    Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(["serve", "--no-projector"])
        .env("DATABASE_URL", app.db.url())
        .env("CALLTRAIL_BIND", "127.0.0.1:0")
        .env("OPENAI_API_KEY", "sk-test-analysis")
        .env("OPENAI_BASE_URL", mock.base_url())
        .env("CALLTRAIL_ANALYSIS_WORKERS", "1")
        .env("CALLTRAIL_ANALYSIS_LEASE_SECS", "2")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("calltrail serve starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_job_runs_again_and_is_recorded_once() {
    let mock = MockResponses::start().await;
    mock.push(Behaviour::Hang(Duration::from_secs(60)));
    let app = spawn_app_with(|s| s.worker = false).await;
    let tenant = tenant_with_prompts(&app, Some(USER_INDIVIDUAL), Some(USER_COMPLETE)).await;
    let mut child = serve_child(&app, &mock);
    post_call(&app, &tenant, SUCCESS, PHONE, None, None).await;
    eventually("the worker's request reaches the model", || {
        mock.request_count() == 1
    })
    .await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    // A new worker takes the job over once the dead one's lease has run out.
    let mut settings = Settings::for_tests(app.db.url());
    settings.projector = false;
    settings.worker = true;
    settings.openai = Some(openai(&mock));
    let worker = Application::build(settings).await.unwrap();
    let stop = worker.shutdown_token();
    let running = tokio::spawn(worker.run_until_stopped());
    transcript_once(&app, &tenant, SUCCESS, "completed").await;
    complete_once(&app, &tenant, PHONE, |_| true).await;
    assert_eq!(mock.request_count(), 2, "the killed request and the re-run");
    let recorded = app
        .sql_count(&format!(
            "SELECT count(*) FROM events WHERE stream_id = '{SUCCESS}' AND event_type LIKE 'analysis.%'"
        ))
        .await;
    assert_eq!(recorded, 2, "one individual and one complete event");
    let attempts = app
        .sql_count("SELECT attempts::int8 FROM analysis_jobs WHERE kind = 'individual'")
        .await;
    assert_eq!(attempts, 2);
    stop.cancel();
    running.await.unwrap().unwrap();
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
