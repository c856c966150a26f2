//! `rsafe cp`: files between the host and a container, in both directions, as a tar
//! stream between rsafe (host side, the caller's credentials) and a helper process inside the
//! container (its user and mount namespaces, chrooted to its root, as its root user: what it
//! writes belongs to the container's root, mapped, never to the host's).
//!
//! A stopped container has no namespaces to join: the helper makes a user namespace with the
//! container's id map and a private mount namespace, mounts the container's overlay there (its
//! image layers under its writable layer, as the container's own init mounts it) and chroots
//! into it, holding the container's lock so that it cannot start meanwhile. The mount goes with
//! the helper; nothing is mounted where anything else sees it. A lower layer owned by an id the
//! container does not map (a root-owned rootfs directory, which a running container of root's
//! gets id-mapped) reads as `nobody`'s and cannot be written into when stopped.
//!
//! Neither side follows a symlink out: in the container, paths are resolved with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` from its root (a planted `/etc/x ->
//! /etc/shadow` or `../../..` means the container's own file, `/proc/self/root` is refused), on
//! the host, under the destination with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (an archive
//! entry cannot lead the write anywhere else). The helper is not dumpable: the container's
//! processes, the same user, cannot ptrace it. Set-uid and set-gid bits are dropped on the
//! host (a container's set-uid file would become root's). Paths follow docker's rules: SRC a file or a
//! directory (the directory itself, or its contents with a trailing `/.`), DEST an existing
//! directory to copy into or a new name.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::unistd::ForkResult;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::enter::{self, EnterError};
use super::helper;
use super::mounts;
use super::rootfs::{self, OverlayDirs};
use super::state::{self, ContainerDir, State, StateError};
use super::sys;

/// What can go wrong copying.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Enter(#[from] EnterError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{0}")]
    Invalid(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> CopyError {
    let what = what.into();
    move |source| CopyError::Io { what, source }
}

/// The name every archive's top entry has on the wire; the receiver renames it.
const TOP: &str = "item";

/// How the receiving side names what it gets: DEST itself, or DEST/NAME when DEST is an
/// existing directory; with a `/.` source, the contents go into DEST.
#[derive(Debug, Clone)]
struct Placement {
    dest: String,
    src_name: String,
    contents: bool,
}

/// Copies `src` (a path in the container) to `dest` on the host.
pub fn copy_out(
    (dir, state): (&ContainerDir, &State),
    name: &str,
    src: &str,
    dest: &Path,
) -> Result<(), CopyError> {
    let (src, contents) = split_contents(src);
    let placement = Placement {
        dest: dest.display().to_string(),
        src_name: base_name(&src),
        contents,
    };
    let (host_dir, top) = host_target(dest, &placement)?;
    let src_c = src.clone();
    in_container(
        (dir, state),
        name,
        move |pipe: Sender| {
            let root = open_root()?;
            send(root.as_fd(), &src_c, pipe.0, RESOLVE_CONTAINER)
        },
        |from_helper: Receiver| {
            let from_helper = from_helper.0;
            let dir = rustix::fs::open(
                &host_dir,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err(host_dir.display().to_string())(e.into()))?;
            receive(dir.as_fd(), &top, from_helper, RESOLVE_HOST)
        },
    )
}

/// Copies `src` on the host to `dest` (a path in the container).
pub fn copy_in(
    (dir, state): (&ContainerDir, &State),
    name: &str,
    src: &Path,
    dest: &str,
) -> Result<(), CopyError> {
    let src_text = src.display().to_string();
    let (src_path, contents) = split_contents(&src_text);
    let placement = Placement {
        dest: dest.to_string(),
        src_name: base_name(&src_path),
        contents,
    };
    let src_path = PathBuf::from(src_path);
    let parent = src_path.parent().map_or_else(
        || PathBuf::from("."),
        |p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        },
    );
    let file_name = src_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    in_container(
        (dir, state),
        name,
        move |from_host: Receiver| {
            let from_host = from_host.0;
            let root = open_root()?;
            let (dir, top) = container_target(root.as_fd(), &placement)?;
            let dir = open_dir(root.as_fd(), &dir, RESOLVE_CONTAINER)?;
            receive(dir.as_fd(), &top, from_host, RESOLVE_CONTAINER)
        },
        |to_helper: Sender| {
            let to_helper = to_helper.0;
            let dir = rustix::fs::open(
                &parent,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err(parent.display().to_string())(e.into()))?;
            send(dir.as_fd(), &file_name, to_helper, ResolveFlags::BENEATH)
        },
    )
}

