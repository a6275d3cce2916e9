//! Normal behaviour of one scenario consumer: its daily and weekly shape, size and growth, its
//! endpoints and how it picks object IDs on each, its error rates, response sizes, egress
//! addresses, user agents, and the benign events in its life (busy days, adopting a new
//! endpoint, a user-agent upgrade, an egress move, weekly export jobs, nightly catalogue syncs).

use super::catalogue::{self, Ids, CATALOGUE};
use super::rng::Rng;
use plumbline_wire::Addr;

pub const HOUR_MS: u64 = 3_600_000;
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// The daily shape of a consumer's traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// Office hours in its own time zone; nights and weekends nearly silent.
    Business,
    /// Around the clock with a mild daily wave (a busy platform partner).
    AlwaysOn,
    /// Consumer-app backend: afternoons and evenings, weekends busier.
    Evening,
    /// Mostly a daily batch job at a fixed hour, little in between.
    Batch,
}

/// One endpoint in a consumer's set, with its habits on it.
#[derive(Debug, Clone, PartialEq)]
pub struct UsedEndpoint {
    pub endpoint: u16,
    /// Relative share of the consumer's calls.
    pub weight: f64,
    /// Mean recency (in own objects) of the objects it reads: small = a hot working set.
    pub working_set: f64,
    /// Zipf exponent over catalogue popularity.
    pub zipf: f64,
    /// How many catalogue objects it ever looks at.
    pub catalogue_span: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorRates {
    pub p401: f64,
    pub p403: f64,
    /// 404 rate on endpoints with IDs (a fifth of it elsewhere).
    pub p404: f64,
    pub p5xx: f64,
}

impl ErrorRates {
    /// Probability that a call to an endpoint answers 401, 403 or 404.
    pub fn probe_rate(&self, has_ids: bool) -> f64 {
        let p404 = if has_ids { self.p404 } else { self.p404 * 0.2 };
        self.p401 + self.p403 + p404
    }
}

/// Where a consumer's requests come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Origins {
    /// Fixed egress networks: first three octets (IPv4) or first six bytes (IPv6 /48).
    pub networks: Vec<[u8; 6]>,
    pub v6: bool,
    /// Hosts used inside each network.
    pub hosts: u8,
    /// Cloud egress: a rotating set of /24s inside one /16 instead of fixed networks.
    pub cloud: Option<Cloud>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cloud {
    pub net16: [u8; 2],
    /// /24s in use on any day.
    pub active: u64,
    /// /24s replaced per day.
    pub churn: u64,
    pub salt: u64,
}

/// Benign events: real partners do these, and they are not attacks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Events {
    /// A day (index) of extra legitimate traffic, and its factor.
    pub busy_day: Option<(u64, f64)>,
    /// Starts using a common endpoint, ramping up over three days from this time.
    pub adoption: Option<(u16, u64, f64)>,
    /// Switches to a newer client version (user-agent index) at this time.
    pub ua_upgrade: Option<(u64, u16)>,
    /// Moves its first egress network to a new one at this time.
    pub egress_move: Option<(u64, [u8; 6])>,
    /// Weekly export: local weekday (0 = Monday), local hour, export endpoint.
    pub weekly_job: Option<(u64, u64, u16)>,
    /// Nightly catalogue sync: local hour and how many products it walks in ID order.
    pub catalogue_sync: Option<(u64, u64)>,
}

