use std::fmt;

/// The deliberately small set of outcomes every service maps its failures to; the gRPC edge
/// maps each to exactly one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
    Unauthenticated,
    ResourceExhausted,
    Unavailable,
    Internal,
}

/// One invalid field of a request: its path (for example `form.uscc`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub violations: Vec<FieldViolation>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            violations: Vec::new(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::FailedPrecondition, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PermissionDenied, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// A single invalid field.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = Violations::default();
        v.add(field, description);
        v.into_error()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for v in &self.violations {
            write!(f, "; {}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Collects every invalid field of a request, so that a caller learns all of them at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

/// Whether `token` is a page token a list of ids gave out: empty, or an id of the form the
/// mesh mints (a hyphenated, lowercase UUID).
pub fn is_id_token(token: &str) -> bool {
    token.is_empty()
        || (token.len() == 36
            && token.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
            }))
}

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records a violation when `value` is blank.
    pub fn require(&mut self, field: &str, value: &str) {
        if value.trim().is_empty() {
            self.add(field, "is required");
        }
    }

    /// Records a violation when `value` is longer than `max` characters.
    pub fn max_chars(&mut self, field: &str, value: &str, max: usize) {
        if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        }
    }

    /// Keeps the parsed value, or records why it did not parse.
    pub fn check<T, E: fmt::Display>(&mut self, field: &str, parsed: Result<T, E>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_error(self) -> Error {
        let count = self.0.len();
        Error {
            code: ErrorCode::InvalidArgument,
            message: format!(
                "invalid request: {count} field{} failed validation",
                if count == 1 { "" } else { "s" }
            ),
            violations: self.0,
        }
    }

    /// `Ok(())` when nothing was recorded, otherwise the error naming every field.
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_name_every_field() {
        let mut v = Violations::default();
        v.require("a", "");
        v.require("b", " ");
        v.require("c", "x");
        let err = v.finish().unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        let fields: Vec<_> = err.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["a", "b"]);
        assert_eq!(err.message, "invalid request: 2 fields failed validation");
    }
}
