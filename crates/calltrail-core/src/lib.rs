//! calltrail-core — the pure domain of calltrail: no I/O, no async, no database.
//!
//! Modules:
//! - [`backoff`]: [`Backoff`], the one retry schedule (doubling delays up to a cap, optional jitter).
//! - [`analysis`]: lead-analysis types (LeadAnalytics fields, analyzer input) and the model-output parser.
//! - [`event`]: the provider-neutral [`CallEvent`] every webhook is normalized into.
//! - [`lifecycle`]: call lifecycle statuses, their precedence, and the fold of a call's events into [`CallState`].
//! - [`campaign`]: campaign, recipient and manual-attribution events and the attribution rule.
//! - [`billing`]: duration rounding and credit math (CONTRACT §4.5).
//! - [`phone`]: E.164 phone numbers as a parsed type.
//! - [`secrets`]: provider credentials encrypted at rest with `CALLTRAIL_SECRETS_KEY` (the crate's one
//!   source of non-determinism: random nonces).
//! - [`timestamp`]: serde serialization of UTC timestamps, byte for byte as chrono writes them, faster.
//! - [`providers`]: one module per provider (Bolna, Vapi, ElevenLabs, Twilio, Retell): signature checks over the raw bytes,
//!   tolerant parsing, and normalization into [`CallEvent`]s, all listed in [`Provider`].

pub mod analysis;
pub mod backoff;
pub mod billing;
pub mod campaign;
pub mod event;
pub mod lifecycle;
pub mod phone;
pub mod providers;
pub mod secrets;
pub mod timestamp;

pub use analysis::{
    parse_model_output, AnalysisEvent, AnalysisFailed, AnalysisInput, AnalysisKind, AnalysisMeta,
    AnalysisParseError, AnalysisRecorded, Analyzer, ContactHints, LeadAnalysis, LeadStatusTag,
    PreviousCall,
};
pub use backoff::{Backoff, Retries};
pub use billing::{ledger_entry, LedgerKind};
pub use event::{Anomaly, Bounds, CallEvent, Cost, CostUnit, Ending, LeadType, Outcome};
pub use lifecycle::{fold, CallState, CallStatus, Charge, ChargeSource, LifecycleStatus};
pub use phone::{PhoneNumber, PhoneNumberError};
pub use providers::PayloadError;
pub use providers::{Provider, WebhookProvider};
