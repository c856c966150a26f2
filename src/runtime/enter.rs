//! `rsafe exec`: a new process in a running container, in all of its namespaces and its
//! cgroup, on its root, with exactly its confinement (the spec saved with the container goes
//! through the same [`super::exec`] steps as the container's own workload), never more.
//!
//! What is `rsafe exec`'s own is here: which container (its state and saved spec), which
//! namespaces, and what rsafe does while the process runs. The way in (the joiner, the fork
//! into the pid namespace, the process's steps up to `execve`) is [`super::join`]'s, the same
//! path `rsafe-runtime exec` takes, so that it exists and is tested once.
//!
//! ```text
//! rsafe exec (host)
//! ─────────────────
//! the container, its saved spec
//! open /proc/<p>/ns/* (user first, each owned by it), /proc/<p>/root
//! seccomp filter: cache or compile
//! learn.sock in the container's directory: being learned, the process stacks the learning
//!   filter and its listener goes to the learning run (learn::exec_hook)
//! [fg] subreaper, block signals
//! join::start ──────────▶ joiner ──▶ process (see join.rs)
//! [fg] the process is rsafe's child: poll channel, signals, terminal; wait, exit code (128+N)
//! [-d] the container's init adopted it: read the channel to its end (started or failed)
//! ```
//!
//! Why this way:
//! - Which process the namespaces are read from: the container's init is not dumpable, so
//!   only a caller with `CAP_SYS_PTRACE` on the host (root) may open its `/proc/<pid>/ns`.
//!   Anyone else goes through a child of init (the workload), whose pid namespace is the
//!   container's whatever it did (no process changes its own). The user namespace is always
//!   the owner of that pid namespace (`NS_GET_USERNS`), and every other namespace joined must
//!   be owned by it: a workload cannot steer `exec` into namespaces of its own making. So the
//!   user namespace is joined first, which gives its root every right in the others.
//! - In the foreground the process is rsafe's child (rsafe is a subreaper, the joiner exits):
//!   rsafe forwards signals to it and reaps it, and it dies with rsafe. With `-d` the
//!   container's init adopts and reaps it ([`Adoption::ContainerInit`]), as docker keeps
//!   `exec -d` processes running in the container; its stdio is the container's `/dev/null`.
//!   Either way the container's end (`stop`, `rm -f`) ends it with its pid namespace.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::fs::{Mode, OFlags};

use super::cgroups::{Cgroup, Fallback};
use super::channel::{Channel, ChannelError};
use super::container::landlock_access;
use super::idmap::Caller;
use super::init;
use super::join::{self, Adoption, Entry, Identity, JoinError, NewProcess, Outcome, Stdio, Step};
pub(crate) use super::join::{Join, Target, become_root};
use super::learn::exec_hook::{self, ExecClient};
use super::learn::paths::FileDenials;
use super::process::{Note, RunError, forwarded_signals};
use super::seccomp::{CompiledFilter, FilterCache, SeccompError};
use super::session::Session;
use super::signal::FirstProcess;
use super::spec::{
    self, ImageDefaults, ProcessOverrides, ProcessSpec, Spec, SpecError, Ulimit, UlimitName,
};
use super::state::{self, State, StateError};
use super::tty;

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
    /// docker's refusal: a frozen container would hold the process before it starts.
    #[error("container {0} is paused, unpause the container before exec")]
    Paused(String),
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
    let first = state.first_process();
    match exec_running(req, (dir, state, spec), host_env, notify) {
        Err(e) if e.exit_code() == 125 && ended(first, &e) => {
            Err(EnterError::NotRunning(name.into()))
        }
        done => done,
    }
}

/// How long a failed `exec` waits for the container's first process to end before it takes
/// the failure as its own: a container whose workload ended is still ending (its init exits,
/// its pid namespace goes) when the way in fails on it.
const ENDING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether the container's run that `exec` found has ended, by its recorded first process:
/// pid and start time, as `stop` and `kill` tell it from a later process given the same pid.
/// After a failure on the way in (its namespaces gone, a fork into a pid namespace whose init
/// exited: ENOMEM) it may still be ending: it is given [`ENDING_WAIT`]; any other failure (a
/// user not found, a bad working directory) is the command's and is not waited on.
fn ended(first: Option<FirstProcess>, e: &EnterError) -> bool {
    let wait = match way_in_failed(e) {
        true => ENDING_WAIT,
        false => std::time::Duration::ZERO,
    };
    first.is_none_or(|first| super::signal::wait_gone(first, wait))
}

