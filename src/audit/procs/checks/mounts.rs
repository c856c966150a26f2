//! Mounts that open a way out of a container, read from its init's `/proc/PID/mountinfo`.
//!
//! A container mount is a host filesystem when its device is also mounted on the host; the
//! host path it shows is then known ([`HostMounts::host_path`](crate::audit::procs::mountinfo::HostMounts::host_path)), which is how `-v /:/host`,
//! a bound runtime socket or a home directory are told from the container's own tmpfs, overlay
//! or procfs. Files and directories under a mount are looked at through `/proc/PID/root`, so
//! symlinks resolve in the container's view and never on the host.
//!
//! A read-write mount of the host's `/` makes everything below it moot: mounts under it are
//! not reported one by one.

use std::path::{Component, Path, PathBuf};

use rustix::fs::{major, minor};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::Ctx;
use crate::audit::Rule;
use crate::audit::finding::{Evidence, Severity};
use crate::audit::procs::mountinfo::{self, Mount, is_under};
use crate::audit::procs::process::{NsKind, container_uid};
use crate::audit::procs::rules;

/// Sockets whose holder can start privileged containers.
const RUNTIME_SOCKETS: &[&str] = &[
    "docker.sock",
    "containerd.sock",
    "crio.sock",
    "podman.sock",
    "cri-dockerd.sock",
    "buildkitd.sock",
];

/// Where those sockets sit below a directory that may be bound instead of the socket itself
/// (`-v /run:/run`, `-v /var/run/containerd:/x`).
const SOCKETS_IN_DIRS: &[&str] = &[
    "docker.sock",
    "containerd.sock",
    "crio.sock",
    "podman.sock",
    "containerd/containerd.sock",
    "crio/crio.sock",
    "podman/podman.sock",
    "docker/docker.sock",
];

/// Host trees whose exposure is sensitive in any part.
const SENSITIVE_TREES: &[&str] = &[
    "/etc",
    "/root",
    "/boot",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/containers",
    "/var/lib/kubelet",
    "/var/lib/rsafe",
    "/run/docker",
    "/var/run/docker",
    "/run/containerd",
    "/var/run/containerd",
    "/run/crio",
    "/run/podman",
    "/run/runc",
    "/run/crun",
];

/// Host directories sensitive as a whole (their subdirectories may be fine to share).
const SENSITIVE_DIRS: &[&str] = &["/home", "/run", "/var/run", "/var", "/var/lib", "/srv"];

/// Host directories runtimes bind into containers themselves (per-container `/etc/hosts`,
/// named volumes, pod volumes): not the user's doing, not reported.
const RUNTIME_MANAGED: &[&str] = &[
    "/var/lib/docker/containers",
    "/var/lib/docker/volumes",
    "/var/lib/kubelet/pods",
    "/var/lib/containers/storage/volumes",
    "/var/lib/containers/storage/overlay-containers",
    "/run/containers/storage",
    "/var/run/containers/storage",
    "/run/containerd/io.containerd.grpc.v1.cri/sandboxes",
    "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes",
];

/// How far the symlink walk of one read-write directory goes.
const WALK_MAX_DEPTH: usize = 6;
const WALK_MAX_ENTRIES: usize = 4096;
const WALK_MAX_REPORTED: usize = 5;

/// Raw-memory character devices: (major, minor) of mem, kmem, port, kmsg.
const MEMORY_DEVICES: &[(u32, u32)] = &[(1, 1), (1, 2), (1, 4), (1, 11)];

