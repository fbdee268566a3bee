//! Identity documents a principal of an agency may be named by (Art. 9): a mainland resident
//! identity card, or — for residents of Hong Kong, Macao and Taiwan, and foreigners — the
//! document the mainland issues or recognises for them. Each is checked by its own rule.

use std::fmt;

use crate::resident_id::ResidentId;

/// The kinds of document, by the names the contracts give them (lowercase, without prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// 居民身份证 (GB 11643).
    ResidentId,
    /// 港澳台居民居住证: 18 characters as a resident number, address code 810000 (Hong Kong),
    /// 820000 (Macao) or 830000 (Taiwan).
    HkMacaoTaiwanResidencePermit,
    /// 港澳居民来往内地通行证: H (Hong Kong) or M (Macao) and 8 or 10 digits.
    HkMacaoTravelPermit,
    /// 台湾居民来往大陆通行证: 8 digits.
    TaiwanTravelPermit,
    /// 外国人永久居留身份证: the 2023 form (18 characters beginning with 9, with a check
    /// character) or the 2017 form (3 letters of nationality and 12 digits).
    ForeignPermanentResidence,
    /// 护照: 5 to 20 letters and digits.
    Passport,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 6] = [
        DocumentKind::ResidentId,
        DocumentKind::HkMacaoTaiwanResidencePermit,
        DocumentKind::HkMacaoTravelPermit,
        DocumentKind::TaiwanTravelPermit,
        DocumentKind::ForeignPermanentResidence,
        DocumentKind::Passport,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DocumentKind::ResidentId => "resident_id",
            DocumentKind::HkMacaoTaiwanResidencePermit => "hk_macao_taiwan_residence_permit",
            DocumentKind::HkMacaoTravelPermit => "hk_macao_travel_permit",
            DocumentKind::TaiwanTravelPermit => "taiwan_travel_permit",
            DocumentKind::ForeignPermanentResidence => "foreign_permanent_residence",
            DocumentKind::Passport => "passport",
        }
    }

    pub fn parse_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A document number checked by its kind's rule, in its canonical form (trimmed, uppercase).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdentityDocument {
    kind: DocumentKind,
    number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityDocumentError {
    #[error("{0}")]
    ResidentId(#[from] crate::resident_id::ResidentIdError),
    #[error("{kind}: {why}")]
    Form { kind: &'static str, why: String },
}

fn form(kind: DocumentKind, why: impl Into<String>) -> IdentityDocumentError {
    IdentityDocumentError::Form {
        kind: kind.name(),
        why: why.into(),
    }
}

/// The 18-character forms that share the resident number's layout.
fn eighteen(kind: DocumentKind, s: &str) -> Result<(), IdentityDocumentError> {
    crate::resident_id::check_layout(s, |_| Ok(())).map_err(|e| form(kind, e.to_string()))
}

impl IdentityDocument {
    pub fn parse(kind: DocumentKind, number: &str) -> Result<Self, IdentityDocumentError> {
        let s = number.trim().to_ascii_uppercase();
        let digits = |from: usize| s.as_bytes()[from..].iter().all(u8::is_ascii_digit);
        match kind {
            DocumentKind::ResidentId => {
                ResidentId::parse(&s)?;
            }
            DocumentKind::HkMacaoTaiwanResidencePermit => {
                if !["810000", "820000", "830000"]
                    .iter()
                    .any(|p| s.starts_with(p))
                {
                    return Err(form(
                        kind,
                        "must begin with 810000 (Hong Kong), 820000 (Macao) or 830000 (Taiwan)",
                    ));
                }
                eighteen(kind, &s)?;
            }
            DocumentKind::HkMacaoTravelPermit => {
                let ok = (s.len() == 9 || s.len() == 11)
                    && (s.starts_with('H') || s.starts_with('M'))
                    && digits(1);
                if !ok {
                    return Err(form(kind, "must be H or M followed by 8 or 10 digits"));
                }
            }
            DocumentKind::TaiwanTravelPermit => {
                if s.len() != 8 || !digits(0) {
                    return Err(form(kind, "must be 8 digits"));
                }
            }
            DocumentKind::ForeignPermanentResidence => {
                if s.len() == 18 {
                    if !s.starts_with('9') {
                        return Err(form(kind, "an 18-character card number begins with 9"));
                    }
                    eighteen(kind, &s)?;
                } else if s.len() == 15 {
                    let b = s.as_bytes();
                    if !b[..3].iter().all(u8::is_ascii_uppercase) || !digits(3) {
                        return Err(form(
                            kind,
                            "a 15-character card number is 3 letters of nationality and 12 digits",
                        ));
                    }
                } else {
                    return Err(form(
                        kind,
                        "must be 18 characters (2023 form) or 15 (2017 form)",
                    ));
                }
            }
            DocumentKind::Passport => {
                if !(5..=20).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(form(kind, "must be 5 to 20 letters and digits"));
                }
            }
        }
        Ok(Self { kind, number: s })
    }

    /// The document of whichever kind `number` is a valid number of, the resident identity
    /// number first; `None` when it is none. A passport is never inferred: almost any short
    /// word is the form of a passport number, so a passport is named as one.
    pub fn infer(number: &str) -> Option<Self> {
        DocumentKind::ALL
            .into_iter()
            .filter(|k| *k != DocumentKind::Passport)
            .find_map(|k| Self::parse(k, number).ok())
    }

    pub fn kind(&self) -> DocumentKind {
        self.kind
    }

    pub fn number(&self) -> &str {
        &self.number
    }
}

impl fmt::Display for IdentityDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resident_id::check_char;

    fn with_check(first17: &str) -> String {
        format!("{first17}{}", check_char(first17.as_bytes()))
    }

    #[test]
    fn each_kind_by_its_own_rule() {
        use DocumentKind::*;
        let taiwan = with_check("83000019850101123");
        assert!(IdentityDocument::parse(HkMacaoTaiwanResidencePermit, &taiwan).is_ok());
        assert!(
            IdentityDocument::parse(ResidentId, &taiwan).is_err(),
            "830000 is no mainland address code"
        );
        let wrong_check = format!("{}0", &taiwan[..17]);
        if wrong_check != taiwan {
            assert!(IdentityDocument::parse(HkMacaoTaiwanResidencePermit, &wrong_check).is_err());
        }
        let beijing = with_check("11010519491231002");
        assert!(IdentityDocument::parse(HkMacaoTaiwanResidencePermit, &beijing).is_err());
        assert!(IdentityDocument::parse(HkMacaoTravelPermit, "H12345678").is_ok());
        assert!(IdentityDocument::parse(HkMacaoTravelPermit, "m1234567890").is_ok());
        assert!(IdentityDocument::parse(HkMacaoTravelPermit, "T12345678").is_err());
        assert!(IdentityDocument::parse(TaiwanTravelPermit, "01234567").is_ok());
        assert!(IdentityDocument::parse(TaiwanTravelPermit, "0123456").is_err());
        let foreigner = with_check("93115619800101001");
        assert!(IdentityDocument::parse(ForeignPermanentResidence, &foreigner).is_ok());
        assert!(IdentityDocument::parse(ForeignPermanentResidence, "USA110180010101").is_ok());
        assert!(IdentityDocument::parse(ForeignPermanentResidence, &beijing).is_err());
        assert!(IdentityDocument::parse(Passport, "E12345678").is_ok());
        assert!(IdentityDocument::parse(Passport, "E1-2345").is_err());
        let err = IdentityDocument::parse(TaiwanTravelPermit, "x").unwrap_err();
        assert_eq!(err.to_string(), "taiwan_travel_permit: must be 8 digits");
    }

    #[test]
    fn a_number_alone_is_read_as_the_first_kind_it_fits() {
        let beijing = with_check("11010519491231002");
        assert_eq!(
            IdentityDocument::infer(&beijing).unwrap().kind(),
            DocumentKind::ResidentId
        );
        let taiwan = with_check("83000019850101123");
        assert_eq!(
            IdentityDocument::infer(&taiwan).unwrap().kind(),
            DocumentKind::HkMacaoTaiwanResidencePermit
        );
        assert!(IdentityDocument::infer("!").is_none());
        assert!(
            IdentityDocument::infer("garbage").is_none(),
            "not read as a passport"
        );
        for k in DocumentKind::ALL {
            assert_eq!(DocumentKind::parse_name(k.name()), Some(k));
        }
    }
}
