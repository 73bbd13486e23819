//! Serde `deserialize_with` helpers for provider payloads.
//!
//! Optional fields never fail: a value of an unexpected type or format becomes `None`, so one odd
//! field cannot cost us the whole webhook. Numbers sent as strings (`"28"`) are accepted. Only the
//! `required_*` helpers can fail, and only for the fields without which a payload is useless.

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::PayloadError;
use crate::billing::integral_f64_to_i64;
use crate::event::{Anomaly, CallEvent};
use crate::lifecycle::LifecycleStatus;

/// Reads a JSON body whose top level must be an object into a lenient type `T`.
///
/// Fails only when the body is not JSON or not an object (`T`'s fields are all lenient). The
/// fast path reads straight from the bytes; a body with a duplicate key goes through a `Value`,
/// so the last of the duplicates wins, as in PostgreSQL's `jsonb`.
pub(crate) fn json_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, PayloadError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    // serde would also read an array into a struct (by position): only an object may take the fast path.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        match serde_json::from_slice::<T>(body) {
            Ok(parsed) => return Ok(parsed),
            Err(e) if !e.is_data() => return Err(PayloadError::MalformedJson(e.to_string())),
            Err(_) => {}
        }
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| PayloadError::MalformedJson(e.to_string()))?;
    if !value.is_object() {
        return Err(PayloadError::NotAnObject);
    }
    T::deserialize(value).map_err(|e| PayloadError::MalformedJson(e.to_string()))
}

/// The trimmed text, or `None` when absent or blank.
pub(crate) fn non_blank(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// [`non_blank`], owned.
pub(crate) fn owned_non_blank(s: Option<&str>) -> Option<String> {
    non_blank(s).map(str::to_owned)
}

/// Text kept exactly as sent (a transcript), or `None` when absent or blank.
pub(crate) fn text(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty()).map(str::to_owned)
}

/// An array of lenient objects; elements that are not objects are skipped, a non-array is `None`.
pub(crate) fn objects<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => Some(
            items
                .into_iter()
                .filter(Value::is_object)
                .filter_map(|item| T::deserialize(item).ok())
                .collect(),
        ),
        _ => None,
    })
}

/// Unix time in seconds (a number, possibly fractional, or a string holding one); else `None`.
pub(crate) fn unix_seconds<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(number(d)?.and_then(|s| from_unix_millis(s * 1000.0)))
}

/// Unix time given in milliseconds or in seconds: a magnitude of at least 10^11 is milliseconds
/// (10^11 s is the year 5138; 10^11 ms is 1973).
pub(crate) fn unix_millis_or_seconds(value: f64) -> Option<DateTime<Utc>> {
    if value.abs() >= 1e11 {
        from_unix_millis(value)
    } else {
        from_unix_millis(value * 1000.0)
    }
}

/// The time `millis` after the Unix epoch (rounded to the millisecond), within years 0000-9999.
fn from_unix_millis(millis: f64) -> Option<DateTime<Utc>> {
    if !millis.is_finite() {
        return None;
    }
    let millis = integral_f64_to_i64(millis.round())?;
    DateTime::from_timestamp_millis(millis).filter(|t| (0..=9999).contains(&t.year()))
}

/// The `campaign_id` key a user put in a call's own metadata (CONTRACT §6): the call's
/// batch id for attribution. Any other key is skipped.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CampaignKey {
    #[serde(default, deserialize_with = "string")]
    pub(crate) campaign_id: Option<String>,
}

impl CampaignKey {
    /// The non-blank `campaign_id`.
    pub(crate) fn batch_id(key: Option<&Self>) -> Option<String> {
        owned_non_blank(key.and_then(|k| k.campaign_id.as_deref()))
    }
}

/// A string (numbers are stringified); anything else is `None`.
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A finite number, or a string holding one; anything else is `None`.
pub(crate) fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite()))
}

/// An integer, or a string or integral float holding one (`"4000"`, `4000.0`); else `None`.
pub(crate) fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().and_then(integral_f64_to_i64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(integral_f64_to_i64))
        }
        _ => None,
    })
}

/// A boolean, or the strings `true`/`false`; anything else is `None`.
pub(crate) fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        Value::String(s) => s.trim().parse::<bool>().ok(),
        _ => None,
    })
}

/// A timestamp in one of the formats [`parse_timestamp`] accepts; anything else is `None`.
pub(crate) fn timestamp<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => parse_timestamp(&s),
        _ => None,
    })
}

/// A provider time as sent: absent (or null, or blank), readable, or there but unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stamp {
    /// Not sent.
    #[default]
    Absent,
    /// Sent and read.
    At(DateTime<Utc>),
    /// Sent, but in no form calltrail reads.
    Unreadable,
}

impl Stamp {
    /// The time, when it was read.
    pub fn at(self) -> Option<DateTime<Utc>> {
        match self {
            Stamp::At(at) => Some(at),
            Stamp::Absent | Stamp::Unreadable => None,
        }
    }

