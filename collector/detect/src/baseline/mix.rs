//! A consumer's endpoint mix: how far a window's spread of calls over endpoints is from the
//! usual shares, as a distance (total variation, for evidence and effect size) and as a test:
//! for each endpoint that gained calls, the binomial deviance of its count against its usual
//! share, widened by the consumer's own hour-to-hour share noise, and the largest of these
//! (corrected for how many endpoints were looked at) turned into a z-like score. Testing
//! endpoint by endpoint keeps the power to see a shift onto one or two endpoints that an
//! omnibus test over twenty endpoints would dilute.

use super::habits::Habits;
use super::stats::ewma;
use serde::{Deserialize, Serialize};

/// Share assumed for an endpoint with no usual share (new, or negligible), per call of the
/// window: a call to it weighs like a 1-in-(20·n) event.
const NEW_SHARE_PER_CALL: f64 = 0.05;
/// Weight of one window in the learned mix statistics.
const ALPHA: f64 = 0.03;
/// Windows after which the usual shares have settled.
const SETTLED: u16 = 48;
/// A window scoring this high is not used to learn the noise...
const OUTLIER: f64 = 6.0;
/// ...and one scoring this high may be a habit if it recurs at the same hour...
const HABIT: f64 = 3.0;
/// ...as may one (of enough calls to tell) whose distance is this far beyond sampling,
/// whatever it scores: a nightly sync that moves nearly all of its window's calls scores low
/// while the share noise learned from the rest of the day is wide, and shows as a drift the
/// night that noise has narrowed unless its hour is already known.
const HABIT_SHIFT: f64 = 0.5;
/// Windows with fewer calls do not teach the share noise (sampling swamps it)...
const NOISE_MIN_CALLS: f64 = 20.0;
/// ...nor do endpoints expecting fewer calls than this.
const NOISE_MIN_EXPECTED: f64 = 5.0;

/// What a window's mix looks like against the usual shares.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MixWindow {
    pub calls: f64,
    /// Total-variation distance from the usual mix...
    pub distance: f64,
    /// ...and what multinomial sampling alone gives on average at this many calls.
    pub sampling: f64,
    /// z-like score of the endpoint that gained most unexpectedly, and which one (index in
    /// the order given).
    pub score: f64,
    pub top: usize,
    /// Σ ((c − nq)² − nq(1−q)) / (nq)² over endpoints expecting enough calls, and how many:
    /// what the share noise is learned from.
    noise_excess: f64,
    noise_scale: f64,
}

impl MixWindow {
    /// From each endpoint's calls in the window and usual share (shares are normalised), with
    /// the consumer's share noise `sigma2` (relative variance of a share from hour to hour).
    pub fn new(endpoints: impl Iterator<Item = (f64, f64)> + Clone, sigma2: f64) -> MixWindow {
        let n: f64 = endpoints.clone().map(|(c, _)| c).sum();
        if n <= 0.0 {
            return MixWindow::default();
        }
        let total: f64 = endpoints.clone().map(|(_, q)| q.max(0.0)).sum();
        let norm = if total > 0.0 { total } else { 1.0 };
        let floor = NEW_SHARE_PER_CALL / n;
        let mut w = MixWindow {
            calls: n,
            ..MixWindow::default()
        };
        let mut cells = 0.0f64;
        let mut gainers = Gainers::default();
        for (i, (calls, share)) in endpoints.enumerate() {
            let q = share.max(0.0) / norm;
            w.distance += (calls / n - q).abs();
            w.sampling += (2.0 * q * (1.0 - q) / (std::f64::consts::PI * n)).sqrt();
            let usual = n * q;
            if usual >= NOISE_MIN_EXPECTED {
                w.noise_excess += ((calls - usual).powi(2) - usual * (1.0 - q)) / (usual * usual);
                w.noise_scale += 1.0;
            }
            cells += f64::from(u8::from(calls > 0.0 || q > 0.0));
            let expected = n * q.max(floor);
            gainers.offer(i, calls, expected);
        }
        w.distance /= 2.0;
        w.sampling /= 2.0;
        let cells = cells.max(1.0);
        gainers.rank(n, sigma2, cells);
        w.top = gainers.top[0].0;
        w.score = gainers.score(n, sigma2, cells).sqrt();
        w
    }
}

/// The endpoints that gained calls against their usual share: (index, calls, expected
/// calls, score), the three that gained most first once ranked.
#[derive(Default)]
struct Gainers {
    all: Vec<(usize, f64, f64)>,
    top: [(usize, f64, f64, f64); 3],
}

impl Gainers {
    fn offer(&mut self, i: usize, calls: f64, expected: f64) {
        if calls > expected {
            self.all.push((i, calls, expected));
        }
    }

    fn rank(&mut self, n: f64, sigma2: f64, cells: f64) {
        for (i, calls, expected) in self.all.drain(..) {
            let gain = shift_score(calls, n, expected, sigma2, 1.0, cells);
            if gain > self.top[2].3 {
                self.top[2] = (i, calls, expected, gain);
                self.top.sort_by(|a, b| b.3.total_cmp(&a.3));
            }
        }
    }

