//! Enumeration / BOLA: a consumer reads far more distinct objects on an endpoint than its
//! baseline predicts for the calls it normally makes there, or walks numeric IDs in order
//! (more sequential steps than its longest usual walk).
//!
//! The prediction comes from the calls the baseline *expected* on the endpoint (its share of
//! the seasonal rate, or of the calls made elsewhere this window), never from the window's own
//! calls there, so an enumeration's extra calls cannot explain away its extra objects; and it
//! must also be well above the most objects the consumer read in any window lately, which
//! covers habits the hour-blind prediction cannot foresee (a nightly sync). Peers
//! (consumers of the same endpoint) set the severity and appear in the evidence.

use super::{gates, show, Context, Signal};
use crate::alert::{Detector, Severity};
use crate::baseline::ConsumerState;

/// Objects the model must have learned from before an endpoint is scored.
const MIN_SAMPLES: u8 = 5;
/// Walks shorter than this are never a finding.
const MIN_WALK: u16 = 12;
/// Floor on the spread of ln(1 + distinct): the sketch alone is ±18 %.
const MIN_SPREAD: f64 = 0.25;
/// Distinct objects must also exceed the most seen in a window lately by this factor.
const OVER_RECENT_MAX: f64 = 2.0;

/// One endpoint's finding.
struct Finding {
    endpoint: u32,
    score: f64,
    walk: bool,
    baseline: f64,
    current: f64,
}

pub fn score(ctx: &Context<'_>, c: &ConsumerState) -> Option<Signal> {
    let mut findings: Vec<Finding> = (0..c.endpoints.len())
        .filter_map(|i| endpoint_finding(ctx, c, i))
        .collect();
    findings.sort_by(|a, b| b.score.total_cmp(&a.score));
    let best = findings.first()?;
    let peers = ctx.table.get(best.endpoint);
    let peer_typical = peers.and_then(|p| p.peer_objects());
    let peer_z = peers.and_then(|p| p.peer_objects_z(best.current));
    let path = ctx.table.path(best.endpoint);
    let summary = if best.walk {
        format!(
            "{} sequential ID steps on {path} in one window; its longest usual walk is {}",
            show(best.current),
            show(best.baseline)
        )
    } else {
        format!(
            "about {} distinct objects on {path} in one window; its baseline expects about {}{}",
            show(best.current),
            show(best.baseline),
            peer_typical
                .map(|p| format!(" and its peers typically read {}", show(p)))
                .unwrap_or_default()
        )
    };
    let severity = (best.walk || peer_z.is_some_and(|z| z >= 2.0)).then_some(Severity::High);
    Some(Signal {
        detector: Detector::Enumeration,
        score: best.score,
        feature: if best.walk {
            "sequential_id_steps_per_window"
        } else {
            "distinct_objects_per_window"
        },
        baseline: best.baseline,
        current: best.current,
        peers: if best.walk { None } else { peer_typical },
        endpoints: findings.iter().take(3).map(|f| f.endpoint).collect(),
        summary,
        severity,
    })
}

fn endpoint_finding(ctx: &Context<'_>, c: &ConsumerState, i: usize) -> Option<Finding> {
    let e = &c.endpoints[i];
    if e.sketch.is_empty() || e.objects.samples() < MIN_SAMPLES {
        return None;
    }
    let distinct = e.sketch.estimate();
    let expected_calls = c.expected_endpoint_calls(i, ctx.window.slot).max(0.5);
    let expected_ln = e.objects.expected_ln(expected_calls);
    let expected = expected_ln.exp_m1().max(0.0);
    let spread = e.objects.spread().max(MIN_SPREAD);
    let z = (distinct.ln_1p() - expected_ln) / spread;
    let above_habits = distinct >= OVER_RECENT_MAX * e.objects_max();
    let distinct_score = if above_habits && gates(ctx, Detector::Enumeration, distinct, expected) {
        z
    } else {
        0.0
    };

    let walk_score = walk_score(e.sequential, e.walk_max());
    let found = if walk_score > distinct_score {
        Finding {
            endpoint: e.endpoint,
            score: walk_score,
            walk: true,
            baseline: e.walk_max(),
            current: f64::from(e.sequential),
        }
    } else {
        Finding {
            endpoint: e.endpoint,
            score: distinct_score,
            walk: false,
            baseline: expected,
            current: distinct,
        }
    };
    (found.score > 0.0).then_some(found)
}

/// 6 (the default open score) at three times the longest usual walk (plus a small floor),
/// growing with the log of the ratio.
fn walk_score(steps: u16, usual_max: f64) -> f64 {
    if steps < MIN_WALK {
        return 0.0;
    }
    let ratio = (f64::from(steps) + 1.0) / (usual_max + 4.0);
    if ratio <= 1.0 {
        return 0.0;
    }
    6.0 * ratio.ln() / 3f64.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testkit::{find, request, Sim};

    fn learned() -> Sim {
        let mut sim = Sim::new(200.0);
        sim.learn_days(8);
        sim.skip_to_hour(11);
        sim
    }

    #[test]
    fn reading_twenty_times_the_usual_objects_is_enumeration() {
        let mut sim = learned();
        let extra: Vec<_> = (0..1_100)
            .map(|i| request(sim.at(), 1, Some(9_000_000 + i * 13), 200))
            .collect();
        let signals = sim.run(extra);
        let s = find(&signals, Detector::Enumeration).expect("enumeration");
        assert!(s.score >= 6.0, "{s:?}");
        assert_eq!(s.feature, "distinct_objects_per_window");
        assert_eq!(s.endpoints[0], 1);
    }

    #[test]
    fn a_usual_window_is_not_enumeration() {
        let mut sim = learned();
        for _ in 0..48 {
            let signals = sim.run(Vec::new());
            assert!(
                find(&signals, Detector::Enumeration).is_none(),
                "{signals:?}"
            );
        }
    }

    #[test]
    fn walking_ids_in_order_is_enumeration_even_at_a_modest_count() {
        let mut sim = learned();
        let extra: Vec<_> = (0..60)
            .map(|i| request(sim.t + i * 50_000, 2, Some(7_000_000 + i), 200))
            .collect();
        let signals = sim.run(extra);
        let s = find(&signals, Detector::Enumeration).expect("walk");
        assert_eq!(s.feature, "sequential_id_steps_per_window");
        assert!(s.score >= 6.0, "{s:?}");
        assert_eq!(s.severity, Some(Severity::High));
    }

    #[test]
    fn a_walk_the_consumer_makes_every_day_is_not_enumeration() {
        let mut sim = Sim::new(200.0);
        for _ in 0..10 * 24 {
            let hour = (sim.t % 86_400_000) / 3_600_000;
            let extra: Vec<_> = if hour == 2 {
                (0..300)
                    .map(|i| request(sim.t + i * 10_000, 2, Some(1 + i), 200))
                    .collect()
            } else {
                Vec::new()
            };
            let signals = sim.run(extra);
            assert!(
                find(&signals, Detector::Enumeration).is_none(),
                "{signals:?}"
            );
        }
    }

    #[test]
    fn walk_score_reaches_the_open_score_at_three_times_the_usual_walk() {
        assert_eq!(walk_score(11, 0.0), 0.0);
        assert!((walk_score(50, 13.0) - 6.0).abs() < 0.01);
        assert_eq!(walk_score(20, 40.0), 0.0);
    }
}
