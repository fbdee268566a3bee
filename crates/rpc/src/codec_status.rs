//! One tower layer: honest codes for what the codec refuses before a method runs. A message
//! over the decoding limit is `RESOURCE_EXHAUSTED` (tonic says `OUT_OF_RANGE`); bytes that do
//! not decode (garbage, a truncated varint, a wrong wire type, invalid UTF-8 in a string) are
//! the caller's `INVALID_ARGUMENT` (tonic says `INTERNAL`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderValue;

#[derive(Clone, Copy, Default)]
pub struct CodecStatusLayer;

impl<S> tower::Layer<S> for CodecStatusLayer {
    type Service = CodecStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CodecStatus { inner }
    }
}

#[derive(Clone)]
pub struct CodecStatus<S> {
    inner: S,
}

/// Rewrites the status of a trailers-only answer in which the codec refused the request.
pub fn fix_status<R>(mut response: http::Response<R>) -> http::Response<R> {
    let headers = response.headers_mut();
    // tonic percent-encodes the message, spaces included.
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();
    let code = headers.get("grpc-status").and_then(|s| s.to_str().ok());
    let honest = match code {
        Some("11") if message.contains("message length too large") => Some("8"),
        Some("13") if message.starts_with("failed to decode Protobuf message") => Some("3"),
        _ => None,
    };
    if let Some(code) = honest {
        headers.insert("grpc-status", HeaderValue::from_static(code));
    }
    response
}

impl<S, B, R> tower::Service<http::Request<B>> for CodecStatus<S>
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
    fn only_what_the_codec_refused_is_rewritten() {
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
        assert_eq!(
            answer(
                "13",
                "failed%20to%20decode%20Protobuf%20message:%20invalid%20varint"
            ),
            "3"
        );
        assert_eq!(answer("13", "database%20unavailable"), "13");
        assert_eq!(answer("3", "message length too large"), "3");
    }
}
