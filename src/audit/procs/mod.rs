//! Auditing the containers running on a host, from `/proc` alone: no daemon, no runtime API.
//!
//! A container is, to the kernel, a group of processes in namespaces and a cgroup of their
//! own, with a root filesystem assembled from mounts. All of that is visible in procfs to a
//! sufficiently privileged reader, whatever runtime made it:
//!
//! - [`discover`] walks `/proc`, groups processes into containers (by cgroup name, then pid
//!   namespace, then other namespaces) and names them from runtimes' state files;
//! - [`audit_containers`] checks each container's processes (credentials, capabilities,
//!   `no_new_privs`, seccomp, environment, open descriptors), namespaces, mounts and cgroup
//!   limits against what a safely confined container looks like, and reports [`Finding`]s with
//!   rule ids `container.*` ([`rules::RULES`]) plus the secret engine's ids for leaked secrets.
//!
//! "The host" is the initial namespaces of the procfs read ([`host`]); processes the caller
//! may not inspect are listed in [`Discovery::inaccessible`] and become a finding of their own
//! ([`inaccessible_findings`]), never silently dropped.
#![forbid(unsafe_code)]

pub mod checks;
pub mod discover;
pub mod host;
pub mod mountinfo;
pub mod process;
pub mod rules;
pub mod runtime;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use checks::audit_containers;
pub use discover::{DiscoverOptions, discover_with};
pub use host::{Host, HostReference};
pub use process::Process;
pub use rules::RULES;
pub use runtime::Runtime;

use crate::audit::finding::{Evidence, Finding, Location};
use crate::audit::secrets::SecretScanner;

/// What can go wrong finding containers. Each prints as one line naming the path or target.
#[derive(Debug, thiserror::Error)]
pub enum ProcsError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot tell the host's namespaces: {reason}", proc_root.display())]
    HostReference { proc_root: PathBuf, reason: String },
    #[error("no process {0}")]
    NoSuchProcess(u32),
    #[error("process {0} is not in a container (it shares all of the host's namespaces)")]
    NotInContainer(u32),
    #[error("process {pid} cannot be inspected: {reason}")]
    Inaccessible { pid: u32, reason: String },
    #[error("no running container {0:?} (see rsafe ps)")]
    NoSuchContainer(String),
    #[error("{query:?} names several containers: {}", candidates.join(", "))]
    Ambiguous {
        query: String,
        candidates: Vec<String>,
    },
}

/// A running container: the processes that make it up and what is known about who made it.
#[derive(Debug, Clone)]
pub struct Container {
    /// The runtime's id (docker's 64-hex id, runc's container id, rsafe's id), or a made-up
    /// `pidns-<inode>` / `mntns-<inode>` for bare namespaces.
    pub id: String,
    pub name: Option<String>,
    pub runtime: Runtime,
    /// Every process of the container, ascending.
    pub pids: Vec<u32>,
    /// Pid 1 of the container's pid namespace, or its oldest process.
    pub init_pid: u32,
    pub image: Option<String>,
    /// The user the workload runs as inside the container (name from its `/etc/passwd`, else
    /// the number); `None` when its uid has no mapping the reader can see.
    pub user: Option<String>,
    /// That user's uid inside the container.
    pub uid: Option<u32>,
    /// The same user as the host sees it: what matters for an escape.
    pub host_uid: u32,
    /// The root filesystem on the host, when a state file says.
    pub rootfs: Option<PathBuf>,
    /// The Kubernetes pod (`namespace/name`, or its uid from the cgroup).
    pub pod: Option<String>,
    /// The runtime's own pid 1 (rsafe's init, bubblewrap's monitor) when it is not the
    /// workload: the privilege checks judge the workload, not the supervisor.
    pub supervisor: Option<u32>,
    /// The processes, in the order of `pids`.
    pub processes: Vec<Process>,
    pub(crate) host: Arc<Host>,
}

impl Container {
    /// The id as `ps` shows it: 12 characters of a long hex id, other ids whole.
    pub fn short_id(&self) -> &str {
        if runtime::is_container_id(&self.id) {
            &self.id[..12]
        } else {
            &self.id
        }
    }

    /// How findings name the container: its name, else its short id.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) if n != &self.id => n.clone(),
            _ => self.short_id().to_owned(),
        }
    }

    /// The container's first process.
    pub fn init(&self) -> Option<&Process> {
        self.process(self.init_pid)
    }

    /// The workload's first process: the init, unless that is the runtime's supervisor; then
    /// the oldest other process.
    pub fn workload(&self) -> Option<&Process> {
        discover::workload_of(&self.processes, self.init_pid, self.supervisor)
    }

    /// One of its processes.
    pub fn process(&self, pid: u32) -> Option<&Process> {
        self.processes.iter().find(|p| p.pid == pid)
    }

    /// The host this container was found on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// A location in this container.
    pub fn location(&self, pid: Option<u32>, detail: Option<String>) -> Location {
        Location::Container {
            container: self.label(),
            pid,
            detail,
        }
    }
}

/// Everything found on a host.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub containers: Vec<Container>,
    /// Processes that could not be inspected, with the reason (usually: another user's, and
    /// rsafe is not root).
    pub inaccessible: Vec<(u32, String)>,
    /// Which process stood for the host's namespaces.
    pub host: HostReference,
    /// The procfs read.
    pub proc_root: PathBuf,
    /// Why other users' processes may be missing altogether: the procfs hides them
    /// (`hidepid=2`), so they are not even listed as inaccessible.
    pub hidden: Option<String>,
}