pub(super) fn check(cx: &mut Ctx<'_>) {
    let c = cx.container;
    let host = c.host();
    let Some(init) = c.init() else { return };
    if host.shares(init, NsKind::Mnt) {
        return; // container.host-namespace.mnt says it all
    }
    let dir = init.dir(&host.proc_root);
    let text = match std::fs::read_to_string(dir.join("mountinfo")) {
        Ok(t) => t,
        Err(e) => {
            cx.not_inspected(init.pid, "mounts", Some(&e.to_string()));
            return;
        }
    };
    let view = View {
        root: dir.join("root"),
        proc_dev: host.mounts.at("/proc").map(|m| m.device.clone()),
        // In a user namespace that does not map host root, host-owned kernel files (sysfs,
        // cgroupfs, device nodes) belong to an unmapped owner: a writable mount of them is far
        // less of a way out. A namespace that maps host uid 0 (bwrap run by root) is no shield.
        own_userns: !host.shares(init, NsKind::User)
            && container_uid(&host.proc_root, init.pid, 0).is_none(),
        pid: init.pid,
    };
    let mounts = mountinfo::parse(&text);
    let rootfs = mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == "/")
        .and_then(|m| host.mounts.host_path(m))
        .filter(|p| p != "/");
    let mut folded: Vec<&str> = Vec::new();
    let mut host_dev_at_dev = false;
    for m in &mounts {
        if folded.iter().any(|f| is_under(&m.mount_point, f)) {
            continue;
        }
        let host_path = host.mounts.host_path(m);
        if host_path.as_deref() == Some("/") {
            check_host_root(cx, &view, m);
            if !m.read_only {
                folded.push(&m.mount_point);
            }
            continue;
        }
        if let Judged::Devtmpfs {
            host_dev_at_dev: at,
        } = check_kernel_fs(cx, &view, m)
        {
            host_dev_at_dev |= at;
            continue;
        }
        check_sockets(cx, &view, m, host_path.as_deref(), init.pid);
        if let Some(hp) = &host_path {
            let own_root =
                m.mount_point == "/" || rootfs.as_deref().is_some_and(|r| is_under(hp, r));
            if !own_root && !runtime_managed(hp) {
                check_host_path(cx, &view, m, hp, init.pid);
            }
        }
        if let Some(group) = m.shared.filter(|g| host.mounts.has_peer_group(*g)) {
            cx.push(rules::MOUNT_SHARED.finding(
                view.location(cx, m),
                Some(Evidence::plain(format!(
                    "{} is in peer group shared:{group}, which the host's mounts are in too",
                    m.mount_point
                ))),
            ));
        }
    }
    let dev_folded = folded.iter().any(|f| is_under("/dev", f));
    if !host_dev_at_dev && !dev_folded {
        let severity = view.lowered(rules::DEVICE.severity);
        check_dev_dir(cx, &view.at("/dev"), init.pid, severity);
    }
}

/// The host's `/` mounted in the container: critical read-write, high read-only.
fn check_host_root(cx: &mut Ctx<'_>, view: &View, m: &Mount) {
    let (severity, mode) = if m.read_only {
        (Severity::High, "ro")
    } else {
        (Severity::Critical, "rw")
    };
    cx.push(rules::MOUNT_HOST_ROOT.finding_at(
        severity,
        view.location(cx, m),
        Some(Evidence::plain(format!(
            "host / at {} ({mode})",
            m.mount_point
        ))),
    ));
}

/// How far [`check_kernel_fs`] judged a mount.
enum Judged {
    /// Not a devtmpfs: its sockets, host path and propagation are still to be looked at.
    Further,
    /// A devtmpfs, judged whole (`host_dev_at_dev`: the host's whole `/dev` at `/dev`).
    Devtmpfs { host_dev_at_dev: bool },
}

/// A kernel filesystem mounted in: the host's procfs, a writable sysfs or cgroupfs, the
/// host's devtmpfs or a dangerous device bound from it.
fn check_kernel_fs(cx: &mut Ctx<'_>, view: &View, m: &Mount) -> Judged {
    let mode = if m.read_only { "ro" } else { "rw" };
    let (rule, severity, evidence) = match m.fs_type.as_str() {
        "proc" if view.proc_dev.as_deref() == Some(m.device.as_str()) => (
            &rules::MOUNT_HOST_PROC_SYS,
            view.lowered(rules::MOUNT_HOST_PROC_SYS.severity),
            format!(
                "the host's procfs ({}) at {} ({mode})",
                m.device, m.mount_point
            ),
        ),
        "sysfs" if !m.read_only && !view.own_userns => (
            &rules::MOUNT_HOST_PROC_SYS,
            rules::MOUNT_HOST_PROC_SYS.severity,
            format!("sysfs at {} (rw)", m.mount_point),
        ),
        "cgroup" | "cgroup2" if !m.read_only && !view.own_userns => (
            &rules::MOUNT_CGROUP_RW,
            if m.fs_type == "cgroup" {
                Severity::High
            } else {
                Severity::Medium
            },
            format!(
                "{} {} at {} (rw)",
                m.fs_type, m.super_options, m.mount_point
            ),
        ),
        "devtmpfs" => return check_devtmpfs(cx, view, m),
        _ => return Judged::Further,
    };
    cx.push(rule.finding_at(
        severity,
        view.location(cx, m),
        Some(Evidence::plain(evidence)),
    ));
    Judged::Further
}

