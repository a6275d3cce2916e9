//! A consumer's request rate by hour of the week (UTC): 168 slots, each an exponentially
//! weighted mean of the requests per window seen in that hour, stored on a log scale in one
//! byte (6 % steps); an overall level for hours not seen yet; and the consumer's
//! overdispersion (how much noisier than Poisson its counts are around the expectation).
//!
//! Hour of the week rather than weekday/weekend × hour: a partner in another time zone
//! starts its Monday on a UTC Sunday, which a UTC weekend slot would average away.

use super::stats::ewma;
use crate::config::{DAY_MS, HOUR_MS};
use serde::{Deserialize, Serialize};

pub const SLOTS: usize = 168;
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Prior overdispersion until the consumer's own is learned.
const PHI_PRIOR: f32 = 0.3;
/// Most one window teaches the overdispersion: a count twice or half its expectation. A
/// nightly job, a busy day or an attack that lands in a slot far from its mean is an outlier,
/// not the consumer's everyday noise, and one such window used to add a third to `phi`.
const PHI_SAMPLE_MAX: f64 = 1.0;
/// How much the days around a slot must look alike to pool that hour (see
/// [`Seasonal::pooled`]): a weight of 1/e at this distance on the log scale.
const POOL_WIDTH: f64 = 0.4;
/// Hours either side of a slot that say what its day looks like there.
const POOL_HOURS: usize = 3;
/// Steps per unit of ln(1 + rate); 0 marks a slot not learned yet.
const SCALE: f64 = 16.0;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Seasonal {
    /// Slot value: 1 + round(ln(1 + rate) · 16), 0 while unlearned (serde handles arrays up
    /// to 32, hence days × hours).
    week: [[u8; 24]; 7],
    /// Mean requests per window over all windows.
    level: f32,
    /// Variance of a window's count is `e + phi·e²` around its expectation `e`.
    phi: f32,
}

impl Default for Seasonal {
    fn default() -> Self {
        Seasonal {
            week: [[0; 24]; 7],
            level: 0.0,
            phi: PHI_PRIOR,
        }
    }
}

/// The slot of a time: day of the week (Monday 0) × 24 + hour, UTC.
pub fn slot_of(t_ms: u64) -> usize {
    let hour = ((t_ms % DAY_MS) / HOUR_MS) as usize;
    let weekday = ((t_ms / DAY_MS + 3) % 7) as usize;
    weekday * 24 + hour
}

/// "Sunday 23:00 UTC" for a slot.
pub fn describe_slot(slot: usize) -> String {
    format!("{} {:02}:00 UTC", DAYS[(slot / 24) % 7], slot % 24)
}

fn decode(q: u8) -> f64 {
    (f64::from(q.saturating_sub(1)) / SCALE).exp_m1()
}

fn encode(x: f64) -> u8 {
    (1.0 + (x.max(0.0).ln_1p() * SCALE).round()).min(255.0) as u8
}

impl Seasonal {
    fn cell(&self, slot: usize) -> u8 {
        self.week[(slot / 24) % 7][slot % 24]
    }

    fn cell_mut(&mut self, slot: usize) -> &mut u8 {
        &mut self.week[(slot / 24) % 7][slot % 24]
    }

    /// Whether this slot has been learned at least once.
    pub fn is_learned(&self, slot: usize) -> bool {
        self.cell(slot) != 0
    }

    /// Expected requests in a window of this slot: its own mean for half, and for the other
    /// half the same hour on whichever neighbouring day (before or after) is closest to it.
    /// That steadies a slot seen only a few times without averaging a quiet Saturday morning
    /// with a busy Friday one. The level while the slot is unlearned.
    pub fn expected(&self, slot: usize) -> f64 {
        let slot = slot % SLOTS;
        let own = match self.cell(slot) {
            0 => return f64::from(self.level),
            q => decode(q),
        };
        let neighbours = [(slot + SLOTS - 24) % SLOTS, (slot + 24) % SLOTS];
        let closest = neighbours
            .iter()
            .map(|s| self.cell(*s))
            .filter(|q| *q != 0)
            .map(decode)
            .min_by(|a, b| distance(*a, own).total_cmp(&distance(*b, own)));
        match closest {
            Some(neighbour) => 0.5 * own + 0.5 * neighbour,
            None => own,
        }
    }

