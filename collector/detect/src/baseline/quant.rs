//! 16-bit storage for baseline values, so a consumer with 20 endpoints fits its memory budget.
//!
//! [`LogQ`] keeps a non-negative value on a log scale (0.05 % steps, up to ~10^13);
//! [`FixQ`] a signed value in fixed point (1/2048 steps, ±16). Moving averages on them always
//! move at least one step towards a target that is two or more steps away, so small weights
//! do not stall on rounding.

use serde::{Deserialize, Serialize};

const LOG_SCALE: f64 = 2048.0;
const FIX_SCALE: f64 = 2048.0;

/// A non-negative value stored as round(ln(1 + x) · 2048).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogQ(u16);

impl LogQ {
    #[cfg(test)]
    pub fn new(x: f64) -> LogQ {
        LogQ(encode_log(x))
    }

    pub fn get(self) -> f64 {
        (f64::from(self.0) / LOG_SCALE).exp_m1()
    }

    pub fn set(&mut self, x: f64) {
        self.0 = encode_log(x);
    }

    pub fn ewma(&mut self, x: f64, alpha: f64) {
        let next = self.get() + alpha * (x - self.get());
        self.0 = nudge(self.0 as i32, encode_log(next) as i32, encode_log(x) as i32) as u16;
    }
}

fn encode_log(x: f64) -> u16 {
    (x.max(0.0).ln_1p() * LOG_SCALE)
        .round()
        .min(f64::from(u16::MAX)) as u16
}

/// A signed value stored in fixed point with 1/2048 steps.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FixQ(i16);

impl FixQ {
    pub fn get(self) -> f64 {
        f64::from(self.0) / FIX_SCALE
    }

    pub fn set(&mut self, x: f64) {
        self.0 = encode_fix(x);
    }

    pub fn ewma(&mut self, x: f64, alpha: f64) {
        let next = self.get() + alpha * (x - self.get());
        self.0 = nudge(
            i32::from(self.0),
            i32::from(encode_fix(next)),
            i32::from(encode_fix(x)),
        ) as i16;
    }
}

fn encode_fix(x: f64) -> i16 {
    (x * FIX_SCALE)
        .round()
        .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
}

/// The rounded average, but at least one step towards a target two or more steps away.
fn nudge(current: i32, rounded: i32, target: i32) -> i32 {
    if rounded != current || (target - current).abs() < 2 {
        return rounded;
    }
    current + (target - current).signum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_values_keep_their_size_within_a_tenth_of_a_percent() {
        for x in [0.0, 0.5, 3.0, 1_234.0, 4.0e6, 1.0e12] {
            let q = LogQ::new(x);
            assert!((q.get() - x).abs() <= x * 0.001 + 0.001, "{x}: {}", q.get());
        }
    }

    #[test]
    fn small_weights_still_move_a_log_value() {
        let mut q = LogQ::new(100.0);
        for _ in 0..5_000 {
            q.ewma(200.0, 0.001);
        }
        assert!(q.get() > 180.0, "{}", q.get());
    }

    #[test]
    fn fixed_values_are_signed() {
        let mut f = FixQ::default();
        f.set(-1.25);
        assert_eq!(f.get(), -1.25);
        for _ in 0..300 {
            f.ewma(2.0, 0.05);
        }
        assert!((f.get() - 2.0).abs() < 0.01, "{}", f.get());
    }
}
