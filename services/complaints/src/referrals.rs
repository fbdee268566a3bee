//! Referral of a complaint outside the regulator's remit to the competent department (Art. 24
//! "不属于本部门职责范围的，移送有关部门处理"): the regulator refers with a reason, the platform
//! delivers it to the department's node (see `delivery`), and the department acknowledges it or
//! declines it back to the regulator for re-routing.

use creditmesh_domain::lifecycle::{
    Complaint as State, ComplaintEvent, Machine, Referral as ReferralState, ReferralEvent,
};
use creditmesh_domain::{Error, PrincipalKind, Tenant, Violations, department, page};
use creditmesh_pki::ContactKey;
use creditmesh_proto::common::v1::DocumentRef;
use creditmesh_proto::complaints::v1::*;
use creditmesh_proto::events::v1::{ReferralDeclined, ReferralReceived};
use creditmesh_rpc::{CallContext, ServiceStore, Written, edge, timestamp};
use creditmesh_storage::sqlx::AnyConnection;
use creditmesh_storage::{StorageError, Tx};
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::convert::{addressee, department_zh, referral_proto};
use crate::referral_store::{self, NewReferral, ReferralRow};
use crate::state::{Api, moved, reread, today};
use crate::store;

const MAX_PAGE: i32 = 100;
const MAX_TEXT: usize = 4000;

/// Tells datapush that a department received a referral (its receipt verified, or the letter
/// sent): a case in which it may read what the referred agency pushed (Art. 23).
pub(crate) async fn publish_received(
    store: &ServiceStore,
    tx: &mut Tx,
    principal: &str,
    tenant: &str,
    received: ReferralReceived,
) -> Result<(), StorageError> {
    store
        .infra
        .publish(
            tx,
            ReferralReceived::CONSUMERS,
            creditmesh_storage::infra::NewEvent {
                event_type: ReferralReceived::TYPE,
                tenant,
                principal,
                subject: &received.referral_id,
                payload: received.encode_to_vec(),
            },
            store.now(),
        )
        .await?;
    Ok(())
}

struct ValidReferral {
    department: &'static str,
    department_tenant: Tenant,
    /// The department as the referral names it, with its division.
    addressee: String,
    letter: Option<(String, time::Date)>,
}

const MAX_NAME: usize = 200;
const MAX_REFERENCE: usize = 100;

/// A referral's letter, when it goes by one: its reference and the day it was sent, not after
/// `today`.
fn letter(
    v: &mut Violations,
    letter: Option<&ReferralLetter>,
    today: time::Date,
) -> Option<(String, time::Date)> {
    let l = letter?;
    let reference = l.reference.trim();
    v.require("letter.reference", reference);
    v.max_chars("letter.reference", reference, MAX_REFERENCE);
    let sent_on = if l.sent_on.trim().is_empty() {
        v.add("letter.sent_on", "is required: the day the letter was sent");
        None
    } else {
        v.check(
            "letter.sent_on",
            creditmesh_domain::calendar::parse_iso_date(l.sent_on.trim()),
        )
    };
    if let Some(d) = sent_on
        && d > today
    {
        v.add("letter.sent_on", format!("is after today ({today})"));
    }
    Some((reference.to_owned(), sent_on?))
}

