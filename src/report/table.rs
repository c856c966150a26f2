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

/// Writes the table.
pub fn write(report: &Report, out: &mut dyn Write, style: Style) -> io::Result<()> {
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
    writeln!(
        out,
        "{}",
        paint(style, "1", &format!("rsafe audit: {head}"))
    )?;

    let width = report
        .findings
        .iter()
        .map(|f| f.rule.len())
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
            let mut line = format!(
                "  {}  {}",
                paint(style, "1", &format!("{:<width$}", f.rule)),
                location(f)
            );
            if let Some(ev) = &f.evidence {
                line.push_str(&format!("  {}", printable(&ev.excerpt)));
            }
            line.push_str(&format!("  → {}", shorten(&f.remediation, 160)));
            writeln!(out, "{line}")?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", summary(report, style))
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
                "layer 2 /root/.aws/credentials (deleted in layer 3, still present in layer 2) \
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
