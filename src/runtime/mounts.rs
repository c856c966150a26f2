//! Mount primitives that never let a path lead out of the container's root, and the user's
//! volumes and tmpfs mounts.
//!
//! A container image is hostile input: `/data` in it may be a symlink to `../../../../etc`, and a
//! string check on the path cannot know. So every path inside the container is resolved by the
//! kernel with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative to a descriptor of
//! the container's root — `..` and absolute symlinks stop at that root — and mounts are made
//! onto the resulting descriptor with `move_mount(MOVE_MOUNT_T_EMPTY_PATH)`, never onto a path
//! string that could be swapped in between. New filesystems are created detached with
//! `fsopen`/`fsmount` and bind mounts with `open_tree(OPEN_TREE_CLONE)`, so flags like
//! read-only are set before the mount becomes visible.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{CWD, Mode, OFlags, ResolveFlags};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags, fsconfig_create,
    fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount, open_tree,
};

use super::spec::MountSpec;
use super::sys;
use super::volume::{self, VolumeError};

/// A mount step that failed, naming what was mounted where.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("{what} {path}: {source}")]
    Path {
        what: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("mount {fstype}: {detail}")]
    Filesystem { fstype: String, detail: String },
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error("volume {target}: source {source_kind} and target {target_kind} differ in kind")]
    KindMismatch {
        target: String,
        source_kind: &'static str,
        target_kind: &'static str,
    },
}

fn path_err(what: &'static str, path: impl AsRef<str>) -> impl FnOnce(io::Error) -> MountError {
    let path = path.as_ref().to_string();
    move |source| MountError::Path { what, path, source }
}

type Result<T, E = MountError> = std::result::Result<T, E>;

/// Symlinks followed while creating a path before giving up (the kernel's own limit).
const MAX_SYMLINKS: u32 = 40;

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// The container's root directory, through which every container path is resolved.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens the directory at `path` (a host path, before `pivot_root`) as the root.
    pub fn open(path: &Path) -> Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| path_err("open rootfs", path.display().to_string())(e.into()))?;
        Ok(Root { fd })
    }

    /// The directory `fd` (an `O_PATH` descriptor opened while its path was still reachable)
    /// as the root.
    pub fn from_fd(fd: OwnedFd) -> Root {
        Root { fd }
    }

    /// Resolves an existing `path` inside the root to an `O_PATH` descriptor.
    pub fn resolve(&self, path: &str) -> io::Result<OwnedFd> {
        Ok(crate::runtime::sys::openat2(
            &self.fd,
            path,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            IN_ROOT,
        )?)
    }

    /// Resolves directory `path`, creating missing components (mode 0755) on the way; each
    /// component is created inside the directory the kernel resolved, never by string. A
    /// dangling symlink on the way has its target created instead (still inside the root), as
    /// Docker does for a volume whose mount point is a symlink in the image.
    pub fn mkdir_all(&self, path: &str) -> Result<OwnedFd> {
        self.mkdir_all_within(path, MAX_SYMLINKS)
    }

    fn mkdir_all_within(&self, path: &str, links_left: u32) -> Result<OwnedFd> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut dir = self.open_dir("/").map_err(path_err("open", "/"))?;
        for i in 0..parts.len() {
            let prefix = format!("/{}", parts[..=i].join("/"));
            dir = match self.open_dir(&prefix) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match rustix::fs::mkdirat(&dir, parts[i], Mode::from_raw_mode(0o755)) {
                        Ok(()) => {}
                        Err(rustix::io::Errno::EXIST) => {
                            // Something is there yet does not resolve: a dangling symlink.
                            let target = rustix::fs::readlinkat(&dir, parts[i], Vec::new())
                                .map_err(|e| path_err("create directory", &prefix)(e.into()))?;
                            if links_left == 0 {
                                return Err(path_err("create directory", &prefix)(
                                    io::Error::from_raw_os_error(libc::ELOOP),
                                ));
                            }
                            let target = target.to_string_lossy();
                            let base = if target.starts_with('/') {
                                String::new()
                            } else {
                                format!("/{}", parts[..i].join("/"))
                            };
                            let rest = parts[i + 1..].join("/");
                            return self.mkdir_all_within(
                                &format!("{base}/{target}/{rest}"),
                                links_left - 1,
                            );
                        }
                        Err(e) => return Err(path_err("create directory", &prefix)(e.into())),
                    }
                    self.open_dir(&prefix)
                        .map_err(path_err("create directory", &prefix))?
                }
                Err(e) => return Err(path_err("open directory", &prefix)(e)),
            };
        }
        Ok(dir)
    }

    /// Resolves file `path`, creating it empty (and its parent directories) when missing:
    /// something to bind a file over.
    pub fn touch(&self, path: &str) -> Result<OwnedFd> {
        match self.resolve(path) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(path_err("open", path)(e)),
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.mkdir_all(parent)?;
        }
        match crate::runtime::sys::openat2(
            &self.fd,
            path,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
            IN_ROOT,
        ) {
            Ok(_) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(path_err("create file", path)(e.into())),
        }
        self.resolve(path).map_err(path_err("create file", path))
    }

    /// Creates the symlink `path` → `target` (a directory inside the root must hold it).
    pub fn symlink(&self, target: &str, path: &str) -> Result<()> {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("/", path));
        let dir = self
            .open_dir(if parent.is_empty() { "/" } else { parent })
            .map_err(path_err("open directory", parent))?;
        match rustix::fs::symlinkat(target, &dir, name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
            Err(e) => Err(path_err("create symlink", path)(e.into())),
        }
    }

    fn open_dir(&self, path: &str) -> io::Result<OwnedFd> {
        Ok(crate::runtime::sys::openat2(
            &self.fd,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            IN_ROOT,
        )?)
    }
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A new, detached filesystem mount: `fstype` with `options` (`key=value`, or a bare flag
/// `key`) and mount attributes `attrs`.
pub fn new_filesystem(fstype: &str, options: &[&str], attrs: MountAttrFlags) -> Result<OwnedFd> {
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| MountError::Filesystem {
        fstype: fstype.into(),
        detail: e.to_string(),
    })?;
    let fail = |e: rustix::io::Errno, what: &str| MountError::Filesystem {
        fstype: fstype.into(),
        detail: format!("{what}: {e}{}", kernel_log(&fs)),
    };
    for opt in options {
        match opt.split_once('=') {
            Some((k, v)) => fsconfig_set_string(&fs, k, v).map_err(|e| fail(e, opt))?,
            None => fsconfig_set_flag(&fs, *opt).map_err(|e| fail(e, opt))?,
        }
    }
    fsconfig_create(&fs).map_err(|e| fail(e, "create"))?;
    fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(|e| fail(e, "fsmount"))
}

