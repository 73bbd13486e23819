//! Integration tests of calltrail-projections against a real PostgreSQL (one binary, a module per feature).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

mod analysis;
mod attribution;
mod bench;
mod compact;
mod console_reads;
mod outcome;
mod projector;
mod providers;
mod queries;
mod replay;
mod tenancy;
