//! Harness of the end-to-end suite: a fresh database per test on SQLite or PostgreSQL, the
//! whole mesh on port 0, and clients holding the development certificates.

pub mod browser;
pub mod cluster;

/// A TCP port on 127.0.0.1 free a moment ago, for a process the test starts to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use creditmesh::mesh::Runtime;
use creditmesh::{Mesh, MeshOptions};
use creditmesh_domain::calendar::Calendar;
use creditmesh_domain::{Clock, SystemClock};
use creditmesh_gateway::limits::{LimitsConfig, RateLimits};
use creditmesh_storage::DbConfig;
use sqlx::Connection;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

pub use creditmesh_pki::DEFAULT_TRUST_DOMAIN as TRUST_DOMAIN;

/// Base URL of a PostgreSQL server the suite may create databases on.
pub const PG_ENV: &str = "CREDITMESH_TEST_DATABASE_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The PostgreSQL base URL, or `None` when this run has none. Under CI a missing URL fails
/// the test instead of skipping it.
pub fn postgres_url() -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{PG_ENV} must be set under CI: the PostgreSQL run may not be skipped");
            }
            eprintln!("skipped: {PG_ENV} is not set");
            None
        }
    }
}

/// An `s3://bucket` of an S3-compatible server the suite may write to, or `None` when this
/// run has none. Under CI a missing one fails the test instead of skipping it.
pub fn s3_url() -> Option<String> {
    match std::env::var("CREDITMESH_TEST_S3_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CREDITMESH_TEST_S3_URL must be set under CI: the S3 run may not be skipped"
                );
            }
            eprintln!("skipped: CREDITMESH_TEST_S3_URL is not set");
            None
        }
    }
}

/// An SMTP server that keeps what it receives (its URL, and the Maildir it delivers into), or
/// `None` when this run has none. Under CI a missing one fails the test instead of skipping it.
pub fn smtp() -> Option<(String, PathBuf)> {
    match (
        std::env::var("CREDITMESH_TEST_SMTP_URL"),
        std::env::var("CREDITMESH_TEST_SMTP_MAILDIR"),
    ) {
        (Ok(url), Ok(dir)) if !url.is_empty() && !dir.is_empty() => Some((url, dir.into())),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CREDITMESH_TEST_SMTP_URL must be set under CI: the SMTP run may not be skipped"
                );
            }
            eprintln!("skipped: CREDITMESH_TEST_SMTP_URL is not set");
            None
        }
    }
}

/// Every message in a Maildir (`new/` and `cur/`), raw.
pub fn maildir_messages(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for e in entries.flatten() {
                if let Ok(text) = std::fs::read_to_string(e.path()) {
                    out.push(text);
                }
            }
        }
    }
    out
}

/// The role the services connect as on PostgreSQL, as in production: neither superuser nor
/// `BYPASSRLS`, so row-level security binds in every test. It owns the test's database and
/// runs the migrations too.
pub const APP_ROLE: &str = "creditmesh_app";

/// A database of its own for one test: per-service SQLite files in `dir`, or a new
/// PostgreSQL database owned by [`APP_ROLE`], which the URL connects as. The URL keeps
/// `{service}` for the mesh to fill in.
pub async fn fresh_database(engine: Engine, dir: &Path) -> Option<DbConfig> {
    let url = match engine {
        Engine::Sqlite => format!("sqlite://{}/db/{{service}}.sqlite", dir.display()),
        Engine::Postgres => {
            let base = postgres_url()?;
            let name = format!("cmtest_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .expect("connecting to the test PostgreSQL server");
            ensure_app_role(&mut conn).await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {name} OWNER {APP_ROLE}"
            )))
            .execute(&mut conn)
            .await
            .expect("creating a test database");
            conn.close().await.ok();
            with_user(&with_database(&base, &name), APP_ROLE)
        }
    };
    Some(DbConfig {
        url,
        max_connections: 4,
        ..DbConfig::default()
    })
}

