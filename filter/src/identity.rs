//! Consumer identity: which configured source holds the caller's secret, and the keyed hash that
//! turns that secret into a [`ConsumerId`].
//!
//! Sources are tried in order and the first one present wins. Raw secrets live only for the
//! duration of one call here: they are hashed at once and never stored, logged or shipped (a VM
//! remembers the ids of recent secrets under a keyed fingerprint, not the secrets). JWT claims
//! are read from the dynamic metadata written by Envoy's `jwt_authn` filter after it verified the
//! token, never from the token itself.

use crate::host::{Headers, RequestView};
use hashbrown::HashMap;
use hmac::{Hmac, Mac};
use plumbline_wire::ConsumerId;
use serde::Deserialize;
use sha2::Sha256;
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::hash::Hasher;

/// Namespace of the dynamic metadata that Envoy's JWT filter writes verified payloads into.
pub const JWT_AUTHN_NAMESPACE: &str = "envoy.filters.http.jwt_authn";

/// One place a consumer's secret can come from.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum IdentitySource {
    /// A request header whose whole value is the secret (e.g. `x-api-key`).
    Header { name: String },
    /// `authorization: Bearer <token>`; the token is hashed whole.
    Bearer {},
    /// A claim of a JWT verified by `jwt_authn`, read from its `payload_in_metadata` entry.
    Jwt {
        payload_in_metadata: String,
        claim: String,
    },
    /// The URI SAN of the downstream peer's certificate.
    MtlsPeer {},
}

impl IdentitySource {
    /// Checks the fields a source needs; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            IdentitySource::Header { name } if !crate::config::is_header_name(name) => {
                Err(format!("header name {name:?} is not an HTTP header name"))
            }
            IdentitySource::Jwt {
                payload_in_metadata,
                claim,
            } if payload_in_metadata.is_empty() || claim.is_empty() => {
                Err("jwt needs non-empty `payload_in_metadata` and `claim`".to_string())
            }
            _ => Ok(()),
        }
    }

    /// The secret this source holds for the current request, if present and non-empty.
    fn secret<'a>(&self, headers: &'a Headers, view: &impl RequestView) -> Option<Cow<'a, [u8]>> {
        let secret = match self {
            IdentitySource::Header { name } => headers.get(name).map(Cow::Borrowed),
            IdentitySource::Bearer {} => headers
                .get("authorization")
                .and_then(bearer_token)
                .map(Cow::Borrowed),
            IdentitySource::Jwt {
                payload_in_metadata,
                claim,
            } => view
                .property(&[
                    "metadata",
                    "filter_metadata",
                    JWT_AUTHN_NAMESPACE,
                    payload_in_metadata,
                    claim,
                ])
                .map(Cow::Owned),
            IdentitySource::MtlsPeer {} => view
                .property(&["connection", "uri_san_peer_certificate"])
                .map(Cow::Owned),
        };
        secret.filter(|s| !s.is_empty())
    }
}

/// The consumer of the current request: the first source present, hashed; `None` when no source
/// is present (an unauthenticated request).
pub fn resolve(
    sources: &[IdentitySource],
    hasher: &ConsumerHasher,
    headers: &Headers,
    view: &impl RequestView,
) -> Option<ConsumerId> {
    sources
        .iter()
        .find_map(|source| source.secret(headers, view))
        .map(|secret| hasher.id(&secret))
}

/// The token of an `authorization` value using the Bearer scheme (scheme matched without case).
pub fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let rest = value.get(6..)?;
    if !rest.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Most consumer ids a VM remembers; the memory is emptied when it is full.
pub const MAX_REMEMBERED_IDS: usize = 1024;

/// HMAC-SHA256 keyed with the salt once, cloned per secret: the same ids as
/// [`plumbline_wire::consumer_id`] without re-keying on every request. Ids of recently seen
/// secrets are remembered, so a returning consumer skips the HMAC (about 2 µs in V8).
#[derive(Clone)]
pub struct ConsumerHasher {
    keyed: Hmac<Sha256>,
    remembered: RefCell<RememberedIds>,
}

impl ConsumerHasher {
    pub fn new(salt: &[u8]) -> Self {
        // HMAC takes keys of any length, so this never fails; the fallback keeps it panic-free.
        let keyed = Hmac::<Sha256>::new_from_slice(salt)
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        ConsumerHasher {
            keyed,
            remembered: RefCell::new(RememberedIds::new()),
        }
    }

