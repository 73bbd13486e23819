//! The composition root: everything `calltrail serve` runs, built from [`Settings`] in one place.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::Context;
use calltrail_analysis::{Backoff, LeadAnalyzer, OpenAiConfig, Worker, WorkerConfig};
use calltrail_api::{ApiConfig, AppState, ReadReplica};
use calltrail_core::secrets::SecretsKey;
use calltrail_eventlog::{Appender, AppenderConfig, ConnectOptions, EventLog};
use calltrail_projections::projector::{self, Projector, ProjectorConfig};
use calltrail_projections::ReadStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::analysis_worker::{DbQueue, DbResults};
use crate::cli::ServeArgs;
use crate::config::{check_credentials, public_url, secrets_key};
use crate::reconcile::ReconcileSettings;

/// What `serve` runs and how.
#[derive(Debug, Clone)]
pub struct Settings {
    /// PostgreSQL URL.
    pub database_url: String,
    /// A streaming replica for read queries (`CALLTRAIL_READ_DATABASE_URL`).
    pub read_database_url: Option<String>,
    /// How far behind the replica may be before reads go to the primary.
    pub read_max_lag: Duration,
    /// Listen address (port 0 picks a free port; read it back with [`Application::port`]).
    pub bind: SocketAddr,
    /// Webhook body limit.
    pub max_body_bytes: usize,
    /// Limit of a large message streamed through the signature check and discarded.
    pub max_audio_bytes: usize,
    /// The base URL providers call (no trailing `/`), when configured.
    pub public_url: Option<String>,
    /// `CALLTRAIL_SECRETS_KEY`, when configured.
    pub secrets_key: Option<SecretsKey>,
    /// Run the projector in this process.
    pub projector: bool,
    /// Run analysis workers in this process.
    pub worker: bool,
    /// HTTP worker threads.
    pub http_workers: usize,
    /// Billing rate.
    pub credits_per_minute: i64,
    /// What a webhook's numbers must fall within.
    pub bounds: calltrail_core::Bounds,
    /// Projector poll interval (the NOTIFY fallback).
    pub poll_interval: Duration,
    /// Analysis workers to run when `worker` is on.
    pub analysis_workers: usize,
    /// OpenAI client settings; `None` runs the local analyzer.
    pub openai: Option<OpenAiConfig>,
    /// Worker polling, lease, attempts, backoff and the system-wide prompt ids.
    pub analysis: WorkerConfig,
    /// Periodic reconciliation (off when its interval is zero).
    pub reconcile: ReconcileSettings,
}

impl Settings {
    /// Settings from `serve`'s flags and environment.
    pub fn from_serve_args(database_url: &str, args: &ServeArgs) -> anyhow::Result<Self> {
        let max_body_bytes = usize::try_from(args.max_body_bytes)
            .context("CALLTRAIL_MAX_BODY_BYTES does not fit this machine's address space")?;
        let max_audio_bytes = usize::try_from(args.max_audio_bytes)
            .context("CALLTRAIL_MAX_AUDIO_BYTES does not fit this machine's address space")?;
        anyhow::ensure!(
            max_audio_bytes >= max_body_bytes,
            "CALLTRAIL_MAX_AUDIO_BYTES ({max_audio_bytes}) must be at least CALLTRAIL_MAX_BODY_BYTES ({max_body_bytes})"
        );
        Ok(Self {
            database_url: database_url.to_owned(),
            read_database_url: (args.read_database_url.as_ref())
                .map(|url| url.expose().trim().to_owned())
                .filter(|url| !url.is_empty()),
            read_max_lag: Duration::from_secs(args.read_max_lag_secs),
            bind: args.bind,
            max_body_bytes,
            max_audio_bytes,
            public_url: public_url(args.public_url.as_deref())?,
            secrets_key: secrets_key()?,
            projector: !args.no_projector,
            worker: !args.no_worker,
            http_workers: args
                .http_workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from)),
            credits_per_minute: args.billing.credits_per_minute,
            bounds: args.billing.bounds(),
            poll_interval: Duration::from_millis(500),
            analysis_workers: args.analysis.analysis_workers,
            openai: args.analysis.openai(),
            analysis: WorkerConfig {
                lease: Duration::from_secs(args.analysis.analysis_lease_secs),
                max_attempts: args.analysis.analysis_max_attempts,
                system_prompts: args.analysis.system_prompts()?,
                ..WorkerConfig::default()
            },
            reconcile: ReconcileSettings {
                interval: args.reconcile.interval,
                older_than: args.reconcile.older_than,
                rate: args.reconcile.api.rate,
            },
        })
    }

    /// Defaults for tests: port 0, projector on, workers off (local analyzer, fast timings when
    /// turned on), small pools.
    pub fn for_tests(database_url: &str) -> Self {
        Self {
            database_url: database_url.to_owned(),
            read_database_url: None,
            read_max_lag: Duration::from_secs(10),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_body_bytes: 2_097_152,
            max_audio_bytes: 67_108_864,
            public_url: None,
            secrets_key: None,
            projector: true,
            worker: false,
            http_workers: 2,
            credits_per_minute: 1,
            bounds: calltrail_core::Bounds::default(),
            poll_interval: Duration::from_millis(200),
            analysis_workers: 2,
            openai: None,
            analysis: WorkerConfig {
                poll_interval: Duration::from_millis(50),
                lease: Duration::from_secs(5),
                max_attempts: 3,
                retry: Backoff::new(Duration::from_millis(50), Duration::from_millis(500)),
                shutdown_grace: Duration::from_secs(1),
                ..WorkerConfig::default()
            },
            reconcile: ReconcileSettings {
                interval: Duration::ZERO,
                ..ReconcileSettings::default()
            },
        }
    }
}

