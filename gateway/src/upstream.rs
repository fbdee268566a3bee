//! The gateway's connection to one backend: HTTP/2 over mutual TLS, driven with `h2` directly,
//! so that a forwarded call goes from the task serving the caller straight onto the backend
//! connection (a tonic channel would pass it through a buffer task and hyper's dispatch task
//! first). Connects on first use and again after the connection ends; pings it while it is up.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use creditmesh_pki::ClientTls;
use creditmesh_transport::coalesce::Coalesce;
use futures::future::BoxFuture;
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderName, Request, Response, Uri, Version, header};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const PING_INTERVAL: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// One backend connection, shared by every call to it; cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where the connection goes: one replica's address.
    connect_to: String,
    authority: Authority,
    server_name: ServerName<'static>,
    tls: Arc<ClientTls>,
    /// The open connection and its generation, or none until the next call connects.
    current: RwLock<Option<(u64, SendRequest<Bytes>)>>,
    generation: AtomicU64,
    connecting: tokio::sync::Mutex<()>,
    /// Calls sent on this connection whose response has not ended (or was never received).
    in_flight: AtomicUsize,
}

/// Why a call did not get its answer.
pub enum Failure<B> {
    /// Nothing of the call left for the backend: the request comes back, to be sent to
    /// another replica.
    Unsent(Box<Request<B>>, BoxError),
    /// The call was sent, or may have been: only a call that may be replayed can be tried
    /// again.
    Sent(BoxError),
}

impl<B> Failure<B> {
    pub fn into_error(self) -> BoxError {
        match self {
            Failure::Unsent(_, e) | Failure::Sent(e) => e,
        }
    }
}

impl Upstream {
    /// A connection to the replica at `connect_to` (`host:port`) whose calls carry
    /// `authority`; `server_name` is the DNS name its certificate carries.
    pub fn new(
        connect_to: String,
        authority: &str,
        tls: Arc<ClientTls>,
        server_name: &str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                connect_to,
                authority: authority.parse()?,
                server_name: ServerName::try_from(server_name.to_owned())?,
                tls,
                current: RwLock::new(None),
                generation: AtomicU64::new(0),
                connecting: tokio::sync::Mutex::new(()),
                in_flight: AtomicUsize::new(0),
            }),
        })
    }

    /// Calls on this connection now, from the send until the response body is dropped.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// Sends `req` to the backend; the response's body streams from it as it arrives.
    pub async fn send<B>(&self, req: Request<B>) -> Result<Response<UpstreamBody>, Failure<B>>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let counted = InFlight::count(&self.inner);
        let sender = match self.ready_sender().await {
            Ok(sender) => sender,
            Err(e) => return Err(Failure::Unsent(Box::new(req), e)),
        };
        self.send_on(sender, req, counted)
            .await
            .map_err(Failure::Sent)
    }

    async fn send_on<B>(
        &self,
        mut sender: SendRequest<Bytes>,
        req: Request<B>,
        counted: InFlight,
    ) -> Result<Response<UpstreamBody>, BoxError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        parts.uri = Uri::builder()
            .scheme(Scheme::HTTPS)
            .authority(self.inner.authority.clone())
            .path_and_query(path)
            .build()?;
        parts.version = Version::HTTP_2;
        parts.extensions = http::Extensions::new();
        strip_connection_headers(&mut parts.headers);
        let head = Request::from_parts(parts, ());
        let end_of_stream = body.is_end_stream();

        let (response, send) = sender.send_request(head, end_of_stream)?;
        let response = if end_of_stream {
            response.await?
        } else {
            // The request body goes up while the answer is awaited; a backend may answer
            // before the request has ended, and then the rest goes up on its own.
            let mut pump = Box::pin(pump(body, send));
            let mut response = response;
            let mut pumped = false;
            let answer = loop {
                tokio::select! {
                    biased;
                    answer = &mut response => break answer?,
                    result = &mut pump, if !pumped => {
                        pumped = true;
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "request body not forwarded whole");
                        }
                    }
                }
            };
            if !pumped {
                tokio::spawn(pump);
            }
            answer
        };
        Ok(response.map(|recv| UpstreamBody {
            recv,
            data_done: false,
            failed: None,
            _counted: counted,
        }))
    }

    /// The current connection, ready for a stream; on a connection that has ended, one retry
    /// on a new one (nothing of the call was sent on the old).
    async fn ready_sender(&self) -> Result<SendRequest<Bytes>, BoxError> {
        let mut retried = false;
        loop {
            let (generation, sender) = self.sender().await?;
            match sender.ready().await {
                Ok(ready) => return Ok(ready),
                Err(e) if !retried && (e.is_io() || e.is_go_away()) => {
                    tracing::debug!(error = %e, backend = %self.inner.authority, "reconnecting");
                    self.inner.forget(generation);
                    retried = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn sender(&self) -> Result<(u64, SendRequest<Bytes>), BoxError> {
        if let Some(current) = self.inner.current() {
            return Ok(current);
        }
        let _connecting = self.inner.connecting.lock().await;
        if let Some(current) = self.inner.current() {
            return Ok(current);
        }
        let sender = self.connect().await?;
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.inner.current.write().expect("upstream lock") = Some((generation, sender.clone()));
        Ok((generation, sender))
    }

    async fn connect(&self) -> Result<SendRequest<Bytes>, BoxError> {
        let inner = &self.inner;
        let handshake = async {
            let tcp = TcpStream::connect(inner.connect_to.as_str()).await?;
            tcp.set_nodelay(true)?;
            let tls = TlsConnector::from(inner.tls.current())
                .connect(inner.server_name.clone(), tcp)
                .await?;
            let (sender, connection) = h2::client::Builder::new()
                .enable_push(false)
                .initial_window_size(2 * 1024 * 1024)
                .initial_connection_window_size(5 * 1024 * 1024)
                .max_send_buffer_size(1024 * 1024)
                .handshake::<_, Bytes>(Coalesce::new(tls))
                .await?;
            Ok::<_, BoxError>((sender, connection))
        };
        let (sender, mut connection) = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| format!("connecting to {} timed out", inner.authority))??;
        let ping = connection
            .ping_pong()
            .expect("a new connection has its ping");
        let generation = inner.generation.load(Ordering::Relaxed) + 1;
        let weak = Arc::downgrade(inner);
        let authority = inner.authority.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = &mut connection => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, backend = %authority, "backend connection ended");
                    }
                }
                () = keep_alive(ping) => {
                    tracing::warn!(backend = %authority, "backend connection unanswered; closing it");
                }
            }
            if let Some(inner) = weak.upgrade() {
                inner.forget(generation);
            }
        });
        Ok(sender)
    }
}

