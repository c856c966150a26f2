//! Signalling a container and ending all of it: one way for rsafe's own `stop`, `kill` and
//! `rm -f` and for the OCI interface's `kill` and `delete` (`rsafe-runtime`).
//!
//! Both kinds of container record their first process by host pid and start time
//! ([`FirstProcess`]): a pid the kernel gave to another process since is never signalled.
//! Both thaw a frozen cgroup after a signal, since a task frozen by the v1 freezer acts on no
//! signal, SIGKILL included, until thawed. And both end a container by SIGKILL to its first
//! process and to every process of its cgroup ([`kill_all`]): with a pid namespace of its own
//! the first process's end would take the rest with it, but an OCI bundle may share the host's
//! pid namespace, and the cgroup is where its processes are then.
//!
//! What differs is what each command line promises, and the callers choose it:
//! - [`Reach`]: `docker kill` signals the first process (rsafe's init, which passes the signal
//!   on to the workload); runc's `kill --all` every process of the cgroup.
//! - [`Thaw`]: docker resumes a paused container it signals, whatever the signal, and its
//!   `stop` then waits for the end (so a failed thaw shows as a container that did not stop);
//!   runc thaws only for SIGKILL (any other signal waits for `resume`), and its `kill` fails
//!   when the thaw does.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::cgroups::{Cgroup, CgroupError};
use super::state::process_alive;

/// A container's first process as recorded: its host pid and its start time (clock ticks
/// after boot), which tells it from a later process given the same pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstProcess {
    pub pid: i32,
    pub start: u64,
}

impl FirstProcess {
    /// Whether it still runs (a zombie does not: its parent has yet to reap it, dead).
    pub fn is_alive(self) -> bool {
        self.pid > 0 && process_alive(self.pid, self.start)
    }
}

/// Which of the container's processes a signal goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The first process (docker's `kill`, runc's `kill` without `--all`).
    First,
    /// The first process and every process of the cgroup (runc's `kill --all`); the first
    /// alone when there is no cgroup (rootless).
    All,
}

/// When a frozen (paused) container is thawed after a signal, and what a failed thaw is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thaw {
    /// After any signal, best effort (docker's).
    AnySignal,
    /// After SIGKILL only; a failed thaw is the command's failure (runc's).
    OnKill,
}

/// How a signal went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The first process got it.
    Sent,
    /// The first process ended before the signal reached it (ESRCH): the container is ending.
    Gone,
}

/// Why a signal could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The first process was not running when asked.
    #[error("not running")]
    NotRunning,
    #[error("signal {signal} to pid {pid}: {errno}")]
    Send {
        signal: Signal,
        pid: i32,
        errno: Errno,
    },
    #[error("thaw after {signal}: {source}")]
    Thaw { signal: Signal, source: CgroupError },
}

/// Sends `sig` to the running container whose first process is `first` (and, with
/// [`Reach::All`], to every process of `cgroup`), then thaws `cgroup` as `thaw` says. A
/// process that ended meanwhile is no error.
pub fn send(
    first: FirstProcess,
    cgroup: Option<&Cgroup>,
    sig: Signal,
    reach: Reach,
    thaw: Thaw,
) -> Result<Delivery, SignalError> {
    if !first.is_alive() {
        return Err(SignalError::NotRunning);
    }
    let mut targets = vec![first.pid];
    if let (Reach::All, Some(cg)) = (reach, cgroup) {
        targets.extend(cg.pids());
    }
    let delivery = deliver(first.pid, &dedup(targets), sig)?;
    match thaw {
        Thaw::AnySignal => thaw_frozen(cgroup),
        Thaw::OnKill if sig == Signal::SIGKILL => {
            if let Some(cg) = cgroup.filter(|cg| cg.frozen()) {
                cg.freeze(false).map_err(|source| SignalError::Thaw {
                    signal: sig,
                    source,
                })?;
            }
        }
        Thaw::OnKill => {}
    }
    Ok(delivery)
}

/// SIGKILL to every process of the container: its first process while it runs, and all of
/// its cgroup's; the cgroup thawed so that frozen ones die. Does not wait ([`wait_gone`]).
pub fn kill_all(first: Option<FirstProcess>, cgroup: Option<&Cgroup>) {
    let mut targets: Vec<i32> = first
        .filter(|f| f.is_alive())
        .map(|f| f.pid)
        .into_iter()
        .collect();
    if let Some(cg) = cgroup {
        targets.extend(cg.pids());
    }
    let _ = deliver(0, &dedup(targets), Signal::SIGKILL);
    thaw_frozen(cgroup);
}