/// One scenario consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerProfile {
    pub index: u32,
    /// The raw API key a filter would see (for routing through the real pipeline).
    pub api_key: String,
    pub label: String,
    pub shape: Shape,
    /// Hours east of UTC.
    pub tz: i64,
    /// Requests per hour at the top of its daily shape, at the scenario's start.
    pub peak_rate: f64,
    /// Share of the peak rate it keeps in its quiet hours.
    pub floor: f64,
    pub weekend: f64,
    /// Batch consumers: local hour of the daily job and its length in hours.
    pub job: (u64, u64),
    /// Relative growth per day (partners grow).
    pub growth: f64,
    /// Sigma of hour-to-hour log-normal noise on the rate.
    pub hour_sigma: f64,
    /// Sigma of hour-to-hour log-normal noise on each endpoint's share.
    pub mix_sigma: f64,
    pub endpoints: Vec<UsedEndpoint>,
    pub errors: ErrorRates,
    /// Multiplies response sizes (page sizes, fields requested).
    pub size_factor: f64,
    /// This consumer's share of each global sequence, as a stride: it owns every ~stride-th ID.
    pub stride: u64,
    pub origins: Origins,
    /// Indices into the scenario's user agents; requests pick among them.
    pub user_agents: Vec<u16>,
    pub events: Events,
}

fn bump(h: f64, from: f64, to: f64) -> f64 {
    if h <= from || h >= to {
        return 0.0;
    }
    let x = std::f64::consts::PI * (h - from) / (to - from);
    x.sin().powi(2)
}

impl ConsumerProfile {
    /// Local hour of day (fractional) and local weekday (0 = Monday) at a Unix time.
    pub fn local_time(&self, t_ms: u64) -> (f64, u64) {
        let local = t_ms as i64 + self.tz * HOUR_MS as i64;
        let local = local.max(0) as u64;
        let day = local / DAY_MS;
        let hour = (local % DAY_MS) as f64 / HOUR_MS as f64;
        (hour, (day + 3) % 7)
    }

    /// Daily shape at a local hour, 0..1 of the peak.
    pub fn shape_at(&self, hour: f64) -> f64 {
        match self.shape {
            Shape::Business => self.floor + (1.0 - self.floor) * bump(hour, 7.5, 18.5),
            Shape::AlwaysOn => 0.65 + 0.35 * (std::f64::consts::TAU * (hour - 14.0) / 24.0).cos(),
            Shape::Evening => {
                let h = if hour < 3.0 { hour + 24.0 } else { hour };
                self.floor + (1.0 - self.floor) * bump(h, 14.0, 26.5)
            }
            Shape::Batch => {
                let (start, len) = self.job;
                let since = (hour - start as f64).rem_euclid(24.0);
                if since < len as f64 {
                    1.0
                } else {
                    self.floor * (0.5 + 0.5 * bump(hour, 7.0, 19.0))
                }
            }
        }
    }

    /// Expected requests per hour at a time, before noise and events.
    pub fn rate_at(&self, t_ms: u64, start_ms: u64) -> f64 {
        let (hour, weekday) = self.local_time(t_ms);
        let weekend = if weekday >= 5 { self.weekend } else { 1.0 };
        let days = t_ms.saturating_sub(start_ms) as f64 / DAY_MS as f64;
        self.peak_rate * self.shape_at(hour) * weekend * (1.0 + self.growth).powf(days)
    }

    /// Quiet enough at this time that activity stands out (for placing off-hours attacks).
    pub fn is_quiet(&self, t_ms: u64) -> bool {
        let (hour, weekday) = self.local_time(t_ms);
        let weekend = if weekday >= 5 { self.weekend } else { 1.0 };
        self.shape_at(hour) * weekend <= 0.1
    }

    /// Busy enough at this time to be in its normal active hours.
    pub fn is_active(&self, t_ms: u64) -> bool {
        let (hour, weekday) = self.local_time(t_ms);
        let weekend = if weekday >= 5 { self.weekend } else { 1.0 };
        self.shape_at(hour) * weekend >= 0.5
    }

    pub fn has_quiet_hours(&self) -> bool {
        self.shape != Shape::AlwaysOn
    }

    pub fn uses(&self, endpoint: u16) -> bool {
        self.endpoints.iter().any(|e| e.endpoint == endpoint)
    }

