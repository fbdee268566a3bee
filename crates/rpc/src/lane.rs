//! Counts each call's database work to its caller's tenant, so that the backend's pool is
//! shared fairly between tenants (`creditmesh_storage::fair`).

use std::sync::Arc;

use creditmesh_domain::Principal;
use creditmesh_storage::fair::with_lane;
use tokio::task::futures::TaskLocalFuture;

use crate::context::PRINCIPAL_HEADER;

/// The lane of the public (one for all anonymous callers, whom the gateway limits per
/// address) and of calls whose forwarded principal does not parse (refused further in).
const PUBLIC: &str = "public";
const UNKNOWN: &str = "unknown";

/// Sets the call's lane from the forwarded principal; behind the peer check, so that only
/// what a mesh service forwarded is read.
#[derive(Clone)]
pub struct LaneLayer {
    trust_domain: Arc<str>,
}

impl LaneLayer {
    pub fn new(trust_domain: &str) -> Self {
        Self {
            trust_domain: trust_domain.into(),
        }
    }
}

impl<S> tower::Layer<S> for LaneLayer {
    type Service = Lane<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Lane {
            inner,
            trust_domain: self.trust_domain.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Lane<S> {
    inner: S,
    trust_domain: Arc<str>,
}

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

impl<S, B> tower::Service<http::Request<B>> for Lane<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TaskLocalFuture<Arc<str>, S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let lane = lane_of(req.headers(), &self.trust_domain);
        with_lane(lane, self.inner.call(req))
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
