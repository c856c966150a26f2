//! `events ID`: what runc's `events` prints of a container, one JSON document per line.
//!
//! - `--stats`: one reading of its cgroup as runc prints it (its `types.Event` of type `stats`:
//!   `cpu`, `memory`, `pids`), for tools that ask a runtime rather than read cgroups
//!   themselves. The CPU total, the process count and the fallback to the container's
//!   processes (no cgroup: rootless) are `rsafe stats`'s ([`crate::runtime::stats`]); the rest
//!   is read from the cgroup files runc reads.
//! - Without it, a stream ([`stream`]): that reading every `--interval` (runc's default 5s, Go's
//!   duration syntax) and `{"type":"oom","id":…}` when the kernel's OOM killer acts in the
//!   container's memory cgroup, until the container stops (or is deleted), or SIGINT/SIGTERM.
//!
//! ```text
//! events ID ── poll ─┬─ interval elapsed ─────────────▶ {"type":"stats",…}
//!                    ├─ v1 eventfd (cgroup.event_control
//!                    │  on memory.oom_control), or v2
//!                    │  inotify on memory.events with a
//!                    │  larger oom_kill ─────────────────▶ {"type":"oom","id":…}
//!                    ├─ pidfd of the first process: it ended, or the v1 cgroup was removed
//!                    │  (its eventfd fires once more) ─▶ a last OOM check, exit 0
//!                    └─ signalfd: SIGINT, SIGTERM ─────▶ exit 0
//! ```
//!
//! The OOM semantics are runc's (`notify_linux.go`, `notify_v2_linux.go`): on v1 every eventfd
//! wake-up while the cgroup exists is one event; on v2 a wake-up whose `oom_kill` counter grew
//! is one. The end differs a little: runc's v1 stream lasts until the cgroup is removed
//! (`delete`), rsafe's ends when the container stops, as runc's v2 one (its cgroup is empty).

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde_json::{Map, Value, json};

use super::OciError;
use super::state::{ContainerDir, Record, RuntimeRoot, Status};
use crate::runtime::cgroups::{Cgroup, Version};
use crate::runtime::stats;

/// One event as runc's `types.Event` writes it: `type`, `id`, then `data` (none for `oom`),
/// in that order (runc's own tests match the line's beginning).
#[derive(Debug, serde::Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// Container `id`'s directory and record, or runc's refusal when it is still being created or
/// not running.
fn running(root: &RuntimeRoot, id: &str) -> Result<(ContainerDir, Record), OciError> {
    let dir = root.container(id)?;
    let record = dir
        .load()?
        .ok_or_else(|| OciError::State(format!("container {id} is still being created")))?;
    if dir.status(Some(&record)) == Status::Stopped {
        return Err(OciError::State(format!("container {id} is not running")));
    }
    Ok((dir, record))
}

/// `events --stats ID`: the container's stats event (runc's JSON shape).
pub fn stats(root: &RuntimeRoot, id: &str) -> Result<Event, OciError> {
    let (_, record) = running(root, id)?;
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
    Ok(Event {
        kind: "stats",
        id: id.to_string(),
        data: Some(json!({
            "cpu": cpu,
            "memory": cg.map_or_else(|| json!({}), memory),
            "pids": pids,
            "blkio": {},
            "hugetlb": {},
        })),
    })
}

/// `events [--interval D] ID`: the stream, one JSON event a line on `out`, until the container
/// stops or is deleted, SIGINT or SIGTERM arrives, or `out`'s reader is gone (all `Ok`: the
/// stream has nothing more to say). A container that is not running is refused, as runc's.
pub fn stream(
    root: &RuntimeRoot,
    id: &str,
    interval: Duration,
    out: &mut dyn Write,
) -> Result<(), OciError> {
    let (dir, record) = running(root, id)?;
    let signals = block_signals().map_err(io_err("block SIGINT and SIGTERM"))?;
    let Some(exit) = exit_watch(&record) else {
        return Ok(());
    };
    let mut oom = match &record.cgroup {
        Some(cg) => OomWatch::open(cg).map_err(io_err("watch the memory cgroup's OOM kills"))?,
        None => None,
    };
    let oom_event = Event {
        kind: "oom",
        id: id.to_string(),
        data: None,
    };
    let mut next = Instant::now() + interval;
    loop {
        let ended = wait(&signals, &exit, oom.as_ref(), next).map_err(io_err("poll"))?;
        let heard = oom.as_mut().map_or(Heard::Nothing, OomWatch::heard);
        if heard == Heard::Oom && !emit(out, &oom_event) {
            return Ok(());
        }
        if ended || heard == Heard::Gone {
            return Ok(());
        }
        if Instant::now() < next {
            continue;
        }
        match stats(root, id) {
            Ok(event) if emit(out, &event) => {}
            Ok(_) => return Ok(()),
            Err(_) if !dir.exists() || !record.is_alive() => return Ok(()),
            Err(e) => return Err(e),
        }
        next = (next + interval).max(Instant::now());
    }
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> OciError + '_ {
    move |source| OciError::Io {
        what: what.to_string(),
        source,
    }
}

