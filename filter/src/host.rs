//! The only place request data is read from Envoy: header values as bytes and properties, through
//! the `hostcalls` functions that return `Result`.
//!
//! Every host error is handled here and becomes "absent" (logged at debug), so capture code never
//! sees a failure and nothing here can trap the VM on a bad header value. [`RequestView`] lets
//! the capture and identity logic run natively in unit tests against a fake.

use log::debug;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;
use std::time::UNIX_EPOCH;

/// What capture needs to know about the request being logged.
pub trait RequestView {
    /// A request header's value as bytes (`None` when absent).
    fn request_header(&self, name: &str) -> Option<Vec<u8>>;
    /// A response header's value as bytes (`None` when absent or no response was sent).
    fn response_header(&self, name: &str) -> Option<Vec<u8>>;
    /// An Envoy property (attribute) in its serialized form (`None` when absent).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// Current Unix time in milliseconds.
    fn now_ms(&self) -> u64;
}

/// The live request, read through host calls.
pub struct HostView;

impl RequestView for HostView {
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        map_value(MapType::HttpRequestHeaders, name)
    }

    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        map_value(MapType::HttpResponseHeaders, name)
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        property(path)
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

/// A header value from one of Envoy's header maps, as bytes.
pub fn map_value(map: MapType, name: &str) -> Option<Vec<u8>> {
    match hostcalls::get_map_value_bytes(map, name) {
        Ok(value) => value,
        Err(status) => {
            debug!("reading header {name} failed: {status:?}");
            None
        }
    }
}

/// An Envoy property in its serialized form.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    match hostcalls::get_property(path.to_vec()) {
        Ok(value) => value,
        Err(status) => {
            debug!("reading property {} failed: {status:?}", path.join("."));
            None
        }
    }
}

/// Current Unix time in milliseconds according to Envoy; 0 if the host cannot tell.
pub fn now_ms() -> u64 {
    let since_epoch = hostcalls::get_current_time()
        .ok()
        .and_then(|now| now.duration_since(UNIX_EPOCH).ok());
    since_epoch
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// An integer property (Envoy serializes int64, durations and timestamps as 8 little-endian bytes).
pub fn as_i64(bytes: &[u8]) -> Option<i64> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    Some(i64::from_le_bytes(array))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A request described in a test: headers and properties by name.
    #[derive(Default)]
    pub struct FakeView {
        request: HashMap<String, Vec<u8>>,
        response: HashMap<String, Vec<u8>>,
        properties: HashMap<String, Vec<u8>>,
        now: u64,
    }

    impl FakeView {
        pub fn at(now_ms: u64) -> Self {
            FakeView {
                now: now_ms,
                ..FakeView::default()
            }
        }

        pub fn header(mut self, name: &str, value: &[u8]) -> Self {
            self.request.insert(name.to_string(), value.to_vec());
            self
        }

        pub fn response_header(mut self, name: &str, value: &[u8]) -> Self {
            self.response.insert(name.to_string(), value.to_vec());
            self
        }

        pub fn property(mut self, path: &[&str], value: &[u8]) -> Self {
            self.properties.insert(path.join("."), value.to_vec());
            self
        }

        pub fn int_property(self, path: &[&str], value: i64) -> Self {
            self.property(path, &value.to_le_bytes())
        }
    }

    impl RequestView for FakeView {
        fn request_header(&self, name: &str) -> Option<Vec<u8>> {
            self.request.get(name).cloned()
        }

        fn response_header(&self, name: &str) -> Option<Vec<u8>> {
            self.response.get(name).cloned()
        }

        fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
            self.properties.get(&path.join(".")).cloned()
        }

        fn now_ms(&self) -> u64 {
            self.now
        }
    }

    #[test]
    fn integer_properties_are_eight_little_endian_bytes() {
        assert_eq!(as_i64(&200i64.to_le_bytes()), Some(200));
        assert_eq!(as_i64(&[1, 2, 3]), None);
    }
}
