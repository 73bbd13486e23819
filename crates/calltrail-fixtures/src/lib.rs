//! calltrail-fixtures — the repository's `fixtures/` folder for tests and the benchmark: a file
//! by its path under `fixtures/` (`read("bolna/success/05-completed.json")`), a scenario's files
//! in delivery order (`scenario("bolna/success")`), any provider alike.
//!
//! It depends on `std` and `serde_json` only, so a crate's tests get fixtures without building
//! a database driver or an async runtime (`calltrail-core`'s tests use it directly; every other
//! crate reaches it as `calltrail_testkit::fixtures`). Every function panics with the file's
//! path when it cannot be read: fixtures are part of the repository, a missing one is a bug.
//!
//! [`bolna`] re-addresses a Bolna payload to another call and contact, for tests that need many
//! distinct calls out of one fixture. [`vapi`], [`elevenlabs`], [`twilio`] and [`retell`] give
//! each provider's whole calls (answered, and one unanswered ending) as webhook bodies in
//! delivery order, the messages that are answered without storing, and the same re-addressing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod bolna;
pub mod elevenlabs;
pub mod retell;
pub mod twilio;
pub mod vapi;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The repository's `fixtures/` folder.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The absolute path of `fixtures/<relative>`.
pub fn path(relative: impl AsRef<Path>) -> PathBuf {
    dir().join(relative)
}

/// The bytes of `fixtures/<relative>`, e.g. `read("bolna/success/05-completed.json")`.
pub fn read(relative: impl AsRef<Path>) -> Vec<u8> {
    let path = path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// `fixtures/<relative>` as text.
pub fn text(relative: impl AsRef<Path>) -> String {
    let relative = relative.as_ref();
    String::from_utf8(read(relative))
        .unwrap_or_else(|e| panic!("fixture {} is not UTF-8: {e}", relative.display()))
}

/// `fixtures/<relative>` parsed as JSON.
pub fn json(relative: impl AsRef<Path>) -> Value {
    let relative = relative.as_ref();
    serde_json::from_slice(&read(relative))
        .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", relative.display()))
}

/// Every file under `fixtures/<folder>` (recursively), as paths relative to `fixtures/`,
/// sorted: `files("bolna/success")` starts with `bolna/success/01-initiated.json`. Documentation
/// (`*.md`) is left out.
pub fn files(folder: impl AsRef<Path>) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot list fixtures in {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list fixtures in {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_none_or(|e| e != "md") {
                let relative = path.strip_prefix(root).expect("a path under fixtures/");
                out.push(relative.to_owned());
            }
        }
    }
    let root = dir();
    let mut out = Vec::new();
    walk(&root, &root.join(folder), &mut out);
    out.sort();
    out
}

/// The bytes of every file of a scenario folder, in file-name (delivery) order:
/// `scenario("bolna/no-answer")` is the three webhooks of an unanswered call.
pub fn scenario(folder: impl AsRef<Path>) -> Vec<Vec<u8>> {
    files(folder).into_iter().map(read).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_a_scenario_in_delivery_order_relative_to_fixtures() {
        let files = files("bolna/no-answer");
        let names: Vec<_> = files.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "bolna/no-answer/01-initiated.json",
                "bolna/no-answer/02-ringing.json",
                "bolna/no-answer/03-no-answer.json"
            ]
        );
        assert_eq!(scenario("bolna/no-answer")[2], read(&files[2]));
    }

    #[test]
    fn reads_every_provider_and_skips_documentation() {
        assert_eq!(
            json("bolna/success/05-completed.json")["status"],
            "completed"
        );
        assert!(text("twilio/03-completed.form").contains("CallStatus=completed"));
        assert!(files("elevenlabs")
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "json")));
    }

    #[test]
    #[should_panic(expected = "bolna/missing.json")]
    fn a_missing_fixture_names_its_path() {
        read("bolna/missing.json");
    }
}
