//! ElevenLabs: the `ElevenLabs-Signature` check (the fixture's signature, the window, large
//! audio bodies streamed through it), and each normalization rule of CONTRACT §5.

use calltrail_core::providers::SignatureError;
use calltrail_core::{fold, CallStatus, LeadType, LifecycleStatus, PayloadError, Provider};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use calltrail_fixtures as fixtures;

use crate::support::{
    hmac_sha256_hex, parse_event, parse_ignored, received_at, verify, Lifecycles,
};

const ELEVENLABS: Provider = Provider::ElevenLabs;
const FIXTURE: &str = "elevenlabs/post_call_transcription.json";
/// The made-up secret and signature of fixtures/elevenlabs/README.md.
const SECRET: &str = "wsec_fixture_7d1f0c9a2b4e6f8a1c3e5d7f9b0a2c4e";
const SIGNED_AT: i64 = 1_759_914_946;
const HEADER: &str =
    "t=1759914946,v0=2a6515f48c8aa7bd29e5c99e3b78fddb8b4a3a854be61049b787cc2bf5149697";
const CONVERSATION: &str = "conv_3401k6xq5r2wfa7s9dp1e8mz4k";

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

fn check(
    header: &str,
    secrets: &[&str],
    now: DateTime<Utc>,
    body: &[u8],
) -> Result<(), SignatureError> {
    verify(
        ELEVENLABS,
        &[("elevenlabs-signature", header)],
        secrets,
        None,
        now,
        body,
    )
}

/// A signature header for `body` signed at `t` with `secret`.
fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    format!(
        "t={t},v0={}",
        hmac_sha256_hex(secret, &[t.as_bytes(), b".", body])
    )
}

#[test]
fn the_fixture_signature_verifies_with_the_clock_injected() {
    let body = fixtures::read(FIXTURE);
    assert_eq!(
        body.len(),
        6288,
        "the signed bytes, as fixtures/elevenlabs/README.md says"
    );
    assert_eq!(check(HEADER, &[SECRET], at(SIGNED_AT), &body), Ok(()));
    assert_eq!(
        check(HEADER, &["wsec_rotated", SECRET], at(SIGNED_AT), &body),
        Ok(())
    );
    assert_eq!(
        check(HEADER, &["wsec_rotated"], at(SIGNED_AT), &body),
        Err(SignatureError::Mismatch)
    );
    // With today's clock the same header is long expired.
    assert!(matches!(
        check(HEADER, &[SECRET], received_at(), &body),
        Err(SignatureError::Expired {
            tolerance: 1800,
            ..
        })
    ));
}

