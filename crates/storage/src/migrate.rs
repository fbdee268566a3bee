use std::borrow::Cow;

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Row};

use crate::db::{Db, Engine};
use crate::error::StorageError;

/// One schema change, written once per engine. Versions below 100 belong to the shared
/// infrastructure tables (see [`crate::infra`]); a service numbers its own from 100.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub name: Cow<'static, str>,
    pub sqlite: Cow<'static, str>,
    pub postgres: Cow<'static, str>,
}

impl Migration {
    pub const fn new(
        version: i64,
        name: &'static str,
        sqlite: &'static str,
        postgres: &'static str,
    ) -> Self {
        Self {
            version,
            name: Cow::Borrowed(name),
            sqlite: Cow::Borrowed(sqlite),
            postgres: Cow::Borrowed(postgres),
        }
    }

    /// Row-level security on PostgreSQL for tables with a `tenant` column: a transaction
    /// scoped to a tenant (`Db::scope`) reads and writes only the rows that tenant may see
    /// (`creditmesh_tenant_visible`); one scoped to the region (`650000`), or not scoped, sees
    /// all. A no-op on SQLite. It (re)creates the function as first written, flat, so that the
    /// migrations already applied keep their checksums: new tables take [`Self::row_security`],
    /// and a list's last word on the function must not be this one
    /// ([`Self::leave_nested_tenants`]).
    pub fn tenant_row_security(version: i64, tables: &[&str]) -> Self {
        Self::policies(version, TENANT_VISIBLE_FLAT, tables)
    }

    /// Row-level security on PostgreSQL for tables with a `tenant` column, by the tenants'
    /// hierarchy (see [`Self::nested_tenants`]). A no-op on SQLite.
    pub fn row_security(version: i64, tables: &[&str]) -> Self {
        Self::policies(version, TENANT_VISIBLE, tables)
    }

    fn policies(version: i64, function: &str, tables: &[&str]) -> Self {
        let mut pg = String::new();
        for t in tables {
            pg.push_str(&format!(
                "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;\n\
                 ALTER TABLE {t} FORCE ROW LEVEL SECURITY;\n\
                 CREATE POLICY {t}_tenant ON {t} \
                 USING (creditmesh_tenant_visible(tenant)) \
                 WITH CHECK (creditmesh_tenant_visible(tenant));\n"
            ));
        }
        Self {
            version,
            name: Cow::Borrowed("tenant row-level security"),
            sqlite: Cow::Borrowed("SELECT 1;"),
            postgres: Cow::Owned(format!("{function}\n{pg}")),
        }
    }

    /// Whether `migrations`, applied in order, leave the visibility function as it is now.
    /// Services sharing a database each replace it: a list that did not would undo the others.
    pub fn leave_nested_tenants(migrations: &[Migration]) -> bool {
        let mut sorted: Vec<_> = migrations.iter().collect();
        sorted.sort_by_key(|m| m.version);
        sorted
            .iter()
            .rev()
            .find(|m| m.postgres.contains("FUNCTION creditmesh_tenant_visible"))
            .is_none_or(|m| m.postgres.starts_with(TENANT_VISIBLE))
    }

    /// Row security by the tenants' hierarchy (Art. 5): a prefecture's scope sees its own rows
    /// and its counties', a county's its own. A no-op on SQLite.
    pub fn nested_tenants(version: i64) -> Self {
        Self {
            version,
            name: Cow::Borrowed("a prefecture sees its counties' rows"),
            sqlite: Cow::Borrowed("SELECT 1;"),
            postgres: Cow::Borrowed(TENANT_VISIBLE),
        }
    }

    fn sql(&self, engine: Engine) -> &str {
        match engine {
            Engine::Sqlite => &self.sqlite,
            Engine::Postgres => &self.postgres,
        }
    }
}

