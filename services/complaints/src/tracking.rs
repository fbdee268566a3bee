//! A complainant follows their complaint by tracking number and access code.

use creditmesh_domain::lifecycle::{Complaint, Machine};
use creditmesh_domain::{Error, Violations};
use creditmesh_proto::common::v1::StatusChange;
use creditmesh_proto::complaints::v1::*;
use creditmesh_rpc::{edge, timestamp};
use tonic::{Request, Response, Status};

use crate::state::Api;
use crate::{convert, store, submission};

pub(crate) async fn track_complaint(
    api: &Api,
    request: Request<TrackComplaintRequest>,
) -> Result<Response<TrackComplaintResponse>, Status> {
    let (_, req) = edge::caller(&api.authn, request, &[])?;
    edge::read(track(api, req)).await
}

async fn track(api: &Api, req: TrackComplaintRequest) -> Result<TrackComplaintResponse, Error> {
    let mut v = Violations::default();
    v.require("tracking_number", &req.tracking_number);
    v.require("access_code", &req.access_code);
    v.finish()?;
    let not_found = || Error::not_found("no complaint with this tracking number and access code");
    let mut conn = api.store.db.acquire().await?;
    let row = store::find(&mut conn, req.tracking_number.trim())
        .await?
        .ok_or_else(not_found)?;
    if row.access_code_sha256 != submission::sha256_hex(req.access_code.trim().as_bytes()) {
        return Err(not_found());
    }
    let history = store::history(&mut conn, &row.tenant, &row.tracking_number).await?;
    let referral = if Complaint::parse(&row.status) == Some(Complaint::Referred) {
        crate::referral_store::of_complaint(&mut conn, &row.tenant, &row.tracking_number)
            .await?
            .pop()
    } else {
        None
    };
    let referred_to = referral
        .as_ref()
        .map(|r| creditmesh_domain::department::value_of(&r.department))
        .unwrap_or_default();
    let referred_to_name = referral
        .as_ref()
        .map(convert::addressee_of)
        .unwrap_or_default();
    Ok(TrackComplaintResponse {
        tracking_number: row.tracking_number,
        status: convert::status_proto(&row.status) as i32,
        history: history
            .into_iter()
            .map(|h| StatusChange {
                status: h.status,
                changed_at: Some(timestamp(h.changed_at)),
                // The public sees that a change happened, not which official made it.
                principal: String::new(),
                note: h.note,
                note_zh: h.note_zh,
            })
            .collect(),
        handling_deadline: convert::handling_deadline(
            &row.handling_from,
            &row.handling_due,
            row.handling_provisional,
            &row.calendar_version,
        ),
        referred_to,
        referred_to_name,
        outcome: row.outcome,
    })
}
