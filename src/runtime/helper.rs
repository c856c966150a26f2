//! Short-lived helper processes, for work that must not run in rsafe's own process.
//!
//! - [`in_subprocess`]: work that starts threads (parallel layer extraction, a registry pull).
//!   rsafe must be single-threaded when it starts a container: the signals it blocks must be
//!   blocked in every thread, and the `clone` that creates the container copies only the
//!   calling thread, with whatever locks the others happened to hold.
//! - [`as_container_root`]: work on files owned by the container's subordinate ids, which a
//!   rootless caller cannot touch itself: the helper enters a new user namespace with the
//!   container's id map and becomes its root, like the container's own root would be.
//!
//! Both fork (from a single-threaded rsafe, so the child is a complete copy), run the work in
//! the child, and bring its result back as JSON through a pipe. The child dies with rsafe.
//! - [`clone_after`]: a container's first process made inside namespaces rsafe itself must not
//!   enter (another container's, a rootless network's): a forked *joiner* enters them and
//!   clones the process as rsafe's child (`CLONE_PARENT`), then answers with its pid.

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Uid};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::idmap::IdMap;
use super::sys;

/// Why a helper process could not do its work (its own failure is in the `Err` it returns).
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("helper process: {0}")]
    Io(#[from] io::Error),
    #[error("helper process: this process already has {0} threads and cannot fork safely")]
    Threads(usize),
    #[error("helper process: user namespace: {0}")]
    UserNamespace(String),
    /// How it ended, in words: `(pid 7) was killed by SIGKILL`.
    #[error("helper process {0}")]
    Ended(String),
}

/// Runs `work` in a forked child process and returns what it returned.
pub fn in_subprocess<T>(
    work: impl FnOnce() -> Result<T, String>,
) -> Result<Result<T, String>, HelperError>
where
    T: Serialize + DeserializeOwned,
{
    run(None, work)
}

/// Runs `work` as root of a new user namespace mapped by `idmap` (uid and gid 0 there), in a
/// forked child process, and returns what it returned.
pub fn as_container_root<T>(
    idmap: &IdMap,
    work: impl FnOnce() -> Result<T, String>,
) -> Result<Result<T, String>, HelperError>
where
    T: Serialize + DeserializeOwned,
{
    run(Some(idmap), work)
}

fn run<T>(
    idmap: Option<&IdMap>,
    work: impl FnOnce() -> Result<T, String>,
) -> Result<Result<T, String>, HelperError>
where
    T: Serialize + DeserializeOwned,
{
    let threads = sys::thread_count()?;
    if threads != 1 {
        return Err(HelperError::Threads(threads));
    }
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from);
    let (result_read, result_write) = pipe()?;
    let (ready_read, ready_write) = pipe()?;
    let (go_read, go_write) = pipe()?;
    let parent = nix::unistd::getpid();
    // SAFETY: this process has exactly one thread (checked above), so the child is a complete
    // copy and may run any code; it leaves through `_exit`, never returning into the caller.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        ForkResult::Child => {
            drop((result_read, ready_read, go_write));
            let result = match idmap {
                Some(_) => enter_user_namespace(ready_write, go_read),
                None => Ok(()),
            }
            .and_then(|()| die_with(parent))
            .and_then(|()| work());
            let bytes = serde_json::to_vec(&result).unwrap_or_default();
            let ok = std::fs::File::from(result_write).write_all(&bytes).is_ok();
            // SAFETY: ends the child without running the parent's atexit handlers or flushing
            // buffers it shares with the parent.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            drop((result_write, ready_write, go_read));
            let mapped = match idmap {
                Some(map) => map_child(map, child.as_raw(), ready_read, go_write),
                None => Ok(()),
            };
            let mut bytes = Vec::new();
            let read = std::fs::File::from(result_read).read_to_end(&mut bytes);
            let status = waitpid(child, None).map_err(io::Error::from)?;
            mapped?;
            read?;
            if !matches!(status, WaitStatus::Exited(_, 0)) {
                return Err(HelperError::Ended(how_it_ended(status)));
            }
            serde_json::from_slice(&bytes).map_err(|e| HelperError::Io(io::Error::other(e)))
        }
    }
}

/// How a helper that did not exit with 0 ended, for the one line that says so (a helper killed
/// by the OOM killer or a stray `kill -9` was told as `Signaled(Pid(7), SIGKILL, false)`).
fn how_it_ended(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(pid, code) => format!("(pid {pid}) exited with code {code}"),
        WaitStatus::Signaled(pid, signal, _) => format!("(pid {pid}) was killed by {signal}"),
        other => format!("ended with {other:?}"),
    }
}

