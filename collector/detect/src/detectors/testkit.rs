//! A consumer with steady, office-hours traffic for the detectors' tests: learns a week of
//! windows, then lets a test add requests to one window and see the signals.

use super::{score_all, Context, Signal};
use crate::alert::Detector;
use crate::baseline::seasonal::slot_of;
use crate::baseline::{ConsumerState, Window};
use crate::config::{Config, DAY_MS, HOUR_MS};
use crate::observation::{mix64, Observation};
use crate::peers::EndpointTable;
use crate::scenario::rng::Rng;
use plumbline_wire::{Addr, ConsumerId};

/// 2026-03-02T00:00Z, a Monday.
pub const START: u64 = 1_772_409_600_000;
pub const PATH: &str = "GET /v1/things/{id}";
/// Endpoints the test consumer uses: 1 and 2 carry numeric IDs, 3 and 4 none.
pub const USUAL: [(u32, f64); 4] = [(1, 0.5), (2, 0.2), (3, 0.2), (4, 0.1)];

pub struct Sim {
    pub c: ConsumerState,
    pub config: Config,
    pub table: EndpointTable,
    /// Start of the open window.
    pub t: u64,
    /// Requests per hour at midday on weekdays.
    pub peak: f64,
    rng: Rng,
}

/// A request of the test consumer.
pub fn request(t: u64, endpoint: u32, number: Option<u64>, status: u16) -> Observation<'static> {
    Observation {
        time_ms: t,
        consumer: ConsumerId([7; 16]),
        endpoint,
        endpoint_path: PATH,
        object: number.map(|n| mix64(n ^ 0xabc)),
        object_number: number,
        status,
        response_bytes: 2_000,
        client: Some(Addr::V4([10, 1, 2, 3])),
        user_agent: 77 << 32,
        weight: 1,
        sensitive: false,
    }
}

impl Sim {
    pub fn new(peak: f64) -> Sim {
        Sim {
            c: ConsumerState::new(ConsumerId([7; 16]), START),
            config: Config::default(),
            table: EndpointTable::default(),
            t: START,
            peak,
            rng: Rng::new(42),
        }
    }

    /// Expected requests in the open window: office hours, quiet nights and weekends.
    pub fn rate(&self) -> f64 {
        let hour = (self.t % DAY_MS) / HOUR_MS;
        let weekday = (self.t / DAY_MS + 3) % 7;
        let office = (8..18).contains(&hour) && weekday < 5;
        if office {
            self.peak
        } else {
            self.peak * 0.02
        }
    }

    /// The window's usual requests.
    pub fn normal(&mut self) -> Vec<Observation<'static>> {
        let noisy = self.rate() * self.rng.lognormal_unit(0.15);
        let n = self.rng.poisson(noisy);
        let cumulative = [0.5, 0.7, 0.9, 1.0];
        (0..n)
            .map(|_| {
                let t = self.t + self.rng.below(HOUR_MS);
                let (endpoint, _) = USUAL[self.rng.weighted(&cumulative)];
                let number = (endpoint <= 2).then(|| 50_000 + 7 * self.rng.below(60));
                let status = if self.rng.chance(0.01) { 404 } else { 200 };
                let mut r = request(t, endpoint, number, status);
                r.response_bytes = (2_000.0 * self.rng.lognormal_unit(0.3)) as u64;
                r
            })
            .collect()
    }

    pub fn window(&self) -> Window {
        Window {
            start_ms: self.t,
            end_ms: self.t + HOUR_MS,
            slot: slot_of(self.t),
            day: (self.t / DAY_MS) as u16,
            slot_alpha: 0.5,
            habit_decay: 0.995,
        }
    }

    /// Runs one window with the usual traffic plus `extra`; returns the signals at or above
    /// their sustain score and learns the window like the engine does.
    pub fn run(&mut self, extra: Vec<Observation<'static>>) -> Vec<Signal> {
        let usual = self.normal();
        self.run_only(usual.into_iter().chain(extra).collect())
    }

    /// Runs one window with exactly these requests (none of the usual ones).
    pub fn run_only(&mut self, mut all: Vec<Observation<'static>>) -> Vec<Signal> {
        all.sort_by_key(|o| o.time_ms);
        let learning_done = self.t >= START + self.config.learning_ms;
        for obs in &all {
            let seen = self.c.observe(obs, (obs.time_ms / DAY_MS) as u16, 32);
            if seen.first_call {
                let before = self.table.add_user(obs.endpoint, obs.endpoint_path);
                if learning_done && (obs.sensitive || before == 0) {
                    self.c.note_first_use(obs.endpoint, obs.sensitive);
                }
            }
        }
        let w = self.window();
        let features = self.c.features(w.slot, &|_| false);
        let ctx = Context {
            window: &w,
            config: &self.config,
            table: &self.table,
        };
        let signals: Vec<Signal> = score_all(&ctx, &self.c, &features)
            .into_iter()
            .filter(|s| learning_done && s.score >= self.config.detector(s.detector).sustain)
            .collect();
        let mut flagged = [false; 8];
        for s in &signals {
            flagged[s.detector.index()] = true;
        }
        self.c.learn(&w, &features, &flagged);
        self.t += HOUR_MS;
        signals
    }

    /// Learns `days` of usual traffic.
    pub fn learn_days(&mut self, days: u64) {
        for _ in 0..days * 24 {
            self.run(Vec::new());
        }
    }

    /// Moves to the next weekday hour at `hour` UTC, learning the windows on the way.
    pub fn skip_to_hour(&mut self, hour: u64) {
        loop {
            let h = (self.t % DAY_MS) / HOUR_MS;
            let weekday = (self.t / DAY_MS + 3) % 7;
            if h == hour && weekday < 5 {
                return;
            }
            self.run(Vec::new());
        }
    }

    /// A random time inside the open window.
    pub fn at(&mut self) -> u64 {
        self.t + self.rng.below(HOUR_MS)
    }
}

/// The signal of one detector among those returned, when it is strong enough to open an
/// alert on its own (default thresholds).
pub fn find(signals: &[Signal], detector: Detector) -> Option<&Signal> {
    let open = Config::default().detector(detector).open;
    signals
        .iter()
        .find(|s| s.detector == detector && s.score >= open)
}