/// Whether `e` is a failure to get into the container (rather than of the command's own
/// setup): opening its namespaces or root, joining them, forking in its pid namespace, or the
/// channel to the process cut off.
fn way_in_failed(e: &EnterError) -> bool {
    match e {
        EnterError::Enter { .. } | EnterError::Channel(_) => true,
        EnterError::Run(RunError::Container { code: 125, message }) => {
            message.starts_with("cannot enter container") || message.starts_with("fork in the")
        }
        _ => false,
    }
}

/// [`exec`] in the container found running, with its directory, state and saved spec.
fn exec_running(
    req: &ExecRequest,
    (dir, state, spec): (state::ContainerDir, State, Spec),
    host_env: &dyn Fn(&str) -> Option<String>,
    notify: &mut dyn FnMut(Note),
) -> Result<i32, EnterError> {
    let name = req.container.as_str();
    let process = exec_process(&spec.process, &req.process, host_env)?;
    let (filter, cached) = FilterCache::in_store(&req.store_root)
        .get_or_compile(&spec.confinement.seccomp, &spec.confinement.capabilities)?;
    if cached {
        notify(Note::Info(
            "seccomp: compiled filter read from the store's cache".to_string(),
        ));
    }
    let learning = learning_run(&dir, name, &process.args)?;
    // Denials are answered by this rsafe while it waits for the process: not with -d, nor
    // while the container is learned (its learning run answers, as for its workload).
    let (filter, files) = match req.detach || learning.is_some() {
        false => super::process::reporting_denials(filter, &spec, notify),
        true => (filter, None),
    };
    let window = match process.terminal {
        true => tty::window_size(io::stdin().as_fd_ref())
            .or_else(|| tty::window_size(io::stdout().as_fd_ref())),
        false => None,
    };
    let new = NewProcess {
        identity: Identity::Name {
            user: process.user.clone(),
            group_add: spec.options.group_add.clone(),
        },
        stdio: match req.detach {
            // The process keeps nothing of the caller's terminal or pipes (whoever reads
            // them would wait for it).
            true => Stdio::Null,
            false => Stdio::Inherit,
        },
        rlimits: ulimits(&spec.options.ulimits),
        umask: None,
        fallback: fallback(spec.limits.pids, state.cgroup.as_ref())
            .filter(|_| !sets_nproc(&spec.options.ulimits)),
        hostname: spec
            .hostname
            .clone()
            .unwrap_or_else(|| dir.id[..12].to_string()),
        window,
        confinement: &spec.confinement,
        landlock_fs: landlock_access(&spec),
        preserve_fds: 0,
        extra_filter: None,
        learning: learning.is_some(),
        process,
    };
    let entry = Entry {
        name,
        target: open_target(&state, name)?,
        cgroup: state.cgroup.as_ref(),
        idmap: &state.idmap,
        adoption: match req.detach {
            false => Adoption::Caller,
            true => Adoption::ContainerInit,
        },
    };
    match req.detach {
        false => run_attached(entry, &new, (filter, files), (&dir.id, learning), notify),
        true => run_detached(entry, &new, filter, learning, notify),
    }
}

/// The container's learning run (`rsafe run --learn`, see [`super::learn::exec_hook`]) when
/// it is being learned: the process is then learned too, as `exec NAME: CMD`.
fn learning_run(
    dir: &state::ContainerDir,
    name: &str,
    command: &[String],
) -> Result<Option<ExecClient>, EnterError> {
    let label = super::learn::writer::label(&format!("exec {name}:"), command);
    exec_hook::connect(&dir.path, &label).map_err(enter_err(name, "reach its learning run"))
}

