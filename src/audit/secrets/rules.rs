//! The rules file (`policies/secrets.toml`) as data: its TOML schema and its compilation into
//! matchers. Everything a rule author can get wrong is reported here, once, as one line naming
//! the file, the rule and the problem, so a bad rule never surfaces as a panic mid-scan.
//!
//! Schema (every field is documented in `policies/secrets.toml` itself):
//! - `[settings]`: `max_scan_bytes`, `binary_probe_bytes`.
//! - `[paths]`: `skip` (globs never content-scanned: lock files, images, archives) and
//!   `vendored` (globs of distribution, vendored and documentation files, where only rules with
//!   `vendored = true` run).
//! - `[allow]`: the global allowlist (placeholders, documentation keys), applied to every rule.
//! - `[[rule]]`: a content rule (keywords + regex), run on every text file and config string.
//! - `[[file]]`: a file rule, run on files whose in-image path matches its globs.

use std::path::Path;
use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;

use super::SecretsError;
use super::allowlist::{Allowlist, RawAllow, StopwordMatch};
use super::files::PathSet;
use crate::audit::RuleInfo;
use crate::audit::finding::Severity;

/// Default for `settings.max_scan_bytes`: the first 4 MiB of a file are scanned. Secrets live in
/// config files, scripts and key files, all far smaller; the cap bounds the work on huge logs.
pub const DEFAULT_MAX_SCAN_BYTES: u64 = 4 * 1024 * 1024;
/// Default for `settings.binary_probe_bytes`: a NUL byte in the first 8 KiB marks a file binary
/// (as git and ripgrep decide) and content rules skip it.
pub const DEFAULT_BINARY_PROBE_BYTES: usize = 8 * 1024;

/// How much of a rules file is checked when it is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Load {
    /// The builtin rules: no pattern is parsed or compiled before its rule's keyword first
    /// occurs, so start-up does not grow with the number of rules. The unit test
    /// `every_builtin_regex_compiles` compiles and checks every one of them instead.
    Lazy,
    /// A user's rules file: every regex is compiled and every capture group name checked now,
    /// so a mistake is a load error naming its rule rather than a rule that never matches.
    Checked,
}

/// A regex whose capture is a candidate secret, with the checks that decide whether the
/// candidate is reported. Shared by content rules and file rules.
#[derive(Debug)]
pub(crate) struct Matcher {
    pub regex: LazyRegex,
    /// The regex's capture groups, read from it when it is first compiled.
    groups: OnceLock<Groups>,
    /// Another regex that must match somewhere in the same content (e.g. `"type":
    /// "service_account"` for a GCP key), checked only once a candidate is found.
    pub requires: Option<LazyRegex>,
    /// Minimum Shannon entropy (bits per byte) of the secret.
    pub entropy: Option<f64>,
    pub allow: Allowlist,
    /// Whether the global `allow.stopwords` apply (off for long random bodies such as private
    /// keys, where a 4-letter stopword would occur by chance).
    pub global_stopwords: bool,
    /// How stopwords match: as words for rules whose format is specific (`stopwords_match =
    /// "words"`, the default of content rules), anywhere for generic ones (`"substrings"`, the
    /// default of file rules).
    pub stopwords_match: StopwordMatch,
    /// A structural check of the candidate beyond its regex (`check = "jwt"`, `"base64"`).
    pub check: Option<Check>,
}

/// Which capture groups of a rule regex hold what.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Groups {
    /// Unnamed groups, in order: the first that took part in a match is the secret. Empty: the
    /// whole match is the secret.
    pub secret: Vec<usize>,
    /// Groups named `key…` (`key`, `key2`: the assignment's name, one per alternative); the
    /// first that took part is checked by `allow.key_regexes` and shown next to the redacted
    /// value.
    pub key: Vec<usize>,
}

