//! Working days of the PRC statutory calendar with adjusted working weekends (调休) and
//! Xinjiang's regional days off, from data files; a deadline that reaches past the loaded data
//! is marked provisional, never guessed silently.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::{Date, Duration, Month, Weekday};

/// The data files built into the binary, by the name an operator's file replaces.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "national/2020.toml",
        include_str!("../../../calendar/national/2020.toml"),
    ),
    (
        "national/2021.toml",
        include_str!("../../../calendar/national/2021.toml"),
    ),
    (
        "national/2022.toml",
        include_str!("../../../calendar/national/2022.toml"),
    ),
    (
        "national/2023.toml",
        include_str!("../../../calendar/national/2023.toml"),
    ),
    (
        "national/2024.toml",
        include_str!("../../../calendar/national/2024.toml"),
    ),
    (
        "national/2025.toml",
        include_str!("../../../calendar/national/2025.toml"),
    ),
    (
        "national/2026.toml",
        include_str!("../../../calendar/national/2026.toml"),
    ),
    (
        "regional/xinjiang-2022.toml",
        include_str!("../../../calendar/regional/xinjiang-2022.toml"),
    ),
    (
        "regional/xinjiang-2023.toml",
        include_str!("../../../calendar/regional/xinjiang-2023.toml"),
    ),
    (
        "regional/xinjiang-2025.toml",
        include_str!("../../../calendar/regional/xinjiang-2025.toml"),
    ),
    (
        "regional/xinjiang-2026.toml",
        include_str!("../../../calendar/regional/xinjiang-2026.toml"),
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("{file}: {why}")]
    File { file: String, why: String },
    #[error("{0} is before the first year of the calendar data ({1})")]
    BeforeCalendar(Date, i32),
    #[error("no national calendar data is loaded")]
    Empty,
    #[error("the date falls outside the supported range")]
    OutOfRange,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileData {
    year: i32,
    source: String,
    #[serde(default)]
    region: Option<String>,
    holidays: Vec<Day>,
    working_days: Vec<Day>,
    /// Stretches the notice left open: a weekend day inside one may yet be a working day.
    #[serde(default)]
    unsettled: Vec<Unsettled>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Day {
    date: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unsettled {
    from: String,
    to: String,
    why: String,
}

#[derive(Debug, Clone, Default)]
struct Year {
    days_off: BTreeSet<Date>,
    working: BTreeSet<Date>,
    unsettled: Vec<(Date, Date)>,
}

impl Year {
    /// A weekend day the notice left open (it may yet be a make-up working day).
    fn unsettled(&self, date: Date) -> bool {
        is_weekend(date)
            && !self.working.contains(&date)
            && !self.days_off.contains(&date)
            && self
                .unsettled
                .iter()
                .any(|(a, b)| (*a..=*b).contains(&date))
    }
}

/// Which layers a question is asked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layers {
    National,
    /// National, then Xinjiang's regional days.
    Xinjiang,
}

/// The answer for one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayAnswer {
    pub working: bool,
    /// The year's data (national, or regional when asked) is not loaded: weekdays alone.
    pub provisional: bool,
}

/// A deadline and the calendar that computed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    pub from: Date,
    pub working_days: u32,
    pub due: Date,
    pub provisional: bool,
    pub calendar_version: String,
}

#[derive(Debug, Clone)]
pub struct Calendar {
    national: BTreeMap<i32, Year>,
    regional: BTreeMap<i32, Year>,
    version: String,
}

fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.split('-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let d: u8 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
}

/// Parses `YYYY-MM-DD`.
/// Parses `YYYY-MM-DD` of a plausible year (1900 to 2199): no record the Measures deal with
/// lies outside, and a far date is a typing error, not a fact.
pub fn parse_iso_date(s: &str) -> Result<Date, String> {
    let d = parse_date(s.trim())
        .ok_or_else(|| format!("{s:?} is not a date of the form YYYY-MM-DD"))?;
    if !(1900..=2199).contains(&d.year()) {
        return Err(format!("{s:?} lies outside the years 1900 to 2199"));
    }
    Ok(d)
}

