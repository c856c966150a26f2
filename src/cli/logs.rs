//! `rsafe logs`: what a container started with `rsafe run -d` printed, like `docker logs`.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Global;
use crate::runtime::state;

/// Show the output of a container run with -d
///
/// Its stdout and stderr, and what rsafe said about it (an OOM kill, say), in order. With -f,
/// keeps printing what comes until the container ends.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Follow the output until the container ends.
    #[arg(short, long)]
    pub follow: bool,
    /// The container's name or id (a unique prefix of an id is enough).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn run(args: LogsArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let (dir, _) = state::find(store.root(), &args.container)?;
    let path = dir.log_file();
    let mut log = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
            "container {} was not started with -d: its output went to the terminal that ran it",
            args.container
        ),
        Err(e) => return Err(e).with_context(|| path.display().to_string()),
    };
    let mut out = io::stdout().lock();
    let mut copy = |log: &mut std::fs::File| -> Result<()> {
        let mut buf = Vec::new();
        log.read_to_end(&mut buf)
            .with_context(|| path.display().to_string())?;
        // A closed pipe (`rsafe logs x | head`) ends the command quietly.
        if out.write_all(&buf).and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
        Ok(())
    };
    copy(&mut log)?;
    if args.follow {
        // Until nothing can write to it any more: the container, its monitor and the relay
        // that writes the log hold a shared lock on it while they live.
        while being_written(&log) {
            std::thread::sleep(Duration::from_millis(100));
            copy(&mut log)?;
        }
        copy(&mut log)?;
    }
    Ok(0)
}

fn being_written(log: &std::fs::File) -> bool {
    matches!(log.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}
