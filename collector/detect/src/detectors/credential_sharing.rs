//! Credential sharing or leak: one consumer's key used from many new origins at once. An
//! origin is a client network (/24 for IPv4, /48 for IPv6) or a user agent the consumer has
//! not used lately; a partner that rotates cloud egress learns a higher usual rate of new
//! ones, so only a burst well above its own churn counts.

use super::{count_signal, show, Context, Signal};
use crate::alert::Detector;
use crate::baseline::{ConsumerState, Counted, Features, MIN_NEW_ORIGINS};

/// Overdispersion assumed for new origins (they arrive in clumps: a move brings several).
const PHI: f64 = 0.5;
/// At least this many new networks: new user agents alone are an upgrade, not a leak.
const MIN_NETWORKS: f64 = 2.0;

pub fn score(ctx: &Context<'_>, c: &ConsumerState, f: &Features) -> Option<Signal> {
    let o = f.origins;
    let current = o.new_origins();
    let usual = f.origins_usual.max(MIN_NEW_ORIGINS);
    if o.new_networks < MIN_NETWORKS {
        return None;
    }
    let recent = c.with_evidence(f, Counted::NewOrigins)?;
    let now = (current, usual);
    let score = count_signal(ctx, Detector::CredentialSharing, now, recent, PHI)?;
    Some(Signal {
        detector: Detector::CredentialSharing,
        score,
        feature: "new_origins_per_window",
        baseline: usual,
        current,
        peers: None,
        endpoints: Vec::new(),
        summary: format!(
            "used from {} new client networks and {} new user agents in one window \
             ({} networks in all, usually {}); it usually brings {} new origins per window",
            show(o.new_networks),
            show(o.new_agents),
            show(o.distinct_networks),
            show(c.origins.distinct_mean()),
            show(usual)
        ),
        severity: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::testkit::{find, request, Sim};
    use plumbline_wire::Addr;

    fn learned() -> Sim {
        let mut sim = Sim::new(100.0);
        sim.learn_days(8);
        sim.skip_to_hour(14);
        sim
    }

    fn from_networks(sim: &mut Sim, networks: u8, agent: u64) -> Vec<crate::Observation<'static>> {
        (0..networks)
            .flat_map(|n| {
                let t = sim.at();
                (0..3).map(move |_| {
                    let mut r = request(t, 3, None, 200);
                    r.client = Some(Addr::V4([81, 20, n, 9]));
                    r.user_agent = agent;
                    r
                })
            })
            .collect()
    }

    #[test]
    fn a_key_used_from_ten_new_networks_at_once_is_shared() {
        let mut sim = learned();
        let extra = from_networks(&mut sim, 10, 5 << 32);
        let signals = sim.run(extra);
        let s = find(&signals, Detector::CredentialSharing).expect("shared");
        assert!(s.score >= 6.0, "{s:?}");
        assert!(s.current >= 10.0);
    }

    #[test]
    fn one_new_network_is_an_egress_change_not_a_leak() {
        let mut sim = learned();
        let extra = from_networks(&mut sim, 1, 77 << 32);
        let signals = sim.run(extra);
        assert!(find(&signals, Detector::CredentialSharing).is_none());
    }

    #[test]
    fn a_new_client_version_alone_is_not_a_leak() {
        let mut sim = learned();
        let mut extra = from_networks(&mut sim, 0, 0);
        for _ in 0..20 {
            let mut r = request(sim.at(), 3, None, 200);
            r.user_agent = 99 << 32;
            extra.push(r);
        }
        let signals = sim.run(extra);
        assert!(find(&signals, Detector::CredentialSharing).is_none());
    }
}
