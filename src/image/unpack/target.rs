//! The directory being written, reached only through file descriptors.
//!
//! Every path an entry names is resolved relative to an `O_PATH` descriptor of the target root
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
//! RESOLVE_NO_XDEV)`: the kernel, not a string check, guarantees the walk never leaves the
//! target, never follows a symlink (not even one pointing inside) and never crosses a mount.
//! Files are then created relative to the parent's descriptor with `O_NOFOLLOW | O_EXCL`, so
//! the final component is never followed either. When a component on the way is not a
//! directory, the caller's [`Walk`] decides whether that is an attack (an error) or a lower
//! layer's file that this layer replaces by a directory (as overlayfs would show it).
//!
//! Directories get their final mode and times only at the end ([`Deferred`]): writing into a
//! directory changes its mtime, and an unprivileged extractor could not write into a
//! directory the image makes read-only.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, openat, openat2,
};
use rustix::io::Errno;

use super::Problem;
use super::entry::below;
use super::tar::Time;

/// Resolution flags for every lookup below the root.
pub const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

const DIR_PATH: OFlags = OFlags::PATH
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

const DIR_READ: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Decisions the walk to a parent directory leaves to the layer logic.
pub trait Walk {
    /// The missing directory `path` was created (mode 0755, owned by the extractor).
    fn created(&mut self, path: &[u8], dir: BorrowedFd<'_>) -> Result<(), Problem>;
    /// `path` exists as a `kind`, not a directory. `Ok` replaces it by a directory; an error
    /// aborts the entry.
    fn blocked(&mut self, path: &[u8], kind: FileType) -> Result<(), Problem>;
}

/// The open target directory.
pub struct Target {
    root: Rc<OwnedFd>,
    /// The last parent resolved: entries come grouped by directory, so most lookups hit it.
    last: Option<(Vec<u8>, Rc<OwnedFd>)>,
}

impl Target {
    /// Opens `path` (an existing directory) as the target root.
    pub fn open(path: &Path) -> io::Result<Target> {
        let root = openat(rustix::fs::CWD, path, DIR_PATH, Mode::empty())?;
        Ok(Target {
            root: Rc::new(root),
            last: None,
        })
    }

    /// The root's `O_PATH` descriptor.
    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Forgets the cached parent: called after anything is removed, since the cached
    /// descriptor could then point at a directory no longer in the tree.
    pub fn invalidate(&mut self) {
        self.last = None;
    }

    /// Opens the directory `dir` (a validated entry path), creating what is missing; see
    /// [`Walk`] for components that exist but are not directories.
    pub fn dir(&mut self, dir: &[u8], walk: &mut dyn Walk) -> Result<Rc<OwnedFd>, Problem> {
        if dir.is_empty() {
            return Ok(self.root.clone());
        }
        if let Some((p, fd)) = &self.last
            && p == dir
        {
            return Ok(fd.clone());
        }
        let fd = match openat2(&*self.root, dir, DIR_PATH, Mode::empty(), RESOLVE) {
            Ok(fd) => Rc::new(fd),
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::AGAIN) => {
                self.walk(dir, walk)?
            }
            Err(e) => return Err(Problem::io("open directory", e)),
        };
        self.last = Some((dir.to_vec(), fd.clone()));
        Ok(fd)
    }

    /// Opens an existing directory without creating or replacing anything (hard-link targets).
    pub fn existing_dir(&self, dir: &[u8]) -> Result<Rc<OwnedFd>, Errno> {
        if dir.is_empty() {
            return Ok(self.root.clone());
        }
        Ok(Rc::new(openat2(
            &*self.root,
            dir,
            DIR_PATH,
            Mode::empty(),
            RESOLVE,
        )?))
    }

