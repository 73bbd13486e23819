//! calltrail-api — the HTTP surface: provider webhooks in, the read API out, plus health,
//! metrics and the OpenAPI document. Handlers are thin: parse, call one use case, map the result.
//!
//! Modules:
//! - [`webhooks`]: `POST /v1/webhooks/{provider}/{token}` for every provider in the table: streamed
//!   signature check, parse, agent check, append, rejected log ([`webhooks::intake`]).
//! - [`calls`]: `GET /v1/calls`, `/v1/calls/{execution_id}`, `/v1/calls/{execution_id}/transcript`.
//! - [`analysis`]: `GET /v1/calls/{execution_id}/analysis`, `GET /v1/contacts/{phone}/analysis`.
//! - [`campaigns`]: `/v1/campaigns` (create, list, one, rename) and the recipients CSV upload.
//! - [`attributions`]: manual attribution, one call or up to 500, with `Idempotency-Key`.
//! - [`export`]: `GET /v1/calls.csv`, streamed.
//! - [`body`]: write routes' bodies: size limits, JSON fields by name, `Idempotency-Key`.
//! - [`contacts`]: `GET /v1/contacts`.
//! - [`credits`]: `GET /v1/credits`.
//! - [`kpis`]: `GET /v1/kpis`.
//! - [`reconciliation`]: `GET /v1/reconciliation`, the last reconciliation run per provider.
//! - [`health`]: `GET /healthz`, `GET /readyz`.
//! - [`metrics`]: the [`Metrics`] registry, request/webhook metrics, `GET /metrics`.
//! - [`openapi`]: `GET /openapi.json` ([`openapi::ApiDoc`]).
//! - [`replica`]: the optional read replica: where a read goes ([`ReadFrom`]), its health and lag.
//! - [`auth`]: the [`auth::Tenant`] extractor (bearer API key) and the tenancy cache.
//! - [`params`]: `limit`, `from`/`to` and `phone` parsing.
//! - [`error`]: [`ApiError`], the one table of error codes, statuses and messages.
//! - [`console`]: the web console at `/` (HTML pages, sessions, embedded assets).

pub mod analysis;
pub mod attributions;
pub mod auth;
pub mod body;
pub mod calls;
pub mod campaigns;
pub mod console;
pub mod contacts;
pub mod credits;
pub mod error;
pub mod export;
pub mod health;
pub mod kpis;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod reconciliation;
pub mod replica;
pub mod webhooks;

#[cfg(test)]
mod http_tests;

use std::future::Future;
use std::net::TcpListener;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlers;
use actix_web::{web, App, HttpServer, Route};
use calltrail_eventlog::{Appender, EventLog};
use calltrail_projections::ReadStore;

pub use error::ApiError;
pub use metrics::Metrics;
pub use replica::{ReadFrom, ReadReplica};

use auth::TenancyCache;

/// HTTP server settings (`max_body_bytes`, `max_audio_bytes` and `public_url` come from
/// `CALLTRAIL_MAX_BODY_BYTES`, `CALLTRAIL_MAX_AUDIO_BYTES`, `CALLTRAIL_PUBLIC_URL` and
/// `CALLTRAIL_SECRETS_KEY`).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest webhook body accepted; beyond it the answer is 413 (default 2 MiB).
    pub max_body_bytes: usize,
    /// Largest body a provider that streams large messages (ElevenLabs `post_call_audio`) may
    /// send to be answered as ignored: streamed through the signature check, never kept
    /// (default 64 MiB). Beyond it the answer is 413.
    pub max_audio_bytes: usize,
    /// The base URL providers call, without a trailing `/` (`https://calltrail.example.com`):
    /// with the request's path and query it is the URL a provider signs (Twilio). `None` when
    /// not configured.
    pub public_url: Option<String>,
    /// `CALLTRAIL_SECRETS_KEY`: opens the tenants' stored signing secrets. `None` when not
    /// configured (then no stored secret can be used: the provider is fail-closed).
    pub secrets_key: Option<calltrail_core::secrets::SecretsKey>,
    /// HTTP worker threads (default: available parallelism).
    pub workers: usize,
    /// Open connections per worker; further connections wait in the accept backlog.
    pub max_connections: usize,
    /// How long an idle keep-alive connection stays open.
    pub keep_alive: Duration,
    /// How long a client may take to send a request's head before it gets 408.
    pub client_request_timeout: Duration,
    /// How long a closing connection may take to shut down.
    pub client_disconnect_timeout: Duration,
    /// How long a client may take to send a webhook body before it gets 408.
    pub body_timeout: Duration,
    /// How long graceful shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// How long webhook tokens and agent owners are cached in memory (API keys: at most
    /// [`auth::API_KEY_TTL`], so that a revoked key is refused soon).
    pub auth_cache_ttl: Duration,
    /// How long `/readyz` waits for the databases.
    pub readiness_timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 2_097_152,
            max_audio_bytes: 67_108_864,
            public_url: None,
            secrets_key: None,
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            max_connections: 4_096,
            keep_alive: Duration::from_secs(30),
            client_request_timeout: Duration::from_secs(5),
            client_disconnect_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            auth_cache_ttl: Duration::from_secs(30),
            readiness_timeout: Duration::from_secs(2),
        }
    }
}

