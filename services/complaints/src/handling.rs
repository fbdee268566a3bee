//! The holding authority's side of Art. 24: its triage queue, acceptance that starts the
//! 15-working-day handling deadline, and resolution with what was verified and found.

use creditmesh_domain::calendar::{Layers, format_date};
use creditmesh_domain::lifecycle::{Complaint as State, ComplaintEvent, Machine};
use creditmesh_domain::{Error, PrincipalKind, Tenant, Violations, page};
use creditmesh_proto::complaints::v1::*;
use creditmesh_proto::review::v1::FindingCategory;
use creditmesh_rpc::{Written, edge};
use tonic::{Request, Response, Status};

use crate::convert::{self, complaint_proto};
use crate::state::{Api, handled, moved, reread, today};

use crate::store::{self, Accepted, Listing};

use creditmesh_domain::measures::HANDLING_WORKING_DAYS;
const MAX_PAGE: i32 = 100;
const MAX_TEXT: usize = 4000;

pub(crate) async fn list_complaints(
    api: &Api,
    request: Request<ListComplaintsRequest>,
) -> Result<Response<ListComplaintsResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[PrincipalKind::Regulator])?;
    edge::read(async {
        let mut v = Violations::default();
        let limit = page::size(&mut v, req.page_size, 20, MAX_PAGE);
        let token = req.page_token.trim();
        let is_number = |t: &str| {
            t.len() == 14
                && t.starts_with("TS")
                && t[2..].chars().all(|c| c.is_ascii_alphanumeric())
        };
        if !(token.is_empty() || is_number(token)) {
            v.add("page_token", "is not a token this list gave out");
        }
        let mut statuses = Vec::new();
        for (i, s) in req.statuses.iter().enumerate() {
            match ComplaintStatus::try_from(*s)
                .ok()
                .and_then(convert::complaint_state)
            {
                Some(state) => statuses.push(state.name()),
                None => v.add(format!("statuses[{i}]"), "is not a complaint status"),
            }
        }
        let own = ctx.principal.tenant;
        let tenant = match req.tenant.trim() {
            "" if own.is_region() => String::new(),
            "" => own.to_string(),
            t => match Tenant::parse(t) {
                Ok(t) if own.is_region() || t == own => t.to_string(),
                Ok(_) => {
                    return Err(Error::permission_denied(
                        "a prefecture sees only its own tenant's complaints",
                    ));
                }
                Err(e) => {
                    v.add("tenant", e.to_string());
                    String::new()
                }
            },
        };
        v.finish()?;
        let today = format_date(today(api)?);
        let mut conn = api.store.db.acquire().await?;
        let mut rows = store::list(
            &mut conn,
            &Listing {
                tenant: &tenant,
                statuses,
                overdue_on: req.overdue_only.then_some(today.as_str()),
                after: token,
                limit: limit + 1,
            },
        )
        .await?;
        let next_page_token = page::cut(&mut rows, limit, |r| r.tracking_number.clone());
        Ok(ListComplaintsResponse {
            complaints: rows
                .into_iter()
                .map(|r| complaint_proto(&ctx, r, Vec::new(), &today, api.acceptance_working_days))
                .collect(),
            next_page_token,
        })
    })
    .await
}

/// One complaint whole, to the authority that may handle it: NOT_FOUND to any other.
pub(crate) async fn get_complaint(
    api: &Api,
    request: Request<GetComplaintRequest>,
) -> Result<Response<GetComplaintResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[PrincipalKind::Regulator])?;
    edge::read(async {
        let mut v = Violations::default();
        let number = req.tracking_number.trim();
        v.require("tracking_number", number);
        v.finish()?;
        let today = format_date(today(api)?);
        let mut conn = api.store.db.acquire().await?;
        handled(&mut conn, &ctx, number).await?;
        let complaint = reread(api, &ctx, &mut conn, number, &today).await?;
        Ok(GetComplaintResponse {
            complaint: Some(complaint),
        })
    })
    .await
}

