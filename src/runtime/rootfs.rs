//! The container's root filesystem and its kernel filesystems.
//!
//! The root is an overlayfs: the image's layers (or one plain rootfs directory) are its
//! read-only lower layers, and a per-container upper directory takes every write, so the image
//! stays untouched and `--rm` discards the changes by deleting one directory. The overlay is
//! mounted inside the container's user namespace (mount option `userxattr`, since `trusted.*`
//! xattrs are reserved to the host's root); copy-up then needs every lower file's owner to be
//! mapped in the namespace, which is why layers are extracted with ids the container maps and a
//! root-owned plain directory is id-mapped (see `process`). `--read-only` still gets an upper
//! layer, which only receives the mount points of volumes, and the whole root mount is made
//! read-only before the workload ever sees it.
//!
//! Layer and upper paths are handed to overlayfs as `/proc/self/fd/N` of descriptors opened in
//! the container's mount namespace: no escaping of `:` or `,`, no page-size limit for many
//! layers, and no host path in the container's `/proc/self/mountinfo`.
//!
//! Then come a fresh `/proc` (the pid namespace's own) with the masked and read-only paths,
//! a minimal `/dev` (a tmpfs with six device nodes bound from the host, a private `devpts`,
//! `shm` and `mqueue`), `/sys` read-only, and finally `pivot_root` with the old root detached:
//! nothing of the host's tree stays reachable, so the double-`chroot` escape that works against
//! a `chroot`-based runner finds only the container's root above it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::OFlags;
use rustix::mount::{MountAttrFlags, MountPropagationFlags, UnmountFlags};

use super::mounts::{self, MountError, Root, attach, clone_host_tree, clone_tree, new_filesystem};
use super::sys;

/// A step of building the root filesystem that failed.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("make the mount tree private: {0}")]
    Private(io::Error),
    #[error("mount the overlay root ({layers} layers): {source}")]
    Overlay { layers: usize, source: io::Error },
    #[error("{what}: {source}")]
    Step {
        what: &'static str,
        source: io::Error,
    },
    #[error(transparent)]
    Mount(#[from] MountError),
}

type Result<T, E = RootfsError> = std::result::Result<T, E>;

/// The host devices a container gets (bound from the host's `/dev`, read and write for all).
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Stops mount events from crossing between the host and the container in either direction.
pub fn make_private() -> Result<()> {
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .map_err(|e| RootfsError::Private(e.into()))
}

/// Covers the container's directory, in this mount namespace only, with a small tmpfs for
/// the mount points the container needs (its root, and the staged layers of a root caller):
/// they never touch the host's disk. Creating and freeing a directory costs a block, and on a
/// filesystem mounted with `discard` every freed block is a synchronous discard at `--rm`.
/// Open the upper and work directories first: this hides them. The tmpfs goes away with the
/// mount namespace.
pub fn cover_with_scratch(dir: &OwnedFd, mount_points: &[&str]) -> Result<()> {
    let scratch = new_filesystem(
        "tmpfs",
        &["mode=700", "size=64k", "nr_inodes=1024"],
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    for path in mount_points {
        rustix::fs::mkdirat(&scratch, *path, rustix::fs::Mode::from_raw_mode(0o700)).map_err(
            |e| RootfsError::Step {
                what: "create a mount point in the scratch tmpfs",
                source: e.into(),
            },
        )?;
    }
    attach(&scratch, dir).map_err(|source| RootfsError::Step {
        what: "mount the scratch tmpfs",
        source,
    })
}

/// The directories of the overlay, as `O_PATH` descriptors opened in this mount namespace.
pub struct OverlayDirs<'a> {
    /// Lower layers, bottom first.
    pub lowers: &'a [OwnedFd],
    pub upper: &'a OwnedFd,
    /// overlayfs's scratch directory, on the same filesystem as `upper`.
    pub work: &'a OwnedFd,
}

