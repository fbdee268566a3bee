//! The service's migrations (the same DDL on both engines).

use creditmesh_storage::Migration;

pub fn migrations() -> Vec<Migration> {
    vec![
        Migration::new(
            100,
            "agencies that may push, records sealed, their versions",
            include_str!("../migrations/100_records.sql"),
            include_str!("../migrations/100_records.sql"),
        ),
        Migration::new(
            101,
            "objections, uses, correction notices, access codes, purges",
            include_str!("../migrations/101_objections.sql"),
            include_str!("../migrations/101_objections.sql"),
        ),
    ]
}