/// Waits up to `limit` for the first process to end; whether it has. Its parent (rsafe's
/// monitor, or the OCI caller) reaps it: this only watches.
pub fn wait_gone(first: FirstProcess, limit: Duration) -> bool {
    wait_until(limit, Duration::from_millis(5), || !first.is_alive())
}

/// Polls `done` every `every` until it holds or `limit` has passed; whether it held. For what
/// gives nothing to block on: a process that is not this one's child, a record another
/// process writes ([`super::stop`]). `done` is always asked at least once.
pub fn wait_until(limit: Duration, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// `sig` to each of `targets`; whether `first` (one of them, or 0) got it. ESRCH (ended
/// meanwhile) is no error; any other failure stops at once.
fn deliver(first: i32, targets: &[i32], sig: Signal) -> Result<Delivery, SignalError> {
    let mut delivery = Delivery::Sent;
    for &pid in targets.iter().filter(|p| **p > 0) {
        match kill(Pid::from_raw(pid), sig) {
            Ok(()) => {}
            Err(Errno::ESRCH) if pid == first => delivery = Delivery::Gone,
            Err(Errno::ESRCH) => {}
            Err(errno) => {
                return Err(SignalError::Send {
                    signal: sig,
                    pid,
                    errno,
                });
            }
        }
    }
    Ok(delivery)
}

/// Each pid once (the first process is in its cgroup too): a signal sent twice may be
/// handled twice.
fn dedup(mut pids: Vec<i32>) -> Vec<i32> {
    let mut seen = std::collections::HashSet::new();
    pids.retain(|p| seen.insert(*p));
    pids
}

/// Thaws `cgroup` if it is frozen. Best effort: the caller's wait for the end says whether the
/// signal was acted on.
fn thaw_frozen(cgroup: Option<&Cgroup>) {
    if let Some(cg) = cgroup.filter(|cg| cg.frozen()) {
        let _ = cg.freeze(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(script: &str) -> (std::process::Child, FirstProcess) {
        let child = std::process::Command::new("sh")
            .args(["-c", script])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = super::super::state::process_start_time(pid).unwrap();
        (child, FirstProcess { pid, start })
    }

    #[test]
    fn a_signal_reaches_the_first_process_and_never_a_reused_pid() {
        let (mut c, first) = child("sleep 30");
        // The same pid with another start time: a process that reused it.
        let other = FirstProcess {
            pid: first.pid,
            start: first.start + 1,
        };
        assert!(matches!(
            send(other, None, Signal::SIGTERM, Reach::First, Thaw::AnySignal),
            Err(SignalError::NotRunning)
        ));
        assert!(first.is_alive(), "a reused pid was signalled");
        let sent = send(first, None, Signal::SIGTERM, Reach::All, Thaw::OnKill).unwrap();
        assert_eq!(sent, Delivery::Sent);
        let status = c.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(Signal::SIGTERM as i32)
        );
        // Ended and reaped: not running any more.
        assert!(wait_gone(first, Duration::ZERO));
        assert!(matches!(
            send(first, None, Signal::SIGKILL, Reach::First, Thaw::AnySignal),
            Err(SignalError::NotRunning)
        ));
    }

    #[test]
    fn wait_until_asks_until_done_and_at_least_once() {
        let mut asked = 0;
        let every = Duration::from_millis(1);
        assert!(wait_until(Duration::from_secs(60), every, || {
            asked += 1;
            asked == 3
        }));
        assert_eq!(asked, 3);
        let mut asked = 0;
        assert!(!wait_until(Duration::ZERO, every, || {
            asked += 1;
            false
        }));
        assert_eq!(asked, 1);
    }

    #[test]
    fn kill_all_ends_the_first_process_and_waits_only_as_asked() {
        let (mut c, first) = child("sleep 30");
        assert!(!wait_gone(first, Duration::from_millis(20)));
        kill_all(Some(first), None);
        c.wait().unwrap();
        assert!(wait_gone(first, Duration::ZERO));
        // Nothing left to signal: no error, and pid 0 (this process group) is never a target.
        kill_all(Some(first), None);
        kill_all(None, None);
        assert_eq!(dedup(vec![3, 4, 3, 5, 4]), vec![3, 4, 5]);
    }
}
