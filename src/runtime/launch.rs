//! What starting a container's first process has in common between `rsafe run`/`start`
//! ([`super::process`]) and the OCI interface's `create` ([`super::oci::create`]).
//!
//! Shared, here or in the modules named:
//! - the clone into new namespaces with a user namespace that owns them
//!   ([`super::sys::clone_process`]), from a single-threaded process, and the id map written
//!   from outside ([`super::idmap::IdMap::write`]);
//! - the first process as a [`ChildGuard`]: killed and reaped on every error path until it is
//!   handed on (to the session that waits for it, or to the OCI caller that reaps it);
//! - the seccomp filter, compiled or read from the store's cache
//!   ([`super::seccomp::FilterCache`]) while the child mounts, and handed over with
//!   [`send_filter`]; the child loads it last, right before `execve`;
//! - the record of the first process by pid and start time, which every signal goes through
//!   ([`super::signal`]), and the cgroup's removal ([`super::cgroups::Cgroup::remove_dirs`]).
//!
//! What still differs, and why:
//! - rsafe's container has a monitor (the `rsafe run` that started it, or `run -d`'s forked
//!   monitor) and rsafe's own init as pid 1, which reaps, forwards signals and records the exit
//!   code; an OCI container has no monitor by contract: its caller (conmon, the containerd
//!   shim) is the parent that reaps it, and the process waits on the start socket between
//!   `create` and `start`.
//! - The root filesystem: rsafe mounts an overlay of its layer cache over a writable layer it
//!   owns; a bundle brings its own `root.path` (id-mapped when rsafe added the user namespace).
//! - The cgroup: rsafe's own under `rsafe/<id>` with rlimits standing in where a controller is
//!   missing, joined by the child itself on v1 (no RCU wait); the bundle's `cgroupsPath`,
//!   written with `linux.resources`, joined from outside in every hierarchy (as runc does).
//! - The record: `state.json` in the store beside the writable layer, with names, logs and
//!   volumes (docker's state); the runtime-spec state under `--root` (runc's).

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::channel::{Channel, ChannelError, Message};
use super::seccomp::CompiledFilter;

/// A container's first process while it is being set up: killed and reaped if this is
/// dropped before [`ChildGuard::disarm`] (a failed launch leaves no process behind).
#[derive(Debug)]
pub struct ChildGuard {
    pub pid: Pid,
    armed: bool,
}

impl ChildGuard {
    /// Guards `pid`, a child of this process.
    pub fn new(pid: Pid) -> ChildGuard {
        ChildGuard { pid, armed: true }
    }

    /// The process is someone else's to reap now (it was reaped, or handed on).
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// Hands the workload's seccomp filter to the child. A child that failed meanwhile has closed
/// its end (EPIPE, ECONNRESET): no error here, its own message, read next, says why.
pub fn send_filter(parent_end: &Channel, filter: CompiledFilter) -> Result<(), ChannelError> {
    let message = Message::Seccomp {
        filter: Box::new(filter),
    };
    match parent_end.send(&message, &[]) {
        Err(ChannelError::Io(e))
            if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) =>
        {
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_child_is_killed_and_reaped_unless_disarmed() {
        let spawn = || {
            std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap()
        };
        let mut child = spawn();
        drop(ChildGuard::new(Pid::from_raw(child.id() as i32)));
        // Reaped by the guard: nothing left to wait for.
        assert!(child.wait().is_err());
        let mut child = spawn();
        let pid = Pid::from_raw(child.id() as i32);
        let mut kept = ChildGuard::new(pid);
        kept.disarm();
        drop(kept);
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        kill(pid, Signal::SIGKILL).unwrap();
        child.wait().unwrap();
    }
}
