//! nginx as a reference proxy for `bench gateway --nginx PATH`: `grpc_pass` to the same
//! backend, mutual TLS on both legs with the same certificates as the gateway, as many worker
//! processes as the machine has cores. It forwards a fixed principal (it cannot read ours from
//! a certificate), which the benchmark's calls do not depend on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub(crate) struct Nginx {
    child: Child,
    pub addr: std::net::SocketAddr,
}

impl Nginx {
    /// Starts `binary` in front of `backend` (whose certificate names `backend_name`), with
    /// its configuration and logs under `dir`.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        pki: &Path,
        backend: std::net::SocketAddr,
        backend_name: &str,
    ) -> Result<Self> {
        let dir = dir.join("nginx");
        std::fs::create_dir_all(&dir)?;
        // nginx cannot listen on port 0: take a free port and hand it over.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let pem = |name: &str| pki.join(name).display().to_string();
        let conf = format!(
            r#"daemon off;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    # By default nginx closes a connection after 1 000 requests, which a benchmark's
    # persistent connections would see as errors.
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    upstream backend {{
        server {backend};
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 600s;
    }}
    server {{
        listen {addr} ssl http2;
        ssl_certificate {gateway_cert};
        ssl_certificate_key {gateway_key};
        ssl_client_certificate {ca};
        ssl_verify_client on;
        location / {{
            grpc_pass grpcs://backend;
            grpc_ssl_certificate {gateway_cert};
            grpc_ssl_certificate_key {gateway_key};
            grpc_ssl_trusted_certificate {ca};
            grpc_ssl_verify on;
            grpc_ssl_name {backend_name};
            grpc_ssl_session_reuse on;
            grpc_set_header {principal} public;
        }}
    }}
}}
"#,
            dir = dir.display(),
            gateway_cert = pem("service-gateway.pem"),
            gateway_key = pem("service-gateway.key"),
            ca = pem("ca.pem"),
            principal = creditmesh_rpc::PRINCIPAL_HEADER,
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut nginx = Self { child, addr };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(nginx);
            }
            if let Some(status) = nginx.child.try_wait()? {
                bail!(
                    "nginx exited with {status}; see {}",
                    dir.join("error.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        nginx.stop();
        bail!("nginx did not listen on {addr} within 5 s")
    }

    pub fn stop(&mut self) {
        // SIGTERM asks for a fast shutdown of master and workers.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

/// `nginx` when it is on the `PATH` or in `/usr/sbin`.
pub fn find() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}
