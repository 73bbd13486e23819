//! The provider-neutral call event.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::lifecycle::LifecycleStatus;
use crate::phone::PhoneNumber;

/// Version of the normalized [`CallEvent`] shape stored in the log's `data` column.
pub const CALL_EVENT_SCHEMA_VERSION: i32 = 1;

pub use crate::providers::{Provider, UnknownProvider};

/// Direction of a call from the business's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeadType {
    /// The contact called the agent.
    Inbound,
    /// The agent called the contact.
    Outbound,
}

impl LeadType {
    /// `inbound` or `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            LeadType::Inbound => "inbound",
            LeadType::Outbound => "outbound",
        }
    }

    /// Parses `inbound` / `outbound` (trimmed, any case); anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("inbound") {
            Some(LeadType::Inbound)
        } else if s.eq_ignore_ascii_case("outbound") {
            Some(LeadType::Outbound)
        } else {
            None
        }
    }
}

/// One webhook, normalized: what the projections need from any provider's payload.
///
/// Stored beside the raw payload in the event log (`data` column, version
/// [`CALL_EVENT_SCHEMA_VERSION`]) so a replay never re-parses provider JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    /// Which provider sent it.
    pub provider: Provider,
    /// The provider's execution / call id (opaque string).
    pub execution_id: String,
    /// The lifecycle status this webhook reports, exactly as sent.
    pub status: LifecycleStatus,
    /// Event time: the payload's own timestamp, else the receive time.
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub occurred_at: DateTime<Utc>,
    /// When the provider says the call was created, if it says.
    #[serde(serialize_with = "crate::timestamp::serialize_option")]
    pub call_created_at: Option<DateTime<Utc>>,
    /// The provider's agent id.
    pub agent_id: Option<String>,
    /// The contact's number (callee for outbound, caller for inbound).
    pub phone_number: Option<PhoneNumber>,
    /// Call direction.
    pub lead_type: Option<LeadType>,
    /// Talk time in seconds as reported (e.g. 27.2); `None` when absent or null.
    pub conversation_seconds: Option<f64>,
    /// Who hung up (`Callee`, `Carrier`, …).
    pub hangup_by: Option<String>,
    /// Why the call ended.
    pub hangup_reason: Option<String>,
    /// Telephony provider's hangup code.
    pub hangup_provider_code: Option<i64>,
    /// Recording URL, once available.
    pub recording_url: Option<String>,
    /// Plain-text transcript, once available (empty strings are `None`).
    pub transcript: Option<String>,
    /// Contact's name when the provider passes one through (e.g. Bolna `context_details.recipient_data`).
    pub contact_name: Option<String>,
    /// Contact's company when the provider passes one through.
    pub contact_company: Option<String>,
    /// Contact's e-mail address when the provider extracted one (Bolna `extracted_data.email`).
    /// Absent in events recorded before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    /// The batch the call was placed in (Bolna `batch_id`; for the others a `campaign_id` key
    /// in the call's own metadata, CONTRACT §6): attributes the call to the campaign that
    /// claims it. Absent in events recorded before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// What the provider sent that could not be trusted (an unparseable time, set by the
    /// parser; [`CallEvent::bound`] adds the out-of-range ones). Absent in older events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<Anomaly>,
    /// How the call ended, in provider-neutral terms, when this webhook says so (Vapi
    /// `endedReason`, Retell `disconnection_reason`, …): one input of the Call's `outcome`.
    /// Absent in events recorded before it existed, and on webhooks that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending: Option<Ending>,
    /// The call's cost as the provider itself reports it on this webhook, never converted.
    /// Absent in events recorded before it existed, and on webhooks without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

/// How a call ended, as a provider reports it, in calltrail's provider-neutral words.
///
/// A normal hang-up after a conversation has no `Ending`: only these endings decide a Call's
/// `outcome` (CONTRACT §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The call was handed to another party (a human, another number).
    Transferred,
    /// A voicemail or answering machine picked up.
    Voicemail,
    /// Nobody answered.
    NoAnswer,
    /// The line was busy.
    Busy,
    /// The call could not be placed or broke off with an error.
    Failed,
}

impl Ending {
    /// The snake_case name the API shows as the Call's `outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Transferred => "transferred",
            Ending::Voicemail => "voicemail",
            Ending::NoAnswer => "no_answer",
            Ending::Busy => "busy",
            Ending::Failed => "failed",
        }
    }

    /// The ending a lifecycle status itself says: `no-answer`, `busy`, and `failed`/`error`/
    /// `balance-low` (the call could not be placed) as failed; `None` for every other status.
    ///
    /// The fold falls back to it for events recorded before [`CallEvent::ending`] existed, so
    /// those calls get the same outcome on replay as new ones.
    pub fn of_status(status: &LifecycleStatus) -> Option<Ending> {
        match status {
            LifecycleStatus::NoAnswer => Some(Ending::NoAnswer),
            LifecycleStatus::Busy => Some(Ending::Busy),
            LifecycleStatus::Failed | LifecycleStatus::Error | LifecycleStatus::BalanceLow => {
                Some(Ending::Failed)
            }
            _ => None,
        }
    }
}

