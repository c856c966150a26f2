//! The denial reporter: under `rsafe-runtime`, a learned policy named by the bundle
//! (`rsafe.policy=NAME` with `[seccomp] report_denials = true`) names its denials as `rsafe
//! run` does (`rsafe: denied: mkdir /tmp/made (not in policy)`, `rsafe: denied: openat
//! /etc/shadow (not in policy)`), where the workload writes its own errors (its stderr, which
//! the first process sends with its listener: a pipe of the caller's, or the container's
//! terminal with `process.terminal`) and in the `--log` file.
//!
//! ```text
//! rsafe-runtime create                    reporter (fork)          container's first process
//! filter: policy's, notifying, + bundle's ─────────────────────────▶ Seccomp{filter}
//!                              ◀───────────────────────────────────  Ready
//! fork ─────────────────────▶ setsid, stdio 0/1 → /dev/null,
//! cgroup.procs, record         other fds closed, caps dropped,
//!   (reporter pid + start)     no_new_privs; waits on the channel
//! exit 0                                                            … start: load filter,
//!                             ◀──────────── Learning [+ listener, stderr] (sendmsg), execve
//!                             answers: EPERM + line for a denial,
//!                               CONTINUE (+ line) for a file call
//!                             POLLHUP: no process has the filter ─▶ exit
//! ```
//!
//! Why a fork of `create` and not a re-exec: the fork already holds what it needs, the
//! parent's end of the channel the container's first process sends its listener on (that
//! process is `create`'s child and sends it on the channel it already has, from the same code
//! as under `rsafe run`: [`crate::runtime::exec`]) and the landlock rules resolved from the
//! bundle and the policy ([`FileDenials`]); a re-exec would have to pass both through a new
//! command line and parse them again. `create` is single-threaded when it forks (checked).
//! The fork is made after the container said Ready, so it is the container's sibling, never
//! its parent (the caller, conmon or the shim, is the container's parent or subreaper, and
//! reaps the reporter too); when `create` exits both are the caller's.
//!
//! What the reporter may do, and no more: it runs in a session of its own, with `/dev/null` as
//! stdin and stdout (conmon and the shim wait for end-of-file on the container's stdout; the
//! container's stderr, which it writes, is the log they copy, not waited on), every other
//! descriptor closed but the channel and the log file, `no_new_privs`, and as root only
//! CAP_SYS_PTRACE (to read a notified call's path from `/proc/PID/mem`) and
//! CAP_DAC_READ_SEARCH (to resolve that path below `/proc/PID/root` as `rsafe run`'s
//! supervisor does); rootless it has no capability to drop. It stays in the host's user
//! namespace: reading another process's memory needs the ptrace right over it, which an owner
//! of the container's user namespace has and a process inside it would not. It has no seccomp
//! filter of its own: what it runs is rsafe's answering loop on bytes it reads as a path,
//! never code or data from the container to execute, and a filter missing one of the calls
//! std, libseccomp and `/proc` parsing make would leave the workload's notified calls waiting.
//! It ignores SIGTERM, SIGINT, SIGHUP and SIGQUIT (a `kill --all ID TERM` is for the workload,
//! which may survive it and still needs its answers); SIGKILL ends it.
//!
//! `rsafe-runtime exec` into such a container gives its process the same filter and hands
//! the listener it sends back, with the file calls it notifies and exec's stderr, over
//! `denials.sock` in the container's directory ([`connect`], [`hand_over`]); the reporter
//! answers each on a thread of its own, its lines on that stderr. A reporter that is gone
//! leaves `exec` a filter that does not notify (EPERM, never ENOSYS).
//!
//! It never outlives the container: it ends when the listener reports POLLHUP, which the
//! kernel sets once no task uses the filter (`seccomp_notify_poll`: `if
//! (refcount_read(&filter->users) == 0) ret |= EPOLLHUP;`, since Linux 5.10). A task drops
//! its use in `seccomp_filter_release`, which 5.10 called when the task was reaped and newer
//! kernels call as it exits (with `PF_EXITING` set): on this host's 6.18 the reporter was
//! seen gone while the container's exited process was still a zombie, so it does not wait
//! for the caller to reap. It also ends at end-of-file on the channel (the container's first
//! process died before `execve`). It is in the container's cgroup when there is one (so
//! `kill --all ID KILL` reaches it) and recorded with its pid and start time, so `delete`
//! kills it, whatever its cgroup ([`crate::runtime::signal`]'s identity check: never a reused
//! pid). If it is killed, the kernel fails the workload's notified calls with ENOSYS: denied
//! calls and the file calls the policy allows alike (the same accepted behaviour as a killed
//! `rsafe run` monitor: never more than the policy).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::ForkResult;

