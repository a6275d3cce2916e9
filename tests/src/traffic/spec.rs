//! Reads GitHub's REST API description (OpenAPI 3) into the GET operations the demo can fill,
//! and picks a set of them whose paths a traffic-learning inventory can tell apart.
//!
//! An operation qualifies when every path parameter has a value kind the demo can generate
//! (numbers, ids, SHAs, names from large pools) and no enumerated values: an enum keeps few
//! distinct values, so its position would rightly stay literal and split one operation into
//! several endpoints. Literal segments with digits are skipped too, since a collector may
//! read them as values.

use super::values::{NamePool, ValueKind};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::Value;
use std::collections::BTreeMap;

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param { name: String, kind: ValueKind },
}

/// A GET operation with at least one path parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The spec's path template, e.g. `/repos/{owner}/{repo}/issues/{issue_number}`.
    pub path: String,
    pub segments: Vec<Segment>,
}

impl Operation {
    /// `GET <path>`, the line the demo writes per exercised operation.
    pub fn key(&self) -> String {
        format!("GET {}", self.path)
    }

    fn params(&self) -> impl Iterator<Item = ValueKind> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param { kind, .. } => Some(*kind),
            Segment::Literal(_) => None,
        })
    }
}

/// The value kind of a path parameter, from its name and schema type.
pub fn kind_of(name: &str, schema_type: Option<&str>) -> Option<ValueKind> {
    if schema_type == Some("integer") {
        return Some(if name.ends_with("_number") {
            ValueKind::Number
        } else {
            ValueKind::Id
        });
    }
    if schema_type.is_some_and(|t| t != "string") {
        return None;
    }
    let pool = match name {
        "commit_sha" | "sha" | "file_sha" | "tag_sha" | "tree_sha" => return Some(ValueKind::Sha),
        "gist_id" => return Some(ValueKind::GistId),
        "uuid" | "sbom_uuid" => return Some(ValueKind::Uuid),
        "owner" | "repo_owner" | "target_user" => NamePool::Owner,
        "org" => NamePool::Org,
        "username" | "assignee" => NamePool::User,
        "repo" | "repo_name" => NamePool::Repo,
        "branch" => NamePool::Branch,
        "team_slug" | "enterprise-team" => NamePool::Team,
        "environment_name" => NamePool::Environment,
        "package_name" => NamePool::Package,
        "secret_name" => NamePool::Secret,
        "app_slug" => NamePool::App,
        "enterprise" => NamePool::Enterprise,
        "codespace_name" => NamePool::Codespace,
        _ => return None,
    };
    Some(ValueKind::Name(pool))
}

/// Follows a local `$ref` (`#/components/...`) once, or returns the value itself.
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> Option<&'a Value> {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => spec.pointer(reference.strip_prefix('#')?),
        None => Some(value),
    }
}

/// Every non-deprecated GET operation whose path parameters the demo can all fill.
pub fn get_operations(spec: &Value) -> Vec<Operation> {
    let Some(paths) = spec.get("paths").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, item) in paths {
        let Some(get) = item.get("get") else {
            continue;
        };
        if get.get("deprecated").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(operation) = operation(spec, path, item, get) {
            out.push(operation);
        }
    }
    out
}

fn operation(spec: &Value, path: &str, item: &Value, get: &Value) -> Option<Operation> {
    let kinds = path_param_kinds(spec, item, get)?;
    let mut segments = Vec::new();
    for text in path.strip_prefix('/')?.split('/') {
        if text.is_empty() {
            return None;
        }
        let segment = match text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            Some(name) if !name.contains(['{', '}']) => Segment::Param {
                name: name.to_string(),
                kind: *kinds.get(name)?,
            },
            Some(_) => return None,
            None if text.contains(['{', '}']) => return None,
            // A literal with a digit might look like a value (`2022-11-28`, `v3abc123`).
            None if text.bytes().any(|b| b.is_ascii_digit()) => return None,
            None => Segment::Literal(text.to_string()),
        };
        segments.push(segment);
    }
    let operation = Operation {
        path: path.to_string(),
        segments,
    };
    operation.params().next()?;
    Some(operation)
}

