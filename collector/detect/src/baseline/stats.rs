//! Small online statistics the baselines are made of: exponentially weighted means and
//! variances, and the count score that turns "x seen where about μ was expected" into a
//! z-like number that respects the consumer's own noise.

use serde::{Deserialize, Serialize};

/// Exponentially weighted mean and variance of a value; the first sample sets the mean.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq)]
pub struct MeanVar {
    pub mean: f32,
    pub var: f32,
    pub samples: u16,
}

impl MeanVar {
    /// Learns `x` with weight `alpha` (at least 1/samples, so early samples average evenly).
    pub fn update(&mut self, x: f64, alpha: f64) {
        let a = alpha.max(1.0 / (f64::from(self.samples) + 1.0));
        let mean = f64::from(self.mean);
        let diff = x - mean;
        let new_mean = mean + a * diff;
        let var = (1.0 - a) * (f64::from(self.var) + a * diff * diff);
        self.mean = new_mean as f32;
        self.var = var as f32;
        self.samples = self.samples.saturating_add(1);
    }

    #[cfg(test)]
    pub fn sd(&self) -> f64 {
        f64::from(self.var).max(0.0).sqrt()
    }
}

/// Evidence from the last few windows for a count feature: counts seen and expected, each
/// window weighing half the next, so a steady excess too small to stand out in one window
/// adds up over two or three.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq)]
pub struct Evidence {
    seen: f32,
    expected: f32,
}

impl Evidence {
    const KEEP: f64 = 0.5;

    /// Seen and expected counts including the open window's.
    pub fn with(&self, seen: f64, expected: f64) -> (f64, f64) {
        (
            Self::KEEP * f64::from(self.seen) + seen,
            Self::KEEP * f64::from(self.expected) + expected,
        )
    }

    /// Folds the closed window in.
    pub fn close(&mut self, seen: f64, expected: f64) {
        let (s, e) = self.with(seen, expected);
        self.seen = s as f32;
        self.expected = e as f32;
    }

    pub fn clear(&mut self) {
        *self = Evidence::default();
    }
}

/// Moves `value` towards `x` by `alpha`.
pub fn ewma(value: &mut f32, x: f64, alpha: f64) {
    let v = f64::from(*value);
    *value = (v + alpha * (x - v)) as f32;
}

/// How surprising a count of `x` is when `mean` was expected, as a one-sided z-like score:
/// the signed root of the Poisson deviance, shrunk by the overdispersion `phi` (variance
/// `mean + phi·mean²`). 0 when `x <= mean`. Unlike `(x-μ)/σ` it stays honest for small means.
pub fn count_score(x: f64, mean: f64, phi: f64) -> f64 {
    let mean = mean.max(1e-3);
    if x <= mean {
        return 0.0;
    }
    let deviance = 2.0 * (x * (x / mean).ln() - (x - mean));
    (deviance / (1.0 + phi * mean)).max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_var_settles_on_a_steady_stream() {
        let mut s = MeanVar::default();
        for i in 0..200 {
            s.update(if i % 2 == 0 { 9.0 } else { 11.0 }, 0.05);
        }
        assert!((s.mean - 10.0).abs() < 0.2, "{s:?}");
        assert!((s.sd() - 1.0).abs() < 0.2, "{s:?}");
    }

    #[test]
    fn count_score_grows_with_the_excess_and_shrinks_with_noise() {
        assert_eq!(count_score(5.0, 10.0, 0.1), 0.0);
        let quiet = count_score(200.0, 100.0, 0.0);
        let noisy = count_score(200.0, 100.0, 0.1);
        assert!(quiet > 8.0 && noisy < quiet / 2.0, "{quiet} {noisy}");
        assert!(count_score(2_000.0, 100.0, 0.1) > 10.0);
    }

    #[test]
    fn evidence_adds_up_a_steady_small_excess() {
        let mut e = Evidence::default();
        let single = count_score(5.0, 0.5, 0.0);
        e.close(5.0, 0.5);
        e.close(5.0, 0.5);
        let (seen, expected) = e.with(5.0, 0.5);
        assert!(count_score(seen, expected, 0.0) > single + 1.0);
    }

    #[test]
    fn count_score_is_moderate_for_small_counts() {
        // Poisson(1) gives 4 or more about 2 % of the time: about two sigma.
        let z = count_score(4.0, 1.0, 0.0);
        assert!(z > 1.5 && z < 3.0, "{z}");
    }
}
