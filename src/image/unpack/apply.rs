//! Applying one layer's tar stream to a target directory.
//!
//! Two targets, one set of rules ([`Mode`]):
//! - [`Mode::Flatten`]: the target already holds the layers below; whiteouts delete from it.
//! - [`Mode::Overlay`]: the target is an empty directory for this layer alone (a cache entry);
//!   whiteouts are encoded for overlayfs (see [`super::whiteout`]).
//!
//! The rules keep the two consistent with each other and with what overlayfs shows:
//! - a later entry with the same name replaces an earlier one (tar semantics), except that a
//!   directory merges with a directory;
//! - a path may never pass through something *this layer* made a non-directory: `link ->
//!   /etc` followed by `link/passwd` is an attack and an error, whatever `link` points at;
//! - a non-directory that a *lower* layer put where this layer needs a directory is replaced by
//!   one (overlayfs shows this layer's directory there, never the lower symlink's target);
//! - a hard link may only point at a file this layer created (overlayfs cannot link across
//!   layers, and a target outside the layer is an escape);
//! - a name whited-out and then recreated as a directory in the same layer is opaque.

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Mode as FileMode, OFlags, XattrFlags};
use rustix::io::Errno;

use super::entry::{EntryName, EntryPath, PATH_MAX, below};
use super::owner::{OWNER_XATTR, Owners};
use super::tar::{CopyError, Kind, TarEntry, TarError, TarReader};
use super::target::{self, Deferred, DirMeta, Target, Walk};
use super::whiteout::{self, HAS_XWHITEOUTS, OPAQUE, Whiteout, XATTR_OPAQUE, XATTR_WHITEOUT};
use super::{Limits, Problem, UnpackError, UnpackStats};
use crate::image::LayerInfo;
use crate::image::prefetch::Prefetch;

/// Memory allowed for the names one layer's bookkeeping holds (a layer of 4 million
/// 64-byte names fits; a crafted layer of millions of 4 KiB names does not).
pub const MAX_NAME_BYTES: usize = 256 << 20;

/// Which kind of target a layer is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Flatten,
    Overlay,
}

/// What the layer did that the caller must know about.
#[derive(Debug, Default, Clone, Copy)]
pub struct LayerOutcome {
    /// The layer's root is opaque: the layers below it are hidden entirely.
    pub root_opaque: bool,
}

/// What this layer has put at a path so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Dir,
    Other,
    Whiteout,
}

/// Per-layer bookkeeping; also the [`Walk`] policy for parent directories.
struct Book<'a> {
    mode: Mode,
    owners: &'a Owners,
    written: BTreeMap<Vec<u8>, Written>,
    name_bytes: usize,
    deferred: &'a mut Deferred,
    stats: &'a mut UnpackStats,
    /// Overlay mode: directories this layer made opaque / gave xwhiteouts.
    opaque_dirs: HashSet<Vec<u8>>,
    xwhiteout_dirs: HashSet<Vec<u8>>,
    /// A whiteout of this layer is being replaced by a directory: make that directory opaque.
    reopaque: Option<Vec<u8>>,
    outcome: LayerOutcome,
}

