//! Directory descriptors (and working directories) that point outside a container's view:
//! the CVE-2024-21626 class, where a descriptor of the host's filesystem leaked into the
//! container lets `openat(fd, "../../..")` walk the host.
//!
//! "Outside" is decided by mount identity, not by path strings (a path printed for another
//! mount namespace means nothing here): `statx(STATX_MNT_ID)` through `/proc/PID/fd/N` gives
//! the mount the directory is on, and `/proc/PID/mountinfo` lists exactly the mounts visible
//! from the process's root. A directory on a mount missing from that list is outside it.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use rustix::fs::{AtFlags, CWD, FileType, StatxFlags, statx};

use super::{Ctx, pid_list};
use crate::audit::finding::Evidence;
use crate::audit::procs::mountinfo;
use crate::audit::procs::rules;

/// A directory outside the container's view, as the host names it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Leak {
    mount_id: u64,
    path: String,
    /// `fd 3`, `cwd`.
    handle: String,
}

pub(super) fn check(cx: &mut Ctx<'_>) {
    let c = cx.container;
    let proc_root = &c.host().proc_root;
    let mut leaks: BTreeMap<Leak, Vec<u32>> = BTreeMap::new();
    for p in &c.processes {
        let dir = p.dir(proc_root);
        let visible: HashSet<u64> = match std::fs::read_to_string(dir.join("mountinfo")) {
            Ok(text) => mountinfo::parse(&text).iter().map(|m| m.id).collect(),
            Err(e) => {
                cx.not_inspected(p.pid, "descriptors", Some(&e.to_string()));
                continue;
            }
        };
        let mut handles = vec![("cwd".to_owned(), dir.join("cwd"))];
        match std::fs::read_dir(dir.join("fd")) {
            Ok(entries) => handles.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| (format!("fd {}", e.file_name().to_string_lossy()), e.path())),
            ),
            Err(e) => {
                cx.not_inspected(p.pid, "descriptors", Some(&e.to_string()));
                continue;
            }
        }
        for (handle, link) in handles {
            if let Some(mount_id) = outside_directory(&link, &visible) {
                let path = std::fs::read_link(&link)
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "?".into());
                leaks
                    .entry(Leak {
                        mount_id,
                        path,
                        handle,
                    })
                    .or_default()
                    .push(p.pid);
            }
        }
    }
    for (leak, pids) in leaks {
        cx.push(rules::FD_OUTSIDE_ROOT.finding(
            c.location(pids.first().copied(), Some(leak.handle.clone())),
            Some(Evidence::plain(format!(
                "{} of {} is directory {} on mount {}, which is not in the container's view",
                leak.handle,
                pid_list(&pids),
                leak.path,
                leak.mount_id
            ))),
        ));
    }
}

/// The mount id of the directory `link` leads to, when that mount is not in `visible`.
fn outside_directory(link: &Path, visible: &HashSet<u64>) -> Option<u64> {
    let st = statx(
        CWD,
        link,
        AtFlags::empty(),
        StatxFlags::TYPE | StatxFlags::MNT_ID,
    )
    .ok()?;
    let is_dir = FileType::from_raw_mode(st.stx_mode.into()) == FileType::Directory;
    let have_mnt = StatxFlags::from_bits_retain(st.stx_mask).contains(StatxFlags::MNT_ID);
    (is_dir && have_mnt && !visible.contains(&st.stx_mnt_id)).then_some(st.stx_mnt_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_directories_are_visible_and_others_not() {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let visible: HashSet<u64> = mountinfo::parse(&text).iter().map(|m| m.id).collect();
        assert_eq!(
            outside_directory(Path::new("/proc/self/cwd"), &visible),
            None
        );
        let none = HashSet::new();
        assert!(outside_directory(Path::new("/proc/self/cwd"), &none).is_some());
        // Not a directory: never a traversal handle.
        assert_eq!(outside_directory(Path::new("/proc/self/exe"), &none), None);
    }
}
