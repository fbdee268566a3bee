//! The one table from domain error codes to gRPC status codes.

use creditmesh_domain::{Error, ErrorCode};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub fn code(c: ErrorCode) -> Code {
    match c {
        ErrorCode::InvalidArgument => Code::InvalidArgument,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::AlreadyExists => Code::AlreadyExists,
        ErrorCode::FailedPrecondition => Code::FailedPrecondition,
        ErrorCode::PermissionDenied => Code::PermissionDenied,
        ErrorCode::Unauthenticated => Code::Unauthenticated,
        ErrorCode::ResourceExhausted => Code::ResourceExhausted,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::Internal => Code::Internal,
    }
}

/// Bounds on what an error carries back, in bytes: messages and violations may echo what the
/// caller sent, and all of it travels in headers that clients cap at 16 KiB.
const MESSAGE_BYTES: usize = 256;
const FIELD_BYTES: usize = 128;
const DESCRIPTION_BYTES: usize = 256;
const VIOLATIONS: usize = 16;

/// The status for a domain error; field violations travel as `google.rpc.BadRequest`.
pub fn status(err: Error) -> Status {
    let message = clip(&err.message, MESSAGE_BYTES);
    if err.violations.is_empty() {
        return Status::new(code(err.code), message);
    }
    let mut details = ErrorDetails::new();
    for v in err.violations.iter().take(VIOLATIONS) {
        details.add_bad_request_violation(
            clip(&v.field, FIELD_BYTES),
            clip(&v.description, DESCRIPTION_BYTES),
        );
    }
    if err.violations.len() > VIOLATIONS {
        details.add_bad_request_violation(
            "…",
            format!("and {} more", err.violations.len() - VIOLATIONS),
        );
    }
    Status::with_error_details(code(err.code), message, details)
}

/// `s` cut to at most `max` bytes on a character boundary, marked when cut.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Shorthand for handlers: `result.map_err(status_from)`.
pub fn status_from<E: Into<Error>>(err: E) -> Status {
    status(err.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use creditmesh_domain::Violations;

    #[test]
    fn what_an_error_echoes_is_bounded() {
        let long = "字".repeat(5000);
        let s = status(Error::not_found(format!("no filing {long}")));
        assert!(s.message().len() <= MESSAGE_BYTES, "{}", s.message().len());
        assert!(s.message().starts_with("no filing 字"));
        assert!(s.message().ends_with('…'));
        let mut v = Violations::default();
        for i in 0..40 {
            v.add(format!("{i}{long}"), long.clone());
        }
        let s = status(v.into_error());
        let bad = s.get_error_details().bad_request().unwrap().clone();
        assert_eq!(bad.field_violations.len(), VIOLATIONS + 1);
        assert!(
            bad.field_violations
                .iter()
                .all(|f| f.field.len() <= FIELD_BYTES && f.description.len() <= DESCRIPTION_BYTES)
        );
        assert_eq!(bad.field_violations[VIOLATIONS].description, "and 24 more");
        assert_eq!(clip("abc", 3), "abc");
    }

    #[test]
    fn every_violation_reaches_bad_request() {
        let mut v = Violations::default();
        v.require("a.b", "");
        v.require("c", "");
        let s = status(v.into_error());
        assert_eq!(s.code(), Code::InvalidArgument);
        let details = s.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|f| f.field.clone())
            .collect();
        assert_eq!(fields, ["a.b", "c"]);
    }
}