pub(crate) async fn accept_complaint(
    api: &Api,
    request: Request<AcceptComplaintRequest>,
) -> Result<Response<AcceptComplaintResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[PrincipalKind::Regulator])?;
    let checked = {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("tracking_number", &req.tracking_number);
        v.finish()
    };
    edge::call(&api.store, &ctx, "AcceptComplaint", checked, |()| async {
        let store = &api.store;
        let (ctx, req) = (&ctx, &req);
        store
            .write_idempotent(
                ctx,
                "AcceptComplaint",
                &req.request_id,
                |mut tx| async move {
                    let row = moved(
                        &mut tx,
                        ctx,
                        req.tracking_number.trim(),
                        ComplaintEvent::Accept,
                    )
                    .await?;
                    let today = today(api)?;
                    let deadline = api
                        .calendar
                        .deadline(today, HANDLING_WORKING_DAYS, Layers::Xinjiang)
                        .map_err(|e| Error::failed_precondition(e.to_string()))?;
                    let now = store.now();
                    let (from, due) = (format_date(deadline.from), format_date(deadline.due));
                    store::set_accepted(
                        &mut tx,
                        &row.tenant,
                        &row.tracking_number,
                        &Accepted {
                            at: now,
                            from: &from,
                            due: &due,
                            provisional: deadline.provisional,
                            calendar_version: &deadline.calendar_version,
                        },
                    )
                    .await?;
                    crate::notify::queue(
                        &mut tx,
                        &row.tenant,
                        &row.tracking_number,
                        &row.complainant_contact,
                        &format!("投诉举报 {} 已受理", row.tracking_number),
                        &format!(
                            "您的投诉举报 {} 已于 {from} 受理，将于 {due} 前办结（15 个工作日）。\n\
                             Your complaint {} was accepted on {from}; it will be handled by {due}.",
                            row.tracking_number, row.tracking_number
                        ),
                        now,
                    )
                    .await?;
                    store::add_history(
                        &mut tx,
                        &row.tenant,
                        &row.tracking_number,
                        State::Accepted.name(),
                        now,
                        &ctx.principal_id,
                        (
                            &format!("accepted; to be handled by {due} (Art. 24)"),
                            &format!("已受理，应于 {due} 前办结（《办法》第二十四条）"),
                        ),
                    )
                    .await?;
                    let complaint =
                        reread(api, ctx, &mut tx, &row.tracking_number, &format_date(today))
                            .await?;
                    Ok((
                        tx,
                        Written {
                            value: AcceptComplaintResponse {
                                complaint: Some(complaint),
                            },
                            tenant: row.tenant.clone(),
                        },
                    ))
                },
            )
            .await
    })
    .await
}

pub(crate) async fn resolve_complaint(
    api: &Api,
    request: Request<ResolveComplaintRequest>,
) -> Result<Response<ResolveComplaintResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[PrincipalKind::Regulator])?;
    let checked = {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("tracking_number", &req.tracking_number);
        v.require("outcome", &req.outcome);
        v.max_chars("outcome", &req.outcome, MAX_TEXT);
        v.require("verified", &req.verified);
        v.max_chars("verified", &req.verified, MAX_TEXT);
        let category = FindingCategory::try_from(req.category).unwrap_or_default();
        if req.against_agency && category == FindingCategory::Unspecified {
            v.add(
                "category",
                "is required when the finding is against the agency: what it did (Art. 13, 14, 16, 19)",
            );
        }
        v.finish()
    };
    let category = match FindingCategory::try_from(req.category) {
        Ok(c) if req.against_agency && c != FindingCategory::Unspecified => c
            .as_str_name()
            .trim_start_matches("FINDING_CATEGORY_")
            .to_ascii_lowercase(),
        _ => String::new(),
    };
    let category = &category;
    edge::call(&api.store, &ctx, "ResolveComplaint", checked, |()| async {
        let store = &api.store;
        let (ctx, req) = (&ctx, &req);
        store
            .write_idempotent(
                ctx,
                "ResolveComplaint",
                &req.request_id,
                |mut tx| async move {
                    let row = moved(
                        &mut tx,
                        ctx,
                        req.tracking_number.trim(),
                        ComplaintEvent::Resolve,
                    )
                    .await?;
                    let now = store.now();
                    let (outcome, verified) = (req.outcome.trim(), req.verified.trim());
                    store::set_resolved(
                        &mut tx,
                        &row.tenant,
                        &row.tracking_number,
                        now,
                        outcome,
                        verified,
                        req.against_agency,
                    )
                    .await?;
                    crate::notify::queue(
                        &mut tx,
                        &row.tenant,
                        &row.tracking_number,
                        &row.complainant_contact,
                        &format!("投诉举报 {} 已办结", row.tracking_number),
                        &format!(
                            "您的投诉举报 {} 已办结：{outcome}\n\
                             Your complaint {} was resolved: {outcome}",
                            row.tracking_number, row.tracking_number
                        ),
                        now,
                    )
                    .await?;
                    store::add_history(
                        &mut tx,
                        &row.tenant,
                        &row.tracking_number,
                        State::Resolved.name(),
                        now,
                        &ctx.principal_id,
                        (outcome, outcome),
                    )
                    .await?;
                    store
                        .publish_event(
                            &mut tx,
                            ctx,
                            &row.tenant,
                            &row.tracking_number,
                            &creditmesh_proto::events::v1::ComplaintResolved {
                                tracking_number: row.tracking_number.clone(),
                                agency_uscc: row.agency_uscc.clone(),
                                against_agency: req.against_agency,
                                outcome: outcome.to_owned(),
                                verified: verified.to_owned(),
                                category: category.clone(),
                            },
                        )
                        .await?;
                    let today = format_date(today(api)?);
                    let complaint = reread(api, ctx, &mut tx, &row.tracking_number, &today).await?;
                    Ok((
                        tx,
                        Written {
                            value: ResolveComplaintResponse {
                                complaint: Some(complaint),
                            },
                            tenant: row.tenant.clone(),
                        },
                    ))
                },
            )
            .await
    })
    .await
}
