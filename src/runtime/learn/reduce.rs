//! Thousands of paths a run touched, reduced to a few landlock rules.
//!
//! The reduction rule, applied to each path and kind of access:
//! - **pseudo filesystems**: anything below `/proc` is `/proc`, below `/sys` is `/sys`; below
//!   `/dev/pts`, `/dev/shm`, `/dev/mqueue` that directory; any other `/dev` path is kept as it
//!   is (a device node: `/dev/null`, never all of `/dev`);
//! - **read or execute** → the path's top-level directory (`/usr/lib/x/libc.so.6` → `/usr`,
//!   `/bin/cat` → `/bin`), read+execute in the policy (`read_exec`); except below the
//!   directories where credentials sit beside what programs read ([`KEPT_TO_WHAT_WAS_READ`]:
//!   `/etc`, `/root`, `/home`), where a read is the file itself up to three levels
//!   (`/etc/passwd`, `/root/.profile`, `/etc/apt/sources.list`) and a deeper one its first
//!   three (`/etc/ssl/certs/x.pem` → `/etc/ssl/certs`): reading `/etc/passwd` must not
//!   grant `/etc/shadow`, nor a shell's `/root/.profile` the `/root/.ssh` keys;
//! - **write** → the directory the entry is in (landlock checks creating, removing and
//!   renaming there, and a new file does not exist yet when the next run's rules are made),
//!   cut to two levels (`/var/lib/dpkg/status` → `/var/lib`, `/tmp/out` → `/tmp`), read-write;
//! - **an unnamed file made in a directory** (`O_TMPFILE`) → that directory, cut to two levels
//!   (`/tmp` → `/tmp`, never its parent `/`), read-write;
//! - **a directory only listed** (opened `O_DIRECTORY` read-only: `opendir`, Python's
//!   `os.listdir` of its working directory) → that directory cut to two levels, list-only
//!   (`list`: landlock's READ_DIR, which covers the directories below it but no file's
//!   content): listing `/` no longer grants reading the whole image;
//! - a rule below a read-write rule, or below a read rule of the same kind, is dropped; a
//!   list rule at or below any other rule is dropped.
//!
//! So a run yields a rule per top-level directory it read, per file it read in `/etc`, `/root`
//! and `/home`, and per writable place it wrote: typically ten to twenty.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::Access;

/// Landlock path rules: read+execute, read-write and list-only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub read_exec: BTreeSet<PathBuf>,
    pub read_write: BTreeSet<PathBuf>,
    pub list: BTreeSet<PathBuf>,
}

/// Reduces observed paths to rules (see the module documentation).
pub fn reduce(paths: &BTreeMap<PathBuf, Access>) -> Rules {
    let mut rules = Rules::default();
    for (path, access) in paths {
        if access.write {
            rules.read_write.insert(write_rule(path));
        }
        if access.write_in {
            rules
                .read_write
                .insert(pseudo(path).unwrap_or_else(|| prefix(path, 2)));
        }
        if access.read || access.execute {
            rules.read_exec.insert(read_rule(path));
        }
        if access.list {
            rules.list.insert(list_rule(path));
        }
    }
    simplify(rules)
}

/// Drops rules another rule already covers.
pub fn simplify(rules: Rules) -> Rules {
    let covered = |p: &Path, by: &BTreeSet<PathBuf>| by.iter().any(|o| o != p && p.starts_with(o));
    let read_write: BTreeSet<PathBuf> = rules
        .read_write
        .iter()
        .filter(|p| !covered(p, &rules.read_write))
        .cloned()
        .collect();
    let read_exec = rules
        .read_exec
        .iter()
        .filter(|p| !covered(p, &rules.read_exec) && !read_write.iter().any(|w| p.starts_with(w)))
        .cloned()
        .collect();
    let list = simplify_list(&rules.list, &read_exec, &read_write);
    Rules {
        read_exec,
        read_write,
        list,
    }
}

