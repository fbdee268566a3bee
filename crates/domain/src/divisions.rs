//! GB/T 2260 division codes: where a code lies, and which tenant it belongs to.

use std::fmt;

use crate::tenant::{PREFECTURES, REGION, Tenant};

/// Province-level codes (first two digits) with their Chinese names.
const PROVINCES: [(u8, &str); 34] = [
    (11, "北京市"),
    (12, "天津市"),
    (13, "河北省"),
    (14, "山西省"),
    (15, "内蒙古自治区"),
    (21, "辽宁省"),
    (22, "吉林省"),
    (23, "黑龙江省"),
    (31, "上海市"),
    (32, "江苏省"),
    (33, "浙江省"),
    (34, "安徽省"),
    (35, "福建省"),
    (36, "江西省"),
    (37, "山东省"),
    (41, "河南省"),
    (42, "湖北省"),
    (43, "湖南省"),
    (44, "广东省"),
    (45, "广西壮族自治区"),
    (46, "海南省"),
    (50, "重庆市"),
    (51, "四川省"),
    (52, "贵州省"),
    (53, "云南省"),
    (54, "西藏自治区"),
    (61, "陕西省"),
    (62, "甘肃省"),
    (63, "青海省"),
    (64, "宁夏回族自治区"),
    (65, "新疆维吾尔自治区"),
    (71, "台湾省"),
    (81, "香港特别行政区"),
    (82, "澳门特别行政区"),
];

/// Where a division code lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// In one of the 14 prefectures.
    Prefecture(Tenant),
    /// The region itself, or a city the region administers directly (the XPCC cities, 6590xx).
    Region,
    /// Another province-level division.
    OutsideXinjiang { province: &'static str },
}

impl Location {
    /// The tenant that holds what is registered here: the prefecture, else the region
    /// (Art. 10: agencies registered outside Xinjiang are reviewed by the region).
    pub fn tenant(self) -> Tenant {
        match self {
            Location::Prefecture(t) => t,
            Location::Region | Location::OutsideXinjiang { .. } => REGION,
        }
    }

    pub fn in_xinjiang(self) -> bool {
        !matches!(self, Location::OutsideXinjiang { .. })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Prefecture(t) => write!(f, "{} {} ({t})", t.chinese_name(), t.english_name()),
            Location::Region => f.write_str("新疆维吾尔自治区 (regional level, 650000)"),
            Location::OutsideXinjiang { province } => write!(f, "{province}, outside Xinjiang"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DivisionError {
    #[error("must be six digits")]
    Malformed,
    #[error("{0:02} is not a province-level code")]
    Province(u8),
    #[error("{0} is not a prefecture-level division of Xinjiang")]
    XinjiangPrefecture(String),
}

/// Locates a six-digit GB/T 2260 code of any level (province, prefecture, county).
pub fn locate(code: &str) -> Result<Location, DivisionError> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DivisionError::Malformed);
    }
    let province: u8 = code[..2].parse().map_err(|_| DivisionError::Malformed)?;
    let Some((_, name)) = PROVINCES.iter().find(|(p, _)| *p == province) else {
        return Err(DivisionError::Province(province));
    };
    if province != 65 {
        return Ok(Location::OutsideXinjiang { province: name });
    }
    let prefecture: u32 = code[..4].parse().map_err(|_| DivisionError::Malformed)?;
    match prefecture {
        6500 => Ok(Location::Region),
        6590 => Ok(Location::Region),
        p => PREFECTURES
            .iter()
            .find(|(c, _, _)| *c == p * 100)
            .map(|(c, _, _)| Location::Prefecture(Tenant::from_known(*c)))
            .ok_or_else(|| DivisionError::XinjiangPrefecture(code.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counties_and_cities_map_to_their_prefecture() {
        assert_eq!(locate("650102").unwrap().tenant().to_string(), "650100");
        assert_eq!(locate("653101").unwrap().tenant().to_string(), "653100");
        assert_eq!(locate("654301").unwrap().tenant().to_string(), "654300");
        assert_eq!(locate("652900").unwrap().tenant().to_string(), "652900");
    }

    #[test]
    fn xpcc_cities_and_the_region_belong_to_the_region() {
        assert_eq!(locate("659001").unwrap(), Location::Region);
        assert_eq!(locate("650000").unwrap(), Location::Region);
    }

    #[test]
    fn outside_xinjiang_is_recognised() {
        let beijing = locate("110108").unwrap();
        assert!(!beijing.in_xinjiang());
        assert_eq!(beijing.tenant(), REGION);
        assert_eq!(locate("990000"), Err(DivisionError::Province(99)));
        assert!(matches!(
            locate("653900"),
            Err(DivisionError::XinjiangPrefecture(_))
        ));
        assert_eq!(locate("65010"), Err(DivisionError::Malformed));
    }
}
