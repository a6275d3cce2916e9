//! Scoring an evaluation run: which labelled attacks of the [`crate::scenario`] the alerts
//! caught, how fast, and how many alerts fired on normal traffic. The run itself (records
//! through the collector's ingest pipeline) is the collector's `eval-detect`; this module only
//! reads the alert updates it collected, so the scoring stays the one committed with the
//! scenario however the records reach the engine.
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

use crate::config::HOUR_MS;
use crate::scenario::{Scenario, ScenarioConfig};
use crate::{AlertUpdate, Change, Detector};
use plumbline_wire::ConsumerId;
use std::collections::HashMap;

/// The salt the evaluation's consumer ids are made with.
pub const SALT: &[u8] = b"eval-detect";

/// What came out of running a scenario: every alert update, in order, and the window length.
pub struct Run {
    pub updates: Vec<AlertUpdate>,
    pub consumer_index: HashMap<ConsumerId, u32>,
    pub window_ms: u64,
}

impl Run {
    /// A run of `scenario` whose consumer ids were made with [`SALT`].
    pub fn new(scenario: &Scenario, updates: Vec<AlertUpdate>, window_ms: u64) -> Run {
        let consumer_index = (0..scenario.consumers.len() as u32)
            .map(|c| (scenario.consumer_id(c, SALT), c))
            .collect();
        Run {
            updates,
            consumer_index,
            window_ms,
        }
    }
}

/// Command-line options of `eval-detect`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub scenario: ScenarioConfig,
    pub explain: Option<Detector>,
}

/// Parses `[--consumers N] [--days D] [--seed S] [--attacks-per-cell N] [--explain DETECTOR]`.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut config = ScenarioConfig::default();
    let mut explain = None;
    let mut args = args.into_iter();
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
    if config.consumers == 0 {
        return Err("--consumers must be at least 1".into());
    }
    Ok(Options {
        scenario: config,
        explain,
    })
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

pub struct Report {
    cells: HashMap<(Detector, u32), Cell>,
    false_alerts: HashMap<Detector, u32>,
    cross_alerts: HashMap<Detector, u32>,
    normal_hours: f64,
    strengths: [u32; 3],
}

impl Report {
    pub fn new(s: &Scenario, run: &Run) -> Report {
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

    /// Attacks of `detector` at `strength` its own alerts caught, and how many there were.
    pub fn detected(&self, detector: Detector, strength: u32) -> (u32, u32) {
        let cell = self.cells.get(&(detector, strength));
        cell.map(|c| (c.detected, c.attacks)).unwrap_or_default()
    }

    /// Alerts of `detector` opened on normal traffic, and the rate per 10,000 normal
    /// consumer-hours.
    pub fn false_alerts(&self, detector: Detector) -> (u32, f64) {
        let count = self.false_alerts.get(&detector).copied().unwrap_or(0);
        (count, f64::from(count) / self.normal_hours * 10_000.0)
    }

    pub fn print(&self) {
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
pub fn explain_detector(s: &Scenario, run: &Run, detector: Detector) {
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
            "  h{:>6.1} c{c:<3} {}{cross} {:?} peak {:.0} score {:.1} {}: {}",
            hour(a.opened_ms),
            &a.consumer.to_string()[..8],
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Alert, AlertStatus, Evidence, Severity};

    fn scenario() -> Scenario {
        Scenario::new(ScenarioConfig {
            consumers: 30,
            days: 10,
            attacks_per_cell: 1,
            ..ScenarioConfig::default()
        })
    }

    fn opened(s: &Scenario, id: u64, consumer: u32, detector: Detector, at: u64) -> AlertUpdate {
        let evidence = Evidence {
            feature: "calls".into(),
            baseline: 1.0,
            current: 9.0,
            peers: None,
            window_start_ms: at - HOUR_MS,
            window_end_ms: at,
            endpoints: vec![],
            summary: String::new(),
        };
        AlertUpdate {
            change: Change::Opened,
            alert: Alert {
                id,
                consumer: s.consumer_id(consumer, SALT),
                detector,
                severity: Severity::High,
                score: 9.0,
                confidence: 1.0,
                status: AlertStatus::Open,
                opened_ms: at,
                last_seen_ms: at,
                resolved_ms: None,
                windows: 1,
                evidence,
            },
        }
    }

    #[test]
    fn an_alert_of_its_kind_during_an_attack_detects_it_and_one_on_quiet_traffic_is_false() {
        let s = scenario();
        let attack = s
            .attacks
            .iter()
            .find(|a| a.kind == Detector::Exfiltration)
            .unwrap();
        let quiet_consumer = (0..30)
            .find(|c| s.attacks.iter().all(|a| a.consumer != *c))
            .unwrap();
        let updates = vec![
            opened(
                &s,
                1,
                attack.consumer,
                Detector::Exfiltration,
                attack.start_ms + HOUR_MS,
            ),
            opened(
                &s,
                2,
                quiet_consumer,
                Detector::Exfiltration,
                s.end_ms() - HOUR_MS,
            ),
        ];

        let report = Report::new(&s, &Run::new(&s, updates, HOUR_MS));

        assert_eq!(
            report.detected(Detector::Exfiltration, attack.strength),
            (1, 1)
        );
        assert_eq!(report.false_alerts(Detector::Exfiltration).0, 1);
        assert_eq!(
            report.detected(Detector::Enumeration, attack.strength),
            (0, 1)
        );
    }

    #[test]
    fn bad_arguments_are_refused_with_the_flag_named() {
        let args = |a: &[&str]| parse_args(a.iter().map(|s| s.to_string()));
        assert!(args(&["--consumers"])
            .unwrap_err()
            .contains("--consumers needs a value"));
        assert!(args(&["--days", "x"])
            .unwrap_err()
            .contains("--days takes a number"));
        assert!(args(&["--days", "8"])
            .unwrap_err()
            .contains("--days must exceed 9"));
        assert!(args(&["--explain", "nope"])
            .unwrap_err()
            .contains("detector name"));
        assert!(args(&["--what", "1"]).unwrap_err().contains("unknown flag"));
        let ok = args(&["--consumers", "7", "--explain", "off_hours"]).unwrap();
        assert_eq!(
            (ok.scenario.consumers, ok.explain),
            (7, Some(Detector::OffHours))
        );
    }
}
