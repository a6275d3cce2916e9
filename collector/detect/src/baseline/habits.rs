//! Hours of the day at which a consumer recently did something its hour-blind baselines call
//! unusual. A nightly sync on one endpoint, or a weekly export, looks anomalous every time
//! against an average over the day, but it recurs at the same hour: once an hour of the day
//! has stood out on enough of the previous seven days, standing out again at that hour is a
//! habit, not a finding.

use serde::{Deserialize, Serialize};

const DAYS: usize = 7;
/// Days kept: the seven looked back on, and the day in progress, which may have noted an
/// hour already (a weekly job's hour must not fall out because an earlier hour stood out).
const KEPT: usize = DAYS + 1;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq)]
pub struct Habits {
    /// Bit h of entry i: hour h stood out on day `day − (KEPT − 1 − i)`.
    masks: [u32; KEPT],
    day: u16,
}

impl Habits {
    /// Whether `hour` stood out on at least `days` of the `DAYS` days before `day`.
    pub fn is_habit(&self, hour: u8, day: u16, days: usize) -> bool {
        let bit = 1u32 << hour;
        let seen = (1..=DAYS as u16)
            .filter(|back| self.mask(day.wrapping_sub(*back)) & bit != 0)
            .count();
        seen >= days.max(1)
    }

    fn mask(&self, day: u16) -> u32 {
        let back = usize::from(self.day.wrapping_sub(day));
        if back < KEPT {
            self.masks[KEPT - 1 - back]
        } else {
            0
        }
    }

    /// Notes that `hour` of `day` stood out.
    pub fn note(&mut self, hour: u8, day: u16) {
        let ahead = usize::from(day.wrapping_sub(self.day));
        if ahead != 0 {
            let keep = KEPT.saturating_sub(ahead);
            let mut shifted = [0u32; KEPT];
            shifted[..keep].copy_from_slice(&self.masks[KEPT - keep..]);
            self.masks = shifted;
            self.day = day;
        }
        self.masks[KEPT - 1] |= 1 << hour;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_that_stood_out_within_a_week_is_a_habit() {
        let mut h = Habits::default();
        h.note(3, 100);
        assert!(h.is_habit(3, 101, 1) && h.is_habit(3, 107, 1));
        assert!(!h.is_habit(4, 101, 1) && !h.is_habit(3, 108, 1) && !h.is_habit(3, 100, 1));
        h.note(3, 110);
        assert!(h.is_habit(3, 111, 1) && !h.is_habit(3, 109, 1));
    }

    #[test]
    fn a_weekly_hour_stays_a_habit_after_an_earlier_hour_stood_out_that_day() {
        // Before, the day's first note dropped the day a week back, and a weekly export at
        // 03:00 was news again because something else stood out at 01:00.
        let mut h = Habits::default();
        h.note(3, 100);
        h.note(1, 107);
        assert!(h.is_habit(3, 107, 1));
        h.note(2, 108);
        assert!(!h.is_habit(3, 108, 1), "eight days back is past the week");
    }

    #[test]
    fn a_habit_can_require_several_days() {
        let mut h = Habits::default();
        h.note(3, 100);
        assert!(!h.is_habit(3, 101, 2));
        h.note(3, 101);
        assert!(h.is_habit(3, 102, 2));
    }

    #[test]
    fn a_long_gap_forgets_every_habit() {
        let mut h = Habits::default();
        h.note(5, 10);
        h.note(6, 40);
        assert!(!h.is_habit(5, 41, 1) && h.is_habit(6, 41, 1));
    }
}
