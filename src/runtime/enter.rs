//! `rsafe exec`: a new process in a running container, in all of its namespaces and its
//! cgroup, on its root, with exactly its confinement (the spec saved with the container goes
//! through the same [`super::exec`] steps as the container's own workload), never more.
//!
//! ```text
//! rsafe exec (host)                  joiner (host pid namespace)        process (container's)
//! ─────────────────                  ───────────────────────────        ─────────────────────
//! the container, its saved spec
//! open /proc/<p>/ns/*, /proc/<p>/root
//! seccomp filter: cache or compile
//! [fg] subreaper, block signals
//! fork ────────────────────────────▶ not dumpable, parent-death signal
//!                                    join the cgroup (host credentials)
//!                                    setns user, mnt, pid, ipc, uts,
//!                                      net, cgroup, time
//!                                    chroot to the container's root,
//!                                    root of the container's namespace
//!                                    fork ─────────────────────────────▶ waits for the joiner's end
//!   ◀── [fg] the process's pid ───── exit                                parent-death signal
//! reap the joiner: the process is                                        user, rlimits, caps, cwd,
//! now rsafe's child (subreaper)                                          landlock, seccomp (exec.rs)
//! poll: channel, signals, terminal ◀──── Terminal / Confined / Failed ── execve (EOF = started)
//! wait, exit code (128+N)
//! ```
//!
//! Why this way:
//! - `setns(CLONE_NEWUSER)` needs a single-threaded process that shares no filesystem
//!   context: the joiner is a fork of single-threaded rsafe. A pid namespace is entered only
//!   by the children of whoever joins it, hence the second fork.
//! - Which process the namespaces are read from: the container's init is not dumpable, so
//!   only a caller with `CAP_SYS_PTRACE` on the host (root) may open its `/proc/<pid>/ns`.
//!   Anyone else goes through a child of init (the workload), whose pid namespace is the
//!   container's whatever it did (no process changes its own). The user namespace is always
//!   the owner of that pid namespace (`NS_GET_USERNS`), and every other namespace joined must
//!   be owned by it: a workload cannot steer `exec` into namespaces of its own making.
//! - Everything is opened before the first `setns`: after it, `/proc` is no longer the host's.
//! - The cgroup is joined while the joiner still has its host credentials (the container's
//!   root may not write to the host's cgroup tree), before the cgroup namespace.
//! - The process is not dumpable until `execve`: nothing in the container may ptrace it or
//!   open its `/proc/<pid>/{fd,exe,mem}` while it holds rsafe's memory.
//! - In the foreground the process is rsafe's child (rsafe is a subreaper, the joiner exits):
//!   rsafe forwards signals to it and reaps it, and it dies with rsafe (parent-death signal,
//!   set only once the joiner is gone, or the joiner's exit would kill it). With `-d` the
//!   joiner forks a launcher *inside* the container's pid namespace, which forks the process
//!   and exits: the container's init adopts and reaps it, as docker keeps `exec -d` processes
//!   running in the container. Either way the container's end (`stop`, `rm -f`) ends it with
//!   its pid namespace.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Gid, Pid, Uid};
use rustix::fs::{Mode, OFlags};

use super::cgroups::{Cgroup, Fallback, Version};
use super::channel::{self, Channel, ChannelError, Message};
use super::container::{landlock_access, parent_gone};
use super::exec::{self, Workload};
use super::idmap::{Caller, IdMap};
use super::init;
use super::process::{Note, RunError, forwarded_signals};
use super::seccomp::{CompiledFilter, FilterCache, SeccompError};
use super::session::Session;
use super::spec::{self, ImageDefaults, ProcessOverrides, ProcessSpec, Spec, SpecError};
use super::state::{self, State, StateError};
use super::tty::{self, WinSize};
use super::{sys, user};

/// What `rsafe exec` runs, and in which container.
#[derive(Debug)]
pub struct ExecRequest {
    /// The store the container belongs to.
    pub store_root: PathBuf,
    /// Its name or id (a unique prefix of the id is enough).
    pub container: String,
    /// The command (`args`), and what replaces or adds to the container's own environment,
    /// working directory and user; `terminal` (`-t`) and `stdin` (`-i`). `entrypoint` must
    /// be `None`: the command is run as given.
    pub process: ProcessOverrides,
    /// `-d`: leave the process running in the container, adopted by its init.
    pub detach: bool,
}

