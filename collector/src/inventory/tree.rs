//! The path tree of one host: where each request's path lands, and the rules that turn a
//! position into a parameter.
//!
//! A node's children are literal segments, typed placeholders (`{id}`, `{uuid}`, ...) or one
//! learned parameter. Endpoints hang off nodes by method. When a position becomes a parameter
//! its literal and typed children are merged into the parameter child, recursively, and the
//! endpoints below them merged too, so the tree is the inventory.
//!
//! Evidence for the rules lives in memory only and holds no raw value: per literal child, its
//! hit count, a 64-bit hash of the values of the parameters above it when first seen (its
//! *instance*), and whether it was later seen under another instance (*shared*).
//!
//! - A position with no parameter above it becomes a parameter once it has `param_threshold`
//!   distinct literals (four times that for the first segment, which is usually a version or
//!   a collection).
//! - A position under a parameter needs more than a count, because vocabulary repeats there
//!   (`issues`, `pulls`, ... below every `{owner}/{repo}`): it becomes a parameter when it has
//!   `param_threshold` distinct literals that keep being new (seen at most 1.5 times each on
//!   average: names from a large population), or early when values bound to their parent
//!   dominate (at least `param_min_bound` literals each seen repeatedly under one instance,
//!   from several instances: repository names, each below its owner). Reused words stay
//!   literal however many they are.
//! - Past `max_literals` distinct literals, a position becomes a parameter whatever else.

use super::endpoint::{Endpoint, EndpointIdx, EndpointTable};
use super::naming::{param_name, NameCtx};
use super::segment::{classify, Placeholder};
use hashbrown::HashMap;

/// Settings of the cardinality rules and caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Distinct literals that make a position with no parameter above it a parameter.
    pub param_threshold: usize,
    /// Bound values (seen twice under one parent instance) that make a position a parameter.
    pub param_min_bound: usize,
    /// Distinct literals at one position past which it becomes a parameter whatever else.
    pub max_literals: usize,
    /// Endpoints kept; requests that would create more are counted as over the cap.
    pub max_endpoints: usize,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            param_threshold: 20,
            param_min_bound: 8,
            max_literals: 1000,
            max_endpoints: 100_000,
        }
    }
}

/// Multiplier of the threshold for the first path segment.
const ROOT_FACTOR: usize = 4;
/// Distinct parent instances the bound values must come from.
const MIN_BOUND_INSTANCES: usize = 4;

/// A position in the path tree.
#[derive(Debug, Default)]
pub struct Node {
    literals: HashMap<Box<str>, Child>,
    typed: Vec<(Placeholder, Node)>,
    param: Option<Box<Param>>,
    endpoints: Vec<(Box<str>, EndpointIdx)>,
}

/// A learned parameter child.
#[derive(Debug)]
struct Param {
    name: Box<str>,
    node: Node,
}

/// A literal child and the evidence about it.
#[derive(Debug, Default)]
struct Child {
    node: Node,
    hits: u32,
    instance: Option<u64>,
    shared: bool,
}

impl Child {
    fn first(instance: u64) -> Self {
        Child {
            hits: 1,
            instance: Some(instance),
            ..Child::default()
        }
    }

    /// Counts a visit; answers whether the evidence changed in a way the rules care about.
    fn visit(&mut self, instance: u64) -> bool {
        self.hits = self.hits.saturating_add(1);
        match self.instance {
            None => {
                self.instance = Some(instance);
                false
            }
            Some(first) if first != instance && !self.shared => {
                self.shared = true;
                true
            }
            _ => self.hits == 2 && !self.shared,
        }
    }
}

/// Where a walk is: the index of the segment being placed, the hash of the parameter values
/// above, whether there is any, and what names a parameter here.
#[derive(Debug, Clone, Copy, Default)]
struct Pos<'s> {
    depth: usize,
    instance: u64,
    varies: bool,
    name: NameCtx<'s>,
}

impl<'s> Pos<'s> {
    fn after_literal(self, segment: &'s str) -> Self {
        Pos {
            depth: self.depth + 1,
            name: NameCtx::literal(segment),
            ..self
        }
    }

    fn after_value(self, segment: &str) -> Self {
        Pos {
            depth: self.depth + 1,
            instance: self.instance.wrapping_add(value_hash(self.depth, segment)),
            varies: true,
            name: self.name.param(),
        }
    }
}

