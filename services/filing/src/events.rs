//! Events the filing service publishes, and the review decisions it applies.

use creditmesh_domain::Error;
use creditmesh_domain::lifecycle::{ChangeEvent, Filing, FilingEvent, Machine};
use creditmesh_proto::events::v1::{
    ChangeDecided, DeadlineRecomputed, DeregistrationCompleted, DeregistrationDecided, Event,
    FilingDecided, FilingRevoked, FilingTransferred, PlaceReported, PlaceSupervised,
};
use creditmesh_rpc::sink::{Applied, EventHandler, decode};
use creditmesh_storage::{Infra, NewEvent, Tx};

use crate::register::{self, Notice, Tell};
use crate::store;

pub struct Handler {
    /// For what the register is told.
    pub infra: Infra,
}

/// What a review event asks of a filing: the transition, the history note, and a
/// restriction to record whatever the transition's fate.
struct Ask {
    filing_id: String,
    transition: FilingEvent,
    note: String,
    ban: Option<(String, String)>,
    /// The ground the register shows for a revocation.
    ground: String,
    /// The disposal record that completes a deregistration, JSON.
    disposal: String,
}

#[tonic::async_trait]
impl EventHandler for Handler {
    async fn apply(&self, tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
        let at = creditmesh_rpc::sink::occurred_micros(event);
        let by = event.principal.as_str();
        let ask = match event.r#type.as_str() {
            DeadlineRecomputed::TYPE => {
                let e: DeadlineRecomputed = decode(event)?;
                store::set_review_deadline(
                    tx,
                    &e.filing_id,
                    &e.due_date,
                    e.provisional,
                    &e.calendar_version,
                )
                .await?;
                return Ok(Applied::Done);
            }
            ChangeDecided::TYPE => {
                return change_decided(tx, &self.infra, decode(event)?, at, by).await;
            }
            PlaceSupervised::TYPE => {
                let e: PlaceSupervised = decode(event)?;
                return place_supervised(tx, &self.infra, e, at, by).await;
            }
            FilingDecided::TYPE => {
                let e: FilingDecided = decode(event)?;
                Ask {
                    filing_id: e.filing_id,
                    transition: if e.approved {
                        FilingEvent::Approve
                    } else {
                        FilingEvent::Refuse
                    },
                    note: e.reason,
                    ban: None,
                    ground: String::new(),
                    disposal: String::new(),
                }
            }
            FilingRevoked::TYPE => {
                let e: FilingRevoked = decode(event)?;
                if !e.shared_with.is_empty() {
                    store::share(tx, &event.tenant, &e.filing_id, &e.shared_with, at).await?;
                }
                Ask {
                    filing_id: e.filing_id,
                    transition: FilingEvent::Revoke,
                    note: format!("revoked: {}", e.ground),
                    ban: (!e.ban_ends_on.is_empty()).then_some((e.ban_ends_on, e.ground.clone())),
                    ground: e.ground,
                    disposal: String::new(),
                }
            }
            DeregistrationDecided::TYPE => {
                let e: DeregistrationDecided = decode(event)?;
                if e.approved {
                    return deregistration_approved(tx, &e.filing_id, at, by).await;
                }
                Ask {
                    filing_id: e.filing_id,
                    transition: FilingEvent::RefuseDeregistration,
                    note: format!("deregistration refused: {}", e.reason),
                    ban: None,
                    ground: String::new(),
                    disposal: String::new(),
                }
            }
            DeregistrationCompleted::TYPE => {
                let e: DeregistrationCompleted = decode(event)?;
                let record = serde_json::to_string(&e.disposal.unwrap_or_default())
                    .map_err(|e| Error::internal(e.to_string()))?;
                Ask {
                    filing_id: e.filing_id,
                    transition: FilingEvent::CompleteDeregistration,
                    note: format!("credit-information database disposed of: {record}"),
                    ban: None,
                    ground: String::new(),
                    disposal: record,
                }
            }
            _ => return Ok(Applied::Done),
        };
        let Some(filing) = store::get_filing(tx, &ask.filing_id).await? else {
            return Err(Error::not_found(format!("no filing {}", ask.filing_id)));
        };
        // The restriction follows the regulator's decision even when the filing ended another
        // way first.
        if let Some((ends, ground)) = &ask.ban {
            store::put_ban(tx, &filing.tenant, &filing.uscc, ends, ground, &event.id).await?;
        }
        let Some(next) =
            store::transition(tx, &filing.tenant, &ask.filing_id, ask.transition).await?
        else {
            let why = Filing::parse(&filing.status)
                .and_then(|s| s.on(ask.transition).err())
                .map(|e| e.to_string())
                .unwrap_or_else(|| format!("the filing is {}", filing.status));
            return Ok(Applied::NotApplied(format!(
                "filing {}: {why}",
                ask.filing_id
            )));
        };
        match ask.transition {
            FilingEvent::CompleteDeregistration => {
                store::complete_deregistration(
                    tx,
                    &filing.tenant,
                    &ask.filing_id,
                    &ask.disposal,
                    at,
                )
                .await?;
            }
            FilingEvent::Revoke => {
                store::withdraw_changes(tx, &ask.filing_id).await?;
            }
            _ => {}
        }
        store::add_history(
            tx,
            &filing.tenant,
            &ask.filing_id,
            next.name(),
            at,
            by,
            &ask.note,
        )
        .await?;
        let notice = match ask.transition {
            FilingEvent::Approve => Some(Notice::Published),
            FilingEvent::Revoke => Some(Notice::Revoked),
            FilingEvent::RefuseDeregistration => Some(Notice::DeregistrationRefused),
            FilingEvent::CompleteDeregistration => Some(Notice::Deregistered),
            _ => None,
        };
        if let Some(notice) = notice {
            register::tell(
                tx,
                &self.infra,
                Tell {
                    filing_id: &ask.filing_id,
                    notice,
                    ground: &ask.ground,
                    changed_fields: Vec::new(),
                    at,
                    principal: by,
                },
            )
            .await?;
        }
        Ok(Applied::Done)
    }
}

