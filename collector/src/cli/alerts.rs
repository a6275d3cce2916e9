//! `plumbline alerts` (from a running collector or a data directory, as a table or the API's
//! JSON, optionally of one status) and `plumbline ack` (acknowledges an alert on a running
//! collector, with the operator token).

use super::client::Client;
use super::query::{fetch_state, print, print_json};
use super::table::{number, render, text};
use super::{AckArgs, AlertsArgs, CliError};
use crate::api::alerts::alerts_view;
use crate::config::secret::{SecretError, SecretSource};
use crate::config::{process_env, FileConfig};
use crate::detect::view::{AlertView, AlertsView};
use crate::store::alerts::status_name;
use std::process::ExitCode;

/// `plumbline alerts`.
pub fn list(args: &AlertsArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let status = args.status.map(plumbline_detect::AlertStatus::from);
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let mut path = format!("/v1/alerts?limit={}", args.limit);
    if let Some(status) = status {
        path.push_str("&status=");
        path.push_str(status_name(status));
    }
    let view: AlertsView = fetch_state(&args.query.source, file, &path, |persisted| {
        Ok(alerts_view(persisted, status, limit)?)
    })?;
    if args.query.json {
        print_json(&view);
    } else {
        print(&alerts_table(&view.alerts));
    }
    Ok(ExitCode::SUCCESS)
}

/// `plumbline ack`.
pub fn ack(args: &AckArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let token = file
        .secret(SecretSource::OperatorToken, &process_env)?
        .ok_or_else(|| SecretError::missing(SecretSource::OperatorToken))?;
    let url = args.server.url(file, &process_env);
    let client = Client::new(&url, Some(token), SecretSource::OperatorToken);
    let path = format!("/v1/alerts/{}/ack", args.id);
    let acked: AlertView = client.post_json(&path, &serde_json::json!({}))?;
    if args.json {
        print_json(&acked);
    } else {
        print(&alerts_table(std::slice::from_ref(&acked)));
    }
    Ok(ExitCode::SUCCESS)
}

/// The alerts as a table: one line each, the consumer by label when it has one.
pub fn alerts_table(alerts: &[AlertView]) -> String {
    let columns = [
        number("ID"),
        text("STATUS"),
        text("SEVERITY"),
        text("DETECTOR"),
        text("CONSUMER"),
        number("SCORE"),
        text("FEATURE"),
        number("BASELINE"),
        number("CURRENT"),
        text("WINDOW START"),
        text("ENDPOINT"),
        text("SUMMARY"),
    ];
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            let e = &a.evidence;
            vec![
                a.id.to_string(),
                status_name(a.status).to_string(),
                a.severity.name().to_string(),
                a.detector.name().to_string(),
                a.label.clone().unwrap_or_else(|| a.consumer.clone()),
                format!("{:.1}", a.score),
                e.feature.clone(),
                short(e.baseline),
                short(e.current),
                e.window_start.clone(),
                e.endpoints.first().cloned().unwrap_or_else(|| "-".into()),
                e.summary.clone(),
            ]
        })
        .collect();
    render(&columns, &rows)
}

/// A measured value in few characters.
fn short(value: f64) -> String {
    if value.abs() >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