/// Refuses to start when stored provider credentials cannot be used as configured (see
/// [`check_credentials`]). A database that is down now cannot say: that is logged, and the
/// intake stays fail-closed for any secret it cannot open.
async fn check_stored_credentials(store: &ReadStore, settings: &Settings) -> anyhow::Result<()> {
    match store.tenancy().credential_summary().await {
        Ok(summary) => check_credentials(
            &summary,
            settings.secrets_key.as_ref(),
            settings.public_url.as_deref(),
        ),
        Err(calltrail_projections::Error::Unavailable(error)) => {
            tracing::warn!(
                %error,
                "the stored provider credentials could not be checked at start-up: the database is unavailable"
            );
            Ok(())
        }
        Err(error) => Err(error).context("cannot read the stored provider credentials"),
    }
}

/// A built application: HTTP server bound, pools and tasks ready.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    appender: Appender,
    log: EventLog,
    projector: Option<JoinHandle<Result<(), calltrail_projections::Error>>>,
    workers: Vec<JoinHandle<()>>,
    reconciler: Option<JoinHandle<()>>,
    workers_shutdown: CancellationToken,
    shutdown: CancellationToken,
}

impl Application {
    /// Connects, binds and starts every enabled task (the server starts serving when awaited).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let log = EventLog::connect(
            &settings.database_url,
            &ConnectOptions {
                max_connections: 16,
                acquire_timeout: Duration::from_secs(3),
            },
        )?;
        let store = ReadStore::connect(&settings.database_url, 16)?;
        check_stored_credentials(&store, &settings).await?;
        let metrics = calltrail_api::Metrics::new();
        let appender = log.appender(AppenderConfig {
            observer: Some(crate::ops::append_observer(&metrics)),
            ..AppenderConfig::default()
        });
        let listener = listen(settings.bind)
            .with_context(|| format!("cannot listen on {} (CALLTRAIL_BIND)", settings.bind))?;
        let port = listener.local_addr()?.port();
        let state = AppState::new(
            log.clone(),
            appender.clone(),
            store.clone(),
            ApiConfig {
                max_body_bytes: settings.max_body_bytes,
                max_audio_bytes: settings.max_audio_bytes,
                public_url: settings.public_url.clone(),
                secrets_key: settings.secrets_key.clone(),
                workers: settings.http_workers,
                ..ApiConfig::default()
            },
        )
        .with_metrics(metrics.clone());
        let shutdown = CancellationToken::new();
        let state = match &settings.read_database_url {
            Some(url) => {
                let replica = ReadStore::connect(url, 16)
                    .context("CALLTRAIL_READ_DATABASE_URL is not a usable connection string")?;
                let replica = ReadReplica::new(replica, settings.read_max_lag, &metrics);
                tokio::spawn(
                    replica
                        .clone()
                        .watch(store.clone(), shutdown.clone().cancelled_owned()),
                );
                state.with_replica(replica)
            }
            None => state,
        };
        let server =
            calltrail_api::server(state, listener).context("cannot start the HTTP server")?;
        let gauges = crate::ops::register_gauges(&metrics);
        tokio::spawn(crate::ops::sample(
            log.clone(),
            store.clone(),
            gauges,
            Duration::from_secs(5),
            shutdown.clone(),
        ));
        if settings.projector {
            arm_failpoints()?;
        }
        let projector = settings.projector.then(|| {
            let projector = Projector::new(
                log.clone(),
                store.clone(),
                ProjectorConfig {
                    credits_per_minute: settings.credits_per_minute,
                    bounds: settings.bounds,
                    poll_interval: settings.poll_interval,
                    ..ProjectorConfig::default()
                },
            );
            crate::ops::register_projector(&metrics, projector.metrics());
            tokio::spawn(projector.run(shutdown.clone()))
        });
        // Workers append results through the appender, so they get a token of their own:
        // they stop before the appender is flushed (see `run_until_stopped`).
        let workers_shutdown = CancellationToken::new();
        let workers = if settings.worker {
            spawn_workers(&settings, &log, &appender, &store, &workers_shutdown)?
        } else {
            Vec::new()
        };
        let reconciler = spawn_reconciler(
            &settings,
            &log,
            &appender,
            &store,
            &metrics,
            &workers_shutdown,
        )?;
        tracing::info!(
            address = %SocketAddr::from(([127, 0, 0, 1], port)),
            projector = settings.projector,
            analysis_workers = workers.len(),
            read_replica = settings.read_database_url.is_some(),
            "calltrail is serving"
        );
        Ok(Self {
            port,
            server,
            appender,
            log,
            projector,
            workers,
            reconciler,
            workers_shutdown,
            shutdown,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancelling this token shuts the application down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the token is cancelled (or the server stops), then: stop accepting and
    /// finish in-flight requests, let the analysis workers finish or put back their jobs,
    /// flush the append batch, let the projector finish its batch.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let server_result = tokio::select! {
            result = &mut server => Some(result),
            () = self.shutdown.cancelled() => None,
        };
        handle.stop(true).await;
        let server_result = match server_result {
            Some(result) => result,
            None => server.await,
        };
        self.workers_shutdown.cancel();
        for worker in self.workers {
            if let Err(error) = worker.await {
                tracing::error!(%error, "an analysis worker task failed");
            }
        }
        if let Some(reconciler) = self.reconciler {
            if let Err(error) = reconciler.await {
                tracing::error!(%error, "the reconciliation task failed");
            }
        }
        self.appender.shutdown().await;
        self.shutdown.cancel();
        if let Some(projector) = self.projector {
            match projector.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "the projector stopped with an error"),
                Err(error) => tracing::error!(%error, "the projector task failed"),
            }
        }
        self.log.close().await;
        server_result
            .context("the HTTP server task failed")?
            .context("the HTTP server failed")?;
        tracing::info!("calltrail stopped");
        Ok(())
    }
}

