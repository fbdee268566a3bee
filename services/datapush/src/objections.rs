//! Objections (Art. 22): filed by the subject (with a desk's access code), by a regulator's
//! desk on the subject's behalf, or by the agency that received it; the record is marked at
//! once. The agency decides within 10 working days of receiving the materials — correct (a
//! new version), delete, or keep with reasons — and the subject is told. A subject who
//! disagrees with "keep" attaches a statement that every reader sees with the record.

use creditmesh_domain::calendar::{Layers, cst_date, format_date};
use creditmesh_domain::lifecycle::{
    Machine, Objection as ObjectionState, PushedRecord, PushedRecordEvent,
};
use creditmesh_domain::{Error, PrincipalKind, Tenant, Violations};
use creditmesh_proto::datapush::v1::*;
use creditmesh_proto::events::v1::SubjectTold;
use creditmesh_rpc::{CallContext, ServiceStore, Written, edge, timestamp};
use creditmesh_storage::{Tx, transition};
use prost::Message;
use serde_json::json;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::convert::{self, objection_proto};
use crate::objection_store::{self, Filter, ObjectionRow};
use crate::push::fingerprint;
use crate::state::{self, Api};
use crate::store::{self, RecordRow};
use crate::{agency_store, seal, subjects};

use creditmesh_domain::measures::OBJECTION_WORKING_DAYS;
const STATEMENT_CHARS: usize = 4000;
const REASONS_CHARS: usize = 4000;

/// [`objection_proto`] with the materials filed with it.
pub async fn to_proto_whole(
    api: &Api,
    conn: &mut creditmesh_storage::sqlx::AnyConnection,
    o: &ObjectionRow,
    today: &str,
    with_statement: bool,
) -> Result<Objection, Error> {
    let mut out = [objection_proto(api, o, today, with_statement)?];
    crate::materials::fill(conn, &mut out).await?;
    let [out] = out;
    Ok(out)
}

/// Public callers share one principal: their idempotency key also covers the request, so that
/// nobody replays another subject's answer by reusing an id.
fn idempotency_key<M: Message>(ctx: &CallContext, request_id: &str, req: &M) -> String {
    if ctx.principal.kind == PrincipalKind::Public {
        hex::encode(Sha256::digest(
            [request_id.as_bytes(), b"\0", &req.encode_to_vec()].concat(),
        ))
    } else {
        request_id.to_owned()
    }
}

/// Queues what the subject is told, when they left a contact.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn tell(
    store: &ServiceStore,
    keys: &crate::seal::Keys,
    tx: &mut Tx,
    ctx: &CallContext,
    o: &ObjectionRow,
    contact: &str,
    subject: &str,
    body: String,
) -> Result<(), Error> {
    if contact.is_empty() {
        return Ok(());
    }
    store
        .publish_event(
            tx,
            ctx,
            &o.tenant,
            &o.objection_id,
            &SubjectTold {
                objection_id: o.objection_id.clone(),
                sealed_contact: keys
                    .seal_contact(&o.objection_id, contact)
                    .map_err(|e| Error::internal(format!("sealing a contact: {e}")))?,
                subject: subject.to_owned(),
                body,
                ..Default::default()
            },
        )
        .await?;
    Ok(())
}

