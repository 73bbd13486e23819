//! Tolerant parsing of Bolna payloads: what real webhooks send, and what is refused.

use calltrail_core::providers::bolna::{self, parse_timestamp};
use calltrail_core::{Anomaly, LeadType, LifecycleStatus, PayloadError};
use serde_json::{json, Value};

use calltrail_fixtures as fixtures;

use crate::support::{received_at, utc};

fn parse_json(value: Value) -> Result<bolna::BolnaPayload, PayloadError> {
    bolna::parse(value.to_string().as_bytes())
}

fn fixture_with(path: &[&str], value: Value) -> Value {
    let mut payload: Value =
        serde_json::from_slice(&fixtures::read("bolna/success/05-completed.json")).unwrap();
    let (last, parents) = path.split_last().unwrap();
    let mut target = &mut payload;
    for key in parents {
        target = &mut target[*key];
    }
    target[*last] = value;
    payload
}

#[test]
fn refusals_name_the_problem() {
    assert!(matches!(
        bolna::parse(b"{\"id\": "),
        Err(PayloadError::MalformedJson(_))
    ));
    assert!(matches!(
        bolna::parse(b""),
        Err(PayloadError::MalformedJson(_))
    ));
    assert!(matches!(
        bolna::parse(b"\xff\xfe"),
        Err(PayloadError::MalformedJson(_))
    ));
    assert_eq!(
        bolna::parse(b"[1, 2]").err(),
        Some(PayloadError::NotAnObject)
    );
    assert_eq!(
        bolna::parse(b"\"completed\"").err(),
        Some(PayloadError::NotAnObject)
    );
    assert_eq!(bolna::parse(b"null").err(), Some(PayloadError::NotAnObject));

    let missing = |v: Value| parse_json(v).err();
    assert_eq!(
        missing(json!({"status": "ringing"})),
        Some(PayloadError::MissingField("id"))
    );
    assert_eq!(
        missing(json!({"id": null, "status": "ringing"})),
        Some(PayloadError::MissingField("id"))
    );
    assert_eq!(
        missing(json!({"id": "  ", "status": "ringing"})),
        Some(PayloadError::MissingField("id"))
    );
    assert_eq!(
        missing(json!({"id": true, "status": "ringing"})),
        Some(PayloadError::MissingField("id"))
    );
    assert_eq!(
        missing(json!({"id": "x"})),
        Some(PayloadError::MissingField("status"))
    );
    assert_eq!(
        missing(json!({"id": "x", "status": ""})),
        Some(PayloadError::MissingField("status"))
    );
    assert_eq!(
        missing(json!({"id": "x", "status": 3})),
        Some(PayloadError::MissingField("status"))
    );
}

#[test]
fn error_messages_are_sentences_for_humans() {
    let malformed = bolna::parse(b"{").unwrap_err().to_string();
    assert!(
        malformed.starts_with("the body is not valid JSON: "),
        "{malformed}"
    );
    assert_eq!(
        PayloadError::MissingField("status").to_string(),
        "the payload has no usable `status` field (it is absent, null, empty or of the wrong type)"
    );
    assert_eq!(
        PayloadError::NotAnObject.to_string(),
        "the body is valid JSON but not a JSON object"
    );
    assert_eq!(PayloadError::NotAnObject.code(), "payload_not_an_object");
}

#[test]
fn a_minimal_payload_is_enough() {
    let payload = parse_json(json!({"id": 7432382142914_u64, "status": " Balance_Low "})).unwrap();
    assert_eq!(payload.execution_id(), "7432382142914");
    assert_eq!(payload.status(), LifecycleStatus::BalanceLow);
    let event = payload.normalize(received_at());
    assert_eq!(
        event.occurred_at,
        received_at(),
        "no updated_at: the receive time"
    );
    assert_eq!(event.call_created_at, None);
    assert_eq!(event.phone_number, None);
    assert_eq!(event.conversation_seconds, None);
}

#[test]
fn unknown_statuses_are_kept_verbatim() {
    let payload = parse_json(json!({"id": "x", "status": "Voicemail"})).unwrap();
    assert_eq!(
        payload.status(),
        LifecycleStatus::Other("Voicemail".to_owned())
    );
    assert_eq!(
        payload.normalize(received_at()).status.as_str(),
        "Voicemail"
    );
}

