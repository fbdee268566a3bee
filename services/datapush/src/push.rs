//! The push stream (Art. 27): records arrive on one stream, are checked one by one, written a
//! batch at a time, and each is acknowledged only after its batch committed. The agency's
//! filing must be active when the stream opens and at every batch; a revocation ends the
//! stream within a second, what was acknowledged before it stays.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use creditmesh_domain::calendar::{cst_date, format_date, parse_iso_date};
use creditmesh_domain::{Error, PrincipalKind};
use creditmesh_proto::datapush::v1::*;
use creditmesh_rpc::{CallContext, Written, edge};
use futures::StreamExt;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::agency_store::{self, Standing};
use crate::catalog::Subjects;
use crate::state::Api;
use crate::store::{self, Prepared};

/// Records written in one transaction at most.
pub const BATCH: usize = 500;
/// Acknowledgements waiting for the client before the stream stops reading.
const ACKS_IN_FLIGHT: usize = 1024;
/// How long a batch waits for more records after its first.
const LINGER: Duration = Duration::from_millis(5);
/// How often an idle stream checks that the agency's filing is still active.
const STANDING_CHECK: Duration = Duration::from_secs(1);

pub type Acks = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<PushRecordsResponse, Status>> + Send + 'static>,
>;

fn not_active(uscc: &str, standing: Option<&Standing>) -> Error {
    let why = match standing {
        None => "has no filing on the register".to_owned(),
        Some(s) => format!("has a filing that is {}", s.status),
    };
    Error::failed_precondition(format!(
        "agency {uscc} {why}: only an agency whose filing is active may push (Art. 27)"
    ))
}

/// Why a push stream ends before its client closed it: the client's own stream broke, or the
/// service refused or failed.
enum Ended {
    Client(Status),
    Service(Error),
}

impl<E: Into<Error>> From<E> for Ended {
    fn from(e: E) -> Self {
        Self::Service(e.into())
    }
}

impl Ended {
    fn into_status(self) -> Status {
        match self {
            Self::Client(s) => s,
            Self::Service(e) => edge::ended(e),
        }
    }
}

pub(crate) async fn push_records(
    api: &Api,
    request: Request<Streaming<PushRecordsRequest>>,
) -> Result<Response<Acks>, Status> {
    let (ctx, inbound) = edge::caller(&api.authn, request, &[PrincipalKind::Agency])?;
    let uscc = ctx.principal.subject.clone();
    let standing = still_active(api, &uscc).await;
    edge::call(
        &api.store,
        &ctx,
        "PushRecords",
        standing,
        |standing| async { Ok(start(api, &ctx, uscc, standing, inbound)) },
    )
    .await
}