/// The host's devtmpfs mounted whole, or one of its raw-memory or disk devices bound in.
fn check_devtmpfs(cx: &mut Ctx<'_>, view: &View, m: &Mount) -> Judged {
    let mode = if m.read_only { "ro" } else { "rw" };
    let whole = m.root == "/";
    let found = if whole {
        Some((
            &rules::MOUNT_HOST_DEV,
            format!("devtmpfs at {} ({mode})", m.mount_point),
        ))
    } else {
        dangerous_device(&view.at(&m.mount_point))
            .map(|what| (&rules::DEVICE, format!("{what} bound from the host's /dev")))
    };
    if let Some((rule, evidence)) = found {
        cx.push(rule.finding_at(
            view.lowered(rule.severity),
            view.location(cx, m),
            Some(Evidence::plain(evidence)),
        ));
    }
    Judged::Devtmpfs {
        host_dev_at_dev: whole && m.mount_point == "/dev",
    }
}

/// The container's filesystem as reachable from here.
struct View {
    /// `/proc/PID/root` of the container's init.
    root: PathBuf,
    /// Device of the host's procfs.
    proc_dev: Option<String>,
    /// Whether the container has a user namespace of its own that does not map host root.
    own_userns: bool,
    /// The container's init.
    pid: u32,
}

impl View {
    /// `severity`, capped at medium for a container whose root is not host root: the kernel
    /// files a mount exposes then belong to an owner it cannot act as.
    fn lowered(&self, severity: Severity) -> Severity {
        if self.own_userns {
            Severity::Medium.min(severity)
        } else {
            severity
        }
    }

    /// Where a finding about mount `m` is.
    fn location(&self, cx: &Ctx<'_>, m: &Mount) -> crate::audit::finding::Location {
        cx.container
            .location(Some(self.pid), Some(format!("mount {}", m.mount_point)))
    }

    /// A container path, reachable through the init's root.
    fn at(&self, container_path: &str) -> PathBuf {
        self.root.join(container_path.trim_start_matches('/'))
    }
}

/// A runtime socket bound itself, or found in a bound directory.
fn check_sockets(cx: &mut Ctx<'_>, view: &View, m: &Mount, host_path: Option<&str>, pid: u32) {
    let c = cx.container;
    let here = view.at(&m.mount_point);
    let named = |p: &str| {
        Path::new(p)
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| RUNTIME_SOCKETS.contains(&n))
    };
    let is_socket =
        |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|md| md.file_type().is_socket());
    let mut found = Vec::new();
    if (named(&m.mount_point) || host_path.is_some_and(named)) && is_socket(&here) {
        found.push(m.mount_point.clone());
    } else if host_path.is_some() {
        for rel in runtime_sockets_below(&here) {
            found.push(mountinfo::join(&m.mount_point, rel));
        }
    }
    for socket in found {
        let from = host_path
            .map(|h| format!(" (host {h})"))
            .unwrap_or_default();
        cx.push(rules::MOUNT_RUNTIME_SOCKET.finding(
            c.location(Some(pid), Some(format!("mount {}", m.mount_point))),
            Some(Evidence::plain(format!("socket {socket}{from}"))),
        ));
    }
}

/// The runtime sockets found below `dir` (paths relative to it), where a bound directory like
/// `/run` or `/var/run/containerd` holds them.
fn runtime_sockets_below(dir: &Path) -> Vec<&'static str> {
    if !dir.is_dir() {
        return Vec::new();
    }
    SOCKETS_IN_DIRS
        .iter()
        .copied()
        .filter(|rel| {
            std::fs::symlink_metadata(dir.join(rel)).is_ok_and(|md| md.file_type().is_socket())
        })
        .collect()
}

/// What binding a host path into a container exposes, rated as this audit rates it in a
/// running container: `rsafe run` says it (or refuses it) before the container starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPathRisk {
    pub rule: Rule,
    pub severity: Severity,
    /// What is exposed, for the warning: `host /run/docker.sock (a runtime socket)`.
    pub what: String,
}

