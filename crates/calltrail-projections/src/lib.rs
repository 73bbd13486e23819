//! calltrail-projections — the read side: projectors that fold the event log into read
//! tables, their checkpoints, replay, the read queries behind the API, and tenancy.
//!
//! The write path, from the log to the read tables:
//! - [`projector`]: the live projector: gap-safe follow, one transaction per batch (load the
//!   rows a batch touches, fold, write, move the checkpoint), standby and lease.
//! - [`fold`] (pure: no I/O, no driver types): events into row changes.
//!   - [`fold::model`]: the snapshot of prior rows and the row changes, shared by all.
//!   - [`fold::decode`]: an event's `data` read for folding; what cannot be read is a dead letter.
//!   - [`fold::calls`]: a call event: lifecycle state, the call's charge (credits), its
//!     contact, transcript and timeline row.
//!   - [`fold::analysis`]: `analysis.*` events: lead analytics rows, transcript statuses.
//!   - [`fold::campaigns`]: `campaign.*` and `attribution.set`: campaign rows, recipients,
//!     manual attributions (each call's attribution is derived from them: `tables/attribution.rs`).
//! - `tables` (private): one module per read table with its load, set-wise write and encoding
//!   (`calls` with the stored state, `contacts`, `transcripts`, `credits`, `timeline`,
//!   `lead_analytics`, `dead_letters`), and `READ_TABLES`, the list replay rebuilds.
//! - [`replay`](mod@replay): rebuilds every read table into shadow tables (`replay/pipeline.rs`: reader,
//!   fold, writer) and swaps them in.
//! - [`jobs`]: [`AnalysisJobs`], the analysis job queue (enqueued by the projector; claim with a lease, retry,
//!   fail, re-queue, status).
//!
//! The read side and the rest:
//! - [`queries`]: read queries for the HTTP API, keyset pagination.
//! - [`campaigns`]: campaigns with their counts, claimed batch ids, existing recipients.
//! - [`export`]: the calls export (`GET /v1/calls.csv`) through a server-side cursor.
//! - [`idempotency`]: stored answers of requests sent with an `Idempotency-Key`.
//! - [`replication`]: a streaming replica's replay position and the primary's WAL position.
//! - [`views`]: the JSON shapes the read API returns.
//! - [`kpis`]: KPIs over a time window (`GET /v1/kpis`) and calls per UTC day.
//! - [`analytics`]: lead analytics rows and the context an analysis worker needs.
//! - [`leads`]: contacts' lead standings and score history (the console's contacts pages).
//! - [`sessions`]: web console sessions (hashed ids, expiring, revocable).
//! - [`tenancy`]: [`Tenancy`], the tenancy tables: users, agents, API keys and webhook tokens
//!   (hashes only), prompt ids; also the writer of [`sessions`] and [`credentials`].
//! - [`credentials`]: provider signing secrets and API keys, sealed with `CALLTRAIL_SECRETS_KEY`.
//! - [`reconciliation`]: the calls reconciliation checks, its lease, each run's result per
//!   tenant and provider.
//! - [`store`]: [`ReadStore`], the tokio-postgres pool (deadpool) with the read queries above;
//!   [`Tenancy`] and [`AnalysisJobs`] share its pool.
//! - [`error`]: the crate's [`Error`] (one variant per cause) and [`DbError`], its opaque
//!   database failure.
//!
//! Uses tokio-postgres through deadpool-postgres only; never runs migrations.

pub mod analytics;
pub mod campaigns;
pub mod credentials;
pub mod error;
pub mod export;
pub mod fold;
pub mod idempotency;
pub mod jobs;
pub mod kpis;
pub mod leads;
pub mod projector;
pub mod queries;
pub mod reconciliation;
pub mod replay;
pub mod replication;
pub mod sessions;
pub mod store;
mod tables;
pub mod tenancy;
pub mod views;

pub use error::{DbError, Error};
pub use jobs::AnalysisJobs;
pub use projector::{BatchOutcome, Projector, ProjectorConfig, ProjectorMetrics, READ_MODELS};
pub use queries::{CallFilter, CallSort, Lookup};
pub use replay::{replay, ReplayOptions, ReplaySummary, TableRows};
pub use store::ReadStore;
pub use tenancy::{ApiKeyInfo, IssuedApiKey, IssuedCredentials, NewUser, Tenancy, UserPrompts};