async fn deregistration_approved(
    tx: &mut Tx,
    filing_id: &str,
    at: i64,
    by: &str,
) -> Result<Applied, Error> {
    let Some(filing) = store::get_filing(tx, filing_id).await? else {
        return Err(Error::not_found(format!("no filing {filing_id}")));
    };
    if filing.status != Filing::Deregistering.name() {
        return Ok(Applied::NotApplied(format!(
            "filing {filing_id} is {}; its deregistration approval changes nothing",
            filing.status
        )));
    }
    store::add_history(
        tx,
        &filing.tenant,
        filing_id,
        &filing.status,
        at,
        by,
        "deregistration approved; awaiting the disposal record (Art. 18)",
    )
    .await?;
    Ok(Applied::Done)
}

/// Review's decision on a change: the filed facts change only on approval of a change still
/// undecided, of a filing still active.
async fn change_decided(
    tx: &mut Tx,
    infra: &Infra,
    e: ChangeDecided,
    at: i64,
    by: &str,
) -> Result<Applied, Error> {
    let change_id = e.change_id.as_str();
    let Some((tenant, filing_id, facts, _)) = store::get_change(tx, change_id).await? else {
        return Err(Error::not_found(format!("no change {change_id}")));
    };
    let event = if e.approved {
        ChangeEvent::Approve
    } else {
        ChangeEvent::Refuse
    };
    if !store::change_transition(tx, change_id, event).await? {
        return Ok(Applied::NotApplied(format!(
            "change {change_id} was decided or withdrawn already"
        )));
    }
    let Some(filing) = store::get_filing(tx, &filing_id).await? else {
        return Ok(Applied::Done);
    };
    if e.approved {
        if filing.status != Filing::Active.name() {
            return Ok(Applied::NotApplied(format!(
                "change {change_id} approved while its filing is {}; the filed facts stay",
                filing.status
            )));
        }
        let parsed: crate::model::Facts = serde_json::from_str(&facts)
            .map_err(|e| Error::internal(format!("stored change: {e}")))?;
        let before: crate::model::Facts = serde_json::from_str(&filing.facts)
            .map_err(|e| Error::internal(format!("stored facts: {e}")))?;
        store::set_facts(tx, &tenant, &filing_id, &parsed.agency_name, &facts).await?;
        let moves_to = store::change_moves_to(tx, change_id).await?;
        let moves = !moves_to.is_empty() && moves_to != tenant;
        if moves {
            store::transfer(tx, &filing_id, &moves_to).await?;
            let moved = FilingTransferred {
                filing_id: filing_id.clone(),
                uscc: filing.uscc.clone(),
                change_id: change_id.to_owned(),
                from_tenant: tenant.clone(),
                to_tenant: moves_to.clone(),
                registered_division: parsed.registered_division.clone(),
            };
            infra
                .publish(
                    tx,
                    FilingTransferred::CONSUMERS,
                    NewEvent {
                        event_type: FilingTransferred::TYPE,
                        tenant: &tenant,
                        principal: by,
                        subject: &filing_id,
                        payload: prost::Message::encode_to_vec(&moved),
                    },
                    at,
                )
                .await?;
            store::add_history(
                tx,
                &moves_to,
                &filing_id,
                &filing.status,
                at,
                by,
                &format!(
                    "change {change_id} approved: the registered address lies in the area of {moves_to}, which holds the filing from now on, transferred from {tenant} with its history (Art. 10, 12)"
                ),
            )
            .await?;
        }
        register::tell(
            tx,
            infra,
            Tell {
                filing_id: &filing_id,
                notice: Notice::Changed,
                ground: "",
                changed_fields: register::changed_fields(&before, &parsed),
                at,
                principal: by,
            },
        )
        .await?;
        if moves {
            return Ok(Applied::Done);
        }
    }
    let note = if e.approved {
        format!("change {change_id} approved")
    } else {
        format!("change {change_id} refused: {}", e.reason)
    };
    store::add_history(tx, &tenant, &filing_id, &filing.status, at, by, &note).await?;
    Ok(Applied::Done)
}

/// An act of the authority of a place of activity (Art. 5): that authority may open what the
/// agency filed, and the act is passed on to the authority holding the filing, whose review
/// may run on a node of its own. An act on an agency that never filed stays where it was.
async fn place_supervised(
    tx: &mut Tx,
    infra: &Infra,
    e: PlaceSupervised,
    at: i64,
    by: &str,
) -> Result<Applied, Error> {
    store::add_place(tx, &e.place, &e.uscc, at, &e.entry_id).await?;
    let Some(holder) = store::holder(tx, &e.uscc).await? else {
        return Ok(Applied::Done);
    };
    if holder == e.place {
        return Ok(Applied::Done);
    }
    let reported = PlaceReported {
        uscc: e.uscc,
        place: e.place,
        entry_id: e.entry_id,
        kind: e.kind,
        recorded_at: if e.recorded_at == 0 {
            at
        } else {
            e.recorded_at
        },
        summary: e.summary,
        details: e.details,
    };
    infra
        .publish(
            tx,
            PlaceReported::CONSUMERS,
            NewEvent {
                event_type: PlaceReported::TYPE,
                tenant: &holder,
                principal: by,
                subject: &reported.uscc,
                payload: prost::Message::encode_to_vec(&reported),
            },
            at,
        )
        .await?;
    Ok(Applied::Done)
}
