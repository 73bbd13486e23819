//! Reading an event's `data` for folding: call events, credit grants and `analysis.*` results;
//! anything that cannot be read says why (it becomes a dead letter).
//!
//! An event read with its compact copy (`events.compact`) is decoded from that. A compact copy
//! that cannot be used (another format, another schema, does not decode) is never guessed at:
//! [`decode_events`] reads the event's `data` from the log and decodes that instead, so the
//! event folds (or becomes a dead letter, with JSON's words) exactly as without a compact copy.

use calltrail_core::analysis::{
    parse_analysis_event_type, AnalysisFailed, AnalysisRecorded, ANALYSIS_EVENT_SCHEMA_VERSION,
    ANALYSIS_FAILED,
};
use calltrail_core::campaign::{
    AttributionSet, CampaignCreated, CampaignRenamed, RecipientsAdded, ATTRIBUTION_SET,
    CAMPAIGN_CREATED, CAMPAIGN_EVENT_SCHEMA_VERSION, CAMPAIGN_RENAMED, RECIPIENTS_ADDED,
};
use calltrail_core::event::CALL_EVENT_SCHEMA_VERSION;
use calltrail_core::CallEvent;
use calltrail_eventlog::compact::{self, CompactError};
use calltrail_eventlog::{EventLog, StoredEvent};
use serde::de::DeserializeOwned;

/// Provider name of events calltrail creates itself.
pub const CALLTRAIL_PROVIDER: &str = "calltrail";
/// Event type of a credit grant (`data = {"amount": N}`, N > 0).
pub const CREDITS_GRANTED: &str = "credits.granted";

/// Event type of a credit adjustment (`data = {"amount": N, "reason": "…"}`, N ≠ 0, either
/// sign): `calltrail admin adjust-credits`.
pub const CREDITS_ADJUSTED: &str = "credits.adjusted";

/// An event decoded for folding.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A provider webhook, normalized.
    Call(Box<CallEvent>),
    /// `credits.granted`: a positive amount.
    Grant {
        /// Credits granted (> 0).
        amount: i64,
    },
    /// `credits.adjusted`: a signed amount.
    Adjustment {
        /// Credits added (> 0) or taken (< 0).
        amount: i64,
    },
    /// `analysis.individual`, `analysis.complete` or `analysis.failed`.
    Analysis(Box<AnalysisDecoded>),
    /// `campaign.*` and `attribution.set`.
    Campaign(Box<CampaignDecoded>),
    /// Any other event: only recorded in the timeline of a known call.
    Other,
}

/// A decoded campaign or attribution event.
#[derive(Debug, Clone, PartialEq)]
pub enum CampaignDecoded {
    /// `campaign.created`.
    Created(CampaignCreated),
    /// `campaign.renamed`.
    Renamed(CampaignRenamed),
    /// `campaign.recipients_added`.
    RecipientsAdded(RecipientsAdded),
    /// `attribution.set`.
    AttributionSet(AttributionSet),
}

/// A decoded `analysis.*` event.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // always boxed, in `Decoded::Analysis`
pub enum AnalysisDecoded {
    /// `analysis.individual` or `analysis.complete`.
    Recorded(AnalysisRecorded),
    /// `analysis.failed`.
    Failed(AnalysisFailed),
}

/// A batch's events paired with their decoding.
pub type DecodedBatch<'a> = Vec<(&'a StoredEvent, Result<Decoded, String>)>;

/// Decodes a batch of events that carry their `data` or a usable compact copy (events read
/// from the log go through [`decode_events`], then [`pair`]).
pub fn decode_batch(events: &[StoredEvent]) -> DecodedBatch<'_> {
    events.iter().map(|e| (e, decode(e))).collect()
}

/// A batch paired with its decodings (from [`decode_events`], in the same order).
pub fn pair(events: &[StoredEvent], decoded: Vec<Result<Decoded, String>>) -> DecodedBatch<'_> {
    events.iter().zip(decoded).collect()
}

