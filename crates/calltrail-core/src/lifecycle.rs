//! Call lifecycle statuses, their precedence, and the order-independent fold.
//!
//! # Precedence
//!
//! Webhooks arrive late, twice and out of order, so [`CallState::apply`] never looks at arrival
//! order. Every event gets a [`Precedence`] key, compared
//! field by field:
//!
//! 1. **lifecycle rank** ([`LifecycleStatus::rank`]):
//!    `scheduled` 0 < `queued` = `rescheduled` 1 < `initiated` 2 < `ringing` 3 < `in-progress` 4
//!    < `call-disconnected` 5 < terminal 6 (`completed`, `no-answer`, `busy`, `failed`,
//!    `canceled`, `stopped`, `error`, `balance-low`). A status calltrail does not know has no rank
//!    and sorts below every known one;
//! 2. then the later `occurred_at`;
//! 3. then the greater status string (so even two statuses of equal rank and equal time have a
//!    fixed winner).
//!
//! The fold keeps, for each piece of state, the winner over all events seen:
//!
//! - `lifecycle_status` is the status of the highest-precedence event with a known status; an
//!   unknown status never changes it. So a terminal status is never replaced by an earlier stage (a
//!   late `ringing` after `busy` leaves `busy`), and two terminal statuses are settled by event time.
//! - Each optional field (`agent_id`, `phone_number`, `lead_type`, `hangup_*`, `recording_url`,
//!   `transcript`, `contact_name`, `contact_company`) comes from the highest-precedence event that
//!   has it non-null; should two events with equal keys disagree, the greater value wins.
//! - Per-stage timestamps come from that stage's own event (`ringing_started_at` ← `ringing`,
//!   `call_answered_at` ← `in-progress`, `call_disconnected_at` ← `call-disconnected`,
//!   `completed_at` ← `completed`); the earliest wins if a stage is reported twice.
//! - `created_at` is the earliest `call_created_at` seen, else the earliest `occurred_at`.
//!
//! Each of these is a maximum or minimum over the set of events, so any permutation of a call's
//! events, with any duplicates, folds to the same state. The keys that decided each field are kept
//! in [`CallState::provenance`], which is what lets a stored state take further events later.
//!
//! **The charge** follows the final duration (CONTRACT §4.5), also a maximum over the events:
//! a `completed` that carries a talk time outranks every `call-disconnected`, and a
//! `call-disconnected` counts only with a talk time above 0 (Bolna sends 0 there until its
//! post-processing ends); among equals, the [`Precedence`] key and then the greater talk time
//! decide. Which transactions the ledger records on the way (a usage, then an adjustment when
//! a later event changes the amount) is [`billing::ledger_entry`]'s rule.
//!
//! **Anomalies** ([`CallEvent::anomalies`]) are a union over the events.
//!
//! **Ending and cost** are optional fields like the others: `ending` comes from the
//! highest-precedence event with one ([`CallEvent::ending`], or for an event recorded before
//! it existed what its status says, [`Ending::of_status`]), `cost` from the highest-precedence
//! event that carries one (equal keys: the greater amount). The Call's `outcome` adds the
//! analysis to the ending (`calltrail-projections`).

use std::cmp::Ordering;
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::billing;
use crate::event::{Anomaly, CallEvent, Cost, Ending, LeadType, Outcome};
use crate::phone::PhoneNumber;

/// A provider lifecycle status in Bolna's vocabulary; a status calltrail does not know is kept verbatim.
///
/// Serialized as the provider's string (`in-progress`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum LifecycleStatus {
    /// `scheduled`
    Scheduled,
    /// `queued`
    Queued,
    /// `rescheduled`
    Rescheduled,
    /// `initiated`
    Initiated,
    /// `ringing`
    Ringing,
    /// `in-progress`
    InProgress,
    /// `call-disconnected`
    CallDisconnected,
    /// `completed`
    Completed,
    /// `no-answer`
    NoAnswer,
    /// `busy`
    Busy,
    /// `failed`
    Failed,
    /// `canceled`
    Canceled,
    /// `stopped`
    Stopped,
    /// `error`
    Error,
    /// `balance-low` (also accepted as `balance_low`)
    BalanceLow,
    /// A status not in the list above, exactly as sent.
    Other(String),
}

