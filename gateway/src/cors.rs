//! CORS for gRPC-Web on the public listener: the configured origins' pages may call it from a
//! browser; any other origin's preflight is answered without leave, so the browser refuses.

use std::time::Duration;

use anyhow::{Result, bail};
use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// What a gRPC-Web client sends beside the body.
const REQUEST_HEADERS: [&str; 8] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "traceparent",
    "tracestate",
];
/// What it must read of the answer.
const RESPONSE_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// The layer for `origins` (`gateway.grpc_web_origins`), each checked to be an origin.
pub fn layer(origins: &[String]) -> Result<CorsLayer> {
    let allowed = origins
        .iter()
        .map(|o| origin(o))
        .collect::<Result<Vec<_>>>()?;
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::POST])
        .allow_headers(REQUEST_HEADERS.map(HeaderName::from_static))
        .expose_headers(RESPONSE_HEADERS.map(HeaderName::from_static))
        .max_age(Duration::from_secs(24 * 3600)))
}

fn origin(text: &str) -> Result<HeaderValue> {
    let refused = || {
        anyhow::anyhow!(
            "config key `gateway.grpc_web_origins`: {text:?} is not an origin such as https://register.example.org (scheme, host and port only)"
        )
    };
    let uri: http::Uri = text.parse().map_err(|_| refused())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("https" | "http"));
    let bare = uri.path_and_query().is_none_or(|p| p.as_str() == "/") && !text.ends_with('/');
    if !scheme_ok || uri.host().is_none_or(str::is_empty) || !bare {
        bail!(refused());
    }
    Ok(HeaderValue::from_str(text)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_origins_are_taken() {
        for good in ["https://register.example.org", "http://127.0.0.1:8088"] {
            assert!(super::origin(good).is_ok(), "{good}");
        }
        for bad in [
            "register.example.org",
            "https://register.example.org/",
            "https://register.example.org/app",
            "ftp://register.example.org",
            "*",
        ] {
            let e = super::origin(bad).unwrap_err().to_string();
            assert!(e.contains("gateway.grpc_web_origins"), "{bad}: {e}");
        }
    }
}
