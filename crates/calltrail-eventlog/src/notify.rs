//! Wake-ups for log followers: LISTEN/NOTIFY as a hint, polling as the guarantee
//! (docs/EVENTLOG.md §5). A lost notification delays a reader by one poll interval, never more.

use std::time::Duration;

use calltrail_core::backoff::Backoff;
use sqlx::postgres::PgListener;

use crate::{EventLog, NOTIFY_CHANNEL};

/// Why [`Wakeups::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A committed append batch sent a notification.
    Notified,
    /// The poll interval elapsed.
    Polled,
}

/// Tells a follower when to look for new events.
pub struct Wakeups {
    log: EventLog,
    listener: Option<PgListener>,
    listen: bool,
    poll_interval: Duration,
    /// Re-checks left after a notification: a committed event may not be readable yet while an
    /// older transaction anywhere on the cluster is still running (docs/EVENTLOG.md §1).
    rechecks: u32,
}

/// Re-checks after a notification: the first after 50 ms, each later one twice as far apart
/// (never more than the poll interval), so an event held back by a long transaction elsewhere
/// is seen soon after that transaction ends, at the cost of a handful of reads.
const RECHECKS: u32 = 10;
const RECHECK_BACKOFF: Backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(60));

impl std::fmt::Debug for Wakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeups")
            .field("listening", &self.listener.is_some())
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

impl EventLog {
    /// Wake-ups from NOTIFY with a polling fallback every `poll_interval`.
    pub fn wakeups(&self, poll_interval: Duration) -> Wakeups {
        Wakeups {
            log: self.clone(),
            listener: None,
            listen: true,
            poll_interval,
            rechecks: 0,
        }
    }

    /// Wake-ups from polling alone (as when notifications are lost, e.g. behind PgBouncer).
    pub fn polling_wakeups(&self, poll_interval: Duration) -> Wakeups {
        Wakeups {
            log: self.clone(),
            listener: None,
            listen: false,
            poll_interval,
            rechecks: 0,
        }
    }
}

impl Wakeups {
    /// Starts listening now (rather than at the first [`Wakeups::wait`]), so that nothing
    /// committed after this returns can go unnoticed. True when LISTEN is in place.
    pub async fn listen_now(&mut self) -> bool {
        if self.listen && self.listener.is_none() {
            self.listener = self.connect_listener().await;
        }
        self.listener.is_some()
    }

    /// Waits for a notification or the poll interval, whichever comes first. After a
    /// notification it also returns after 50 ms, 100 ms, 200 ms, … (up to the poll interval, ten
    /// times), so an event that becomes readable only when an older transaction ends is not
    /// left waiting a whole poll interval.
    pub async fn wait(&mut self) -> Wake {
        if self.listen && self.listener.is_none() {
            self.listener = self.connect_listener().await;
        }
        let interval = if self.rechecks > 0 {
            let retry = RECHECKS - self.rechecks + 1;
            self.rechecks -= 1;
            RECHECK_BACKOFF.delay(retry).min(self.poll_interval)
        } else {
            self.poll_interval
        };
        let Some(listener) = self.listener.as_mut() else {
            tokio::time::sleep(interval).await;
            return Wake::Polled;
        };
        tokio::select! {
            received = listener.recv() => match received {
                Ok(_) => {
                    // Coalesce a burst of notifications into one wake-up.
                    while listener.next_buffered().is_some() {}
                    self.rechecks = RECHECKS;
                    Wake::Notified
                }
                Err(error) => {
                    tracing::warn!(%error, "event log listener lost; polling until it reconnects");
                    self.listener = None;
                    tokio::time::sleep(self.poll_interval).await;
                    Wake::Polled
                }
            },
            () = tokio::time::sleep(interval) => Wake::Polled,
        }
    }

    async fn connect_listener(&self) -> Option<PgListener> {
        let mut listener = match PgListener::connect_with(self.log.pool()).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "cannot LISTEN yet; polling");
                return None;
            }
        };
        match listener.listen(NOTIFY_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::debug!(%error, "LISTEN failed; polling");
                None
            }
        }
    }
}
