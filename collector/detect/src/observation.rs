//! What detection sees of one request: an [`Observation`], built by the collector from an
//! ingested record after the inventory has templated its path.
//!
//! This module owns that type and the stable hash helpers that turn ID values and user agents
//! into the numbers an observation carries. It must never hold a raw ID value, key or payload.

use plumbline_wire::{Addr, ConsumerId};

/// One request as detection sees it.
///
/// The collector builds one per ingested record that has a consumer (unauthenticated requests
/// have no baseline to compare with), after path templating, and passes it to
/// [`crate::Engine::observe`] in roughly increasing `time_ms` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation<'a> {
    /// Unix time of the request in milliseconds, from the record. Detection never reads a clock.
    pub time_ms: u64,
    /// Who made the request.
    pub consumer: ConsumerId,
    /// Endpoint id assigned by the inventory (host + method + path template). Stable across
    /// restarts: baselines refer to it.
    pub endpoint: u32,
    /// The endpoint's template, e.g. `"GET /v1/orders/{id}"`; only copied into alert evidence.
    pub endpoint_path: &'a str,
    /// Hash of the values templating replaced (see [`object_hash`]); `None` when the path had
    /// no parameter. Raw values are never passed in.
    pub object: Option<u64>,
    /// The replaced value as a number when it was a plain integer (the last one when several
    /// were), so sequential ID walks can be seen; `None` otherwise.
    pub object_number: Option<u64>,
    /// HTTP status; 0 when the stream ended without one.
    pub status: u16,
    /// Response body bytes.
    pub response_bytes: u64,
    /// Client address as the filter saw it (after its trusted-hops rule).
    pub client: Option<Addr>,
    /// Hash of the user agent (see [`stable_hash`]); 0 when there was none.
    pub user_agent: u64,
    /// How many requests this record stands for (1 unless the filter sampled).
    pub weight: u32,
    /// The endpoint looks sensitive by its name (admin, export, debug, internal, keys, ...)
    /// according to the inventory. Rarity is judged by the engine itself from how many
    /// consumers use the endpoint, so the collector need not compute it.
    pub sensitive: bool,
}

/// A 64-bit hash that is the same on every platform and in every run (FNV-1a, then a
/// finaliser that spreads the bits). Used for ID values and user agents; not for secrets.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    mix64(hash)
}

/// Hash of the ID values that templating replaced in one path, in order.
pub fn object_hash<'v>(values: impl IntoIterator<Item = &'v str>) -> u64 {
    let mut hash: u64 = 0x9e37_79b9_7f4a_7c15;
    for value in values {
        hash = mix64(hash ^ stable_hash(value.as_bytes()));
    }
    hash
}

/// The value as an ID number when it is a plain decimal integer that fits 64 bits.
pub fn object_number(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The splitmix64 finaliser: a bijection on u64 with good avalanche.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The network an address belongs to for origin tracking: the /24 of an IPv4 address, the /48
/// of an IPv6 one, hashed to 32 bits.
pub(crate) fn origin_prefix(addr: Addr) -> u32 {
    let hash = match addr {
        Addr::V4(o) => stable_hash(&[4, o[0], o[1], o[2]]),
        Addr::V6(o) => {
            let mut bytes = [6u8; 7];
            bytes[1..].copy_from_slice(&o[..6]);
            stable_hash(&bytes)
        }
    };
    (hash >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_is_fixed_across_runs() {
        assert_eq!(stable_hash(b""), mix64(0xcbf2_9ce4_8422_2325));
        assert_eq!(stable_hash(b"abc"), stable_hash(b"abc"));
        assert_ne!(stable_hash(b"abc"), stable_hash(b"abd"));
    }

    #[test]
    fn object_hash_depends_on_order_of_values() {
        assert_ne!(object_hash(["1", "2"]), object_hash(["2", "1"]));
    }

    #[test]
    fn only_plain_integers_are_object_numbers() {
        assert_eq!(object_number("12345"), Some(12345));
        assert_eq!(object_number("0x10"), None);
        assert_eq!(object_number("-1"), None);
        assert_eq!(object_number("99999999999999999999999"), None);
    }

    #[test]
    fn addresses_in_one_slash_24_share_an_origin() {
        let a = origin_prefix(Addr::V4([10, 1, 2, 3]));
        let b = origin_prefix(Addr::V4([10, 1, 2, 200]));
        let c = origin_prefix(Addr::V4([10, 1, 3, 3]));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn ipv6_addresses_in_one_slash_48_share_an_origin() {
        let mut x = [0u8; 16];
        x[0] = 0x20;
        let mut y = x;
        y[10] = 7;
        let mut z = x;
        z[5] = 1;
        assert_eq!(origin_prefix(Addr::V6(x)), origin_prefix(Addr::V6(y)));
        assert_ne!(origin_prefix(Addr::V6(x)), origin_prefix(Addr::V6(z)));
    }
}
