//! The complaint pages (Art. 24): the form, its confirmation with the tracking number and
//! access code, and tracking. Answers that carry the access code are never cached.

use axum::Form;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, OriginalUri, Query, State};
use axum::response::{Html, IntoResponse, Response};
use creditmesh_domain::uscc::Uscc;
use creditmesh_proto::common::v1::DocumentRef;
use creditmesh_proto::complaints::v1::{Department, SubmitComplaintRequest, TrackComplaintRequest};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;

use crate::App;
use crate::evidence::{self, Attached};
use crate::i18n::{ComplaintText, Lang};
use crate::page::{self, Chrome, render};

/// One input of a form: what it is called, what was typed, and what is wrong with it.
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: Option<&'static str>,
    pub value: String,
    pub error: Option<String>,
    pub required: bool,
    pub multiline: bool,
    pub max_chars: usize,
    /// When not empty, the field is a choice among these groups of `(value, label)`.
    pub choices: Vec<Choices>,
}

/// A group of choices in a select.
pub struct Choices {
    pub label: String,
    pub options: Vec<(String, String)>,
}

/// Where the conduct took place: each prefecture, then its counties, in the visitor's
/// language.
fn places(lang: Lang) -> Vec<Choices> {
    use creditmesh_domain::tenant::{COUNTIES, PREFECTURES};
    let name = |en: &str, zh: &str| match lang {
        Lang::Zh => zh.to_owned(),
        Lang::En => en.to_owned(),
    };
    PREFECTURES
        .iter()
        .map(|(code, en, zh)| {
            let mut options = vec![(format!("{code:06}"), name(en, zh))];
            options.extend(
                COUNTIES
                    .iter()
                    .filter(|(c, _, _)| c / 100 == code / 100)
                    .map(|(c, en, zh)| (format!("{c:06}"), name(en, zh))),
            );
            Choices {
                label: name(en, zh),
                options,
            }
        })
        .collect()
}

impl Field {
    fn new(name: &'static str, label: &'static str, value: &str, max_chars: usize) -> Self {
        Self {
            name,
            label,
            hint: None,
            value: value.trim().to_owned(),
            error: None,
            required: false,
            multiline: false,
            max_chars,
            choices: Vec::new(),
        }
    }

    fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Checks what the service would refuse, in the visitor's language.
    fn check(&mut self, t: &ComplaintText) {
        if self.required && self.value.is_empty() {
            self.error = Some(t.required.to_owned());
        } else if self.value.chars().count() > self.max_chars {
            self.error = Some(format!(
                "{} ({} > {})",
                t.too_long,
                self.value.chars().count(),
                self.max_chars
            ));
        }
    }
}

#[derive(Debug, Default)]
pub struct ComplaintForm {
    request_id: String,
    agency_uscc: String,
    agency_name: String,
    complainant_name: String,
    complainant_contact: String,
    place_of_activity: String,
    subject: String,
    description: String,
}

impl ComplaintForm {
    /// Sets the field `name` of the form; other names are ignored.
    fn set(&mut self, name: &str, value: String) {
        let field = match name {
            "request_id" => &mut self.request_id,
            "agency_uscc" => &mut self.agency_uscc,
            "agency_name" => &mut self.agency_name,
            "complainant_name" => &mut self.complainant_name,
            "complainant_contact" => &mut self.complainant_contact,
            "place_of_activity" => &mut self.place_of_activity,
            "subject" => &mut self.subject,
            "description" => &mut self.description,
            _ => return,
        };
        *field = value;
    }
}

#[derive(askama::Template)]
#[template(path = "complaint_form.html")]
pub struct FormPage {
    c: Chrome,
    ct: &'static ComplaintText,
    request_id: String,
    fields: Vec<Field>,
    invalid: bool,
    attached: Vec<Attached>,
    evidence_error: Option<String>,
}

