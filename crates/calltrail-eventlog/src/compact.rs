//! The compact copy of an event's `data` (`events.compact`, migration 0011): what replay and
//! the projector read instead of rendering the `data` jsonb as text and parsing it again.
//!
//! Layout: one format byte ([`FORMAT`]), one byte of the event's `schema_version`, then the
//! `data` document as MessagePack with every object a map of named fields
//! (`rmp_serde::to_vec_named`). Named fields make it read exactly like the JSON it was made
//! from: a field added later with `#[serde(default)]` is defaulted in old rows as it is in
//! their JSON, an unknown field is ignored as in JSON, and `skip_serializing_if` works (a
//! positional format such as postcard or bincode cannot omit a field).
//!
//! A value whose format byte is not [`FORMAT`], whose schema byte is not the row's
//! `schema_version`, or that does not decode, is never guessed at: the reader falls back to
//! the row's `data` ([`note_fallback`] counts and logs it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::de::DeserializeOwned;

/// The current compact format: MessagePack of the `data` document, named fields.
pub const FORMAT: u8 = 1;

/// Why a compact value cannot be used (its row's `data` is read instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// Too short to hold the two header bytes.
    #[error("compact value is too short ({0} bytes)")]
    Truncated(usize),
    /// Written in a format this build does not read.
    #[error("compact format {found} (this build reads {FORMAT})")]
    UnknownFormat {
        /// The format byte found.
        found: u8,
    },
    /// Its schema byte is not the row's `schema_version`.
    #[error("compact value is of schema {found}, its row of schema {expected}")]
    SchemaMismatch {
        /// The schema byte found.
        found: u8,
        /// The row's `schema_version`.
        expected: i32,
    },
    /// The MessagePack does not decode into the wanted type.
    #[error("compact value does not decode: {0}")]
    Undecodable(String),
}

/// The compact copy of `data` (JSON text) for an event of `schema_version`; `None` when
/// `data` is not JSON or the version does not fit in a byte (the row then has no compact copy
/// and readers use `data`, as for rows written before the column existed).
pub fn encode(schema_version: i32, data: &str) -> Option<Vec<u8>> {
    let schema = u8::try_from(schema_version).ok()?;
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    let mut out = Vec::with_capacity(data.len() / 2 + 2);
    out.push(FORMAT);
    out.push(schema);
    rmp_serde::encode::write_named(&mut out, &value).ok()?;
    Some(out)
}

/// Decodes a compact value of a row of `schema_version` into `T`.
pub fn decode<T: DeserializeOwned>(schema_version: i32, compact: &[u8]) -> Result<T, CompactError> {
    let body = body(schema_version, compact)?;
    rmp_serde::from_slice(body).map_err(|e| CompactError::Undecodable(e.to_string()))
}

/// The MessagePack body of a compact value, after checking its header.
fn body(schema_version: i32, compact: &[u8]) -> Result<&[u8], CompactError> {
    let [format, schema, body @ ..] = compact else {
        return Err(CompactError::Truncated(compact.len()));
    };
    if *format != FORMAT {
        return Err(CompactError::UnknownFormat { found: *format });
    }
    if i32::from(*schema) != schema_version {
        return Err(CompactError::SchemaMismatch {
            found: *schema,
            expected: schema_version,
        });
    }
    Ok(body)
}

static FALLBACKS: AtomicU64 = AtomicU64::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);

/// Counts a compact value that could not be used (its row's `data` was read instead); the
/// first one in this process is logged as a warning, later ones at debug level.
pub fn note_fallback(position: i64, error: &CompactError) {
    FALLBACKS.fetch_add(1, Ordering::Relaxed);
    if WARNED.swap(true, Ordering::Relaxed) {
        tracing::debug!(position, %error, "compact value unusable; read data instead");
    } else {
        tracing::warn!(
            position,
            %error,
            "compact value unusable; read the event's data instead (logged once, counted in compact_fallbacks)"
        );
    }
}

