//! What every page shares: the language, the frame around the content, error pages, and the
//! validators that let browsers and caches keep a page while it has not changed.

use std::hash::{DefaultHasher, Hash, Hasher};

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};

use crate::i18n::{Lang, Text, lang_of};

/// What the site calls itself and who runs it, from its configuration.
#[derive(Debug, Clone, Default)]
pub struct Site {
    pub name: String,
    pub operator: String,
    pub contact: String,
    name_en: String,
    operator_en: String,
}

impl Site {
    pub fn of(cfg: &crate::WebConfig) -> Self {
        Self {
            name: cfg.site_name_zh.clone(),
            operator: cfg.operator_zh.clone(),
            contact: cfg.contact.clone(),
            name_en: cfg.site_name_en.clone(),
            operator_en: cfg.operator_en.clone(),
        }
    }

    /// As a page in `lang` shows it.
    fn in_lang(&self, lang: Lang) -> Self {
        match lang {
            Lang::Zh => self.clone(),
            Lang::En => Self {
                name: self.name_en.clone(),
                operator: self.operator_en.clone(),
                ..self.clone()
            },
        }
    }
}

tokio::task_local! {
    static SITE: std::sync::Arc<Site>;
}

/// Makes the site's identity known to the page being made.
pub async fn with_site(
    axum::extract::State(site): axum::extract::State<std::sync::Arc<Site>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    SITE.scope(site, next.run(req)).await
}

/// The frame of a page: its language, title and the link to the same page in the other one.
pub struct Chrome {
    pub lang: Lang,
    pub t: &'static Text,
    pub title: String,
    pub switch_href: String,
    pub site: Site,
}

impl Chrome {
    pub fn new(uri: &Uri, title: impl Into<String>) -> Self {
        let lang = lang_of(uri);
        let other = match lang {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        };
        Self {
            lang,
            t: lang.text(),
            title: title.into(),
            switch_href: with_query(uri, &[("lang", other.code())], &[]),
            site: SITE
                .try_with(|s| s.in_lang(lang))
                .unwrap_or_else(|_| Site::of(&crate::WebConfig::default()).in_lang(lang)),
        }
    }

    /// The address a form of this page posts to: `href` with this page's language kept and
    /// the form's token.
    pub fn form_action(&self, href: &str) -> String {
        crate::forms::action(&self.link(href))
    }

    /// `href` (a path, with or without a query) with this page's language kept.
    pub fn link(&self, href: &str) -> String {
        match self.lang {
            Lang::Zh => href.to_owned(),
            Lang::En if href.contains('?') => format!("{href}&lang=en"),
            Lang::En => format!("{href}?lang=en"),
        }
    }
}

/// `uri`'s path with its query's `set` pairs replaced (or added) and `drop` removed.
pub fn with_query(uri: &Uri, set: &[(&str, &str)], drop: &[&str]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        if !set.iter().any(|(s, _)| *s == k) && !drop.contains(&k.as_ref()) {
            query.append_pair(&k, &v);
        }
    }
    for (k, v) in set {
        query.append_pair(k, v);
    }
    let query = query.finish();
    if query.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{query}", uri.path())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    c: Chrome,
    message: &'a str,
}

pub fn error(lang: Lang, status: StatusCode, message: &str) -> Response {
    // The language switch of an error page leads to the register's first page.
    let home = Uri::from_static(match lang {
        Lang::Zh => "/",
        Lang::En => "/?lang=en",
    });
    let c = Chrome::new(&home, message);
    (status, Html(render(ErrorPage { c, message }))).into_response()
}

/// The page's HTML; a page that does not render (it cannot, short of a formatting error) is
/// logged and left empty.
pub fn render(page: impl Template) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "web: a page did not render");
        String::new()
    })
}

/// The field violations an `INVALID_ARGUMENT` carries (none when it carries no details).
pub fn violations(status: &tonic::Status) -> Vec<tonic_types::FieldViolation> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations)
        .unwrap_or_default()
}

/// What a service said is wrong with a field, as a page in `lang` says it: the service's own
/// words on an English page; on a Chinese one, that the field did not pass (the services
/// explain in English, which a Chinese page does not show).
pub fn service_says(lang: Lang, description: String) -> String {
    match lang {
        Lang::En => description,
        Lang::Zh => lang.text().field_refused.to_owned(),
    }
}

/// The error page for a failed call to the mesh.
pub fn failed(lang: Lang, status: &tonic::Status) -> Response {
    let t = lang.text();
    match status.code() {
        // A notice not (yet) in a checkpoint has no proof to show.
        tonic::Code::NotFound | tonic::Code::FailedPrecondition | tonic::Code::OutOfRange => {
            error(lang, StatusCode::NOT_FOUND, t.not_found)
        }
        tonic::Code::InvalidArgument => error(lang, StatusCode::BAD_REQUEST, t.bad_request),
        tonic::Code::ResourceExhausted => error(lang, StatusCode::TOO_MANY_REQUESTS, t.too_many),
        _ => {
            tracing::warn!(code = ?status.code(), message = status.message(), "web: a call to the mesh failed");
            error(lang, StatusCode::SERVICE_UNAVAILABLE, t.unavailable)
        }
    }
}

/// A rendered page, kept by browsers and caches for `max_age` seconds and revalidated by its
/// content: an unchanged page is answered `304 Not Modified` without its body.
pub fn cached(request: &HeaderMap, page: impl Template, max_age: u32) -> Response {
    let body = match page.render() {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "web: a page did not render");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let cache = format!("public, max-age={max_age}");
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let headers = [
        (header::ETAG, HeaderValue::from_str(&etag).expect("hex")),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_str(&cache).expect("ascii"),
        ),
        (header::VARY, HeaderValue::from_static("accept-encoding")),
    ];
    if unchanged {
        (StatusCode::NOT_MODIFIED, headers).into_response()
    } else {
        (headers, Html(body)).into_response()
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM` in China Standard Time.
pub fn cst_minute(seconds: i64) -> String {
    let cst = time::UtcOffset::from_hms(8, 0, 0).expect("cst");
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map(|t| {
            let t = t.to_offset(cst);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}