    /// The best squared score of the top one, two or three endpoints taken together (a shift
    /// often lands on a few endpoints), each less what choosing that many out of `cells`
    /// costs (Bonferroni).
    fn score(&self, n: f64, sigma2: f64, cells: f64) -> f64 {
        let mut best = 0.0f64;
        let mut calls = 0.0;
        let mut expected = 0.0;
        let mut choices = 1.0;
        for (m, (_, c, e, gain)) in self.top.iter().enumerate() {
            if *gain <= 0.0 {
                break;
            }
            let m = m as f64 + 1.0;
            calls += c;
            expected += e;
            choices *= (cells - m + 1.0).max(1.0) / m;
            let merged = shift_score(calls, n, expected, sigma2, m, cells);
            best = best.max(merged - 2.0 * choices.max(1.0).ln());
        }
        best.max(0.0)
    }
}

/// How far a set of `m` endpoints (out of `cells`) that got `calls` of the window's `n` is
/// above the `expected` calls, as a squared z. Two views, the smaller wins: the binomial
/// deviance widened by the share noise `sigma2` (right for small counts), and the log-odds of
/// the set against the rest with both sides' share noise and sampling (right for large counts,
/// where shares vary log-normally and a doubling is likelier than a normal model says).
fn shift_score(calls: f64, n: f64, expected: f64, sigma2: f64, m: f64, cells: f64) -> f64 {
    if calls <= expected || expected <= 0.0 {
        return 0.0;
    }
    let deviance = gained_deviance(calls, n, expected) / (1.0 + expected * sigma2 / m);
    let rest_expected = n - expected;
    if expected < NOISE_MIN_EXPECTED || rest_expected < NOISE_MIN_EXPECTED {
        return deviance;
    }
    let rest = n - calls;
    let log_odds = (calls / expected).ln() - ((rest + 0.5) / rest_expected).ln();
    let var = sigma2 / m + sigma2 / (cells - m).max(1.0) + 1.0 / expected + 1.0 / rest_expected;
    deviance.min(log_odds * log_odds / var)
}

/// Binomial deviance of `calls` out of `n` against `expected` of them, when above (else 0).
fn gained_deviance(calls: f64, n: f64, expected: f64) -> f64 {
    if calls <= expected || expected <= 0.0 {
        return 0.0;
    }
    let rest = n - calls;
    let rest_expected = n - expected;
    let mut d = calls * (calls / expected).ln();
    if rest > 0.0 {
        d += rest * (rest / rest_expected).ln();
    }
    (2.0 * d).max(0.0)
}

/// The consumer's mix noise, learned from its unflagged windows.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq)]
pub struct MixBaseline {
    /// Mean distance beyond sampling.
    excess: f32,
    /// Share noise: mean over endpoints (with enough calls) of the relative variance beyond
    /// sampling, ((c − nq)² − nq(1−q)) / (nq)², as a sum and a count per window.
    noise_excess: f32,
    noise_scale: f32,
    /// Hours of the day that scored high lately (see [`Habits`]).
    pub habits: Habits,
    pub samples: u16,
}

impl MixBaseline {
    pub fn excess(&self) -> f64 {
        f64::from(self.excess).max(0.0)
    }

    /// Relative variance of a share from hour to hour beyond sampling.
    pub fn sigma2(&self) -> f64 {
        if self.noise_scale <= 0.0 {
            return 0.1;
        }
        (f64::from(self.noise_excess) / f64::from(self.noise_scale)).clamp(0.0, 4.0)
    }

    /// Remembers `hour` of `day` as a possible habit when the window is unusual (see
    /// [`HABIT`] and [`HABIT_SHIFT`]), once the shares have settled (before, every window
    /// looks new). Also for a window too small to learn the mix from: a weekly export of four
    /// calls is the habit that explains next week's export of six.
    pub fn note_habit(&mut self, w: &MixWindow, hour: u8, day: u16) {
        let moved = w.calls >= NOISE_MIN_CALLS && w.distance - w.sampling >= HABIT_SHIFT;
        if self.samples >= SETTLED && (w.score >= HABIT || moved) {
            self.habits.note(hour, day);
        }
    }

