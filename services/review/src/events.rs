//! Events the review service consumes.

use std::sync::Arc;

use creditmesh_domain::calendar::{Calendar, Layers, cst_date, format_date};
use creditmesh_domain::lifecycle::{FilingEvent, Machine, Task};
use creditmesh_domain::{Error, Tenant, Uscc};
use creditmesh_proto::events::v1::{
    AgencyHandedOver, AnnualReportSubmitted, ChangeSubmitted, ComplaintResolved,
    DeregistrationRequested, Event, EventKind, FilingRevokedForNoReport, FilingSubmitted,
    FilingTransferred, NamedPrincipal, ObjectionOverdue, PlaceReported, ReferralDeclined,
    ReviewForwarded,
};
use creditmesh_proto::review::v1::{FindingCategory, RefusalGround};
use creditmesh_rpc::sink::{Applied, EventHandler, decode, occurred_micros};
use creditmesh_storage::{Infra, NewEvent, Tx};
use serde_json::json;

use crate::store::{self, Entry};
use crate::task_store::{self, TaskRow};

use creditmesh_domain::measures::REVIEW_WORKING_DAYS;

pub struct Handler {
    pub calendar: Arc<Calendar>,
    /// For the events a transfer and an act passed on publish.
    pub infra: Infra,
}

/// A principal an approval is checked against (Art. 9(2)), as the filing names them; role and
/// name are empty for tasks from before they were carried.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Named {
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub name: String,
    pub identity_number: String,
}

impl Named {
    /// The principals an event carries: named where it names them, else identity numbers.
    pub fn of_event(ids: &[String], named: &[NamedPrincipal]) -> Vec<Named> {
        if named.is_empty() {
            return ids
                .iter()
                .map(|id| Named {
                    identity_number: id.clone(),
                    ..Default::default()
                })
                .collect();
        }
        named
            .iter()
            .map(|p| Named {
                role: p.role.clone(),
                name: p.name.clone(),
                identity_number: p.identity_number.clone(),
            })
            .collect()
    }

    /// A task's `principals` column: a list of these, or of identity numbers alone.
    pub fn parse_list(json: &str) -> Vec<Named> {
        serde_json::from_str(json).unwrap_or_else(|_| {
            let ids: Vec<String> = serde_json::from_str(json).unwrap_or_default();
            Named::of_event(&ids, &[])
        })
    }

    /// As the regulator deciding sees them: role, name and the number in full.
    fn described(&self) -> String {
        let role = self.role.replace('_', " ");
        match (role.is_empty(), self.name.is_empty()) {
            (false, false) => format!("the {role} {} ({})", self.name, self.identity_number),
            (false, true) => format!("the {role} ({})", self.identity_number),
            _ => format!("principal {}", self.identity_number),
        }
    }
}

/// What the severe-dishonesty list says of an agency and its principals (Art. 9(2)), one
/// line of evidence per listed party, each principal named as the regulator deciding may see
/// them.
pub async fn dishonesty_hits(
    tx: &mut Tx,
    uscc: &str,
    principals: &[Named],
) -> Result<Vec<String>, Error> {
    let mut found = Vec::new();
    if let Some(l) = task_store::listed(tx, uscc).await? {
        found.push(crate::state::listed_evidence(&l, uscc));
    }
    for p in principals.iter().filter(|p| !p.identity_number.is_empty()) {
        if let Some(l) = task_store::listed(tx, &p.identity_number).await? {
            found.push(format!(
                "{} is on the severe-dishonesty list since {} ({})",
                p.described(),
                l.listed_on,
                l.source
            ));
        }
    }
    Ok(found)
}

/// What the automatic checks on arrival found (Art. 9(1), 9(2)), as `(ground, evidence)`.
pub async fn automatic_checks(
    tx: &mut Tx,
    uscc: &str,
    business_scope: &str,
    principals: &[Named],
) -> Result<Vec<(RefusalGround, String)>, Error> {
    let mut found = Vec::new();
    let scope = business_scope.to_lowercase();
    if !scope.is_empty() && !scope.contains("信用") && !scope.contains("credit") {
        found.push((
            RefusalGround::NoCreditServiceInScope,
            format!("the approved business scope names no credit service: {business_scope:?}"),
        ));
    }
    for evidence in dishonesty_hits(tx, uscc, principals).await? {
        found.push((RefusalGround::SevereDishonesty, evidence));
    }
    Ok(found)
}

pub fn checks_json(found: &[(RefusalGround, String)]) -> String {
    json!(
        found
            .iter()
            .map(|(g, e)| json!({"ground": *g as i32, "evidence": e}))
            .collect::<Vec<_>>()
    )
    .to_string()
}

