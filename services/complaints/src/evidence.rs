//! Evidence a complainant uploads on the public listener (Art. 24): streamed, its size and type
//! checked on the bytes as filing's documents are, kept by its SHA-256.

use creditmesh_domain::{Error, Violations};
use creditmesh_proto::common::v1::DocumentRef;
use creditmesh_proto::complaints::v1::*;
use creditmesh_rpc::{CallContext, Written, download, edge, upload};
use creditmesh_storage::sqlx::AnyConnection;
use tonic::{Request, Response, Status, Streaming};

use crate::evidence_store;
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
async fn pending(conn: &mut AnyConnection, address: &str, now: i64) -> Result<i64, Error> {
    Ok(evidence_store::pending(conn, address, now - PENDING_WINDOW_MICROS).await?)
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
    evidence_store::lock_quota(conn, address, now).await?;
    if pending(conn, address, now).await? >= MAX_PENDING_UPLOADS {
        return Err(too_many());
    }
    Ok(evidence_store::insert_upload(conn, address, sha256, now).await?)
}

/// Refuses an address that holds too many uploads no complaint names, before a byte is taken;
/// counted again, firmly, where the upload is kept.
async fn room_for_upload(api: &Api, ctx: &CallContext) -> Result<(), Error> {
    if ctx.client_address.is_empty() {
        return Ok(());
    }
    let mut conn = api.store.db.acquire().await?;
    if pending(&mut conn, &ctx.client_address, api.store.now()).await? >= MAX_PENDING_UPLOADS {
        return Err(too_many());
    }
    Ok(())
}

pub(crate) async fn upload_evidence(
    api: &Api,
    request: Request<Streaming<UploadEvidenceRequest>>,
) -> Result<Response<UploadEvidenceResponse>, Status> {
    let ctx = api.authn.context(&request)?;
    if let Err(e) = room_for_upload(api, &ctx).await {
        return edge::refuse(&api.store, &ctx, METHOD, e).await;
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
    let meta = match upload::metadata(stream).await? {
        Ok(m) => m,
        Err(e) => return Ok(Err(e)),
    };
    let mut v = Violations::default();
    upload::check_metadata(&mut v, &meta.file_name, meta.size_bytes, MAX_EVIDENCE_BYTES);
    if let Err(e) = v.finish() {
        return Ok(Err(e));
    }
    let parts = upload::parts(stream);
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
            evidence_store::insert_evidence(&mut tx, sha, media_type, size, store.now()).await?;
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

const READ_METHOD: &str = "ReadEvidence";

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

/// Streams one piece of evidence of a complaint the calling regulator handles (or that a
/// referral shared with the calling department), once the read is recorded with its purpose.
pub(crate) async fn read_evidence(
    api: &Api,
    request: Request<ReadEvidenceRequest>,
) -> Result<Response<download::Download<ReadEvidenceResponse>>, Status> {
    let (ctx, req) = edge::caller(
        &api.authn,
        request,
        &[
            creditmesh_domain::PrincipalKind::Regulator,
            creditmesh_domain::PrincipalKind::Department,
        ],
    )?;
    let owner = ("tracking_number", req.tracking_number.as_str());
    let checked = download::Asked::check(&ctx.principal, owner, &req.sha256, &req.purpose);
    edge::call(&api.store, &ctx, READ_METHOD, checked, |asked| {
        read(api, &ctx, asked)
    })
    .await
}

/// Records the read, then streams the piece: the metadata first, then the bytes.
async fn read(
    api: &Api,
    ctx: &CallContext,
    asked: download::Asked<'_>,
) -> Result<download::Download<ReadEvidenceResponse>, Error> {
    let download::Asked {
        owner: tracking_number,
        sha256,
        purpose,
    } = asked;
    use read_evidence_response::Part as Out;
    let store = &api.store;
    let sha = &sha256;
    store
        .write(ctx, READ_METHOD, |mut tx| async move {
            let row = if ctx.principal.kind == creditmesh_domain::PrincipalKind::Department {
                shared(&mut tx, ctx, tracking_number).await?
            } else {
                crate::state::handled(&mut tx, ctx, tracking_number).await?
            };
            if !row.evidence.iter().any(|e| e == sha) {
                return Err(Error::not_found(format!(
                    "complaint {tracking_number} names no evidence {sha}"
                )));
            }
            evidence_store::insert_read(
                &mut tx,
                &evidence_store::Read {
                    tenant: &row.tenant,
                    tracking_number: &row.tracking_number,
                    sha256: sha,
                    principal: &ctx.principal_id,
                    purpose,
                    read_at: store.now(),
                },
            )
            .await?;
            Ok((
                tx,
                Written {
                    value: (),
                    tenant: row.tenant,
                },
            ))
        })
        .await?;
    let mut conn = store.db.acquire().await?;
    let (media_type, size_bytes) = evidence_store::evidence(&mut conn, sha)
        .await?
        .ok_or_else(|| Error::internal(format!("evidence {sha256} is named, not recorded")))?;
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
}