/// One event on its line (Go's `json.Encoder`), flushed; `false` once nobody reads.
fn emit(out: &mut dyn Write, event: &Event) -> bool {
    let Ok(line) = serde_json::to_string(event) else {
        return false;
    };
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}

/// runc's `--interval`: Go's duration syntax (`500ms`, `5s`, `1m30s`, `1.5h`; units `ns`,
/// `us`/`µs`, `ms`, `s`, `m`, `h`), more than zero.
pub fn parse_interval(text: &str) -> Result<Duration, OciError> {
    let bad = || {
        OciError::Usage(format!(
            "events: --interval {text:?}: not a duration (Go's syntax: 500ms, 5s, 1m30s)"
        ))
    };
    let zero = || OciError::Usage("events: duration interval must be greater than 0".into());
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    if unsigned.starts_with('-') || unsigned == "0" {
        return Err(zero());
    }
    if unsigned.is_empty() {
        return Err(bad());
    }
    let mut rest = unsigned;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (nanos, tail) = duration_term(rest).ok_or_else(bad)?;
        total = total.checked_add(nanos).ok_or_else(bad)?;
        rest = tail;
    }
    let nanos = u64::try_from(total).map_err(|_| bad())?;
    match nanos {
        0 => Err(zero()),
        n => Ok(Duration::from_nanos(n)),
    }
}

/// One `NUMBER[.FRACTION]UNIT` of a Go duration: its nanoseconds and what follows.
fn duration_term(text: &str) -> Option<(u128, &str)> {
    let number_end = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, tail) = text.split_at(number_end);
    let unit_end = tail
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(tail.len());
    let (unit, tail) = tail.split_at(unit_end);
    let scale: u128 = match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let whole: u128 = match whole {
        "" => 0,
        w => w.parse().ok()?,
    };
    // Nanoseconds are the finest unit: digits past the 18th change nothing.
    let digits = &fraction[..fraction.len().min(18)];
    let part = match digits {
        "" => 0,
        d => d.parse::<u128>().ok()? * scale / 10u128.pow(d.len() as u32),
    };
    Some((whole.checked_mul(scale)?.checked_add(part)?, tail))
}

/// SIGINT and SIGTERM, blocked and read from a descriptor: they end the stream between
/// events, never in the middle of a line.
fn block_signals() -> io::Result<SignalFd> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    mask.thread_block()?;
    Ok(SignalFd::with_flags(
        &mask,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

/// A pidfd of the container's first process (readable once it has ended); `None` when it
/// already has. Opened, then checked to still be the recorded process: the pidfd names the
/// process that had the pid when it was opened.
fn exit_watch(record: &super::state::Record) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(record.pid)?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    record.is_alive().then_some(fd)
}

/// Waits until `next`, a signal, the container's end or an OOM notification; `true` for a
/// signal or the end of the container's first process.
fn wait(
    signals: &SignalFd,
    exit: &OwnedFd,
    oom: Option<&OomWatch>,
    next: Instant,
) -> io::Result<bool> {
    let left = next.saturating_duration_since(Instant::now());
    // Rounded up: a timeout a little short would wake the loop early for nothing.
    let timeout =
        PollTimeout::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(PollTimeout::MAX);
    let mut fds = vec![
        PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        PollFd::new(exit.as_fd(), PollFlags::POLLIN),
    ];
    if let Some(w) = oom {
        fds.push(PollFd::new(w.fd(), PollFlags::POLLIN));
    }
    match nix::poll::poll(&mut fds, timeout) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(e) => return Err(e.into()),
    }
    let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
    Ok(fds[..2].iter().any(ready))
}

/// Where an OOM kill in the container's memory cgroup is heard (runc's `NotifyOOM`).
enum OomWatch {
    /// cgroup v1: an eventfd registered on `memory.oom_control` through
    /// `cgroup.event_control`. The kernel signals it at each OOM in the cgroup, and once more
    /// when the cgroup is removed.
    V1 {
        eventfd: OwnedFd,
        /// Kept open while the registration lasts.
        _control: std::fs::File,
        dir: PathBuf,
    },
    /// cgroup v2: inotify on `memory.events`, whose `oom_kill` counter says whether an OOM
    /// kill is what changed it.
    V2 {
        inotify: OwnedFd,
        events: PathBuf,
        kills: u64,
    },
}

/// What an OOM watch heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    Nothing,
    Oom,
    /// The cgroup is gone: nothing more can be heard.
    Gone,
}

