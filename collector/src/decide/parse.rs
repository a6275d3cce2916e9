//! The operator's words for a decision: durations (`90s`, `30m`, `1h`, `7d`, `1h30m`), rates
//! (`10/s`, `600/m`, `36000/h`), client addresses and prefixes (`203.0.113.7`, `10.0.0.0/8`,
//! `2001:db8::/32`) and block statuses, parsed into what the wire carries, and printed back.
//!
//! Errors quote the text that was wrong and say what was expected. Nothing here may see a raw
//! key.

use plumbline_wire::{Addr, Subject};
use std::net::IpAddr;

/// Why an operator's value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("ttl {0:?} is not a duration like 90s, 30m, 1h, 7d or 1h30m")]
    Ttl(String),
    #[error("ttl {0:?} is zero; a decision must last a while")]
    ZeroTtl(String),
    #[error("rate {0:?} is not a rate like 10/s, 30/m or 100/h")]
    Rate(String),
    #[error("rate {0:?} is zero; to refuse every request, block instead")]
    ZeroRate(String),
    #[error("rate {0:?} is more than the largest a filter counts, {MAX_RATE_PER_HOUR}/h")]
    RateTooHigh(String),
    #[error("address {0:?} is not an IP address or a CIDR prefix like 203.0.113.7 or 10.0.0.0/8")]
    Address(String),
    #[error("prefix {text:?} is longer than an address of its kind (at most /{max})")]
    PrefixLength { text: String, max: u8 },
    #[error("prefix {text:?} has bits set past its length; did you mean {network}?")]
    HostBits { text: String, network: String },
    #[error("block status {0} is not an HTTP error status (400 to 599)")]
    Status(u16),
}

const SECOND_MS: u64 = 1_000;

/// A duration like `90s`, `30m`, `1h`, `7d` or `1h30m`, in milliseconds (more than zero).
pub fn ttl_ms(text: &str) -> Result<u64, ParseError> {
    let bad = || ParseError::Ttl(text.to_string());
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (number, tail) = rest.split_at(digits);
        let unit = tail.chars().next().ok_or_else(bad)?;
        let value: u64 = number.parse().map_err(|_| bad())?;
        let part = value.checked_mul(unit_ms(unit).ok_or_else(bad)?);
        total = part.and_then(|p| total.checked_add(p)).ok_or_else(bad)?;
        rest = &tail[unit.len_utf8()..];
    }
    if total == 0 {
        return Err(ParseError::ZeroTtl(text.to_string()));
    }
    Ok(total)
}

fn unit_ms(unit: char) -> Option<u64> {
    Some(match unit {
        's' => SECOND_MS,
        'm' => 60 * SECOND_MS,
        'h' => 3_600 * SECOND_MS,
        'd' => 86_400 * SECOND_MS,
        _ => return None,
    })
}

/// A duration in its shortest exact form (`90s` prints as `1m30s`).
pub fn format_ttl(ms: u64) -> String {
    let mut seconds = ms / SECOND_MS;
    if seconds == 0 {
        return format!("{ms}ms");
    }
    let mut out = String::new();
    for (unit, size) in [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)] {
        if seconds >= size {
            out.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    out
}

/// The largest rate a throttle holds, in requests an hour (about 1.19 million a second).
pub const MAX_RATE_PER_HOUR: u32 = u32::MAX;

/// A rate like `10/s`, `30/m` or `100/h` (a bare number is per second), in whole requests an
/// hour (as filters count it).
pub fn rate_per_hour(text: &str) -> Result<u32, ParseError> {
    let bad = || ParseError::Rate(text.to_string());
    let trimmed = text.trim();
    let (count, unit) = trimmed.split_once('/').unwrap_or((trimmed, "s"));
    let count = count.trim();
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let per_hour = match unit.trim() {
        "s" | "sec" | "second" => 3_600,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 1,
        _ => return Err(bad()),
    };
    let too_high = || ParseError::RateTooHigh(text.to_string());
    let count: u64 = count.parse().map_err(|_| too_high())?;
    if count == 0 {
        return Err(ParseError::ZeroRate(text.to_string()));
    }
    count
        .checked_mul(per_hour)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(too_high)
}

/// A rate as operators write it, in the largest unit that keeps it whole: `10/s`, `30/m`,
/// `90/h`.
pub fn format_rate(per_hour: u32) -> String {
    if per_hour.is_multiple_of(3_600) {
        format!("{}/s", per_hour / 3_600)
    } else if per_hour.is_multiple_of(60) {
        format!("{}/m", per_hour / 60)
    } else {
        format!("{per_hour}/h")
    }
}

/// An IP address (a prefix of its full length) or a CIDR prefix with no bits past its length.
pub fn address(text: &str) -> Result<Subject, ParseError> {
    let bad = || ParseError::Address(text.to_string());
    let trimmed = text.trim();
    let (ip, bits) = match trimmed.split_once('/') {
        Some((ip, bits)) => (ip, Some(bits.parse::<u8>().map_err(|_| bad())?)),
        None => (trimmed, None),
    };
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let (ip, max, bits) = unmap(ip, bits);
    let bits = bits.unwrap_or(max);
    if bits > max {
        return Err(ParseError::PrefixLength {
            text: text.to_string(),
            max,
        });
    }
    let addr = Addr::from(ip);
    let network = mask(addr, bits);
    if network != addr {
        let network = format_subject_address(network, bits);
        return Err(ParseError::HostBits {
            text: text.to_string(),
            network,
        });
    }
    Ok(Subject::Prefix { addr, bits })
}

/// An IPv4-mapped IPv6 address is the IPv4 address (as the wire's `Addr` makes it), with the
/// prefix length shortened by the 96 mapped bits.
fn unmap(ip: IpAddr, bits: Option<u8>) -> (IpAddr, u8, Option<u8>) {
    match ip {
        IpAddr::V4(_) => (ip, 32, bits),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if bits.is_none_or(|b| b >= 96) => {
                (IpAddr::V4(v4), 32, bits.map(|b| b.saturating_sub(96)))
            }
            _ => (ip, 128, bits),
        },
    }
}

