//! Key rotation without downtime (Art. 23): once a new key is listed first, every envelope
//! sealed under an older one has its data key wrapped again under the new key — records,
//! their history and objections alike — so that the old key can then be removed from the
//! configuration. The content is not decrypted; a row changed meanwhile is left for the next
//! pass (each update is guarded by the envelope it replaces).

use creditmesh_domain::Error;
use creditmesh_rpc::{CallContext, ServiceStore};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::Row;

use crate::seal::Keys;
use crate::sweep_store::{self, BATCH, Envelope};

/// What an envelope of `kind` is bound to, from the two binding columns its rows select.
fn binding(kind: Envelope, a: &str, b: &str) -> Vec<u8> {
    match kind {
        Envelope::Objection => crate::seal::objection_binding(a),
        Envelope::Material => crate::seal::material_binding(a),
        _ => crate::seal::record_binding(a, b),
    }
}

/// A row to write back: its id and version, the key and envelope it had, and the new one.
type Again = (String, i64, String, String, crate::seal::Sealed);

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
    for kind in [
        Envelope::Record,
        Envelope::Version,
        Envelope::Objection,
        Envelope::Material,
    ] {
        let mut cursor = (String::new(), 0i64);
        loop {
            // Key ids are letters, digits and dashes (checked when the keys load).
            let sql = format!(
                "{} ({not_current}) ORDER BY 1, 2 LIMIT {BATCH}",
                kind.select()
            );
            let rows = {
                let mut conn = store.db.acquire().await?;
                sweep_store::page(&mut conn, sql, &cursor).await?
            };
            let Some(last) = rows.last() else { break };
            cursor = sweep_store::cursor_of(last)?;
            let mut again: Vec<Again> = Vec::with_capacity(rows.len());
            for r in &rows {
                let get = |i: usize| r.try_get::<String, _>(i).map_err(StorageError::from);
                let version: i64 = r.try_get(1).map_err(StorageError::from)?;
                let (id, tenant, a, b, key_id, envelope) =
                    (get(0)?, get(2)?, get(3)?, get(4)?, get(5)?, get(6)?);
                match keys.rewrap(&tenant, &key_id, &binding(kind, &a, &b), &envelope) {
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
            let written =
                sweep_store::guarded(store, ctx, "RewrapKeys", kind.update(), &binds).await?;
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
