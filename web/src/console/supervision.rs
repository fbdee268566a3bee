//! Supervision of one agency: its credit file and risk tier, and the acts recorded in it —
//! interviews (约谈, Art. 15) and findings of prohibited conduct (Art. 13, 16).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use creditmesh_proto::review::v1::{
    FindingCategory, GetCreditFileRequest, RecordFindingRequest, RecordInterviewRequest, RiskTier,
};
use http::StatusCode;

use super::{Desk, Frame, failed, field, form_pairs, request_id, violations};

pub struct Entry {
    pub recorded: String,
    pub kind: String,
    pub tenant: String,
    pub summary: String,
}

pub struct Category {
    pub value: i32,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "console/agency.html")]
struct AgencyPage {
    f: Frame,
    uscc: String,
    tier: &'static str,
    entries: Vec<Entry>,
    categories: Vec<Category>,
    interview_action: String,
    finding_action: String,
    interview_id: String,
    finding_id: String,
    errors: Vec<String>,
}

fn tier_name(tier: i32) -> &'static str {
    match RiskTier::try_from(tier).unwrap_or_default() {
        RiskTier::Low => "低 · low",
        RiskTier::Medium => "中 · medium",
        RiskTier::High => "高 · high",
        RiskTier::Unspecified => "未评定 · not set",
    }
}

fn kind_name(kind: &str) -> String {
    let zh = match kind {
        "filing" => "建档",
        "decision" => "审核决定",
        "change" => "变更",
        "annual_report" => "年度报告",
        "interview" => "约谈",
        "rectification" => "责令整改",
        "inspection" => "检查",
        "finding" => "违规认定",
        "revocation" => "撤销建档",
        "ban" => "禁止重新建档",
        "complaint_finding" => "投诉核查结论",
        "disposal" => "数据库处置",
        "objection_overdue" => "异议逾期未处理",
        _ => "记录",
    };
    format!("{zh} · {}", kind.replace('_', " "))
}

pub fn categories() -> Vec<Category> {
    use FindingCategory::*;
    let c = |v: FindingCategory, label| Category {
        value: v as i32,
        label,
    };
    vec![
        c(
            MisleadingPromotion,
            "虚假或引人误解的宣传（第十三条） · misleading promotion (Art. 13)",
        ),
        c(
            PromisedRating,
            "承诺评价结果（第十三条） · promised a rating (Art. 13)",
        ),
        c(
            FeeLinkedResult,
            "评价结果与收费挂钩（第十三条） · result tied to the fee (Art. 13)",
        ),
        c(
            ConflictOfInterest,
            "与自身职责冲突（第十三条） · conflict of interest (Art. 13)",
        ),
        c(
            FalseEvaluation,
            "虚假评价（第十三条） · false evaluation (Art. 13)",
        ),
        c(
            CertificateLent,
            "出借从业证书（第十三条） · certificate lent (Art. 13)",
        ),
        c(
            OutsideBusinessScope,
            "超出经营范围（第十三条） · outside the business scope (Art. 13)",
        ),
        c(
            ObstructedInspection,
            "拒绝、阻碍监督检查（第十四条） · obstructed an inspection (Art. 14)",
        ),
        c(
            UnlawfulCollection,
            "非法采集、买卖信用信息（第十六条第一项） · unlawful collection (Art. 16(1))",
        ),
        c(
            InformationLeakedOrFalsified,
            "泄露、篡改、虚构信用信息（第十六条第二项） · leaked or falsified (Art. 16(2))",
        ),
        c(
            UnauthorisedQuery,
            "未经授权查询（第十六条第三项） · unauthorised query (Art. 16(3))",
        ),
        c(
            MaliciousEvaluation,
            "恶意评价（第十六条第五项） · malicious evaluation (Art. 16(5))",
        ),
        c(
            UnlistedFee,
            "收取未公示的费用（第十九条） · unlisted fee (Art. 19)",
        ),
        c(
            OtherViolation,
            "其他违反本办法的行为（第十七条） · another breach (Art. 17)",
        ),
    ]
}

