//! One tower layer: every call a service answers, counted and timed by service, method, the
//! caller's tenant and the gRPC status (rate, errors, duration), for the operations port's
//! `/metrics`. Names and attributes follow OpenTelemetry's RPC conventions as Prometheus
//! spells them (`rpc_server_duration_seconds`, `rpc_grpc_status_code`). The status is the one
//! the response headers carry (a failed call answers with them); a stream that fails after
//! it began sending counts as it began, `0`.

use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::headers::lane_of;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    rpc_service: String,
    rpc_method: String,
    tenant: String,
    rpc_grpc_status_code: String,
}

type Durations = Family<CallLabels, Histogram, fn() -> Histogram>;

/// The calls this process's services answered.
struct Calls {
    count: Family<CallLabels, Counter>,
    duration: Durations,
}

fn durations() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

static CALLS: LazyLock<Calls> = LazyLock::new(|| Calls {
    count: Family::default(),
    duration: Durations::new_with_constructor(durations),
});

/// Counts one call of `path` (`/package.Service/Method`) by a caller of `tenant`, answered
/// with `status` (the gRPC code) after `elapsed`: what the layer below records for a service,
/// and the gateway for the calls it forwards.
pub fn record(path: &str, tenant: String, status: String, elapsed: std::time::Duration) {
    let path = path.trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    let labels = CallLabels {
        rpc_service: service.to_owned(),
        rpc_method: method.to_owned(),
        tenant,
        rpc_grpc_status_code: status,
    };
    CALLS.count.get_or_create(&labels).inc();
    CALLS
        .duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
}

/// Adds the calls answered so far to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(
        "rpc_server_calls",
        "Calls answered, by service, method, caller's tenant and gRPC status",
        CALLS.count.clone(),
    );
    registry.register(
        "rpc_server_duration_seconds",
        "Time from a call's arrival to its answer's headers",
        CALLS.duration.clone(),
    );
}

/// Counts and times each call of the service it wraps.
#[derive(Clone)]
pub struct CallMetricsLayer {
    trust_domain: Arc<str>,
}

impl CallMetricsLayer {
    pub fn new(trust_domain: &str) -> Self {
        Self {
            trust_domain: Arc::from(trust_domain),
        }
    }
}

impl<S> tower::Layer<S> for CallMetricsLayer {
    type Service = CallMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallMetrics {
            inner,
            trust_domain: self.trust_domain.clone(),
        }
    }
}

#[derive(Clone)]
pub struct CallMetrics<S> {
    inner: S,
    trust_domain: Arc<str>,
}

impl<S, B, R> tower::Service<http::Request<B>> for CallMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let tenant = lane_of(req.headers(), &self.trust_domain).to_string();
        let began = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            let code = match &res {
                Ok(r) => crate::trace::header_status(r).to_owned(),
                // The server could not answer at all.
                Err(_) => "14".to_owned(),
            };
            record(&path, tenant, code, began.elapsed());
            res
        })
    }
}
