//! How each provider's webhooks say a call ended (`CallEvent::ending`) and what it cost
//! (`CallEvent::cost`), and how the fold keeps both whatever the delivery order.

use calltrail_core::{fold, CallEvent, Cost, CostUnit, Ending, LifecycleStatus, Provider};
use calltrail_fixtures as fixtures;
use serde_json::json;

use crate::support::{bare, event, parse_event, scenario, Lifecycles};

/// Every lifecycle of a provider folded, by name: (name, ending, cost).
fn folded(
    provider: Provider,
    lifecycles: Lifecycles,
) -> Vec<(&'static str, Option<Ending>, Option<Cost>)> {
    lifecycles
        .into_iter()
        .map(|(name, bodies)| {
            let events: Vec<CallEvent> = bodies
                .iter()
                .map(|b| parse_event(provider, b).event)
                .collect();
            let state = fold(&events, 1);
            (name, state.ending, state.cost)
        })
        .collect()
}

fn cost(amount: f64, unit: CostUnit) -> Option<Cost> {
    Some(Cost { amount, unit })
}

#[test]
fn bolna_endings_come_from_the_status_voicemail_and_transfer_fields_and_cost_in_cents() {
    let success = fold(&scenario("bolna/success"), 1);
    assert_eq!(success.ending, None, "a conversation that ended normally");
    assert_eq!(
        success.cost,
        cost(4.87, CostUnit::Cents),
        "05-completed's total_cost"
    );
    let no_answer = fold(&scenario("bolna/no-answer"), 1);
    assert_eq!(no_answer.ending, Some(Ending::NoAnswer));
    assert_eq!(
        no_answer.cost,
        cost(0.0, CostUnit::Cents),
        "terminal: 0 is the cost"
    );
    assert_eq!(fold(&scenario("bolna/busy"), 1).ending, Some(Ending::Busy));
    // Before the terminal status, Bolna's 0 means "not computed yet": no cost.
    assert_eq!(event("bolna/success/03-in-progress.json").cost, None);

    let completed = |edit: serde_json::Value| {
        let mut raw = fixtures::json("bolna/success/05-completed.json");
        for (k, v) in edit.as_object().into_iter().flatten() {
            raw[k] = v.clone();
        }
        parse_event(Provider::Bolna, raw.to_string().as_bytes()).event
    };
    assert_eq!(
        completed(json!({"answered_by_voice_mail": true})).ending,
        Some(Ending::Voicemail)
    );
    let transfer =
        json!({"transfer_call_data": {"status": "completed", "to_number": "+14155550100"}});
    assert_eq!(completed(transfer).ending, Some(Ending::Transferred));
    assert_eq!(
        completed(json!({"transfer_call_data": {"status": null}})).ending,
        None,
        "an empty transfer record is no transfer"
    );
    let mut error = fixtures::json("bolna/no-answer/03-no-answer.json");
    error["status"] = json!("error");
    let error = parse_event(Provider::Bolna, error.to_string().as_bytes()).event;
    assert_eq!(error.ending, Some(Ending::Failed));
}

#[test]
fn vapi_endings_come_from_ended_reason_and_cost_in_usd() {
    let calls = folded(Provider::Vapi, crate::vapi::lifecycles());
    let expected = [
        ("answered", None, cost(0.0473, CostUnit::Usd)),
        (
            "no-answer",
            Some(Ending::NoAnswer),
            cost(0.0473, CostUnit::Usd),
        ),
        ("busy", Some(Ending::Busy), cost(0.0473, CostUnit::Usd)),
        ("failed", Some(Ending::Failed), cost(0.0473, CostUnit::Usd)),
        (
            "voicemail",
            Some(Ending::Voicemail),
            cost(0.0473, CostUnit::Usd),
        ),
        (
            "forwarded",
            Some(Ending::Transferred),
            cost(0.0473, CostUnit::Usd),
        ),
    ];
    assert_eq!(calls, expected);
    // A status update carries no cost, only the report does.
    let ended = parse_event(Provider::Vapi, &fixtures::read("vapi/status-update.json")).event;
    assert_eq!(ended.cost, None);
}

