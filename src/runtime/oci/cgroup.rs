//! The container's cgroup at the bundle's `linux.cgroupsPath`, in every hierarchy (as runc
//! does: tools read a container's cgroup in any of them), with `linux.resources` written.
//!
//! Paths are cgroupfs paths: `/libpod_parent/libpod-ID` (podman with `--cgroup-manager
//! cgroupfs`), `/default/ID` (containerd), absolute from each hierarchy's root; a relative one
//! is below the runtime's own cgroup. systemd's `slice:prefix:name` form is refused: rsafe
//! does not talk to systemd (`--systemd-cgroup` is refused too).

use std::path::{Path, PathBuf};

use super::OciError;
use super::bundle::Resources;
use crate::runtime::cgroups::{self, Cgroup, CgroupError, Version};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OciError + '_ {
    move |source| {
        OciError::Cgroup(CgroupError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Makes the cgroup in every hierarchy and writes the limits. On failure nothing is left.
pub fn create(path: &str, resources: &Resources, id: &str) -> Result<Cgroup, OciError> {
    if path.contains(':') {
        return Err(OciError::Invalid(format!(
            "linux.cgroupsPath {path:?}: systemd slice paths are not supported (use the cgroupfs manager)"
        )));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(OciError::Invalid(format!(
            "linux.cgroupsPath {path:?}: \"..\" is not allowed"
        )));
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut cg = Cgroup { dirs: Vec::new() };
    for h in cgroups::hierarchies()? {
        // A v2 hierarchy next to v1 ones (hybrid) carries no controller rsafe writes, but the
        // container is put there too, so that it is whole in every hierarchy.
        let base = if path.starts_with('/') {
            h.mount_point.clone()
        } else {
            own_dir(&own, &h)
        };
        let dir = base.join(path.trim_start_matches('/'));
        if cg.dirs.iter().any(|(d, _)| *d == dir) {
            continue;
        }
        if let Err(e) = make_dirs(&h, &dir) {
            remove(&cg);
            return Err(e);
        }
        cg.dirs.push((dir.clone(), h.version));
        if let Err(e) = write_limits(&dir, &h, resources) {
            remove(&cg);
            return Err(e);
        }
    }
    if cg.dirs.is_empty() {
        return Err(OciError::Invalid(format!(
            "linux.cgroupsPath {path:?}: no cgroup hierarchy is mounted (container {id})"
        )));
    }
    Ok(cg)
}

/// Makes `dir` and the missing directories above it. A new cpuset directory has no CPUs and
/// no memory nodes, and nothing can join it (nor can its children get any) until it is given
/// its parent's: each directory made is, top down.
fn make_dirs(h: &cgroups::Hierarchy, dir: &Path) -> Result<(), OciError> {
    let below_mount: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| *d != h.mount_point && d.starts_with(&h.mount_point))
        .collect();
    let cpuset = h.version == Version::V1 && h.controllers.iter().any(|c| c == "cpuset");
    for d in below_mount.into_iter().rev() {
        // Another `create` may make the same parent (podman's libpod_parent) at once.
        match std::fs::create_dir(d) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io_err(d)(e)),
            _ => {}
        }
        for file in ["cpuset.cpus", "cpuset.mems"].iter().filter(|_| cpuset) {
            let path = d.join(file);
            let own = std::fs::read_to_string(&path).unwrap_or_default();
            if own.trim().is_empty() {
                std::fs::write(&path, inherited(d, file)).map_err(io_err(&path))?;
            }
        }
    }
    Ok(())
}

/// This process's cgroup directory in hierarchy `h` (for relative paths).
fn own_dir(own: &str, h: &cgroups::Hierarchy) -> PathBuf {
    let rel = own
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            let matches = match h.version {
                Version::V2 => ctrls.is_empty(),
                Version::V1 => ctrls
                    .split(',')
                    .any(|c| h.controllers.iter().any(|o| o == c)),
            };
            matches.then_some(path)
        })
        .next()
        .unwrap_or("/");
    h.mount_point.join(rel.trim_start_matches('/'))
}

