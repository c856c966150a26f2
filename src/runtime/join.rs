//! A new process in a running container: the one path of `rsafe exec` ([`super::enter`]) and
//! `rsafe-runtime exec` ([`super::oci::exec`]). Each caller says where the container's
//! namespaces and root come from (opened before anything changes, as a [`Target`]) and what
//! the process is ([`NewProcess`]); everything that makes it safe happens here, once: the
//! cgroup joined with host credentials, the namespaces joined in the target's order, the
//! chroot, root of the user namespace, the second fork into the pid namespace, and the
//! workload's own last steps ([`super::exec`]: user, capabilities, no_new_privs, landlock,
//! seccomp, `execve`). The two commands had a copy each, which drifted (one armed no
//! parent-death signal, one read only the first message of the channel); one copy is one
//! thing to test.
//!
//! ```text
//! caller                              joiner (caller's pid namespace)    process (container's)
//! ──────                              ───────────────────────────────    ─────────────────────
//! Target: namespaces, root (opened)
//! seccomp filter (compiled)
//! fork ─────────────────────────────▶ not dumpable, parent-death signal
//!                                     join the cgroup (host credentials)
//!                                     setns in the target's order
//!                                     chroot to the container's root,
//!                                     root of its user namespace
//!                                     fork ────────────────────────────▶ waits for the go-ahead
//!   ◀── [Caller] the process's pid ── exit                              parent-death signal
//! reap the joiner, go-ahead ───────────────────────────────────────────▶ stdio or console pty,
//!                                     [ContainerInit] a launcher in the  rlimits, umask, user,
//!                                     pid namespace forks it and exits;  notify filter, then
//!                                     the joiner reaps it, go-ahead      exec.rs: caps, nnp,
//!                                                                        landlock, seccomp
//! outcome: Failed or EOF (started) ◀─── Confined / Failed ──────────── execve (EOF = started)
//! ```
//!
//! Why this way:
//! - `setns(CLONE_NEWUSER)` needs a single-threaded process that shares no filesystem
//!   context: the joiner is a fork of single-threaded rsafe. A pid namespace is entered only
//!   by the children of whoever joins it, hence the second fork.
//! - Everything is opened before the first `setns`: after it, `/proc` is no longer the host's.
//!   Which namespaces, and in which order, is the caller's: `rsafe exec` joins the user
//!   namespace first and only namespaces it owns; host root under `rsafe-runtime` joins a
//!   pod's namespaces (owned by another user namespace) before the container's user one.
//! - The cgroup is joined while the joiner still has its host credentials (the container's
//!   root may not write to the host's cgroup tree), before the cgroup namespace.
//! - The process is not dumpable until `execve`: nothing in the container may ptrace it or
//!   open its `/proc/<pid>/{fd,exe,mem}` while it holds rsafe's memory.
//! - The parent-death signal is armed only once the process's parent is final (the joiner or
//!   the launcher reaped: armed earlier, their exit would kill it); whoever reaps them gives
//!   the go-ahead, and end-of-file without it means the caller is gone.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Gid, Pid, Uid};

use super::cgroups::{Cgroup, Fallback, Version};
use super::channel::{self, Channel, ChannelError, Message};
use super::container::parent_gone;
use super::exec::{self, Workload};
use super::idmap::IdMap;
use super::landlock::FsAccess;
use super::seccomp::CompiledFilter;
use super::spec::{Confinement, ProcessSpec};
use super::tty::WinSize;
use super::{sys, user};

/// Why the way into a container could not be started (on the caller's side; what fails in
/// the joiner or the process comes back as [`Outcome::Failed`]).
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

fn io_err(what: &str) -> impl FnOnce(Errno) -> JoinError + '_ {
    move |e| JoinError::Io {
        what: what.to_string(),
        source: e.into(),
    }
}

/// One namespace to join, opened.
pub(crate) struct Join {
    pub(crate) name: &'static str,
    pub(crate) fd: OwnedFd,
    pub(crate) flag: CloneFlags,
}

/// What the joiner enters: the container's namespaces, in the order they are joined, and its
/// root directory, all opened from the host before anything changes.
pub(crate) struct Target {
    pub(crate) namespaces: Vec<Join>,
    pub(crate) root: OwnedFd,
}

impl Target {
    /// Whether a user namespace is joined (then the joiner becomes its root).
    fn joins_user(&self) -> bool {
        self.namespaces
            .iter()
            .any(|j| j.flag == CloneFlags::CLONE_NEWUSER)
    }
}