    /// Its most used endpoint with IDs, if any.
    pub fn main_id_endpoint(&self) -> Option<&UsedEndpoint> {
        self.endpoints
            .iter()
            .filter(|e| CATALOGUE[e.endpoint as usize].has_ids())
            .max_by(|a, b| a.weight.total_cmp(&b.weight))
    }

    /// The egress address of a request at a time (picks a network and host).
    pub fn client_at(&self, t_ms: u64, rng: &mut Rng) -> Addr {
        if let Some(cloud) = self.origins.cloud {
            let day = t_ms / DAY_MS;
            let j = day * cloud.churn + rng.below(cloud.active);
            let third = (crate::observation::mix64(cloud.salt ^ j) % 256) as u8;
            let host = 1 + rng.below(254) as u8;
            return Addr::V4([cloud.net16[0], cloud.net16[1], third, host]);
        }
        let mut networks = self.origins.networks.clone();
        if let Some((at, network)) = self.events.egress_move {
            if t_ms >= at {
                networks[0] = network;
            }
        }
        let network = networks[rng.below(networks.len() as u64) as usize];
        let host = 10 + rng.below(u64::from(self.origins.hosts)) as u8;
        if self.origins.v6 {
            let mut o = [0u8; 16];
            o[..6].copy_from_slice(&network);
            o[7] = host;
            o[15] = 1;
            Addr::V6(o)
        } else {
            Addr::V4([network[0], network[1], network[2], host])
        }
    }

    /// The user agent of a request at a time.
    pub fn user_agent_at(&self, t_ms: u64, rng: &mut Rng) -> u16 {
        let i = rng.below(self.user_agents.len() as u64) as usize;
        match self.events.ua_upgrade {
            Some((at, upgraded)) if t_ms >= at && i == 0 => upgraded,
            _ => self.user_agents[i],
        }
    }
}

/// A public-looking IPv4 /24 or IPv6 /48 network.
pub fn random_network(rng: &mut Rng, v6: bool) -> [u8; 6] {
    if v6 {
        let mut n = [0x20, 0x01, 0, 0, 0, 0];
        for byte in n.iter_mut().skip(2) {
            *byte = rng.below(256) as u8;
        }
        return n;
    }
    let first = [
        3u8, 18, 20, 34, 35, 44, 52, 54, 63, 64, 81, 85, 91, 104, 141, 185, 193, 212,
    ];
    let a = first[rng.below(first.len() as u64) as usize];
    [a, rng.below(256) as u8, rng.below(256) as u8, 0, 0, 0]
}

/// Builds consumer profiles and the user-agent table they index.
pub struct ProfileBuilder<'a> {
    pub seed: u64,
    pub start_ms: u64,
    pub days: u64,
    pub learning_days: u64,
    pub user_agents: &'a mut Vec<String>,
}

const SDKS: &[&str] = &[
    "okhttp",
    "python-requests",
    "Go-http-client",
    "axios",
    "Apache-HttpClient",
    "node-fetch",
    "RestSharp",
    "Faraday",
];

