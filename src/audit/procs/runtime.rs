//! Which runtime started a container, told from the cgroup it lives in.
//!
//! Container managers name a container's cgroup after it, and the names are stable enough to
//! recognise without asking any daemon:
//!
//! ```text
//! /system.slice/docker-<id>.scope            docker, systemd driver
//! /docker/<id>                               docker, cgroupfs driver
//! /system.slice/cri-containerd-<id>.scope    containerd (CRI), systemd driver
//! /<namespace>/<id>                          containerd, cgroupfs driver (k8s.io, default, …)
//! /machine.slice/libpod-<id>.scope           podman (conmon sits in libpod-conmon-<id>: not it)
//! /libpod_parent/libpod-<id>                 podman, cgroupfs driver
//! …/crio-<id>.scope                          CRI-O (crio-conmon-<id> is the monitor)
//! /lxc.payload.<name>, /lxc/<name>           LXC (lxc.monitor.<name> is the monitor)
//! …/rsafe/<id>                               rsafe run
//! /kubepods[.slice]/…/pod<uid>/<id>          a Kubernetes pod's container, any of the above
//! ```
//!
//! runc, crun, bubblewrap and `unshare` use no recognisable name by default (nor does rsafe
//! when it has no cgroup to use); those are found from their state files ([`super::state`]) or
//! their processes.

use std::fmt;

use serde::Serialize;

/// What started a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// Isolated by namespaces, and nothing tells what made them.
    Unknown,
    /// Namespaces made by util-linux `unshare(1)`.
    Unshare,
    Bwrap,
    Runc,
    Crun,
    Rsafe,
    Lxc,
    Containerd,
    CriO,
    Podman,
    Docker,
    Kubernetes,
}

impl Runtime {
    /// The name `rsafe ps` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Rsafe => "rsafe",
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Runc => "runc",
            Runtime::Crun => "crun",
            Runtime::Lxc => "lxc",
            Runtime::Kubernetes => "kubernetes",
            Runtime::Bwrap => "bwrap",
            Runtime::Unshare => "unshare",
            Runtime::Unknown => "unknown",
        }
    }

    /// How much a runtime says about a container: a manager (docker, podman, kubernetes) over
    /// the low-level runtime it drives (runc, crun) over bare namespaces. When two sources name
    /// a container, the more telling one wins (the declaration order of the enum).
    pub fn rank(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container recognised from a cgroup path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMatch {
    pub runtime: Runtime,
    pub id: String,
    /// The Kubernetes pod uid, for a pod's container.
    pub pod: Option<String>,
}

/// Recognises the container a cgroup path belongs to, if any.
pub fn from_cgroup_path(path: &str) -> Option<CgroupMatch> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let kube = parts.iter().any(|p| p.starts_with("kubepods"));
    let pod = parts.iter().find_map(|p| pod_uid(p));
    for (i, part) in parts.iter().enumerate() {
        let parent = i.checked_sub(1).map(|j| parts[j]);
        if let Some((runtime, id)) = container_component(part, parent, i, parts.len()) {
            return Some(CgroupMatch {
                runtime: if kube { Runtime::Kubernetes } else { runtime },
                id,
                pod,
            });
        }
    }
    None
}

/// A path component that names a container, given its parent component and its depth.
fn container_component(
    part: &str,
    parent: Option<&str>,
    depth: usize,
    len: usize,
) -> Option<(Runtime, String)> {
    let scoped = |prefix: &str| {
        part.strip_prefix(prefix)
            .map(|rest| rest.strip_suffix(".scope").unwrap_or(rest))
            .filter(|id| is_container_id(id))
            .map(str::to_owned)
    };
    if let Some(id) = scoped("docker-") {
        return Some((Runtime::Docker, id));
    }
    if let Some(id) = scoped("cri-containerd-") {
        return Some((Runtime::Containerd, id));
    }
    if let Some(id) = scoped("crio-") {
        return Some((Runtime::CriO, id));
    }
    if let Some(id) = scoped("libpod-") {
        return Some((Runtime::Podman, id));
    }
    if let Some(name) = part.strip_prefix("lxc.payload.") {
        return Some((Runtime::Lxc, name.to_owned()));
    }
    match parent {
        Some("docker") if is_container_id(part) => Some((Runtime::Docker, part.to_owned())),
        // rsafe run puts a container in `<parent>/rsafe/<id>` of each hierarchy it may use.
        Some("rsafe") if is_container_id(part) => Some((Runtime::Rsafe, part.to_owned())),
        Some("lxc") if depth == 1 => Some((Runtime::Lxc, part.to_owned())),
        // A pod's container under the cgroupfs driver: `/kubepods/burstable/pod<uid>/<id>`.
        Some(p) if pod_uid(p).is_some() && is_container_id(part) => {
            Some((Runtime::Kubernetes, part.to_owned()))
        }
        // containerd's cgroupfs layout: `/<namespace>/<id>`, nothing else.
        Some(_) if depth == 1 && len == 2 && is_container_id(part) => {
            Some((Runtime::Containerd, part.to_owned()))
        }
        _ => None,
    }
}