/// Whether a row of `row_tenant` was visible to the transaction's tenant scope before there
/// were counties: the scope's own rows only.
const TENANT_VISIBLE_FLAT: &str = "CREATE OR REPLACE FUNCTION creditmesh_tenant_visible(row_tenant TEXT) \
RETURNS BOOLEAN LANGUAGE sql STABLE AS $$ \
SELECT COALESCE(current_setting('creditmesh.tenant', true), '') IN ('', '650000') \
OR row_tenant = current_setting('creditmesh.tenant', true) $$;";

/// Whether a row of `row_tenant` is visible to the transaction's tenant scope, as
/// `Tenant::can_see` says: the region all, a prefecture (`xxxx00`) its own and its counties'
/// (`xxxxnn`), a county its own.
const TENANT_VISIBLE: &str = "CREATE OR REPLACE FUNCTION creditmesh_tenant_visible(row_tenant TEXT) \
RETURNS BOOLEAN LANGUAGE sql STABLE AS $$ \
SELECT COALESCE(current_setting('creditmesh.tenant', true), '') IN ('', '650000') \
OR row_tenant = current_setting('creditmesh.tenant', true) \
OR (right(current_setting('creditmesh.tenant', true), 2) = '00' \
AND left(row_tenant, 4) = left(current_setting('creditmesh.tenant', true), 4)) $$;";

/// Applies the migrations of one service that are not applied yet, in version order, each in
/// its own write transaction, and refuses to start when an applied one has changed since, or
/// when the database holds one this build does not know (a newer build migrated it: running
/// an older one on it is not a rollback). Returns how many were applied.
pub async fn run(db: &Db, service: &str, migrations: &[Migration]) -> Result<usize, StorageError> {
    let table = format!("{service}_schema_migrations");
    // Under the same lock as each migration: two replicas starting at once on a new database
    // would otherwise both create the table, and PostgreSQL refuses the second.
    let mut tx = db.begin().await?;
    lock(db, &mut tx).await?;
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {table} (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)"
    )))
    .execute(&mut *tx)
    .await?;
    let known: Vec<i64> = migrations.iter().map(|m| m.version).collect();
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT version, name FROM {table} ORDER BY version"
    )))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    for row in rows {
        let version: i64 = row.try_get(0)?;
        if !known.contains(&version) {
            let name: String = row.try_get(1)?;
            return Err(StorageError::Config(format!(
                "the {service} database holds migration {version} ({name}), which this build \
                 does not know: a newer build migrated it; run that build, or restore the \
                 backup taken before the upgrade"
            )));
        }
    }

    let mut sorted: Vec<&Migration> = migrations.iter().collect();
    sorted.sort_by_key(|m| m.version);
    let mut applied = 0;
    for m in sorted {
        let sql = m.sql(db.engine());
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        let mut tx = db.begin().await?;
        lock(db, &mut tx).await?;
        let existing = sqlx::query(AssertSqlSafe(format!(
            "SELECT checksum FROM {table} WHERE version = $1"
        )))
        .bind(m.version)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            let stored: String = row.try_get(0)?;
            if stored != checksum {
                return Err(StorageError::Config(format!(
                    "migration {} ({}) of {service} changed after it was applied",
                    m.version, m.name
                )));
            }
            continue;
        }
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)"
        )))
        .bind(m.version)
        .bind(m.name.to_string())
        .bind(checksum)
        .bind(unix_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(service, version = m.version, name = %m.name, "applied migration");
        applied += 1;
    }
    Ok(applied)
}

/// On PostgreSQL, serialises the migrations of every process starting on the database for
/// the rest of `tx`: replicas of one service, and the services that share a database, whose
/// migrations replace shared objects (`creditmesh_tenant_visible`; PostgreSQL refuses two
/// concurrent replacements of one function with "tuple concurrently updated").
async fn lock(db: &Db, tx: &mut crate::Tx) -> Result<(), StorageError> {
    if db.engine() == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('creditmesh schema migrations'))")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
