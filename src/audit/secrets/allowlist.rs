//! Allowlists: what looks like a secret but is not one. Placeholders (`changeme`, `${TOKEN}`,
//! `<your-key>`), documentation keys (`AKIAIOSFODNN7EXAMPLE`), commented-out examples and
//! assignments whose name says "checksum" rather than "secret". A CI gate that cries wolf gets
//! switched off, so these matter as much as the rules.

use std::collections::HashSet;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::Deserialize;

use super::rules::{LazyRegex, Load};

/// `[allow]` (global) or `[rule.allow]` as written in the rules file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAllow {
    /// The secret contains one of these (ASCII case-insensitive): `example`, `dummy`, …
    #[serde(default)]
    stopwords: Vec<String>,
    /// The secret is exactly one of these known documentation values.
    #[serde(default)]
    values: Vec<String>,
    /// A regex matching the secret (anchor it with `^…$` to match the whole value).
    #[serde(default)]
    regexes: Vec<String>,
    /// A regex matching the rule's whole match (e.g. an encrypted key header).
    #[serde(default)]
    match_regexes: Vec<String>,
    /// A regex matching the line the match starts on (e.g. a comment).
    #[serde(default)]
    line_regexes: Vec<String>,
    /// A regex matching the assignment's name, the rule's `(?P<key>…)` group.
    #[serde(default)]
    key_regexes: Vec<String>,
    /// Per rule only: whether the global stopwords apply too (default true).
    global_stopwords: Option<bool>,
}

/// A compiled allowlist.
#[derive(Debug, Default)]
pub(crate) struct Allowlist {
    stopwords: Vec<String>,
    /// Built from `stopwords` on first use (`None` when there are none).
    stopword_automaton: OnceLock<Option<AhoCorasick>>,
    values: HashSet<Vec<u8>>,
    // Compiled on first use, like rule regexes: most rules never produce a candidate.
    regexes: Vec<LazyRegex>,
    match_regexes: Vec<LazyRegex>,
    line_regexes: Vec<LazyRegex>,
    key_regexes: Vec<LazyRegex>,
    /// Copied to the rule's matcher: whether global stopwords apply to it.
    pub global_stopwords: bool,
}

/// How stopwords are matched against a candidate secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopwordMatch {
    /// The rule opted out of these stopwords.
    Off,
    /// Only as a word of the value: bounded by punctuation, the value's ends or a lower-to-upper
    /// case change (`my_test_key`, `DummyToken`, `test`). A token whose
    /// format a specific rule already checked (`glpat-…testin`, an OpenAI key ending in `…test`)
    /// is not dropped because four random letters spell a stopword.
    Words,
    /// Anywhere in the value (generic rules: a `password = mytestpass` is a placeholder).
    Substrings,
}

/// What an allowlist looks at for one candidate.
pub(crate) struct Candidate<'a> {
    pub secret: &'a [u8],
    pub whole_match: &'a [u8],
    pub line: &'a [u8],
    pub key: Option<&'a [u8]>,
}

impl Allowlist {
    /// Compiles `raw`, its regexes and stopwords now or on first use (`load`); the error is
    /// the problem, without the rule (the caller adds it).
    pub fn compile(raw: &RawAllow, load: Load) -> Result<Allowlist, String> {
        if raw.stopwords.iter().any(String::is_empty) {
            return Err("allow.stopwords has an empty stopword".into());
        }
        let lazy = |list: &[String]| list.iter().map(|p| LazyRegex::new(p)).collect();
        let allow = Allowlist {
            stopwords: raw.stopwords.clone(),
            stopword_automaton: OnceLock::new(),
            values: raw.values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            regexes: lazy(&raw.regexes),
            match_regexes: lazy(&raw.match_regexes),
            line_regexes: lazy(&raw.line_regexes),
            key_regexes: lazy(&raw.key_regexes),
            global_stopwords: raw.global_stopwords.unwrap_or(true),
        };
        if load == Load::Checked {
            allow.check()?;
        }
        Ok(allow)
    }

    /// Builds the stopword automaton and compiles every regex now; the first problem.
    pub fn check(&self) -> Result<(), String> {
        build_stopwords(&self.stopwords).map_err(|e| format!("allow.stopwords: {e}"))?;
        for (field, list) in [
            ("regexes", &self.regexes),
            ("match_regexes", &self.match_regexes),
            ("line_regexes", &self.line_regexes),
            ("key_regexes", &self.key_regexes),
        ] {
            for r in list {
                r.compile_now()
                    .map_err(|e| format!("bad regex in allow.{field}: {e}"))?;
            }
        }
        Ok(())
    }

    fn stopword_automaton(&self) -> Option<&AhoCorasick> {
        self.stopword_automaton
            .get_or_init(|| build_stopwords(&self.stopwords).ok().flatten())
            .as_ref()
    }

