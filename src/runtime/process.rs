//! Starting a container: the processes involved, what each does, and in which order.
//!
//! ```text
//! rsafe run (host namespaces)        container init (pid 1)               workload
//! ───────────────────────────        ──────────────────────               ────────
//! plan id maps, create containers/<id>/, cgroup
//! clone(NEWUSER|NEWNS|NEWPID|NEWIPC|NEWUTS[|NEWNET]) ─▶ waits for Go
//! write uid_map/gid_map, join cgroup,
//! [root] clone layer and volume trees
//! Go ───────────────────────────────▶ become root of the namespace
//!                                     parent-death signal, not dumpable
//!                                     unshare cgroup (+ time) namespace
//!                                     hostname, loopback, private mounts
//!                                     overlay root, /proc /dev /sys,
//!                                     volumes, masks, pivot_root
//!                                     fork ───────────────────────────▶ stdio / terminal
//! poll: channel, signals, terminal    supervise: reap, forward signals   rlimits, user, workdir
//!   ◀── Failed / Terminal ─────────────────────────────────────────────  execve (EOF = started)
//! wait, exit code, clean up           exit with the workload's status
//! ```
//!
//! Why this order:
//! - The user namespace comes first and in the same `clone` as the others, so it owns them; the
//!   child may not use an id before the parent has written the maps, hence the wait for Go.
//!   `clone(CLONE_NEWUSER)` fails in a multi-threaded process: rsafe has one thread here.
//! - The cgroup namespace is entered only after the parent moved the child into its cgroup, so
//!   the container sees its own cgroup as `/`.
//! - Mounts need the host's view (host devices, a visible procfs for the kernel's "not too
//!   revealing" check), so they all happen before `pivot_root`; after it, nothing of the host is
//!   reachable.
//! - Credentials change last but one (it clears the parent-death signal, so that is set again),
//!   and confinement that would forbid the setup itself (seccomp) goes right before `execve`.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use ::caps::Capability;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid};
use rustix::fs::{Mode, OFlags};

use super::caps;
use super::cgroups::{Cgroup, CgroupError, CgroupFs, Controller, Fallback};
use super::channel::{self, Channel, ChannelError, Message};
use super::exec::{self, ExecError, Workload};
use super::idmap::{self, Caller, IdMap, IdMapError, SubIdFiles};
use super::init;
use super::landlock::FsAccess;
use super::mounts::{self, MountError, Root};
use super::namespaces::{self, NamespaceError, Namespaces};
use super::rootfs::{self, OverlayDirs, RootfsError, SystemMounts};
use super::seccomp::{self, CompiledFilter, SeccompError};
use super::spec::{MountSpec, NetworkMode, Spec};
use super::state::{self, ContainerDir, State, StateError, Status};
use super::sys;
use super::tty::{self, RawMode, WinSize};
use super::user::{self, UserError};

/// Something rsafe wants the user to know while starting a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A protection is weaker than asked for (always shown).
    Warning(String),
    /// What was set up and enforced (shown with `--verbose`).
    Info(String),
}

/// What to run and where to keep its state.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub spec: Spec,
    /// The store root; the container lives in `<store>/containers/<id>/`.
    pub store_root: PathBuf,
    /// What is run, as `rsafe ps` shows it (the rootfs directory or image reference).
    pub image: String,
    pub name: Option<String>,
    /// `--rm`: remove the container (and its writable layer) when it exits.
    pub remove: bool,
}

/// Why a container could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("id maps: {0}")]
    IdMap(#[from] IdMapError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cgroup: {0}")]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{0}")]
    Invalid(String),
    /// The container side failed; `code` is 125, 126 or 127.
    #[error("{message}")]
    Container { code: i32, message: String },
}

impl RunError {
    /// The exit code for this failure: the container's for a failed start (126 cannot
    /// execute, 127 not found), 125 for rsafe's own.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Container { code, .. } => *code,
            _ => 125,
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// The signals rsafe passes on to the container (and SIGCHLD, which tells it the container
/// ended, and SIGWINCH, which resizes the container's terminal).
fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ] {
        set.add(s);
    }
    set
}

