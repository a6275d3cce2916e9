//! How one templated record becomes an [`Observation`]: the objects it touched (the values
//! templating replaced, hashed), whether its endpoint looks sensitive by name, and the hash of
//! its user agent.
//!
//! Nothing here keeps a raw path value: replaced values are only hashed on the way through.
//! The per-record work is one walk over the path's segments and two caches (name and
//! sensitivity per endpoint, user-agent hashes per batch) that allocate only as they grow.

use plumbline_detect::{object_hash, object_number, stable_hash};
use plumbline_wire::{Batch, Record, StrRef};

/// Words that make an endpoint sensitive when a literal segment of its template contains one.
pub const SENSITIVE_WORDS: [&str; 14] = [
    "admin",
    "export",
    "debug",
    "internal",
    "dump",
    "backup",
    "config",
    "secret",
    "credential",
    "password",
    "private",
    "impersonat",
    "sudo",
    "keys",
];

/// The objects a request touched: the hash of the values templating replaced, and the last
/// of them that was a plain integer (for sequential walks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Objects {
    pub hash: Option<u64>,
    pub number: Option<u64>,
}

/// Replaced values hashed per request at most; any further ones are left out of the hash.
const MAX_VALUES: usize = 8;

/// The values of the request's segments (`raw`) at the positions where `template` (its
/// endpoint's path, like `/users/{id}`) holds something else: the values templating replaced.
pub fn objects<'a>(template: &str, raw: impl Iterator<Item = &'a str>) -> Objects {
    let shape = template.strip_prefix('/').unwrap_or(template);
    let mut values = [""; MAX_VALUES];
    let mut count = 0;
    let mut number = None;
    for (t, r) in shape.split('/').zip(raw) {
        if t == r {
            continue;
        }
        if let Some(slot) = values.get_mut(count) {
            *slot = r;
            count += 1;
        }
        number = object_number(r).or(number);
    }
    Objects {
        hash: (count > 0).then(|| object_hash(values[..count].iter().copied())),
        number,
    }
}

/// What detection needs of each endpoint, kept per endpoint index: its name in evidence
/// (`METHOD /template`) and whether it looks sensitive by name. An entry is made again when
/// the endpoint is renamed ([`Endpoints::forget`]) or its template's length changed.
#[derive(Debug, Clone)]
pub struct Endpoints {
    words: Vec<String>,
    entries: Vec<Option<EndpointEntry>>,
}

#[derive(Debug, Clone)]
struct EndpointEntry {
    template_len: usize,
    sensitive: bool,
    name: Box<str>,
}

impl Endpoints {
    /// Judges sensitivity by `words` (matched without regard to case in literal segments).
    pub fn new(words: &[String]) -> Self {
        Endpoints {
            words: words.iter().map(|w| w.to_ascii_lowercase()).collect(),
            entries: Vec::new(),
        }
    }

    /// The name and sensitivity of endpoint `idx`, with method `method` and `template`.
    pub fn get(&mut self, idx: u32, method: &str, template: &str) -> (&str, bool) {
        let slot = idx as usize;
        if self.entries.len() <= slot {
            self.entries.resize(slot + 1, None);
        }
        let stale = self.entries[slot]
            .as_ref()
            .is_none_or(|e| e.template_len != template.len());
        if stale {
            self.entries[slot] = Some(EndpointEntry {
                template_len: template.len(),
                sensitive: self.by_name(template),
                name: format!("{method} {template}").into_boxed_str(),
            });
        }
        match &self.entries[slot] {
            Some(entry) => (&entry.name, entry.sensitive),
            None => ("", false),
        }
    }

    /// Drops what is known of endpoint `idx` (it was renamed or merged).
    pub fn forget(&mut self, idx: u32) {
        if let Some(entry) = self.entries.get_mut(idx as usize) {
            *entry = None;
        }
    }