/// Why a process could not be run in a container; carries the exit code rsafe reports.
#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The process side failed, or the process's own start failed (126, 127).
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {name} belongs to uid {owner}: exec in it as that user")]
    NotOwner { name: String, owner: u32 },
    #[error(
        "container {0} has no saved spec (it was run by an rsafe that kept none for --rm containers): its confinement is unknown, so nothing is run in it"
    )]
    NoSpec(String),
    #[error("cannot enter container {name}: {what}: {source}")]
    Enter {
        name: String,
        what: String,
        source: io::Error,
    },
}

impl EnterError {
    /// 126 or 127 when the command could not be executed or found, 125 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            EnterError::Run(e) => e.exit_code(),
            _ => 125,
        }
    }
}

/// Runs `req` in its container and returns the process's exit code (128+N for signal N); with
/// `-d`, 0 as soon as the command runs.
pub fn exec(
    req: &ExecRequest,
    host_env: &dyn Fn(&str) -> Option<String>,
    notify: &mut dyn FnMut(Note),
) -> Result<i32, EnterError> {
    let name = req.container.as_str();
    let (dir, state, spec) = running(&req.store_root, name)?;
    let process = exec_process(&spec.process, &req.process, host_env)?;
    let (filter, cached) = FilterCache::in_store(&req.store_root)
        .get_or_compile(&spec.confinement.seccomp, &spec.confinement.capabilities)?;
    if cached {
        notify(Note::Info(
            "seccomp: compiled filter read from the store's cache".to_string(),
        ));
    }
    // Denials are answered by this rsafe while it waits for the process: not with -d.
    let filter = match req.detach {
        false => super::process::reporting_denials(filter, &spec.confinement, notify),
        true => filter,
    };
    let window = match process.terminal {
        true => tty::window_size(io::stdin().as_fd_ref())
            .or_else(|| tty::window_size(io::stdout().as_fd_ref())),
        false => None,
    };
    let plan = Plan {
        name,
        hostname: spec
            .hostname
            .clone()
            .unwrap_or_else(|| dir.id[..12].to_string()),
        fallback: fallback(spec.limits.pids, state.cgroup.as_ref()),
        spec: &spec,
        process,
        state: &state,
        window,
        detach: req.detach,
    };
    let target = open_target(&state, name)?;
    match plan.detach {
        false => run_attached(&plan, target, filter, &dir.id, notify),
        true => run_detached(&plan, target, filter, notify),
    }
}

/// The running container `name` of this caller, with its saved spec: what `exec` enters and
/// what `--network container:NAME` joins.
fn running(
    store_root: &std::path::Path,
    name: &str,
) -> Result<(state::ContainerDir, State, Spec), EnterError> {
    let (dir, state) = state::find(store_root, name)?;
    if !state.is_alive() {
        return Err(EnterError::NotRunning(name.to_string()));
    }
    let caller = Caller::current();
    if state.owner != caller.uid {
        return Err(EnterError::NotOwner {
            name: name.to_string(),
            owner: state.owner,
        });
    }
    let spec = match dir.load_spec(name) {
        Ok(spec) => spec,
        Err(StateError::NoSpec(_)) => return Err(EnterError::NoSpec(name.to_string())),
        Err(e) => return Err(e.into()),
    };
    Ok((dir, state, spec))
}

/// A running container's user and network namespaces, opened as `exec` opens them, with its
/// state and spec: what a container started with `--network container:NAME` joins.
#[derive(Debug)]
pub struct Joined {
    pub state: State,
    pub spec: Spec,
    /// The hostname its `/etc/hosts` names.
    pub hostname: String,
    pub user: OwnedFd,
    /// `None` when it uses the host's network.
    pub net: Option<OwnedFd>,
}

/// Opens the namespaces of the running container `name` (its user namespace, and its network
/// namespace unless that is the host's) for another container to join.
pub fn joined(store_root: &std::path::Path, name: &str) -> Result<Joined, EnterError> {
    let (dir, state, spec) = running(store_root, name)?;
    let target = open_target(&state, name)?;
    let (mut user, mut net) = (None, None);
    for join in target.namespaces {
        match join.name {
            "user" => user = Some(join.fd),
            "net" => net = Some(join.fd),
            _ => {}
        }
    }
    let user = user.ok_or_else(|| EnterError::NotRunning(name.to_string()))?;
    let hostname = spec
        .hostname
        .clone()
        .unwrap_or_else(|| dir.id[..12].to_string());
    Ok(Joined {
        state,
        spec,
        hostname,
        user,
        net,
    })
}

