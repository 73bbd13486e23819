//! The types the fold reads and produces: the prior rows of a batch ([`Snapshot`]) and the
//! row changes it yields ([`Changes`]). Shared by every fold module, the table writers and
//! replay's write-back cache; plain data, no I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use calltrail_core::{AnalysisKind, Analyzer, CallState, LeadAnalysis};
use calltrail_eventlog::Checkpoint;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A call's key: tenant, provider (the event's `provider`) and the provider's call id (the
/// event's stream id). Calls of different providers never share a key (CONTRACT §5).
pub type CallKey = (Uuid, String, String);
/// A contact's key: tenant and E.164 phone number.
pub type ContactKey = (Uuid, String);
/// Key of a `lead_analytics` row: user, `individual`/`complete`, execution id or phone, and
/// the call's provider (individual) or `""` (complete: one row per contact).
pub type LeadKey = (Uuid, &'static str, String, String);

/// A call row as the fold sees it: the core state plus what the row adds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallRecord {
    /// The folded lifecycle state.
    pub state: CallState,
    /// The contact of the call's phone number.
    pub contact_id: Option<Uuid>,
    /// Whether this call already counted in its contact's `not_connected`.
    pub not_connected_counted: bool,
    /// Shown as `call_lifecycle_status` while only statuses calltrail does not know arrived
    /// (the greatest such status text, so the value does not depend on order).
    pub unknown_status: Option<String>,
    /// Position of the last event folded in.
    pub last_position: i64,
    /// The call's analysis status (its transcript row's).
    pub analysis: TranscriptAnalysis,
    /// Whether the call's latest individual analysis booked a demo (`demo_book_datetime`):
    /// the `booked` of its outcome.
    pub booked: bool,
}

impl CallRecord {
    /// The `call_lifecycle_status` column.
    pub fn lifecycle_status(&self) -> &str {
        match (&self.state.lifecycle_status, &self.unknown_status) {
            (Some(status), _) => status.as_str(),
            (None, Some(status)) => status,
            (None, None) => "unknown",
        }
    }

    /// The `outcome` column ([`calltrail_core::Outcome::derive`]).
    pub fn outcome(&self) -> calltrail_core::Outcome {
        self.state.outcome(self.booked)
    }
}

/// A contact row.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRecord {
    /// Derived from the key ([`super::calls::contact_id`]).
    pub id: Uuid,
    /// Name: the newest a call event or an analysis gave.
    pub name: ContactDetail,
    /// E-mail address: the newest a call event or an analysis gave.
    pub email: ContactDetail,
    /// Company: the newest a call event or an analysis gave.
    pub company: ContactDetail,
    /// Calls of this contact that became no-answer or busy.
    pub not_connected: i64,
    /// The call whose event created it.
    pub auto_created_from_call_id: Option<String>,
    /// That call's provider.
    pub auto_created_from_provider: Option<String>,
    /// Event time of that event.
    pub created_at: DateTime<Utc>,
}

/// One detail of a contact (name, e-mail, company) and the time of the event that gave it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactDetail {
    /// The value.
    pub value: Option<String>,
    /// The giving event's time (`None`: given before times were kept, older than any).
    pub at: Option<DateTime<Utc>>,
}

impl ContactDetail {
    /// Takes `candidate`, given at `at`, when it is newer than the value held (at the same
    /// time, the greater value wins: the result does not depend on the order). True if taken.
    pub fn offer(&mut self, candidate: Option<&str>, at: DateTime<Utc>) -> bool {
        let Some(candidate) = candidate.map(str::trim).filter(|c| !c.is_empty()) else {
            return false;
        };
        let newer = match (self.at, self.value.as_deref()) {
            (Some(held_at), Some(held)) => at > held_at || (at == held_at && candidate > held),
            _ => true,
        };
        if !newer {
            return false;
        }
        let changed = self.value.as_deref() != Some(candidate) || self.at != Some(at);
        self.value = Some(candidate.to_owned());
        self.at = Some(at);
        changed
    }
}

/// The prior rows a batch touches, loaded before folding (absent key = no row yet).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Calls by key.
    pub calls: HashMap<CallKey, CallRecord>,
    /// Contacts by key.
    pub contacts: HashMap<ContactKey, ContactRecord>,
    /// Credit balances by user.
    pub balances: HashMap<Uuid, i64>,
}

/// A transcript's analysis status (`transcripts.analysis_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnalysisStatus {
    /// Not analysed yet (or put back for a retry).
    #[default]
    Pending,
    /// A worker holds the job (live only; written by the job queue).
    Processing,
    /// The individual analysis is recorded.
    Completed,
    /// The analysis failed.
    Failed,
}

impl AnalysisStatus {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisStatus::Pending => "pending",
            AnalysisStatus::Processing => "processing",
            AnalysisStatus::Completed => "completed",
            AnalysisStatus::Failed => "failed",
        }
    }

    /// Reads a column value (anything unknown is `pending`).
    pub fn parse(s: &str) -> Self {
        match s {
            "processing" => AnalysisStatus::Processing,
            "completed" => AnalysisStatus::Completed,
            "failed" => AnalysisStatus::Failed,
            _ => AnalysisStatus::Pending,
        }
    }
}

