//! The regulators' console: pages for the desk officers of the region's, prefectures' and
//! counties' social-credit authorities, served over mutual TLS. An officer signs in with the
//! certificate the CA issued their authority; no password is asked. The console calls the
//! gateway's node listener as itself (the `console` service), naming the officer by that same
//! certificate, which the gateway checks again: what an officer may see or do here is exactly
//! what a gRPC call with the officer's certificate may.

mod acts;
mod complaints;
mod listener;
mod objections;
mod practitioners;
mod register;
mod review;
mod supervision;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use creditmesh_domain::{Principal, PrincipalKind};
use creditmesh_pki::{ClientAuth, ClientTls, ServerTls, TlsFiles};
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::datapush::v1::data_push_service_client::DataPushServiceClient;
use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_transport::OFFICER_CERT_HEADER;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{Lang, Web};
use listener::Presented;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Where the console is served: HTTPS, a client certificate of the CA required.
    pub listen: SocketAddr,
    /// The gateway's node listener, `https://host:port`; unset, this node's `node.listen`.
    pub gateway_url: Option<String>,
    /// The name in the gateway's server certificate.
    pub gateway_server_name: String,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            gateway_url: None,
            gateway_server_name: "localhost".into(),
        }
    }
}

/// The console's own identity and where its gateway is.
#[derive(Debug, Clone)]
pub struct ConsoleNode {
    /// The console's certificate (`service/<region>/console`, for client and server
    /// authentication), its key, the CA bundle and the revocation list.
    pub tls: TlsFiles,
    pub trust_domain: String,
    /// The gateway's node listener, `https://host:port`.
    pub gateway_url: String,
    /// Seeds the key of the forms' tokens, so that replicas agree; `None`, a random key.
    pub form_seed: Option<String>,
}

/// The officer signed in on this connection.
pub struct Officer {
    pub principal: Principal,
    /// The SPIFFE ID.
    pub id: String,
    /// The certificate's serial, in hex.
    pub serial: String,
    /// The certificate (DER) in standard base64, as the gateway is told it.
    cert: MetadataValue<Ascii>,
}

tokio::task_local! {
    static OFFICER: Arc<Officer>;
}

/// Names the signed-in officer on every call to the gateway.
#[derive(Clone)]
struct AsOfficer;

impl Interceptor for AsOfficer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        let cert = OFFICER
            .try_with(|o| o.cert.clone())
            .map_err(|_| Status::unauthenticated("no officer signed in"))?;
        request.metadata_mut().insert(OFFICER_CERT_HEADER, cert);
        Ok(request)
    }
}

type Mesh = InterceptedService<Channel, AsOfficer>;

#[derive(Clone)]
struct Desk {
    review: ReviewServiceClient<Mesh>,
    filing: FilingServiceClient<Mesh>,
    complaints: ComplaintServiceClient<Mesh>,
    datapush: DataPushServiceClient<Mesh>,
    register: DisclosureServiceClient<Mesh>,
}

#[derive(Clone)]
struct Gatekeeper {
    tls: Arc<ServerTls>,
    trust_domain: Arc<str>,
}

