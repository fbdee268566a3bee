//! How a person can be told: an e-mail address or a mainland mobile number.

/// A contact a message can be sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Email(String),
    /// Eleven digits, without a country prefix.
    Mobile(String),
}

/// The contact `s` names: an e-mail address of plain form, or a mainland mobile number (11
/// digits from 13 to 19, with or without +86, spaces and dashes ignored); `None` otherwise.
pub fn parse(s: &str) -> Option<Contact> {
    let c = s.trim();
    if let Some((local, domain)) = c.split_once('@') {
        let plain = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && c.len() <= 254
            && !c.chars().any(|ch| ch.is_whitespace() || ch.is_control());
        return plain.then(|| Contact::Email(c.to_owned()));
    }
    let digits: String = c.chars().filter(|ch| !matches!(ch, ' ' | '-')).collect();
    let digits = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("0086"))
        .unwrap_or(&digits);
    let b = digits.as_bytes();
    (b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit))
    .then(|| Contact::Mobile(digits.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_or_a_mobile_number() {
        assert_eq!(
            parse(" aynur@example.org "),
            Some(Contact::Email("aynur@example.org".into()))
        );
        assert_eq!(
            parse("+86 139-1234-5678"),
            Some(Contact::Mobile("13912345678".into()))
        );
        assert_eq!(parse("12912345678"), None);
        assert_eq!(parse("0991-1234567"), None);
        assert_eq!(parse("not @ mail"), None);
        assert_eq!(parse("a@b"), None);
        assert_eq!(parse(""), None);
    }
}
