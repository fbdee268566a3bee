//! TLS listeners: the accept loop never waits on a handshake; each runs in its own task with
//! a timeout, and only finished handshakes reach the gRPC server. Every new connection uses
//! the configuration as it is on disk now.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use creditmesh_pki::ServerTls;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::connections::{Connections, Guarded};

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often certificate files are checked for rotation.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// An accepted connection, its handshake done, holding its place.
pub type Accepted = Guarded<TlsStream<TcpStream>>;
pub type TlsIncoming = ReceiverStream<Result<Accepted, std::io::Error>>;

/// Longest pause of the accept loop while the process is out of descriptors.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Binds `addr` (port 0 picks a free port) and returns the bound address with the stream of
/// accepted TLS connections, each holding its place in `connections` until it closes; a
/// connection that finds no place is closed before its handshake. The loop stops when `stop`
/// is cancelled.
pub async fn bind_tls(
    addr: SocketAddr,
    tls: Arc<ServerTls>,
    connections: Arc<Connections>,
    stop: CancellationToken,
) -> std::io::Result<(SocketAddr, TlsIncoming)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(128);
    spawn_reloader(tls.clone(), stop.clone());
    tokio::spawn(async move {
        let mut backoff = Duration::ZERO;
        let mut refused = RefusalLog::default();
        let mut failed = RefusalLog::default();
        loop {
            let (tcp, peer) = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors (or another transient failure): the connection
                        // waits in the backlog; pause longer each time instead of spinning.
                        backoff = (backoff * 2).clamp(Duration::from_millis(10), ACCEPT_BACKOFF_MAX);
                        if failed.due() {
                            tracing::warn!(error = %e, pause_ms = backoff.as_millis() as u64, failures = failed.take(), %local, "accept failed");
                        }
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                },
            };
            backoff = Duration::ZERO;
            let slot = match connections.admit(peer) {
                Ok(slot) => slot,
                Err(why) => {
                    if refused.due() {
                        tracing::warn!(%peer, %local, reason = ?why, refused = refused.take(), "connections refused at their limit");
                    }
                    drop(tcp);
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.current());
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(Guarded::new(tls, slot))).await;
                    }
                    Ok(Err(e)) => tracing::info!(%peer, error = %e, "tls handshake refused"),
                    Err(_) => tracing::info!(%peer, "tls handshake timed out"),
                }
            });
        }
    });
    Ok((local, ReceiverStream::new(rx)))
}

/// Refusals and failures are counted and logged at most once a second, so that a flood does not become a
/// flood of log lines.
#[derive(Default)]
struct RefusalLog {
    last: Option<std::time::Instant>,
    count: u64,
}

impl RefusalLog {
    fn due(&mut self) -> bool {
        self.count += 1;
        let now = std::time::Instant::now();
        let due = self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if due {
            self.last = Some(now);
        }
        due
    }

    fn take(&mut self) -> u64 {
        std::mem::take(&mut self.count)
    }
}

/// Rebuilds a reloading TLS configuration whenever its files change, until `stop`.
pub fn spawn_reloader<C: Send + Sync + 'static>(
    tls: Arc<creditmesh_pki::Reloading<C>>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RELOAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            match tls.reload_if_changed() {
                Ok(true) => {
                    tracing::info!(cert = %tls.files().cert.display(), "tls certificates reloaded")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "tls certificates changed but do not load; keeping the previous ones")
                }
            }
        }
    });
}
