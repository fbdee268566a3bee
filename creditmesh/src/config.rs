//! Configuration: a pure function of an optional TOML file and `CREDITMESH_*` variables,
//! validated once at start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use creditmesh_storage::DbConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Service names in the order their default ports count up from 7501.
pub const SERVICE_NAMES: [&str; 5] = ["filing", "review", "disclosure", "complaints", "datapush"];

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Trust domain of the SPIFFE IDs in certificates.
    pub trust_domain: String,
    /// Where `dev` keeps its PKI and databases.
    pub data_dir: PathBuf,
    /// CA bundle and this node's certificates (`ca.pem`, `service-NAME.pem`/`.key`).
    /// Defaults to `DATA_DIR/pki`.
    pub pki_dir: Option<PathBuf>,
    /// Where documents are kept, content-addressed: a directory, or `s3://bucket/prefix` for
    /// an S3-compatible store configured by the standard `AWS_*` variables. Defaults to
    /// `DATA_DIR/blobs`.
    pub blob_store: Option<String>,
    pub database: DatabaseConfig,
    pub node: ListenerConfig,
    pub public: ListenerConfig,
    /// Listen address of each service's own mTLS listener (`serve`).
    pub services: BTreeMap<String, ServiceConfig>,
    /// Where each service is reached, by the gateway and by other services' event relays.
    pub backends: BTreeMap<String, BackendConfig>,
    /// Backends serving one tenant's traffic, by division code then service: the gateway
    /// routes a caller of that tenant there instead of to `backends`.
    pub tenant_backends: BTreeMap<String, BTreeMap<String, BackendConfig>>,
    pub events: EventsConfig,
    pub log: LogConfig,
    /// Limits the gateway enforces.
    pub gateway: creditmesh_gateway::LimitsConfig,
    /// The public website (`web`; `dev` starts it too).
    pub web: creditmesh_web::WebConfig,
    /// The authorities' console (`console`; `dev` starts it too).
    pub console: creditmesh_web::console::ConsoleConfig,
    pub calendar: CalendarConfig,
    pub supervision: SupervisionConfig,
    /// Who reviews filings registered in a division the region administers itself (XPCC
    /// cities 6590xx, region-level 6500xx): division code → tenant. Unlisted, the region.
    pub review_routing: BTreeMap<String, String>,
    /// The Measures' own validity (Art. 32).
    pub measures: MeasuresConfig,
    /// How long a stopping node lets in-flight calls finish before cutting them off.
    pub shutdown_grace_ms: u64,
    /// The public register's witnesses, and whether this node is one.
    pub register: creditmesh_disclosure::RegisterConfig,
    /// How complainants are told; by default written as files under `DATA_DIR/notifications`.
    pub notifications: creditmesh_complaints::NotificationsConfig,
    /// The department nodes complaints may be referred to; `dev` adds its demo department.
    pub referrals: creditmesh_complaints::ReferralsConfig,
    /// This node as a department's referral receiver (`creditmesh department`).
    pub department: DepartmentNodeConfig,
    /// Pushed credit information: the catalog and the keys it is sealed with.
    pub datapush: creditmesh_datapush::DataPushConfig,
    /// The operations port of `serve` and `gateway` (plain HTTP: `/livez`, `/readyz`,
    /// `/metrics`).
    pub ops: OpsConfig,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OpsConfig {
    /// Where the operations port listens; unset, it is off. Cluster-internal: it has no TLS
    /// and no authentication, and says nothing a caller could not learn from a probe.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`; `{service}` is replaced by each service's name, so
    /// that services on SQLite get a file each.
    pub url: String,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_ms: u64,
    pub busy_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// `https://host:port`, or a list of them (one per replica). Every address a host resolves
    /// to is a replica (a headless Service's name, say); names are looked up again every few
    /// seconds.
    pub url: Urls,
    /// DNS name in the backend's certificate; defaults to the service name.
    #[serde(default)]
    pub server_name: Option<String>,
}

/// One URL or several.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Urls {
    One(String),
    Many(Vec<String>),
}

impl BackendConfig {
    /// One replica, or every address of one name.
    pub fn at(url: String) -> Self {
        Self {
            url: Urls::One(url),
            server_name: None,
        }
    }

