//! The binary as a person runs it: `dev` survives SIGKILL, configuration errors name their
//! key, `migrate` is repeatable.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::complaints::v1::{
    AcceptComplaintRequest, ResolveComplaintRequest, TrackComplaintRequest,
};
use creditmesh_proto::review::v1::GetCreditFileRequest;
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_tests::free_port;
use creditmesh_tests::{Engine, eventually, fresh_database, mtls, server_tls};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_creditmesh-under-test");
const BENCH: &str = env!("CARGO_BIN_EXE_creditmesh-bench-under-test");

crate::on_both_engines!(
    migrate_is_repeatable,
    idle_connections_under_a_descriptor_limit_leave_the_node_listener_working,
);

/// The public listener flooded with connections that complete TLS and then send nothing, from
/// many addresses, at a gateway process limited to 512 descriptors: the flood is held to the
/// public listener's share, and agencies on the node listener are served throughout.
async fn idle_connections_under_a_descriptor_limit_leave_the_node_listener_working(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_database(engine, dir.path()).await else {
        return;
    };
    // The flood's sockets live in this process too.
    creditmesh_rpc::connections::raise_descriptor_limit();
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, creditmesh_tests::TRUST_DOMAIN).unwrap();
    creditmesh::keys::make(&pki, creditmesh_tests::TRUST_DOMAIN, None).unwrap();
    let (node_port, public_port) = (free_port(), free_port());
    let mut config = format!(
        "pki_dir = \"{}\"\n[measures]\neffective_on = \"2026-01-01\"\n[database]\nurl = \"{}\"\nmax_connections = 4\n\
         [node]\nlisten = \"127.0.0.1:{node_port}\"\n[public]\nlisten = \"127.0.0.1:{public_port}\"\n\
         [gateway.connections]\nfirst_call_seconds = 120\n[gateway.rate_per_second]\npublic = 0\n",
        pki.display(),
        db.url
    );
    for name in ["filing", "review", "disclosure", "complaints", "datapush"] {
        let port = free_port();
        config.push_str(&format!(
            "[services.{name}]\nlisten = \"127.0.0.1:{port}\"\n[backends.{name}]\nurl = \"https://127.0.0.1:{port}\"\n"
        ));
    }
    let config_path = dir.path().join("creditmesh.toml");
    std::fs::write(&config_path, config).unwrap();
    let log_path = dir.path().join("gateway.log");
    let _services = Command::new(BIN)
        .args([
            "serve",
            "--services",
            "filing,review,disclosure,complaints,datapush",
        ])
        .arg("--config")
        .arg(&config_path)
        .env_remove("CREDITMESH_DATABASE__URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let _gateway = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 512 && exec \"$0\" gateway --config \"$1\"")
        .arg(BIN)
        .arg(&config_path)
        .env_remove("CREDITMESH_DATABASE__URL")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let node: std::net::SocketAddr = format!("127.0.0.1:{node_port}").parse().unwrap();
    let public: std::net::SocketAddr = format!("127.0.0.1:{public_port}").parse().unwrap();
    let check = |ch| async move {
        tonic_health::pb::health_client::HealthClient::new(ch)
            .check(tonic_health::pb::HealthCheckRequest {
                service: "creditmesh.filing.v1.FilingService".into(),
            })
            .await
            .ok()
            .filter(|r| r.get_ref().status == 1)
    };
    eventually("the mesh serving", Duration::from_secs(60), || {
        let pki = pki.clone();
        async move {
            check(
                creditmesh_tests::try_mtls(node, &pki, "agency")
                    .await
                    .ok()?,
            )
            .await
        }
    })
    .await;

    let tls = Arc::new(creditmesh_tests::public_tls_config(&pki, b"h2"));
    let mut flood = Vec::new();
    let mut refused = 0;
    for host in 2..=11u8 {
        let attempts = (0..64).map(|_| {
            let tls = tls.clone();
            async move {
                let socket = tokio::net::TcpSocket::new_v4().ok()?;
                socket.bind(([127, 0, 0, host], 0).into()).ok()?;
                let tcp = socket.connect(public).await.ok()?;
                let connect = tokio_rustls::TlsConnector::from(tls).connect(
                    rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                    tcp,
                );
                let mut stream = tokio::time::timeout(Duration::from_secs(10), connect)
                    .await
                    .ok()?
                    .ok()?;
                // A refused connection reads as closed at once.
                let mut b = [0u8; 1];
                use tokio::io::AsyncReadExt;
                match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut b)).await {
                    Err(_) => Some(stream),
                    Ok(_) => None,
                }
            }
        });
        for held in futures::future::join_all(attempts).await {
            match held {
                Some(s) => flood.push(s),
                None => refused += 1,
            }
        }
    }
    // 512 descriptors leave 384 places, of which the public listener takes at most 288.
    assert!(
        refused > 0,
        "all {} flood connections were kept",
        flood.len()
    );
    assert!(flood.len() <= 288, "{} flood connections kept", flood.len());
    assert!(
        flood.len() >= 200,
        "only {} flood connections kept",
        flood.len()
    );

    // Agencies on the node listener are served while the flood holds its connections.
    for _ in 0..5 {
        let ch = tokio::time::timeout(
            Duration::from_secs(10),
            creditmesh_tests::try_mtls(node, &pki, "agency"),
        )
        .await
        .expect("connect in time")
        .expect("an agency connects during the flood");
        // Within the same 10 s, a check that meets a moment of descriptor pressure is asked
        // again: the flood holds its connections throughout.
        let served = async {
            loop {
                if let Some(answer) = check(ch.clone()).await {
                    break answer;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), served)
            .await
            .expect("served during the flood");
    }
    drop(flood);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !log.contains("accept failed"),
        "the gateway ran out of descriptors:\n{}",
        log.lines()
            .filter(|l| l.contains("accept failed"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(log.contains("connections refused at their limit"), "{log}");
    assert!(log.contains("connections=384"), "{log}");
}

struct Dev {
    child: Child,
    public: String,
    node: String,
    banner: String,
}

/// `creditmesh dev` on port 0; its stderr goes to `DATA_DIR/stderr.log`.
async fn start_dev(data_dir: &Path) -> Dev {
    std::fs::create_dir_all(data_dir).unwrap();
    let stderr = std::fs::File::create(data_dir.join("stderr.log")).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["dev", "--data-dir"])
        .arg(data_dir)
        .args([
            "--node-listen",
            "127.0.0.1:0",
            "--public-listen",
            "127.0.0.1:0",
            "--department-listen",
            "127.0.0.1:0",
            "--web-listen",
            "127.0.0.1:0",
            "--console-listen",
            "127.0.0.1:0",
        ])
        .env_remove("CREDITMESH_DATABASE__URL")
        .env("CREDITMESH_GATEWAY__RATE_PER_SECOND__PUBLIC", "0");
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn creditmesh dev");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            banner.push_str(&line);
            banner.push('\n');
            if line.starts_with("stop with") {
                break;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .is_err()
        || banner.is_empty()
    {
        let log = std::fs::read_to_string(data_dir.join("stderr.log")).unwrap_or_default();
        panic!("dev printed no banner; its log:\n{log}");
    }
    let addr = |label: &str| {
        banner
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or_else(|| panic!("no {label} in banner:\n{banner}"))
            .to_owned()
    };
    let public = addr("public listener");
    let node = addr("node listener");
    // Keep draining stdout so that the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Dev {
        child,
        public,
        node,
        banner,
    }
}

/// `--help` says what each command does and what each flag means, for both binaries.
#[test]
fn every_command_and_flag_has_help() {
    fn undocumented(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                missing.push(path.clone());
            }
            undocumented(sub, &path, missing);
        }
    }
    let mut missing = Vec::new();
    for cmd in [creditmesh::cli::command(), creditmesh_bench::command()] {
        assert!(cmd.get_about().is_some(), "{} has no about", cmd.get_name());
        undocumented(&cmd, cmd.get_name(), &mut missing);
    }
    assert!(missing.is_empty(), "without help: {missing:#?}");
}

