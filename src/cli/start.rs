//! `rsafe start`: run a stopped container again, like `docker start -a`.
#![forbid(unsafe_code)]

use anyhow::Result;

use super::Global;
use super::run::{exit_code, notes_to_stderr};
use crate::runtime::process;

/// Start a stopped container again
///
/// It runs its command again with the same spec as `rsafe run` gave it (image layers,
/// environment, volumes, limits, policy) on the same writable layer, so what it wrote before
/// is still there. Containers made with --rm are gone when they stop. The exit code is the
/// command's, as with `rsafe run`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Attach stdout and stderr. Always on: rsafe has no daemon, so a container lives as long
    /// as the rsafe that started it (accepted for `docker start -a` habits).
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin too.
    #[arg(short, long)]
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
    Ok(exit_code(process::start(
        store.root(),
        &args.container,
        args.interactive,
        &mut notify,
    )))
}
