//! A real browser for the website's tests: Debian's Chromium, headless, driven over WebDriver
//! by its ChromeDriver (`scripts/browser.sh` installs both and says where they are).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use tokio::process::{Child, Command};

const DRIVER_ENV: &str = "CREDITMESH_TEST_CHROMEDRIVER";

pub struct Browser {
    pub client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A fresh headless browser with an empty profile, or `None` when this run has none (under
    /// CI a missing browser fails the test instead of skipping it).
    pub async fn start() -> Option<Self> {
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
        let child = Command::new(&driver)
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

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
