//! Per-consumer and per-consumer × endpoint baselines, learned online in bounded memory, and
//! the open window's counters they are compared with.
//!
//! A [`ConsumerState`] takes each observation into its window counters ([`observe`]), exposes
//! the window's features for the detectors, and at window close learns from the window
//! ([`learn`]), holding back what a detector flagged so an attack is not learned as normal.
//! It never reads a clock and never decides about alerts.
//!
//! [`observe`]: ConsumerState::observe
//! [`learn`]: ConsumerState::learn

pub mod habits;
pub mod mix;
pub mod origins;
pub mod quant;
pub mod seasonal;
pub mod sketch;
pub mod stats;

use crate::alert::Detector;
use crate::episode::Episode;
use crate::observation::{mix64, origin_prefix, Observation};
use habits::Habits;
use mix::{MixBaseline, MixWindow};
use origins::{OriginWindow, Origins};
use plumbline_wire::ConsumerId;
use quant::{FixQ, LogQ};
use seasonal::Seasonal;
use serde::{Deserialize, Serialize};
use sketch::DistinctSketch;
use stats::{count_score, ewma, Evidence, MeanVar};

/// Weight of one active window in shares, rates and sizes.
const ALPHA: f64 = 0.03;
/// Recent numeric IDs remembered per consumer to see sequential walks (16-bit hashes: a
/// false step now and then is far below any walk worth reporting).
const RECENT_NUMBERS: usize = 24;
/// Endpoint states added at a time when a consumer's list is full.
const ENDPOINT_GROWTH: usize = 4;
/// Windows after which a consumer's endpoint set and shares have settled.
const SETTLED_WINDOWS: u32 = 48;
/// Windows an endpoint's object model needs before it is scored.
pub const OBJECT_MIN_SAMPLES: u8 = 5;
/// Floor on the expected distinct objects in a window.
const OBJECT_MIN_EXPECTED: f64 = 0.5;
/// Walks shorter than this are never a finding.
const MIN_WALK: f64 = 12.0;
/// Share of the last windows' walk steps carried into the next: a walk spread thin over
/// hours (a small partner's few calls an hour) adds up as a burst in one window does. The
/// carry only helps a slow walk reach the minimum, so it is capped there: a long walk
/// already reported (or learned) must not echo into the hours after it.
const WALK_KEEP: f64 = 0.75;
/// Weight of the last windows' distinct objects (and their expectation) in the recent
/// evidence, each window weighing this share of the next: a small partner's read a few times
/// its usual objects, spread over hours, is within one window's noise but adds up over two or
/// three, as for the count detectors.
const OBJECTS_KEEP: f64 = 0.5;
/// A window whose objects or walk score this high is an outlier: not learned into the
/// baseline unless its hour of the day is a habit, that is had outliers on at least this
/// many of the previous seven days (two: one could be chance or an earlier attack).
const OUTLIER: f64 = 3.0;
pub const OBJECT_HABIT_DAYS: usize = 2;
/// Minimum calls in a window for its endpoint mix to say anything...
pub const MIX_MIN_CALLS: f64 = 5.0;
/// ...and to be remembered as a possible habit.
const MIX_HABIT_MIN_CALLS: f64 = 3.0;

/// Distinct objects a consumer reads on one endpoint, as a function of its calls there:
/// ln(1+d) ≈ y + slope·(ln(1+n) − x), fitted online; and how far the distinct count strays
/// from the prediction made from the calls the baseline *expected* (a bias on the log scale
/// and an overdispersion), so an enumeration's own extra calls cannot excuse its extra
/// objects.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq)]
pub struct ObjectModel {
    x: FixQ,
    y: FixQ,
    xx: FixQ,
    xy: FixQ,
    bias: FixQ,
    phi: FixQ,
    samples: u8,
}

/// Overdispersion below which the distinct count is never trusted: the sketch alone is
/// about 18 % off.
const SKETCH_PHI: f64 = 0.04;

impl ObjectModel {
    pub fn samples(&self) -> u8 {
        self.samples
    }

    fn slope(&self) -> f64 {
        let xx = self.xx.get();
        if xx > 0.02 {
            (self.xy.get() / xx).clamp(0.3, 1.0)
        } else {
            0.8
        }
    }

    fn predict_ln(&self, calls: f64) -> f64 {
        self.y.get() + self.slope() * (calls.ln_1p() - self.x.get())
    }

    /// Distinct objects expected in a window with `calls` expected calls on the endpoint.
    pub fn expected(&self, calls: f64) -> f64 {
        (self.predict_ln(calls) + self.bias.get()).exp_m1().max(0.0)
    }

    /// Variance of the distinct count is `e + phi·e²` around its expectation `e`.
    pub fn phi(&self) -> f64 {
        self.phi.get().max(SKETCH_PHI)
    }

