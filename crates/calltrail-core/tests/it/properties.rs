//! Property tests: permutations with duplicates, billing math, and parsing that never panics.

use calltrail_core::billing::{
    charge, duration_minutes, duration_seconds, ledger_entry, LedgerKind,
};
use calltrail_core::providers::bolna;
use calltrail_core::{
    fold, Bounds, CallEvent, CallState, Cost, CostUnit, Ending, LeadType, LifecycleStatus,
    PhoneNumber,
};
use chrono::{Duration, Utc};
use proptest::prelude::*;
use serde_json::Value;

use crate::support::{bare, received_at, scenario, SCENARIOS};

mod providers;

/// Indices of `n` events: each at least once, some repeated, in any order.
pub(crate) fn delivery_order(n: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..n, 0..=2 * n).prop_flat_map(move |extra| {
        let all: Vec<usize> = (0..n).chain(extra).collect();
        Just(all).prop_shuffle()
    })
}

fn fold_in(events: &[CallEvent], order: &[usize]) -> CallState {
    fold(order.iter().map(|&i| &events[i]), 1)
}

fn status_strategy() -> impl Strategy<Value = LifecycleStatus> {
    prop_oneof![
        prop::sample::select(LifecycleStatus::KNOWN.to_vec()),
        Just(LifecycleStatus::Other("voicemail".to_owned())),
    ]
}

fn pick<T: Clone + std::fmt::Debug + 'static>(values: Vec<T>) -> impl Strategy<Value = Option<T>> {
    prop::option::of(prop::sample::select(values))
}

