//! Memory and process-count limits of a container's cgroup, v1 or v2 (or both, on a hybrid
//! host: the v1 controller wins where it is mounted, as the kernel lets only one hierarchy own
//! a controller).
//!
//! A limit set on any ancestor cgroup binds the container too, so the walk goes up to the
//! hierarchy's root. Cgroup paths in `/proc/PID/cgroup` and mount roots in
//! `/proc/self/mountinfo` are both relative to rsafe's cgroup namespace, so they combine.

use std::path::{Path, PathBuf};

use super::Ctx;
use crate::audit::finding::{Evidence, Severity};
use crate::audit::procs::Process;
use crate::audit::procs::host::{Host, read_limit};
use crate::audit::procs::mountinfo::{Mount, is_under};
use crate::audit::procs::rules;

/// v1 reports "no limit" as the largest page-aligned value; anything this large is no limit.
const UNLIMITED_FLOOR: u64 = 1 << 62;

/// A cgroup controller and its limit files.
struct Controller {
    name: &'static str,
    v1_file: &'static str,
    v2_file: &'static str,
}

const MEMORY: Controller = Controller {
    name: "memory",
    v1_file: "memory.limit_in_bytes",
    v2_file: "memory.max",
};

const PIDS: Controller = Controller {
    name: "pids",
    v1_file: "pids.max",
    v2_file: "pids.max",
};

/// What the cgroup files say.
#[derive(Debug, PartialEq, Eq)]
enum Limit {
    /// Limited to this value by the cgroup at this path.
    Set(u64, PathBuf),
    /// No limit anywhere up the hierarchy; the text says where it looked.
    Unlimited(String),
    /// Could not be read.
    Unknown(String),
}

pub(super) fn check(cx: &mut Ctx<'_>) {
    let c = cx.container;
    let host = c.host();
    let Some(init) = c.init() else { return };
    let workload = c.workload().unwrap_or(init);
    let limits =
        std::fs::read_to_string(workload.dir(&host.proc_root).join("limits")).unwrap_or_default();

    match cgroup_limit(host, init, &MEMORY) {
        Limit::Set(..) => {}
        Limit::Unknown(why) => cx.not_inspected(init.pid, "memory limit", Some(&why)),
        Limit::Unlimited(evidence) => {
            let rlimit = read_limit(&limits, "Max address space").flatten();
            let (severity, extra) = match rlimit {
                Some(n) => (
                    Severity::Low,
                    format!("; only RLIMIT_AS = {n} bytes per process"),
                ),
                None => (Severity::Medium, String::new()),
            };
            cx.push(rules::NO_MEMORY_LIMIT.finding_at(
                severity,
                c.location(Some(init.pid), Some("cgroup".into())),
                Some(Evidence::plain(format!("{evidence}{extra}"))),
            ));
        }
    }
    match cgroup_limit(host, init, &PIDS) {
        Limit::Set(..) => {}
        Limit::Unknown(why) => cx.not_inspected(init.pid, "pids limit", Some(&why)),
        Limit::Unlimited(evidence) => {
            let rlimit = read_limit(&limits, "Max processes").flatten();
            let lowered = rlimit.filter(|n| host.default_nproc.is_none_or(|d| *n < d));
            let (severity, extra) = match lowered {
                Some(n) => (Severity::Low, format!("; only RLIMIT_NPROC = {n}")),
                None => (Severity::Medium, String::new()),
            };
            cx.push(rules::NO_PIDS_LIMIT.finding_at(
                severity,
                c.location(Some(init.pid), Some("cgroup".into())),
                Some(Evidence::plain(format!("{evidence}{extra}"))),
            ));
        }
    }
}