fn fields(lang: Lang, form: &ComplaintForm) -> Vec<Field> {
    let ct = lang.complaints();
    // Optional: a report may be anonymous (Art. 24 举报).
    let mut contact = Field::new(
        "complainant_contact",
        ct.complainant_contact,
        &form.complainant_contact,
        200,
    );
    contact.hint = Some(ct.contact_hint);
    // Optional: where it happened decides who handles it (Art. 5).
    let mut place = Field::new(
        "place_of_activity",
        ct.place_of_activity,
        &form.place_of_activity,
        6,
    );
    place.hint = Some(ct.place_hint);
    place.choices = places(lang);
    let mut description =
        Field::new("description", ct.description, &form.description, 10_000).required();
    description.multiline = true;
    vec![
        Field::new(
            "agency_uscc",
            ct.agency_uscc,
            &form.agency_uscc.to_uppercase(),
            18,
        )
        .required(),
        Field::new("agency_name", ct.agency_name, &form.agency_name, 200),
        Field::new(
            "complainant_name",
            ct.complainant_name,
            &form.complainant_name,
            100,
        ),
        contact,
        place,
        Field::new("subject", ct.subject, &form.subject, 200).required(),
        description,
    ]
}

fn form_page(uri: &http::Uri, form: &ComplaintForm, request_id: String) -> FormPage {
    let lang = crate::i18n::lang_of(uri);
    FormPage {
        c: Chrome::new(uri, lang.complaints().complain),
        ct: lang.complaints(),
        request_id,
        fields: fields(lang, form),
        invalid: false,
        attached: Vec::new(),
        evidence_error: None,
    }
}

/// A fresh key for one filling of the form: submitting it twice files one complaint.
pub(crate) fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[derive(Debug, Default, Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    uscc: String,
}

/// The empty form; `?uscc=` fills in the agency (the agency page links here).
pub async fn new(
    OriginalUri(uri): OriginalUri,
    query: Result<Query<NewQuery>, QueryRejection>,
) -> Response {
    let form = ComplaintForm {
        agency_uscc: query.map(|Query(q)| q.uscc).unwrap_or_default(),
        ..Default::default()
    };
    private(Html(render(form_page(&uri, &form, new_request_id()))).into_response())
}

/// The form is sent as `multipart/form-data`: its text first, then its files. A file is handed
/// to the mesh only when the text is fit to be filed, so a form that comes back for its text
/// has uploaded nothing; one that comes back for a file keeps the files that were received.
pub async fn submit(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    body: Result<Multipart, MultipartRejection>,
) -> Response {
    let lang = crate::i18n::lang_of(&uri);
    let ct = lang.complaints();
    let Ok(body) = body else {
        return page::error(lang, StatusCode::BAD_REQUEST, lang.text().bad_request);
    };
    let mut page = receive(&app, &uri, body).await;
    if page.fields.iter().any(|f| f.error.is_some()) || page.evidence_error.is_some() {
        return invalid(page);
    }
    let value = |name: &str| {
        page.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.clone())
            .unwrap_or_default()
    };
    let request = SubmitComplaintRequest {
        request_id: page.request_id.clone(),
        agency_uscc: value("agency_uscc"),
        agency_name: value("agency_name"),
        tenant: String::new(),
        complainant_name: value("complainant_name"),
        complainant_contact: value("complainant_contact"),
        place_of_activity: value("place_of_activity"),
        subject: value("subject"),
        description: value("description"),
        evidence: page
            .attached
            .iter()
            .map(|a| DocumentRef {
                sha256: a.sha256.clone(),
            })
            .collect(),
    };
    let submitted = crate::pace::paced(|| {
        let (mut complaints, request) = (app.complaints.clone(), request.clone());
        async move { complaints.submit_complaint(request).await }
    });
    match submitted.await {
        Ok(r) => {
            let r = r.into_inner();
            let status = lang.complaint_status(r.status());
            let track_href = page.c.link("/complaints/track");
            let done = Received {
                c: Chrome::new(&uri, ct.received),
                ct,
                tracking_number: r.tracking_number,
                access_code: r.access_code,
                status,
                track_href,
                attached: page.attached,
            };
            private(Html(render(done)).into_response())
        }
        Err(e) if e.code() == tonic::Code::InvalidArgument => {
            // What only the service knows is wrong goes beside its field all the same.
            let violations = page::violations(&e);
            let mut missing = Vec::new();
            for v in violations {
                if let Some(i) = evidence_place(&v.field) {
                    missing.push(i);
                } else if v.field == "evidence" {
                    page.evidence_error = Some(ct.evidence_too_many.to_owned());
                } else {
                    match page.fields.iter_mut().find(|f| f.name == v.field) {
                        Some(f) => f.error = Some(page::service_says(lang, v.description)),
                        None => {
                            tracing::warn!(field = %v.field, "web: a violation of no form field")
                        }
                    }
                }
            }
            if !missing.is_empty() {
                let (gone, held): (Vec<_>, Vec<_>) = std::mem::take(&mut page.attached)
                    .into_iter()
                    .enumerate()
                    .partition(|(i, _)| missing.contains(i));
                page.attached = held.into_iter().map(|(_, a)| a).collect();
                let gone: Vec<String> = gone
                    .iter()
                    .map(|(_, a)| evidence::refusal(ct, &a.name, ct.evidence_missing))
                    .collect();
                page.evidence_error = Some(gone.join(ct.list_separator));
            }
            invalid(page)
        }
        Err(e) => page::failed(lang, &e),
    }
}

