//! `rsafe restart`: stop and start containers again, like `docker restart`.
#![forbid(unsafe_code)]

use anyhow::{Result, bail};

use super::Global;
use super::run::{exit_code, notes_to_stderr};
use crate::runtime::detach::{self, Detached};
use crate::runtime::state;

/// Restart containers
///
/// A running container is stopped as `rsafe stop` does (SIGTERM, then SIGKILL after the grace
/// period), then it and a stopped one are started in the background as `rsafe start -d` does:
/// the same spec and writable layer, output to `rsafe logs`, under its --restart policy. A container run with --rm is
/// removed when it stops, so it is refused before anything happens to it.
#[derive(Debug, clap::Args)]
pub struct RestartArgs {
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

/// Restarts the containers in turn, printing each name; fails on the first that cannot be.
pub fn run(args: RestartArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    for name in &args.containers {
        let (dir, s) = state::find(store.root(), name)?;
        if s.auto_remove {
            bail!("{name} was run with --rm: it is removed when it stops, so it cannot restart");
        }
        // One between two runs of its --restart monitor is stopped too: that monitor ends
        // before the new start (it would otherwise start it again beside it).
        if s.is_alive() || crate::runtime::stop::restarting(&dir, &s) {
            super::stop::stop_one(store.root(), name, args.time, global)?;
        }
        let notify = notes_to_stderr(global.verbose);
        match detach::start_detached(store.root(), name, notify, exit_code)? {
            Detached::Started(_) => println!("{name}"),
            Detached::Failed { code, message } => {
                eprintln!("rsafe: {name}: {message}");
                return Ok(code);
            }
        }
    }
    Ok(0)
}
