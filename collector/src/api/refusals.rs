//! Warnings of refused batches: the first refusal of each reason is logged at WARN, then at
//! most one per reason every [`WARN_EVERY`], carrying how many were left out since the last
//! one. A filter with the wrong token (or any other client posting bad batches) so shows in
//! the collector's log without flooding it. The caller passes the time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shortest time between two warnings of the same reason.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// When each reason was last warned of, and how many refusals went unlogged since. Keys are
/// the fixed reasons of [`super::metrics::REASONS`], so the map stays that small.
#[derive(Debug, Default)]
pub struct RefusalLog {
    by_reason: Mutex<HashMap<&'static str, Window>>,
}

#[derive(Debug)]
struct Window {
    warned_at: Instant,
    left_out: u64,
}

impl RefusalLog {
    /// Whether a refusal for `reason` at `now` is to be warned of: `Some(n)` when it is, `n`
    /// being the refusals of that reason left out since the previous warning.
    pub fn admit(&self, reason: &'static str, now: Instant) -> Option<u64> {
        let mut by_reason = self.by_reason.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = Window {
            warned_at: now,
            left_out: 0,
        };
        match by_reason.get_mut(reason) {
            None => {
                by_reason.insert(reason, fresh);
                Some(0)
            }
            Some(window) if now.saturating_duration_since(window.warned_at) < WARN_EVERY => {
                window.left_out += 1;
                None
            }
            Some(window) => Some(std::mem::replace(window, fresh).left_out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_is_warned_of_once_per_interval_with_the_count_left_out() {
        let log = RefusalLog::default();
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        assert_eq!(log.admit("unauthenticated", at(0)), Some(0));
        assert_eq!(log.admit("unauthenticated", at(1)), None);
        assert_eq!(log.admit("unauthenticated", at(9)), None);
        assert_eq!(log.admit("too_large", at(9)), Some(0));
        assert_eq!(log.admit("unauthenticated", at(10)), Some(2));
        assert_eq!(log.admit("unauthenticated", at(11)), None);
        assert_eq!(log.admit("unauthenticated", at(30)), Some(1));
    }
}
