//! calltrail-projections — the read side: projectors that fold the event log into read
//! tables, their checkpoints, replay, the read queries behind the API, and tenancy.
//!
//! Modules:
//! - [`store`]: [`ReadStore`], the tokio-postgres pool (deadpool) every read-side module uses.
//! - [`tenancy`]: users, agents, API keys and webhook tokens (hashes only).
//! - [`projector`]: the live projector: gap-safe follow, one transaction per batch, dead letters.
//! - [`fold`]: batch folding of call events into row changes (pure, no I/O).
//! - [`replay`]: rebuilds every read table into shadow tables and swaps them in.
//! - [`kpis`]: KPIs over a time window (`GET /v1/kpis`) and calls per UTC day.
//! - [`leads`]: contacts' lead standings and score history (the console's contacts pages).
//! - [`sessions`]: web console sessions (hashed ids, expiring, revocable).
//! - [`analysis_fold`]: folding the `analysis.*` events and writing `lead_analytics`.
//! - [`analytics`]: lead analytics rows and the context an analysis worker needs.
//! - [`jobs`]: the analysis job queue (claim with a lease, retry, fail, re-queue, status).
//! - [`queries`]: read queries for the HTTP API, keyset pagination.
//! - [`views`]: the JSON shapes the read API returns.
//! - [`error`]: the crate's [`Error`].
//! - `write` (private): loading a batch's prior rows and writing its changes set-wise.
//!
//! Uses tokio-postgres through deadpool-postgres only; never runs migrations.

pub mod analysis_fold;
pub mod analytics;
pub mod error;
pub mod fold;
pub mod jobs;
pub mod kpis;
pub mod leads;
pub mod projector;
pub mod queries;
pub mod replay;
pub mod sessions;
pub mod store;
pub mod tenancy;
pub mod views;
mod write;

pub use error::Error;
pub use projector::{BatchOutcome, Projector, ProjectorConfig, ProjectorMetrics, READ_MODELS};
pub use queries::{CallFilter, CallSort};
pub use replay::{replay, ReplayOptions, ReplaySummary};
pub use store::ReadStore;
pub use tenancy::{IssuedCredentials, NewUser, UserPrompts};
