//! Volume surge (scraping): far more requests in a window than the consumer's seasonal
//! baseline expects for that hour of the week, judged with the consumer's own overdispersion
//! so a naturally bursty partner needs a bigger surge than a steady one. The last windows'
//! evidence counts too (each half the next), so a small partner's steady surge adds up.

use super::{count_signal, show, top_endpoints, Context, Signal};
use crate::alert::Detector;
use crate::baseline::{ConsumerState, Counted, Features};

pub fn score(ctx: &Context<'_>, c: &ConsumerState, f: &Features) -> Option<Signal> {
    let expected = f.expected_calls;
    let recent = c.with_evidence(f, Counted::Requests)?;
    let now = (f.calls, expected);
    let score = count_signal(ctx, Detector::VolumeSurge, now, recent, c.rate.phi())?;
    let excess = c
        .endpoints
        .iter()
        .map(|e| (e.endpoint, f64::from(e.calls) - e.share() * expected))
        .collect();
    Some(Signal {
        detector: Detector::VolumeSurge,
        score,
        feature: "requests_per_window",
        baseline: expected,
        current: f.calls,
        peers: None,
        endpoints: top_endpoints(excess),
        summary: format!(
            "{} requests in one window where its baseline for this hour of the week is {} \
             ({}x)",
            show(f.calls),
            show(expected),
            show(f.calls / expected.max(0.1))
        ),
        severity: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testkit::{find, request, Sim, USUAL};

    fn learned() -> Sim {
        let mut sim = Sim::new(300.0);
        sim.learn_days(8);
        sim.skip_to_hour(10);
        sim
    }

    fn usual_calls(sim: &mut Sim, n: u64) -> Vec<crate::Observation<'static>> {
        (0..n)
            .map(|i| {
                let endpoint = USUAL[(i % 4) as usize].0;
                let number = (endpoint <= 2).then_some(50_000 + 7 * (i % 60));
                request(sim.at(), endpoint, number, 200)
            })
            .collect()
    }

    #[test]
    fn five_times_the_usual_requests_is_a_volume_surge() {
        let mut sim = learned();
        let extra = usual_calls(&mut sim, 1_200);
        let signals = sim.run(extra);
        let s = find(&signals, Detector::VolumeSurge).expect("surge");
        assert!(s.score >= 6.0, "{s:?}");
        assert!(s.current > 4.0 * s.baseline);
    }

    #[test]
    fn five_times_a_small_partners_hour_is_a_surge_though_only_twenty_requests() {
        // The excess gate was 30 requests: more than a five-request partner's 5x surge.
        let mut sim = Sim::new(5.0);
        sim.learn_days(8);
        sim.skip_to_hour(10);
        let extra = usual_calls(&mut sim, 20);
        let signals = sim.run(extra);
        let s = signals
            .iter()
            .find(|s| s.detector == Detector::VolumeSurge)
            .expect("surge");
        assert!(s.score >= 4.0, "{s:?}");
    }

    #[test]
    fn a_usual_busy_hour_is_not_a_surge() {
        let mut sim = learned();
        for _ in 0..72 {
            let signals = sim.run(Vec::new());
            assert!(
                find(&signals, Detector::VolumeSurge).is_none(),
                "{signals:?}"
            );
        }
    }

    #[test]
    fn a_surge_at_night_is_judged_against_the_night_baseline() {
        let mut sim = learned();
        sim.skip_to_hour(2);
        let extra = usual_calls(&mut sim, 120);
        let signals = sim.run(extra);
        let s = find(&signals, Detector::VolumeSurge).expect("night surge");
        assert!(s.baseline < 20.0, "{s:?}");
    }
}
