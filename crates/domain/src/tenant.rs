use std::fmt;

/// A tenant of the platform: the region or one of its 14 prefectures, by GB/T 2260 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(u32);

/// The regional regulator's tenant.
pub const REGION: Tenant = Tenant(650000);

/// The 14 prefecture-level tenants with their English and Chinese names.
pub const PREFECTURES: [(u32, &str, &str); 14] = [
    (650100, "Urumqi", "乌鲁木齐市"),
    (650200, "Karamay", "克拉玛依市"),
    (650400, "Turpan", "吐鲁番市"),
    (650500, "Hami", "哈密市"),
    (652300, "Changji", "昌吉回族自治州"),
    (652700, "Bortala", "博尔塔拉蒙古自治州"),
    (652800, "Bayingolin", "巴音郭楞蒙古自治州"),
    (652900, "Aksu", "阿克苏地区"),
    (653000, "Kizilsu", "克孜勒苏柯尔克孜自治州"),
    (653100, "Kashgar", "喀什地区"),
    (653200, "Hotan", "和田地区"),
    (654000, "Ili", "伊犁哈萨克自治州"),
    (654200, "Tacheng", "塔城地区"),
    (654300, "Altay", "阿勒泰地区"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("must be a six-digit GB/T 2260 division code")]
    Malformed,
    #[error("{0} is neither the region (650000) nor one of its 14 prefectures")]
    Unknown(String),
}

impl Tenant {
    pub fn parse(code: &str) -> Result<Self, TenantError> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TenantError::Malformed);
        }
        let n: u32 = code.parse().map_err(|_| TenantError::Malformed)?;
        if n == REGION.0 || PREFECTURES.iter().any(|(c, _, _)| *c == n) {
            Ok(Tenant(n))
        } else {
            Err(TenantError::Unknown(code.to_owned()))
        }
    }

    /// The tenant of a prefecture-level code already known to be one (`653100`).
    pub(crate) fn from_known(code: u32) -> Self {
        Tenant(code)
    }

    pub fn code(self) -> u32 {
        self.0
    }

    pub fn is_region(self) -> bool {
        self == REGION
    }

    /// Whether a principal of this tenant may see rows of `row`: the region sees all.
    pub fn can_see(self, row: Tenant) -> bool {
        self.is_region() || self == row
    }

    pub fn english_name(self) -> &'static str {
        if self.is_region() {
            return "Xinjiang Uygur Autonomous Region";
        }
        PREFECTURES
            .iter()
            .find(|(c, _, _)| *c == self.0)
            .map(|(_, n, _)| *n)
            .unwrap_or("unknown")
    }

    pub fn chinese_name(self) -> &'static str {
        if self.is_region() {
            return "新疆维吾尔自治区";
        }
        PREFECTURES
            .iter()
            .find(|(c, _, _)| *c == self.0)
            .map(|(_, _, n)| *n)
            .unwrap_or("未知")
    }

    pub fn all() -> impl Iterator<Item = Tenant> {
        std::iter::once(REGION).chain(PREFECTURES.iter().map(|(c, _, _)| Tenant(*c)))
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_region_and_prefectures_only() {
        assert_eq!(Tenant::parse("650000").unwrap(), REGION);
        assert_eq!(Tenant::parse("653100").unwrap().english_name(), "Kashgar");
        assert_eq!(Tenant::parse("65310"), Err(TenantError::Malformed));
        assert_eq!(Tenant::parse("65a100"), Err(TenantError::Malformed));
        assert!(matches!(
            Tenant::parse("110000"),
            Err(TenantError::Unknown(_))
        ));
        assert_eq!(Tenant::all().count(), 15);
    }

    #[test]
    fn region_sees_all_prefecture_sees_own() {
        let urumqi = Tenant::parse("650100").unwrap();
        let kashgar = Tenant::parse("653100").unwrap();
        assert!(REGION.can_see(kashgar));
        assert!(urumqi.can_see(urumqi));
        assert!(!urumqi.can_see(kashgar));
    }
}
