//! The register's pages: the search, an agency with its notices, and a notice's proof.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use creditmesh_domain::Tenant;
use creditmesh_domain::uscc::Uscc;
use creditmesh_proto::disclosure::v1::{
    AgencyRecord, AgencyStatus, GetAgencyRequest, GetNoticeProofRequest, GetRegisterHeadRequest,
    ListAgenciesRequest, ListNoticesRequest, Notice, NoticeKind,
};
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use crate::App;
use crate::i18n::Lang;
use crate::page::{self, Chrome};

const PAGE_SIZE: i32 = 20;
/// Notices shown on an agency's page at most (pages of the log's listing).
const NOTICE_PAGES: usize = 10;
const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    uscc: String,
    #[serde(default)]
    prefecture: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: String,
}

const STATUSES: [(&str, AgencyStatus); 4] = [
    ("active", AgencyStatus::Active),
    ("deregistering", AgencyStatus::Deregistering),
    ("revoked", AgencyStatus::Revoked),
    ("deregistered", AgencyStatus::Deregistered),
];

pub struct Choice {
    pub value: String,
    pub label: &'static str,
    pub selected: bool,
}

pub struct Row {
    pub href: String,
    pub name: String,
    pub uscc: String,
    pub prefecture: &'static str,
    pub status: &'static str,
    pub filed_on: String,
}

#[derive(askama::Template)]
#[template(path = "search.html")]
pub struct SearchPage {
    c: Chrome,
    name: String,
    uscc: String,
    name_error: Option<&'static str>,
    uscc_error: Option<&'static str>,
    prefectures: Vec<Choice>,
    statuses: Vec<Choice>,
    rows: Vec<Row>,
    next_href: Option<String>,
}

/// The search: with no field filled, the first page of the whole register.
pub async fn search(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    form: Result<Query<SearchForm>, QueryRejection>,
) -> Response {
    let lang = crate::i18n::lang_of(&uri);
    let Ok(Query(form)) = form else {
        return page::error(lang, StatusCode::BAD_REQUEST, lang.text().bad_request);
    };
    let t = lang.text();
    let name = form.name.trim().to_owned();
    let uscc = form.uscc.trim().to_uppercase();
    let name_error = (name.chars().count() > MAX_NAME_CHARS).then_some(t.name_error);
    let uscc_error = (!uscc.is_empty() && Uscc::parse(&uscc).is_err()).then_some(t.uscc_error);
    // Choices outside the lists are dropped: only a hand-made address sends them.
    let prefecture = Tenant::parse_holding(&form.prefecture).ok();
    let status = STATUSES
        .iter()
        .find(|(v, _)| *v == form.status)
        .map(|(_, s)| *s);
    let mut page = SearchPage {
        c: Chrome::new(&uri, t.register),
        name_error,
        uscc_error,
        prefectures: Tenant::all()
            .filter(|t| !t.is_region())
            .map(|p| Choice {
                value: p.to_string(),
                label: lang.tenant(p),
                selected: Some(p) == prefecture,
            })
            .collect(),
        statuses: STATUSES
            .iter()
            .map(|(v, s)| Choice {
                value: (*v).to_owned(),
                label: lang.status(*s),
                selected: Some(*s) == status,
            })
            .collect(),
        name,
        uscc,
        rows: Vec::new(),
        next_href: None,
    };
    if page.name_error.is_some() || page.uscc_error.is_some() {
        return (StatusCode::BAD_REQUEST, Html(page::render(page))).into_response();
    }
    let request = ListAgenciesRequest {
        tenant: prefecture.map(|p| p.to_string()).unwrap_or_default(),
        name_contains: page.name.clone(),
        page_size: PAGE_SIZE,
        page_token: form.page.clone(),
        uscc: page.uscc.clone(),
        statuses: status.map(|s| s as i32).into_iter().collect(),
    };
    let listed = match app.register.clone().list_agencies(request).await {
        Ok(r) => r.into_inner(),
        Err(e) => return page::failed(lang, &e),
    };
    page.rows = listed
        .agencies
        .iter()
        .map(|a| Row {
            href: page.c.link(&format!("/agencies/{}", a.uscc)),
            name: a.agency_name.clone(),
            uscc: a.uscc.clone(),
            prefecture: tenant_name(lang, &a.tenant),
            status: lang.status(a.status()),
            filed_on: a.filed_on.clone(),
        })
        .collect();
    if !listed.next_page_token.is_empty() {
        page.next_href = Some(page::with_query(
            &uri,
            &[("page", &listed.next_page_token)],
            &[],
        ));
    }
    page::cached(&headers, page, 30)
}

