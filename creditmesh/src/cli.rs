use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, SERVICE_NAMES};
use crate::mesh::{self, MeshOptions};
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use creditmesh_domain::{Principal, PrincipalKind, Tenant};
use creditmesh_gateway::{Backend, GatewayConfig};
use creditmesh_pki::{Ca, LeafSpec, TlsFiles, Usage};
use tokio_util::sync::CancellationToken;

/// creditmesh: the regional platform supervising credit service agencies.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration files, comma-separated: each later file overrides the earlier ones
    /// key by key (the region's shared file, then a node's own); `CREDITMESH_*` variables
    /// override them all.
    #[arg(long, global = true, env = "CREDITMESH_CONFIG", value_delimiter = ',')]
    config: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the gateway and all five services in one process on SQLite, with a development PKI.
    Dev {
        /// Where the PKI and databases live; created on first run and reused afterwards.
        #[arg(long, default_value = "creditmesh-data")]
        data_dir: PathBuf,
        /// Node listener (mutual TLS).
        #[arg(long)]
        node_listen: Option<SocketAddr>,
        /// Public listener (server TLS).
        #[arg(long)]
        public_listen: Option<SocketAddr>,
        /// The demo department node's listener (mutual TLS).
        #[arg(long)]
        department_listen: Option<SocketAddr>,
        /// The public website (HTTP).
        #[arg(long)]
        web_listen: Option<SocketAddr>,
        /// The authorities' console (HTTPS, officers' certificates).
        #[arg(long)]
        console_listen: Option<SocketAddr>,
    },
    /// Runs the chosen services against the configured database.
    Serve {
        /// Comma-separated: filing,review,disclosure,complaints,datapush.
        #[arg(long, value_delimiter = ',', required = true)]
        services: Vec<String>,
    },
    /// Runs the gateway alone, forwarding to the configured backends.
    Gateway,
    /// Runs the public website alone, a public caller of the configured gateway.
    Web,
    /// Runs the authorities' console alone, in front of the configured gateway's node listener.
    Console,
    /// Brings the schema of the chosen services (default: all) up to date, then exits.
    Migrate {
        /// Comma-separated: filing,review,disclosure,complaints,datapush.
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
    },
    /// Working days of the loaded calendar.
    Calendar {
        #[command(subcommand)]
        command: CalendarCommand,
    },
    /// The Measures' validity as configured (Art. 32), and whether they are in force today.
    Measures,
    /// Identifiers: unified social credit codes and resident identity numbers.
    Id {
        #[command(subcommand)]
        command: IdCommand,
    },
    /// Checks answers of the public register against its log's verifier key (offline), or
    /// follows a register and stops at the first inconsistency.
    Verify {
        /// A file of the log's verifier keys (`register-log.vkey` beside the regional node's
        /// PKI; after a rotation also `register-log.retired.vkey`); repeat for each file.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// A witness's cosigner key file; repeat for each witness trusted.
        #[arg(long = "witness-key")]
        witness_keys: Vec<PathBuf>,
        /// How many of those witnesses must have cosigned each checkpoint (default: all).
        #[arg(long)]
        cosignatures: Option<usize>,
        /// Answers as a gRPC client prints them (GetNoticeProof, GetConsistencyProof,
        /// GetRegisterHead) or signed checkpoints.
        files: Vec<PathBuf>,
        /// Follow the register at this URL (its public listener, `https://host:port`).
        #[arg(long, conflicts_with = "files")]
        follow: Option<String>,
        /// The CA that signed the register's server certificate (with --follow).
        #[arg(long, requires = "follow")]
        ca: Option<PathBuf>,
        /// The name in the register's server certificate (with --follow).
        #[arg(long, default_value = "localhost")]
        server_name: String,
        /// How often to ask for the newest checkpoint (with --follow).
        #[arg(long, default_value_t = 2000)]
        interval_ms: u64,
        /// A checkpoint the register must extend from the start (with --follow): one a
        /// witness holds, or a head saved earlier.
        #[arg(long, requires = "follow")]
        since: Option<PathBuf>,
    },
    /// A department's node: receives the complaints referred to it (Art. 24) with signed
    /// receipts; its people list, acknowledge and decline them here.
    Department {
        #[command(subcommand)]
        command: DepartmentCommand,
    },
    /// The regional CA and the certificates it issues.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Subcommand)]
