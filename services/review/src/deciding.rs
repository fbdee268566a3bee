//! Deciding review tasks: each kind by its own article, Art. 9(2) binding approval.

use creditmesh_domain::lifecycle::{Filing, FilingEvent, Machine, Task, TaskEvent};
use creditmesh_domain::{Error, Violations};
use creditmesh_proto::events::v1 as ev;
use creditmesh_proto::review::v1::*;
use creditmesh_rpc::{Written, edge};
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::events::{self};
use crate::state::{Api, names};
use crate::task_store::{self};

pub(crate) async fn decide_review_task(
    api: &Api,
    request: Request<DecideReviewTaskRequest>,
) -> Result<Response<DecideReviewTaskResponse>, Status> {
    const METHOD: &str = "DecideReviewTask";
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, METHOD, async {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("task_id", &req.task_id);
        let decision = crate::validate::parse(&mut v, &req);
        v.max_chars("reason", &req.reason, 4000);
        v.finish()?;
        let (ctx, req, decision) = (ctx, &req, &decision);
        let today = api.today()?;
        api.store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let me = Api::regulator(ctx)?;
                let task = api.visible_task(&mut tx, ctx, req.task_id.trim()).await?;
                if Task::parse(&task.status) != Some(Task::Open) {
                    return Err(Error::failed_precondition(format!(
                        "the task is {} already",
                        task.status
                    )));
                }
                if task.tenant != me.to_string() {
                    return Err(Error::permission_denied(
                        "only the authority the task is routed to decides it (Art. 10)",
                    ));
                }
                let kind = crate::validate::Kind::parse(&task.kind)
                    .ok_or_else(|| Error::internal(format!("task kind {}", task.kind)))?;
                let grounds = decision.grounds_for(kind, &req.reason)?;
                let approve = req.approve && kind != crate::validate::Kind::Supervision;
                if approve
                    && matches!(
                        kind,
                        crate::validate::Kind::Filing | crate::validate::Kind::Change
                    )
                {
                    // Art. 9(2) is mandatory ("不予登记建档"): checked against the list as it
                    // stands now, not only as it stood when the application arrived.
                    let principals = events::Named::parse_list(&task.principals);
                    let hits = events::dishonesty_hits(&mut tx, &task.uscc, &principals).await?;
                    if !hits.is_empty() {
                        return Err(Error::failed_precondition(format!(
                            "approval is barred by Art. 9(2): {}; refuse the {} instead",
                            hits.join("; "),
                            task.kind
                        )));
                    }
                }
                let now = api.store.now();
                // A prefecture's approval of a filing or change is reported to the region,
                // which sees the file arrive (Art. 10, 12).
                let forwards = approve
                    && !me.is_region()
                    && matches!(
                        kind,
                        crate::validate::Kind::Filing | crate::validate::Kind::Change
                    );
                let event = match (kind, approve, forwards) {
                    (crate::validate::Kind::Supervision, _, _) => TaskEvent::Close,
                    (_, true, true) => TaskEvent::ApproveAndForward,
                    (_, true, false) => TaskEvent::Approve,
                    (_, false, _) => TaskEvent::Refuse,
                };
                let record =
                    json!({"approve": approve, "grounds": grounds, "reason": req.reason.trim()});
                if !task_store::decide(
                    &mut tx,
                    &task.tenant,
                    &task.task_id,
                    event,
                    now,
                    &ctx.principal_id,
                    &record.to_string(),
                )
                .await?
                {
                    return Err(Error::failed_precondition(
                        "the task was decided by another call first",
                    ));
                }
                let agency_moved = |moved: bool, what: &str| {
                    if moved {
                        Ok(())
                    } else {
                        Err(Error::failed_precondition(format!(
                            "the filing of {} is no longer {what}; the task cannot be decided",
                            task.uscc
                        )))
                    }
                };
                match kind {
                    crate::validate::Kind::Filing => {
                        let ev = if approve {
                            FilingEvent::Approve
                        } else {
                            FilingEvent::Refuse
                        };
                        agency_moved(
                            task_store::agency_transition(&mut tx, &task.uscc, &task.filing_id, ev)
                                .await?,
                            "under review",
                        )?;
                        api.store
                            .publish_event(
                                &mut tx,
                                ctx,
                                &task.tenant,
                                &task.filing_id,
                                &ev::FilingDecided {
                                    filing_id: task.filing_id.clone(),
                                    uscc: task.uscc.clone(),
                                    approved: approve,
                                    grounds: names(&grounds),
                                    reason: req.reason.trim().to_owned(),
                                },
                            )
                            .await?;
                    }
                    crate::validate::Kind::Change => {
                        let state = task_store::agency(&mut tx, &task.uscc)
                            .await?
                            .map(|a| a.2)
                            .unwrap_or_default();
                        agency_moved(
                            Filing::parse(&state) == Some(Filing::Active),
                            Filing::Active.name(),
                        )?;
                        if approve {
                            task_store::set_agency_principals(
                                &mut tx,
                                &task.uscc,
                                &task.principals,
                            )
                            .await?;
                        }
                        api.store
                            .publish_event(
                                &mut tx,
                                ctx,
                                &task.tenant,
                                &task.subject_id,
                                &ev::ChangeDecided {
                                    change_id: task.subject_id.clone(),
                                    filing_id: task.filing_id.clone(),
                                    approved: approve,
                                    grounds: names(&grounds),
                                    reason: req.reason.trim().to_owned(),
                                },
                            )
                            .await?;
                    }
                    crate::validate::Kind::Deregistration => {
                        if approve {
                            let state = task_store::agency(&mut tx, &task.uscc)
                                .await?
                                .map(|a| a.2)
                                .unwrap_or_default();
                            agency_moved(
                                Filing::parse(&state) == Some(Filing::Deregistering),
                                Filing::Deregistering.name(),
                            )?;
                        } else {
                            agency_moved(
                                task_store::agency_transition(
                                    &mut tx,
                                    &task.uscc,
                                    &task.filing_id,
                                    FilingEvent::RefuseDeregistration,
                                )
                                .await?,
                                Filing::Deregistering.name(),
                            )?;
                        }
                        api.store
                            .publish_event(
                                &mut tx,
                                ctx,
                                &task.tenant,
                                &task.filing_id,
                                &ev::DeregistrationDecided {
                                    filing_id: task.filing_id.clone(),
                                    uscc: task.uscc.clone(),
                                    approved: approve,
                                    grounds: names(&grounds),
                                    reason: req.reason.trim().to_owned(),
                                },
                            )
                            .await?;
                    }
                    crate::validate::Kind::Supervision => {}
                }
                // The reviewed materials go on to the region (Art. 10) as an event for its
                // tenant: its review node keeps them, wherever this prefecture's review runs.
                if forwards {
                    api.store
                        .publish_event(
                            &mut tx,
                            ctx,
                            &creditmesh_domain::tenant::REGION.to_string(),
                            &task.filing_id,
                            &ev::ReviewForwarded {
                                task_id: task.task_id.clone(),
                                from_tenant: task.tenant.clone(),
                                kind: task.kind.clone(),
                                filing_id: task.filing_id.clone(),
                                subject_id: task.subject_id.clone(),
                                uscc: task.uscc.clone(),
                                agency_name: task.agency_name.clone(),
                                deadline_from: task.deadline_from.clone(),
                                deadline_due: task.deadline_due.clone(),
                                deadline_provisional: task.deadline_provisional,
                                calendar_version: task.calendar_version.clone(),
                                checks: task.checks.clone(),
                                principals: task.principals.clone(),
                            },
                        )
                        .await?;
                }
                let summary = match kind {
                    crate::validate::Kind::Supervision => {
                        format!("supervision task closed: {}", req.reason.trim())
                    }
                    _ => format!(
                        "{} {} {}{}",
                        task.kind,
                        if approve { "approved" } else { "refused" },
                        if forwards {
                            "and forwarded to the region "
                        } else {
                            ""
                        },
                        if grounds.is_empty() {
                            String::new()
                        } else {
                            format!("on {}", grounds.join(", "))
                        }
                    ),
                };
                api.credit_entry(
                    &mut tx,
                    ctx,
                    &task.tenant,
                    &task.uscc,
                    "decision",
                    summary.trim().to_owned(),
                    record.clone(),
                )
                .await?;
                let decided = task_store::get(&mut tx, &task.task_id)
                    .await?
                    .ok_or_else(|| Error::internal("task vanished"))?;
                let value = DecideReviewTaskResponse {
                    task: Some(crate::convert::task_proto(&api.calendar, decided, &today)),
                };
                Ok((
                    tx,
                    Written {
                        value,
                        tenant: task.tenant,
                    },
                ))
            })
            .await
    })
    .await
}
