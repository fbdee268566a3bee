use std::fmt;

/// The 31 characters of GB 32100-2015 (no I, O, S, V, Z), in value order.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// An 18-character unified social credit code (GB 32100-2015) whose check characters hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    #[error("must be 18 characters, found {0}")]
    Length(usize),
    #[error("character {0:?} at position {1} is not allowed (I, O, S, V and Z never occur)")]
    Character(char, usize),
    #[error("registration division (characters 3-8) must be six digits")]
    Division,
    #[error("registration authority code {0:?} (character 1) is not one of GB 32100's")]
    Authority(char),
    #[error(
        "organisation type {ty:?} (character 2) is not valid for registration authority {authority:?}"
    )]
    Type { authority: char, ty: char },
    #[error("registration division (characters 3-8): {0}")]
    Location(crate::divisions::DivisionError),
    #[error("check character is {found:?}, expected {expected:?}")]
    Check { found: char, expected: char },
    #[error("organisation code check digit (character 17) is {found:?}, expected {expected:?}")]
    OrgCheck { found: char, expected: char },
}

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The GB 32100 check character over the values of the first 17 characters.
fn check_of(values: &[u32]) -> char {
    let sum: u32 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    ALPHABET[((31 - sum % 31) % 31) as usize] as char
}

/// The GB 11714 check digit of an eight-character organisation code.
fn org_check(code: &[u8]) -> char {
    let sum: u32 = code
        .iter()
        .zip(ORG_WEIGHTS)
        .map(|(&b, w)| {
            let v = if b.is_ascii_digit() {
                u32::from(b - b'0')
            } else {
                u32::from(b - b'A') + 10
            };
            v * w
        })
        .sum();
    match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        n => char::from_digit(n, 10).unwrap_or('0'),
    }
}

/// Organisation type codes (character 2) each registration authority (character 1) issues.
/// Authorities whose categories this table does not narrow accept any digit.
fn allowed_types(authority: char) -> Option<&'static str> {
    Some(match authority {
        // Institutional establishment: organs, public institutions, mass organisations, other.
        '1' => "1239",
        // Civil affairs: social organisations, private non-enterprise units, foundations, other.
        '5' => "1239",
        // Market regulation (industry and commerce): enterprises, individual businesses,
        // farmers' cooperatives.
        '9' => "123",
        'Y' => "1",
        '2' | '3' | '4' | '6' | '7' | '8' | 'A' | 'N' => "123456789",
        _ => return None,
    })
}

impl Uscc {
    pub fn parse(code: &str) -> Result<Self, UsccError> {
        let code = code.trim().to_ascii_uppercase();
        let bytes = code.as_bytes();
        if code.chars().count() != 18 || bytes.len() != 18 {
            return Err(UsccError::Length(code.chars().count()));
        }
        let mut values = [0u32; 18];
        for (i, &b) in bytes.iter().enumerate() {
            values[i] = value(b).ok_or(UsccError::Character(b as char, i + 1))?;
        }
        let authority = bytes[0] as char;
        let ty = bytes[1] as char;
        match allowed_types(authority) {
            None => return Err(UsccError::Authority(authority)),
            Some(types) if !types.contains(ty) => return Err(UsccError::Type { authority, ty }),
            Some(_) => {}
        }
        if !bytes[2..8].iter().all(u8::is_ascii_digit) {
            return Err(UsccError::Division);
        }
        crate::divisions::locate(&code[2..8]).map_err(UsccError::Location)?;
        let expected = check_of(&values[..17]);
        if bytes[17] as char != expected {
            return Err(UsccError::Check {
                found: bytes[17] as char,
                expected,
            });
        }
        // GB 11714: characters 9-16 carry the organisation code, 17 its check digit.
        let org_expected = org_check(&bytes[8..16]);
        if bytes[16] as char != org_expected {
            return Err(UsccError::OrgCheck {
                found: bytes[16] as char,
                expected: org_expected,
            });
        }
        Ok(Self(code))
    }