enum DepartmentCommand {
    /// Serves the referral receiver (`[department]`) until stopped.
    Serve,
    /// The referrals this node received, oldest first.
    List {
        /// Only those not yet acknowledged or declined.
        #[arg(long)]
        unanswered: bool,
    },
    /// Acknowledges a referral: the department handles the complaint.
    Ack {
        /// The referral's id, as `department list` shows it.
        referral_id: String,
    },
    /// Declines a referral as outside the department's competence; the complaint returns to
    /// the regulator that referred it.
    Decline {
        /// The referral's id, as `department list` shows it.
        referral_id: String,
        /// Why it is outside the department's competence; the regulator reads it.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum CalendarCommand {
    /// Whether DATE (YYYY-MM-DD) is a working day.
    IsWorkingDay {
        /// The date, YYYY-MM-DD.
        date: String,
        /// The national calendar alone, without Xinjiang's regional days.
        #[arg(long)]
        no_regional: bool,
    },
    /// The date N working days after --from (day zero).
    Deadline {
        /// The day of the event, YYYY-MM-DD (not counted).
        #[arg(long)]
        from: String,
        /// How many working days the period runs.
        #[arg(long)]
        working_days: u32,
        /// The national calendar alone, without Xinjiang's regional days.
        #[arg(long)]
        no_regional: bool,
    },
}

#[derive(Subcommand)]
enum IdCommand {
    /// Checks a unified social credit code or a resident identity number.
    Check {
        /// The code or number to check.
        code: String,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Mints the development PKI into DIR (CA, demo callers, one identity per node) and the
    /// node's keys (as `pki keys`), keeping whatever already exists.
    Dev {
        /// The PKI directory (the CA's ca.pem and ca.key, and what is issued beside them).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Makes in DIR the keys a node signs and seals with, where missing: the register's log
    /// key (and its verifier key), data push's key-encryption and index keys, the forwarder
    /// token, and with --witness-name a witness's key. `serve` makes none of its own: its
    /// replicas share the files made here, provided with their other secrets.
    Keys {
        /// The PKI directory (the CA's ca.pem and ca.key, and what is issued beside them).
        #[arg(long)]
        dir: PathBuf,
        /// The name this node's cosignatures carry, when it witnesses another's register.
        #[arg(long)]
        witness_name: Option<String>,
    },
    /// Rotates the register's log key in DIR in two steps. First (without --finish) it makes
    /// the next key (register-log.next.key): nodes restarted with it sign every checkpoint
    /// with both keys, while witnesses and verifiers add its verifier key. Then --finish makes
    /// it the log's key, keeps the old verifier key in register-log.retired.vkey for the
    /// checkpoints it signed, and destroys the old key.
    RotateLogKey {
        /// The PKI directory (the CA's ca.pem and ca.key, and what is issued beside them).
        #[arg(long)]
        dir: PathBuf,
        /// Ends the rotation begun earlier.
        #[arg(long)]
        finish: bool,
    },
    /// Rotates data push's index key in DIR in three steps, each followed by a restart of
    /// datapush's replicas with the files: first the next key is made (looked up, not yet
    /// written); --switch makes it the key that writes, the old one the previous (looked up
    /// while every keyed hash is computed again); --finish destroys the previous key once
    /// `creditmesh_datapush_index_stale` is 0 in every kind.
    RotateIndexKey {
        /// The PKI directory (the CA's ca.pem and ca.key, and what is issued beside them).
        #[arg(long)]
        dir: PathBuf,
        /// Makes the next key the one that writes.
        #[arg(long, conflicts_with = "finish")]
        switch: bool,
        /// Destroys the previous key.
        #[arg(long)]
        finish: bool,
    },
    /// Mints a new regional CA into DIR (ca.pem, ca.key).
    Init {
        /// The PKI directory (the CA's ca.pem and ca.key, and what is issued beside them).
        #[arg(long)]
        dir: PathBuf,
        /// How many days the CA's certificate is valid.
        #[arg(long, default_value_t = 3650)]
        lifetime_days: i64,
    },
    /// Issues a leaf certificate (NAME.pem, NAME.key) signed by the CA in DIR.
    Issue {
        /// The PKI directory (the CA's ca.pem and ca.key, and what is issued beside them).
        #[arg(long)]
        dir: PathBuf,
        /// Whose certificate it is.
        #[arg(long, value_enum)]
        kind: Kind,
        /// GB/T 2260 division code of the tenant.
        #[arg(long)]
        tenant: String,
        /// USCC of an agency, code of a department, name of a service; none for regulators.
        #[arg(long, default_value = "")]
        subject: String,
        /// File stem of the certificate and key.
        #[arg(long)]
        name: String,
        /// A DNS name the certificate serves TLS under; repeat for each.
        #[arg(long)]
        dns: Vec<String>,
        /// An IP address the certificate serves TLS under; repeat for each.
        #[arg(long)]
        ip: Vec<IpAddr>,
        /// The certificate also serves TLS (a department's node); a service's always does.
        #[arg(long)]
        server: bool,
        /// How many days the certificate is valid.
        #[arg(long, default_value_t = creditmesh_pki::LEAF_LIFETIME_DAYS)]
        lifetime_days: i64,
    },
    /// Issues NAME.pem again for the same identity with a new key and a fresh lifetime; every
    /// node picks it up within seconds.
    Renew {
        /// The PKI directory (the CA's ca.pem and ca.key, and what is issued beside them).
        #[arg(long)]
        dir: PathBuf,
        /// File stem of the certificate and key to renew.
        #[arg(long)]
        name: String,
        /// How many days the certificate is valid.
        #[arg(long, default_value_t = creditmesh_pki::LEAF_LIFETIME_DAYS)]
        lifetime_days: i64,
    },
    /// Revokes the certificate in CERT: it goes on the CA's revocation list (DIR/crl.pem),
    /// which every listener reloads within seconds; calls already connected with it are
    /// refused from then on.
    Revoke {
        /// The PKI directory (the CA's ca.pem and ca.key, and what is issued beside them).
        #[arg(long)]
        dir: PathBuf,
        /// The certificate to revoke (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// unspecified, key-compromise, affiliation-changed, superseded,
        /// cessation-of-operation or privilege-withdrawn.
        #[arg(long, default_value = "key-compromise")]
        reason: String,
    },
    /// Issues the revocation list again with a fresh validity (30 days); run it before the
    /// list lapses, for example weekly.
    Crl {
        /// The PKI directory (the CA's ca.pem and ca.key, and what is issued beside them).
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// A credit service agency (subject: its USCC).
    Agency,
    /// A regulator's authority (no subject).
    Regulator,
    /// A department (subject: its code).
    Department,
    /// A node of the mesh (subject: the service's name).
    Service,
}

/// The command line: every command and flag with its help.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parses the command line and runs the command; the `creditmesh` binary is this function.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    run_to_completion(run(cli))
}

/// Runs `task` on a multi-threaded runtime: success, or the error printed whole and failure.
pub fn run_to_completion(
    task: impl std::future::Future<Output = Result<()>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(task) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let mut cfg = Config::load(&cli.config)?;
    let _telemetry = creditmesh_rpc::telemetry::init(&cfg.log.filter, cfg.log.format == "json")?;
    crate::memory::spawn_collector();
    match cli.command {
        Command::Dev {
            data_dir,
            node_listen,
            public_listen,
            department_listen,
            web_listen,
            console_listen,
        } => {
            if let Some(listen) = console_listen {
                cfg.console.listen = listen;
            }
            if let Some(listen) = department_listen {
                cfg.department.listen = listen;
            }
            if let Some(listen) = web_listen {
                cfg.web.listen = listen;
            }
            dev(cfg, data_dir, node_listen, public_listen).await
        }
        Command::Serve { services } => serve(cfg, &services).await,
        Command::Gateway => gateway(cfg).await,
        Command::Web => web(cfg).await,
        Command::Console => console(cfg).await,
        Command::Migrate { services } => migrate(cfg, &services).await,
        Command::Pki { command } => pki(cfg, command),
        Command::Department { command } => department(cfg, command).await,
        Command::Verify {
            keys,
            witness_keys,
            cosignatures,
            files,
            follow,
            ca,
            server_name,
            interval_ms,
            since,
        } => {
            let trust = crate::verify::Trust::load(&keys, &witness_keys, cosignatures)?;
            let since = since
                .map(|f| crate::verify::checkpoint_file(&f, &trust))
                .transpose()?;
            match follow {
                Some(url) => {
                    let ca =
                        ca.context("--follow needs --ca, the CA of the register's certificate")?;
                    crate::verify::follow(
                        &trust,
                        &url,
                        &ca,
                        &server_name,
                        Duration::from_millis(interval_ms.max(100)),
                        since,
                    )
                    .await
                }
                None => crate::verify::files(&trust, &files),
            }
        }
        Command::Calendar { command } => calendar(&cfg, command),
        Command::Measures => {
            match cfg.runtime()?.measures {
                Some(v) => {
                    let today = creditmesh_domain::calendar::cst_date(
                        creditmesh_domain::Clock::now_micros(&creditmesh_domain::SystemClock),
                    )
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                    let state = if v.check(today).is_ok() {
                        "in force today"
                    } else {
                        "not in force today"
                    };
                    println!("{v}: {state}");
                }
                None => println!(
                    "effective date not configured ([measures] effective_on): no validity window is enforced"
                ),
            }
            Ok(())
        }
        Command::Id {
            command: IdCommand::Check { code },
        } => {
            let (valid, text) = check_id(&code);
            if valid {
                println!("valid: {text}");
                Ok(())
            } else {
                println!("invalid: {text}");
                std::process::exit(1);
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn department(cfg: Config, command: DepartmentCommand) -> Result<()> {
    let node = cfg.department_node()?;
    let (url, server_name) = (
        cfg.department.platform_url.as_str(),
        cfg.department.platform_server_name.as_str(),
    );
    let answer = |id: &str, a| {
        let node = node.clone();
        let id = id.to_owned();
        async move {
            let db = creditmesh_department::open_database(&node.database).await?;
            let r = creditmesh_department::answer(&node, &db, url, server_name, &id, a).await?;
            let status = creditmesh_proto::complaints::v1::ReferralStatus::try_from(r.status)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("REFERRAL_STATUS_")
                        .to_lowercase()
                })
                .unwrap_or_default();
            println!("{} {status}: {}", r.referral_id, referral_line(&r));
            Ok(())
        }
    };
    match command {
        DepartmentCommand::Serve => {
            let stop = CancellationToken::new();
            let running = creditmesh_department::start(&node, stop.clone()).await?;
            println!(
                "department node of {} in {} listening on {} (mutual TLS)",
                node.department, node.tenant, running.addr
            );
            shutdown_signal().await;
            stop.cancel();
            let _ = running.server.await;
            running.db.close().await;
            Ok(())
        }
        DepartmentCommand::List { unanswered } => {
            let db = creditmesh_department::open_database(&node.database).await?;
            let held = creditmesh_department::list(&db, unanswered).await?;
            if held.is_empty() {
                println!("no referrals");
            }
            for h in held {
                println!(
                    "{}  {}  received {}  {}",
                    h.entry.referral_id,
                    h.entry.status,
                    creditmesh_domain::calendar::cst_date(h.entry.received_at)
                        .map(creditmesh_domain::calendar::format_date)
                        .unwrap_or_default(),
                    referral_line(&h.referral)
                );
            }
            Ok(())
        }
        DepartmentCommand::Ack { referral_id } => {
            answer(&referral_id, creditmesh_department::Answer::Acknowledge).await
        }
        DepartmentCommand::Decline {
            referral_id,
            reason,
        } => answer(&referral_id, creditmesh_department::Answer::Decline(reason)).await,
    }
}

fn referral_line(r: &creditmesh_proto::complaints::v1::Referral) -> String {
    let name = if r.agency_name.is_empty() {
        String::new()
    } else {
        format!(" ({})", r.agency_name)
    };
    format!(
        "complaint {} from {} about {}{name}: {} — referred because: {}",
        r.tracking_number, r.from_tenant, r.agency_uscc, r.subject, r.reason
    )
}

async fn dev(
    mut cfg: Config,
    data_dir: PathBuf,
    node_listen: Option<SocketAddr>,
    public_listen: Option<SocketAddr>,
) -> Result<()> {
    cfg.data_dir = data_dir;
    let pki_dir = cfg.pki_dir();
    let pki = creditmesh_pki::ensure_dev_pki(&pki_dir, &cfg.trust_domain)?;
    let database = cfg.db_config("{service}");
    if !database.url.starts_with("sqlite:") {
        bail!("dev runs on SQLite; unset database.url or point it at sqlite://");
    }
    // The demo department's own node, which complaints may be referred to.
    let department_stop = CancellationToken::new();
    let department =
        creditmesh_department::start(&cfg.department_node()?, department_stop.clone()).await?;
    let mut runtime = cfg.runtime()?;
    let complaints = &mut runtime.services.complaints;
    if complaints
        .referrals
        .node(&cfg.department.department, &cfg.department.tenant)
        .is_none()
    {
        let mut referrals = (*complaints.referrals).clone();
        referrals
            .departments
            .push(creditmesh_complaints::DepartmentPeer {
                department: cfg.department.department.clone(),
                tenant: cfg.department.tenant.clone(),
                url: format!("https://{}", department.addr),
                server_name: "department".into(),
            });
        complaints.referrals = std::sync::Arc::new(referrals);
    }
    let mesh = mesh::start_mesh(MeshOptions {
        runtime,
        database,
        node_listen: node_listen.unwrap_or(cfg.node.listen),
        public_listen: public_listen.unwrap_or(cfg.public.listen),
        poll_interval: Duration::from_millis(cfg.events.poll_interval_ms),
        limits: cfg.gateway.clone(),
    })
    .await?;
    let web_stop = CancellationToken::new();
    let web = start_web(&cfg, mesh.public_addr, web_stop.clone()).await?;
    let console = start_console(&cfg, mesh.node_addr, web_stop.clone()).await?;
    let demo = match crate::demo::seed(&pki_dir, mesh.node_addr).await {
        Ok(crate::demo::Seeded::Now) => "seeded now: the demo agency filed and approved, a change approved, both notices in a signed checkpoint, one record pushed".to_owned(),
        Ok(crate::demo::Seeded::Already) => "kept (the demo agency's filing was decided on an earlier run)".to_owned(),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "the demonstration register was not seeded");
            format!("not seeded: {e:#}")
        }
    };
    print_banner(
        &cfg,
        &pki_dir,
        pki.minted,
        &mesh,
        [department.addr, web.addr, console.addr],
        &demo,
    );
    shutdown_signal().await;
    eprintln!("creditmesh: draining in-flight calls, then stopping");
    web_stop.cancel();
    let _ = web.task.await;
    let _ = console.task.await;
    mesh.shutdown(cfg.shutdown_grace()).await;
    department_stop.cancel();
    let _ = department.server.await;
    department.db.close().await;
    Ok(())
}

fn print_banner(
    cfg: &Config,
    pki_dir: &Path,
    minted: bool,
    mesh: &crate::Mesh,
    [department, web, console]: [SocketAddr; 3],
    demo: &str,
) {
    let p = pki_dir.display();
    println!("creditmesh dev is running");
    println!("  data directory  {}", cfg.data_dir.display());
    println!(
        "  pki             {p} ({})",
        if minted { "minted now" } else { "reused" }
    );
    println!("  node listener   {} (mutual TLS)", mesh.node_addr);
    println!("  public listener {} (server TLS)", mesh.public_addr);
    for s in &mesh.services {
        println!("  service         {:<44} at {}", s.grpc_name, s.addr);
    }
    println!(
        "  department node {department} ({} of {}: `creditmesh department list`)",
        cfg.department.department, cfg.department.tenant
    );
    println!(
        "  certificates    {p}/agency.pem, regulator-650000.pem, regulator-650100.pem, department.pem, department-node.pem (each with its .key)"
    );
    println!("  website         http://{web}/ (the register, as a browser sees it)");
    println!(
        "  console         https://{console}/ (officers sign in with a regulator's certificate, such as regulator-650100.pem: see docs/console.md)"
    );
    println!("  demo register   {demo}");
    println!();
    println!("try it:");
    println!(
        "  grpcurl -cacert {p}/ca.pem -cert {p}/agency.pem -key {p}/agency.key \\\n    -d '{{\"service\":\"creditmesh.filing.v1.FilingService\"}}' {} grpc.health.v1.Health/Check",
        mesh.node_addr
    );
    println!("  grpcurl -cacert {p}/ca.pem {} list", mesh.public_addr);
    println!("stop with ctrl-c or SIGTERM; in-flight calls finish first.");
}

fn chosen(
    configured: &mesh::Services,
    services: &[String],
) -> Result<Vec<creditmesh_rpc::ServiceDef>> {
    let defs = mesh::all_services(configured);
    if services.is_empty() {
        return Ok(defs);
    }
    for s in services {
        if !SERVICE_NAMES.contains(&s.as_str()) {
            bail!("unknown service {s:?}; known: {}", SERVICE_NAMES.join(", "));
        }
    }
    Ok(defs
        .into_iter()
        .filter(|d| services.iter().any(|s| s == d.name))
        .collect())
}

/// Where the relays of `serve` send events: `backends`, and `tenant_backends` for the events
/// of their tenants.
fn relay_targets(cfg: &Config) -> mesh::RelayTargets {
    let at = |name: &String, b: &crate::config::BackendConfig| mesh::Target {
        urls: b.urls(),
        server_name: b.server_name.clone().unwrap_or_else(|| name.clone()),
    };
    mesh::RelayTargets {
        default: cfg
            .backends
            .iter()
            .map(|(name, b)| (name.clone(), at(name, b)))
            .collect(),
        by_tenant: cfg
            .tenant_backends
            .iter()
            .flat_map(|(tenant, m)| {
                m.iter()
                    .map(move |(name, b)| ((tenant.clone(), name.clone()), at(name, b)))
            })
            .collect(),
    }
}

async fn serve(cfg: Config, services: &[String]) -> Result<()> {
    let runtime = cfg.runtime()?;
    let defs = chosen(&runtime.services, services)?;
    // A replica never mints a key of its own beside the one its peers share.
    creditmesh_pki::forbid_making();
    let names: Vec<&str> = defs.iter().map(|d| d.name).collect();
    crate::keys::require(&cfg, &names)?;
    let stop = CancellationToken::new();
    let pki_dir = cfg.pki_dir();
    if runtime.measures.is_none() && names.iter().any(|n| *n != "disclosure") {
        bail!(
            "config key `measures.effective_on` is not set: every deadline and consequence of \
             the Measures depends on their validity (Art. 32), so `serve` does not start without \
             it; set it to the date they took effect ([measures] effective_on, or \
             CREDITMESH_MEASURES__EFFECTIVE_ON). Only `dev` runs without it"
        );
    }
    mesh::announce_measures(runtime.measures);
    let mut running = Vec::new();
    for def in &defs {
        let listen = cfg
            .services
            .get(def.name)
            .map(|s| s.listen)
            .with_context(|| format!("config key `services.{}.listen` is missing", def.name))?;
        running.push(
            mesh::start_service(
                def,
                &cfg.db_config(def.name),
                &runtime,
                listen,
                stop.clone(),
            )
            .await?,
        );
    }
    let targets = relay_targets(&cfg);
    let timing = mesh::RelayTiming {
        poll_interval: Duration::from_millis(cfg.events.poll_interval_ms),
        lease: Duration::from_millis(cfg.events.lease_ms),
    };
    let mut relays = Vec::new();
    for svc in &running {
        relays.push(mesh::start_relay(svc, &targets, &pki_dir, timing, stop.clone()).await?);
    }
    if let Some(listen) = cfg.ops.listen {
        let url_of = |name: &str| cfg.db_config(name).url;
        crate::ops::start(listen, &running, url_of, stop.clone()).await?;
    }
    shutdown_signal().await;
    let deadline = tokio::time::Instant::now() + cfg.shutdown_grace();
    stop.cancel();
    mesh::join_until(relays, deadline).await;
    mesh::join_until(
        running.iter_mut().filter_map(|s| s.server.take()).collect(),
        deadline,
    )
    .await;
    for s in &running {
        s.store.db.close().await;
    }
    Ok(())
}

/// The website in front of the gateway's public listener at `public` (unless configured
/// elsewhere), trusting the node's CA.
async fn start_web(
    cfg: &Config,
    public: SocketAddr,
    stop: CancellationToken,
) -> Result<creditmesh_web::Web> {
    let url = cfg.web.gateway_url.clone().unwrap_or_else(|| {
        let host = if public.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], public.port()))
        } else {
            public
        };
        format!("https://{host}")
    });
    let upstream = creditmesh_web::Upstream {
        url,
        ca_file: cfg.pki_dir().join("ca.pem"),
        server_name: cfg.web.gateway_server_name.clone(),
        forwarder_token: creditmesh_pki::read_forwarder_token(&cfg.pki_dir())?,
    };
    creditmesh_web::start(&cfg.web, &upstream, stop).await
}

