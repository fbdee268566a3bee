//! Subject access (Art. 21, 22): with the code a regulator's service desk issued, a person
//! sees what agencies reported about them — the content, its source, every version and every
//! use — and objects to a record, which marks it at once. The code travels only in POST bodies
//! and the pages that hold it are never cached.

use axum::Form;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, OriginalUri, State};
use axum::response::{Html, IntoResponse, Response};
use creditmesh_proto::datapush::v1::{
    AddSubjectStatementRequest, FileObjectionRequest, GetSubjectReportRequest, Labels,
    MaterialMetadata, Objection, ObjectionDecision, ObjectionGround, RecordStatus,
    RequestedMeasure, SubjectRecordReport, UploadObjectionMaterialRequest,
    upload_objection_material_request,
};
use http::{StatusCode, Uri};
use serde::Deserialize;

use crate::App;
use crate::complaints::{new_request_id, private};
use crate::i18n::{AccessText, ComplaintText, Lang};
use crate::page::{self, Chrome, render};

const PAGE_SIZE: i32 = 20;
const IDENTIFIER_CHARS: usize = 18;
const STATEMENT_CHARS: usize = 4000;
const CONTACT_CHARS: usize = 200;
/// Supporting materials of one objection, and the size of each (the service's own limits).
pub const MATERIALS: usize = 5;
const MATERIAL_BYTES: usize = 5 * 1024 * 1024;
/// The largest objection form: its materials and its text.
pub const OBJECTION_BODY_BYTES: usize = MATERIALS * MATERIAL_BYTES + 1024 * 1024;
/// The measures a visitor may ask for, in the order the form lists them.
const MEASURES: [(RequestedMeasure, &str); 4] = [
    (RequestedMeasure::Unspecified, ""),
    (RequestedMeasure::Correct, "correct"),
    (RequestedMeasure::Delete, "delete"),
    (RequestedMeasure::Other, "other"),
];

/// The grounds a visitor may choose, in the order the form lists them.
const GROUNDS: [(ObjectionGround, &str); 5] = [
    (ObjectionGround::Error, "error"),
    (ObjectionGround::Omission, "omission"),
    (ObjectionGround::ImproperEvaluation, "improper_evaluation"),
    (ObjectionGround::TradeSecret, "trade_secret"),
    (ObjectionGround::Privacy, "privacy"),
];

#[derive(Debug, Default, Deserialize)]
pub struct AccessForm {
    #[serde(default)]
    subject_identifier: String,
    #[serde(default)]
    access_code: String,
    #[serde(default)]
    page_token: String,
}

/// An objection to one record, sent with the subject's identifier, code and page.
#[derive(Debug, Default, Deserialize)]
pub struct ObjectionForm {
    #[serde(flatten)]
    subject: AccessForm,
    #[serde(default)]
    record_id: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    ground: String,
    #[serde(default)]
    statement: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    requested_measure: String,
}

/// A supporting material as the form sent it.
struct Material {
    name: String,
    bytes: Vec<u8>,
}

/// The objection form, sent as `multipart/form-data`: its text, and its files up to the
/// limits (a file over its size, or one too many, is named in `refused`, its bytes skipped).
async fn read_objection(
    mut body: Multipart,
    at: &AccessText,
) -> Result<(ObjectionForm, Vec<Material>, Vec<String>), axum::extract::multipart::MultipartError> {
    let mut form = ObjectionForm::default();
    let (mut materials, mut refused) = (Vec::new(), Vec::new());
    while let Some(mut field) = body.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "material" {
            let file = field.file_name().unwrap_or_default().to_owned();
            let mut bytes = Vec::new();
            let mut over = false;
            while let Some(chunk) = field.chunk().await? {
                if bytes.len() + chunk.len() > MATERIAL_BYTES {
                    over = true;
                } else if !over {
                    bytes.extend_from_slice(&chunk);
                }
            }
            if file.is_empty() && bytes.is_empty() {
                continue;
            }
            if over {
                refused.push(format!("{}{file}", at.material_too_large));
            } else if materials.len() == MATERIALS {
                refused.push(at.materials_too_many.to_owned());
            } else {
                materials.push(Material { name: file, bytes });
            }
            continue;
        }
        let value = crate::evidence::text(&mut field, 16 * 1024).await?;
        let slot = match name.as_str() {
            "subject_identifier" => &mut form.subject.subject_identifier,
            "access_code" => &mut form.subject.access_code,
            "page_token" => &mut form.subject.page_token,
            "record_id" => &mut form.record_id,
            "request_id" => &mut form.request_id,
            "ground" => &mut form.ground,
            "statement" => &mut form.statement,
            "contact" => &mut form.contact,
            "requested_measure" => &mut form.requested_measure,
            _ => continue,
        };
        *slot = value;
    }
    refused.dedup();
    Ok((form, materials, refused))
}

