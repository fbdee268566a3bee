//! Where a backend's replicas are: every address that the hosts of its URLs resolve to, looked
//! up again every few seconds. One name with an address per ready replica (a headless
//! Service's DNS) and a static list of URLs (one per replica) both name the replicas.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http::Uri;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the names are looked up again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(5);
/// A lookup that takes longer than this counts as failed; the last answer stays.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// The replicas' addresses as they are now, sorted.
pub type Addresses = Arc<[SocketAddr]>;

/// A backend's URLs: `https://host:port` each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// `host:port` of each URL, in the order given.
    authorities: Vec<String>,
}

impl Targets {
    /// Checks that each URL has a host and a port.
    pub fn parse(urls: &[String]) -> anyhow::Result<Self> {
        anyhow::ensure!(!urls.is_empty(), "no url");
        let authorities = urls
            .iter()
            .map(|url| {
                let uri: Uri = url.parse().with_context(|| format!("{url}: not a url"))?;
                let authority = uri
                    .authority()
                    .with_context(|| format!("{url}: no host and port"))?;
                anyhow::ensure!(authority.port().is_some(), "{url}: no port");
                Ok(authority.to_string())
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { authorities })
    }

    /// The first URL's `host:port`: the authority calls to any replica carry.
    pub fn authority(&self) -> &str {
        &self.authorities[0]
    }

    /// Whether every URL names an address rather than a host, so that one lookup is enough.
    fn literal(&self) -> bool {
        self.authorities
            .iter()
            .all(|a| a.parse::<SocketAddr>().is_ok())
    }

    /// Every address of every URL, sorted and without repeats. A name that does not resolve
    /// now is left out; an error only when none resolves.
    pub async fn resolve(&self) -> anyhow::Result<Vec<SocketAddr>> {
        let mut found = BTreeSet::new();
        let mut failed = Vec::new();
        for authority in &self.authorities {
            let lookup =
                tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host(authority.as_str()));
            match lookup.await {
                Ok(Ok(addrs)) => found.extend(addrs),
                Ok(Err(e)) => failed.push(format!("{authority}: {e}")),
                Err(_) => failed.push(format!("{authority}: lookup timed out")),
            }
        }
        if found.is_empty() {
            anyhow::bail!("no address found: {}", failed.join("; "));
        }
        if !failed.is_empty() {
            tracing::warn!(failed = %failed.join("; "), "some backend names did not resolve");
        }
        Ok(found.into_iter().collect())
    }

    /// The addresses now, then kept current every [`RESOLVE_EVERY`] until `stop`. A lookup
    /// that fails keeps the last answer; at start, an empty one until a lookup succeeds.
    pub async fn watch(self, stop: CancellationToken) -> watch::Receiver<Addresses> {
        let first = self.resolve().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "backend not resolved yet");
            Vec::new()
        });
        let (tx, rx) = watch::channel(Addresses::from(first));
        if !self.literal() {
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tx.closed() => break,
                        () = tokio::time::sleep(RESOLVE_EVERY) => {}
                    }
                    match self.resolve().await {
                        Ok(now) => {
                            tx.send_if_modified(|addrs| {
                                let changed = addrs[..] != now[..];
                                if changed {
                                    tracing::info!(backend = %self.authority(), addresses = ?now, "backend replicas changed");
                                    *addrs = Addresses::from(now);
                                }
                                changed
                            });
                        }
                        Err(e) => {
                            tracing::warn!(backend = %self.authority(), error = %e, "backend lookup failed; keeping the last addresses");
                        }
                    }
                }
            });
        }
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_needs_a_host_and_a_port() {
        assert!(Targets::parse(&[]).is_err());
        assert!(Targets::parse(&["https://filing".into()]).is_err());
        assert!(Targets::parse(&["not a url at all".into()]).is_err());
        let t = Targets::parse(&["https://filing:7001".into(), "https://10.0.0.2:7001".into()])
            .unwrap();
        assert_eq!(t.authority(), "filing:7001");
        assert!(!t.literal());
    }

    #[tokio::test]
    async fn every_address_of_every_url_sorted_once() {
        let t = Targets::parse(&[
            "https://127.0.0.3:7001".into(),
            "https://127.0.0.2:7001".into(),
            "https://127.0.0.3:7001".into(),
        ])
        .unwrap();
        assert!(t.literal());
        let addrs = t.resolve().await.unwrap();
        assert_eq!(
            addrs,
            vec![
                "127.0.0.2:7001".parse().unwrap(),
                "127.0.0.3:7001".parse().unwrap()
            ]
        );
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_left_out_unless_none_does() {
        let bad = "https://no-such-host.invalid:7001".to_owned();
        let t = Targets::parse(&[bad.clone(), "https://127.0.0.1:7001".into()]).unwrap();
        assert_eq!(t.resolve().await.unwrap().len(), 1);
        let err = Targets::parse(&[bad]).unwrap().resolve().await.unwrap_err();
        assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    }
}