    /// Typical distinct objects per active window.
    pub fn typical(&self) -> f64 {
        self.y.get().exp_m1()
    }

    fn learn(&mut self, calls: f64, distinct: f64, expected_calls: f64) {
        let a = (1.0 / (f64::from(self.samples) + 1.0)).max(ALPHA);
        let y_obs = distinct.ln_1p();
        if self.samples >= 3 {
            let mean = self.expected(expected_calls);
            self.bias.ewma(y_obs - self.predict_ln(expected_calls), a);
            if mean >= 3.0 {
                let sample = ((distinct - mean).powi(2) - mean) / (mean * mean);
                self.phi.ewma(sample.clamp(0.0, 4.0), a);
            }
        }
        let dx = calls.ln_1p() - self.x.get();
        let dy = y_obs - self.y.get();
        self.x.set(self.x.get() + a * dx);
        self.y.set(self.y.get() + a * dy);
        self.xx.set((1.0 - a) * (self.xx.get() + a * dx * dx));
        self.xy.set((1.0 - a) * (self.xy.get() + a * dx * dy));
        self.samples = self.samples.saturating_add(1);
    }
}

/// One endpoint in a consumer's set: its baseline and its open-window counters.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct EndpointState {
    pub endpoint: u32,
    /// Share of the consumer's calls in active windows.
    share: FixQ,
    pub objects: ObjectModel,
    /// Longest sequential walk per window lately (decays a little every window).
    walk_max: LogQ,
    /// Walk steps carried from the last windows (see [`WALK_KEEP`]).
    walk_carry: LogQ,
    /// Distinct objects seen and expected in the last windows (see [`OBJECTS_KEEP`]).
    objects_seen: LogQ,
    objects_expected: LogQ,
    /// Mean response bytes of a successful call.
    bytes_per_call: LogQ,
    // The open window.
    pub calls: u32,
    pub ok_calls: u32,
    pub bytes: f32,
    pub probe_errors: u16,
    pub sequential: u16,
    pub sketch: DistinctSketch,
}

impl EndpointState {
    fn new(endpoint: u32) -> EndpointState {
        EndpointState {
            endpoint,
            share: FixQ::default(),
            objects: ObjectModel::default(),
            walk_max: LogQ::default(),
            walk_carry: LogQ::default(),
            objects_seen: LogQ::default(),
            objects_expected: LogQ::default(),
            bytes_per_call: LogQ::default(),
            calls: 0,
            ok_calls: 0,
            bytes: 0.0,
            probe_errors: 0,
            sequential: 0,
            sketch: DistinctSketch::default(),
        }
    }

    pub fn share(&self) -> f64 {
        self.share.get().max(0.0)
    }

    pub fn walk_max(&self) -> f64 {
        self.walk_max.get()
    }

    /// Sequential steps of the window, with those carried from the last windows.
    pub fn walk_steps(&self) -> f64 {
        f64::from(self.sequential) + WALK_KEEP * self.walk_carry.get()
    }

    /// z-like score of the window's distinct objects against what `expected_calls` calls
    /// usually give; 0 until the model has a few windows behind it.
    pub fn objects_score(&self, expected_calls: f64) -> f64 {
        if self.sketch.is_empty() || self.objects.samples() < OBJECT_MIN_SAMPLES {
            return 0.0;
        }
        let expected = self.objects_expected_floor(expected_calls);
        count_score(self.sketch.estimate(), expected, self.objects.phi())
    }

    /// Distinct objects expected in a window with `expected_calls` expected calls, floored.
    fn objects_expected_floor(&self, expected_calls: f64) -> f64 {
        self.objects
            .expected(expected_calls)
            .max(OBJECT_MIN_EXPECTED)
    }

    /// Distinct objects seen and expected in this window together with the last ones, each
    /// earlier window weighing [`OBJECTS_KEEP`] of the next.
    pub fn objects_recent(&self, expected_calls: f64) -> (f64, f64) {
        (
            OBJECTS_KEEP * self.objects_seen.get() + self.sketch.estimate(),
            OBJECTS_KEEP * self.objects_expected.get()
                + self.objects_expected_floor(expected_calls),
        )
    }

    /// z-like score of the recent distinct objects against their expectation: the window
    /// score of a steady excess over the last windows. 0 while the window has no objects.
    pub fn objects_recent_score(&self, expected_calls: f64) -> f64 {
        if self.sketch.is_empty() || self.objects.samples() < OBJECT_MIN_SAMPLES {
            return 0.0;
        }
        let (seen, expected) = self.objects_recent(expected_calls);
        count_score(seen, expected, self.objects.phi())
    }

