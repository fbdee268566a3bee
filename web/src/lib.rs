//! The public website: pages rendered on the server for people with a browser. It reaches
//! the mesh only as an anonymous caller of the gateway's public listener (server TLS, no
//! client certificate), so a visitor can do nothing here they could not do with a gRPC client.
//! Beside it, [`console`]: the authorities' officers' pages, entered with their certificates.

mod access;
mod complaints;
pub mod console;
mod evidence;
mod forms;
mod i18n;
mod pace;
mod page;
mod register;
mod visitor;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::datapush::v1::data_push_service_client::DataPushServiceClient;
use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use creditmesh_transport::{FORWARDED_FOR_HEADER, FORWARDER_HEADER};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

pub use i18n::Lang;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Where the pages are served (HTTP).
    pub listen: SocketAddr,
    /// Gateway calls' worth of pages per second of one visitor address (0: unlimited), as
    /// the gateway's public listener allows one address its calls; bursts of one second's
    /// worth. A page costs the calls it makes.
    pub rate_per_second: u32,
    /// The gateway's public listener, `https://host:port`; unset, this node's `public.listen`.
    pub gateway_url: Option<String>,
    /// The name in the gateway's server certificate.
    pub gateway_server_name: String,
    /// Reverse proxies in front of the website (addresses or networks) whose
    /// `X-Forwarded-For` names the visitor; empty, the TCP peer is the visitor.
    pub trusted_proxies: Vec<String>,
    /// What the site calls itself, in Chinese and English: an official name (信用中国 and the
    /// like) is the operator's to give, so the default says it is a demonstration.
    pub site_name_zh: String,
    pub site_name_en: String,
    /// Who runs it and how to reach them, shown at the foot of every page when set.
    pub operator_zh: String,
    pub operator_en: String,
    pub contact: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8088)),
            rate_per_second: 20,
            gateway_url: None,
            gateway_server_name: "localhost".into(),
            trusted_proxies: Vec::new(),
            site_name_zh: "信用服务机构登记建档公示（演示站点）".into(),
            site_name_en: "Register of credit service agencies (demonstration site)".into(),
            operator_zh: String::new(),
            operator_en: String::new(),
            contact: String::new(),
        }
    }
}

/// Where the gateway's public listener is and how its certificate is checked.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `https://host:port`.
    pub url: String,
    /// The CA bundle that signed the gateway's server certificate.
    pub ca_file: PathBuf,
    /// The name the gateway's certificate carries.
    pub server_name: String,
    /// The forwarder token the gateway trusts (`PKI_DIR/forwarder.token`): with it each call
    /// names the visitor it is made for, and the gateway's per-address limits count visitors.
    /// `None`: the gateway sees the website as one public caller.
    pub forwarder_token: Option<String>,
}

pub struct Web {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

type Mesh = InterceptedService<Channel, Forward>;

#[derive(Clone)]
struct App {
    register: DisclosureServiceClient<Mesh>,
    complaints: ComplaintServiceClient<Mesh>,
    datapush: DataPushServiceClient<Mesh>,
    /// Turns for evidence files held in memory on their way to the mesh.
    turns: evidence::Turns,
}

tokio::task_local! {
    /// The address of the visitor whose page is being made.
    static VISITOR: IpAddr;
}

/// Names the visitor on every call to the gateway, with the token that makes it believed.
#[derive(Clone)]
struct Forward {
    token: Option<MetadataValue<Ascii>>,
}

impl Interceptor for Forward {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(token) = &self.token
            && let Ok(Ok(visitor)) = VISITOR.try_with(|ip| MetadataValue::try_from(ip.to_string()))
        {
            let m = request.metadata_mut();
            m.insert(FORWARDER_HEADER, token.clone());
            m.insert(FORWARDED_FOR_HEADER, visitor);
        }
        Ok(request)
    }
}