pub(crate) async fn file_objection(
    api: &Api,
    request: Request<FileObjectionRequest>,
) -> Result<Response<FileObjectionResponse>, Status> {
    let (ctx, req) = edge::caller(
        &api.authn,
        request,
        &[
            PrincipalKind::Public,
            PrincipalKind::Agency,
            PrincipalKind::Regulator,
        ],
    )?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, "FileObjection", async {
        let mut v = Violations::default();
        v.require("record_id", &req.record_id);
        let subject = subjects::parse(
            &api.keys,
            SubjectKind::Unspecified as i32,
            &req.subject_identifier,
            "subject_identifier",
            &mut v,
        );
        let ground = ObjectionGround::try_from(req.ground)
            .ok()
            .and_then(convert::ground_name);
        if ground.is_none() {
            v.add(
                "ground",
                "must be error, omission, improper_evaluation, trade_secret or privacy",
            );
        }
        v.require("statement", &req.statement);
        v.max_chars("statement", &req.statement, STATEMENT_CHARS);
        let contact = req.contact.trim();
        // The decision is sent to it (Art. 22): a number to call does not carry it.
        if !contact.is_empty()
            && !matches!(
                creditmesh_domain::contact::parse(contact),
                Some(
                    creditmesh_domain::contact::Contact::Email(_)
                        | creditmesh_domain::contact::Contact::Mobile(_)
                )
            )
        {
            v.add(
                "contact",
                "must be an e-mail address or a mainland mobile number",
            );
        }
        if ctx.principal.kind == PrincipalKind::Public {
            v.require("access_code", &req.access_code);
        }
        let measure = match RequestedMeasure::try_from(req.requested_measure) {
            Ok(m) => convert::measure_name(m),
            Err(_) => {
                v.add(
                    "requested_measure",
                    "must be correct, delete, other, or left unspecified",
                );
                ""
            }
        };
        let material_ids = crate::materials::check_named(&mut v, &req.material_ids);
        v.finish()?;
        let (subject, ground) = match (subject, ground) {
            (Some(s), Some(g)) => (s, g),
            _ => return Err(Error::internal("objection checked")),
        };
        let key = idempotency_key(ctx, &req.request_id, &req);
        let (req, subject, key, material_ids) = (&req, &subject, &key, &material_ids);
        let store = &api.store;
        store
            .write_idempotent(ctx, "FileObjection", key, |mut tx| async move {
                code_first(api, &mut tx, ctx, &req.access_code, subject).await?;
                let id = req.record_id.trim();
                let now = store.now();
                let row = subjects::record_for(
                    &mut tx,
                    &api.keys,
                    &ctx.principal,
                    &req.access_code,
                    subject,
                    id,
                    now,
                )
                .await?;
                if transition::apply::<PushedRecord>(
                    &mut tx,
                    "datapush_record",
                    &[("record_id", id)],
                    PushedRecordEvent::Object,
                )
                .await?
                .is_none()
                {
                    return Err(not_markable(&mut tx, &row).await);
                }
                let from = cst_date(now).map_err(|e| Error::internal(e.to_string()))?;
                let deadline = api
                    .calendar
                    .deadline(from, OBJECTION_WORKING_DAYS, Layers::Xinjiang)
                    .map_err(|e| Error::internal(format!("calendar: {e}")))?;
                let objection_id = uuid::Uuid::now_v7().to_string();
                // The subject is sealed with it too, so that it can be hashed again under a
                // new index key even after its record is deleted or purged.
                let private = json!({
                    "statement": req.statement.trim(),
                    "contact": contact,
                    "subject_kind": subject.kind,
                    "subject": subject.identifier,
                });
                let sealed = api
                    .keys
                    .seal(
                        &row.tenant,
                        &seal::objection_binding(&objection_id),
                        private.to_string().as_bytes(),
                    )
                    .map_err(|e| Error::internal(format!("sealing: {e}")))?;
                let o = ObjectionRow {
                    objection_id,
                    tenant: row.tenant.clone(),
                    record_id: row.record_id.clone(),
                    agency_uscc: row.agency_uscc.clone(),
                    subject_index: subject.index.current.clone(),
                    index_key: api.keys.index_keys().current.id.clone(),
                    ground: ground.into(),
                    private_envelope: sealed.envelope,
                    key_id: sealed.key_id,
                    filed_by: ctx.principal_id.clone(),
                    filed_at: now,
                    deadline_from: format_date(deadline.from),
                    deadline_due: format_date(deadline.due),
                    deadline_provisional: deadline.provisional,
                    calendar_version: deadline.calendar_version,
                    status: ObjectionState::Open.name().into(),
                    decision_reasons: String::new(),
                    decided_at: None,
                    subject_statement: String::new(),
                    requested_measure: measure.to_owned(),
                };
                objection_store::insert(&mut tx, &o).await?;
                // The materials are received with the objection: the deadline counts from now.
                let code = (ctx.principal.kind == PrincipalKind::Public)
                    .then(|| subjects::code_index(&api.keys, &req.access_code));
                crate::materials::attach(
                    &mut tx,
                    material_ids,
                    &o.record_id,
                    ctx,
                    code.as_ref(),
                    &o.objection_id,
                )
                .await?;
                // An agency whose filing is gone no longer decides: its holder does, and the
                // subject is told so now rather than later.
                let standing = agency_store::standing(&mut tx, &o.agency_uscc).await?;
                let (zh, en) = match decider_of(standing.as_ref()) {
                    Some(holder) => {
                        objection_store::mark_once(
                            &mut tx,
                            objection_store::Once::DeciderTold,
                            &o.objection_id,
                            now,
                        )
                        .await?;
                        (
                            format!("{}社会信用主管部门", holder.authority_name()),
                            format!("the credit authority of {}", holder.english_name()),
                        )
                    }
                    None => (
                        format!("信用服务机构 {}", o.agency_uscc),
                        format!("agency {}", o.agency_uscc),
                    ),
                };
                tell(
                    &api.store,
                    &api.keys,
                    &mut tx,
                    ctx,
                    &o,
                    contact,
                    "信用信息异议已受理 / objection received",
                    format!(
                        "异议 {id} 已受理，记录已作异议标注；{zh}应于 {due} 前作出决定。\n\
                         Objection {id} was received and the record is marked as under objection; \
                         {en} decides by {due} (Art. 22).",
                        id = o.objection_id,
                        due = o.deadline_due,
                    ),
                )
                .await?;
                // The answer is kept for replays: without the statement, which stays sealed.
                let objection = to_proto_whole(api, &mut tx, &o, &format_date(from), false).await?;
                Ok((
                    tx,
                    Written {
                        value: FileObjectionResponse {
                            objection: Some(objection),
                        },
                        tenant: o.tenant,
                    },
                ))
            })
            .await
    })
    .await
}

