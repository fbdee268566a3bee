//! Applications for filing (Art. 8-10).

use creditmesh_domain::Tenant;
use creditmesh_domain::calendar::Deadline;
use creditmesh_domain::calendar::{Layers, add_years, format_date, parse_iso_date};
use creditmesh_domain::lifecycle::{Filing as State, Machine};
use creditmesh_domain::{Error, Uscc, Violations};
use creditmesh_proto::events::v1 as ev;
use creditmesh_proto::filing::v1::*;
use creditmesh_rpc::{CallContext, Written, edge};
use time::Date;
use tonic::{Request, Response, Status};

use creditmesh_storage::StorageError;

use crate::convert::{facts_from, named_principals, principals};
use crate::model::{Documents, Facts};
use crate::state::{Api, REVIEW_WORKING_DAYS};
use crate::store::{self, FilingRow};
use crate::validate::{check_facts, check_owned, require_doc};

const METHOD: &str = "SubmitFiling";

pub(crate) async fn submit_filing(
    api: &Api,
    request: Request<SubmitFilingRequest>,
) -> Result<Response<SubmitFilingResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let checked = check(api, &ctx, &req);
    edge::call(&api.store, &ctx, METHOD, checked, |valid| {
        submit(api, &ctx, &req, valid)
    })
    .await
}

/// An application that passed every check that needs no database.
struct Valid {
    facts: Facts,
    docs: Documents,
    uscc: Uscc,
    reviewing: Tenant,
    routing_note: String,
    deadline: Deadline,
    today: Date,
}

fn check(api: &Api, ctx: &CallContext, req: &SubmitFilingRequest) -> Result<Valid, Error> {
    let caller = Api::agency(ctx)?;
    let today = api.today()?;

    let mut v = Violations::default();
    v.require("request_id", &req.request_id);
    let facts = req.form.as_ref().map(facts_from);
    let registered = match &facts {
        None => {
            v.add("form", "is required (the application form, Art. 8(1))");
            None
        }
        Some(f) => check_facts(&mut v, "form", f, today),
    };
    let mut docs = Documents::new();
    require_doc(
        &mut v,
        &mut docs,
        "application_form_document",
        &req.application_form_document,
        "the signed application form (Art. 8(1))",
    );
    require_doc(
        &mut v,
        &mut docs,
        "business_licence",
        &req.business_licence,
        "a scan of the business licence (Art. 8(2))",
    );
    require_doc(
        &mut v,
        &mut docs,
        "articles_of_association",
        &req.articles_of_association,
        "the articles of association (Art. 8(2))",
    );
    require_doc(
        &mut v,
        &mut docs,
        "senior_management_register",
        &req.senior_management_register,
        "the senior-management register (Art. 8(3))",
    );
    require_doc(
        &mut v,
        &mut docs,
        "technical_staff_register",
        &req.technical_staff_register,
        "the technical-staff register (Art. 8(4))",
    );
    // Art. 8(5): not required of an agency "registered less than one year". The year runs
    // from the day after registration and ends with the corresponding day a year on
    // (Civil Code Art. 201-203): the report is required from the day after that.
    let report_required = registered.is_some_and(|r| today > add_years(r, 1));
    if report_required {
        require_doc(
            &mut v,
            &mut docs,
            "annual_credit_service_report",
            &req.annual_credit_service_report,
            "the annual credit-service report of an agency registered a year or more ago (Art. 8(5))",
        );
    } else if let Some(d) = &req.annual_credit_service_report
        && !d.sha256.is_empty()
    {
        require_doc(
            &mut v,
            &mut docs,
            "annual_credit_service_report",
            &req.annual_credit_service_report,
            "",
        );
    }
    match &req.credit_commitment {
        None => v.add(
            "credit_commitment",
            "is required: the credit commitment letter (Art. 8(6))",
        ),
        Some(c) => {
            require_doc(
                &mut v,
                &mut docs,
                "credit_commitment.letter",
                &c.letter,
                "the credit commitment letter (Art. 8(6))",
            );
            if !c.signed_by_legal_representative {
                v.add(
                    "credit_commitment.signed_by_legal_representative",
                    "the letter must be signed by the legal representative (Art. 8(6))",
                );
            }
            if !c.sealed {
                v.add(
                    "credit_commitment.sealed",
                    "the letter must bear the agency's seal (Art. 8(6))",
                );
            }
        }
    }
    require_doc(
        &mut v,
        &mut docs,
        "fee_schedule",
        &req.fee_schedule,
        "the fee schedule (Art. 8(7))",
    );
    if req.model_documents.is_empty() {
        v.add(
            "model_documents",
            "is required: at least one model document (Art. 8(7))",
        );
    }
    for (i, d) in req.model_documents.iter().enumerate() {
        require_doc(
            &mut v,
            &mut docs,
            &format!("model_documents[{i}]"),
            &Some(d.clone()),
            "a model document",
        );
    }
    for (i, d) in req.other_materials.iter().enumerate() {
        require_doc(
            &mut v,
            &mut docs,
            &format!("other_materials[{i}]"),
            &Some(d.clone()),
            "other material",
        );
    }
    v.finish()?;
    let facts = facts.ok_or_else(|| Error::internal("validation lost the form"))?;
    let uscc =
        Uscc::parse(&facts.uscc).map_err(|e| Error::invalid_field("form.uscc", e.to_string()))?;
    if uscc != caller {
        return Err(Error::permission_denied(format!(
            "the certificate is {caller}'s; it cannot file for {uscc}"
        )));
    }
    let (reviewing, routing_note) = api.route(&uscc, &facts.registered_division)?;
    api.in_force(today)?;
    let deadline = api
        .calendar
        .deadline(today, REVIEW_WORKING_DAYS, Layers::Xinjiang)
        .map_err(|e| Error::internal(format!("calendar: {e}")))?;
    Ok(Valid {
        facts,
        docs,
        uscc,
        reviewing,
        routing_note,
        deadline,
        today,
    })
}

