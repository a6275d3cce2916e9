//! Classifies one path segment: integers, UUIDs, long hex, dates, emails and opaque tokens are
//! values, never names, so each becomes a typed placeholder. Everything else stays a literal
//! until the cardinality rules in [`super::tree`] say otherwise.
//!
//! Classification reads bytes only and never allocates; it must stay cheap because it runs
//! for every segment that is not already a known literal.

/// A typed placeholder: a segment whose shape alone says it is a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Placeholder {
    Id,
    Uuid,
    Hex,
    Date,
    Email,
    Token,
}

impl Placeholder {
    pub const ALL: [Placeholder; 6] = [
        Placeholder::Id,
        Placeholder::Uuid,
        Placeholder::Hex,
        Placeholder::Date,
        Placeholder::Email,
        Placeholder::Token,
    ];

    /// The name inside the braces, as shown in a path template.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Id => "id",
            Placeholder::Uuid => "uuid",
            Placeholder::Hex => "hex",
            Placeholder::Date => "date",
            Placeholder::Email => "email",
            Placeholder::Token => "token",
        }
    }

    /// The placeholder with this name, if it is one of the typed ones.
    pub fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Shortest run of hex digits taken for a value (a short git SHA has 7).
const MIN_HEX_LEN: usize = 7;
/// Shortest segment taken for an opaque token.
const MIN_TOKEN_LEN: usize = 16;
/// Least Shannon entropy, in bits per character, of an opaque token.
const MIN_TOKEN_ENTROPY: f64 = 3.0;

/// The placeholder a segment stands for, or `None` when it may be a name.
pub fn classify(segment: &str) -> Option<Placeholder> {
    let bytes = segment.as_bytes();
    if is_integer(bytes) {
        return Some(Placeholder::Id);
    }
    if is_uuid(bytes) {
        return Some(Placeholder::Uuid);
    }
    if is_date(bytes) {
        return Some(Placeholder::Date);
    }
    if is_email(segment) {
        return Some(Placeholder::Email);
    }
    if is_long_hex(bytes) {
        return Some(Placeholder::Hex);
    }
    if is_token(bytes) {
        return Some(Placeholder::Token);
    }
    None
}

fn is_integer(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.len() <= 20 && bytes.iter().all(u8::is_ascii_digit)
}

fn is_uuid(bytes: &[u8]) -> bool {
    if bytes.len() != 36 {
        return false;
    }
    bytes.iter().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    })
}

/// `YYYY-MM-DD`, optionally followed by a time (`T...`), as in RFC 3339.
fn is_date(bytes: &[u8]) -> bool {
    if bytes.len() < 10 || (bytes.len() > 10 && bytes[10] != b'T' && bytes[10] != b't') {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && bytes[4] == b'-' && digits(5..7) && bytes[7] == b'-' && digits(8..10)) {
        return false;
    }
    let month = (bytes[5] - b'0') * 10 + (bytes[6] - b'0');
    let day = (bytes[8] - b'0') * 10 + (bytes[9] - b'0');
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// `local@domain.tld`, with the `@` written plainly or percent-encoded.
fn is_email(segment: &str) -> bool {
    let (local, domain) = match segment.split_once('@') {
        Some(parts) => parts,
        None => match segment.split_once("%40") {
            Some(parts) => parts,
            None => return false,
        },
    };
    let dot = domain.find('.');
    !local.is_empty() && matches!(dot, Some(i) if i > 0 && i + 1 < domain.len())
}

fn is_long_hex(bytes: &[u8]) -> bool {
    bytes.len() >= MIN_HEX_LEN
        && bytes.iter().all(u8::is_ascii_hexdigit)
        && bytes.iter().any(u8::is_ascii_digit)
}

/// Long, from a token alphabet, letters and digits interleaved, and high entropy: API keys,
/// session ids, base64url blobs. Slugs like `release-notes-2024` have too few letter/digit
/// switches to pass.
fn is_token(bytes: &[u8]) -> bool {
    if bytes.len() < MIN_TOKEN_LEN || !bytes.iter().all(|b| is_token_byte(*b)) {
        return false;
    }
    let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
    let letters = bytes.iter().filter(|b| b.is_ascii_alphabetic()).count();
    if digits < 2 || letters < 2 {
        return false;
    }
    class_switches(bytes) >= 4 && entropy(bytes) >= MIN_TOKEN_ENTROPY
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'=' | b'+')
}

/// How often the text changes between letters and digits (separators ignored).
fn class_switches(bytes: &[u8]) -> usize {
    let mut switches = 0;
    let mut last = None;
    for b in bytes {
        let class = if b.is_ascii_digit() {
            Some(true)
        } else if b.is_ascii_alphabetic() {
            Some(false)
        } else {
            None
        };
        if let Some(class) = class {
            if last.is_some_and(|l| l != class) {
                switches += 1;
            }
            last = Some(class);
        }
    }
    switches
}

/// Shannon entropy of the bytes, in bits per byte.
fn entropy(bytes: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for b in bytes {
        counts[usize::from(*b)] += 1;
    }
    let len = bytes.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / len;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(segment: &str) -> Option<&'static str> {
        classify(segment).map(Placeholder::name)
    }

    #[test]
    fn integers_become_ids() {
        assert_eq!(kind("42"), Some("id"));
        assert_eq!(kind("0"), Some("id"));
        assert_eq!(kind("1234567890123"), Some("id"));
    }

    #[test]
    fn uuids_in_either_case_become_uuids() {
        assert_eq!(kind("3f2504e0-4f89-11d3-9a0c-0305e82c3301"), Some("uuid"));
        assert_eq!(kind("3F2504E0-4F89-11D3-9A0C-0305E82C3301"), Some("uuid"));
    }

    #[test]
    fn git_shas_short_and_long_become_hex() {
        assert_eq!(kind("a94a8fe"), Some("hex"));
        assert_eq!(
            kind("6dcb09b5b57875f334f61aebed695e2e4193db5e"),
            Some("hex")
        );
    }

    #[test]
    fn hex_looking_words_without_digits_stay_literal() {
        assert_eq!(kind("deadbeef"), None);
        assert_eq!(kind("facade"), None);
        assert_eq!(kind("abc1"), None);
    }

    #[test]
    fn dates_and_date_times_become_dates() {
        assert_eq!(kind("2024-02-29"), Some("date"));
        assert_eq!(kind("2024-02-29T10:00:00Z"), Some("date"));
        assert_eq!(kind("2024-13-01"), None);
    }

    #[test]
    fn emails_plain_or_percent_encoded_become_emails() {
        assert_eq!(kind("jane.doe@example.com"), Some("email"));
        assert_eq!(kind("jane%40example.org"), Some("email"));
        assert_eq!(kind("@example.com"), None);
        assert_eq!(kind("user@localhost"), None);
    }

    #[test]
    fn opaque_high_entropy_tokens_become_tokens() {
        assert_eq!(kind("sk_live_4eC39HqLyjWDarjtT1zdp7dc"), Some("token"));
        assert_eq!(kind("aZ3kQ9xP2mN7vB4c"), Some("token"));
    }

    #[test]
    fn words_and_slugs_stay_literal() {
        for word in [
            "users",
            "v1",
            "repos",
            "release-notes-2024",
            "hello-world",
            "api",
        ] {
            assert_eq!(kind(word), None, "{word}");
        }
    }
}
