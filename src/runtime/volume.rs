//! Named volumes, as Docker has them: `-v NAME:/dst` mounts `<store>/volumes/NAME/_data`, a
//! directory that outlives the containers using it.
//!
//! ```text
//! volumes/<name>/volume.json   when it was made
//!                _data/        the data, owned by the container's root (its host uid and gid)
//! ```
//!
//! A volume is created on first use, owned by the host ids container root is for this caller
//! (the caller itself when rootless; the first id of root's unprivileged range when root), so
//! every container of the same caller can write to it. A new volume starts with a copy of what
//! the image has at the mount point ([`populate`], done inside the container, through its root).
//! Files the container gave to its other ids belong, rootless, to subordinate host ids; like a
//! container's writable layer they are removed as the container's root (see [`super::state`]).
//!
//! An *anonymous* volume (`-v /dst`, `--mount type=volume,target=/dst`, an image's `VOLUME`)
//! is one of these too, named by 64 random hex digits as docker names its own, and marked so
//! in `volume.json`: `run --rm` and `rm -v` remove it with its container, and plain `volume
//! prune` removes it once unused, while a named volume stays until `volume rm` or `prune -a`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Mode, OFlags, Timestamps};

use super::idmap::IdMap;
use super::state;

/// What can go wrong with a volume.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not valid volume metadata: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "volume name {0:?}: use letters, digits, '_', '.', '-' (starting with a letter or digit, at most 128)"
    )]
    BadName(String),
    #[error("no volume {0:?}")]
    NotFound(String),
    #[error("volume {0} is being mounted by a container that is starting: try again")]
    Starting(String),
    #[error("volume {name} is in use by container {container} ({status})")]
    InUse {
        name: String,
        container: String,
        status: &'static str,
    },
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("chown (-v …:U) {path}: {source}")]
    Chown { path: PathBuf, source: io::Error },
    #[error("copy the image's {target} into the new volume: {path}: {source}")]
    Populate {
        target: String,
        path: String,
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

type Result<T, E = VolumeError> = std::result::Result<T, E>;

/// Whether `name` is a volume name: what `-v` tells apart from a host path (no `/`, not
/// starting with `.`), restricted to characters that are safe as one directory name — the
/// same rule as container names.
pub fn is_valid_name(name: &str) -> bool {
    super::state::is_valid_name(name)
}

fn check_name(name: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(VolumeError::BadName(name.to_string()))
    }
}

/// `volume.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Meta {
    /// Seconds since the epoch.
    created: u64,
    /// Made for one container with no name given (see the module documentation).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    anonymous: bool,
}

/// One volume, named or anonymous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    /// `<store>/volumes/<name>`.
    pub dir: PathBuf,
    /// Seconds since the epoch.
    pub created: u64,
    /// An anonymous volume: removed with its container by `run --rm` and `rm -v`, and by a
    /// plain `volume prune` once unused.
    pub anonymous: bool,
}

impl Volume {
    /// The directory mounted into containers.
    pub fn data(&self) -> PathBuf {
        self.dir.join("_data")
    }

    /// Whether the volume holds nothing: a container creating it then gets a copy of the
    /// image's files at the mount point, as with Docker. One its caller cannot read (rootless:
    /// a copy gave it to an image user in the subordinate range, mode 0750) was seeded
    /// already, so it counts as not empty.
    pub fn is_empty(&self) -> Result<bool> {
        let data = self.data();
        let mut entries = match std::fs::read_dir(&data) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(false),
            Err(e) => return Err(io_err(&data)(e)),
        };
        Ok(entries.next().is_none())
    }
}

