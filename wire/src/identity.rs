//! Consumer identity: a keyed hash of a secret (API key, bearer token, verified JWT subject or
//! mTLS peer), so raw secrets never leave the proxy. Filters and collector share the salt, so an
//! operator holding a raw key can look its consumer up.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;

/// 128-bit keyed hash of a consumer's secret; shown as 32 lowercase hex digits.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsumerId(pub [u8; 16]);

/// The shortest salt a filter accepts (`hash_salt`), and so the shortest a collector takes.
pub const MIN_SALT_BYTES: usize = 16;

/// HMAC-SHA256 of `secret` under `salt`, truncated to 128 bits.
pub fn consumer_id(salt: &[u8], secret: &[u8]) -> ConsumerId {
    let mut out = [0u8; 16];
    // HMAC accepts keys of any length, so this never fails.
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(salt) {
        mac.update(secret);
        let full = mac.finalize().into_bytes();
        for (dst, src) in out.iter_mut().zip(full.iter()) {
            *dst = *src;
        }
    }
    ConsumerId(out)
}

impl fmt::Display for ConsumerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// A consumer id that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consumer id {0:?} is not 32 hexadecimal digits")]
pub struct ParseConsumerIdError(pub String);

impl FromStr for ConsumerId {
    type Err = ParseConsumerIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ParseConsumerIdError(text.to_string());
        if text.len() != 32 || !text.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = text.get(i * 2..i * 2 + 2).ok_or_else(bad)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(ConsumerId(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_secret_and_salt_give_the_same_id() {
        assert_eq!(
            consumer_id(b"salt", b"key-1"),
            consumer_id(b"salt", b"key-1")
        );
    }

    #[test]
    fn another_salt_gives_another_id() {
        assert_ne!(
            consumer_id(b"salt-a", b"key-1"),
            consumer_id(b"salt-b", b"key-1")
        );
    }

    #[test]
    fn id_matches_the_published_hmac_sha256_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let id = consumer_id(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(id.to_string(), "5bdcc146bf60754e6a042426089575c7");
    }

    #[test]
    fn id_round_trips_through_its_hex_form() {
        let id = consumer_id(b"s", b"k");
        assert_eq!(id.to_string().parse::<ConsumerId>(), Ok(id));
    }

    #[test]
    fn hex_of_the_wrong_length_or_alphabet_is_refused() {
        assert!("abc".parse::<ConsumerId>().is_err());
        assert!("zz".repeat(16).parse::<ConsumerId>().is_err());
    }
}
