//! `rsafe diff`: what a container changed in its filesystem, as `docker diff` and `podman diff`
//! print it (`A` added, `C` changed, `D` deleted), read from its writable layer against the
//! image's layers ([`super::layered`]).
//!
//! Every entry of the writable layer is a change: a whiteout is a `D` of what it hides, a file
//! is `A` when the image has no such path and `C` when it has; a directory is `C` when anything
//! below it changed or its mode, owner or time differ from the image's (overlayfs copies a
//! directory up when anything in it changes, so every parent of a change is listed `C`, as
//! docker lists them). An opaque directory (removed and made again, `rm -rf d; mkdir d`) hides
//! all the image had in it: each name the image had there and the container has not is `D`.
//! A deleted directory is one `D`, its contents not listed (docker's and podman's way).
//!
//! The empty mount points rsafe itself made for the container (`/etc/hosts`, `/proc`, `-v`
//! targets…) when the image had none are not the workload's changes and are left out: docker
//! and podman make theirs in an init layer that `diff` does not show either.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use super::layered::{self, Dir, Entry, Kind, LayeredError, Stack};

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

impl ChangeKind {
    /// docker's letter for it.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One changed path (absolute, as the container sees it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

/// The mount points every container gets, which rsafe makes when the image lacks them.
pub const SYSTEM_MOUNT_POINTS: &[&str] = &[
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/proc",
    "/sys",
    "/dev",
];

/// The changes of the writable layer `upper` over the image's layers `lower`, sorted by path
/// (a directory before what is in it). `mount_points`: the paths rsafe mounted on (left out
/// when they are empty and the image did not have them).
pub fn changes(
    upper: &Stack,
    lower: &Stack,
    mount_points: &[String],
) -> Result<Vec<Change>, LayeredError> {
    let walk = Walk {
        upper,
        lower,
        mount_points,
    };
    let mut out = Vec::new();
    walk.dir(
        &upper.root()?,
        Some(&lower.root()?),
        (false, ""),
        0,
        &mut out,
    )?;
    out.sort_by(|a, b| Path::new(&a.path).cmp(Path::new(&b.path)));
    Ok(out)
}

struct Walk<'a> {
    upper: &'a Stack,
    lower: &'a Stack,
    mount_points: &'a [String],
}

