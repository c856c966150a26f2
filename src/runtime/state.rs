//! Containers on disk: `<store>/containers/<id>/` holds a container's writable layer and its
//! `state.json`, so `rsafe ps` can list containers and `rsafe rm` remove them.
//!
//! ```text
//! containers/<id>/state.json   what ran, by whom, its status and exit code
//!                 .state.lock  flock: held to read and rewrite state.json (its name: rename)
//!                 upper/       the overlay's writable layer (kept after exit unless --rm)
//!                 work/        overlayfs's scratch directory
//!                 rootfs/      where the root is assembled before pivot_root
//!                 lower/<n>/   where root attaches layer n before overlayfs takes it
//! ```
//!
//! Files in `upper/` belong to the container's ids. With a subordinate range those are host ids
//! the rootless caller does not own, so removing them happens, when needed, inside a fresh user
//! namespace with the same mapping, as the container's root.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::cgroups::Cgroup;
use super::helper;
use super::idmap::IdMap;
use super::signal::FirstProcess;
use super::spec::Spec;

/// What can go wrong with container state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not valid container state: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the container name {0:?} is already in use (rsafe rm it first)")]
    NameTaken(String),
    #[error("cgroup: {0}")]
    Cgroup(String),
    #[error("no container {0:?}")]
    NotFound(String),
    #[error(
        "container name {0:?}: use letters, digits, '_', '.', '-' (starting with a letter or digit)"
    )]
    BadName(String),
    #[error("container {0} is still running")]
    Running(String),
    #[error(
        "container {0} cannot be started again: it has no saved spec (only containers run by this rsafe have one)"
    )]
    NoSpec(String),
    #[error("container is already named {0:?}")]
    SameName(String),
    #[error("remove {path} inside a user namespace: {detail}")]
    Userns { path: PathBuf, detail: String },
}

