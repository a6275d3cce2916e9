//! One record per proxied request: metadata only, never payload values or raw secrets.
//!
//! Repeated strings (host, path segments, user agent, content types, labels, query parameter
//! names), consumer ids and client addresses are interned per batch; a record holds indices
//! into the batch's tables, so ID-bearing paths still encode small.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Index into [`crate::Batch::strings`].
pub type StrRef = u32;

/// Bits of [`Record::flags`].
pub mod flags {
    /// Plumbline answered the request itself because a decision blocked the consumer.
    pub const BLOCKED: u8 = 1;
    /// The response was a local reply (from Envoy or another filter), not from the upstream.
    pub const LOCAL_REPLY: u8 = 2;
    /// Monitor mode: a decision would have blocked this request.
    pub const WOULD_BLOCK: u8 = 4;
    /// The path did not start with `/`; `path` holds it whole as one segment.
    pub const RAW_PATH: u8 = 8;
    /// Plumbline answered 429 because a throttle decision's rate was exceeded.
    pub const THROTTLED: u8 = 16;
}

/// HTTP method; the common ones take one byte on the wire.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Patch,
    Options,
    Connect,
    Trace,
    /// Any other method, interned in the string table.
    Other(StrRef),
}

impl Method {
    /// The method for a known name; `None` for names that must be interned.
    pub fn known(name: &[u8]) -> Option<Method> {
        Some(match name {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"PATCH" => Method::Patch,
            b"OPTIONS" => Method::Options,
            b"CONNECT" => Method::Connect,
            b"TRACE" => Method::Trace,
            _ => return None,
        })
    }

    /// The method's name; `Other` needs the batch to resolve, so it answers `None`.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
            Method::Other(_) => return None,
        })
    }
}

/// A client address.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Addr {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Addr::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Addr::V4(v4.octets()),
                None => Addr::V6(v6.octets()),
            },
        }
    }
}

impl From<Addr> for IpAddr {
    fn from(addr: Addr) -> Self {
        match addr {
            Addr::V4(o) => IpAddr::from(o),
            Addr::V6(o) => IpAddr::from(o),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        IpAddr::from(*self).fmt(f)
    }
}

/// Metadata of one request.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Milliseconds after [`crate::Batch::base_time_ms`] at which the request started.
    pub offset_ms: u32,
    pub method: Method,
    pub host: StrRef,
    /// Path segments after the leading `/`, query stripped (see [`flags::RAW_PATH`]).
    pub path: Vec<StrRef>,
    /// Names of the query parameters, in order, values dropped.
    pub query: Vec<StrRef>,
    /// Response status; 0 when the stream ended without one.
    pub status: u16,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub duration_us: u32,
    /// Index into [`crate::Batch::consumers`]; `None` for an unauthenticated request.
    pub consumer: Option<u32>,
    /// Readable consumer label (e.g. a partner name set by an auth layer).
    pub label: Option<StrRef>,
    /// Index into [`crate::Batch::addrs`].
    pub client: Option<u32>,
    pub user_agent: Option<StrRef>,
    pub request_type: Option<StrRef>,
    pub response_type: Option<StrRef>,
    /// Bits from [`flags`].
    pub flags: u8,
    /// How many requests this record stands for (1 unless sampled).
    pub weight: u32,
}
