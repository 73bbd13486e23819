//! Folding the fixture scenarios and hand-written edge cases.

use calltrail_core::lifecycle::Charge;
use calltrail_core::{fold, Anomaly, Bounds, CallState, CallStatus, LeadType, LifecycleStatus};

use crate::support::{bare, scenario, utc};

#[test]
fn success_scenario_folds_to_a_completed_charged_call() {
    let state = fold(&scenario("bolna/success"), 1);
    assert_eq!(state.lifecycle_status, Some(LifecycleStatus::Completed));
    assert_eq!(state.status(), CallStatus::Completed);
    assert!(state.is_terminal());
    let charge = Charge {
        duration_seconds: 28,
        duration_minutes: 1,
        credits: 1,
    };
    assert_eq!(state.charge, Some(charge));
    assert_eq!(state.hangup_by.as_deref(), Some("Callee"));
    assert_eq!(
        state.hangup_reason.as_deref(),
        Some("Call recipient hung up")
    );
    assert_eq!(state.hangup_provider_code, Some(4000));
    assert!(state
        .recording_url
        .as_deref()
        .unwrap()
        .ends_with("4f8c2e1a-93b7-4d05-8e6a-1c27b9d0f3a4.mp3"));
    assert_eq!(
        state.ringing_started_at,
        Some(utc("2025-10-08T09:15:02.947016"))
    );
    assert_eq!(
        state.call_answered_at,
        Some(utc("2025-10-08T09:15:08.306552"))
    );
    assert_eq!(
        state.call_disconnected_at,
        Some(utc("2025-10-08T09:15:36.771340"))
    );
    assert_eq!(state.completed_at, Some(utc("2025-10-08T09:28:12.540198")));
    assert_eq!(state.created_at, Some(utc("2025-10-08T09:14:58.412903")));
    assert_eq!(
        state.phone_number.as_ref().map(|p| p.as_str()),
        Some("+14155550132")
    );
    assert_eq!(state.lead_type, Some(LeadType::Outbound));
    assert_eq!(
        state.agent_id.as_deref(),
        Some("9e2a4f70-5c13-4b8e-a1d6-72f04c3b9e18")
    );
    assert!(state
        .transcript
        .as_deref()
        .unwrap()
        .ends_with("user: Thanks, bye.\n"));
    assert_eq!(state.contact_name.as_deref(), Some("Rohan Mehta"));
    assert_eq!(state.contact_company.as_deref(), Some("Acme Logistics"));
}

#[test]
fn the_rate_scales_the_charge() {
    let state = fold(&scenario("bolna/success"), 3);
    assert_eq!(state.charge.map(|c| c.credits), Some(3));
}

#[test]
fn missed_scenarios_fold_to_failed_uncharged_calls() {
    for (name, status, reason, code) in [
        (
            "bolna/no-answer",
            LifecycleStatus::NoAnswer,
            "Call unanswered",
            3010,
        ),
        (
            "bolna/busy",
            LifecycleStatus::Busy,
            "Call recipient was busy",
            3040,
        ),
    ] {
        let state = fold(&scenario(name), 1);
        assert_eq!(state.lifecycle_status, Some(status), "{name}");
        assert_eq!(state.status(), CallStatus::Failed, "{name}");
        assert_eq!(state.charge, None, "{name}");
        assert_eq!(state.hangup_by.as_deref(), Some("Carrier"), "{name}");
        assert_eq!(state.hangup_reason.as_deref(), Some(reason), "{name}");
        assert_eq!(state.hangup_provider_code, Some(code), "{name}");
        assert!(state.ringing_started_at.is_some(), "{name}");
        assert_eq!(state.call_answered_at, None, "{name}");
        assert_eq!(state.completed_at, None, "{name}");
        assert_eq!(state.recording_url, None, "{name}");
        assert_eq!(state.transcript, None, "{name}");
    }
}

