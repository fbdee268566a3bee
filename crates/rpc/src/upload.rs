//! The one way a streamed upload is received: its chunks staged up to the size declared first,
//! then its media type recognised on the bytes themselves.

use creditmesh_domain::{Error, Violations};
use creditmesh_proto::{UploadMessage, UploadPart};
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

/// The metadata an upload's first message must carry: `Err` when the client's stream broke,
/// `Ok(Err)` (for the edge to audit) when the first message carries none.
pub async fn metadata<M: UploadMessage>(
    stream: &mut (impl Stream<Item = Result<M, Status>> + Unpin),
) -> Result<Result<M::Metadata, Error>, Status> {
    match stream.next().await.transpose()?.map(M::into_part) {
        Some(UploadPart::Metadata(m)) => Ok(Ok(m)),
        _ => Ok(Err(Error::invalid_field(
            "metadata",
            "the first message must carry the metadata",
        ))),
    }
}

/// What follows an upload's metadata, as parts.
pub fn parts<M: UploadMessage>(
    stream: impl Stream<Item = Result<M, Status>> + Unpin,
) -> impl Stream<Item = Result<Part, Status>> + Unpin {
    stream.map(|m| {
        m.map(|m| match m.into_part() {
            UploadPart::Chunk(bytes) => Part::Chunk(bytes),
            UploadPart::Metadata(_) | UploadPart::Empty => Part::Other,
        })
    })
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

/// Where the bytes of an upload go as they arrive.
trait Sink {
    fn size(&self) -> u64;
    fn head(&self) -> &[u8];
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()>;
}

impl Sink for Staging {
    fn size(&self) -> u64 {
        Staging::size(self)
    }
    fn head(&self) -> &[u8] {
        Staging::head(self)
    }
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        Staging::write(self, bytes).await
    }
}

impl Sink for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn head(&self) -> &[u8] {
        self
    }
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// Stages `parts`, which must come to exactly `declared` bytes (at most `max`). A stream that
/// breaks is answered as it broke (`Err`); content refused is `Ok(Err(..))`, for the edge to
/// audit.
pub async fn stage(
    blobs: &Blobs,
    declared: i64,
    parts: impl Stream<Item = Result<Part, Status>> + Unpin,
) -> Result<Result<Staged, Error>, Status> {
    let staging = match blobs.begin().await {
        Ok(s) => s,
        Err(e) => return Ok(Err(io(e))),
    };
    Ok(receive(staging, declared, parts)
        .await?
        .map(|(staging, media_type)| Staged {
            staging,
            media_type,
        }))
}

/// Receives `parts` in memory, as [`stage`] does on disk: for small uploads that are sealed
/// before anything is written.
pub async fn collect(
    declared: i64,
    parts: impl Stream<Item = Result<Part, Status>> + Unpin,
) -> Result<Result<(Vec<u8>, &'static str), Error>, Status> {
    let buffer = Vec::with_capacity(usize::try_from(declared).unwrap_or_default());
    receive(buffer, declared, parts).await
}

fn io(e: std::io::Error) -> Error {
    Error::internal(format!("document store: {e}"))
}

async fn receive<S: Sink>(
    mut sink: S,
    declared: i64,
    mut parts: impl Stream<Item = Result<Part, Status>> + Unpin,
) -> Result<Result<(S, &'static str), Error>, Status> {
    while let Some(part) = parts.next().await {
        match part? {
            Part::Chunk(bytes) => {
                if sink.size() as i64 + bytes.len() as i64 > declared {
                    return Ok(Err(Error::invalid_field(
                        "chunk",
                        "more bytes than metadata.size_bytes declared",
                    )));
                }
                if let Err(e) = sink.write(&bytes).await {
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
    if sink.size() as i64 != declared {
        return Ok(Err(Error::invalid_field(
            "chunk",
            format!("{} bytes arrived, {} were declared", sink.size(), declared),
        )));
    }
    let Some(media_type) = sniff_media_type(sink.head()) else {
        return Ok(Err(Error::invalid_field(
            "chunk",
            "the content is not a PDF, OFD, JPEG or PNG document",
        )));
    };
    Ok(Ok((sink, media_type)))
}
