//! `rsafe exec`: run a command in a running container, like `docker exec`.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::Global;
use super::run::notes_to_stderr;
use crate::runtime::enter::{self, ExecRequest};
use crate::runtime::spec::ProcessOverrides;

/// Run a command in a running container
///
/// The command joins the container's namespaces and cgroup and gets exactly its confinement
/// (capabilities, no_new_privs, seccomp, landlock, the pid-limit rlimit), never more; its
/// environment, working directory and user are the container's unless -e, --env-file, -w, -u
/// say otherwise. In the foreground it dies with rsafe, and rsafe passes signals on to it;
/// with -d the container's init adopts it. Either way it ends with the container. The exit
/// code is the command's (128+N when signal N ended it); 125 when rsafe failed (the container
/// is not running, or does not exist), 126 when the command cannot be executed, 127 when it is
/// not found.
#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Keep stdin attached (otherwise the command's stdin is /dev/null).
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command a terminal (from the container's own devpts).
    #[arg(short, long)]
    pub tty: bool,
    /// Run the command in the background and return once it runs; its output is discarded.
    #[arg(short, long, conflicts_with_all = ["interactive", "tty"])]
    pub detach: bool,
    /// User (and group) to run as: name or uid, optionally :group or :gid, looked up in the
    /// container's /etc/passwd and /etc/group.
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass rsafe's own value).
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file, as `rsafe run --env-file` does.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory in the container (absolute; it must exist).
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Refused: the command gets the container's confinement, never more.
    #[arg(long)]
    pub privileged: bool,
    /// Say what was enforced, as `rsafe run --verbose` does.
    #[arg(long)]
    pub verbose: bool,
    /// The container's name or id (a unique prefix of the id is enough).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command and its arguments.
    #[arg(required = true, value_name = "COMMAND", allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs the command and returns its exit code (0 at once with `-d`).
pub fn run(args: ExecArgs, global: &Global) -> Result<i32> {
    if args.privileged {
        bail!(
            "exec --privileged is refused: a command run in a container gets exactly its confinement, never more"
        );
    }
    let store = global.store()?;
    let req = ExecRequest {
        store_root: store.root().to_path_buf(),
        container: args.container,
        process: ProcessOverrides {
            entrypoint: None,
            args: args.command,
            env: args.env,
            env_files: args.env_file,
            workdir: args.workdir,
            user: args.user,
            terminal: args.tty,
            stdin: args.interactive,
        },
        detach: args.detach,
    };
    let mut notify = notes_to_stderr(args.verbose || global.verbose);
    match enter::exec(&req, &|k| std::env::var(k).ok(), &mut notify) {
        Ok(code) => Ok(code),
        Err(e) => {
            // The command's own failure codes (126, 127) are the result, not rsafe's 125.
            let code = e.exit_code();
            eprintln!("rsafe: {}", super::one_line(&anyhow::Error::new(e)));
            Ok(code)
        }
    }
}
