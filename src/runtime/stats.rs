//! What a running container uses, for `rsafe stats`: CPU time, memory, processes.
//!
//! From its cgroups when it has them (`memory.usage_in_bytes`/`memory.current` less the
//! inactive page cache, as docker counts it; `pids.current`; `cpuacct.usage` or v2
//! `cpu.stat`); a rootless container on cgroup v1 has none, and then CPU time and the process
//! count come from its processes in /proc (the container's init and its descendants), and
//! memory is unknown, which the caller says.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cgroups::{Cgroup, Version};
use super::state::State;

/// One reading of a container's use.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was read.
    pub at: Instant,
    /// CPU time used so far by the container's processes (nanoseconds).
    pub cpu_ns: u64,
    /// Memory in use and the limit, when the container has a memory cgroup.
    pub memory: Option<Memory>,
    /// Processes and threads (the pids cgroup's count) or processes (from /proc).
    pub pids: u64,
    /// Where the numbers came from.
    pub source: Source,
}

/// Memory use as docker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Bytes in use, less the inactive page cache.
    pub usage: u64,
    /// The cgroup's limit; `None` when it has none (the host's memory is the bound).
    pub limit: Option<u64>,
}

/// Where a sample's numbers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The container's cgroups (CPU maybe from its processes: a v1 cgroup without cpuacct).
    Cgroup,
    /// Its processes only: it has no cgroup (rootless on cgroup v1).
    Processes,
}

/// Reads `state`'s container now; `None` when it has no live first process.
pub fn sample(state: &State) -> Option<Sample> {
    let (init, _) = state.pid.filter(|_| state.is_alive())?;
    Some(sample_of(state.cgroup.as_ref(), init))
}

/// Reads a running container from its cgroup (if it has one) and its first process `init`:
/// `rsafe stats` for rsafe's containers, `rsafe-runtime events --stats` for the OCI ones.
pub fn sample_of(cgroup: Option<&Cgroup>, init: i32) -> Sample {
    let dirs: Vec<(PathBuf, Version)> = cgroup.map(|c| c.dirs.clone()).unwrap_or_default();
    let procs = processes(&dirs, init);
    let cpu_ns = dirs
        .iter()
        .find_map(|(d, v)| cgroup_cpu_ns(d, *v))
        .unwrap_or_else(|| procs.iter().filter_map(|p| process_cpu_ns(*p)).sum());
    let memory = dirs.iter().find_map(|(d, v)| cgroup_memory(d, *v));
    let pids = dirs
        .iter()
        .find_map(|(d, _)| read_u64(&d.join("pids.current")))
        .unwrap_or(procs.len() as u64);
    Sample {
        at: Instant::now(),
        cpu_ns,
        memory,
        pids,
        source: if dirs.is_empty() {
            Source::Processes
        } else {
            Source::Cgroup
        },
    }
}

/// CPU use between two samples as docker shows it: percent of one CPU (so up to 100 × CPUs).
pub fn cpu_percent(before: &Sample, after: &Sample) -> f64 {
    let wall = after.at.saturating_duration_since(before.at);
    if wall.is_zero() {
        return 0.0;
    }
    let used = after.cpu_ns.saturating_sub(before.cpu_ns);
    used as f64 / wall.as_nanos() as f64 * 100.0
}

/// The container's processes: its cgroup's (any of its directories lists them all), or
/// init and its descendants.
fn processes(dirs: &[(PathBuf, Version)], init: i32) -> Vec<i32> {
    let listed = dirs.iter().find_map(|(d, _)| {
        let text = std::fs::read_to_string(d.join("cgroup.procs")).ok()?;
        Some(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    });
    listed.unwrap_or_else(|| descendants(init))
}

/// `pid` and every process below it, from `/proc/<pid>/task/<tid>/children`.
fn descendants(pid: i32) -> Vec<i32> {
    let mut found = vec![pid];
    let mut next = 0;
    // Bounded: a container cannot make rsafe walk forever (pids are finite, but be sure).
    while next < found.len() && found.len() < 1 << 20 {
        let p = found[next];
        next += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            found.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok()),
            );
        }
    }
    found
}