/// In the container: resolved in its root, no magic link (`/proc/self/root`, `/proc/1/fd/…`).
const RESOLVE_CONTAINER: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
/// Writing on the host: beneath the destination, no symlink at all.
const RESOLVE_HOST: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS);

/// `dir/.` → (`dir`, copy its contents).
fn split_contents(path: &str) -> (String, bool) {
    match path.strip_suffix("/.") {
        Some("") => ("/".into(), true),
        Some(dir) => (dir.to_string(), true),
        None => (path.trim_end_matches('/').to_string(), false),
    }
}

fn base_name(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name {
        "" | "." | ".." => String::new(),
        n => n.to_string(),
    }
}

/// On the host: the directory to write in and the name of the copy, by docker's rules.
fn host_target(dest: &Path, p: &Placement) -> Result<(PathBuf, String), CopyError> {
    let is_dir = dest.is_dir() && !dest.is_symlink();
    if is_dir && !p.contents && !p.src_name.is_empty() {
        return Ok((dest.to_path_buf(), p.src_name.clone()));
    }
    if is_dir && p.contents {
        return Ok((dest.to_path_buf(), String::new()));
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CopyError::Invalid(format!("{}: not a file name", p.dest)))?;
    if !parent.is_dir() {
        return Err(CopyError::Invalid(format!(
            "{}: its directory does not exist",
            p.dest
        )));
    }
    Ok((parent.to_path_buf(), name))
}

/// In the container: the same, `root` being its root.
fn container_target(root: BorrowedFd<'_>, p: &Placement) -> Result<(String, String), CopyError> {
    let dest = p.dest.trim_end_matches('/');
    let dest = if dest.is_empty() { "/" } else { dest };
    let is_dir = open_dir(root, dest, RESOLVE_CONTAINER).is_ok();
    if is_dir && p.contents {
        return Ok((dest.to_string(), String::new()));
    }
    if is_dir && !p.src_name.is_empty() {
        return Ok((dest.to_string(), p.src_name.clone()));
    }
    let (parent, name) = dest.rsplit_once('/').unwrap_or((".", dest));
    let parent = if parent.is_empty() { "/" } else { parent };
    if name.is_empty() || name == "." || name == ".." {
        return Err(CopyError::Invalid(format!("{}: not a file name", p.dest)));
    }
    Ok((parent.to_string(), name.to_string()))
}

fn open_root() -> Result<OwnedFd, CopyError> {
    rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("/")(e.into()))
}

fn open_dir(dir: BorrowedFd<'_>, path: &str, resolve: ResolveFlags) -> Result<OwnedFd, CopyError> {
    let path = if path.is_empty() { "." } else { path };
    crate::runtime::sys::openat2(
        dir,
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        resolve,
    )
    .map_err(|e| io_err(path.to_string())(e.into()))
}

/// Writes a tar of `path` (under `dir`; a symlink is sent as a symlink) to `out`, its top entry
/// named [`TOP`].
fn send(
    dir: BorrowedFd<'_>,
    path: &str,
    out: impl Write,
    resolve: ResolveFlags,
) -> Result<(), CopyError> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    add(&mut tar, dir, path, Path::new(TOP), resolve, 0)?;
    tar.into_inner().map_err(io_err("write the archive"))?;
    Ok(())
}

