//! `rsafe attach`: join a container started with `run -d` (its terminal with `-dit`), like
//! `docker attach`; see [`crate::runtime::attach`] for how, without a daemon.
#![forbid(unsafe_code)]

use anyhow::{Context, Result, bail};

use super::Global;
use crate::runtime::attach::{self, AttachOptions, Ended};
use crate::runtime::state;

/// Attach to a running container's terminal, or its output and stdin
///
/// For a container started with -d: with -t (`run -dit`) its terminal, otherwise its output
/// (and, with -i, its stdin). Everything it prints still goes to `rsafe logs`. The detach keys
/// (ctrl-p ctrl-q) leave it running, exit 1 as docker's; when the container ends, its exit
/// code is rsafe's.
#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// The keys that detach, docker's format: comma-separated `ctrl-X` or single characters.
    #[arg(long, value_name = "KEYS", default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// Do not attach stdin: output only.
    #[arg(long)]
    pub no_stdin: bool,
    /// Pass the signals rsafe receives (SIGINT, SIGTERM…) to the container; without a
    /// terminal only, as docker does (with one, ctrl-c is a key the terminal turns into
    /// SIGINT).
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// The container's name or id (a unique prefix of an id is enough).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn run(args: AttachArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let detach_keys = attach::parse_detach_keys(&args.detach_keys)?;
    let (dir, st) = state::find(store.root(), &args.container)?;
    if !st.is_alive() {
        bail!(
            "container {} is not running: you cannot attach to a stopped container, start it first",
            args.container
        );
    }
    if !dir.path.join(attach::SOCKET).exists() {
        bail!(
            "container {} was not started with -d: its terminal is the one that ran it",
            args.container
        );
    }
    let opts = AttachOptions {
        detach_keys,
        no_stdin: args.no_stdin,
        sig_proxy: args.sig_proxy,
    };
    let ended = attach::attach(&dir.path, &opts)
        .with_context(|| format!("cannot attach to {}", args.container))?;
    Ok(match ended {
        Ended::Exited(code) => code,
        Ended::Detached => {
            eprintln!("read escape sequence");
            1
        }
    })
}
