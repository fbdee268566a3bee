//! What each service crate hands the binary: its name, its tables and its routes.

use std::sync::Arc;

use creditmesh_domain::calendar::Calendar;
use creditmesh_storage::{Blobs, Infra, Migration};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::context::Authn;
use crate::store::ServiceStore;

/// Everything the binary needs to run one service.
pub struct ServiceDef {
    /// Short name: table prefix, consumer name and certificate subject (`filing`, …).
    pub name: &'static str,
    /// Fully qualified gRPC service name, as health and the gateway know it.
    pub grpc_name: &'static str,
    /// The service's own migrations, numbered from 100.
    pub migrations: fn() -> Vec<Migration>,
    /// The business service and the event sink, ready to serve.
    pub routes: fn(ServiceEnv) -> Routes,
    /// Starts the service's timers and jobs, which stop with the token.
    pub background: fn(ServiceEnv, CancellationToken),
    /// What an operator watches of the service beyond its calls and outbox, read from its
    /// database when the operations port is scraped.
    pub gauges: fn(ServiceEnv) -> futures::future::BoxFuture<'static, Vec<Gauge>>,
}

/// For services without timers.
pub fn no_background(_: ServiceEnv, _: CancellationToken) {}

/// One value a service reports on the operations port (`/metrics`), labelled by the service
/// and by `labels`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// A Prometheus name, `creditmesh_…`.
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// For services with nothing to report beyond their calls and outbox.
pub fn no_gauges(_: ServiceEnv) -> futures::future::BoxFuture<'static, Vec<Gauge>> {
    Box::pin(async { Vec::new() })
}

/// What a service is given to run with.
#[derive(Clone)]
pub struct ServiceEnv {
    pub store: ServiceStore,
    pub authn: Authn,
    /// The working-day calendar, built-in data with the operator's files.
    pub calendar: Arc<Calendar>,
    /// Where documents are kept.
    pub blobs: Blobs,
    /// Spot-check ratio per risk tier, in percent: unset, low, medium, high (Art. 14).
    pub spot_check_percent: [u32; 4],
    /// Working days after its receipt by which a complaint should be accepted or referred
    /// (Art. 24 leaves the period open).
    pub complaint_acceptance_working_days: u32,
    /// Who reviews a filing, by the division of its registered address (Art. 10).
    pub review_routing: Arc<creditmesh_domain::routing::ReviewRouting>,
    /// The Measures' validity window (Art. 32); `None` while no effective date is configured.
    pub measures: Option<creditmesh_domain::measures::Validity>,
    /// The node's PKI directory (keys beside the certificates, such as the register's log key).
    pub pki_dir: std::path::PathBuf,
    /// The public register's witnesses, and whether this node is one.
    pub register: Arc<RegisterConfig>,
    /// How complainants are told (Art. 24).
    pub notifications: Arc<NotificationsConfig>,
    /// The department nodes complaints are referred to (Art. 24).
    pub referrals: Arc<ReferralsConfig>,
    /// What agencies may push and how it is kept (Art. 20, 23, 27).
    pub datapush: Arc<DataPushConfig>,
}

/// Pushed credit information (`[datapush]`): the catalog of categories, and the keys it is
/// sealed with at rest.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataPushConfig {
    /// The categories agencies may push; none configured: the built-in demonstration catalog.
    pub categories: Vec<CategoryConfig>,
    /// Key-encryption keys by tenant (a division code, or `*` for every tenant without its
    /// own), newest first, each `ID:BASE64` of 32 bytes. The newest seals; every listed key
    /// still opens what it sealed, so a key rotates by putting the new one first. None
    /// configured: one generated key in the PKI directory (`datapush-kek.key`).
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
    /// Base64 of 32 bytes keying the hashes that find duplicates, a subject's records and
    /// access codes without opening anything. Unset: the one in the PKI directory
    /// (`datapush-index.key`).
    pub index_key: String,
    /// During a rotation of the index key, the key it moves to, looked up while `index_key`
    /// still writes. Unset: `datapush-index.next.key` in the PKI directory, when there.
    pub next_index_key: String,
    /// During a rotation, the key it moved from, looked up until every row is hashed again
    /// under `index_key`. Unset: `datapush-index.previous.key` in the PKI directory, when there.
    pub previous_index_key: String,
}

