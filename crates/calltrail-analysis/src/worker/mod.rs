//! The analysis worker: claim a job, analyse, record the result as an event, finish the job.
//!
//! Storage is behind two small traits the binary implements ([`JobQueue`] over the job table,
//! [`ResultStore`] over the read side and the event log), so this crate stays free of database
//! drivers.
//!
//! - [`ports`]: those traits and what passes through them ([`Job`], [`JobContext`], [`PromptIds`]).
//! - [`config`]: [`WorkerConfig`] — polling, lease, attempts, the job retry [`Backoff`](calltrail_core::Backoff).
//! - [`run`]: [`Worker`] and its loop — claim, keep the lease, back off, shut down.
//! - `policy`: one job from claim to outcome (the steps below).
//! - [`prompt`]: [`fit_prompt`], what of a contact's transcripts fits in one request.
//!
//! # One job
//! 1. If the job's result event already exists (a crash after the append, before the job was
//!    marked done), the job is completed without asking the model again.
//! 2. The context is loaded: transcript, call facts, the user's prompt ids and, for a complete
//!    analysis, the call's individual analysis and the contact's other analysed calls.
//! 3. Prompt ids resolve user's own → [`WorkerConfig::system_prompts`] → a configuration
//!    failure (OpenAI only; the local analyzer needs none).
//! 4. Individual: one request with the transcript. Complete: when the contact has no other
//!    analysed call, the individual result becomes the complete one with no second request
//!    (`previous_calls_analyzed = 1`); otherwise one request with the current and at most 9
//!    previous transcripts, the oldest dropped first until the prompt fits
//!    [`WorkerConfig::max_prompt_chars`].
//! 5. Success → `analysis.individual`/`analysis.complete`, job completed. A transient failure
//!    (rate limit, 5xx, timeout, network) → the job runs again after [`WorkerConfig::retry`]'s
//!    delay (at least as long as OpenAI asked for), up to [`WorkerConfig::max_attempts`]
//!    attempts; then, or at once for any other failure, `analysis.failed` with the reason, job
//!    failed. A failing job never holds up others.
//!
//! The lease of the job in hand is extended every third of [`WorkerConfig::lease`]; on shutdown
//! the job in hand may finish within [`WorkerConfig::shutdown_grace`], else it is put back.

pub mod config;
mod policy;
pub mod ports;
pub mod prompt;
pub mod run;

pub use config::WorkerConfig;
pub use ports::{Job, JobContext, JobQueue, PromptIds, ResultStore, StoreError};
pub use prompt::{fit_prompt, MAX_PREVIOUS_CALLS};
pub use run::Worker;
