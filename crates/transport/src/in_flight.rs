//! One tower layer: each call counts as in flight on its connection until its response body
//! ends, so that an idle connection can be told from one carrying a long stream. The layer
//! also puts the connection's [`Activity`] into the request for layers after it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::connections::{Activity, Connections, activity_of};

#[derive(Clone)]
pub struct InFlightLayer {
    connections: Arc<Connections>,
}

impl InFlightLayer {
    pub fn new(connections: Arc<Connections>) -> Self {
        Self { connections }
    }
}

impl<S> tower::Layer<S> for InFlightLayer {
    type Service = InFlight<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InFlight {
            inner,
            connections: self.connections.clone(),
        }
    }
}

#[derive(Clone)]
pub struct InFlight<S> {
    inner: S,
    connections: Arc<Connections>,
}

impl<S, B> tower::Service<http::Request<B>> for InFlight<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        self.connections.count_call();
        let activity = activity_of(&self.connections, &req);
        let guard = activity.as_ref().map(Activity::begin);
        if let Some(a) = activity {
            req.extensions_mut().insert(a);
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map(|r| hold_until_end(r, guard)) })
    }
}

/// The response with `guard` kept alive until its body has been sent or dropped.
pub fn hold_until_end<G: Send + 'static>(
    response: http::Response<tonic::body::Body>,
    guard: G,
) -> http::Response<tonic::body::Body> {
    response.map(|inner| {
        tonic::body::Body::new(Holding {
            inner,
            _guard: guard,
        })
    })
}

struct Holding<G> {
    inner: tonic::body::Body,
    _guard: G,
}

impl<G> Unpin for Holding<G> {}

impl<G> Body for Holding<G> {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