/// Decodes events as read from the log, in order. An event whose compact copy cannot be used
/// gets its `data` read from the log ([`compact::note_fallback`]: counted, the first logged)
/// and is decoded from that instead.
pub async fn decode_events(
    log: &EventLog,
    events: &mut [StoredEvent],
) -> Result<Vec<Result<Decoded, String>>, crate::Error> {
    let mut decoded = Vec::with_capacity(events.len());
    let mut unusable = Vec::new();
    for (i, event) in events.iter().enumerate() {
        match try_decode(event) {
            Ok(result) => decoded.push(result),
            Err(error) => {
                compact::note_fallback(event.position, &error);
                unusable.push(i);
                decoded.push(Err(error.to_string()));
            }
        }
    }
    if unusable.is_empty() {
        return Ok(decoded);
    }
    let positions: Vec<i64> = unusable.iter().map(|&i| events[i].position).collect();
    let mut data: std::collections::HashMap<i64, String> =
        log.data_of(&positions).await?.into_iter().collect();
    for i in unusable {
        let event = &mut events[i];
        event.compact = None;
        event.data = data.remove(&event.position).unwrap_or_default();
        decoded[i] = decode(event);
    }
    Ok(decoded)
}

/// Decodes an event's `data` (or its compact copy); the error says why it cannot be folded (it
/// becomes a dead letter). A compact copy that cannot be used, with no `data` beside it, is
/// such an error here: [`decode_events`] reads `data` first.
pub fn decode(event: &StoredEvent) -> Result<Decoded, String> {
    try_decode(event).unwrap_or_else(|error| Err(format!("compact copy unusable: {error}")))
}

/// Reads an event's document, from its compact copy when it has one, else from `data`; remembers
/// why a compact copy could not be used.
#[derive(Default)]
struct Reader {
    unusable: std::cell::Cell<Option<CompactError>>,
}

impl Reader {
    /// The event's document as `T`; the error in the parser's words.
    fn read<T: DeserializeOwned>(&self, event: &StoredEvent) -> Result<T, String> {
        match &event.compact {
            Some(bytes) => compact::decode(event.schema_version, bytes).map_err(|error| {
                let message = error.to_string();
                self.unusable.set(Some(error));
                message
            }),
            None => serde_json::from_str(&event.data).map_err(|e| e.to_string()),
        }
    }
}

/// Decodes an event; `Err` when its compact copy could not be used (decode `data` instead).
fn try_decode(event: &StoredEvent) -> Result<Result<Decoded, String>, CompactError> {
    let reader = Reader::default();
    let decoded = decode_with(&reader, event);
    match reader.unusable.take() {
        Some(error) => Err(error),
        None => Ok(decoded),
    }
}

/// The decoding proper, reading documents through `reader`.
fn decode_with(reader: &Reader, event: &StoredEvent) -> Result<Decoded, String> {
    if event.provider == CALLTRAIL_PROVIDER && event.event_type == CREDITS_GRANTED {
        #[derive(serde::Deserialize)]
        struct Grant {
            amount: i64,
        }
        let grant: Grant = reader
            .read(event)
            .map_err(|e| format!("credit grant data is not {{\"amount\": N}}: {e}"))?;
        if grant.amount <= 0 {
            return Err(format!(
                "credit grant amount must be positive, got {}",
                grant.amount
            ));
        }
        return Ok(Decoded::Grant {
            amount: grant.amount,
        });
    }
    if event.provider == CALLTRAIL_PROVIDER && event.event_type == CREDITS_ADJUSTED {
        #[derive(serde::Deserialize)]
        struct Adjustment {
            amount: i64,
        }
        let adjustment: Adjustment = reader.read(event).map_err(|e| {
            format!("credit adjustment data is not {{\"amount\": N, \"reason\": …}}: {e}")
        })?;
        if adjustment.amount == 0 {
            return Err("credit adjustment amount must not be 0".to_owned());
        }
        return Ok(Decoded::Adjustment {
            amount: adjustment.amount,
        });
    }
    if let Some(analysis) = decode_analysis(reader, event) {
        return analysis;
    }
    if event.provider == CALLTRAIL_PROVIDER {
        if let Some(campaign) = decode_campaign(reader, event) {
            return campaign;
        }
    }
    if event.provider == CALLTRAIL_PROVIDER || event.event_type.starts_with("analysis.") {
        return Ok(Decoded::Other);
    }
    if event.schema_version != CALL_EVENT_SCHEMA_VERSION {
        return Err(format!(
            "unsupported call event schema_version {} (this build reads {CALL_EVENT_SCHEMA_VERSION})",
            event.schema_version
        ));
    }
    let call: CallEvent = reader
        .read(event)
        .map_err(|e| format!("call event data cannot be decoded: {e}"))?;
    Ok(Decoded::Call(Box::new(call)))
}

