//! Lead analysis when things go wrong: no prompt id, rate limits, hangs, server errors,
//! unusable output, and a worker killed mid-request.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use calltrail::startup::{Application, Settings};
use calltrail_testkit::{Behaviour, MockResponses};
use serde_json::Value;

use crate::analysis::{
    complete_once, openai, post_call, run_cli, spawn_with_mock, tenant_with_prompts,
    transcript_once, PHONE, USER_COMPLETE, USER_INDIVIDUAL,
};
use crate::helpers::*;

/// Polls until `cond` holds, failing after 60 s (a child process may start slowly on a busy machine).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    mock.push(Behaviour::Hang(Duration::from_secs(10)));
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
        s.analysis.retry.initial = Duration::from_millis(200);
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
async fn a_call_waiting_for_another_attempt_shows_why_and_until_when() {
    let mock = MockResponses::start().await;
    mock.respond_when("ALWAYS-500", Behaviour::ServerError);
    let app = spawn_with_mock(&mock, |s| {
        s.analysis.max_attempts = 3;
        // The next attempt is far off: the transcript is read while the job waits.
        s.analysis.retry =
            calltrail_core::Backoff::new(Duration::from_secs(600), Duration::from_secs(600));
    })
    .await;
    let tenant = tenant_with_prompts(&app, Some(USER_INDIVIDUAL), Some(USER_COMPLETE)).await;
    let broken = "assistant: Hello?\nuser: ALWAYS-500 please call me back.\n";
    let before = chrono::Utc::now();
    post_call(&app, &tenant, "broken", "+14155550100", Some(broken), None).await;
    let waiting = crate::analysis::wait_route(
        &app,
        &tenant,
        "/v1/calls/broken/transcript",
        |code, body| code == 200 && body["next_attempt_at"].is_string(),
    )
    .await;
    assert_eq!(waiting["analysis_status"], "pending", "{waiting}");
    let error = waiting["analysis_error"].as_str().unwrap_or_default();
    assert!(error.contains("server error (500)"), "{waiting}");
    let next: chrono::DateTime<chrono::Utc> = waiting["next_attempt_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        next > before + chrono::Duration::seconds(500),
        "the attempt is due about 10 minutes later: {next}"
    );
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

/// A `calltrail serve` child process, SIGKILLed when dropped (also when the test fails).
struct ServeChild(Child);

impl ServeChild {
    /// A worker-only process asking `mock`, with a 2 s lease.
    fn start(app: &TestApp, mock: &MockResponses) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_calltrail"))
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
            .expect("calltrail serve starts");
        ServeChild(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_job_runs_again_and_is_recorded_once() {
    let mock = MockResponses::start().await;
    mock.push(Behaviour::Hang(Duration::from_secs(60)));
    let app = spawn_app_with(|s| s.worker = false).await;
    let tenant = tenant_with_prompts(&app, Some(USER_INDIVIDUAL), Some(USER_COMPLETE)).await;
    let mut child = ServeChild::start(&app, &mock);
    post_call(&app, &tenant, SUCCESS, PHONE, None, None).await;
    eventually("the worker's request reaches the model", || {
        mock.request_count() == 1
    })
    .await;
    child.kill();

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_re_run_is_a_new_analysis_version_and_the_newest_result_stands() {
    let mock = MockResponses::start().await;
    mock.push(Behaviour::NotJson);
    mock.push(Behaviour::NotJson);
    let mut app = spawn_with_mock(&mock, |_| {}).await;
    let tenant = tenant_with_prompts(&app, Some(USER_INDIVIDUAL), Some(USER_COMPLETE)).await;
    post_call(&app, &tenant, SUCCESS, PHONE, None, None).await;
    transcript_once(&app, &tenant, SUCCESS, "failed").await;
    let count =
        |event_type: &str| format!("SELECT count(*) FROM events WHERE event_type = '{event_type}'");
    let conflicts = "SELECT count(*) FROM event_conflicts";

    // Retried, it fails again: a second failure event, not a conflicting duplicate of the first.
    let retried = run_cli(&app, &["analysis", "retry", "--execution-id", SUCCESS], &[]);
    assert_eq!(retried["requeued"], 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while app.sql_count(&count("analysis.failed.v2")).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no second failure");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let transcript = transcript_once(&app, &tenant, SUCCESS, "failed").await;
    assert!(transcript["analysis_error"]
        .as_str()
        .unwrap()
        .starts_with("model output is not JSON"));
    assert_eq!(app.sql_count(&count("analysis.failed")).await, 1);
    assert_eq!(app.sql_count(conflicts).await, 0);

    // The third run succeeds.
    run_cli(&app, &["analysis", "retry"], &[]);
    transcript_once(&app, &tenant, SUCCESS, "completed").await;
    complete_once(&app, &tenant, PHONE, |_| true).await;
    assert_eq!(app.sql_count(&count("analysis.individual.v3")).await, 1);

    // A failed-only retry leaves completed analyses alone; --all runs them again (new prompts),
    // each as a new version beside the old event, and the newest result is the one shown.
    assert_eq!(
        run_cli(&app, &["analysis", "retry"], &[])["requeued"],
        0,
        "nothing failed"
    );
    let rescored = calltrail_testkit::responses::FIXTURE_OUTPUT_TEXT
        .replace(r#""total_score":82"#, r#""total_score":55"#);
    assert_ne!(rescored, calltrail_testkit::responses::FIXTURE_OUTPUT_TEXT);
    mock.push(Behaviour::Success {
        output_text: rescored,
        total_tokens: 900,
    });
    let requests_before = mock.request_count();
    let retried = run_cli(&app, &["analysis", "retry", "--all"], &[]);
    assert_eq!(
        retried["requeued"], 1,
        "the call's individual analysis; its complete one follows the new result"
    );
    let path = format!("/v1/calls/{SUCCESS}/analysis");
    app.wait_for_within(Duration::from_secs(60), &tenant, &path, |code, body| {
        code == 200 && body["total_score"] == 55
    })
    .await;
    // The complete analysis waited for the call's new individual one and took its result.
    complete_once(&app, &tenant, PHONE, |body| body["total_score"] == 55).await;
    assert_eq!(
        mock.request_count(),
        requests_before + 1,
        "one model request re-ran both, as for a contact's first call"
    );
    for (event_type, n) in [
        ("analysis.individual.v3", 1),
        ("analysis.individual.v4", 1),
        ("analysis.complete", 1),
        ("analysis.complete.v2", 1),
    ] {
        assert_eq!(app.sql_count(&count(event_type)).await, n, "{event_type}");
    }
    assert_eq!(
        app.sql_count(
            "SELECT count(*) FROM events WHERE event_type = 'analysis.individual.v3'
               AND (data -> 'analysis' ->> 'total_score')::int = 82"
        )
        .await,
        1,
        "the earlier result is kept as recorded"
    );
    assert_eq!(app.sql_count(conflicts).await, 0);

    app.wait_until_projected().await;
    app.stop().await;
    assert_read_tables_equal_replay(app.db.url(), "after re-runs of an analysis").await;
}
