//! Labelled abuse injected into the scenario after the learning period: one kind per detector,
//! each at a strength (2×, 5×, 20×) of the consumer's own baseline on the abused feature.
//!
//! What "k× its own baseline" means for each kind (the generator computes it per hour from the
//! consumer's normal traffic in that same hour, so the multiple holds as the consumer's rate
//! moves through the day):
//!
//! | kind | abused feature | attack hour carries |
//! |---|---|---|
//! | enumeration | distinct objects per hour on its busiest ID endpoint | (k-1)×B extra requests on new objects, B = that hour's normal distinct objects (≥ 1); half the attacks walk IDs in order (+1) where the IDs are numbers, half pick them at random |
//! | volume_surge | requests per hour | (k-1)× the hour's normal rate extra, same mix and habits |
//! | endpoint_mix_drift | distance of the hour's endpoint mix from its usual mix | a share f = min(0.9, k×D) of its calls moved to other endpoints, D = its usual hourly distance (simulated from its own rate, mix and noise) |
//! | credential_sharing | distinct client networks (/24, /48) per hour | (k-1)×B new networks using the key, B = its usual distinct networks per hour; half with tool user agents |
//! | error_probing | 401/403/404 answers per hour | (k-1)×B extra error answers on guessed IDs and forbidden calls, B = the hour's expected errors (≥ 1) |
//! | exfiltration | response bytes per hour | every successful response k× larger (bigger pages) |
//! | off_hours | requests in an hour where it is normally quiet | (k-1)×max(rate, 1) extra requests in such hours |
//! | first_use | calls to a sensitive or legacy endpoint it never used | k calls per hour (its baseline is zero) |

use super::catalogue::{self, Ids, CATALOGUE};
use super::profile::{random_network, ConsumerProfile, DAY_MS, HOUR_MS};
use super::rng::Rng;
use crate::alert::Detector;

/// How an attack goes about its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Variant {
    Plain,
    /// Enumeration by walking numeric IDs upward from a start.
    Walk {
        from: u64,
    },
    /// Enumeration of objects picked at random.
    RandomIds,
    /// Mix drift: share of calls moved to these endpoints (new to it, or its own rare ones).
    Drift {
        share: f64,
        to: Vec<u16>,
        new_endpoints: bool,
    },
    /// Credential sharing: the networks using the key, and whether they send tool user agents.
    Origins {
        networks: Vec<[u8; 6]>,
        tool_agents: bool,
    },
}

/// One injected abuse episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Attack {
    /// Its index in [`super::Scenario::attacks`] (attacks are in start order).
    pub id: u32,
    pub consumer: u32,
    /// The detector meant to catch it.
    pub kind: Detector,
    /// Multiple of the consumer's own baseline on the abused feature.
    pub strength: u32,
    pub start_ms: u64,
    pub end_ms: u64,
    /// The endpoint it works on, where one applies.
    pub endpoint: Option<u16>,
    pub variant: Variant,
}

impl Attack {
    /// Share of an hour starting at `t0` that the attack covers, and the covered span.
    pub fn overlap(&self, t0: u64) -> Option<(f64, u64, u64)> {
        let from = self.start_ms.max(t0);
        let to = self.end_ms.min(t0 + HOUR_MS);
        (from < to).then(|| ((to - from) as f64 / HOUR_MS as f64, from, to))
    }
}

/// Fixes which consumer gets which attack, when, and how.
pub struct Scheduler<'a> {
    pub seed: u64,
    pub start_ms: u64,
    pub learning_days: u64,
    pub days: u64,
    pub per_cell: u32,
    pub strengths: [u32; 3],
    pub profiles: &'a [ConsumerProfile],
}

/// Order matters: the most constrained kinds pick consumers first.
const KINDS: [Detector; 8] = [
    Detector::OffHours,
    Detector::Enumeration,
    Detector::VolumeSurge,
    Detector::EndpointMixDrift,
    Detector::CredentialSharing,
    Detector::ErrorProbing,
    Detector::Exfiltration,
    Detector::FirstUse,
];

