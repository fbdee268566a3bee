//! Annual reports (Art. 11).

use creditmesh_domain::Uscc;
use creditmesh_domain::calendar::{Calendar, Deadline, Layers, format_date};
use creditmesh_domain::lifecycle::{Filing as State, Machine};
use creditmesh_domain::{Error, ErrorCode, Violations};
use creditmesh_proto::events::v1 as ev;
use creditmesh_proto::filing::v1::*;
use creditmesh_rpc::{CallContext, Written, edge};
use creditmesh_storage::StorageError;
use tonic::{Request, Response, Status};

use crate::model::Documents;
use crate::state::Api;
use crate::store::{self};
use crate::validate::{check_owned, require_doc};

const METHOD: &str = "SubmitAnnualReport";

/// The last day the report for `year` is due (Art. 11: "每年6月30日前"): 30 June of the next
/// year, or when that is a day off, the first working day after it (Civil Code Art. 203).
pub fn due(calendar: &Calendar, year: i32) -> Result<Deadline, Error> {
    let june_30 = time::Date::from_calendar_date(year + 1, time::Month::June, 30)
        .map_err(|e| Error::internal(e.to_string()))?;
    calendar
        .period_end(june_30, Layers::Xinjiang)
        .map_err(|e| Error::internal(format!("calendar: {e}")))
}

pub(crate) async fn submit_annual_report(
    api: &Api,
    request: Request<SubmitAnnualReportRequest>,
) -> Result<Response<SubmitAnnualReportResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let checked = check(api, &ctx, &req);
    edge::call(&api.store, &ctx, METHOD, checked, |(caller, docs)| {
        submit(api, &ctx, &req, caller, docs)
    })
    .await
}

fn check(
    api: &Api,
    ctx: &CallContext,
    req: &SubmitAnnualReportRequest,
) -> Result<(Uscc, Documents), Error> {
    let caller = Api::agency(ctx)?;
    let today = api.today()?;
    let mut v = Violations::default();
    v.require("request_id", &req.request_id);
    v.require("filing_id", &req.filing_id);
    if req.year < 2000 || req.year >= today.year() {
        v.add(
            "year",
            format!("must be a past year, 2000 to {}", today.year() - 1),
        );
    }
    let mut docs = Documents::new();
    require_doc(
        &mut v,
        &mut docs,
        "market_regulation_annual_report",
        &req.market_regulation_annual_report,
        "the annual report filed with market regulation (Art. 11(1))",
    );
    v.require(
        "in_region_business_summary",
        &req.in_region_business_summary,
    );
    v.max_chars(
        "in_region_business_summary",
        &req.in_region_business_summary,
        10_000,
    );
    if req.projects.len() > 1000 {
        v.add("projects", "at most 1000 projects");
    }
    for (i, p) in req.projects.iter().enumerate() {
        v.require(&format!("projects[{i}].client_unit"), &p.client_unit);
        v.require(&format!("projects[{i}].project_name"), &p.project_name);
        if p.funding_scale_yuan < 0 {
            v.add(
                format!("projects[{i}].funding_scale_yuan"),
                "must not be negative",
            );
        }
    }
    v.finish()?;
    Ok((caller, docs))
}

async fn submit(
    api: &Api,
    ctx: &CallContext,
    req: &SubmitAnnualReportRequest,
    caller: Uscc,
    docs: Documents,
) -> Result<SubmitAnnualReportResponse, Error> {
    let due = format_date(due(&api.calendar, req.year)?.due);
    let (docs, caller, due) = (&docs, &caller, &due);
    api.store
        .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
            let filing = api.visible_filing(&mut tx, ctx, &req.filing_id).await?;
            if !State::parse(&filing.status).is_some_and(State::is_open) {
                return Err(Error::failed_precondition(format!(
                    "the filing is {}; annual reports are no longer accepted",
                    filing.status
                )));
            }
            check_owned(&mut tx, caller.as_str(), docs).await?;
            let report_id = uuid::Uuid::now_v7().to_string();
            let now = api.store.now();
            let content = serde_json::json!({
                "market_regulation_annual_report": docs.get("market_regulation_annual_report"),
                "in_region_business_summary": req.in_region_business_summary.trim(),
                "projects": req.projects.iter().map(|p| serde_json::json!({
                    "client_unit": p.client_unit.trim(),
                    "project_name": p.project_name.trim(),
                    "funding_scale_yuan": p.funding_scale_yuan,
                    "results": p.results.trim(),
                    "awards": p.awards.trim(),
                })).collect::<Vec<_>>(),
            });
            store::insert_report(
                &mut tx,
                &filing.tenant,
                &report_id,
                &filing.filing_id,
                i64::from(req.year),
                due,
                now,
                &content.to_string(),
            )
            .await
            .map_err(|e| match e {
                StorageError::Conflict(_) => Error::new(
                    ErrorCode::AlreadyExists,
                    format!("the report for {} was submitted already", req.year),
                ),
                e => e.into(),
            })?;
            store::add_history(
                &mut tx,
                &filing.tenant,
                &filing.filing_id,
                &filing.status,
                now,
                &ctx.principal_id,
                &format!("annual report for {} submitted", req.year),
            )
            .await?;
            api.store
                .publish_event(
                    &mut tx,
                    ctx,
                    &filing.tenant,
                    &report_id,
                    &ev::AnnualReportSubmitted {
                        report_id: report_id.clone(),
                        filing_id: filing.filing_id.clone(),
                        uscc: filing.uscc.clone(),
                        year: req.year,
                        due_date: due.to_string(),
                        projects: req.projects.len() as u32,
                    },
                )
                .await?;
            let value = SubmitAnnualReportResponse {
                report_id,
                due_date: due.to_string(),
            };
            Ok((
                tx,
                Written {
                    value,
                    tenant: filing.tenant,
                },
            ))
        })
        .await
}
