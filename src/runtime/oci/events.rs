//! `events --stats ID`: one reading of a container's cgroup as runc prints it (its
//! `types.Event` of type `stats`: `cpu`, `memory`, `pids`), for tools that ask a runtime rather
//! than read cgroups themselves. The CPU total, the process count and the fallback to the
//! container's processes (no cgroup: rootless) are `rsafe stats`'s ([`crate::runtime::stats`]);
//! the rest is read from the cgroup files runc reads. `events` without `--stats` (a stream of
//! OOM notifications and stats every `--interval`) is not implemented, and refused by name.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::OciError;
use super::state::{RuntimeRoot, Status};
use crate::runtime::cgroups::{Cgroup, Version};
use crate::runtime::stats;

/// `events --stats ID`: the container's stats event (runc's JSON shape).
pub fn stats(root: &RuntimeRoot, id: &str) -> Result<Value, OciError> {
    let dir = root.container(id)?;
    let record = dir
        .load()?
        .ok_or_else(|| OciError::State(format!("container {id} is still being created")))?;
    if dir.status(Some(&record)) == Status::Stopped {
        return Err(OciError::State(format!("container {id} is not running")));
    }
    let sample = stats::sample_of(record.cgroup.as_ref(), record.pid);
    let cg = record.cgroup.as_ref();
    let (kernel, user) = cg.and_then(cpu_split).unwrap_or((0, 0));
    let mut cpu = json!({"usage": {"total": sample.cpu_ns, "kernel": kernel, "user": user}});
    cpu["throttling"] = cg.map_or_else(|| json!({}), throttling);
    let pids_limit = cg
        .and_then(|c| first(c, |d, _| read_u64(&d.join("pids.max"))))
        .unwrap_or(0);
    let mut pids = json!({"current": sample.pids});
    if pids_limit > 0 {
        pids["limit"] = json!(pids_limit);
    }
    Ok(json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": cpu,
            "memory": cg.map_or_else(|| json!({}), memory),
            "pids": pids,
            "blkio": {},
            "hugetlb": {},
        }
    }))
}

/// The first value `read` finds in one of the cgroup's directories.
fn first<T>(cg: &Cgroup, read: impl Fn(&Path, Version) -> Option<T>) -> Option<T> {
    cg.dirs.iter().find_map(|(d, v)| read(d, *v))
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A `key value` per line file (`memory.stat`, `cpu.stat`, `cpuacct.stat`).
fn keyed(path: &Path) -> Option<Map<String, Value>> {
    let text = std::fs::read_to_string(path).ok()?;
    let map: Map<String, Value> = text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), json!(v.trim().parse::<u64>().ok()?)))
        })
        .collect();
    Some(map)
}

