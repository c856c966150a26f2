//! Starting a container: the processes involved, what each does, and in which order. This
//! module is rsafe's (the parent's) side up to the start; [`super::session`] is its side while
//! the container runs, [`super::container`] the container's side up to `execve`. `rsafe
//! create` ([`create`]) records a container without starting anything; [`start`] starts a
//! created container and restarts a stopped one by the same path. What this shares with the OCI
//! interface's `create`, and what differs, is in [`super::launch`].
//!
//! ```text
//! rsafe run (host namespaces)        container init (pid 1)               workload
//! ───────────────────────────        ──────────────────────               ────────
//! plan id maps, reserve an id
//! [--name] names lock, name free?
//! clone(NEWUSER|NEWNS|NEWPID|NEWIPC|NEWUTS) ─────────▶ [NEWNET] unshare, wait for Go
//! write uid_map/gid_map
//! make containers/<id>/ [--name: state.json now, names lock released]
//! cgroup (or say which limit falls back), state.json
//! [slirp4netns] slirp4netns on its netns, ─▶ tap0 configured
//!   TCP port forwarder (super::portfwd)
//! [root] clone layer and volume trees
//! Go (+ cgroup v1 `tasks` files) ───▶ join the v1 cgroups
//!                                     become root of the namespace
//! seccomp filter: cache or compile    parent-death signal, not dumpable
//! Seccomp ──────────────────────────▶ time namespace, hostname, loopback
//! [v2] move the child into the cgroup overlay root, /proc /dev /sys,
//!                                     /etc/hostname, hosts, resolv.conf,
//!                                     volumes, masks, pivot_root
//! [v2] InCgroup ────────────────────▶ cgroup namespace
//! [run] config.json (super::oci::from_spec)
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
//! - The network namespace is the child's first act instead of a `clone` flag (it is owned by
//!   the container's user namespace either way): making one costs about a millisecond, spent
//!   while rsafe makes the container's directory, cgroup and state.
//! - The child is in its cgroup before it forks, and enters its cgroup namespace only then, so
//!   the container sees its own cgroup as `/`. Moving another process into a cgroup waits for
//!   an RCU grace period (4–16 ms here); a single-threaded process moving itself into a v1
//!   cgroup does not, so the child joins on its own, with `tasks` files rsafe opened for it
//!   ([`super::cgroups::SelfJoin`]). v2 has no such path: rsafe moves the child while the child
//!   builds its root filesystem.
//! - `state.json` is written once, after the clone, when the first process (whose end is the
//!   container's end) and the cgroup are both known: each rewrite is a synchronous discard on
//!   a disk mounted with `discard`.
//! - The seccomp filter is compiled (when the store's cache has none) while the child mounts.
//! - Mounts need the host's view (host devices, a visible procfs for the kernel's "not too
//!   revealing" check), so they all happen before `pivot_root`; after it, nothing of the host is
//!   reachable.
//! - Credentials change last but one (it clears the parent-death signal, so that is set again),
//!   and confinement that would forbid the setup itself (seccomp) goes right before `execve`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use super::cgroups::{Cgroup, CgroupError, CgroupFs, Controller, Fallback, OomKills, SelfJoin};
use super::channel::{self, ChannelError, Message};
use super::container::{ChildConfig, container_main};
use super::idmap::{Caller, IdMap, IdMapError};
use super::init;
use super::launch::{self, ChildGuard};
use super::learn::paths::FileDenials;
use super::learn::{self, Recorder};
use super::logindex;
use super::mounts;
use super::namespaces::{self, NamespaceError, Namespaces};
use super::network::{self, NetworkError, UserNetwork};
use super::rootless_net::Holder;
use super::seccomp::{CompiledFilter, FilterCache, SeccompError};
use super::session::{Session, Tee};
use super::spec::{BindOwnership, MountSpec, NetworkMode, Spec};
use super::state::{self, ContainerDir, State, StateError, Status};
use super::sys;
use super::tty;
use super::{bridge, enter, netns_join};

/// Something rsafe wants the user to know while starting a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A protection is weaker than asked for (always shown).
    Warning(String),
    /// What was set up and enforced (shown with `--verbose`).
    Info(String),
    /// The workload is running (its `execve` succeeded): what `rsafe run -d` waits for.
    Started { id: String },
    /// The container has ended; its exit is recorded next. A detached container's monitor
    /// has its log relay take in everything the container wrote first, so that `rsafe wait`
    /// returning means `rsafe logs` has it all (as docker's exit event comes after its
    /// output is copied).
    Ended,
}

/// What to run and where to keep its state.
#[derive(Debug)]
pub struct RunRequest {
    pub spec: Spec,
    /// The store root; the container lives in `<store>/containers/<id>/`.
    pub store_root: PathBuf,
    /// What is run, as `rsafe ps` shows it (the rootfs directory or image reference).
    pub image: String,
    pub name: Option<String>,
    /// `--rm`: remove the container (and its writable layer) when it exits.
    pub remove: bool,
    /// The container's id map ([`IdMap::for_this_process`], which the image's layers were
    /// extracted for).
    pub idmap: IdMap,
    /// `-d`: the file rsafe's stdout and stderr (and so the container's) already go to, made
    /// unnamed (`O_TMPFILE`, see [`state::new_log`]); named `<dir>/log` once the container's
    /// directory exists, for `rsafe logs`.
    pub log: Option<std::fs::File>,
    /// `--learn`: record what the workload uses ([`super::learn`]) into this.
    pub learn: Option<Recorder>,
    /// Where the container's output goes.
    pub output: Output,
}