    fn walk(&mut self, dir: &[u8], walk: &mut dyn Walk) -> Result<Rc<OwnedFd>, Problem> {
        let mut fd = self.root.clone();
        let mut end = 0;
        for component in dir.split(|&b| b == b'/') {
            end += component.len();
            let prefix = &dir[..end];
            end += 1;
            let next = match openat2(&*fd, component, DIR_PATH, Mode::empty(), RESOLVE) {
                Ok(next) => next,
                Err(Errno::NOENT) => self.make_dir(&fd, component, prefix, walk)?,
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    let kind = rustix::fs::statat(&*fd, component, AtFlags::SYMLINK_NOFOLLOW)
                        .map(|st| FileType::from_raw_mode(st.st_mode))
                        .map_err(|e| Problem::io("inspect", e))?;
                    walk.blocked(prefix, kind)?;
                    remove_node(fd.as_fd(), component).map_err(|e| Problem::io("remove", e))?;
                    self.invalidate();
                    self.make_dir(&fd, component, prefix, walk)?
                }
                Err(e) => return Err(Problem::io("open directory", e)),
            };
            fd = Rc::new(next);
        }
        Ok(fd)
    }

    fn make_dir(
        &self,
        parent: &OwnedFd,
        name: &[u8],
        path: &[u8],
        walk: &mut dyn Walk,
    ) -> Result<OwnedFd, Problem> {
        match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(Problem::io("create directory", e)),
        }
        let fd = openat2(parent, name, DIR_PATH, Mode::empty(), RESOLVE)
            .map_err(|e| Problem::io("open directory", e))?;
        walk.created(path, fd.as_fd())?;
        Ok(fd)
    }
}

/// Opens `name` in `parent` as a readable directory (for fchmod/fsetxattr/futimens), without
/// following a symlink.
pub fn open_dir_for_metadata(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    let name: &[u8] = if name.is_empty() { b"." } else { name };
    Ok(openat(parent, name, DIR_READ, Mode::empty())?)
}

/// Removes `name` from `parent`, whatever it is (a directory with all its content). Symlinks
/// are removed, never followed.
pub fn remove_node(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => remove_tree(parent, name),
        Err(e) => Err(e.into()),
    }
}

