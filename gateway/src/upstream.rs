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
use creditmesh_rpc::coalesce::Coalesce;
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

impl Upstream {
    /// `url` is `https://host:port`; `server_name` is the DNS name its certificate carries.
    pub fn new(url: &str, tls: Arc<ClientTls>, server_name: &str) -> anyhow::Result<Self> {
        let uri: Uri = url.parse()?;
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{url}: no host and port"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                authority,
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
    pub async fn send<B>(&self, req: Request<B>) -> Result<Response<UpstreamBody>, BoxError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let counted = InFlight::count(&self.inner);
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

        let (response, send) = self.open_stream(head, end_of_stream).await?;
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
            _counted: counted,
        }))
    }

    /// A stream on the current connection; on a connection that has ended, one retry on a new
    /// one (nothing of the call was sent on the old).
    async fn open_stream(
        &self,
        head: Request<()>,
        end_of_stream: bool,
    ) -> Result<(h2::client::ResponseFuture, SendStream<Bytes>), BoxError> {
        let mut retried = false;
        loop {
            let (generation, sender) = self.sender().await?;
            match sender.ready().await {
                Ok(mut ready) => return Ok(ready.send_request(head, end_of_stream)?),
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
            let tcp = TcpStream::connect(inner.authority.as_str()).await?;
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

/// Sends a request body up the stream, within the backend's flow-control window.
async fn pump<B>(body: B, mut send: SendStream<Bytes>) -> Result<(), BoxError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                send.send_reset(h2::Reason::CANCEL);
                return Err(e.into());
            }
        };
        match frame.into_data() {
            Ok(mut data) => {
                while !data.is_empty() {
                    send.reserve_capacity(data.len());
                    let granted = poll_fn(|cx| send.poll_capacity(cx))
                        .await
                        .ok_or("backend stream closed")??;
                    let chunk = data.split_to(granted.min(data.len()));
                    send.send_data(chunk, false)?;
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    send.send_trailers(trailers)?;
                    return Ok(());
                }
            }
        }
    }
    send.send_data(Bytes::new(), true)?;
    Ok(())
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

/// A backend's response body: its data, then its trailers (where gRPC puts the status).
pub struct UpstreamBody {
    recv: RecvStream,
    data_done: bool,
    _counted: InFlight,
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
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
        self.recv.is_end_stream()
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
        Box::pin(async move { this.send(req).await })
    }
}