/// Appends `path` (under `dir`) to `tar` as `name`: a directory with everything below it, a
/// regular file, or a symlink as a symlink; other kinds are left out.
fn add<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    path: &str,
    name: &Path,
    resolve: ResolveFlags,
    depth: u32,
) -> Result<(), CopyError> {
    if depth > 256 {
        return Err(CopyError::Invalid(format!("{path}: nested too deep")));
    }
    let fd = crate::runtime::sys::openat2(
        dir,
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        resolve,
    )
    .map_err(|e| io_err(path.to_string())(e.into()))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| io_err(path.to_string())(e.into()))?;
    let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    let failed = io_err(format!("{path}: add to the archive"));
    match kind {
        rustix::fs::FileType::Directory => {
            h.set_entry_type(tar::EntryType::Directory);
            tar.append_data(&mut h, name, io::empty()).map_err(failed)?;
            add_children(tar, &fd, path, name, depth)?;
        }
        rustix::fs::FileType::RegularFile => {
            let (file, size) = reopen_file(dir, path, resolve, &st)?;
            h.set_size(size);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, name, std::fs::File::from(file))
                .map_err(failed)?;
        }
        rustix::fs::FileType::Symlink => {
            let target = rustix::fs::readlinkat(&fd, "", Vec::new())
                .map_err(|e| io_err(path.to_string())(e.into()))?;
            h.set_entry_type(tar::EntryType::Symlink);
            tar.append_link(&mut h, name, target.to_string_lossy().as_ref())
                .map_err(failed)?;
        }
        _ => {} // devices, fifos, sockets: not copied, as a file's content cannot be had
    }
    Ok(())
}

/// Appends the entries of directory `fd` (an `O_PATH` descriptor of `path`) in name order,
/// each below `name` and resolved beneath the directory without following symlinks.
fn add_children<W: Write>(
    tar: &mut tar::Builder<W>,
    fd: &OwnedFd,
    path: &str,
    name: &Path,
    depth: u32,
) -> Result<(), CopyError> {
    let dirfd = rustix::fs::openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(path.to_string())(e.into()))?;
    let mut names: Vec<String> = rustix::fs::Dir::read_from(&dirfd)
        .map_err(|e| io_err(path.to_string())(e.into()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    for child in names {
        add(
            tar,
            dirfd.as_fd(),
            &child,
            &name.join(&child),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
            depth + 1,
        )?;
    }
    Ok(())
}

/// The regular file at `path`, opened again for reading by the same path and rules, and
/// checked to be the file `st` described (an O_PATH descriptor is reopened only through
/// /proc, which is the container's here); with its size now.
fn reopen_file(
    dir: BorrowedFd<'_>,
    path: &str,
    resolve: ResolveFlags,
    st: &rustix::fs::Stat,
) -> Result<(OwnedFd, u64), CopyError> {
    let file = crate::runtime::sys::openat2(
        dir,
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
        resolve,
    )
    .map_err(|e| io_err(path.to_string())(e.into()))?;
    let again = rustix::fs::fstat(&file).map_err(|e| io_err(path.to_string())(e.into()))?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
        return Err(CopyError::Invalid(format!(
            "{path}: changed while being copied"
        )));
    }
    Ok((file, again.st_size as u64))
}

