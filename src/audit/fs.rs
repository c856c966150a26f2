//! Checks on the file system a container finally sees (after whiteouts): privilege-granting
//! files (setuid, setgid, file capabilities), world-writable paths, device nodes, and symlinks
//! that lead out of the root or into places a host-side tool or a bind mount would follow.
//!
//! Only visible entries are checked: a setuid binary deleted by a later layer cannot be run.
//! (Secrets are different — deleted or not, the bytes ship — see [`super::layers`].)

use std::collections::{BTreeMap, HashSet};

use super::elf::{self, Binary};
use super::layers::{Entry, EntryKind, LayerScan, MergedView};
use super::{Evidence, Finding, Rule, Severity};
use crate::image::config::Image;

/// A setuid/setgid binary rsafe does not recognise as a standard distribution one.
pub const SETUID: Rule = Rule {
    id: "fs.setuid",
    severity: Severity::High,
    title: "Setuid/setgid binary that is not a standard system tool",
    description: "A file with the setuid or setgid bit that is not one of the usual \
        distribution tools (su, passwd, mount, ping…). Whoever runs it gets its owner's (or \
        group's) privileges, so any bug or planted behaviour in it is a privilege escalation. \
        High for setuid-root; medium for setgid-only or a non-root owner; low for a script \
        (the kernel ignores the bit on `#!` files).",
    remediation: "Remove the bit (`chmod u-s,g-s FILE` in the Dockerfile) unless the container \
        truly needs it; run with no_new_privs (rsafe always does) so it cannot take effect.",
};

/// A standard distribution setuid/setgid tool.
pub const SETUID_STANDARD: Rule = Rule {
    id: "fs.setuid-standard",
    severity: Severity::Low,
    title: "Standard setuid/setgid system tool",
    description: "A well-known distribution binary that ships setuid or setgid (su, passwd, \
        mount, ping, newgrp…). Expected in a base image, but containers rarely need it and it \
        is attack surface for a process that is not root.",
    remediation: "Strip the bits in the final stage (`find / -xdev -perm /6000 -type f -exec \
        chmod a-s {} +`) or run with no_new_privs (rsafe does by default).",
};

/// A file carrying file capabilities.
pub const FILE_CAPABILITIES: Rule = Rule {
    id: "fs.file-capabilities",
    severity: Severity::High,
    title: "File grants Linux capabilities when executed",
    description: "The file has a `security.capability` extended attribute: running it grants \
        those capabilities even to an unprivileged user. High when they include a \
        root-equivalent one (sys_admin, dac_override, setuid, sys_ptrace…), low for \
        net_bind_service alone, medium otherwise.",
    remediation: "Remove the attribute (`setcap -r FILE`) and grant the capability to the \
        container explicitly if it is really needed.",
};

/// A path anyone in the container can write.
pub const WORLD_WRITABLE: Rule = Rule {
    id: "fs.world-writable",
    severity: Severity::Medium,
    title: "World-writable file or directory",
    description: "Any user in the container can modify this file, or create and replace \
        files in this directory (no sticky bit: /tmp-style directories are fine). High for \
        executables and system directories (/etc, /bin, /usr, /lib…), where it lets an \
        unprivileged process change what root runs. Files below a reported directory are \
        counted in its finding.",
    remediation: "Fix the mode in the Dockerfile (`chmod o-w`, or `chmod 1777` for a shared \
        scratch directory) and give write access to the one user that needs it.",
};

/// A device node in a layer.
pub const DEVICE_NODE: Rule = Rule {
    id: "fs.device-node",
    severity: Severity::High,
    title: "Device node shipped in the image",
    description: "A character or block device file is part of a layer. Runtimes create /dev \
        themselves; a device node in an image gives direct hardware or kernel-memory access to \
        whoever may open it if the device cgroup or user namespace lets it through. Info for \
        the harmless character devices (null, zero, random, tty…) debootstrap leaves in /dev; \
        low for an overlayfs whiteout (0:0) committed by a broken builder.",
    remediation: "Remove the node from the layer (`rm` before the layer is committed) and let \
        the runtime provide /dev.",
};