#[test]
fn bad_optional_fields_become_none_instead_of_failing() {
    for (path, value) in [
        (&["updated_at"][..], json!("yesterday")),
        (&["created_at"], json!(12345)),
        (&["conversation_duration"], json!({"seconds": 27})),
        (&["transcript"], json!(["assistant: hi"])),
        (&["telephony_data"], json!("n/a")),
        (&["telephony_data", "to_number"], json!("call me maybe")),
        (&["telephony_data", "hangup_provider_code"], json!("forty")),
        (&["telephony_data", "call_type"], json!("sideways")),
        (&["context_details"], json!(false)),
        (&["context_details", "recipient_data"], json!([1, 2])),
        (&["agent_id"], json!({"nested": true})),
    ] {
        let payload = parse_json(fixture_with(path, value.clone()))
            .unwrap_or_else(|e| panic!("{path:?} = {value} failed the payload: {e}"));
        let _ = payload.normalize(received_at());
    }
    let event = parse_json(fixture_with(&["updated_at"], json!("yesterday")))
        .unwrap()
        .normalize(received_at());
    assert_eq!(event.occurred_at, received_at());
    assert_eq!(event.anomalies, vec![Anomaly::TimestampUnparseable]);
    let event = parse_json(fixture_with(&["created_at"], json!(12345)))
        .unwrap()
        .normalize(received_at());
    assert_eq!(event.call_created_at, None);
    assert_eq!(event.anomalies, vec![Anomaly::TimestampUnparseable]);
    for absent in [json!(null), json!("  ")] {
        let event = parse_json(fixture_with(&["updated_at"], absent))
            .unwrap()
            .normalize(received_at());
        assert_eq!(event.occurred_at, received_at());
        assert!(event.anomalies.is_empty(), "absent is not unparseable");
    }
    let event = parse_json(fixture_with(
        &["telephony_data", "to_number"],
        json!("call me maybe"),
    ))
    .unwrap()
    .normalize(received_at());
    assert_eq!(
        event.phone_number.unwrap().as_str(),
        "+14155550132",
        "falls back to recipient_phone_number"
    );
}

#[test]
fn numbers_may_arrive_as_strings() {
    let payload = parse_json(json!({
        "id": "x", "status": "completed",
        "conversation_duration": " 27.2 ",
        "telephony_data": {"duration": "28", "hangup_provider_code": "4000", "ring_duration": 5}
    }))
    .unwrap();
    assert_eq!(payload.conversation_seconds(), Some(27.2));
    let telephony = payload.telephony_data.as_ref().unwrap();
    assert_eq!(telephony.duration, Some(28.0));
    assert_eq!(telephony.hangup_provider_code, Some(4000));
    let code = |v: Value| {
        parse_json(
            json!({"id": "x", "status": "busy", "telephony_data": {"hangup_provider_code": v}}),
        )
        .unwrap()
        .normalize(received_at())
        .hangup_provider_code
    };
    assert_eq!(code(json!(3040.0)), Some(3040));
    assert_eq!(code(json!("3040.0")), Some(3040));
    assert_eq!(code(json!(3040.5)), None);
    assert_eq!(code(json!(null)), None);
}

#[test]
fn the_older_conversation_time_is_accepted() {
    let payload =
        parse_json(json!({"id": "x", "status": "completed", "conversation_time": 61.5})).unwrap();
    assert_eq!(
        payload.normalize(received_at()).conversation_seconds,
        Some(61.5)
    );
    let both = parse_json(
        json!({"id": "x", "status": "completed", "conversation_duration": 10, "conversation_time": 61.5}),
    );
    assert_eq!(
        both.unwrap().conversation_seconds(),
        Some(10.0),
        "the current name wins"
    );
    let null = parse_json(
        json!({"id": "x", "status": "completed", "conversation_duration": null, "conversation_time": 3}),
    );
    assert_eq!(null.unwrap().conversation_seconds(), Some(3.0));
}

#[test]
fn timestamps_with_and_without_zone() {
    let expected = utc("2025-10-08T09:15:36.771340");
    assert_eq!(
        parse_timestamp("2025-10-08T09:15:36.771340"),
        Some(expected)
    );
    assert_eq!(
        parse_timestamp("2025-10-08T09:15:36.771340Z"),
        Some(expected)
    );
    assert_eq!(
        parse_timestamp("2025-10-08 09:15:36.771340"),
        Some(expected)
    );
    assert_eq!(
        parse_timestamp("2025-10-08T14:45:36.771340+05:30"),
        Some(expected)
    );
    assert_eq!(
        parse_timestamp("2025-10-08T14:45:36.771340+0530"),
        Some(expected)
    );
    assert_eq!(
        parse_timestamp("2024-01-23T01:14:37Z"),
        Some(utc("2024-01-23T01:14:37"))
    );
    assert_eq!(
        parse_timestamp("2024-01-23T01:14:37"),
        Some(utc("2024-01-23T01:14:37"))
    );
    assert_eq!(parse_timestamp("2024-01-23"), None);
    // No RFC 3339 form exists for these in UTC, so they read as absent.
    assert_eq!(parse_timestamp("+10000-01-01T00:00:00"), None);
    assert_eq!(parse_timestamp("9999-12-31T23:00:00-05:00"), None);
    assert_eq!(
        parse_timestamp("9999-12-31T23:59:59Z"),
        Some(utc("9999-12-31T23:59:59"))
    );
    assert_eq!(parse_timestamp("not a time"), None);
    assert_eq!(parse_timestamp(""), None);
}

