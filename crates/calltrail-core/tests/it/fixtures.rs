//! Every Bolna fixture parses and normalizes to the expected `CallEvent`.

use std::path::Path;

use calltrail_core::providers::bolna;
use calltrail_core::{
    CallEvent, Cost, CostUnit, Ending, LeadType, LifecycleStatus, PhoneNumber, Provider,
};

use calltrail_fixtures as fixtures;

use crate::support::utc;

/// The per-call constants of a scenario.
struct Call {
    id: &'static str,
    created_at: &'static str,
    phone: &'static str,
    name: &'static str,
    company: &'static str,
}

const SUCCESS: Call = Call {
    id: "b3f1c2d4-7a8e-4c61-9f25-3e0d8a6b51c7",
    created_at: "2025-10-08T09:14:58.412903",
    phone: "+14155550132",
    name: "Rohan Mehta",
    company: "Acme Logistics",
};
const NO_ANSWER: Call = Call {
    id: "d7a9e3b2-1f64-4c8a-b5e0-6a2f9c81d437",
    created_at: "2025-10-08T10:02:11.904377",
    phone: "+14155550141",
    name: "Priya Nair",
    company: "Northwind Traders",
};
const BUSY: Call = Call {
    id: "5c0e8f17-a2d3-4b96-8e41-f7b3d2a90c65",
    created_at: "2025-10-08T10:05:40.215088",
    phone: "+14155550163",
    name: "Diego Alvarez",
    company: "Contoso Freight",
};

const RECORDING: &str = "https://bolna-recordings-india.s3.ap-south-1.amazonaws.com/plivo/4f8c2e1a-93b7-4d05-8e6a-1c27b9d0f3a4.mp3";

/// One row of the expectation table.
struct Expected {
    file: &'static str,
    call: &'static Call,
    status: LifecycleStatus,
    updated_at: &'static str,
    conversation_seconds: f64,
    hangup: Option<(&'static str, &'static str, i64)>,
    recording_url: Option<&'static str>,
    has_transcript: bool,
}

fn table() -> Vec<Expected> {
    use LifecycleStatus as S;
    let row = |file, call, status, updated_at, conversation_seconds| Expected {
        file,
        call,
        status,
        updated_at,
        conversation_seconds,
        hangup: None,
        recording_url: None,
        has_transcript: false,
    };
    vec![
        row(
            "bolna/success/01-initiated.json",
            &SUCCESS,
            S::Initiated,
            "2025-10-08T09:15:00.118274",
            0.0,
        ),
        row(
            "bolna/success/02-ringing.json",
            &SUCCESS,
            S::Ringing,
            "2025-10-08T09:15:02.947016",
            0.0,
        ),
        row(
            "bolna/success/03-in-progress.json",
            &SUCCESS,
            S::InProgress,
            "2025-10-08T09:15:08.306552",
            0.0,
        ),
        Expected {
            has_transcript: true,
            ..row(
                "bolna/success/04-call-disconnected.json",
                &SUCCESS,
                S::CallDisconnected,
                "2025-10-08T09:15:36.771340",
                27.2,
            )
        },
        Expected {
            has_transcript: true,
            hangup: Some(("Callee", "Call recipient hung up", 4000)),
            recording_url: Some(RECORDING),
            ..row(
                "bolna/success/05-completed.json",
                &SUCCESS,
                S::Completed,
                "2025-10-08T09:28:12.540198",
                27.2,
            )
        },
        row(
            "bolna/no-answer/01-initiated.json",
            &NO_ANSWER,
            S::Initiated,
            "2025-10-08T10:02:13.660921",
            0.0,
        ),
        row(
            "bolna/no-answer/02-ringing.json",
            &NO_ANSWER,
            S::Ringing,
            "2025-10-08T10:02:15.802455",
            0.0,
        ),
        Expected {
            hangup: Some(("Carrier", "Call unanswered", 3010)),
            ..row(
                "bolna/no-answer/03-no-answer.json",
                &NO_ANSWER,
                S::NoAnswer,
                "2025-10-08T10:02:58.127903",
                0.0,
            )
        },
        row(
            "bolna/busy/01-initiated.json",
            &BUSY,
            S::Initiated,
            "2025-10-08T10:05:41.993612",
            0.0,
        ),
        row(
            "bolna/busy/02-ringing.json",
            &BUSY,
            S::Ringing,
            "2025-10-08T10:05:44.120470",
            0.0,
        ),
        Expected {
            hangup: Some(("Carrier", "Call recipient was busy", 3040)),
            ..row(
                "bolna/busy/03-busy.json",
                &BUSY,
                S::Busy,
                "2025-10-08T10:06:04.468215",
                0.0,
            )
        },
    ]
}

