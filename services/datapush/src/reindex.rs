//! Hashing again under a new index key: once a rotation is switched, every keyed hash under
//! another key is computed again from what it was computed from, which is sealed beside it —
//! a record's subject and content from its envelope, a version's content from its own, an
//! objection's subject from its sealed part (added from its record to objections filed before
//! it was kept there), a deleted record's subject from its objections. Access codes cannot be
//! hashed again (the code is kept nowhere in clear): they expire. Each update is guarded by
//! what it replaces, so a row changed meanwhile is left for the next pass.

use creditmesh_domain::Error;
use creditmesh_proto::datapush::v1::CreditRecord;
use creditmesh_rpc::{CallContext, ServiceStore};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{AnyConnection, Row, any::AnyRow};
use prost::Message;
use serde_json::Value;

use crate::seal::Keys;
use crate::sweep_store::{self, BATCH, KeyedHash};

fn text(r: &AnyRow, i: usize) -> Result<String, StorageError> {
    Ok(r.try_get::<String, _>(i)?)
}

/// A record's content, opened.
fn record(
    keys: &Keys,
    tenant: &str,
    agency: &str,
    record_key: &str,
    key_id: &str,
    envelope: &str,
) -> anyhow::Result<CreditRecord> {
    let plain = keys.open(
        tenant,
        key_id,
        &crate::seal::record_binding(agency, record_key),
        envelope,
    )?;
    Ok(CreditRecord::decode(plain.as_slice())?)
}

/// The subject (kind, identifier) an objection's sealed part holds, with that part opened.
fn objection_subject(
    keys: &Keys,
    tenant: &str,
    objection_id: &str,
    key_id: &str,
    envelope: &str,
) -> anyhow::Result<(Value, Option<(String, String)>)> {
    let plain = keys.open(
        tenant,
        key_id,
        &crate::seal::objection_binding(objection_id),
        envelope,
    )?;
    let v: Value = serde_json::from_slice(&plain)?;
    let subject = match (v["subject_kind"].as_str(), v["subject"].as_str()) {
        (Some(k), Some(s)) if !s.is_empty() => Some((k.to_owned(), s.to_owned())),
        _ => None,
    };
    Ok((v, subject))
}

/// The subject of the record `record_id` from its content, when it still has some.
async fn subject_of_record(
    conn: &mut AnyConnection,
    keys: &Keys,
    record_id: &str,
) -> anyhow::Result<Option<(String, String)>> {
    let Some(r) = crate::store::find(conn, record_id).await? else {
        return Ok(None);
    };
    if r.envelope.is_empty() {
        return Ok(None);
    }
    let content = record(
        keys,
        &r.tenant,
        &r.agency_uscc,
        &r.record_key,
        &r.key_id,
        &r.envelope,
    )?;
    Ok(Some((r.subject_kind, content.subject_identifier)))
}

