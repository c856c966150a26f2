//! `rsafe start`: run a created or stopped container, in the background as `docker start`
//! and `podman start` do, or attached with `-a`/`-i`.
#![forbid(unsafe_code)]

use anyhow::Result;

use super::Global;
use super::run::{detached_code, exit_code, notes_to_stderr};
use crate::runtime::detach;
use crate::runtime::process;

/// Start a created or stopped container
///
/// It runs its command with the spec `rsafe create` or `rsafe run` gave it (image layers,
/// environment, volumes, limits, policy) on its writable layer, so what it wrote before is
/// still there. Containers made with --rm are gone when they stop. As docker and podman
/// do, it starts the container in the background and prints its name (its output goes to
/// `rsafe logs`); with -a or -i it stays attached and exits with the command's exit code.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Stay attached: stdout and stderr here, signals passed on, and the command's exit code.
    #[arg(short, long, conflicts_with = "detach")]
    pub attach: bool,
    /// Run in the background: the default (kept for scripts written for rsafe's older
    /// attached default).
    #[arg(short, long)]
    pub detach: bool,
    /// Attach stdin too (implies -a, as in docker).
    #[arg(short, long, conflicts_with = "detach")]
    pub interactive: bool,
    /// Say what was set up and enforced, as `rsafe run --verbose` does.
    #[arg(long)]
    pub verbose: bool,
    /// The container's name or id (a unique prefix of the id is enough).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Starts the container: in the background (0 once it runs, or its start failure's code), or
/// attached with `-a`/`-i`, returning the workload's exit code.
pub fn run(args: StartArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let mut notify = notes_to_stderr(args.verbose || global.verbose);
    if !args.attach && !args.interactive {
        let outcome = detach::start_detached(store.root(), &args.container, notify, exit_code)?;
        // docker and podman print the name as it was given.
        let outcome = match outcome {
            detach::Detached::Started(_) => detach::Detached::Started(args.container),
            failed => failed,
        };
        return Ok(detached_code(outcome));
    }
    Ok(exit_code(process::start(
        store.root(),
        &args.container,
        Some(args.interactive),
        process::Output::Tee,
        &mut notify,
    )))
}
