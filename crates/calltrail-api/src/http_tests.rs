//! Route-level tests that need no database: the databases point at a closed port, so every
//! look-up fails fast as unavailable.

use std::time::Duration;

use actix_web::http::{header, Method, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::web;
use calltrail_eventlog::{AppenderConfig, ConnectOptions, EventLog};
use calltrail_projections::ReadStore;
use serde_json::Value;

use crate::{app, ApiConfig, AppState};

const NOWHERE: &str = "postgres://calltrail@127.0.0.1:1/calltrail";

fn state(max_body_bytes: usize) -> Option<AppState> {
    let options = ConnectOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_millis(500),
    };
    let log = EventLog::connect(NOWHERE, &options).ok()?;
    let appender = log.appender(AppenderConfig::default());
    let store = ReadStore::connect(NOWHERE, 2).ok()?;
    let config = ApiConfig {
        max_body_bytes,
        ..ApiConfig::default()
    };
    Some(AppState::new(log, appender, store, config))
}

/// Sends a request to the full app and returns status, headers and the JSON body.
async fn send(req: TestRequest) -> (StatusCode, header::HeaderMap, Value) {
    let Some(state) = state(64) else {
        panic!("test state could not be built");
    };
    let service = test::init_service(app(web::Data::new(state))).await;
    let res = test::call_service(&service, req.to_request()).await;
    let status = res.status();
    let headers = res.headers().clone();
    let body = test::read_body(res).await;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, headers, json)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[actix_web::test]
