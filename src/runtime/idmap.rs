//! User-namespace id maps: which host ids the container's ids stand for.
//!
//! Every container gets a user namespace. Its `uid_map`/`gid_map` say which host id each
//! container id is, and that is what the kernel checks on every file and signal. The rules:
//!
//! - **rootless** (the caller is not root): container root is the caller. When `/etc/subuid`
//!   and `/etc/subgid` grant the caller a range and `newuidmap`/`newgidmap` are installed,
//!   container ids 1.. map onto that range (so images with several users work); the set-uid
//!   helpers write those maps, since an unprivileged process may only map its own id. Otherwise
//!   the map is the single line `0 <caller> 1` and `setgroups` is denied first (the kernel
//!   demands that before an unprivileged `gid_map` write).
//! - **root**: container root is an unprivileged host range, never host uid 0: the `root`
//!   entry of `/etc/subuid`/`/etc/subgid` when there is one, else [`DEFAULT_ROOT_RANGE`].
//!   Root writes the maps itself.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Host ids that container ids 0..65536 map onto when root runs a container and `/etc/subuid`
/// has no `root` entry: inside systemd's range for container ids (524288–1879048191), far from
/// any login user and from the ranges `useradd` hands out (100000 upwards).
pub const DEFAULT_ROOT_RANGE: IdRange = IdRange {
    container: 0,
    host: 1_000_000_000,
    size: 65_536,
};

/// At most this many ids are mapped from a subordinate range: the 16-bit ids images use.
pub const MAX_RANGE: u32 = 65_536;

/// What can go wrong while planning or writing id maps.
#[derive(Debug, thiserror::Error)]
pub enum IdMapError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot run {helper}: {source}")]
    Spawn {
        helper: &'static str,
        source: io::Error,
    },
    #[error("{helper} {args} failed: {stderr}")]
    Helper {
        helper: &'static str,
        args: String,
        stderr: String,
    },
}

/// One line of a `uid_map`/`gid_map`: `size` ids from `container` upwards are host ids from
/// `host` upwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

impl IdRange {
    fn host_of(&self, id: u32) -> Option<u32> {
        let offset = id.checked_sub(self.container)?;
        (offset < self.size).then(|| self.host + offset)
    }

    fn container_of(&self, host: u32) -> Option<u32> {
        let offset = host.checked_sub(self.host)?;
        (offset < self.size).then(|| self.container + offset)
    }
}

/// Who writes the maps into `/proc/<pid>/{uid,gid}_map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MapWriter {
    /// rsafe itself: root (any map), or an unprivileged caller mapping only its own ids.
    Direct,
    /// The set-uid `newuidmap`/`newgidmap` helpers, which check `/etc/subuid`/`/etc/subgid`.
    Helpers,
}

/// The complete id mapping of one container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
    pub writer: MapWriter,
    /// Whether `setgroups(2)` stays allowed in the container. It is denied for a single-id
    /// rootless map (the kernel's condition for letting an unprivileged process write it).
    pub setgroups: bool,
}

/// The subordinate id files the plan is read from (swappable for tests).
#[derive(Debug, Clone)]
pub struct SubIdFiles {
    pub subuid: PathBuf,
    pub subgid: PathBuf,
}

impl Default for SubIdFiles {
    fn default() -> Self {
        SubIdFiles {
            subuid: PathBuf::from("/etc/subuid"),
            subgid: PathBuf::from("/etc/subgid"),
        }
    }
}

/// Who is starting the container, as far as id mapping cares.
#[derive(Debug, Clone)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// The login name, to match name-keyed `/etc/subuid` lines.
    pub name: Option<String>,
}

