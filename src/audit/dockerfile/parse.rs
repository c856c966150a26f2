//! A Dockerfile parser that follows BuildKit's frontend (`frontend/dockerfile/parser`), so rsafe
//! reads a Dockerfile the way the builder will run it:
//!
//! - parser directives (`# escape=`, `# syntax=`, `# check=`) only before the first comment,
//!   blank line or instruction; a repeated directive is an error;
//! - the escape token (`\` or `` ` ``) continues a line when it is the last non-blank
//!   character; comment lines and blank lines inside a continued instruction are skipped;
//! - `#` starts a comment only at the start of a line (`RUN echo # x` passes `# x` to the shell);
//! - JSON (exec) and shell forms; `--flag` words before the arguments;
//! - heredocs (`RUN <<EOF`, `<<-EOF` with leading tabs stripped, quoted names that turn
//!   expansion off, several per instruction, `COPY <<EOF /file`, also under `ONBUILD`);
//! - `ONBUILD` with a nested instruction.
//!
//! Arguments are kept raw (quotes and `$VAR`s included): which variables are in scope depends on
//! the stage, so expansion happens in [`super::stages`].

use std::fmt;

use super::words::{extract_flags, split_whitespace, split_words};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape token (`\` unless `# escape=` says `` ` ``).
    pub escape: char,
    /// The `# syntax=` frontend, when one is named.
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// One instruction with where it is in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// First physical line (1-based).
    pub line: u32,
    /// Last physical line, heredoc bodies included.
    pub end_line: u32,
    /// Column of the keyword (1-based).
    pub column: u32,
    /// `--name[=value]` flags, names lowercased, in order.
    pub flags: Vec<Flag>,
    pub kind: Kind,
    /// Heredoc bodies that follow the instruction, in the order they are named.
    pub heredocs: Vec<Heredoc>,
}

/// A `--name[=value]` builder flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

/// A heredoc body (`<<EOF … EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word, quotes removed.
    pub name: String,
    /// The body, one `\n`-terminated line per source line (leading tabs kept even for `<<-`,
    /// as BuildKit keeps them until it runs the instruction).
    pub content: String,
    /// Whether `$VAR`s in the body are expanded (the name was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body and the terminator.
    pub chomp: bool,
    /// Line of the body's first line.
    pub first_line: u32,
}

/// A command in exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `["executable", "arg"]`: run directly, no shell.
    Exec(Vec<String>),
    /// A string handed to the stage's shell (`/bin/sh -c`).
    Shell(String),
}

/// `name[=default]` of an `ARG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// The raw default (quotes kept), if one is written.
    pub default: Option<String>,
}

/// `key=value` of `ENV` or `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    /// The raw value (quotes and `$VAR`s kept).
    pub value: String,
}

/// Sources and destination of `COPY`/`ADD`, raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    pub sources: Vec<String>,
    pub dest: String,
    /// Written in JSON form (no word splitting of paths with spaces).
    pub json: bool,
}

/// What an instruction says, by keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    From {
        image: String,
        alias: Option<String>,
    },
    Arg(Vec<ArgDecl>),
    Env(Vec<KeyValue>),
    Label(Vec<KeyValue>),
    Run(Command),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    Copy(CopyArgs),
    Add(CopyArgs),
    User(String),
    Workdir(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    /// `HEALTHCHECK NONE` is `None`.
    Healthcheck(Option<Command>),
    Maintainer(String),
    Onbuild(Box<Instruction>),
}

impl Kind {
    /// The keyword, uppercase, as written in Dockerfiles.
    pub fn keyword(&self) -> &'static str {
        match self {
            Kind::From { .. } => "FROM",
            Kind::Arg(_) => "ARG",
            Kind::Env(_) => "ENV",
            Kind::Label(_) => "LABEL",
            Kind::Run(_) => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Shell(_) => "SHELL",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::User(_) => "USER",
            Kind::Workdir(_) => "WORKDIR",
            Kind::Expose(_) => "EXPOSE",
            Kind::Volume(_) => "VOLUME",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Maintainer(_) => "MAINTAINER",
            Kind::Onbuild(_) => "ONBUILD",
        }
    }
}

impl Instruction {
    /// The value of the last `--name` flag (`Some("")` for a flag without a value).
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|f| f.name == name)
            .map(|f| f.value.as_deref().unwrap_or(""))
    }

    /// The values of every `--name` flag (`--mount` may repeat).
    pub fn flags_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.flags
            .iter()
            .filter(move |f| f.name == name)
            .map(|f| f.value.as_deref().unwrap_or(""))
    }
}