fn write_limits(dir: &Path, h: &cgroups::Hierarchy, r: &Resources) -> Result<(), OciError> {
    let has = |c: &str| h.controllers.iter().any(|o| o == c);
    let write = |file: &str, value: String| -> Result<(), OciError> {
        let path = dir.join(file);
        std::fs::write(&path, value).map_err(io_err(&path))
    };
    match h.version {
        Version::V1 => {
            if has("memory") {
                write_v1_memory(dir, r)?;
            }
            if has("pids")
                && let Some(p) = r.pids
            {
                write("pids.max", max_or(p))?;
            }
            if has("cpu") {
                if let Some(s) = r.cpu_shares {
                    write("cpu.shares", s.to_string())?;
                }
                if let Some(p) = r.cpu_period {
                    write("cpu.cfs_period_us", p.to_string())?;
                }
                if let Some(q) = r.cpu_quota {
                    write("cpu.cfs_quota_us", q.max(-1).to_string())?;
                }
            }
            if has("cpuset") {
                // A new cpuset cgroup is empty: nothing can join it until cpus and mems are set.
                for (file, value) in [
                    ("cpuset.cpus", &r.cpuset_cpus),
                    ("cpuset.mems", &r.cpuset_mems),
                ] {
                    let value = match value {
                        Some(v) => v.clone(),
                        None => inherited(dir, file),
                    };
                    write(file, value)?;
                }
            }
            if has("devices") {
                for (allow, line) in &r.devices {
                    write(
                        if *allow {
                            "devices.allow"
                        } else {
                            "devices.deny"
                        },
                        line.clone(),
                    )?;
                }
            }
        }
        Version::V2 => {
            let available =
                std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            let has2 = |c: &str| available.split_whitespace().any(|a| a == c);
            if has2("memory") {
                if let Some(m) = r.memory {
                    write("memory.max", max_or(m))?;
                }
                // v2's swap limit is swap alone, the spec's memory + swap.
                match (r.memory_swap, r.memory) {
                    (Some(s), _) if s < 0 => write("memory.swap.max", "max".into())?,
                    (Some(s), Some(m)) if m > 0 => {
                        write("memory.swap.max", (s - m).max(0).to_string())?;
                    }
                    _ => {}
                }
            }
            if has2("pids")
                && let Some(p) = r.pids
            {
                write("pids.max", max_or(p))?;
            }
            if has2("cpu") && (r.cpu_quota.is_some() || r.cpu_period.is_some()) {
                let quota = r.cpu_quota.filter(|q| *q > 0).map_or("max".into(), max_or);
                write(
                    "cpu.max",
                    format!("{quota} {}", r.cpu_period.unwrap_or(100_000)),
                )?;
            }
        }
    }
    Ok(())
}

