//! The review desk: open tasks by deadline, a task with its materials, and the decision on
//! the grounds the Measures give (Art. 9, 12, 18).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use creditmesh_proto::filing::v1::{
    Filing, GetFilingRequest, ReadDocumentRequest, read_document_response,
};
use creditmesh_proto::review::v1::{
    ChangeRefusalGround, DecideReviewTaskRequest, DeregistrationRefusalGround,
    GetReviewTaskRequest, ListReviewTasksRequest, RefusalGround, ReviewTask, TaskKind, TaskStatus,
};
use http::StatusCode;
use serde::Deserialize;

use super::{
    Desk, Frame, after_write, failed, field, form_pairs, request_id, shown, streamed_file,
};

pub struct Row {
    pub task_id: String,
    pub kind: &'static str,
    pub agency_name: String,
    pub uscc: String,
    pub tenant: String,
    pub due: String,
    pub days_left: String,
    pub provisional: bool,
    pub overdue: bool,
}

fn kind_name(kind: i32) -> &'static str {
    match TaskKind::try_from(kind).unwrap_or_default() {
        TaskKind::Filing => "建档 · filing",
        TaskKind::Change => "变更 · change",
        TaskKind::Deregistration => "注销 · deregistration",
        TaskKind::Supervision => "监管事项 · supervision",
        TaskKind::Unspecified => "未知 · unknown",
    }
}

fn status_name(status: i32) -> &'static str {
    match TaskStatus::try_from(status).unwrap_or_default() {
        TaskStatus::Open => "待审核 · open",
        TaskStatus::Approved => "已批准 · approved",
        TaskStatus::Refused => "不予建档 · refused",
        TaskStatus::Forwarded => "已报送自治区 · forwarded to the region",
        TaskStatus::Closed => "已办结 · closed",
        TaskStatus::Withdrawn => "已撤回 · withdrawn",
        TaskStatus::Unspecified => "未知 · unknown",
    }
}

fn row(t: &ReviewTask) -> Row {
    let deadline = t.deadline.clone().unwrap_or_default();
    let open = t.status == TaskStatus::Open as i32;
    Row {
        task_id: t.task_id.clone(),
        kind: kind_name(t.kind),
        agency_name: t.agency_name.clone(),
        uscc: t.uscc.clone(),
        tenant: super::division(&t.tenant),
        due: deadline.due_date.clone(),
        days_left: if open && !deadline.due_date.is_empty() {
            t.working_days_left.to_string()
        } else {
            "—".into()
        },
        provisional: deadline.provisional,
        overdue: t.overdue,
    }
}

#[derive(Template)]
#[template(path = "console/queue.html")]
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

/// Open tasks, the nearest deadline first; those without one (supervision) last.
pub async fn queue(State(mut desk): State<Desk>, Query(q): Query<QueueQuery>) -> Response {
    let listed = desk
        .review
        .list_review_tasks(ListReviewTasksRequest {
            statuses: vec![TaskStatus::Open as i32],
            page_size: 100,
            page_token: q.page,
            ..Default::default()
        })
        .await;
    let listed = match listed {
        Ok(r) => r.into_inner(),
        Err(status) => return failed(&status),
    };
    let mut rows: Vec<Row> = listed.tasks.iter().map(row).collect();
    super::nearest_first(&mut rows, |r| (&r.due, &r.task_id));
    Html(crate::page::render(Queue {
        f: Frame::new("审核队列 · Review queue"),
        rows,
        next: listed.next_page_token,
    }))
    .into_response()
}

pub struct Document {
    pub field: String,
    pub href: String,
}

pub struct Ground {
    pub value: i32,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "console/task.html")]
struct TaskPage {
    f: Frame,
    task: Row,
    status: &'static str,
    open: bool,
    checks: Vec<String>,
    filing: Option<Filing>,
    documents: Vec<Document>,
    grounds: Vec<Ground>,
    grounds_field: &'static str,
    approve_label: &'static str,
    request_id: String,
    action: String,
    errors: Vec<String>,
    reason: String,
}

fn grounds_of(kind: i32) -> (&'static str, Vec<Ground>) {
    let g = |value: i32, label| Ground { value, label };
    match TaskKind::try_from(kind).unwrap_or_default() {
        TaskKind::Filing => (
            "ground",
            vec![
                g(
                    RefusalGround::NoCreditServiceInScope as i32,
                    "经营范围不含信用服务（第九条第一项） · no credit service in the business scope (Art. 9(1))",
                ),
                g(
                    RefusalGround::SevereDishonesty as i32,
                    "机构或其主要人员被列入严重失信主体名单（第九条第二项） · the agency or a principal is severely dishonest (Art. 9(2))",
                ),
                g(
                    RefusalGround::FalseInformation as i32,
                    "提供虚假材料（第九条第三项） · false information (Art. 9(3))",
                ),
                g(
                    RefusalGround::OtherSeriousViolation as i32,
                    "其他严重违法违规情形（第九条第四项） · another serious violation (Art. 9(4))",
                ),
            ],
        ),
        TaskKind::Change => (
            "change_ground",
            vec![
                g(
                    ChangeRefusalGround::IncompleteMaterials as i32,
                    "变更信息资料不全（第十二条） · change materials incomplete (Art. 12)",
                ),
                g(
                    ChangeRefusalGround::FalseInformation as i32,
                    "变更事项虚假（第八条、第九条第三项） · the changed facts are false (Art. 8, 9(3))",
                ),
                g(
                    ChangeRefusalGround::ConditionsNotMet as i32,
                    "变更后不符合第六条条件 · the conditions of Art. 6 are no longer met",
                ),
                g(
                    ChangeRefusalGround::SevereDishonesty as i32,
                    "变更涉及的人员被列入严重失信主体名单（第九条第二项） · a principal named is severely dishonest (Art. 9(2))",
                ),
            ],
        ),
        TaskKind::Deregistration => (
            "deregistration_ground",
            vec![
                g(
                    DeregistrationRefusalGround::DisposalPlanInadequate as i32,
                    "信用信息数据库处置方案不当（第十八条） · the database disposal plan is inadequate (Art. 18)",
                ),
                g(
                    DeregistrationRefusalGround::IncompleteMaterials as i32,
                    "注销材料不全（第十八条） · materials incomplete (Art. 18)",
                ),
            ],
        ),
        _ => ("ground", Vec::new()),
    }
}

