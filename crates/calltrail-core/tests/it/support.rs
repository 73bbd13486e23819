//! Fixture loading and small builders shared by the test modules.

use std::path::{Path, PathBuf};

use calltrail_core::providers::bolna;
use calltrail_core::{CallEvent, LifecycleStatus, Provider};
use chrono::{DateTime, NaiveDateTime, Utc};

/// The three recorded Bolna scenarios.
pub const SCENARIOS: [&str; 3] = ["success", "no-answer", "busy"];

/// The in-repo copy of the Bolna fixtures (`/fixtures/bolna` at the workspace root).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/bolna")
}

/// Every `.json` file under `dir`, as paths relative to it, sorted.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path.strip_prefix(root).unwrap().to_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Raw bytes of one fixture, e.g. `read("success/05-completed.json")`.
pub fn read(relative: impl AsRef<Path>) -> Vec<u8> {
    let path = fixtures_dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A receive time far from every fixture time, so using it by mistake shows.
pub fn received_at() -> DateTime<Utc> {
    utc("2030-01-01T00:00:00")
}

/// Parses and normalizes one fixture.
pub fn event(relative: impl AsRef<Path>) -> CallEvent {
    let relative = relative.as_ref();
    bolna::parse(&read(relative))
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", relative.display()))
        .normalize(received_at())
}

/// A scenario's events in delivery (file) order.
pub fn scenario(name: &str) -> Vec<CallEvent> {
    json_files(&fixtures_dir().join(name))
        .into_iter()
        .map(|file| event(Path::new(name).join(file)))
        .collect()
}

/// A zone-less timestamp read as UTC.
pub fn utc(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .unwrap()
        .and_utc()
}

/// A bare event of one call, for hand-written fold cases.
pub fn bare(status: &str, occurred_at: &str) -> CallEvent {
    CallEvent {
        provider: Provider::Bolna,
        execution_id: "exec-1".to_owned(),
        status: LifecycleStatus::parse(status),
        occurred_at: utc(occurred_at),
        call_created_at: None,
        agent_id: None,
        phone_number: None,
        lead_type: None,
        conversation_seconds: None,
        hangup_by: None,
        hangup_reason: None,
        hangup_provider_code: None,
        recording_url: None,
        transcript: None,
        contact_name: None,
        contact_company: None,
    }
}
