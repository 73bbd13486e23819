//! Vapi: the credential checks (shared secret and HMAC), and each normalization rule of
//! CONTRACT §5 on the fixtures and variants of them.

use calltrail_core::providers::SignatureError;
use calltrail_core::{fold, CallStatus, LeadType, LifecycleStatus, PayloadError, Provider};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use calltrail_fixtures as fixtures;

use crate::support::{
    at_millis, hmac_sha256_hex, parse_event, parse_ignored, received_at, verify, Lifecycles,
};

const VAPI: Provider = Provider::Vapi;
/// The made-up secret of fixtures/vapi/README.md.
const SECRET: &str = "vapi_fixture_3c9e1a7f5b2d4e6081a3c5e7f9b1d2e4";
const CALL_ID: &str = "6f2b9c1e-4d7a-4e83-b05f-9a1c3d8e2f47";

/// The signed cases of fixtures/vapi/README.md: file, `x-timestamp`, `x-signature`.
const SIGNED: [(&str, &str, &str); 2] = [
    (
        "vapi/status-update.json",
        "1759914908512",
        "555ab5c53f9d5aa643e2c732efa153bab1767790c0679a6d522a025ea1f1b987",
    ),
    (
        "vapi/end-of-call-report.json",
        "1759914941977",
        "5e5ebf369e8768de37255f2e083ebf0678508b7f2cf2ad5d7a7765bac26581af",
    ),
];

fn hmac_headers<'a>(timestamp: &'a str, signature: &'a str) -> [(&'a str, &'a str); 2] {
    [("x-timestamp", timestamp), ("X-Signature", signature)]
}

fn signed_now(timestamp: &str) -> DateTime<Utc> {
    at_millis(timestamp.parse().unwrap())
}

#[test]
fn the_fixture_hmac_signatures_verify_with_the_clock_injected() {
    for (file, timestamp, signature) in SIGNED {
        let body = fixtures::read(file);
        let now = signed_now(timestamp);
        let headers = hmac_headers(timestamp, signature);
        assert_eq!(
            verify(VAPI, &headers, &[SECRET], None, now, &body),
            Ok(()),
            "{file}"
        );
        // Rotation: the fixture secret is the older of two valid ones.
        assert_eq!(
            verify(
                VAPI,
                &headers,
                &["vapi_new_secret", SECRET],
                None,
                now,
                &body
            ),
            Ok(())
        );
        assert_eq!(
            verify(VAPI, &headers, &["vapi_new_secret"], None, now, &body),
            Err(SignatureError::Mismatch)
        );
    }
}

