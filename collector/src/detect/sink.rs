//! Where alert updates go besides the database, for a SIEM: a JSON-lines file (one
//! [`AlertEvent`] per line, appended) and a webhook (each event POSTed as JSON).
//!
//! Neither may hold up ingest. The file is appended to in place (a small buffered write per
//! update). The webhook has a bounded queue and its own thread: an event that finds the queue
//! full is dropped and counted; a request that fails is retried with backoff a few times,
//! then counted as failed. Only `http://` URLs: the collector is built without TLS.

use super::config::{AlertSettings, WebhookSettings};
use super::view::AlertEvent;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest pause between two tries of one webhook request.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why the sinks could not start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot open the alerts file {path} (alerts.jsonl): {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the webhook thread: {0}")]
    Thread(std::io::Error),
}

/// What the sinks did since the process started.
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub lines_written: AtomicU64,
    pub lines_failed: AtomicU64,
    pub webhook_sent: AtomicU64,
    pub webhook_failed: AtomicU64,
    pub webhook_dropped: AtomicU64,
}

/// The configured sinks.
#[derive(Debug, Default)]
pub struct Sinks {
    jsonl: Option<Mutex<Lines>>,
    webhook: Option<Webhook>,
    counters: Arc<SinkCounters>,
}

#[derive(Debug)]
struct Lines {
    path: PathBuf,
    out: BufWriter<File>,
}

#[derive(Debug)]
struct Webhook {
    queue: Mutex<Option<SyncSender<Vec<u8>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Sinks {
    /// Opens the file and starts the webhook's thread, as configured.
    pub fn open(settings: &AlertSettings) -> Result<Sinks, SinkError> {
        let counters = Arc::new(SinkCounters::default());
        let jsonl = match &settings.jsonl {
            Some(path) => Some(Mutex::new(Lines::open(path)?)),
            None => None,
        };
        let webhook = match &settings.webhook {
            Some(hook) => Some(Webhook::start(hook, counters.clone())?),
            None => None,
        };
        Ok(Sinks {
            jsonl,
            webhook,
            counters,
        })
    }

    pub fn counters(&self) -> &SinkCounters {
        &self.counters
    }

    /// Hands the events to every sink without waiting on the webhook.
    pub fn send(&self, events: &[AlertEvent]) {
        if events.is_empty() {
            return;
        }
        if let Some(lines) = &self.jsonl {
            let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
            lines.write(events, &self.counters);
        }
        if let Some(webhook) = &self.webhook {
            webhook.enqueue(events, &self.counters);
        }
    }

    /// Stops taking events and gives the webhook up to `wait` to deliver what it holds.
    pub fn close(&self, wait: Duration) {
        if let Some(webhook) = &self.webhook {
            webhook.close(wait);
        }
    }
}

impl Lines {
    fn open(path: &PathBuf) -> Result<Lines, SinkError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SinkError::Open {
                path: path.clone(),
                source,
            })?;
        Ok(Lines {
            path: path.clone(),
            out: BufWriter::new(file),
        })
    }

    fn write(&mut self, events: &[AlertEvent], counters: &SinkCounters) {
        for event in events {
            let written = serde_json::to_writer(&mut self.out, event)
                .map_err(std::io::Error::from)
                .and_then(|()| self.out.write_all(b"\n"));
            match written {
                Ok(()) => counters.lines_written.fetch_add(1, Ordering::Relaxed),
                Err(_) => counters.lines_failed.fetch_add(1, Ordering::Relaxed),
            };
        }
        if let Err(err) = self.out.flush() {
            tracing::warn!(path = %self.path.display(), error = %err, "cannot write alerts file");
        }
    }
}

impl Webhook {
    fn start(
        settings: &WebhookSettings,
        counters: Arc<SinkCounters>,
    ) -> Result<Webhook, SinkError> {
        let (tx, rx) = sync_channel::<Vec<u8>>(settings.queue);
        let settings = settings.clone();
        let thread = std::thread::Builder::new()
            .name("plumbline-webhook".into())
            .spawn(move || deliver(rx, &settings, &counters))
            .map_err(SinkError::Thread)?;
        Ok(Webhook {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    fn enqueue(&self, events: &[AlertEvent], counters: &SinkCounters) {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = queue.as_ref() else {
            return;
        };
        for event in events {
            let Ok(body) = serde_json::to_vec(event) else {
                continue;
            };
            match tx.try_send(body) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    counters.webhook_dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        alert = event.alert.id,
                        "webhook queue full; alert update dropped"
                    );
                }
            }
        }
    }

    fn close(&self, wait: Duration) {
        drop(self.queue.lock().unwrap_or_else(|e| e.into_inner()).take());
        let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let deadline = Instant::now() + wait;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            tracing::warn!("webhook still delivering alert updates at shutdown; left undelivered");
        }
    }
}

/// The webhook thread: each body POSTed, retried with backoff, until the queue closes.
fn deliver(rx: Receiver<Vec<u8>>, settings: &WebhookSettings, counters: &SinkCounters) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(settings.timeout))
        .build()
        .into();
    for body in rx {
        let mut attempt = 0u32;
        loop {
            let outcome = post(&agent, &settings.url, &body);
            if outcome.is_ok() {
                counters.webhook_sent.fetch_add(1, Ordering::Relaxed);
                break;
            }
            if attempt >= settings.retries {
                counters.webhook_failed.fetch_add(1, Ordering::Relaxed);
                let error = outcome.err().unwrap_or_default();
                tracing::warn!(url = %settings.url, %error, attempts = attempt + 1,
                    "webhook did not take an alert update; given up");
                break;
            }
            std::thread::sleep(backoff(attempt));
            attempt += 1;
        }
    }
}

