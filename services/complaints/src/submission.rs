//! A complaint or report is received (Art. 24).

use creditmesh_domain::calendar::{Layers, cst_date, format_date};
use creditmesh_domain::tenant::REGION;
use creditmesh_domain::{Error, PrincipalKind, Tenant, Uscc, Violations};
use creditmesh_proto::complaints::v1::*;
use creditmesh_rpc::{CallContext, Written, edge};
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::state::Api;
use crate::store::{self, NewComplaint};

pub(crate) async fn submit_complaint(
    api: &Api,
    request: Request<SubmitComplaintRequest>,
) -> Result<Response<SubmitComplaintResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    edge::call(
        &api.store,
        &ctx,
        "SubmitComplaint",
        validate(&req),
        |valid| submit(api, &ctx, &req, valid),
    )
    .await
}

async fn submit(
    api: &Api,
    ctx: &CallContext,
    req: &SubmitComplaintRequest,
    valid: ValidComplaint,
) -> Result<SubmitComplaintResponse, Error> {
    // Public callers share one principal, so their idempotency key also covers the
    // request's content: nobody learns another complainant's access code by reusing an id.
    let idempotency_key = if ctx.principal.kind == PrincipalKind::Public {
        sha256_hex(&[req.request_id.as_bytes(), b"\0", &req.encode_to_vec()].concat())
    } else {
        req.request_id.clone()
    };
    let store = &api.store;
    store
        .write_idempotent(ctx, "SubmitComplaint", &idempotency_key, |mut tx| async move {
            let tenant = valid.route(crate::store::holder(&mut tx, valid.uscc.as_str()).await?);
            let tracking_number = format!("TS{}", random_code(12));
            let access_code = random_code(20);
            let now = store.now();
            let evidence: Vec<String> =
                req.evidence.iter().map(|d| d.sha256.to_ascii_lowercase()).collect();
            if let Some((i, _)) = crate::evidence_store::missing(&mut tx, &evidence).await? {
                return Err(Error::invalid_field(
                    format!("evidence[{i}].sha256"),
                    "was not uploaded: upload it with UploadEvidence first",
                ));
            }
            crate::evidence_store::named(&mut tx, &evidence).await?;
            store::insert(
                &mut tx,
                &NewComplaint {
                    tenant: &tenant,
                    tracking_number: &tracking_number,
                    access_code_sha256: &sha256_hex(access_code.as_bytes()),
                    agency_uscc: valid.uscc.as_str(),
                    agency_name: req.agency_name.trim(),
                    complainant_name: req.complainant_name.trim(),
                    complainant_contact: req.complainant_contact.trim(),
                    subject: req.subject.trim(),
                    description: &req.description,
                    evidence_json: &serde_json::to_string(&evidence)
                        .map_err(|e| Error::internal(e.to_string()))?,
                    received_at: now,
                    place: &valid.place.map(|p| p.to_string()).unwrap_or_default(),
                },
            )
            .await?;
            // The Measures leave the acceptance period open: it is configuration.
            let received_on = cst_date(now).map_err(|e| Error::internal(e.to_string()))?;
            if let Ok(due) = api.calendar.deadline(
                received_on,
                api.acceptance_working_days,
                Layers::Xinjiang,
            ) {
                store::set_acceptance_due(
                    &mut tx,
                    &tenant,
                    &tracking_number,
                    &format_date(due.due),
                    due.provisional,
                )
                .await?;
            }
            let repeats = store::link_repeat(
                &mut tx,
                &tenant,
                &tracking_number,
                &fingerprint(valid.uscc.as_str(), &req.subject, &req.description),
                now,
            )
            .await?;
            let (note, note_zh) = repeats
                .map(|first| {
                    (
                        format!("repeats complaint {first}"),
                        format!("与投诉举报 {first} 重复"),
                    )
                })
                .unwrap_or_default();
            store::add_history(
                &mut tx,
                &tenant,
                &tracking_number,
                "received",
                now,
                &ctx.principal_id,
                (&note, &note_zh),
            )
            .await?;
            store
                .publish_event(
                    &mut tx,
                    ctx,
                    &tenant,
                    &tracking_number,
                    &creditmesh_proto::events::v1::ComplaintSubmitted {
                        tracking_number: tracking_number.clone(),
                        agency_uscc: valid.uscc.to_string(),
                        agency_name: req.agency_name.trim().to_owned(),
                        subject: req.subject.trim().to_owned(),
                        received_at_micros: now,
                    },
                )
                .await?;
            tracing::info!(%tenant, %tracking_number, request_id = %ctx.request_id, "complaint received");
            let written = Written {
                value: SubmitComplaintResponse {
                    tracking_number,
                    access_code,
                    status: ComplaintStatus::Received as i32,
                },
                tenant,
            };
            Ok((tx, written))
        })
        .await
}