/// What one walk needs besides the tree.
pub struct Walk<'a> {
    pub rules: &'a Rules,
    pub table: &'a mut EndpointTable,
    pub host: &'a str,
    pub method: &'a str,
    /// Scratch buffer for the template being walked.
    pub template: &'a mut String,
    /// Set when a position became a parameter: templates below must be rendered again.
    pub collapsed: bool,
}

impl Node {
    /// The endpoint for a path (given as segments), created if new; `None` past the cap.
    pub fn locate<'s>(
        &mut self,
        segments: impl Iterator<Item = &'s str>,
        walk: &mut Walk<'_>,
    ) -> Option<EndpointIdx> {
        walk.template.clear();
        let mut segments = segments;
        descend(self, &mut segments, Pos::default(), walk)
    }

    /// Puts back an endpoint read from the store, under its stored template.
    pub fn restore(
        &mut self,
        template: &str,
        method: &str,
        idx: EndpointIdx,
        t: &mut EndpointTable,
    ) {
        let mut node = self;
        if let Some(rest) = template.strip_prefix('/').filter(|r| !r.is_empty()) {
            for segment in rest.split('/') {
                node = restore_step(node, segment);
            }
        }
        match node.endpoints.iter().find(|(m, _)| **m == *method) {
            Some((_, existing)) => t.merge(idx, *existing),
            None => node.endpoints.push((method.into(), idx)),
        }
    }

    /// After a restore: gives each literal the number of requests that went through it (the
    /// calls of the endpoints below), so the rules see restored words as the reused words they
    /// are. Answers the calls below this node.
    pub fn settle_hits(&mut self, table: &EndpointTable) -> u64 {
        let mut total: u64 = self
            .endpoints
            .iter()
            .filter_map(|(_, idx)| table.get(*idx))
            .map(|e| e.calls)
            .sum();
        for child in self.literals.values_mut() {
            let below = child.node.settle_hits(table);
            child.hits = u32::try_from(below).unwrap_or(u32::MAX).max(1);
            total = total.saturating_add(below);
        }
        for (_, child) in self.typed.iter_mut() {
            total = total.saturating_add(child.settle_hits(table));
        }
        if let Some(param) = self.param.as_mut() {
            total = total.saturating_add(param.node.settle_hits(table));
        }
        total
    }

    /// Gives every endpoint below this node its current template.
    pub fn render(&self, table: &mut EndpointTable) {
        render(self, &mut String::new(), table);
    }
}

fn descend<'s, I>(node: &mut Node, segments: &mut I, pos: Pos<'s>, w: &mut Walk<'_>) -> Option<u32>
where
    I: Iterator<Item = &'s str>,
{
    let Some(segment) = segments.next() else {
        return at_leaf(node, w);
    };
    if node.param.is_none() {
        if let Some(child) = node.literals.get_mut(segment) {
            let changed = child.visit(pos.instance);
            if !(changed && pos.varies) {
                push_literal(w.template, segment);
                return descend(&mut child.node, segments, pos.after_literal(segment), w);
            }
            if !evaluate(node, pos, w) {
                return literal_step(node, segment, segments, pos, w);
            }
        } else if let Some(kind) = classify(segment) {
            return typed_step(node, kind, segment, segments, pos, w);
        } else {
            node.literals
                .insert(segment.into(), Child::first(pos.instance));
            if !evaluate(node, pos, w) {
                return literal_step(node, segment, segments, pos, w);
            }
        }
    }
    let param = node.param.as_mut()?;
    push_placeholder(w.template, &param.name);
    descend(&mut param.node, segments, pos.after_value(segment), w)
}

fn literal_step<'s, I>(
    node: &mut Node,
    segment: &'s str,
    segments: &mut I,
    pos: Pos<'s>,
    w: &mut Walk<'_>,
) -> Option<u32>
where
    I: Iterator<Item = &'s str>,
{
    let child = node.literals.get_mut(segment)?;
    push_literal(w.template, segment);
    descend(&mut child.node, segments, pos.after_literal(segment), w)
}

fn typed_step<'s, I>(
    node: &mut Node,
    kind: Placeholder,
    segment: &'s str,
    segments: &mut I,
    pos: Pos<'s>,
    w: &mut Walk<'_>,
) -> Option<u32>
where
    I: Iterator<Item = &'s str>,
{
    let index = typed_index(node, kind);
    push_placeholder(w.template, kind.name());
    let child = &mut node.typed[index].1;
    descend(child, segments, pos.after_value(segment), w)
}