    /// Folds the closing window into the recent objects (nothing while the object model is
    /// too young to expect anything). A window `learned` as usual carries no excess: the
    /// baseline took its objects as normal (a nightly sync), so they must not echo as
    /// evidence into the hours after it.
    fn close_objects(&mut self, expected_calls: f64, learned: bool) {
        if self.objects.samples() < OBJECT_MIN_SAMPLES {
            self.objects_seen = LogQ::default();
            self.objects_expected = LogQ::default();
            return;
        }
        let (mut seen, expected) = self.objects_recent(expected_calls);
        if learned {
            seen = seen.min(expected);
        }
        self.objects_seen.set(seen);
        self.objects_expected.set(expected);
    }

    /// z-like score of the window's sequential steps against the longest usual walk: 6 (the
    /// default open score) at three times it (plus a small floor), growing with the log of
    /// the ratio; 0 below a minimum walk.
    pub fn walk_score(&self) -> f64 {
        if self.sequential == 0 || self.walk_steps() < MIN_WALK {
            return 0.0;
        }
        self.walk_surprise()
    }

    /// The walk score without the minimum walk: how far the steps are above the usual ones,
    /// which decides what the baseline learns. A walk that has not reached the minimum yet
    /// must not teach the baseline its length, or a slow walk would never stand out.
    fn walk_surprise(&self) -> f64 {
        let ratio = (self.walk_steps() + 1.0) / (self.walk_max() + 4.0);
        if ratio <= 1.0 {
            return 0.0;
        }
        6.0 * ratio.ln() / 3f64.ln()
    }

    /// Mean bytes of a successful call; 0 while unknown.
    pub fn bytes_per_call(&self) -> f64 {
        self.bytes_per_call.get()
    }

    fn reset_window(&mut self) {
        self.calls = 0;
        self.ok_calls = 0;
        self.bytes = 0.0;
        self.probe_errors = 0;
        self.sequential = 0;
        self.sketch.clear();
    }
}

/// Calls to endpoints past the per-consumer cap, folded together.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Tail {
    share: FixQ,
    bytes_per_call: LogQ,
    pub calls: u32,
    pub ok_calls: u32,
    pub bytes: f32,
    pub probe_errors: u16,
}

impl Tail {
    pub fn share(&self) -> f64 {
        self.share.get().max(0.0)
    }
}

/// Overdispersion of the probe-error count before the consumer's own is learned, and its
/// floor (given the calls, errors are close to binomial).
const ERROR_PHI_PRIOR: f32 = 0.1;
const ERROR_PHI_FLOOR: f32 = 0.02;

/// Error classes kept in the error mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Unauthorized,
    Forbidden,
    NotFound,
    TooMany,
    Server,
}

impl ErrorClass {
    pub fn of(status: u16) -> Option<ErrorClass> {
        match status {
            401 => Some(ErrorClass::Unauthorized),
            403 => Some(ErrorClass::Forbidden),
            404 => Some(ErrorClass::NotFound),
            429 => Some(ErrorClass::TooMany),
            500..=599 => Some(ErrorClass::Server),
            _ => None,
        }
    }

    /// 401, 403 and 404: what guessing IDs and trying forbidden calls produce.
    pub fn is_probe(self) -> bool {
        matches!(
            self,
            ErrorClass::Unauthorized | ErrorClass::Forbidden | ErrorClass::NotFound
        )
    }
}

/// The consumer's error mix: per class counts in the window and rates per call.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ErrorMix {
    pub window: [u32; 5],
    /// Mean answers per call of each class.
    rates: [LogQ; 5],
    /// Mean 401/403/404 answers and calls per active window.
    probe_mean: f32,
    calls_mean: f32,
    /// Overdispersion of the probe count.
    phi: f32,
}

impl Default for ErrorMix {
    fn default() -> Self {
        ErrorMix {
            window: [0; 5],
            rates: [LogQ::default(); 5],
            probe_mean: 0.0,
            calls_mean: 0.0,
            phi: ERROR_PHI_PRIOR,
        }
    }
}

impl ErrorMix {
    /// Mean 401/403/404 answers per call.
    pub fn probe_rate(&self) -> f64 {
        if self.calls_mean <= 0.0 {
            return 0.0;
        }
        f64::from(self.probe_mean) / f64::from(self.calls_mean)
    }

    pub fn phi(&self) -> f64 {
        f64::from(self.phi)
    }

    /// Mean answers per call of a class.
    pub fn rate(&self, class: ErrorClass) -> f64 {
        self.rates[class as usize].get() / 1_000.0
    }
}

/// Response bytes against what the same calls usually return.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq)]
pub struct BytesBaseline {
    /// ln(actual / expected bytes) per active window.
    pub ratio: MeanVar,
    /// Successful calls with a known size per active window.
    ok_mean: f32,
}

impl BytesBaseline {
    pub fn ok_mean(&self) -> f64 {
        f64::from(self.ok_mean)
    }
}

