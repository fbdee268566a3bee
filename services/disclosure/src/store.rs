//! SQL of the register: agencies as shown, notices as leaves of the log. Database errors are
//! translated here.

use creditmesh_proto::disclosure::v1::{AgencyRecord, AgencyStatus, NoticeKind};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row, any::AnyRow};
use prost::Message;
use serde_json::json;

use crate::{log, log_store};
use creditmesh_domain::lifecycle::{Filing, Machine};

pub struct NewNotice<'a> {
    pub tenant: &'a str,
    pub uscc: &'a str,
    pub kind: NoticeKind,
    pub published_at: i64,
    pub text: &'a str,
    pub corrects: Option<u64>,
    /// The record as shown after the notice, committed to with it.
    pub record: Option<&'a AgencyRecord>,
}

/// A notice as stored.
pub struct NoticeRow {
    pub seq: u64,
    pub tenant: String,
    pub uscc: String,
    pub kind: String,
    pub published_at: i64,
    pub text: Option<String>,
    pub content: Option<String>,
    pub salt: Option<String>,
    pub leaf_hash: String,
    pub corrects: Option<u64>,
    pub erased_by: Option<String>,
    pub erasure_reason: Option<String>,
}

/// The canonical bytes a notice's leaf commits to: compact JSON, keys sorted.
pub fn canonical(seq: u64, n: &NewNotice<'_>) -> String {
    let record = n.record.map(|r| {
        json!({
            "agency_name": r.agency_name,
            "business_scope": r.business_scope,
            "documents": r.documents.iter().map(|d| json!({
                "filed_on": d.filed_on, "kind": d.kind, "sha256": d.sha256,
            })).collect::<Vec<_>>(),
            "fee_items": r.fee_items.iter().map(|i| json!({
                "basis": i.basis, "fee": i.fee, "service_item": i.service_item, "unit": i.unit,
            })).collect::<Vec<_>>(),
            "filed_on": r.filed_on,
            "legal_representative": r.legal_representative,
            "masking_policy_version": r.masking_policy_version,
            "professional_staff_count": r.professional_staff_count,
            "registered_address": r.registered_address,
            "registered_capital_yuan": r.registered_capital_yuan,
            "reviewing_tenant": r.reviewing_tenant,
            "status": status_name(r.status()),
            "tenant": r.tenant,
            "uscc": r.uscc,
        })
    });
    json!({
        "corrects": n.corrects,
        "kind": kind_name(n.kind),
        "published_at_micros": n.published_at,
        "record": record,
        "sequence": seq,
        "tenant": n.tenant,
        "text": n.text,
        "uscc": n.uscc,
        "version": 1,
    })
    .to_string()
}

