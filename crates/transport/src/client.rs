//! Channels from one node to another over mutual TLS, with the client certificate as it is on
//! disk at each new connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use creditmesh_pki::ClientTls;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::resolve::Targets;

/// A lazily connecting channel to `url` (`https://host:port`). `server_name` is the DNS name
/// the peer's certificate must carry.
pub fn mtls_channel(url: &str, tls: Arc<ClientTls>, server_name: &str) -> anyhow::Result<Channel> {
    let uri: Uri = url.parse()?;
    let authority = uri
        .authority()
        .ok_or_else(|| anyhow::anyhow!("{url}: no host and port"))?
        .to_string();
    channel_to(authority.clone(), &authority, tls, server_name)
}

/// A lazily connecting channel to one replica at `addr` (`host:port` or an address), whose
/// calls carry `authority`.
fn channel_to(
    addr: String,
    authority: &str,
    tls: Arc<ClientTls>,
    server_name: &str,
) -> anyhow::Result<Channel> {
    let name = ServerName::try_from(server_name.to_owned())?;
    // TLS is done by the connector below, so the endpoint itself speaks plain HTTP/2.
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    let connector = tower::service_fn(move |_: Uri| {
        let tls = tls.clone();
        let name = name.clone();
        let addr = addr.clone();
        async move {
            let tcp = TcpStream::connect(&addr).await?;
            tcp.set_nodelay(true)?;
            let stream = TlsConnector::from(tls.current()).connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// Channels to every replica of a node, each call on the next (round robin); the replicas
/// follow the node's names as they are looked up again.
#[derive(Clone)]
pub struct Spread {
    channels: watch::Receiver<Arc<[Channel]>>,
    next: Arc<AtomicUsize>,
}

impl From<Channel> for Spread {
    fn from(channel: Channel) -> Self {
        let (_, channels) = watch::channel(Arc::from([channel]));
        Self {
            channels,
            next: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Spread {
    /// Channels to every address `urls` resolve to, kept current until `stop`.
    pub async fn resolve(
        urls: &[String],
        tls: Arc<ClientTls>,
        server_name: &str,
        stop: CancellationToken,
    ) -> anyhow::Result<Self> {
        let targets = Targets::parse(urls)?;
        let authority = targets.authority().to_owned();
        let server_name = server_name.to_owned();
        // Checked here, so that a channel for any address can be made below.
        ServerName::try_from(server_name.clone())?;
        let mut addresses = targets.watch(stop).await;
        let open = move |addrs: &[SocketAddr], old: &HashMap<SocketAddr, Channel>| {
            addrs
                .iter()
                .map(|addr| match old.get(addr) {
                    Some(ch) => (*addr, ch.clone()),
                    None => {
                        let ch =
                            channel_to(addr.to_string(), &authority, tls.clone(), &server_name)
                                .expect("server name checked");
                        (*addr, ch)
                    }
                })
                .collect::<HashMap<_, _>>()
        };
        let mut by_addr = open(&addresses.borrow_and_update(), &HashMap::new());
        let ordered = |m: &HashMap<SocketAddr, Channel>| -> Arc<[Channel]> {
            let mut v: Vec<_> = m.iter().collect();
            v.sort_by_key(|(a, _)| **a);
            v.into_iter().map(|(_, c)| c.clone()).collect()
        };
        let (tx, channels) = watch::channel(ordered(&by_addr));
        tokio::spawn(async move {
            while addresses.changed().await.is_ok() {
                by_addr = open(&addresses.borrow_and_update(), &by_addr);
                if tx.send(ordered(&by_addr)).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            channels,
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// How many replicas there are now.
    pub fn len(&self) -> usize {
        self.channels.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The channel to the next replica, or none while none is known.
    pub fn next(&self) -> Option<Channel> {
        let channels = self.channels.borrow();
        if channels.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % channels.len();
        Some(channels[i].clone())
    }
}
