//! Secret detection: the engine that runs the rules of `policies/secrets.toml` over file content
//! and config strings (`Env`, history `created_by`, labels, Dockerfile `ENV`/`ARG`, compose
//! `environment:`, a process's environ).
//!
//! Per file, the work is kept small because the auditor runs this on every file of every layer:
//! 1. file rules whose globs name the path (`.ssh/id_*`, `/etc/shadow`, `.npmrc`, …) run first,
//!    on any content, binary or not;
//! 2. content rules skip lock files and binary-looking files (a NUL byte in the first 8 KiB) and
//!    see at most `max_scan_bytes` (4 MiB by default);
//! 3. one Aho-Corasick pass over all rules' keywords decides which rules' regexes run at all;
//!    A `name:`/`value:` pair (pod spec and task definition env entries) is scanned again as the
//!    one-line assignment it stands for, so rules that need the name see it;
//! 4. each candidate secret is checked against allowlists (placeholders, documentation keys,
//!    comments) and the rule's entropy threshold;
//! 5. when two rules report the same bytes the higher `precedence` wins (a `ghp_` token in
//!    `token=…` is a GitHub token, not a generic secret), and line/column are computed for the
//!    survivors only.
//!
//! No secret ever leaves this module in clear: a [`SecretHit`] carries only redacted
//! [`Evidence`].

mod allowlist;
mod docstrings;
mod entropy;
mod files;
mod pairs;
mod rules;
mod samples;

use crate::bounded;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use crate::audit::RuleInfo;
use crate::audit::finding::{Evidence, Finding, Location, Severity};
use allowlist::{Allowlist, Candidate, StopwordMatch};
use files::{FileIndex, PathSet};
use rules::{ContentRule, FileRule, Load, Matcher, Settings};

pub use rules::{DEFAULT_BINARY_PROBE_BYTES, DEFAULT_MAX_SCAN_BYTES};
pub use samples::SampleFailure;

/// The builtin rules, compiled into the binary so the auditor needs no files at run time.
const BUILTIN_RULES: &str = include_str!("../../../policies/secrets.toml");
/// How errors in the builtin rules name their origin.
const BUILTIN_ORIGIN: &str = "policies/secrets.toml (builtin)";

/// What can go wrong loading a rules file. Each prints as one line naming the file and, for a
/// rule problem, the rule id.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("{}: cannot read: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: {message}", origin.display())]
    Syntax { origin: PathBuf, message: String },
    #[error("{}: rule {rule}: {problem}", origin.display())]
    Rule {
        origin: PathBuf,
        rule: String,
        problem: String,
    },
}

/// A compiled rule set, ready to scan. `Send + Sync`: one scanner is shared by every thread
/// that walks layers.
pub struct SecretScanner {
    settings: Settings,
    skip: PathSet,
    vendored: PathSet,
    allow: Allowlist,
    content: Vec<ContentRule>,
    files: Vec<FileRule>,
    file_index: FileIndex,
    prefilter: Prefilter,
}

/// One secret found: which rule, where in the scanned content, and redacted evidence. Holds no
/// secret, so `Debug` is safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHit {
    pub rule_id: String,
    pub severity: Severity,
    pub title: String,
    /// 1-based line of the secret in the scanned content; `None` when the whole file is the
    /// finding (a binary credentials database, a key file).
    pub line: Option<u32>,
    /// 1-based column (in characters) of the secret's first character on that line.
    pub column: Option<u32>,
    /// Always built by [`Evidence::secret`]: a short prefix, the length and a fingerprint.
    pub evidence: Evidence,
    pub remediation: String,
}