/// Why a Dockerfile does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line the problem is on (the instruction's first line).
    pub line: u32,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

fn err<T>(line: u32, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}

/// Directive-parsing state: directives are only read at the top of the file.
struct Directives {
    escape: char,
    syntax: Option<String>,
    seen: Vec<String>,
    done: bool,
}

impl Directives {
    /// BuildKit's `possibleParserDirective`: `# key = value` with a known key, until the first
    /// line that is not one.
    fn consider(&mut self, line: &str, line_no: u32) -> Result<(), ParseError> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return err(
                line_no,
                format!("only one {key} parser directive can be used"),
            );
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => match value {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                other => {
                    return err(
                        line_no,
                        format!("invalid escape token '{other}' does not match ` or \\"),
                    );
                }
            },
            "syntax" => self.syntax = Some(value.to_string()),
            _ => {}
        }
        Ok(())
    }
}

/// Matches `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((key, value))
}

/// BuildKit's `trimContinuationCharacter`: when the line ends with the escape token (not itself
/// escaped), returns the line without it.
fn continuation(line: &str, escape: char) -> Option<&str> {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let body = trimmed.strip_suffix(escape)?;
    if body.ends_with(escape) {
        return None;
    }
    Some(body)
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Parses a Dockerfile's text.
pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut lines = Lines::new(src);
    let mut d = Directives {
        escape: '\\',
        syntax: None,
        seen: Vec::new(),
        done: false,
    };
    let mut instructions = Vec::new();
    while let Some((logical, line_no, column)) = lines.next_logical(&mut d)? {
        let mut instruction = parse_instruction(&logical, line_no, d.escape)?;
        instruction.column = column;
        for (name, expand, chomp) in heredoc_names(&instruction, &logical) {
            let first_line = lines.next + 1;
            let Some(content) = lines.heredoc_body(&name, chomp) else {
                return err(
                    line_no,
                    format!("unterminated heredoc: expected a line `{name}` to end it"),
                );
            };
            instruction.heredocs.push(Heredoc {
                name,
                content,
                expand,
                chomp,
                first_line,
            });
        }
        instruction.end_line = lines.next;
        if let Kind::Onbuild(inner) = &mut instruction.kind {
            inner.end_line = instruction.end_line;
            inner.heredocs = instruction.heredocs.clone();
        }
        instructions.push(instruction);
    }
    check_first_stage(&instructions, lines.count())?;
    Ok(Dockerfile {
        escape: d.escape,
        syntax: d.syntax,
        instructions,
    })
}

/// A Dockerfile's physical lines and the number of the next one to read (1-based numbers:
/// `next` is also the number of the last line read).
struct Lines<'a> {
    lines: Vec<&'a str>,
    next: u32,
}

impl<'a> Lines<'a> {
    fn new(src: &'a str) -> Self {
        let lines = src
            .split_inclusive('\n')
            .map(|l| l.trim_end_matches(['\r', '\n']))
            .collect();
        Lines { lines, next: 0 }
    }

    fn count(&self) -> u32 {
        self.lines.len() as u32
    }

    fn take(&mut self) -> Option<&'a str> {
        let line = self.lines.get(self.next as usize).copied()?;
        self.next += 1;
        Some(line)
    }

    /// The next instruction's text with its continuation lines joined (comments and blank
    /// lines inside it dropped, as BuildKit does), its first line's number and column; parser
    /// directives are noticed on the way.
    fn next_logical(
        &mut self,
        d: &mut Directives,
    ) -> Result<Option<(String, u32, u32)>, ParseError> {
        while let Some(raw) = self.take() {
            let line_no = self.next;
            let trimmed = raw.trim_start();
            d.consider(trimmed, line_no)?;
            let first = if trimmed.starts_with('#') {
                ""
            } else {
                trimmed
            };
            let column = (raw.len() - trimmed.len()) as u32 + 1;
            let (mut logical, mut ended) = match continuation(first, d.escape) {
                Some(body) => (body.to_string(), false),
                None => (first.to_string(), true),
            };
            if ended && logical.is_empty() {
                continue;
            }
            while !ended && let Some(next) = self.take() {
                d.consider(next, self.next)?;
                if is_comment(next) || next.trim().is_empty() {
                    continue;
                }
                match continuation(next, d.escape) {
                    Some(body) => logical.push_str(body),
                    None => {
                        logical.push_str(next);
                        ended = true;
                    }
                }
            }
            return Ok(Some((logical, line_no, column)));
        }
        Ok(None)
    }

    /// A heredoc's body up to the line that ends it (tabs stripped first for `<<-`), or None
    /// when the file ends before that line.
    fn heredoc_body(&mut self, name: &str, chomp: bool) -> Option<String> {
        let mut content = String::new();
        while let Some(body_line) = self.take() {
            let candidate = if chomp {
                body_line.trim_start_matches('\t')
            } else {
                body_line
            };
            if candidate == name {
                return Some(content);
            }
            content.push_str(body_line);
            content.push('\n');
        }
        None
    }
}

