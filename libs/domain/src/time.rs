//! Time as the domain sees it: protobuf `Timestamp`s (what events carry),
//! compared and shifted through whole nanoseconds so there is no rounding.

use prost_types::Timestamp;
use std::time::Duration;

/// Nanoseconds since the Unix epoch.
pub fn unix_nanos(t: &Timestamp) -> i128 {
    i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)
}

/// The timestamp `nanos` nanoseconds after the Unix epoch (saturating at
/// the ends of the `i64` seconds range).
pub fn from_unix_nanos(nanos: i128) -> Timestamp {
    let seconds = nanos.div_euclid(1_000_000_000);
    let sub = nanos.rem_euclid(1_000_000_000);
    Timestamp {
        seconds: i64::try_from(seconds).unwrap_or(if seconds < 0 { i64::MIN } else { i64::MAX }),
        nanos: i32::try_from(sub).unwrap_or(0),
    }
}

/// `t` plus `d`.
pub fn add(t: &Timestamp, d: Duration) -> Timestamp {
    from_unix_nanos(unix_nanos(t) + i128::try_from(d.as_nanos()).unwrap_or(i128::MAX / 2))
}

/// `t` minus `d`.
pub fn sub(t: &Timestamp, d: Duration) -> Timestamp {
    from_unix_nanos(unix_nanos(t) - i128::try_from(d.as_nanos()).unwrap_or(i128::MAX / 2))
}

/// Whether `a` is strictly before `b`.
pub fn before(a: &Timestamp, b: &Timestamp) -> bool {
    unix_nanos(a) < unix_nanos(b)
}

/// A whole-second timestamp, for tests and fixtures.
pub fn at_seconds(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

/// The duration a protobuf `Duration` stands for, or `None` when negative or
/// malformed.
pub fn duration_from_proto(d: &prost_types::Duration) -> Option<Duration> {
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(d.seconds).ok()?,
        u32::try_from(d.nanos).ok()?,
    ))
}

/// The protobuf `Duration` for `d` (saturating).
pub fn duration_to_proto(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_round_trip_across_the_epoch() {
        for n in [-1_500_000_000_i128, -1, 0, 1, 1_700_000_000_123_456_789] {
            assert_eq!(unix_nanos(&from_unix_nanos(n)), n);
        }
        let t = at_seconds(100);
        assert_eq!(
            add(&t, Duration::from_millis(1500)),
            Timestamp {
                seconds: 101,
                nanos: 500_000_000
            }
        );
        assert_eq!(
            sub(&t, Duration::from_millis(1500)),
            Timestamp {
                seconds: 98,
                nanos: 500_000_000
            }
        );
        assert!(before(&t, &add(&t, Duration::from_nanos(1))));
        assert!(!before(&t, &t));
    }

    #[test]
    fn negative_or_malformed_durations_are_refused() {
        assert_eq!(
            duration_from_proto(&prost_types::Duration {
                seconds: -1,
                nanos: 0
            }),
            None
        );
        assert_eq!(
            duration_from_proto(&prost_types::Duration {
                seconds: 1,
                nanos: 1_000_000_000
            }),
            None
        );
        assert_eq!(
            duration_from_proto(&prost_types::Duration {
                seconds: 2,
                nanos: 5
            }),
            Some(Duration::new(2, 5))
        );
    }
}