impl StateError {
    /// Whether this is the store's filesystem (or the caller's quota on it) being full.
    pub fn is_no_space(&self) -> bool {
        let StateError::Io { source, .. } = self else {
            return false;
        };
        matches!(
            source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

type Result<T, E = StateError> = std::result::Result<T, E>;

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Status {
    /// Made by `rsafe create`, never started: no process, nothing mounted, its spec and
    /// writable layer waiting for `rsafe start`.
    Created,
    /// Being set up, or running (see [`State::is_alive`] for whether it still is).
    Running,
    /// Exited with this code.
    Exited { code: i32 },
}

/// `state.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub id: String,
    pub name: Option<String>,
    /// What ran: the rootfs directory or the image reference.
    pub image: String,
    pub command: Vec<String>,
    /// Seconds since the epoch.
    pub created: u64,
    #[serde(flatten)]
    pub status: Status,
    /// Host pid of the container's first process, and its start time (clock ticks since boot),
    /// which tells a live container from a reused pid.
    pub pid: Option<(i32, u64)>,
    /// The host uid that ran it.
    pub owner: u32,
    pub idmap: IdMap,
    pub cgroup: Option<Cgroup>,
    /// `/proc/sys/kernel/random/boot_id` when it last ran: its writable layer, written
    /// without syncing, is only known intact within the same boot.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// The named volumes it mounts (a volume in use is not removed).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// The lower layers it runs on, bottom first (directories of the layer cache, or a plain
    /// rootfs): `rsafe rmi` keeps them while the container exists, running or stopped.
    #[serde(default)]
    pub layers: Vec<PathBuf>,
    /// The memory cgroup's OOM killer ended the workload the last time it ran (`ps -a` says so).
    #[serde(default)]
    pub oom_killed: bool,
    /// `--rm`: whoever finds the container dead with no rsafe left to remove it (its rsafe or
    /// monitor was killed) removes it ([`sweep`]).
    #[serde(default)]
    pub auto_remove: bool,
    /// Published ports (`-p`), for `ps`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<super::network::PortMapping>,
    /// Why this entry has no usable `state.json` (rsafe was killed before writing it, or it is
    /// damaged): [`list`] made it up from the directory so that `ps -a` shows it and `rm`
    /// removes it. Never written.
    #[serde(skip)]
    pub damaged: Option<String>,
}

impl State {
    /// The first 12 characters of the id, as `ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// Whether the container's first process is still running. A zombie is not: after a
    /// `kill -9` of rsafe, the container's init waits a moment to be reaped, dead.
    pub fn is_alive(&self) -> bool {
        self.first_process().is_some_and(FirstProcess::is_alive)
    }

    /// The first process of the container's current run, as recorded (what `stop`, `kill` and
    /// `rm -f` signal through [`super::signal`]); `None` before it has one.
    pub fn first_process(&self) -> Option<FirstProcess> {
        match self.status {
            Status::Running => self.pid.map(|(pid, start)| FirstProcess { pid, start }),
            Status::Created | Status::Exited { .. } => None,
        }
    }
}

/// This boot's id: what tells a restart of rsafe from a restart of the host.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`).
pub fn process_start_time(pid: i32) -> Option<u64> {
    process_stat(pid).map(|(_, start)| start)
}

/// Whether process `pid`, started at `start` (clock ticks since boot: a reused pid has
/// another), still runs: exists and is not a zombie.
pub fn process_alive(pid: i32, start: u64) -> bool {
    process_stat(pid)
        .is_some_and(|(state, started)| started == start && !matches!(state, 'Z' | 'X' | 'x'))
}

/// The state letter (field 3: `R`, `S`, `Z`…) and start time (field 22) of process `pid`.
fn process_stat(pid: i32) -> Option<(char, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(stat: &str) -> Option<(char, u64)> {
    // The command name (field 2) may contain spaces and parentheses: count from its end.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after.split(' ');
    let state = fields.next()?.chars().next()?;
    Some((state, fields.nth(18)?.parse().ok()?))
}

/// A file for the output of a container run with `-d`, in the store's containers directory
/// but without a name until the container's directory exists ([`ContainerDir::keep_log`]):
/// if rsafe dies first, nothing is left behind. Readable by its owner only (a workload may
/// print secrets).
pub fn new_log(store_root: &Path) -> Result<std::fs::File> {
    let parent = containers_dir(store_root);
    mkdir(&parent, 0o711, true)?;
    let fd = rustix::fs::open(
        &parent,
        rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .map_err(|e| io_err(&parent)(e.into()))?;
    Ok(std::fs::File::from(fd))
}

/// The directory holding all containers of a store.
pub fn containers_dir(store_root: &Path) -> PathBuf {
    store_root.join("containers")
}

/// One container's directory.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
}

impl ContainerDir {
    pub fn state_file(&self) -> PathBuf {
        self.path.join("state.json")
    }
    pub fn upper(&self) -> PathBuf {
        self.path.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.path.join("work")
    }
    /// Where the container's root is mounted: a directory that exists only in the container's
    /// mount namespace, on the scratch tmpfs covering this directory there.
    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }
    /// Where a root caller's layers are staged, likewise only in the container's namespace.
    pub fn lower(&self) -> PathBuf {
        self.path.join("lower")
    }
    /// The output of a container run with `-d` (`rsafe logs`).
    pub fn log_file(&self) -> PathBuf {
        self.path.join("log")
    }

    /// Names `log`, an unnamed file from [`new_log`], as this container's [`log_file`].
    ///
    /// [`log_file`]: ContainerDir::log_file
    pub fn keep_log(&self, log: &std::fs::File) -> Result<()> {
        use std::os::fd::AsRawFd;
        let path = self.log_file();
        // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc path does not.
        let fd_path = format!("/proc/self/fd/{}", log.as_raw_fd());
        rustix::fs::linkat(
            rustix::fs::CWD,
            fd_path.as_str(),
            rustix::fs::CWD,
            &path,
            rustix::fs::AtFlags::SYMLINK_FOLLOW,
        )
        .map_err(|e| io_err(&path)(e.into()))
    }

    /// What the container runs, kept for `rsafe start`. Readable by its owner only: the
    /// environment in it may hold secrets.
    pub fn spec_file(&self) -> PathBuf {
        self.path.join("spec.json")
    }

    /// Creates a new container directory with a fresh id. `root_owner` (host uid, gid of the
    /// container's root) gets the writable layer, so the container's `/` is its root's.
    pub fn create(store_root: &Path, root_owner: (u32, u32)) -> Result<ContainerDir> {
        let dir = ContainerDir::reserve(store_root)?;
        dir.make(root_owner)?;
        Ok(dir)
    }

    /// A fresh id in the store, with nothing made on disk yet ([`ContainerDir::make`] does):
    /// `rsafe run` starts the container's first process before the directory exists.
    pub fn reserve(store_root: &Path) -> Result<ContainerDir> {
        let parent = containers_dir(store_root);
        mkdir(&parent, 0o711, true)?;
        let id = new_id()?;
        Ok(ContainerDir {
            path: parent.join(&id),
            id,
        })
    }

    /// Makes the directory and its writable layer, owned by `root_owner`; fails if it exists.
    pub fn make(&self, root_owner: (u32, u32)) -> Result<()> {
        mkdir(&self.path, 0o711, false)?;
        for sub in [self.upper(), self.work()] {
            mkdir(&sub, 0o755, false)?;
        }
        if nix::unistd::geteuid().is_root() {
            let (uid, gid) = root_owner;
            for sub in [self.upper(), self.work()] {
                std::os::unix::fs::chown(&sub, Some(uid), Some(gid)).map_err(io_err(&sub))?;
            }
        }
        Ok(())
    }

    /// Whether the directory has been made.
    pub fn exists(&self) -> bool {
        self.path.symlink_metadata().is_ok()
    }

    /// Writes `state.json` atomically, through `.state.json.tmp`, and (for a container that is
    /// kept) leaves the room of the next save in `.state.json.tmp`: the previous `state.json`,
    /// swapped out, or a fresh file reserved with `fallocate` beyond its end. Recording a
    /// container's exit on a store that filled up meanwhile writes into blocks it already has.
    /// A created or running container's save fails, with `state.json` as it was, when that room
    /// cannot be had: a container whose end could not be recorded is never made or started.
    ///
    /// The name on disk is kept: only [`rename`] changes it, and a container's monitor saving
    /// its exit with the name it started under must not undo a rename done meanwhile (both
    /// hold the state lock, [`ContainerDir::lock_state`], to read and write).
    pub fn save(&self, state: &State) -> Result<()> {
        let _lock = self.lock_state()?;
        match self.saved_name() {
            Some(name) if name != state.name => self.write_state(&State {
                name,
                ..state.clone()
            }),
            _ => self.write_state(state),
        }
    }

    /// Serialises the writers of `state.json` ([`ContainerDir::save`], [`rename`]): held while
    /// one reads the name on disk and writes the file. Released when dropped.
    fn lock_state(&self) -> Result<std::fs::File> {
        lock_file(&self.path.join(".state.lock"))
    }

    /// The name `state.json` holds now, if there is a readable one.
    fn saved_name(&self) -> Option<Option<String>> {
        #[derive(serde::Deserialize)]
        struct Named {
            name: Option<String>,
        }
        let bytes = std::fs::read(self.state_file()).ok()?;
        serde_json::from_slice::<Named>(&bytes).ok().map(|n| n.name)
    }

    fn write_state(&self, state: &State) -> Result<()> {
        let path = self.state_file();
        let tmp = self.path.join(".state.json.tmp");
        let json = serde_json::to_vec_pretty(state).map_err(|source| StateError::Json {
            path: path.clone(),
            source,
        })?;
        self.write_spare(&tmp, &json)?;
        // A --rm container's exit is never recorded (its directory goes), and freeing the
        // reserved block at removal is a synchronous discard on disks mounted `discard`.
        if state.auto_remove {
            return std::fs::rename(&tmp, &path).map_err(io_err(&path));
        }
        // The previous state.json becomes the next save's spare: swapped in, never freed, so
        // a save on a full store (a restart's) leaves the room it found.
        let exchange = rustix::fs::RenameFlags::EXCHANGE;
        let cwd = rustix::fs::CWD;
        if rustix::fs::renameat_with(cwd, &tmp, cwd, &path, exchange).is_ok() {
            // Grown if this state outgrew the previous one (best effort: the exit adds a few
            // bytes, within the block the previous state had).
            if let Ok(spare) = std::fs::OpenOptions::new().write(true).open(&tmp) {
                let keep = rustix::fs::FallocateFlags::KEEP_SIZE;
                let _ = rustix::fs::fallocate(&spare, keep, 0, spare_size(json.len()));
            }
        } else if matches!(state.status, Status::Running | Status::Created) {
            // The first save (no state.json to swap), or a filesystem without exchange: the
            // room of the exit is reserved before this save counts, or the save fails with
            // nothing changed (`.state.json.tmp` keeps its blocks: still the spare).
            let next = self.path.join(".state.json.next");
            let _ = std::fs::remove_file(&next);
            reserve_spare(&next, json.len()).map_err(io_err(&next))?;
            std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
            std::fs::rename(&next, &tmp).map_err(io_err(&tmp))?;
        } else {
            std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
            // Best effort: the save that starts it again reserves its own or fails.
            let _ = reserve_spare(&tmp, json.len());
        }
        if state.status == Status::Running {
            let _ = std::fs::remove_file(self.path.join(UNRECORDED_EXIT));
        }
        Ok(())
    }

    /// Writes `json` into `.state.json.tmp` in place, without truncating it first: a spare
    /// reserved by the previous save is written over in blocks it already has.
    fn write_spare(&self, tmp: &Path, json: &[u8]) -> Result<()> {
        // A spare whose save was cut off between its two renames (rsafe killed) is the spare.
        let next = self.path.join(".state.json.next");
        if next.symlink_metadata().is_ok() && tmp.symlink_metadata().is_err() {
            let _ = std::fs::rename(&next, tmp);
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(tmp)
            .map_err(io_err(tmp))?;
        io::Write::write_all(&mut file, json).map_err(io_err(tmp))?;
        file.set_len(json.len() as u64).map_err(io_err(tmp))
    }

    /// Says, with an empty file (no data block: it fits on a store that is full), that this
    /// container's exit could not be saved for lack of room, so that `wait` says that rather
    /// than that its rsafe was killed (`ps -a` shows it `Dead` either way, as docker would).
    /// Cleared by the next save of a start.
    pub fn mark_exit_unrecorded(&self) {
        let _ = std::fs::File::create(self.path.join(UNRECORDED_EXIT));
    }

    /// Whether [`ContainerDir::mark_exit_unrecorded`] said this container's last exit could
    /// not be saved.
    pub fn exit_unrecorded(&self) -> bool {
        self.path.join(UNRECORDED_EXIT).symlink_metadata().is_ok()
    }

    /// Whether the writable layer has the marker overlayfs leaves when it mounts a layer
    /// `volatile` (no syncing while the container runs): while it is there, overlayfs refuses
    /// to mount the layer again.
    pub fn has_volatile_marker(&self) -> bool {
        // overlayfs leaves work/work at mode 000, which hides the marker from a rootless owner.
        make_enterable(&self.work());
        self.work()
            .join("work/incompat/volatile")
            .symlink_metadata()
            .is_ok()
    }

    /// Makes the writable layer mountable again after a run, as overlayfs asks: its writes
    /// flushed to disk, then the marker removed. Only right while the writes are still in
    /// this boot's page cache (no host crash in between). Returns whether a marker was there.
    pub fn settle_volatile_layer(&self) -> io::Result<bool> {
        if !self.has_volatile_marker() {
            return Ok(false);
        }
        let upper = std::fs::File::open(self.upper())?;
        rustix::fs::syncfs(&upper)?;
        remove_tree(&self.work().join("work/incompat/volatile"))?;
        Ok(true)
    }

    /// Writes `spec.json` (mode 0600) atomically.
    pub fn save_spec(&self, spec: &Spec) -> Result<()> {
        let path = self.spec_file();
        let tmp = self.path.join(".spec.json.tmp");
        let json = serde_json::to_vec(spec).map_err(|source| StateError::Json {
            path: path.clone(),
            source,
        })?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        io::Write::write_all(&mut file, &json).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))
    }

    /// Reads `spec.json`; `name` says which container in errors.
    pub fn load_spec(&self, name: &str) -> Result<Spec> {
        let path = self.spec_file();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NoSpec(name.to_string()));
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| StateError::Json { path, source })
    }

    /// Takes this container's start lock, held until the returned file is dropped: one
    /// container, one running instance.
    pub fn lock(&self, name: &str) -> Result<std::fs::File> {
        let path = self.path.join(".lock");
        let file = std::fs::File::create(&path).map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(StateError::Running(name.to_string())),
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }

    /// Whether a process (the container's monitor) holds the lock [`ContainerDir::lock`]
    /// takes. Never creates the lock file: the directory may be on its way out.
    pub fn is_locked(&self) -> bool {
        let Ok(file) = std::fs::File::open(self.path.join(".lock")) else {
            return false;
        };
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }

    /// Removes the whole directory; files the caller cannot remove itself (owned by the
    /// container's subordinate ids) are removed as the container's root, through `idmap`.
    pub fn remove(&self, idmap: &IdMap) -> Result<()> {
        // overlayfs leaves mode-000 directories in work/: open them up first rather than
        // after a failed removal of everything else.
        make_enterable(&self.work());
        remove_tree_as(&self.path, idmap)
    }
}

