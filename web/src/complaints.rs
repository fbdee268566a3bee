//! The complaint pages (Art. 24): the form, its confirmation with the tracking number and
//! access code, and tracking. Answers that carry the access code are never cached.

use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Query, State};
use axum::response::{Html, IntoResponse, Response};
use creditmesh_domain::uscc::Uscc;
use creditmesh_proto::complaints::v1::{Department, SubmitComplaintRequest, TrackComplaintRequest};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use tonic_types::StatusExt;

use crate::App;
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

#[derive(Debug, Default, Deserialize)]
pub struct ComplaintForm {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    agency_uscc: String,
    #[serde(default)]
    agency_name: String,
    #[serde(default)]
    complainant_name: String,
    #[serde(default)]
    complainant_contact: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    description: String,
}

#[derive(askama::Template)]
#[template(path = "complaint_form.html")]
pub struct FormPage {
    c: Chrome,
    ct: &'static ComplaintText,
    request_id: String,
    fields: Vec<Field>,
    invalid: bool,
}

fn fields(lang: Lang, form: &ComplaintForm) -> Vec<Field> {
    let ct = lang.complaints();
    let mut contact = Field::new(
        "complainant_contact",
        ct.complainant_contact,
        &form.complainant_contact,
        200,
    )
    .required();
    contact.hint = Some(ct.contact_hint);
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
        Field::new("subject", ct.subject, &form.subject, 200).required(),
        description,
    ]
}

fn form_page(uri: &http::Uri, form: &ComplaintForm, request_id: String) -> FormPage {
    let lang = page::lang_of(uri);
    FormPage {
        c: Chrome::new(uri, lang.complaints().complain),
        ct: lang.complaints(),
        request_id,
        fields: fields(lang, form),
        invalid: false,
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

pub async fn submit(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    Form(form): Form<ComplaintForm>,
) -> Response {
    let lang = page::lang_of(&uri);
    let ct = lang.complaints();
    let request_id = if form.request_id.is_empty() || form.request_id.len() > 64 {
        new_request_id()
    } else {
        form.request_id.clone()
    };
    let mut page = form_page(&uri, &form, request_id.clone());
    for f in &mut page.fields {
        f.check(ct);
    }
    if let Some(uscc) = page.fields.iter_mut().find(|f| f.name == "agency_uscc")
        && uscc.error.is_none()
        && Uscc::parse(&uscc.value).is_err()
    {
        uscc.error = Some(lang.text().uscc_error.to_owned());
    }
    if page.fields.iter().any(|f| f.error.is_some()) {
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
        request_id,
        agency_uscc: value("agency_uscc"),
        agency_name: value("agency_name"),
        tenant: String::new(),
        complainant_name: value("complainant_name"),
        complainant_contact: value("complainant_contact"),
        subject: value("subject"),
        description: value("description"),
        evidence: Vec::new(),
    };
    match app.complaints.clone().submit_complaint(request).await {
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
            };
            private(Html(render(done)).into_response())
        }
        Err(e) if e.code() == tonic::Code::InvalidArgument => {
            // What only the service knows is wrong goes beside its field all the same.
            let violations = e
                .get_details_bad_request()
                .map(|b| b.field_violations)
                .unwrap_or_default();
            for v in violations {
                match page.fields.iter_mut().find(|f| f.name == v.field) {
                    Some(f) => f.error = Some(v.description),
                    None => tracing::warn!(field = %v.field, "web: a violation of no form field"),
                }
            }
            invalid(page)
        }
        Err(e) => page::failed(lang, &e),
    }
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
    pub referred_to: Option<&'static str>,
    pub outcome: String,
    pub history: Vec<Change>,
}

pub async fn track_form(OriginalUri(uri): OriginalUri) -> Response {
    let lang = page::lang_of(&uri);
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
    let lang = page::lang_of(&uri);
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
                referred_to: (r.referred_to() != Department::Unspecified)
                    .then(|| lang.department(r.referred_to())),
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
                        note: h.note,
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