impl Book<'_> {
    fn record(&mut self, path: &[u8], what: Written) -> Result<(), Problem> {
        if self.written.insert(path.to_vec(), what).is_none() {
            self.name_bytes += path.len() + 48;
            if self.name_bytes + self.deferred.bytes() > MAX_NAME_BYTES {
                return Err(Problem::NameBudget {
                    limit: MAX_NAME_BYTES,
                });
            }
        }
        Ok(())
    }

    /// `path` and everything below it were removed from disk.
    fn forget(&mut self, path: &[u8]) {
        if self.written.remove(path).is_some() {
            self.name_bytes -= path.len() + 48;
        }
        let doomed: Vec<Vec<u8>> = self
            .written
            .range(below(path))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.name_bytes -= k.len() + 48;
            self.written.remove(&k);
        }
        self.deferred.forget(path);
    }

    /// Gives a directory (or file) the image's owner `uid:gid` per the ownership policy.
    fn own(
        &mut self,
        fd: BorrowedFd<'_>,
        uid: u32,
        gid: u32,
        can_record: bool,
    ) -> Result<(), Problem> {
        let owner = self.owners.map(uid, gid);
        if let Some((u, g)) = owner.chown {
            rustix::fs::fchown(
                fd,
                Some(rustix::fs::Uid::from_raw(u)),
                Some(rustix::fs::Gid::from_raw(g)),
            )
            .map_err(|e| Problem::io("chown", e))?;
        }
        if owner.record && can_record {
            let value = format!("{uid}:{gid}");
            self.set_xattr(fd, OWNER_XATTR.as_bytes(), value.as_bytes())?;
        }
        Ok(())
    }

    /// Sets an xattr; a filesystem or kernel that refuses it is counted, not fatal.
    fn set_xattr(&mut self, fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> Result<(), Problem> {
        match rustix::fs::fsetxattr(fd, name, value, XattrFlags::empty()) {
            Ok(()) => Ok(()),
            // Unsupported, forbidden, malformed (bad name, oversized value) or no room in the
            // inode: the file is still right, the attribute is counted and reported.
            Err(
                Errno::OPNOTSUPP
                | Errno::PERM
                | Errno::ACCESS
                | Errno::INVAL
                | Errno::RANGE
                | Errno::TOOBIG
                | Errno::NOSPC,
            ) => {
                self.stats.xattrs_skipped += 1;
                Ok(())
            }
            Err(e) => Err(Problem::io("set xattr", e)),
        }
    }

    fn image_xattrs(&mut self, fd: BorrowedFd<'_>, e: &TarEntry) -> Result<(), Problem> {
        for (name, value) in &e.xattrs {
            match self.owners.xattr(name, value, e.kind) {
                Some(v) => self.set_xattr(fd, name, &v)?,
                None => self.stats.xattrs_dropped += 1,
            }
        }
        Ok(())
    }

    /// Marks a directory for overlayfs; unlike image xattrs this must succeed.
    fn mark(&mut self, dir: BorrowedFd<'_>, value: &[u8]) -> Result<(), Problem> {
        let fd = target::open_dir_for_metadata(dir, b"")
            .map_err(|e| Problem::io("open directory", e))?;
        rustix::fs::fsetxattr(&fd, XATTR_OPAQUE, value, XattrFlags::empty()).map_err(|e| {
            Problem::io(
                "set overlay xattr (does the filesystem support user xattrs?)",
                e,
            )
        })
    }
}

impl Walk for Book<'_> {
    fn created(&mut self, path: &[u8], dir: BorrowedFd<'_>) -> Result<(), Problem> {
        self.record(path, Written::Dir)?;
        let fd = target::open_dir_for_metadata(dir, b"")
            .map_err(|e| Problem::io("open directory", e))?;
        // Directories a layer implies without listing belong to image root, as in Docker.
        self.own(fd.as_fd(), 0, 0, true)?;
        if self.reopaque.as_deref() == Some(path) {
            self.reopaque = None;
            self.mark(dir, OPAQUE)?;
            self.opaque_dirs.insert(path.to_vec());
        }
        Ok(())
    }

    fn blocked(&mut self, path: &[u8], kind: FileType) -> Result<(), Problem> {
        match self.written.get(path) {
            Some(Written::Whiteout) => {
                self.forget(path);
                if self.mode == Mode::Overlay {
                    self.reopaque = Some(path.to_vec());
                }
                Ok(())
            }
            Some(_) if kind == FileType::Symlink => {
                Err(Problem::ThroughSymlink(EntryName(path.to_vec())))
            }
            Some(_) => Err(Problem::ParentNotDirectory(EntryName(path.to_vec()))),
            None if self.mode == Mode::Flatten => Ok(()),
            None => Err(Problem::ParentNotDirectory(EntryName(path.to_vec()))),
        }
    }
}

/// Applies one layer.
pub struct Applier<'a> {
    target: &'a mut Target,
    book: Book<'a>,
}

