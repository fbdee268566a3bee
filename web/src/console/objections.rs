//! The objections desk (Art. 22): a subject's access code issued at the desk (shown once, to
//! print and hand over), and the objections this authority decides — those to what an agency
//! pushed whose filing is gone (revoked or deregistered), which the authority holding it
//! decides in its place.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use creditmesh_proto::datapush::v1::{
    IssueSubjectAccessCodeRequest, ListObjectionsRequest, ObjectionDecision, ObjectionGround,
    ReadObjectionMaterialRequest, ResolveObjectionRequest, SubjectKind,
    read_objection_material_response,
};
use http::StatusCode;

use super::{
    Desk, Frame, after_write, failed, field, form_pairs, request_id, shown, streamed_file,
    violations,
};
use crate::Lang;

pub struct Item {
    pub objection_id: String,
    pub record_id: String,
    pub agency: String,
    pub ground: String,
    pub statement: String,
    pub filed: String,
    pub due: String,
    pub overdue: bool,
    /// Each supporting material's link.
    pub materials: Vec<String>,
    pub action: String,
    pub request_id: String,
}

/// A code just issued, shown this once.
pub struct Issued {
    pub identifier: String,
    pub code: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "console/objections.html")]
struct DeskPage {
    f: Frame,
    items: Vec<Item>,
    issued: Option<Issued>,
    issue_action: String,
    issue_id: String,
    errors: Vec<String>,
}

async fn desk_page(
    desk: &mut Desk,
    issued: Option<Issued>,
    errors: Vec<String>,
) -> Result<DeskPage, tonic::Status> {
    let listed = desk
        .datapush
        .list_objections(ListObjectionsRequest {
            open_only: true,
            page_size: 100,
            ..Default::default()
        })
        .await?
        .into_inner();
    let f = Frame::new("异议处理 · Objections");
    let items = listed
        .objections
        .into_iter()
        .map(|o| {
            let ground = ObjectionGround::try_from(o.ground).unwrap_or_default();
            Item {
                action: f.action(&format!("/objections/{}", o.objection_id)),
                request_id: request_id(),
                ground: format!("{} · {}", Lang::Zh.ground(ground), Lang::En.ground(ground)),
                filed: o
                    .filed_at
                    .as_ref()
                    .map(|t| crate::page::cst_minute(t.seconds))
                    .unwrap_or_default(),
                due: o.deadline.map(|d| d.due_date).unwrap_or_default(),
                materials: o
                    .materials
                    .iter()
                    .map(|m| format!("/objections/{}/materials/{}", o.objection_id, m.material_id))
                    .collect(),
                objection_id: o.objection_id,
                record_id: o.record_id,
                agency: o.agency_uscc,
                statement: o.statement,
                overdue: o.overdue,
            }
        })
        .collect();
    Ok(DeskPage {
        issue_action: f.action("/objections/access-codes"),
        f,
        items,
        issued,
        issue_id: request_id(),
        errors,
    })
}

pub async fn desk(State(mut desk): State<Desk>) -> Response {
    shown(desk_page(&mut desk, None, Vec::new()).await, StatusCode::OK)
}

/// Issues a subject's access code and shows it once: it is not kept but as a keyed hash.
pub async fn issue_code(State(mut desk): State<Desk>, body: Bytes) -> Response {
    let pairs = form_pairs(&body);
    let kind = match field(&pairs, "subject_kind") {
        "organisation" => SubjectKind::Organisation,
        _ => SubjectKind::Person,
    };
    let identifier = field(&pairs, "subject_identifier").trim().to_owned();
    let issued = desk
        .datapush
        .issue_subject_access_code(IssueSubjectAccessCodeRequest {
            request_id: field(&pairs, "request_id").to_owned(),
            subject_kind: kind as i32,
            subject_identifier: identifier.clone(),
        })
        .await;
    match issued {
        Ok(r) => {
            let r = r.into_inner();
            let issued = Issued {
                identifier: match kind {
                    SubjectKind::Person => creditmesh_domain::mask::identity_number(&identifier),
                    _ => identifier,
                },
                code: r.access_code,
                expires: r
                    .expires_at
                    .as_ref()
                    .map(|t| crate::page::cst_minute(t.seconds))
                    .unwrap_or_default(),
            };
            shown(
                desk_page(&mut desk, Some(issued), Vec::new()).await,
                StatusCode::OK,
            )
        }
        Err(status) if status.code() == tonic::Code::InvalidArgument => shown(
            desk_page(&mut desk, None, violations(&status)).await,
            StatusCode::BAD_REQUEST,
        ),
        Err(status) => failed(&status),
    }
}

/// Decides an objection as the form says.
pub async fn decide(
    State(mut desk): State<Desk>,
    Path(objection_id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let decision = match field(&pairs, "decision") {
        "correct" => ObjectionDecision::Correct,
        "delete" => ObjectionDecision::Delete,
        "keep" => ObjectionDecision::Keep,
        _ => ObjectionDecision::Unspecified,
    };
    let decided = desk
        .datapush
        .resolve_objection(ResolveObjectionRequest {
            request_id: field(&pairs, "request_id").to_owned(),
            objection_id,
            decision: decision as i32,
            reasons: field(&pairs, "reasons").trim().to_owned(),
            corrected_content: field(&pairs, "corrected_content")
                .trim()
                .as_bytes()
                .to_vec(),
        })
        .await;
    after_write(
        decided.map(|_| String::new()),
        |_| "/objections?decided=1".to_owned(),
        |errors| desk_page(&mut desk, None, errors),
    )
    .await
}

/// An objection's supporting material, opened to decide it; the read is recorded with that
/// purpose.
pub async fn material(
    State(mut desk): State<Desk>,
    Path((objection_id, material_id)): Path<(String, String)>,
) -> Response {
    let call = desk
        .datapush
        .read_objection_material(ReadObjectionMaterialRequest {
            purpose: format!("处理异议 {objection_id} · deciding objection {objection_id}"),
            objection_id,
            material_id,
        })
        .await;
    streamed_file(
        call,
        |m| match m.part? {
            read_objection_material_response::Part::Metadata(meta) => Some(Ok(meta)),
            read_objection_material_response::Part::Chunk(bytes) => Some(Err(bytes)),
        },
        // Its name is not kept (it may name the person): shown by its id.
        |meta| (meta.media_type.clone(), meta.material_id.clone()),
    )
    .await
}
