//! `rsafe rm`: remove containers (their writable layer and state), like `docker rm`.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::Global;
use crate::runtime::signal;
use crate::runtime::state::{self, ContainerDir, Phase, State};

/// Remove one or more containers and their writable layers
///
/// A running container is refused unless -f is given, which kills it first. A created one
/// (`rsafe create`, never started) is removed as a stopped one is. Cgroups left by a run whose
/// rsafe was killed are removed too.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Kill running containers first.
    #[arg(short, long)]
    pub force: bool,
    /// Container names or ids (a unique prefix of an id is enough).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Removes the containers in turn, printing each one's id; one that cannot be removed is
/// reported and the rest are still removed, as docker does.
pub fn run(args: RmArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let done = super::each_container(&args.containers, |name| {
        let (dir, st) = state::find(store.root(), name)?;
        if args.force {
            // A `--restart` container's monitor must not start it again once killed.
            crate::runtime::detach::request_stop(&dir)?;
        }
        match dir.phase(&st) {
            Phase::Up if !args.force => bail!("container {name} is running (rsafe rm -f kills it)"),
            Phase::Up => kill(name, &dir, &st)?,
            Phase::Created if dir.is_locked() => {
                bail!("container {name} is being started: try again")
            }
            Phase::Created | Phase::Exited(_) | Phase::Dead => {}
        }
        // A created container's `rsafe start` takes this lock: it cannot begin meanwhile.
        let _lock = match dir.phase(&st) {
            Phase::Created => Some(dir.lock(name)?),
            _ => None,
        };
        state::remove_container(&dir, &st)?;
        Ok(st.id)
    });
    // A killed rsafe's address lease goes with its container.
    crate::runtime::netstore::NetStore::new(store.root()).reclaim_all()?;
    done
}

/// Kills every process of a running container ([`signal::kill_all`], as `stop` after its
/// grace and `rsafe-runtime delete` do) and waits for its rsafe or monitor to finish with it:
/// the lock it holds goes once the exit is recorded (or the container removed, with --rm).
fn kill(name: &str, dir: &ContainerDir, st: &State) -> Result<()> {
    let Some(first) = st.first_process() else {
        return Ok(());
    };
    signal::kill_all(Some(first), st.cgroup.as_ref());
    let deadline = Instant::now() + Duration::from_secs(5);
    while (first.is_alive() || !dir.settled(st)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if first.is_alive() {
        bail!("container {name} did not stop after SIGKILL");
    }
    Ok(())
}
