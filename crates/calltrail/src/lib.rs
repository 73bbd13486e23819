//! calltrail — the binary's library half, so integration tests can start the real application.
//!
//! Modules:
//! - [`analysis_worker`]: the analysis workers' job queue and result store over the database.
//! - [`cli`]: the clap command tree and the dispatch of each command.
//! - [`config`]: typed configuration from flags and environment, validated at start-up.
//! - [`startup`]: [`startup::Application`], the composition root: pools, appender, HTTP server, projector, analysis workers.
//! - [`commands`]: the admin and replay commands.
//! - [`reconcile`]: reconciliation's storage port over the database, one leased run, serve's periodic task.
//! - [`ops`]: operational metrics (append batches, projector lag, blocking transactions).
//! - [`telemetry`]: tracing set-up (JSON when not on a terminal).

pub mod analysis_worker;
pub mod cli;
pub mod commands;
pub mod config;
pub mod ops;
pub mod reconcile;
pub mod startup;
pub mod telemetry;
