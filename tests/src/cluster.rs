//! A PostgreSQL cluster of a test's own, in a directory of its own, for what the shared
//! server cannot be put through: started with TLS, stopped and started again.

use std::path::{Path, PathBuf};
use std::process::Command;

/// An initialised cluster; stopped (if running) when dropped.
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// Initialises a cluster under `dir` (trust authentication, user `postgres`), on a free
    /// port; `None` when no PostgreSQL server binaries are installed under
    /// /usr/lib/postgresql. As root, PostgreSQL runs as the `postgres` user (it will not run
    /// as root), created when missing.
    pub fn init(dir: &Path) -> Option<Self> {
        let bin = newest_bin()?;
        let uid = Command::new("id").arg("-u").output().unwrap().stdout;
        let as_postgres = String::from_utf8_lossy(&uid).trim() == "0";
        let data = dir.join("pg");
        std::fs::create_dir_all(&data).unwrap();
        let port = crate::free_port();
        let cluster = Self {
            bin,
            data,
            port,
            as_postgres,
        };
        if as_postgres {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            let _ = Command::new("useradd")
                .args(["--system", "--home-dir", "/var/lib/postgresql", "postgres"])
                .output();
            cluster.give_to_postgres();
        }
        let data_arg = cluster.data.display().to_string();
        cluster.run(
            "initdb",
            &["-D", &data_arg, "-A", "trust", "-U", "postgres"],
        );
        Some(cluster)
    }

    /// The data directory, where `postgresql.conf`, `pg_hba.conf` and certificates go.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// Makes everything in the data directory the server's own again (after files were
    /// written into it).
    pub fn give_to_postgres(&self) {
        if self.as_postgres {
            let chown = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&self.data)
                .status()
                .unwrap();
            assert!(chown.success());
        }
    }

    /// Starts the server on 127.0.0.1 with `settings` (`-c name=value …`) besides its port,
    /// and waits until it accepts connections.
    pub fn start(&self, settings: &str) {
        let data = self.data.display().to_string();
        let options = format!(
            "-p {} -k {data} -c listen_addresses=127.0.0.1 {settings}",
            self.port
        );
        let log = self.data.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-o", &options, "start"],
        );
    }

    /// Stops the server at once (`immediate`: as a crash or a lost host would).
    pub fn stop(&self) {
        let data = self.data.display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    /// `postgres://postgres@HOST:PORT/postgres?QUERY`.
    pub fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{query}", self.port)
    }

    /// `bin/NAME ARGS`, as the `postgres` user when the test runs as root.
    fn run(&self, name: &str, args: &[&str]) {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = command.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{name} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let _ = std::panic::catch_unwind(|| self.stop());
        }
    }
}

/// The newest PostgreSQL server binaries installed, if any.
fn newest_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let version = e.ok()?.path();
            let major = version.file_name()?.to_str()?.parse().ok()?;
            let bin = version.join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}