    pub fn id(&self, secret: &[u8]) -> ConsumerId {
        let Ok(mut remembered) = self.remembered.try_borrow_mut() else {
            return self.hash(secret);
        };
        let Some(fingerprint) = remembered.fingerprint(secret) else {
            return self.hash(secret);
        };
        if let Some(id) = remembered.ids.get(&fingerprint) {
            return *id;
        }
        let id = self.hash(secret);
        remembered.insert(fingerprint, id);
        id
    }

    fn hash(&self, secret: &[u8]) -> ConsumerId {
        let mut mac = self.keyed.clone();
        mac.update(secret);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        for (dst, src) in out.iter_mut().zip(full.iter()) {
            *dst = *src;
        }
        ConsumerId(out)
    }
}

impl fmt::Debug for ConsumerHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConsumerHasher { .. }")
    }
}

/// Consumer ids by a fingerprint of their secret: a 128-bit keyed hash (two SipHash-2-4 with
/// random keys of this VM), so no raw secret is kept and two secrets share a fingerprint with odds
/// of about 2^-128. Without a random source there are no keys and nothing is remembered.
#[derive(Clone)]
struct RememberedIds {
    keys: Option<[u64; 4]>,
    ids: HashMap<u128, ConsumerId>,
}

impl RememberedIds {
    fn new() -> Self {
        let mut bytes = [0u8; 32];
        let keys = getrandom::getrandom(&mut bytes).ok().map(|()| {
            let mut keys = [0u64; 4];
            for (key, chunk) in keys.iter_mut().zip(bytes.chunks_exact(8)) {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                *key = u64::from_le_bytes(word);
            }
            keys
        });
        RememberedIds {
            keys,
            ids: HashMap::new(),
        }
    }

    fn fingerprint(&self, secret: &[u8]) -> Option<u128> {
        let [a, b, c, d] = self.keys?;
        let high = u128::from(siphash(a, b, secret));
        Some(high << 64 | u128::from(siphash(c, d, secret)))
    }

    fn insert(&mut self, fingerprint: u128, id: ConsumerId) {
        if self.ids.len() >= MAX_REMEMBERED_IDS {
            self.ids.clear();
        }
        self.ids.insert(fingerprint, id);
    }
}