/// What the kernel logged about a failed `fsconfig` (e.g. "overlay: missing 'lowerdir'").
fn kernel_log(fs: &OwnedFd) -> String {
    let Ok(dup) = fs.try_clone() else {
        return String::new();
    };
    let mut file = std::fs::File::from(dup);
    let mut log = String::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = file.read(&mut buf) {
        if n == 0 {
            break;
        }
        log.push_str(" (");
        log.push_str(
            String::from_utf8_lossy(&buf[..n])
                .trim_start_matches("e ")
                .trim(),
        );
        log.push(')');
    }
    log
}

/// A detached copy of the mount tree at `path` (relative to `dir`, or `dir` itself when empty):
/// the source of a bind mount.
pub fn clone_tree(dir: BorrowedFd<'_>, path: &str) -> io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_RECURSIVE;
    if path.is_empty() {
        flags |= OpenTreeFlags::AT_EMPTY_PATH;
    }
    Ok(open_tree(dir, path, flags)?)
}

/// A detached copy of the host path `path` (resolved in the current mount namespace), with
/// every mount below it.
pub fn clone_host_tree(path: &Path) -> io::Result<OwnedFd> {
    clone_host_tree_with(path, true)
}

/// [`clone_host_tree`], or only the mount at `path` itself when not `recursive` (a `bind`
/// rather than an `rbind`: the mounts below the source stay out of the container).
pub fn clone_host_tree_with(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    Ok(open_tree(CWD, path, flags)?)
}

/// Makes a detached tree (and every mount in it) read-only.
pub fn make_read_only(tree: &OwnedFd) -> io::Result<()> {
    sys::set_mount_attrs(tree.as_fd(), libc::MOUNT_ATTR_RDONLY, None, true)
}