impl ProfileBuilder<'_> {
    pub fn build(&mut self, index: u32) -> ConsumerProfile {
        let mut rng = Rng::derive(self.seed, &[1, u64::from(index)]);
        let shape = match rng.f64() {
            x if x < 0.45 => Shape::Business,
            x if x < 0.70 => Shape::AlwaysOn,
            x if x < 0.85 => Shape::Evening,
            _ => Shape::Batch,
        };
        let endpoints = pick_endpoints(&mut rng);
        let user_agents = self.pick_user_agents(&mut rng, index);
        let mut profile = ConsumerProfile {
            index,
            api_key: format!("pk_live_{:016x}", rng.next_u64()),
            label: format!("partner-{index:03}"),
            shape,
            tz: [-8i64, -5, -3, 0, 1, 2, 3, 5, 8, 9][rng.below(10) as usize],
            peak_rate: rng.log_range(5.0, 2_000.0),
            floor: match shape {
                Shape::Business => rng.range(0.01, 0.05),
                Shape::Evening => rng.range(0.05, 0.1),
                Shape::Batch => rng.range(0.04, 0.12),
                Shape::AlwaysOn => 0.3,
            },
            weekend: match shape {
                Shape::Business => rng.range(0.05, 0.3),
                Shape::AlwaysOn => rng.range(0.7, 1.0),
                Shape::Evening => rng.range(1.05, 1.3),
                Shape::Batch => rng.range(0.6, 1.0),
            },
            job: (rng.below(24), 1 + rng.below(2)),
            growth: rng.range(-0.005, 0.03),
            hour_sigma: rng.range(0.1, 0.3),
            mix_sigma: rng.range(0.05, 0.25),
            endpoints,
            errors: ErrorRates {
                p401: rng.log_range(0.0002, 0.003),
                p403: rng.log_range(0.0005, 0.005),
                p404: rng.log_range(0.002, 0.03),
                p5xx: rng.log_range(0.0005, 0.005),
            },
            size_factor: rng.log_range(0.5, 2.0),
            stride: rng.log_range(3.0, 400.0).round() as u64,
            origins: pick_origins(&mut rng),
            user_agents,
            events: Events::default(),
        };
        self.add_events(&mut rng, &mut profile);
        profile
    }

    fn pick_user_agents(&mut self, rng: &mut Rng, index: u32) -> Vec<u16> {
        let count = if rng.chance(0.2) { 2 } else { 1 };
        (0..count)
            .map(|i| {
                let name = if rng.chance(0.4) {
                    format!(
                        "partner-{index:03}-{}/{}.{}.{}",
                        ["sync", "connector", "erp", "bridge"][i],
                        1 + rng.below(4),
                        rng.below(20),
                        rng.below(10)
                    )
                } else {
                    let sdk = SDKS[rng.below(SDKS.len() as u64) as usize];
                    format!(
                        "{sdk}/{}.{}.{}",
                        1 + rng.below(4),
                        rng.below(30),
                        rng.below(10)
                    )
                };
                self.intern(name)
            })
            .collect()
    }

    fn intern(&mut self, name: String) -> u16 {
        if let Some(i) = self.user_agents.iter().position(|u| *u == name) {
            return i as u16;
        }
        self.user_agents.push(name);
        (self.user_agents.len() - 1) as u16
    }

    fn random_time(&self, rng: &mut Rng, from_day: f64, to_day: f64) -> u64 {
        self.start_ms + (rng.range(from_day, to_day) * DAY_MS as f64) as u64
    }

    fn add_events(&mut self, rng: &mut Rng, p: &mut ConsumerProfile) {
        let learning = self.learning_days as f64;
        let days = self.days as f64;
        if rng.chance(0.10) {
            let day = self.learning_days + rng.below(self.days - self.learning_days);
            p.events.busy_day = Some((day, rng.range(1.4, 1.8)));
        }
        if rng.chance(0.10) {
            if let Some(endpoint) = pick_unused_common(rng, p) {
                let at = self.random_time(rng, learning, days - 3.0);
                let weight = median_weight(p);
                p.events.adoption = Some((endpoint, at, weight));
            }
        }
        if rng.chance(0.20) {
            let old = &self.user_agents[p.user_agents[0] as usize];
            let family = old.split('/').next().unwrap_or("client").to_string();
            let newer = format!("{family}/{}.{}.0", 5 + rng.below(3), rng.below(10));
            let at = self.random_time(rng, 3.0, days - 1.0);
            p.events.ua_upgrade = Some((at, self.intern(newer)));
        }
        if p.origins.cloud.is_none() && rng.chance(0.05) {
            let at = self.random_time(rng, learning + 1.0, days - 1.0);
            p.events.egress_move = Some((at, random_network(rng, p.origins.v6)));
        }
        if p.shape != Shape::Evening && rng.chance(0.05) {
            let export = catalogue::sensitive_endpoints().take(2).collect::<Vec<_>>();
            let endpoint = export[rng.below(2) as usize] as u16;
            p.events.weekly_job = Some((rng.below(5), 5 + rng.below(4), endpoint));
        }
        let has_products = p.uses(13) || p.uses(14);
        if has_products && rng.chance(0.12) {
            p.events.catalogue_sync = Some((rng.below(6), rng.log_range(150.0, 1_500.0) as u64));
        }
        if rng.chance(0.015) {
            let legacy: Vec<usize> = catalogue::legacy().collect();
            let endpoint = legacy[rng.below(legacy.len() as u64) as usize] as u16;
            p.endpoints
                .push(used_endpoint(rng, endpoint, median_weight(p)));
        }
    }
}

