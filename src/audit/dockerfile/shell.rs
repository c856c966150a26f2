//! Just enough of the POSIX shell grammar to read a `RUN` command the way `/bin/sh -c` will:
//! words with their quotes removed, pipelines (`a | b`), lists (`&&`, `||`, `;`, newlines),
//! redirections dropped, and command substitutions (`$(…)`, `` `…` ``, `<(…)`) parsed as scripts
//! of their own. Rules then ask questions like "does a downloader pipe into an interpreter" on
//! commands instead of on the raw text, so `echo "curl x | sh"` is not a finding and
//! `curl -fsSL https://x | sudo -E bash -` is.

/// One simple command: its words (quotes removed, redirections dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimpleCommand {
    pub words: Vec<String>,
}

/// A script: pipelines of simple commands, plus every command substitution found in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Each pipeline is the commands joined by `|`.
    pub pipelines: Vec<Vec<SimpleCommand>>,
    /// Scripts inside `$(…)`, backticks and `<(…)`/`>(…)`, parsed recursively.
    pub substitutions: Vec<Script>,
}

impl Script {
    /// Every simple command, including those inside substitutions.
    pub fn all_commands(&self) -> Vec<&SimpleCommand> {
        let mut out: Vec<&SimpleCommand> = self.pipelines.iter().flatten().collect();
        for s in &self.substitutions {
            out.extend(s.all_commands());
        }
        out
    }