/// Decodes an `analysis.individual`/`complete`/`failed` event; `None` for any other type.
fn decode_analysis(reader: &Reader, event: &StoredEvent) -> Option<Result<Decoded, String>> {
    // A re-run's `.vN` types decode like the first run's.
    let (base, _version) = parse_analysis_event_type(&event.event_type)?;
    let failed = base == ANALYSIS_FAILED;
    if event.schema_version != ANALYSIS_EVENT_SCHEMA_VERSION {
        return Some(Err(format!(
            "unsupported {} schema_version {} (this build reads {ANALYSIS_EVENT_SCHEMA_VERSION})",
            event.event_type, event.schema_version
        )));
    }
    let decoded = if failed {
        reader
            .read(event)
            .map(AnalysisDecoded::Failed)
            .map_err(|e| format!("analysis.failed data cannot be decoded: {e}"))
    } else {
        reader
            .read::<AnalysisRecorded>(event)
            .map_err(|e| format!("{} data cannot be decoded: {e}", event.event_type))
            .and_then(|r| {
                if calltrail_core::analysis::recorded_event_type(r.kind) == base {
                    Ok(AnalysisDecoded::Recorded(r))
                } else {
                    Err(format!(
                        "{} data has kind {}",
                        event.event_type,
                        r.kind.as_str()
                    ))
                }
            })
    };
    Some(decoded.map(|d| Decoded::Analysis(Box::new(d))))
}

/// Decodes a `campaign.*` or `attribution.set` event; `None` for any other type.
fn decode_campaign(reader: &Reader, event: &StoredEvent) -> Option<Result<Decoded, String>> {
    fn read<T: DeserializeOwned>(
        reader: &Reader,
        event: &StoredEvent,
        wrap: fn(T) -> CampaignDecoded,
    ) -> Result<CampaignDecoded, String> {
        reader
            .read(event)
            .map(wrap)
            .map_err(|e| format!("{} data cannot be decoded: {e}", event.event_type))
    }
    let decoded = match event.event_type.as_str() {
        CAMPAIGN_CREATED => read(reader, event, CampaignDecoded::Created),
        CAMPAIGN_RENAMED => read(reader, event, CampaignDecoded::Renamed),
        RECIPIENTS_ADDED => read(reader, event, CampaignDecoded::RecipientsAdded),
        ATTRIBUTION_SET => read(reader, event, CampaignDecoded::AttributionSet),
        _ => return None,
    };
    if event.schema_version != CAMPAIGN_EVENT_SCHEMA_VERSION {
        return Some(Err(format!(
            "unsupported {} schema_version {} (this build reads {CAMPAIGN_EVENT_SCHEMA_VERSION})",
            event.event_type, event.schema_version
        )));
    }
    Some(decoded.map(|d| Decoded::Campaign(Box::new(d))))
}