/// The overlayfs mount options for `dirs`.
fn overlay_options(dirs: &OverlayDirs<'_>) -> String {
    let fd_path = |fd: &OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
    let lowers: Vec<String> = dirs.lowers.iter().rev().map(fd_path).collect();
    // volatile: no syncing of the upper layer's filesystem, above all at unmount, which would
    // cost a journal commit per container. A container's writable layer is never mounted
    // again, so surviving a host crash is not a property it needs.
    format!(
        "lowerdir={},upperdir={},workdir={},volatile,userxattr",
        lowers.join(":"),
        fd_path(dirs.upper),
        fd_path(dirs.work)
    )
}

/// Mounts the overlay on the directory `target`.
pub fn mount_overlay(dirs: &OverlayDirs<'_>, target: &OwnedFd) -> Result<()> {
    let target = format!("/proc/self/fd/{}", target.as_raw_fd());
    // nosuid, nodev: a set-uid file or a device node the workload writes into its layer is
    // never honoured (no_new_privs already ignores set-uid; this holds without it too).
    nix::mount::mount(
        Some("overlay"),
        target.as_str(),
        Some("overlay"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(overlay_options(dirs).as_str()),
    )
    .map_err(|e| RootfsError::Overlay {
        layers: dirs.lowers.len(),
        source: e.into(),
    })
}

/// Makes `/etc/hostname` say the container's hostname, as `uname -n` does (docker and podman
/// do the same).
pub fn mount_hostname(root: &Root, scratch: &OwnedFd, hostname: &str) -> Result<()> {
    mount_generated(root, scratch, "/etc/hostname", &format!("{hostname}\n"))
}

/// Puts `content` at `target` (a file under `/etc`): a file on the scratch tmpfs `scratch` (the
/// container's directory in this namespace), bound read-only over the image's, so the
/// workload reads it but cannot replace it. A read-only root without the file gets none.
pub fn mount_generated(root: &Root, scratch: &OwnedFd, target: &str, content: &str) -> Result<()> {
    let step = |what: &'static str| move |e: io::Error| RootfsError::Step { what, source: e };
    let name = target.trim_start_matches('/').replace('/', "-");
    let file = rustix::fs::openat(
        scratch,
        name.as_str(),
        OFlags::CREATE | OFlags::WRONLY | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .map_err(|e| step("create a generated /etc file")(e.into()))?;
    rustix::io::write(&file, content.as_bytes())
        .map_err(|e| step("write a generated /etc file")(e.into()))?;
    let tree = clone_tree(scratch.as_fd(), &name).map_err(step("clone a generated /etc file"))?;
    let attrs = libc::MOUNT_ATTR_RDONLY
        | libc::MOUNT_ATTR_NOSUID
        | libc::MOUNT_ATTR_NODEV
        | libc::MOUNT_ATTR_NOEXEC;
    sys::set_mount_attrs(tree.as_fd(), attrs, None, false)
        .map_err(step("seal a generated /etc file"))?;
    let Ok(target_fd) = root.touch(target) else {
        return Ok(()); // a read-only root without one
    };
    attach(&tree, &target_fd).map_err(step("mount a generated /etc file"))
}

/// Binds the host file `source` read-only at `target` (a file under `/etc`): a named network's
/// hosts file, which rsafe rewrites in place as containers come and go (see
/// [`super::netstore`]), so the workload sees the change but cannot make one.
pub fn mount_shared(root: &Root, target: &str, source: &Path) -> Result<()> {
    let step = |what: &'static str| move |e: io::Error| RootfsError::Step { what, source: e };
    let tree = clone_host_tree(source).map_err(step("clone a network's hosts file"))?;
    let attrs = libc::MOUNT_ATTR_RDONLY
        | libc::MOUNT_ATTR_NOSUID
        | libc::MOUNT_ATTR_NODEV
        | libc::MOUNT_ATTR_NOEXEC;
    sys::set_mount_attrs(tree.as_fd(), attrs, None, false)
        .map_err(step("seal a network's hosts file"))?;
    let Ok(target_fd) = root.touch(target) else {
        return Ok(()); // a read-only root without one
    };
    attach(&tree, &target_fd).map_err(step("mount a network's hosts file"))
}

/// `/etc/hosts` for the container: localhost, its own name at `addr`, and `extra`.
pub fn hosts_file(
    hostname: &str,
    addr: std::net::IpAddr,
    extra: &[(String, std::net::IpAddr)],
) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str(&format!("{addr}\t{hostname}\n"));
    for (name, ip) in extra {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

/// Options for the kernel filesystems.
#[derive(Debug, Clone)]
pub struct SystemMounts<'a> {
    /// Whether the container has its own network namespace (sysfs may only be mounted then).
    pub own_network: bool,
    /// The container's `tty` group (gid 5) when it is mapped: owner of the pty slaves.
    pub tty_gid: Option<u32>,
    pub masked_paths: &'a [String],
    pub readonly_paths: &'a [String],
    /// `/dev/shm`'s size in bytes (`--shm-size`; `None`: docker's 64 MiB).
    pub shm_size: Option<u64>,
}

const NOSUID_NODEV_NOEXEC: MountAttrFlags = MountAttrFlags::MOUNT_ATTR_NOSUID
    .union(MountAttrFlags::MOUNT_ATTR_NODEV)
    .union(MountAttrFlags::MOUNT_ATTR_NOEXEC);

/// Mounts `/proc`, `/dev` and `/sys` inside `root`. Must run before [`pivot`]: the kernel only
/// lets a namespace mount a new procfs or sysfs while a complete one is visible.
pub fn mount_system(root: &Root, opts: &SystemMounts<'_>) -> Result<()> {
    let proc = new_filesystem("proc", &[], NOSUID_NODEV_NOEXEC)?;
    attach_at(root, &proc, "/proc")?;

    let dev = new_filesystem(
        "tmpfs",
        &["mode=755", "size=65536k"],
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    attach_at(root, &dev, "/dev")?;
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        let tree = match clone_host_tree(&host) {
            Ok(t) => t,
            // A host without the device (a minimal CI container) gives a container without it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(RootfsError::Step {
                    what: "bind a host device",
                    source,
                });
            }
        };
        let target = root.touch(&format!("/dev/{name}"))?;
        attach(&tree, &target).map_err(|source| RootfsError::Step {
            what: "bind a host device",
            source,
        })?;
    }
    let gid = opts.tty_gid.map(|g| format!("gid={g}"));
    let mut pts_opts = vec!["newinstance", "ptmxmode=0666", "mode=0620"];
    pts_opts.extend(gid.as_deref());
    let pts = new_filesystem(
        "devpts",
        &pts_opts,
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    attach_at(root, &pts, "/dev/pts")?;
    root.symlink("pts/ptmx", "/dev/ptmx")?;
    let shm_size = format!("size={}", opts.shm_size.unwrap_or(64 << 20));
    let shm = new_filesystem("tmpfs", &["mode=1777", &shm_size], NOSUID_NODEV_NOEXEC)?;
    attach_at(root, &shm, "/dev/shm")?;
    let mqueue = new_filesystem("mqueue", &[], NOSUID_NODEV_NOEXEC)?;
    attach_at(root, &mqueue, "/dev/mqueue")?;
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        root.symlink(target, link)?;
    }

    if opts.own_network {
        let sys = new_filesystem(
            "sysfs",
            &[],
            NOSUID_NODEV_NOEXEC | MountAttrFlags::MOUNT_ATTR_RDONLY,
        )?;
        attach_at(root, &sys, "/sys")?;
    }
    Ok(())
}

