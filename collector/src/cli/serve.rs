//! `plumbline serve`: resolves the configuration, refuses to start without an ingest token,
//! and runs the server until SIGINT or SIGTERM, then saves the state.

use super::{init_tracing, CliError, ServeArgs};
use crate::api::{ServeConfig, Server};
use crate::config::secret::{SecretError, SecretSource};
use crate::config::{process_env, ConfigError, FileConfig, DEFAULT_DATA, DEFAULT_LISTEN};
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(args: ServeArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    init_tracing("info");
    let config = resolve(args, file, &process_env)?;
    tracing::info!(
        listen = %config.listen,
        data = %config.data.display(),
        max_body_bytes = config.max_body_bytes,
        operator_token = config.operator_token.is_some(),
        salt = config.salt.is_some(),
        "starting collector"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let server = Server::bind(config).await?;
        server.run(shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Flags over environment over config file over defaults.
pub fn resolve(
    args: ServeArgs,
    file: &FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServeConfig, CliError> {
    let ingest_token = file
        .secret(SecretSource::IngestToken, env)?
        .ok_or_else(|| SecretError::missing(SecretSource::IngestToken))?;
    let listen = args
        .listen
        .or_else(|| file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let data = args
        .data
        .or_else(|| file.data.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
    Ok(ServeConfig {
        listen,
        data,
        max_body_bytes: file.max_body_bytes()?,
        settings: file.settings()?,
        ingest_token,
        operator_token: file.secret(SecretSource::OperatorToken, env)?,
        salt: file.secret(SecretSource::Salt, env)?,
        policy: file.policy()?,
        detect: file.detect_settings().map_err(ConfigError::from)?,
    })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServeArgs {
        ServeArgs {
            listen: None,
            data: None,
        }
    }

    #[test]
    fn without_an_ingest_token_serve_refuses_to_start_and_says_what_to_set() {
        let err = resolve(args(), &FileConfig::default(), &|_| None).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("no ingest token configured"), "{message}");
        assert!(message.contains("PLUMBLINE_INGEST_TOKEN"), "{message}");
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let env = |name: &str| (name == "PLUMBLINE_INGEST_TOKEN").then(|| "t".to_string());
        let config = resolve(args(), &FileConfig::default(), &env).unwrap();
        assert_eq!(config.listen, "127.0.0.1:7070");
        assert_eq!(config.data, PathBuf::from("./plumbline-data"));
        assert_eq!(config.max_body_bytes, 8 * 1024 * 1024);
        assert!(config.operator_token.is_none());
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let env = |name: &str| (name == "PLUMBLINE_INGEST_TOKEN").then(|| "t".to_string());
        let file = FileConfig {
            listen: Some("127.0.0.1:1".into()),
            data: Some("from-file".into()),
            ..FileConfig::default()
        };
        let flags = ServeArgs {
            listen: Some("127.0.0.1:2".into()),
            data: None,
        };
        let config = resolve(flags, &file, &env).unwrap();
        assert_eq!(config.listen, "127.0.0.1:2");
        assert_eq!(config.data, PathBuf::from("from-file"));
    }
}