/// Removes the directory tree at `path`, which a container wrote to: files the caller cannot
/// remove itself (owned by the container's subordinate ids) are removed as the container's
/// root, through `idmap`. Never follows a symlink.
pub fn remove_tree_as(path: &Path, idmap: &IdMap) -> Result<()> {
    match remove_tree(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && !idmap.is_single() => {
            remove_as_container_root(path, idmap)?;
            remove_tree(path).map_err(io_err(path))
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

/// The room kept for the save after one of `len` bytes: at least a block, and twice its size
/// (the exit adds a few fields).
fn spare_size(len: usize) -> u64 {
    (2 * len as u64).max(4096).next_multiple_of(4096)
}

/// The empty file [`ContainerDir::mark_exit_unrecorded`] leaves.
const UNRECORDED_EXIT: &str = "exit-unrecorded";

/// Room reserved for the next `state.json` ([`spare_size`]) in a new file at `spare`,
/// allocated beyond its end (`fallocate` `KEEP_SIZE`), or written as zeros on a filesystem
/// without `fallocate`. On failure (the store is full) the file is removed again.
fn reserve_spare(spare: &Path, len: usize) -> io::Result<()> {
    let want = spare_size(len);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(spare)?;
    let reserved =
        match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::KEEP_SIZE, 0, want) {
            Err(rustix::io::Errno::OPNOTSUPP) => {
                io::Write::write_all(&mut file, &vec![0; want as usize])
            }
            other => other.map_err(io::Error::from),
        };
    if reserved.is_err() {
        drop(file);
        let _ = std::fs::remove_file(spare);
    }
    reserved
}

fn mkdir(path: &Path, mode: u32, exist_ok: bool) -> Result<()> {
    match std::fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {
            // The umask may have taken bits the container's root needs to get through.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(io_err(path))
        }
        Err(e) if exist_ok && e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// 64 random hex digits, like Docker's container ids.
fn new_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    let urandom = Path::new("/dev/urandom");
    std::io::Read::read_exact(
        &mut std::fs::File::open(urandom).map_err(io_err(urandom))?,
        &mut bytes,
    )
    .map_err(io_err(urandom))?;
    Ok(hex::encode(bytes))
}

/// Docker's rule for container and volume names: what stays one safe directory name and can
/// never be taken for a path (no `/`, no leading `.`).
pub fn is_valid_name(name: &str) -> bool {
    name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Checks a `--name`.
pub fn check_name(name: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(StateError::BadName(name.into()))
    }
}

/// Every container of the store, oldest first. A directory whose `state.json` is missing
/// (rsafe was killed before writing it) or damaged is listed too, made up from the directory
/// with [`State::damaged`] saying why, so that `ps -a` shows it and `rm` removes it.
pub fn list(store_root: &Path) -> Result<Vec<(ContainerDir, State)>> {
    let parent = containers_dir(store_root);
    let entries = match std::fs::read_dir(&parent) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&parent)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&parent))?;
        let id = entry.file_name().to_string_lossy().into_owned();
        if !is_container_id(&id) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue; // anything not a container of ours
        }
        let dir = ContainerDir {
            path: entry.path(),
            id,
        };
        // `None`: someone else's unreadable container.
        if let Some(state) = dir.load_state() {
            out.push((dir, state));
        }
    }
    out.sort_by_key(|(_, s)| s.created);
    Ok(out)
}

