//! `eval-detect`: runs the evaluation scenario through the detection engine in time order and
//! prints, per detector and attack strength, precision, recall, median time to detect and
//! false alerts per 10,000 consumer-hours of normal traffic.
//!
//! How alerts are matched to the labelled attacks:
//! - an alert *shows* a window when it opens or is updated for it; an attack is detected by
//!   its own detector when an alert of that detector for that consumer shows a window that
//!   overlaps the attack; time to detect = end of that window − attack start;
//! - an opened alert is a true alert when its opening window overlaps an attack of its own
//!   kind on that consumer (or ends within two windows after it), a cross alert when it
//!   overlaps an attack of another kind (not counted in precision: the traffic was abusive,
//!   just not labelled for that detector), and a false alert otherwise;
//! - precision of a strength row = its true alerts / (its true alerts + all the detector's
//!   false alerts), so every false alert counts against every row;
//! - normal consumer-hours = every consumer's hours after the learning days, less the hours
//!   inside attacks on it (and two windows after each).
//!
//! Usage: `eval-detect [--consumers N] [--days D] [--seed S] [--attacks-per-cell N]
//! [--explain DETECTOR]`; `--explain` lists that detector's false alerts and missed attacks.

use plumbline_detect::config::HOUR_MS;
use plumbline_detect::scenario::{GenRecord, ObjectId, Scenario, ScenarioConfig, CATALOGUE};
use plumbline_detect::{stable_hash, AlertUpdate, Change, Config, Detector, Engine, Observation};
use plumbline_wire::ConsumerId;
use std::collections::HashMap;
use std::time::Instant;

const SALT: &[u8] = b"eval-detect";

fn main() {
    let (scenario_config, explain) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("eval-detect: {message}");
            std::process::exit(2);
        }
    };
    let began = Instant::now();
    let scenario = Scenario::new(scenario_config);
    let config = Config::default();
    let run = run(&scenario, config);
    let report = Report::new(&scenario, &run);
    print_scenario(&scenario, &run);
    report.print();
    if let Some(detector) = explain {
        explain_detector(&scenario, &run, detector);
    }
    println!(
        "\nengine: {} consumers, {:.0} bytes of state per consumer in memory, {:.0} in the snapshot",
        run.consumers, run.memory_per_consumer, run.snapshot_per_consumer
    );
    println!(
        "ran {} records through the engine in {:.1} s ({:.1} s total with generation)",
        run.records,
        run.engine_seconds,
        began.elapsed().as_secs_f64()
    );
}

fn parse_args() -> Result<(ScenarioConfig, Option<Detector>), String> {
    let mut config = ScenarioConfig::default();
    let mut explain = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flag == "--explain" {
            let detector = Detector::from_name(&value)
                .ok_or_else(|| format!("--explain takes a detector name, got {value:?}"))?;
            explain = Some(detector);
            continue;
        }
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{flag} takes a number, got {value:?}"))?;
        match flag.as_str() {
            "--consumers" => config.consumers = number as u32,
            "--days" => config.days = number,
            "--seed" => config.seed = number,
            "--attacks-per-cell" => config.attacks_per_cell = number as u32,
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    if config.days <= config.learning_days + 2 {
        return Err(format!("--days must exceed {}", config.learning_days + 2));
    }
    Ok((config, explain))
}

/// What came out of running the scenario through the engine.
struct Run {
    updates: Vec<AlertUpdate>,
    consumer_index: HashMap<ConsumerId, u32>,
    records: u64,
    attack_records: u64,
    consumers: usize,
    memory_per_consumer: f64,
    snapshot_per_consumer: f64,
    engine_seconds: f64,
    window_ms: u64,
}

fn run(scenario: &Scenario, config: Config) -> Run {
    let ids: Vec<ConsumerId> = (0..scenario.consumers.len() as u32)
        .map(|c| scenario.consumer_id(c, SALT))
        .collect();
    let templates: Vec<String> = CATALOGUE.iter().map(|e| e.template()).collect();
    let agents: Vec<u64> = scenario
        .user_agents
        .iter()
        .map(|ua| stable_hash(ua.as_bytes()))
        .collect();
    let window_ms = config.window_ms;
    let mut engine = match Engine::new(config) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("eval-detect: {e}");
            std::process::exit(1);
        }
    };

    let mut updates = Vec::new();
    let mut next_tick = scenario.start_ms() + window_ms;
    let mut records = 0;
    let mut attack_records = 0;
    let mut engine_time = std::time::Duration::ZERO;
    for record in scenario.records() {
        let started = Instant::now();
        while record.time_ms >= next_tick {
            updates.extend(engine.tick(next_tick));
            next_tick += window_ms;
        }
        let obs = observation(&record, &ids, &templates, &agents);
        engine.observe(&obs);
        engine_time += started.elapsed();
        records += 1;
        attack_records += u64::from(record.attack.is_some());
    }
    updates.extend(engine.tick(scenario.end_ms()));

    let consumers = engine.stats().consumers.max(1) as usize;
    let snapshot = engine.snapshot();
    Run {
        updates,
        consumer_index: ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as u32))
            .collect(),
        records,
        attack_records,
        consumers,
        memory_per_consumer: engine.memory_bytes() as f64 / consumers as f64,
        snapshot_per_consumer: snapshot.len() as f64 / consumers as f64,
        engine_seconds: engine_time.as_secs_f64(),
        window_ms,
    }
}

