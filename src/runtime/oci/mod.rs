//! rsafe as an OCI runtime: runc's command line (`rsafe-runtime create|start|state|kill|
//! delete|list|features|spec`), so that podman (`--runtime`), containerd (`BinaryName` of the
//! runc shim) and through it Kubernetes start containers with rsafe's confinement.
//!
//! ```text
//! caller (conmon, shim)   rsafe-runtime create                 container's first process
//! ─────────────────────   ────────────────────                 ─────────────────────────
//! create --bundle B ID ─▶ config.json → Bundle (floor added)
//!                         <root>/ID/, start.sock listening
//!                         join namespaces given by path
//!                         cgroup at cgroupsPath, limits
//!                         record (pid 0: a kill here leaves
//!                           nothing `delete` cannot find)
//!                         clone(NEWUSER|NEWNS|own kinds) ────▶ waits for BundleGo
//!                         uid_map/gid_map, cgroup.procs,
//!                         oom_score_adj, joined sysctls
//!                         record (pid), createRuntime and
//!                           prestart hooks
//!                         [root] rootfs (or rsafe's layers:
//!                           [`layered`]) + bind trees,
//!                           id-mapped if rsafe added userns
//!                         BundleGo [+ trees, console] ───────▶ root of the userns, hostname,
//!                                                              lo up, cgroupns, sysctls,
//!                                                              rootfs + mounts + devices,
//!                                                              masked paths,
//!                                                              createContainer hooks, pivot_root,
//!                                                              console pty → console socket
//!                         Seccomp{filter} ───────────────────▶ user, umask, rlimits
//!                                                   ◀───────── Ready (parent-death signal off)
//!                         pid file, record (ready), exit 0     accept() on start.sock (exits
//!                                                              if start.sock is unlinked)
//! start ID ──────────────────────────────── connect, "1" ────▶ startContainer hooks, ack;
//!                         poststart hooks                      caps, no_new_privs,
//!                                                              landlock, seccomp, execve
//! (reaps the workload)
//! delete ID ──────────────▶ SIGKILL if not stopped, cgroup removed, poststop hooks, <root>/ID gone
//! ```
//!
//! Why this shape:
//! - No rsafe process stays behind: the workload is the container's first process, and the
//!   caller (a subreaper) reaps it, as runc's and crun's callers expect. The one exception is
//!   a named policy that reports its denials: its [`reporter`] answers the workload's
//!   notifications, a sibling of the container that ends with it.
//! - `start` meets the waiting process on a socket rather than runc's FIFO: the listening
//!   socket is inherited, so the container's root (an unprivileged host id) needs no access
//!   to the state directory, and the socket's existence is the `created` status.
//! - Namespaces given by path (a pod's network) are joined by the caller before the clone:
//!   they belong to another user namespace, which the container's own could not enter. A
//!   user namespace given by path (a `hostUsers: false` pod) is joined by a fork of the
//!   caller, which makes the container's first process there ([`userns`]).
//! - The floor of [`bundle`]: always a user namespace (container root is never host root),
//!   no_new_privs, a seccomp filter, rsafe's landlock scoping and masked paths.

pub mod bundle;
pub mod cgroup;
pub(crate) mod child;
pub mod create;
pub mod events;
pub mod exec;
pub mod from_spec;
pub mod hooks;
pub mod layered;
pub mod lifecycle;
mod notify;
pub mod overlay;
pub mod reporter;
pub mod state;
pub mod userns;

use bundle::NsKind;