impl Inner {
    fn current(&self) -> Option<(u64, SendRequest<Bytes>)> {
        self.current.read().expect("upstream lock").clone()
    }

    /// Forgets the connection of `generation` if it is still the current one.
    fn forget(&self, generation: u64) {
        let mut current = self.current.write().expect("upstream lock");
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }
}

/// Returns when a ping goes unanswered.
async fn keep_alive(mut ping: h2::PingPong) {
    loop {
        tokio::time::sleep(PING_INTERVAL).await;
        match tokio::time::timeout(PING_TIMEOUT, ping.ping(h2::Ping::opaque())).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
    }
}

/// Headers that HTTP/2 forbids (a gRPC-Web call over HTTP/1.1 may carry them).
fn strip_connection_headers(headers: &mut HeaderMap) {
    const HOP: [HeaderName; 5] = [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::HOST,
        HeaderName::from_static("keep-alive"),
    ];
    for name in &HOP {
        headers.remove(name);
    }
    headers.remove("proxy-connection");
    if headers.get(header::TE).is_some_and(|te| te != "trailers") {
        headers.remove(header::TE);
    }
}

/// How much of a caller's stream is taken together into the frames sent up at once.
const MERGE_BYTES: usize = 64 * 1024;
/// Below this, a part of what is pending is not sent on its own: it waits for the window
/// to open further, so that a backend never receives a stream as many small frames.
const MIN_FRAME_BYTES: usize = 4 * 1024;

