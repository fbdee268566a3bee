//! Reading filings, scoped to what the caller may see.

use creditmesh_domain::{Error, PrincipalKind, Tenant, Violations};
use creditmesh_proto::filing::v1::*;
use creditmesh_rpc::{CallContext, edge};
use tonic::{Request, Response, Status};

use crate::convert::status_name;
use crate::state::Api;
use crate::store::{self};

pub(crate) async fn get_filing(
    api: &Api,
    request: Request<GetFilingRequest>,
) -> Result<Response<GetFilingResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    edge::read(async {
        if req.filing_id.trim().is_empty() {
            return Err(Error::invalid_field("filing_id", "is required"));
        }
        let scope = read_scope(&ctx);
        let mut tx = api.store.db.read_scoped(scope.as_deref()).await?;
        let row = api
            .visible_filing(&mut tx, &ctx, req.filing_id.trim())
            .await?;
        let filing = api.filing_proto(&mut tx, row).await?;
        Ok(GetFilingResponse {
            filing: Some(filing),
        })
    })
    .await
}

pub(crate) async fn list_filings(
    api: &Api,
    request: Request<ListFilingsRequest>,
) -> Result<Response<ListFilingsResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    edge::read(list(api, &ctx, &req)).await
}

/// Encoded bytes after which a page of filings ends (a stock client accepts 4 MiB; one filing
/// shows at most about 1 MiB of history).
const PAGE_BYTES: usize = 3 * 512 * 1024;

async fn list(
    api: &Api,
    ctx: &CallContext,
    req: &ListFilingsRequest,
) -> Result<ListFilingsResponse, Error> {
    let p = &ctx.principal;
    let mut v = Violations::default();
    let requested_tenant = if req.tenant.is_empty() {
        None
    } else {
        v.check("tenant", Tenant::parse_holding(&req.tenant))
    };
    if req.page_size < 0 || req.page_size > 500 {
        v.add("page_size", "must be between 0 and 500");
    }
    if !creditmesh_domain::error::is_id_token(req.page_token.trim()) {
        v.add("page_token", "is not a token this list gave out");
    }
    let mut statuses = String::new();
    for (i, s) in req.statuses.iter().enumerate() {
        match FilingStatus::try_from(*s).ok().and_then(status_name) {
            Some(name) => statuses.push_str(&format!(",{name}")),
            None => v.add(format!("statuses[{i}]"), "is not a filing status"),
        }
    }
    if !statuses.is_empty() {
        statuses.push(',');
    }
    v.finish()?;
    let (tenant, uscc) = match p.kind {
        PrincipalKind::Agency => (String::new(), p.subject.clone()),
        PrincipalKind::Regulator if p.tenant.is_region() => (
            requested_tenant.map(|t| t.to_string()).unwrap_or_default(),
            req.uscc.trim().to_ascii_uppercase(),
        ),
        PrincipalKind::Regulator => {
            if requested_tenant.is_some_and(|t| t != p.tenant) {
                return Err(Error::permission_denied(
                    "a prefecture lists only its own filings",
                ));
            }
            (p.tenant.to_string(), req.uscc.trim().to_ascii_uppercase())
        }
        _ => {
            return Err(Error::permission_denied("not a caller of this method"));
        }
    };
    let limit = if req.page_size == 0 {
        50
    } else {
        i64::from(req.page_size)
    };
    let scope = read_scope(ctx);
    let mut tx = api.store.db.read_scoped(scope.as_deref()).await?;
    let rows = store::list_filings(
        &mut tx,
        &tenant,
        &uscc,
        &statuses,
        req.page_token.trim(),
        limit + 1,
    )
    .await?;
    let mut more = rows.len() as i64 > limit;
    let mut filings = Vec::new();
    let mut bytes = 0;
    for row in rows.into_iter().take(limit as usize) {
        let filing = api.filing_proto(&mut tx, row).await?;
        // A page ends early rather than outgrow what a stock client accepts.
        bytes += prost::Message::encoded_len(&filing);
        if bytes > PAGE_BYTES && !filings.is_empty() {
            more = true;
            break;
        }
        filings.push(filing);
    }
    let next_page_token = if more {
        filings
            .last()
            .map(|f| f.filing_id.clone())
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(ListFilingsResponse {
        filings,
        next_page_token,
    })
}

/// The tenant a read is confined to: a prefecture regulator's own; none for the region and
/// for agencies (whose reads are confined by their USCC).
fn read_scope(ctx: &CallContext) -> Option<String> {
    let p = &ctx.principal;
    (p.kind == PrincipalKind::Regulator && !p.tenant.is_region()).then(|| p.tenant.to_string())
}