/// A limit as cgroup files take it: negative is unlimited (`max`).
fn max_or(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

/// v1 memory limits (`-1` is unlimited there). The memory + swap limit may never be below the
/// memory limit, so when an update raises both, the swap limit goes first.
fn write_v1_memory(dir: &Path, r: &Resources) -> Result<(), OciError> {
    let write = |file: &str, value: i64| {
        let path = dir.join(file);
        std::fs::write(&path, value.max(-1).to_string()).map_err(io_err(&path))
    };
    let swap = r
        .memory_swap
        .filter(|_| dir.join("memory.memsw.limit_in_bytes").exists());
    match (r.memory, swap) {
        (Some(m), Some(s)) => {
            if write("memory.limit_in_bytes", m).is_err() {
                write("memory.memsw.limit_in_bytes", s)?;
                write("memory.limit_in_bytes", m)
            } else {
                write("memory.memsw.limit_in_bytes", s)
            }
        }
        (Some(m), None) => write("memory.limit_in_bytes", m),
        (None, Some(s)) => write("memory.memsw.limit_in_bytes", s),
        (None, None) => Ok(()),
    }
}

/// Writes `resources` (the whole set, as `update` merged it) to the container's cgroup in
/// every hierarchy it is in.
pub fn update(cg: &Cgroup, resources: &Resources) -> Result<(), OciError> {
    let hierarchies = cgroups::hierarchies()?;
    for (dir, version) in &cg.dirs {
        let Some(h) = hierarchies
            .iter()
            .filter(|h| h.version == *version && dir.starts_with(&h.mount_point))
            .max_by_key(|h| h.mount_point.as_os_str().len())
        else {
            continue;
        };
        write_limits(dir, h, resources)?;
    }
    Ok(())
}

/// The nearest ancestor's non-empty `file` (cpuset.cpus / cpuset.mems).
fn inherited(dir: &Path, file: &str) -> String {
    dir.ancestors()
        .skip(1)
        .find_map(|d| {
            let v = std::fs::read_to_string(d.join(file)).ok()?;
            let v = v.trim().to_string();
            (!v.is_empty()).then_some(v)
        })
        .unwrap_or_default()
}

/// Moves process `pid` into the cgroup, in every hierarchy.
pub fn add(cg: &Cgroup, pid: i32) -> Result<(), OciError> {
    for (dir, _) in &cg.dirs {
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).map_err(io_err(&procs))?;
    }
    Ok(())
}

