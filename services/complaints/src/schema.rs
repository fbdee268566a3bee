//! The service's migrations: SQL in `migrations/`, one file for both engines or one per
//! engine (`.sqlite.sql`, `.postgres.sql`) where the dialects differ; row security is
//! generated (`Migration::tenant_row_security`).

use creditmesh_storage::Migration;

pub fn migrations() -> Vec<Migration> {
    // The same DDL is valid on both engines.
    vec![
        Migration::new(
            100,
            "complaints and their history",
            include_str!("../migrations/100_complaints_and_their_history.sql"),
            include_str!("../migrations/100_complaints_and_their_history.sql"),
        ),
        Migration::tenant_row_security(101, &["complaints_complaint", "complaints_history"]),
        Migration::new(
            102,
            "complaints found by number alone",
            include_str!("../migrations/102_complaints_found_by_number_alone.sql"),
            include_str!("../migrations/102_complaints_found_by_number_alone.sql"),
        ),
        Migration::new(
            103,
            "acceptance, handling deadline and resolution",
            include_str!("../migrations/103_handling.sql"),
            include_str!("../migrations/103_handling.sql"),
        ),
        Migration::new(
            104,
            "who holds each agency's filing",
            include_str!("../migrations/104_holders.sql"),
            include_str!("../migrations/104_holders.sql"),
        ),
        Migration::new(
            105,
            "repeated complaints linked",
            include_str!("../migrations/105_repeats.sql"),
            include_str!("../migrations/105_repeats.sql"),
        ),
        Migration::new(
            106,
            "evidence uploaded",
            include_str!("../migrations/106_evidence.sql"),
            include_str!("../migrations/106_evidence.sql"),
        ),
        Migration::new(
            107,
            "notifications to complainants",
            include_str!("../migrations/107_notifications.sql"),
            include_str!("../migrations/107_notifications.sql"),
        ),
        Migration::new(
            108,
            "repeats found by the complaint they repeat",
            include_str!("../migrations/108_repeats_by_original.sql"),
            include_str!("../migrations/108_repeats_by_original.sql"),
        ),
        Migration::new(
            109,
            "referrals to departments with their receipts",
            include_str!("../migrations/109_referrals.sql"),
            include_str!("../migrations/109_referrals.sql"),
        ),
        Migration::new(
            110,
            "uploads pending per address",
            include_str!("../migrations/110_uploads_by_address.sql"),
            include_str!("../migrations/110_uploads_by_address.sql"),
        ),
        Migration::new(
            111,
            "notifications by e-mail or text message",
            include_str!("../migrations/111_notification_channels.sql"),
            include_str!("../migrations/111_notification_channels.sql"),
        ),
        Migration::new(
            112,
            "identical complaints linked one at a time",
            include_str!("../migrations/112_fingerprint_locks.sql"),
            include_str!("../migrations/112_fingerprint_locks.sql"),
        ),
        Migration::new(
            113,
            "a complaint's history numbered from a counter on its row",
            include_str!("../migrations/113_history_counter.sql"),
            include_str!("../migrations/113_history_counter.sql"),
        ),
        Migration::new(
            114,
            "reads of evidence, with their purpose",
            include_str!("../migrations/114_evidence_reads.sql"),
            include_str!("../migrations/114_evidence_reads.sql"),
        ),
        Migration::tenant_row_security(115, &["complaints_evidence_read"]),
        Migration::nested_tenants(116),
        Migration::new(
            117,
            "evidence shared with a referral's department",
            include_str!("../migrations/117_evidence_shared_with_departments.sql"),
            include_str!("../migrations/117_evidence_shared_with_departments.sql"),
        ),
        Migration::new(
            118,
            "where the conduct complained of took place",
            include_str!("../migrations/118_place_of_activity.sql"),
            include_str!("../migrations/118_place_of_activity.sql"),
        ),
        // A complainant's contact stays on the complaint: notifications refer to it.
        Migration::new(
            119,
            "a complaint's notifications refer to its contact",
            include_str!("../migrations/119_notifications_refer_to_the_contact.sql"),
            include_str!("../migrations/119_notifications_refer_to_the_contact.sql"),
        ),
        // A referral waiting to be delivered holds the complainant's contact sealed; the sender
        // opens it into what it sends.
        Migration::new(
            120,
            "a referral's complainant contact sealed",
            include_str!("../migrations/120_referral_contact_sealed.sql"),
            include_str!("../migrations/120_referral_contact_sealed.sql"),
        ),
        // What the public page in Chinese shows of each change, beside the note in English.
        Migration::new(
            121,
            "each change's note in Chinese",
            include_str!("../migrations/121_history_in_chinese.sql"),
            include_str!("../migrations/121_history_in_chinese.sql"),
        ),
    ]
}
