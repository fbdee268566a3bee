//! The gRPC edge of the filing service: validation, proto ↔ stored form, and the calls.

use std::sync::Arc;

use creditmesh_domain::calendar::{
    Calendar, Deadline, Layers, add_years, cst_date, format_date, parse_iso_date,
};
use creditmesh_domain::measures::Validity;
use creditmesh_domain::resident_id::ResidentId;
use creditmesh_domain::routing::{RegisteredDivision, ReviewRouting};
use creditmesh_domain::{Error, ErrorCode, PrincipalKind, Tenant, Uscc, Violations};
use creditmesh_proto::common::v1 as common;
use creditmesh_proto::events::v1 as ev;
use creditmesh_proto::filing::v1::filing_service_server::FilingService;
use creditmesh_proto::filing::v1::upload_document_request::Part;
use creditmesh_proto::filing::v1::*;
use creditmesh_rpc::{Authn, CallContext, ServiceStore, Written, status, status_from, timestamp};
use creditmesh_storage::blob::sniff_media_type;
use creditmesh_storage::{Blobs, StorageError, Tx};
use futures::StreamExt;
use time::Date;
use tonic::{Request, Response, Status, Streaming};

use crate::events;
use creditmesh_domain::lifecycle::{Filing as State, FilingEvent, Machine};

use crate::model::{Documents, Facts, Person};
use crate::store::{self, ChangeRow, FilingRow};

/// The largest document accepted.
pub const MAX_DOCUMENT_BYTES: i64 = 20 * 1024 * 1024;
/// Working days a regulator has to review a filing (Art. 10).
pub const REVIEW_WORKING_DAYS: u32 = 10;
/// Working days an agency has to report a change of a filed fact (Art. 12).
pub const CHANGE_WORKING_DAYS: u32 = 20;

pub struct Api {
    store: ServiceStore,
    authn: Authn,
    calendar: Arc<Calendar>,
    blobs: Blobs,
    routing: Arc<ReviewRouting>,
    measures: Option<Validity>,
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
    fn in_force(&self, day: Date) -> Result<(), Error> {
        self.measures.map_or(Ok(()), |m| m.check(day))
    }

