//! A deterministic scenario generator for evaluating the detectors: partners calling a B2B
//! API for weeks with realistic daily and weekly shapes, noise, growth and benign events, and
//! labelled abusers of every kind injected after the learning period.
//!
//! It emits plain [`GenRecord`]s (time, consumer, method, path, status, bytes, client address,
//! user agent), so the same stream can be fed straight into the [`crate::Engine`] (as
//! `eval-detect` does) or turned into filter records and sent through the collector's real
//! ingest and inventory. The same seed gives the same records on every platform.
//!
//! What is in it (all figures per consumer unless said otherwise):
//! - shape: office hours in its own time zone (45 %), around the clock (25 %), evenings with
//!   busier weekends (15 %), or a daily batch job (15 %); weekends quieter for office partners;
//! - size: peak 5 to 2,000 requests an hour (log-uniform); growth −0.5 % to +3 % a day;
//!   log-normal noise per day (σ 0.1) and per hour (σ 0.1 to 0.3), then Poisson;
//! - endpoints: 3 to 20 of the API's endpoints by popularity, Zipf-like shares with hourly
//!   noise; IDs from global sequences (it owns a thin slice), a shared catalogue (popular items
//!   most), or UUIDs; recent objects most (working sets of 15 to 4,000 objects);
//! - errors: 401, 403, 404 and 5xx rates of its own; response sizes per endpoint with its own
//!   page-size factor; egress from one or two fixed networks (10 % IPv6) or from a rotating
//!   cloud pool of /24s (15 %); one or two user agents;
//! - benign events: a busy day at 1.4 to 1.8× (10 %), adoption of a new common endpoint over
//!   three days (10 %), a client upgrade with a new user agent (20 %), an egress move (5 %),
//!   a weekly export job on a sensitive endpoint (5 %), a nightly catalogue sync walking
//!   product IDs in order (12 % of product readers), a legacy endpoint in use (1.5 %);
//! - platform incidents every consumer sees: a 45-minute 5xx outage, and a 30-minute bad
//!   deploy answering 404 on one popular endpoint;
//! - attacks: see [`attack`] for what each kind at each strength does.

pub mod attack;
pub mod catalogue;
pub mod profile;
pub mod rng;
pub mod stream;

pub use attack::{Attack, Variant};
pub use catalogue::{EndpointSpec, CATALOGUE};
pub use profile::{ConsumerProfile, DAY_MS, HOUR_MS};
pub use stream::{GenRecord, ObjectId, Records};

use plumbline_wire::{consumer_id, ConsumerId};

/// Parameters of a scenario. [`ScenarioConfig::default`] is the evaluation's scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioConfig {
    pub seed: u64,
    pub consumers: u32,
    pub days: u64,
    /// Days before any attack (the detectors' learning period should fit in it).
    pub learning_days: u64,
    /// Unix ms of the first hour (a Monday 00:00 UTC by default).
    pub start_ms: u64,
    /// Attacks per kind and strength.
    pub attacks_per_cell: u32,
    pub strengths: [u32; 3],
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig {
            seed: 20_260_302,
            consumers: 600,
            days: 21,
            learning_days: 7,
            // 2026-03-02T00:00:00Z, a Monday.
            start_ms: 1_772_409_600_000,
            attacks_per_cell: 20,
            strengths: [2, 5, 20],
        }
    }
}

/// A platform-wide incident: every consumer's calls (to one endpoint, or all) get an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub start_ms: u64,
    pub end_ms: u64,
    pub endpoint: Option<u16>,
    pub status: u16,
    /// Share of affected calls that fail.
    pub share: f64,
    pub what: &'static str,
}

/// A generated scenario: who the consumers are, what happens to them, and the records.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub config: ScenarioConfig,
    pub consumers: Vec<ConsumerProfile>,
    pub user_agents: Vec<String>,
    pub attacks: Vec<Attack>,
    pub incidents: Vec<Incident>,
    tool_agents: Vec<u16>,
}

const TOOL_AGENTS: &[&str] = &[
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "PostmanRuntime/7.36.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/121.0 Safari/537.36",
    "okhttp/4.12.0",
];

