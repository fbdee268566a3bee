//! Who the visitor is: the TCP peer, or — when the peer is one of the reverse proxies the
//! operator trusts — the nearest address in `X-Forwarded-For` that is not one of them.

use std::net::IpAddr;

use anyhow::{Context, Result};
use http::HeaderMap;
use ipnet::IpNet;

/// The reverse proxies whose `X-Forwarded-For` is believed (`web.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Each entry an address (`10.0.0.5`, `::1`) or a network (`10.0.0.0/8`).
    pub fn parse(entries: &[String]) -> Result<Self> {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let e = e.trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .with_context(|| {
                        format!("web.trusted_proxies[{i}]: {e:?} is not an address or a network")
                    })
            })
            .collect::<Result<Vec<_>>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The visitor behind `peer`. Each trusted proxy appends the address it received the
    /// request from, so the list is read from its end: the first address that is not a trusted
    /// proxy is the visitor. What a visitor wrote themselves sits before it and is not read;
    /// an entry that is not an address ends the reading at the last proxy.
    pub fn visitor(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','));
        let mut visitor = peer;
        for hop in hops.rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    visitor = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        visitor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_visitor_whatever_it_says() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.visitor(ip("203.0.113.9"), &forwarded(&["198.51.100.1"])),
            ip("203.0.113.9")
        );
        assert_eq!(
            TrustedProxies::default().visitor(ip("127.0.0.1"), &forwarded(&["198.51.100.1"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_visitor() {
        let p = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The visitor wrote a first entry of their own; the proxies appended theirs.
        let h = forwarded(&["192.0.2.66, 198.51.100.7", "10.1.2.3"]);
        assert_eq!(p.visitor(ip("127.0.0.1"), &h), ip("198.51.100.7"));
        assert_eq!(
            p.visitor(ip("10.9.9.9"), &forwarded(&["2001:db8::5"])),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn without_a_usable_header_the_last_proxy_is_the_visitor() {
        let p = proxies(&["127.0.0.1"]);
        assert_eq!(
            p.visitor(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        assert_eq!(
            p.visitor(
                ip("127.0.0.1"),
                &forwarded(&["198.51.100.7, not-an-address"])
            ),
            ip("127.0.0.1")
        );
        // Every hop a proxy: the farthest one named.
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.visitor(ip("10.0.0.1"), &forwarded(&["10.0.0.3, 10.0.0.2"])),
            ip("10.0.0.3")
        );
    }

    #[test]
    fn an_entry_that_is_neither_address_nor_network_is_named() {
        let err = TrustedProxies::parse(&["10.0.0.1".into(), "proxy.local".into()]).unwrap_err();
        assert!(err.to_string().contains("web.trusted_proxies[1]"), "{err}");
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
    }
}