/// Hands one material to the mesh for the objection about to be filed; its id, or why not.
async fn upload_material(
    app: &App,
    form: &ObjectionForm,
    identifier: &str,
    material: Material,
    at: &AccessText,
) -> Result<String, String> {
    use upload_objection_material_request::Part;
    let metadata = UploadObjectionMaterialRequest {
        part: Some(Part::Metadata(MaterialMetadata {
            record_id: form.record_id.trim().to_owned(),
            subject_identifier: identifier.to_owned(),
            access_code: form.subject.access_code.trim().to_owned(),
            file_name: material.name.chars().take(255).collect(),
            size_bytes: material.bytes.len() as i64,
        })),
    };
    let chunks = material
        .bytes
        .chunks(64 * 1024)
        .map(|c| UploadObjectionMaterialRequest {
            part: Some(Part::Chunk(c.to_vec())),
        });
    let parts: Vec<_> = std::iter::once(metadata).chain(chunks).collect();
    let refused = |why: &str| Err(format!("{why}{}", material.name));
    match app
        .datapush
        .clone()
        .upload_objection_material(futures::stream::iter(parts))
        .await
    {
        Ok(r) => match r.into_inner().material {
            Some(m) => Ok(m.material_id),
            None => refused(at.material_refused),
        },
        Err(e) if e.code() == tonic::Code::ResourceExhausted => Err(at.materials_too_many.into()),
        Err(e) => {
            tracing::info!(code = ?e.code(), message = e.message(), "web: a supporting material refused");
            refused(at.material_refused)
        }
    }
}

/// The subject's statement on a decision to keep a record (Art. 22), sent with the
/// subject's identifier, code and page.
#[derive(Debug, Default, Deserialize)]
pub struct StatementForm {
    #[serde(flatten)]
    subject: AccessForm,
    #[serde(default)]
    objection_id: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    statement: String,
}

#[derive(askama::Template)]
#[template(path = "access.html")]
pub struct ReportPage {
    c: Chrome,
    at: &'static AccessText,
    ct: &'static ComplaintText,
    identifier: String,
    identifier_error: Option<String>,
    code_error: Option<String>,
    error: Option<String>,
    /// The decision date of an objection just filed.
    received_due: Option<String>,
    /// A statement was just attached.
    statement_added: bool,
    /// Kept for the forms of the page, which act for the same subject.
    access_code: String,
    page_token: String,
    records: Option<Vec<RecordView>>,
    next_page_token: String,
}

pub struct Pair {
    pub key: String,
    pub value: String,
}

pub struct VersionView {
    pub version: i64,
    pub when: String,
    pub change: String,
    /// Where this version's information came from (Art. 21 信息来源).
    pub provider: String,
    pub legal_basis: String,
}

pub struct UseView {
    pub when: String,
    pub by: String,
    pub purpose: String,
    pub legal_basis: String,
    /// Recorded by the reporting agency of its own use; to whom it disclosed the record.
    pub by_agency: bool,
    pub recipient: String,
}

pub struct ObjectionView {
    pub objection_id: String,
    pub filed_at: String,
    pub ground: &'static str,
    pub deadline: String,
    pub decided: bool,
    pub decision: &'static str,
    pub overdue: bool,
    pub reasons: String,
    pub statement: String,
    pub subject_statement: String,
    /// Under a decision to keep that has no statement of the subject yet.
    pub say: Option<SayForm>,
}

/// The form for the subject's statement under a decision to keep.
pub struct SayForm {
    pub open: bool,
    pub request_id: String,
    pub statement: String,
    pub error: Option<String>,
}