/// Serves the stream on a task of its own, acknowledging as batches are written.
fn start(
    api: &Api,
    ctx: &CallContext,
    uscc: String,
    standing: Standing,
    inbound: Streaming<PushRecordsRequest>,
) -> Acks {
    let (acks, rx) = mpsc::channel(ACKS_IN_FLIGHT);
    let (api, ctx) = (api.clone(), ctx.clone());
    tokio::spawn(async move {
        if let Err(ended) = serve(&api, &ctx, &uscc, standing, inbound, &acks).await {
            let ended = ended.into_status();
            tracing::info!(agency = %uscc, code = ?ended.code(), reason = %ended.message(), "push stream ended");
            let _ = acks.send(Err(ended)).await;
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// Reads, writes and acknowledges until the client closes its side (`Ok`) or the stream must
/// end with a status.
async fn serve(
    api: &Api,
    ctx: &CallContext,
    uscc: &str,
    standing: Standing,
    inbound: Streaming<PushRecordsRequest>,
    acks: &mpsc::Sender<Result<PushRecordsResponse, Status>>,
) -> Result<(), Ended> {
    // Records are read ahead while the previous batch is written, up to two batches: the
    // network and the database work at once, and memory stays bounded.
    let (ahead, received) = mpsc::channel(2 * BATCH);
    let reader = tokio::spawn(read_ahead(inbound, ahead));
    let served = serve_batches(api, ctx, uscc, standing, received, acks).await;
    reader.abort();
    served
}

async fn read_ahead(
    mut inbound: Streaming<PushRecordsRequest>,
    ahead: mpsc::Sender<Result<PushRecordsRequest, Status>>,
) {
    while let Some(next) = inbound.next().await {
        let failed = next.is_err();
        if ahead.send(next).await.is_err() || failed {
            return;
        }
    }
}

/// Batches being written at once on one stream, each in its own transaction: one commits
/// while the next is checked and sealed. Batches in flight never share a key, so a key's
/// versions follow the order it was sent in; acknowledgements go out in order. SQLite has one
/// writer at a time whatever the streams do, so there a stream writes one batch at a time and
/// leaves the other connections to the other streams.
fn writers(engine: creditmesh_storage::Engine) -> usize {
    match engine {
        creditmesh_storage::Engine::Sqlite => 1,
        creditmesh_storage::Engine::Postgres => 3,
    }
}

/// How long a batch is tried again while the database is busy (nothing of it is written until
/// it commits) before the stream ends with `UNAVAILABLE`.
const BUSY_PATIENCE: Duration = Duration::from_secs(30);

type Writing = tokio::task::JoinHandle<Result<Vec<PushRecordsResponse>, Error>>;

/// Waits for the oldest batch in flight and sends its acknowledgements; `false` when the
/// client has gone.
async fn finish_oldest(
    writing: &mut VecDeque<(Writing, HashSet<String>)>,
    acks: &mpsc::Sender<Result<PushRecordsResponse, Status>>,
    fresh: &mut bool,
) -> Result<bool, Ended> {
    let Some((handle, _)) = writing.front_mut() else {
        return Ok(true);
    };
    let done = handle.await;
    writing.pop_front();
    send_acks(done, acks, fresh).await
}

/// Sends a batch's acknowledgements; `fresh` tells whether it held only new records (the
/// next batch is then written without looking its keys up first).
async fn send_acks(
    done: Result<Result<Vec<PushRecordsResponse>, Error>, tokio::task::JoinError>,
    acks: &mpsc::Sender<Result<PushRecordsResponse, Status>>,
    fresh: &mut bool,
) -> Result<bool, Ended> {
    let answers = done.map_err(|e| Error::internal(format!("batch writer: {e}")))??;
    *fresh = answers
        .iter()
        .all(|a| a.result == PushResult::Stored as i32 || a.result == PushResult::Rejected as i32);
    for a in answers {
        if acks.send(Ok(a)).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn serve_batches(
    api: &Api,
    ctx: &CallContext,
    uscc: &str,
    mut standing: Standing,
    mut inbound: mpsc::Receiver<Result<PushRecordsRequest, Status>>,
    acks: &mpsc::Sender<Result<PushRecordsResponse, Status>>,
) -> Result<(), Ended> {
    let mut check = tokio::time::interval(STANDING_CHECK);
    check.reset();
    let mut checked_at = tokio::time::Instant::now();
    let mut carried: Option<CreditRecord> = None;
    let mut writing: VecDeque<(Writing, HashSet<String>)> = VecDeque::new();
    let mut fresh = false;
    loop {
        let first = match carried.take() {
            Some(r) => r,
            None => {
                let oldest_done = async {
                    match writing.front_mut() {
                        Some((handle, _)) => handle.await,
                        None => std::future::pending().await,
                    }
                };
                let next = tokio::select! {
                    next = inbound.recv() => next,
                    done = oldest_done => {
                        writing.pop_front();
                        if !send_acks(done, acks, &mut fresh).await? {
                            return Ok(());
                        }
                        continue;
                    }
                    _ = check.tick() => {
                        standing = still_active(api, uscc).await?;
                        checked_at = tokio::time::Instant::now();
                        continue;
                    }
                };
                match next {
                    None => break,
                    Some(Err(e)) => return Err(Ended::Client(e)),
                    Some(Ok(req)) => req.record.unwrap_or_default(),
                }
            }
        };
        let mut batch = vec![first];
        let mut keys: HashSet<String> = HashSet::from([batch[0].record_key.clone()]);
        // A batch takes what arrives within a few milliseconds of its first record: one
        // commit for many records when they stream in, little wait when one comes alone.
        let linger = tokio::time::Instant::now() + LINGER;
        let mut closed = false;
        while batch.len() < BATCH {
            let next = match inbound.try_recv() {
                Ok(next) => Some(Some(next)),
                Err(mpsc::error::TryRecvError::Disconnected) => Some(None),
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(linger, inbound.recv()).await.ok()
                }
            };
            match next {
                Some(Some(Ok(req))) => {
                    let record = req.record.unwrap_or_default();
                    // One key twice in a batch: the second waits for the next batch, so that
                    // versions follow the order they were sent in.
                    if !keys.insert(record.record_key.clone()) {
                        carried = Some(record);
                        break;
                    }
                    batch.push(record);
                }
                Some(Some(Err(e))) => return Err(Ended::Client(e)),
                // The client closed its side: this batch is the last.
                Some(None) => {
                    closed = true;
                    break;
                }
                None => break,
            }
        }
        // A batch in flight that holds one of these keys goes first, and never more than
        // `writers` at once.
        let most = writers(api.store.db.engine());
        while writing.len() >= most || writing.iter().any(|(_, held)| !held.is_disjoint(&keys)) {
            if !finish_oldest(&mut writing, acks, &mut fresh).await? {
                return Ok(());
            }
        }
        if checked_at.elapsed() >= STANDING_CHECK {
            standing = still_active(api, uscc).await?;
            checked_at = tokio::time::Instant::now();
        }
        let (api, ctx, uscc, tenant) = (
            api.clone(),
            ctx.clone(),
            uscc.to_owned(),
            standing.tenant.clone(),
        );
        let handle = tokio::spawn(async move {
            let size = batch.len();
            let started = std::time::Instant::now();
            let mut pause = Duration::from_millis(20);
            let answers = loop {
                match write(&api, &ctx, &uscc, &tenant, fresh, &batch).await {
                    Err(busy)
                        if busy.code == creditmesh_domain::ErrorCode::Unavailable
                            && started.elapsed() + pause < BUSY_PATIENCE =>
                    {
                        tracing::debug!(agency = %uscc, size, "database busy; the batch is tried again");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                    answers => break answers,
                }
            };
            tracing::debug!(agency = %uscc, size, took_ms = started.elapsed().as_millis() as u64, "batch written");
            answers
        });
        writing.push_back((handle, keys));
        if closed {
            break;
        }
    }
    while !writing.is_empty() {
        if !finish_oldest(&mut writing, acks, &mut fresh).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// The agency's standing, if its filing is active: only then may it push (Art. 27).
async fn still_active(api: &Api, uscc: &str) -> Result<Standing, Error> {
    let mut conn = api.store.db.acquire().await?;
    let standing = agency_store::standing(&mut conn, uscc).await?;
    match standing {
        Some(s) if s.active() => Ok(s),
        other => Err(not_active(uscc, other.as_ref())),
    }
}

fn rejected(key: &str, problems: Vec<(String, String)>) -> PushRecordsResponse {
    PushRecordsResponse {
        record_key: key.to_owned(),
        result: PushResult::Rejected as i32,
        version: 0,
        error: problems
            .into_iter()
            .map(|(f, why)| format!("{f}: {why}"))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// Problems of a record, each with its field.
type Problems = Vec<(String, String)>;

/// A record that passed its checks, in canonical form.
struct Checked {
    subject: String,
    kind: &'static str,
    record: CreditRecord,
}

/// Checks a record on its own: its key, subject, category, content and collection day.
fn check(api: &Api, today: time::Date, r: &CreditRecord) -> Result<Checked, Problems> {
    let mut problems = Vec::new();
    let key = r.record_key.trim();
    if key.is_empty() {
        problems.push(("record_key".into(), "is required".into()));
    } else if key.len() > 128
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-/".contains(&b))
    {
        problems.push((
            "record_key".into(),
            "must be at most 128 of [A-Za-z0-9._:-/]".into(),
        ));
    }
    let category = api.catalog.get(r.category.trim());
    if category.is_none() {
        problems.push((
            "category".into(),
            format!("{:?} is not a category of the catalog", r.category),
        ));
    }
    let (kind, subject) = match SubjectKind::try_from(r.subject_kind) {
        Ok(k @ (SubjectKind::Person | SubjectKind::Organisation)) => (
            crate::subjects::name(k),
            crate::subjects::canonical(k, &r.subject_identifier).map(|(_, id)| id),
        ),
        _ => (
            "",
            Err("subject_kind must be person or organisation".to_owned()),
        ),
    };
    let subject = match subject {
        Ok(s) => s,
        Err(why) if kind.is_empty() => {
            problems.push(("subject_kind".into(), why));
            String::new()
        }
        Err(why) => {
            problems.push(("subject_identifier".into(), why));
            String::new()
        }
    };
    let mut content = Vec::new();
    if let Some(c) = category {
        let allowed = match c.subjects {
            Subjects::Any => true,
            Subjects::Person => kind == "person",
            Subjects::Organisation => kind == "organisation",
        };
        if !allowed && !kind.is_empty() {
            problems.push((
                "subject_kind".into(),
                format!("category {} does not hold {kind} records", c.code),
            ));
        }
        match c.check(&r.content) {
            Ok(canonical) => content = canonical,
            Err(p) => problems.extend(p),
        }
        match parse_iso_date(r.collected_on.trim()) {
            Err(_) => problems.push(("collected_on".into(), "must be a date, YYYY-MM-DD".into())),
            Ok(d) if d > today => problems.push(("collected_on".into(), "is in the future".into())),
            Ok(d) => {
                // Past its retention it would be purged at once: refused instead.
                let months = c.retention_months;
                if let Some(limit) = crate::catalog::retention_limit(today, months)
                    && d < limit
                {
                    problems.push((
                        "collected_on".into(),
                        format!(
                            "is before {}: past the category's retention of {months} months",
                            format_date(limit)
                        ),
                    ));
                }
            }
        }
    } else if parse_iso_date(r.collected_on.trim()).is_err() {
        problems.push(("collected_on".into(), "must be a date, YYYY-MM-DD".into()));
    }
    let source = r.source.clone().unwrap_or_default();
    let (provider, legal_basis) = (source.provider.trim(), source.legal_basis.trim());
    for (field, value, max) in [
        ("source.provider", provider, SOURCE_PROVIDER_CHARS),
        ("source.legal_basis", legal_basis, SOURCE_BASIS_CHARS),
    ] {
        if value.is_empty() {
            problems.push((
                field.into(),
                "is required: the subject is shown where a record came from (Art. 21)".into(),
            ));
        } else if value.chars().count() > max {
            problems.push((field.into(), format!("is longer than {max} characters")));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Checked {
        subject: subject.clone(),
        kind,
        record: CreditRecord {
            record_key: key.to_owned(),
            subject_kind: r.subject_kind,
            subject_identifier: subject,
            category: r.category.trim().to_owned(),
            content,
            collected_on: r.collected_on.trim().to_owned(),
            source: Some(RecordSource {
                provider: provider.to_owned(),
                legal_basis: legal_basis.to_owned(),
            }),
        },
    })
}

/// Longest provider and legal basis a record's source may name.
const SOURCE_PROVIDER_CHARS: usize = 200;
const SOURCE_BASIS_CHARS: usize = 500;

fn source_of(r: &CreditRecord) -> &RecordSource {
    static NONE: RecordSource = RecordSource {
        provider: String::new(),
        legal_basis: String::new(),
    };
    r.source.as_ref().unwrap_or(&NONE)
}

/// A keyed hash of everything a record of `agency` says: equal means duplicate. During a
/// rotation of the index key, under both keys.
pub(crate) fn fingerprint(
    keys: &crate::seal::Keys,
    agency: &str,
    kind: &str,
    subject: &str,
    r: &CreditRecord,
) -> crate::index::Hashed {
    keys.hashed(&[
        b"record",
        agency.as_bytes(),
        r.record_key.as_bytes(),
        kind.as_bytes(),
        subject.as_bytes(),
        r.category.as_bytes(),
        &r.content,
        r.collected_on.as_bytes(),
        source_of(r).provider.as_bytes(),
        source_of(r).legal_basis.as_bytes(),
    ])
}

/// Checks, seals and writes one batch; one answer per record, in order.
async fn write(
    api: &Api,
    ctx: &CallContext,
    uscc: &str,
    tenant: &str,
    fresh: bool,
    batch: &[CreditRecord],
) -> Result<Vec<PushRecordsResponse>, Error> {
    let today = cst_date(api.store.now()).map_err(|e| Error::internal(e.to_string()))?;
    let mut answers: Vec<Option<PushRecordsResponse>> = vec![None; batch.len()];
    let mut checked = Vec::new();
    for (i, r) in batch.iter().enumerate() {
        match check(api, today, r) {
            Ok(c) => checked.push((i, c)),
            Err(p) => answers[i] = Some(rejected(&r.record_key, p)),
        }
    }
    let fingerprints: Vec<crate::index::Hashed> = checked
        .iter()
        .map(|(_, c)| fingerprint(&api.keys, uscc, c.kind, &c.subject, &c.record))
        .collect();
    let store = &api.store;
    let keys: Vec<&str> = checked
        .iter()
        .map(|(_, c)| c.record.record_key.as_str())
        .collect();
    let (checked, fingerprints, keys) = (&checked, &fingerprints, &keys);
    let outcome = store
        .write(ctx, "PushRecords", |mut tx| async move {
            store::plan_each_batch(&mut tx, store.db.engine()).await?;
            // A stream of new records skips the lookup: the upsert tells what it wrote, and
            // only what it did not write is looked up afterwards. Not while the index key
            // rotates: the upsert compares fingerprints under the current key only.
            let held = if fresh && !api.keys.index_keys().rotating() {
                Vec::new()
            } else {
                store::held(&mut tx, store.db.engine(), uscc, keys).await?
            };
            let held: HashMap<&str, &store::Held> =
                held.iter().map(|h| (h.record_key.as_str(), h)).collect();
            let mut to_write = Vec::new();
            let mut results = Vec::new();
            let mut deleted = Vec::new();
            for (
                (
                    i,
                    Checked {
                        subject,
                        kind,
                        record: r,
                    },
                ),
                fp,
            ) in checked.iter().zip(fingerprints)
            {
                match held.get(r.record_key.as_str()) {
                    Some(h) if h.deleted() => {
                        deleted.push(*i);
                    }
                    Some(h) if fp.matches(&h.fingerprint) => {
                        results.push((*i, PushResult::Duplicate, h.version));
                    }
                    _ => {
                        let sealed = api
                            .keys
                            .seal(
                                tenant,
                                &crate::seal::record_binding(uscc, &r.record_key),
                                &r.encode_to_vec(),
                            )
                            .map_err(|e| Error::internal(format!("sealing: {e}")))?;
                        to_write.push(Prepared {
                            record_key: r.record_key.clone(),
                            subject_kind: kind,
                            subject_index: crate::subjects::index(&api.keys, kind, subject).current,
                            category: r.category.clone(),
                            collected_on: r.collected_on.clone(),
                            fingerprint: fp.current.clone(),
                            envelope: sealed.envelope,
                            key_id: sealed.key_id,
                            index_key: api.keys.index_keys().current.id.clone(),
                        });
                    }
                }
            }
            let written = store::upsert(
                &mut tx,
                store.db.engine(),
                uscc,
                tenant,
                store.now(),
                &to_write,
            )
            .await?;
            let updated: Vec<&store::Held> = written.iter().filter(|w| w.version > 1).collect();
            let ids: Vec<&str> = updated.iter().map(|w| w.record_id.as_str()).collect();
            let read = store::read_before(&mut tx, &ids).await?;
            for w in updated.iter().filter(|w| read.contains(&w.record_id)) {
                store::notify_readers(&mut tx, &w.record_id, w.version, "updated", store.now())
                    .await?;
            }
            let answered: HashSet<usize> = results
                .iter()
                .map(|(i, _, _)| *i)
                .chain(deleted.iter().copied())
                .collect();
            let written: HashMap<&str, &store::Held> =
                written.iter().map(|w| (w.record_key.as_str(), w)).collect();
            let mut unwritten = Vec::new();
            for (i, Checked { record: r, .. }) in checked.iter() {
                if answered.contains(i) {
                    continue;
                }
                match written.get(r.record_key.as_str()) {
                    Some(w) if w.version == 1 => results.push((*i, PushResult::Stored, 1)),
                    Some(w) => results.push((*i, PushResult::Updated, w.version)),
                    None => unwritten.push((*i, r.record_key.as_str())),
                }
            }
            // Not written: the same content is held (sent before, or by another stream
            // meanwhile), or the record was deleted on an objection.
            let keys: Vec<&str> = unwritten.iter().map(|(_, k)| *k).collect();
            let now = store::held(&mut tx, store.db.engine(), uscc, &keys).await?;
            let now: HashMap<&str, &store::Held> =
                now.iter().map(|h| (h.record_key.as_str(), h)).collect();
            for (i, key) in unwritten {
                match now.get(key) {
                    Some(h) if h.deleted() => deleted.push(i),
                    h => results.push((i, PushResult::Duplicate, h.map_or(0, |h| h.version))),
                }
            }
            Ok((
                tx,
                Written {
                    value: (results, deleted),
                    tenant: tenant.to_owned(),
                },
            ))
        })
        .await?;
    let (outcome, deleted) = outcome;
    for i in deleted {
        answers[i] = Some(rejected(
            &batch[i].record_key,
            vec![(
                "record_key".into(),
                "its record was deleted on an objection (Art. 22); new information needs a new key"
                    .into(),
            )],
        ));
    }
    for (i, result, version) in outcome {
        answers[i] = Some(PushRecordsResponse {
            record_key: batch[i].record_key.trim().to_owned(),
            result: result as i32,
            version,
            error: String::new(),
        });
    }
    Ok(answers.into_iter().flatten().collect())
}