/// The coarse call status shown to users (CONTRACT §3 `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Not finished yet.
    InProgress,
    /// `completed`.
    Completed,
    /// no-answer, busy, failed, error, balance-low.
    Failed,
    /// canceled, stopped.
    Cancelled,
}

/// The amount charged for a call: the one its final duration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// `ceil(conversation_duration)`.
    pub duration_seconds: i64,
    /// `ceil(duration_seconds / 60)`.
    pub duration_minutes: i64,
    /// `duration_minutes × credits_per_minute`.
    pub credits: i64,
}

/// A call's state folded from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CallState {
    /// Most advanced lifecycle status seen (None until a known status arrives).
    pub lifecycle_status: Option<LifecycleStatus>,
    /// Provider agent id.
    pub agent_id: Option<String>,
    /// Contact phone.
    pub phone_number: Option<PhoneNumber>,
    /// Direction.
    pub lead_type: Option<LeadType>,
    /// Who hung up.
    pub hangup_by: Option<String>,
    /// Why.
    pub hangup_reason: Option<String>,
    /// Telephony hangup code.
    pub hangup_provider_code: Option<i64>,
    /// Recording URL.
    pub recording_url: Option<String>,
    /// Transcript text.
    pub transcript: Option<String>,
    /// Contact name passed through by the provider.
    pub contact_name: Option<String>,
    /// Contact company passed through by the provider.
    pub contact_company: Option<String>,
    /// The batch the call was placed in ([`CallEvent::batch_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// `ringing` event time.
    #[serde(serialize_with = "crate::timestamp::serialize_option")]
    pub ringing_started_at: Option<DateTime<Utc>>,
    /// `in-progress` event time.
    #[serde(serialize_with = "crate::timestamp::serialize_option")]
    pub call_answered_at: Option<DateTime<Utc>>,
    /// `call-disconnected` event time.
    #[serde(serialize_with = "crate::timestamp::serialize_option")]
    pub call_disconnected_at: Option<DateTime<Utc>>,
    /// `completed` event time.
    #[serde(serialize_with = "crate::timestamp::serialize_option")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Provider's creation time, else the earliest event time.
    #[serde(serialize_with = "crate::timestamp::serialize_option")]
    pub created_at: Option<DateTime<Utc>>,
    /// What the final duration charges (see the [module documentation](self)).
    pub charge: Option<Charge>,
    /// The untrusted values its events carried, each once, in order.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub anomalies: BTreeSet<Anomaly>,
    /// How the call ended, by the highest-precedence event that says ([`CallEvent::ending`],
    /// else what its status says: [`Ending::of_status`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending: Option<Ending>,
    /// The provider's reported cost, from the highest-precedence event that carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// Which event decided each field; needed to apply further events to a stored state.
    #[serde(default)]
    pub provenance: Provenance,
}

/// The order of events in the fold: lifecycle rank, then event time, then status text.
///
/// See the [module documentation](self) for how it is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Precedence {
    /// [`LifecycleStatus::rank`] of the event's status (`None` for an unknown status).
    pub rank: Option<u8>,
    /// The event's time.
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub occurred_at: DateTime<Utc>,
    /// The event's status.
    pub status: LifecycleStatus,
}

impl Precedence {
    /// The precedence key of one event.
    pub fn of(event: &CallEvent) -> Self {
        Precedence {
            rank: event.status.rank(),
            occurred_at: event.occurred_at,
            status: event.status.clone(),
        }
    }
}

impl Ord for Precedence {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank
            .cmp(&other.rank)
            .then(self.occurred_at.cmp(&other.occurred_at))
            .then_with(|| self.status.as_str().cmp(other.status.as_str()))
    }
}

