//! `rsafe stop`: end running containers, like `docker stop`.
#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::Result;

use super::Global;
use crate::runtime::stop::{self, Stopped};

/// Stop running containers
///
/// Each gets SIGTERM (passed on by its init to the command), then SIGKILL if it has not ended
/// after the grace period. Returns once rsafe has recorded the exit (or removed the container,
/// for `--rm`). A container that is not running is left as it is.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(
        short = 't',
        long = "time",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    pub time: u64,
    /// Container names or ids (a unique prefix of an id is enough).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Stops the containers in turn; one that cannot be stopped is reported and the rest are
/// still stopped, as docker does.
pub fn run(args: StopArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    super::each_container(&args.containers, |name| {
        stop_one(store.root(), name, args.time, global)?;
        Ok(name.to_string())
    })
}

/// Stops container `name` with a grace of `seconds`, saying on stderr when it had to be
/// killed (`stop` and `restart`).
pub(super) fn stop_one(
    store_root: &std::path::Path,
    name: &str,
    seconds: u64,
    global: &Global,
) -> Result<()> {
    let how = stop::stop(store_root, name, Duration::from_secs(seconds))?;
    if how == Stopped::Killed && !global.quiet {
        eprintln!("rsafe: {name} did not end within {seconds}s of SIGTERM: killed");
    }
    Ok(())
}