/// Runs a container to completion and returns its exit code (the workload's; 128+N when a
/// signal N ended it). Every exit path removes the cgroup, and with `remove` the container
/// directory; otherwise its state records the exit code.
pub fn run(req: RunRequest, notify: &mut dyn FnMut(Note)) -> Result<i32, RunError> {
    let caller = Caller::current();
    let idmap = IdMap::plan(&caller, &SubIdFiles::default(), idmap::helpers_available());
    if let Some(name) = &req.name {
        state::check_name(name)?;
        state::ensure_name_free(&req.store_root, name)?;
    }
    let root_owner = (
        idmap.host_uid(0).unwrap_or(caller.uid),
        idmap.host_gid(0).unwrap_or(caller.gid),
    );
    let dir = ContainerDir::create(&req.store_root, root_owner)?;
    let mut state = State {
        id: dir.id.clone(),
        name: req.name.clone(),
        image: req.image.clone(),
        command: req.spec.process.args.clone(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        status: Status::Running,
        pid: None,
        owner: caller.uid,
        idmap: idmap.clone(),
        cgroup: None,
    };
    let result = dir
        .save(&state)
        .map_err(RunError::from)
        .and_then(|()| launch(&req, &caller, &idmap, &dir, &mut state, notify));

    // Clean up, whatever happened.
    if let Some(cg) = &state.cgroup {
        for e in cg.remove() {
            notify(Note::Warning(format!("cannot remove cgroup: {e}")));
        }
    }
    let code = match &result {
        Ok(code) => *code,
        Err(e) => e.exit_code(),
    };
    if req.remove {
        if let Err(e) = dir.remove(&idmap) {
            notify(Note::Warning(format!(
                "cannot remove container {}: {e}",
                dir.id
            )));
        }
    } else {
        state.status = Status::Exited { code };
        if let Err(e) = dir.save(&state) {
            notify(Note::Warning(format!(
                "cannot record the exit of {}: {e}",
                dir.id
            )));
        }
    }
    result
}

/// Everything between creating the container directory and the container's end.
fn launch(
    req: &RunRequest,
    caller: &Caller,
    idmap: &IdMap,
    dir: &ContainerDir,
    state: &mut State,
    notify: &mut dyn FnMut(Note),
) -> Result<i32, RunError> {
    let spec = &req.spec;
    let ns = Namespaces {
        network: spec.network == NetworkMode::None,
    };
    let info = |notify: &mut dyn FnMut(Note), s: String| notify(Note::Info(s));
    info(
        notify,
        format!(
            "container {} ({})",
            &dir.id[..12],
            if caller.is_root() {
                "started by root; container root is an unprivileged host id".to_string()
            } else {
                format!("rootless, started by uid {}", caller.uid)
            }
        ),
    );
    info(notify, format!("user namespace: {idmap}"));

    // Limits: a cgroup, or the rlimit fallback, said out loud.
    let mut fallback = None;
    if !Controller::needed(&spec.limits).is_empty() {
        let created = CgroupFs::current().and_then(|fs| Cgroup::create(&fs, &dir.id, &spec.limits));
        match created {
            Ok(cg) => {
                let dirs: Vec<String> = cg
                    .dirs
                    .iter()
                    .map(|(d, _)| d.display().to_string())
                    .collect();
                info(
                    notify,
                    format!(
                        "limits: {} in cgroup {}",
                        describe_limits(spec),
                        dirs.join(", ")
                    ),
                );
                state.cgroup = Some(cg);
                dir.save(state)?;
            }
            Err(CgroupError::Unavailable { controller, reason }) => {
                let why = format!("{controller}: {reason}");
                let plan = Fallback::for_limits(&spec.limits, &why);
                for n in plan.notes {
                    notify(Note::Info(n));
                }
                for w in plan.warnings {
                    notify(Note::Warning(w));
                }
                fallback = Some(plan.rlimits);
            }
            Err(e) => return Err(e.into()),
        }
    }

    // Host paths the container's processes will see.
    let lower_owners = spec
        .rootfs
        .lowers
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
                .map_err(io_err(format!("rootfs {}", p.display())))
        })
        .collect::<Result<Vec<u32>, _>>()?;
    if !caller.is_root()
        && let Some((path, owner)) = spec
            .rootfs
            .lowers
            .iter()
            .zip(&lower_owners)
            .find(|(_, o)| idmap.container_uid(**o).is_none())
        && !spec.rootfs.read_only
    {
        notify(Note::Warning(format!(
            "{} is owned by uid {owner}, which this container does not map: its files show as nobody and cannot be changed (EOVERFLOW); use a rootfs you own or an image",
            path.display()
        )));
    }
    let bind_sources: Vec<&Path> = spec
        .mounts
        .iter()
        .filter_map(|m| match m {
            MountSpec::Bind { source, .. } => Some(source.as_path()),
            MountSpec::Tmpfs { .. } => None,
        })
        .collect();
    if spec.rootfs.lowers.len() + bind_sources.len() > channel::MAX_FDS {
        return Err(RunError::Invalid(format!(
            "too many layers and volumes ({} + {}; at most {} together)",
            spec.rootfs.lowers.len(),
            bind_sources.len(),
            channel::MAX_FDS
        )));
    }
    let mut volume_trees = Vec::new();
    if caller.is_root() {
        check_reachable(&dir.path, root_owner_uid(idmap, caller))?;
        for i in 0..spec.rootfs.lowers.len() {
            let stage = dir.lower().join(i.to_string());
            std::fs::create_dir(&stage).map_err(io_err(format!("create {}", stage.display())))?;
        }
        for src in &bind_sources {
            volume_trees.push(
                mounts::clone_host_tree(src)
                    .map_err(io_err(format!("volume {}", src.display())))?,
            );
        }
    }

    // libseccomp allocates: compile here, load in the workload with nothing but seccomp(2).
    let filter = seccomp::compile(&spec.confinement.seccomp, &spec.confinement.capabilities)?;

    let window = if spec.process.terminal {
        tty::window_size(io::stdin().as_fd()).or_else(|| tty::window_size(io::stdout().as_fd()))
    } else {
        None
    };

    // From here on, signals arrive through a descriptor, never asynchronously.
    forwarded_signals()
        .thread_block()
        .map_err(|e| io_err("block signals")(e.into()))?;
    let signals = SignalFd::with_flags(
        &forwarded_signals(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| io_err("signalfd")(e.into()))?;
    let (parent_end, child_end) = channel::pair()?;

    let mut child_spec = spec.clone();
    child_spec
        .hostname
        .get_or_insert_with(|| dir.id[..12].to_string());
    let child_cfg = ChildConfig {
        spec: child_spec,
        dir: dir.clone(),
        idmap: idmap.clone(),
        fallback,
        window,
        seccomp: Some(filter),
        host_fds: [parent_end.as_fd().as_raw_fd(), signals.as_fd().as_raw_fd()],
        trees_from_parent: caller.is_root(),
    };
    let pid = sys::clone_process(
        ns.clone_flags(),
        Box::new(move || container_main(child_cfg, child_end)),
    )
    .map_err(namespaces::userns_error)?;
    // The child end now lives in the child only (the closure's copy in this process was
    // freed with it); from here the child must be killed on every error path.
    let mut child = ChildGuard { pid, reaped: false };

    idmap.write(pid.as_raw())?;
    if let Some(cg) = &state.cgroup {
        cg.add(pid.as_raw())?;
    }
    let mut trees = Vec::new();
    if caller.is_root() {
        let userns = std::fs::File::open(format!("/proc/{pid}/ns/user"))
            .map_err(io_err("open the container's user namespace"))?;
        for (path, owner) in spec.rootfs.lowers.iter().zip(&lower_owners) {
            let tree = mounts::clone_host_tree(path)
                .map_err(io_err(format!("rootfs {}", path.display())))?;
            if idmap.container_uid(*owner).is_none() {
                // Owned by host ids the container does not map (a root-owned directory):
                // show it with its ids shifted into the container's range.
                sys::set_mount_attrs(
                    tree.as_fd(),
                    libc::MOUNT_ATTR_IDMAP,
                    Some(userns.as_fd()),
                    true,
                )
                .map_err(io_err(format!("id-mapped mount of {}", path.display())))?;
                info(
                    notify,
                    format!(
                        "rootfs {}: id-mapped mount (owned by host uid {owner})",
                        path.display()
                    ),
                );
            }
            trees.push(tree);
        }
    }
    trees.extend(volume_trees);
    let fds: Vec<BorrowedFd<'_>> = trees.iter().map(|t| t.as_fd()).collect();
    let go = Message::Go {
        lowers: if caller.is_root() {
            spec.rootfs.lowers.len()
        } else {
            0
        },
        volumes: if caller.is_root() {
            bind_sources.len()
        } else {
            0
        },
    };
    parent_end.send(&go, &fds)?;
    drop(trees);
    state.pid = state::process_start_time(pid.as_raw()).map(|t| (pid.as_raw(), t));
    dir.save(state)?;
    info(
        notify,
        format!(
            "namespaces: {}",
            ns.names(namespaces::time_supported()).join(" ")
        ),
    );
    info(
        notify,
        format!(
            "rootfs: overlay of {} layer(s), {}",
            spec.rootfs.lowers.len(),
            if spec.rootfs.read_only {
                "read-only".to_string()
            } else {
                format!("writable layer {}", dir.upper().display())
            }
        ),
    );
    info(
        notify,
        match spec.network {
            NetworkMode::None => "network: none (own namespace, loopback only)".into(),
            NetworkMode::Host => "network: host (not isolated)".into(),
        },
    );

    let mut session = Session {
        chan: Some(parent_end),
        signals,
        child: pid,
        terminal: None,
        relay_stdin: spec.process.stdin,
        raw: None,
        failure: None,
    };
    let status = session.run(notify)?;
    child.reaped = true;
    if let Some((code, message)) = session.failure.take() {
        return Err(RunError::Container { code, message });
    }
    init::exit_code(status)
        .ok_or_else(|| RunError::Invalid(format!("unexpected status {status:?}")))
}