impl Caller {
    /// The real ids of this process.
    pub fn current() -> Caller {
        let uid = nix::unistd::getuid();
        let gid = nix::unistd::getgid();
        let name = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name);
        Caller {
            uid: uid.as_raw(),
            gid: gid.as_raw(),
            name,
        }
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// The ids this process's user namespace maps (`/proc/self/uid_map`, `gid_map`) as an
/// identity map of a nested namespace: what rsafe-runtime gives a container when it runs as
/// root of a user namespace that is not the host's (under rootless podman), where only those
/// ids exist. `None` in the host's own namespace (its map is the whole id space).
pub fn nested_identity() -> Option<IdMap> {
    let read = |file: &str| -> Option<Vec<IdRange>> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut f = l.split_whitespace().map(|n| n.parse::<u32>().ok());
                let (inside, _outside, size) = (f.next()??, f.next()??, f.next()??);
                Some(IdRange {
                    container: inside,
                    host: inside,
                    size,
                })
            })
            .collect()
    };
    let (uids, gids) = (read("/proc/self/uid_map")?, read("/proc/self/gid_map")?);
    let whole = |r: &[IdRange]| r.len() == 1 && r[0].container == 0 && r[0].size == u32::MAX;
    if whole(&uids) {
        return None;
    }
    Some(IdMap {
        uids,
        gids,
        writer: MapWriter::Direct,
        setgroups: true,
    })
}

impl IdMap {
    /// Whether every id maps to itself (a nested namespace's identity map): the files of the
    /// parent namespace need no id-mapped mount.
    pub fn is_identity(&self) -> bool {
        self.uids
            .iter()
            .chain(&self.gids)
            .all(|r| r.container == r.host)
    }

    /// The mapping a container started by this process gets (the system's subordinate id
    /// files, the helpers if they can work).
    pub fn for_this_process() -> IdMap {
        let caller = Caller::current();
        // Root writes the maps itself: no need to look for the helpers.
        let helpers = !caller.is_root() && helpers_available();
        IdMap::plan(&caller, &SubIdFiles::default(), helpers)
    }

    /// Plans the mapping for `caller`: see the module documentation for the rules.
    /// `helpers_available` says whether `newuidmap` and `newgidmap` can be run.
    pub fn plan(caller: &Caller, files: &SubIdFiles, helpers_available: bool) -> IdMap {
        let subuid = read_subids(&files.subuid, caller);
        let subgid = read_subids(&files.subgid, caller);
        if caller.is_root() {
            let uid = subuid
                .first()
                .map_or(DEFAULT_ROOT_RANGE, |r| root_range(*r));
            let gid = subgid
                .first()
                .map_or(DEFAULT_ROOT_RANGE, |r| root_range(*r));
            return IdMap {
                uids: vec![uid],
                gids: vec![gid],
                writer: MapWriter::Direct,
                setgroups: true,
            };
        }
        let own = |id| IdRange {
            container: 0,
            host: id,
            size: 1,
        };
        match (subuid.first(), subgid.first()) {
            (Some(&(us, uc)), Some(&(gs, gc))) if helpers_available => {
                let sub = |start, count: u32| IdRange {
                    container: 1,
                    host: start,
                    size: count.min(MAX_RANGE - 1),
                };
                IdMap {
                    uids: vec![own(caller.uid), sub(us, uc)],
                    gids: vec![own(caller.gid), sub(gs, gc)],
                    writer: MapWriter::Helpers,
                    setgroups: true,
                }
            }
            _ => IdMap {
                uids: vec![own(caller.uid)],
                gids: vec![own(caller.gid)],
                writer: MapWriter::Direct,
                setgroups: false,
            },
        }
    }

    /// The host uid that container uid `id` is, if it is mapped.
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        self.uids.iter().find_map(|r| r.host_of(id))
    }

    /// The host gid that container gid `id` is, if it is mapped.
    pub fn host_gid(&self, id: u32) -> Option<u32> {
        self.gids.iter().find_map(|r| r.host_of(id))
    }

    /// The container uid that host uid `host` appears as, if it is mapped.
    pub fn container_uid(&self, host: u32) -> Option<u32> {
        self.uids.iter().find_map(|r| r.container_of(host))
    }

    /// The container gid that host gid `host` appears as, if it is mapped.
    pub fn container_gid(&self, host: u32) -> Option<u32> {
        self.gids.iter().find_map(|r| r.container_of(host))
    }

    /// Whether only one uid (container root) exists in the container.
    pub fn is_single(&self) -> bool {
        self.uids.iter().map(|r| u64::from(r.size)).sum::<u64>() == 1
    }

    /// Writes the maps of the (new user namespace of) process `pid`. Must run in the parent
    /// user namespace, before the child uses any id.
    pub fn write(&self, pid: i32) -> Result<(), IdMapError> {
        match self.writer {
            MapWriter::Direct => {
                let proc = PathBuf::from(format!("/proc/{pid}"));
                if !self.setgroups {
                    write_file(&proc.join("setgroups"), "deny")?;
                }
                write_file(&proc.join("uid_map"), &map_file_text(&self.uids))?;
                write_file(&proc.join("gid_map"), &map_file_text(&self.gids))
            }
            MapWriter::Helpers => {
                // Both at once: each is a set-uid program's whole start-up (~1 ms).
                let uids = Helper::spawn("newuidmap", pid, &self.uids);
                let gids = Helper::spawn("newgidmap", pid, &self.gids);
                let uids = uids.and_then(Helper::wait);
                gids.and_then(Helper::wait).and(uids)
            }
        }
    }
}

