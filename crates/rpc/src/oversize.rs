//! One tower layer: a message over the decoding limit is `RESOURCE_EXHAUSTED`, as the mesh's
//! contract says, where tonic's codec answers `OUT_OF_RANGE`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderValue;

#[derive(Clone, Copy, Default)]
pub struct OversizeLayer;

impl<S> tower::Layer<S> for OversizeLayer {
    type Service = Oversize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Oversize { inner }
    }
}

#[derive(Clone)]
pub struct Oversize<S> {
    inner: S,
}

/// Rewrites the status of a trailers-only answer that refused an oversized message.
pub fn fix_status<R>(mut response: http::Response<R>) -> http::Response<R> {
    let headers = response.headers_mut();
    let oversized = headers.get("grpc-status").is_some_and(|s| s == "11")
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            // tonic percent-encodes the message, spaces included.
            .is_some_and(|m| m.replace("%20", " ").contains("message length too large"));
    if oversized {
        headers.insert("grpc-status", HeaderValue::from_static("8"));
    }
    response
}

impl<S, B, R> tower::Service<http::Request<B>> for Oversize<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map(fix_status) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_decoding_limit_is_rewritten() {
        let answer = |status: &'static str, message: &'static str| {
            let r = http::Response::builder()
                .header("grpc-status", status)
                .header("grpc-message", message)
                .body(())
                .unwrap();
            fix_status(r).headers()["grpc-status"].clone()
        };
        assert_eq!(
            answer(
                "11",
                "Error,%20decoded%20message%20length%20too%20large:%20found%205000000%20bytes"
            ),
            "8"
        );
        assert_eq!(answer("11", "year%20out%20of%20range"), "11");
        assert_eq!(answer("3", "message length too large"), "3");
    }
}
