//! An overlay root filesystem (podman's and containerd's snapshotters mount one at the
//! bundle's rootfs) for a container whose user namespace rsafe added.
//!
//! The overlay mount itself cannot be id-mapped (the kernel refuses `MOUNT_ATTR_IDMAP` on
//! overlayfs), so its files, owned by host root, would be nobody's in the container and the
//! container's root could write nothing. Overlayfs does accept id-mapped *layers* (Linux 5.19)
//! given as descriptors (`lowerdir+`, `upperdir`, `workdir` with `FSCONFIG_SET_FD`, Linux 6.13):
//! rsafe reads the layers of the caller's overlay from the mount table, id-maps each one into
//! the container's user namespace, and mounts a new overlay of them, as host root (so the
//! layers' `trusted.overlay.*` attributes, opaque directories included, mean what they meant).
//! The result is the same files, with the same upper layer, owned by container root.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::mount::MountAttrFlags;

use crate::runtime::{mounts, sys};

/// The layers of an overlay mount, as the mount table shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    /// Top first, as in `lowerdir=`.
    pub lower: Vec<PathBuf>,
    pub upper: Option<PathBuf>,
    pub work: Option<PathBuf>,
    /// The options the new overlay must share with the old one to mount its layers
    /// (`volatile`: the work directory says so; `metacopy`, `redirect_dir`, `index`,
    /// `userxattr`: how the layers' metadata is kept).
    pub options: Vec<String>,
}

impl Layers {
    /// Whether the overlay was mounted without syncing (`volatile`).
    pub fn is_volatile(&self) -> bool {
        self.options
            .iter()
            .any(|o| o == "volatile" || o == "fsync=volatile")
    }
}

/// The layers of the overlay mounted exactly at `path`, if an overlay is mounted there.
pub fn layers_at(path: &Path) -> io::Result<Option<Layers>> {
    let path = std::fs::canonicalize(path)?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    // The last mount at a path is the visible one.
    Ok(mountinfo
        .lines()
        .rev()
        .find_map(|line| parse_line(line, &path)))
}

