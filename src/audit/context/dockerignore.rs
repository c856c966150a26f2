//! `.dockerignore` exactly as Docker and BuildKit read it (moby/patternmatcher and its
//! `ignorefile` reader), because the question "does this file reach the builder" has one right
//! answer and it is theirs:
//!
//! - lines starting with `#` are comments; surrounding whitespace is trimmed; empty lines skip;
//! - each pattern is `filepath.Clean`ed and a leading `/` dropped (`/foo`, `./foo`, `foo/` are
//!   all `foo`); `!` marks an exception, and `!` alone is an error;
//! - `*` and `?` never cross `/`; `**` matches any number of directories (including none);
//! - the last matching pattern wins, so a later `!keep` re-includes and a later pattern
//!   excludes again;
//! - a pattern matching a directory excludes everything under it (a path is excluded when it
//!   or any parent directory matches), unless a later exception matches the path itself.
//!
//! Matching follows patternmatcher's four match kinds (exact, prefix `dir/**`, suffix `**/x`,
//! regexp), including its quirks (`**file` matches `dir/myfile`).

use std::fmt;

use regex::Regex;

use super::gomatch::{BadPattern, go_match};

/// A pattern that Docker would refuse, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// 1-based line in the `.dockerignore` (0 when the pattern did not come from a file).
    pub line: u32,
    pub pattern: String,
    pub message: &'static str,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: pattern {:?}: {}",
            self.line, self.pattern, self.message
        )
    }
}

impl std::error::Error for PatternError {}

#[derive(Debug, Clone)]
enum MatchKind {
    Exact,
    /// `dir/**`: the cleaned pattern minus the trailing `**`.
    Prefix(String),
    /// `**/x` or `**x`: the cleaned pattern minus the leading `**`.
    Suffix(String),
    Regexp(Regex),
}

#[derive(Debug, Clone)]
struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: MatchKind,
    /// 1-based line in the file the pattern came from.
    line: u32,
}

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

/// Reads `.dockerignore` text into patterns as `ignorefile.ReadAll` does: (line, pattern).
pub fn read_patterns(text: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let raw = if i == 0 {
            raw.strip_prefix('\u{feff}').unwrap_or(raw)
        } else {
            raw
        };
        if raw.starts_with('#') {
            continue;
        }
        let mut pattern = raw.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        out.push((i as u32 + 1, cleaned));
    }
    out
}

/// Go's `path.Clean` for slash-separated paths.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

impl Matcher {
    /// Compiles `.dockerignore` text; an error names the line Docker would reject.
    pub fn from_dockerignore(text: &str) -> Result<Self, PatternError> {
        Self::new(read_patterns(text))
    }

    /// Compiles patterns as `patternmatcher.New` does.
    pub fn new(patterns: Vec<(u32, String)>) -> Result<Self, PatternError> {
        let mut out = Vec::new();
        for (line, p) in patterns {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(PatternError {
                        line,
                        pattern: p.clone(),
                        message: "illegal exclusion pattern: \"!\"",
                    });
                }
                exclusion = true;
                p = rest.to_string();
            }
            if go_match(&p, ".") == Err(BadPattern) {
                return Err(PatternError {
                    line,
                    pattern: p,
                    message: "syntax error in pattern",
                });
            }
            let kind = compile(&p).ok_or_else(|| PatternError {
                line,
                pattern: p.clone(),
                message: "syntax error in pattern",
            })?;
            out.push(Pattern {
                cleaned: p,
                exclusion,
                kind,
                line,
            });
        }
        Ok(Matcher { patterns: out })
    }

    /// Whether there are any patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is a `!` exception (then an excluded directory must still be walked:
    /// an exception may re-include something inside it).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether the context path `file` (slash-separated, relative) is excluded from the build
    /// context: `MatchesOrParentMatches`.
    pub fn excludes(&self, file: &str) -> bool {
        self.deciding_pattern(file)
            .is_some_and(|(excluded, _)| excluded)
    }

    /// The decision and the line of the pattern that made it (for messages): `None` when no
    /// pattern matches.
    pub fn deciding_pattern(&self, file: &str) -> Option<(bool, u32)> {
        let file = clean(file);
        if file == "." {
            return None;
        }
        let parent_dirs: Vec<&str> = match file.rfind('/') {
            Some(pos) => file[..pos].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        let mut decided: Option<(bool, u32)> = None;
        for p in &self.patterns {
            // An exception only matters once something matched; an exclusion only before.
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(&file);
            if !hit && !parent_dirs.is_empty() {
                for i in 1..=parent_dirs.len() {
                    if p.matches(&parent_dirs[..i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !p.exclusion;
                decided = Some((matched, p.line));
            }
        }
        decided
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            MatchKind::Exact => path == self.cleaned,
            MatchKind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            MatchKind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            MatchKind::Regexp(re) => re.is_match(path),
        }
    }
}

/// patternmatcher's `compile`: decides the match kind and, for regexp ones, builds the regex.
fn compile(pattern: &str) -> Option<MatchKind> {
    #[derive(PartialEq)]
    enum T {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    let mut re = String::from("^");
    let mut kind = T::Exact;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    let mut index = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if ch == '*' {
            if chars.get(i) == Some(&'*') {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if kind == T::Exact {
                        kind = T::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = T::Regexp;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = T::Regexp;
                }
                if index == 0 {
                    kind = T::Suffix;
                }
            } else {
                re.push_str("[^/]*");
                kind = T::Regexp;
            }
        } else if ch == '?' {
            re.push_str("[^/]");
            kind = T::Regexp;
        } else if ".+()|{}$".contains(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    re.push_str(&regex_escape_char(next));
                    kind = T::Regexp;
                }
                None => re.push_str("\\\\"),
            }
        } else if ch == '[' || ch == ']' {
            if ch == '[' && in_class {
                // Go treats `[` inside a class as a literal; Rust would open a nested class.
                re.push_str("\\[");
            } else {
                in_class = ch == '[';
                re.push(ch);
            }
            kind = T::Regexp;
        } else if in_class && (ch == '&' || ch == '~') {
            // Rust class set operations (`&&`, `~~`) are literals in Go.
            re.push('\\');
            re.push(ch);
        } else {
            re.push(ch);
        }
        index += 1;
    }
    match kind {
        T::Exact => Some(MatchKind::Exact),
        T::Prefix => Some(MatchKind::Prefix(pattern[..pattern.len() - 2].to_string())),
        T::Suffix => Some(MatchKind::Suffix(pattern[2..].to_string())),
        T::Regexp => {
            re.push('$');
            Regex::new(&re).ok().map(MatchKind::Regexp)
        }
    }
}

