//! Forwards each call to the backend of its service, under the caller's identity as the gate
//! derived it from the connection.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use creditmesh_transport::{CLIENT_ADDRESS_HEADER, PRINCIPAL_HEADER, REQUEST_ID_HEADER};
use futures::StreamExt;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tonic::Status;

use crate::Routing;
use crate::caller::Caller;
use crate::policy;

/// The services with methods on the public listener, whose health it answers.
pub const PUBLIC_SERVICES: &[&str] = &[
    "creditmesh.disclosure.v1.DisclosureService",
    "creditmesh.complaints.v1.ComplaintService",
    "creditmesh.datapush.v1.DataPushService",
];

/// Metadata prefix reserved for the mesh; whatever a caller sends under it is dropped.
const RESERVED_PREFIX: &str = "x-creditmesh-";

/// A request id unique to this call: a random number drawn when the process started, then a
/// counter (cheaper per call than a time-based UUID, and as unique).
pub(crate) fn request_id() -> HeaderValue {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static BOOT: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let boot = *BOOT.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let id = uuid::Uuid::from_u64_pair(boot, NEXT.fetch_add(1, Ordering::Relaxed));
    let mut buf = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf)).expect("a uuid is a header value")
}

#[derive(Clone)]
pub struct Proxy {
    routing: Arc<Routing>,
    public: bool,
}

impl Proxy {
    pub fn new(routing: Arc<Routing>, public: bool) -> Self {
        Self { routing, public }
    }

    /// Forwards one call of the caller the gate named.
    async fn forward(&self, mut req: Request<Body>) -> Result<Response<Body>, Status> {
        let caller = req
            .extensions()
            .get::<Arc<Caller>>()
            .cloned()
            .ok_or_else(|| Status::internal("call reached the proxy without a caller"))?;
        let method = req.uri().path().trim_start_matches('/');
        let service = method.split('/').next().unwrap_or_default();
        let role = caller.role;
        match policy::allowed(method) {
            Some(roles) if roles.contains(&role) => {}
            Some(_) => {
                return Err(Status::permission_denied(format!(
                    "{role:?} callers may not call {method}"
                )));
            }
            None => {
                return Err(Status::permission_denied(format!(
                    "{method} is not callable"
                )));
            }
        }
        // The public has no tenant: its calls go to the default backends.
        let tenant = (!self.public).then_some(caller.principal.tenant);
        let backend = self
            .routing
            .backend(service, tenant)
            .cloned()
            .ok_or_else(|| Status::unavailable(format!("no backend configured for {service}")))?;
        let replayable = policy::replayable(method);
        let service = service.to_owned();

        let headers = req.headers_mut();
        if headers
            .keys()
            .any(|k| k.as_str().starts_with(RESERVED_PREFIX))
        {
            let reserved: Vec<_> = headers
                .keys()
                .filter(|k| k.as_str().starts_with(RESERVED_PREFIX))
                .cloned()
                .collect();
            for k in reserved {
                headers.remove(&k);
            }
        }
        headers.insert(
            PRINCIPAL_HEADER,
            HeaderValue::from_str(&caller.id).map_err(|_| Status::internal("principal header"))?,
        );
        if self.public
            && let Ok(address) = HeaderValue::from_str(&caller.key)
        {
            headers.insert(CLIENT_ADDRESS_HEADER, address);
        }
        let request_id_ok = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.is_empty() && v.len() <= 128);
        if !request_id_ok {
            headers.insert(REQUEST_ID_HEADER, request_id());
        }
        // Without an exporter the span has no context to pass on; the caller's own trace
        // context, if any, travels on untouched.
        if creditmesh_transport::telemetry::exporting() {
            creditmesh_transport::telemetry::inject_current(req.headers_mut());
        }
        tracing::debug!(%service, caller = %caller.id, "forwarding");

        let response = if replayable {
            let (head, body) = req.into_parts();
            match kept(body).await? {
                Kept::Whole(body) => backend.send_replayable(&head, body).await,
                Kept::TooLarge(body) => backend.send(Request::from_parts(head, body)).await,
            }
        } else {
            backend.send(req).await
        };
        let response = response
            .map_err(|e| Status::unavailable(format!("backend of {service} unreachable: {e}")))?;
        Ok(response.map(Body::new))
    }
}

/// The most of a call's body kept to replay it on another replica: a message as large as a
/// service accepts, with its frame header.
const REPLAY_BYTES: usize = creditmesh_transport::MAX_MESSAGE_BYTES + 5;

/// A call's body read whole, or as much as was read before it grew too large to keep,
/// followed by the rest.
enum Kept {
    Whole(Bytes),
    TooLarge(Body),
}

async fn kept(mut body: Body) -> Result<Kept, Status> {
    let mut whole = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Status::cancelled(format!("request not received: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        whole.extend_from_slice(&data);
        if whole.len() > REPLAY_BYTES {
            let read = futures::stream::once(async move { Ok(Frame::data(whole.freeze())) });
            let rest = http_body_util::BodyStream::new(body);
            return Ok(Kept::TooLarge(Body::new(StreamBody::new(read.chain(rest)))));
        }
    }
    Ok(Kept::Whole(whole.freeze()))
}

impl tower::Service<Request<Body>> for Proxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.forward(req).await.unwrap_or_else(Status::into_http)) })
    }
}
