//! YAML with line numbers: a small document tree built from `yaml-rust2`'s marked events, with
//! anchors, aliases and merge keys (`<<: *default`, `<<: [*a, *b]`) resolved the way Compose
//! resolves them. Every node keeps the line and column where it was written, so a finding on a
//! value merged in from an `x-` anchor points at the anchor, where the fix goes.
//!
//! (A serde deserializer drops positions; a line scan of the source cannot follow anchors and
//! merges.)

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// A YAML value. Scalars stay text: Compose gives them a type per field (`privileged: yes`,
/// `user: 0`), so the audit interprets them per field too.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { text: String, quoted: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A plain `~`, `null` or empty scalar (Compose's "no value").
    pub fn is_null(&self) -> bool {
        match &self.value {
            Value::Scalar {
                text,
                quoted: false,
            } => matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"),
            _ => false,
        }
    }

    /// Whether the scalar is a YAML 1.1/1.2 true (`true`, `yes`, `on`), as Compose accepts.
    pub fn is_true(&self) -> bool {
        self.as_str()
            .is_some_and(|t| matches!(t.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "y"))
    }

    /// The mapping entries, if this is a mapping.
    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The sequence items, if this is a sequence.
    pub fn items(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.get_entry(key).map(|(_, v)| v)
    }

    /// The key node and value under `key` in a mapping.
    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// Follows a path of mapping keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, k| node.get(k))
    }
}

/// Why YAML text did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

enum Frame {
    Seq {
        anchor: usize,
        items: Vec<Node>,
        mark: Marker,
    },
    Map {
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        mark: Marker,
    },
}

/// How many nodes aliases may copy in one document. Compose files are small; a file whose
/// aliases expand past this is a "billion laughs" bomb, not a configuration.
const MAX_ALIAS_NODES: usize = 1_000_000;

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes and their sizes in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes copied by aliases so far.
    alias_nodes: usize,
    root: Option<Node>,
    error: Option<YamlError>,
}

/// The number of nodes in a tree.
fn size(n: &Node) -> usize {
    1 + match &n.value {
        Value::Scalar { .. } => 0,
        Value::Seq(items) => items.iter().map(size).sum(),
        Value::Map(entries) => entries.iter().map(|(k, v)| size(k) + size(v)).sum(),
    }
}

fn node(value: Value, mark: Marker) -> Node {
    Node {
        value,
        line: mark.line() as u32,
        column: mark.col() as u32 + 1,
    }
}

impl Builder {
    fn push_value(&mut self, n: Node) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(n);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(n),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(n),
                Some(k) => entries.push((k, n)),
            },
        }
    }
}

/// Applies merge keys: explicit keys win over merged ones; among merged mappings, the first
/// listed wins (YAML merge key semantics).
fn merge(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    let (merges, mut explicit): (Vec<_>, Vec<_>) = entries.into_iter().partition(
        |(k, _)| matches!(&k.value, Value::Scalar { text, quoted: false } if text == "<<"),
    );
    for (_, source) in merges {
        let sources: Vec<Node> = match source.value {
            Value::Map(_) => vec![source],
            Value::Seq(items) => items,
            Value::Scalar { .. } => Vec::new(),
        };
        for s in sources {
            if let Value::Map(m) = s.value {
                for (k, v) in m {
                    let exists = explicit
                        .iter()
                        .any(|(e, _)| e.as_str().is_some() && e.as_str() == k.as_str());
                    if !exists {
                        explicit.push((k, v));
                    }
                }
            }
        }
    }
    explicit
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let n = node(
                    Value::Scalar {
                        text,
                        quoted: style != TScalarStyle::Plain,
                    },
                    mark,
                );
                if anchor > 0 {
                    self.anchors.insert(anchor, (n.clone(), 1));
                }
                self.push_value(n);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((n, n_size)) => {
                    self.alias_nodes += n_size;
                    if self.alias_nodes > MAX_ALIAS_NODES {
                        self.error = Some(YamlError {
                            line: mark.line() as u32,
                            column: mark.col() as u32 + 1,
                            message: format!(
                                "aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?)"
                            ),
                        });
                        return;
                    }
                    let n = n.clone();
                    self.push_value(n);
                }
                None => {
                    self.error = Some(YamlError {
                        line: mark.line() as u32,
                        column: mark.col() as u32 + 1,
                        message: "alias to an unknown anchor".into(),
                    });
                }
            },
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                anchor,
                items: Vec::new(),
                mark,
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                anchor,
                entries: Vec::new(),
                pending_key: None,
                mark,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return;
                };
                let (anchor, n) = match frame {
                    Frame::Seq {
                        anchor,
                        items,
                        mark,
                    } => (anchor, node(Value::Seq(items), mark)),
                    Frame::Map {
                        anchor,
                        entries,
                        mark,
                        ..
                    } => (anchor, node(Value::Map(merge(entries)), mark)),
                };
                if anchor > 0 {
                    let n_size = size(&n);
                    self.anchors.insert(anchor, (n.clone(), n_size));
                }
                self.push_value(n);
            }
            _ => {}
        }
    }
}

