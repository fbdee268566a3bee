//! A department's node (Art. 24): it receives the complaints regulators refer to its
//! department, keeps its own record of them with the signed receipt it gave for each, and
//! passes the department's acknowledgements and declines to the platform.

mod grpc;
mod receiving;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use creditmesh_domain::{Clock, PrincipalKind, Tenant};
use creditmesh_pki::{ClientAuth, ClientTls, ServerTls, TlsFiles, receipt};
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::complaints::v1::{
    AcknowledgeReferralRequest, DeclineReferralRequest, Referral,
};
use creditmesh_proto::complaints::{v1, v2};
use creditmesh_rpc::Authn;
use creditmesh_rpc::connections::{Budget, ConnectionLimits, Connections};
use creditmesh_rpc::listener::{bind_tls, spawn_reloader};
use creditmesh_storage::{Db, DbConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Server;

pub const NAME: &str = "department";
/// The receiver's two versions: v2 (the referral's bytes) and v1 (as first published).
pub const GRPC_NAMES: [&str; 2] = [
    "creditmesh.complaints.v2.ReferralReceiverService",
    "creditmesh.complaints.v1.ReferralReceiverService",
];

/// What a department node runs with.
#[derive(Clone)]
pub struct NodeConfig {
    /// The department's code; the node's certificate must name it.
    pub department: String,
    /// Its division; the node's certificate must name it.
    pub tenant: Tenant,
    pub listen: SocketAddr,
    pub pki_dir: PathBuf,
    /// The node's certificate and key: `NAME.pem`, `NAME.key` in the PKI directory.
    pub identity: String,
    pub trust_domain: String,
    pub database: DbConfig,
    pub clock: Arc<dyn Clock>,
}

impl NodeConfig {
    pub fn tls(&self) -> TlsFiles {
        TlsFiles::in_dir(&self.pki_dir, &self.identity)
    }
}

/// Opens the node's database and brings its schema up to date.
pub async fn open_database(cfg: &DbConfig) -> Result<Db> {
    let db = Db::connect(cfg)
        .await
        .context("connecting the department database")?;
    creditmesh_storage::migrate::run(&db, NAME, &store::migrations())
        .await
        .context("migrating the department database")?;
    Ok(db)
}

/// Fails unless the node's certificate names this department of this division.
fn check_identity(cfg: &NodeConfig, signer: &receipt::Signer) -> Result<()> {
    let p = creditmesh_pki::principal_of(signer.certificate(), &cfg.trust_domain)?;
    if p.kind != PrincipalKind::Department || p.subject != cfg.department || p.tenant != cfg.tenant
    {
        bail!(
            "{} names {p}, not department {} of {}",
            cfg.tls().cert.display(),
            cfg.department,
            cfg.tenant
        );
    }
    Ok(())
}

pub struct RunningNode {
    pub addr: SocketAddr,
    pub db: Db,
    pub server: JoinHandle<()>,
}

/// Serves the referral receiver on its mTLS listener until `stop`.
pub async fn start(cfg: &NodeConfig, stop: CancellationToken) -> Result<RunningNode> {
    let signer = Arc::new(receipt::Signer::load(&cfg.tls()).context("the node's identity")?);
    check_identity(cfg, &signer)?;
    let db = open_database(&cfg.database).await?;
    let tls = ServerTls::server(
        cfg.tls(),
        ClientAuth::Required {
            trust_domain: cfg.trust_domain.clone(),
        },
    )?;
    spawn_reloader(tls.clone(), stop.clone());
    let receiver = receiving::Receiver {
        db: db.clone(),
        authn: Authn::new(&cfg.trust_domain).with_revocations(tls.clone()),
        signer,
        department: cfg.department.clone(),
        tenant: cfg.tenant,
        clock: cfg.clock.clone(),
    };
    let receiver = Arc::new(receiver);
    let routes = Routes::new(
        v2::referral_receiver_service_server::ReferralReceiverServiceServer::from_arc(
            receiver.clone(),
        ),
    )
    .add_service(
        v1::referral_receiver_service_server::ReferralReceiverServiceServer::from_arc(receiver),
    );
    let (routes, _health) =
        creditmesh_rpc::standard::add_health_and_reflection(routes, &GRPC_NAMES).await?;
    let limits = ConnectionLimits::default();
    let connections = Connections::new(Budget::new(limits.max_connections), &limits, 0);
    let (addr, incoming) = bind_tls(cfg.listen, tls, connections, stop.clone())
        .await
        .with_context(|| format!("binding the department node on {}", cfg.listen))?;
    let server = tokio::spawn(async move {
        if let Err(e) = Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stop.cancelled())
            .await
        {
            tracing::error!(error = %e, "department node stopped with an error");
        }
    });
    tracing::info!(%addr, department = %cfg.department, tenant = %cfg.tenant, "department node listening");
    Ok(RunningNode { addr, db, server })
}

/// A referral as the department holds it.
pub struct Held {
    pub referral: Referral,
    pub entry: store::Entry,
}

/// The referrals this node received, oldest first.
pub async fn list(db: &Db, unanswered_only: bool) -> Result<Vec<Held>> {
    let mut conn = db.acquire().await?;
    let entries = store::list(&mut conn, unanswered_only).await?;
    Ok(entries
        .into_iter()
        .map(|entry| Held {
            referral: prost::Message::decode(entry.payload.as_slice()).unwrap_or_default(),
            entry,
        })
        .collect())
}

/// The department's answer to a referral: acknowledged, or declined with a reason.
pub enum Answer {
    Acknowledge,
    Decline(String),
}

/// Tells the platform (its node listener at `platform_url`, as this node's identity) and,
/// once it has taken the answer, records it here.
pub async fn answer(
    cfg: &NodeConfig,
    db: &Db,
    platform_url: &str,
    platform_server_name: &str,
    referral_id: &str,
    answer: Answer,
) -> Result<Referral> {
    let mut conn = db.acquire().await?;
    if store::find(&mut conn, referral_id).await?.is_none() {
        bail!("no referral {referral_id} was received by this node");
    }
    drop(conn);
    let tls = ClientTls::client(cfg.tls())?;
    let channel = creditmesh_rpc::client::mtls_channel(platform_url, tls, platform_server_name)?;
    let mut platform = ComplaintServiceClient::new(channel);
    let (status, reason, referral) = match answer {
        Answer::Acknowledge => {
            let r = platform
                .acknowledge_referral(AcknowledgeReferralRequest {
                    referral_id: referral_id.to_owned(),
                })
                .await
                .map_err(|s| {
                    anyhow::anyhow!("the platform refused: {:?}: {}", s.code(), s.message())
                })?;
            ("acknowledged", String::new(), r.into_inner().referral)
        }
        Answer::Decline(reason) => {
            let r = platform
                .decline_referral(DeclineReferralRequest {
                    referral_id: referral_id.to_owned(),
                    reason: reason.clone(),
                })
                .await
                .map_err(|s| {
                    anyhow::anyhow!("the platform refused: {:?}: {}", s.code(), s.message())
                })?;
            ("declined", reason, r.into_inner().referral)
        }
    };
    let mut conn = db.acquire().await?;
    store::answer(
        &mut conn,
        referral_id,
        status,
        cfg.clock.now_micros(),
        &reason,
    )
    .await?;
    referral.ok_or_else(|| anyhow::anyhow!("the platform answered without the referral"))
}
