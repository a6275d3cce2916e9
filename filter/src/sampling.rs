//! Sampling: which requests become records when `sample_rate` is below 1, and the weight each
//! sampled record carries (`round(1 / rate)`) so totals stay estimable.
//!
//! The choice is random per request (a xorshift generator seeded per VM), not every n-th
//! request, so periodic traffic patterns cannot hide from it. No host calls here.

/// Decides per request whether to record it.
#[derive(Debug, Clone)]
pub struct Sampler {
    /// Records a request when the next random number is below this; `None` records all.
    threshold: Option<u64>,
    weight: u32,
    state: u64,
}

impl Sampler {
    /// A sampler for `rate` in (0, 1]; `seed` should be random per VM.
    pub fn new(rate: f64, seed: u64) -> Self {
        let all = rate >= 1.0 || rate.is_nan();
        Sampler {
            threshold: (!all).then(|| threshold(rate)),
            weight: if all { 1 } else { weight(rate) },
            // xorshift must not start at zero.
            state: seed | 1,
        }
    }

    /// `Some(weight)` when this request is to be recorded.
    pub fn sample(&mut self) -> Option<u32> {
        let Some(threshold) = self.threshold else {
            return Some(self.weight);
        };
        (self.next() < threshold).then_some(self.weight)
    }

    fn next(&mut self) -> u64 {
        // xorshift64* (Vigna): fast, good enough to pick requests.
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `rate` scaled to the u64 range. Float-to-integer `as` saturates, which is what is wanted.
fn threshold(rate: f64) -> u64 {
    (rate.clamp(0.0, 1.0) * u64::MAX as f64) as u64
}

/// `round(1 / rate)`, at least 1. Float-to-integer `as` saturates.
fn weight(rate: f64) -> u32 {
    let w = (1.0 / rate).round();
    if w.is_finite() && w >= 1.0 {
        w as u32
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_of_one_records_every_request_with_weight_one() {
        let mut s = Sampler::new(1.0, 7);
        assert!((0..1000).all(|_| s.sample() == Some(1)));
    }

    #[test]
    fn a_quarter_rate_records_about_a_quarter_with_weight_four() {
        let mut s = Sampler::new(0.25, 12345);
        let picked: Vec<u32> = (0..100_000).filter_map(|_| s.sample()).collect();
        assert!(picked.iter().all(|w| *w == 4));
        let share = picked.len() as f64 / 100_000.0;
        assert!((0.24..0.26).contains(&share), "{share}");
    }

    #[test]
    fn weight_is_the_rounded_inverse_of_the_rate() {
        assert_eq!(weight(0.3), 3);
        assert_eq!(weight(0.4), 3);
        assert_eq!(weight(0.0001), 10_000);
        assert_eq!(weight(1.0), 1);
    }

    #[test]
    fn a_zero_seed_still_samples() {
        let mut s = Sampler::new(0.5, 0);
        let picked = (0..1000).filter(|_| s.sample().is_some()).count();
        assert!((400..600).contains(&picked), "{picked}");
    }
}