/// Parses the first YAML document of `text` into a tree with positions; `Ok(None)` for an
/// empty document.
///
/// A multi-line flow collection whose lines sit at or left of its key's column
/// (`command: [` … `]` with the `]` under `command`) is invalid YAML by the letter of the spec
/// and `yaml-rust2` refuses it, but Compose's parser (go-yaml v3, a libyaml port) reads it and
/// real compose files use it (getsentry/self-hosted). When the strict parse fails on
/// indentation, the lines inside such collections are indented past their key — indentation
/// means nothing inside a flow collection — and the text is parsed again; columns are given
/// back in the original text's terms.
pub fn parse(text: &str) -> Result<Option<Node>, YamlError> {
    let strict = parse_strict(text);
    match &strict {
        Err(e) if e.message.contains("indentation") => {
            let (relaxed, shifts) = indent_flow_lines(text);
            if shifts.iter().all(|&s| s == 0) {
                return strict;
            }
            match parse_strict(&relaxed) {
                Ok(mut root) => {
                    if let Some(r) = root.as_mut() {
                        unshift(r, &shifts);
                    }
                    Ok(root)
                }
                Err(_) => strict,
            }
        }
        _ => strict,
    }
}

fn parse_strict(text: &str) -> Result<Option<Node>, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| YamlError {
        line: e.marker().line() as u32,
        column: e.marker().col() as u32 + 1,
        message: e.info().to_string(),
    })?;
    if let Some(e) = builder.error {
        return Err(e);
    }
    Ok(builder.root)
}

/// Moves every node on a re-indented line back to its column in the original text.
fn unshift(n: &mut Node, shifts: &[u32]) {
    let shift = shifts.get(n.line as usize - 1).copied().unwrap_or(0);
    n.column = n.column.saturating_sub(shift).max(1);
    match &mut n.value {
        Value::Scalar { .. } => {}
        Value::Seq(items) => items.iter_mut().for_each(|i| unshift(i, shifts)),
        Value::Map(entries) => {
            for (k, v) in entries {
                unshift(k, shifts);
                unshift(v, shifts);
            }
        }
    }
}

/// Where a line scan is, between lines.
#[derive(Default)]
struct FlowScan {
    /// Open `[`/`{` of flow collections.
    depth: usize,
    /// Indentation of the line where the outermost open flow collection started.
    open_indent: usize,
    /// Inside a double-quoted (`"`) or single-quoted (`'`) scalar that goes on.
    quote: Option<char>,
    /// Inside a block scalar (`|`, `>`) whose key line has this indentation.
    block_scalar: Option<usize>,
}

/// The text with every line inside a multi-line flow collection indented one column past the
/// line that opened it, and how many spaces each line received.
fn indent_flow_lines(text: &str) -> (String, Vec<u32>) {
    let mut out = String::with_capacity(text.len() + 64);
    let mut shifts = Vec::new();
    let mut st = FlowScan::default();
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty();
        if let Some(key_indent) = st.block_scalar {
            if blank || indent > key_indent {
                out.push_str(line);
                shifts.push(0);
                continue;
            }
            st.block_scalar = None;
        }
        let shift = if st.depth > 0 && !blank && indent <= st.open_indent {
            st.open_indent + 1 - indent
        } else {
            0
        };
        out.extend(std::iter::repeat_n(' ', shift));
        out.push_str(line);
        shifts.push(shift as u32);
        if st.depth == 0 {
            st.open_indent = indent;
        }
        scan_line(line, indent, &mut st);
    }
    (out, shifts)
}

