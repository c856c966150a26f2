//! `rsafe kill`: send a signal to running containers, like `docker kill`.
#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::Result;
use nix::sys::signal::Signal;

use super::Global;
use crate::runtime::{detach, state, stop};

/// Send a signal to running containers
///
/// The signal goes to the container's init, which passes it on to the command (SIGKILL, the
/// default, ends the whole container at once); with `--init=false` to the command itself.
/// Returns at once: `rsafe wait` waits for the end. Prints each container as it is signalled.
/// SIGKILL or the container's stop signal stops it as `rsafe stop` does for its --restart
/// policy: it is not started again (docker's and podman's kill).
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// The signal: a name (KILL, SIGTERM, hup) or a number.
    #[arg(short, long, value_name = "SIGNAL", default_value = "KILL", value_parser = parse_signal)]
    pub signal: Signal,
    /// Container names or ids (a unique prefix of an id is enough).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Parses a signal as docker does: a name with or without `SIG`, in any case, or a number.
fn parse_signal(s: &str) -> Result<Signal, String> {
    let bad = || format!("invalid signal {s:?}: expected a name like KILL or TERM, or a number");
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

/// Signals each container in turn; one that cannot be signalled is reported and the rest are
/// still signalled (exit code 1 then), as docker does.
pub fn run(args: KillArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    super::each_container(&args.containers, |name| {
        if !mark_stopped(store.root(), name, args.signal)? {
            stop::signal(store.root(), name, args.signal)?;
        }
        Ok(name.to_string())
    })
}

/// How long a kill waits for a `--restart` container being started again to run.
const SETTLE: Duration = Duration::from_secs(10);

/// Before SIGKILL or its stop signal goes to a running or restarting container: its monitor
/// must not start it again ([`detach::request_stop`]), and one caught starting it again is let
/// run, to be signalled ([`stop::wait_settled`]). Other signals (SIGHUP to reload, say) leave
/// the policy be. Whether the kill is done without a signal: a `--restart` container between
/// runs (or that ended meanwhile) is stopped by the mark alone, as docker's kill of a
/// restarting container only tells its monitor.
fn mark_stopped(store_root: &std::path::Path, name: &str, sig: Signal) -> Result<bool> {
    let (dir, st) = state::find(store_root, name)?;
    if !st.is_alive() && !stop::restarting(&dir, &st) {
        return Ok(false);
    }
    let stop_signal = dir
        .load_spec(name)
        .ok()
        .and_then(|s| s.options.stop_signal)
        .and_then(|s| s.parse::<Signal>().ok())
        .unwrap_or(Signal::SIGTERM);
    if (sig != Signal::SIGKILL && sig != stop_signal) || !detach::request_stop(&dir)? {
        return Ok(false);
    }
    let (_, st) = stop::wait_settled(store_root, name, SETTLE)?;
    if !st.is_alive() {
        return Ok(true);
    }
    match stop::signal(store_root, name, sig) {
        Ok(()) => Ok(true),
        // It ended between the look and the signal: its monitor sees the mark and ends.
        Err(_) if !state::find(store_root, name)?.1.is_alive() => Ok(true),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_parsed_as_docker_parses_them() {
        for (s, sig) in [
            ("KILL", Signal::SIGKILL),
            ("SIGTERM", Signal::SIGTERM),
            ("hup", Signal::SIGHUP),
            ("sigusr1", Signal::SIGUSR1),
            ("15", Signal::SIGTERM),
            ("9", Signal::SIGKILL),
        ] {
            assert_eq!(parse_signal(s), Ok(sig), "{s}");
        }
        for bad in ["", "0", "-1", "99", "SIG", "NOPE", "SIGKILLX", "9x"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
