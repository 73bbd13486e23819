//! Shared helpers: a fast test configuration and the fixtures.

use std::path::PathBuf;
use std::time::Duration;

use calltrail_analysis::{AnalysisInput, ApiKey, Backoff, OpenAiConfig};
use calltrail_core::{AnalysisKind, ContactHints};
use serde_json::Value;

/// The fixture's prompt id.
pub const PROMPT: &str = "pmpt_68e6f0c1d2a3b4c5d6e7f8091a2b3c4d0e5f6a7b8c9d0e1f";
/// The key tests send.
pub const KEY: &str = "sk-test-0123456789";

/// 300 ms timeout, 3 retries, 10–50 ms backoff, server hints honoured up to 2 s.
pub fn config(base_url: String) -> OpenAiConfig {
    let mut config = OpenAiConfig::new(ApiKey::new(KEY));
    config.base_url = base_url;
    config.timeout = Duration::from_millis(300);
    config.max_retries = 3;
    config.backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
    };
    config
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file of `tests/fixtures/openai/`.
pub fn openai_fixture(name: &str) -> String {
    read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/openai")
            .join(name),
    )
}

/// The repository's Bolna `completed` webhook.
pub fn bolna_completed() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/bolna/success/05-completed.json");
    serde_json::from_str(&read(path)).unwrap()
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
