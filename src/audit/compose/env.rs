//! Compose's two small languages: `${VAR}` interpolation in values, and `env_file` / `.env`
//! files (`KEY=value` lines).
//!
//! The audit does not know the shell environment `docker compose` will run in, so
//! interpolation here answers a narrower question: what does the file itself write down?
//! `${DB_PASSWORD}` writes nothing (the value comes from elsewhere); `${DB_PASSWORD:-changeme}`
//! writes `changeme`.

/// A value after interpolation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interpolated {
    /// The text with defaults applied; variables with no default expand to nothing.
    pub text: String,
    /// Names referenced without a default (their value comes from the environment).
    pub unresolved: Vec<String>,
}

impl Interpolated {
    /// Whether part of the value comes from the environment rather than the file.
    pub fn has_unresolved(&self) -> bool {
        !self.unresolved.is_empty()
    }
}

/// Variables whose value is implied for paths: `$HOME` is a home directory, `$PWD` the project.
fn implied(name: &str) -> Option<&'static str> {
    match name {
        "HOME" => Some("~"),
        "PWD" => Some("."),
        _ => None,
    }
}

/// Interpolates a value as Compose does: `$$` is a literal `$`; `$VAR`, `${VAR}`,
/// `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`,
/// `${VAR+alt}`; defaults may nest.
pub fn interpolate(value: &str) -> Interpolated {
    interpolate_with(value, &|_| None)
}

/// [`interpolate`] with some variables known (`lookup`), as the project's `.env` file gives
/// them to Compose.
pub fn interpolate_with(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Interpolated {
    let mut out = Interpolated::default();
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            out.text.push(chars[i]);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.text.push('$');
                i += 2;
            }
            Some('{') => {
                let j = crate::audit::dockerfile::words::closing_brace(&chars, i + 2);
                let body: String = chars[i + 2..j.min(chars.len())].iter().collect();
                braced(&body, lookup, &mut out);
                i = j + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match (lookup(&name), implied(&name)) {
                    (Some(v), _) => out.text.push_str(&v),
                    (None, Some(v)) => out.text.push_str(v),
                    (None, None) => out.unresolved.push(name),
                }
                i = j;
            }
            _ => {
                out.text.push('$');
                i += 1;
            }
        }
    }
    out
}

fn braced(body: &str, lookup: &dyn Fn(&str) -> Option<String>, out: &mut Interpolated) {
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, modifier) = body.split_at(name_len);
    let (op, word) = [":-", "-", ":?", "?", ":+", "+"]
        .iter()
        .find_map(|op| modifier.strip_prefix(op).map(|w| (*op, w)))
        .unwrap_or(("", ""));
    if let Some(v) = lookup(name) {
        match op {
            ":+" | "+" if !v.is_empty() || op == "+" => braced_word(word, lookup, out),
            ":+" | "+" => {}
            ":-" if v.is_empty() => braced_word(word, lookup, out),
            _ => out.text.push_str(&v),
        }
        return;
    }
    if let Some(v) = implied(name) {
        out.text.push_str(v);
        return;
    }
    match op {
        ":-" | "-" => braced_word(word, lookup, out),
        // Required or conditional: the value comes from the environment.
        _ => out.unresolved.push(name.to_string()),
    }
}

/// A default or alternative word, interpolated in turn.
fn braced_word(word: &str, lookup: &dyn Fn(&str) -> Option<String>, out: &mut Interpolated) {
    let inner = interpolate_with(word, lookup);
    out.text.push_str(&inner.text);
    out.unresolved.extend(inner.unresolved);
}

/// One `KEY=value` line of an env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    pub key: String,
    pub value: String,
    /// 1-based line.
    pub line: u32,
}

/// Parses an env file the way Compose does: `KEY=value`, optional `export `, `#` comments,
/// single-quoted (literal) and double-quoted (with `\n`-style escapes) values, and inline
/// ` # comments` after unquoted values. Lines with only a key carry no value and are skipped.
pub fn parse_env_file(text: &str) -> Vec<EnvEntry> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, rest)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            continue;
        }
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            body.split('\'').next().unwrap_or("").to_string()
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = body.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => v.push('\n'),
                        Some('t') => v.push('\t'),
                        Some(other) => v.push(other),
                        None => {}
                    },
                    _ => v.push(c),
                }
            }
            v
        } else {
            let cut = rest.find(" #").unwrap_or(rest.len());
            rest[..cut].trim_end().to_string()
        };
        out.push(EnvEntry {
            key: key.to_string(),
            value,
            line: i as u32 + 1,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_from_dotenv() {
        let lookup = |n: &str| match n {
            "SOCK" => Some("/var/run/docker.sock".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let i = |v: &str| interpolate_with(v, &lookup);
        assert_eq!(i("${SOCK}:/s").text, "/var/run/docker.sock:/s");
        assert_eq!(i("$SOCK").text, "/var/run/docker.sock");
        assert_eq!(i("${SOCK:-/x}").text, "/var/run/docker.sock");
        assert_eq!(i("${EMPTY:-/x}").text, "/x");
        assert_eq!(i("${EMPTY-/x}").text, "");
        assert_eq!(i("${SOCK:+set}").text, "set");
        assert_eq!(i("${EMPTY:+set}").text, "");
        assert_eq!(i("${NOPE:-${SOCK}}").text, "/var/run/docker.sock");
        assert!(i("${NOPE}").has_unresolved());
    }

    #[test]
    fn interpolation() {
        let i = interpolate("${A}/x");
        assert_eq!(
            (i.text.as_str(), i.unresolved.as_slice()),
            ("/x", &["A".to_string()][..])
        );
        assert_eq!(interpolate("${A:-/srv/${B-data}}").text, "/srv/data");
        assert!(interpolate("${A:-/srv/${B-data}}").unresolved.is_empty());
        assert!(interpolate("${A:?required}").has_unresolved());
        assert!(interpolate("${A:+x}").has_unresolved());
        assert_eq!(interpolate("cost $$5").text, "cost $5");
        assert_eq!(interpolate("$HOME/.ssh").text, "~/.ssh");
        assert_eq!(interpolate("${PWD}/data").text, "./data");
        assert_eq!(interpolate("plain").text, "plain");
    }

    #[test]
    fn env_files() {
        let got = parse_env_file(
            "# comment\nexport A=1\nB = 'it''s'\nC=\"x\\ny\" # c\nD=val # inline\nNOVALUE\n\nE=\n",
        );
        let kv: Vec<(&str, &str, u32)> = got
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            kv,
            vec![
                ("A", "1", 2),
                ("B", "it", 3),
                ("C", "x\ny", 4),
                ("D", "val", 5),
                ("E", "", 8)
            ]
        );
    }
}
