//! The supporting materials of an objection (Art. 22 提交相应证明材料): uploaded before the
//! objection is filed, each checked on its bytes and sealed at rest under its record's tenant
//! key as the statement is, counted against the access code it came with; named when the
//! objection is filed, and then opened by the agency that pushed the record and by the
//! authority holding it, each opening recorded. A file's name is not kept: it may name the
//! person.

use std::collections::HashMap;

use creditmesh_domain::{Error, ErrorCode, PrincipalKind, Tenant, Violations};
use creditmesh_proto::datapush::v1::*;
use creditmesh_rpc::{CallContext, Written, download, edge, timestamp, upload};
use creditmesh_storage::sqlx::AnyConnection;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status, Streaming};

use crate::index::Hashed;
use crate::material_store;
use crate::state::Api;
use crate::{objection_store, subjects};

const METHOD: &str = "UploadObjectionMaterial";
const READ_METHOD: &str = "ReadObjectionMaterial";
/// The largest material, in bytes.
pub const MAX_MATERIAL_BYTES: i64 = 5 * 1024 * 1024;
/// What one access code may upload: files, and bytes in all.
pub const MAX_PER_CODE: i64 = 5;
pub const MAX_BYTES_PER_CODE: i64 = 10 * 1024 * 1024;
const QUOTA: (i64, i64) = (MAX_PER_CODE, MAX_BYTES_PER_CODE);
/// Materials one objection may name.
pub const MAX_PER_OBJECTION: usize = 5;

/// Who uploads, for which record: checked before a byte is taken.
struct Uploader {
    tenant: String,
    record_id: String,
    /// The subject's access code, when the subject uploads.
    code: Option<Hashed>,
    size: i64,
}

fn quota_spent() -> Error {
    Error::new(
        ErrorCode::ResourceExhausted,
        format!(
            "this access code has uploaded {MAX_PER_CODE} materials or {} MiB: name those \
             uploaded in an objection, or ask the service desk for a new code",
            MAX_BYTES_PER_CODE / (1024 * 1024)
        ),
    )
}

pub(crate) async fn upload_objection_material(
    api: &Api,
    request: Request<Streaming<UploadObjectionMaterialRequest>>,
) -> Result<Response<UploadObjectionMaterialResponse>, Status> {
    let (ctx, mut stream) = edge::caller(
        &api.authn,
        request,
        &[
            PrincipalKind::Public,
            PrincipalKind::Agency,
            PrincipalKind::Regulator,
        ],
    )?;
    let received = receive(api, &ctx, &mut stream).await?;
    edge::call(
        &api.store,
        &ctx,
        METHOD,
        received,
        |(who, bytes, media_type)| keep(api, &ctx, who, bytes, media_type),
    )
    .await
}

/// The metadata checked (the access code before anything is looked up), then the bytes.
async fn receive(
    api: &Api,
    ctx: &CallContext,
    stream: &mut Streaming<UploadObjectionMaterialRequest>,
) -> Result<Result<(Uploader, Vec<u8>, &'static str), Error>, Status> {
    let meta = match upload::metadata(stream).await? {
        Ok(m) => m,
        Err(e) => return Ok(Err(e)),
    };
    let who = match uploader(api, ctx, &meta).await {
        Ok(who) => who,
        Err(e) => return Ok(Err(e)),
    };
    let parts = upload::parts(stream);
    Ok(upload::collect(who.size, parts)
        .await?
        .map(|(bytes, media_type)| (who, bytes, media_type)))
}