/// The risk of bind-mounting `host_path` (absolute, symlinks already resolved) judged on the
/// path alone: the host's `/`, a runtime socket by name, the host's procfs, sysfs or `/dev`, a
/// sensitive host tree ([`SENSITIVE_TREES`], [`SENSITIVE_DIRS`], a whole home directory).
pub fn host_path_risk(host_path: &str, read_only: bool) -> Option<HostPathRisk> {
    let mode = if read_only { "ro" } else { "rw" };
    let risk = |rule: Rule, severity: Severity, what: String| {
        Some(HostPathRisk {
            rule,
            severity,
            what: format!("{what} ({mode})"),
        })
    };
    let name = Path::new(host_path).file_name().and_then(|n| n.to_str());
    if host_path == "/" {
        let severity = if read_only {
            Severity::High
        } else {
            Severity::Critical
        };
        risk(rules::MOUNT_HOST_ROOT, severity, "the host's /".into())
    } else if name.is_some_and(|n| RUNTIME_SOCKETS.contains(&n)) {
        let r = rules::MOUNT_RUNTIME_SOCKET;
        risk(
            r,
            r.severity,
            format!("host {host_path}, a runtime's API socket"),
        )
    } else if is_under(host_path, "/proc") || is_under(host_path, "/sys") {
        let r = rules::MOUNT_HOST_PROC_SYS;
        risk(
            r,
            r.severity,
            format!("host {host_path}, the host's kernel view"),
        )
    } else if host_path == "/dev" {
        let r = rules::MOUNT_HOST_DEV;
        risk(r, r.severity, "the host's /dev".into())
    } else if is_sensitive(host_path) {
        let severity = if read_only {
            Severity::Medium
        } else {
            Severity::High
        };
        let r = rules::MOUNT_SENSITIVE;
        risk(
            r,
            severity,
            format!("host {host_path}, a sensitive host path"),
        )
    } else {
        None
    }
}

/// [`host_path_risk`] of `host_path` (symlinks resolved where the caller can resolve them), and
/// what only the file system tells: runtime sockets in a bound directory, a block or raw-memory
/// device.
pub fn bind_source_risks(host_path: &Path, read_only: bool) -> Vec<HostPathRisk> {
    let resolved = std::fs::canonicalize(host_path).unwrap_or_else(|_| lexical(host_path));
    let shown = resolved.to_string_lossy();
    let mode = if read_only { "ro" } else { "rw" };
    let mut out: Vec<HostPathRisk> = host_path_risk(&shown, read_only).into_iter().collect();
    if out.iter().any(|r| r.rule == rules::MOUNT_HOST_ROOT) {
        return out; // everything below is moot
    }
    for rel in runtime_sockets_below(&resolved) {
        let r = rules::MOUNT_RUNTIME_SOCKET;
        out.push(HostPathRisk {
            rule: r,
            severity: r.severity,
            what: format!(
                "host {}, a runtime's API socket ({mode})",
                resolved.join(rel).display()
            ),
        });
    }
    if let Some(device) = dangerous_device(&resolved) {
        out.push(HostPathRisk {
            rule: rules::DEVICE,
            severity: rules::DEVICE.severity,
            what: format!("host {device} ({mode})"),
        });
    }
    out
}

/// `path` with `.`, `..` and empty components resolved lexically.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for comp in path.components() {
        match comp {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// A host file or directory mounted in the container: sensitive, read-write, symlinks.
fn check_host_path(cx: &mut Ctx<'_>, view: &View, m: &Mount, host_path: &str, pid: u32) {
    let c = cx.container;
    let here = view.at(&m.mount_point);
    let is_dir = here.is_dir();
    let mode = if m.read_only { "ro" } else { "rw" };
    let location = || c.location(Some(pid), Some(format!("mount {}", m.mount_point)));
    if is_sensitive(host_path) {
        let severity = if m.read_only {
            Severity::Medium
        } else {
            Severity::High
        };
        cx.push(rules::MOUNT_SENSITIVE.finding_at(
            severity,
            location(),
            Some(Evidence::plain(format!(
                "host {host_path} at {} ({mode})",
                m.mount_point
            ))),
        ));
    } else if is_dir && !m.read_only {
        cx.push(rules::MOUNT_HOST_DIR_RW.finding(
            location(),
            Some(Evidence::plain(format!(
                "host {host_path} at {} (rw)",
                m.mount_point
            ))),
        ));
    }
    if is_dir && !m.read_only {
        let links = escaping_links(&here);
        if !links.is_empty() {
            let shown: Vec<String> = links
                .iter()
                .take(WALK_MAX_REPORTED)
                .map(|(p, t)| format!("{} -> {}", mountinfo::join(&m.mount_point, p), t))
                .collect();
            let more = links.len().saturating_sub(WALK_MAX_REPORTED);
            let more = if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            };
            cx.push(rules::MOUNT_SYMLINK_ESCAPE.finding(
                location(),
                Some(Evidence::plain(format!(
                    "host {host_path}: {}{more}",
                    shown.join(", ")
                ))),
            ));
        }
    }
}