/// Why an OCI runtime command failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    #[error(transparent)]
    StateDir(#[from] state::StateError),
    #[error("{0}")]
    State(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("cgroup: {0}")]
    Cgroup(#[from] crate::runtime::cgroups::CgroupError),
    #[error(transparent)]
    IdMap(#[from] crate::runtime::idmap::IdMapError),
    #[error(transparent)]
    Namespace(#[from] crate::runtime::namespaces::NamespaceError),
    #[error(transparent)]
    Channel(#[from] crate::runtime::channel::ChannelError),
    #[error(transparent)]
    Seccomp(#[from] crate::runtime::seccomp::SeccompError),
    #[error("hook failed: {0}")]
    Hook(String),
    #[error("container setup failed: {0}")]
    Container(String),
    /// `exec`'s process could not start; `code` is 125, 126 (cannot execute) or 127.
    #[error("{message}")]
    Exec { code: i32, message: String },
}

/// Whether this process is root of the host's own user namespace (not root of a nested one,
/// as under rootless podman): only then may it use the host's cgroups and `/run`.
pub fn host_root() -> bool {
    nix::unistd::geteuid().is_root() && crate::runtime::idmap::nested_identity().is_none()
}

/// The namespace a sysctl belongs to, for the namespaced ones a container may set (runc's
/// list); `None` for the host's own.
pub fn sysctl_namespace(key: &str) -> Option<NsKind> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return Some(NsKind::Ipc);
    }
    if key.starts_with("net.") {
        return Some(NsKind::Network);
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return Some(NsKind::Uts);
    }
    None
}

/// The container's seccomp filter: the confinement's profile, with the `floor` profiles
/// stacked on it (rsafe's default, a named policy's), compiled (or read from the cache beside the runtime's state) for its capabilities.
pub fn compile_filter(
    state_root: &std::path::Path,
    confinement: &crate::runtime::spec::Confinement,
    floor: &[&crate::runtime::seccomp::SeccompProfile],
) -> Result<crate::runtime::seccomp::CompiledFilter, OciError> {
    let cache = crate::runtime::seccomp::FilterCache::in_store(&state_root.join(".cache"));
    let (mut filter, _) = cache.get_or_compile(&confinement.seccomp, &confinement.capabilities)?;
    for profile in floor {
        filter = filter.stacked(cache.get_or_compile(profile, &confinement.capabilities)?.0);
    }
    Ok(filter)
}

/// The id map root's containers get here (container 0-65535 = host 1000000000-…), for tests.
#[cfg(test)]
pub(crate) fn test_root_map() -> crate::runtime::idmap::IdMap {
    use crate::runtime::idmap::{IdMap, IdRange, MapWriter};
    let range = IdRange {
        container: 0,
        host: 1_000_000_000,
        size: 65536,
    };
    IdMap {
        uids: vec![range],
        gids: vec![range],
        writer: MapWriter::Direct,
        setgroups: true,
    }
}

/// What `features` reports: the runtime-spec features document, with rsafe's floor.
pub fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": state::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "noatime",
            "strictatime", "nodiratime", "relatime", "norelatime", "bind", "rbind", "private",
            "rprivate", "slave", "rslave", "unbindable", "runbindable", "rro", "rnosuid",
            "rnodev", "rnoexec"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": ::caps::all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                    "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.rsafe.floor.userns": "always (added with id-mapped root and bind mounts when the bundle has none; one given by path is joined if it is below the runtime's own, never the host's initial one, and none of its uids is host root through the runtime's own uid_map)",
            "io.github.rsafe.events": "runc's: a stream of stats every --interval and oom events (v1 cgroup.event_control, v2 memory.events) until the container stops; --stats for one reading",
            "io.github.rsafe.checkpoint": "checkpoint and restore are refused: CRIU saves seccomp filters but not a landlock domain, so a restored container would lose its landlock rules",
            "io.github.rsafe.floor.no_new_privs": "always",
            "io.github.rsafe.floor.seccomp": "rsafe's default profile when the bundle has none (unless rsafe.policy=permissive)",
            "io.github.rsafe.floor.landlock": "signal and abstract-socket scoping, rsafe's masked paths",
            "io.github.rsafe.seccomp.notify": "SCMP_ACT_NOTIFY rules without argument conditions; the listener goes to linux.seccomp.listenerPath before the workload starts, and an exec'd process's before it runs",
            "io.github.rsafe.policy.annotation": bundle::POLICY_ANNOTATION,
            "io.github.rsafe.policy.values": "default; permissive (no seccomp floor for a bundle without a profile); NAME: the policy NAME.toml from /etc/rsafe/policies (rsafe-runtime --policy-dir), never a path, which only narrows the bundle: capabilities intersected, its seccomp profile stacked, its landlock rules added"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaced_sysctls_are_a_containers() {
        assert_eq!(
            sysctl_namespace("net.ipv4.ping_group_range"),
            Some(NsKind::Network)
        );
        assert_eq!(sysctl_namespace("kernel.shmmax"), Some(NsKind::Ipc));
        assert_eq!(sysctl_namespace("fs.mqueue.msg_max"), Some(NsKind::Ipc));
        assert_eq!(sysctl_namespace("kernel.domainname"), Some(NsKind::Uts));
        assert_eq!(sysctl_namespace("kernel.core_pattern"), None);
        assert_eq!(sysctl_namespace("vm.overcommit_memory"), None);
    }
}