/// An hour of the week is quiet for a consumer when its rate is at most this share of the
/// busiest hour's.
pub const QUIET_SHARE: f64 = 0.1;
/// A quiet slot expects at least this share of the consumer's usual quiet-hour rate.
const QUIET_FLOOR_SHARE: f64 = 0.25;
/// Floors on what count detectors expect in a window. A quiet hour seen empty on each of a
/// few weeks still cannot say its rate is below about one call in four hours.
pub const MIN_QUIET_EXPECTED: f64 = 0.25;
pub const MIN_PROBE_EXPECTED: f64 = 0.1;
pub const MIN_NEW_ORIGINS: f64 = 0.05;

/// The count detectors that add up evidence over a few windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Requests,
    ProbeErrors,
    QuietRequests,
    NewOrigins,
}

/// Calls to a sensitive or rarely used endpoint that the consumer had never called.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirstUses {
    pub endpoints: [u32; 3],
    /// Bit i set when endpoint i was sensitive by name (else rare).
    pub sensitive: u8,
    pub len: u8,
}

impl FirstUses {
    fn push(&mut self, endpoint: u32, sensitive: bool) {
        let len = usize::from(self.len);
        if len >= self.endpoints.len() || self.endpoints[..len].contains(&endpoint) {
            return;
        }
        self.endpoints[len] = endpoint;
        self.sensitive |= u8::from(sensitive) << len;
        self.len += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, bool)> + '_ {
        (0..usize::from(self.len)).map(|i| (self.endpoints[i], self.sensitive & (1 << i) != 0))
    }
}

/// What the engine knows about the window being closed, for features and learning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start_ms: u64,
    pub end_ms: u64,
    pub slot: usize,
    pub day: u16,
    /// Weight of this window within its time-of-week slot.
    pub slot_alpha: f64,
    /// Factor the "largest lately" memories (walks, objects, mix) decay by per window.
    pub habit_decay: f64,
}

impl Window {
    /// Hour of the day (UTC) the window starts in.
    pub fn hour(&self) -> u8 {
        (self.slot % 24) as u8
    }
}

/// The window's consumer-level features, computed once for scoring and learning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    pub calls: f64,
    pub expected_calls: f64,
    /// The window's endpoint mix against the usual one.
    pub mix: MixWindow,
    /// 401/403/404 answers, outside endpoints with a platform incident.
    pub probe_errors: f64,
    pub probe_expected: f64,
    /// Bytes of successful calls to endpoints with a known size, and what they usually return.
    pub bytes: f64,
    pub bytes_expected: f64,
    pub bytes_calls: f64,
    pub origins: OriginWindow,
    /// Usual new origins per active window.
    pub origins_usual: f64,
    /// The expected requests when the window's hour of the week is a quiet one for this
    /// consumer (at most `QUIET_SHARE` of its busiest), else `None`.
    pub quiet: Option<f64>,
}

impl Features {
    /// Seen and expected counts of a count detector in this window.
    pub fn counted(&self, what: Counted) -> Option<(f64, f64)> {
        match what {
            Counted::Requests => Some((self.calls, self.expected_calls)),
            Counted::ProbeErrors => Some((
                self.probe_errors,
                self.probe_expected.max(MIN_PROBE_EXPECTED),
            )),
            Counted::QuietRequests => self
                .quiet
                .map(|expected| (self.calls, expected.max(MIN_QUIET_EXPECTED))),
            Counted::NewOrigins => Some((
                self.origins.new_origins(),
                self.origins_usual.max(MIN_NEW_ORIGINS),
            )),
        }
    }
}

/// Everything detection keeps about one consumer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ConsumerState {
    pub id: ConsumerId,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// Windows closed since the first request, and those with traffic.
    pub windows: u32,
    pub active_windows: u32,
    pub rate: Seasonal,
    pub endpoints: Vec<EndpointState>,
    pub tail: Tail,
    /// One bit per endpoint hash of the endpoints folded into the tail.
    folded_endpoints: u64,
    pub calls: u32,
    pub errors: ErrorMix,
    pub bytes: BytesBaseline,
    pub origins: Origins,
    recent_numbers: [u16; RECENT_NUMBERS],
    recent_next: u8,
    pub mix: MixBaseline,
    /// Hours of the day with unusual objects or walks lately (see [`Habits`]).
    pub object_habits: Habits,
    /// Mean endpoints called for the first time per window.
    pub novelty: f32,
    /// Recent evidence for the count detectors, by [`Counted`].
    pub evidence: [Evidence; 4],
    pub new_endpoints: u16,
    pub first_uses: FirstUses,
    pub episodes: [Episode; 8],
}

/// What an observation meant beyond the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// The consumer had never called this endpoint before.
    pub first_call: bool,
}

