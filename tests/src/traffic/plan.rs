//! The demo's population of partner consumers and the list of requests they make.
//!
//! Each consumer has its own API key, label, endpoint mix and rate. Every operation gets at
//! least a minimum number of requests, and each of its name parameters cycles through its
//! pool, so every name position shows many distinct values; the rest of the requests follow
//! the consumers' rates and mixes. Everything is drawn from one seeded generator.

use super::spec::{Operation, Segment};
use super::values::{random_value, NamePool, ValueKind};
use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

const PARTNERS: &[&str] = &[
    "acme-logistics",
    "globex-retail",
    "initech-payroll",
    "umbrella-health",
    "hooli-search",
    "vandelay-imports",
    "stark-industries",
    "wayne-enterprises",
    "wonka-foods",
    "tyrell-bio",
    "cyberdyne",
    "soylent-market",
    "massive-dynamic",
    "aperture-labs",
    "oscorp",
    "gringotts-bank",
    "monarch-travel",
    "nakatomi-trading",
    "pied-piper",
    "dunder-paper",
    "prestige-worldwide",
    "virtucon",
    "wernham-hogg",
    "zorg-industries",
    "bluth-company",
    "sterling-cooper",
    "los-pollos",
    "krusty-krab",
    "duff-brewing",
    "planet-express",
];

const AGENTS: &[&str] = &[
    "octokit-rest.js/20.1.1",
    "PyGithub/2.3.0",
    "go-github/v62",
    "partner-sync/1.8 (+ops)",
    "curl/8.5.0",
    "okhttp/4.12.0",
];

/// One partner: its key, label, client, rate weight and endpoint mix.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    pub key: String,
    pub label: String,
    pub user_agent: String,
    /// Relative request rate.
    pub rate: f64,
    /// (operation index, relative weight).
    pub mix: Vec<(usize, f64)>,
}

/// One request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRequest {
    pub consumer: usize,
    pub operation: usize,
    pub path: String,
    /// A status to ask the demo upstream for (`x-demo-status`), for a realistic error mix.
    pub status: Option<u16>,
}

/// `count` consumers over `operations` operations; every operation is in some consumer's mix.
pub fn consumers(count: usize, operations: usize, rng: &mut impl Rng) -> Vec<Consumer> {
    let mut out: Vec<Consumer> = (0..count).map(|n| consumer(n, operations, rng)).collect();
    if out.is_empty() {
        return out;
    }
    let covered: BTreeSet<usize> = out.iter().flat_map(|c| c.mix.iter().map(|m| m.0)).collect();
    for operation in (0..operations).filter(|o| !covered.contains(o)) {
        let n = rng.gen_range(0..out.len());
        out[n].mix.push((operation, 1.0));
    }
    out
}

fn consumer(n: usize, operations: usize, rng: &mut impl Rng) -> Consumer {
    let label = match PARTNERS.get(n) {
        Some(name) => name.to_string(),
        None => format!(
            "{}-{}",
            PARTNERS[n % PARTNERS.len()],
            n / PARTNERS.len() + 1
        ),
    };
    let mut indices: Vec<usize> = (0..operations).collect();
    indices.shuffle(rng);
    let size = rng.gen_range(3..=12).min(operations);
    let mix = indices
        .into_iter()
        .take(size)
        .enumerate()
        .map(|(rank, op)| (op, 1.0 / (rank as f64 + 1.0)))
        .collect();
    Consumer {
        key: format!("demo-key-{}", n + 1),
        label,
        user_agent: AGENTS[rng.gen_range(0..AGENTS.len())].to_string(),
        rate: (rng.gen_range(0.0..30f64.ln())).exp(),
        mix,
    }
}

/// Names bound the way real data is: a repository belongs to one owner, a member to one
/// organisation, a team to one enterprise.
///
/// Names are kept per template prefix (all operations below `/repos/{owner}` share the names
/// of that position). At a position with no parameter above, requests cycle through a working
/// set of names; below a parameter, each combination of values above gets a few names of its
/// own, taken from the pool without replacement.
#[derive(Default)]
struct World {
    positions: BTreeMap<String, Position>,
}

#[derive(Default)]
struct Position {
    free: Vec<String>,
    working: Vec<String>,
    next: usize,
    bound: BTreeMap<String, Vec<String>>,
    overflow: usize,
}

/// Names cycled at a position with no parameter above it.
const WORKING_SET: usize = 40;

