//! Time formats of the real server (Go `time.RFC3339Nano` and `time.RFC3339`).

use chrono::{DateTime, Timelike, Utc};

/// How precisely message times are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TimePrecision {
    /// Whole seconds, like the SQLite backend the real server uses in test mode.
    #[default]
    Seconds,
    /// Nanoseconds, like the Pebble backend.
    Nanoseconds,
}

impl TimePrecision {
    /// The current time at this precision.
    pub(crate) fn now(self) -> DateTime<Utc> {
        let now = Utc::now();
        match self {
            TimePrecision::Seconds => now.with_nanosecond(0).unwrap_or(now),
            TimePrecision::Nanoseconds => now,
        }
    }
}

/// Go `time.RFC3339Nano`: UTC, `Z`, fraction with trailing zeros trimmed (none when zero).
pub(crate) fn rfc3339_nano(t: DateTime<Utc>) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Go `time.RFC3339` in UTC: whole seconds.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn nano_format_trims_trailing_zeros() {
        let t = Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap();
        assert_eq!(rfc3339_nano(t), "2025-01-15T10:30:00Z");
        let t2 = t.with_nanosecond(123_400_000).unwrap();
        assert_eq!(rfc3339_nano(t2), "2025-01-15T10:30:00.1234Z");
        let t3 = t.with_nanosecond(123_456_789).unwrap();
        assert_eq!(rfc3339_nano(t3), "2025-01-15T10:30:00.123456789Z");
        assert_eq!(rfc3339(t3), "2025-01-15T10:30:00Z");
    }

    #[test]
    fn seconds_precision_drops_the_fraction() {
        assert_eq!(TimePrecision::Seconds.now().nanosecond(), 0);
    }
}
