//! Retell: the `x-retell-signature` check (the SDK's published vector, the fixtures' signatures,
//! the window), and each normalization rule of CONTRACT §5, `dial_*` endings included.

use calltrail_core::providers::SignatureError;
use calltrail_core::{fold, CallStatus, LeadType, LifecycleStatus, PayloadError, Provider};
use calltrail_fixtures as fixtures;
use chrono::Duration;
use serde_json::{json, Value};

use crate::support::{
    at_millis, hmac_sha256_hex, parse_event, parse_ignored, received_at, verify, Lifecycles,
};

const RETELL: Provider = Provider::Retell;
/// fixtures/retell/README.md: the made-up API key and each file's signature.
const KEY: &str = "key_fixture_9b2e7d4c1a6f3e8b5d0c2a7f4e1b9d6c";
const SIGNED: [(&str, i64, &str); 5] = [
    (
        "retell/answered/01-call_started.json",
        1_759_914_908_655,
        "2d5f43678a048b4958c9cd671822d033d82e9d00aa4116fc7948a12de5d225cf",
    ),
    (
        "retell/answered/02-call_ended.json",
        1_759_914_937_812,
        "274db73dafa22f8286c5fec77c36aa178460320b0cb1121ea974191d6babc60f",
    ),
    (
        "retell/answered/03-call_analyzed.json",
        1_759_914_943_208,
        "5960fa6fc4afe17717d34e6d31f7d9e502fd625891ac63ca7470f04312ccf0f4",
    ),
    (
        "retell/no-answer/01-call_ended.json",
        1_759_917_778_409,
        "efb3557695f90b63e73d1a749ef35c0200e7e631acf69910843c23d9ef48718c",
    ),
    (
        "retell/no-answer/02-call_analyzed.json",
        1_759_917_781_952,
        "46c20a5c62c4312a2c13ddb96fa6312524ef69d7865ba994a45d1b872abcdb18",
    ),
];
const CALL_ID: &str = "Jx4b8KzQ2mW7rTn5vYc3Lp9dHs6fGa1e";
const MISSED_ID: &str = "Qm7c2VxR9tLs4nWb8Ke1Hd5gYp3Zf6Ja";

fn check(header: &str, keys: &[&str], now_ms: i64, body: &[u8]) -> Result<(), SignatureError> {
    verify(
        RETELL,
        &[("X-Retell-Signature", header)],
        keys,
        None,
        at_millis(now_ms),
        body,
    )
}

fn header(ms: i64, digest: &str) -> String {
    format!("v={ms},d={digest}")
}

