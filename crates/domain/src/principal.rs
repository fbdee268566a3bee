use std::fmt;

use crate::tenant::{REGION, Tenant, TenantError};

/// The kind of caller, named by the first path segment of its SPIFFE ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    Agency,
    Regulator,
    Department,
    Service,
    /// Anyone on the public listener; never carried by a certificate.
    Public,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Agency => "agency",
            PrincipalKind::Regulator => "regulator",
            PrincipalKind::Department => "department",
            PrincipalKind::Service => "service",
            PrincipalKind::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "agency" => PrincipalKind::Agency,
            "regulator" => PrincipalKind::Regulator,
            "department" => PrincipalKind::Department,
            "service" => PrincipalKind::Service,
            _ => return None,
        })
    }
}

/// An authenticated caller: `spiffe://<trust-domain>/<kind>/<tenant>[/<subject>]`.
///
/// The subject is an agency's USCC, a department's code or a service's name; a regulator is
/// identified by its tenant alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub tenant: Tenant,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    #[error("not a spiffe id of trust domain {0}")]
    TrustDomain(String),
    #[error("unknown principal kind {0:?}")]
    Kind(String),
    #[error("tenant: {0}")]
    Tenant(#[from] TenantError),
    #[error("{0} identities need a subject")]
    MissingSubject(&'static str),
    #[error("subject {0:?} has characters outside [A-Za-z0-9._-]")]
    Subject(String),
    #[error(
        "a county ({0}) names regulators and departments only; agencies and services belong to the region or a prefecture"
    )]
    County(Tenant),
    #[error("too many path segments")]
    TooLong,
    #[error("{0:?} is not in canonical form (spiffe://<trust-domain>/<kind>/<tenant>[/<subject>])")]
    NotCanonical(String),
}

impl Principal {
    pub fn new(kind: PrincipalKind, tenant: Tenant, subject: impl Into<String>) -> Self {
        Self {
            kind,
            tenant,
            subject: subject.into(),
        }
    }

    /// The anonymous caller of the public listener.
    pub fn public() -> Self {
        Self::new(PrincipalKind::Public, REGION, "")
    }

    pub fn parse_spiffe(uri: &str, trust_domain: &str) -> Result<Self, PrincipalError> {
        let rest = uri
            .strip_prefix("spiffe://")
            .and_then(|r| r.strip_prefix(trust_domain))
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| PrincipalError::TrustDomain(trust_domain.to_owned()))?;
        let mut parts = rest.split('/');
        let kind_str = parts.next().unwrap_or_default();
        let kind =
            PrincipalKind::parse(kind_str).ok_or_else(|| PrincipalError::Kind(kind_str.into()))?;
        let tenant = Tenant::parse(parts.next().unwrap_or_default())?;
        if tenant.is_county()
            && !matches!(kind, PrincipalKind::Regulator | PrincipalKind::Department)
        {
            return Err(PrincipalError::County(tenant));
        }
        let subject = parts.next().unwrap_or_default().to_owned();
        if parts.next().is_some() {
            return Err(PrincipalError::TooLong);
        }
        if subject.is_empty() && kind != PrincipalKind::Regulator {
            return Err(PrincipalError::MissingSubject(kind.as_str()));
        }
        if !subject
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(PrincipalError::Subject(subject));
        }
        let principal = Self {
            kind,
            tenant,
            subject,
        };
        // One spelling names one principal: no padding, no empty segment, no trailing slash.
        if principal.spiffe_id(trust_domain) != uri {
            return Err(PrincipalError::NotCanonical(uri.to_owned()));
        }
        Ok(principal)
    }

    pub fn spiffe_id(&self, trust_domain: &str) -> String {
        if self.subject.is_empty() {
            format!(
                "spiffe://{trust_domain}/{}/{}",
                self.kind.as_str(),
                self.tenant
            )
        } else {
            format!(
                "spiffe://{trust_domain}/{}/{}/{}",
                self.kind.as_str(),
                self.tenant,
                self.subject
            )
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            write!(f, "{}/{}", self.kind.as_str(), self.tenant)
        } else {
            write!(f, "{}/{}/{}", self.kind.as_str(), self.tenant, self.subject)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TD: &str = "creditmesh.test";

    #[test]
    fn round_trips_through_spiffe() {
        let p = Principal::new(
            PrincipalKind::Agency,
            Tenant::parse("653100").unwrap(),
            "91653100MA78A1B2C3",
        );
        let id = p.spiffe_id(TD);
        assert_eq!(
            id,
            "spiffe://creditmesh.test/agency/653100/91653100MA78A1B2C3"
        );
        assert_eq!(Principal::parse_spiffe(&id, TD).unwrap(), p);
        let r = Principal::parse_spiffe("spiffe://creditmesh.test/regulator/650100", TD).unwrap();
        assert_eq!(r.kind, PrincipalKind::Regulator);
    }

    #[test]
    fn one_spelling_names_one_principal() {
        for uri in [
            "spiffe://creditmesh.test/regulator/ 650000",
            "spiffe://creditmesh.test/regulator/650000/",
            "spiffe://creditmesh.test/regulator/650000 ",
            "spiffe://creditmesh.test/agency/653100/91653100MA78A1B2C3/",
        ] {
            assert!(Principal::parse_spiffe(uri, TD).is_err(), "{uri}");
        }
        assert!(Principal::parse_spiffe("spiffe://creditmesh.test/regulator/650000", TD).is_ok());
    }

    #[test]
    fn rejects_foreign_or_malformed_ids() {
        assert!(matches!(
            Principal::parse_spiffe("spiffe://other/regulator/650100", TD),
            Err(PrincipalError::TrustDomain(_))
        ));
        assert!(matches!(
            Principal::parse_spiffe("spiffe://creditmesh.test/admin/650100", TD),
            Err(PrincipalError::Kind(_))
        ));
        assert!(matches!(
            Principal::parse_spiffe("spiffe://creditmesh.test/agency/650100", TD),
            Err(PrincipalError::MissingSubject("agency"))
        ));
        assert!(matches!(
            Principal::parse_spiffe("spiffe://creditmesh.test/service/650000/a/b", TD),
            Err(PrincipalError::TooLong)
        ));
        assert!(Principal::parse_spiffe("spiffe://creditmesh.test/public/650000/x", TD).is_err());
        assert!(matches!(
            Principal::parse_spiffe(
                "spiffe://creditmesh.test/agency/653101/91653100MA78A1B2C3",
                TD
            ),
            Err(PrincipalError::County(_))
        ));
        let county =
            Principal::parse_spiffe("spiffe://creditmesh.test/regulator/653101", TD).unwrap();
        assert!(county.tenant.is_county());
    }
}