/// Why a record could not be marked: deleted, or already under an objection.
async fn not_markable(tx: &mut Tx, row: &RecordRow) -> Error {
    let open = objection_store::of_record(tx, &row.record_id)
        .await
        .ok()
        .and_then(|os| os.into_iter().find(|o| o.open()));
    match open {
        Some(o) => Error::failed_precondition(format!(
            "record {} is already under objection {}, to be decided by {}",
            row.record_id, o.objection_id, o.deadline_due
        )),
        None => Error::failed_precondition(format!(
            "record {} was deleted; there is nothing left to object to",
            row.record_id
        )),
    }
}

/// Who decides an objection, as the subject is told.
struct Decider {
    zh: String,
    en: String,
}

/// Who decides objections to what `uscc` pushed: the agency while its filing stands; once it is
/// revoked or deregistered, the authority holding it (Art. 22: the record must not stay under
/// objection with no one to decide it).
pub(crate) fn decider_of(standing: Option<&agency_store::Standing>) -> Option<Tenant> {
    standing
        .filter(|s| s.gone())
        .and_then(|s| Tenant::parse(&s.tenant).ok())
}

/// Who may decide `o` as the caller, or `None` for a caller who does not see it. An agency
/// whose filing is gone, and an authority while the agency's filing stands, are refused.
async fn decider(
    tx: &mut Tx,
    ctx: &CallContext,
    o: &ObjectionRow,
) -> Result<Option<Decider>, Error> {
    let standing = agency_store::standing(tx, &o.agency_uscc).await?;
    let holder = decider_of(standing.as_ref());
    let p = &ctx.principal;
    match (p.kind, holder) {
        (PrincipalKind::Agency, _) if p.subject != o.agency_uscc => Ok(None),
        (PrincipalKind::Agency, Some(holder)) => Err(Error::failed_precondition(format!(
            "the agency's filing is {}: the authority holding it, {}, decides its objections (Art. 22)",
            standing.map(|s| s.status).unwrap_or_default(),
            holder.authority_name()
        ))),
        (PrincipalKind::Agency, None) => Ok(Some(Decider {
            zh: "信用服务机构".into(),
            en: "The agency".into(),
        })),
        (PrincipalKind::Regulator, Some(holder)) if p.tenant.can_see(holder) => Ok(Some(Decider {
            zh: format!("{}社会信用主管部门", holder.authority_name()),
            en: format!("The credit authority of {}", holder.english_name()),
        })),
        (PrincipalKind::Regulator, None)
            if standing
                .as_ref()
                .and_then(|s| Tenant::parse(&s.tenant).ok())
                .is_some_and(|t| p.tenant.can_see(t)) =>
        {
            Err(Error::permission_denied(
                "the agency decides the objections to what it pushed while its filing stands (Art. 22)",
            ))
        }
        _ => Ok(None),
    }
}