/// Creates [`APP_ROLE`] unless it exists; tests starting at once may race to create it.
async fn ensure_app_role(conn: &mut sqlx::PgConnection) {
    let create = format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN \
         CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS; END IF; END $$"
    );
    for _ in 0..5 {
        if sqlx::raw_sql(sqlx::AssertSqlSafe(create.clone()))
            .execute(&mut *conn)
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("could not create the role {APP_ROLE}");
}

/// `url` connecting as `user` (no password: the test server trusts local connections).
fn with_user(url: &str, user: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let host_part = rest.split('/').next().unwrap_or_default();
    let rest = match host_part.rsplit_once('@') {
        Some((_, host)) => rest.replacen(host_part, host, 1),
        None => rest.to_owned(),
    };
    format!("{scheme}://{user}@{rest}")
}

/// `base` with its database name replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (base, String::new()),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = head[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(head.len());
    format!("{}/{name}{query}", &head[..host_end])
}

/// A clock the test sets; it stands still unless moved.
pub struct TestClock(std::sync::atomic::AtomicI64);

impl TestClock {
    pub fn now() -> Self {
        Self(std::sync::atomic::AtomicI64::new(SystemClock.now_micros()))
    }

    /// 10:00 China Standard Time on `date`.
    pub fn at(date: time::Date) -> Self {
        let clock = Self(std::sync::atomic::AtomicI64::new(0));
        clock.set(date);
        clock
    }

    /// Moves the clock on by `by`.
    pub fn advance(&self, by: Duration) {
        self.0
            .fetch_add(by.as_micros() as i64, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn set(&self, date: time::Date) {
        let days = i64::from(date.to_julian_day() - 2_440_588);
        let micros = (days * 86_400 + 2 * 3600) * 1_000_000;
        self.0.store(micros, std::sync::atomic::Ordering::SeqCst);
    }
}

impl creditmesh_domain::Clock for TestClock {
    fn now(&self) -> std::time::SystemTime {
        let micros = self.0.load(std::sync::atomic::Ordering::SeqCst);
        std::time::UNIX_EPOCH + Duration::from_micros(micros.max(0) as u64)
    }
}

/// Gateway limits with every rate limit off and room for the suites' bursts of concurrent
/// calls from one principal.
fn unlimited() -> LimitsConfig {
    LimitsConfig {
        rate_per_second: RateLimits::off(),
        max_calls_per_caller: 1024,
        max_calls_per_tenant: 1024,
        ..LimitsConfig::default()
    }
}

/// The whole mesh on port 0 with a fresh PKI and database.
pub struct TestMesh {
    pub mesh: Mesh,
    pub pki_dir: PathBuf,
    pub engine: Engine,
    pub db: DbConfig,
    _dir: tempfile::TempDir,
}

impl TestMesh {
    /// `None` when the engine is not available in this run. Rate limits are off.
    pub async fn start(engine: Engine) -> Option<Self> {
        Self::start_with(engine, unlimited()).await
    }

    /// Like [`Self::start`], with the gateway's limits given.
    pub async fn start_with(engine: Engine, limits: LimitsConfig) -> Option<Self> {
        Self::start_full(engine, limits, None).await
    }

    /// Like [`Self::start`], with documents kept in `blob_store` (a directory or `s3://…`).
    pub async fn start_with_blobs(engine: Engine, blob_store: String) -> Option<Self> {
        Self::start_full(engine, unlimited(), Some(blob_store)).await
    }

    /// Like [`Self::start`], with every service reading the time from `clock`.
    pub async fn start_at(engine: Engine, clock: Arc<TestClock>) -> Option<Self> {
        Self::start_clocked(engine, unlimited(), None, clock, |_| {}).await
    }

    /// Like [`Self::start_at`], with the runtime the services share adjusted by `configure`.
    pub async fn start_configured(
        engine: Engine,
        clock: Arc<TestClock>,
        configure: impl FnOnce(&mut Runtime),
    ) -> Option<Self> {
        Self::start_clocked(engine, unlimited(), None, clock, configure).await
    }

    async fn start_full(
        engine: Engine,
        limits: LimitsConfig,
        blob_store: Option<String>,
    ) -> Option<Self> {
        Self::start_clocked(
            engine,
            limits,
            blob_store,
            Arc::new(TestClock::now()),
            |_| {},
        )
        .await
    }

    async fn start_clocked(
        engine: Engine,
        limits: LimitsConfig,
        blob_store: Option<String>,
        clock: Arc<TestClock>,
        configure: impl FnOnce(&mut Runtime),
    ) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = fresh_database(engine, dir.path()).await?;
        let pki_dir = dir.path().join("pki");
        creditmesh_pki::ensure_dev_pki(&pki_dir, TRUST_DOMAIN).expect("dev pki");
        let mut rt = runtime(&pki_dir, dir.path());
        rt.clock = clock;
        if let Some(store) = blob_store {
            rt.blob_store = store;
        }
        configure(&mut rt);
        let mesh = creditmesh::start_mesh(MeshOptions {
            runtime: rt,
            database: db.clone(),
            node_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            poll_interval: Duration::from_millis(200),
            limits,
        })
        .await
        .expect("mesh starts");
        Some(Self {
            mesh,
            pki_dir,
            engine,
            db,
            _dir: dir,
        })
    }

    /// A channel to the node listener presenting the development certificate `name`.
    pub async fn node(&self, name: &str) -> Channel {
        mtls(self.mesh.node_addr, &self.pki_dir, name).await
    }

    /// A channel to the public listener (no client certificate).
    pub async fn public(&self) -> Channel {
        server_tls(self.mesh.public_addr, &self.pki_dir).await
    }

    pub fn service_addr(&self, name: &str) -> SocketAddr {
        self.mesh
            .services
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.addr)
            .expect("service runs")
    }

