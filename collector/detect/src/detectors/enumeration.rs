//! Enumeration / BOLA: a consumer reads far more distinct objects on an endpoint than its
//! baseline predicts for the calls it normally makes there, or walks numeric IDs in order
//! (more sequential steps than its longest usual walk).
//!
//! The prediction comes from the calls the baseline *expected* on the endpoint (its share of
//! the seasonal rate, or of the calls made elsewhere this window), never from the window's own
//! calls there, so an enumeration's extra calls cannot explain away its extra objects; and it
//! must also be well above the most objects the consumer read in any window lately, which
//! covers habits the hour-blind prediction cannot foresee (a nightly sync). A window that
//! shows on its own is also scored with the last windows' objects and expectations, so a
//! small partner's excess spread over hours adds up. Peers (consumers of the same endpoint)
//! set the severity and appear in the evidence.

use super::{gates, show, Context, Signal};
use crate::alert::{Detector, Severity};
use crate::baseline::{ConsumerState, EndpointState, OBJECT_HABIT_DAYS, OBJECT_MIN_SAMPLES};

/// One endpoint's finding.
struct Finding {
    endpoint: u32,
    score: f64,
    walk: bool,
    /// The distinct objects are those of this and the last windows
    /// ([`EndpointState::objects_recent`]).
    recent: bool,
    baseline: f64,
    current: f64,
}

