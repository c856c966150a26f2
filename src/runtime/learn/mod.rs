//! Least privilege learned from a run (`rsafe run --learn OUT.toml`): the workload runs under
//! its normal policy, never a weaker one, while rsafe records what it actually used, and
//! writes a policy (plus a Docker-format seccomp profile) that allows only that.
//!
//! - [`filter`]: the learning seccomp filter the workload stacks last, notifying rsafe of
//!   every syscall its policy allows (the policy's denials win, so nothing is weakened);
//! - [`supervisor`]: rsafe's thread answering those notifications and recording each one;
//!   under a learned policy (`report_denials`), answering its denials with EPERM and naming
//!   them on stderr;
//! - [`paths`]: under a learned policy, which file calls landlock will refuse, so that they
//!   are named on stderr too (the call itself continues: landlock refuses it);
//! - [`observe`]: what a notification says — the syscall, and for file and socket calls the
//!   path and access or the TCP port, read from the process's memory; the argument classes
//!   a policy can restrict (socket family and type, ioctl request, namespace flags);
//! - [`reduce`]: thousands of paths reduced to a few landlock rules;
//! - [`capabilities`]: which of the policy's capabilities the run gave evidence for;
//! - [`writer`]: the policy TOML and seccomp JSON, merged with an earlier learned file;
//! - [`exec_hook`]: `rsafe exec` into a container being learned, recorded as a run of its own.
//!
//! What the run reports about paths and ports is *advisory*: the workload controls the memory
//! rsafe reads (it may change a path after rsafe read it, TOCTOU), so a lying workload can
//! make its learned policy larger, or miss a rule it then lacks. It can never make any run
//! less confined: the learning run is under its full policy, and the learned policy is
//! enforced by seccomp and landlock in the kernel, not by what rsafe read.

pub mod capabilities;
pub mod exec_hook;
pub mod filter;
pub mod observe;
pub mod paths;
pub mod reduce;
pub mod supervisor;
pub mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

pub use observe::Access;

use crate::runtime::seccomp::args::SocketClass;

use super::cgroups::{Cgroup, Version};

/// More distinct raw paths than this are not kept (a crawler of the whole filesystem): the
/// ones already seen still reduce to rules, and the output says the list was cut.
pub const MAX_PATHS: usize = 200_000;

/// Everything a learning run saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Syscall names the workload made (and its policy allowed).
    pub syscalls: BTreeSet<String>,
    /// Container paths touched, each with every kind of access seen.
    pub paths: BTreeMap<PathBuf, Access>,
    /// Whether [`MAX_PATHS`] was reached.
    pub paths_truncated: bool,
    /// Ports given to `bind` on an AF_INET/AF_INET6 address.
    pub tcp_bind: BTreeSet<u16>,
    /// Ports given to `connect` on an AF_INET/AF_INET6 address.
    pub tcp_connect: BTreeSet<u16>,
    /// `socket(…, SOCK_RAW, …)` or `socket(AF_PACKET, …)`: evidence for CAP_NET_RAW.
    pub raw_socket: bool,
    /// Family and type of each `socket` call.
    pub sockets: BTreeSet<SocketClass>,
    /// Family and type of each `socketpair` call.
    pub socketpairs: BTreeSet<SocketClass>,
    /// `ioctl` requests (their low 32 bits, what the kernel reads).
    pub ioctls: BTreeSet<u32>,
    /// CLONE_NEW* flags given to clone, clone3 or unshare.
    pub namespaces: u64,
    /// A `kill`-family call the kernel would allow only with CAP_KILL: aimed at a process whose
    /// real and saved uid are neither of the sender's (or one whose ids cannot be read).
    pub signalled_others: bool,
    /// Notifications answered.
    pub notifications: u64,
    /// Peak memory of the container's cgroup, in bytes (None: no memory cgroup here).
    pub peak_memory: Option<u64>,
    /// Peak number of tasks of the container's cgroup (None: no pids cgroup here).
    pub peak_pids: Option<u64>,
    /// What each `rsafe exec` into the container used, with its label (`exec NAME: CMD`), in
    /// the order they came ([`exec_hook`]); each is written as a run of its own.
    pub execs: Vec<(String, Observed)>,
}

/// A shared handle on what a learning run observes: one copy goes into the run, the caller
/// keeps another and reads it when the run has ended.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Observed>>);

impl Recorder {
    /// A recorder with nothing seen yet.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// The observations so far (the supervisor never panics holding the lock, but a poisoned
    /// lock still holds valid data).
    pub fn lock(&self) -> MutexGuard<'_, Observed> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of everything observed.
    pub fn snapshot(&self) -> Observed {
        self.lock().clone()
    }
}

/// Reads the container's peak memory and task count from its cgroup into `recorder`: v2
/// `memory.peak`, v1 `memory.max_usage_in_bytes`; `pids.peak` (both versions, Linux 6.13+),
/// else `pids.current` at the end (a low bound). Call after the container ended, before its
/// cgroup is removed.
pub fn record_peaks(cg: &Cgroup, recorder: &Recorder) {
    let read = |dir: &std::path::Path, file: &str| -> Option<u64> {
        std::fs::read_to_string(dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let mut seen = recorder.lock();
    for (dir, version) in &cg.dirs {
        let memory = match version {
            Version::V2 => read(dir, "memory.peak"),
            Version::V1 => read(dir, "memory.max_usage_in_bytes"),
        };
        if let Some(m) = memory.filter(|m| *m > 0) {
            seen.peak_memory = Some(seen.peak_memory.unwrap_or(0).max(m));
        }
        if let Some(p) = read(dir, "pids.peak").or_else(|| read(dir, "pids.current")) {
            seen.peak_pids = Some(seen.peak_pids.unwrap_or(0).max(p));
        }
    }
}

impl Observed {
    /// Records one access to `path`.
    pub fn add_path(&mut self, path: PathBuf, access: Access) {
        if let Some(seen) = self.paths.get_mut(&path) {
            *seen = seen.union(access);
        } else if self.paths.len() < MAX_PATHS {
            self.paths.insert(path, access);
        } else {
            self.paths_truncated = true;
        }
    }
}