fn typed_index(node: &mut Node, kind: Placeholder) -> usize {
    match node.typed.iter().position(|(p, _)| *p == kind) {
        Some(index) => index,
        None => {
            node.typed.push((kind, Node::default()));
            node.typed.len() - 1
        }
    }
}

fn at_leaf(node: &mut Node, w: &mut Walk<'_>) -> Option<EndpointIdx> {
    if let Some((_, idx)) = node.endpoints.iter().find(|(m, _)| **m == *w.method) {
        return Some(*idx);
    }
    if w.table.len() >= w.rules.max_endpoints {
        return None;
    }
    let path = if w.template.is_empty() {
        "/"
    } else {
        w.template.as_str()
    };
    let idx = w
        .table
        .create(Endpoint::new(w.host, w.method, path.to_string()));
    node.endpoints.push((w.method.into(), idx));
    Some(idx)
}

fn push_literal(template: &mut String, segment: &str) {
    template.push('/');
    template.push_str(segment);
}

fn push_placeholder(template: &mut String, name: &str) {
    template.push_str("/{");
    template.push_str(name);
    template.push('}');
}

/// Applies the rules to a node's child position; collapses it when they say so.
fn evaluate(node: &mut Node, pos: Pos<'_>, w: &mut Walk<'_>) -> bool {
    if !decide(node, &pos, w.rules) {
        return false;
    }
    collapse(node, pos, w);
    true
}

fn decide(node: &Node, pos: &Pos<'_>, rules: &Rules) -> bool {
    let count = node.literals.len();
    if count >= rules.max_literals {
        return true;
    }
    let factor = if pos.depth == 0 { ROOT_FACTOR } else { 1 };
    let many = count >= rules.param_threshold.saturating_mul(factor);
    if !pos.varies {
        return many;
    }
    let evidence = Evidence::of(node);
    evidence.bound_dominates(rules) || (many && evidence.fresh(count))
}

/// Counts over the literal children of one node.
struct Evidence {
    visits: u64,
    shared: usize,
    bound: usize,
    bound_instances: usize,
}

impl Evidence {
    fn of(node: &Node) -> Self {
        let mut instances = Vec::new();
        let mut shared = 0;
        let mut visits = 0u64;
        for child in node.literals.values() {
            visits += u64::from(child.hits);
            if child.shared {
                shared += 1;
            } else if let (true, Some(instance)) = (child.hits >= 2, child.instance) {
                instances.push(instance);
            }
        }
        let bound = instances.len();
        instances.sort_unstable();
        instances.dedup();
        Evidence {
            visits,
            shared,
            bound,
            bound_instances: instances.len(),
        }
    }

    fn bound_dominates(&self, rules: &Rules) -> bool {
        self.bound >= rules.param_min_bound
            && self.bound_instances >= MIN_BOUND_INSTANCES
            && self.bound >= 3 * self.shared
    }

    /// Values seen at most 1.5 times each on average: they keep being new.
    fn fresh(&self, count: usize) -> bool {
        self.visits * 2 <= count as u64 * 3
    }
}

/// Turns a node's child position into a parameter and merges everything below it.
fn collapse(node: &mut Node, pos: Pos<'_>, w: &mut Walk<'_>) {
    let mut param = node.param.take().unwrap_or_else(|| {
        let name = param_name(pos.name).into_boxed_str();
        Box::new(Param {
            name,
            node: Node::default(),
        })
    });
    fold_into(&mut param.node, node, pos.depth, w.table);
    w.collapsed = true;
    let below = Pos {
        depth: pos.depth + 1,
        varies: true,
        name: pos.name.param(),
        ..pos
    };
    evaluate_subtree(&mut param.node, below, w);
    node.param = Some(param);
}

/// Re-applies the rules everywhere below a fresh parameter, whose evidence just merged.
fn evaluate_subtree(node: &mut Node, pos: Pos<'_>, w: &mut Walk<'_>) {
    evaluate(node, pos, w);
    let next = Pos {
        depth: pos.depth + 1,
        ..pos
    };
    for (key, child) in node.literals.iter_mut() {
        evaluate_subtree(&mut child.node, pos.after_literal(key), w);
    }
    for (_, child) in node.typed.iter_mut() {
        let ctx = Pos {
            name: pos.name.param(),
            ..next
        };
        evaluate_subtree(child, ctx, w);
    }
    if let Some(param) = node.param.as_mut() {
        let ctx = Pos {
            name: pos.name.param(),
            ..next
        };
        evaluate_subtree(&mut param.node, ctx, w);
    }
}

