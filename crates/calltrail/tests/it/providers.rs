//! Vapi, ElevenLabs, Twilio and Retell end to end: each provider's whole calls, signed with a
//! secret stored as `admin set-provider-secret` stores it, through the real router into real
//! PostgreSQL, give the Call that docs/CONTRACT.md §5 says, in any delivery order with
//! duplicates. (Signatures, ignored messages and Twilio's URL are in `providers_signatures`.)

use std::time::Duration;

use calltrail::startup::Settings;
use calltrail_core::secrets::SecretsKey;
use calltrail_core::Provider;
use calltrail_projections::credentials::{NewCredential, SecretKind};
use calltrail_testkit::signing::{self, Header};
use serde_json::Value;

use crate::helpers::*;
use crate::secrets::{with_key, KEY};

/// The `CALLTRAIL_PUBLIC_URL` of these tests: what Twilio's signatures cover.
pub const PUBLIC_URL: &str = "https://calltrail.example.com";

/// Settings that open stored secrets and know the public URL Twilio signs.
pub fn with_providers(settings: &mut Settings) {
    with_key(settings);
    settings.public_url = Some(PUBLIC_URL.to_owned());
}

/// The signing secret these tests give a tenant for `provider`.
pub fn secret_of(provider: &str) -> String {
    format!("{provider}-test-secret-7f3a9c")
}

/// Stores `secret` as the tenant's signing secret for `provider`, as `calltrail admin
/// set-provider-secret` does; the secret it replaces stays valid for `previous_valid_for`.
pub async fn set_secret(
    app: &TestApp,
    tenant: &Tenant,
    provider: &str,
    secret: &str,
    previous_valid_for: Duration,
) {
    let key = SecretsKey::from_base64(KEY).unwrap();
    let credential = NewCredential {
        user_id: tenant.user_id,
        provider: provider.parse::<Provider>().unwrap(),
        kind: SecretKind::WebhookSigning,
        secret: secret.as_bytes(),
        base_url: None,
        previous_valid_for,
    };
    app.store
        .tenancy()
        .set_provider_credential(&key, credential)
        .await
        .unwrap();
}

/// A tenant with [`secret_of`] set for `provider`.
pub async fn signing_tenant(app: &TestApp, provider: &str) -> Tenant {
    let tenant = app.create_tenant().await;
    set_secret(app, &tenant, provider, &secret_of(provider), Duration::ZERO).await;
    tenant
}

/// The webhook path of `provider` for `token`.
pub fn webhook_path(provider: &str, token: &str) -> String {
    format!("/v1/webhooks/{provider}/{token}")
}

/// Posts `body` to `path` with exactly `headers`; returns (status, JSON body).
pub async fn post_with(app: &TestApp, path: &str, headers: &[Header], body: &[u8]) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Posts `body` to the tenant's `provider` webhook signed now with `secret`, as the provider
/// would.
pub async fn post_signed_with(
    app: &TestApp,
    provider: &str,
    token: &str,
    secret: &str,
    body: &[u8],
) -> (u16, Value) {
    let path = webhook_path(provider, token);
    let url = format!("{PUBLIC_URL}{path}");
    let headers = signing::sign(provider, secret, signing::now_millis(), &url, body);
    post_with(app, &path, &headers, body).await
}

/// [`post_signed_with`] the tenant's own [`secret_of`].
pub async fn post_signed(
    app: &TestApp,
    provider: &str,
    tenant: &Tenant,
    body: &[u8],
) -> (u16, Value) {
    post_signed_with(
        app,
        provider,
        &tenant.webhook_token,
        &secret_of(provider),
        body,
    )
    .await
}

/// Delivers every body, signed; each must be recorded (202) or a duplicate (200).
async fn deliver(app: &TestApp, provider: &str, tenant: &Tenant, bodies: &[Vec<u8>]) {
    for body in bodies {
        let (status, answer) = post_signed(app, provider, tenant, body).await;
        assert!(
            (status == 202 && answer["status"] == "accepted")
                || (status == 200 && answer["status"] == "duplicate"),
            "{provider}: {status} {answer}"
        );
    }
}

