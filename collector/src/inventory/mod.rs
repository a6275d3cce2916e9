//! The inventory: every endpoint (host + method + path template) seen in traffic, with calls,
//! distinct consumers, status classes and first/last seen.
//!
//! Paths are templated as they arrive ([`segment`] for typed values, [`tree`] for positions
//! learned to be parameters). The raw value of a replaced segment is never kept in an
//! endpoint. This module only counts: it reads no clock and does no I/O.

pub mod endpoint;
pub mod naming;
pub mod segment;
pub mod tree;

use endpoint::{ConsumerIdx, EndpointIdx, EndpointTable, Hit};
use hashbrown::HashMap;
use tree::{Node, Rules, Walk};

/// Host under which requests are counted once `max_hosts` distinct hosts exist.
pub const OTHER_HOST: &str = "(other)";

/// Template of a request whose path does not start with `/` (`OPTIONS *` keeps `*`).
fn raw_template(path: &str) -> &'static str {
    if path == "*" {
        "*"
    } else {
        "{raw}"
    }
}

/// One request as the inventory needs it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub host: &'a str,
    pub method: &'a str,
    /// The path did not start with `/`: its one segment is the whole target.
    pub raw_path: bool,
    pub hit: Hit,
}

/// Where a request was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub endpoint: EndpointIdx,
    /// The request's consumer had not used this endpoint before.
    pub new_consumer: bool,
}

/// All hosts' path trees and the endpoint table.
#[derive(Debug)]
pub struct Inventory {
    rules: Rules,
    max_hosts: usize,
    hosts: HashMap<Box<str>, Node>,
    raw: HashMap<(Box<str>, Box<str>, &'static str), EndpointIdx>,
    table: EndpointTable,
    template: String,
}

impl Inventory {
    pub fn new(rules: Rules, max_hosts: usize) -> Self {
        Inventory {
            rules,
            max_hosts,
            hosts: HashMap::new(),
            raw: HashMap::new(),
            table: EndpointTable::default(),
            template: String::new(),
        }
    }

    pub fn endpoints(&self) -> &EndpointTable {
        &self.table
    }

    pub fn endpoints_mut(&mut self) -> &mut EndpointTable {
        &mut self.table
    }

    /// Counts one request; `None` when it would need an endpoint past the cap.
    pub fn observe<'s>(
        &mut self,
        request: Request<'_>,
        segments: impl Iterator<Item = &'s str>,
    ) -> Option<Counted> {
        let endpoint = if request.raw_path {
            self.locate_raw(&request, segments)?
        } else {
            self.locate(&request, segments)?
        };
        let new_consumer = self.table.hit(endpoint, request.hit);
        Some(Counted {
            endpoint,
            new_consumer,
        })
    }

    fn locate<'s>(
        &mut self,
        request: &Request<'_>,
        segments: impl Iterator<Item = &'s str>,
    ) -> Option<EndpointIdx> {
        let host = self.host_key(request.host);
        let node = self.hosts.entry_ref(host).or_default();
        let mut walk = Walk {
            rules: &self.rules,
            table: &mut self.table,
            host,
            method: request.method,
            template: &mut self.template,
            collapsed: false,
        };
        let endpoint = node.locate(segments, &mut walk);
        if walk.collapsed {
            node.render(&mut self.table);
        }
        endpoint
    }

    fn host_key<'h>(&self, host: &'h str) -> &'h str {
        if self.hosts.len() < self.max_hosts || self.hosts.contains_key(host) {
            host
        } else {
            OTHER_HOST
        }
    }

    fn locate_raw<'s>(
        &mut self,
        request: &Request<'_>,
        mut segments: impl Iterator<Item = &'s str>,
    ) -> Option<EndpointIdx> {
        let template = raw_template(segments.next().unwrap_or(""));
        let host = self.host_key(request.host);
        let key = (host.into(), request.method.into(), template);
        if let Some(idx) = self.raw.get(&key) {
            return Some(*idx);
        }
        if self.table.len() >= self.rules.max_endpoints {
            return None;
        }
        let endpoint = endpoint::Endpoint::new(host, request.method, template.to_string());
        let idx = self.table.create(endpoint);
        self.raw.insert(key, idx);
        Some(idx)
    }

    /// Puts back an endpoint read from the store.
    pub fn restore(&mut self, idx: EndpointIdx, endpoint: endpoint::Endpoint) {
        let host: Box<str> = endpoint.host.clone();
        let method: Box<str> = endpoint.method.clone();
        let path = endpoint.path.clone();
        self.table.restore(idx, endpoint);
        if !path.starts_with('/') {
            let template = raw_template(&path);
            self.raw.insert((host, method, template), idx);
            return;
        }
        let node = self.hosts.entry(host).or_default();
        node.restore(&path, &method, idx, &mut self.table);
    }

    /// Ends a restore: literal hit counts are rebuilt from the restored calls.
    pub fn finish_restore(&mut self) {
        for node in self.hosts.values_mut() {
            node.settle_hits(&self.table);
        }
    }

    /// Consumers that lost an endpoint through merges since the last call.
    pub fn take_lost(&mut self) -> Vec<ConsumerIdx> {
        self.table.take_lost()
    }
}

#[cfg(test)]
mod tests;