pub fn score(ctx: &Context<'_>, c: &ConsumerState) -> Option<Signal> {
    if c.object_habits
        .is_habit(ctx.window.hour(), ctx.window.day, OBJECT_HABIT_DAYS)
    {
        return None;
    }
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
        let span = if best.recent {
            "this and the last windows (each earlier one weighing half)"
        } else {
            "one window"
        };
        format!(
            "about {} distinct objects on {path} in {span}; its baseline expects about {}{}",
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
    if e.sketch.is_empty() || e.objects.samples() < OBJECT_MIN_SAMPLES {
        return None;
    }
    let expected_calls = c.expected_endpoint_calls(i, ctx.window.slot).max(0.5);
    let objects = objects_finding(ctx, e, expected_calls);
    let walk_score = e.walk_score();
    let found = if walk_score > objects.score {
        Finding {
            endpoint: e.endpoint,
            score: walk_score,
            walk: true,
            recent: false,
            baseline: e.walk_max(),
            current: e.walk_steps(),
        }
    } else {
        objects
    };
    (found.score > 0.0).then_some(found)
}

/// The distinct objects of the window alone, or with the last windows' when those tell more;
/// each must pass the gates.
fn objects_finding(ctx: &Context<'_>, e: &EndpointState, expected_calls: f64) -> Finding {
    let distinct = e.sketch.estimate();
    let expected = e.objects.expected(expected_calls);
    let mut found = Finding {
        endpoint: e.endpoint,
        score: 0.0,
        walk: false,
        recent: false,
        baseline: expected,
        current: distinct,
    };
    if gates(ctx, Detector::Enumeration, distinct, expected) {
        found.score = e.objects_score(expected_calls);
    }
    // The last windows strengthen a window that shows on its own; they cannot make one show,
    // or a single burst would echo into the quiet hours after it.
    let sustain = ctx.config.detector(Detector::Enumeration).sustain;
    if e.objects_score(expected_calls) < sustain {
        return found;
    }
    let (seen, usual) = e.objects_recent(expected_calls);
    let recent_score = e.objects_recent_score(expected_calls);
    if recent_score > found.score && gates(ctx, Detector::Enumeration, seen, usual) {
        found.score = recent_score;
        found.recent = true;
        found.baseline = usual;
        found.current = seen;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DAY_MS;
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
    fn a_small_partner_reading_five_times_its_objects_shows_enumeration() {
        // About three objects an hour: the 10-object excess gate refused a 5x read outright.
        let mut sim = Sim::new(6.0);
        sim.learn_days(8);
        sim.skip_to_hour(11);
        let extra: Vec<_> = (0..9)
            .map(|i| request(sim.at(), 1, Some(9_000_000 + i * 13), 200))
            .collect();
        let signals = sim.run(extra);
        let s = signals
            .iter()
            .find(|s| s.detector == Detector::Enumeration)
            .unwrap_or_else(|| panic!("no enumeration in {signals:?}"));
        assert_eq!(s.endpoints[0], 1);
    }

    /// Observes the usual traffic plus `extra` into the open window without closing it, for
    /// a look at the scores before the window is learned.
    fn observe_open(sim: &mut Sim, extra: Vec<crate::Observation<'static>>) {
        let mut all = sim.normal();
        all.extend(extra);
        for obs in &all {
            sim.c.observe(obs, (obs.time_ms / DAY_MS) as u16, 32);
        }
    }

    fn extra_objects(sim: &mut Sim, n: u64, from: u64) -> Vec<crate::Observation<'static>> {
        (0..n)
            .map(|i| request(sim.at(), 1, Some(from + i * 13), 200))
            .collect()
    }

    #[test]
    fn a_steady_excess_over_hours_scores_with_the_last_windows() {
        // A small partner reading about four times its objects for hours: each window alone
        // is within the noise, and a window that dipped under the ratio gate broke the run.
        let mut sim = Sim::new(12.0);
        sim.learn_days(8);
        sim.skip_to_hour(10);
        for k in 0..2 {
            let extra = extra_objects(&mut sim, 20, 9_000_000 + k * 1_000);
            sim.run(extra);
        }
        let extra = extra_objects(&mut sim, 20, 9_100_000);
        observe_open(&mut sim, extra);

        let w = sim.window();
        let ctx = Context {
            window: &w,
            config: &sim.config,
            table: &sim.table,
        };
        let i = sim
            .c
            .endpoints
            .iter()
            .position(|e| e.endpoint == 1)
            .expect("endpoint 1");
        let expected_calls = sim.c.expected_endpoint_calls(i, w.slot).max(0.5);
        let alone = sim.c.endpoints[i].objects_score(expected_calls);
        let s = score(&ctx, &sim.c).expect("enumeration");
        assert!(s.summary.contains("the last windows"), "{s:?}");
        assert!(s.score > alone, "{} <= {alone}", s.score);
    }

    #[test]
    fn a_single_burst_does_not_echo_into_the_usual_hour_after_it() {
        let mut sim = learned();
        let extra = extra_objects(&mut sim, 1_100, 9_000_000);
        let signals = sim.run(extra);
        assert!(
            find(&signals, Detector::Enumeration).is_some(),
            "{signals:?}"
        );
        let after = sim.run(Vec::new());
        assert!(
            after.iter().all(|s| s.detector != Detector::Enumeration),
            "{after:?}"
        );
    }

    #[test]
    fn a_nightly_sync_does_not_echo_into_the_hours_after_it() {
        // The objects of a sync the baseline had learned as a habit were carried as evidence:
        // the next hour's few extra objects looked like the tail of a huge enumeration.
        let mut sim = Sim::new(200.0);
        for day in 0..10u64 {
            for _ in 0..24 {
                let hour = (sim.t % DAY_MS) / 3_600_000;
                let extra = if hour == 2 {
                    (0..3_000)
                        .map(|i| request(sim.t + i * 1_000, 1, Some(day * 1_000_003 + i * 7), 200))
                        .collect()
                } else {
                    Vec::new()
                };
                let signals = sim.run(extra);
                if day >= 8 {
                    assert!(
                        find(&signals, Detector::Enumeration).is_none(),
                        "day {day} hour {hour}: {signals:?}"
                    );
                }
            }
        }
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
    fn a_slow_walk_of_a_few_ids_an_hour_adds_up_to_enumeration() {
        // A small partner walking five IDs an hour: one window never reached the minimum
        // walk, and each hour taught the baseline its few steps as a usual walk.
        let mut sim = Sim::new(6.0);
        sim.learn_days(8);
        sim.skip_to_hour(11);
        let mut walked = 0;
        let mut found = None;
        for _ in 0..6 {
            let extra: Vec<_> = (0..5)
                .map(|i| request(sim.t + i * 600_000, 2, Some(7_000_000 + walked + i), 200))
                .collect();
            walked += 5;
            let signals = sim.run(extra);
            found = found.or(find(&signals, Detector::Enumeration).cloned());
        }
        let s = found.expect("slow walk");
        assert_eq!(s.feature, "sequential_id_steps_per_window");
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
}