/// A symlink whose relative target climbs above the root.
pub const SYMLINK_ESCAPES: Rule = Rule {
    id: "fs.symlink-escapes-root",
    severity: Severity::Medium,
    title: "Symlink target climbs out of the root",
    description: "A relative symlink has more `..` than its depth, so read on the host \
        (a backup, a scanner, `docker cp`, a naive extractor) it points outside the \
        container's root file system.",
    remediation: "Make the link absolute within the image or drop it; never resolve image \
        paths on the host without confining them (openat2 RESOLVE_IN_ROOT).",
};

/// A symlink into host-sensitive places.
pub const SYMLINK_SENSITIVE: Rule = Rule {
    id: "fs.symlink-to-sensitive",
    severity: Severity::Medium,
    title: "Symlink into a sensitive location",
    description: "A symlink points into /proc, /sys, /dev, the container runtime's socket, \
        /etc/shadow or /root. Followed by a host-side tool or a runtime that copies or mounts \
        through it, it reaches the host's copy of that path. Common harmless links (/dev/null, \
        /dev/stdout, /proc/self/fd, /proc/self/mounts, /var/run -> /run) are not reported.",
    remediation: "Remove the link or point it at a path inside the application's own tree.",
};

/// A symlink where a volume or the working directory is mounted.
pub const SYMLINK_AT_MOUNT: Rule = Rule {
    id: "fs.symlink-at-mount-point",
    severity: Severity::High,
    title: "Symlink where a volume or the working directory goes",
    description: "A declared VOLUME (or the WORKDIR, or one of their parent directories) is a \
        symlink in the image. A runtime mounting a volume there follows the link — when it \
        resolves it on the host, the mount lands wherever the image says (the pattern of \
        CVE-2021-30465 and similar runc/containerd bugs).",
    remediation: "Make the volume path and WORKDIR real directories in the image.",
};

/// The rules of the file-system checks.
pub static RULES: &[Rule] = &[
    SETUID,
    SETUID_STANDARD,
    FILE_CAPABILITIES,
    WORLD_WRITABLE,
    DEVICE_NODE,
    SYMLINK_ESCAPES,
    SYMLINK_SENSITIVE,
    SYMLINK_AT_MOUNT,
];

/// Distribution tools that ship setuid or setgid (Debian, Ubuntu, Alpine, Fedora/RHEL, SUSE).
const STANDARD_PRIVILEGED: &[&str] = &[
    "at",
    "bsd-write",
    "chage",
    "chfn",
    "chsh",
    "crontab",
    "dbus-daemon-launch-helper",
    "doas",
    "dotlockfile",
    "expiry",
    "fusermount",
    "fusermount3",
    "gpasswd",
    "ksu",
    "locate",
    "mlocate",
    "mount",
    "mount.cifs",
    "mount.nfs",
    "newgidmap",
    "newgrp",
    "newuidmap",
    "pam_timestamp_check",
    "passwd",
    "ping",
    "ping6",
    "pkexec",
    "plocate",
    "polkit-agent-helper-1",
    "screen",
    "sg",
    "ssh-agent",
    "ssh-keysign",
    "su",
    "sudo",
    "sudoedit",
    "traceroute6.iputils",
    "umount",
    "unix_chkpwd",
    "userhelper",
    "utempter",
    "wall",
    "write",
    "Xorg.wrap",
];

/// Directories distribution packages install binaries into.
const SYSTEM_BIN_DIRS: &[&str] = &["/bin", "/sbin", "/usr/bin", "/usr/sbin"];
const SYSTEM_TREES: &[&str] = &["/usr/lib", "/usr/libexec", "/lib", "/usr/lib64", "/lib64"];

/// Trees where a world-writable entry lets an unprivileged process change what root runs.
const SYSTEM_DIRS: &[&str] = &[
    "/etc", "/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/root",
    "/opt",
];

fn is_under(path: &str, root: &str) -> bool {
    path == root || path.strip_prefix(root).is_some_and(|r| r.starts_with('/'))
}

/// Whether `path` is a standard distribution setuid/setgid tool (by name and place).
pub fn is_standard_privileged(path: &str) -> bool {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let dir = if dir.is_empty() { "/" } else { dir };
    STANDARD_PRIVILEGED.contains(&name)
        && (SYSTEM_BIN_DIRS.contains(&dir) || SYSTEM_TREES.iter().any(|t| is_under(dir, t)))
}