/// A call's business outcome (CONTRACT §6 `outcome`), derived by [`Outcome::derive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The call's analysis records a booked demo or meeting.
    Booked,
    /// Handed to another party.
    Transferred,
    /// A voicemail or answering machine picked up.
    Voicemail,
    /// The caller only wanted information. Reserved: the analysis has no such field yet, so
    /// it is never derived today.
    Information,
    /// Nobody answered.
    NoAnswer,
    /// The line was busy.
    Busy,
    /// Could not be placed, or broke off with an error.
    Failed,
    /// Anything else: a conversation without a booking, a cancelled call, a call in progress.
    Other,
}

impl Outcome {
    /// Every outcome, in the order of CONTRACT §6.
    pub const ALL: &'static [Outcome] = &[
        Outcome::Booked,
        Outcome::Transferred,
        Outcome::Voicemail,
        Outcome::Information,
        Outcome::NoAnswer,
        Outcome::Busy,
        Outcome::Failed,
        Outcome::Other,
    ];

    /// The snake_case name the API shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Booked => "booked",
            Outcome::Transferred => "transferred",
            Outcome::Voicemail => "voicemail",
            Outcome::Information => "information",
            Outcome::NoAnswer => "no_answer",
            Outcome::Busy => "busy",
            Outcome::Failed => "failed",
            Outcome::Other => "other",
        }
    }

    /// Parses a name given by [`Outcome::as_str`] (exactly).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|o| o.as_str() == s)
    }

    /// The outcome of a call, by precedence: `booked` (its analysis booked a demo) over the
    /// provider's ending (transferred, voicemail, no_answer, busy, failed) over `other`.
    /// `information` has no input yet and is never the result.
    pub fn derive(booked: bool, ending: Option<Ending>) -> Outcome {
        if booked {
            return Outcome::Booked;
        }
        match ending {
            Some(Ending::Transferred) => Outcome::Transferred,
            Some(Ending::Voicemail) => Outcome::Voicemail,
            Some(Ending::NoAnswer) => Outcome::NoAnswer,
            Some(Ending::Busy) => Outcome::Busy,
            Some(Ending::Failed) => Outcome::Failed,
            None => Outcome::Other,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider's own reported cost of a call: the number exactly as sent, and its unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// The amount as the provider sent it (not converted, not rounded).
    pub amount: f64,
    /// What the amount counts (the provider's documented unit).
    pub unit: CostUnit,
}

impl Cost {
    /// A cost of `amount` in `unit` when the amount is a finite number not below 0.
    pub fn of(amount: Option<f64>, unit: CostUnit) -> Option<Cost> {
        amount
            .filter(|a| a.is_finite() && *a >= 0.0)
            .map(|amount| Cost { amount, unit })
    }

    /// A total order (amount, then unit), so the fold settles equal-precedence costs alike in
    /// every order.
    pub fn total_cmp(&self, other: &Cost) -> std::cmp::Ordering {
        self.amount
            .total_cmp(&other.amount)
            .then(self.unit.cmp(&other.unit))
    }
}

/// The unit of a provider's reported cost (each provider documents one; none sends it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostUnit {
    /// US dollars (Vapi `cost`).
    Usd,
    /// Cents of the provider account's currency (Bolna `total_cost`, Retell `combined_cost`).
    Cents,
    /// The provider's own credits (ElevenLabs `metadata.cost`).
    Credits,
}

impl CostUnit {
    /// The snake_case name the API shows as `cost_unit`.
    pub fn as_str(self) -> &'static str {
        match self {
            CostUnit::Usd => "usd",
            CostUnit::Cents => "cents",
            CostUnit::Credits => "credits",
        }
    }

    /// Parses a name given by [`CostUnit::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "usd" => Some(CostUnit::Usd),
            "cents" => Some(CostUnit::Cents),
            "credits" => Some(CostUnit::Credits),
            _ => None,
        }
    }
}

/// A value in a webhook that calltrail did not trust and replaced (CONTRACT §3 `anomalies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anomaly {
    /// A talk time that is negative, longer than the longest call allowed, or longer than
    /// the call's own timestamps allow: treated as absent.
    DurationOutOfRange,
    /// A provider time before 2000 or more than a day after receipt: the receive time is used.
    TimestampOutOfRange,
    /// A provider time that could not be read: the receive time is used.
    TimestampUnparseable,
}

impl Anomaly {
    /// The snake_case name the API shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Anomaly::DurationOutOfRange => "duration_out_of_range",
            Anomaly::TimestampOutOfRange => "timestamp_out_of_range",
            Anomaly::TimestampUnparseable => "timestamp_unparseable",
        }
    }
}