/// Everything a handler needs (cheap to clone: every field is a shared handle).
#[derive(Clone)]
pub struct AppState {
    log: EventLog,
    appender: Appender,
    store: ReadStore,
    replica: Option<ReadReplica>,
    config: ApiConfig,
    metrics: Metrics,
    tenancy: TenancyCache,
    db_runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Wires the handles together, with a fresh [`Metrics`] registry.
    ///
    /// Call it on the runtime that owns the pools (the binary's main runtime): HTTP workers run
    /// their own single-threaded runtimes, so every database call is sent to this one, where
    /// pooled connections live and outlive the workers (the projector and a final append flush
    /// keep using them after the server stops).
    pub fn new(log: EventLog, appender: Appender, store: ReadStore, config: ApiConfig) -> Self {
        Self {
            db_runtime: tokio::runtime::Handle::try_current().ok(),
            tenancy: TenancyCache::new(config.auth_cache_ttl),
            log,
            appender,
            store,
            replica: None,
            config,
            metrics: Metrics::new(),
        }
    }

    /// Sends [`ReadFrom::Replica`] reads to this replica while it is healthy.
    pub fn with_replica(mut self, replica: ReadReplica) -> Self {
        self.replica = Some(replica);
        self
    }

    /// The read replica, when one is configured.
    pub fn replica(&self) -> Option<&ReadReplica> {
        self.replica.as_ref()
    }

    /// Uses this registry instead (e.g. one the binary already registered its metrics on).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The metrics registry: register more metrics on it through [`Metrics::with_registry`].
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The server settings.
    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// The event log (pings, rejected log).
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// The group-commit appender.
    pub fn appender(&self) -> &Appender {
        &self.appender
    }

    /// The read store on the primary (tenancy, webhooks, reads that must see their own writes).
    pub fn store(&self) -> &ReadStore {
        &self.store
    }

    pub(crate) fn tenancy(&self) -> &TenancyCache {
        &self.tenancy
    }

    /// Runs a read of the read tables on the database runtime, on the replica when one is
    /// configured and healthy ([`ReadFrom::Replica`]), mapping its errors to the API's.
    pub(crate) async fn read<T, F, Fut>(&self, query: F) -> Result<T, ApiError>
    where
        F: FnOnce(ReadStore) -> Fut,
        Fut: Future<Output = Result<T, calltrail_projections::Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.read_from(ReadFrom::Replica, query).await
    }

    /// Runs a read-side query on the database runtime against the server `from` names.
    pub(crate) async fn read_from<T, F, Fut>(&self, from: ReadFrom, query: F) -> Result<T, ApiError>
    where
        F: FnOnce(ReadStore) -> Fut,
        Fut: Future<Output = Result<T, calltrail_projections::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store_for(from);
        self.on_db_runtime(query(store))
            .await?
            .map_err(ApiError::from_store)
    }

    /// The read store `from` names: the replica while it is healthy, else the primary.
    pub(crate) fn store_for(&self, from: ReadFrom) -> ReadStore {
        let replica = match from {
            ReadFrom::Replica => self.replica.as_ref().and_then(ReadReplica::for_reads),
            ReadFrom::Primary => None,
        };
        replica.unwrap_or(&self.store).clone()
    }

    /// Starts a database future on the runtime that owns the pools without waiting for it.
    pub(crate) fn spawn_on_db_runtime<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.db_runtime {
            Some(runtime) => runtime.spawn(future),
            None => tokio::spawn(future),
        }
    }

    /// Runs a database future on the runtime that owns the pools (see [`AppState::new`]).
    pub(crate) async fn on_db_runtime<F>(&self, future: F) -> Result<F::Output, ApiError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Some(runtime) = &self.db_runtime else {
            return Ok(future.await);
        };
        runtime.spawn(future).await.map_err(|err| {
            if err.is_cancelled() {
                ApiError::Unavailable(Box::new(err))
            } else {
                ApiError::Internal(Box::new(err))
            }
        })
    }
}