/// The transcript as the fixture holds it, read through plain `serde_json`, not the parser under test.
fn raw_transcript(file: &str) -> String {
    let value: serde_json::Value = serde_json::from_slice(&fixtures::read(file)).unwrap();
    value["transcript"].as_str().unwrap().to_owned()
}

fn expected_event(e: &Expected) -> CallEvent {
    let transcript = e.has_transcript.then(|| raw_transcript(e.file));
    if let Some(t) = &transcript {
        assert!(t.starts_with("assistant: Hi, this is Maya"), "{t}");
    }
    CallEvent {
        provider: Provider::Bolna,
        execution_id: e.call.id.to_owned(),
        status: e.status.clone(),
        occurred_at: utc(e.updated_at),
        call_created_at: Some(utc(e.call.created_at)),
        agent_id: Some("9e2a4f70-5c13-4b8e-a1d6-72f04c3b9e18".to_owned()),
        phone_number: Some(PhoneNumber::parse(e.call.phone).unwrap()),
        lead_type: Some(LeadType::Outbound),
        conversation_seconds: Some(e.conversation_seconds),
        hangup_by: e.hangup.map(|h| h.0.to_owned()),
        hangup_reason: e.hangup.map(|h| h.1.to_owned()),
        hangup_provider_code: e.hangup.map(|h| h.2),
        recording_url: e.recording_url.map(str::to_owned),
        transcript,
        contact_name: Some(e.call.name.to_owned()),
        contact_company: Some(e.call.company.to_owned()),
        contact_email: e
            .file
            .ends_with("success/05-completed.json")
            .then(|| "rohan@acme-logistics.example".to_owned()),
        batch_id: None,
        anomalies: Vec::new(),
        ending: Ending::of_status(&e.status),
        // `total_cost` counts at a terminal status only (0 before post-processing ends).
        cost: e.status.is_terminal().then(|| Cost {
            amount: if e.file.ends_with("05-completed.json") {
                4.87
            } else {
                0.0
            },
            unit: CostUnit::Cents,
        }),
    }
}

#[test]
fn every_fixture_normalizes_to_the_expected_event() {
    let table = table();
    let files = fixtures::files("bolna");
    let mut listed: Vec<&Path> = table.iter().map(|e| Path::new(e.file)).collect();
    listed.sort();
    assert_eq!(files, listed, "the table must cover every fixture file");
    for e in &table {
        let payload =
            bolna::parse(&fixtures::read(e.file)).unwrap_or_else(|err| panic!("{}: {err}", e.file));
        assert_eq!(payload.execution_id(), e.call.id, "{}", e.file);
        assert_eq!(payload.status(), e.status, "{}", e.file);
        assert_eq!(
            payload.agent_id(),
            Some("9e2a4f70-5c13-4b8e-a1d6-72f04c3b9e18")
        );
        let event = payload.normalize(crate::support::received_at());
        assert_eq!(event, expected_event(e), "{}", e.file);
    }
}

#[test]
fn completed_fixture_keeps_the_fields_we_do_not_model() {
    let payload = bolna::parse(&fixtures::read("bolna/success/05-completed.json")).unwrap();
    let telephony = payload.telephony_data.as_ref().unwrap();
    assert_eq!(
        telephony.duration,
        Some(28.0),
        "\"28\" is a number sent as a string"
    );
    assert_eq!(
        telephony.provider_call_id.as_deref(),
        Some("4f8c2e1a-93b7-4d05-8e6a-1c27b9d0f3a4")
    );
    assert_eq!(payload.total_cost, Some(4.87));
    assert!(payload
        .summary
        .as_deref()
        .unwrap()
        .starts_with("Rohan (Acme Logistics"));
    assert_eq!(payload.extracted_data.as_ref().unwrap()["team_size"], 12);
    let recipient = payload
        .context_details
        .as_ref()
        .unwrap()
        .recipient_data
        .as_ref()
        .unwrap();
    assert_eq!(recipient.lead_name.as_deref(), Some("Rohan Mehta"));
    assert_eq!(recipient.company.as_deref(), Some("Acme Logistics"));
}
