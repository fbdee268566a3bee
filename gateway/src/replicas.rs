//! One backend's replicas as the gateway reaches them: every address its URLs resolve to
//! (followed as the names change), a few connections to each, each call on the less busy of
//! two replicas drawn at random (calls in flight), a replica that fails set aside until a
//! health check finds it serving again, and a call tried on another replica only when that
//! is safe: nothing of it was sent, or it may be replayed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use creditmesh_pki::ClientTls;
use creditmesh_transport::resolve::{Addresses, Targets};
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::upstream::{Failure, Upstream, UpstreamBody};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A call goes to at most this many replicas.
const MAX_ATTEMPTS: usize = 3;
/// How often set-aside replicas are looked at for a probe.
const PROBE_EVERY: Duration = Duration::from_millis(250);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a replica waits between probes.
const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// How the gateway's connections to one replica are used.
#[derive(Debug, Clone, Copy)]
pub struct PoolShape {
    pub connections: usize,
    pub calls_per_connection: usize,
}

/// What a backend's replicas are reached by.
pub struct ReplicasSpec<'a> {
    /// The gRPC service its replicas serve (their health is asked by this name).
    pub service: &'a str,
    pub urls: &'a [String],
    pub server_name: &'a str,
    pub tls: Arc<ClientTls>,
    pub shape: PoolShape,
}

/// Every replica of one backend; cheap to clone.
#[derive(Clone)]
pub struct Replicas {
    inner: Arc<Inner>,
}

struct Inner {
    service: String,
    authority: String,
    server_name: String,
    tls: Arc<ClientTls>,
    shape: PoolShape,
    endpoints: RwLock<Arc<[Arc<Endpoint>]>>,
}

impl Replicas {
    /// Resolves the backend's URLs and follows them until `stop`.
    pub async fn start(spec: ReplicasSpec<'_>, stop: CancellationToken) -> anyhow::Result<Self> {
        let targets = Targets::parse(spec.urls)?;
        rustls::pki_types::ServerName::try_from(spec.server_name.to_owned())?;
        let inner = Arc::new(Inner {
            service: spec.service.to_owned(),
            authority: targets.authority().to_owned(),
            server_name: spec.server_name.to_owned(),
            tls: spec.tls,
            shape: spec.shape,
            endpoints: RwLock::new(Arc::from([])),
        });
        let mut addresses = targets.watch(stop.clone()).await;
        inner.follow(&addresses.borrow_and_update())?;
        tokio::spawn(maintain(Arc::downgrade(&inner), addresses, stop));
        Ok(Self { inner })
    }

    /// Sends `req` to one replica; when nothing of it could be sent there, to another.
    pub async fn send<B>(&self, mut req: Request<B>) -> Result<Response<UpstreamBody>, BoxError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let mut tried = Tried::default();
        loop {
            let endpoint = self.inner.pick(&tried)?;
            match endpoint.send(req).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::Unsent(back, e)) => {
                    tried.failed(endpoint.addr, e)?;
                    req = *back;
                }
                Err(Failure::Sent(e)) => return Err(e),
            }
        }
    }

    /// Sends a call that may be replayed (it changes nothing, or changes it once by its
    /// request id): when its replica fails before answering, the call goes to another.
    pub async fn send_replayable(
        &self,
        head: &http::request::Parts,
        body: Bytes,
    ) -> Result<Response<UpstreamBody>, BoxError> {
        let mut tried = Tried::default();
        loop {
            let endpoint = self.inner.pick(&tried)?;
            match endpoint.send(rebuilt(head, &body)).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => tried.failed(endpoint.addr, failure.into_error())?,
            }
        }
    }
}

fn rebuilt(head: &http::request::Parts, body: &Bytes) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body.clone()));
    *req.method_mut() = head.method.clone();
    *req.uri_mut() = head.uri.clone();
    *req.version_mut() = head.version;
    *req.headers_mut() = head.headers.clone();
    req
}

/// The replicas a call has been tried on, and why the last failed.
#[derive(Default)]
struct Tried {
    addrs: Vec<SocketAddr>,
    last: Option<BoxError>,
}

impl Tried {
    /// Records a failure; an error when the call may go to no other replica.
    fn failed(&mut self, addr: SocketAddr, e: BoxError) -> Result<(), BoxError> {
        self.addrs.push(addr);
        if self.addrs.len() >= MAX_ATTEMPTS {
            return Err(e);
        }
        self.last = Some(e);
        Ok(())
    }
}

impl Inner {
    fn endpoints(&self) -> Arc<[Arc<Endpoint>]> {
        self.endpoints.read().expect("replicas lock").clone()
    }

