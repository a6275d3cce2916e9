//! Secrets: read from an environment variable or a file, held in a type that never prints
//! its value, and compared in constant time.

use plumbline_wire::MIN_SALT_BYTES;
use std::fmt;
use std::path::{Path, PathBuf};

/// Which secret to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    IngestToken,
    OperatorToken,
    Salt,
}

impl SecretSource {
    /// The environment variable holding the value; `_FILE` appended names a file holding it.
    pub fn var(self) -> &'static str {
        match self {
            SecretSource::IngestToken => "PLUMBLINE_INGEST_TOKEN",
            SecretSource::OperatorToken => "PLUMBLINE_OPERATOR_TOKEN",
            SecretSource::Salt => "PLUMBLINE_SALT",
        }
    }

    /// The config file key naming a file holding the value.
    pub fn file_key(self) -> &'static str {
        match self {
            SecretSource::IngestToken => "ingest_token_file",
            SecretSource::OperatorToken => "operator_token_file",
            SecretSource::Salt => "salt_file",
        }
    }

    pub(crate) fn what(self) -> &'static str {
        match self {
            SecretSource::IngestToken => "ingest token",
            SecretSource::OperatorToken => "operator token",
            SecretSource::Salt => "salt",
        }
    }
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the {what} from file {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the {what} from {origin} is empty")]
    Empty { what: &'static str, origin: String },
    #[error("both {var} and {var}_FILE are set, so the {what} is ambiguous: unset one of them")]
    Ambiguous {
        what: &'static str,
        var: &'static str,
    },
    #[error(
        "the {what} from {origin} is {got} bytes; it must be at least {min} bytes, as the \
         filters' hash_salt must be, and the same value as theirs"
    )]
    TooShort {
        what: &'static str,
        origin: String,
        got: usize,
        min: usize,
    },
    #[error("no {what} configured: set {var} or {var}_FILE (or {key} in the config file)")]
    Missing {
        what: &'static str,
        var: &'static str,
        key: &'static str,
    },
}

impl SecretError {
    /// The error for a secret that is required but absent.
    pub fn missing(which: SecretSource) -> Self {
        SecretError::Missing {
            what: which.what(),
            var: which.var(),
            key: which.file_key(),
        }
    }
}

/// A secret value; `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether `candidate` equals the secret, in time that depends only on the lengths.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let mut diff = u8::from(self.0.len() != candidate.len());
        for (i, byte) in candidate.iter().enumerate() {
            let mine = self.0.get(i % self.0.len().max(1)).copied().unwrap_or(0);
            diff |= mine ^ byte;
        }
        diff == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Reads a secret: the variable, else the file it names with `_FILE`, else `config_file`.
/// Both variables set is an error: which one the operator meant cannot be told.
pub fn read(
    which: SecretSource,
    env: &dyn Fn(&str) -> Option<String>,
    config_file: Option<&Path>,
) -> Result<Option<Secret>, SecretError> {
    let var = which.var();
    let file_var = format!("{var}_FILE");
    let value = env(var).filter(|v| !v.is_empty());
    let named = env(&file_var).filter(|v| !v.is_empty()).map(PathBuf::from);
    if value.is_some() && named.is_some() {
        return Err(SecretError::Ambiguous {
            what: which.what(),
            var,
        });
    }
    let (secret, origin) = match (value, named, config_file) {
        (Some(value), _, _) => (Secret::new(value), var.to_string()),
        (None, Some(path), _) => {
            let origin = format!("{file_var} ({})", path.display());
            (from_file(which, &path, file_var)?, origin)
        }
        (None, None, Some(path)) => {
            let origin = format!("{} ({})", which.file_key(), path.display());
            (
                from_file(which, path, which.file_key().to_string())?,
                origin,
            )
        }
        (None, None, None) => return Ok(None),
    };
    if which == SecretSource::Salt && secret.expose().len() < MIN_SALT_BYTES {
        return Err(SecretError::TooShort {
            what: which.what(),
            origin,
            got: secret.expose().len(),
            min: MIN_SALT_BYTES,
        });
    }
    Ok(Some(secret))
}