/// Every example under the README's "Trying it" runs as printed, with grpcurl (the stock client
/// the README names) and the `creditmesh` binary, against a fresh `dev`: the demonstration
/// register it seeds answers the register's examples, and `creditmesh verify` says `valid`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_examples_answer_on_a_fresh_dev() {
    let grpcurl = std::env::var("CREDITMESH_TEST_GRPCURL")
        .ok()
        .filter(|g| !g.is_empty());
    let Some(grpcurl) = grpcurl else {
        eprintln!("skipped: CREDITMESH_TEST_GRPCURL is not set (scripts/test.sh sets it)");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let dev = start_dev(&home.path().join("creditmesh-data")).await;
    assert!(
        dev.banner.contains("demo register   seeded now"),
        "{}",
        dev.banner
    );
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("creditmesh")).unwrap();
    std::os::unix::fs::symlink(&grpcurl, bin.join("grpcurl")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    let readme = include_str!("../../../README.md");
    let trying = &readme[readme.find("## Trying it").expect("a Trying it section")..];
    let trying = &trying[..trying[3..].find("\n## ").map_or(trying.len(), |i| i + 3)];
    let blocks: Vec<&str> = trying
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 2, "{trying}");
    let mut defined = String::new();
    for block in blocks {
        // A block may use what an earlier one defined (`D=…`), as in one shell.
        let script = format!("{defined}{block}")
            .replace("127.0.0.1:7443", &dev.node)
            .replace("127.0.0.1:8080", &dev.public);
        defined.extend(
            block
                .lines()
                .filter(|l| {
                    l.split_once('=').is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                    })
                })
                .map(|l| format!("{l}\n")),
        );
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(home.path())
            .env("PATH", &path)
            .env("RUST_LOG", "error")
            .output()
            .await
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "the README's example failed:\n{block}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        if block.contains("creditmesh verify") {
            assert!(stdout.contains("valid: notice.json: notice 0"), "{stdout}");
        }
        if block.contains("SubmitComplaint") {
            assert!(stdout.contains("trackingNumber"), "{stdout}");
        }
    }
    terminate(dev).await;
}