/// A call's analysis state as its transcript row shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TranscriptAnalysis {
    /// The status.
    pub status: AnalysisStatus,
    /// Why it failed.
    pub error: Option<String>,
}

/// A transcript to insert (or whose content to update when the row exists).
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptChange {
    /// Transcript text.
    pub content: String,
    /// Event time of the event that first carried it (used only when inserting).
    pub created_at: DateTime<Utc>,
    /// The call's analysis status (event-derived: pending, completed or failed).
    pub analysis: TranscriptAnalysis,
}

/// One credit transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditChange {
    /// The user.
    pub user_id: Uuid,
    /// `grant`, `usage` or `adjustment`.
    pub kind: &'static str,
    /// Signed amount.
    pub amount: i64,
    /// Balance after it, in log order.
    pub balance_after: i64,
    /// Charged call (usage, adjustment).
    pub call_id: Option<String>,
    /// The charged call's provider (with `call_id`).
    pub provider: Option<String>,
    /// The causing event's provider time.
    pub occurred_at: DateTime<Utc>,
    /// When the causing event was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Position of the causing event.
    pub position: i64,
}

/// A call event whose out-of-range values the fold replaced (logged and counted live).
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyNote {
    /// The tenant.
    pub tenant_id: Uuid,
    /// The call's provider.
    pub provider: String,
    /// The call.
    pub execution_id: String,
    /// The event's type.
    pub event_type: String,
    /// The event's position.
    pub position: i64,
    /// What was replaced.
    pub anomalies: Vec<calltrail_core::Anomaly>,
}

impl AnomalyNote {
    /// The anomalies' names, comma-separated.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.anomalies.iter().map(|a| a.as_str()).collect();
        names.join(",")
    }
}

/// One timeline row.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRow {
    /// The user.
    pub user_id: Uuid,
    /// The call's provider.
    pub provider: String,
    /// The call.
    pub execution_id: String,
    /// Event type.
    pub event_type: String,
    /// Event time.
    pub occurred_at: DateTime<Utc>,
    /// Record time.
    pub recorded_at: DateTime<Utc>,
    /// Position.
    pub position: i64,
}

/// An event that could not be folded.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Its position.
    pub position: i64,
    /// Its writer's transaction id.
    pub txid: i64,
    /// Its type.
    pub event_type: String,
    /// Its stream.
    pub stream_id: String,
    /// Why it could not be folded.
    pub error: String,
}

/// A `lead_analytics` row; field names are the table's columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadAnalyticsRow {
    /// The tenant.
    pub user_id: Uuid,
    /// `individual` or `complete`.
    pub analysis_type: &'static str,
    /// Execution id (individual) or phone (complete).
    pub key: String,
    /// The call's provider (individual), `""` (complete: the key is the contact's).
    pub provider: String,
    /// The call analysed, or the latest call a complete analysis includes.
    pub execution_id: String,
    /// The contact's phone.
    pub phone_number: Option<String>,
    /// 0, or the contact's calls analysed.
    pub previous_calls_analyzed: i32,
    /// When the analysis was made.
    pub analysis_timestamp: DateTime<Utc>,
    /// The analysis fields (their names are the columns').
    #[serde(flatten)]
    pub analysis: LeadAnalysis,
    /// `openai` or `local`.
    pub analyzer: Analyzer,
    /// The model.
    pub model: Option<String>,
    /// The response's total tokens.
    pub tokens_used: Option<i64>,
    /// The event's log position.
    pub position: i64,
}

/// An analysis job the fold asks for (the live projector inserts it unless it exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// The tenant.
    pub user_id: Uuid,
    /// Individual or complete.
    pub kind: AnalysisKind,
    /// The call's provider.
    pub provider: String,
    /// The call.
    pub execution_id: String,
    /// The contact's phone (required for complete jobs).
    pub phone_number: Option<String>,
    /// The call's creation time.
    pub call_created_at: DateTime<Utc>,
    /// For a complete job: the run of the individual analysis it follows (a newer run of that
    /// analysis runs the finished complete job again); 1 otherwise.
    pub after_version: i32,
}

/// A campaign's name (from `campaign.created` or `campaign.renamed`).
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignName {
    /// The tenant.
    pub user_id: Uuid,
    /// The campaign.
    pub campaign_id: Uuid,
    /// The name.
    pub name: String,
    /// Creation time (`campaign.created` only: a rename never creates the row).
    pub created_at: Option<DateTime<Utc>>,
    /// The event's position (a name replaces one only when later).
    pub position: i64,
}

/// A recipient row.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipientRow {
    /// The tenant.
    pub user_id: Uuid,
    /// The campaign.
    pub campaign_id: Uuid,
    /// The recipient.
    pub recipient: calltrail_core::campaign::Recipient,
    /// The upload's position.
    pub position: i64,
}