impl SayForm {
    fn empty() -> Self {
        Self {
            open: false,
            request_id: new_request_id(),
            statement: String::new(),
            error: None,
        }
    }
}

pub struct RecordView {
    pub record_id: String,
    pub category: String,
    pub agency_uscc: String,
    pub agency_href: String,
    pub collected_on: String,
    pub provider: String,
    pub legal_basis: String,
    /// The last day the platform keeps it, and why.
    pub kept_until: String,
    pub retention_basis: String,
    pub received_at: String,
    pub version: i64,
    pub status: &'static str,
    pub under_objection: bool,
    pub content: Vec<Pair>,
    pub raw_content: String,
    pub kept_reasons: String,
    pub subject_statement: String,
    pub history: Vec<VersionView>,
    pub uses: Vec<UseView>,
    pub objections: Vec<ObjectionView>,
    pub form: Option<ObjectForm>,
}

/// The objection form under a record, with what was typed and what is wrong with it.
pub struct ObjectForm {
    pub open: bool,
    pub request_id: String,
    pub ground: String,
    pub statement: String,
    pub contact: String,
    pub ground_error: Option<String>,
    pub statement_error: Option<String>,
    pub contact_error: Option<String>,
    pub grounds: Vec<(&'static str, &'static str)>,
    pub measure: String,
    pub measures: Vec<(&'static str, &'static str)>,
    pub materials_error: Option<String>,
}

impl ObjectForm {
    fn empty(lang: Lang) -> Self {
        Self {
            open: false,
            request_id: new_request_id(),
            ground: String::new(),
            statement: String::new(),
            contact: String::new(),
            ground_error: None,
            statement_error: None,
            contact_error: None,
            grounds: GROUNDS
                .iter()
                .map(|(g, name)| (*name, lang.ground(*g)))
                .collect(),
            measure: String::new(),
            measures: MEASURES
                .iter()
                .zip(lang.access().measures)
                .map(|((_, name), label)| (*name, label))
                .collect(),
            materials_error: None,
        }
    }

    fn has_errors(&self) -> bool {
        self.ground_error.is_some()
            || self.statement_error.is_some()
            || self.contact_error.is_some()
            || self.materials_error.is_some()
    }
}

impl ReportPage {
    fn new(uri: &Uri, identifier: &str) -> Self {
        let lang = crate::i18n::lang_of(uri);
        let at = lang.access();
        Self {
            c: Chrome::new(uri, at.title),
            at,
            ct: lang.complaints(),
            identifier: identifier.trim().to_uppercase(),
            identifier_error: None,
            code_error: None,
            error: None,
            received_due: None,
            statement_added: false,
            access_code: String::new(),
            page_token: String::new(),
            records: None,
            next_page_token: String::new(),
        }
    }

    /// The identifier and the code are both needed; the service checks the rest.
    fn check(&mut self, code: &str) -> bool {
        let ct = self.ct;
        if self.identifier.is_empty() {
            self.identifier_error = Some(ct.required.to_owned());
        } else if self.identifier.chars().count() > IDENTIFIER_CHARS {
            self.identifier_error = Some(too_long(ct, &self.identifier, IDENTIFIER_CHARS));
        }
        if code.trim().is_empty() {
            self.code_error = Some(ct.required.to_owned());
        }
        self.identifier_error.is_none() && self.code_error.is_none()
    }

    fn lang(&self) -> Lang {
        self.c.lang
    }
}

fn too_long(ct: &ComplaintText, value: &str, max: usize) -> String {
    format!("{} ({} > {max})", ct.too_long, value.chars().count())
}

/// The empty form.
pub async fn form(OriginalUri(uri): OriginalUri) -> Response {
    private(Html(render(ReportPage::new(&uri, ""))).into_response())
}

/// The records about the subject, one page of them.
pub async fn report(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    Form(form): Form<AccessForm>,
) -> Response {
    let mut page = ReportPage::new(&uri, &form.subject_identifier);
    if !page.check(&form.access_code) {
        return answer(StatusCode::BAD_REQUEST, page);
    }
    with_records(&app, page, form.access_code.trim(), form.page_token.trim()).await
}