/// `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The same day `years` years from `d`; 29 February becomes 28 February in a common year.
pub fn add_years(d: Date, years: i32) -> Date {
    d.replace_year(d.year() + years).unwrap_or_else(|_| {
        d.replace_day(28)
            .and_then(|d| d.replace_year(d.year() + years))
            .unwrap_or(d)
    })
}

/// The China Standard Time date of a Unix timestamp in microseconds.
pub fn cst_date(unix_micros: i64) -> Result<Date, CalendarError> {
    let secs = unix_micros.div_euclid(1_000_000) + 8 * 3600;
    let days = secs.div_euclid(86_400);
    Date::from_julian_day(2_440_588 + i32::try_from(days).map_err(|_| CalendarError::OutOfRange)?)
        .map_err(|_| CalendarError::OutOfRange)
}

fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

impl Calendar {
    /// The built-in data alone.
    pub fn builtin() -> Self {
        Self::load(
            BUILTIN_FILES
                .iter()
                .map(|(n, c)| (n.to_string(), c.to_string())),
        )
        .expect("the built-in calendar data is valid")
    }

    /// The built-in data with an operator's files laid over it: a file of the same name
    /// replaces a built-in one, others are added.
    pub fn with_overrides(
        overrides: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, CalendarError> {
        let mut files: BTreeMap<String, String> = BUILTIN_FILES
            .iter()
            .map(|(n, c)| (n.to_string(), c.to_string()))
            .collect();
        files.extend(overrides);
        Self::load(files)
    }

    /// Loads `(name, contents)` pairs; the name's first segment is the layer (`national/` or
    /// `regional/`). Every file is checked; the first problem is reported with its file.
    pub fn load(files: impl IntoIterator<Item = (String, String)>) -> Result<Self, CalendarError> {
        let files: BTreeMap<String, String> = files.into_iter().collect();
        let mut hasher = Sha256::new();
        let mut national = BTreeMap::new();
        let mut regional = BTreeMap::new();
        for (name, contents) in &files {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(contents.as_bytes());
            hasher.update([0]);
            let err = |why: String| CalendarError::File {
                file: name.clone(),
                why,
            };
            let data: FileData = toml::from_str(contents).map_err(|e| err(e.to_string()))?;
            if data.source.trim().is_empty() {
                return Err(err("source must name the notice the data comes from".into()));
            }
            let layer = if name.starts_with("national/") {
                &mut national
            } else if name.starts_with("regional/") {
                if data.region.as_deref() != Some("650000") {
                    return Err(err("a regional file must say region = \"650000\"".into()));
                }
                &mut regional
            } else {
                return Err(err("must lie under national/ or regional/".into()));
            };
            let mut year = Year::default();
            for (list, into) in [
                (&data.holidays, &mut year.days_off),
                (&data.working_days, &mut year.working),
            ] {
                for day in list {
                    let date = parse_date(&day.date)
                        .ok_or_else(|| err(format!("{:?} is not a date (YYYY-MM-DD)", day.date)))?;
                    if date.year() != data.year {
                        return Err(err(format!("{} is not in year {}", day.date, data.year)));
                    }
                    if day.name.trim().is_empty() {
                        return Err(err(format!("{} has no name", day.date)));
                    }
                    into.insert(date);
                }
            }
            for open in &data.unsettled {
                let bound = |s: &str| {
                    parse_date(s)
                        .filter(|d| d.year() == data.year)
                        .ok_or_else(|| {
                            err(format!("{s:?} is not a date (YYYY-MM-DD) of {}", data.year))
                        })
                };
                let (from, to) = (bound(&open.from)?, bound(&open.to)?);
                if from > to {
                    return Err(err(format!(
                        "unsettled {} to {} ends before it starts",
                        open.from, open.to
                    )));
                }
                if open.why.trim().is_empty() {
                    return Err(err(format!(
                        "unsettled {} to {} does not say why",
                        open.from, open.to
                    )));
                }
                year.unsettled.push((from, to));
            }
            if let Some(both) = year.days_off.intersection(&year.working).next() {
                return Err(err(format!(
                    "{} is listed both as a day off and as a working day",
                    format_date(*both)
                )));
            }
            if let Some(weekday) = year.working.iter().find(|d| !is_weekend(**d)) {
                return Err(err(format!(
                    "{} is a weekday; working_days lists weekend days only",
                    format_date(*weekday)
                )));
            }
            if layer.insert(data.year, year).is_some() {
                return Err(err(format!("a second file for year {}", data.year)));
            }
        }
        if national.is_empty() {
            return Err(CalendarError::Empty);
        }
        Ok(Self {
            national,
            regional,
            version: hex::encode(hasher.finalize()),
        })
    }

    /// SHA-256 over every file loaded.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn first_year(&self) -> i32 {
        *self.national.keys().next().expect("not empty")
    }