/// The limits a webhook's own numbers must fall within to be trusted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// The longest call there can be, in seconds (`CALLTRAIL_MAX_CALL_SECONDS`).
    pub max_call_seconds: f64,
}

impl Bounds {
    /// Four hours, `CALLTRAIL_MAX_CALL_SECONDS`' default.
    pub const DEFAULT_MAX_CALL_SECONDS: f64 = 4.0 * 3600.0;
    /// How far a talk time may exceed the span between the call's creation and the event.
    pub const DURATION_SLACK_SECONDS: f64 = 300.0;
    /// How far after receipt a provider time may be (clocks drift; a day does not).
    pub const FUTURE_SLACK: TimeDelta = TimeDelta::hours(24);

    /// The earliest provider time trusted: 2000-01-01T00:00:00Z.
    pub fn earliest() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Whether [`CallEvent::bound`] would leave `event`, received at `received_at`, as it is.
    pub fn admits(&self, event: &CallEvent, received_at: DateTime<Utc>) -> bool {
        self.trusts(event.occurred_at, received_at)
            && event
                .call_created_at
                .is_none_or(|created| self.trusts(created, received_at))
            && self.duration_fits(event)
    }

    /// Whether the event's talk time (if any) is possible: not negative, not longer than the
    /// longest call, not longer than from the call's creation to this event (plus slack).
    fn duration_fits(&self, event: &CallEvent) -> bool {
        let Some(seconds) = event.conversation_seconds else {
            return true;
        };
        let span = event
            .call_created_at
            .map(|created| (event.occurred_at - created).as_seconds_f64());
        seconds >= 0.0
            && seconds <= self.max_call_seconds
            && span.is_none_or(|span| seconds <= span.max(0.0) + Self::DURATION_SLACK_SECONDS)
    }

    /// Whether a provider time is believable for an event received at `received_at`.
    pub fn trusts(&self, at: DateTime<Utc>, received_at: DateTime<Utc>) -> bool {
        at >= Self::earliest() && at <= received_at + Self::FUTURE_SLACK
    }
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_call_seconds: Self::DEFAULT_MAX_CALL_SECONDS,
        }
    }
}

impl CallEvent {
    /// Replaces every value outside `bounds` with what calltrail trusts instead, noting each in
    /// [`CallEvent::anomalies`]: an untrusted event time becomes `received_at`, an untrusted
    /// creation time and an out-of-range talk time become absent. Idempotent.
    pub fn bound(&mut self, received_at: DateTime<Utc>, bounds: &Bounds) {
        if !bounds.trusts(self.occurred_at, received_at) {
            self.occurred_at = received_at;
            self.note(Anomaly::TimestampOutOfRange);
        }
        if let Some(created) = self.call_created_at {
            if !bounds.trusts(created, received_at) {
                self.call_created_at = None;
                self.note(Anomaly::TimestampOutOfRange);
            }
        }
        if !bounds.duration_fits(self) {
            self.conversation_seconds = None;
            self.note(Anomaly::DurationOutOfRange);
        }
    }

    /// Records an anomaly once.
    pub fn note(&mut self, anomaly: Anomaly) {
        if !self.anomalies.contains(&anomaly) {
            self.anomalies.push(anomaly);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_row_before_endings() -> serde_json::Value {
        serde_json::json!({
            "provider": "vapi", "execution_id": "call-1", "status": "completed",
            "occurred_at": "2025-10-08T10:00:00Z", "call_created_at": null, "agent_id": null,
            "phone_number": null, "lead_type": null, "conversation_seconds": 12.0,
            "hangup_by": null, "hangup_reason": "voicemail", "hangup_provider_code": null,
            "recording_url": null, "transcript": null, "contact_name": null,
            "contact_company": null
        })
    }

    #[test]
    fn an_event_stored_before_ending_and_cost_still_decodes_without_them() {
        let event: CallEvent = serde_json::from_value(stored_row_before_endings())
            .unwrap_or_else(|e| panic!("an old row must decode: {e}"));
        assert_eq!((event.ending, event.cost), (None, None));
    }

    #[test]
    fn ending_and_cost_survive_the_log_and_are_left_out_when_absent() {
        let mut event: CallEvent =
            serde_json::from_value(stored_row_before_endings()).unwrap_or_else(|e| panic!("{e}"));
        let bare = serde_json::to_value(&event).unwrap_or_default();
        assert!(bare.get("ending").is_none() && bare.get("cost").is_none());

        event.ending = Some(Ending::Voicemail);
        event.cost = Some(Cost {
            amount: 0.0473,
            unit: CostUnit::Usd,
        });
        let stored = serde_json::to_value(&event).unwrap_or_default();
        assert_eq!(stored["ending"], "voicemail");
        assert_eq!(
            stored["cost"],
            serde_json::json!({"amount": 0.0473, "unit": "usd"})
        );
        let back: CallEvent = serde_json::from_value(stored).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, event);
    }
}