impl PartialOrd for Precedence {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// For each field of a [`CallState`], the precedence of the event it came from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Provenance {
    /// Event that set `lifecycle_status`.
    pub lifecycle_status: Option<Precedence>,
    /// Event that set `agent_id`.
    pub agent_id: Option<Precedence>,
    /// Event that set `phone_number`.
    pub phone_number: Option<Precedence>,
    /// Event that set `lead_type`.
    pub lead_type: Option<Precedence>,
    /// Event that set `hangup_by`.
    pub hangup_by: Option<Precedence>,
    /// Event that set `hangup_reason`.
    pub hangup_reason: Option<Precedence>,
    /// Event that set `hangup_provider_code`.
    pub hangup_provider_code: Option<Precedence>,
    /// Event that set `recording_url`.
    pub recording_url: Option<Precedence>,
    /// Event that set `transcript`.
    pub transcript: Option<Precedence>,
    /// Event that set `contact_name`.
    pub contact_name: Option<Precedence>,
    /// Event that set `contact_company`.
    pub contact_company: Option<Precedence>,
    /// Event that set `batch_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<Precedence>,
    /// Event that set `ending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ending: Option<Precedence>,
    /// Event that set `cost`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Precedence>,
    /// The event whose talk time set `charge`: (is `completed`, its key, the talk time's bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge: Option<ChargeSource>,
    /// Earliest `call_created_at` seen.
    #[serde(serialize_with = "crate::timestamp::serialize_option")]
    pub earliest_call_created_at: Option<DateTime<Utc>>,
    /// Earliest `occurred_at` seen.
    #[serde(serialize_with = "crate::timestamp::serialize_option")]
    pub earliest_occurred_at: Option<DateTime<Utc>>,
}

impl LifecycleStatus {
    /// Every status calltrail knows, in rank order.
    pub const KNOWN: &'static [LifecycleStatus] = &[
        LifecycleStatus::Scheduled,
        LifecycleStatus::Queued,
        LifecycleStatus::Rescheduled,
        LifecycleStatus::Initiated,
        LifecycleStatus::Ringing,
        LifecycleStatus::InProgress,
        LifecycleStatus::CallDisconnected,
        LifecycleStatus::Completed,
        LifecycleStatus::NoAnswer,
        LifecycleStatus::Busy,
        LifecycleStatus::Failed,
        LifecycleStatus::Canceled,
        LifecycleStatus::Stopped,
        LifecycleStatus::Error,
        LifecycleStatus::BalanceLow,
    ];

    /// Parses a provider status string (never fails: unknown strings become [`LifecycleStatus::Other`]).
    ///
    /// Matching trims and ignores ASCII case; `balance_low` is accepted for `balance-low`.
    /// [`LifecycleStatus::Other`] keeps the input exactly as given.
    pub fn parse(s: &str) -> Self {
        let normalized = s.trim().to_ascii_lowercase();
        match normalized.as_str() {
            "scheduled" => LifecycleStatus::Scheduled,
            "queued" => LifecycleStatus::Queued,
            "rescheduled" => LifecycleStatus::Rescheduled,
            "initiated" => LifecycleStatus::Initiated,
            "ringing" => LifecycleStatus::Ringing,
            "in-progress" => LifecycleStatus::InProgress,
            "call-disconnected" => LifecycleStatus::CallDisconnected,
            "completed" => LifecycleStatus::Completed,
            "no-answer" => LifecycleStatus::NoAnswer,
            "busy" => LifecycleStatus::Busy,
            "failed" => LifecycleStatus::Failed,
            "canceled" => LifecycleStatus::Canceled,
            "stopped" => LifecycleStatus::Stopped,
            "error" => LifecycleStatus::Error,
            "balance-low" | "balance_low" => LifecycleStatus::BalanceLow,
            _ => LifecycleStatus::Other(s.to_owned()),
        }
    }

    /// The status as the provider spells it.
    pub fn as_str(&self) -> &str {
        match self {
            LifecycleStatus::Scheduled => "scheduled",
            LifecycleStatus::Queued => "queued",
            LifecycleStatus::Rescheduled => "rescheduled",
            LifecycleStatus::Initiated => "initiated",
            LifecycleStatus::Ringing => "ringing",
            LifecycleStatus::InProgress => "in-progress",
            LifecycleStatus::CallDisconnected => "call-disconnected",
            LifecycleStatus::Completed => "completed",
            LifecycleStatus::NoAnswer => "no-answer",
            LifecycleStatus::Busy => "busy",
            LifecycleStatus::Failed => "failed",
            LifecycleStatus::Canceled => "canceled",
            LifecycleStatus::Stopped => "stopped",
            LifecycleStatus::Error => "error",
            LifecycleStatus::BalanceLow => "balance-low",
            LifecycleStatus::Other(s) => s,
        }
    }

    /// How far along the lifecycle this status is; `None` for an unknown status.
    ///
    /// `scheduled` 0, `queued`/`rescheduled` 1, `initiated` 2, `ringing` 3, `in-progress` 4,
    /// `call-disconnected` 5, every terminal status 6.
    pub fn rank(&self) -> Option<u8> {
        match self {
            LifecycleStatus::Scheduled => Some(0),
            LifecycleStatus::Queued | LifecycleStatus::Rescheduled => Some(1),
            LifecycleStatus::Initiated => Some(2),
            LifecycleStatus::Ringing => Some(3),
            LifecycleStatus::InProgress => Some(4),
            LifecycleStatus::CallDisconnected => Some(5),
            LifecycleStatus::Other(_) => None,
            _ => Some(6),
        }
    }

    /// True for the statuses after which the call cannot progress (`completed`, `no-answer`,
    /// `busy`, `failed`, `canceled`, `stopped`, `error`, `balance-low`).
    ///
    /// `call-disconnected` is not terminal: `completed` follows with the recording and extraction.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            LifecycleStatus::Completed
                | LifecycleStatus::NoAnswer
                | LifecycleStatus::Busy
                | LifecycleStatus::Failed
                | LifecycleStatus::Canceled
                | LifecycleStatus::Stopped
                | LifecycleStatus::Error
                | LifecycleStatus::BalanceLow
        )
    }

    /// True for `call-disconnected` and `completed`, the statuses whose duration is billed.
    pub fn is_charging(&self) -> bool {
        matches!(
            self,
            LifecycleStatus::CallDisconnected | LifecycleStatus::Completed
        )
    }

    /// True for a status outside Bolna's documented vocabulary.
    pub fn is_other(&self) -> bool {
        matches!(self, LifecycleStatus::Other(_))
    }

    /// The user-facing status for this lifecycle status (CONTRACT §3).
    pub fn call_status(&self) -> CallStatus {
        match self {
            LifecycleStatus::Completed => CallStatus::Completed,
            LifecycleStatus::NoAnswer
            | LifecycleStatus::Busy
            | LifecycleStatus::Failed
            | LifecycleStatus::Error
            | LifecycleStatus::BalanceLow => CallStatus::Failed,
            LifecycleStatus::Canceled | LifecycleStatus::Stopped => CallStatus::Cancelled,
            _ => CallStatus::InProgress,
        }
    }
}