impl Scenario {
    pub fn new(config: ScenarioConfig) -> Scenario {
        let mut user_agents: Vec<String> = Vec::new();
        let consumers: Vec<ConsumerProfile> = {
            let mut builder = profile::ProfileBuilder {
                seed: config.seed,
                start_ms: config.start_ms,
                days: config.days,
                learning_days: config.learning_days,
                user_agents: &mut user_agents,
            };
            (0..config.consumers).map(|i| builder.build(i)).collect()
        };
        let tool_agents = TOOL_AGENTS
            .iter()
            .map(|name| {
                user_agents.push((*name).to_string());
                (user_agents.len() - 1) as u16
            })
            .collect();
        let attacks = attack::Scheduler {
            seed: config.seed,
            start_ms: config.start_ms,
            learning_days: config.learning_days,
            days: config.days,
            per_cell: config.attacks_per_cell,
            strengths: config.strengths,
            profiles: &consumers,
        }
        .schedule();
        let incidents = incidents(&config);
        Scenario {
            config,
            consumers,
            user_agents,
            attacks,
            incidents,
            tool_agents,
        }
    }

    /// All records in time order.
    pub fn records(&self) -> Records<'_> {
        Records::new(self)
    }

    pub fn start_ms(&self) -> u64 {
        self.config.start_ms
    }

    pub fn end_ms(&self) -> u64 {
        self.config.start_ms + self.config.days * DAY_MS
    }

    /// When attacks may begin (end of the learning days).
    pub fn learning_end_ms(&self) -> u64 {
        self.config.start_ms + self.config.learning_days * DAY_MS
    }

    /// The consumer id a filter would compute from this consumer's API key.
    pub fn consumer_id(&self, consumer: u32, salt: &[u8]) -> ConsumerId {
        consumer_id(salt, self.consumers[consumer as usize].api_key.as_bytes())
    }

    fn tool_agent(&self, i: usize) -> u16 {
        self.tool_agents[i % self.tool_agents.len()]
    }
}

fn incidents(config: &ScenarioConfig) -> Vec<Incident> {
    let day = |d: u64, minutes: u64| config.start_ms + d * DAY_MS + minutes * 60_000;
    vec![
        Incident {
            start_ms: day(10, 14 * 60 + 10),
            end_ms: day(10, 14 * 60 + 55),
            endpoint: None,
            status: 503,
            share: 0.35,
            what: "upstream outage: 503 on every endpoint",
        },
        Incident {
            start_ms: day(15, 9 * 60 + 20),
            end_ms: day(15, 9 * 60 + 50),
            endpoint: Some(1),
            status: 404,
            share: 0.5,
            what: "bad deploy: 404 on GET /v1/orders/{id}",
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ScenarioConfig {
        ScenarioConfig {
            consumers: 40,
            days: 9,
            learning_days: 3,
            attacks_per_cell: 1,
            ..ScenarioConfig::default()
        }
    }

    #[test]
    fn same_seed_gives_the_same_records() {
        let a = Scenario::new(small());
        let b = Scenario::new(small());
        let first: Vec<GenRecord> = a.records().take(5_000).collect();
        let second: Vec<GenRecord> = b.records().take(5_000).collect();
        assert_eq!(first, second);
    }

    #[test]
    fn records_come_in_time_order_inside_the_scenario() {
        let s = Scenario::new(small());
        let mut last = 0;
        for r in s.records().take(50_000) {
            assert!(r.time_ms >= last);
            assert!(r.time_ms >= s.start_ms() && r.time_ms < s.end_ms());
            last = r.time_ms;
        }
    }

    #[test]
    fn every_kind_and_strength_gets_an_attack_after_learning() {
        let s = Scenario::new(small());
        assert_eq!(s.attacks.len(), 24);
        for a in &s.attacks {
            assert!(a.start_ms >= s.learning_end_ms() && a.end_ms < s.end_ms());
        }
    }

    #[test]
    fn attack_records_are_labelled_and_inside_their_span() {
        let s = Scenario::new(small());
        let mut seen = 0;
        for r in s.records() {
            if let Some(a) = r.attack {
                let attack = &s.attacks[a as usize];
                assert!(r.time_ms >= attack.start_ms && r.time_ms < attack.end_ms);
                assert_eq!(r.consumer, attack.consumer);
                seen += 1;
            }
        }
        assert!(seen > 0);
    }

    #[test]
    fn paths_carry_rendered_ids() {
        let s = Scenario::new(small());
        let r = s.records().find(|r| r.object.is_some()).unwrap();
        assert!(!r.path().contains("{id}"));
        let uuid = ObjectId::Uuid(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef).render();
        assert_eq!(uuid, "01234567-89ab-cdef-0123-456789abcdef");
    }
}
