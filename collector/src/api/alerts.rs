//! Alerts over HTTP and the server's side of detection: `GET /v1/alerts` (optionally
//! `?status=open|acknowledged|resolved` and `&limit=N`), `POST /v1/alerts/{id}/ack` (operator
//! token, audited), the timer that closes windows on the collector's clock and saves the
//! baselines, the step after each stored batch, and the detection lines of `/metrics`.
//!
//! Everything that touches the state runs on a blocking thread under the state's lock; the
//! policy's decisions go through [`Persisted::apply_alert`] there (never
//! [`AppState::apply_alert`], which takes the lock itself).

use super::error::ApiError;
use super::handlers::{authorize, blocking};
use super::{now_ms, AppState};
use crate::decide::BY_OPERATOR;
use crate::detect::flow::{self, AckError, Alerting, Clock, Settled};
use crate::detect::view::{AlertView, AlertsView};
use crate::detect::StoredAlert;
use crate::pipeline::Pipeline;
use crate::store::alerts::status_from;
use crate::store::persisted::Persisted;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use plumbline_detect::AlertStatus;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Shared = State<Arc<AppState>>;

/// Alerts one `GET /v1/alerts` returns by default, and at most.
pub const DEFAULT_LIMIT: usize = 1_000;
pub const MAX_LIMIT: usize = 100_000;

/// How often the timer closes windows on the collector's clock.
pub const TICK_INTERVAL: Duration = Duration::from_secs(1);

/// `GET /v1/alerts`: newest first.
pub async fn list(
    State(state): Shared,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<AlertsView>, ApiError> {
    authorize(&headers, state.operator_token.as_ref())?;
    let (status, limit) = parse_query(query.as_deref())?;
    blocking(move || {
        let guard = state.lock();
        let persisted = guard
            .as_ref()
            .ok_or_else(|| ApiError::Internal("collector is shutting down".into()))?;
        alerts_view(persisted, status, limit).map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?
    .map(Json)
}

/// `POST /v1/alerts/{id}/ack`: the alert as acknowledged.
pub async fn ack(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<AlertView>, ApiError> {
    super::decisions::authorize_write(&state, &headers)?;
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("alert id {id:?} is not a number")))?;
    blocking(move || {
        let mut guard = state.lock();
        let persisted = guard
            .as_mut()
            .ok_or_else(|| ApiError::Internal("collector is shutting down".into()))?;
        let acked = flow::acknowledge(persisted, &state.sinks, id, BY_OPERATOR, now_ms());
        match acked {
            Ok(stored) => Ok(view(persisted, &stored)),
            Err(e @ AckError::NotFound(_)) => Err(ApiError::NotFound(e.to_string())),
            Err(e @ AckError::Resolved(_)) => Err(ApiError::Conflict(e.to_string())),
            Err(AckError::Store(e)) => Err(ApiError::Internal(e.to_string())),
        }
    })
    .await?
    .map(Json)
}

/// The stored alerts as the API shows them, with consumer labels.
pub fn alerts_view(
    persisted: &Persisted,
    status: Option<AlertStatus>,
    limit: usize,
) -> Result<AlertsView, crate::store::StoreError> {
    let alerts = persisted
        .alerts(status, limit)?
        .iter()
        .map(|stored| view(persisted, stored))
        .collect();
    Ok(AlertsView { alerts })
}

fn view(persisted: &Persisted, stored: &StoredAlert) -> AlertView {
    let label = persisted
        .pipeline
        .consumers
        .find(&stored.alert.consumer)
        .and_then(|c| c.label.as_deref());
    stored.view(label)
}

fn parse_query(query: Option<&str>) -> Result<(Option<AlertStatus>, usize), ApiError> {
    let mut status = None;
    let mut limit = DEFAULT_LIMIT;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "status" => {
                status = Some(status_from(value).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "status {value:?} is not one of open, acknowledged, resolved"
                    ))
                })?);
            }
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "limit {value:?} is not a number from 1 to {MAX_LIMIT}"
                        ))
                    })?;
            }
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {key:?}; /v1/alerts takes status and limit"
                )))
            }
        }
    }
    Ok((status, limit))
}