/// Appends a notice as the log's next leaf; returns its sequence.
pub async fn append_notice(
    conn: &mut AnyConnection,
    n: &NewNotice<'_>,
) -> Result<u64, StorageError> {
    let seq = log_store::reserve(conn).await?;
    let content = canonical(seq, n);
    let mut salt = [0u8; log::SALT_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| StorageError::Other("no randomness for a leaf salt".into()))?;
    let leaf = log::leaf_hash(&salt, content.as_bytes());
    sqlx::query(
        "INSERT INTO disclosure_notice (seq, tenant, uscc, kind, published_at, text, content, \
         salt, leaf_hash, corrects_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq as i64)
    .bind(n.tenant.to_owned())
    .bind(n.uscc.to_owned())
    .bind(kind_name(n.kind))
    .bind(n.published_at)
    .bind(n.text.to_owned())
    .bind(content)
    .bind(hex::encode(salt))
    .bind(hex::encode(leaf.0))
    .bind(n.corrects.map(|c| c as i64))
    .execute(&mut *conn)
    .await?;
    log_store::append(conn, seq, leaf).await?;
    Ok(seq)
}

pub async fn put_agency(
    conn: &mut AnyConnection,
    filing_id: &str,
    r: &AgencyRecord,
    at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO disclosure_agency (uscc, tenant, filing_id, agency_name, status, record, \
         masking_policy_version, register_version, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (uscc) DO UPDATE SET tenant = excluded.tenant, \
         filing_id = excluded.filing_id, agency_name = excluded.agency_name, \
         status = excluded.status, record = excluded.record, \
         masking_policy_version = excluded.masking_policy_version, \
         register_version = excluded.register_version, updated_at = excluded.updated_at",
    )
    .bind(r.uscc.clone())
    .bind(r.tenant.clone())
    .bind(filing_id.to_owned())
    .bind(r.agency_name.clone())
    .bind(status_name(r.status()))
    .bind(hex::encode(r.encode_to_vec()))
    .bind(r.masking_policy_version.clone())
    .bind(r.register_version)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn record_of(r: &AnyRow, column: usize) -> Result<AgencyRecord, StorageError> {
    let text: String = r.try_get(column)?;
    hex::decode(&text)
        .ok()
        .and_then(|b| AgencyRecord::decode(b.as_slice()).ok())
        .ok_or_else(|| StorageError::Corrupt("a register record that does not decode".into()))
}

pub async fn agency(
    conn: &mut AnyConnection,
    uscc: &str,
) -> Result<Option<AgencyRecord>, StorageError> {
    let row = sqlx::query("SELECT record FROM disclosure_agency WHERE uscc = $1")
        .bind(uscc.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| record_of(&r, 0)).transpose()
}

/// The filing whose record the register shows for `uscc`.
pub async fn agency_filing(
    conn: &mut AnyConnection,
    uscc: &str,
) -> Result<Option<String>, StorageError> {
    let row = sqlx::query("SELECT filing_id FROM disclosure_agency WHERE uscc = $1")
        .bind(uscc.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

pub struct Search<'a> {
    pub tenant: &'a str,
    pub uscc: &'a str,
    pub name_contains: &'a str,
    pub statuses: Vec<&'static str>,
    pub after: &'a str,
    pub limit: i64,
}

/// Agencies matching every filter given, by USCC, after `after`.
pub async fn search(
    conn: &mut AnyConnection,
    s: &Search<'_>,
) -> Result<Vec<AgencyRecord>, StorageError> {
    let mut sql = String::from("SELECT record FROM disclosure_agency WHERE uscc > $1");
    let mut binds: Vec<String> = vec![s.after.to_owned()];
    let mut next = |sql: &mut String, clause: &str, value: String| {
        binds.push(value);
        sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
    };
    if !s.tenant.is_empty() {
        next(&mut sql, " AND tenant = ?", s.tenant.to_owned());
    }
    if !s.uscc.is_empty() {
        next(&mut sql, " AND uscc = ?", s.uscc.to_owned());
    }
    if !s.name_contains.is_empty() {
        let escaped = s
            .name_contains
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        next(
            &mut sql,
            " AND agency_name LIKE ? ESCAPE '\\'",
            format!("%{escaped}%"),
        );
    }
    if !s.statuses.is_empty() {
        let mut places = Vec::new();
        for st in &s.statuses {
            binds.push((*st).to_owned());
            places.push(format!("${}", binds.len()));
        }
        sql.push_str(&format!(" AND status IN ({})", places.join(", ")));
    }
    sql.push_str(&format!(" ORDER BY uscc LIMIT {}", s.limit));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter().map(|r| record_of(r, 0)).collect()
}

const NOTICE_COLUMNS: &str = "seq, tenant, uscc, kind, published_at, text, content, salt, \
    leaf_hash, corrects_seq, erased_by, erasure_reason";

fn notice(r: &AnyRow) -> Result<NoticeRow, sqlx::Error> {
    Ok(NoticeRow {
        seq: r.try_get::<i64, _>(0)? as u64,
        tenant: r.try_get(1)?,
        uscc: r.try_get(2)?,
        kind: r.try_get(3)?,
        published_at: r.try_get(4)?,
        text: r.try_get(5)?,
        content: r.try_get(6)?,
        salt: r.try_get(7)?,
        leaf_hash: r.try_get(8)?,
        corrects: r.try_get::<Option<i64>, _>(9)?.map(|c| c as u64),
        erased_by: r.try_get(10)?,
        erasure_reason: r.try_get(11)?,
    })
}

/// Removes a notice's content, salt and text, keeping its leaf hash; `false` when it was
/// erased already.
pub async fn erase(
    conn: &mut AnyConnection,
    seq: u64,
    by: &str,
    reason: &str,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE disclosure_notice SET content = NULL, salt = NULL, text = NULL, \
         erased_by = $1, erasure_reason = $2 WHERE seq = $3 AND content IS NOT NULL",
    )
    .bind(by.to_owned())
    .bind(reason.to_owned())
    .bind(seq as i64)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn notice_at(
    conn: &mut AnyConnection,
    seq: u64,
) -> Result<Option<NoticeRow>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {NOTICE_COLUMNS} FROM disclosure_notice WHERE seq = $1"
    )))
    .bind(seq as i64)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(notice).transpose()?)
}