impl ConsumerState {
    pub fn new(id: ConsumerId, first_seen_ms: u64) -> ConsumerState {
        ConsumerState {
            id,
            first_seen_ms,
            last_seen_ms: first_seen_ms,
            windows: 0,
            active_windows: 0,
            rate: Seasonal::default(),
            endpoints: Vec::new(),
            tail: Tail::default(),
            folded_endpoints: 0,
            calls: 0,
            errors: ErrorMix::default(),
            bytes: BytesBaseline::default(),
            origins: Origins::default(),
            recent_numbers: [0; RECENT_NUMBERS],
            recent_next: 0,
            mix: MixBaseline::default(),
            object_habits: Habits::default(),
            novelty: 0.0,
            evidence: [Evidence::default(); 4],
            new_endpoints: 0,
            first_uses: FirstUses::default(),
            episodes: [Episode::default(); 8],
        }
    }

    /// Counts one request into the open window.
    pub fn observe(&mut self, obs: &Observation<'_>, day: u16, max_endpoints: usize) -> Observed {
        let weight = obs.weight.max(1);
        self.last_seen_ms = self.last_seen_ms.max(obs.time_ms);
        self.calls = self.calls.saturating_add(weight);

        let known = self
            .endpoints
            .iter()
            .position(|e| e.endpoint == obs.endpoint);
        let (index, first_call) = match known {
            Some(i) => (Some(i), false),
            None => self.add_endpoint(obs.endpoint, max_endpoints),
        };
        let sequential = match obs.object_number {
            Some(n) => self.sequential_step(obs.endpoint, n),
            None => false,
        };
        let class = ErrorClass::of(obs.status);
        let ok = (200..300).contains(&obs.status);
        let bytes = obs.response_bytes as f32 * weight as f32;
        let probe = u16::from(class.is_some_and(ErrorClass::is_probe)) * weight.min(100) as u16;

        match index {
            Some(i) => {
                let e = &mut self.endpoints[i];
                e.calls = e.calls.saturating_add(weight);
                if ok {
                    e.ok_calls = e.ok_calls.saturating_add(weight);
                    e.bytes += bytes;
                }
                e.probe_errors = e.probe_errors.saturating_add(probe);
                e.sequential = e.sequential.saturating_add(u16::from(sequential));
                if let Some(object) = obs.object {
                    e.sketch.insert(mix64(object));
                }
            }
            None => {
                let t = &mut self.tail;
                t.calls = t.calls.saturating_add(weight);
                if ok {
                    t.ok_calls = t.ok_calls.saturating_add(weight);
                    t.bytes += bytes;
                }
                t.probe_errors = t.probe_errors.saturating_add(probe);
            }
        }
        if let Some(class) = class {
            let count = &mut self.errors.window[class as usize];
            *count = count.saturating_add(weight);
        }
        self.origins
            .observe(obs.client.map(origin_prefix), obs.user_agent, day);
        Observed { first_call }
    }

    /// Adds an endpoint the consumer is not tracking: its position while there is room, or
    /// none (its calls fold into the tail); and whether the consumer never called it before.
    /// Tracked endpoints are never dropped, so only folded ones need remembering, in a
    /// 64-bit set of hashes.
    fn add_endpoint(&mut self, endpoint: u32, max: usize) -> (Option<usize>, bool) {
        if self.endpoints.len() < max {
            // Grow a few at a time: doubling would leave a 20-endpoint consumer with room
            // for 32, a third of its memory unused.
            if self.endpoints.len() == self.endpoints.capacity() {
                self.endpoints.reserve_exact(ENDPOINT_GROWTH);
            }
            self.endpoints.push(EndpointState::new(endpoint));
            self.new_endpoints = self.new_endpoints.saturating_add(1);
            return (Some(self.endpoints.len() - 1), true);
        }
        let bit = 1u64 << (mix64(u64::from(endpoint)) >> 58);
        let first = self.folded_endpoints & bit == 0;
        self.folded_endpoints |= bit;
        self.new_endpoints = self.new_endpoints.saturating_add(u16::from(first));
        (None, first)
    }

    /// True when a neighbour of this numeric ID (±1) was among the recent ones on the same
    /// endpoint: one step of a sequential walk.
    fn sequential_step(&mut self, endpoint: u32, number: u64) -> bool {
        let key = |n: u64| (mix64(n ^ (u64::from(endpoint) << 40)) >> 48) as u16 | 1;
        let below = key(number.wrapping_sub(1));
        let above = key(number.wrapping_add(1));
        let step = self
            .recent_numbers
            .iter()
            .any(|r| *r == below || *r == above);
        let this = key(number);
        if !self.recent_numbers.contains(&this) {
            self.recent_numbers[usize::from(self.recent_next)] = this;
            self.recent_next = (self.recent_next + 1) % RECENT_NUMBERS as u8;
        }
        step
    }

    /// Notes a first call to a sensitive or rarely used endpoint.
    pub fn note_first_use(&mut self, endpoint: u32, sensitive: bool) {
        self.first_uses.push(endpoint, sensitive);
    }