/// Hides `masked` paths (files get `/dev/null` over them, directories an empty read-only
/// tmpfs) and makes `readonly` paths read-only. Paths that do not exist are skipped: there is
/// nothing to hide.
pub fn protect_paths(root: &Root, masked: &[String], readonly: &[String]) -> Result<()> {
    let step = |what| move |source| RootfsError::Step { what, source };
    for path in readonly {
        let Some(target) = existing(root, path)? else {
            continue;
        };
        let tree = mounts::clone_tree(rustix::fd::AsFd::as_fd(&target), "")
            .map_err(step("make a path read-only"))?;
        mounts::make_read_only(&tree).map_err(step("make a path read-only"))?;
        attach(&tree, &target).map_err(step("make a path read-only"))?;
    }
    for path in masked {
        let Some(target) = existing(root, path)? else {
            continue;
        };
        let is_dir = rustix::fs::fstat(&target)
            .map_err(|e| step("mask a path")(e.into()))?
            .st_mode
            & libc::S_IFMT
            == libc::S_IFDIR;
        let tree = if is_dir {
            new_filesystem(
                "tmpfs",
                &["size=4k", "mode=555"],
                NOSUID_NODEV_NOEXEC | MountAttrFlags::MOUNT_ATTR_RDONLY,
            )?
        } else {
            clone_host_tree(Path::new("/dev/null")).map_err(step("mask a path"))?
        };
        attach(&tree, &target).map_err(step("mask a path"))?;
    }
    Ok(())
}

