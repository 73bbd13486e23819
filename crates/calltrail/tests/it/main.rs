//! End-to-end tests: the real application on port 0 with its own database, driven over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod analysis;
mod analysis_failures;
mod bad_input;
mod browser;
mod campaigns;
mod cli;
mod console;
mod crash;
mod failover;
mod helpers;
mod hostile;
mod kpis;
mod ledger;
mod lifecycle;
mod logs;
mod outage;
mod outcome;
mod projectors;
mod providers;
mod providers_signatures;
mod reads;
mod reconcile;
mod replay;
mod replica;
mod secrets;
mod shared_ids;
mod webdriver;
