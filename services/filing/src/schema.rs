//! The service's migrations: SQL in `migrations/`, one file for both engines or one per
//! engine (`.sqlite.sql`, `.postgres.sql`) where the dialects differ; row security is
//! generated (`Migration::tenant_row_security`).

use creditmesh_storage::Migration;

pub fn migrations() -> Vec<Migration> {
    vec![
        Migration::new(
            100,
            "filings, documents, changes, reports, deregistrations, bans",
            include_str!("../migrations/100_filings_documents_changes_reports_deregistrations.sql"),
            include_str!("../migrations/100_filings_documents_changes_reports_deregistrations.sql"),
        ),
        Migration::tenant_row_security(
            101,
            &[
                "filing_document",
                "filing_filing",
                "filing_history",
                "filing_change",
                "filing_annual_report",
                "filing_deregistration",
            ],
        ),
        Migration::new(
            102,
            "change deadlines and materials, history counters, durable jobs",
            include_str!("../migrations/102_change_deadlines_and_materials_history.sql"),
            include_str!("../migrations/102_change_deadlines_and_materials_history.sql"),
        ),
        Migration::tenant_row_security(103, &["filing_ban"]),
        Migration::new(
            104,
            "rows found by their id alone",
            include_str!("../migrations/104_rows_found_by_their_id.sql"),
            include_str!("../migrations/104_rows_found_by_their_id.sql"),
        ),
        Migration::new(
            105,
            "reads of submitted documents, with their purpose",
            include_str!("../migrations/105_document_reads.sql"),
            include_str!("../migrations/105_document_reads.sql"),
        ),
        Migration::tenant_row_security(106, &["filing_document_read"]),
        Migration::nested_tenants(107),
        Migration::new(
            108,
            "a filing moves with its registered address",
            include_str!("../migrations/108_filings_move_with_their_address.sql"),
            include_str!("../migrations/108_filings_move_with_their_address.sql"),
        ),
        Migration::new(
            109,
            "the authorities of the places where an agency works; documents shared with departments",
            include_str!("../migrations/109_places_of_activity.sql"),
            include_str!("../migrations/109_places_of_activity.sql"),
        ),
        Migration::row_security(110, &["filing_place", "filing_share"]),
    ]
}