pub(crate) async fn refer_complaint(
    api: &Api,
    request: Request<ReferComplaintRequest>,
) -> Result<Response<ReferComplaintResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[PrincipalKind::Regulator])?;
    let checked = (|| {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("tracking_number", &req.tracking_number);
        v.require("reason", &req.reason);
        v.max_chars("reason", &req.reason, MAX_TEXT);
        let department = department::code_of(req.department);
        if department.is_none() {
            v.add("department", "is required: the competent department");
        }
        let department_name = req.department_name.trim();
        v.max_chars("department_name", department_name, MAX_NAME);
        let by_letter = letter(&mut v, req.letter.as_ref(), today(api)?);
        if department == Some(department::OTHER) {
            if department_name.is_empty() {
                v.add(
                    "department_name",
                    "is required for a department outside the list: the body the letter is addressed to",
                );
            }
            if req.letter.is_none() {
                v.add(
                    "letter",
                    "is required for a department outside the list: no node of it exists, so the referral goes by letter",
                );
            }
            if req.share_evidence {
                v.add(
                    "share_evidence",
                    "a department outside the platform cannot open evidence here; send copies with the letter",
                );
            }
        }
        let department_tenant = if req.department_tenant.trim().is_empty() {
            v.add(
                "department_tenant",
                "is required: the department's division",
            );
            None
        } else {
            v.check(
                "department_tenant",
                Tenant::parse(req.department_tenant.trim()),
            )
        };
        if let (Some(code), Some(tenant)) = (department, department_tenant)
            && req.letter.is_none()
            && code != department::OTHER
            && api.referrals.node(code, &tenant.to_string()).is_none()
        {
            v.add(
                "department_tenant",
                format!(
                    "no node of department {code} in {tenant} is configured ([[referrals.departments]]); without one, refer by letter (letter)"
                ),
            );
        }
        v.finish()?;
        match (department, department_tenant) {
            (Some(department), Some(department_tenant)) => Ok(ValidReferral {
                department,
                department_tenant,
                addressee: addressee(department, department_name, department_tenant),
                letter: by_letter,
            }),
            _ => Err(Error::internal("validation lost a field")),
        }
    })();
    let (ctx_ref, req_ref) = (&ctx, &req);
    edge::call(&api.store, &ctx, "ReferComplaint", checked, |valid| async move {
        let store = &api.store;
        let (ctx, req, valid) = (ctx_ref, req_ref, &valid);
        store
            .write_idempotent(ctx, "ReferComplaint", &req.request_id, |mut tx| async move {
                let row = moved(&mut tx, ctx, req.tracking_number.trim(), ComplaintEvent::Refer)
                    .await?;
                if let Some((_, sent_on)) = &valid.letter {
                    let received = creditmesh_domain::calendar::cst_date(row.received_at)
                        .map_err(|e| Error::internal(e.to_string()))?;
                    if *sent_on < received {
                        return Err(Error::invalid_field(
                            "letter.sent_on",
                            format!("is before the complaint was received ({received})"),
                        ));
                    }
                }
                let now = store.now();
                let referral_id = uuid::Uuid::now_v7().to_string();
                let reason = req.reason.trim();
                let department_tenant = valid.department_tenant.to_string();
                let sent = Referral {
                    referral_id: referral_id.clone(),
                    tracking_number: row.tracking_number.clone(),
                    department: department::value_of(valid.department),
                    department_tenant: department_tenant.clone(),
                    from_tenant: row.tenant.clone(),
                    agency_uscc: row.agency_uscc.clone(),
                    agency_name: row.agency_name.clone(),
                    subject: row.subject.clone(),
                    description: row.description.clone(),
                    referred_at: Some(timestamp(now)),
                    reason: reason.to_owned(),
                    complainant_name: row.complainant_name.clone(),
                    complainant_contact: row.complainant_contact.clone(),
                    evidence: if req.share_evidence {
                        row.evidence
                            .iter()
                            .map(|sha256| DocumentRef {
                                sha256: sha256.clone(),
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                    department_name: req.department_name.trim().to_owned(),
                    letter: valid.letter.as_ref().map(|(reference, sent_on)| ReferralLetter {
                        reference: reference.clone(),
                        sent_on: creditmesh_domain::calendar::format_date(*sent_on),
                    }),
                    ..Default::default()
                };
                // What waits to be delivered keeps the contact sealed; the bytes the
                // department receives (and signs the hash of) have it opened into them.
                let payload_sha256 = hex::encode(Sha256::digest(sent.encode_to_vec()));
                let sealed_contact = if sent.complainant_contact.is_empty() {
                    String::new()
                } else {
                    api.contacts
                        .seal(&referral_id, &sent.complainant_contact)
                        .map_err(|e| Error::internal(format!("sealing a contact: {e}")))?
                };
                let payload = Referral {
                    complainant_contact: String::new(),
                    ..sent
                }
                .encode_to_vec();
                referral_store::insert(
                    &mut tx,
                    &NewReferral {
                        referral_id: &referral_id,
                        tenant: &row.tenant,
                        tracking_number: &row.tracking_number,
                        department: valid.department,
                        department_tenant: &department_tenant,
                        reason,
                        referred_at: now,
                        referred_by: &ctx.principal_id,
                        payload: &payload,
                        payload_sha256: &payload_sha256,
                        sealed_contact: &sealed_contact,
                        shares_evidence: req.share_evidence,
                        by_letter: valid.letter.is_some(),
                    },
                )
                .await?;
                if let Some((_, sent_on)) = &valid.letter {
                    publish_received(
                        store,
                        &mut tx,
                        &ctx.principal_id,
                        &row.tenant,
                        ReferralReceived {
                            referral_id: referral_id.clone(),
                            tracking_number: row.tracking_number.clone(),
                            uscc: row.agency_uscc.clone(),
                            department: valid.department.to_owned(),
                            department_tenant: department_tenant.clone(),
                            received_at: 0,
                            sent_on: creditmesh_domain::calendar::format_date(*sent_on),
                        },
                    )
                    .await?;
                }
                let to = &valid.addressee;
                let (by_letter_zh, by_letter_en) = match &valid.letter {
                    Some((reference, sent_on)) => (
                        format!("（移送函 {reference}，{sent_on}）"),
                        format!(" by letter {reference} of {sent_on}"),
                    ),
                    None => Default::default(),
                };
                crate::notify::queue(
                    &mut tx,
                    &row.tenant,
                    &row.tracking_number,
                    &row.complainant_contact,
                    &format!("投诉举报 {} 已移送{to}", row.tracking_number),
                    &format!(
                        "您的投诉举报 {} 不属于本部门职责范围，已移送{to}处理{by_letter_zh}。\n\
                         Your complaint {} is outside the regulator's remit and was referred to \
                         {to} ({} of {department_tenant}){by_letter_en}.",
                        row.tracking_number, row.tracking_number, valid.department
                    ),
                    now,
                )
                .await?;
                store::add_history(
                    &mut tx,
                    &row.tenant,
                    &row.tracking_number,
                    State::Referred.name(),
                    now,
                    &ctx.principal_id,
                    (
                        &format!(
                            "referred to {} of {department_tenant} ({}){} (Art. 24): {reason}",
                            valid.department,
                            valid.addressee,
                            valid
                                .letter
                                .as_ref()
                                .map(|(r, d)| format!(" by letter {r} of {d}"))
                                .unwrap_or_default()
                        ),
                        &format!("已移送{to}{by_letter_zh}（《办法》第二十四条）：{reason}"),
                    ),
                )
                .await?;
                let today = creditmesh_domain::calendar::format_date(today(api)?);
                let complaint = reread(api, ctx, &mut tx, &row.tracking_number, &today).await?;
                tracing::info!(tenant = %row.tenant, tracking_number = %row.tracking_number, %referral_id, department = valid.department, %department_tenant, "complaint referred");
                Ok((
                    tx,
                    Written {
                        value: ReferComplaintResponse {
                            referral_id,
                            complaint: Some(complaint),
                        },
                        tenant: row.tenant.clone(),
                    },
                ))
            })
            .await
    })
    .await
}

/// The referral `referral_id` if it is addressed to the calling department, else `NOT_FOUND`.
async fn addressed(
    conn: &mut AnyConnection,
    ctx: &CallContext,
    referral_id: &str,
) -> Result<ReferralRow, Error> {
    let p = &ctx.principal;
    match referral_store::find(conn, referral_id).await? {
        Some(r)
            if r.department == p.subject
                && r.department_tenant == p.tenant.to_string()
                && r.status != ReferralState::Pending.name() =>
        {
            Ok(r)
        }
        _ => Err(Error::not_found(format!(
            "no referral {referral_id} for this department"
        ))),
    }
}

pub(crate) async fn list_referrals(
    api: &Api,
    request: Request<ListReferralsRequest>,
) -> Result<Response<ListReferralsResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[PrincipalKind::Department])?;
    edge::read(async {
        let mut v = Violations::default();
        let limit = page::size(&mut v, req.page_size, 20, MAX_PAGE);
        let token = req.page_token.trim();
        if !token.is_empty() && uuid::Uuid::parse_str(token).is_err() {
            v.add("page_token", "is not a token this list gave out");
        }
        v.finish()?;
        let p = &ctx.principal;
        let mut conn = api.store.db.acquire().await?;
        let mut rows = referral_store::addressed_to(
            &mut conn,
            &p.subject,
            &p.tenant.to_string(),
            req.unacknowledged_only,
            token,
            limit + 1,
        )
        .await?;
        let next_page_token = page::cut(&mut rows, limit, |r| r.referral_id.clone());
        Ok(ListReferralsResponse {
            referrals: rows
                .into_iter()
                .map(|r| referral_proto(r, &api.contacts))
                .collect(),
            next_page_token,
        })
    })
    .await
}