    /// Whether this allowlist lets the candidate go (it is not a finding). `stopwords` is false
    /// when the rule opted out of this (global) list's stopwords.
    pub fn allows(&self, c: &Candidate<'_>, stopwords: StopwordMatch) -> bool {
        if self.values.contains(c.secret) {
            return true;
        }
        if let Some(ac) = self.stopword_automaton() {
            let hit = match stopwords {
                StopwordMatch::Off => false,
                StopwordMatch::Substrings => ac.is_match(c.secret),
                StopwordMatch::Words => ac
                    .find_overlapping_iter(c.secret)
                    .any(|m| is_word(c.secret, m.start(), m.end())),
            };
            if hit {
                return true;
            }
        }
        let any = |list: &[LazyRegex], hay: &[u8]| {
            list.iter()
                .any(|r| r.get().is_some_and(|r| r.is_match(hay)))
        };
        any(&self.regexes, c.secret)
            || any(&self.match_regexes, c.whole_match)
            || any(&self.line_regexes, c.line)
            || c.key.is_some_and(|k| any(&self.key_regexes, k))
    }

    /// Whether the line is needed at all (finding line bounds costs a scan both ways).
    pub fn looks_at_lines(&self) -> bool {
        !self.line_regexes.is_empty()
    }
}

/// One automaton over the stopwords, matched ASCII case-insensitively; `None` when there are
/// none.
fn build_stopwords(stopwords: &[String]) -> Result<Option<AhoCorasick>, String> {
    if stopwords.is_empty() {
        return Ok(None);
    }
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(stopwords)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Whether `bytes[start..end]` is a word of `bytes`: at each end, the stopword's own edge is
/// punctuation, or the neighbour is absent, punctuation, or across a lower-to-upper case change.
fn is_word(bytes: &[u8], start: usize, end: usize) -> bool {
    let boundary = |left: Option<u8>, right: Option<u8>| match (left, right) {
        (None, _) | (_, None) => true,
        (Some(l), Some(r)) => {
            !l.is_ascii_alphanumeric()
                || !r.is_ascii_alphanumeric()
                || (l.is_ascii_lowercase() && r.is_ascii_uppercase())
        }
    };
    let before = start.checked_sub(1).map(|i| bytes[i]);
    let after = bytes.get(end).copied();
    boundary(before, Some(bytes[start])) && boundary(Some(bytes[end - 1]), after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(toml_text: &str) -> Allowlist {
        let raw: RawAllow = toml::from_str(toml_text).expect("valid allow table");
        Allowlist::compile(&raw, Load::Checked).expect("compiles")
    }

    fn secret(s: &str) -> Candidate<'_> {
        Candidate {
            secret: s.as_bytes(),
            whole_match: s.as_bytes(),
            line: s.as_bytes(),
            key: None,
        }
    }

    #[test]
    fn stopwords_are_case_insensitive_substrings_and_can_be_opted_out_of() {
        let a = allow("stopwords = ['example']");
        assert!(a.allows(&secret("AKIAIOSFODNN7EXAMPLE"), StopwordMatch::Substrings));
        assert!(!a.allows(&secret("AKIAIOSFODNN7EXAMPLE"), StopwordMatch::Off));
        assert!(!a.allows(&secret("q7Zt2LmX9vBn4RcK"), StopwordMatch::Substrings));
    }

    #[test]
    fn as_words_stopwords_need_a_boundary_at_both_ends() {
        let a = allow("stopwords = ['test', 'your_']");
        let words = StopwordMatch::Words;
        for placeholder in [
            "test",
            "my_test_key",
            "sk_test_4eC39Hq",
            "MyTestKey",
            "test-123",
            "your_token_x",
        ] {
            assert!(a.allows(&secret(placeholder), words), "{placeholder}");
        }
        for token in [
            "glpat-Kq8vZtR2xNp4wL7testin",
            "sk-proj-Xq9vTmZ3test",
            "aTestb",
            "contest",
        ] {
            assert!(!a.allows(&secret(token), words), "{token}");
            assert!(
                a.allows(&secret(token), StopwordMatch::Substrings),
                "{token}"
            );
        }
    }

    #[test]
    fn each_target_is_checked_against_its_own_list() {
        let a = allow(
            r#"values = ['known']
               regexes = ['^\$\{.*\}$']
               match_regexes = ['ENCRYPTED']
               line_regexes = ['^\s*#']
               key_regexes = ['(?i)sha256']"#,
        );
        let on = StopwordMatch::Substrings;
        assert!(a.allows(&secret("known"), on));
        assert!(!a.allows(&secret("knownx"), on));
        assert!(a.allows(&secret("${TOKEN}"), on));
        let c = |m: &'static str, l: &'static str, k: Option<&'static str>| Candidate {
            secret: b"v4lue",
            whole_match: m.as_bytes(),
            line: l.as_bytes(),
            key: k.map(str::as_bytes),
        };
        assert!(a.allows(&c("Proc-Type: 4,ENCRYPTED", "", None), on));
        assert!(a.allows(&c("", "  # password = v4lue", None), on));
        assert!(a.allows(&c("", "", Some("TOKEN_SHA256")), on));
        assert!(!a.allows(&c("", "password = v4lue", Some("TOKEN")), on));
    }

    #[test]
    fn a_bad_regex_names_its_field() {
        let raw: RawAllow = toml::from_str("line_regexes = ['(']").expect("valid toml");
        let e = Allowlist::compile(&raw, Load::Checked).expect_err("bad regex");
        assert!(e.starts_with("bad regex in allow.line_regexes: "), "{e}");
    }
}