/// Follows flow brackets, quotes and comments through one line.
fn scan_line(line: &str, indent: usize, st: &mut FlowScan) {
    let chars: Vec<char> = line.trim_end_matches(['\n', '\r']).chars().collect();
    // A node may start here: the line's start, or after `- `, `: `, `[`, `{`, `,`.
    let mut node_start = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = st.quote {
            if c == '\\' && q == '"' {
                i += 1;
            } else if c == q {
                if q == '\'' && chars.get(i + 1) == Some(&'\'') {
                    i += 1;
                } else {
                    st.quote = None;
                    node_start = false;
                }
            }
            i += 1;
            continue;
        }
        match c {
            ' ' | '\t' => {}
            '#' if i == 0 || chars[i - 1] == ' ' || chars[i - 1] == '\t' => return,
            '"' | '\'' if node_start => st.quote = Some(c),
            '[' | '{' if node_start || st.depth > 0 => {
                st.depth += 1;
                node_start = true;
                i += 1;
                continue;
            }
            ']' | '}' if st.depth > 0 => {
                st.depth -= 1;
                node_start = false;
            }
            ',' if st.depth > 0 => {
                node_start = true;
                i += 1;
                continue;
            }
            '-' | ':' | '?' if chars.get(i + 1).is_none_or(|n| *n == ' ' || *n == '\t') => {
                node_start = true;
                i += 1;
                continue;
            }
            '|' | '>' if node_start && st.depth == 0 => {
                let rest: String = chars[i + 1..].iter().collect();
                let rest = rest.split(" #").next().unwrap_or("").trim();
                if rest.chars().all(|r| matches!(r, '+' | '-' | '0'..='9')) {
                    st.block_scalar = Some(indent);
                    return;
                }
                node_start = false;
            }
            _ => node_start = false,
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_anchors_and_merges() {
        let src = "\
x-base: &base
  privileged: true
  restart: always
services:
  web:
    <<: *base
    restart: unless-stopped
    image: nginx
  db:
    <<: [*base]
    image: mysql
";
        let root = parse(src).unwrap().unwrap();
        let web = root.path(&["services", "web"]).unwrap();
        // Explicit key wins, merged key keeps the anchor's line.
        assert_eq!(web.get("restart").unwrap().as_str(), Some("unless-stopped"));
        let (k, v) = web.get_entry("privileged").unwrap();
        assert_eq!((k.line, v.line, v.is_true()), (2, 2, true));
        assert_eq!(
            root.path(&["services", "db", "privileged"]).unwrap().line,
            2
        );
        let (k, _) = root.path(&["services"]).unwrap().get_entry("db").unwrap();
        assert_eq!((k.line, k.column), (9, 3));
        assert!(web.get("<<").is_none());
    }

    #[test]
    fn flow_style_scalars_and_errors() {
        let root = parse("a: {b: [1, 'two', null]}\nc: ~\nd: \"yes\"\n")
            .unwrap()
            .unwrap();
        let b = root.path(&["a", "b"]).unwrap().items().unwrap();
        assert_eq!(b[1].as_str(), Some("two"));
        assert!(b[2].is_null() && root.get("c").unwrap().is_null());
        assert!(root.get("d").unwrap().is_true());
        let e = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(e.line >= 1, "{e:?}");
        assert_eq!(parse("").unwrap(), None);
        assert!(parse("a: *nope\n").is_err());
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&src).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{e:?}");
    }
    /// Compose reads flow collections whose lines sit at or left of their key (go-yaml does not
    /// check indentation inside `[ ]`/`{ }`); so must rsafe, with columns as written.
    #[test]
    fn flow_collections_closing_at_their_key() {
        let sentry = "\
x-healthcheck: &healthcheck
  interval: 10s
services:
  web:
    command:
      [
        \"run\",
        \"web\",
      ]
    healthcheck:
      <<: *healthcheck
      test: [\"CMD\", \"/bin/bash\", \"-c\",
        \"exec 3<>/dev/tcp/127.0.0.1/9000\"
      ]
    environment: {
      SENTRY_CONF: /etc/sentry, # comment with a ] bracket
      NOTE: 'it''s [not] a flow'
    }
    entrypoint: [
      \"/entry.sh\"
    ]
    labels: |
      [ not
        a flow ]
  worker:
    command: [run,
worker]
";
        let root = parse(sentry).unwrap().unwrap();
        let web = root.path(&["services", "web"]).unwrap();
        let cmd: Vec<&str> = web
            .get("command")
            .unwrap()
            .items()
            .unwrap()
            .iter()
            .filter_map(Node::as_str)
            .collect();
        assert_eq!(cmd, vec!["run", "web"]);
        let test = web.path(&["healthcheck", "test"]).unwrap().items().unwrap();
        assert_eq!(test.len(), 4);
        assert_eq!((test[3].line, test[3].column), (13, 9));
        assert_eq!(web.path(&["healthcheck", "interval"]).unwrap().line, 2);
        let env = web.get("environment").unwrap();
        assert_eq!(env.get("NOTE").unwrap().as_str(), Some("it's [not] a flow"));
        let (k, _) = env.get_entry("SENTRY_CONF").unwrap();
        assert_eq!((k.line, k.column), (16, 7));
        assert_eq!(web.get("entrypoint").unwrap().items().unwrap().len(), 1);
        let worker = root.path(&["services", "worker", "command"]).unwrap();
        let w = worker.items().unwrap();
        assert_eq!(w[1].as_str(), Some("worker"));
        assert_eq!((w[1].line, w[1].column), (27, 1));
        // Other indentation errors stay errors, reported where the strict parser saw them.
        let e = parse("a:\n  b: 1\n c: 2\n").unwrap_err();
        assert!(e.message.contains("indentation") || e.line == 3, "{e:?}");
    }
}