impl Groups {
    /// The groups of `regex`; an error names a group that is neither unnamed nor `key…`.
    fn of(regex: &Regex) -> Result<Groups, String> {
        let mut groups = Groups::default();
        for (i, name) in regex.capture_names().enumerate().skip(1) {
            match name {
                None => groups.secret.push(i),
                Some(key) if key.starts_with("key") => groups.key.push(i),
                Some(other) => {
                    return Err(format!(
                        "unknown capture group name {other:?} (only `key…` groups are named; \
                         the secret is the first unnamed group that matched)"
                    ));
                }
            }
        }
        Ok(groups)
    }
}

impl Matcher {
    /// The compiled regex and its groups, compiled on first use; `None` if it does not compile
    /// (only possible for lazily loaded rules, whose unit test rules that out).
    pub fn compiled(&self) -> Option<(&Regex, &Groups)> {
        let regex = self.regex.get()?;
        let groups = self
            .groups
            .get_or_init(|| Groups::of(regex).unwrap_or_default());
        Some((regex, groups))
    }

    /// Compiles every regex of the matcher now (rule, `requires`, allowlist) and checks the
    /// group names; the first problem, worded for a rule author.
    pub fn check(&self) -> Result<(), String> {
        let regex = self
            .regex
            .compile_now()
            .map_err(|e| format!("bad regex: {e}"))?;
        Groups::of(regex)?;
        if let Some(r) = &self.requires {
            r.compile_now()
                .map_err(|e| format!("bad requires regex: {e}"))?;
        }
        self.allow.check()
    }
}

/// Structural checks a regex cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// A JSON Web Token: its first segment is base64url of a JSON object with an `alg` (a
    /// near-miss `eyJ….eyJ….x` of random bytes is no token).
    Jwt,
    /// Standard base64 of at least 4 bytes that are mostly printable text: a value under a
    /// Kubernetes Secret's `data:`.
    Base64Text,
}

impl Check {
    fn parse(name: &str) -> Result<Check, String> {
        match name {
            "jwt" => Ok(Check::Jwt),
            "base64" => Ok(Check::Base64Text),
            _ => Err(format!("unknown check {name:?} (expected jwt or base64)")),
        }
    }

    /// Whether `secret` passes the check.
    pub fn passes(self, secret: &[u8]) -> bool {
        use base64::Engine;
        match self {
            Check::Jwt => {
                let header = secret.split(|&b| b == b'.').next().unwrap_or_default();
                let header = header.strip_suffix(b"=").unwrap_or(header);
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(header.trim_ascii_end())
                    .ok()
                    .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
                    .is_some_and(|v| v.get("alg").is_some_and(serde_json::Value::is_string))
            }
            Check::Base64Text => base64::engine::general_purpose::STANDARD
                .decode(secret)
                .is_ok_and(|d| {
                    d.len() >= 4
                        && d.iter().filter(|b| b.is_ascii_graphic()).count() * 10 >= d.len() * 9
                }),
        }
    }
}

fn stopwords_match(name: Option<&str>, default: StopwordMatch) -> Result<StopwordMatch, String> {
    match name {
        None => Ok(default),
        Some("words") => Ok(StopwordMatch::Words),
        Some("substrings") => Ok(StopwordMatch::Substrings),
        Some(other) => Err(format!(
            "unknown stopwords_match {other:?} (expected words or substrings)"
        )),
    }
}

/// A content rule: runs on any text when one of its keywords occurs.
#[derive(Debug)]
pub(crate) struct ContentRule {
    pub info: RuleInfo,
    /// Keywords, lowercased unless `keywords_case_sensitive`.
    pub keywords: Vec<String>,
    pub keywords_case_sensitive: bool,
    /// Whether a match may span lines. Otherwise the regex runs only on the lines where one of
    /// the rule's keywords occurs, which is most of the speed of a scan.
    pub multiline: bool,
    pub matcher: Matcher,
    /// Higher wins when two rules report the same bytes (a GitHub token inside `token=…` is a
    /// GitHub token, not a generic secret).
    pub precedence: i32,
    /// Whether the rule also runs on `paths.vendored` files (distribution and vendored files).
    pub vendored: bool,
    pub samples: Samples<String>,
}