/// The demo department's people answer a referral from its node's command line, against the
/// node `dev` started: `department list` shows what the node received, `department ack` tells
/// the platform through its gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_answers_referrals_from_its_command_line() {
    use creditmesh_proto::complaints::v1::{Department, ReferComplaintRequest};
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let dev = start_dev(dir.path()).await;
    assert!(dev.banner.contains("department node"), "{}", dev.banner);
    let submitted =
        ComplaintServiceClient::new(server_tls(dev.public.parse().unwrap(), &pki).await)
            .submit_complaint(super::complaints::complaint("cli-1", ""))
            .await
            .unwrap()
            .into_inner();
    let referral_id = ComplaintServiceClient::new(
        mtls(dev.node.parse().unwrap(), &pki, "regulator-650000").await,
    )
    .refer_complaint(ReferComplaintRequest {
        request_id: "cli-refer".into(),
        tracking_number: submitted.tracking_number.clone(),
        department: Department::MarketRegulation as i32,
        department_tenant: "650100".into(),
        reason: "a licensing matter".into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .referral_id;
    // The console `dev` serves shows the officer the complaint, and no one else anything.
    let console = dev
        .banner
        .lines()
        .find(|l| l.trim_start().starts_with("console"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no console in the banner:\n{}", dev.banner))
        .trim_end_matches('/')
        .to_owned();
    let (status, _, page) = creditmesh_tests::https_get_as(
        &pki,
        Some("regulator-650000"),
        &format!("{console}/complaints/{}", submitted.tracking_number),
    )
    .await;
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("spiffe://creditmesh.xinjiang/regulator/650000"),
        "{page}"
    );
    assert!(page.contains("a licensing matter"), "{page}");
    let (status, _, _) =
        creditmesh_tests::https_get_as(&pki, Some("agency"), &format!("{console}/complaints"))
            .await;
    assert_eq!(status, 403);

    let data_dir = dir.path().display().to_string();
    let env = [
        ("CREDITMESH_DATA_DIR", data_dir.as_str()),
        ("RUST_LOG", "error"),
    ];
    let listed = eventually(
        "the node lists the referral",
        Duration::from_secs(30),
        || async {
            let (ok, out, _) = run(&["department", "list", "--unanswered"], &env).await;
            (ok && out.contains(&referral_id)).then_some(out)
        },
    )
    .await;
    assert!(listed.contains(&submitted.tracking_number), "{listed}");
    let platform = format!("https://{}", dev.node);
    let env_ack = [
        ("CREDITMESH_DATA_DIR", data_dir.as_str()),
        ("CREDITMESH_DEPARTMENT__PLATFORM_URL", platform.as_str()),
        ("RUST_LOG", "error"),
    ];
    let (ok, out, err) = run(&["department", "ack", &referral_id], &env_ack).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("acknowledged"), "{out}");
    let (ok, out, _) = run(&["department", "list", "--unanswered"], &env).await;
    assert!(ok && out.contains("no referrals"), "{out}");
    // An id the node never received is refused, naming it.
    let (ok, _, err) = run(
        &[
            "department",
            "decline",
            "01a22085-03cf-7068-86ed-84409831aa45",
            "--reason",
            "x",
        ],
        &env_ack,
    )
    .await;
    assert!(!ok && err.contains("was received by this node"), "{err}");
    terminate(dev).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_loses_nothing_committed_when_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let mut dev = start_dev(dir.path()).await;
    assert!(dev.banner.contains("minted now"), "{}", dev.banner);
    let ca_before = std::fs::read(pki.join("ca.pem")).unwrap();

    // Writers keep submitting while the process is killed.
    let channel = server_tls(dev.public.parse().unwrap(), &pki).await;
    let committed = std::sync::Arc::new(std::sync::Mutex::new(HashMap::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut client = ComplaintServiceClient::new(channel.clone());
        let committed = committed.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let req = super::complaints::complaint(&format!("kill-{w}-{i}"), "");
                match client.submit_complaint(req).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        committed
                            .lock()
                            .unwrap()
                            .insert(r.tracking_number, r.access_code);
                    }
                    Err(e) if e.code() == tonic::Code::ResourceExhausted => {}
                    Err(_) => break,
                }
            }
        }));
    }
    eventually("some committed writes", Duration::from_secs(30), || {
        let n = committed.lock().unwrap().len();
        async move { (n >= 40).then_some(()) }
    })
    .await;
    dev.child.start_kill().unwrap();
    dev.child.wait().await.unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let committed = committed.lock().unwrap().clone();
    eprintln!("killed with {} committed complaints", committed.len());

    let dev = start_dev(dir.path()).await;
    assert!(dev.banner.contains("reused"), "{}", dev.banner);
    assert_eq!(std::fs::read(pki.join("ca.pem")).unwrap(), ca_before);
    let mut public =
        ComplaintServiceClient::new(server_tls(dev.public.parse().unwrap(), &pki).await);
    for (tracking_number, access_code) in &committed {
        public
            .track_complaint(TrackComplaintRequest {
                tracking_number: tracking_number.clone(),
                access_code: access_code.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("committed complaint {tracking_number} lost: {e}"));
    }

    // Every complaint stored (including any whose answer the kill swallowed) reached the
    // review service once: no committed outbox event is lost or applied twice.
    sqlx::any::install_default_drivers();
    let count = |service: &str, sql: &'static str| {
        let url = format!("sqlite://{}/db/{service}.sqlite", dir.path().display());
        async move { creditmesh_tests::scalar_i64(&url, sql).await }
    };
    let stored = count("complaints", "SELECT COUNT(*) FROM complaints_complaint").await;
    assert!(stored >= committed.len() as i64);
    // Rows the killed process had leased come free when their lease (60 s, `relay::LEASE`)
    // runs out, and are sent at the next pass after it: wait past both.
    eventually(
        "every stored complaint delivered to review",
        creditmesh_rpc::relay::LEASE + Duration::from_secs(60),
        || async {
            let delivered = count(
                "review",
                "SELECT COUNT(*) FROM review_inbox WHERE event_type = 'complaints.complaint_submitted'",
            )
            .await;
            (delivered == stored).then_some(())
        },
    )
    .await;
    terminate(dev).await;
}

