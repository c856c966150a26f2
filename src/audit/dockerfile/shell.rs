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
    /// Per word, the indices (into the owning [`Script::substitutions`]) of the command
    /// substitutions written in it, so a rule can tell which word carries `$(curl …)`.
    pub word_subs: Vec<Vec<usize>>,
}

impl SimpleCommand {
    /// A command from an exec-form argument list (`["sh", "-c", "…"]`).
    pub fn from_argv(argv: &[String]) -> Self {
        SimpleCommand {
            words: argv.to_vec(),
            word_subs: vec![Vec::new(); argv.len()],
        }
    }

    /// The substitutions written in word `i`.
    pub fn subs_of(&self, i: usize) -> &[usize] {
        self.word_subs.get(i).map_or(&[], Vec::as_slice)
    }
}

/// A script: pipelines of simple commands, plus every command substitution found in it and
/// every script it hands to a nested shell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Each pipeline is the commands joined by `|`.
    pub pipelines: Vec<Vec<SimpleCommand>>,
    /// Scripts inside `$(…)`, backticks and `<(…)`/`>(…)`, parsed recursively.
    pub substitutions: Vec<Script>,
    /// Scripts run by a nested shell (`sh -c '…'`, `su -c "…"`, `eval …`), parsed recursively:
    /// the commands in them run just as the outer ones do.
    pub nested: Vec<Script>,
}

impl Script {
    /// Every simple command, including those inside substitutions and nested shells.
    pub fn all_commands(&self) -> Vec<&SimpleCommand> {
        let mut out: Vec<&SimpleCommand> = self.pipelines.iter().flatten().collect();
        for s in self.substitutions.iter().chain(&self.nested) {
            out.extend(s.all_commands());
        }
        out
    }

    /// Every pipeline, including those inside substitutions and nested shells.
    pub fn all_pipelines(&self) -> Vec<&Vec<SimpleCommand>> {
        let mut out: Vec<&Vec<SimpleCommand>> = self.pipelines.iter().collect();
        for s in self.substitutions.iter().chain(&self.nested) {
            out.extend(s.all_pipelines());
        }
        out
    }

    /// This script and every script inside it (substitutions, nested shells), each once.
    pub fn all_scripts(&self) -> Vec<&Script> {
        let mut out = vec![self];
        for s in self.substitutions.iter().chain(&self.nested) {
            out.extend(s.all_scripts());
        }
        out
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    /// A word and the substitutions written in it.
    Word(String, Vec<usize>),
    /// `|`
    Pipe,
    /// `&&`, `||`, `;`, `&`, newline, `(`, `)`: ends a pipeline.
    Separator,
    /// `>`, `>>`, `<`, `2>`, `&>`…: the next word is a file, not an argument.
    Redirect,
}

/// Reserved words that open or continue a compound command: the command after them is an
/// ordinary command (`then apk add …`, `do curl …`, `! grep …`).
const PREFIX_KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "while", "until", "do", "{", "!", "fi", "done", "esac", "}",
];

/// Reserved words that start a header which is not a command (`for x in a b`, `case $a in`).
const HEADER_KEYWORDS: &[&str] = &["for", "select", "case"];

/// How deep nested shells (`sh -c "sh -c '…'"`) are followed.
const MAX_NESTING: usize = 8;

/// Parses a shell script.
pub fn parse(src: &str) -> Script {
    parse_at(src, 0)
}