/// Where a container's output goes.
#[derive(Debug)]
pub enum Output {
    /// Straight to rsafe's stdout and stderr, which the container inherits (with `-d` they
    /// are the log relay's pipe already).
    Inherited,
    /// `-dt`: the container's terminal goes to the log relay, which serves `rsafe attach`
    /// ([`super::detach`]).
    RelayTerminal(std::os::unix::net::UnixStream),
    /// In the foreground: through rsafe, which copies it to its own stdout and stderr and
    /// appends it to the container's log and its index, so that `rsafe logs` has it, as
    /// docker's does.
    Tee,
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
    #[error(transparent)]
    Network(#[from] NetworkError),
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

/// The signals a client passes on to the container: `rsafe run`, `start` and `exec` in the
/// foreground, and `rsafe attach` with `--sig-proxy`.
pub(super) const PASSED_ON: [Signal; 6] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The signals rsafe passes on to the container (and SIGCHLD, which tells it the container
/// ended, and SIGWINCH, which resizes the container's terminal).
pub(super) fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in PASSED_ON
        .into_iter()
        .chain([Signal::SIGWINCH, Signal::SIGCHLD])
    {
        set.add(s);
    }
    set
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The workload's exit code: 128+N when signal N ended it.
    pub code: i32,
    /// What the memory cgroup's OOM killer did, if it killed anything (never claimed for the
    /// rlimit fallback: a failed allocation there is the workload's own error, not a kill).
    pub oom: Option<OomKills>,
}

impl Exit {
    /// What to tell the user about how the container ended, beyond its exit code: that the
    /// workload was killed for lack of memory (`killed: out of memory (limit 64 MiB)`), or
    /// that some of its processes were while it went on.
    pub fn report(&self) -> Option<String> {
        let oom = self.oom?;
        if self.code == 128 + Signal::SIGKILL as i32 {
            return Some(format!("killed: {oom}"));
        }
        let n = oom.count;
        Some(format!(
            "warning: {oom}: the kernel killed {n} process{} in the container",
            if n == 1 { "" } else { "es" }
        ))
    }
}

/// Runs a container to completion and returns how it ended (the workload's exit code; 128+N
/// when a signal N ended it). Every exit path removes the cgroup, and with `remove` (or when
/// it failed before its state was saved with its first process) the container directory;
/// otherwise its state records the exit code.
pub fn run(req: RunRequest, notify: &mut dyn FnMut(Note)) -> Result<Exit, RunError> {
    let caller = Caller::current();
    let idmap = idmap_of(&req)?;
    let mut names_lock = claim_name(&req.store_root, req.name.as_deref())?;
    let root_owner = root_owner(&idmap, &caller);
    let dir = ContainerDir::reserve(&req.store_root)?;
    let mut state = new_state(&req, &dir, &idmap, &caller, Status::Running);
    // A named container's state is written as soon as its directory exists, so that the
    // names lock can go (an unnamed one's waits until its first process and cgroup are known).
    let claim = names_lock.is_some().then(|| state.clone());
    let tee_log = match req.output {
        Output::Tee => Some(state::new_log(&req.store_root)?),
        Output::Inherited | Output::RelayTerminal(_) => None,
    };
    // Made once the container's first process exists, while it makes its network namespace.
    let mut lock = None;
    let mut make_dir = |dir: &ContainerDir| -> Result<(), RunError> {
        dir.make(root_owner)?;
        lock = Some(dir.lock(&dir.id)?);
        if let Some(claim) = &claim {
            dir.save(claim)?;
            names_lock = None;
        }
        if let Some(log) = req.log.as_ref().or(tee_log.as_ref()) {
            dir.keep_log(log)?;
        }
        // Kept for `rsafe start`, and for `rsafe exec` (a `--rm` container's too).
        dir.save_spec(&req.spec)?;
        Ok(())
    };
    let ctx = Launch {
        store_root: &req.store_root,
        caller: &caller,
        idmap: &idmap,
        dir: &dir,
        learn: req.learn.as_ref(),
        recorded: std::cell::Cell::new(false),
        bundle_config: true,
    };
    let result = launch(
        &ctx,
        &req.spec,
        &mut state,
        &mut make_dir,
        (req.output, tee_log.as_ref()),
        notify,
    );
    // The cgroup's peaks, before `finish` removes it.
    if let (Some(recorder), Some(cg)) = (&req.learn, &state.cgroup) {
        learn::record_peaks(cg, recorder);
    }
    // A container whose state was never recorded with its first process was not made (a
    // full store, a limit the cgroup refused): as docker leaves nothing when it cannot create
    // a container, what was made goes, the name with it.
    let remove = req.remove || (result.is_err() && !ctx.recorded.get());
    let exit = finish(result, &req.spec, &dir, &mut state, remove, notify);
    drop(lock);
    exit
}

/// `rsafe create`: checks and records the container `req` describes, with status `Created`
/// and no process, and returns its id. Everything `run` checks before its first process is
/// checked here (the layers, the name under the names lock, the network it joins); `rsafe
/// start` then starts it through [`start`], the path a stopped container restarts by.
///
/// What a `kill -9` leaves, at any moment: before the directory, nothing; between the
/// directory and `state.json`, a directory [`state::list`] shows as `Dead` (`rm` removes it);
/// `state.json` is written last, so a recorded container always has its spec.
pub fn create(req: &RunRequest, notify: &mut dyn FnMut(Note)) -> Result<String, RunError> {
    let caller = Caller::current();
    let idmap = idmap_of(req)?;
    check_rootfs(&req.spec, &caller, &idmap, notify)?;
    // What `run` finds missing when it mounts, `create` says now (as podman's does).
    for source in req.spec.mounts.iter().filter_map(MountSpec::host_source) {
        std::fs::metadata(source).map_err(io_err(format!("volume {}", source.display())))?;
    }
    let names_lock = claim_name(&req.store_root, req.name.as_deref())?;
    let dir = ContainerDir::reserve(&req.store_root)?;
    dir.make(root_owner(&idmap, &caller))?;
    let recorded = (|| {
        // Held while it is being made: `ps -a` shows it `Created`, `rm` waits.
        let _lock = dir.lock(&dir.id)?;
        dir.save_spec(&req.spec)?;
        let config_note = write_bundle_config(&dir, &req.spec, &idmap)?;
        // Empty until it runs: `rsafe logs` of a created container prints nothing, as docker's.
        dir.keep_log(&state::new_log(&req.store_root)?)?;
        dir.save(&new_state(req, &dir, &idmap, &caller, Status::Created))?;
        Ok::<_, RunError>(config_note)
    })();
    match recorded {
        Err(e) => {
            let _ = dir.remove(&idmap);
            return Err(e);
        }
        Ok(Some(note)) => notify(Note::Info(note)),
        Ok(None) => {}
    }
    drop(names_lock);
    Ok(dir.id)
}

/// `run`'s container as a runtime-spec bundle, written once everything the first process
/// waits for is sent (it builds its root filesystem meanwhile), so start-up does not wait for
/// it. The container runs either way: a file that cannot be written (a full store) is a
/// warning, and what is not written is said with `--verbose`.
fn write_run_config(ctx: &Launch<'_>, spec: &Spec, notify: &mut dyn FnMut(Note)) {
    if ctx.learn.is_some() {
        // The learning filter stacked on the workload's is the runner's, not a bundle's.
        notify(Note::Info(format!(
            "{}: not written: --learn stacks a notifying seccomp filter a bundle cannot describe",
            ctx.dir.path.join("config.json").display()
        )));
        return;
    }
    match write_bundle_config(ctx.dir, spec, ctx.idmap) {
        Ok(Some(why)) => notify(Note::Info(why)),
        Ok(None) => {}
        Err(e) => notify(Note::Warning(format!("the container's config.json: {e}"))),
    }
}

/// The container as a runtime-spec bundle, `config.json` beside its `spec.json` (as podman
/// keeps `userdata/config.json`); when its spec cannot be expressed as one, why (for
/// `--verbose`), and no file.
fn write_bundle_config(
    dir: &ContainerDir,
    spec: &Spec,
    idmap: &IdMap,
) -> Result<Option<String>, RunError> {
    use super::oci::from_spec::{self, FromSpecError};
    from_spec::write_config(dir, spec, idmap).map_err(|e| match e {
        FromSpecError::Io { what, source } => RunError::Io { what, source },
        other => RunError::Invalid(other.to_string()),
    })
}

/// The id map a new container gets: its request's, or, for one joining another's network
/// (`--network container:NAME`), that container's, since it is made in that user namespace.
fn idmap_of(req: &RunRequest) -> Result<IdMap, RunError> {
    Ok(match &req.spec.net.join {
        Some(name) => state::find(&req.store_root, name)?.1.idmap,
        None => req.idmap.clone(),
    })
}

/// A name is claimed under the store's names lock, held (the returned lock) until the new
/// container's state carries it: two runs or creates with one name cannot both find it free.
fn claim_name(store_root: &Path, name: Option<&str>) -> Result<Option<state::NamesLock>, RunError> {
    let Some(name) = name else {
        return Ok(None);
    };
    state::check_name(name)?;
    let lock = state::lock_names(store_root)?;
    // A dead `--rm` container gives its name back.
    state::sweep(store_root)?;
    state::ensure_name_free(store_root, name)?;
    Ok(Some(lock))
}

/// The host uid and gid of the container's root, who owns its writable layer.
fn root_owner(idmap: &IdMap, caller: &Caller) -> (u32, u32) {
    (
        idmap.host_uid(0).unwrap_or(caller.uid),
        idmap.host_gid(0).unwrap_or(caller.gid),
    )
}

/// A new container's `state.json`, with no process yet.
fn new_state(
    req: &RunRequest,
    dir: &ContainerDir,
    idmap: &IdMap,
    caller: &Caller,
    status: Status,
) -> State {
    State {
        id: dir.id.clone(),
        name: req.name.clone(),
        image: req.image.clone(),
        command: req.spec.process.args.clone(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        status,
        pid: None,
        owner: caller.uid,
        idmap: idmap.clone(),
        cgroup: None,
        boot_id: state::boot_id(),
        volumes: req
            .spec
            .mounts
            .iter()
            .filter_map(|m| match m {
                MountSpec::Volume { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect(),
        layers: req.spec.rootfs.lowers.clone(),
        oom_killed: false,
        auto_remove: req.remove,
        ports: req.spec.net.ports.clone(),
        damaged: None,
    }
}

/// How long `start` waits for another rsafe holding the container's start lock (a `start`,
/// `container prune` or `rm` under way) before it says so.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The stopped container `name_or_id` of this caller, its state read again under its start
/// lock. The lock held by another rsafe is not "still running": what that one did decides
/// (a prune removed it: no such container; a start runs it: still running), read once it
/// lets go; one that keeps it is named as such.
fn locked_stopped(
    store_root: &Path,
    name_or_id: &str,
    caller: &Caller,
) -> Result<(state::ContainerDir, State, std::fs::File), RunError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let (dir, state) = state::find(store_root, name_or_id)?;
        if state.is_alive() {
            return Err(StateError::Running(name_or_id.to_string()).into());
        }
        if state.owner != caller.uid {
            return Err(RunError::Invalid(format!(
                "container {name_or_id} belongs to uid {}: start it as that user",
                state.owner
            )));
        }
        match dir.lock(name_or_id) {
            Ok(lock) => {
                // Read again under the lock: the holder may have changed it.
                let (_, state) = state::find(store_root, name_or_id)?;
                if state.is_alive() {
                    return Err(StateError::Running(name_or_id.to_string()).into());
                }
                return Ok((dir, state, lock));
            }
            Err(StateError::Running(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(StateError::Running(_)) => {
                return Err(RunError::Invalid(format!(
                    "container {name_or_id} is being started or removed by another rsafe command (it holds {}): try again once it is done",
                    dir.path.join(".lock").display()
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Starts the stopped container `name_or_id` again, as `rsafe run` made it: the same spec
/// (image layers, command, environment, volumes, limits, confinement, id map) on the same
/// writable layer, so what its earlier runs wrote is there. A container `rsafe create` made
/// starts here too, for the first time: this is the one path of both. `stdin` attaches stdin
/// (`-i`) or not; `None` keeps what the container was made with (`start -d` of a `run -dit`
/// one). `output`: as [`RunRequest::output`] (a log made by an earlier run is added to).
/// Volumes are seeded from the image only on a created container's first start, and only
/// while still empty (docker's rule). A `--rm` container is removed when this run ends. Runs
/// to completion, like [`run`].
pub fn start(
    store_root: &Path,
    name_or_id: &str,
    stdin: Option<bool>,
    output: Output,
    notify: &mut dyn FnMut(Note),
) -> Result<Exit, RunError> {
    let caller = Caller::current();
    let (dir, mut state, lock) = locked_stopped(store_root, name_or_id, &caller)?;
    let mut spec = dir.load_spec(name_or_id)?;
    if let Some(stdin) = stdin {
        spec.process.stdin = stdin;
    }
    let first_run = state.status == Status::Created;
    for mount in &mut spec.mounts {
        if let MountSpec::Volume {
            populate, source, ..
        } = mount
        {
            *populate = *populate && first_run && is_empty_dir(source);
        }
    }
    // A run whose rsafe was killed could not remove its cgroup.
    if let Some(cg) = state.cgroup.take() {
        for e in cg.remove() {
            notify(Note::Warning(format!("cannot remove the old cgroup: {e}")));
        }
    }
    // A run that ended normally synced its writable layer (see `finish`). One whose rsafe
    // was killed did not: its writes are safe only if the host has not restarted since.
    if dir.has_volatile_marker() {
        let same_boot = state.boot_id.is_some() && state.boot_id == state::boot_id();
        if !same_boot {
            return Err(RunError::Invalid(format!(
                "container {name_or_id} was cut off and the host restarted since: its writable layer was never synced and cannot be trusted (rsafe rm it)"
            )));
        }
        dir.settle_volatile_layer()
            .map_err(io_err(format!("sync the writable layer of {name_or_id}")))?;
    }
    state.boot_id = state::boot_id();
    state.status = Status::Running;
    state.pid = None;
    let idmap = state.idmap.clone();
    let tee_log = match output {
        Output::Tee => Some(append_log(&dir)?),
        Output::Inherited | Output::RelayTerminal(_) => None,
    };
    let ctx = Launch {
        store_root,
        caller: &caller,
        idmap: &idmap,
        dir: &dir,
        learn: None,
        recorded: std::cell::Cell::new(false),
        // Written when the container was made (`run` or `create`).
        bundle_config: false,
    };
    let result = launch(
        &ctx,
        &spec,
        &mut state,
        &mut |_| Ok(()),
        (output, tee_log.as_ref()),
        notify,
    );
    let remove = state.auto_remove;
    let exit = finish(result, &spec, &dir, &mut state, remove, notify);
    drop(lock);
    exit
}

/// Whether `dir` is a directory with nothing in it (a volume another container has not
/// filled since this one was created).
fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

/// The container's log, made if its earlier runs kept none, to be added to.
fn append_log(dir: &ContainerDir) -> Result<std::fs::File, RunError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.log_file();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(path.display().to_string()))
}

/// After the container ended (or failed to start): how it ended, read from its cgroup before
/// the cgroup is removed; then the container directory removed (`remove`) or its exit recorded.
fn finish(
    result: Result<i32, RunError>,
    spec: &Spec,
    dir: &ContainerDir,
    state: &mut State,
    remove: bool,
    notify: &mut dyn FnMut(Note),
) -> Result<Exit, RunError> {
    notify(Note::Ended);
    let oom = match (&result, &state.cgroup, spec.limits.memory) {
        (Ok(_), Some(cg), Some(limit)) => cg.oom_kills(limit),
        _ => None,
    };
    let cgroup_left = state
        .cgroup
        .as_ref()
        .map(Cgroup::remove)
        .unwrap_or_default();
    for e in &cgroup_left {
        notify(Note::Warning(format!("cannot remove cgroup: {e}")));
    }
    let code = match &result {
        Ok(code) => *code,
        Err(e) => e.exit_code(),
    };
    if !dir.exists() {
        // `rsafe run` failed before it made the directory: nothing to remove or record.
    } else if remove && !cgroup_left.is_empty() {
        // A cgroup whose processes are still exiting cannot go yet. The container stays,
        // Dead, with its state (and `--rm`): the next `ps -a` removes both. Removing the
        // directory now would leave a cgroup nothing lists.
        notify(Note::Warning(format!(
            "container {} is kept until its cgroup can be removed (the next `rsafe ps -a` removes it)",
            dir.id
        )));
    } else if remove {
        if let Err(e) = dir.remove(&state.idmap) {
            notify(Note::Warning(format!(
                "cannot remove container {}: {e}",
                dir.id
            )));
        }
    } else {
        // Kept for `rsafe start`: its writable layer, mounted without syncing, is flushed now
        // (one syncfs, only for containers that are kept) so a host crash cannot spoil it.
        if !spec.rootfs.read_only
            && let Err(e) = dir.settle_volatile_layer()
        {
            notify(Note::Warning(format!(
                "cannot sync the writable layer of {}: {e}",
                dir.id
            )));
        }
        state.status = Status::Exited { code };
        state.oom_killed = oom.is_some() && code == 128 + Signal::SIGKILL as i32;
        if let Err(e) = dir.save(state) {
            if e.is_no_space() {
                dir.mark_exit_unrecorded();
            }
            notify(Note::Warning(format!(
                "cannot record the exit of {}: {e}",
                dir.id
            )));
        }
    }
    result.map(|code| Exit { code, oom })
}

/// What every phase of [`launch`] works with: the store, who starts the container, its id
/// map and directory, and the recorder of a learning run.
struct Launch<'a> {
    store_root: &'a Path,
    caller: &'a Caller,
    idmap: &'a IdMap,
    dir: &'a ContainerDir,
    learn: Option<&'a Recorder>,
    /// Set once the state is saved with the first process: from then on a failure is the
    /// container's, recorded as its exit; before, `run` made no container.
    recorded: std::cell::Cell<bool>,
    /// Write the container's `config.json` ([`write_run_config`]): `run` does, `start` finds
    /// it written.
    bundle_config: bool,
}

/// The container's first process as the phases after the clone use it. (Its guard, which
/// kills it if launching fails, stays with [`launch`]: it must go after the networks.)
struct FirstProcess {
    pid: Pid,
    /// Signals to forward, arriving through a descriptor.
    signals: SignalFd,
    /// rsafe's end of the sync channel.
    chan: channel::Channel,
}

/// Everything from the container's first process to its end, in the phases the module
/// documentation draws. `make_dir` makes the container's directory (a new one for `run`,
/// nothing for `start`): it runs once the first process exists, while that process makes its
/// network namespace. `output` says where the container's output goes, with the log to add it
/// to for [`Output::Tee`].
fn launch(
    ctx: &Launch<'_>,
    spec: &Spec,
    state: &mut State,
    make_dir: &mut dyn FnMut(&ContainerDir) -> Result<(), RunError>,
    (output, tee_log): (Output, Option<&std::fs::File>),
    notify: &mut dyn FnMut(Note),
) -> Result<i32, RunError> {
    let (joined, pod) = join_pod(ctx.store_root, spec, ctx.idmap)?;
    let own_spec = spec;
    let spec = pod.as_ref().unwrap_or(spec);
    let (lower_owners, volume_trees) = ctx.check_host(spec, notify)?;

    // Without a terminal, a teed container's stdout and stderr are pipes to rsafe.
    let tee_pipes = tee_log.is_some() && !spec.process.terminal;
    let holder = network_holder(ctx.store_root, spec, ctx.caller, ctx.idmap, notify)?;
    let (mut child, first, pipes) = ctx.spawn(spec, joined.as_ref(), holder.as_ref(), tee_pipes)?;
    drop(joined);
    let tee = ctx.make_dir(make_dir, tee_log, pipes)?;
    let (fallback, self_join) = ctx.limits_and_state(spec, state, first.pid, notify)?;
    // After the save: a container whose published port was ever reachable has its state (and
    // `--rm`) on disk. The networks go with this function, or with rsafe if it is killed.
    let networks = start_networks(
        ctx.store_root,
        spec,
        (ctx.dir, state),
        first.pid,
        holder.as_ref(),
    )?;
    if let Some(note) = networks.note() {
        notify(Note::Warning(note.to_string()));
    }

    let (trees, go_counts) = container_trees(
        spec,
        (ctx.caller, ctx.idmap, first.pid),
        &lower_owners,
        volume_trees,
        notify,
    )?;
    let go_flags = (fallback, networks.outbound());
    send_go(&first.chan, trees, go_counts, self_join, state, go_flags)?;
    let files = send_seccomp(
        ctx.store_root,
        spec,
        ctx.learn.is_some(),
        &first.chan,
        notify,
    )?;
    move_into_v2_cgroup(state, first.pid, &first.chan)?;
    if ctx.bundle_config {
        write_run_config(ctx, own_spec, notify);
    }
    describe_isolation(spec, ctx.dir, notify);
    let session = ctx.session(spec, first, (files, tee), output);
    supervise(session, &mut child, ctx.dir, ctx.learn, notify)
}

impl Launch<'_> {
    /// Before anything exists: who starts the container (`--verbose`), the host paths it will
    /// be made of checked (the layers' owners returned), and as root the volumes detached.
    fn check_host(
        &self,
        spec: &Spec,
        notify: &mut dyn FnMut(Note),
    ) -> Result<(Vec<u32>, Vec<OwnedFd>), RunError> {
        announce(self.dir, self.caller, self.idmap, notify);
        let lower_owners = check_rootfs(spec, self.caller, self.idmap, notify)?;
        let bind_sources: Vec<&Path> = spec
            .mounts
            .iter()
            .filter_map(MountSpec::host_source)
            .collect();
        let volume_trees = volume_trees(self.caller, &bind_sources)?;
        Ok((lower_owners, volume_trees))
    }

    /// The first process cloned (in `joined`'s namespaces, or under a rootless network's
    /// `holder`) and its id maps written; its guard, what the later phases use of it, and with
    /// `tee_pipes` the read ends of its stdout and stderr.
    fn spawn(
        &self,
        spec: &Spec,
        joined: Option<&enter::Joined>,
        holder: Option<&Holder>,
        tee_pipes: bool,
    ) -> Result<(ChildGuard, FirstProcess, Option<OutputPipes>), RunError> {
        let (child, chan, signals, pipes) = spawn_init(
            spec,
            self.dir,
            self.idmap,
            self.caller,
            (self.learn.is_some(), tee_pipes),
            joined,
            holder,
        )?;
        let pid = child.pid;
        write_id_maps(self.idmap, pid, holder, joined.is_some())?;
        Ok((child, FirstProcess { pid, signals, chan }, pipes))
    }

    /// The container's directory (`make_dir`), the log its output is teed to, and as root a
    /// check that the container's root can reach the directory.
    fn make_dir(
        &self,
        make_dir: &mut dyn FnMut(&ContainerDir) -> Result<(), RunError>,
        tee_log: Option<&std::fs::File>,
        pipes: Option<OutputPipes>,
    ) -> Result<Option<Tee>, RunError> {
        make_dir(self.dir)?;
        let tee = tee_log
            .map(|log| Tee::new(log, &logindex::index_file(self.dir), pipes))
            .transpose()
            .map_err(io_err("keep the container's log"))?;
        if self.caller.is_root() {
            check_reachable(&self.dir.path, root_owner(self.idmap, self.caller).0)?;
        }
        Ok(tee)
    }

    /// The cgroup and its limits (with the stand-ins for those no cgroup takes, and the v1
    /// files the child joins itself, both for Go), then the one save of the state.
    fn limits_and_state(
        &self,
        spec: &Spec,
        state: &mut State,
        pid: Pid,
        notify: &mut dyn FnMut(Note),
    ) -> Result<(Option<Fallback>, Option<SelfJoin>), RunError> {
        let fallback = set_up_limits(spec, self.dir, state, notify)?;
        let self_join = state.cgroup.as_ref().map(Cgroup::self_join).transpose()?;
        // One save, with everything `ps`, `rm` and a later `start` need: the first process (whose
        // end is the container's) and the cgroup to remove.
        state.pid = state::process_start_time(pid.as_raw()).map(|t| (pid.as_raw(), t));
        self.dir.save(state)?;
        self.recorded.set(true);
        Ok((fallback, self_join))
    }

    /// rsafe's side while the container runs, from the first process and what was made for
    /// it: the files a learning run records, the tee of its output, where its terminal goes.
    fn session(
        &self,
        spec: &Spec,
        first: FirstProcess,
        (files, tee): (Option<FileDenials>, Option<Tee>),
        output: Output,
    ) -> Session {
        Session {
            id: self.dir.id.clone(),
            chan: Some(first.chan),
            signals: first.signals,
            child: first.pid,
            terminal: None,
            relay_stdin: spec.process.stdin,
            raw: None,
            failure: None,
            learn: self.learn.cloned(),
            supervisor: None,
            files,
            learn_forward: None,
            terminal_to: match output {
                Output::RelayTerminal(relay) => Some(relay),
                Output::Inherited | Output::Tee => None,
            },
            tee,
        }
    }
}

/// The id maps of the first process's new user namespace: written from inside a rootless
/// network's holder (the only place the kernel takes them from for a namespace nested there),
/// else from here; none for a namespace joined (`--network container:NAME`), which has its
/// owner's.
fn write_id_maps(
    idmap: &IdMap,
    pid: Pid,
    holder: Option<&Holder>,
    joined: bool,
) -> Result<(), RunError> {
    match holder {
        Some(holder) => holder.write_map(idmap, pid.as_raw())?,
        None if !joined => idmap.write(pid.as_raw())?,
        None => {}
    }
    Ok(())
}

/// The trees the container mounts, handed over with `Go`: as root, the image's layers
/// (opened and id-mapped here) and the bind sources id-mapped where asked, with how many of
/// each; rootless, the container opens its own layers and `volume_trees` go as they are.
fn container_trees(
    spec: &Spec,
    (caller, idmap, pid): (&Caller, &IdMap, Pid),
    lower_owners: &[u32],
    volume_trees: Vec<OwnedFd>,
    notify: &mut dyn FnMut(Note),
) -> Result<(Vec<OwnedFd>, (usize, usize)), RunError> {
    if !caller.is_root() {
        return Ok((volume_trees, (0, 0)));
    }
    let mut trees = layer_trees(spec, lower_owners, idmap, pid, notify)?;
    idmap_bind_trees(spec, &volume_trees, pid)?;
    let counts = (spec.rootfs.lowers.len(), volume_trees.len());
    trees.extend(volume_trees);
    Ok((trees, counts))
}

/// The last phase: rsafe's side while the container runs ([`Session`]), with `rsafe exec`
/// into a container being learned recorded as runs of their own; the container's exit code.
fn supervise(
    mut session: Session,
    child: &mut ChildGuard,
    dir: &ContainerDir,
    learn: Option<&Recorder>,
    notify: &mut dyn FnMut(Note),
) -> Result<i32, RunError> {
    let exec_hook = match learn.map(|r| learn::exec_hook::ExecHook::start(&dir.path, r.clone())) {
        Some(Ok(hook)) => Some(hook),
        Some(Err(e)) => {
            notify(Note::Warning(format!(
                "rsafe exec into this container will not be learned: {e}"
            )));
            None
        }
        None => None,
    };
    let status = session.run(notify);
    if let Some(hook) = exec_hook {
        hook.finish();
    }
    let status = status?;
    child.disarm();
    if let Some((code, message)) = session.failure.take() {
        return Err(RunError::Container { code, message });
    }
    init::exit_code(status)
        .ok_or_else(|| RunError::Invalid(format!("unexpected status {status:?}")))
}

/// For `--network container:NAME`: the joined container's namespaces, and the spec made from
/// its (its name servers, its names at its address) that this container runs with.
fn join_pod(
    store_root: &Path,
    spec: &Spec,
    idmap: &IdMap,
) -> Result<(Option<enter::Joined>, Option<Spec>), RunError> {
    let Some(name) = &spec.net.join else {
        return Ok((None, None));
    };
    let joined = join(store_root, name, idmap)?;
    let pod = netns_join::pod_spec(spec, &joined)
        .map_err(|why| RunError::Invalid(format!("--network container:{name}: {why}")))?;
    Ok((Some(joined), Some(pod)))
}

/// Root gives the container detached copies of the host trees it binds (`-v`), which the
/// container's root may not reach itself; a rootless container mounts them itself.
fn volume_trees(caller: &Caller, bind_sources: &[&Path]) -> Result<Vec<OwnedFd>, RunError> {
    if !caller.is_root() {
        return Ok(Vec::new());
    }
    bind_sources
        .iter()
        .map(|src| {
            mounts::clone_host_tree(src).map_err(io_err(format!("volume {}", src.display())))
        })
        .collect()
}

/// A running container's network helpers; each goes when this is dropped (in field order).
struct NetworkGuards {
    /// A named network's name server in the container's namespace ([`super::dns`]; first:
    /// its sockets hold the namespace, and with it the veth the attachment would otherwise
    /// delete itself), address, hosts file and veth pair, and the forwarder of its ports.
    _named: Option<(
        super::dns::Server,
        bridge::Attachment,
        Option<super::portfwd::Forwarder>,
    )>,
    /// slirp4netns and rsafe's port forwarder.
    _user: Option<UserNetwork>,
}

impl NetworkGuards {
    /// What the named network's attachment has to say (a warning), if anything.
    fn note(&self) -> Option<&str> {
        self._named.as_ref().and_then(|(_, a, _)| a.note())
    }

    /// Whether the named network reaches the outside (none: no named network).
    fn outbound(&self) -> bool {
        self._named.as_ref().is_some_and(|(_, a, _)| a.outbound())
    }
}

/// The user-mode network (ready before the workload can start: Go comes after), or a named
/// network's address, hosts file and veth pair, its published ports going to that address
/// through rsafe's forwarder. A container in another's network uses that one's.
fn start_networks(
    store_root: &Path,
    spec: &Spec,
    (dir, state): (&ContainerDir, &State),
    pid: Pid,
    holder: Option<&Holder>,
) -> Result<NetworkGuards, RunError> {
    let user = match spec.network {
        NetworkMode::Slirp4netns if spec.net.join.is_none() => {
            Some(UserNetwork::start(pid.as_raw(), &spec.net.ports)?)
        }
        NetworkMode::Slirp4netns | NetworkMode::None | NetworkMode::Host => None,
    };
    let named = match &spec.net.named {
        Some(net) => {
            let (attached, lease) = attach_named(store_root, net, spec, (dir, state), pid, holder)?;
            let forwarder = match spec.net.ports.is_empty() {
                true => None,
                false => Some(super::portfwd::spawn(
                    pid.as_raw(),
                    &spec.net.ports,
                    lease.ip,
                )?),
            };
            // Its name server, after the forwarder's fork: it is a thread of this process.
            let hosts = super::netstore::NetStore::new(store_root).hosts_path(net, &dir.id);
            let dns =
                super::dns::start_named(pid.as_raw(), hosts, &spec.net.dns, attached.outbound())
                    .map_err(|e| NetworkError::Named(e.to_string()))?;
            Some((dns, attached, forwarder))
        }
        None => None,
    };
    Ok(NetworkGuards {
        _named: named,
        _user: user,
    })
}

/// Go: the trees the child mounts (`counts`: how many are layers and volumes), the cgroup
/// files it joins itself (v1, [`SelfJoin`]), the stand-ins for missing cgroup limits, and
/// whether its named network reaches the outside.
fn send_go(
    parent_end: &channel::Channel,
    trees: Vec<OwnedFd>,
    (lowers, volumes): (usize, usize),
    self_join: Option<SelfJoin>,
    state: &State,
    (fallback, outbound): (Option<Fallback>, bool),
) -> Result<(), RunError> {
    let mut fds: Vec<BorrowedFd<'_>> = trees.iter().map(|t| t.as_fd()).collect();
    let mut cgroup_tasks = Vec::new();
    for (path, file) in self_join.as_ref().map_or(&[][..], |j| j.files()) {
        cgroup_tasks.push(path.clone());
        fds.push(file.as_fd());
    }
    let go = Message::Go {
        lowers,
        volumes,
        cgroup_tasks,
        in_cgroup: state.cgroup.as_ref().is_some_and(Cgroup::has_v2),
        fallback,
        outbound,
    };
    parent_end.send(&go, &fds)?;
    Ok(())
}

/// v1 cgroups the child joined itself (see [`SelfJoin`]); v2 ones it is moved into here,
/// while it builds its root filesystem. If the child has failed in the meantime, its own
/// message (read by the session) says why, not this step's broken pipe.
fn move_into_v2_cgroup(
    state: &State,
    pid: Pid,
    parent_end: &channel::Channel,
) -> Result<(), RunError> {
    if let Some(cg) = state.cgroup.as_ref().filter(|cg| cg.has_v2()) {
        match cg.add_v2(pid.as_raw()) {
            Ok(()) => {
                let _ = parent_end.send(&Message::InCgroup, &[]);
            }
            Err(_) if has_exited(pid) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `--verbose`: who starts the container and how its ids map.
fn announce(dir: &ContainerDir, caller: &Caller, idmap: &IdMap, notify: &mut dyn FnMut(Note)) {
    let who = if caller.is_root() {
        "started by root; container root is an unprivileged host id".to_string()
    } else {
        format!("rootless, started by uid {}", caller.uid)
    };
    notify(Note::Info(format!("container {} ({who})", &dir.id[..12])));
    notify(Note::Info(format!("user namespace: {idmap}")));
}

/// Checks the host paths the container will be made of, before anything exists: the layers
/// exist (their owners are returned, bottom first), a rootless caller is warned about a
/// layer its container cannot change, and the layers, volumes and cgroup files fit in one
/// message to the child.
fn check_rootfs(
    spec: &Spec,
    caller: &Caller,
    idmap: &IdMap,
    notify: &mut dyn FnMut(Note),
) -> Result<Vec<u32>, RunError> {
    if spec.rootfs.lowers.is_empty() {
        return Err(RunError::Invalid(
            "the image has no layers: nothing to run".to_string(),
        ));
    }
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
        && !spec.rootfs.read_only
        && let Some((path, owner)) = spec
            .rootfs
            .lowers
            .iter()
            .zip(&lower_owners)
            .find(|(_, o)| idmap.container_uid(**o).is_none())
    {
        notify(Note::Warning(format!(
            "{} is owned by uid {owner}, which this container does not map: its files show as nobody and cannot be changed (EOVERFLOW); use a rootfs you own or an image",
            path.display()
        )));
    }
    let binds = spec
        .mounts
        .iter()
        .filter_map(MountSpec::host_source)
        .count();
    // Go carries these, and a `tasks` file per cgroup controller.
    let cgroup_files = Controller::needed(&spec.limits).len();
    if spec.rootfs.lowers.len() + binds + cgroup_files > channel::MAX_FDS {
        return Err(RunError::Invalid(format!(
            "too many layers and volumes ({} + {binds}; at most {} together)",
            spec.rootfs.lowers.len(),
            channel::MAX_FDS
        )));
    }
    Ok(lower_owners)
}

/// Clones the container's first process into its new namespaces, with signals from then on
/// arriving through a descriptor; returns it (killed and reaped if launching fails later),
/// rsafe's end of the sync channel, the signal descriptor, and with `tee_pipes` the read ends
/// of the pipes that are the container's stdout and stderr. `learn`: `--learn`.
fn spawn_init(
    spec: &Spec,
    dir: &ContainerDir,
    idmap: &IdMap,
    caller: &Caller,
    (learn, tee_pipes): (bool, bool),
    joined: Option<&enter::Joined>,
    holder: Option<&Holder>,
) -> Result<(ChildGuard, channel::Channel, SignalFd, Option<OutputPipes>), RunError> {
    let window = if spec.process.terminal {
        tty::window_size(io::stdin().as_fd()).or_else(|| tty::window_size(io::stdout().as_fd()))
    } else {
        None
    };
    // Signals blocked below must be blocked in every thread, and clone copies only this one:
    // rsafe must be single-threaded here (image extraction ran in a helper process).
    if sys::thread_count().map_err(io_err("count threads"))? != 1 {
        return Err(RunError::Invalid(
            "rsafe has several threads at container start; this is a bug".to_string(),
        ));
    }
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
        window,
        host_fds: [parent_end.as_fd().as_raw_fd(), signals.as_fd().as_raw_fd()],
        trees_from_parent: caller.is_root(),
        learn,
    };
    let main = Box::new(move || container_main(child_cfg, child_end));
    // The clone inherits the pipes as its stdout and stderr; rsafe's own come back after it.
    let swap = match tee_pipes {
        true => Some(StdioSwap::to_pipes().map_err(io_err("pipe the container's output"))?),
        false => None,
    };
    let pid = match (joined, holder) {
        (Some(joined), _) => netns_join::clone_into(joined, Namespaces::clone_flags(), main)
            .map_err(io_err(
                "--network container: make the container in its namespaces",
            ))?,
        (None, Some(holder)) => holder
            .clone_under(Namespaces::clone_flags(), main)
            .map_err(io_err(
                "--network: make the container under the network's namespace",
            ))?,
        (None, None) => {
            sys::clone_process(Namespaces::clone_flags(), main).map_err(namespaces::userns_error)?
        }
    };
    let pipes = swap
        .map(StdioSwap::restore)
        .transpose()
        .map_err(io_err("restore rsafe's stdout"))?;
    // The child end now lives in the child only (the closure's copy in this process was
    // freed with it); from here the child must be killed on every error path.
    Ok((ChildGuard::new(pid), parent_end, signals, pipes))
}

/// The read ends of the pipes that are a teed container's stdout and stderr.
type OutputPipes = [OwnedFd; 2];

/// rsafe's stdout and stderr swapped for pipes while the container's first process is cloned
/// (it inherits them); put back by [`StdioSwap::restore`], or on drop if the clone failed.
struct StdioSwap {
    saved: Option<[OwnedFd; 2]>,
    read_ends: Option<[OwnedFd; 2]>,
}

impl StdioSwap {
    fn to_pipes() -> io::Result<StdioSwap> {
        let cloexec = |fd: BorrowedFd<'_>| -> io::Result<OwnedFd> {
            Ok(rustix::io::fcntl_dupfd_cloexec(fd, 3)?)
        };
        let saved = [
            cloexec(io::stdout().as_fd())?,
            cloexec(io::stderr().as_fd())?,
        ];
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let _ = io::Write::flush(&mut io::stdout());
        let swap = StdioSwap {
            saved: Some(saved),
            read_ends: Some([out_r, err_r]),
        };
        nix::unistd::dup2_stdout(&out_w)?;
        nix::unistd::dup2_stderr(&err_w)?;
        Ok(swap)
    }

    /// Puts rsafe's own stdout and stderr back; returns the pipes' read ends.
    fn restore(mut self) -> io::Result<[OwnedFd; 2]> {
        self.put_back()?;
        self.read_ends
            .take()
            .ok_or_else(|| io::Error::other("pipes already taken"))
    }

    fn put_back(&mut self) -> io::Result<()> {
        if let Some([out, err]) = self.saved.take() {
            nix::unistd::dup2_stdout(&out)?;
            nix::unistd::dup2_stderr(&err)?;
        }
        Ok(())
    }
}

impl Drop for StdioSwap {
    fn drop(&mut self) {
        let _ = self.put_back();
    }
}

/// The running container `name` whose network (and user namespace) a new container joins,
/// opened; refused when its id map is not `idmap`.
fn join(store_root: &Path, name: &str, idmap: &IdMap) -> Result<enter::Joined, RunError> {
    let refuse = |why: String| RunError::Invalid(format!("--network container:{name}: {why}"));
    let joined = enter::joined(store_root, name).map_err(|e| refuse(e.to_string()))?;
    if joined.state.idmap != *idmap {
        return Err(refuse(
            "its id map is not this container's (was it run by another rsafe?)".to_string(),
        ));
    }
    Ok(joined)
}

/// The container's cgroup with its limits, into `state.cgroup`; for each limit no cgroup can
/// take here, a warning on every run and the rlimits standing in (returned for the child).
fn set_up_limits(
    spec: &Spec,
    dir: &ContainerDir,
    state: &mut State,
    notify: &mut dyn FnMut(Note),
) -> Result<Option<Fallback>, RunError> {
    if Controller::needed(&spec.limits).is_empty() {
        return Ok(None);
    }
    let created = Cgroup::create(&CgroupFs::current()?, &dir.id, &spec.limits)?;
    if let Some(cg) = &created.cgroup {
        let dirs: Vec<String> = cg
            .dirs
            .iter()
            .map(|(d, _)| d.display().to_string())
            .collect();
        notify(Note::Info(format!(
            "limits: {} in cgroup {}",
            describe_limits(spec),
            dirs.join(", ")
        )));
    }
    state.cgroup = created.cgroup;
    if created.unavailable.is_empty() {
        return Ok(None);
    }
    let plan = Fallback::for_limits(
        &spec.limits,
        &created.unavailable,
        spec.pids_limit_from_policy,
    );
    for w in plan.warnings {
        notify(Note::Warning(w));
    }
    for n in plan.notes {
        notify(Note::Info(n));
    }
    Ok(Some(plan.rlimits))
}

/// Root's container gets its layers as detached, read-only mount trees, id-mapped into the
/// container's range where the host ids that own them are not mapped (a root-owned rootfs).
fn layer_trees(
    spec: &Spec,
    lower_owners: &[u32],
    idmap: &IdMap,
    pid: Pid,
    notify: &mut dyn FnMut(Note),
) -> Result<Vec<std::os::fd::OwnedFd>, RunError> {
    let userns = std::fs::File::open(format!("/proc/{pid}/ns/user"))
        .map_err(io_err("open the container's user namespace"))?;
    let mut trees = Vec::new();
    for (path, owner) in spec.rootfs.lowers.iter().zip(lower_owners) {
        let tree =
            mounts::clone_host_tree(path).map_err(io_err(format!("rootfs {}", path.display())))?;
        // Lower layers are only ever read (writes go to the upper layer): the mount itself
        // says so too, whatever becomes of it.
        let mut attrs = libc::MOUNT_ATTR_RDONLY;
        let mut userns_fd = None;
        if idmap.container_uid(*owner).is_none() {
            attrs |= libc::MOUNT_ATTR_IDMAP;
            userns_fd = Some(userns.as_fd());
        }
        sys::set_mount_attrs(tree.as_fd(), attrs, userns_fd, true)
            .map_err(io_err(format!("mount of layer {}", path.display())))?;
        if userns_fd.is_some() {
            notify(Note::Info(format!(
                "rootfs {}: id-mapped mount (owned by host uid {owner})",
                path.display()
            )));
        }
        trees.push(tree);
    }
    Ok(trees)
}

/// `-v SRC:DST:idmap` when root runs the container: the bind's detached tree (`trees[i]` is
/// the i-th mount with a host source) becomes an id-mapped mount through the container's user
/// namespace, so the caller's files are container root's. Rootless, the caller already is
/// container root, and an unprivileged process could not id-map a host filesystem anyway.
fn idmap_bind_trees(spec: &Spec, trees: &[std::os::fd::OwnedFd], pid: Pid) -> Result<(), RunError> {
    let sources = spec.mounts.iter().filter(|m| m.host_source().is_some());
    let mut userns = None;
    for (mount, tree) in sources.zip(trees) {
        let MountSpec::Bind {
            source,
            ownership: BindOwnership::Idmap,
            ..
        } = mount
        else {
            continue;
        };
        if userns.is_none() {
            userns = Some(
                std::fs::File::open(format!("/proc/{pid}/ns/user"))
                    .map_err(io_err("open the container's user namespace"))?,
            );
        }
        let userns = userns.as_ref().map(|f| f.as_fd());
        sys::set_mount_attrs(tree.as_fd(), libc::MOUNT_ATTR_IDMAP, userns, true).map_err(
            io_err(format!(
                "id-mapped mount of {} (-v …:idmap)",
                source.display()
            )),
        )?;
    }
    Ok(())
}

/// Sends the workload's seccomp filter. libseccomp allocates and takes milliseconds: a filter
/// compiled by an earlier run is read back from the store's cache; otherwise it is compiled
/// here, in parallel with the child's mounts. The workload loads it with nothing but
/// seccomp(2). A `--learn` run stacks its own notifying filter and reports nothing.
fn send_seccomp(
    store_root: &Path,
    spec: &Spec,
    learning: bool,
    parent_end: &channel::Channel,
    notify: &mut dyn FnMut(Note),
) -> Result<Option<FileDenials>, RunError> {
    let (filter, cached) = FilterCache::in_store(store_root)
        .get_or_compile(&spec.confinement.seccomp, &spec.confinement.capabilities)?;
    if cached {
        notify(Note::Info(
            "seccomp: compiled filter read from the store's cache".to_string(),
        ));
    }
    let (filter, files) = if learning {
        (filter, None)
    } else {
        reporting_denials(filter, spec, notify)
    };
    // A child that failed meanwhile: its own message, read by the session, says why.
    launch::send_filter(parent_end, filter)?;
    Ok(files)
}

/// `filter`, notifying its denials when the policy says `report_denials = true` and the
/// profile allows it (else a warning says why the denials are only the workload's EPERM), and
/// the file calls landlock will refuse ([`FileDenials`]).
pub(super) fn reporting_denials(
    filter: CompiledFilter,
    spec: &Spec,
    notify: &mut dyn FnMut(Note),
) -> (CompiledFilter, Option<FileDenials>) {
    if !spec.confinement.report_denials {
        return (filter, None);
    }
    if let Some(why) = filter.why_not_reporting() {
        notify(Note::Warning(format!(
            "report_denials: {why}; denials are not reported"
        )));
        return (filter, None);
    }
    let landlock_fs = super::container::landlock_access(spec);
    let policy = &spec.confinement.landlock;
    FileDenials::prepare(filter.notifying_denials(), &landlock_fs, policy)
}

/// `--verbose`: the namespaces, root filesystem and network the container got.
fn describe_isolation(spec: &Spec, dir: &ContainerDir, notify: &mut dyn FnMut(Note)) {
    let ns = Namespaces {
        network: spec.network.own_namespace(),
    };
    notify(Note::Info(format!(
        "namespaces: {}",
        ns.names(namespaces::time_supported()).join(" ")
    )));
    let root = if spec.rootfs.read_only {
        "read-only".to_string()
    } else {
        format!("writable layer {}", dir.upper().display())
    };
    notify(Note::Info(format!(
        "rootfs: overlay of {} layer(s), {root}",
        spec.rootfs.lowers.len()
    )));
    notify(Note::Info(match spec.network {
        NetworkMode::None => "network: none (own namespace, loopback only)".into(),
        NetworkMode::Host => "network: host (not isolated)".into(),
        NetworkMode::Slirp4netns => format!(
            "network: slirp4netns (own namespace, {}/24 via {}, DNS {}, host loopback unreachable)",
            network::CONTAINER_ADDR,
            network::GATEWAY,
            network::DNS
        ),
    }));
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

/// A rootless container on a named network: the network's holder, started if needed (see
/// [`super::rootless_net`]); the container is made under its user namespace.
fn network_holder(
    store_root: &Path,
    spec: &Spec,
    caller: &Caller,
    idmap: &IdMap,
    notify: &mut dyn FnMut(Note),
) -> Result<Option<Holder>, RunError> {
    let Some(net) = spec.net.named.as_deref().filter(|_| !caller.is_root()) else {
        return Ok(None);
    };
    let holder = Holder::ensure(store_root, net, idmap)?;
    if holder.restarted {
        notify(Note::Warning(format!(
            "network {net}'s holder process was gone (killed?): started a new one; containers started before have lost this network"
        )));
    }
    Ok(Some(holder))
}

/// Puts the container (first process `pid`) on named network `net`: in the host's network
/// namespace (root), or in the network's `holder`'s (rootless).
fn attach_named(
    store_root: &Path,
    net: &str,
    spec: &Spec,
    (dir, state): (&ContainerDir, &State),
    pid: Pid,
    holder: Option<&Holder>,
) -> Result<(bridge::Attachment, super::netstore::Lease), RunError> {
    let place = match holder {
        Some(holder) => {
            bridge::Place::Holder(holder.ns().map_err(io_err("the network's namespaces"))?)
        }
        None => bridge::Place::Host,
    };
    let short: String = dir.id.chars().take(12).collect();
    let member = bridge::Member {
        id: &dir.id,
        name: state.name.as_deref(),
        hostname: spec.hostname.as_deref().unwrap_or(&short),
        extra_hosts: &spec.net.hosts,
    };
    Ok(bridge::attach(
        store_root,
        net,
        &member,
        pid.as_raw(),
        place,
    )?)
}

/// Whether `pid` (a child) has exited, without reaping it.
fn has_exited(pid: Pid) -> bool {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    matches!(
        waitid(
            Id::Pid(pid),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT
        ),
        Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reports_only_real_oom_kills() {
        let oom = Some(OomKills {
            count: 1,
            limit: 64 << 20,
        });
        let killed = Exit { code: 137, oom };
        assert_eq!(
            killed.report().as_deref(),
            Some("killed: out of memory (limit 64 MiB)")
        );
        // A SIGKILL from anyone else: the cgroup counted no OOM kill.
        assert_eq!(
            Exit {
                code: 137,
                oom: None
            }
            .report(),
            None
        );
        // A child was killed, the workload went on and chose its own exit code.
        let survived = Exit {
            code: 1,
            oom: Some(OomKills {
                count: 2,
                limit: 1 << 30,
            }),
        };
        assert_eq!(
            survived.report().as_deref(),
            Some(
                "warning: out of memory (limit 1 GiB): the kernel killed 2 processes in the container"
            )
        );
    }
}
