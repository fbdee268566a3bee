//! One tower layer in front of every route of a listener — health, reflection and the proxy
//! alike: it names the caller (once per connection), charges its rate, gives the call a place
//! among those in flight (in total, in its tenant's share, per caller) held until the response
//! ends, and records the call's span and metrics.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use creditmesh_domain::{Principal, PrincipalKind};
use creditmesh_pki::{DelegationTls, ServerTls};
use creditmesh_transport::connections::{Activity, once_per_connection};
use creditmesh_transport::in_flight::hold_until_end;
use creditmesh_transport::{
    CONSOLE_SERVICE, FORWARDED_FOR_HEADER, FORWARDER_HEADER, OFFICER_CERT_HEADER,
};
use http::{Request, Response};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use tonic::Status;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::caller::Caller;
use crate::limits::Limits;
use crate::policy::Role;

#[derive(Clone)]
pub struct GateLayer {
    shared: Arc<Shared>,
}

struct Shared {
    limits: Arc<Limits>,
    /// The node listener's TLS configuration, whose revocation list applies to connections
    /// opened before a certificate was revoked.
    tls: Option<Arc<ServerTls>>,
    trust_domain: Arc<str>,
    public: bool,
    /// On the public listener: the token with which a forwarder (the website) names the
    /// visitor it calls for.
    forwarder: Option<Arc<str>>,
    /// On the node listener: the check of the officer certificates the console forwards.
    delegation: Option<Arc<DelegationTls>>,
    metrics: Metrics,
}

impl GateLayer {
    /// `tls` is the node listener's configuration; `None` for the public listener.
    pub fn new(limits: Arc<Limits>, trust_domain: &str, tls: Option<Arc<ServerTls>>) -> Self {
        Self::with_forwarder(limits, trust_domain, tls, None)
    }

    /// A node listener's gate that lets the console call as the officer whose certificate it
    /// forwards, once `delegation` has checked that certificate.
    pub fn node(
        limits: Arc<Limits>,
        trust_domain: &str,
        tls: Arc<ServerTls>,
        delegation: Arc<DelegationTls>,
    ) -> Self {
        let mut gate = Self::new(limits, trust_domain, Some(tls));
        if let Some(shared) = Arc::get_mut(&mut gate.shared) {
            shared.delegation = Some(delegation);
        }
        gate
    }

    /// A public listener's gate that believes the visitor address a call carries when it
    /// also carries `forwarder`, the forwarder token.
    pub fn with_forwarder(
        limits: Arc<Limits>,
        trust_domain: &str,
        tls: Option<Arc<ServerTls>>,
        forwarder: Option<Arc<str>>,
    ) -> Self {
        let public = tls.is_none();
        Self {
            shared: Arc::new(Shared {
                limits,
                tls,
                trust_domain: trust_domain.into(),
                public,
                forwarder: forwarder.filter(|_| public),
                delegation: None,
                metrics: Metrics::new(),
            }),
        }
    }
}

impl<S> tower::Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Gate {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl Shared {
    fn caller<B>(&self, req: &Request<B>) -> Result<Arc<Caller>, Status> {
        let caller =
            once_per_connection(req.extensions().get::<Arc<Activity>>(), || self.derive(req))?;
        if self.public {
            return Ok(self.forwarded(req, caller));
        }
        if let (Some(tls), Some(serial)) = (&self.tls, &caller.serial)
            && tls.is_revoked(serial)
        {
            tracing::warn!(caller = %caller.id, "call with a revoked certificate refused");
            return Err(Status::unauthenticated("client certificate revoked"));
        }
        match req.headers().get(OFFICER_CERT_HEADER) {
            Some(cert) => self.officer(cert.as_bytes(), &caller).map(Arc::new),
            None => Ok(caller),
        }
    }

    /// The officer the console calls for, named by the certificate the officer signed in to
    /// the console with: checked as this listener checks its own clients' (the CA's, valid,
    /// not revoked, for client authentication), and a regulator's. No other caller may name
    /// anyone but itself.
    fn officer(&self, cert: &[u8], console: &Caller) -> Result<Caller, Status> {
        let p = &console.principal;
        if p.kind != PrincipalKind::Service || p.subject != CONSOLE_SERVICE {
            tracing::warn!(caller = %console.id, "an officer certificate from a caller that is not the console refused");
            return Err(Status::permission_denied(
                "only the console calls on an officer's behalf",
            ));
        }
        let check = self.delegation.as_ref().ok_or_else(|| {
            Status::permission_denied("this listener takes no officer certificates")
        })?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(cert)
            .map_err(|_| Status::unauthenticated("officer certificate: not standard base64"))?;
        let (principal, serial) = check
            .current()
            .principal(&der)
            .map_err(|e| Status::unauthenticated(format!("officer certificate: {e}")))?;
        if self.tls.as_ref().is_some_and(|tls| tls.is_revoked(&serial)) {
            return Err(Status::unauthenticated("officer certificate revoked"));
        }
        if principal.kind != PrincipalKind::Regulator {
            return Err(Status::permission_denied(
                "the console serves the authorities' officers only",
            ));
        }
        let id: Arc<str> = principal.spiffe_id(&self.trust_domain).into();
        tracing::debug!(console = %console.id, officer = %id, "call on an officer's behalf");
        Ok(Caller {
            serial: Some(serial),
            role: Role::of(&principal),
            key: id.clone(),
            id,
            tenant: principal.tenant.to_string().into(),
            principal,
        })
    }