/// The console in front of the gateway's node listener at `node` (unless configured
/// elsewhere), with the console's own certificate.
async fn start_console(
    cfg: &Config,
    node: SocketAddr,
    stop: CancellationToken,
) -> Result<creditmesh_web::Web> {
    let url = cfg.console.gateway_url.clone().unwrap_or_else(|| {
        let host = if node.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], node.port()))
        } else {
            node
        };
        format!("https://{host}")
    });
    let console = creditmesh_web::console::ConsoleNode {
        tls: TlsFiles::in_dir(&cfg.pki_dir(), "service-console"),
        trust_domain: cfg.trust_domain.clone(),
        gateway_url: url,
        form_seed: creditmesh_pki::read_forwarder_token(&cfg.pki_dir())?,
    };
    creditmesh_web::console::start(&cfg.console, &console, stop).await
}

async fn console(cfg: Config) -> Result<()> {
    let stop = CancellationToken::new();
    let console = start_console(&cfg, cfg.node.listen, stop.clone()).await?;
    println!("creditmesh console at https://{}/", console.addr);
    shutdown_signal().await;
    stop.cancel();
    let _ = console.task.await;
    Ok(())
}

async fn web(cfg: Config) -> Result<()> {
    let stop = CancellationToken::new();
    let web = start_web(&cfg, cfg.public.listen, stop.clone()).await?;
    println!("creditmesh web at http://{}/", web.addr);
    shutdown_signal().await;
    stop.cancel();
    let _ = web.task.await;
    Ok(())
}