/// An amount in yuan as people read it: 500万元, 1234.5万元, 800元; 5,000,000 yuan.
fn amount(lang: Lang, yuan: i64) -> String {
    match lang {
        Lang::Zh if yuan.abs() >= 10_000 => {
            let wan = format!("{}.{:04}", yuan / 10_000, (yuan % 10_000).abs());
            format!("{}万元", wan.trim_end_matches('0').trim_end_matches('.'))
        }
        Lang::Zh => format!("{yuan}元"),
        Lang::En => {
            let digits = yuan.unsigned_abs().to_string();
            let mut grouped = String::new();
            for (i, d) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    grouped.push(',');
                }
                grouped.push(d);
            }
            let sign = if yuan < 0 { "-" } else { "" };
            format!("{sign}{grouped} yuan")
        }
    }
}

/// A notice's words with each division code (six digits standing alone) named as the
/// authority it is: `乌鲁木齐市（650100）`. Notices are signed as written; this is how they
/// are shown.
fn with_division_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    // A code already in brackets after its name (as notices now say it) stays as it is.
    let flush = |run: &mut String, out: &mut String, next: Option<char>| {
        let standalone = next.is_none_or(|c| !c.is_ascii_alphanumeric());
        let named = out.ends_with('（');
        match Tenant::parse(run) {
            Ok(t) if run.len() == 6 && standalone && !named => {
                out.push_str(&format!("{}（{run}）", t.authority_name()));
            }
            _ => out.push_str(run),
        }
        run.clear();
    };
    let mut previous: Option<char> = None;
    for c in text.chars() {
        if c.is_ascii_digit()
            && (!run.is_empty() || previous.is_none_or(|p| !p.is_ascii_alphanumeric()))
        {
            run.push(c);
        } else {
            if !run.is_empty() {
                flush(&mut run, &mut out, Some(c));
            }
            out.push(c);
        }
        previous = Some(c);
    }
    if !run.is_empty() {
        flush(&mut run, &mut out, None);
    }
    out
}

fn tenant_name(lang: Lang, code: &str) -> &'static str {
    Tenant::parse(code).map_or("", |t| lang.tenant(t))
}

pub struct NoticeRow {
    pub sequence: i64,
    pub kind: &'static str,
    pub css: &'static str,
    pub when: String,
    pub text: String,
    pub included: bool,
    pub proof_href: String,
    pub erased: bool,
    pub erased_by: String,
    pub erasure_reason: String,
    pub corrects: Option<i64>,
}

#[derive(askama::Template)]
#[template(path = "agency.html")]
pub struct AgencyPage {
    c: Chrome,
    a: AgencyRecord,
    /// The registered capital in the units people read.
    capital: String,
    status: &'static str,
    holding: &'static str,
    reviewing: &'static str,
    notices: Vec<NoticeRow>,
    home: String,
    complain_href: String,
}

pub async fn agency(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(uscc): Path<String>,
) -> Response {
    let lang = crate::i18n::lang_of(&uri);
    if Uscc::parse(&uscc).is_err() {
        return page::error(lang, StatusCode::NOT_FOUND, lang.text().not_found);
    }
    let (mut register, mut log) = (app.register.clone(), app.register.clone());
    let record = register.get_agency(GetAgencyRequest {
        uscc: uscc.clone(),
        changed_since: 0,
    });
    let head = log.get_register_head(GetRegisterHeadRequest {});
    let notices = all_notices(&app, &uscc);
    let (record, head, notices) = tokio::join!(record, head, notices);
    let a = match record.map(|r| r.into_inner().agency) {
        Ok(Some(a)) => a,
        Ok(None) => return page::error(lang, StatusCode::NOT_FOUND, lang.text().not_found),
        Err(e) => return page::failed(lang, &e),
    };
    let notices = match notices {
        Ok(n) => n,
        Err(e) => return page::failed(lang, &e),
    };
    // Before the first checkpoint there is no head; nothing is included yet.
    let checkpointed = head.map(|h| h.into_inner().size).unwrap_or(0);
    let c = Chrome::new(&uri, a.agency_name.clone());
    let notices = notices
        .into_iter()
        .map(|n| NoticeRow {
            sequence: n.sequence,
            kind: lang.notice(n.kind()),
            css: notice_class(n.kind()),
            when: published(&n),
            included: n.sequence < checkpointed,
            proof_href: format!("/proofs/{}", n.sequence),
            erased: n.erased,
            erased_by: n.erased_by.clone(),
            erasure_reason: n.erasure_reason.clone(),
            corrects: (n.kind() == NoticeKind::Correction).then_some(n.corrects_sequence),
            text: with_division_names(&creditmesh_domain::facts::named_zh(&n.text)),
        })
        .collect();
    let page = AgencyPage {
        capital: amount(lang, a.registered_capital_yuan),
        status: lang.status(a.status()),
        holding: tenant_name(lang, &a.tenant),
        reviewing: tenant_name(lang, &a.reviewing_tenant),
        home: c.link("/"),
        complain_href: c.link(&format!("/complaints?uscc={}", a.uscc)),
        c,
        a,
        notices,
    };
    page::cached(&headers, page, 30)
}

