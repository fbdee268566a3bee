//! Reading records: the agency that pushed one sees it whole; a regulator or department reads
//! for a stated purpose, and each read is logged as a use of the record (Art. 21); the subject
//! sees every record about them with its history, uses and objections.

use creditmesh_domain::lifecycle::Objection;
use std::collections::HashMap;

use creditmesh_domain::{Error, PrincipalKind, Tenant, Violations};
use creditmesh_proto::datapush::v1::*;
use creditmesh_rpc::{CallContext, Written, edge, timestamp};
use creditmesh_storage::sqlx::AnyConnection;
use tonic::{Request, Response, Status};

use crate::objection_store::{self, ObjectionRow};
use crate::state::{self, Api};
use crate::store::{self, RecordRow, Use};
use crate::{convert, subjects};

/// Longest purpose a reader may state.
const PURPOSE_CHARS: usize = 500;

/// A record as every reader sees it: its content, and whether it is under objection, or kept
/// with the agency's reasons and the subject's statement.
pub(crate) async fn stored(
    api: &Api,
    conn: &mut AnyConnection,
    row: &RecordRow,
) -> Result<StoredRecord, Error> {
    let mut one = stored_all(api, conn, std::slice::from_ref(row)).await?;
    one.pop().ok_or_else(|| Error::internal("a record read"))
}

/// Each of `rows` as every reader sees it, opened once, their objections read in one query.
async fn stored_all(
    api: &Api,
    conn: &mut AnyConnection,
    rows: &[RecordRow],
) -> Result<Vec<StoredRecord>, Error> {
    let objections = objection_store::of_records(conn, &ids(rows)).await?;
    rows.iter()
        .map(|row| stored_with(api, row, of(&objections, row)))
        .collect()
}

fn ids(rows: &[RecordRow]) -> Vec<String> {
    rows.iter().map(|r| r.record_id.clone()).collect()
}

/// What `by_record` holds of `row`'s record.
fn of<'a, T>(by_record: &'a HashMap<String, Vec<T>>, row: &RecordRow) -> &'a [T] {
    by_record.get(&row.record_id).map_or(&[], Vec::as_slice)
}

fn stored_with(
    api: &Api,
    row: &RecordRow,
    objections: &[ObjectionRow],
) -> Result<StoredRecord, Error> {
    let open = objections.iter().rev().find(|o| o.open());
    let last = objections.iter().rev().find(|o| !o.open());
    let kept = last.filter(|o| o.state() == Some(Objection::Kept));
    Ok(StoredRecord {
        record_id: row.record_id.clone(),
        agency_uscc: row.agency_uscc.clone(),
        record: Some(state::content(api, row)?),
        status: convert::record_status(&row.status) as i32,
        version: row.version,
        received_at: Some(timestamp(row.received_at)),
        open_objection_id: open.map(|o| o.objection_id.clone()).unwrap_or_default(),
        subject_statement: kept
            .map(|o| o.subject_statement.clone())
            .unwrap_or_default(),
        kept_reasons: kept.map(|o| o.decision_reasons.clone()).unwrap_or_default(),
    })
}

/// The purpose a regulator or department states, checked.
fn purpose(v: &mut Violations, purpose: &str) -> String {
    v.require("purpose", purpose);
    v.max_chars("purpose", purpose, PURPOSE_CHARS);
    purpose.trim().to_owned()
}

/// Why a regulator or department reads, as each read is logged (Art. 21).
#[derive(Default)]
struct Basis {
    purpose: String,
    /// A department's: the provision it reads under, and the referral it reads in.
    legal_basis: String,
    referral_id: String,
}

/// The basis `ctx`'s caller states, checked: a purpose, and of a department the referral it
/// reads in and its legal basis.
fn basis(
    v: &mut Violations,
    ctx: &CallContext,
    stated_purpose: &str,
    referral_id: &str,
    legal_basis: &str,
) -> Basis {
    let purpose = purpose(v, stated_purpose);
    if ctx.principal.kind == PrincipalKind::Department {
        v.require("referral_id", referral_id);
        v.max_chars("referral_id", referral_id, 64);
        v.require("legal_basis", legal_basis);
        v.max_chars("legal_basis", legal_basis, PURPOSE_CHARS);
    } else if !referral_id.trim().is_empty() {
        v.add(
            "referral_id",
            "is for departments, which read only within a referral they received",
        );
    }
    Basis {
        purpose,
        legal_basis: legal_basis.trim().to_owned(),
        referral_id: referral_id.trim().to_owned(),
    }
}

