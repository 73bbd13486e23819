//! Lifecycle statuses: parsing, spelling, rank and the user-facing status.

use calltrail_core::{CallState, CallStatus, LifecycleStatus};

#[test]
fn parse_and_as_str_round_trip_every_known_status() {
    for status in LifecycleStatus::KNOWN {
        assert_eq!(&LifecycleStatus::parse(status.as_str()), status);
    }
}

#[test]
fn parse_trims_lowercases_and_accepts_balance_low() {
    assert_eq!(
        LifecycleStatus::parse(" In-Progress\n"),
        LifecycleStatus::InProgress
    );
    assert_eq!(
        LifecycleStatus::parse("balance_low"),
        LifecycleStatus::BalanceLow
    );
    assert_eq!(
        LifecycleStatus::parse("BALANCE-LOW"),
        LifecycleStatus::BalanceLow
    );
    assert_eq!(LifecycleStatus::BalanceLow.as_str(), "balance-low");
}

#[test]
fn unknown_status_is_kept_verbatim() {
    let other = LifecycleStatus::parse(" Voicemail ");
    assert_eq!(other, LifecycleStatus::Other(" Voicemail ".to_owned()));
    assert_eq!(other.as_str(), " Voicemail ");
    assert_eq!(other.rank(), None);
    assert!(!other.is_terminal());
    assert_eq!(other.call_status(), CallStatus::InProgress);
}

#[test]
fn ranks_follow_the_documented_order() {
    let rank = |s: &str| LifecycleStatus::parse(s).rank();
    assert!(rank("scheduled") < rank("queued"));
    assert_eq!(rank("queued"), rank("rescheduled"));
    assert!(rank("rescheduled") < rank("initiated"));
    assert!(rank("initiated") < rank("ringing"));
    assert!(rank("ringing") < rank("in-progress"));
    assert!(rank("in-progress") < rank("call-disconnected"));
    for status in LifecycleStatus::KNOWN {
        assert_eq!(status.is_terminal(), status.rank() == Some(6), "{status}");
    }
}

#[test]
fn call_status_mapping() {
    let map = |s: &str| LifecycleStatus::parse(s).call_status().as_str();
    assert_eq!(map("completed"), "completed");
    for s in ["no-answer", "busy", "failed", "error", "balance-low"] {
        assert_eq!(map(s), "failed", "{s}");
    }
    for s in ["canceled", "stopped"] {
        assert_eq!(map(s), "cancelled", "{s}");
    }
    for s in [
        "scheduled",
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "call-disconnected",
    ] {
        assert_eq!(map(s), "in_progress", "{s}");
    }
    assert_eq!(CallState::default().status(), CallStatus::InProgress);
}

#[test]
fn serde_uses_provider_spelling() {
    let json = serde_json::to_string(&LifecycleStatus::CallDisconnected).ok();
    assert_eq!(json.as_deref(), Some("\"call-disconnected\""));
    let back: Option<LifecycleStatus> = serde_json::from_str("\"balance_low\"").ok();
    assert_eq!(back, Some(LifecycleStatus::BalanceLow));
    let json = serde_json::to_string(&CallStatus::InProgress).ok();
    assert_eq!(json.as_deref(), Some("\"in_progress\""));
}
