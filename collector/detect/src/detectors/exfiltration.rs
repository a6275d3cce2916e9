//! Data exfiltration: the window's successful responses carry far more bytes than the same
//! calls usually return (each endpoint's usual response size times its calls), beyond the
//! consumer's own window-to-window spread. More calls at the usual size are a volume surge,
//! not this; calls to endpoints without a known size are left out.

use super::{show, top_endpoints, Context, Signal};
use crate::alert::Detector;
use crate::baseline::{ConsumerState, Features};

/// Windows of baseline needed before scoring.
const MIN_SAMPLES: u16 = 24;
/// Floor on the variance of ln(bytes ratio).
const MIN_VAR: f64 = 0.002;

pub fn score(ctx: &Context<'_>, c: &ConsumerState, f: &Features) -> Option<Signal> {
    let ratio = &c.bytes.ratio;
    if f.bytes_calls <= 0.0 || f.bytes_expected <= 0.0 || ratio.samples < MIN_SAMPLES {
        return None;
    }
    let config = ctx.config.detector(Detector::Exfiltration);
    let usual = f.bytes_expected * f64::from(ratio.mean).exp();
    let log_ratio = (f.bytes.max(1.0) / usual).ln();
    if log_ratio < config.min_ratio.ln() || f.bytes - usual < config.min_excess {
        return None;
    }
    let fewer_calls = (c.bytes.ok_mean() / f.bytes_calls).max(1.0);
    let var = f64::from(ratio.var).max(0.0) * fewer_calls + MIN_VAR;
    let grown = c
        .endpoints
        .iter()
        .filter(|e| e.ok_calls > 0 && e.bytes_per_call() > 0.0)
        .map(|e| {
            let excess = f64::from(e.bytes) - f64::from(e.ok_calls) * e.bytes_per_call();
            (e.endpoint, excess)
        })
        .collect();
    Some(Signal {
        detector: Detector::Exfiltration,
        score: log_ratio / var.sqrt(),
        feature: "response_bytes_per_window",
        baseline: usual,
        current: f.bytes,
        peers: None,
        endpoints: top_endpoints(grown),
        summary: format!(
            "{} MB in responses to {} calls that usually return {} MB ({}x)",
            show(f.bytes / 1e6),
            show(f.bytes_calls),
            show(usual / 1e6),
            show(f.bytes / usual)
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
        sim.skip_to_hour(12);
        sim
    }

    #[test]
    fn responses_five_times_larger_than_usual_are_exfiltration() {
        let mut sim = learned();
        let extra: Vec<_> = (0..150)
            .map(|_| {
                let mut r = request(sim.at(), 4, None, 200);
                r.response_bytes = 200_000;
                r
            })
            .collect();
        let signals = sim.run(extra);
        let s = find(&signals, Detector::Exfiltration).expect("exfiltration");
        assert!(s.score >= 6.0, "{s:?}");
        assert_eq!(s.endpoints[0], 4);
    }

    #[test]
    fn more_calls_of_the_usual_size_are_not_exfiltration() {
        let mut sim = learned();
        let extra: Vec<_> = (0..800).map(|_| request(sim.at(), 4, None, 200)).collect();
        let signals = sim.run(extra);
        assert!(
            find(&signals, Detector::Exfiltration).is_none(),
            "{signals:?}"
        );
    }

    #[test]
    fn usual_response_sizes_are_not_exfiltration() {
        let mut sim = learned();
        for _ in 0..72 {
            let signals = sim.run(Vec::new());
            assert!(
                find(&signals, Detector::Exfiltration).is_none(),
                "{signals:?}"
            );
        }
    }
}