impl ContainerDir {
    /// This container's state as [`list`] reads it: `state.json`, or one made up from the
    /// directory when it is missing or damaged; `None` when it cannot be read (someone else's).
    /// What `prune` reads again once it holds the start lock.
    pub fn load_state(&self) -> Option<State> {
        match std::fs::read(self.state_file()) {
            Ok(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|e| made_up_state(self, format!("damaged state.json: {e}"))),
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Some(made_up_state(
                self,
                "no state.json: rsafe was stopped while creating it".into(),
            )),
            Err(_) => None,
        }
    }

    /// Takes the start lock [`ContainerDir::lock`] takes, without waiting and without making
    /// the lock file: `None` when someone holds it or there is no lock file (the container is
    /// being made, or its directory is being removed and the file went first). Making the file
    /// could put it into a directory another process is removing, which would then fail.
    pub fn try_lock_existing(&self) -> Result<Option<std::fs::File>> {
        let path = self.path.join(".lock");
        let file = match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }
}

/// A 64-hex-digit container id (a directory name under `containers/`).
fn is_container_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The state of a container directory without a usable `state.json`: its id, owner and time
/// from the directory, no process, no name; the id map a run by this user would use (what
/// removing its writable layer needs).
fn made_up_state(dir: &ContainerDir, why: String) -> State {
    use std::os::unix::fs::MetadataExt;
    let meta = dir.path.symlink_metadata().ok();
    let owner = meta
        .as_ref()
        .map_or_else(|| nix::unistd::geteuid().as_raw(), |m| m.uid());
    State {
        id: dir.id.clone(),
        name: None,
        image: String::new(),
        command: Vec::new(),
        created: meta.map_or(0, |m| m.mtime().max(0) as u64),
        status: Status::Running,
        pid: None,
        owner,
        idmap: IdMap::for_this_process(),
        cgroup: None,
        boot_id: None,
        volumes: Vec::new(),
        layers: Vec::new(),
        oom_killed: false,
        auto_remove: false,
        ports: Vec::new(),
        damaged: Some(why),
    }
}

/// What a container is doing, as `ps -a` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Made by `rsafe create` and never started, or its rsafe is setting it up (the start
    /// lock is held, no process yet).
    Created,
    /// Its first process runs.
    Up,
    /// It exited with this code.
    Exited(i32),
    /// It was cut off: its rsafe died without recording the end, or its state is damaged.
    Dead,
}