    /// The visitor a trusted forwarder names, counted by its own address in the place of the
    /// forwarder's; without the token, or with an address that does not parse, the
    /// connection's own caller.
    fn forwarded<B>(&self, req: &Request<B>, caller: Arc<Caller>) -> Arc<Caller> {
        let Some(token) = &self.forwarder else {
            return caller;
        };
        let headers = req.headers();
        let Some(visitor) = headers.get(FORWARDED_FOR_HEADER) else {
            return caller;
        };
        let trusted = headers
            .get(FORWARDER_HEADER)
            .is_some_and(|v| same_bytes(v.as_bytes(), token.as_bytes()));
        if !trusted {
            tracing::debug!(address = %caller.key, "forwarded address without the forwarder token ignored");
            return caller;
        }
        let Some(ip) = visitor
            .to_str()
            .ok()
            .and_then(|v| v.parse::<std::net::IpAddr>().ok())
        else {
            tracing::warn!("the forwarder named a visitor address that does not parse");
            return caller;
        };
        Arc::new(Caller {
            principal: Principal::public(),
            role: Role::Public,
            id: caller.id.clone(),
            key: ip.to_string().into(),
            tenant: caller.tenant.clone(),
            serial: None,
        })
    }

    fn derive<B>(&self, req: &Request<B>) -> Result<Caller, Status> {
        let info = req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>();
        if self.public {
            let address = info
                .and_then(|i| i.get_ref().remote_addr())
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            return Ok(Caller {
                principal: Principal::public(),
                role: Role::Public,
                id: "public".into(),
                key: address.into(),
                tenant: "public".into(),
                serial: None,
            });
        }
        let certs = info
            .and_then(|i| i.peer_certs())
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let principal = creditmesh_pki::principal_of(leaf, &self.trust_domain)
            .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
        let id: Arc<str> = principal.spiffe_id(&self.trust_domain).into();
        let serial = creditmesh_pki::serial_of(leaf)
            .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
        Ok(Caller {
            serial: Some(serial),
            role: Role::of(&principal),
            key: id.clone(),
            id,
            tenant: principal.tenant.to_string().into(),
            principal,
        })
    }
}

/// Equal, in a time that does not depend on where they differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<Request<B>> for Gate<S>
where
    S: tower::Service<Request<B>, Response = Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let path = req.uri().path().trim_start_matches('/');
        // Metrics and spans name known methods only, so that no caller can make their series
        // grow without bound: the log's files are one route, any other path "unknown".
        let method = if path.starts_with("register/") {
            "register".to_owned()
        } else if crate::policy::allowed(path).is_some()
            || path.starts_with("grpc.health.v1.Health/")
            || path.starts_with("grpc.reflection.")
        {
            path.to_owned()
        } else {
            "unknown".to_owned()
        };
        let span = tracing::info_span!(
            "gateway",
            otel.name = %method,
            otel.kind = "server",
            rpc.method = %method,
            public = shared.public,
            tenant = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        if creditmesh_transport::telemetry::exporting() {
            let _ = span.set_parent(creditmesh_transport::telemetry::extract(req.headers()));
        }
        let started = std::time::Instant::now();
        Box::pin(
            async move {
                let admitted = shared
                    .limits
                    .check_headers(req.headers())
                    .and_then(|()| shared.caller(&req))
                    .and_then(|caller| {
                        tracing::Span::current().record("tenant", &*caller.tenant);
                        let permits = shared.limits.admit(&caller)?;
                        Ok((caller, permits))
                    });
                let (tenant, response) = match admitted {
                    Ok((caller, permits)) => {
                        let tenant = caller.tenant.clone();
                        req.extensions_mut().insert(caller);
                        let Ok(response) = inner.call(req).await;
                        (tenant, hold_until_end(response, permits))
                    }
                    Err(status) => (Arc::from(""), status.into_http()),
                };
                // Unary calls that fail answer their status in the headers; the rest are OK
                // as far as the gateway can tell without holding the body.
                let status = creditmesh_transport::trace::header_status(&response);
                tracing::Span::current().record("rpc.grpc.status_code", status);
                shared
                    .metrics
                    .record(method, tenant, status, started.elapsed());
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// Request metrics per method, tenant and status.
struct Metrics {
    calls: Counter<u64>,
    duration: Histogram<f64>,
}

impl Metrics {
    fn record(&self, method: String, tenant: Arc<str>, status: &str, elapsed: std::time::Duration) {
        // For the operations port too; a caller refused before it was known has no tenant.
        let known = if tenant.is_empty() {
            "unknown"
        } else {
            &tenant
        };
        creditmesh_transport::metrics::record(
            &method,
            known.to_owned(),
            status.to_owned(),
            elapsed,
        );
        let attrs = [
            KeyValue::new("rpc.method", method),
            KeyValue::new("tenant", tenant),
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
