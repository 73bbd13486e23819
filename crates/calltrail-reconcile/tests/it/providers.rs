//! Each provider's call object, as its API answers it, becomes the events its webhooks would
//! have produced (same event types, so the same event keys).

use std::time::Duration;

use calltrail_core::lifecycle::LifecycleStatus;
use calltrail_core::{Backoff, Provider};
use calltrail_reconcile::{ApiClient, ApiCredential, ClientConfig};
use calltrail_testkit::{MockProviderApi, Reply};
use serde_json::{json, Value};

fn client() -> ApiClient {
    ApiClient::new(ClientConfig {
        timeout: Duration::from_secs(2),
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(20)),
        rate_per_second: 1000.0,
        ..ClientConfig::default()
    })
    .unwrap()
}

/// The (event type, normalized status) pairs `provider`'s API answer `body` for `id` gives.
async fn events_of(
    provider: Provider,
    key: &str,
    path: &str,
    id: &str,
    body: Value,
) -> Vec<(String, LifecycleStatus)> {
    let api = MockProviderApi::start().await;
    api.set(path, Reply::json(200, body));
    let credential = ApiCredential::new(key, Some(api.base_url()));
    let events = client().fetch(provider, &credential, id).await.unwrap();
    assert_eq!(api.count(path), 1, "{provider} asked at {path}");
    events
        .into_iter()
        .map(|e| {
            assert_eq!(e.event.execution_id, id);
            (e.event_type, e.event.status)
        })
        .collect()
}

#[tokio::test]
async fn bolna_executions_are_the_webhook_itself() {
    let got = events_of(
        Provider::Bolna,
        "k",
        "/executions/b1",
        "b1",
        json!({"id": "b1", "status": "completed", "conversation_duration": 61.2,
               "telephony_data": {"to_number": "+14155550132", "call_type": "outbound"}}),
    )
    .await;
    assert_eq!(got, [("completed".to_owned(), LifecycleStatus::Completed)]);
}

#[tokio::test]
async fn an_ended_vapi_call_is_its_status_update_and_its_report() {
    let call = json!({
        "id": "v1", "type": "outboundPhoneCall", "status": "ended",
        "endedReason": "customer-ended-call",
        "startedAt": "2026-01-05T10:00:00Z", "endedAt": "2026-01-05T10:01:30Z",
        "customer": {"number": "+14155550132"},
        "artifact": {"transcript": "AI: hi\nUser: hello"}, "cost": 0.12,
    });
    let got = events_of(Provider::Vapi, "k", "/call/v1", "v1", call).await;
    assert_eq!(
        got,
        [
            ("ended".to_owned(), LifecycleStatus::CallDisconnected),
            ("end-of-call-report".to_owned(), LifecycleStatus::Completed),
        ]
    );
    let busy = json!({"id": "v2", "status": "ended", "endedReason": "customer-busy"});
    let got = events_of(Provider::Vapi, "k", "/call/v2", "v2", busy).await;
    assert_eq!(
        got[1],
        ("end-of-call-report".to_owned(), LifecycleStatus::Busy)
    );
    let live = json!({"id": "v3", "status": "in-progress"});
    let got = events_of(Provider::Vapi, "k", "/call/v3", "v3", live).await;
    assert_eq!(
        got,
        [("in-progress".to_owned(), LifecycleStatus::InProgress)]
    );
}

#[tokio::test]
async fn a_vapi_report_carries_the_duration_the_charge_needs() {
    let api = MockProviderApi::start().await;
    let call = json!({"id": "v4", "status": "ended", "endedReason": "assistant-ended-call",
                      "startedAt": "2026-01-05T10:00:00Z", "endedAt": "2026-01-05T10:01:30Z"});
    api.set("/call/v4", Reply::json(200, call));
    let credential = ApiCredential::new("k", Some(api.base_url()));
    let events = client()
        .fetch(Provider::Vapi, &credential, "v4")
        .await
        .unwrap();
    let report = events
        .iter()
        .find(|e| e.event_type == "end-of-call-report")
        .unwrap();
    assert_eq!(report.event.conversation_seconds, Some(90.0));
}

#[tokio::test]
async fn retell_calls_give_started_ended_and_analyzed() {
    let call = json!({
        "call_id": "r1", "call_status": "ended", "direction": "outbound", "to_number": "+14155550132",
        "start_timestamp": 1_767_607_200_000_i64, "end_timestamp": 1_767_607_290_000_i64,
        "duration_ms": 90_000, "disconnection_reason": "user_hangup",
        "call_analysis": {"call_summary": "ok"},
    });
    let got = events_of(Provider::Retell, "k", "/v2/get-call/r1", "r1", call).await;
    let types: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["call_started", "call_ended", "call_analyzed"]);
    assert_eq!(got[2].1, LifecycleStatus::Completed);

    let missed = json!({"call_id": "r2", "call_status": "not_connected", "disconnection_reason": "dial_no_answer"});
    let got = events_of(Provider::Retell, "k", "/v2/get-call/r2", "r2", missed).await;
    assert_eq!(got, [("call_ended".to_owned(), LifecycleStatus::NoAnswer)]);
}

#[tokio::test]
async fn a_twilio_call_resource_is_its_status_callback() {
    let call = json!({
        "sid": "CA1", "account_sid": "AC1", "status": "completed", "direction": "outbound-api",
        "from": "+14155550100", "to": "+14155550132", "duration": "75",
        "end_time": "Mon, 05 Jan 2026 10:01:15 +0000", "api_version": "2010-04-01",
    });
    let api = MockProviderApi::start().await;
    let path = "/2010-04-01/Accounts/AC1/Calls/CA1.json";
    api.set(path, Reply::json(200, call));
    let credential = ApiCredential::new("AC1:token", Some(api.base_url()));
    let events = client()
        .fetch(Provider::Twilio, &credential, "CA1")
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "completed");
    assert_eq!(events[0].event.conversation_seconds, Some(75.0));
    assert_eq!(
        events[0].event.occurred_at.to_rfc3339(),
        "2026-01-05T10:01:15+00:00"
    );
    // Basic AccountSid:AuthToken.
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some("Basic QUMxOnRva2Vu")
    );
}

#[tokio::test]
async fn elevenlabs_conversations_become_post_call_webhooks() {
    let done = json!({
        "agent_id": "a1", "conversation_id": "c1", "status": "done",
        "transcript": [{"role": "agent", "message": "Hi", "time_in_call_secs": 0}],
        "metadata": {"start_time_unix_secs": 1_767_607_200, "call_duration_secs": 48},
    });
    let api = MockProviderApi::start().await;
    api.set("/v1/convai/conversations/c1", Reply::json(200, done));
    let credential = ApiCredential::new("xi-key", Some(api.base_url()));
    let events = client()
        .fetch(Provider::ElevenLabs, &credential, "c1")
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "post_call_transcription");
    assert_eq!(events[0].event.status, LifecycleStatus::Completed);
    assert_eq!(api.requests()[0].header("xi-api-key"), Some("xi-key"));

    let running = json!({"agent_id": "a1", "conversation_id": "c2", "status": "in-progress"});
    let got = events_of(
        Provider::ElevenLabs,
        "k",
        "/v1/convai/conversations/c2",
        "c2",
        running,
    )
    .await;
    assert!(got.is_empty(), "nothing a webhook would report yet");
}