    /// Every URL given.
    pub fn urls(&self) -> Vec<String> {
        match &self.url {
            Urls::One(url) => vec![url.clone()],
            Urls::Many(urls) => urls.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisionConfig {
    pub spot_check_percent: SpotCheckPercent,
    /// Working days after its receipt by which a complaint should be accepted or referred;
    /// past it the complaint shows as overdue (Art. 24 leaves the period open).
    pub complaint_acceptance_working_days: u32,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self {
            spot_check_percent: SpotCheckPercent::default(),
            complaint_acceptance_working_days: 5,
        }
    }
}

/// The Measures take effect on a date their text leaves open ("202x年xx月xx日") and are valid
/// for five years (Art. 32). Until `effective_on` is set no window is enforced, and the start
/// says so.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MeasuresConfig {
    /// YYYY-MM-DD.
    pub effective_on: Option<String>,
    pub validity_years: u32,
}

impl Default for MeasuresConfig {
    fn default() -> Self {
        Self {
            effective_on: None,
            validity_years: 5,
        }
    }
}

impl MeasuresConfig {
    pub fn validity(
        &self,
    ) -> Result<Option<creditmesh_domain::measures::Validity>, (String, String)> {
        let Some(day) = &self.effective_on else {
            return Ok(None);
        };
        let day = creditmesh_domain::calendar::parse_iso_date(day)
            .map_err(|e| ("measures.effective_on".to_owned(), e))?;
        creditmesh_domain::measures::Validity::new(day, self.validity_years)
            .map(Some)
            .map_err(|e| ("measures.validity_years".to_owned(), e))
    }
}

/// The share of each risk tier drawn for inspection (Art. 14), in percent.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SpotCheckPercent {
    pub unset: u32,
    pub low: u32,
    pub medium: u32,
    pub high: u32,
}

impl Default for SpotCheckPercent {
    fn default() -> Self {
        Self {
            unset: 10,
            low: 5,
            medium: 20,
            high: 50,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarConfig {
    /// A directory of calendar files (`national/YEAR.toml`, `regional/xinjiang-YEAR.toml`)
    /// laid over the built-in ones: a file of the same name replaces, a new one adds.
    pub dir: Option<PathBuf>,
}

impl CalendarConfig {
    /// The built-in calendar with the operator's files.
    pub fn load(&self) -> Result<creditmesh_domain::calendar::Calendar> {
        let mut files = Vec::new();
        if let Some(dir) = &self.dir {
            for layer in ["national", "regional"] {
                let sub = dir.join(layer);
                let Ok(entries) = std::fs::read_dir(&sub) else {
                    continue;
                };
                for entry in entries {
                    let path = entry?.path();
                    if path.extension().is_some_and(|e| e == "toml") {
                        let name = format!(
                            "{layer}/{}",
                            path.file_name().unwrap_or_default().to_string_lossy()
                        );
                        let contents = std::fs::read_to_string(&path)
                            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                        files.push((name, contents));
                    }
                }
            }
        }
        creditmesh_domain::calendar::Calendar::with_overrides(files)
            .map_err(|e| anyhow::anyhow!("calendar: {e}"))
    }
}

/// A department's node (`creditmesh department`): it receives the referrals addressed to its
/// department, answers each with a receipt signed by its certificate's key, and passes its
/// acknowledgements and declines to the platform.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DepartmentNodeConfig {
    /// The department's code; its certificate must name the same.
    pub department: String,
    /// Its division (GB/T 2260); its certificate must name the same.
    pub tenant: String,
    /// Listener of the referral receiver (mutual TLS).
    pub listen: SocketAddr,
    /// Its certificate and key in the PKI directory (`NAME.pem`, `NAME.key`).
    pub identity: String,
    /// Its own database; defaults to `sqlite://DATA_DIR/department.sqlite`.
    pub database_url: String,
    /// The platform's node listener, where acknowledgements and declines go.
    pub platform_url: String,
    /// The DNS name in the platform gateway's certificate.
    pub platform_server_name: String,
}

impl Default for DepartmentNodeConfig {
    fn default() -> Self {
        Self {
            department: "market-regulation".into(),
            tenant: "650100".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 7601)),
            identity: "department-node".into(),
            database_url: String::new(),
            platform_url: "https://127.0.0.1:7443".into(),
            platform_server_name: "gateway".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// How often a relay looks for due deliveries when nothing woke it.
    pub poll_interval_ms: u64,
    /// How long the outbox rows a relay claims are its alone; a replica that dies holding
    /// rows holds them this long (its deliveries time out at half of it, 30 s at most).
    pub lease_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `creditmesh=debug`; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for Config {
    fn default() -> Self {
        let services = SERVICE_NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let listen = SocketAddr::from(([127, 0, 0, 1], 7501 + i as u16));
                (n.to_string(), ServiceConfig { listen })
            })
            .collect::<BTreeMap<_, _>>();
        let backends = services
            .iter()
            .map(|(n, s)| {
                (
                    n.clone(),
                    BackendConfig::at(format!("https://{}", s.listen)),
                )
            })
            .collect();
        Self {
            trust_domain: creditmesh_pki::DEFAULT_TRUST_DOMAIN.into(),
            data_dir: PathBuf::from("creditmesh-data"),
            pki_dir: None,
            blob_store: None,
            database: DatabaseConfig::default(),
            node: ListenerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 7443)),
            },
            public: ListenerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            },
            services,
            backends,
            tenant_backends: BTreeMap::new(),
            events: EventsConfig::default(),
            log: LogConfig::default(),
            gateway: Default::default(),
            web: Default::default(),
            console: Default::default(),
            calendar: CalendarConfig::default(),
            supervision: SupervisionConfig::default(),
            review_routing: BTreeMap::new(),
            measures: MeasuresConfig::default(),
            shutdown_grace_ms: 20_000,
            register: Default::default(),
            notifications: Default::default(),
            referrals: Default::default(),
            department: Default::default(),
            datapush: Default::default(),
            ops: OpsConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        let d = DbConfig::default();
        Self {
            url: String::new(),
            max_connections: d.max_connections,
            min_connections: d.min_connections,
            acquire_timeout_ms: d.acquire_timeout_ms,
            busy_timeout_ms: d.busy_timeout_ms,
        }
    }
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1000,
            lease_ms: 60_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