fn parse_at(src: &str, depth: usize) -> Script {
    let mut script = Script::default();
    let tokens = tokenize(src, &mut script.substitutions, depth);
    let mut pipeline: Vec<SimpleCommand> = Vec::new();
    let mut cmd = SimpleCommand::default();
    let mut redirect_target = false;
    // Inside a `for`/`case` header: words up to the separator are not a command.
    let mut header = false;
    let flush_cmd = |cmd: &mut SimpleCommand, pipeline: &mut Vec<SimpleCommand>| {
        if !cmd.words.is_empty() {
            pipeline.push(std::mem::take(cmd));
        }
    };
    for t in tokens {
        match t {
            Token::Word(w, subs) => {
                if redirect_target {
                    redirect_target = false;
                } else if cmd.words.is_empty() && HEADER_KEYWORDS.contains(&w.as_str()) {
                    header = true;
                } else if !(header || cmd.words.is_empty() && PREFIX_KEYWORDS.contains(&w.as_str()))
                {
                    cmd.words.push(w);
                    cmd.word_subs.push(subs);
                }
            }
            Token::Redirect => redirect_target = true,
            Token::Pipe => {
                header = false;
                flush_cmd(&mut cmd, &mut pipeline);
            }
            Token::Separator => {
                header = false;
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
    if depth < MAX_NESTING {
        let nested: Vec<Script> = script
            .pipelines
            .iter()
            .flatten()
            .filter_map(shell_code)
            .map(|code| parse_at(&code.text, depth + 1))
            .collect();
        script.nested = nested;
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

/// Splits a script into words and operators. Substitutions (`$(…)`, `` `…` ``, `<(…)`) are
/// parsed as scripts of their own, one level deeper: past [`MAX_NESTING`] they are kept as
/// empty scripts, so a hostile `$($($(…)))` cannot exhaust the stack.
fn tokenize(src: &str, subs: &mut Vec<Script>, depth: usize) -> Vec<Token> {
    let mut lexer = Lexer {
        chars: src.chars().collect(),
        i: 0,
        tokens: Vec::new(),
        word: String::new(),
        in_word: false,
        word_subs: Vec::new(),
        subs,
        depth,
    };
    while lexer.i < lexer.chars.len() {
        lexer.step();
    }
    lexer.end_word();
    lexer.tokens
}

/// The tokenizer's state: where it is, the word being built and the tokens so far.
struct Lexer<'a> {
    chars: Vec<char>,
    i: usize,
    tokens: Vec<Token>,
    word: String,
    in_word: bool,
    /// The substitutions written in the current word (indexes into `subs`).
    word_subs: Vec<usize>,
    subs: &'a mut Vec<Script>,
    depth: usize,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    /// Reads one character (or one operator, quoted string or substitution).
    fn step(&mut self) {
        let c = self.chars[self.i];
        match c {
            ' ' | '\t' | '\r' => {
                self.end_word();
                self.i += 1;
            }
            '\n' => self.separator(1),
            '#' if !self.in_word => {
                while self.i < self.chars.len() && self.chars[self.i] != '\n' {
                    self.i += 1;
                }
            }
            '\\' => {
                if self.peek(1) != Some('\n') {
                    self.in_word = true;
                    if let Some(n) = self.peek(1) {
                        self.word.push(n);
                    }
                }
                self.i += 2;
            }
            '\'' => {
                self.in_word = true;
                self.i += 1;
                while self.i < self.chars.len() && self.chars[self.i] != '\'' {
                    self.word.push(self.chars[self.i]);
                    self.i += 1;
                }
                self.i += 1;
            }
            '"' => self.double_quoted(),
            '`' => self.backquoted(),
            '$' if self.peek(1) == Some('(') => self.dollar_paren("$(…)"),
            // Process substitution: its output is a file the command reads or writes.
            '<' | '>' if self.peek(1) == Some('(') => self.dollar_paren("/dev/fd/63"),
            '|' if self.peek(1) == Some('|') => self.separator(2),
            '|' => {
                self.end_word();
                self.tokens.push(Token::Pipe);
                self.i += if self.peek(1) == Some('&') { 2 } else { 1 };
            }
            '&' if self.peek(1) == Some('>') => {
                self.end_word();
                self.tokens.push(Token::Redirect);
                self.i += if self.peek(2) == Some('>') { 3 } else { 2 };
            }
            '&' => self.separator(if self.peek(1) == Some('&') { 2 } else { 1 }),
            ';' => self.separator(if self.peek(1) == Some(';') { 2 } else { 1 }),
            '(' | ')' => self.separator(1),
            '<' | '>' => self.redirection(),
            _ => {
                self.in_word = true;
                self.word.push(c);
                self.i += 1;
            }
        }
    }

    fn end_word(&mut self) {
        if self.in_word {
            self.tokens.push(Token::Word(
                std::mem::take(&mut self.word),
                std::mem::take(&mut self.word_subs),
            ));
            self.in_word = false;
        }
    }

    /// Ends the word and the pipeline; the operator is `len` characters long.
    fn separator(&mut self, len: usize) {
        self.end_word();
        self.tokens.push(Token::Separator);
        self.i += len;
    }

    /// Records a substitution's body as a script of the current word.
    fn substitution(&mut self, body: &str) {
        let script = if self.depth < MAX_NESTING {
            parse_at(body, self.depth + 1)
        } else {
            Script::default()
        };
        self.subs.push(script);
        self.word_subs.push(self.subs.len() - 1);
    }

    /// `$(…)` or `<(…)`/`>(…)` at `i`: the word gets `shown` in its place.
    fn dollar_paren(&mut self, shown: &str) {
        self.in_word = true;
        let (body, next) = balanced(&self.chars, self.i + 2);
        self.substitution(&body);
        self.word.push_str(shown);
        self.i = next;
    }

    /// `` `…` `` at `i` (inside or outside double quotes).
    fn backquoted(&mut self) {
        self.in_word = true;
        let start = self.i + 1;
        let end = self.chars[start..]
            .iter()
            .position(|&c| c == '`')
            .map_or(self.chars.len(), |p| start + p);
        let body: String = self.chars[start..end].iter().collect();
        self.substitution(&body);
        self.word.push_str("`…`");
        self.i = end + 1;
    }

    /// `"…"` at `i`: a backslash escapes only `"`, `\`, `$`, a backquote or a newline;
    /// substitutions still run.
    fn double_quoted(&mut self) {
        self.in_word = true;
        self.i += 1;
        while let Some(c) = self.peek(0) {
            match c {
                '"' => break,
                '\\' if self.peek(1).is_some_and(|n| "\"\\$`\n".contains(n)) => {
                    if let Some(n) = self.peek(1).filter(|&n| n != '\n') {
                        self.word.push(n);
                    }
                    self.i += 2;
                }
                '$' if self.peek(1) == Some('(') => self.dollar_paren("$(…)"),
                '`' => self.backquoted(),
                _ => {
                    self.word.push(c);
                    self.i += 1;
                }
            }
        }
        self.i += 1;
    }

    /// `<`, `>`, `>>`, `2>`, `<&-`…: the next word is a file, unless the operator's target is a
    /// descriptor glued to it (`2>&1`).
    fn redirection(&mut self) {
        // A file-descriptor number right before belongs to the redirection (`2>`).
        if self.in_word && self.word.chars().all(|d| d.is_ascii_digit()) {
            self.word.clear();
            self.in_word = false;
        }
        self.end_word();
        let mut j = self.i + 1;
        while j < self.chars.len() && matches!(self.chars[j], '<' | '>' | '&' | '|' | '-') {
            j += 1;
        }
        if self.chars[j - 1] == '&' {
            while j < self.chars.len() && (self.chars[j].is_ascii_digit() || self.chars[j] == '-') {
                j += 1;
            }
        } else {
            self.tokens.push(Token::Redirect);
        }
        self.i = j;
    }
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
    /// Index of the program in the command's words (`args` start right after it).
    pub start: usize,
    /// Index of an `eval` among the wrappers: the words after it are code, not arguments.
    pub eval_at: Option<usize>,
    /// `NAME=value` words that set the program's environment (before it, or given to `env`).
    pub env: Vec<&'a str>,
}

/// Peels wrappers and assignments off a command.
pub fn effective(cmd: &SimpleCommand) -> Option<Effective<'_>> {
    let words = &cmd.words;
    let mut i = 0;
    let mut wrappers = Vec::new();
    let mut eval_at = None;
    let mut env = Vec::new();
    loop {
        // Assignments before the command (`DEBIAN_FRONTEND=noninteractive apt-get …`).
        while i < words.len() && is_assignment(&words[i]) {
            env.push(words[i].as_str());
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
            "env" => skip_options(i + 1, &["-u", "-C", "-S"]),
            "eval" => {
                eval_at.get_or_insert(i);
                i + 1
            }
            "exec" | "command" | "builtin" | "nohup" | "time" => skip_options(i + 1, &[]),
            "nice" | "ionice" => skip_options(i + 1, &["-n", "-c"]),
            "stdbuf" => skip_options(i + 1, &[]),
            "timeout" => skip_options(i + 1, &["-s", "-k", "--signal", "--kill-after"]) + 1,
            "xargs" => skip_options(i + 1, &["-I", "-n", "-P", "-L", "-d", "-E", "-s", "-a"]),
            "su-exec" | "gosu" | "chpst" => i + 2,
            "setpriv" => skip_options(i + 1, &[]),
            // `runuser -u app -- cmd`; `runuser app -c '…'` is a nested shell ([`shell_code`]).
            "runuser" if !words[i + 1..].iter().any(|w| w == "-c" || w == "--command") => {
                skip_options(i + 1, &["-u", "-g", "-G", "-s", "--user", "--group"])
            }
            _ => {
                return Some(Effective {
                    program: name.to_string(),
                    args: &words[i + 1..],
                    wrappers,
                    start: i,
                    eval_at,
                    env,
                });
            }
        };
        wrappers.push(name.to_string());
    }
}

/// Shells that take a script with `-c`.
pub const SHELLS: &[&str] = &["sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "busybox"];

/// Shell code a command hands to a nested shell, and the index of the word that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCode {
    /// Index in the command's words of the (first) word that holds the code.
    pub word: usize,
    /// The code, as the nested shell will read it.
    pub text: String,
}

/// The shell code a command runs in a nested shell: the script of `sh -c '…'` (also behind
/// `sudo`, `env`, `xargs`…), the command of `su -c "…"` / `runuser -c`, the words after
/// `eval`. `None` for anything else.
pub fn shell_code(cmd: &SimpleCommand) -> Option<ShellCode> {
    let e = effective(cmd)?;
    let words = &cmd.words;
    if let Some(at) = e.eval_at {
        let rest = words.get(at + 1..)?;
        return (!rest.is_empty()).then(|| ShellCode {
            word: at + 1,
            text: rest.join(" "),
        });
    }
    let program = e.program.as_str();
    let arg = |k: usize| e.start + 1 + k;
    if SHELLS.contains(&program) {
        // `busybox sh -c …`
        let args = if program == "busybox" {
            if !e.args.first().is_some_and(|a| SHELLS.contains(&a.as_str())) {
                return None;
            }
            &e.args[1..]
        } else {
            e.args
        };
        let offset = e.args.len() - args.len();
        let at = shell_c_operand(args)?;
        return Some(ShellCode {
            word: arg(offset + at),
            text: args[at].clone(),
        });
    }
    if matches!(program, "su" | "runuser") {
        let mut k = 0;
        while k < e.args.len() {
            let a = e.args[k].as_str();
            if a == "-c" || a == "--command" {
                let code = e.args.get(k + 1)?;
                return Some(ShellCode {
                    word: arg(k + 1),
                    text: code.clone(),
                });
            }
            if let Some(code) = a.strip_prefix("--command=") {
                return Some(ShellCode {
                    word: arg(k),
                    text: code.to_string(),
                });
            }
            k += 1;
        }
    }
    None
}

/// Index (in `args`) of the script operand of `sh [options] -c SCRIPT`, if `-c` is given.
/// Options that take a value (`-o pipefail`, `+O extglob`) are skipped with their value.
pub fn shell_c_operand(args: &[String]) -> Option<usize> {
    let mut with_c = false;
    let mut k = 0;
    while k < args.len() {
        let a = args[k].as_str();
        if a == "--" {
            k += 1;
            break;
        }
        if a.starts_with("--") {
            k += 1;
            continue;
        }
        let Some(cluster) = a.strip_prefix('-').or_else(|| a.strip_prefix('+')) else {
            break;
        };
        if cluster.is_empty() {
            break;
        }
        with_c |= a.starts_with('-') && cluster.contains('c');
        k += 1 + cluster.chars().filter(|c| matches!(c, 'o' | 'O')).count();
    }
    (with_c && k < args.len()).then_some(k)
}

/// The variable name a `NAME=value` word assigns, and the value.
pub fn assignment(word: &str) -> Option<(&str, &str)> {
    is_assignment(word).then(|| word.split_once('=')).flatten()
}

/// Every `NAME=value` a command puts into the environment of what it runs: assignments before
/// the program or given to `env`, and the arguments of `export` / `declare -x` / `typeset -x`.
/// (A bare `NAME=value` statement sets a shell variable, not the environment.)
pub fn env_assignments(cmd: &SimpleCommand) -> Vec<(&str, &str)> {
    let Some(e) = effective(cmd) else {
        return Vec::new();
    };
    let mut out: Vec<(&str, &str)> = e.env.iter().filter_map(|w| assignment(w)).collect();
    let exports = match e.program.as_str() {
        "export" => true,
        "declare" | "typeset" => e.args.iter().any(|a| a.starts_with('-') && a.contains('x')),
        _ => false,
    };
    if exports {
        out.extend(e.args.iter().filter_map(|w| assignment(w)));
    }
    out
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
    fn programs(s: &Script) -> Vec<String> {
        s.all_commands()
            .into_iter()
            .filter_map(|c| effective(c).map(|e| e.program))
            .collect()
    }

    #[test]
    fn commands_after_compound_keywords_are_read() {
        let s = parse(
            "if [ -f /x ]; then apk add --allow-untrusted a.apk; elif true; then curl -k x; \
             else wget y; fi
             for m in $MODULES; do apk add m-$m.apk; done
             while read l; do echo $l; done < f
             case \"$arch\" in amd64) dpkg --add-architecture x;; esac
             ! grep -q x f && { chmod 777 /d; }
",
        );
        assert_eq!(
            programs(&s),
            vec![
                "[", "apk", "true", "curl", "wget", "apk", "read", "echo", "dpkg", "grep", "chmod"
            ]
        );
    }

    #[test]
    fn nested_shells_are_read() {
        let s = parse(
            "sh -c \"curl -k https://x\" && sudo -u app bash -euo pipefail -c 'wget y | sh' \
             && su -s /bin/sh -c 'chmod 777 /srv' nobody && eval apt-get install -y sudo \
             && runuser -u app -- git clone z && busybox sh -c 'chpasswd'",
        );
        let got = programs(&s);
        for want in ["curl", "wget", "chmod", "apt-get", "git", "chpasswd"] {
            assert!(got.iter().any(|p| p == want), "{want} not in {got:?}");
        }
        assert_eq!(s.nested.len(), 5);
        // `-o pipefail` takes a value: the script is the word after `-c`, not `pipefail`.
        let argv: Vec<String> = ["bash", "-o", "pipefail", "-c", "id"]
            .map(String::from)
            .to_vec();
        let code = shell_code(&SimpleCommand::from_argv(&argv)).unwrap();
        assert_eq!((code.word, code.text.as_str()), (4, "id"));
        let argv: Vec<String> = ["sh", "script.sh", "-c"].map(String::from).to_vec();
        assert_eq!(shell_code(&SimpleCommand::from_argv(&argv)), None);
    }

    #[test]
    fn hostile_nesting_is_cut_off_instead_of_exhausting_the_stack() {
        let n = 200_000;
        let deep = format!("echo {}x{}", "$(".repeat(n), ")".repeat(n));
        let s = parse(&deep);
        let depth = |mut s: &Script| {
            let mut d = 0;
            while let Some(inner) = s.substitutions.first() {
                s = inner;
                d += 1;
            }
            d
        };
        // MAX_NESTING levels read; below them one empty script stands for the rest.
        assert_eq!(depth(&s), MAX_NESTING + 1);
        // Up to the limit, what is nested is still read.
        let s = parse("echo $(echo $(echo $(curl -k https://x | sh)))");
        let names: Vec<&str> = s
            .all_commands()
            .iter()
            .map(|c| c.words[0].as_str())
            .collect();
        assert!(
            names.contains(&"curl") && names.contains(&"sh"),
            "{names:?}"
        );
    }

    #[test]
    fn words_know_their_substitutions_and_env() {
        let s = parse("x=$(curl -s u) sudo bash <(wget -O- v) \"a`id`b\"");
        let c = &s.pipelines[0][0];
        assert_eq!(c.subs_of(0), &[0]);
        assert_eq!(c.subs_of(3), &[1]);
        assert_eq!(c.subs_of(4), &[2]);
        let e = effective(c).unwrap();
        assert_eq!((e.program.as_str(), e.start), ("bash", 2));
        let s = parse("A=1 env B=2 npm ci; export C=3 D; declare -x E=4; F=5");
        let envs: Vec<Vec<(&str, &str)>> =
            s.pipelines.iter().map(|p| env_assignments(&p[0])).collect();
        assert_eq!(
            envs,
            vec![
                vec![("A", "1"), ("B", "2")],
                vec![("C", "3")],
                vec![("E", "4")],
                vec![]
            ]
        );
    }
}