async fn gateway(cfg: Config) -> Result<()> {
    let stop = CancellationToken::new();
    // Only the services' names are needed here.
    let defs = mesh::all_services(&mesh::Services::default());
    let default = cfg.backends.iter().map(|(name, b)| (None, name, b));
    let by_tenant = cfg
        .tenant_backends
        .iter()
        .flat_map(|(t, m)| m.iter().map(move |(name, b)| (Some(t), name, b)));
    let backends = default
        .chain(by_tenant)
        .map(|(tenant, name, b)| {
            let def = defs
                .iter()
                .find(|d| d.name == name)
                .with_context(|| format!("config key `backends.{name}`: unknown service"))?;
            let tenant = tenant
                .map(|t| {
                    Tenant::parse_holding(t)
                        .map_err(|e| anyhow::anyhow!("tenant_backends.{t}: {e}"))
                })
                .transpose()?;
            Ok(Backend {
                grpc_name: def.grpc_name.to_owned(),
                urls: b.urls(),
                server_name: b.server_name.clone().unwrap_or_else(|| name.clone()),
                tenant,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let gw = creditmesh_gateway::start(
        GatewayConfig {
            node_listen: cfg.node.listen,
            public_listen: cfg.public.listen,
            trust_domain: cfg.trust_domain.clone(),
            tls: TlsFiles::in_dir(&cfg.pki_dir(), "service-gateway"),
            backends,
            limits: cfg.gateway.clone(),
            forwarder_token: creditmesh_pki::read_forwarder_token(&cfg.pki_dir())?,
        },
        stop.clone(),
    )
    .await?;
    if let Some(listen) = cfg.ops.listen {
        // Ready once both listeners are bound; the calls it forwarded on /metrics.
        crate::ops::start(listen, &[], |_| String::new(), stop.clone()).await?;
    }
    shutdown_signal().await;
    let deadline = tokio::time::Instant::now() + cfg.shutdown_grace();
    stop.cancel();
    mesh::join_until(gw.tasks, deadline).await;
    Ok(())
}

async fn migrate(cfg: Config, services: &[String]) -> Result<()> {
    // Migrations need no service's settings.
    for def in chosen(&mesh::Services::default(), services)? {
        let db = mesh::open_database(&def, &cfg.db_config(def.name)).await?;
        db.close().await;
        println!("{}: schema up to date", def.name);
    }
    Ok(())
}

fn calendar(cfg: &Config, command: CalendarCommand) -> Result<()> {
    use creditmesh_domain::calendar::{Layers, format_date, parse_iso_date};
    let cal = cfg.calendar.load()?;
    let layers = |no_regional: bool| {
        if no_regional {
            Layers::National
        } else {
            Layers::Xinjiang
        }
    };
    match command {
        CalendarCommand::IsWorkingDay { date, no_regional } => {
            let date = parse_iso_date(&date).map_err(|e| anyhow::anyhow!("DATE: {e}"))?;
            let answer = cal.day(date, layers(no_regional))?;
            println!(
                "{} {}{}",
                format_date(date),
                if answer.working {
                    "working day"
                } else {
                    "day off"
                },
                if answer.provisional {
                    " provisional"
                } else {
                    ""
                }
            );
        }
        CalendarCommand::Deadline {
            from,
            working_days,
            no_regional,
        } => {
            let from = parse_iso_date(&from).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
            println!("{}", cal.deadline(from, working_days, layers(no_regional))?);
        }
    }
    Ok(())
}

/// Whether `code` is a valid USCC or resident identity number, and what it says.
fn check_id(code: &str) -> (bool, String) {
    use creditmesh_domain::Uscc;
    use creditmesh_domain::resident_id::ResidentId;
    let code = code.trim();
    let uscc = Uscc::parse(code);
    if let Ok(u) = &uscc {
        return (
            true,
            format!(
                "unified social credit code; registration authority {}; code issued in {} \
                 (a filing is reviewed where the registered address lies, Art. 10)",
                u.registration_authority(),
                u.location()
            ),
        );
    }
    let person = ResidentId::parse(code);
    if let Ok(p) = &person {
        return (
            true,
            format!(
                "resident identity number; born {}; {}; address code in {}",
                p.birth_date(),
                p.sex(),
                p.location()
            ),
        );
    }
    if let Some(d) = creditmesh_domain::identity_document::IdentityDocument::infer(code) {
        return (true, d.kind().name().replace('_', " "));
    }
    // Digits with an optional final X look like a person's number; anything else like a USCC.
    let personal = code.len() == 18
        && code[..17].bytes().all(|b| b.is_ascii_digit())
        && !code.starts_with('9');
    match (uscc, person) {
        (_, Err(e)) if personal => (false, format!("resident identity number: {e}")),
        (Err(e), _) => (false, format!("unified social credit code: {e}")),
        _ => (false, "unrecognised".into()),
    }
}

fn pki(cfg: Config, command: PkiCommand) -> Result<()> {
    match command {
        PkiCommand::Dev { dir } => {
            let pki = creditmesh_pki::ensure_dev_pki(&dir, &cfg.trust_domain)?;
            crate::keys::make(&dir, &cfg.trust_domain, None)?;
            println!(
                "{} ({})",
                dir.display(),
                if pki.minted { "minted now" } else { "reused" }
            );
        }
        PkiCommand::Keys { dir, witness_name } => {
            for file in crate::keys::make(&dir, &cfg.trust_domain, witness_name.as_deref())? {
                println!("{}", file.display());
            }
        }
        PkiCommand::RotateLogKey { dir, finish } => {
            use creditmesh_disclosure::checkpoint::{self as log, Rotation};
            let step = if finish {
                log::finish_rotation(&dir, &cfg.trust_domain)
            } else {
                log::begin_rotation(&dir, &cfg.trust_domain)
            };
            match step.map_err(anyhow::Error::msg)? {
                Rotation::Begun { next_vkey } => println!(
                    "next log key: {}\nverifier key: {next_vkey}\nrestart the register's \
                     replicas with it, give the verifier key to the witnesses (register.witness_of) \
                     and verifiers, then run this again with --finish",
                    dir.join(log::NEXT_KEY_FILE).display()
                ),
                Rotation::Finished { retired_vkey, vkey } => println!(
                    "log key: {vkey}\nretired: {retired_vkey} (kept in {})\nrestart the \
                     register's replicas with the new key",
                    dir.join(log::RETIRED_VKEY_FILE).display()
                ),
            }
        }
        PkiCommand::RotateIndexKey {
            dir,
            switch,
            finish,
        } => {
            use creditmesh_datapush::index;
            let next = match (switch, finish) {
                (true, _) => {
                    index::switch(&dir)?;
                    "the next key writes now; restart datapush's replicas with the files, \
                     then wait for creditmesh_datapush_index_stale to be 0 in every kind \
                     (access codes issued before expire within 30 days) and run this again \
                     with --finish"
                }
                (_, true) => {
                    index::finish(&dir)?;
                    "the previous key is destroyed; restart datapush's replicas with the files"
                }
                _ => {
                    index::begin(&dir)?;
                    "next index key made; restart datapush's replicas with it (they look it \
                     up, and still write under the current key), then run this again with \
                     --switch"
                }
            };
            println!("{next}");
        }
        PkiCommand::Init { dir, lifetime_days } => {
            if dir.join("ca.pem").exists() {
                bail!(
                    "{} already holds a CA; refusing to replace it",
                    dir.display()
                );
            }
            Ca::init(&dir, lifetime_days)?;
            creditmesh_pki::ensure_forwarder_token(&dir)?;
            println!("{}", dir.join("ca.pem").display());
        }
        PkiCommand::Issue {
            dir,
            kind,
            tenant,
            subject,
            name,
            dns,
            ip,
            server,
            lifetime_days,
        } => {
            let tenant = Tenant::parse(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
            let kind = match kind {
                Kind::Agency => PrincipalKind::Agency,
                Kind::Regulator => PrincipalKind::Regulator,
                Kind::Department => PrincipalKind::Department,
                Kind::Service => PrincipalKind::Service,
            };
            let principal = Principal::new(kind, tenant, subject);
            // Round-trip through the parser so that only identities the mesh accepts are issued.
            Principal::parse_spiffe(&principal.spiffe_id(&cfg.trust_domain), &cfg.trust_domain)
                .map_err(|e| anyhow::anyhow!("identity: {e}"))?;
            let usage = if server || kind == PrincipalKind::Service {
                Usage::ClientAndServer
            } else {
                Usage::Client
            };
            let ca = Ca::load(&dir)?;
            let path = ca.issue(
                &dir,
                &cfg.trust_domain,
                &LeafSpec {
                    name,
                    principal,
                    dns_names: dns,
                    ip_addresses: ip,
                    usage,
                    lifetime_days,
                },
            )?;
            println!("{}", path.display());
        }
        PkiCommand::Renew {
            dir,
            name,
            lifetime_days,
        } => {
            let path = Ca::load(&dir)?.renew(&dir, &cfg.trust_domain, &name, lifetime_days)?;
            println!("{}", path.display());
        }
        PkiCommand::Revoke { dir, cert, reason } => {
            let reason = creditmesh_pki::parse_reason(&reason)
                .map_err(|e| anyhow::anyhow!("--reason: {e}"))?;
            let serial = Ca::load(&dir)?.revoke(&dir, &cert, reason)?;
            let hex: String = serial.iter().map(|b| format!("{b:02x}")).collect();
            println!("revoked {} (serial {hex})", cert.display());
            println!("{}", dir.join("crl.pem").display());
        }
        PkiCommand::Crl { dir } => {
            let n = Ca::load(&dir)?.refresh_crl(&dir)?;
            println!("{} ({n} revoked)", dir.join("crl.pem").display());
        }
    }
    Ok(())
}