fn referral_id(v: &mut Violations, id: &str) {
    v.require("referral_id", id);
    if !id.trim().is_empty() && uuid::Uuid::parse_str(id.trim()).is_err() {
        v.add("referral_id", "is not a referral id");
    }
}

/// Moves the referral by `event`; a referral already where the event leads is answered as it
/// stands (a repeated call changes nothing), any other state refuses the move.
async fn answer(
    conn: &mut AnyConnection,
    ctx: &CallContext,
    id: &str,
    event: ReferralEvent,
) -> Result<(ReferralRow, bool), Error> {
    let row = addressed(conn, ctx, id).await?;
    if referral_store::transition(conn, id, event).await?.is_some() {
        return Ok((row, true));
    }
    let target = ReferralState::target(event);
    if row.status == target.name() {
        return Ok((row, false));
    }
    let why = ReferralState::parse(&row.status)
        .and_then(|s| s.on(event).err())
        .map(|e| e.to_string())
        .unwrap_or_else(|| format!("the referral is {}", row.status));
    Err(Error::failed_precondition(format!("referral {id}: {why}")))
}

pub(crate) async fn acknowledge_referral(
    api: &Api,
    request: Request<AcknowledgeReferralRequest>,
) -> Result<Response<AcknowledgeReferralResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[PrincipalKind::Department])?;
    let checked = {
        let mut v = Violations::default();
        referral_id(&mut v, &req.referral_id);
        v.finish()
    };
    edge::call(
        &api.store,
        &ctx,
        "AcknowledgeReferral",
        checked,
        |()| async {
            let store = &api.store;
            let (ctx, id) = (&ctx, req.referral_id.trim());
            store
                .write(ctx, "AcknowledgeReferral", |mut tx| async move {
                    let (row, moved) = answer(&mut tx, ctx, id, ReferralEvent::Acknowledge).await?;
                    if moved {
                        let now = store.now();
                        referral_store::set_acknowledged(&mut tx, id, now, &ctx.principal_id)
                            .await?;
                    }
                    if moved && !row.tracking_number.is_empty() {
                        let now = store.now();
                        store::add_history(
                            &mut tx,
                            &row.tenant,
                            &row.tracking_number,
                            State::Referred.name(),
                            now,
                            &ctx.principal_id,
                            (
                                &format!(
                                    "acknowledged by {} of {}",
                                    row.department, row.department_tenant
                                ),
                                &format!(
                                    "{}已确认接收",
                                    department_zh(&row.department, &row.department_tenant)
                                ),
                            ),
                        )
                        .await?;
                    }
                    let referral = referral_store::find(&mut tx, id)
                        .await?
                        .map(|r| referral_proto(r, &api.contacts))
                        .ok_or_else(|| Error::internal("a referral just written is missing"))?;
                    Ok((
                        tx,
                        Written {
                            value: AcknowledgeReferralResponse {
                                referral: Some(referral),
                            },
                            tenant: row.tenant,
                        },
                    ))
                })
                .await
        },
    )
    .await
}