fn from_file(which: SecretSource, path: &Path, origin: String) -> Result<Secret, SecretError> {
    let mut bytes = std::fs::read(path).map_err(|source| SecretError::File {
        what: which.what(),
        path: path.to_path_buf(),
        source,
    })?;
    while bytes
        .last()
        .is_some_and(|b| matches!(b, b'\n' | b'\r' | b' ' | b'\t'))
    {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(SecretError::Empty {
            what: which.what(),
            origin: format!("{origin} ({})", path.display()),
        });
    }
    Ok(Secret::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::TempDir;

    #[test]
    fn a_secret_compares_equal_only_to_itself() {
        let secret = Secret::new("s3cret-token");
        assert!(secret.matches(b"s3cret-token"));
        assert!(!secret.matches(b"s3cret-tokem"));
        assert!(!secret.matches(b"s3cret"));
        assert!(!secret.matches(b""));
        assert!(!Secret::new("").matches(b"x"));
    }

    #[test]
    fn debug_output_never_shows_the_value() {
        let shown = format!("{:?}", Secret::new("hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn the_variable_wins_over_the_config_file_and_a_file_drops_its_newline() {
        let dir = TempDir::new("secret");
        let file = dir.path().join("token");
        std::fs::write(&file, "salt-from-the-file\n").unwrap();
        let path = file.to_string_lossy().to_string();
        let var_only =
            |name: &str| (name == "PLUMBLINE_SALT").then(|| "salt-from-the-var".to_string());
        let secret = read(SecretSource::Salt, &var_only, Some(&file))
            .unwrap()
            .unwrap();
        assert_eq!(secret.expose(), b"salt-from-the-var");
        let file_only = |name: &str| (name == "PLUMBLINE_SALT_FILE").then(|| path.clone());
        let secret = read(SecretSource::Salt, &file_only, None).unwrap().unwrap();
        assert_eq!(secret.expose(), b"salt-from-the-file");
        let config_only = read(SecretSource::Salt, &|_| None, Some(&file)).unwrap();
        assert_eq!(config_only.unwrap().expose(), b"salt-from-the-file");
    }

    #[test]
    fn a_salt_shorter_than_the_filters_accept_is_refused_naming_where_it_came_from() {
        // Before, a collector took `short` and no filter's consumer id could ever match it.
        let short = |name: &str| (name == "PLUMBLINE_SALT").then(|| "short".to_string());
        let err = read(SecretSource::Salt, &short, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PLUMBLINE_SALT") && err.contains("5 bytes") && err.contains("16"),
            "{err}"
        );
        let token = |name: &str| (name == "PLUMBLINE_INGEST_TOKEN").then(|| "tok".to_string());
        assert!(read(SecretSource::IngestToken, &token, None).is_ok());
    }

    #[test]
    fn a_secret_set_both_in_its_variable_and_its_file_variable_is_refused_naming_both() {
        // Before, the variable silently won and the file was ignored.
        let both = |name: &str| match name {
            "PLUMBLINE_OPERATOR_TOKEN" => Some("from-var".to_string()),
            "PLUMBLINE_OPERATOR_TOKEN_FILE" => Some("token-file".to_string()),
            _ => None,
        };
        let err = read(SecretSource::OperatorToken, &both, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "both PLUMBLINE_OPERATOR_TOKEN and PLUMBLINE_OPERATOR_TOKEN_FILE are set, so the \
             operator token is ambiguous: unset one of them"
        );
    }

    #[test]
    fn a_missing_secret_names_the_variables_to_set() {
        let message = SecretError::missing(SecretSource::IngestToken).to_string();
        assert!(message.contains("PLUMBLINE_INGEST_TOKEN_FILE"), "{message}");
    }
}