/// Where the container's volumes and working directory are mounted/entered.
#[derive(Debug, Clone, Default)]
pub struct MountPoints {
    /// (what it is, normalised absolute path): `("VOLUME", "/data")`, `("WORKDIR", "/app")`.
    pub paths: Vec<(&'static str, String)>,
}

impl MountPoints {
    /// The volumes and working directory of an image's config.
    pub fn of(img: &Image) -> MountPoints {
        let mut paths = Vec::new();
        if let Some(cfg) = img.config.config() {
            for v in cfg.volumes().iter().flatten() {
                if let Some(p) = normalize_abs(v) {
                    paths.push(("VOLUME", p));
                }
            }
            if let Some(p) = cfg.working_dir().as_deref().and_then(normalize_abs) {
                paths.push(("WORKDIR", p));
            }
        }
        MountPoints { paths }
    }
}

/// An absolute path with `.`/`..`/empty parts resolved (`..` at the root stays at the root, as
/// the kernel does); None for a relative path.
fn normalize_abs(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Where a symlink at `link_path` pointing at `target` leads, resolved lexically inside the
/// image; None if a relative target climbs above the root.
pub fn resolve_link(link_path: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let (dir, _) = link_path.rsplit_once('/').unwrap_or(("", link_path));
        dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() && !target.starts_with('/') {
                    return None;
                }
            }
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Whether a relative symlink target climbs above the root.
pub fn escapes_root(link_path: &str, target: &str) -> bool {
    !target.starts_with('/') && resolve_link(link_path, target).is_none()
}

/// Whether a resolved symlink destination is one a host-side follower must never reach.
pub fn is_sensitive_destination(dest: &str) -> bool {
    const HARMLESS: &[&str] = &[
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/stdin",
        "/dev/stdout",
        "/dev/stderr",
        "/dev/tty",
        "/dev/console",
        "/dev/ptmx",
        "/proc/mounts",
        "/proc/self/mounts",
        "/proc/self/exe",
        "/proc/net",
        "/proc/self/net",
    ];
    const HARMLESS_TREES: &[&str] = &["/dev/fd", "/dev/pts", "/dev/shm", "/proc/self/fd"];
    const SENSITIVE: &[&str] = &[
        "/proc",
        "/sys",
        "/dev",
        "/run/docker.sock",
        "/var/run/docker.sock",
        "/run/containerd",
        "/run/crio",
        "/run/podman",
        "/var/run/docker",
        "/var/lib/docker",
        "/var/lib/kubelet",
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/sudoers",
    ];
    if HARMLESS.contains(&dest) || HARMLESS_TREES.iter().any(|t| is_under(dest, t)) {
        return false;
    }
    // /root itself is a normal home-directory target; what is inside it (.ssh…) is not.
    SENSITIVE.iter().any(|s| is_under(dest, s)) || dest.starts_with("/root/")
}

/// Capability names by bit number (include/uapi/linux/capability.h).
const CAP_NAMES: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// Capabilities that amount to root (or to becoming root).
const ROOT_EQUIVALENT: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "setgid",
    "setuid",
    "setpcap",
    "net_admin",
    "sys_module",
    "sys_rawio",
    "sys_ptrace",
    "sys_admin",
    "setfcap",
    "mac_override",
    "mac_admin",
    "bpf",
];

/// File capabilities decoded from a `security.capability` xattr (`vfs_cap_data`, revisions
/// 1–3): the permitted set, whether it is effective at exec, and the inheritable set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCaps {
    pub permitted: Vec<String>,
    pub inheritable: Vec<String>,
    pub effective: bool,
}

/// Decodes a `security.capability` value; None when it is not a known revision.
pub fn decode_caps(raw: &[u8]) -> Option<FileCaps> {
    let word = |i: usize| -> Option<u64> {
        raw.get(i * 4..i * 4 + 4)
            .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
    };
    let magic = word(0)?;
    let words = match magic & 0xFF00_0000 {
        0x0100_0000 => 1,
        0x0200_0000 | 0x0300_0000 => 2,
        _ => return None,
    };
    let (mut permitted, mut inheritable) = (0u64, 0u64);
    for i in 0..words {
        permitted |= word(1 + 2 * i)? << (32 * i);
        inheritable |= word(2 + 2 * i)? << (32 * i);
    }
    let names = |set: u64| -> Vec<String> {
        (0..64)
            .filter(|bit| set & (1u64 << bit) != 0)
            .map(|bit| {
                CAP_NAMES
                    .get(bit as usize)
                    .map_or_else(|| format!("cap_{bit}"), |n| format!("cap_{n}"))
            })
            .collect()
    };
    Some(FileCaps {
        permitted: names(permitted),
        inheritable: names(inheritable),
        effective: magic & 1 != 0,
    })
}