/// Notices after `after` (exclusive; -1 for the first), of one agency or all, of the kinds
/// given (all when empty), oldest first.
pub async fn notices(
    conn: &mut AnyConnection,
    uscc: &str,
    kinds: &[&'static str],
    after: i64,
    limit: i64,
) -> Result<Vec<NoticeRow>, StorageError> {
    let mut sql = format!("SELECT {NOTICE_COLUMNS} FROM disclosure_notice WHERE seq > $1");
    let mut binds: Vec<String> = Vec::new();
    if !uscc.is_empty() {
        binds.push(uscc.to_owned());
        sql.push_str(" AND uscc = $2");
    }
    if !kinds.is_empty() {
        let mut places = Vec::new();
        for k in kinds {
            binds.push((*k).to_owned());
            places.push(format!("${}", binds.len() + 1));
        }
        sql.push_str(&format!(" AND kind IN ({})", places.join(", ")));
    }
    sql.push_str(&format!(" ORDER BY seq LIMIT {limit}"));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after);
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(notice)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// The leaves `from..from + count` as a C2SP entry bundle: each entry (salt, then content)
/// after its length, a big-endian u16. An erased notice is an empty entry.
pub async fn entry_bundle(
    conn: &mut AnyConnection,
    from: u64,
    count: u64,
) -> Result<Vec<u8>, StorageError> {
    let rows = sqlx::query(
        "SELECT seq, salt, content FROM disclosure_notice WHERE seq >= $1 AND seq < $2 \
         ORDER BY seq",
    )
    .bind(from as i64)
    .bind((from + count) as i64)
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() as u64 != count {
        return Err(StorageError::Corrupt(format!(
            "notices {from}..{} are not all stored",
            from + count
        )));
    }
    let mut out = Vec::new();
    for r in rows {
        let seq: i64 = r.try_get(0)?;
        let salt: Option<String> = r.try_get(1)?;
        let content: Option<String> = r.try_get(2)?;
        let entry = match (salt, content) {
            (Some(salt), Some(content)) => {
                let salt = hex::decode(salt)
                    .map_err(|_| StorageError::Corrupt(format!("salt of notice {seq}")))?;
                log::leaf_data(&salt, content.as_bytes())
            }
            _ => Vec::new(),
        };
        let len = u16::try_from(entry.len()).map_err(|_| {
            StorageError::Corrupt(format!("notice {seq} exceeds an entry's 65535 bytes"))
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&entry);
    }
    Ok(out)
}

pub fn kind_name(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Published => "published",
        NoticeKind::Changed => "changed",
        NoticeKind::Revoked => "revoked",
        NoticeKind::Deregistered => "deregistered",
        NoticeKind::Correction => "correction",
        NoticeKind::Deregistering => "deregistering",
        NoticeKind::DeregistrationRefused => "deregistration_refused",
        NoticeKind::Erasure => "erasure",
        NoticeKind::SpotCheckDraw => "spot_check_draw",
        NoticeKind::Unspecified => "unspecified",
    }
}

/// The kind a stored name stands for (`Unspecified` for none), the inverse of [`kind_name`].
pub fn kind_of(name: &str) -> NoticeKind {
    (1..)
        .map_while(|n| NoticeKind::try_from(n).ok())
        .find(|k| kind_name(*k) == name)
        .unwrap_or(NoticeKind::Unspecified)
}

pub fn status_name(status: AgencyStatus) -> &'static str {
    match status {
        AgencyStatus::Active => Filing::Active.name(),
        AgencyStatus::Deregistering => Filing::Deregistering.name(),
        AgencyStatus::Revoked => Filing::Revoked.name(),
        AgencyStatus::Deregistered => Filing::Deregistered.name(),
        AgencyStatus::Unspecified => "unspecified",
    }
}