// docs/PROVIDERS.md §5: retell-python-sdk's tests/test_webhook_auth.py.
#[test]
fn the_sdks_published_vector_verifies() {
    let body = br#"{"event":"call_ended"}"#;
    let signature =
        "v=1700000000000,d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e";
    assert_eq!(
        check(signature, &["test-api-key"], 1_700_000_000_000, body),
        Ok(())
    );
    assert_eq!(
        check(
            signature,
            &["test-api-key"],
            1_700_000_000_000,
            br#"{"event":"call_started"}"#
        ),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(signature, &["other-api-key"], 1_700_000_000_000, body),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn the_fixture_signatures_verify_with_the_clock_injected() {
    for (file, ms, digest) in SIGNED {
        let body = fixtures::read(file);
        assert_eq!(
            hmac_sha256_hex(KEY, &[&body, ms.to_string().as_bytes()]),
            digest,
            "{file}"
        );
        assert_eq!(
            check(&header(ms, digest), &[KEY], ms, &body),
            Ok(()),
            "{file}"
        );
        assert_eq!(
            check(&header(ms, digest), &["key_rotated", KEY], ms, &body),
            Ok(())
        );
        assert_eq!(
            check(&header(ms, digest), &["key_rotated"], ms, &body),
            Err(SignatureError::Mismatch)
        );
    }
}

#[test]
fn refusals_name_the_problem() {
    let (file, ms, digest) = SIGNED[1];
    let body = fixtures::read(file);
    let good = header(ms, digest);
    assert_eq!(
        check(&good, &[], ms, &body),
        Err(SignatureError::NotConfigured(Provider::Retell))
    );
    assert_eq!(
        verify(RETELL, &[], &[KEY], None, at_millis(ms), &body),
        Err(SignatureError::Missing("x-retell-signature"))
    );
    let mut tampered = body.clone();
    tampered[40] ^= 1;
    assert_eq!(
        check(&good, &[KEY], ms, &tampered),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(&header(ms + 1, digest), &[KEY], ms, &body),
        Err(SignatureError::Mismatch)
    );
    let other_tenant =
        hmac_sha256_hex("key_of_another_tenant", &[&body, ms.to_string().as_bytes()]);
    assert_eq!(
        check(&header(ms, &other_tenant), &[KEY], ms, &body),
        Err(SignatureError::Mismatch)
    );
    for bad in [
        String::new(),
        format!("d={digest}"),
        format!("v={ms}"),
        format!("v=soon,d={digest}"),
        format!("v={ms},d={}", &digest[..60]),
        format!("v={ms},d=g{}", &digest[1..]),
        digest.to_owned(),
    ] {
        assert!(
            matches!(
                check(&bad, &[KEY], ms, &body),
                Err(SignatureError::Malformed {
                    header: "x-retell-signature",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        check(&format!(" d={digest} , v={ms} "), &[KEY], ms, &body),
        Ok(())
    );
}

#[test]
fn the_window_is_five_minutes_each_way() {
    let (file, ms, digest) = SIGNED[0];
    let body = fixtures::read(file);
    let good = header(ms, digest);
    let five = Duration::minutes(5).num_milliseconds();
    assert_eq!(check(&good, &[KEY], ms + five, &body), Ok(()));
    assert_eq!(check(&good, &[KEY], ms - five, &body), Ok(()));
    assert_eq!(
        check(&good, &[KEY], ms + five + 1000, &body),
        Err(SignatureError::Expired {
            seconds: 301,
            tolerance: 300
        })
    );
    assert_eq!(
        check(&good, &[KEY], ms - five - 1000, &body),
        Err(SignatureError::Expired {
            seconds: -301,
            tolerance: 300
        })
    );
}

fn event(file: &str) -> calltrail_core::CallEvent {
    parse_event(RETELL, &fixtures::read(file)).event
}

#[test]
fn an_answered_call_normalizes_per_the_contract() {
    let raw = fixtures::json("retell/answered/02-call_ended.json");
    let started = parse_event(
        RETELL,
        &fixtures::read("retell/answered/01-call_started.json"),
    );
    assert_eq!(started.event_type, "call_started");
    assert_eq!(
        started.payload.as_bytes(),
        fixtures::read("retell/answered/01-call_started.json")
    );
    let started = started.event;
    assert_eq!(started.provider, Provider::Retell);
    assert_eq!(started.execution_id, CALL_ID);
    assert_eq!(started.status, LifecycleStatus::InProgress);
    assert_eq!(
        started.occurred_at,
        at_millis(1_759_914_908_402),
        "start_timestamp"
    );
    assert_eq!(started.conversation_seconds, None);
    assert_eq!(started.transcript, None);

    let ended = event("retell/answered/02-call_ended.json");
    assert_eq!(ended.status, LifecycleStatus::CallDisconnected);
    assert_eq!(
        ended.occurred_at,
        at_millis(1_759_914_937_401),
        "end_timestamp"
    );
    assert_eq!(
        ended.conversation_seconds,
        Some(28.999),
        "duration_ms / 1000"
    );
    assert_eq!(
        ended.transcript.as_deref(),
        raw["call"]["transcript"].as_str()
    );
    assert_eq!(
        ended.recording_url.as_deref(),
        raw["call"]["recording_url"].as_str()
    );
    assert_eq!(ended.hangup_reason.as_deref(), Some("user_hangup"));

    let analyzed = event("retell/answered/03-call_analyzed.json");
    assert_eq!(analyzed.status, LifecycleStatus::Completed);
    assert_eq!(analyzed.occurred_at, at_millis(1_759_914_937_401));

    for e in [&started, &ended, &analyzed] {
        assert_eq!(
            e.agent_id.as_deref(),
            Some("agent_5c1e9a7b3d2f4e6a8b0c1d2e3f")
        );
        assert_eq!(
            e.phone_number.as_ref().map(|p| p.as_str()),
            Some("+14155550132"),
            "to_number"
        );
        assert_eq!(e.lead_type, Some(LeadType::Outbound));
        assert_eq!(e.call_created_at, Some(at_millis(1_759_914_908_402)));
    }
}

#[test]
fn an_inbound_call_takes_the_caller_as_the_contact() {
    let mut raw = fixtures::json("retell/answered/01-call_started.json");
    raw["call"]["direction"] = json!("inbound");
    raw["call"]["from_number"] = json!("+14155550199");
    let e = parse_event(RETELL, raw.to_string().as_bytes()).event;
    assert_eq!(e.lead_type, Some(LeadType::Inbound));
    assert_eq!(
        e.phone_number.as_ref().map(|p| p.as_str()),
        Some("+14155550199")
    );
}

fn ended_with(reason: &str, event: &str) -> Vec<u8> {
    let mut raw = fixtures::json("retell/no-answer/01-call_ended.json");
    raw["event"] = json!(event);
    raw["call"]["disconnection_reason"] = json!(reason);
    raw.to_string().into_bytes()
}

#[test]
fn dial_endings_are_missed_calls_and_their_analysis_is_timeline_only() {
    for (reason, status) in [
        ("dial_no_answer", LifecycleStatus::NoAnswer),
        ("dial_busy", LifecycleStatus::Busy),
        ("dial_failed", LifecycleStatus::Failed),
    ] {
        let ended = parse_event(RETELL, &ended_with(reason, "call_ended")).event;
        assert_eq!(ended.status, status, "{reason}");
        assert_eq!(ended.hangup_reason.as_deref(), Some(reason));
        let analyzed = parse_event(RETELL, &ended_with(reason, "call_analyzed"));
        assert_eq!(analyzed.event_type, "call_analyzed");
        assert_eq!(
            analyzed.event.status.rank(),
            None,
            "{reason}: timeline only"
        );
        // Either order: the call stays missed, never completed, and is not charged.
        for log in [[&ended, &analyzed.event], [&analyzed.event, &ended]] {
            let state = fold(log, 1);
            assert_eq!(state.lifecycle_status, Some(status.clone()), "{reason}");
            assert_eq!(state.status(), CallStatus::Failed);
            assert_eq!((state.completed_at, state.charge), (None, None));
        }
    }
    // Any other reason ends an answered call.
    for reason in [
        "agent_hangup",
        "voicemail_reached",
        "max_duration_reached",
        "call_transfer",
    ] {
        let e = parse_event(RETELL, &ended_with(reason, "call_ended")).event;
        assert_eq!(e.status, LifecycleStatus::CallDisconnected, "{reason}");
        let e = parse_event(RETELL, &ended_with(reason, "call_analyzed")).event;
        assert_eq!(e.status, LifecycleStatus::Completed, "{reason}");
    }
}

#[test]
fn transfers_are_timeline_only_and_transcript_updates_are_ignored() {
    for event in [
        "transfer_started",
        "transfer_bridged",
        "transfer_cancelled",
        "transfer_ended",
        "call_rerouted",
    ] {
        let mut raw = fixtures::json("retell/answered/01-call_started.json");
        raw["event"] = json!(event);
        let parsed = parse_event(RETELL, raw.to_string().as_bytes());
        assert_eq!(parsed.event_type, event);
        assert_eq!(
            parsed.event.status,
            LifecycleStatus::Other(event.to_owned())
        );
        assert_eq!(
            parsed.event.occurred_at,
            received_at(),
            "{event} carries no time of its own"
        );
    }
    let mut raw = fixtures::json("retell/answered/01-call_started.json");
    raw["event"] = json!("transcript_updated");
    let ignored = parse_ignored(RETELL, raw.to_string().as_bytes());
    assert_eq!(ignored.message_type, "transcript_updated");
    assert_eq!(ignored.execution_id.as_deref(), Some(CALL_ID));
}

#[test]
fn odd_optional_values_read_as_absent_and_refusals_name_the_field() {
    let mut raw: Value = fixtures::json("retell/answered/02-call_ended.json");
    raw["call"]["end_timestamp"] = json!("later");
    raw["call"]["duration_ms"] = json!("28999");
    raw["call"]["start_timestamp"] = json!(null);
    raw["call"]["to_number"] = json!(true);
    raw["call"]["transcript"] = json!(["not", "text"]);
    let e = parse_event(RETELL, raw.to_string().as_bytes()).event;
    assert_eq!(e.occurred_at, received_at());
    assert_eq!(
        e.conversation_seconds,
        Some(28.999),
        "a number sent as a string"
    );
    assert_eq!(
        (e.call_created_at, e.phone_number, e.transcript),
        (None, None, None)
    );

    let parse = |body: &[u8]| RETELL.webhooks().parse(body, received_at()).err();
    assert!(matches!(
        parse(b"{\"event\":"),
        Some(PayloadError::MalformedJson(_))
    ));
    assert_eq!(parse(b"[]"), Some(PayloadError::NotAnObject));
    assert_eq!(
        parse(br#"{"call":{"call_id":"c"}}"#),
        Some(PayloadError::MissingField("event"))
    );
    assert_eq!(
        parse(br#"{"event":"call_ended"}"#),
        Some(PayloadError::MissingField("call.call_id"))
    );
    assert_eq!(
        parse(br#"{"event":"call_ended","call":{"call_id":""}}"#),
        Some(PayloadError::MissingField("call.call_id"))
    );
}

/// Whole calls, each webhook in delivery order: answered, and missed (`dial_no_answer`).
pub fn lifecycles() -> Lifecycles {
    vec![
        ("answered", fixtures::scenario("retell/answered")),
        ("no-answer", fixtures::scenario("retell/no-answer")),
        (
            "busy",
            vec![
                ended_with("dial_busy", "call_ended"),
                ended_with("dial_busy", "call_analyzed"),
            ],
        ),
        (
            "transferred",
            vec![
                answered_with("call_transfer", "call_ended", false),
                answered_with("call_transfer", "transfer_bridged", false),
                answered_with("call_transfer", "call_analyzed", false),
            ],
        ),
        (
            "voicemail",
            vec![
                answered_with("user_hangup", "call_ended", false),
                answered_with("user_hangup", "call_analyzed", true),
            ],
        ),
    ]
}

/// The answered fixture call's `call_analyzed` as `event`, with `disconnection_reason` and
/// `call_analysis.in_voicemail` replaced.
pub fn answered_with(reason: &str, event: &str, in_voicemail: bool) -> Vec<u8> {
    let mut raw = fixtures::json("retell/answered/03-call_analyzed.json");
    raw["event"] = json!(event);
    raw["call"]["disconnection_reason"] = json!(reason);
    raw["call"]["call_analysis"]["in_voicemail"] = json!(in_voicemail);
    raw.to_string().into_bytes()
}

#[test]
fn whole_calls_fold_to_their_ending() {
    use calltrail_core::lifecycle::Charge;
    let answered = fold(
        &lifecycles()[0]
            .1
            .iter()
            .map(|b| parse_event(RETELL, b).event)
            .collect::<Vec<_>>(),
        1,
    );
    assert_eq!(answered.lifecycle_status, Some(LifecycleStatus::Completed));
    assert_eq!(
        answered.charge,
        Some(Charge {
            duration_seconds: 29,
            duration_minutes: 1,
            credits: 1
        })
    );
    assert_eq!(
        answered.call_answered_at,
        Some(at_millis(1_759_914_908_402))
    );
    assert_eq!(
        answered.call_disconnected_at,
        Some(at_millis(1_759_914_937_401))
    );
    assert_eq!(answered.completed_at, Some(at_millis(1_759_914_937_401)));
    assert_eq!(answered.created_at, Some(at_millis(1_759_914_908_402)));

    let missed: Vec<_> = lifecycles()[1]
        .1
        .iter()
        .map(|b| parse_event(RETELL, b).event)
        .collect();
    assert!(missed.iter().all(|e| e.execution_id == MISSED_ID));
    let missed = fold(&missed, 1);
    assert_eq!(missed.lifecycle_status, Some(LifecycleStatus::NoAnswer));
    assert_eq!(
        missed.phone_number.as_ref().map(|p| p.as_str()),
        Some("+14155550141")
    );
    assert_eq!(
        missed.created_at,
        Some(at_millis(1_759_917_778_127)),
        "no start: the earliest event time"
    );
    assert_eq!(
        (missed.charge, missed.transcript, missed.recording_url),
        (None, None, None)
    );
}

#[test]
fn a_campaign_id_in_the_call_metadata_is_the_batch_id() {
    let mut raw = fixtures::json("retell/answered/02-call_ended.json");
    raw["call"]["metadata"] = serde_json::json!({"campaign_id": "spring-2025"});
    let e = parse_event(RETELL, raw.to_string().as_bytes()).event;
    assert_eq!(e.batch_id.as_deref(), Some("spring-2025"));
    assert_eq!(event("retell/answered/02-call_ended.json").batch_id, None);
}