/// Creates a process running `main` with `flags`, a child of this process (as
/// [`sys::clone_process`] makes it), after `join` has entered namespaces in a forked joiner:
/// joining a user namespace is refused to a multithreaded process and would change rsafe's own
/// credentials, so the joiner does it and ends. `join`'s `Err` is the whole error message.
/// Call with rsafe single-threaded.
pub fn clone_after(
    join: impl FnOnce() -> Result<(), String>,
    flags: libc::c_int,
    main: Box<dyn FnOnce() -> i32>,
) -> io::Result<nix::unistd::Pid> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: rsafe is single-threaded here (the caller's contract), so the forked joiner is a
    // complete copy of it; the joiner leaves only through `_exit`.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => {
            drop(write);
            let _ = waitpid(child, None);
            // One short answer (atomic in a pipe). Not read to the end: the container's first
            // process holds a copy of the write end until its `execve` closes it.
            let mut buf = [0u8; 512];
            let n = std::fs::File::from(read).read(&mut buf)?;
            let answer = String::from_utf8_lossy(&buf[..n]);
            match answer.strip_prefix("pid ").map(str::parse::<i32>) {
                Some(Ok(pid)) => Ok(nix::unistd::Pid::from_raw(pid)),
                _ if answer.is_empty() => Err(io::Error::other("the joining process ended")),
                _ => Err(io::Error::other(answer.into_owned())),
            }
        }
        ForkResult::Child => {
            drop(read);
            let said = join()
                .and_then(|()| {
                    sys::clone_process(flags | libc::CLONE_PARENT, main)
                        .map_err(|e| format!("create the container's first process: {e}"))
                })
                .map_or_else(|e| e, |pid| format!("pid {pid}"));
            let _ = std::fs::File::from(write).write_all(said.as_bytes());
            // SAFETY: ends the forked joiner without running the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
    }
}

/// The helper's work is rsafe's: a killed rsafe takes its helper along instead of leaving it
/// to run on unseen (a half-done extraction is swept by the next one). Armed after any change
/// of credentials, which clears it.
pub(super) fn die_with(parent: nix::unistd::Pid) -> Result<(), String> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| format!("set the parent-death signal: {e}"))?;
    if nix::unistd::getppid() != parent {
        return Err("rsafe ended before its helper started".to_string());
    }
    Ok(())
}

/// Child side: new user namespace, tell the parent, wait for the maps, become its root.
pub(super) fn enter_user_namespace(ready: OwnedFd, go: OwnedFd) -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
    std::fs::File::from(ready)
        .write_all(b"r")
        .map_err(|e| e.to_string())?;
    let mut byte = [0u8; 1];
    match std::fs::File::from(go).read(&mut byte) {
        Ok(1) => {}
        _ => return Err("the id maps were not written".to_string()),
    }
    let (uid, gid) = (Uid::from_raw(0), Gid::from_raw(0));
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("setresgid(0): {e}"))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("setresuid(0): {e}"))?;
    Ok(())
}

/// Parent side: wait for the child's namespace, write its maps, let it go on. On failure the
/// child is left to find its `go` pipe closed.
pub(super) fn map_child(
    idmap: &IdMap,
    pid: i32,
    ready: OwnedFd,
    go: OwnedFd,
) -> Result<(), HelperError> {
    let mut byte = [0u8; 1];
    match std::fs::File::from(ready).read(&mut byte) {
        Ok(1) => {}
        _ => {
            return Err(HelperError::UserNamespace(
                "the helper did not start".into(),
            ));
        }
    }
    idmap
        .write(pid)
        .map_err(|e| HelperError::UserNamespace(e.to_string()))?;
    std::fs::File::from(go).write_all(b"g")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    // Forking needs a single-threaded process, which a test harness is not: these helpers are
    // exercised through the real binary (tests/run.rs: images for a rootless user with
    // subordinate ids, --rm of files owned by them).
    use super::*;

    #[test]
    fn refuses_to_fork_a_multithreaded_process() {
        let _other = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(2)));
        let err = in_subprocess(|| Ok(1u8)).unwrap_err();
        assert!(matches!(err, HelperError::Threads(n) if n > 1), "{err}");
    }
}
