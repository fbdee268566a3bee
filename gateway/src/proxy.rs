//! Forwards each call to the backend of its service, under the caller's identity as derived
//! from its certificate.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use axum::body::Body;
use creditmesh_domain::Principal;
use creditmesh_rpc::{PRINCIPAL_HEADER, REQUEST_ID_HEADER};

use crate::Routing;
use crate::limits::Limits;
use crate::policy::{self, Role};
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use tonic::Status;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::ServiceExt;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The services with methods on the public listener, whose health it answers.
pub const PUBLIC_SERVICES: &[&str] = &[
    "creditmesh.disclosure.v1.DisclosureService",
    "creditmesh.complaints.v1.ComplaintService",
];

/// Metadata prefix reserved for the mesh; whatever a caller sends under it is dropped.
const RESERVED_PREFIX: &str = "x-creditmesh-";

/// Certificates whose principal is remembered, so that a caller's certificate is parsed once
/// rather than on every call (the handshake has verified it already).
const PRINCIPAL_CACHE: usize = 10_000;

#[derive(Clone)]
pub struct Proxy {
    principals: Arc<RwLock<HashMap<Vec<u8>, Principal>>>,
    channels: Arc<Routing>,
    trust_domain: Arc<str>,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
    public: bool,
}

/// Request metrics per method, tenant and status.
struct Metrics {
    calls: Counter<u64>,
    duration: Histogram<f64>,
}

impl Metrics {
    fn record(&self, method: &str, tenant: &str, status: &str, elapsed: std::time::Duration) {
        let attrs = [
            KeyValue::new("rpc.method", method.to_owned()),
            KeyValue::new("tenant", tenant.to_owned()),
            KeyValue::new("rpc.grpc.status_code", status.to_owned()),
        ];
        self.calls.add(1, &attrs);
        self.duration.record(elapsed.as_secs_f64(), &attrs);
    }

    fn new() -> Self {
        let meter = opentelemetry::global::meter("creditmesh.gateway");
        Self {
            calls: meter
                .u64_counter("creditmesh.gateway.calls")
                .with_description("calls through the gateway")
                .build(),
            duration: meter
                .f64_histogram("creditmesh.gateway.duration")
                .with_unit("s")
                .with_description("time from request to response headers")
                .build(),
        }
    }
}

impl Proxy {
    pub fn new(
        channels: Arc<Routing>,
        trust_domain: String,
        limits: Arc<Limits>,
        public: bool,
    ) -> Self {
        Self {
            principals: Arc::default(),
            channels,
            trust_domain: trust_domain.into(),
            limits,
            metrics: Arc::new(Metrics::new()),
            public,
        }
    }

    /// The client's address, which stands for the caller on the public listener.
    fn remote_ip(req: &Request<Body>) -> String {
        req.extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.get_ref().remote_addr())
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    }

    fn caller(&self, req: &Request<Body>) -> Result<Principal, Status> {
        if self.public {
            return Ok(Principal::public());
        }
        let certs = req
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.peer_certs())
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        if let Some(p) = self
            .principals
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(leaf.as_ref())
        {
            return Ok(p.clone());
        }
        let principal = creditmesh_pki::principal_of(leaf, &self.trust_domain)
            .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
        let mut cache = self.principals.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= PRINCIPAL_CACHE {
            cache.clear();
        }
        cache.insert(leaf.to_vec(), principal.clone());
        Ok(principal)
    }

    /// Forwards one call; `tenant` learns the caller's tenant once it is known.
    async fn forward(
        &self,
        mut req: Request<Body>,
        tenant_out: &mut String,
    ) -> Result<Response<Body>, Status> {
        let method = req.uri().path().trim_start_matches('/').to_owned();
        let service = method.split('/').next().unwrap_or_default().to_owned();
        let principal = self.caller(&req)?;
        let role = Role::of(&principal);
        let tenant = if self.public {
            "public".to_owned()
        } else {
            principal.tenant.to_string()
        };
        tracing::Span::current().record("tenant", tenant.as_str());
        *tenant_out = tenant;
        match policy::allowed(&method) {
            Some(roles) if roles.contains(&role) => {}
            Some(_) => {
                return Err(Status::permission_denied(format!(
                    "{role:?} callers may not call {method}"
                )));
            }
            None => {
                return Err(Status::permission_denied(format!(
                    "{method} is not callable"
                )));
            }
        }
        // The public has no tenant: its calls go to the default backends.
        let tenant = (!self.public).then_some(principal.tenant);
        let channel = self
            .channels
            .channel(&service, tenant)
            .ok_or_else(|| Status::unavailable(format!("no backend configured for {service}")))?;
        let caller = if self.public {
            "public".to_owned()
        } else {
            principal.spiffe_id(&self.trust_domain)
        };
        let rate_key = if self.public {
            Self::remote_ip(&req)
        } else {
            caller.clone()
        };
        self.limits.charge(role, &rate_key)?;
        let _in_flight = self.limits.admit()?;

        let headers = req.headers_mut();
        let reserved: Vec<_> = headers
            .keys()
            .filter(|k| k.as_str().starts_with(RESERVED_PREFIX))
            .cloned()
            .collect();
        for k in reserved {
            headers.remove(&k);
        }
        headers.insert(
            PRINCIPAL_HEADER,
            HeaderValue::from_str(&caller).map_err(|_| Status::internal("principal header"))?,
        );
        let request_id_ok = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.is_empty() && v.len() <= 128);
        if !request_id_ok {
            let id = uuid::Uuid::now_v7().to_string();
            headers.insert(
                REQUEST_ID_HEADER,
                HeaderValue::from_str(&id).map_err(|_| Status::internal("request id header"))?,
            );
        }
        creditmesh_rpc::telemetry::inject_current(req.headers_mut());
        tracing::debug!(%service, path = %req.uri().path(), %caller, "forwarding");

        let (parts, body) = req.into_parts();
        let req = Request::from_parts(parts, tonic::body::Body::new(body));
        let response = channel
            .oneshot(req)
            .await
            .map_err(|e| Status::unavailable(format!("backend of {service} unreachable: {e}")))?;
        Ok(response.map(Body::new))
    }
}

impl tower::Service<Request<Body>> for Proxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        let method = req.uri().path().trim_start_matches('/').to_owned();
        let span = tracing::info_span!(
            "gateway",
            otel.name = %method,
            otel.kind = "server",
            rpc.method = %method,
            public = this.public,
            tenant = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let _ = span.set_parent(creditmesh_rpc::telemetry::extract(req.headers()));
        let started = std::time::Instant::now();
        Box::pin(
            async move {
                let mut tenant = String::new();
                let response = match this.forward(req, &mut tenant).await {
                    Ok(response) => response,
                    Err(status) => status.into_http(),
                };
                // Unary calls that fail answer their status in the headers; the rest are OK
                // as far as the gateway can tell without holding the body.
                let status = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned();
                tracing::Span::current().record("rpc.grpc.status_code", status.as_str());
                this.metrics
                    .record(&method, &tenant, &status, started.elapsed());
                Ok(response)
            }
            .instrument(span),
        )
    }
}