#[test]
fn refusals_name_the_problem() {
    let body = fixtures::read(FIXTURE);
    let now = at(SIGNED_AT);
    assert_eq!(
        check(HEADER, &[], now, &body),
        Err(SignatureError::NotConfigured(Provider::ElevenLabs))
    );
    assert_eq!(
        verify(ELEVENLABS, &[], &[SECRET], None, now, &body),
        Err(SignatureError::Missing("ElevenLabs-Signature"))
    );
    let mut tampered = body.clone();
    tampered[100] ^= 0x20;
    assert_eq!(
        check(HEADER, &[SECRET], now, &tampered),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(HEADER, &[SECRET], now, &body[..body.len() - 1]),
        Err(SignatureError::Mismatch)
    );
    let other_tenant = sign("wsec_another_tenant", SIGNED_AT, &body);
    assert_eq!(
        check(&other_tenant, &[SECRET], now, &body),
        Err(SignatureError::Mismatch)
    );
    // The timestamp is signed: another `t` with the same `v0` does not verify.
    let moved = HEADER.replace("t=1759914946", "t=1759914947");
    assert_eq!(
        check(&moved, &[SECRET], now, &body),
        Err(SignatureError::Mismatch)
    );
    for bad in [
        "",
        "v0=2a6515f48c8aa7bd29e5c99e3b78fddb8b4a3a854be61049b787cc2bf5149697",
        "t=1759914946",
        "t=soon,v0=2a6515f48c8aa7bd29e5c99e3b78fddb8b4a3a854be61049b787cc2bf5149697",
        "t=1759914946,v0=2a6515f48c8aa7bd",
        "t=1759914946,v0=zz6515f48c8aa7bd29e5c99e3b78fddb8b4a3a854be61049b787cc2bf5149697",
    ] {
        assert!(
            matches!(
                check(bad, &[SECRET], now, &body),
                Err(SignatureError::Malformed {
                    header: "ElevenLabs-Signature",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    // Items in another order, with spaces, and an unknown scheme alongside, still verify.
    let reordered =
        "v1=abc, v0=2a6515f48c8aa7bd29e5c99e3b78fddb8b4a3a854be61049b787cc2bf5149697, t=1759914946";
    assert_eq!(check(reordered, &[SECRET], now, &body), Ok(()));
}

#[test]
fn the_window_is_thirty_minutes_back_and_five_ahead() {
    let body = fixtures::read(FIXTURE);
    let signed = at(SIGNED_AT);
    let ok = |now| check(HEADER, &[SECRET], now, &body);
    assert_eq!(ok(signed + Duration::minutes(30)), Ok(()));
    assert_eq!(
        ok(signed + Duration::minutes(30) + Duration::seconds(1)),
        Err(SignatureError::Expired {
            seconds: 1801,
            tolerance: 1800
        })
    );
    assert_eq!(ok(signed - Duration::minutes(5)), Ok(()));
    assert_eq!(
        ok(signed - Duration::minutes(5) - Duration::seconds(1)),
        Err(SignatureError::Expired {
            seconds: -301,
            tolerance: 1800
        })
    );
}

/// A `post_call_audio` body with `audio_bytes` of base64 audio.
fn audio_body(audio_bytes: usize) -> Vec<u8> {
    let mut body = format!(
        r#"{{"type":"post_call_audio","event_timestamp":{SIGNED_AT},"data":{{"agent_id":"agent_7201k6xq2m9ef3tbr8yvd4c0hn","conversation_id":"{CONVERSATION}","full_audio":""#
    )
    .into_bytes();
    body.extend(std::iter::repeat_n(b'Q', audio_bytes));
    body.extend_from_slice(b"\"}}");
    body
}

#[test]
fn large_audio_is_streamed_through_the_check_and_recognised_from_its_start() {
    let provider = ELEVENLABS.webhooks();
    assert!(provider.streams_large_bodies());
    let body = audio_body(3 << 20); // more than the 2 MiB webhook limit
    let header = sign(SECRET, SIGNED_AT, &body);
    assert_eq!(check(&header, &[SECRET], at(SIGNED_AT), &body), Ok(()));
    let mut cut = body.clone();
    cut.truncate(body.len() - 3);
    assert_eq!(
        check(&header, &[SECRET], at(SIGNED_AT), &cut),
        Err(SignatureError::Mismatch)
    );

    let ignored = provider.ignorable_prefix(&body[..64 << 10]).unwrap();
    assert_eq!(ignored.message_type, "post_call_audio");
    // Whitespace, a BOM, and keys before `type` are fine as long as they are complete.
    let spaced = "\u{feff} { \"event_timestamp\" : 1, \"extra\": {\"a\": [1]}, \"type\" : \"post_call_audio\", \"data\": {\"full_audio\": \"QQ";
    assert!(provider.ignorable_prefix(spaced.as_bytes()).is_some());
    for not_audio in [
        &br#"{"type":"post_call_transcription","data":{"transcript":[{"#[..],
        br#"{"data":{"full_audio":"QQQQQQ"#,
        br#"{"type":"post_call_au"#,
        br#"["post_call_audio"]"#,
        br#"{"data":{"type":"post_call_audio"}"#,
        b"",
    ] {
        assert_eq!(
            provider.ignorable_prefix(not_audio),
            None,
            "{:?}",
            String::from_utf8_lossy(not_audio)
        );
    }
    // A small audio message parses as ignored, with its conversation.
    let ignored = parse_ignored(ELEVENLABS, &audio_body(1000));
    assert_eq!(ignored.message_type, "post_call_audio");
    assert_eq!(ignored.execution_id.as_deref(), Some(CONVERSATION));
}

#[test]
fn a_transcription_normalizes_per_the_contract() {
    let raw = fixtures::json(FIXTURE);
    let parsed = parse_event(ELEVENLABS, &fixtures::read(FIXTURE));
    assert_eq!(parsed.event_type, "post_call_transcription");
    assert_eq!(parsed.payload.as_bytes(), fixtures::read(FIXTURE));
    let e = parsed.event;
    assert_eq!(e.provider, Provider::ElevenLabs);
    assert_eq!(e.execution_id, CONVERSATION);
    assert_eq!(e.status, LifecycleStatus::Completed);
    assert_eq!(e.occurred_at, at(1_759_914_945), "event_timestamp");
    assert_eq!(
        e.call_created_at,
        Some(at(1_759_914_908)),
        "metadata.start_time_unix_secs"
    );
    assert_eq!(e.conversation_seconds, Some(27.0));
    assert_eq!(
        e.agent_id.as_deref(),
        Some("agent_7201k6xq2m9ef3tbr8yvd4c0hn")
    );
    assert_eq!(
        e.phone_number.as_ref().map(|p| p.as_str()),
        Some("+14155550132")
    );
    assert_eq!(e.lead_type, Some(LeadType::Outbound));
    assert_eq!(
        e.hangup_reason.as_deref(),
        Some("Call ended by remote party")
    );
    let expected: String = raw["data"]["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}: {}\n",
                t["role"].as_str().unwrap(),
                t["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(e.transcript.as_deref(), Some(expected.as_str()));
    assert!(expected.starts_with("agent: Hi, this is Maya"));
    assert_eq!(e.recording_url, None);
}

fn transcription_with(edit: impl FnOnce(&mut Value)) -> calltrail_core::CallEvent {
    let mut raw = fixtures::json(FIXTURE);
    edit(&mut raw);
    parse_event(ELEVENLABS, raw.to_string().as_bytes()).event
}

#[test]
fn transcript_turns_without_text_are_left_out_and_odd_values_read_as_absent() {
    let e = transcription_with(|raw| {
        raw["data"]["transcript"] = json!([
            {"role": "agent", "message": "Hello?"},
            {"role": "agent", "message": null, "tool_calls": [{"name": "lookup"}]},
            "not a turn",
            {"role": "user", "message": "  "},
            {"message": "Who is this?"},
        ]);
        raw["event_timestamp"] = json!("yesterday");
        raw["data"]["metadata"]["call_duration_secs"] = json!("31");
        raw["data"]["metadata"]["phone_call"]["direction"] = json!("inbound");
        raw["data"]["metadata"]["phone_call"]["external_number"] = json!(14155550132_u64);
        raw["data"]["metadata"]["start_time_unix_secs"] = json!({});
    });
    assert_eq!(
        e.transcript.as_deref(),
        Some("agent: Hello?\nunknown: Who is this?\n")
    );
    assert_eq!(e.occurred_at, received_at());
    assert_eq!(e.conversation_seconds, Some(31.0));
    assert_eq!(e.lead_type, Some(LeadType::Inbound));
    assert_eq!(
        e.phone_number, None,
        "no `+`: no default country is assumed"
    );
    assert_eq!(e.call_created_at, None);

    let e = transcription_with(|raw| {
        raw["data"]["transcript"] = json!([]);
        raw["data"]["metadata"] = json!(null);
    });
    assert_eq!(e.transcript, None);
    assert_eq!(e.conversation_seconds, None);
    assert_eq!(e.phone_number, None);
}

/// A `call_initiation_failure` of another call, with the given reason.
fn initiation_failure(conversation: &str, reason: Option<&str>) -> Vec<u8> {
    let mut body = json!({
        "type": "call_initiation_failure",
        "event_timestamp": 1_759_918_211,
        "data": {
            "agent_id": "agent_7201k6xq2m9ef3tbr8yvd4c0hn",
            "conversation_id": conversation,
            "metadata": {"phone_call": {
                "direction": "outbound",
                "phone_number_id": "phnum_5101k6wz0c8hf2qa7tm3xj9b6e",
                "agent_number": "+14155550187",
                "external_number": "+14155550163",
                "type": "twilio",
                "call_sid": "CA9e4b2d7f1a6c3e8b0d5f2a9c4e7b1d60"
            }}
        }
    });
    if let Some(reason) = reason {
        body["data"]["failure_reason"] = json!(reason);
    }
    body.to_string().into_bytes()
}

#[test]
fn initiation_failures_end_busy_no_answer_or_failed() {
    for (reason, status) in [
        (Some("busy"), LifecycleStatus::Busy),
        (Some("no-answer"), LifecycleStatus::NoAnswer),
        (Some("no_answer"), LifecycleStatus::NoAnswer),
        (Some("Unknown"), LifecycleStatus::Failed),
        (Some("sip_503"), LifecycleStatus::Failed),
        (None, LifecycleStatus::Failed),
    ] {
        let parsed = parse_event(ELEVENLABS, &initiation_failure("conv_busy", reason));
        assert_eq!(parsed.event_type, "call_initiation_failure");
        let e = parsed.event;
        assert_eq!(e.status, status, "{reason:?}");
        assert_eq!(e.occurred_at, at(1_759_918_211));
        assert_eq!(
            e.phone_number.as_ref().map(|p| p.as_str()),
            Some("+14155550163")
        );
        assert_eq!(e.conversation_seconds, None);
        let state = fold([&e], 1);
        assert_eq!(state.status(), CallStatus::Failed);
        assert_eq!(state.charge, None);
    }
    // Without phone details the failure is still recorded.
    let bare = br#"{"type":"call_initiation_failure","data":{"conversation_id":"c2","failure_reason":"busy"}}"#;
    let e = parse_event(ELEVENLABS, bare).event;
    assert_eq!(
        (e.status, e.phone_number, e.occurred_at),
        (LifecycleStatus::Busy, None, received_at())
    );
}

/// Whole calls: answered (its one transcription), busy, no answer, failed.
pub fn lifecycles() -> Lifecycles {
    vec![
        ("answered", vec![fixtures::read(FIXTURE)]),
        ("busy", vec![initiation_failure("conv_b", Some("busy"))]),
        (
            "no-answer",
            vec![initiation_failure("conv_n", Some("no-answer"))],
        ),
        (
            "failed",
            vec![initiation_failure("conv_f", Some("unknown"))],
        ),
    ]
}

#[test]
fn an_answered_call_is_charged_at_its_transcription() {
    use calltrail_core::lifecycle::Charge;
    let state = fold(
        [&parse_event(ELEVENLABS, &fixtures::read(FIXTURE)).event],
        1,
    );
    assert_eq!(state.lifecycle_status, Some(LifecycleStatus::Completed));
    assert_eq!(
        state.charge,
        Some(Charge {
            duration_seconds: 27,
            duration_minutes: 1,
            credits: 1
        })
    );
    assert_eq!(state.created_at, Some(at(1_759_914_908)));
    assert_eq!(state.completed_at, Some(at(1_759_914_945)));
}

#[test]
fn other_types_are_ignored_unless_they_name_a_conversation() {
    for kind in ["voice_removal_notice", "voice_removed"] {
        let body = json!({"type": kind, "event_timestamp": 1, "data": {"voice_id": "v1"}});
        let ignored = parse_ignored(ELEVENLABS, body.to_string().as_bytes());
        assert_eq!(
            (ignored.message_type.as_str(), ignored.execution_id),
            (kind, None)
        );
    }
    let later = json!({"type": "post_call_summary", "data": {"conversation_id": "c9"}});
    let parsed = parse_event(ELEVENLABS, later.to_string().as_bytes());
    assert_eq!(parsed.event_type, "post_call_summary");
    assert_eq!(parsed.event.status.rank(), None, "timeline only");
}

#[test]
fn refusals_name_the_missing_field() {
    let parse = |body: &[u8]| ELEVENLABS.webhooks().parse(body, received_at()).err();
    assert!(matches!(
        parse(b"{\"type\""),
        Some(PayloadError::MalformedJson(_))
    ));
    assert_eq!(
        parse(b"\"post_call_transcription\""),
        Some(PayloadError::NotAnObject)
    );
    assert_eq!(
        parse(b"{\"data\":{}}"),
        Some(PayloadError::MissingField("type"))
    );
    assert_eq!(
        parse(br#"{"type":"post_call_transcription","data":{"agent_id":"a"}}"#),
        Some(PayloadError::MissingField("data.conversation_id"))
    );
    assert_eq!(
        parse(br#"{"type":"call_initiation_failure","data":[]}"#),
        Some(PayloadError::MissingField("data.conversation_id"))
    );
}

#[test]
fn a_campaign_id_dynamic_variable_is_the_batch_id() {
    let e = transcription_with(|raw| {
        raw["data"]["conversation_initiation_client_data"] =
            json!({"dynamic_variables": {"campaign_id": "spring-2025"}});
    });
    assert_eq!(e.batch_id.as_deref(), Some("spring-2025"));
    let e = transcription_with(|raw| {
        raw["data"]["conversation_initiation_client_data"] =
            json!({"dynamic_variables": {"campaign_id": "  "}});
    });
    assert_eq!(e.batch_id, None);
}