impl Scheduler<'_> {
    /// Every kind × strength gets `per_cell` attacks, each on a different consumer (cells are
    /// left short when consumers run out).
    pub fn schedule(&self) -> Vec<Attack> {
        let mut rng = Rng::derive(self.seed, &[2]);
        let mut order: Vec<u32> = (0..self.profiles.len() as u32).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut taken = vec![false; self.profiles.len()];
        let mut attacks = Vec::new();
        for kind in KINDS {
            for strength in self.strengths {
                for _ in 0..self.per_cell {
                    let Some(c) = self.next_free(&order, &taken, kind) else {
                        continue;
                    };
                    taken[c as usize] = true;
                    let id = attacks.len() as u32;
                    attacks.push(self.attack(&mut rng, id, c, kind, strength));
                }
            }
        }
        attacks.sort_by_key(|a| (a.start_ms, a.id));
        for (i, attack) in attacks.iter_mut().enumerate() {
            attack.id = i as u32;
        }
        attacks
    }

    fn next_free(&self, order: &[u32], taken: &[bool], kind: Detector) -> Option<u32> {
        order
            .iter()
            .copied()
            .find(|c| !taken[*c as usize] && eligible(&self.profiles[*c as usize], kind))
    }

    fn attack(&self, rng: &mut Rng, id: u32, c: u32, kind: Detector, strength: u32) -> Attack {
        let p = &self.profiles[c as usize];
        let (start_ms, end_ms) = if kind == Detector::OffHours {
            self.quiet_span(rng, p)
        } else {
            self.active_span(rng, p)
        };
        let mut attack = Attack {
            id,
            consumer: c,
            kind,
            strength,
            start_ms,
            end_ms,
            endpoint: None,
            variant: Variant::Plain,
        };
        self.shape(rng, p, &mut attack);
        attack
    }

    fn shape(&self, rng: &mut Rng, p: &ConsumerProfile, a: &mut Attack) {
        let k = f64::from(a.strength);
        match a.kind {
            Detector::Enumeration => {
                let target = p.main_id_endpoint().map(|e| e.endpoint).unwrap_or(1);
                a.endpoint = Some(target);
                a.variant = match CATALOGUE[target as usize].ids {
                    Ids::Sequence { family } if rng.chance(0.5) => {
                        let (head, _) = catalogue::sequence_start(family);
                        Variant::Walk {
                            from: head - rng.below(head / 2),
                        }
                    }
                    Ids::Catalogue { size } if rng.chance(0.5) => Variant::Walk {
                        from: 1 + rng.below(size / 2),
                    },
                    _ => Variant::RandomIds,
                };
            }
            Detector::EndpointMixDrift => {
                let d = usual_mix_distance(rng, p, p.rate_at(a.start_ms, self.start_ms));
                let (to, new_endpoints) = drift_targets(rng, p);
                a.variant = Variant::Drift {
                    share: (k * d).min(0.9),
                    to,
                    new_endpoints,
                };
            }
            Detector::CredentialSharing => {
                let usual = usual_networks(p, p.rate_at(a.start_ms, self.start_ms));
                let extra = ((k - 1.0) * usual).round().max(1.0) as usize;
                a.variant = Variant::Origins {
                    networks: (0..extra).map(|_| random_network(rng, false)).collect(),
                    tool_agents: rng.chance(0.5),
                };
            }
            Detector::FirstUse => {
                let pool: Vec<usize> = if rng.chance(0.7) {
                    catalogue::sensitive_endpoints().collect()
                } else {
                    catalogue::legacy().collect()
                };
                let unused: Vec<usize> = pool
                    .into_iter()
                    .filter(|e| !p.uses(*e as u16) && !is_weekly_export(p, *e as u16))
                    .collect();
                let pick = unused[rng.below(unused.len() as u64) as usize];
                a.endpoint = Some(pick as u16);
            }
            _ => {}
        }
    }

    fn eval_day(&self, rng: &mut Rng) -> u64 {
        let first = self.learning_days * 2 + 1;
        let last = self.days * 2 - 2;
        self.start_ms + (first + rng.below(last - first)) * DAY_MS / 2
    }

    /// 2.5 to 6 hours starting inside its active hours.
    fn active_span(&self, rng: &mut Rng, p: &ConsumerProfile) -> (u64, u64) {
        for _ in 0..200 {
            let day = self.eval_day(rng);
            let offset = rng.below(24);
            for h in 0..24 {
                let t = day + ((offset + h) % 24) * HOUR_MS;
                if p.is_active(t) && p.is_active(t + HOUR_MS / 2) {
                    let start = t + rng.below(HOUR_MS / 2);
                    let len = (rng.range(2.5, 6.0) * HOUR_MS as f64) as u64;
                    return (start, start + len);
                }
            }
        }
        let start = self.eval_day(rng);
        (start, start + 3 * HOUR_MS)
    }

    /// 2.5 to 3.5 hours, all of it in hours when the consumer is normally quiet.
    fn quiet_span(&self, rng: &mut Rng, p: &ConsumerProfile) -> (u64, u64) {
        for _ in 0..200 {
            let day = self.eval_day(rng);
            let offset = rng.below(24);
            for h in 0..24 {
                let t = day + ((offset + h) % 24) * HOUR_MS;
                let len = (rng.range(2.5, 3.5) * HOUR_MS as f64) as u64;
                let quiet = (0..=4).all(|q| p.is_quiet(t + q * len / 4));
                if quiet {
                    return (t, t + len);
                }
            }
        }
        let start = self.eval_day(rng);
        (start, start + 3 * HOUR_MS)
    }
}