pub async fn start(
    cfg: &ConsoleConfig,
    node: &ConsoleNode,
    stop: CancellationToken,
) -> Result<Web> {
    let server_tls = ServerTls::server(
        node.tls.clone(),
        ClientAuth::Required {
            trust_domain: node.trust_domain.clone(),
        },
    )
    .context("the console's certificate")?;
    let client_tls = ClientTls::client(node.tls.clone())?;
    creditmesh_transport::listener::spawn_reloader(client_tls.clone(), stop.clone());
    let channel = creditmesh_transport::client::mtls_channel(
        &node.gateway_url,
        client_tls,
        &cfg.gateway_server_name,
    )
    .with_context(|| format!("gateway url {}", node.gateway_url))?;
    let desk = Desk {
        review: ReviewServiceClient::with_interceptor(channel.clone(), AsOfficer),
        filing: FilingServiceClient::with_interceptor(channel.clone(), AsOfficer),
        complaints: ComplaintServiceClient::with_interceptor(channel.clone(), AsOfficer),
        datapush: DataPushServiceClient::with_interceptor(channel.clone(), AsOfficer),
        register: DisclosureServiceClient::with_interceptor(channel, AsOfficer),
    };
    let gatekeeper = Gatekeeper {
        tls: server_tls.clone(),
        trust_domain: node.trust_domain.as_str().into(),
    };
    let router = Router::new()
        .route("/", get(home))
        .route("/review", get(review::queue))
        .route("/review/{task_id}", get(review::task))
        .route("/review/{task_id}/decision", post(review::decide))
        .route(
            "/filings/{filing_id}/documents/{sha256}",
            get(review::document),
        )
        .route("/complaints", get(complaints::queue))
        .route("/complaints/{tn}", get(complaints::complaint))
        .route("/complaints/{tn}/accept", post(complaints::accept))
        .route("/complaints/{tn}/resolve", post(complaints::resolve))
        .route("/complaints/{tn}/refer", post(complaints::refer))
        .route(
            "/complaints/{tn}/evidence/{sha256}",
            get(complaints::evidence),
        )
        .route("/objections", get(objections::desk))
        .route("/objections/access-codes", post(objections::issue_code))
        .route("/objections/{objection_id}", post(objections::decide))
        .route(
            "/objections/{objection_id}/materials/{material_id}",
            get(objections::material),
        )
        .route("/agencies", get(supervision::agencies))
        .route("/agencies/{uscc}", get(supervision::agency))
        .route("/agencies/{uscc}/{act}", post(supervision::agency_act))
        .route(
            "/practitioners",
            get(practitioners::lookup).post(practitioners::file),
        )
        .route("/practitioners/{act}", post(practitioners::act))
        .route("/spot-checks", post(supervision::draw))
        .route("/register", get(register::register))
        .route("/register/corrections", post(register::correct))
        .route("/register/erasures", post(register::erase))
        .route("/static/site.css", get(crate::stylesheet))
        .fallback(not_found)
        .with_state(desk)
        .layer(axum::middleware::from_fn_with_state(
            crate::forms::FormKey::for_cookie(
                node.form_seed.as_deref(),
                "cm_console_form",
                true,
                refuse_form,
            ),
            crate::forms::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(gatekeeper, sign_in))
        .layer(axum::middleware::from_fn(headers));
    let incoming = listener::bind(cfg.listen, server_tls, stop.clone())
        .await
        .with_context(|| format!("binding the console listener {}", cfg.listen))?;
    let addr = axum::serve::Listener::local_addr(&incoming)?;
    let task = tokio::spawn(async move {
        let served = axum::serve(
            incoming,
            router.into_make_service_with_connect_info::<Presented>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "console listener stopped with an error");
        }
    });
    tracing::info!(%addr, "console listening");
    Ok(Web { addr, task })
}

/// Signs in the officer whose certificate the connection presented: a regulator's, not
/// revoked since the handshake. Anyone else is refused before any page is made.
async fn sign_in(
    State(g): State<Gatekeeper>,
    ConnectInfo(presented): ConnectInfo<Presented>,
    req: Request,
    next: Next,
) -> Response {
    let refused = |why: &'static str| error(StatusCode::FORBIDDEN, why);
    let Some(der) = presented.cert else {
        return refused(NO_CERTIFICATE);
    };
    let Ok(principal) = creditmesh_pki::principal_of(&der, &g.trust_domain) else {
        return refused(NO_CERTIFICATE);
    };
    if principal.kind != PrincipalKind::Regulator {
        return refused(NOT_AN_OFFICER);
    }
    let Ok(serial) = creditmesh_pki::serial_of(&der) else {
        return refused(NO_CERTIFICATE);
    };
    if g.tls.is_revoked(&serial) {
        return refused(REVOKED);
    }
    let Ok(cert) = MetadataValue::try_from(base64::engine::general_purpose::STANDARD.encode(&*der))
    else {
        return refused(NO_CERTIFICATE);
    };
    let officer = Arc::new(Officer {
        id: principal.spiffe_id(&g.trust_domain),
        serial: hex::encode(&serial),
        principal,
        cert,
    });
    OFFICER.scope(officer, next.run(req)).await
}

