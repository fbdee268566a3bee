//! The complaints desk (Art. 24-25): complaints by deadline; one complaint with its history,
//! evidence and referrals (receipts and declines); accepting it, resolving it on a verified
//! finding, or referring it to the competent department — to its node, or by letter.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use creditmesh_proto::complaints::v1::{
    AcceptComplaintRequest, Complaint, ComplaintStatus, Department, GetComplaintRequest,
    ListComplaintsRequest, ReadEvidenceRequest, ReferComplaintRequest, ReferralLetter,
    ReferralStatus, ResolveComplaintRequest, read_evidence_response,
};
use http::StatusCode;
use serde::Deserialize;

use super::supervision::{Category, categories};
use super::{
    Desk, Frame, after_write, failed, field, form_pairs, request_id, shown, streamed_file,
};
use crate::Lang;

pub struct Row {
    pub tracking_number: String,
    pub status: String,
    pub agency: String,
    pub subject: String,
    pub due: String,
    pub provisional: bool,
    pub overdue: bool,
}

fn status_name(s: i32) -> String {
    let s = ComplaintStatus::try_from(s).unwrap_or_default();
    format!(
        "{} · {}",
        Lang::Zh.complaint_status(s),
        Lang::En.complaint_status(s)
    )
}

/// The deadline that runs now: acceptance while received, handling once accepted.
fn running(c: &Complaint) -> (String, bool) {
    let d = if c.status == ComplaintStatus::Received as i32 {
        c.acceptance_deadline.as_ref()
    } else {
        c.handling_deadline.as_ref()
    };
    d.map(|d| (d.due_date.clone(), d.provisional))
        .unwrap_or_default()
}

fn row(c: &Complaint) -> Row {
    let (due, provisional) = running(c);
    Row {
        tracking_number: c.tracking_number.clone(),
        status: status_name(c.status),
        agency: format!("{} {}", c.agency_name, c.agency_uscc),
        subject: c.subject.clone(),
        due,
        provisional,
        overdue: c.overdue,
    }
}

#[derive(Template)]
#[template(path = "console/complaints.html")]
struct Queue {
    f: Frame,
    rows: Vec<Row>,
    next: String,
}

#[derive(Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    page: String,
}

/// Complaints not yet resolved or referred, the nearest deadline first.
pub async fn queue(State(mut desk): State<Desk>, Query(q): Query<QueueQuery>) -> Response {
    let listed = desk
        .complaints
        .list_complaints(ListComplaintsRequest {
            statuses: vec![
                ComplaintStatus::Received as i32,
                ComplaintStatus::Accepted as i32,
            ],
            page_size: 100,
            page_token: q.page,
            ..Default::default()
        })
        .await;
    let listed = match listed {
        Ok(r) => r.into_inner(),
        Err(status) => return failed(&status),
    };
    let mut rows: Vec<Row> = listed.complaints.iter().map(row).collect();
    super::nearest_first(&mut rows, |r| (&r.due, &r.tracking_number));
    Html(crate::page::render(Queue {
        f: Frame::new("投诉办理 · Complaints"),
        rows,
        next: listed.next_page_token,
    }))
    .into_response()
}

pub struct Change {
    pub at: String,
    pub status: String,
    pub note: String,
    pub by: String,
}

pub struct ReferralView {
    pub department: String,
    pub status: &'static str,
    pub referred_at: String,
    pub receipt: String,
    pub declined: String,
    pub letter: String,
}

pub struct Choice {
    pub value: i32,
    pub label: String,
}

#[derive(Template)]
#[template(path = "console/complaint.html")]
struct ComplaintPage {
    f: Frame,
    c: Complaint,
    status: String,
    due: String,
    provisional: bool,
    history: Vec<Change>,
    evidence: Vec<(String, String)>,
    referrals: Vec<ReferralView>,
    received: bool,
    accepted: bool,
    categories: Vec<Category>,
    departments: Vec<Choice>,
    accept_action: String,
    resolve_action: String,
    refer_action: String,
    accept_id: String,
    resolve_id: String,
    refer_id: String,
    errors: Vec<String>,
}