/// Writes the archive from `input` under `dir`: its top entry as `top` (the entry's contents
/// straight into `dir` when `top` is empty), resolved with `resolve`.
fn receive(
    dir: BorrowedFd<'_>,
    top: &str,
    input: impl Read,
    resolve: ResolveFlags,
) -> Result<(), CopyError> {
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(io_err("read the archive"))? {
        let mut entry = entry.map_err(io_err("read the archive"))?;
        let name = entry
            .path()
            .map_err(io_err("read the archive"))?
            .into_owned();
        let rel = name.strip_prefix(TOP).map_err(|_| {
            CopyError::Invalid(format!("unexpected archive entry {}", name.display()))
        })?;
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(CopyError::Invalid(format!(
                "unexpected archive entry {}",
                name.display()
            )));
        }
        // `join("")` would add a slash: the top entry is `top` itself.
        let target = match rel.as_os_str().is_empty() {
            true => top.to_string(),
            false => Path::new(top).join(rel).to_string_lossy().into_owned(),
        };
        let kind = entry.header().entry_type();
        let mut mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        if resolve.contains(ResolveFlags::NO_SYMLINKS) {
            // On the host: a container's set-uid file must not become the caller's (root's).
            mode &= !0o6000;
        }
        if target.is_empty() {
            continue; // the top directory itself, its contents going into `dir`
        }
        let (parent, leaf) = match target.rsplit_once('/') {
            Some((p, l)) => (open_dir(dir, p, resolve)?, l.to_string()),
            None => (open_dir(dir, ".", resolve)?, target.clone()),
        };
        match kind {
            tar::EntryType::Directory => {
                match rustix::fs::mkdirat(&parent, leaf.as_str(), Mode::from_raw_mode(mode)) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::EXIST) => {
                        open_dir(
                            parent.as_fd(),
                            &leaf,
                            resolve.union(ResolveFlags::NO_SYMLINKS),
                        )?;
                    }
                    Err(e) => return Err(io_err(target)(e.into())),
                }
            }
            tar::EntryType::Regular => {
                let fd = crate::runtime::sys::openat2(
                    &parent,
                    leaf.as_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::TRUNC
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(mode),
                    resolve.union(ResolveFlags::NO_SYMLINKS),
                )
                .map_err(|e| io_err(target.clone())(e.into()))?;
                let mut file = std::fs::File::from(fd);
                io::copy(&mut entry, &mut file).map_err(io_err(target.clone()))?;
                rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))
                    .map_err(|e| io_err(target)(e.into()))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(io_err("read the archive"))?
                    .unwrap_or_default()
                    .into_owned();
                let _ = rustix::fs::unlinkat(&parent, leaf.as_str(), rustix::fs::AtFlags::empty());
                rustix::fs::symlinkat(link.as_path(), &parent, leaf.as_str())
                    .map_err(|e| io_err(target)(e.into()))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs `inside` in a helper in the container `state` (joined if it runs, its root mounted
/// privately if not; as its root user) and `outside` here, connected by a pipe (`inside`
/// writes when it is given the write end: copying out, `Out`; reads otherwise).
fn in_container<I, O, P, Q>(
    (dir, state): (&ContainerDir, &State),
    name: &str,
    inside: I,
    outside: O,
) -> Result<(), CopyError>
where
    I: FnOnce(P) -> Result<(), CopyError>,
    O: FnOnce(Q) -> Result<(), CopyError>,
    P: PipeEnd,
    Q: PipeEnd,
{
    if state.is_alive() {
        let target = enter::open_target(state, name)?;
        return with_helper(move || join(state, target), |_| Ok(()), inside, outside);
    }
    // Not started meanwhile: `start` takes the same lock.
    let _lock = dir.lock(name)?;
    settle(dir, state, name)?;
    let stopped = Stopped::open(dir, state)?;
    let (ready_read, ready_write) = pipe()?;
    let (go_read, go_write) = pipe()?;
    let copied = with_helper(
        move || stopped.enter(ready_write, go_read),
        |child| {
            helper::map_child(&state.idmap, child.as_raw(), ready_read, go_write)
                .map_err(|e| CopyError::Invalid(format!("cannot enter the container: {e}")))
        },
        inside,
        outside,
    );
    // What was written is flushed now, as a stopped container's layer is (its mount was
    // volatile, as the container's own).
    dir.settle_volatile_layer()
        .map_err(io_err(format!("sync the writable layer of {name}")))?;
    copied
}

fn pipe() -> Result<(OwnedFd, OwnedFd), CopyError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io_err("pipe")(e.into()))
}

/// A stopped container's writable layer left unsynced by a killed run: flushed if the host has
/// not restarted since, refused otherwise (as `start` does).
fn settle(dir: &ContainerDir, st: &State, name: &str) -> Result<(), CopyError> {
    if !dir.has_volatile_marker() {
        return Ok(());
    }
    if st.boot_id.is_none() || st.boot_id != state::boot_id() {
        return Err(CopyError::Invalid(format!(
            "container {name} was cut off and the host restarted since: its writable layer was never synced and cannot be trusted"
        )));
    }
    dir.settle_volatile_layer()
        .map_err(io_err(format!("sync the writable layer of {name}")))?;
    Ok(())
}

/// Where a stopped container's root is made from.
struct Stopped {
    dir: PathBuf,
    rootfs: PathBuf,
    lowers: Lowers,
    upper: PathBuf,
    work: PathBuf,
}

/// The image's layers as the helper gets them. Root's layers are shifted into the container's
/// range under a `layers/` only root may search: the helper, root of the container's user
/// namespace (a host id of that range), could not reach them, so rsafe clones each as a
/// read-only detached tree the helper attaches (as the container's init is given them). A
/// rootless caller owns its layers; the helper opens them itself.
enum Lowers {
    Paths(Vec<PathBuf>),
    Trees(Vec<OwnedFd>),
}