use super::OciError;
use super::bundle::Bundle;
use super::state::{ContainerDir, Record, rfc3339_now};
use crate::runtime::cgroups::Cgroup;
use crate::runtime::channel::{Channel, ChannelError, Message};
use crate::runtime::landlock::FsAccess;
use crate::runtime::learn::paths::{FileDenials, FileRules};
use crate::runtime::learn::supervisor::answer_denials;
use crate::runtime::seccomp::{CompiledFilter, FilterCache, SeccompProfile};
use crate::runtime::signal::FirstProcess;
use crate::runtime::spec::Confinement;
use crate::runtime::sys;

/// Where the reporter's lines go besides the container's stderr: `--log FILE`, as runc's
/// warnings (`{"level":"warning","msg":…,"time":…}` with `--log-format json`), so that the
/// shim's or conmon's log of the runtime has them too.
#[derive(Debug, Clone)]
pub struct LogTarget {
    pub path: PathBuf,
    pub json: bool,
}

/// The socket in the container's directory on which `rsafe-runtime exec` hands the reporter
/// an exec'd process's listener ([`hand_over`]).
const EXEC_SOCKET: &str = "denials.sock";

/// The reporter as `create` records it: `delete` kills it if it still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReporterRecord {
    pub pid: i32,
    /// Clock ticks after boot: a reused pid is not the reporter.
    pub start_time: u64,
}

impl ReporterRecord {
    /// The process, for [`crate::runtime::signal`]'s identity-checked kill.
    pub fn process(self) -> FirstProcess {
        FirstProcess {
            pid: self.pid,
            start: self.start_time,
        }
    }
}

/// The container's filter, and what a reporter needs when it reports denials.
pub(super) struct ContainerFilter {
    pub filter: CompiledFilter,
    /// Some when the filter reports denials: the file calls it also notifies (None: none).
    pub reports: Option<Option<FileDenials>>,
    /// Why a policy that says `report_denials = true` does not report here.
    pub why_not: Option<String>,
}

