//! rsafe's pid 1 inside the container.
//!
//! Pid 1 of a pid namespace has two duties no ordinary program expects to have: it inherits
//! every orphaned process and must reap it (or zombies pile up), and the kernel drops signals
//! sent to it for which it has no handler (so a workload that is pid 1 ignores Ctrl-C). rsafe's
//! init does both jobs for the workload: it reaps every child, forwards every signal it gets to
//! the workload, and when the workload ends exits with its status (128+signal for a signal),
//! which makes the kernel kill whatever else is left in the namespace.
//!
//! Init holds nothing of the host: it closes every descriptor but stdio and is not dumpable, so
//! no container process may ptrace it or open its `/proc/1/fd` or `/proc/1/exe`.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Exit code when init itself cannot go on (it cannot report more: the channel is closed).
const INIT_FAILURE: i32 = 125;

/// The signals init handles: all but the uncatchable ones and those that report a fault of init
/// itself (blocking those would hang it instead of killing it).
pub fn handled_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTRAP,
        Signal::SIGSYS,
    ] {
        set.remove(s);
    }
    set
}

/// The exit code that reports `status` the way a shell does.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Supervises `workload` until it ends and returns its exit code. Signals in
/// [`handled_signals`] must already be blocked (they were before the workload was forked, so
/// none is lost in between).
pub fn supervise(workload: Pid) -> i32 {
    let Ok(signals) = SignalFd::with_flags(&handled_signals(), SfdFlags::SFD_CLOEXEC) else {
        return INIT_FAILURE;
    };
    loop {
        let info = match signals.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) | Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(_) => return INIT_FAILURE,
        };
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if sig != Signal::SIGCHLD {
            // The workload may be gone already (then SIGCHLD is on its way).
            let _ = kill(workload, sig);
            continue;
        }
        if let Some(code) = reap(workload) {
            return code;
        }
    }
}

/// Reaps every exited child; returns the workload's exit code once it is among them.
fn reap(workload: Pid) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return None,
            Ok(status) => {
                if status.pid() == Some(workload)
                    && let Some(code) = exit_code(status)
                {
                    return Some(code);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return Some(INIT_FAILURE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        let pid = Pid::from_raw(7);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 3)), Some(3));
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }

    #[test]
    fn fault_signals_are_not_blocked() {
        let set = handled_signals();
        assert!(set.contains(Signal::SIGTERM));
        assert!(set.contains(Signal::SIGCHLD));
        assert!(!set.contains(Signal::SIGSEGV));
        assert!(!set.contains(Signal::SIGKILL));
    }
}