impl SecretHit {
    /// The hit as a [`Finding`] at `location`. A [`Location::File`] that has no line yet gets the
    /// hit's line and column, a [`Location::ImageFile`] the hit's line.
    pub fn into_finding(self, location: Location) -> Finding {
        let location = match location {
            Location::File {
                path,
                line: None,
                column: None,
            } => Location::File {
                path,
                line: self.line,
                column: self.column,
            },
            Location::ImageFile {
                path,
                line: None,
                layer,
            } => Location::ImageFile {
                path,
                line: self.line,
                layer,
            },
            other => other,
        };
        Finding {
            rule: self.rule_id,
            severity: self.severity,
            title: self.title,
            location,
            evidence: Some(self.evidence),
            remediation: self.remediation,
        }
    }
}

impl fmt::Debug for SecretScanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretScanner")
            .field("content_rules", &self.content.len())
            .field("file_rules", &self.files.len())
            .field("max_scan_bytes", &self.settings.max_scan_bytes)
            .finish_non_exhaustive()
    }
}

impl SecretScanner {
    /// The rules shipped with rsafe (`policies/secrets.toml`, compiled in). Nothing is parsed
    /// or compiled before a rule's keyword first occurs (start-up would otherwise grow with the
    /// number of rules); the unit tests compile and check every builtin regex and sample.
    pub fn builtin() -> Result<SecretScanner, SecretsError> {
        Self::load(BUILTIN_RULES, Path::new(BUILTIN_ORIGIN), Load::Lazy)
    }

    /// Compiles a rules file's text; `origin` names it in errors. Every regex is compiled now,
    /// so that a bad or too large pattern is a load error naming its rule rather than a rule
    /// that silently never matches.
    pub fn from_toml(text: &str, origin: &Path) -> Result<SecretScanner, SecretsError> {
        Self::load(text, origin, Load::Checked)
    }

    /// Reads and compiles a rules file, checked as [`SecretScanner::from_toml`] does.
    pub fn from_file(path: &Path) -> Result<SecretScanner, SecretsError> {
        let text = bounded::read_text(path, bounded::CONFIG).map_err(|e| SecretsError::Read {
            path: path.to_path_buf(),
            cause: e.into(),
        })?;
        Self::from_toml(&text, path)
    }

    fn load(text: &str, origin: &Path, load: Load) -> Result<SecretScanner, SecretsError> {
        let set = rules::compile(text, origin, load)?;
        let file_index = FileIndex::build(&set.files).map_err(|problem| SecretsError::Rule {
            origin: origin.to_path_buf(),
            rule: "[[file]] paths".into(),
            problem,
        })?;
        let prefilter =
            Prefilter::build(&set.content, load).map_err(|problem| SecretsError::Rule {
                origin: origin.to_path_buf(),
                rule: "keywords".into(),
                problem,
            })?;
        Ok(SecretScanner {
            settings: set.settings,
            skip: set.skip,
            vendored: set.vendored,
            allow: set.allow,
            content: set.content,
            files: set.files,
            file_index,
            prefilter,
        })
    }

    /// Compiles every regex now (rules, `requires`, allowlists) and checks capture group
    /// names, as a checked load does; the first failure as (rule id, problem). For the builtin
    /// rules, which are otherwise compiled when a rule's keyword first occurs.
    pub fn compile_all(&self) -> Result<(), (String, String)> {
        self.allow.check().map_err(|p| ("[allow]".to_string(), p))?;
        for keywords in [&self.prefilter.everywhere, &self.prefilter.vendored] {
            keywords
                .automaton()
                .map_err(|p| ("keywords".to_string(), p))?;
        }
        let content = self.content.iter().map(|r| (&r.info.id, Some(&r.matcher)));
        let files = self.files.iter().map(|r| (&r.info.id, r.matcher.as_ref()));
        for (id, m) in content.chain(files) {
            if let Some(m) = m {
                m.check().map_err(|p| (id.clone(), p))?;
            }
        }
        Ok(())
    }

    /// How many leading bytes of a file are scanned (`settings.max_scan_bytes`): a caller that
    /// reads files need not read more.
    pub fn max_scan_bytes(&self) -> u64 {
        self.settings.max_scan_bytes
    }

