//! What every datapush use case is given, and what they share: today, and opening what is
//! sealed.

use std::sync::Arc;

use creditmesh_domain::Error;
use creditmesh_domain::calendar::{cst_date, format_date};
use creditmesh_proto::datapush::v1::CreditRecord;
use creditmesh_rpc::{Authn, ServiceStore};
use prost::Message;
use serde_json::Value;

use crate::catalog;
use crate::objection_store::ObjectionRow;
use crate::seal::{self, Keys};
use crate::store::RecordRow;

#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) store: ServiceStore,
    pub(crate) authn: Authn,
    pub(crate) catalog: Arc<catalog::Catalog>,
    pub(crate) keys: Arc<seal::Keys>,
    pub(crate) calendar: Arc<creditmesh_domain::calendar::Calendar>,
}

/// The day of `at` (µs) in China Standard Time, YYYY-MM-DD.
pub fn day_of(at: i64) -> Result<String, Error> {
    Ok(format_date(
        cst_date(at).map_err(|e| Error::internal(e.to_string()))?,
    ))
}

/// Today in China Standard Time, YYYY-MM-DD.
pub fn today(api: &Api) -> Result<String, Error> {
    day_of(api.store.now())
}

/// The statement and contact sealed in an objection.
pub(crate) fn private(keys: &Keys, o: &ObjectionRow) -> Result<(String, String), Error> {
    let plain = keys
        .open(
            &o.tenant,
            &o.key_id,
            &seal::objection_binding(&o.objection_id),
            &o.private_envelope,
        )
        .map_err(|e| Error::internal(format!("objection {}: {e}", o.objection_id)))?;
    let v: Value = serde_json::from_slice(&plain)
        .map_err(|e| Error::internal(format!("objection {}: {e}", o.objection_id)))?;
    let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Ok((field("statement"), field("contact")))
}

/// Opens one sealed version of `row`'s content; empty for a deleted one.
pub(crate) fn open(
    api: &Api,
    row: &RecordRow,
    key_id: &str,
    envelope: &str,
) -> Result<CreditRecord, Error> {
    if envelope.is_empty() {
        return Ok(CreditRecord {
            record_key: row.record_key.clone(),
            category: row.category.clone(),
            collected_on: row.collected_on.clone(),
            ..Default::default()
        });
    }
    let id = &row.record_id;
    let plain = api
        .keys
        .open(
            &row.tenant,
            key_id,
            &crate::seal::record_binding(&row.agency_uscc, &row.record_key),
            envelope,
        )
        .map_err(|e| Error::internal(format!("record {id}: {e}")))?;
    CreditRecord::decode(plain.as_slice()).map_err(|e| Error::internal(format!("record {id}: {e}")))
}

pub(crate) fn content(api: &Api, row: &RecordRow) -> Result<CreditRecord, Error> {
    open(api, row, &row.key_id, &row.envelope)
}
