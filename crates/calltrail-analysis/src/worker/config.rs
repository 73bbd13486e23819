//! [`WorkerConfig`]: how workers poll, lease, retry and shut down.

use std::time::Duration;

use calltrail_core::Backoff;

use super::PromptIds;

/// How workers run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Pause when no job is due.
    pub poll_interval: Duration,
    /// Lease of a claimed job (extended while it runs).
    pub lease: Duration,
    /// Attempts before a transient failure becomes final.
    pub max_attempts: u32,
    /// Waits between a job's attempts: the delay before attempt *n* + 1 is retry *n* of it.
    pub retry: Backoff,
    /// How long a job in hand may still run after shutdown is requested.
    pub shutdown_grace: Duration,
    /// Most transcript characters sent in one request.
    pub max_prompt_chars: usize,
    /// `OPENAI_INDIVIDUAL_PROMPT_ID` / `OPENAI_COMPLETE_PROMPT_ID`.
    pub system_prompts: PromptIds,
}

impl Default for WorkerConfig {
    /// 1 s polls, 2 min leases, 5 attempts 10 s → 5 min apart, 10 s grace, 120,000 characters.
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(120),
            max_attempts: 5,
            retry: Backoff::new(Duration::from_secs(10), Duration::from_secs(300)),
            shutdown_grace: Duration::from_secs(10),
            max_prompt_chars: 120_000,
            system_prompts: PromptIds::default(),
        }
    }
}

impl WorkerConfig {
    /// The wait before attempt `attempts + 1`: `retry.initial × 2^(attempts−1)`, capped.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        self.retry.delay(attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let config = WorkerConfig::default();
        assert_eq!(config.retry_delay(1), Duration::from_secs(10));
        assert_eq!(config.retry_delay(3), Duration::from_secs(40));
        assert_eq!(config.retry_delay(30), Duration::from_secs(300));
    }
}
