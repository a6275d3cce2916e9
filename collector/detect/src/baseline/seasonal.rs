//! A consumer's request rate by time of week: 24 hours of the day for weekdays and 24 for
//! weekends (UTC), each an exponentially weighted mean of the requests per window seen in
//! that hour, plus an overall level for hours not seen yet and the consumer's overdispersion
//! (how much noisier than Poisson its counts are around the expectation).

use super::stats::ewma;
use crate::config::{DAY_MS, HOUR_MS};
use serde::{Deserialize, Serialize};

pub const SLOTS: usize = 48;

/// Prior overdispersion until the consumer's own is learned.
const PHI_PRIOR: f32 = 0.3;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Seasonal {
    /// Hours 0..24 of weekdays, then of weekends (serde handles arrays up to 32).
    weekday: [f32; 24],
    weekend: [f32; 24],
    /// Bit i set when slot i has been learned at least once.
    seen: u64,
    /// Mean requests per window over all windows.
    level: f32,
    /// Variance of a window's count is `e + phi·e²` around its expectation `e`.
    phi: f32,
}

impl Default for Seasonal {
    fn default() -> Self {
        Seasonal {
            weekday: [0.0; 24],
            weekend: [0.0; 24],
            seen: 0,
            level: 0.0,
            phi: PHI_PRIOR,
        }
    }
}

/// The slot of a time: hour of day, plus 24 on Saturdays and Sundays (UTC).
pub fn slot_of(t_ms: u64) -> usize {
    let hour = ((t_ms % DAY_MS) / HOUR_MS) as usize;
    let weekday = (t_ms / DAY_MS + 3) % 7;
    hour + if weekday >= 5 { 24 } else { 0 }
}

impl Seasonal {
    fn slot(&self, slot: usize) -> f32 {
        if slot < 24 {
            self.weekday[slot]
        } else {
            self.weekend[slot - 24]
        }
    }

    fn slot_mut(&mut self, slot: usize) -> &mut f32 {
        if slot < 24 {
            &mut self.weekday[slot]
        } else {
            &mut self.weekend[slot - 24]
        }
    }

    /// Expected requests in a window of this slot.
    pub fn expected(&self, slot: usize) -> f64 {
        if self.seen & (1 << slot) != 0 {
            f64::from(self.slot(slot))
        } else {
            f64::from(self.level)
        }
    }

    pub fn phi(&self) -> f64 {
        f64::from(self.phi)
    }

    /// The busiest learned slot's expectation (the level when none is learned).
    pub fn peak(&self) -> f64 {
        let mut peak = f64::from(self.level);
        for i in 0..SLOTS {
            if self.seen & (1 << i) != 0 {
                peak = peak.max(f64::from(self.slot(i)));
            }
        }
        peak
    }

    /// Whether this slot has been learned at least once.
    pub fn is_learned(&self, slot: usize) -> bool {
        self.seen & (1 << slot) != 0
    }

    /// Slots learned so far.
    #[cfg(test)]
    pub fn slots_seen(&self) -> u32 {
        self.seen.count_ones()
    }

    /// Learns a closed window's count. `slot_alpha` weighs this window within its slot.
    pub fn learn(&mut self, slot: usize, count: f64, slot_alpha: f64) {
        let expected = self.expected(slot);
        if expected >= 5.0 {
            let sample = ((count - expected).powi(2) - expected) / (expected * expected);
            ewma(&mut self.phi, sample.clamp(0.0, 4.0), 0.03);
            self.phi = self.phi.max(0.02);
        }
        if self.seen & (1 << slot) == 0 {
            *self.slot_mut(slot) = count as f32;
            self.seen |= 1 << slot;
        } else {
            ewma(self.slot_mut(slot), count, slot_alpha);
        }
        ewma(&mut self.level, count, 0.02);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturday_noon_and_monday_noon_are_different_slots() {
        // 2026-03-02 is a Monday.
        let monday = 1_772_409_600_000 + 12 * HOUR_MS;
        let saturday = monday + 5 * DAY_MS;
        assert_eq!(slot_of(monday), 12);
        assert_eq!(slot_of(saturday), 36);
    }

    #[test]
    fn unseen_slots_fall_back_to_the_level() {
        let mut s = Seasonal::default();
        for _ in 0..100 {
            s.learn(10, 50.0, 0.25);
        }
        assert!((s.expected(10) - 50.0).abs() < 1e-3);
        assert!(s.expected(3) > 40.0);
        assert_eq!(s.slots_seen(), 1);
    }

    #[test]
    fn a_steady_poisson_like_consumer_learns_a_small_overdispersion() {
        let mut s = Seasonal::default();
        for i in 0..500 {
            let count = if i % 2 == 0 { 90.0 } else { 110.0 };
            s.learn(i % 24, count, 0.25);
        }
        assert!(s.phi() < 0.05, "{}", s.phi());
    }
}