/// The case a department reads in, checked against what the platform knows of it; none for
/// another caller.
async fn case_of(
    api: &Api,
    conn: &mut AnyConnection,
    ctx: &CallContext,
    basis: &Basis,
) -> Result<Option<crate::cases::Case>, Error> {
    if ctx.principal.kind != PrincipalKind::Department {
        return Ok(None);
    }
    let today = creditmesh_domain::calendar::cst_date(api.store.now())
        .map_err(|e| Error::internal(e.to_string()))?;
    crate::cases::open_to(conn, &ctx.principal, &basis.referral_id, today)
        .await
        .map(Some)
}

/// Records per page of a subject's records.
const PAGE: (i32, i32) = (20, 100);

/// The page asked for: its size and the record it starts after, checked.
fn page(v: &mut Violations, size: i32, token: &str) -> i64 {
    if !creditmesh_domain::error::is_id_token(token) {
        v.add("page_token", "is not a token this list gave out");
    }
    creditmesh_domain::page::size(v, size, PAGE.0, PAGE.1)
}

/// One page of the records about a subject that `ctx`'s caller sees, with the token of the
/// next page (empty on the last).
async fn subject_page(
    conn: &mut AnyConnection,
    subject: &crate::index::Hashed,
    scope: &store::Scope<'_>,
    after: &str,
    limit: i64,
) -> Result<(Vec<RecordRow>, String), Error> {
    let mut rows = store::of_subject(conn, subject, scope, after, limit + 1).await?;
    let next = creditmesh_domain::page::cut(&mut rows, limit, |r| r.record_id.clone());
    Ok((rows, next))
}

/// Whose records `ctx`'s caller sees: an agency its own, a prefecture's regulator the agencies
/// its authority holds, a department those of the agency referred to it in `case`, the region
/// (and the subject) all.
fn scope<'a>(ctx: &'a CallContext, case: Option<&'a crate::cases::Case>) -> store::Scope<'a> {
    let p = &ctx.principal;
    match (p.kind, case) {
        (PrincipalKind::Agency, _) => store::Scope {
            agency: Some(&p.subject),
            tenant: None,
        },
        (PrincipalKind::Department, Some(case)) => store::Scope {
            agency: Some(&case.agency_uscc),
            tenant: None,
        },
        (PrincipalKind::Regulator, _) if !p.tenant.is_region() => store::Scope {
            tenant: Some(p.tenant.to_string()),
            agency: None,
        },
        (PrincipalKind::Regulator | PrincipalKind::Public, _) => store::Scope::default(),
        // Outside a case a department sees nothing: no agency's records match.
        _ => store::Scope {
            agency: Some(NOBODY),
            tenant: None,
        },
    }
}

/// An agency no record is pushed by.
const NOBODY: &str = "-";

/// Whether `ctx`'s caller, a regulator or a department in `case`, may read `row`.
fn sees(ctx: &CallContext, case: Option<&crate::cases::Case>, row: &RecordRow) -> bool {
    match case {
        Some(case) => row.agency_uscc == case.agency_uscc,
        None => {
            ctx.principal.kind == PrincipalKind::Regulator
                && Tenant::parse(&row.tenant).is_ok_and(|t| ctx.principal.tenant.can_see(t))
        }
    }
}

/// Logs each of `rows` as read by `ctx`'s caller for `purpose` (one transaction with the audit
/// line), then answers them as readers see them: the versions the log names.
async fn read_logged(
    api: &Api,
    ctx: &CallContext,
    method: &str,
    rows: Vec<RecordRow>,
    basis: &Basis,
) -> Result<Vec<StoredRecord>, Error> {
    log_reads(api, ctx, method, &rows, basis).await?;
    let mut conn = api.store.db.acquire().await?;
    stored_all(api, &mut conn, &rows).await
}

