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

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often certificate files are checked for rotation.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

pub type TlsIncoming = ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>>;

/// Binds `addr` (port 0 picks a free port) and returns the bound address with the stream of
/// accepted TLS connections. The loop stops when `stop` is cancelled.
pub async fn bind_tls(
    addr: SocketAddr,
    tls: Arc<ServerTls>,
    stop: CancellationToken,
) -> std::io::Result<(SocketAddr, TlsIncoming)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(128);
    spawn_reloader(tls.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.current());
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::info!(%peer, error = %e, "tls handshake refused"),
                    Err(_) => tracing::info!(%peer, "tls handshake timed out"),
                }
            });
        }
    });
    Ok((local, ReceiverStream::new(rx)))
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
