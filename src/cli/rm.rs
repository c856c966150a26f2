//! `rsafe rm`: remove containers (their writable layer and state), like `docker rm`.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::Global;
use crate::runtime::idmap::IdMap;
use crate::runtime::signal;
use crate::runtime::state::{self, ContainerDir, Phase, State};
use crate::runtime::volume::Volumes;

/// Remove one or more containers and their writable layers
///
/// A running container is refused unless -f is given, which kills it first. A created one
/// (`rsafe create`, never started) is removed as a stopped one is. Cgroups left by a run whose
/// rsafe was killed are removed too.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// The global --verbose (rm has nothing more to say): `-v` is `--volumes` here, as in
    /// docker.
    #[arg(long)]
    pub verbose: bool,
    /// Kill running containers first.
    #[arg(short, long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too (`-v /dst`, the image's VOLUMEs), as
    /// docker's `rm -v`; named ones stay, and so does one another container mounts.
    #[arg(short, long)]
    pub volumes: bool,
    /// Container names or ids (a unique prefix of an id is enough).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Removes the containers in turn, printing each one's id; one that cannot be removed is
/// reported and the rest are still removed, as docker does.
pub fn run(args: RmArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let done = super::each_container(&args.containers, |name| {
        let (dir, mut st) = state::find(store.root(), name)?;
        if args.force {
            // A `--restart` container's monitor must not start it again once killed.
            crate::runtime::detach::request_stop(&dir)?;
            st = crate::runtime::stop::wait_settled(store.root(), name, SETTLE)?.1;
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
        // Read before the spec goes with the container.
        let anonymous = match args.volumes {
            true => anonymous_volumes(&dir, name)?,
            false => Vec::new(),
        };
        state::remove_container(&dir, &st)?;
        remove_anonymous(store.root(), &anonymous);
        Ok(st.id)
    });
    // A killed rsafe's address lease goes with its container.
    crate::runtime::netstore::NetStore::new(store.root()).reclaim_all()?;
    done
}

/// `rm -v`: the anonymous volumes made for container `name` (those it mounts by name stay, as
/// docker keeps them). A container whose spec is gone (one half removed) has none left to say.
fn anonymous_volumes(dir: &ContainerDir, name: &str) -> Result<Vec<String>> {
    match dir.load_spec(name) {
        Ok(spec) => Ok(spec.options.anonymous_volumes),
        Err(_) if !dir.spec_file().exists() => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Removes the anonymous volumes `names` of a removed container (`rm -v`, or a `--rm` one
/// `start` ran); one that cannot go is said, as docker says it, and the container stays
/// removed.
pub(super) fn remove_anonymous(store_root: &std::path::Path, names: &[String]) {
    let volumes = Volumes::of_store(store_root);
    for e in volumes.remove_anonymous(store_root, names, &IdMap::for_this_process()) {
        eprintln!("rsafe: warning: cannot remove an anonymous volume: {e}");
    }
}

/// How long `rm -f` waits for a `--restart` container being started again to run, or its
/// monitor between runs to end; one still starting after that is refused.
const SETTLE: Duration = Duration::from_secs(2);

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