/// The observation the collector would build for this record after templating. The eval
/// hashes ID values from their bytes rather than their text: only distinctness matters.
fn observation<'a>(
    r: &GenRecord,
    ids: &[ConsumerId],
    templates: &'a [String],
    agents: &[u64],
) -> Observation<'a> {
    let spec = r.spec();
    let (object, object_number) = match r.object {
        Some(ObjectId::Number(n)) => (Some(stable_hash(&n.to_le_bytes())), Some(n)),
        Some(ObjectId::Uuid(u)) => (Some(stable_hash(&u.to_le_bytes())), None),
        None => (None, None),
    };
    Observation {
        time_ms: r.time_ms,
        consumer: ids[r.consumer as usize],
        endpoint: u32::from(r.endpoint),
        endpoint_path: &templates[r.endpoint as usize],
        object,
        object_number,
        status: r.status,
        response_bytes: r.response_bytes,
        client: Some(r.client),
        user_agent: agents[r.user_agent as usize],
        weight: 1,
        sensitive: spec.sensitive,
    }
}

fn print_scenario(s: &Scenario, run: &Run) {
    println!(
        "scenario: seed {}, {} consumers, {} days ({} learning), {} records ({} from attacks), {} attacks",
        s.config.seed,
        s.consumers.len(),
        s.config.days,
        s.config.learning_days,
        run.records,
        run.attack_records,
        s.attacks.len()
    );
}

/// One opened alert episode and the windows it showed.
struct Episode {
    consumer: u32,
    detector: Detector,
    opened_ms: u64,
    shown: Vec<u64>,
}

/// Per detector × strength results.
#[derive(Default, Clone)]
struct Cell {
    attacks: u32,
    detected: u32,
    detected_by_any: u32,
    true_alerts: u32,
    delays_ms: Vec<u64>,
}

struct Report {
    cells: HashMap<(Detector, u32), Cell>,
    false_alerts: HashMap<Detector, u32>,
    cross_alerts: HashMap<Detector, u32>,
    normal_hours: f64,
    strengths: [u32; 3],
}

impl Report {
    fn new(s: &Scenario, run: &Run) -> Report {
        let episodes = episodes(run);
        let grace = 2 * run.window_ms;
        let mut report = Report {
            cells: HashMap::new(),
            false_alerts: HashMap::new(),
            cross_alerts: HashMap::new(),
            normal_hours: normal_hours(s, grace),
            strengths: s.config.strengths,
        };
        report.score_attacks(s, &episodes, run.window_ms);
        report.score_alerts(s, &episodes, run.window_ms, grace);
        report
    }

