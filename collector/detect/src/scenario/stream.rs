//! The scenario's request stream: hour by hour, every consumer's normal traffic, its benign
//! events, platform incidents and the attacks on it, merged in time order.
//!
//! Each consumer-hour draws from its own seeded sub-stream, so the records do not depend on
//! how many are generated or in what order they are consumed.

use super::attack::{Attack, Variant};
use super::catalogue::{self, EndpointSpec, Ids, CATALOGUE};
use super::profile::{ConsumerProfile, UsedEndpoint, HOUR_MS};
use super::rng::Rng;
use super::Scenario;
use crate::alert::Detector;
use crate::observation::mix64;
use hashbrown::HashSet;
use plumbline_wire::Addr;

/// The ID in a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectId {
    Number(u64),
    Uuid(u128),
}

impl ObjectId {
    /// As it appears in the path.
    pub fn render(&self) -> String {
        match self {
            ObjectId::Number(n) => n.to_string(),
            ObjectId::Uuid(u) => {
                let h = format!("{u:032x}");
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                )
            }
        }
    }
}

/// One generated request: what a filter would record, plus the label of the attack that made
/// or changed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenRecord {
    pub time_ms: u64,
    /// Index into [`Scenario::consumers`].
    pub consumer: u32,
    /// Index into [`catalogue::CATALOGUE`].
    pub endpoint: u16,
    pub object: Option<ObjectId>,
    pub status: u16,
    pub request_bytes: u32,
    pub response_bytes: u64,
    pub client: Addr,
    /// Index into [`Scenario::user_agents`].
    pub user_agent: u16,
    /// Index into [`Scenario::attacks`] when an attack made or changed this request.
    pub attack: Option<u32>,
}

impl GenRecord {
    pub fn spec(&self) -> &'static EndpointSpec {
        &CATALOGUE[self.endpoint as usize]
    }

    pub fn method(&self) -> &'static str {
        self.spec().method
    }

    /// The request path as a client sends it (IDs filled in).
    pub fn path(&self) -> String {
        let template = self.spec().path;
        match self.object {
            Some(object) => template.replace("{id}", &object.render()),
            None => template.to_string(),
        }
    }
}

/// Iterator over a scenario's records in time order.
pub struct Records<'a> {
    scenario: &'a Scenario,
    hour: u64,
    hours: u64,
    buffer: Vec<GenRecord>,
    next: usize,
    /// Attacks of each consumer.
    by_consumer: Vec<Vec<u32>>,
    /// Next ID of each walking enumeration.
    walk_next: Vec<u64>,
}