async fn uploader(
    api: &Api,
    ctx: &CallContext,
    meta: &MaterialMetadata,
) -> Result<Uploader, Error> {
    let mut v = Violations::default();
    v.require("metadata.record_id", &meta.record_id);
    let subject = subjects::parse(
        &api.keys,
        SubjectKind::Unspecified as i32,
        &meta.subject_identifier,
        "metadata.subject_identifier",
        &mut v,
    );
    let public = ctx.principal.kind == PrincipalKind::Public;
    if public {
        v.require("metadata.access_code", &meta.access_code);
    }
    upload::check_metadata(&mut v, &meta.file_name, meta.size_bytes, MAX_MATERIAL_BYTES);
    v.finish()?;
    let subject = subject.ok_or_else(|| Error::internal("subject checked"))?;
    let now = api.store.now();
    let mut conn = api.store.db.acquire().await?;
    let code = if public {
        subjects::check_code(&mut conn, &api.keys, &meta.access_code, &subject.index, now).await?;
        let code = subjects::code_index(&api.keys, &meta.access_code);
        if !material_store::room_for(&mut conn, &code, meta.size_bytes, QUOTA).await? {
            return Err(quota_spent());
        }
        Some(code)
    } else {
        None
    };
    let row = subjects::record_for(
        &mut conn,
        &api.keys,
        &ctx.principal,
        &meta.access_code,
        &subject,
        meta.record_id.trim(),
        now,
    )
    .await?;
    Ok(Uploader {
        tenant: row.tenant,
        record_id: row.record_id,
        code,
        size: meta.size_bytes,
    })
}

async fn keep(
    api: &Api,
    ctx: &CallContext,
    who: Uploader,
    bytes: Vec<u8>,
    media_type: &'static str,
) -> Result<UploadObjectionMaterialResponse, Error> {
    let material_id = uuid::Uuid::now_v7().to_string();
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let size = bytes.len() as i64;
    let sealed = api
        .keys
        .seal(
            &who.tenant,
            &crate::seal::material_binding(&material_id),
            &bytes,
        )
        .map_err(|e| Error::internal(format!("sealing: {e}")))?;
    drop(bytes);
    let store = &api.store;
    let (who, id, sha, sealed) = (&who, &material_id, &sha256, &sealed);
    let now = store
        .write(ctx, METHOD, |mut tx| async move {
            if let Some(code) = &who.code
                && !material_store::spend(&mut tx, code, who.size, QUOTA).await?
            {
                return Err(quota_spent());
            }
            let now = store.now();
            material_store::insert(
                &mut tx,
                &material_store::NewMaterial {
                    material_id: id,
                    tenant: &who.tenant,
                    record_id: &who.record_id,
                    uploaded_by: &ctx.principal_id,
                    code_index: who.code.as_ref().map(|c| c.current.as_str()).unwrap_or_default(),
                    media_type,
                    size_bytes: size,
                    sha256: sha,
                    key_id: &sealed.key_id,
                    envelope: &sealed.envelope,
                    uploaded_at: now,
                },
            )
            .await?;
            tracing::info!(material_id = %id, tenant = %who.tenant, record_id = %who.record_id, size, "objection material received");
            Ok((
                tx,
                Written {
                    value: now,
                    tenant: who.tenant.clone(),
                },
            ))
        })
        .await?;
    Ok(UploadObjectionMaterialResponse {
        material: Some(ObjectionMaterial {
            material_id,
            media_type: media_type.to_owned(),
            size_bytes: size,
            sha256,
            received_at: Some(timestamp(now)),
        }),
    })
}

/// Checks the materials an objection names: at most [`MAX_PER_OBJECTION`], each once.
pub fn check_named(v: &mut Violations, ids: &[String]) -> Vec<String> {
    if ids.len() > MAX_PER_OBJECTION {
        v.add(
            "material_ids",
            format!("at most {MAX_PER_OBJECTION} materials per objection"),
        );
    }
    let mut seen = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let id = id.trim();
        if id.is_empty() || !creditmesh_domain::error::is_id_token(id) {
            v.add(format!("material_ids[{i}]"), "is not a material id");
        } else if seen.iter().any(|s| s == id) {
            v.add(format!("material_ids[{i}]"), "is named twice");
        } else {
            seen.push(id.to_owned());
        }
    }
    seen
}

/// Attaches `ids` to `objection_id`, each a material uploaded for `record_id` by the same
/// caller (the subject: under the same access code) and not named before.
pub async fn attach(
    conn: &mut AnyConnection,
    ids: &[String],
    record_id: &str,
    ctx: &CallContext,
    code: Option<&Hashed>,
    objection_id: &str,
) -> Result<(), Error> {
    for (i, id) in ids.iter().enumerate() {
        let principal = &ctx.principal_id;
        if !material_store::attach(conn, objection_id, id, record_id, code, principal).await? {
            return Err(Error::invalid_field(
                format!("material_ids[{i}]"),
                "is not a material you uploaded for this record, or another objection names it",
            ));
        }
    }
    Ok(())
}

