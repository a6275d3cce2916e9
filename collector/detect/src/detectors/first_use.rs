//! First use of a sensitive or rarely used endpoint: the consumer calls, for the first time
//! since it was first seen, an endpoint named like admin/export/debug (per the inventory), or
//! one that few consumers use at all. The engine notes such calls as they arrive (after the
//! consumer's learning period); this scores them at window close. Sensitive endpoints always
//! open an alert; for a merely rare one, a consumer that often starts using new endpoints gets
//! a lower score.

use super::{Context, Signal};
use crate::alert::{Detector, Severity};
use crate::baseline::ConsumerState;

const SENSITIVE_SCORE: f64 = 10.0;
const RARE_SCORE: f64 = 8.0;

pub fn score(ctx: &Context<'_>, c: &ConsumerState) -> Option<Signal> {
    let uses: Vec<(u32, bool)> = c.first_uses.iter().collect();
    if uses.is_empty() {
        return None;
    }
    let sensitive = uses.iter().any(|(_, s)| *s);
    let novelty = f64::from(c.novelty).max(0.0);
    let score = if sensitive {
        SENSITIVE_SCORE
    } else {
        RARE_SCORE / (1.0 + 20.0 * novelty)
    };
    let named: Vec<String> = uses.iter().map(|(e, _)| ctx.table.path(*e)).collect();
    let kind = if sensitive {
        "sensitive"
    } else {
        "rarely used"
    };
    Some(Signal {
        detector: Detector::FirstUse,
        score,
        feature: "first_call_to_endpoint",
        baseline: 0.0,
        current: uses.len() as f64,
        peers: None,
        endpoints: uses.iter().map(|(e, _)| *e).collect(),
        summary: format!("first call to {kind} endpoint {}", named.join(", ")),
        severity: Some(if sensitive {
            Severity::High
        } else {
            Severity::Medium
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testkit::{find, request, Sim};

    #[test]
    fn a_first_call_to_an_admin_endpoint_is_flagged_high() {
        let mut sim = Sim::new(100.0);
        sim.learn_days(8);
        let mut r = request(sim.at(), 40, None, 200);
        r.sensitive = true;
        let signals = sim.run(vec![r]);
        let s = find(&signals, Detector::FirstUse).expect("first use");
        assert_eq!(s.severity, Some(Severity::High));
        assert_eq!(s.endpoints, vec![40]);
    }

    #[test]
    fn a_sensitive_endpoint_used_while_learning_is_not_a_first_use_later() {
        let mut sim = Sim::new(100.0);
        let mut r = request(sim.at(), 40, None, 200);
        r.sensitive = true;
        sim.run(vec![r]);
        sim.learn_days(8);
        let mut again = request(sim.at(), 40, None, 200);
        again.sensitive = true;
        let signals = sim.run(vec![again]);
        assert!(find(&signals, Detector::FirstUse).is_none());
    }

    #[test]
    fn the_usual_endpoints_never_count_as_first_use() {
        let mut sim = Sim::new(100.0);
        sim.learn_days(8);
        for _ in 0..48 {
            assert!(find(&sim.run(Vec::new()), Detector::FirstUse).is_none());
        }
    }
}