/// The Call as a user reads it, without what differs between tenants or with processing time.
fn comparable(call: &Value) -> Value {
    let mut call = call.clone();
    let object = call.as_object_mut().unwrap();
    for field in ["updated_at", "user_id", "contact_id"] {
        object.remove(field);
    }
    if let Some(Value::Array(events)) = object.get_mut("events") {
        for event in events.iter_mut() {
            event.as_object_mut().unwrap().remove("recorded_at");
        }
        // Events at the same time are listed in arrival order (Retell's `call_ended` and
        // `call_analyzed` share `end_timestamp`), so the timeline is compared by time and type.
        events.sort_by_key(|e| (e["occurred_at"].to_string(), e["type"].to_string()));
    }
    call
}

/// Delivery orders of `n` webhooks: a fixed set of shuffles, each with duplicates (from a
/// seeded generator, so a failure names a reproducible order).
fn delivery_orders(n: usize) -> Vec<Vec<usize>> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(state >> 33).unwrap() % bound
    };
    let mut orders = vec![(0..n).rev().collect::<Vec<_>>()];
    for _ in 0..3 {
        let mut order: Vec<usize> = (0..n).collect();
        for _ in 0..=n / 2 {
            order.push(next(n));
        }
        for i in (1..order.len()).rev() {
            order.swap(i, next(i + 1));
        }
        orders.push(order);
    }
    orders
}

/// Delivers the call in order to one tenant and in each of [`delivery_orders`] (with
/// duplicates) to a tenant of its own; every tenant's Call must be the in-order one. Returns the
/// in-order tenant and its Call.
async fn in_any_order(
    app: &TestApp,
    provider: &str,
    id: &str,
    bodies: &[Vec<u8>],
    last_status: &str,
) -> (Tenant, Value) {
    let in_order = signing_tenant(app, provider).await;
    deliver(app, provider, &in_order, bodies).await;
    let path = format!("/v1/calls/{id}");
    app.wait_for(&in_order, &path, |s, b| {
        s == 200 && b["call_lifecycle_status"] == last_status
    })
    .await;
    // The last status can be folded before a later timeline-only event: wait for them all.
    app.wait_until_projected().await;
    let expected = app.call(&in_order, id).await;
    let mut shuffled = Vec::new();
    for order in delivery_orders(bodies.len()) {
        let tenant = signing_tenant(app, provider).await;
        let sent: Vec<Vec<u8>> = order.iter().map(|&i| bodies[i].clone()).collect();
        deliver(app, provider, &tenant, &sent).await;
        shuffled.push((order, tenant));
    }
    app.wait_until_projected().await;
    for (order, tenant) in &shuffled {
        let call = app.call(tenant, id).await;
        assert_eq!(
            comparable(&call),
            comparable(&expected),
            "{provider} {id} delivered in the order {order:?}"
        );
    }
    (in_order, expected)
}