/// The kinds of the operation's path parameters; `None` if any cannot be generated.
fn path_param_kinds(
    spec: &Value,
    item: &Value,
    get: &Value,
) -> Option<BTreeMap<String, ValueKind>> {
    let mut kinds = BTreeMap::new();
    let declared = [item, get]
        .into_iter()
        .filter_map(|v| v.get("parameters").and_then(Value::as_array))
        .flatten();
    for parameter in declared {
        let parameter = resolve(spec, parameter)?;
        if parameter.get("in").and_then(Value::as_str) != Some("path") {
            continue;
        }
        let name = parameter.get("name").and_then(Value::as_str)?;
        let schema = resolve(spec, parameter.get("schema")?)?;
        if schema.get("enum").is_some() {
            return None;
        }
        let schema_type = schema.get("type").and_then(Value::as_str);
        kinds.insert(name.to_string(), kind_of(name, schema_type)?);
    }
    Some(kinds)
}

/// A trie of selected path shapes, used to keep every selected path distinguishable.
#[derive(Debug, Default)]
struct Shapes {
    literals: BTreeMap<String, Shapes>,
    param: Option<(bool, Box<Shapes>)>,
    end: bool,
}

impl Shapes {
    /// Whether `segments` can join without ambiguity: no position holds both a parameter and
    /// literals, no position gets more than `max_literals` literals, a position takes either
    /// names or typed values, and no two operations share a shape.
    fn fits(&self, segments: &[Segment], max_literals: usize) -> bool {
        let Some((first, rest)) = segments.split_first() else {
            return !self.end;
        };
        match first {
            Segment::Literal(text) => {
                if self.param.is_some() {
                    return false;
                }
                match self.literals.get(text) {
                    Some(child) => child.fits(rest, max_literals),
                    None => self.literals.len() < max_literals,
                }
            }
            Segment::Param { kind, .. } => {
                if !self.literals.is_empty() {
                    return false;
                }
                match &self.param {
                    Some((named, child)) => {
                        *named == is_name(*kind) && child.fits(rest, max_literals)
                    }
                    None => true,
                }
            }
        }
    }

    fn insert(&mut self, segments: &[Segment]) {
        let Some((first, rest)) = segments.split_first() else {
            self.end = true;
            return;
        };
        let child = match first {
            Segment::Literal(text) => self.literals.entry(text.clone()).or_default(),
            Segment::Param { kind, .. } => {
                let (_, child) = self
                    .param
                    .get_or_insert_with(|| (is_name(*kind), Box::default()));
                child
            }
        };
        child.insert(rest);
    }
}

fn is_name(kind: ValueKind) -> bool {
    matches!(kind, ValueKind::Name(_))
}