    fn score_attacks(&mut self, s: &Scenario, episodes: &[Episode], window: u64) {
        for attack in &s.attacks {
            let cell = self
                .cells
                .entry((attack.kind, attack.strength))
                .or_default();
            cell.attacks += 1;
            let overlaps = |end: &u64| *end > attack.start_ms && end - window < attack.end_ms;
            let mine = episodes.iter().filter(|e| e.consumer == attack.consumer);
            let first = mine
                .clone()
                .filter(|e| e.detector == attack.kind)
                .flat_map(|e| e.shown.iter().copied())
                .filter(overlaps)
                .min();
            if let Some(end) = first {
                cell.detected += 1;
                cell.delays_ms.push(end - attack.start_ms);
            }
            let any = mine.flat_map(|e| e.shown.iter()).any(overlaps);
            cell.detected_by_any += u32::from(any);
        }
    }

    fn score_alerts(&mut self, s: &Scenario, episodes: &[Episode], window: u64, grace: u64) {
        for e in episodes {
            let start = e.opened_ms - window;
            let during: Vec<_> = s
                .attacks
                .iter()
                .filter(|a| a.consumer == e.consumer)
                .filter(|a| e.opened_ms > a.start_ms && start < a.end_ms + grace)
                .collect();
            if let Some(own) = during.iter().find(|a| a.kind == e.detector) {
                let cell = self.cells.entry((own.kind, own.strength)).or_default();
                cell.true_alerts += 1;
            } else if !during.is_empty() {
                *self.cross_alerts.entry(e.detector).or_default() += 1;
            } else if e.opened_ms > s.learning_end_ms() {
                *self.false_alerts.entry(e.detector).or_default() += 1;
            }
        }
    }

    fn print(&self) {
        println!(
            "\nnormal traffic: {:.0} consumer-hours after the learning days",
            self.normal_hours
        );
        println!(
            "\n{:<19} {:>5} {:>7} {:>8} {:>6} {:>9} {:>10} {:>6} {:>7} {:>9} {:>6}",
            "detector",
            "str",
            "attacks",
            "detected",
            "recall",
            "precision",
            "median_ttd",
            "any",
            "false",
            "false/10k",
            "cross"
        );
        for detector in Detector::ALL {
            self.print_detector(detector);
        }
        let total_false: u32 = self.false_alerts.values().sum();
        println!(
            "\nall detectors: {} false alerts, {:.2} per 10,000 consumer-hours",
            total_false,
            f64::from(total_false) / self.normal_hours * 10_000.0
        );
    }

    fn print_detector(&self, detector: Detector) {
        let false_alerts = self.false_alerts.get(&detector).copied().unwrap_or(0);
        let cross = self.cross_alerts.get(&detector).copied().unwrap_or(0);
        let rate = f64::from(false_alerts) / self.normal_hours * 10_000.0;
        for strength in self.strengths {
            let cell = self
                .cells
                .get(&(detector, strength))
                .cloned()
                .unwrap_or_default();
            let recall = ratio(cell.detected, cell.attacks);
            let precision = ratio(cell.true_alerts, cell.true_alerts + false_alerts);
            println!(
                "{:<19} {:>4}x {:>7} {:>8} {:>6} {:>9} {:>10} {:>6} {:>7} {:>9.2} {:>6}",
                detector.name(),
                strength,
                cell.attacks,
                cell.detected,
                format_ratio(recall),
                format_ratio(precision),
                median_hours(&cell.delays_ms),
                format_ratio(ratio(cell.detected_by_any, cell.attacks)),
                false_alerts,
                rate,
                cross
            );
        }
    }
}