impl Handler {
    /// A review task for what arrived, due `REVIEW_WORKING_DAYS` after `from`.
    #[allow(clippy::too_many_arguments)]
    async fn open_task(
        &self,
        tx: &mut Tx,
        event: &Event,
        kind: &str,
        filing_id: &str,
        subject_id: &str,
        uscc: &str,
        agency_name: &str,
        checks: String,
        principals: &[Named],
    ) -> Result<(), Error> {
        let at = occurred_micros(event);
        let from = cst_date(at).map_err(|e| Error::internal(e.to_string()))?;
        let deadline = self
            .calendar
            .deadline(from, REVIEW_WORKING_DAYS, Layers::Xinjiang)
            .map_err(|e| Error::internal(format!("calendar: {e}")))?;
        task_store::insert(
            tx,
            &TaskRow {
                tenant: event.tenant.clone(),
                task_id: event.id.clone(),
                kind: kind.into(),
                status: Task::Open.name().into(),
                filing_id: filing_id.into(),
                subject_id: subject_id.into(),
                uscc: uscc.into(),
                agency_name: agency_name.into(),
                created_at: at,
                deadline_from: format_date(deadline.from),
                deadline_due: format_date(deadline.due),
                deadline_provisional: deadline.provisional,
                calendar_version: deadline.calendar_version,
                checks,
                forwarded_from: String::new(),
                principals: json!(principals).to_string(),
            },
        )
        .await?;
        Ok(())
    }

    /// A transferred filing's entry in the credit file, in the receiving authority's tenant,
    /// and its review rows handed over to that authority's review, wherever it runs.
    async fn transferred(
        &self,
        tx: &mut Tx,
        event: &Event,
        e: &FilingTransferred,
    ) -> Result<(), Error> {
        let name = |t: &str| Tenant::parse(t).map_or_else(|_| t.to_owned(), |t| t.authority_name());
        let summary = format!(
            "filing transferred from {} ({}) to {} ({}): the registered address moved to {} (Art. 10, 12)",
            name(&e.from_tenant),
            e.from_tenant,
            name(&e.to_tenant),
            e.to_tenant,
            e.registered_division
        );
        let details = serde_json::to_vec(e).map_err(|err| Error::internal(err.to_string()))?;
        store::insert_entry(
            tx,
            &Entry {
                tenant: e.to_tenant.clone(),
                entry_id: event.id.clone(),
                uscc: e.uscc.clone(),
                kind: "transfer".into(),
                recorded_at: occurred_micros(event),
                principal: event.principal.clone(),
                summary,
                details,
            },
        )
        .await?;
        let handed =
            crate::handover_store::collect(tx, &e.uscc, &e.filing_id, &e.from_tenant, &e.to_tenant)
                .await?;
        self.infra
            .publish(
                tx,
                AgencyHandedOver::CONSUMERS,
                NewEvent {
                    event_type: AgencyHandedOver::TYPE,
                    tenant: &e.to_tenant,
                    principal: &event.principal,
                    subject: &e.filing_id,
                    payload: prost::Message::encode_to_vec(&handed),
                },
                occurred_micros(event),
            )
            .await?;
        Ok(())
    }