/// utime + stime + cutime + cstime of `pid` (its reaped children's time included: a
/// container's init reaps what ends in it), in nanoseconds.
fn process_cpu_ns(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = stat_cpu_ticks(&stat)?;
    let per_second = procfs::ticks_per_second().max(1);
    Some(ticks.saturating_mul(1_000_000_000) / per_second)
}

/// Fields 14–17 of a `/proc/<pid>/stat` line, summed.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split(' ').collect();
    // `after` starts at field 3; fields 14..=17 are at 11..=14.
    (11..=14).map(|i| fields.get(i)?.parse::<u64>().ok()).sum()
}

fn cgroup_cpu_ns(dir: &Path, version: Version) -> Option<u64> {
    match version {
        Version::V1 => read_u64(&dir.join("cpuacct.usage")),
        Version::V2 => {
            let stat = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
            keyed(&stat, "usage_usec").map(|us| us.saturating_mul(1000))
        }
    }
}

/// Memory in use less the inactive file cache (docker's `usage - total_inactive_file` on v1,
/// `usage - inactive_file` on v2), and the limit.
fn cgroup_memory(dir: &Path, version: Version) -> Option<Memory> {
    let (usage, limit, stat, inactive_key) = match version {
        Version::V1 => (
            "memory.usage_in_bytes",
            "memory.limit_in_bytes",
            "memory.stat",
            "total_inactive_file",
        ),
        Version::V2 => (
            "memory.current",
            "memory.max",
            "memory.stat",
            "inactive_file",
        ),
    };
    let usage = read_u64(&dir.join(usage))?;
    let inactive = std::fs::read_to_string(dir.join(stat))
        .ok()
        .and_then(|s| keyed(&s, inactive_key))
        .unwrap_or(0);
    // v1 says "no limit" with a huge number (the largest page multiple), v2 with `max`.
    let limit = read_u64(&dir.join(limit)).filter(|l| *l < 1 << 62);
    Some(Memory {
        usage: usage.saturating_sub(inactive.min(usage)),
        limit,
    })
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a `key value` per line file.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// The host's memory (`MemTotal`), the bound of a container without a memory limit.
pub fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// How long `stats --no-stream` waits between its two samples (CPU % is a rate).
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_fields_14_to_17() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 99 0 0";
        assert_eq!(stat_cpu_ticks(stat), Some(13));
    }

    #[test]
    fn memory_counts_as_docker_does() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("memory.usage_in_bytes"), "10485760\n").unwrap();
        std::fs::write(d.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(
            d.join("memory.stat"),
            "cache 5\ntotal_inactive_file 1048576\n",
        )
        .unwrap();
        let m = cgroup_memory(d, Version::V1).unwrap();
        assert_eq!(
            m,
            Memory {
                usage: 9 << 20,
                limit: None
            }
        );
        std::fs::write(d.join("memory.current"), "4096\n").unwrap();
        std::fs::write(d.join("memory.max"), "67108864\n").unwrap();
        std::fs::write(d.join("memory.stat"), "anon 0\ninactive_file 8192\n").unwrap();
        let m = cgroup_memory(d, Version::V2).unwrap();
        assert_eq!(
            m,
            Memory {
                usage: 0,
                limit: Some(64 << 20)
            }
        );
        std::fs::write(d.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        assert_eq!(cgroup_cpu_ns(d, Version::V2), Some(1_500_000));
    }

    #[test]
    fn cpu_percent_is_of_one_cpu() {
        let now = Instant::now();
        let s = |at: Instant, cpu_ns| Sample {
            at,
            cpu_ns,
            memory: None,
            pids: 1,
            source: Source::Processes,
        };
        let a = s(now, 1_000);
        let b = s(now + Duration::from_millis(500), 1_000 + 750_000_000);
        assert!((cpu_percent(&a, &b) - 150.0).abs() < 1e-9);
        assert_eq!(cpu_percent(&a, &a), 0.0);
    }
}