fn referral_status(s: i32) -> &'static str {
    match ReferralStatus::try_from(s).unwrap_or_default() {
        ReferralStatus::Pending => "待送达 · pending",
        ReferralStatus::Delivered => "已送达（回执已验证） · delivered, receipt verified",
        ReferralStatus::Acknowledged => "已确认受理 · acknowledged",
        ReferralStatus::Declined => "已退回 · declined",
        ReferralStatus::SentByLetter => "已函送 · sent by letter",
        ReferralStatus::Unspecified => "未知 · unknown",
    }
}

fn minute(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .map(|t| crate::page::cst_minute(t.seconds))
        .unwrap_or_default()
}

fn departments() -> Vec<Choice> {
    use Department::*;
    [
        MarketRegulation,
        Cyberspace,
        DigitalDevelopment,
        CivilAffairs,
        HumanResourcesSocialSecurity,
        PublicSecurity,
        PbocBranch,
        Other,
    ]
    .into_iter()
    .map(|d| Choice {
        value: d as i32,
        label: format!("{} · {}", Lang::Zh.department(d), Lang::En.department(d)),
    })
    .collect()
}

async fn complaint_page(
    desk: &mut Desk,
    tracking_number: &str,
    errors: Vec<String>,
) -> Result<ComplaintPage, tonic::Status> {
    let c = desk
        .complaints
        .get_complaint(GetComplaintRequest {
            tracking_number: tracking_number.to_owned(),
        })
        .await?
        .into_inner()
        .complaint
        .unwrap_or_default();
    let (due, provisional) = running(&c);
    let tn: String = form_urlencoded::byte_serialize(c.tracking_number.as_bytes()).collect();
    let f = Frame::new(format!("投诉 · Complaint {}", c.tracking_number));
    Ok(ComplaintPage {
        accept_action: f.action(&format!("/complaints/{tn}/accept")),
        resolve_action: f.action(&format!("/complaints/{tn}/resolve")),
        refer_action: f.action(&format!("/complaints/{tn}/refer")),
        f,
        status: status_name(c.status),
        due,
        provisional,
        history: c
            .history
            .iter()
            .map(|h| Change {
                at: minute(&h.changed_at),
                status: Lang::Zh.complaint_status_named(&h.status),
                note: if h.note_zh.is_empty() {
                    h.note.clone()
                } else {
                    format!("{} · {}", h.note_zh, h.note)
                },
                by: h.principal.clone(),
            })
            .collect(),
        evidence: c
            .evidence
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    format!("证据 {} · evidence {}", i + 1, i + 1),
                    format!("/complaints/{tn}/evidence/{}", d.sha256),
                )
            })
            .collect(),
        referrals: c
            .referrals
            .iter()
            .map(|r| ReferralView {
                department: if r.department_name.is_empty() {
                    Department::try_from(r.department)
                        .map(|d| Lang::Zh.department(d).to_owned())
                        .unwrap_or_default()
                } else {
                    r.department_name.clone()
                } + " · "
                    + &super::division(&r.department_tenant),
                status: referral_status(r.status),
                referred_at: minute(&r.referred_at),
                receipt: r
                    .receipt
                    .as_ref()
                    .map(|rc| minute(&rc.received_at))
                    .unwrap_or_default(),
                declined: if r.decline_reason.is_empty() {
                    String::new()
                } else {
                    format!("{}：{}", minute(&r.declined_at), r.decline_reason)
                },
                letter: r
                    .letter
                    .as_ref()
                    .map(|l| format!("{}（{}）", l.reference, l.sent_on))
                    .unwrap_or_default(),
            })
            .collect(),
        received: c.status == ComplaintStatus::Received as i32,
        accepted: c.status == ComplaintStatus::Accepted as i32,
        categories: categories(),
        departments: departments(),
        accept_id: request_id(),
        resolve_id: request_id(),
        refer_id: request_id(),
        errors,
        c,
    })
}