/// Starts the HTTP server on `listener`. Await the returned [`Server`] to run it; stop it
/// through `server.handle().stop(true)` (it installs no signal handlers of its own).
pub fn server(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    let config = state.config.clone();
    let data = web::Data::new(state);
    let server = HttpServer::new(move || app(data.clone()))
        .workers(config.workers.max(1))
        .max_connections(config.max_connections.max(1))
        .keep_alive(config.keep_alive)
        .client_request_timeout(config.client_request_timeout)
        .client_disconnect_timeout(config.client_disconnect_timeout)
        .shutdown_timeout(config.shutdown_timeout.as_secs())
        .disable_signals()
        .listen(listener)?
        .run();
    Ok(server)
}

/// The application: routes, extractor error handlers, metrics middleware, JSON 404/405.
pub fn app(
    data: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(data)
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .configure(console::routes)
        .configure(routes)
        .default_service(web::to(error::route_not_found))
        .wrap(
            ErrorHandlers::new().handler(StatusCode::METHOD_NOT_ALLOWED, error::method_not_allowed),
        )
        .wrap_fn(metrics::track)
}

/// Every route. Each path is one resource, so a known path with another method answers 405.
fn routes(cfg: &mut web::ServiceConfig) {
    let resource = |path: &'static str, route: Route| {
        web::resource(path)
            .app_data(metrics::RouteLabel(path))
            .route(route)
    };
    cfg.service(resource("/healthz", web::get().to(health::healthz)))
        .service(resource("/readyz", web::get().to(health::readyz)))
        .service(resource("/metrics", web::get().to(metrics::metrics)))
        .service(resource(
            "/openapi.json",
            web::get().to(openapi::openapi_json),
        ))
        .service(resource(
            "/v1/webhooks/{provider}/{webhook_token}",
            web::post().to(webhooks::intake::receive),
        ))
        .service(resource("/v1/calls", web::get().to(calls::list_calls)))
        .service(resource(
            "/v1/calls.csv",
            web::get().to(export::export_calls),
        ))
        .service(resource(
            "/v1/calls/{execution_id}/attribution",
            web::post().to(attributions::attribute_call),
        ))
        .service(resource(
            "/v1/attributions",
            web::post().to(attributions::attribute_bulk),
        ))
        .service(
            web::resource("/v1/campaigns")
                .app_data(metrics::RouteLabel("/v1/campaigns"))
                .route(web::get().to(campaigns::list_campaigns))
                .route(web::post().to(campaigns::create_campaign)),
        )
        .service(
            web::resource("/v1/campaigns/{campaign_id}")
                .app_data(metrics::RouteLabel("/v1/campaigns/{campaign_id}"))
                .route(web::get().to(campaigns::get_campaign))
                .route(web::patch().to(campaigns::rename_campaign)),
        )
        .service(resource(
            "/v1/campaigns/{campaign_id}/recipients",
            web::post().to(campaigns::add_recipients),
        ))
        .service(resource(
            "/v1/calls/{execution_id}",
            web::get().to(calls::get_call),
        ))
        .service(resource(
            "/v1/calls/{execution_id}/transcript",
            web::get().to(calls::get_transcript),
        ))
        .service(resource(
            "/v1/calls/{execution_id}/analysis",
            web::get().to(analysis::call_analysis),
        ))
        .service(resource(
            "/v1/contacts",
            web::get().to(contacts::list_contacts),
        ))
        .service(resource(
            "/v1/contacts/{phone}/analysis",
            web::get().to(analysis::contact_analysis),
        ))
        .service(resource("/v1/credits", web::get().to(credits::credits)))
        .service(resource("/v1/kpis", web::get().to(kpis::kpis)))
        .service(resource(
            "/v1/reconciliation",
            web::get().to(reconciliation::reconciliation),
        ));
}
