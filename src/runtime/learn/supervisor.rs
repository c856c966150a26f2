//! rsafe's side of the learning filter: a thread that receives each notification, records it
//! ([`super::observe`]) and lets the syscall continue (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`):
//! the kernel then runs it exactly as it would have without the learning filter.
//!
//! The same thread answers a learned policy's denials ([`Supervisor::spawn_reporting`]): the
//! policy's filter notifies where it would have refused, and the answer is that refusal
//! (EPERM), never CONTINUE; what it adds is one line on stderr per syscall name (per
//! argument class for the calls `[seccomp.args]` restricts: `socket AF_INET/SOCK_STREAM`).
//! The filter also notifies the file calls its profile allows ([`super::paths`]): those are
//! answered CONTINUE, the profile's own verdict, after a line for each path landlock will
//! refuse (`rsafe: denied: openat /etc/shadow (not in policy)`); landlock, not rsafe, refuses
//! them.
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
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use super::Recorder;
use super::observe::{self, Call, ProcCaller};
use super::paths::{self, FileDenials, FileRules, Resolved};
use crate::runtime::seccomp::args;

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
            .spawn(move || serve(&listener, &flag, |fd| answer(fd, &recorder)))?;
        Ok(Supervisor {
            stop,
            thread: Some(thread),
        })
    }

    /// Starts answering a learned policy's denials (the filter of
    /// [`CompiledFilter::notifying_denials`]): each call is refused with EPERM, as the
    /// policy's default would, and the first of each syscall name is reported on stderr
    /// (`rsafe: denied: mkdir /tmp/x (not in policy)`). A denial is never answered
    /// CONTINUE: the workload gets nothing its policy does not allow, and if this thread is
    /// gone the kernel fails the call with ENOSYS.
    ///
    /// With `files` ([`FileDenials::prepare`]), the file calls the profile allows are notified
    /// too: each is answered CONTINUE (what the profile says) after its path was checked
    /// against the landlock rules, and a path landlock will refuse is reported, once per call
    /// name and path (`rsafe: denied: openat /root/shadow (not in policy)`). The kernel's
    /// landlock still refuses it: the line is a prediction, wrong at worst. If this thread is
    /// gone those calls fail with ENOSYS too, as the denials do.
    ///
    /// [`CompiledFilter::notifying_denials`]: crate::runtime::seccomp::CompiledFilter::notifying_denials
    pub fn spawn_reporting(
        listener: OwnedFd,
        files: Option<FileDenials>,
    ) -> std::io::Result<Supervisor> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rsafe-denials".into())
            .spawn(move || answer_denials(&listener, files, &flag, &mut std::io::stderr()))?;
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

/// Answers a reporting filter's notifications on this thread, as [`Supervisor::spawn_reporting`]
/// describes, until every process with the filter is gone or `stop` is set: each line (one
/// `write_all` per line) goes to `out`. Also the loop of `rsafe-runtime`'s denial reporter
/// ([`crate::runtime::oci::reporter`]), whose lines go to the container's stderr and log.
pub fn answer_denials(
    listener: &OwnedFd,
    files: Option<FileDenials>,
    stop: &AtomicBool,
    out: &mut impl Write,
) {
    let mut reported = Reported::default();
    let mut files = files.map(Files::new);
    serve(listener, stop, |fd| {
        report(fd, &mut reported, files.as_mut(), out);
    });
}

/// Polls `listener` and hands each notification's descriptor to `answer`, until every
/// process with the filter is gone or `stop` is set.
fn serve(listener: &OwnedFd, stop: &AtomicBool, mut answer: impl FnMut(i32)) {
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
            answer(listener.as_raw_fd());
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
    all.sockets.extend(one.sockets);
    all.socketpairs.extend(one.socketpairs);
    all.ioctls.extend(one.ioctls);
    all.namespaces |= one.namespaces;
    all.signalled_others |= one.signalled_others;
}

