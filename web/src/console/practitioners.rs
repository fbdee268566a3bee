//! Practitioners (从业人员) supervised in their own name (Art. 2, 13): a practitioner's credit
//! file, found by the identity document they hold, and the acts recorded in it. The document's
//! number travels only in form bodies, never in an address, and its file is keyed by a digest.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use creditmesh_proto::common::v1::IdentityDocumentType;
use creditmesh_proto::review::v1::{GetCreditFileRequest, Practitioner};
use http::StatusCode;

use super::acts::Party;
use super::supervision::{Category, Entry, Form, categories, entries, tier_name};
use super::{Desk, Frame, failed, field, form_pairs, shown};

pub struct DocumentType {
    pub value: i32,
    pub label: &'static str,
}

fn document_types() -> Vec<DocumentType> {
    use IdentityDocumentType::*;
    let d = |t: IdentityDocumentType, label| DocumentType {
        value: t as i32,
        label,
    };
    vec![
        d(ResidentId, "居民身份证 · resident identity card"),
        d(
            HkMacaoTaiwanResidencePermit,
            "港澳台居民居住证 · residence permit",
        ),
        d(
            HkMacaoTravelPermit,
            "港澳居民来往内地通行证 · Hong Kong and Macao travel permit",
        ),
        d(
            TaiwanTravelPermit,
            "台湾居民来往大陆通行证 · Taiwan travel permit",
        ),
        d(
            ForeignPermanentResidence,
            "外国人永久居留身份证 · foreign permanent residence card",
        ),
        d(Passport, "护照 · passport"),
    ]
}

#[derive(Template)]
#[template(path = "console/practitioner_lookup.html")]
struct Lookup {
    f: Frame,
    action: String,
    types: Vec<DocumentType>,
    errors: Vec<String>,
}

fn lookup_page(errors: Vec<String>) -> Lookup {
    let f = Frame::new("从业人员 · Practitioners");
    Lookup {
        action: f.action("/practitioners"),
        f,
        types: document_types(),
        errors,
    }
}

pub async fn lookup() -> Response {
    Html(crate::page::render(lookup_page(Vec::new()))).into_response()
}

#[derive(Template)]
#[template(path = "console/practitioner.html")]
struct FilePage {
    f: Frame,
    key: String,
    name: String,
    document: String,
    tier: &'static str,
    entries: Vec<Entry>,
    categories: Vec<Category>,
    interview: Form,
    finding: Form,
    inspection: Form,
    order: Form,
    outcome: Form,
    errors: Vec<String>,
    done: String,
    unfiled: bool,
    hidden: Vec<(&'static str, String)>,
}

/// The practitioner a form names.
fn practitioner_of(pairs: &[(String, String)]) -> Practitioner {
    Practitioner {
        name: field(pairs, "name").trim().to_owned(),
        document_type: field(pairs, "document_type").parse().unwrap_or_default(),
        document_number: field(pairs, "document_number").trim().to_ascii_uppercase(),
    }
}

async fn file_page(
    desk: &mut Desk,
    p: &Practitioner,
    errors: Vec<String>,
    done: String,
) -> Result<FilePage, tonic::Status> {
    let file = desk
        .review
        .get_credit_file(GetCreditFileRequest {
            practitioner: Some(p.clone()),
            page_size: 500,
            ..Default::default()
        })
        .await?
        .into_inner();
    let f = Frame::new(format!(
        "从业人员监管档案 · Practitioner's file {}",
        file.uscc
    ));
    let form = |act: &str| Form::to(&f, format!("/practitioners/{act}"));
    let label = document_types()
        .into_iter()
        .find(|t| t.value == p.document_type)
        .map(|t| t.label)
        .unwrap_or_default();
    Ok(FilePage {
        interview: form("interviews"),
        finding: form("findings"),
        inspection: form("inspections"),
        order: form("orders"),
        outcome: form("outcomes"),
        key: file.uscc,
        name: p.name.clone(),
        document: format!(
            "{label} {}",
            creditmesh_domain::mask::identity_number(&p.document_number)
        ),
        tier: tier_name(file.risk_tier),
        entries: entries(&file.entries),
        categories: categories(),
        errors,
        done,
        unfiled: false,
        hidden: vec![
            ("name", p.name.clone()),
            ("document_type", p.document_type.to_string()),
            ("document_number", p.document_number.clone()),
        ],
        f,
    })
}

/// The practitioner's file, as the lookup form names them.
pub async fn file(State(mut desk): State<Desk>, body: Bytes) -> Response {
    let p = practitioner_of(&form_pairs(&body));
    match file_page(&mut desk, &p, Vec::new(), String::new()).await {
        Ok(page) => Html(crate::page::render(page)).into_response(),
        Err(status) if status.code() == tonic::Code::InvalidArgument => (
            StatusCode::BAD_REQUEST,
            Html(crate::page::render(lookup_page(super::violations(&status)))),
        )
            .into_response(),
        Err(status) => failed(&status),
    }
}

/// Records an act about the practitioner the form names, then shows their file again (not
/// by redirect: the document's number stays out of addresses).
pub async fn act(State(mut desk): State<Desk>, Path(act): Path<String>, body: Bytes) -> Response {
    let pairs = form_pairs(&body);
    let p = practitioner_of(&pairs);
    let party = Party::Practitioner(p.clone());
    match super::acts::record(&mut desk, &act, &party, &pairs).await {
        Ok(done) => shown(
            file_page(&mut desk, &p, Vec::new(), done).await,
            StatusCode::OK,
        ),
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition
            ) =>
        {
            shown(
                file_page(&mut desk, &p, super::violations(&status), String::new()).await,
                StatusCode::BAD_REQUEST,
            )
        }
        Err(status) => failed(&status),
    }
}