/// Whether a runtime put this host path there itself (see [`RUNTIME_MANAGED`]); also rootless
/// podman's storage below a home directory.
fn runtime_managed(host_path: &str) -> bool {
    RUNTIME_MANAGED.iter().any(|p| is_under(host_path, p))
        || [
            "/containers/storage/volumes/",
            "/containers/storage/overlay-containers/",
        ]
        .iter()
        .any(|part| host_path.contains(part))
}

/// Whether a host path is one whose exposure is sensitive.
fn is_sensitive(host_path: &str) -> bool {
    if SENSITIVE_TREES.iter().any(|t| is_under(host_path, t)) || SENSITIVE_DIRS.contains(&host_path)
    {
        return true;
    }
    // A whole home directory: /home/<user>.
    host_path
        .strip_prefix("/home/")
        .is_some_and(|user| !user.is_empty() && !user.contains('/'))
}

/// Symlinks under `dir` (walked without following links or leaving its filesystem, within
/// the bounds above) whose target leads outside `dir`: absolute, or climbing above it.
fn escaping_links(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .same_file_system(true)
        .max_depth(WALK_MAX_DEPTH)
        .into_iter()
        .take(WALK_MAX_ENTRIES);
    for entry in walk.filter_map(Result::ok) {
        if !entry.path_is_symlink() {
            continue;
        }
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let Ok(rel) = entry.path().strip_prefix(dir) else {
            continue;
        };
        if leads_outside(rel, &target) {
            out.push((
                rel.to_string_lossy().into_owned(),
                target.to_string_lossy().into_owned(),
            ));
        }
    }
    out
}

