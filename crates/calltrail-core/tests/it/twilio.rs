//! Twilio: the `X-Twilio-Signature` check (the fixtures' signatures, Twilio's own vectors, the
//! port variants), the stored form, and each normalization rule of CONTRACT §5.

use base64::Engine as _;
use calltrail_core::providers::SignatureError;
use calltrail_core::{fold, CallStatus, LeadType, LifecycleStatus, PayloadError, Provider};
use calltrail_fixtures as fixtures;
use chrono::{DateTime, Utc};
use hmac::Mac as _;
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::support::{parse_event, received_at, verify, Lifecycles};

const TWILIO: Provider = Provider::Twilio;
/// fixtures/twilio/README.md: the made-up Auth Token and the URL the signatures are for.
const TOKEN: &str = "5f0a9c3e7b1d4f62a8c0e4b7d9f1a3c5";
const URL: &str = "https://hooks.example.com/webhooks/twilio/voice-status?tenant=acme";
const SIGNED: [(&str, &str); 3] = [
    ("twilio/01-ringing.form", "YcCDEMzIpyUHHOY/lRhdcVCNBfM="),
    ("twilio/02-in-progress.form", "W7L2AznuSSQo+2js8w5saev/WaA="),
    ("twilio/03-completed.form", "ZJum0oucuW3nrNoQjQCEeMZsRMs="),
];
const CALL_SID: &str = "CA7b2e9d4f1a6c3e8b0d5f2a9c4e7b1d6f";

fn check(
    signature: &str,
    tokens: &[&str],
    url: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    verify(
        TWILIO,
        &[("X-Twilio-Signature", signature)],
        tokens,
        url,
        received_at(),
        body,
    )
}

