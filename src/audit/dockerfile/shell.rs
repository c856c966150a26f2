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
    let tokens = tokenize(src, &mut script.substitutions);
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

fn tokenize(src: &str, subs: &mut Vec<Script>) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    // The substitutions written in the current word.
    let mut word_subs: Vec<usize> = Vec::new();
    let mut i = 0;
    macro_rules! end_word {
        () => {
            if in_word {
                tokens.push(Token::Word(
                    std::mem::take(&mut word),
                    std::mem::take(&mut word_subs),
                ));
                in_word = false;
            }
        };
    }
    macro_rules! substitution {
        ($body:expr) => {{
            subs.push(parse($body));
            word_subs.push(subs.len() - 1);
        }};
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
                        substitution!(&body);
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
                        substitution!(&body);
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
                substitution!(&body);
                word.push_str("`…`");
                i = end + 1;
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                in_word = true;
                let (body, next) = balanced(&chars, i + 2);
                substitution!(&body);
                word.push_str("$(…)");
                i = next;
            }
            '<' | '>' if chars.get(i + 1) == Some(&'(') => {
                // Process substitution: its output is a file the command reads or writes.
                in_word = true;
                let (body, next) = balanced(&chars, i + 2);
                substitution!(&body);
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
        tokens.push(Token::Word(word, word_subs));
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
