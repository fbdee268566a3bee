//! Documents, streamed in and stored by their SHA-256 (Art. 8).

use creditmesh_domain::{Error, Uscc, Violations};
use creditmesh_proto::common::v1 as common;
use creditmesh_proto::filing::v1::*;
use creditmesh_rpc::{CallContext, Written, download, edge, upload};
use creditmesh_storage::blob::Staging;
use tonic::{Request, Response, Status, Streaming};

use crate::state::{Api, MAX_DOCUMENT_BYTES};
use crate::store;

const METHOD: &str = "UploadDocument";
const READ_METHOD: &str = "ReadDocument";

pub(crate) async fn upload_document(
    api: &Api,
    request: Request<Streaming<UploadDocumentRequest>>,
) -> Result<Response<UploadDocumentResponse>, Status> {
    let (ctx, mut stream) = edge::caller(&api.authn, request, &[])?;
    // A broken stream is answered as it broke; a document refused is audited by the edge.
    let received = receive(api, &ctx, &mut stream).await?;
    edge::call(&api.store, &ctx, METHOD, received, |r| keep(api, &ctx, r)).await
}

/// A document received whole and checked, staged until it is kept.
struct Received {
    uscc: Uscc,
    meta: DocumentMetadata,
    kind: DocumentKind,
    staging: Staging,
    media_type: &'static str,
}

async fn receive(
    api: &Api,
    ctx: &CallContext,
    stream: &mut Streaming<UploadDocumentRequest>,
) -> Result<Result<Received, Error>, Status> {
    let uscc = match Api::agency(ctx) {
        Ok(u) => u,
        Err(e) => return Ok(Err(e)),
    };
    let meta = match upload::metadata(stream).await? {
        Ok(m) => m,
        Err(e) => return Ok(Err(e)),
    };
    let mut v = Violations::default();
    let kind = DocumentKind::try_from(meta.kind).unwrap_or(DocumentKind::Unspecified);
    if kind == DocumentKind::Unspecified {
        v.add("metadata.kind", "is required");
    }
    upload::check_metadata(&mut v, &meta.file_name, meta.size_bytes, MAX_DOCUMENT_BYTES);
    if let Err(e) = v.finish() {
        return Ok(Err(e));
    }
    let parts = upload::parts(stream);
    let upload::Staged {
        staging,
        media_type,
    } = match upload::stage(&api.blobs, meta.size_bytes, parts).await? {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(Received {
        uscc,
        meta,
        kind,
        staging,
        media_type,
    }))
}

/// Stores the document under its hash and records that the agency uploaded it.
async fn keep(api: &Api, ctx: &CallContext, r: Received) -> Result<UploadDocumentResponse, Error> {
    let Received {
        uscc,
        meta,
        kind,
        staging,
        media_type,
    } = r;
    let size = staging.size() as i64;
    let sha256 = api
        .blobs
        .commit(staging)
        .await
        .map_err(|e| Error::internal(format!("document store: {e}")))?;
    let tenant = ctx.principal.tenant.to_string();
    let kind_name = kind.as_str_name().to_ascii_lowercase();
    let store = &api.store;
    let (uscc, sha, meta, kind_name, tenant) = (&uscc, &sha256, &meta, &kind_name, &tenant);
    store
        .write(ctx, METHOD, |mut tx| async move {
            store::insert_document(
                &mut tx,
                tenant,
                uscc.as_str(),
                sha,
                kind_name,
                media_type,
                size,
                meta.file_name.trim(),
                store.now(),
            )
            .await?;
            Ok((
                tx,
                Written {
                    value: (),
                    tenant: tenant.clone(),
                },
            ))
        })
        .await?;
    Ok(UploadDocumentResponse {
        document: Some(common::DocumentRef { sha256 }),
        media_type: media_type.to_owned(),
        size_bytes: size,
    })
}

pub(crate) type DocumentStream = download::Download<ReadDocumentResponse>;