/// Fills in the materials of each of `objections`, in the order they were received.
pub async fn fill(conn: &mut AnyConnection, objections: &mut [Objection]) -> Result<(), Error> {
    let ids: Vec<String> = objections.iter().map(|o| o.objection_id.clone()).collect();
    let mut by_objection: HashMap<String, Vec<ObjectionMaterial>> = HashMap::new();
    for m in material_store::of_objections(conn, &ids).await? {
        by_objection
            .entry(m.objection_id.clone())
            .or_default()
            .push(crate::convert::material_proto(m));
    }
    for o in objections.iter_mut() {
        o.materials = by_objection.remove(&o.objection_id).unwrap_or_default();
    }
    Ok(())
}

pub(crate) async fn read_objection_material(
    api: &Api,
    request: Request<ReadObjectionMaterialRequest>,
) -> Result<Response<download::Download<ReadObjectionMaterialResponse>>, Status> {
    let (ctx, req) = edge::caller(
        &api.authn,
        request,
        &[PrincipalKind::Agency, PrincipalKind::Regulator],
    )?;
    let mut v = Violations::default();
    v.require("objection_id", &req.objection_id);
    v.require("material_id", &req.material_id);
    let purpose = download::purpose_of(&mut v, &ctx.principal, &req.purpose);
    let checked = v
        .finish()
        .map(|()| (req.objection_id.trim(), req.material_id.trim(), purpose));
    edge::call(&api.store, &ctx, READ_METHOD, checked, |asked| {
        read(api, &ctx, asked)
    })
    .await
}

/// Records the read of a material of an objection the caller may open, then streams it: the
/// metadata first, then the bytes.
async fn read(
    api: &Api,
    ctx: &CallContext,
    (objection_id, material_id, purpose): (&str, &str, &str),
) -> Result<download::Download<ReadObjectionMaterialResponse>, Error> {
    use read_objection_material_response::Part as Out;
    let store = &api.store;
    let found = store
        .write(ctx, READ_METHOD, |mut tx| async move {
            let not_found = || {
                Error::not_found(format!(
                    "no material {material_id} of an objection {objection_id} you may open"
                ))
            };
            let o = objection_store::find(&mut tx, objection_id)
                .await?
                .ok_or_else(not_found)?;
            let p = &ctx.principal;
            let may = match p.kind {
                PrincipalKind::Agency => p.subject == o.agency_uscc,
                PrincipalKind::Regulator => {
                    Tenant::parse(&o.tenant).is_ok_and(|t| p.tenant.can_see(t))
                }
                _ => false,
            };
            if !may {
                return Err(not_found());
            }
            let found = material_store::sealed(&mut tx, material_id, objection_id)
                .await?
                .ok_or_else(not_found)?;
            material_store::insert_read(
                &mut tx,
                material_id,
                &ctx.principal_id,
                purpose,
                store.now(),
            )
            .await?;
            let tenant = found.tenant.clone();
            Ok((
                tx,
                Written {
                    value: found,
                    tenant,
                },
            ))
        })
        .await?;
    let bytes = api
        .keys
        .open(
            &found.tenant,
            &found.key_id,
            &crate::seal::material_binding(material_id),
            &found.envelope,
        )
        .map_err(|e| Error::internal(format!("material {material_id}: {e}")))?;
    let first = ReadObjectionMaterialResponse {
        part: Some(Out::Metadata(crate::convert::material_proto(
            found.material,
        ))),
    };
    let chunks = bytes
        .chunks(download::CHUNK)
        .map(|c| {
            Ok(ReadObjectionMaterialResponse {
                part: Some(Out::Chunk(c.to_vec())),
            })
        })
        .collect::<Vec<_>>();
    Ok(Box::pin(futures::stream::iter(
        std::iter::once(Ok(first)).chain(chunks),
    )))
}