impl Walk<'_> {
    /// Compares directory `path` of the writable layer with the image's (`lower`, if the image
    /// has a directory there); `hidden`: the image's contents are hidden here (under an opaque
    /// directory). Returns whether anything changed in it.
    fn dir(
        &self,
        up: &Dir,
        lower: Option<&Dir>,
        (hidden, path): (bool, &str),
        depth: usize,
        out: &mut Vec<Change>,
    ) -> Result<bool, LayeredError> {
        if depth > layered::MAX_DEPTH {
            return Err(LayeredError::TooDeep(path.to_string()));
        }
        let ups = self.upper.list(up, path)?;
        let lows: BTreeMap<OsString, Entry> = match lower {
            Some(l) => self.lower.list(l, path)?,
            None => BTreeMap::new(),
        }
        .into_iter()
        .filter(|(_, e)| e.kind != Kind::Whiteout)
        .collect();
        let mut changed = false;
        for (name, u) in &ups {
            let p = layered::join(path, name);
            let image = lows.get(name);
            let kind = match u.kind {
                Kind::Whiteout => image.map(|_| ChangeKind::Deleted),
                Kind::Dir => {
                    self.subdir((up, lower), (name, u, image), (hidden, &p), depth, out)?
                }
                _ if image.is_none() && u.size == 0 && self.is_mount_point(&p) => None,
                _ if image.is_none() => Some(ChangeKind::Added),
                _ => Some(ChangeKind::Changed),
            };
            if let Some(kind) = kind {
                out.push(Change { kind, path: p });
                changed = true;
            }
        }
        if hidden {
            for name in lows.keys().filter(|n| !ups.contains_key(*n)) {
                out.push(Change {
                    kind: ChangeKind::Deleted,
                    path: layered::join(path, name),
                });
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Directory `name` (`u` in the writable layer, `image` the image's entry there): its own
    /// change after those below it.
    fn subdir(
        &self,
        (up, lower): (&Dir, Option<&Dir>),
        (name, u, image): (&OsString, &Entry, Option<&Entry>),
        (hidden, path): (bool, &str),
        depth: usize,
        out: &mut Vec<Change>,
    ) -> Result<Option<ChangeKind>, LayeredError> {
        let Some(up_child) = self.upper.child(up, name, path)? else {
            return Ok(None); // replaced meanwhile
        };
        let low_child = match (lower, image) {
            (Some(l), Some(e)) if e.kind == Kind::Dir => self.lower.child(l, name, path)?,
            _ => None,
        };
        let hidden = hidden || u.opaque;
        let below = self.dir(
            &up_child,
            low_child.as_ref(),
            (hidden, path),
            depth + 1,
            out,
        )?;
        Ok(match image {
            None if !below && self.is_mount_point(path) => None,
            None => Some(ChangeKind::Added),
            Some(e) if e.kind != Kind::Dir => Some(ChangeKind::Changed),
            Some(e)
                if below || (e.mode, e.uid, e.gid, e.mtime) != (u.mode, u.uid, u.gid, u.mtime) =>
            {
                Some(ChangeKind::Changed)
            }
            Some(_) => None,
        })
    }

    fn is_mount_point(&self, path: &str) -> bool {
        SYSTEM_MOUNT_POINTS.contains(&path)
            || self
                .mount_points
                .iter()
                .any(|m| m.trim_end_matches('/') == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::idmap::IdMap;
    use crate::runtime::layered::Owners;
    use std::path::PathBuf;

    fn set(path: &Path, name: &str, value: &[u8]) {
        rustix::fs::setxattr(path, name, value, rustix::fs::XattrFlags::empty()).unwrap();
    }

    fn stacks(upper: PathBuf, lower: PathBuf) -> (Stack, Stack) {
        let map = IdMap::for_this_process();
        (
            Stack::open(&[(upper, Owners::AsIs)], &map).unwrap(),
            Stack::open(&[(lower, Owners::AsIs)], &map).unwrap(),
        )
    }

    fn lines(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path))
            .collect()
    }

    #[test]
    fn adds_changes_deletes_and_opaque_directories_as_docker_lists_them() {
        let tmp = tempfile::tempdir().unwrap();
        let (upper, lower) = (tmp.path().join("upper"), tmp.path().join("lower"));
        for d in ["etc", "var/lib/x", "srv/old", "home/app", "usr/bin"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
        }
        for f in [
            "etc/passwd",
            "etc/gone",
            "srv/a",
            "srv/b",
            "var/lib/x/y",
            "usr/bin/sh",
        ] {
            std::fs::write(lower.join(f), f).unwrap();
        }
        for d in ["etc", "srv", "home", "tmp/new", "proc"] {
            std::fs::create_dir_all(upper.join(d)).unwrap();
        }
        // Copied up with the image's times: only what changed below makes them `C`.
        let mtime = std::fs::metadata(lower.join("home"))
            .unwrap()
            .modified()
            .unwrap();
        std::fs::File::open(upper.join("home"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::fs::write(upper.join("etc/passwd"), "changed").unwrap();
        std::fs::write(upper.join("etc/new"), "added").unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap(); // rsafe's mount point
        for gone in ["etc/gone", "var", "nothing-there"] {
            std::fs::write(upper.join(gone), "").unwrap();
            set(&upper.join(gone), "user.overlay.whiteout", b"");
        }
        // `rm -rf /srv; mkdir /srv; echo > /srv/a`: opaque.
        set(&upper.join("srv"), "user.overlay.opaque", b"y");
        std::fs::write(upper.join("srv/a"), "again").unwrap();
        std::fs::write(upper.join("tmp/new/f"), "n").unwrap();
        let (up, low) = stacks(upper, lower);
        let got = lines(&changes(&up, &low, &[]).unwrap());
        assert_eq!(
            got,
            [
                "C /etc",
                "D /etc/gone",
                "A /etc/new",
                "C /etc/passwd",
                "C /srv",
                "C /srv/a",
                "D /srv/b",
                "D /srv/old",
                "A /tmp",
                "A /tmp/new",
                "A /tmp/new/f",
                "D /var",
            ]
        );
    }

    #[test]
    fn a_volume_target_made_for_the_container_is_not_a_change_unless_written() {
        let tmp = tempfile::tempdir().unwrap();
        let (upper, lower) = (tmp.path().join("upper"), tmp.path().join("lower"));
        std::fs::create_dir_all(&lower).unwrap();
        std::fs::create_dir_all(upper.join("data")).unwrap();
        std::fs::create_dir_all(upper.join("cache")).unwrap();
        std::fs::write(upper.join("cache/x"), "x").unwrap();
        let (up, low) = stacks(upper, lower);
        let targets = ["/data".to_string(), "/cache".to_string()];
        assert_eq!(
            lines(&changes(&up, &low, &targets).unwrap()),
            ["A /cache", "A /cache/x"]
        );
    }
}
