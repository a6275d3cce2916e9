//! Realistic values for path parameters: numeric ids, git SHAs, gist ids, UUIDs, and names
//! (owners, repositories, branches, teams...) drawn from pools large enough that a collector's
//! cardinality rule turns each name position into a parameter.
//!
//! Names never contain digits or `@`, so a collector cannot mistake them for a typed value
//! (integer, UUID, hex, date, email or opaque token): they are literals until there are many.

use rand::Rng;

/// What a path parameter holds, hence how its values are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueKind {
    /// A small counter per repository: issue, pull request, milestone numbers.
    Number,
    /// A large database id.
    Id,
    /// A 40-digit git SHA.
    Sha,
    /// A 32-digit gist id.
    GistId,
    Uuid,
    Name(NamePool),
}

/// The pools of names; each gives plenty of distinct, name-shaped values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NamePool {
    /// Users and organisations, as repository owners.
    Owner,
    Org,
    User,
    Repo,
    Branch,
    Team,
    Environment,
    Package,
    Secret,
    App,
    Enterprise,
    Codespace,
}

impl NamePool {
    pub const ALL: [NamePool; 12] = [
        NamePool::Owner,
        NamePool::Org,
        NamePool::User,
        NamePool::Repo,
        NamePool::Branch,
        NamePool::Team,
        NamePool::Environment,
        NamePool::Package,
        NamePool::Secret,
        NamePool::App,
        NamePool::Enterprise,
        NamePool::Codespace,
    ];

    /// Every name in the pool, in a fixed order.
    pub fn names(self) -> Vec<String> {
        match self {
            NamePool::Owner => {
                let mut names = NamePool::User.names();
                names.extend(NamePool::Org.names());
                names
            }
            NamePool::Org => join(
                ORGS,
                &["", "-labs", "-cloud", "-oss", "-systems", "-hq"],
                "",
            ),
            NamePool::User => join(PEOPLE, &["", "-dev", "codes", "-ops", "hub", "-io"], ""),
            NamePool::Repo => {
                let mut names = join(ADJECTIVES, NOUNS, "-");
                names.extend(join(NOUNS, &["-api", "-web", "-infra", "-mobile"], ""));
                names
            }
            NamePool::Branch => join(BRANCH_KINDS, &join(ADJECTIVES, NOUNS, "-"), "-"),
            NamePool::Team => join(TEAMS, TEAM_SUFFIXES, ""),
            NamePool::Environment => join(ENVIRONMENTS, REGIONS, ""),
            NamePool::Package => join(NOUNS, PACKAGE_SUFFIXES, ""),
            NamePool::Secret => join(SECRET_OWNERS, SECRET_SUFFIXES, ""),
            NamePool::App => join(NOUNS, &["-bot", "-app", "-ci", "-sync", "-hook"], ""),
            NamePool::Enterprise => join(ORGS, &["-corp", "-group", "-global", "-enterprise"], ""),
            NamePool::Codespace => join(PEOPLE, &join(ADJECTIVES, NOUNS, "-"), "-"),
        }
    }
}

fn join<T: AsRef<str>>(heads: &[&str], tails: &[T], sep: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(heads.len() * tails.len());
    for tail in tails {
        let tail = tail.as_ref();
        for head in heads {
            let sep = if tail.is_empty() { "" } else { sep };
            out.push(format!("{head}{sep}{tail}"));
        }
    }
    out
}

/// Words that extend a name once a pool is spent.
pub const OVERFLOW_WORDS: &[&str] = &[
    "next", "legacy", "mirror", "fork", "archive", "beta", "classic", "lite", "plus", "pro",
];

const PEOPLE: &[&str] = &[
    "mona", "jules", "sasha", "ravi", "mika", "lena", "tomas", "yuki", "omar", "ines", "kofi",
    "anya", "bruno", "chen", "dara", "elif", "farah", "gus", "hana", "ivan", "jonas", "kai",
    "leila", "milo", "nora", "oskar", "priya", "quinn", "rosa", "soren", "tara", "uma", "viktor",
    "wren", "xavi", "yara", "zoltan", "octocat", "hubot", "defunkt",
];

const ORGS: &[&str] = &[
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "massive",
    "aperture",
    "oscorp",
    "gringotts",
    "monarch",
    "nakatomi",
    "pied-piper",
    "dunder",
    "prestige",
    "virtucon",
    "wernham",
    "zorg",
];

const ADJECTIVES: &[&str] = &[
    "swift", "quiet", "brave", "lunar", "rusty", "silver", "tiny", "mighty", "hidden", "golden",
    "frozen", "solar", "cosmic", "urban", "wild", "gentle", "rapid", "noisy",
];

const NOUNS: &[&str] = &[
    "falcon", "otter", "forge", "pipeline", "widget", "engine", "garden", "harbor", "lantern",
    "compass", "beacon", "rocket", "parser", "router", "toolkit", "sdk", "cli", "docs",
];

const BRANCH_KINDS: &[&str] = &[
    "feature", "fix", "release", "hotfix", "chore", "docs", "refactor", "spike",
];

const TEAMS: &[&str] = &[
    "platform", "payments", "security", "infra", "frontend", "backend", "data", "mobile", "sre",
    "growth", "search", "identity", "billing", "devex", "quality",
];

