//! One consumer × detector episode: when a run of window scores opens an alert, keeps it going
//! and ends it. Windows score on a z-like scale; a single strong window opens at once, and a
//! run of moderate ones opens through a cumulative sum (CUSUM) of their excess over the
//! sustain score, so a slow, steady abuse is caught without lowering the bar for one noisy
//! window.

use crate::config::DetectorConfig;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq)]
pub struct Episode {
    /// The CUSUM in 1/256 steps (kept small: eight of these per consumer).
    cusum: u16,
    quiet: u8,
    open: bool,
}

const CUSUM_SCALE: f64 = 256.0;

/// What a window did to the episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Nothing,
    Open,
    Update,
    Resolve,
}

impl Episode {
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Feeds one window's score. `may_open` is false when a new episode must not start (a
    /// platform-wide event, or the consumer is still learning).
    pub fn step(
        &mut self,
        score: f64,
        c: &DetectorConfig,
        resolve_after: u32,
        may_open: bool,
    ) -> Step {
        let showing = score >= c.sustain;
        let cusum = (f64::from(self.cusum) / CUSUM_SCALE + score - c.sustain).max(0.0);
        let kept = cusum.min(c.sustain_total * 4.0) * CUSUM_SCALE;
        self.cusum = kept.round().min(f64::from(u16::MAX)) as u16;
        if self.open {
            return self.step_open(showing, resolve_after);
        }
        if !may_open {
            self.cusum = 0;
            return Step::Nothing;
        }
        if score >= c.open || (showing && cusum >= c.sustain_total) {
            self.open = true;
            self.quiet = 0;
            return Step::Open;
        }
        Step::Nothing
    }

    fn step_open(&mut self, showing: bool, resolve_after: u32) -> Step {
        if showing {
            self.quiet = 0;
            return Step::Update;
        }
        self.quiet = self.quiet.saturating_add(1);
        if u32::from(self.quiet) >= resolve_after {
            *self = Episode::default();
            return Step::Resolve;
        }
        Step::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: DetectorConfig = DetectorConfig {
        enabled: true,
        open: 6.0,
        sustain: 3.0,
        sustain_total: 6.0,
        min_ratio: 1.0,
        min_excess: 0.0,
    };

    #[test]
    fn one_strong_window_opens_an_episode() {
        let mut e = Episode::default();
        assert_eq!(e.step(7.0, &C, 3, true), Step::Open);
        assert!(e.is_open());
    }

    #[test]
    fn a_run_of_moderate_windows_opens_an_episode() {
        let mut e = Episode::default();
        assert_eq!(e.step(5.0, &C, 3, true), Step::Nothing);
        assert_eq!(e.step(5.0, &C, 3, true), Step::Nothing);
        assert_eq!(e.step(5.0, &C, 3, true), Step::Open);
    }

    #[test]
    fn moderate_windows_far_apart_do_not_add_up() {
        let mut e = Episode::default();
        for _ in 0..10 {
            assert_eq!(e.step(5.0, &C, 3, true), Step::Nothing);
            assert_eq!(e.step(0.0, &C, 3, true), Step::Nothing);
        }
    }

    #[test]
    fn an_episode_updates_while_it_lasts_and_resolves_after_quiet_windows() {
        let mut e = Episode::default();
        e.step(9.0, &C, 3, true);
        assert_eq!(e.step(4.0, &C, 3, true), Step::Update);
        assert_eq!(e.step(0.0, &C, 3, true), Step::Nothing);
        assert_eq!(e.step(0.0, &C, 3, true), Step::Nothing);
        assert_eq!(e.step(0.0, &C, 3, true), Step::Resolve);
        assert!(!e.is_open());
    }

    #[test]
    fn no_episode_opens_when_opening_is_held_back() {
        let mut e = Episode::default();
        assert_eq!(e.step(20.0, &C, 3, false), Step::Nothing);
        assert_eq!(e.step(5.0, &C, 3, true), Step::Nothing);
    }
}