/// Files the subject's objection to one record of theirs, then shows the records again with
/// that one marked.
pub async fn object(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    body: Result<Multipart, MultipartRejection>,
) -> Response {
    let lang = crate::i18n::lang_of(&uri);
    let bad = || page::error(lang, StatusCode::BAD_REQUEST, lang.text().bad_request);
    let Ok(body) = body else { return bad() };
    let Ok((form, materials, refused)) = read_objection(body, lang.access()).await else {
        return bad();
    };
    let mut page = ReportPage::new(&uri, &form.subject.subject_identifier);
    let lang = page.lang();
    if !page.check(&form.subject.access_code) {
        return answer(StatusCode::BAD_REQUEST, page);
    }
    let code = form.subject.access_code.trim();
    let mut filled = ObjectForm::empty(lang);
    filled.open = true;
    if !form.request_id.is_empty() && form.request_id.len() <= 64 {
        filled.request_id = form.request_id.clone();
    }
    filled.ground = form.ground.trim().to_owned();
    filled.statement = form.statement.trim().to_owned();
    filled.contact = form.contact.trim().to_owned();
    let ground = GROUNDS
        .iter()
        .find(|(_, name)| *name == filled.ground)
        .map(|(g, _)| *g);
    let (at, ct) = (page.at, page.ct);
    if ground.is_none() {
        filled.ground_error = Some(at.ground_error.to_owned());
    }
    if filled.statement.is_empty() {
        filled.statement_error = Some(ct.required.to_owned());
    } else if filled.statement.chars().count() > STATEMENT_CHARS {
        filled.statement_error = Some(too_long(ct, &filled.statement, STATEMENT_CHARS));
    }
    if filled.contact.chars().count() > CONTACT_CHARS {
        filled.contact_error = Some(too_long(ct, &filled.contact, CONTACT_CHARS));
    }
    filled.measure = form.requested_measure.trim().to_owned();
    let measure = MEASURES
        .iter()
        .find(|(_, name)| *name == filled.measure)
        .map(|(m, _)| *m)
        .unwrap_or_default();
    if !refused.is_empty() {
        filled.materials_error = Some(refused.join(ct.list_separator));
    } else if filled.has_errors() && !materials.is_empty() {
        filled.materials_error = Some(at.materials_again.to_owned());
    }
    // The materials go to the mesh only once the objection is fit to be filed.
    let mut material_ids = Vec::new();
    if !filled.has_errors() {
        for m in materials {
            match upload_material(&app, &form, &page.identifier, m, at).await {
                Ok(id) => material_ids.push(id),
                Err(why) => {
                    filled.materials_error = Some(why);
                    break;
                }
            }
        }
    }
    let mut status = StatusCode::BAD_REQUEST;
    if !filled.has_errors() {
        let request = FileObjectionRequest {
            material_ids,
            requested_measure: measure as i32,
            request_id: filled.request_id.clone(),
            record_id: form.record_id.trim().to_owned(),
            subject_identifier: page.identifier.clone(),
            ground: ground.unwrap_or_default() as i32,
            statement: filled.statement.clone(),
            access_code: code.to_owned(),
            contact: filled.contact.clone(),
        };
        match app.datapush.clone().file_objection(request).await {
            Ok(r) => {
                let objection = r.into_inner().objection.unwrap_or_default();
                page.received_due =
                    Some(objection.deadline.map(|d| d.due_date).unwrap_or_default());
                return with_records(&app, page, code, form.subject.page_token.trim()).await;
            }
            Err(e) if e.code() == tonic::Code::InvalidArgument => {
                for v in page::violations(&e) {
                    let slot = match v.field.as_str() {
                        "ground" => &mut filled.ground_error,
                        "statement" => &mut filled.statement_error,
                        "contact" => &mut filled.contact_error,
                        f if f.starts_with("material") => &mut filled.materials_error,
                        "subject_identifier" => &mut page.identifier_error,
                        "access_code" => &mut page.code_error,
                        other => {
                            tracing::warn!(field = %other, "web: a violation of no form field");
                            &mut page.error
                        }
                    };
                    *slot = Some(page::service_says(lang, v.description));
                }
            }
            Err(e) if e.code() == tonic::Code::FailedPrecondition => {
                page.error = Some(at.not_markable.to_owned());
                status = StatusCode::CONFLICT;
            }
            Err(e) if denied(&e) => {
                page.error = Some(at.wrong.to_owned());
                return answer(StatusCode::FORBIDDEN, page);
            }
            Err(e) => return page::failed(lang, &e),
        }
    }
    if filled.has_errors() && page.error.is_none() {
        page.error = Some(ct.fix_fields.to_owned());
    }
    // The records again, with the form that was sent open under its record.
    if let Err(response) = fetch(&app, &mut page, code, form.subject.page_token.trim()).await {
        return response;
    }
    if let Some(r) = page
        .records
        .iter_mut()
        .flatten()
        .find(|r| r.record_id == form.record_id.trim())
        && r.form.is_some()
    {
        r.form = Some(filled);
    }
    answer(status, page)
}