impl AppState {
    fn alerting(&self) -> Alerting<'_> {
        Alerting {
            policy: &self.policy,
            sinks: &self.sinks,
            max_stored: self.detect.alerts.max_stored,
        }
    }

    /// After a stored batch: closes the windows its records passed and takes their alerts
    /// through the policy. The caller holds the lock.
    pub(super) fn settle_records(&self, persisted: &mut Persisted, now_ms: u64) {
        let settled = flow::settle(persisted, self.alerting(), Clock::Records, now_ms);
        self.count(settled);
    }

    fn count(&self, settled: Settled) {
        for _ in 0..settled.refused_full {
            self.metrics.decision_refused_full();
        }
    }
}

/// Every [`TICK_INTERVAL`]: closes windows on the collector's clock (unless
/// `detect.wall_clock` is off) and saves the baselines every `detect.snapshot_interval`.
pub async fn tick_every(state: Arc<AppState>) {
    let mut ticks = tokio::time::interval(TICK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut saved = Instant::now();
    loop {
        ticks.tick().await;
        let save = saved.elapsed() >= state.detect.snapshot_interval;
        if save {
            saved = Instant::now();
        }
        let state = state.clone();
        let _ = tokio::task::spawn_blocking(move || tick(&state, save)).await;
    }
}

fn tick(state: &AppState, save: bool) {
    let mut guard = state.lock();
    let Some(persisted) = guard.as_mut() else {
        return;
    };
    let now = now_ms();
    if state.detect.wall_clock {
        let settled = flow::settle(persisted, state.alerting(), Clock::At(now), now);
        state.count(settled);
    }
    if save {
        if let Err(err) = flow::save_baselines(persisted, now) {
            tracing::warn!(error = %err, "cannot save baselines; will retry");
        }
    }
}

/// The detection lines of `/metrics`.
pub fn render_metrics(state: &AppState, pipeline: &Pipeline) -> String {
    let mut out = String::new();
    let Some(detect) = pipeline.detect.as_ref() else {
        return out;
    };
    let stats = detect.stats();
    let sinks = state.sinks.counters();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let lines: [(&str, &str, &str, u64); 10] = [
        (
            "plumbline_detect_observations_total",
            "counter",
            "Records observed by detection.",
            stats.observations,
        ),
        (
            "plumbline_detect_consumers",
            "gauge",
            "Consumers with a baseline.",
            stats.consumers,
        ),
        (
            "plumbline_detect_dropped_consumers_total",
            "counter",
            "Records of consumers past detect.max_consumers, not observed.",
            stats.dropped_consumers,
        ),
        (
            "plumbline_detect_windows_closed_total",
            "counter",
            "Detection windows closed and scored.",
            stats.windows_closed,
        ),
        (
            "plumbline_alerts_open",
            "gauge",
            "Alerts whose episode goes on.",
            detect.open_alerts() as u64,
        ),
        (
            "plumbline_detect_memory_bytes",
            "gauge",
            "Memory of the detection engine's state.",
            detect.memory_bytes() as u64,
        ),
        (
            "plumbline_alert_lines_written_total",
            "counter",
            "Alert updates appended to alerts.jsonl.",
            load(&sinks.lines_written),
        ),
        (
            "plumbline_alert_webhook_sent_total",
            "counter",
            "Alert updates the webhook took.",
            load(&sinks.webhook_sent),
        ),
        (
            "plumbline_alert_webhook_failed_total",
            "counter",
            "Alert updates the webhook refused after every retry.",
            load(&sinks.webhook_failed),
        ),
        (
            "plumbline_alert_webhook_dropped_total",
            "counter",
            "Alert updates dropped because the webhook queue was full.",
            load(&sinks.webhook_dropped),
        ),
    ];
    for (name, kind, help, value) in lines {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alerts_query_takes_a_status_and_a_bounded_limit() {
        assert_eq!(parse_query(None).unwrap(), (None, DEFAULT_LIMIT));
        let (status, limit) = parse_query(Some("status=open&limit=5")).unwrap();
        assert_eq!((status, limit), (Some(AlertStatus::Open), 5));
        assert!(parse_query(Some("status=closed")).is_err());
        assert!(parse_query(Some("limit=0")).is_err());
        assert!(parse_query(Some("sort=id")).is_err());
    }
}