/// `as_fd` for the standard streams, which live as long as the process.
trait StdFd {
    fn as_fd_ref(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl<T: std::os::fd::AsFd> StdFd for T {
    fn as_fd_ref(&self) -> std::os::fd::BorrowedFd<'_> {
        self.as_fd()
    }
}

/// The process to run: the container's own (environment, working directory, user) with the
/// command and `-e`, `--env-file`, `-w`, `-u`, `-t`, `-i` of `exec`, merged as `run` merges
/// its flags into an image's config.
pub fn exec_process(
    container: &ProcessSpec,
    flags: &ProcessOverrides,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<ProcessSpec, SpecError> {
    let defaults = ImageDefaults {
        entrypoint: Vec::new(),
        cmd: Vec::new(),
        env: container.env.clone(),
        working_dir: Some(container.cwd.clone()),
        user: container.user.clone(),
    };
    let flags = ProcessOverrides {
        entrypoint: None,
        ..flags.clone()
    };
    spec::merge_process(&defaults, &flags, host_env)
}

/// The rlimit standing in for a pid limit no cgroup took, as the container's workload got it:
/// when the container has a pid limit but no cgroup directory with `pids.max`.
fn fallback(pids: Option<u64>, cgroup: Option<&Cgroup>) -> Option<Fallback> {
    let pids = pids?;
    let in_cgroup =
        cgroup.is_some_and(|cg| cg.dirs.iter().any(|(d, _)| d.join("pids.max").exists()));
    (!in_cgroup).then_some(Fallback { nproc: Some(pids) })
}

/// Everything the joiner and the process need, made before the first fork.
struct Plan<'a> {
    name: &'a str,
    spec: &'a Spec,
    process: ProcessSpec,
    state: &'a State,
    hostname: String,
    fallback: Option<Fallback>,
    window: Option<WinSize>,
    /// `-d`: the process is left to the container's init.
    detach: bool,
}

impl Plan<'_> {
    fn enter_err(&self, what: impl Into<String>) -> impl FnOnce(io::Error) -> EnterError {
        enter_err(self.name, what)
    }
}

fn enter_err(name: &str, what: impl Into<String>) -> impl FnOnce(io::Error) -> EnterError {
    let (name, what) = (name.to_string(), what.into());
    move |source| EnterError::Enter { name, what, source }
}

/// One namespace to join, opened.
pub(crate) struct Join {
    pub(crate) name: &'static str,
    pub(crate) fd: OwnedFd,
    pub(crate) flag: CloneFlags,
}

/// What the joiner enters: the container's namespaces (user first) and root directory, all
/// opened from the host before anything changes.
pub(crate) struct Target {
    pub(crate) namespaces: Vec<Join>,
    pub(crate) root: OwnedFd,
}

/// The namespaces joined after the user namespace, in this order: the file in
/// `/proc/<pid>/ns`, the same kind's file in `/proc/self/ns`, the `setns` flag. The container's
/// init made its time namespace for its children only: `time_for_children` is the container's.
const NAMESPACES: [(&str, &str, libc::c_int); 7] = [
    ("mnt", "mnt", libc::CLONE_NEWNS),
    ("pid", "pid", libc::CLONE_NEWPID),
    ("ipc", "ipc", libc::CLONE_NEWIPC),
    ("uts", "uts", libc::CLONE_NEWUTS),
    ("net", "net", libc::CLONE_NEWNET),
    ("cgroup", "cgroup", libc::CLONE_NEWCGROUP),
    ("time_for_children", "time", libc::CLONE_NEWTIME),
];