pub async fn complaint(State(mut desk): State<Desk>, Path(tn): Path<String>) -> Response {
    shown(
        complaint_page(&mut desk, &tn, Vec::new()).await,
        StatusCode::OK,
    )
}

/// After a write: back to the complaint, or the complaint with what was wrong.
async fn answered(desk: &mut Desk, tn: &str, outcome: Result<(), tonic::Status>) -> Response {
    after_write(
        outcome.map(|()| String::new()),
        |_| {
            let tn: String = form_urlencoded::byte_serialize(tn.as_bytes()).collect();
            format!("/complaints/{tn}")
        },
        |errors| complaint_page(desk, tn, errors),
    )
    .await
}

pub async fn accept(State(mut desk): State<Desk>, Path(tn): Path<String>, body: Bytes) -> Response {
    let pairs = form_pairs(&body);
    let outcome = desk
        .complaints
        .accept_complaint(AcceptComplaintRequest {
            request_id: field(&pairs, "request_id").to_owned(),
            tracking_number: tn.clone(),
        })
        .await
        .map(|_| ());
    answered(&mut desk, &tn, outcome).await
}

pub async fn resolve(
    State(mut desk): State<Desk>,
    Path(tn): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let against = field(&pairs, "against_agency") == "yes";
    let outcome = desk
        .complaints
        .resolve_complaint(ResolveComplaintRequest {
            request_id: field(&pairs, "request_id").to_owned(),
            tracking_number: tn.clone(),
            outcome: field(&pairs, "outcome").trim().to_owned(),
            verified: field(&pairs, "verified").trim().to_owned(),
            against_agency: against,
            category: if against {
                field(&pairs, "category").parse().unwrap_or_default()
            } else {
                0
            },
        })
        .await
        .map(|_| ());
    answered(&mut desk, &tn, outcome).await
}

pub async fn refer(State(mut desk): State<Desk>, Path(tn): Path<String>, body: Bytes) -> Response {
    let pairs = form_pairs(&body);
    let by_letter = field(&pairs, "channel") == "letter";
    let outcome = desk
        .complaints
        .refer_complaint(ReferComplaintRequest {
            request_id: field(&pairs, "request_id").to_owned(),
            tracking_number: tn.clone(),
            department: field(&pairs, "department").parse().unwrap_or_default(),
            department_tenant: field(&pairs, "department_tenant").trim().to_owned(),
            reason: field(&pairs, "reason").trim().to_owned(),
            share_evidence: field(&pairs, "share_evidence") == "yes",
            department_name: field(&pairs, "department_name").trim().to_owned(),
            letter: by_letter.then(|| ReferralLetter {
                reference: field(&pairs, "letter_reference").trim().to_owned(),
                sent_on: field(&pairs, "letter_sent_on").trim().to_owned(),
            }),
        })
        .await
        .map(|_| ());
    answered(&mut desk, &tn, outcome).await
}

/// A complaint's evidence, its read recorded with the complaint as its purpose.
pub async fn evidence(
    State(mut desk): State<Desk>,
    Path((tn, sha256)): Path<(String, String)>,
) -> Response {
    let call = desk
        .complaints
        .read_evidence(ReadEvidenceRequest {
            purpose: format!("办理投诉 {tn} · handling complaint {tn}"),
            tracking_number: tn,
            sha256,
        })
        .await;
    streamed_file(
        call,
        |m| match m.part? {
            read_evidence_response::Part::Metadata(meta) => Some(Ok(meta)),
            read_evidence_response::Part::Chunk(bytes) => Some(Err(bytes)),
        },
        // Evidence is named by its digest: the complainant's file name may name people.
        |meta| {
            let name = meta.document.as_ref().map(|d| d.sha256.clone());
            (meta.media_type.clone(), name.unwrap_or_default())
        },
    )
    .await
}