fn existing(root: &Root, path: &str) -> Result<Option<OwnedFd>> {
    match root.resolve(path) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RootfsError::Step {
            what: "resolve a protected path",
            source,
        }),
    }
}

fn attach_at(root: &Root, tree: &OwnedFd, path: &str) -> Result<()> {
    let target = root.mkdir_all(path)?;
    attach(tree, &target).map_err(|source| RootfsError::Step {
        what: match path {
            "/proc" => "mount /proc",
            "/dev" => "mount /dev",
            "/dev/pts" => "mount /dev/pts",
            "/dev/shm" => "mount /dev/shm",
            "/dev/mqueue" => "mount /dev/mqueue",
            "/sys" => "mount /sys",
            _ => "mount",
        },
        source,
    })
}

/// `--read-only`: makes the root mount itself read-only (the mounts on top of it, like `/dev`
/// or a read-write volume, keep their own flags).
pub fn seal_read_only(root: &Root) -> Result<()> {
    sys::set_mount_attrs(
        rustix::fd::AsFd::as_fd(root),
        libc::MOUNT_ATTR_RDONLY,
        None,
        false,
    )
    .map_err(|source| RootfsError::Step {
        what: "make the root read-only",
        source,
    })
}

/// Makes `root` the root of this mount namespace and detaches the old root entirely.
pub fn pivot(root: &Root) -> Result<()> {
    let step = |what| {
        move |e: rustix::io::Errno| RootfsError::Step {
            what,
            source: e.into(),
        }
    };
    rustix::process::fchdir(root).map_err(step("enter the new root"))?;
    // pivot_root(".", "."): the old root ends up mounted on top of the new one, at ".", from
    // where it is detached; no directory for it is needed in the image.
    rustix::process::pivot_root(".", ".").map_err(step("pivot_root"))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(step("detach the old root"))?;
    rustix::process::chdir("/").map_err(step("chdir /"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fds(n: usize) -> Vec<OwnedFd> {
        (0..n)
            .map(|_| OwnedFd::from(std::fs::File::open("/").unwrap()))
            .collect()
    }

    #[test]
    fn overlay_options_top_layer_first_and_no_host_paths() {
        let lowers = fds(3);
        let up = fds(2);
        let dirs = OverlayDirs {
            lowers: &lowers,
            upper: &up[0],
            work: &up[1],
        };
        let fd = |f: &OwnedFd| format!("/proc/self/fd/{}", f.as_raw_fd());
        assert_eq!(
            overlay_options(&dirs),
            format!(
                "lowerdir={}:{}:{},upperdir={},workdir={},volatile,userxattr",
                fd(&lowers[2]),
                fd(&lowers[1]),
                fd(&lowers[0]),
                fd(&up[0]),
                fd(&up[1])
            )
        );
    }
}
