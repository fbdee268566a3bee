use creditmesh_domain::{Error, ErrorCode};
use sqlx::error::ErrorKind;

/// A database failure, translated at the storage edge.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("conflicting row: {0}")]
    Conflict(String),
    #[error("database busy: {0}")]
    Busy(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Other(String),
}

/// SQLite's primary result codes for a lock that could not be had.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
/// PostgreSQL SQLSTATE classes and codes that mean "try again".
const PG_RETRYABLE: &[&str] = &["40001", "40P01", "55P03", "57P01", "57P03", "53300"];

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                if matches!(db.kind(), ErrorKind::UniqueViolation) {
                    return StorageError::Conflict(db.message().to_owned());
                }
                if let Ok(n) = code.parse::<i32>()
                    && matches!(n & 0xff, SQLITE_BUSY | SQLITE_LOCKED)
                {
                    return StorageError::Busy(db.message().to_owned());
                }
                if PG_RETRYABLE.contains(&code.as_str()) || code.starts_with("08") {
                    return StorageError::Busy(db.message().to_owned());
                }
                StorageError::Other(format!("{} ({code})", db.message()))
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StorageError::Unavailable(e.to_string())
            }
            sqlx::Error::RowNotFound => StorageError::Corrupt("expected row is missing".into()),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StorageError::Corrupt(e.to_string())
            }
            _ => StorageError::Other(e.to_string()),
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(_) => {
                Error::new(ErrorCode::AlreadyExists, "the record exists already")
            }
            StorageError::Busy(_) | StorageError::Unavailable(_) => {
                tracing::warn!(error = %e, "storage unavailable");
                Error::unavailable("storage is busy, retry the call")
            }
            other => {
                tracing::error!(error = %other, "storage failure");
                Error::internal("storage failure")
            }
        }
    }
}