/// Every process in the cgroup (for `kill --all` and `delete --force`).
pub fn pids(cg: &Cgroup) -> Vec<i32> {
    let mut out: Vec<i32> = cg
        .dirs
        .iter()
        .flat_map(|(dir, _)| {
            std::fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Removes the cgroup's directories (not their parents, which the caller owns: podman's
/// `libpod_parent`, containerd's namespace). Best effort: what is busy stays.
pub fn remove(cg: &Cgroup) {
    for (dir, _) in cg.dirs.iter().rev() {
        for _ in 0..100 {
            match std::fs::remove_dir(dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                _ => break,
            }
        }
    }
}

/// The file that freezes a container's processes: the v1 freezer controller's `freezer.state`
/// (preferred on a hybrid host, where it is the freezer), else v2's `cgroup.freeze`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

fn freezer(cg: &Cgroup) -> Option<Freezer> {
    let v1 = cg.dirs.iter().find_map(|(d, v)| {
        let file = d.join("freezer.state");
        (*v == Version::V1 && file.exists()).then_some(Freezer::V1(file))
    });
    v1.or_else(|| {
        cg.dirs.iter().find_map(|(d, v)| {
            let file = d.join("cgroup.freeze");
            (*v == Version::V2 && file.exists()).then_some(Freezer::V2(d.clone()))
        })
    })
}

/// Whether the cgroup can be frozen here (a freezer in some hierarchy it is in).
pub fn has_freezer(cg: &Cgroup) -> bool {
    freezer(cg).is_some()
}

/// Whether the container is frozen (`pause`d): what the freezer was told (v1 `FROZEN` or
/// still `FREEZING`, v2 `cgroup.freeze` 1), as runc reads it.
pub fn frozen(cg: &Cgroup) -> bool {
    match freezer(cg) {
        Some(Freezer::V1(file)) => {
            std::fs::read_to_string(file).is_ok_and(|s| matches!(s.trim(), "FROZEN" | "FREEZING"))
        }
        Some(Freezer::V2(dir)) => {
            std::fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        }
        None => false,
    }
}

/// Freezes (`on`) or thaws every process of the cgroup and waits (up to 10 s) until the
/// kernel says it is done: a v1 freezer may stay `FREEZING` while a task is in an
/// uninterruptible sleep, so `FROZEN` is written again until it holds.
pub fn freeze(cg: &Cgroup, on: bool) -> Result<(), OciError> {
    let Some(freezer) = freezer(cg) else {
        return Err(OciError::State(
            "the container's cgroup has no freezer".into(),
        ));
    };
    let (file, value, done_file, done): (PathBuf, &str, PathBuf, &str) = match &freezer {
        Freezer::V1(f) => {
            let v = if on { "FROZEN" } else { "THAWED" };
            (f.clone(), v, f.clone(), v)
        }
        Freezer::V2(d) => (
            d.join("cgroup.freeze"),
            if on { "1" } else { "0" },
            d.join("cgroup.events"),
            if on { "frozen 1" } else { "frozen 0" },
        ),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        std::fs::write(&file, value).map_err(io_err(&file))?;
        let now = std::fs::read_to_string(&done_file).map_err(io_err(&done_file))?;
        if now.lines().any(|l| l.trim() == done) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            if on {
                // Half frozen is worse than running: thawed again, as runc does.
                let thaw = if matches!(freezer, Freezer::V1(_)) {
                    "THAWED"
                } else {
                    "0"
                };
                let _ = std::fs::write(&file, thaw);
            }
            return Err(OciError::State(format!(
                "{}: still not {done} after 10 s",
                done_file.display()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v1_freezer_is_preferred_to_cgroup_freeze() {
        let v1 = tempfile::tempdir().unwrap();
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.freeze"), "0").unwrap();
        let only_v2 = Cgroup {
            dirs: vec![
                (v1.path().to_path_buf(), Version::V1),
                (v2.path().to_path_buf(), Version::V2),
            ],
        };
        assert_eq!(
            freezer(&only_v2),
            Some(Freezer::V2(v2.path().to_path_buf()))
        );
        std::fs::write(v1.path().join("freezer.state"), "THAWED\n").unwrap();
        assert_eq!(
            freezer(&only_v2),
            Some(Freezer::V1(v1.path().join("freezer.state")))
        );
        assert!(!frozen(&only_v2));
        std::fs::write(v1.path().join("freezer.state"), "FROZEN\n").unwrap();
        assert!(frozen(&only_v2));
        let none = Cgroup {
            dirs: vec![(
                tempfile::tempdir().unwrap().path().to_path_buf(),
                Version::V1,
            )],
        };
        assert!(!has_freezer(&none) && !frozen(&none));
        assert!(freeze(&none, true).is_err());
    }

    /// The cumulative CPU time (user + system ticks) of `pid`.
    fn cpu_ticks(pid: u32) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// A real cgroup v2 directory (the unified hierarchy, beside v1 ones on a hybrid host)
    /// frozen through `cgroup.freeze`: a busy process gets no CPU until thawed.
    #[test]
    fn a_v2_cgroup_freezes_and_thaws() {
        let required = std::env::var("RSAFE_TEST_REQUIRE").is_ok_and(|v| v == "1");
        let mount = cgroups::hierarchies()
            .unwrap_or_default()
            .into_iter()
            .find(|h| h.version == Version::V2)
            .map(|h| h.mount_point);
        let (Some(mount), true) = (mount, nix::unistd::geteuid().is_root()) else {
            assert!(!required, "root and a cgroup v2 hierarchy are required");
            eprintln!("skipping: needs root and a cgroup v2 hierarchy");
            return;
        };
        let dir = mount.join(format!("rsafe-freeze-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let cg = Cgroup {
            dirs: vec![(dir.clone(), Version::V2)],
        };
        let mut busy = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        add(&cg, busy.id() as i32).unwrap();
        freeze(&cg, true).unwrap();
        assert!(frozen(&cg));
        let before = cpu_ticks(busy.id());
        std::thread::sleep(std::time::Duration::from_millis(300));
        let still = cpu_ticks(busy.id()) == before;
        freeze(&cg, false).unwrap();
        let thawed = !frozen(&cg);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let ran = cpu_ticks(busy.id()) > before;
        let _ = busy.kill();
        let _ = busy.wait();
        remove(&cg);
        assert!(still, "a frozen process used CPU");
        assert!(thawed && ran, "the thawed process did not run");
        assert!(!dir.exists());
    }
}
