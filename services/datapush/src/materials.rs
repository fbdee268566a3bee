//! The supporting materials of an objection (Art. 22 提交相应证明材料): uploaded before the
//! objection is filed, each checked on its bytes and sealed at rest under its record's tenant
//! key as the statement is, counted against the access code it came with; named when the
//! objection is filed, and then opened by the agency that pushed the record and by the
//! authority holding it, each opening recorded. A file's name is not kept: it may name the
//! person.

use std::collections::HashMap;

use creditmesh_domain::{Error, ErrorCode, PrincipalKind, Tenant, Violations};
use creditmesh_proto::datapush::v1::upload_objection_material_request::Part;
use creditmesh_proto::datapush::v1::*;
use creditmesh_rpc::{CallContext, Written, download, edge, status, timestamp, upload};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status, Streaming};

use crate::index::Hashed;
use crate::state::Api;
use crate::{objection_store, subjects};

const METHOD: &str = "UploadObjectionMaterial";
const READ_METHOD: &str = "ReadObjectionMaterial";
/// The largest material, in bytes.
pub const MAX_MATERIAL_BYTES: i64 = 5 * 1024 * 1024;
/// What one access code may upload: files, and bytes in all.
pub const MAX_PER_CODE: i64 = 5;
pub const MAX_BYTES_PER_CODE: i64 = 10 * 1024 * 1024;
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
    let ctx = api.authn.context(&request)?;
    ctx.require(&[
        PrincipalKind::Public,
        PrincipalKind::Agency,
        PrincipalKind::Regulator,
    ])?;
    let mut stream = request.into_inner();
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
    let meta = match stream.next().await {
        Some(Ok(UploadObjectionMaterialRequest {
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
    let who = match uploader(api, ctx, &meta).await {
        Ok(who) => who,
        Err(e) => return Ok(Err(e)),
    };
    let parts = stream.map(|p| {
        p.map(|p| match p.part {
            Some(Part::Chunk(bytes)) => upload::Part::Chunk(bytes),
            _ => upload::Part::Other,
        })
    });
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
        if !room_for(&mut conn, &code, meta.size_bytes).await? {
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

/// Whether `code` may upload `size` more bytes.
async fn room_for(
    conn: &mut AnyConnection,
    code: &Hashed,
    size: i64,
) -> Result<bool, StorageError> {
    let (a, b) = code.pair();
    Ok(sqlx::query(
        "SELECT 1 FROM datapush_access_code WHERE code_index IN ($1, $2) AND uploads < $3 \
         AND upload_bytes + $4 <= $5",
    )
    .bind(a)
    .bind(b)
    .bind(MAX_PER_CODE)
    .bind(size)
    .bind(MAX_BYTES_PER_CODE)
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// Counts an upload against `code`, in the transaction that keeps it: a guarded update, so
/// that uploads under one code at once cannot pass the quota together.
async fn spend(conn: &mut AnyConnection, code: &Hashed, size: i64) -> Result<bool, StorageError> {
    let (a, b) = code.pair();
    Ok(sqlx::query(
        "UPDATE datapush_access_code SET uploads = uploads + 1, \
         upload_bytes = upload_bytes + $4 WHERE code_index IN ($1, $2) AND uploads < $3 \
         AND upload_bytes + $4 <= $5",
    )
    .bind(a)
    .bind(b)
    .bind(MAX_PER_CODE)
    .bind(size)
    .bind(MAX_BYTES_PER_CODE)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0)
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
                && !spend(&mut tx, code, who.size).await?
            {
                return Err(quota_spent());
            }
            let now = store.now();
            sqlx::query(
                "INSERT INTO datapush_material (material_id, tenant, record_id, uploaded_by, \
                 code_index, media_type, size_bytes, sha256, key_id, envelope, uploaded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(id.clone())
            .bind(who.tenant.clone())
            .bind(who.record_id.clone())
            .bind(ctx.principal_id.clone())
            .bind(
                who.code
                    .as_ref()
                    .map(|c| c.current.clone())
                    .unwrap_or_default(),
            )
            .bind(media_type)
            .bind(size)
            .bind(sha.clone())
            .bind(sealed.key_id.clone())
            .bind(sealed.envelope.clone())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StorageError::from)?;
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
    let (c1, c2) = code.map(Hashed::pair).unwrap_or_default();
    for (i, id) in ids.iter().enumerate() {
        let attached = sqlx::query(
            "UPDATE datapush_material SET objection_id = $1 WHERE material_id = $2 \
             AND record_id = $3 AND objection_id IS NULL \
             AND ((code_index <> '' AND code_index IN ($4, $5)) \
                  OR (code_index = '' AND uploaded_by = $6))",
        )
        .bind(objection_id.to_owned())
        .bind(id.clone())
        .bind(record_id.to_owned())
        .bind(c1.clone())
        .bind(c2.clone())
        .bind(if code.is_some() {
            String::new()
        } else {
            ctx.principal_id.clone()
        })
        .execute(&mut *conn)
        .await
        .map_err(StorageError::from)?
        .rows_affected();
        if attached == 0 {
            return Err(Error::invalid_field(
                format!("material_ids[{i}]"),
                "is not a material you uploaded for this record, or another objection names it",
            ));
        }
    }
    Ok(())
}

const MATERIAL_COLUMNS: &str =
    "material_id, media_type, size_bytes, sha256, uploaded_at, objection_id";

fn material(
    r: &creditmesh_storage::sqlx::any::AnyRow,
) -> Result<(String, ObjectionMaterial), sqlx::Error> {
    Ok((
        r.try_get(5)?,
        ObjectionMaterial {
            material_id: r.try_get(0)?,
            media_type: r.try_get(1)?,
            size_bytes: r.try_get(2)?,
            sha256: r.try_get(3)?,
            received_at: Some(timestamp(r.try_get(4)?)),
        },
    ))
}

/// Fills in the materials of each of `objections`, in the order they were received.
pub async fn fill(conn: &mut AnyConnection, objections: &mut [Objection]) -> Result<(), Error> {
    if objections.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT {MATERIAL_COLUMNS} FROM datapush_material WHERE objection_id IN ({{ids}}) \
         ORDER BY material_id"
    );
    let ids: Vec<String> = objections.iter().map(|o| o.objection_id.clone()).collect();
    let rows = crate::store::fetch_in(conn, &sql, &ids)
        .await
        .map_err(StorageError::from)?;
    let mut by_objection: HashMap<String, Vec<ObjectionMaterial>> = HashMap::new();
    for r in &rows {
        let (objection_id, m) = material(r).map_err(StorageError::from)?;
        by_objection.entry(objection_id).or_default().push(m);
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
    use read_objection_material_response::Part as Out;
    let ctx = api.authn.context(&request)?;
    ctx.require(&[PrincipalKind::Agency, PrincipalKind::Regulator])?;
    let req = request.into_inner();
    let mut v = Violations::default();
    v.require("objection_id", &req.objection_id);
    v.require("material_id", &req.material_id);
    let purpose = req.purpose.trim();
    if ctx.principal.kind == PrincipalKind::Regulator {
        v.require("purpose", purpose);
    }
    v.max_chars("purpose", purpose, 500);
    if let Err(e) = v.finish() {
        return Err(status(api.store.reject(&ctx, READ_METHOD, e).await));
    }
    let (objection_id, material_id) = (req.objection_id.trim(), req.material_id.trim());
    let store = &api.store;
    let ctx_ref = &ctx;
    let (meta, tenant, key_id, envelope) = store
        .write(ctx_ref, READ_METHOD, |mut tx| async move {
            let not_found = || {
                Error::not_found(format!(
                    "no material {material_id} of an objection {objection_id} you may open"
                ))
            };
            let o = objection_store::find(&mut tx, objection_id)
                .await?
                .ok_or_else(not_found)?;
            let p = &ctx_ref.principal;
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
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {MATERIAL_COLUMNS}, tenant, key_id, envelope FROM datapush_material \
                 WHERE material_id = $1 AND objection_id = $2"
            )))
            .bind(material_id.to_owned())
            .bind(objection_id.to_owned())
            .fetch_optional(&mut *tx)
            .await
            .map_err(StorageError::from)?
            .ok_or_else(not_found)?;
            let (_, meta) = material(&row).map_err(StorageError::from)?;
            let get = |i: usize| -> Result<String, Error> {
                Ok(row.try_get::<String, _>(i).map_err(StorageError::from)?)
            };
            let (tenant, key_id, envelope) = (get(6)?, get(7)?, get(8)?);
            sqlx::query(
                "INSERT INTO datapush_material_read (read_id, material_id, principal, purpose, \
                 read_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(material_id.to_owned())
            .bind(ctx_ref.principal_id.clone())
            .bind(purpose.to_owned())
            .bind(store.now())
            .execute(&mut *tx)
            .await
            .map_err(StorageError::from)?;
            Ok((
                tx,
                Written {
                    value: (meta, tenant.clone(), key_id, envelope),
                    tenant,
                },
            ))
        })
        .await
        .map_err(status)?;
    let bytes = api
        .keys
        .open(
            &tenant,
            &key_id,
            &crate::seal::material_binding(material_id),
            &envelope,
        )
        .map_err(|e| Status::internal(format!("material {material_id}: {e}")))?;
    let first = ReadObjectionMaterialResponse {
        part: Some(Out::Metadata(meta)),
    };
    let chunks = bytes
        .chunks(download::CHUNK)
        .map(|c| {
            Ok(ReadObjectionMaterialResponse {
                part: Some(Out::Chunk(c.to_vec())),
            })
        })
        .collect::<Vec<_>>();
    Ok(Response::new(Box::pin(futures::stream::iter(
        std::iter::once(Ok(first)).chain(chunks),
    ))))
}