    /// Graceful shutdown, as on SIGTERM.
    pub async fn stop(self) {
        self.mesh.shutdown(Duration::from_secs(5)).await;
    }

    /// Issues a client certificate `name` for `principal` from the test CA.
    pub fn issue(&self, name: &str, principal: creditmesh_domain::Principal) {
        creditmesh_pki::Ca::load(&self.pki_dir)
            .expect("test ca")
            .issue(
                &self.pki_dir,
                TRUST_DOMAIN,
                &creditmesh_pki::LeafSpec {
                    name: name.into(),
                    principal,
                    dns_names: vec![],
                    ip_addresses: vec![],
                    usage: creditmesh_pki::Usage::Client,
                    lifetime_days: 1,
                },
            )
            .expect("issue");
    }

    /// Another instance of `service` on this mesh's database: a second replica, or the
    /// service started again with what `configure` changes (new calendar data, say). It reads
    /// the time from `clock` and stops when `stop` is cancelled or the replica is dropped.
    pub async fn replica(
        &self,
        service: &str,
        clock: Arc<TestClock>,
        configure: impl FnOnce(&mut Runtime),
    ) -> Replica {
        self.replica_on(
            service,
            clock,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            configure,
        )
        .await
    }

    /// [`Self::replica`] listening on `listen`.
    pub async fn replica_on(
        &self,
        service: &str,
        clock: Arc<TestClock>,
        listen: SocketAddr,
        configure: impl FnOnce(&mut Runtime),
    ) -> Replica {
        let blobs = tempfile::tempdir().expect("temp dir");
        let mut runtime = runtime(&self.pki_dir, blobs.path());
        runtime.clock = clock;
        configure(&mut runtime);
        let defs = creditmesh::mesh::all_services(&runtime.services);
        let def = defs
            .iter()
            .find(|d| d.name == service)
            .expect("a service of the mesh");
        let mut db = self.db.clone();
        db.url = self.db_url(service);
        let stop = tokio_util::sync::CancellationToken::new();
        let running = creditmesh::mesh::start_service(def, &db, &runtime, listen, stop.clone())
            .await
            .expect("the replica starts");
        Replica {
            _running: running,
            stop,
            _blobs: blobs,
        }
    }