/// Opens the container's namespaces and root through its init, or (when init cannot be
/// inspected: rootless) through a child of init. See the module documentation.
pub(crate) fn open_target(state: &State, name: &str) -> Result<Target, EnterError> {
    let not_running = || EnterError::NotRunning(name.to_string());
    let (pid, start) = state.pid.ok_or_else(not_running)?;
    let init_dir = open_proc(&pid.to_string()).map_err(|_| not_running())?;
    // The directory refers to the process that had the pid when it was opened: if that is the
    // container's init now, it was then.
    if !state::process_alive(pid, start) {
        return Err(not_running());
    }
    let (dir, pid_ns) = match open_ns(&init_dir, "pid") {
        Ok(ns) => (init_dir, ns),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            through_child(pid).map_err(enter_err(name, "open the namespaces of its workload"))?
        }
        Err(e) => return Err(enter_err(name, "open its namespaces")(e)),
    };
    let user = owner_userns(&pid_ns).map_err(enter_err(name, "find its user namespace"))?;
    let user_id = ns_id(&user).map_err(enter_err(name, "its user namespace"))?;
    let mut namespaces = vec![Join {
        name: "user",
        fd: user,
        flag: CloneFlags::CLONE_NEWUSER,
    }];
    for (file, own, flag) in NAMESPACES {
        if let Some(fd) = open_owned_ns(&dir, file, own, flag, user_id, name)? {
            namespaces.push(Join {
                name: own,
                fd,
                flag: CloneFlags::from_bits_retain(flag),
            });
        }
    }
    let root = rustix::fs::openat(
        &dir,
        "root",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| enter_err(name, "open its root")(e.into()))?;
    if !state::process_alive(pid, start) {
        return Err(not_running());
    }
    Ok(Target { namespaces, root })
}

/// Namespace `file` of the process `dir`, if it must be joined: not when it is this process's
/// own (`--network host`) or when the kernel has no such namespace (time, before 5.6). Any
/// other namespace must be owned by the container's user namespace (`user_id`).
fn open_owned_ns(
    dir: &OwnedFd,
    file: &str,
    own: &str,
    flag: libc::c_int,
    user_id: (u64, u64),
    name: &str,
) -> Result<Option<OwnedFd>, EnterError> {
    let fail = |what: String| enter_err(name, what);
    let fd = match open_ns(dir, file) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound && flag == libc::CLONE_NEWTIME => {
            return Ok(None);
        }
        Err(e) => return Err(fail(format!("open its {own} namespace"))(e)),
    };
    let mine = std::fs::File::open(format!("/proc/self/ns/{own}"))
        .and_then(|f| ns_id(&OwnedFd::from(f)))
        .map_err(fail(format!("open rsafe's own {own} namespace")))?;
    if ns_id(&fd).map_err(fail(format!("its {own} namespace")))? == mine {
        return Ok(None);
    }
    let owner = owner_userns(&fd)
        .and_then(|u| ns_id(&u))
        .map_err(fail(format!("the owner of its {own} namespace")))?;
    if owner != user_id {
        return Err(fail(format!("its {own} namespace"))(io::Error::other(
            "not owned by the container's user namespace (made by a process in it): refused",
        )));
    }
    Ok(Some(fd))
}