fn caps_severity(caps: &FileCaps) -> Severity {
    let all = || caps.permitted.iter().chain(&caps.inheritable);
    if all().any(|c| ROOT_EQUIVALENT.contains(&c.trim_start_matches("cap_"))) {
        Severity::High
    } else if all().all(|c| c == "cap_net_bind_service") {
        Severity::Low
    } else {
        Severity::Medium
    }
}

fn describe_mode(e: &Entry) -> String {
    format!("mode {:04o}, owner {}:{}", e.mode & 0o7777, e.uid, e.gid)
}

/// Every file-system finding on the final file system of the image.
pub fn check_visible(
    scans: &[LayerScan],
    view: &MergedView<'_>,
    mounts: &MountPoints,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let entry = |(layer, i): (usize, usize)| (&scans[layer], &scans[layer].entries[i]);
    let writable = |dir: &str| {
        view.lookup(dir)
            .map(entry)
            .is_some_and(|(_, e)| e.kind == EntryKind::Dir && e.mode & 0o002 != 0)
    };

    let at_mounts = mount_point_links(scans, view, mounts, &mut out);
    // World-writable directories first, so files below them fold into their finding.
    let mut ww_dirs = world_writable_dirs(view.visible().map(entry));
    for (scan, e) in view.visible().map(entry) {
        let location = scan.location(&e.path, None);
        match e.kind {
            EntryKind::File => {
                if e.mode & 0o002 != 0 {
                    match reported_ancestor(&e.path, &ww_dirs).and_then(|d| ww_dirs.get_mut(d)) {
                        Some((_, below)) => *below += 1,
                        None => out.push(world_writable_file(e, location.clone())),
                    }
                }
                if e.is_privileged() {
                    out.extend(privileged_findings(e, &location, &writable));
                }
            }
            EntryKind::CharDevice | EntryKind::BlockDevice => {
                out.push(device_finding(e, location));
            }
            EntryKind::Symlink if !at_mounts.contains(e.path.as_str()) => {
                out.extend(symlink_finding(e, location));
            }
            _ => {}
        }
    }
    for (_, (mut f, below)) in ww_dirs {
        if below > 0
            && let Some(ev) = &mut f.evidence
        {
            ev.excerpt = format!("{}; {below} world-writable files below", ev.excerpt);
        }
        out.push(f);
    }
    out
}

/// A finding per world-writable directory without the sticky bit (high under a system
/// directory), keyed by path, with a count of the world-writable files folded into it.
fn world_writable_dirs<'a>(
    visible: impl Iterator<Item = (&'a LayerScan, &'a Entry)>,
) -> BTreeMap<&'a str, (Finding, u64)> {
    let mut dirs = BTreeMap::new();
    for (scan, e) in visible {
        if e.kind == EntryKind::Dir && e.mode & 0o002 != 0 && e.mode & 0o1000 == 0 {
            let severity = if SYSTEM_DIRS.iter().any(|d| is_under(&e.path, d)) {
                Severity::High
            } else {
                WORLD_WRITABLE.severity
            };
            let f = WORLD_WRITABLE.finding_at(
                severity,
                scan.location(&e.path, None),
                Some(Evidence::plain(format!(
                    "directory, {}, no sticky bit",
                    describe_mode(e)
                ))),
            );
            dirs.insert(e.path.as_str(), (f, 0));
        }
    }
    dirs
}

/// The nearest ancestor of `path` that has a finding of its own in `dirs`.
fn reported_ancestor<'a>(path: &str, dirs: &BTreeMap<&'a str, (Finding, u64)>) -> Option<&'a str> {
    let mut p = path;
    while let Some((parent, _)) = p.rsplit_once('/') {
        let parent = if parent.is_empty() { "/" } else { parent };
        if let Some((dir, _)) = dirs.get_key_value(parent) {
            return Some(dir);
        }
        if parent == "/" {
            return None;
        }
        p = parent;
    }
    None
}

