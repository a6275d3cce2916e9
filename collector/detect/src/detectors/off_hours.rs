//! Off-hours use: activity in an hour of the week when this consumer is normally quiet (its
//! learned rate there is at most a tenth of its busiest hour's), scored against that hour's
//! own baseline or, when larger, the same hour on the days that look like this one (an hour
//! learned on the one week it happened to be empty is not quiet), with the evidence of the
//! previous quiet windows (each half the next).
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
    use crate::config::{DAY_MS, HOUR_MS};
    use crate::detectors::testkit::{find, request, Sim, START};
    use crate::episode::{Episode, Step};

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
    fn an_office_hour_that_was_empty_the_week_it_was_learned_is_not_off_hours() {
        // Monday 17:00, the last office hour, saw no call in the learning week: alone, that
        // slot says the hour is quiet; Tuesday to Friday say it is a working hour.
        let mut sim = Sim::new(20.0);
        for _ in 0..17 {
            sim.run(Vec::new());
        }
        sim.run_only(Vec::new());
        let next_monday = START + 7 * DAY_MS + 17 * HOUR_MS;
        while sim.t < next_monday {
            sim.run(Vec::new());
        }
        let signals = sim.run(Vec::new());
        assert!(
            !signals.iter().any(|s| s.detector == Detector::OffHours),
            "{signals:?}"
        );
    }

    #[test]
    fn a_few_nights_hours_at_nearly_three_times_the_usual_rate_open_an_episode() {
        // 100 calls an hour at night; 175 more for three hours. Each window is 2.75 times its
        // expectation, which a gate at 3 times never let through.
        let mut sim = Sim::new(5_000.0);
        sim.learn_days(8);
        sim.skip_to_hour(1);
        let config = *sim.config.detector(Detector::OffHours);
        let mut episode = Episode::default();
        let mut opened = false;
        for _ in 0..3 {
            let extra: Vec<_> = (0..175).map(|_| request(sim.at(), 3, None, 200)).collect();
            let signals = sim.run(extra);
            let score = signals
                .iter()
                .find(|s| s.detector == Detector::OffHours)
                .map_or(0.0, |s| s.score);
            opened |= episode.step(score, &config, 3, true) == Step::Open;
        }
        assert!(opened);
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
