//! The wire format between Plumbline's filter and its collector.
//!
//! This crate owns the record and batch types, their postcard 1.x encoding, the validation a
//! collector applies before trusting a batch, the batch reply that carries decisions back, and
//! the keyed hash that turns a secret into a consumer id. It builds for `wasm32-wasip1` and
//! native targets and must not depend on proxy-wasm, tokio or anything that does I/O.
//!
//! Why postcard and not bincode: bincode ceased development in 2025 and its last release does
//! not compile; postcard 1.x has a documented, stable wire format, which matters because filters
//! and collectors roll out independently across a mesh.

mod batch;
mod decision;
mod identity;
mod record;

pub use batch::{Batch, BatchBuilder, DecodeError, Limits};
pub use decision::{Action, BatchReply, Decision, DecisionSet, Mode, Subject};
pub use identity::{consumer_id, ConsumerId, ParseConsumerIdError, MIN_SALT_BYTES};
pub use record::{flags, Addr, Method, Record, StrRef};

/// Version of the encoding; bumped on any incompatible change to these types.
pub const FORMAT_VERSION: u16 = 1;

/// Longest path (with query names) a record keeps, in bytes: what a filter captures and what
/// a log line gives the collector.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest other text (host, user agent, content type, label, method) a record keeps, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;
/// Most path segments and query names a record keeps (a collector's default limit).
pub const MAX_SEGMENTS: usize = 64;

/// The path cut after `max` segments (segments follow the leading `/`).
pub fn cap_segments(path: &str, max: usize) -> &str {
    let Some(rest) = path.strip_prefix('/') else {
        return path;
    };
    match rest.match_indices('/').nth(max.saturating_sub(1)) {
        // `at` is the offset of a '/' in `rest`, so `at + 1` is a char boundary in `path`.
        Some((at, _)) => path.get(..at + 1).unwrap_or(path),
        None => path,
    }
}

/// Content type of an encoded batch or batch reply.
pub const CONTENT_TYPE: &str = "application/x-plumbline-batch";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_capping_keeps_short_paths_whole() {
        assert_eq!(cap_segments("/a/b/c", 2), "/a/b");
        assert_eq!(cap_segments("/a/b", 2), "/a/b");
        assert_eq!(cap_segments("/", 1), "/");
        assert_eq!(cap_segments("*", 1), "*");
        assert_eq!(cap_segments("/é/ü/x", 2), "/é/ü");
    }
}