fn get(map: &Map<String, Value>, key: &str) -> u64 {
    map.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Kernel and user CPU time in nanoseconds: v1 `cpuacct.stat` (in clock ticks), v2 `cpu.stat`.
fn cpu_split(cg: &Cgroup) -> Option<(u64, u64)> {
    first(cg, |d, v| match v {
        Version::V1 => {
            let stat = keyed(&d.join("cpuacct.stat"))?;
            let tick = 1_000_000_000 / procfs::ticks_per_second().max(1);
            Some((get(&stat, "system") * tick, get(&stat, "user") * tick))
        }
        Version::V2 => {
            let stat = keyed(&d.join("cpu.stat"))?;
            Some((
                get(&stat, "system_usec") * 1000,
                get(&stat, "user_usec") * 1000,
            ))
        }
    })
}

/// CFS throttling (`cpu.stat`: v1 in nanoseconds, v2 in microseconds); runc leaves zeros out.
fn throttling(cg: &Cgroup) -> Value {
    let read = first(cg, |d, v| {
        let stat = keyed(&d.join("cpu.stat"))?;
        stat.contains_key("nr_periods").then(|| {
            let time = match v {
                Version::V1 => get(&stat, "throttled_time"),
                Version::V2 => get(&stat, "throttled_usec") * 1000,
            };
            (get(&stat, "nr_periods"), get(&stat, "nr_throttled"), time)
        })
    });
    let mut out = Map::new();
    if let Some((periods, throttled, time)) = read {
        for (k, v) in [
            ("periods", periods),
            ("throttledPeriods", throttled),
            ("throttledTime", time),
        ] {
            if v > 0 {
                out.insert(k.into(), json!(v));
            }
        }
    }
    Value::Object(out)
}

/// runc's memory entry: `usage` (raw usage, limit, peak, failures), `swap` (memory + swap on
/// v1, as runc), `raw` (`memory.stat`). An unlimited cgroup's limit is runc's 2^64-1.
fn memory(cg: &Cgroup) -> Value {
    let found = first(cg, |d, v| {
        let files = match v {
            Version::V1 => [
                "memory.usage_in_bytes",
                "memory.limit_in_bytes",
                "memory.max_usage_in_bytes",
            ],
            Version::V2 => ["memory.current", "memory.max", "memory.peak"],
        };
        let usage = read_u64(&d.join(files[0]))?;
        Some((d.to_path_buf(), v, usage, files))
    });
    let Some((d, v, usage, files)) = found else {
        return json!({});
    };
    let limit = |file: &str| {
        let text = std::fs::read_to_string(d.join(file)).unwrap_or_default();
        match text.trim() {
            "max" => u64::MAX,
            t => t.parse().unwrap_or(u64::MAX),
        }
    };
    let failcnt = match v {
        Version::V1 => read_u64(&d.join("memory.failcnt")).unwrap_or(0),
        Version::V2 => keyed(&d.join("memory.events")).map_or(0, |e| get(&e, "max")),
    };
    let mut out = json!({
        "usage": {
            "limit": limit(files[1]),
            "usage": usage,
            "max": read_u64(&d.join(files[2])).unwrap_or(0),
            "failcnt": failcnt,
        },
    });
    if v == Version::V1 && d.join("memory.memsw.usage_in_bytes").exists() {
        out["swap"] = json!({
            "limit": limit("memory.memsw.limit_in_bytes"),
            "usage": read_u64(&d.join("memory.memsw.usage_in_bytes")).unwrap_or(0),
            "max": read_u64(&d.join("memory.memsw.max_usage_in_bytes")).unwrap_or(0),
            "failcnt": read_u64(&d.join("memory.memsw.failcnt")).unwrap_or(0),
        });
    }
    if let Some(raw) = keyed(&d.join("memory.stat")) {
        out["raw"] = Value::Object(raw);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v1 cgroup's files, as the memory, cpuacct and pids controllers write them.
    #[test]
    fn a_v1_cgroup_reads_as_runcs_stats() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (file, text) in [
            ("memory.usage_in_bytes", "4096000\n"),
            ("memory.limit_in_bytes", "67108864\n"),
            ("memory.max_usage_in_bytes", "5000000\n"),
            ("memory.failcnt", "3\n"),
            ("memory.stat", "cache 1000\nrss 2000\n"),
            ("cpuacct.stat", "user 150\nsystem 50\n"),
            (
                "cpu.stat",
                "nr_periods 10\nnr_throttled 2\nthrottled_time 900\n",
            ),
        ] {
            std::fs::write(d.join(file), text).unwrap();
        }
        let cg = Cgroup {
            dirs: vec![(d.to_path_buf(), Version::V1)],
        };
        let m = memory(&cg);
        assert_eq!(m["usage"]["usage"], 4_096_000);
        assert_eq!(m["usage"]["limit"], 64 << 20);
        assert_eq!(m["usage"]["max"], 5_000_000);
        assert_eq!(m["usage"]["failcnt"], 3);
        assert_eq!(m["raw"]["rss"], 2000);
        assert!(m.get("swap").is_none());
        let tick = 1_000_000_000 / procfs::ticks_per_second();
        assert_eq!(cpu_split(&cg), Some((50 * tick, 150 * tick)));
        assert_eq!(
            throttling(&cg),
            json!({"periods": 10, "throttledPeriods": 2, "throttledTime": 900})
        );
    }

    #[test]
    fn an_unlimited_v2_cgroup_has_runcs_largest_limit() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("memory.current"), "8192\n").unwrap();
        std::fs::write(d.join("memory.max"), "max\n").unwrap();
        std::fs::write(d.join("memory.events"), "low 0\nhigh 0\nmax 4\noom 1\n").unwrap();
        std::fs::write(
            d.join("cpu.stat"),
            "usage_usec 30\nuser_usec 20\nsystem_usec 10\n",
        )
        .unwrap();
        let cg = Cgroup {
            dirs: vec![(d.to_path_buf(), Version::V2)],
        };
        let m = memory(&cg);
        assert_eq!(m["usage"]["limit"], u64::MAX);
        assert_eq!(m["usage"]["usage"], 8192);
        assert_eq!(m["usage"]["failcnt"], 4);
        assert_eq!(cpu_split(&cg), Some((10_000, 20_000)));
        assert_eq!(throttling(&cg), json!({}));
    }
}
