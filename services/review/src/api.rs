//! The gRPC edge of the review service.

use std::sync::Arc;

use creditmesh_domain::calendar::{
    Calendar, Layers, add_years, cst_date, format_date, parse_iso_date,
};
use creditmesh_domain::lifecycle::{Filing, FilingEvent, Machine, OrderEvent, Task, TaskEvent};
use creditmesh_domain::resident_id::ResidentId;
use creditmesh_domain::{Error, PrincipalKind, Tenant, Uscc, Violations};
use creditmesh_proto::common::v1::Deadline;
use creditmesh_proto::events::v1 as ev;
use creditmesh_proto::review::v1::review_service_server::ReviewService;
use creditmesh_proto::review::v1::*;
use creditmesh_rpc::{Authn, CallContext, ServiceStore, Written, status, status_from, timestamp};
use creditmesh_storage::Tx;
use creditmesh_storage::sqlx::AnyConnection;
use futures::StreamExt;
use serde_json::json;
use tonic::{Request, Response, Status, Streaming};

use crate::events::{self, REVIEW_WORKING_DAYS};
use crate::store::{self, Entry};
use crate::tasks::{self, TaskRow};

pub struct Api {
    store: ServiceStore,
    authn: Authn,
    calendar: Arc<Calendar>,
    spot_check_percent: [u32; 4],
    measures: Option<creditmesh_domain::measures::Validity>,
}

/// A supervised agency: `(tenant, filing_id, status)`.
type Supervised = (String, String, String);

impl Api {
    pub fn new(
        store: ServiceStore,
        authn: Authn,
        calendar: Arc<Calendar>,
        spot_check_percent: [u32; 4],
        measures: Option<creditmesh_domain::measures::Validity>,
    ) -> Self {
        Self {
            store,
            authn,
            calendar,
            spot_check_percent,
            measures,
        }
    }

    /// The agency, if the calling regulator supervises it (its tenant, or the region).
    async fn supervised(
        &self,
        conn: &mut AnyConnection,
        ctx: &CallContext,
        uscc: &str,
    ) -> Result<Supervised, Error> {
        let me = Self::regulator(ctx)?;
        let not_found =
            || Error::not_found(format!("no agency {uscc} under the caller's supervision"));
        let agency = tasks::agency(conn, uscc).await?.ok_or_else(not_found)?;
        match Tenant::parse(&agency.0) {
            Ok(t) if me.can_see(t) => Ok(agency),
            _ => Err(not_found()),
        }
    }

    /// Revokes an active (or deregistering) filing under Art. 15, with the 12-month
    /// restriction of its last paragraph: the restriction's last day is the day corresponding
    /// to today a year on (Civil Code Art. 201-203), and a new application is accepted from the
    /// day after. Open tasks of the filing are withdrawn. Returns the restriction's last day.
    async fn revoke(
        &self,
        tx: &mut Tx,
        ctx: &CallContext,
        uscc: &str,
        agency: &Supervised,
        ground: &str,
        why: &str,
    ) -> Result<String, Error> {
        let (tenant, filing_id, status) = agency;
        if !tasks::agency_transition(tx, uscc, filing_id, FilingEvent::Revoke).await? {
            return Err(Error::failed_precondition(format!(
                "the filing is {status}; only an active filing can be revoked (Art. 15)"
            )));
        }
        let now = self.store.now();
        let today = cst_date(now).map_err(|e| Error::internal(e.to_string()))?;
        let ban_ends_on = format_date(add_years(today, 1));
        tasks::withdraw_open(tx, filing_id, now, &ctx.principal_id).await?;
        self.credit_entry(
            tx,
            ctx,
            tenant,
            uscc,
            "revocation",
            format!("filing revoked: {why}"),
            json!({"filing_id": filing_id, "ground": ground}),
        )
        .await?;
        self.credit_entry(
            tx,
            ctx,
            tenant,
            uscc,
            "ban",
            format!("re-filing barred through {ban_ends_on} (Art. 15)"),
            json!({"ends_on": ban_ends_on}),
        )
        .await?;
        self.publish(
            tx,
            ctx,
            tenant,
            filing_id,
            &ev::FilingRevoked {
                filing_id: filing_id.clone(),
                uscc: uscc.to_owned(),
                ground: ground.to_owned(),
                ban_ends_on: ban_ends_on.clone(),
            },
        )
        .await?;
        Ok(ban_ends_on)
    }

    /// Writes one supervision record into the agency's credit file, idempotently, with the
    /// agency's new risk tier when one is given.
    #[allow(clippy::too_many_arguments)]
    async fn supervise(
        &self,
        ctx: &CallContext,
        method: &str,
        request_id: &str,
        uscc: &str,
        kind: &str,
        summary: String,
        details: serde_json::Value,
        risk_tier: Option<i64>,
    ) -> Result<String, Error> {
        let uscc = Uscc::parse(uscc).map_err(|e| Error::invalid_field("uscc", e.to_string()))?;
        let (summary, details, kind) = (&summary, &details, kind);
        let response = self
            .store
            .write_idempotent(ctx, method, request_id, |mut tx| async move {
                let agency = self.supervised(&mut tx, ctx, uscc.as_str()).await?;
                if let Some(tier) = risk_tier {
                    crate::supervision::set_tier(&mut tx, uscc.as_str(), tier, self.store.now())
                        .await?;
                }
                let entry_id = uuid::Uuid::now_v7().to_string();
                store::insert_entry(
                    &mut tx,
                    &Entry {
                        tenant: agency.0.clone(),
                        entry_id: entry_id.clone(),
                        uscc: uscc.to_string(),
                        kind: kind.into(),
                        recorded_at: self.store.now(),
                        principal: ctx.principal_id.clone(),
                        summary: summary.clone(),
                        details: details.to_string().into_bytes(),
                    },
                )
                .await?;
                Ok((
                    tx,
                    Written {
                        value: RecordInterviewResponse { entry_id },
                        tenant: agency.0,
                    },
                ))
            })
            .await?;
        Ok(response.entry_id)
    }