/// `pod<uid>` (cgroupfs) or `kubepods-besteffort-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid(part: &str) -> Option<String> {
    let rest = part.strip_suffix(".slice").unwrap_or(part);
    let uid = rest.rsplit_once("-pod").map_or_else(
        || rest.strip_prefix("pod"),
        |(prefix, uid)| prefix.starts_with("kubepods").then_some(uid),
    )?;
    let uid = uid.replace('_', "-");
    (uid.len() >= 32 && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-')).then_some(uid)
}

/// A full container id: 64 lowercase hex digits (docker, containerd, CRI-O, podman).
pub fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e8b0c1d2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4";
    const POD: &str = "0b5e3c5a-6f2d-4a8e-9c1b-2d3e4f5a6b7c";

    fn m(path: &str) -> Option<(Runtime, String, Option<String>)> {
        from_cgroup_path(path).map(|m| (m.runtime, m.id, m.pod))
    }

    #[test]
    fn managers_by_their_cgroup_names() {
        for (path, runtime) in [
            (format!("/system.slice/docker-{ID}.scope"), Runtime::Docker),
            (format!("/docker/{ID}"), Runtime::Docker),
            (format!("/docker/{ID}/init.scope"), Runtime::Docker),
            (
                format!("/system.slice/cri-containerd-{ID}.scope"),
                Runtime::Containerd,
            ),
            (format!("/k8s.io/{ID}"), Runtime::Containerd),
            (format!("/machine.slice/libpod-{ID}.scope"), Runtime::Podman),
            (format!("/libpod_parent/libpod-{ID}"), Runtime::Podman),
            (format!("/system.slice/crio-{ID}.scope"), Runtime::CriO),
            (format!("/rsafe/{ID}"), Runtime::Rsafe),
            (format!("/user.slice/rsafe/{ID}"), Runtime::Rsafe),
        ] {
            assert_eq!(m(&path), Some((runtime, ID.to_owned(), None)), "{path}");
        }
        assert_eq!(
            m("/lxc.payload.web/init.scope"),
            Some((Runtime::Lxc, "web".into(), None))
        );
        assert_eq!(m("/lxc/db"), Some((Runtime::Lxc, "db".into(), None)));
    }

    #[test]
    fn kubernetes_pods_in_both_drivers() {
        let systemd = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{ID}.scope",
            POD.replace('-', "_")
        );
        let cgroupfs = format!("/kubepods/besteffort/pod{POD}/{ID}");
        for path in [systemd, cgroupfs] {
            assert_eq!(
                m(&path),
                Some((Runtime::Kubernetes, ID.into(), Some(POD.into()))),
                "{path}"
            );
        }
    }

    #[test]
    fn monitors_and_plain_cgroups_are_not_containers() {
        for path in [
            "/".to_string(),
            "/system.slice/ssh.service".into(),
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
            format!("/system.slice/crio-conmon-{ID}.scope"),
            "/lxc.monitor.web".into(),
            "/process_api/28209c01dd44f20ff1af98fab2c0b55d".into(),
            "/probe1".into(),
            format!("/a/b/{ID}"),
            "/kubepods/burstable".into(),
        ] {
            assert_eq!(m(&path), None, "{path}");
        }
    }

    #[test]
    fn managers_outrank_low_level_runtimes() {
        assert!(Runtime::Docker.rank() > Runtime::Runc.rank());
        assert!(Runtime::Kubernetes.rank() > Runtime::Containerd.rank());
        assert!(Runtime::Runc.rank() > Runtime::Unshare.rank());
        assert!(Runtime::Unshare.rank() > Runtime::Unknown.rank());
    }
}
