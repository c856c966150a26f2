//! Words and variables as BuildKit's Dockerfile frontend sees them: splitting an instruction's
//! arguments into words (quotes kept, as `parseWords` does), peeling off the leading `--flag`s,
//! and expanding `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}` the way the builder does for
//! `FROM`, `COPY`, `ENV`, `USER`, `EXPOSE`, `WORKDIR` (RUN is left to the shell).
//!
//! The expansion also reports which variables it used and whether any was unknown: a build
//! argument with no default gets its value only at build time, so a rule must not guess it.

use std::collections::HashMap;

/// Splits `rest` into words at unquoted whitespace. Quotes and escapes stay in the words (they
/// are removed later by [`expand`]), exactly like BuildKit's `parseWords`, which `ENV`, `LABEL`
/// and `ARG` use.
pub fn split_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(ch) = chars.next() {
        match quote {
            None => {
                if ch.is_whitespace() {
                    if in_word && (blank_ok || !word.is_empty()) {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    in_word = false;
                    blank_ok = false;
                    continue;
                }
                in_word = true;
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    match chars.next() {
                        // An escape token at the very end is dropped.
                        None => continue,
                        Some(next) => {
                            word.push(ch);
                            word.push(next);
                            continue;
                        }
                    }
                }
                word.push(ch);
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                }
                if ch == escape && q != '\'' {
                    match chars.next() {
                        None => {
                            quote = None;
                            continue;
                        }
                        Some(next) => {
                            word.push(ch);
                            word.push(next);
                            continue;
                        }
                    }
                }
                word.push(ch);
            }
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Splits at runs of whitespace, ignoring quotes (BuildKit's `parseStringsWhitespaceDelimited`,
/// used for `FROM`, `EXPOSE` and the shell form of `COPY`/`ADD`).
pub fn split_whitespace(rest: &str) -> Vec<String> {
    rest.split([' ', '\t', '\x0b', '\x0c', '\r'])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Peels the leading `--name[=value]` words off an instruction's arguments (BuildKit's
/// `extractBuilderFlags`): returns the flags without their `--` and the rest of the line. A lone
/// `--` ends the flags.
pub fn extract_flags(line: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut flags = Vec::new();
    let mut pos = 0;
    let bytes = line.as_bytes();
    loop {
        while pos < bytes.len() && (bytes[pos] as char).is_ascii_whitespace() {
            pos += 1;
        }
        if pos + 1 >= bytes.len() || bytes[pos] != b'-' || bytes[pos + 1] != b'-' {
            return (flags, &line[pos..]);
        }
        // Read one word, honouring quotes and backslash escapes.
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut iter = line[pos..].char_indices();
        let mut end = line.len();
        while let Some((i, ch)) = iter.next() {
            match quote {
                None if ch.is_whitespace() => {
                    end = pos + i;
                    break;
                }
                None if ch == '\'' || ch == '"' => quote = Some(ch),
                Some(q) if ch == q => quote = None,
                _ if ch == '\\' => {
                    if let Some((_, next)) = iter.next() {
                        word.push(next);
                    }
                }
                _ => word.push(ch),
            }
        }
        pos = end;
        if word == "--" {
            return (flags, &line[pos..]);
        }
        let body = word.trim_start_matches("--");
        match body.split_once('=') {
            Some((name, value)) => flags.push((name.to_ascii_lowercase(), Some(value.to_string()))),
            None => flags.push((body.to_ascii_lowercase(), None)),
        }
    }
}

/// What a variable is known to hold during the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A value written in the Dockerfile (an `ARG` default or an `ENV`).
    Known(String),
    /// An `ARG` without a default: only `--build-arg` gives it a value.
    BuildTime,
}

/// The variables visible to an instruction, in the order the builder resolves them.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    map: HashMap<String, Value>,
}

impl Vars {
    /// Sets (or overrides) a variable.
    pub fn set(&mut self, name: &str, value: Value) {
        self.map.insert(name.to_string(), value);
    }

    /// The variable's value, if it is declared.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    /// Whether the variable is declared.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

/// A word after quote removal and variable expansion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The text, with unknown variables expanded to nothing (what the builder would do when the
    /// build argument is not passed).
    pub text: String,
    /// Every variable the word referred to, in order.
    pub used: Vec<String>,
    /// Whether a variable without a known value decided part of the text.
    pub unresolved: bool,
}

/// Removes quotes and expands variables in one word, as BuildKit's `ProcessWord` does.
pub fn expand(word: &str, vars: &Vars, escape: char) -> Expanded {
    let mut out = Expanded::default();
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if ch == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                out.text.push(chars[i]);
                i += 1;
            }
            i += 1;
        } else if ch == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == escape && i + 1 < chars.len() {
                    let next = chars[i + 1];
                    if next == '"' || next == '$' || next == escape {
                        out.text.push(next);
                        i += 2;
                        continue;
                    }
                }
                if chars[i] == '$' {
                    i = dollar(&chars, i, vars, escape, &mut out);
                    continue;
                }
                out.text.push(chars[i]);
                i += 1;
            }
            i += 1;
        } else if ch == escape {
            if i + 1 < chars.len() {
                out.text.push(chars[i + 1]);
            }
            i += 2;
        } else if ch == '$' {
            i = dollar(&chars, i, vars, escape, &mut out);
        } else {
            out.text.push(ch);
            i += 1;
        }
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands the `$…` at `chars[start]`; returns the index after it.
fn dollar(chars: &[char], start: usize, vars: &Vars, escape: char, out: &mut Expanded) -> usize {
    let mut i = start + 1;
    if i < chars.len() && chars[i] == '{' {
        i += 1;
        let name_start = i;
        while i < chars.len() && is_name_char(chars[i]) {
            i += 1;
        }
        let name: String = chars[name_start..i].iter().collect();
        // The modifier runs to the matching `}` (nested `${…}` allowed in the word).
        let mod_start = i;
        i = closing_brace(chars, i);
        let modifier: String = chars[mod_start..i.min(chars.len())].iter().collect();
        let end = (i + 1).min(chars.len());
        if name.is_empty() {
            // Not a variable: the builder keeps the text.
            out.text.extend(&chars[start..end]);
            return end;
        }
        out.used.push(name.clone());
        let value = vars.get(&name);
        let (op, word) = split_modifier(&modifier);
        let word_value = |out: &mut Expanded| {
            let inner = expand(word, vars, escape);
            out.used.extend(inner.used);
            out.unresolved |= inner.unresolved;
            inner.text
        };
        match (op, value) {
            ("", Some(Value::Known(v))) => out.text.push_str(v),
            ("", _) => out.unresolved |= value.is_some(),
            (":-", Some(Value::Known(v))) if !v.is_empty() => out.text.push_str(v),
            ("-", Some(Value::Known(v))) => out.text.push_str(v),
            (":-" | "-", Some(Value::BuildTime)) => {
                // Either the build argument or the default: the default is what the file says.
                out.unresolved = true;
                let w = word_value(out);
                out.text.push_str(&w);
            }
            (":-" | "-", _) => {
                let w = word_value(out);
                out.text.push_str(&w);
            }
            (":+", Some(Value::Known(v))) if !v.is_empty() => {
                let w = word_value(out);
                out.text.push_str(&w);
            }
            ("+", Some(Value::Known(_))) => {
                let w = word_value(out);
                out.text.push_str(&w);
            }
            (":+" | "+", Some(Value::BuildTime)) => out.unresolved = true,
            (":+" | "+", _) => {}
            (_, Some(Value::Known(v))) => {
                // `?`, `#`, `%`, `/` modifiers: the value is known, the exact edit is not
                // modelled; keep the value and say it is not exact.
                out.text.push_str(v);
                out.unresolved = true;
            }
            _ => out.unresolved = true,
        }
        end
    } else {
        let name_start = i;
        while i < chars.len() && is_name_char(chars[i]) {
            i += 1;
        }
        if i == name_start {
            out.text.push('$');
            return i;
        }
        let name: String = chars[name_start..i].iter().collect();
        match vars.get(&name) {
            Some(Value::Known(v)) => out.text.push_str(v),
            Some(Value::BuildTime) => out.unresolved = true,
            None => {}
        }
        out.used.push(name);
        i
    }
}