    async fn tasks_for(&self, tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
        match event.r#type.as_str() {
            FilingTransferred::TYPE => {
                let e: FilingTransferred = decode(event)?;
                if !task_store::transfer_agency(
                    tx,
                    &e.uscc,
                    &e.filing_id,
                    &e.from_tenant,
                    &e.to_tenant,
                )
                .await?
                {
                    return Ok(Applied::NotApplied(format!(
                        "filing {} is not held by {} here; its transfer to {} changes nothing",
                        e.filing_id, e.from_tenant, e.to_tenant
                    )));
                }
                self.transferred(tx, event, &e).await?;
            }
            FilingSubmitted::TYPE => {
                let e: FilingSubmitted = decode(event)?;
                if !task_store::put_agency(
                    tx,
                    &e.uscc,
                    &event.tenant,
                    &e.filing_id,
                    &json!(e.principals).to_string(),
                )
                .await?
                {
                    return Ok(Applied::NotApplied(format!(
                        "{} still has an open filing; filing {} was not taken up",
                        e.uscc, e.filing_id
                    )));
                }
                let principals = Named::of_event(&e.principals, &e.named_principals);
                let mut found =
                    automatic_checks(tx, &e.uscc, &e.business_scope, &principals).await?;
                if !e.routing_note.is_empty() {
                    found.push((RefusalGround::Unspecified, e.routing_note.clone()));
                }
                self.open_task(
                    tx,
                    event,
                    "filing",
                    &e.filing_id,
                    &e.filing_id,
                    &e.uscc,
                    &e.agency_name,
                    checks_json(&found),
                    &principals,
                )
                .await?;
            }
            ChangeSubmitted::TYPE => {
                let e: ChangeSubmitted = decode(event)?;
                let principals = Named::of_event(&e.principals, &e.named_principals);
                let mut found =
                    automatic_checks(tx, &e.uscc, &e.business_scope, &principals).await?;
                if let Ok(to) = Tenant::parse(&e.moves_to) {
                    found.push((
                        RefusalGround::Unspecified,
                        format!(
                            "the registered address moves into the area of {} ({to}): approved, the filing is transferred there with its history (Art. 10, 12)",
                            to.authority_name()
                        ),
                    ));
                }
                self.open_task(
                    tx,
                    event,
                    "change",
                    &e.filing_id,
                    &e.change_id,
                    &e.uscc,
                    &e.agency_name,
                    checks_json(&found),
                    &principals,
                )
                .await?;
            }
            DeregistrationRequested::TYPE => {
                let e: DeregistrationRequested = decode(event)?;
                if !task_store::agency_transition(
                    tx,
                    &e.uscc,
                    &e.filing_id,
                    FilingEvent::RequestDeregistration,
                )
                .await?
                {
                    return Ok(Applied::NotApplied(format!(
                        "filing {} is not active here; its deregistration request opens no task",
                        e.filing_id
                    )));
                }
                self.open_task(
                    tx,
                    event,
                    "deregistration",
                    &e.filing_id,
                    &e.filing_id,
                    &e.uscc,
                    "",
                    "[]".into(),
                    &[],
                )
                .await?;
            }
            FilingRevokedForNoReport::TYPE => {
                let e: FilingRevokedForNoReport = decode(event)?;
                if !task_store::agency_transition(
                    tx,
                    &e.uscc,
                    &e.filing_id,
                    FilingEvent::MissAnnualReport,
                )
                .await?
                {
                    return Ok(Applied::NotApplied(format!(
                        "filing {} is not active here; the Art. 11 revocation changes nothing",
                        e.filing_id
                    )));
                }
                task_store::withdraw_open(
                    tx,
                    &e.filing_id,
                    occurred_micros(event),
                    &event.principal,
                )
                .await?;
            }
            _ => {}
        }
        Ok(Applied::Done)
    }
}

