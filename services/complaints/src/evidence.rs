//! Evidence a complainant uploads on the public listener (Art. 24): streamed, its size and type
//! checked on the bytes as filing's documents are, kept by its SHA-256.

use creditmesh_domain::{Error, Violations};
use creditmesh_proto::common::v1::DocumentRef;
use creditmesh_proto::complaints::v1::upload_evidence_request::Part;
use creditmesh_proto::complaints::v1::*;
use creditmesh_rpc::{CallContext, Written, edge, upload};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection};
use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::api::Api;

const METHOD: &str = "UploadEvidence";
/// The largest piece of evidence, in bytes.
pub const MAX_EVIDENCE_BYTES: i64 = 10 * 1024 * 1024;

pub(crate) async fn upload_evidence(
    api: &Api,
    request: Request<Streaming<UploadEvidenceRequest>>,
) -> Result<Response<UploadEvidenceResponse>, Status> {
    let ctx = api.authn.context(&request)?;
    let mut stream = request.into_inner();
    let received = receive(api, &mut stream).await?;
    edge::call(&api.store, &ctx, METHOD, received, |staged| {
        keep(api, &ctx, staged)
    })
    .await
}

async fn receive(
    api: &Api,
    stream: &mut Streaming<UploadEvidenceRequest>,
) -> Result<Result<upload::Staged, Error>, Status> {
    let meta = match stream.next().await {
        Some(Ok(UploadEvidenceRequest {
            part: Some(Part::Metadata(m)),
        })) => m,
        Some(Err(e)) => return Err(e),
        _ => {
            return Ok(Err(Error::invalid_field(
                "metadata",
                "the first message must carry the metadata",
            )));
        }
    };
    let mut v = Violations::default();
    upload::check_metadata(&mut v, &meta.file_name, meta.size_bytes, MAX_EVIDENCE_BYTES);
    if let Err(e) = v.finish() {
        return Ok(Err(e));
    }
    let parts = stream.map(|p| {
        p.map(|p| match p.part {
            Some(Part::Chunk(bytes)) => upload::Part::Chunk(bytes),
            _ => upload::Part::Other,
        })
    });
    upload::stage(&api.blobs, meta.size_bytes, parts).await
}

async fn keep(
    api: &Api,
    ctx: &CallContext,
    staged: upload::Staged,
) -> Result<UploadEvidenceResponse, Error> {
    let size = staged.staging.size() as i64;
    let media_type = staged.media_type;
    let sha256 = api
        .blobs
        .commit(staged.staging)
        .await
        .map_err(|e| Error::internal(format!("evidence store: {e}")))?;
    let store = &api.store;
    let sha = &sha256;
    store
        .write(ctx, METHOD, |mut tx| async move {
            sqlx::query(
                "INSERT INTO complaints_evidence (sha256, media_type, size_bytes, uploaded_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha.clone())
            .bind(media_type)
            .bind(size)
            .bind(store.now())
            .execute(&mut *tx)
            .await
            .map_err(StorageError::from)?;
            Ok((
                tx,
                Written {
                    value: (),
                    tenant: String::new(),
                },
            ))
        })
        .await?;
    Ok(UploadEvidenceResponse {
        document: Some(DocumentRef { sha256 }),
        media_type: media_type.to_owned(),
        size_bytes: size,
    })
}

/// The first of `hashes` that no upload stored, with its place.
pub async fn missing(
    conn: &mut AnyConnection,
    hashes: &[String],
) -> Result<Option<(usize, String)>, StorageError> {
    for (i, h) in hashes.iter().enumerate() {
        let row = sqlx::query("SELECT 1 FROM complaints_evidence WHERE sha256 = $1")
            .bind(h.clone())
            .fetch_optional(&mut *conn)
            .await?;
        if row.is_none() {
            return Ok(Some((i, h.clone())));
        }
    }
    Ok(None)
}