/// Who the process's parent is once it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adoption {
    /// The caller (a subreaper), or the caller's own subreaper if it is none: the joiner
    /// forks the process and exits (`rsafe exec`, `rsafe-runtime exec [--detach]`).
    Caller,
    /// The container's init: a launcher forked in the container's pid namespace forks the
    /// process and exits, as docker keeps `exec -d` processes in the container.
    ContainerInit,
}

/// The process's standard streams, before the workload's own steps (which give it a
/// terminal of the container's devpts when its spec asks for one).
pub(crate) enum Stdio {
    /// The caller's.
    Inherit,
    /// The container's `/dev/null`: it keeps nothing of the caller's terminal or pipes.
    Null,
    /// A pty of the container's devpts whose master goes to this console socket (runc's
    /// `--console-socket`).
    Console(OwnedFd),
}

/// Whom the process runs as.
pub(crate) enum Identity {
    /// A user (name or uid, `:group`) looked up in the container's `/etc`; `None` is root.
    /// `group_add` (the container's `--group-add`, names or gids) joins the user's own
    /// supplementary groups, as docker gives them to an exec'd process.
    Name {
        user: Option<String>,
        group_add: Vec<String>,
    },
    /// Numeric ids as given (a runtime-spec `process.user`).
    Ids {
        uid: u32,
        gid: u32,
        groups: Vec<u32>,
    },
}

/// The process to run, as the caller describes it.
pub(crate) struct NewProcess<'a> {
    pub process: ProcessSpec,
    pub identity: Identity,
    pub stdio: Stdio,
    pub rlimits: Vec<(nix::sys::resource::Resource, u64, u64)>,
    pub umask: Option<u32>,
    /// The rlimit standing in for a pid limit no cgroup took.
    pub fallback: Option<Fallback>,
    pub hostname: String,
    pub window: Option<WinSize>,
    /// The container's confinement (or less: the OCI process may name fewer capabilities).
    pub confinement: &'a Confinement,
    pub landlock_fs: FsAccess,
    pub preserve_fds: u32,
    /// A seccomp filter installed before the workload's own: the OCI bundle's notified
    /// syscalls, whose listener the closure sends back to `rsafe-runtime exec` for the
    /// bundle's agent (`oci/notify.rs`).
    pub extra_filter: Option<&'a dyn Fn() -> io::Result<()>>,
    /// `rsafe exec` into a container being learned: the learning filter is stacked last
    /// ([`exec::exec_learning`]) and its listener sent on the channel ([`Step::Learning`],
    /// or the caller's session). Never for `rsafe-runtime exec`.
    pub learning: bool,
}

/// The way in: what is entered, and by whom the process is adopted.
pub(crate) struct Entry<'a> {
    /// The container's name, for messages.
    pub name: &'a str,
    pub target: Target,
    pub cgroup: Option<&'a Cgroup>,
    pub idmap: &'a IdMap,
    pub adoption: Adoption,
}

/// The process on its way: the channel it reports on, and its pid (in the caller's pid
/// namespace) with [`Adoption::Caller`], `None` when the joiner failed before forking it.
pub(crate) struct Started {
    pub chan: Channel,
    pub pid: Option<Pid>,
}

/// Forks the joiner, which enters the container and forks the process; returns once the
/// joiner is reaped and the process has its go-ahead.
pub(crate) fn start(
    entry: Entry<'_>,
    process: &NewProcess<'_>,
    filter: CompiledFilter,
) -> Result<Started, JoinError> {
    let count = sys::thread_count().map_err(|source| JoinError::Io {
        what: "count threads".into(),
        source,
    })?;
    if count != 1 {
        return Err(JoinError::Io {
            what: "fork".into(),
            source: io::Error::other("rsafe has several threads; this is a bug"),
        });
    }
    let (parent_end, child_end) = channel::pair()?;
    let (pid_in, pid_out) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io_err("pipe"))?;
    let mut go = Go::new().map_err(io_err("pipe"))?;
    let adoption = entry.adoption;
    // SAFETY: this process is single-threaded (checked above), so the child may run arbitrary
    // code; it leaves through `_exit` only.
    let joiner = match unsafe { nix::unistd::fork() }.map_err(io_err("fork"))? {
        ForkResult::Child => {
            drop((parent_end, pid_in));
            let code = joiner(entry, process, filter, go, pid_out, &child_end);
            // SAFETY: _exit ends the forked process without running rsafe's exit handlers or
            // flushing buffers it shares with rsafe.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    drop((child_end, pid_out, entry, filter));
    let pid = read_pid(pid_in);
    let _ = waitpid(joiner, None);
    // The joiner is reaped: the process's parent is final. With ContainerInit the joiner
    // gave the go-ahead itself (after reaping the launcher); this copy only closes.
    if adoption == Adoption::Caller && pid.is_some() {
        go.give();
    }
    drop(go);
    Ok(Started {
        chan: parent_end,
        pid,
    })
}

/// How the process's start ended, read from the channel to its end.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It reached `execve` (the channel closed with it).
    Started,
    /// It, or the joiner, failed: 125, or 126/127 for a command that cannot be executed or
    /// is not found.
    Failed { code: i32, message: String },
}