    /// Calls the baseline expects on endpoint `i` in this window: its usual share of the calls
    /// the consumer made elsewhere this window (the best measure of how busy it is now, and
    /// one an enumeration of this endpoint cannot inflate), or of the seasonal expectation
    /// when too few calls went elsewhere (the window's own calls while the hour of the week
    /// has not been learned).
    pub fn expected_endpoint_calls(&self, i: usize, slot: usize) -> f64 {
        let e = &self.endpoints[i];
        let share = e.share().clamp(0.0, 1.0);
        let elsewhere = f64::from(self.calls.saturating_sub(e.calls));
        if share < 0.8 && elsewhere >= 10.0 {
            return elsewhere * share / (1.0 - share);
        }
        if !self.rate.is_learned(slot) {
            // The overall level says nothing about this hour (it is the daytime mean at
            // night): take the window's own calls rather than teach the object model a bias.
            return f64::from(e.calls);
        }
        self.rate.expected(slot) * share
    }

    /// The window's consumer-level features. `incident` says whether an endpoint's errors
    /// are part of a platform incident this window.
    pub fn features(&self, slot: usize, incident: &dyn Fn(u32) -> bool) -> Features {
        let calls = f64::from(self.calls);
        let (bytes, bytes_expected, bytes_calls) = self.bytes_against_usual();
        let probe: u32 = self
            .endpoints
            .iter()
            .filter(|e| !incident(e.endpoint))
            .map(|e| u32::from(e.probe_errors))
            .sum::<u32>()
            + u32::from(self.tail.probe_errors);
        Features {
            calls,
            expected_calls: self.rate.expected(slot),
            mix: self.mix_window(),
            probe_errors: f64::from(probe),
            probe_expected: calls * self.errors.probe_rate(),
            bytes,
            bytes_expected,
            bytes_calls,
            origins: self.origins.window(),
            origins_usual: self.origins.new_mean(),
            quiet: self.quiet_expected(slot),
        }
    }

    /// Expected requests in this slot when it is a quiet hour of the week for the consumer:
    /// the slot's own expectation or, when larger, its hour pooled over the days that look
    /// like this one (a slot learned on a week its hour happened to be empty is not quiet);
    /// never less than a quarter of its usual quiet-hour rate.
    fn quiet_expected(&self, slot: usize) -> Option<f64> {
        if !self.rate.is_learned(slot) {
            return None;
        }
        let own = self.rate.expected(slot);
        if own > QUIET_SHARE * self.rate.peak() {
            return None;
        }
        let expected = own.max(self.rate.pooled(slot));
        Some(expected.max(QUIET_FLOOR_SHARE * self.rate.quiet_level(QUIET_SHARE)))
    }

    /// Seen and expected counts of a count detector including the recent windows' evidence.
    pub fn with_evidence(&self, f: &Features, what: Counted) -> Option<(f64, f64)> {
        let (seen, expected) = f.counted(what)?;
        Some(self.evidence[what as usize].with(seen, expected))
    }

    /// The window's mix against the usual shares (tracked endpoints and the tail).
    fn mix_window(&self) -> MixWindow {
        let endpoints = self
            .endpoints
            .iter()
            .map(|e| (f64::from(e.calls), e.share()));
        let tail = std::iter::once((f64::from(self.tail.calls), self.tail.share()));
        MixWindow::new(endpoints.chain(tail), self.mix.sigma2())
    }

    /// Bytes of successful calls on endpoints whose usual size is known, what those calls
    /// usually return, and how many there were.
    fn bytes_against_usual(&self) -> (f64, f64, f64) {
        let mut actual = 0.0;
        let mut expected = 0.0;
        let mut calls = 0.0;
        for e in &self.endpoints {
            let usual = e.bytes_per_call();
            if e.ok_calls > 0 && usual > 0.0 {
                actual += f64::from(e.bytes);
                expected += f64::from(e.ok_calls) * usual;
                calls += f64::from(e.ok_calls);
            }
        }
        let usual = self.tail.bytes_per_call.get();
        if self.tail.ok_calls > 0 && usual > 0.0 {
            actual += f64::from(self.tail.bytes);
            expected += f64::from(self.tail.ok_calls) * usual;
            calls += f64::from(self.tail.ok_calls);
        }
        (actual, expected, calls)
    }