/// Finds every container visible in `proc_root`, with the default state locations.
pub fn discover(proc_root: &Path) -> Result<Discovery, ProcsError> {
    discover_with(&DiscoverOptions::new(proc_root))
}

/// What to audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every container on the host (`--running`).
    All,
    /// The container process `pid` belongs to (`pid:N`).
    Pid(u32),
    /// A container by name, id or unique id prefix (`container:NAME`).
    Container(String),
}

impl Target {
    /// Parses `pid:N` and `container:NAME`; `None` for anything else (an image reference).
    pub fn parse(text: &str) -> Option<Target> {
        if let Some(pid) = text.strip_prefix("pid:") {
            return pid.parse().ok().map(Target::Pid);
        }
        text.strip_prefix("container:")
            .filter(|n| !n.is_empty())
            .map(|n| Target::Container(n.to_owned()))
    }
}

/// The containers `target` names.
pub fn select(discovery: &Discovery, target: &Target) -> Result<Vec<Container>, ProcsError> {
    match target {
        Target::All => Ok(discovery.containers.clone()),
        Target::Pid(pid) => {
            if let Some(c) = discovery.containers.iter().find(|c| c.pids.contains(pid)) {
                return Ok(vec![c.clone()]);
            }
            if let Some((_, reason)) = discovery.inaccessible.iter().find(|(p, _)| p == pid) {
                return Err(ProcsError::Inaccessible {
                    pid: *pid,
                    reason: reason.clone(),
                });
            }
            if discovery.proc_root.join(pid.to_string()).exists() {
                Err(ProcsError::NotInContainer(*pid))
            } else {
                Err(ProcsError::NoSuchProcess(*pid))
            }
        }
        Target::Container(query) => {
            let exact: Vec<&Container> = discovery
                .containers
                .iter()
                .filter(|c| &c.id == query || c.name.as_deref() == Some(query.as_str()))
                .collect();
            let matches = if exact.is_empty() {
                discovery
                    .containers
                    .iter()
                    .filter(|c| c.id.starts_with(query.as_str()))
                    .collect()
            } else {
                exact
            };
            match matches.as_slice() {
                [] => Err(ProcsError::NoSuchContainer(query.clone())),
                [one] => Ok(vec![(*one).clone()]),
                many => Err(ProcsError::Ambiguous {
                    query: query.clone(),
                    candidates: many.iter().map(|c| c.short_id().to_owned()).collect(),
                }),
            }
        }
    }
}

/// What an audit of running containers found.
#[derive(Debug, Clone)]
pub struct RunningAudit {
    /// The containers audited.
    pub containers: Vec<Container>,
    /// Their findings, most severe first; for [`Target::All`], plus one
    /// `container.not-inspected` finding for the processes that could not be inspected.
    pub findings: Vec<Finding>,
    /// Which process stood for the host's namespaces.
    pub host: HostReference,
}

/// The whole running-container audit in one call, as `rsafe audit --running`, `pid:N` and
/// `container:NAME` need it: discover, select, check.
pub fn audit_running(
    opts: &DiscoverOptions,
    target: &Target,
    scanner: &SecretScanner,
) -> Result<RunningAudit, ProcsError> {
    let discovery = discover_with(opts)?;
    let containers = select(&discovery, target)?;
    let mut findings = audit_containers(&containers, scanner);
    if *target == Target::All {
        findings.extend(inaccessible_findings(&discovery));
    }
    Ok(RunningAudit {
        containers,
        findings,
        host: discovery.host,
    })
}

/// One finding for the processes that could not be inspected, so a report says what it could
/// not see. Empty when everything was readable.
pub fn inaccessible_findings(discovery: &Discovery) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(hidden) = &discovery.hidden {
        out.push(rules::NOT_INSPECTED.finding(
            Location::Container {
                container: "(unknown)".into(),
                pid: None,
                detail: Some("hidden processes".into()),
            },
            Some(Evidence::plain(hidden.clone())),
        ));
    }
    if discovery.inaccessible.is_empty() {
        return out;
    }
    let n = discovery.inaccessible.len();
    let shown: Vec<String> = discovery
        .inaccessible
        .iter()
        .take(8)
        .map(|(pid, _)| pid.to_string())
        .collect();
    let more = if n > shown.len() { ", …" } else { "" };
    let (first_pid, first_reason) = &discovery.inaccessible[0];
    out.push(rules::NOT_INSPECTED.finding(
        Location::Container {
            container: "(unknown)".into(),
            pid: Some(*first_pid),
            detail: Some(format!("{n} processes")),
        },
        Some(Evidence::plain(format!(
            "pids {}{more}: {first_reason}",
            shown.join(", ")
        ))),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(Target::parse("pid:4242"), Some(Target::Pid(4242)));
        assert_eq!(
            Target::parse("container:web"),
            Some(Target::Container("web".into()))
        );
        assert_eq!(Target::parse("pid:x"), None);
        assert_eq!(Target::parse("container:"), None);
        assert_eq!(Target::parse("busybox:latest"), None);
    }
}