impl fmt::Display for IdMap {
    /// `uid 0→1000, 1-65535→100000-165534; gid …` — for `--verbose`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges = |rs: &[IdRange]| {
            rs.iter()
                .map(|r| {
                    if r.size == 1 {
                        format!("{}→{}", r.container, r.host)
                    } else {
                        format!(
                            "{}-{}→{}-{}",
                            r.container,
                            r.container + (r.size - 1),
                            r.host,
                            r.host + (r.size - 1)
                        )
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "uid {}; gid {}", ranges(&self.uids), ranges(&self.gids))
    }
}

/// Container ids 0.. onto a subordinate range of root (at most [`MAX_RANGE`] ids).
fn root_range((start, count): (u32, u32)) -> IdRange {
    IdRange {
        container: 0,
        host: start,
        size: count.min(MAX_RANGE),
    }
}

/// The `(start, count)` ranges of `caller` in a subordinate id file (`name:start:count` or
/// `uid:start:count` lines). A missing or unreadable file means no ranges.
fn read_subids(path: &Path, caller: &Caller) -> Vec<(u32, u32)> {
    std::fs::read_to_string(path)
        .map(|text| parse_subids(&text, caller))
        .unwrap_or_default()
}

fn parse_subids(text: &str, caller: &Caller) -> Vec<(u32, u32)> {
    let uid = caller.uid.to_string();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let who = fields.next()?;
            let start = fields.next()?.parse::<u32>().ok()?;
            let count = fields.next()?.parse::<u32>().ok()?;
            let mine = who == uid || caller.name.as_deref() == Some(who);
            (mine && count > 0 && start.checked_add(count).is_some()).then_some((start, count))
        })
        .collect()
}

/// The text of a `uid_map`/`gid_map` file.
fn map_file_text(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.container, r.host, r.size))
        .collect()
}

fn write_file(path: &Path, text: &str) -> Result<(), IdMapError> {
    std::fs::write(path, text).map_err(|source| IdMapError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A running `newuidmap` or `newgidmap`.
struct Helper {
    helper: &'static str,
    args: Vec<String>,
    child: std::process::Child,
}

impl Helper {
    fn spawn(helper: &'static str, pid: i32, ranges: &[IdRange]) -> Result<Helper, IdMapError> {
        let mut args = vec![pid.to_string()];
        for r in ranges {
            args.extend([r.container, r.host, r.size].map(|n| n.to_string()));
        }
        let child = Command::new(helper)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|source| IdMapError::Spawn { helper, source })?;
        Ok(Helper {
            helper,
            args,
            child,
        })
    }

    fn wait(self) -> Result<(), IdMapError> {
        let Helper {
            helper,
            args,
            child,
        } = self;
        let out = child
            .wait_with_output()
            .map_err(|source| IdMapError::Spawn { helper, source })?;
        if out.status.success() {
            return Ok(());
        }
        Err(IdMapError::Helper {
            helper,
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " "),
        })
    }
}

/// Whether the set-uid helpers are installed and able to work: set-uid root, and this process's
/// capability bounding set still holds what they need (a sandbox that emptied it, like
/// `setpriv --bounding-set=-all`, leaves them powerless).
pub fn helpers_available() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let installed = ["newuidmap", "newgidmap"].iter().all(|name| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .chain([PathBuf::from("/usr/bin")])
            .any(|dir| {
                std::fs::metadata(dir.join(name))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o4000 != 0)
            })
    });
    installed
        && std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| bounding_set(&s))
            .is_some_and(|bnd| bnd & HELPER_CAPS == HELPER_CAPS)
}