#[tonic::async_trait]
impl EventHandler for Handler {
    async fn apply(&self, tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
        if let Applied::NotApplied(why) = self.tasks_for(tx, event).await? {
            return Ok(Applied::NotApplied(why));
        }
        match event.r#type.as_str() {
            ReviewForwarded::TYPE => {
                let e: ReviewForwarded = decode(event)?;
                let copy = TaskRow {
                    tenant: event.tenant.clone(),
                    task_id: uuid::Uuid::now_v7().to_string(),
                    kind: e.kind,
                    status: Task::Forwarded.name().into(),
                    filing_id: e.filing_id,
                    subject_id: e.subject_id,
                    uscc: e.uscc,
                    agency_name: e.agency_name,
                    created_at: occurred_micros(event),
                    deadline_from: e.deadline_from,
                    deadline_due: e.deadline_due,
                    deadline_provisional: e.deadline_provisional,
                    calendar_version: e.calendar_version,
                    checks: e.checks,
                    forwarded_from: e.task_id,
                    principals: e.principals,
                };
                task_store::insert(tx, &copy).await?;
            }
            // A complaint received is an accusation, not a fact: only the regulator's finding
            // against the agency enters its credit file.
            ComplaintResolved::TYPE => {
                let e: ComplaintResolved = decode(event)?;
                if e.against_agency {
                    record(tx, event, "complaint_finding", |e: &ComplaintResolved| {
                        let category = FindingCategory::from_str_name(&format!(
                            "FINDING_CATEGORY_{}",
                            e.category.to_ascii_uppercase()
                        ))
                        .filter(|c| *c != FindingCategory::Unspecified);
                        let found = match category {
                            Some(c) => format!(
                                " ({}: {})",
                                crate::convert::article(c),
                                crate::convert::category_name(c)
                            ),
                            None => String::new(),
                        };
                        (
                            e.agency_uscc.clone(),
                            format!(
                                "complaint {} upheld{found}: {}",
                                e.tracking_number, e.outcome
                            ),
                        )
                    })
                    .await?
                }
            }
            // A department declined the Art. 15(3) referral: the holder is told, by a task.
            ReferralDeclined::TYPE => {
                let e: ReferralDeclined = decode(event)?;
                let what = format!(
                    "the Art. 15(3) referral {} was declined by {} ({}): {}",
                    e.referral_id,
                    creditmesh_domain::department::name_zh(&e.department),
                    e.department_tenant,
                    e.reason
                );
                let task_id = task_store::open_supervision(
                    tx,
                    &event.tenant,
                    &e.uscc,
                    &e.filing_id,
                    occurred_micros(event),
                    &what,
                )
                .await?;
                let details = json!({"referral_id": e.referral_id, "filing_id": e.filing_id,
                    "department": e.department, "department_tenant": e.department_tenant,
                    "reason": e.reason, "task_id": task_id});
                store::insert_entry(
                    tx,
                    &Entry {
                        tenant: event.tenant.clone(),
                        entry_id: event.id.clone(),
                        uscc: e.uscc.clone(),
                        kind: "referral".into(),
                        recorded_at: occurred_micros(event),
                        principal: event.principal.clone(),
                        summary: what,
                        details: details.to_string().into_bytes(),
                    },
                )
                .await?;
            }
            ObjectionOverdue::TYPE => {
                record(tx, event, "objection_overdue", |e: &ObjectionOverdue| {
                    (
                        e.agency_uscc.clone(),
                        format!(
                            "objection {} to record {} received {} not decided by {} (Art. 22)",
                            e.objection_id, e.record_id, e.filed_on, e.due_date
                        ),
                    )
                })
                .await?
            }
            // An act of the authority of a place of activity, passed on by filing to the
            // authority holding the agency's filing: written here where the act was not.
            PlaceReported::TYPE => {
                let e: PlaceReported = decode(event)?;
                let place = Tenant::parse(&e.place)
                    .map_err(|err| Error::invalid_field("event.payload.place", err.to_string()))?;
                let mut details: serde_json::Value =
                    serde_json::from_str(&e.details).unwrap_or_else(|_| json!({}));
                let summary = crate::state::place_form(&e.summary, &mut details, place);
                store::insert_entry(
                    tx,
                    &Entry {
                        tenant: e.place,
                        entry_id: e.entry_id,
                        uscc: e.uscc,
                        kind: e.kind,
                        recorded_at: e.recorded_at,
                        principal: event.principal.clone(),
                        summary,
                        details: details.to_string().into_bytes(),
                    },
                )
                .await?;
            }
            AgencyHandedOver::TYPE => {
                let e: AgencyHandedOver = decode(event)?;
                crate::handover_store::take_over(tx, &e).await?;
            }
            FilingSubmitted::TYPE => {
                record(tx, event, "filing", |e: &FilingSubmitted| {
                    (e.uscc.clone(), format!("filing {} submitted", e.filing_id))
                })
                .await?
            }
            ChangeSubmitted::TYPE => {
                record(tx, event, "change", |e: &ChangeSubmitted| {
                    let summary = format!(
                        "change of {} reported {} working days after it{}",
                        e.changed_on,
                        e.working_days_elapsed,
                        if e.late { ": late (Art. 12)" } else { "" }
                    );
                    (e.uscc.clone(), summary)
                })
                .await?
            }
            AnnualReportSubmitted::TYPE => {
                record(tx, event, "annual_report", |e: &AnnualReportSubmitted| {
                    (
                        e.uscc.clone(),
                        format!("annual report for {} submitted", e.year),
                    )
                })
                .await?
            }
            DeregistrationRequested::TYPE => {
                record(
                    tx,
                    event,
                    "deregistration",
                    |e: &DeregistrationRequested| {
                        (
                            e.uscc.clone(),
                            format!("deregistration requested: {}", e.reason),
                        )
                    },
                )
                .await?
            }
            FilingRevokedForNoReport::TYPE => {
                record(tx, event, "revocation", |e: &FilingRevokedForNoReport| {
                    let summary = format!(
                        "filing revoked: no annual report for {} by 30 June {} (Art. 11)",
                        e.year,
                        e.year + 1
                    );
                    (e.uscc.clone(), summary)
                })
                .await?
            }
            _ => {}
        }
        Ok(Applied::Done)
    }
}

/// An event about an agency goes into its credit file under `kind`; `about` names the agency
/// and sums the event up. The entry's details are the event's fields as JSON.
async fn record<E: EventKind>(
    tx: &mut Tx,
    event: &Event,
    kind: &str,
    about: impl Fn(&E) -> (String, String),
) -> Result<(), Error> {
    let e: E = decode(event)?;
    let (uscc, summary) = about(&e);
    let uscc = Uscc::parse(&uscc)
        .map_err(|err| Error::invalid_field("event.payload.uscc", err.to_string()))?;
    let details = serde_json::to_vec(&e).map_err(|err| Error::internal(err.to_string()))?;
    store::insert_entry(
        tx,
        &Entry {
            tenant: event.tenant.clone(),
            entry_id: event.id.clone(),
            uscc: uscc.to_string(),
            kind: kind.into(),
            recorded_at: occurred_micros(event),
            principal: event.principal.clone(),
            summary,
            details,
        },
    )
    .await?;
    Ok(())
}
