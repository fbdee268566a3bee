//! The infrastructure tables every service has under its own prefix: the transactional outbox,
//! the inbox of applied event ids, the audit trail and stored responses of idempotent calls.

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::db::{Db, Engine};
use crate::error::StorageError;
use crate::migrate::Migration;

/// An event to write in the same transaction as the state change it announces.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub event_type: &'a str,
    pub tenant: &'a str,
    pub principal: &'a str,
    pub subject: &'a str,
    pub payload: Vec<u8>,
}

/// One pending delivery of an event to one consumer.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub seq: i64,
    pub event_id: String,
    pub consumer: String,
    pub event_type: String,
    pub tenant: String,
    pub principal: String,
    pub subject: String,
    pub occurred_at: i64,
    pub payload: Vec<u8>,
    pub attempts: i64,
}

/// The deliveries waiting for one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub consumer: String,
    pub pending: i64,
    /// When the oldest pending event occurred, microseconds since the epoch.
    pub oldest_occurred_at: i64,
}

/// One line of the audit trail: who (principal and tenant) did what, when, with what outcome,
/// so that every authority's act is attributable (Art. 25).
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub at: i64,
    pub principal: &'a str,
    pub tenant: &'a str,
    pub method: &'a str,
    pub request_id: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
}

/// The database's clock in microseconds since the epoch, by which outbox leases are judged.
const NOW_SQLITE: &str = "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)";
const NOW_POSTGRES: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)";

/// The sequence numbers of the deliveries due now (`$1`, the relay's clock), oldest first, at
/// most `$2`: not delivered, not leased by the database clock `now`, and each the earliest
/// undelivered event of its aggregate for its consumer.
fn due(s: &str, now: &str, lock: &str) -> String {
    format!(
        "SELECT o.seq FROM {s}_outbox o \
         WHERE o.delivered_at IS NULL AND o.next_attempt_at <= $1 AND o.leased_until <= {now} \
         AND NOT EXISTS (SELECT 1 FROM {s}_outbox e WHERE e.consumer = o.consumer \
         AND e.subject = o.subject AND e.delivered_at IS NULL AND e.seq < o.seq) \
         ORDER BY o.seq LIMIT $2{lock}"
    )
}

/// The infrastructure tables of one service, with their SQL prepared once.
#[derive(Debug, Clone)]
pub struct Infra {
    service: &'static str,
    sql: Arc<Sql>,
}

#[derive(Debug)]
struct Sql {
    insert_outbox: Arc<str>,
    claim_sqlite: Arc<str>,
    any_due_sqlite: Arc<str>,
    claim_postgres: Arc<str>,
    failed: Arc<str>,
    pending: Arc<str>,
    backlog: Arc<str>,
    inbox: Arc<str>,
    audit: Arc<str>,
    idem_get: Arc<str>,
    idem_put: Arc<str>,
    idem_purge: Arc<str>,
}

