//! Bad input gets a specific status and error code, and the request is kept in the rejected log.

use serde_json::{json, Value};

use crate::helpers::*;

async fn rejected_rows(app: &TestApp) -> Vec<(String, i32, String)> {
    let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
    let rows = sqlx::query_as(
        "SELECT reason, status_code, encode(body, 'escape') FROM rejected_webhooks ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_bad_webhook_gets_its_status_and_a_rejected_log_row() {
    let app = spawn_app_with(|s| s.max_body_bytes = 4096).await;
    let tenant = app.create_tenant().await;
    let other = app.create_tenant().await;
    app.add_agent(&other, AGENT).await;
    let initiated = fixtures::read("bolna/success/01-initiated.json");

    let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        (
            "malformed JSON",
            tenant.webhook_token.clone(),
            b"{\"id\": \"x\", \"status\":".to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "missing id",
            tenant.webhook_token.clone(),
            br#"{"status":"ringing"}"#.to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "missing status",
            tenant.webhook_token.clone(),
            br#"{"id":"abc"}"#.to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "not an object",
            tenant.webhook_token.clone(),
            b"[1,2,3]".to_vec(),
            400,
            "invalid_payload",
        ),
        (
            "wrong token",
            "whk_not_a_real_token".to_owned(),
            initiated.clone(),
            401,
            "unknown_webhook_token",
        ),
        (
            "another tenant's agent",
            tenant.webhook_token.clone(),
            initiated.clone(),
            403,
            "agent_of_another_tenant",
        ),
        (
            "oversized body",
            tenant.webhook_token.clone(),
            vec![b' '; 10_000],
            413,
            "payload_too_large",
        ),
    ];
    for (i, (what, token, body, status, code)) in cases.iter().enumerate() {
        let (got, answer) = app.post_bolna_json(token, body).await;
        assert_eq!(got, *status, "{what}: {answer}");
        assert_eq!(error_code(&answer), *code, "{what}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: a human sentence"
        );
        let rows = rejected_rows(&app).await;
        assert_eq!(rows.len(), i + 1, "{what} is kept in the rejected log");
        assert_eq!(rows[i].1, i32::from(*status), "{what}");
    }
    let rows = rejected_rows(&app).await;
    assert_eq!(
        rows[0].2, "{\"id\": \"x\", \"status\":",
        "the body is kept exactly as received"
    );
    assert_eq!(
        app.sql_count("SELECT count(*) FROM events").await,
        0,
        "nothing refused reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_nobody_registered_is_recorded_for_the_tokens_tenant() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let body = with_fields(
        &fixtures::read("bolna/success/01-initiated.json"),
        &[("agent_id", json!("unregistered-agent"))],
    );
    let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &body).await;
    assert_eq!(status, 202, "{answer}");
    let call = app
        .wait_for(&tenant, &format!("/v1/calls/{SUCCESS}"), |s, _| s == 200)
        .await;
    assert_eq!(call["agent_id"], "unregistered-agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_api_needs_a_valid_key_and_validates_its_parameters() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let response = app
        .client
        .get(format!("{}/v1/calls", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "unauthorized");
    let response = app
        .client
        .get(format!("{}/v1/calls", app.address))
        .bearer_auth("ct_live_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);

    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("from=yesterday", "invalid_time"),
        ("cursor=%%%", "invalid_cursor"),
        ("status=bogus", "invalid_parameter"),
        ("lifecycle_status=bogus", "invalid_parameter"),
        ("stauts=failed", "unknown_parameter"),
        ("from=2024-05-02&to=2024-05-01", "invalid_range"),
    ] {
        let (status, body) = app.get(&tenant, &format!("/v1/calls?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(error_code(&body), code, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signing_provider_is_fail_closed_without_a_secret() {
    use calltrail_core::Provider;

    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let signing: Vec<Provider> = Provider::ALL
        .iter()
        .copied()
        .filter(|p| *p != Provider::Bolna)
        .collect();
    for provider in &signing {
        let response = app
            .client
            .post(format!(
                "{}/v1/webhooks/{provider}/{}",
                app.address, tenant.webhook_token
            ))
            .header("content-type", "application/json")
            .header("x-vapi-secret", "guess")
            .header("authorization", "Bearer guess")
            .header("x-signature", "00")
            .body(r#"{"message":{"type":"status-update"}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{provider}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            error_code(&answer),
            "signature_not_configured",
            "{provider}"
        );
    }
    let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
    let rows: Vec<(String, i32, Value)> =
        sqlx::query_as("SELECT provider, status_code, headers FROM rejected_webhooks ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(rows.len(), signing.len(), "each refusal is kept");
    for ((provider, status, headers), expected) in rows.iter().zip(&signing) {
        assert_eq!((provider.as_str(), *status), (expected.as_str(), 401));
        assert_eq!(headers["content-type"], "application/json");
        for secret in ["x-vapi-secret", "authorization", "x-signature"] {
            assert!(headers.get(secret).is_none(), "{secret} was stored");
        }
    }
    assert_eq!(app.sql_count("SELECT count(*) FROM events").await, 0);

    // Bolna signs nothing: the same tenant's Bolna webhooks are accepted.
    let (status, answer) = app
        .post_bolna_json(
            &tenant.webhook_token,
            &fixtures::read("bolna/success/01-initiated.json"),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_parameters_are_named_with_what_they_take() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let message = |body: &Value| body["error"]["message"].as_str().unwrap_or("").to_owned();

    let (status, body) = app.get(&tenant, "/v1/calls?status=bogus").await;
    assert_eq!((status, error_code(&body)), (400, "invalid_parameter"));
    let text = message(&body);
    for named in [
        "`status`",
        "`bogus`",
        "completed",
        "failed",
        "cancelled",
        "in_progress",
    ] {
        assert!(text.contains(named), "{named} in {text}");
    }
    let (status, body) = app.get(&tenant, "/v1/calls?lifecycle_status=bogus").await;
    assert_eq!((status, error_code(&body)), (400, "invalid_parameter"));
    let text = message(&body);
    for named in [
        "`lifecycle_status`",
        "no-answer",
        "call-disconnected",
        "balance-low",
    ] {
        assert!(text.contains(named), "{named} in {text}");
    }
    // The filters that are right still work.
    for query in [
        "status=failed",
        "lifecycle_status=no-answer",
        "status=",
        "from=2024-05-01&to=2024-05-01",
    ] {
        let (status, body) = app.get(&tenant, &format!("/v1/calls?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
    }

    for path in [
        "/v1/calls?stauts=failed",
        "/v1/calls.csv?stauts=failed",
        "/v1/contacts?stauts=failed",
        "/v1/campaigns?stauts=failed",
        "/v1/kpis?stauts=failed",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(&tenant.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "unknown_parameter", "{path}: {body}");
        let text = message(&body);
        let takes = if path.starts_with("/v1/kpis") {
            "`from`"
        } else {
            "`limit`"
        };
        assert!(
            text.contains("`stauts`") && text.contains(takes),
            "{path}: {text}"
        );
    }
    for path in [
        "/v1/calls?from=2024-05-02&to=2024-05-01T23:59:59Z",
        "/v1/kpis?from=2024-05-02&to=2024-05-01",
    ] {
        let (status, body) = app.get(&tenant, path).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, "invalid_range"),
            "{path}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_is_taken_only_by_the_list_that_issued_it() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    for first in [
        "bolna/success/01-initiated.json",
        "bolna/no-answer/01-initiated.json",
    ] {
        let (status, answer) = app
            .post_bolna_json(&tenant.webhook_token, &fixtures::read(first))
            .await;
        assert_eq!(status, 202, "{answer}");
    }
    let calls = app
        .wait_for(&tenant, "/v1/calls?limit=1", |s, b| {
            s == 200 && b["next_cursor"].is_string()
        })
        .await;
    let contacts = app
        .wait_for(&tenant, "/v1/contacts?limit=1", |s, b| {
            s == 200 && b["next_cursor"].is_string()
        })
        .await;
    let of_calls = calls["next_cursor"].as_str().unwrap();
    let of_contacts = contacts["next_cursor"].as_str().unwrap();
    for path in [
        format!("/v1/contacts?cursor={of_calls}"),
        format!("/v1/campaigns?cursor={of_calls}"),
        format!("/v1/calls?cursor={of_contacts}"),
        format!("/v1/campaigns?cursor={of_contacts}"),
    ] {
        let (status, body) = app.get(&tenant, &path).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, "invalid_cursor"),
            "{path}: {body}"
        );
    }
    for path in [
        format!("/v1/calls?limit=1&cursor={of_calls}"),
        format!("/v1/contacts?limit=1&cursor={of_contacts}"),
    ] {
        let (status, body) = app.get(&tenant, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["items"].as_array().map(Vec::len), Some(1), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn u0000_in_a_payload_is_refused_in_our_words() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let body = with_fields(
        &fixtures::read("bolna/success/01-initiated.json"),
        &[("extra", json!("a\u{0}b"))],
    );
    let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &body).await;
    assert_eq!(
        (status, error_code(&answer)),
        (400, "invalid_payload"),
        "{answer}"
    );
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("U+0000"), "{message}");
    for postgres in [
        "unsupported Unicode",
        "escape sequence",
        "database",
        "22P05",
    ] {
        assert!(!message.contains(postgres), "PostgreSQL's words: {message}");
    }
    let rows = rejected_rows(&app).await;
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0].0.contains("Unicode escape"),
        "the kept reason is ours too: {}",
        rows[0].0
    );
    assert_eq!(app.sql_count("SELECT count(*) FROM events").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_actix_refuses_itself_is_never_logged_as_an_error() {
    let app = spawn_app_with(|s| s.projector = false).await;
    let path =
        std::env::temp_dir().join(format!("calltrail-refused-{}.jsonl", uuid::Uuid::new_v4()));
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
    // Requests HTTP clients refuse to send, written by hand on a raw connection.
    let send = |request: String| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        // The server may stop reading once it has refused the request.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut answer),
        )
        .await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    // A 100 KB request line: actix-http's own 400, before any route runs.
    let answer = send(format!(
        "GET /v1/calls?x={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(100_000)
    ))
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "a client error: {answer}"
    );
    // A head beyond actix-http's 128 KiB buffer: its own 431.
    let answer = send(format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(200_000)
    ))
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // Bytes that are not HTTP.
    let answer = send("NOT HTTP AT ALL\r\n\r\n".to_owned()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // As docs/CONTRACT.md says: these answers are actix-http's, without a body (it writes them
    // itself and has no hook for one). If this ever changes, say so there and in README.
    assert!(
        answer.to_ascii_lowercase().contains("content-length: 0"),
        "{answer}"
    );
    // The server is still there for the next client.
    let ok = client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    server.kill().unwrap();
    server.wait().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(
        errors.is_empty(),
        "a client's mistake logged as an error: {errors:?}"
    );
    assert!(
        lines.iter().any(|l| l["level"] == "WARN"
            && l["reason"]
                .as_str()
                .is_some_and(|r| r.contains("uri too long"))),
        "the refusal is one warning: {text}"
    );
    let refusals = lines
        .iter()
        .filter(|l| l["level"] == "WARN" && l["target"] == "calltrail::http")
        .count();
    assert!(refusals >= 3, "each refusal a warning: {text}");
}
