//! Evidence a complainant uploads on the public listener (Art. 24): streamed, its size and type
//! checked on the bytes as filing's documents are, kept by its SHA-256.

use creditmesh_domain::{Error, Violations};
use creditmesh_proto::common::v1::DocumentRef;
use creditmesh_proto::complaints::v1::upload_evidence_request::Part;
use creditmesh_proto::complaints::v1::*;
use creditmesh_rpc::{CallContext, Written, download, edge, status, status_from, upload};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection};
use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::state::Api;

const METHOD: &str = "UploadEvidence";
/// The largest piece of evidence, in bytes.
pub const MAX_EVIDENCE_BYTES: i64 = 10 * 1024 * 1024;
/// Uploads one address may hold that no complaint names yet, within [`PENDING_WINDOW_MICROS`].
pub const MAX_PENDING_UPLOADS: i64 = 20;
const PENDING_WINDOW_MICROS: i64 = 24 * 3600 * 1_000_000;

fn too_many() -> Error {
    Error::new(
        creditmesh_domain::ErrorCode::ResourceExhausted,
        format!(
            "this address holds {MAX_PENDING_UPLOADS} uploads that no complaint names yet: \
             submit the complaint naming them, or try again within a day"
        ),
    )
}

/// Uploads from `address` in the last day that no complaint names.
async fn pending(conn: &mut AnyConnection, address: &str, now: i64) -> Result<i64, StorageError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM complaints_upload WHERE address = $1 AND named = 0 \
         AND uploaded_at > $2",
    )
    .bind(address.to_owned())
    .bind(now - PENDING_WINDOW_MICROS)
    .fetch_one(&mut *conn)
    .await?)
}

