//! Retry timing: exponential backoff with jitter, and the server's `retry-after-ms` /
//! `Retry-After` hints. Pure except for the random jitter source.

use std::time::Duration;

/// Backoff settings for retried OpenAI requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry (doubled for each further retry).
    pub initial: Duration,
    /// Longest computed delay.
    pub max: Duration,
    /// Longest server-requested wait honoured; a longer one ends the job as retryable later.
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    /// 0.5 s doubling to 8 s (as the official SDKs), server hints honoured up to 60 s.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// Delay before retry number `retry` (1-based): `initial × 2^(retry−1)` capped at `max`,
    /// then reduced by up to 25 % at random (`unit` in `[0, 1)`) so clients spread out.
    pub(crate) fn delay(&self, retry: u32, unit: f64) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let exponential = self.initial.saturating_mul(factor).min(self.max);
        exponential.mul_f64(1.0 - 0.25 * unit.clamp(0.0, 1.0))
    }
}

/// The wait a response asks for: `retry-after-ms` (milliseconds), else `Retry-After`
/// (seconds; the HTTP-date form is not used by OpenAI and is ignored).
pub(crate) fn server_hint(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
) -> Option<Duration> {
    let parse = |s: &str, scale: f64| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .and_then(|v| Duration::try_from_secs_f64(v / scale).ok())
    };
    retry_after_ms
        .and_then(|s| parse(s, 1000.0))
        .or_else(|| retry_after.and_then(|s| parse(s, 1.0)))
}

/// A uniformly random number in `[0, 1)`; 0.5 if the system has no randomness to give.
pub(crate) fn jitter_unit() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_jitters_down() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(b.delay(2, 0.0), Duration::from_secs(1));
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(2));
        assert_eq!(b.delay(10, 0.0), Duration::from_secs(8));
        assert_eq!(b.delay(40, 0.0), Duration::from_secs(8));
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(375));
        let u = jitter_unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn prefers_milliseconds_then_seconds() {
        assert_eq!(
            server_hint(Some("391"), Some("1")),
            Some(Duration::from_millis(391))
        );
        assert_eq!(server_hint(None, Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(
            server_hint(Some("x"), Some("1.5")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            server_hint(None, Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(server_hint(Some("-1"), None), None);
        assert_eq!(server_hint(Some("1e300"), None), None);
    }
}
