//! The gRPC edge of the review service.

use creditmesh_domain::{Error, PrincipalKind, Uscc, Violations};
use creditmesh_proto::review::v1::review_service_server::ReviewService;
use creditmesh_proto::review::v1::{
    CreditFileEntry, GetCreditFileRequest, GetCreditFileResponse, RiskTier,
};
use creditmesh_rpc::{Authn, ServiceStore, status, status_from, timestamp};
use tonic::{Request, Response, Status};

use crate::store;

pub struct Api {
    store: ServiceStore,
    authn: Authn,
}

impl Api {
    pub fn new(store: ServiceStore, authn: Authn) -> Self {
        Self { store, authn }
    }
}

#[tonic::async_trait]
impl ReviewService for Api {
    async fn get_credit_file(
        &self,
        request: Request<GetCreditFileRequest>,
    ) -> Result<Response<GetCreditFileResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        ctx.require(&[PrincipalKind::Regulator, PrincipalKind::Agency])?;
        let req = request.into_inner();
        let mut v = Violations::default();
        let uscc = v.check("uscc", Uscc::parse(&req.uscc));
        v.finish().map_err(status)?;
        let uscc = uscc.ok_or_else(|| status(Error::internal("validation lost uscc")))?;
        let p = &ctx.principal;
        if p.kind == PrincipalKind::Agency && p.subject != uscc.as_str() {
            return Err(status(Error::permission_denied(
                "an agency reads only its own credit file",
            )));
        }
        // A prefecture reads the entries its own tenant holds; the region and the agency itself
        // read every entry.
        let tenant = (p.kind == PrincipalKind::Regulator && !p.tenant.is_region())
            .then(|| p.tenant.to_string());
        let db = &self.store.db;
        let mut tx = db
            .read_scoped(tenant.as_deref())
            .await
            .map_err(status_from)?;
        let entries = store::entries(&mut tx, uscc.as_str(), tenant.as_deref())
            .await
            .map_err(status_from)?;
        Ok(Response::new(GetCreditFileResponse {
            uscc: uscc.to_string(),
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
            risk_tier: RiskTier::Unspecified as i32,
        }))
    }
}