    /// Learns the closed window, holding back what the detectors flagged, and clears it.
    pub fn learn(&mut self, w: &Window, f: &Features, flagged: &[bool; 8]) {
        let active = self.calls > 0;
        let flag = |d: Detector| flagged[d.index()];
        self.windows = self.windows.saturating_add(1);
        self.active_windows = self.active_windows.saturating_add(u32::from(active));

        // Endpoints first: their outlier test must see the baseline the window was scored on.
        self.learn_endpoints(
            w,
            !flag(Detector::Enumeration),
            !flag(Detector::Exfiltration),
        );
        let mut calls = f.calls;
        if flag(Detector::VolumeSurge) || flag(Detector::OffHours) {
            calls = calls.min(f.expected_calls * 1.5 + 1.0);
        }
        self.rate.learn(w.slot, calls, w.slot_alpha);

        if active {
            self.learn_mix(f, w, flag(Detector::EndpointMixDrift));
            if !flag(Detector::ErrorProbing) {
                self.learn_errors(f);
            }
            if !flag(Detector::Exfiltration) {
                self.learn_bytes(f);
            }
            self.learn_error_mix();
        }
        let learn_origins = !flag(Detector::CredentialSharing);
        self.origins.close(active, learn_origins, w.day);
        // The first days discover the consumer's whole set: that is not a habit of novelty.
        if self.windows > SETTLED_WINDOWS {
            ewma(&mut self.novelty, f64::from(self.new_endpoints), 0.01);
        }
        self.fold_evidence(f);
        self.reset_window();
    }

    fn fold_evidence(&mut self, f: &Features) {
        let all = [
            Counted::Requests,
            Counted::ProbeErrors,
            Counted::QuietRequests,
            Counted::NewOrigins,
        ];
        for what in all {
            let evidence = &mut self.evidence[what as usize];
            match f.counted(what) {
                Some((seen, expected)) => evidence.close(seen, expected),
                None => evidence.clear(),
            }
        }
    }

    /// Learns the mix; a flagged window only moves the shares slowly.
    fn learn_mix(&mut self, f: &Features, w: &Window, flagged: bool) {
        let n = f64::from(self.calls);
        if n >= MIX_MIN_CALLS {
            self.mix.learn(&f.mix, flagged, w.hour(), w.day);
        } else if n >= MIX_HABIT_MIN_CALLS {
            self.mix.note_habit(&f.mix, w.hour(), w.day);
        }
        let slow = if flagged { 0.25 } else { 1.0 };
        let a = slow * (1.0 / (f64::from(self.active_windows) + 1.0)).max(ALPHA);
        for e in &mut self.endpoints {
            let share = f64::from(e.calls) / n;
            e.share.set(e.share.get() + a * (share - e.share.get()));
        }
        let share = f64::from(self.tail.calls) / n;
        let tail = &mut self.tail.share;
        tail.set(tail.get() + a * (share - tail.get()));
    }

    /// Learns the probe-error rate and its overdispersion; an outlying window (well above
    /// the expectation) is clipped and does not teach the overdispersion.
    fn learn_errors(&mut self, f: &Features) {
        let e = &mut self.errors;
        let mean = f.probe_expected;
        let outlier = count_score(f.probe_errors, mean.max(0.1), e.phi()) >= OUTLIER;
        if mean >= 2.0 && !outlier {
            let sample = ((f.probe_errors - mean).powi(2) - mean) / (mean * mean);
            ewma(&mut e.phi, sample.clamp(0.0, 4.0), ALPHA);
            e.phi = e.phi.max(ERROR_PHI_FLOOR);
        }
        let errors = if outlier {
            f.probe_errors.min(2.0 * mean + 2.0)
        } else {
            f.probe_errors
        };
        let a = (1.0 / (f64::from(self.active_windows) + 1.0)).max(ALPHA);
        ewma(&mut e.probe_mean, errors, a);
        ewma(&mut e.calls_mean, f.calls, a);
    }

    fn learn_error_mix(&mut self) {
        let calls = f64::from(self.calls.max(1));
        for (rate, count) in self.errors.rates.iter_mut().zip(self.errors.window) {
            rate.ewma(f64::from(count) / calls * 1_000.0, ALPHA);
        }
    }

    fn learn_bytes(&mut self, f: &Features) {
        if f.bytes_calls <= 0.0 || f.bytes_expected <= 0.0 {
            return;
        }
        let ratio = (f.bytes.max(1.0) / f.bytes_expected).ln();
        self.bytes.ratio.update(ratio, ALPHA);
        ewma(&mut self.bytes.ok_mean, f.bytes_calls, ALPHA);
    }

