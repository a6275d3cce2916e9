//! The abusive partners of the demo's abuse phase: three consumers that behaved normally while
//! the collector learned them, then turn abusive while normal traffic goes on.
//!
//! - enumeration: walks the numeric ids of one of its own endpoints, one after another;
//! - error probing: asks for its usual paths and gets 404s and 403s (guessing what exists);
//! - scraping: requests its usual paths at several times its usual rate.
//!
//! Abusers only use paths the plan already holds (or those with another number), so they add
//! no endpoint to the collector's inventory.

use super::plan::{Consumer, PlannedRequest};
use super::spec::{Operation, Segment};
use super::values::ValueKind;
use std::collections::BTreeMap;

/// How an abuser misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbuseKind {
    Enumeration,
    ErrorProbing,
    Scraping,
}

impl AbuseKind {
    pub fn name(self) -> &'static str {
        match self {
            AbuseKind::Enumeration => "enumeration",
            AbuseKind::ErrorProbing => "error probing",
            AbuseKind::Scraping => "scraping",
        }
    }
}

/// One abusive consumer and what it sends in the abuse phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Abuser {
    pub consumer: usize,
    pub kind: AbuseKind,
    /// Requests per second it adds in the abuse phase.
    pub rate: f64,
    /// What it does, in words, for the demo's output.
    pub description: String,
    walk: Option<Walk>,
    paths: Vec<String>,
}

/// A path whose one numeric position counts up.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Walk {
    prefix: String,
    suffix: String,
    from: u64,
}

/// First id of an enumeration walk.
const WALK_FROM: u64 = 100_000;
/// Requests per second of the enumeration and of the error probing.
const WALK_RATE: f64 = 60.0;
const PROBE_RATE: f64 = 40.0;
/// How many times its usual rate a scraper sends.
const SCRAPE_FACTOR: f64 = 8.0;

impl Abuser {
    /// The `i`-th request of the abuse: path and the status to ask the upstream for.
    pub fn request(&self, i: usize) -> (String, Option<u16>) {
        if let Some(walk) = &self.walk {
            let id = walk.from + i as u64;
            return (format!("{}{id}{}", walk.prefix, walk.suffix), None);
        }
        let path = self.paths[i % self.paths.len()].clone();
        match self.kind {
            AbuseKind::ErrorProbing => (path, Some(if i % 4 == 3 { 403 } else { 404 })),
            _ => (path, None),
        }
    }
}

/// Picks the three abusers among consumers with a moderate share of `normal_rate`
/// (requests per second of normal traffic), from the plan they learned on.
pub fn choose(
    operations: &[Operation],
    consumers: &[Consumer],
    plan: &[PlannedRequest],
    normal_rate: f64,
) -> Vec<Abuser> {
    let total: f64 = consumers.iter().map(|c| c.rate).sum();
    let share = |c: usize| normal_rate * consumers[c].rate / total.max(f64::MIN_POSITIVE);
    let mut order: Vec<usize> = (0..consumers.len()).collect();
    order.sort_by(|a, b| share(*a).total_cmp(&share(*b)));
    order.truncate(order.len().saturating_sub(2));
    let moderate: Vec<usize> = order.into_iter().filter(|c| share(*c) >= 2.0).collect();

    let mut out = Vec::new();
    if let Some(walker) = enumerator(&moderate, operations, consumers, plan) {
        out.push(walker);
    }
    let taken = |out: &[Abuser], c: usize| out.iter().any(|a| a.consumer == c);
    for kind in [AbuseKind::ErrorProbing, AbuseKind::Scraping] {
        let pick = moderate.iter().rev().copied().find(|c| !taken(&out, *c));
        let Some(c) = pick else {
            continue;
        };
        let paths: Vec<String> = plan
            .iter()
            .filter(|r| r.consumer == c && r.status.is_none())
            .map(|r| r.path.clone())
            .collect();
        if paths.is_empty() {
            continue;
        }
        let label = &consumers[c].label;
        let (rate, description) = match kind {
            AbuseKind::ErrorProbing => (
                PROBE_RATE,
                format!("{label}: its usual paths at {PROBE_RATE}/s, answered 404 and 403"),
            ),
            _ => {
                let rate = (share(c) * SCRAPE_FACTOR).max(20.0);
                let text = format!(
                    "{label}: its usual paths at {rate:.0}/s (usually {:.0}/s)",
                    share(c)
                );
                (rate, text)
            }
        };
        out.push(Abuser {
            consumer: c,
            kind,
            rate,
            description,
            walk: None,
            paths,
        });
    }
    out
}

