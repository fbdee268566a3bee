//! Cursor pages of a list: the size asked for, checked, and the cut of one row more than a page
//! that tells whether another page follows.

use crate::error::Violations;

/// The page size `requested` stands for (0: `default`), naming `page_size` in `v` when it is
/// outside `0..=max`.
pub fn size(v: &mut Violations, requested: i32, default: i32, max: i32) -> i64 {
    if !(0..=max).contains(&requested) {
        v.add("page_size", format!("must be between 0 and {max}"));
    }
    i64::from(if requested == 0 {
        default
    } else {
        requested.clamp(1, max)
    })
}

/// Cuts `rows`, read with a limit of one more than `limit`, to a page, and answers the token of
/// the next page (the key of the page's last row), empty when none follows.
pub fn cut<T>(rows: &mut Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> String {
    if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(key).unwrap_or_default()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_and_bounds() {
        let mut v = Violations::default();
        assert_eq!(size(&mut v, 0, 20, 100), 20);
        assert_eq!(size(&mut v, 7, 20, 100), 7);
        assert!(v.is_empty());
        assert_eq!(size(&mut v, 101, 20, 100), 100);
        assert!(!v.is_empty());
    }

    #[test]
    fn one_row_more_than_a_page_means_another_page() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(cut(&mut rows, 2, |r| r.to_string()), "2");
        assert_eq!(rows, [1, 2]);
        let mut rows = vec![1, 2];
        assert_eq!(cut(&mut rows, 2, |r| r.to_string()), "");
    }
}
