//! `rsafe start`: run a stopped container again, like `docker start -a` (or, with `-d`, in the
//! background).
#![forbid(unsafe_code)]

use anyhow::Result;

use super::Global;
use super::run::{detached_code, exit_code, notes_to_stderr};
use crate::runtime::detach;
use crate::runtime::process;

/// Start a stopped container again
///
/// It runs its command again with the same spec as `rsafe run` gave it (image layers,
/// environment, volumes, limits, policy) on the same writable layer, so what it wrote before
/// is still there. Containers made with --rm are gone when they stop. The exit code is the
/// command's, as with `rsafe run`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Attach stdout and stderr: the default (accepted for `docker start -a` habits).
    #[arg(short, long, conflicts_with = "detach")]
    pub attach: bool,
    /// Run in the background, as `rsafe run -d` does: its output is added to `rsafe logs`.
    #[arg(short, long)]
    pub detach: bool,
    /// Attach stdin too.
    #[arg(short, long, conflicts_with = "detach")]
    pub interactive: bool,
    /// Say what was set up and enforced, as `rsafe run --verbose` does.
    #[arg(long)]
    pub verbose: bool,
    /// The container's name or id (a unique prefix of the id is enough).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Starts the container and returns the workload's exit code.
pub fn run(args: StartArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let mut notify = notes_to_stderr(args.verbose || global.verbose);
    if args.detach {
        let outcome = detach::start_detached(store.root(), &args.container, notify, exit_code)?;
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
