//! The headers by which the gateway, its forwarders and the console speak to the services,
//! and the lane (tenant) a call's database work is counted to.

use std::sync::Arc;

use creditmesh_domain::Principal;

/// Metadata carrying the caller's SPIFFE ID (or `public`), set by the gateway alone.
pub const PRINCIPAL_HEADER: &str = "x-creditmesh-principal";
/// Metadata carrying a public caller's address, set by the gateway alone (for per-address
/// limits a backend keeps, such as pending uploads).
pub const CLIENT_ADDRESS_HEADER: &str = "x-creditmesh-client-address";
/// Metadata by which a trusted forwarder (the website) names the visitor a public call is
/// made for; the gateway believes it only with [`FORWARDER_HEADER`] and drops both.
pub const FORWARDED_FOR_HEADER: &str = "x-creditmesh-forwarded-for";
/// Metadata carrying the forwarder token (`PKI_DIR/forwarder.token`).
pub const FORWARDER_HEADER: &str = "x-creditmesh-forwarder";
/// Metadata by which the console names the officer it calls for: the certificate (DER, in
/// standard base64) the officer signed in with. The gateway believes it only from
/// [`CONSOLE_SERVICE`], checks it as its node listener checks a client's, and drops it.
pub const OFFICER_CERT_HEADER: &str = "x-creditmesh-officer-cert";
/// The service name (`spiffe://…/service/<region>/console`) of the regulators' console.
pub const CONSOLE_SERVICE: &str = "console";
/// Metadata carrying the request id, echoed in logs and the audit trail.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The lane of the public (one for all anonymous callers, whom the gateway limits per
/// address) and of calls whose forwarded principal does not parse (refused further in).
const PUBLIC: &str = "public";
const UNKNOWN: &str = "unknown";

/// The tenant whose share of the pool a call with these headers draws on.
pub fn lane_of(headers: &http::HeaderMap, trust_domain: &str) -> Arc<str> {
    let Some(id) = headers.get(PRINCIPAL_HEADER).and_then(|v| v.to_str().ok()) else {
        return Arc::from(UNKNOWN);
    };
    if id == PUBLIC {
        return Arc::from(PUBLIC);
    }
    match Principal::parse_spiffe(id, trust_domain) {
        Ok(p) => Arc::from(p.tenant.to_string()),
        Err(_) => Arc::from(UNKNOWN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lane_is_the_forwarded_callers_tenant() {
        let mut h = http::HeaderMap::new();
        assert_eq!(&*lane_of(&h, "creditmesh.xinjiang"), UNKNOWN);
        h.insert(PRINCIPAL_HEADER, "public".parse().unwrap());
        assert_eq!(&*lane_of(&h, "creditmesh.xinjiang"), PUBLIC);
        h.insert(
            PRINCIPAL_HEADER,
            "spiffe://creditmesh.xinjiang/regulator/653100"
                .parse()
                .unwrap(),
        );
        assert_eq!(&*lane_of(&h, "creditmesh.xinjiang"), "653100");
        h.insert(
            PRINCIPAL_HEADER,
            "spiffe://other/regulator/653100".parse().unwrap(),
        );
        assert_eq!(&*lane_of(&h, "creditmesh.xinjiang"), UNKNOWN);
    }
}
