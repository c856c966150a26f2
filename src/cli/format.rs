//! Small output helpers shared by the listing commands: aligned tables, sizes and ages the way
//! `docker images` prints them, and truncation.

use std::time::{SystemTime, UNIX_EPOCH};

/// Columns padded to their widest cell, three spaces apart (the last column is not padded).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        // Empty last cells leave no trailing blanks.
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `bytes` in binary units: the value scaled below 1024 and its unit (`B`, `KiB`, … `TiB`), for
/// the callers that print sizes as `stats` and `unpack` do.
pub fn binary_units(bytes: u64) -> (f64, &'static str) {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    (value, UNITS[unit])
}

/// A byte count with three significant digits and decimal units, as docker prints it
/// (`665B`, `1.09MB`, `2.13GB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 999.5 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let decimals = if value >= 99.95 {
        0
    } else if value >= 9.995 {
        1
    } else {
        2
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", UNITS[unit])
}

/// Seconds since the epoch for an RFC 3339 timestamp (`2023-11-14T22:13:20Z`,
/// `2024-01-02T03:04:05.123456789+01:00`), as image configs and history carry them.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    crate::runtime::clock::unix_time(s).map(|(secs, _)| secs)
}

/// How long ago `created` was, in docker's words (`3 days ago`, `About an hour ago`);
/// `N/A` when it is missing or not a timestamp.
pub fn time_ago(created: Option<&str>, now: SystemTime) -> String {
    match created.and_then(parse_rfc3339) {
        Some(then) => seconds_ago(then, now),
        None => "N/A".into(),
    }
}

/// How long ago `then` (seconds since the epoch) was, in docker's words.
pub fn seconds_ago(then: i64, now: SystemTime) -> String {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let secs = now - then;
    if secs < 0 {
        return "in the future".into();
    }
    let (minutes, hours) = (secs / 60, (secs as f64 / 3600.0).round() as i64);
    let text = match () {
        _ if secs < 1 => "Less than a second".to_string(),
        _ if secs == 1 => "1 second".to_string(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".to_string(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_string(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    };
    format!("{text} ago")
}

/// `s` cut to `max` characters with an ellipsis, on one line.
pub fn truncate(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(665), "665B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1_088_244), "1.09MB");
        assert_eq!(human_size(2_132_992), "2.13MB");
        assert_eq!(human_size(999_999), "1MB");
        assert_eq!(human_size(45_600_000), "45.6MB");
        assert_eq!(human_size(123_000_000_000), "123GB");
    }

    #[test]
    fn timestamps_and_ages() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123456789+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
        let ago = |secs| time_ago(Some("2023-11-14T22:13:20Z"), at(secs));
        assert_eq!(ago(0), "Less than a second ago");
        assert_eq!(ago(45), "45 seconds ago");
        assert_eq!(ago(90), "About a minute ago");
        assert_eq!(ago(3 * 86400), "3 days ago");
        assert_eq!(ago(3 * 7 * 86400), "3 weeks ago");
        assert_eq!(ago(3 * 365 * 86400), "3 years ago");
        assert_eq!(time_ago(None, at(0)), "N/A");
    }

    #[test]
    fn tables_align_and_text_truncates() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["long cell".into(), "x".into()],
                vec!["y".into(), "z".into()],
            ],
        );
        assert_eq!(t, "A           BB\nlong cell   x\ny           z\n");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("a\nb", 10), "a b");
    }
}
