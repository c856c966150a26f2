//! The rules of the running-container audit: one [`Rule`] constant per check, so findings are
//! built from them and `rsafe rules` prints exactly what the checks report. Leaked secrets use
//! the secret engine's rule ids (`secret.…`) instead.

use crate::audit::Rule;
use crate::audit::finding::Severity;

pub const ROOT: Rule = Rule {
    id: "container.root",
    severity: Severity::High,
    title: "Container processes run as the host's root user",
    description: "A process of the container has uid 0 in the host's user namespace: either the \
        container has no user namespace, or its uid map sends a container uid to host uid 0. \
        Anything that escapes the container's mounts (a bind mount, a leaked descriptor, a \
        kernel bug) then acts as root on the host and owns root's files.",
    remediation: "Run the container in a user namespace that maps its users to unprivileged host \
        ids (rootless runtimes, docker --userns-remap, podman --userns=auto, rsafe run), and \
        run the workload as a non-root user.",
};

pub const CAP_SYS_ADMIN: Rule = Rule {
    id: "container.cap-sys-admin",
    severity: Severity::Critical,
    title: "A container process holds CAP_SYS_ADMIN over the host",
    description: "CAP_SYS_ADMIN in the host's user namespace allows mounting filesystems, \
        cgroup release agents, BPF and dozens of other operations that break out of a \
        container. For a root process the bounding set counts too: any execve gives it back.",
    remediation: "Drop CAP_SYS_ADMIN (docker --cap-drop SYS_ADMIN, no --privileged); grant the \
        narrower capability the workload needs, inside a user namespace.",
};

pub const CAPABILITIES: Rule = Rule {
    id: "container.capabilities",
    severity: Severity::High,
    title: "Capabilities beyond Docker's default set",
    description: "A process in the host's user namespace holds capabilities Docker does not grant \
        by default (e.g. CAP_SYS_PTRACE, CAP_NET_ADMIN, CAP_SYS_MODULE, CAP_DAC_READ_SEARCH). \
        Each one is kernel attack surface and several are known escape routes.",
    remediation: "Drop every capability the workload does not need (--cap-drop ALL, then \
        --cap-add only what is required), and prefer a user namespace.",
};

pub const BOUNDING_SET: Rule = Rule {
    id: "container.bounding-set",
    severity: Severity::Medium,
    title: "A non-root process can regain capabilities beyond Docker's default set",
    description: "The process holds no such capability now, but its bounding set still allows \
        them and no_new_privs is off, so executing a setuid-root or file-capability binary \
        grants them.",
    remediation: "Limit the bounding set to what the workload needs (--cap-drop ALL) and set \
        no_new_privs (--security-opt no-new-privileges).",
};

pub const NO_NEW_PRIVS: Rule = Rule {
    id: "container.no-new-privs",
    severity: Severity::Low,
    title: "no_new_privs is not set",
    description: "Without no_new_privs, executing a setuid or file-capability binary raises the \
        process's privileges. Medium for a non-root process in the host's user namespace \
        (it could become host root through a setuid binary); low otherwise.",
    remediation: "Start the container with no_new_privs (docker --security-opt \
        no-new-privileges, OCI process.noNewPrivileges: true).",
};

pub const SECCOMP: Rule = Rule {
    id: "container.seccomp-disabled",
    severity: Severity::High,
    title: "No seccomp filter",
    description: "The process runs without a seccomp filter, so every system call of the kernel \
        is reachable from the container (keyctl, bpf, userfaultfd, io_uring, …). High in the \
        host's user namespace, medium inside a user namespace of its own.",
    remediation: "Run with a seccomp profile (Docker's default, or rsafe's); never \
        --security-opt seccomp=unconfined.",
};

/// The namespace rules, one per namespace type, so each can be gated or ignored on its own.
pub const HOST_PID_NS: Rule = Rule {
    id: "container.host-namespace.pid",
    severity: Severity::High,
    title: "The container shares the host's pid namespace",
    description: "It sees every host process, can signal processes of its own uid, and with \
        ptrace rights can read their memory and environment (and /proc/PID/root of them).",
    remediation: "Give the container its own pid namespace (no --pid=host).",
};

pub const HOST_NET_NS: Rule = Rule {
    id: "container.host-namespace.net",
    severity: Severity::High,
    title: "The container shares the host's network namespace",
    description: "It can bind host ports, reach services listening on the host's loopback \
        (databases, metadata proxies, runtime APIs) and, with CAP_NET_ADMIN/RAW, sniff or \
        reconfigure the host's network.",
    remediation: "Give the container its own network namespace (no --network=host).",
};

pub const HOST_IPC_NS: Rule = Rule {
    id: "container.host-namespace.ipc",
    severity: Severity::Medium,
    title: "The container shares the host's IPC namespace",
    description: "It can attach to host System V shared memory, semaphores and message queues \
        and POSIX message queues of other programs.",
    remediation: "Give the container its own IPC namespace (no --ipc=host).",
};

