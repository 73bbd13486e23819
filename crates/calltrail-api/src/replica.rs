//! The optional read replica (`CALLTRAIL_READ_DATABASE_URL`, docs/scaling.md): where a read
//! goes ([`ReadFrom`]), the replica's health as `/readyz` and `/metrics` show it, and the loop
//! that samples it against the primary.
//!
//! Reads marked [`ReadFrom::Replica`] go to the replica while it answers and is at most
//! `max_lag` behind; otherwise to the primary. A replica that is down or far behind never
//! makes `/readyz` fail: the primary can serve every route, so the node stays in the load
//! balancer and `/readyz` says where reads go and why.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use calltrail_projections::replication::ReplicaPosition;
use calltrail_projections::ReadStore;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;

use crate::Metrics;

/// Which server a read must see. Every route says it through [`crate::AppState::read_from`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The read replica when one is configured and healthy, else the primary. For the read
    /// tables, which the projector already fills asynchronously: a replica adds lag of the
    /// same kind.
    Replica,
    /// Always the primary: a read that must see a write the same client has just made (a
    /// resource created by the request before, e.g. issue 12's campaigns).
    Primary,
}

/// The replica's state as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaState {
    /// Not sampled yet (the first second after start): reads go to the primary.
    Starting,
    /// Answers and is at most the allowed lag behind: reads go to it.
    Ok,
    /// Answers but is further behind than `CALLTRAIL_READ_MAX_LAG_SECS`, or has not replayed
    /// anything new for that long while the primary wrote: reads go to the primary.
    Lagging,
    /// Does not answer in time: reads go to the primary.
    Down,
    /// Answers but is not in recovery (promoted, or not a standby at all): reads go to the
    /// primary until it is a standby again.
    NotAStandby,
}

impl ReplicaState {
    /// The state as `/readyz` spells it (`not_a_standby`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaState::Starting => "starting",
            ReplicaState::Ok => "ok",
            ReplicaState::Lagging => "lagging",
            ReplicaState::Down => "down",
            ReplicaState::NotAStandby => "not_a_standby",
        }
    }
}

/// The replica's health, as `/readyz` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReplicaHealth {
    /// What the last sample found.
    pub state: ReplicaState,
    /// Where reads go now: `replica` or `primary`.
    #[schema(example = "replica")]
    pub reads: &'static str,
    /// Age of the last replayed commit while the replica has WAL left to replay (0 when
    /// caught up); absent when it could not be read.
    pub lag_seconds: Option<f64>,
    /// WAL the primary has written that the replica has not replayed yet; absent when unknown.
    pub lag_bytes: Option<i64>,
}

/// How often [`ReadReplica::watch`] samples the replica.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one sample may take before the replica counts as down.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A read replica and what is known of it (cheap to clone).
#[derive(Clone)]
pub struct ReadReplica {
    store: ReadStore,
    max_lag: Duration,
    serves_reads: Arc<AtomicBool>,
    health: Arc<Mutex<ReplicaHealth>>,
    gauges: ReplicaGauges,
}

impl std::fmt::Debug for ReadReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadReplica")
            .field("max_lag", &self.max_lag)
            .finish_non_exhaustive()
    }
}

/// The replica's gauges on `/metrics`.
#[derive(Clone, Default)]
struct ReplicaGauges {
    lag_seconds: Gauge<f64, AtomicU64>,
    lag_bytes: Gauge<i64, AtomicI64>,
    reads: Gauge<i64, AtomicI64>,
}

impl ReadReplica {
    /// A replica on `store` that serves reads while at most `max_lag` behind; its gauges are
    /// registered on `metrics`.
    pub fn new(store: ReadStore, max_lag: Duration, metrics: &Metrics) -> Self {
        let gauges = ReplicaGauges::default();
        metrics.with_registry(|r| {
            r.register(
                "replica_lag_seconds",
                "Age of the read replica's last replayed commit while it has WAL left to replay",
                gauges.lag_seconds.clone(),
            );
            r.register(
                "replica_lag_bytes",
                "WAL written by the primary that the read replica has not replayed yet",
                gauges.lag_bytes.clone(),
            );
            r.register(
                "replica_reads",
                "1 while read queries go to the replica, 0 while they go to the primary",
                gauges.reads.clone(),
            );
        });
        Self {
            store,
            max_lag,
            serves_reads: Arc::new(AtomicBool::new(false)),
            health: Arc::new(Mutex::new(ReplicaHealth {
                state: ReplicaState::Starting,
                reads: "primary",
                lag_seconds: None,
                lag_bytes: None,
            })),
            gauges,
        }
    }