impl std::fmt::Display for LifecycleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for LifecycleStatus {
    fn from(value: String) -> Self {
        LifecycleStatus::parse(&value)
    }
}

impl From<LifecycleStatus> for String {
    fn from(value: LifecycleStatus) -> Self {
        value.as_str().to_owned()
    }
}

impl CallStatus {
    /// `in_progress`, `completed`, `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::InProgress => "in_progress",
            CallStatus::Completed => "completed",
            CallStatus::Failed => "failed",
            CallStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for CallStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Folds a call's events, in the given (log) order, into a fresh [`CallState`].
pub fn fold<'a>(
    events: impl IntoIterator<Item = &'a CallEvent>,
    credits_per_minute: i64,
) -> CallState {
    let mut state = CallState::default();
    for event in events {
        state.apply(event, credits_per_minute);
    }
    state
}

impl CallState {
    /// Folds one event into the state. `credits_per_minute` is the billing rate.
    ///
    /// Order-independent except for the charge; see the [module documentation](self).
    pub fn apply(&mut self, event: &CallEvent, credits_per_minute: i64) {
        let key = Precedence::of(event);
        let prov = &mut self.provenance;

        if key.rank.is_some()
            && prov
                .lifecycle_status
                .as_ref()
                .is_none_or(|current| key > *current)
        {
            self.lifecycle_status = Some(event.status.clone());
            prov.lifecycle_status = Some(key.clone());
        }

        // Each optional field: keep the value of the highest-precedence event that has one.
        macro_rules! keep_best {
            ($($field:ident),+) => {
                $(keep_best(&mut self.$field, &mut prov.$field, event.$field.as_ref(), &key);)+
            };
        }
        keep_best!(
            agent_id,
            phone_number,
            lead_type,
            hangup_by,
            hangup_reason,
            hangup_provider_code,
            recording_url,
            transcript,
            contact_name,
            contact_company,
            batch_id
        );
        let ending = event.ending.or_else(|| Ending::of_status(&event.status));
        keep_best(&mut self.ending, &mut prov.ending, ending.as_ref(), &key);
        keep_best_by(
            &mut self.cost,
            &mut prov.cost,
            event.cost.as_ref(),
            &key,
            Cost::total_cmp,
        );

        let stage_time = match event.status {
            LifecycleStatus::Ringing => Some(&mut self.ringing_started_at),
            LifecycleStatus::InProgress => Some(&mut self.call_answered_at),
            LifecycleStatus::CallDisconnected => Some(&mut self.call_disconnected_at),
            LifecycleStatus::Completed => Some(&mut self.completed_at),
            _ => None,
        };
        if let Some(slot) = stage_time {
            keep_earliest(slot, Some(event.occurred_at));
        }

        keep_earliest(&mut prov.earliest_call_created_at, event.call_created_at);
        keep_earliest(&mut prov.earliest_occurred_at, Some(event.occurred_at));
        self.created_at = prov.earliest_call_created_at.or(prov.earliest_occurred_at);

        if let Some(source) = ChargeSource::of(event, &key) {
            if prov.charge.as_ref().is_none_or(|current| source > *current) {
                self.charge = Some(billing::charge(source.seconds, credits_per_minute));
                prov.charge = Some(source);
            }
        }
        self.anomalies.extend(event.anomalies.iter().copied());
    }