    /// The code whose first sixteen characters are `first16`, with both check characters
    /// computed (for test and benchmark data).
    pub fn completing(first16: &str) -> Result<Self, UsccError> {
        let bytes = first16.as_bytes();
        if bytes.len() != 16 {
            return Err(UsccError::Length(first16.chars().count() + 2));
        }
        let mut code = first16.to_ascii_uppercase();
        code.push(org_check(&code.as_bytes()[8..16]));
        let values: Vec<u32> = code
            .bytes()
            .enumerate()
            .map(|(i, b)| value(b).ok_or(UsccError::Character(b as char, i + 1)))
            .collect::<Result<_, _>>()?;
        code.push(check_of(&values));
        Self::parse(&code)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The six-digit registration division (characters 3-8).
    pub fn division(&self) -> &str {
        &self.0[2..8]
    }

    /// Where the holder is registered (checked by `parse`).
    pub fn location(&self) -> crate::divisions::Location {
        crate::divisions::locate(self.division()).expect("checked when parsed")
    }

    pub fn registration_authority(&self) -> &'static str {
        match self.0.as_bytes()[0] {
            b'1' => "institutional establishment (机构编制)",
            b'2' => "foreign affairs (外交)",
            b'3' => "justice (司法行政)",
            b'4' => "culture (文化)",
            b'5' => "civil affairs (民政)",
            b'6' => "tourism (旅游)",
            b'7' => "religious affairs (宗教)",
            b'8' => "trade unions (工会)",
            b'9' => "market regulation (市场监管)",
            b'A' => "central military commission establishment (中央军委改革和编制办公室)",
            b'N' => "agriculture (农业)",
            _ => "other (其他)",
        }
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A valid code from its registration parts and organisation code.
    fn build(head: &str, org: &str) -> String {
        let first16 = format!("{head}{org}{}", org_check(org.as_bytes()));
        let values: Vec<u32> = first16.bytes().map(|b| value(b).unwrap()).collect();
        format!("{first16}{}", check_of(&values))
    }

    #[test]
    fn completing_computes_both_check_characters() {
        let code = Uscc::completing("91653101MA78KT00").unwrap();
        assert_eq!(code.as_str(), "91653101MA78KT005T");
        assert!(Uscc::completing("91653101MA78KT0").is_err());
    }

    proptest! {
        #[test]
        fn any_single_character_change_is_caught(
            division in prop::sample::select(vec!["650102", "653101", "659001", "110108", "654301"]),
            org in "[0-9A-HJ-NP-RTUW-Y]{8}",
            pos in 0usize..18,
            replacement in prop::sample::select(ALPHABET.to_vec()),
        ) {
            let valid = build(&format!("91{division}"), &org);
            prop_assert!(Uscc::parse(&valid).is_ok(), "{valid}");
            let mut bytes = valid.clone().into_bytes();
            prop_assume!(bytes[pos] != replacement);
            bytes[pos] = replacement;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(Uscc::parse(&changed).is_err(), "{changed} passed");
        }
    }

    #[test]
    fn accepts_valid_codes() {
        for code in [
            "91650102MA7XJ0003G",
            "91110108MA01BJ00XX",
            "91653101MA78KT005T",
        ] {
            let u = Uscc::parse(code).unwrap_or_else(|e| panic!("{code}: {e}"));
            assert_eq!(u.as_str(), code);
        }
        assert_eq!(
            Uscc::parse("91650102MA7XJ0003G").unwrap().division(),
            "650102"
        );
    }

    #[test]
    fn locates_the_division_the_code_was_issued_in() {
        let urumqi = Uscc::parse("91650102MA7XJ0003G").unwrap();
        assert_eq!(urumqi.location().tenant().to_string(), "650100");
        let kashgar = Uscc::parse("91653101MA78KT005T").unwrap();
        assert_eq!(kashgar.location().tenant().to_string(), "653100");
        let beijing = Uscc::parse("91110108MA01BJ00XX").unwrap();
        assert!(!beijing.location().in_xinjiang());
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(Uscc::parse("9165"), Err(UsccError::Length(4)));
        assert_eq!(
            Uscc::parse("91650102MA7XJ0003I"),
            Err(UsccError::Character('I', 18))
        );
        assert!(matches!(
            Uscc::parse("91650102MA7XJ0003H"),
            Err(UsccError::Check { expected: 'G', .. })
        ));
    }
}