/// Sends a request body up the stream, within the backend's flow-control window. What the
/// caller has sent by the time a frame goes up is merged into it (up to [`MERGE_BYTES`]),
/// and no frame smaller than [`MIN_FRAME_BYTES`] is sent while more is pending: a backend's
/// HTTP/2 server counts many small frames as abuse and closes the whole connection, with
/// every other caller's stream on it.
async fn pump<B>(body: B, mut send: SendStream<Bytes>) -> Result<(), BoxError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut pending = bytes::BytesMut::new();
    let mut trailers = None;
    let mut ended = false;
    loop {
        if pending.is_empty() && !ended {
            let frame = body.frame().await;
            ended = take(frame, &mut pending, &mut trailers, &mut send)?;
        }
        while !ended && pending.len() < MERGE_BYTES {
            match futures::FutureExt::now_or_never(body.frame()) {
                Some(frame) => ended = take(frame, &mut pending, &mut trailers, &mut send)?,
                None => break,
            }
        }
        if pending.is_empty() {
            if ended {
                break;
            }
            continue;
        }
        let wanted = pending.len().min(MIN_FRAME_BYTES);
        send.reserve_capacity(pending.len());
        while send.capacity() < wanted {
            poll_fn(|cx| send.poll_capacity(cx))
                .await
                .ok_or("backend stream closed")??;
        }
        let n = send.capacity().min(pending.len());
        send.send_data(pending.split_to(n).freeze(), false)?;
    }
    match trailers {
        Some(trailers) => send.send_trailers(trailers)?,
        None => send.send_data(Bytes::new(), true)?,
    }
    Ok(())
}

/// Adds a caller's frame to what is pending; `true` when the body has ended.
fn take<E: Into<BoxError>>(
    frame: Option<Result<Frame<Bytes>, E>>,
    pending: &mut bytes::BytesMut,
    trailers: &mut Option<HeaderMap>,
    send: &mut SendStream<Bytes>,
) -> Result<bool, BoxError> {
    let frame = match frame {
        None => return Ok(true),
        Some(Ok(frame)) => frame,
        Some(Err(e)) => {
            send.send_reset(h2::Reason::CANCEL);
            return Err(e.into());
        }
    };
    match frame.into_data() {
        Ok(data) => {
            pending.extend_from_slice(&data);
            Ok(false)
        }
        Err(frame) => match frame.into_trailers() {
            Ok(t) => {
                *trailers = Some(t);
                Ok(true)
            }
            Err(_) => Ok(false),
        },
    }
}

/// One call counted in its connection's `in_flight` for as long as this lives.
struct InFlight(Arc<Inner>);

impl InFlight {
    fn count(inner: &Arc<Inner>) -> Self {
        inner.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(inner.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A backend's response body: its data, then its trailers (where gRPC puts the status). The
/// data that has arrived by the time the caller's connection asks for more goes down as one
/// frame (up to [`MERGE_BYTES`]), for the caller's HTTP/2 stack has the same guard against
/// many small frames as a backend's.
pub struct UpstreamBody {
    recv: RecvStream,
    data_done: bool,
    /// An error met after data that was passed on first.
    failed: Option<h2::Error>,
    _counted: InFlight,
}

impl UpstreamBody {
    /// Data that has arrived and follows `first`, appended to it.
    fn merged(&mut self, first: Bytes, cx: &mut Context<'_>) -> Bytes {
        let mut merged: Option<bytes::BytesMut> = None;
        let mut len = first.len();
        while len < MERGE_BYTES {
            match self.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(more))) => {
                    let _ = self.recv.flow_control().release_capacity(more.len());
                    len += more.len();
                    merged
                        .get_or_insert_with(|| bytes::BytesMut::from(&first[..]))
                        .extend_from_slice(&more);
                }
                Poll::Ready(Some(Err(e))) => {
                    self.failed = Some(e);
                    break;
                }
                Poll::Ready(None) => {
                    self.data_done = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        merged.map_or(first, bytes::BytesMut::freeze)
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if !self.data_done {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    let data = self.merged(data, cx);
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => self.data_done = true,
            }
        }
        match ready!(self.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed.is_none() && self.recv.is_end_stream()
    }
}

/// The connection as a gRPC client transport, for the gateway's own calls (health).
impl tower::Service<Request<tonic::body::Body>> for Upstream {
    type Response = Response<UpstreamBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<UpstreamBody>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<tonic::body::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.send(req).await.map_err(Failure::into_error) })
    }
}
