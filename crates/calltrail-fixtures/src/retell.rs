//! Retell calls out of `fixtures/retell/`: the answered and unanswered scenarios, and the
//! messages Retell sends besides them.

use serde_json::{json, Value};

/// The answered fixture call's id (`call.call_id`).
pub const ANSWERED_ID: &str = "Jx4b8KzQ2mW7rTn5vYc3Lp9dHs6fGa1e";
/// The unanswered fixture call's id.
pub const NO_ANSWER_ID: &str = "Qm7c2VxR9tLs4nWb8Ke1Hd5gYp3Zf6Ja";
/// The fixtures' agent id.
pub const AGENT_ID: &str = "agent_5c1e9a7b3d2f4e6a8b0c1d2e3f";

/// The answered call in delivery order: `call_started`, `call_ended`, `call_analyzed`.
pub fn answered() -> Vec<Vec<u8>> {
    crate::scenario("retell/answered")
}

/// The unanswered call: `call_ended` with `dial_no_answer`, then `call_analyzed`.
pub fn no_answer() -> Vec<Vec<u8>> {
    crate::scenario("retell/no-answer")
}

/// A `transcript_updated` of the answered call (answered without being stored).
pub fn transcript_updated() -> Vec<u8> {
    let mut raw = crate::json("retell/answered/01-call_started.json");
    raw["event"] = json!("transcript_updated");
    raw["call"]["transcript"] = json!("Agent: Hi, this is Maya from Brightline CRM.");
    raw.to_string().into_bytes()
}

/// Gives a Retell webhook the call id `id` (and the contact's number `phone`: `to_number`
/// of the fixtures' outbound calls).
pub fn as_call(payload: &mut Value, id: &str, phone: Option<&str>) {
    payload["call"]["call_id"] = Value::from(id);
    if let Some(phone) = phone {
        payload["call"]["to_number"] = Value::from(phone);
    }
}
