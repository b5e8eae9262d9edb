//! Time as a port, so lease expiry and idempotency windows can be tested by moving a clock instead of sleeping.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// Where the current time comes from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// The current time in milliseconds since the Unix epoch, the unit stored in lease and expiry attributes.
    fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

/// The real wall clock; the default everywhere outside tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Tests hand it to a lock or store to expire leases instantly.
#[derive(Debug)]
pub struct ManualClock {
    ms: AtomicI64,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn at(start: DateTime<Utc>) -> Self {
        Self {
            ms: AtomicI64::new(start.timestamp_millis()),
        }
    }

    /// A clock stopped at the current wall-clock time.
    pub fn starting_now() -> Self {
        Self::at(Utc::now())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.ms.load(Ordering::SeqCst))
            .single()
            .unwrap_or_else(Utc::now)
    }
}

/// Milliseconds since the epoch as a UTC time; out-of-range values clamp to the epoch.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// A time in the fixed-width RFC 3339 form used in sort keys and outputs: sorting the strings sorts the times.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = ManualClock::at(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now_ms() - start.timestamp_millis(), 90_000);
    }

    #[test]
    fn rfc3339_strings_sort_like_times() {
        let a = from_ms(1_000);
        let b = from_ms(10_000_000_000);
        assert!(rfc3339(a) < rfc3339(b));
        assert_eq!(rfc3339(a), "1970-01-01T00:00:01.000Z");
    }
}