pub const HOST_UTS_NS: Rule = Rule {
    id: "container.host-namespace.uts",
    severity: Severity::Low,
    title: "The container shares the host's UTS namespace",
    description: "With CAP_SYS_ADMIN it can change the host's hostname and domain name.",
    remediation: "Give the container its own UTS namespace (no --uts=host).",
};

pub const HOST_MNT_NS: Rule = Rule {
    id: "container.host-namespace.mnt",
    severity: Severity::Critical,
    title: "The container shares the host's mount namespace",
    description: "Its filesystem is the host's: there is no container root filesystem at all.",
    remediation: "Give the container its own mount namespace and root filesystem.",
};

pub const HOST_USER_NS: Rule = Rule {
    id: "container.host-namespace.user",
    severity: Severity::Medium,
    title: "The container has no user namespace",
    description: "Container uids and gids are host uids and gids: container root is host root, \
        and a container user with the uid of a host user owns that user's files.",
    remediation: "Run in a user namespace (rootless runtimes, --userns-remap, --userns=auto).",
};

pub const HOST_CGROUP_NS: Rule = Rule {
    id: "container.host-namespace.cgroup",
    severity: Severity::Low,
    title: "The container shares the host's cgroup namespace",
    description: "It sees the host's cgroup paths (/proc/self/cgroup shows where it sits on the \
        host), which helps an attacker find the container's files on the host.",
    remediation: "Give the container its own cgroup namespace (cgroupns=private).",
};

pub const MOUNT_HOST_ROOT: Rule = Rule {
    id: "container.mount.host-root",
    severity: Severity::Critical,
    title: "The host's root filesystem is mounted in the container",
    description: "The container sees the host's / (like `-v /:/host`, or a container whose root \
        is the host's): every host file its uid may read or write, including /etc/shadow, SSH \
        keys and runtime sockets. Critical read-write, high read-only.",
    remediation: "Mount only the directories the workload needs, read-only where possible.",
};

pub const MOUNT_RUNTIME_SOCKET: Rule = Rule {
    id: "container.mount.runtime-socket",
    severity: Severity::Critical,
    title: "A container runtime's API socket is reachable in the container",
    description: "Whoever can connect to docker.sock, containerd.sock, crio.sock or podman.sock \
        can start a privileged container with the host's / mounted: it is host root.",
    remediation: "Do not mount runtime sockets into containers; use a narrowly scoped API proxy \
        if the workload really needs one.",
};

pub const MOUNT_HOST_PROC_SYS: Rule = Rule {
    id: "container.mount.proc-sys-rw",
    severity: Severity::High,
    title: "The host's /proc or a sysfs is mounted read-write",
    description: "A writable host procfs (/proc/sys, /proc/sysrq-trigger, core_pattern) or \
        sysfs (uevent_helper, device and kernel knobs) lets a privileged container process run \
        code on the host or reconfigure the kernel. A writable sysfs counts only outside a user \
        namespace (inside one, its files belong to an unmapped owner); the host's procfs is \
        medium inside one.",
    remediation: "Mount sysfs read-only and never bind the host's /proc; drop --privileged.",
};

pub const MOUNT_CGROUP_RW: Rule = Rule {
    id: "container.mount.cgroup-rw",
    severity: Severity::High,
    title: "A cgroup filesystem is mounted read-write",
    description: "A writable cgroup v1 hierarchy offers release_agent, the classic container \
        escape; any writable cgroupfs lets the container change its own (and, without a cgroup \
        namespace, other) limits. High for cgroup v1, medium for v2; not reported inside a user \
        namespace of the container's own (the files belong to an unmapped owner, or were \
        delegated on purpose).",
    remediation: "Mount /sys/fs/cgroup read-only (the default without --privileged).",
};

pub const MOUNT_HOST_DEV: Rule = Rule {
    id: "container.mount.host-dev",
    severity: Severity::High,
    title: "The host's /dev is mounted in the container",
    description: "The host's devtmpfs exposes every disk, /dev/mem and /dev/kmsg; a process with \
        the rights to open them reads or rewrites the host's storage. Medium inside a user \
        namespace of the container's own.",
    remediation: "Give the container a minimal /dev and pass single devices explicitly.",
};

pub const DEVICE: Rule = Rule {
    id: "container.device",
    severity: Severity::High,
    title: "A block device or raw memory device is available in the container",
    description: "A disk, partition, loop device, /dev/mem, /dev/kmem, /dev/port or /dev/kmsg in \
        the container's /dev lets a process allowed to open it read or modify host storage or \
        memory below every filesystem permission. Medium inside a user namespace of the \
        container's own.",
    remediation: "Do not pass host block or memory devices (--device, --privileged).",
};

