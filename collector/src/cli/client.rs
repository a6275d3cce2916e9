//! The CLI's HTTP client of a running collector: reads the API's JSON, posts batches and
//! decision changes.
//! Tokens go in the `authorization` header only and never into messages; a 401 names the
//! variable to set.

use crate::config::secret::{Secret, SecretSource};
use plumbline_wire::{Batch, BatchReply, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::ErrorKind;
use std::time::Duration;
use ureq::http::Response;
use ureq::{Agent, Body};

/// Largest API reply read (a large inventory is a few MiB).
const MAX_REPLY: u64 = 512 * 1024 * 1024;

/// Why a request to the collector failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach a collector at {url}: {message} (is `plumbline serve` running?{hint})")]
    Unreachable {
        url: String,
        message: String,
        hint: String,
    },
    #[error(
        "collector at {url} answered 401 ({message}): set {var} or {var}_FILE to the \
         collector's {what}"
    )]
    Unauthorized {
        url: String,
        message: String,
        var: &'static str,
        what: &'static str,
    },
    #[error("collector at {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "{url} sent a reply that cannot be read: {message} (is it a Plumbline collector, \
         and the same version as this CLI?)"
    )]
    BadReply { url: String, message: String },
    #[error(
        "collector at {url} closed the connection while a batch of {bytes} bytes was being sent \
         ({message}); is the batch over the collector's max_body_bytes?"
    )]
    Dropped {
        url: String,
        bytes: usize,
        message: String,
    },
    #[error(
        "{refused}; a single record alone is {bytes} bytes as a batch (a long path, query or \
         user agent): raise the collector's max_body_bytes"
    )]
    RecordTooLarge {
        bytes: usize,
        refused: Box<ClientError>,
    },
    #[error(
        "collector address {base:?} is not an http:// URL like http://127.0.0.1:7070 (the CLI \
         speaks plain HTTP; put a TLS proxy in front of it if needed)"
    )]
    NotHttp { base: String },
}

impl ClientError {
    /// The collector refused a batch as too large (413), or closed the connection while its
    /// body was being sent, which is how a refusal of a large body shows.
    pub fn too_large(&self) -> bool {
        matches!(
            self,
            ClientError::Status { status: 413, .. } | ClientError::Dropped { .. }
        )
    }
}

/// A collector at a base URL, with the bearer token to present.
pub struct Client {
    agent: Agent,
    base: String,
    token: Option<Secret>,
    /// Which secret the token is, to say what to set when it is refused.
    presents: SecretSource,
    /// Added to the message when the collector cannot be reached.
    hint: String,
}

impl Client {
    /// A client presenting `token`, which is the secret `presents`.
    pub fn new(base: &str, token: Option<Secret>, presents: SecretSource) -> Self {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_recv_response(Some(Duration::from_secs(20)))
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        Client {
            agent: config.into(),
            base: base.to_string(),
            token,
            presents,
            hint: String::new(),
        }
    }

    /// The same client, saying `hint` when the collector cannot be reached.
    pub fn with_hint(self, hint: String) -> Self {
        Client { hint, ..self }
    }

    /// `GET path`, its JSON body parsed.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        if let Some(token) = &self.token {
            request = request.header("authorization", bearer(token));
        }
        let response = request.call().map_err(|e| self.unreachable(&url, e))?;
        let body = self.body(&url, response)?;
        serde_json::from_slice(&body).map_err(|e| bad_reply(&url, e))
    }

    /// `POST path` with a JSON body, the JSON reply parsed.
    pub fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let text = serde_json::to_vec(body).map_err(|e| bad_reply(&url, e))?;
        let mut request = self
            .agent
            .post(&url)
            .header("content-type", "application/json");
        if let Some(token) = &self.token {
            request = request.header("authorization", bearer(token));
        }
        let response = request
            .send(&text[..])
            .map_err(|e| self.unreachable(&url, e))?;
        let body = self.body(&url, response)?;
        serde_json::from_slice(&body).map_err(|e| bad_reply(&url, e))
    }

    /// `DELETE path`, the JSON reply parsed.
    pub fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.delete(&url);
        if let Some(token) = &self.token {
            request = request.header("authorization", bearer(token));
        }
        let response = request.call().map_err(|e| self.unreachable(&url, e))?;
        let body = self.body(&url, response)?;
        serde_json::from_slice(&body).map_err(|e| bad_reply(&url, e))
    }

    /// `POST /v1/batches`, the reply decoded.
    pub fn post_batch(&self, batch: &Batch) -> Result<BatchReply, ClientError> {
        let url = format!("{}/v1/batches", self.base);
        let mut request = self.agent.post(&url).header("content-type", CONTENT_TYPE);
        if let Some(token) = &self.token {
            request = request.header("authorization", bearer(token));
        }
        let encoded = batch.encode();
        let response = request.send(&encoded[..]).map_err(|e| match &e {
            // A collector refusing a body over its limit answers 413 and closes the
            // connection, which a sender still writing the body sees as a broken pipe.
            ureq::Error::Io(io)
                if matches!(
                    io.kind(),
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                ) =>
            {
                ClientError::Dropped {
                    url: url.clone(),
                    bytes: encoded.len(),
                    message: e.to_string(),
                }
            }
            _ => self.unreachable(&url, e),
        })?;
        let body = self.body(&url, response)?;
        BatchReply::decode(&body).map_err(|e| bad_reply(&url, e))
    }

    /// The body of a 2xx reply; any other status is an error with the server's message.
    fn body(&self, url: &str, mut response: Response<Body>) -> Result<Vec<u8>, ClientError> {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY)
            .read_to_vec()
            .map_err(|e| bad_reply(url, e))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        if status == 401 {
            return Err(ClientError::Unauthorized {
                url: url.to_string(),
                message: server_message(&body),
                var: self.presents.var(),
                what: self.presents.what(),
            });
        }
        Err(ClientError::Status {
            url: url.to_string(),
            status,
            message: server_message(&body),
        })
    }
}

fn bearer(token: &Secret) -> String {
    format!("Bearer {}", String::from_utf8_lossy(token.expose()))
}

/// The `error` field of a JSON error body, else the body's start.
fn server_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.as_str())
    {
        Some(message) => message.to_string(),
        None => String::from_utf8_lossy(body).chars().take(200).collect(),
    }
}

impl Client {
    fn unreachable(&self, url: &str, err: impl std::fmt::Display) -> ClientError {
        let scheme = self
            .base
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        if scheme.as_deref() != Some("http") || self.base.contains(' ') {
            return ClientError::NotHttp {
                base: self.base.clone(),
            };
        }
        ClientError::Unreachable {
            url: url.to_string(),
            message: err.to_string(),
            hint: self.hint.clone(),
        }
    }
}

fn bad_reply(url: &str, err: impl std::fmt::Display) -> ClientError {
    ClientError::BadReply {
        url: url.to_string(),
        message: err.to_string(),
    }
}
