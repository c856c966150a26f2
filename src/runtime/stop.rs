//! `rsafe stop`: ends a running container the way `docker stop` does. SIGTERM goes to the
//! container's init, which passes it on to the workload; what has not ended after the grace
//! period gets SIGKILL, with every process of its cgroup ([`signal::kill_all`], the same as
//! `rsafe rm -f` and `rsafe-runtime delete`; init's end would take its pid namespace along
//! anyway).
//! `stop` returns once the container's monitor (the `rsafe run` that started it) has recorded
//! the exit, or removed the container (`--rm`). A `--restart` container caught between two runs
//! or while its monitor starts it again is first let settle ([`wait_settled`]): it then runs
//! (and is stopped) or its monitor has ended, so it stays stopped, as docker's stop leaves it.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::process::RunError;
use super::signal::{self, Delivery, Reach, SignalError, Thaw};
use super::state::{self, ContainerDir, Phase, State};

/// How long SIGKILL may take to end a container, and its monitor to record the end.
const SETTLE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// What `stop` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was not running.
    NotRunning,
    /// It ended within the grace period.
    Ended,
    /// It was killed after the grace period.
    Killed,
}

/// Stops container `name_or_id`, giving it `grace` to end on SIGTERM.
pub fn stop(store_root: &Path, name_or_id: &str, grace: Duration) -> Result<Stopped, RunError> {
    stop_with(store_root, name_or_id, Signal::SIGTERM, grace)
}

/// [`stop`] with `first` instead of SIGTERM (the container's `--stop-signal`).
pub fn stop_with(
    store_root: &Path,
    name_or_id: &str,
    first: Signal,
    grace: Duration,
) -> Result<Stopped, RunError> {
    let (dir, _) = state::find(store_root, name_or_id)?;
    // Before the signal: a monitor restarting it (`--restart`) must not start it again.
    let monitored = super::detach::request_stop(&dir).map_err(|source| RunError::Io {
        what: format!("mark container {name_or_id} stopped"),
        source,
    })?;
    // One being started again runs once this returns; one between runs has no monitor left.
    let (dir, state) = wait_settled(store_root, name_or_id, SETTLE)?;
    let Some(process) = state.first_process().filter(|f| f.is_alive()) else {
        return Ok(Stopped::NotRunning);
    };
    let cgroup = state.cgroup.as_ref();
    match signal::send(process, cgroup, first, Reach::First, Thaw::AnySignal) {
        Ok(_) | Err(SignalError::NotRunning) => {}
        Err(e) => return Err(cannot_signal(name_or_id, e)),
    }
    let mut stopped = Stopped::Ended;
    if !signal::wait_gone(process, grace) {
        signal::kill_all(Some(process), cgroup);
        stopped = Stopped::Killed;
        signal::wait_gone(process, SETTLE);
    }
    // The monitor holds the container's lock until it has recorded the exit or removed the
    // container.
    signal::wait_until(SETTLE, POLL, || dir.settled(&state));
    // Then a `--restart` monitor sees the mark and ends: a `restart` starting it right after
    // must not meet it (the new start clears the mark, and the old monitor would go on).
    if monitored {
        signal::wait_until(SETTLE, POLL, || !super::detach::monitor_alive(&dir));
    }
    Ok(stopped)
}

/// Whether container `dir` is between two runs of its `--restart` monitor or being started
/// (by the monitor or a `start`): neither running nor settled, so a stop must wait for it.
pub fn restarting(dir: &ContainerDir, st: &State) -> bool {
    match dir.phase(st) {
        Phase::Created => dir.is_locked(),
        Phase::Exited(_) | Phase::Dead => super::detach::monitor_alive(dir),
        Phase::Up => false,
    }
}

/// After the stop mark ([`super::detach::request_stop`]): waits (`within` at most) until
/// container `name_or_id` runs (a start under way went through: the caller stops it) or is
/// stopped with no monitor left (one between runs sees the mark within 50 ms and ends), and
/// returns it then. `stop`, `kill`, `restart` and `rm -f` share it, so none of them returns
/// while a monitor can still start the container again.
pub fn wait_settled(
    store_root: &Path,
    name_or_id: &str,
    within: Duration,
) -> Result<(ContainerDir, State), RunError> {
    let deadline = Instant::now() + within;
    loop {
        let (dir, st) = state::find(store_root, name_or_id)?;
        if !restarting(&dir, &st) || Instant::now() >= deadline {
            return Ok((dir, st));
        }
        std::thread::sleep(POLL);
    }
}

/// Sends `sig` to running container `name_or_id`, like `docker kill`: to its init, which
/// passes it on to the workload (SIGKILL ends init and so everything in its pid namespace), or
/// to the workload itself with `--init=false`. A container that is not running is an error.
pub fn signal(store_root: &Path, name_or_id: &str, sig: Signal) -> Result<(), RunError> {
    let (_, state) = state::find(store_root, name_or_id)?;
    let not_running = || RunError::Invalid(format!("container {name_or_id} is not running"));
    let first = state.first_process().ok_or_else(not_running)?;
    // A paused container acts on the signal once thawed, as docker's does.
    match signal::send(
        first,
        state.cgroup.as_ref(),
        sig,
        Reach::First,
        Thaw::AnySignal,
    ) {
        Ok(Delivery::Sent) => Ok(()),
        Ok(Delivery::Gone) | Err(SignalError::NotRunning) => Err(not_running()),
        Err(e) => Err(cannot_signal(name_or_id, e)),
    }
}

fn cannot_signal(name_or_id: &str, e: SignalError) -> RunError {
    RunError::Invalid(format!("cannot signal container {name_or_id}: {e}"))
}
