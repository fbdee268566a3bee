//! The holding authority's side of Art. 24: its triage queue, acceptance that starts the
//! 15-working-day handling deadline, and resolution with what was verified and found.

use creditmesh_domain::calendar::{Layers, cst_date, format_date};
use creditmesh_domain::lifecycle::{Complaint as State, ComplaintEvent, Machine};
use creditmesh_domain::{Error, PrincipalKind, Tenant, Violations, mask, page};
use creditmesh_proto::common::v1::{Deadline, DocumentRef, StatusChange};
use creditmesh_proto::complaints::v1::*;
use creditmesh_proto::review::v1::FindingCategory;
use creditmesh_rpc::{CallContext, Written, edge, timestamp};
use creditmesh_storage::sqlx::AnyConnection;
use tonic::{Request, Response, Status};

use crate::api::{Api, status_name};

use crate::store::{self, Accepted, ComplaintRow, Listing};

/// Art. 24: a complaint accepted is handled within 15 working days of its acceptance.
pub const HANDLING_WORKING_DAYS: u32 = 15;
const MAX_PAGE: i32 = 100;
const MAX_TEXT: usize = 4000;

/// The complainant's name and contact as `ctx` may see them: whole for the holding
/// authority's regulators, masked for the region looking at a prefecture's complaint.
fn complainant(ctx: &CallContext, row: &ComplaintRow) -> (String, String) {
    if ctx.principal.tenant.to_string() == row.tenant {
        return (
            row.complainant_name.clone(),
            row.complainant_contact.clone(),
        );
    }
    let contact = if row.complainant_contact.contains('@') {
        mask::email(&row.complainant_contact)
    } else {
        mask::phone(&row.complainant_contact)
    };
    (mask::person_name(&row.complainant_name), contact)
}

/// Only a regulator: of the complaint's tenant, or the region.
fn may_handle(ctx: &CallContext, row: &ComplaintRow) -> bool {
    let own = &ctx.principal.tenant;
    own.is_region() || row.tenant == own.to_string()
}

pub(crate) fn today(api: &Api) -> Result<time::Date, Error> {
    cst_date(api.store.now()).map_err(|e| Error::internal(e.to_string()))
}

pub(crate) fn proto(
    ctx: &CallContext,
    row: ComplaintRow,
    history: Vec<store::HistoryRow>,
    today: &str,
    acceptance_working_days: u32,
) -> Complaint {
    let (complainant_name, complainant_contact) = complainant(ctx, &row);
    let received_on = cst_date(row.received_at)
        .map(format_date)
        .unwrap_or_default();
    let overdue = match row.status.as_str() {
        "received" => {
            !row.acceptance_due.is_empty()
                && !row.acceptance_provisional
                && row.acceptance_due.as_str() < today
        }
        "accepted" => !row.handling_provisional && row.handling_due.as_str() < today,
        _ => false,
    };
    Complaint {
        tracking_number: row.tracking_number,
        tenant: row.tenant,
        agency_uscc: row.agency_uscc,
        agency_name: row.agency_name,
        subject: row.subject,
        description: row.description,
        status: status_name(&row.status) as i32,
        received_at: Some(timestamp(row.received_at)),
        handling_deadline: handling_deadline(
            &row.handling_from,
            &row.handling_due,
            row.handling_provisional,
            &row.calendar_version,
        ),
        history: history
            .into_iter()
            .map(|h| StatusChange {
                status: h.status,
                changed_at: Some(timestamp(h.changed_at)),
                principal: h.principal,
                note: h.note,
                note_zh: h.note_zh,
            })
            .collect(),
        outcome: row.outcome,
        against_agency: row.against_agency,
        acceptance_deadline: (!row.acceptance_due.is_empty()).then(|| Deadline {
            from_date: received_on,
            working_days: acceptance_working_days as i32,
            due_date: row.acceptance_due,
            calendar_version: String::new(),
            provisional: row.acceptance_provisional,
        }),
        overdue,
        complainant_name,
        complainant_contact,
        repeats: row.repeats,
        repeated: row.repeated as i32,
        referrals: Vec::new(),
        evidence: row
            .evidence
            .into_iter()
            .map(|sha256| DocumentRef { sha256 })
            .collect(),
        place_of_activity: row.place,
    }
}