/// SIGTERM: the process drains and exits successfully.
async fn terminate(mut dev: Dev) {
    let pid = dev.child.id().expect("running") as i32;
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), dev.child.wait())
        .await
        .expect("dev stops after SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");
}

#[tokio::test]
async fn configuration_errors_name_the_key() {
    let out = Command::new(BIN)
        .arg("migrate")
        .env("CREDITMESH_DATABASE__MAX_CONNECTIONS", "many")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config key `database.max_connections`"),
        "{err}"
    );

    let out = Command::new(BIN)
        .arg("migrate")
        .env("CREDITMESH_LOG__FORMAT", "xml")
        .env("CREDITMESH_DATABASE__URL", "mysql://nowhere")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config key `log.format`: must be text or json"),
        "{err}"
    );
    assert!(err.contains("config key `database.url`"), "{err}");
}

async fn migrate_is_repeatable(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_database(engine, dir.path()).await else {
        return;
    };
    for _ in 0..2 {
        let out = Command::new(BIN)
            .arg("migrate")
            .env("CREDITMESH_DATABASE__URL", &db.url)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        for s in ["filing", "review", "disclosure", "complaints", "datapush"] {
            assert!(
                stdout.contains(&format!("{s}: schema up to date")),
                "{stdout}"
            );
        }
    }
    let url = db.url.replace("{service}", "review");
    assert_eq!(
        creditmesh_tests::scalar_i64(&url, "SELECT COUNT(*) FROM review_schema_migrations").await,
        creditmesh::mesh::all_services(&Default::default())
            .iter()
            .find(|d| d.name == "review")
            .unwrap()
            .all_migrations()
            .len() as i64,
        "each migration applied once"
    );
}