/// `/proc/<pid>` as a directory descriptor: it keeps referring to that process.
fn open_proc(pid: &str) -> io::Result<OwnedFd> {
    rustix::fs::open(
        format!("/proc/{pid}").as_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

fn open_ns(dir: &OwnedFd, file: &str) -> io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        format!("ns/{file}").as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// A child of init whose namespaces this caller may open: its `/proc` directory and pid
/// namespace.
fn through_child(init: i32) -> io::Result<(OwnedFd, OwnedFd)> {
    let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "init has no child");
    for child in children.split_whitespace() {
        let Ok(dir) = open_proc(child) else { continue };
        // Still init's child (not a process that took a pid that was freed meanwhile).
        if parent_of(&dir) != Some(init) {
            continue;
        }
        match open_ns(&dir, "pid") {
            Ok(ns) => return Ok((dir, ns)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The parent pid of the process `dir` (`PPid:` of its `status`).
fn parent_of(dir: &OwnedFd) -> Option<i32> {
    let fd = rustix::fs::openat(
        dir,
        "status",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let status = io::read_to_string(std::fs::File::from(fd)).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// A namespace's identity: the device and inode of its `nsfs` file.
fn ns_id(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// The user namespace that owns namespace `ns`.
fn owner_userns(ns: &OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: NS_GET_USERNS takes no argument and returns a new descriptor (close-on-exec) or
    // -1; it reads or writes no memory of this process.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), libc::NS_GET_USERNS) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The go-ahead for the process, a pipe: its reparenting is over once the forker has been
/// reaped, and only then may it arm its parent-death signal (armed earlier, the forker's exit
/// would kill it). Whoever reaps the forker writes a byte: rsafe in the foreground (the joiner
/// forks the process), the joiner with `-d` (the launcher does). End-of-file without a byte:
/// rsafe is gone, and the process is not started.
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
            match nix::unistd::read(&self.input, &mut byte) {
                Ok(1) => return true,
                Err(Errno::EINTR) => continue,
                _ => return false,
            }
        }
    }
}

/// Forks the joiner (see the module documentation); in the child, never returns.
fn fork_joiner(
    plan: &Plan<'_>,
    target: Target,
    filter: CompiledFilter,
    go: Go,
    pid_out: Option<OwnedFd>,
) -> Result<(Pid, Channel, Go), EnterError> {
    if sys::thread_count().map_err(plan.enter_err("count threads"))? != 1 {
        return Err(plan.enter_err("fork")(io::Error::other(
            "rsafe has several threads; this is a bug",
        )));
    }
    let (parent_end, child_end) = channel::pair()?;
    // SAFETY: this process is single-threaded (checked above), so the child may run arbitrary
    // code; it leaves through `_exit` only.
    match unsafe { nix::unistd::fork() }.map_err(|e| plan.enter_err("fork")(e.into()))? {
        ForkResult::Child => {
            drop(parent_end);
            let code = joiner(plan, target, filter, go, pid_out, &child_end);
            // SAFETY: _exit ends the forked process without running rsafe's exit handlers or
            // flushing buffers it shares with rsafe.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => Ok((child, parent_end, go)),
    }
}

/// The foreground: rsafe waits for the process, forwards signals to it, relays its terminal.
fn run_attached(
    plan: &Plan<'_>,
    target: Target,
    filter: CompiledFilter,
    id: &str,
    notify: &mut dyn FnMut(Note),
) -> Result<i32, EnterError> {
    // The process is forked by the joiner, which exits: it becomes rsafe's child.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| plan.enter_err("become a subreaper")(e.into()))?;
    forwarded_signals()
        .thread_block()
        .map_err(|e| plan.enter_err("block signals")(e.into()))?;
    let pipe_err = |e: Errno| plan.enter_err("pipe")(e.into());
    let (pid_in, pid_out) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(pipe_err)?;
    let go = Go::new().map_err(pipe_err)?;
    let (joiner, chan, mut go) = fork_joiner(plan, target, filter, go, Some(pid_out))?;
    let process = read_pid(pid_in);
    let _ = waitpid(joiner, None);
    let Some(process) = process else {
        return Err(joiner_failure(&chan, notify));
    };
    go.give();
    drop(go);
    let signals = SignalFd::with_flags(
        &forwarded_signals(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| plan.enter_err("signalfd")(e.into()))?;
    let mut session = Session {
        id: id.to_string(),
        chan: Some(chan),
        signals,
        child: process,
        terminal: None,
        relay_stdin: plan.process.stdin,
        raw: None,
        failure: None,
        learn: None,
        supervisor: None,
        terminal_to: None,
        tee: None,
    };
    let status = session.run(notify)?;
    if let Some((code, message)) = session.failure.take() {
        return Err(RunError::Container { code, message }.into());
    }
    init::exit_code(status)
        .ok_or_else(|| RunError::Invalid(format!("unexpected status {status:?}")).into())
}

/// `-d`: the process is left to the container's init; rsafe returns once it runs (0) or
/// failed to start (its code).
fn run_detached(
    plan: &Plan<'_>,
    target: Target,
    filter: CompiledFilter,
    notify: &mut dyn FnMut(Note),
) -> Result<i32, EnterError> {
    let go = Go::new().map_err(|e| plan.enter_err("pipe")(e.into()))?;
    let (joiner, chan, go) = fork_joiner(plan, target, filter, go, None)?;
    drop(go);
    let _ = waitpid(joiner, None);
    match joiner_failure(&chan, notify) {
        EnterError::Channel(ChannelError::Closed(_)) => Ok(0),
        e => Err(e),
    }
}

/// Reads the channel to its end: the failure reported on it, or `Closed` when there was none.
fn joiner_failure(chan: &Channel, notify: &mut dyn FnMut(Note)) -> EnterError {
    loop {
        match chan.recv() {
            Ok(None) => return ChannelError::Closed("starting the process").into(),
            Ok(Some((Message::Failed { code, message }, _))) => {
                return RunError::Container { code, message }.into();
            }
            Ok(Some((Message::Confined { lines, warnings }, _))) => {
                lines.into_iter().for_each(|l| notify(Note::Info(l)));
                warnings.into_iter().for_each(|w| notify(Note::Warning(w)));
            }
            Ok(Some(_)) => {}
            Err(e) => return e.into(),
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
    plan: &Plan<'_>,
    target: Target,
    filter: CompiledFilter,
    mut go: Go,
    pid_out: Option<OwnedFd>,
    chan: &Channel,
) -> i32 {
    if let Err(e) = enter(plan, target) {
        return failed(chan, 125, &e.to_string());
    }
    if let Some(out) = pid_out.filter(|_| !plan.detach) {
        // rsafe gives the go-ahead once it has reaped this process.
        go.output = None;
        let process = match fork_process(plan, filter, chan, go) {
            Ok(pid) => pid,
            Err(e) => return failed(chan, 125, &e.to_string()),
        };
        let _ = io::Write::write_all(
            &mut std::fs::File::from(out),
            &process.as_raw().to_le_bytes(),
        );
        return 0;
    }
    // SAFETY: the joiner is single-threaded (a fork of single-threaded rsafe).
    match unsafe { nix::unistd::fork() } {
        Err(e) => failed(chan, 125, &format!("fork in the container: {e}")),
        Ok(ForkResult::Child) => {
            // The launcher, in the container's pid namespace: its orphan goes to init.
            // The joiner gives the go-ahead once it has reaped this process.
            go.output = None;
            let code = match fork_process(plan, filter, chan, go) {
                Ok(_) => 0,
                Err(e) => failed(chan, 125, &e.to_string()),
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
fn enter(plan: &Plan<'_>, target: Target) -> Result<(), EnterError> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| plan.enter_err("make rsafe non-dumpable")(e.into()))?;
    // The joiner dies with rsafe, and nothing is left half-entered.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| plan.enter_err("set the parent-death signal")(e.into()))?;
    if let Some(cg) = &plan.state.cgroup {
        join_cgroup(cg).map_err(plan.enter_err("join its cgroup"))?;
    }
    for ns in &target.namespaces {
        nix::sched::setns(&ns.fd, ns.flag)
            .map_err(|e| plan.enter_err(format!("join its {} namespace", ns.name))(e.into()))?;
    }
    nix::unistd::fchdir(&target.root)
        .and_then(|()| nix::unistd::chroot("."))
        .and_then(|()| nix::unistd::chdir("/"))
        .map_err(|e| plan.enter_err("enter its root")(e.into()))?;
    drop(target);
    become_root(&plan.state.idmap).map_err(|e| plan.enter_err("become its root")(e.into()))
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
    plan: &Plan<'_>,
    filter: CompiledFilter,
    chan: &Channel,
    go: Go,
) -> Result<Pid, Errno> {
    // SAFETY: the forker is single-threaded (a fork of single-threaded rsafe).
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => {
            let code = process(plan, filter, chan, go);
            // SAFETY: as for the joiner: no exit handlers of rsafe run in a forked process.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// The process: waits for the go-ahead, then becomes the command through the workload's own
/// steps ([`exec::exec`]). Returns only on failure, with its exit code.
fn process(plan: &Plan<'_>, filter: CompiledFilter, chan: &Channel, go: Go) -> i32 {
    if !go.wait() {
        return 125;
    }
    // Its parent now is rsafe (foreground) or the container's init (-d): it dies with it.
    if let Err(e) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
    {
        return failed(chan, 125, &format!("set the parent-death signal: {e}"));
    }
    if parent_gone(chan) {
        return 125;
    }
    if plan.detach
        && let Err(e) = detach_stdio()
    {
        return failed(chan, 125, &format!("redirect output to /dev/null: {e}"));
    }
    let user = match user::resolve(plan.process.user.as_deref(), Path::new("/etc")) {
        Ok(user) => user,
        Err(e) => return failed(chan, 125, &e.to_string()),
    };
    let workload = Workload {
        process: &plan.process,
        user: &user,
        setgroups: plan.state.idmap.setgroups,
        single_id: plan.state.idmap.is_single(),
        fallback: plan.fallback,
        hostname: &plan.hostname,
        window: plan.window,
        confinement: &plan.spec.confinement,
        seccomp: Some(filter),
        landlock_fs: landlock_access(plan.spec),
        preserve_fds: 0,
    };
    let err = exec::exec(workload, chan);
    failed(chan, err.exit_code(), &err.to_string())
}

/// `-d`: the process keeps nothing of the caller's terminal or pipes (whoever reads them
/// would wait for it): stdio is the container's `/dev/null`.
fn detach_stdio() -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container_process() -> ProcessSpec {
        ProcessSpec {
            args: vec!["sleep".into(), "300".into()],
            env: vec!["PATH=/bin".into(), "A=1".into(), "B=2".into()],
            cwd: "/home/app".into(),
            user: Some("app".into()),
            terminal: false,
            stdin: false,
        }
    }

    #[test]
    fn the_command_runs_with_the_containers_environment_workdir_and_user() {
        let flags = ProcessOverrides {
            args: vec!["env".into()],
            ..ProcessOverrides::default()
        };
        let p = exec_process(&container_process(), &flags, &|_| None).unwrap();
        assert_eq!(p.args, ["env"]);
        assert_eq!(p.env, ["PATH=/bin", "A=1", "B=2"]);
        assert_eq!(p.cwd, "/home/app");
        assert_eq!(p.user.as_deref(), Some("app"));
        assert!(!p.terminal && !p.stdin);
    }

    #[test]
    fn flags_override_and_add() {
        let flags = ProcessOverrides {
            // Ignored: exec runs the command as given, never the container's entrypoint.
            entrypoint: Some("/bin/evil".into()),
            args: vec!["id".into(), "-u".into()],
            env: vec!["B=3".into(), "C=4".into(), "HOSTVAR".into()],
            workdir: Some("/tmp".into()),
            user: Some("1000:1000".into()),
            terminal: true,
            stdin: true,
            ..ProcessOverrides::default()
        };
        let host = |k: &str| (k == "HOSTVAR").then(|| "from-host".to_string());
        let p = exec_process(&container_process(), &flags, &host).unwrap();
        assert_eq!(p.args, ["id", "-u"]);
        assert_eq!(
            p.env,
            [
                "PATH=/bin",
                "A=1",
                "B=3",
                "C=4",
                "HOSTVAR=from-host",
                "TERM=xterm"
            ]
        );
        assert_eq!(p.cwd, "/tmp");
        assert_eq!(p.user.as_deref(), Some("1000:1000"));
        assert!(p.terminal && p.stdin);
    }

    #[test]
    fn bad_command_or_workdir_is_refused() {
        let none = ProcessOverrides::default();
        assert!(matches!(
            exec_process(&container_process(), &none, &|_| None),
            Err(SpecError::NoCommand)
        ));
        let relative = ProcessOverrides {
            args: vec!["true".into()],
            workdir: Some("tmp".into()),
            ..ProcessOverrides::default()
        };
        assert!(exec_process(&container_process(), &relative, &|_| None).is_err());
    }

    #[test]
    fn exit_codes() {
        let not_found = EnterError::Run(RunError::Container {
            code: 127,
            message: "exec x: not found".into(),
        });
        assert_eq!(not_found.exit_code(), 127);
        assert_eq!(EnterError::NotRunning("c".into()).exit_code(), 125);
        assert_eq!(
            EnterError::NotRunning("web".into()).to_string(),
            "container web is not running"
        );
    }

    #[test]
    fn the_owner_of_a_namespace_is_found() {
        // This process's own namespaces: each is owned by its user namespace.
        let open =
            |n: &str| OwnedFd::from(std::fs::File::open(format!("/proc/self/ns/{n}")).unwrap());
        let user = ns_id(&open("user")).unwrap();
        for n in ["mnt", "pid", "ipc", "uts", "net", "cgroup"] {
            assert_eq!(
                ns_id(&owner_userns(&open(n)).unwrap()).unwrap(),
                user,
                "{n}"
            );
        }
        assert_ne!(ns_id(&open("mnt")).unwrap(), ns_id(&open("net")).unwrap());
    }

    #[test]
    fn a_pid_limit_without_a_pids_cgroup_falls_back_to_nproc() {
        let dir = tempfile::tempdir().unwrap();
        let cg = Cgroup {
            dirs: vec![(dir.path().to_path_buf(), Version::V2)],
        };
        assert_eq!(fallback(Some(64), None), Some(Fallback { nproc: Some(64) }));
        assert_eq!(
            fallback(Some(64), Some(&cg)),
            Some(Fallback { nproc: Some(64) })
        );
        std::fs::write(dir.path().join("pids.max"), "64\n").unwrap();
        assert_eq!(fallback(Some(64), Some(&cg)), None);
        assert_eq!(fallback(None, None), None);
    }
}