const NO_CERTIFICATE: &str = "请使用本平台 CA 签发的监管机关证书登录 · Sign in with an authority's certificate from the platform's CA";
const NOT_AN_OFFICER: &str = "工作台仅供社会信用主管部门人员使用 · The console is for officers of the social-credit authorities";
const REVOKED: &str = "证书已被吊销 · The certificate has been revoked";

/// Nothing from outside the console, no script, not framed, never cached (every page is one
/// officer's), types as declared.
async fn headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    use http::{HeaderValue, header};
    crate::harden(h);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    response
}

/// What every console page shares: its title and the officer whose certificate is in use.
pub struct Frame {
    pub title: String,
    pub officer: Option<Arc<Officer>>,
}

impl Frame {
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            officer: OFFICER.try_with(Arc::clone).ok(),
        }
    }

    /// The authority the officer acts for, named in Chinese and English.
    pub fn authority(&self) -> String {
        self.officer
            .as_ref()
            .map(|o| {
                let t = o.principal.tenant;
                format!("{}（{}）· {}", Lang::Zh.tenant(t), t, Lang::En.tenant(t))
            })
            .unwrap_or_default()
    }

    /// `path`, posted to by a form of this page, with the form's token.
    pub fn action(&self, path: &str) -> String {
        crate::forms::action(path)
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    f: Frame,
    message: &'a str,
}

pub fn error(status: StatusCode, message: &str) -> Response {
    let f = Frame::new(message);
    (status, Html(crate::page::render(ErrorPage { f, message }))).into_response()
}

fn refuse_form(_: Lang, status: StatusCode, _: &'static str) -> Response {
    error(
        status,
        "表单已失效或来自其他站点，请重新打开页面后再提交 · The form has expired or came from another site; open the page again",
    )
}

/// The page for a failed call to the mesh, saying what the mesh said.
pub fn failed(status: &Status) -> Response {
    let (code, message) = match status.code() {
        tonic::Code::NotFound => (
            StatusCode::NOT_FOUND,
            "未找到，或不在本机关权限内 · Not found, or not within this authority's reach",
        ),
        tonic::Code::PermissionDenied => (
            StatusCode::FORBIDDEN,
            "本机关无权进行此项操作 · This authority may not do this",
        ),
        tonic::Code::Unauthenticated => (StatusCode::FORBIDDEN, NO_CERTIFICATE),
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => (
            StatusCode::BAD_REQUEST,
            "请求未被受理 · The request was not accepted",
        ),
        tonic::Code::ResourceExhausted => (
            StatusCode::TOO_MANY_REQUESTS,
            "请稍后再试 · Try again shortly",
        ),
        _ => {
            tracing::warn!(code = ?status.code(), message = status.message(), "console: a call to the mesh failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "服务暂不可用 · The service is unavailable",
            )
        }
    };
    let mut response = error(code, message);
    if code == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
    }
    response
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct Home {
    f: Frame,
}

async fn home() -> Response {
    Html(crate::page::render(Home {
        f: Frame::new("监管工作台 · Console"),
    }))
    .into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "页面不存在 · No such page")
}

/// A queue in order of its deadlines (`YYYY-MM-DD`), the nearest first and those without one
/// last, each day's in the order of their ids.
pub fn nearest_first<T>(rows: &mut [T], key: impl Fn(&T) -> (&String, &String)) {
    rows.sort_by(|a, b| {
        let ((due_a, id_a), (due_b, id_b)) = (key(a), key(b));
        (due_a.is_empty(), due_a, id_a).cmp(&(due_b.is_empty(), due_b, id_b))
    });
}