fn root_owner_uid(idmap: &IdMap, caller: &Caller) -> u32 {
    idmap.host_uid(0).unwrap_or(caller.uid)
}

fn describe_limits(spec: &Spec) -> String {
    let l = &spec.limits;
    let mut parts = Vec::new();
    if let Some(m) = l.memory {
        parts.push(format!("memory {m} bytes"));
    }
    if let Some(p) = l.pids {
        parts.push(format!("pids {p}"));
    }
    if let Some(c) = l.cpus {
        parts.push(format!("cpus {c}"));
    }
    parts.join(", ")
}

/// The container's root (a host uid, for root callers) must be able to get to its own
/// directory: every ancestor must be searchable by it.
fn check_reachable(path: &Path, uid: u32) -> Result<(), RunError> {
    use std::os::unix::fs::MetadataExt;
    for dir in path.ancestors() {
        let meta = std::fs::metadata(dir).map_err(io_err(format!("{}", dir.display())))?;
        let ok = if meta.uid() == uid {
            meta.mode() & 0o100 != 0
        } else {
            meta.mode() & 0o001 != 0
        };
        if !ok {
            return Err(RunError::Invalid(format!(
                "{} is not searchable by the container's root (host uid {uid}): chmod o+x it, or use another --root",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Kills and reaps the container's first process if launching fails half-way.
struct ChildGuard {
    pid: Pid,
    reaped: bool,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// The parent's side while the container runs: messages, signals and the terminal.
struct Session {
    chan: Option<Channel>,
    signals: SignalFd,
    child: Pid,
    terminal: Option<OwnedFd>,
    relay_stdin: bool,
    raw: Option<RawMode>,
    failure: Option<(i32, String)>,
}

impl Session {
    /// Runs until the container's first process ends; returns how it ended.
    fn run(&mut self, notify: &mut dyn FnMut(Note)) -> Result<WaitStatus, RunError> {
        let stdin = io::stdin();
        loop {
            let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            let chan_at = self.chan.as_ref().map(|c| {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let term_at = self.terminal.as_ref().map(|t| {
                fds.push(PollFd::new(t.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let stdin_at = (self.terminal.is_some() && self.relay_stdin).then(|| {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(io_err("poll")(e.into())),
            }
            let ready = |i: Option<usize>| {
                i.and_then(|i| fds[i].revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (sig_ready, chan_ready, term_ready, stdin_ready) = (
                ready(Some(0)),
                ready(chan_at),
                ready(term_at),
                ready(stdin_at),
            );
            drop(fds);

            if chan_ready {
                self.read_message(notify)?;
            }
            if term_ready {
                self.copy_terminal_output();
            }
            if stdin_ready {
                self.copy_stdin();
            }
            if sig_ready && let Some(status) = self.handle_signals()? {
                self.drain(notify)?;
                return Ok(status);
            }
        }
    }

    fn read_message(&mut self, notify: &mut dyn FnMut(Note)) -> Result<(), RunError> {
        let Some(chan) = &self.chan else {
            return Ok(());
        };
        match chan.recv()? {
            None => self.chan = None,
            Some((Message::Failed { code, message }, _)) => {
                self.failure.get_or_insert((code, message));
            }
            Some((Message::Confined { lines, warnings }, _)) => {
                for l in lines {
                    notify(Note::Info(l));
                }
                for w in warnings {
                    notify(Note::Warning(w));
                }
            }
            Some((Message::Terminal, fds)) => {
                if let Some(master) = fds.into_iter().next() {
                    self.terminal = Some(master);
                    if self.relay_stdin {
                        self.raw = RawMode::enter().map_err(io_err("raw mode"))?;
                    }
                }
            }
            Some((other, _)) => {
                return Err(ChannelError::Malformed(format!("unexpected {other:?}")).into());
            }
        }
        Ok(())
    }

    /// Handles pending signals; returns the child's status once it has ended.
    fn handle_signals(&mut self) -> Result<Option<WaitStatus>, RunError> {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match sig {
                Signal::SIGCHLD => match waitpid(self.child, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) => {}
                    Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                        return Ok(Some(status));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(io_err("wait for the container")(e.into())),
                },
                Signal::SIGWINCH if self.terminal.is_some() => {
                    if let (Some(t), Some(size)) =
                        (&self.terminal, tty::window_size(io::stdin().as_fd()))
                    {
                        let _ = tty::set_window_size(t.as_fd(), size);
                    }
                }
                other => {
                    let _ = kill(self.child, other);
                }
            }
        }
        Ok(None)
    }

    /// After the container ended: the last messages and terminal output.
    fn drain(&mut self, notify: &mut dyn FnMut(Note)) -> Result<(), RunError> {
        while self.chan.is_some() {
            self.read_message(notify)?;
        }
        while self.terminal.is_some() {
            self.copy_terminal_output();
        }
        self.raw = None;
        Ok(())
    }

    fn copy_terminal_output(&mut self) {
        let Some(t) = &self.terminal else { return };
        let mut buf = [0u8; 16 * 1024];
        match nix::unistd::read(t, &mut buf) {
            Ok(n) if n > 0 => {
                let mut out = io::stdout().lock();
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
            }
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
            // EIO: every slave descriptor is closed — the container is gone.
            _ => self.terminal = None,
        }
    }

    fn copy_stdin(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        match io::stdin().lock().read(&mut buf) {
            Ok(n) if n > 0 => {
                if let Some(t) = &self.terminal {
                    let _ = nix::unistd::write(t, &buf[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => self.relay_stdin = false,
        }
    }
}

/// Everything the container side needs, moved into the child by `clone`.
struct ChildConfig {
    spec: Spec,
    dir: ContainerDir,
    idmap: IdMap,
    fallback: Option<Fallback>,
    window: Option<WinSize>,
    /// The compiled seccomp filter, loaded by the workload as its very last step.
    seccomp: Option<CompiledFilter>,
    /// The parent's descriptors the child inherited and must not keep.
    host_fds: [RawFd; 2],
    /// Whether Go carries the layer and volume trees (root) or the child opens them (rootless).
    trees_from_parent: bool,
}

/// A failure on the container side.
#[derive(Debug, thiserror::Error)]
enum ChildError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("{what}: {source}")]
    Step { what: String, source: io::Error },
}

impl ChildError {
    fn exit_code(&self) -> i32 {
        match self {
            ChildError::Exec(e) => e.exit_code(),
            _ => 125,
        }
    }
}

fn step<E: Into<io::Error>>(what: impl Into<String>) -> impl FnOnce(E) -> ChildError {
    let what = what.into();
    move |e| ChildError::Step {
        what,
        source: e.into(),
    }
}

/// The container's first process: set up, then become init (or the workload itself).
fn container_main(mut cfg: ChildConfig, chan: Channel) -> i32 {
    for fd in cfg.host_fds {
        let _ = nix::unistd::close(fd);
    }
    let failed = |chan: &Channel, e: ChildError| {
        let code = e.exit_code();
        let _ = chan.send(
            &Message::Failed {
                code,
                message: e.to_string(),
            },
            &[],
        );
        code
    };
    let user = match prepare(&cfg, &chan) {
        Ok(user) => user,
        Err(e) => return failed(&chan, e),
    };
    let workload = Workload {
        process: &cfg.spec.process,
        user: &user,
        setgroups: cfg.idmap.setgroups,
        single_id: cfg.idmap.is_single(),
        fallback: cfg.fallback,
        hostname: cfg.spec.hostname.as_deref().unwrap_or_default(),
        window: cfg.window,
        confinement: &cfg.spec.confinement,
        seccomp: cfg.seccomp.take(),
        landlock_fs: landlock_access(&cfg.spec),
    };
    if !cfg.spec.init {
        let err = exec::exec(workload, &chan);
        return failed(&chan, err.into());
    }
    // Signals stay blocked from here into the fork; the workload unblocks its own.
    if let Err(e) = init::handled_signals().thread_block() {
        return failed(&chan, step("block signals")(e));
    }
    // SAFETY: this process is single-threaded (a fresh clone of a single-threaded rsafe), so
    // the child may run arbitrary code.
    match unsafe { nix::unistd::fork() } {
        Err(e) => failed(&chan, step("fork the workload")(e)),
        Ok(ForkResult::Child) => {
            let err = exec::exec(workload, &chan);
            let code = failed(&chan, err.into());
            // SAFETY: _exit ends the forked process without running the parent's atexit
            // handlers or flushing buffers it shares with init.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(chan);
            // Init only waits and forwards signals: it keeps CAP_KILL (to signal a workload
            // running as another user) and nothing else, and can never gain more.
            let _ = caps::apply(&[Capability::CAP_KILL]);
            let _ = caps::set_no_new_privs();
            // Init keeps nothing of the host: only stdio stays open.
            let _ = sys::close_from(3);
            init::supervise(child)
        }
    }
}

/// What landlock lets the workload touch besides the policy's own paths: the image read and
/// execute, and the writable places read-write. A writable root is the container's own
/// writable layer, so all of it is; with `--read-only` only tmpfs mounts and read-write
/// volumes are.
fn landlock_access(spec: &Spec) -> FsAccess {
    if !spec.rootfs.read_only {
        return FsAccess {
            read_exec: Vec::new(),
            read_write: vec![PathBuf::from("/")],
        };
    }
    let writable = spec.mounts.iter().filter_map(|m| match m {
        MountSpec::Bind {
            target,
            read_only: false,
            ..
        }
        | MountSpec::Tmpfs { target, .. } => Some(PathBuf::from(target)),
        MountSpec::Bind { .. } => None,
    });
    FsAccess {
        read_exec: vec![PathBuf::from("/")],
        read_write: writable.collect(),
    }
}

/// Everything from Go to `pivot_root`: returns the workload's resolved user.
fn prepare(cfg: &ChildConfig, chan: &Channel) -> Result<user::ExecUser, ChildError> {
    let spec = &cfg.spec;
    let (msg, fds) = chan.expect("waiting for the id maps")?;
    let Message::Go { lowers, volumes } = msg else {
        return Err(ChannelError::Malformed(format!("expected Go, got {msg:?}")).into());
    };
    if fds.len() != lowers + volumes {
        return Err(ChannelError::Malformed("descriptor count does not match Go".into()).into());
    }
    let mut fds = fds.into_iter();

    // Nothing of rsafe's command line or environment stays readable in this process.
    sys::scrub_process_memory("rsafe-init").map_err(step("scrub the command line"))?;
    let _ = rustix::thread::set_name(c"rsafe-init");
    become_root(&cfg.idmap)?;
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(step("set the parent-death signal"))?;
    if parent_gone(chan) {
        return Err(ChannelError::Closed("starting").into());
    }
    // Not dumpable: no container process may ptrace init or open /proc/1/{fd,exe,mem}.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(step("make init non-dumpable"))?;
    // A session of its own: the host terminal's job-control signals do not reach the
    // container directly (rsafe forwards them).
    nix::unistd::setsid().map_err(step("setsid"))?;

    namespaces::enter_cgroup_namespace()?;
    if namespaces::time_namespace_for_children()? && !spec.init {
        namespaces::join_time_namespace_for_children()?;
    }
    if let Some(name) = &spec.hostname {
        namespaces::set_hostname(name)?;
    }
    if spec.network == NetworkMode::None {
        namespaces::loopback_up()?;
    }

    rootfs::make_private()?;
    let dir = &cfg.dir;
    let open_dir = |path: &Path| -> Result<OwnedFd, ChildError> {
        rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(step(format!("open {}", path.display())))
    };
    let mut lower_fds = Vec::new();
    for (i, path) in spec.rootfs.lowers.iter().enumerate() {
        if cfg.trees_from_parent {
            let stage = dir.lower().join(i.to_string());
            let tree = fds.next().ok_or(ChannelError::Closed("receiving layers"))?;
            mounts::attach(&tree, &open_dir(&stage)?).map_err(step(format!("attach layer {i}")))?;
            lower_fds.push(open_dir(&stage)?);
        } else {
            lower_fds.push(open_dir(path)?);
        }
    }
    let (upper, work) = (open_dir(&dir.upper())?, open_dir(&dir.work())?);
    rootfs::mount_overlay(
        &OverlayDirs {
            lowers: &lower_fds,
            upper: &upper,
            work: &work,
        },
        &open_dir(&dir.rootfs())?,
    )?;
    drop((lower_fds, upper, work));

    let root = Root::open(&dir.rootfs())?;
    rootfs::mount_system(
        &root,
        &SystemMounts {
            own_network: spec.network == NetworkMode::None,
            tty_gid: cfg.idmap.host_gid(5).map(|_| 5),
            masked_paths: &spec.masked_paths,
            readonly_paths: &spec.readonly_paths,
        },
    )?;
    let trees: Vec<Option<OwnedFd>> = spec
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Bind { .. } if cfg.trees_from_parent => fds.next(),
            _ => None,
        })
        .collect();
    mounts::mount_user(&root, &spec.mounts, trees)?;
    rootfs::protect_paths(&root, &spec.masked_paths, &spec.readonly_paths)?;
    if spec.rootfs.read_only {
        rootfs::seal_read_only(&root)?;
    }
    rootfs::pivot(&root)?;
    drop(root);

    let user = user::resolve(spec.process.user.as_deref(), Path::new("/etc"))?;
    // Docker creates a missing working directory; a read-only root reports it at chdir.
    let _ = std::fs::create_dir_all(&spec.process.cwd);
    Ok(user)
}

/// Takes uid and gid 0 of the new user namespace (and drops the caller's supplementary
/// groups where the namespace allows `setgroups`).
fn become_root(idmap: &IdMap) -> Result<(), ChildError> {
    if idmap.setgroups {
        nix::unistd::setgroups(&[]).map_err(step("drop supplementary groups"))?;
    }
    let (gid, uid) = (Gid::from_raw(0), Uid::from_raw(0));
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(step("become root of the user namespace (gid)"))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(step("become root of the user namespace"))?;
    Ok(())
}

/// Whether rsafe died before the parent-death signal was armed (then it never comes).
fn parent_gone(chan: &Channel) -> bool {
    let mut fds = [PollFd::new(chan.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP))
}
