//! The register's log as C2SP tlog-tiles over plain HTTP GET on the public listener, under
//! `/register/`: `checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`. Each file
//! comes from the disclosure service; full tiles are cacheable for good.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use creditmesh_proto::disclosure::v1::GetTileRequest;
use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use creditmesh_transport::{PRINCIPAL_HEADER, REQUEST_ID_HEADER};
use http::{HeaderValue, StatusCode, header};

use crate::Routing;

const DISCLOSURE: &str = "creditmesh.disclosure.v1.DisclosureService";

/// The route the public listener serves the log's files on.
pub const ROUTE: &str = "/register/{*path}";

pub async fn file(
    State(routing): State<Arc<Routing>>,
    Path(path): Path<String>,
    headers: http::HeaderMap,
) -> Response {
    let Some(upstream) = routing.backend(DISCLOSURE, None).cloned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the register is not served here\n",
        )
            .into_response();
    };
    let mut request = tonic::Request::new(GetTileRequest { path });
    let md = request.metadata_mut();
    md.insert(PRINCIPAL_HEADER, "public".parse().expect("ascii"));
    if let Ok(id) = crate::proxy::request_id()
        .to_str()
        .unwrap_or_default()
        .parse()
    {
        md.insert(REQUEST_ID_HEADER, id);
    }
    match DisclosureServiceClient::new(upstream)
        .get_tile(request)
        .await
    {
        Ok(answer) => {
            let answer = answer.into_inner();
            let content_type = HeaderValue::from_str(&answer.content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            if answer.immutable {
                let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
                return (
                    [
                        (header::CONTENT_TYPE, content_type),
                        (header::CACHE_CONTROL, cache),
                    ],
                    answer.data,
                )
                    .into_response();
            }
            // What can change (the checkpoint, a partial tile, an entry bundle a decision
            // erased from) is revalidated by its digest.
            let etag = etag(&answer.data);
            let cache = HeaderValue::from_static("no-cache");
            if headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
            {
                return (
                    StatusCode::NOT_MODIFIED,
                    [
                        (header::ETAG, header_value(&etag)),
                        (header::CACHE_CONTROL, cache),
                    ],
                )
                    .into_response();
            }
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CACHE_CONTROL, cache),
                    (header::ETAG, header_value(&etag)),
                ],
                answer.data,
            )
                .into_response()
        }
        Err(status) => {
            let code = match status.code() {
                tonic::Code::NotFound
                | tonic::Code::InvalidArgument
                | tonic::Code::FailedPrecondition => StatusCode::NOT_FOUND,
                tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            (code, format!("{}\n", status.message())).into_response()
        }
    }
}

/// A strong validator of a file's bytes: the first 128 bits of their SHA-256, quoted.
fn etag(data: &[u8]) -> String {
    use sha2::Digest;
    format!("\"{}\"", hex::encode(&sha2::Sha256::digest(data)[..16]))
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("\"\""))
}

/// gRPC-Web in front of everything but the log's files, which plain HTTP/1.1 clients fetch
/// too (gRPC-Web answers any other HTTP/1.1 request 400).
#[derive(Clone, Default)]
pub struct GrpcWebExceptFiles;

impl<S: Clone> tower::Layer<S> for GrpcWebExceptFiles {
    type Service = ExceptFiles<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ExceptFiles {
            web: tonic_web::GrpcWebLayer::new().layer(inner.clone()),
            plain: inner,
        }
    }
}

#[derive(Clone)]
pub struct ExceptFiles<S> {
    web: tonic_web::GrpcWebService<S>,
    plain: S,
}

type ToBody<R> = fn(http::Response<R>) -> http::Response<tonic::body::Body>;

fn to_body<R>(response: http::Response<R>) -> http::Response<tonic::body::Body>
where
    R: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    R::Error: Into<tonic::codegen::StdError>,
{
    response.map(tonic::body::Body::new)
}

impl<S, B, R> tower::Service<http::Request<B>> for ExceptFiles<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<R>> + Clone,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + std::fmt::Display,
    R: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    R::Error: Into<tonic::codegen::StdError> + std::fmt::Display,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = futures::future::Either<
        tonic_web::ResponseFuture<S::Future>,
        futures::future::MapOk<S::Future, ToBody<R>>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // Both wrap the same router, which is always ready; polled alike all the same.
        match <tonic_web::GrpcWebService<S> as tower::Service<http::Request<B>>>::poll_ready(
            &mut self.web,
            cx,
        ) {
            std::task::Poll::Ready(Ok(())) => self.plain.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        use futures::TryFutureExt;
        let fetch = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
        if fetch && req.uri().path().starts_with("/register/") {
            let f: ToBody<R> = to_body::<R>;
            futures::future::Either::Right(
                self.plain.call(req.map(tonic::body::Body::new)).map_ok(f),
            )
        } else {
            futures::future::Either::Left(self.web.call(req))
        }
    }
}
