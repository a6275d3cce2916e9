//! Error probing: a surge of 401, 403 and 404 answers (guessing IDs, trying calls the
//! consumer may not make) against the consumer's own error rate for that many calls. Errors on
//! an endpoint that is failing for many consumers at once (a bad deploy) are left out: the
//! peer view says that is the platform, not this consumer. The last windows' evidence counts
//! too (each half the next), so a few extra errors every hour add up.

use super::{count_signal, show, top_endpoints, Context, Signal};
use crate::alert::Detector;
use crate::baseline::{ConsumerState, Counted, ErrorClass, Features, MIN_PROBE_EXPECTED};

pub fn score(ctx: &Context<'_>, c: &ConsumerState, f: &Features) -> Option<Signal> {
    let expected = f.probe_expected.max(MIN_PROBE_EXPECTED);
    let recent = c.with_evidence(f, Counted::ProbeErrors)?;
    let now = (f.probe_errors, expected);
    let score = count_signal(ctx, Detector::ErrorProbing, now, recent, c.errors.phi())?;
    let by_endpoint = c
        .endpoints
        .iter()
        .filter(|e| !ctx.table.incident(e.endpoint))
        .map(|e| (e.endpoint, f64::from(e.probe_errors)))
        .collect();
    let w = &c.errors.window;
    Some(Signal {
        detector: Detector::ErrorProbing,
        score,
        feature: "probe_errors_per_window",
        baseline: expected,
        current: f.probe_errors,
        peers: None,
        endpoints: top_endpoints(by_endpoint),
        summary: format!(
            "{} answers of 401/403/404 in one window ({} 401, {} 403, {} 404) where its \
             usual rates ({}, {} and {} per 1,000 calls) give {}",
            show(f.probe_errors),
            w[0],
            w[1],
            w[2],
            show(c.errors.rate(ErrorClass::Unauthorized) * 1_000.0),
            show(c.errors.rate(ErrorClass::Forbidden) * 1_000.0),
            show(c.errors.rate(ErrorClass::NotFound) * 1_000.0),
            show(expected)
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
        sim.skip_to_hour(15);
        sim
    }

    #[test]
    fn guessing_ids_that_answer_404_is_error_probing() {
        let mut sim = learned();
        let extra: Vec<_> = (0..60)
            .map(|i| request(sim.at(), 1, Some(8_000_000 + i * 31), 404))
            .collect();
        let signals = sim.run(extra);
        let s = find(&signals, Detector::ErrorProbing).expect("probing");
        assert!(s.score >= 6.0, "{s:?}");
        assert_eq!(s.endpoints[0], 1);
    }

    #[test]
    fn the_usual_few_not_found_answers_are_not_probing() {
        let mut sim = learned();
        for _ in 0..72 {
            let signals = sim.run(Vec::new());
            assert!(
                find(&signals, Detector::ErrorProbing).is_none(),
                "{signals:?}"
            );
        }
    }

    #[test]
    fn more_calls_with_the_usual_error_rate_are_not_probing() {
        let mut sim = learned();
        let extra: Vec<_> = (0..1_000)
            .map(|i| {
                let status = if i % 100 == 0 { 404 } else { 200 };
                request(sim.at(), 3, None, status)
            })
            .collect();
        let signals = sim.run(extra);
        assert!(
            find(&signals, Detector::ErrorProbing).is_none(),
            "{signals:?}"
        );
    }
}
