//! Channels from one node to another over mutual TLS.

use std::time::Duration;

use creditmesh_pki::TlsFiles;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A lazily connecting channel to `url` (`https://host:port`), presenting this node's
/// certificate and trusting only the regional CA. `server_name` is the DNS name the peer's
/// certificate must carry.
pub fn mtls_channel(url: &str, tls: &TlsFiles, server_name: &str) -> anyhow::Result<Channel> {
    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(tls.read_ca_pem()?))
        .identity(Identity::from_pem(
            tls.read_cert_pem()?,
            tls.read_key_pem()?,
        ))
        .domain_name(server_name);
    Ok(Endpoint::from_shared(url.to_owned())?
        .tls_config(config)?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_lazy())
}