pub(crate) async fn resolve_objection(
    api: &Api,
    request: Request<ResolveObjectionRequest>,
) -> Result<Response<ResolveObjectionResponse>, Status> {
    let (ctx, req) = edge::caller(
        &api.authn,
        request,
        &[PrincipalKind::Agency, PrincipalKind::Regulator],
    )?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, "ResolveObjection", async {
        let mut v = Violations::default();
        v.require("objection_id", &req.objection_id);
        let decision = ObjectionDecision::try_from(req.decision).unwrap_or_default();
        let event = match decision {
            ObjectionDecision::Correct => Some(PushedRecordEvent::Correct),
            ObjectionDecision::Delete => Some(PushedRecordEvent::Delete),
            ObjectionDecision::Keep => Some(PushedRecordEvent::Keep),
            ObjectionDecision::Unspecified => None,
        };
        if event.is_none() {
            v.add("decision", "must be correct, delete or keep");
        }
        if decision == ObjectionDecision::Keep {
            // 作出不予更正或者删除决定的，应当说明理由。
            v.require("reasons", &req.reasons);
        }
        v.max_chars("reasons", &req.reasons, REASONS_CHARS);
        if decision == ObjectionDecision::Correct && req.corrected_content.is_empty() {
            v.add("corrected_content", "is required to correct the record");
        }
        if decision != ObjectionDecision::Correct && !req.corrected_content.is_empty() {
            v.add("corrected_content", "is only for a correction");
        }
        v.finish()?;
        let event = event.ok_or_else(|| Error::internal("decision checked"))?;
        let store = &api.store;
        let req = &req;
        store
            .write_idempotent(ctx, "ResolveObjection", &req.request_id, |mut tx| async move {
                let id = req.objection_id.trim();
                let not_found = || Error::not_found(format!("no objection {id} to this agency"));
                let o = objection_store::find(&mut tx, id).await?.ok_or_else(not_found)?;
                let decider = decider(&mut tx, ctx, &o).await?.ok_or_else(not_found)?;
                let row = store::find(&mut tx, &o.record_id)
                    .await?
                    .ok_or_else(|| Error::internal(format!("objection {id} without its record")))?;
                // A correction is checked before anything moves.
                let corrected = if event == PushedRecordEvent::Correct {
                    let category = api.catalog.get(&row.category).ok_or_else(|| {
                        Error::failed_precondition(format!(
                            "category {} is no longer in the catalog; delete or keep instead",
                            row.category
                        ))
                    })?;
                    let content = match category.check(&req.corrected_content) {
                        Ok(canonical) => canonical,
                        Err(problems) => {
                            let mut v = Violations::default();
                            for (field, why) in problems {
                                v.add(field.replacen("content", "corrected_content", 1), why);
                            }
                            return Err(v.into_error());
                        }
                    };
                    let mut record = state::content(api, &row)?;
                    record.content = content;
                    Some(record)
                } else {
                    None
                };
                if transition::apply::<ObjectionState>(
                    &mut tx,
                    "datapush_objection",
                    &[("objection_id", id)],
                    event,
                )
                .await?
                .is_none()
                {
                    return Err(Error::failed_precondition(format!(
                        "objection {id} was already decided ({})",
                        o.status
                    )));
                }
                transition::apply::<PushedRecord>(
                    &mut tx,
                    "datapush_record",
                    &[("record_id", &row.record_id)],
                    event,
                )
                .await?
                .ok_or_else(|| {
                    Error::internal(format!("record {} was not under objection", row.record_id))
                })?;
                let now = store.now();
                let reasons = req.reasons.trim();
                let (told, version) = match (event, corrected) {
                    (PushedRecordEvent::Correct, Some(record)) => {
                        let kind = match SubjectKind::try_from(record.subject_kind) {
                            Ok(SubjectKind::Organisation) => "organisation",
                            _ => "person",
                        };
                        let fp = fingerprint(
                            &api.keys,
                            &row.agency_uscc,
                            kind,
                            &record.subject_identifier,
                            &record,
                        );
                        let sealed = api
                            .keys
                            .seal(
                                &row.tenant,
                                &seal::record_binding(&row.agency_uscc, &row.record_key),
                                &record.encode_to_vec(),
                            )
                            .map_err(|e| Error::internal(format!("sealing: {e}")))?;
                        let version = store::new_version(
                            &mut tx,
                            &row.record_id,
                            &fp.current,
                            &sealed.envelope,
                            &sealed.key_id,
                            now,
                            "corrected",
                        )
                        .await?;
                        store::notify_readers(&mut tx, &row.record_id, version, "corrected", now)
                            .await?;
                        (
                            format!(
                                "记录已更正（第 {version} 版）。\nThe record was corrected \
                                 (version {version})."
                            ),
                            version,
                        )
                    }
                    (PushedRecordEvent::Delete, _) => {
                        let version = store::new_version(
                            &mut tx,
                            &row.record_id,
                            "deleted",
                            "",
                            "",
                            now,
                            "deleted",
                        )
                        .await?;
                        store::erase_history(&mut tx, &row.record_id).await?;
                        store::notify_readers(&mut tx, &row.record_id, version, "deleted", now)
                            .await?;
                        ("记录已删除。\nThe record was deleted.".to_owned(), version)
                    }
                    _ => (
                        format!(
                            "{}决定不予更正或删除，理由：{reasons}\n您可以提交个人声明，\
                             与记录一并展示。\n{} keeps the record, for these reasons: \
                             {reasons}\nYou may attach a statement, shown with the record.",
                            decider.zh, decider.en
                        ),
                        row.version,
                    ),
                };
                objection_store::set_decided(&mut tx, id, reasons, &ctx.principal_id, now).await?;
                let (_, contact) = state::private(&api.keys, &o)?;
                tell(
                    &api.store,
                    &api.keys,
                    &mut tx,
                    ctx,
                    &o,
                    &contact,
                    "信用信息异议处理结果 / objection decided",
                    format!("异议 {id}：{told}\nObjection {id}, record {}.", row.record_id),
                )
                .await?;
                tracing::info!(objection = %id, decision = ?decision, version, "objection decided");
                let decided = objection_store::find(&mut tx, id)
                    .await?
                    .ok_or_else(|| Error::internal("objection decided"))?;
                let today = state::day_of(now)?;
                let objection = to_proto_whole(api, &mut tx, &decided, &today, false).await?;
                Ok((
                    tx,
                    Written {
                        value: ResolveObjectionResponse {
                            objection: Some(objection),
                        },
                        tenant: o.tenant.clone(),
                    },
                ))
            })
            .await
    })
    .await
}