    /// Every pipeline, including those inside substitutions.
    pub fn all_pipelines(&self) -> Vec<&Vec<SimpleCommand>> {
        let mut out: Vec<&Vec<SimpleCommand>> = self.pipelines.iter().collect();
        for s in &self.substitutions {
            out.extend(s.all_pipelines());
        }
        out
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    /// `|`
    Pipe,
    /// `&&`, `||`, `;`, `&`, newline, `(`, `)`: ends a pipeline.
    Separator,
    /// `>`, `>>`, `<`, `2>`, `&>`…: the next word is a file, not an argument.
    Redirect,
}

/// Parses a shell script.
pub fn parse(src: &str) -> Script {
    let mut script = Script::default();
    let tokens = tokenize(src, &mut script.substitutions);
    let mut pipeline: Vec<SimpleCommand> = Vec::new();
    let mut cmd = SimpleCommand::default();
    let mut redirect_target = false;
    let flush_cmd = |cmd: &mut SimpleCommand, pipeline: &mut Vec<SimpleCommand>| {
        if !cmd.words.is_empty() {
            pipeline.push(std::mem::take(cmd));
        }
    };
    for t in tokens {
        match t {
            Token::Word(w) => {
                if redirect_target {
                    redirect_target = false;
                } else if !(cmd.words.is_empty() && matches!(w.as_str(), "{" | "}" | "!")) {
                    cmd.words.push(w);
                }
            }
            Token::Redirect => redirect_target = true,
            Token::Pipe => flush_cmd(&mut cmd, &mut pipeline),
            Token::Separator => {
                flush_cmd(&mut cmd, &mut pipeline);
                if !pipeline.is_empty() {
                    script.pipelines.push(std::mem::take(&mut pipeline));
                }
            }
        }
    }
    flush_cmd(&mut cmd, &mut pipeline);
    if !pipeline.is_empty() {
        script.pipelines.push(pipeline);
    }
    script
}

/// Reads a balanced `(…)` body starting after the opening parenthesis; returns (body, index
/// after the closing parenthesis).
fn balanced(chars: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    let mut depth = 1;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                } else if c == '\\' && q == '"' {
                    i += 1;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '\\' => i += 1,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        let body: String = chars[start..i].iter().collect();
                        return (body, i + 1);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    (chars[start..].iter().collect(), chars.len())
}

fn tokenize(src: &str, subs: &mut Vec<Script>) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    macro_rules! end_word {
        () => {
            if in_word {
                tokens.push(Token::Word(std::mem::take(&mut word)));
                in_word = false;
            }
        };
    }
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' => {
                end_word!();
                i += 1;
            }
            '\n' => {
                end_word!();
                tokens.push(Token::Separator);
                i += 1;
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\\' => {
                if i + 1 < chars.len() && chars[i + 1] == '\n' {
                    i += 2;
                    continue;
                }
                in_word = true;
                if let Some(&n) = chars.get(i + 1) {
                    word.push(n);
                }
                i += 2;
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() && "\"\\$`\n".contains(chars[i + 1])
                    {
                        if chars[i + 1] != '\n' {
                            word.push(chars[i + 1]);
                        }
                        i += 2;
                        continue;
                    }
                    if chars[i] == '$' && chars.get(i + 1) == Some(&'(') {
                        let (body, next) = balanced(&chars, i + 2);
                        subs.push(parse(&body));
                        word.push_str("$(…)");
                        i = next;
                        continue;
                    }
                    if chars[i] == '`' {
                        let end = chars[i + 1..]
                            .iter()
                            .position(|&c| c == '`')
                            .map_or(chars.len(), |p| i + 1 + p);
                        let body: String = chars[i + 1..end].iter().collect();
                        subs.push(parse(&body));
                        word.push_str("`…`");
                        i = end + 1;
                        continue;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '`' => {
                in_word = true;
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .map_or(chars.len(), |p| i + 1 + p);
                let body: String = chars[i + 1..end].iter().collect();
                subs.push(parse(&body));
                word.push_str("`…`");
                i = end + 1;
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                in_word = true;
                let (body, next) = balanced(&chars, i + 2);
                subs.push(parse(&body));
                word.push_str("$(…)");
                i = next;
            }
            '<' | '>' if chars.get(i + 1) == Some(&'(') => {
                // Process substitution: its output is a file the command reads or writes.
                in_word = true;
                let (body, next) = balanced(&chars, i + 2);
                subs.push(parse(&body));
                word.push_str("/dev/fd/63");
                i = next;
            }
            '|' => {
                end_word!();
                if chars.get(i + 1) == Some(&'|') {
                    tokens.push(Token::Separator);
                    i += 2;
                } else {
                    tokens.push(Token::Pipe);
                    i += if chars.get(i + 1) == Some(&'&') { 2 } else { 1 };
                }
            }
            '&' => {
                if chars.get(i + 1) == Some(&'>') {
                    end_word!();
                    tokens.push(Token::Redirect);
                    i += if chars.get(i + 2) == Some(&'>') { 3 } else { 2 };
                } else {
                    end_word!();
                    tokens.push(Token::Separator);
                    i += if chars.get(i + 1) == Some(&'&') { 2 } else { 1 };
                }
            }
            ';' | '(' | ')' => {
                end_word!();
                tokens.push(Token::Separator);
                i += if c == ';' && chars.get(i + 1) == Some(&';') {
                    2
                } else {
                    1
                };
            }
            '<' | '>' => {
                // A file-descriptor number right before belongs to the redirection (`2>`).
                if in_word && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                end_word!();
                let mut j = i + 1;
                while j < chars.len() && matches!(chars[j], '<' | '>' | '&' | '|' | '-') {
                    j += 1;
                }
                let op: String = chars[i..j].iter().collect();
                // `2>&1`: the target is a descriptor, glued to the operator.
                if op.ends_with('&') {
                    while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '-') {
                        j += 1;
                    }
                    i = j;
                    continue;
                }
                tokens.push(Token::Redirect);
                i = j;
            }
            _ => {
                in_word = true;
                word.push(c);
                i += 1;
            }
        }
    }
    if in_word {
        tokens.push(Token::Word(word));
    }
    tokens
}

/// A simple command with wrappers (`sudo`, `env`, `exec`, `nohup`, `timeout`, `xargs`…) and
/// leading `NAME=value` assignments peeled off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective<'a> {
    /// Basename of the program (`/usr/bin/curl` → `curl`).
    pub program: String,
    pub args: &'a [String],
    /// The wrappers that were peeled off, in order (basenames).
    pub wrappers: Vec<String>,
}

