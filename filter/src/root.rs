//! The root context of one VM: reads the configuration (refusing a bad one so Envoy rejects it),
//! picks the VM's random instance id, creates request contexts, ships batches to the collector
//! with `dispatch_http_call` on a timer and when the collector answers, and keeps the VM's
//! decision set current (from replies and, on each tick, from shared data).
//!
//! Every host call's failure is handled; none of them can affect a proxied request.

use crate::config::Settings;
use crate::host::{self, now_ms};
use crate::http::{RequestCapture, Shared};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::shared::{self, HostStore};
use crate::shipper::{classify, Transport};
use crate::sync::DecisionSync;
use log::{error, info, warn};
use plumbline_wire::CONTENT_TYPE;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// Longest timer period; a full batch waits at most this long for the root context to see it.
const MAX_TICK_MS: u32 = 100;
/// Largest collector reply read, in bytes.
const MAX_REPLY_BYTES: usize = 4 << 20;

/// The root context of one VM.
pub struct PlumblineRoot {
    instance: u64,
    shared: Option<Shared>,
    metrics: Option<Metrics>,
    sync: DecisionSync,
}

impl PlumblineRoot {
    pub fn new() -> Self {
        PlumblineRoot {
            instance: random_instance_id(),
            shared: None,
            metrics: None,
            sync: DecisionSync::new(1),
        }
    }

    fn apply(&mut self, settings: Settings) {
        self.sync.set_max_decisions(settings.max_decisions);
        let node = node_id();
        let pipeline = match self.shared.take() {
            Some(old) => {
                if let Ok(mut pipeline) = old.pipeline.try_borrow_mut() {
                    pipeline.reconfigure(&settings, node.clone());
                }
                old.pipeline
            }
            None => Rc::new(RefCell::new(Pipeline::new(
                &settings,
                node.clone(),
                self.instance,
            ))),
        };
        info!(
            "configured; instance {:016x} on node {node} ships to cluster {}",
            self.instance, settings.collector_cluster
        );
        if !settings.enforce {
            info!("enforcement switched off locally: decisions are only recorded as would-block");
        }
        self.shared = Some(Shared {
            settings: Rc::new(settings),
            pipeline,
            held: self.sync.held(),
        });
    }

    fn publish_metrics(&mut self) {
        let (Some(metrics), Some(shared)) = (&mut self.metrics, &self.shared) else {
            return;
        };
        metrics.report_memory(host::linear_memory_bytes());
        if let Ok(mut pipeline) = shared.pipeline.try_borrow_mut() {
            metrics.publish(&mut pipeline.tally);
        }
    }
}

impl Default for PlumblineRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl Context for PlumblineRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        // Envoy reports a failed or timed-out call with no headers; reading them then would fail.
        let status = (num_headers > 0)
            .then(|| host::map_value(MapType::HttpCallResponseHeaders, ":status"))
            .flatten();
        let body = if status.is_some() && body_size > 0 {
            reply_body(body_size)
        } else {
            None
        };
        let outcome = classify(status.as_deref(), body.as_deref());
        // The decoded reply is all that is needed: a large set's bytes go before it is indexed.
        drop(body);
        if let Some(shared) = &self.shared {
            let mut transport = HttpTransport {
                settings: &shared.settings,
            };
            if let Ok(mut pipeline) = shared.pipeline.try_borrow_mut() {
                let now = now_ms();
                let answer = pipeline.on_answer(token, outcome, now);
                let decisions =
                    answer.and_then(|a| Some((a.reply.decisions?, a.batch_decisions_version)));
                if let Some((set, batch_version)) = decisions {
                    self.sync
                        .on_reply(set, batch_version, now, &HostStore, &mut pipeline.tally);
                    pipeline.set_held_decisions_version(self.sync.version());
                }
                pipeline.ship_if_due(now, &mut transport);
            }
        }
        self.publish_metrics();
    }

    fn on_done(&mut self) -> bool {
        if let Some(metrics) = &mut self.metrics {
            metrics.withdraw();
        }
        true
    }
}

impl RootContext for PlumblineRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        self.metrics = Some(Metrics::define());
        shared::create_keys(&HostStore);
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("cannot read the plugin configuration: {status:?}");
                return false;
            }
        };
        let settings = match Settings::from_json(&bytes) {
            Ok(settings) => settings,
            Err(e) => {
                error!("configuration rejected: {e}");
                return false;
            }
        };
        proxy_wasm::set_log_level(settings.log_level);
        if self.metrics.is_none() {
            self.metrics = Some(Metrics::define());
        }
        let tick = Duration::from_millis(u64::from(settings.flush_interval_ms.min(MAX_TICK_MS)));
        if let Err(status) = hostcalls::set_tick_period(tick) {
            error!("cannot start the flush timer: {status:?}");
            return false;
        }
        self.apply(settings);
        true
    }

    fn on_tick(&mut self) {
        if let Some(shared) = &self.shared {
            let mut transport = HttpTransport {
                settings: &shared.settings,
            };
            if let Ok(mut pipeline) = shared.pipeline.try_borrow_mut() {
                let now = now_ms();
                self.sync.on_tick(now, &HostStore, &mut pipeline.tally);
                pipeline.set_held_decisions_version(self.sync.version());
                pipeline.tick(now, &mut transport);
            }
        }
        self.publish_metrics();
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(RequestCapture::new(self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Sends batches to the collector cluster from the root context.
struct HttpTransport<'a> {
    settings: &'a Settings,
}

impl Transport for HttpTransport<'_> {
    fn send(&mut self, body: &[u8]) -> Result<u32, String> {
        let s = self.settings;
        let headers = vec![
            (":method", "POST"),
            (":path", s.ingest_path.as_str()),
            (":authority", s.collector_authority.as_str()),
            ("content-type", CONTENT_TYPE),
            ("authorization", s.authorization.as_str()),
        ];
        let timeout = Duration::from_millis(u64::from(s.batch_timeout_ms));
        hostcalls::dispatch_http_call(&s.collector_cluster, headers, Some(body), vec![], timeout)
            .map_err(|status| {
                format!(
                    "dispatch to cluster {} refused: {status:?}",
                    s.collector_cluster
                )
            })
    }
}

fn reply_body(body_size: usize) -> Option<Vec<u8>> {
    let size = body_size.min(MAX_REPLY_BYTES);
    match hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size) {
        Ok(body) => body,
        Err(status) => {
            warn!("cannot read the collector reply: {status:?}");
            None
        }
    }
}

/// Envoy's node id (`xds.node.id`; `node.id` in older Envoys), or `unknown`.
fn node_id() -> String {
    [&["xds", "node", "id"][..], &["node", "id"][..]]
        .iter()
        .find_map(|path| host::property(path).filter(|id| !id.is_empty()))
        .map(|id| String::from_utf8_lossy(&id).into_owned())
        .unwrap_or_else(|| "unknown".to_string())
}

/// A random id for this VM (WASI `random_get`); falls back to the clock if that fails.
fn random_instance_id() -> u64 {
    let mut bytes = [0u8; 8];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(e) => {
            warn!("no random source ({e}); deriving the instance id from the clock");
            let nanos = hostcalls::get_current_time()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.subsec_nanos());
            u64::from(nanos).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
        }
    }
}
