//! The client against a real local HTTP server: 401, 404, 429 with Retry-After, 500, timeouts,
//! garbage bodies, and the per-provider rate limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use calltrail_core::{Backoff, Provider};
use calltrail_reconcile::{ApiClient, ApiCredential, ClientConfig, Error};
use calltrail_testkit::{MockProviderApi, Reply};
use serde_json::json;

/// Test timings: 300 ms per request, 3 retries 10 → 40 ms apart, hints up to 3 s.
fn config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_millis(300),
        max_retries: 3,
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(40)),
        max_retry_after: Duration::from_secs(3),
        rate_per_second: 1000.0,
    }
}

fn credential(api: &MockProviderApi) -> ApiCredential {
    ApiCredential::new("test-key", Some(api.base_url()))
}

fn completed(id: &str) -> serde_json::Value {
    json!({"id": id, "status": "completed", "conversation_duration": 42.0})
}

#[tokio::test]
async fn a_refused_key_is_one_request_and_names_the_provider() {
    let api = MockProviderApi::start().await;
    api.set(
        "/executions/e1",
        Reply::json(401, json!({"message": "Unauthorized"})),
    );
    let client = ApiClient::new(config()).unwrap();
    let err = client
        .fetch(Provider::Bolna, &credential(&api), "e1")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("bolna refused the API key"),
        "{err}"
    );
    assert!(err.is_credential_problem());
    assert_eq!(
        api.count("/executions/e1"),
        1,
        "a refused key is not retried"
    );
    // The key went as a Bearer token, and is in no error text.
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some("Bearer test-key")
    );
    assert!(!err.to_string().contains("test-key"));
}

#[tokio::test]
async fn an_unknown_call_is_not_found_without_retries() {
    let api = MockProviderApi::start().await;
    let client = ApiClient::new(config()).unwrap();
    let err = client
        .fetch(Provider::Vapi, &credential(&api), "nope")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("vapi has no call `nope`"), "{err}");
    assert_eq!(api.count("/call/nope"), 1);
}

#[tokio::test]
async fn a_429_waits_as_long_as_retry_after_says() {
    let api = MockProviderApi::start().await;
    let path = "/executions/e2";
    api.push(path, Reply::json(429, json!({})).header("retry-after", "1"));
    api.set(path, Reply::json(200, completed("e2")));
    let client = ApiClient::new(config()).unwrap();
    let events = client
        .fetch(Provider::Bolna, &credential(&api), "e2")
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "completed");
    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "waited only {waited:?}, not the 1 s asked for"
    );
}

#[tokio::test]
async fn a_503_with_an_http_date_is_honoured_and_a_too_long_wait_is_an_error() {
    let api = MockProviderApi::start().await;
    let path = "/executions/e3";
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc2822();
    api.push(
        path,
        Reply::json(503, json!({})).header("retry-after", &soon),
    );
    api.set(path, Reply::json(200, completed("e3")));
    let client = ApiClient::new(config()).unwrap();
    client
        .fetch(Provider::Bolna, &credential(&api), "e3")
        .await
        .unwrap();
    let requests = api.requests();
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(500));

    api.push(
        path,
        Reply::json(429, json!({})).header("retry-after", "3600"),
    );
    let err = client
        .fetch(Provider::Bolna, &credential(&api), "e3")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RetryAfterTooLong {
                wait_secs: 3600,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_500_is_retried_then_reported() {
    let api = MockProviderApi::start().await;
    let path = "/v2/get-call/r1";
    api.set(path, Reply::json(500, json!({"error": "boom"})));
    let client = ApiClient::new(config()).unwrap();
    let err = client
        .fetch(Provider::Retell, &credential(&api), "r1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Status {
                status: 500,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(api.count(path), 4, "the first attempt and 3 retries");

    // A 500 that clears up is a success.
    api.push("/v2/get-call/r2", Reply::json(500, json!({})));
    api.set(
        "/v2/get-call/r2",
        Reply::json(200, json!({"call_id": "r2", "call_status": "ongoing", "start_timestamp": 1_700_000_000_000_i64})),
    );
    let events = client
        .fetch(Provider::Retell, &credential(&api), "r2")
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        ["call_started"]
    );
}

#[tokio::test]
async fn a_hanging_api_is_a_timeout_after_the_retries() {
    let api = MockProviderApi::start().await;
    let path = "/executions/slow";
    api.set(
        path,
        Reply::json(200, completed("slow")).after(Duration::from_secs(5)),
    );
    let client = ApiClient::new(config()).unwrap();
    let started = Instant::now();
    let err = client
        .fetch(Provider::Bolna, &credential(&api), "slow")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { attempts: 4, .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "each attempt stops at its timeout"
    );
}

#[tokio::test]
async fn garbage_answers_are_errors_not_panics() {
    let api = MockProviderApi::start().await;
    let client = ApiClient::new(config()).unwrap();
    let bodies = [
        "<html>oops</html>",
        "[1,2,3]",
        "{\"id\": \"g\"}",
        "{\"id\": \"other\", \"status\": \"completed\"}",
        "",
    ];
    for (i, body) in bodies.iter().enumerate() {
        let id = "g";
        api.set(&format!("/executions/{id}"), Reply::text(200, body));
        let err = client
            .fetch(Provider::Bolna, &credential(&api), id)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Garbage { .. }), "body {i}: {err:?}");
    }
    // Every provider survives every garbage body.
    for provider in Provider::ALL {
        for body in bodies {
            let base = credential(&api);
            for path in [
                "/call/g",
                "/v2/get-call/g",
                "/v1/convai/conversations/g",
                "/2010-04-01/Accounts/AC1/Calls/g.json",
            ] {
                api.set(path, Reply::text(200, body));
            }
            let key = if *provider == Provider::Twilio {
                ApiCredential::new("AC1:tok", base.base_url().map(str::to_owned))
            } else {
                base
            };
            let _ = client.fetch(*provider, &key, "g").await;
        }
    }
}

#[tokio::test]
async fn an_oversized_answer_is_refused_without_being_kept() {
    let api = MockProviderApi::start().await;
    let huge = format!(
        "{{\"id\":\"big\",\"status\":\"completed\",\"transcript\":\"{}\"}}",
        "a".repeat(calltrail_reconcile::client::MAX_BODY_BYTES)
    );
    api.set("/executions/big", Reply::text(200, &huge));
    let client = ApiClient::new(config()).unwrap();
    let err = client
        .fetch(Provider::Bolna, &credential(&api), "big")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[tokio::test]
async fn each_provider_gets_at_most_its_rate() {
    let api = MockProviderApi::start().await;
    for i in 0..12 {
        api.set(
            &format!("/executions/c{i}"),
            Reply::json(200, completed(&format!("c{i}"))),
        );
    }
    let client = Arc::new(
        ApiClient::new(ClientConfig {
            rate_per_second: 5.0,
            ..config()
        })
        .unwrap(),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let client = Arc::clone(&client);
        let key = credential(&api);
        tasks.push(tokio::spawn(async move {
            client
                .fetch(Provider::Bolna, &key, &format!("c{i}"))
                .await
                .map(|_| ())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // 12 requests at 5/s: the last one no sooner than 11 × 200 ms after the first.
    assert!(
        started.elapsed() >= Duration::from_millis(2100),
        "{:?}",
        started.elapsed()
    );
    let times: Vec<Instant> = api.requests().iter().map(|r| r.at).collect();
    for (i, first) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .filter(|t| **t - *first < Duration::from_secs(1))
            .count();
        assert!(
            in_window <= 6,
            "{in_window} requests within one second (limit 5, slack 1)"
        );
    }
}