    /// Overrides `settings.max_scan_bytes` (e.g. from a command-line flag); 0 is taken as 1.
    pub fn with_max_scan_bytes(mut self, bytes: u64) -> SecretScanner {
        self.settings.max_scan_bytes = bytes.max(1);
        self
    }

    /// Whether any rule may care about the file at `path` of `size` bytes. False only when
    /// nothing can match (empty files; lock files, images and archives no file rule names), so
    /// a walker can skip reading it.
    pub fn wants_path(&self, path: &str, size: u64) -> bool {
        if size == 0 {
            return false;
        }
        let path = files::normalize(path);
        self.file_index.may_match(&path) || !self.skip.is_match(&path)
    }

    /// Scans one file's content (at most `max_scan_bytes` of it): the file rules that name
    /// `path` (the in-image path) and, for text files, the content rules.
    pub fn scan_file(&self, path: &str, content: &[u8]) -> Vec<SecretHit> {
        let content = self.capped(content);
        if content.is_empty() {
            return Vec::new();
        }
        let path = files::normalize(path);
        let vendored = self.vendored.is_match(&path);
        let mut found = Vec::new();
        for r in self.file_index.rules_for(&path, &self.files) {
            if !vendored || self.files[r].vendored {
                self.run_file_rule(r, content, &mut found);
            }
        }
        if !self.skip.is_match(&path) && !self.looks_binary(content) {
            self.run_content_rules(content, vendored, &mut found);
            if !vendored {
                self.run_pairs(content, &mut found);
                if path.ends_with(".py") {
                    self.drop_generic_in(&docstrings::python_docstrings(content), &mut found);
                }
            }
        }
        self.finish(content, found)
    }

    /// Drops what the rules that do not run on documentation (`vendored = false`: the generic
    /// `name = value` ones) found inside `docs`, the documentation parts of a source file.
    fn drop_generic_in(&self, docs: &[Range<usize>], found: &mut Vec<Found>) {
        if docs.is_empty() {
            return;
        }
        found.retain(|f| {
            let generic = match f.origin.rule {
                RuleRef::Content(r) => !self.content[r].vendored,
                RuleRef::File(_) => false,
            };
            !generic
                || !docs
                    .iter()
                    .any(|d| d.start <= f.secret.start && f.secret.end <= d.end)
        });
    }

    /// Scans a piece of config text (an `Env` entry `NAME=value`, a history `created_by`, a
    /// label, a Dockerfile `ENV`/`ARG`, a compose `environment:` entry, a process environ) with
    /// the content rules.
    ///
    /// Several entries may be given at once separated by newlines or NUL bytes (a raw
    /// `/proc/PID/environ`); a NUL ends an entry like a newline does.
    pub fn scan_text(&self, text: &str) -> Vec<SecretHit> {
        let content = self.capped(text.as_bytes());
        let lines;
        let content = if content.contains(&0) {
            lines = content
                .iter()
                .map(|&b| if b == 0 { b'\n' } else { b })
                .collect::<Vec<u8>>();
            &lines[..]
        } else {
            content
        };
        let mut found = Vec::new();
        self.run_content_rules(content, false, &mut found);
        self.run_pairs(content, &mut found);
        self.finish(content, found)
    }

    /// Every rule, content rules first, in file order (for `rsafe rules`).
    pub fn rules(&self) -> Vec<RuleInfo> {
        self.content
            .iter()
            .map(|r| r.info.clone())
            .chain(self.files.iter().map(|r| r.info.clone()))
            .collect()
    }

    /// Checks every rule's `leaks` and `safe` samples: each leak must be reported by exactly its
    /// own rule, no safe sample by any rule. Empty when all hold.
    pub fn check_samples(&self) -> Vec<SampleFailure> {
        samples::check(self, &self.content, &self.files)
    }