/// `i` of a violation of `evidence[i].sha256`.
fn evidence_place(field: &str) -> Option<usize> {
    field
        .strip_prefix("evidence[")?
        .strip_suffix("].sha256")?
        .parse()
        .ok()
}

/// The form with what the visitor sent, checked: its text, the files kept from an earlier
/// sending and the files sent now, each received by the mesh or refused with its reason.
async fn receive(app: &App, uri: &http::Uri, mut body: Multipart) -> FormPage {
    let ct = crate::i18n::lang_of(uri).complaints();
    let mut form = ComplaintForm::default();
    let mut attached: Vec<Attached> = Vec::new();
    let mut checked_page: Option<FormPage> = None;
    let mut problems: Vec<String> = Vec::new();
    let mut unsent = false;
    let mut too_many = false;
    loop {
        let mut field = match body.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                tracing::info!(error = %e, "web: a complaint form broke off");
                problems.push(ct.evidence_cut_off.to_owned());
                break;
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let outcome = if name == "evidence" {
            let file = field.file_name().unwrap_or_default().trim().to_owned();
            if file.is_empty() {
                // The file input with nothing chosen.
                continue;
            }
            let page = checked_page.get_or_insert_with(|| checked(uri, &form));
            if page.fields.iter().any(|f| f.error.is_some()) {
                unsent = true;
                continue;
            }
            if attached.len() >= evidence::MAX_FILES {
                too_many = true;
                continue;
            }
            match evidence::attach(app, ct, &mut field, &file).await {
                Ok(a) => {
                    if !attached.iter().any(|b| b.sha256 == a.sha256) {
                        attached.push(a);
                    }
                    Ok(())
                }
                Err(Ok(why)) => {
                    problems.push(why);
                    Ok(())
                }
                Err(Err(e)) => Err(e),
            }
        } else {
            evidence::text(&mut field, MAX_TEXT_BYTES)
                .await
                .map(|value| match name.as_str() {
                    "kept" if attached.len() >= evidence::MAX_FILES => too_many = true,
                    "kept" => attached.extend(
                        Attached::parse(&value)
                            .filter(|a| !attached.iter().any(|b| b.sha256 == a.sha256)),
                    ),
                    _ => form.set(&name, value),
                })
        };
        if let Err(e) = outcome {
            tracing::info!(error = %e, "web: a complaint form broke off");
            problems.push(ct.evidence_cut_off.to_owned());
            break;
        }
    }
    let mut page = checked_page.unwrap_or_else(|| checked(uri, &form));
    if too_many {
        problems.push(ct.evidence_too_many.to_owned());
    }
    if unsent {
        problems.push(ct.evidence_not_sent.to_owned());
    }
    page.attached = attached;
    page.evidence_error = (!problems.is_empty()).then(|| problems.join(ct.list_separator));
    page
}

/// The most bytes of one text field that are read; more is cut for the length check to refuse.
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// The form page for `form`, each field checked as the service would.
fn checked(uri: &http::Uri, form: &ComplaintForm) -> FormPage {
    let lang = crate::i18n::lang_of(uri);
    let request_id = if form.request_id.is_empty() || form.request_id.len() > 64 {
        new_request_id()
    } else {
        form.request_id.clone()
    };
    let mut page = form_page(uri, form, request_id);
    for f in &mut page.fields {
        f.check(lang.complaints());
    }
    if let Some(uscc) = page.fields.iter_mut().find(|f| f.name == "agency_uscc")
        && uscc.error.is_none()
        && Uscc::parse(&uscc.value).is_err()
    {
        uscc.error = Some(lang.text().uscc_error.to_owned());
    }
    page
}

