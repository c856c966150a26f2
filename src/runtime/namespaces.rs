//! The namespaces a container gets, and the small steps done inside them.
//!
//! The container's first process is created by one `clone` with `CLONE_NEWUSER` and the other
//! namespaces at once, so every one of them is owned by the new user namespace (root in it may
//! mount, set the hostname, configure its network) and the process is pid 1 of its own pid
//! namespace. Two namespaces come later, from inside: the cgroup namespace once the parent has
//! moved the process into its cgroup (the namespace's root is the cgroup at the time of
//! `unshare`), and the time namespace, which `clone(2)` cannot create and which only the
//! process's future children enter.

use std::io;

/// What failed while entering or configuring a namespace.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("cannot create a user namespace: {source}{hint}")]
    UserNamespace { source: io::Error, hint: String },
    #[error("{what}: {source}")]
    Step {
        what: &'static str,
        source: io::Error,
    },
}

fn step(what: &'static str) -> impl FnOnce(nix::Error) -> NamespaceError {
    move |e| NamespaceError::Step {
        what,
        source: e.into(),
    }
}

/// Which namespaces a container gets beyond the ones it always gets (user, mount, pid, ipc,
/// uts, cgroup, and time where the kernel has it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Namespaces {
    /// A network namespace of its own (`--network none`), or the host's (`--network host`).
    pub network: bool,
}

impl Namespaces {
    /// The `clone(2)` flags for the container's first process. Not the network namespace:
    /// the child makes that itself (see `container_main`).
    pub fn clone_flags() -> libc::c_int {
        libc::CLONE_NEWUSER
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS
    }

    /// The namespaces' names, for `--verbose`.
    pub fn names(&self, time: bool) -> Vec<&'static str> {
        let mut names = vec!["user", "mount", "pid", "ipc", "uts", "cgroup"];
        if self.network {
            names.push("net");
        }
        if time {
            names.push("time");
        }
        names
    }
}

/// Explains a failed `clone(CLONE_NEWUSER)`: which host setting forbids it and how to allow it.
pub fn userns_error(source: io::Error) -> NamespaceError {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let hint = if source.raw_os_error() == Some(libc::EINVAL) {
        " (the process has more than one thread)".to_string()
    } else if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1")
    {
        " (AppArmor restricts unprivileged user namespaces: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0)".to_string()
    } else if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        " (disabled by sysctl: sysctl -w kernel.unprivileged_userns_clone=1)".to_string()
    } else if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        " (disabled by sysctl: sysctl -w user.max_user_namespaces=15000)".to_string()
    } else {
        String::new()
    };
    NamespaceError::UserNamespace { source, hint }
}

/// Enters a new cgroup namespace rooted at the current cgroup.
pub fn enter_cgroup_namespace() -> Result<(), NamespaceError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        .map_err(step("unshare cgroup namespace"))
}

/// Creates a time namespace for this process's future children; `false` when the kernel has
/// none (before 5.6).
pub fn time_namespace_for_children() -> Result<bool, NamespaceError> {
    match nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
        libc::CLONE_NEWTIME,
    )) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EINVAL) => Ok(false),
        Err(e) => Err(step("unshare time namespace")(e)),
    }
}

/// Gives the calling process a network namespace of its own, with only a loopback interface
/// (down until [`loopback_up`]).
pub fn unshare_network() -> Result<(), NamespaceError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(step("unshare network namespace"))
}

/// Whether the kernel has time namespaces (Linux 5.6+).
pub fn time_supported() -> bool {
    std::path::Path::new("/proc/self/ns/time").exists()
}

/// Moves this process itself into the time namespace made for its children (for `--init=false`,
/// where the workload is this process).
pub fn join_time_namespace_for_children() -> Result<(), NamespaceError> {
    let ns = std::fs::File::open("/proc/self/ns/time_for_children").map_err(|source| {
        NamespaceError::Step {
            what: "open /proc/self/ns/time_for_children",
            source,
        }
    })?;
    nix::sched::setns(
        ns,
        nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    )
    .map_err(step("enter time namespace"))
}

/// Sets the UTS namespace's hostname.
pub fn set_hostname(name: &str) -> Result<(), NamespaceError> {
    nix::unistd::sethostname(name).map_err(step("set hostname"))
}

/// Brings up loopback in a new network namespace: the only interface the container has.
pub fn loopback_up() -> Result<(), NamespaceError> {
    super::sys::loopback_up().map_err(|source| NamespaceError::Step {
        what: "bring up loopback",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_names() {
        let none = Namespaces { network: true };
        assert_ne!(Namespaces::clone_flags() & libc::CLONE_NEWUSER, 0);
        // The container's first process makes its network namespace itself.
        assert_eq!(Namespaces::clone_flags() & libc::CLONE_NEWNET, 0);
        let host = Namespaces { network: false };
        assert!(none.names(true).contains(&"time"));
        assert!(!host.names(false).contains(&"net"));
    }

    #[test]
    fn multithreaded_hint() {
        let e = userns_error(io::Error::from_raw_os_error(libc::EINVAL));
        assert!(e.to_string().contains("more than one thread"));
    }
}
