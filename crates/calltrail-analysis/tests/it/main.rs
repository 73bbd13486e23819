//! calltrail-analysis integration tests: one binary, a module per feature. No database.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod local;
mod openai;
mod parse;
mod support;
mod worker;