pub(crate) async fn list_objections(
    api: &Api,
    request: Request<ListObjectionsRequest>,
) -> Result<Response<ListObjectionsResponse>, Status> {
    let (ctx, req) = edge::caller(
        &api.authn,
        request,
        &[PrincipalKind::Agency, PrincipalKind::Regulator],
    )?;
    edge::read(async {
        let mut v = Violations::default();
        let limit = creditmesh_domain::page::size(&mut v, req.page_size, 50, 500);
        if !creditmesh_domain::error::is_id_token(&req.page_token) {
            v.add("page_token", "is not a token this list gave out");
        }
        v.finish()?;
        let today = state::today(api)?;
        let tenant = ctx.principal.tenant.to_string();
        let p = &ctx.principal;
        let filter = Filter {
            agency: (p.kind == PrincipalKind::Agency).then_some(p.subject.as_str()),
            tenant: (p.kind == PrincipalKind::Regulator
                && p.tenant != creditmesh_domain::tenant::REGION)
                .then_some(tenant.as_str()),
            open_only: req.open_only,
            due_before: req.overdue_only.then_some(today.as_str()),
        };
        let mut conn = api.store.db.acquire().await?;
        let mut rows =
            objection_store::list(&mut conn, &filter, &req.page_token, limit + 1).await?;
        let next_page_token =
            creditmesh_domain::page::cut(&mut rows, limit, |o| o.objection_id.clone());
        let mut objections = rows
            .iter()
            .map(|o| objection_proto(api, o, &today, p.kind == PrincipalKind::Agency))
            .collect::<Result<Vec<_>, _>>()?;
        crate::materials::fill(&mut conn, &mut objections).await?;
        Ok(ListObjectionsResponse {
            objections,
            next_page_token,
        })
    })
    .await
}

