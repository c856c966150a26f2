//! Rule self-checks: every rule in the rules file carries samples it must report (`leaks`) and
//! samples it must not (`safe`), as gitleaks does. Checking them all keeps a rule edit from
//! silently losing recall or precision. Failures name samples by index, never by content, since
//! a user's rules file could hold real values.

use std::collections::BTreeSet;

use super::SecretScanner;
use super::rules::{ContentRule, FileRule};

/// A sample that the rules do not treat as its rule says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleFailure {
    /// The rule whose sample failed.
    pub rule: String,
    /// Which sample: `leaks[2]`, `safe[0]`.
    pub sample: String,
    /// What went wrong: which rules reported it instead.
    pub problem: String,
}

impl std::fmt::Display for SampleFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rule {} {}: {}", self.rule, self.sample, self.problem)
    }
}

/// Where content-rule samples are placed when scanned as a file: a path no file rule and no
/// path list names.
const SAMPLE_PATH: &str = "/srv/app/sample.txt";

pub(crate) fn check(
    scanner: &SecretScanner,
    content: &[ContentRule],
    files: &[FileRule],
) -> Vec<SampleFailure> {
    let mut failures = Vec::new();
    let mut fail = |rule: &str, sample: String, problem: String| {
        failures.push(SampleFailure {
            rule: rule.to_string(),
            sample,
            problem,
        })
    };
    for rule in content {
        let id = rule.info.id.as_str();
        if rule.samples.leaks.is_empty() || rule.samples.safe.is_empty() {
            fail(
                id,
                "samples".into(),
                "needs at least one leak and one safe sample".into(),
            );
        }
        for (i, text) in rule.samples.leaks.iter().enumerate() {
            let as_text = ids(&scanner.scan_text(text));
            if !is_only(&as_text, id) {
                fail(id, format!("leaks[{i}]"), reported(&as_text, "as text"));
            }
            let as_file = ids(&scanner.scan_file(SAMPLE_PATH, text.as_bytes()));
            if !is_only(&as_file, id) {
                fail(id, format!("leaks[{i}]"), reported(&as_file, "as a file"));
            }
        }
        for (i, text) in rule.samples.safe.iter().enumerate() {
            let found = ids(&scanner.scan_text(text));
            if !found.is_empty() {
                fail(id, format!("safe[{i}]"), reported(&found, "as text"));
            }
        }
    }
    for rule in files {
        let id = rule.info.id.as_str();
        if rule.samples.leaks.is_empty() || rule.samples.safe.is_empty() {
            fail(
                id,
                "samples".into(),
                "needs at least one leak and one safe sample".into(),
            );
        }
        for (i, s) in rule.samples.leaks.iter().enumerate() {
            if !scanner.wants_path(&s.path, s.content.len() as u64) {
                fail(id, format!("leaks[{i}]"), "wants_path says no".into());
            }
            let found = ids(&scanner.scan_file(&s.path, s.content.as_bytes()));
            if !is_only(&found, id) {
                fail(id, format!("leaks[{i}]"), reported(&found, "as a file"));
            }
        }
        for (i, s) in rule.samples.safe.iter().enumerate() {
            let found = ids(&scanner.scan_file(&s.path, s.content.as_bytes()));
            if !found.is_empty() {
                fail(id, format!("safe[{i}]"), reported(&found, "as a file"));
            }
        }
    }
    failures
}

fn ids(hits: &[super::SecretHit]) -> BTreeSet<String> {
    hits.iter().map(|h| h.rule_id.clone()).collect()
}

fn is_only(found: &BTreeSet<String>, id: &str) -> bool {
    found.len() == 1 && found.contains(id)
}

fn reported(found: &BTreeSet<String>, how: &str) -> String {
    if found.is_empty() {
        format!("not reported {how}")
    } else {
        let list: Vec<&str> = found.iter().map(String::as_str).collect();
        format!("reported {how} by [{}]", list.join(", "))
    }
}
