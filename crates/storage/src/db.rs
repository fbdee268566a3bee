use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};

use crate::error::StorageError;
use crate::fair::{FairGate, Permit, current_lane};

/// A transaction holding its place at the pool: `BEGIN IMMEDIATE` on SQLite for writes, a
/// plain `BEGIN` on PostgreSQL.
pub struct Tx {
    // Dropped first: the connection goes back to the pool before its place is handed on.
    inner: sqlx::Transaction<'static, Any>,
    _permit: Permit,
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.inner.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.inner.rollback().await
    }
}

impl Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.inner
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }
}

/// A pooled connection outside any transaction, holding its place at the pool.
pub struct Conn {
    inner: PoolConnection<Any>,
    _permit: Permit,
}

impl Deref for Conn {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.inner
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DbConfig {
    /// `sqlite://PATH` (created when missing) or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_ms: u64,
    /// SQLite only: how long a writer waits for the write lock before giving up.
    pub busy_timeout_ms: u64,
}

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://creditmesh-data/db/creditmesh.sqlite".into(),
            max_connections: 8,
            min_connections: 0,
            acquire_timeout_ms: 5_000,
            busy_timeout_ms: 10_000,
        }
    }
}

impl DbConfig {
    /// Returns the engine named by the URL, or why the URL is unusable.
    pub fn engine(&self) -> Result<Engine, String> {
        if self.url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if self.url.starts_with("postgres://") || self.url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            Err("must start with sqlite: or postgres://".into())
        }
    }

    /// Every problem with the settings, as `(key, why)` under `prefix`.
    pub fn validate(&self, prefix: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Err(why) = self.engine() {
            out.push((format!("{prefix}.url"), why));
        }
        if self.max_connections == 0 {
            out.push((
                format!("{prefix}.max_connections"),
                "must be at least 1".into(),
            ));
        }
        if self.min_connections > self.max_connections {
            out.push((
                format!("{prefix}.min_connections"),
                "must not exceed max_connections".into(),
            ));
        }
        if self.acquire_timeout_ms == 0 {
            out.push((
                format!("{prefix}.acquire_timeout_ms"),
                "must be positive".into(),
            ));
        }
        out
    }
}

/// The pool behind a gate that hands its connections out fairly between tenants
/// ([`crate::fair`]): every transaction and connection taken through `Db` holds a place.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    gate: Arc<FairGate>,
    engine: Engine,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("engine", &self.engine)
            .field("connections", &self.gate.capacity())
            .finish_non_exhaustive()
    }
}

impl Db {
    pub async fn connect(cfg: &DbConfig) -> Result<Self, StorageError> {
        sqlx::any::install_default_drivers();
        let engine = cfg.engine().map_err(StorageError::Config)?;
        let mut url = cfg.url.clone();
        if engine == Engine::Sqlite {
            let path = url
                .trim_start_matches("sqlite:")
                .trim_start_matches("//")
                .split('?')
                .next()
                .unwrap_or_default()
                .to_owned();
            if let Some(parent) = std::path::Path::new(&path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StorageError::Config(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        let options: AnyConnectOptions = url
            .parse()
            .map_err(|e| StorageError::Config(format!("database url: {e}")))?;
        let busy_timeout_ms = cfg.busy_timeout_ms;
        let pool = AnyPoolOptions::new()
            .max_connections(cfg.max_connections)
            .min_connections(cfg.min_connections)
            .acquire_timeout(Duration::from_millis(cfg.acquire_timeout_ms))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "PRAGMA busy_timeout = {busy_timeout_ms}"
                        )))
                        .await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let gate = FairGate::new(
            cfg.max_connections as usize,
            Duration::from_millis(cfg.acquire_timeout_ms),
        );
        Ok(Self { pool, gate, engine })
    }

    /// The pool itself, outside the gate: for tests and tools, not for serving calls.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The gate in front of the pool.
    pub fn gate(&self) -> &Arc<FairGate> {
        &self.gate
    }

    /// A connection for reads outside a transaction, taken in the current call's lane.
    pub async fn acquire(&self) -> Result<Conn, StorageError> {
        let permit = self.gate.acquire(current_lane()).await?;
        Ok(Conn {
            inner: self.pool.acquire().await?,
            _permit: permit,
        })
    }

    async fn begin_with(&self, statement: &'static str) -> Result<Tx, StorageError> {
        let permit = self.gate.acquire(current_lane()).await?;
        Ok(Tx {
            inner: self.pool.begin_with(statement).await?,
            _permit: permit,
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front, so that a
    /// transaction that reads before it writes never fails with "database is locked".
    pub async fn begin(&self) -> Result<Tx, StorageError> {
        match self.engine {
            Engine::Sqlite => self.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.begin_with("BEGIN").await,
        }
    }

    /// A read transaction seeing only `tenant`'s rows (all rows for the region or `None`). On
    /// PostgreSQL row-level security enforces it as a second line behind the service's own
    /// filters; SQLite relies on those filters alone.
    pub async fn read_scoped(&self, tenant: Option<&str>) -> Result<Tx, StorageError> {
        let mut tx = match self.engine {
            Engine::Sqlite => self.begin_with("BEGIN").await?,
            Engine::Postgres => self.begin_with("BEGIN READ ONLY").await?,
        };
        if let Some(tenant) = tenant {
            self.scope(&mut tx, tenant).await?;
        }
        Ok(tx)
    }

    /// Limits the rest of `tx` to `tenant`'s rows (PostgreSQL row-level security).
    pub async fn scope(&self, tx: &mut Tx, tenant: &str) -> Result<(), StorageError> {
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT set_config('creditmesh.tenant', $1, true)")
                .bind(tenant.to_owned())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
