//! The service's migrations (one DDL for both engines; hashes and salts as hex text).

use creditmesh_storage::Migration;

pub fn migrations() -> Vec<Migration> {
    vec![
        Migration::new(
            100,
            "register and log",
            include_str!("../migrations/100_register_and_log.sql"),
            include_str!("../migrations/100_register_and_log.sql"),
        ),
        Migration::tenant_row_security(101, &["disclosure_agency", "disclosure_notice"]),
        Migration::new(
            102,
            "erasure reason",
            include_str!("../migrations/102_erasure_reason.sql"),
            include_str!("../migrations/102_erasure_reason.sql"),
        ),
        Migration::new(
            103,
            "witness state and forks seen",
            include_str!("../migrations/103_witness.sql"),
            include_str!("../migrations/103_witness.sql"),
        ),
        Migration::new(
            104,
            "cosignatures of the register's checkpoints",
            include_str!("../migrations/104_cosignatures.sql"),
            include_str!("../migrations/104_cosignatures.sql"),
        ),
        Migration::new(
            105,
            "one-time jobs, each claimed once",
            include_str!("../migrations/105_jobs.sql"),
            include_str!("../migrations/105_jobs.sql"),
        ),
        Migration::nested_tenants(106),
    ]
}