fn field_name(field: &str) -> String {
    // `credit_commitment.letter`, `model_documents[0]`: named by the submission's field.
    let field = field.split(['.', '[']).next().unwrap_or_default();
    let zh = match field {
        "application_form_document" => "建档申请表",
        "business_licence" => "营业执照",
        "articles_of_association" => "公司章程",
        "senior_management_register" => "高级管理人员名册",
        "technical_staff_register" => "专业技术人员名册",
        "annual_credit_service_report" => "上一年度信用服务业务报告",
        "credit_commitment" => "信用承诺书",
        "fee_schedule" => "收费标准",
        "model_documents" => "业务文书范本",
        "other_materials" => "其他材料",
        _ => "材料",
    };
    format!("{zh} · {}", field.replace('_', " "))
}

fn document_href(filing_id: &str, sha256: &str, task_id: &str) -> String {
    let task: String = form_urlencoded::byte_serialize(task_id.as_bytes()).collect();
    format!("/filings/{filing_id}/documents/{sha256}?task={task}")
}

async fn task_page(
    desk: &mut Desk,
    task_id: &str,
    errors: Vec<String>,
    reason: String,
) -> Result<TaskPage, tonic::Status> {
    let task = desk
        .review
        .get_review_task(GetReviewTaskRequest {
            task_id: task_id.to_owned(),
        })
        .await?
        .into_inner()
        .task
        .unwrap_or_default();
    let filing = if task.filing_id.is_empty() {
        None
    } else {
        desk.filing
            .get_filing(GetFilingRequest {
                filing_id: task.filing_id.clone(),
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().filing)
    };
    let documents = filing
        .iter()
        .flat_map(|f| &f.documents)
        .map(|d| Document {
            field: field_name(&d.field),
            href: document_href(&task.filing_id, &d.sha256, &task.task_id),
        })
        .collect();
    let (grounds_field, grounds) = grounds_of(task.kind);
    let supervision = task.kind == TaskKind::Supervision as i32;
    let path = format!("/review/{}/decision", task.task_id);
    let f = Frame::new(format!("审核任务 · Review task {}", task.task_id));
    Ok(TaskPage {
        action: f.action(&path),
        f,
        status: status_name(task.status),
        open: task.status == TaskStatus::Open as i32,
        checks: task
            .automatic_checks
            .iter()
            .map(|c| c.evidence.clone())
            .collect(),
        task: row(&task),
        filing,
        documents,
        grounds,
        grounds_field,
        approve_label: if supervision {
            "办结 · Close"
        } else {
            "予以建档 / 批准 · Approve"
        },
        request_id: request_id(),
        errors,
        reason,
    })
}

pub async fn task(State(mut desk): State<Desk>, Path(task_id): Path<String>) -> Response {
    shown(
        task_page(&mut desk, &task_id, Vec::new(), String::new()).await,
        StatusCode::OK,
    )
}

/// Decides the task as the form says; the form's `request_id` makes a second send of the same
/// form answer as the first.
pub async fn decide(
    State(mut desk): State<Desk>,
    Path(task_id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let numbers = |name: &str| -> Vec<i32> {
        pairs
            .iter()
            .filter(|(k, _)| k == name)
            .filter_map(|(_, v)| v.parse().ok())
            .collect()
    };
    let reason = field(&pairs, "reason").trim().to_owned();
    let request = DecideReviewTaskRequest {
        request_id: field(&pairs, "request_id").to_owned(),
        task_id: task_id.clone(),
        approve: field(&pairs, "decision") == "approve",
        grounds: numbers("ground"),
        change_grounds: numbers("change_ground"),
        deregistration_grounds: numbers("deregistration_ground"),
        reason: reason.clone(),
    };
    let outcome = desk
        .review
        .decide_review_task(request)
        .await
        .map(|_| String::new());
    after_write(
        outcome,
        |_| format!("/review/{task_id}"),
        |errors| task_page(&mut desk, &task_id, errors, reason),
    )
    .await
}

#[derive(Deserialize)]
pub struct DocumentQuery {
    #[serde(default)]
    task: String,
}

/// A filing's document, opened in the browser; the read is recorded with the review task it
/// was opened for as its purpose.
pub async fn document(
    State(mut desk): State<Desk>,
    Path((filing_id, sha256)): Path<(String, String)>,
    Query(q): Query<DocumentQuery>,
) -> Response {
    let purpose = if q.task.is_empty() {
        "监管工作台查阅 · opened in the console".to_owned()
    } else {
        format!("审核任务 {} · review task {}", q.task, q.task)
    };
    let call = desk
        .filing
        .read_document(ReadDocumentRequest {
            filing_id,
            sha256,
            purpose,
        })
        .await;
    streamed_file(
        call,
        |m| match m.part? {
            read_document_response::Part::Metadata(meta) => Some(Ok(meta)),
            read_document_response::Part::Chunk(bytes) => Some(Err(bytes)),
        },
        |meta| (meta.media_type.clone(), meta.file_name.clone()),
    )
    .await
}