/// A Dockerfile must have instructions and start its first stage (after global `ARG`s) with
/// `FROM`, as BuildKit requires.
fn check_first_stage(instructions: &[Instruction], last_line: u32) -> Result<(), ParseError> {
    if instructions.is_empty() {
        return err(last_line, "file with no instructions");
    }
    let Some(first) = instructions
        .iter()
        .find(|ins| !matches!(ins.kind, Kind::Arg(_)))
    else {
        return err(
            last_line,
            "no FROM instruction: the file has no build stage",
        );
    };
    if !matches!(first.kind, Kind::From { .. }) {
        return err(
            first.line,
            format!(
                "{} before the first FROM: only ARG may come before FROM (no build stage in current context)",
                first.kind.keyword()
            ),
        );
    }
    Ok(())
}

/// The heredocs an instruction opens: `RUN`, `COPY`, `ADD` in shell form (also under `ONBUILD`).
/// Each word of the line matching `^(\d*)<<(-?)(name)$` opens one (BuildKit's
/// `heredocsFromLine`): (name, expand, chomp).
fn heredoc_names(instruction: &Instruction, logical: &str) -> Vec<(String, bool, bool)> {
    let kind = match &instruction.kind {
        Kind::Onbuild(inner) => &inner.kind,
        k => k,
    };
    let can_contain = match kind {
        Kind::Run(Command::Shell(_)) => true,
        Kind::Copy(a) | Kind::Add(a) => !a.json,
        _ => false,
    };
    if !can_contain {
        return Vec::new();
    }
    let mut names = Vec::new();
    for word in split_words(logical, '\\') {
        let digits = word.chars().take_while(char::is_ascii_digit).count();
        let Some(rest) = word[digits..].strip_prefix("<<") else {
            continue;
        };
        let (chomp, rest) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        if rest.is_empty() || rest.contains('<') {
            continue;
        }
        let quoted = rest.contains(['\'', '"']);
        let name = unquote(rest);
        if name.is_empty() {
            continue;
        }
        names.push((name, !quoted, chomp));
    }
    names
}