/// Reads the channel to its end; what the process says of its confinement (lines, then
/// warnings) goes to `confined`. A learning listener (there is none unless
/// [`NewProcess::learning`]) is dropped: its process's calls fail with ENOSYS.
pub(crate) fn outcome(
    chan: &Channel,
    confined: &mut dyn FnMut(Vec<String>, Vec<String>),
) -> Result<Outcome, ChannelError> {
    loop {
        if let Step::Done(outcome) = next_step(chan, confined)? {
            return Ok(outcome);
        }
    }
}

/// What the channel said next while the process starts.
#[derive(Debug)]
pub(crate) enum Step {
    /// The end of its start.
    Done(Outcome),
    /// A [`NewProcess::learning`] process stacked the learning filter: its listener and the
    /// program it runs (and, from a policy that reports its denials, the process's stderr,
    /// where the lines go). The process waits in its first call until someone answers.
    Learning {
        program: PathBuf,
        listener: OwnedFd,
        stderr: Option<OwnedFd>,
    },
}

/// Reads the channel up to its end or up to a learning listener; what the process says of its
/// confinement goes to `confined` on the way.
pub(crate) fn next_step(
    chan: &Channel,
    confined: &mut dyn FnMut(Vec<String>, Vec<String>),
) -> Result<Step, ChannelError> {
    loop {
        match chan.recv()? {
            None => return Ok(Step::Done(Outcome::Started)),
            Some((Message::Failed { code, message }, _)) => {
                return Ok(Step::Done(Outcome::Failed { code, message }));
            }
            Some((Message::Confined { lines, warnings }, _)) => confined(lines, warnings),
            Some((Message::Learning { program }, fds)) => {
                let mut fds = fds.into_iter();
                if let Some(listener) = fds.next() {
                    let stderr = fds.next();
                    return Ok(Step::Learning {
                        program,
                        listener,
                        stderr,
                    });
                }
            }
            Some(_) => {}
        }
    }
}

/// The process's pid, as the joiner writes it; `None` when the joiner failed before.
fn read_pid(pipe: OwnedFd) -> Option<Pid> {
    let mut buf = [0u8; 4];
    let mut file = std::fs::File::from(pipe);
    io::Read::read_exact(&mut file, &mut buf).ok()?;
    Some(Pid::from_raw(i32::from_le_bytes(buf)))
}

/// The joiner's work; returns its exit code after reporting any failure on `chan`.
fn joiner(
    entry: Entry<'_>,
    process: &NewProcess<'_>,
    filter: CompiledFilter,
    mut go: Go,
    pid_out: OwnedFd,
    chan: &Channel,
) -> i32 {
    let (name, idmap, adoption) = (entry.name, entry.idmap, entry.adoption);
    if let Err(e) = enter(entry) {
        return failed(chan, 125, &format!("cannot enter container {name}: {e}"));
    }
    if adoption == Adoption::Caller {
        // The caller gives the go-ahead once it has reaped this process.
        go.output = None;
        let pid = match fork_process(process, idmap, filter, chan, go) {
            Ok(pid) => pid,
            Err(e) => return failed(chan, 125, &format!("fork in the container: {e}")),
        };
        let _ = io::Write::write_all(
            &mut std::fs::File::from(pid_out),
            &pid.as_raw().to_le_bytes(),
        );
        return 0;
    }
    drop(pid_out);
    // SAFETY: the joiner is single-threaded (a fork of single-threaded rsafe).
    match unsafe { nix::unistd::fork() } {
        Err(e) => failed(chan, 125, &format!("fork in the container: {e}")),
        Ok(ForkResult::Child) => {
            // The launcher, in the container's pid namespace: its orphan goes to init.
            // The joiner gives the go-ahead once it has reaped this process.
            go.output = None;
            let code = match fork_process(process, idmap, filter, chan, go) {
                Ok(_) => 0,
                Err(e) => failed(chan, 125, &format!("fork in the container: {e}")),
            };
            // SAFETY: as for the joiner: no exit handlers of rsafe run in a forked process.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            let _ = waitpid(child, None);
            go.give();
            0
        }
    }
}