impl OomWatch {
    /// The watch on the cgroup's memory controller; `None` without one.
    fn open(cg: &Cgroup) -> io::Result<Option<OomWatch>> {
        for (dir, version) in &cg.dirs {
            match version {
                Version::V1 if dir.join("memory.oom_control").exists() => {
                    return watch_v1(dir).map(Some);
                }
                Version::V2 if dir.join("memory.events").exists() => {
                    return watch_v2(dir).map(Some);
                }
                _ => {}
            }
        }
        Ok(None)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            OomWatch::V1 { eventfd, .. } => eventfd.as_fd(),
            OomWatch::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// What happened since the last call, without waiting.
    fn heard(&mut self) -> Heard {
        match self {
            OomWatch::V1 { eventfd, dir, .. } => {
                let mut count = [0u8; 8];
                match nix::unistd::read(eventfd.as_fd(), &mut count) {
                    Ok(8) if dir.join("cgroup.event_control").exists() => Heard::Oom,
                    Ok(8) => Heard::Gone,
                    _ => Heard::Nothing,
                }
            }
            OomWatch::V2 {
                inotify,
                events,
                kills,
            } => {
                drain(inotify);
                let Some(now) = keyed(events).map(|e| get(&e, "oom_kill")) else {
                    return Heard::Gone;
                };
                let grew = now > *kills;
                *kills = now;
                if grew { Heard::Oom } else { Heard::Nothing }
            }
        }
    }
}

/// Registers an eventfd for `memory.oom_control` (the v1 memory controller's OOM notifier).
fn watch_v1(dir: &Path) -> io::Result<OomWatch> {
    let control = std::fs::File::open(dir.join("memory.oom_control"))?;
    // SAFETY: eventfd(2) reads no memory of this process; a descriptor it returns is new and
    // owned by nothing else, so the OwnedFd is its only owner.
    let eventfd = unsafe {
        let raw = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        OwnedFd::from_raw_fd(raw)
    };
    let registration = format!("{} {}", eventfd.as_raw_fd(), control.as_raw_fd());
    let path = dir.join("cgroup.event_control");
    std::fs::write(&path, registration)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(OomWatch::V1 {
        eventfd,
        _control: control,
        dir: dir.to_path_buf(),
    })
}

/// Watches `memory.events` (cgroup v2), from its `oom_kill` count now.
fn watch_v2(dir: &Path) -> io::Result<OomWatch> {
    use rustix::fs::inotify;
    let events = dir.join("memory.events");
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
    inotify::add_watch(&fd, &events, inotify::WatchFlags::MODIFY)?;
    let kills = keyed(&events).map_or(0, |e| get(&e, "oom_kill"));
    Ok(OomWatch::V2 {
        inotify: fd,
        events,
        kills,
    })
}

/// Reads a non-blocking inotify descriptor empty (its events only say "look again").
fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 4096];
    while matches!(nix::unistd::read(fd.as_fd(), &mut buf), Ok(n) if n > 0) {}
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
    fn intervals_read_as_gos_durations() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("5s", ms(5000)),
            ("500ms", ms(500)),
            ("1m30s", ms(90_000)),
            ("1.5h", ms(5_400_000)),
            ("1h2m3.5s", ms(3_723_500)),
            (".5s", ms(500)),
            ("+2s", ms(2000)),
            ("1s500ms", ms(1500)),
            ("250us", Duration::from_micros(250)),
            ("250\u{b5}s", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            ("0.000000001s", Duration::from_nanos(1)),
        ] {
            assert_eq!(parse_interval(text).unwrap(), want, "{text}");
        }
        for text in [
            "",
            "5",
            "s",
            "1x",
            "1.2.3s",
            "1e3s",
            ".s",
            "1s 2s",
            "99999999999h",
        ] {
            let err = parse_interval(text).unwrap_err().to_string();
            assert!(err.contains("not a duration"), "{text:?}: {err}");
        }
        for text in ["0", "0s", "-1s", "0.0000000001s"] {
            let err = parse_interval(text).unwrap_err().to_string();
            assert!(err.contains("must be greater than 0"), "{text:?}: {err}");
        }
    }

    /// A v2 `memory.events` file: a larger `oom_kill` is one event, a change of another
    /// counter none, and the file's removal (the cgroup's) ends the watch.
    #[test]
    fn a_v2_oom_kill_count_that_grows_is_one_event() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("memory.events");
        let write = |max: u32, kills: u32| {
            let text = format!("low 0\nhigh 0\nmax {max}\noom {kills}\noom_kill {kills}\n");
            std::fs::write(&events, text).unwrap();
        };
        write(0, 2);
        let cg = Cgroup {
            dirs: vec![(dir.path().to_path_buf(), Version::V2)],
        };
        let mut watch = OomWatch::open(&cg).unwrap().unwrap();
        let readable = |w: &OomWatch| {
            let mut fds = [PollFd::new(w.fd(), PollFlags::POLLIN)];
            nix::poll::poll(&mut fds, PollTimeout::from(1000u16)).unwrap() == 1
        };
        assert_eq!(watch.heard(), Heard::Nothing, "the kills before the watch");
        write(1, 2);
        assert!(readable(&watch));
        assert_eq!(watch.heard(), Heard::Nothing);
        assert!(!readable(&watch), "drained");
        write(1, 3);
        assert!(readable(&watch));
        assert_eq!(watch.heard(), Heard::Oom);
        assert_eq!(watch.heard(), Heard::Nothing);
        std::fs::remove_file(&events).unwrap();
        assert!(readable(&watch));
        assert_eq!(watch.heard(), Heard::Gone);
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
