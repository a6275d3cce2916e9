//! Endpoint-mix drift: the consumer suddenly spreads its calls over a different set or share
//! of endpoints. The score tests each endpoint that gained calls against its usual share
//! (with the consumer's own hour-to-hour share noise), so a dozen calls can already show a
//! shift onto a rarely used endpoint and a large partner's usual jitter does not; the
//! total-variation distance must also be large enough to matter; and an hour of the day
//! that was an outlier yesterday or the day before is a habit (a nightly sync on one
//! endpoint), not a drift.

use super::{show, top_endpoints, Context, Signal};
use crate::alert::Detector;
use crate::baseline::{ConsumerState, Features, MIX_MIN_CALLS};

/// Windows of baseline needed before scoring.
const MIN_SAMPLES: u16 = 24;

pub fn score(ctx: &Context<'_>, c: &ConsumerState, f: &Features) -> Option<Signal> {
    let w = &f.mix;
    if w.calls < MIX_MIN_CALLS || c.mix.samples < MIN_SAMPLES {
        return None;
    }
    let config = ctx.config.detector(Detector::EndpointMixDrift);
    let expected = w.sampling + c.mix.excess();
    if w.distance < config.min_excess || w.distance < config.min_ratio * expected {
        return None;
    }
    if c.mix.habits.is_habit(ctx.window.hour(), ctx.window.day, 1) {
        return None;
    }
    let score = w.score;
    let gained = c
        .endpoints
        .iter()
        .map(|e| (e.endpoint, f64::from(e.calls) / w.calls - e.share()))
        .collect();
    let endpoints = top_endpoints(gained);
    let named: Vec<String> = endpoints.iter().map(|e| ctx.table.path(*e)).collect();
    Some(Signal {
        detector: Detector::EndpointMixDrift,
        score,
        feature: "endpoint_mix_distance",
        baseline: expected,
        current: w.distance,
        peers: None,
        endpoints,
        summary: format!(
            "{}% of its {} calls moved between endpoints (usually {}%), towards {}",
            show(w.distance * 100.0),
            show(w.calls),
            show(expected * 100.0),
            named.join(", ")
        ),
        severity: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testkit::{find, request, Sim};

    fn learned() -> Sim {
        let mut sim = Sim::new(300.0);
        sim.learn_days(8);
        sim.skip_to_hour(11);
        sim
    }

    #[test]
    fn moving_most_calls_to_other_endpoints_is_mix_drift() {
        let mut sim = learned();
        let extra: Vec<_> = (0..600).map(|_| request(sim.at(), 9, None, 200)).collect();
        let signals = sim.run(extra);
        let s = find(&signals, Detector::EndpointMixDrift).expect("drift");
        assert!(s.score >= 6.0, "{s:?}");
        assert_eq!(s.endpoints[0], 9);
    }

    #[test]
    fn the_usual_mix_with_its_noise_is_not_drift() {
        let mut sim = learned();
        for _ in 0..72 {
            let signals = sim.run(Vec::new());
            assert!(
                find(&signals, Detector::EndpointMixDrift).is_none(),
                "{signals:?}"
            );
        }
    }

    #[test]
    fn a_few_calls_at_night_say_nothing_about_the_mix() {
        let mut sim = learned();
        sim.skip_to_hour(3);
        let extra = vec![request(sim.at(), 9, None, 200); 3];
        let signals = sim.run(extra);
        assert!(find(&signals, Detector::EndpointMixDrift).is_none());
    }
}