/// The enumerator: among `candidates`, the consumer that calls one endpoint with a numeric id
/// most (so its baseline there has calls in every window), walking that id.
fn enumerator(
    candidates: &[usize],
    operations: &[Operation],
    consumers: &[Consumer],
    plan: &[PlannedRequest],
) -> Option<Abuser> {
    let mut calls: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for r in plan
        .iter()
        .filter(|r| r.status.is_none() && candidates.contains(&r.consumer))
    {
        if numeric_position(&operations[r.operation]).is_some() {
            *calls.entry((r.consumer, r.operation)).or_default() += 1;
        }
    }
    let (&(c, op), _) = calls
        .iter()
        .max_by_key(|(key, n)| (**n, std::cmp::Reverse(**key)))?;
    let request = plan
        .iter()
        .find(|r| r.consumer == c && r.operation == op && r.status.is_none())?;
    let operation = &operations[op];
    let position = numeric_position(operation)?;
    let segments: Vec<&str> = request.path.strip_prefix('/')?.split('/').collect();
    let prefix: String = segments[..position]
        .iter()
        .map(|s| format!("/{s}"))
        .collect();
    let suffix: String = segments[position + 1..]
        .iter()
        .map(|s| format!("/{s}"))
        .collect();
    let description = format!(
        "{}: walks ids {WALK_FROM}, {}, ... of {} at {WALK_RATE}/s",
        consumers[c].label,
        WALK_FROM + 1,
        operation.key()
    );
    Some(Abuser {
        consumer: c,
        kind: AbuseKind::Enumeration,
        rate: WALK_RATE,
        description,
        walk: Some(Walk {
            prefix: format!("{prefix}/"),
            suffix,
            from: WALK_FROM,
        }),
        paths: Vec::new(),
    })
}

/// The last position of the operation holding a number or numeric id.
fn numeric_position(operation: &Operation) -> Option<usize> {
    operation.segments.iter().rposition(|s| {
        matches!(
            s,
            Segment::Param {
                kind: ValueKind::Number | ValueKind::Id,
                ..
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::values::NamePool;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn operations() -> Vec<Operation> {
        let lit = |t: &str| Segment::Literal(t.into());
        let param = |n: &str, kind| Segment::Param {
            name: n.into(),
            kind,
        };
        vec![
            Operation {
                path: "/repos/{owner}/{repo}/issues/{issue_number}/comments".into(),
                segments: vec![
                    lit("repos"),
                    param("owner", ValueKind::Name(NamePool::Owner)),
                    param("repo", ValueKind::Name(NamePool::Repo)),
                    lit("issues"),
                    param("issue_number", ValueKind::Number),
                    lit("comments"),
                ],
            },
            Operation {
                path: "/users/{username}".into(),
                segments: vec![
                    lit("users"),
                    param("username", ValueKind::Name(NamePool::User)),
                ],
            },
        ]
    }

    fn abusers() -> (Vec<Consumer>, Vec<Abuser>) {
        let mut rng = StdRng::seed_from_u64(11);
        let ops = operations();
        let consumers = crate::traffic::consumers(12, ops.len(), &mut rng);
        let plan = crate::traffic::requests(&ops, &consumers, 4_000, 40, &mut rng);
        let abusers = choose(&ops, &consumers, &plan, 300.0);
        (consumers, abusers)
    }

    #[test]
    fn three_different_consumers_abuse_in_three_ways() {
        let (_, abusers) = abusers();
        let kinds: Vec<AbuseKind> = abusers.iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            [
                AbuseKind::Enumeration,
                AbuseKind::ErrorProbing,
                AbuseKind::Scraping
            ]
        );
        let mut consumers: Vec<usize> = abusers.iter().map(|a| a.consumer).collect();
        consumers.dedup();
        assert_eq!(consumers.len(), 3);
    }

    #[test]
    fn the_enumerator_walks_consecutive_ids_at_one_position_of_its_path() {
        let (_, abusers) = abusers();
        let walker = &abusers[0];
        let (first, _) = walker.request(0);
        let (second, _) = walker.request(1);
        assert!(first.ends_with("/100000/comments"), "{first}");
        assert!(second.ends_with("/100001/comments"), "{second}");
        assert_eq!(first.replace("100000", "100001"), second);
    }

    #[test]
    fn the_prober_asks_for_errors_and_the_scraper_does_not() {
        let (_, abusers) = abusers();
        let statuses: Vec<Option<u16>> = (0..4).map(|i| abusers[1].request(i).1).collect();
        assert_eq!(statuses, [Some(404), Some(404), Some(404), Some(403)]);
        assert_eq!(abusers[2].request(0).1, None);
    }
}
