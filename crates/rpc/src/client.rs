//! Channels from one node to another over mutual TLS, with the client certificate as it is on
//! disk at each new connection.

use std::sync::Arc;
use std::time::Duration;

use creditmesh_pki::ClientTls;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

/// A lazily connecting channel to `url` (`https://host:port`). `server_name` is the DNS name
/// the peer's certificate must carry.
pub fn mtls_channel(url: &str, tls: Arc<ClientTls>, server_name: &str) -> anyhow::Result<Channel> {
    let uri: Uri = url.parse()?;
    let authority = uri
        .authority()
        .ok_or_else(|| anyhow::anyhow!("{url}: no host and port"))?
        .to_string();
    let name = ServerName::try_from(server_name.to_owned())?;
    // TLS is done by the connector below, so the endpoint itself speaks plain HTTP/2.
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    let connector = tower::service_fn(move |_: Uri| {
        let tls = tls.clone();
        let name = name.clone();
        let authority = authority.clone();
        async move {
            let tcp = TcpStream::connect(&authority).await?;
            tcp.set_nodelay(true)?;
            let stream = TlsConnector::from(tls.current()).connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connector))
}