    /// This slot's own mean (the level while unlearned).
    fn own(&self, slot: usize) -> f64 {
        match self.cell(slot) {
            0 => f64::from(self.level),
            q => decode(q),
        }
    }

    pub fn phi(&self) -> f64 {
        f64::from(self.phi)
    }

    /// Mean requests per window over all windows.
    pub fn level(&self) -> f64 {
        f64::from(self.level)
    }

    /// The busiest learned slot's expectation (the level when none is learned).
    pub fn peak(&self) -> f64 {
        let top = self.week.iter().flatten().copied().max().unwrap_or(0);
        if top == 0 {
            f64::from(self.level)
        } else {
            decode(top)
        }
    }

    /// Median rate of the learned slots at most `share` of the busiest: the consumer's usual
    /// rate in its quiet hours (0 when it has none). The median, as the quiet set also holds
    /// the shoulders of busy hours, and a partner whose busiest hour is a nightly job has its
    /// whole working day in it.
    pub fn quiet_level(&self, share: f64) -> f64 {
        let limit = encode(share * self.peak());
        let mut counts = [0u8; SLOTS];
        let mut len = 0;
        for q in self.week.iter().flatten().copied() {
            if q != 0 && q <= limit {
                counts[len] = q;
                len += 1;
            }
        }
        let quiet = &mut counts[..len];
        if quiet.is_empty() {
            return 0.0;
        }
        let middle = (quiet.len() - 1) / 2;
        let (_, median, _) = quiet.select_nth_unstable(middle);
        decode(*median)
    }

    /// This slot's hour averaged over the days of the week whose hours around it (three either
    /// side) look like the slot's own day there, each weighed by how alike they are. A slot has
    /// been seen only once a week, so one quiet Monday afternoon leaves it far below the hour's
    /// real rate; pooled with Tuesday to Friday it is not, and a weekend day, or a partner's
    /// UTC day that starts its own weekend, does not pool with a working day.
    pub fn pooled(&self, slot: usize) -> f64 {
        let slot = slot % SLOTS;
        let around = |s: usize| -> f64 {
            (0..=2 * POOL_HOURS)
                .map(|k| self.own((s + SLOTS + k - POOL_HOURS) % SLOTS))
                .sum::<f64>()
                .ln_1p()
        };
        let mine = around(slot);
        let mut sum = 0.0;
        let mut weights = 0.0;
        for day in 0..7 {
            let s = (slot + day * 24) % SLOTS;
            if !self.is_learned(s) {
                continue;
            }
            let gap = (around(s) - mine) / POOL_WIDTH;
            let weight = (-gap * gap).exp();
            sum += weight * self.own(s);
            weights += weight;
        }
        if weights > 0.0 {
            sum / weights
        } else {
            self.own(slot)
        }
    }

    /// Slots learned so far.
    #[cfg(test)]
    pub fn slots_seen(&self) -> usize {
        self.week.iter().flatten().filter(|q| **q != 0).count()
    }

    /// Learns a closed window's count. `slot_alpha` weighs this window within its slot.
    pub fn learn(&mut self, slot: usize, count: f64, slot_alpha: f64) {
        let expected = self.expected(slot);
        // Until a slot has been seen, its expectation is the overall level, which says
        // nothing about how noisy the consumer is.
        if self.is_learned(slot) && expected >= 5.0 {
            let sample = ((count - expected).powi(2) - expected) / (expected * expected);
            ewma(&mut self.phi, sample.clamp(0.0, PHI_SAMPLE_MAX), 0.03);
            self.phi = self.phi.max(0.02);
        }
        let current = self.cell(slot);
        let next = if current == 0 {
            encode(count)
        } else {
            let own = self.own(slot);
            let mean = own + slot_alpha * (count - own);
            nudge(current, encode(mean), encode(count))
        };
        *self.cell_mut(slot) = next;
        ewma(&mut self.level, count, 0.02);
    }
}

/// How far apart two rates are, on a log scale.
fn distance(a: f64, b: f64) -> f64 {
    (a.ln_1p() - b.ln_1p()).abs()
}

