//! A real browser for the website's tests: Debian's Chromium, headless, driven over WebDriver
//! by its ChromeDriver (`scripts/browser.sh` installs both and says where they are).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use tokio::process::{Child, Command};

const DRIVER_ENV: &str = "CREDITMESH_TEST_CHROMEDRIVER";
const AXE_ENV: &str = "CREDITMESH_TEST_AXE";

pub struct Browser {
    pub client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
    _home: Option<tempfile::TempDir>,
}

/// The managed policy (written by `scripts/browser.sh`) under which Chromium presents, without
/// asking, a certificate of the test CA to a console on 127.0.0.1.
pub const CERTIFICATE_POLICY: &str = "/etc/chromium/policies/managed/creditmesh-tests.json";

fn run(program: &str, args: &[&str]) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Browser {
    /// A fresh headless browser with an empty profile, or `None` when this run has none (under
    /// CI a missing browser fails the test instead of skipping it).
    pub async fn start() -> Option<Self> {
        Self::launch(None).await
    }

    /// A browser that trusts the CA of `pki_dir` and holds the certificate `name` (its `.pem`
    /// and `.key` there) in its own NSS database, or none when `name` is `None`: as an officer
    /// whose soft certificate is installed in the browser.
    pub async fn with_certificate(pki_dir: &std::path::Path, name: Option<&str>) -> Option<Self> {
        if !std::path::Path::new(CERTIFICATE_POLICY).exists() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{CERTIFICATE_POLICY} must exist under CI (scripts/browser.sh writes it)");
            }
            eprintln!("skipped: no {CERTIFICATE_POLICY}");
            return None;
        }
        let home = tempfile::tempdir().expect("a browser home");
        let db = home.path().join(".pki/nssdb");
        std::fs::create_dir_all(&db).expect("nss db directory");
        let db_arg = format!("sql:{}", db.display());
        run("certutil", &["-N", "-d", &db_arg, "--empty-password"]);
        let ca = pki_dir.join("ca.pem");
        run(
            "certutil",
            &[
                "-A",
                "-n",
                "creditmesh test CA",
                "-t",
                "C,,",
                "-i",
                &ca.to_string_lossy(),
                "-d",
                &db_arg,
            ],
        );
        if let Some(name) = name {
            let p12 = home.path().join(format!("{name}.p12"));
            run(
                "openssl",
                &[
                    "pkcs12",
                    "-export",
                    "-in",
                    &pki_dir.join(format!("{name}.pem")).to_string_lossy(),
                    "-inkey",
                    &pki_dir.join(format!("{name}.key")).to_string_lossy(),
                    "-out",
                    &p12.to_string_lossy(),
                    "-passout",
                    "pass:",
                ],
            );
            run(
                "pk12util",
                &["-i", &p12.to_string_lossy(), "-d", &db_arg, "-W", ""],
            );
        }
        Self::launch(Some(home)).await
    }

    async fn launch(home: Option<tempfile::TempDir>) -> Option<Self> {
        let driver = match std::env::var(DRIVER_ENV) {
            Ok(path) if !path.is_empty() => PathBuf::from(path),
            _ => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!(
                        "{DRIVER_ENV} must be set under CI: the browser tests may not be skipped"
                    );
                }
                eprintln!("skipped: {DRIVER_ENV} is not set");
                return None;
            }
        };
        let chromium = std::env::var("CREDITMESH_TEST_CHROMIUM")
            .unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = crate::free_addr().port();
        let mut command = Command::new(&driver);
        if let Some(home) = &home {
            command.env("HOME", home.path());
        }
        let child = command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        crate::eventually(
            "chromedriver listening",
            Duration::from_secs(20),
            || async move { tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()) },
        )
        .await;
        let profile = tempfile::tempdir().expect("a browser profile");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1200,1400",
                    "--lang=zh-CN",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .expect("a browser session");
        Some(Self {
            client,
            _driver: child,
            _profile: profile,
            _home: home,
        })
    }

    /// Saves a screenshot of the page as `NAME.png` under `CREDITMESH_SCREENSHOT_DIR`
    /// (default `target/screenshots`).
    pub async fn screenshot(&self, name: &str) {
        let dir = std::env::var("CREDITMESH_SCREENSHOT_DIR").map_or_else(
            |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots"),
            PathBuf::from,
        );
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }

    /// Records the page as it stands: a screenshot `NAME.png` (see [`Browser::screenshot`]),
    /// and axe-core's audit of it (`CREDITMESH_TEST_AXE`, fetched by `scripts/browser.sh`),
    /// which must find no serious or critical violation.
    pub async fn record_page(&self, name: &str) {
        self.screenshot(name).await;
        if let Some(found) = self.audit(name).await {
            assert!(
                found.is_empty(),
                "{name}: axe-core finds serious or critical violations: {found:#?}"
            );
        }
    }

    /// axe-core's serious and critical violations on the page as it stands, each with where it
    /// is; `None` outside CI when axe-core is not at hand.
    pub async fn audit(&self, name: &str) -> Option<Vec<String>> {
        let axe = match std::env::var(AXE_ENV) {
            Ok(path) if !path.is_empty() => {
                std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{AXE_ENV}={path}: {e}"))
            }
            _ => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{AXE_ENV} must be set under CI: every page is audited");
                }
                eprintln!("{name}: not audited, {AXE_ENV} is not set");
                return None;
            }
        };
        let script = format!(
            "const done = arguments[arguments.length - 1];\n{axe}\n\
             axe.run(document, {{ resultTypes: ['violations'] }})\
               .then(r => done(r.violations\
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                 .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at ' +\
                   v.nodes.map(n => n.target.join(' ')).join(', '))))\
               .catch(e => done(['axe-core failed: ' + e]));"
        );
        let found = self
            .client
            .execute_async(&script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{name}: axe-core did not run: {e}"));
        Some(serde_json::from_value(found).expect("a list of violations"))
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
