//! One tower layer: a server span per call, continuing the caller's W3C trace.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use opentelemetry::trace::TraceContextExt as _;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Wraps every call of a service in a `grpc.server` span whose parent is the trace context
/// the request carries.
#[derive(Clone, Copy)]
pub struct ServerTraceLayer {
    pub service: &'static str,
}

impl<S> tower::Layer<S> for ServerTraceLayer {
    type Service = ServerTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTrace {
            inner,
            service: self.service,
        }
    }
}

#[derive(Clone)]
pub struct ServerTrace<S> {
    inner: S,
    service: &'static str,
}

impl<S, B, R> tower::Service<http::Request<B>> for ServerTrace<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().trim_start_matches('/').to_owned();
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = %method,
            service = self.service,
            rpc.grpc.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        // Every log line inside the call carries its trace (JSON logs name the span's fields):
        // this span's own ids where spans are exported, else the caller's trace id.
        if crate::telemetry::exporting() {
            let _ = span.set_parent(crate::telemetry::extract(req.headers()));
            let cx = span.context();
            let ids = cx.span().span_context().clone();
            if ids.is_valid() {
                span.record("trace_id", ids.trace_id().to_string());
                span.record("span_id", ids.span_id().to_string());
            }
        } else if let Some(id) = crate::telemetry::traceparent_trace_id(req.headers()) {
            span.record("trace_id", id);
        }
        let fut = self.inner.call(req);
        Box::pin(
            async move {
                let res = fut.await;
                if let Ok(r) = &res {
                    tracing::Span::current().record("rpc.grpc.status_code", header_status(r));
                }
                res
            }
            .instrument(span),
        )
    }
}

/// The gRPC status a response's headers carry: a call that failed answers its status there
/// (trailers-only); one that answered, or a stream that failed after it began sending, `0`.
pub fn header_status<R>(response: &http::Response<R>) -> &str {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
}