pub(crate) async fn decline_referral(
    api: &Api,
    request: Request<DeclineReferralRequest>,
) -> Result<Response<DeclineReferralResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[PrincipalKind::Department])?;
    let checked = {
        let mut v = Violations::default();
        referral_id(&mut v, &req.referral_id);
        v.require("reason", &req.reason);
        v.max_chars("reason", &req.reason, MAX_TEXT);
        v.finish()
    };
    edge::call(&api.store, &ctx, "DeclineReferral", checked, |()| async {
        let store = &api.store;
        let (ctx, id, reason) = (&ctx, req.referral_id.trim(), req.reason.trim());
        store
            .write(ctx, "DeclineReferral", |mut tx| async move {
                let (row, moved) = answer(&mut tx, ctx, id, ReferralEvent::Decline).await?;
                if moved {
                    let now = store.now();
                    referral_store::set_declined(&mut tx, id, now, &ctx.principal_id, reason)
                        .await?;
                }
                // A revocation's referral (Art. 15(3)) goes back to the holding authority's
                // review, which opens a task: the conduct still awaits disposal. Either kind
                // ends the department's case in datapush.
                if moved {
                    let sent = Referral::decode(row.payload.as_slice())
                        .map_err(|e| Error::internal(format!("stored referral: {e}")))?;
                    let consumers = if row.tracking_number.is_empty() {
                        creditmesh_proto::events::v1::REVOCATION_REFERRAL_DECLINED_CONSUMERS
                    } else {
                        ReferralDeclined::CONSUMERS
                    };
                    store
                        .publish_event_to(
                            &mut tx,
                            consumers,
                            ctx,
                            &row.tenant,
                            &sent.revoked_filing_id,
                            &ReferralDeclined {
                                referral_id: row.referral_id.clone(),
                                filing_id: sent.revoked_filing_id.clone(),
                                uscc: sent.agency_uscc,
                                department: row.department.clone(),
                                department_tenant: row.department_tenant.clone(),
                                reason: reason.to_owned(),
                            },
                        )
                        .await?;
                }
                if moved && row.tracking_number.is_empty() {
                    tracing::info!(tenant = %row.tenant, referral_id = %id, "revocation referral declined");
                }
                if moved && !row.tracking_number.is_empty() {
                    let now = store.now();
                    // Back to the regulator that referred it, for re-routing.
                    if store::transition(
                        &mut tx,
                        &row.tenant,
                        &row.tracking_number,
                        ComplaintEvent::Decline,
                    )
                    .await?
                    .is_none()
                    {
                        return Err(Error::internal(format!(
                            "complaint {} of a delivered referral is not referred",
                            row.tracking_number
                        )));
                    }
                    store::add_history(
                        &mut tx,
                        &row.tenant,
                        &row.tracking_number,
                        State::Received.name(),
                        now,
                        &ctx.principal_id,
                        (
                            &format!(
                                "declined by {} of {} as outside its competence: {reason}; \
                                 returned to {} for re-routing",
                                row.department, row.department_tenant, row.tenant
                            ),
                            &format!(
                                "{}认为不属于其职责范围而退回：{reason}；由{}社会信用主管部门另行处理",
                                department_zh(&row.department, &row.department_tenant),
                                Tenant::parse(&row.tenant)
                                    .map(|t| t.authority_name())
                                    .unwrap_or_else(|_| row.tenant.clone())
                            ),
                        ),
                    )
                    .await?;
                    // The complainant was told where it went; they are told it came back.
                    if let Some(complaint) = store::find(&mut tx, &row.tracking_number).await? {
                        let from = format!(
                            "{} ({})",
                            department::name_zh(&row.department),
                            row.department_tenant
                        );
                        crate::notify::queue(
                            &mut tx,
                            &row.tenant,
                            &row.tracking_number,
                            &complaint.complainant_contact,
                            &format!("投诉举报 {} 已由{from}退回", row.tracking_number),
                            &format!(
                                "您的投诉举报 {} 经{from}认定不属于其职责范围，已退回社会信用主管部门，\
                                 将另行移送或处理。\n\
                                 Your complaint {} was returned by the {} department of {} as \
                                 outside its competence; the regulator will handle it or refer it again.",
                                row.tracking_number,
                                row.tracking_number,
                                row.department,
                                row.department_tenant
                            ),
                            now,
                        )
                        .await?;
                    }
                    tracing::info!(tenant = %row.tenant, tracking_number = %row.tracking_number, referral_id = %id, "referral declined");
                }
                let referral = referral_store::find(&mut tx, id)
                    .await?
                    .map(|r| referral_proto(r, &api.contacts))
                    .ok_or_else(|| Error::internal("a referral just written is missing"))?;
                Ok((
                    tx,
                    Written {
                        value: DeclineReferralResponse {
                            referral: Some(referral),
                        },
                        tenant: row.tenant,
                    },
                ))
            })
            .await
    })
    .await
}

/// Seals the complainant's contact of referrals stored before contacts were sealed, once, so
/// that none waits in clear; the hash of what is sent stays as it was. Answers how many.
pub async fn seal_stored_contacts(
    store: &ServiceStore,
    contacts: &ContactKey,
) -> Result<usize, StorageError> {
    let mut conn = store.db.acquire().await?;
    let mut sealed = 0;
    for (referral_id, payload) in referral_store::unsealed(&mut conn).await? {
        let Ok(mut referral) = hex::decode(&payload)
            .map_err(|e| e.to_string())
            .and_then(|b| Referral::decode(b.as_slice()).map_err(|e| e.to_string()))
        else {
            continue;
        };
        if referral.complainant_contact.is_empty() {
            continue;
        }
        let sealed_contact = contacts
            .seal(&referral_id, &referral.complainant_contact)
            .map_err(|e| StorageError::Other(format!("sealing a contact: {e}")))?;
        referral.complainant_contact.clear();
        let unsealed = hex::encode(referral.encode_to_vec());
        if referral_store::seal_contact(
            &mut conn,
            &referral_id,
            &payload,
            &unsealed,
            &sealed_contact,
        )
        .await?
        {
            sealed += 1;
        }
    }
    Ok(sealed)
}