/// The container's seccomp filter: the bundle's profile with rsafe's floor and a named
/// policy's profile stacked on it (a call must pass every one). When the named policy says
/// `report_denials = true` and its profile can report ([`CompiledFilter::why_not_reporting`]),
/// the policy's own program goes first and notifies its denials, and the file calls landlock
/// may refuse ([`FileDenials`]), as under `rsafe run`; every other verdict is the same.
///
/// A bundle with its own seccomp agent (`linux.seccomp.listenerPath`) keeps its agent, and the
/// policy's denials are only the workload's EPERM and EACCES (said in `state` and the log):
/// the reporter answers the file calls it predicts with CONTINUE, which would skip the agent's
/// filter for the calls both notify (the kernel delivers a notification to one listener).
pub(super) fn container_filter(
    state_root: &Path,
    bundle: &Bundle,
    confinement: &Confinement,
) -> Result<ContainerFilter, OciError> {
    let floor: Vec<_> = bundle.floor_seccomp.iter().collect();
    let named = bundle.policy.as_ref().filter(|p| p.policy.report_denials);
    let Some(named) = named else {
        let policy = bundle.policy.as_ref().map(|p| &p.policy.seccomp);
        let all: Vec<_> = floor.iter().copied().chain(policy).collect();
        return Ok(ContainerFilter {
            filter: super::compile_filter(state_root, confinement, &all)?,
            reports: None,
            why_not: None,
        });
    };
    let not_reported = |why: String| {
        Some(format!(
            "rsafe.policy={}: report_denials: {why}; denials are not reported",
            named.name
        ))
    };
    if let Some(n) = &bundle.seccomp_notify {
        let all: Vec<_> = floor
            .iter()
            .copied()
            .chain([&named.policy.seccomp])
            .collect();
        return Ok(ContainerFilter {
            filter: super::compile_filter(state_root, confinement, &all)?,
            reports: None,
            why_not: not_reported(format!(
                "the bundle's seccomp agent (linux.seccomp.listenerPath {}) answers its notifications",
                n.listener_path.display()
            )),
        });
    }
    let fs = super::child::landlock_access(bundle);
    let (filter, files) =
        reporting_stack(state_root, confinement, &floor, &named.policy.seccomp, &fs)?;
    Ok(match files {
        Ok(files) => ContainerFilter {
            filter,
            reports: Some(files),
            why_not: None,
        },
        Err(why) => ContainerFilter {
            filter,
            reports: None,
            why_not: not_reported(why),
        },
    })
}

/// The named policy's profile first, notifying its denials and the file calls landlock may
/// refuse, with the bundle's filter and `floor` stacked after it; or, when the profile cannot
/// report ([`CompiledFilter::why_not_reporting`]), the same stack without notifications and
/// why.
fn reporting_stack(
    state_root: &Path,
    confinement: &Confinement,
    floor: &[&SeccompProfile],
    policy: &SeccompProfile,
    fs: &FsAccess,
) -> Result<(CompiledFilter, Result<Option<FileDenials>, String>), OciError> {
    let base = super::compile_filter(state_root, confinement, floor)?;
    let cache = FilterCache::in_store(&state_root.join(".cache"));
    let (policy, _) = cache.get_or_compile(policy, &confinement.capabilities)?;
    let filter = policy.stacked(base);
    if let Some(why) = filter.why_not_reporting() {
        return Ok((filter, Err(why)));
    }
    let (filter, files) =
        FileDenials::prepare(filter.notifying_denials(), fs, &confinement.landlock);
    Ok((filter, Ok(files)))
}

/// The filter of a process `rsafe-runtime exec` starts in a container whose reporter runs:
/// the container's, notifying as its first process's does, and the file calls it notifies
/// (the reporter gets them with the listener: [`hand_over`]). None for the calls when it
/// cannot report: then its denials are its EPERM and EACCES only.
pub(super) fn exec_filter(
    state_root: &Path,
    record: &Record,
    confinement: &Confinement,
) -> Result<(CompiledFilter, Option<Vec<i64>>), OciError> {
    let floor: Vec<_> = record.floor_seccomp.iter().collect();
    let Some(policy) = &record.policy_seccomp else {
        return Ok((
            super::compile_filter(state_root, confinement, &floor)?,
            None,
        ));
    };
    let (filter, files) =
        reporting_stack(state_root, confinement, &floor, policy, &record.landlock_fs)?;
    let calls = files.ok().map(|f| f.map(|f| f.calls).unwrap_or_default());
    Ok((filter, calls))
}

/// Connects to the reporter of the container in `dir`, before its exec'd process starts: a
/// reporter that is gone (killed) is an error, and the process then gets a filter that does
/// not notify.
pub(super) fn connect(dir: &ContainerDir) -> io::Result<UnixStream> {
    dir.connect_socket(EXEC_SOCKET)
}