/// Logs `ctx`'s caller's reads of `rows` for `basis`, in a write of their own.
async fn log_reads(
    api: &Api,
    ctx: &CallContext,
    method: &str,
    rows: &[RecordRow],
    basis: &Basis,
) -> Result<(), Error> {
    let store = &api.store;
    let tenant = ctx.principal.tenant.to_string();
    let tenant = &tenant;
    store
        .write(ctx, method, |mut tx| async move {
            store::log_uses(&mut tx, &reads(ctx, tenant, rows, basis, store.now())).await?;
            Ok((
                tx,
                Written {
                    value: (),
                    tenant: tenant.clone(),
                },
            ))
        })
        .await
}

/// `ctx`'s caller's reads of `rows` for `basis`, at `at`, as they are logged.
fn reads<'a>(
    ctx: &'a CallContext,
    tenant: &'a str,
    rows: &'a [RecordRow],
    basis: &'a Basis,
    at: i64,
) -> Vec<Use<'a>> {
    rows.iter()
        .map(|row| Use {
            record_id: &row.record_id,
            version: row.version,
            principal: &ctx.principal_id,
            tenant,
            purpose: &basis.purpose,
            legal_basis: &basis.legal_basis,
            referral_id: &basis.referral_id,
            kind: store::READ,
            recipient: "",
            at,
        })
        .collect()
}

pub(crate) async fn get_record(
    api: &Api,
    request: Request<GetRecordRequest>,
) -> Result<Response<GetRecordResponse>, Status> {
    let (ctx, req) = edge::caller(
        &api.authn,
        request,
        &[
            PrincipalKind::Agency,
            PrincipalKind::Regulator,
            PrincipalKind::Department,
        ],
    )?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, "GetRecord", async {
        let mut v = Violations::default();
        v.require("record_id", &req.record_id);
        let agency = ctx.principal.kind == PrincipalKind::Agency;
        let basis = if agency {
            Basis::default()
        } else {
            basis(
                &mut v,
                ctx,
                &req.purpose,
                &req.referral_id,
                &req.legal_basis,
            )
        };
        v.finish()?;
        let id = req.record_id.trim();
        let not_found = || Error::not_found(format!("no record {id} you may read"));
        let mut conn = api.store.db.acquire().await?;
        // A department's case is checked before any record is looked up.
        let case = case_of(api, &mut conn, ctx, &basis).await?;
        let row = store::find(&mut conn, id).await?.ok_or_else(not_found)?;
        let record = if agency {
            if row.agency_uscc != ctx.principal.subject {
                return Err(not_found());
            }
            stored(api, &mut conn, &row).await?
        } else {
            if !sees(ctx, case.as_ref(), &row) {
                return Err(not_found());
            }
            drop(conn);
            read_logged(api, ctx, "GetRecord", vec![row], &basis)
                .await?
                .pop()
                .ok_or_else(not_found)?
        };
        Ok(GetRecordResponse {
            record: Some(record),
        })
    })
    .await
}

pub(crate) async fn find_records(
    api: &Api,
    request: Request<FindRecordsRequest>,
) -> Result<Response<FindRecordsResponse>, Status> {
    let (ctx, req) = edge::caller(
        &api.authn,
        request,
        &[PrincipalKind::Regulator, PrincipalKind::Department],
    )?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, "FindRecords", async {
        let mut v = Violations::default();
        let subject = subjects::parse(
            &api.keys,
            req.subject_kind,
            &req.subject_identifier,
            "subject_identifier",
            &mut v,
        );
        let basis = basis(
            &mut v,
            ctx,
            &req.purpose,
            &req.referral_id,
            &req.legal_basis,
        );
        let limit = page(&mut v, req.page_size, &req.page_token);
        v.finish()?;
        let subject = subject.ok_or_else(|| Error::internal("subject checked"))?;
        let mut conn = api.store.db.acquire().await?;
        let case = case_of(api, &mut conn, ctx, &basis).await?;
        let scope = scope(ctx, case.as_ref());
        let (rows, next_page_token) =
            subject_page(&mut conn, &subject.index, &scope, &req.page_token, limit).await?;
        drop(conn);
        let records = if rows.is_empty() {
            Vec::new()
        } else {
            read_logged(api, ctx, "FindRecords", rows, &basis).await?
        };
        Ok(FindRecordsResponse {
            records,
            next_page_token,
        })
    })
    .await
}