    /// The database URL of one service, as the services connect (on PostgreSQL as
    /// [`APP_ROLE`]).
    pub fn db_url(&self, service: &str) -> String {
        self.db.url.replace("{service}", service)
    }

    /// The database URL of one service as the test server's administrator, for what only an
    /// administrator may do (creating roles).
    pub fn admin_db_url(&self, service: &str) -> String {
        match self.engine {
            Engine::Postgres => admin_url(&self.db.url).unwrap_or_else(|| self.db_url(service)),
            Engine::Sqlite => self.db_url(service),
        }
    }
}

/// The PostgreSQL database `url` names, reached as the test server's administrator; `None`
/// without a test server.
pub fn admin_url(url: &str) -> Option<String> {
    let name = url.rsplit('/').next().unwrap_or_default();
    let name = name.split('?').next().unwrap_or_default();
    Some(with_database(&postgres_url()?, name))
}

/// One message an [`SmsGateway`] received: its `Authorization` header and JSON body.
#[derive(Debug, Clone)]
pub struct TextMessage {
    pub authorization: String,
    pub body: serde_json::Value,
}

/// An SMS gateway's HTTP interface on loopback that keeps what it is sent and answers 200.
pub struct SmsGateway {
    pub url: String,
    pub received: Arc<std::sync::Mutex<Vec<TextMessage>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl SmsGateway {
    pub async fn start() -> Self {
        use http_body_util::BodyExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/send", listener.local_addr().unwrap());
        let received: Arc<std::sync::Mutex<Vec<TextMessage>>> = Default::default();
        let kept = received.clone();
        let server = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let kept = kept.clone();
                            async move {
                                let authorization = req
                                    .headers()
                                    .get("authorization")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned();
                                let bytes = req.into_body().collect().await?.to_bytes();
                                let body = serde_json::from_slice(&bytes)
                                    .unwrap_or(serde_json::Value::Null);
                                kept.lock().unwrap().push(TextMessage {
                                    authorization,
                                    body,
                                });
                                Ok::<_, hyper::Error>(hyper::Response::new(
                                    http_body_util::Full::new(bytes::Bytes::from_static(b"{}")),
                                ))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Self {
            url,
            received,
            _server: server,
        }
    }

    pub fn messages(&self) -> Vec<TextMessage> {
        self.received.lock().unwrap().clone()
    }
}

/// A loopback address nothing listens on (yet).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// The demo department (Urumqi market regulation) as the complaints service finds it at `addr`.
pub fn demo_department(addr: SocketAddr) -> creditmesh_complaints::DepartmentPeer {
    creditmesh_complaints::DepartmentPeer {
        department: "market-regulation".into(),
        tenant: "650100".into(),
        url: format!("https://{addr}"),
        server_name: "department".into(),
    }
}

/// A department's node beside a test's mesh, with a store of its own; it stops when dropped.
pub struct DepartmentNode {
    pub addr: SocketAddr,
    pub db: creditmesh_storage::Db,
    pub config: creditmesh_department::NodeConfig,
    stop: tokio_util::sync::CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for DepartmentNode {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestMesh {
    /// Starts a department's node on `listen` with the certificate `identity` (the demo's is
    /// `department-node`), for `department` of `tenant`, on this test's engine.
    pub async fn department_node(
        &self,
        listen: SocketAddr,
        identity: &str,
        department: &str,
        tenant: &str,
    ) -> DepartmentNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut database = fresh_database(self.engine, dir.path())
            .await
            .expect("the engine of the mesh");
        database.url = database.url.replace("{service}", "department");
        let config = creditmesh_department::NodeConfig {
            department: department.into(),
            tenant: creditmesh_domain::Tenant::parse(tenant).expect("a tenant"),
            listen,
            pki_dir: self.pki_dir.clone(),
            identity: identity.into(),
            trust_domain: TRUST_DOMAIN.into(),
            database,
            clock: Arc::new(SystemClock),
        };
        let stop = tokio_util::sync::CancellationToken::new();
        let running = creditmesh_department::start(&config, stop.clone())
            .await
            .expect("the department node starts");
        DepartmentNode {
            addr: running.addr,
            db: running.db,
            config,
            stop,
            _dir: dir,
        }
    }
}

/// A service started beside a test's mesh; it stops when dropped.
pub struct Replica {
    _running: creditmesh::mesh::RunningService,
    stop: tokio_util::sync::CancellationToken,
    _blobs: tempfile::TempDir,
}

impl Replica {
    /// Where the replica listens.
    pub fn addr(&self) -> SocketAddr {
        self._running.addr
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Xinjiang's 2026 days as a corrected notice would settle them: Eid al-Adha 27-31 May off, with
/// Sunday 24 May worked, and nothing left open.
pub fn settled_2026_calendar() -> Calendar {
    Calendar::with_overrides([(
        "regional/xinjiang-2026.toml".to_owned(),
        "year = 2026\nregion = \"650000\"\nsource = \"test notice\"\n\
         holidays = [{ date = \"2026-05-27\", name = \"a\" }, { date = \"2026-05-28\", name = \"a\" }, \
         { date = \"2026-05-29\", name = \"a\" }, { date = \"2026-05-30\", name = \"a\" }, \
         { date = \"2026-05-31\", name = \"a\" }]\n\
         working_days = [{ date = \"2026-05-24\", name = \"make-up day\" }]\n"
            .to_owned(),
    )])
    .expect("a valid calendar file")
}

/// The built-in calendar with 2027 settled by test notices (national and Xinjiang's), its days
/// off `days_off` (YYYY-MM-DD) besides the weekends.
pub fn calendar_2027(days_off: &[&str]) -> Calendar {
    let holidays = days_off
        .iter()
        .map(|d| format!("{{ date = \"{d}\", name = \"test day\" }}"))
        .collect::<Vec<_>>()
        .join(", ");
    Calendar::with_overrides([
        (
            "national/2027.toml".to_owned(),
            format!(
                "year = 2027\nsource = \"test notice\"\nholidays = [{holidays}]\n\
                 working_days = []\n"
            ),
        ),
        (
            "regional/xinjiang-2027.toml".to_owned(),
            "year = 2027\nregion = \"650000\"\nsource = \"test notice\"\nholidays = []\n\
             working_days = []\n"
                .to_owned(),
        ),
    ])
    .expect("valid calendar files")
}

/// What the services of a test share: the PKI in `pki_dir`, blobs under `dir`.
pub fn runtime(pki_dir: &Path, dir: &Path) -> Runtime {
    Runtime {
        pki_dir: pki_dir.to_owned(),
        trust_domain: TRUST_DOMAIN.into(),
        clock: Arc::new(SystemClock),
        calendar: Arc::new(Calendar::builtin()),
        blob_store: dir.join("blobs").display().to_string(),
        staging_dir: dir.join("staging"),
        measures: None,
        services: creditmesh::mesh::Services {
            review: creditmesh_review::Config {
                spot_check_percent: [10, 5, 20, 50],
            },
            complaints: creditmesh_complaints::Config {
                acceptance_working_days: 5,
                notifications: Arc::new(creditmesh_complaints::NotificationsConfig {
                    smtp_url: String::new(),
                    from: "noreply@creditmesh.xinjiang".into(),
                    dir: dir.join("notifications").display().to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        },
    }
}

/// A connected mTLS channel to `addr` with the certificate `name` from `pki_dir`.
pub async fn mtls(addr: SocketAddr, pki_dir: &Path, name: &str) -> Channel {
    try_mtls(addr, pki_dir, name).await.expect("mtls connect")
}

pub async fn try_mtls(
    addr: SocketAddr,
    pki_dir: &Path,
    name: &str,
) -> Result<Channel, tonic::transport::Error> {
    try_mtls_files(
        addr,
        &pki_dir.join("ca.pem"),
        &pki_dir.join(format!("{name}.pem")),
        &pki_dir.join(format!("{name}.key")),
    )
    .await
}

/// Like [`try_mtls`] with each file named.
pub async fn try_mtls_files(
    addr: SocketAddr,
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Channel, tonic::transport::Error> {
    let read = |f: &Path| std::fs::read_to_string(f).expect("pki file");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)))
        .identity(Identity::from_pem(read(cert), read(key)))
        .domain_name("localhost");
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)?
        .connect()
        .await
}

/// A connected channel to `addr` that verifies the server but presents no certificate.
pub async fn server_tls(addr: SocketAddr, pki_dir: &Path) -> Channel {
    try_server_tls(addr, pki_dir).await.expect("tls connect")
}

pub async fn try_server_tls(
    addr: SocketAddr,
    pki_dir: &Path,
) -> Result<Channel, tonic::transport::Error> {
    let ca = std::fs::read_to_string(pki_dir.join("ca.pem")).expect("ca.pem");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)?
        .connect()
        .await
}

/// TLS towards the public listener as a browser would: the CA in `pki_dir`, no client
/// certificate, the one ALPN protocol `alpn`.
pub fn public_tls_config(pki_dir: &Path, alpn: &[u8]) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls::pki_types::CertificateDer::pem_file_iter(pki_dir.join("ca.pem")).expect("ca.pem")
    {
        roots.add(cert.expect("a CA certificate")).expect("a root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs one scalar query against a service's database.
pub async fn scalar_i64(url: &str, sql: &'static str) -> i64 {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    let v: i64 = sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .expect("query");
    conn.close().await.ok();
    v
}

/// Every value of the one column `sql` selects.
pub async fn column_i64(url: &str, sql: &'static str) -> Vec<i64> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    let v: Vec<i64> = sqlx::query_scalar(sql)
        .fetch_all(&mut conn)
        .await
        .expect("query");
    conn.close().await.ok();
    v
}

/// `GET url` (`https://127.0.0.1:port/path`) over HTTP/1.1, presenting the certificate `name`
/// of `pki_dir` (or none): as a browser holding that certificate would. The status, the
/// headers and the body.
pub async fn https_get_as(
    pki_dir: &Path,
    name: Option<&str>,
    url: &str,
) -> (u16, http::HeaderMap, Vec<u8>) {
    use http_body_util::BodyExt;
    use rustls::pki_types::pem::PemObject;
    let uri: http::Uri = url.parse().expect("a url");
    let authority = uri.authority().expect("host and port").to_string();
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls::pki_types::CertificateDer::pem_file_iter(pki_dir.join("ca.pem")).expect("ca.pem")
    {
        roots.add(cert.expect("a CA certificate")).expect("a root");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots);
    let mut config = match name {
        Some(name) => {
            let chain = rustls::pki_types::CertificateDer::pem_file_iter(
                pki_dir.join(format!("{name}.pem")),
            )
            .expect("cert")
            .collect::<Result<Vec<_>, _>>()
            .expect("cert parses");
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(
                pki_dir.join(format!("{name}.key")),
            )
            .expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .expect("handshake");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("http/1.1");
    tokio::spawn(conn);
    let request = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, &authority)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.expect("a response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (status, headers, body.to_vec())
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_user() {
        assert_eq!(
            super::with_user("postgres://postgres@127.0.0.1:5432/x", "app"),
            "postgres://app@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::with_user("postgres://u:pw@h:1/x?sslmode=disable", "app"),
            "postgres://app@h:1/x?sslmode=disable"
        );
        assert_eq!(
            super::with_user("postgres://h:1/x", "app"),
            "postgres://app@h:1/x"
        );
    }

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h:1/db?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://u@h:1", "x"),
            "postgres://u@h:1/x"
        );
    }
}
