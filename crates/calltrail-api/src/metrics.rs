//! Prometheus metrics: the registry handle, HTTP request metrics by route pattern, webhook
//! outcome counters, and `GET /metrics`.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use calltrail_core::Provider;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::ApiError;
use crate::AppState;

/// Labels of the HTTP request metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    /// The matched route pattern (`/v1/calls/{execution_id}`), never the raw path.
    route: &'static str,
    status: u16,
}

/// A resource's route pattern, stored as its resource data so that [`track`] labels a request
/// without matching the route a second time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteLabel(pub &'static str);

/// Label of requests no resource matched (404s of unknown paths).
const UNMATCHED: &str = "unmatched";

/// Labels of the webhook outcome counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WebhookLabels {
    /// The provider's name from `calltrail_core::Provider`'s table.
    provider: &'static str,
    /// `accepted`, `duplicate`, `conflict` (a duplicate with a different body), `ignored` (a
    /// message checked but not stored) or `rejected`.
    outcome: &'static str,
    /// The error code for `rejected`, empty otherwise.
    code: &'static str,
}

/// How a webhook ended, for [`Metrics::webhook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// A new event was committed.
    Accepted,
    /// The same key and body were already recorded.
    Duplicate,
    /// The key was recorded with a different body.
    Conflict,
    /// A message that says nothing about the call's lifecycle: checked, not stored.
    Ignored,
    /// Refused with this error code.
    Rejected(&'static str),
}

type LatencyFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

struct Inner {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    webhooks: Family<WebhookLabels, Counter>,
}

/// The process's metrics registry (cheap to clone). Metric names get the `calltrail_` prefix.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Metrics {
    /// A registry with the API's own metrics registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("calltrail");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency in seconds, by method, route pattern and status",
            latency.clone(),
        );
        registry.register(
            "webhooks",
            "Webhooks received, by provider and outcome (accepted, duplicate, conflict, ignored, rejected)",
            webhooks.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry: Mutex::new(registry),
                requests,
                latency,
                webhooks,
            }),
        }
    }

    /// Lets the caller register more metrics (projector lag, batch sizes, …) on the shared registry.
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        let mut registry = self
            .inner
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut registry)
    }

    /// Every registered metric in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        self.with_registry(|registry| {
            prometheus_client::encoding::text::encode(&mut out, registry)
        })?;
        Ok(out)
    }

    /// Counts one webhook outcome.
    pub fn webhook(&self, provider: Provider, outcome: WebhookOutcome) {
        let (outcome, code) = match outcome {
            WebhookOutcome::Accepted => ("accepted", ""),
            WebhookOutcome::Duplicate => ("duplicate", ""),
            WebhookOutcome::Conflict => ("conflict", ""),
            WebhookOutcome::Ignored => ("ignored", ""),
            WebhookOutcome::Rejected(code) => ("rejected", code),
        };
        self.inner
            .webhooks
            .get_or_create(&WebhookLabels {
                provider: provider.as_str(),
                outcome,
                code,
            })
            .inc();
    }

    fn observe_request(
        &self,
        method: &'static str,
        route: &'static str,
        status: u16,
        seconds: f64,
    ) {
        let labels = RequestLabels {
            method,
            route,
            status,
        };
        self.inner.requests.get_or_create(&labels).inc();
        self.inner.latency.get_or_create(&labels).observe(seconds);
    }
}

/// The method as a label: the standard ones by name, anything else as `OTHER` (a client must
/// not be able to mint label values).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Middleware (`App::wrap_fn`): times every request and counts it by route pattern and status.
pub(crate) fn track<S, B>(
    req: ServiceRequest,
    next: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody,
{
    let started = Instant::now();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics().clone());
    let method = method_label(req.method());
    let response = next.call(req);
    async move {
        let result = response.await;
        if let Some(metrics) = metrics {
            let (route, status) = match &result {
                Ok(res) => (
                    res.request()
                        .app_data::<RouteLabel>()
                        .map_or(UNMATCHED, |label| label.0),
                    res.status().as_u16(),
                ),
                Err(err) => (UNMATCHED, err.as_response_error().status_code().as_u16()),
            };
            let seconds = started.elapsed().as_secs_f64();
            metrics.observe_request(method, route, status, seconds);
        }
        result
    }
}

/// `GET /metrics`: Prometheus/OpenMetrics text.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Metrics in the OpenMetrics text format", body = String, content_type = "application/openmetrics-text"))
)]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state
        .metrics()
        .encode()
        .map_err(|err| ApiError::Internal(Box::new(err)))?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text))
}