/// A manual attribution of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualAttribution {
    /// The tenant.
    pub user_id: Uuid,
    /// The call.
    pub call: calltrail_core::campaign::CallRef,
    /// The campaign (`None`: cleared).
    pub campaign_id: Option<Uuid>,
    /// The event's position.
    pub position: i64,
}

/// The campaign rows a batch writes (each idempotent, whatever the order: they are written
/// with every batch, like the append-only rows).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CampaignChanges {
    /// Campaign names (created or renamed).
    pub names: Vec<CampaignName>,
    /// Batch ids claimed: (user, batch id, campaign, position).
    pub batches: Vec<(Uuid, String, Uuid, i64)>,
    /// Recipients added.
    pub recipients: Vec<RecipientRow>,
    /// Manual attributions.
    pub attributions: Vec<ManualAttribution>,
}

impl CampaignChanges {
    /// True when nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
            && self.batches.is_empty()
            && self.recipients.is_empty()
            && self.attributions.is_empty()
    }
}

/// The calls whose attribution a batch may have changed beyond the calls it folded: those of
/// batch ids and phones campaigns claimed, and those attributed by hand.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttributionScope {
    /// (user, batch id).
    pub batches: BTreeSet<(Uuid, String)>,
    /// (user, E.164 phone).
    pub phones: BTreeSet<(Uuid, String)>,
    /// (user, provider, provider's call id).
    pub calls: BTreeSet<CallKey>,
}

impl AttributionScope {
    /// True when no call is named.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.phones.is_empty() && self.calls.is_empty()
    }
}

/// Every row change of a batch, ready to be written set-wise. Calls, contacts and balances
/// are named by key: their rows are the [`Snapshot`]'s.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Calls to upsert.
    pub calls: BTreeSet<CallKey>,
    /// Contacts to upsert.
    pub contacts: BTreeSet<ContactKey>,
    /// Transcripts to upsert.
    pub transcripts: BTreeMap<CallKey, TranscriptChange>,
    /// Credit transactions to insert, in log order.
    pub credits: Vec<CreditChange>,
    /// Users whose balance changed.
    pub balances: BTreeSet<Uuid>,
    /// Timeline rows to insert.
    pub timeline: Vec<TimelineRow>,
    /// Events that could not be folded.
    pub dead_letters: Vec<DeadLetter>,
    /// Call events whose out-of-range values were replaced.
    pub anomalies: Vec<AnomalyNote>,
    /// Lead analytics rows to upsert (each only over an older one).
    pub lead_analytics: BTreeMap<LeadKey, LeadAnalyticsRow>,
    /// Analysis jobs to enqueue (the live projector only; replay ignores them).
    pub jobs: Vec<JobRequest>,
    /// Campaign, recipient and manual attribution rows.
    pub campaigns: CampaignChanges,
    /// Calls whose attribution to derive again besides `calls` (the live projector only;
    /// replay derives every call's at the end).
    pub attribution: AttributionScope,
    /// Events folded (dead letters included).
    pub events: usize,
    /// The checkpoint after the batch's last event.
    pub last: Option<Checkpoint>,
}

impl Changes {
    /// Adds a later batch's row changes to these (upserts by key; a transcript keeps the
    /// time it first appeared). Events, timeline, credits and dead letters are not merged.
    pub fn absorb(&mut self, later: Changes) {
        self.calls.extend(later.calls);
        self.contacts.extend(later.contacts);
        self.balances.extend(later.balances);
        for (key, transcript) in later.transcripts {
            self.transcripts
                .entry(key)
                .and_modify(|t| {
                    t.content.clone_from(&transcript.content);
                    t.analysis.clone_from(&transcript.analysis);
                })
                .or_insert(transcript);
        }
    }

    /// Takes out what is written with every batch (credit transactions, timeline rows, dead
    /// letters, lead analytics, jobs, counts), leaving the keyed row changes.
    pub fn take_appends(&mut self) -> Changes {
        Changes {
            credits: std::mem::take(&mut self.credits),
            timeline: std::mem::take(&mut self.timeline),
            dead_letters: std::mem::take(&mut self.dead_letters),
            anomalies: std::mem::take(&mut self.anomalies),
            lead_analytics: std::mem::take(&mut self.lead_analytics),
            jobs: std::mem::take(&mut self.jobs),
            campaigns: std::mem::take(&mut self.campaigns),
            attribution: std::mem::take(&mut self.attribution),
            events: self.events,
            last: self.last,
            ..Changes::default()
        }
    }

    /// True when no row needs writing.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
            && self.contacts.is_empty()
            && self.balances.is_empty()
            && self.transcripts.is_empty()
            && self.credits.is_empty()
            && self.timeline.is_empty()
            && self.dead_letters.is_empty()
            && self.lead_analytics.is_empty()
            && self.campaigns.is_empty()
    }
}

/// The keys whose rows a batch needs before it can be folded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Needs {
    /// Calls named by call events and other events.
    pub calls: Vec<CallKey>,
    /// Users whose balance may change.
    pub users: Vec<Uuid>,
}
