//! `start`, `state`, `kill`, `delete`, `list`, `pause` and `resume`: the rest of the
//! runtime-spec lifecycle, on containers `create` made.

use std::io::{Read, Write};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::OciError;
use super::bundle::Resources;
use super::cgroup;
use super::hooks;
use super::state::{ContainerDir, OciState, Record, RuntimeRoot, Status};
use crate::runtime::cgroups::Cgroup;
use crate::runtime::signal::{self, Reach, SignalError, Thaw};

fn loaded(dir: &ContainerDir) -> Result<Record, OciError> {
    dir.load()?
        .ok_or_else(|| OciError::State(format!("container {} is still being created", dir.id)))
}

/// `start ID`: lets the container's waiting process go on to `execve`, then runs the
/// poststart hooks (a failing one is a warning: the workload runs).
pub fn start(root: &RuntimeRoot, id: &str, warn: &mut dyn FnMut(&str)) -> Result<(), OciError> {
    let dir = root.container(id)?;
    let record = loaded(&dir)?;
    match dir.status(Some(&record)) {
        Status::Created => {}
        other => {
            return Err(OciError::State(format!(
                "cannot start container {id}: it is {}, not created",
                other.as_str()
            )));
        }
    }
    let socket = dir.start_socket();
    let mut conn = dir.connect_start_socket().map_err(|source| OciError::Io {
        what: format!("start socket {}", socket.display()),
        source,
    })?;
    // Gone before anyone else can connect: a second `start` finds it running.
    let _ = std::fs::remove_file(&socket);
    // startContainer hooks run before the answer, each with its own timeout.
    let timeout = (!record.start_hooks).then_some(Duration::from_secs(10));
    conn.set_read_timeout(timeout)
        .map_err(|source| OciError::Io {
            what: "start socket".into(),
            source,
        })?;
    conn.write_all(b"1").map_err(|source| OciError::Io {
        what: "start the container".into(),
        source,
    })?;
    let mut ack = [0u8; 1];
    conn.read_exact(&mut ack)
        .map_err(|_| OciError::State(format!("container {id} exited before it could start")))?;
    if ack[0] != b'1' {
        let mut why = String::new();
        let _ = conn.read_to_string(&mut why);
        return Err(OciError::State(why));
    }
    for w in hooks::run_recorded(&record.poststart, &record, Status::Running, "poststart") {
        warn(&w);
    }
    Ok(())
}

/// `state ID`.
pub fn state(root: &RuntimeRoot, id: &str) -> Result<OciState, OciError> {
    Ok(root.container(id)?.oci_state()?)
}

/// `kill [--all] ID SIGNAL`: to the first process, or with `--all` to every process of the
/// cgroup; a paused container is thawed for SIGKILL only (runc's rules, see
/// [`crate::runtime::signal`], the same delivery as `rsafe kill`'s).
pub fn kill(root: &RuntimeRoot, id: &str, signal: Signal, all: bool) -> Result<(), OciError> {
    let dir = root.container(id)?;
    let record = loaded(&dir)?;
    let reach = if all { Reach::All } else { Reach::First };
    match crate::runtime::signal::send(
        record.first_process(),
        record.cgroup.as_ref(),
        signal,
        reach,
        Thaw::OnKill,
    ) {
        Ok(_) => Ok(()),
        Err(SignalError::NotRunning) => {
            Err(OciError::State(format!("container {id} is not running")))
        }
        Err(SignalError::Thaw { source, .. }) => Err(source.into()),
        Err(SignalError::Send { signal, pid, errno }) => Err(OciError::Io {
            what: format!("signal {signal} to {pid}"),
            source: errno.into(),
        }),
    }
}

/// `pause ID`: freezes every process of a created or running container (runc's rule) with
/// its cgroup's freezer. A container without a cgroup (rootless) cannot be paused.
pub fn pause(root: &RuntimeRoot, id: &str) -> Result<(), OciError> {
    let dir = root.container(id)?;
    let record = loaded(&dir)?;
    match dir.status(Some(&record)) {
        Status::Created | Status::Running => {}
        other => {
            return Err(OciError::State(format!(
                "cannot pause container {id}: it is {}, not running",
                other.as_str()
            )));
        }
    }
    Ok(freezer_of(&record, "pause")?.freeze(true)?)
}

/// `resume ID`: thaws a paused container.
pub fn resume(root: &RuntimeRoot, id: &str) -> Result<(), OciError> {
    let dir = root.container(id)?;
    let record = loaded(&dir)?;
    match dir.status(Some(&record)) {
        Status::Paused => {}
        other => {
            return Err(OciError::State(format!(
                "cannot resume container {id}: it is {}, not paused",
                other.as_str()
            )));
        }
    }
    Ok(freezer_of(&record, "resume")?.freeze(false)?)
}