pub async fn start(cfg: &WebConfig, upstream: &Upstream, stop: CancellationToken) -> Result<Web> {
    let ca = std::fs::read_to_string(&upstream.ca_file)
        .with_context(|| format!("reading {}", upstream.ca_file.display()))?;
    let channel = Endpoint::from_shared(upstream.url.clone())
        .with_context(|| format!("gateway url {}", upstream.url))?
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name(upstream.server_name.clone()),
        )?
        .connect_lazy();
    let forward = Forward {
        token: upstream
            .forwarder_token
            .as_deref()
            .map(MetadataValue::try_from)
            .transpose()
            .context("the forwarder token is not ASCII")?,
    };
    let app = App {
        register: DisclosureServiceClient::with_interceptor(channel.clone(), forward.clone()),
        complaints: ComplaintServiceClient::with_interceptor(channel.clone(), forward.clone()),
        datapush: DataPushServiceClient::with_interceptor(channel, forward),
        turns: evidence::Turns::default(),
    };
    let limiter = NonZeroU32::new(cfg.rate_per_second)
        .map(|rate| Arc::new(RateLimiter::keyed(Quota::per_second(rate))));
    if let Some(limiter) = limiter.clone() {
        tokio::spawn(forget_idle_visitors(limiter, stop.clone()));
    }
    let visitors = Visitors {
        limiter,
        proxies: Arc::new(visitor::TrustedProxies::parse(&cfg.trusted_proxies)?),
    };
    let router = Router::new()
        .route("/", get(register::search))
        .route("/agencies/{uscc}", get(register::agency))
        .route("/proofs/{sequence}", get(register::proof))
        .route(
            "/complaints",
            get(complaints::new)
                .post(complaints::submit)
                .layer(DefaultBodyLimit::max(evidence::MAX_BODY_BYTES)),
        )
        .route(
            "/complaints/track",
            get(complaints::track_form).post(complaints::track),
        )
        .route("/access", get(access::form).post(access::report))
        .route(
            "/access/objections",
            post(access::object).layer(DefaultBodyLimit::max(access::OBJECTION_BODY_BYTES)),
        )
        .route("/access/statements", post(access::add_statement))
        .route("/static/site.css", get(stylesheet))
        .fallback(not_found)
        .with_state(app)
        .layer(axum::middleware::from_fn_with_state(
            forms::FormKey::new(upstream.forwarder_token.as_deref(), page::error),
            forms::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(page::Site::of(cfg)),
            page::with_site,
        ))
        .layer(axum::middleware::from_fn_with_state(visitors, rate_limit))
        .layer(axum::middleware::from_fn(security_headers));
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding the web listener {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "web listener stopped with an error");
        }
    });
    tracing::info!(%addr, "web listening");
    Ok(Web { addr, task })
}

/// How visitors are told apart and limited.
#[derive(Clone)]
struct Visitors {
    limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    proxies: Arc<visitor::TrustedProxies>,
}

/// Drops the rate state of addresses that have not been seen for a while, so that a flood
/// from many addresses does not keep its memory.
async fn forget_idle_visitors(
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }
}

/// One visitor address's pages per second; beyond them, 429 with `Retry-After`. The page is
/// made with the visitor's address known, for the calls it makes to the gateway.
async fn rate_limit(
    State(visitors): State<Visitors>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let visitor = visitors.proxies.visitor(peer.ip(), req.headers());
    let cost = page_cost(req.method(), req.uri().path());
    if let Some(limiter) = visitors.limiter
        && !matches!(limiter.check_key_n(&visitor, cost), Ok(Ok(())))
    {
        let lang = crate::i18n::lang_of(req.uri());
        let mut response = page::error(lang, StatusCode::TOO_MANY_REQUESTS, lang.text().too_many);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    VISITOR.scope(visitor, next.run(req)).await
}

/// What a page costs of a visitor's budget: the calls to the gateway it makes (at least
/// one), so that the site's limit per visitor and the gateway's agree and a page is refused
/// whole here rather than half made there.
fn page_cost(method: &http::Method, path: &str) -> NonZeroU32 {
    let calls = match (method.as_str(), path) {
        // The record, the register's head and the notices.
        ("GET", p) if p.starts_with("/agencies/") => 3,
        // The write, then the subject's records again; an objection also each material it
        // may carry.
        ("POST", "/access/objections") => 2 + access::MATERIALS as u32,
        ("POST", "/access/statements") => 2,
        _ => 1,
    };
    NonZeroU32::new(calls).unwrap_or(NonZeroU32::MIN)
}

/// Nothing from outside the site, no inline script, not framed, types as declared; and every
/// `429` says when to come back, whichever limit answered it (the site's or the gateway's).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let limited = response.status() == StatusCode::TOO_MANY_REQUESTS;
    let h = response.headers_mut();
    if limited && !h.contains_key(header::RETRY_AFTER) {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    harden(h);
    response
}

/// What every response of either site says of itself: nothing from elsewhere and no script
/// (unless it set a policy of its own), types as declared, no referrer.
fn harden(h: &mut http::HeaderMap) {
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            ),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/site.css"),
    )
}

async fn not_found(req: Request) -> Response {
    let lang = crate::i18n::lang_of(req.uri());
    page::error(lang, StatusCode::NOT_FOUND, lang.text().not_found)
}