/// Splits `:-word` into (`:-`, `word`).
fn split_modifier(m: &str) -> (&str, &str) {
    for op in [
        ":-", ":+", ":?", "-", "+", "?", "##", "#", "%%", "%", "//", "/",
    ] {
        if let Some(rest) = m.strip_prefix(op) {
            return (op, rest);
        }
    }
    (m, "")
}

/// The index of the `}` closing a `${` whose body starts at `from` (nested braces allowed), or
/// `chars.len()` when it is never closed. Shared by Dockerfile and compose interpolation.
pub(crate) fn closing_brace(chars: &[char], from: usize) -> usize {
    let mut depth = 1;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, Option<&str>)]) -> Vars {
        let mut v = Vars::default();
        for (k, val) in pairs {
            v.set(
                k,
                match val {
                    Some(s) => Value::Known(s.to_string()),
                    None => Value::BuildTime,
                },
            );
        }
        v
    }

    #[test]
    fn words_keep_quotes_like_buildkit() {
        assert_eq!(
            split_words(r#"A="a b" B='c d' C=e\ f"#, '\\'),
            vec![r#"A="a b""#, "B='c d'", r"C=e\ f"]
        );
        assert_eq!(split_words("  x   y ", '\\'), vec!["x", "y"]);
        assert_eq!(split_words(r#"A="""#, '\\'), vec![r#"A="""#]);
    }

    #[test]
    fn flags_are_peeled_off() {
        let (flags, rest) = extract_flags("--from=builder --chown=app:app /src /dst");
        assert_eq!(
            flags,
            vec![
                ("from".into(), Some("builder".into())),
                ("chown".into(), Some("app:app".into()))
            ]
        );
        assert_eq!(rest, "/src /dst");
        let (flags, rest) = extract_flags("--link -- --odd /dst");
        assert_eq!(flags, vec![("link".into(), None)]);
        assert_eq!(rest.trim(), "--odd /dst");
        let (flags, rest) = extract_flags("echo --not-a-flag");
        assert!(flags.is_empty());
        assert_eq!(rest, "echo --not-a-flag");
        let (flags, _) = extract_flags(r#"--mount="type=secret,id=a b" x"#);
        assert_eq!(flags[0].1.as_deref(), Some("type=secret,id=a b"));
    }

    #[test]
    fn expansion_follows_the_builder() {
        let v = vars(&[("TAG", Some("1.2")), ("EMPTY", Some("")), ("TOKEN", None)]);
        let e = |w: &str| expand(w, &v, '\\');
        assert_eq!(e("node:$TAG").text, "node:1.2");
        assert_eq!(e("node:${TAG}-alpine").text, "node:1.2-alpine");
        assert_eq!(e("${EMPTY:-root}").text, "root");
        assert_eq!(e("${EMPTY-root}").text, "");
        assert_eq!(e("${UNSET:-x${TAG}}").text, "x1.2");
        assert_eq!(e("${TAG:+set}").text, "set");
        assert_eq!(e("${UNSET:+set}").text, "");
        assert_eq!(e(r"'$TAG' \$TAG").text, "$TAG $TAG");
        assert_eq!(e(r#""a $TAG \" b""#).text, "a 1.2 \" b");
        assert_eq!(e("cost $5 and $").text, "cost  and $");
        let t = e("$TOKEN");
        assert!(t.unresolved && t.text.is_empty());
        assert_eq!(t.used, vec!["TOKEN"]);
        let t = e("${TOKEN:-fallback}");
        assert!(t.unresolved);
        assert_eq!(t.text, "fallback");
        assert_eq!(expand("`$TAG", &v, '`').text, "$TAG");
    }
}
