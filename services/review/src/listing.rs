//! The severe-dishonesty list and what a listing does (Art. 9(2), 15(1)).

use creditmesh_domain::calendar::parse_iso_date;
use creditmesh_domain::identity_document::IdentityDocument;
use creditmesh_domain::resident_id::ResidentId;
use creditmesh_domain::{Error, Uscc, Violations};
use creditmesh_proto::review::v1::*;
use creditmesh_rpc::{CallContext, Written, edge};
use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::state::Api;
use crate::task_store::{self};

fn listing(
    v: &mut Violations,
    prefix: &str,
    e: &Option<DishonestyEntry>,
) -> Option<task_store::Listing> {
    let Some(e) = e else {
        v.add(prefix, "is required");
        return None;
    };
    let party = ListedParty::try_from(e.party).unwrap_or(ListedParty::Unspecified);
    let identifier = e.identifier.trim().to_ascii_uppercase();
    match party {
        ListedParty::Organisation => {
            v.check(&format!("{prefix}.identifier"), Uscc::parse(&identifier));
        }
        // A person by the number of any identity document they may be named by in a filing.
        ListedParty::Person => {
            if IdentityDocument::infer(&identifier).is_none() {
                v.check(
                    &format!("{prefix}.identifier"),
                    ResidentId::parse(&identifier),
                );
            }
        }
        ListedParty::Unspecified => v.add(format!("{prefix}.party"), "is required"),
    }
    v.require(&format!("{prefix}.source"), &e.source);
    if let Err(why) = parse_iso_date(&e.listed_on) {
        v.add(format!("{prefix}.listed_on"), why);
    }
    Some(task_store::Listing {
        identifier,
        party: party.as_str_name().to_ascii_lowercase(),
        name: e.name.trim().to_owned(),
        source: e.source.trim().to_owned(),
        listed_on: e.listed_on.trim().to_owned(),
    })
}

fn listing_proto(l: task_store::Listing) -> DishonestyEntry {
    DishonestyEntry {
        party: if l.party == "listed_party_person" {
            ListedParty::Person
        } else {
            ListedParty::Organisation
        } as i32,
        identifier: l.identifier,
        name: l.name,
        source: l.source,
        listed_on: l.listed_on,
    }
}

pub(crate) async fn upsert_dishonesty_entry(
    api: &Api,
    request: Request<UpsertDishonestyEntryRequest>,
) -> Result<Response<UpsertDishonestyEntryResponse>, Status> {
    const METHOD: &str = "UpsertDishonestyEntry";
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, METHOD, async {
        Api::region(ctx)?;
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        let entry = listing(&mut v, "entry", &req.entry);
        v.finish()?;
        let entry = entry.ok_or_else(|| Error::internal("validation lost the entry"))?;
        let (ctx, entry) = (ctx, &entry);
        api.store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                task_store::put_listing(&mut tx, entry, api.store.now()).await?;
                let (revoked, opened) = api.apply_listing(&mut tx, ctx, entry).await?;
                let stored = task_store::listed(&mut tx, &entry.identifier)
                    .await?
                    .ok_or_else(|| Error::internal("listing vanished"))?;
                let value = UpsertDishonestyEntryResponse {
                    entry: Some(listing_proto(stored)),
                    revoked_filing_ids: revoked,
                    supervision_task_ids: opened,
                };
                Ok((
                    tx,
                    Written {
                        value,
                        tenant: String::new(),
                    },
                ))
            })
            .await
    })
    .await
}

pub(crate) async fn import_dishonesty_list(
    api: &Api,
    request: Request<Streaming<ImportDishonestyListRequest>>,
) -> Result<Response<ImportDishonestyListResponse>, Status> {
    const METHOD: &str = "ImportDishonestyList";
    let ctx = api.authn.context(&request)?;
    if let Err(e) = Api::region(&ctx) {
        return edge::refuse(&api.store, &ctx, METHOD, e).await;
    }
    let mut stream = request.into_inner();
    let mut answer = ImportDishonestyListResponse::default();
    let mut offset = 0usize;
    // Each message is a batch, validated whole and committed in one transaction; a stream
    // that breaks is answered as it broke.
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let checked = entries_of(&batch, offset);
        offset += batch.entries.len();
        let (imported, updated, revoked, opened) =
            edge::call(&api.store, &ctx, METHOD, checked, |entries| {
                import_batch(api, &ctx, METHOD, entries)
            })
            .await?
            .into_inner();
        answer.imported += imported;
        answer.updated += updated;
        answer.revoked_filing_ids.extend(revoked);
        answer.supervision_task_ids.extend(opened);
    }
    Ok(Response::new(answer))
}

