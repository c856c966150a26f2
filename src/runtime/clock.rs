//! Instants as people and docker write them: RFC 3339 for `inspect` and `logs -t`, and the
//! `--since`/`--until` values `docker logs` takes (an RFC 3339 time, a Unix time, or a duration
//! back from now like `10m`).
#![forbid(unsafe_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A `--since`/`--until` value that is none of the forms docker takes.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} is not a time: use RFC 3339 (2026-01-02T15:04:05Z), a Unix time (1767366245) or a duration back from now (10m, 1h30m, 45s)"
)]
pub struct BadTime(pub String);

/// `2026-01-02T15:04:05.123456789Z`: UTC with nanoseconds, as docker prints `logs -t` and
/// `inspect` times (fixed width, so lines stay aligned).
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_nanos()
    )
}

/// The instant a `--since`/`--until` value names, `now` being the reference for durations.
pub fn parse_instant(text: &str, now: SystemTime) -> Result<SystemTime, BadTime> {
    let bad = || BadTime(text.to_string());
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Some(t) = parse_rfc3339(text) {
        return Ok(t);
    }
    if let Some(t) = parse_unix(text) {
        return Ok(t);
    }
    let back = parse_duration(text).ok_or_else(bad)?;
    Ok(now.checked_sub(back).unwrap_or(UNIX_EPOCH))
}

/// `1767366245` or `1767366245.5`: seconds since the epoch, as docker also takes.
fn parse_unix(text: &str) -> Option<SystemTime> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let nanos = fraction_nanos(frac)?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Digits after a decimal point as nanoseconds (extra digits are ignored).
fn fraction_nanos(frac: &str) -> Option<u32> {
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    digits.parse().ok()
}

/// Go's duration syntax as docker takes it: `1h30m`, `10m`, `45s`, `1.5h`, `500ms`.
fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// `2026-01-02T15:04:05Z`, `2026-01-02T15:04:05.5+01:00`; also a bare date or a time without
/// a zone (taken as UTC), which docker accepts too.
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let (secs, nanos) = unix_time(text)?;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// An RFC 3339 time (as [`parse_rfc3339`] takes it) as seconds since the epoch, negative
/// before 1970 (Go's zero time, `0001-01-01T00:00:00Z`, is in some image configs), and
/// nanoseconds.
pub fn unix_time(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = text.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (mut hms, mut rest) = (0, "");
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (h, mi, s) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
        if h > 23 || mi > 59 || s > 60 {
            return None;
        }
        hms = h * 3600 + mi * 60 + s;
        rest = &text[19..];
    }
    let mut nanos = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        nanos = fraction_nanos(&frac[..digits])?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(b[b.len() - 6], b'+' | b'-') && b[b.len() - 3] == b':' => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    Some((
        days_from_civil(year, month, day) * 86_400 + hms - offset,
        nanos,
    ))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_both_ways() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_430), (2025, 12, 8));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        // Go's zero time, in some image configs: before the epoch, still a number.
        assert_eq!(
            unix_time("0001-01-01T00:00:00Z"),
            Some((-62_135_596_800, 0))
        );
    }

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn formats_as_docker_prints() {
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000000000Z");
        // `date -u -d @1700000000` = 2023-11-14 22:13:20.
        assert_eq!(
            rfc3339(at(1_700_000_000, 5)),
            "2023-11-14T22:13:20.000000005Z"
        );
        assert_eq!(
            rfc3339(at(951_782_400, 0)),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn parses_what_docker_logs_takes() {
        let now = at(1_700_000_000, 0);
        let p = |s: &str| parse_instant(s, now).unwrap();
        assert_eq!(p("2023-11-14T22:13:20Z"), now);
        assert_eq!(p("2023-11-14T23:13:20+01:00"), now);
        assert_eq!(p("2023-11-14T22:13:20.25Z"), at(1_700_000_000, 250_000_000));
        assert_eq!(p("2023-11-14"), at(1_699_920_000, 0));
        assert_eq!(p("1700000000"), now);
        assert_eq!(p("1700000000.5"), at(1_700_000_000, 500_000_000));
        assert_eq!(p("10m"), at(1_700_000_000 - 600, 0));
        assert_eq!(p("1h30m"), at(1_700_000_000 - 5400, 0));
        assert_eq!(p("1.5h"), at(1_700_000_000 - 5400, 0));
        assert_eq!(p("500ms"), at(1_699_999_999, 500_000_000));
        for bad in [
            "",
            "yesterday",
            "10x",
            "2023-13-01",
            "2023-11-14T25:00:00Z",
            "-5m",
        ] {
            let err = parse_instant(bad, now).unwrap_err().to_string();
            assert!(err.contains("is not a time"), "{bad}: {err}");
        }
    }

    #[test]
    fn round_trips() {
        for secs in [0, 86_399, 1_700_000_000, 4_102_444_800] {
            let t = at(secs, 123);
            assert_eq!(parse_instant(&rfc3339(t), UNIX_EPOCH).unwrap(), t);
        }
    }
}