/// The foreground: rsafe waits for the process, forwards signals to it, relays its terminal.
/// In a container being learned, the process's learning listener goes to `learning`.
fn run_attached(
    entry: Entry<'_>,
    new: &NewProcess<'_>,
    (filter, files): (CompiledFilter, Option<FileDenials>),
    (id, learning): (&str, Option<ExecClient>),
    notify: &mut dyn FnMut(Note),
) -> Result<i32, EnterError> {
    let name = entry.name;
    // The process is forked by the joiner, which exits: it becomes rsafe's child.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| enter_err(name, "become a subreaper")(e.into()))?;
    forwarded_signals()
        .thread_block()
        .map_err(|e| enter_err(name, "block signals")(e.into()))?;
    let started = join::start(entry, new, filter).map_err(|e| EnterError::from_join(name, e))?;
    let Some(process) = started.pid else {
        return Err(failure(&started.chan, &mut None, notify));
    };
    let signals = SignalFd::with_flags(
        &forwarded_signals(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| enter_err(name, "signalfd")(e.into()))?;
    let mut session = Session {
        id: id.to_string(),
        chan: Some(started.chan),
        signals,
        child: process,
        terminal: None,
        relay_stdin: new.process.stdin,
        raw: None,
        failure: None,
        learn: None,
        supervisor: None,
        files,
        learn_forward: learning,
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
/// failed to start (its code). In a container being learned, its learning listener is handed
/// to `learning` before that.
fn run_detached(
    entry: Entry<'_>,
    new: &NewProcess<'_>,
    filter: CompiledFilter,
    mut learning: Option<ExecClient>,
    notify: &mut dyn FnMut(Note),
) -> Result<i32, EnterError> {
    let name = entry.name;
    let started = join::start(entry, new, filter).map_err(|e| EnterError::from_join(name, e))?;
    match failure(&started.chan, &mut learning, notify) {
        EnterError::Channel(ChannelError::Closed(_)) => Ok(0),
        e => Err(e),
    }
}

/// Reads the channel to its end: the failure reported on it, or `Closed` when there was none.
/// With `-d` into a container being learned, the process's learning listener comes this way
/// and goes on to the learning run (`learning`); a failed hand-over is the failure.
fn failure(
    chan: &Channel,
    learning: &mut Option<ExecClient>,
    notify: &mut dyn FnMut(Note),
) -> EnterError {
    let mut confined = |lines: Vec<String>, warnings: Vec<String>| {
        lines.into_iter().for_each(|l| notify(Note::Info(l)));
        warnings.into_iter().for_each(|w| notify(Note::Warning(w)));
    };
    loop {
        let step = match join::next_step(chan, &mut confined) {
            Ok(step) => step,
            Err(e) => return e.into(),
        };
        match step {
            Step::Learning {
                program, listener, ..
            } => {
                if let Some(client) = learning.take()
                    && let Err(source) = client.hand_over(&program, listener)
                {
                    return RunError::Io {
                        what: "hand the process to the container's learning run".into(),
                        source,
                    }
                    .into();
                }
            }
            Step::Done(Outcome::Started) => {
                return ChannelError::Closed("starting the process").into();
            }
            Step::Done(Outcome::Failed { code, message }) => {
                return RunError::Container { code, message }.into();
            }
        }
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
    if super::pause::is_paused(&state) {
        return Err(EnterError::Paused(name.to_string()));
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
        volumes: Vec::new(),
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

/// The container's `--ulimit`s, set in the process as in its workload (docker's exec'd
/// processes get the container's ulimits).
fn ulimits(ulimits: &[Ulimit]) -> Vec<(nix::sys::resource::Resource, u64, u64)> {
    ulimits
        .iter()
        .map(|u| (u.name.resource(), u.soft, u.hard))
        .collect()
}

/// Whether `--ulimit nproc` was given: the workload set it after the pid-limit fallback, so
/// it, not the fallback, is the container's nproc limit.
fn sets_nproc(ulimits: &[Ulimit]) -> bool {
    ulimits.iter().any(|u| u.name == UlimitName::Nproc)
}

fn enter_err(name: &str, what: impl Into<String>) -> impl FnOnce(io::Error) -> EnterError {
    let (name, what) = (name.to_string(), what.into());
    move |source| EnterError::Enter { name, what, source }
}

impl EnterError {
    fn from_join(name: &str, e: JoinError) -> EnterError {
        match e {
            JoinError::Io { what, source } => enter_err(name, what)(source),
            JoinError::Channel(e) => e.into(),
        }
    }
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
    fn only_a_failed_way_in_into_an_ended_container_is_not_running() {
        let failed = |code: i32, message: &str| {
            EnterError::Run(RunError::Container {
                code,
                message: message.into(),
            })
        };
        let fork = failed(125, "fork in the container: ENOMEM");
        let ns = failed(
            125,
            "cannot enter container c: join its mnt namespace: EINVAL",
        );
        let user = failed(
            125,
            "unable to find user nosuch: no matching entries in passwd file",
        );
        assert!(way_in_failed(&fork) && way_in_failed(&ns));
        assert!(!way_in_failed(&user));
        assert!(!way_in_failed(&failed(127, "fork in the container")));
        // This process runs: its failures are its own, whatever they are.
        let pid = std::process::id() as i32;
        let me = FirstProcess {
            pid,
            start: state::process_start_time(pid).unwrap(),
        };
        assert!(!ended(Some(me), &user));
        // A pid whose start time is not the recorded one is another process: ended.
        let reused = FirstProcess {
            start: me.start + 1,
            ..me
        };
        assert!(ended(Some(reused), &user) && ended(Some(reused), &fork));
        assert!(ended(None, &user));
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
            dirs: vec![(
                dir.path().to_path_buf(),
                crate::runtime::cgroups::Version::V2,
            )],
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
