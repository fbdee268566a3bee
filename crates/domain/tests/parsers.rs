//! Every identifier parser over arbitrary input: it answers, never panics, and what it accepts
//! it accepts again in its canonical spelling.

use creditmesh_domain::calendar::parse_iso_date;
use creditmesh_domain::error::is_id_token;
use creditmesh_domain::resident_id::ResidentId;
use creditmesh_domain::routing::RegisteredDivision;
use creditmesh_domain::uscc::Uscc;
use creditmesh_domain::{Principal, PrincipalKind, Tenant};
use proptest::prelude::*;

const TRUST_DOMAIN: &str = "creditmesh.xinjiang";

/// Arbitrary text leaning towards what the parsers look for.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9A-Z]{0,20}",
        "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}",
        "6[0-9]{5}",
        "spiffe://[a-z.]{0,20}/(agency|regulator|department|service|public)(/[0-9 ]{0,7}){0,3}/?",
        "[0-9]{17}[0-9X]",
        "[HM9][0-9]{7,17}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn tenants_parse_to_their_canonical_code(s in text()) {
        if let Ok(t) = Tenant::parse(&s) {
            prop_assert_eq!(Tenant::parse(&t.to_string()).ok(), Some(t));
        }
    }

    #[test]
    fn usccs_round_trip(s in text()) {
        if let Ok(u) = Uscc::parse(&s) {
            prop_assert!(Uscc::parse(u.as_str()).is_ok());
        }
    }

    #[test]
    fn resident_ids_never_panic(s in text()) {
        let _ = ResidentId::parse(&s);
    }

    #[test]
    fn identity_documents_round_trip(s in text()) {
        use creditmesh_domain::identity_document::{DocumentKind, IdentityDocument};
        for kind in DocumentKind::ALL {
            if let Ok(d) = IdentityDocument::parse(kind, &s) {
                prop_assert_eq!(IdentityDocument::parse(kind, d.number()).ok(), Some(d));
            }
        }
    }

    #[test]
    fn registered_divisions_never_panic(s in text()) {
        let _ = RegisteredDivision::parse(&s);
    }

    #[test]
    fn dates_accepted_are_real_dates(s in text()) {
        if let Ok(d) = parse_iso_date(&s) {
            prop_assert!((1900..=2199).contains(&d.year()), "{}", d);
        }
    }

    #[test]
    fn page_tokens_never_panic(s in text()) {
        let _ = is_id_token(&s);
    }

    #[test]
    fn spiffe_ids_accepted_are_canonical(s in text()) {
        if let Ok(p) = Principal::parse_spiffe(&s, TRUST_DOMAIN) {
            prop_assert_eq!(p.spiffe_id(TRUST_DOMAIN), s);
        }
    }

    #[test]
    fn every_principal_round_trips(
        kind in prop::sample::select(vec![
            PrincipalKind::Agency,
            PrincipalKind::Regulator,
            PrincipalKind::Department,
            PrincipalKind::Service,
        ]),
        tenant in prop::sample::select(vec!["650000", "650100", "653100", "654000"]),
        subject in "[0-9A-Za-z-]{1,18}",
    ) {
        let subject = if kind == PrincipalKind::Regulator { String::new() } else { subject };
        let p = Principal::new(kind, Tenant::parse(tenant).unwrap(), subject);
        let id = p.spiffe_id(TRUST_DOMAIN);
        if let Ok(back) = Principal::parse_spiffe(&id, TRUST_DOMAIN) {
            prop_assert_eq!(back.spiffe_id(TRUST_DOMAIN), id);
        }
    }
}
