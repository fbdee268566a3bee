//! Connections as a budget: every accepted connection holds a place until it closes. Places
//! are capped per client address and in total, and a listener may be kept off the last places
//! so that another (the node listener) always finds room. A connection that has not started a
//! call soon after it opened, or has had no call in flight for a while, is closed; a long
//! stream keeps its connection open (HTTP/2 keepalive pings find a dead peer).

use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};

/// Descriptors kept back from connections for databases, backends, files and logs: a quarter
/// of the limit, at least this many.
pub const RESERVED_DESCRIPTORS: u64 = 128;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Open connections of the process across its listeners; also bounded by the descriptor
    /// limit less what the process keeps for itself.
    pub max_connections: u32,
    /// Open connections from one client address on one listener.
    pub max_per_address: u32,
    /// Seconds a new connection has to start its first call (TLS handshake included).
    pub first_call_seconds: u64,
    /// Seconds a connection may stay open with no call in flight.
    pub idle_seconds: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_per_address: 64,
            first_call_seconds: 10,
            idle_seconds: 300,
        }
    }
}

/// Raises the soft descriptor limit to the hard one and returns it (`None` where it cannot
/// be read).
pub fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (limit.current, limit.maximum)
        && cur < max
    {
        limit.current = Some(max);
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit.current = Some(cur);
        }
    }
    limit.current
}

/// The places of one process, shared by its listeners.
pub struct Budget {
    total: usize,
    open: AtomicUsize,
}

impl Budget {
    /// `max_connections`, lowered to what the descriptor limit leaves after the reserve.
    pub fn new(max_connections: u32) -> Arc<Self> {
        let by_descriptors = raise_descriptor_limit()
            .map(|n| n.saturating_sub(RESERVED_DESCRIPTORS.max(n / 4)) as usize)
            .unwrap_or(usize::MAX);
        let total = (max_connections as usize).min(by_descriptors).max(1);
        Arc::new(Self {
            total,
            open: AtomicUsize::new(0),
        })
    }

    pub fn total(&self) -> usize {
        self.total
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn take(&self, keep_free: usize) -> bool {
        let limit = self.total.saturating_sub(keep_free);
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    fn give_back(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a connection was refused before its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Address,
    Total,
}

/// One listener's share of a [`Budget`] and its open connections.
pub struct Connections {
    budget: Arc<Budget>,
    keep_free: usize,
    max_per_address: u32,
    per_address: Mutex<HashMap<IpAddr, u32>>,
    open: RwLock<HashMap<SocketAddr, Arc<Activity>>>,
    first_call: Duration,
    idle: Duration,
    /// Calls begun on this listener since it started.
    calls: AtomicU64,
}

impl Connections {
    /// `keep_free` places of the budget are never taken by this listener.
    pub fn new(budget: Arc<Budget>, limits: &ConnectionLimits, keep_free: usize) -> Arc<Self> {
        Arc::new(Self {
            budget,
            keep_free,
            max_per_address: limits.max_per_address.max(1),
            per_address: Mutex::default(),
            open: RwLock::default(),
            first_call: Duration::from_secs(limits.first_call_seconds.max(1)),
            idle: Duration::from_secs(limits.idle_seconds.max(1)),
            calls: AtomicU64::new(0),
        })
    }

    /// Counts one call begun on this listener.
    pub fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls begun on this listener since it started.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// A place for a connection from `peer`, held until the [`Slot`] is dropped.
    pub fn admit(self: &Arc<Self>, peer: SocketAddr) -> Result<Slot, Refusal> {
        {
            let mut per = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
            let n = per.entry(peer.ip()).or_insert(0);
            if *n >= self.max_per_address {
                return Err(Refusal::Address);
            }
            if !self.budget.take(self.keep_free) {
                if *n == 0 {
                    per.remove(&peer.ip());
                }
                return Err(Refusal::Total);
            }
            *n += 1;
        }
        let activity = Arc::new(Activity::new());
        self.open
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, activity.clone());
        Ok(Slot {
            connections: self.clone(),
            peer,
            activity,
        })
    }

    /// The activity of the open connection from `peer`.
    pub fn activity(&self, peer: SocketAddr) -> Option<Arc<Activity>> {
        self.open
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&peer)
            .cloned()
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        self.open.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// A connection's place; dropping it gives the place back.
pub struct Slot {
    connections: Arc<Connections>,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let c = &self.connections;
        {
            // Only this connection's entry: a new one from the same address and port may
            // have taken the key already.
            let mut open = c.open.write().unwrap_or_else(|p| p.into_inner());
            if open
                .get(&self.peer)
                .is_some_and(|a| Arc::ptr_eq(a, &self.activity))
            {
                open.remove(&self.peer);
            }
        }
        let mut per = c.per_address.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per.get_mut(&self.peer.ip()) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.peer.ip());
            }
        }
        c.budget.give_back();
    }
}

/// What a connection is doing: calls in flight, when the last one ended, and what the server
/// derived once about its caller (see [`once_per_connection`]).
pub struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    called: AtomicBool,
    /// Milliseconds after `opened` at which the last call ended.
    last_end_ms: AtomicU64,
    caller: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            called: AtomicBool::new(false),
            last_end_ms: AtomicU64::new(0),
            caller: OnceLock::new(),
        }
    }

    /// Counts a call in flight until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> CallInFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.called.store(true, Ordering::Release);
        CallInFlight(self.clone())
    }

    /// When the connection is to be closed if nothing happens until then; `None` while a
    /// call is in flight.
    fn deadline(&self, first_call: Duration, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if !self.called.load(Ordering::Acquire) {
            return Some(self.opened + first_call);
        }
        let last = Duration::from_millis(self.last_end_ms.load(Ordering::Acquire));
        Some(self.opened + last + idle)
    }
}

