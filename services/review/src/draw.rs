//! Reproducible spot-check draws (Art. 14): each agency is ranked by SHA-256 of the seed and
//! its code, and the lowest ranks of each risk tier are drawn at that tier's ratio. The same
//! seed over the same population always gives the same sample, and anyone holding the seed and
//! the population can check it.

use sha2::{Digest, Sha256};

/// SHA-256 over the sorted population, so that a published draw names what it drew from.
pub fn population_digest(population: &[(String, i64)]) -> String {
    let mut h = Sha256::new();
    for (uscc, tier) in population {
        h.update(uscc.as_bytes());
        h.update([b':', b'0' + (*tier as u8 % 10), b'\n']);
    }
    hex::encode(h.finalize())
}

/// The sample: per tier, ceil(percent × count / 100) agencies with the lowest
/// SHA-256(seed ‖ code); `percent` is indexed by tier (unset, low, medium, high).
pub fn draw(seed: &str, population: &[(String, i64)], percent: [u32; 4]) -> Vec<String> {
    let mut sample = Vec::new();
    for (tier, ratio) in percent.iter().enumerate() {
        let mut members: Vec<(String, &String)> = population
            .iter()
            .filter(|(_, t)| *t == tier as i64)
            .map(|(u, _)| (hex::encode(Sha256::digest(format!("{seed}\n{u}"))), u))
            .collect();
        if members.is_empty() {
            continue;
        }
        members.sort();
        let take = (members.len() as u32 * ratio).div_ceil(100) as usize;
        sample.extend(members.into_iter().take(take).map(|(_, u)| u.clone()));
    }
    sample.sort();
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERCENT: [u32; 4] = [10, 5, 20, 50];

    fn population(n: usize) -> Vec<(String, i64)> {
        (0..n)
            .map(|i| (format!("9165{i:014}"), (i % 4) as i64))
            .collect()
    }

    #[test]
    fn same_seed_same_sample_other_seed_other_sample() {
        let p = population(200);
        assert_eq!(draw("seed-1", &p, PERCENT), draw("seed-1", &p, PERCENT));
        assert_ne!(draw("seed-1", &p, PERCENT), draw("seed-2", &p, PERCENT));
    }

    #[test]
    fn each_tier_is_drawn_at_its_ratio() {
        let p = population(400);
        let sample = draw("x", &p, PERCENT);
        let per_tier = |t: i64| {
            sample
                .iter()
                .filter(|u| p.iter().any(|(c, tt)| c == *u && *tt == t))
                .count()
        };
        assert_eq!(per_tier(0), 10);
        assert_eq!(per_tier(1), 5);
        assert_eq!(per_tier(2), 20);
        assert_eq!(per_tier(3), 50);
    }
}
