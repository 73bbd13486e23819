//! Vapi calls out of `fixtures/vapi/`: the fixture's status update and end-of-call report, and
//! the other messages of the same call made from them.

use serde_json::{json, Value};

/// The fixtures' call id (`message.call.id`).
pub const CALL_ID: &str = "6f2b9c1e-4d7a-4e83-b05f-9a1c3d8e2f47";
/// The fixtures' assistant id (`message.call.assistantId`).
pub const ASSISTANT_ID: &str = "8d4c2a7e-93f1-4b6d-a0e5-17c9b2f84e3a";

/// A `status-update` of the fixture call with `status` at `timestamp_ms`; an `ended` one
/// carries `ended_reason`.
pub fn status_update(status: &str, timestamp_ms: i64, ended_reason: Option<&str>) -> Vec<u8> {
    let mut raw = crate::json("vapi/status-update.json");
    raw["message"]["status"] = json!(status);
    raw["message"]["timestamp"] = json!(timestamp_ms);
    if let Some(reason) = ended_reason {
        raw["message"]["endedReason"] = json!(reason);
    }
    raw.to_string().into_bytes()
}

/// The fixture's `end-of-call-report` ending with `ended_reason` after no talk time (no
/// artifact, `endedAt` = `startedAt`).
pub fn unanswered_report(ended_reason: &str) -> Vec<u8> {
    let mut raw = crate::json("vapi/end-of-call-report.json");
    let m = &mut raw["message"];
    m["endedReason"] = json!(ended_reason);
    m["durationSeconds"] = json!(0);
    m["endedAt"] = m["startedAt"].clone();
    m["artifact"] = json!({});
    raw.to_string().into_bytes()
}

/// The answered call in delivery order: `queued`, `ringing`, the fixture's `in-progress`,
/// `ended`, the fixture's `end-of-call-report` (28.999 s, transcript, recording).
pub fn answered() -> Vec<Vec<u8>> {
    vec![
        status_update("queued", 1_759_914_899_000, None),
        status_update("ringing", 1_759_914_901_000, None),
        crate::read("vapi/status-update.json"),
        status_update("ended", 1_759_914_937_500, Some("customer-ended-call")),
        crate::read("vapi/end-of-call-report.json"),
    ]
}

/// The same call unanswered: `queued`, `ringing`, `ended` and a report with
/// `customer-did-not-answer`.
pub fn no_answer() -> Vec<Vec<u8>> {
    vec![
        status_update("queued", 1_759_914_899_000, None),
        status_update("ringing", 1_759_914_901_000, None),
        status_update("ended", 1_759_914_931_000, Some("customer-did-not-answer")),
        unanswered_report("customer-did-not-answer"),
    ]
}

/// A message about the call that says nothing about its lifecycle (`transcript`,
/// `speech-update`, `conversation-update`, …).
pub fn informational(kind: &str) -> Vec<u8> {
    json!({"message": {
        "type": kind,
        "timestamp": 1_759_914_915_000_i64,
        "role": "user",
        "transcriptType": "final",
        "transcript": "Yes, speaking.",
        "status": "started",
        "call": {"id": CALL_ID, "assistantId": ASSISTANT_ID},
    }})
    .to_string()
    .into_bytes()
}

/// Gives a Vapi message the call id `id` (and the customer number `phone`, when given).
pub fn as_call(payload: &mut Value, id: &str, phone: Option<&str>) {
    payload["message"]["call"]["id"] = Value::from(id);
    if let Some(phone) = phone {
        payload["message"]["call"]["customer"]["number"] = Value::from(phone);
        payload["message"]["customer"]["number"] = Value::from(phone);
    }
}