/// Hands an exec'd process's listener to the reporter, with the file calls its filter
/// notifies and where its lines go: the process's own stderr as it sent it (its terminal
/// with `--tty`), else this process's stderr.
pub(super) fn hand_over(
    conn: &UnixStream,
    listener: &OwnedFd,
    stderr: Option<&OwnedFd>,
    calls: &[i64],
) -> io::Result<()> {
    let payload = serde_json::to_vec(calls).map_err(io::Error::other)?;
    let own = io::stderr();
    let stderr = stderr.map_or(own.as_fd(), |e| e.as_fd());
    crate::runtime::fdpass::send_fds(conn, &payload, &[listener.as_fd(), stderr])
}

/// Starts the reporter for container `id`: a fork of this (single-threaded) process that
/// keeps `channel` (the parent's end of the container's channel) and answers the listener
/// that comes on it. It is moved into `cgroup` when there is one.
pub(super) fn spawn(
    dir: &ContainerDir,
    channel: Channel,
    files: Option<FileDenials>,
    log: Option<&LogTarget>,
    cgroup: Option<&Cgroup>,
) -> Result<ReporterRecord, OciError> {
    let io_err = |what: &str| {
        let what = format!("denial reporter: {what}");
        move |source: io::Error| OciError::Io { what, source }
    };
    // As the runtime's own log: a file that cannot be opened is left out.
    let log = log.and_then(|l| {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&l.path)
            .ok()?;
        Some((file, l.json))
    });
    // Only this user may hand it a listener (the directory is 0711, the socket 0600, and the
    // reporter checks the peer's uid).
    let execs = dir
        .bind_socket(EXEC_SOCKET)
        .map_err(io_err("exec socket"))?;
    let path = dir.path.join(EXEC_SOCKET);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io_err("exec socket"))?;
    if sys::thread_count().map_err(io_err("count threads"))? != 1 {
        return Err(OciError::Invalid(
            "rsafe-runtime has several threads before the denial reporter; this is a bug"
                .to_string(),
        ));
    }
    let title = format!("rsafe-runtime: denial reporter of {}", dir.id);
    // SAFETY: this process is single-threaded (checked above), so the child may run any code;
    // it never returns into `create` (it exits), so nothing of the parent's is dropped twice.
    match unsafe { nix::unistd::fork() }.map_err(|e| io_err("fork")(e.into()))? {
        ForkResult::Child => {
            let code = reporter_main(&title, channel, execs, files, log);
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            drop((channel, execs));
            // Killed and reaped if it cannot be placed and recorded.
            let mut guard = crate::runtime::launch::ChildGuard::new(child);
            if let Some(cg) = cgroup {
                super::cgroup::add(cg, child.as_raw())?;
            }
            let start_time = crate::runtime::state::process_start_time(child.as_raw())
                .ok_or_else(|| OciError::State("the denial reporter ended at once".into()))?;
            guard.disarm();
            Ok(ReporterRecord {
                pid: child.as_raw(),
                start_time,
            })
        }
    }
}