/// Removes shell quoting from a word (no expansion).
fn unquote(word: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c == '\'' || c == '"' => quote = Some(c),
            Some(q) if c == q => quote = None,
            None if c == '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Parses one logical line (`KEYWORD [--flags] args`).
fn parse_instruction(line: &str, line_no: u32, escape: char) -> Result<Instruction, ParseError> {
    let line = line.trim();
    let (keyword, rest) = match line.find(|c: char| c.is_whitespace()) {
        Some(pos) => (&line[..pos], &line[pos..]),
        None => (line, ""),
    };
    let keyword = keyword.to_ascii_uppercase();
    let (raw_flags, args) = extract_flags(rest);
    let flags = raw_flags
        .into_iter()
        .map(|(name, value)| Flag { name, value })
        .collect();
    let kind = parse_kind(&keyword, args.trim(), line_no, escape)?;
    Ok(Instruction {
        line: line_no,
        end_line: line_no,
        column: 1,
        flags,
        kind,
        heredocs: Vec::new(),
    })
}

/// The instruction's arguments, by keyword: the dispatcher over one small parser per
/// instruction whose arguments have a shape of their own.
fn parse_kind(keyword: &str, args: &str, line_no: u32, escape: char) -> Result<Kind, ParseError> {
    let need = |ok: bool, what: &str| require(ok, line_no, keyword, what);
    let kind = match keyword {
        "FROM" => parse_from(args, line_no)?,
        "ARG" => parse_arg(args, escape, line_no)?,
        "ENV" | "LABEL" => {
            let pairs = parse_name_values(args, escape, keyword, line_no)?;
            need(!pairs.is_empty(), "at least one argument: `name=value`")?;
            if keyword == "ENV" {
                Kind::Env(pairs)
            } else {
                Kind::Label(pairs)
            }
        }
        "RUN" => {
            need(!args.is_empty(), "at least one argument")?;
            Kind::Run(parse_command(args, line_no)?)
        }
        "CMD" => Kind::Cmd(parse_command(args, line_no)?),
        "ENTRYPOINT" => Kind::Entrypoint(parse_command(args, line_no)?),
        "SHELL" => match parse_command(args, line_no)? {
            Command::Exec(v) if !v.is_empty() => Kind::Shell(v),
            _ => {
                return err(
                    line_no,
                    "SHELL requires the arguments to be in JSON form: SHELL [\"executable\", \"parameters\"]",
                );
            }
        },
        "COPY" | "ADD" => parse_copy(keyword, args, line_no)?,
        "USER" => {
            need(
                !args.is_empty(),
                "exactly one argument: `USER user[:group]`",
            )?;
            Kind::User(args.to_string())
        }
        "WORKDIR" => {
            need(!args.is_empty(), "exactly one argument: `WORKDIR /path`")?;
            Kind::Workdir(args.to_string())
        }
        "EXPOSE" => {
            let ports = split_whitespace(args);
            need(
                !ports.is_empty(),
                "at least one argument: `EXPOSE port[/proto]`",
            )?;
            Kind::Expose(ports)
        }
        "VOLUME" => {
            let paths = match json_array(args, line_no)? {
                Some(v) => v,
                None => split_whitespace(args),
            };
            need(!paths.is_empty(), "at least one argument")?;
            Kind::Volume(paths)
        }
        "STOPSIGNAL" => {
            need(!args.is_empty(), "exactly one argument")?;
            Kind::StopSignal(args.to_string())
        }
        "MAINTAINER" => {
            need(!args.is_empty(), "exactly one argument")?;
            Kind::Maintainer(args.to_string())
        }
        "HEALTHCHECK" => parse_healthcheck(args, line_no)?,
        "ONBUILD" => parse_onbuild(args, line_no, escape)?,
        "" => return err(line_no, "expected an instruction"),
        other => {
            return err(
                line_no,
                format!(
                    "unknown instruction: {other} (expected FROM, RUN, COPY, ADD, ENV, ARG, USER, …)"
                ),
            );
        }
    };
    Ok(kind)
}

/// `KEYWORD requires WHAT` unless `ok`: BuildKit's wording for a missing argument.
fn require(ok: bool, line_no: u32, keyword: &str, what: &str) -> Result<(), ParseError> {
    if ok {
        Ok(())
    } else {
        err(line_no, format!("{keyword} requires {what}"))
    }
}

/// `FROM image [AS name]`; the stage name is case-insensitive, so it is kept lower-case.
fn parse_from(args: &str, line_no: u32) -> Result<Kind, ParseError> {
    let words = split_whitespace(args);
    match words.as_slice() {
        [image] => Ok(Kind::From {
            image: image.clone(),
            alias: None,
        }),
        [image, as_kw, alias] if as_kw.eq_ignore_ascii_case("as") => Ok(Kind::From {
            image: image.clone(),
            alias: Some(alias.to_ascii_lowercase()),
        }),
        _ => err(
            line_no,
            "FROM requires either one or three arguments: `FROM image` or `FROM image AS name`",
        ),
    }
}

/// `ARG name[=default] …`.
fn parse_arg(args: &str, escape: char, line_no: u32) -> Result<Kind, ParseError> {
    let words = split_words(args, escape);
    require(
        !words.is_empty(),
        line_no,
        "ARG",
        "at least one argument: `ARG name[=default]`",
    )?;
    Ok(Kind::Arg(
        words
            .into_iter()
            .map(|w| match w.split_once('=') {
                Some((n, v)) => ArgDecl {
                    name: n.to_string(),
                    default: Some(v.to_string()),
                },
                None => ArgDecl {
                    name: w,
                    default: None,
                },
            })
            .collect(),
    ))
}

/// `COPY`/`ADD` in either form: `src… dest` or the JSON array `["src", …, "dest"]`.
fn parse_copy(keyword: &str, args: &str, line_no: u32) -> Result<Kind, ParseError> {
    let (words, json) = match json_array(args, line_no)? {
        Some(v) => (v, true),
        None => (split_whitespace(args), false),
    };
    require(
        words.len() >= 2,
        line_no,
        keyword,
        "at least two arguments: one or more sources, then the destination",
    )?;
    let mut sources = words;
    let dest = sources.pop().unwrap_or_default();
    let spec = CopyArgs {
        sources,
        dest,
        json,
    };
    Ok(if keyword == "COPY" {
        Kind::Copy(spec)
    } else {
        Kind::Add(spec)
    })
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command` (the options are flags, already
/// taken off).
fn parse_healthcheck(args: &str, line_no: u32) -> Result<Kind, ParseError> {
    let (kind_word, rest) = match args.find(char::is_whitespace) {
        Some(pos) => (&args[..pos], args[pos..].trim_start()),
        None => (args, ""),
    };
    match kind_word.to_ascii_uppercase().as_str() {
        "NONE" if rest.is_empty() => Ok(Kind::Healthcheck(None)),
        "CMD" if !rest.is_empty() => Ok(Kind::Healthcheck(Some(parse_command(rest, line_no)?))),
        _ => err(line_no, "HEALTHCHECK requires `NONE` or `CMD command`"),
    }
}

/// `ONBUILD INSTRUCTION`: the trigger is parsed as an instruction of its own; the three that
/// Docker forbids as triggers are refused.
fn parse_onbuild(args: &str, line_no: u32, escape: char) -> Result<Kind, ParseError> {
    require(
        !args.is_empty(),
        line_no,
        "ONBUILD",
        "at least one argument: an instruction to run later",
    )?;
    // The trigger's keyword is checked before it is parsed: `ONBUILD ONBUILD …` repeated would
    // otherwise recurse once per word.
    let trigger = args.split_whitespace().next().unwrap_or("");
    if ["ONBUILD", "FROM", "MAINTAINER"]
        .iter()
        .any(|k| trigger.eq_ignore_ascii_case(k))
    {
        return err(
            line_no,
            format!(
                "{} isn't allowed as an ONBUILD trigger",
                trigger.to_ascii_uppercase()
            ),
        );
    }
    let inner = parse_instruction(args, line_no, escape)?;
    Ok(Kind::Onbuild(Box::new(inner)))
}

/// `ENV`/`LABEL` arguments: `name=value …`, or the legacy `name value` form.
fn parse_name_values(
    args: &str,
    escape: char,
    keyword: &str,
    line_no: u32,
) -> Result<Vec<KeyValue>, ParseError> {
    let words = split_words(args, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        // Legacy form: the first word is the name, the rest of the line the value.
        let Some(pos) = args.find(|c: char| c.is_whitespace()) else {
            return err(
                line_no,
                format!("{keyword} must have two arguments: `{keyword} name=value`"),
            );
        };
        return Ok(vec![KeyValue {
            key: args[..pos].to_string(),
            value: args[pos..].trim_start().to_string(),
        }]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            }),
            None => err(
                line_no,
                format!("syntax error: can't find = in {w:?}; must be of the form name=value"),
            ),
        })
        .collect()
}

/// BuildKit's `parseJSON`: `Some` when `args` is a JSON array of strings, `None` when it is not
/// JSON (then it is the shell form), an error for a JSON array holding something else.
fn json_array(args: &str, line_no: u32) -> Result<Option<Vec<String>>, ParseError> {
    let trimmed = args.trim_start();
    if !trimmed.starts_with('[') {
        return Ok(None);
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(trimmed) {
        Ok(values) => values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => err(
                    line_no,
                    "when using JSON array syntax, arrays must be comprised of strings only",
                ),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Err(_) => Ok(None),
    }
}

fn parse_command(args: &str, line_no: u32) -> Result<Command, ParseError> {
    Ok(match json_array(args, line_no)? {
        Some(v) => Command::Exec(v),
        None => Command::Shell(args.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Kind> {
        parse(src)
            .unwrap()
            .instructions
            .into_iter()
            .map(|i| i.kind)
            .collect()
    }

    #[test]
    fn continuations_comments_and_lines() {
        let df = parse(
            "FROM alpine:3.20\n\
             # a comment\n\
             RUN apk add \\\n\
             \x20   # comment inside is skipped\n\
             \n\
             \x20   curl \\\n\
             \x20   jq\n\
             RUN echo # not a comment\n",
        )
        .unwrap();
        let runs: Vec<_> = df.instructions.iter().skip(1).collect();
        assert_eq!(runs[0].line, 3);
        assert_eq!(runs[0].end_line, 7);
        assert_eq!(
            runs[0].kind,
            Kind::Run(Command::Shell("apk add     curl     jq".into()))
        );
        assert_eq!(runs[1].line, 8);
        assert_eq!(
            runs[1].kind,
            Kind::Run(Command::Shell("echo # not a comment".into()))
        );
    }

    #[test]
    fn escape_directive_switches_to_backtick() {
        let df = parse("# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir `\n  c:\\\n").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(
            df.instructions[1].kind,
            Kind::Run(Command::Shell("dir   c:\\".into()))
        );
        // A directive after an instruction is a comment; a repeated one is an error.
        assert_eq!(
            parse("FROM a\n# escape=`\nRUN x \\\n y").unwrap().escape,
            '\\'
        );
        let e = parse("# escape=\\\n# escape=`\nFROM a").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("only one escape"));
        // A directive after a comment is only a comment.
        assert_eq!(parse("# hello\n# escape=`\nFROM a\n").unwrap().escape, '\\');
        assert_eq!(
            parse("# syntax=docker/dockerfile:1\nFROM a")
                .unwrap()
                .syntax
                .as_deref(),
            Some("docker/dockerfile:1")
        );
    }

    #[test]
    fn exec_and_shell_forms() {
        let k = kinds(
            "FROM a\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\nENTRYPOINT exec app\nRUN [not json\n",
        );
        assert_eq!(
            k[1],
            Kind::Cmd(Command::Exec(vec![
                "nginx".into(),
                "-g".into(),
                "daemon off;".into()
            ]))
        );
        assert_eq!(k[2], Kind::Entrypoint(Command::Shell("exec app".into())));
        assert_eq!(k[3], Kind::Run(Command::Shell("[not json".into())));
        let e = parse("FROM a\nCMD [1, 2]").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn from_forms_and_errors() {
        let k = kinds("ARG V=3\nFROM --platform=$BUILDPLATFORM golang:${V} AS Build\n");
        assert_eq!(
            k[1],
            Kind::From {
                image: "golang:${V}".into(),
                alias: Some("build".into())
            }
        );
        let df = parse("FROM --platform=linux/amd64 a").unwrap();
        assert_eq!(df.instructions[0].flag("platform"), Some("linux/amd64"));
        let e = parse("FROM a b").unwrap_err();
        assert!(e.message.contains("one or three"), "{e}");
        let e = parse("RUN x").unwrap_err();
        assert!(e.message.contains("before the first FROM"), "{e}");
        assert!(
            parse("# only a comment\n")
                .unwrap_err()
                .message
                .contains("no instructions")
        );
        let e = parse("ARG A=1\n").unwrap_err();
        assert!(e.message.contains("no FROM"), "{e}");
        let e = parse("FROM a\nFOO bar").unwrap_err();
        assert_eq!(
            (e.line, e.message.starts_with("unknown instruction: FOO")),
            (2, true)
        );
    }

    #[test]
    fn env_arg_label_forms() {
        let k = kinds(
            "FROM a\nENV A=1 B=\"two words\" C=\nENV LEGACY some value here\nARG X Y=2\nLABEL \"k\"=v\n",
        );
        assert_eq!(
            k[1],
            Kind::Env(vec![
                KeyValue {
                    key: "A".into(),
                    value: "1".into()
                },
                KeyValue {
                    key: "B".into(),
                    value: "\"two words\"".into()
                },
                KeyValue {
                    key: "C".into(),
                    value: "".into()
                },
            ])
        );
        assert_eq!(
            k[2],
            Kind::Env(vec![KeyValue {
                key: "LEGACY".into(),
                value: "some value here".into()
            }])
        );
        assert_eq!(
            k[3],
            Kind::Arg(vec![
                ArgDecl {
                    name: "X".into(),
                    default: None
                },
                ArgDecl {
                    name: "Y".into(),
                    default: Some("2".into())
                },
            ])
        );
        assert!(
            parse("FROM a\nENV A=1 B")
                .unwrap_err()
                .message
                .contains("can't find =")
        );
        assert!(
            parse("FROM a\nENV A")
                .unwrap_err()
                .message
                .contains("two arguments")
        );
    }

    #[test]
    fn copy_flags_and_forms() {
        let df = parse(
            "FROM a\nCOPY --from=build --chown=1:1 --chmod=755 a b /dst/\nADD [\"a b\", \"/x\"]\n",
        )
        .unwrap();
        let copy = &df.instructions[1];
        assert_eq!(copy.flag("from"), Some("build"));
        assert_eq!(copy.flag("chmod"), Some("755"));
        assert_eq!(
            copy.kind,
            Kind::Copy(CopyArgs {
                sources: vec!["a".into(), "b".into()],
                dest: "/dst/".into(),
                json: false
            })
        );
        assert_eq!(
            df.instructions[2].kind,
            Kind::Add(CopyArgs {
                sources: vec!["a b".into()],
                dest: "/x".into(),
                json: true
            })
        );
        assert!(
            parse("FROM a\nCOPY onlyone")
                .unwrap_err()
                .message
                .contains("two arguments")
        );
        let run = parse("FROM a\nRUN --mount=type=secret,id=npm,target=/root/.npmrc --mount=type=cache,target=/c npm ci").unwrap();
        let mounts: Vec<_> = run.instructions[1].flags_named("mount").collect();
        assert_eq!(
            mounts,
            vec![
                "type=secret,id=npm,target=/root/.npmrc",
                "type=cache,target=/c"
            ]
        );
        assert_eq!(
            run.instructions[1].kind,
            Kind::Run(Command::Shell("npm ci".into()))
        );
    }

    #[test]
    fn heredocs() {
        let src = "FROM a\n\
                   RUN <<EOF\n\
                   apt-get update\n\
                   curl -fsSL https://x | sh\n\
                   EOF\n\
                   RUN <<-'ONE' cat - <<\"TWO\"\n\
                   \tone $HOME\n\
                   \tONE\n\
                   two\n\
                   TWO\n\
                   COPY <<conf /etc/app.conf\n\
                   key=value\n\
                   conf\n\
                   USER app\n";
        let df = parse(src).unwrap();
        let run = &df.instructions[1];
        assert_eq!((run.line, run.end_line), (2, 5));
        assert_eq!(
            run.heredocs[0].content,
            "apt-get update\ncurl -fsSL https://x | sh\n"
        );
        assert_eq!(run.heredocs[0].first_line, 3);
        assert!(run.heredocs[0].expand);
        let two = &df.instructions[2];
        assert_eq!(two.heredocs.len(), 2);
        assert_eq!(two.heredocs[0].name, "ONE");
        assert!(two.heredocs[0].chomp && !two.heredocs[0].expand);
        assert_eq!(two.heredocs[1].content, "two\n");
        assert_eq!(two.heredocs[1].first_line, 9);
        let copy = &df.instructions[3];
        assert_eq!((copy.line, copy.end_line), (11, 13));
        assert_eq!(copy.heredocs[0].content, "key=value\n");
        assert_eq!(df.instructions[4].line, 14);
        // A quoted `<<EOF` is an argument, not a heredoc; a JSON-form RUN never has one.
        let df = parse("FROM a\nRUN echo \"<<EOF\"\nRUN [\"sh\", \"<<EOF\"]\n").unwrap();
        assert!(df.instructions.iter().all(|i| i.heredocs.is_empty()));
        let e = parse("FROM a\nRUN <<EOF\nnever ends\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unterminated heredoc"));
    }

    #[test]
    fn onbuild_nests_and_carries_heredocs() {
        let df = parse("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nONBUILD COPY . /app\n").unwrap();
        match &df.instructions[1].kind {
            Kind::Onbuild(inner) => {
                assert!(matches!(inner.kind, Kind::Run(_)));
                assert_eq!(inner.heredocs[0].content, "echo hi\n");
            }
            k => panic!("{k:?}"),
        }
        assert!(
            parse("FROM a\nONBUILD FROM b")
                .unwrap_err()
                .message
                .contains("ONBUILD trigger")
        );
        // A line of repeated ONBUILDs is refused at the second word, not followed word by word.
        let hostile = format!("FROM a\n{}RUN x\n", "ONBUILD ".repeat(300_000));
        let e = parse(&hostile).unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "ONBUILD isn't allowed as an ONBUILD trigger")
        );
    }

    #[test]
    fn crlf_and_bom() {
        let df = parse("\u{feff}FROM a\r\nRUN x \\\r\n  y\r\n").unwrap();
        assert_eq!(
            df.instructions[1].kind,
            Kind::Run(Command::Shell("x   y".into()))
        );
    }
}