/// Connections the kernel queues for the server before it accepts them: actix's own default.
/// The standard library's `bind` asks for 128, and in a burst of new connections (a load
/// balancer's pool, a provider's retry storm) the kernel then drops SYNs, which costs each
/// client a one-second retransmit. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 2048;

/// A listening socket on `address` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as
/// `TcpListener::bind` sets it).
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Descriptors a process needs besides its HTTP connections (pools, listener, logs, NOTIFY).
const OTHER_OPEN_FILES: u64 = 256;

/// Linux's default ceiling for any process (`fs.nr_open`): a hard limit of "unlimited" is
/// capped here, since asking for more fails.
const NR_OPEN: u64 = 1 << 20;

/// Raises the soft limit on open files to the hard one, as servers commonly do at start-up:
/// every connection holds a descriptor, and the usual default soft limit (1,024) would refuse
/// connections long before the HTTP server's `max_connections`. Logs what it got, and warns
/// when that is less than `http_workers × max_connections` needs. Returns the soft limit now
/// in force (`None` when it cannot be read).
pub fn raise_open_files_limit(http_workers: usize) -> Option<u64> {
    let (soft, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open files limit (RLIMIT_NOFILE)");
            return None;
        }
    };
    let now = match rlimit::increase_nofile_limit(hard.min(NR_OPEN)) {
        Ok(now) => now,
        Err(error) => {
            tracing::warn!(%error, soft, hard, "cannot raise the open files limit (RLIMIT_NOFILE)");
            soft
        }
    };
    let connections = u64::try_from(http_workers.max(1))
        .unwrap_or(u64::MAX)
        .saturating_mul(u64::try_from(ApiConfig::default().max_connections).unwrap_or(u64::MAX));
    let needed = connections.saturating_add(OTHER_OPEN_FILES);
    if now < needed {
        tracing::warn!(
            open_files = now,
            was = soft,
            hard,
            needed,
            "the open files limit is below what the HTTP server's connection limit needs; \
             raise the hard limit (LimitNOFILE=, ulimit -Hn) to serve that many connections"
        );
    } else {
        tracing::info!(open_files = now, was = soft, hard, "open files limit");
    }
    Some(now)
}