/// Attaches the subject's statement to a decision to keep one of their records, then shows
/// the records again with it.
pub async fn add_statement(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    Form(form): Form<StatementForm>,
) -> Response {
    let mut page = ReportPage::new(&uri, &form.subject.subject_identifier);
    let lang = page.lang();
    if !page.check(&form.subject.access_code) {
        return answer(StatusCode::BAD_REQUEST, page);
    }
    let code = form.subject.access_code.trim();
    let page_token = form.subject.page_token.trim();
    let objection_id = form.objection_id.trim();
    let (at, ct) = (page.at, page.ct);
    let mut filled = SayForm::empty();
    filled.open = true;
    if !form.request_id.is_empty() && form.request_id.len() <= 64 {
        filled.request_id = form.request_id.clone();
    }
    filled.statement = form.statement.trim().to_owned();
    if filled.statement.is_empty() {
        filled.error = Some(ct.required.to_owned());
    } else if filled.statement.chars().count() > STATEMENT_CHARS {
        filled.error = Some(too_long(ct, &filled.statement, STATEMENT_CHARS));
    }
    let mut status = StatusCode::BAD_REQUEST;
    if filled.error.is_none() {
        let request = AddSubjectStatementRequest {
            request_id: filled.request_id.clone(),
            objection_id: objection_id.to_owned(),
            subject_identifier: page.identifier.clone(),
            access_code: code.to_owned(),
            statement: filled.statement.clone(),
        };
        match app.datapush.clone().add_subject_statement(request).await {
            Ok(_) => {
                page.statement_added = true;
                return with_records(&app, page, code, page_token).await;
            }
            Err(e) if e.code() == tonic::Code::InvalidArgument => {
                for v in page::violations(&e) {
                    let slot = match v.field.as_str() {
                        "statement" => &mut filled.error,
                        "subject_identifier" => &mut page.identifier_error,
                        "access_code" => &mut page.code_error,
                        other => {
                            tracing::warn!(field = %other, "web: a violation of no form field");
                            &mut page.error
                        }
                    };
                    *slot = Some(page::service_says(lang, v.description));
                }
            }
            Err(e) if e.code() == tonic::Code::FailedPrecondition => {
                page.error = Some(at.statement_refused.to_owned());
                status = StatusCode::CONFLICT;
            }
            Err(e) if denied(&e) => {
                page.error = Some(at.wrong.to_owned());
                return answer(StatusCode::FORBIDDEN, page);
            }
            Err(e) => return page::failed(lang, &e),
        }
    }
    if filled.error.is_some() && page.error.is_none() {
        page.error = Some(ct.fix_fields.to_owned());
    }
    if let Err(response) = fetch(&app, &mut page, code, page_token).await {
        return response;
    }
    if let Some(o) = page
        .records
        .iter_mut()
        .flatten()
        .flat_map(|r| r.objections.iter_mut())
        .find(|o| o.objection_id == objection_id)
        && o.say.is_some()
    {
        o.say = Some(filled);
    }
    answer(status, page)
}

/// `page` with the subject's records, or the answer for a failure it cannot show.
async fn with_records(app: &App, mut page: ReportPage, code: &str, page_token: &str) -> Response {
    match fetch(app, &mut page, code, page_token).await {
        Ok(status) => answer(status, page),
        Err(response) => response,
    }
}