/// Whether link `rel` (relative to the shared directory) pointing at `target` resolves outside
/// the directory, judged lexically (as a host program following it would start to).
fn leads_outside(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let mut depth = rel.parent().map_or(0, |p| p.components().count()) as i64;
    for comp in target.components() {
        match comp {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

/// `Some("block device 8:0")` for a block device or a raw-memory character device.
fn dangerous_device(path: &Path) -> Option<String> {
    let md = std::fs::symlink_metadata(path).ok()?;
    let ft = md.file_type();
    let (maj, min) = (major(md.rdev()), minor(md.rdev()));
    if ft.is_block_device() {
        Some(format!("block device {} ({maj}:{min})", path.display()))
    } else if ft.is_char_device() && MEMORY_DEVICES.contains(&(maj, min)) {
        Some(format!("memory device {} ({maj}:{min})", path.display()))
    } else {
        None
    }
}

/// Block and raw-memory devices in the container's `/dev` (two levels).
fn check_dev_dir(cx: &mut Ctx<'_>, dev: &Path, pid: u32, severity: Severity) {
    let c = cx.container;
    let mut found = Vec::new();
    let walk = walkdir::WalkDir::new(dev)
        .follow_links(false)
        .same_file_system(true)
        .max_depth(2)
        .into_iter()
        .take(1024);
    for entry in walk.filter_map(Result::ok) {
        let ft = entry.file_type();
        if !(ft.is_block_device() || ft.is_char_device()) {
            continue;
        }
        if dangerous_device(entry.path()).is_some() {
            let rel = entry.path().strip_prefix(dev).unwrap_or(entry.path());
            found.push(format!("/dev/{}", rel.display()));
        }
    }
    if !found.is_empty() {
        cx.push(rules::DEVICE.finding_at(
            severity,
            c.location(Some(pid), Some("/dev".into())),
            Some(Evidence::plain(found.join(", "))),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_leading_out() {
        assert!(leads_outside(Path::new("a"), Path::new("/etc/shadow")));
        assert!(leads_outside(Path::new("a"), Path::new("../x")));
        assert!(leads_outside(Path::new("d/a"), Path::new("../../x")));
        assert!(!leads_outside(Path::new("d/a"), Path::new("../x")));
        assert!(!leads_outside(Path::new("d/a"), Path::new("b/../c")));
        assert!(leads_outside(Path::new("d/a"), Path::new("b/../../../c")));
    }

    #[test]
    fn runtime_managed_paths() {
        assert!(runtime_managed("/var/lib/docker/containers/abc/hostname"));
        assert!(runtime_managed(
            "/home/u/.local/share/containers/storage/volumes/v/_data"
        ));
        assert!(!runtime_managed("/var/lib/docker"));
        assert!(!runtime_managed("/srv/data"));
    }

    #[test]
    fn sensitive_host_paths() {
        for p in [
            "/etc",
            "/etc/ssh",
            "/root",
            "/home",
            "/home/alice",
            "/var/lib/docker/x",
            "/run",
        ] {
            assert!(is_sensitive(p), "{p}");
        }
        for p in [
            "/home/alice/project",
            "/srv/data",
            "/tmp/x",
            "/etcetera",
            "/run/user/1000",
        ] {
            assert!(!is_sensitive(p), "{p}");
        }
    }

    #[test]
    fn walks_a_directory_for_escaping_links() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", d.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", d.join("sub/up")).unwrap();
        std::os::unix::fs::symlink("../abs", d.join("sub/fine")).unwrap();
        let mut got = escaping_links(d);
        got.sort();
        assert_eq!(
            got,
            vec![
                ("abs".into(), "/etc/shadow".into()),
                ("sub/up".into(), "../../..".into())
            ]
        );
    }

    #[test]
    fn bind_sources_rated_as_in_a_running_container() {
        let rated = |p: &str, ro: bool| host_path_risk(p, ro).map(|r| (r.rule.id, r.severity));
        assert_eq!(
            rated("/", false),
            Some(("container.mount.host-root", Severity::Critical))
        );
        assert_eq!(
            rated("/", true),
            Some(("container.mount.host-root", Severity::High))
        );
        for sock in [
            "/run/docker.sock",
            "/x/containerd.sock",
            "/run/podman/podman.sock",
        ] {
            assert_eq!(
                rated(sock, true),
                Some(("container.mount.runtime-socket", Severity::Critical)),
                "{sock}"
            );
        }
        for kernel in ["/proc", "/proc/1/environ", "/sys", "/sys/kernel"] {
            assert_eq!(
                rated(kernel, true),
                Some(("container.mount.proc-sys-rw", Severity::High)),
                "{kernel}"
            );
        }
        assert_eq!(
            rated("/dev", false),
            Some(("container.mount.host-dev", Severity::High))
        );
        assert_eq!(
            rated("/etc", false),
            Some(("container.mount.sensitive-host-path", Severity::High))
        );
        assert_eq!(
            rated("/home/alice", true),
            Some(("container.mount.sensitive-host-path", Severity::Medium))
        );
        for fine in [
            "/srv/data",
            "/home/alice/src",
            "/tmp/x",
            "/dev/null",
            "/procfs",
        ] {
            assert_eq!(rated(fine, false), None, "{fine}");
        }
    }

    #[test]
    fn bind_sources_seen_on_disk() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir(d.join("docker")).unwrap();
        let _l = std::os::unix::net::UnixListener::bind(d.join("docker.sock")).unwrap();
        let _l2 = std::os::unix::net::UnixListener::bind(d.join("docker/docker.sock")).unwrap();
        let got: Vec<String> = bind_source_risks(d, false)
            .into_iter()
            .map(|r| r.what)
            .collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].ends_with("docker.sock, a runtime's API socket (rw)"),
            "{got:?}"
        );
        // Through a `..` and a symlink, the host's root is still the host's root.
        std::os::unix::fs::symlink("/", d.join("up")).unwrap();
        let root = bind_source_risks(&d.join("up"), false);
        assert_eq!(root.len(), 1);
        assert_eq!(root[0].rule, rules::MOUNT_HOST_ROOT);
        assert!(bind_source_risks(Path::new("/dev/null"), false).is_empty());
        assert_eq!(lexical(Path::new("/a/../../b/./c")), Path::new("/b/c"));
    }

    #[test]
    fn memory_devices() {
        assert!(dangerous_device(Path::new("/dev/null")).is_none());
        if Path::new("/dev/mem").exists() {
            assert!(dangerous_device(Path::new("/dev/mem")).is_some());
        }
    }
}