#[test]
fn hmac_refusals_name_the_problem() {
    let (file, timestamp, signature) = SIGNED[0];
    let body = fixtures::read(file);
    let now = signed_now(timestamp);
    let check = |headers: &[(&str, &str)], body: &[u8], now| {
        verify(VAPI, headers, &[SECRET], None, now, body)
    };

    let mut tampered = body.clone();
    tampered[20] ^= 1;
    assert_eq!(
        check(&hmac_headers(timestamp, signature), &tampered, now),
        Err(SignatureError::Mismatch)
    );
    let mut truncated = body.clone();
    truncated.pop();
    assert_eq!(
        check(&hmac_headers(timestamp, signature), &truncated, now),
        Err(SignatureError::Mismatch)
    );
    // The timestamp is signed: another one with the same signature does not verify.
    assert_eq!(
        check(&hmac_headers("1759914908513", signature), &body, now),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(&[("x-signature", signature)], &body, now),
        Err(SignatureError::Missing("x-timestamp"))
    );
    for bad in ["", "soon", "-1759914908512", "1759914908.512"] {
        assert!(
            matches!(
                check(&hmac_headers(bad, signature), &body, now),
                Err(SignatureError::Malformed {
                    header: "x-timestamp",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    for bad in ["", "zz", &signature[..62], &format!("{signature}00")] {
        assert!(
            matches!(
                check(&hmac_headers(timestamp, bad), &body, now),
                Err(SignatureError::Malformed {
                    header: "x-signature",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn the_hmac_window_is_five_minutes_each_way_in_ms_or_s() {
    let (file, timestamp, signature) = SIGNED[0];
    let body = fixtures::read(file);
    let signed = signed_now(timestamp);
    let headers = hmac_headers(timestamp, signature);
    let minutes = chrono::Duration::minutes;
    let check = |now| verify(VAPI, &headers, &[SECRET], None, now, &body);
    assert_eq!(check(signed + minutes(5)), Ok(()));
    assert_eq!(check(signed - minutes(5)), Ok(()));
    assert!(matches!(
        check(signed + minutes(5) + chrono::Duration::milliseconds(1)),
        Err(SignatureError::Expired {
            seconds: 300,
            tolerance: 300
        })
    ));
    assert!(matches!(
        check(signed - minutes(6)),
        Err(SignatureError::Expired { seconds: -360, .. })
    ));

    // A timestamp in seconds is signed as sent.
    let seconds = "1759914908";
    let signature = hmac_sha256_hex(SECRET, &[seconds.as_bytes(), b".", &body]);
    let now = at_millis(1_759_914_908_000);
    let headers = hmac_headers(seconds, &signature);
    assert_eq!(verify(VAPI, &headers, &[SECRET], None, now, &body), Ok(()));
    assert!(matches!(
        verify(VAPI, &headers, &[SECRET], None, now + minutes(6), &body),
        Err(SignatureError::Expired { .. })
    ));
}

#[test]
fn the_shared_secret_is_accepted_in_either_header() {
    let body = fixtures::read("vapi/status-update.json");
    let now = received_at();
    let bearer = format!("Bearer {SECRET}");
    let lower = format!("bearer {SECRET}");
    for headers in [
        vec![("X-Vapi-Secret", SECRET)],
        vec![("authorization", bearer.as_str())],
        vec![("Authorization", lower.as_str())],
        vec![
            ("x-vapi-secret", "wrong"),
            ("Authorization", bearer.as_str()),
        ],
    ] {
        assert_eq!(
            verify(VAPI, &headers, &[SECRET], None, now, &body),
            Ok(()),
            "{headers:?}"
        );
        assert_eq!(
            verify(VAPI, &headers, &["rotated", SECRET], None, now, &body),
            Ok(())
        );
    }
}

#[test]
fn shared_secret_refusals_name_the_problem() {
    let body = fixtures::read("vapi/status-update.json");
    let now = received_at();
    let check = |headers: &[(&str, &str)], secrets: &[&str]| {
        verify(VAPI, headers, secrets, None, now, &body)
    };
    assert_eq!(
        check(&[("X-Vapi-Secret", SECRET)], &[]),
        Err(SignatureError::NotConfigured(Provider::Vapi))
    );
    assert_eq!(
        check(&[], &[SECRET]),
        Err(SignatureError::Missing("X-Vapi-Secret"))
    );
    assert_eq!(
        check(
            &[(
                "X-Vapi-Secret",
                "vapi_fixture_3c9e1a7f5b2d4e6081a3c5e7f9b1d2e"
            )],
            &[SECRET]
        ),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(&[("X-Vapi-Secret", "")], &[SECRET]),
        Err(SignatureError::Mismatch)
    );
    let other_tenant = "vapi_secret_of_another_tenant";
    assert_eq!(
        check(&[("X-Vapi-Secret", other_tenant)], &[SECRET]),
        Err(SignatureError::Mismatch)
    );
    let basic = format!("Basic {SECRET}");
    assert!(matches!(
        check(&[("Authorization", basic.as_str())], &[SECRET]),
        Err(SignatureError::Malformed {
            header: "Authorization",
            ..
        })
    ));
    assert!(matches!(
        check(&[("Authorization", "Bearer ")], &[SECRET]),
        Err(SignatureError::Malformed { .. })
    ));
}

#[test]
fn a_status_update_normalizes_per_the_contract() {
    let parsed = parse_event(VAPI, &fixtures::read("vapi/status-update.json"));
    assert_eq!(parsed.event_type, "in-progress");
    assert_eq!(
        parsed.payload.as_bytes(),
        fixtures::read("vapi/status-update.json"),
        "the body is what the log keeps"
    );
    let e = parsed.event;
    assert_eq!(e.provider, Provider::Vapi);
    assert_eq!(e.execution_id, CALL_ID);
    assert_eq!(e.status, LifecycleStatus::InProgress);
    assert_eq!(
        e.occurred_at,
        at_millis(1_759_914_908_460),
        "message.timestamp, ms"
    );
    assert_eq!(
        e.call_created_at,
        Some("2025-10-08T09:14:58.301Z".parse().unwrap())
    );
    assert_eq!(
        e.agent_id.as_deref(),
        Some("8d4c2a7e-93f1-4b6d-a0e5-17c9b2f84e3a")
    );
    assert_eq!(
        e.phone_number.as_ref().map(|p| p.as_str()),
        Some("+14155550132")
    );
    assert_eq!(e.lead_type, Some(LeadType::Outbound));
    assert_eq!(e.contact_name.as_deref(), Some("Rohan Mehta"));
    assert_eq!(e.conversation_seconds, None);
    assert_eq!(e.transcript, None);
    assert_eq!(e.recording_url, None);
}

#[test]
fn an_end_of_call_report_normalizes_per_the_contract() {
    let raw = fixtures::json("vapi/end-of-call-report.json");
    let parsed = parse_event(VAPI, &fixtures::read("vapi/end-of-call-report.json"));
    assert_eq!(parsed.event_type, "end-of-call-report");
    let e = parsed.event;
    assert_eq!(e.execution_id, CALL_ID);
    assert_eq!(e.status, LifecycleStatus::Completed);
    assert_eq!(e.occurred_at, at_millis(1_759_914_941_920));
    assert_eq!(e.conversation_seconds, Some(28.999), "endedAt − startedAt");
    assert_eq!(
        e.transcript.as_deref(),
        raw["message"]["artifact"]["transcript"].as_str()
    );
    assert_eq!(
        e.recording_url.as_deref(),
        Some("https://storage.vapi.ai/6f2b9c1e-4d7a-4e83-b05f-9a1c3d8e2f47-1759914936120-mono.wav")
    );
    assert_eq!(e.hangup_reason.as_deref(), Some("customer-ended-call"));
    assert_eq!(
        e.phone_number.as_ref().map(|p| p.as_str()),
        Some("+14155550132")
    );
    assert_eq!(
        e.agent_id.as_deref(),
        Some("8d4c2a7e-93f1-4b6d-a0e5-17c9b2f84e3a")
    );
    assert_eq!(e.lead_type, Some(LeadType::Outbound));
}

fn report_with(edit: impl FnOnce(&mut Value)) -> calltrail_core::CallEvent {
    let mut raw = fixtures::json("vapi/end-of-call-report.json");
    edit(&mut raw["message"]);
    parse_event(VAPI, raw.to_string().as_bytes()).event
}

#[test]
fn the_fallbacks_apply_in_order() {
    let e = report_with(|m| {
        m.as_object_mut().unwrap().remove("endedAt");
        m["artifact"]["transcript"] = Value::Null;
        m["transcript"] = json!("AI: legacy transcript\n");
        m["artifact"]
            .as_object_mut()
            .unwrap()
            .remove("recordingUrl");
        m["call"].as_object_mut().unwrap().remove("customer");
        m["customer"]["number"] = json!("+1 415 555 0199");
        m["call"]["type"] = json!("inboundPhoneCall");
    });
    assert_eq!(e.conversation_seconds, Some(28.999), "durationSeconds");
    assert_eq!(e.transcript.as_deref(), Some("AI: legacy transcript\n"));
    assert_eq!(
        e.recording_url.as_deref(),
        Some("https://storage.vapi.ai/6f2b9c1e-4d7a-4e83-b05f-9a1c3d8e2f47-1759914936120-mono.wav"),
        "artifact.recording.mono.combinedUrl"
    );
    assert_eq!(
        e.phone_number.as_ref().map(|p| p.as_str()),
        Some("+14155550199")
    );
    assert_eq!(e.lead_type, Some(LeadType::Inbound));

    let e = report_with(|m| {
        m["artifact"] = json!({});
        m["recordingUrl"] = json!("https://storage.vapi.ai/legacy.wav");
        m.as_object_mut().unwrap().remove("startedAt");
        m.as_object_mut().unwrap().remove("durationSeconds");
        m["call"]["type"] = json!("webCall");
    });
    assert_eq!(
        e.recording_url.as_deref(),
        Some("https://storage.vapi.ai/legacy.wav")
    );
    assert_eq!(e.conversation_seconds, None);
    assert_eq!(e.transcript, None);
    assert_eq!(e.lead_type, None, "a web call has no direction");
}

#[test]
fn ended_reasons_decide_the_ending() {
    for (reason, status) in [
        ("customer-ended-call", LifecycleStatus::Completed),
        ("assistant-ended-call", LifecycleStatus::Completed),
        ("voicemail", LifecycleStatus::Completed),
        ("customer-did-not-answer", LifecycleStatus::NoAnswer),
        ("customer-busy", LifecycleStatus::Busy),
        ("twilio-failed-to-connect-call", LifecycleStatus::Failed),
        ("pipeline-error-openai-llm-failed", LifecycleStatus::Failed),
        (
            "call.start.error-subscription-frozen",
            LifecycleStatus::Failed,
        ),
    ] {
        let e = report_with(|m| m["endedReason"] = json!(reason));
        assert_eq!(e.status, status, "{reason}");
        assert_eq!(e.hangup_reason.as_deref(), Some(reason));
    }
    let e = report_with(|m| {
        m.as_object_mut().unwrap().remove("endedReason");
    });
    assert_eq!(e.status, LifecycleStatus::Completed);
}

/// A status update of the fixture call with another status and time (`ended` ones say the
/// customer did not answer).
fn status_update(status: &str, timestamp_ms: i64) -> Vec<u8> {
    status_update_ending(status, timestamp_ms, "customer-did-not-answer")
}

fn status_update_ending(status: &str, timestamp_ms: i64, ended_reason: &str) -> Vec<u8> {
    let mut raw = fixtures::json("vapi/status-update.json");
    raw["message"]["status"] = json!(status);
    raw["message"]["timestamp"] = json!(timestamp_ms);
    if status == "ended" {
        raw["message"]["endedReason"] = json!(ended_reason);
    }
    raw.to_string().into_bytes()
}

/// A report of the fixture call that ends it with `ended_reason` after no talk time.
fn unanswered_report(ended_reason: &str) -> Vec<u8> {
    let mut raw = fixtures::json("vapi/end-of-call-report.json");
    let m = &mut raw["message"];
    m["endedReason"] = json!(ended_reason);
    m["durationSeconds"] = json!(0);
    m["endedAt"] = m["startedAt"].clone();
    m["artifact"] = json!({});
    raw.to_string().into_bytes()
}

/// Whole calls, each message in delivery order: answered, no answer, busy, failed.
pub fn lifecycles() -> Lifecycles {
    vec![
        (
            "answered",
            vec![
                status_update("queued", 1_759_914_899_000),
                status_update("ringing", 1_759_914_901_000),
                fixtures::read("vapi/status-update.json"),
                status_update_ending("ended", 1_759_914_937_500, "customer-ended-call"),
                fixtures::read("vapi/end-of-call-report.json"),
            ],
        ),
        (
            "no-answer",
            vec![
                status_update("queued", 1_759_914_899_000),
                status_update("ringing", 1_759_914_901_000),
                status_update("ended", 1_759_914_931_000),
                unanswered_report("customer-did-not-answer"),
            ],
        ),
        (
            "busy",
            vec![
                status_update("queued", 1_759_914_899_000),
                status_update_ending("ended", 1_759_914_903_000, "customer-busy"),
                unanswered_report("customer-busy"),
            ],
        ),
        (
            "failed",
            vec![
                status_update("queued", 1_759_914_899_000),
                status_update_ending("ended", 1_759_914_900_000, "twilio-failed-to-connect-call"),
                unanswered_report("twilio-failed-to-connect-call"),
            ],
        ),
        (
            "voicemail",
            vec![
                status_update("ringing", 1_759_914_901_000),
                status_update_ending("ended", 1_759_914_937_500, "voicemail"),
                report_ending("voicemail"),
            ],
        ),
        (
            "forwarded",
            vec![
                fixtures::read("vapi/status-update.json"),
                status_update_ending("ended", 1_759_914_937_500, "assistant-forwarded-call"),
                report_ending("assistant-forwarded-call"),
            ],
        ),
    ]
}

/// The fixture's report (a conversation, cost 0.0473 USD) ended with `ended_reason`.
pub fn report_ending(ended_reason: &str) -> Vec<u8> {
    let mut raw = fixtures::json("vapi/end-of-call-report.json");
    raw["message"]["endedReason"] = json!(ended_reason);
    raw.to_string().into_bytes()
}

#[test]
fn whole_calls_fold_to_their_ending() {
    use calltrail_core::lifecycle::Charge;
    for (name, bodies) in lifecycles() {
        let events: Vec<_> = bodies.iter().map(|b| parse_event(VAPI, b).event).collect();
        let state = fold(&events, 1);
        let (status, call_status) = match name {
            "answered" | "voicemail" | "forwarded" => {
                (LifecycleStatus::Completed, CallStatus::Completed)
            }
            "no-answer" => (LifecycleStatus::NoAnswer, CallStatus::Failed),
            "busy" => (LifecycleStatus::Busy, CallStatus::Failed),
            _ => (LifecycleStatus::Failed, CallStatus::Failed),
        };
        assert_eq!(state.lifecycle_status, Some(status), "{name}");
        assert_eq!(state.status(), call_status, "{name}");
        assert_eq!(
            state.created_at,
            Some("2025-10-08T09:14:58.301Z".parse().unwrap())
        );
        if name == "answered" {
            let charge = Charge {
                duration_seconds: 29,
                duration_minutes: 1,
                credits: 1,
            };
            assert_eq!(state.charge, Some(charge));
            assert_eq!(state.call_answered_at, Some(at_millis(1_759_914_908_460)));
            assert_eq!(
                state.call_disconnected_at,
                Some(at_millis(1_759_914_937_500))
            );
            assert_eq!(state.completed_at, Some(at_millis(1_759_914_941_920)));
            assert!(state
                .transcript
                .as_deref()
                .unwrap()
                .ends_with("Thanks, bye.\n"));
            assert!(state.recording_url.is_some());
        } else if matches!(name, "no-answer" | "busy" | "failed") {
            assert_eq!(state.charge, None, "{name}: a missed call costs nothing");
            assert_eq!(state.completed_at, None, "{name}");
            assert_eq!(state.transcript, None, "{name}");
        }
    }
}

#[test]
fn status_updates_map_and_forwarding_is_timeline_only() {
    for (status, expected) in [
        ("scheduled", LifecycleStatus::Scheduled),
        ("queued", LifecycleStatus::Queued),
        ("ringing", LifecycleStatus::Ringing),
        ("in-progress", LifecycleStatus::InProgress),
        ("ended", LifecycleStatus::CallDisconnected),
        (
            "forwarding",
            LifecycleStatus::Other("forwarding".to_owned()),
        ),
    ] {
        let parsed = parse_event(VAPI, &status_update(status, 1_759_914_930_000));
        assert_eq!(parsed.event_type, status, "the key is the status as sent");
        assert_eq!(parsed.event.status, expected, "{status}");
    }
    let ended = parse_event(VAPI, &status_update("ended", 1_759_914_930_000)).event;
    assert_eq!(
        ended.hangup_reason.as_deref(),
        Some("customer-did-not-answer")
    );
    assert_eq!(
        ended.conversation_seconds, None,
        "only the report carries the duration"
    );

    // A forwarding update after the call was answered moves nothing.
    let answered = parse_event(VAPI, &status_update("in-progress", 1_759_914_908_460)).event;
    let forwarding = parse_event(VAPI, &status_update("forwarding", 1_759_914_920_000)).event;
    let state = fold([&answered, &forwarding], 1);
    assert_eq!(state.lifecycle_status, Some(LifecycleStatus::InProgress));
    assert_eq!(
        state,
        fold([&answered], 1),
        "an event without rank changes nothing here"
    );
}

#[test]
fn other_message_types_are_ignored_with_their_call() {
    for kind in [
        "transcript",
        "speech-update",
        "conversation-update",
        "model-output",
        "hang",
        "tool-calls",
        "user-interrupted",
        "some-type-vapi-adds-later",
    ] {
        let body = json!({"message": {"type": kind, "call": {"id": CALL_ID}, "transcript": "hi"}});
        let ignored = parse_ignored(VAPI, body.to_string().as_bytes());
        assert_eq!(ignored.message_type, kind);
        assert_eq!(ignored.execution_id.as_deref(), Some(CALL_ID));
    }
    let ignored = parse_ignored(VAPI, br#"{"message":{"type":"speech-update"}}"#);
    assert_eq!(ignored.execution_id, None);
}

#[test]
fn refusals_name_the_missing_field() {
    let parse = |body: &[u8]| VAPI.webhooks().parse(body, received_at()).err();
    assert!(matches!(
        parse(b"{\"message\": "),
        Some(PayloadError::MalformedJson(_))
    ));
    assert_eq!(parse(b"[1]"), Some(PayloadError::NotAnObject));
    assert_eq!(
        parse(b"{}"),
        Some(PayloadError::MissingField("message.type"))
    );
    assert_eq!(
        parse(br#"{"message": "status-update"}"#),
        Some(PayloadError::MissingField("message.type"))
    );
    assert_eq!(
        parse(br#"{"message": {"type": "status-update", "call": {"id": "c1"}}}"#),
        Some(PayloadError::MissingField("message.status"))
    );
    assert_eq!(
        parse(br#"{"message": {"type": "status-update", "status": "ringing"}}"#),
        Some(PayloadError::MissingField("message.call.id"))
    );
    assert_eq!(
        parse(br#"{"message": {"type": "end-of-call-report", "call": {"id": " "}}}"#),
        Some(PayloadError::MissingField("message.call.id"))
    );
}

#[test]
fn odd_optional_values_read_as_absent() {
    let e = report_with(|m| {
        m["timestamp"] = json!("not a time");
        m["startedAt"] = json!(17);
        m["durationSeconds"] = json!("29.5");
        m["artifact"] = json!([1, 2]);
        m["call"]["assistantId"] = json!({"id": "x"});
        m["call"]["customer"]["number"] = json!("4155550132");
        m["customer"] = json!(null);
    });
    assert_eq!(
        e.occurred_at,
        received_at(),
        "no usable timestamp: the receive time"
    );
    assert_eq!(e.conversation_seconds, Some(29.5));
    assert_eq!(e.transcript, None);
    assert_eq!(e.agent_id, None);
    assert_eq!(e.phone_number, None, "no default country is assumed");
    // An ISO timestamp is read too.
    let e = report_with(|m| m["timestamp"] = json!("2025-10-08T09:15:41.920Z"));
    assert_eq!(e.occurred_at, at_millis(1_759_914_941_920));
}

#[test]
fn a_campaign_id_in_the_call_metadata_is_the_batch_id() {
    let e = report_with(|m| m["call"]["metadata"] = json!({"campaign_id": "spring-2025", "x": 1}));
    assert_eq!(e.batch_id.as_deref(), Some("spring-2025"));
    let e = report_with(|m| m["call"]["metadata"] = json!({"campaign_id": 42}));
    assert_eq!(e.batch_id.as_deref(), Some("42"));
    let e = report_with(|m| m["call"]["metadata"] = json!("not an object"));
    assert_eq!(e.batch_id, None);
}
