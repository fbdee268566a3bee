//! Resident identity numbers (GB 11643-1999), for principals named in filings (Art. 9).

use std::fmt;

use time::{Date, Month};

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";

/// An 18-character resident identity number whose birth date and check character hold.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResidentIdError {
    #[error("must be 18 characters, found {0}")]
    Length(usize),
    #[error("characters 1-17 must be digits and character 18 a digit or X")]
    Characters,
    #[error("address code (characters 1-6): {0}")]
    Address(crate::divisions::DivisionError),
    #[error("birth date (characters 7-14) {0} is not a date")]
    BirthDate(String),
    #[error("check character is {found:?}, expected {expected:?}")]
    Check { found: char, expected: char },
}

/// The check character of the first 17 digits (ISO 7064 MOD 11-2).
pub fn check_char(first17: &[u8]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize] as char
}

/// The layout GB 11643 gives a number (and the permits that share it): 18 characters, 17
/// digits and a check character, the address code (characters 1-6) as `address` checks it, a
/// birth date at 7-14, and the check character of the first 17.
pub(crate) fn check_layout(
    s: &str,
    address: impl FnOnce(&str) -> Result<(), ResidentIdError>,
) -> Result<(), ResidentIdError> {
    let b = s.as_bytes();
    if b.len() != 18 || s.chars().count() != 18 {
        return Err(ResidentIdError::Length(s.chars().count()));
    }
    if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
        return Err(ResidentIdError::Characters);
    }
    address(&s[..6])?;
    let birth = &s[6..14];
    let date = (|| {
        let y: i32 = birth[..4].parse().ok()?;
        let m: u8 = birth[4..6].parse().ok()?;
        let d: u8 = birth[6..8].parse().ok()?;
        if y < 1900 {
            return None;
        }
        Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
    })();
    if date.is_none() {
        return Err(ResidentIdError::BirthDate(birth.to_owned()));
    }
    let expected = check_char(&b[..17]);
    if b[17] as char != expected {
        return Err(ResidentIdError::Check {
            found: b[17] as char,
            expected,
        });
    }
    Ok(())
}

impl ResidentId {
    pub fn parse(s: &str) -> Result<Self, ResidentIdError> {
        let s = s.trim().to_ascii_uppercase();
        check_layout(&s, |code| {
            crate::divisions::locate(code)
                .map(|_| ())
                .map_err(ResidentIdError::Address)
        })?;
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn birth_date(&self) -> Date {
        let b = &self.0[6..14];
        let month = Month::try_from(b[4..6].parse::<u8>().unwrap_or(1)).unwrap_or(Month::January);
        Date::from_calendar_date(
            b[..4].parse().unwrap_or(1900),
            month,
            b[6..8].parse().unwrap_or(1),
        )
        .unwrap_or(Date::MIN)
    }

    /// `male` or `female`, from the parity of the sequence code.
    pub fn sex(&self) -> &'static str {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            "male"
        } else {
            "female"
        }
    }

    pub fn location(&self) -> crate::divisions::Location {
        crate::divisions::locate(&self.0[..6]).expect("checked when parsed")
    }
}

/// Never printed in full, not even in debug output.
impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", crate::mask::identity_number(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A valid number from its first 17 digits.
    pub(crate) fn complete(first17: &str) -> String {
        format!("{first17}{}", check_char(first17.as_bytes()))
    }

    #[test]
    fn decodes_a_valid_number() {
        let n = complete("65010219900307123");
        let id = ResidentId::parse(&n).unwrap();
        assert_eq!(id.birth_date().to_string(), "1990-03-07");
        assert_eq!(id.sex(), "male");
        assert_eq!(id.location().tenant().to_string(), "650100");
        assert!(
            !format!("{id:?}").contains(&n),
            "debug output masks the number"
        );
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(ResidentId::parse("6501"), Err(ResidentIdError::Length(4)));
        assert!(matches!(
            ResidentId::parse(&complete("65010219901307123")),
            Err(ResidentIdError::BirthDate(_))
        ));
        assert!(matches!(
            ResidentId::parse(&complete("99010219900307123")),
            Err(ResidentIdError::Address(_))
        ));
        let mut wrong = complete("65010219900307123");
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(
            ResidentId::parse(&wrong),
            Err(ResidentIdError::Check { .. })
        ));
    }

    proptest! {
        #[test]
        fn any_single_digit_change_is_caught(
            seq in 0u32..1000,
            day in 1u32..28,
            pos in 0usize..17,
            delta in 1u8..10,
        ) {
            let valid = complete(&format!("653101199001{day:02}{seq:03}"));
            prop_assert!(ResidentId::parse(&valid).is_ok());
            let mut bytes = valid.clone().into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(ResidentId::parse(&changed).is_err(), "{changed} passed");
        }
    }
}
