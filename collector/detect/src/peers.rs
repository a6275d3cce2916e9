//! The population view of each endpoint: its template (for evidence), how many consumers use
//! it (so a rarely used endpoint can be told), whether its errors this window are a platform
//! incident rather than one consumer probing, and what its consumers typically read (the peer
//! view an enumeration is compared with).
//!
//! Bounded by the number of endpoints the inventory has; past `MAX_ENDPOINTS` new endpoints
//! are not described (their alerts name them by id) and count as used by nobody.

use crate::baseline::ConsumerState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Endpoints described at most.
pub const MAX_ENDPOINTS: usize = 100_000;
/// Longest template kept for evidence.
const MAX_PATH: usize = 256;

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct EndpointInfo {
    pub path: String,
    /// Consumers that ever called it.
    pub users: u32,
    /// Peer view: mean and spread over its consumers of ln(1 + their typical distinct objects
    /// per window), and how many consumers that covers.
    objects_mean: f32,
    objects_sd: f32,
    objects_peers: u32,
    // The window being closed (not part of the baseline).
    #[serde(skip)]
    active: u32,
    #[serde(skip)]
    erroring: u32,
    #[serde(skip)]
    incident: bool,
}

impl EndpointInfo {
    /// Typical distinct objects per window among its consumers, when enough of them.
    pub fn peer_objects(&self) -> Option<f64> {
        (self.objects_peers >= 3).then(|| f64::from(self.objects_mean).exp_m1())
    }

    /// How many peer spreads `distinct` is above the peers' typical value.
    pub fn peer_objects_z(&self, distinct: f64) -> Option<f64> {
        (self.objects_peers >= 3).then(|| {
            let sd = f64::from(self.objects_sd).max(0.3);
            (distinct.ln_1p() - f64::from(self.objects_mean)) / sd
        })
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct EndpointTable {
    endpoints: BTreeMap<u32, EndpointInfo>,
    /// Endpoints seen past `MAX_ENDPOINTS`, not described.
    pub undescribed: u64,
}

impl EndpointTable {
    pub fn get(&self, endpoint: u32) -> Option<&EndpointInfo> {
        self.endpoints.get(&endpoint)
    }

    /// The template of an endpoint, or its id when unknown.
    pub fn path(&self, endpoint: u32) -> String {
        match self.endpoints.get(&endpoint) {
            Some(info) if !info.path.is_empty() => info.path.clone(),
            _ => format!("endpoint {endpoint}"),
        }
    }

    /// Gives an endpoint already described a new path (its template changed, or it was merged
    /// into another); an endpoint not described yet is left alone.
    pub fn describe(&mut self, endpoint: u32, path: &str) {
        if let Some(info) = self.endpoints.get_mut(&endpoint) {
            let path = truncate(path, MAX_PATH);
            if info.path != path {
                info.path = path.to_string();
            }
        }
    }

    /// Notes that a consumer called this endpoint for the first time; returns how many
    /// consumers had called it before.
    pub fn add_user(&mut self, endpoint: u32, path: &str) -> u32 {
        if !self.endpoints.contains_key(&endpoint) {
            if self.endpoints.len() >= MAX_ENDPOINTS {
                self.undescribed += 1;
                return 0;
            }
            let path = truncate(path, MAX_PATH).to_string();
            let info = EndpointInfo {
                path,
                ..EndpointInfo::default()
            };
            self.endpoints.insert(endpoint, info);
        }
        let info = self.endpoints.entry(endpoint).or_default();
        let before = info.users;
        info.users = info.users.saturating_add(1);
        before
    }

    /// Marks the endpoints whose errors this window are a platform incident: at least three
    /// consumers, and a fifth of those calling it, saw a fifth or more of their calls fail
    /// with 401/403/404. Then refreshes the peer view.
    pub fn prepare_window(&mut self, consumers: &[ConsumerState]) {
        for info in self.endpoints.values_mut() {
            info.active = 0;
            info.erroring = 0;
        }
        for e in consumers.iter().flat_map(|c| c.endpoints.iter()) {
            if e.calls < 3 {
                continue;
            }
            if let Some(info) = self.endpoints.get_mut(&e.endpoint) {
                info.active += 1;
                let errors = u32::from(e.probe_errors);
                info.erroring += u32::from(errors >= 3 && errors * 5 >= e.calls);
            }
        }
        for info in self.endpoints.values_mut() {
            info.incident = info.erroring >= 3 && info.erroring * 5 >= info.active;
        }
        self.refresh_peers(consumers);
    }

    fn refresh_peers(&mut self, consumers: &[ConsumerState]) {
        let mut sums: BTreeMap<u32, (f64, f64, u32)> = BTreeMap::new();
        for e in consumers.iter().flat_map(|c| c.endpoints.iter()) {
            if e.objects.samples() < 10 {
                continue;
            }
            let x = e.objects.typical().ln_1p();
            let s = sums.entry(e.endpoint).or_default();
            s.0 += x;
            s.1 += x * x;
            s.2 += 1;
        }
        for (endpoint, info) in &mut self.endpoints {
            let (sum, squares, n) = sums.get(endpoint).copied().unwrap_or_default();
            info.objects_peers = n;
            if n > 0 {
                let mean = sum / f64::from(n);
                let var = (squares / f64::from(n) - mean * mean).max(0.0);
                info.objects_mean = mean as f32;
                info.objects_sd = var.sqrt() as f32;
            }
        }
    }

    /// Whether this endpoint's errors are part of a platform incident this window.
    pub fn incident(&self, endpoint: u32) -> bool {
        self.endpoints.get(&endpoint).is_some_and(|i| i.incident)
    }

    /// Used by at most `share` of `consumers` (and not more than one when few are known).
    pub fn is_rare(&self, endpoint: u32, consumers: usize, share: f64, min_consumers: u32) -> bool {
        if consumers < min_consumers as usize {
            return false;
        }
        let users = self.endpoints.get(&endpoint).map_or(0, |i| i.users);
        f64::from(users) <= (share * consumers as f64).max(1.0)
    }

    pub fn heap_bytes(&self) -> usize {
        let per_node = std::mem::size_of::<(u32, EndpointInfo)>() + 16;
        self.endpoints
            .values()
            .map(|i| per_node + i.path.capacity())
            .sum()
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_few_consumers_use_is_rare_once_enough_consumers_are_known() {
        let mut t = EndpointTable::default();
        t.add_user(1, "GET /admin");
        assert!(!t.is_rare(1, 10, 0.02, 50), "too few consumers to judge");
        assert!(t.is_rare(1, 100, 0.02, 50));
        for _ in 0..10 {
            t.add_user(1, "GET /admin");
        }
        assert!(!t.is_rare(1, 100, 0.02, 50));
    }

    #[test]
    fn long_templates_are_cut_on_a_character_boundary() {
        let mut t = EndpointTable::default();
        let long = "é".repeat(300);
        t.add_user(1, &long);
        assert!(t.path(1).len() <= MAX_PATH);
    }
}