/// The reporter's life: detached and narrowed, it waits for the listener, then answers it
/// until no process uses the filter.
fn reporter_main(
    title: &str,
    channel: Channel,
    execs: UnixListener,
    files: Option<FileDenials>,
    log: Option<(File, bool)>,
) -> i32 {
    let keep: Vec<RawFd> = [
        Some(channel.as_fd().as_raw_fd()),
        Some(execs.as_raw_fd()),
        log.as_ref().map(|l| l.0.as_raw_fd()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Err(e) = narrow(title, &keep) {
        let _ = writeln!(io::stderr(), "rsafe-runtime: denial reporter: {e}");
        return 125;
    }
    let Some((listener, workload_err)) = wait_for_listener(&channel) else {
        return 0;
    };
    drop(channel);
    let rules = files.as_ref().map(|f| f.rules.clone());
    let exec_log = log
        .as_ref()
        .and_then(|(f, json)| Some((f.try_clone().ok()?, *json)));
    let _ = std::thread::Builder::new()
        .name("rsafe-exec-denials".into())
        .spawn(move || serve_execs(&execs, rules, exec_log));
    let err = match workload_err {
        Some(err) => err,
        None => match io::stderr().as_fd().try_clone_to_owned() {
            Ok(err) => err,
            Err(_) => return 125,
        },
    };
    let mut out = Lines {
        err: File::from(err),
        log,
    };
    answer_denials(&listener, files, &AtomicBool::new(false), &mut out);
    // Its exec'd processes' answers end with it: they are in its pid namespace, or are the
    // container's no more.
    0
}

/// Takes each exec'd process's listener `rsafe-runtime exec` hands over ([`hand_over`]) and
/// answers it on a thread of its own, as the first process's, with its lines on that
/// process's stderr and in the log.
fn serve_execs(socket: &UnixListener, rules: Option<FileRules>, log: Option<(File, bool)>) {
    let me = nix::unistd::geteuid().as_raw();
    for conn in socket.incoming() {
        let Ok(conn) = conn else { continue };
        let peer = nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials);
        if !peer.is_ok_and(|c| c.uid() == me) {
            continue;
        }
        let Ok((calls, listener, err)) = receive(&conn) else {
            continue;
        };
        let files = match (&rules, calls.is_empty()) {
            (Some(rules), false) => Some(FileDenials {
                calls,
                rules: rules.clone(),
            }),
            _ => None,
        };
        let log = log
            .as_ref()
            .and_then(|(f, json)| Some((f.try_clone().ok()?, *json)));
        let _ = std::thread::Builder::new()
            .name("rsafe-exec-denials".into())
            .spawn(move || {
                let mut out = Lines {
                    err: File::from(err),
                    log,
                };
                answer_denials(&listener, files, &AtomicBool::new(false), &mut out);
            });
    }
}

/// One hand-over: the file calls (JSON), the listener and the stderr.
fn receive(conn: &UnixStream) -> io::Result<(Vec<i64>, OwnedFd, OwnedFd)> {
    let mut buf = vec![0u8; 4096];
    let (len, fds) = crate::runtime::fdpass::recv_fds(conn, &mut buf, 2)?;
    let calls: Vec<i64> = serde_json::from_slice(&buf[..len]).map_err(io::Error::other)?;
    let mut fds = fds.into_iter();
    match (fds.next(), fds.next()) {
        (Some(listener), Some(err)) => Ok((calls, listener, err)),
        _ => Err(io::Error::other("a hand-over without its two descriptors")),
    }
}

/// What the reporter gives up before it waits (see the module documentation).
fn narrow(title: &str, keep: &[RawFd]) -> io::Result<()> {
    nix::unistd::setsid()?;
    let _ = sys::scrub_process_memory(title);
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGPIPE,
    ] {
        // SAFETY: SIG_IGN installs no handler code; nothing runs on delivery.
        unsafe { signal(sig, SigHandler::SigIgn) }?;
    }
    sys::null_stdio(false)?;
    close_all_but(keep)?;
    if nix::unistd::geteuid().is_root() {
        use ::caps::Capability;
        crate::runtime::caps::apply(&[Capability::CAP_SYS_PTRACE, Capability::CAP_DAC_READ_SEARCH])
            .map_err(io::Error::other)?;
    }
    crate::runtime::caps::set_no_new_privs().map_err(io::Error::other)?;
    Ok(())
}

/// Closes every descriptor above stdio but `keep` (the parent's descriptors this fork
/// inherited: the bundle's files, the start socket, a console connection).
fn close_all_but(keep: &[RawFd]) -> io::Result<()> {
    let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for fd in open.into_iter().filter(|fd| *fd > 2 && !keep.contains(fd)) {
        // The directory's own descriptor is already closed: EBADF is expected once.
        let _ = nix::unistd::close(fd);
    }
    Ok(())
}

