//! The command line: clap definitions (one file per command), the global options, and the one
//! place where errors become a single `rsafe: …` line and an exit code.
#![forbid(unsafe_code)]

pub mod audit;
pub mod policy;
#[cfg(feature = "registry")]
pub mod pull;
pub mod rules;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::image::store::Store;

pub mod attach;
pub mod cp;
pub mod create;
pub mod exec;
pub mod format;
pub mod gate;
pub mod history;
pub mod images;
pub mod inspect;
pub mod kill;
pub mod load;
pub mod logs;
pub mod network;
pub mod pause;
pub mod port;
pub mod prune;
pub mod ps;
pub mod ps_filter;
pub mod restart;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod runtime;
pub mod start;
pub mod stats;
pub mod stop;
pub mod system;
pub mod system_restart;
pub mod unpack;
pub mod update;
pub mod volume;
pub mod wait;
// Image commands docker and podman users reach for.
pub mod save;
pub mod tag;

// docker's top, rename, diff and export.
pub mod diff;
pub mod export;
pub mod rename;
pub mod top;

/// rsafe — a rootless, hardened container runner and an image leak auditor.
#[derive(Debug, Parser)]
#[command(name = "rsafe", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// The image store (an OCI image layout). Default: /var/lib/rsafe for root,
    /// $XDG_DATA_HOME/rsafe otherwise.
    #[arg(long, global = true, env = "RSAFE_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// No progress bars or chatter on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Say more about what is done (and what protection was enforced). (`run` has its own
    /// `--verbose`: there `-v` is `--volume`, as in Docker.)
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