/// A file rule: the path alone marks a file as secret-bearing, optionally confirmed by content.
#[derive(Debug)]
pub(crate) struct FileRule {
    pub info: RuleInfo,
    /// The globs naming the rule's files, matched through the scanner's one `FileIndex`.
    pub paths: Vec<globset::Glob>,
    pub exclude: Option<PathSet>,
    /// Without it, any non-empty file at a matching path is a finding (the whole file is the
    /// secret); with it, every accepted match is one.
    pub matcher: Option<Matcher>,
    pub precedence: i32,
    /// Whether the rule also applies to `paths.vendored` files.
    pub vendored: bool,
    /// Once this rule reports a file, lower-precedence content findings in the same file are
    /// dropped: `~/.aws/credentials` is one finding, not three.
    pub claims_file: bool,
    pub samples: Samples<FileSample>,
}

/// Examples a rule must report (`leaks`) and must not report (`safe`), checked by a unit test
/// for the builtin rules and by `SecretScanner::check_samples` for any rules file.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Samples<T> {
    #[serde(default = "Vec::new")]
    pub leaks: Vec<T>,
    #[serde(default = "Vec::new")]
    pub safe: Vec<T>,
}

/// A file sample: where the file is in the image, and what it holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSample {
    pub path: String,
    #[serde(default)]
    pub content: String,
}

/// Scan-wide settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub max_scan_bytes: u64,
    pub binary_probe_bytes: usize,
}

