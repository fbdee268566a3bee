//! Every workload of `deploy/k8s`, run as its manifest runs it: its command (the manifest's
//! `args`) as the manifest's user and group, with the root file system read-only, its Secrets
//! (certificates and keys) mounted read-only and readable by that group alone, and a writable
//! empty directory for its data. Each becomes ready — a service's `/readyz`, the gateway's
//! listeners, the website's stylesheet — or, the migration Job, ends well. As root (a mount
//! namespace of each process's own); skipped otherwise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use creditmesh_tests::free_port;
use creditmesh_tests::{Engine, TRUST_DOMAIN, fresh_database};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_creditmesh-under-test");

/// One workload of the manifests: its file, its container's arguments and its user.
#[derive(Debug)]
struct Workload {
    file: String,
    args: Vec<String>,
    uid: u32,
    gid: u32,
}

/// The YAML files under `dir`, at any depth, in order.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The workloads in `deploy/k8s` (the base and the components the nodes' overlays add): each
/// document with container `args` (written as a JSON array, as the manifests do) and the
/// pod's `runAsUser` and `runAsGroup`.
fn workloads() -> Vec<Workload> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s");
    let mut found = Vec::new();
    for path in yaml_files(&dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in text.split("\n---\n") {
            let field = |key: &str| {
                doc.lines()
                    .map(str::trim)
                    .find_map(|l| l.strip_prefix(key))
                    .map(str::trim)
            };
            let Some(args) = field("args:") else {
                continue;
            };
            let number = |key| field(key).unwrap_or_else(|| panic!("{key} in {path:?}"));
            found.push(Workload {
                file: path.strip_prefix(&dir).unwrap().display().to_string(),
                args: serde_json::from_str(args).unwrap(),
                uid: number("runAsUser:").parse().unwrap(),
                gid: number("runAsGroup:").parse().unwrap(),
            });
        }
    }
    found
}

fn sh(script: &str, args: &[&str]) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "{script} {args:?}");
}

/// Where a contained process runs: its data directory, its Secrets, its user and group, and
/// where its log goes.
struct Place<'a> {
    data: &'a Path,
    secrets: &'a Path,
    uid: u32,
    gid: u32,
    log: &'a Path,
}