    /// Learns a window of `hour` on `day`: an unusual one is remembered as a possible habit
    /// ([`Self::note_habit`]), and an outlying or flagged one not learned.
    pub fn learn(&mut self, w: &MixWindow, flagged: bool, hour: u8, day: u16) {
        let outlier = self.samples >= SETTLED && w.score >= OUTLIER;
        self.note_habit(w, hour, day);
        if flagged || outlier {
            return;
        }
        let a = (1.0 / (f64::from(self.samples) + 1.0)).max(ALPHA);
        ewma(&mut self.excess, w.distance - w.sampling, a);
        if w.calls >= NOISE_MIN_CALLS && w.noise_scale > 0.0 {
            ewma(&mut self.noise_excess, w.noise_excess, a);
            ewma(&mut self.noise_scale, w.noise_scale, a);
        }
        self.samples = self.samples.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::rng::Rng;

    fn window(rng: &mut Rng, n: u64, shares: &[f64], noise: f64, sigma2: f64) -> MixWindow {
        let weights: Vec<f64> = shares
            .iter()
            .map(|q| q * rng.lognormal_unit(noise))
            .collect();
        let mut cumulative = Vec::new();
        let mut acc = 0.0;
        for w in &weights {
            acc += w;
            cumulative.push(acc);
        }
        let mut counts = vec![0.0; shares.len()];
        for _ in 0..n {
            counts[rng.weighted(&cumulative)] += 1.0;
        }
        MixWindow::new(counts.into_iter().zip(shares.iter().copied()), sigma2)
    }

    #[test]
    fn distance_and_sampling_agree_on_a_usual_window() {
        let mut rng = Rng::new(5);
        let shares = [0.5, 0.3, 0.2];
        let mean: f64 = (0..2_000)
            .map(|_| window(&mut rng, 100, &shares, 0.0, 0.0).distance)
            .sum::<f64>()
            / 2_000.0;
        let sampling = window(&mut rng, 100, &shares, 0.0, 0.0).sampling;
        assert!((mean - sampling).abs() < 0.01, "{mean} {sampling}");
    }

    #[test]
    fn the_share_noise_is_learned() {
        let mut rng = Rng::new(8);
        let shares = [0.4, 0.3, 0.2, 0.1];
        let mut b = MixBaseline::default();
        for _ in 0..2_000 {
            let sigma2 = b.sigma2();
            b.learn(&window(&mut rng, 500, &shares, 0.25, sigma2), false, 0, 0);
        }
        let sigma2 = b.sigma2();
        assert!((0.03..0.1).contains(&sigma2), "{sigma2}");
    }

    #[test]
    fn usual_windows_score_low_once_their_noise_is_learned() {
        let mut rng = Rng::new(6);
        let shares = [0.4, 0.3, 0.2, 0.05, 0.05];
        let mut b = MixBaseline::default();
        for i in 0..500 {
            let n = [8, 50, 400][i % 3];
            let sigma2 = b.sigma2();
            b.learn(&window(&mut rng, n, &shares, 0.2, sigma2), false, 0, 0);
        }
        let sigma2 = b.sigma2();
        let worst = (0..3_000)
            .map(|i| window(&mut rng, [8, 50, 400][i % 3], &shares, 0.2, sigma2).score)
            .fold(f64::MIN, f64::max);
        assert!(worst < 5.0, "{worst}");
    }

    #[test]
    fn a_window_that_moved_nearly_all_its_calls_is_remembered_as_a_habit_though_it_scores_low() {
        // A nightly sync: 300 calls on an endpoint that is 5% of the day, while the share
        // noise learned from the day is wide. Its hour was not remembered, and the night the
        // noise had narrowed the same sync opened a drift alert.
        let mut b = MixBaseline {
            samples: SETTLED,
            ..MixBaseline::default()
        };
        let sync = [(5.0, 0.5), (5.0, 0.45), (300.0, 0.05)];
        let w = MixWindow::new(sync.into_iter(), 4.0);
        assert!(w.score < HABIT, "the case is a low score: {}", w.score);
        assert!(w.distance - w.sampling >= HABIT_SHIFT, "{w:?}");
        b.learn(&w, false, 3, 10);
        assert!(
            b.habits.is_habit(3, 11, 1),
            "the sync's hour is a habit the next night"
        );
        assert!(!b.habits.is_habit(4, 11, 1), "only its own hour");

        let mut quiet = MixBaseline {
            samples: SETTLED,
            ..MixBaseline::default()
        };
        let usual = [(150.0, 0.5), (140.0, 0.45), (20.0, 0.05)];
        quiet.learn(&MixWindow::new(usual.into_iter(), 4.0), false, 3, 10);
        assert!(
            !quiet.habits.is_habit(3, 11, 1),
            "a usual window is no habit"
        );
    }

    #[test]
    fn a_shift_onto_two_endpoints_counts_them_together() {
        // Each of the two gained 3.5x its share; together they are clearer than either.
        let counts = [(70.0, 0.6), (10.0, 0.2), (35.0, 0.1), (35.0, 0.1)];
        let w = MixWindow::new(counts.into_iter(), 0.04);
        let single = shift_score(35.0, 150.0, 15.0, 0.04, 1.0, 4.0) - 2.0 * 4f64.ln();
        assert!(
            w.score > single.sqrt() + 1.0,
            "{} {}",
            w.score,
            single.sqrt()
        );
    }

    #[test]
    fn moving_most_calls_to_a_rare_endpoint_scores_high_with_a_dozen_calls() {
        let counts = [(1.0, 0.4), (0.0, 0.3), (1.0, 0.25), (10.0, 0.05)];
        let drifted = MixWindow::new(counts.into_iter(), 0.06);
        assert!(drifted.score > 6.0, "{}", drifted.score);
        assert_eq!(drifted.top, 3);
    }
}
