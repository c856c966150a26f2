//! `rsafe wait`: wait for containers to end and print their exit codes, like `docker wait`.
#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::{Result, bail};

use super::Global;
use crate::runtime::state::{self, Phase};

/// How often the container's state is looked at while it runs.
const POLL: Duration = Duration::from_millis(50);

/// Wait for containers to end, and print their exit codes
///
/// One line per container, in order: the code its command exited with (128+N for signal N).
/// A container that has already ended prints its code at once.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Container names or ids (a unique prefix of an id is enough).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn run(args: WaitArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    for name in &args.containers {
        let code = wait_for(store.root(), name)?;
        println!("{code}");
    }
    Ok(0)
}

/// Waits until container `name` has ended and its exit is recorded; returns its exit code.
fn wait_for(store_root: &std::path::Path, name: &str) -> Result<i32> {
    let (_, first) = state::find(store_root, name)?;
    // A `--rm` container's rsafe lets go of its start lock early in the removal, so it looks
    // Dead until its directory is gone: that much time is given before Dead is believed.
    let mut removing_until = None;
    loop {
        // Looked up by id: a name may be taken by a new container once this one is removed.
        let (dir, state) = match state::find(store_root, &first.id) {
            Ok(found) => found,
            Err(state::StateError::NotFound(_)) => bail!(
                "container {name} was removed when it ended (--rm): its exit code went with it"
            ),
            Err(e) => return Err(e.into()),
        };
        match dir.phase(&state) {
            Phase::Exited(code) => return Ok(code),
            Phase::Dead if dir.exit_unrecorded() => bail!(
                "container {name} ended, but its exit could not be recorded: the store is full"
            ),
            Phase::Dead
                if state.auto_remove
                    && *removing_until.get_or_insert_with(|| {
                        std::time::Instant::now() + std::time::Duration::from_secs(2)
                    }) > std::time::Instant::now() =>
            {
                std::thread::sleep(POLL)
            }
            Phase::Dead => bail!(
                "container {name} ended without its exit code being recorded (its rsafe was killed)"
            ),
            Phase::Created | Phase::Up => std::thread::sleep(POLL),
        }
    }
}