    fn regulator(ctx: &CallContext) -> Result<Tenant, Error> {
        if ctx.principal.kind == PrincipalKind::Regulator {
            Ok(ctx.principal.tenant)
        } else {
            Err(Error::permission_denied(
                "only a regulator may call this method",
            ))
        }
    }

    /// The task, if the calling regulator's tenant holds it (the region sees all).
    async fn visible_task(
        &self,
        conn: &mut AnyConnection,
        ctx: &CallContext,
        task_id: &str,
    ) -> Result<TaskRow, Error> {
        let me = Self::regulator(ctx)?;
        let not_found =
            || Error::not_found(format!("no review task {task_id} visible to the caller"));
        let task = tasks::get(conn, task_id).await?.ok_or_else(not_found)?;
        match Tenant::parse(&task.tenant) {
            Ok(t) if me.can_see(t) => Ok(task),
            _ => Err(not_found()),
        }
    }

    fn task_proto(&self, t: TaskRow, today: &str) -> ReviewTask {
        let checks: Vec<serde_json::Value> = serde_json::from_str(&t.checks).unwrap_or_default();
        let status = match Task::parse(&t.status) {
            Some(Task::Open) => TaskStatus::Open,
            Some(Task::Approved) => TaskStatus::Approved,
            Some(Task::Refused) => TaskStatus::Refused,
            Some(Task::Forwarded) => TaskStatus::Forwarded,
            Some(Task::Closed) => TaskStatus::Closed,
            Some(Task::Withdrawn) => TaskStatus::Withdrawn,
            None => TaskStatus::Unspecified,
        };
        // A provisional deadline makes nothing overdue: it may yet move later.
        let overdue = t.status == Task::Open.name()
            && !t.deadline_due.is_empty()
            && !t.deadline_provisional
            && t.deadline_due.as_str() < today;
        let deadline = (!t.deadline_due.is_empty()).then_some(Deadline {
            from_date: t.deadline_from,
            working_days: REVIEW_WORKING_DAYS as i32,
            due_date: t.deadline_due,
            calendar_version: t.calendar_version,
            provisional: t.deadline_provisional,
        });
        ReviewTask {
            overdue,
            task_id: t.task_id,
            tenant: t.tenant,
            kind: match crate::decision::Kind::parse(&t.kind) {
                Some(crate::decision::Kind::Filing) => TaskKind::Filing,
                Some(crate::decision::Kind::Change) => TaskKind::Change,
                Some(crate::decision::Kind::Deregistration) => TaskKind::Deregistration,
                Some(crate::decision::Kind::Supervision) => TaskKind::Supervision,
                None => TaskKind::Unspecified,
            } as i32,
            status: status as i32,
            filing_id: t.filing_id,
            uscc: t.uscc,
            agency_name: t.agency_name,
            created_at: Some(timestamp(t.created_at)),
            deadline,
            automatic_checks: checks
                .iter()
                .map(|c| AutomaticCheck {
                    ground: c["ground"].as_i64().unwrap_or_default() as i32,
                    evidence: c["evidence"].as_str().unwrap_or_default().to_owned(),
                })
                .collect(),
            forwarded_from_task_id: t.forwarded_from,
        }
    }