    fn capped<'a>(&self, content: &'a [u8]) -> &'a [u8] {
        let cap = usize::try_from(self.settings.max_scan_bytes).unwrap_or(usize::MAX);
        &content[..content.len().min(cap)]
    }

    fn looks_binary(&self, content: &[u8]) -> bool {
        content[..content.len().min(self.settings.binary_probe_bytes)].contains(&0)
    }

    fn run_file_rule(&self, r: usize, content: &[u8], found: &mut Vec<Found>) {
        let rule = &self.files[r];
        let origin = Origin {
            rule: RuleRef::File(r),
            precedence: rule.precedence,
            claims_file: rule.claims_file,
        };
        match &rule.matcher {
            None => found.push(Found {
                origin: Origin {
                    claims_file: true,
                    ..origin
                },
                whole_file: true,
                secret: 0..content.len(),
                key: None,
            }),
            Some(m) => self.run_matcher(m, origin, content, 0..content.len(), found),
        }
    }

    fn run_content_rules(&self, content: &[u8], vendored: bool, found: &mut Vec<Found>) {
        let scopes = self.prefilter.scopes(content, vendored);
        for (r, scope) in scopes.into_iter().enumerate() {
            let rule = &self.content[r];
            let origin = Origin {
                rule: RuleRef::Content(r),
                precedence: rule.precedence,
                claims_file: false,
            };
            let run = |window: Range<usize>, found: &mut Vec<Found>| {
                self.run_matcher(&rule.matcher, origin, content, window, found)
            };
            match scope {
                Scope::Untouched => {}
                Scope::Content => run(0..content.len(), found),
                Scope::Lines(lines) => lines.into_iter().for_each(|l| run(l, found)),
            }
        }
    }

    /// Scans each `name`/`value` pair of the content as the assignment `NAME="value"` and keeps
    /// the hits inside the value, mapped back onto the content (the name as their key). Not run
    /// on vendored files: manifests of a project's own deployment are what it is for.
    fn run_pairs(&self, content: &[u8], found: &mut Vec<Found>) {
        for pair in pairs::find(content) {
            let (line, name, value) = pairs::as_assignment(content, &pair);
            let mut hits = Vec::new();
            self.run_content_rules(&line, false, &mut hits);
            let inside = |r: &Range<usize>, outer: &Range<usize>| {
                outer.start <= r.start && r.end <= outer.end
            };
            for hit in hits {
                if !inside(&hit.secret, &value) {
                    continue;
                }
                let shift = |r: Range<usize>, from: &Range<usize>, to: &Range<usize>| {
                    to.start + (r.start - from.start)..to.start + (r.end - from.start)
                };
                found.push(Found {
                    secret: shift(hit.secret, &value, &pair.value),
                    key: hit
                        .key
                        .filter(|k| inside(k, &name))
                        .map(|k| shift(k, &name, &pair.name)),
                    ..hit
                });
            }
        }
    }

    /// Runs one rule's regex over `window` of the content and keeps the candidates no
    /// allowlist lets go. Offsets in `found` are into the whole content.
    fn run_matcher(
        &self,
        m: &Matcher,
        origin: Origin,
        content: &[u8],
        window: Range<usize>,
        found: &mut Vec<Found>,
    ) {
        let Some((regex, groups)) = m.compiled() else {
            return;
        };
        let needs_line = m.allow.looks_at_lines() || self.allow.looks_at_lines();
        let base = window.start;
        let haystack = &content[window];
        let mut required = None;
        for caps in regex.captures_iter(haystack) {
            let Some(whole) = caps.get(0) else { continue };
            let secret = groups
                .secret
                .iter()
                .find_map(|&g| caps.get(g))
                .unwrap_or(whole);
            let secret_span = trim_blanks(haystack, secret.range());
            let key = groups.key.iter().find_map(|&g| caps.get(g));
            let line = if needs_line {
                line_around(content, base + whole.start())
            } else {
                &[][..]
            };
            let secret_bytes = &haystack[secret_span.clone()];
            let candidate = Candidate {
                secret: secret_bytes,
                whole_match: whole.as_bytes(),
                line,
                key: key.map(|k| k.as_bytes()),
            };
            let global_stopwords = if m.global_stopwords {
                m.stopwords_match
            } else {
                StopwordMatch::Off
            };
            if secret_bytes.is_empty()
                || m.allow.allows(&candidate, m.stopwords_match)
                || self.allow.allows(&candidate, global_stopwords)
                || m.entropy
                    .is_some_and(|min| entropy::shannon(secret_bytes) < min)
                || m.check.is_some_and(|c| !c.passes(secret_bytes))
            {
                continue;
            }
            let present = *required.get_or_insert_with(|| {
                m.requires
                    .as_ref()
                    .is_none_or(|r| r.get().is_some_and(|r| r.is_match(content)))
            });
            if !present {
                return;
            }
            found.push(Found {
                origin,
                whole_file: false,
                secret: base + secret_span.start..base + secret_span.end,
                key: key.map(|k| base + k.start()..base + k.end()),
            });
        }
    }

    /// Resolves overlaps, computes positions and builds the hits, in content order.
    fn finish(&self, content: &[u8], found: Vec<Found>) -> Vec<SecretHit> {
        if found.is_empty() {
            return Vec::new();
        }
        let kept = resolve_overlaps(found);
        let mut hits = Vec::with_capacity(kept.len());
        let mut cursor = LineCursor::default();
        for f in kept {
            let info = match f.origin.rule {
                RuleRef::Content(r) => &self.content[r].info,
                RuleRef::File(r) => &self.files[r].info,
            };
            // Every rule's value, whole files included, is shown and fingerprinted without the
            // blanks around it (a blank-only file keeps its bytes: they are the finding).
            let trimmed = trim_blanks(content, f.secret.clone());
            let span = if trimmed.is_empty() {
                f.secret.clone()
            } else {
                trimmed
            };
            let (line, column) = if f.whole_file {
                (None, None)
            } else {
                let (l, c) = cursor.position(content, span.start);
                (Some(l), Some(c))
            };
            let value = String::from_utf8_lossy(&content[span]);
            let mut evidence = Evidence::secret(&value);
            evidence.excerpt = printable(&evidence.excerpt);
            if let Some(key) = f.key.and_then(|k| std::str::from_utf8(&content[k]).ok()) {
                evidence.excerpt = format!("{}: {}", printable(key), evidence.excerpt);
            }
            hits.push(SecretHit {
                rule_id: info.id.clone(),
                severity: info.severity,
                title: info.title.clone(),
                line,
                column,
                evidence,
                remediation: info.remediation.clone(),
            });
        }
        hits
    }
}