impl Lowers {
    fn new(layers: &[PathBuf]) -> Result<Lowers, CopyError> {
        if !rustix::process::geteuid().is_root() {
            return Ok(Lowers::Paths(layers.to_vec()));
        }
        let tree = |p: &PathBuf| {
            let fail = || {
                io_err(format!(
                    "cannot mount the stopped container: {}",
                    p.display()
                ))
            };
            let tree = mounts::clone_host_tree(p).map_err(fail())?;
            mounts::make_read_only(&tree).map_err(fail())?;
            Ok(tree)
        };
        Ok(Lowers::Trees(
            layers.iter().map(tree).collect::<Result<_, CopyError>>()?,
        ))
    }

    /// The mount points the scratch tmpfs needs for them, beside `rootfs`.
    fn mount_points(&self) -> Vec<String> {
        match self {
            Lowers::Paths(_) => vec![],
            Lowers::Trees(t) => std::iter::once("lower".to_string())
                .chain((0..t.len()).map(|i| format!("lower/{i}")))
                .collect(),
        }
    }

    /// In the helper, with the scratch tmpfs over the container's directory `dir`: each layer
    /// opened, attached first if it is a tree.
    fn open(self, dir: &Path) -> Result<Vec<OwnedFd>, CopyError> {
        match self {
            Lowers::Paths(paths) => paths.iter().map(|p| open_path(p)).collect(),
            Lowers::Trees(trees) => trees
                .into_iter()
                .enumerate()
                .map(|(i, tree)| {
                    let stage = dir.join("lower").join(i.to_string());
                    mounts::attach(&tree, &open_path(&stage)?).map_err(io_err(format!(
                        "cannot mount the stopped container: layer {i}"
                    )))?;
                    open_path(&stage)
                })
                .collect(),
        }
    }
}

fn open_path(p: &Path) -> Result<OwnedFd, CopyError> {
    rustix::fs::open(
        p,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        io_err(format!(
            "cannot mount the stopped container: {}",
            p.display()
        ))(e.into())
    })
}

impl Stopped {
    fn open(dir: &ContainerDir, state: &State) -> Result<Stopped, CopyError> {
        Ok(Stopped {
            dir: dir.path.clone(),
            rootfs: dir.rootfs(),
            lowers: Lowers::new(&state.layers)?,
            upper: dir.upper(),
            work: dir.work(),
        })
    }

    /// In the helper: a user namespace with the container's id map (the parent writes it
    /// between `ready` and `go`), its root user, a private mount namespace with the container's
    /// overlay on a scratch tmpfs over its directory, chrooted into. The directories are opened
    /// in the new mount namespace, as the container's init opens them.
    fn enter(self, ready: OwnedFd, go: OwnedFd) -> Result<(), CopyError> {
        let fail = |what: &str| io_err(format!("cannot mount the stopped container: {what}"));
        let step = |e: rootfs::RootfsError| CopyError::Invalid(e.to_string());
        // Dumpable until the maps are written: a non-dumpable process's `/proc/PID/uid_map` is
        // root's, which a rootless caller cannot write.
        helper::enter_user_namespace(ready, go).map_err(CopyError::Invalid)?;
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
            .map_err(|e| fail("not dumpable")(e.into()))?;
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
            .map_err(|e| fail("parent-death signal")(e.into()))?;
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .map_err(|e| fail("mount namespace")(e.into()))?;
        rootfs::make_private().map_err(step)?;
        let (upper, work) = (open_path(&self.upper)?, open_path(&self.work)?);
        // Hides the upper and work directories, opened above.
        let mut points = vec!["rootfs".to_string()];
        points.extend(self.lowers.mount_points());
        let points: Vec<&str> = points.iter().map(String::as_str).collect();
        rootfs::cover_with_scratch(&open_path(&self.dir)?, &points).map_err(step)?;
        let lowers = self.lowers.open(&self.dir)?;
        let target = open_path(&self.rootfs)?;
        let dirs = OverlayDirs {
            lowers: &lowers,
            upper: &upper,
            work: &work,
        };
        rootfs::mount_overlay(&dirs, &target).map_err(step)?;
        let root = open_path(&self.rootfs)?;
        nix::unistd::fchdir(&root)
            .and_then(|()| nix::unistd::chroot("."))
            .and_then(|()| nix::unistd::chdir("/"))
            .map_err(|e| fail("its root")(e.into()))
    }
}