fn used_endpoint(rng: &mut Rng, endpoint: u16, weight: f64) -> UsedEndpoint {
    let span = match CATALOGUE[endpoint as usize].ids {
        Ids::Catalogue { size } => (rng.log_range(50.0, size as f64) as u64).max(10),
        _ => 0,
    };
    UsedEndpoint {
        endpoint,
        weight,
        working_set: rng.log_range(15.0, 4_000.0),
        zipf: rng.range(0.7, 1.2),
        catalogue_span: span,
    }
}

/// 3 to 20 common endpoints, drawn by popularity, with Zipf-like shares.
fn pick_endpoints(rng: &mut Rng) -> Vec<UsedEndpoint> {
    let count = if rng.chance(0.15) {
        14 + rng.below(7)
    } else {
        3 + rng.below(9)
    };
    let mut candidates: Vec<(usize, f64)> = CATALOGUE
        .iter()
        .enumerate()
        .filter(|(_, e)| e.popularity > 0.0)
        .map(|(i, e)| (i, e.popularity))
        .collect();
    let exponent = rng.range(0.6, 1.4);
    let mut chosen = Vec::new();
    while chosen.len() < count as usize && !candidates.is_empty() {
        let mut cumulative = Vec::with_capacity(candidates.len());
        let mut total = 0.0;
        for (_, popularity) in &candidates {
            total += popularity;
            cumulative.push(total);
        }
        let (endpoint, _) = candidates.remove(rng.weighted(&cumulative));
        let rank = chosen.len() as f64 + 1.0;
        let weight = rng.range(0.5, 1.5) / rank.powf(exponent);
        chosen.push(used_endpoint(rng, endpoint as u16, weight));
    }
    chosen
}

fn pick_origins(rng: &mut Rng) -> Origins {
    if rng.chance(0.15) {
        let first = [3u8, 18, 34, 35, 52, 54][rng.below(6) as usize];
        let cloud = Cloud {
            net16: [first, rng.below(256) as u8],
            active: 3 + rng.below(8),
            churn: 1 + rng.below(2),
            salt: rng.next_u64(),
        };
        return Origins {
            networks: Vec::new(),
            v6: false,
            hosts: 0,
            cloud: Some(cloud),
        };
    }
    let v6 = rng.chance(0.1);
    let count = if rng.chance(0.15) { 2 } else { 1 };
    Origins {
        networks: (0..count).map(|_| random_network(rng, v6)).collect(),
        v6,
        hosts: 1 + rng.below(3) as u8,
        cloud: None,
    }
}

fn pick_unused_common(rng: &mut Rng, p: &ConsumerProfile) -> Option<u16> {
    let unused: Vec<u16> = CATALOGUE
        .iter()
        .enumerate()
        .filter(|(i, e)| e.popularity >= 0.2 && !p.uses(*i as u16))
        .map(|(i, _)| i as u16)
        .collect();
    if unused.is_empty() {
        return None;
    }
    Some(unused[rng.below(unused.len() as u64) as usize])
}

fn median_weight(p: &ConsumerProfile) -> f64 {
    let mut weights: Vec<f64> = p.endpoints.iter().map(|e| e.weight).collect();
    weights.sort_by(f64::total_cmp);
    weights.get(weights.len() / 2).copied().unwrap_or(1.0)
}
