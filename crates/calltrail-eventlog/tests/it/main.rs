//! Event log integration tests against real PostgreSQL (a fresh database per test).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod append;
mod hosts;
mod never_skip;
mod outage;
mod property;
mod support;
mod wakeups;
