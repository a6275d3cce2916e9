//! `eval-detect`: the detection evaluation through the collector's ingest pipeline. The
//! scenario's records go out as filter batches and through decoding, templating, the
//! inventory and detection ([`plumbline_collector::detect::replay`]); the alert updates are
//! scored against the labelled attacks ([`plumbline_detect::evaluation`]) and printed per
//! detector and strength: precision, recall, median time to detect, false alerts per 10,000
//! consumer-hours of normal traffic.
//!
//! Usage: `eval-detect [--consumers N] [--days D] [--seed S] [--attacks-per-cell N]
//! [--explain DETECTOR]`; `--explain` lists that detector's false alerts and missed attacks.

use plumbline_collector::detect::config::DetectSettings;
use plumbline_collector::detect::replay::{replay, Replay};
use plumbline_detect::evaluation::{self, Report, Run};
use plumbline_detect::scenario::Scenario;
use std::time::{Duration, Instant};

fn main() {
    let options = match evaluation::parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("eval-detect: {message}");
            std::process::exit(2);
        }
    };
    let began = Instant::now();
    let scenario = Scenario::new(options.scenario);
    let mut replay = match replay(&scenario, &DetectSettings::default()) {
        Ok(replay) => replay,
        Err(err) => {
            eprintln!("eval-detect: {err}");
            std::process::exit(1);
        }
    };
    print_scenario(&scenario, &replay);

    let updates = std::mem::take(&mut replay.updates);
    let run = Run::new(&scenario, updates, replay.window_ms);
    Report::new(&scenario, &run).print();
    if let Some(detector) = options.explain {
        evaluation::explain_detector(&scenario, &run, detector);
    }
    print_costs(&replay, began.elapsed());
}

fn print_scenario(s: &Scenario, replay: &Replay) {
    println!(
        "scenario: seed {}, {} consumers, {} days ({} learning), {} records ({} from attacks), {} attacks",
        s.config.seed,
        s.consumers.len(),
        s.config.days,
        s.config.learning_days,
        replay.records,
        replay.attack_records,
        s.attacks.len()
    );
    println!(
        "ingest: {} filter batches decoded and applied; the inventory templated their paths into {} endpoints",
        replay.batches,
        replay.endpoints.len()
    );
}

fn print_costs(replay: &Replay, elapsed: Duration) {
    let per_consumer = replay.detection_memory_bytes as f64 / replay.consumers.max(1) as f64;
    println!(
        "\ndetection: {} consumers, {per_consumer:.0} bytes of state per consumer in memory",
        replay.consumers
    );
    println!(
        "ran {} records through ingest and detection in {:.1} s ({:.1} s in all, with generation)",
        replay.records,
        replay.pipeline_time.as_secs_f64(),
        elapsed.as_secs_f64()
    );
}