fn post(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<(), String> {
    let response = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body)
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

/// 250 ms, doubled per try, at most [`MAX_BACKOFF`].
fn backoff(attempt: u32) -> Duration {
    let ms = 250u64.saturating_mul(1 << attempt.min(10));
    Duration::from_millis(ms).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::view::{AlertView, EvidenceView};
    use plumbline_detect::{AlertStatus, Change, Detector, Severity};
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpListener;

    fn event(id: u64, change: Change) -> AlertEvent {
        AlertEvent {
            change,
            alert: AlertView {
                id,
                consumer: "ab".repeat(16),
                label: Some("acme".into()),
                detector: Detector::Enumeration,
                severity: Severity::High,
                score: 12.5,
                confidence: 0.4,
                status: AlertStatus::Open,
                windows: 1,
                evidence: EvidenceView {
                    feature: "distinct_objects_per_window".into(),
                    baseline: 4.0,
                    current: 180.0,
                    peers: None,
                    window_start: "2023-11-14T22:00:00Z".into(),
                    window_end: "2023-11-14T23:00:00Z".into(),
                    endpoints: vec!["GET /v1/orders/{id}".into()],
                    summary: "180 distinct objects".into(),
                },
                first_seen: "2023-11-14T22:00:00Z".into(),
                last_seen: "2023-11-14T23:00:00Z".into(),
                resolved_at: None,
            },
        }
    }

    fn temp_file(tag: &str) -> PathBuf {
        let name = format!("plumbline-sink-{tag}-{}.jsonl", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn each_update_is_appended_to_the_file_as_one_json_line() {
        let path = temp_file("lines");
        let settings = AlertSettings {
            jsonl: Some(path.clone()),
            ..AlertSettings::default()
        };
        let sinks = Sinks::open(&settings).unwrap();
        sinks.send(&[event(1, Change::Opened), event(1, Change::Updated)]);
        drop(sinks);
        let again = Sinks::open(&settings).unwrap();
        again.send(&[event(2, Change::Opened)]);
        drop(again);

        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let lines: Vec<AlertEvent> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let seen: Vec<(u64, Change)> = lines.iter().map(|e| (e.alert.id, e.change)).collect();
        assert_eq!(
            seen,
            [
                (1, Change::Opened),
                (1, Change::Updated),
                (2, Change::Opened)
            ],
            "appended, not overwritten"
        );
        assert!(text.contains("\"evidence\":{\"feature\":\"distinct_objects_per_window\""));
    }

    #[test]
    fn an_unwritable_alerts_file_is_refused_at_start_naming_it() {
        let settings = AlertSettings {
            jsonl: Some(PathBuf::from("/nonexistent-dir-for-plumbline/alerts.jsonl")),
            ..AlertSettings::default()
        };
        let err = Sinks::open(&settings).unwrap_err().to_string();
        assert!(err.contains("alerts.jsonl"), "{err}");
    }

    /// A one-connection-per-request HTTP server answering `status`; returns the bodies.
    fn hook_server(status: u16, requests: usize) -> (String, JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let thread = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            for stream in listener.incoming().take(requests) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                bodies.push(String::from_utf8(body).unwrap());
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                stream.write_all(reply.as_bytes()).unwrap();
            }
            bodies
        });
        (url, thread)
    }

    fn webhook(url: String, retries: u32, queue: usize) -> AlertSettings {
        AlertSettings {
            webhook: Some(WebhookSettings {
                url,
                timeout: Duration::from_secs(5),
                retries,
                queue,
            }),
            ..AlertSettings::default()
        }
    }

    #[test]
    fn the_webhook_receives_each_update_as_json() {
        let (url, server) = hook_server(200, 2);
        let sinks = Sinks::open(&webhook(url, 0, 10)).unwrap();
        sinks.send(&[event(5, Change::Opened), event(5, Change::Resolved)]);
        sinks.close(Duration::from_secs(10));
        let bodies = server.join().unwrap();
        let changes: Vec<Change> = bodies
            .iter()
            .map(|b| serde_json::from_str::<AlertEvent>(b).unwrap().change)
            .collect();
        assert_eq!(changes, [Change::Opened, Change::Resolved]);
        assert_eq!(sinks.counters().webhook_sent.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_failing_webhook_is_retried_then_counted_as_failed() {
        let (url, server) = hook_server(500, 3);
        let sinks = Sinks::open(&webhook(url, 2, 10)).unwrap();
        sinks.send(&[event(6, Change::Opened)]);
        sinks.close(Duration::from_secs(10));
        assert_eq!(server.join().unwrap().len(), 3, "one try and two retries");
        assert_eq!(sinks.counters().webhook_failed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_webhook_that_cannot_keep_up_drops_past_its_queue_without_blocking() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let mut settings = webhook(url, 0, 2);
        if let Some(hook) = settings.webhook.as_mut() {
            hook.timeout = Duration::from_millis(300);
        }
        let sinks = Sinks::open(&settings).unwrap();
        let started = Instant::now();
        let events: Vec<AlertEvent> = (0..50).map(|i| event(i, Change::Opened)).collect();
        sinks.send(&events);
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "send waited"
        );
        let dropped = sinks.counters().webhook_dropped.load(Ordering::Relaxed);
        assert!(dropped >= 47, "{dropped} dropped");
        sinks.close(Duration::from_millis(10));
        drop(listener);
    }
}