/// One category of the catalog (`[[datapush.categories]]`).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CategoryConfig {
    pub code: String,
    pub description: String,
    /// What the subject is shown the category as, in Chinese and English (the code when unset).
    pub name_zh: String,
    pub name_en: String,
    /// How long the platform keeps a record after it was collected, in months.
    pub retention_months: u32,
    /// Why it is kept that long: the rule or policy the term comes from, shown to the subject.
    /// Required. Art. 20 obliges agencies to keep their own service archives (信用服务档案) as
    /// national and regional rules say; it sets no term for the platform.
    pub retention_basis: String,
    /// The same in Chinese, for the Chinese pages (unset: `retention_basis` as written).
    pub retention_basis_zh: String,
    /// Whether its records hold personal information.
    pub personal_data: bool,
    /// Whose records it holds: `person`, `organisation` or `any`.
    pub subjects: String,
    /// The fields of a record's JSON content; no other field is accepted.
    pub fields: Vec<FieldConfig>,
}

/// One field of a category's content.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FieldConfig {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date` (YYYY-MM-DD).
    pub r#type: String,
    pub required: bool,
    /// What the subject is shown the field as, in Chinese and English (the name when unset).
    pub label_zh: String,
    pub label_en: String,
}

/// The department nodes referrals are delivered to (`[[referrals.departments]]`). A regulator
/// may refer a complaint only to a department listed here.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReferralsConfig {
    pub departments: Vec<DepartmentPeer>,
}

/// One department node: which department of which division, and where it listens.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DepartmentPeer {
    /// The department's code, as in its certificate (`market-regulation`, …).
    pub department: String,
    /// Its division (GB/T 2260), as in its certificate.
    pub tenant: String,
    /// `https://host:port` of its referral receiver.
    pub url: String,
    /// The DNS name in its node's certificate.
    pub server_name: String,
}

impl ReferralsConfig {
    /// The node of `department` in `tenant`.
    pub fn node(&self, department: &str, tenant: &str) -> Option<&DepartmentPeer> {
        self.departments
            .iter()
            .find(|d| d.department == department && d.tenant == tenant)
    }
}

/// How complainants are told (`[notifications]`): by e-mail over SMTP when `smtp_url` is set,
/// else written as files into `dir` (the development default).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// `smtp://host:port` (plain, for a relay on the host), `smtp+starttls://…` or
    /// `smtps://…`; credentials as `user:password@` in the URL.
    pub smtp_url: String,
    /// The sender of the mails.
    pub from: String,
    /// Where notifications are written for a channel with no adapter configured.
    pub dir: String,
    /// An SMS gateway: complainants who left a mobile number are told by a `POST` of
    /// `{"id", "to", "text"}` (JSON) to this URL; any 2xx answer is taken as sent.
    pub sms_url: String,
    /// Sent as `Authorization: Bearer …` to the SMS gateway, when set.
    pub sms_token: String,
}

/// The register's witnesses (`[register]`).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RegisterConfig {
    /// Witnesses asked to cosign each checkpoint the register signs.
    pub witnesses: Vec<WitnessPeer>,
    /// The register serves the newest checkpoint carrying at least this many cosignatures.
    pub cosignatures_required: u32,
    /// Makes this node's disclosure service a witness of the log with these verifier keys
    /// (C2SP signed-note vkeys, one per line: across a rotation of the log's key, the old and
    /// the new); empty: not a witness.
    pub witness_of: String,
    /// This witness's name (a schema-less URL); its key is `witness.key` in the PKI directory.
    pub witness_name: String,
}

/// A witness the register submits its checkpoints to.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WitnessPeer {
    /// The witness node's disclosure service, `https://host:port`.
    pub url: String,
    /// The name in its certificate.
    pub server_name: String,
    /// Its cosigner key (`<name>+<key id>+<base64 key>`).
    pub verifier_key: String,
}

impl ServiceDef {
    /// Infrastructure tables first, then the service's own.
    pub fn all_migrations(&self) -> Vec<Migration> {
        let mut all = Infra::new(self.name).migrations();
        all.extend((self.migrations)());
        all
    }
}