impl World {
    fn name(&mut self, prefix: &str, parent: &str, pool: NamePool, rng: &mut impl Rng) -> String {
        let position = self.positions.entry(prefix.to_string()).or_insert_with(|| {
            let mut free = pool.names();
            free.shuffle(rng);
            let working = free.split_off(free.len().saturating_sub(WORKING_SET));
            Position {
                free,
                working,
                ..Position::default()
            }
        });
        if parent.is_empty() {
            let name = position.working[position.next % position.working.len()].clone();
            position.next += 1;
            return name;
        }
        if !position.bound.contains_key(parent) {
            let names = (0..rng.gen_range(2..=3))
                .map(|_| position.take(pool))
                .collect();
            position.bound.insert(parent.to_string(), names);
        }
        let names = &position.bound[parent];
        names[rng.gen_range(0..names.len())].clone()
    }
}

impl Position {
    /// An unused name, or once the pool is spent a composed one (`<name>-<n>` is avoided:
    /// a digit could make it look like a value).
    fn take(&mut self, pool: NamePool) -> String {
        if let Some(name) = self.free.pop() {
            return name;
        }
        let names = pool.names();
        let n = self.overflow;
        self.overflow += 1;
        let word = super::values::OVERFLOW_WORDS[n % super::values::OVERFLOW_WORDS.len()];
        let base = &names[(n / super::values::OVERFLOW_WORDS.len()) % names.len()];
        format!("{base}-{word}")
    }
}

/// The requests: at least `min_per_operation` per operation (fewer if `total` is too small),
/// the rest by consumer rate and mix, shuffled.
pub fn requests(
    operations: &[Operation],
    consumers: &[Consumer],
    total: usize,
    min_per_operation: usize,
    rng: &mut impl Rng,
) -> Vec<PlannedRequest> {
    if operations.is_empty() || consumers.is_empty() {
        return Vec::new();
    }
    let floor = min_per_operation.min(total / operations.len());
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(total);
    for operation in 0..operations.len() {
        let users: Vec<usize> = (0..consumers.len())
            .filter(|c| consumers[*c].mix.iter().any(|m| m.0 == operation))
            .collect();
        let weights = WeightedIndex::new(users.iter().map(|c| consumers[*c].rate)).ok();
        for _ in 0..floor {
            let consumer = weights.as_ref().map_or(0, |w| users[w.sample(rng)]);
            picks.push((consumer, operation));
        }
    }
    let by_rate = WeightedIndex::new(consumers.iter().map(|c| c.rate)).ok();
    while picks.len() < total {
        let consumer = by_rate.as_ref().map_or(0, |w| w.sample(rng));
        let mix = &consumers[consumer].mix;
        let Ok(by_mix) = WeightedIndex::new(mix.iter().map(|m| m.1)) else {
            continue;
        };
        picks.push((consumer, mix[by_mix.sample(rng)].0));
    }

    let mut world = World::default();
    let mut planned: Vec<PlannedRequest> = picks
        .into_iter()
        .map(|(consumer, operation)| PlannedRequest {
            consumer,
            operation,
            path: fill(&operations[operation], &mut world, rng),
            status: error_status(rng),
        })
        .collect();
    planned.shuffle(rng);
    planned
}

/// The operation's path with every parameter replaced by a value.
fn fill(operation: &Operation, world: &mut World, rng: &mut impl Rng) -> String {
    let mut template = String::new();
    let mut parent = String::new();
    let mut path = String::new();
    for segment in &operation.segments {
        let value = match segment {
            Segment::Literal(text) => text.clone(),
            Segment::Param {
                kind: ValueKind::Name(pool),
                ..
            } => world.name(&template, &parent, *pool, rng),
            Segment::Param { kind, .. } => random_value(*kind, rng).unwrap_or_default(),
        };
        path.push('/');
        path.push_str(&value);
        template.push('/');
        match segment {
            Segment::Literal(text) => template.push_str(text),
            Segment::Param { .. } => {
                template.push_str("{}");
                parent.push('/');
                parent.push_str(&value);
            }
        }
    }
    path
}