impl<'a> Records<'a> {
    pub(super) fn new(scenario: &'a Scenario) -> Records<'a> {
        let mut by_consumer = vec![Vec::new(); scenario.consumers.len()];
        let mut walk_next = vec![0; scenario.attacks.len()];
        for (i, attack) in scenario.attacks.iter().enumerate() {
            by_consumer[attack.consumer as usize].push(i as u32);
            if let Variant::Walk { from } = attack.variant {
                walk_next[i] = from;
            }
        }
        Records {
            scenario,
            hour: 0,
            hours: scenario.config.days * 24,
            buffer: Vec::new(),
            next: 0,
            by_consumer,
            walk_next,
        }
    }

    fn fill(&mut self) {
        self.buffer.clear();
        self.next = 0;
        for c in 0..self.scenario.consumers.len() {
            self.consumer_hour(c);
        }
        self.buffer.sort_by_key(|r| (r.time_ms, r.consumer));
        self.hour += 1;
    }

    fn consumer_hour(&mut self, c: usize) {
        let s = self.scenario;
        let p = &s.consumers[c];
        let t0 = s.config.start_ms + self.hour * HOUR_MS;
        let mut rng = Rng::derive(s.config.seed, &[3, c as u64, self.hour]);
        let first = self.buffer.len();

        let rate = s.hourly_rate(p, t0, self.hour);
        let mix = s.hour_mix(p, t0, &mut rng);
        let n = rng.poisson(rate);
        for _ in 0..n {
            let t = t0 + rng.below(HOUR_MS);
            let used = &mix.endpoints[rng.weighted(&mix.cumulative)];
            let record = s.request(p, used, t, &mut rng);
            self.buffer.push(record);
        }
        s.benign_extras(p, t0, &mut rng, &mut self.buffer);

        for a in self.by_consumer[c].clone() {
            self.apply_attack(a, p, t0, rate, first, &mut rng);
        }
    }

    fn apply_attack(
        &mut self,
        a: u32,
        p: &ConsumerProfile,
        t0: u64,
        rate: f64,
        first: usize,
        rng: &mut Rng,
    ) {
        let s = self.scenario;
        let attack = &s.attacks[a as usize];
        let Some((frac, from, to)) = attack.overlap(t0) else {
            return;
        };
        let k = f64::from(attack.strength);
        let label = Some(a);
        let mix = s.hour_mix(p, t0, rng);
        let extra = |records: &mut Vec<GenRecord>, rng: &mut Rng, count: u64| {
            for _ in 0..count {
                let t = from + rng.below(to - from);
                let used = &mix.endpoints[rng.weighted(&mix.cumulative)];
                let mut record = s.request(p, used, t, rng);
                record.attack = label;
                records.push(record);
            }
        };
        match attack.kind {
            Detector::VolumeSurge => {
                let count = rng.poisson((k - 1.0) * rate * frac);
                extra(&mut self.buffer, rng, count);
            }
            Detector::OffHours => {
                let count = rng.poisson((k - 1.0) * rate.max(1.0) * frac);
                extra(&mut self.buffer, rng, count);
            }
            Detector::Enumeration => self.enumerate(a, p, first, frac, from, to, rng),
            Detector::EndpointMixDrift => drift(s, attack, a, p, &mut self.buffer[first..], rng),
            Detector::CredentialSharing => {
                share_key(s, attack, a, p, &mix, frac, from, to, rng, &mut self.buffer)
            }
            Detector::ErrorProbing => {
                let expected: f64 = mix.probe_rate(p) * rate;
                let count = round_random(rng, (k - 1.0) * expected.max(1.0) * frac);
                for _ in 0..count {
                    let t = from + rng.below(to - from);
                    let record = probe(s, p, t, rng, label);
                    self.buffer.push(record);
                }
            }
            Detector::Exfiltration => {
                for r in &mut self.buffer[first..] {
                    if r.time_ms >= from && r.time_ms < to && r.status < 300 {
                        r.response_bytes = (r.response_bytes as f64 * k) as u64;
                        r.attack = label;
                    }
                }
            }
            Detector::FirstUse => {
                let count = round_random(rng, k * frac);
                let endpoint = attack.endpoint.unwrap_or(0);
                let used = default_habits(endpoint);
                for _ in 0..count {
                    let t = from + rng.below(to - from);
                    let mut record = s.request(p, &used, t, rng);
                    record.status = 200;
                    record.attack = label;
                    self.buffer.push(record);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn enumerate(
        &mut self,
        a: u32,
        p: &ConsumerProfile,
        first: usize,
        frac: f64,
        from: u64,
        to: u64,
        rng: &mut Rng,
    ) {
        let s = self.scenario;
        let attack = &s.attacks[a as usize];
        let target = attack.endpoint.unwrap_or(1);
        let distinct: HashSet<ObjectId> = self.buffer[first..]
            .iter()
            .filter(|r| r.endpoint == target && r.attack.is_none())
            .filter_map(|r| r.object)
            .collect();
        let usual = (distinct.len() as f64).max(1.0);
        let count = round_random(rng, (f64::from(attack.strength) - 1.0) * usual * frac);
        let spec = &CATALOGUE[target as usize];
        let used = p
            .endpoints
            .iter()
            .find(|e| e.endpoint == target)
            .cloned()
            .unwrap_or_else(|| default_habits(target));
        let mut times: Vec<u64> = (0..count).map(|_| from + rng.below(to - from)).collect();
        times.sort_unstable();
        for t in times {
            let mut record = s.request(p, &used, t, rng);
            record.object = Some(match attack.variant {
                Variant::Walk { .. } => {
                    let id = self.walk_next[a as usize];
                    self.walk_next[a as usize] += 1;
                    ObjectId::Number(id)
                }
                _ => random_foreign_object(spec, t, s.config.start_ms, rng),
            });
            let found = rng.chance(0.82);
            record.status = if found { 200 } else { 404 };
            if !found {
                record.response_bytes = 120 + rng.below(300);
            }
            record.attack = Some(a);
            self.buffer.push(record);
        }
    }
}

impl Iterator for Records<'_> {
    type Item = GenRecord;

    fn next(&mut self) -> Option<GenRecord> {
        while self.next >= self.buffer.len() {
            if self.hour >= self.hours {
                return None;
            }
            self.fill();
        }
        let record = self.buffer[self.next];
        self.next += 1;
        Some(record)
    }
}

/// A consumer's endpoint shares for one hour (usual shares with noise, plus adoption).
pub(super) struct HourMix {
    pub endpoints: Vec<UsedEndpoint>,
    pub cumulative: Vec<f64>,
}

impl HourMix {
    /// Share of calls answered 401/403/404 under this mix.
    pub fn probe_rate(&self, p: &ConsumerProfile) -> f64 {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let mut previous = 0.0;
        let mut rate = 0.0;
        for (e, c) in self.endpoints.iter().zip(&self.cumulative) {
            let has_ids = CATALOGUE[e.endpoint as usize].has_ids();
            rate += (c - previous) / total * p.errors.probe_rate(has_ids);
            previous = *c;
        }
        rate
    }
}

impl Scenario {
    /// Expected requests in the hour starting at `t0`, with the consumer's daily and hourly
    /// noise and its benign events.
    pub(super) fn hourly_rate(&self, p: &ConsumerProfile, t0: u64, hour: u64) -> f64 {
        let day = hour / 24;
        let seed = self.config.seed;
        let day_noise = Rng::derive(seed, &[4, u64::from(p.index), day]).lognormal_unit(0.1);
        let hour_noise =
            Rng::derive(seed, &[5, u64::from(p.index), hour]).lognormal_unit(p.hour_sigma);
        let mut rate = p.rate_at(t0 + HOUR_MS / 2, self.config.start_ms) * day_noise * hour_noise;
        if let Some((busy, factor)) = p.events.busy_day {
            if busy == day {
                rate *= factor;
            }
        }
        if weekly_job_hour(p, t0) {
            rate *= 1.8;
        }
        rate
    }

    pub(super) fn hour_mix(&self, p: &ConsumerProfile, t0: u64, rng: &mut Rng) -> HourMix {
        let mut endpoints = p.endpoints.clone();
        for e in &mut endpoints {
            e.weight *= rng.lognormal_unit(p.mix_sigma);
        }
        if let Some((endpoint, at, weight)) = p.events.adoption {
            if t0 >= at {
                let ramp = ((t0 - at) as f64 / (72 * HOUR_MS) as f64).min(1.0);
                endpoints.push(UsedEndpoint {
                    weight: weight * ramp.max(0.02),
                    ..default_habits(endpoint)
                });
            }
        }
        let mut cumulative = Vec::with_capacity(endpoints.len());
        let mut total = 0.0;
        for e in &endpoints {
            total += e.weight;
            cumulative.push(total);
        }
        HourMix {
            endpoints,
            cumulative,
        }
    }

    /// One normal request of this consumer on one of its endpoints.
    pub(super) fn request(
        &self,
        p: &ConsumerProfile,
        used: &UsedEndpoint,
        t: u64,
        rng: &mut Rng,
    ) -> GenRecord {
        let spec = &CATALOGUE[used.endpoint as usize];
        let object = self.own_object(p, used, spec, t, rng);
        let status = self.status(p, used.endpoint, spec, t, rng);
        let response_bytes = if status < 300 {
            (spec.mean_bytes * p.size_factor * rng.lognormal_unit(0.35)) as u64
        } else {
            120 + rng.below(300)
        };
        GenRecord {
            time_ms: t,
            consumer: p.index,
            endpoint: used.endpoint,
            object,
            status,
            request_bytes: if spec.is_write() {
                200 + rng.below(2_800) as u32
            } else {
                0
            },
            response_bytes,
            client: p.client_at(t, rng),
            user_agent: p.user_agent_at(t, rng),
            attack: None,
        }
    }

    fn status(
        &self,
        p: &ConsumerProfile,
        endpoint: u16,
        spec: &EndpointSpec,
        t: u64,
        rng: &mut Rng,
    ) -> u16 {
        for incident in &self.incidents {
            let on_endpoint = incident.endpoint.is_none_or(|e| e == endpoint);
            if on_endpoint && t >= incident.start_ms && t < incident.end_ms {
                if rng.chance(incident.share) {
                    return incident.status;
                }
                break;
            }
        }
        let e = &p.errors;
        let p404 = if spec.has_ids() { e.p404 } else { e.p404 * 0.2 };
        let u = rng.f64();
        let ok = if spec.method == "POST" { 201 } else { 200 };
        match u {
            u if u < e.p401 => 401,
            u if u < e.p401 + e.p403 => 403,
            u if u < e.p401 + e.p403 + p404 => 404,
            u if u < e.p401 + e.p403 + p404 + e.p5xx => 500,
            _ => ok,
        }
    }

    /// An object this consumer owns or looks at, recent ones most.
    fn own_object(
        &self,
        p: &ConsumerProfile,
        used: &UsedEndpoint,
        spec: &EndpointSpec,
        t: u64,
        rng: &mut Rng,
    ) -> Option<ObjectId> {
        let hours = (t.saturating_sub(self.config.start_ms)) as f64 / HOUR_MS as f64;
        let c = u64::from(p.index);
        match spec.ids {
            Ids::None => None,
            Ids::Sequence { family } => {
                let (head, per_hour) = catalogue::sequence_start(family);
                let base = head / 4;
                let owned = ((head - base) as f64 + per_hour * hours) / p.stride as f64;
                let back = rng.exponential(used.working_set);
                let k = (owned - 1.0 - back).max(0.0) as u64;
                let jitter = mix64(c << 8 ^ u64::from(family) ^ k << 20) % p.stride;
                Some(ObjectId::Number(base + k * p.stride + jitter))
            }
            Ids::Catalogue { size } => {
                let rank = rng.zipf(used.catalogue_span.max(1), used.zipf);
                Some(ObjectId::Number(1 + (rank * 7_919) % size))
            }
            Ids::Uuid { family } => {
                let owned = 50_000.0 + hours * 3.0;
                let k = (owned - 1.0 - rng.exponential(used.working_set)).max(0.0) as u64;
                let high = mix64(c ^ u64::from(family) << 40 ^ k << 1);
                let low = mix64(high ^ k);
                Some(ObjectId::Uuid(u128::from(high) << 64 | u128::from(low)))
            }
        }
    }

    /// Weekly export calls and nightly catalogue syncs.
    fn benign_extras(&self, p: &ConsumerProfile, t0: u64, rng: &mut Rng, out: &mut Vec<GenRecord>) {
        if let Some((_, _, endpoint)) = p.events.weekly_job {
            if weekly_job_hour(p, t0) {
                let used = default_habits(endpoint);
                for _ in 0..2 + rng.below(3) {
                    let t = t0 + rng.below(HOUR_MS);
                    let mut record = self.request(p, &used, t, rng);
                    record.status = 200;
                    out.push(record);
                }
            }
        }
        if let Some((hour, count)) = p.events.catalogue_sync {
            let (local, _) = p.local_time(t0);
            if local as u64 == hour {
                let used = default_habits(13);
                let step = HOUR_MS / (count + 1);
                for i in 0..count {
                    let t = t0 + (i + 1) * step;
                    let mut record = self.request(p, &used, t, rng);
                    record.object = Some(ObjectId::Number(1 + i));
                    out.push(record);
                }
            }
        }
    }
}

fn weekly_job_hour(p: &ConsumerProfile, t0: u64) -> bool {
    let Some((weekday, hour, _)) = p.events.weekly_job else {
        return false;
    };
    let (local_hour, local_weekday) = p.local_time(t0);
    local_weekday == weekday && local_hour as u64 == hour
}

/// Habits for an endpoint outside a consumer's usual set.
fn default_habits(endpoint: u16) -> UsedEndpoint {
    UsedEndpoint {
        endpoint,
        weight: 1.0,
        working_set: 200.0,
        zipf: 1.0,
        catalogue_span: 1_000,
    }
}

fn round_random(rng: &mut Rng, x: f64) -> u64 {
    let whole = x.floor();
    whole as u64 + u64::from(rng.chance(x - whole))
}

/// Any object of the API, most of them not this consumer's.
fn random_foreign_object(spec: &EndpointSpec, t: u64, start: u64, rng: &mut Rng) -> ObjectId {
    match spec.ids {
        Ids::Sequence { family } => {
            let (head, per_hour) = catalogue::sequence_start(family);
            let hours = t.saturating_sub(start) as f64 / HOUR_MS as f64;
            let top = head + (per_hour * hours) as u64;
            ObjectId::Number(top - rng.below(top / 2))
        }
        Ids::Catalogue { size } => ObjectId::Number(1 + rng.below(size)),
        _ => ObjectId::Uuid(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())),
    }
}

/// Moves a share of the hour's calls inside the attack span to the drift targets.
fn drift(
    s: &Scenario,
    attack: &Attack,
    a: u32,
    p: &ConsumerProfile,
    records: &mut [GenRecord],
    rng: &mut Rng,
) {
    let Variant::Drift { share, to, .. } = &attack.variant else {
        return;
    };
    for r in records.iter_mut() {
        if r.time_ms < attack.start_ms || r.time_ms >= attack.end_ms || r.attack.is_some() {
            continue;
        }
        if !rng.chance(*share) {
            continue;
        }
        let endpoint = to[rng.below(to.len() as u64) as usize];
        let used = p
            .endpoints
            .iter()
            .find(|e| e.endpoint == endpoint)
            .cloned()
            .unwrap_or_else(|| default_habits(endpoint));
        let mut moved = s.request(p, &used, r.time_ms, rng);
        moved.attack = Some(a);
        *r = moved;
    }
}

/// Requests from the networks a shared or leaked key is used from.
#[allow(clippy::too_many_arguments)]
fn share_key(
    s: &Scenario,
    attack: &Attack,
    a: u32,
    p: &ConsumerProfile,
    mix: &HourMix,
    frac: f64,
    from: u64,
    to: u64,
    rng: &mut Rng,
    out: &mut Vec<GenRecord>,
) {
    let Variant::Origins {
        networks,
        tool_agents,
    } = &attack.variant
    else {
        return;
    };
    for (i, network) in networks.iter().enumerate() {
        if !rng.chance(frac) {
            continue;
        }
        let agent = if *tool_agents {
            s.tool_agent(i)
        } else {
            p.user_agents[0]
        };
        let client = Addr::V4([network[0], network[1], network[2], 1 + rng.below(254) as u8]);
        for _ in 0..1 + rng.poisson(3.0) {
            let t = from + rng.below(to - from);
            let used = &mix.endpoints[rng.weighted(&mix.cumulative)];
            let mut record = s.request(p, used, t, rng);
            record.client = client;
            record.user_agent = agent;
            record.attack = Some(a);
            out.push(record);
        }
    }
}

/// A request that probes: a guessed ID or a call the consumer may not make.
fn probe(
    s: &Scenario,
    p: &ConsumerProfile,
    t: u64,
    rng: &mut Rng,
    label: Option<u32>,
) -> GenRecord {
    let with_ids: Vec<&UsedEndpoint> = p
        .endpoints
        .iter()
        .filter(|e| CATALOGUE[e.endpoint as usize].has_ids())
        .collect();
    let pool: Vec<&UsedEndpoint> = if with_ids.is_empty() {
        p.endpoints.iter().collect()
    } else {
        with_ids
    };
    let used = pool[rng.below(pool.len() as u64) as usize];
    let spec = &CATALOGUE[used.endpoint as usize];
    let mut record = s.request(p, used, t, rng);
    if spec.has_ids() {
        record.object = Some(random_foreign_object(spec, t, s.config.start_ms, rng));
    }
    record.status = match rng.f64() {
        u if u < 0.6 => 404,
        u if u < 0.9 => 403,
        _ => 401,
    };
    record.response_bytes = 120 + rng.below(300);
    record.attack = label;
    record
}
