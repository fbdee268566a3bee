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

/// The status for a domain error; field violations travel as `google.rpc.BadRequest`.
pub fn status(err: Error) -> Status {
    if err.violations.is_empty() {
        return Status::new(code(err.code), err.message);
    }
    let mut details = ErrorDetails::new();
    for v in &err.violations {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    Status::with_error_details(code(err.code), err.message, details)
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