/// SipHash-2-4 of `bytes` under the key `(k0, k1)`.
#[allow(deprecated)] // std's keyed SipHash; its suggested replacement cannot be keyed.
fn siphash(k0: u64, k1: u64, bytes: &[u8]) -> u64 {
    let mut hasher = std::hash::SipHasher::new_with_keys(k0, k1);
    hasher.write(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::tests::FakeView;
    use plumbline_wire::consumer_id;

    const SALT: &[u8] = b"0123456789abcdef";

    fn default_sources() -> Vec<IdentitySource> {
        vec![
            IdentitySource::Header {
                name: "x-api-key".into(),
            },
            IdentitySource::Bearer {},
        ]
    }

    #[test]
    fn the_prekeyed_hasher_gives_the_same_ids_as_the_wire_crate() {
        let hasher = ConsumerHasher::new(SALT);
        for secret in [&b""[..], b"k", b"a much longer secret value", &[0xff, 0xfe]] {
            assert_eq!(hasher.id(secret), consumer_id(SALT, secret));
        }
    }

    #[test]
    fn a_remembered_id_is_the_id_of_the_same_secret_and_only_of_it() {
        let hasher = ConsumerHasher::new(SALT);
        let secrets: Vec<Vec<u8>> = (0..50u8).map(|i| vec![b'k', i]).collect();
        for _ in 0..3 {
            for secret in &secrets {
                assert_eq!(hasher.id(secret), consumer_id(SALT, secret));
            }
        }
        assert_eq!(hasher.remembered.borrow().ids.len(), secrets.len());
    }

    #[test]
    fn the_remembered_ids_stay_within_their_cap() {
        let hasher = ConsumerHasher::new(SALT);
        for i in 0..(MAX_REMEMBERED_IDS as u32 * 2 + 7) {
            let secret = i.to_le_bytes();
            assert_eq!(hasher.id(&secret), consumer_id(SALT, &secret));
            assert!(hasher.remembered.borrow().ids.len() <= MAX_REMEMBERED_IDS);
        }
    }

    #[test]
    fn an_api_key_header_is_hashed_whole() {
        let view = FakeView::default().header("x-api-key", b"key-1");
        let id = resolve(
            &default_sources(),
            &ConsumerHasher::new(SALT),
            &view.request_headers(),
            &view,
        );
        assert_eq!(id, Some(consumer_id(SALT, b"key-1")));
    }

    #[test]
    fn an_api_key_that_is_not_utf8_is_still_hashed() {
        let view = FakeView::default().header("x-api-key", &[0xff, 0xfe]);
        let id = resolve(
            &default_sources(),
            &ConsumerHasher::new(SALT),
            &view.request_headers(),
            &view,
        );
        assert_eq!(id, Some(consumer_id(SALT, &[0xff, 0xfe])));
    }

    #[test]
    fn the_first_source_present_wins() {
        let view = FakeView::default()
            .header("x-api-key", b"key-1")
            .header("authorization", b"Bearer tok");
        let id = resolve(
            &default_sources(),
            &ConsumerHasher::new(SALT),
            &view.request_headers(),
            &view,
        );
        assert_eq!(id, Some(consumer_id(SALT, b"key-1")));
    }

    #[test]
    fn a_bearer_token_is_used_when_no_key_header_is_present() {
        let view = FakeView::default().header("authorization", b"bearer  tok.en ");
        let id = resolve(
            &default_sources(),
            &ConsumerHasher::new(SALT),
            &view.request_headers(),
            &view,
        );
        assert_eq!(id, Some(consumer_id(SALT, b"tok.en")));
    }

    #[test]
    fn an_empty_key_header_falls_through_to_the_next_source() {
        let view = FakeView::default()
            .header("x-api-key", b"")
            .header("authorization", b"Bearer tok");
        let id = resolve(
            &default_sources(),
            &ConsumerHasher::new(SALT),
            &view.request_headers(),
            &view,
        );
        assert_eq!(id, Some(consumer_id(SALT, b"tok")));
    }

    #[test]
    fn a_request_without_any_source_has_no_consumer() {
        let view = FakeView::default().header("authorization", b"Basic dXNlcjpwdw==");
        assert_eq!(
            resolve(
                &default_sources(),
                &ConsumerHasher::new(SALT),
                &view.request_headers(),
                &view
            ),
            None
        );
    }

    #[test]
    fn bearer_parsing_needs_the_scheme_a_space_and_a_token() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"BEARER\tabc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Bearerabc"), None);
        assert_eq!(bearer_token(b"Bearer   "), None);
        assert_eq!(bearer_token(b"Bear"), None);
        assert_eq!(bearer_token(b"Basic abc"), None);
    }

    #[test]
    fn a_jwt_claim_is_read_from_jwt_authn_metadata_only() {
        let sources = vec![IdentitySource::Jwt {
            payload_in_metadata: "jwt_payload".into(),
            claim: "sub".into(),
        }];
        let path = [
            "metadata",
            "filter_metadata",
            JWT_AUTHN_NAMESPACE,
            "jwt_payload",
            "sub",
        ];
        // An unverified token in the header alone gives no identity.
        let unverified = FakeView::default().header("authorization", b"Bearer x.y.z");
        assert_eq!(
            resolve(
                &sources,
                &ConsumerHasher::new(SALT),
                &unverified.request_headers(),
                &unverified
            ),
            None
        );
        let verified = FakeView::default().property(&path, b"partner-7");
        let id = resolve(
            &sources,
            &ConsumerHasher::new(SALT),
            &verified.request_headers(),
            &verified,
        );
        assert_eq!(id, Some(consumer_id(SALT, b"partner-7")));
    }

    #[test]
    fn an_mtls_peer_is_identified_by_its_uri_san() {
        let sources = vec![IdentitySource::MtlsPeer {}];
        let san = b"spiffe://example.org/partner/acme";
        let view = FakeView::default().property(&["connection", "uri_san_peer_certificate"], san);
        let id = resolve(
            &sources,
            &ConsumerHasher::new(SALT),
            &view.request_headers(),
            &view,
        );
        assert_eq!(id, Some(consumer_id(SALT, san)));
    }

    #[test]
    fn the_hasher_debug_output_shows_no_key_material() {
        let text = format!("{:?}", ConsumerHasher::new(SALT));
        assert_eq!(text, "ConsumerHasher { .. }");
    }
}