/// Forks the helper: it runs `enter` then `inside`; here `parent` (given the helper's pid)
/// then `outside`, then the helper's result is collected.
fn with_helper<E, F, I, O, P, Q>(
    enter: E,
    parent: F,
    inside: I,
    outside: O,
) -> Result<(), CopyError>
where
    E: FnOnce() -> Result<(), CopyError>,
    F: FnOnce(nix::unistd::Pid) -> Result<(), CopyError>,
    I: FnOnce(P) -> Result<(), CopyError>,
    O: FnOnce(Q) -> Result<(), CopyError>,
    P: PipeEnd,
    Q: PipeEnd,
{
    let (read, write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    if sys::thread_count().map_err(io_err("count threads"))? != 1 {
        return Err(CopyError::Invalid(
            "rsafe has several threads before copying; this is a bug".into(),
        ));
    }
    // SAFETY: rsafe is single-threaded here (checked just above), so the child may run
    // arbitrary code.
    let child =
        unsafe { nix::unistd::fork() }.map_err(|e| io_err("fork the copy helper")(e.into()))?;
    match child {
        ForkResult::Child => {
            // The parent's side holds pipe ends (the id map handshake's): never this one's.
            drop((err_read, parent, outside));
            let (mine, theirs) = P::pick(read, write);
            drop(theirs);
            let result = enter().and_then(|()| inside(P::from_fd(mine)));
            let code = match result {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(std::fs::File::from(err_write), "{e}");
                    1
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            drop((err_write, enter, inside));
            let (mine, theirs) = Q::pick(read, write);
            drop(theirs);
            let here = parent(child).and_then(|()| outside(Q::from_fd(mine)));
            let status = nix::sys::wait::waitpid(child, None)
                .map_err(|e| io_err("wait for the copy helper")(e.into()))?;
            let mut why = String::new();
            let _ = std::fs::File::from(err_read).read_to_string(&mut why);
            let why = why.trim();
            // The helper's broken pipe is the host side's failure, which says why.
            let helper_said = !why.is_empty() && !why.ends_with("(os error 32)");
            match (status, here) {
                (nix::sys::wait::WaitStatus::Exited(_, 0), Ok(())) => Ok(()),
                _ if helper_said => Err(CopyError::Invalid(why.to_string())),
                (_, Err(e)) => Err(e),
                (s, Ok(())) => Err(CopyError::Invalid(format!("the copy helper ended: {s:?}"))),
            }
        }
    }
}

/// The helper's way in: not dumpable, dies with rsafe, the container's namespaces and root,
/// its root user.
fn join(state: &State, target: enter::Target) -> Result<(), CopyError> {
    let fail = |what: &str| io_err(format!("cannot enter the container: {what}"));
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| fail("not dumpable")(e.into()))?;
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| fail("parent-death signal")(e.into()))?;
    for ns in &target.namespaces {
        nix::sched::setns(&ns.fd, ns.flag).map_err(|e| fail(ns.name)(e.into()))?;
    }
    nix::unistd::fchdir(&target.root)
        .and_then(|()| nix::unistd::chroot("."))
        .and_then(|()| nix::unistd::chdir("/"))
        .map_err(|e| fail("its root")(e.into()))?;
    drop(target);
    enter::become_root(&state.idmap).map_err(|e| fail("its root user")(e.into()))
}

/// Which end of the pipe a side uses.
trait PipeEnd: Sized {
    fn pick(read: OwnedFd, write: OwnedFd) -> (OwnedFd, OwnedFd);
    fn from_fd(fd: OwnedFd) -> Self;
}

/// The pipe's write end: the side that sends the archive.
struct Sender(std::fs::File);
/// The pipe's read end: the side that receives it.
struct Receiver(std::fs::File);

impl PipeEnd for Sender {
    fn pick(read: OwnedFd, write: OwnedFd) -> (OwnedFd, OwnedFd) {
        (write, read)
    }
    fn from_fd(fd: OwnedFd) -> Self {
        Sender(std::fs::File::from(fd))
    }
}

impl PipeEnd for Receiver {
    fn pick(read: OwnedFd, write: OwnedFd) -> (OwnedFd, OwnedFd) {
        (read, write)
    }
    fn from_fd(fd: OwnedFd) -> Self {
        Receiver(std::fs::File::from(fd))
    }
}
