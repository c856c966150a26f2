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
            let _ = cg.remove_dirs();
            return Err(e);
        }
        cg.dirs.push((dir.clone(), h.version));
        if let Err(e) = write_limits(&dir, &h, resources) {
            let _ = cg.remove_dirs();
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

/// Writes `r` to the container's cgroup `dir` in hierarchy `h`, in that version's files.
fn write_limits(dir: &Path, h: &cgroups::Hierarchy, r: &Resources) -> Result<(), OciError> {
    match h.version {
        Version::V1 => write_v1_limits(dir, h, r),
        Version::V2 => write_v2_limits(dir, r),
    }
}

/// Writes `value` to the cgroup file `file` of `dir`.
fn write_file(dir: &Path, file: &str, value: String) -> Result<(), OciError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(io_err(&path))
}

/// v1: each limit in the hierarchy of its controller, when `h` is that hierarchy.
fn write_v1_limits(dir: &Path, h: &cgroups::Hierarchy, r: &Resources) -> Result<(), OciError> {
    let has = |c: &str| h.controllers.iter().any(|o| o == c);
    let write = |file: &str, value: String| write_file(dir, file, value);
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
    Ok(())
}

/// v2: the limits whose controllers the cgroup has (its `cgroup.controllers`).
fn write_v2_limits(dir: &Path, r: &Resources) -> Result<(), OciError> {
    let write = |file: &str, value: String| write_file(dir, file, value);
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let has = |c: &str| available.split_whitespace().any(|a| a == c);
    if has("memory") {
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
    if has("pids")
        && let Some(p) = r.pids
    {
        write("pids.max", max_or(p))?;
    }
    if has("cpu") && (r.cpu_quota.is_some() || r.cpu_period.is_some()) {
        let quota = r.cpu_quota.filter(|q| *q > 0).map_or("max".into(), max_or);
        write(
            "cpu.max",
            format!("{quota} {}", r.cpu_period.unwrap_or(100_000)),
        )?;
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