    /// Who reviews a filing registered at `division` (Art. 10), with a note when the USCC was
    /// issued elsewhere (the enterprise moved after registering).
    fn route(&self, uscc: &Uscc, division: &str) -> Result<(Tenant, String), Error> {
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

    fn today(&self) -> Result<Date, Error> {
        cst_date(self.store.now()).map_err(|e| Error::internal(e.to_string()))
    }

    /// The agency calling, or PERMISSION_DENIED.
    fn agency(ctx: &CallContext) -> Result<Uscc, Error> {
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
    async fn visible_filing(
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

    fn deadline_proto(d: &Deadline) -> common::Deadline {
        common::Deadline {
            from_date: format_date(d.from),
            working_days: d.working_days as i32,
            due_date: format_date(d.due),
            calendar_version: d.calendar_version.clone(),
            provisional: d.provisional,
        }
    }

    async fn filing_proto(
        &self,
        conn: &mut creditmesh_storage::sqlx::AnyConnection,
        row: FilingRow,
    ) -> Result<Filing, Error> {
        let history = store::history(conn, &row.tenant, &row.filing_id).await?;
        let facts: Facts = serde_json::from_str(&row.facts)
            .map_err(|e| Error::internal(format!("stored facts: {e}")))?;
        Ok(Filing {
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
            history: history
                .into_iter()
                .map(|h| common::StatusChange {
                    status: h.status,
                    changed_at: Some(timestamp(h.changed_at)),
                    principal: h.principal,
                    note: h.note,
                })
                .collect(),
            form: Some(form_from(&facts)),
        })
    }

    /// Publishes to this service's consumers.
    async fn publish<E: ev::EventKind>(
        &self,
        tx: &mut Tx,
        ctx: &CallContext,
        tenant: &str,
        subject: &str,
        event: &E,
    ) -> Result<(), Error> {
        self.store
            .publish_event(tx, events::CONSUMERS, ctx, tenant, subject, event)
            .await
            .map(|_| ())
    }
}

fn status_proto(s: &str) -> FilingStatus {
    match State::parse(s) {
        Some(State::Submitted) => FilingStatus::Submitted,
        Some(State::Active) => FilingStatus::Active,
        Some(State::Refused) => FilingStatus::Refused,
        Some(State::Revoked) => FilingStatus::Revoked,
        Some(State::Deregistering) => FilingStatus::Deregistering,
        Some(State::Deregistered) => FilingStatus::Deregistered,
        None => FilingStatus::Unspecified,
    }
}

fn status_name(s: FilingStatus) -> Option<&'static str> {
    Some(
        match s {
            FilingStatus::Submitted | FilingStatus::UnderReview => State::Submitted,
            // A prefecture's approval makes the filing active; the region receives a copy.
            FilingStatus::Forwarded | FilingStatus::Active => State::Active,
            FilingStatus::Refused => State::Refused,
            FilingStatus::Revoked => State::Revoked,
            FilingStatus::Deregistering => State::Deregistering,
            FilingStatus::Deregistered => State::Deregistered,
            FilingStatus::Unspecified => return None,
        }
        .name(),
    )
}

/// The identity numbers Art. 9(2) checks: legal representative, chair, general manager.
fn principals(f: &Facts) -> Vec<String> {
    [&f.legal_representative, &f.chair, &f.general_manager]
        .iter()
        .map(|p| p.identity_number.clone())
        .collect()
}

fn person(p: &Option<common::Person>) -> Person {
    p.as_ref()
        .map(|p| Person {
            name: p.name.trim().to_owned(),
            identity_number: p.identity_number.trim().to_ascii_uppercase(),
        })
        .unwrap_or_default()
}

fn person_proto(p: &Person) -> Option<common::Person> {
    Some(common::Person {
        name: p.name.clone(),
        identity_number: p.identity_number.clone(),
    })
}

fn facts_from(f: &ApplicationForm) -> Facts {
    Facts {
        agency_name: f.agency_name.trim().to_owned(),
        uscc: f.uscc.trim().to_ascii_uppercase(),
        registration_date: f.registration_date.trim().to_owned(),
        registered_address: f.registered_address.trim().to_owned(),
        registered_capital_yuan: f.registered_capital_yuan,
        business_scope: f.business_scope.trim().to_owned(),
        legal_representative: person(&f.legal_representative),
        chair: person(&f.chair),
        general_manager: person(&f.general_manager),
        professional_staff_count: f.professional_staff_count,
        information_security: f.information_security.trim().to_owned(),
        internal_rules: f.internal_rules.clone(),
        contact_phone: f.contact_phone.trim().to_owned(),
        contact_email: f.contact_email.trim().to_owned(),
        registered_division: f.registered_division.trim().to_owned(),
    }
}

fn form_from(f: &Facts) -> ApplicationForm {
    ApplicationForm {
        agency_name: f.agency_name.clone(),
        uscc: f.uscc.clone(),
        registration_date: f.registration_date.clone(),
        registered_address: f.registered_address.clone(),
        registered_capital_yuan: f.registered_capital_yuan,
        business_scope: f.business_scope.clone(),
        legal_representative: person_proto(&f.legal_representative),
        chair: person_proto(&f.chair),
        general_manager: person_proto(&f.general_manager),
        professional_staff_count: f.professional_staff_count,
        information_security: f.information_security.clone(),
        internal_rules: f.internal_rules.clone(),
        contact_phone: f.contact_phone.clone(),
        contact_email: f.contact_email.clone(),
        registered_division: f.registered_division.clone(),
    }
}

/// Overlays what a change sets (non-empty fields) on the filed facts.
fn merge(filed: &Facts, change: &Facts) -> Facts {
    let text = |new: &str, old: &str| {
        if new.is_empty() {
            old.to_owned()
        } else {
            new.to_owned()
        }
    };
    let who = |new: &Person, old: &Person| {
        if new.name.is_empty() {
            old.clone()
        } else {
            new.clone()
        }
    };
    Facts {
        agency_name: text(&change.agency_name, &filed.agency_name),
        uscc: filed.uscc.clone(),
        registration_date: text(&change.registration_date, &filed.registration_date),
        registered_address: text(&change.registered_address, &filed.registered_address),
        registered_capital_yuan: if change.registered_capital_yuan > 0 {
            change.registered_capital_yuan
        } else {
            filed.registered_capital_yuan
        },
        business_scope: text(&change.business_scope, &filed.business_scope),
        legal_representative: who(&change.legal_representative, &filed.legal_representative),
        chair: who(&change.chair, &filed.chair),
        general_manager: who(&change.general_manager, &filed.general_manager),
        professional_staff_count: if change.professional_staff_count > 0 {
            change.professional_staff_count
        } else {
            filed.professional_staff_count
        },
        information_security: text(&change.information_security, &filed.information_security),
        internal_rules: if change.internal_rules.is_empty() {
            filed.internal_rules.clone()
        } else {
            change.internal_rules.clone()
        },
        contact_phone: text(&change.contact_phone, &filed.contact_phone),
        contact_email: text(&change.contact_email, &filed.contact_email),
        registered_division: text(&change.registered_division, &filed.registered_division),
    }
}

const RULES: [(InternalRule, &str); 8] = [
    (InternalRule::Organisation, "organisation"),
    (InternalRule::BusinessRules, "business rules"),
    (InternalRule::QualityControl, "quality control"),
    (InternalRule::RiskControl, "risk control"),
    (InternalRule::ConflictOfInterest, "conflict of interest"),
    (InternalRule::ComplaintHandling, "complaint handling"),
    (InternalRule::Accountability, "accountability"),
    (InternalRule::StaffManagement, "staff management"),
];

/// Checks the Art. 6 facts; returns the registration date when it parsed.
fn check_facts(v: &mut Violations, p: &str, f: &Facts, today: Date) -> Option<Date> {
    v.require(&format!("{p}.agency_name"), &f.agency_name);
    v.max_chars(&format!("{p}.agency_name"), &f.agency_name, 200);
    if f.uscc.is_empty() {
        v.add(format!("{p}.uscc"), "is required");
    } else {
        v.check(&format!("{p}.uscc"), Uscc::parse(&f.uscc));
    }
    let registered = if f.registration_date.is_empty() {
        v.add(
            format!("{p}.registration_date"),
            "is required (market-regulation registration)",
        );
        None
    } else {
        match parse_iso_date(&f.registration_date) {
            Ok(d) if d > today => {
                v.add(format!("{p}.registration_date"), "lies in the future");
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                v.add(format!("{p}.registration_date"), e);
                None
            }
        }
    };
    v.require(&format!("{p}.registered_address"), &f.registered_address);
    if f.registered_division.is_empty() {
        v.add(
            format!("{p}.registered_division"),
            "is required: the county-level GB/T 2260 code of the registered address (Art. 10)",
        );
    } else {
        v.check(
            &format!("{p}.registered_division"),
            RegisteredDivision::parse(&f.registered_division),
        );
    }
    if f.registered_capital_yuan <= 0 {
        v.add(format!("{p}.registered_capital_yuan"), "must be positive");
    }
    v.require(&format!("{p}.business_scope"), &f.business_scope);
    for (field, who) in [
        ("legal_representative", &f.legal_representative),
        ("chair", &f.chair),
        ("general_manager", &f.general_manager),
    ] {
        v.require(&format!("{p}.{field}.name"), &who.name);
        if who.identity_number.is_empty() {
            v.add(format!("{p}.{field}.identity_number"), "is required");
        } else {
            v.check(
                &format!("{p}.{field}.identity_number"),
                ResidentId::parse(&who.identity_number),
            );
        }
    }
    if f.professional_staff_count <= 0 {
        v.add(
            format!("{p}.professional_staff_count"),
            "must be at least 1 (Art. 6(2))",
        );
    }
    v.require(
        &format!("{p}.information_security"),
        &f.information_security,
    );
    let missing: Vec<&str> = RULES
        .iter()
        .filter(|(r, _)| !f.internal_rules.contains(&(*r as i32)))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        v.add(
            format!("{p}.internal_rules"),
            format!("missing (Art. 6(3)): {}", missing.join(", ")),
        );
    }
    v.require(&format!("{p}.contact_phone"), &f.contact_phone);
    if !f.contact_email.is_empty() && !f.contact_email.contains('@') {
        v.add(format!("{p}.contact_email"), "is not an e-mail address");
    }
    registered
}

fn sha_ok(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Records a required document reference.
fn require_doc(
    v: &mut Violations,
    docs: &mut Documents,
    field: &str,
    doc: &Option<common::DocumentRef>,
    what: &str,
) {
    match doc {
        None => v.add(field, format!("is required: {what}")),
        Some(d) if d.sha256.is_empty() => v.add(field, format!("is required: {what}")),
        Some(d) if !sha_ok(&d.sha256) => v.add(
            format!("{field}.sha256"),
            "must be 64 hexadecimal characters",
        ),
        Some(d) => {
            docs.entry(field.to_owned())
                .or_default()
                .push(d.sha256.to_ascii_lowercase());
        }
    }
}

/// Checks that every referenced document was uploaded by the agency.
async fn check_owned(tx: &mut Tx, uscc: &str, docs: &Documents) -> Result<(), Error> {
    let owned = store::owned_documents(tx, uscc).await?;
    let mut v = Violations::default();
    for (field, hashes) in docs {
        for h in hashes {
            if !owned.contains(h) {
                v.add(
                    format!("{field}.sha256"),
                    "no such document was uploaded by this agency",
                );
            }
        }
    }
    v.finish()
}

#[tonic::async_trait]
impl FilingService for Api {
    async fn upload_document(
        &self,
        request: Request<Streaming<UploadDocumentRequest>>,
    ) -> Result<Response<UploadDocumentResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        let uscc = Self::agency(&ctx).map_err(status)?;
        let mut stream = request.into_inner();
        let meta = match stream.next().await {
            Some(Ok(UploadDocumentRequest {
                part: Some(Part::Metadata(m)),
            })) => m,
            Some(Err(e)) => return Err(e),
            _ => {
                let e =
                    Error::invalid_field("metadata", "the first message must carry the metadata");
                return Err(status(self.store.reject(&ctx, "UploadDocument", e).await));
            }
        };
        let mut v = Violations::default();
        let kind = DocumentKind::try_from(meta.kind).unwrap_or(DocumentKind::Unspecified);
        if kind == DocumentKind::Unspecified {
            v.add("metadata.kind", "is required");
        }
        v.require("metadata.file_name", &meta.file_name);
        v.max_chars("metadata.file_name", &meta.file_name, 255);
        if meta.size_bytes <= 0 || meta.size_bytes > MAX_DOCUMENT_BYTES {
            v.add(
                "metadata.size_bytes",
                format!("must be between 1 and {MAX_DOCUMENT_BYTES} bytes"),
            );
        }
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, "UploadDocument", e).await));
        }
        let io = |e: std::io::Error| status(Error::internal(format!("document store: {e}")));
        let mut staging = self.blobs.begin().await.map_err(io)?;
        while let Some(part) = stream.next().await {
            match part?.part {
                Some(Part::Chunk(bytes)) => {
                    if staging.size() as i64 + bytes.len() as i64 > meta.size_bytes {
                        let e = Error::invalid_field(
                            "chunk",
                            "more bytes than metadata.size_bytes declared",
                        );
                        return Err(status(self.store.reject(&ctx, "UploadDocument", e).await));
                    }
                    staging.write(&bytes).await.map_err(io)?;
                }
                _ => {
                    let e = Error::invalid_field("metadata", "may be sent only once, first");
                    return Err(status(self.store.reject(&ctx, "UploadDocument", e).await));
                }
            }
        }
        if staging.size() as i64 != meta.size_bytes {
            let e = Error::invalid_field(
                "chunk",
                format!(
                    "{} bytes arrived, {} were declared",
                    staging.size(),
                    meta.size_bytes
                ),
            );
            return Err(status(self.store.reject(&ctx, "UploadDocument", e).await));
        }
        let Some(media_type) = sniff_media_type(staging.head()) else {
            let e = Error::invalid_field(
                "chunk",
                "the content is not a PDF, OFD, JPEG or PNG document",
            );
            return Err(status(self.store.reject(&ctx, "UploadDocument", e).await));
        };
        let size = staging.size() as i64;
        let sha256 = self.blobs.commit(staging).await.map_err(io)?;
        let tenant = ctx.principal.tenant.to_string();
        let kind_name = kind.as_str_name().to_ascii_lowercase();
        let store = &self.store;
        let (ctx, uscc, sha, meta, kind_name, tenant) =
            (&ctx, &uscc, &sha256, &meta, &kind_name, &tenant);
        store
            .write(ctx, "UploadDocument", |mut tx| async move {
                store::insert_document(
                    &mut tx,
                    tenant,
                    uscc.as_str(),
                    sha,
                    kind_name,
                    media_type,
                    size,
                    meta.file_name.trim(),
                    store.now(),
                )
                .await?;
                Ok((
                    tx,
                    Written {
                        value: (),
                        tenant: tenant.clone(),
                    },
                ))
            })
            .await
            .map_err(status)?;
        Ok(Response::new(UploadDocumentResponse {
            document: Some(common::DocumentRef { sha256 }),
            media_type: media_type.to_owned(),
            size_bytes: size,
        }))
    }

    async fn submit_filing(
        &self,
        request: Request<SubmitFilingRequest>,
    ) -> Result<Response<SubmitFilingResponse>, Status> {
        const METHOD: &str = "SubmitFiling";
        let ctx = self.authn.context(&request)?;
        let caller = Self::agency(&ctx).map_err(status)?;
        let req = request.into_inner();
        let today = self.today().map_err(status)?;

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
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let facts = facts.ok_or_else(|| status(Error::internal("validation lost the form")))?;
        let uscc = Uscc::parse(&facts.uscc)
            .map_err(|e| status(Error::invalid_field("form.uscc", e.to_string())))?;
        if uscc != caller {
            let e = Error::permission_denied(format!(
                "the certificate is {caller}'s; it cannot file for {uscc}"
            ));
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let (reviewing, routing_note) = self
            .route(&uscc, &facts.registered_division)
            .map_err(status)?;
        if let Err(e) = self.in_force(today) {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let deadline = self
            .calendar
            .deadline(today, REVIEW_WORKING_DAYS, Layers::Xinjiang)
            .map_err(|e| status(Error::internal(format!("calendar: {e}"))))?;
        let (ctx, facts, docs, uscc, deadline, today, routing_note) =
            (&ctx, &facts, &docs, &uscc, &deadline, today, &routing_note);
        let response = self
            .store
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
                let now = self.store.now();
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
                store::insert_filing(&mut tx, &row).await?;
                store::add_history(&mut tx, &tenant, &filing_id, State::Submitted.name(), now, &ctx.principal_id, routing_note).await?;
                self.publish(
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
                        reviewing_tenant: tenant.clone(),
                        registered_division: facts.registered_division.clone(),
                        routing_note: routing_note.clone(),
                        registered_in_xinjiang: uscc.location().in_xinjiang(),
                        submitted_at_micros: now,
                        review_deadline: format_date(deadline.due),
                        review_deadline_provisional: deadline.provisional,
                        calendar_version: deadline.calendar_version.clone(),
                    },
                )
                .await?;
                let filing = self.filing_proto(&mut tx, row).await?;
                Ok((tx, Written { value: SubmitFilingResponse { filing: Some(filing) }, tenant }))
            })
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn submit_change(
        &self,
        request: Request<SubmitChangeRequest>,
    ) -> Result<Response<SubmitChangeResponse>, Status> {
        const METHOD: &str = "SubmitChange";
        let ctx = self.authn.context(&request)?;
        Self::agency(&ctx).map_err(status)?;
        let req = request.into_inner();
        let today = self.today().map_err(status)?;
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("filing_id", &req.filing_id);
        v.max_chars("description", &req.description, 2000);
        let changed_on = if req.changed_on.is_empty() {
            v.add("changed_on", "is required: the day the fact changed");
            None
        } else {
            match parse_iso_date(&req.changed_on) {
                Ok(d) if d > today => {
                    v.add("changed_on", "lies in the future");
                    None
                }
                Ok(d) => Some(d),
                Err(e) => {
                    v.add("changed_on", e);
                    None
                }
            }
        };
        // Art. 12: the change materials (变更信息资料) go with the change.
        let mut docs = Documents::new();
        if req.supporting_documents.is_empty() {
            v.add(
                "supporting_documents",
                "is required: the change materials (变更信息资料, Art. 12)",
            );
        }
        for (i, d) in req.supporting_documents.iter().enumerate() {
            require_doc(
                &mut v,
                &mut docs,
                &format!("supporting_documents[{i}]"),
                &Some(d.clone()),
                "a change material",
            );
        }
        let change = req.changed_facts.as_ref().map(facts_from);
        match &change {
            None => v.add("changed_facts", "is required"),
            Some(c) if !c.uscc.is_empty() && c.uscc != ctx.principal.subject => v.add(
                "changed_facts.uscc",
                "cannot change; a new code is a new agency and files anew",
            ),
            Some(_) => {}
        }
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let (Some(changed_on), Some(change)) = (changed_on, change) else {
            return Err(status(Error::internal("validation lost a field")));
        };
        if let Err(e) = self.in_force(today) {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let (ctx, req, change, docs) = (&ctx, &req, &change, &docs);
        let cal = &self.calendar;
        let response = self
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let filing = self.visible_filing(&mut tx, ctx, &req.filing_id).await?;
                if State::parse(&filing.status) != Some(State::Active) {
                    return Err(Error::failed_precondition(format!(
                        "the filing is {}; only an active filing takes changes",
                        filing.status
                    )));
                }
                check_owned(&mut tx, &filing.uscc, docs).await?;
                let filed: Facts = serde_json::from_str(&filing.facts)
                    .map_err(|e| Error::internal(format!("stored facts: {e}")))?;
                let merged = merge(&filed, change);
                let mut v = Violations::default();
                check_facts(&mut v, "changed_facts", &merged, today);
                v.finish()?;
                let uscc = Uscc::parse(&filing.uscc).map_err(|e| Error::internal(e.to_string()))?;
                let (routed, _) = self.route(&uscc, &merged.registered_division)?;
                if routed.to_string() != filing.tenant {
                    return Err(Error::failed_precondition(format!(
                        "the new registered address lies in the area of {routed}, not of the holding authority {}; a move to another authority's area is filed anew with {routed} after deregistration here",
                        filing.tenant
                    )));
                }
                let cal_err = |e: creditmesh_domain::calendar::CalendarError| {
                    Error::invalid_field("changed_on", e.to_string())
                };
                let (elapsed, _) = cal
                    .working_days_between(changed_on, today, Layers::Xinjiang)
                    .map_err(cal_err)?;
                let due = cal
                    .deadline(changed_on, CHANGE_WORKING_DAYS, Layers::Xinjiang)
                    .map_err(cal_err)?;
                // Late exactly when submitted after the due date; a due date that is itself
                // provisional keeps its flag, so a lateness that rests on it is provisional too.
                let late = today > due.due;
                let change_id = uuid::Uuid::now_v7().to_string();
                let now = self.store.now();
                store::insert_change(
                    &mut tx,
                    &ChangeRow {
                        tenant: filing.tenant.clone(),
                        change_id: change_id.clone(),
                        filing_id: filing.filing_id.clone(),
                        changed_on: format_date(changed_on),
                        submitted_at: now,
                        working_days_late: i64::from(elapsed.saturating_sub(CHANGE_WORKING_DAYS)),
                        late,
                        facts: serde_json::to_string(&merged)
                            .map_err(|e| Error::internal(e.to_string()))?,
                        description: req.description.trim().to_owned(),
                        status: creditmesh_domain::lifecycle::Change::Submitted
                            .name()
                            .into(),
                        due_date: format_date(due.due),
                        due_provisional: due.provisional,
                        calendar_version: due.calendar_version.clone(),
                        documents: serde_json::to_string(docs)
                            .map_err(|e| Error::internal(e.to_string()))?,
                    },
                )
                .await?;
                let note = if late {
                    format!(
                        "change {change_id} submitted late: {elapsed} working days after the change"
                    )
                } else {
                    format!("change {change_id} submitted")
                };
                store::add_history(
                    &mut tx,
                    &filing.tenant,
                    &filing.filing_id,
                    &filing.status,
                    now,
                    &ctx.principal_id,
                    &note,
                )
                .await?;
                self.publish(
                    &mut tx,
                    ctx,
                    &filing.tenant,
                    &change_id,
                    &ev::ChangeSubmitted {
                        change_id: change_id.clone(),
                        filing_id: filing.filing_id.clone(),
                        uscc: filing.uscc.clone(),
                        changed_on: format_date(changed_on),
                        working_days_elapsed: elapsed,
                        late,
                        due_date: format_date(due.due),
                        due_provisional: due.provisional,
                        description: req.description.trim().to_owned(),
                        agency_name: merged.agency_name.clone(),
                        business_scope: merged.business_scope.clone(),
                        principals: principals(&merged),
                    },
                )
                .await?;
                let value = SubmitChangeResponse {
                    change_id,
                    late,
                    submission_deadline: Some(Self::deadline_proto(&due)),
                };
                Ok((
                    tx,
                    Written {
                        value,
                        tenant: filing.tenant,
                    },
                ))
            })
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn submit_annual_report(
        &self,
        request: Request<SubmitAnnualReportRequest>,
    ) -> Result<Response<SubmitAnnualReportResponse>, Status> {
        const METHOD: &str = "SubmitAnnualReport";
        let ctx = self.authn.context(&request)?;
        let caller = Self::agency(&ctx).map_err(status)?;
        let req = request.into_inner();
        let today = self.today().map_err(status)?;
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("filing_id", &req.filing_id);
        if req.year < 2000 || req.year >= today.year() {
            v.add(
                "year",
                format!("must be a past year, 2000 to {}", today.year() - 1),
            );
        }
        let mut docs = Documents::new();
        require_doc(
            &mut v,
            &mut docs,
            "market_regulation_annual_report",
            &req.market_regulation_annual_report,
            "the annual report filed with market regulation (Art. 11(1))",
        );
        v.require(
            "in_region_business_summary",
            &req.in_region_business_summary,
        );
        v.max_chars(
            "in_region_business_summary",
            &req.in_region_business_summary,
            10_000,
        );
        if req.projects.len() > 1000 {
            v.add("projects", "at most 1000 projects");
        }
        for (i, p) in req.projects.iter().enumerate() {
            v.require(&format!("projects[{i}].client_unit"), &p.client_unit);
            v.require(&format!("projects[{i}].project_name"), &p.project_name);
            if p.funding_scale_yuan < 0 {
                v.add(
                    format!("projects[{i}].funding_scale_yuan"),
                    "must not be negative",
                );
            }
        }
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let due = format!("{:04}-06-30", req.year + 1);
        let (ctx, req, docs, caller, due) = (&ctx, &req, &docs, &caller, &due);
        let response = self
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let filing = self.visible_filing(&mut tx, ctx, &req.filing_id).await?;
                if !State::parse(&filing.status).is_some_and(State::is_open) {
                    return Err(Error::failed_precondition(format!(
                        "the filing is {}; annual reports are no longer accepted",
                        filing.status
                    )));
                }
                check_owned(&mut tx, caller.as_str(), docs).await?;
                let report_id = uuid::Uuid::now_v7().to_string();
                let now = self.store.now();
                let content = serde_json::json!({
                    "market_regulation_annual_report": docs.get("market_regulation_annual_report"),
                    "in_region_business_summary": req.in_region_business_summary.trim(),
                    "projects": req.projects.iter().map(|p| serde_json::json!({
                        "client_unit": p.client_unit.trim(),
                        "project_name": p.project_name.trim(),
                        "funding_scale_yuan": p.funding_scale_yuan,
                        "results": p.results.trim(),
                        "awards": p.awards.trim(),
                    })).collect::<Vec<_>>(),
                });
                store::insert_report(
                    &mut tx,
                    &filing.tenant,
                    &report_id,
                    &filing.filing_id,
                    i64::from(req.year),
                    due,
                    now,
                    &content.to_string(),
                )
                .await
                .map_err(|e| match e {
                    StorageError::Conflict(_) => Error::new(
                        ErrorCode::AlreadyExists,
                        format!("the report for {} was submitted already", req.year),
                    ),
                    e => e.into(),
                })?;
                store::add_history(
                    &mut tx,
                    &filing.tenant,
                    &filing.filing_id,
                    &filing.status,
                    now,
                    &ctx.principal_id,
                    &format!("annual report for {} submitted", req.year),
                )
                .await?;
                self.publish(
                    &mut tx,
                    ctx,
                    &filing.tenant,
                    &report_id,
                    &ev::AnnualReportSubmitted {
                        report_id: report_id.clone(),
                        filing_id: filing.filing_id.clone(),
                        uscc: filing.uscc.clone(),
                        year: req.year,
                        due_date: due.clone(),
                        projects: req.projects.len() as u32,
                    },
                )
                .await?;
                let value = SubmitAnnualReportResponse {
                    report_id,
                    due_date: due.clone(),
                };
                Ok((
                    tx,
                    Written {
                        value,
                        tenant: filing.tenant,
                    },
                ))
            })
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn request_deregistration(
        &self,
        request: Request<RequestDeregistrationRequest>,
    ) -> Result<Response<RequestDeregistrationResponse>, Status> {
        const METHOD: &str = "RequestDeregistration";
        let ctx = self.authn.context(&request)?;
        let caller = Self::agency(&ctx).map_err(status)?;
        let req = request.into_inner();
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("filing_id", &req.filing_id);
        let reason =
            DeregistrationReason::try_from(req.reason).unwrap_or(DeregistrationReason::Unspecified);
        if reason == DeregistrationReason::Unspecified {
            v.add("reason", "is required (Art. 18)");
        }
        if reason == DeregistrationReason::Other {
            v.require("reason_detail", &req.reason_detail);
        }
        v.max_chars("reason_detail", &req.reason_detail, 2000);
        let mut docs = Documents::new();
        require_doc(
            &mut v,
            &mut docs,
            "disposal_plan",
            &req.disposal_plan,
            "the plan for disposing of the credit-information database (Art. 18)",
        );
        if let Err(e) = v.finish() {
            return Err(status(self.store.reject(&ctx, METHOD, e).await));
        }
        let (ctx, req, docs, caller) = (&ctx, &req, &docs, &caller);
        let response = self
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let filing = self.visible_filing(&mut tx, ctx, &req.filing_id).await?;
                check_owned(&mut tx, caller.as_str(), docs).await?;
                if store::transition(
                    &mut tx,
                    &filing.tenant,
                    &filing.filing_id,
                    FilingEvent::RequestDeregistration,
                )
                .await?
                .is_none()
                {
                    return Err(Error::failed_precondition(format!(
                        "the filing is {}; only an active filing can be deregistered",
                        filing.status
                    )));
                }
                let now = self.store.now();
                let reason_name = reason.as_str_name().to_ascii_lowercase();
                let plan = docs
                    .get("disposal_plan")
                    .and_then(|d| d.first())
                    .cloned()
                    .unwrap_or_default();
                store::insert_deregistration(
                    &mut tx,
                    &filing.tenant,
                    &filing.filing_id,
                    &reason_name,
                    req.reason_detail.trim(),
                    &plan,
                    now,
                )
                .await?;
                store::add_history(
                    &mut tx,
                    &filing.tenant,
                    &filing.filing_id,
                    State::Deregistering.name(),
                    now,
                    &ctx.principal_id,
                    &reason_name,
                )
                .await?;
                self.publish(
                    &mut tx,
                    ctx,
                    &filing.tenant,
                    &filing.filing_id,
                    &ev::DeregistrationRequested {
                        filing_id: filing.filing_id.clone(),
                        uscc: filing.uscc.clone(),
                        reason: reason_name.clone(),
                        reason_detail: req.reason_detail.trim().to_owned(),
                        disposal_plan: plan.clone(),
                    },
                )
                .await?;
                let row = store::get_filing(&mut tx, &filing.filing_id)
                    .await?
                    .ok_or_else(|| Error::internal("filing vanished"))?;
                let value = RequestDeregistrationResponse {
                    filing: Some(self.filing_proto(&mut tx, row).await?),
                };
                Ok((
                    tx,
                    Written {
                        value,
                        tenant: filing.tenant,
                    },
                ))
            })
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn get_filing(
        &self,
        request: Request<GetFilingRequest>,
    ) -> Result<Response<GetFilingResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        if req.filing_id.trim().is_empty() {
            return Err(status(Error::invalid_field("filing_id", "is required")));
        }
        let scope = read_scope(&ctx);
        let mut tx = self
            .store
            .db
            .read_scoped(scope.as_deref())
            .await
            .map_err(status_from)?;
        let row = self
            .visible_filing(&mut tx, &ctx, req.filing_id.trim())
            .await
            .map_err(status)?;
        let filing = self.filing_proto(&mut tx, row).await.map_err(status)?;
        Ok(Response::new(GetFilingResponse {
            filing: Some(filing),
        }))
    }

    async fn list_filings(
        &self,
        request: Request<ListFilingsRequest>,
    ) -> Result<Response<ListFilingsResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        let req = request.into_inner();
        let p = &ctx.principal;
        let mut v = Violations::default();
        let requested_tenant = if req.tenant.is_empty() {
            None
        } else {
            v.check("tenant", Tenant::parse(&req.tenant))
        };
        if req.page_size < 0 || req.page_size > 500 {
            v.add("page_size", "must be between 0 and 500");
        }
        let mut statuses = String::new();
        for (i, s) in req.statuses.iter().enumerate() {
            match FilingStatus::try_from(*s).ok().and_then(status_name) {
                Some(name) => statuses.push_str(&format!(",{name}")),
                None => v.add(format!("statuses[{i}]"), "is not a filing status"),
            }
        }
        if !statuses.is_empty() {
            statuses.push(',');
        }
        v.finish().map_err(status)?;
        let (tenant, uscc) = match p.kind {
            PrincipalKind::Agency => (String::new(), p.subject.clone()),
            PrincipalKind::Regulator if p.tenant.is_region() => (
                requested_tenant.map(|t| t.to_string()).unwrap_or_default(),
                req.uscc.trim().to_ascii_uppercase(),
            ),
            PrincipalKind::Regulator => {
                if requested_tenant.is_some_and(|t| t != p.tenant) {
                    return Err(status(Error::permission_denied(
                        "a prefecture lists only its own filings",
                    )));
                }
                (p.tenant.to_string(), req.uscc.trim().to_ascii_uppercase())
            }
            _ => {
                return Err(status(Error::permission_denied(
                    "not a caller of this method",
                )));
            }
        };
        let limit = if req.page_size == 0 {
            50
        } else {
            i64::from(req.page_size)
        };
        let scope = read_scope(&ctx);
        let mut tx = self
            .store
            .db
            .read_scoped(scope.as_deref())
            .await
            .map_err(status_from)?;
        let rows = store::list_filings(
            &mut tx,
            &tenant,
            &uscc,
            &statuses,
            req.page_token.trim(),
            limit + 1,
        )
        .await
        .map_err(status_from)?;
        let more = rows.len() as i64 > limit;
        let mut filings = Vec::new();
        for row in rows.into_iter().take(limit as usize) {
            filings.push(self.filing_proto(&mut tx, row).await.map_err(status)?);
        }
        let next_page_token = if more {
            filings
                .last()
                .map(|f| f.filing_id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListFilingsResponse {
            filings,
            next_page_token,
        }))
    }
}

/// The tenant a read is confined to: a prefecture regulator's own; none for the region and
/// for agencies (whose reads are confined by their USCC).
fn read_scope(ctx: &CallContext) -> Option<String> {
    let p = &ctx.principal;
    (p.kind == PrincipalKind::Regulator && !p.tenant.is_region()).then(|| p.tenant.to_string())
}
