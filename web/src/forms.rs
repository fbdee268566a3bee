//! Forms are sent from this site's own pages only, so that no other site can make its
//! visitors' browsers file complaints or objections it wrote: a POST whose browser says it came
//! from another site (`Sec-Fetch-Site`), or whose `Origin` is not this site, is refused; and
//! each form's address carries a token bound to the visitor's form cookie (`SameSite=Strict`,
//! unreadable by scripts and by other sites), checked before the form is read.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use ring::hmac;

use crate::Lang;

/// The visitor's form cookie, and the query parameter a form's token travels in.
pub const COOKIE: &str = "cm_form";
pub const PARAM: &str = "form_token";

/// Signs the tokens; replicas of the site share it when they share a seed. It names the
/// cookie the tokens are bound to.
#[derive(Clone)]
pub struct FormKey {
    key: Arc<hmac::Key>,
    cookie: &'static str,
    /// Whether the cookie is sent over HTTPS only.
    secure: bool,
    /// The page that refuses a form.
    refuse: Refuse,
}

/// Makes the page refusing a form: its language, status and message.
pub type Refuse = fn(Lang, StatusCode, &'static str) -> Response;

impl FormKey {
    /// A key derived from `seed` (the forwarder token every replica holds), or a random one,
    /// whose refusals are `refuse`'s pages.
    pub fn new(seed: Option<&str>, refuse: Refuse) -> Self {
        Self::for_cookie(seed, COOKIE, false, refuse)
    }

    /// A key for the forms of a site whose form cookie is `cookie`, HTTPS only when `secure`.
    pub fn for_cookie(
        seed: Option<&str>,
        cookie: &'static str,
        secure: bool,
        refuse: Refuse,
    ) -> Self {
        let bytes = match seed {
            Some(seed) => hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, b"creditmesh web form tokens"),
                seed.as_bytes(),
            )
            .as_ref()
            .to_vec(),
            None => uuid::Uuid::new_v4()
                .as_bytes()
                .iter()
                .chain(uuid::Uuid::new_v4().as_bytes())
                .copied()
                .collect(),
        };
        Self {
            key: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, &bytes)),
            cookie,
            secure,
            refuse,
        }
    }

    fn message(cookie: &str, path: &str) -> Vec<u8> {
        [cookie.as_bytes(), b"\0", path.as_bytes()].concat()
    }

    /// The token of the form posted to `path` by the visitor holding `cookie`.
    pub fn token(&self, cookie: &str, path: &str) -> String {
        hex::encode(hmac::sign(&self.key, &Self::message(cookie, path)))
    }

    fn verify(&self, cookie: &str, path: &str, token: &str) -> bool {
        hex::decode(token)
            .is_ok_and(|tag| hmac::verify(&self.key, &Self::message(cookie, path), &tag).is_ok())
    }
}

tokio::task_local! {
    /// The key and the visitor's form cookie, for the page being made.
    static FORM: (FormKey, String);
}

/// `href` (a form's address, with this page's language kept) with the token of its form.
pub fn action(href: &str) -> String {
    let path = href.split('?').next().unwrap_or_default();
    let token = FORM
        .try_with(|(key, cookie)| key.token(cookie, path))
        .unwrap_or_default();
    let glue = if href.contains('?') { '&' } else { '?' };
    format!("{href}{glue}{PARAM}={token}")
}

fn cookie_of(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the browser says the request came from this site: `Sec-Fetch-Site` when it sends
/// one; else an `Origin` naming the host the request was sent to. (Under this site's
/// `Referrer-Policy: no-referrer` a browser sends `Origin: null` even from the site's own
/// pages, so the origin decides only where the fetch metadata is missing.)
fn same_site(headers: &HeaderMap) -> bool {
    if let Some(fetch_site) = headers.get("sec-fetch-site") {
        return matches!(fetch_site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .is_some_and(|(_, authority)| Some(authority) == host)
}

fn token_of(req: &Request) -> Option<String> {
    form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == PARAM)
        .map(|(_, v)| v.into_owned())
}

/// Refuses a POST from elsewhere or without its form's token; makes every page with the
/// visitor's form cookie known, setting one when the visitor has none.
pub async fn guard(State(key): State<FormKey>, req: Request, next: Next) -> Response {
    let held = cookie_of(req.headers(), key.cookie);
    if req.method() == Method::POST {
        let lang = crate::i18n::lang_of(req.uri());
        let t = lang.text();
        if !same_site(req.headers()) {
            let h = req.headers();
            let seen = |name: &str| {
                h.get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            tracing::info!(
                path = %req.uri().path(),
                origin = %seen("origin"),
                host = %seen("host"),
                fetch_site = %seen("sec-fetch-site"),
                "web: a form from another site refused"
            );
            return (key.refuse)(lang, StatusCode::FORBIDDEN, t.cross_site);
        }
        let path = req.uri().path().to_owned();
        let valid = held
            .as_deref()
            .zip(token_of(&req))
            .is_some_and(|(cookie, token)| key.verify(cookie, &path, &token));
        if !valid {
            return (key.refuse)(lang, StatusCode::FORBIDDEN, t.form_expired);
        }
    }
    let (cookie, new) = match held {
        Some(c) => (c, false),
        None => (uuid::Uuid::new_v4().simple().to_string(), true),
    };
    let (name, secure) = (key.cookie, if key.secure { "; Secure" } else { "" });
    let mut response = FORM.scope((key, cookie.clone()), next.run(req)).await;
    if new
        && let Ok(value) = HeaderValue::from_str(&format!(
            "{name}={cookie}; Path=/; HttpOnly; SameSite=Strict{secure}"
        ))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn only_this_sites_pages_may_post() {
        let here = "127.0.0.1:8088";
        assert!(same_site(&headers(&[("host", here)])));
        assert!(same_site(&headers(&[
            ("host", here),
            ("origin", "http://127.0.0.1:8088"),
        ])));
        assert!(same_site(&headers(&[
            ("host", here),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!same_site(&headers(&[
            ("host", here),
            ("origin", "https://evil.example"),
        ])));
        assert!(!same_site(&headers(&[("host", here), ("origin", "null")])));
        assert!(!same_site(&headers(&[
            ("host", here),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
        ])));
        assert!(!same_site(&headers(&[
            ("host", here),
            ("sec-fetch-site", "same-site"),
        ])));
    }

    #[test]
    fn a_token_is_good_for_its_cookie_and_form_only() {
        let key = FormKey::new(Some("seed"), crate::page::error);
        let t = key.token("c1", "/complaints");
        assert!(key.verify("c1", "/complaints", &t));
        assert!(!key.verify("c2", "/complaints", &t));
        assert!(!key.verify("c1", "/access", &t));
        assert!(!FormKey::new(Some("other"), crate::page::error).verify("c1", "/complaints", &t));
        assert!(FormKey::new(Some("seed"), crate::page::error).verify("c1", "/complaints", &t));
    }
}