    /// The replica's store while it serves reads.
    pub(crate) fn for_reads(&self) -> Option<&ReadStore> {
        self.serves_reads
            .load(Ordering::Acquire)
            .then_some(&self.store)
    }

    /// The last sample.
    pub fn health(&self) -> ReplicaHealth {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Samples the replica against `primary` every [`SAMPLE_INTERVAL`] until `stop` completes.
    pub async fn watch(self, primary: ReadStore, stop: impl Future<Output = ()>) {
        let mut progress = Progress::default();
        tokio::pin!(stop);
        loop {
            self.sample(&primary, &mut progress).await;
            tokio::select! {
                () = tokio::time::sleep(SAMPLE_INTERVAL) => {}
                () = &mut stop => return,
            }
        }
    }

    async fn sample(&self, primary: &ReadStore, progress: &mut Progress) {
        let (replica, written) = tokio::join!(
            tokio::time::timeout(SAMPLE_TIMEOUT, self.store.replica_position()),
            tokio::time::timeout(SAMPLE_TIMEOUT, primary.wal_written()),
        );
        let written = written.ok().and_then(Result::ok);
        let health = match replica {
            Ok(Ok(position)) => self.judge(position, written, progress),
            Ok(Err(error)) => {
                tracing::debug!(%error, "read replica sample failed");
                down()
            }
            Err(_) => down(),
        };
        let serves = health.state == ReplicaState::Ok;
        let was = self.serves_reads.swap(serves, Ordering::AcqRel);
        if was != serves {
            if serves {
                tracing::info!(
                    lag_seconds = health.lag_seconds,
                    "read replica serves reads again"
                );
            } else {
                tracing::warn!(
                    state = health.state.as_str(),
                    lag_seconds = health.lag_seconds,
                    lag_bytes = health.lag_bytes,
                    "read replica unusable; reads go to the primary"
                );
            }
        }
        self.gauges
            .lag_seconds
            .set(health.lag_seconds.unwrap_or(f64::NAN));
        self.gauges.lag_bytes.set(health.lag_bytes.unwrap_or(-1));
        self.gauges.reads.set(i64::from(serves));
        *self.health.lock().unwrap_or_else(PoisonError::into_inner) = health;
    }

    fn judge(
        &self,
        position: ReplicaPosition,
        written: Option<i64>,
        progress: &mut Progress,
    ) -> ReplicaHealth {
        let lag_bytes = match (written, position.replayed) {
            (Some(written), Some(replayed)) => Some((written - replayed).max(0)),
            _ => None,
        };
        let lag_seconds = Some(position.behind.as_secs_f64());
        let state = if !position.in_recovery {
            ReplicaState::NotAStandby
        } else if position.behind > self.max_lag
            || progress.stuck_for(position, lag_bytes) > self.max_lag
        {
            ReplicaState::Lagging
        } else {
            ReplicaState::Ok
        };
        ReplicaHealth {
            state,
            reads: if state == ReplicaState::Ok {
                "replica"
            } else {
                "primary"
            },
            lag_seconds,
            lag_bytes,
        }
    }
}

fn down() -> ReplicaHealth {
    ReplicaHealth {
        state: ReplicaState::Down,
        reads: "primary",
        lag_seconds: None,
        lag_bytes: None,
    }
}

/// Since when the replica has replayed nothing new while the primary had WAL it lacks: a
/// replica whose WAL receiver stopped shows no replay lag (all it received is replayed) but
/// falls behind all the same.
#[derive(Debug, Default)]
struct Progress {
    replayed: Option<i64>,
    since: Option<Instant>,
}

impl Progress {
    fn stuck_for(&mut self, position: ReplicaPosition, lag_bytes: Option<i64>) -> Duration {
        let moved = position.replayed != self.replayed;
        self.replayed = position.replayed;
        if moved || lag_bytes.is_none_or(|b| b == 0) {
            self.since = None;
            return Duration::ZERO;
        }
        self.since.get_or_insert_with(Instant::now).elapsed()
    }
}
