//! Operational metrics the API crate cannot see: append batches, projector lag, the oldest
//! transaction holding gap-safe readers back, dead letters, analysis jobs by state.
//! Registered on the API's registry.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use calltrail_api::Metrics;
use calltrail_eventlog::{BatchObserver, BatchReport, Checkpoint, EventLog};
use calltrail_projections::projector::READ_MODELS;
use calltrail_projections::ReadStore;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
    analysis_jobs: Family<Vec<(String, String)>, Gauge>,
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

/// Exposes a projector's own counters (events folded, batches, dead letters, standby).
pub fn register_projector(
    metrics: &Metrics,
    projector: Arc<calltrail_projections::ProjectorMetrics>,
) {
    metrics.with_registry(|r| r.register_collector(Box::new(ProjectorCollector(projector))));
}

/// Reads a projector's atomics at scrape time.
#[derive(Debug)]
struct ProjectorCollector(Arc<calltrail_projections::ProjectorMetrics>);

impl prometheus_client::collector::Collector for ProjectorCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use std::sync::atomic::Ordering::Relaxed;
        let counters = [
            (
                "projector_events",
                "Events folded by this process's projector",
                self.0.events.load(Relaxed),
            ),
            (
                "projector_batches",
                "Batches committed by this process's projector",
                self.0.batches.load(Relaxed),
            ),
            (
                "projector_dead_letters",
                "Dead letters recorded by this process's projector",
                self.0.dead_letters.load(Relaxed),
            ),
            (
                "projector_anomalies",
                "Call events whose out-of-range duration or times this process's projector replaced",
                self.0.anomalies.load(Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let counter = prometheus_client::metrics::counter::ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        let standby = prometheus_client::metrics::gauge::ConstGauge::new(i64::from(
            self.0.standby.load(Relaxed),
        ));
        let metric = encoder.encode_descriptor(
            "projector_standby",
            "1 while another process holds the checkpoint and this projector stands by",
            None,
            standby.metric_type(),
        )?;
        standby.encode(metric)?;
        Ok(())
    }
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
        r.register(
            "analysis_jobs",
            "Unfinished analysis jobs by state (pending, processing, failed)",
            gauges.analysis_jobs.clone(),
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
    for (state, count) in store.analysis_jobs().unfinished().await? {
        gauges
            .analysis_jobs
            .get_or_create(&vec![("state".to_owned(), state)])
            .set(count);
    }
    Ok(())
}