pub(crate) async fn add_subject_statement(
    api: &Api,
    request: Request<AddSubjectStatementRequest>,
) -> Result<Response<AddSubjectStatementResponse>, Status> {
    let (ctx, req) = edge::caller(
        &api.authn,
        request,
        &[PrincipalKind::Public, PrincipalKind::Regulator],
    )?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, "AddSubjectStatement", async {
        let mut v = Violations::default();
        v.require("objection_id", &req.objection_id);
        let subject = subjects::parse(
            &api.keys,
            SubjectKind::Unspecified as i32,
            &req.subject_identifier,
            "subject_identifier",
            &mut v,
        );
        v.require("statement", &req.statement);
        v.max_chars("statement", &req.statement, STATEMENT_CHARS);
        if ctx.principal.kind == PrincipalKind::Public {
            v.require("access_code", &req.access_code);
        }
        v.finish()?;
        let subject = subject.ok_or_else(|| Error::internal("subject checked"))?;
        let key = idempotency_key(ctx, &req.request_id, &req);
        let (req, subject, key) = (&req, &subject, &key);
        let store = &api.store;
        store
            .write_idempotent(ctx, "AddSubjectStatement", key, |mut tx| async move {
                code_first(api, &mut tx, ctx, &req.access_code, subject).await?;
                let id = req.objection_id.trim();
                let not_found = || Error::not_found(format!("no objection {id} of this subject"));
                let o = objection_store::find(&mut tx, id)
                    .await?
                    .ok_or_else(not_found)?;
                if !subject.index.matches(&o.subject_index) {
                    return Err(not_found());
                }
                subjects::may_act_for(
                    &mut tx,
                    &api.keys,
                    &ctx.principal,
                    &req.access_code,
                    &subjects::Concerning {
                        subject: &subject.index,
                        tenant: &o.tenant,
                        agency: &o.agency_uscc,
                    },
                    store.now(),
                )
                .await?;
                if !objection_store::set_statement(&mut tx, id, req.statement.trim()).await? {
                    return Err(Error::failed_precondition(format!(
                        "objection {id} is {}: a statement is attached to a decision to keep",
                        o.status
                    )));
                }
                let o = objection_store::find(&mut tx, id)
                    .await?
                    .ok_or_else(not_found)?;
                let today = state::today(api)?;
                let objection = to_proto_whole(api, &mut tx, &o, &today, false).await?;
                Ok((
                    tx,
                    Written {
                        value: AddSubjectStatementResponse {
                            objection: Some(objection),
                        },
                        tenant: o.tenant.clone(),
                    },
                ))
            })
            .await
    })
    .await
}

/// A member of the public is checked against their access code before anything is read, so
/// that a wrong code is answered alike whether or not a record or objection exists (and whose
/// it is).
async fn code_first(
    api: &Api,
    conn: &mut creditmesh_storage::sqlx::AnyConnection,
    ctx: &creditmesh_rpc::CallContext,
    code: &str,
    subject: &crate::subjects::Subject,
) -> Result<(), Error> {
    if ctx.principal.kind != PrincipalKind::Public {
        return Ok(());
    }
    subjects::check_code(conn, &api.keys, code, &subject.index, api.store.now()).await
}

pub(crate) async fn issue_subject_access_code(
    api: &Api,
    request: Request<IssueSubjectAccessCodeRequest>,
) -> Result<Response<IssueSubjectAccessCodeResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[PrincipalKind::Regulator])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, "IssueSubjectAccessCode", async {
        let mut v = Violations::default();
        let subject = subjects::parse(
            &api.keys,
            req.subject_kind,
            &req.subject_identifier,
            "subject_identifier",
            &mut v,
        );
        v.finish()?;
        let subject = subject.ok_or_else(|| Error::internal("subject checked"))?;
        let store = &api.store;
        let subject = &subject;
        // Not idempotent on purpose: the answer holds the code, which is kept nowhere in clear.
        store
            .write(ctx, "IssueSubjectAccessCode", |mut tx| async move {
                let code = subjects::new_code();
                let now = store.now();
                let expires_at = now + subjects::ACCESS_CODE_DAYS * 86_400 * 1_000_000;
                let tenant: Tenant = ctx.principal.tenant;
                objection_store::insert_access_code(
                    &mut tx,
                    &objection_store::AccessCode {
                        code_index: &subjects::code_index(&api.keys, &code).current,
                        subject_index: &subject.index.current,
                        index_key: &api.keys.index_keys().current.id,
                    },
                    &tenant.to_string(),
                    &ctx.principal_id,
                    now,
                    expires_at,
                )
                .await?;
                tracing::info!(kind = subject.kind, "subject access code issued");
                Ok((
                    tx,
                    Written {
                        value: IssueSubjectAccessCodeResponse {
                            access_code: code,
                            expires_at: Some(timestamp(expires_at)),
                        },
                        tenant: tenant.to_string(),
                    },
                ))
            })
            .await
    })
    .await
}
