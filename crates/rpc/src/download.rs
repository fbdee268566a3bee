//! The one way a stored document is streamed back: a first message with its metadata, then
//! its bytes in messages of at most [`CHUNK`] bytes, whatever sizes the store hands them in.

use creditmesh_storage::Blobs;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tonic::Status;

/// Bytes in one message of a download.
pub const CHUNK: usize = 256 * 1024;

/// A server stream of `M`.
pub type Download<M> = std::pin::Pin<Box<dyn Stream<Item = Result<M, Status>> + Send>>;

/// What a caller asks to read: a document (its SHA-256, lowercased) of what `owner` names (a
/// filing, a complaint), and the purpose it states, required of regulators and departments
/// (each read is recorded with it).
pub struct Asked<'a> {
    pub owner: &'a str,
    pub sha256: String,
    pub purpose: &'a str,
}

impl<'a> Asked<'a> {
    /// Checks the request's fields, each problem named by its field (`owner_field` for what
    /// holds the document).
    pub fn check(
        caller: &creditmesh_domain::Principal,
        (owner_field, owner): (&str, &'a str),
        sha256: &str,
        purpose: &'a str,
    ) -> Result<Self, creditmesh_domain::Error> {
        let mut v = creditmesh_domain::Violations::default();
        let owner = owner.trim();
        v.require(owner_field, owner);
        let sha256 = sha256.trim().to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            v.add(
                "sha256",
                "must be the 64 hex digits of a document's SHA-256",
            );
        }
        let purpose = purpose_of(&mut v, caller, purpose);
        v.finish().map(|()| Self {
            owner,
            sha256,
            purpose,
        })
    }
}

/// The purpose a reader states, trimmed: required of regulators and departments, whose every
/// read is recorded with it; at most 500 characters.
pub fn purpose_of<'a>(
    v: &mut creditmesh_domain::Violations,
    caller: &creditmesh_domain::Principal,
    purpose: &'a str,
) -> &'a str {
    let purpose = purpose.trim();
    if matches!(
        caller.kind,
        creditmesh_domain::PrincipalKind::Regulator | creditmesh_domain::PrincipalKind::Department
    ) {
        v.require("purpose", purpose);
    }
    v.max_chars("purpose", purpose, 500);
    purpose
}

/// `first`, then the bytes stored under `sha256`, each chunk wrapped by `chunk`.
pub async fn stream<M: Send + 'static>(
    blobs: &Blobs,
    sha256: &str,
    first: M,
    chunk: fn(Vec<u8>) -> M,
) -> Result<Download<M>, creditmesh_domain::Error> {
    let bytes: BoxStream<'static, std::io::Result<bytes::Bytes>> = blobs
        .stream(sha256)
        .await
        .map_err(|e| creditmesh_domain::Error::internal(format!("document store: {e}")))?;
    let chunks = bytes.flat_map(move |part| {
        let out: Vec<Result<M, Status>> = match part {
            Ok(b) => b.chunks(CHUNK).map(|c| Ok(chunk(c.to_vec()))).collect(),
            Err(e) => vec![Err(Status::internal(format!("document store: {e}")))],
        };
        futures::stream::iter(out)
    });
    Ok(Box::pin(
        futures::stream::once(async { Ok(first) }).chain(chunks),
    ))
}
