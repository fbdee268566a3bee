//! The gRPC edge of the review service.

use creditmesh_domain::calendar::{cst_date, format_date, parse_iso_date};
use creditmesh_domain::resident_id::ResidentId;
use creditmesh_domain::{Error, PrincipalKind, Tenant, Uscc, Violations};
use creditmesh_proto::common::v1::Deadline;
use creditmesh_proto::review::v1::review_service_server::ReviewService;
use creditmesh_proto::review::v1::*;
use creditmesh_rpc::{Authn, CallContext, ServiceStore, Written, status, status_from, timestamp};
use creditmesh_storage::sqlx::AnyConnection;
use creditmesh_storage::{NewEvent, Tx};
use futures::StreamExt;
use serde_json::json;
use tonic::{Request, Response, Status, Streaming};

use crate::events::{self, REVIEW_WORKING_DAYS};
use crate::store::{self, Entry};
use crate::tasks::{self, TaskRow};

pub struct Api {
    store: ServiceStore,
    authn: Authn,
}

impl Api {
    pub fn new(store: ServiceStore, authn: Authn) -> Self {
        Self { store, authn }
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
        let status = match t.status.as_str() {
            "open" => TaskStatus::Open,
            "approved" => TaskStatus::Approved,
            "refused" => TaskStatus::Refused,
            "forwarded" => TaskStatus::Forwarded,
            _ => TaskStatus::Unspecified,
        };
        ReviewTask {
            overdue: t.status == "open" && t.deadline_due.as_str() < today,
            task_id: t.task_id,
            tenant: t.tenant,
            kind: match t.kind.as_str() {
                "filing" => TaskKind::Filing,
                "change" => TaskKind::Change,
                "deregistration" => TaskKind::Deregistration,
                _ => TaskKind::Unspecified,
            } as i32,
            status: status as i32,
            filing_id: t.filing_id,
            uscc: t.uscc,
            agency_name: t.agency_name,
            created_at: Some(timestamp(t.created_at)),
            deadline: Some(Deadline {
                from_date: t.deadline_from,
                working_days: REVIEW_WORKING_DAYS as i32,
                due_date: t.deadline_due,
                calendar_version: t.calendar_version,
                provisional: t.deadline_provisional,
            }),
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

    async fn publish(
        &self,
        tx: &mut Tx,
        ctx: &CallContext,
        event_type: &str,
        tenant: &str,
        subject: &str,
        payload: serde_json::Value,
    ) -> Result<(), Error> {
        self.store
            .publish(
                tx,
                events::CONSUMERS,
                NewEvent {
                    event_type,
                    tenant,
                    principal: &ctx.principal_id,
                    subject,
                    payload: payload.to_string().into_bytes(),
                },
            )
            .await?;
        Ok(())
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

    /// Applies a severe-dishonesty listing: every live filing of the listed agency, or of an
    /// agency whose principal is listed, is revoked (Art. 15(1)). Returns the revoked ids.
    async fn revoke_listed(
        &self,
        tx: &mut Tx,
        ctx: &CallContext,
        entry: &tasks::Listing,
    ) -> Result<Vec<String>, Error> {
        let mut revoked = Vec::new();
        for (uscc, tenant, filing_id) in tasks::live_agencies_naming(tx, &entry.identifier).await? {
            tasks::set_agency_status(tx, &uscc, "revoked").await?;
            let whom = if entry.identifier == uscc {
                "the agency"
            } else {
                "a principal of the agency"
            };
            self.credit_entry(
                tx,
                ctx,
                &tenant,
                &uscc,
                "revocation",
                format!("filing revoked: {whom} is on the severe-dishonesty list (Art. 15(1))"),
                json!({"filing_id": filing_id, "ground": "severe_dishonesty", "source": entry.source, "listed_on": entry.listed_on}),
            )
            .await?;
            self.publish(
                tx,
                ctx,
                events::FILING_REVOKED,
                &tenant,
                &filing_id,
                json!({"filing_id": filing_id, "uscc": uscc, "ground": "severe_dishonesty"}),
            )
            .await?;
            revoked.push(filing_id);
        }
        Ok(revoked)
    }
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
            TaskStatus::Unspecified => None,
        });
        let kinds = names(&req.kinds, |k| match TaskKind::try_from(k).ok()? {
            TaskKind::Filing => Some("filing"),
            TaskKind::Change => Some("change"),
            TaskKind::Deregistration => Some("deregistration"),
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
        let grounds: Vec<RefusalGround> = req
            .grounds
            .iter()
            .map(|g| RefusalGround::try_from(*g).unwrap_or(RefusalGround::Unspecified))
            .collect();
        if req.approve {
            if !grounds.is_empty() {
                v.add("grounds", "an approval names no refusal grounds");
            }
        } else {
            if grounds.is_empty() {
                v.add("grounds", "a refusal names at least one Art. 9 ground");
            }
            for (i, g) in grounds.iter().enumerate() {
                if *g == RefusalGround::Unspecified {
                    v.add(format!("grounds[{i}]"), "is not an Art. 9 ground");
                }
            }
            v.require("reason", &req.reason);
        }
        v.max_chars("reason", &req.reason, 4000);
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let (ctx, req, grounds) = (&ctx, &req, &grounds);
        let today = self.today().map_err(status)?;
        let response = self
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let me = Self::regulator(ctx)?;
                let task = self.visible_task(&mut tx, ctx, req.task_id.trim()).await?;
                if task.status != "open" {
                    return Err(Error::failed_precondition(format!("the task is {} already", task.status)));
                }
                if task.tenant != me.to_string() {
                    return Err(Error::permission_denied("only the authority the task is routed to decides it (Art. 10)"));
                }
                let now = self.store.now();
                let ground_names: Vec<String> = grounds.iter().map(|g| g.as_str_name().to_ascii_lowercase()).collect();
                let decision = json!({"approve": req.approve, "grounds": ground_names, "reason": req.reason.trim()});
                // A prefecture's approval is reported to the region, which sees the file arrive.
                let forwards = req.approve && !me.is_region() && task.kind == "filing";
                let outcome = match (req.approve, forwards) {
                    (true, true) => "forwarded",
                    (true, false) => "approved",
                    (false, _) => "refused",
                };
                tasks::decide(&mut tx, &task.tenant, &task.task_id, outcome, now, &ctx.principal_id, &decision.to_string()).await?;
                if forwards {
                    let mut copy = task.clone();
                    copy.tenant = creditmesh_domain::tenant::REGION.to_string();
                    copy.task_id = uuid::Uuid::now_v7().to_string();
                    copy.status = "forwarded".into();
                    copy.forwarded_from = task.task_id.clone();
                    copy.created_at = now;
                    tasks::insert(&mut tx, &copy).await?;
                }
                match task.kind.as_str() {
                    "filing" => {
                        let agency_status = if req.approve { "active" } else { "refused" };
                        tasks::set_agency_status(&mut tx, &task.uscc, agency_status).await?;
                        self.publish(&mut tx, ctx, events::FILING_DECIDED, &task.tenant, &task.filing_id, json!({
                            "filing_id": task.filing_id,
                            "uscc": task.uscc,
                            "outcome": if req.approve { "approved" } else { "refused" },
                            "grounds": ground_names,
                            "reason": req.reason.trim(),
                        }))
                        .await?;
                    }
                    "change" => {
                        self.publish(&mut tx, ctx, events::CHANGE_DECIDED, &task.tenant, &task.subject_id, json!({
                            "change_id": task.subject_id,
                            "filing_id": task.filing_id,
                            "approved": req.approve,
                            "reason": req.reason.trim(),
                        }))
                        .await?;
                    }
                    _ => {}
                }
                let summary = format!(
                    "{} {} {}{}",
                    task.kind,
                    if req.approve { "approved" } else { "refused" },
                    if forwards { "and forwarded to the region " } else { "" },
                    if ground_names.is_empty() { String::new() } else { format!("on {}", ground_names.join(", ")) }
                );
                self.credit_entry(&mut tx, ctx, &task.tenant, &task.uscc, "decision", summary.trim().to_owned(), decision.clone()).await?;
                let decided = tasks::get(&mut tx, &task.task_id).await?.ok_or_else(|| Error::internal("task vanished"))?;
                let value = DecideReviewTaskResponse { task: Some(self.task_proto(decided, &today)) };
                Ok((tx, Written { value, tenant: task.tenant }))
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
                let revoked = self.revoke_listed(&mut tx, ctx, entry).await?;
                let stored = tasks::listed(&mut tx, &entry.identifier)
                    .await?
                    .ok_or_else(|| Error::internal("listing vanished"))?;
                let value = UpsertDishonestyEntryResponse {
                    entry: Some(listing_proto(stored)),
                    revoked_filing_ids: revoked,
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
            let (imported, updated, revoked) = self
                .store
                .write(ctx, METHOD, |mut tx| async move {
                    let (mut imported, mut updated, mut revoked) = (0, 0, Vec::new());
                    for entry in entries {
                        if tasks::put_listing(&mut tx, entry, self.store.now()).await? {
                            imported += 1;
                        } else {
                            updated += 1;
                        }
                        revoked.extend(self.revoke_listed(&mut tx, ctx, entry).await?);
                    }
                    Ok((
                        tx,
                        Written {
                            value: (imported, updated, revoked),
                            tenant: String::new(),
                        },
                    ))
                })
                .await
                .map_err(status)?;
            answer.imported += imported;
            answer.updated += updated;
            answer.revoked_filing_ids.extend(revoked);
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