impl Infra {
    pub fn new(service: &'static str) -> Self {
        let s = service;
        let returning = "seq, event_id, consumer, event_type, tenant, principal, subject, \
                         occurred_at, payload, attempts";
        let now_sqlite = NOW_SQLITE.to_owned();
        let now_postgres = NOW_POSTGRES.to_owned();
        let sql = Sql {
            insert_outbox: format!(
                "INSERT INTO {s}_outbox (event_id, consumer, event_type, tenant, principal, subject, \
                 occurred_at, payload, attempts, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0)"
            )
            .into(),
            // A new event is due at once (`next_attempt_at` 0), whatever time it says it
            // happened: that time may come from another node's clock, ahead of this one.
            // An event waits behind an undelivered earlier event of the same aggregate (subject)
            // for the same consumer, so that a failed delivery is never overtaken. A claimed
            // row is leased until the database's clock passes `leased_until`: every replica
            // judges a lease by the same clock, and skips the rows another holds.
            claim_sqlite: format!(
                "UPDATE {s}_outbox SET leased_until = {now_sqlite} + $3 WHERE seq IN ({due}) \
                 RETURNING {returning}",
                due = due(s, &now_sqlite, ""),
            )
            .into(),
            // The claim takes SQLite's one write lock even when it finds nothing: a relay looks
            // first, so that an idle poll never queues behind (or ahead of) a writer.
            any_due_sqlite: due(s, &now_sqlite, "").into(),
            claim_postgres: format!(
                "WITH claimed (claimed_seq) AS ({due}) UPDATE {s}_outbox \
                 SET leased_until = {now_postgres} + $3 FROM claimed WHERE seq = claimed_seq \
                 RETURNING {returning}",
                due = due(s, &now_postgres, " FOR UPDATE OF o SKIP LOCKED"),
            )
            .into(),
            failed: format!(
                "UPDATE {s}_outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, \
                 leased_until = 0 WHERE seq = $3 AND delivered_at IS NULL"
            )
            .into(),
            pending: format!("SELECT COUNT(*) FROM {s}_outbox WHERE delivered_at IS NULL").into(),
            backlog: format!(
                "SELECT consumer, COUNT(*), MIN(occurred_at) FROM {s}_outbox \
                 WHERE delivered_at IS NULL GROUP BY consumer"
            )
            .into(),
            inbox: format!(
                "INSERT INTO {s}_inbox (event_id, source, event_type, received_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (event_id) DO NOTHING"
            )
            .into(),
            audit: format!(
                "INSERT INTO {s}_audit (at, principal, tenant, method, request_id, outcome, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)"
            )
            .into(),
            idem_get: format!(
                "SELECT response FROM {s}_idempotency WHERE principal = $1 AND method = $2 AND request_id = $3"
            )
            .into(),
            idem_put: format!(
                "INSERT INTO {s}_idempotency (principal, method, request_id, response, created_at) \
                 VALUES ($1, $2, $3, $4, $5)"
            )
            .into(),
            idem_purge: format!("DELETE FROM {s}_idempotency WHERE created_at < $1").into(),
        };
        Self {
            service,
            sql: Arc::new(sql),
        }
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The migrations creating this service's infrastructure tables (versions 1 to 99).
    pub fn migrations(&self) -> Vec<Migration> {
        let s = self.service;
        let common = |id: &str| {
            format!(
                "CREATE TABLE {s}_outbox (seq {id}, event_id TEXT NOT NULL, consumer TEXT NOT NULL, \
                 event_type TEXT NOT NULL, tenant TEXT NOT NULL, principal TEXT NOT NULL, \
                 subject TEXT NOT NULL, occurred_at BIGINT NOT NULL, payload {blob} NOT NULL, \
                 attempts BIGINT NOT NULL, next_attempt_at BIGINT NOT NULL, last_error TEXT, \
                 delivered_at BIGINT, UNIQUE (event_id, consumer));\n\
                 CREATE INDEX {s}_outbox_due ON {s}_outbox (next_attempt_at, seq) WHERE delivered_at IS NULL;\n\
                 CREATE TABLE {s}_inbox (event_id TEXT PRIMARY KEY, source TEXT NOT NULL, \
                 event_type TEXT NOT NULL, received_at BIGINT NOT NULL);\n\
                 CREATE TABLE {s}_audit (id {id}, at BIGINT NOT NULL, principal TEXT NOT NULL, \
                 tenant TEXT NOT NULL, method TEXT NOT NULL, request_id TEXT NOT NULL, \
                 outcome TEXT NOT NULL, detail TEXT NOT NULL);\n\
                 CREATE INDEX {s}_audit_tenant_at ON {s}_audit (tenant, at);\n\
                 CREATE TABLE {s}_idempotency (principal TEXT NOT NULL, method TEXT NOT NULL, \
                 request_id TEXT NOT NULL, response {blob} NOT NULL, created_at BIGINT NOT NULL, \
                 PRIMARY KEY (principal, method, request_id));",
                blob = if id.starts_with("INTEGER") {
                    "BLOB"
                } else {
                    "BYTEA"
                },
            )
        };
        let pending = format!(
            "CREATE INDEX {s}_outbox_pending ON {s}_outbox (consumer, subject, seq) \
             WHERE delivered_at IS NULL;"
        );
        vec![
            Migration {
                version: 1,
                name: Cow::Borrowed("infrastructure tables"),
                sqlite: common("INTEGER PRIMARY KEY AUTOINCREMENT").into(),
                postgres: common("BIGSERIAL PRIMARY KEY").into(),
            },
            Migration {
                version: 2,
                name: Cow::Borrowed("pending deliveries by aggregate"),
                sqlite: pending.clone().into(),
                postgres: pending.into(),
            },
            // Answers stored before they were sealed are dropped: they held secrets in clear.
            Migration {
                version: 3,
                name: Cow::Borrowed("stored answers sealed"),
                sqlite: format!(
                    "DELETE FROM {s}_idempotency; \
                     CREATE INDEX {s}_idempotency_age ON {s}_idempotency (created_at);"
                )
                .into(),
                postgres: format!(
                    "DELETE FROM {s}_idempotency; \
                     CREATE INDEX {s}_idempotency_age ON {s}_idempotency (created_at);"
                )
                .into(),
            },
            // Replicas share one outbox: a relay leases the rows it delivers.
            Migration {
                version: 4,
                name: Cow::Borrowed("outbox leases"),
                sqlite: format!(
                    "ALTER TABLE {s}_outbox ADD COLUMN leased_until BIGINT NOT NULL DEFAULT 0;"
                )
                .into(),
                postgres: format!(
                    "ALTER TABLE {s}_outbox ADD COLUMN leased_until BIGINT NOT NULL DEFAULT 0;"
                )
                .into(),
            },
        ]
    }

    /// Writes `event` once per consumer, in the caller's transaction. Returns the event id.
    pub async fn publish(
        &self,
        conn: &mut AnyConnection,
        consumers: &[&str],
        event: NewEvent<'_>,
        now_micros: i64,
    ) -> Result<String, StorageError> {
        let id = uuid::Uuid::now_v7().to_string();
        for consumer in consumers {
            sqlx::query(AssertSqlSafe(self.sql.insert_outbox.clone()))
                .bind(id.clone())
                .bind(consumer.to_string())
                .bind(event.event_type.to_owned())
                .bind(event.tenant.to_owned())
                .bind(event.principal.to_owned())
                .bind(event.subject.to_owned())
                .bind(now_micros)
                .bind(event.payload.clone())
                .execute(&mut *conn)
                .await?;
        }
        Ok(id)
    }

    /// Claims the deliveries whose time has come, oldest first, at most `limit`, leasing each
    /// for `lease_micros` by the database's clock: until it expires, or the row is marked
    /// delivered, failed or released, no other relay on this database takes it. On
    /// PostgreSQL rows another relay is claiming are skipped, not waited for.
    pub async fn claim(
        &self,
        db: &Db,
        now_micros: i64,
        limit: i64,
        lease_micros: i64,
    ) -> Result<Vec<OutboxRow>, StorageError> {
        let mut conn = db.acquire().await?;
        let sql = match db.engine() {
            Engine::Sqlite => {
                let any = sqlx::query(AssertSqlSafe(self.sql.any_due_sqlite.clone()))
                    .bind(now_micros)
                    .bind(1i64)
                    .fetch_optional(&mut *conn)
                    .await?;
                if any.is_none() {
                    return Ok(Vec::new());
                }
                self.sql.claim_sqlite.clone()
            }
            Engine::Postgres => self.sql.claim_postgres.clone(),
        };
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now_micros)
            .bind(limit)
            .bind(lease_micros)
            .fetch_all(&mut *conn)
            .await?;
        let mut rows = rows
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    seq: r.try_get(0)?,
                    event_id: r.try_get(1)?,
                    consumer: r.try_get(2)?,
                    event_type: r.try_get(3)?,
                    tenant: r.try_get(4)?,
                    principal: r.try_get(5)?,
                    subject: r.try_get(6)?,
                    occurred_at: r.try_get(7)?,
                    payload: r.try_get(8)?,
                    attempts: r.try_get(9)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
    }

