//! Distinct counts in a few bytes.
//!
//! [`DistinctSketch`] is a HyperLogLog with 32 four-bit registers packed in 16 bytes (standard
//! error about 18 %, linear counting below ~80), kept per consumer × endpoint for the current
//! window only. Well-kept crates were checked and do not fit this budget:
//! `cardinality-estimator` (Cloudflare) stores exact 32-bit hashes up to 128 items (512 bytes)
//! before switching to HyperLogLog, and `hyperloglogplus` keeps a heap-allocated sparse set and
//! register vector; a consumer with 20 endpoints must stay under 2 KiB in total.
//!
//! [`BitCounter`] is linear counting on 64 bits (8 bytes), good to a few dozen distinct values,
//! used for new origins in a window.

use serde::{Deserialize, Serialize};

const REGISTERS: usize = 32;

/// HyperLogLog, 32 registers of 4 bits.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DistinctSketch([u8; REGISTERS / 2]);

impl DistinctSketch {
    /// Adds a (well mixed) 64-bit hash.
    pub fn insert(&mut self, hash: u64) {
        let index = (hash & (REGISTERS as u64 - 1)) as usize;
        let rest = hash >> 5;
        let rank = (rest.trailing_zeros() + 1).min(15) as u8;
        let byte = &mut self.0[index / 2];
        let shift = (index % 2) * 4;
        let current = (*byte >> shift) & 0x0f;
        if rank > current {
            *byte = (*byte & !(0x0f << shift)) | (rank << shift);
        }
    }

    fn register(&self, index: usize) -> u8 {
        (self.0[index / 2] >> ((index % 2) * 4)) & 0x0f
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }

    /// Estimated number of distinct hashes inserted.
    pub fn estimate(&self) -> f64 {
        let m = REGISTERS as f64;
        let mut sum = 0.0;
        let mut zeros = 0;
        for i in 0..REGISTERS {
            let r = self.register(i);
            sum += 1.0 / f64::from(1u32 << r);
            zeros += usize::from(r == 0);
        }
        let alpha = 0.697;
        let raw = alpha * m * m / sum;
        if raw <= 2.5 * m && zeros > 0 {
            return m * (m / zeros as f64).ln();
        }
        raw
    }

    pub fn clear(&mut self) {
        self.0 = [0; REGISTERS / 2];
    }
}

/// Linear counting on 64 bits.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BitCounter(u64);

impl BitCounter {
    pub fn insert(&mut self, hash: u64) {
        self.0 |= 1 << (hash >> 58);
    }

    /// Estimated distinct values (saturates near 250).
    pub fn estimate(&self) -> f64 {
        let zeros = f64::from(self.0.count_zeros());
        if zeros == 0.0 {
            return 64.0 * 64f64.ln();
        }
        64.0 * (64.0 / zeros).ln()
    }

    pub fn clear(&mut self) {
        self.0 = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::mix64;

    fn fill(n: u64, seed: u64) -> DistinctSketch {
        let mut s = DistinctSketch::default();
        for i in 0..n {
            s.insert(mix64(i ^ (seed << 40)));
            s.insert(mix64(i ^ (seed << 40)));
        }
        s
    }

    #[test]
    fn sketch_is_close_for_small_counts() {
        for n in [1, 5, 20] {
            let e = fill(n, 1).estimate();
            assert!((e - n as f64).abs() <= n as f64 * 0.25 + 1.0, "{n}: {e}");
        }
    }

    #[test]
    fn sketch_stays_within_its_error_for_large_counts() {
        for n in [200u64, 2_000, 50_000] {
            let mean: f64 = (0..20).map(|s| fill(n, s).estimate()).sum::<f64>() / 20.0;
            let err = (mean - n as f64).abs() / n as f64;
            assert!(err < 0.12, "{n}: mean estimate {mean}");
        }
    }

    #[test]
    fn sketch_tells_five_times_apart() {
        for seed in 0..20 {
            let base = fill(100, seed).estimate();
            let five = fill(500, seed + 100).estimate();
            assert!(five > 2.5 * base, "{base} {five}");
        }
    }

    #[test]
    fn bit_counter_counts_a_few_values() {
        let mut c = BitCounter::default();
        assert_eq!(c.estimate(), 0.0);
        for i in 0..10 {
            c.insert(mix64(i));
        }
        assert!((c.estimate() - 10.0).abs() < 3.0, "{}", c.estimate());
    }
}