/// A world-writable file outside any reported directory: high if executable or under a
/// system directory.
fn world_writable_file(e: &Entry, location: super::Location) -> Finding {
    let high = e.mode & 0o111 != 0 || SYSTEM_DIRS.iter().any(|d| is_under(&e.path, d));
    WORLD_WRITABLE.finding_at(
        if high {
            Severity::High
        } else {
            WORLD_WRITABLE.severity
        },
        location,
        Some(Evidence::plain(format!("file, {}", describe_mode(e)))),
    )
}

/// A device node in the image: info for the harmless ones a `/dev` has (null, zero, tty…),
/// low for a whiteout committed as a device (a broken layer), the rule's severity otherwise.
fn device_finding(e: &Entry, location: super::Location) -> Finding {
    let (major, minor) = e.device.unwrap_or((0, 0));
    let char_dev = e.kind == EntryKind::CharDevice;
    let harmless = char_dev
        && matches!(
            (major, minor),
            (1, 3) | (1, 5) | (1, 7) | (1, 8) | (1, 9) | (5, 0) | (5, 1) | (5, 2)
        );
    let whiteout = char_dev && (major, minor) == (0, 0);
    let what = if char_dev { "character" } else { "block" };
    let note = if whiteout {
        " (an overlayfs whiteout committed as a device: a broken layer)"
    } else {
        ""
    };
    let severity = if harmless {
        Severity::Info
    } else if whiteout {
        Severity::Low
    } else {
        DEVICE_NODE.severity
    };
    DEVICE_NODE.finding_at(
        severity,
        location,
        Some(Evidence::plain(format!(
            "{what} device {major}:{minor}, {}{note}",
            describe_mode(e)
        ))),
    )
}

/// A symlink that leaves the image's root, or points at a sensitive file inside it.
fn symlink_finding(e: &Entry, location: super::Location) -> Option<Finding> {
    let target = e.link.as_deref().unwrap_or_default();
    if escapes_root(&e.path, target) {
        Some(SYMLINK_ESCAPES.finding(
            location,
            Some(Evidence::plain(format!("{} -> {target}", e.path))),
        ))
    } else {
        let dest = resolve_link(&e.path, target).filter(|d| is_sensitive_destination(d))?;
        Some(SYMLINK_SENSITIVE.finding(
            location,
            Some(Evidence::plain(format!("{} -> {target} ({dest})", e.path))),
        ))
    }
}

/// Findings for a setuid/setgid/capability file.
fn privileged_findings(
    e: &Entry,
    location: &super::Location,
    writable: &dyn Fn(&str) -> bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let binary = e.binary.clone().unwrap_or(Binary::Unread);
    let summary = binary.summary();
    if e.mode & 0o6000 != 0 {
        let setuid = e.mode & 0o4000 != 0;
        let bits = match (setuid, e.mode & 0o2000 != 0) {
            (true, true) => "setuid+setgid",
            (true, false) => "setuid",
            _ => "setgid",
        };
        let evidence = Some(Evidence::plain(format!(
            "{bits}, {}; {summary}",
            describe_mode(e)
        )));
        if is_standard_privileged(&e.path) {
            out.push(SETUID_STANDARD.finding(location.clone(), evidence));
        } else {
            let severity = if binary == Binary::Script {
                Severity::Low
            } else if setuid && e.uid == 0 {
                Severity::High
            } else {
                Severity::Medium
            };
            out.push(SETUID.finding_at(severity, location.clone(), evidence));
        }
    }
    if let Some(raw) = &e.capability {
        let (severity, text) = match decode_caps(raw) {
            Some(caps) => {
                let mut text = format!("permitted: {}", list_or_none(&caps.permitted));
                if !caps.inheritable.is_empty() {
                    text.push_str(&format!("; inheritable: {}", caps.inheritable.join(",")));
                }
                text.push_str(if caps.effective {
                    " (effective)"
                } else {
                    " (not effective)"
                });
                (caps_severity(&caps), text)
            }
            None => (
                FILE_CAPABILITIES.severity,
                format!("undecodable security.capability ({} bytes)", raw.len()),
            ),
        };
        out.push(FILE_CAPABILITIES.finding_at(
            severity,
            location.clone(),
            Some(Evidence::plain(format!("{text}; {summary}"))),
        ));
    }
    if let Binary::Elf(info) = &binary {
        out.extend(elf::check(info, location, writable));
    }
    out
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(",")
    }
}

