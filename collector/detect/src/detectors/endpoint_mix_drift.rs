//! Endpoint-mix drift: the consumer suddenly spreads its calls over a different set or share
//! of endpoints. The distance is the total variation between the window's mix and its usual
//! mix; what multinomial sampling alone would give at this many calls is taken off, and what
//! is left is compared with the consumer's own hour-to-hour drift.

use super::{show, top_endpoints, Context, Signal};
use crate::alert::Detector;
use crate::baseline::{ConsumerState, Features};

/// Windows with fewer calls say too little about a mix.
const MIN_CALLS: f64 = 10.0;
/// Windows of baseline needed before scoring.
const MIN_SAMPLES: u16 = 24;
/// Variance of the distance from sampling is about this times its mean squared.
const SAMPLING_VAR: f64 = 0.3;

pub fn score(ctx: &Context<'_>, c: &ConsumerState, f: &Features) -> Option<Signal> {
    if f.calls < MIN_CALLS || c.mix.samples < MIN_SAMPLES {
        return None;
    }
    let config = ctx.config.detector(Detector::EndpointMixDrift);
    let usual_excess = f64::from(c.mix.mean).max(0.0);
    let expected = f.mix_sampling + usual_excess;
    let spread =
        (f64::from(c.mix.var).max(0.0) + SAMPLING_VAR * f.mix_sampling * f.mix_sampling + 1e-4)
            .sqrt();
    let distance = f.mix_distance;
    if distance < config.min_excess || distance < config.min_ratio * expected {
        return None;
    }
    let score = (distance - expected) / spread;
    let gained = c
        .endpoints
        .iter()
        .map(|e| (e.endpoint, f64::from(e.calls) / f.calls - e.share()))
        .collect();
    let endpoints = top_endpoints(gained);
    let named: Vec<String> = endpoints.iter().map(|e| ctx.table.path(*e)).collect();
    Some(Signal {
        detector: Detector::EndpointMixDrift,
        score,
        feature: "endpoint_mix_distance",
        baseline: expected,
        current: distance,
        peers: None,
        endpoints,
        summary: format!(
            "{}% of its calls moved between endpoints (usually {}%), towards {}",
            show(distance * 100.0),
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