/// Counts an upload from `address` against its cap, in the transaction that keeps it. The
/// address's quota row is locked first, so uploads from one address count one at a time
/// (PostgreSQL); over the cap, nothing is kept.
async fn count_upload(
    conn: &mut AnyConnection,
    address: &str,
    sha256: &str,
    now: i64,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO complaints_upload_quota (address, touched_at) VALUES ($1, $2) \
         ON CONFLICT (address) DO NOTHING",
    )
    .bind(address.to_owned())
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(StorageError::from)?;
    sqlx::query("UPDATE complaints_upload_quota SET touched_at = $1 WHERE address = $2")
        .bind(now)
        .bind(address.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(StorageError::from)?;
    if pending(conn, address, now).await? >= MAX_PENDING_UPLOADS {
        return Err(too_many());
    }
    sqlx::query(
        "INSERT INTO complaints_upload (id, address, sha256, uploaded_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(address.to_owned())
    .bind(sha256.to_owned())
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(StorageError::from)?;
    Ok(())
}

/// The uploads of `hashes` are named by a complaint: they no longer count against any cap.
pub async fn named(conn: &mut AnyConnection, hashes: &[String]) -> Result<(), StorageError> {
    for h in hashes {
        sqlx::query("UPDATE complaints_upload SET named = 1 WHERE sha256 = $1 AND named = 0")
            .bind(h.clone())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(crate) async fn upload_evidence(
    api: &Api,
    request: Request<Streaming<UploadEvidenceRequest>>,
) -> Result<Response<UploadEvidenceResponse>, Status> {
    let ctx = api.authn.context(&request)?;
    // Refused before a byte is taken; counted again, firmly, where the upload is kept.
    if !ctx.client_address.is_empty() {
        let mut conn = api
            .store
            .db
            .acquire()
            .await
            .map_err(creditmesh_rpc::status_from)?;
        let held = pending(&mut conn, &ctx.client_address, api.store.now())
            .await
            .map_err(creditmesh_rpc::status_from)?;
        if held >= MAX_PENDING_UPLOADS {
            return Err(creditmesh_rpc::status(
                api.store.reject(&ctx, METHOD, too_many()).await,
            ));
        }
    }
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
    let address = ctx.client_address.as_str();
    store
        .write(ctx, METHOD, |mut tx| async move {
            if !address.is_empty() {
                count_upload(&mut tx, address, sha, store.now()).await?;
            }
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

const READ_METHOD: &str = "ReadEvidence";

/// Streams one piece of evidence of a complaint the calling regulator handles, once the read
/// is recorded with its purpose: the metadata first, then the bytes.
/// The complaint, when a referral that reached the calling department shares its evidence
/// (Art. 24: the regulator chose to); NOT_FOUND otherwise.
async fn shared(
    conn: &mut creditmesh_storage::sqlx::AnyConnection,
    ctx: &creditmesh_rpc::CallContext,
    tracking_number: &str,
) -> Result<crate::store::ComplaintRow, Error> {
    let p = &ctx.principal;
    let not_found = || {
        Error::not_found(format!(
            "no complaint {tracking_number} shared with the caller"
        ))
    };
    if !crate::referral_store::shares_evidence_with(
        conn,
        tracking_number,
        &p.subject,
        &p.tenant.to_string(),
    )
    .await?
    {
        return Err(not_found());
    }
    crate::store::find(conn, tracking_number)
        .await?
        .ok_or_else(not_found)
}

pub(crate) async fn read_evidence(
    api: &Api,
    request: Request<ReadEvidenceRequest>,
) -> Result<Response<download::Download<ReadEvidenceResponse>>, Status> {
    use read_evidence_response::Part as Out;
    let ctx = api.authn.context(&request)?;
    ctx.require(&[
        creditmesh_domain::PrincipalKind::Regulator,
        creditmesh_domain::PrincipalKind::Department,
    ])?;
    let req = request.into_inner();
    let mut v = Violations::default();
    let tracking_number = req.tracking_number.trim();
    v.require("tracking_number", tracking_number);
    let (sha256, purpose) =
        download::check_request(&mut v, &ctx.principal, &req.sha256, &req.purpose);
    if let Err(e) = v.finish() {
        return Err(status(api.store.reject(&ctx, READ_METHOD, e).await));
    }
    let store = &api.store;
    let (ctx_ref, sha) = (&ctx, &sha256);
    store
        .write(ctx_ref, READ_METHOD, |mut tx| async move {
            let row = if ctx_ref.principal.kind == creditmesh_domain::PrincipalKind::Department {
                shared(&mut tx, ctx_ref, tracking_number).await?
            } else {
                crate::state::handled(&mut tx, ctx_ref, tracking_number).await?
            };
            if !row.evidence.iter().any(|e| e == sha) {
                return Err(Error::not_found(format!(
                    "complaint {tracking_number} names no evidence {sha}"
                )));
            }
            sqlx::query(
                "INSERT INTO complaints_evidence_read (tenant, read_id, tracking_number, sha256, \
                 principal, purpose, read_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(row.tenant.clone())
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(row.tracking_number.clone())
            .bind(sha.clone())
            .bind(ctx_ref.principal_id.clone())
            .bind(purpose.to_owned())
            .bind(store.now())
            .execute(&mut *tx)
            .await
            .map_err(StorageError::from)?;
            Ok((
                tx,
                Written {
                    value: (),
                    tenant: row.tenant,
                },
            ))
        })
        .await
        .map_err(status)?;
    let mut conn = store.db.acquire().await.map_err(status_from)?;
    let (media_type, size_bytes): (String, i64) =
        sqlx::query_as("SELECT media_type, size_bytes FROM complaints_evidence WHERE sha256 = $1")
            .bind(sha256.clone())
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| status_from(StorageError::from(e)))?
            .ok_or_else(|| Status::internal(format!("evidence {sha256} is named, not recorded")))?;
    drop(conn);
    let first = ReadEvidenceResponse {
        part: Some(Out::Metadata(UploadEvidenceResponse {
            document: Some(DocumentRef {
                sha256: sha256.clone(),
            }),
            media_type,
            size_bytes,
        })),
    };
    download::stream(&api.blobs, &sha256, first, |c| ReadEvidenceResponse {
        part: Some(Out::Chunk(c)),
    })
    .await
    .map(Response::new)
}