/// The list rules no other rule covers: a read or write rule at or above one already lets the
/// directory be listed, and so does a list rule above it.
fn simplify_list(
    list: &BTreeSet<PathBuf>,
    read_exec: &BTreeSet<PathBuf>,
    read_write: &BTreeSet<PathBuf>,
) -> BTreeSet<PathBuf> {
    let at_or_above = |p: &Path, by: &BTreeSet<PathBuf>| by.iter().any(|o| p.starts_with(o));
    let below = |p: &Path| list.iter().any(|o| o != p && p.starts_with(o));
    list.iter()
        .filter(|p| !at_or_above(p, read_exec) && !at_or_above(p, read_write) && !below(p))
        .cloned()
        .collect()
}

/// The first `n` components of an absolute path (`/` itself for none).
fn prefix(path: &Path, n: usize) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components().skip(1).take(n) {
        out.push(c);
    }
    out
}

/// `/proc`, `/sys` and the `/dev` directories, or None for an ordinary path.
fn pseudo(path: &Path) -> Option<PathBuf> {
    for top in ["/proc", "/sys"] {
        if path.starts_with(top) {
            return Some(PathBuf::from(top));
        }
    }
    for dir in ["/dev/pts", "/dev/shm", "/dev/mqueue"] {
        if path.starts_with(dir) {
            return Some(PathBuf::from(dir));
        }
    }
    path.starts_with("/dev").then(|| path.to_path_buf())
}

/// Directories whose files are read one by one (see the module documentation): each holds
/// secrets (`/etc/shadow`, `/etc/ssl/private`, `~/.ssh`, tokens in dotfiles) next to files
/// every program reads.
pub const KEPT_TO_WHAT_WAS_READ: [&str; 3] = ["/etc", "/root", "/home"];

fn read_rule(path: &Path) -> PathBuf {
    if let Some(p) = pseudo(path) {
        return p;
    }
    if KEPT_TO_WHAT_WAS_READ.iter().any(|d| path.starts_with(d)) {
        return prefix(path, 3);
    }
    prefix(path, 1)
}

fn list_rule(path: &Path) -> PathBuf {
    pseudo(path).unwrap_or_else(|| prefix(path, 2))
}

