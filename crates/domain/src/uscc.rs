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
    #[error("check character is {found:?}, expected {expected:?}")]
    Check { found: char, expected: char },
    #[error("organisation code check digit (character 17) is {found:?}, expected {expected:?}")]
    OrgCheck { found: char, expected: char },
}

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
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
        if !bytes[2..8].iter().all(u8::is_ascii_digit) {
            return Err(UsccError::Division);
        }
        let sum: u32 = values[..17].iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
        let expected = ALPHABET[((31 - sum % 31) % 31) as usize] as char;
        if bytes[17] as char != expected {
            return Err(UsccError::Check {
                found: bytes[17] as char,
                expected,
            });
        }
        // GB 11714: characters 9-16 carry the organisation code, 17 its check digit.
        let org_sum: u32 = bytes[8..16]
            .iter()
            .zip(ORG_WEIGHTS)
            .map(|(&b, w)| {
                let v = if b.is_ascii_digit() {
                    (b - b'0') as u32
                } else {
                    (b - b'A') as u32 + 10
                };
                v * w
            })
            .sum();
        let org_expected = match 11 - org_sum % 11 {
            10 => 'X',
            11 => '0',
            n => char::from_digit(n, 10).unwrap_or('0'),
        };
        if bytes[16] as char != org_expected {
            return Err(UsccError::OrgCheck {
                found: bytes[16] as char,
                expected: org_expected,
            });
        }
        Ok(Self(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The six-digit registration division (characters 3-8).
    pub fn division(&self) -> &str {
        &self.0[2..8]
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