/// Picks up to `count` operations in an order drawn from `rng`, keeping only those that fit
/// the shapes already picked (see [`Shapes::fits`]).
pub fn select(
    candidates: &[Operation],
    count: usize,
    max_literals: usize,
    rng: &mut impl Rng,
) -> Vec<Operation> {
    let mut order: Vec<&Operation> = candidates.iter().collect();
    order.shuffle(rng);
    let mut shapes = Shapes::default();
    let mut picked = Vec::new();
    for operation in order {
        if picked.len() == count {
            break;
        }
        if shapes.fits(&operation.segments, max_literals) {
            shapes.insert(&operation.segments);
            picked.push(operation.clone());
        }
    }
    picked.sort_by(|a, b| a.path.cmp(&b.path));
    picked
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::json;

    fn spec() -> Value {
        let owner = json!({"$ref": "#/components/parameters/owner"});
        let repo = json!({"$ref": "#/components/parameters/repo"});
        let number = |n: &str| json!({"name": n, "in": "path", "schema": {"type": "integer"}});
        let gist = json!({"name": "gist_id", "in": "path", "schema": {"type": "string"}});
        json!({
            "paths": {
                "/repos/{owner}/{repo}": {"get": {"parameters": [owner, repo]}},
                "/repos/{owner}/{repo}/issues/{issue_number}": {"get": {"parameters": [
                    owner, repo, number("issue_number")]}},
                "/repos/{owner}/{repo}/tarball/{ref}": {"get": {"parameters": [
                    owner, repo, {"name": "ref", "in": "path", "schema": {"type": "string"}}]}},
                "/repos/{owner}/{repo}/{archive_format}": {"get": {"parameters": [owner, repo,
                    {"name": "archive_format", "in": "path",
                     "schema": {"type": "string", "enum": ["zip", "tar"]}}]}},
                "/gists/{gist_id}": {"get": {"parameters": [gist]}},
                "/gists/public": {"get": {}},
                "/orgs/{org}/reports/users-1-day": {"get": {"parameters": [
                    {"name": "org", "in": "path", "schema": {"type": "string"}}]}},
                "/gists/{gist_id}/old": {"get": {"deprecated": true, "parameters": [gist]}},
                "/repos/{owner}/{repo}/pulls": {"post": {"parameters": [owner, repo]}},
            },
            "components": {"parameters": {
                "owner": {"name": "owner", "in": "path", "schema": {"type": "string"}},
                "repo": {"name": "repo", "in": "path", "schema": {"type": "string"}},
            }}
        })
    }

    #[test]
    fn only_get_operations_with_fillable_path_parameters_are_read() {
        let mut paths: Vec<String> = get_operations(&spec())
            .into_iter()
            .map(|o| o.path)
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                "/gists/{gist_id}",
                "/repos/{owner}/{repo}",
                "/repos/{owner}/{repo}/issues/{issue_number}"
            ]
        );
    }

    #[test]
    fn parameters_get_kinds_from_their_names_and_types() {
        let operations = get_operations(&spec());
        let issue = operations
            .iter()
            .find(|o| o.path.contains("issues"))
            .unwrap();
        let kinds: Vec<ValueKind> = issue.params().collect();
        let owner = ValueKind::Name(NamePool::Owner);
        assert_eq!(
            kinds,
            [owner, ValueKind::Name(NamePool::Repo), ValueKind::Number]
        );
    }

    fn op(path: &str) -> Operation {
        let segments = path[1..]
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some("id") => Segment::Param {
                        name: "id".into(),
                        kind: ValueKind::Id,
                    },
                    Some(name) => Segment::Param {
                        name: name.into(),
                        kind: ValueKind::Name(NamePool::Org),
                    },
                    None => Segment::Literal(s.into()),
                },
            )
            .collect();
        Operation {
            path: path.into(),
            segments,
        }
    }

    #[test]
    fn a_literal_beside_a_parameter_at_one_position_is_never_selected() {
        let candidates = [op("/gists/{id}"), op("/gists/public")];
        for seed in 0..20 {
            let picked = select(&candidates, 10, 8, &mut StdRng::seed_from_u64(seed));
            assert_eq!(picked.len(), 1, "seed {seed}: {picked:?}");
        }
    }

    #[test]
    fn names_and_ids_at_one_position_are_never_both_selected() {
        let candidates = [op("/users/{id}/keys"), op("/users/{name}/repos")];
        let picked = select(&candidates, 10, 8, &mut StdRng::seed_from_u64(1));
        assert_eq!(picked.len(), 1, "{picked:?}");
    }

    #[test]
    fn a_position_takes_at_most_the_allowed_number_of_literals() {
        let candidates: Vec<Operation> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|l| op(&format!("/orgs/{{org}}/{l}")))
            .collect();
        let picked = select(&candidates, 10, 3, &mut StdRng::seed_from_u64(7));
        assert_eq!(picked.len(), 3, "{picked:?}");
    }

    #[test]
    fn the_same_seed_selects_the_same_operations() {
        let candidates: Vec<Operation> = (0..30).map(|i| op(&format!("/x{i}/{{id}}"))).collect();
        let a = select(&candidates, 12, 8, &mut StdRng::seed_from_u64(42));
        let b = select(&candidates, 12, 8, &mut StdRng::seed_from_u64(42));
        assert_eq!(a, b);
        assert_eq!(a.len(), 8, "root takes at most 8 literals");
    }
}