    fn today(&self) -> Result<String, Error> {
        cst_date(self.store.now())
            .map(format_date)
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// Publishes to this service's consumers.
    async fn publish<E: ev::EventKind>(
        &self,
        tx: &mut Tx,
        ctx: &CallContext,
        tenant: &str,
        subject: &str,
        event: &E,
    ) -> Result<(), Error> {
        self.store
            .publish_event(tx, events::CONSUMERS, ctx, tenant, subject, event)
            .await
            .map(|_| ())
    }

    #[allow(clippy::too_many_arguments)]
    async fn credit_entry(
        &self,
        tx: &mut Tx,
        ctx: &CallContext,
        tenant: &str,
        uscc: &str,
        kind: &str,
        summary: String,
        details: serde_json::Value,
    ) -> Result<(), Error> {
        store::insert_entry(
            tx,
            &Entry {
                tenant: tenant.into(),
                entry_id: uuid::Uuid::now_v7().to_string(),
                uscc: uscc.into(),
                kind: kind.into(),
                recorded_at: self.store.now(),
                principal: ctx.principal_id.clone(),
                summary,
                details: details.to_string().into_bytes(),
            },
        )
        .await?;
        Ok(())
    }

    /// Applies a severe-dishonesty listing to the open filings it concerns. The agency itself
    /// listed: an active filing is revoked (Art. 15(1)). A principal listed: an active agency
    /// becomes a supervision task of its holding authority, with an entry in its credit file.
    /// Either, while the application is under review: an Art. 9(2) hit on its open tasks,
    /// which then bars approval. Returns the revoked filing ids and the opened task ids.
    async fn apply_listing(
        &self,
        tx: &mut Tx,
        ctx: &CallContext,
        entry: &tasks::Listing,
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        let (mut revoked, mut opened) = (Vec::new(), Vec::new());
        for (uscc, tenant, filing_id, status) in
            tasks::open_agencies_naming(tx, &entry.identifier).await?
        {
            if Filing::parse(&status) == Some(Filing::Submitted) {
                continue;
            }
            let evidence = events::listed_evidence(entry, &uscc);
            if entry.identifier == uscc {
                let agency = (tenant, filing_id.clone(), status);
                self.revoke(
                    tx,
                    ctx,
                    &uscc,
                    &agency,
                    "severe_dishonesty",
                    &format!("{evidence} (Art. 15(1))"),
                )
                .await?;
                revoked.push(filing_id);
            } else {
                let task_id = tasks::open_supervision(
                    tx,
                    &tenant,
                    &uscc,
                    &filing_id,
                    self.store.now(),
                    &evidence,
                )
                .await?;
                self.credit_entry(
                    tx,
                    ctx,
                    &tenant,
                    &uscc,
                    "supervision",
                    format!("{evidence}: referred to the holding authority (Art. 14)"),
                    json!({"filing_id": filing_id, "task_id": task_id, "source": entry.source, "listed_on": entry.listed_on}),
                )
                .await?;
                opened.push(task_id);
            }
        }
        for (tenant, task_id, checks) in tasks::open_tasks_naming(tx, &entry.identifier).await? {
            let mut found: Vec<serde_json::Value> =
                serde_json::from_str(&checks).unwrap_or_default();
            let task = tasks::get(tx, &task_id)
                .await?
                .ok_or_else(|| Error::internal("task vanished"))?;
            let evidence = events::listed_evidence(entry, &task.uscc);
            if !found.iter().any(|c| c["evidence"] == evidence.as_str()) {
                found.push(
                    json!({"ground": RefusalGround::SevereDishonesty as i32, "evidence": evidence}),
                );
                tasks::set_checks(tx, &tenant, &task_id, &json!(found).to_string()).await?;
            }
        }
        Ok((revoked, opened))
    }
}

fn names(grounds: &[&str]) -> Vec<String> {
    grounds.iter().map(|g| (*g).to_owned()).collect()
}

fn listing(
    v: &mut Violations,
    prefix: &str,
    e: &Option<DishonestyEntry>,
) -> Option<tasks::Listing> {
    let Some(e) = e else {
        v.add(prefix, "is required");
        return None;
    };
    let party = ListedParty::try_from(e.party).unwrap_or(ListedParty::Unspecified);
    let identifier = e.identifier.trim().to_ascii_uppercase();
    match party {
        ListedParty::Organisation => {
            v.check(&format!("{prefix}.identifier"), Uscc::parse(&identifier));
        }
        ListedParty::Person => {
            v.check(
                &format!("{prefix}.identifier"),
                ResidentId::parse(&identifier),
            );
        }
        ListedParty::Unspecified => v.add(format!("{prefix}.party"), "is required"),
    }
    v.require(&format!("{prefix}.source"), &e.source);
    if let Err(why) = parse_iso_date(&e.listed_on) {
        v.add(format!("{prefix}.listed_on"), why);
    }
    Some(tasks::Listing {
        identifier,
        party: party.as_str_name().to_ascii_lowercase(),
        name: e.name.trim().to_owned(),
        source: e.source.trim().to_owned(),
        listed_on: e.listed_on.trim().to_owned(),
    })
}

fn listing_proto(l: tasks::Listing) -> DishonestyEntry {
    DishonestyEntry {
        party: if l.party == "listed_party_person" {
            ListedParty::Person
        } else {
            ListedParty::Organisation
        } as i32,
        identifier: l.identifier,
        name: l.name,
        source: l.source,
        listed_on: l.listed_on,
    }
}

#[tonic::async_trait]
impl ReviewService for Api {
    async fn record_interview(
        &self,
        request: Request<RecordInterviewRequest>,
    ) -> Result<Response<RecordInterviewResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.check("uscc", Uscc::parse(&req.uscc));
        v.check("held_on", parse_iso_date(&req.held_on));
        v.require("subject", &req.subject);
        v.require("summary", &req.summary);
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, "RecordInterview", e).await));
        }
        let entry_id = self
            .supervise(&ctx, "RecordInterview", &req.request_id, &req.uscc, "interview",
                format!("interview (约谈) on {}: {}", req.held_on.trim(), req.subject.trim()),
                json!({"held_on": req.held_on.trim(), "subject": req.subject.trim(), "summary": req.summary.trim()}), None)
            .await
            .map_err(status)?;
        Ok(Response::new(RecordInterviewResponse { entry_id }))
    }

    async fn record_inspection(
        &self,
        request: Request<RecordInspectionRequest>,
    ) -> Result<Response<RecordInspectionResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.check("uscc", Uscc::parse(&req.uscc));
        v.check("inspected_on", parse_iso_date(&req.inspected_on));
        v.require("result", &req.result);
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, "RecordInspection", e).await));
        }
        let entry_id = self
            .supervise(&ctx, "RecordInspection", &req.request_id, &req.uscc, "inspection",
                format!("inspection on {}: {}", req.inspected_on.trim(), req.result.trim()),
                json!({"inspected_on": req.inspected_on.trim(), "result": req.result.trim(), "draw_id": req.draw_id.trim()}), None)
            .await
            .map_err(status)?;
        Ok(Response::new(RecordInspectionResponse { entry_id }))
    }

    async fn record_finding(
        &self,
        request: Request<RecordFindingRequest>,
    ) -> Result<Response<RecordFindingResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.check("uscc", Uscc::parse(&req.uscc));
        let category =
            FindingCategory::try_from(req.category).unwrap_or(FindingCategory::Unspecified);
        if category == FindingCategory::Unspecified {
            v.add("category", "is required (Art. 13, 16)");
        }
        v.require("description", &req.description);
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, "RecordFinding", e).await));
        }
        let name = category.as_str_name().to_ascii_lowercase();
        let entry_id = self
            .supervise(
                &ctx,
                "RecordFinding",
                &req.request_id,
                &req.uscc,
                "finding",
                format!("finding of prohibited conduct: {name}"),
                json!({"category": name, "description": req.description.trim()}),
                None,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(RecordFindingResponse { entry_id }))
    }

    async fn set_risk_tier(
        &self,
        request: Request<SetRiskTierRequest>,
    ) -> Result<Response<SetRiskTierResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.check("uscc", Uscc::parse(&req.uscc));
        let tier = RiskTier::try_from(req.tier).unwrap_or(RiskTier::Unspecified);
        if tier == RiskTier::Unspecified {
            v.add("tier", "is required");
        }
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, "SetRiskTier", e).await));
        }
        let uscc = req.uscc.trim().to_ascii_uppercase();
        self.supervise(
            &ctx,
            "SetRiskTier",
            &req.request_id,
            &uscc,
            "risk_tier",
            format!(
                "risk tier set to {}",
                tier.as_str_name().to_ascii_lowercase()
            ),
            json!({"tier": tier as i32, "reason": req.reason.trim()}),
            Some(tier as i64),
        )
        .await
        .map_err(status)?;
        Ok(Response::new(SetRiskTierResponse {}))
    }

    async fn issue_rectification_order(
        &self,
        request: Request<IssueRectificationOrderRequest>,
    ) -> Result<Response<IssueRectificationOrderResponse>, Status> {
        const METHOD: &str = "IssueRectificationOrder";
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        let uscc = v.check("uscc", Uscc::parse(&req.uscc));
        v.require("findings", &req.findings);
        v.require("required_actions", &req.required_actions);
        if !(1..=120).contains(&req.working_days) {
            v.add("working_days", "must be between 1 and 120");
        }
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let uscc = uscc.ok_or_else(|| status(Error::internal("validation lost uscc")))?;
        let today =
            cst_date(self.store.now()).map_err(|e| status(Error::internal(e.to_string())))?;
        if let Some(Err(e)) = self.measures.map(|m| m.check(today)) {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let deadline = self
            .calendar
            .deadline(today, req.working_days as u32, Layers::Xinjiang)
            .map_err(|e| status(Error::internal(e.to_string())))?;
        let (ctx, req, uscc, deadline) = (&ctx, &req, &uscc, &deadline);
        let response = self
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let agency = self.supervised(&mut tx, ctx, uscc.as_str()).await?;
                let order_id = uuid::Uuid::now_v7().to_string();
                let due = format_date(deadline.due);
                crate::supervision::insert_order(&mut tx, &agency.0, &order_id, uscc.as_str(), self.store.now(), deadline).await?;
                self.credit_entry(&mut tx, ctx, &agency.0, uscc.as_str(), "rectification",
                    format!("rectification ordered by {due}: {}", req.required_actions.trim()),
                    json!({"order_id": order_id, "findings": req.findings.trim(), "required_actions": req.required_actions.trim(), "due_date": due})).await?;
                let value = IssueRectificationOrderResponse {
                    order_id,
                    deadline: Some(Deadline {
                        from_date: format_date(deadline.from),
                        working_days: req.working_days,
                        due_date: due,
                        calendar_version: deadline.calendar_version.clone(),
                        provisional: deadline.provisional,
                    }),
                };
                Ok((tx, Written { value, tenant: agency.0 }))
            })
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn record_rectification_outcome(
        &self,
        request: Request<RecordRectificationOutcomeRequest>,
    ) -> Result<Response<RecordRectificationOutcomeResponse>, Status> {
        const METHOD: &str = "RecordRectificationOutcome";
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("order_id", &req.order_id);
        let outcome = RectificationOutcome::try_from(req.outcome)
            .unwrap_or(RectificationOutcome::Unspecified);
        if outcome == RectificationOutcome::Unspecified {
            v.add("outcome", "is required");
        }
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let (ctx, req) = (&ctx, &req);
        let response = self
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let (_, uscc, state) = crate::supervision::get_order(&mut tx, req.order_id.trim())
                    .await?
                    .ok_or_else(|| {
                        Error::not_found(format!("no rectification order {}", req.order_id.trim()))
                    })?;
                let agency = self.supervised(&mut tx, ctx, &uscc).await?;
                let mut value = RecordRectificationOutcomeResponse::default();
                let order_id = req.order_id.trim();
                if outcome == RectificationOutcome::Refused {
                    // Art. 15(2): the holding authority interviews, orders rectification and
                    // records the refusal; only then does the refusal revoke.
                    if ctx.principal.tenant.to_string() != agency.0 {
                        return Err(Error::permission_denied(format!(
                            "only the holding authority ({}) records a refusal to rectify (Art. 15(2))",
                            agency.0
                        )));
                    }
                    if !store::has_entry(&mut tx, &uscc, &agency.0, "interview").await? {
                        return Err(Error::failed_precondition(format!(
                            "no interview (约谈) of {uscc} is recorded; Art. 15(2) requires one before a refusal to rectify revokes"
                        )));
                    }
                    if !crate::supervision::order_transition(&mut tx, order_id, OrderEvent::Refused).await? {
                        return Err(Error::failed_precondition(format!("the order is {state} already")));
                    }
                    self.credit_entry(
                        &mut tx,
                        ctx,
                        &agency.0,
                        &uscc,
                        "rectification",
                        "refused to rectify (拒不整改)".into(),
                        json!({"order_id": order_id, "note": req.note.trim()}),
                    )
                    .await?;
                    value.ban_ends_on = self
                        .revoke(
                            &mut tx,
                            ctx,
                            &uscc,
                            &agency,
                            "refused_rectification",
                            "the agency refused to rectify (Art. 15(2))",
                        )
                        .await?;
                    value.revoked_filing_id = agency.1.clone();
                } else {
                    if !crate::supervision::order_transition(&mut tx, order_id, OrderEvent::Rectified).await? {
                        return Err(Error::failed_precondition(format!("the order is {state} already")));
                    }
                    self.credit_entry(
                        &mut tx,
                        ctx,
                        &agency.0,
                        &uscc,
                        "rectification",
                        "rectified".into(),
                        json!({"order_id": order_id, "note": req.note.trim()}),
                    )
                    .await?;
                }
                Ok((
                    tx,
                    Written {
                        value,
                        tenant: agency.0,
                    },
                ))
            })
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn revoke_filing(
        &self,
        request: Request<RevokeFilingRequest>,
    ) -> Result<Response<RevokeFilingResponse>, Status> {
        const METHOD: &str = "RevokeFiling";
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("filing_id", &req.filing_id);
        let ground =
            RevocationGround::try_from(req.ground).unwrap_or(RevocationGround::Unspecified);
        if ground == RevocationGround::Unspecified {
            v.add("ground", "is required (Art. 11, 15)");
        }
        v.require("reason", &req.reason);
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let (ctx, req) = (&ctx, &req);
        let response = self
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let uscc = tasks::agency_of_filing(&mut tx, req.filing_id.trim()).await?
                    .ok_or_else(|| Error::not_found(format!("no filing {}", req.filing_id.trim())))?;
                let agency = self.supervised(&mut tx, ctx, &uscc).await?;
                let name = ground.as_str_name().to_ascii_lowercase().replace("revocation_ground_", "");
                match ground {
                    RevocationGround::NoAnnualReport => return Err(Error::failed_precondition(
                        "Art. 11 revokes by itself at the 1 July cut-off, from the filing service's record of annual reports; it is not revoked by hand",
                    )),
                    RevocationGround::SevereDishonesty if tasks::listed(&mut tx, &uscc).await?.is_none() => {
                        return Err(Error::failed_precondition(format!(
                            "{uscc} itself is not on the severe-dishonesty list; Art. 15(1) revokes only a listed agency (a listed principal is a matter for supervision)"
                        )));
                    }
                    RevocationGround::RefusedRectification if !crate::supervision::refused_order(&mut tx, &uscc, &agency.0).await? => {
                        return Err(Error::failed_precondition(format!(
                            "no refusal of a rectification order by {uscc} is recorded by its holding authority; Art. 15(2) revokes only after an interview, an order and the recorded refusal"
                        )));
                    }
                    _ => {}
                }
                let ban_ends_on = self.revoke(&mut tx, ctx, &uscc, &agency, &name, req.reason.trim()).await?;
                if ground == RevocationGround::UnlicensedCreditReporting {
                    self.credit_entry(&mut tx, ctx, &agency.0, &uscc, "referral",
                        "referred to the competent authorities for unlicensed credit reporting or rating (Art. 15(3))".into(),
                        json!({"filing_id": agency.1, "reason": req.reason.trim()})).await?;
                }
                Ok((tx, Written { value: RevokeFilingResponse { ban_ends_on }, tenant: agency.0 }))
            })
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn record_disposal(
        &self,
        request: Request<RecordDisposalRequest>,
    ) -> Result<Response<RecordDisposalResponse>, Status> {
        const METHOD: &str = "RecordDisposal";
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("filing_id", &req.filing_id);
        v.check("disposed_on", parse_iso_date(&req.disposed_on));
        v.require("method", &req.method);
        v.require("supervised_by", &req.supervised_by);
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let (ctx, req) = (&ctx, &req);
        self.store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let uscc = tasks::agency_of_filing(&mut tx, req.filing_id.trim()).await?
                    .ok_or_else(|| Error::not_found(format!("no filing {}", req.filing_id.trim())))?;
                let agency = self.supervised(&mut tx, ctx, &uscc).await?;
                let disposal = ev::Disposal {
                    disposed_on: req.disposed_on.trim().to_owned(),
                    method: req.method.trim().to_owned(),
                    supervised_by: req.supervised_by.trim().to_owned(),
                };
                if !tasks::deregistration_approved(&mut tx, &agency.1).await? {
                    return Err(Error::failed_precondition(format!(
                        "the filing is {}; a disposal completes only a deregistration the agency requested and the holding authority approved (Art. 18)",
                        agency.2
                    )));
                }
                if !tasks::agency_transition(&mut tx, &uscc, &agency.1, FilingEvent::CompleteDeregistration).await? {
                    return Err(Error::failed_precondition(format!("the filing is {}; nothing to complete", agency.2)));
                }
                self.credit_entry(&mut tx, ctx, &agency.0, &uscc, "disposal", format!("credit-information database disposed of on {} (Art. 18)", req.disposed_on.trim()), json!(disposal)).await?;
                self.publish(&mut tx, ctx, &agency.0, &agency.1, &ev::DeregistrationCompleted { filing_id: agency.1.clone(), uscc: uscc.clone(), disposal: Some(disposal) }).await?;
                Ok((tx, Written { value: RecordDisposalResponse {}, tenant: agency.0 }))
            })
            .await
            .map_err(status)?;
        Ok(Response::new(RecordDisposalResponse {}))
    }

    async fn draw_spot_check(
        &self,
        request: Request<DrawSpotCheckRequest>,
    ) -> Result<Response<DrawSpotCheckResponse>, Status> {
        const METHOD: &str = "DrawSpotCheck";
        let ctx = self.authn.context(&request)?;
        let me = Self::regulator(&ctx).map_err(status)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        let tenant = if req.tenant.is_empty() {
            Some(me)
        } else {
            v.check("tenant", Tenant::parse(&req.tenant))
        };
        v.max_chars("seed", &req.seed, 128);
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let tenant = tenant.ok_or_else(|| status(Error::internal("validation lost tenant")))?;
        if !me.can_see(tenant) {
            return Err(status(
                self.store
                    .reject(
                        &ctx,
                        METHOD,
                        Error::permission_denied("a prefecture draws only among its own agencies"),
                    )
                    .await,
            ));
        }
        let seed = if req.seed.trim().is_empty() {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            req.seed.trim().to_owned()
        };
        let (ctx, seed) = (&ctx, &seed);
        let response = self
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let scope = if tenant.is_region() {
                    String::new()
                } else {
                    tenant.to_string()
                };
                let population = crate::supervision::population(&mut tx, &scope).await?;
                let digest = crate::draw::population_digest(&population);
                let sample = crate::draw::draw(seed, &population, self.spot_check_percent);
                let draw_id = uuid::Uuid::now_v7().to_string();
                let now = self.store.now();
                crate::supervision::insert_draw(
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
                self.publish(
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
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn list_review_tasks(
        &self,
        request: Request<ListReviewTasksRequest>,
    ) -> Result<Response<ListReviewTasksResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        let me = Self::regulator(&ctx).map_err(status)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        let wanted = if req.tenant.is_empty() {
            None
        } else {
            v.check("tenant", Tenant::parse(&req.tenant))
        };
        if !(0..=500).contains(&req.page_size) {
            v.add("page_size", "must be between 0 and 500");
        }
        v.finish().map_err(status)?;
        let tenant = match wanted {
            Some(t) if !me.can_see(t) => {
                return Err(status(Error::permission_denied(
                    "a prefecture lists only its own tasks",
                )));
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
        let statuses = names(&req.statuses, |s| match TaskStatus::try_from(s).ok()? {
            TaskStatus::Open => Some("open"),
            TaskStatus::Approved => Some("approved"),
            TaskStatus::Refused => Some("refused"),
            TaskStatus::Forwarded => Some("forwarded"),
            TaskStatus::Closed => Some("closed"),
            TaskStatus::Withdrawn => Some("withdrawn"),
            TaskStatus::Unspecified => None,
        });
        let kinds = names(&req.kinds, |k| match TaskKind::try_from(k).ok()? {
            TaskKind::Filing => Some("filing"),
            TaskKind::Change => Some("change"),
            TaskKind::Deregistration => Some("deregistration"),
            TaskKind::Supervision => Some("supervision"),
            TaskKind::Unspecified => None,
        });
        let today = self.today().map_err(status)?;
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
        let mut tx = self
            .store
            .db
            .read_scoped(scope.as_deref())
            .await
            .map_err(status_from)?;
        let rows = tasks::list(
            &mut tx,
            &tenant,
            &statuses,
            &kinds,
            &overdue,
            req.page_token.trim(),
            limit + 1,
        )
        .await
        .map_err(status_from)?;
        let more = rows.len() as i64 > limit;
        let tasks: Vec<ReviewTask> = rows
            .into_iter()
            .take(limit as usize)
            .map(|t| self.task_proto(t, &today))
            .collect();
        let next_page_token = if more {
            tasks.last().map(|t| t.task_id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListReviewTasksResponse {
            tasks,
            next_page_token,
        }))
    }

    async fn get_review_task(
        &self,
        request: Request<GetReviewTaskRequest>,
    ) -> Result<Response<GetReviewTaskResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let mut conn = self
            .store
            .db
            .pool()
            .acquire()
            .await
            .map_err(|e| status_from(creditmesh_storage::StorageError::from(e)))?;
        let task = self
            .visible_task(&mut conn, &ctx, req.task_id.trim())
            .await
            .map_err(status)?;
        let today = self.today().map_err(status)?;
        Ok(Response::new(GetReviewTaskResponse {
            task: Some(self.task_proto(task, &today)),
        }))
    }

    async fn decide_review_task(
        &self,
        request: Request<DecideReviewTaskRequest>,
    ) -> Result<Response<DecideReviewTaskResponse>, Status> {
        const METHOD: &str = "DecideReviewTask";
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("task_id", &req.task_id);
        let decision = crate::decision::parse(&mut v, &req);
        v.max_chars("reason", &req.reason, 4000);
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let (ctx, req, decision) = (&ctx, &req, &decision);
        let today = self.today().map_err(status)?;
        let response = self
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let me = Self::regulator(ctx)?;
                let task = self.visible_task(&mut tx, ctx, req.task_id.trim()).await?;
                if task.status != "open" {
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
                let kind = crate::decision::Kind::parse(&task.kind)
                    .ok_or_else(|| Error::internal(format!("task kind {}", task.kind)))?;
                let grounds = decision.grounds_for(kind, &req.reason)?;
                let approve = req.approve && kind != crate::decision::Kind::Supervision;
                if approve
                    && matches!(
                        kind,
                        crate::decision::Kind::Filing | crate::decision::Kind::Change
                    )
                {
                    // Art. 9(2) is mandatory ("不予登记建档"): checked against the list as it
                    // stands now, not only as it stood when the application arrived.
                    let principals: Vec<String> =
                        serde_json::from_str(&task.principals).unwrap_or_default();
                    let hits = events::dishonesty_hits(&mut tx, &task.uscc, &principals).await?;
                    if !hits.is_empty() {
                        return Err(Error::failed_precondition(format!(
                            "approval is barred by Art. 9(2): {}; refuse the {} instead",
                            hits.join("; "),
                            task.kind
                        )));
                    }
                }
                let now = self.store.now();
                // A prefecture's approval of a filing or change is reported to the region,
                // which sees the file arrive (Art. 10, 12).
                let forwards = approve
                    && !me.is_region()
                    && matches!(
                        kind,
                        crate::decision::Kind::Filing | crate::decision::Kind::Change
                    );
                let event = match (kind, approve, forwards) {
                    (crate::decision::Kind::Supervision, _, _) => TaskEvent::Close,
                    (_, true, true) => TaskEvent::ApproveAndForward,
                    (_, true, false) => TaskEvent::Approve,
                    (_, false, _) => TaskEvent::Refuse,
                };
                let record =
                    json!({"approve": approve, "grounds": grounds, "reason": req.reason.trim()});
                if !tasks::decide(
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
                    crate::decision::Kind::Filing => {
                        let ev = if approve {
                            FilingEvent::Approve
                        } else {
                            FilingEvent::Refuse
                        };
                        agency_moved(
                            tasks::agency_transition(&mut tx, &task.uscc, &task.filing_id, ev)
                                .await?,
                            "under review",
                        )?;
                        self.publish(
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
                    crate::decision::Kind::Change => {
                        let state = tasks::agency(&mut tx, &task.uscc)
                            .await?
                            .map(|a| a.2)
                            .unwrap_or_default();
                        agency_moved(Filing::parse(&state) == Some(Filing::Active), "active")?;
                        if approve {
                            tasks::set_agency_principals(&mut tx, &task.uscc, &task.principals)
                                .await?;
                        }
                        self.publish(
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
                    crate::decision::Kind::Deregistration => {
                        if approve {
                            let state = tasks::agency(&mut tx, &task.uscc)
                                .await?
                                .map(|a| a.2)
                                .unwrap_or_default();
                            agency_moved(
                                Filing::parse(&state) == Some(Filing::Deregistering),
                                "deregistering",
                            )?;
                        } else {
                            agency_moved(
                                tasks::agency_transition(
                                    &mut tx,
                                    &task.uscc,
                                    &task.filing_id,
                                    FilingEvent::RefuseDeregistration,
                                )
                                .await?,
                                "deregistering",
                            )?;
                        }
                        self.publish(
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
                    crate::decision::Kind::Supervision => {}
                }
                if forwards {
                    let mut copy = task.clone();
                    copy.tenant = creditmesh_domain::tenant::REGION.to_string();
                    copy.task_id = uuid::Uuid::now_v7().to_string();
                    copy.status = "forwarded".into();
                    copy.forwarded_from = task.task_id.clone();
                    copy.created_at = now;
                    tasks::insert(&mut tx, &copy).await?;
                }
                let summary = match kind {
                    crate::decision::Kind::Supervision => {
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
                self.credit_entry(
                    &mut tx,
                    ctx,
                    &task.tenant,
                    &task.uscc,
                    "decision",
                    summary.trim().to_owned(),
                    record.clone(),
                )
                .await?;
                let decided = tasks::get(&mut tx, &task.task_id)
                    .await?
                    .ok_or_else(|| Error::internal("task vanished"))?;
                let value = DecideReviewTaskResponse {
                    task: Some(self.task_proto(decided, &today)),
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
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn upsert_dishonesty_entry(
        &self,
        request: Request<UpsertDishonestyEntryRequest>,
    ) -> Result<Response<UpsertDishonestyEntryResponse>, Status> {
        const METHOD: &str = "UpsertDishonestyEntry";
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        let entry = listing(&mut v, "entry", &req.entry);
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let entry = entry.ok_or_else(|| status(Error::internal("validation lost the entry")))?;
        let (ctx, entry) = (&ctx, &entry);
        let response = self
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                tasks::put_listing(&mut tx, entry, self.store.now()).await?;
                let (revoked, opened) = self.apply_listing(&mut tx, ctx, entry).await?;
                let stored = tasks::listed(&mut tx, &entry.identifier)
                    .await?
                    .ok_or_else(|| Error::internal("listing vanished"))?;
                let value = UpsertDishonestyEntryResponse {
                    entry: Some(listing_proto(stored)),
                    revoked_filing_ids: revoked,
                    supervision_task_ids: opened,
                };
                Ok((
                    tx,
                    Written {
                        value,
                        tenant: String::new(),
                    },
                ))
            })
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn import_dishonesty_list(
        &self,
        request: Request<Streaming<ImportDishonestyListRequest>>,
    ) -> Result<Response<ImportDishonestyListResponse>, Status> {
        const METHOD: &str = "ImportDishonestyList";
        let ctx = self.authn.context(&request)?;
        let mut stream = request.into_inner();
        let mut answer = ImportDishonestyListResponse::default();
        let mut offset = 0usize;
        // Each message is a batch, validated whole and committed in one transaction.
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let mut v = Violations::default();
            let entries: Vec<tasks::Listing> = batch
                .entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    listing(
                        &mut v,
                        &format!("entries[{}]", offset + i),
                        &Some(e.clone()),
                    )
                })
                .collect();
            offset += batch.entries.len();
            if let Err(e) = v.finish() {
                return Err(status(self.store.reject(&ctx, METHOD, e).await));
            }
            let (ctx, entries) = (&ctx, &entries);
            let (imported, updated, revoked, opened) = self
                .store
                .write(ctx, METHOD, |mut tx| async move {
                    let (mut imported, mut updated) = (0, 0);
                    let (mut revoked, mut opened) = (Vec::new(), Vec::new());
                    for entry in entries {
                        if tasks::put_listing(&mut tx, entry, self.store.now()).await? {
                            imported += 1;
                        } else {
                            updated += 1;
                        }
                        let (r, o) = self.apply_listing(&mut tx, ctx, entry).await?;
                        revoked.extend(r);
                        opened.extend(o);
                    }
                    Ok((
                        tx,
                        Written {
                            value: (imported, updated, revoked, opened),
                            tenant: String::new(),
                        },
                    ))
                })
                .await
                .map_err(status)?;
            answer.imported += imported;
            answer.updated += updated;
            answer.revoked_filing_ids.extend(revoked);
            answer.supervision_task_ids.extend(opened);
        }
        Ok(Response::new(answer))
    }

    async fn remove_dishonesty_entry(
        &self,
        request: Request<RemoveDishonestyEntryRequest>,
    ) -> Result<Response<RemoveDishonestyEntryResponse>, Status> {
        const METHOD: &str = "RemoveDishonestyEntry";
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("identifier", &req.identifier);
        v.require("reason", &req.reason);
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let identifier = req.identifier.trim().to_ascii_uppercase();
        let identifier = &identifier;
        self.store
            .write_idempotent(&ctx, METHOD, &req.request_id, |mut tx| async move {
                if !tasks::remove_listing(&mut tx, identifier).await? {
                    return Err(Error::not_found(format!("{identifier} is not on the list")));
                }
                Ok((
                    tx,
                    Written {
                        value: RemoveDishonestyEntryResponse {},
                        tenant: String::new(),
                    },
                ))
            })
            .await
            .map_err(status)?;
        Ok(Response::new(RemoveDishonestyEntryResponse {}))
    }

    async fn list_dishonesty_entries(
        &self,
        request: Request<ListDishonestyEntriesRequest>,
    ) -> Result<Response<ListDishonestyEntriesResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        Self::regulator(&ctx).map_err(status)?;
        let req = request.into_inner();
        let limit = if req.page_size <= 0 {
            100
        } else {
            i64::from(req.page_size.min(1000))
        };
        let mut conn = self
            .store
            .db
            .pool()
            .acquire()
            .await
            .map_err(|e| status_from(creditmesh_storage::StorageError::from(e)))?;
        let rows = tasks::listings(
            &mut conn,
            &req.identifier.trim().to_ascii_uppercase(),
            req.page_token.trim(),
            limit + 1,
        )
        .await
        .map_err(status_from)?;
        let more = rows.len() as i64 > limit;
        let entries: Vec<DishonestyEntry> = rows
            .into_iter()
            .take(limit as usize)
            .map(listing_proto)
            .collect();
        let next_page_token = if more {
            entries
                .last()
                .map(|e| e.identifier.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListDishonestyEntriesResponse {
            entries,
            next_page_token,
        }))
    }

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
        let tier = crate::supervision::tier(&mut tx, uscc.as_str())
            .await
            .map_err(status_from)?
            .unwrap_or_default() as i32;
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
            risk_tier: tier,
        }))
    }
}
