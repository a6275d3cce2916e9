//! Off-hours use: activity in an hour of the week when this consumer is normally quiet (its
//! learned rate there is at most a tenth of its busiest hour's), scored against that hour's
//! own baseline. Everything is in UTC; the profile is the consumer's own, so a partner in
//! another time zone has its own quiet hours.

use super::{gates, show, Context, Signal};
use crate::alert::Detector;
use crate::baseline::seasonal::describe_slot;
use crate::baseline::stats::count_score;
use crate::baseline::{ConsumerState, Features};

/// An hour is quiet when its rate is at most this share of the busiest hour's.
const QUIET_SHARE: f64 = 0.1;
/// Floor on the expected requests in a quiet window.
const MIN_EXPECTED: f64 = 0.05;

pub fn score(ctx: &Context<'_>, c: &ConsumerState, f: &Features) -> Option<Signal> {
    let slot = ctx.window.slot;
    if !c.rate.is_learned(slot) {
        return None;
    }
    let expected = c.rate.expected(slot);
    let peak = c.rate.peak();
    if expected > QUIET_SHARE * peak {
        return None;
    }
    let baseline = expected.max(MIN_EXPECTED);
    if !gates(ctx, Detector::OffHours, f.calls, baseline) {
        return None;
    }
    Some(Signal {
        detector: Detector::OffHours,
        score: count_score(f.calls, baseline, c.rate.phi()),
        feature: "requests_in_quiet_hour",
        baseline: expected,
        current: f.calls,
        peers: None,
        endpoints: super::top_endpoints(
            c.endpoints
                .iter()
                .map(|e| (e.endpoint, f64::from(e.calls)))
                .collect(),
        ),
        summary: format!(
            "{} requests on {}, when it usually makes {} (its busiest hour has {})",
            show(f.calls),
            describe_slot(slot),
            show(expected),
            show(peak)
        ),
        severity: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testkit::{find, request, Sim};

    fn learned() -> Sim {
        let mut sim = Sim::new(200.0);
        sim.learn_days(8);
        sim
    }

    #[test]
    fn calls_at_three_in_the_morning_from_an_office_hours_partner_are_off_hours() {
        let mut sim = learned();
        sim.skip_to_hour(3);
        let extra: Vec<_> = (0..40).map(|_| request(sim.at(), 3, None, 200)).collect();
        let signals = sim.run(extra);
        let s = find(&signals, Detector::OffHours).expect("off hours");
        assert!(s.score >= 6.0, "{s:?}");
    }

    #[test]
    fn the_same_calls_in_office_hours_are_not_off_hours() {
        let mut sim = learned();
        sim.skip_to_hour(11);
        let extra: Vec<_> = (0..40).map(|_| request(sim.at(), 3, None, 200)).collect();
        let signals = sim.run(extra);
        assert!(find(&signals, Detector::OffHours).is_none());
    }

    #[test]
    fn quiet_nights_with_their_usual_trickle_are_not_off_hours() {
        let mut sim = learned();
        for _ in 0..96 {
            let signals = sim.run(Vec::new());
            assert!(find(&signals, Detector::OffHours).is_none(), "{signals:?}");
        }
    }
}
