use std::fmt;

/// A tenant of the platform, by GB/T 2260 code: the region, one of its 14 prefectures, or a
/// county-level division of one (Art. 5: 县级以上社会信用主管部门). Filings, tasks and complaints
/// are held by the region or a prefecture ([`Tenant::parse_holding`]); a county's authority supervises
/// the activity in its own area.
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

/// The county-level divisions of the 14 prefectures (GB/T 2260, as of 2024), each a tenant
/// below its prefecture: districts (区), county-level cities (市), counties (县) and
/// autonomous counties. A division created later is added here.
pub const COUNTIES: [(u32, &str, &str); 96] = [
    (650102, "Tianshan District", "天山区"),
    (650103, "Saybag District", "沙依巴克区"),
    (650104, "Xinshi District", "新市区"),
    (650105, "Shuimogou District", "水磨沟区"),
    (650106, "Toutunhe District", "头屯河区"),
    (650107, "Dabancheng District", "达坂城区"),
    (650109, "Midong District", "米东区"),
    (650121, "Urumqi County", "乌鲁木齐县"),
    (650202, "Dushanzi District", "独山子区"),
    (650203, "Karamay District", "克拉玛依区"),
    (650204, "Baijiantan District", "白碱滩区"),
    (650205, "Orku District", "乌尔禾区"),
    (650402, "Gaochang District", "高昌区"),
    (650421, "Piqan County", "鄯善县"),
    (650422, "Toksun County", "托克逊县"),
    (650502, "Yizhou District", "伊州区"),
    (
        650521,
        "Barkol Kazakh Autonomous County",
        "巴里坤哈萨克自治县",
    ),
    (650522, "Yiwu County", "伊吾县"),
    (652301, "Changji City", "昌吉市"),
    (652302, "Fukang City", "阜康市"),
    (652323, "Hutubi County", "呼图壁县"),
    (652324, "Manas County", "玛纳斯县"),
    (652325, "Qitai County", "奇台县"),
    (652327, "Jimsar County", "吉木萨尔县"),
    (652328, "Mori Kazakh Autonomous County", "木垒哈萨克自治县"),
    (652701, "Bole City", "博乐市"),
    (652702, "Alashankou City", "阿拉山口市"),
    (652722, "Jinghe County", "精河县"),
    (652723, "Wenquan County", "温泉县"),
    (652801, "Korla City", "库尔勒市"),
    (652822, "Luntai County", "轮台县"),
    (652823, "Yuli County", "尉犁县"),
    (652824, "Ruoqiang County", "若羌县"),
    (652825, "Qiemo County", "且末县"),
    (652826, "Yanqi Hui Autonomous County", "焉耆回族自治县"),
    (652827, "Hejing County", "和静县"),
    (652828, "Hoxud County", "和硕县"),
    (652829, "Bohu County", "博湖县"),
    (652901, "Aksu City", "阿克苏市"),
    (652902, "Kuqa City", "库车市"),
    (652922, "Wensu County", "温宿县"),
    (652924, "Xayar County", "沙雅县"),
    (652925, "Xinhe County", "新和县"),
    (652926, "Baicheng County", "拜城县"),
    (652927, "Uqturpan County", "乌什县"),
    (652928, "Awat County", "阿瓦提县"),
    (652929, "Kalpin County", "柯坪县"),
    (653001, "Artux City", "阿图什市"),
    (653022, "Akto County", "阿克陶县"),
    (653023, "Akqi County", "阿合奇县"),
    (653024, "Ulugqat County", "乌恰县"),
    (653101, "Kashgar City", "喀什市"),
    (653121, "Shufu County", "疏附县"),
    (653122, "Shule County", "疏勒县"),
    (653123, "Yengisar County", "英吉沙县"),
    (653124, "Poskam County", "泽普县"),
    (653125, "Yarkant County", "莎车县"),
    (653126, "Kargilik County", "叶城县"),
    (653127, "Makit County", "麦盖提县"),
    (653128, "Yopurga County", "岳普湖县"),
    (653129, "Peyziwat County", "伽师县"),
    (653130, "Maralbexi County", "巴楚县"),
    (
        653131,
        "Taxkorgan Tajik Autonomous County",
        "塔什库尔干塔吉克自治县",
    ),
    (653201, "Hotan City", "和田市"),
    (653221, "Hotan County", "和田县"),
    (653222, "Karakax County", "墨玉县"),
    (653223, "Guma County", "皮山县"),
    (653224, "Lop County", "洛浦县"),
    (653225, "Qira County", "策勒县"),
    (653226, "Keriya County", "于田县"),
    (653227, "Niya County", "民丰县"),
    (654002, "Yining City", "伊宁市"),
    (654003, "Kuytun City", "奎屯市"),
    (654004, "Khorgas City", "霍尔果斯市"),
    (654021, "Yining County", "伊宁县"),
    (
        654022,
        "Qapqal Xibe Autonomous County",
        "察布查尔锡伯自治县",
    ),
    (654023, "Huocheng County", "霍城县"),
    (654024, "Tokkuztara County", "巩留县"),
    (654025, "Künes County", "新源县"),
    (654026, "Mongolküre County", "昭苏县"),
    (654027, "Tekes County", "特克斯县"),
    (654028, "Nilka County", "尼勒克县"),
    (654201, "Tacheng City", "塔城市"),
    (654202, "Usu City", "乌苏市"),
    (654203, "Shawan City", "沙湾市"),
    (654221, "Emin County", "额敏县"),
    (654224, "Toli County", "托里县"),
    (654225, "Yumin County", "裕民县"),
    (
        654226,
        "Hoboksar Mongol Autonomous County",
        "和布克赛尔蒙古自治县",
    ),
    (654301, "Altay City", "阿勒泰市"),
    (654321, "Burqin County", "布尔津县"),
    (654322, "Fuyun County", "富蕴县"),
    (654323, "Fuhai County", "福海县"),
    (654324, "Habahe County", "哈巴河县"),
    (654325, "Qinggil County", "青河县"),
    (654326, "Jeminay County", "吉木乃县"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("must be a six-digit GB/T 2260 division code")]
    Malformed,
    #[error(
        "{0} is neither the region (650000), one of its 14 prefectures nor one of their counties"
    )]
    Unknown(String),
    #[error(
        "{0} is a county: filings, review tasks and complaints are held by the region (650000) or a prefecture"
    )]
    County(String),
}

