//! The console's HTTPS listener: every connection is a finished TLS handshake in which the
//! client presented a certificate of the CA (the same check as the node listener's). The
//! accept loop never waits on a handshake; each runs in its own task with a timeout.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use creditmesh_pki::ServerTls;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use creditmesh_transport::listener::{HANDSHAKE_TIMEOUT, spawn_reloader};

/// Connections whose handshake is done.
pub struct Incoming {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

pub async fn bind(
    addr: SocketAddr,
    tls: Arc<ServerTls>,
    stop: CancellationToken,
) -> std::io::Result<Incoming> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(64);
    spawn_reloader(tls.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "console: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let acceptor = TlsAcceptor::from(tls.current());
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send((tls, peer)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::info!(%peer, error = %e, "console: tls handshake refused")
                    }
                    Err(_) => tracing::info!(%peer, "console: tls handshake timed out"),
                }
            });
        }
    });
    Ok(Incoming { rx, local })
}

impl axum::serve::Listener for Incoming {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(accepted) => accepted,
            // The accept loop stopped: so does the server, by its shutdown signal.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// What a connection says of its client: the certificate presented in the handshake.
#[derive(Clone)]
pub struct Presented {
    pub cert: Option<Arc<Vec<u8>>>,
}

impl Connected<IncomingStream<'_, Incoming>> for Presented {
    fn connect_info(stream: IncomingStream<'_, Incoming>) -> Self {
        let (_, conn) = stream.io().get_ref();
        Self {
            cert: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| Arc::new(c.to_vec())),
        }
    }
}
