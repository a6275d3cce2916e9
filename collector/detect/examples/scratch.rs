use plumbline_detect::scenario::*;
fn main() {
    let s = Scenario::new(ScenarioConfig::default());
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (c, from, to) = (args[0] as u32, args[1], args[2]);
    let mut counts = std::collections::BTreeMap::new();
    for r in s.records() {
        let h = (r.time_ms - s.start_ms()) / 3_600_000;
        if h > to {
            break;
        }
        if r.consumer == c && h >= from {
            let e = counts.entry(h).or_insert((0u64, 0u64));
            e.0 += 1;
            if r.attack.is_some() {
                e.1 += 1;
            }
        }
    }
    for (h, (n, a)) in counts {
        println!("h{h} {n} attack {a}");
    }
    println!(
        "{:?}",
        s.attacks
            .iter()
            .filter(|a| a.consumer == c)
            .collect::<Vec<_>>()
    );
}
