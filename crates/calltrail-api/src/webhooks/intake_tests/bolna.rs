//! Bolna through the generic intake: unsigned JSON, every behaviour the Bolna-only intake had.

use calltrail_core::event::CALL_EVENT_SCHEMA_VERSION;
use calltrail_core::providers::bolna::Bolna;
use serde_json::json;

use super::*;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn headers() -> HeaderMap {
    header_map(&[
        ("content-type", "application/json"),
        ("user-agent", "bolna-webhooks/1.0"),
        ("x-bolna-signature", "sig"),
    ])
}

async fn deliver(backend: &Fake, token: &str, body: &[u8]) -> Result<WebhookReceipt, ApiError> {
    deliver_limited(backend, token, body, limits(2_097_152)).await
}

async fn deliver_limited(
    backend: &Fake,
    token: &str,
    body: &[u8],
    limits: IntakeLimits,
) -> Result<WebhookReceipt, ApiError> {
    let request = Request {
        token,
        limits,
        ..Request::new(&Bolna, headers())
    };
    receipt(request.send(backend, body).await)
}

fn payload(status: &str, extra: serde_json::Value) -> Vec<u8> {
    let mut body = json!({
        "id": "exec-1",
        "status": status,
        "updated_at": "2024-05-01T11:59:30",
        "telephony_data": {"call_type": "outbound", "to_number": "+14155550132"},
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

#[tokio::test]
async fn a_valid_webhook_is_appended_with_its_raw_payload() {
    let (fake, tenant) = Fake::new();
    let body = payload("ringing", json!({}));
    let receipt = deliver(&fake, TOKEN, &body).await;
    let receipt = receipt.ok();
    assert_eq!(
        receipt.as_ref().map(|r| r.status.as_str()),
        Some("accepted")
    );
    assert_eq!(receipt.as_ref().map(|r| r.event.as_str()), Some("ringing"));
    assert_eq!(receipt.as_ref().map(|r| r.position), Some(1));

    let log = fake.appended.borrow();
    let event = &log[0];
    assert_eq!(event.tenant_id, tenant);
    assert_eq!(event.provider, "bolna");
    assert_eq!(event.stream_id, "exec-1");
    assert_eq!(event.event_type, "ringing");
    assert_eq!(event.schema_version, CALL_EVENT_SCHEMA_VERSION);
    assert_eq!(
        Some(event.occurred_at),
        Utc.with_ymd_and_hms(2024, 5, 1, 11, 59, 30).single()
    );
    assert_eq!(event.payload.as_deref().map(str::as_bytes), Some(&body[..]));
    let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
    assert_eq!(data["execution_id"], "exec-1");
    assert_eq!(data["phone_number"], "+14155550132");
    let metadata: serde_json::Value = serde_json::from_str(&event.metadata).unwrap_or_default();
    assert_eq!(metadata["user_agent"], "bolna-webhooks/1.0");
    assert_eq!(metadata["content_type"], "application/json");
    assert_eq!(metadata["received_at"], "2024-05-01T12:00:00Z");
    assert!(fake.rejected.borrow().is_empty());
}

#[tokio::test]
async fn the_receive_time_is_the_event_time_when_the_payload_has_none() {
    let (fake, _) = Fake::new();
    let body = br#"{"id":"exec-2","status":"Completed"}"#;
    let receipt = deliver(&fake, TOKEN, body).await.ok();
    assert_eq!(receipt.map(|r| r.event), Some("completed".to_owned()));
    assert_eq!(fake.appended.borrow()[0].occurred_at, received_at());
}

#[tokio::test]
async fn redelivery_is_a_duplicate_and_a_changed_body_a_conflict() {
    let (fake, _) = Fake::new();
    let body = payload("completed", json!({"conversation_duration": 27.2}));
    assert!(deliver(&fake, TOKEN, &body).await.is_ok());
    let again = deliver(&fake, TOKEN, &body).await.ok();
    assert_eq!(
        again
            .as_ref()
            .map(|r| (r.duplicate, r.conflict, r.position)),
        Some((true, Some(false), 1))
    );
    let changed = payload("completed", json!({"conversation_duration": 99}));
    let changed = deliver(&fake, TOKEN, &changed).await.ok();
    assert_eq!(changed.map(|r| r.conflict), Some(Some(true)));
    assert_eq!(fake.appended.borrow().len(), 1);
}

#[tokio::test]
async fn an_unknown_token_is_refused_and_kept() {
    let (fake, _) = Fake::new();
    let body = payload("ringing", json!({}));
    let result = deliver(&fake, "nope", &body).await;
    assert!(matches!(result, Err(ApiError::UnknownWebhookToken)));
    let rejected = fake.rejected.borrow();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].status_code, 401);
    assert_eq!(rejected[0].tenant_id, None);
    assert_eq!(rejected[0].body, body);
    assert_eq!(rejected[0].provider, "bolna");
    assert_eq!(
        rejected[0].headers,
        json!({"content-type": "application/json", "user-agent": "bolna-webhooks/1.0"})
    );
    assert!(fake.appended.borrow().is_empty());
}

#[tokio::test]
async fn bad_payloads_answer_400_with_the_parsers_sentence() {
    let (fake, tenant) = Fake::new();
    for (body, needle) in [
        (&b"{not json"[..], "not valid JSON"),
        (&b"[1,2]"[..], "not a JSON object"),
        (&br#"{"status":"ringing"}"#[..], "`id`"),
        (&br#"{"id":"e","status":null}"#[..], "`status`"),
    ] {
        let result = deliver(&fake, TOKEN, body).await;
        assert_eq!(status_of(&result), Some(StatusCode::BAD_REQUEST));
        let err = result.err();
        assert_eq!(err.as_ref().map(ApiError::code), Some("invalid_payload"));
        let message = err.map(|e| e.message()).unwrap_or_default();
        assert!(message.contains(needle), "{message}");
    }
    let rejected = fake.rejected.borrow();
    assert_eq!(rejected.len(), 4);
    assert!(rejected
        .iter()
        .all(|r| r.status_code == 400 && r.tenant_id == Some(tenant)));
}

#[tokio::test]
async fn an_oversized_body_answers_413_and_keeps_what_was_read() {
    let (fake, _) = Fake::new();
    let body = payload("ringing", json!({"transcript": "x".repeat(100)}));
    for token in ["unknown-token", TOKEN] {
        let result = deliver_limited(&fake, token, &body, limits(16)).await;
        assert_eq!(status_of(&result), Some(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let rejected = fake.rejected.borrow();
    assert_eq!(rejected.len(), 2);
    assert!(rejected
        .iter()
        .all(|r| r.status_code == 413 && r.body == body[..16]));
    assert!(fake.appended.borrow().is_empty());
}

#[tokio::test]
async fn an_agent_of_another_tenant_is_refused_but_an_unregistered_one_is_accepted() {
    let (mut fake, tenant) = Fake::new();
    fake.agents.insert("agent-mine".into(), tenant);
    fake.agents.insert("agent-theirs".into(), Uuid::new_v4());

    let theirs = payload("ringing", json!({"agent_id": "agent-theirs"}));
    let result = deliver(&fake, TOKEN, &theirs).await;
    assert_eq!(status_of(&result), Some(StatusCode::FORBIDDEN));
    assert_eq!(
        result.err().map(|e| e.code()),
        Some("agent_of_another_tenant")
    );
    assert_eq!(fake.rejected.borrow()[0].status_code, 403);

    let mine = payload("ringing", json!({"agent_id": "agent-mine"}));
    assert!(deliver(&fake, TOKEN, &mine).await.is_ok());
    let unknown = payload("initiated", json!({"agent_id": "agent-new"}));
    assert!(deliver(&fake, TOKEN, &unknown).await.is_ok());
    assert_eq!(fake.appended.borrow().len(), 2);
}

#[tokio::test]
async fn an_unavailable_database_answers_503_without_recording() {
    let (mut fake, _) = Fake::new();
    fake.store_down = true;
    let body = payload("ringing", json!({}));
    let result = deliver(&fake, TOKEN, &body).await;
    assert_eq!(status_of(&result), Some(StatusCode::SERVICE_UNAVAILABLE));

    let (mut fake, _) = Fake::new();
    fake.secrets_down = true;
    let result = deliver(&fake, TOKEN, &body).await;
    assert_eq!(status_of(&result), Some(StatusCode::SERVICE_UNAVAILABLE));

    let (mut fake, _) = Fake::new();
    fake.log_down = true;
    let result = deliver(&fake, TOKEN, &body).await;
    assert_eq!(status_of(&result), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert!(fake.rejected.borrow().is_empty());
}

#[tokio::test]
async fn content_the_database_refuses_answers_400_and_is_kept() {
    let (mut fake, tenant) = Fake::new();
    fake.refuse_content = true;
    let body = br#"{"id":"exec-3","status":"ringing"}"#;
    let result = deliver(&fake, TOKEN, body).await;
    assert_eq!(status_of(&result), Some(StatusCode::BAD_REQUEST));
    let err = result.err();
    assert_eq!(err.as_ref().map(|e| e.code()), Some("invalid_payload"));
    let message = err.map(|e| e.message()).unwrap_or_default();
    assert!(!message.contains("database"), "our words: {message}");
    let rejected = fake.rejected.borrow();
    assert_eq!(rejected[0].tenant_id, Some(tenant));
    assert_eq!(rejected[0].body, body.to_vec());
}

#[tokio::test]
async fn u0000_is_refused_in_our_words_before_the_event_log() {
    let (fake, tenant) = Fake::new();
    for body in [
        &br#"{"id":"exec-3","status":"ringing","transcript":"a\u0000b"}"#[..],
        br#"{"id":"exec-3","status":"ringing","extra":{"k\u0000":1}}"#,
    ] {
        let result = deliver(&fake, TOKEN, body).await;
        assert_eq!(status_of(&result), Some(StatusCode::BAD_REQUEST));
        let err = result.err();
        assert_eq!(err.as_ref().map(|e| e.code()), Some("invalid_payload"));
        let message = err.map(|e| e.message()).unwrap_or_default();
        assert!(message.contains("U+0000"), "{message}");
    }
    assert!(fake.appended.borrow().is_empty(), "never sent to the log");
    let kept: Vec<(Option<uuid::Uuid>, String)> = fake
        .rejected
        .borrow()
        .iter()
        .map(|r| (r.tenant_id, r.reason.clone()))
        .collect();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].0, Some(tenant));
    assert!(kept[0].1.contains("U+0000"), "{}", kept[0].1);
    // An escaped backslash before `u0000` is text, not U+0000.
    let body = br#"{"id":"exec-4","status":"ringing","transcript":"a\\u0000b"}"#;
    assert!(deliver(&fake, TOKEN, body).await.is_ok());
}

#[tokio::test]
async fn a_byte_order_mark_is_not_stored_in_the_payload() {
    let (fake, _) = Fake::new();
    let mut body = UTF8_BOM.to_vec();
    body.extend_from_slice(br#"{"id":"exec-4","status":"queued"}"#);
    assert!(deliver(&fake, TOKEN, &body).await.is_ok());
    assert_eq!(
        fake.appended.borrow()[0].payload.as_deref(),
        Some(r#"{"id":"exec-4","status":"queued"}"#)
    );
}

#[tokio::test]
async fn bolna_signs_nothing_so_its_secrets_do_not_matter() {
    let (mut fake, _) = Fake::new();
    assert!(deliver(&fake, TOKEN, &payload("ringing", json!({})))
        .await
        .is_ok());
    fake.secrets = vec![ProviderSecret::new(b"unused".to_vec())];
    assert!(deliver(&fake, TOKEN, &payload("completed", json!({})))
        .await
        .is_ok());
    assert_eq!(fake.appended.borrow().len(), 2);
}

#[tokio::test]
async fn a_form_body_is_refused_by_a_json_provider_and_kept() {
    let (fake, tenant) = Fake::new();
    let body = b"id=exec-5&status=ringing";
    let result = deliver(&fake, TOKEN, body).await;
    assert_eq!(status_of(&result), Some(StatusCode::BAD_REQUEST));
    assert_eq!(result.err().map(|e| e.code()), Some("invalid_payload"));
    let rejected = fake.rejected.borrow();
    assert_eq!(rejected[0].tenant_id, Some(tenant));
    assert_eq!(rejected[0].body, body.to_vec());
}
