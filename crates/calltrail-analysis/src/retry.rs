//! What the OpenAI client adds to the shared [`Backoff`](calltrail_core::Backoff): the server's
//! `retry-after-ms` / `Retry-After` hints and the random jitter unit. Pure except for the
//! random source.

use std::time::Duration;

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
    fn without_a_hint_the_client_waits_half_a_second_doubling_to_eight() {
        use crate::openai::{DEFAULT_BACKOFF, DEFAULT_MAX_RETRY_AFTER};
        let ms = Duration::from_millis;
        let delays: Vec<_> = (1..=6).map(|n| DEFAULT_BACKOFF.delay(n)).collect();
        assert_eq!(
            delays,
            [ms(500), ms(1000), ms(2000), ms(4000), ms(8000), ms(8000)]
        );
        assert_eq!(
            DEFAULT_BACKOFF.jittered(1, 0.999_999),
            ms(375) + Duration::from_nanos(125)
        );
        assert_eq!(DEFAULT_MAX_RETRY_AFTER, Duration::from_secs(60));
    }

    #[test]
    fn jitter_units_are_in_the_unit_interval() {
        for _ in 0..100 {
            assert!((0.0..1.0).contains(&jitter_unit()));
        }
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
