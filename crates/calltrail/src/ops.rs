//! Operational metrics the API crate cannot see: append batches, projector lag, the oldest
//! transaction holding gap-safe readers back, dead letters. Registered on the API's registry.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use calltrail_api::Metrics;
use calltrail_eventlog::{BatchObserver, BatchReport, Checkpoint, EventLog};
use calltrail_projections::projector::READ_MODELS;
use calltrail_projections::ReadStore;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio_util::sync::CancellationToken;

/// Gauges sampled by [`sample`].
#[derive(Clone, Default)]
pub struct OpsGauges {
    lag_events: Gauge,
    lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    blocking_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    dead_letters: Gauge<i64, AtomicI64>,
}

/// Registers the append metrics and returns the observer the appender reports to.
pub fn append_observer(metrics: &Metrics) -> BatchObserver {
    let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 10));
    let appended = Counter::<u64>::default();
    let duplicates = Counter::<u64>::default();
    let conflicts = Counter::<u64>::default();
    let failed = Counter::<u64>::default();
    metrics.with_registry(|r| {
        r.register(
            "append_batch_size",
            "Events per group-commit batch",
            batch_size.clone(),
        );
        r.register(
            "appends",
            "New events committed to the log",
            appended.clone(),
        );
        r.register(
            "append_duplicates",
            "Appends answered as duplicates (conflicts included)",
            duplicates.clone(),
        );
        r.register(
            "append_conflicts",
            "Duplicates whose body differed from the recorded event",
            conflicts.clone(),
        );
        r.register(
            "append_failed_batches",
            "Append batches that failed (nothing in them recorded)",
            failed.clone(),
        );
    });
    Arc::new(move |report: &BatchReport| {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        if report.failed {
            failed.inc();
            return;
        }
        #[allow(clippy::as_conversions)] // a batch size (≤ max_batch) as a histogram sample
        batch_size.observe(report.size as f64);
        appended.inc_by(count(report.appended));
        duplicates.inc_by(count(report.duplicates));
        conflicts.inc_by(count(report.conflicts));
    })
}

/// Registers the sampled gauges.
pub fn register_gauges(metrics: &Metrics) -> OpsGauges {
    let gauges = OpsGauges::default();
    metrics.with_registry(|r| {
        r.register(
            "projector_lag_events",
            "Events in the log the projector has not folded yet",
            gauges.lag_events.clone(),
        );
        r.register(
            "projector_lag_seconds",
            "Age of the oldest event the projector has not folded yet",
            gauges.lag_seconds.clone(),
        );
        r.register(
            "oldest_blocking_transaction_seconds",
            "Age of the oldest transaction holding gap-safe log readers back",
            gauges.blocking_seconds.clone(),
        );
        r.register(
            "dead_letters",
            "Events a projector could not fold",
            gauges.dead_letters.clone(),
        );
    });
    gauges
}

/// Refreshes the gauges every `every` until cancelled. Failures are logged, never fatal.
pub async fn sample(
    log: EventLog,
    store: ReadStore,
    gauges: OpsGauges,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        if let Err(error) = sample_once(&log, &store, &gauges).await {
            tracing::debug!(%error, "metrics sampling failed");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn sample_once(log: &EventLog, store: &ReadStore, gauges: &OpsGauges) -> anyhow::Result<()> {
    let checkpoint = store
        .projector_checkpoint(READ_MODELS)
        .await?
        .unwrap_or(Checkpoint::START);
    gauges.lag_events.set(log.count_after(checkpoint).await?);
    let lag = log
        .oldest_recorded_after(checkpoint)
        .await?
        .map_or(0.0, |oldest| {
            (chrono::Utc::now() - oldest)
                .to_std()
                .map_or(0.0, |d| d.as_secs_f64())
        });
    gauges.lag_seconds.set(lag);
    gauges.blocking_seconds.set(
        log.blocking_transaction_age()
            .await?
            .map_or(0.0, |d| d.as_secs_f64()),
    );
    gauges.dead_letters.set(store.dead_letter_count().await?);
    Ok(())
}
