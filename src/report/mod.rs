//! Turning findings into output for people (table), programs (JSON) and code scanning (SARIF).
//!
//! Every audit (image, Dockerfile, compose file, running container) fills the same [`Report`]:
//! what was audited, the findings (evidence already redacted), how many an ignore file accepted,
//! and the catalogue of rules so SARIF can describe each rule a result refers to. The writers
//! never see a secret value: [`crate::audit::Evidence`] only carries redacted excerpts.
#![forbid(unsafe_code)]

pub mod json;
pub mod sarif;
pub mod table;

use std::io::{self, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audit::{Finding, RuleInfo, ScanStats, Severity};

/// An output format of `rsafe audit` and `rsafe rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Grouped by severity, one line per finding (for people).
    Table,
    /// Stable JSON (schema version 1).
    Json,
    /// SARIF 2.1.0 (GitHub code scanning and other SARIF viewers).
    Sarif,
}

/// What was audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// `image`, `dockerfile`, `compose`, `directory`, `container`.
    pub kind: String,
    /// As the user named it (`app:1.0`, `./app.tar`, `Dockerfile`).
    pub name: String,
    /// The image manifest digest, when the target is an image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Which rule of `rsafe audit`'s documented order chose the target (`an image archive, by
    /// its content`, `the image app:1.0 in the store /var/lib/rsafe`): a CI log then shows
    /// what was audited, not only what was typed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
}

/// Findings of one audit, ready to render.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: Target,
    /// Sorted worst first ([`crate::audit::sort_findings`]).
    pub findings: Vec<Finding>,
    /// Findings an ignore file accepted (not in `findings`).
    pub ignored: usize,
    /// Findings under `--min-severity` (not in `findings`).
    pub below_threshold: usize,
    /// Known rules; results whose rule is missing here are described from the finding itself.
    pub rules: Vec<RuleInfo>,
    /// What an image audit read, when there was one.
    pub stats: Option<ScanStats>,
    /// Wall time of the audit (shown to people, kept out of JSON/SARIF so they are reproducible).
    pub elapsed: Option<Duration>,
}

/// Findings per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub total: usize,
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
    pub ignored: usize,
    pub below_threshold: usize,
}

impl Counts {
    /// The number of findings of one severity.
    pub fn of(&self, s: Severity) -> usize {
        match s {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }
}

impl Report {
    /// Counts per severity.
    pub fn counts(&self) -> Counts {
        let n = |s| self.findings.iter().filter(|f| f.severity == s).count();
        Counts {
            total: self.findings.len(),
            critical: n(Severity::Critical),
            high: n(Severity::High),
            medium: n(Severity::Medium),
            low: n(Severity::Low),
            info: n(Severity::Info),
            ignored: self.ignored,
            below_threshold: self.below_threshold,
        }
    }

    /// The rule a finding refers to: from the catalogue, or described by the finding itself.
    pub fn rule_for(&self, f: &Finding) -> RuleInfo {
        self.rules
            .iter()
            .find(|r| r.id == f.rule)
            .cloned()
            .unwrap_or_else(|| RuleInfo {
                id: f.rule.clone(),
                severity: f.severity,
                title: f.title.clone(),
                description: f.title.clone(),
                remediation: f.remediation.clone(),
            })
    }

    /// Whether any finding is at or above `gate` (the `--fail-on` decision).
    pub fn fails(&self, gate: Severity) -> bool {
        self.findings.iter().any(|f| f.severity >= gate)
    }
}

/// How the table looks: colours only when writing to a terminal that wants them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

/// Writes `report` in `format` (no colours).
pub fn render(format: Format, report: &Report, out: &mut dyn Write) -> io::Result<()> {
    render_styled(format, report, out, Style::default())
}

/// Writes `report` in `format`; `style` only affects the table.
pub fn render_styled(
    format: Format,
    report: &Report,
    out: &mut dyn Write,
    style: Style,
) -> io::Result<()> {
    match format {
        Format::Table => table::write(report, out, style),
        Format::Json => json::write(report, out),
        Format::Sarif => sarif::write(report, out),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::audit::{Evidence, LayerProvenance, Location};

    /// A report with a planted secret, used by every writer's tests.
    pub const PLANTED: &str = "AKIAQWERTYUIOPASDFGH";

    pub fn sample() -> Report {
        let mut findings = vec![
            Finding {
                rule: "secret.aws-access-key".into(),
                severity: Severity::Critical,
                title: "AWS access key".into(),
                location: Location::ImageFile {
                    path: "/root/.aws/credentials".into(),
                    line: Some(3),
                    layer: Some(LayerProvenance {
                        index: 1,
                        digest: "sha256:aaaa".into(),
                        created_by: Some("COPY credentials /root/.aws/credentials".into()),
                        removed_in: Some(2),
                    }),
                },
                evidence: Some(Evidence::secret(PLANTED)),
                remediation: "Rotate the key.".into(),
            },
            crate::audit::image::USER_ROOT.finding(
                Location::ImageConfig {
                    field: "User".into(),
                },
                Some(Evidence::plain(
                    "User is not set: the container runs as root",
                )),
            ),
            crate::audit::layers::TAR_TRAVERSAL.finding(
                Location::ImageFile {
                    path: "../evil".into(),
                    line: None,
                    layer: None,
                },
                None,
            ),
        ];
        crate::audit::sort_findings(&mut findings);
        Report {
            target: Target {
                kind: "image".into(),
                name: "app:1.0".into(),
                digest: Some("sha256:bbbb".into()),
                platform: Some("linux/amd64".into()),
                resolved: None,
            },
            findings,
            ignored: 2,
            below_threshold: 0,
            rules: crate::audit::builtin_rules()
                .into_iter()
                .map(RuleInfo::from)
                .collect(),
            stats: None,
            elapsed: None,
        }
    }

    #[test]
    fn no_format_prints_the_planted_secret() {
        let report = sample();
        for format in [Format::Table, Format::Json, Format::Sarif] {
            let mut out = Vec::new();
            render(format, &report, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(!text.contains(PLANTED), "{format:?} leaks the secret");
            assert!(!text.contains(&PLANTED[4..]), "{format:?} leaks the secret");
        }
    }

    #[test]
    fn counts_and_gate() {
        let r = sample();
        let c = r.counts();
        assert_eq!((c.total, c.critical, c.medium, c.ignored), (3, 2, 1, 2));
        assert!(r.fails(Severity::High));
        assert!(r.fails(Severity::Critical));
        let mut clean = r.clone();
        clean.findings.retain(|f| f.severity < Severity::High);
        assert!(!clean.fails(Severity::High));
    }
}