#[test]
fn retell_endings_come_from_disconnection_reason_voicemail_and_transfers_and_cost_in_cents() {
    let calls = folded(Provider::Retell, crate::retell::lifecycles());
    let expected = [
        ("answered", None, cost(6.45, CostUnit::Cents)),
        (
            "no-answer",
            Some(Ending::NoAnswer),
            cost(0.0, CostUnit::Cents),
        ),
        ("busy", Some(Ending::Busy), cost(0.0, CostUnit::Cents)),
        (
            "transferred",
            Some(Ending::Transferred),
            cost(6.45, CostUnit::Cents),
        ),
        (
            "voicemail",
            Some(Ending::Voicemail),
            cost(6.45, CostUnit::Cents),
        ),
    ];
    assert_eq!(calls, expected);
    let reached = crate::retell::answered_with("voicemail_reached", "call_ended", false);
    let reached = parse_event(Provider::Retell, &reached).event;
    assert_eq!(reached.ending, Some(Ending::Voicemail));
    let dial_failed = crate::retell::answered_with("dial_failed", "call_ended", false);
    assert_eq!(
        parse_event(Provider::Retell, &dial_failed).event.ending,
        Some(Ending::Failed)
    );
}

#[test]
fn twilio_endings_come_from_call_status_and_answered_by_and_it_reports_no_cost() {
    let calls = folded(Provider::Twilio, crate::twilio::lifecycles());
    let expected = [
        ("answered", None, None),
        ("no-answer", Some(Ending::NoAnswer), None),
        ("busy", Some(Ending::Busy), None),
        ("failed", Some(Ending::Failed), None),
        ("canceled", None, None),
        ("answered-by-machine", Some(Ending::Voicemail), None),
    ];
    assert_eq!(calls, expected);
}

#[test]
fn elevenlabs_endings_come_from_failures_and_termination_reason_and_cost_in_credits() {
    let calls = folded(Provider::ElevenLabs, crate::elevenlabs::lifecycles());
    let expected = [
        ("answered", None, cost(412.0, CostUnit::Credits)),
        ("busy", Some(Ending::Busy), None),
        ("no-answer", Some(Ending::NoAnswer), None),
        ("failed", Some(Ending::Failed), None),
    ];
    assert_eq!(calls, expected);
    for (reason, ending) in [
        ("Voicemail detected by the agent", Some(Ending::Voicemail)),
        (
            "Call transferred to +14155550100",
            Some(Ending::Transferred),
        ),
        ("Call ended by remote party", None),
    ] {
        let mut raw = fixtures::json("elevenlabs/post_call_transcription.json");
        raw["data"]["metadata"]["termination_reason"] = json!(reason);
        let event = parse_event(Provider::ElevenLabs, raw.to_string().as_bytes()).event;
        assert_eq!(event.ending, ending, "{reason}");
    }
}

#[test]
fn an_event_recorded_before_endings_existed_ends_as_its_status_says() {
    for (status, ending) in [
        ("no-answer", Some(Ending::NoAnswer)),
        ("busy", Some(Ending::Busy)),
        ("failed", Some(Ending::Failed)),
        ("error", Some(Ending::Failed)),
        ("balance-low", Some(Ending::Failed)),
        ("completed", None),
        ("canceled", None),
    ] {
        let old = bare(status, "2025-10-08T10:00:05");
        assert_eq!(old.ending, None);
        assert_eq!(fold([&old], 1).ending, ending, "{status}");
    }
}

#[test]
fn the_latest_ending_wins_whatever_the_order() {
    let mut ringing = bare("in-progress", "2025-10-08T10:00:05");
    ringing.ending = Some(Ending::Voicemail);
    let mut completed = bare("completed", "2025-10-08T10:00:40");
    completed.ending = Some(Ending::Transferred);
    completed.cost = cost(6.45, CostUnit::Cents);
    let a = fold([&ringing, &completed], 1);
    let b = fold([&completed, &ringing, &completed], 1);
    assert_eq!(a, b);
    assert_eq!(a.ending, Some(Ending::Transferred));
    assert_eq!(a.cost, cost(6.45, CostUnit::Cents));
    assert_eq!(a.lifecycle_status, Some(LifecycleStatus::Completed));
}
