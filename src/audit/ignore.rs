//! `.rsafeignore`: findings a team has looked at and accepted, each with the reason why.
//!
//! Two spellings of the same thing. Simple lines — matchers, then `#` and the reason:
//!
//! ```text
//! fs.setuid-standard                       # distro tools, stripped at run time by no_new_privs
//! secret.* /usr/share/doc/**               # vendored docs with example keys
//! fingerprint:3f2a9c0d11b2e4f5             # rotated test key, see INC-1234
//! path:Env.HTTP_PROXY_PASSWORD             # config field (paths without `/` need `path:`)
//! ```
//!
//! or TOML:
//!
//! ```toml
//! [[ignore]]
//! rule = "secret.*"
//! path = "/usr/share/doc/**"
//! reason = "vendored docs with example keys"
//! ```
//!
//! A matcher is a rule id glob (`rule:` optional), a path glob (`path:` optional when it starts
//! with `/`; matched against the file path, or the config field such as `Env.NAME`), or a
//! secret's `fingerprint:`. Every matcher of an entry must match. An entry without a reason is
//! an error: an ignore nobody can explain is how leaks stay.

use crate::bounded;
use std::io;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;

use super::{Finding, Location};

/// Why an ignore file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// toml's own `Display` quotes the line under a caret, over several lines; this keeps the
    /// position and the message only, so the error stays one line.
    #[error("{path}:{line}:{column}: {message}")]
    Toml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}:{line}: {detail}")]
    Invalid {
        path: PathBuf,
        line: usize,
        detail: String,
    },
}

/// One accepted-finding entry.
#[derive(Debug, Clone)]
pub struct IgnoreEntry {
    rule: Option<GlobMatcher>,
    path: Option<GlobMatcher>,
    fingerprint: Option<String>,
    /// Why the finding is accepted.
    pub reason: String,
    /// `file:line` (or `file` entry number for TOML) it came from.
    pub origin: String,
}

impl IgnoreEntry {
    /// Whether every matcher of this entry matches `f`.
    pub fn matches(&self, f: &Finding) -> bool {
        self.rule.as_ref().is_none_or(|g| g.is_match(&f.rule))
            && self
                .path
                .as_ref()
                .is_none_or(|g| finding_path(f).is_some_and(|p| g.is_match(p)))
            && self.fingerprint.as_ref().is_none_or(|fp| {
                f.evidence
                    .as_ref()
                    .and_then(|e| e.fingerprint.as_deref())
                    .is_some_and(|x| x.eq_ignore_ascii_case(fp))
            })
    }
}

/// What a path matcher is matched against.
fn finding_path(f: &Finding) -> Option<&str> {
    match &f.location {
        Location::ImageFile { path, .. } | Location::File { path, .. } => Some(path),
        Location::ImageConfig { field } => Some(field),
        Location::Container { detail, .. } => detail.as_deref(),
    }
}

/// The entries of one or more ignore files.
#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    pub entries: Vec<IgnoreEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    ignore: Vec<TomlEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlEntry {
    rule: Option<String>,
    path: Option<String>,
    fingerprint: Option<String>,
    reason: String,
}

impl IgnoreList {
    /// Reads an ignore file (TOML when it has a `[[ignore]]` table, simple lines otherwise).
    pub fn load(path: &Path) -> Result<IgnoreList, IgnoreError> {
        let text = bounded::read_text(path, bounded::CONFIG).map_err(|e| IgnoreError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        IgnoreList::parse(&text, path)
    }

    /// Parses ignore-file text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<IgnoreList, IgnoreError> {
        let is_toml = text
            .lines()
            .any(|l| l.trim_start().starts_with("[[ignore]]"));
        if is_toml {
            parse_toml(text, path)
        } else {
            parse_lines(text, path)
        }
    }

    /// The entry that accepts `f`, if any.
    pub fn matching(&self, f: &Finding) -> Option<&IgnoreEntry> {
        self.entries.iter().find(|e| e.matches(f))
    }

    /// Splits findings into those still reported and the number accepted.
    pub fn apply(&self, findings: Vec<Finding>) -> (Vec<Finding>, usize) {
        let before = findings.len();
        let kept: Vec<Finding> = findings
            .into_iter()
            .filter(|f| self.matching(f).is_none())
            .collect();
        let ignored = before - kept.len();
        (kept, ignored)
    }
}

fn glob(pattern: &str, separator: bool) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(pattern)
        .literal_separator(separator)
        .build()?
        .compile_matcher())
}

struct Matchers {
    rule: Option<String>,
    path: Option<String>,
    fingerprint: Option<String>,
}

fn entry(
    m: Matchers,
    reason: String,
    file: &Path,
    line: usize,
    origin: String,
) -> Result<IgnoreEntry, IgnoreError> {
    let invalid = |detail: String| IgnoreError::Invalid {
        path: file.to_path_buf(),
        line,
        detail,
    };
    if m.rule.is_none() && m.path.is_none() && m.fingerprint.is_none() {
        return Err(invalid(
            "an entry needs a rule, a path or a fingerprint".into(),
        ));
    }
    if reason.trim().is_empty() {
        return Err(invalid(
            "missing reason (write `# why this is accepted` after the matchers)".into(),
        ));
    }
    if let Some(fp) = &m.fingerprint
        && (fp.is_empty() || !fp.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(invalid(format!("fingerprint {fp:?} is not hexadecimal")));
    }
    let compile = |p: &Option<String>, sep: bool| -> Result<Option<GlobMatcher>, IgnoreError> {
        p.as_deref()
            // The glob error's kind only: its `Display` repeats the pattern unescaped.
            .map(|p| glob(p, sep).map_err(|e| invalid(format!("bad pattern {p:?}: {}", e.kind()))))
            .transpose()
    };
    Ok(IgnoreEntry {
        rule: compile(&m.rule, false)?,
        path: compile(&m.path, true)?,
        fingerprint: m.fingerprint,
        reason: reason.trim().to_string(),
        origin,
    })
}