async fn agency_page(
    desk: &mut Desk,
    uscc: &str,
    errors: Vec<String>,
) -> Result<AgencyPage, tonic::Status> {
    let file = desk
        .review
        .get_credit_file(GetCreditFileRequest {
            uscc: uscc.to_owned(),
            page_size: 500,
            ..Default::default()
        })
        .await?
        .into_inner();
    let f = Frame::new(format!("监管档案 · Credit file {uscc}"));
    Ok(AgencyPage {
        interview_action: f.action(&format!("/agencies/{uscc}/interviews")),
        finding_action: f.action(&format!("/agencies/{uscc}/findings")),
        f,
        uscc: uscc.to_owned(),
        tier: tier_name(file.risk_tier),
        entries: file
            .entries
            .iter()
            .rev()
            .map(|e| Entry {
                recorded: e
                    .recorded_at
                    .as_ref()
                    .map(|t| crate::page::cst_minute(t.seconds))
                    .unwrap_or_default(),
                kind: kind_name(&e.kind),
                tenant: e.tenant.clone(),
                summary: e.summary.clone(),
            })
            .collect(),
        categories: categories(),
        interview_id: request_id(),
        finding_id: request_id(),
        errors,
    })
}

#[derive(serde::Deserialize)]
pub struct Lookup {
    #[serde(default)]
    uscc: String,
}

/// The home page's lookup: the agency's file by its code.
pub async fn lookup(axum::extract::Query(q): axum::extract::Query<Lookup>) -> Response {
    let uscc: String = q
        .uscc
        .trim()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase();
    Redirect::to(&format!("/agencies/{uscc}")).into_response()
}

pub async fn agency(State(mut desk): State<Desk>, Path(uscc): Path<String>) -> Response {
    match agency_page(&mut desk, &uscc, Vec::new()).await {
        Ok(page) => Html(crate::page::render(page)).into_response(),
        Err(status) => failed(&status),
    }
}

/// After a write: back to the agency's file, or the file with what was wrong.
async fn answered(desk: &mut Desk, uscc: &str, outcome: Result<(), tonic::Status>) -> Response {
    match outcome {
        Ok(()) => Redirect::to(&format!("/agencies/{uscc}")).into_response(),
        Err(status)
            if status.code() == tonic::Code::InvalidArgument
                || status.code() == tonic::Code::FailedPrecondition =>
        {
            match agency_page(desk, uscc, violations(&status)).await {
                Ok(page) => {
                    (StatusCode::BAD_REQUEST, Html(crate::page::render(page))).into_response()
                }
                Err(status) => failed(&status),
            }
        }
        Err(status) => failed(&status),
    }
}

pub async fn interview(
    State(mut desk): State<Desk>,
    Path(uscc): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let outcome = desk
        .review
        .record_interview(RecordInterviewRequest {
            request_id: field(&pairs, "request_id").to_owned(),
            uscc: uscc.clone(),
            held_on: field(&pairs, "held_on").trim().to_owned(),
            subject: field(&pairs, "subject").trim().to_owned(),
            summary: field(&pairs, "summary").trim().to_owned(),
            ..Default::default()
        })
        .await
        .map(|_| ());
    answered(&mut desk, &uscc, outcome).await
}

pub async fn finding(
    State(mut desk): State<Desk>,
    Path(uscc): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let outcome = desk
        .review
        .record_finding(RecordFindingRequest {
            request_id: field(&pairs, "request_id").to_owned(),
            uscc: uscc.clone(),
            category: field(&pairs, "category").parse().unwrap_or_default(),
            description: field(&pairs, "description").trim().to_owned(),
            ..Default::default()
        })
        .await
        .map(|_| ());
    answered(&mut desk, &uscc, outcome).await
}
