//! `rsafe pause` / `rsafe unpause`: freeze and thaw running containers, like `docker pause`.
#![forbid(unsafe_code)]

use anyhow::Result;

use super::Global;
use crate::runtime::pause;

/// Pause every process of running containers
///
/// The container's cgroup is frozen (the v1 freezer on a hybrid host, else cgroup v2's
/// cgroup.freeze): its processes stay where they are and get no CPU until `rsafe unpause`.
/// `rsafe ps -a` says `Up (Paused)`; `exec` into it is refused; `stop`, `kill` and `rm -f` thaw
/// it after signalling it, as docker does. A rootless container has no cgroup on a cgroup v1
/// host and cannot be paused. Exit code 125 when a container could not be paused.
#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    /// Container names or ids (a unique prefix of an id is enough).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Thaw paused containers
///
/// Every process of the container runs on from where `rsafe pause` froze it. Exit code 125 when
/// a container could not be unpaused (it is not paused, or not running).
#[derive(Debug, clap::Args)]
pub struct UnpauseArgs {
    /// Container names or ids (a unique prefix of an id is enough).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `rsafe pause NAME…`.
pub fn run_pause(args: PauseArgs, global: &Global) -> Result<i32> {
    each(&args.containers, global, true)
}

/// `rsafe unpause NAME…`.
pub fn run_unpause(args: UnpauseArgs, global: &Global) -> Result<i32> {
    each(&args.containers, global, false)
}

/// Freezes or thaws each container in turn, printing each done; one that cannot be is
/// reported and the rest are still done, as docker does.
fn each(names: &[String], global: &Global, on: bool) -> Result<i32> {
    let store = global.store()?;
    super::each_container(names, |name| {
        pause::set_paused(store.root(), name, on)?;
        Ok(name.to_string())
    })
}
