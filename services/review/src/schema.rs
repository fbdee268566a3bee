//! The service's migrations: SQL in `migrations/`, one file for both engines or one per
//! engine (`.sqlite.sql`, `.postgres.sql`) where the dialects differ; row security is
//! generated (`Migration::tenant_row_security`).

use creditmesh_storage::Migration;

pub fn migrations() -> Vec<Migration> {
    vec![
        Migration::new(
            100,
            "agency credit file",
            include_str!("../migrations/100_agency_credit_file.sqlite.sql"),
            include_str!("../migrations/100_agency_credit_file.postgres.sql"),
        ),
        Migration::tenant_row_security(101, &["review_credit_file"]),
        Migration::new(
            102,
            "review tasks, agencies under review, severe-dishonesty list",
            include_str!("../migrations/102_review_tasks_agencies_under_review.sql"),
            include_str!("../migrations/102_review_tasks_agencies_under_review.sql"),
        ),
        Migration::tenant_row_security(103, &["review_task"]),
        Migration::new(
            104,
            "annual reports seen, durable jobs, rectifications, risk tiers, spot-check draws",
            include_str!("../migrations/104_annual_reports_seen_durable_jobs.sql"),
            include_str!("../migrations/104_annual_reports_seen_durable_jobs.sql"),
        ),
        Migration::tenant_row_security(105, &["review_rectification", "review_draw"]),
        Migration::new(
            106,
            "principals a task checks, rectification deadlines with their calendar",
            include_str!("../migrations/106_principals_a_task_checks_rectification.sql"),
            include_str!("../migrations/106_principals_a_task_checks_rectification.sql"),
        ),
        Migration::new(
            107,
            "risk tiers held by a tenant; annual reports are filing's",
            include_str!("../migrations/107_risk_tiers_held_by_a.sql"),
            include_str!("../migrations/107_risk_tiers_held_by_a.sql"),
        ),
        Migration::tenant_row_security(108, &["review_agency", "review_risk"]),
        Migration::new(
            109,
            "forwarded copies and the region's list under row security",
            include_str!("../migrations/109_forwarded_copies_and_the_region.sqlite.sql"),
            include_str!("../migrations/109_forwarded_copies_and_the_region.postgres.sql"),
        ),
        Migration::new(
            110,
            "rows found by their id alone",
            include_str!("../migrations/110_rows_found_by_their_id.sql"),
            include_str!("../migrations/110_rows_found_by_their_id.sql"),
        ),
        Migration::new(
            111,
            "the region receives forwarded copies; a prefecture writes no region row",
            include_str!("../migrations/111_the_region_receives_forwarded_copies.sqlite.sql"),
            include_str!("../migrations/111_the_region_receives_forwarded_copies.postgres.sql"),
        ),
        Migration::new(
            112,
            "a rectification order tied to the interview of Art. 15(2)",
            include_str!("../migrations/112_orders_tied_to_interviews.sql"),
            include_str!("../migrations/112_orders_tied_to_interviews.sql"),
        ),
        Migration::nested_tenants(113),
        Migration::new(
            114,
            "the register of supervised parties without a filing",
            include_str!("../migrations/114_supervised_parties.sql"),
            include_str!("../migrations/114_supervised_parties.sql"),
        ),
        Migration::row_security(115, &["review_party"]),
    ]
}
