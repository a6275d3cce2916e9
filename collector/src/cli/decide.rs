//! `plumbline block`, `throttle`, `unblock`, `decisions` and `audit`.
//!
//! Changes go to a running collector with the operator token (`PLUMBLINE_OPERATOR_TOKEN` or
//! `_FILE`); every value is checked here first so a typo gets a precise message before any
//! request is sent. A raw key is sent to the collector, which hashes it with the salt; it is
//! never printed. `decisions` and `audit` read a running collector or a data directory.

use super::client::Client;
use super::query::{fetch_state, print, print_json};
use super::table::{number, render, text};
use super::{
    read_key, AuditArgs, BlockArgs, CliError, QueryArgs, ServerArg, SubjectArgs, ThrottleArgs,
    UnblockArgs,
};
use crate::config::secret::{SecretError, SecretSource};
use crate::config::{process_env, FileConfig};
use crate::decide::audit::{AuditEntryView, AuditView};
use crate::decide::parse;
use crate::decide::view::{
    ActionKind, DecisionRequest, DecisionView, DecisionsView, MadeView, RemoveRequest, RemovedView,
    SubjectInput,
};
use plumbline_wire::ConsumerId;
use std::process::ExitCode;

/// `plumbline block`.
pub fn block(args: &BlockArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    parse::ttl_ms(&args.ttl)?;
    parse::block_status(args.status)?;
    let request = DecisionRequest {
        subject: subject(&args.subject)?,
        action: ActionKind::Block,
        status: Some(args.status),
        rate: None,
        burst: None,
        ttl: args.ttl.clone(),
        reason: args.reason.clone(),
    };
    make(&args.server, file, &request, args.json)
}

/// `plumbline throttle`.
pub fn throttle(args: &ThrottleArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    parse::ttl_ms(&args.ttl)?;
    parse::rate_per_hour(&args.rate)?;
    if args.burst == Some(0) {
        return Err(CliError::Burst);
    }
    let request = DecisionRequest {
        subject: subject(&args.subject)?,
        action: ActionKind::Throttle,
        status: None,
        rate: Some(args.rate.clone()),
        burst: args.burst,
        ttl: args.ttl.clone(),
        reason: args.reason.clone(),
    };
    make(&args.server, file, &request, args.json)
}

fn make(
    server: &ServerArg,
    file: &FileConfig,
    request: &DecisionRequest,
    json: bool,
) -> Result<ExitCode, CliError> {
    let made: MadeView = writer(server, file)?.post_json("/v1/decisions", request)?;
    if json {
        print_json(&made);
    } else {
        print(&made_text(&made));
    }
    Ok(ExitCode::SUCCESS)
}

/// `plumbline unblock`.
pub fn unblock(args: &UnblockArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let t = &args.target;
    let by_subject = SubjectArgs {
        consumer: t.consumer.clone(),
        key: t.key.clone(),
        address: t.address.clone(),
    };
    let removed: RemovedView = match t.id {
        Some(id) => writer(&args.server, file)?.delete_json(&format!("/v1/decisions/{id}"))?,
        None => {
            let request = RemoveRequest {
                subject: subject(&by_subject)?,
            };
            writer(&args.server, file)?.post_json("/v1/decisions/remove", &request)?
        }
    };
    if args.json {
        print_json(&removed);
        return Ok(ExitCode::SUCCESS);
    }
    for d in &removed.removed {
        print(&format!("decision {} removed: {}\n", d.id, describe(d)));
    }
    print(&format!("decision set version {}\n", removed.version));
    Ok(ExitCode::SUCCESS)
}

/// `plumbline decisions`.
pub fn list(args: &QueryArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let view: DecisionsView = fetch_state(&args.source, file, "/v1/decisions", |persisted| {
        persisted.sweep_decisions(crate::api::now_ms())?;
        Ok(DecisionsView::of(&persisted.decisions))
    })?;
    if args.json {
        print_json(&view);
    } else {
        print(&format!(
            "decision set version {}, mode {}, {} decisions\n",
            view.version,
            view.mode,
            view.decisions.len()
        ));
        print(&decisions_table(&view.decisions));
    }
    Ok(ExitCode::SUCCESS)
}

/// `plumbline audit`.
pub fn audit(args: &AuditArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let limit = args.limit.clamp(1, crate::decide::audit::MAX_LIMIT);
    let path = format!("/v1/audit?limit={limit}");
    let view: AuditView = fetch_state(&args.query.source, file, &path, |persisted| {
        Ok(AuditView {
            entries: persisted.audit(limit)?,
        })
    })?;
    if args.query.json {
        print_json(&view);
    } else {
        print(&audit_table(&view.entries));
    }
    Ok(ExitCode::SUCCESS)
}

/// The subject named on the command line, checked; a key is read but not hashed here.
fn subject(args: &SubjectArgs) -> Result<SubjectInput, CliError> {
    if let Some(id) = &args.consumer {
        id.trim().parse::<ConsumerId>()?;
        return Ok(SubjectInput::Consumer(id.trim().to_string()));
    }
    if let Some(key) = &args.key {
        return Ok(SubjectInput::Key(read_key(key)?));
    }
    let address = args.address.as_deref().unwrap_or_default();
    parse::address(address)?;
    Ok(SubjectInput::Address(address.trim().to_string()))
}

