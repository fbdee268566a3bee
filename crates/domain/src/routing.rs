//! Who reviews a filing (Art. 10): the authority of the registered address (注册地), from the
//! county-level GB/T 2260 code the application declares. The code embedded in a USCC names
//! where the code was issued, which does not change when an enterprise moves.

use std::collections::BTreeMap;

use crate::divisions::{Location, locate};
use crate::tenant::{REGION, Tenant};

/// Where filings registered in a given division are reviewed. Inside Xinjiang a county
/// belongs to its prefecture. The divisions the region administers itself — the XPCC cities
/// (6590xx) and region-level codes (6500xx) — are reviewed by the region unless the table says
/// otherwise; outside Xinjiang the region reviews (Art. 10).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewRouting {
    overrides: BTreeMap<String, Tenant>,
}

/// A registered division, checked: six digits, a known province, below prefecture level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredDivision {
    code: String,
    location: Location,
}

impl RegisteredDivision {
    pub fn parse(code: &str) -> Result<Self, String> {
        let code = code.trim();
        let location = locate(code).map_err(|e| format!("{code:?}: {e}"))?;
        if code.ends_with("00") {
            return Err(format!(
                "{code} is a province- or prefecture-level code; name the county-level division of the registered address"
            ));
        }
        Ok(Self {
            code: code.to_owned(),
            location,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.code
    }

    pub fn location(&self) -> Location {
        self.location
    }
}

impl ReviewRouting {
    /// `overrides` maps a division the region administers itself (6500xx, 6590xx) to the
    /// tenant that reviews filings registered there. Every bad entry is named.
    pub fn new(overrides: &BTreeMap<String, String>) -> Result<Self, Vec<(String, String)>> {
        let mut table = BTreeMap::new();
        let mut problems = Vec::new();
        for (code, tenant) in overrides {
            match locate(code) {
                Ok(Location::Region) if !code.ends_with("00") => {}
                _ => {
                    problems.push((
                        code.clone(),
                        "must be a division the region administers itself (6500xx, 6590xx)".into(),
                    ));
                    continue;
                }
            }
            match Tenant::parse(tenant) {
                Ok(t) => {
                    table.insert(code.clone(), t);
                }
                Err(e) => problems.push((code.clone(), e.to_string())),
            }
        }
        if problems.is_empty() {
            Ok(Self { overrides: table })
        } else {
            Err(problems)
        }
    }

    pub fn reviewing_tenant(&self, division: &RegisteredDivision) -> Tenant {
        match division.location {
            Location::Prefecture(t) => t,
            Location::Region => self
                .overrides
                .get(division.as_str())
                .copied()
                .unwrap_or(REGION),
            Location::OutsideXinjiang { .. } => REGION,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn division(code: &str) -> RegisteredDivision {
        RegisteredDivision::parse(code).unwrap()
    }

    #[test]
    fn the_registered_address_decides_not_the_code() {
        let r = ReviewRouting::default();
        assert_eq!(
            r.reviewing_tenant(&division("650102")).to_string(),
            "650100"
        );
        assert_eq!(
            r.reviewing_tenant(&division("653101")).to_string(),
            "653100"
        );
        assert_eq!(r.reviewing_tenant(&division("110108")), REGION);
        assert_eq!(r.reviewing_tenant(&division("659001")), REGION);
    }

    #[test]
    fn only_county_level_codes_are_registered_divisions() {
        assert!(RegisteredDivision::parse("653100").is_err());
        assert!(RegisteredDivision::parse("650000").is_err());
        assert!(RegisteredDivision::parse("653900").is_err());
        assert!(RegisteredDivision::parse("65310").is_err());
    }

    #[test]
    fn the_table_moves_region_administered_divisions_only() {
        let table: BTreeMap<String, String> = [("659001".to_owned(), "654200".to_owned())].into();
        let r = ReviewRouting::new(&table).unwrap();
        assert_eq!(
            r.reviewing_tenant(&division("659001")).to_string(),
            "654200"
        );
        assert_eq!(r.reviewing_tenant(&division("659002")), REGION);
        let bad: BTreeMap<String, String> = [
            ("653101".to_owned(), "654200".to_owned()),
            ("659003".to_owned(), "123456".to_owned()),
        ]
        .into();
        let problems = ReviewRouting::new(&bad).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