    /// Takes the addresses now found: a replica still there keeps its connections and its
    /// standing.
    fn follow(&self, addrs: &[SocketAddr]) -> anyhow::Result<()> {
        let old = self.endpoints();
        let now = addrs
            .iter()
            .map(|addr| match old.iter().find(|e| e.addr == *addr) {
                Some(e) => Ok(e.clone()),
                None => Endpoint::new(*addr, self).map(Arc::new),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        *self.endpoints.write().expect("replicas lock") = Arc::from(now);
        Ok(())
    }

    /// The less busy of two replicas drawn from those not tried yet, serving ones first;
    /// when every one left is set aside, one of them (it may be back before its probe).
    fn pick(&self, tried: &Tried) -> Result<Arc<Endpoint>, BoxError> {
        let endpoints = self.endpoints();
        let untried = |e: &&Arc<Endpoint>| !tried.addrs.contains(&e.addr);
        let serving = |e: &&Arc<Endpoint>| !e.ejected.load(Ordering::Relaxed);
        let n = endpoints.iter().filter(untried).filter(serving).count();
        let chosen = if n > 0 {
            two_choices(endpoints.iter().filter(untried).filter(serving), n)
        } else {
            let n = endpoints.iter().filter(untried).count();
            two_choices(endpoints.iter().filter(untried), n)
        };
        chosen.cloned().ok_or_else(|| match &tried.last {
            Some(e) => e.to_string().into(),
            None => format!("no replica of {} found at {}", self.service, self.authority).into(),
        })
    }
}

/// Of `n` candidates, the one with fewer calls in flight of two drawn at random.
fn two_choices<'a>(
    mut candidates: impl Iterator<Item = &'a Arc<Endpoint>> + Clone,
    n: usize,
) -> Option<&'a Arc<Endpoint>> {
    match n {
        0 => None,
        1 => candidates.next(),
        _ => {
            let i = fastrand::usize(..n);
            let j = (i + 1 + fastrand::usize(..n - 1)) % n;
            let a = candidates.clone().nth(i)?;
            let b = candidates.nth(j)?;
            Some(if b.load() < a.load() { b } else { a })
        }
    }
}

/// One replica: its connections and whether it is set aside.
struct Endpoint {
    addr: SocketAddr,
    connections: Vec<Upstream>,
    calls_per_connection: usize,
    ejected: AtomicBool,
    standing: Mutex<Standing>,
}

struct Standing {
    /// Failures since the replica last served a call or a probe.
    failures: u32,
    probe_at: Instant,
    probing: bool,
}

impl Endpoint {
    fn new(addr: SocketAddr, replicas: &Inner) -> anyhow::Result<Self> {
        let connections = (0..replicas.shape.connections.max(1))
            .map(|_| {
                Upstream::new(
                    addr.to_string(),
                    &replicas.authority,
                    replicas.tls.clone(),
                    &replicas.server_name,
                )
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            addr,
            connections,
            calls_per_connection: replicas.shape.calls_per_connection.max(1),
            ejected: AtomicBool::new(false),
            standing: Mutex::new(Standing {
                failures: 0,
                probe_at: Instant::now(),
                probing: false,
            }),
        })
    }

    /// Calls in flight on all its connections.
    fn load(&self) -> usize {
        self.connections.iter().map(Upstream::in_flight).sum()
    }

    /// The first connection with room, else the least busy: calls share a connection (and
    /// its writes) until it has enough to do.
    fn connection(&self) -> &Upstream {
        let loads = self.connections.iter().map(Upstream::in_flight);
        &self.connections[fill_first(loads, self.calls_per_connection)]
    }

    async fn send<B>(&self, req: Request<B>) -> Result<Response<UpstreamBody>, Failure<B>>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let result = self.connection().send(req).await;
        match &result {
            Ok(_) => self.served(),
            Err(Failure::Unsent(_, e)) => self.failed(e),
            Err(Failure::Sent(e)) if connection_lost(e) => self.failed(e),
            Err(Failure::Sent(_)) => {}
        }
        result
    }

    fn served(&self) {
        if self.ejected.load(Ordering::Relaxed) {
            self.readmit();
        }
    }

    fn readmit(&self) {
        let mut standing = self.standing.lock().expect("standing lock");
        standing.failures = 0;
        if self.ejected.swap(false, Ordering::Relaxed) {
            tracing::info!(replica = %self.addr, "backend replica serving again");
        }
    }

    /// Sets the replica aside; a probe looks at it again after a pause that doubles with
    /// each failure in a row.
    fn failed(&self, e: &BoxError) {
        let mut standing = self.standing.lock().expect("standing lock");
        standing.failures = standing.failures.saturating_add(1);
        if !self.ejected.swap(true, Ordering::Relaxed) {
            standing.probe_at = Instant::now() + probe_interval(standing.failures);
            tracing::warn!(replica = %self.addr, error = %e, "backend replica set aside");
        }
    }
}

