//! Shared helpers: a fast test configuration and the fixtures.

use std::time::Duration;

use calltrail_analysis::{AnalysisInput, OpenAiConfig};
use calltrail_core::{AnalysisKind, ContactHints};
use calltrail_testkit::fixtures;
use calltrail_testkit::responses::{openai_config, TEST_API_KEY};
use serde_json::Value;

/// The fixture's prompt id.
pub const PROMPT: &str = "pmpt_68e6f0c1d2a3b4c5d6e7f8091a2b3c4d0e5f6a7b8c9d0e1f";
/// The key tests send.
pub const KEY: &str = TEST_API_KEY;

/// testkit's test configuration with a 300 ms timeout (3 retries, 10–50 ms backoff, server
/// hints honoured up to 2 s).
pub fn config(base_url: String) -> OpenAiConfig {
    let mut config = openai_config(&base_url);
    config.timeout = Duration::from_millis(300);
    config
}

/// A file of the repository's `fixtures/openai/`.
pub fn openai_fixture(name: &str) -> String {
    fixtures::text(format!("openai/{name}"))
}

/// The repository's Bolna `completed` webhook.
pub fn bolna_completed() -> Value {
    fixtures::json("bolna/success/05-completed.json")
}

/// An individual analysis input built from the Bolna fixture, without contact hints.
pub fn bolna_input() -> AnalysisInput {
    let payload = bolna_completed();
    let text = |p: &str| {
        payload
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap()
            .to_owned()
    };
    AnalysisInput {
        kind: AnalysisKind::Individual,
        execution_id: text("/id"),
        phone_number: text("/user_number"),
        transcript: text("/transcript"),
        call_duration_seconds: payload.get("conversation_duration").and_then(Value::as_f64),
        // Deserialized, so the tests need no date library of their own.
        call_date: serde_json::from_value(Value::from("2025-10-08")).ok(),
        contact: ContactHints::default(),
        previous: Vec::new(),
    }
}