    /// Learns each endpoint's objects, walks and sizes. A window whose objects or walk stand
    /// out is an outlier, remembered for its hour and learned in full only when that hour
    /// already is a habit (clipped otherwise). So an enumeration does not become the baseline
    /// while a nightly sync does.
    fn learn_endpoints(&mut self, w: &Window, objects: bool, sizes: bool) {
        let hour = w.hour();
        let habit = self.object_habits.is_habit(hour, w.day, OBJECT_HABIT_DAYS);
        let settled = self.windows >= SETTLED_WINDOWS;
        let slot_known = self.rate.is_learned(w.slot);
        let level = self.rate.level();
        for i in 0..self.endpoints.len() {
            let expected = self.expected_endpoint_calls(i, w.slot);
            let e = &mut self.endpoints[i];
            let score = e.objects_score(expected).max(e.walk_surprise());
            // While the hour of the week is new, the expectation is the window's own calls;
            // far more objects than an average hour's share of calls gives tell the outlier.
            let usual = e.objects.expected(level * e.share());
            let unusual =
                !slot_known && !e.sketch.is_empty() && e.sketch.estimate() >= 4.0 * usual + 10.0;
            let outlier = score >= OUTLIER || unusual;
            if outlier && settled {
                self.object_habits.note(hour, w.day);
            }
            let learn = objects && (!outlier || habit || !settled);
            e.close_objects(expected, learn);
            if objects && e.calls > 0 && !e.sketch.is_empty() {
                // An outlier is learned clipped to twice the expectation: the model keeps
                // correcting itself (a fully frozen model that started wrong would call every
                // window an outlier forever) while an enumeration barely moves it.
                let mut distinct = e.sketch.estimate();
                if !learn {
                    distinct = distinct.min(2.0 * e.objects.expected(expected) + 2.0);
                }
                e.objects.learn(f64::from(e.calls), distinct, expected);
            }
            let steps = e.walk_steps();
            let walked = if learn { steps } else { 0.0 };
            e.walk_max.set(walked.max(e.walk_max.get() * w.habit_decay));
            e.walk_carry.set(steps.min(MIN_WALK));
            if e.ok_calls > 0 && sizes {
                let per_call = f64::from(e.bytes) / f64::from(e.ok_calls);
                learn_size(&mut e.bytes_per_call, per_call);
            }
        }
        let t = &mut self.tail;
        if t.ok_calls > 0 && sizes {
            learn_size(
                &mut t.bytes_per_call,
                f64::from(t.bytes) / f64::from(t.ok_calls),
            );
        }
    }

    fn reset_window(&mut self) {
        self.calls = 0;
        self.errors.window = [0; 5];
        self.new_endpoints = 0;
        self.first_uses = FirstUses::default();
        for e in &mut self.endpoints {
            e.reset_window();
        }
        self.tail.calls = 0;
        self.tail.ok_calls = 0;
        self.tail.bytes = 0.0;
        self.tail.probe_errors = 0;
    }

    /// Heap bytes this state owns beyond its own size.
    pub fn heap_bytes(&self) -> usize {
        self.endpoints.capacity() * std::mem::size_of::<EndpointState>()
    }
}

fn learn_size(value: &mut LogQ, per_call: f64) {
    if value.get() <= 0.0 {
        value.set(per_call);
    } else {
        value.ewma(per_call, ALPHA * 2.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(endpoint: u32, number: Option<u64>) -> Observation<'static> {
        Observation {
            time_ms: 0,
            consumer: ConsumerId([1; 16]),
            endpoint,
            endpoint_path: "GET /x/{id}",
            object: number.map(mix64),
            object_number: number,
            status: 200,
            response_bytes: 1_000,
            client: None,
            user_agent: 0,
            weight: 1,
            sensitive: false,
        }
    }

    #[test]
    fn a_walk_interleaved_with_other_calls_is_seen_step_by_step() {
        let mut c = ConsumerState::new(ConsumerId([1; 16]), 0);
        for i in 0..100u64 {
            c.observe(&obs(1, Some(5_000 + i)), 0, 32);
            for j in 0..8 {
                c.observe(&obs(1, Some(mix64(i * 10 + j) % 1_000_000)), 0, 32);
            }
        }
        let steps = c.endpoints[0].sequential;
        assert!(steps >= 95, "{steps}");
    }

    #[test]
    fn endpoints_past_the_cap_fold_into_the_tail() {
        let mut c = ConsumerState::new(ConsumerId([1; 16]), 0);
        for endpoint in 0..5 {
            c.observe(&obs(endpoint, None), 0, 3);
        }
        assert_eq!(c.endpoints.len(), 3);
        assert_eq!(c.tail.calls, 2);
    }

    #[test]
    fn only_the_first_call_to_an_endpoint_is_a_first_call() {
        let mut c = ConsumerState::new(ConsumerId([1; 16]), 0);
        assert!(c.observe(&obs(7, None), 0, 32).first_call);
        assert!(!c.observe(&obs(7, None), 0, 32).first_call);
    }

    #[test]
    fn object_model_predicts_fewer_objects_for_fewer_calls() {
        let mut m = ObjectModel::default();
        for i in 0..200 {
            let calls = [10.0, 100.0, 400.0][i % 3];
            let distinct = 40.0 * (1.0 - (-calls / 40.0f64).exp());
            m.learn(calls, distinct, calls);
        }
        let small = m.expected(10.0);
        let big = m.expected(400.0);
        assert!(small < big && big < 60.0, "{small} {big}");
    }
}
