//! Key rotation without downtime (Art. 23): once a new key is listed first, every envelope
//! sealed under an older one has its data key wrapped again under the new key — records,
//! their history and objections alike — so that the old key can then be removed from the
//! configuration. The content is not decrypted; a row changed meanwhile is left for the next
//! pass (each update is guarded by the envelope it replaces).

use creditmesh_domain::Error;
use creditmesh_domain::tenant::REGION;
use creditmesh_rpc::{CallContext, ServiceStore, Written};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, Row};

use crate::seal::Keys;

/// Rows wrapped again per transaction.
const BATCH: i64 = 200;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Record,
    Version,
    Objection,
    Material,
}

impl Kind {
    /// Selects `id, version, tenant, binding part 1, binding part 2, key_id, envelope` of rows
    /// after the cursor `($1, $2)`.
    fn select(self) -> &'static str {
        match self {
            Kind::Record => {
                "SELECT record_id, CAST(0 AS BIGINT), tenant, agency_uscc, record_key, key_id, \
                 envelope FROM datapush_record WHERE key_id <> '' AND record_id > $1 \
                 AND CAST($2 AS BIGINT) >= 0 AND key_id NOT IN"
            }
            Kind::Version => {
                "SELECT v.record_id, v.version, r.tenant, r.agency_uscc, r.record_key, v.key_id, \
                 v.envelope FROM datapush_version v JOIN datapush_record r \
                 ON r.record_id = v.record_id WHERE v.key_id <> '' \
                 AND (v.record_id > $1 OR (v.record_id = $1 AND v.version > $2)) \
                 AND v.key_id NOT IN"
            }
            Kind::Objection => {
                "SELECT objection_id, CAST(0 AS BIGINT), tenant, objection_id, '', key_id, \
                 private_envelope FROM datapush_objection WHERE key_id <> '' \
                 AND objection_id > $1 AND CAST($2 AS BIGINT) >= 0 AND key_id NOT IN"
            }
            Kind::Material => {
                "SELECT material_id, CAST(0 AS BIGINT), tenant, material_id, '', key_id, \
                 envelope FROM datapush_material WHERE key_id <> '' \
                 AND material_id > $1 AND CAST($2 AS BIGINT) >= 0 AND key_id NOT IN"
            }
        }
    }

    /// Binds `envelope, key_id, id, version, old key_id, old envelope`.
    fn update(self) -> &'static str {
        match self {
            Kind::Record => {
                "UPDATE datapush_record SET envelope = $1, key_id = $2 WHERE record_id = $3 \
                 AND CAST($4 AS BIGINT) >= 0 AND key_id = $5 AND envelope = $6"
            }
            Kind::Version => {
                "UPDATE datapush_version SET envelope = $1, key_id = $2 WHERE record_id = $3 \
                 AND version = CAST($4 AS BIGINT) AND key_id = $5 AND envelope = $6"
            }
            Kind::Objection => {
                "UPDATE datapush_objection SET private_envelope = $1, key_id = $2 \
                 WHERE objection_id = $3 AND CAST($4 AS BIGINT) >= 0 AND key_id = $5 \
                 AND private_envelope = $6"
            }
            Kind::Material => {
                "UPDATE datapush_material SET envelope = $1, key_id = $2 \
                 WHERE material_id = $3 AND CAST($4 AS BIGINT) >= 0 AND key_id = $5 \
                 AND envelope = $6"
            }
        }
    }

    fn binding(self, a: &str, b: &str) -> Vec<u8> {
        match self {
            Kind::Objection => crate::seal::objection_binding(a),
            Kind::Material => crate::seal::material_binding(a),
            _ => crate::seal::record_binding(a, b),
        }
    }
}

/// A row to write back: its id and version, the key and envelope it had, and the new one.
type Again = (String, i64, String, String, crate::seal::Sealed);

/// Runs `sql` once with each row of `binds` in one transaction, as `operation` of `ctx`;
/// answers how many rows it changed. Every update here is guarded by what it replaces.
pub(crate) async fn guarded(
    store: &ServiceStore,
    ctx: &CallContext,
    operation: &'static str,
    sql: &'static str,
    binds: &[Vec<String>],
) -> Result<usize, Error> {
    store
        .write(ctx, operation, |mut tx| async move {
            let mut n = 0;
            for row in binds {
                let mut q = sqlx::query(sql);
                for b in row {
                    q = q.bind(b.clone());
                }
                n += q
                    .execute(&mut *tx)
                    .await
                    .map_err(StorageError::from)?
                    .rows_affected() as usize;
            }
            Ok((
                tx,
                Written {
                    value: n,
                    tenant: REGION.to_string(),
                },
            ))
        })
        .await
}

/// One pass over everything sealed under a key that no longer seals; answers how many
/// envelopes were wrapped again.
pub async fn pass(store: &ServiceStore, ctx: &CallContext, keys: &Keys) -> Result<usize, Error> {
    let current = keys.current_ids();
    let not_current = current
        .iter()
        .map(|id| format!("'{}'", id.replace('\'', "")))
        .collect::<Vec<_>>()
        .join(", ");
    let mut total = 0;
    for kind in [Kind::Record, Kind::Version, Kind::Objection, Kind::Material] {
        let mut cursor = (String::new(), 0i64);
        loop {
            // Key ids are letters, digits and dashes (checked when the keys load).
            let sql = format!(
                "{} ({not_current}) ORDER BY 1, 2 LIMIT {BATCH}",
                kind.select()
            );
            let rows = {
                let mut conn = store.db.acquire().await?;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(cursor.0.clone())
                    .bind(cursor.1)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(StorageError::from)?
            };
            let Some(last) = rows.last() else { break };
            cursor = (
                last.try_get(0).map_err(StorageError::from)?,
                last.try_get(1).map_err(StorageError::from)?,
            );
            let mut again: Vec<Again> = Vec::with_capacity(rows.len());
            for r in &rows {
                let get = |i: usize| r.try_get::<String, _>(i).map_err(StorageError::from);
                let version: i64 = r.try_get(1).map_err(StorageError::from)?;
                let (id, tenant, a, b, key_id, envelope) =
                    (get(0)?, get(2)?, get(3)?, get(4)?, get(5)?, get(6)?);
                match keys.rewrap(&tenant, &key_id, &kind.binding(&a, &b), &envelope) {
                    Ok(Some(sealed)) => again.push((id, version, key_id, envelope, sealed)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(kind = ?kind, id = %id, error = %e, "envelope not wrapped again")
                    }
                }
            }
            let binds: Vec<Vec<String>> = again
                .into_iter()
                .map(|(id, version, old_key, old_envelope, sealed)| {
                    vec![
                        sealed.envelope,
                        sealed.key_id,
                        id,
                        version.to_string(),
                        old_key,
                        old_envelope,
                    ]
                })
                .collect();
            let written = guarded(store, ctx, "RewrapKeys", kind.update(), &binds).await?;
            total += written;
            if (rows.len() as i64) < BATCH {
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(rewrapped = total, keys = ?current, "envelopes wrapped under the current keys");
    }
    Ok(total)
}