/// The syscall's name in its caller's ABI (`syscall 451` for one libseccomp does not know).
fn syscall_name(req: &ScmpNotifReq) -> String {
    req.data
        .syscall
        .get_name_by_arch(req.data.arch)
        .unwrap_or_else(|_| format!("syscall {}", req.data.syscall.as_raw_syscall()))
}

/// The syscall's name, and for the calls a policy restricts by argument class the class
/// (`socket AF_PACKET/SOCK_RAW`, `ioctl TIOCSTI`, `unshare CLONE_NEWUSER`): each class is
/// reported once, as a name is.
fn denied_name(req: &ScmpNotifReq) -> String {
    let nr = i64::from(req.data.syscall.as_raw_syscall());
    with_class(syscall_name(req), req.data.arch, nr, &req.data.args)
}

/// `name` followed by the class of its call (x86_64 only: the numbers are its ABI's).
fn with_class(name: String, arch: ScmpArch, nr: i64, call_args: &[u64; 6]) -> String {
    if arch != ScmpArch::X8664 {
        return name;
    }
    match args::describe_call(nr, call_args) {
        Some(class) => format!("{name} {class}"),
        None => name,
    }
}

/// At most this many distinct names are reported; then one line says the rest are not: a
/// workload trying every syscall cannot flood stderr.
const MAX_REPORTED: usize = 64;
/// A path longer than this is cut (`…`): enough to tell which file, short enough for a line.
const MAX_PATH_SHOWN: usize = 96;

/// The syscall names already reported in this run.
#[derive(Debug, Default)]
struct Reported {
    names: BTreeSet<String>,
    cut: bool,
}

impl Reported {
    /// The line for a denial of `name` (with the path it was given, for file calls), if it is
    /// the first of its name. Never any other argument: buffers, flags and addresses may hold
    /// secrets or say nothing to a reader.
    fn line(&mut self, name: &str, path: Option<&Path>) -> Option<String> {
        if self.cut || self.names.contains(name) {
            return None;
        }
        if self.names.len() >= MAX_REPORTED {
            self.cut = true;
            return Some(format!(
                "rsafe: denied: more than {MAX_REPORTED} syscall names and paths not in policy; no more are reported"
            ));
        }
        self.names.insert(name.to_string());
        Some(match path {
            Some(p) => format!("rsafe: denied: {name} {} (not in policy)", shown(p)),
            None => format!("rsafe: denied: {name} (not in policy)"),
        })
    }

    /// The line for a file call landlock will refuse at `path`, if it is the first for this
    /// name and path; counted with the names.
    fn path_line(&mut self, name: &str, path: &Path) -> Option<String> {
        let key = format!("{name}\0{}", path.display());
        let line = self.line(&key, None)?;
        Some(match self.cut {
            true => line, // the line saying no more are reported
            false => format!("rsafe: denied: {name} {} (not in policy)", shown(path)),
        })
    }
}

/// `path` for one line of a terminal: control characters escaped, cut to [`MAX_PATH_SHOWN`].
fn shown(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out: String = text
        .chars()
        .take(MAX_PATH_SHOWN)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if text.chars().count() > MAX_PATH_SHOWN {
        out.push('…');
    }
    out
}

