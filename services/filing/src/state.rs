//! The gRPC edge of the filing service: validation, proto ↔ stored form, and the calls.

use std::sync::Arc;

use creditmesh_domain::calendar::{Calendar, Deadline, cst_date, format_date};
use creditmesh_domain::measures::Validity;
use creditmesh_domain::routing::{RegisteredDivision, ReviewRouting};
use creditmesh_domain::{Error, PrincipalKind, Tenant, Uscc};
use creditmesh_proto::common::v1 as common;
use creditmesh_proto::filing::v1::*;
use creditmesh_rpc::{Authn, CallContext, ServiceStore, timestamp};
use creditmesh_storage::Blobs;
use time::Date;

use crate::convert::{form_from, status_proto};
use crate::model::Facts;
use crate::store::{self, FilingRow};

/// The largest document accepted.
pub const MAX_DOCUMENT_BYTES: i64 = 20 * 1024 * 1024;
pub use creditmesh_domain::measures::{CHANGE_WORKING_DAYS, REVIEW_WORKING_DAYS};

pub struct Api {
    pub(crate) store: ServiceStore,
    pub(crate) authn: Authn,
    pub(crate) calendar: Arc<Calendar>,
    pub(crate) blobs: Blobs,
    pub(crate) routing: Arc<ReviewRouting>,
    pub(crate) measures: Option<Validity>,
}

impl Api {
    pub fn new(
        store: ServiceStore,
        authn: Authn,
        calendar: Arc<Calendar>,
        blobs: Blobs,
        routing: Arc<ReviewRouting>,
        measures: Option<Validity>,
    ) -> Self {
        Self {
            store,
            authn,
            calendar,
            blobs,
            routing,
            measures,
        }
    }

    /// A deadline under the Measures may start only while they are in force (Art. 32).
    pub(crate) fn in_force(&self, day: Date) -> Result<(), Error> {
        self.measures.map_or(Ok(()), |m| m.check(day))
    }

    /// Who reviews a filing registered at `division` (Art. 10), with a note when the USCC was
    /// issued elsewhere (the enterprise moved after registering).
    pub(crate) fn route(&self, uscc: &Uscc, division: &str) -> Result<(Tenant, String), Error> {
        let division = RegisteredDivision::parse(division)
            .map_err(|e| Error::invalid_field("form.registered_division", e))?;
        let tenant = self.routing.reviewing_tenant(&division);
        let note = if division.location() == uscc.location() {
            String::new()
        } else {
            format!(
                "registered address in {} ({}), but the USCC was issued in {} ({}): reviewed where the agency is registered now (Art. 10)",
                division.as_str(),
                division.location(),
                uscc.division(),
                uscc.location()
            )
        };
        Ok((tenant, note))
    }

    pub(crate) fn today(&self) -> Result<Date, Error> {
        cst_date(self.store.now()).map_err(|e| Error::internal(e.to_string()))
    }

    /// The agency calling, or PERMISSION_DENIED.
    pub(crate) fn agency(ctx: &CallContext) -> Result<Uscc, Error> {
        if ctx.principal.kind != PrincipalKind::Agency {
            return Err(Error::permission_denied(
                "only an agency may call this method",
            ));
        }
        Uscc::parse(&ctx.principal.subject).map_err(|e| {
            Error::permission_denied(format!("the certificate names no valid USCC: {e}"))
        })
    }

    /// The filing, if the caller may see it; NOT_FOUND otherwise, so that others' filings
    /// are not revealed.
    pub(crate) async fn visible_filing(
        &self,
        conn: &mut creditmesh_storage::sqlx::AnyConnection,
        ctx: &CallContext,
        filing_id: &str,
    ) -> Result<FilingRow, Error> {
        let not_found = || Error::not_found(format!("no filing {filing_id} visible to the caller"));
        let row = store::get_filing(conn, filing_id)
            .await?
            .ok_or_else(not_found)?;
        let p = &ctx.principal;
        let visible = match p.kind {
            PrincipalKind::Agency => p.subject == row.uscc,
            PrincipalKind::Regulator => {
                Tenant::parse(&row.tenant).is_ok_and(|t| p.tenant.can_see(t))
            }
            _ => false,
        };
        if visible { Ok(row) } else { Err(not_found()) }
    }

    pub(crate) fn deadline_proto(d: &Deadline) -> common::Deadline {
        common::Deadline {
            from_date: format_date(d.from),
            working_days: d.working_days as i32,
            due_date: format_date(d.due),
            calendar_version: d.calendar_version.clone(),
            provisional: d.provisional,
        }
    }

    pub(crate) async fn filing_proto(
        &self,
        conn: &mut creditmesh_storage::sqlx::AnyConnection,
        row: FilingRow,
    ) -> Result<Filing, Error> {
        let newest = store::history(conn, &row.tenant, &row.filing_id, HISTORY_SHOWN + 1).await?;
        let (history, history_truncated) = bounded_history(newest);
        let facts: Facts = serde_json::from_str(&row.facts)
            .map_err(|e| Error::internal(format!("stored facts: {e}")))?;
        let documents: crate::model::Documents = serde_json::from_str(&row.documents)
            .map_err(|e| Error::internal(format!("stored documents: {e}")))?;
        Ok(Filing {
            documents: documents
                .into_iter()
                .flat_map(|(field, hashes)| {
                    hashes.into_iter().map(move |sha256| FiledDocumentRef {
                        field: field.clone(),
                        sha256,
                    })
                })
                .collect(),
            filing_id: row.filing_id,
            tenant: row.tenant,
            uscc: row.uscc,
            agency_name: row.agency_name,
            status: status_proto(&row.status) as i32,
            reviewing_tenant: row.reviewing_tenant,
            submitted_at: Some(timestamp(row.submitted_at)),
            review_deadline: Some(common::Deadline {
                from_date: row.review_from,
                working_days: REVIEW_WORKING_DAYS as i32,
                due_date: row.review_due,
                calendar_version: row.calendar_version,
                provisional: row.review_provisional,
            }),
            history,
            form: Some(form_from(&facts)),
            history_truncated,
        })
    }
}

/// Status changes a filing shows at most, and the notes' bytes.
const HISTORY_SHOWN: i64 = 200;
const HISTORY_BYTES: usize = 1024 * 1024;

/// The newest entries (given newest first) within both bounds, oldest first, and whether
/// older ones were left out.
fn bounded_history(newest: Vec<store::HistoryRow>) -> (Vec<common::StatusChange>, bool) {
    let mut truncated = newest.len() as i64 > HISTORY_SHOWN;
    let mut bytes = 0;
    let mut shown = Vec::new();
    for h in newest.into_iter().take(HISTORY_SHOWN as usize) {
        bytes += h.note.len() + h.principal.len() + h.status.len();
        if bytes > HISTORY_BYTES && !shown.is_empty() {
            truncated = true;
            break;
        }
        shown.push(common::StatusChange {
            status: h.status,
            changed_at: Some(timestamp(h.changed_at)),
            principal: h.principal,
            note: h.note,
            ..Default::default()
        });
    }
    shown.reverse();
    (shown, truncated)
}