/// A call in flight on a connection.
pub struct CallInFlight(Arc<Activity>);

impl Drop for CallInFlight {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = a.opened.elapsed().as_millis() as u64;
        a.last_end_ms.fetch_max(ms, Ordering::AcqRel);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection holding its place, closed when its deadline passes with no call in flight.
pub struct Guarded<IO> {
    inner: IO,
    slot: Slot,
    timer: Pin<Box<Sleep>>,
}

impl<IO> Guarded<IO> {
    pub fn new(inner: IO, slot: Slot) -> Self {
        let c = &slot.connections;
        let deadline = slot
            .activity
            .deadline(c.first_call, c.idle)
            .unwrap_or_else(|| Instant::now() + c.idle);
        Self {
            inner,
            timer: Box::pin(tokio::time::sleep_until(deadline.into())),
            slot,
        }
    }

    /// `Err` once the connection has outstayed its deadline; otherwise arms the timer.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while self.timer.as_mut().poll(cx).is_ready() {
            let c = &self.slot.connections;
            match self.slot.activity.deadline(c.first_call, c.idle) {
                Some(at) if at <= Instant::now() => {
                    let called = self.slot.activity.called.load(Ordering::Acquire);
                    tracing::debug!(peer = %self.slot.peer, called, "closing an idle connection");
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle past its limit",
                    ));
                }
                Some(at) => self.timer.as_mut().reset(at.into()),
                None => self.timer.as_mut().reset((Instant::now() + c.idle).into()),
            }
        }
        Ok(())
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Err(e) = self.check_deadline(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<IO: Connected> Connected for Guarded<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// What `derive` says about the caller of the connection `activity` tracks (the principal its
/// certificate names, say), derived on its first call and remembered for the others; derived
/// on every call where the connection is not tracked. A failure is not remembered.
pub fn once_per_connection<T, E>(
    activity: Option<&Arc<Activity>>,
    derive: impl FnOnce() -> Result<T, E>,
) -> Result<Arc<T>, E>
where
    T: Any + Send + Sync,
{
    if let Some(known) = activity
        .and_then(|a| a.caller.get())
        .and_then(|c| c.clone().downcast::<T>().ok())
    {
        return Ok(known);
    }
    let fresh = Arc::new(derive()?);
    if let Some(a) = activity {
        let _ = a.caller.set(fresh.clone());
    }
    Ok(fresh)
}

/// The activity of the connection a request arrived on.
pub fn activity_of<B>(connections: &Connections, req: &http::Request<B>) -> Option<Arc<Activity>> {
    let peer = req
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|i| i.get_ref().remote_addr())?;
    connections.activity(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_per_address_and_keeps_the_reserve_free() {
        let budget = Arc::new(Budget {
            total: 4,
            open: AtomicUsize::new(0),
        });
        let limits = ConnectionLimits {
            max_per_address: 2,
            ..ConnectionLimits::default()
        };
        let public = Connections::new(budget.clone(), &limits, 1);
        let node = Connections::new(budget.clone(), &limits, 0);
        let a1 = public.admit(addr("10.0.0.1:1")).unwrap();
        let _a2 = public.admit(addr("10.0.0.1:2")).unwrap();
        assert_eq!(
            public.admit(addr("10.0.0.1:3")).err(),
            Some(Refusal::Address)
        );
        let _b1 = public.admit(addr("10.0.0.2:1")).unwrap();
        // Three of four places are open; the last is kept for the node listener.
        assert_eq!(public.admit(addr("10.0.0.3:1")).err(), Some(Refusal::Total));
        let n1 = node.admit(addr("10.0.0.3:1")).unwrap();
        assert_eq!(node.admit(addr("10.0.0.4:1")).err(), Some(Refusal::Total));
        drop(a1);
        drop(n1);
        assert_eq!(budget.open(), 2);
        assert!(public.admit(addr("10.0.0.1:4")).is_ok());
        assert!(public.activity(addr("10.0.0.1:1")).is_none());
        assert_eq!(public.count(), 2);
    }

    #[test]
    fn the_caller_is_derived_once_per_connection() {
        let a = Arc::new(Activity::new());
        let mut derived = 0;
        for _ in 0..3 {
            let got = once_per_connection(Some(&a), || {
                derived += 1;
                Ok::<_, ()>(7u32)
            });
            assert_eq!(*got.unwrap(), 7);
        }
        assert_eq!(derived, 1);
        assert!(once_per_connection(None, || Err::<u32, _>("refused")).is_err());
    }

    #[test]
    fn a_call_in_flight_holds_off_the_deadline() {
        let a = Arc::new(Activity::new());
        let first = Duration::from_secs(10);
        let idle = Duration::from_secs(300);
        assert_eq!(a.deadline(first, idle), Some(a.opened + first));
        let call = a.begin();
        assert_eq!(a.deadline(first, idle), None);
        drop(call);
        let at = a.deadline(first, idle).unwrap();
        assert!(at >= a.opened + idle);
    }
}