fn denied(e: &tonic::Status) -> bool {
    matches!(
        e.code(),
        tonic::Code::PermissionDenied | tonic::Code::NotFound | tonic::Code::Unauthenticated
    )
}

/// Fills `page` with the subject's records; the status the page is answered with, or the
/// answer for a failure the page cannot show.
async fn fetch(
    app: &App,
    page: &mut ReportPage,
    code: &str,
    page_token: &str,
) -> Result<StatusCode, Response> {
    let lang = page.lang();
    let request = GetSubjectReportRequest {
        subject_identifier: page.identifier.clone(),
        access_code: code.to_owned(),
        subject_kind: 0,
        purpose: String::new(),
        page_size: PAGE_SIZE,
        page_token: page_token.to_owned(),
    };
    match app.datapush.clone().get_subject_report(request).await {
        Ok(r) => {
            let r = r.into_inner();
            page.access_code = code.to_owned();
            page.page_token = page_token.to_owned();
            page.next_page_token = r.next_page_token;
            page.records = Some(
                r.records
                    .into_iter()
                    .map(|record| view(&page.c, record, &r.objections))
                    .collect(),
            );
            Ok(StatusCode::OK)
        }
        Err(e) if e.code() == tonic::Code::InvalidArgument => {
            for v in page::violations(&e) {
                match v.field.as_str() {
                    "subject_identifier" => {
                        page.identifier_error = Some(page::service_says(lang, v.description))
                    }
                    "access_code" => {
                        page.code_error = Some(page::service_says(lang, v.description))
                    }
                    _ => page.error = Some(lang.text().bad_request.to_owned()),
                }
            }
            Ok(StatusCode::BAD_REQUEST)
        }
        Err(e) if denied(&e) => {
            page.error = Some(page.at.wrong.to_owned());
            Ok(StatusCode::FORBIDDEN)
        }
        Err(e) => Err(page::failed(lang, &e)),
    }
}

fn view(c: &Chrome, report: SubjectRecordReport, objections: &[Objection]) -> RecordView {
    let lang = c.lang;
    let stored = report.record.unwrap_or_default();
    let record = stored.record.clone().unwrap_or_default();
    let labels = report.labels.clone().unwrap_or_default();
    let (content, raw_content) = content_of(&record.content, &labels, lang);
    let source = record.source.clone().unwrap_or_default();
    let status = stored.status();
    RecordView {
        category: match lang {
            Lang::Zh if !labels.category_zh.is_empty() => labels.category_zh.clone(),
            Lang::En if !labels.category_en.is_empty() => labels.category_en.clone(),
            _ => record.category,
        },
        agency_href: c.link(&format!("/agencies/{}", stored.agency_uscc)),
        agency_uscc: stored.agency_uscc,
        collected_on: record.collected_on,
        provider: source.provider,
        legal_basis: source.legal_basis,
        kept_until: report.kept_until,
        retention_basis: match (lang, report.retention_basis_zh.is_empty()) {
            (Lang::Zh, false) => report.retention_basis_zh,
            _ => report.retention_basis,
        },
        received_at: stored
            .received_at
            .map(|t| page::cst_minute(t.seconds))
            .unwrap_or_default(),
        version: stored.version,
        status: lang.record_status(status),
        under_objection: status == RecordStatus::UnderObjection,
        content,
        raw_content,
        kept_reasons: stored.kept_reasons,
        subject_statement: stored.subject_statement,
        history: report
            .history
            .into_iter()
            .map(|v| VersionView {
                version: v.version,
                when: v
                    .changed_at
                    .map(|t| page::cst_minute(t.seconds))
                    .unwrap_or_default(),
                change: lang.record_change(&v.change),
                provider: v.source.clone().unwrap_or_default().provider,
                legal_basis: v.source.unwrap_or_default().legal_basis,
            })
            .collect(),
        uses: report
            .uses
            .into_iter()
            .map(|u| UseView {
                when: u
                    .used_at
                    .map(|t| page::cst_minute(t.seconds))
                    .unwrap_or_default(),
                by: lang.reader(&u.used_by),
                purpose: u.purpose,
                legal_basis: u.legal_basis,
                by_agency: u.recorded_by_agency,
                recipient: u.recipient,
            })
            .collect(),
        objections: objections
            .iter()
            .filter(|o| o.record_id == stored.record_id)
            .map(|o| ObjectionView {
                objection_id: o.objection_id.clone(),
                say: (o.decision() == ObjectionDecision::Keep && o.subject_statement.is_empty())
                    .then(SayForm::empty),
                subject_statement: o.subject_statement.clone(),
                filed_at: o
                    .filed_at
                    .map(|t| page::cst_minute(t.seconds))
                    .unwrap_or_default(),
                ground: lang.ground(o.ground()),
                deadline: o
                    .deadline
                    .as_ref()
                    .map(|d| d.due_date.clone())
                    .unwrap_or_default(),
                decided: o.decision() != ObjectionDecision::Unspecified,
                decision: lang.decision(o.decision()),
                overdue: o.overdue,
                reasons: o.decision_reasons.clone(),
                statement: o.statement.clone(),
            })
            .collect(),
        form: (status == RecordStatus::Active).then(|| ObjectForm::empty(lang)),
        record_id: stored.record_id,
    }
}