/// A compiled rules file.
#[derive(Debug)]
pub(crate) struct RuleSet {
    pub settings: Settings,
    pub skip: PathSet,
    pub vendored: PathSet,
    pub allow: Allowlist,
    pub content: Vec<ContentRule>,
    pub files: Vec<FileRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleSet {
    #[serde(default)]
    settings: RawSettings,
    #[serde(default)]
    paths: RawPaths,
    #[serde(default)]
    allow: RawAllow,
    #[serde(default)]
    rule: Vec<toml::Table>,
    #[serde(default)]
    file: Vec<toml::Table>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    max_scan_bytes: Option<u64>,
    binary_probe_bytes: Option<usize>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPaths {
    #[serde(default)]
    skip: Vec<String>,
    #[serde(default)]
    vendored: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContentRule {
    id: String,
    title: String,
    description: String,
    severity: String,
    remediation: String,
    keywords: Vec<String>,
    #[serde(default)]
    keywords_case_sensitive: bool,
    #[serde(default)]
    multiline: bool,
    regex: String,
    requires: Option<String>,
    entropy: Option<f64>,
    check: Option<String>,
    stopwords_match: Option<String>,
    precedence: Option<i32>,
    #[serde(default = "yes")]
    vendored: bool,
    #[serde(default)]
    allow: RawAllow,
    #[serde(default = "Vec::new")]
    leaks: Vec<String>,
    #[serde(default = "Vec::new")]
    safe: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileRule {
    id: String,
    title: String,
    description: String,
    severity: String,
    remediation: String,
    paths: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    content: Option<String>,
    requires: Option<String>,
    entropy: Option<f64>,
    stopwords_match: Option<String>,
    precedence: Option<i32>,
    #[serde(default)]
    claims_file: bool,
    #[serde(default = "yes")]
    vendored: bool,
    #[serde(default)]
    allow: RawAllow,
    #[serde(default = "Vec::new")]
    leaks: Vec<FileSample>,
    #[serde(default = "Vec::new")]
    safe: Vec<FileSample>,
}

fn yes() -> bool {
    true
}

/// Default precedence of content rules; generic rules set a lower one, file rules a higher one.
const CONTENT_PRECEDENCE: i32 = 50;
const FILE_PRECEDENCE: i32 = 70;

/// Parses and compiles a rules file, checking its regexes now or on first use (`load`).
/// `origin` names it in every error.
pub(crate) fn compile(text: &str, origin: &Path, load: Load) -> Result<RuleSet, SecretsError> {
    let raw: RawRuleSet = toml::from_str(text).map_err(|e| SecretsError::Syntax {
        origin: origin.to_path_buf(),
        message: syntax_message(text, &e),
    })?;
    let section = |section: &str, problem: String| SecretsError::Rule {
        origin: origin.to_path_buf(),
        rule: section.to_string(),
        problem,
    };

    let settings = Settings {
        max_scan_bytes: raw
            .settings
            .max_scan_bytes
            .unwrap_or(DEFAULT_MAX_SCAN_BYTES),
        binary_probe_bytes: raw
            .settings
            .binary_probe_bytes
            .unwrap_or(DEFAULT_BINARY_PROBE_BYTES),
    };
    if settings.max_scan_bytes == 0 {
        return Err(section(
            "[settings]",
            "max_scan_bytes must be above 0".into(),
        ));
    }
    let skip = PathSet::compile(&raw.paths.skip).map_err(|p| section("[paths] skip", p))?;
    let vendored =
        PathSet::compile(&raw.paths.vendored).map_err(|p| section("[paths] vendored", p))?;
    let allow = Allowlist::compile(&raw.allow, load).map_err(|p| section("[allow]", p))?;

    let mut ids = std::collections::HashSet::new();
    let mut content = Vec::with_capacity(raw.rule.len());
    for (n, table) in raw.rule.into_iter().enumerate() {
        let name = table_id(&table, "rule", n);
        let rule = compile_content_rule(table, load).map_err(|p| section_err(origin, &name, p))?;
        if !ids.insert(rule.info.id.clone()) {
            return Err(section_err(origin, &name, "duplicate rule id".into()));
        }
        content.push(rule);
    }
    let mut files = Vec::with_capacity(raw.file.len());
    for (n, table) in raw.file.into_iter().enumerate() {
        let name = table_id(&table, "file", n);
        let rule = compile_file_rule(table, load).map_err(|p| section_err(origin, &name, p))?;
        if !ids.insert(rule.info.id.clone()) {
            return Err(section_err(origin, &name, "duplicate rule id".into()));
        }
        files.push(rule);
    }
    Ok(RuleSet {
        settings,
        skip,
        vendored,
        allow,
        content,
        files,
    })
}

fn section_err(origin: &Path, rule: &str, problem: String) -> SecretsError {
    SecretsError::Rule {
        origin: origin.to_path_buf(),
        rule: rule.to_string(),
        problem,
    }
}

/// The rule's id for error messages, or its position when the id is missing.
fn table_id(table: &toml::Table, kind: &str, n: usize) -> String {
    match table.get("id").and_then(toml::Value::as_str) {
        Some(id) => id.to_string(),
        None => format!("[[{kind}]] #{} (no id)", n + 1),
    }
}

/// A TOML syntax error as `line L, column C: message` (toml's own Display spans several lines).
fn syntax_message(text: &str, err: &toml::de::Error) -> String {
    let message = one_line(err.message());
    match err.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn deserialize<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| one_line(e.message()))
}

fn compile_content_rule(table: toml::Table, load: Load) -> Result<ContentRule, String> {
    let raw: RawContentRule = deserialize(table)?;
    let info = rule_info(
        &raw.id,
        raw.title,
        raw.description,
        &raw.severity,
        raw.remediation,
    )?;
    let keywords: Vec<String> = raw
        .keywords
        .into_iter()
        .map(|k| {
            if raw.keywords_case_sensitive {
                k
            } else {
                k.to_ascii_lowercase()
            }
        })
        .collect();
    if keywords.is_empty() || keywords.iter().any(String::is_empty) {
        return Err("keywords must list at least one non-empty keyword (the prefilter)".into());
    }
    let mut matcher = compile_matcher(
        &raw.regex,
        raw.requires.as_deref(),
        raw.entropy,
        &raw.allow,
        load,
    )?;
    matcher.stopwords_match =
        stopwords_match(raw.stopwords_match.as_deref(), StopwordMatch::Words)?;
    matcher.check = raw.check.as_deref().map(Check::parse).transpose()?;
    Ok(ContentRule {
        info,
        keywords,
        keywords_case_sensitive: raw.keywords_case_sensitive,
        multiline: raw.multiline,
        matcher,
        precedence: raw.precedence.unwrap_or(CONTENT_PRECEDENCE),
        vendored: raw.vendored,
        samples: Samples {
            leaks: raw.leaks,
            safe: raw.safe,
        },
    })
}

fn compile_file_rule(table: toml::Table, load: Load) -> Result<FileRule, String> {
    let raw: RawFileRule = deserialize(table)?;
    let info = rule_info(
        &raw.id,
        raw.title,
        raw.description,
        &raw.severity,
        raw.remediation,
    )?;
    if !raw.id.starts_with("secret.file.") {
        return Err("file rule ids start with `secret.file.`".into());
    }
    if raw.paths.is_empty() {
        return Err("paths must list at least one glob".into());
    }
    let paths = super::files::globs(&raw.paths).map_err(|p| format!("paths: {p}"))?;
    let exclude = if raw.exclude.is_empty() {
        None
    } else {
        Some(PathSet::compile(&raw.exclude).map_err(|p| format!("exclude: {p}"))?)
    };
    let matcher = match &raw.content {
        Some(regex) => {
            let mut m = compile_matcher(
                regex,
                raw.requires.as_deref(),
                raw.entropy,
                &raw.allow,
                load,
            )?;
            m.stopwords_match =
                stopwords_match(raw.stopwords_match.as_deref(), StopwordMatch::Substrings)?;
            Some(m)
        }
        None if raw.requires.is_some() || raw.entropy.is_some() => {
            return Err("requires and entropy need a content regex".into());
        }
        None => None,
    };
    Ok(FileRule {
        info,
        paths,
        exclude,
        matcher,
        precedence: raw.precedence.unwrap_or(FILE_PRECEDENCE),
        vendored: raw.vendored,
        claims_file: raw.claims_file,
        samples: Samples {
            leaks: raw.leaks,
            safe: raw.safe,
        },
    })
}

fn rule_info(
    id: &str,
    title: String,
    description: String,
    severity: &str,
    remediation: String,
) -> Result<RuleInfo, String> {
    let valid_id = id.starts_with("secret.")
        && id.len() > "secret.".len()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !valid_id {
        return Err(format!(
            "id {id:?} must start with `secret.` and use only a-z, 0-9, `.` and `-`"
        ));
    }
    for (field, value) in [
        ("title", &title),
        ("description", &description),
        ("remediation", &remediation),
    ] {
        if value.trim().is_empty() {
            return Err(format!("{field} is empty"));
        }
    }
    Ok(RuleInfo {
        id: id.to_string(),
        severity: parse_severity(severity)?,
        title,
        description: one_line(&description),
        remediation: one_line(&remediation),
    })
}

fn parse_severity(name: &str) -> Result<Severity, String> {
    match name.to_ascii_lowercase().as_str() {
        "critical" => Ok(Severity::Critical),
        "high" => Ok(Severity::High),
        "medium" => Ok(Severity::Medium),
        "low" => Ok(Severity::Low),
        "info" => Ok(Severity::Info),
        _ => Err(format!(
            "unknown severity {name:?} (expected critical, high, medium, low or info)"
        )),
    }
}

fn compile_matcher(
    regex: &str,
    requires: Option<&str>,
    entropy: Option<f64>,
    allow: &RawAllow,
    load: Load,
) -> Result<Matcher, String> {
    if let Some(e) = entropy.filter(|e| !(0.0..=8.0).contains(e)) {
        return Err(format!("entropy {e} is outside 0.0..=8.0 bits per byte"));
    }
    let allow = Allowlist::compile(allow, load)?;
    let matcher = Matcher {
        regex: LazyRegex::new(regex),
        groups: OnceLock::new(),
        requires: requires.map(LazyRegex::new),
        entropy,
        global_stopwords: allow.global_stopwords,
        stopwords_match: StopwordMatch::Substrings,
        check: None,
        allow,
    };
    if load == Load::Checked {
        matcher.check()?;
    }
    Ok(matcher)
}

/// A regex compiled on first use. With hundreds of provider rules, compiling (or even parsing)
/// them all up front cost more than auditing a small file; a scan compiles only the rules whose
/// keywords occur. A user's rules file is checked whole when it is loaded ([`Load::Checked`]),
/// so a bad pattern there is still a load error naming its rule, never a surprise mid-scan.
#[derive(Debug)]
pub(crate) struct LazyRegex {
    pattern: String,
    compiled: OnceLock<Result<Regex, String>>,
}

impl LazyRegex {
    pub fn new(pattern: &str) -> LazyRegex {
        LazyRegex {
            pattern: pattern.to_string(),
            compiled: OnceLock::new(),
        }
    }

    /// The compiled regex. `None` if the pattern does not compile: the rule then matches
    /// nothing (a checked load has already refused such a file).
    pub fn get(&self) -> Option<&Regex> {
        self.compile_now().ok()
    }

    /// The compiled regex, compiling it now; the error flattened to one line.
    pub fn compile_now(&self) -> Result<&Regex, String> {
        self.compiled
            .get_or_init(|| compile_regex(&self.pattern))
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn flatten_regex_error(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| one_line(text))
}

/// Every rule regex runs on raw bytes with Unicode off: `\w`, `\s`, `\b` and `(?i)` are ASCII,
/// `.` matches any byte but `\n`, and invalid UTF-8 (common in binaries-that-look-like-text) is
/// fine. Errors are flattened to their `error:` line.
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(16 * 1024 * 1024)
        .build()
        .map_err(|e| flatten_regex_error(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        compile(text, Path::new("custom.toml"), Load::Checked)
            .map(|_| ())
            .expect_err("must not compile")
            .to_string()
    }

    const OK_RULE: &str = r#"
        id = "secret.x"
        title = "X"
        description = "d"
        remediation = "r"
        severity = "high"
        keywords = ["x_"]
    "#;

    #[test]
    fn a_bad_regex_names_the_file_the_rule_and_the_problem() {
        let e = err(&format!("[[rule]]\n{OK_RULE}\nregex = 'x_(['\n"));
        assert!(
            e.starts_with("custom.toml: rule secret.x: bad regex: "),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn unknown_severity_and_missing_fields_are_named() {
        let text = format!("[[rule]]\n{OK_RULE}\nregex = 'x_[a-z]+'\n").replace("high", "severe");
        let e = err(&text);
        assert!(
            e.contains("rule secret.x: unknown severity \"severe\""),
            "{e}"
        );
        let e = err("[[rule]]\nid = \"secret.y\"\nregex = 'y'\n");
        assert!(e.contains("rule secret.y: missing field"), "{e}");
        let e = err("[[rule]]\ntitle = \"t\"\n");
        assert!(e.contains("rule [[rule]] #1 (no id):"), "{e}");
    }

    #[test]
    fn typos_and_syntax_errors_are_one_line_with_a_position() {
        let e = err(&format!(
            "[[rule]]\n{OK_RULE}\nregex = 'x'\nentropi = 3.0\n"
        ));
        assert!(e.contains("unknown field `entropi`"), "{e}");
        let e = err("[[rule]\nid = 1\n");
        assert!(e.starts_with("custom.toml: line 1, column"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn ids_are_unique_and_prefixed() {
        let one = format!("[[rule]]\n{OK_RULE}\nregex = 'x_[a-z]+'\n");
        let e = err(&format!("{one}{one}"));
        assert!(e.contains("rule secret.x: duplicate rule id"), "{e}");
        let e = err(&one.replace("secret.x", "aws"));
        assert!(e.contains("must start with `secret.`"), "{e}");
    }

    #[test]
    fn the_secret_is_the_first_unnamed_group_and_key_is_named() {
        let text = format!("[[rule]]\n{OK_RULE}\nregex = '(?P<key>k)=(?:(a)|(b))'\n");
        for load in [Load::Lazy, Load::Checked] {
            let set = compile(&text, Path::new("t.toml"), load).expect("compiles");
            let (_, groups) = set.content[0].matcher.compiled().expect("compiles");
            assert_eq!(groups.key, vec![1]);
            assert_eq!(groups.secret, vec![2, 3]);
        }
        let e = err(&format!("[[rule]]\n{OK_RULE}\nregex = '(?P<value>x)'\n"));
        assert!(e.contains("unknown capture group name \"value\""), "{e}");
    }
}