/// The limit `ctl` puts on process `p`.
fn cgroup_limit(host: &Host, p: &Process, ctl: &Controller) -> Limit {
    let v1 = p
        .cgroups
        .iter()
        .filter(|e| e.hierarchy != 0 && e.controllers.iter().any(|c| c == ctl.name))
        .find_map(|e| {
            let mount = host.cgroup_mounts.iter().find(|m| {
                m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == ctl.name)
            })?;
            Some((mount, e.path.as_str()))
        });
    if let Some((mount, path)) = v1 {
        return walk_up(mount, path, ctl.v1_file);
    }
    let v2 = p.cgroups.iter().find(|e| e.hierarchy == 0).and_then(|e| {
        let mount = host.cgroup_mounts.iter().find(|m| m.fs_type == "cgroup2")?;
        let dir = dir_of(mount, &e.path)?;
        dir.join(ctl.v2_file)
            .exists()
            .then_some((mount, e.path.as_str()))
    });
    if let Some((mount, path)) = v2 {
        return walk_up(mount, path, ctl.v2_file);
    }
    Limit::Unlimited(format!(
        "no {} cgroup controller is in use for this container",
        ctl.name
    ))
}

/// The directory of cgroup `path` under `mount`, if the mount shows it.
fn dir_of(mount: &Mount, path: &str) -> Option<PathBuf> {
    if !is_under(path, &mount.root) {
        return None;
    }
    let rel = path
        .strip_prefix(mount.root.trim_end_matches('/'))
        .unwrap_or(path)
        .trim_start_matches('/');
    let dir = Path::new(&mount.mount_point);
    Some(if rel.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(rel)
    })
}

/// Reads `file` in the cgroup of `path` and every ancestor up to the mount's root.
fn walk_up(mount: &Mount, path: &str, file: &str) -> Limit {
    let Some(mut dir) = dir_of(mount, path) else {
        return Limit::Unknown(format!(
            "cgroup {path} is outside the {} mount at {}",
            mount.fs_type, mount.mount_point
        ));
    };
    let top = PathBuf::from(&mount.mount_point);
    let first = dir.clone();
    loop {
        let f = dir.join(file);
        match std::fs::read_to_string(&f) {
            Ok(text) => {
                let text = text.trim();
                if let Ok(n) = text.parse::<u64>()
                    && n < UNLIMITED_FLOOR
                {
                    return Limit::Set(n, dir);
                }
            }
            // The root cgroup has no limit files: a process there has no limit at all.
            Err(_) if dir == top => {}
            Err(e) if dir == first => {
                return Limit::Unknown(format!("{}: {e}", f.display()));
            }
            Err(_) => {}
        }
        if dir == top || !dir.pop() {
            break;
        }
    }
    Limit::Unlimited(format!(
        "{file} is unlimited in {} and every parent",
        first.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::procs::mountinfo::parse;

    fn mount(line: &str, dir: &Path) -> Mount {
        let mut m = parse(line).remove(0);
        m.mount_point = dir.to_string_lossy().into_owned();
        m
    }

    #[test]
    fn a_parent_limit_binds_the_child() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(
            root.join("a/b/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        std::fs::write(root.join("a/memory.limit_in_bytes"), "67108864\n").unwrap();
        let m = mount("35 31 0:32 / /x rw - cgroup cgroup rw,memory", root);
        assert_eq!(
            walk_up(&m, "/a/b", "memory.limit_in_bytes"),
            Limit::Set(64 << 20, root.join("a"))
        );
        std::fs::write(
            root.join("a/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        assert!(matches!(
            walk_up(&m, "/a/b", "memory.limit_in_bytes"),
            Limit::Unlimited(_)
        ));
        std::fs::write(root.join("a/b/pids.max"), "max\n").unwrap();
        assert!(matches!(
            walk_up(&m, "/a/b", "pids.max"),
            Limit::Unlimited(_)
        ));
        assert!(matches!(walk_up(&m, "/a/c", "pids.max"), Limit::Unknown(_)));
        // The root cgroup itself: no limit file, no limit.
        assert!(matches!(walk_up(&m, "/", "pids.max"), Limit::Unlimited(_)));
    }

    #[test]
    fn cgroup_paths_under_a_mount_root() {
        let m = mount(
            "126 122 0:32 /process_api/x /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory",
            Path::new("/m"),
        );
        assert_eq!(
            dir_of(&m, "/process_api/x/c1"),
            Some(PathBuf::from("/m/c1"))
        );
        assert_eq!(dir_of(&m, "/elsewhere"), None);
    }
}