    /// The time, noting [`Anomaly::TimestampUnparseable`] in `event` when it was unreadable.
    pub(crate) fn noted(self, event: &mut CallEvent) -> Option<DateTime<Utc>> {
        if self == Stamp::Unreadable {
            event.note(Anomaly::TimestampUnparseable);
        }
        self.at()
    }

    /// Reads a JSON value with `read`: null and blank text are absent.
    fn of(value: &Value, read: impl FnOnce(&Value) -> Option<DateTime<Utc>>) -> Self {
        match value {
            Value::Null => Stamp::Absent,
            Value::String(s) if s.trim().is_empty() => Stamp::Absent,
            value => read(value).map_or(Stamp::Unreadable, Stamp::At),
        }
    }
}

/// Written as the time it holds, or `null`.
impl serde::Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::timestamp::serialize_option(&self.at(), serializer)
    }
}

/// [`timestamp`] as a [`Stamp`].
pub(crate) fn timestamp_stamp<'de, D: Deserializer<'de>>(d: D) -> Result<Stamp, D::Error> {
    Ok(Stamp::of(&Value::deserialize(d)?, |v| {
        v.as_str().and_then(parse_timestamp)
    }))
}

/// [`unix_seconds`] as a [`Stamp`].
pub(crate) fn unix_seconds_stamp<'de, D: Deserializer<'de>>(d: D) -> Result<Stamp, D::Error> {
    Ok(Stamp::of(&Value::deserialize(d)?, |v| {
        number_of(v).and_then(|s| from_unix_millis(s * 1000.0))
    }))
}

/// Unix time in milliseconds (a number or a string holding one), as a [`Stamp`].
pub(crate) fn unix_millis_stamp<'de, D: Deserializer<'de>>(d: D) -> Result<Stamp, D::Error> {
    Ok(Stamp::of(&Value::deserialize(d)?, |v| {
        number_of(v).and_then(from_unix_millis)
    }))
}

/// A time sent as Unix milliseconds or seconds (told apart by size, see
/// [`unix_millis_or_seconds`]), or as text in one of the formats [`parse_timestamp`] accepts.
pub(crate) fn unix_or_text_stamp<'de, D: Deserializer<'de>>(d: D) -> Result<Stamp, D::Error> {
    Ok(Stamp::of(&Value::deserialize(d)?, |v| match v {
        Value::Number(n) => n.as_f64().and_then(unix_millis_or_seconds),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(n) => unix_millis_or_seconds(n),
            Err(_) => parse_timestamp(s),
        },
        _ => None,
    }))
}

/// A finite number, or text holding one.
fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// A nested object of a lenient type; a non-object is `None`. Read straight from the input
/// (no intermediate `Value`); `T`'s fields are all lenient, so an object always reads.
pub(crate) fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    d.deserialize_any(ObjectOrNone(PhantomData))
}

/// Visitor of [`object`]: a map becomes `Some(T)`, anything else is consumed and `None`.
struct ObjectOrNone<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOrNone<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Any JSON value; `null` is `None`.
pub(crate) fn value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        value => Some(value),
    })
}

/// A required opaque id: a non-blank string (trimmed), or a number (stringified).
pub(crate) fn required_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    id_from(&Value::deserialize(d)?)
        .ok_or_else(|| D::Error::custom("`id` must be a non-empty string or a number"))
}

/// A required status: a non-blank string.
pub(crate) fn required_status<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<LifecycleStatus, D::Error> {
    status_from(&Value::deserialize(d)?)
        .ok_or_else(|| D::Error::custom("`status` must be a non-empty string"))
}

/// The id a JSON value stands for, if it is a usable one.
pub(crate) fn id_from(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The status a JSON value stands for, if it is a usable one.
pub(crate) fn status_from(value: &Value) -> Option<LifecycleStatus> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(LifecycleStatus::parse(s)),
        _ => None,
    }
}

/// Parses a provider timestamp; one without a zone is UTC.
///
/// Accepts RFC 3339 (`…Z`, `…+05:30`, `T` or space between date and time), the same with a
/// `+0530`-style offset, and a zone-less date-time with optional fractional seconds
/// (`2025-10-08T09:15:36.771340`).
pub fn parse_timestamp(input: &str) -> Option<DateTime<Utc>> {
    // Outside years 0000-9999 (in UTC) a time has no RFC 3339 form to show it in.
    parse_any_timestamp(input.trim()).filter(|t| (0..=9999).contains(&t.year()))
}

fn parse_any_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // Bolna's own form (`2025-10-08T09:15:36.771340`), by chrono's prebuilt parser: much
    // cheaper than interpreting the format strings below.
    if let Ok(t) = s.parse::<NaiveDateTime>() {
        return Some(t.and_utc());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    None
}