/// Which rule a candidate came from; content rules order before file rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum RuleRef {
    Content(usize),
    File(usize),
}

/// The rule behind a candidate and how it ranks against others.
#[derive(Debug, Clone, Copy)]
struct Origin {
    rule: RuleRef,
    precedence: i32,
    /// Lower-precedence candidates anywhere in the content are dropped.
    claims_file: bool,
}

/// A candidate that passed its rule's checks, before overlaps are resolved.
#[derive(Debug, Clone)]
struct Found {
    origin: Origin,
    /// The whole file is the secret (no line, no column).
    whole_file: bool,
    secret: std::ops::Range<usize>,
    key: Option<std::ops::Range<usize>>,
}

/// Keeps, among candidates that report the same bytes, the one of highest precedence (then
/// earliest rule); a file-claiming candidate drops every lower-precedence one. Returns the
/// survivors in content order.
fn resolve_overlaps(mut found: Vec<Found>) -> Vec<Found> {
    if let Some(claim) = found
        .iter()
        .filter(|f| f.origin.claims_file)
        .map(|f| f.origin.precedence)
        .max()
    {
        found.retain(|f| f.origin.precedence >= claim);
    }
    found.sort_by(|a, b| {
        b.origin
            .precedence
            .cmp(&a.origin.precedence)
            .then(a.origin.rule.cmp(&b.origin.rule))
            .then(a.secret.start.cmp(&b.secret.start))
    });
    // Kept spans by start; they never overlap each other, so the nearest one starting before
    // a candidate's end is the only one it can overlap.
    let mut spans: BTreeMap<usize, usize> = BTreeMap::new();
    let mut kept = Vec::with_capacity(found.len());
    for f in found {
        let (start, end) = (f.secret.start, f.secret.end.max(f.secret.start + 1));
        let overlaps = spans
            .range(..end)
            .next_back()
            .is_some_and(|(_, &e)| e > start);
        if !overlaps {
            spans.insert(start, end);
            kept.push(f);
        }
    }
    kept.sort_by(|a, b| {
        a.secret
            .start
            .cmp(&b.secret.start)
            .then(a.origin.rule.cmp(&b.origin.rule))
    });
    kept
}