fn write_rule(path: &Path) -> PathBuf {
    if let Some(p) = pseudo(path) {
        return p;
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    prefix(dir, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[(&str, Access)]) -> BTreeMap<PathBuf, Access> {
        list.iter().map(|(p, a)| (PathBuf::from(p), *a)).collect()
    }

    fn set(list: &[&str]) -> BTreeSet<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn reads_collapse_to_top_level_directories() {
        let r = reduce(&paths(&[
            ("/usr/lib/x86_64-linux-gnu/libc.so.6", Access::READ),
            ("/usr/share/zoneinfo/UTC", Access::READ),
            ("/usr/bin/python3", Access::EXECUTE),
            ("/bin/cat", Access::EXECUTE),
        ]));
        assert_eq!(r.read_exec, set(&["/bin", "/usr"]));
        assert!(r.read_write.is_empty());
    }

    #[test]
    fn reads_where_credentials_live_are_kept_to_what_was_read() {
        let r = reduce(&paths(&[
            ("/etc/passwd", Access::READ),
            ("/etc/group", Access::READ),
            ("/etc/apt/sources.list", Access::READ),
            ("/etc/ssl/certs/ca-certificates.crt", Access::READ),
            ("/etc/ssl/certs/x.pem", Access::READ),
            ("/root/.profile", Access::READ),
            ("/home/app/.config/tool/settings.json", Access::READ),
            ("/etcetera/x", Access::READ),
        ]));
        assert_eq!(
            r.read_exec,
            set(&[
                "/etc/apt/sources.list",
                "/etc/group",
                "/etc/passwd",
                "/etc/ssl/certs",
                "/etcetera",
                "/home/app/.config",
                "/root/.profile",
            ])
        );
        // A write there still grants the directory (a new file has no rule of its own yet),
        // which covers the reads below it.
        let r = reduce(&paths(&[
            ("/etc/passwd", Access::READ),
            ("/etc/app/state", Access::WRITE),
            ("/etc/app/conf", Access::READ),
        ]));
        assert_eq!(r.read_write, set(&["/etc/app"]));
        assert_eq!(r.read_exec, set(&["/etc/passwd"]));
    }

    #[test]
    fn writes_become_their_directory_cut_to_two_levels() {
        let r = reduce(&paths(&[
            ("/tmp/x", Access::WRITE),
            ("/tmp/x/y/z", Access::WRITE),
            ("/var/lib/dpkg/status", Access::WRITE),
            ("/var/lib/dpkg/info/a.list", Access::WRITE),
            ("/tmp/data.txt", Access::READ),
        ]));
        assert_eq!(r.read_write, set(&["/tmp", "/var/lib"]));
        // /tmp read is inside the read-write /tmp.
        assert!(r.read_exec.is_empty(), "{r:?}");
    }

    #[test]
    fn an_unnamed_file_grants_its_directory_not_the_parent() {
        let r = reduce(&paths(&[
            ("/tmp", Access::WRITE_IN),
            ("/var/cache/apt/archives/partial", Access::WRITE_IN),
            ("/etc/apt/apt.conf.d/docker", Access::READ),
        ]));
        assert_eq!(r.read_write, set(&["/tmp", "/var/cache"]));
        assert_eq!(r.read_exec, set(&["/etc/apt/apt.conf.d"]));
    }

    #[test]
    fn pseudo_filesystems_and_devices() {
        let r = reduce(&paths(&[
            ("/proc/12/status", Access::READ),
            ("/proc/self/oom_score_adj", Access::WRITE),
            ("/sys/fs/cgroup/memory.max", Access::READ),
            ("/dev/null", Access::WRITE),
            ("/dev/urandom", Access::READ),
            ("/dev/pts/0", Access::WRITE.union(Access::READ)),
        ]));
        assert_eq!(r.read_write, set(&["/dev/null", "/dev/pts", "/proc"]));
        assert_eq!(r.read_exec, set(&["/dev/urandom", "/sys"]));
    }

    #[test]
    fn the_root_is_kept_when_it_is_what_was_used() {
        let r = reduce(&paths(&[("/", Access::READ), ("/etc/hosts", Access::READ)]));
        assert_eq!(r.read_exec, set(&["/"]));
        let r = reduce(&paths(&[("/out.txt", Access::WRITE)]));
        assert_eq!(r.read_write, set(&["/"]));
    }

    #[test]
    fn a_directory_only_listed_is_a_list_rule() {
        let r = reduce(&paths(&[
            // Python started in /: sys.path[0] is its working directory, listed once.
            ("/", Access::LIST),
            ("/usr/lib/python3.11", Access::LIST),
            ("/usr/lib/python3.11/os.py", Access::READ),
            ("/srv/www/a/b", Access::LIST),
            ("/srv/www/a", Access::LIST),
            ("/etc", Access::LIST.union(Access::READ)),
        ]));
        assert_eq!(r.list, set(&["/"]), "{r:?}");
        assert_eq!(r.read_exec, set(&["/etc", "/usr"]));
        // Below a read rule, a list rule says nothing more; a deep one is cut to two levels.
        let r = reduce(&paths(&[
            ("/srv/www/a/b", Access::LIST),
            ("/srv/www/a", Access::LIST),
            ("/var/lib/x", Access::WRITE),
            ("/var/lib/y", Access::LIST),
            ("/proc/self/fd", Access::LIST),
        ]));
        assert_eq!(r.list, set(&["/proc", "/srv/www"]), "{r:?}");
        assert_eq!(r.read_write, set(&["/var/lib"]));
        assert!(r.read_exec.is_empty(), "{r:?}");
    }

    #[test]
    fn thousands_of_files_stay_a_handful_of_rules() {
        let mut many = BTreeMap::new();
        for i in 0..5000 {
            many.insert(
                PathBuf::from(format!("/usr/lib/mod{i}/f{i}.py")),
                Access::READ,
            );
            many.insert(PathBuf::from(format!("/app/cache/{i}/x")), Access::WRITE);
        }
        let r = reduce(&many);
        assert_eq!(r.read_exec, set(&["/usr"]));
        assert_eq!(r.read_write, set(&["/app/cache"]));
    }
}