    fn by_name(&self, template: &str) -> bool {
        template
            .split('/')
            .filter(|s| !s.starts_with('{'))
            .any(|segment| self.words.iter().any(|w| contains_ignore_case(segment, w)))
    }
}

/// Whether `haystack` contains `needle` (lower case ASCII), ignoring ASCII case.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// User-agent hashes of the batch being applied, by interned string.
#[derive(Debug, Default)]
pub struct AgentHashes {
    hashes: Vec<Option<u64>>,
}

impl AgentHashes {
    /// Forgets the previous batch's strings; keeps the memory.
    pub fn start(&mut self, batch: &Batch) {
        self.hashes.clear();
        self.hashes.resize(batch.strings.len(), None);
    }

    /// The hash of the record's user agent; 0 when it has none.
    pub fn of(&mut self, batch: &Batch, record: &Record) -> u64 {
        let Some(index) = record.user_agent else {
            return 0;
        };
        match self.hashes.get_mut(index as usize) {
            Some(Some(hash)) => *hash,
            Some(slot) => *slot.insert(hash_agent(batch, index)),
            None => hash_agent(batch, index),
        }
    }
}

fn hash_agent(batch: &Batch, index: StrRef) -> u64 {
    stable_hash(batch.str(index).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_values_a_template_replaced_are_hashed_in_order() {
        let raw = ["repos", "acme", "api", "issues", "42"];
        let found = objects("/repos/{owner}/{repo}/issues/{id}", raw.iter().copied());
        assert_eq!(found.hash, Some(object_hash(["acme", "api", "42"])));
        assert_eq!(found.number, Some(42));
    }

    #[test]
    fn a_path_with_no_replaced_value_touches_no_object() {
        let found = objects("/repos/pulls", ["repos", "pulls"].into_iter());
        assert_eq!(found, Objects::default());
        assert_eq!(objects("/", std::iter::empty()), Objects::default());
    }

    #[test]
    fn the_object_number_is_the_last_integer_replaced() {
        let raw = [
            "orders",
            "17",
            "items",
            "9f1c0e2a-77aa-4d8e-9a61-1d2c3b4a5f60",
        ];
        let found = objects("/orders/{id}/items/{uuid}", raw.iter().copied());
        assert_eq!(found.number, Some(17));
        assert!(found.hash.is_some());
    }

    #[test]
    fn different_objects_hash_differently_and_the_same_alike() {
        let one = objects("/users/{id}", ["users", "1"].into_iter());
        let two = objects("/users/{id}", ["users", "2"].into_iter());
        let again = objects("/users/{id}", ["users", "1"].into_iter());
        assert_ne!(one.hash, two.hash);
        assert_eq!(one.hash, again.hash);
    }

    #[test]
    fn endpoints_named_like_admin_or_export_are_sensitive_whatever_the_case() {
        let words: Vec<String> = SENSITIVE_WORDS.iter().map(|w| w.to_string()).collect();
        let mut endpoints = Endpoints::new(&words);
        let mut sensitive = |idx, template| endpoints.get(idx, "GET", template).1;
        assert!(sensitive(0, "/v1/Admin/users"));
        assert!(sensitive(1, "/v1/exports/orders"));
        assert!(sensitive(2, "/internal/debug/config"));
        assert!(!sensitive(3, "/v1/orders/{id}"));
        assert!(
            !sensitive(4, "/v1/{admin}"),
            "placeholder names are not literals"
        );
    }

    #[test]
    fn an_endpoint_is_named_and_judged_again_when_its_template_changes() {
        let mut endpoints = Endpoints::new(&["admin".to_string()]);
        assert_eq!(endpoints.get(7, "GET", "/admin/x"), ("GET /admin/x", true));
        assert_eq!(
            endpoints.get(7, "GET", "/{name}/x"),
            ("GET /{name}/x", false)
        );
        endpoints.forget(7);
        assert_eq!(endpoints.get(7, "POST", "/abcd/x"), ("POST /abcd/x", false));
    }
}