const TEAM_SUFFIXES: &[&str] = &[
    "",
    "-core",
    "-oncall",
    "-reviewers",
    "-admins",
    "-leads",
    "-triage",
    "-guild",
    "-emea",
    "-amer",
];

const REGIONS: &[&str] = &[
    "", "-eu", "-us", "-apac", "-blue", "-green", "-east", "-west", "-north", "-south",
];

const PACKAGE_SUFFIXES: &[&str] = &[
    "-client", "-server", "-utils", "-schema", "-proto", "-core", "-plugin", "-types",
];

const SECRET_SUFFIXES: &[&str] = &[
    "_TOKEN",
    "_KEY",
    "_SECRET",
    "_PASSWORD",
    "_API_KEY",
    "_WEBHOOK_URL",
];

const ENVIRONMENTS: &[&str] = &[
    "production",
    "staging",
    "qa",
    "dev",
    "preview",
    "canary",
    "sandbox",
    "perf",
    "demo",
    "integration",
    "hotfix",
    "review",
];

const SECRET_OWNERS: &[&str] = &[
    "NPM", "AWS", "GCP", "DOCKER", "SLACK", "SENTRY", "STRIPE", "CODECOV", "PYPI", "SONAR",
    "VAULT", "AZURE", "HEROKU", "TWILIO", "DATADOG", "FASTLY",
];

/// A value of `kind`; names come from the caller (see [`crate::traffic::plan`]), other kinds
/// are drawn from `rng`.
pub fn random_value(kind: ValueKind, rng: &mut impl Rng) -> Option<String> {
    Some(match kind {
        ValueKind::Number => rng.gen_range(1..=25_000u32).to_string(),
        ValueKind::Id => rng.gen_range(1_000..=2_147_483_647u64).to_string(),
        ValueKind::Sha => hex_with_a_digit(40, rng),
        ValueKind::GistId => hex_with_a_digit(32, rng),
        ValueKind::Uuid => uuid_v4(rng),
        ValueKind::Name(_) => return None,
    })
}

/// `len` lowercase hex digits, at least one of them a decimal digit (as a collector requires
/// before it reads a run of hex as a value rather than a word like `deadbeef`).
fn hex_with_a_digit(len: usize, rng: &mut impl Rng) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    let mut out: Vec<u8> = (0..len).map(|_| HEX[rng.gen_range(0..16)]).collect();
    if !out.iter().any(u8::is_ascii_digit) {
        let at = rng.gen_range(0..len);
        out[at] = HEX[rng.gen_range(0..10)];
    }
    String::from_utf8(out).unwrap_or_default()
}

fn uuid_v4(rng: &mut impl Rng) -> String {
    let bits: u128 = rng.gen();
    let bits = (bits & !(0xf << 76)) | (0x4 << 76);
    let bits = (bits & !(0x3 << 62)) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    /// A name that no typed rule can take for a value: no digits (so not an integer, UUID,
    /// hex, date or token) and no `@` (so not an email).
    fn name_shaped(name: &str) -> bool {
        !name.is_empty()
            && !name.contains('/')
            && !name.contains('@')
            && !name.bytes().any(|b| b.is_ascii_digit())
    }

    #[test]
    fn every_name_pool_is_large_distinct_and_name_shaped() {
        for pool in NamePool::ALL {
            let names = pool.names();
            let distinct: HashSet<&String> = names.iter().collect();
            assert_eq!(distinct.len(), names.len(), "{pool:?} repeats a name");
            assert!(names.len() >= 90, "{pool:?} has only {} names", names.len());
            for name in &names {
                assert!(name_shaped(name), "{pool:?} name {name:?} could look typed");
            }
        }
    }

    #[test]
    fn shas_and_gist_ids_are_hex_with_a_digit() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..500 {
            let sha = random_value(ValueKind::Sha, &mut rng).unwrap();
            assert_eq!(sha.len(), 40);
            assert!(sha
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert!(sha.bytes().any(|b| b.is_ascii_digit()));
            let gist = random_value(ValueKind::GistId, &mut rng).unwrap();
            assert_eq!(gist.len(), 32);
            assert!(gist.bytes().any(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn numbers_and_ids_are_decimal_integers() {
        let mut rng = StdRng::seed_from_u64(2);
        for kind in [ValueKind::Number, ValueKind::Id] {
            for _ in 0..200 {
                let value = random_value(kind, &mut rng).unwrap();
                assert!(value.bytes().all(|b| b.is_ascii_digit()), "{value}");
                assert!(!value.starts_with('0'), "{value}");
            }
        }
    }

    #[test]
    fn uuids_have_the_version_four_shape() {
        let mut rng = StdRng::seed_from_u64(3);
        let uuid = random_value(ValueKind::Uuid, &mut rng).unwrap();
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{uuid}");
        assert_eq!(&uuid[14..15], "4", "{uuid}");
        assert!("89ab".contains(&uuid[19..20]), "{uuid}");
    }

    #[test]
    fn names_are_not_drawn_here() {
        let mut rng = StdRng::seed_from_u64(4);
        assert_eq!(
            random_value(ValueKind::Name(NamePool::Repo), &mut rng),
            None
        );
    }
}
