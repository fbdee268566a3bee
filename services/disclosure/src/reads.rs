//! Reading the register: agencies by search or USCC, their fee schedules, notices.

use creditmesh_domain::error::Violations;
use creditmesh_domain::uscc::Uscc;
use creditmesh_domain::{Error, Tenant};
use creditmesh_proto::disclosure::v1::*;
use creditmesh_rpc::edge;
use tonic::{Request, Response, Status};

use crate::convert::notice_proto;
use crate::log_store;
use crate::state::Api;
use crate::store::{self, Search};
use crate::store::{kind_name, status_name};
use crate::validate::{page_size, uscc_field};

pub(crate) async fn list_agencies(
    api: &Api,
    request: Request<ListAgenciesRequest>,
) -> Result<Response<ListAgenciesResponse>, Status> {
    let (_, req) = edge::caller(&api.authn, request, &[])?;
    edge::read(async {
        let mut v = Violations::default();
        let limit = page_size(&mut v, req.page_size);
        let uscc = uscc_field(&mut v, "uscc", &req.uscc);
        let token = req.page_token.trim();
        let after = match Uscc::parse(token) {
            _ if token.is_empty() => String::new(),
            Ok(u) => u.as_str().to_owned(),
            Err(_) => {
                v.add("page_token", "is not a token this list gave out");
                String::new()
            }
        };
        let tenant = req.tenant.trim();
        if !tenant.is_empty()
            && let Err(e) = Tenant::parse_holding(tenant)
        {
            v.add("tenant", e.to_string());
        }
        let name = req.name_contains.trim();
        if name.chars().count() > 100 {
            v.add("name_contains", "must be at most 100 characters");
        }
        let mut statuses = Vec::new();
        for (i, s) in req.statuses.iter().enumerate() {
            match AgencyStatus::try_from(*s) {
                Ok(st) if st != AgencyStatus::Unspecified => statuses.push(status_name(st)),
                _ => v.add(format!("statuses[{i}]"), "is not a status of the register"),
            }
        }
        v.finish()?;
        let mut conn = api.store.db.acquire().await?;
        let register_version = log_store::size(&mut conn).await? as i64;
        let mut agencies = store::search(
            &mut conn,
            &Search {
                tenant,
                uscc: &uscc,
                name_contains: name,
                statuses,
                after: &after,
                limit: limit + 1,
            },
        )
        .await?;
        let next_page_token = if agencies.len() as i64 > limit {
            agencies.truncate(limit as usize);
            agencies.last().map(|a| a.uscc.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListAgenciesResponse {
            agencies: agencies.into_iter().map(as_presented).collect(),
            next_page_token,
            register_version,
        })
    })
    .await
}

/// What the register presents of `record` now: a revoked or deregistered agency shows as such
/// — who it was, its status, when it was filed — and its facts, documents and fees are no
/// longer published as if current (Art. 18: "信用网站停止公示相关信息"); its notices stay.
fn as_presented(mut record: AgencyRecord) -> AgencyRecord {
    let closed = matches!(
        AgencyStatus::try_from(record.status),
        Ok(AgencyStatus::Revoked | AgencyStatus::Deregistered)
    );
    if closed {
        record.legal_representative.clear();
        record.registered_address.clear();
        record.business_scope.clear();
        record.registered_capital_yuan = 0;
        record.professional_staff_count = 0;
        record.documents.clear();
        record.fee_items.clear();
    }
    record
}

/// The record the register shows for the USCC in field `uscc`, once `v` (with the other
/// fields' violations) is clean.
async fn shown(api: &Api, mut v: Violations, uscc: &str) -> Result<AgencyRecord, Error> {
    v.require("uscc", uscc);
    let uscc = uscc_field(&mut v, "uscc", uscc);
    v.finish()?;
    let mut conn = api.store.db.acquire().await?;
    store::agency(&mut conn, &uscc)
        .await?
        .map(as_presented)
        .ok_or_else(|| Error::not_found(format!("no agency {uscc} on the register")))
}

pub(crate) async fn get_agency(
    api: &Api,
    request: Request<GetAgencyRequest>,
) -> Result<Response<GetAgencyResponse>, Status> {
    let (_, req) = edge::caller(&api.authn, request, &[])?;
    edge::read(async {
        let mut v = Violations::default();
        if req.changed_since < 0 {
            v.add("changed_since", "must not be negative");
        }
        let agency = shown(api, v, &req.uscc).await?;
        if req.changed_since > 0 && agency.register_version <= req.changed_since {
            return Ok(GetAgencyResponse {
                agency: None,
                not_modified: true,
            });
        }
        Ok(GetAgencyResponse {
            agency: Some(agency),
            not_modified: false,
        })
    })
    .await
}

pub(crate) async fn list_notices(
    api: &Api,
    request: Request<ListNoticesRequest>,
) -> Result<Response<ListNoticesResponse>, Status> {
    let (_, req) = edge::caller(&api.authn, request, &[])?;
    edge::read(async {
        let mut v = Violations::default();
        let limit = page_size(&mut v, req.page_size);
        let uscc = uscc_field(&mut v, "uscc", &req.uscc);
        let token = req.page_token.trim();
        let after = if token.is_empty() {
            -1
        } else {
            match token.parse::<i64>() {
                Ok(n) if n >= 0 => n,
                _ => {
                    v.add("page_token", "is not a token this list gave out");
                    -1
                }
            }
        };
        let mut kinds = Vec::new();
        for (i, k) in req.kinds.iter().enumerate() {
            match NoticeKind::try_from(*k) {
                Ok(kind) if kind != NoticeKind::Unspecified => kinds.push(kind_name(kind)),
                _ => v.add(format!("kinds[{i}]"), "is not a kind of notice"),
            }
        }
        v.finish()?;
        let mut conn = api.store.db.acquire().await?;
        let mut rows = store::notices(&mut conn, &uscc, &kinds, after, limit + 1).await?;
        let next_page_token = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|n| n.seq.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListNoticesResponse {
            notices: rows.into_iter().map(notice_proto).collect(),
            next_page_token,
        })
    })
    .await
}

pub(crate) async fn get_fee_schedule(
    api: &Api,
    request: Request<GetFeeScheduleRequest>,
) -> Result<Response<GetFeeScheduleResponse>, Status> {
    let (_, req) = edge::caller(&api.authn, request, &[])?;
    edge::read(async {
        let agency = shown(api, Violations::default(), &req.uscc).await?;
        Ok(GetFeeScheduleResponse {
            uscc: agency.uscc,
            items: agency.fee_items,
            register_version: agency.register_version,
        })
    })
    .await
}
