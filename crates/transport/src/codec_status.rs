//! One tower layer: honest codes for what the codec refuses before a method runs. A message
//! over the decoding limit is `RESOURCE_EXHAUSTED` (tonic says `OUT_OF_RANGE`); bytes that do
//! not decode (garbage, a truncated varint, a wrong wire type, invalid UTF-8 in a string) are
//! the caller's `INVALID_ARGUMENT` (tonic says `INTERNAL`). A stream that has sent its
//! headers carries the status in its trailers, which are rewritten the same way.

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
    fix_headers(response.headers_mut());
    response
}

/// Rewrites `grpc-status` in `headers` (or trailers) where the codec refused the request.
fn fix_headers(headers: &mut http::HeaderMap) {
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
}

/// A response body whose trailers get the same rewrite as a trailers-only answer's headers.
pub struct FixTrailers<R> {
    inner: R,
}

impl<R> http_body::Body for FixTrailers<R>
where
    R: http_body::Body + Unpin,
{
    type Data = R::Data;
    type Error = R::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<R::Data>, R::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx).map(|frame| {
            frame.map(|frame| {
                frame.map(|frame| match frame.into_trailers() {
                    Ok(mut trailers) => {
                        fix_headers(&mut trailers);
                        http_body::Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S, B> tower::Service<http::Request<B>> for CodecStatus<S>
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

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let fut = self.inner.call(req);
        Box::pin(async move {
            fut.await
                .map(|r| fix_status(r).map(|inner| tonic::body::Body::new(FixTrailers { inner })))
        })
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

    #[tokio::test]
    async fn a_streams_trailers_are_rewritten_too() {
        use http_body_util::BodyExt;
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("13"));
        trailers.insert(
            "grpc-message",
            HeaderValue::from_static("failed%20to%20decode%20Protobuf%20message:%20invalid%20tag"),
        );
        let body = http_body_util::StreamBody::new(futures::stream::iter([
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(bytes::Bytes::from_static(
                b"ack",
            ))),
            Ok(http_body::Frame::trailers(trailers)),
        ]));
        let collected = FixTrailers { inner: body }.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "3");
        assert_eq!(collected.to_bytes(), "ack");
    }
}
