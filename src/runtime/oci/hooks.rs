//! The runtime-spec's hooks: programs the caller asks to run at points of the lifecycle, each
//! given the container's state JSON on stdin. `createRuntime`/`prestart`, `poststart` and
//! `poststop` run here, in the runtime's namespaces; `createContainer` and `startContainer`
//! are run by the container's first process ([`super::child`]) in the container's.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::OciError;
use super::bundle::Hook;
use super::state::{OCI_VERSION, Record, Status};

/// The state document a hook reads.
pub fn state_document(
    id: &str,
    pid: i32,
    bundle: &std::path::Path,
    annotations: &std::collections::BTreeMap<String, String>,
    status: Status,
) -> String {
    serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": id,
        "status": status.as_str(),
        "pid": pid,
        "bundle": bundle,
        "annotations": annotations,
    })
    .to_string()
}

fn state_json(record: &Record, status: Status) -> String {
    state_document(
        &record.id,
        record.pid,
        &record.bundle,
        &record.annotations,
        status,
    )
}

/// Runs `hooks` in order; the first failure is an error naming the hook (`kind[i]`).
pub fn run_all(
    hooks: &[Hook],
    record: &Record,
    status: Status,
    kind: &str,
) -> Result<(), OciError> {
    run_with_state(hooks, &state_json(record, status), kind)
}

/// Runs `hooks` in order with the state document `state`; the first failure is an error
/// naming the hook (`kind[i]`).
pub fn run_with_state(hooks: &[Hook], state: &str, kind: &str) -> Result<(), OciError> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(&h.path, &h.args, &h.env, h.timeout, state)
            .map_err(|e| OciError::Hook(format!("hooks.{kind}[{i}] {}: {e}", h.path.display())))?;
    }
    Ok(())
}

/// Runs recorded hooks (poststart, poststop): failures are returned as warnings, as the
/// runtime-spec says (the workload runs, or is gone, either way).
pub fn run_recorded(hooks: &[Hook], record: &Record, status: Status, kind: &str) -> Vec<String> {
    let state = state_json(record, status);
    hooks
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            run_one(&h.path, &h.args, &h.env, h.timeout, &state)
                .err()
                .map(|e| format!("hooks.{kind}[{i}] {}: {e}", h.path.display()))
        })
        .collect()
}

fn run_one(
    path: &std::path::Path,
    args: &[String],
    env: &[String],
    timeout: Option<u32>,
    state: &str,
) -> Result<(), String> {
    let mut cmd = Command::new(path);
    // `args[0]` is the program's name, as in execve.
    if let Some((first, rest)) = args.split_first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, first);
        cmd.args(rest);
    }
    cmd.env_clear();
    for kv in env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state is fine.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs(t.into()));
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                let err: String = err.trim().chars().take(500).collect();
                return Err(format!(
                    "{status}{}",
                    if err.is_empty() {
                        String::new()
                    } else {
                        format!(": {err}")
                    }
                ));
            }
            None if deadline.is_some_and(|d| Instant::now() > d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s", timeout.unwrap_or(0)));
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            ready: false,
            ..Record::for_test("c1", 42, 1)
        }
    }

    fn hook(script: &str, timeout: Option<u32>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/usr/bin:/bin".into()],
            timeout,
        }
    }

    #[test]
    fn hooks_read_the_state_and_failures_name_the_hook() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("state");
        let ok = hook(&format!("cat > {}", out.display()), None);
        run_all(&[ok], &record(), Status::Creating, "createRuntime").unwrap();
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(state["id"], "c1");
        assert_eq!(state["status"], "creating");
        assert_eq!(state["pid"], 42);
        let bad = hook("echo broken >&2; exit 3", None);
        let err = run_all(&[bad], &record(), Status::Creating, "prestart")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hooks.prestart[0]") && err.contains("broken"),
            "{err}"
        );
        let slow = hook("sleep 5", Some(1));
        let err = run_all(&[slow], &record(), Status::Creating, "createRuntime")
            .unwrap_err()
            .to_string();
        assert!(err.contains("timed out"), "{err}");
    }
}
