//! ElevenLabs calls out of `fixtures/elevenlabs/`: the fixture's transcription, and the other
//! webhooks ElevenLabs sends (an initiation failure, the call's audio).

use serde_json::{json, Value};

/// The fixture's conversation id (`data.conversation_id`).
pub const CONVERSATION_ID: &str = "conv_3401k6xq5r2wfa7s9dp1e8mz4k";
/// The fixture's agent id (`data.agent_id`).
pub const AGENT_ID: &str = "agent_7201k6xq2m9ef3tbr8yvd4c0hn";

/// The answered call: ElevenLabs sends one lifecycle webhook, `post_call_transcription`.
pub fn answered() -> Vec<Vec<u8>> {
    vec![crate::read("elevenlabs/post_call_transcription.json")]
}

/// A `call_initiation_failure` for `conversation` with `failure_reason` (when given), to
/// +14155550163.
pub fn initiation_failure(conversation: &str, failure_reason: Option<&str>) -> Vec<u8> {
    let mut body = json!({
        "type": "call_initiation_failure",
        "event_timestamp": 1_759_918_211,
        "data": {
            "agent_id": AGENT_ID,
            "conversation_id": conversation,
            "metadata": {"phone_call": {
                "direction": "outbound",
                "phone_number_id": "phnum_5101k6wz0c8hf2qa7tm3xj9b6e",
                "agent_number": "+14155550187",
                "external_number": "+14155550163",
                "type": "twilio",
                "call_sid": "CA9e4b2d7f1a6c3e8b0d5f2a9c4e7b1d60"
            }}
        }
    });
    if let Some(reason) = failure_reason {
        body["data"]["failure_reason"] = json!(reason);
    }
    body.to_string().into_bytes()
}

/// A `post_call_audio` of the fixture's conversation carrying `audio_bytes` of base64 audio.
pub fn audio(audio_bytes: usize) -> Vec<u8> {
    let mut body = format!(
        r#"{{"type":"post_call_audio","event_timestamp":1759914950,"data":{{"agent_id":"{AGENT_ID}","conversation_id":"{CONVERSATION_ID}","full_audio":""#
    )
    .into_bytes();
    body.extend(std::iter::repeat_n(b'Q', audio_bytes));
    body.extend_from_slice(b"\"}}");
    body
}

/// Gives an ElevenLabs webhook the conversation id `id` (and the external number `phone`).
pub fn as_call(payload: &mut Value, id: &str, phone: Option<&str>) {
    payload["data"]["conversation_id"] = Value::from(id);
    if let Some(phone) = phone {
        payload["data"]["metadata"]["phone_call"]["external_number"] = Value::from(phone);
    }
}