fn eligible(p: &ConsumerProfile, kind: Detector) -> bool {
    match kind {
        Detector::OffHours => p.has_quiet_hours(),
        Detector::Enumeration => p.main_id_endpoint().is_some(),
        _ => true,
    }
}

fn is_weekly_export(p: &ConsumerProfile, endpoint: u16) -> bool {
    p.events.weekly_job.is_some_and(|(_, _, e)| e == endpoint)
}

/// Half the drifts move calls to common endpoints it never used, half to its own least-used
/// ones (when it has more than one).
fn drift_targets(rng: &mut Rng, p: &ConsumerProfile) -> (Vec<u16>, bool) {
    if p.endpoints.len() >= 3 && rng.chance(0.5) {
        let mut own: Vec<_> = p.endpoints.iter().collect();
        own.sort_by(|a, b| a.weight.total_cmp(&b.weight));
        return (own.iter().take(2).map(|e| e.endpoint).collect(), false);
    }
    let mut fresh: Vec<u16> = CATALOGUE
        .iter()
        .enumerate()
        .filter(|(i, e)| e.popularity >= 0.1 && !p.uses(*i as u16))
        .map(|(i, _)| i as u16)
        .collect();
    for i in (1..fresh.len()).rev() {
        fresh.swap(i, rng.below(i as u64 + 1) as usize);
    }
    fresh.truncate(1 + rng.below(3) as usize);
    (fresh, true)
}

/// Mean total-variation distance between an hour's endpoint mix and the consumer's usual
/// mix, from its own hourly rate, share noise and sampling (Monte Carlo).
pub fn usual_mix_distance(rng: &mut Rng, p: &ConsumerProfile, rate: f64) -> f64 {
    let total: f64 = p.endpoints.iter().map(|e| e.weight).sum();
    let usual: Vec<f64> = p.endpoints.iter().map(|e| e.weight / total).collect();
    let rounds = 200;
    let mut sum = 0.0;
    for _ in 0..rounds {
        let noisy = rate * rng.lognormal_unit(p.hour_sigma);
        let n = rng.poisson(noisy).max(1);
        let weights: Vec<f64> = p
            .endpoints
            .iter()
            .map(|e| e.weight * rng.lognormal_unit(p.mix_sigma))
            .collect();
        let mut cumulative = Vec::with_capacity(weights.len());
        let mut acc = 0.0;
        for w in &weights {
            acc += w;
            cumulative.push(acc);
        }
        let mut counts = vec![0u64; weights.len()];
        for _ in 0..n {
            counts[rng.weighted(&cumulative)] += 1;
        }
        let tv: f64 = counts
            .iter()
            .zip(&usual)
            .map(|(c, q)| (*c as f64 / n as f64 - q).abs())
            .sum();
        sum += tv / 2.0;
    }
    sum / f64::from(rounds)
}

/// Expected distinct egress networks in an hour at this rate.
pub fn usual_networks(p: &ConsumerProfile, rate: f64) -> f64 {
    let pool = match p.origins.cloud {
        Some(cloud) => cloud.active as f64,
        None => p.origins.networks.len() as f64,
    };
    pool * (1.0 - (1.0 - 1.0 / pool).powf(rate.max(1.0)))
}
