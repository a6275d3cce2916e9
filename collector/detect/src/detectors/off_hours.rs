//! Off-hours use: activity in an hour of the week when this consumer is normally quiet (its
//! learned rate there is at most a tenth of its busiest hour's), scored against that hour's
//! own baseline, with the evidence of the previous quiet windows (each half the next).
//! Everything is in UTC; the profile is the consumer's own, so a partner in another time zone
//! has its own quiet hours.

use super::{count_signal, show, Context, Signal};
use crate::alert::Detector;
use crate::baseline::seasonal::describe_slot;
use crate::baseline::{ConsumerState, Counted, Features, MIN_QUIET_EXPECTED};

pub fn score(ctx: &Context<'_>, c: &ConsumerState, f: &Features) -> Option<Signal> {
    let slot = ctx.window.slot;
    let expected = f.quiet?;
    let recent = c.with_evidence(f, Counted::QuietRequests)?;
    let now = (f.calls, expected.max(MIN_QUIET_EXPECTED));
    let score = count_signal(ctx, Detector::OffHours, now, recent, c.rate.phi())?;
    Some(Signal {
        detector: Detector::OffHours,
        score,
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
            show(c.rate.peak())
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
