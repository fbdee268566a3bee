//! Supervision (Art. 13-16): the agencies this authority holds, and one agency's credit file
//! with the acts recorded in it — interviews (约谈), inspections, rectification orders and
//! their outcomes, findings of prohibited conduct by category, the risk tier — and the
//! spot-check draw. An agency that never filed is supervised by its code and name (Art. 2).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use creditmesh_proto::filing::v1::{FilingStatus, ListFilingsRequest};
use creditmesh_proto::review::v1::{
    CreditFileEntry, DrawSpotCheckRequest, FindingCategory, GetCreditFileRequest, RiskTier,
};
use http::StatusCode;
use serde::Deserialize;

use super::acts::Party;
use super::{Desk, Frame, after_write, failed, field, form_pairs, request_id, shown};

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

/// A form of the page: where it posts (with its token) and its idempotency key.
pub struct Form {
    pub action: String,
    pub request_id: String,
}

impl Form {
    pub fn to(f: &Frame, path: String) -> Self {
        Self {
            action: f.action(&path),
            request_id: request_id(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/agency.html")]
struct AgencyPage {
    f: Frame,
    uscc: String,
    tier: &'static str,
    entries: Vec<Entry>,
    categories: Vec<Category>,
    interview: Form,
    finding: Form,
    inspection: Form,
    order: Form,
    outcome: Form,
    risk: Form,
    errors: Vec<String>,
    done: String,
    /// The acts' forms ask for the name of an agency that never filed.
    unfiled: bool,
    /// Fields every act's form carries (none: the agency is in the address).
    hidden: Vec<(&'static str, String)>,
}

/// A credit file's entries as the page lists them, newest first.
pub fn entries(file: &[CreditFileEntry]) -> Vec<Entry> {
    file.iter()
        .rev()
        .map(|e| Entry {
            recorded: e
                .recorded_at
                .as_ref()
                .map(|t| crate::page::cst_minute(t.seconds))
                .unwrap_or_default(),
            kind: kind_name(&e.kind),
            tenant: super::division(&e.tenant),
            summary: e.summary.clone(),
        })
        .collect()
}

pub fn tier_name(tier: i32) -> &'static str {
    match RiskTier::try_from(tier).unwrap_or_default() {
        RiskTier::Low => "低 · low",
        RiskTier::Medium => "中 · medium",
        RiskTier::High => "高 · high",
        RiskTier::Unspecified => "未评定 · not set",
    }
}

pub fn kind_name(kind: &str) -> String {
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
    done: String,
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
    let form = |act: &str| Form::to(&f, format!("/agencies/{uscc}/{act}"));
    Ok(AgencyPage {
        interview: form("interviews"),
        finding: form("findings"),
        inspection: form("inspections"),
        order: form("orders"),
        outcome: form("outcomes"),
        risk: form("risk"),
        uscc: uscc.to_owned(),
        tier: tier_name(file.risk_tier),
        entries: entries(&file.entries),
        categories: categories(),
        errors,
        done,
        unfiled: true,
        hidden: Vec::new(),
        f,
    })
}

#[derive(Deserialize)]
pub struct AgencyQuery {
    #[serde(default)]
    done: String,
}

pub async fn agency(
    State(mut desk): State<Desk>,
    Path(uscc): Path<String>,
    Query(q): Query<AgencyQuery>,
) -> Response {
    // What the last write made, to be quoted (an order's id for its outcome, say).
    let done: String = q
        .done
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ' ' | ':'))
        .take(120)
        .collect();
    shown(
        agency_page(&mut desk, &uscc, Vec::new(), done).await,
        StatusCode::OK,
    )
}

/// After a write: back to the agency's file (saying what the write made), or the file with
/// what was wrong.
async fn answered(desk: &mut Desk, uscc: &str, outcome: Result<String, tonic::Status>) -> Response {
    after_write(
        outcome,
        |done| {
            let done: String = form_urlencoded::byte_serialize(done.as_bytes()).collect();
            format!("/agencies/{uscc}?done={done}")
        },
        |errors| agency_page(desk, uscc, errors, String::new()),
    )
    .await
}

/// Records an act of supervision about the agency, as its form says.
pub async fn agency_act(
    State(mut desk): State<Desk>,
    Path((uscc, act)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let party = Party::Agency {
        uscc: uscc.clone(),
        unfiled_name: field(&pairs, "agency_name").trim().to_owned(),
    };
    let outcome = super::acts::record(&mut desk, &act, &party, &pairs).await;
    answered(&mut desk, &uscc, outcome).await
}

pub struct Held {
    pub uscc: String,
    pub name: String,
    pub status: &'static str,
    pub tenant: String,
}

#[derive(Template)]
#[template(path = "console/agencies.html")]
struct Agencies {
    f: Frame,
    agencies: Vec<Held>,
    next: String,
    draw: Form,
}

fn filing_status(s: i32) -> &'static str {
    match FilingStatus::try_from(s).unwrap_or_default() {
        FilingStatus::Submitted => "已提交 · submitted",
        FilingStatus::UnderReview => "审核中 · under review",
        FilingStatus::Forwarded => "已报送自治区 · forwarded",
        FilingStatus::Active => "正常 · active",
        FilingStatus::Refused => "不予建档 · refused",
        FilingStatus::Revoked => "已撤销 · revoked",
        FilingStatus::Deregistering => "注销中 · deregistering",
        FilingStatus::Deregistered => "已注销 · deregistered",
        FilingStatus::Unspecified => "未知 · unknown",
    }
}

#[derive(Deserialize)]
pub struct Lookup {
    #[serde(default)]
    uscc: String,
    #[serde(default)]
    page: String,
}

/// The agencies whose filings this authority holds; with a code, that agency's file (filed
/// or not).
pub async fn agencies(State(mut desk): State<Desk>, Query(q): Query<Lookup>) -> Response {
    let uscc: String = q
        .uscc
        .trim()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase();
    if !uscc.is_empty() {
        return Redirect::to(&format!("/agencies/{uscc}")).into_response();
    }
    let listed = desk
        .filing
        .list_filings(ListFilingsRequest {
            page_size: 100,
            page_token: q.page,
            ..Default::default()
        })
        .await;
    let listed = match listed {
        Ok(r) => r.into_inner(),
        Err(status) => return failed(&status),
    };
    let f = Frame::new("机构与监管 · Agencies and supervision");
    Html(crate::page::render(Agencies {
        draw: Form::to(&f, "/spot-checks".into()),
        f,
        agencies: listed
            .filings
            .iter()
            .map(|x| Held {
                uscc: x.uscc.clone(),
                name: x.agency_name.clone(),
                status: filing_status(x.status),
                tenant: super::division(&x.tenant),
            })
            .collect(),
        next: listed.next_page_token,
    }))
    .into_response()
}

#[derive(Template)]
#[template(path = "console/draw.html")]
struct DrawPage {
    f: Frame,
    draw_id: String,
    seed: String,
    digest: String,
    sampled: Vec<String>,
}

/// Draws this authority's spot-check sample (Art. 14): the seed and the population's digest are
/// published with it, so anyone can draw again and compare.
pub async fn draw(State(mut desk): State<Desk>, body: Bytes) -> Response {
    let pairs = form_pairs(&body);
    let drawn = desk
        .review
        .draw_spot_check(DrawSpotCheckRequest {
            request_id: field(&pairs, "request_id").to_owned(),
            seed: field(&pairs, "seed").trim().to_owned(),
            ..Default::default()
        })
        .await;
    match drawn {
        Ok(r) => {
            let d = r.into_inner().draw.unwrap_or_default();
            Html(crate::page::render(DrawPage {
                f: Frame::new("抽查结果 · Spot-check draw"),
                draw_id: d.draw_id,
                seed: d.seed,
                digest: d.population_digest,
                sampled: d.sampled_usccs,
            }))
            .into_response()
        }
        Err(status) => failed(&status),
    }
}