/// The filing, when the caller does not hold it but may open it all the same: a regulator
/// supervising the agency as the authority of a place where it works (Art. 5: review reported
/// an act of it or one of its counties), or the department a revocation referred the agency to
/// with its documents shared (Art. 15(3)); and the filing holds the document. `None` for every
/// other caller, who is judged as a holder is.
async fn beyond_holder(
    api: &Api,
    ctx: &creditmesh_rpc::CallContext,
    filing_id: &str,
    sha256: &str,
) -> Result<Option<store::FilingRow>, Error> {
    use creditmesh_domain::PrincipalKind;
    let p = &ctx.principal;
    if !matches!(p.kind, PrincipalKind::Regulator | PrincipalKind::Department) {
        return Ok(None);
    }
    let mut conn = api.store.db.acquire().await?;
    let Some(filing) = store::get_filing(&mut conn, filing_id).await? else {
        return Ok(None);
    };
    let admitted = if p.kind == PrincipalKind::Department {
        store::shared_with(&mut conn, filing_id, &p.subject).await?
    } else {
        let holds =
            creditmesh_domain::Tenant::parse(&filing.tenant).is_ok_and(|t| p.tenant.can_see(t));
        !holds && store::supervises_at(&mut conn, &filing.uscc, &p.tenant.to_string()).await?
    };
    if !admitted {
        return Ok(None);
    }
    if !store::refers_to(&mut conn, &filing.tenant, &filing.filing_id, sha256).await? {
        return Err(Error::not_found(format!(
            "filing {filing_id} holds no document {sha256}"
        )));
    }
    Ok(Some(filing))
}

/// Streams a document of a filing to a caller who may see the filing, once the read is
/// recorded: the metadata first, then the bytes.
pub(crate) async fn read_document(
    api: &Api,
    request: Request<ReadDocumentRequest>,
) -> Result<Response<DocumentStream>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let owner = ("filing_id", req.filing_id.as_str());
    let checked = download::Asked::check(&ctx.principal, owner, &req.sha256, &req.purpose);
    edge::call(&api.store, &ctx, READ_METHOD, checked, |asked| {
        read(api, &ctx, asked)
    })
    .await
}

async fn read(
    api: &Api,
    ctx: &CallContext,
    asked: download::Asked<'_>,
) -> Result<DocumentStream, Error> {
    let download::Asked {
        owner: filing_id,
        sha256,
        purpose,
    } = asked;
    use read_document_response::Part as Out;
    let store = &api.store;
    let sha = &sha256;
    let at_place = &beyond_holder(api, ctx, filing_id, sha).await?;
    let filing = store
        .write(ctx, READ_METHOD, |mut tx| async move {
            // A reader beyond the holder was checked before: a place's scope does not see the
            // holder's rows, and its read is recorded in its own tenant; a department's in
            // the filing's.
            let (filing, read_in) = match at_place {
                Some(filing)
                    if ctx.principal.kind == creditmesh_domain::PrincipalKind::Department =>
                {
                    (filing.clone(), filing.tenant.clone())
                }
                Some(filing) => (filing.clone(), ctx.principal.tenant.to_string()),
                None => {
                    let filing = api.visible_filing(&mut tx, ctx, filing_id).await?;
                    if !store::refers_to(&mut tx, &filing.tenant, &filing.filing_id, sha).await? {
                        return Err(Error::not_found(format!(
                            "filing {filing_id} holds no document {sha}"
                        )));
                    }
                    let tenant = filing.tenant.clone();
                    (filing, tenant)
                }
            };
            store::insert_document_read(
                &mut tx,
                &read_in,
                &filing.filing_id,
                sha,
                &ctx.principal_id,
                purpose,
                store.now(),
            )
            .await?;
            Ok((
                tx,
                Written {
                    value: filing,
                    tenant: read_in,
                },
            ))
        })
        .await?;
    let mut conn = store.db.acquire().await?;
    let (kind, media_type, size_bytes, file_name) = store::document(&mut conn, &filing.uscc, sha)
        .await?
        .ok_or_else(|| Error::internal(format!("document {sha} is referred to, not recorded")))?;
    drop(conn);
    tracing::info!(filing = %filing.filing_id, sha256 = %sha, "document read");
    let first = ReadDocumentResponse {
        part: Some(Out::Metadata(ReadDocumentMetadata {
            sha256: sha256.clone(),
            kind: DocumentKind::from_str_name(&kind.to_ascii_uppercase())
                .unwrap_or(DocumentKind::Other) as i32,
            file_name,
            media_type,
            size_bytes,
        })),
    };
    download::stream(&api.blobs, sha, first, |c| ReadDocumentResponse {
        part: Some(Out::Chunk(c)),
    })
    .await
}