/// A batch's entries, each checked, named by its place in the whole import.
fn entries_of(
    batch: &ImportDishonestyListRequest,
    offset: usize,
) -> Result<Vec<task_store::Listing>, Error> {
    let mut v = Violations::default();
    let entries: Vec<task_store::Listing> = batch
        .entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            listing(
                &mut v,
                &format!("entries[{}]", offset + i),
                &Some(e.clone()),
            )
        })
        .collect();
    v.finish().map(|()| entries)
}

/// Entries imported and updated, filings revoked and supervision tasks opened by one batch.
type Imported = (i64, i64, Vec<String>, Vec<String>);

async fn import_batch(
    api: &Api,
    ctx: &CallContext,
    method: &str,
    entries: Vec<task_store::Listing>,
) -> Result<Imported, Error> {
    let entries = &entries;
    api.store
        .write(ctx, method, |mut tx| async move {
            let (mut imported, mut updated) = (0, 0);
            let (mut revoked, mut opened) = (Vec::new(), Vec::new());
            for entry in entries {
                if task_store::put_listing(&mut tx, entry, api.store.now()).await? {
                    imported += 1;
                } else {
                    updated += 1;
                }
                let (r, o) = api.apply_listing(&mut tx, ctx, entry).await?;
                revoked.extend(r);
                opened.extend(o);
            }
            Ok((
                tx,
                Written {
                    value: (imported, updated, revoked, opened),
                    tenant: String::new(),
                },
            ))
        })
        .await
}

pub(crate) async fn remove_dishonesty_entry(
    api: &Api,
    request: Request<RemoveDishonestyEntryRequest>,
) -> Result<Response<RemoveDishonestyEntryResponse>, Status> {
    const METHOD: &str = "RemoveDishonestyEntry";
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, METHOD, async {
        Api::region(ctx)?;
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("identifier", &req.identifier);
        v.require("reason", &req.reason);
        v.finish()?;
        let identifier = req.identifier.trim().to_ascii_uppercase();
        let identifier = &identifier;
        api.store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                if !task_store::remove_listing(&mut tx, identifier).await? {
                    return Err(Error::not_found(format!("{identifier} is not on the list")));
                }
                Ok((
                    tx,
                    Written {
                        value: RemoveDishonestyEntryResponse {},
                        tenant: String::new(),
                    },
                ))
            })
            .await?;
        Ok(RemoveDishonestyEntryResponse {})
    })
    .await
}

pub(crate) async fn list_dishonesty_entries(
    api: &Api,
    request: Request<ListDishonestyEntriesRequest>,
) -> Result<Response<ListDishonestyEntriesResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    edge::read(async {
        Api::regulator(&ctx)?;
        let token = req.page_token.trim();
        if !token.is_empty()
            && Uscc::parse(token).is_err()
            && IdentityDocument::infer(token).is_none()
        {
            return Err(Error::invalid_field(
                "page_token",
                "is not a token this list gave out",
            ));
        }
        let limit = if req.page_size <= 0 {
            100
        } else {
            i64::from(req.page_size.min(1000))
        };
        let mut conn = api.store.db.acquire().await?;
        let rows = task_store::listings(
            &mut conn,
            &req.identifier.trim().to_ascii_uppercase(),
            req.page_token.trim(),
            limit + 1,
        )
        .await?;
        let more = rows.len() as i64 > limit;
        let entries: Vec<DishonestyEntry> = rows
            .into_iter()
            .take(limit as usize)
            .map(listing_proto)
            .collect();
        let next_page_token = if more {
            entries
                .last()
                .map(|e| e.identifier.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListDishonestyEntriesResponse {
            entries,
            next_page_token,
        })
    })
    .await
}