/// An escaped pattern character as the Go regexp would read `\c`: punctuation is literal;
/// letters keep their regex meaning (`\d`), as in patternmatcher.
fn regex_escape_char(c: char) -> String {
    if c.is_ascii_alphanumeric() {
        format!("\\{c}")
    } else {
        regex::escape(&c.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str]) -> Matcher {
        Matcher::new(patterns.iter().map(|p| (0, p.to_string())).collect()).unwrap()
    }

    #[test]
    fn reads_like_ignorefile() {
        let text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        let got: Vec<String> = read_patterns(text).into_iter().map(|(_, p)| p).collect();
        assert_eq!(
            got,
            vec![
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
        assert_eq!(read_patterns("./foo/\n  bar/../baz  \n")[1].1, "baz");
        assert_eq!(read_patterns("a\r\nb\r\n").len(), 2);
        let e = Matcher::from_dockerignore("ok\n!\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(Matcher::from_dockerignore("[").is_err());
        assert!(Matcher::from_dockerignore("a/b[").is_err());
    }

    /// patternmatcher_test.go `TestMatches` (MatchesOrParentMatches).
    #[test]
    fn patternmatcher_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\\\", "a\\", true),
            ("a\\*b", "a*b", true),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(
                m(&[pattern]).excludes(path),
                *want,
                "pattern {pattern:?} path {path:?}"
            );
        }
        let multi: &[(&[&str], &str, bool)] = &[
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (
                &["**", "!dist/*.whl"],
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                false,
            ),
            (&["docs", "!docs/README.md"], "docs/README.md", false),
            (&["docs/", "!docs/README.md"], "docs/README.md", false),
            (&["docs/*", "!docs/README.md"], "docs/README.md", false),
            (&["!fileutils.go", "*.go"], "fileutils.go", true),
            (&["*.go", "!fileutils.go"], "fileutils.go", false),
            (&["*"], "fileutils.go", true),
            (&["*.go"], ".", false),
        ];
        for (patterns, path, want) in multi {
            assert_eq!(
                m(patterns).excludes(path),
                *want,
                "patterns {patterns:?} path {path:?}"
            );
        }
    }

    /// The examples in Docker's documentation of `.dockerignore`.
    #[test]
    fn docker_documentation_examples() {
        let doc = m(&["*/temp*", "*/*/temp*", "temp?"]);
        assert!(doc.excludes("somedir/temporary.txt"));
        assert!(doc.excludes("somedir/temp"));
        assert!(doc.excludes("somedir/subdir/temporary.txt"));
        assert!(doc.excludes("tempa"));
        assert!(doc.excludes("tempb"));
        assert!(!doc.excludes("temporary.txt"));
        assert!(!doc.excludes("a/b/c/temp"));

        let go = m(&["**/*.go"]);
        assert!(go.excludes("main.go") && go.excludes("cmd/x/main.go"));

        let md = m(&["*.md", "!README.md"]);
        assert!(md.excludes("CHANGELOG.md") && !md.excludes("README.md"));

        let readme = m(&["*.md", "!README*.md", "README-secret.md"]);
        assert!(readme.excludes("CHANGELOG.md"));
        assert!(!readme.excludes("README.md") && !readme.excludes("README-public.md"));
        assert!(readme.excludes("README-secret.md"));

        let readme2 = m(&["*.md", "README-secret.md", "!README*.md"]);
        assert!(!readme2.excludes("README-secret.md"));

        // Leading slash and ./ are cleaned; a directory pattern excludes its contents.
        let d = Matcher::from_dockerignore("/.git\n./node_modules/\n").unwrap();
        assert!(
            d.excludes(".git") && d.excludes(".git/config") && d.excludes("node_modules/x/y.js")
        );
        assert!(!d.excludes("src/.git"));
    }

    #[test]
    fn last_match_wins_and_reports_the_line() {
        let ig = Matcher::from_dockerignore("secrets\n!secrets/public.txt\n").unwrap();
        assert_eq!(ig.deciding_pattern("secrets/key.pem"), Some((true, 1)));
        assert_eq!(ig.deciding_pattern("secrets/public.txt"), Some((false, 2)));
        assert_eq!(ig.deciding_pattern("src/app.py"), None);
        assert!(ig.has_exceptions());
    }

    #[test]
    fn go_clean() {
        assert_eq!(clean("./a//b/../c/"), "a/c");
        assert_eq!(clean("/"), "/");
        assert_eq!(clean("../x"), "../x");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean(""), ".");
    }
}
