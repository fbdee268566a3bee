//! Who is calling: the principal the gateway forwards, accepted only from a service peer.

use std::sync::Arc;

use creditmesh_domain::{Principal, PrincipalKind};
use tonic::{Request, Status};

use creditmesh_transport::connections::{Activity, once_per_connection};

pub use creditmesh_transport::headers::{
    CLIENT_ADDRESS_HEADER, CONSOLE_SERVICE, FORWARDED_FOR_HEADER, FORWARDER_HEADER,
    OFFICER_CERT_HEADER, PRINCIPAL_HEADER, REQUEST_ID_HEADER,
};

#[derive(Debug, Clone)]
pub struct CallContext {
    pub principal: Principal,
    /// The principal's SPIFFE ID, or `public`.
    pub principal_id: String,
    pub request_id: String,
    /// The address of a public caller as the gateway saw it; empty for everyone else.
    pub client_address: String,
    /// Set once this call's outcome is in the audit trail, so that the edge audits a refusal
    /// exactly once (`edge::run`).
    pub audited: Arc<std::sync::atomic::AtomicBool>,
}

/// Authenticates calls arriving at a backend.
#[derive(Clone)]
pub struct Authn {
    trust_domain: Arc<str>,
    /// The listener's TLS configuration, whose revocation list also applies to connections
    /// opened before a certificate was revoked.
    tls: Option<Arc<creditmesh_pki::ServerTls>>,
}

impl std::fmt::Debug for Authn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authn")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

/// What a backend learns once per connection from its peer's certificate.
struct Peer {
    principal: Principal,
    serial: Vec<u8>,
}

impl Authn {
    pub fn new(trust_domain: &str) -> Self {
        Self {
            trust_domain: trust_domain.into(),
            tls: None,
        }
    }

    /// Also refuses calls whose peer certificate the listener's revocation list names.
    pub fn with_revocations(mut self, tls: Arc<creditmesh_pki::ServerTls>) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The identity of the TLS peer itself, which must be a mesh service (the gateway or
    /// another service): agencies, regulators and departments reach backends only through the
    /// gateway.
    pub fn service_peer<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        self.peer_in(req.extensions())
    }

    /// [`Self::service_peer`] from a request's extensions.
    pub fn peer_in(&self, extensions: &http::Extensions) -> Result<Principal, Status> {
        // The certificate is read once per connection (`InFlightLayer` hands over the
        // connection's activity).
        let peer = once_per_connection(extensions.get::<Arc<Activity>>(), || {
            self.peer_of(extensions)
        })?;
        if let Some(tls) = &self.tls
            && tls.is_revoked(&peer.serial)
        {
            tracing::warn!(peer = %peer.principal, "call with a revoked certificate refused");
            return Err(Status::unauthenticated("client certificate revoked"));
        }
        Ok(peer.principal.clone())
    }

    fn peer_of(&self, extensions: &http::Extensions) -> Result<Peer, Status> {
        use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
        let certs = extensions
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|i| i.peer_certs())
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let principal = creditmesh_pki::principal_of(leaf, &self.trust_domain)
            .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
        if principal.kind != PrincipalKind::Service {
            return Err(Status::permission_denied(
                "backends accept calls only through the gateway",
            ));
        }
        let serial = creditmesh_pki::serial_of(leaf)
            .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
        Ok(Peer { principal, serial })
    }

    /// The forwarded caller of a business call.
    pub fn context<T>(&self, req: &Request<T>) -> Result<CallContext, Status> {
        self.service_peer(req)?;
        let md = req.metadata();
        let principal_id = md
            .get(PRINCIPAL_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Status::unauthenticated("no forwarded principal"))?
            .to_owned();
        let principal = if principal_id == "public" {
            Principal::public()
        } else {
            Principal::parse_spiffe(&principal_id, &self.trust_domain)
                .map_err(|e| Status::unauthenticated(format!("forwarded principal: {e}")))?
        };
        let request_id = md
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        Ok(CallContext {
            audited: Default::default(),
            client_address: md
                .get(CLIENT_ADDRESS_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= 64)
                .map(str::to_owned)
                .unwrap_or_default(),
            principal,
            principal_id,
            request_id,
        })
    }
}

impl CallContext {
    /// The service itself acting, as a durable job named `job` does: a region-wide service
    /// principal, the job's name as request id.
    pub fn system(service: &str, trust_domain: &str, job: &str) -> Self {
        let principal = Principal::new(
            PrincipalKind::Service,
            creditmesh_domain::tenant::REGION,
            service,
        );
        CallContext {
            audited: Default::default(),
            principal_id: principal.spiffe_id(trust_domain),
            principal,
            request_id: job.to_owned(),
            client_address: String::new(),
        }
    }

    /// Refuses the call unless the caller is of one of `kinds`.
    pub fn require(&self, kinds: &[PrincipalKind]) -> Result<(), Status> {
        if kinds.contains(&self.principal.kind) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "{} callers may not call this method",
                self.principal.kind.as_str()
            )))
        }
    }
}

/// A backend's check of its peer in front of every route — health and reflection as much as
/// the business calls, which check it again with the forwarded caller: a mesh service whose
/// certificate is not revoked, also on a connection opened before the revocation.
#[derive(Clone)]
pub struct PeerLayer {
    authn: Arc<Authn>,
}

impl PeerLayer {
    pub fn new(authn: Authn) -> Self {
        Self {
            authn: Arc::new(authn),
        }
    }
}

impl<S> tower::Layer<S> for PeerLayer {
    type Service = PeerCheck<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PeerCheck {
            inner,
            authn: self.authn.clone(),
        }
    }
}

#[derive(Clone)]
pub struct PeerCheck<S> {
    inner: S,
    authn: Arc<Authn>,
}

impl<S, B> tower::Service<http::Request<B>> for PeerCheck<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = futures::future::Either<
        S::Future,
        std::future::Ready<Result<http::Response<tonic::body::Body>, S::Error>>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match self.authn.peer_in(req.extensions()) {
            Ok(_) => futures::future::Either::Left(self.inner.call(req)),
            Err(status) => {
                futures::future::Either::Right(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}