    /// The user-facing status derived from the lifecycle status.
    pub fn status(&self) -> CallStatus {
        self.lifecycle_status
            .as_ref()
            .map_or(CallStatus::InProgress, LifecycleStatus::call_status)
    }

    /// The call's outcome given whether its analysis booked a demo ([`Outcome::derive`]).
    pub fn outcome(&self, booked: bool) -> Outcome {
        Outcome::derive(booked, self.ending)
    }

    /// True once the call reached a terminal lifecycle status.
    pub fn is_terminal(&self) -> bool {
        self.lifecycle_status
            .as_ref()
            .is_some_and(LifecycleStatus::is_terminal)
    }
}

/// The event a call's charge follows, ordered so that the greatest is the final duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeSource {
    /// A `completed` outranks every `call-disconnected`.
    pub completed: bool,
    /// Then the event's precedence.
    pub precedence: Precedence,
    /// Then the greater talk time.
    pub seconds: f64,
}

impl ChargeSource {
    /// The charge source an event offers: a `completed` with a talk time, or a
    /// `call-disconnected` with one above 0.
    fn of(event: &CallEvent, key: &Precedence) -> Option<Self> {
        let seconds = event.conversation_seconds.filter(|s| !s.is_nan())?;
        let completed = match event.status {
            LifecycleStatus::Completed => true,
            LifecycleStatus::CallDisconnected if seconds > 0.0 => false,
            _ => return None,
        };
        Some(ChargeSource {
            completed,
            precedence: key.clone(),
            seconds,
        })
    }
}

impl PartialOrd for ChargeSource {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(
            self.completed
                .cmp(&other.completed)
                .then_with(|| self.precedence.cmp(&other.precedence))
                .then_with(|| self.seconds.total_cmp(&other.seconds)),
        )
    }
}

/// Replaces `slot` with `candidate` when the candidate's event outranks the one that set it
/// (equal keys: the greater value wins, so the result does not depend on order).
fn keep_best<T: Ord + Clone>(
    slot: &mut Option<T>,
    source: &mut Option<Precedence>,
    candidate: Option<&T>,
    key: &Precedence,
) {
    keep_best_by(slot, source, candidate, key, T::cmp);
}

/// [`keep_best`] with the values' order given (for values without [`Ord`], e.g. a cost).
fn keep_best_by<T: Clone>(
    slot: &mut Option<T>,
    source: &mut Option<Precedence>,
    candidate: Option<&T>,
    key: &Precedence,
    order: impl Fn(&T, &T) -> Ordering,
) {
    let Some(candidate) = candidate else {
        return;
    };
    let better = match (source.as_ref(), slot.as_ref()) {
        (Some(current_key), Some(current)) => match key.cmp(current_key) {
            Ordering::Greater => true,
            Ordering::Equal => order(candidate, current) == Ordering::Greater,
            Ordering::Less => false,
        },
        _ => true,
    };
    if better {
        *slot = Some(candidate.clone());
        *source = Some(key.clone());
    }
}

/// Keeps the earlier of `slot` and `candidate`.
fn keep_earliest(slot: &mut Option<DateTime<Utc>>, candidate: Option<DateTime<Utc>>) {
    if let Some(candidate) = candidate {
        if slot.is_none_or(|current| candidate < current) {
            *slot = Some(candidate);
        }
    }
}