/// One record as its subject sees it: with every version and every use. Each envelope is
/// opened once: the current version is the record as already read.
fn subject_record(
    api: &Api,
    row: &RecordRow,
    record: StoredRecord,
    versions: &[store::VersionRow],
    uses: &[store::UseRow],
) -> Result<SubjectRecordReport, Error> {
    let history = versions
        .iter()
        .map(|ver| {
            let opened = match &record.record {
                Some(current) if ver.version == row.version => current.clone(),
                _ => state::open(api, row, &ver.key_id, &ver.envelope)?,
            };
            Ok::<_, Error>(RecordVersion {
                version: ver.version,
                content: opened.content,
                changed_at: Some(timestamp(ver.changed_at)),
                change: ver.change.clone(),
                source: opened.source,
            })
        })
        .collect::<Result<_, _>>()?;
    let uses = uses
        .iter()
        .map(|u| RecordUse {
            used_at: Some(timestamp(u.used_at)),
            used_by: u.principal.clone(),
            purpose: u.purpose.clone(),
            legal_basis: u.legal_basis.clone(),
            referral_id: u.referral_id.clone(),
            recorded_by_agency: u.kind == store::AGENCY_USE,
            recipient: u.recipient.clone(),
        })
        .collect();
    let category = api.catalog.get(&row.category);
    let kept_until = category
        .zip(creditmesh_domain::calendar::parse_iso_date(&row.collected_on).ok())
        .and_then(|(c, collected)| crate::catalog::kept_until(collected, c.retention_months))
        .map(creditmesh_domain::calendar::format_date)
        .unwrap_or_default();
    Ok(SubjectRecordReport {
        record: Some(record),
        history,
        uses,
        kept_until,
        retention_basis: category
            .map(|c| c.retention_basis.clone())
            .unwrap_or_default(),
        retention_basis_zh: category
            .map(|c| c.retention_basis_zh.clone())
            .unwrap_or_default(),
        labels: category.map(labels),
    })
}

/// How people read a category and its fields: the catalog's names, else the codes.
fn labels(c: &crate::catalog::Category) -> Labels {
    let or = |label: &str, code: &str| {
        if label.is_empty() {
            code.to_owned()
        } else {
            label.to_owned()
        }
    };
    Labels {
        category_zh: or(&c.name_zh, &c.code),
        category_en: or(&c.name_en, &c.code),
        fields: c
            .fields
            .iter()
            .map(|f| FieldLabel {
                name: f.name.clone(),
                zh: or(&f.label_zh, &f.name),
                en: or(&f.label_en, &f.name),
            })
            .collect(),
    }
}