#[test]
fn late_ringing_never_moves_a_call_back_from_busy() {
    let busy = bare("busy", "2025-10-08T10:06:04");
    let late_ringing = bare("ringing", "2025-10-08T10:07:00");
    let state = fold(
        [
            &bare("initiated", "2025-10-08T10:05:41"),
            &busy,
            &late_ringing,
        ],
        1,
    );
    assert_eq!(state.lifecycle_status, Some(LifecycleStatus::Busy));
    assert_eq!(state.ringing_started_at, Some(utc("2025-10-08T10:07:00")));
}

#[test]
fn unknown_statuses_never_change_the_lifecycle_status() {
    let state = fold(
        [
            &bare("ringing", "2025-10-08T10:00:01"),
            &bare("voicemail-detected", "2025-10-08T10:09:00"),
        ],
        1,
    );
    assert_eq!(state.lifecycle_status, Some(LifecycleStatus::Ringing));

    let only_unknown = fold([&bare("voicemail-detected", "2025-10-08T10:09:00")], 1);
    assert_eq!(only_unknown.lifecycle_status, None);
    assert_eq!(only_unknown.status(), CallStatus::InProgress);
    assert_eq!(only_unknown.created_at, Some(utc("2025-10-08T10:09:00")));
}

#[test]
fn equal_ranks_are_settled_by_event_time_whatever_the_order() {
    let busy = bare("busy", "2025-10-08T10:00:05");
    let completed = bare("completed", "2025-10-08T10:00:09");
    assert_eq!(
        fold([&busy, &completed], 1).lifecycle_status,
        Some(LifecycleStatus::Completed)
    );
    assert_eq!(
        fold([&completed, &busy], 1).lifecycle_status,
        Some(LifecycleStatus::Completed)
    );

    let queued = bare("queued", "2025-10-08T10:00:00");
    let rescheduled = bare("rescheduled", "2025-10-08T10:00:00");
    let a = fold([&queued, &rescheduled], 1);
    let b = fold([&rescheduled, &queued], 1);
    assert_eq!(a, b);
    assert_eq!(
        a.lifecycle_status,
        Some(LifecycleStatus::Rescheduled),
        "same time: greater string"
    );
}

#[test]
fn optional_fields_come_from_the_highest_precedence_event() {
    let mut disconnected = bare("call-disconnected", "2025-10-08T10:00:30");
    disconnected.hangup_reason = Some("from disconnected".to_owned());
    disconnected.agent_id = Some("agent-a".to_owned());
    let mut completed = bare("completed", "2025-10-08T10:03:00");
    completed.hangup_reason = Some("from completed".to_owned());
    for state in [
        fold([&disconnected, &completed], 1),
        fold([&completed, &disconnected], 1),
    ] {
        assert_eq!(state.hangup_reason.as_deref(), Some("from completed"));
        assert_eq!(
            state.agent_id.as_deref(),
            Some("agent-a"),
            "null never erases a value"
        );
    }
}

#[test]
fn the_final_duration_fixes_the_charge_in_any_order() {
    let mut disconnected = bare("call-disconnected", "2025-10-08T10:00:30");
    disconnected.conversation_seconds = Some(27.2);
    let mut completed = bare("completed", "2025-10-08T10:03:00");
    completed.conversation_seconds = Some(65.0);
    let mut ringing = bare("ringing", "2025-10-08T10:00:01");
    ringing.conversation_seconds = Some(500.0);

    let seconds = |state: CallState| {
        state
            .charge
            .map(|c| (c.duration_seconds, c.duration_minutes, c.credits))
    };
    // `completed`'s duration wins, whichever arrives first; a ringing's is never a charge.
    assert_eq!(
        seconds(fold([&ringing, &disconnected, &completed], 2)),
        Some((65, 2, 4))
    );
    assert_eq!(
        seconds(fold([&completed, &disconnected, &ringing], 2)),
        Some((65, 2, 4))
    );
    assert_eq!(
        seconds(fold([&ringing, &disconnected], 2)),
        Some((28, 1, 2)),
        "without a completed, the disconnect's duration charges"
    );

    // Bolna's `call-disconnected` says 0 until post-processing ends: that fixes nothing.
    disconnected.conversation_seconds = Some(0.0);
    assert_eq!(seconds(fold([&disconnected], 1)), None);
    assert_eq!(
        seconds(fold([&disconnected, &completed], 1)),
        Some((65, 2, 2))
    );

    completed.conversation_seconds = None;
    disconnected.conversation_seconds = Some(27.2);
    assert_eq!(
        seconds(fold([&completed, &disconnected], 1)),
        Some((28, 1, 1)),
        "a completed without a duration leaves the disconnect's"
    );

    completed.conversation_seconds = Some(0.0);
    assert_eq!(
        seconds(fold([&disconnected, &completed], 1)),
        Some((0, 0, 0)),
        "a completed that says 0 costs 0"
    );
}

