//! Python docstrings: documentation inside source files.
//!
//! A docstring is a triple-quoted string that stands as a statement of its own (a module's,
//! class's or function's first line), and what it holds is prose and examples: OAuth libraries
//! document their flows with RFC 6749's `"access_token":"2YotnFZFEjr1zCsicMWpAA"`, doctests
//! show `{'oauth_token_secret': '2kjshdfp92i34asdasd'}`. The scanner treats them as it treats
//! a `README.md`: only the rules for specific token formats run there (a real `ghp_…` pasted
//! into a docstring is still found), not the generic `name = value` ones. A triple-quoted
//! string that is assigned, passed or returned (`CONFIG = """password=…"""`) is a value, not
//! documentation, and is scanned like code.
//!
//! The lexer knows comments, single- and triple-quoted strings with their prefixes and
//! backslash escapes; that is all it takes to never mistake a quote inside a string or comment
//! for the start of a docstring.

use std::ops::Range;

/// Byte ranges of the docstrings of a Python source (each from its opening quotes to its
/// closing ones; an unterminated one runs to the end).
pub(super) fn python_docstrings(src: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    // Whether the current physical line starts a statement (is not inside brackets).
    let mut statement_line = true;
    // Open brackets: a newline inside them continues the expression.
    let mut depth = 0usize;
    while i < src.len() {
        match src[i] {
            b'#' => i = line_end(src, i),
            b'\n' => {
                statement_line = depth == 0;
                i += 1;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'"' | b'\'' => {
                let start = prefix_start(src, i);
                let standalone = statement_line && only_blanks_before(src, start);
                let end = string_end(src, i);
                if standalone && is_triple(src, i) {
                    out.push(start..end);
                }
                i = end;
            }
            // A continued line goes on with the statement.
            b'\\' if src.get(i + 1) == Some(&b'\n') => {
                statement_line = false;
                i += 2;
            }
            _ => i += 1,
        }
    }
    out
}

/// Where the line holding `i` ends (at its newline, or the end).
fn line_end(src: &[u8], i: usize) -> usize {
    src[i..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(src.len(), |p| i + p)
}

/// The start of the string literal whose quote is at `quote`: before its prefix letters
/// (`r`, `b`, `f`, `u` and their pairs), if any.
fn prefix_start(src: &[u8], quote: usize) -> usize {
    let mut s = quote;
    while s > 0
        && quote - s < 2
        && matches!(src[s - 1].to_ascii_lowercase(), b'r' | b'b' | b'f' | b'u')
    {
        s -= 1;
    }
    // `xr"…"` is a name followed by a string, not a prefix.
    if s > 0 && (src[s - 1].is_ascii_alphanumeric() || src[s - 1] == b'_') {
        return quote;
    }
    s
}

/// Whether nothing but blanks precede `at` on its line.
fn only_blanks_before(src: &[u8], at: usize) -> bool {
    src[..at]
        .iter()
        .rev()
        .take_while(|&&b| b != b'\n')
        .all(|&b| matches!(b, b' ' | b'\t' | b'\x0c' | b'\r'))
}

/// Whether the quote at `i` opens a triple-quoted string.
fn is_triple(src: &[u8], i: usize) -> bool {
    src.get(i..i + 3)
        .is_some_and(|q| q[0] == q[1] && q[1] == q[2])
}

/// Just past the string literal opened at `i`: its closing quotes, the end of its line for an
/// unterminated single-quoted one, or the end of the source.
fn string_end(src: &[u8], i: usize) -> usize {
    let q = src[i];
    let triple = is_triple(src, i);
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < src.len() {
        match src[j] {
            b'\\' => j += 2,
            b'\n' if !triple => return j,
            b if b == q && (!triple || is_triple(src, j)) => {
                return if triple { j + 3 } else { j + 1 };
            }
            _ => j += 1,
        }
    }
    src.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(src: &str) -> Vec<&str> {
        python_docstrings(src.as_bytes())
            .into_iter()
            .map(|r| &src[r])
            .collect()
    }

    #[test]
    fn module_class_and_function_docstrings_are_found() {
        let src = r#""""Module doc: token=abc."""
import os

class Session:
    '''Class doc.

    >>> s.fetch()
    {'oauth_token_secret': '2kjshdfp92i34asdasd'}
    '''

    def get(self):
        r"""Raw doc \d."""
        return 1
"#;
        let found = docs(src);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with(r#""""Module"#) && found[0].ends_with(r#"""""#));
        assert!(found[1].contains("2kjshdfp92i34asdasd") && found[1].ends_with("'''"));
        assert!(found[2].starts_with("r\"\"\""), "{found:?}");
    }

    #[test]
    fn assigned_passed_and_returned_strings_are_values() {
        let src = r#"CONFIG = """
password=hunter2-long-value
"""
run(f"""
token=abc
""")
def f():
    return '''secret'''
x = ("a"
     """continued doc-looking string""")
"#;
        // The last one stands at a line start but continues an expression inside brackets.
        let found = docs(src);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn quotes_in_comments_and_strings_open_nothing() {
        let src = "# a comment with \"\"\" in it\nx = 'it''s \"\"\" not'\ny = \"\\\"\\\"\\\"\"\ntoken = 'abc'\n";
        assert!(docs(src).is_empty(), "{:?}", docs(src));
    }

    #[test]
    fn unterminated_strings_end_at_the_line_or_the_source() {
        assert_eq!(docs("x = 'open\n\"\"\"doc\"\"\"\n"), ["\"\"\"doc\"\"\""]);
        assert_eq!(
            docs("\"\"\"never closed\ntoken=1\n"),
            ["\"\"\"never closed\ntoken=1\n"]
        );
        assert!(docs("'").is_empty());
        assert!(docs("\"\"").is_empty());
    }
}