impl<'a> Applier<'a> {
    /// An applier for one layer onto `target`; `deferred` collects directory metadata (kept
    /// across layers when flattening) and `stats` what was done.
    pub fn new(
        target: &'a mut Target,
        mode: Mode,
        owners: &'a Owners,
        deferred: &'a mut Deferred,
        stats: &'a mut UnpackStats,
    ) -> Applier<'a> {
        target.invalidate();
        Applier {
            target,
            book: Book {
                mode,
                owners,
                written: BTreeMap::new(),
                name_bytes: 0,
                deferred,
                stats,
                opaque_dirs: HashSet::new(),
                xwhiteout_dirs: HashSet::new(),
                reopaque: None,
                outcome: LayerOutcome::default(),
            },
        }
    }

    /// Reads the whole layer from `stream` and applies it, then checks the stream's digest,
    /// size and diff_id. Any error leaves the target half-written: the caller discards it.
    pub fn apply(
        mut self,
        stream: Prefetch,
        layer: &LayerInfo,
        limits: &Limits,
    ) -> Result<LayerOutcome, UnpackError> {
        let mut reader = TarReader::new(stream, limits.max_entries);
        let result = self.entries(&mut reader);
        let stream = reader.into_inner();
        match result {
            Ok(()) => {
                stream.finish()?;
                Ok(self.book.outcome)
            }
            Err(e) => {
                // Corruption shows as a broken tar first; the stream's verdict names the cause.
                if matches!(
                    e.problem,
                    Problem::Read(_) | Problem::Truncated | Problem::Checksum
                ) {
                    stream.finish()?;
                }
                Err(UnpackError::from_tar(&layer.digest, e))
            }
        }
    }

    fn entries<R: BufRead>(&mut self, reader: &mut TarReader<R>) -> Result<(), TarError> {
        while let Some(entry) = reader.next_entry()? {
            self.book.stats.entries += 1;
            let offset = entry.offset;
            let name = entry.path.clone();
            self.entry(entry, reader).map_err(|failure| match failure {
                Failure::Entry(problem) => TarError {
                    offset,
                    entry: Some(name),
                    problem,
                },
                Failure::Archive(e) => e,
            })?;
        }
        Ok(())
    }

    fn entry<R: BufRead>(&mut self, e: TarEntry, reader: &mut TarReader<R>) -> Result<(), Failure> {
        let path = EntryPath::parse(&e.path)?;
        let Some((parent, name)) = path.split_last() else {
            if e.kind != Kind::Directory {
                return Err(Problem::RootNotDirectory.into());
            }
            let root = self.target.root();
            let fd =
                target::open_dir_for_metadata(root, b"").map_err(|err| Problem::io("open", err))?;
            self.directory_metadata(fd.as_fd(), &path, &e)?;
            return Ok(());
        };
        match whiteout::classify(name)? {
            Some(Whiteout::Opaque) => return Ok(self.opaque(parent)?),
            Some(Whiteout::Delete(victim)) => return Ok(self.whiteout(parent, victim)?),
            Some(Whiteout::AufsMeta) => return Ok(()),
            None => {}
        }
        let device = matches!(e.kind, Kind::CharDevice | Kind::BlockDevice);
        if e.kind == Kind::CharDevice && e.device == (0, 0) {
            return Err(Problem::OverlayWhiteoutDevice.into());
        }
        if device && !self.book.owners.may_make_devices() {
            self.book.stats.devices_skipped += 1;
            return Ok(());
        }
        let dir = self.target.dir(parent, &mut self.book)?;
        match e.kind {
            Kind::Directory => self.directory(&dir, &path, name, &e)?,
            Kind::Regular => self.regular(&dir, &path, name, &e, reader)?,
            Kind::Symlink => self.symlink(&dir, &path, name, &e)?,
            Kind::HardLink => self.hard_link(&dir, &path, name, &e)?,
            Kind::Fifo | Kind::CharDevice | Kind::BlockDevice => {
                self.special(&dir, &path, name, &e)?
            }
        }
        Ok(())
    }

    /// Something exists at `parent/name` and `path` must be created there: a directory stays
    /// (returns true) when the newcomer is one; anything else is removed.
    fn clear(
        &mut self,
        dir: &OwnedFd,
        path: &EntryPath,
        name: &[u8],
        for_dir: bool,
    ) -> Result<bool, Problem> {
        let existing = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => FileType::from_raw_mode(st.st_mode),
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(Problem::io("inspect", e)),
        };
        if for_dir && existing == FileType::Directory {
            return Ok(true);
        }
        if for_dir && self.book.written.get(path.as_bytes()) == Some(&Written::Whiteout) {
            self.book.reopaque = Some(path.as_bytes().to_vec());
        }
        target::remove_node(dir.as_fd(), name).map_err(|e| Problem::io("remove", e))?;
        self.target.invalidate();
        self.book.forget(path.as_bytes());
        Ok(false)
    }

    fn directory(
        &mut self,
        dir: &OwnedFd,
        path: &EntryPath,
        name: &[u8],
        e: &TarEntry,
    ) -> Result<(), Problem> {
        let whited_out = self.book.written.get(path.as_bytes()) == Some(&Written::Whiteout);
        match rustix::fs::mkdirat(dir, name, FileMode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                if !self.clear(dir, path, name, true)? {
                    rustix::fs::mkdirat(dir, name, FileMode::from_raw_mode(0o700))
                        .map_err(|e| Problem::io("create directory", e))?;
                }
            }
            Err(err) => return Err(Problem::io("create directory", err)),
        }
        let fd = target::open_dir_for_metadata(dir.as_fd(), name)
            .map_err(|e| Problem::io("open directory", e))?;
        if whited_out && self.book.mode == Mode::Overlay {
            self.book.reopaque = None;
            self.book.mark(fd.as_fd(), OPAQUE)?;
            self.book.opaque_dirs.insert(path.as_bytes().to_vec());
        }
        self.book.stats.dirs += 1;
        self.directory_metadata(fd.as_fd(), path, e)
    }

    fn directory_metadata(
        &mut self,
        fd: BorrowedFd<'_>,
        path: &EntryPath,
        e: &TarEntry,
    ) -> Result<(), Problem> {
        self.book.record(path.as_bytes(), Written::Dir)?;
        self.book.own(fd, e.uid, e.gid, true)?;
        self.book.image_xattrs(fd, e)?;
        self.book.deferred.set(
            path.as_bytes(),
            DirMeta {
                mode: e.mode,
                mtime: e.mtime,
                atime: e.atime,
            },
        );
        Ok(())
    }

    fn regular<R: BufRead>(
        &mut self,
        dir: &OwnedFd,
        path: &EntryPath,
        name: &[u8],
        e: &TarEntry,
        reader: &mut TarReader<R>,
    ) -> Result<(), Failure> {
        const CREATE: OFlags = OFlags::WRONLY
            .union(OFlags::CREATE)
            .union(OFlags::EXCL)
            .union(OFlags::NOFOLLOW)
            .union(OFlags::CLOEXEC);
        let mode = FileMode::from_raw_mode(0o600);
        let fd = match rustix::fs::openat(dir, name, CREATE, mode) {
            Ok(fd) => fd,
            Err(Errno::EXIST) => {
                self.clear(dir, path, name, false)?;
                rustix::fs::openat(dir, name, CREATE, mode).map_err(|e| Problem::io("create", e))?
            }
            Err(err) => return Err(Problem::io("create", err).into()),
        };
        let mut file = std::fs::File::from(fd);
        match reader.copy_data(&mut file) {
            Ok(n) => self.book.stats.bytes += n,
            Err(CopyError::Read(err)) => return Err(Failure::Archive(err)),
            Err(CopyError::Write(err)) => return Err(Problem::io("write", err).into()),
        }
        self.book.record(path.as_bytes(), Written::Other)?;
        // chown clears setuid bits and file capabilities: owner first, then xattrs and mode.
        self.book.own(file.as_fd(), e.uid, e.gid, true)?;
        self.book.image_xattrs(file.as_fd(), e)?;
        rustix::fs::fchmod(&file, FileMode::from_raw_mode(e.mode))
            .map_err(|e| Problem::io("chmod", e))?;
        rustix::fs::futimens(&file, &target::timestamps(e.mtime, e.atime))
            .map_err(|e| Problem::io("set times", e))?;
        self.book.stats.files += 1;
        Ok(())
    }

    fn symlink(
        &mut self,
        dir: &OwnedFd,
        path: &EntryPath,
        name: &[u8],
        e: &TarEntry,
    ) -> Result<(), Problem> {
        if e.link.is_empty() {
            return Err(Problem::EmptyLinkTarget);
        }
        if e.link.len() >= PATH_MAX {
            return Err(Problem::LinkTooLong(e.link.len()));
        }
        // The target is data: it is stored as given and never followed while extracting.
        match rustix::fs::symlinkat(&e.link[..], dir, name) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                self.clear(dir, path, name, false)?;
                rustix::fs::symlinkat(&e.link[..], dir, name)
                    .map_err(|e| Problem::io("create symlink", e))?;
            }
            Err(err) => return Err(Problem::io("create symlink", err)),
        }
        self.book.record(path.as_bytes(), Written::Other)?;
        self.own_at(dir, name, e)?;
        set_times_at(dir, name, e)?;
        self.book.stats.symlinks += 1;
        Ok(())
    }

    /// chown by name without following (symlinks, fifos, devices: no descriptor to use).
    fn own_at(&mut self, dir: &OwnedFd, name: &[u8], e: &TarEntry) -> Result<(), Problem> {
        if let Some((u, g)) = self.book.owners.map(e.uid, e.gid).chown {
            rustix::fs::chownat(
                dir,
                name,
                Some(rustix::fs::Uid::from_raw(u)),
                Some(rustix::fs::Gid::from_raw(g)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Problem::io("chown", e))?;
        }
        Ok(())
    }

    fn hard_link(
        &mut self,
        dir: &OwnedFd,
        path: &EntryPath,
        name: &[u8],
        e: &TarEntry,
    ) -> Result<(), Problem> {
        let bad = |reason: Problem| Problem::HardLink {
            target: EntryName(e.link.clone()),
            reason: Box::new(reason),
        };
        let target_path = EntryPath::parse(&e.link).map_err(bad)?;
        if target_path == *path {
            return Ok(());
        }
        match self.book.written.get(target_path.as_bytes()) {
            Some(Written::Other) => {}
            Some(Written::Dir) => return Err(bad(Problem::IsDirectory)),
            _ => return Err(bad(Problem::NotInLayer)),
        }
        let Some((target_parent, target_name)) = target_path.split_last() else {
            return Err(bad(Problem::IsDirectory));
        };
        let link = |t: &Target, dir: &OwnedFd| -> Result<(), Errno> {
            let from: Rc<OwnedFd> = t.existing_dir(target_parent)?;
            rustix::fs::linkat(&*from, target_name, dir, name, AtFlags::empty())
        };
        match link(self.target, dir) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                self.clear(dir, path, name, false)?;
                link(self.target, dir).map_err(|err| bad(Problem::io("link", err)))?;
            }
            Err(err) => return Err(bad(Problem::io("link", err))),
        }
        self.book.record(path.as_bytes(), Written::Other)?;
        self.book.stats.hardlinks += 1;
        Ok(())
    }

    fn special(
        &mut self,
        dir: &OwnedFd,
        path: &EntryPath,
        name: &[u8],
        e: &TarEntry,
    ) -> Result<(), Problem> {
        let kind = match e.kind {
            Kind::Fifo => FileType::Fifo,
            Kind::CharDevice => FileType::CharacterDevice,
            _ => FileType::BlockDevice,
        };
        let dev = rustix::fs::makedev(e.device.0, e.device.1);
        let mode = FileMode::from_raw_mode(0o600);
        let made = match rustix::fs::mknodat(dir, name, kind, mode, dev) {
            Err(Errno::EXIST) => {
                self.clear(dir, path, name, false)?;
                rustix::fs::mknodat(dir, name, kind, mode, dev)
            }
            other => other,
        };
        match made {
            Ok(()) => {}
            // A device this process may not make after all (a restricted root, a filesystem
            // mounted nodev-for-creation): skipped and counted, as for an unprivileged
            // extractor, never a failed layer. Podman skips them the same way.
            Err(Errno::PERM) if kind != FileType::Fifo => {
                self.book.stats.devices_skipped += 1;
                return Ok(());
            }
            Err(err) => return Err(Problem::io("mknod", err)),
        }
        self.book.record(path.as_bytes(), Written::Other)?;
        self.own_at(dir, name, e)?;
        // Just created by us as a fifo or device, so following is not a concern here.
        rustix::fs::chmodat(dir, name, FileMode::from_raw_mode(e.mode), AtFlags::empty())
            .map_err(|e| Problem::io("chmod", e))?;
        set_times_at(dir, name, e)?;
        self.book.stats.specials += 1;
        Ok(())
    }

    /// `parent/.wh.<victim>`.
    fn whiteout(&mut self, parent: &[u8], victim: &[u8]) -> Result<(), Problem> {
        let dir = self.target.dir(parent, &mut self.book)?;
        let path = EntryPath::join(parent, victim);
        self.book.stats.whiteouts += 1;
        target::remove_node(dir.as_fd(), victim).map_err(|e| Problem::io("remove", e))?;
        self.target.invalidate();
        self.book.forget(path.as_bytes());
        if self.book.mode == Mode::Overlay && !self.book.opaque_dirs.contains(parent) {
            const CREATE: OFlags = OFlags::WRONLY
                .union(OFlags::CREATE)
                .union(OFlags::EXCL)
                .union(OFlags::NOFOLLOW)
                .union(OFlags::CLOEXEC);
            let fd = rustix::fs::openat(&*dir, victim, CREATE, FileMode::from_raw_mode(0o644))
                .map_err(|e| Problem::io("create whiteout", e))?;
            rustix::fs::fsetxattr(&fd, XATTR_WHITEOUT, b"", XattrFlags::empty()).map_err(|e| {
                Problem::io(
                    "set overlay xattr (does the filesystem support user xattrs?)",
                    e,
                )
            })?;
            if self.book.xwhiteout_dirs.insert(parent.to_vec()) {
                self.book.mark(dir.as_fd(), HAS_XWHITEOUTS)?;
            }
        }
        self.book.record(path.as_bytes(), Written::Whiteout)
    }

    /// `parent/.wh..wh..opq`.
    fn opaque(&mut self, parent: &[u8]) -> Result<(), Problem> {
        let dir = self.target.dir(parent, &mut self.book)?;
        self.book.record(parent, Written::Dir)?;
        match self.book.mode {
            Mode::Flatten => self.hide_lower(dir.as_fd(), parent),
            Mode::Overlay => {
                self.book.mark(dir.as_fd(), OPAQUE)?;
                self.book.opaque_dirs.insert(parent.to_vec());
                if parent.is_empty() {
                    self.book.outcome.root_opaque = true;
                }
                // xwhiteouts already written here are redundant now, and overlayfs would
                // show them as files in a "y" directory.
                let skip = if parent.is_empty() {
                    0
                } else {
                    parent.len() + 1
                };
                let children: Vec<Vec<u8>> = self
                    .book
                    .written
                    .range(below(parent))
                    .filter(|(k, w)| **w == Written::Whiteout && !k[skip..].contains(&b'/'))
                    .map(|(k, _)| k[skip..].to_vec())
                    .collect();
                for name in children {
                    rustix::fs::unlinkat(&*dir, &name[..], AtFlags::empty())
                        .map_err(|e| Problem::io("remove whiteout", e))?;
                }
                Ok(())
            }
        }
    }

    /// Flatten mode, opaque directory: removes what lower layers put in `dir`, keeping what
    /// this layer wrote (and, in directories this layer wrote, recursing).
    fn hide_lower(&mut self, dir: BorrowedFd<'_>, path: &[u8]) -> Result<(), Problem> {
        let names = target::list_dir(dir).map_err(|e| Problem::io("list directory", e))?;
        for name in names {
            let name = name.as_bytes();
            let child = EntryPath::join(path, name);
            match self.book.written.get(child.as_bytes()) {
                None => {
                    target::remove_node(dir, name).map_err(|e| Problem::io("remove", e))?;
                    self.target.invalidate();
                    self.book.deferred.forget(child.as_bytes());
                }
                Some(Written::Dir) => {
                    let sub = self
                        .target
                        .existing_dir(child.as_bytes())
                        .map_err(|e| Problem::io("open directory", e))?;
                    self.hide_lower(sub.as_fd(), child.as_bytes())?;
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Gives a fresh target root what an implied directory gets: mode 0755, owned by image root
/// (a layer's `./` entry, if any, overrides both).
pub fn init_root(target: &Target, owners: &Owners) -> std::io::Result<()> {
    let fd = target::open_dir_for_metadata(target.root(), b"")?;
    rustix::fs::fchmod(&fd, FileMode::from_raw_mode(0o755))?;
    let owner = owners.map(0, 0);
    if let Some((u, g)) = owner.chown {
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(u)),
            Some(rustix::fs::Gid::from_raw(g)),
        )?;
    }
    if owner.record {
        // Best effort, like every record: a filesystem without user xattrs just lacks it.
        let _ = rustix::fs::fsetxattr(&fd, OWNER_XATTR, b"0:0", XattrFlags::empty());
    }
    Ok(())
}

/// An entry failed on its own terms, or the archive under it did.
enum Failure {
    Entry(Problem),
    Archive(TarError),
}

impl From<Problem> for Failure {
    fn from(p: Problem) -> Failure {
        Failure::Entry(p)
    }
}

/// Sets the entry's times on `name` in `dir` without following it (symlinks, fifos, devices:
/// entries that have no open descriptor of their own).
fn set_times_at(dir: &OwnedFd, name: &[u8], e: &TarEntry) -> Result<(), Problem> {
    rustix::fs::utimensat(
        dir,
        name,
        &target::timestamps(e.mtime, e.atime),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Problem::io("set times", e))
}