/// Arms the projector's fail points listed in `FAILPOINTS` (drill 3). Only test builds have
/// fail points; any other build ignores the variable with a warning, so nothing can fire there.
fn arm_failpoints() -> anyhow::Result<()> {
    let Some(list) = std::env::var_os("FAILPOINTS") else {
        return Ok(());
    };
    if !projector::FAILPOINTS_BUILT {
        tracing::warn!("FAILPOINTS is set, but this build has no fail points; ignored");
        return Ok(());
    }
    let list = list.to_str().context("FAILPOINTS is not UTF-8")?;
    let armed = projector::arm_failpoints(list).context("FAILPOINTS")?;
    tracing::warn!(
        ?armed,
        failpoints = list,
        "fail points armed: this process will fail on purpose"
    );
    Ok(())
}

/// Starts `settings.analysis_workers` analysis workers (OpenAI or the local analyzer).
fn spawn_workers(
    settings: &Settings,
    log: &EventLog,
    appender: &Appender,
    store: &ReadStore,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let analyzer = LeadAnalyzer::from_config(settings.openai.clone())
        .context("cannot start the analysis workers")?;
    let kind = match &analyzer {
        LeadAnalyzer::OpenAi(_) => "openai",
        LeadAnalyzer::Local => "local",
    };
    tracing::info!(
        analyzer = kind,
        workers = settings.analysis_workers,
        "analysis workers starting"
    );
    let workers = (0..settings.analysis_workers)
        .map(|i| {
            let worker = Worker::new(
                format!("analysis-{i}"),
                DbQueue::new(store),
                DbResults::new(log.clone(), appender.clone(), store.clone()),
                analyzer.clone(),
                settings.analysis.clone(),
            );
            let token = shutdown.clone();
            tokio::spawn(worker.run(async move { token.cancelled().await }))
        })
        .collect();
    Ok(workers)
}

/// Starts serve's periodic reconciliation unless its interval is zero. It appends through the
/// appender, so it stops with the workers, before the appender is flushed.
fn spawn_reconciler(
    settings: &Settings,
    log: &EventLog,
    appender: &Appender,
    store: &ReadStore,
    metrics: &calltrail_api::Metrics,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let config = settings.reconcile;
    let observer = crate::reconcile::ReconcileMetrics::register(metrics);
    if config.interval.is_zero() {
        tracing::info!("periodic reconciliation is off (CALLTRAIL_RECONCILE_INTERVAL=0)");
        return Ok(None);
    }
    let db = crate::reconcile::DbReconcileStore::new(
        log.clone(),
        store.clone(),
        appender.clone(),
        settings.secrets_key.clone(),
        crate::reconcile::owner(),
    );
    let reconciler =
        calltrail_reconcile::Reconciler::new(db, crate::reconcile::client(config.rate)?);
    Ok(Some(tokio::spawn(crate::reconcile::periodic(
        std::sync::Arc::new(reconciler),
        config.interval,
        config.older_than,
        Some(observer),
        shutdown.clone(),
    ))))
}
