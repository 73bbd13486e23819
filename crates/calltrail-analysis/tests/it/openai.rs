//! The OpenAI client against the local Responses API server.

use std::time::{Duration, Instant};

use calltrail_analysis::{
    AnalysisError, AnalysisMeta, LeadAnalysis, LeadAnalyzer, OpenAiClient, OpenAiConfig,
};
use calltrail_core::{AnalysisKind, Analyzer, LeadStatusTag, PreviousCall};
use calltrail_testkit::responses::{Behaviour, MockResponses, FIXTURE_TOTAL_TOKENS, MOCK_MODEL};
use serde_json::Value;

use crate::support::{bolna_input, config, openai_fixture, KEY, PROMPT};

async fn client(mock: &MockResponses) -> OpenAiClient {
    OpenAiClient::new(config(mock.base_url())).unwrap()
}

/// One analysis of the Bolna fixture by a client built from `config`.
async fn analyze(config: OpenAiConfig) -> Result<(LeadAnalysis, AnalysisMeta), AnalysisError> {
    OpenAiClient::new(config)
        .unwrap()
        .analyze(PROMPT, &bolna_input())
        .await
}

#[tokio::test]
async fn success_parses_the_fixture_response() {
    let mock = MockResponses::start().await;
    mock.push(Behaviour::Respond {
        status: 200,
        headers: vec![],
        body: openai_fixture("response-completed.json"),
    });
    let input = bolna_input();
    let (analysis, meta) = client(&mock).await.analyze(PROMPT, &input).await.unwrap();

    assert_eq!(analysis.total_score, 82);
    assert_eq!(analysis.lead_status_tag, LeadStatusTag::Hot);
    assert_eq!(
        analysis.extracted_email.as_deref(),
        Some("rohan@acme-logistics.example")
    );
    assert_eq!(analysis.company_name.as_deref(), Some("Acme Logistics"));
    assert_eq!(
        analysis.demo_book_datetime.as_deref(),
        Some("2025-10-09T15:00:00-07:00")
    );
    assert_eq!(meta.analyzer, Analyzer::OpenAi);
    assert_eq!(meta.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(
        meta.response_id.as_deref(),
        Some("resp_0a7f3c9e21d84b6f5e0c2a9d7b4e1f3c068a52d9e7b1c4f0")
    );
    assert_eq!(meta.tokens_used, Some(2185));

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/responses")
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(request.prompt_id(), Some(PROMPT));
    assert_eq!(request.body["store"], Value::Bool(false));
    assert_eq!(
        request.body.pointer("/text/format/type"),
        Some(&Value::from("json_schema"))
    );
    assert_eq!(
        request.body.pointer("/metadata/execution_id"),
        Some(&Value::from(input.execution_id.as_str()))
    );
    assert!(
        request.body.get("model").is_none(),
        "no model unless configured"
    );
    let text = request.input_text();
    assert!(text.contains(input.transcript.trim_end()), "{text}");
    assert!(text.contains("Phone Number: +14155550132") && text.contains("Call Date: 2025-10-08"));
    assert!(text.contains("JSON"));
}

#[tokio::test]
async fn configured_model_is_sent_and_connections_are_reused() {
    let mock = MockResponses::start().await;
    let mut cfg = config(mock.base_url());
    cfg.model = Some("gpt-4o-2024-08-06".to_owned());
    let client = OpenAiClient::new(cfg).unwrap();
    for _ in 0..2 {
        let (_, meta) = client.analyze(PROMPT, &bolna_input()).await.unwrap();
        assert_eq!(
            (meta.model.as_deref(), meta.tokens_used),
            (Some(MOCK_MODEL), Some(FIXTURE_TOTAL_TOKENS))
        );
    }
    let requests = mock.requests();
    assert_eq!(requests[0].body["model"], Value::from("gpt-4o-2024-08-06"));
    assert_eq!(
        requests[0].connection, requests[1].connection,
        "one pooled connection"
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_waited_out() {
    let mock = MockResponses::start().await;
    mock.push(Behaviour::RateLimited {
        retry_after_secs: Some(1),
    });
    let started = Instant::now();
    let result = analyze(config(mock.base_url())).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(mock.request_count(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
}

#[tokio::test]
async fn retry_after_ms_takes_precedence() {
    let mock = MockResponses::start().await;
    let fixture: Value = serde_json::from_str(&openai_fixture("error-429.headers.json")).unwrap();
    // The fixture's headers, with `retry-after` raised beyond the 2 s limit: only a client
    // that prefers `retry-after-ms` (391 ms) retries instead of giving up.
    let headers = fixture["headers"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| *name != "content-type")
        .map(|(name, value)| {
            let value = if name == "retry-after" {
                "30"
            } else {
                value.as_str().unwrap()
            };
            (name.clone(), value.to_owned())
        })
        .collect();
    mock.push(Behaviour::Respond {
        status: 429,
        headers,
        body: openai_fixture("error-429.json"),
    });
    let started = Instant::now();
    let result = analyze(config(mock.base_url())).await;
    assert!(result.is_ok(), "{result:?}");
    assert!(started.elapsed() >= Duration::from_millis(391));
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn persistent_server_errors_stop_after_max_retries() {
    let mock = MockResponses::start().await;
    mock.set_default(Behaviour::ServerError);
    let err = analyze(config(mock.base_url())).await.unwrap_err();
    assert_eq!(mock.request_count(), 4);
    assert!(
        matches!(
            err,
            AnalysisError::ServerError {
                status: 500,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(
            "OpenAI server error (500) persisted after 4 attempts: The server had an error"
        ),
        "{err}"
    );
    assert!(err.is_retryable_later());
    assert_eq!(err.code(), "server_error");
}

#[tokio::test]
async fn persistent_rate_limit_is_reported_as_such() {
    let mock = MockResponses::start().await;
    mock.set_default(Behaviour::RateLimited {
        retry_after_secs: None,
    });
    let mut cfg = config(mock.base_url());
    cfg.max_retries = 1;
    let err = analyze(cfg).await.unwrap_err();
    assert_eq!(mock.request_count(), 2);
    assert!(
        err.to_string()
            .starts_with("OpenAI rate limit persisted after 2 attempts"),
        "{err}"
    );
    assert!(err.is_retryable_later());
}

#[tokio::test]
async fn non_json_output_fails_without_retry() {
    let mock = MockResponses::start().await;
    mock.push(Behaviour::NotJson);
    let err = analyze(config(mock.base_url())).await.unwrap_err();
    assert_eq!(mock.request_count(), 1);
    assert!(
        err.to_string()
            .starts_with("model output is not JSON: expected value"),
        "{err}"
    );
    assert!(!err.is_retryable_later());
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_retried() {
    let mock = MockResponses::start().await;
    mock.push(Behaviour::Hang(Duration::from_secs(2)));
    let started = Instant::now();
    let (analysis, _) = analyze(config(mock.base_url())).await.unwrap();
    assert_eq!(analysis.total_score, 82);
    assert_eq!(mock.request_count(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not wait for the hung answer"
    );
}

#[tokio::test]
async fn persistent_timeouts_name_the_limit_and_attempts() {
    let mock = MockResponses::start().await;
    mock.set_default(Behaviour::Hang(Duration::from_secs(3)));
    let mut cfg = config(mock.base_url());
    cfg.max_retries = 1;
    let err = analyze(cfg).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "OpenAI request timed out after 300 ms (2 attempts)"
    );
    assert!(err.is_retryable_later());
}

#[tokio::test]
async fn unknown_prompt_is_final_after_one_request() {
    let mock = MockResponses::start().await;
    mock.set_default(Behaviour::PromptNotFound);
    let err = analyze(config(mock.base_url())).await.unwrap_err();
    assert_eq!(mock.request_count(), 1);
    assert_eq!(
        err.to_string(),
        format!("prompt id {PROMPT} not found (404 from OpenAI): Prompt not found.")
    );
    assert!(!err.is_retryable_later());
}

#[tokio::test]
async fn quota_bad_key_and_refusals_to_retry_are_final() {
    let mock = MockResponses::start().await;
    let unauthorized = r#"{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    mock.push(Behaviour::InsufficientQuota);
    mock.push(Behaviour::Status(401, unauthorized.to_owned()));
    mock.push(Behaviour::Respond {
        status: 503,
        headers: vec![("x-should-retry".to_owned(), "false".to_owned())],
        body: String::new(),
    });
    let client = client(&mock).await;
    let input = bolna_input();

    let quota = client.analyze(PROMPT, &input).await.unwrap_err();
    assert!(
        matches!(quota, AnalysisError::QuotaExhausted { .. }),
        "{quota:?}"
    );
    assert!(!quota.is_retryable_later());
    let key = client.analyze(PROMPT, &input).await.unwrap_err();
    assert_eq!(
        key.to_string(),
        "OpenAI refused the API key (401): Incorrect API key provided.; check OPENAI_API_KEY"
    );
    let no_retry = client.analyze(PROMPT, &input).await.unwrap_err();
    assert!(
        matches!(
            no_retry,
            AnalysisError::ServerError {
                status: 503,
                attempts: 1,
                ..
            }
        ),
        "{no_retry:?}"
    );
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn a_long_retry_after_ends_the_job_as_retryable_later() {
    let mock = MockResponses::start().await;
    mock.push(Behaviour::RateLimited {
        retry_after_secs: Some(30),
    });
    let err = analyze(config(mock.base_url())).await.unwrap_err();
    assert_eq!(mock.request_count(), 1);
    assert!(
        matches!(err, AnalysisError::RetryAfterTooLong { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable_later());
}

#[tokio::test]
async fn failed_and_incomplete_responses() {
    let mock = MockResponses::start().await;
    let failed = r#"{"id":"resp_1","status":"failed","error":{"code":"server_error","message":"boom"},"output":[]}"#;
    let incomplete = r#"{"id":"resp_2","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]}"#;
    let refusal = r#"{"id":"resp_3","status":"completed","output":[{"type":"message","content":[{"type":"refusal","refusal":"I can't help with that."}]}]}"#;
    mock.push(Behaviour::Status(200, failed.to_owned()));
    mock.push(Behaviour::fixture());
    mock.push(Behaviour::Status(200, incomplete.to_owned()));
    mock.push(Behaviour::Status(200, refusal.to_owned()));
    mock.push(Behaviour::Status(200, "<html>proxy</html>".to_owned()));
    let client = client(&mock).await;
    let input = bolna_input();

    assert!(
        client.analyze(PROMPT, &input).await.is_ok(),
        "failed server_error is retried"
    );
    assert_eq!(mock.request_count(), 2);
    let err = client.analyze(PROMPT, &input).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "OpenAI response ended as `incomplete` (max_output_tokens)"
    );
    let err = client.analyze(PROMPT, &input).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the model refused to analyse the transcript: I can't help with that."
    );
    let err = client.analyze(PROMPT, &input).await.unwrap_err();
    assert!(matches!(err, AnalysisError::InvalidResponse(_)), "{err:?}");
    assert_eq!(mock.request_count(), 5);
}

#[tokio::test]
async fn invalid_prompt_ids_are_never_sent() {
    let mock = MockResponses::start().await;
    let client = client(&mock).await;
    for bad in [
        "",
        "prompt_123",
        "pmpt_",
        "pmpt_abc/../x",
        "PMPT_abc",
        "pmpt_a b",
        "pmpt_a.b",
    ] {
        let err = client.analyze(bad, &bolna_input()).await.unwrap_err();
        assert!(
            matches!(err, AnalysisError::InvalidPromptId(_)),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn prompt_ids_with_underscores_and_hyphens_are_sent_as_they_are() {
    let mock = MockResponses::start().await;
    let client = client(&mock).await;
    for id in ["pmpt_abc_1", "pmpt_a-b", "pmpt_6_x-Y"] {
        client.analyze(id, &bolna_input()).await.unwrap();
    }
    let requests = mock.requests();
    let sent: Vec<_> = requests.iter().map(|r| r.prompt_id()).collect();
    assert_eq!(
        sent,
        [Some("pmpt_abc_1"), Some("pmpt_a-b"), Some("pmpt_6_x-Y")]
    );
}

#[tokio::test]
async fn an_unreachable_server_is_reported_after_every_attempt() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut cfg = config(format!("http://127.0.0.1:{port}/v1"));
    cfg.max_retries = 1;
    let err = analyze(cfg).await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "could not reach OpenAI at http://127.0.0.1:{port}/v1 after 2 attempts"
        )),
        "{err}"
    );
    assert!(err.is_retryable_later());
}

#[tokio::test]
async fn bad_configuration_is_refused_up_front() {
    let mut cfg = config("ftp://example".to_owned());
    assert!(OpenAiClient::new(cfg.clone())
        .unwrap_err()
        .to_string()
        .contains("OPENAI_BASE_URL"));
    cfg.base_url = "http://127.0.0.1:1/v1/".to_owned();
    cfg.api_key = calltrail_analysis::ApiKey::new("  ");
    assert_eq!(
        OpenAiClient::new(cfg.clone()).unwrap_err().to_string(),
        "invalid OpenAI configuration: OPENAI_API_KEY is empty"
    );
    cfg.api_key = calltrail_analysis::ApiKey::new("sk-secret-value");
    let client = OpenAiClient::new(cfg).unwrap();
    let debug = format!("{client:?}");
    assert!(!debug.contains("sk-secret-value"), "{debug}");
}

#[tokio::test]
async fn complete_analyses_send_every_transcript_and_previous_results() {
    let mock = MockResponses::start().await;
    let client = client(&mock).await;
    let (first, _) = client.analyze(PROMPT, &bolna_input()).await.unwrap();
    let mut input = bolna_input();
    input.kind = AnalysisKind::Complete;
    input.previous = vec![PreviousCall {
        execution_id: "earlier".to_owned(),
        transcript: "assistant: Hello?\nuser: Call me next week, I'm driving.\n".to_owned(),
        call_date: None,
        call_duration_seconds: Some(9.0),
        analysis: Some(first),
    }];
    client.analyze(PROMPT, &input).await.unwrap();
    let request = mock.requests().pop().unwrap();
    let text = request.input_text();
    assert!(text.contains("Total Calls: 2"), "{text}");
    assert!(
        text.contains("=== CALL 1 (date unknown, 9s) ===\nassistant: Hello?"),
        "{text}"
    );
    assert!(
        text.contains("=== CALL 2 (current, 2025-10-08, 27.2s) ==="),
        "{text}"
    );
    assert!(
        text.contains("Call 1 (date unknown): score 82, intent high (4), status Hot"),
        "{text}"
    );
    assert_eq!(
        request.body.pointer("/metadata/analysis_type"),
        Some(&Value::from("complete"))
    );
}

#[tokio::test]
async fn the_analyzer_switch_needs_a_prompt_for_openai_only() {
    let local = LeadAnalyzer::from_config(None).unwrap();
    let (_, meta) = local.analyze(None, &bolna_input()).await.unwrap();
    assert_eq!(meta.analyzer, Analyzer::Local);

    let mock = MockResponses::start().await;
    let openai = LeadAnalyzer::from_config(Some(config(mock.base_url()))).unwrap();
    let err = openai.analyze(None, &bolna_input()).await.unwrap_err();
    assert_eq!(err.to_string(), "no OpenAI prompt id for individual analyses: set OPENAI_INDIVIDUAL_PROMPT_ID or the user's own prompt id");
    let (_, meta) = openai.analyze(Some(PROMPT), &bolna_input()).await.unwrap();
    assert_eq!(meta.analyzer, Analyzer::OpenAi);
}
