//! Times as Docker and runc print them: RFC 3339 in UTC, and Docker's human durations
//! ("Up 3 seconds", "Exited (0) 2 minutes ago"); and times as Docker takes them (`logs --since`).

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

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 3339 time as Docker takes it: `2006-01-02`, then optionally `T15`, `:04`, `:05`, a
/// fraction, and a zone (`Z`, `+07:00`). Without a zone it is UTC (spawner does not read the
/// host's time zone database). Nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut at = 10;
    let mut clock = [0i64; 3];
    let mut nanos = 0i64;
    if matches!(b.get(at), Some(b'T' | b't')) {
        at += 1;
        for (i, part) in clock.iter_mut().enumerate() {
            if i > 0 {
                if b.get(at) != Some(&b':') {
                    break;
                }
                at += 1;
            }
            *part = num(at..at + 2)?;
            at += 2;
        }
        if b.get(at) == Some(&b'.') {
            let digits = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            let frac = &s[at + 1..at + 1 + digits.min(9)];
            nanos = frac.parse::<i64>().ok()? * 10i64.pow(9 - frac.len() as u32);
            at += 1 + digits;
        }
    }
    if clock[0] > 23 || clock[1] > 59 || clock[2] > 60 {
        return None;
    }
    let offset = match &s[at..] {
        "" | "Z" | "z" => 0,
        zone if zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')) => {
            if zone.as_bytes()[3] != b':' {
                return None;
            }
            let minutes = num(at + 1..at + 3)? * 60 + num(at + 4..at + 6)?;
            if zone.starts_with('-') {
                -minutes * 60
            } else {
                minutes * 60
            }
        }
        _ => return None,
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + clock[0] * 3600 + clock[1] * 60 + clock[2] - offset;
    Some(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
}

/// A Go duration (`300ms`, `1.5h`, `2h45m`, `-10s`), in nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest.bytes().take_while(|c| c.is_ascii_digit() || *c == b'.').count();
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.bytes().take_while(|c| !c.is_ascii_digit() && *c != b'.').count();
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * unit;
    }
    Some(if negative { -(total as i128) } else { total as i128 })
}

/// `--since`/`--until` as Docker takes them: a Go duration before `now` (`10m`, `1h30m`), an RFC
/// 3339 time or date, or Unix seconds (`1700000000.5`). Nanoseconds since the epoch.
pub fn parse_time_arg(value: &str, now: SystemTime) -> Result<i128, String> {
    let now_ns = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as i128;
    if value != "0" {
        if let Some(d) = parse_go_duration(value) {
            return Ok(now_ns - d);
        }
    }
    if let Some(t) = parse_rfc3339(value) {
        return Ok(t);
    }
    let bad = || format!("{value:?}: give a time (RFC 3339, Unix seconds) or a duration (10m, 1h30m)");
    if value.contains('-') {
        return Err(bad());
    }
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i128 = secs.parse().map_err(|_| bad())?;
    let nanos: i128 = match frac {
        "" => 0,
        f if f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => {
            f.parse::<i128>().map_err(|_| bad())? * 10i128.pow(9 - f.len() as u32)
        }
        _ => return Err(bad()),
    };
    Ok(secs * 1_000_000_000 + nanos)
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
    fn times_as_docker_takes_them() {
        let now = from_ns(1_795_000_000_000_000_000);
        let t = |v: &str| parse_time_arg(v, now).unwrap();
        assert_eq!(t("10m"), 1_795_000_000_000_000_000 - 600_000_000_000);
        assert_eq!(t("1h30m"), 1_795_000_000_000_000_000 - 5_400_000_000_000);
        assert_eq!(t("1.5s"), 1_795_000_000_000_000_000 - 1_500_000_000);
        assert_eq!(t("2026-11-18T11:06:40.123Z"), 1_795_000_000_123_000_000);
        assert_eq!(t("2026-11-18T11:06:40.123000000Z"), 1_795_000_000_123_000_000);
        assert_eq!(t("2026-11-18T12:06:40+01:00"), 1_795_000_000_000_000_000);
        assert_eq!(t("2026-11-18T11:06:40"), 1_795_000_000_000_000_000);
        assert_eq!(t("2026-11-18T11:06"), 1_794_999_960_000_000_000);
        assert_eq!(t("2026-11-18"), 1_794_960_000_000_000_000);
        assert_eq!(t("1970-01-01T00:00:00Z"), 0);
        assert_eq!(t("1795000000.5"), 1_795_000_000_500_000_000);
        assert_eq!(t("0"), 0);
        for bad in ["yesterday", "10x", "2026-13-01", "2026-11-18T11:06:40+0100", "1.2.3", ""] {
            assert!(parse_time_arg(bad, now).is_err(), "{bad}");
        }
        // What the log writer stamps reads back.
        let stamp = rfc3339(from_ns(1_795_000_000_123_456_789));
        assert_eq!(parse_rfc3339(&stamp), Some(1_795_000_000_123_456_789));
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
