//! `rsafe pause` / `rsafe unpause`: every process of one of rsafe's own containers frozen and
//! thawed through its cgroup's freezer, the same [`Cgroup::freeze`] as `rsafe-runtime pause`
//! and `resume` (the v1 freezer hierarchy, which the container joins at start where it is
//! mounted, else v2's `cgroup.freeze`).
//!
//! As docker: a paused container is still running (`ps` says `Up (Paused)`), `exec` into it is
//! refused, and a signal sent to it (`stop`, `kill`, `rm -f`) is followed by a thaw so that it
//! is delivered (a v1-frozen task acts on no signal, SIGKILL included, until thawed; see
//! [`super::signal`]). A rootless container has no cgroup on a cgroup v1 host, and so no
//! freezer: refused in one line, as podman refuses rootless pause on cgroup v1.

use std::path::Path;

use super::cgroups::{Cgroup, CgroupError};
use super::idmap::Caller;
use super::state::{self, State, StateError};

/// Why a container could not be paused or unpaused.
#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {name} belongs to uid {owner}: pause it as that user")]
    NotOwner { name: String, owner: u32 },
    #[error("container {0} is already paused")]
    AlreadyPaused(String),
    #[error("container {0} is not paused")]
    NotPaused(String),
    #[error(
        "cannot pause container {0}: it has no cgroup freezer (rootless containers get no cgroup on this cgroup v1 host; podman refuses rootless pause on cgroup v1 too)"
    )]
    NoFreezer(String),
    #[error("cannot {verb} container {name}: {source}")]
    Freezer {
        verb: &'static str,
        name: String,
        source: CgroupError,
    },
}

/// Freezes (`on`) or thaws every process of running container `name_or_id`.
pub fn set_paused(store_root: &Path, name_or_id: &str, on: bool) -> Result<(), PauseError> {
    let (_, state) = state::find(store_root, name_or_id)?;
    let name = name_or_id.to_string();
    if !state.is_alive() {
        return Err(PauseError::NotRunning(name));
    }
    if state.owner != Caller::current().uid {
        return Err(PauseError::NotOwner {
            name,
            owner: state.owner,
        });
    }
    let Some(cg) = state.cgroup.as_ref().filter(|cg| cg.has_freezer()) else {
        return Err(PauseError::NoFreezer(name));
    };
    match (on, cg.frozen()) {
        (true, true) => return Err(PauseError::AlreadyPaused(name)),
        (false, false) => return Err(PauseError::NotPaused(name)),
        _ => {}
    }
    let verb = if on { "pause" } else { "unpause" };
    cg.freeze(on)
        .map_err(|source| PauseError::Freezer { verb, name, source })
}

/// Whether running container `state` is paused (its cgroup frozen).
pub fn is_paused(state: &State) -> bool {
    state.is_alive() && state.cgroup.as_ref().is_some_and(Cgroup::frozen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_container_in_one_line() {
        for e in [
            PauseError::NotRunning("web".into()),
            PauseError::AlreadyPaused("web".into()),
            PauseError::NotPaused("web".into()),
            PauseError::NoFreezer("web".into()),
        ] {
            let text = e.to_string();
            assert!(text.contains("container web"), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
    }
}