fn invalid(mut page: FormPage) -> Response {
    page.invalid = true;
    private((StatusCode::BAD_REQUEST, Html(render(page))).into_response())
}

#[derive(askama::Template)]
#[template(path = "complaint_received.html")]
pub struct Received {
    c: Chrome,
    ct: &'static ComplaintText,
    tracking_number: String,
    access_code: String,
    status: &'static str,
    track_href: String,
    attached: Vec<Attached>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TrackForm {
    #[serde(default)]
    tracking_number: String,
    #[serde(default)]
    access_code: String,
}

pub struct Change {
    pub when: String,
    pub status: String,
    pub note: String,
}

#[derive(askama::Template)]
#[template(path = "complaint_track.html")]
pub struct TrackPage {
    c: Chrome,
    ct: &'static ComplaintText,
    tracking_number: String,
    error: Option<&'static str>,
    found: Option<Tracked>,
}

pub struct Tracked {
    pub status: &'static str,
    pub deadline: String,
    pub provisional: bool,
    pub referred_to: Option<String>,
    pub outcome: String,
    pub history: Vec<Change>,
}

pub async fn track_form(OriginalUri(uri): OriginalUri) -> Response {
    let lang = crate::i18n::lang_of(&uri);
    let ct = lang.complaints();
    let page = TrackPage {
        c: Chrome::new(&uri, ct.track),
        ct,
        tracking_number: String::new(),
        error: None,
        found: None,
    };
    private(Html(render(page)).into_response())
}

/// Tracking is a POST, so that the access code stays out of addresses, logs and history.
pub async fn track(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    Form(form): Form<TrackForm>,
) -> Response {
    let lang = crate::i18n::lang_of(&uri);
    let ct = lang.complaints();
    let mut page = TrackPage {
        c: Chrome::new(&uri, ct.track),
        ct,
        tracking_number: form.tracking_number.trim().to_owned(),
        error: None,
        found: None,
    };
    let request = TrackComplaintRequest {
        tracking_number: page.tracking_number.clone(),
        access_code: form.access_code.trim().to_owned(),
    };
    match app.complaints.clone().track_complaint(request).await {
        Ok(r) => {
            let r = r.into_inner();
            let status = lang.complaint_status(r.status());
            let deadline = r.handling_deadline.clone().unwrap_or_default();
            page.found = Some(Tracked {
                status,
                deadline: deadline.due_date,
                provisional: deadline.provisional,
                // The department with its division, as the complainant was told; its kind alone
                // in English.
                referred_to: (r.referred_to() != Department::Unspecified).then(|| {
                    match (lang, r.referred_to_name.is_empty()) {
                        (Lang::Zh, false) => r.referred_to_name.clone(),
                        (_, false) => format!(
                            "{} ({})",
                            lang.department(r.referred_to()),
                            r.referred_to_name
                        ),
                        _ => lang.department(r.referred_to()).to_owned(),
                    }
                }),
                outcome: r.outcome,
                history: r
                    .history
                    .into_iter()
                    .map(|h| Change {
                        when: h
                            .changed_at
                            .map(|t| page::cst_minute(t.seconds))
                            .unwrap_or_default(),
                        status: lang.complaint_status_named(&h.status),
                        // A Chinese page shows the Chinese note alone: a change written
                        // before notes had one shows its status only.
                        note: match lang {
                            Lang::Zh => h.note_zh,
                            Lang::En => h.note,
                        },
                    })
                    .collect(),
            });
            private(Html(render(page)).into_response())
        }
        Err(e)
            if matches!(
                e.code(),
                tonic::Code::NotFound
                    | tonic::Code::InvalidArgument
                    | tonic::Code::PermissionDenied
                    | tonic::Code::Unauthenticated
            ) =>
        {
            page.error = Some(ct.no_such_complaint);
            private((StatusCode::NOT_FOUND, Html(render(page))).into_response())
        }
        Err(e) => page::failed(lang, &e),
    }
}

/// Kept by nobody: the page holds a complainant's details or access code.
pub(crate) fn private(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
