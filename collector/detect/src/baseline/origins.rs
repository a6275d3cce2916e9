//! Where a consumer's requests come from: the client networks (/24 for IPv4, /48 for IPv6)
//! and user agents it is known to use, kept in small least-recently-used sets, and how many
//! new ones a window normally brings.
//!
//! New origins are learned only when a window was not flagged, and a burst of new networks
//! one per window, so a leaked key's new users stay new for the whole episode.

use super::sketch::BitCounter;
use super::stats::ewma;
use crate::observation::mix64;
use serde::{Deserialize, Serialize};

const KNOWN_NETWORKS: usize = 8;
const KNOWN_AGENTS: usize = 4;
const FRESH: usize = 6;
/// Tag bit that marks a user agent in the fresh list.
const AGENT: u32 = 1 << 31;

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Origins {
    networks: [u32; KNOWN_NETWORKS],
    network_seen: [u16; KNOWN_NETWORKS],
    agents: [u32; KNOWN_AGENTS],
    agent_seen: [u16; KNOWN_AGENTS],
    /// New networks and agents this window, exactly up to `FRESH`...
    fresh: [u32; FRESH],
    fresh_len: u8,
    /// ...and approximately past it.
    overflow: BitCounter,
    /// Every network this window.
    distinct: BitCounter,
    /// Mean new origins (networks + agents) per active window.
    new_mean: f32,
    /// Mean distinct networks per active window.
    distinct_mean: f32,
}

/// What a window showed about origins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OriginWindow {
    pub new_networks: f64,
    pub new_agents: f64,
    pub distinct_networks: f64,
}

impl OriginWindow {
    pub fn new_origins(&self) -> f64 {
        self.new_networks + self.new_agents
    }
}

fn nonzero(hash: u32) -> u32 {
    (hash & !AGENT).max(1)
}

impl Origins {
    /// Records one request's network (hashed prefix) and user agent (hash, 0 for none).
    /// `day` is the day number of the request (for least-recently-used eviction).
    pub fn observe(&mut self, network: Option<u32>, agent: u64, day: u16) {
        if let Some(network) = network {
            let network = nonzero(network);
            self.distinct.insert(mix64(u64::from(network)));
            match self.networks.iter().position(|n| *n == network) {
                Some(i) => self.network_seen[i] = day,
                None => self.note_fresh(network),
            }
        }
        if agent != 0 {
            let agent = nonzero((agent >> 32) as u32);
            match self.agents.iter().position(|a| *a == agent) {
                Some(i) => self.agent_seen[i] = day,
                None => self.note_fresh(agent | AGENT),
            }
        }
    }

    fn note_fresh(&mut self, tagged: u32) {
        let len = usize::from(self.fresh_len);
        if self.fresh[..len].contains(&tagged) {
            return;
        }
        if len < FRESH {
            self.fresh[len] = tagged;
            self.fresh_len += 1;
        } else {
            self.overflow.insert(mix64(u64::from(tagged)));
        }
    }

    /// The open window's counts.
    pub fn window(&self) -> OriginWindow {
        let fresh = &self.fresh[..usize::from(self.fresh_len)];
        let agents = fresh.iter().filter(|f| *f & AGENT != 0).count() as f64;
        let networks = fresh.len() as f64 - agents + self.overflow.estimate();
        OriginWindow {
            new_networks: networks,
            new_agents: agents,
            distinct_networks: self.distinct.estimate(),
        }
    }

    pub fn new_mean(&self) -> f64 {
        f64::from(self.new_mean)
    }

    pub fn distinct_mean(&self) -> f64 {
        f64::from(self.distinct_mean)
    }

    /// Closes the window: learns its rates when it had traffic, and its new origins when
    /// `learn_new` (the window was not flagged).
    pub fn close(&mut self, active: bool, learn_new: bool, day: u16) {
        if active {
            let w = self.window();
            let new = if learn_new {
                w.new_origins()
            } else {
                w.new_origins().min(f64::from(self.new_mean) * 2.0)
            };
            ewma(&mut self.new_mean, new, 0.03);
            ewma(&mut self.distinct_mean, w.distinct_networks, 0.03);
        }
        if learn_new {
            // A burst of new networks is learned one per window: a leaked key spreading over
            // a few windows must not make itself known before it adds up to a finding.
            let burst = self.window().new_networks > 1.0;
            let mut networks_left = if burst { 1 } else { FRESH };
            for i in 0..usize::from(self.fresh_len) {
                let tagged = self.fresh[i];
                if tagged & AGENT == 0 {
                    if networks_left == 0 {
                        continue;
                    }
                    networks_left -= 1;
                }
                self.remember(tagged, day);
            }
        }
        self.fresh_len = 0;
        self.overflow.clear();
        self.distinct.clear();
    }

    fn remember(&mut self, tagged: u32, day: u16) {
        let (set, seen) = if tagged & AGENT != 0 {
            (&mut self.agents[..], &mut self.agent_seen[..])
        } else {
            (&mut self.networks[..], &mut self.network_seen[..])
        };
        let value = tagged & !AGENT;
        let slot = set
            .iter()
            .position(|v| *v == 0)
            .unwrap_or_else(|| oldest(seen, day));
        set[slot] = value.max(1);
        seen[slot] = day;
    }
}

/// Index of the least recently seen entry (days wrap at 65,536).
fn oldest(seen: &[u16], day: u16) -> usize {
    let mut best = 0;
    let mut best_age = 0;
    for (i, s) in seen.iter().enumerate() {
        let age = day.wrapping_sub(*s);
        if age > best_age {
            best = i;
            best_age = age;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_network_is_not_new_again() {
        let mut o = Origins::default();
        o.observe(Some(7), 99 << 32, 1);
        assert_eq!(o.window().new_networks, 1.0);
        assert_eq!(o.window().new_agents, 1.0);
        o.close(true, true, 1);
        o.observe(Some(7), 99 << 32, 2);
        assert_eq!(o.window().new_origins(), 0.0);
    }

    #[test]
    fn origins_of_a_flagged_window_stay_new() {
        let mut o = Origins::default();
        o.observe(Some(7), 0, 1);
        o.close(true, false, 1);
        o.observe(Some(7), 0, 1);
        assert_eq!(o.window().new_networks, 1.0);
    }

    #[test]
    fn many_new_networks_are_counted_past_the_exact_list() {
        let mut o = Origins::default();
        for n in 1..=40u32 {
            o.observe(Some(n * 7919), 0, 1);
        }
        let new = o.window().new_networks;
        assert!((30.0..=52.0).contains(&new), "{new}");
    }

    #[test]
    fn the_least_recently_seen_network_is_forgotten_first() {
        let mut o = Origins::default();
        for n in 1..=8u32 {
            o.observe(Some(n), 0, n as u16);
            o.close(true, true, n as u16);
        }
        o.observe(Some(8), 0, 20);
        o.close(true, true, 20);
        o.observe(Some(100), 0, 21);
        o.close(true, true, 21);
        o.observe(Some(1), 0, 22);
        assert_eq!(o.window().new_networks, 1.0, "network 1 was the oldest");
    }
}
