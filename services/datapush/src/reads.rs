//! Reading a record back: the agency that pushed it sees it whole.

use creditmesh_domain::{Error, PrincipalKind, Violations};
use creditmesh_proto::datapush::v1::*;
use creditmesh_rpc::{edge, timestamp};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::Api;
use crate::push::binding;
use crate::store;

fn status_of(s: &str) -> RecordStatus {
    match s {
        "active" => RecordStatus::Active,
        "under_objection" => RecordStatus::UnderObjection,
        "deleted" => RecordStatus::Deleted,
        _ => RecordStatus::Unspecified,
    }
}

pub(crate) async fn get_record(
    api: &Api,
    request: Request<GetRecordRequest>,
) -> Result<Response<GetRecordResponse>, Status> {
    let ctx = api.authn.context(&request)?;
    ctx.require(&[PrincipalKind::Agency])?;
    let req = request.into_inner();
    edge::read(async {
        let mut v = Violations::default();
        v.require("record_id", &req.record_id);
        v.finish()?;
        let id = req.record_id.trim();
        let not_found = || Error::not_found(format!("no record {id} of this agency"));
        let mut conn = api.store.db.acquire().await?;
        let row = store::find(&mut conn, id).await?.ok_or_else(not_found)?;
        if row.agency_uscc != ctx.principal.subject {
            return Err(not_found());
        }
        let plain = api
            .keys
            .open(
                &row.tenant,
                &row.key_id,
                &binding(&row.agency_uscc, &row.record_key),
                &row.envelope,
            )
            .map_err(|e| Error::internal(format!("record {id}: {e}")))?;
        let record = CreditRecord::decode(plain.as_slice())
            .map_err(|e| Error::internal(format!("record {id}: {e}")))?;
        Ok(GetRecordResponse {
            record: Some(StoredRecord {
                record_id: row.record_id,
                agency_uscc: row.agency_uscc,
                record: Some(record),
                status: status_of(&row.status) as i32,
                version: row.version,
                received_at: Some(timestamp(row.received_at)),
            }),
        })
    })
    .await
}
