//! The Measures' own validity (Art. 32: "自202x年xx月xx日起施行，有效期5年"): the effective
//! date is left open by the text, so it is configuration, and nothing is counted under the
//! Measures outside the window.
//!
//! The periods the Measures set are here too, each by its article, so that a period is
//! written once whichever service counts it.

use time::{Date, Duration};

use crate::calendar::{add_years, format_date};
use crate::error::Error;

/// Working days a regulator has to review a filing, a change or a deregistration (Art. 10).
pub const REVIEW_WORKING_DAYS: u32 = 10;
/// Working days an agency has to report a change of a filed fact (Art. 12).
pub const CHANGE_WORKING_DAYS: u32 = 20;
/// Working days the agency has to decide an objection, from receiving the materials (Art. 22).
pub const OBJECTION_WORKING_DAYS: u32 = 10;
/// Working days a complaint accepted is handled within, from its acceptance (Art. 24).
pub const HANDLING_WORKING_DAYS: u32 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    effective_on: Date,
    years: u32,
}

impl Validity {
    pub fn new(effective_on: Date, years: u32) -> Result<Self, String> {
        if !(1..=50).contains(&years) {
            return Err("must be between 1 and 50 years".into());
        }
        Ok(Self {
            effective_on,
            years,
        })
    }

    pub fn effective_on(&self) -> Date {
        self.effective_on
    }

    /// The last day in force: the day before the corresponding day `years` later.
    pub fn last_day(&self) -> Date {
        add_years(self.effective_on, self.years as i32) - Duration::days(1)
    }

    /// Whether a period may start on `day` under the Measures. A period that starts inside
    /// the window runs to its end, even past the last day: that protects whoever it binds.
    pub fn check(&self, day: Date) -> Result<(), Error> {
        if day < self.effective_on || day > self.last_day() {
            return Err(Error::failed_precondition(format!(
                "the Measures are in force from {} through {} (Art. 32); {} lies outside, so no deadline is counted under them",
                format_date(self.effective_on),
                format_date(self.last_day()),
                format_date(day)
            )));
        }
        Ok(())
    }

    /// Whether `act`, a consequence under the Measures (a revocation, a ban, an entry for
    /// lateness), may be taken on `day`: only inside the window, whenever what led to it began.
    pub fn check_act(&self, day: Date, act: &str) -> Result<(), Error> {
        if day < self.effective_on || day > self.last_day() {
            return Err(Error::failed_precondition(format!(
                "the Measures are in force from {} through {} (Art. 32); {act} on {} lies outside",
                format_date(self.effective_on),
                format_date(self.last_day()),
                format_date(day)
            )));
        }
        Ok(())
    }
}

/// [`Validity::check_act`] where a window is configured; without one, every day is inside.
pub fn check_act(window: Option<Validity>, day: Date, act: &str) -> Result<(), Error> {
    window.map_or(Ok(()), |w| w.check_act(day, act))
}

impl std::fmt::Display for Validity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "in force from {} through {} ({} years)",
            format_date(self.effective_on),
            format_date(self.last_day()),
            self.years
        )
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn an_act_with_a_consequence_is_taken_only_inside_the_window() {
        let w = Validity::new(date!(2026 - 03 - 01), 1).unwrap();
        assert!(w.check_act(date!(2026 - 03 - 01), "a revocation").is_ok());
        assert!(w.check_act(date!(2027 - 02 - 28), "a revocation").is_ok());
        let late = w
            .check_act(date!(2027 - 03 - 01), "a revocation")
            .unwrap_err();
        assert!(
            late.message.contains("a revocation on 2027-03-01"),
            "{late}"
        );
        assert!(w.check_act(date!(2026 - 02 - 28), "a ban").is_err());
        assert!(check_act(None, date!(1999 - 01 - 01), "anything").is_ok());
    }

    #[test]
    fn five_years_from_the_effective_date() {
        let v = Validity::new(date!(2026 - 03 - 01), 5).unwrap();
        assert_eq!(v.last_day(), date!(2031 - 02 - 28));
        assert!(v.check(date!(2026 - 02 - 28)).is_err());
        assert!(v.check(date!(2026 - 03 - 01)).is_ok());
        assert!(v.check(date!(2031 - 02 - 28)).is_ok());
        let after = v.check(date!(2031 - 03 - 01)).unwrap_err();
        assert!(after.message.contains("2031-02-28"), "{}", after.message);
        assert!(Validity::new(date!(2026 - 03 - 01), 0).is_err());
        assert_eq!(
            v.to_string(),
            "in force from 2026-03-01 through 2031-02-28 (5 years)"
        );
    }
}
