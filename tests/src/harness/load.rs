//! Many requests at once through Envoy, each on a new connection, so Envoy spreads them over
//! its workers.
//!
//! A [`Wave`] sends `n` requests at the same time and reads Envoy's per-worker listener stats
//! before and after, so it knows which workers took connections in it. When every worker took
//! at least one and every answer was a block, every worker enforces the block: each connection
//! carries one request and is answered by the worker that accepted it. [`hammer`] keeps
//! connections busy for a while and times every answer, for rate checks.

use super::envoy::Envoy;
use super::http::{send, Request, Response};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sends `requests` with at most `parallel` in flight, each on a new connection; the answers
/// come back in the order of the requests, transport failures as text.
pub fn send_all(
    addr: SocketAddr,
    requests: &[Request],
    parallel: usize,
) -> Vec<Result<Response, String>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Response, String>>>> =
        Mutex::new((0..requests.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1).min(requests.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    return;
                };
                let result = send(addr, request).map_err(|e| e.to_string());
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not sent".to_string())))
        .collect()
}

/// `n` copies of one request sent at once, and what the workers did with them.
#[derive(Debug)]
pub struct Wave {
    pub started: Instant,
    pub finished: Instant,
    pub answers: Vec<Result<Response, String>>,
    /// Connections each worker accepted while the wave was out.
    pub per_worker: Vec<u64>,
}

impl Wave {
    /// Sends `n` copies of `request` at once through `envoy`, each on a new connection.
    pub fn send(envoy: &Envoy, request: &Request, n: usize) -> Result<Wave, String> {
        let before = envoy.worker_connections()?;
        let requests = vec![request.clone(); n];
        let started = Instant::now();
        let answers = send_all(envoy.listener(), &requests, n);
        let finished = Instant::now();
        let after = envoy.worker_connections()?;
        let per_worker = after
            .iter()
            .zip(&before)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        Ok(Wave {
            started,
            finished,
            answers,
            per_worker,
        })
    }

    /// Whether every worker accepted at least one of the wave's connections.
    pub fn reached_every_worker(&self) -> bool {
        !self.per_worker.is_empty() && self.per_worker.iter().all(|n| *n > 0)
    }

    /// Whether every request was answered with `status`.
    pub fn all_answered(&self, status: u16) -> bool {
        self.answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(|r| r.status == status))
    }

    /// How many requests were answered with `status`.
    pub fn count(&self, status: u16) -> usize {
        self.answers
            .iter()
            .filter(|a| a.as_ref().is_ok_and(|r| r.status == status))
            .count()
    }

    /// The answers as `status×count` and failures, e.g. `200×12 403×52`, for messages.
    pub fn summary(&self) -> String {
        let mut counts = std::collections::BTreeMap::new();
        for answer in &self.answers {
            let key = match answer {
                Ok(r) => r.status.to_string(),
                Err(e) => format!("error({e})"),
            };
            *counts.entry(key).or_insert(0) += 1;
        }
        let statuses: Vec<String> = counts.iter().map(|(k, n)| format!("{k}×{n}")).collect();
        format!(
            "{} (connections per worker {:?})",
            statuses.join(" "),
            self.per_worker
        )
    }
}

/// One answer of [`hammer`], with when its request was sent and its answer read.
#[derive(Debug)]
pub struct Timed {
    /// The request's number, as given to `make`.
    pub n: usize,
    pub sent: Instant,
    pub answered: Instant,
    pub result: Result<Response, String>,
}

/// Keeps `parallel` connections busy with `make(n)` (n counts requests from 0) until `length`
/// has passed, each request on a new connection; every answer is timed.
pub fn hammer(
    addr: SocketAddr,
    parallel: usize,
    length: Duration,
    make: impl Fn(usize) -> Request + Sync,
) -> Vec<Timed> {
    let end = Instant::now() + length;
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1) {
            scope.spawn(|| {
                let mut mine = Vec::new();
                while Instant::now() < end {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let request = make(n);
                    let sent = Instant::now();
                    let result = send(addr, &request).map_err(|e| e.to_string());
                    let answered = Instant::now();
                    mine.push(Timed {
                        n,
                        sent,
                        answered,
                        result,
                    });
                }
                out.lock().unwrap_or_else(|e| e.into_inner()).extend(mine);
            });
        }
    });
    let mut all = out.into_inner().unwrap_or_else(|e| e.into_inner());
    all.sort_by_key(|t| t.sent);
    all
}