/// Removes the directory `name` in `parent` and everything below it, descriptor by descriptor
/// (no path is ever re-resolved, no symlink followed). Directories the owner made read-only are
/// made writable first, so an unprivileged user can remove what it extracted.
pub fn remove_tree(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let dir = match openat(parent, name, DIR_READ, Mode::empty()) {
        Ok(dir) => dir,
        Err(Errno::ACCESS) => {
            // Known to be a directory (O_NOFOLLOW|O_DIRECTORY did not fail with ELOOP/ENOTDIR).
            rustix::fs::chmodat(parent, name, Mode::from_raw_mode(0o700), AtFlags::empty())?;
            openat(parent, name, DIR_READ, Mode::empty())?
        }
        Err(Errno::NOTDIR | Errno::LOOP) => {
            return match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    clear_dir(dir.as_fd())?;
    match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes everything inside the open directory `dir`, keeping `dir` itself.
pub fn clear_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    let st = rustix::fs::fstat(dir)?;
    if st.st_mode & 0o700 != 0o700 {
        let _ = rustix::fs::fchmod(dir, Mode::from_raw_mode(0o700));
    }
    for name in list_dir(dir)? {
        match rustix::fs::unlinkat(dir, name.as_c_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(Errno::ISDIR) => remove_tree(dir, name.as_bytes())?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The names in an open directory, `.` and `..` left out. Read whole before anything is removed.
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let fd = openat(dir, c".", DIR_READ, Mode::empty())?;
    let mut names = Vec::new();
    for entry in Dir::new(fd)? {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Timestamps for `utimensat`/`futimens`: atime (defaults to mtime) and mtime.
pub fn timestamps(mtime: Time, atime: Option<Time>) -> Timestamps {
    let ts = |t: Time| Timespec {
        tv_sec: t.sec,
        tv_nsec: t.nsec.into(),
    };
    Timestamps {
        last_access: ts(atime.unwrap_or(mtime)),
        last_modification: ts(mtime),
    }
}

/// A directory's final mode and times, applied after everything inside it is written.
#[derive(Debug, Clone, Copy)]
pub struct DirMeta {
    pub mode: u32,
    pub mtime: Time,
    pub atime: Option<Time>,
}

/// Directory metadata waiting for the end of the extraction, by path.
#[derive(Debug, Default)]
pub struct Deferred {
    dirs: BTreeMap<Vec<u8>, DirMeta>,
    bytes: usize,
}

impl Deferred {
    /// Records (or replaces) the metadata of directory `path`.
    pub fn set(&mut self, path: &[u8], meta: DirMeta) {
        if self.dirs.insert(path.to_vec(), meta).is_none() {
            self.bytes += path.len() + 64;
        }
    }

    /// Memory held, for the name-budget check.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Forgets `path` and everything below it (they were removed).
    pub fn forget(&mut self, path: &[u8]) {
        if self.dirs.remove(path).is_some() {
            self.bytes -= path.len() + 64;
        }
        let doomed: Vec<Vec<u8>> = self
            .dirs
            .range(below(path))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.bytes -= k.len() + 64;
            self.dirs.remove(&k);
        }
    }

    /// Applies every recorded mode and time, deepest directories first (a parent's mode could
    /// otherwise forbid reaching its children). Directories no longer there are skipped.
    pub fn apply(self, target: &Target) -> Result<(), (Vec<u8>, io::Error)> {
        for (path, meta) in self.dirs.into_iter().rev() {
            let fd = if path.is_empty() {
                openat(target.root(), c".", DIR_READ, Mode::empty())
            } else {
                openat2(target.root(), &path[..], DIR_READ, Mode::empty(), RESOLVE)
            };
            let fd = match fd {
                Ok(fd) => fd,
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err((path, e.into())),
            };
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(meta.mode))
                .and_then(|()| rustix::fs::futimens(&fd, &timestamps(meta.mtime, meta.atime)))
                .map_err(|e| (path.clone(), e.into()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    struct Record(Vec<Vec<u8>>, bool);
    impl Walk for Record {
        fn created(&mut self, path: &[u8], _dir: BorrowedFd<'_>) -> Result<(), Problem> {
            self.0.push(path.to_vec());
            Ok(())
        }
        fn blocked(&mut self, _path: &[u8], _kind: FileType) -> Result<(), Problem> {
            if self.1 {
                Ok(())
            } else {
                Err(Problem::ThroughSymlink(crate::image::unpack::EntryName(
                    b"x".to_vec(),
                )))
            }
        }
    }

    #[test]
    fn walk_creates_missing_dirs_and_never_follows_symlinks() {
        let world = tempfile::tempdir().unwrap();
        let root = world.path().join("root");
        fs::create_dir(&root).unwrap();
        symlink(world.path(), root.join("out")).unwrap();
        let mut t = Target::open(&root).unwrap();
        let mut rec = Record(Vec::new(), false);
        t.dir(b"a/b", &mut rec).unwrap();
        assert_eq!(rec.0, vec![b"a".to_vec(), b"a/b".to_vec()]);
        assert!(root.join("a/b").is_dir());
        // A symlink on the way is refused when the layer logic says so...
        assert!(t.dir(b"out/x", &mut rec).is_err());
        assert!(!world.path().join("x").exists());
        // ...or replaced by a real directory, never followed.
        let mut replace = Record(Vec::new(), true);
        t.dir(b"out/x", &mut replace).unwrap();
        assert!(root.join("out/x").is_dir());
        assert!(!fs::symlink_metadata(root.join("out")).unwrap().is_symlink());
        assert!(!world.path().join("x").exists());
    }

    #[test]
    fn remove_tree_handles_read_only_dirs_and_symlinks() {
        let world = tempfile::tempdir().unwrap();
        let root = world.path().join("root");
        fs::create_dir_all(root.join("t/ro/deep")).unwrap();
        fs::write(root.join("t/ro/deep/f"), b"x").unwrap();
        fs::write(world.path().join("canary"), b"keep").unwrap();
        symlink(world.path(), root.join("t/link")).unwrap();
        fs::set_permissions(root.join("t/ro"), fs::Permissions::from_mode(0o555)).unwrap();
        let t = Target::open(&root).unwrap();
        remove_node(t.root(), b"t").unwrap();
        assert!(!root.join("t").exists());
        assert_eq!(fs::read(world.path().join("canary")).unwrap(), b"keep");
    }

    #[test]
    fn deferred_metadata_is_applied_children_first_and_forgotten_on_removal() {
        let world = tempfile::tempdir().unwrap();
        let root = world.path().join("root");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(root.join("c")).unwrap();
        let t = Target::open(&root).unwrap();
        let meta = |mode| DirMeta {
            mode,
            mtime: Time { sec: 1000, nsec: 0 },
            atime: None,
        };
        let mut d = Deferred::default();
        d.set(b"a", meta(0o500));
        d.set(b"a/b", meta(0o750));
        d.set(b"c", meta(0o700));
        d.set(b"c/gone", meta(0o700));
        d.forget(b"c");
        let mode = |p: &str| fs::metadata(root.join(p)).unwrap().permissions().mode() & 0o7777;
        let c_before = mode("c");
        d.apply(&t).unwrap();
        assert_eq!(mode("a"), 0o500);
        assert_eq!(mode("a/b"), 0o750);
        assert_eq!(mode("c"), c_before);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(root.join("a/b")).unwrap().mtime(), 1000);
        fs::set_permissions(root.join("a"), fs::Permissions::from_mode(0o755)).unwrap();
    }
}