impl ContainerDir {
    /// Where `state` says the container is, checked against the processes and the start
    /// lock (held by the rsafe or monitor that runs it, for the container's whole life).
    pub fn phase(&self, state: &State) -> Phase {
        match state.status {
            Status::Exited { code } if state.damaged.is_none() => Phase::Exited(code),
            Status::Created if state.damaged.is_none() => Phase::Created,
            _ if state.is_alive() => Phase::Up,
            _ if self.is_locked() => Phase::Created,
            _ => Phase::Dead,
        }
    }
}

impl ContainerDir {
    /// Whether the rsafe (or monitor) that ran the container is done with it after its end:
    /// with `--rm` the directory is gone (its start lock goes early in the removal, so the
    /// lock alone does not say), otherwise the lock is released, the exit recorded.
    pub fn settled(&self, state: &State) -> bool {
        match state.auto_remove {
            true => !self.exists(),
            false => !self.is_locked(),
        }
    }
}

/// Removes the containers run with `--rm` that died with nobody left to remove them (their
/// rsafe, or `-d` monitor, was killed), and their cgroups, then the anonymous volumes made
/// for them that no other container mounts, as their rsafe would have (docker's auto-remove
/// takes them); returns their ids. What cannot be removed yet (a cgroup whose processes are
/// still exiting) is left for the next sweep; a volume that cannot go is left for
/// `volume prune`.
pub fn sweep(store_root: &Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut volumes = Vec::new();
    for (dir, state) in list(store_root)? {
        if !state.auto_remove || dir.phase(&state) != Phase::Dead {
            continue;
        }
        // Read before the spec goes with the container; a damaged spec names none.
        let anonymous = dir
            .load_spec(&state.id)
            .map(|spec| spec.options.anonymous_volumes)
            .unwrap_or_default();
        if remove_container(&dir, &state).is_ok() {
            volumes.push((anonymous, state.idmap.clone()));
            removed.push(state.id);
        }
    }
    let store = super::volume::Volumes::of_store(store_root);
    for (names, idmap) in volumes {
        // Each error leaves its volume unused and anonymous: the next `volume prune` takes it.
        let _ = store.remove_anonymous(store_root, &names, &idmap);
    }
    Ok(removed)
}

/// Removes a container that no process runs any more: its cgroup (the recorded one, or any
/// left under its id when it died before recording it), then its directory.
pub fn remove_container(dir: &ContainerDir, state: &State) -> Result<()> {
    let cgroup = state.cgroup.clone().or_else(|| Cgroup::leftover(&state.id));
    if let Some(cg) = cgroup
        && let Some(e) = cg.remove().into_iter().next()
    {
        return Err(StateError::Cgroup(e.to_string()));
    }
    dir.remove(&state.idmap)
}

/// Serialises claims of container names: held from the check that a name is free until the
/// new container's `state.json` carries it ([`lock_names`]).
#[derive(Debug)]
pub struct NamesLock(#[allow(dead_code)] std::fs::File);

/// Takes the store's names lock, waiting for whoever holds it (a claim takes milliseconds).
/// The kernel releases it if the holder dies.
pub fn lock_names(store_root: &Path) -> Result<NamesLock> {
    // Beside the store's other locks: `containers/` holds containers only.
    lock_file(&store_root.join("names.lock")).map(NamesLock)
}

/// Opens (making it, 0600) the lock file at `path` and waits for its exclusive lock, held
/// until the file is dropped.
fn lock_file(path: &Path) -> Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    file.lock().map_err(io_err(path))?;
    Ok(file)
}

/// Renames container `name_or_id` to `new`, as `docker rename`: `new` must be a valid name that
/// no other container, running or stopped, has. Done under the store's names lock (a
/// concurrent `run --name` or rename claiming the same name waits, then finds it taken) and
/// the container's state lock, `state.json` replaced atomically: a reader sees the old name or
/// the new one. Returns the container and its old name.
pub fn rename(
    store_root: &Path,
    name_or_id: &str,
    new: &str,
) -> Result<(ContainerDir, Option<String>)> {
    check_name(new)?;
    let _names = lock_names(store_root)?;
    let (dir, _) = find(store_root, name_or_id)?;
    let _state = dir.lock_state()?;
    let path = dir.state_file();
    let bytes = std::fs::read(&path).map_err(io_err(&path))?;
    let mut state: State = serde_json::from_slice(&bytes).map_err(|source| StateError::Json {
        path: path.clone(),
        source,
    })?;
    if state.name.as_deref() == Some(new) {
        return Err(StateError::SameName(new.into()));
    }
    ensure_name_free(store_root, new)?;
    let old = state.name.replace(new.to_string());
    dir.write_state(&state)?;
    Ok((dir, old))
}

/// The container named `name_or_id`, or whose id starts with it.
pub fn find(store_root: &Path, name_or_id: &str) -> Result<(ContainerDir, State)> {
    let all = list(store_root)?;
    if let Some(found) = all
        .iter()
        .find(|(_, s)| s.name.as_deref() == Some(name_or_id) || s.id == name_or_id)
    {
        return Ok(found.clone());
    }
    let mut prefixed = all
        .into_iter()
        .filter(|(_, s)| s.id.starts_with(name_or_id));
    match (prefixed.next(), prefixed.next()) {
        (Some(one), None) if !name_or_id.is_empty() => Ok(one),
        _ => Err(StateError::NotFound(name_or_id.into())),
    }
}

/// Fails when another container already has `name`. Only meaningful under [`lock_names`].
pub fn ensure_name_free(store_root: &Path, name: &str) -> Result<()> {
    if list(store_root)?
        .iter()
        .any(|(_, s)| s.name.as_deref() == Some(name))
    {
        return Err(StateError::NameTaken(name.into()));
    }
    Ok(())
}

