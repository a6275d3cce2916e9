//! A small seeded random generator (splitmix64) and the distributions the scenario needs.
//!
//! Written here rather than taken from `rand` so a scenario is the same bytes for a given seed
//! on every platform and with every future dependency version: the evaluation's figures must be
//! reproducible from the committed code alone.

use crate::observation::mix64;

/// splitmix64: tiny, fast, and plenty for simulation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator for one named sub-stream of `seed` (e.g. one consumer-hour).
    pub fn derive(seed: u64, parts: &[u64]) -> Rng {
        let mut state = mix64(seed ^ 0x5eed_5eed_5eed_5eed);
        for part in parts {
            state = mix64(state ^ mix64(part.wrapping_add(0x9e37_79b9_7f4a_7c15)));
        }
        Rng(state)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in [0, n); 0 when n is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Log-uniform in [lo, hi).
    pub fn log_range(&mut self, lo: f64, hi: f64) -> f64 {
        (self.range(lo.ln(), hi.ln())).exp()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-300);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// exp(N(0, sigma)) scaled so its mean is 1.
    pub fn lognormal_unit(&mut self, sigma: f64) -> f64 {
        (sigma * self.normal() - 0.5 * sigma * sigma).exp()
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// Poisson; exact for small means, normal approximation above 40.
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 40.0 {
            let x = mean + mean.sqrt() * self.normal();
            return x.round().max(0.0) as u64;
        }
        let limit = (-mean).exp();
        let mut product = self.f64();
        let mut count = 0;
        while product > limit {
            product *= self.f64();
            count += 1;
        }
        count
    }

    /// Index drawn from cumulative weights (last entry is the total).
    pub fn weighted(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0.0);
        let x = self.f64() * total;
        cumulative
            .partition_point(|c| *c <= x)
            .min(cumulative.len().saturating_sub(1))
    }

    /// Zipf-like rank in [0, n): P(r) ∝ 1/(r+1)^s, by inverting the continuous approximation.
    pub fn zipf(&mut self, n: u64, s: f64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let u = self.f64();
        let nf = n as f64;
        let x = if (s - 1.0).abs() < 1e-6 {
            (u * (nf + 1.0).ln()).exp()
        } else {
            let a = 1.0 - s;
            (1.0 + u * ((nf + 1.0).powf(a) - 1.0)).powf(1.0 / a)
        };
        ((x - 1.0).floor() as u64).min(n - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_the_same_stream() {
        let a: Vec<u64> = (0..5).map(|_| Rng::derive(1, &[2, 3]).next_u64()).collect();
        let b: Vec<u64> = (0..5).map(|_| Rng::derive(1, &[2, 3]).next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(
            Rng::derive(1, &[2, 3]).next_u64(),
            Rng::derive(1, &[3, 2]).next_u64()
        );
    }

    #[test]
    fn poisson_mean_is_close_to_its_parameter() {
        let mut rng = Rng::new(9);
        for mean in [0.5, 7.0, 300.0] {
            let n = 20_000;
            let total: u64 = (0..n).map(|_| rng.poisson(mean)).sum();
            let got = total as f64 / n as f64;
            assert!((got - mean).abs() < mean * 0.05 + 0.05, "{mean}: {got}");
        }
    }

    #[test]
    fn zipf_prefers_low_ranks_and_stays_in_range() {
        let mut rng = Rng::new(3);
        let mut counts = [0u32; 10];
        for _ in 0..10_000 {
            let r = rng.zipf(10, 1.0) as usize;
            counts[r] += 1;
        }
        assert!(counts[0] > counts[4] && counts[4] > 0);
    }
}