async fn healthz_answers_while_the_database_is_down() {
    let (status, _, body) = send(TestRequest::get().uri("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[actix_web::test]
async fn readyz_answers_503_while_the_database_is_down() {
    let (status, headers, body) = send(TestRequest::get().uri("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&body), "unavailable");
    assert_eq!(
        headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
}

#[actix_web::test]
async fn unknown_routes_and_methods_answer_json() {
    let (status, _, body) = send(TestRequest::get().uri("/v2/nothing")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "route_not_found");

    let (status, headers, body) = send(
        TestRequest::default()
            .method(Method::DELETE)
            .uri("/v1/credits"),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(&body), "method_not_allowed");
    assert!(headers.contains_key(header::ALLOW));
}

#[actix_web::test]
async fn the_read_api_needs_a_bearer_key() {
    for uri in [
        "/v1/calls",
        "/v1/calls/x",
        "/v1/calls/x/transcript",
        "/v1/contacts",
        "/v1/credits",
    ] {
        let (status, _, body) = send(TestRequest::get().uri(uri)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(code(&body), "unauthorized");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let wrong_scheme = TestRequest::get()
        .uri("/v1/credits")
        .insert_header((header::AUTHORIZATION, "Basic dXNlcjpwYXNz"));
    assert_eq!(send(wrong_scheme).await.0, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_key_that_cannot_be_checked_answers_503() {
    let req = TestRequest::get()
        .uri("/v1/calls?limit=5")
        .insert_header((header::AUTHORIZATION, "Bearer some-key"));
    let (status, _, body) = send(req).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&body), "unavailable");
}

#[actix_web::test]
async fn an_unknown_provider_answers_404() {
    let req = TestRequest::post()
        .uri("/v1/webhooks/acme/some-token")
        .set_payload("{}");
    let (status, _, body) = send(req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "unknown_provider");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("acme")));
}

#[actix_web::test]
async fn every_provider_of_the_contract_has_a_webhook_route() {
    // docs/CONTRACT.md §5. The database is down: 503 (not 404) shows the route took the name.
    for provider in ["bolna", "vapi", "elevenlabs", "twilio", "retell"] {
        let req = TestRequest::post()
            .uri(&format!("/v1/webhooks/{provider}/some-token"))
            .set_payload("{}");
        let (status, _, body) = send(req).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{provider}: {body}"
        );
    }
}

#[actix_web::test]
async fn an_oversized_webhook_answers_413_even_with_the_database_down() {
    let req = TestRequest::post()
        .uri("/v1/webhooks/bolna/some-token")
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(vec![b' '; 65]);
    let (status, _, body) = send(req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&body), "payload_too_large");
}

#[actix_web::test]
async fn a_webhook_with_the_database_down_answers_503_so_the_provider_retries() {
    let req = TestRequest::post()
        .uri("/v1/webhooks/bolna/some-token")
        .set_payload(r#"{"id":"e1","status":"ringing"}"#);
    let (status, headers, body) = send(req).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&body), "unavailable");
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[actix_web::test]
async fn openapi_json_is_served() {
    let (status, _, body) = send(TestRequest::get().uri("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["paths"]["/v1/calls"].is_object());
}

#[actix_web::test]
async fn metrics_count_requests_by_route_pattern() {
    let Some(state) = state(64) else {
        panic!("test state could not be built");
    };
    let service = test::init_service(app(web::Data::new(state))).await;
    for uri in [
        "/healthz",
        "/v1/calls/abc",
        "/v1/calls/def",
        "/no/such/path/0",
        "/no/such/path/1",
    ] {
        test::call_service(&service, TestRequest::get().uri(uri).to_request()).await;
    }
    let odd = TestRequest::default()
        .method(actix_web::http::Method::from_bytes(b"BREW").unwrap_or_default())
        .uri("/healthz")
        .to_request();
    test::call_service(&service, odd).await;
    let req = TestRequest::post()
        .uri("/v1/webhooks/bolna/t")
        .set_payload(vec![b'x'; 100])
        .to_request();
    test::call_service(&service, req).await;
    let res = test::call_service(&service, TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap_or_default();
    assert!(text.contains(r#"route="/healthz""#), "{text}");
    // Raw paths and invented methods never become label values.
    assert!(
        text.contains(r#"method="GET",route="unmatched",status="404"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"method="OTHER",route="/healthz",status="405"} 1"#),
        "{text}"
    );
    assert!(!text.contains("/no/such/path"), "{text}");
    assert!(
        text.contains(r#"route="/v1/calls/{execution_id}",status="401"} 2"#),
        "{text}"
    );
    assert!(
        text.contains("calltrail_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"calltrail_webhooks_total{provider="bolna",outcome="rejected",code="payload_too_large"} 1"#),
        "{text}"
    );
}

#[actix_web::test]
async fn query_strings_that_do_not_deserialize_answer_invalid_query() {
    let service = test::init_service(
        actix_web::App::new()
            .app_data(web::QueryConfig::default().error_handler(crate::error::query_error))
            .route(
                "/q",
                web::get().to(|q: web::Query<crate::calls::CallsQuery>| async move {
                    format!("{:?}", q.limit)
                }),
            ),
    )
    .await;
    let res = test::call_service(
        &service,
        TestRequest::get().uri("/q?limit=1&limit=2").to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&test::read_body(res).await).unwrap_or(Value::Null);
    assert_eq!(code(&body), "invalid_query");
}

#[actix_web::test]
async fn the_server_runs_on_a_listener_and_stops_on_its_handle() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let Some(state) = state(64) else {
        panic!("test state could not be built");
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let config = ApiConfig {
        workers: 1,
        ..state.config().clone()
    };
    let state = AppState { config, ..state };
    let server = crate::server(state, listener).unwrap_or_else(|e| panic!("{e}"));
    let handle = server.handle();
    let running = tokio::spawn(server);

    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    handle.stop(true).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), running).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))));
}

#[actix_web::test]
async fn an_agent_id_with_nul_is_nobody_s_without_asking_the_database() {
    let Some(state) = state(64) else {
        panic!("test state could not be built");
    };
    // The database is down: an answer at all shows it was not asked.
    let owner = state.agent_owner("bolna", "a\0b").await;
    assert!(matches!(owner, Ok(None)), "{owner:?}");
}