#[test]
fn out_of_range_values_are_bounded_and_noted() {
    let received = utc("2025-10-08T10:05:00");
    let bounds = Bounds::default();

    let mut absurd = bare("completed", "2025-10-08T10:03:00");
    absurd.conversation_seconds = Some(1e15);
    absurd.bound(received, &bounds);
    assert_eq!(absurd.conversation_seconds, None);
    assert_eq!(absurd.anomalies, vec![Anomaly::DurationOutOfRange]);
    let state = fold([&absurd], 1);
    assert_eq!(state.charge, None, "no charge from an untrusted duration");
    assert_eq!(
        state.anomalies.into_iter().collect::<Vec<_>>(),
        vec![Anomaly::DurationOutOfRange]
    );

    // Longer than the call's own timestamps allow (created 10:00, event 10:03, 300 s slack).
    let mut long = bare("completed", "2025-10-08T10:03:00");
    long.call_created_at = Some(utc("2025-10-08T10:00:00"));
    long.conversation_seconds = Some(600.0);
    long.bound(received, &bounds);
    assert_eq!(long.conversation_seconds, None);
    let mut fits = bare("completed", "2025-10-08T10:03:00");
    fits.call_created_at = Some(utc("2025-10-08T10:00:00"));
    fits.conversation_seconds = Some(179.5);
    fits.bound(received, &bounds);
    assert_eq!(fits.conversation_seconds, Some(179.5));
    assert!(fits.anomalies.is_empty());

    let mut negative = bare("call-disconnected", "2025-10-08T10:03:00");
    negative.conversation_seconds = Some(-4.0);
    negative.bound(received, &bounds);
    assert_eq!(negative.conversation_seconds, None);

    let mut future = bare("ringing", "9999-12-31T23:59:59");
    future.call_created_at = Some(utc("1970-01-01T00:00:00"));
    future.bound(received, &bounds);
    assert_eq!(future.occurred_at, received);
    assert_eq!(future.call_created_at, None);
    assert_eq!(future.anomalies, vec![Anomaly::TimestampOutOfRange]);
    // Bounding again changes nothing.
    let again = future.clone();
    future.bound(received, &bounds);
    assert_eq!(future, again);
}

#[test]
fn created_at_prefers_the_providers_creation_time() {
    let mut early = bare("initiated", "2025-10-08T10:00:02");
    early.call_created_at = Some(utc("2025-10-08T10:00:00"));
    let mut later = bare("ringing", "2025-10-08T10:00:05");
    later.call_created_at = Some(utc("2025-10-08T10:00:01"));
    assert_eq!(
        fold([&later, &early], 1).created_at,
        Some(utc("2025-10-08T10:00:00"))
    );

    let no_created = [
        bare("ringing", "2025-10-08T10:00:05"),
        bare("initiated", "2025-10-08T10:00:02"),
    ];
    assert_eq!(
        fold(&no_created, 1).created_at,
        Some(utc("2025-10-08T10:00:02"))
    );
}

#[test]
fn a_stored_state_takes_further_events_as_if_folded_at_once() {
    let events = scenario("bolna/success");
    let (head, tail) = events.split_at(2);
    let stored = serde_json::to_string(&fold(tail, 1)).unwrap();
    let mut state: CallState = serde_json::from_str(&stored).unwrap();
    for event in head {
        state.apply(event, 1);
    }
    assert_eq!(state, fold(&events, 1));
}