async fn all_notices(app: &App, uscc: &str) -> Result<Vec<Notice>, tonic::Status> {
    let mut register = app.register.clone();
    let mut notices = Vec::new();
    let mut page_token = String::new();
    for _ in 0..NOTICE_PAGES {
        let page = register
            .list_notices(ListNoticesRequest {
                uscc: uscc.to_owned(),
                kinds: Vec::new(),
                page_size: 100,
                page_token,
            })
            .await?
            .into_inner();
        notices.extend(page.notices);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(notices)
}

fn notice_class(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Revoked | NoticeKind::Erasure => "notice grave",
        NoticeKind::Deregistered | NoticeKind::Deregistering => "notice ended",
        _ => "notice",
    }
}

/// When a notice was published, in China Standard Time.
fn published(n: &Notice) -> String {
    n.published_at
        .as_ref()
        .map(|ts| page::cst_minute(ts.seconds))
        .unwrap_or_default()
}

/// A notice's inclusion proof as `creditmesh verify` reads it (protobuf JSON, as a stock gRPC
/// client prints `GetNoticeProof`).
pub async fn proof(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    Path(sequence): Path<String>,
) -> Response {
    let lang = crate::i18n::lang_of(&uri);
    let Ok(sequence) = sequence.parse::<i64>() else {
        return page::error(lang, StatusCode::NOT_FOUND, lang.text().not_found);
    };
    let proof = match app
        .register
        .clone()
        .get_notice_proof(GetNoticeProofRequest {
            sequence,
            tree_size: 0,
        })
        .await
    {
        Ok(p) => p.into_inner(),
        Err(e) => return page::failed(lang, &e),
    };
    let n = proof.notice.unwrap_or_default();
    let body = json!({
        "notice": {
            "sequence": n.sequence.to_string(),
            "kind": n.kind().as_str_name(),
            "uscc": n.uscc,
            "tenant": n.tenant,
            "text": n.text,
            "content": STANDARD.encode(&n.content),
            "salt": STANDARD.encode(&n.salt),
            "leafHash": n.leaf_hash,
            "correctsSequence": n.corrects_sequence.to_string(),
            "erased": n.erased,
            "erasedBy": n.erased_by,
            "erasureReason": n.erasure_reason,
        },
        "treeSize": proof.tree_size.to_string(),
        "proof": proof.proof.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>(),
        "checkpoint": proof.checkpoint,
    });
    let disposition = format!("attachment; filename=\"notice-{sequence}-proof.json\"");
    (
        [
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "public, max-age=30".to_owned()),
        ],
        Json(body),
    )
        .into_response()
}

#[cfg(test)]
mod shown {
    use super::*;

    #[test]
    fn amounts_are_in_the_units_people_read() {
        assert_eq!(amount(Lang::Zh, 5_000_000), "500万元");
        assert_eq!(amount(Lang::Zh, 12_345_000), "1234.5万元");
        assert_eq!(amount(Lang::Zh, 800), "800元");
        assert_eq!(amount(Lang::En, 5_000_000), "5,000,000 yuan");
        assert_eq!(amount(Lang::En, 800), "800 yuan");
    }

    #[test]
    fn division_codes_in_a_notice_are_named() {
        assert_eq!(
            with_division_names(
                "公示：甲（统一社会信用代码 91650102MA7XJ0003G），建档所在地社会信用主管部门 650100，建档日期 2026-01-05。"
            ),
            "公示：甲（统一社会信用代码 91650102MA7XJ0003G），建档所在地社会信用主管部门 乌鲁木齐市（650100），建档日期 2026-01-05。"
        );
        assert_eq!(
            with_division_names("号码 1234567 与 653101"),
            "号码 1234567 与 喀什地区喀什市（653101）"
        );
        assert_eq!(with_division_names("A650100 999999"), "A650100 999999");
        assert_eq!(
            with_division_names("主管部门 喀什地区（653100），"),
            "主管部门 喀什地区（653100），"
        );
    }
}