/// Mounts the detached `tree` on the directory or file `target` (a resolved descriptor).
pub fn attach(tree: &OwnedFd, target: &OwnedFd) -> io::Result<()> {
    Ok(move_mount(
        tree,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?)
}

/// Whether a descriptor is a directory.
fn is_dir(fd: &OwnedFd) -> io::Result<bool> {
    Ok(rustix::fs::fstat(fd)?.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Mounts the user's volumes and tmpfs mounts, in order. `trees[i]` is the detached source of
/// the i-th bind mount (made on the host side by root, or here from the path when rootless).
pub fn mount_user(root: &Root, mounts: &[MountSpec], trees: Vec<Option<OwnedFd>>) -> Result<()> {
    for (spec, tree) in mounts
        .iter()
        .zip(trees.into_iter().chain(std::iter::repeat_with(|| None)))
    {
        match spec {
            MountSpec::Bind {
                source,
                target,
                read_only,
                ..
            }
            | MountSpec::Volume {
                source,
                target,
                read_only,
                ..
            } => {
                let tree = match tree {
                    Some(t) => t,
                    None => clone_host_tree(source)
                        .map_err(path_err("volume source", source.display().to_string()))?,
                };
                let dir = is_dir(&tree)
                    .map_err(path_err("volume source", source.display().to_string()))?;
                let target_fd = if dir {
                    root.mkdir_all(target)?
                } else {
                    root.touch(target)?
                };
                let target_dir = is_dir(&target_fd).map_err(path_err("volume target", target))?;
                if dir != target_dir {
                    let kind = |d| if d { "a directory" } else { "a file" };
                    return Err(MountError::KindMismatch {
                        target: target.clone(),
                        source_kind: kind(dir),
                        target_kind: kind(target_dir),
                    });
                }
                if let MountSpec::Volume {
                    populate: true,
                    target,
                    ..
                } = spec
                {
                    // What the image has at the mount point, resolved inside the root (so the
                    // path cannot lead out), before the volume covers it.
                    volume::populate(&target_fd, &tree, target)?;
                }
                // A set-uid file or a device node written into a volume is never honoured.
                let mut attrs = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
                if *read_only {
                    attrs |= libc::MOUNT_ATTR_RDONLY;
                }
                sys::set_mount_attrs(tree.as_fd(), attrs, None, true)
                    .map_err(path_err("mount options of volume", target))?;
                attach(&tree, &target_fd).map_err(path_err("mount volume on", target))?;
            }
            MountSpec::Tmpfs { target, size, mode } => {
                let size = size.map(|s| format!("size={s}"));
                let mode = format!("mode={:o}", mode.unwrap_or(0o1777));
                let mut opts = vec![mode.as_str()];
                opts.extend(size.as_deref());
                let tree = new_filesystem(
                    "tmpfs",
                    &opts,
                    MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
                )?;
                let target_fd = root.mkdir_all(target)?;
                attach(&tree, &target_fd).map_err(path_err("mount tmpfs on", target))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A root directory inside a parent that also holds a directory named like the escape
    /// targets, so an escape would be visible.
    fn sandbox() -> (tempfile::TempDir, Root, std::path::PathBuf) {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let r = Root::open(&root).unwrap();
        (parent, r, root)
    }

    #[test]
    fn mkdir_all_creates_nested_directories() {
        let (_p, r, root) = sandbox();
        r.mkdir_all("/a/b/c").unwrap();
        assert!(root.join("a/b/c").is_dir());
        r.mkdir_all("/a/b/c").unwrap();
    }

    #[test]
    fn dangling_symlinks_are_created_inside_the_root() {
        let (parent, r, root) = sandbox();
        symlink("../../../../outside", root.join("rel")).unwrap();
        symlink("/outside-abs", root.join("abs")).unwrap();
        r.mkdir_all("/rel/x").unwrap();
        r.mkdir_all("/abs/y").unwrap();
        assert!(root.join("outside/x").is_dir());
        assert!(root.join("outside-abs/y").is_dir());
        assert!(!parent.path().join("outside").exists());
        assert!(!Path::new("/outside-abs").exists());
        // A file through a symlinked parent lands inside too.
        symlink("/etc", root.join("etc-link")).unwrap();
        r.touch("/etc-link/hosts").unwrap();
        assert!(root.join("etc/hosts").is_file());
    }

    #[test]
    fn symlink_loops_end() {
        let (_p, r, root) = sandbox();
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        let err = r.mkdir_all("/a/x").unwrap_err();
        assert!(err.to_string().contains("/a"), "{err}");
    }

    #[test]
    fn resolve_never_leaves_the_root() {
        let (_p, r, root) = sandbox();
        symlink("../../../..", root.join("up")).unwrap();
        let fd = r.resolve("/up/etc").unwrap();
        let inside = std::fs::metadata(root.join("etc")).unwrap();
        let got = rustix::fs::fstat(&fd).unwrap();
        assert_eq!(got.st_ino, std::os::unix::fs::MetadataExt::ino(&inside));
    }
}