/// A record's JSON content as name–value pairs when it is an object, else as its text.
/// A record's content as people read it: each field by the catalog's label in `lang`, a yes or
/// no for a boolean; what is not an object, as text.
fn content_of(bytes: &[u8], labels: &Labels, lang: Lang) -> (Vec<Pair>, String) {
    let label = |key: &str| {
        labels
            .fields
            .iter()
            .find(|f| f.name == key)
            .map(|f| match lang {
                Lang::Zh => f.zh.clone(),
                Lang::En => f.en.clone(),
            })
            .unwrap_or_else(|| key.to_owned())
    };
    let (yes, no) = match lang {
        Lang::Zh => ("是", "否"),
        Lang::En => ("yes", "no"),
    };
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(map)) => (
            map.into_iter()
                .map(|(key, value)| Pair {
                    key: label(&key),
                    value: match value {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Bool(b) => (if b { yes } else { no }).to_owned(),
                        other => other.to_string(),
                    },
                })
                .collect(),
            String::new(),
        ),
        _ => (Vec::new(), String::from_utf8_lossy(bytes).into_owned()),
    }
}

fn answer(status: StatusCode, page: ReportPage) -> Response {
    private((status, Html(render(page))).into_response())
}

#[cfg(test)]
mod tests {
    use creditmesh_proto::datapush::v1::FieldLabel;

    use super::*;

    #[test]
    fn object_content_is_shown_as_pairs_and_anything_else_as_text() {
        let labels = Labels {
            fields: vec![FieldLabel {
                name: "amount_due".into(),
                zh: "应还金额（元）".into(),
                en: "Amount due (yuan)".into(),
            }],
            ..Default::default()
        };
        let (pairs, raw) = content_of(
            br#"{"amount_due": 120.5, "due_on": "2026-08-31", "settled": true}"#,
            &labels,
            Lang::Zh,
        );
        assert!(raw.is_empty());
        let shown: Vec<_> = pairs
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("应还金额（元）", "120.5"),
                ("due_on", "2026-08-31"),
                ("settled", "是")
            ]
        );
        let (pairs, raw) = content_of(b"[1, 2]", &labels, Lang::En);
        assert!(pairs.is_empty());
        assert_eq!(raw, "[1, 2]");
        let (_, raw) = content_of(&[0xff, b'a'], &labels, Lang::Zh);
        assert_eq!(raw, "\u{fffd}a");
    }

    #[test]
    fn a_reader_is_named_by_kind_and_prefecture() {
        let id = "spiffe://creditmesh.xinjiang/regulator/653100";
        assert_eq!(Lang::Zh.reader(id), "喀什地区信用主管部门");
        assert_eq!(Lang::En.reader(id), "credit regulator of Kashgar");
        let agency = "spiffe://creditmesh.xinjiang/agency/653100/91653101MA78KT005T";
        assert_eq!(Lang::Zh.reader(agency), "信用服务机构 91653101MA78KT005T");
        assert_eq!(Lang::Zh.reader("public"), "public");
        assert_eq!(
            Lang::Zh.reader("spiffe://x/regulator/999999"),
            "spiffe://x/regulator/999999"
        );
    }
}
