//! [`Backoff`]: the workspace's one retry schedule — a delay that doubles with each retry up to
//! a cap — and [`Retries`], its running count for a loop that retries until it succeeds.
//!
//! Pure: the random jitter is a number the caller draws ([`Backoff::jittered`]), so the schedule
//! itself is deterministic and testable.

use std::time::Duration;

/// Doubling delays: retry *n* (1-based) waits `initial × 2^(n−1)`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// Delays from `initial`, doubling up to `max`.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max }
    }

    /// The wait before retry `retry` (1-based; 0 counts as 1).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// [`Backoff::delay`] reduced by up to 25 % (`unit`, drawn uniformly from `[0, 1)`, says how
    /// much), so that clients failing together do not retry together.
    pub fn jittered(&self, retry: u32, unit: f64) -> Duration {
        self.delay(retry).mul_f64(1.0 - 0.25 * unit.clamp(0.0, 1.0))
    }

    /// A fresh count for a retry loop.
    pub fn retries(&self) -> Retries {
        Retries {
            backoff: *self,
            retries: 0,
        }
    }
}

/// A retry loop's place in a [`Backoff`]: each failure takes the next delay, a success resets it.
#[derive(Debug, Clone)]
pub struct Retries {
    backoff: Backoff,
    retries: u32,
}

impl Retries {
    /// The wait before the next retry (the first call gives `initial`).
    pub fn next_delay(&mut self) -> Duration {
        self.retries = self.retries.saturating_add(1);
        self.backoff.delay(self.retries)
    }

    /// Retries taken since the start or the last [`Retries::reset`].
    pub fn count(&self) -> u32 {
        self.retries
    }

    /// Starts over from `initial` (after a success).
    pub fn reset(&mut self) {
        self.retries = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_from_the_first_retry_up_to_the_cap() {
        let b = Backoff::new(MS(500), Duration::from_secs(8));
        let delays: Vec<_> = (1..=6).map(|n| b.delay(n)).collect();
        assert_eq!(
            delays,
            [MS(500), MS(1000), MS(2000), MS(4000), MS(8000), MS(8000)]
        );
        assert_eq!(b.delay(0), MS(500), "retry 0 counts as the first");
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(8), "no overflow");
    }

    #[test]
    fn jitter_takes_off_at_most_a_quarter() {
        let b = Backoff::new(MS(500), Duration::from_secs(8));
        assert_eq!(b.jittered(1, 0.0), MS(500));
        assert_eq!(b.jittered(1, 0.5), MS(437) + Duration::from_micros(500));
        assert_eq!(b.jittered(1, 1.0), MS(375));
        assert_eq!(
            b.jittered(1, 7.0),
            MS(375),
            "out-of-range units are clamped"
        );
    }

    #[test]
    fn a_retry_loop_walks_the_schedule_and_starts_over_after_a_success() {
        let mut retries = Backoff::new(MS(200), MS(1000)).retries();
        let walked: Vec<_> = (0..4).map(|_| retries.next_delay()).collect();
        assert_eq!(walked, [MS(200), MS(400), MS(800), MS(1000)]);
        assert_eq!(retries.count(), 4);
        retries.reset();
        assert_eq!((retries.count(), retries.next_delay()), (0, MS(200)));
    }
}