pub(crate) fn handling_deadline(
    from: &str,
    due: &str,
    provisional: bool,
    calendar_version: &str,
) -> Option<Deadline> {
    (!due.is_empty()).then(|| Deadline {
        from_date: from.to_owned(),
        working_days: HANDLING_WORKING_DAYS as i32,
        due_date: due.to_owned(),
        calendar_version: calendar_version.to_owned(),
        provisional,
    })
}

/// The complaint `tracking_number` as its handler sees it, or `NOT_FOUND` for anyone else.
pub(crate) async fn handled(
    conn: &mut AnyConnection,
    ctx: &CallContext,
    tracking_number: &str,
) -> Result<ComplaintRow, Error> {
    let row = store::find(conn, tracking_number).await?;
    match row {
        Some(row) if may_handle(ctx, &row) => Ok(row),
        _ => Err(Error::not_found(format!(
            "no complaint {tracking_number} for this authority"
        ))),
    }
}

/// The complaint `tracking_number`, as it stood, once moved by `event`; `FAILED_PRECONDITION`
/// naming its state when the machine does not allow the move.
pub(crate) async fn moved(
    conn: &mut AnyConnection,
    ctx: &CallContext,
    tracking_number: &str,
    event: ComplaintEvent,
) -> Result<ComplaintRow, Error> {
    let row = handled(conn, ctx, tracking_number).await?;
    if store::transition(conn, &row.tenant, &row.tracking_number, event)
        .await?
        .is_none()
    {
        return Err(refused_move(&row, event));
    }
    Ok(row)
}

fn refused_move(row: &ComplaintRow, event: ComplaintEvent) -> Error {
    let why = State::parse(&row.status)
        .and_then(|s| s.on(event).err())
        .map(|e| e.to_string())
        .unwrap_or_else(|| format!("the complaint is {}", row.status));
    Error::failed_precondition(format!("complaint {}: {why}", row.tracking_number))
}

pub(crate) async fn list_complaints(
    api: &Api,
    request: Request<ListComplaintsRequest>,
) -> Result<Response<ListComplaintsResponse>, Status> {
    let ctx = api.authn.context(&request)?;
    ctx.require(&[PrincipalKind::Regulator])?;
    let req = request.into_inner();
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
            let name = match ComplaintStatus::try_from(*s) {
                Ok(ComplaintStatus::Received) => "received",
                Ok(ComplaintStatus::Accepted) => "accepted",
                Ok(ComplaintStatus::Resolved) => "resolved",
                Ok(ComplaintStatus::Referred) => "referred",
                _ => {
                    v.add(format!("statuses[{i}]"), "is not a complaint status");
                    continue;
                }
            };
            statuses.push(name);
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
                .map(|r| proto(&ctx, r, Vec::new(), &today, api.acceptance_working_days))
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
    let ctx = api.authn.context(&request)?;
    ctx.require(&[PrincipalKind::Regulator])?;
    let req = request.into_inner();
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
    let ctx = api.authn.context(&request)?;
    ctx.require(&[PrincipalKind::Regulator])?;
    let req = request.into_inner();
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

pub(crate) async fn reread(
    api: &Api,
    ctx: &CallContext,
    conn: &mut AnyConnection,
    tracking_number: &str,
    today: &str,
) -> Result<Complaint, Error> {
    let row = store::find(conn, tracking_number)
        .await?
        .ok_or_else(|| Error::internal("a complaint just written is missing"))?;
    let history = store::history(conn, &row.tenant, &row.tracking_number).await?;
    let referrals = crate::referral_store::of_complaint(conn, &row.tenant, &row.tracking_number)
        .await?
        .into_iter()
        .map(|r| {
            let mut r = crate::referrals::proto(r, &api.contacts);
            // The complainant is shown, masked as the caller may see it, on the complaint.
            r.complainant_name.clear();
            r.complainant_contact.clear();
            r
        })
        .collect();
    let mut complaint = proto(ctx, row, history, today, api.acceptance_working_days);
    complaint.referrals = referrals;
    Ok(complaint)
}

pub(crate) async fn resolve_complaint(
    api: &Api,
    request: Request<ResolveComplaintRequest>,
) -> Result<Response<ResolveComplaintResponse>, Status> {
    let ctx = api.authn.context(&request)?;
    ctx.require(&[PrincipalKind::Regulator])?;
    let req = request.into_inner();
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
