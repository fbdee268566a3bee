//! The gRPC edge of the review service.

use std::sync::Arc;

use creditmesh_domain::calendar::{Calendar, add_years, cst_date, format_date};
use creditmesh_domain::lifecycle::{Filing, FilingEvent, Machine};
use creditmesh_domain::{Error, PrincipalKind, Tenant};
use creditmesh_proto::events::v1 as ev;
use creditmesh_proto::review::v1::*;
use creditmesh_rpc::{Authn, CallContext, ServiceStore, Written};
use creditmesh_storage::Tx;
use creditmesh_storage::sqlx::AnyConnection;
use serde_json::json;

use crate::party::Party;
use crate::store::{self, Entry};
use crate::task_store::{self, TaskRow};

pub struct Api {
    pub(crate) store: ServiceStore,
    pub(crate) authn: Authn,
    pub(crate) calendar: Arc<Calendar>,
    pub(crate) spot_check_percent: [u32; 4],
    pub(crate) measures: Option<creditmesh_domain::measures::Validity>,
}

/// A supervised agency: `(tenant, filing_id, status)`.
pub(crate) type Supervised = (String, String, String);

/// How a regulator stands to the party it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// It holds the agency's filing, or is the region.
    Holder,
    /// The authority of a place where an agency filed elsewhere works (Art. 5).
    Place(Tenant),
    /// An agency that has not filed, or a practitioner: supervised in the caller's own tenant.
    Own(Tenant),
}

/// An act's summary as the authority of the place of activity `place` records it, naming
/// the place in `details` too; the region acts everywhere and is named by its entry's tenant.
pub(crate) fn place_form(summary: &str, details: &mut serde_json::Value, place: Tenant) -> String {
    if place.is_region() {
        return summary.to_owned();
    }
    details["place"] = json!(place.to_string());
    details["place_name"] = json!(place.authority_name());
    format!(
        "{summary} — by the authority of the place of activity, {}",
        place.authority_name()
    )
}

impl Api {
    pub fn new(
        store: ServiceStore,
        authn: Authn,
        calendar: Arc<Calendar>,
        spot_check_percent: [u32; 4],
        measures: Option<creditmesh_domain::measures::Validity>,
    ) -> Self {
        Self {
            store,
            authn,
            calendar,
            spot_check_percent,
            measures,
        }
    }

    /// The agency, if the calling regulator supervises it (its tenant, or the region).
    pub(crate) async fn supervised(
        &self,
        conn: &mut AnyConnection,
        ctx: &CallContext,
        uscc: &str,
    ) -> Result<Supervised, Error> {
        let me = Self::regulator(ctx)?;
        let not_found =
            || Error::not_found(format!("no agency {uscc} under the caller's supervision"));
        let agency = task_store::agency(conn, uscc)
            .await?
            .ok_or_else(not_found)?;
        match Tenant::parse(&agency.0) {
            Ok(t) if me.can_see(t) => Ok(agency),
            _ => Err(not_found()),
        }
    }

    /// Whether today lies inside the Measures' validity (Art. 32), where one is configured.
    pub(crate) fn in_force_today(&self) -> bool {
        cst_date(self.store.now()).is_ok_and(|today| {
            creditmesh_domain::measures::check_act(self.measures, today, "an act").is_ok()
        })
    }

    /// Revokes an active (or deregistering) filing under Art. 15, with the 12-month
    /// restriction of its last paragraph: the restriction's last day is the day corresponding
    /// to today a year on (Civil Code Art. 201-203), and a new application is accepted from the
    /// day after. Open tasks of the filing are withdrawn. Returns the restriction's last day.
    pub(crate) async fn revoke(
        &self,
        tx: &mut Tx,
        ctx: &CallContext,
        uscc: &str,
        agency: &Supervised,
        ground: &str,
        why: &str,
    ) -> Result<String, Error> {
        self.revoke_sharing(tx, ctx, uscc, agency, ground, why, "")
            .await
    }

