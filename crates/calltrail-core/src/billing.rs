//! Duration rounding and credit math (CONTRACT §4.5).
//!
//! `duration_seconds = ceil(conversation_duration)`, `duration_minutes = ceil(duration_seconds / 60)`,
//! `credits = duration_minutes × credits_per_minute`. Every function is total: odd input (negative,
//! NaN, infinite, huge) gives 0 or saturates instead of panicking or wrapping.

use crate::lifecycle::Charge;

/// 2^63 as an `f64`: the first float above every `i64`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// Whole seconds billed for a talk time: `ceil(conversation_seconds)` (27.2 → 28).
///
/// Negative, NaN and infinite values give 0; values beyond `i64::MAX` saturate.
pub fn duration_seconds(conversation_seconds: f64) -> i64 {
    if conversation_seconds.is_nan() || conversation_seconds <= 0.0 {
        return 0;
    }
    integral_to_i64_saturating(conversation_seconds.ceil())
}

/// Whole minutes billed for whole seconds: `ceil(seconds / 60)`; 0 for `seconds <= 0`.
pub fn duration_minutes(seconds: i64) -> i64 {
    if seconds <= 0 {
        return 0;
    }
    // (seconds - 1) / 60 + 1 == ceil(seconds / 60) for seconds >= 1, and cannot overflow.
    (seconds - 1) / 60 + 1
}

/// The full charge for a talk time at a rate (credits saturate instead of overflowing).
///
/// The rate is expected to be non-negative (configuration validates it); it is not clamped here.
pub fn charge(conversation_seconds: f64, credits_per_minute: i64) -> Charge {
    let duration_seconds = duration_seconds(conversation_seconds);
    let duration_minutes = duration_minutes(duration_seconds);
    Charge {
        duration_seconds,
        duration_minutes,
        credits: duration_minutes.saturating_mul(credits_per_minute),
    }
}

/// The kind of a credit transaction a charge change records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    /// The call's first charge.
    Usage,
    /// A later change of the call's charge: the difference.
    Adjustment,
}

impl LedgerKind {
    /// The transaction `type` (`usage`, `adjustment`).
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Usage => "usage",
            LedgerKind::Adjustment => "adjustment",
        }
    }
}

/// The transaction that takes a call's ledger from `before` to `after` credits charged (the
/// call's charge before and after an event): none when nothing changes, a usage when nothing
/// was charged yet, else an adjustment of the difference. Amounts are signed as the ledger
/// shows them (a charge is negative), so a call's rows always sum to `-after`.
pub fn ledger_entry(before: i64, after: i64) -> Option<(LedgerKind, i64)> {
    if before == after {
        return None;
    }
    let kind = if before == 0 {
        LedgerKind::Usage
    } else {
        LedgerKind::Adjustment
    };
    Some((kind, before.saturating_sub(after)))
}

/// The `i64` equal to an integral float, if there is one (`4000.0` → 4000, `1.5` → None).
pub(crate) fn integral_f64_to_i64(value: f64) -> Option<i64> {
    let in_range = (-TWO_POW_63..TWO_POW_63).contains(&value);
    (in_range && value.fract() == 0.0).then(|| integral_to_i64_saturating(value))
}

/// Converts a float to `i64`, saturating at the bounds (NaN → 0).
// A float→int conversion has no `TryFrom` in std, so this one `as` is unavoidable. It is
// safe: the value is clamped to the `i64` range first (and Rust's `as` saturates and maps
// NaN to 0 anyway), so nothing wraps; callers pass integral values, so nothing is truncated.
#[allow(clippy::as_conversions)]
fn integral_to_i64_saturating(value: f64) -> i64 {
    if value.is_nan() {
        0
    } else if value >= TWO_POW_63 {
        i64::MAX
    } else if value < -TWO_POW_63 {
        i64::MIN
    } else {
        value as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up() {
        assert_eq!(duration_seconds(27.2), 28);
        assert_eq!(duration_seconds(28.0), 28);
        assert_eq!(duration_seconds(0.0001), 1);
        assert_eq!(duration_seconds(0.0), 0);
        assert_eq!(duration_seconds(-0.0), 0);
    }

    #[test]
    fn seconds_of_odd_values() {
        assert_eq!(duration_seconds(-3.5), 0);
        assert_eq!(duration_seconds(f64::NAN), 0);
        assert_eq!(duration_seconds(f64::NEG_INFINITY), 0);
        assert_eq!(duration_seconds(f64::INFINITY), i64::MAX);
        assert_eq!(duration_seconds(1e300), i64::MAX);
        assert_eq!(duration_seconds(TWO_POW_63), i64::MAX);
    }

    #[test]
    fn minutes_round_up() {
        assert_eq!(duration_minutes(0), 0);
        assert_eq!(duration_minutes(-5), 0);
        assert_eq!(duration_minutes(1), 1);
        assert_eq!(duration_minutes(28), 1);
        assert_eq!(duration_minutes(60), 1);
        assert_eq!(duration_minutes(61), 2);
        assert_eq!(duration_minutes(i64::MAX), i64::MAX / 60 + 1);
    }

    #[test]
    fn charges() {
        let c = charge(27.2, 1);
        assert_eq!(
            (c.duration_seconds, c.duration_minutes, c.credits),
            (28, 1, 1)
        );
        let c = charge(125.0, 3);
        assert_eq!(
            (c.duration_seconds, c.duration_minutes, c.credits),
            (125, 3, 9)
        );
        assert_eq!(charge(0.0, 5).credits, 0);
        assert_eq!(charge(f64::INFINITY, i64::MAX).credits, i64::MAX);
    }

    #[test]
    fn ledger_entries() {
        assert_eq!(ledger_entry(0, 0), None);
        assert_eq!(ledger_entry(0, 3), Some((LedgerKind::Usage, -3)));
        assert_eq!(ledger_entry(3, 3), None);
        assert_eq!(ledger_entry(3, 5), Some((LedgerKind::Adjustment, -2)));
        assert_eq!(ledger_entry(5, 0), Some((LedgerKind::Adjustment, 5)));
    }

    #[test]
    fn integral_floats() {
        assert_eq!(integral_f64_to_i64(4000.0), Some(4000));
        assert_eq!(integral_f64_to_i64(-2.0), Some(-2));
        assert_eq!(integral_f64_to_i64(1.5), None);
        assert_eq!(integral_f64_to_i64(f64::NAN), None);
        assert_eq!(integral_f64_to_i64(1e19), None);
        assert_eq!(integral_f64_to_i64(-TWO_POW_63), Some(i64::MIN));
    }
}
