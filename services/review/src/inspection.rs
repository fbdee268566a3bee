//! Supervision acts of Art. 14: interviews, inspections, findings, risk tiers and
//! reproducible spot-check draws.

use creditmesh_domain::calendar::parse_iso_date;
use creditmesh_domain::{Error, Tenant, Violations};
use creditmesh_proto::events::v1 as ev;
use creditmesh_proto::review::v1::*;
use creditmesh_rpc::{Written, edge, timestamp};
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::party::Party;
use crate::state::Api;

pub(crate) async fn record_interview(
    api: &Api,
    request: Request<RecordInterviewRequest>,
) -> Result<Response<RecordInterviewResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, "RecordInterview", async {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        let party = Party::parse(&mut v, &req.uscc, req.practitioner.as_ref(), &req.agency_name);
        v.check("held_on", parse_iso_date(&req.held_on));
        v.require("subject", &req.subject);
        v.require("summary", &req.summary);
        v.finish()?;
        let party = party.ok_or_else(|| Error::internal("validation lost the party"))?;
        let entry_id = api
            .supervise(ctx, "RecordInterview", &req.request_id, &party, "interview",
                format!("interview (约谈) on {}: {}", req.held_on.trim(), req.subject.trim()),
                json!({"held_on": req.held_on.trim(), "subject": req.subject.trim(), "summary": req.summary.trim(), "order_id": req.order_id.trim()}),
                None, Some(req.order_id.trim()).filter(|o| !o.is_empty()))
            .await?;
        Ok(RecordInterviewResponse { entry_id })
    })
    .await
}

pub(crate) async fn record_inspection(
    api: &Api,
    request: Request<RecordInspectionRequest>,
) -> Result<Response<RecordInspectionResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, "RecordInspection", async {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        let party = Party::parse(&mut v, &req.uscc, req.practitioner.as_ref(), &req.agency_name);
        v.check("inspected_on", parse_iso_date(&req.inspected_on));
        v.require("result", &req.result);
        v.finish()?;
        let party = party.ok_or_else(|| Error::internal("validation lost the party"))?;
        let entry_id = api
            .supervise(ctx, "RecordInspection", &req.request_id, &party, "inspection",
                format!("inspection on {}: {}", req.inspected_on.trim(), req.result.trim()),
                json!({"inspected_on": req.inspected_on.trim(), "result": req.result.trim(), "draw_id": req.draw_id.trim()}), None, None)
            .await?;
        Ok(RecordInspectionResponse { entry_id })
    })
    .await
}

pub(crate) async fn record_finding(
    api: &Api,
    request: Request<RecordFindingRequest>,
) -> Result<Response<RecordFindingResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, "RecordFinding", async {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        let party = Party::parse(&mut v, &req.uscc, req.practitioner.as_ref(), &req.agency_name);
        let category =
            FindingCategory::try_from(req.category).unwrap_or(FindingCategory::Unspecified);
        if category == FindingCategory::Unspecified {
            v.add("category", "is required (Art. 13, 16)");
        }
        v.require("description", &req.description);
        v.finish()?;
        let party = party.ok_or_else(|| Error::internal("validation lost the party"))?;
        let name = crate::convert::category_name(category);
        let article = crate::convert::article(category);
        let entry_id = api
            .supervise(
                ctx,
                "RecordFinding",
                &req.request_id,
                &party,
                "finding",
                format!("finding of prohibited conduct ({article}): {name}"),
                json!({"category": name, "article": article, "description": req.description.trim()}),
                None,
                None,
            )
            .await?;
        Ok(RecordFindingResponse { entry_id })
    })
    .await
}

pub(crate) async fn set_risk_tier(
    api: &Api,
    request: Request<SetRiskTierRequest>,
) -> Result<Response<SetRiskTierResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, "SetRiskTier", async {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        let party = Party::parse(&mut v, &req.uscc, None, "");
        let tier = RiskTier::try_from(req.tier).unwrap_or(RiskTier::Unspecified);
        if tier == RiskTier::Unspecified {
            v.add("tier", "is required");
        }
        v.finish()?;
        let party = party.ok_or_else(|| Error::internal("validation lost the party"))?;
        api.supervise(
            ctx,
            "SetRiskTier",
            &req.request_id,
            &party,
            "risk_tier",
            format!(
                "risk tier set to {}",
                tier.as_str_name().to_ascii_lowercase()
            ),
            json!({"tier": tier as i32, "reason": req.reason.trim()}),
            Some(tier as i64),
            None,
        )
        .await?;
        Ok(SetRiskTierResponse {})
    })
    .await
}

pub(crate) async fn draw_spot_check(
    api: &Api,
    request: Request<DrawSpotCheckRequest>,
) -> Result<Response<DrawSpotCheckResponse>, Status> {
    const METHOD: &str = "DrawSpotCheck";
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, METHOD, async {
        let me = Api::regulator(ctx)?;
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        let tenant = if req.tenant.is_empty() {
            Some(me)
        } else {
            v.check("tenant", Tenant::parse_holding(&req.tenant))
        };
        v.max_chars("seed", &req.seed, 128);
        v.finish()?;
        let tenant = tenant.ok_or_else(|| Error::internal("validation lost tenant"))?;
        if !me.can_see(tenant) {
            return Err(Error::permission_denied(
                "a prefecture draws only among its own agencies",
            ));
        }
        let seed = if req.seed.trim().is_empty() {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            req.seed.trim().to_owned()
        };
        let (ctx, seed) = (ctx, &seed);
        api.store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let scope = if tenant.is_region() {
                    String::new()
                } else {
                    tenant.to_string()
                };
                let population = crate::supervision_store::population(&mut tx, &scope).await?;
                let digest = crate::draw::population_digest(&population);
                let sample = crate::draw::draw(seed, &population, api.spot_check_percent);
                let draw_id = uuid::Uuid::now_v7().to_string();
                let now = api.store.now();
                crate::supervision_store::insert_draw(
                    &mut tx,
                    &tenant.to_string(),
                    &draw_id,
                    seed,
                    &digest,
                    &json!(sample).to_string(),
                    now,
                )
                .await?;
                // The seed and sample are published so that anyone can re-draw and check.
                api.store
                    .publish_event(
                        &mut tx,
                        ctx,
                        &tenant.to_string(),
                        &draw_id,
                        &ev::SpotCheckDrawn {
                            draw_id: draw_id.clone(),
                            tenant: tenant.to_string(),
                            seed: seed.clone(),
                            population_digest: digest.clone(),
                            sampled_usccs: sample.clone(),
                        },
                    )
                    .await?;
                let value = DrawSpotCheckResponse {
                    draw: Some(SpotCheckDraw {
                        draw_id,
                        tenant: tenant.to_string(),
                        seed: seed.clone(),
                        population_digest: digest,
                        sampled_usccs: sample,
                        drawn_at: Some(timestamp(now)),
                    }),
                };
                Ok((
                    tx,
                    Written {
                        value,
                        tenant: tenant.to_string(),
                    },
                ))
            })
            .await
    })
    .await
}