pub const MOUNT_SENSITIVE: Rule = Rule {
    id: "container.mount.sensitive-host-path",
    severity: Severity::High,
    title: "A sensitive host directory is mounted in the container",
    description: "Host /etc, /root, home directories, /boot, system binaries or a container \
        runtime's state (/var/lib/docker, /var/lib/kubelet, …) are visible in the container. \
        High read-write, medium read-only.",
    remediation: "Mount a dedicated directory instead, read-only where possible.",
};

pub const MOUNT_HOST_DIR_RW: Rule = Rule {
    id: "container.mount.host-dir-rw",
    severity: Severity::Medium,
    title: "A host directory is mounted read-write",
    description: "The container can change files the host also uses, and plant symlinks, setuid \
        binaries or device-like files there for host programs to trip over.",
    remediation: "Mount it read-only if the workload only reads it, or use a volume owned by \
        the container's own (mapped) user.",
};

pub const MOUNT_SHARED: Rule = Rule {
    id: "container.mount.shared-propagation",
    severity: Severity::Medium,
    title: "A mount shares propagation with the host",
    description: "The mount is in a shared peer group that also has members on the host: mounts \
        the container makes below it appear on the host, and the host's appear in it.",
    remediation: "Use private or slave propagation (no :rshared / :shared bind options).",
};

pub const MOUNT_SYMLINK_ESCAPE: Rule = Rule {
    id: "container.mount.symlink-escape",
    severity: Severity::Medium,
    title: "A read-write host directory holds symlinks leading outside it",
    description: "Host programs that follow links in this directory (backups, chown -R, log \
        shippers, the runtime itself) end up outside it, wherever the container pointed them.",
    remediation: "Remove the links, and have host tools that touch container volumes refuse to \
        follow symlinks (O_NOFOLLOW, openat2 RESOLVE_BENEATH).",
};

pub const FD_OUTSIDE_ROOT: Rule = Rule {
    id: "container.fd-outside-root",
    severity: Severity::Critical,
    title: "A container process holds a host directory open",
    description: "An open directory descriptor (or the working directory) on a mount that is \
        not part of the container's filesystem view. Relative lookups from it reach the host's \
        filesystem: the CVE-2024-21626 class of escapes.",
    remediation: "Close every inherited descriptor before the workload starts (runtimes do; a \
        launcher script that opens descriptors before unshare/exec must too), and upgrade \
        runc to 1.1.12 or later.",
};

pub const NO_MEMORY_LIMIT: Rule = Rule {
    id: "container.limits.memory",
    severity: Severity::Medium,
    title: "No memory limit",
    description: "Neither the container's cgroup nor any parent limits its memory, so it can \
        push the host into the OOM killer. Low when a per-process RLIMIT_AS stands in.",
    remediation: "Set a memory limit (--memory, resources.limits.memory).",
};

pub const NO_PIDS_LIMIT: Rule = Rule {
    id: "container.limits.pids",
    severity: Severity::Medium,
    title: "No process-count limit",
    description: "Neither the container's cgroup nor any parent limits its number of tasks, so a \
        fork bomb exhausts the host's pid space. Low when RLIMIT_NPROC is set below the host's \
        default.",
    remediation: "Set a pids limit (--pids-limit, podman --pids-limit, pod pid limits).",
};

pub const NOT_INSPECTED: Rule = Rule {
    id: "container.not-inspected",
    severity: Severity::Info,
    title: "Part of the container could not be inspected",
    description: "rsafe was not allowed to read some of these processes' files (their namespaces, \
        environment, descriptors or mounts), so checks depending on them did not run. Run as \
        root to see everything.",
    remediation: "Run the audit as root (or as the user that owns the containers).",
};

/// Every rule, in the order `rsafe rules` lists them.
pub const RULES: &[Rule] = &[
    ROOT,
    CAP_SYS_ADMIN,
    CAPABILITIES,
    BOUNDING_SET,
    NO_NEW_PRIVS,
    SECCOMP,
    HOST_PID_NS,
    HOST_NET_NS,
    HOST_IPC_NS,
    HOST_UTS_NS,
    HOST_MNT_NS,
    HOST_USER_NS,
    HOST_CGROUP_NS,
    MOUNT_HOST_ROOT,
    MOUNT_RUNTIME_SOCKET,
    MOUNT_HOST_PROC_SYS,
    MOUNT_CGROUP_RW,
    MOUNT_HOST_DEV,
    DEVICE,
    MOUNT_SENSITIVE,
    MOUNT_HOST_DIR_RW,
    MOUNT_SHARED,
    MOUNT_SYMLINK_ESCAPE,
    FD_OUTSIDE_ROOT,
    NO_MEMORY_LIMIT,
    NO_PIDS_LIMIT,
    NOT_INSPECTED,
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_namespaced() {
        let mut seen = HashSet::new();
        for r in RULES {
            assert!(r.id.starts_with("container."), "{}", r.id);
            assert!(seen.insert(r.id), "duplicate {}", r.id);
            assert!(!r.title.is_empty() && !r.description.is_empty() && !r.remediation.is_empty());
        }
    }
}