/// Peels wrappers and assignments off a command.
pub fn effective(cmd: &SimpleCommand) -> Option<Effective<'_>> {
    let words = &cmd.words;
    let mut i = 0;
    let mut wrappers = Vec::new();
    loop {
        // Assignments before the command (`DEBIAN_FRONTEND=noninteractive apt-get …`).
        while i < words.len() && is_assignment(&words[i]) {
            i += 1;
        }
        let word = words.get(i)?;
        let name = basename(word);
        let skip_options = |mut j: usize, with_value: &[&str]| {
            while j < words.len() && words[j].starts_with('-') && words[j] != "-" {
                let opt = words[j].as_str();
                j += 1;
                if with_value.contains(&opt) {
                    j += 1;
                }
                if opt == "--" {
                    break;
                }
            }
            j
        };
        i = match name {
            "sudo" | "doas" => skip_options(
                i + 1,
                &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"],
            ),
            "env" => {
                let mut j = skip_options(i + 1, &["-u", "-C", "-S"]);
                while j < words.len() && is_assignment(&words[j]) {
                    j += 1;
                }
                j
            }
            "exec" | "command" | "builtin" | "nohup" | "time" | "eval" => skip_options(i + 1, &[]),
            "nice" | "ionice" => skip_options(i + 1, &["-n", "-c"]),
            "stdbuf" => skip_options(i + 1, &[]),
            "timeout" => skip_options(i + 1, &["-s", "-k", "--signal", "--kill-after"]) + 1,
            "xargs" => skip_options(i + 1, &["-I", "-n", "-P", "-L", "-d", "-E", "-s", "-a"]),
            "su-exec" | "gosu" | "chpst" => i + 2,
            _ => {
                return Some(Effective {
                    program: name.to_string(),
                    args: &words[i + 1..],
                    wrappers,
                });
            }
        };
        wrappers.push(name.to_string());
    }
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// `/usr/bin/curl` → `curl`.
pub fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &Script) -> Vec<Vec<Vec<&str>>> {
        s.pipelines
            .iter()
            .map(|p| {
                p.iter()
                    .map(|c| c.words.iter().map(String::as_str).collect())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn pipelines_lists_and_quotes() {
        let s = parse(
            "apt-get update && curl -fsSL 'https://x.io/a b' | sudo -E bash - ; echo \"a|b\" 2>&1 >/dev/null",
        );
        assert_eq!(
            words(&s),
            vec![
                vec![vec!["apt-get", "update"]],
                vec![
                    vec!["curl", "-fsSL", "https://x.io/a b"],
                    vec!["sudo", "-E", "bash", "-"]
                ],
                vec![vec!["echo", "a|b"]],
            ]
        );
    }

    #[test]
    fn substitutions_are_scripts() {
        let s = parse("sh -c \"$(curl -fsSL https://get.x)\" && bash <(wget -qO- https://y)");
        assert_eq!(s.substitutions.len(), 2);
        assert_eq!(s.substitutions[0].pipelines[0][0].words[0], "curl");
        assert_eq!(s.substitutions[1].pipelines[0][0].words[0], "wget");
        assert_eq!(s.pipelines[1][0].words, vec!["bash", "/dev/fd/63"]);
    }

    #[test]
    fn comments_continuations_and_redirections() {
        let s = parse("# setup\nset -eux; \\\n  chmod 777 /data # world\ncat <<EOF > /etc/x\n");
        assert_eq!(
            words(&s),
            vec![
                vec![vec!["set", "-eux"]],
                vec![vec!["chmod", "777", "/data"]],
                vec![vec!["cat"]]
            ]
        );
    }

    #[test]
    fn wrappers_are_peeled() {
        let s = parse(
            "DEBIAN_FRONTEND=noninteractive sudo -u root env A=1 /usr/bin/apt-get install -y sudo",
        );
        let e = effective(&s.pipelines[0][0]).unwrap();
        assert_eq!(e.program, "apt-get");
        assert_eq!(e.args, ["install", "-y", "sudo"]);
        assert_eq!(e.wrappers, vec!["sudo", "env"]);
        let s = parse("timeout 30 curl x");
        assert_eq!(effective(&s.pipelines[0][0]).unwrap().program, "curl");
    }
}