/// `remove_dir_all`, after making directories the owner cannot enter (overlayfs leaves its
/// `work/work` and `work/work/incompat/volatile` at mode 000) enterable.
fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(first) => {
            make_enterable(path);
            std::fs::remove_dir_all(path).map_err(|_| first)
        }
    }
}

/// Gives the owner rwx on every directory under `dir`. Never follows a symlink: the writable
/// layer's contents were written by the container. Each directory is opened `O_PATH |
/// O_NOFOLLOW | O_DIRECTORY` (allowed whatever its mode) and changed through its descriptor.
fn make_enterable(dir: &Path) {
    use rustix::fs::{CWD, Mode, OFlags, openat};
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if let Ok(fd) = openat(CWD, dir, flags, Mode::empty()) {
        make_fd_enterable(&fd, 0);
    }
}

fn make_fd_enterable(dir: &std::os::fd::OwnedFd, depth: u32) {
    use rustix::fs::{Mode, OFlags, openat};
    // Deeper than any path can be: a bound, not a limit anyone meets.
    if depth > 4096 {
        return;
    }
    let via = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let _ = std::fs::set_permissions(&via, std::fs::Permissions::from_mode(0o700));
    let Ok(entries) = std::fs::read_dir(&via) else {
        return;
    };
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC;
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir())
            && let Ok(child) = openat(dir, entry.file_name(), flags, Mode::empty())
        {
            make_fd_enterable(&child, depth + 1);
        }
    }
}