/// Symlinks at (or above) a volume or the working directory; returns their paths so the
/// general symlink checks do not report them twice.
fn mount_point_links<'a>(
    scans: &'a [LayerScan],
    view: &MergedView<'_>,
    mounts: &MountPoints,
    out: &mut Vec<Finding>,
) -> HashSet<&'a str> {
    let mut seen = HashSet::new();
    for (what, path) in &mounts.paths {
        // Each prefix of the mount path, shortest first: /srv, /srv/data.
        let mut prefix = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            prefix.push('/');
            prefix.push_str(part);
            let Some((layer, i)) = view.lookup(&prefix) else {
                break;
            };
            let scan = &scans[layer];
            let e = &scan.entries[i];
            if e.kind != EntryKind::Symlink {
                continue;
            }
            if !seen.insert(e.path.as_str()) {
                break;
            }
            let target = e.link.as_deref().unwrap_or_default();
            let whither = if escapes_root(&e.path, target) {
                " — climbs out of the root".to_string()
            } else {
                match resolve_link(&e.path, target) {
                    Some(dest) if is_sensitive_destination(&dest) => {
                        format!(" — into {dest}")
                    }
                    _ => String::new(),
                }
            };
            out.push(SYMLINK_AT_MOUNT.finding(
                scan.location(&e.path, None),
                Some(Evidence::plain(format!(
                    "{what} {path}: {} -> {target}{whither}",
                    e.path
                ))),
            ));
            break;
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Digest;

    fn entry(path: &str, kind: EntryKind, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            size: 1,
            link: None,
            device: None,
            capability: None,
            binary: None,
        }
    }

    fn link(path: &str, target: &str) -> Entry {
        let mut e = entry(path, EntryKind::Symlink, 0o777);
        e.link = Some(target.into());
        e
    }

    fn scan(entries: Vec<Entry>) -> Vec<LayerScan> {
        vec![LayerScan {
            index: 0,
            digest: Digest::of_bytes(b"l"),
            created_by: None,
            entries,
            whiteouts: vec![],
            opaque_dirs: vec![],
            secrets: vec![],
            findings: vec![],
            passwd: None,
            stats: Default::default(),
        }]
    }

    fn rules_of(f: &[Finding]) -> Vec<(&str, Severity, String)> {
        let mut v: Vec<_> = f
            .iter()
            .map(|f| {
                let path = match &f.location {
                    super::super::Location::ImageFile { path, .. } => path.clone(),
                    other => other.to_string(),
                };
                (f.rule.as_str(), f.severity, path)
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn symlink_resolution_is_lexical_and_confined() {
        assert_eq!(resolve_link("/data", "../../../../etc"), None);
        assert!(escapes_root("/data", "../../../../etc"));
        assert!(!escapes_root("/a/b/c", "../../x"));
        assert_eq!(
            resolve_link("/etc/mtab", "../proc/self/mounts").as_deref(),
            Some("/proc/self/mounts")
        );
        assert_eq!(resolve_link("/x", "/../etc").as_deref(), Some("/etc"));
        assert!(!is_sensitive_destination("/proc/self/mounts"));
        assert!(!is_sensitive_destination("/dev/stdout"));
        assert!(!is_sensitive_destination("/run"));
        assert!(is_sensitive_destination("/var/run/docker.sock"));
        assert!(is_sensitive_destination("/proc/1/root"));
        assert!(is_sensitive_destination("/root/.ssh/authorized_keys"));
    }

    #[test]
    fn sticky_tmp_is_fine_and_files_fold_into_their_dir() {
        let mut files: Vec<Entry> = (0..3)
            .map(|i| entry(&format!("/srv/drop/f{i}"), EntryKind::File, 0o666))
            .collect();
        files.extend([
            entry("/tmp", EntryKind::Dir, 0o1777),
            entry("/var/tmp", EntryKind::Dir, 0o1777),
            entry("/srv/drop", EntryKind::Dir, 0o777),
            entry("/etc/app.conf", EntryKind::File, 0o666),
            entry("/home/app/notes", EntryKind::File, 0o666),
        ]);
        let scans = scan(files);
        let view = MergedView::build(&scans);
        let f = check_visible(&scans, &view, &MountPoints::default());
        assert_eq!(
            rules_of(&f),
            [
                (
                    "fs.world-writable",
                    Severity::Medium,
                    "/home/app/notes".into()
                ),
                ("fs.world-writable", Severity::Medium, "/srv/drop".into()),
                ("fs.world-writable", Severity::High, "/etc/app.conf".into()),
            ]
        );
        let drop = f
            .iter()
            .find(|f| f.location.to_string().contains("drop"))
            .unwrap();
        assert!(
            drop.evidence
                .as_ref()
                .unwrap()
                .excerpt
                .ends_with("3 world-writable files below")
        );
    }

    #[test]
    fn setuid_severity_depends_on_what_and_where() {
        let mut su = entry("/bin/su", EntryKind::File, 0o4755);
        su.binary = Some(Binary::Other);
        let mut helper = entry("/usr/local/bin/helper", EntryKind::File, 0o4755);
        helper.binary = Some(Binary::Other);
        let mut fake_su = entry("/app/su", EntryKind::File, 0o4755);
        fake_su.binary = Some(Binary::Other);
        let mut script = entry("/opt/run.sh", EntryKind::File, 0o4755);
        script.binary = Some(Binary::Script);
        let mut sgid = entry("/opt/tool", EntryKind::File, 0o2755);
        sgid.binary = Some(Binary::Other);
        let scans = scan(vec![su, helper, fake_su, script, sgid]);
        let view = MergedView::build(&scans);
        let f = check_visible(&scans, &view, &MountPoints::default());
        assert_eq!(
            rules_of(&f),
            [
                ("fs.setuid", Severity::Low, "/opt/run.sh".into()),
                ("fs.setuid", Severity::Medium, "/opt/tool".into()),
                ("fs.setuid", Severity::High, "/app/su".into()),
                ("fs.setuid", Severity::High, "/usr/local/bin/helper".into()),
                ("fs.setuid-standard", Severity::Low, "/bin/su".into()),
            ]
        );
    }

    #[test]
    fn file_capabilities_are_decoded() {
        // vfs_cap_data v2, effective, permitted = net_bind_service (bit 10).
        let mut raw = Vec::new();
        for w in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
            raw.extend_from_slice(&w.to_le_bytes());
        }
        let caps = decode_caps(&raw).unwrap();
        assert_eq!(caps.permitted, ["cap_net_bind_service"]);
        assert!(caps.effective);
        assert_eq!(caps_severity(&caps), Severity::Low);
        // v3 with sys_admin (bit 21) and a rootid.
        let mut raw = Vec::new();
        for w in [0x0300_0000u32, 1 << 21, 0, 0, 0, 0] {
            raw.extend_from_slice(&w.to_le_bytes());
        }
        let caps = decode_caps(&raw).unwrap();
        assert_eq!(caps.permitted, ["cap_sys_admin"]);
        assert_eq!(caps_severity(&caps), Severity::High);
        assert!(decode_caps(b"junk").is_none());
    }

    #[test]
    fn links_at_mount_points_and_devices() {
        let mut null = entry("/dev/null", EntryKind::CharDevice, 0o666);
        null.device = Some((1, 3));
        let mut mem = entry("/dev/mem", EntryKind::CharDevice, 0o640);
        mem.device = Some((1, 1));
        let scans = scan(vec![
            link("/data", "../../../../etc"),
            link("/srv", "/var/run/docker.sock"),
            link("/var/run", "/run"),
            link("/etc/mtab", "../proc/self/mounts"),
            link("/escape", "../../x"),
            null,
            mem,
        ]);
        let view = MergedView::build(&scans);
        let mounts = MountPoints {
            paths: vec![("VOLUME", "/data".into()), ("WORKDIR", "/srv/app".into())],
        };
        let f = check_visible(&scans, &view, &mounts);
        assert_eq!(
            rules_of(&f),
            [
                ("fs.device-node", Severity::Info, "/dev/null".into()),
                ("fs.device-node", Severity::High, "/dev/mem".into()),
                ("fs.symlink-at-mount-point", Severity::High, "/data".into()),
                ("fs.symlink-at-mount-point", Severity::High, "/srv".into()),
                (
                    "fs.symlink-escapes-root",
                    Severity::Medium,
                    "/escape".into()
                ),
            ]
        );
    }
}
