//! The only place request data is read from Envoy, through the `hostcalls` functions that return
//! `Result`: whole header maps (values as bytes), properties, and the clock.
//!
//! Host calls that return data are the filter's main per-request cost (each one makes Envoy call
//! back into the VM to allocate), so capture reads each header map once, with one call, instead
//! of header by header. Every host error is handled here and becomes "absent" (logged at debug).
//! [`RequestView`] lets capture and identity logic run natively in unit tests against a fake.

use log::debug;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;
use std::time::UNIX_EPOCH;

/// A header map as Envoy holds it: lower-case names, values as bytes, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Headers(Vec<(String, Vec<u8>)>);

impl Headers {
    pub fn new(pairs: Vec<(String, Vec<u8>)>) -> Self {
        Headers(pairs)
    }

    /// The first value of header `name` (lower case), as bytes.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
    }
}

/// What capture reads from Envoy about the request being logged.
pub trait RequestView {
    /// All request headers (empty when there were none).
    fn request_headers(&self) -> Headers;
    /// All response headers (empty when no response was sent).
    fn response_headers(&self) -> Headers;
    /// An Envoy property (attribute) in its serialized form (`None` when absent).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
}

/// The live request, read through host calls.
pub struct HostView;

impl RequestView for HostView {
    fn request_headers(&self) -> Headers {
        map(MapType::HttpRequestHeaders)
    }

    fn response_headers(&self) -> Headers {
        map(MapType::HttpResponseHeaders)
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        property(path)
    }
}

/// One of Envoy's header maps, whole, in one host call.
pub fn map(map: MapType) -> Headers {
    match hostcalls::get_map_bytes(map) {
        Ok(pairs) => Headers::new(pairs),
        Err(status) => {
            debug!("reading header map {map:?} failed: {status:?}");
            Headers::default()
        }
    }
}

/// One header value from one of Envoy's header maps, as bytes.
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

/// The size of this VM's wasm linear memory in bytes (0 outside wasm, as in native tests).
pub fn linear_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        (core::arch::wasm32::memory_size(0) as u64) * 65_536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// Current Unix time in nanoseconds according to Envoy; 0 if the host cannot tell.
pub fn now_ns() -> u64 {
    let since_epoch = hostcalls::get_current_time()
        .ok()
        .and_then(|now| now.duration_since(UNIX_EPOCH).ok());
    since_epoch
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
        .unwrap_or(0)
}

/// Current Unix time in milliseconds according to Envoy; 0 if the host cannot tell.
pub fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A request described in a test: headers and properties by name.
    #[derive(Default)]
    pub struct FakeView {
        request: Vec<(String, Vec<u8>)>,
        response: Vec<(String, Vec<u8>)>,
        properties: HashMap<String, Vec<u8>>,
    }

    fn set(pairs: &mut Vec<(String, Vec<u8>)>, name: &str, value: &[u8]) {
        pairs.retain(|(key, _)| key != name);
        pairs.push((name.to_string(), value.to_vec()));
    }

    impl FakeView {
        pub fn header(mut self, name: &str, value: &[u8]) -> Self {
            set(&mut self.request, name, value);
            self
        }

        pub fn response_header(mut self, name: &str, value: &[u8]) -> Self {
            set(&mut self.response, name, value);
            self
        }

        pub fn property(mut self, path: &[&str], value: &[u8]) -> Self {
            self.properties.insert(path.join("."), value.to_vec());
            self
        }
    }

    impl RequestView for FakeView {
        fn request_headers(&self) -> Headers {
            Headers::new(self.request.clone())
        }

        fn response_headers(&self) -> Headers {
            Headers::new(self.response.clone())
        }

        fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
            self.properties.get(&path.join(".")).cloned()
        }
    }

    #[test]
    fn a_header_lookup_finds_the_first_value_by_its_lower_case_name() {
        let headers = Headers::new(vec![
            ("x-a".into(), b"1".to_vec()),
            ("x-a".into(), b"2".to_vec()),
        ]);
        assert_eq!(headers.get("x-a"), Some(&b"1"[..]));
        assert_eq!(headers.get("x-b"), None);
    }
}