/// CAP_DAC_OVERRIDE (1), CAP_SETGID (6), CAP_SETUID (7): what `newuidmap` needs to open and
/// write another process's map.
const HELPER_CAPS: u64 = (1 << 1) | (1 << 6) | (1 << 7);

/// The `CapBnd` mask of a `/proc/<pid>/status` text.
fn bounding_set(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(subuid: &str, subgid: &str) -> (tempfile::TempDir, SubIdFiles) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("subuid"), subuid).unwrap();
        std::fs::write(dir.path().join("subgid"), subgid).unwrap();
        let f = SubIdFiles {
            subuid: dir.path().join("subuid"),
            subgid: dir.path().join("subgid"),
        };
        (dir, f)
    }

    fn user(uid: u32, name: &str) -> Caller {
        Caller {
            uid,
            gid: uid,
            name: Some(name.into()),
        }
    }

    #[test]
    fn root_never_maps_to_host_root() {
        let (_d, f) = files("", "");
        let map = IdMap::plan(&user(0, "root"), &f, true);
        assert_eq!(map.uids, vec![DEFAULT_ROOT_RANGE]);
        assert_eq!(map.host_uid(0), Some(1_000_000_000));
        assert_eq!(map.container_uid(0), None);
        assert_eq!(map.writer, MapWriter::Direct);
        assert!(map.setgroups);
    }

    #[test]
    fn root_uses_its_subuid_entry() {
        let (_d, f) = files(
            "alice:100000:65536\nroot:300000:100000\n",
            "0:400000:65536\n",
        );
        let map = IdMap::plan(&user(0, "root"), &f, false);
        assert_eq!(
            map.uids,
            vec![IdRange {
                container: 0,
                host: 300000,
                size: 65536
            }]
        );
        assert_eq!(map.host_gid(0), Some(400000));
    }

    #[test]
    fn rootless_with_ranges_maps_root_to_caller_and_the_rest_to_the_range() {
        let (_d, f) = files("other:1:2\nalice:100000:65536\n", "1000:200000:65536\n");
        let map = IdMap::plan(&user(1000, "alice"), &f, true);
        assert_eq!(map.writer, MapWriter::Helpers);
        assert_eq!(map.host_uid(0), Some(1000));
        assert_eq!(map.host_uid(1), Some(100000));
        assert_eq!(map.host_uid(1000), Some(100999));
        assert_eq!(map.host_uid(65535), Some(165534));
        assert_eq!(map.host_uid(65536), None);
        assert_eq!(map.host_gid(1000), Some(200999));
        assert_eq!(map.container_uid(1000), Some(0));
        assert!(!map.is_single());
    }

    #[test]
    fn rootless_without_ranges_or_helpers_maps_only_the_caller() {
        let (_d, f) = files("alice:100000:65536\n", "alice:100000:65536\n");
        let map = IdMap::plan(&user(1000, "alice"), &f, false);
        assert!(map.is_single());
        assert!(!map.setgroups);
        assert_eq!(map.writer, MapWriter::Direct);
        let (_d, f) = files("", "");
        assert!(IdMap::plan(&user(1000, "alice"), &f, true).is_single());
    }

    #[test]
    fn malformed_subid_lines_are_ignored() {
        let c = user(1000, "alice");
        assert_eq!(
            parse_subids(
                "alice:x:1\nalice:5\nalice:4294967295:2\nalice:7:0\nalice:9:3",
                &c
            ),
            vec![(9, 3)]
        );
    }

    #[test]
    fn bounding_set_parsing() {
        let full = "Name:\tx\nCapBnd:\t000001ffffffffff\n";
        assert_eq!(bounding_set(full).unwrap() & HELPER_CAPS, HELPER_CAPS);
        assert_eq!(bounding_set("CapBnd:\t0000000000000000\n"), Some(0));
        assert_eq!(bounding_set("nothing"), None);
    }

    #[test]
    fn map_text_and_display() {
        let (_d, f) = files("alice:100000:65536\n", "alice:100000:65536\n");
        let map = IdMap::plan(&user(1000, "alice"), &f, true);
        assert_eq!(map_file_text(&map.uids), "0 1000 1\n1 100000 65535\n");
        assert_eq!(
            map.to_string(),
            "uid 0→1000, 1-65535→100000-165534; gid 0→1000, 1-65535→100000-165534"
        );
    }
}