/// Up to `limit` agencies whose record is shown under a masking policy other than `policy`:
/// `(uscc, filing_id)`, by code.
pub async fn masked_otherwise(
    conn: &mut AnyConnection,
    policy: &str,
    limit: i64,
) -> Result<Vec<(String, String)>, StorageError> {
    Ok(sqlx::query_as(
        "SELECT uscc, filing_id FROM disclosure_agency \
         WHERE masking_policy_version <> $1 ORDER BY uscc LIMIT $2",
    )
    .bind(policy.to_owned())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

/// The table the register's job runs claim their names in.
pub const JOBS: &str = "disclosure_job";

/// Notices (not corrections) whose text holds `phrase`, oldest first: `(seq, tenant, uscc,
/// text)`.
pub async fn notices_saying(
    conn: &mut AnyConnection,
    phrase: &str,
) -> Result<Vec<(i64, String, String, String)>, StorageError> {
    Ok(sqlx::query_as(
        "SELECT seq, tenant, uscc, text FROM disclosure_notice \
         WHERE kind <> 'correction' AND text LIKE $1 ORDER BY seq",
    )
    .bind(format!("%{phrase}%"))
    .fetch_all(&mut *conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use creditmesh_proto::disclosure::v1::{FeeItem, FiledDocument};

    use super::*;

    #[test]
    fn the_largest_record_filing_accepts_fits_one_log_entry() {
        // Filing's limits: 40 fee items (60/60/20/120 characters), a 200-character name and
        // address, 1 000 characters of business scope; every character three bytes.
        let wide = |n: usize| "信".repeat(n);
        let record = AgencyRecord {
            uscc: "91653101MA78KT005T".into(),
            agency_name: wide(200),
            tenant: "653100".into(),
            legal_representative: wide(20),
            registered_address: wide(200),
            business_scope: wide(1000),
            filed_on: "2026-11-28".into(),
            masking_policy_version: "xj-mask-1".into(),
            documents: (0..30)
                .map(|i| FiledDocument {
                    kind: format!("model_documents_{i}"),
                    sha256: "a".repeat(64),
                    filed_on: "2026-11-28".into(),
                })
                .collect(),
            fee_items: (0..40)
                .map(|_| FeeItem {
                    service_item: wide(60),
                    fee: wide(60),
                    unit: wide(20),
                    basis: wide(120),
                })
                .collect(),
            ..Default::default()
        };
        let text = wide(400);
        let notice = NewNotice {
            tenant: "653100",
            uscc: "91653101MA78KT005T",
            kind: NoticeKind::Changed,
            published_at: 0,
            text: &text,
            corrects: None,
            record: Some(&record),
        };
        let entry = log::SALT_BYTES + canonical(u64::MAX, &notice).len();
        assert!(entry <= usize::from(u16::MAX), "{entry} bytes");
    }
}
