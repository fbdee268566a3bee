//! Evidence attached to the complaint form (Art. 24): each file read whole, at most 10 MiB,
//! streamed to the mesh's public `UploadEvidence`, and then named by the complaint through the
//! SHA-256 the mesh answered. A file sent once stays attached when the form comes back with an
//! error, so the visitor does not have to choose it again.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::multipart::{Field, MultipartError};
use creditmesh_proto::complaints::v1::upload_evidence_request::Part;
use creditmesh_proto::complaints::v1::{EvidenceMetadata, UploadEvidenceRequest};
use tokio::sync::Semaphore;

use crate::App;
use crate::i18n::ComplaintText;

/// The largest file, as the complaints service keeps it.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// The most files one complaint names, as the complaints service allows.
pub const MAX_FILES: usize = 20;
/// The largest form body: every file at its largest and the text.
pub const MAX_BODY_BYTES: usize = MAX_FILES * MAX_FILE_BYTES + 1024 * 1024;
/// Files held in memory at once across all visitors, each until the mesh has it.
pub const FILES_IN_MEMORY: usize = 16;
const CHUNK_BYTES: usize = 64 * 1024;
/// How long one file may take to arrive once its turn has come.
const FILE_TIME: Duration = Duration::from_secs(300);
/// How long a file waits for its turn when many are arriving at once.
const TURN_TIME: Duration = Duration::from_secs(30);

/// A file the mesh holds for the visitor, by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub sha256: String,
    pub size: u64,
    pub name: String,
}

impl Attached {
    /// The value of the form's `kept` checkbox that brings the file back.
    pub fn token(&self) -> String {
        format!("{}:{}:{}", self.sha256, self.size, self.name)
    }

    /// A `kept` value as [`Attached::token`] writes it; anything else is `None`.
    pub fn parse(token: &str) -> Option<Self> {
        let mut parts = token.splitn(3, ':');
        let sha256 = parts.next()?;
        let size: u64 = parts.next()?.parse().ok()?;
        let name = parts.next()?;
        let hex = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let named = !name.trim().is_empty() && name.chars().count() <= 255;
        (hex && named && size > 0 && size <= MAX_FILE_BYTES as u64).then(|| Self {
            sha256: sha256.to_owned(),
            size,
            name: name.to_owned(),
        })
    }

    /// The size for people: bytes, KB or MB.
    pub fn size_text(&self) -> String {
        match self.size {
            n if n < 1024 => format!("{n} B"),
            n if n < 1024 * 1024 => format!("{:.1} KB", n as f64 / 1024.0),
            n => format!("{:.1} MB", n as f64 / (1024.0 * 1024.0)),
        }
    }
}

/// Why one file is not attached, in the visitor's words.
pub fn refusal(ct: &ComplaintText, name: &str, why: &str) -> String {
    format!("{name}{}{why}", ct.file_separator)
}

/// Files in memory at once, shared by every form.
#[derive(Clone)]
pub struct Turns(Arc<Semaphore>);

impl Default for Turns {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(FILES_IN_MEMORY)))
    }
}

/// Reads the file of `field` and hands it to the mesh. `Err` is the reason, for the field.
pub async fn attach(
    app: &App,
    ct: &ComplaintText,
    field: &mut Field<'_>,
    name: &str,
) -> Result<Attached, Result<String, MultipartError>> {
    let refused = |why: &str| Err(Ok(refusal(ct, name, why)));
    let Ok(Ok(_turn)) = tokio::time::timeout(TURN_TIME, app.turns.0.acquire()).await else {
        return refused(ct.evidence_busy);
    };
    let bytes = match tokio::time::timeout(FILE_TIME, read(field)).await {
        Err(_) => return refused(ct.evidence_slow),
        Ok(Err(e)) => return Err(Err(e)),
        Ok(Ok(None)) => return refused(ct.evidence_too_large),
        Ok(Ok(Some(bytes))) if bytes.is_empty() => return refused(ct.evidence_empty),
        Ok(Ok(Some(bytes))) => bytes,
    };
    let size = bytes.len() as u64;
    let file_name: String = name.chars().take(255).collect();
    // Each attempt streams its own copy, made as it is sent.
    let upload = crate::pace::paced(|| {
        let metadata = UploadEvidenceRequest {
            part: Some(Part::Metadata(EvidenceMetadata {
                file_name: file_name.clone(),
                size_bytes: size as i64,
            })),
        };
        let chunks = bytes.chunks(CHUNK_BYTES).map(|c| UploadEvidenceRequest {
            part: Some(Part::Chunk(c.to_vec())),
        });
        let parts: Vec<_> = std::iter::once(metadata).chain(chunks).collect();
        let mut complaints = app.complaints.clone();
        async move {
            complaints
                .upload_evidence(futures::stream::iter(parts))
                .await
        }
    });
    match upload.await {
        Ok(r) => match r.into_inner().document {
            Some(d) => Ok(Attached {
                sha256: d.sha256,
                size,
                name: name.to_owned(),
            }),
            None => refused(ct.evidence_failed),
        },
        Err(e) if e.code() == tonic::Code::InvalidArgument => {
            let fields: Vec<String> = crate::page::violations(&e)
                .into_iter()
                .map(|v| v.field)
                .collect();
            if fields.iter().any(|f| f == "metadata.size_bytes") {
                refused(ct.evidence_too_large)
            } else if fields.iter().any(|f| f == "chunk") {
                refused(ct.evidence_not_document)
            } else {
                tracing::warn!(?fields, message = e.message(), "web: evidence refused");
                refused(ct.evidence_failed)
            }
        }
        Err(e) if e.code() == tonic::Code::ResourceExhausted => refused(ct.evidence_pending),
        Err(e) => {
            tracing::warn!(code = ?e.code(), message = e.message(), "web: evidence upload failed");
            refused(ct.evidence_failed)
        }
    }
}

/// The bytes of `field`, or `None` once they pass [`MAX_FILE_BYTES`] (the rest is skipped
/// with the field).
async fn read(field: &mut Field<'_>) -> Result<Option<Vec<u8>>, MultipartError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await? {
        if bytes.len() + chunk.len() > MAX_FILE_BYTES {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

/// The text of `field`, at most `max` bytes of it (more is cut, for the length check to
/// refuse).
pub async fn text(field: &mut Field<'_>, max: usize) -> Result<String, MultipartError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await? {
        let room = (max + 1).saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_file_comes_back_as_it_was_written() {
        let a = Attached {
            sha256: "ab".repeat(32),
            size: 2048,
            name: "收据: 2026.pdf".into(),
        };
        assert_eq!(Attached::parse(&a.token()), Some(a.clone()));
        assert_eq!(a.size_text(), "2.0 KB");
    }

    #[test]
    fn a_forged_kept_value_is_nothing() {
        let sha = "ab".repeat(32);
        for bad in [
            String::new(),
            "x".into(),
            format!("{sha}:10"),
            format!("{sha}:0:a.pdf"),
            format!("{sha}:-1:a.pdf"),
            format!("{sha}:{}:a.pdf", MAX_FILE_BYTES + 1),
            format!("{sha}:10: "),
            format!("{}:10:a.pdf", "AB".repeat(32)),
            format!("{}:10:a.pdf", "ab".repeat(31)),
            format!("{sha}:10:{}", "n".repeat(256)),
        ] {
            assert_eq!(Attached::parse(&bad), None, "{bad}");
        }
    }
}