impl Global {
    /// Opens (creating if needed) the store these options point at.
    pub fn store(&self) -> anyhow::Result<Store> {
        let root = self.root.clone().unwrap_or_else(Store::default_root);
        Store::open(&root).map_err(|e| anyhow::anyhow!("cannot open store {}: {e}", root.display()))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    // Images: get them, look at them, unpack them.
    /// Pull an image from a registry into the store.
    #[cfg(feature = "registry")]
    Pull(pull::PullArgs),
    Load(load::LoadArgs),
    Images(images::ImagesArgs),
    Inspect(inspect::InspectArgs),
    History(history::HistoryArgs),
    Rmi(rmi::RmiArgs),
    Unpack(unpack::UnpackArgs),
    Tag(tag::TagArgs),
    Save(save::SaveArgs),
    // Auditing.
    /// Audit an image, Dockerfile, compose file or build context for leaks and risks.
    Audit(audit::AuditArgs),
    /// List every audit rule: id, severity, what it finds, how to fix it.
    Rules(rules::RulesArgs),
    // Running.
    Run(Box<run::RunArgs>),
    Create(Box<create::CreateArgs>),
    /// List the containers running on this host (any runtime); with -a, -q, -f, -n, -l or
    /// --no-trunc: rsafe's own, as docker ps (-a: stopped ones too).
    Ps(ps::PsArgs),
    Start(start::StartArgs),
    Attach(attach::AttachArgs),
    Exec(exec::ExecArgs),
    Stop(stop::StopArgs),
    Restart(restart::RestartArgs),
    Kill(kill::KillArgs),
    Pause(pause::PauseArgs),
    Unpause(pause::UnpauseArgs),
    Wait(wait::WaitArgs),
    Logs(logs::LogsArgs),
    Stats(stats::StatsArgs),
    Port(port::PortArgs),
    Cp(cp::CpArgs),
    Top(top::TopArgs),
    Rename(rename::RenameArgs),
    Update(update::UpdateArgs),
    Diff(diff::DiffArgs),
    Export(export::ExportArgs),
    /// Remove containers and their writable layers.
    Rm(rm::RmArgs),
    Volume(volume::VolumeArgs),
    Network(network::NetworkArgs),
    // Pruning and disk usage, in docker's shapes: `container prune`, `image prune`,
    // `system prune`, `system df` (`volume prune` and `network prune` are with their kind).
    Container(prune::ContainerArgs),
    Image(prune::ImageArgs),
    System(system::SystemArgs),
    /// Inspect the runner's confinement policies.
    Policy(policy::PolicyArgs),
    /// The OCI runtime command line (runc's, for podman and containerd); also answers as
    /// `rsafe-runtime` (a link to this binary). `rsafe runtime --help` lists its commands.
    #[command(disable_help_flag = true)]
    Runtime {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

impl Command {
    /// The exit code for rsafe's own failure in this command: docker's 125 for `run`,
    /// `create`, `start` and `exec`, the CI gate's 2 for `audit`, 1 otherwise.
    fn failure_code(&self) -> i32 {
        match self {
            Command::Run(_)
            | Command::Create(_)
            | Command::Start(_)
            | Command::Exec(_)
            | Command::Network(_) => 125,
            // podman's code for a container it could not pause.
            Command::Pause(_) | Command::Unpause(_) => 125,
            // 0 clean, 1 findings at --fail-on: rsafe's own failure must be neither.
            Command::Audit(_) => 2,
            _ => 1,
        }
    }

    /// Whether this command only prints what it reads: it then ends quietly, by SIGPIPE, when
    /// its reader goes (`rsafe images | head`), as `ls` and `docker images` do, rather than
    /// panicking on the write. The others keep Rust's ignored SIGPIPE: they change state or
    /// relay a container's output, and handle EPIPE as an error.
    fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::Images(_)
                | Command::Inspect(_)
                | Command::History(_)
                | Command::Rules(_)
                | Command::Audit(_)
                | Command::Ps(_)
                | Command::Logs(_)
                | Command::Stats(_)
                | Command::Port(_)
                | Command::Policy(_)
                | Command::Top(_)
                | Command::Diff(_)
        )
    }
}

/// Commands whose bad flags exit 125 as docker's and podman's do (`run --help` says so): the
/// container's own codes (126, 127, 128+N) and 0–125 of the workload must not be mistaken for
/// a usage error. The others keep clap's 2 (for `audit`, the CI gate's "rsafe failed").
const USAGE_ERROR_125: &[&str] = &["run", "create", "start", "exec", "network"];

/// The exit code of a command line clap refused: 125 for the commands in [`USAGE_ERROR_125`],
/// clap's own otherwise (2, or 0 for `--help` and `--version`).
fn usage_error_code(err: &clap::Error, args: &[std::ffi::OsString]) -> i32 {
    let code = err.exit_code();
    if code == 0 {
        return code;
    }
    match subcommand_name(args) {
        Some(name) if USAGE_ERROR_125.contains(&name.as_str()) => 125,
        _ => code,
    }
}

/// The subcommand of a command line: its first word that is not a global option (nor
/// `--root`'s value).
fn subcommand_name(args: &[std::ffi::OsString]) -> Option<String> {
    let mut words = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(word) = words.next() {
        if word == "--root" {
            words.next();
        } else if !word.starts_with('-') {
            return Some(word.into_owned());
        }
    }
    None
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let called_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str());
    if called_as == Some(runtime::NAME) {
        return runtime::main(args);
    }
    // `rsafe runtime ARGS…`: handed over whole, so that runc's own `--root` (a global of
    // rsafe's too) means the runtime's.
    if args.get(1).is_some_and(|a| a == "runtime") {
        let mut argv = vec![std::ffi::OsString::from(runtime::NAME)];
        argv.extend(args.into_iter().skip(2));
        return runtime::main(argv);
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return usage_error_code(&err, &args);
        }
    };
    let code = cli.command.failure_code();
    if cli.command.only_prints() {
        crate::runtime::sys::reset_signal_dispositions();
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("rsafe: {}", one_line(&err));
            code
        }
    }
}