async fn submit(
    api: &Api,
    ctx: &CallContext,
    req: &SubmitFilingRequest,
    valid: Valid,
) -> Result<SubmitFilingResponse, Error> {
    let Valid {
        facts,
        docs,
        uscc,
        reviewing,
        routing_note,
        deadline,
        today,
    } = valid;
    let (facts, docs, uscc, deadline, routing_note) =
        (&facts, &docs, &uscc, &deadline, &routing_note);
    api.store
        .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
            check_owned(&mut tx, uscc.as_str(), docs).await?;
            if let Some(ends) = store::ban_in_force(&mut tx, uscc.as_str(), &format_date(today)).await? {
                let from = parse_iso_date(&ends)
                    .ok()
                    .and_then(|d| d.next_day())
                    .map(format_date)
                    .unwrap_or_default();
                return Err(Error::failed_precondition(format!(
                    "{uscc} may not file again through {ends}: its filing was revoked under Art. 15, with a 12-month restriction; a new application is accepted from {from}"
                )));
            }
            if let Some(open) = store::open_filing(&mut tx, uscc.as_str()).await? {
                return Err(Error::failed_precondition(format!(
                    "{uscc} already has an open filing {open}; submit a change instead"
                )));
            }
            let tenant = reviewing.to_string();
            let filing_id = uuid::Uuid::now_v7().to_string();
            let now = api.store.now();
            let row = FilingRow {
                tenant: tenant.clone(),
                filing_id: filing_id.clone(),
                uscc: uscc.to_string(),
                agency_name: facts.agency_name.clone(),
                status: State::Submitted.name().into(),
                reviewing_tenant: tenant.clone(),
                submitted_at: now,
                review_from: format_date(deadline.from),
                review_due: format_date(deadline.due),
                review_provisional: deadline.provisional,
                calendar_version: deadline.calendar_version.clone(),
                facts: serde_json::to_string(facts).map_err(|e| Error::internal(e.to_string()))?,
                documents: serde_json::to_string(docs).map_err(|e| Error::internal(e.to_string()))?,
            };
            // Two applications at once both pass the check above; the index lets one in.
            store::insert_filing(&mut tx, &row).await.map_err(|e| match e {
                StorageError::Conflict(_) => Error::failed_precondition(format!(
                    "{uscc} already has an open filing; submit a change instead"
                )),
                e => e.into(),
            })?;
            store::add_history(&mut tx, &tenant, &filing_id, State::Submitted.name(), now, &ctx.principal_id, routing_note).await?;
            api.store.publish_event(
                &mut tx,
                ctx,
                &tenant,
                &filing_id,
                &ev::FilingSubmitted {
                    filing_id: filing_id.clone(),
                    uscc: uscc.to_string(),
                    agency_name: facts.agency_name.clone(),
                    business_scope: facts.business_scope.clone(),
                    principals: principals(facts),
                    named_principals: named_principals(facts),
                    reviewing_tenant: tenant.clone(),
                    registered_division: facts.registered_division.clone(),
                    routing_note: routing_note.to_string(),
                    registered_in_xinjiang: uscc.location().in_xinjiang(),
                    submitted_at_micros: now,
                    review_deadline: format_date(deadline.due),
                    review_deadline_provisional: deadline.provisional,
                    calendar_version: deadline.calendar_version.clone(),
                },
            )
            .await?;
            let filing = api.filing_proto(&mut tx, row).await?;
            Ok((tx, Written { value: SubmitFilingResponse { filing: Some(filing) }, tenant }))
        })
        .await
}