fn parse_toml(text: &str, path: &Path) -> Result<IgnoreList, IgnoreError> {
    let file: TomlFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start.min(text.len()));
        let before = text.as_bytes()[..at].to_vec();
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        IgnoreError::Toml {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().replace('\n', " "),
        }
    })?;
    let mut entries = Vec::new();
    for (i, e) in file.ignore.into_iter().enumerate() {
        entries.push(entry(
            Matchers {
                rule: e.rule,
                path: e.path,
                fingerprint: e.fingerprint,
            },
            e.reason,
            path,
            i + 1,
            format!("{} [[ignore]] #{}", path.display(), i + 1),
        )?);
    }
    Ok(IgnoreList { entries })
}

fn parse_lines(text: &str, path: &Path) -> Result<IgnoreList, IgnoreError> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let (matchers, reason) = line.split_once('#').unwrap_or((line, ""));
        if matchers.trim().is_empty() {
            continue; // blank or comment
        }
        let mut m = Matchers {
            rule: None,
            path: None,
            fingerprint: None,
        };
        for token in matchers.split_whitespace() {
            let (slot, value) = if let Some(v) = token.strip_prefix("fingerprint:") {
                (&mut m.fingerprint, v)
            } else if let Some(v) = token.strip_prefix("path:") {
                (&mut m.path, v)
            } else if let Some(v) = token.strip_prefix("rule:") {
                (&mut m.rule, v)
            } else if token.starts_with('/') {
                (&mut m.path, token)
            } else {
                (&mut m.rule, token)
            };
            if slot.replace(value.to_string()).is_some() {
                return Err(IgnoreError::Invalid {
                    path: path.to_path_buf(),
                    line: line_no,
                    detail: format!("{token:?}: one rule, one path and one fingerprint per line"),
                });
            }
        }
        entries.push(entry(
            m,
            reason.to_string(),
            path,
            line_no,
            format!("{}:{line_no}", path.display()),
        )?);
    }
    Ok(IgnoreList { entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Evidence, Severity};

    fn finding(rule: &str, path: &str, secret: Option<&str>) -> Finding {
        Finding {
            rule: rule.into(),
            severity: Severity::High,
            title: "t".into(),
            location: Location::ImageFile {
                path: path.into(),
                line: None,
                layer: None,
            },
            evidence: secret.map(Evidence::secret),
            remediation: "r".into(),
        }
    }

    #[test]
    fn lines_match_on_every_given_matcher() {
        let fp = crate::audit::finding::fingerprint("AKIAEXAMPLEEXAMPLE12");
        let text = format!(
            "# accepted findings\n\
             fs.setuid-standard   # distro tools\n\
             secret.* /usr/share/doc/**   # vendored docs\n\
             fingerprint:{fp}   # rotated\n"
        );
        let list = IgnoreList::parse(&text, Path::new(".rsafeignore")).unwrap();
        assert_eq!(list.entries.len(), 3);
        assert!(
            list.matching(&finding("fs.setuid-standard", "/bin/su", None))
                .is_some()
        );
        assert!(
            list.matching(&finding("fs.setuid", "/bin/x", None))
                .is_none()
        );
        assert!(
            list.matching(&finding("secret.aws", "/usr/share/doc/a/b.md", Some("zz")))
                .is_some()
        );
        assert!(
            list.matching(&finding("secret.aws", "/app/b.md", Some("zz")))
                .is_none()
        );
        let hit = list
            .matching(&finding(
                "secret.aws",
                "/app/x",
                Some("AKIAEXAMPLEEXAMPLE12"),
            ))
            .unwrap();
        assert_eq!(hit.reason, "rotated");
        assert_eq!(hit.origin, ".rsafeignore:4");
        let (kept, ignored) = list.apply(vec![
            finding("fs.setuid-standard", "/bin/su", None),
            finding("fs.setuid", "/bin/x", None),
        ]);
        assert_eq!((kept.len(), ignored), (1, 1));
    }

    #[test]
    fn a_reason_is_required() {
        let err = IgnoreList::parse("fs.setuid\n", Path::new("x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x:1: missing reason (write `# why this is accepted` after the matchers)"
        );
        let err = IgnoreList::parse("[[ignore]]\nrule = \"fs.setuid\"\n", Path::new("t.toml"))
            .unwrap_err();
        assert!(err.to_string().contains("reason"), "{err}");
        assert!(IgnoreList::parse("   # only a comment\n", Path::new("x")).is_ok());
        assert!(IgnoreList::parse("fingerprint:xyz # bad\n", Path::new("x")).is_err());
    }

    #[test]
    fn toml_entries() {
        let text =
            "[[ignore]]\nrule = \"fs.world-writable\"\npath = \"/srv/*\"\nreason = \"scratch\"\n";
        let list = IgnoreList::parse(text, Path::new("t")).unwrap();
        assert!(
            list.matching(&finding("fs.world-writable", "/srv/drop", None))
                .is_some()
        );
        assert!(
            list.matching(&finding("fs.world-writable", "/srv/a/b", None))
                .is_none()
        );
    }
}