    /// Gives back the leases of claimed rows this relay did not deliver, for any relay to take.
    pub async fn release(&self, db: &Db, seqs: &[i64]) -> Result<(), StorageError> {
        if seqs.is_empty() {
            return Ok(());
        }
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {}_outbox SET leased_until = 0 WHERE seq IN ({}) AND delivered_at IS NULL",
            self.service,
            seq_list(seqs)
        )))
        .execute(&mut *db.acquire().await?)
        .await?;
        Ok(())
    }

    /// Marks many deliveries done in one statement.
    pub async fn mark_delivered_all(
        &self,
        db: &Db,
        seqs: &[i64],
        now_micros: i64,
    ) -> Result<(), StorageError> {
        if seqs.is_empty() {
            return Ok(());
        }
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {}_outbox SET delivered_at = $1 WHERE seq IN ({})",
            self.service,
            seq_list(seqs)
        )))
        .bind(now_micros)
        .execute(&mut *db.acquire().await?)
        .await?;
        Ok(())
    }

    pub async fn mark_failed(
        &self,
        db: &Db,
        seq: i64,
        next_attempt_micros: i64,
        error: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(AssertSqlSafe(self.sql.failed.clone()))
            .bind(next_attempt_micros)
            .bind(error.chars().take(500).collect::<String>())
            .bind(seq)
            .execute(&mut *db.acquire().await?)
            .await?;
        Ok(())
    }

    /// Deliveries not yet acknowledged by their consumer.
    pub async fn pending(&self, db: &Db) -> Result<i64, StorageError> {
        let row = sqlx::query(AssertSqlSafe(self.sql.pending.clone()))
            .fetch_one(&mut *db.acquire().await?)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// What waits for each consumer: the deliveries not yet acknowledged, and when the oldest
    /// of their events occurred (microseconds). A consumer with nothing pending is absent.
    pub async fn backlog(&self, db: &Db) -> Result<Vec<Backlog>, StorageError> {
        let rows = sqlx::query(AssertSqlSafe(self.sql.backlog.clone()))
            .fetch_all(&mut *db.acquire().await?)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Backlog {
                    consumer: r.try_get(0)?,
                    pending: r.try_get(1)?,
                    oldest_occurred_at: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Records an incoming event id in the caller's transaction; `false` when it was applied
    /// before, in which case the caller must not apply it again.
    pub async fn accept_event(
        &self,
        conn: &mut AnyConnection,
        event_id: &str,
        source: &str,
        event_type: &str,
        now_micros: i64,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(AssertSqlSafe(self.sql.inbox.clone()))
            .bind(event_id.to_owned())
            .bind(source.to_owned())
            .bind(event_type.to_owned())
            .bind(now_micros)
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn audit(
        &self,
        conn: &mut AnyConnection,
        entry: &AuditEntry<'_>,
    ) -> Result<(), StorageError> {
        sqlx::query(AssertSqlSafe(self.sql.audit.clone()))
            .bind(entry.at)
            .bind(entry.principal.to_owned())
            .bind(entry.tenant.to_owned())
            .bind(entry.method.to_owned())
            .bind(entry.request_id.to_owned())
            .bind(entry.outcome.to_owned())
            .bind(entry.detail.to_owned())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// The stored response of an earlier call with the same principal, method and request id.
    pub async fn stored_response(
        &self,
        conn: &mut AnyConnection,
        principal: &str,
        method: &str,
        request_id: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let row = sqlx::query(AssertSqlSafe(self.sql.idem_get.clone()))
            .bind(principal.to_owned())
            .bind(method.to_owned())
            .bind(crate::sealed::lookup(principal, method, request_id))
            .fetch_optional(&mut *conn)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let stored: Vec<u8> = r.try_get(0)?;
        crate::sealed::open(principal, method, request_id, &stored)
            .map(Some)
            .ok_or_else(|| StorageError::Corrupt("a stored answer that does not open".into()))
    }

    /// Purges the stored answers older than [`crate::sealed::KEEP_MICROS`]; returns how many.
    pub async fn purge_answers(&self, db: &Db, now_micros: i64) -> Result<u64, StorageError> {
        let done = sqlx::query(AssertSqlSafe(self.sql.idem_purge.clone()))
            .bind(now_micros - crate::sealed::KEEP_MICROS)
            .execute(&mut *db.acquire().await?)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn store_response(
        &self,
        conn: &mut AnyConnection,
        principal: &str,
        method: &str,
        request_id: &str,
        response: Vec<u8>,
        now_micros: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(AssertSqlSafe(self.sql.idem_put.clone()))
            .bind(principal.to_owned())
            .bind(method.to_owned())
            .bind(crate::sealed::lookup(principal, method, request_id))
            .bind(crate::sealed::seal(
                principal, method, request_id, &response,
            ))
            .bind(now_micros)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

fn seq_list(seqs: &[i64]) -> String {
    seqs.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