/// Runs `op` on each named container in turn, printing what it returns; one that fails is
/// reported and the rest are still done, as docker and podman do (`stop`, `kill`, `rm`,
/// `pause`): the command then fails with every failure in one line.
pub(crate) fn each_container(
    names: &[String],
    mut op: impl FnMut(&str) -> anyhow::Result<String>,
) -> anyhow::Result<i32> {
    let mut failed = Vec::new();
    for name in names {
        match op(name) {
            Ok(done) => println!("{done}"),
            Err(e) => failed.push(one_line(&e)),
        }
    }
    match failed.is_empty() {
        true => Ok(0),
        false => Err(anyhow::anyhow!("{}", failed.join("; "))),
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let Cli {
        mut global,
        command,
    } = cli;
    // A relative store (`--root store`) is made absolute once, here: the runner changes
    // directory and mount namespace before it is done with the store's paths.
    global.root = global
        .root
        .map(|root| std::path::absolute(&root).unwrap_or(root));
    match command {
        #[cfg(feature = "registry")]
        Command::Pull(args) => pull::run(args, &global),
        Command::Load(args) => load::run(args, &global),
        Command::Images(args) => images::run(args, &global),
        Command::Inspect(args) => inspect::run(args, &global),
        Command::History(args) => history::run(args, &global),
        Command::Rmi(args) => rmi::run(args, &global),
        Command::Unpack(args) => unpack::run(args, &global),
        Command::Tag(args) => tag::run(args, &global),
        Command::Save(args) => save::run(args, &global),
        Command::Audit(args) => audit::run(args, &global),
        Command::Rules(args) => rules::run(args),
        Command::Run(args) => run::run(*args, &global),
        Command::Create(args) => create::run(*args, &global),
        Command::Ps(args) => ps::run(args, &global),
        Command::Start(args) => start::run(args, &global),
        Command::Attach(args) => attach::run(args, &global),
        Command::Exec(args) => exec::run(args, &global),
        Command::Stop(args) => stop::run(args, &global),
        Command::Restart(args) => restart::run(args, &global),
        Command::Kill(args) => kill::run(args, &global),
        Command::Pause(args) => pause::run_pause(args, &global),
        Command::Unpause(args) => pause::run_unpause(args, &global),
        Command::Wait(args) => wait::run(args, &global),
        Command::Logs(args) => logs::run(args, &global),
        Command::Stats(args) => stats::run(args, &global),
        Command::Port(args) => port::run(args, &global),
        Command::Cp(args) => cp::run(args, &global),
        Command::Top(args) => top::run(args, &global),
        Command::Rename(args) => rename::run(args, &global),
        Command::Update(args) => update::run(args, &global),
        Command::Diff(args) => diff::run(args, &global),
        Command::Export(args) => export::run(args, &global),
        Command::Rm(args) => rm::run(args, &global),
        Command::Volume(args) => volume::run(args, &global),
        Command::Network(args) => network::run(args, &global),
        Command::Container(args) => match args.command {
            prune::ContainerCommand::Prune(args) => prune::containers(args, &global),
        },
        Command::Image(args) => match args.command {
            prune::ImageCommand::Prune(args) => prune::images(args, &global),
        },
        Command::System(args) => system::run(args, &global),
        Command::Policy(args) => policy::run(args),
        Command::Runtime { args } => {
            let mut argv = vec![std::ffi::OsString::from(runtime::NAME)];
            argv.extend(args);
            Ok(runtime::main(argv))
        }
    }
}

/// An error chain as one line: `what failed: why: why`. Library errors often spell out their
/// cause already (`{path}: {source}`); a cause the line already ends with is not repeated.
/// Errors quote their input (a Dockerfile line, a JSON parser's view of a profile, a tar name),
/// and that input is the attacker's: control characters are shown escaped, never sent to the
/// terminal, and the line is cut at [`MAX_ERROR_CHARS`].
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !line.ends_with(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    printable(&line.replace('\n', " "))
}

/// How long an error line may be: enough for any path and reason, not for a whole input.
pub const MAX_ERROR_CHARS: usize = 1000;

/// `text` with control characters (ANSI escapes, carriage returns, …) escaped as `\u{1b}`, cut to
/// [`MAX_ERROR_CHARS`] characters.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_ERROR_CHARS));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_ERROR_CHARS {
            let rest = text.chars().count() - i;
            out.push_str(&format!("… ({rest} more characters)"));
            break;
        }
        match c {
            '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Spelled {
        path: &'static str,
        source: std::io::Error,
    }

    fn usage_code(words: &[&str]) -> i32 {
        let args: Vec<std::ffi::OsString> = words.iter().map(Into::into).collect();
        match Cli::try_parse_from(&args) {
            Ok(_) => -1,
            Err(err) => usage_error_code(&err, &args),
        }
    }

    #[test]
    fn bad_flags_exit_125_for_container_commands_and_2_otherwise() {
        assert_eq!(usage_code(&["rsafe", "run", "--bogus", "img"]), 125);
        assert_eq!(usage_code(&["rsafe", "run"]), 125);
        assert_eq!(usage_code(&["rsafe", "create", "--bogus", "img"]), 125);
        assert_eq!(usage_code(&["rsafe", "create"]), 125);
        assert_eq!(usage_code(&["rsafe", "create", "img", "ls", "-l"]), -1);
        assert_eq!(usage_code(&["rsafe", "run", "--cpus", "x", "img"]), 125);
        assert_eq!(usage_code(&["rsafe", "-q", "--root", "run", "start"]), 125);
        assert_eq!(
            usage_code(&["rsafe", "--root=/x", "start", "--bogus", "c"]),
            125
        );
        assert_eq!(usage_code(&["rsafe", "exec", "--bogus", "c", "true"]), 125);
        assert_eq!(usage_code(&["rsafe", "exec", "c"]), 125);
        assert_eq!(usage_code(&["rsafe", "exec", "-d", "-t", "c", "sh"]), 125);
        assert_eq!(
            usage_code(&["rsafe", "exec", "c", "ls", "-l", "--bogus"]),
            -1
        );
        assert_eq!(usage_code(&["rsafe", "audit", "--bogus", "x"]), 2);
        assert_eq!(
            usage_code(&["rsafe", "--root", "run", "images", "--bogus"]),
            2
        );
        assert_eq!(usage_code(&["rsafe", "--bogus"]), 2);
        assert_eq!(usage_code(&["rsafe", "frobnicate"]), 2);
        assert_eq!(usage_code(&["rsafe", "run", "--help"]), 0);
        assert_eq!(usage_code(&["rsafe", "--version"]), 0);
        assert_eq!(usage_code(&["rsafe", "run", "img"]), -1);
    }

    #[test]
    fn one_line_does_not_repeat_causes() {
        let io = std::io::Error::other("disk on fire");
        let err = anyhow::Error::new(Spelled {
            path: "/x",
            source: io,
        })
        .context("cannot load");
        assert_eq!(one_line(&err), "cannot load: /x: disk on fire");
        let plain = anyhow::anyhow!("line one\nline two").context("outer");
        assert_eq!(one_line(&plain), "outer: line one line two");
    }

    #[test]
    fn errors_never_send_control_characters_or_whole_inputs_to_the_terminal() {
        let hostile = anyhow::anyhow!("unknown instruction: \x1b]0;owned\x07\x1b[2J\rFROM");
        assert_eq!(
            one_line(&hostile),
            "unknown instruction: \\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{d}FROM"
        );
        let long = anyhow::anyhow!("{}", "x".repeat(5000));
        let line = one_line(&long);
        assert!(line.ends_with("… (4000 more characters)"), "{line}");
        assert_eq!(line.chars().filter(|c| *c == 'x').count(), MAX_ERROR_CHARS);
    }
}