/// Compact values that could not be used since this process started.
pub fn fallbacks() -> u64 {
    FALLBACKS.load(Ordering::Relaxed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Before {
        id: String,
        seconds: Option<f64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
    }

    /// `Before` with a field added the way CONTRACT-compatible fields are added.
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct After {
        id: String,
        #[serde(default)]
        cost: Option<i64>,
        seconds: Option<f64>,
        #[serde(default)]
        tags: Vec<String>,
    }

    fn json(value: &impl serde::Serialize) -> String {
        serde_json::to_string(value).unwrap()
    }

    #[test]
    fn round_trips_and_reads_like_its_json() {
        let before = Before {
            id: "c-1".into(),
            seconds: Some(27.2),
            tags: vec![],
        };
        let data = json(&before);
        let compact = encode(1, &data).unwrap();
        assert_eq!(compact.first(), Some(&FORMAT));
        assert_eq!(decode::<Before>(1, &compact), Ok(before));
        // A field added later with a default: old compact rows read as their JSON does.
        let from_json: After = serde_json::from_str(&data).unwrap();
        assert_eq!(decode::<After>(1, &compact), Ok(from_json));
        assert_eq!(decode::<After>(1, &compact).map(|a| a.cost), Ok(None));
    }

    #[test]
    fn an_unknown_format_or_schema_or_garbage_is_an_error_not_a_guess() {
        let compact = encode(1, r#"{"id":"c","seconds":null}"#).unwrap();
        let mut future = compact.clone();
        future[0] = FORMAT + 1;
        assert_eq!(
            decode::<Before>(1, &future),
            Err(CompactError::UnknownFormat { found: FORMAT + 1 })
        );
        assert!(matches!(
            decode::<Before>(2, &compact),
            Err(CompactError::SchemaMismatch { found: 1, .. })
        ));
        assert_eq!(
            decode::<Before>(1, &[FORMAT]),
            Err(CompactError::Truncated(1))
        );
        let mut garbage = vec![FORMAT, 1];
        garbage.extend_from_slice(&[0xc1, 0xff, 0x00]);
        assert!(matches!(
            decode::<Before>(1, &garbage),
            Err(CompactError::Undecodable(_))
        ));
        let cut = &compact[..compact.len() - 3];
        assert!(matches!(
            decode::<Before>(1, cut),
            Err(CompactError::Undecodable(_))
        ));
    }

    #[test]
    fn a_call_event_reads_from_its_compact_copy_as_from_its_json() {
        use calltrail_core::event::CALL_EVENT_SCHEMA_VERSION;
        use calltrail_core::CallEvent;
        // Every field set, integers where floats are expected (as JSON may carry them).
        let data = r#"{"provider":"vapi","execution_id":"call-1","status":"completed",
            "occurred_at":"2025-10-08T09:28:12.540198Z","call_created_at":"2025-10-08T09:14:58Z",
            "agent_id":"agent","phone_number":"+14155550001","lead_type":"outbound",
            "conversation_seconds":27,"hangup_by":"Callee","hangup_reason":"done",
            "hangup_provider_code":4000,"recording_url":"https://r.example/1.mp3",
            "transcript":"user: hi\n","contact_name":"Ann","contact_company":"Acme",
            "contact_email":"ann@acme.example","batch_id":"b-1",
            "anomalies":["duration_out_of_range"],"ending":"voicemail",
            "cost":{"amount":0.125,"unit":"usd"}}"#;
        let from_json: CallEvent = serde_json::from_str(data).unwrap();
        let compact = encode(CALL_EVENT_SCHEMA_VERSION, data).unwrap();
        assert_eq!(
            decode::<CallEvent>(CALL_EVENT_SCHEMA_VERSION, &compact).unwrap(),
            from_json
        );
        // And as the appender gets it: serialized by serde_json, optional fields left out.
        let minimal = r#"{"provider":"bolna","execution_id":"e","status":"ringing",
            "occurred_at":"2025-10-08T09:28:12Z","call_created_at":null,"agent_id":null,
            "phone_number":null,"lead_type":null,"conversation_seconds":null,"hangup_by":null,
            "hangup_reason":null,"hangup_provider_code":null,"recording_url":null,
            "transcript":null,"contact_name":null,"contact_company":null}"#;
        let event: CallEvent = serde_json::from_str(minimal).unwrap();
        let data = serde_json::to_string(&event).unwrap();
        let compact = encode(CALL_EVENT_SCHEMA_VERSION, &data).unwrap();
        assert_eq!(
            decode::<CallEvent>(CALL_EVENT_SCHEMA_VERSION, &compact).unwrap(),
            event
        );
        assert!(compact.len() < data.len());
    }

    #[test]
    fn no_compact_copy_for_what_is_not_json_or_a_large_version() {
        assert_eq!(encode(1, "not json"), None);
        assert_eq!(encode(300, "{}"), None);
        assert_eq!(encode(-1, "{}"), None);
    }
}