/// `range` of `bytes` without leading and trailing blanks: ASCII whitespace and the escaped
/// forms `\n`, `\r`, `\t` (a PEM key inlined in JSON or an env file is captured with them).
/// A key body captured with its newlines is thus reported, positioned and fingerprinted from
/// its first character.
fn trim_blanks(bytes: &[u8], range: Range<usize>) -> Range<usize> {
    let escaped = |pair: &[u8]| matches!(pair, [b'\\', b'n' | b'r' | b't']);
    let (mut start, mut end) = (range.start, range.end);
    while start < end {
        if bytes[start].is_ascii_whitespace() {
            start += 1;
        } else if end - start >= 2 && escaped(&bytes[start..start + 2]) {
            start += 2;
        } else {
            break;
        }
    }
    while start < end {
        if bytes[end - 1].is_ascii_whitespace() {
            end -= 1;
        } else if end - start >= 2 && escaped(&bytes[end - 2..end]) {
            end -= 2;
        } else {
            break;
        }
    }
    start..end
}

/// Evidence is printed in tables and logs on one line: control characters become `\u{..}`.
fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The line containing byte `at` (without its newline).
fn line_around(content: &[u8], at: usize) -> &[u8] {
    &content[line_bounds(content, at..at)]
}

/// Computes 1-based line and column of increasing offsets in one pass over the content.
#[derive(Default)]
struct LineCursor {
    offset: usize,
    line: usize,
    line_start: usize,
}

impl LineCursor {
    fn position(&mut self, content: &[u8], at: usize) -> (u32, u32) {
        if at < self.offset {
            *self = LineCursor::default();
        }
        for (i, &b) in content[self.offset..at].iter().enumerate() {
            if b == b'\n' {
                self.line += 1;
                self.line_start = self.offset + i + 1;
            }
        }
        self.offset = at;
        // Columns count characters: skip UTF-8 continuation bytes.
        let column = content[self.line_start..at]
            .iter()
            .filter(|&&b| b & 0xC0 != 0x80)
            .count();
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        (clamp(self.line + 1), clamp(column + 1))
    }
}

/// Where a content rule's regex must run, as decided by the keyword prefilter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// None of its keywords occurs (or the rule does not apply here): it does not run.
    Untouched,
    /// A `multiline` rule with a keyword somewhere: it runs over the whole content.
    Content,
    /// It runs over these lines only: each line holding one of its keywords (merged, in order,
    /// without their newlines).
    Lines(Vec<Range<usize>>),
}

/// One Aho-Corasick automaton over every content rule's keywords: a single pass over the content
/// tells which rules can match and where, and only their regexes run, only there.
///
/// Vendored files (most of the bytes of an OS image) get their own automaton holding only the
/// keywords of the rules that run there: the generic words (`password`, `token`, `secret`, …)
/// that fill documentation are then not even looked for, instead of found and dropped.
struct Prefilter {
    /// Every content rule's keywords.
    everywhere: Keywords,
    /// Only the keywords of rules with `vendored = true`.
    vendored: Keywords,
    /// Per rule: whether its matches may span lines (it then runs over the whole content).
    multiline: Vec<bool>,
}

