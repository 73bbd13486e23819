//! calltrail-core integration tests: one binary, a module per feature.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod elevenlabs;
mod fixtures;
mod fold;
mod outcome;
mod payload;
mod properties;
mod retell;
mod status;
mod support;
mod twilio;
mod vapi;