/// The first `bits` bits of `addr`, the rest cleared.
pub fn mask(addr: Addr, bits: u8) -> Addr {
    fn clear<const N: usize>(mut octets: [u8; N], bits: u8) -> [u8; N] {
        for (i, octet) in octets.iter_mut().enumerate() {
            let kept = usize::from(bits).saturating_sub(i * 8).min(8);
            *octet &= !(0xffu16 >> kept) as u8;
        }
        octets
    }
    match addr {
        Addr::V4(o) => Addr::V4(clear(o, bits)),
        Addr::V6(o) => Addr::V6(clear(o, bits)),
    }
}

/// A prefix as operators write it: the bare address for a full-length prefix.
pub fn format_subject_address(addr: Addr, bits: u8) -> String {
    let full = match addr {
        Addr::V4(_) => 32,
        Addr::V6(_) => 128,
    };
    if bits == full {
        addr.to_string()
    } else {
        format!("{addr}/{bits}")
    }
}

/// A block status: an HTTP error status.
pub fn block_status(status: u16) -> Result<u16, ParseError> {
    if (400..=599).contains(&status) {
        Ok(status)
    } else {
        Err(ParseError::Status(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_read_seconds_minutes_hours_days_and_combinations() {
        assert_eq!(ttl_ms("90s"), Ok(90_000));
        assert_eq!(ttl_ms("30m"), Ok(1_800_000));
        assert_eq!(ttl_ms("1h"), Ok(3_600_000));
        assert_eq!(ttl_ms("7d"), Ok(604_800_000));
        assert_eq!(ttl_ms("1h30m"), Ok(5_400_000));
    }

    #[test]
    fn ttls_without_a_unit_or_with_a_bad_one_are_refused_quoting_the_text() {
        for text in [
            "90",
            "1x",
            "h",
            "",
            "1h30",
            "-5s",
            "1.5h",
            "99999999999999999999s",
        ] {
            let err = ttl_ms(text).unwrap_err();
            assert_eq!(err, ParseError::Ttl(text.to_string()), "{text}");
        }
        assert_eq!(ttl_ms("0s"), Err(ParseError::ZeroTtl("0s".into())));
        let message = ttl_ms("5y").unwrap_err().to_string();
        assert!(
            message.contains("\"5y\"") && message.contains("30m"),
            "{message}"
        );
    }

    #[test]
    fn ttls_print_back_in_their_shortest_exact_form() {
        assert_eq!(format_ttl(90_000), "1m30s");
        assert_eq!(format_ttl(3_600_000), "1h");
        assert_eq!(format_ttl(90_061_000), "1d1h1m1s");
    }

    #[test]
    fn rates_per_second_minute_and_hour_become_requests_an_hour() {
        assert_eq!(rate_per_hour("10/s"), Ok(36_000));
        assert_eq!(rate_per_hour("600/m"), Ok(36_000));
        assert_eq!(rate_per_hour("30/m"), Ok(1_800));
        assert_eq!(rate_per_hour("90/h"), Ok(90));
        assert_eq!(rate_per_hour(" 5 / sec "), Ok(18_000));
        assert_eq!(
            rate_per_hour("7"),
            Ok(25_200),
            "a bare number is per second"
        );
    }

    #[test]
    fn a_rate_reads_back_in_the_largest_unit_that_keeps_it_whole() {
        for text in ["10/s", "30/m", "90/h", "1/h", "1/s"] {
            assert_eq!(format_rate(rate_per_hour(text).unwrap()), text);
        }
        assert_eq!(format_rate(rate_per_hour("600/m").unwrap()), "10/s");
        assert_eq!(plumbline_wire::Action::default_burst(36_000), 10);
        assert_eq!(plumbline_wire::Action::default_burst(1_800), 1);
        assert_eq!(plumbline_wire::Action::default_burst(3_601), 2);
    }

    #[test]
    fn zero_and_unreadable_rates_are_refused() {
        let err = rate_per_hour("0/s").unwrap_err();
        assert_eq!(err, ParseError::ZeroRate("0/s".into()));
        assert!(err.to_string().contains("block instead"), "{err}");
        for text in ["10/d", "ten/s", "/s", "", "-3/s", "1.5/s"] {
            assert_eq!(rate_per_hour(text), Err(ParseError::Rate(text.into())));
        }
        for text in ["99999999999/s", "1200000/s", "99999999999999999999999/h"] {
            let err = rate_per_hour(text).unwrap_err();
            assert_eq!(err, ParseError::RateTooHigh(text.into()));
            assert!(err.to_string().contains("4294967295/h"), "{err}");
        }
        assert_eq!(rate_per_hour("4294967295/h"), Ok(u32::MAX));
    }

    #[test]
    fn an_address_alone_is_a_prefix_of_its_full_length() {
        let v4 = address("203.0.113.7").unwrap();
        assert_eq!(
            v4,
            Subject::Prefix {
                addr: Addr::V4([203, 0, 113, 7]),
                bits: 32
            }
        );
        let v6 = address("2001:db8::1").unwrap();
        assert!(matches!(v6, Subject::Prefix { bits: 128, .. }));
    }

    #[test]
    fn cidr_prefixes_are_read_for_both_families() {
        assert_eq!(
            address("10.0.0.0/8").unwrap(),
            Subject::Prefix {
                addr: Addr::V4([10, 0, 0, 0]),
                bits: 8
            }
        );
        let Subject::Prefix { addr, bits } = address("2001:db8::/32").unwrap() else {
            panic!("not a prefix");
        };
        assert_eq!((addr.to_string(), bits), ("2001:db8::".to_string(), 32));
        assert!(matches!(
            address("0.0.0.0/0"),
            Ok(Subject::Prefix { bits: 0, .. })
        ));
    }

    #[test]
    fn an_ipv4_mapped_ipv6_address_is_its_ipv4_address() {
        assert_eq!(address("::ffff:10.0.0.0/104"), address("10.0.0.0/8"));
        assert_eq!(address("::ffff:192.0.2.1"), address("192.0.2.1"));
    }

    #[test]
    fn bad_cidrs_are_refused_with_what_was_meant() {
        assert_eq!(
            address("10.0.0.0/33"),
            Err(ParseError::PrefixLength {
                text: "10.0.0.0/33".into(),
                max: 32
            })
        );
        let err = address("10.1.2.3/8").unwrap_err();
        assert!(err.to_string().contains("did you mean 10.0.0.0/8"), "{err}");
        for text in ["10.0.0", "10.0.0.0/", "10.0.0.0/x", "example.com", ""] {
            assert_eq!(address(text), Err(ParseError::Address(text.into())));
        }
    }

    #[test]
    fn masking_keeps_exactly_the_prefix_bits() {
        assert_eq!(
            mask(Addr::V4([255, 255, 255, 255]), 20),
            Addr::V4([255, 255, 240, 0])
        );
        assert_eq!(mask(Addr::V4([1, 2, 3, 4]), 0), Addr::V4([0, 0, 0, 0]));
        assert_eq!(mask(Addr::V4([1, 2, 3, 4]), 32), Addr::V4([1, 2, 3, 4]));
    }

    #[test]
    fn addresses_print_bare_at_full_length_and_as_cidr_otherwise() {
        assert_eq!(
            format_subject_address(Addr::V4([10, 0, 0, 0]), 8),
            "10.0.0.0/8"
        );
        assert_eq!(
            format_subject_address(Addr::V4([10, 0, 0, 1]), 32),
            "10.0.0.1"
        );
    }

    #[test]
    fn block_statuses_must_be_error_statuses() {
        assert_eq!(block_status(403), Ok(403));
        assert_eq!(block_status(200), Err(ParseError::Status(200)));
        assert_eq!(block_status(600), Err(ParseError::Status(600)));
    }
}