/// The rounded average, but at least one step towards a target two or more steps away (so
/// small weights do not stall on rounding).
fn nudge(current: u8, rounded: u8, target: u8) -> u8 {
    if rounded != current || current.abs_diff(target) < 2 {
        return rounded.max(1);
    }
    if target > current {
        current + 1
    } else {
        (current - 1).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sunday_night_and_monday_night_are_different_slots() {
        // 2026-03-02 is a Monday.
        let monday = 1_772_409_600_000 + 23 * HOUR_MS;
        let sunday = monday + 6 * DAY_MS;
        assert_eq!(slot_of(monday), 23);
        assert_eq!(slot_of(sunday), 6 * 24 + 23);
        assert_eq!(describe_slot(slot_of(sunday)), "Sunday 23:00 UTC");
    }

    #[test]
    fn unseen_slots_fall_back_to_the_level() {
        let mut s = Seasonal::default();
        for _ in 0..100 {
            s.learn(10, 50.0, 0.5);
        }
        assert!((s.expected(10) - 50.0).abs() < 2.0, "{}", s.expected(10));
        assert!(s.expected(3) > 40.0);
        assert_eq!(s.slots_seen(), 1);
    }

    #[test]
    fn a_slot_leans_on_the_closer_of_the_neighbouring_days() {
        let mut s = Seasonal::default();
        s.learn(4 * 24 + 9, 100.0, 0.5);
        s.learn(5 * 24 + 9, 4.0, 0.5);
        s.learn(6 * 24 + 9, 6.0, 0.5);
        let saturday = s.expected(5 * 24 + 9);
        assert!((4.5..5.5).contains(&saturday), "{saturday}");
    }

    #[test]
    fn slot_values_keep_their_size_within_a_few_percent() {
        for x in [0.0, 1.0, 7.0, 150.0, 40_000.0] {
            let back = decode(encode(x));
            assert!((back - x).abs() <= x * 0.04 + 0.04, "{x}: {back}");
        }
    }

    /// A working-hours partner in UTC: weekdays busy from 8 to 18, weekends a tenth.
    fn office(day: usize, hour: usize) -> f64 {
        let busy = (8..18).contains(&hour);
        let weekday = day < 5;
        match (busy, weekday) {
            (true, true) => 20.0,
            (true, false) => 2.0,
            (false, _) => 0.5,
        }
    }

    fn learned_week(count: impl Fn(usize, usize) -> f64) -> Seasonal {
        let mut s = Seasonal::default();
        for slot in 0..SLOTS {
            s.learn(slot, count(slot / 24, slot % 24), 0.5);
        }
        s
    }

    #[test]
    fn an_hour_that_was_empty_the_week_it_was_learned_pools_with_the_other_working_days() {
        // Monday 16:00 happened to see one call; Tuesday to Friday saw twenty.
        let s = learned_week(|day, hour| {
            if (day, hour) == (0, 16) {
                1.0
            } else {
                office(day, hour)
            }
        });
        let monday = 16;
        assert!(s.expected(monday) < 12.0, "{}", s.expected(monday));
        assert!(s.pooled(monday) > 14.0, "{}", s.pooled(monday));
    }

    #[test]
    fn a_weekend_hour_does_not_pool_with_working_days() {
        let s = learned_week(office);
        let saturday = 5 * 24 + 11;
        assert!(s.pooled(saturday) < 4.0, "{}", s.pooled(saturday));
        let night = 2 * 24 + 2;
        assert!(s.pooled(night) < 1.0, "{}", s.pooled(night));
    }

    #[test]
    fn the_quiet_level_is_its_nights_not_a_working_day_under_a_nightly_job() {
        // A nightly job of 500 calls makes the working day (20 an hour) "quiet" too.
        let s = learned_week(|day, hour| if hour == 0 { 500.0 } else { office(day, hour) });
        let level = s.quiet_level(0.1);
        assert!(level < 1.0, "{level}");
    }

    #[test]
    fn a_few_outlying_windows_do_not_make_a_steady_consumer_noisy() {
        let mut s = Seasonal::default();
        for i in 0..2_000 {
            // Now and then, in any hour, a job or an incident at ten times the usual count.
            let count = if i % 41 == 0 {
                1_000.0
            } else if i % 2 == 0 {
                90.0
            } else {
                110.0
            };
            s.learn(i % 168, count, 0.5);
        }
        assert!(s.phi() < 0.06, "{}", s.phi());
    }

    #[test]
    fn a_steady_poisson_like_consumer_learns_a_small_overdispersion() {
        let mut s = Seasonal::default();
        for i in 0..2_000 {
            let count = if i % 2 == 0 { 90.0 } else { 110.0 };
            s.learn(i % 168, count, 0.5);
        }
        assert!(s.phi() < 0.05, "{}", s.phi());
    }
}