/// About 3 % of requests answered 404 and 0.5 % answered 500.
fn error_status(rng: &mut impl Rng) -> Option<u16> {
    let roll: f64 = rng.gen();
    if roll < 0.03 {
        Some(404)
    } else if roll < 0.035 {
        Some(500)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    fn operations() -> Vec<Operation> {
        let name = |n: &str, pool| Segment::Param {
            name: n.into(),
            kind: ValueKind::Name(pool),
        };
        let lit = |t: &str| Segment::Literal(t.into());
        vec![
            Operation {
                path: "/repos/{owner}/{repo}/commits/{sha}".into(),
                segments: vec![
                    lit("repos"),
                    name("owner", NamePool::Owner),
                    name("repo", NamePool::Repo),
                    lit("commits"),
                    Segment::Param {
                        name: "sha".into(),
                        kind: ValueKind::Sha,
                    },
                ],
            },
            Operation {
                path: "/orgs/{org}/teams/{team_slug}".into(),
                segments: vec![
                    lit("orgs"),
                    name("org", NamePool::Org),
                    lit("teams"),
                    name("team_slug", NamePool::Team),
                ],
            },
        ]
    }

    fn plan(seed: u64, total: usize) -> (Vec<Consumer>, Vec<PlannedRequest>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let ops = operations();
        let consumers = consumers(5, ops.len(), &mut rng);
        let requests = requests(&ops, &consumers, total, 40, &mut rng);
        (consumers, requests)
    }

    #[test]
    fn the_same_seed_gives_the_same_consumers_and_requests() {
        assert_eq!(plan(9, 300), plan(9, 300));
        assert_ne!(plan(9, 300).1, plan(10, 300).1);
    }

    /// (values of the parameters above, value) of every name parameter of an operation.
    fn name_values(path: &str, template: &Operation) -> Vec<(usize, String, String)> {
        let mut parent = String::new();
        let mut out = Vec::new();
        for (position, (value, shape)) in path[1..].split('/').zip(&template.segments).enumerate() {
            if let Segment::Param { kind, .. } = shape {
                if matches!(kind, ValueKind::Name(_)) {
                    out.push((position, parent.clone(), value.to_string()));
                }
                parent.push('/');
                parent.push_str(value);
            }
        }
        out
    }

    #[test]
    fn every_operation_gets_its_minimum_and_top_name_positions_vary() {
        let (_, requests) = plan(3, 100);
        assert_eq!(requests.len(), 100);
        for (operation, template) in operations().iter().enumerate() {
            let mine: Vec<&PlannedRequest> = requests
                .iter()
                .filter(|r| r.operation == operation)
                .collect();
            assert!(mine.len() >= 40, "operation {operation}: {}", mine.len());
            let first: HashSet<String> = mine
                .iter()
                .flat_map(|r| name_values(&r.path, template))
                .filter(|(_, parent, _)| parent.is_empty())
                .map(|(_, _, value)| value)
                .collect();
            assert!(
                first.len() >= 30,
                "operation {operation}: {} first names",
                first.len()
            );
        }
    }

    #[test]
    fn a_name_below_a_parameter_belongs_to_one_parent_only() {
        let (_, requests) = plan(8, 1000);
        let ops = operations();
        let mut parents: BTreeMap<(usize, String), BTreeSet<String>> = BTreeMap::new();
        for request in &requests {
            for (position, parent, value) in name_values(&request.path, &ops[request.operation]) {
                if !parent.is_empty() {
                    parents.entry((position, value)).or_default().insert(parent);
                }
            }
        }
        assert!(parents.len() >= 40, "only {} bound names", parents.len());
        for ((position, value), seen) in &parents {
            assert_eq!(seen.len(), 1, "{value} at {position} under {seen:?}");
        }
    }

    #[test]
    fn filled_paths_keep_the_template_shape_and_have_no_braces() {
        let (_, requests) = plan(4, 200);
        let ops = operations();
        for request in &requests {
            let template = &ops[request.operation];
            let segments: Vec<&str> = request.path[1..].split('/').collect();
            assert_eq!(segments.len(), template.segments.len(), "{}", request.path);
            assert!(!request.path.contains(['{', '}']), "{}", request.path);
            for (segment, shape) in segments.iter().zip(&template.segments) {
                if let Segment::Literal(text) = shape {
                    assert_eq!(segment, text);
                }
            }
        }
    }

    #[test]
    fn consumers_have_own_keys_and_labels_and_cover_every_operation() {
        let mut rng = StdRng::seed_from_u64(5);
        let consumers = consumers(40, 60, &mut rng);
        let keys: HashSet<&str> = consumers.iter().map(|c| c.key.as_str()).collect();
        let labels: HashSet<&str> = consumers.iter().map(|c| c.label.as_str()).collect();
        assert_eq!((keys.len(), labels.len()), (40, 40));
        let covered: HashSet<usize> = consumers
            .iter()
            .flat_map(|c| c.mix.iter().map(|m| m.0))
            .collect();
        assert_eq!(covered.len(), 60);
        assert!(consumers.iter().all(|c| c.rate >= 1.0 && c.rate <= 30.0));
    }

    #[test]
    fn a_small_share_of_requests_asks_for_errors() {
        let (_, requests) = plan(6, 2000);
        let errors = requests.iter().filter(|r| r.status.is_some()).count();
        assert!((20..=140).contains(&errors), "{errors} of 2000");
    }
}