impl Tenant {
    pub fn parse(code: &str) -> Result<Self, TenantError> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TenantError::Malformed);
        }
        let n: u32 = code.parse().map_err(|_| TenantError::Malformed)?;
        if n == REGION.0
            || PREFECTURES.iter().any(|(c, _, _)| *c == n)
            || COUNTIES.iter().any(|(c, _, _)| *c == n)
        {
            Ok(Tenant(n))
        } else {
            Err(TenantError::Unknown(code.to_owned()))
        }
    }

    /// A tenant that holds filings, review tasks and complaints: the region or a prefecture.
    pub fn parse_holding(code: &str) -> Result<Self, TenantError> {
        let t = Self::parse(code)?;
        if t.is_county() {
            return Err(TenantError::County(t.to_string()));
        }
        Ok(t)
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

    pub fn is_county(self) -> bool {
        !self.0.is_multiple_of(100)
    }

    /// The prefecture a county lies in; a prefecture or the region is its own.
    pub fn prefecture(self) -> Tenant {
        if self.is_county() {
            Tenant(self.0 / 100 * 100)
        } else {
            self
        }
    }

    /// Whether a principal of this tenant may see rows of `row`: the region sees all, a
    /// prefecture its own and its counties', a county its own.
    pub fn can_see(self, row: Tenant) -> bool {
        self.is_region() || self == row || (!self.is_county() && row.prefecture() == self)
    }

    fn names(self) -> Option<(&'static str, &'static str)> {
        PREFECTURES
            .iter()
            .chain(COUNTIES.iter())
            .find(|(c, _, _)| *c == self.0)
            .map(|(_, en, zh)| (*en, *zh))
    }

    pub fn english_name(self) -> &'static str {
        if self.is_region() {
            return "Xinjiang Uygur Autonomous Region";
        }
        self.names().map_or("unknown", |(en, _)| en)
    }

    /// The name of the division; a county's is preceded by its prefecture's where it is
    /// shown as an authority (see [`Tenant::authority_name`]).
    pub fn chinese_name(self) -> &'static str {
        if self.is_region() {
            return "新疆维吾尔自治区";
        }
        self.names().map_or("未知", |(_, zh)| zh)
    }

    /// The division as an authority is named: a county with its prefecture (`喀什地区喀什市`).
    pub fn authority_name(self) -> String {
        if self.is_county() {
            format!(
                "{}{}",
                self.prefecture().chinese_name(),
                self.chinese_name()
            )
        } else {
            self.chinese_name().to_owned()
        }
    }

    /// The tenants that hold filings: the region and the 14 prefectures.
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
    fn counties_are_tenants_below_their_prefecture() {
        let kashgar_city = Tenant::parse("653101").unwrap();
        assert!(kashgar_city.is_county());
        assert_eq!(kashgar_city.prefecture().to_string(), "653100");
        assert_eq!(kashgar_city.chinese_name(), "喀什市");
        assert_eq!(kashgar_city.authority_name(), "喀什地区喀什市");
        assert!(matches!(
            Tenant::parse("653199"),
            Err(TenantError::Unknown(_))
        ));
        assert!(matches!(
            Tenant::parse_holding("653101"),
            Err(TenantError::County(_))
        ));
        assert_eq!(
            Tenant::parse_holding("653100").unwrap().english_name(),
            "Kashgar"
        );
        for (code, _, _) in COUNTIES {
            let county = Tenant::parse(&code.to_string()).unwrap();
            assert!(
                PREFECTURES
                    .iter()
                    .any(|(p, _, _)| *p == county.prefecture().code()),
                "{code} lies in no prefecture"
            );
        }
    }

    #[test]
    fn region_sees_all_prefecture_sees_own() {
        let urumqi = Tenant::parse("650100").unwrap();
        let kashgar = Tenant::parse("653100").unwrap();
        assert!(REGION.can_see(kashgar));
        assert!(urumqi.can_see(urumqi));
        assert!(!urumqi.can_see(kashgar));
        let kashgar_city = Tenant::parse("653101").unwrap();
        let shufu = Tenant::parse("653121").unwrap();
        assert!(REGION.can_see(kashgar_city));
        assert!(kashgar.can_see(kashgar_city));
        assert!(!urumqi.can_see(kashgar_city));
        assert!(kashgar_city.can_see(kashgar_city));
        assert!(!kashgar_city.can_see(kashgar));
        assert!(!kashgar_city.can_see(shufu));
    }
}