/// Crockford base32: no I, L, O or U, so codes survive being read aloud or copied by hand.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn random_code(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in uuid::Uuid::new_v4().into_bytes() {
            if out.len() == len {
                break;
            }
            out.push(CODE_ALPHABET[(b & 31) as usize] as char);
        }
    }
    out
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What makes two complaints the same: the agency, and the subject and description with case
/// and runs of white space ignored.
fn fingerprint(uscc: &str, subject: &str, description: &str) -> String {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    sha256_hex(format!("{uscc}\0{}\0{}", norm(subject), norm(description)).as_bytes())
}

struct ValidComplaint {
    /// The authority the complainant addressed, if they did.
    addressed: Option<Tenant>,
    /// Where the conduct took place, if the complainant named it.
    place: Option<Tenant>,
    uscc: Uscc,
}

impl ValidComplaint {
    /// Who handles the complaint: the authority addressed; else the authority of the place of
    /// activity (a county's prefecture); else the authority holding the agency's filing
    /// (`holder`); else the region. The code a USCC embeds names where the code was issued,
    /// not where the agency is or works, so it routes nothing.
    fn route(&self, holder: Option<String>) -> String {
        match (self.addressed, self.place, holder) {
            (Some(t), _, _) => t.to_string(),
            (None, Some(place), _) => place.prefecture().to_string(),
            (None, None, Some(holder)) => holder,
            (None, None, None) => REGION.to_string(),
        }
    }
}

fn validate(req: &SubmitComplaintRequest) -> Result<ValidComplaint, Error> {
    let mut v = Violations::default();
    v.require("request_id", &req.request_id);
    v.max_chars("request_id", &req.request_id, 128);
    let uscc = if req.agency_uscc.trim().is_empty() {
        v.add("agency_uscc", "is required");
        None
    } else {
        v.check("agency_uscc", Uscc::parse(&req.agency_uscc))
    };
    v.max_chars("agency_name", &req.agency_name, 200);
    let addressed = if req.tenant.trim().is_empty() {
        None
    } else {
        v.check("tenant", Tenant::parse_holding(&req.tenant))
    };
    let place = req.place_of_activity.trim();
    let place = if place.is_empty() {
        None
    } else {
        match Tenant::parse(place) {
            Ok(t) if t.is_region() => {
                v.add(
                    "place_of_activity",
                    "names the region: name the prefecture or county where it took place",
                );
                None
            }
            other => v.check("place_of_activity", other),
        }
    };
    v.max_chars("complainant_name", &req.complainant_name, 100);
    // Optional: a report may be anonymous (举报), its tracking number and access code telling the
    // complainant everything; a contact that is given must be one.
    v.max_chars("complainant_contact", &req.complainant_contact, 200);
    if !req.complainant_contact.trim().is_empty() {
        v.check(
            "complainant_contact",
            creditmesh_domain::contact::check(&req.complainant_contact),
        );
    }
    v.require("subject", &req.subject);
    v.max_chars("subject", &req.subject, 200);
    v.require("description", &req.description);
    v.max_chars("description", &req.description, 10_000);
    if req.evidence.len() > 20 {
        v.add("evidence", "at most 20 documents");
    }
    for (i, doc) in req.evidence.iter().enumerate() {
        if doc.sha256.len() != 64 || !doc.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            v.add(
                format!("evidence[{i}].sha256"),
                "must be 64 hexadecimal characters",
            );
        }
    }
    match (v.finish(), uscc) {
        (Ok(()), Some(uscc)) => Ok(ValidComplaint {
            addressed,
            place,
            uscc,
        }),
        (Err(e), _) => Err(e),
        _ => Err(Error::internal("validation lost a field")),
    }
}