fn probe_interval(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(8);
    (Duration::from_millis(250) * (1 << exp)).min(MAX_PROBE_INTERVAL)
}

/// Whether the error ended the replica's connection (rather than one call on it).
fn connection_lost(e: &BoxError) -> bool {
    match e.downcast_ref::<h2::Error>() {
        Some(e) => e.is_io() || e.is_go_away(),
        None => true,
    }
}

/// The first of `loads` below `threshold`, else the smallest (the first of equals).
fn fill_first(loads: impl Iterator<Item = usize>, threshold: usize) -> usize {
    let mut least = (usize::MAX, 0);
    for (i, load) in loads.enumerate() {
        if load < threshold {
            return i;
        }
        if load < least.0 {
            least = (load, i);
        }
    }
    least.1
}

/// Follows the backend's addresses and probes set-aside replicas, until `stop` or until the
/// replicas are dropped.
async fn maintain(
    replicas: std::sync::Weak<Inner>,
    mut addresses: watch::Receiver<Addresses>,
    stop: CancellationToken,
) {
    let mut resolving = true;
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            changed = addresses.changed(), if resolving => {
                let Some(inner) = replicas.upgrade() else { break };
                match changed {
                    Ok(()) => {
                        if let Err(e) = inner.follow(&addresses.borrow_and_update()) {
                            tracing::warn!(backend = %inner.authority, error = %e, "replicas not updated");
                        }
                    }
                    // Addresses given literally are looked up once.
                    Err(_) => resolving = false,
                }
            }
            _ = tick.tick() => {
                let Some(inner) = replicas.upgrade() else { break };
                probe_due(&inner);
            }
        }
    }
}

/// Starts a health check of every set-aside replica whose pause is over.
fn probe_due(inner: &Inner) {
    let now = Instant::now();
    for endpoint in inner.endpoints().iter() {
        if !endpoint.ejected.load(Ordering::Relaxed) {
            continue;
        }
        {
            let mut standing = endpoint.standing.lock().expect("standing lock");
            if standing.probing || standing.probe_at > now {
                continue;
            }
            standing.probing = true;
        }
        let endpoint = endpoint.clone();
        let service = inner.service.clone();
        tokio::spawn(async move {
            let serving = probe(&endpoint, service).await;
            let mut standing = endpoint.standing.lock().expect("standing lock");
            standing.probing = false;
            if serving {
                drop(standing);
                endpoint.readmit();
            } else {
                standing.failures = standing.failures.saturating_add(1);
                standing.probe_at = Instant::now() + probe_interval(standing.failures);
            }
        });
    }
}

/// Whether the replica answers that it serves `service`.
async fn probe(endpoint: &Endpoint, service: String) -> bool {
    let mut client = HealthClient::new(endpoint.connections[0].clone());
    let check = client.check(HealthCheckRequest { service });
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(answer)) => answer.into_inner().status == ServingStatus::Serving as i32,
        Ok(Err(e)) => {
            tracing::debug!(replica = %endpoint.addr, error = %e, "probe failed");
            false
        }
        Err(_) => false,
    }
}

/// The replicas as a gRPC client transport, for the gateway's own calls (health, tiles).
impl tower::Service<Request<tonic::body::Body>> for Replicas {
    type Response = Response<UpstreamBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<UpstreamBody>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<tonic::body::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.send(req).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_fill_the_first_connection_before_the_next() {
        assert_eq!(fill_first([0, 0, 0].into_iter(), 128), 0);
        assert_eq!(fill_first([127, 0, 0].into_iter(), 128), 0);
        assert_eq!(fill_first([128, 0, 0].into_iter(), 128), 1);
        assert_eq!(fill_first([128, 200, 5].into_iter(), 128), 2);
    }

    #[test]
    fn when_every_connection_is_busy_the_least_busy_takes_the_call() {
        assert_eq!(fill_first([300, 140, 200].into_iter(), 128), 1);
        assert_eq!(fill_first([140, 140].into_iter(), 128), 0);
        assert_eq!(fill_first([5].into_iter(), 1), 0);
    }

    #[test]
    fn probes_back_off_to_a_ceiling() {
        assert_eq!(probe_interval(1), Duration::from_millis(250));
        assert_eq!(probe_interval(3), Duration::from_secs(1));
        assert_eq!(probe_interval(30), MAX_PROBE_INTERVAL);
    }

    #[test]
    fn a_reset_call_is_not_a_lost_connection() {
        let reset: BoxError = Box::new(h2::Error::from(h2::Reason::CANCEL));
        assert!(!connection_lost(&reset));
        let timeout: BoxError = "connecting timed out".into();
        assert!(connection_lost(&timeout));
    }
}
