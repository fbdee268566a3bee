//! What anyone checks the register against: the newest signed checkpoint, a notice's
//! inclusion proof, and the consistency proof between two checkpoints.

use creditmesh_domain::Error;
use creditmesh_proto::disclosure::v1::*;
use creditmesh_rpc::edge;
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::AnyConnection;
use tonic::{Request, Response, Status};

use crate::checkpoint_store;
use crate::convert::notice_proto;
use crate::log_store;
use crate::state::Api;
use crate::store;

/// The checkpoint of `size` (the newest when 0), or why there is none.
async fn checkpoint_of(
    api: &Api,
    conn: &mut AnyConnection,
    field: &str,
    size: i64,
) -> Result<checkpoint_store::Stored, Error> {
    if size < 0 {
        return Err(Error::invalid_field(field, "must not be negative"));
    }
    let wanted = (size > 0).then_some(size as u64);
    let required = api.register.cosignatures_required;
    checkpoint_store::find(conn, wanted, required)
        .await?
        .ok_or_else(|| match wanted {
            Some(n) => Error::invalid_field(field, format!("no checkpoint of size {n} was signed")),
            None if required > 0 => Error::failed_precondition(format!(
                "no checkpoint of the register carries {required} cosignatures yet"
            )),
            None => Error::failed_precondition("the register has no checkpoint yet"),
        })
}

fn proof_bytes(proof: Vec<tlog_tiles::Hash>) -> Vec<Vec<u8>> {
    proof.into_iter().map(|h| h.0.to_vec()).collect()
}

pub(crate) async fn get_register_head(
    api: &Api,
    request: Request<GetRegisterHeadRequest>,
) -> Result<Response<GetRegisterHeadResponse>, Status> {
    api.authn.context(&request)?;
    edge::read(async {
        let mut conn = api.store.db.acquire().await?;
        let c = checkpoint_of(api, &mut conn, "size", 0).await?;
        Ok(GetRegisterHeadResponse {
            size: c.size as i64,
            root_hash: c.root,
            checkpoint: c.note,
            verifier_key: api.key.verifier_keys(),
            cosignatures: c.cosignatures as i32,
        })
    })
    .await
}

pub(crate) async fn get_notice_proof(
    api: &Api,
    request: Request<GetNoticeProofRequest>,
) -> Result<Response<GetNoticeProofResponse>, Status> {
    let (_, req) = edge::caller(&api.authn, request, &[])?;
    edge::read(async {
        if req.sequence < 0 {
            return Err(Error::invalid_field("sequence", "must not be negative"));
        }
        let mut conn = api.store.db.acquire().await?;
        let c = checkpoint_of(api, &mut conn, "tree_size", req.tree_size).await?;
        let n = req.sequence as u64;
        if n >= c.size {
            return Err(Error::invalid_field(
                "sequence",
                format!("is not in the tree of size {}", c.size),
            ));
        }
        let notice = store::notice_at(&mut conn, n)
            .await?
            .ok_or_else(|| StorageError::Corrupt(format!("notice {n} is missing")))?;
        let proof = log_store::prove_leaf(&mut conn, c.size, n).await?;
        Ok(GetNoticeProofResponse {
            notice: Some(notice_proto(notice)),
            tree_size: c.size as i64,
            proof: proof_bytes(proof),
            checkpoint: c.note,
        })
    })
    .await
}

pub(crate) async fn get_consistency_proof(
    api: &Api,
    request: Request<GetConsistencyProofRequest>,
) -> Result<Response<GetConsistencyProofResponse>, Status> {
    let (_, req) = edge::caller(&api.authn, request, &[])?;
    edge::read(async {
        let mut conn = api.store.db.acquire().await?;
        let to = checkpoint_of(api, &mut conn, "to_size", req.to_size).await?;
        if req.from_size <= 0 {
            return Err(Error::invalid_field("from_size", "must be positive"));
        }
        let from = checkpoint_of(api, &mut conn, "from_size", req.from_size).await?;
        if from.size > to.size {
            return Err(Error::invalid_field(
                "from_size",
                format!("must not exceed to_size ({})", to.size),
            ));
        }
        let proof = log_store::prove_consistency(&mut conn, to.size, from.size).await?;
        Ok(GetConsistencyProofResponse {
            from_size: from.size as i64,
            to_size: to.size as i64,
            proof: proof_bytes(proof),
            from_checkpoint: from.note,
            to_checkpoint: to.note,
        })
    })
    .await
}

/// Tiles of height 8, as C2SP tlog-tiles fixes it.
const TILE_HEIGHT: u8 = 8;

pub(crate) async fn get_tile(
    api: &Api,
    request: Request<GetTileRequest>,
) -> Result<Response<GetTileResponse>, Status> {
    api.authn.context(&request)?;
    let path = request.into_inner().path;
    edge::read(async {
        let mut conn = api.store.db.acquire().await?;
        let c = checkpoint_of(api, &mut conn, "path", 0).await?;
        if path == "checkpoint" {
            return Ok(GetTileResponse {
                data: c.note.into_bytes(),
                content_type: "text/plain; charset=utf-8".into(),
                immutable: false,
            });
        }
        let (tile_path, entries) = if let Some(rest) = path.strip_prefix("tile/entries/") {
            (format!("tile/{TILE_HEIGHT}/data/{rest}"), true)
        } else if let Some(rest) = path.strip_prefix("tile/") {
            (format!("tile/{TILE_HEIGHT}/{rest}"), false)
        } else {
            return Err(Error::not_found(format!("no file {path:?} in the log")));
        };
        let tile = tlog_tiles::Tile::from_path(&tile_path)
            .map_err(|_| Error::not_found(format!("no file {path:?} in the log")))?;
        let start = tile.level_index() << TILE_HEIGHT;
        let width = u64::from(tile.width());
        let available = c.size >> (u32::from(TILE_HEIGHT) * u32::from(tile.level()));
        if start + width > available {
            return Err(Error::not_found(format!(
                "{path} lies beyond the checkpoint of {} notices",
                c.size
            )));
        }
        let data = if entries {
            store::entry_bundle(&mut conn, start, width).await?
        } else {
            log_store::tile_data(&mut conn, &tile).await?
        };
        Ok(GetTileResponse {
            data,
            content_type: "application/octet-stream".into(),
            // A full hash tile never changes; an entry bundle changes when a regulator's
            // decision erases a notice's content, so it is revalidated.
            immutable: width == 1 << TILE_HEIGHT && !entries,
        })
    })
    .await
}