fn parse_line(line: &str, path: &Path) -> Option<Layers> {
    let (left, right) = line.split_once(" - ")?;
    let mount_point = left.split(' ').nth(4)?;
    if unescape(mount_point) != path.to_string_lossy() {
        return None;
    }
    let mut right = right.split(' ');
    if right.next()? != "overlay" {
        return None;
    }
    let _source = right.next()?;
    let mut layers = Layers {
        lower: Vec::new(),
        upper: None,
        work: None,
        options: Vec::new(),
    };
    for opt in right.next()?.split(',') {
        if let Some(v) = opt.strip_prefix("lowerdir=") {
            // A data-only lower layer (`::`) is not a layer of the merged view: not supported.
            if v.contains("::") {
                return None;
            }
            layers.lower = v.split(':').map(|p| PathBuf::from(unescape(p))).collect();
        } else if let Some(v) = opt.strip_prefix("upperdir=") {
            layers.upper = Some(PathBuf::from(unescape(v)));
        } else if let Some(v) = opt.strip_prefix("workdir=") {
            layers.work = Some(PathBuf::from(unescape(v)));
        } else if opt == "volatile"
            || opt == "userxattr"
            || ["metacopy=", "redirect_dir=", "index=", "xino=", "fsync="]
                .iter()
                .any(|p| opt.starts_with(p))
        {
            layers.options.push(opt.to_string());
        }
    }
    (!layers.lower.is_empty()).then_some(layers)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push(
                b[i + 1..i + 4]
                    .iter()
                    .fold(0u8, |a, c| a.wrapping_mul(8).wrapping_add(c - b'0')),
            );
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A new overlay of `layers`, each id-mapped into `userns`, as a detached mount.
///
/// Overlayfs takes private clones of its layers when it is created, and it may only clone
/// mounts of the caller's mount namespace: the id-mapped layers are attached in a private
/// mount namespace of this process (which `create` leaves soon after; the host sees
/// nothing), under a tmpfs on `staging`, and named by path.
pub fn idmapped_overlay(
    layers: &Layers,
    userns: BorrowedFd<'_>,
    container_root: (u32, u32),
    staging: &Path,
) -> io::Result<OwnedFd> {
    let _staging = private_staging(staging)?;
    let stage = Stage { staging, userns };
    let mut opts = Vec::new();
    let mut held = Held(Vec::new());
    let mut lowers = layers
        .lower
        .iter()
        .enumerate()
        .map(|(i, p)| stage.layer(&format!("l{i}"), p, true))
        .collect::<io::Result<Vec<String>>>()?;
    if let (Some(upper), Some(work)) = (&layers.upper, &layers.work) {
        opts = stage.upper_and_work(layers, upper, work, &mut lowers, &mut held)?;
    }
    let lowers = lowers
        .iter()
        .map(|l| held.name(Path::new(l)))
        .collect::<io::Result<Vec<String>>>()?;
    opts.insert(0, format!("lowerdir={}", lowers.join(":")));
    opts.extend(layers.options.iter().cloned());
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    // Overlayfs writes its upper layer with its creator's credentials, through the id-mapped
    // layers: the creator must be an id they map (container root), yet keep host root's
    // capabilities (trusted.overlay.* attributes, copying up any file).
    let _creator = CreatorIds::become_(container_root)?;
    mounts::new_filesystem("overlay", &opts, MountAttrFlags::empty())
        .map_err(|e| io::Error::other(e.to_string()))
}

/// An error with what was being done in front of it.
fn ctx(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Enters a private mount namespace and mounts a small tmpfs on `staging` there, for the
/// staged layers; the tmpfs and `staging` are returned open, to be held as long as the
/// staging is used (the descriptors the layers are named by come after them).
fn private_staging(staging: &Path) -> io::Result<(OwnedFd, OwnedFd)> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(io::Error::from)
        .map_err(ctx("a private mount namespace".into()))?;
    crate::runtime::rootfs::make_private().map_err(|e| io::Error::other(e.to_string()))?;
    let scratch =
        mounts::new_filesystem("tmpfs", &["mode=700", "size=4k"], MountAttrFlags::empty())
            .map_err(|e| io::Error::other(e.to_string()))?;
    let staging_fd = rustix::fs::open(
        staging,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    mounts::attach(&scratch, &staging_fd)
        .map_err(ctx(format!("staging tmpfs on {}", staging.display())))?;
    Ok((scratch, staging_fd))
}

/// Where layers are staged (`staging`, in the private mount namespace) and the user
/// namespace they are id-mapped into.
struct Stage<'a> {
    staging: &'a Path,
    userns: BorrowedFd<'a>,
}

impl Stage<'_> {
    /// A clone of `path` id-mapped (and read-only if asked) attached at `staging/name`; its
    /// path there.
    fn layer(&self, name: &str, path: &Path, read_only: bool) -> io::Result<String> {
        let tree = mounts::clone_host_tree_with(path, false)
            .map_err(ctx(format!("overlay layer {}", path.display())))?;
        let mut attrs = libc::MOUNT_ATTR_IDMAP;
        if read_only {
            attrs |= libc::MOUNT_ATTR_RDONLY;
        }
        sys::set_mount_attrs(tree.as_fd(), attrs, Some(self.userns), false)
            .map_err(ctx(format!("id-map overlay layer {}", path.display())))?;
        let point = self.staging.join(name);
        std::fs::create_dir(&point)?;
        let point_fd = rustix::fs::open(
            &point,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        mounts::attach(&tree, &point_fd)
            .map_err(ctx(format!("stage overlay layer {}", path.display())))?;
        Ok(point.to_string_lossy().into_owned())
    }

    /// Stages the upper and work directories (on one mount, as overlayfs wants: their common
    /// parent) and returns the `upperdir=` and `workdir=` options; a volatile overlay's upper
    /// layer becomes the top of `lowers` instead, under a fresh upper.
    fn upper_and_work(
        &self,
        layers: &Layers,
        upper: &Path,
        work: &Path,
        lowers: &mut Vec<String>,
        held: &mut Held,
    ) -> io::Result<Vec<String>> {
        let common = common_parent(upper, work).ok_or_else(|| {
            io::Error::other(format!(
                "{} and {} have no common parent",
                upper.display(),
                work.display()
            ))
        })?;
        let (upper, work) = if layers.is_volatile() {
            // A volatile overlay's work directory refuses a second mount until its owner
            // says the upper layer is consistent (podman mounts `--rm` containers so): the
            // caller's upper layer becomes the top lower one, and the container writes to a
            // fresh upper next to it (removed with the caller's layer).
            let own = common.join("rsafe");
            let _ = std::fs::remove_dir_all(&own);
            for dir in ["upper", "work"] {
                std::fs::create_dir_all(own.join(dir))
                    .map_err(ctx(format!("{}", own.join(dir).display())))?;
            }
            (own.join("upper"), own.join("work"))
        } else {
            (upper.to_path_buf(), work.to_path_buf())
        };
        let staged = PathBuf::from(self.layer("uw", &common, false)?);
        let below = |p: &Path| staged.join(p.strip_prefix(&common).unwrap_or(p));
        if layers.is_volatile() {
            lowers.insert(
                0,
                below(layers.upper.as_deref().unwrap_or(Path::new("/")))
                    .display()
                    .to_string(),
            );
        }
        Ok(vec![
            format!("upperdir={}", held.name(&below(&upper))?),
            format!("workdir={}", held.name(&below(&work))?),
        ])
    }
}

/// Staged layers held open and named by descriptor (`/proc/self/fd/N`), as `rsafe run` names
/// its layers: the container's mount table then shows no host path of the runtime's.
struct Held(Vec<OwnedFd>);

impl Held {
    fn name(&mut self, path: &Path) -> io::Result<String> {
        let fd = rustix::fs::open(
            path,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let name = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        self.0.push(fd);
        Ok(name)
    }
}

/// This process's filesystem ids switched to the container's root (and capabilities raised
/// again: the switch clears the file capabilities from the effective set) until dropped.
struct CreatorIds;

impl CreatorIds {
    fn become_((uid, gid): (u32, u32)) -> io::Result<CreatorIds> {
        nix::unistd::setfsgid(nix::unistd::Gid::from_raw(gid));
        nix::unistd::setfsuid(nix::unistd::Uid::from_raw(uid));
        let permitted = ::caps::read(None, ::caps::CapSet::Permitted)
            .map_err(|e| io::Error::other(e.to_string()))?;
        ::caps::set(None, ::caps::CapSet::Effective, &permitted)
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(CreatorIds)
    }
}

impl Drop for CreatorIds {
    fn drop(&mut self) {
        nix::unistd::setfsuid(nix::unistd::Uid::from_raw(0));
        nix::unistd::setfsgid(nix::unistd::Gid::from_raw(0));
        if let Ok(permitted) = ::caps::read(None, ::caps::CapSet::Permitted) {
            let _ = ::caps::set(None, ::caps::CapSet::Effective, &permitted);
        }
    }
}

/// The deepest directory both paths are below.
fn common_parent(a: &Path, b: &Path) -> Option<PathBuf> {
    a.ancestors()
        .skip(1)
        .find(|p| b.starts_with(p) && *p != Path::new("/"))
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_overlay_lines_parse() {
        let line = "50 45 0:40 / /var/lib/c/overlay/8c/merged rw,relatime - overlay overlay rw,lowerdir=/var/lib/c/overlay/l/YF:/var/lib/c/overlay/l/AB,upperdir=/var/lib/c/overlay/8c/diff,workdir=/var/lib/c/overlay/8c/work,uuid=on,fsync=volatile";
        let l = parse_line(line, Path::new("/var/lib/c/overlay/8c/merged")).unwrap();
        assert_eq!(
            l.lower,
            vec![
                PathBuf::from("/var/lib/c/overlay/l/YF"),
                PathBuf::from("/var/lib/c/overlay/l/AB")
            ]
        );
        assert_eq!(
            l.upper.as_deref(),
            Some(Path::new("/var/lib/c/overlay/8c/diff"))
        );
        assert_eq!(
            l.work.as_deref(),
            Some(Path::new("/var/lib/c/overlay/8c/work"))
        );
        assert_eq!(l.options, vec!["fsync=volatile"]);
        assert!(parse_line(line, Path::new("/elsewhere")).is_none());
        let ext4 = "30 1 8:1 / / rw - ext4 /dev/vda rw";
        assert!(parse_line(ext4, Path::new("/")).is_none());
        let spaced = r"51 45 0:41 / /a\040b rw - overlay overlay rw,lowerdir=/l\040x";
        assert_eq!(
            parse_line(spaced, Path::new("/a b")).unwrap().lower,
            vec![PathBuf::from("/l x")]
        );
    }

    #[test]
    fn upper_and_work_share_their_parent() {
        assert_eq!(
            common_parent(Path::new("/s/8c/diff"), Path::new("/s/8c/work")),
            Some(PathBuf::from("/s/8c"))
        );
        assert_eq!(common_parent(Path::new("/a/u"), Path::new("/b/w")), None);
    }
}