/// The new values of one row and its guard, or `None` when it cannot be hashed again.
async fn redo(
    kind: KeyedHash,
    conn: &mut AnyConnection,
    keys: &Keys,
    r: &AnyRow,
) -> anyhow::Result<Option<Vec<String>>> {
    let current = keys.index_keys().current.id.clone();
    let subject_index = |kind: &str, id: &str| crate::subjects::index(keys, kind, id).current;
    Ok(match kind {
        KeyedHash::Record => {
            let (id, tenant, agency, key) = (text(r, 0)?, text(r, 2)?, text(r, 3)?, text(r, 4)?);
            let (subject_kind, envelope, key_id, old) =
                (text(r, 5)?, text(r, 6)?, text(r, 7)?, text(r, 8)?);
            let content = record(keys, &tenant, &agency, &key, &key_id, &envelope)?;
            let fp = crate::push::fingerprint(
                keys,
                &agency,
                &subject_kind,
                &content.subject_identifier,
                &content,
            );
            Some(vec![
                subject_index(&subject_kind, &content.subject_identifier),
                fp.current,
                current,
                id,
                envelope,
                old,
            ])
        }
        KeyedHash::Version => {
            let (id, tenant, agency, key) = (text(r, 0)?, text(r, 2)?, text(r, 3)?, text(r, 4)?);
            let version: i64 = r.try_get(1)?;
            let (subject_kind, envelope, key_id, old) =
                (text(r, 5)?, text(r, 6)?, text(r, 7)?, text(r, 8)?);
            // What was deleted keeps no hash of its content.
            let fp = if envelope.is_empty() {
                String::new()
            } else {
                let content = record(keys, &tenant, &agency, &key, &key_id, &envelope)?;
                crate::push::fingerprint(
                    keys,
                    &agency,
                    &subject_kind,
                    &content.subject_identifier,
                    &content,
                )
                .current
            };
            Some(vec![fp, current, id, version.to_string(), envelope, old])
        }
        KeyedHash::Objection => {
            let (id, tenant, record_id) = (text(r, 0)?, text(r, 2)?, text(r, 3)?);
            let (envelope, key_id, old) = (text(r, 4)?, text(r, 5)?, text(r, 6)?);
            let (mut private, subject) = objection_subject(keys, &tenant, &id, &key_id, &envelope)?;
            let (subject, sealed) = match subject {
                Some(s) => (s, None),
                None => match subject_of_record(conn, keys, &record_id).await? {
                    // Kept with it from now on, for when its record is gone.
                    Some((k, s)) => {
                        private["subject_kind"] = Value::from(k.clone());
                        private["subject"] = Value::from(s.clone());
                        let sealed = keys.seal(
                            &tenant,
                            &crate::seal::objection_binding(&id),
                            private.to_string().as_bytes(),
                        )?;
                        ((k, s), Some(sealed))
                    }
                    None => return Ok(None),
                },
            };
            let (new_envelope, new_key) = match sealed {
                Some(s) => (s.envelope, s.key_id),
                None => (envelope.clone(), key_id),
            };
            Some(vec![
                subject_index(&subject.0, &subject.1),
                new_envelope,
                new_key,
                current,
                id,
                envelope,
                old,
            ])
        }
        KeyedHash::DeletedRecord => {
            let (id, subject_kind, old) = (text(r, 0)?, text(r, 2)?, text(r, 3)?);
            let mut found = None;
            for o in crate::objection_store::of_record(conn, &id).await? {
                let (_, s) = objection_subject(
                    keys,
                    &o.tenant,
                    &o.objection_id,
                    &o.key_id,
                    &o.private_envelope,
                )?;
                if let Some(s) = s.filter(|(k, _)| *k == subject_kind) {
                    found = Some(s);
                    break;
                }
            }
            found.map(|(k, s)| vec![subject_index(&k, &s), current, id, old])
        }
    })
}

/// One pass over every keyed hash left to compute again under the current key; answers how
/// many rows were. With nothing to do, it costs one lookup per table in an index.
pub async fn pass(store: &ServiceStore, ctx: &CallContext, keys: &Keys) -> Result<usize, Error> {
    let index = keys.index_keys();
    let mut total = 0;
    let mut left = 0;
    for kind in [
        KeyedHash::Record,
        KeyedHash::Version,
        KeyedHash::Objection,
        KeyedHash::DeletedRecord,
    ] {
        let mut cursor = (String::new(), 0i64);
        loop {
            let mut conn = store.db.acquire().await?;
            let rows = sweep_store::page(&mut conn, kind.select(index), &cursor).await?;
            let Some(last) = rows.last() else { break };
            cursor = sweep_store::cursor_of(last)?;
            let mut again = Vec::with_capacity(rows.len());
            for r in &rows {
                match redo(kind, &mut conn, keys, r).await {
                    Ok(Some(binds)) => again.push(binds),
                    Ok(None) => left += 1,
                    Err(e) => {
                        left += 1;
                        tracing::warn!(kind = ?kind, id = %text(r, 0)?, error = %e, "not hashed again under the current index key")
                    }
                }
            }
            drop(conn);
            total +=
                sweep_store::guarded(store, ctx, "ReindexSubjects", kind.update(), &again).await?;
            if (rows.len() as i64) < BATCH {
                break;
            }
        }
    }
    if total > 0 || left > 0 {
        tracing::info!(
            reindexed = total,
            left,
            index_key = %index.current.id,
            "keyed hashes computed again under the current index key"
        );
    }
    Ok(total)
}
