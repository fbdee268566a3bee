//! Reading tasks and credit files, scoped to what the caller may see.

use creditmesh_domain::lifecycle::Machine;
use creditmesh_domain::{Error, PrincipalKind, Tenant, Violations};
use creditmesh_proto::review::v1::*;
use creditmesh_rpc::{edge, timestamp};
use tonic::{Request, Response, Status};

use crate::state::Api;
use crate::store::{self};
use crate::task_store::{self};

pub(crate) async fn list_review_tasks(
    api: &Api,
    request: Request<ListReviewTasksRequest>,
) -> Result<Response<ListReviewTasksResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    edge::read(async {
        let me = Api::regulator(&ctx)?;
        let mut v = Violations::default();
        let wanted = if req.tenant.is_empty() {
            None
        } else {
            v.check("tenant", Tenant::parse_holding(&req.tenant))
        };
        if !(0..=500).contains(&req.page_size) {
            v.add("page_size", "must be between 0 and 500");
        }
        if !creditmesh_domain::error::is_id_token(req.page_token.trim()) {
            v.add("page_token", "is not a token this list gave out");
        }
        v.finish()?;
        let tenant = match wanted {
            Some(t) if !me.can_see(t) => {
                return Err(Error::permission_denied(
                    "a prefecture lists only its own tasks",
                ));
            }
            Some(t) => t.to_string(),
            None if me.is_region() => String::new(),
            None => me.to_string(),
        };
        let names = |values: &[i32], name: fn(i32) -> Option<&'static str>| {
            let list: Vec<&str> = values.iter().filter_map(|v| name(*v)).collect();
            if list.is_empty() {
                String::new()
            } else {
                format!(",{},", list.join(","))
            }
        };
        let statuses = names(&req.statuses, |s| {
            crate::convert::task_state(TaskStatus::try_from(s).ok()?).map(Machine::name)
        });
        let kinds = names(&req.kinds, |k| match TaskKind::try_from(k).ok()? {
            TaskKind::Filing => Some("filing"),
            TaskKind::Change => Some("change"),
            TaskKind::Deregistration => Some("deregistration"),
            TaskKind::Supervision => Some("supervision"),
            TaskKind::Unspecified => None,
        });
        let today = api.today()?;
        let overdue = if req.overdue_only {
            today.clone()
        } else {
            String::new()
        };
        let limit = if req.page_size == 0 {
            50
        } else {
            i64::from(req.page_size)
        };
        let scope = (!me.is_region()).then(|| me.to_string());
        let mut tx = api.store.db.read_scoped(scope.as_deref()).await?;
        let rows = task_store::list(
            &mut tx,
            &tenant,
            &statuses,
            &kinds,
            &overdue,
            req.page_token.trim(),
            limit + 1,
        )
        .await?;
        let more = rows.len() as i64 > limit;
        let tasks: Vec<ReviewTask> = rows
            .into_iter()
            .take(limit as usize)
            .map(|t| crate::convert::task_proto(&api.calendar, t, &today))
            .collect();
        let next_page_token = if more {
            tasks.last().map(|t| t.task_id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListReviewTasksResponse {
            tasks,
            next_page_token,
        })
    })
    .await
}

pub(crate) async fn get_review_task(
    api: &Api,
    request: Request<GetReviewTaskRequest>,
) -> Result<Response<GetReviewTaskResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    edge::read(async {
        let mut conn = api.store.db.acquire().await?;
        let task = api
            .visible_task(&mut conn, &ctx, req.task_id.trim())
            .await?;
        let today = api.today()?;
        Ok(GetReviewTaskResponse {
            task: Some(crate::convert::task_proto(&api.calendar, task, &today)),
        })
    })
    .await
}

pub(crate) async fn get_credit_file(
    api: &Api,
    request: Request<GetCreditFileRequest>,
) -> Result<Response<GetCreditFileResponse>, Status> {
    let (ctx, req) = edge::caller(
        &api.authn,
        request,
        &[PrincipalKind::Regulator, PrincipalKind::Agency],
    )?;
    edge::read(async {
        let mut v = Violations::default();
        let uscc = crate::party::file_key(&mut v, &req.uscc, req.practitioner.as_ref());
        if !(0..=500).contains(&req.page_size) {
            v.add("page_size", "must be between 0 and 500");
        }
        // A token is `<recorded_at micros>.<entry id>` of the last entry given out.
        let after = match req.page_token.trim() {
            "" => None,
            token => match token
                .split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id)))
                .filter(|(_, id)| creditmesh_domain::error::is_id_token(id) && !id.is_empty())
            {
                Some(after) => Some(after),
                None => {
                    v.add("page_token", "is not a token this list gave out");
                    None
                }
            },
        };
        v.finish()?;
        let limit = if req.page_size == 0 {
            100
        } else {
            i64::from(req.page_size)
        };
        let uscc = uscc.ok_or_else(|| Error::internal("validation lost uscc"))?;
        let p = &ctx.principal;
        if p.kind == PrincipalKind::Agency && p.subject != uscc {
            return Err(Error::permission_denied(
                "an agency reads only its own credit file",
            ));
        }
        // One credit file per party: the region, the agency itself and the authority holding
        // its filing read every entry, each naming the authority that wrote it; another
        // authority (a prefecture's, a county's where the agency works) reads the entries it
        // and its counties wrote. A party without a filing has no holder.
        let db = &api.store.db;
        let mine = (p.kind == PrincipalKind::Regulator && !p.tenant.is_region())
            .then(|| p.tenant.to_string());
        let holds = match &mine {
            None => true,
            Some(mine) => {
                let mut conn = db.acquire().await?;
                task_store::agency(&mut conn, &uscc)
                    .await?
                    .is_some_and(|(held_by, _, _)| &held_by == mine)
            }
        };
        let tenant = if holds { None } else { mine };
        let mut tx = db.read_scoped(tenant.as_deref()).await?;
        let mut entries =
            store::entries(&mut tx, &uscc, tenant.as_deref(), after, limit + 1).await?;
        let next_page_token = if entries.len() as i64 > limit {
            entries.truncate(limit as usize);
            entries
                .last()
                .map(|e| format!("{}.{}", e.recorded_at, e.entry_id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        // A risk tier is the holding authority's judgement: a prefecture sees it only for
        // the agencies it holds.
        let tier = if holds {
            crate::supervision_store::tier(&mut tx, &uscc)
                .await?
                .unwrap_or_default() as i32
        } else {
            0
        };
        let (party_kind, name) = store::party(&mut tx, &uscc, tenant.as_deref())
            .await?
            .unwrap_or_default();
        Ok(GetCreditFileResponse {
            uscc,
            name,
            party_kind,
            entries: entries
                .into_iter()
                .map(|e| CreditFileEntry {
                    entry_id: e.entry_id,
                    kind: e.kind,
                    recorded_at: Some(timestamp(e.recorded_at)),
                    tenant: e.tenant,
                    principal: e.principal,
                    summary: e.summary,
                    details: e.details,
                })
                .collect(),
            risk_tier: tier,
            next_page_token,
        })
    })
    .await
}
