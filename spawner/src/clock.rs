//! Times as Docker and runc print them: RFC 3339 in UTC, and Docker's human durations
//! ("Up 3 seconds", "Exited (0) 2 minutes ago").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now as RFC 3339 in UTC, with nanoseconds (what runc writes in `created` and log lines).
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `t` as RFC 3339 in UTC, with nanoseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_nanos()
    )
}

/// Nanoseconds since the epoch, as records keep times.
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
}

/// A time kept as nanoseconds since the epoch.
pub fn from_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// How long ago `ns` was, as Docker says it ("3 seconds", "About a minute", "2 hours").
pub fn since(ns: u64) -> String {
    human_duration(SystemTime::now().duration_since(from_ns(ns)).unwrap_or_default())
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (minutes, hours) = (secs / 60, secs / 3600);
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(from_ns(1_795_000_000_123_000_000)), "2026-11-18T11:06:40.123000000Z");
        let now = now_rfc3339();
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }

    #[test]
    fn durations_as_docker_says_them() {
        let d = |s| human_duration(Duration::from_secs(s));
        assert_eq!(d(0), "Less than a second");
        assert_eq!(d(1), "1 second");
        assert_eq!(d(59), "59 seconds");
        assert_eq!(d(61), "About a minute");
        assert_eq!(d(150), "2 minutes");
        assert_eq!(d(3700), "About an hour");
        assert_eq!(d(5 * 3600), "5 hours");
        assert_eq!(d(3 * 86400), "3 days");
    }
}
