//! Counts each call's database work to its caller's tenant, so that the backend's pool is
//! shared fairly between tenants (`creditmesh_storage::fair`).

use std::sync::Arc;

use creditmesh_storage::fair::with_lane;
pub use creditmesh_transport::headers::lane_of;
use tokio::task::futures::TaskLocalFuture;

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