fn timeline(call: &Value) -> Vec<&str> {
    call["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

async fn transcript(app: &TestApp, tenant: &Tenant, id: &str) -> Value {
    let (status, body) = app.get(tenant, &format!("/v1/calls/{id}/transcript")).await;
    assert_eq!(status, 200, "{body}");
    body["content"].clone()
}

/// The fields every missed call has: failed, nothing charged, never answered or completed.
fn assert_missed(call: &Value, lifecycle: &str) {
    assert_eq!(call["call_lifecycle_status"], lifecycle);
    assert_eq!(call["status"], "failed");
    assert_eq!(call["duration_seconds"], 0);
    assert_eq!(call["duration_minutes"], 0);
    assert_eq!(call["credits_used"], 0);
    assert!(call["call_answered_at"].is_null(), "{call}");
    assert!(call["completed_at"].is_null(), "{call}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vapi_calls_normalize_per_the_contract_in_any_order() {
    use calltrail_testkit::fixtures::vapi;
    let app = spawn_app_with(with_providers).await;
    let (tenant, call) =
        in_any_order(&app, "vapi", vapi::CALL_ID, &vapi::answered(), "completed").await;

    assert_eq!(call["execution_id"], vapi::CALL_ID);
    assert_eq!(call["agent_id"], vapi::ASSISTANT_ID, "call.assistantId");
    assert_eq!(call["user_id"], tenant.user_id.to_string());
    assert_eq!(call["phone_number"], "+14155550132", "call.customer.number");
    assert_eq!(call["lead_type"], "outbound", "call.type outboundPhoneCall");
    assert_eq!(
        call["call_lifecycle_status"], "completed",
        "end-of-call-report"
    );
    assert_eq!(call["status"], "completed");
    assert_eq!(
        call["duration_seconds"], 29,
        "ceil(endedAt − startedAt = 28.999)"
    );
    assert_eq!(call["duration_minutes"], 1);
    assert_eq!(call["credits_used"], 1);
    assert_eq!(call["hangup_reason"], "customer-ended-call", "endedReason");
    assert_eq!(
        call["recording_url"],
        "https://storage.vapi.ai/6f2b9c1e-4d7a-4e83-b05f-9a1c3d8e2f47-1759914936120-mono.wav",
        "artifact.recordingUrl"
    );
    // Event times are `message.timestamp` (Unix ms); the call was created at `call.createdAt`.
    assert_eq!(call["ringing_started_at"], "2025-10-08T09:15:01Z");
    assert_eq!(call["call_answered_at"], "2025-10-08T09:15:08.460Z");
    assert_eq!(
        call["call_disconnected_at"], "2025-10-08T09:15:37.500Z",
        "ended"
    );
    assert_eq!(call["completed_at"], "2025-10-08T09:15:41.920Z");
    assert_eq!(call["created_at"], "2025-10-08T09:14:58.301Z");
    assert_eq!(
        timeline(&call),
        [
            "queued",
            "ringing",
            "in-progress",
            "ended",
            "end-of-call-report"
        ],
        "the status as sent, and the message type of the report"
    );
    let raw = calltrail_testkit::fixtures::json("vapi/end-of-call-report.json");
    assert_eq!(
        transcript(&app, &tenant, vapi::CALL_ID).await,
        raw["message"]["artifact"]["transcript"],
        "artifact.transcript"
    );

    // The unanswered call: `customer-did-not-answer` ends it as `no-answer`.
    let missed = "vapi-missed-1";
    let bodies: Vec<Vec<u8>> = vapi::no_answer()
        .iter()
        .map(|b| {
            let mut value: Value = serde_json::from_slice(b).unwrap();
            vapi::as_call(&mut value, missed, Some("+14155550163"));
            serde_json::to_vec(&value).unwrap()
        })
        .collect();
    let (_, call) = in_any_order(&app, "vapi", missed, &bodies, "no-answer").await;
    assert_missed(&call, "no-answer");
    assert_eq!(call["phone_number"], "+14155550163");
    assert_eq!(call["hangup_reason"], "customer-did-not-answer");
    assert_eq!(call["ringing_started_at"], "2025-10-08T09:15:01Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_calls_normalize_per_the_contract_in_any_order() {
    use calltrail_testkit::fixtures::elevenlabs;
    let app = spawn_app_with(with_providers).await;
    let id = elevenlabs::CONVERSATION_ID;
    let (tenant, call) =
        in_any_order(&app, "elevenlabs", id, &elevenlabs::answered(), "completed").await;

    assert_eq!(call["execution_id"], id, "data.conversation_id");
    assert_eq!(call["agent_id"], elevenlabs::AGENT_ID, "data.agent_id");
    assert_eq!(
        call["phone_number"], "+14155550132",
        "phone_call.external_number"
    );
    assert_eq!(call["lead_type"], "outbound", "phone_call.direction");
    assert_eq!(
        call["call_lifecycle_status"], "completed",
        "post_call_transcription"
    );
    assert_eq!(call["status"], "completed");
    assert_eq!(call["duration_seconds"], 27, "metadata.call_duration_secs");
    assert_eq!(call["duration_minutes"], 1);
    assert_eq!(call["credits_used"], 1, "charged at the transcription");
    assert_eq!(
        call["hangup_reason"], "Call ended by remote party",
        "metadata.termination_reason"
    );
    assert!(call["recording_url"].is_null());
    assert_eq!(
        call["completed_at"], "2025-10-08T09:15:45Z",
        "event_timestamp"
    );
    assert_eq!(
        call["created_at"], "2025-10-08T09:15:08Z",
        "metadata.start_time_unix_secs"
    );
    assert_eq!(timeline(&call), ["post_call_transcription"]);
    let content = transcript(&app, &tenant, id).await;
    let content = content.as_str().unwrap();
    assert!(
        content.starts_with(
            "agent: Hi, this is Maya from Brightline CRM. Am I speaking with Rohan?\nuser: Yes, that's me.\n"
        ),
        "transcript[] as `role: message` lines: {content}"
    );
    assert_eq!(content.lines().count(), 6);

    // An initiation failure that says busy ends the call busy, with its phone number.
    let missed = "conv_missed_busy_1";
    let (_, call) = in_any_order(
        &app,
        "elevenlabs",
        missed,
        &[elevenlabs::initiation_failure(missed, Some("busy"))],
        "busy",
    )
    .await;
    assert_missed(&call, "busy");
    assert_eq!(call["phone_number"], "+14155550163");
    assert_eq!(timeline(&call), ["call_initiation_failure"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_calls_normalize_per_the_contract_in_any_order() {
    use calltrail_testkit::fixtures::twilio;
    let app = spawn_app_with(with_providers).await;
    let sid = twilio::CALL_SID;
    let (tenant, call) = in_any_order(&app, "twilio", sid, &twilio::answered(), "completed").await;

    assert_eq!(call["execution_id"], sid, "CallSid");
    assert_eq!(
        call["phone_number"], "+14155550132",
        "outbound-api: phone `To`"
    );
    assert_eq!(
        call["agent_id"],
        twilio::BUSINESS_NUMBER,
        "outbound-api: agent `From`"
    );
    assert_eq!(call["lead_type"], "outbound");
    assert_eq!(call["call_lifecycle_status"], "completed");
    assert_eq!(call["status"], "completed");
    assert_eq!(call["duration_seconds"], 29, "CallDuration");
    assert_eq!(call["duration_minutes"], 1);
    assert_eq!(call["credits_used"], 1);
    assert_eq!(call["hangup_provider_code"], 200, "SipResponseCode");
    assert_eq!(
        call["recording_url"],
        "https://api.twilio.com/2010-04-01/Accounts/AC3f9e2d7c1b5a4e8f0d6c2b9a7e1f4d3c/Recordings/RE9d2c7a4e1f6b3d8a0c5e2f7b4a9d1c6e",
        "RecordingUrl"
    );
    // Event times are `Timestamp` (RFC 2822).
    assert_eq!(call["ringing_started_at"], "2025-10-08T09:15:02Z");
    assert_eq!(call["call_answered_at"], "2025-10-08T09:15:08Z");
    assert_eq!(call["completed_at"], "2025-10-08T09:15:37Z");
    assert_eq!(
        call["created_at"], "2025-10-08T09:14:59Z",
        "the first event's time"
    );
    assert_eq!(
        timeline(&call),
        ["queued", "ringing", "in-progress", "completed"],
        "CallStatus as sent (queued reads as initiated)"
    );
    let (status, _) = app
        .get(&tenant, &format!("/v1/calls/{sid}/transcript"))
        .await;
    assert_eq!(status, 404, "Twilio's callbacks carry no transcript");

    // Busy: SIP 486, nothing charged.
    let busy = "CAbusy0000000000000000000000000001";
    let bodies: Vec<Vec<u8>> = twilio::busy()
        .iter()
        .map(|b| twilio::as_call(b, busy, None))
        .collect();
    let (_, call) = in_any_order(&app, "twilio", busy, &bodies, "busy").await;
    assert_missed(&call, "busy");
    assert_eq!(call["hangup_provider_code"], 486);
    assert_eq!(timeline(&call), ["initiated", "busy"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_business_number_registered_with_add_agent_is_its_tenants_alone() {
    use calltrail_testkit::fixtures::twilio;
    let app = spawn_app_with(with_providers).await;
    let owner = signing_tenant(&app, "twilio").await;
    app.store
        .tenancy()
        .add_agent(owner.user_id, "twilio", twilio::BUSINESS_NUMBER, None)
        .await
        .unwrap();
    let ringing = calltrail_testkit::fixtures::read("twilio/01-ringing.form");
    let (status, answer) = post_signed(&app, "twilio", &owner, &ringing).await;
    assert_eq!(status, 202, "{answer}");

    let other = signing_tenant(&app, "twilio").await;
    let (status, answer) = post_signed(&app, "twilio", &other, &ringing).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("agent_of_another_tenant")),
        "{answer}"
    );
    assert_eq!(
        app.sql_count("SELECT count(*) FROM rejected_webhooks WHERE provider = 'twilio' AND status_code = 403")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retell_calls_normalize_per_the_contract_in_any_order() {
    use calltrail_testkit::fixtures::retell;
    let app = spawn_app_with(with_providers).await;
    let id = retell::ANSWERED_ID;
    let (tenant, call) = in_any_order(&app, "retell", id, &retell::answered(), "completed").await;

    assert_eq!(call["execution_id"], id, "call.call_id");
    assert_eq!(call["agent_id"], retell::AGENT_ID);
    assert_eq!(call["phone_number"], "+14155550132", "outbound: to_number");
    assert_eq!(call["lead_type"], "outbound");
    assert_eq!(call["call_lifecycle_status"], "completed", "call_analyzed");
    assert_eq!(call["status"], "completed");
    assert_eq!(
        call["duration_seconds"], 29,
        "ceil(duration_ms 28999 / 1000)"
    );
    assert_eq!(call["duration_minutes"], 1);
    assert_eq!(call["credits_used"], 1);
    assert_eq!(call["hangup_reason"], "user_hangup", "disconnection_reason");
    assert_eq!(
        call["recording_url"],
        "https://dxc03zgurdly9.cloudfront.example/Jx4b8KzQ2mW7rTn5vYc3Lp9dHs6fGa1e/recording.wav"
    );
    assert_eq!(
        call["call_answered_at"], "2025-10-08T09:15:08.402Z",
        "start_timestamp"
    );
    assert_eq!(
        call["call_disconnected_at"], "2025-10-08T09:15:37.401Z",
        "end_timestamp"
    );
    assert_eq!(
        call["completed_at"], "2025-10-08T09:15:37.401Z",
        "end_timestamp"
    );
    assert_eq!(call["created_at"], "2025-10-08T09:15:08.402Z");
    let mut types = timeline(&call);
    types.sort_unstable();
    assert_eq!(types, ["call_analyzed", "call_ended", "call_started"]);
    let raw = calltrail_testkit::fixtures::json("retell/answered/02-call_ended.json");
    assert_eq!(
        transcript(&app, &tenant, id).await,
        raw["call"]["transcript"]
    );

    // Never answered: `dial_no_answer`, and the analysis after it never completes the call.
    let missed = retell::NO_ANSWER_ID;
    let (_, call) = in_any_order(&app, "retell", missed, &retell::no_answer(), "no-answer").await;
    assert_missed(&call, "no-answer");
    assert_eq!(call["phone_number"], "+14155550141");
    assert_eq!(call["hangup_reason"], "dial_no_answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_after_a_mixed_provider_run_reproduces_every_read_table() {
    use calltrail_testkit::fixtures::{elevenlabs, retell, twilio, vapi};
    let mut app = spawn_app_with(with_providers).await;
    let tenant = app.create_tenant().await;
    for provider in ["vapi", "elevenlabs", "twilio", "retell"] {
        set_secret(
            &app,
            &tenant,
            provider,
            &secret_of(provider),
            Duration::ZERO,
        )
        .await;
    }
    for scenario in ["bolna/success", "bolna/no-answer", "bolna/busy"] {
        for body in fixtures::scenario(scenario) {
            let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &body).await;
            assert_eq!(status, 202, "{answer}");
        }
    }
    let vapi_missed: Vec<Vec<u8>> = vapi::no_answer()
        .iter()
        .map(|b| {
            let mut value: Value = serde_json::from_slice(b).unwrap();
            vapi::as_call(&mut value, "vapi-missed-2", Some("+14155550163"));
            serde_json::to_vec(&value).unwrap()
        })
        .collect();
    let twilio_busy: Vec<Vec<u8>> = twilio::busy()
        .iter()
        .map(|b| twilio::as_call(b, "CAbusy0000000000000000000000000002", None))
        .collect();
    let calls: [(&str, Vec<Vec<u8>>); 8] = [
        ("vapi", vapi::answered()),
        ("vapi", vapi_missed),
        ("elevenlabs", elevenlabs::answered()),
        (
            "elevenlabs",
            vec![elevenlabs::initiation_failure("conv_missed_2", None)],
        ),
        ("twilio", twilio::answered()),
        ("twilio", twilio_busy),
        ("retell", retell::answered()),
        ("retell", retell::no_answer()),
    ];
    for (provider, bodies) in &calls {
        deliver(&app, provider, &tenant, bodies).await;
    }
    app.wait_until_projected().await;
    let (_, listed) = app.get(&tenant, "/v1/calls?limit=100").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 11, "{listed}");
    app.stop().await;
    let compared =
        assert_read_tables_equal_replay(app.db.url(), "after a run of every provider").await;
    assert_eq!(compared, 11);
}

/// A call that ends unanswered: provider, call id, webhooks, lifecycle status, status.
type Ending = (
    &'static str,
    &'static str,
    Vec<Vec<u8>>,
    &'static str,
    &'static str,
);

/// Re-addresses JSON bodies to the call `id`.
fn as_json_call(
    bodies: &[Vec<u8>],
    id: &str,
    as_call: fn(&mut Value, &str, Option<&str>),
) -> Vec<Vec<u8>> {
    bodies
        .iter()
        .map(|b| {
            let mut value: Value = serde_json::from_slice(b).unwrap();
            as_call(&mut value, id, None);
            serde_json::to_vec(&value).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_providers_missed_busy_failed_and_cancelled_endings() {
    use calltrail_testkit::fixtures::{elevenlabs, retell, twilio, vapi};
    let app = spawn_app_with(with_providers).await;
    let tenant = app.create_tenant().await;
    for provider in ["vapi", "elevenlabs", "twilio", "retell"] {
        set_secret(
            &app,
            &tenant,
            provider,
            &secret_of(provider),
            Duration::ZERO,
        )
        .await;
    }
    let vapi_ending = |id: &str, reason: &str| {
        as_json_call(
            &[
                vapi::status_update("queued", 1_759_914_899_000, None),
                vapi::status_update("ended", 1_759_914_903_000, Some(reason)),
                vapi::unanswered_report(reason),
            ],
            id,
            vapi::as_call,
        )
    };
    let twilio_ending = |sid: &str, status: &str, code: &str| {
        vec![
            twilio::callback(&[("CallSid", sid), ("CallStatus", "initiated")]),
            twilio::callback(&[
                ("CallSid", sid),
                ("CallStatus", status),
                ("CallDuration", "0"),
                ("SipResponseCode", code),
            ]),
        ]
    };
    let retell_ending = |id: &str, reason: &str| -> Vec<Vec<u8>> {
        retell::no_answer()
            .iter()
            .map(|b| {
                let mut value: Value = serde_json::from_slice(b).unwrap();
                retell::as_call(&mut value, id, None);
                value["call"]["disconnection_reason"] = Value::from(reason);
                serde_json::to_vec(&value).unwrap()
            })
            .collect()
    };
    let endings: Vec<Ending> = vec![
        (
            "vapi",
            "vapi-busy",
            vapi_ending("vapi-busy", "customer-busy"),
            "busy",
            "failed",
        ),
        (
            "vapi",
            "vapi-failed",
            vapi_ending("vapi-failed", "twilio-failed-to-connect-call"),
            "failed",
            "failed",
        ),
        (
            "elevenlabs",
            "conv-no-answer",
            vec![elevenlabs::initiation_failure(
                "conv-no-answer",
                Some("no_answer"),
            )],
            "no-answer",
            "failed",
        ),
        (
            "elevenlabs",
            "conv-failed",
            vec![elevenlabs::initiation_failure(
                "conv-failed",
                Some("sip 503"),
            )],
            "failed",
            "failed",
        ),
        (
            "twilio",
            "CA-no-answer",
            twilio_ending("CA-no-answer", "no-answer", "487"),
            "no-answer",
            "failed",
        ),
        (
            "twilio",
            "CA-failed",
            twilio_ending("CA-failed", "failed", "503"),
            "failed",
            "failed",
        ),
        (
            "twilio",
            "CA-canceled",
            twilio_ending("CA-canceled", "canceled", "487"),
            "canceled",
            "cancelled",
        ),
        (
            "retell",
            "retell-busy",
            retell_ending("retell-busy", "dial_busy"),
            "busy",
            "failed",
        ),
        (
            "retell",
            "retell-failed",
            retell_ending("retell-failed", "dial_failed"),
            "failed",
            "failed",
        ),
    ];
    for (provider, _, bodies, _, _) in &endings {
        deliver(&app, provider, &tenant, bodies).await;
    }
    app.wait_until_projected().await;
    for (provider, id, _, lifecycle, status) in &endings {
        let call = app.call(&tenant, id).await;
        let what = format!("{provider} {id}: {call}");
        assert_eq!(call["call_lifecycle_status"], *lifecycle, "{what}");
        assert_eq!(call["status"], *status, "{what}");
        assert_eq!(call["credits_used"], 0, "{what}");
        assert!(call["call_answered_at"].is_null(), "{what}");
        assert!(call["completed_at"].is_null(), "{what}");
    }
    let (_, credits) = app.get(&tenant, "/v1/credits").await;
    assert_eq!(credits["balance"], 0, "nothing charged: {credits}");
}