/// Removes `path`'s contents as root of a new user namespace mapped like the container, where
/// the subordinate ids' files are root's to delete.
fn remove_as_container_root(path: &Path, idmap: &IdMap) -> Result<()> {
    let fail = |detail: String| StateError::Userns {
        path: path.to_path_buf(),
        detail,
    };
    helper::as_container_root(idmap, || remove_tree(path).map_err(|e| e.to_string()))
        .map_err(|e| fail(e.to_string()))?
        .map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::idmap::{IdRange, MapWriter};

    fn idmap() -> IdMap {
        let one = IdRange {
            container: 0,
            host: 1000,
            size: 1,
        };
        IdMap {
            uids: vec![one],
            gids: vec![one],
            writer: MapWriter::Direct,
            setgroups: false,
        }
    }

    fn state(id: &str, name: Option<&str>, created: u64) -> State {
        State {
            id: id.into(),
            name: name.map(Into::into),
            image: "./rootfs".into(),
            command: vec!["true".into()],
            created,
            status: Status::Exited { code: 3 },
            pid: None,
            owner: 1000,
            idmap: idmap(),
            cgroup: None,
            boot_id: None,
            volumes: Vec::new(),
            layers: Vec::new(),
            oom_killed: false,
            auto_remove: false,
            ports: Vec::new(),
            damaged: None,
        }
    }

    #[test]
    fn create_save_list_find_remove() {
        let store = tempfile::tempdir().unwrap();
        let a = ContainerDir::create(store.path(), (0, 0)).unwrap();
        let b = ContainerDir::create(store.path(), (0, 0)).unwrap();
        assert_eq!(a.id.len(), 64);
        assert_ne!(a.id, b.id);
        assert!(a.upper().is_dir() && a.work().is_dir());
        // Mount points exist only on the scratch tmpfs in the container's mount namespace.
        assert!(!a.rootfs().exists() && !a.lower().exists());
        let mode = std::fs::metadata(&a.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o711);
        a.save(&state(&a.id, Some("web"), 2)).unwrap();
        b.save(&state(&b.id, None, 1)).unwrap();
        let all = list(store.path()).unwrap();
        assert_eq!(
            all.iter().map(|(d, _)| d.id.clone()).collect::<Vec<_>>(),
            [b.id.clone(), a.id.clone()]
        );
        assert_eq!(find(store.path(), "web").unwrap().0.id, a.id);
        assert_eq!(find(store.path(), &b.id[..10]).unwrap().0.id, b.id);
        assert!(matches!(
            find(store.path(), "nope"),
            Err(StateError::NotFound(_))
        ));
        assert!(matches!(
            ensure_name_free(store.path(), "web"),
            Err(StateError::NameTaken(_))
        ));
        ensure_name_free(store.path(), "db").unwrap();
        // overlayfs leaves work/work at mode 000
        let ww = a.work().join("work");
        std::fs::create_dir(&ww).unwrap();
        std::fs::write(ww.join("f"), "x").unwrap();
        std::fs::set_permissions(&ww, std::fs::Permissions::from_mode(0o000)).unwrap();
        a.remove(&idmap()).unwrap();
        assert!(!a.path.exists());
        assert_eq!(list(store.path()).unwrap().len(), 1);
    }

    #[test]
    fn directories_without_usable_state_are_listed_as_dead_and_removable() {
        let store = tempfile::tempdir().unwrap();
        // rsafe killed between making the directory and writing state.json.
        let orphan = ContainerDir::create(store.path(), (0, 0)).unwrap();
        // A state.json that a full disk or a crash left unreadable.
        let damaged = ContainerDir::create(store.path(), (0, 0)).unwrap();
        std::fs::write(damaged.state_file(), "{\"id\": \"trunc").unwrap();
        // Neither keeps the next named container from being checked and listed.
        let named = ContainerDir::create(store.path(), (0, 0)).unwrap();
        named.save(&state(&named.id, Some("web"), 5)).unwrap();
        // Not a container: a stray file.
        let _names = lock_names(store.path()).unwrap();
        std::fs::write(containers_dir(store.path()).join("stray"), "").unwrap();
        ensure_name_free(store.path(), "db").unwrap();
        let all = list(store.path()).unwrap();
        assert_eq!(all.len(), 3);
        for dir in [&orphan, &damaged] {
            let (d, st) = all.iter().find(|(d, _)| d.id == dir.id).unwrap();
            assert!(st.damaged.is_some(), "{st:?}");
            assert_eq!(d.phase(st), Phase::Dead);
            remove_container(d, st).unwrap();
            assert!(!d.path.exists());
        }
        // While its rsafe holds the start lock, a directory without state is being created.
        let starting = ContainerDir::create(store.path(), (0, 0)).unwrap();
        let lock = starting.lock("starting").unwrap();
        let (d, st) = find(store.path(), &starting.id).unwrap();
        assert_eq!(d.phase(&st), Phase::Created);
        drop(lock);
        assert_eq!(d.phase(&st), Phase::Dead);
    }

    #[test]
    fn dead_rm_containers_are_swept_and_only_they() {
        let store = tempfile::tempdir().unwrap();
        let make = |name: &str, auto_remove: bool, status: Status| {
            let dir = ContainerDir::create(store.path(), (0, 0)).unwrap();
            let mut st = state(&dir.id, Some(name), 1);
            st.auto_remove = auto_remove;
            st.status = status;
            // A pid that is not this container's: a reused one (start time 1).
            st.pid = Some((std::process::id() as i32, 1));
            dir.save(&st).unwrap();
            dir
        };
        let dead_rm = make("dead-rm", true, Status::Running);
        let kept = make("kept", false, Status::Running);
        let exited = make("exited", false, Status::Exited { code: 0 });
        let running_rm = make("running-rm", true, Status::Running);
        let _monitor = running_rm.lock("running-rm").unwrap();
        assert_eq!(
            sweep(store.path()).unwrap(),
            std::slice::from_ref(&dead_rm.id)
        );
        assert!(!dead_rm.path.exists());
        for dir in [&kept, &exited, &running_rm] {
            assert!(dir.path.exists());
        }
    }

    #[test]
    fn the_exit_is_recorded_in_room_reserved_at_the_start() {
        let store = tempfile::tempdir().unwrap();
        let dir = ContainerDir::create(store.path(), (0, 0)).unwrap();
        let mut st = state(&dir.id, Some("web"), 1);
        st.status = Status::Running;
        dir.save(&st).unwrap();
        let spare = dir.path.join(".state.json.tmp");
        let blocks = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&spare).unwrap());
        assert!(blocks >= 8, "{blocks} 512-byte blocks reserved");
        assert_eq!(std::fs::metadata(&spare).unwrap().len(), 0);
        st.status = Status::Exited { code: 7 };
        dir.save(&st).unwrap();
        let (_, back) = find(store.path(), "web").unwrap();
        assert_eq!(back.status, Status::Exited { code: 7 });
    }

    #[test]
    fn the_previous_state_is_the_next_saves_room() {
        let store = tempfile::tempdir().unwrap();
        let dir = ContainerDir::create(store.path(), (0, 0)).unwrap();
        let spare = dir.path.join(".state.json.tmp");
        let blocks = || std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&spare).unwrap());
        let mut st = state(&dir.id, Some("web"), 1);
        st.status = Status::Created;
        dir.save(&st).unwrap();
        assert!(
            blocks() >= 8,
            "a created container keeps room for its first start"
        );
        st.status = Status::Running;
        dir.save(&st).unwrap();
        // Swapped, not freed: the spare is the created state, blocks and all.
        let previous: State = serde_json::from_slice(&std::fs::read(&spare).unwrap()).unwrap();
        assert_eq!(previous.status, Status::Created);
        assert!(blocks() >= 8, "{} blocks", blocks());
        st.status = Status::Exited { code: 4 };
        dir.save(&st).unwrap();
        assert_eq!(find(store.path(), "web").unwrap().1.status, st.status);
    }

    #[test]
    fn a_save_cut_off_between_its_renames_finds_its_spare() {
        let store = tempfile::tempdir().unwrap();
        let dir = ContainerDir::create(store.path(), (0, 0)).unwrap();
        let mut st = state(&dir.id, None, 1);
        st.status = Status::Running;
        dir.save(&st).unwrap();
        // As rsafe killed after `.state.json.tmp` became state.json, before the spare's rename.
        let (tmp, next) = (
            dir.path.join(".state.json.tmp"),
            dir.path.join(".state.json.next"),
        );
        std::fs::rename(&tmp, &next).unwrap();
        st.status = Status::Exited { code: 0 };
        dir.save(&st).unwrap();
        assert!(!next.exists());
        assert_eq!(find(store.path(), &dir.id).unwrap().1.status, st.status);
    }

    #[test]
    fn an_unrecorded_exit_is_said_until_the_next_start() {
        let store = tempfile::tempdir().unwrap();
        let dir = ContainerDir::create(store.path(), (0, 0)).unwrap();
        let mut st = state(&dir.id, None, 1);
        st.status = Status::Running;
        dir.save(&st).unwrap();
        assert!(!dir.exit_unrecorded());
        dir.mark_exit_unrecorded();
        assert!(dir.exit_unrecorded());
        // Phase is still Dead: only the reason differs.
        assert_eq!(
            dir.phase(&find(store.path(), &dir.id).unwrap().1),
            Phase::Dead
        );
        dir.save(&st).unwrap();
        assert!(!dir.exit_unrecorded());
        let full = StateError::Io {
            path: dir.state_file(),
            source: io::Error::from_raw_os_error(libc_enospc()),
        };
        assert!(full.is_no_space());
        assert!(!StateError::NotFound("c".into()).is_no_space());
    }

    fn libc_enospc() -> i32 {
        rustix::io::Errno::NOSPC.raw_os_error()
    }

    #[test]
    fn zombies_are_not_running() {
        let stat = |state: &str| {
            format!(
                "4242 (sh (x) y) {state} 1 4242 4242 0 -1 4194560 105 0 0 0 0 0 0 0 20 0 1 0 987654 2277376 201"
            )
        };
        assert_eq!(parse_stat(&stat("S")), Some(('S', 987654)));
        assert_eq!(parse_stat(&stat("Z")), Some(('Z', 987654)));
        assert_eq!(parse_stat("garbage"), None);
        let me = std::process::id() as i32;
        let start = process_start_time(me).unwrap();
        assert!(process_alive(me, start));
        assert!(!process_alive(me, start + 1));
        // A child that exited and is not reaped yet: still in /proc, with its start time.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        while process_stat(pid).is_some_and(|(s, _)| s != 'Z') {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let start = process_start_time(pid).unwrap();
        assert!(!process_alive(pid, start));
        child.wait().unwrap();
    }

    #[test]
    fn the_spec_is_kept_whole_and_private() {
        use crate::runtime::policy::Policy;
        use crate::runtime::spec::{
            Confinement, Limits, MountSpec, NetworkMode, ProcessSpec, RootfsSpec,
        };
        let store = tempfile::tempdir().unwrap();
        let dir = ContainerDir::create(store.path(), (0, 0)).unwrap();
        assert!(matches!(dir.load_spec("c"), Err(StateError::NoSpec(_))));
        let policy = Policy::default_policy();
        let spec = Spec {
            rootfs: RootfsSpec {
                lowers: vec!["/layers/a".into(), "/layers/b".into()],
                read_only: false,
            },
            process: ProcessSpec {
                args: vec!["sh".into(), "-c".into(), "echo $X".into()],
                env: vec!["X=secret".into()],
                cwd: "/srv".into(),
                user: Some("app".into()),
                terminal: false,
                stdin: true,
            },
            hostname: None,
            mounts: vec![
                MountSpec::Volume {
                    name: "data".into(),
                    source: "/store/volumes/data/_data".into(),
                    target: "/data".into(),
                    read_only: true,
                    populate: true,
                },
                MountSpec::Tmpfs {
                    target: "/tmp".into(),
                    size: Some(1 << 20),
                    mode: None,
                },
            ],
            network: NetworkMode::None,
            net: Default::default(),
            limits: Limits {
                memory: Some(64 << 20),
                pids: None,
                cpus: Some(0.5),
            },
            pids_limit_from_policy: false,
            init: true,
            masked_paths: policy.masked_paths.clone(),
            readonly_paths: policy.readonly_paths.clone(),
            confinement: Confinement::from_policy(&policy, true),
            options: Default::default(),
        };
        dir.save_spec(&spec).unwrap();
        assert_eq!(dir.load_spec("c").unwrap(), spec);
        let mode = std::fs::metadata(dir.spec_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the environment may hold secrets");
    }

    #[test]
    fn a_rename_claims_a_free_name_and_outlives_the_monitors_next_save() {
        let store = tempfile::tempdir().unwrap();
        let a = ContainerDir::create(store.path(), (0, 0)).unwrap();
        let b = ContainerDir::create(store.path(), (0, 0)).unwrap();
        let mut running = state(&a.id, Some("web"), 1);
        running.status = Status::Running;
        a.save(&running).unwrap();
        b.save(&state(&b.id, Some("db"), 2)).unwrap();
        assert!(matches!(
            rename(store.path(), "web", "db"),
            Err(StateError::NameTaken(_))
        ));
        assert!(matches!(
            rename(store.path(), "web", "web"),
            Err(StateError::SameName(_))
        ));
        assert!(matches!(
            rename(store.path(), "web", "a/b"),
            Err(StateError::BadName(_))
        ));
        let (dir, old) = rename(store.path(), "web", "front").unwrap();
        assert_eq!(
            (dir.id.as_str(), old.as_deref()),
            (a.id.as_str(), Some("web"))
        );
        assert!(matches!(
            find(store.path(), "web"),
            Err(StateError::NotFound(_))
        ));
        // The monitor records the exit with the state it started with: the new name stays.
        running.status = Status::Exited { code: 0 };
        a.save(&running).unwrap();
        let (_, back) = find(store.path(), "front").unwrap();
        assert_eq!(back.status, Status::Exited { code: 0 });
        // The old name is free again.
        rename(store.path(), "db", "web").unwrap();
    }

    #[test]
    fn a_start_lock_is_exclusive() {
        let store = tempfile::tempdir().unwrap();
        let dir = ContainerDir::create(store.path(), (0, 0)).unwrap();
        let held = dir.lock("c").unwrap();
        assert!(matches!(dir.lock("c"), Err(StateError::Running(_))));
        drop(held);
        dir.lock("c").unwrap();
    }

    #[test]
    fn opening_up_directories_never_follows_symlinks() {
        let top = tempfile::tempdir().unwrap();
        let outside = top.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o555)).unwrap();
        let tree = top.path().join("tree");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("a/link")).unwrap();
        std::fs::set_permissions(tree.join("a/b"), std::fs::Permissions::from_mode(0o000)).unwrap();
        std::fs::set_permissions(tree.join("a"), std::fs::Permissions::from_mode(0o000)).unwrap();
        make_enterable(&tree);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tree.join("a")), 0o700);
        assert_eq!(mode(&tree.join("a/b")), 0o700);
        assert_eq!(mode(&outside), 0o555, "a symlink was followed");
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn state_json_shape_and_liveness() {
        let mut s = state("ab", None, 0);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["status"], "exited");
        assert_eq!(json["code"], 3);
        assert!(!s.is_alive());
        let me = std::process::id() as i32;
        s.status = Status::Running;
        s.pid = Some((me, process_start_time(me).unwrap()));
        assert!(s.is_alive());
        s.pid = Some((me, 1));
        assert!(!s.is_alive());
    }

    #[test]
    fn names() {
        for ok in ["web", "a.b-c_d", "9"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "-x", "a/b", "a b", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
