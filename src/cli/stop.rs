//! `rsafe stop`: end running containers, like `docker stop`.
#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::{Context as _, Result};
use nix::sys::signal::Signal;

use super::Global;
use crate::runtime::stop::{self, Stopped};

/// Stop running containers
///
/// Each gets SIGTERM, or the signal `run --stop-signal` gave it (passed on by its init to the
/// command), then SIGKILL if it has not ended after the grace period (-t, else `run
/// --stop-timeout`, else 10 s). Returns once rsafe has recorded the exit (or removed the container,
/// for `--rm`). A container that is not running is left as it is.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before SIGKILL (default: the container's
    /// --stop-timeout, else 10).
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub time: Option<u64>,
    /// Container names or ids (a unique prefix of an id is enough).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Stops the containers in turn; one that cannot be stopped is reported and the rest are
/// still stopped, as docker does.
pub fn run(args: StopArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    super::each_container(&args.containers, |name| {
        let seconds = match args.time {
            Some(seconds) => seconds,
            None => stop_settings(store.root(), name)?.1,
        };
        stop_one(store.root(), name, seconds, global)?;
        Ok(name.to_string())
    })
}

/// Docker's grace when neither `-t` nor `--stop-timeout` says.
const DEFAULT_STOP_TIMEOUT: u64 = 10;

/// The signal and grace container `name` was run with (`--stop-signal`, `--stop-timeout`):
/// SIGTERM and 10 s unless it says otherwise, or has no recorded spec.
fn stop_settings(store_root: &std::path::Path, name: &str) -> Result<(Signal, u64)> {
    let (dir, _) = crate::runtime::state::find(store_root, name)?;
    let options = match dir.load_spec(name) {
        Ok(spec) => spec.options,
        Err(crate::runtime::state::StateError::NoSpec(_)) => Default::default(),
        Err(e) => return Err(e.into()),
    };
    let signal = match &options.stop_signal {
        Some(name) => name
            .parse()
            .with_context(|| format!("the stop signal {name:?} recorded for the container"))?,
        None => Signal::SIGTERM,
    };
    Ok((signal, options.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT)))
}

/// Stops container `name` with a grace of `seconds`, saying on stderr when it had to be
/// killed (`stop` and `restart`).
pub(super) fn stop_one(
    store_root: &std::path::Path,
    name: &str,
    seconds: u64,
    global: &Global,
) -> Result<()> {
    let (signal, _) = stop_settings(store_root, name)?;
    let how = stop::stop_with(store_root, name, signal, Duration::from_secs(seconds))?;
    if how == Stopped::Killed && !global.quiet {
        eprintln!(
            "rsafe: {name} did not end within {seconds}s of {}: killed",
            signal.as_str()
        );
    }
    Ok(())
}
