//! The one way a streamed upload is received: its chunks staged up to the size declared first,
//! then its media type recognised on the bytes themselves.

use creditmesh_domain::{Error, Violations};
use creditmesh_storage::Blobs;
use creditmesh_storage::blob::{Staging, sniff_media_type};
use futures::{Stream, StreamExt};
use tonic::Status;

/// A part of an upload after its metadata: a chunk of bytes, or anything else (metadata sent
/// again), which is refused.
pub enum Part {
    Chunk(Vec<u8>),
    Other,
}

/// Checks an upload's declared file name and size (at most `max` bytes).
pub fn check_metadata(v: &mut Violations, file_name: &str, size_bytes: i64, max: i64) {
    v.require("metadata.file_name", file_name);
    v.max_chars("metadata.file_name", file_name, 255);
    if size_bytes <= 0 || size_bytes > max {
        v.add(
            "metadata.size_bytes",
            format!("must be between 1 and {max} bytes"),
        );
    }
}

/// An upload received whole: staged until committed, with its media type.
pub struct Staged {
    pub staging: Staging,
    pub media_type: &'static str,
}

/// Stages `parts`, which must come to exactly `declared` bytes (at most `max`). A stream that
/// breaks is answered as it broke (`Err`); content refused is `Ok(Err(..))`, for the edge to
/// audit.
pub async fn stage(
    blobs: &Blobs,
    declared: i64,
    mut parts: impl Stream<Item = Result<Part, Status>> + Unpin,
) -> Result<Result<Staged, Error>, Status> {
    let io = |e: std::io::Error| Error::internal(format!("document store: {e}"));
    let mut staging = match blobs.begin().await {
        Ok(s) => s,
        Err(e) => return Ok(Err(io(e))),
    };
    while let Some(part) = parts.next().await {
        match part? {
            Part::Chunk(bytes) => {
                if staging.size() as i64 + bytes.len() as i64 > declared {
                    return Ok(Err(Error::invalid_field(
                        "chunk",
                        "more bytes than metadata.size_bytes declared",
                    )));
                }
                if let Err(e) = staging.write(&bytes).await {
                    return Ok(Err(io(e)));
                }
            }
            Part::Other => {
                return Ok(Err(Error::invalid_field(
                    "metadata",
                    "may be sent only once, first",
                )));
            }
        }
    }
    if staging.size() as i64 != declared {
        return Ok(Err(Error::invalid_field(
            "chunk",
            format!(
                "{} bytes arrived, {} were declared",
                staging.size(),
                declared
            ),
        )));
    }
    let Some(media_type) = sniff_media_type(staging.head()) else {
        return Ok(Err(Error::invalid_field(
            "chunk",
            "the content is not a PDF, OFD, JPEG or PNG document",
        )));
    };
    Ok(Ok(Staged {
        staging,
        media_type,
    }))
}