/// Moves the literal and typed children of `from` (whose child position is `depth`) into
/// `into`, the parameter node.
fn fold_into(into: &mut Node, from: &mut Node, depth: usize, table: &mut EndpointTable) {
    for (key, mut child) in by_key(from.literals.drain()) {
        shift_instances(&mut child.node, value_hash(depth, &key));
        merge_node(into, child.node, depth + 1, table);
    }
    for (_, child) in from.typed.drain(..) {
        merge_node(into, child, depth + 1, table);
    }
}

/// Merges `src` into `dst`; both sit at the same position, their children at `depth`.
fn merge_node(dst: &mut Node, src: Node, depth: usize, table: &mut EndpointTable) {
    for (method, idx) in src.endpoints {
        match dst.endpoints.iter().find(|(m, _)| *m == method) {
            Some((_, target)) => table.merge(idx, *target),
            None => dst.endpoints.push((method, idx)),
        }
    }
    for (kind, child) in src.typed {
        let index = typed_index(dst, kind);
        merge_node(&mut dst.typed[index].1, child, depth + 1, table);
    }
    if let Some(param) = src.param {
        match dst.param.as_mut() {
            Some(mine) => merge_node(&mut mine.node, param.node, depth + 1, table),
            None => dst.param = Some(param),
        }
    }
    for (key, child) in by_key(src.literals) {
        match dst.literals.get_mut(&key) {
            Some(mine) => merge_child(mine, child, depth, table),
            None => {
                dst.literals.insert(key, child);
            }
        }
    }
    if let Some(mut param) = dst.param.take() {
        fold_into(&mut param.node, dst, depth, table);
        dst.param = Some(param);
    }
}

fn merge_child(dst: &mut Child, src: Child, depth: usize, table: &mut EndpointTable) {
    dst.hits = dst.hits.saturating_add(src.hits);
    let differ = matches!((dst.instance, src.instance), (Some(a), Some(b)) if a != b);
    dst.shared |= src.shared || differ;
    dst.instance = dst.instance.or(src.instance);
    merge_node(&mut dst.node, src.node, depth + 1, table);
}

/// Literal children in the order of their values. The maps are seeded at random (their keys
/// come from traffic), so their own order differs between runs; merging in value order keeps
/// which endpoint survives a merge, and so everything downstream of it, the same for the same
/// traffic: a replayed log gives the same inventory ids and the same alerts.
fn by_key(children: impl IntoIterator<Item = (Box<str>, Child)>) -> Vec<(Box<str>, Child)> {
    let mut sorted: Vec<_> = children.into_iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    sorted
}

/// Adds a newly parameterised value to the instance of every literal below it.
fn shift_instances(node: &mut Node, delta: u64) {
    for child in node.literals.values_mut() {
        child.instance = child.instance.map(|i| i.wrapping_add(delta));
        shift_instances(&mut child.node, delta);
    }
    for (_, child) in node.typed.iter_mut() {
        shift_instances(child, delta);
    }
    if let Some(param) = node.param.as_mut() {
        shift_instances(&mut param.node, delta);
    }
}

/// FNV-1a of a value and its position: evidence only, kept in memory, never stored.
fn value_hash(depth: usize, value: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ depth as u64;
    for byte in value.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn restore_step<'n>(node: &'n mut Node, segment: &str) -> &'n mut Node {
    let inner = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
    match inner {
        Some(name) => match Placeholder::from_name(name) {
            Some(kind) => {
                let index = typed_index(node, kind);
                &mut node.typed[index].1
            }
            None => {
                let param = node.param.get_or_insert_with(|| {
                    Box::new(Param {
                        name: name.into(),
                        node: Node::default(),
                    })
                });
                &mut param.node
            }
        },
        None => {
            let child = node.literals.entry(segment.into()).or_default();
            child.hits = child.hits.max(1);
            &mut child.node
        }
    }
}

fn render(node: &Node, prefix: &mut String, table: &mut EndpointTable) {
    for (_, idx) in &node.endpoints {
        table.set_path(*idx, if prefix.is_empty() { "/" } else { prefix });
    }
    let len = prefix.len();
    for (key, child) in &node.literals {
        push_literal(prefix, key);
        render(&child.node, prefix, table);
        prefix.truncate(len);
    }
    for (kind, child) in &node.typed {
        push_placeholder(prefix, kind.name());
        render(child, prefix, table);
        prefix.truncate(len);
    }
    if let Some(param) = &node.param {
        push_placeholder(prefix, &param.name);
        render(&param.node, prefix, table);
        prefix.truncate(len);
    }
}