/// An automaton over some rules' keywords, built on first use (a single-file audit that
/// never scans a vendored file never needs the vendored one).
struct Keywords {
    needles: Vec<Box<[u8]>>,
    automaton: OnceLock<Result<AhoCorasick, String>>,
    /// Pattern id → the rule it belongs to and, for case-sensitive keywords, the exact bytes.
    patterns: Vec<(usize, Option<Box<[u8]>>)>,
}

impl Keywords {
    fn new<'r>(rules: impl Iterator<Item = (usize, &'r ContentRule)>) -> Self {
        let mut needles = Vec::new();
        let mut patterns = Vec::new();
        for (r, rule) in rules {
            for k in &rule.keywords {
                needles.push(k.as_bytes().into());
                let exact = rule.keywords_case_sensitive.then(|| k.as_bytes().into());
                patterns.push((r, exact));
            }
        }
        Keywords {
            needles,
            automaton: OnceLock::new(),
            patterns,
        }
    }

    /// The automaton, built now if it is not yet.
    fn automaton(&self) -> Result<&AhoCorasick, String> {
        self.automaton
            .get_or_init(|| {
                // A DFA, always: left to choose, aho-corasick builds one only up to 100
                // patterns and falls back to a slower NFA, which made the prefilter the biggest
                // cost of an image audit once the rules had hundreds of keywords.
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&self.needles)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Prefilter {
    /// The keyword automatons, built now for a checked load and on first use otherwise.
    fn build(rules: &[ContentRule], load: Load) -> Result<Prefilter, String> {
        let prefilter = Prefilter {
            everywhere: Keywords::new(rules.iter().enumerate()),
            vendored: Keywords::new(rules.iter().enumerate().filter(|(_, r)| r.vendored)),
            multiline: rules.iter().map(|r| r.multiline).collect(),
        };
        if load == Load::Checked {
            prefilter.everywhere.automaton()?;
            prefilter.vendored.automaton()?;
        }
        Ok(prefilter)
    }

    /// For each rule, where its regex must run in `content`; in a vendored file only the rules
    /// with `vendored = true` run.
    fn scopes(&self, content: &[u8], vendored: bool) -> Vec<Scope> {
        let mut scopes = vec![Scope::Untouched; self.multiline.len()];
        let keywords = if vendored {
            &self.vendored
        } else {
            &self.everywhere
        };
        if keywords.patterns.is_empty() {
            return scopes;
        }
        // Only a lazily loaded rules file can fail here, and the unit tests build the builtin
        // automatons: a failure means no content rule runs.
        let Ok(automaton) = keywords.automaton() else {
            return scopes;
        };
        for m in automaton.find_overlapping_iter(content) {
            let (rule, exact) = &keywords.patterns[m.pattern().as_usize()];
            let scope = &mut scopes[*rule];
            match scope {
                Scope::Content => continue,
                // Already covered by the current line (matches arrive in order of their end).
                Scope::Lines(lines) if lines.last().is_some_and(|l| m.end() <= l.end) => continue,
                _ => {}
            }
            if exact.as_deref().is_some_and(|e| e != &content[m.range()]) {
                continue;
            }
            if self.multiline[*rule] {
                *scope = Scope::Content;
                continue;
            }
            let line = line_bounds(content, m.range());
            match scope {
                Scope::Lines(lines) => match lines.last_mut() {
                    Some(last) if line.start <= last.end => last.end = last.end.max(line.end),
                    _ => lines.push(line),
                },
                _ => *scope = Scope::Lines(vec![line]),
            }
        }
        scopes
    }
}

/// The lines spanned by `range` (from the start of its first line to the end of its last,
/// newline excluded).
fn line_bounds(content: &[u8], range: Range<usize>) -> Range<usize> {
    let start = content[..range.start]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let end = content[range.end..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(content.len(), |p| range.end + p);
    start..end
}

#[cfg(test)]
mod tests;