pub(crate) async fn get_subject_report(
    api: &Api,
    request: Request<GetSubjectReportRequest>,
) -> Result<Response<GetSubjectReportResponse>, Status> {
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
    edge::run(&api.store, ctx, "GetSubjectReport", async {
        let mut v = Violations::default();
        let subject = subjects::parse(
            &api.keys,
            req.subject_kind,
            &req.subject_identifier,
            "subject_identifier",
            &mut v,
        );
        let kind = ctx.principal.kind;
        let basis = if kind == PrincipalKind::Regulator {
            Basis {
                purpose: purpose(&mut v, &req.purpose),
                ..Default::default()
            }
        } else {
            Basis::default()
        };
        if kind == PrincipalKind::Public {
            v.require("access_code", &req.access_code);
        }
        let limit = page(&mut v, req.page_size, &req.page_token);
        v.finish()?;
        let subject = subject.ok_or_else(|| Error::internal("subject checked"))?;
        let mut conn = api.store.db.acquire().await?;
        if kind == PrincipalKind::Public {
            subjects::check_code(
                &mut conn,
                &api.keys,
                &req.access_code,
                &subject.index,
                api.store.now(),
            )
            .await?;
        }
        let (rows, next_page_token) = subject_page(
            &mut conn,
            &subject.index,
            &scope(ctx, None),
            &req.page_token,
            limit,
        )
        .await?;
        // The same number of queries whatever the page's size.
        if kind == PrincipalKind::Regulator && !rows.is_empty() {
            // A desk asking on the subject's behalf reads the records, and says why.
            drop(conn);
            log_reads(api, ctx, "GetSubjectReport", &rows, &basis).await?;
            conn = api.store.db.acquire().await?;
        }
        let ids = ids(&rows);
        let objection_rows = objection_store::of_records(&mut conn, &ids).await?;
        let versions = store::versions_of(&mut conn, &ids).await?;
        let uses = store::uses_of(&mut conn, &ids).await?;
        let records = rows
            .iter()
            .map(|row| {
                let record = stored_with(api, row, of(&objection_rows, row))?;
                subject_record(api, row, record, of(&versions, row), of(&uses, row))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let today = state::today(api)?;
        let mut objections = objection_rows
            .values()
            .flatten()
            .map(|o| convert::objection_proto(api, o, &today, true))
            .collect::<Result<Vec<_>, _>>()?;
        objections.sort_by(|a, b| a.objection_id.cmp(&b.objection_id));
        crate::materials::fill(&mut conn, &mut objections).await?;
        Ok(GetSubjectReportResponse {
            records,
            objections,
            next_page_token,
        })
    })
    .await
}

pub(crate) async fn list_correction_notices(
    api: &Api,
    request: Request<ListCorrectionNoticesRequest>,
) -> Result<Response<ListCorrectionNoticesResponse>, Status> {
    let (ctx, req) = edge::caller(
        &api.authn,
        request,
        &[
            PrincipalKind::Regulator,
            PrincipalKind::Department,
            PrincipalKind::Agency,
        ],
    )?;
    edge::read(async {
        let mut v = Violations::default();
        let limit = creditmesh_domain::page::size(&mut v, req.page_size, 50, 500);
        if !creditmesh_domain::error::is_id_token(&req.page_token) {
            v.add("page_token", "is not a token this list gave out");
        }
        v.finish()?;
        let mut conn = api.store.db.acquire().await?;
        let mut rows =
            store::notices(&mut conn, &ctx.principal_id, &req.page_token, limit + 1).await?;
        let next_page_token =
            creditmesh_domain::page::cut(&mut rows, limit, |n| n.notice_id.clone());
        Ok(ListCorrectionNoticesResponse {
            notices: rows
                .into_iter()
                .map(|n| CorrectionNotice {
                    notice_id: n.notice_id,
                    record_id: n.record_id,
                    version: n.version,
                    change: n.change,
                    created_at: Some(timestamp(n.created_at)),
                    read_version: n.read_version,
                })
                .collect(),
            next_page_token,
        })
    })
    .await
}

pub(crate) async fn record_agency_use(
    api: &Api,
    request: Request<RecordAgencyUseRequest>,
) -> Result<Response<RecordAgencyUseResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[PrincipalKind::Agency])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, "RecordAgencyUse", async {
        let mut v = Violations::default();
        v.require("record_id", &req.record_id);
        let purpose = purpose(&mut v, &req.purpose);
        v.max_chars("recipient", &req.recipient, PURPOSE_CHARS);
        v.require("legal_basis", &req.legal_basis);
        v.max_chars("legal_basis", &req.legal_basis, PURPOSE_CHARS);
        v.finish()?;
        let id = req.record_id.trim();
        let store = &api.store;
        let (req, purpose) = (&req, &purpose);
        store
            .write_idempotent(ctx, "RecordAgencyUse", &req.request_id, |mut tx| async move {
                let row = store::find(&mut tx, id)
                    .await?
                    .filter(|r| r.agency_uscc == ctx.principal.subject)
                    .ok_or_else(|| Error::not_found(format!("no record {id} you pushed")))?;
                let used = Use {
                    record_id: &row.record_id,
                    version: row.version,
                    principal: &ctx.principal_id,
                    tenant: &row.tenant,
                    purpose,
                    legal_basis: req.legal_basis.trim(),
                    referral_id: "",
                    kind: store::AGENCY_USE,
                    recipient: req.recipient.trim(),
                    at: store.now(),
                };
                store::log_use(&mut tx, &used).await?;
                tracing::info!(record_id = %row.record_id, tenant = %row.tenant, "agency use recorded");
                let recorded = RecordUse {
                    used_at: Some(timestamp(used.at)),
                    used_by: ctx.principal_id.clone(),
                    purpose: purpose.clone(),
                    legal_basis: used.legal_basis.to_owned(),
                    referral_id: String::new(),
                    recorded_by_agency: true,
                    recipient: used.recipient.to_owned(),
                };
                Ok((
                    tx,
                    Written {
                        value: RecordAgencyUseResponse {
                            r#use: Some(recorded),
                        },
                        tenant: row.tenant.clone(),
                    },
                ))
            })
            .await
    })
    .await
}
