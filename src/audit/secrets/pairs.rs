//! Name/value pairs: a variable whose name and value sit in two fields, often on two lines, as
//! Kubernetes pod specs, ECS task definitions, Terraform and compose files write environment
//! entries:
//!
//! ```yaml
//! env:
//!   - name: MANDRILL_API_KEY
//!     value: "md-…"
//! ```
//!
//! Rules that need the variable's name beside the value (most provider rules of a token without
//! a distinctive prefix, and the generic ones) cannot see across lines. Each pair found here is
//! scanned again as the one-line assignment it stands for (`MANDRILL_API_KEY="md-…"`), and the
//! hits are mapped back onto the value's bytes in the file.

use std::ops::Range;
use std::sync::OnceLock;

use regex::bytes::Regex;

/// A `name`/`value` pair: byte ranges in the scanned content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pair {
    pub name: Range<usize>,
    /// The value without its quotes.
    pub value: Range<usize>,
}

/// `name: KEY` then `value: VALUE`, on one line (JSON, flow YAML, HCL) or on the next one (block
/// YAML, pretty JSON). The name line starts an entry (`- name:`, `[{"name":`, `name =`); a
/// commented one does not match. `valueFrom:` (a reference) does not match.
const PAIR: &str = r#"(?m)^[ \t]*(?:-[ \t]+)?(?:[\[{][ \t]*){0,2}["']?name["']?[ \t]*[:=][ \t]*["']?([A-Za-z_][A-Za-z0-9_.-]{0,127})["']?[ \t]*,?[ \t]*(?:\r?\n[ \t]*)?["']?value["']?[ \t]*[:=][ \t]*(?:"([^"\r\n]*)"|'([^'\r\n]*)'|([^\s"'\[\]{},#][^\r\n,}#]*?))[ \t]*(?:[,}]|\r?$)"#;

fn pair_regex() -> Option<&'static Regex> {
    static REGEX: OnceLock<Option<Regex>> = OnceLock::new();
    REGEX
        .get_or_init(|| super::rules::compile_regex(PAIR).ok())
        .as_ref()
}

/// Every pair in `content`, in order. Cheap when there is none: the regex engine skips ahead
/// to its literals.
pub(crate) fn find(content: &[u8]) -> Vec<Pair> {
    let Some(regex) = pair_regex() else {
        return Vec::new();
    };
    regex
        .captures_iter(content)
        .filter_map(|c| {
            let name = c.get(1)?.range();
            let value = (2..=4).find_map(|g| c.get(g))?.range();
            Some(Pair { name, value })
        })
        .collect()
}

/// The pair as the assignment it stands for, `NAME="VALUE"` (single quotes when the value holds
/// a double quote), and where the name and the value are in it.
pub(crate) fn as_assignment(content: &[u8], pair: &Pair) -> (Vec<u8>, Range<usize>, Range<usize>) {
    let name = &content[pair.name.clone()];
    let value = &content[pair.value.clone()];
    let quote = if value.contains(&b'"') { b'\'' } else { b'"' };
    let mut line = Vec::with_capacity(name.len() + value.len() + 3);
    line.extend_from_slice(name);
    line.push(b'=');
    line.push(quote);
    let start = line.len();
    line.extend_from_slice(value);
    let end = line.len();
    line.push(quote);
    (line, 0..name.len(), start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        find(text.as_bytes())
            .into_iter()
            .map(|p| (text[p.name].to_string(), text[p.value].to_string()))
            .collect()
    }

    fn one(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_string(), value.to_string())]
    }

    #[test]
    fn block_yaml_env_entries_pair_the_name_with_the_next_line() {
        let pod =
            "env:\n  - name: LOG_LEVEL\n    value: info\n  - name: API_KEY\n    value: \"k-1\"\n";
        assert_eq!(
            pairs(pod),
            [one("LOG_LEVEL", "info"), one("API_KEY", "k-1")].concat()
        );
        assert_eq!(
            pairs("- name: DB_PASSWORD\r\n  value: 'p w'\r\n"),
            one("DB_PASSWORD", "p w")
        );
    }

    #[test]
    fn json_flow_yaml_and_hcl_entries_pair_on_one_line_or_two() {
        let ecs = "[\n  {\n    \"name\": \"DB_PASSWORD\",\n    \"value\": \"Hk29sLq8Vw\"\n  }\n]";
        assert_eq!(pairs(ecs), one("DB_PASSWORD", "Hk29sLq8Vw"));
        assert_eq!(
            pairs(r#"  {"name": "TOKEN", "value": "t0k"},"#),
            one("TOKEN", "t0k")
        );
        assert_eq!(
            pairs(r#"[{"name": "TOKEN", "value": "t0k"}]"#),
            one("TOKEN", "t0k")
        );
        assert_eq!(pairs("- {name: TOKEN, value: t0k}"), one("TOKEN", "t0k"));
        assert_eq!(
            pairs("  env {\n    name  = \"TOKEN\"\n    value = \"t0k\"\n  }"),
            one("TOKEN", "t0k")
        );
    }

    #[test]
    fn references_comments_and_unrelated_names_are_not_pairs() {
        let from = "- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef: {name: db, key: pw}\n";
        assert!(pairs(from).is_empty());
        assert!(pairs("# - name: DB_PASSWORD\n#   value: Hk29sLq8Vw\n").is_empty());
        assert!(pairs("- name: a\n  image: b\n  value: c\n").is_empty());
        assert!(pairs("username: app\nvalue: x\n").is_empty());
    }

    #[test]
    fn the_assignment_quotes_the_value_and_locates_both_parts() {
        let text = "- name: K\n  value: 'a\"b'\n";
        let pair = &find(text.as_bytes())[0];
        let (line, name, value) = as_assignment(text.as_bytes(), pair);
        assert_eq!(line, b"K='a\"b'");
        assert_eq!(&line[name], b"K");
        assert_eq!(&line[value], b"a\"b");
    }
}