/// `update ID`: writes `resources` (on top of the container's current limits: what it does not
/// name stays) to the container's cgroup, and records them.
pub fn update(root: &RuntimeRoot, id: &str, resources: &Resources) -> Result<(), OciError> {
    let dir = root.container(id)?;
    let mut record = loaded(&dir)?;
    if dir.status(Some(&record)) == Status::Stopped {
        return Err(OciError::State(format!(
            "cannot update container {id}: it is stopped"
        )));
    }
    if !resources.devices.is_empty() {
        return Err(OciError::Usage(format!(
            "cannot update container {id}: linux.resources.devices: the device allow-list is set by create only"
        )));
    }
    let Some(cg) = &record.cgroup else {
        return Err(OciError::State(format!(
            "cannot update container {id}: it has no cgroup (rootless: this host delegates no cgroup to rsafe-runtime)"
        )));
    };
    let merged = record.resources.merged(resources);
    cgroup::update(cg, &merged)?;
    record.resources = merged;
    dir.save(&record)?;
    Ok(())
}

/// The container's cgroup, if it has a freezer.
fn freezer_of<'a>(record: &'a Record, verb: &str) -> Result<&'a Cgroup, OciError> {
    record
        .cgroup
        .as_ref()
        .filter(|cg| cg.has_freezer())
        .ok_or_else(|| {
            OciError::State(format!(
                "cannot {verb} container {}: it has no cgroup freezer (rootless: this host delegates no cgroup to rsafe-runtime)",
                record.id
            ))
        })
}

/// `delete [--force] ID`: a created or stopped container is removed (its process killed if
/// it still waits for start); a running one only with `force` (killed first). The cgroup goes,
/// then the poststop hooks run.
pub fn delete(
    root: &RuntimeRoot,
    id: &str,
    force: bool,
    warn: &mut dyn FnMut(&str),
) -> Result<(), OciError> {
    let dir = root.container(id)?;
    let Some(record) = dir.load()? else {
        // `create` was killed before it recorded anything: nothing of the container runs
        // (its first process dies with `create` until it is recorded).
        dir.remove()?;
        return Ok(());
    };
    match dir.status(Some(&record)) {
        status @ (Status::Running | Status::Paused) if !force => {
            return Err(OciError::State(format!(
                "cannot delete container {id}: it is {} (stop it, or use --force)",
                status.as_str()
            )));
        }
        Status::Stopped => {}
        _ => kill_all(&record),
    }
    // The denial reporter ends with the container; one still there (stuck, or the container
    // was killed before its `execve`) is killed by its recorded identity, cgroup or not.
    if let Some(reporter) = record.reporter {
        signal::kill_all(Some(reporter.process()), None);
        signal::wait_gone(reporter.process(), Duration::from_secs(10));
    }
    if let Some(cg) = &record.cgroup {
        // Best effort, as runc: what is busy stays (its parent is the caller's).
        let _ = cg.remove_dirs();
    }
    for w in hooks::run_recorded(&record.poststop, &record, Status::Stopped, "poststop") {
        warn(&w);
    }
    dir.remove()?;
    Ok(())
}

/// SIGKILL to every process of the container ([`signal::kill_all`], as `rsafe rm -f`), then
/// waits (up to 10 s) for the first to end. The caller reaps it; rsafe only watches.
fn kill_all(record: &Record) {
    let first = record.first_process();
    signal::kill_all(Some(first), record.cgroup.as_ref());
    signal::wait_gone(first, Duration::from_secs(10));
}

/// `ps ID`: the host pids of the container's processes (its cgroup's, or its first process
/// when it has no cgroup).
pub fn pids(root: &RuntimeRoot, id: &str) -> Result<Vec<i32>, OciError> {
    let record = loaded(&root.container(id)?)?;
    if !record.is_alive() {
        return Ok(Vec::new());
    }
    Ok(match &record.cgroup {
        Some(cg) => cg.pids(),
        None => vec![record.pid],
    })
}

/// `list`: every container's state.
pub fn list(root: &RuntimeRoot) -> Result<Vec<OciState>, OciError> {
    root.list()?
        .iter()
        .map(|d| d.oci_state().map_err(OciError::from))
        .collect()
}

/// A signal as runc takes it: `9`, `KILL` or `SIGKILL`.
pub fn parse_signal(text: &str) -> Result<Signal, OciError> {
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| OciError::Usage(format!("unknown signal {text:?}")));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| OciError::Usage(format!("unknown signal {text:?}")))
}

/// A size as runc's `update` takes it (docker's `RAMInBytes`): bytes, or with a binary
/// suffix `k`, `m`, `g`, `t`, `p` (optionally followed by `b` or `ib`, any case); `-1` is
/// unlimited.
pub fn parse_bytes(flag: &str, text: &str) -> Result<i64, OciError> {
    let bad = || OciError::Usage(format!("invalid value for --{flag}: {text:?}"));
    if text.trim() == "-1" {
        return Ok(-1);
    }
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, suffix) = lower.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit: u64 = match suffix.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        "p" | "pb" | "pib" => 1 << 50,
        _ => return Err(bad()),
    };
    let bytes = number * unit as f64;
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_runcs_update() {
        assert_eq!(parse_bytes("memory", "1048576").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("memory", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("memory", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("memory", "1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("memory", "2kb").unwrap(), 2048);
        assert_eq!(parse_bytes("memory", "-1").unwrap(), -1);
        for bad in ["", "m", "12x", "-5", "1e400"] {
            let err = parse_bytes("memory", bad).unwrap_err().to_string();
            assert!(err.contains("--memory"), "{bad}: {err}");
        }
    }

    #[test]
    fn signals_parse_like_runc() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigusr1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
