//! What "the host" is, as seen through one procfs: the initial namespaces, the host's mounts
//! (to map a container's mounts back to host paths) and the cgroup hierarchies the reader can
//! read limits from.
//!
//! The host is pid 1 of this procfs. When pid 1 cannot be inspected (it is another user's, or
//! it guards itself, as some sandboxes' init does), a kernel thread stands in for it: kernel
//! threads always live in the initial namespaces, and they are visible only when this procfs
//! belongs to the initial pid namespace. Failing both, the reader's own namespaces are the
//! reference, and the discovery says so: a container that shares them is then only known to
//! share them with rsafe.

use std::fmt;
use std::path::{Path, PathBuf};

use super::ProcsError;
use super::mountinfo::{self, HostMounts, Mount};
use super::process::{Namespaces, NsKind, Process};

/// Which process stands for the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostReference {
    /// Pid 1 of this procfs.
    Init,
    /// A kernel thread (pid 1 could not be inspected).
    KernelThread(u32),
    /// rsafe itself (neither pid 1 nor a kernel thread could be inspected).
    Reader(u32),
}

impl fmt::Display for HostReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostReference::Init => f.write_str("pid 1"),
            HostReference::KernelThread(pid) => write!(f, "kernel thread {pid} (pid 1 unreadable)"),
            HostReference::Reader(pid) => write!(
                f,
                "rsafe's own process {pid} (pid 1 and kernel threads unreadable)"
            ),
        }
    }
}

/// The host as one procfs shows it; shared by every container of a discovery.
#[derive(Debug, Clone)]
pub struct Host {
    pub proc_root: PathBuf,
    pub reference: HostReference,
    pub reference_pid: u32,
    pub namespaces: Namespaces,
    pub mounts: HostMounts,
    /// Cgroup filesystems mounted where rsafe runs (to read limits from).
    pub cgroup_mounts: Vec<Mount>,
    /// `RLIMIT_NPROC` of the reference process: the default a container's limit is compared to.
    pub default_nproc: Option<u64>,
    /// (device, inode) of the host's root directory.
    pub root: Option<(u64, u64)>,
    /// The procfs's `hidepid=` option when it hides other users' processes.
    pub hidepid: Option<String>,
}

impl Host {
    /// Finds the host reference under `proc_root`, given the kernel threads seen while listing.
    pub fn resolve(proc_root: &Path, kernel_threads: &[u32]) -> Result<Host, ProcsError> {
        let ns_of = |pid: u32| Namespaces::read(&proc_root.join(pid.to_string()), pid);
        let candidates = std::iter::once((1, HostReference::Init)).chain(
            kernel_threads
                .iter()
                .map(|&p| (p, HostReference::KernelThread(p))),
        );
        let mut found = None;
        for (pid, reference) in candidates {
            if let Ok(ns) = ns_of(pid) {
                found = Some((pid, reference, ns));
                break;
            }
        }
        let (pid, reference, namespaces) = match found {
            Some(f) => f,
            None => {
                let me = reader_pid(proc_root)?;
                let ns = ns_of(me).map_err(|e| ProcsError::HostReference {
                    proc_root: proc_root.to_path_buf(),
                    reason: e.to_string(),
                })?;
                (me, HostReference::Reader(me), ns)
            }
        };
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
        let mounts = HostMounts {
            mounts: mountinfo::parse(&read(proc_root.join(pid.to_string()).join("mountinfo"))),
        };
        let own_mounts = mountinfo::parse(&read(proc_root.join("self/mountinfo")));
        let hidepid = own_mounts
            .iter()
            .rev()
            .find(|m| m.fs_type == "proc" && Path::new(&m.mount_point) == proc_root)
            .and_then(|m| hidepid_of(&m.super_options));
        let cgroup_mounts = own_mounts
            .into_iter()
            .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
            .collect();
        let default_nproc = read_limit(
            &read(proc_root.join(pid.to_string()).join("limits")),
            "Max processes",
        )
        .flatten();
        let root = root_of(proc_root, pid);
        Ok(Host {
            root,
            hidepid,
            proc_root: proc_root.to_path_buf(),
            reference,
            reference_pid: pid,
            namespaces,
            mounts,
            cgroup_mounts,
            default_nproc,
        })
    }

    /// Whether a process's root directory is the host's (`None`: cannot tell).
    pub fn same_root(&self, pid: u32) -> Option<bool> {
        Some(root_of(&self.proc_root, pid)? == self.root?)
    }

    /// Whether a process is in the host's namespace of `kind`.
    pub fn shares(&self, process: &Process, kind: NsKind) -> bool {
        process
            .namespaces
            .is_some_and(|ns| ns.same(&self.namespaces, kind))
    }
}

/// The `hidepid=` value of procfs options when it hides processes (`1`/`noaccess` only hides
/// their files, which shows as unreadable; `2`/`invisible` and `4`/`ptraceable` hide them).
fn hidepid_of(options: &str) -> Option<String> {
    options.split(',').find_map(|o| {
        let v = o.strip_prefix("hidepid=")?;
        matches!(v, "2" | "invisible" | "4" | "ptraceable").then(|| v.to_owned())
    })
}

/// (device, inode) of process `pid`'s root directory.
fn root_of(proc_root: &Path, pid: u32) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(proc_root.join(pid.to_string()).join("root")).ok()?;
    Some((md.dev(), md.ino()))
}

/// rsafe's own pid in this procfs (`/proc/self`).
fn reader_pid(proc_root: &Path) -> Result<u32, ProcsError> {
    let link = proc_root.join("self");
    std::fs::read_link(&link)
        .ok()
        .and_then(|t| t.to_str()?.parse().ok())
        .ok_or_else(|| ProcsError::HostReference {
            proc_root: proc_root.to_path_buf(),
            reason: format!("{} is not a link to a pid", link.display()),
        })
}

/// The soft limit named `name` in a `/proc/PID/limits` text: `Some(None)` for unlimited.
pub fn read_limit(limits: &str, name: &str) -> Option<Option<u64>> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    let soft = line[name.len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        Some(None)
    } else {
        soft.parse().ok().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_file() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             96365                96365                processes \n\
                    Max address space         unlimited            unlimited            bytes     \n";
        assert_eq!(read_limit(text, "Max processes"), Some(Some(96365)));
        assert_eq!(read_limit(text, "Max address space"), Some(None));
        assert_eq!(read_limit(text, "Max open files"), None);
    }

    #[test]
    fn hidepid_options() {
        assert_eq!(
            hidepid_of("rw,hidepid=invisible").as_deref(),
            Some("invisible")
        );
        assert_eq!(hidepid_of("rw,hidepid=2,gid=4").as_deref(), Some("2"));
        assert_eq!(hidepid_of("rw,hidepid=noaccess"), None);
        assert_eq!(hidepid_of("rw"), None);
    }

    #[test]
    fn resolves_on_this_machine() {
        let host = Host::resolve(Path::new("/proc"), &[2]).unwrap();
        let me = Process::read(Path::new("/proc"), std::process::id()).unwrap();
        // In this procfs's pid namespace exactly when rsafe's pid there is its only pid.
        assert_eq!(host.shares(&me, NsKind::Pid), me.nspid.len() == 1);
        assert!(!host.mounts.mounts.is_empty());
    }
}