/// The listener the container's first process sends before `execve` (`Learning`, as to `rsafe
/// run`), with the process's stderr, where the lines go (its terminal with `process.terminal`,
/// which this process's stderr is not); the other messages on the way (what was enforced, a
/// failure) are not the reporter's. None at end-of-file: the process died first, or loaded no
/// reporting filter.
fn wait_for_listener(channel: &Channel) -> Option<(OwnedFd, Option<OwnedFd>)> {
    loop {
        match channel.recv() {
            Ok(Some((Message::Learning { .. }, fds))) => {
                let mut fds = fds.into_iter();
                return Some((fds.next()?, fds.next()));
            }
            Ok(Some(_)) | Err(ChannelError::Malformed(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Each line to the process's stderr, and to the `--log` file as a warning.
struct Lines {
    err: File,
    log: Option<(File, bool)>,
}

impl Write for Lines {
    /// One call per line ([`answer_denials`] writes a whole line at once): it is written
    /// whole, and a closed stderr or log loses the line, never the answer.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = self.err.write_all(buf);
        if let Some((file, json)) = &mut self.log {
            let _ = file.write_all(log_line(buf, *json, &rfc3339_now()).as_bytes());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reported line as a line of the runtime's log: runc's JSON shape, or rsafe-runtime's text.
fn log_line(line: &[u8], json: bool, time: &str) -> String {
    let text = String::from_utf8_lossy(line);
    let msg = text.trim_end_matches('\n');
    match json {
        true => format!(
            "{}\n",
            serde_json::json!({"level": "warning", "msg": msg, "time": time})
        ),
        false => format!("{time} warning: {msg}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_over_carries_the_calls_the_listener_and_the_stderr() {
        let (exec_end, reporter_end) = UnixStream::pair().unwrap();
        let listener: OwnedFd = File::open("/dev/null").unwrap().into();
        hand_over(
            &exec_end,
            &listener,
            None,
            &[libc::SYS_openat, libc::SYS_mkdir],
        )
        .unwrap();
        let (calls, got, err) = receive(&reporter_end).unwrap();
        assert_eq!(calls, vec![libc::SYS_openat, libc::SYS_mkdir]);
        let same = |a: std::os::fd::BorrowedFd<'_>, b: std::os::fd::BorrowedFd<'_>| {
            let (a, b) = (rustix::fs::fstat(a).unwrap(), rustix::fs::fstat(b).unwrap());
            (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
        };
        assert!(same(got.as_fd(), listener.as_fd()));
        assert!(same(err.as_fd(), io::stderr().as_fd()));
        // The process's own stderr (its terminal) goes in place of this one's.
        let terminal: OwnedFd = File::open("/dev/zero").unwrap().into();
        hand_over(&exec_end, &listener, Some(&terminal), &[]).unwrap();
        let (_, _, err) = receive(&reporter_end).unwrap();
        assert!(same(err.as_fd(), terminal.as_fd()));
        // Without its two descriptors, nothing is taken.
        exec_end.try_clone().unwrap().write_all(b"[]").unwrap();
        assert!(receive(&reporter_end).is_err());
    }

    #[test]
    fn a_line_goes_to_the_log_as_runcs_warning() {
        let line = b"rsafe: denied: mkdir /tmp/made (not in policy)\n";
        let json = log_line(line, true, "2026-12-07T14:00:00Z");
        assert!(json.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        assert_eq!(v["level"], "warning");
        assert_eq!(v["msg"], "rsafe: denied: mkdir /tmp/made (not in policy)");
        assert_eq!(v["time"], "2026-12-07T14:00:00Z");
        assert_eq!(
            log_line(line, false, "T"),
            "T warning: rsafe: denied: mkdir /tmp/made (not in policy)\n"
        );
        // An escaped path stays one line in either format.
        let odd = b"rsafe: denied: openat /a\\nb (not in policy)\n";
        assert_eq!(log_line(odd, true, "T").lines().count(), 1);
    }
}