/// The one path a file call names (`openat`, `execve`, `mkdir`, …), read from the caller's
/// memory as the learning supervisor reads it; None for other calls, or two paths (rename).
fn denied_path(req: &ScmpNotifReq) -> Option<std::path::PathBuf> {
    if req.data.arch != ScmpArch::X8664 {
        return None;
    }
    let call = Call {
        nr: i64::from(req.data.syscall.as_raw_syscall()),
        args: req.data.args,
    };
    let mut seen = super::Observed::default();
    observe::record(call, &ProcCaller::open(req.pid), &mut seen);
    let mut paths = seen.paths.into_keys();
    match (paths.next(), paths.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// The file calls a reporting filter notifies although its profile allows them, and the
/// landlock rules (resolved in the container at the first such call).
struct Files {
    calls: BTreeSet<i64>,
    rules: FileRules,
    resolved: Option<Resolved>,
}

impl Files {
    fn new(files: FileDenials) -> Files {
        Files {
            calls: files.calls.into_iter().collect(),
            rules: files.rules,
            resolved: None,
        }
    }
}

/// Receives one notification of a reporting filter: a file call its profile allows (with
/// `files`) is predicted and continued, anything else is a denial.
fn report(fd: i32, reported: &mut Reported, files: Option<&mut Files>, out: &mut impl Write) {
    let Ok(req) = ScmpNotifReq::receive(fd) else {
        return;
    };
    let nr = i64::from(req.data.syscall.as_raw_syscall());
    match files {
        Some(files) if req.data.arch == ScmpArch::X8664 && files.calls.contains(&nr) => {
            predict(fd, &req, files, reported, out);
        }
        _ => deny(fd, &req, reported, out),
    }
}

/// A file call the profile allows: the path landlock will refuse, if any, is reported (once
/// per name and path, and only if the notification was still valid after its memory was
/// read), and the call continues, for landlock to decide.
fn predict(
    fd: i32,
    req: &ScmpNotifReq,
    files: &mut Files,
    reported: &mut Reported,
    out: &mut impl Write,
) {
    let call = Call {
        nr: i64::from(req.data.syscall.as_raw_syscall()),
        args: req.data.args,
    };
    let caller = ProcCaller::open(req.pid);
    let root = rustix::fs::open(
        format!("/proc/{}/root", req.pid),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    );
    let refused = root.ok().and_then(|root| {
        let rules = &files.rules;
        let resolved = files
            .resolved
            .get_or_insert_with(|| rules.resolve_in(root.as_fd()));
        let needs = paths::needs(call, &caller, root.as_fd());
        resolved.refused(&needs).map(|n| n.shown.clone())
    });
    if let Some(path) = refused
        && notify_id_valid(fd, req.id).is_ok()
        && let Some(line) = reported.path_line(&syscall_name(req), &path)
    {
        let _ = out.write_all(format!("{line}\n").as_bytes());
    }
    let resp = ScmpNotifResp::new_continue(req.id, ScmpNotifRespFlags::CONTINUE);
    let _ = resp.respond(fd);
}

/// Refuses one denied call with EPERM and reports it (the first of its name). The path is
/// shown only if the notification was still valid after reading it: then it is the caller's,
/// from this call.
fn deny(fd: i32, req: &ScmpNotifReq, reported: &mut Reported, out: &mut impl Write) {
    let name = denied_name(req);
    let path = if reported.names.contains(&name) {
        None
    } else {
        denied_path(req).filter(|_| notify_id_valid(fd, req.id).is_ok())
    };
    // Said before the answer, while the caller still waits: its own error message (`mkdir:
    // can't create directory`) then comes after the line, not inside it. One write, so that
    // the line stays whole beside the workload's other processes' writes.
    if let Some(line) = reported.line(&name, path.as_deref()) {
        let _ = out.write_all(format!("{line}\n").as_bytes());
    }
    let resp = ScmpNotifResp::new_error(req.id, -libc::EPERM, ScmpNotifRespFlags::empty());
    let _ = resp.respond(fd);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_is_reported_once() {
        let mut r = Reported::default();
        assert_eq!(
            r.line("mkdir", Some(Path::new("/tmp/x"))).as_deref(),
            Some("rsafe: denied: mkdir /tmp/x (not in policy)")
        );
        assert_eq!(r.line("mkdir", Some(Path::new("/tmp/y"))), None);
        assert_eq!(r.line("mkdir", None), None);
        assert_eq!(
            r.line("unshare", None).as_deref(),
            Some("rsafe: denied: unshare (not in policy)")
        );
    }

    fn named(nr: i64, arch: ScmpArch, call_args: [u64; 6]) -> String {
        let name = libseccomp::ScmpSyscall::from(nr as i32)
            .get_name_by_arch(arch)
            .unwrap();
        with_class(name, arch, nr, &call_args)
    }

    #[test]
    fn a_restricted_call_is_named_with_its_class_and_each_class_reported_once() {
        let packet = [libc::AF_PACKET as u64, libc::SOCK_RAW as u64, 0, 0, 0, 0];
        let inet = [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0];
        let x86 = ScmpArch::X8664;
        let packet_name = named(libc::SYS_socket, x86, packet);
        assert_eq!(packet_name, "socket AF_PACKET/SOCK_RAW");
        let mut r = Reported::default();
        assert_eq!(
            r.line(&packet_name, None).as_deref(),
            Some("rsafe: denied: socket AF_PACKET/SOCK_RAW (not in policy)")
        );
        assert_eq!(r.line(&packet_name, None), None);
        let inet_name = named(libc::SYS_socket, x86, inet);
        assert_eq!(
            r.line(&inet_name, None).as_deref(),
            Some("rsafe: denied: socket AF_INET/SOCK_STREAM (not in policy)")
        );
        let newuser = [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0];
        assert_eq!(
            named(libc::SYS_unshare, x86, newuser),
            "unshare CLONE_NEWUSER"
        );
        let tty = [1, libc::TIOCSTI, 0x7fff_0000, 0, 0, 0];
        assert_eq!(named(libc::SYS_ioctl, x86, tty), "ioctl TIOCSTI");
        assert_eq!(named(libc::SYS_mkdir, x86, [0; 6]), "mkdir");
    }

    #[test]
    fn a_flood_of_names_ends_in_one_line() {
        let mut r = Reported::default();
        let lines: Vec<String> = (0..200)
            .filter_map(|i| r.line(&format!("s{i}"), None))
            .collect();
        assert_eq!(lines.len(), MAX_REPORTED + 1);
        assert!(lines[MAX_REPORTED].contains("no more are reported"));
        assert_eq!(r.line("s0", None), None);
        assert_eq!(r.line("another", None), None);
    }

    #[test]
    fn a_refused_path_is_reported_once_per_call_name_and_counted_with_the_names() {
        let mut r = Reported::default();
        let shadow = Path::new("/root/shadow");
        assert_eq!(
            r.path_line("openat", shadow).as_deref(),
            Some("rsafe: denied: openat /root/shadow (not in policy)")
        );
        assert_eq!(r.path_line("openat", shadow), None);
        assert_eq!(
            r.path_line("execve", shadow).as_deref(),
            Some("rsafe: denied: execve /root/shadow (not in policy)")
        );
        // A syscall name is not taken by a path line of the same name.
        assert_eq!(
            r.line("openat", None).as_deref(),
            Some("rsafe: denied: openat (not in policy)")
        );
        assert_eq!(
            r.path_line("openat", Path::new("/a\nb")).as_deref(),
            Some("rsafe: denied: openat /a\\nb (not in policy)")
        );
        let lines: Vec<String> = (0..100)
            .filter_map(|i| r.path_line("openat", Path::new(&format!("/f{i}"))))
            .collect();
        assert_eq!(lines.len(), MAX_REPORTED - 4 + 1);
        assert!(
            lines.last().unwrap().contains("no more are reported"),
            "{lines:?}"
        );
        assert_eq!(r.line("mkdir", None), None);
    }

    #[test]
    fn paths_are_escaped_and_cut() {
        assert_eq!(shown(Path::new("/tmp/a\nb\x1b[2J")), "/tmp/a\\nb\\u{1b}[2J");
        let long = format!("/{}", "d".repeat(300));
        let s = shown(Path::new(&long));
        assert_eq!(s.chars().count(), MAX_PATH_SHOWN + 1);
        assert!(s.ends_with('…'));
    }
}
