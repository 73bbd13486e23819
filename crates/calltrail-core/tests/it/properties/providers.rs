//! Properties of every provider: whole calls fold the same in any order with duplicates, the
//! normalized events survive the log's `data` column, and no input — bytes, JSON, forms,
//! headers — panics a parser or a verifier. Drill 5 (scripts/drills) runs these at volume.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use calltrail_core::providers::{ProviderSecret, VerifyRequest};
use calltrail_core::{fold, CallEvent, Provider};
use calltrail_fixtures as fixtures;
use chrono::DateTime;
use proptest::prelude::*;
use serde_json::Value;

use super::{delivery_order, json_value};
use crate::support::{parse_event, received_at, Lifecycles};

/// What the properties need to know of one provider.
struct Case {
    provider: Provider,
    /// Whole calls, each message's body in delivery order.
    lifecycles: fn() -> Lifecycles,
    /// JSON fixtures to derive odd payloads from.
    json_fixtures: &'static [&'static str],
    /// The paths without which a payload is refused (and their parents).
    identifying: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            provider: Provider::Vapi,
            lifecycles: crate::vapi::lifecycles,
            json_fixtures: &["vapi/status-update.json", "vapi/end-of-call-report.json"],
            identifying: &["message.type", "message.status", "message.call.id"],
        },
        Case {
            provider: Provider::ElevenLabs,
            lifecycles: crate::elevenlabs::lifecycles,
            json_fixtures: &["elevenlabs/post_call_transcription.json"],
            identifying: &["type", "data.conversation_id"],
        },
        Case {
            provider: Provider::Retell,
            lifecycles: crate::retell::lifecycles,
            json_fixtures: &[
                "retell/answered/01-call_started.json",
                "retell/answered/02-call_ended.json",
                "retell/answered/03-call_analyzed.json",
                "retell/no-answer/01-call_ended.json",
            ],
            identifying: &["event", "call.call_id"],
        },
        Case {
            provider: Provider::Twilio,
            lifecycles: crate::twilio::lifecycles,
            json_fixtures: &[],
            identifying: &[],
        },
    ]
}

/// Every lifecycle of every provider, flattened: (provider, name, bodies).
fn all_lifecycles() -> Vec<(Provider, &'static str, Vec<Vec<u8>>)> {
    cases()
        .into_iter()
        .flat_map(|case| {
            (case.lifecycles)()
                .into_iter()
                .map(move |(name, bodies)| (case.provider, name, bodies))
        })
        .collect()
}

/// [`all_lifecycles`] parsed, once per test binary (drill 5 runs many thousand cases).
fn parsed_lifecycles() -> &'static [(Provider, &'static str, Vec<CallEvent>)] {
    static PARSED: OnceLock<Vec<(Provider, &'static str, Vec<CallEvent>)>> = OnceLock::new();
    PARSED.get_or_init(|| {
        all_lifecycles()
            .into_iter()
            .map(|(provider, name, bodies)| (provider, name, events_of(provider, &bodies)))
            .collect()
    })
}

/// A JSON fixture, read once per test binary.
fn fixture_json(file: &'static str) -> Value {
    static READ: OnceLock<Mutex<HashMap<&'static str, Value>>> = OnceLock::new();
    let cache = READ.get_or_init(Mutex::default);
    let mut cache = cache.lock().unwrap();
    cache
        .entry(file)
        .or_insert_with(|| fixtures::json(file))
        .clone()
}

fn events_of(provider: Provider, bodies: &[Vec<u8>]) -> Vec<CallEvent> {
    bodies
        .iter()
        .map(|b| parse_event(provider, b).event)
        .collect()
}

/// Whether `path` (dotted) is, or is the parent of, a path that identifies the event.
fn identifies(path: &str, identifying: &[&str]) -> bool {
    identifying
        .iter()
        .any(|id| *id == path || id.starts_with(&format!("{path}.")))
}

/// Every object-key path of a JSON value, dotted (array elements are not descended into).
fn paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            paths(child, &path, out);
            out.push(path);
        }
    }
}

fn set_path(value: &mut Value, path: &str, new: Value) {
    let mut target = value;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        if keys.peek().is_none() {
            target[key] = new;
            return;
        }
        target = &mut target[key];
    }
}

/// A JSON fixture of some provider with the value at one of its paths replaced.
fn odd_json_payload() -> impl Strategy<Value = (Provider, String, Vec<u8>, bool)> {
    let fixtures: Vec<(Provider, &'static str, &'static [&'static str])> = cases()
        .into_iter()
        .flat_map(|c| {
            c.json_fixtures
                .iter()
                .map(move |f| (c.provider, *f, c.identifying))
        })
        .collect();
    (
        prop::sample::select(fixtures),
        any::<prop::sample::Index>(),
        json_value(),
    )
        .prop_map(|((provider, file, identifying), index, new)| {
            let mut payload = fixture_json(file);
            let mut all = Vec::new();
            paths(&payload, "", &mut all);
            let path = index.get(&all).clone();
            set_path(&mut payload, &path, new);
            let keeps_identity = !identifies(&path, identifying);
            (
                provider,
                path,
                payload.to_string().into_bytes(),
                keeps_identity,
            )
        })
}

/// Header names every provider reads, mixed with arbitrary ones.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "X-Vapi-Secret",
            "Authorization",
            "x-signature",
            "x-timestamp",
            "ElevenLabs-Signature",
            "X-Twilio-Signature",
            "x-retell-signature",
            "Content-Type",
        ])
        .prop_map(str::to_owned),
        "[A-Za-z-]{1,20}",
    ]
}