#[test]
fn inbound_calls_use_the_callers_number() {
    let payload = parse_json(json!({
        "id": "in-1", "status": "ringing",
        "user_number": "+14155550100",
        "telephony_data": {"call_type": "Inbound", "from_number": "+1 415 555 0199", "to_number": "+14155550187"}
    }))
    .unwrap();
    let event = payload.normalize(received_at());
    assert_eq!(event.lead_type, Some(LeadType::Inbound));
    assert_eq!(event.phone_number.unwrap().as_str(), "+14155550199");
}

#[test]
fn phone_falls_back_to_recipient_then_user_number() {
    let phone = |v: Value| {
        parse_json(v)
            .unwrap()
            .normalize(received_at())
            .phone_number
            .map(|p| p.to_string())
    };
    assert_eq!(
        phone(
            json!({"id": "x", "status": "queued", "user_number": "0044 20 7946 0958",
                     "context_details": {"recipient_phone_number": "+14155550111"}})
        ),
        Some("+14155550111".to_owned())
    );
    assert_eq!(
        phone(json!({"id": "x", "status": "queued", "user_number": "0044 20 7946 0958"})),
        Some("+442079460958".to_owned())
    );
    assert_eq!(
        phone(json!({"id": "x", "status": "queued", "user_number": "4155550111"})),
        None,
        "no country guessing"
    );
}

#[test]
fn blank_texts_are_none_and_names_fall_back() {
    let event = parse_json(json!({
        "id": "x", "status": "completed", "transcript": " \n ",
        "telephony_data": {"hangup_by": "", "recording_url": "  "},
        "context_details": {"recipient_data": {"lead_name": " ", "name": "Ada Lovelace", "company": null}}
    }))
    .unwrap()
    .normalize(received_at());
    assert_eq!(event.transcript, None);
    assert_eq!(event.hangup_by, None);
    assert_eq!(event.recording_url, None);
    assert_eq!(event.contact_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(event.contact_company, None);
}

#[test]
fn a_byte_order_mark_is_tolerated() {
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice(br#"{"id":"x","status":"ringing"}"#);
    assert!(bolna::parse(&body).is_ok());
}

#[test]
fn payloads_round_trip_through_serde() {
    let payload = bolna::parse(&fixtures::read("bolna/success/05-completed.json")).unwrap();
    let json = serde_json::to_value(&payload).unwrap();
    let back = bolna::parse(json.to_string().as_bytes()).unwrap();
    assert_eq!(back, payload);
    assert!(
        serde_json::from_value::<bolna::BolnaPayload>(json!({"id": "", "status": "x"})).is_err()
    );
}

#[test]
fn duplicate_keys_read_as_the_last_one_like_jsonb() {
    let payload = bolna::parse(
        br#"{"id":"first","status":"ringing","id":"second",
            "telephony_data":{"to_number":"+15550001","to_number":"+919876543210","call_type":"outbound"}}"#,
    )
    .unwrap();
    assert_eq!(payload.execution_id(), "second");
    assert_eq!(
        payload.phone_number().map(|p| p.as_str().to_owned()),
        Some("+919876543210".to_owned())
    );
}

#[test]
fn odd_nested_values_read_as_absent_not_as_errors() {
    let payload = parse_json(json!({
        "id": "x", "status": "completed",
        "telephony_data": [1, {"a": 2}],
        "context_details": "none",
        "agent_id": {"nested": true},
    }))
    .unwrap();
    assert_eq!(payload.telephony_data, None);
    assert_eq!(payload.context_details, None);
    assert_eq!(payload.agent_id(), None);
    assert_eq!(
        bolna::parse(b"  [\"id\", \"status\"]").err(),
        Some(PayloadError::NotAnObject)
    );
}
