//! `rsafe stop`: ends a running container the way `docker stop` does. SIGTERM goes to the
//! container's init, which passes it on to the workload; what has not ended after the grace
//! period gets SIGKILL (init first: the kernel then kills everything in its pid namespace).
//! `stop` returns once the container's monitor (the `rsafe run` that started it) has recorded
//! the exit, or removed the container (`--rm`).

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::process::RunError;
use super::state;

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
    let (dir, state) = state::find(store_root, name_or_id)?;
    let Some((pid, start)) = state.pid.filter(|_| state.is_alive()) else {
        return Ok(Stopped::NotRunning);
    };
    let alive = || state::process_alive(pid, start);
    let signal = |sig: Signal| -> Result<(), RunError> {
        // The start time tells the container's init from a process that reused its pid.
        if !alive() {
            return Ok(());
        }
        let sent = match kill(Pid::from_raw(pid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(RunError::Invalid(format!(
                "cannot signal container {name_or_id}: {e}"
            ))),
        };
        super::pause::thaw_signalled(&state);
        sent
    };
    signal(Signal::SIGTERM)?;
    let mut stopped = Stopped::Ended;
    if !wait_until(grace, || !alive()) {
        signal(Signal::SIGKILL)?;
        stopped = Stopped::Killed;
        wait_until(SETTLE, || !alive());
    }
    // The monitor holds the container's lock until it has recorded the exit or removed the
    // container.
    wait_until(SETTLE, || dir.settled(&state));
    Ok(stopped)
}

/// Sends `sig` to running container `name_or_id`, like `docker kill`: to its init, which
/// passes it on to the workload (SIGKILL ends init and so everything in its pid namespace), or
/// to the workload itself with `--init=false`. A container that is not running is an error.
pub fn signal(store_root: &Path, name_or_id: &str, sig: Signal) -> Result<(), RunError> {
    let (_, state) = state::find(store_root, name_or_id)?;
    let not_running = || RunError::Invalid(format!("container {name_or_id} is not running"));
    // The start time (checked by is_alive) tells the container's init from a process that
    // reused its pid.
    let (pid, _) = state
        .pid
        .filter(|_| state.is_alive())
        .ok_or_else(not_running)?;
    let sent = kill(Pid::from_raw(pid), sig);
    // A paused container acts on the signal once thawed, as docker's does.
    super::pause::thaw_signalled(&state);
    match sent {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ESRCH) => Err(not_running()),
        Err(e) => Err(RunError::Invalid(format!(
            "cannot signal container {name_or_id}: {e}"
        ))),
    }
}

/// Polls `done` until it holds or `limit` has passed; whether it held.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}