/// Header values: arbitrary text and the shapes the signature schemes parse.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,80}",
        "[0-9]{0,20}",
        "[0-9a-fA-F]{0,70}",
        "(Bearer|bearer|Basic)? ?[ -~]{0,40}",
        "t=[0-9-]{0,14},v0=[0-9a-f]{0,66}",
        "v=[0-9-]{0,16},d=[0-9a-f]{0,66}",
        "[A-Za-z0-9+/=]{0,32}",
        "([a-z0-9]{0,4}=[^,]{0,8},?){0,5}",
    ]
}

proptest! {
    #[test]
    fn whole_calls_fold_the_same_in_any_order_with_duplicates(
        index in any::<prop::sample::Index>(),
        seed in delivery_order(6),
    ) {
        let (provider, name, events) = index.get(parsed_lifecycles());
        let mut order: Vec<usize> = seed.into_iter().filter(|&i| i < events.len()).collect();
        for i in 0..events.len() {
            if !order.contains(&i) {
                order.push(i);
            }
        }
        let in_order = fold(events.iter(), 1);
        let shuffled = fold(order.iter().map(|&i| &events[i]), 1);
        prop_assert_eq!(shuffled, in_order, "{} {}", provider, name);
    }

    #[test]
    fn no_provider_parser_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        for provider in Provider::ALL {
            let _ = provider.webhooks().parse(&body, received_at());
            let _ = provider.webhooks().ignorable_prefix(&body);
        }
    }

    #[test]
    fn any_value_at_any_path_of_a_fixture_is_read_leniently(
        (provider, path, body, keeps_identity) in odd_json_payload()
    ) {
        let parsed = provider.webhooks().parse(&body, received_at());
        if keeps_identity {
            prop_assert!(parsed.is_ok(), "{} {}: {:?}", provider, path, parsed.err());
        }
        if let Ok(calltrail_core::providers::Parsed::Event(event)) = parsed {
            prop_assert!(!event.event.execution_id.trim().is_empty());
            prop_assert!(!event.event_type.trim().is_empty());
        }
    }

    #[test]
    fn any_twilio_form_is_read_leniently(
        fields in prop::collection::vec((
            prop_oneof![
                prop::sample::select(vec![
                    "CallSid", "CallStatus", "Direction", "From", "To", "Timestamp",
                    "CallDuration", "SipResponseCode", "RecordingUrl",
                ]).prop_map(str::to_owned),
                "\\PC{0,12}",
            ],
            prop_oneof![
                "\\PC{0,24}",
                Just("outbound-api".to_owned()),
                Just("inbound".to_owned()),
                Just("+14155550132".to_owned()),
                Just("Wed, 08 Oct 2025 09:15:37 +0000".to_owned()),
                "-?[0-9]{1,20}(\\.[0-9]{0,3})?",
            ],
        ), 0..10),
    ) {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let body = crate::twilio::form(&pairs);
        let identified = ["CallSid", "CallStatus"].iter().all(|name| {
            fields.iter().find(|(n, _)| n == name).is_some_and(|(_, v)| !v.trim().is_empty())
        });
        let parsed = Provider::Twilio.webhooks().parse(&body, received_at());
        prop_assert_eq!(parsed.is_ok(), identified, "{:?}", parsed);
    }

    #[test]
    fn no_verifier_panics_on_any_headers_secrets_or_body(
        headers in prop::collection::vec((header_name(), header_value()), 0..6),
        secrets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..3),
        public_url in prop::option::of(prop_oneof![
            "\\PC{0,40}",
            "https?://[a-z.]{1,12}(:[0-9]{1,6})?/[a-z/]{0,12}(\\?[a-z=&]{0,12})?(&bodySHA256=[0-9a-f]{0,64})?",
        ]),
        now_millis in prop_oneof![Just(1_759_914_908_512_i64), -8_000_000_000_000_000_i64..8_000_000_000_000_000],
        body in prop::collection::vec(any::<u8>(), 0..256),
        chunk in 1..64_usize,
    ) {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let pairs: &[(&str, &str)] = &pairs;
        let secrets: Vec<ProviderSecret> = secrets.into_iter().map(ProviderSecret::new).collect();
        let now = DateTime::from_timestamp_millis(now_millis).unwrap_or_else(received_at);
        for provider in Provider::ALL {
            let request = VerifyRequest {
                headers: &pairs,
                secrets: &secrets,
                public_url: public_url.as_deref(),
                now,
            };
            if let Ok(mut verifier) = provider.webhooks().verifier(&request) {
                for part in body.chunks(chunk) {
                    verifier.update(part);
                }
                let _ = verifier.finish();
            }
        }
    }
}

#[test]
fn normalized_events_survive_the_data_column() {
    for (provider, name, bodies) in all_lifecycles() {
        for event in events_of(provider, &bodies) {
            let stored = serde_json::to_string(&event).unwrap();
            let read: CallEvent = serde_json::from_str(&stored).unwrap();
            assert_eq!(read, event, "{provider} {name}: {stored}");
        }
    }
}
