//! rsafe's side of the learning filter: a thread that receives each notification, records it
//! ([`super::observe`]) and lets the syscall continue (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`):
//! the kernel then runs it exactly as it would have without the learning filter.
//!
//! Memory is read before answering, while the caller is blocked in the syscall; the
//! notification id is checked afterwards (`SECCOMP_IOCTL_NOTIF_ID_VALID`), so what was read
//! belongs to that call and not to a process that reused its pid. The path read may still
//! differ from the one the kernel uses if another thread rewrites it meanwhile: see the
//! module documentation of [`super`] on why that never weakens confinement.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use libseccomp::{ScmpArch, ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags, notify_id_valid};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::Recorder;
use super::observe::{self, Call, ProcCaller};

/// The running supervisor thread.
pub struct Supervisor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// Starts answering notifications from `listener` into `recorder`.
    pub fn spawn(listener: OwnedFd, recorder: Recorder) -> std::io::Result<Supervisor> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rsafe-learn".into())
            .spawn(move || serve(&listener, &recorder, &flag))?;
        Ok(Supervisor {
            stop,
            thread: Some(thread),
        })
    }

    /// Waits for the thread: it ends when no process uses the filter any more (the container
    /// ended), or promptly once told to stop.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(listener: &OwnedFd, recorder: &Recorder, stop: &AtomicBool) {
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) if stop.load(Ordering::Relaxed) => return,
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if revents.contains(PollFlags::POLLIN) {
            answer(listener.as_raw_fd(), recorder);
        } else if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            // Every process that had the filter is gone.
            return;
        }
    }
}

/// Receives one notification, records it, and lets the call continue.
fn answer(fd: i32, recorder: &Recorder) {
    let Ok(req) = ScmpNotifReq::receive(fd) else {
        // The caller died (or was interrupted) between poll and receive.
        return;
    };
    let name = req
        .data
        .syscall
        .get_name_by_arch(ScmpArch::X8664)
        .unwrap_or_else(|_| format!("syscall {}", req.data.syscall.as_raw_syscall()));
    let call = Call {
        nr: i64::from(req.data.syscall.as_raw_syscall()),
        args: req.data.args,
    };
    let mut seen = super::Observed::default();
    if req.data.arch == ScmpArch::X8664 {
        let caller = ProcCaller::open(req.pid);
        observe::record(call, &caller, &mut seen);
    }
    // Only now is it known that the memory read was the caller's, during this call.
    let valid = notify_id_valid(fd, req.id).is_ok();
    {
        let mut all = recorder.lock();
        all.notifications += 1;
        all.syscalls.insert(name);
        if valid {
            merge(&mut all, seen);
        }
    }
    let resp = ScmpNotifResp::new_continue(req.id, ScmpNotifRespFlags::CONTINUE);
    let _ = resp.respond(fd);
}

/// Adds one call's observations to the run's.
fn merge(all: &mut super::Observed, one: super::Observed) {
    for (path, access) in one.paths {
        all.add_path(path, access);
    }
    all.tcp_bind.extend(one.tcp_bind);
    all.tcp_connect.extend(one.tcp_connect);
    all.raw_socket |= one.raw_socket;
    all.signalled_others |= one.signalled_others;
}