/// The volumes of one store.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    /// The volumes of the store at `store_root`.
    pub fn of_store(store_root: &Path) -> Volumes {
        Volumes {
            dir: store_root.join("volumes"),
        }
    }

    /// A starting container's hold on volume `name`, taken before the volume is looked up or
    /// made and kept while the container runs: [`Volumes::remove`] is refused meanwhile. (Once
    /// the container's state names the volume, that refuses it too, even after the container
    /// stopped; the claim covers the moment before.) A shared `flock` on
    /// `volumes/.locks/<name>`, so any number of containers may hold one, and a killed rsafe
    /// lets go of it.
    pub fn claim(&self, name: &str) -> Result<VolumeClaim> {
        let file = self.lock_file(name)?;
        file.lock_shared().map_err(io_err(&self.lock_path(name)))?;
        Ok(VolumeClaim {
            file,
            name: name.to_string(),
        })
    }

    fn lock_path(&self, name: &str) -> PathBuf {
        self.dir.join(".locks").join(name)
    }

    fn lock_file(&self, name: &str) -> Result<std::fs::File> {
        check_name(name)?;
        let locks = self.dir.join(".locks");
        mkdir(&self.dir, true)?;
        mkdir(&locks, true)?;
        let path = self.lock_path(name);
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))
    }

    /// The volume `name`, created (its `_data` owned by `owner`, the host uid and gid of the
    /// container's root) when missing. The flag says whether it was created now.
    pub fn ensure(&self, name: &str, owner: (u32, u32)) -> Result<(Volume, bool)> {
        check_name(name)?;
        if let Ok(v) = self.get(name) {
            return Ok((v, false));
        }
        self.make(name, owner, false)
    }

    /// A new anonymous volume (see the module documentation), owned by `owner`, with the
    /// starting container's claim on it taken before it exists, so no prune can take it
    /// between its making and the container's state naming it.
    pub fn create_anonymous(&self, owner: (u32, u32)) -> Result<(Volume, VolumeClaim)> {
        loop {
            let name = anonymous_name()?;
            let claim = self.claim(&name)?;
            match self.make(&name, owner, true)? {
                (volume, true) => return Ok((volume, claim)),
                // 256 random bits met an existing name: draw again rather than share it.
                (_, false) => continue,
            }
        }
    }

    /// Makes volume `name` (see [`Volumes::ensure`]); false when someone else made it first.
    fn make(&self, name: &str, owner: (u32, u32), anonymous: bool) -> Result<(Volume, bool)> {
        mkdir(&self.dir, true)?;
        // Made under a temporary name and renamed into place, so a half-made volume is never
        // seen and two runs creating the same volume at once agree on one.
        let tmp = tempfile::Builder::new()
            .prefix(".new-")
            .tempdir_in(&self.dir)
            .map_err(io_err(&self.dir))?;
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let meta_path = tmp.path().join("volume.json");
        let json = serde_json::to_vec_pretty(&Meta { created, anonymous }).map_err(|source| {
            VolumeError::Json {
                path: meta_path.clone(),
                source,
            }
        })?;
        std::fs::write(&meta_path, json).map_err(io_err(&meta_path))?;
        let data = tmp.path().join("_data");
        mkdir(&data, false)?;
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&data, Some(owner.0), Some(owner.1)).map_err(io_err(&data))?;
        }
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711))
            .map_err(io_err(tmp.path()))?;
        let dest = self.dir.join(name);
        let tmp = tmp.keep();
        match std::fs::rename(&tmp, &dest) {
            Ok(()) => Ok((self.get(name)?, true)),
            // Someone else made it in the meantime: theirs it is.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Ok((self.get(name)?, false))
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(io_err(&dest)(e))
            }
        }
    }

    /// The volume `name`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        check_name(name)?;
        let dir = self.dir.join(name);
        let meta_path = dir.join("volume.json");
        let bytes = match std::fs::read(&meta_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound(name.to_string()));
            }
            Err(e) => return Err(io_err(&meta_path)(e)),
        };
        let meta: Meta = serde_json::from_slice(&bytes).map_err(|source| VolumeError::Json {
            path: meta_path,
            source,
        })?;
        Ok(Volume {
            name: name.to_string(),
            dir,
            created: meta.created,
            anonymous: meta.anonymous,
        })
    }

    /// Every volume, by name. One removed while this reads (a `--rm` container's anonymous
    /// volume going with it), or not yet described (being made), is not listed.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_valid_name(&name) {
                continue;
            }
            match self.get(&name) {
                Ok(volume) => out.push(volume),
                Err(VolumeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The containers of the store that mount volume `name`, with their state.
    pub fn users(&self, store_root: &Path, name: &str) -> Result<Vec<state::State>> {
        // A dead `--rm` container is removed, as its rsafe would have done: it uses nothing.
        state::sweep(store_root)?;
        Ok(state::list(store_root)?
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| s.volumes.iter().any(|v| v == name))
            .collect())
    }

    /// Removes volume `name` and its data, unless a container of the store mounts it (a
    /// stopped one would mount it again at `rsafe start`). Files of the container's other
    /// ids are removed as its root, through `idmap`.
    pub fn remove(&self, store_root: &Path, name: &str, idmap: &IdMap) -> Result<()> {
        self.get(name)?;
        // The containers that say they use it; then those starting (their claims); then,
        // under the lock, those that said so in between.
        self.in_use(store_root, name)?;
        let lock = self.lock_file(name)?;
        self.lock_exclusive(&lock, name)?;
        self.remove_locked(store_root, name, idmap)
    }

    /// Refuses volume `name` when a container of the store says it mounts it.
    fn in_use(&self, store_root: &Path, name: &str) -> Result<()> {
        match self.users(store_root, name)?.first() {
            Some(user) => Err(VolumeError::InUse {
                name: name.to_string(),
                container: user.name.clone().unwrap_or_else(|| user.short_id().into()),
                status: if user.is_alive() {
                    "running"
                } else {
                    "stopped: rsafe rm it first"
                },
            }),
            None => Ok(()),
        }
    }

    /// Removes volume `name`, its lock held exclusively: refused if a container said it uses
    /// it before the lock was taken.
    fn remove_locked(&self, store_root: &Path, name: &str, idmap: &IdMap) -> Result<()> {
        let volume = self.get(name)?;
        self.in_use(store_root, name)?;
        // Out of sight first, so a run starting now makes a new volume instead of using a
        // half-removed one.
        let doomed = self.dir.join(format!(".rm-{name}"));
        // Left by an earlier removal that failed half-way.
        state::remove_tree_as(&doomed, idmap)?;
        std::fs::rename(&volume.dir, &doomed).map_err(io_err(&volume.dir))?;
        state::remove_tree_as(&doomed, idmap)?;
        // An anonymous volume's lock file goes too: nothing will name it again, and a store
        // would otherwise keep one file per run of a `VOLUME` image.
        if !volume.anonymous {
            return Ok(());
        }
        let lock = self.lock_path(name);
        match std::fs::remove_file(&lock) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&lock)(e)),
            _ => Ok(()),
        }
    }

    /// Takes `lock` (volume `name`'s lock file, or a claim's copy of it) exclusively, or says
    /// a starting container holds it. A claim's shared lock is converted: only the claims of
    /// others stand in the way.
    fn lock_exclusive(&self, lock: &std::fs::File, name: &str) -> Result<()> {
        match lock.try_lock() {
            Ok(()) => Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => Err(VolumeError::Starting(name.to_string())),
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(&self.lock_path(name))(e)),
        }
    }

    /// Removes the anonymous volume `claim` holds once its container is gone (`run --rm`, or
    /// a run that failed before its container existed), through the claim itself: the copies
    /// of the claim a `run -d` monitor's children inherited do not count as another holder.
    /// A volume another container mounts or is starting with is kept (an `Ok(false)`), as is
    /// a named one; its lock file goes with it, as nothing else will name it.
    pub fn remove_claimed(
        &self,
        store_root: &Path,
        claim: VolumeClaim,
        idmap: &IdMap,
    ) -> Result<bool> {
        let name = claim.name.as_str();
        match self.get(name) {
            Ok(v) if v.anonymous => {}
            Ok(_) | Err(VolumeError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        let kept = |e: &VolumeError| {
            matches!(
                e,
                VolumeError::InUse { .. } | VolumeError::Starting(_) | VolumeError::NotFound(_)
            )
        };
        match self.lock_exclusive(&claim.file, name) {
            Err(e) if kept(&e) => return Ok(false),
            other => other?,
        }
        match self.remove_locked(store_root, name, idmap) {
            Ok(()) => Ok(true),
            Err(e) if kept(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Volumes {
    /// Removes those of volumes `names` that are anonymous, as `run --rm` and `rm -v` do once
    /// their container is gone; named ones stay. One another container still mounts (or is
    /// starting with) is kept, as docker keeps it; the errors of the others are returned.
    pub fn remove_anonymous(
        &self,
        store_root: &Path,
        names: &[String],
        idmap: &IdMap,
    ) -> Vec<VolumeError> {
        let mut failed = Vec::new();
        for name in names {
            match self.get(name) {
                Ok(v) if v.anonymous => {}
                Ok(_) | Err(VolumeError::NotFound(_)) => continue,
                Err(e) => {
                    failed.push(e);
                    continue;
                }
            }
            match self.remove(store_root, name, idmap) {
                Ok(())
                | Err(
                    VolumeError::InUse { .. } | VolumeError::Starting(_) | VolumeError::NotFound(_),
                ) => {}
                Err(e) => failed.push(e),
            }
        }
        failed
    }
}

/// 64 random hex digits from the kernel: an anonymous volume's name, as docker makes them.
fn anonymous_name() -> Result<String> {
    use std::io::Read;
    let urandom = Path::new("/dev/urandom");
    let mut bytes = [0u8; 32];
    std::fs::File::open(urandom)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_err(urandom))?;
    Ok(hex::encode(bytes))
}

/// See [`Volumes::claim`]: released when dropped.
#[derive(Debug)]
pub struct VolumeClaim {
    file: std::fs::File,
    name: String,
}

impl VolumeClaim {
    /// The volume claimed.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn mkdir(path: &Path, exist_ok: bool) -> Result<()> {
    match std::fs::DirBuilder::new().mode(0o755).create(path) {
        Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err(path)),
        Err(e) if exist_ok && e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Directory levels [`populate`] copies before giving up: far more than any real image has.
const MAX_DEPTH: u32 = 256;

/// Copies the contents of directory `from` (the image's directory at the mount point,
/// resolved inside the container's root) into `to` (the new volume): directories, regular
/// files and symlinks, with their owners, modes, times and (files and directories) extended
/// attributes ([`copy_xattrs`]); device nodes, fifos and sockets are
/// left out (a user namespace cannot make device nodes, and Docker's copy skips sockets too).
/// Nothing is followed: every entry is opened by its name in its parent directory with
/// `O_NOFOLLOW`, so a symlink in the image is copied as a symlink, never read through.
/// `target` names the mount point in errors.
pub fn populate(from: &OwnedFd, to: &OwnedFd, target: &str) -> Result<()> {
    let read_dir = |fd: &OwnedFd| {
        rustix::fs::openat(
            fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let fail = |path: &str, e: io::Error| VolumeError::Populate {
        target: target.to_string(),
        path: path.to_string(),
        source: e,
    };
    let from = read_dir(from).map_err(|e| fail(target, e.into()))?;
    let to = read_dir(to).map_err(|e| fail("the volume", e.into()))?;
    copy_dir_contents(&from, &to, target, 0).map_err(|(path, e)| fail(&path, e))?;
    // The volume's own directory takes the owner and mode of the image's (a database image's
    // data directory belongs to its database user), as with Docker.
    let stat = rustix::fs::fstat(&from).map_err(|e| fail(target, e.into()))?;
    let set = || -> rustix::io::Result<()> {
        keep_unmapped(rustix::fs::fchown(
            &to,
            Some(rustix::fs::Uid::from_raw(stat.st_uid)),
            Some(rustix::fs::Gid::from_raw(stat.st_gid)),
        ))?;
        rustix::fs::fchmod(&to, Mode::from_raw_mode(stat.st_mode & 0o7777))
    };
    set().map_err(|e| fail(target, e.into()))
}

type CopyResult = std::result::Result<(), (String, io::Error)>;

/// Copies what directory `from` holds into `to` (`path` names it in errors), recursively:
/// directories, regular files and symlinks with their owner, mode, extended attributes and
/// times; devices, fifos and sockets are left out.
fn copy_dir_contents(from: &OwnedFd, to: &OwnedFd, path: &str, depth: u32) -> CopyResult {
    let at = |name: &str| format!("{}/{name}", path.trim_end_matches('/'));
    if depth > MAX_DEPTH {
        return Err((path.to_string(), io::Error::from_raw_os_error(libc::ELOOP)));
    }
    let dup = from.try_clone().map_err(|e| (path.to_string(), e))?;
    let mut dir = rustix::fs::Dir::new(dup).map_err(|e| (path.to_string(), e.into()))?;
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(|e| (path.to_string(), e.into()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        let entry = Entry {
            from,
            to,
            name: &name,
            here: at(&name),
        };
        entry.copy(depth)?;
    }
    Ok(())
}

/// One entry `name` of directory `from` being copied into `to`; `here` is its path in errors.
struct Entry<'a> {
    from: &'a OwnedFd,
    to: &'a OwnedFd,
    name: &'a str,
    here: String,
}

/// What a copy keeps of the original: owner, permission bits and access/modification times.
struct Kept {
    owner: (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>),
    mode: Mode,
    times: Timestamps,
}

impl Kept {
    fn of(stat: &rustix::fs::Stat) -> Kept {
        Kept {
            owner: (
                Some(rustix::fs::Uid::from_raw(stat.st_uid)),
                Some(rustix::fs::Gid::from_raw(stat.st_gid)),
            ),
            mode: Mode::from_raw_mode(stat.st_mode & 0o7777),
            times: Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: stat.st_atime,
                    tv_nsec: stat.st_atime_nsec as _,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: stat.st_mtime,
                    tv_nsec: stat.st_mtime_nsec as _,
                },
            },
        }
    }
}

impl Entry<'_> {
    /// The error of a call on this entry, with its path.
    fn err(&self, e: rustix::io::Errno) -> (String, io::Error) {
        (self.here.clone(), io::Error::from(e))
    }

    /// Copies the entry by its kind (not following a symlink).
    fn copy(&self, depth: u32) -> CopyResult {
        let stat = rustix::fs::statat(self.from, self.name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.err(e))?;
        let meta = Kept::of(&stat);
        match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
            rustix::fs::FileType::Directory => self.copy_dir(&meta, depth),
            rustix::fs::FileType::RegularFile => self.copy_file(&meta),
            rustix::fs::FileType::Symlink => self.copy_symlink(&meta),
            _ => Ok(()),
        }
    }

    /// A directory, made private, filled, then given the original's owner, mode, attributes
    /// and times (last, as filling it changed its times).
    fn copy_dir(&self, meta: &Kept, depth: u32) -> CopyResult {
        let err = |e| self.err(e);
        rustix::fs::mkdirat(self.to, self.name, Mode::from_raw_mode(0o700)).map_err(err)?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let src = rustix::fs::openat(self.from, self.name, flags, Mode::empty()).map_err(err)?;
        let dst = rustix::fs::openat(self.to, self.name, flags, Mode::empty()).map_err(err)?;
        copy_dir_contents(&src, &dst, &self.here, depth + 1)?;
        keep_unmapped(rustix::fs::fchown(&dst, meta.owner.0, meta.owner.1)).map_err(err)?;
        rustix::fs::fchmod(&dst, meta.mode).map_err(err)?;
        copy_xattrs(src.as_fd(), dst.as_fd()).map_err(err)?;
        rustix::fs::utimensat(&dst, "", &meta.times, AtFlags::EMPTY_PATH).map_err(err)
    }

    /// A regular file: a new file (never an existing one), its bytes, then its metadata.
    fn copy_file(&self, meta: &Kept) -> CopyResult {
        let err = |e| self.err(e);
        let src = rustix::fs::openat(
            self.from,
            self.name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err)?;
        let dst = rustix::fs::openat(
            self.to,
            self.name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(err)?;
        let (mut src, mut dst) = (std::fs::File::from(src), std::fs::File::from(dst));
        io::copy(&mut src, &mut dst).map_err(|e| (self.here.clone(), e))?;
        // Owner before mode and attributes: a chown clears set-uid and set-gid bits,
        // and file capabilities.
        keep_unmapped(rustix::fs::fchown(&dst, meta.owner.0, meta.owner.1)).map_err(err)?;
        rustix::fs::fchmod(&dst, meta.mode).map_err(err)?;
        copy_xattrs(src.as_fd(), dst.as_fd()).map_err(err)?;
        rustix::fs::futimens(&dst, &meta.times).map_err(err)
    }

    /// A symlink, as a symlink with the same target, owner and times.
    fn copy_symlink(&self, meta: &Kept) -> CopyResult {
        let err = |e| self.err(e);
        let target = rustix::fs::readlinkat(self.from, self.name, Vec::new()).map_err(err)?;
        rustix::fs::symlinkat(&target, self.to, self.name).map_err(err)?;
        keep_unmapped(rustix::fs::chownat(
            self.to,
            self.name,
            meta.owner.0,
            meta.owner.1,
            AtFlags::SYMLINK_NOFOLLOW,
        ))
        .map_err(err)?;
        rustix::fs::utimensat(self.to, self.name, &meta.times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(err)
    }
}

/// Copies the extended attributes of `from` onto `to`: `user.*` ones always (failing if they
/// cannot be written); ACLs (`system.posix_acl_*`) and file capabilities
/// (`security.capability`) when the container's root may set them, as in a rootless engine.
/// What a user namespace may not write (`trusted.*`, LSM labels, an ACL naming an id the
/// container does not map) is left out: each of those only ever grants more, so the copy is
/// never more permissive than the image. A volume on a filesystem without extended attributes
/// gets none.
fn copy_xattrs(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> rustix::io::Result<()> {
    use rustix::io::Errno;
    let names = match read_xattr_list(from) {
        Ok(names) => names,
        Err(Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let value = match read_xattr(from, name) {
            Ok(v) => v,
            // Removed since the list was read.
            Err(Errno::NODATA) => continue,
            // Not readable here: a file capability written for the host's root (v2) is not
            // shown inside a user namespace.
            Err(Errno::NOTSUP | Errno::PERM | Errno::ACCESS) if !name.starts_with(b"user.") => {
                continue;
            }
            Err(e) => return Err(e),
        };
        match rustix::fs::fsetxattr(to, name, &value, rustix::fs::XattrFlags::empty()) {
            Ok(()) | Err(Errno::NOTSUP) => {}
            Err(Errno::PERM | Errno::ACCESS | Errno::INVAL) if !name.starts_with(b"user.") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The NUL-separated names of `fd`'s extended attributes.
fn read_xattr_list(fd: BorrowedFd<'_>) -> rustix::io::Result<Vec<u8>> {
    loop {
        let size = rustix::fs::flistxattr_query(fd)?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut names = vec![0u8; size];
        match rustix::fs::flistxattr(fd, &mut names[..]) {
            Ok(n) => {
                names.truncate(n);
                return Ok(names);
            }
            // Grew since the size was asked for.
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn read_xattr(fd: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<Vec<u8>> {
    loop {
        let size = rustix::fs::fgetxattr_query(fd, name)?;
        let mut value = vec![0u8; size];
        if size == 0 {
            return Ok(value);
        }
        match rustix::fs::fgetxattr(fd, name, &mut value[..]) {
            Ok(n) => {
                value.truncate(n);
                return Ok(value);
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A chown to an id the container does not map (a file that shows as `nobody`) fails with
/// EINVAL: the copy then stays the container root's, as the file could not be given away.
fn keep_unmapped(result: rustix::io::Result<()>) -> rustix::io::Result<()> {
    match result {
        Err(rustix::io::Errno::INVAL) => Ok(()),
        other => other,
    }
}

/// `-v SRC:DST:U` (podman's): gives every file and directory of the tree at `source` to
/// `owner` (the host ids of container root), so the container's root may write to a host
/// directory as its own. Nothing is followed: `source` itself must not be a symlink, each entry
/// is opened by name in its parent with `O_NOFOLLOW`, and a symlink is chowned as itself
/// (`AT_SYMLINK_NOFOLLOW`), never its target. Another filesystem mounted inside the tree is left
/// as it is (not crossed), as `du -x` would. Returns how many entries were changed.
pub fn chown_tree(source: &Path, owner: (u32, u32)) -> Result<u64> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |e: rustix::io::Errno| VolumeError::Chown {
            path,
            source: e.into(),
        }
    };
    let stat = rustix::fs::lstat(source).map_err(fail(source))?;
    let ids = (
        Some(rustix::fs::Uid::from_raw(owner.0)),
        Some(rustix::fs::Gid::from_raw(owner.1)),
    );
    match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
        rustix::fs::FileType::Symlink => Err(VolumeError::Chown {
            path: source.to_path_buf(),
            source: io::Error::other("a symlink: :U does not follow symlinks; name its target"),
        }),
        rustix::fs::FileType::Directory => {
            let dir =
                rustix::fs::open(source, DIR_NOFOLLOW, Mode::empty()).map_err(fail(source))?;
            let mut count = 0;
            chown_dir_contents(&dir, source, stat.st_dev, ids, 0, &mut count)
                .map_err(|(path, e)| fail(&path)(e))?;
            rustix::fs::fchown(&dir, ids.0, ids.1).map_err(fail(source))?;
            Ok(count + 1)
        }
        _ => {
            rustix::fs::chownat(CWD, source, ids.0, ids.1, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(fail(source))?;
            Ok(1)
        }
    }
}

const DIR_NOFOLLOW: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

type Ids = (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>);

fn chown_dir_contents(
    dir: &OwnedFd,
    path: &Path,
    dev: u64,
    ids: Ids,
    depth: u32,
    count: &mut u64,
) -> std::result::Result<(), (PathBuf, rustix::io::Errno)> {
    if depth > MAX_DEPTH {
        return Err((path.to_path_buf(), rustix::io::Errno::LOOP));
    }
    let dup = rustix::io::fcntl_dupfd_cloexec(dir, 0).map_err(|e| (path.to_path_buf(), e))?;
    let mut entries = rustix::fs::Dir::new(dup).map_err(|e| (path.to_path_buf(), e))?;
    while let Some(entry) = entries.read() {
        let entry = entry.map_err(|e| (path.to_path_buf(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        let here = path.join(&name);
        let stat = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| (here.clone(), e))?;
        if stat.st_dev != dev {
            continue;
        }
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory {
            let sub = rustix::fs::openat(dir, &name, DIR_NOFOLLOW, Mode::empty())
                .map_err(|e| (here.clone(), e))?;
            chown_dir_contents(&sub, &here, dev, ids, depth + 1, count)?;
        }
        rustix::fs::chownat(dir, &name, ids.0, ids.1, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| (here.clone(), e))?;
        *count += 1;
    }
    Ok(())
}

/// The host uid and gid of the container's root for this caller: who owns a new volume.
pub fn root_owner(idmap: &IdMap) -> (u32, u32) {
    (
        idmap
            .host_uid(0)
            .unwrap_or_else(|| nix::unistd::getuid().as_raw()),
        idmap
            .host_gid(0)
            .unwrap_or_else(|| nix::unistd::getgid().as_raw()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::idmap::{IdRange, MapWriter};
    use std::os::unix::fs::MetadataExt;

    fn me() -> IdMap {
        let one = |id| IdRange {
            container: 0,
            host: id,
            size: 1,
        };
        IdMap {
            uids: vec![one(nix::unistd::getuid().as_raw())],
            gids: vec![one(nix::unistd::getgid().as_raw())],
            writer: MapWriter::Direct,
            setgroups: false,
        }
    }

    #[test]
    fn names() {
        for ok in ["data", "pg-data.1", "A_b", "9"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".data",
            "-x",
            "a/b",
            "a b",
            "..",
            "a:b",
            &"x".repeat(129),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn ensure_list_get_remove() {
        let store = tempfile::tempdir().unwrap();
        let volumes = Volumes::of_store(store.path());
        assert!(volumes.list().unwrap().is_empty());
        let owner = root_owner(&me());
        let (v, created) = volumes.ensure("data", owner).unwrap();
        assert!(created && v.data().is_dir() && v.is_empty().unwrap());
        std::fs::write(v.data().join("f"), "x").unwrap();
        let (again, created) = volumes.ensure("data", owner).unwrap();
        assert!(!created);
        assert_eq!(again, v);
        assert!(!again.is_empty().unwrap());
        volumes.ensure("other", owner).unwrap();
        let names: Vec<String> = volumes
            .list()
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["data", "other"]);
        // A volume half removed (or half made) while `ls` reads: left out, not an error.
        let meta = volumes.dir.join("other/volume.json");
        std::fs::rename(&meta, store.path().join("other.json")).unwrap();
        let names: Vec<String> = volumes
            .list()
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["data"]);
        std::fs::rename(store.path().join("other.json"), &meta).unwrap();
        assert!(matches!(volumes.get("nope"), Err(VolumeError::NotFound(_))));
        assert!(matches!(
            volumes.ensure("../x", owner),
            Err(VolumeError::BadName(_))
        ));
        volumes.remove(store.path(), "data", &me()).unwrap();
        assert!(!v.dir.exists());
        assert!(matches!(
            volumes.remove(store.path(), "data", &me()),
            Err(VolumeError::NotFound(_))
        ));
        assert_eq!(volumes.list().unwrap().len(), 1);
    }

    #[test]
    fn a_volume_a_starting_container_claims_is_not_removed() {
        let store = tempfile::tempdir().unwrap();
        let volumes = Volumes::of_store(store.path());
        let claim = volumes.claim("data").unwrap();
        volumes.ensure("data", root_owner(&me())).unwrap();
        // Another starting container may claim it as well.
        let second = volumes.claim("data").unwrap();
        assert!(matches!(
            volumes.remove(store.path(), "data", &me()),
            Err(VolumeError::Starting(_))
        ));
        drop(claim);
        assert!(matches!(
            volumes.remove(store.path(), "data", &me()),
            Err(VolumeError::Starting(_))
        ));
        drop(second);
        volumes.remove(store.path(), "data", &me()).unwrap();
        // The lock files are not volumes.
        assert!(volumes.list().unwrap().is_empty());
    }

    #[test]
    fn an_anonymous_volume_goes_through_its_own_claim_unless_someone_else_holds_it() {
        let store = tempfile::tempdir().unwrap();
        let volumes = Volumes::of_store(store.path());
        let owner = root_owner(&me());
        let (v, claim) = volumes.create_anonymous(owner).unwrap();
        assert!(v.anonymous && v.is_empty().unwrap());
        assert!(v.name.len() == 64 && v.name.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(is_valid_name(&v.name));
        assert_eq!(claim.name(), v.name);
        let (other, other_claim) = volumes.create_anonymous(owner).unwrap();
        assert_ne!(other.name, v.name);
        // A copy of the claim (a `run -d` monitor's child has one) is the same claim.
        let copy = claim.file.try_clone().unwrap();
        assert!(volumes.remove_claimed(store.path(), claim, &me()).unwrap());
        drop(copy);
        assert!(matches!(
            volumes.get(&v.name),
            Err(VolumeError::NotFound(_))
        ));
        assert!(!store.path().join("volumes/.locks").join(&v.name).exists());
        // Another container's claim keeps it.
        let second = volumes.claim(&other.name).unwrap();
        assert!(
            !volumes
                .remove_claimed(store.path(), other_claim, &me())
                .unwrap()
        );
        assert!(volumes.get(&other.name).is_ok());
        drop(second);
        // A named volume is never removed as an anonymous one.
        volumes.ensure("named", owner).unwrap();
        let named = volumes.claim("named").unwrap();
        assert!(!volumes.remove_claimed(store.path(), named, &me()).unwrap());
        let names = ["named".to_string(), other.name.clone(), "gone".into()];
        assert!(
            volumes
                .remove_anonymous(store.path(), &names, &me())
                .is_empty()
        );
        let left: Vec<String> = volumes
            .list()
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(left, ["named"]);
        assert!(!volumes.get("named").unwrap().anonymous);
    }

    #[test]
    fn chown_tree_changes_the_tree_and_never_follows_a_link() {
        let top = tempfile::tempdir().unwrap();
        let (tree, outside) = (top.path().join("tree"), top.path().join("outside"));
        std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
        std::fs::write(tree.join("sub/deeper/f"), "x").unwrap();
        std::fs::write(&outside, "not mine to change").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("sub/link")).unwrap();
        std::os::unix::fs::symlink(top.path(), tree.join("up")).unwrap();
        let meta = |p: &Path| std::fs::symlink_metadata(p).unwrap();
        let before = (meta(&outside).uid(), meta(&outside).gid());
        // Root gives the tree away; anyone else can give it only to themselves.
        let owner = if nix::unistd::geteuid().is_root() {
            (4_000_123, 4_000_456)
        } else {
            (
                nix::unistd::getuid().as_raw(),
                nix::unistd::getgid().as_raw(),
            )
        };
        // tree, sub, deeper, f, link, up
        assert_eq!(chown_tree(&tree, owner).unwrap(), 6);
        for p in ["", "sub", "sub/deeper", "sub/deeper/f", "sub/link", "up"] {
            let m = meta(&tree.join(p));
            assert_eq!((m.uid(), m.gid()), owner, "{p}");
        }
        assert_eq!((meta(&outside).uid(), meta(&outside).gid()), before);
        assert_eq!((meta(top.path()).uid(), meta(top.path()).gid()), before);
        // A source that is itself a symlink is refused, not followed.
        let err = chown_tree(&tree.join("up"), owner).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
        assert!(chown_tree(&top.path().join("missing"), owner).is_err());
    }

    #[test]
    fn populate_keeps_extended_attributes() {
        let top = tempfile::tempdir().unwrap();
        let (src, dst) = (top.path().join("src"), top.path().join("dst"));
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(src.join("tool"), "#!/bin/sh\n").unwrap();
        let set = |path: &Path, name: &str, value: &[u8]| {
            rustix::fs::setxattr(path, name, value, rustix::fs::XattrFlags::empty()).unwrap();
        };
        set(&src.join("tool"), "user.origin", b"image");
        set(&src.join("sub"), "user.kind", b"directory");
        // cap_net_bind_service+ep (VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, permitted bit 10).
        let mut caps = Vec::new();
        for word in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
            caps.extend(word.to_le_bytes());
        }
        let root = nix::unistd::geteuid().is_root();
        if root {
            set(&src.join("tool"), "security.capability", &caps);
        }
        let open = |p: &Path| {
            rustix::fs::open(p, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap()
        };
        populate(&open(&src), &open(&dst), "/data").unwrap();
        let get = |path: &Path, name: &str| {
            let mut value = vec![0u8; 64];
            let n = rustix::fs::getxattr(path, name, &mut value[..]).unwrap();
            value.truncate(n);
            value
        };
        assert_eq!(get(&dst.join("tool"), "user.origin"), b"image");
        assert_eq!(get(&dst.join("sub"), "user.kind"), b"directory");
        if root {
            // Set after the copy's chown, which would have cleared it.
            assert_eq!(get(&dst.join("tool"), "security.capability"), caps);
        }
    }

    #[test]
    fn populate_copies_without_following_anything() {
        let top = tempfile::tempdir().unwrap();
        let (src, dst) = (top.path().join("src"), top.path().join("dst"));
        std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(src.join("file"), "content").unwrap();
        std::fs::write(src.join("sub/deeper/f"), "deep").unwrap();
        std::fs::set_permissions(src.join("file"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o701)).unwrap();
        // Links leading out of the image are copied as links, never read through.
        std::os::unix::fs::symlink("/etc/shadow", src.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../outside", src.join("sub/rel")).unwrap();
        nix::unistd::mkfifo(&src.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let open = |p: &Path| {
            rustix::fs::open(p, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap()
        };
        populate(&open(&src), &open(&dst), "/data").unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.join("file")).unwrap(),
            "content"
        );
        assert_eq!(
            std::fs::read_to_string(dst.join("sub/deeper/f")).unwrap(),
            "deep"
        );
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&dst.join("file")), 0o640);
        assert_eq!(mode(&dst.join("sub")), 0o750);
        assert_eq!(mode(&dst), 0o701, "the volume takes the mount point's mode");
        assert_eq!(
            std::fs::read_link(dst.join("abs")).unwrap(),
            Path::new("/etc/shadow")
        );
        assert_eq!(
            std::fs::read_link(dst.join("sub/rel")).unwrap(),
            Path::new("../../../outside")
        );
        assert!(!dst.join("fifo").exists(), "special files are left out");
        let mtime = |p: &Path| std::fs::symlink_metadata(p).unwrap().mtime();
        assert_eq!(mtime(&dst.join("file")), mtime(&src.join("file")));
        // A copy into a volume that already has the name fails rather than overwrite it.
        assert!(matches!(
            populate(&open(&src), &open(&dst), "/data"),
            Err(VolumeError::Populate { .. })
        ));
    }
}