fn failed(chan: &Channel, code: i32, message: &str) -> i32 {
    let _ = chan.send(
        &Message::Failed {
            code,
            message: message.to_string(),
        },
        &[],
    );
    code
}

/// Into the container: not dumpable, cgroup, namespaces, root, and root of its user namespace.
fn enter(entry: Entry<'_>) -> Result<(), String> {
    let fail = |what: &str| {
        let what = what.to_string();
        move |e: Errno| format!("{what}: {e}")
    };
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| format!("make rsafe non-dumpable: {e}"))?;
    // The joiner dies with its caller, and nothing is left half-entered.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| format!("set the parent-death signal: {e}"))?;
    if let Some(cg) = entry.cgroup {
        join_cgroup(cg).map_err(|e| format!("join its cgroup: {e}"))?;
    }
    for ns in &entry.target.namespaces {
        nix::sched::setns(&ns.fd, ns.flag)
            .map_err(fail(&format!("join its {} namespace", ns.name)))?;
    }
    nix::unistd::fchdir(&entry.target.root)
        .and_then(|()| nix::unistd::chroot("."))
        .and_then(|()| nix::unistd::chdir("/"))
        .map_err(fail("enter its root"))?;
    if entry.target.joins_user() {
        become_root(entry.idmap).map_err(fail("become its root"))?;
    }
    Ok(())
}

/// Moves the calling (single-threaded) process into every directory of the container's
/// cgroup: `0` is the writer itself.
fn join_cgroup(cg: &Cgroup) -> io::Result<()> {
    for (dir, version) in &cg.dirs {
        let file = match version {
            Version::V1 => dir.join("tasks"),
            Version::V2 => dir.join("cgroup.procs"),
        };
        std::fs::write(&file, "0")
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
    }
    Ok(())
}

/// Takes uid and gid 0 of the container's user namespace just joined (the host ids kept by
/// `setns` are not mapped there), without the caller's supplementary groups where the
/// namespace allows `setgroups`.
pub(crate) fn become_root(idmap: &IdMap) -> nix::Result<()> {
    if idmap.setgroups {
        nix::unistd::setgroups(&[])?;
    }
    let (gid, uid) = (Gid::from_raw(0), Uid::from_raw(0));
    nix::unistd::setresgid(gid, gid, gid)?;
    nix::unistd::setresuid(uid, uid, uid)
}