fn episodes(run: &Run) -> Vec<Episode> {
    let mut by_id: HashMap<u64, Episode> = HashMap::new();
    for update in &run.updates {
        let alert = &update.alert;
        let Some(consumer) = run.consumer_index.get(&alert.consumer).copied() else {
            continue;
        };
        match update.change {
            Change::Opened => {
                by_id.insert(
                    alert.id,
                    Episode {
                        consumer,
                        detector: alert.detector,
                        opened_ms: alert.opened_ms,
                        shown: vec![alert.opened_ms],
                    },
                );
            }
            Change::Updated => {
                if let Some(e) = by_id.get_mut(&alert.id) {
                    e.shown.push(alert.last_seen_ms);
                }
            }
            Change::Acknowledged | Change::Resolved => {}
        }
    }
    let mut all: Vec<Episode> = by_id.into_values().collect();
    all.sort_by_key(|e| (e.opened_ms, e.consumer, e.detector));
    all
}

/// Consumer-hours after the learning days that no attack (plus grace) covers.
fn normal_hours(s: &Scenario, grace: u64) -> f64 {
    let span = (s.end_ms() - s.learning_end_ms()) as f64 / HOUR_MS as f64;
    let total = span * s.consumers.len() as f64;
    let attacked: f64 = s
        .attacks
        .iter()
        .map(|a| (a.end_ms + grace).min(s.end_ms()) - a.start_ms)
        .map(|ms| ms as f64 / HOUR_MS as f64)
        .sum();
    total - attacked
}

fn ratio(a: u32, b: u32) -> Option<f64> {
    (b > 0).then(|| f64::from(a) / f64::from(b))
}

fn format_ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "-".into())
}

fn median_hours(delays: &[u64]) -> String {
    if delays.is_empty() {
        return "-".into();
    }
    let mut sorted = delays.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2
    } else {
        sorted[mid]
    };
    format!("{:.1}h", median as f64 / HOUR_MS as f64)
}

/// Lists a detector's alerts outside attacks and the attacks of its kind it missed.
fn explain_detector(s: &Scenario, run: &Run, detector: Detector) {
    let hour = |t: u64| (t - s.start_ms()) as f64 / HOUR_MS as f64;
    println!("\n{detector}: alerts opened outside attacks of its kind");
    for update in &run.updates {
        let a = &update.alert;
        if update.change != Change::Opened || a.detector != detector {
            continue;
        }
        let Some(c) = run.consumer_index.get(&a.consumer).copied() else {
            continue;
        };
        let during: Vec<_> = s
            .attacks
            .iter()
            .filter(|x| {
                x.consumer == c
                    && a.opened_ms > x.start_ms
                    && a.opened_ms - run.window_ms < x.end_ms + 2 * run.window_ms
            })
            .collect();
        if let Some(own) = during.iter().find(|x| x.kind == detector) {
            println!(
                "  h{:>6.1} c{c:<3} TRUE {}x score {:.1}: {}",
                hour(a.opened_ms),
                own.strength,
                a.score,
                a.evidence.summary
            );
            continue;
        }
        let cross = during
            .first()
            .map(|x| format!(" [during {}]", x.kind))
            .unwrap_or_default();
        let p = &s.consumers[c as usize];
        println!(
            "  h{:>6.1} c{c:<3}{cross} {:?} peak {:.0} score {:.1} {}: {}",
            hour(a.opened_ms),
            p.shape,
            p.peak_rate,
            a.score,
            a.severity.name(),
            a.evidence.summary
        );
    }
    println!("\n{detector}: missed attacks");
    for attack in s.attacks.iter().filter(|a| a.kind == detector) {
        let caught = run.updates.iter().any(|u| {
            u.alert.detector == detector
                && run.consumer_index.get(&u.alert.consumer) == Some(&attack.consumer)
                && u.alert.last_seen_ms > attack.start_ms
                && u.alert.last_seen_ms - run.window_ms < attack.end_ms
        });
        if caught {
            continue;
        }
        let p = &s.consumers[attack.consumer as usize];
        println!(
            "  {}x c{:<3} {} h{:.1}-{:.1} {:?} peak {:.0} rate {:.1} {:?}",
            attack.strength,
            attack.consumer,
            &s.consumer_id(attack.consumer, SALT).to_string()[..8],
            hour(attack.start_ms),
            hour(attack.end_ms),
            p.shape,
            p.peak_rate,
            p.rate_at(attack.start_ms, s.start_ms()),
            attack.variant
        );
    }
}
