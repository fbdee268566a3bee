//! The service's migrations.

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
        // A record holds its current version; the versions it had are kept by the database
        // as it moves on, whatever statement moves it.
        Migration::new(
            102,
            "history of earlier versions kept by a trigger",
            include_str!("../migrations/102_history_by_trigger.sqlite.sql"),
            include_str!("../migrations/102_history_by_trigger.postgres.sql"),
        ),
        // Which index key each keyed hash is under, so that a rotation can find what is
        // left to hash again.
        Migration::new(
            103,
            "the index key of each keyed hash",
            include_str!("../migrations/103_index_key.sqlite.sql"),
            include_str!("../migrations/103_index_key.postgres.sql"),
        ),
        // An objection whose agency's filing is revoked or deregistered is decided by the
        // authority holding it; the subject is told so once.
        Migration::new(
            104,
            "the subject told who decides an objection once the agency is gone",
            include_str!("../migrations/104_decider_told.sql"),
            include_str!("../migrations/104_decider_told.sql"),
        ),
        // A department reads only in a case the platform knows: a referral it received.
        Migration::new(
            105,
            "departments' cases, and the legal basis and case of each read",
            include_str!("../migrations/105_cases.sql"),
            include_str!("../migrations/105_cases.sql"),
        ),
        // An objection's supporting materials, sealed; a quota on each access code.
        Migration::new(
            106,
            "objection materials, the measure asked for, uploads per access code",
            include_str!("../migrations/106_materials.sql"),
            include_str!("../migrations/106_materials.sql"),
        ),
        // Art. 21 相关使用: the pushing agency's own uses and disclosures beside the platform's
        // reads.
        Migration::new(
            107,
            "agencies' own uses of their records",
            include_str!("../migrations/107_agency_uses.sql"),
            include_str!("../migrations/107_agency_uses.sql"),
        ),
    ]
}