/// `serve` and `gateway` as separate processes, wired by a configuration file alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_gateway_run_as_separate_processes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, creditmesh_tests::TRUST_DOMAIN).unwrap();
    let (node, public) = (free_port(), free_port());
    let mut config = format!(
        "pki_dir = \"{}\"\n[measures]\neffective_on = \"2026-01-01\"\n[database]\nurl = \"sqlite://{}/db/{{service}}.sqlite\"\n\
         [node]\nlisten = \"127.0.0.1:{node}\"\n[public]\nlisten = \"127.0.0.1:{public}\"\n\
         [events]\npoll_interval_ms = 100\n",
        pki.display(),
        dir.path().display()
    );
    for name in ["filing", "review", "disclosure", "complaints", "datapush"] {
        let port = free_port();
        config.push_str(&format!(
            "[services.{name}]\nlisten = \"127.0.0.1:{port}\"\n[backends.{name}]\nurl = \"https://127.0.0.1:{port}\"\n"
        ));
    }
    let config_path = dir.path().join("creditmesh.toml");
    std::fs::write(&config_path, config).unwrap();
    let spawn = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&config_path)
            .env_remove("CREDITMESH_DATABASE__URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let services = spawn(&["serve", "--services", "complaints,review"]);
    let gateway = spawn(&["gateway"]);

    let node_addr: std::net::SocketAddr = format!("127.0.0.1:{node}").parse().unwrap();
    let public_addr: std::net::SocketAddr = format!("127.0.0.1:{public}").parse().unwrap();
    let channel = eventually("the gateway", Duration::from_secs(30), || {
        let pki = pki.clone();
        async move {
            creditmesh_tests::try_server_tls(public_addr, &pki)
                .await
                .ok()
        }
    })
    .await;
    let mut public_client = ComplaintServiceClient::new(channel);
    let submitted = eventually("the complaints backend", Duration::from_secs(30), || {
        let mut c = public_client.clone();
        async move {
            c.submit_complaint(super::complaints::complaint("apart-1", ""))
                .await
                .ok()
        }
    })
    .await
    .into_inner();
    public_client
        .track_complaint(TrackComplaintRequest {
            tracking_number: submitted.tracking_number.clone(),
            access_code: submitted.access_code,
        })
        .await
        .unwrap();
    let region = mtls(node_addr, &pki, "regulator-650000").await;
    // The region accepts it and finds against the agency: the finding crosses to review.
    let mut handler = ComplaintServiceClient::new(region.clone());
    handler
        .accept_complaint(AcceptComplaintRequest {
            request_id: "a".into(),
            tracking_number: submitted.tracking_number.clone(),
        })
        .await
        .unwrap();
    handler
        .resolve_complaint(ResolveComplaintRequest {
            request_id: "r".into(),
            tracking_number: submitted.tracking_number.clone(),
            outcome: "upheld".into(),
            verified: "records inspected".into(),
            against_agency: true,
            category: creditmesh_proto::review::v1::FindingCategory::PromisedRating as i32,
        })
        .await
        .unwrap();
    eventually(
        "the finding in the credit file",
        Duration::from_secs(30),
        || {
            let region = region.clone();
            let expected = submitted.tracking_number.clone();
            async move {
                let file = ReviewServiceClient::new(region)
                    .get_credit_file(GetCreditFileRequest {
                        uscc: "91653101MA78KT005T".into(),
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner();
                file.entries
                    .iter()
                    .any(|e| String::from_utf8_lossy(&e.details).contains(&expected))
                    .then_some(())
            }
        },
    )
    .await;
    for child in [gateway, services] {
        terminate(Dev {
            child,
            public: String::new(),
            node: String::new(),
            banner: String::new(),
        })
        .await;
    }
}

/// The benchmark runs from the binary and ends with its JSON line (figures are not judged
/// here: a test does not time things).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_gateway_prints_its_figures() {
    let (last, figures) = bench(&[
        "gateway",
        "--seconds",
        "1",
        "--warmup-seconds",
        "0",
        "--concurrency",
        "4",
    ])
    .await;
    for key in [
        "direct_rps",
        "gateway_rps",
        "ratio",
        "direct_p50_ms",
        "direct_p99_ms",
        "direct_p999_ms",
        "gateway_p50_ms",
        "gateway_p99_ms",
        "gateway_p999_ms",
    ] {
        assert!(figures[key].is_number(), "{key} missing from {last}");
    }
    assert!(figures["direct_rps"].as_f64().unwrap() > 0.0, "{last}");
    assert_eq!(figures["errors"], 0, "{last}");
    // The call the backend refuses by validation alone, where the proxy's cost dominates.
    let refused = &figures["refused"];
    assert!(refused["gateway_rps"].as_f64().unwrap() > 0.0, "{last}");
    assert!(refused["ratio"].is_number(), "{last}");
    assert_eq!(refused["errors"], 0, "{last}");
}

/// `serve` makes no key of its own: without the keys its services need it refuses to start,
/// naming each missing file and the command that makes them; without the Measures' effective
/// date too; with the files `pki keys` made, it starts, becomes ready and signs with that log
/// key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_makes_no_keys_and_starts_with_those_made_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, creditmesh_tests::TRUST_DOMAIN).unwrap();
    let ops_port = free_port();
    let mut config = format!(
        "pki_dir = \"{}\"\n[measures]\neffective_on = \"2026-01-01\"\n[database]\nurl = \"sqlite://{}/db/{{service}}.sqlite\"\n\
         [ops]\nlisten = \"127.0.0.1:{ops_port}\"\n",
        pki.display(),
        dir.path().display()
    );
    for name in ["disclosure", "datapush"] {
        let port = free_port();
        config.push_str(&format!(
            "[services.{name}]\nlisten = \"127.0.0.1:{port}\"\n"
        ));
    }
    let config_path = dir.path().join("creditmesh.toml");
    std::fs::write(&config_path, config).unwrap();
    let config_arg = config_path.display().to_string();
    let serve = [
        "serve",
        "--services",
        "disclosure,datapush",
        "--config",
        &config_arg,
    ];
    let keys_in = |pki: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(pki)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = keys_in(&pki);

    let (ok, _, stderr) = run(&serve, &[]).await;
    assert!(!ok, "serve started without its keys");
    for missing in ["register-log.key", "datapush-kek.key", "datapush-index.key"] {
        assert!(stderr.contains(missing), "{missing} named: {stderr}");
    }
    assert!(stderr.contains("creditmesh pki keys --dir"), "{stderr}");
    assert_eq!(keys_in(&pki), before, "serve made nothing");

    let pki_arg = pki.display().to_string();
    let (ok, made, stderr) = run(&["pki", "keys", "--dir", &pki_arg], &[]).await;
    assert!(ok, "{stderr}");
    assert!(made.contains("register-log.vkey"), "{made}");
    let made_files = keys_in(&pki);
    let vkey = std::fs::read_to_string(pki.join("register-log.vkey")).unwrap();

    // Nor without the Measures' effective date (Art. 32), which every deadline depends on.
    let undated = dir.path().join("undated.toml");
    std::fs::write(
        &undated,
        std::fs::read_to_string(&config_path)
            .unwrap()
            .replace("[measures]\neffective_on = \"2026-01-01\"\n", ""),
    )
    .unwrap();
    let undated = undated.display().to_string();
    let (ok, _, stderr) = run(
        &[
            "serve",
            "--services",
            "disclosure,datapush",
            "--config",
            &undated,
        ],
        &[],
    )
    .await;
    assert!(!ok, "serve started without the Measures' effective date");
    assert!(stderr.contains("measures.effective_on"), "{stderr}");

    let _serve = Command::new(BIN)
        .args(serve)
        .env_remove("CREDITMESH_DATABASE__URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ops = std::net::SocketAddr::from(([127, 0, 0, 1], ops_port));
    eventually("ready", Duration::from_secs(60), || async {
        (super::ops::get(ops, "/readyz").await?.0 == 200).then_some(())
    })
    .await;
    assert_eq!(keys_in(&pki), made_files, "serve made no other key");
    assert_eq!(
        std::fs::read_to_string(pki.join("register-log.vkey")).unwrap(),
        vkey,
        "the log key made for it"
    );
}

async fn run(args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `creditmesh-bench ARGS` and returns its last line (JSON) as printed and parsed.
async fn bench(args: &[&str]) -> (String, serde_json::Value) {
    let out = Command::new(BENCH)
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("a JSON line").to_owned();
    let figures = serde_json::from_str(&last).expect("valid JSON");
    (last, figures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_soak_prints_memory_and_latency_of_first_and_last_window() {
    let (last, figures) = bench(&[
        "soak",
        "--seconds",
        "3",
        "--window-seconds",
        "1",
        "--rate",
        "40",
    ])
    .await;
    for window in ["first", "last"] {
        for key in ["p50_ms", "p99_ms", "rss_mib"] {
            assert!(figures[window][key].as_f64().unwrap() > 0.0, "{last}");
        }
        assert!(figures[window]["calls"].as_u64().unwrap() >= 30, "{last}");
    }
    assert!(figures["rss_growth_mib"].is_number(), "{last}");
    assert_eq!(figures["errors"], 0, "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_register_prints_appends_and_reads() {
    let (last, figures) = bench(&[
        "register",
        "--agencies",
        "300",
        "--seconds",
        "1",
        "--rate",
        "40",
    ])
    .await;
    assert_eq!(figures["agencies"], 300, "{last}");
    assert!(figures["appends_per_s"].as_f64().unwrap() > 0.0, "{last}");
    assert!(
        figures["checkpointed_after_s"].as_f64().unwrap() > 0.0,
        "{last}"
    );
    for read in ["search_by_name", "get_by_uscc"] {
        assert_eq!(figures[read]["errors"], 0, "{last}");
        assert!(figures[read]["p99_ms"].as_f64().unwrap() > 0.0, "{last}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_push_prints_its_figures() {
    let (last, figures) = bench(&["push", "--records", "1200"]).await;
    assert_eq!(figures["stored"], 1200, "{last}");
    assert_eq!(figures["duplicates"], 1200, "{last}");
    assert_eq!(figures["rows_written_on_repush"], 0, "{last}");
    assert!(figures["push_rows_per_s"].as_f64().unwrap() > 0.0, "{last}");
    assert!(figures["peak_rss_mib"].as_f64().unwrap() > 0.0, "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_fairness_prints_both_p99s() {
    let (last, figures) = bench(&[
        "fairness",
        "--seconds",
        "1",
        "--rate",
        "20",
        "--share",
        "2",
        "--rounds",
        "2",
    ])
    .await;
    assert_eq!(figures["rounds"], 2, "{last}");
    for phase in ["alone", "crowded"] {
        assert!(figures[phase]["p99_ms"].as_f64().unwrap() > 0.0, "{last}");
        assert_eq!(figures[phase]["errors"], 0, "{last}");
    }
    // The flooding tenant was held to its share: some of its calls were shed.
    assert!(
        figures["flood_shed_per_s"].as_f64().unwrap() > 0.0,
        "{last}"
    );
    assert!(
        figures["flood_served_per_s"].as_f64().unwrap() > 0.0,
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_flood_prints_what_the_caps_held_and_memory_goes_back() {
    let (last, figures) = bench(&[
        "flood",
        "--addresses",
        "2",
        "--connections",
        "66",
        "--watches",
        "1",
        "--rounds",
        "1",
    ])
    .await;
    // 64 connections per address at most; the rest refused.
    assert_eq!(figures["connections_refused"], 4, "{last}");
    assert!(figures["watches_held"].as_u64().unwrap() > 0, "{last}");
    assert!(figures["watches_refused"].as_u64().unwrap() > 0, "{last}");
    assert_eq!(figures["regulator_failures_flooded"], 0, "{last}");
    assert!(figures["rss_before_mib"].as_f64().unwrap() > 0.0, "{last}");
    // Most of what the flood took is back with the system once it is gone (the allocator's
    // collector, crate::memory), not kept at the peak.
    let mib = |v: &serde_json::Value| v.as_f64().unwrap();
    let round = &figures["rounds"][0];
    let (before, peak, after) = (
        mib(&figures["rss_before_mib"]),
        mib(&round["rss_peak_mib"]),
        mib(&round["rss_after_mib"]),
    );
    assert!(peak > before, "{last}");
    assert!(after - before <= (peak - before) * 0.75, "{last}");
    // Every connection of the flood was closed again.
    let (before, after) = (
        figures["descriptors_before"].as_u64().unwrap(),
        figures["descriptors_after"].as_u64().unwrap(),
    );
    assert!(after <= before + 4, "{last}");
}

#[tokio::test]
async fn the_measures_validity_is_configuration() {
    let (ok, out, _) = run(
        &["measures"],
        &[("CREDITMESH_MEASURES__EFFECTIVE_ON", "2026-03-01")],
    )
    .await;
    assert!(ok);
    assert!(
        out.starts_with("in force from 2026-03-01 through 2031-02-28 (5 years)"),
        "{out}"
    );
    let (ok, out, _) = run(&["measures"], &[]).await;
    assert!(ok);
    assert!(out.contains("not configured"), "{out}");
    let (ok, _, err) = run(
        &["measures"],
        &[("CREDITMESH_MEASURES__EFFECTIVE_ON", "2026-02-30")],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("measures.effective_on"), "{err}");
}

#[tokio::test]
async fn calendar_commands_answer_from_the_shipped_data() {
    let (ok, out, _) = run(
        &[
            "calendar",
            "deadline",
            "--from",
            "2026-09-21",
            "--working-days",
            "10",
            "--no-regional",
        ],
        &[],
    )
    .await;
    assert!(ok);
    assert_eq!(out, "2026-10-12\n");
    let (_, out, _) = run(
        &[
            "calendar",
            "deadline",
            "--from",
            "2026-09-21",
            "--working-days",
            "10",
        ],
        &[],
    )
    .await;
    assert_eq!(
        out, "2026-10-12\n",
        "2026's regional days are known, and no open point is crossed"
    );
    let (_, out, _) = run(
        &[
            "calendar",
            "deadline",
            "--from",
            "2026-05-21",
            "--working-days",
            "3",
        ],
        &[],
    )
    .await;
    assert_eq!(
        out, "2026-05-26 provisional\n",
        "a weekend near Eid al-Adha 2026 may yet be a make-up working day"
    );
    let (_, out, _) = run(&["calendar", "is-working-day", "2025-06-09"], &[]).await;
    assert_eq!(out, "2025-06-09 day off\n", "Eid al-Adha in Xinjiang");
    let (_, out, _) = run(
        &["calendar", "is-working-day", "2025-06-09", "--no-regional"],
        &[],
    )
    .await;
    assert_eq!(out, "2025-06-09 working day\n");
    let (ok, _, err) = run(
        &[
            "calendar",
            "deadline",
            "--from",
            "2019-06-03",
            "--working-days",
            "1",
        ],
        &[],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("before the first year"), "{err}");

    // An operator adds Xinjiang's 2026 days: the deadline is final.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("regional")).unwrap();
    std::fs::write(
        dir.path().join("regional/xinjiang-2026.toml"),
        "year = 2026\nregion = \"650000\"\nsource = \"operator test notice\"\n\
         holidays = [{ date = \"2026-09-22\", name = \"test day\" }]\nworking_days = []\n",
    )
    .unwrap();
    let dir_str = dir.path().to_str().unwrap();
    let (_, out, _) = run(
        &[
            "calendar",
            "deadline",
            "--from",
            "2026-09-21",
            "--working-days",
            "10",
        ],
        &[("CREDITMESH_CALENDAR__DIR", dir_str)],
    )
    .await;
    assert_eq!(out, "2026-10-13\n");
}

#[tokio::test]
async fn id_check_decodes_or_says_why_not() {
    let (ok, out, _) = run(&["id", "check", "91653101MA78KT005T"], &[]).await;
    assert!(ok);
    assert!(
        out.starts_with("valid: unified social credit code"),
        "{out}"
    );
    assert!(out.contains("653100"), "{out}");
    let (ok, out, _) = run(&["id", "check", "91653101MA78KT005X"], &[]).await;
    assert!(!ok);
    assert_eq!(
        out,
        "invalid: unified social credit code: check character is 'X', expected 'T'\n"
    );
    let (ok, out, _) = run(&["id", "check", "650102199013071235"], &[]).await;
    assert!(!ok);
    assert!(
        out.starts_with("invalid: resident identity number: birth date"),
        "{out}"
    );
    let permit = super::filing::person_id("83000019850101123");
    let (ok, out, _) = run(&["id", "check", &permit], &[]).await;
    assert!(ok, "{out}");
    assert_eq!(out, "valid: hk macao taiwan residence permit\n");
}