    pub fn last_year(&self) -> i32 {
        *self.national.keys().next_back().expect("not empty")
    }

    /// Years with regional data.
    pub fn regional_years(&self) -> impl Iterator<Item = i32> + '_ {
        self.regional.keys().copied()
    }

    pub fn day(&self, date: Date, layers: Layers) -> Result<DayAnswer, CalendarError> {
        if date.year() < self.first_year() {
            return Err(CalendarError::BeforeCalendar(date, self.first_year()));
        }
        let (mut working, mut provisional) = match self.national.get(&date.year()) {
            Some(y) if y.working.contains(&date) => (true, false),
            Some(y) if y.days_off.contains(&date) => (false, false),
            Some(_) => (!is_weekend(date), false),
            None => (!is_weekend(date), true),
        };
        if layers == Layers::Xinjiang {
            match self.regional.get(&date.year()) {
                Some(y) if y.days_off.contains(&date) => working = false,
                Some(y) if y.working.contains(&date) => working = true,
                Some(y) => provisional |= y.unsettled(date),
                None => provisional = true,
            }
        }
        Ok(DayAnswer {
            working,
            provisional,
        })
    }

    /// The `n`th working day after `from` (day zero).
    pub fn deadline(&self, from: Date, n: u32, layers: Layers) -> Result<Deadline, CalendarError> {
        let mut provisional = self.day(from, layers)?.provisional;
        let mut date = from;
        let mut counted = 0;
        while counted < n {
            date = date
                .checked_add(Duration::days(1))
                .ok_or(CalendarError::OutOfRange)?;
            let answer = self.day(date, layers)?;
            provisional |= answer.provisional;
            if answer.working {
                counted += 1;
            }
        }
        Ok(Deadline {
            from,
            working_days: n,
            due: date,
            provisional,
            calendar_version: self.version.clone(),
        })
    }

    /// The last day of a period whose last day by the count is `last`: that day, or when it
    /// is a day off, the first working day after it (Civil Code Art. 203: "期间的最后一日是法定
    /// 休假日的，以法定休假日结束的次日为期间的最后一日").
    pub fn period_end(&self, last: Date, layers: Layers) -> Result<Deadline, CalendarError> {
        let (mut date, mut provisional) = (last, false);
        loop {
            let answer = self.day(date, layers)?;
            provisional |= answer.provisional;
            if answer.working {
                break;
            }
            date = date
                .checked_add(Duration::days(1))
                .ok_or(CalendarError::OutOfRange)?;
        }
        Ok(Deadline {
            from: last,
            working_days: 0,
            due: date,
            provisional,
            calendar_version: self.version.clone(),
        })
    }

    /// Working days after `from` up to and including `to` (0 when `to` is not after `from`),
    /// and whether unknown data was crossed.
    pub fn working_days_between(
        &self,
        from: Date,
        to: Date,
        layers: Layers,
    ) -> Result<(u32, bool), CalendarError> {
        let mut provisional = self.day(from, layers)?.provisional;
        let (mut date, mut n) = (from, 0);
        while date < to {
            date = date
                .checked_add(Duration::days(1))
                .ok_or(CalendarError::OutOfRange)?;
            let answer = self.day(date, layers)?;
            provisional |= answer.provisional;
            if answer.working {
                n += 1;
            }
        }
        Ok((n, provisional))
    }
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_date(self.due))?;
        if self.provisional {
            f.write_str(" provisional")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::date;

    use super::*;

    fn cal() -> Calendar {
        Calendar::builtin()
    }

    #[test]
    fn counts_across_national_day_2026_with_adjusted_working_days() {
        // Mid-Autumn 25-27 Sept off, National Day 1-7 Oct off, Saturday 10 Oct worked.
        let d = cal()
            .deadline(date!(2026 - 09 - 21), 10, Layers::National)
            .unwrap();
        assert_eq!(d.due, date!(2026 - 10 - 12));
        assert!(!d.provisional);
        assert_eq!(d.to_string(), "2026-10-12");
    }

    #[test]
    fn official_notice_days() {
        let c = cal();
        let working = |d| c.day(d, Layers::National).unwrap().working;
        // 2026 notice: 4 Jan (Sun), 14 Feb (Sat), 28 Feb (Sat), 9 May (Sat), 20 Sep (Sun),
        // 10 Oct (Sat) are worked; 15-23 Feb off.
        for d in [
            date!(2026 - 01 - 04),
            date!(2026 - 02 - 14),
            date!(2026 - 02 - 28),
            date!(2026 - 05 - 09),
            date!(2026 - 09 - 20),
            date!(2026 - 10 - 10),
        ] {
            assert!(working(d), "{d}");
        }
        for d in [
            date!(2026 - 02 - 16),
            date!(2026 - 02 - 23),
            date!(2026 - 05 - 05),
        ] {
            assert!(!working(d), "{d}");
        }
        // 2020: the Spring Festival break was extended to 2 February, a Sunday; 3 Feb worked.
        assert!(!working(date!(2020 - 01 - 31)));
        assert!(working(date!(2020 - 02 - 03)));
        // 2024: 10-17 Feb off; New Year's Eve (9 Feb) was only encouraged as a day off, not
        // given; 4 Feb and 18 Feb (Sundays) worked.
        assert!(working(date!(2024 - 02 - 09)));
        assert!(!working(date!(2024 - 02 - 10)));
        assert!(working(date!(2024 - 02 - 04)));
        assert!(working(date!(2024 - 02 - 18)));
    }

    #[test]
    fn the_regional_layer_moves_a_deadline_across_eid() {
        let c = cal();
        // Eid al-Adha 2025: 6-10 June off in Xinjiang (Fri-Tue).
        let national = c
            .deadline(date!(2025 - 06 - 04), 3, Layers::National)
            .unwrap();
        let regional = c
            .deadline(date!(2025 - 06 - 04), 3, Layers::Xinjiang)
            .unwrap();
        assert_eq!(national.due, date!(2025 - 06 - 09));
        assert_eq!(regional.due, date!(2025 - 06 - 12));
        assert!(!regional.provisional);
    }

    #[test]
    fn unknown_regional_years_make_deadlines_provisional() {
        let c = cal();
        let d = c
            .deadline(date!(2024 - 09 - 23), 10, Layers::Xinjiang)
            .unwrap();
        assert!(d.provisional, "2024's regional days are not known");
        assert!(
            !c.deadline(date!(2025 - 03 - 03), 5, Layers::Xinjiang)
                .unwrap()
                .provisional
        );
    }

    #[test]
    fn the_2026_regional_days_are_known_but_for_the_open_point() {
        let c = cal();
        let d = c
            .deadline(date!(2026 - 09 - 21), 10, Layers::Xinjiang)
            .unwrap();
        assert_eq!(
            d.to_string(),
            "2026-10-12",
            "final: nothing open is crossed"
        );
        // Eid al-Fitr: Friday 20 March off in Xinjiang.
        let fitr = c
            .deadline(date!(2026 - 03 - 18), 2, Layers::Xinjiang)
            .unwrap();
        assert_eq!(fitr.to_string(), "2026-03-23");
        // Eid al-Adha: 27-31 May off; a deadline across the unsettled weekends stays provisional.
        let adha = c
            .deadline(date!(2026 - 05 - 25), 3, Layers::Xinjiang)
            .unwrap();
        assert_eq!(adha.to_string(), "2026-06-02");
        let open = c
            .deadline(date!(2026 - 05 - 21), 3, Layers::Xinjiang)
            .unwrap();
        assert_eq!(open.to_string(), "2026-05-26 provisional");
        // Counting only weekdays inside the window crosses no open point.
        let inside = c
            .deadline(date!(2026 - 05 - 18), 2, Layers::Xinjiang)
            .unwrap();
        assert_eq!(inside.to_string(), "2026-05-20");
        // A corrected file that settles the point makes it final.
        let settled = Calendar::with_overrides([(
            "regional/xinjiang-2026.toml".to_owned(),
            "year = 2026\nregion = \"650000\"\nsource = \"corrected\"\nholidays = [\n\
             { date = \"2026-05-27\", name = \"a\" }, { date = \"2026-05-28\", name = \"a\" },\n\
             { date = \"2026-05-29\", name = \"a\" }]\nworking_days = []\n"
                .to_owned(),
        )])
        .unwrap();
        assert!(
            !settled
                .deadline(date!(2026 - 05 - 21), 3, Layers::Xinjiang)
                .unwrap()
                .provisional
        );
    }

    #[test]
    fn a_year_without_a_file_is_provisional_until_the_file_arrives() {
        let without_2026: Vec<(String, String)> = BUILTIN_FILES
            .iter()
            .filter(|(n, _)| *n != "national/2026.toml")
            .map(|(n, c)| (n.to_string(), c.to_string()))
            .collect();
        let partial = Calendar::load(without_2026).unwrap();
        let guessed = partial
            .deadline(date!(2025 - 12 - 24), 10, Layers::National)
            .unwrap();
        assert!(guessed.provisional);
        // Weekdays alone: 1-2 Jan 2026 count as working days.
        assert_eq!(guessed.due, date!(2026 - 01 - 07));

        let full = Calendar::builtin();
        let known = full
            .deadline(guessed.from, guessed.working_days, Layers::National)
            .unwrap();
        assert!(!known.provisional);
        assert_eq!(
            known.due,
            date!(2026 - 01 - 08),
            "1-3 Jan off, Sunday 4 Jan worked"
        );
        assert_ne!(partial.version(), full.version());
    }

    #[test]
    fn a_period_ending_on_a_day_off_ends_on_the_next_working_day() {
        let end = |d| cal().period_end(d, Layers::Xinjiang).unwrap();
        assert_eq!(end(date!(2026 - 06 - 30)).due, date!(2026 - 06 - 30));
        assert_eq!(
            end(date!(2026 - 06 - 27)).due,
            date!(2026 - 06 - 29),
            "a Saturday"
        );
        let national_day = end(date!(2026 - 10 - 01));
        assert_eq!(national_day.due, date!(2026 - 10 - 08));
        assert!(!national_day.provisional);
        // 30 June 2029 is a Saturday; without that year's data the end is a weekday guess.
        let guessed = end(date!(2029 - 06 - 30));
        assert_eq!(guessed.due, date!(2029 - 07 - 02));
        assert!(guessed.provisional);
    }

    #[test]
    fn dates_before_the_data_are_errors() {
        assert!(matches!(
            cal().deadline(date!(2019 - 12 - 30), 1, Layers::National),
            Err(CalendarError::BeforeCalendar(..))
        ));
    }

    #[test]
    fn operator_files_replace_and_extend() {
        let fix = (
            "regional/xinjiang-2026.toml".to_owned(),
            "year = 2026\nregion = \"650000\"\nsource = \"test notice\"\n\
             holidays = [{ date = \"2026-09-22\", name = \"test day\" }]\nworking_days = []\n"
                .to_owned(),
        );
        let c = Calendar::with_overrides([fix]).unwrap();
        let d = c
            .deadline(date!(2026 - 09 - 21), 10, Layers::Xinjiang)
            .unwrap();
        assert!(!d.provisional);
        assert_eq!(d.due, date!(2026 - 10 - 13));
        assert_ne!(c.version(), cal().version());
    }

    #[test]
    fn bad_files_are_refused_with_their_name() {
        let bad = |contents: &str| {
            Calendar::with_overrides([("national/2027.toml".to_owned(), contents.to_owned())])
                .unwrap_err()
                .to_string()
        };
        assert!(bad("year = 2027\nsource = \"x\"\nholidays = [{ date = \"2028-01-01\", name = \"x\" }]\nworking_days = []\n")
            .contains("national/2027.toml: 2028-01-01 is not in year 2027"));
        assert!(bad("year = 2027\nsource = \"x\"\nholidays = []\nworking_days = [{ date = \"2027-01-04\", name = \"x\" }]\n")
            .contains("is a weekday"));
        assert!(
            bad("year = 2026\nsource = \"x\"\nholidays = []\nworking_days = []\n")
                .contains("a second file for year 2026")
        );
    }

    #[test]
    fn far_dates_are_refused() {
        assert!(parse_iso_date("9999-01-01").is_err());
        assert!(parse_iso_date("0001-01-01").is_err());
        assert!(
            parse_iso_date("2200-01-01")
                .unwrap_err()
                .contains("outside the years")
        );
        assert_eq!(
            parse_iso_date(" 2026-11-27 ").unwrap(),
            date!(2026 - 11 - 27)
        );
    }

    #[test]
    fn years_later_and_earlier() {
        assert_eq!(add_years(date!(2026 - 03 - 02), 1), date!(2027 - 03 - 02));
        assert_eq!(add_years(date!(2024 - 02 - 29), 1), date!(2025 - 02 - 28));
        assert_eq!(add_years(date!(2024 - 02 - 29), -1), date!(2023 - 02 - 28));
    }

    #[test]
    fn cst_dates() {
        // 2026-01-01T16:30:00Z is 2026-01-02 00:30 in China Standard Time.
        assert_eq!(
            cst_date(1_767_285_000_000_000).unwrap(),
            date!(2026 - 01 - 02)
        );
        assert_eq!(
            cst_date(1_767_256_200_000_000).unwrap(),
            date!(2026 - 01 - 01)
        );
    }

    fn any_date() -> impl Strategy<Value = Date> {
        (0i64..(7 * 365)).prop_map(|d| date!(2020 - 01 - 01) + Duration::days(d))
    }

    proptest! {
        #[test]
        fn counting_back_gives_n(from in any_date(), n in 0u32..60, regional in any::<bool>()) {
            let layers = if regional { Layers::Xinjiang } else { Layers::National };
            let c = cal();
            let d = c.deadline(from, n, layers).unwrap();
            let (back, _) = c.working_days_between(from, d.due, layers).unwrap();
            prop_assert_eq!(back, n);
        }

        #[test]
        fn no_deadline_falls_on_a_day_off(from in any_date(), n in 1u32..60, regional in any::<bool>()) {
            let layers = if regional { Layers::Xinjiang } else { Layers::National };
            let c = cal();
            let d = c.deadline(from, n, layers).unwrap();
            prop_assert!(c.day(d.due, layers).unwrap().working);
        }
    }
}