/// Random events of one call; times come from a few seconds so that ties are frequent.
fn event_strategy() -> impl Strategy<Value = CallEvent> {
    let text = |v: &[&'static str]| pick(v.iter().map(|s| (*s).to_owned()).collect());
    (
        (status_strategy(), 0..4_i64, prop::option::of(0..3_i64)),
        (
            text(&["agent-a", "agent-b"]),
            pick(vec!["+14155550132", "+14155550141"]),
        ),
        (
            pick(vec![LeadType::Inbound, LeadType::Outbound]),
            text(&["Callee", "Carrier"]),
        ),
        (
            text(&["hung up", "busy"]),
            pick(vec![0_i64, 3040, 4000]),
            text(&["u1", "u2"]),
        ),
        (
            text(&["t1", "t2"]),
            text(&["Ann", "Bo"]),
            text(&["Acme", "Contoso"]),
        ),
        prop::option::of(prop_oneof![
            4 => prop_oneof![Just(0.0), Just(27.2), Just(61.0)],
            // Out of range: negative, beyond CALLTRAIL_MAX_CALL_SECONDS, absurd, not a number.
            1 => prop_oneof![Just(-3.0), Just(20_000.0), Just(1e15), Just(f64::NAN)],
        ]),
        // Provider times out of range: before 2000, or years after receipt.
        prop_oneof![4 => Just(0_i64), 1 => Just(-900_000_000), 1 => Just(300_000_000)],
        // Endings and costs, with ties in amount between units.
        (
            pick(vec![
                Ending::Voicemail,
                Ending::Transferred,
                Ending::NoAnswer,
                Ending::Failed,
            ]),
            pick(vec![
                Cost {
                    amount: 0.0,
                    unit: CostUnit::Cents,
                },
                Cost {
                    amount: 4.87,
                    unit: CostUnit::Cents,
                },
                Cost {
                    amount: 4.87,
                    unit: CostUnit::Usd,
                },
                Cost {
                    amount: 412.0,
                    unit: CostUnit::Credits,
                },
            ]),
        ),
    )
        .prop_map(
            |(
                (status, t, created),
                (agent, phone),
                (lead, by),
                (reason, code, url),
                (tr, name, company),
                secs,
                skew,
                (ending, cost),
            )| {
                let base = crate::support::utc("2025-10-08T10:00:00");
                let mut e = bare("initiated", "2025-10-08T10:00:00");
                e.status = status;
                e.occurred_at = base + Duration::seconds(t);
                e.call_created_at = created.map(|c| base - Duration::seconds(c));
                e.agent_id = agent;
                e.phone_number = phone.map(|p| PhoneNumber::parse(p).unwrap());
                e.lead_type = lead;
                e.hangup_by = by;
                e.hangup_reason = reason;
                e.hangup_provider_code = code;
                e.recording_url = url;
                e.transcript = tr;
                e.contact_name = name;
                e.contact_company = company;
                e.conversation_seconds = secs;
                e.occurred_at += Duration::seconds(skew);
                e.ending = ending;
                e.cost = cost;
                e.bound(received_at(), &Bounds::default());
                e
            },
        )
}

proptest! {
    #[test]
    fn scenarios_fold_the_same_in_any_order_with_duplicates(
        scenario_index in 0..SCENARIOS.len(),
        seed in delivery_order(5),
    ) {
        let events = scenario(SCENARIOS[scenario_index]);
        // `seed` is drawn for 5 events; keep the indices that exist, then make sure each event is present.
        let mut order: Vec<usize> = seed.into_iter().filter(|&i| i < events.len()).collect();
        for i in 0..events.len() {
            if !order.contains(&i) {
                order.push(i);
            }
        }
        let in_order = fold(&events, 1);
        // The fixtures agree on the duration, so even the charge does not depend on the order.
        prop_assert_eq!(fold_in(&events, &order), in_order);
    }

    #[test]
    fn random_events_fold_the_same_in_any_order_and_the_ledger_sums_to_the_charge(
        (events, order) in prop::collection::vec(event_strategy(), 1..8)
            .prop_flat_map(|events| { let n = events.len(); (Just(events), delivery_order(n)) })
    ) {
        let in_order = fold(&events, 1);
        let shuffled = fold_in(&events, &order);
        prop_assert_eq!(&shuffled, &in_order);

        // The ledger as the projector records it, event by event in delivery order.
        let mut state = CallState::default();
        let mut rows = Vec::new();
        for &i in &order {
            let before = state.charge.map_or(0, |c| c.credits);
            state.apply(&events[i], 1);
            rows.extend(ledger_entry(before, state.charge.map_or(0, |c| c.credits)));
        }
        let total: i64 = rows.iter().map(|(_, amount)| amount).sum();
        prop_assert_eq!(total, -shuffled.charge.map_or(0, |c| c.credits));
        // One usage at most, first, and never more than the longest call allows.
        let max_minutes = duration_minutes(duration_seconds(Bounds::DEFAULT_MAX_CALL_SECONDS));
        prop_assert!(rows.iter().skip(1).all(|(kind, _)| *kind == LedgerKind::Adjustment));
        prop_assert!(rows.iter().all(|(_, amount)| amount.abs() <= max_minutes));
        prop_assert!(rows.iter().all(|(_, amount)| *amount != 0));

        // Nothing out of range survives bounding, and each replacement is noted.
        for e in &events {
            prop_assert!(Bounds::default().trusts(e.occurred_at, received_at()));
            if let Some(secs) = e.conversation_seconds {
                prop_assert!((0.0..=Bounds::DEFAULT_MAX_CALL_SECONDS).contains(&secs));
            }
        }
        let noted = events.iter().any(|e| !e.anomalies.is_empty());
        prop_assert_eq!(!shuffled.anomalies.is_empty(), noted);

        // The lifecycle status is a highest-ranked known status; unknown ones never win.
        let best_rank = events.iter().filter_map(|e| e.status.rank()).max();
        prop_assert_eq!(in_order.lifecycle_status.as_ref().and_then(LifecycleStatus::rank), best_rank);
    }

    #[test]
    fn a_late_ringing_after_busy_leaves_busy(busy_at in 0..100_i64, ringing_at in 0..100_i64, dup in 1..4_usize) {
        let base = crate::support::utc("2025-10-08T10:00:00");
        let mut busy = bare("busy", "2025-10-08T10:00:00");
        busy.occurred_at = base + Duration::seconds(busy_at);
        let mut ringing = bare("ringing", "2025-10-08T10:00:00");
        ringing.occurred_at = base + Duration::seconds(ringing_at);
        let mut log = vec![&busy];
        log.extend(std::iter::repeat_n(&ringing, dup));
        let state = fold(log, 1);
        prop_assert_eq!(state.lifecycle_status, Some(LifecycleStatus::Busy));
        prop_assert_eq!(state.ringing_started_at, Some(ringing.occurred_at));
    }

    #[test]
    fn duration_seconds_is_monotone_and_rounds_up(a in -1e6..1e12_f64, b in -1e6..1e12_f64) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(duration_seconds(lo) <= duration_seconds(hi));
        let s = duration_seconds(hi);
        prop_assert!(s >= 0);
        if hi > 0.0 {
            // s <= 1e12 + 1 < 2^53, so converting it to f64 is exact.
            let s = s.to_string().parse::<f64>().unwrap();
            prop_assert!(hi <= s && s < hi + 1.0);
        }
    }

    #[test]
    fn duration_seconds_is_total(x in any::<f64>()) {
        prop_assert!(duration_seconds(x) >= 0);
    }

    #[test]
    fn whole_seconds_and_whole_minutes_are_exact(k in 0..1_000_000_i32) {
        prop_assert_eq!(duration_seconds(f64::from(k)), i64::from(k));
        let k = i64::from(k);
        prop_assert_eq!(duration_minutes(60 * k), k);
        prop_assert_eq!(duration_minutes(60 * k + 1), k + 1);
    }

    #[test]
    fn duration_minutes_is_monotone(a in any::<i64>(), b in any::<i64>()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(duration_minutes(lo) <= duration_minutes(hi));
        prop_assert!(duration_minutes(lo) >= 0);
    }

    #[test]
    fn charge_is_minutes_times_rate(secs in 0.0..1e7_f64, rate in 0..1000_i64) {
        let c = charge(secs, rate);
        prop_assert_eq!(c.duration_seconds, duration_seconds(secs));
        prop_assert_eq!(c.duration_minutes, duration_minutes(c.duration_seconds));
        prop_assert_eq!(c.credits, c.duration_minutes * rate);
        prop_assert_eq!(charge(0.0, rate).credits, 0);
    }

    #[test]
    fn parse_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(payload) = bolna::parse(&body) {
            let _ = payload.normalize(Utc::now());
        }
    }

    #[test]
    fn parse_never_panics_on_json_objects(
        mut object in prop::collection::btree_map("[a-z_]{1,12}", json_value(), 0..12),
        id in prop::option::of(json_value()),
        status in prop::option::of(json_value()),
    ) {
        if let Some(id) = id { object.insert("id".to_owned(), id); }
        if let Some(status) = status { object.insert("status".to_owned(), status); }
        let body = serde_json::to_vec(&object).unwrap();
        if let Ok(payload) = bolna::parse(&body) {
            prop_assert!(!payload.execution_id().trim().is_empty());
            let _ = payload.normalize(received_at());
        }
    }

    #[test]
    fn any_value_in_a_known_optional_field_keeps_the_payload(
        key in prop::sample::select(vec![
            "agent_id", "created_at", "updated_at", "conversation_duration", "conversation_time",
            "transcript", "user_number", "telephony_data", "context_details", "extracted_data",
        ]),
        nested in prop::sample::select(vec![
            "duration", "to_number", "from_number", "call_type", "hangup_by",
            "hangup_provider_code", "recording_url", "recipient_data",
        ]),
        value in json_value(),
    ) {
        let mut payload: Value = serde_json::from_slice(&calltrail_fixtures::read("bolna/success/05-completed.json")).unwrap();
        payload["telephony_data"][nested] = value.clone();
        payload["context_details"][nested] = value.clone();
        payload[key] = value;
        let parsed = bolna::parse(payload.to_string().as_bytes());
        prop_assert!(parsed.is_ok(), "{:?}", parsed.err());
    }

    #[test]
    fn phone_parse_never_panics_and_output_is_e164(s in "[+0-9 ().-]{0,24}|\\PC{0,24}") {
        if let Ok(phone) = PhoneNumber::parse(&s) {
            let text = phone.as_str();
            prop_assert!(text.starts_with('+'));
            prop_assert!((9..=16).contains(&text.len()));
            prop_assert!(text[1..].bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(PhoneNumber::parse(text).ok(), Some(phone.clone()));
        }
    }
}

/// Arbitrary JSON values, nested a few levels.
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "\\PC{0,16}".prop_map(Value::String),
        Just(Value::String("2025-10-08T09:15:36.771340".to_owned())),
        Just(Value::String("28".to_owned())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