/// Starts `args` of `bin` with `config` in a mount namespace of its own, as the place's user,
/// where its data directory is an empty writable file system and the Secrets and the root are
/// read-only.
fn contained(bin: &Path, args: &[String], config: &Path, at: &Place) -> Child {
    let (data, secrets, uid, gid) = (at.data, at.secrets, at.uid, at.gid);
    let script = r#"mount -t tmpfs -o mode=0770,uid="$3",gid="$4" tmpfs "$1" \
        && mount --bind -o ro "$2" "$2" && mount -o remount,bind,ro / \
        && shift 4 && exec setpriv --reuid "$UID_" --regid "$GID_" --clear-groups "$@""#;
    Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(data)
        .arg(secrets)
        .arg(uid.to_string())
        .arg(gid.to_string())
        .arg(bin)
        .args(args)
        .arg("--config")
        .arg(config)
        .env("UID_", uid.to_string())
        .env("GID_", gid.to_string())
        .env_remove("CREDITMESH_DATABASE__URL")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(at.log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The user id the process `pid` runs as.
fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_becomes_ready_as_its_user_on_a_read_only_root() {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("workloads: skipped, mount namespaces and other users need root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_database(Engine::Postgres, dir.path()).await else {
        return;
    };
    let workloads = workloads();
    assert!(workloads.len() >= 8, "{workloads:?}");
    let root = dir.path();
    sh("chmod 0755 \"$1\"", &[&root.display().to_string()]);
    let bin = root.join("creditmesh");
    std::fs::copy(BIN, &bin).unwrap();
    // The Secrets as the manifests mount them: owned by root, readable by the pod's group
    // (fsGroup) alone, mode 0440; the keys made once for every replica.
    let secrets = root.join("pki");
    creditmesh_pki::ensure_dev_pki(&secrets, TRUST_DOMAIN).unwrap();
    creditmesh::keys::make(&secrets, TRUST_DOMAIN, None).unwrap();
    let gid = workloads[0].gid.to_string();
    sh(
        "chown -R 0:\"$2\" \"$1\" && chmod 0750 \"$1\" && find \"$1\" -type f -exec chmod 0440 {} +",
        &[&secrets.display().to_string(), &gid],
    );

    let services = ["filing", "review", "disclosure", "complaints", "datapush"];
    let ports: Vec<u16> = services.iter().map(|_| free_port()).collect();
    let (node, public, ops, web) = (free_port(), free_port(), free_port(), free_port());
    let console = free_port();
    let mut shared = format!(
        "pki_dir = \"{}\"\n[measures]\neffective_on = \"2026-01-01\"\n[database]\nurl = \"{}\"\n[node]\nlisten = \"127.0.0.1:{node}\"\n\
         [public]\nlisten = \"127.0.0.1:{public}\"\n[ops]\nlisten = \"127.0.0.1:{ops}\"\n\
         [web]\nlisten = \"127.0.0.1:{web}\"\ngateway_url = \"https://127.0.0.1:{public}\"\n\
         [console]\nlisten = \"127.0.0.1:{console}\"\ngateway_url = \"https://127.0.0.1:{node}\"\n",
        secrets.display(),
        db.url,
    );
    for (name, port) in services.iter().zip(&ports) {
        shared.push_str(&format!(
            "[services.{name}]\nlisten = \"127.0.0.1:{port}\"\n\
             [backends.{name}]\nurl = \"https://127.0.0.1:{port}\"\n"
        ));
    }
    // The migration Job first, as the rollout runs it; then each workload alone.
    let mut ordered: Vec<&Workload> = workloads
        .iter()
        .filter(|w| w.args[0] == "migrate")
        .collect();
    ordered.extend(workloads.iter().filter(|w| w.args[0] != "migrate"));
    for (n, w) in ordered.into_iter().enumerate() {
        let data = root.join(format!("data-{n}"));
        std::fs::create_dir(&data).unwrap();
        let config = root.join(format!("config-{n}.toml"));
        std::fs::write(
            &config,
            format!("data_dir = \"{}\"\n{shared}", data.display()),
        )
        .unwrap();
        let what = format!("{} {:?} as {}:{}", w.file, w.args, w.uid, w.gid);
        let log = root.join(format!("log-{n}"));
        let place = Place {
            data: &data,
            secrets: &secrets,
            uid: w.uid,
            gid: w.gid,
            log: &log,
        };
        let mut child = contained(&bin, &w.args, &config, &place);
        let ready = async {
            match w.args[0].as_str() {
                "migrate" => {
                    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
                        .await
                        .map_err(|_| "still running after 60 s".to_owned())?
                        .map_err(|e| e.to_string())?;
                    status
                        .success()
                        .then_some(())
                        .ok_or_else(|| format!("ended with {status}"))
                }
                first => {
                    let pid = child.id().ok_or("ended at once")?;
                    let secrets_for_probe = secrets.clone();
                    let probe = |first: String| {
                        let secrets_for_probe = secrets_for_probe.clone();
                        async move {
                            match first.as_str() {
                                "serve" => {
                                    let at = SocketAddr::from(([127, 0, 0, 1], ops));
                                    (super::ops::get(at, "/readyz").await?.0 == 200).then_some(())
                                }
                                "gateway" => {
                                    let at = SocketAddr::from(([127, 0, 0, 1], ops));
                                    let ready = super::ops::get(at, "/readyz").await?.0 == 200;
                                    let public =
                                        tokio::net::TcpStream::connect(("127.0.0.1", public));
                                    (ready && public.await.is_ok()).then_some(())
                                }
                                "web" => {
                                    let at = SocketAddr::from(([127, 0, 0, 1], web));
                                    (super::ops::get(at, "/static/site.css").await?.0 == 200)
                                        .then_some(())
                                }
                                // An officer's certificate gets the stylesheet.
                                "console" => {
                                    tokio::net::TcpStream::connect(("127.0.0.1", console))
                                        .await
                                        .ok()?;
                                    let url =
                                        format!("https://127.0.0.1:{console}/static/site.css");
                                    let (status, _, _) = creditmesh_tests::https_get_as(
                                        &secrets_for_probe,
                                        Some("regulator-650100"),
                                        &url,
                                    )
                                    .await;
                                    (status == 200).then_some(())
                                }
                                other => panic!("no readiness known for {other}"),
                            }
                        }
                    };
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                    loop {
                        if probe(first.to_owned()).await.is_some() {
                            break;
                        }
                        if let Ok(Some(status)) = child.try_wait() {
                            return Err(format!("ended with {status}"));
                        }
                        if tokio::time::Instant::now() > deadline {
                            return Err("not ready within 60 s".into());
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    let runs_as = uid_of(pid);
                    (runs_as == Some(w.uid))
                        .then_some(())
                        .ok_or_else(|| format!("runs as {runs_as:?}"))
                }
            }
        }
        .await;
        if let Err(why) = ready {
            let _ = child.start_kill();
            let _ = child.wait().await;
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("{what}: {why}\n{log}");
        }
        eprintln!("workloads: {what} ready");
        if w.args[0] == "gateway" {
            gateway_counts_what_it_forwards(public, ops, &secrets).await;
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// A public call through the gateway on `public` (its backend is not running here) is counted
/// on the gateway's operations port `ops` by method, caller and status.
async fn gateway_counts_what_it_forwards(public: u16, ops: u16, pki: &Path) {
    use creditmesh_proto::disclosure::v1::GetRegisterHeadRequest;
    use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
    let at = SocketAddr::from(([127, 0, 0, 1], public));
    let mut register = DisclosureServiceClient::new(creditmesh_tests::server_tls(at, pki).await);
    let answer = register
        .get_register_head(GetRegisterHeadRequest {})
        .await
        .unwrap_err();
    let code = (answer.code() as i32).to_string();
    let text = super::ops::get(SocketAddr::from(([127, 0, 0, 1], ops)), "/metrics")
        .await
        .unwrap()
        .1;
    let labels = [
        ("rpc_service", "creditmesh.disclosure.v1.DisclosureService"),
        ("rpc_method", "GetRegisterHead"),
        ("tenant", "public"),
        ("rpc_grpc_status_code", code.as_str()),
    ];
    assert_eq!(
        super::ops::gauge(&text, "rpc_server_calls_total", &labels),
        Some(1.0),
        "{answer:?}\n{text}"
    );
}

/// Each node's configuration as its overlay mounts it — the region's shared file, then the
/// node's own — loads and passes every check `serve` makes of it.
#[test]
fn every_node_configuration_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s");
    let shared = dir.join("base/config.toml");
    let mut nodes = Vec::new();
    for entry in std::fs::read_dir(dir.join("overlays")).unwrap() {
        let node = entry.unwrap().path().join("node.toml");
        let cfg = creditmesh::Config::load(&[&shared, &node])
            .unwrap_or_else(|e| panic!("{}: {e:#}", node.display()));
        nodes.push((node, cfg));
    }
    assert!(nodes.len() >= 3, "the region and its prefectures' nodes");
    for (node, cfg) in &nodes {
        assert_eq!(cfg.pki_dir(), PathBuf::from("/pki"), "{}", node.display());
        let region = node.parent().unwrap().ends_with("region");
        assert_eq!(
            cfg.tenant_backends.contains_key("650100"),
            region,
            "{}: only the region sends a prefecture's review to its node",
            node.display()
        );
    }
}