/// A client that presents the operator token, which changes require.
fn writer(server: &ServerArg, file: &FileConfig) -> Result<Client, CliError> {
    let token = file
        .secret(SecretSource::OperatorToken, &process_env)?
        .ok_or_else(|| SecretError::missing(SecretSource::OperatorToken))?;
    let url = server.url(file, &process_env);
    Ok(Client::new(&url, Some(token), SecretSource::OperatorToken))
}

/// What `block` and `throttle` print: the decision, and the one it replaced.
fn made_text(made: &MadeView) -> String {
    let d = &made.decision;
    let mut text = format!("decision {} made: {}\n", d.id, describe(d));
    if let Some(old) = &made.replaced {
        text.push_str(&format!(
            "it replaces decision {}: {}\n",
            old.id,
            describe(old)
        ));
    }
    text
}

/// One decision in words: `block consumer ab12… with 403 until T (reason)`.
fn describe(d: &DecisionView) -> String {
    let what = match &d.rate {
        Some(rate) => format!("throttle {} to {rate}", d.subject),
        None => format!("block {} with {}", d.subject, d.status),
    };
    format!(
        "{what} until {} by {} ({})",
        d.expires_at, d.created_by, d.reason
    )
}

fn decisions_table(decisions: &[DecisionView]) -> String {
    let columns = [
        number("ID"),
        text("SUBJECT"),
        text("ACTION"),
        number("STATUS"),
        text("RATE"),
        text("EXPIRES"),
        text("BY"),
        text("REASON"),
    ];
    let rows: Vec<Vec<String>> = decisions
        .iter()
        .map(|d| {
            vec![
                d.id.to_string(),
                d.subject.to_string(),
                d.action.clone(),
                d.status.to_string(),
                d.rate.clone().unwrap_or_else(|| "-".to_string()),
                d.expires_at.clone(),
                d.created_by.clone(),
                d.reason.clone(),
            ]
        })
        .collect();
    render(&columns, &rows)
}

fn audit_table(entries: &[AuditEntryView]) -> String {
    let columns = [
        number("SEQ"),
        text("AT"),
        text("WHO"),
        text("ACTION"),
        number("VERSION"),
        text("DECISION"),
        text("DETAIL"),
    ];
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let decision = e.decision.as_ref().map_or_else(
                || "-".to_string(),
                |d| format!("{} {} {}", d.id, d.action, d.subject),
            );
            vec![
                e.seq.to_string(),
                e.at.clone(),
                e.who.clone(),
                e.action.name().to_string(),
                e.version.to_string(),
                decision,
                e.detail.clone(),
            ]
        })
        .collect();
    render(&columns, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::view::SubjectView;

    #[test]
    fn a_bad_subject_is_refused_before_anything_is_sent() {
        let bad_id = SubjectArgs {
            consumer: Some("abc".into()),
            key: None,
            address: None,
        };
        let err = subject(&bad_id).unwrap_err().to_string();
        assert!(err.contains("not 32 hexadecimal digits"), "{err}");
        let bad_cidr = SubjectArgs {
            consumer: None,
            key: None,
            address: Some("10.0.0.0/40".into()),
        };
        let err = subject(&bad_cidr).unwrap_err().to_string();
        assert!(err.contains("10.0.0.0/40"), "{err}");
    }

    #[test]
    fn a_decision_that_replaced_another_says_which() {
        let view = |id, rate: Option<&str>| DecisionView {
            id,
            subject: SubjectView::Address("10.0.0.1".into()),
            action: if rate.is_some() { "throttle" } else { "block" }.into(),
            status: if rate.is_some() { 429 } else { 403 },
            rate: rate.map(str::to_string),
            burst: rate.map(|_| 5),
            reason: "r".into(),
            created_by: "operator".into(),
            created_at: "2025-01-01T00:00:00Z".into(),
            expires_at: "2025-01-01T01:00:00Z".into(),
        };
        let made = MadeView {
            decision: view(8, Some("5/s")),
            replaced: Some(view(7, None)),
        };
        assert_eq!(
            made_text(&made),
            "decision 8 made: throttle address 10.0.0.1 to 5/s until 2025-01-01T01:00:00Z by \
             operator (r)\nit replaces decision 7: block address 10.0.0.1 with 403 until \
             2025-01-01T01:00:00Z by operator (r)\n"
        );
        let alone = MadeView {
            replaced: None,
            ..made
        };
        assert!(!made_text(&alone).contains("replaces"));
    }

    #[test]
    fn a_decision_reads_as_a_sentence() {
        let view = DecisionView {
            id: 3,
            subject: SubjectView::Address("10.0.0.0/8".into()),
            action: "throttle".into(),
            status: 429,
            rate: Some("10/s".into()),
            burst: Some(10),
            reason: "scraping".into(),
            created_by: "operator".into(),
            created_at: "2025-01-01T00:00:00Z".into(),
            expires_at: "2025-01-01T01:00:00Z".into(),
        };
        assert_eq!(
            describe(&view),
            "throttle address 10.0.0.0/8 to 10/s until 2025-01-01T01:00:00Z by operator \
             (scraping)"
        );
    }
}
