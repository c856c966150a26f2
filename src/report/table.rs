//! The report for a person: what was audited, then the findings grouped by severity (worst
//! first), one line each — rule id, where (layer and path, or config field), the redacted
//! evidence, the fix — and a summary line with the counts.

use std::io::{self, Write};

use super::{Report, Style};
use crate::audit::{Finding, Location, Severity};

const RESET: &str = "\x1b[0m";

fn paint(style: Style, code: &str, text: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{text}{RESET}")
    } else {
        text.to_string()
    }
}

fn severity_code(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    }
}

/// Human-readable size: `12.3 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `s` safe for a terminal line: whitespace runs become one space, other control characters
/// (a file name in a hostile image may carry terminal escape sequences) are shown escaped.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
    }
    out
}

/// At most `max` characters of a one-line, printable rendering of `s`.
fn shorten(s: &str, max: usize) -> String {
    let one_line = printable(s);
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Where, as a person reads it, with the build step that added a layer file.
fn location(f: &Finding) -> String {
    let mut s = printable(&f.location.to_string());
    if let Location::ImageFile {
        layer: Some(prov), ..
    } = &f.location
        && let Some(by) = &prov.created_by
    {
        s.push_str(&format!(" [{}]", shorten(by, 60)));
    }
    s
}

/// Writes the table, every line whole (for a pipe or a file).
pub fn write(report: &Report, out: &mut dyn Write, style: Style) -> io::Result<()> {
    write_fitted(report, out, style, None)
}

/// Writes the table for a terminal `width` columns wide (`None`: no limit). A finding whose
/// line would not fit shows its location and evidence cut in the middle (`…`), and its fix
/// on the lines under it, wrapped at words: the columns themselves never wrap. JSON and SARIF
/// keep the full text.
pub fn write_fitted(
    report: &Report,
    out: &mut dyn Write,
    style: Style,
    width: Option<usize>,
) -> io::Result<()> {
    let head = format!("rsafe audit: {}", heading(report));
    let head = match width {
        Some(w) => middle_cut(&head, w),
        None => head,
    };
    writeln!(out, "{}", paint(style, "1", &head))?;

    let rule_width = report
        .findings
        .iter()
        .map(|f| f.rule.chars().count())
        .max()
        .unwrap_or(0);
    for severity in [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ] {
        let group: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .collect();
        if group.is_empty() {
            continue;
        }
        writeln!(out)?;
        let header = format!("{} ({})", severity.as_str().to_uppercase(), group.len());
        writeln!(out, "{}", paint(style, severity_code(severity), &header))?;
        for f in group {
            for line in finding_lines(f, rule_width, width, style) {
                writeln!(out, "{line}")?;
            }
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", summary(report, style))
}

/// What was audited, and how much was read: the table's first line.
fn heading(report: &Report) -> String {
    let t = &report.target;
    let mut head = format!("{} {}", t.kind, printable(&t.name));
    if let Some(d) = &t.digest {
        head.push_str(&format!(" ({})", shorten(d, 19)));
    }
    if let Some(p) = &t.platform {
        head.push_str(&format!(" {p}"));
    }
    if let Some(s) = &report.stats {
        head.push_str(&format!(
            " — {} layer{}, {} streamed, {} files read",
            s.layers,
            if s.layers == 1 { "" } else { "s" },
            human_bytes(s.bytes),
            s.files_read
        ));
    }
    if let Some(e) = report.elapsed {
        head.push_str(&format!(" in {:.1}s", e.as_secs_f64()));
    }
    head
}

/// Where the fix starts on the lines under a finding.
const FIX_INDENT: usize = 6;

/// A finding as lines: `  RULE  LOCATION  EVIDENCE  → FIX` when that fits in `width`; else
/// rule and location (cut in the middle) on the first line, then the evidence when it does not
/// fit beside them, then the fix wrapped at words, each on lines of their own under it.
fn finding_lines(
    f: &Finding,
    rule_width: usize,
    width: Option<usize>,
    style: Style,
) -> Vec<String> {
    let rule = format!("{:<rule_width$}", f.rule);
    let place = location(f);
    let evidence = f.evidence.as_ref().map(|ev| printable(&ev.excerpt));
    let fix = shorten(&f.remediation, 160);
    let line = |rule: &str, place: &str, evidence: Option<&str>, fix: Option<&str>| {
        let mut line = format!("  {}  {place}", paint(style, "1", rule));
        if let Some(ev) = evidence {
            line.push_str(&format!("  {ev}"));
        }
        if let Some(fix) = fix {
            line.push_str(&format!("  → {fix}"));
        }
        line
    };
    let chars = |s: &str| s.chars().count();
    let ev_len = evidence.as_deref().map_or(0, |e| chars(e) + 2);
    let whole = 4 + chars(&rule) + chars(&place) + ev_len + 4 + chars(&fix);
    let Some(width) = width.filter(|w| whole > *w) else {
        return vec![line(&rule, &place, evidence.as_deref(), Some(&fix))];
    };
    let column = rule_width.min((width / 2).saturating_sub(4).max(8));
    let rule = format!("{:<column$}", middle_cut(&f.rule, column));
    let room = width.saturating_sub(chars(&rule) + 4).max(8);
    let indent = " ".repeat(FIX_INDENT);
    let under = width.saturating_sub(FIX_INDENT + 2).max(20);
    let mut lines = Vec::new();
    match evidence {
        Some(ev) if chars(&place) + 2 + chars(&ev) <= room => {
            lines.push(line(&rule, &place, Some(&ev), None));
        }
        Some(ev) => {
            lines.push(line(&rule, &middle_cut(&place, room), None, None));
            lines.push(format!("{indent}  {}", middle_cut(&ev, under)));
        }
        None => lines.push(line(&rule, &middle_cut(&place, room), None, None)),
    }
    for (i, text) in wrap(&fix, under).into_iter().enumerate() {
        let mark = if i == 0 { "→ " } else { "  " };
        lines.push(format!("{indent}{mark}{text}"));
    }
    lines
}

/// `s` in at most `max` characters: its start and its end with `…` between.
pub fn middle_cut(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// `text` in lines of at most `width` characters, broken between words (a word longer than
/// a line is split).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(word.drain(..width).collect());
        }
        let word: String = word.into_iter().collect();
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `5 findings: 1 critical, 2 high, 1 medium, 1 low, 0 info (3 ignored)`.
pub fn summary(report: &Report, style: Style) -> String {
    let c = report.counts();
    let mut s = if c.total == 0 {
        "No findings".to_string()
    } else {
        let parts: Vec<String> = [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Info,
        ]
        .into_iter()
        .map(|sev| {
            let text = format!("{} {}", c.of(sev), sev);
            if c.of(sev) > 0 {
                paint(style, severity_code(sev), &text)
            } else {
                text
            }
        })
        .collect();
        let noun = if c.total == 1 { "finding" } else { "findings" };
        format!("{} {noun}: {}", c.total, parts.join(", "))
    };
    let mut notes = Vec::new();
    if c.ignored > 0 {
        notes.push(format!("{} ignored by the ignore file", c.ignored));
    }
    if c.below_threshold > 0 {
        notes.push(format!("{} below --min-severity", c.below_threshold));
    }
    if !notes.is_empty() {
        s.push_str(&format!(" ({})", notes.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn grouped_by_severity_with_a_summary() {
        let mut out = Vec::new();
        write(&sample(), &mut out, Style::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("rsafe audit: image app:1.0 (sha256:bbbb) linux/amd64"));
        let crit = lines.iter().position(|l| *l == "CRITICAL (2)").unwrap();
        let med = lines.iter().position(|l| *l == "MEDIUM (1)").unwrap();
        assert!(crit < med);
        assert!(
            text.contains(
                "layer 2 /root/.aws/credentials:3 (deleted in layer 3, still present in layer 2) \
             [COPY credentials /root/.aws/credentials]  AKI…[redacted 20 chars]  → Rotate the key."
            ),
            "{text}"
        );
        assert_eq!(
            *lines.last().unwrap(),
            "3 findings: 2 critical, 0 high, 1 medium, 0 low, 0 info (2 ignored by the ignore file)"
        );
        assert!(!text.contains('\x1b'));
    }

    fn fitted(report: &Report, width: usize) -> String {
        let mut out = Vec::new();
        write_fitted(report, &mut out, Style::default(), Some(width)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fitted_to_the_width_with_the_fix_under_the_finding() {
        let mut report = sample();
        let aws = report
            .findings
            .iter()
            .position(|f| f.rule == "secret.aws-access-key")
            .unwrap();
        report.findings[aws].location = Location::ImageFile {
            path: format!("/srv/{}/config/credentials", "deep/".repeat(40)),
            line: Some(3),
            layer: None,
        };
        for width in [60, 80, 100] {
            let text = fitted(&report, width);
            for line in text.lines().filter(|l| !l.contains("findings:")) {
                assert!(line.chars().count() <= width, "{width}: {line:?}\n{text}");
            }
            assert!(
                text.contains("  secret.aws-access-key  /srv/deep/"),
                "{text}"
            );
            assert!(
                text.contains("…"),
                "the long path is cut in the middle: {text}"
            );
            assert!(text.contains("credentials:3\n"), "its end is kept: {text}");
            assert!(
                text.contains("\n        AKI…[redacted 20 chars]\n"),
                "{text}"
            );
            assert!(text.contains("\n      → Rotate the key.\n"), "{text}");
            assert!(!text.contains("[redacted 20 chars]  →"), "{text}");
        }
        // What fits stays on one line, as without a width.
        let wide = fitted(&sample(), 400);
        let mut whole = Vec::new();
        write(&sample(), &mut whole, Style::default()).unwrap();
        assert_eq!(wide, String::from_utf8(whole).unwrap());
        assert!(
            wide.contains("[redacted 20 chars]  → Rotate the key."),
            "{wide}"
        );
    }

    #[test]
    fn cuts_and_wraps() {
        assert_eq!(middle_cut("abcdefghij", 5), "ab…ij");
        assert_eq!(middle_cut("abcdefghij", 6), "abc…ij");
        assert_eq!(middle_cut("abc", 3), "abc");
        assert_eq!(middle_cut("abc", 0), "");
        assert_eq!(wrap("one two three four", 9), ["one two", "three", "four"]);
        assert_eq!(wrap("abcdefghijk xy", 4), ["abcd", "efgh", "ijk", "xy"]);
        assert!(wrap("", 10).is_empty());
    }

    #[test]
    fn hostile_names_cannot_drive_the_terminal() {
        assert_eq!(printable("\nMII…"), "MII…");
        assert_eq!(printable("/x\u{1b}[2Jy"), "/x\\u{1b}[2Jy");
        assert_eq!(printable("a\tb\r\nc"), "a b c");
    }

    #[test]
    fn sizes_and_shortening() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(123_456_789), "123.5 MB");
        assert_eq!(shorten("a\n  b   c", 10), "a b c");
        assert_eq!(shorten("abcdefghijkl", 5), "abcd…");
    }
}