/// A page made from the mesh's answers, with `status`; or the page of the call that failed.
pub fn shown<P: Template>(page: Result<P, Status>, status: StatusCode) -> Response {
    match page {
        Ok(page) => (status, Html(crate::page::render(page))).into_response(),
        Err(status) => failed(&status),
    }
}

/// What a write answers: done, a fresh page at `back(done)` (303, so that reloading it sends
/// nothing again); refused for what was sent, the page made again by `again` with the reasons
/// beside the form (400); anything else, the failure's page.
pub async fn after_write<P, F>(
    outcome: Result<String, Status>,
    back: impl FnOnce(String) -> String,
    again: impl FnOnce(Vec<String>) -> F,
) -> Response
where
    P: Template,
    F: std::future::Future<Output = Result<P, Status>>,
{
    match outcome {
        Ok(done) => axum::response::Redirect::to(&back(done)).into_response(),
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition
            ) =>
        {
            shown(again(violations(&status)).await, StatusCode::BAD_REQUEST)
        }
        Err(status) => failed(&status),
    }
}

/// A file the mesh streams as its metadata, then its bytes: `part` tells which a message
/// holds, `shown` the metadata's media type and the name to show it under.
pub async fn streamed_file<T, M>(
    call: Result<tonic::Response<tonic::Streaming<T>>, Status>,
    part: fn(T) -> Option<Result<M, Vec<u8>>>,
    shown: impl FnOnce(&M) -> (String, String),
) -> Response
where
    T: Send + 'static,
    M: Send + 'static,
{
    use futures::StreamExt;
    let mut stream = match call {
        Ok(s) => s.into_inner(),
        Err(status) => return failed(&status),
    };
    let meta = match stream.next().await {
        Some(Ok(first)) => match part(first) {
            Some(Ok(m)) => m,
            _ => return failed(&Status::internal("no metadata first")),
        },
        Some(Err(status)) => return failed(&status),
        None => return failed(&Status::not_found("empty")),
    };
    let (media_type, name) = shown(&meta);
    inline_file(
        &media_type,
        &name,
        stream.map(move |message| {
            message.map(|m| match part(m) {
                Some(Err(bytes)) => axum::body::Bytes::from(bytes),
                _ => axum::body::Bytes::new(),
            })
        }),
    )
}

/// A file the mesh streams, shown by the browser's own viewer (never as a page of this site:
/// it is sandboxed), under the name it was uploaded with.
fn inline_file<S>(media_type: &str, file_name: &str, chunks: S) -> Response
where
    S: futures::Stream<Item = Result<axum::body::Bytes, Status>> + Send + 'static,
{
    use futures::StreamExt;
    use http::{HeaderValue, header};
    let body = axum::body::Body::from_stream(
        chunks.map(|c| c.map_err(|status| std::io::Error::other(status.message().to_owned()))),
    );
    let media_type = HeaderValue::from_str(media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let name: String = form_urlencoded::byte_serialize(file_name.as_bytes()).collect();
    let disposition = HeaderValue::from_str(&format!("inline; filename*=UTF-8''{name}"))
        .unwrap_or(HeaderValue::from_static("inline"));
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, media_type);
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    response
}

/// A division as the desks read it: its name, then its code (the code alone when unknown).
pub fn division(code: &str) -> String {
    match creditmesh_domain::Tenant::parse(code) {
        Ok(t) => format!("{}（{code}）", t.authority_name()),
        Err(_) => code.to_owned(),
    }
}

/// A fresh idempotency key for a form: the write it sends is made once however often it is
/// sent.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The pairs of a form's body, repeated names kept.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

/// The field violations of a refused write, as `field: why` lines for the page.
pub fn violations(status: &Status) -> Vec<String> {
    let v = crate::page::violations(status);
    if v.is_empty() {
        vec![status.message().to_owned()]
    } else {
        v.into_iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect()
    }
}
