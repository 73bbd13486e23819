//! [`RateLimit`]: requests spaced evenly, at most `per_second` of them in any second (no
//! bursts: the n-th request waits until `n / per_second` after the first).

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// An even spacing of requests, shared by every caller of one provider.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimit {
    /// At most `per_second` requests a second (a value ≤ 0 or not finite means 1).
    pub fn new(per_second: f64) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            1.0
        };
        Self {
            interval: Duration::try_from_secs_f64(1.0 / per_second)
                .unwrap_or(Duration::from_secs(1)),
            next: Mutex::new(None),
        }
    }

    /// The spacing between two requests.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits for this request's slot.
    pub async fn acquire(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let at = next.map_or(now, |n| n.max(now));
            *next = Some(at + self.interval);
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_are_spaced_by_the_interval() {
        let limit = RateLimit::new(50.0);
        assert_eq!(limit.interval(), Duration::from_millis(20));
        let start = Instant::now();
        for _ in 0..6 {
            limit.acquire().await;
        }
        // The first goes at once, the sixth 5 intervals later (never sooner).
        assert!(start.elapsed() >= Duration::from_millis(100));
    }

    #[test]
    fn nonsense_rates_mean_one_a_second() {
        for rate in [0.0, -3.0, f64::NAN, f64::INFINITY] {
            assert_eq!(RateLimit::new(rate).interval(), Duration::from_secs(1));
        }
    }
}