    /// [`Self::revoke`], sharing what the agency filed with the department `shared_with`
    /// (a code; none when empty) that the revocation is referred to (Art. 15(3)).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn revoke_sharing(
        &self,
        tx: &mut Tx,
        ctx: &CallContext,
        uscc: &str,
        agency: &Supervised,
        ground: &str,
        why: &str,
        shared_with: &str,
    ) -> Result<String, Error> {
        let (tenant, filing_id, status) = agency;
        let now = self.store.now();
        let today = cst_date(now).map_err(|e| Error::internal(e.to_string()))?;
        creditmesh_domain::measures::check_act(self.measures, today, "a revocation under Art. 15")?;
        if !task_store::agency_transition(tx, uscc, filing_id, FilingEvent::Revoke).await? {
            return Err(Error::failed_precondition(format!(
                "the filing is {status}; only an active filing can be revoked (Art. 15)"
            )));
        }
        let ban_ends_on = format_date(add_years(today, 1));
        task_store::withdraw_open(tx, filing_id, now, &ctx.principal_id).await?;
        self.credit_entry(
            tx,
            ctx,
            tenant,
            uscc,
            "revocation",
            format!("filing revoked: {why}"),
            json!({"filing_id": filing_id, "ground": ground}),
        )
        .await?;
        self.credit_entry(
            tx,
            ctx,
            tenant,
            uscc,
            "ban",
            format!("re-filing barred through {ban_ends_on} (Art. 15)"),
            json!({"ends_on": ban_ends_on}),
        )
        .await?;
        self.store
            .publish_event(
                tx,
                ctx,
                tenant,
                filing_id,
                &ev::FilingRevoked {
                    filing_id: filing_id.clone(),
                    uscc: uscc.to_owned(),
                    ground: ground.to_owned(),
                    ban_ends_on: ban_ends_on.clone(),
                    shared_with: shared_with.to_owned(),
                },
            )
            .await?;
        Ok(ban_ends_on)
    }

    /// Writes one supervision record into the party's credit file, idempotently, with the
    /// agency's new risk tier when one is given, tying the rectification order `order` to it
    /// when one is named (an interview that follows an order, Art. 15(2)).
    ///
    /// The authority holding the filing, and the region, act in the holder's tenant. Any
    /// other authority — a prefecture's or a county's where the agency works (Art. 5: 在本行政区域内)
    /// — interviews, inspects and records findings as the authority of that place: the entry
    /// is written in its own tenant and names the place, and the holder reads it in the one
    /// credit file. An agency that has not filed, and a practitioner, are supervised by any
    /// authority in its own tenant (Art. 2), and enter its register of supervised parties. A
    /// risk tier and an interview under Art. 15(2) stay the holder's.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn supervise(
        &self,
        ctx: &CallContext,
        method: &str,
        request_id: &str,
        party: &Party,
        kind: &str,
        summary: String,
        details: serde_json::Value,
        risk_tier: Option<i64>,
        order: Option<&str>,
    ) -> Result<String, Error> {
        let standing = self.standing(ctx, party).await?;
        if standing != Standing::Holder {
            if risk_tier.is_some() {
                return Err(Error::permission_denied(
                    "a risk tier is set for a filed agency, by the authority holding the filing or the region (Art. 14)",
                ));
            }
            if order.is_some() {
                return Err(Error::invalid_field(
                    "order_id",
                    "only the authority holding a filing ties an interview to its order (Art. 15(2))",
                ));
            }
        }
        Self::named(standing, party)?;
        let mut details = details;
        party.describe(&mut details);
        let (act, act_details) = (summary.clone(), details.to_string());
        let summary = match (standing, party) {
            (Standing::Place(place), _) => place_form(&summary, &mut details, place),
            (Standing::Holder, _) => summary,
            (Standing::Own(_), Party::Agency { name, .. }) => {
                format!("{summary} — {name}, an agency with no filing on record")
            }
            (Standing::Own(_), Party::Practitioner { name, .. }) => {
                format!("{summary} — practitioner {name}")
            }
        };
        // Where the agency filed with an authority whose review runs elsewhere, filing passes
        // the act on to it.
        let place = match (standing, party) {
            (Standing::Place(t), _) | (Standing::Own(t), Party::Agency { .. }) => Some(t),
            _ => None,
        };
        let (summary, details, kind) = (&summary, &details, kind);
        let (act, act_details) = (&act, &act_details);
        let response = self
            .store
            .write_idempotent(ctx, method, request_id, |mut tx| async move {
                let tenant = match standing {
                    Standing::Place(t) => t.to_string(),
                    Standing::Own(t) => {
                        let t = t.to_string();
                        let now = self.store.now();
                        store::enter_party(&mut tx, &t, party, now, &ctx.principal_id).await?;
                        t
                    }
                    Standing::Holder => self.supervised(&mut tx, ctx, party.key()).await?.0,
                };
                if let Some(tier) = risk_tier {
                    crate::supervision_store::set_tier(
                        &mut tx,
                        &tenant,
                        party.key(),
                        tier,
                        self.store.now(),
                    )
                    .await?;
                }
                let entry_id = uuid::Uuid::now_v7().to_string();
                let recorded_at = self.store.now();
                store::insert_entry(
                    &mut tx,
                    &Entry {
                        tenant: tenant.clone(),
                        entry_id: entry_id.clone(),
                        uscc: party.key().to_owned(),
                        kind: kind.into(),
                        recorded_at,
                        principal: ctx.principal_id.clone(),
                        summary: summary.clone(),
                        details: details.to_string().into_bytes(),
                    },
                )
                .await?;
                if let Some(place) = place {
                    self.store
                        .publish_event(
                            &mut tx,
                            ctx,
                            &tenant,
                            party.key(),
                            &ev::PlaceSupervised {
                                uscc: party.key().to_owned(),
                                place: place.to_string(),
                                entry_id: entry_id.clone(),
                                kind: kind.to_owned(),
                                recorded_at,
                                summary: act.clone(),
                                details: act_details.clone(),
                            },
                        )
                        .await?;
                }
                if let Some(order_id) = order
                    && !crate::supervision_store::tie_interview(
                        &mut tx,
                        order_id,
                        party.key(),
                        &entry_id,
                    )
                    .await?
                {
                    return Err(Error::invalid_field(
                        "order_id",
                        format!(
                            "is no rectification order of {} left without an interview",
                            party.key()
                        ),
                    ));
                }
                Ok((
                    tx,
                    Written {
                        value: RecordInterviewResponse { entry_id },
                        tenant,
                    },
                ))
            })
            .await?;
        Ok(response.entry_id)
    }

    /// How the calling regulator stands to `party`. Read before the write: a prefecture's
    /// transaction does not see another tenant's agencies.
    pub(crate) async fn standing(
        &self,
        ctx: &CallContext,
        party: &Party,
    ) -> Result<Standing, Error> {
        let me = Self::regulator(ctx)?;
        let uscc = match party {
            Party::Practitioner { .. } => return Ok(Standing::Own(me)),
            Party::Agency { uscc, .. } => uscc,
        };
        let mut conn = self.store.db.acquire().await?;
        Ok(match task_store::agency(&mut conn, uscc.as_str()).await? {
            Some(agency) => match Tenant::parse(&agency.0) {
                Ok(holder) if me.can_see(holder) => Standing::Holder,
                _ => Standing::Place(me),
            },
            None => Standing::Own(me),
        })
    }

    /// An agency that has not filed is entered by its name: INVALID_ARGUMENT without one.
    pub(crate) fn named(standing: Standing, party: &Party) -> Result<(), Error> {
        match party {
            Party::Agency { uscc, name }
                if matches!(standing, Standing::Own(_)) && name.is_empty() =>
            {
                Err(Error::invalid_field(
                    "agency_name",
                    format!(
                        "is required for an agency that has not filed ({uscc} has no filing on record)"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The regional regulator, or PERMISSION_DENIED: the severe-dishonesty list is kept by
    /// the region, whatever the gateway lets through.
    pub(crate) fn region(ctx: &CallContext) -> Result<(), Error> {
        match Self::regulator(ctx)? {
            t if t.is_region() => Ok(()),
            _ => Err(Error::permission_denied(
                "only the regional regulator keeps the severe-dishonesty list",
            )),
        }
    }

    pub(crate) fn regulator(ctx: &CallContext) -> Result<Tenant, Error> {
        if ctx.principal.kind == PrincipalKind::Regulator {
            Ok(ctx.principal.tenant)
        } else {
            Err(Error::permission_denied(
                "only a regulator may call this method",
            ))
        }
    }

    /// The task, if the calling regulator's tenant holds it (the region sees all).
    pub(crate) async fn visible_task(
        &self,
        conn: &mut AnyConnection,
        ctx: &CallContext,
        task_id: &str,
    ) -> Result<TaskRow, Error> {
        let me = Self::regulator(ctx)?;
        let not_found =
            || Error::not_found(format!("no review task {task_id} visible to the caller"));
        let task = task_store::get(conn, task_id)
            .await?
            .ok_or_else(not_found)?;
        match Tenant::parse(&task.tenant) {
            Ok(t) if me.can_see(t) => Ok(task),
            _ => Err(not_found()),
        }
    }

    pub(crate) fn today(&self) -> Result<String, Error> {
        cst_date(self.store.now())
            .map(format_date)
            .map_err(|e| Error::internal(e.to_string()))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn credit_entry(
        &self,
        tx: &mut Tx,
        ctx: &CallContext,
        tenant: &str,
        uscc: &str,
        kind: &str,
        summary: String,
        details: serde_json::Value,
    ) -> Result<(), Error> {
        store::insert_entry(
            tx,
            &Entry {
                tenant: tenant.into(),
                entry_id: uuid::Uuid::now_v7().to_string(),
                uscc: uscc.into(),
                kind: kind.into(),
                recorded_at: self.store.now(),
                principal: ctx.principal_id.clone(),
                summary,
                details: details.to_string().into_bytes(),
            },
        )
        .await?;
        Ok(())
    }

    /// Applies a severe-dishonesty listing to the open filings it concerns. The agency itself
    /// listed: an active filing is revoked (Art. 15(1)). A principal listed: an active agency
    /// becomes a supervision task of its holding authority, with an entry in its credit file.
    /// Either, while the application is under review: an Art. 9(2) hit on its open tasks,
    /// which then bars approval. Returns the revoked filing ids and the opened task ids.
    pub(crate) async fn apply_listing(
        &self,
        tx: &mut Tx,
        ctx: &CallContext,
        entry: &task_store::Listing,
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        let (mut revoked, mut opened) = (Vec::new(), Vec::new());
        for (uscc, tenant, filing_id, status) in
            task_store::open_agencies_naming(tx, &entry.identifier).await?
        {
            if Filing::parse(&status) == Some(Filing::Submitted) {
                continue;
            }
            let evidence = listed_evidence(entry, &uscc);
            if entry.identifier == uscc && !self.in_force_today() {
                tracing::warn!(uscc = %uscc, "a listed agency is not revoked outside the Measures' validity (Art. 32)");
                continue;
            }
            if entry.identifier == uscc {
                let agency = (tenant, filing_id.clone(), status);
                self.revoke(
                    tx,
                    ctx,
                    &uscc,
                    &agency,
                    "severe_dishonesty",
                    &format!("{evidence} (Art. 15(1))"),
                )
                .await?;
                revoked.push(filing_id);
            } else {
                let task_id = task_store::open_supervision(
                    tx,
                    &tenant,
                    &uscc,
                    &filing_id,
                    self.store.now(),
                    &evidence,
                )
                .await?;
                self.credit_entry(
                    tx,
                    ctx,
                    &tenant,
                    &uscc,
                    "supervision",
                    format!("{evidence}: referred to the holding authority (Art. 14)"),
                    json!({"filing_id": filing_id, "task_id": task_id, "source": entry.source, "listed_on": entry.listed_on}),
                )
                .await?;
                opened.push(task_id);
            }
        }
        for (tenant, task_id, uscc, checks) in
            task_store::open_tasks_naming(tx, &entry.identifier).await?
        {
            let mut found: Vec<serde_json::Value> =
                serde_json::from_str(&checks).unwrap_or_default();
            let evidence = listed_evidence(entry, &uscc);
            if !found.iter().any(|c| c["evidence"] == evidence.as_str()) {
                found.push(
                    json!({"ground": RefusalGround::SevereDishonesty as i32, "evidence": evidence}),
                );
                task_store::set_checks(tx, &tenant, &task_id, &json!(found).to_string()).await?;
            }
        }
        Ok((revoked, opened))
    }
}

/// Grounds as the events carry them.
pub(crate) fn names(grounds: &[&str]) -> Vec<String> {
    grounds.iter().map(|g| (*g).to_owned()).collect()
}

/// One line of evidence for a listing that concerns the agency `uscc`, a principal's
/// identity number masked: it goes into the credit file.
pub fn listed_evidence(l: &task_store::Listing, uscc: &str) -> String {
    if l.identifier == uscc {
        format!(
            "the agency {uscc} is on the severe-dishonesty list since {} ({})",
            l.listed_on, l.source
        )
    } else {
        format!(
            "principal {} is on the severe-dishonesty list since {} ({})",
            creditmesh_domain::mask::identity_number(&l.identifier),
            l.listed_on,
            l.source
        )
    }
}