/// Characters a form value keeps unescaped: `*-._` and alphanumerics (as browsers and Twilio do).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// An `application/x-www-form-urlencoded` body of these fields, in this order.
pub fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(n, v)| {
            let enc = |s: &str| utf8_percent_encode(s, FORM).to_string().replace("%20", "+");
            format!("{}={}", enc(n), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// The decoded fields of a form body, in order (a reference decoder for the tests).
fn fields_of(body: &[u8]) -> Vec<(String, String)> {
    let dec = |s: &str| {
        percent_decode(s.replace('+', " ").as_bytes())
            .decode_utf8()
            .unwrap()
            .into_owned()
    };
    std::str::from_utf8(body)
        .unwrap()
        .split('&')
        .map(|pair| {
            let (n, v) = pair.split_once('=').unwrap();
            (dec(n), dec(v))
        })
        .collect()
}

/// Twilio's algorithm, written out for the tests: base64 HMAC-SHA1 over the URL and the sorted pairs.
fn sign(token: &str, url: &str, fields: &[(String, String)]) -> String {
    let mut sorted = fields.to_vec();
    sorted.sort();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (n, v) in &sorted {
        mac.update(n.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn the_fixture_signatures_verify_and_the_default_port_is_tried() {
    for (file, signature) in SIGNED {
        let body = fixtures::read(file);
        assert_eq!(
            check(signature, &[TOKEN], Some(URL), &body),
            Ok(()),
            "{file}"
        );
        let with_port = URL.replace(".com/", ".com:443/");
        assert_eq!(
            check(signature, &[TOKEN], Some(&with_port), &body),
            Ok(()),
            "{file}"
        );
        assert_eq!(
            check(signature, &["rotated-token", TOKEN], Some(URL), &body),
            Ok(())
        );
        assert_eq!(
            check(signature, &["rotated-token"], Some(URL), &body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            sign(TOKEN, URL, &fields_of(&body)),
            signature,
            "the reference agrees"
        );
    }
}

// docs/PROVIDERS.md §4: twilio-python's test_request_validator.py and the older docs example.
#[test]
fn twilios_published_vectors_verify() {
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    for (caller, expected) in [
        ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("+12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
    ] {
        let body = form(&[
            ("From", caller),
            ("CallSid", "CA1234567890ABCDE"),
            ("To", "+18005551212"),
            ("Caller", caller),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            check(expected, &["12345"], Some(url), &body),
            Ok(()),
            "{caller}"
        );
        let port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(check(expected, &["12345"], Some(port), &body), Ok(()));
        assert_eq!(
            check(expected, &["54321"], Some(url), &body),
            Err(SignatureError::Mismatch)
        );
    }
    // The body vector: a JSON body, its sha256 in the URL's `bodySHA256`, the URL alone signed.
    let body = br#"{"property": "value", "boolean": true}"#;
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    let expected = "a9nBmqA0ju/hNViExpshrM61xv4=";
    assert_eq!(check(expected, &["12345"], Some(url), body), Ok(()));
    assert_eq!(
        check(
            expected,
            &["12345"],
            Some(url),
            br#"{"property": "value", "boolean": false}"#
        ),
        Err(SignatureError::Mismatch),
        "the body must match its hash"
    );
}

#[test]
fn refusals_name_the_problem() {
    let (file, signature) = SIGNED[2];
    let body = fixtures::read(file);
    assert_eq!(
        check(signature, &[], Some(URL), &body),
        Err(SignatureError::NotConfigured(Provider::Twilio))
    );
    assert_eq!(
        check(signature, &[TOKEN], None, &body),
        Err(SignatureError::PublicUrlNotConfigured(Provider::Twilio))
    );
    assert_eq!(
        verify(TWILIO, &[], &[TOKEN], Some(URL), received_at(), &body),
        Err(SignatureError::Missing("X-Twilio-Signature"))
    );
    for bad in [
        "",
        "not base64!",
        "ZJum0oucuW3nrNoQjQCEeMZsRM==",
        "ZJum0oucuW3nrNoQjQCEeMZsRMsA",
    ] {
        assert!(
            matches!(
                check(bad, &[TOKEN], Some(URL), &body),
                Err(SignatureError::Malformed {
                    header: "X-Twilio-Signature",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("CallDuration=29", "CallDuration=2900");
    assert_eq!(
        check(signature, &[TOKEN], Some(URL), tampered.as_bytes()),
        Err(SignatureError::Mismatch)
    );
    let other_url = URL.replace("tenant=acme", "tenant=other");
    assert_eq!(
        check(signature, &[TOKEN], Some(&other_url), &body),
        Err(SignatureError::Mismatch)
    );
    let other_tenant = sign("another-tenants-token", URL, &fields_of(&body));
    assert_eq!(
        check(&other_tenant, &[TOKEN], Some(URL), &body),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(signature, &[TOKEN], Some(URL), b"\xff\xfe"),
        Err(SignatureError::Mismatch)
    );

    // The order of the fields and their encoding are not signed: only the decoded pairs.
    let mut fields = fields_of(&body);
    fields.reverse();
    let reordered = form(
        &fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_ne!(reordered, body);
    assert_eq!(check(signature, &[TOKEN], Some(URL), &reordered), Ok(()));
}

#[test]
fn a_completed_callback_normalizes_per_the_contract() {
    let body = fixtures::read("twilio/03-completed.form");
    let parsed = parse_event(TWILIO, &body);
    assert_eq!(parsed.event_type, "completed");
    let e = parsed.event;
    assert_eq!(e.provider, Provider::Twilio);
    assert_eq!(e.execution_id, CALL_SID);
    assert_eq!(e.status, LifecycleStatus::Completed);
    assert_eq!(
        e.occurred_at,
        "2025-10-08T09:15:37Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(e.conversation_seconds, Some(29.0), "CallDuration");
    assert_eq!(
        e.recording_url.as_deref(),
        Some("https://api.twilio.com/2010-04-01/Accounts/AC3f9e2d7c1b5a4e8f0d6c2b9a7e1f4d3c/Recordings/RE9d2c7a4e1f6b3d8a0c5e2f7b4a9d1c6e")
    );
    assert_eq!(e.lead_type, Some(LeadType::Outbound), "outbound-api");
    assert_eq!(
        e.phone_number.as_ref().map(|p| p.as_str()),
        Some("+14155550132"),
        "To"
    );
    assert_eq!(
        e.agent_id.as_deref(),
        Some("+14155550187"),
        "From: the business's number"
    );
    assert_eq!(e.hangup_provider_code, Some(200), "SipResponseCode");
    assert_eq!(e.call_created_at, None);
    assert_eq!(e.transcript, None);
}

#[test]
fn the_stored_form_keeps_the_fields_in_order_and_verifies_and_parses_again() {
    let (file, signature) = SIGNED[2];
    let body = fixtures::read(file);
    let parsed = parse_event(TWILIO, &body);
    let stored: serde_json::Value = serde_json::from_str(&parsed.payload).unwrap();
    let pairs: Vec<(String, String)> = stored["form"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(pairs, fields_of(&body), "decoded, in received order");
    assert_eq!(stored.as_object().unwrap().len(), 1);
    let again = form(
        &pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(check(signature, &[TOKEN], Some(URL), &again), Ok(()));
    assert_eq!(parse_event(TWILIO, &again), parsed);
}

/// A status callback of the fixture call (outbound) with these fields changed or added.
fn callback(changes: &[(&str, &str)]) -> Vec<u8> {
    let mut fields = fields_of(&fixtures::read("twilio/01-ringing.form"));
    for (name, value) in changes {
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = (*value).to_owned(),
            None => fields.push(((*name).to_owned(), (*value).to_owned())),
        }
    }
    form(
        &fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    )
}

#[test]
fn call_statuses_map_and_the_key_is_the_status_as_sent() {
    for (status, expected) in [
        ("queued", LifecycleStatus::Initiated),
        ("initiated", LifecycleStatus::Initiated),
        ("ringing", LifecycleStatus::Ringing),
        ("in-progress", LifecycleStatus::InProgress),
        ("completed", LifecycleStatus::Completed),
        ("busy", LifecycleStatus::Busy),
        ("no-answer", LifecycleStatus::NoAnswer),
        ("failed", LifecycleStatus::Failed),
        ("canceled", LifecycleStatus::Canceled),
        ("answered", LifecycleStatus::Other("answered".to_owned())),
    ] {
        let parsed = parse_event(TWILIO, &callback(&[("CallStatus", status)]));
        assert_eq!(parsed.event_type, status);
        assert_eq!(parsed.event.status, expected, "{status}");
    }
}

#[test]
fn an_inbound_call_takes_the_caller_as_the_contact() {
    let e = parse_event(
        TWILIO,
        &callback(&[
            ("Direction", "inbound"),
            ("From", "+14155550199"),
            ("To", "+14155550187"),
        ]),
    )
    .event;
    assert_eq!(e.lead_type, Some(LeadType::Inbound));
    assert_eq!(
        e.phone_number.as_ref().map(|p| p.as_str()),
        Some("+14155550199")
    );
    assert_eq!(e.agent_id.as_deref(), Some("+14155550187"));
    let e = parse_event(TWILIO, &callback(&[("Direction", "outbound-dial")])).event;
    assert_eq!(
        e.phone_number.as_ref().map(|p| p.as_str()),
        Some("+14155550132")
    );
    let e = parse_event(TWILIO, &callback(&[("Direction", "sideways")])).event;
    assert_eq!(
        (e.lead_type, e.phone_number, e.agent_id),
        (None, None, None)
    );
}

#[test]
fn odd_optional_values_read_as_absent_and_refusals_name_the_field() {
    let e = parse_event(
        TWILIO,
        &callback(&[
            ("CallDuration", "twenty"),
            ("SipResponseCode", "4x6"),
            ("Timestamp", "2025-10-08 09:15:02"),
            ("To", "4155550132"),
            ("RecordingUrl", " "),
        ]),
    )
    .event;
    assert_eq!(e.conversation_seconds, None);
    assert_eq!(e.hangup_provider_code, None);
    assert_eq!(
        e.occurred_at,
        received_at(),
        "not RFC 2822: the receive time"
    );
    assert_eq!(e.phone_number, None);
    assert_eq!(e.recording_url, None);

    let parse = |body: &[u8]| TWILIO.webhooks().parse(body, received_at()).err();
    assert_eq!(parse(b""), Some(PayloadError::MissingField("CallSid")));
    assert_eq!(
        parse(b"CallStatus=ringing"),
        Some(PayloadError::MissingField("CallSid"))
    );
    assert_eq!(
        parse(b"CallSid=CA1&CallStatus="),
        Some(PayloadError::MissingField("CallStatus"))
    );
    assert_eq!(
        parse(br#"{"CallSid":"CA1"}"#),
        Some(PayloadError::MissingField("CallSid"))
    );
    assert!(matches!(
        parse(b"CallSid=CA%FF&CallStatus=ringing"),
        Some(PayloadError::MalformedForm(_))
    ));
}

/// Whole calls, each callback in delivery order: answered, no answer, busy, failed, canceled.
pub fn lifecycles() -> Lifecycles {
    let status = |s: &str, seq: &str, at: &str| {
        callback(&[
            ("CallStatus", s),
            ("SequenceNumber", seq),
            ("Timestamp", at),
        ])
    };
    let ended = |s: &str, code: &str| {
        callback(&[
            ("CallStatus", s),
            ("SequenceNumber", "2"),
            ("Timestamp", "Wed, 08 Oct 2025 09:15:31 +0000"),
            ("CallDuration", "0"),
            ("SipResponseCode", code),
        ])
    };
    let initiated = status("initiated", "0", "Wed, 08 Oct 2025 09:15:00 +0000");
    let ringing = fixtures::read("twilio/01-ringing.form");
    vec![
        (
            "answered",
            vec![
                status("queued", "0", "Wed, 08 Oct 2025 09:14:59 +0000"),
                ringing.clone(),
                fixtures::read("twilio/02-in-progress.form"),
                fixtures::read("twilio/03-completed.form"),
            ],
        ),
        (
            "no-answer",
            vec![
                initiated.clone(),
                ringing.clone(),
                ended("no-answer", "487"),
            ],
        ),
        ("busy", vec![initiated.clone(), ended("busy", "486")]),
        ("failed", vec![initiated.clone(), ended("failed", "503")]),
        (
            "canceled",
            vec![initiated, ringing.clone(), ended("canceled", "487")],
        ),
        (
            "answered-by-machine",
            vec![
                ringing,
                callback(&[
                    ("CallStatus", "in-progress"),
                    ("SequenceNumber", "1"),
                    ("Timestamp", "Wed, 08 Oct 2025 09:15:08 +0000"),
                    ("AnsweredBy", "machine_end_beep"),
                ]),
                callback(&[
                    ("CallStatus", "completed"),
                    ("SequenceNumber", "2"),
                    ("Timestamp", "Wed, 08 Oct 2025 09:15:37 +0000"),
                    ("CallDuration", "29"),
                ]),
            ],
        ),
    ]
}

#[test]
fn whole_calls_fold_to_their_ending() {
    use calltrail_core::lifecycle::Charge;
    for (name, bodies) in lifecycles() {
        let events: Vec<_> = bodies
            .iter()
            .map(|b| parse_event(TWILIO, b).event)
            .collect();
        let state = fold(&events, 1);
        let (status, call_status) = match name {
            "answered" | "answered-by-machine" => {
                (LifecycleStatus::Completed, CallStatus::Completed)
            }
            "no-answer" => (LifecycleStatus::NoAnswer, CallStatus::Failed),
            "busy" => (LifecycleStatus::Busy, CallStatus::Failed),
            "failed" => (LifecycleStatus::Failed, CallStatus::Failed),
            _ => (LifecycleStatus::Canceled, CallStatus::Cancelled),
        };
        assert_eq!(state.lifecycle_status, Some(status), "{name}");
        assert_eq!(state.status(), call_status, "{name}");
        let charge = name.starts_with("answered").then_some(Charge {
            duration_seconds: 29,
            duration_minutes: 1,
            credits: 1,
        });
        assert_eq!(state.charge, charge, "{name}: charged at `completed` only");
        assert_eq!(
            state.phone_number.as_ref().map(|p| p.as_str()),
            Some("+14155550132")
        );
    }
    let busy = &lifecycles()[2].1;
    let state = fold(
        &busy
            .iter()
            .map(|b| parse_event(TWILIO, b).event)
            .collect::<Vec<_>>(),
        1,
    );
    assert_eq!(state.hangup_provider_code, Some(486));
}