/// Forks the process; returns its pid (in the forker's pid namespace).
fn fork_process(
    process: &NewProcess<'_>,
    idmap: &IdMap,
    filter: CompiledFilter,
    chan: &Channel,
    go: Go,
) -> Result<Pid, Errno> {
    // SAFETY: the forker is single-threaded (a fork of single-threaded rsafe).
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => {
            let code = match go.wait() {
                true => run_process(process, idmap, filter, chan),
                false => 125,
            };
            // SAFETY: as for the joiner: no exit handlers of rsafe run in a forked process.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// The process, after its go-ahead: its own steps, then the workload's ([`exec::exec`]).
/// Returns only on failure, with its exit code.
fn run_process(p: &NewProcess<'_>, idmap: &IdMap, filter: CompiledFilter, chan: &Channel) -> i32 {
    // Its parent now is final (the caller, its subreaper, or the container's init): it dies
    // with it.
    if let Err(e) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
    {
        return failed(chan, 125, &format!("set the parent-death signal: {e}"));
    }
    if parent_gone(chan) {
        return 125;
    }
    if let Err(e) = own_steps(p) {
        return failed(chan, 125, &e);
    }
    let user = match resolve_user(&p.identity) {
        Ok(user) => user,
        Err(e) => return failed(chan, 125, &e),
    };
    if let Some(install) = p.extra_filter
        && let Err(e) = install()
    {
        return failed(chan, 125, &format!("seccomp notify filter: {e}"));
    }
    let workload = Workload {
        process: &p.process,
        user: &user,
        setgroups: idmap.setgroups,
        single_id: idmap.is_single(),
        fallback: p.fallback,
        hostname: &p.hostname,
        window: p.window,
        confinement: p.confinement,
        seccomp: Some(filter),
        landlock_fs: p.landlock_fs.clone(),
        preserve_fds: p.preserve_fds,
        ulimits: &[],
    };
    let err = match p.learning {
        true => exec::exec_learning(workload, chan),
        false => exec::exec(workload, chan),
    };
    failed(chan, err.exit_code(), &err.to_string())
}

/// Stdio (or the console), rlimits and umask: what the caller asked for beyond the workload's
/// steps.
fn own_steps(p: &NewProcess<'_>) -> Result<(), String> {
    match &p.stdio {
        Stdio::Inherit => {}
        Stdio::Null => {
            sys::null_stdio(true).map_err(|e| format!("redirect output to /dev/null: {e}"))?;
        }
        Stdio::Console(socket) => {
            nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
            super::oci::child::attach_console(socket).map_err(|e| e.to_string())?;
        }
    }
    for (resource, soft, hard) in &p.rlimits {
        super::oci::child::set_rlimit(*resource, *soft, *hard).map_err(|e| e.to_string())?;
    }
    if let Some(mask) = p.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

/// The user, looked up in the container's `/etc` (the process is in its root now).
fn resolve_user(identity: &Identity) -> Result<user::ExecUser, String> {
    let etc = Path::new("/etc");
    match identity {
        Identity::Name { user, group_add } => {
            let mut user = user::resolve(user.as_deref(), etc).map_err(|e| e.to_string())?;
            user::add_groups(&mut user, group_add, etc).map_err(|e| e.to_string())?;
            Ok(user)
        }
        Identity::Ids { uid, gid, groups } => {
            let mut user =
                user::resolve(Some(&format!("{uid}:{gid}")), etc).map_err(|e| e.to_string())?;
            user.groups = groups.clone();
            Ok(user)
        }
    }
}

/// The go-ahead for the process, a pipe: its reparenting is over once the forker has been
/// reaped, and only then may it arm its parent-death signal (armed earlier, the forker's exit
/// would kill it). Whoever reaps the forker writes a byte: the caller with
/// [`Adoption::Caller`] (the joiner forks the process), the joiner with
/// [`Adoption::ContainerInit`] (the launcher does). End-of-file without a byte: the caller is
/// gone, and the process is not started.
struct Go {
    input: OwnedFd,
    output: Option<OwnedFd>,
}

impl Go {
    fn new() -> nix::Result<Go> {
        let (input, output) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        Ok(Go {
            input,
            output: Some(output),
        })
    }

    fn give(&mut self) {
        if let Some(out) = self.output.take() {
            let _ = nix::unistd::write(&out, b"g");
        }
    }

    /// Waits for the go-ahead; `false` when none can come.
    fn wait(self) -> bool {
        drop(self.output);
        let mut byte = [0u8; 1];
        loop {
            match nix::unistd::read(self.input.as_fd(), &mut byte) {
                Ok(1) => return true,
                Err(Errno::EINTR) => continue,
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_is_read_to_the_end_of_the_channel() {
        let (a, b) = channel::pair().unwrap();
        let confined = Message::Confined {
            lines: vec!["policy: default".into()],
            warnings: vec![],
        };
        b.send(&confined, &[]).unwrap();
        let failure = Message::Failed {
            code: 126,
            message: "exec x: Permission denied".into(),
        };
        b.send(&failure, &[]).unwrap();
        drop(b);
        let mut seen = Vec::new();
        let got = outcome(&a, &mut |lines, _| seen.extend(lines)).unwrap();
        assert_eq!(
            got,
            Outcome::Failed {
                code: 126,
                message: "exec x: Permission denied".into()
            }
        );
        assert_eq!(seen, ["policy: default"]);
        let (a, b) = channel::pair().unwrap();
        drop(b);
        assert_eq!(outcome(&a, &mut |_, _| {}).unwrap(), Outcome::Started);
    }

    #[test]
    fn a_learning_listener_is_a_step_of_its_own_and_outcome_drops_it() {
        let (a, b) = channel::pair().unwrap();
        let (read, write) = nix::unistd::pipe().unwrap();
        let learning = Message::Learning {
            program: "/bin/mkdir".into(),
        };
        b.send(&learning, &[read.as_fd()]).unwrap();
        b.send(&learning, &[read.as_fd()]).unwrap();
        drop((b, read));
        let Step::Learning {
            program, listener, ..
        } = next_step(&a, &mut |_, _| {}).unwrap()
        else {
            panic!("the listener was not a step");
        };
        assert_eq!(program, Path::new("/bin/mkdir"));
        // The descriptor sent, not another: what is written to the pipe comes out of it.
        nix::unistd::write(&write, b"x").unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(nix::unistd::read(listener.as_fd(), &mut byte), Ok(1));
        assert_eq!(&byte, b"x");
        // rsafe-runtime exec's reading: the second listener is dropped, the start goes on.
        assert_eq!(outcome(&a, &mut |_, _| {}).unwrap(), Outcome::Started);
    }

    #[test]
    fn a_go_ahead_comes_once_or_not_at_all() {
        let mut go = Go::new().unwrap();
        go.give();
        go.give();
        assert!(go.wait());
        let go = Go::new().unwrap();
        assert!(!go.wait(), "no writer left: no go-ahead");
    }
}
