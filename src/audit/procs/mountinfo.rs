//! `/proc/PID/mountinfo`: what a process's mount namespace looks like from its root, and how a
//! container mount maps back to a host path.
//!
//! A line reads `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`:
//! mount id, parent id, device, the directory of the filesystem that is mounted (`root`), where
//! (relative to the process's root), per-mount options, optional propagation fields, `-`, the
//! filesystem type, the source and per-superblock options. Paths escape space, tab, newline and
//! backslash as octal (`\040`).

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u64,
    pub parent: u64,
    /// `major:minor` of the filesystem.
    pub device: String,
    /// The directory of the filesystem that is mounted here (`/` for the whole filesystem).
    pub root: String,
    /// Where, relative to the reading process's root.
    pub mount_point: String,
    pub read_only: bool,
    /// Peer group ids from `shared:N`.
    pub shared: Option<u64>,
    /// Peer group from `master:N` (receives propagation from it).
    pub master: Option<u64>,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
}

impl Mount {
    /// Whether `path` (absolute, in the same view as `mount_point`) is this mount point or
    /// below it.
    pub fn covers(&self, path: &str) -> bool {
        is_under(path, &self.mount_point)
    }
}

/// Whether `path` is `base` or below it, by whole components.
pub fn is_under(path: &str, base: &str) -> bool {
    if base == "/" {
        return path.starts_with('/');
    }
    path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Parses a whole mountinfo file, skipping lines it does not understand (none on a sane
/// kernel; a malformed line must not hide the others).
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let mut f = before.split(' ');
    let id = f.next()?.parse().ok()?;
    let parent = f.next()?.parse().ok()?;
    let device = f.next()?.to_owned();
    let root = unescape(f.next()?);
    let mount_point = unescape(f.next()?);
    let options = f.next()?;
    let (mut shared, mut master) = (None, None);
    for opt in f {
        if let Some(n) = opt.strip_prefix("shared:") {
            shared = n.parse().ok();
        } else if let Some(n) = opt.strip_prefix("master:") {
            master = n.parse().ok();
        }
    }
    let mut a = after.split(' ');
    let fs_type = a.next()?.to_owned();
    let source = unescape(a.next().unwrap_or(""));
    let super_options = a.next().unwrap_or("").to_owned();
    Some(Mount {
        id,
        parent,
        device,
        root,
        mount_point,
        read_only: options.split(',').any(|o| o == "ro"),
        shared,
        master,
        fs_type,
        source,
        super_options,
    })
}

/// Undoes the kernel's octal escaping of ` `, `\t`, `\n` and `\\`.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The host's mounts, to tell which container mounts are host filesystems and where on the
/// host they come from.
#[derive(Debug, Clone, Default)]
pub struct HostMounts {
    pub mounts: Vec<Mount>,
}

impl HostMounts {
    /// The host path a container mount shows, when its filesystem is also mounted on the host:
    /// the host mount of the same device whose `root` contains the container mount's `root`
    /// (the deepest such root, then the shortest mount point). `None` for a filesystem the host
    /// does not have mounted (the container's own tmpfs, overlay, procfs instance, …).
    pub fn host_path(&self, m: &Mount) -> Option<String> {
        let best = self
            .mounts
            .iter()
            .filter(|h| h.device == m.device && is_under(&m.root, &h.root))
            .max_by(|a, b| {
                a.root
                    .len()
                    .cmp(&b.root.len())
                    .then(b.mount_point.len().cmp(&a.mount_point.len()))
            })?;
        let rest = if best.root == "/" {
            m.root.as_str()
        } else {
            &m.root[best.root.len()..]
        };
        Some(join(&best.mount_point, rest))
    }

    /// Whether peer group `group` also has members on the host (propagation crosses over).
    pub fn has_peer_group(&self, group: u64) -> bool {
        self.mounts.iter().any(|h| h.shared == Some(group))
    }

    /// The host mount at exactly `mount_point`, topmost (the last one listed).
    pub fn at(&self, mount_point: &str) -> Option<&Mount> {
        self.mounts
            .iter()
            .rev()
            .find(|h| h.mount_point == mount_point)
    }
}

/// Joins an absolute base and an absolute-or-empty rest without doubling slashes.
pub fn join(base: &str, rest: &str) -> String {
    let rest = rest.trim_start_matches('/');
    match (base.trim_end_matches('/'), rest) {
        ("", "") => "/".into(),
        (b, "") => b.to_owned(),
        (b, r) => format!("{b}/{r}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "\
22 27 0:21 / /proc rw,relatime shared:5 - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 27 254:0 /srv/data /data rw,relatime - ext4 /dev/vda rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=1k";

    #[test]
    fn parses_fields_and_escapes() {
        let m = parse(
            "115 45 254:0 /tmp/b\\040x/rootfs / ro,relatime master:3 shared:9 - ext4 /dev/vda rw,discard\n\
             garbage line\n\
             116 115 0:58 / /proc rw,relatime - proc proc rw",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].root, "/tmp/b x/rootfs");
        assert!(m[0].read_only && !m[1].read_only);
        assert_eq!((m[0].shared, m[0].master), (Some(9), Some(3)));
        assert_eq!((m[1].fs_type.as_str(), m[1].parent), ("proc", 115));
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn maps_container_mounts_to_host_paths() {
        let host = HostMounts {
            mounts: parse(HOST),
        };
        let c = |line: &str| parse_line(line).unwrap();
        // The container's root is a directory of the host's root filesystem.
        let root = c("115 45 254:0 /tmp/b/rootfs / ro - ext4 /dev/vda rw");
        assert_eq!(host.host_path(&root).as_deref(), Some("/tmp/b/rootfs"));
        // `-v /:/host`.
        let all = c("136 124 254:0 / /host rw - ext4 /dev/vda rw");
        assert_eq!(host.host_path(&all).as_deref(), Some("/"));
        // Below a host bind mount: the path through the deepest root.
        let sub = c("137 124 254:0 /srv/data/x /x rw - ext4 /dev/vda rw");
        assert_eq!(host.host_path(&sub).as_deref(), Some("/data/x"));
        let null = c("129 128 0:6 /null /dev/null rw - devtmpfs devtmpfs rw");
        assert_eq!(host.host_path(&null).as_deref(), Some("/dev/null"));
        let own = c("116 115 0:58 / /proc rw - proc proc rw");
        assert_eq!(host.host_path(&own), None);
        assert!(host.has_peer_group(5) && !host.has_peer_group(9));
        assert_eq!(host.at("/proc").map(|m| m.id), Some(22));
    }

    #[test]
    fn path_containment_is_by_component() {
        assert!(is_under("/host/etc", "/host") && is_under("/host", "/host"));
        assert!(!is_under("/hostile", "/host"));
        assert!(is_under("/anything", "/"));
        assert_eq!(join("/", "/etc"), "/etc");
        assert_eq!(join("/data", ""), "/data");
        assert_eq!(join("/", ""), "/");
    }
}