/// Whether a `CREDITMESH_*` variable is a configuration key: `CREDITMESH_CONFIG` names the
/// file, `CREDITMESH_TEST_*` belong to the test suite and `CREDITMESH_TOOLS_*` to the
/// project's scripts.
fn is_config_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key != "config"
        && !key.starts_with("test_")
        && !key.starts_with("tools_")
        && !key.starts_with("example_")
}

impl Config {
    /// Defaults, then the files in order (a table's keys merge, a later value wins), then
    /// `CREDITMESH_*` variables, where `__` separates nesting: `CREDITMESH_DATABASE__URL` sets
    /// `database.url`.
    pub fn load(files: &[impl AsRef<Path>]) -> Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        for path in files {
            let path = path.as_ref();
            if !path.exists() {
                bail!("config file {} does not exist", path.display());
            }
            fig = fig.merge(Toml::file(path));
        }
        fig = fig.merge(
            Env::prefixed("CREDITMESH_")
                .filter(|k| is_config_key(k.as_str()))
                .split("__"),
        );
        let cfg: Config = fig.extract().map_err(|e| {
            let msgs: Vec<String> = e
                .into_iter()
                .map(|e| {
                    let key = e.path.join(".").to_ascii_lowercase();
                    let from = e
                        .metadata
                        .as_ref()
                        .map(|m| format!(" (from {})", m.name))
                        .unwrap_or_default();
                    format!("config key `{key}`: {}{from}", e.kind)
                })
                .collect();
            anyhow::anyhow!(msgs.join("\n"))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Every problem at once, each naming its key.
    pub fn validate(&self) -> Result<()> {
        let mut problems: Vec<(String, String)> = Vec::new();
        if self.trust_domain.is_empty()
            || !self
                .trust_domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            problems.push((
                "trust_domain".into(),
                "must be a non-empty lowercase DNS-like name".into(),
            ));
        }
        if !self.database.url.is_empty() {
            problems.extend(self.db_config("x").validate("database"));
        } else {
            let mut probe = self.db_config("x");
            probe.url = "sqlite://probe".into();
            problems.extend(probe.validate("database"));
        }
        for name in self.services.keys() {
            if !SERVICE_NAMES.contains(&name.as_str()) {
                problems.push((
                    format!("services.{name}"),
                    format!("unknown service; known: {}", SERVICE_NAMES.join(", ")),
                ));
            }
        }
        let tenant_backends = self.tenant_backends.iter().flat_map(|(tenant, m)| {
            m.iter()
                .map(move |(name, b)| (format!("tenant_backends.{tenant}.{name}"), name, b))
        });
        let backends = self
            .backends
            .iter()
            .map(|(name, b)| (format!("backends.{name}"), name, b));
        for (key, name, b) in backends.chain(tenant_backends) {
            if !SERVICE_NAMES.contains(&name.as_str()) {
                problems.push((key.clone(), "unknown service".into()));
            }
            if b.urls().is_empty() {
                problems.push((format!("{key}.url"), "lists no url".into()));
            }
            for url in b.urls() {
                if !url.starts_with("https://") {
                    problems.push((
                        format!("{key}.url"),
                        format!("{url}: must start with https:// (every hop is mutual TLS)"),
                    ));
                } else if let Err(e) = creditmesh_rpc::resolve::Targets::parse(&[url]) {
                    problems.push((format!("{key}.url"), e.to_string()));
                }
            }
        }
        for tenant in self.tenant_backends.keys() {
            if let Err(e) = creditmesh_domain::Tenant::parse_holding(tenant) {
                problems.push((format!("tenant_backends.{tenant}"), e.to_string()));
            }
        }
        for (key, v) in [
            (
                "gateway.max_concurrent_calls",
                self.gateway.max_concurrent_calls,
            ),
            (
                "gateway.max_concurrent_streams",
                self.gateway.max_concurrent_streams,
            ),
            (
                "gateway.max_header_list_bytes",
                self.gateway.max_header_list_bytes,
            ),
            (
                "gateway.backend_connections",
                self.gateway.backend_connections,
            ),
            (
                "gateway.backend_calls_per_connection",
                self.gateway.backend_calls_per_connection,
            ),
        ] {
            if v == 0 {
                problems.push((key.into(), "must be positive".into()));
            }
        }
        let p = &self.supervision.spot_check_percent;
        for (key, v) in [
            ("unset", p.unset),
            ("low", p.low),
            ("medium", p.medium),
            ("high", p.high),
        ] {
            if v > 100 {
                problems.push((
                    format!("supervision.spot_check_percent.{key}"),
                    "must be at most 100".into(),
                ));
            }
        }
        if let Err(bad) = creditmesh_domain::routing::ReviewRouting::new(&self.review_routing) {
            for (code, why) in bad {
                problems.push((format!("review_routing.{code}"), why));
            }
        }
        if let Err(bad) = self.measures.validity() {
            problems.push(bad);
        }
        problems.extend(creditmesh_disclosure::register_config_problems(
            &self.register,
        ));
        problems.extend(creditmesh_datapush::config_problems(&self.datapush));
        let sms = &self.notifications.sms_url;
        if !(sms.is_empty() || sms.starts_with("https://") || sms.starts_with("http://")) {
            problems.push((
                "notifications.sms_url".into(),
                "must be an http:// or https:// url".into(),
            ));
        }
        for (i, d) in self.referrals.departments.iter().enumerate() {
            let key = format!("referrals.departments[{i}]");
            if !creditmesh_domain::department::is_known(&d.department) {
                problems.push((
                    format!("{key}.department"),
                    format!(
                        "unknown department; known: {}",
                        creditmesh_domain::department::CODES.join(", ")
                    ),
                ));
            }
            if let Err(e) = creditmesh_domain::Tenant::parse(&d.tenant) {
                problems.push((format!("{key}.tenant"), e.to_string()));
            }
            if !d.url.starts_with("https://") {
                problems.push((format!("{key}.url"), "must start with https://".into()));
            }
            if d.server_name.is_empty() {
                problems.push((format!("{key}.server_name"), "is required".into()));
            }
        }
        if !creditmesh_domain::department::is_known(&self.department.department) {
            problems.push(("department.department".into(), "unknown department".into()));
        }
        if !(1..=30).contains(&self.supervision.complaint_acceptance_working_days) {
            problems.push((
                "supervision.complaint_acceptance_working_days".into(),
                "must be between 1 and 30".into(),
            ));
        }
        if self.events.poll_interval_ms == 0 {
            problems.push(("events.poll_interval_ms".into(), "must be positive".into()));
        }
        if self.events.lease_ms < 1000 {
            problems.push(("events.lease_ms".into(), "must be at least 1000".into()));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            problems.push(("log.format".into(), "must be text or json".into()));
        }
        if problems.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = problems
            .into_iter()
            .map(|(k, why)| format!("config key `{k}`: {why}"))
            .collect();
        bail!(lines.join("\n"))
    }

    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.shutdown_grace_ms)
    }

    pub fn blob_store(&self) -> String {
        self.blob_store
            .clone()
            .unwrap_or_else(|| self.data_dir.join("blobs").display().to_string())
    }

    /// What the services of this process share.
    pub fn runtime(&self) -> Result<crate::mesh::Runtime> {
        Ok(crate::mesh::Runtime {
            pki_dir: self.pki_dir(),
            trust_domain: self.trust_domain.clone(),
            clock: std::sync::Arc::new(creditmesh_domain::SystemClock),
            calendar: std::sync::Arc::new(self.calendar.load()?),
            blob_store: self.blob_store(),
            staging_dir: self.data_dir.join("staging"),
            measures: self
                .measures
                .validity()
                .map_err(|(key, why)| anyhow::anyhow!("config key `{key}`: {why}"))?,
            services: self.services()?,
        })
    }

    /// Each service's configuration, from its sections.
    pub fn services(&self) -> Result<crate::mesh::Services> {
        use std::sync::Arc;
        let p = &self.supervision.spot_check_percent;
        Ok(crate::mesh::Services {
            filing: creditmesh_filing::Config {
                review_routing: Arc::new(
                    creditmesh_domain::routing::ReviewRouting::new(&self.review_routing)
                        .map_err(|bad| anyhow::anyhow!("review_routing: {bad:?}"))?,
                ),
            },
            review: creditmesh_review::Config {
                spot_check_percent: [p.unset, p.low, p.medium, p.high],
            },
            register: Arc::new(self.register.clone()),
            complaints: creditmesh_complaints::Config {
                acceptance_working_days: self.supervision.complaint_acceptance_working_days,
                referrals: Arc::new(self.referrals.clone()),
                notifications: Arc::new({
                    let mut n = self.notifications.clone();
                    if n.dir.is_empty() {
                        n.dir = self.data_dir.join("notifications").display().to_string();
                    }
                    if n.from.is_empty() {
                        n.from = format!("noreply@{}", self.trust_domain);
                    }
                    n
                }),
            },
            datapush: Arc::new(self.datapush.clone()),
        })
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.pki_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("pki"))
    }

    /// The database settings of one service.
    /// This node as a department's node (`[department]`).
    pub fn department_node(&self) -> Result<creditmesh_department::NodeConfig> {
        let mut database = self.db_config(creditmesh_department::NAME);
        if !self.department.database_url.is_empty() {
            database.url = self.department.database_url.clone();
        } else if !self.database.url.is_empty() && !database.url.starts_with("sqlite:") {
            // A department keeps its own store: never the platform's database by default.
            database.url = format!(
                "sqlite://{}/db/{}.sqlite",
                self.data_dir.display(),
                creditmesh_department::NAME
            );
        }
        Ok(creditmesh_department::NodeConfig {
            department: self.department.department.clone(),
            tenant: creditmesh_domain::Tenant::parse(&self.department.tenant)
                .map_err(|e| anyhow::anyhow!("config key `department.tenant`: {e}"))?,
            listen: self.department.listen,
            pki_dir: self.pki_dir(),
            identity: self.department.identity.clone(),
            trust_domain: self.trust_domain.clone(),
            database,
            clock: std::sync::Arc::new(creditmesh_domain::SystemClock),
        })
    }

    pub fn db_config(&self, service: &str) -> DbConfig {
        let url = if self.database.url.is_empty() {
            format!("sqlite://{}/db/{{service}}.sqlite", self.data_dir.display())
        } else {
            self.database.url.clone()
        };
        DbConfig {
            url: url.replace("{service}", service),
            max_connections: self.database.max_connections,
            min_connections: self.database.min_connections,
            acquire_timeout_ms: self.database.acquire_timeout_ms,
            busy_timeout_ms: self.database.busy_timeout_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_every_bad_key() {
        let mut cfg = Config::default();
        cfg.database.url = "mysql://x".into();
        cfg.database.max_connections = 0;
        cfg.log.format = "xml".into();
        cfg.review_routing.insert("653101".into(), "654200".into());
        cfg.supervision.complaint_acceptance_working_days = 0;
        cfg.register.cosignatures_required = 1;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("config key `supervision.complaint_acceptance_working_days`"),
            "{err}"
        );
        assert!(
            err.contains("config key `register.cosignatures_required`"),
            "{err}"
        );
        assert!(err.contains("config key `review_routing.653101`"), "{err}");
        assert!(err.contains("config key `database.url`"), "{err}");
        assert!(
            err.contains("config key `database.max_connections`"),
            "{err}"
        );
        assert!(err.contains("config key `log.format`"), "{err}");
    }

    #[test]
    fn a_node_file_after_the_shared_one_adds_and_overrides_key_by_key() {
        let dir = std::env::temp_dir().join(format!("creditmesh-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (shared, node) = (dir.join("config.toml"), dir.join("node.toml"));
        std::fs::write(
            &shared,
            "pki_dir = \"/pki\"\n[backends.filing]\nurl = \"https://filing:7501\"\n\
             [backends.review]\nurl = \"https://review:7502\"\n",
        )
        .unwrap();
        std::fs::write(
            &node,
            "[backends.review]\nurl = \"https://review.kashgar:7502\"\n\
             [register]\ncosignatures_required = 0\nwitness_name = \"witness.kashgar/w1\"\n",
        )
        .unwrap();
        let cfg = Config::load(&[&shared, &node]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(cfg.pki_dir(), std::path::PathBuf::from("/pki"));
        assert_eq!(cfg.backends["filing"].urls(), vec!["https://filing:7501"]);
        assert_eq!(
            cfg.backends["review"].urls(),
            vec!["https://review.kashgar:7502"]
        );
        assert_eq!(cfg.register.witness_name, "witness.kashgar/w1");
        let missing = Config::load(&[shared]).unwrap_err().to_string();
        assert!(missing.contains("does not exist"), "{missing}");
    }

    #[test]
    fn a_backend_is_one_url_or_a_list_of_them() {
        let file = "[backends.filing]\nurl = [\"https://10.0.0.2:7501\", \"https://10.0.0.3:7501\"]\n\
                    [backends.review]\nurl = []\n\
                    [backends.disclosure]\nurl = [\"https://a:1\", \"http://b:2\", \"https://c\"]\n";
        let cfg: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(file))
            .extract()
            .unwrap();
        assert_eq!(
            cfg.backends["filing"].urls(),
            vec!["https://10.0.0.2:7501", "https://10.0.0.3:7501"]
        );
        assert_eq!(
            cfg.backends["complaints"].urls(),
            vec!["https://127.0.0.1:7504"]
        );
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("config key `backends.review.url`: lists no url"),
            "{err}"
        );
        assert!(
            err.contains("`backends.disclosure.url`: http://b:2: must start"),
            "{err}"
        );
        assert!(
            err.contains("`backends.disclosure.url`: https://c: no port"),
            "{err}"
        );
        assert!(!err.contains("backends.filing"), "{err}");
    }

    #[test]
    fn test_suite_variables_are_not_configuration() {
        assert!(!is_config_key("TEST_S3_URL"));
        assert!(!is_config_key("test_database_url"));
        assert!(!is_config_key("CONFIG"));
        assert!(!is_config_key("TOOLS_VENV"));
        assert!(is_config_key("DATABASE__URL"));
    }

    #[test]
    fn sqlite_default_gives_each_service_a_file() {
        let cfg = Config::default();
        assert_eq!(
            cfg.db_config("review").url,
            "sqlite://creditmesh-data/db/review.sqlite"
        );
    }
}
