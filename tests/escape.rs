//! A hostile workload tries every known way out of `rsafe run` (nested user namespaces, the
//! mount API, kernel interfaces, devices, raw sockets, /proc and /sys writes, the shocker and
//! double-chroot escapes, inherited descriptors, cgroup release agents, capability raises, the
//! host's network) with the `default` and `strict` policies, as root and unprivileged: every
//! attempt must fail. A control run on the host proves the probe does detect an open door.
#[path = "support/escape.rs"]
mod escape_support;
#[path = "support/run.rs"]
#[allow(dead_code)] // shared with tests/run.rs, which uses the rest
mod run_support;
mod support;

use std::process::Command;

use escape_support::{Bait, VECTORS, results};
use run_support::{Caller, run};

/// Vectors that may legitimately not apply, and why.
fn not_applicable_ok(vector: &str, result: &str) -> bool {
    // TIOCSTI needs a terminal: stdin is not one under `cargo test`, and the probe falls back
    // to a pty of its own; only when even that cannot be opened is there nothing to try.
    vector == "tiocsti" && result.starts_with("n/a:")
}

/// Checks the probe's output: every vector printed once, in order, then `done`; each one
/// `blocked`. Returns the problems found.
fn problems(stdout: &str) -> Vec<String> {
    let lines = results(stdout);
    let mut problems = Vec::new();
    let printed: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
    let mut expected: Vec<&str> = VECTORS.to_vec();
    expected.push("done");
    if printed != expected {
        problems.push(format!(
            "the probe printed {printed:?}, expected every vector then done"
        ));
    }
    for (vector, result) in &lines {
        if vector == "done" || result.starts_with("blocked:") || not_applicable_ok(vector, result) {
            continue;
        }
        problems.push(format!("{vector}={result}"));
    }
    problems
}

#[test]
fn every_escape_attempt_fails() {
    let Some(probe) = escape_support::probe() else {
        return;
    };
    if !run_support::userns_works() {
        return;
    }
    let bait = Bait::new();
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for caller in Caller::all() {
        let rootfs = escape_support::rootfs_with_probe(caller, &probe);
        for policy in ["default", "strict"] {
            let store = support::temp_root();
            let env = bait.env(&[store.path(), &support::fixtures_dir()]);
            let env_args: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut args = vec!["--rm", "--policy", policy];
            for e in &env_args {
                args.extend(["-e", e]);
            }
            args.extend([rootfs.to_str().unwrap(), "--", "/probe"]);
            let out = run(caller, store.path(), &args);
            let context = format!("{caller:?} --policy {policy}");
            if out.code != 0 {
                failures.push(format!("{context}: rsafe run failed: {out:?}"));
                continue;
            }
            table.push(format!("{context}:\n{}", out.stdout));
            failures.extend(
                problems(&out.stdout)
                    .into_iter()
                    .map(|p| format!("{context}: {p}")),
            );
        }
    }
    eprintln!("{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "escape vectors not blocked:\n{}",
        failures.join("\n")
    );
}

/// The same probe on the host as root, outside any sandbox: the doors it reports closed inside
/// the container are open here, so a sandbox that stopped closing them would fail the test
/// above rather than pass it vacuously.
#[test]
fn control_the_probe_sees_open_doors_on_the_host() {
    if !support::have("root for the escape control run", support::is_root()) {
        return;
    }
    let Some(probe) = escape_support::probe() else {
        return;
    };
    let bait = Bait::new();
    // In the probe's order.
    let control = [
        "userns_unshare",
        "userns_clone",
        "userns_mount_tmpfs",
        "mknod_block_device",
        "socket_af_packet",
        "socket_raw_icmp",
        "double_chroot",
        "capset_sys_admin",
        "connect_host_tcp",
        "connect_host_abstract_unix",
    ];
    let out = Command::new(&probe)
        .args(control)
        .envs(bait.env(&[]))
        .current_dir(bait.dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = results(&stdout);
    let printed: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
    let mut expected = control.to_vec();
    expected.push("done");
    assert_eq!(printed, expected, "{stdout}");
    for (vector, result) in lines.iter().filter(|(k, _)| k != "done") {
        assert!(
            result.starts_with("OPEN:"),
            "on the host as root, {vector} should be open: {result}\n{stdout}"
        );
    }
}

#[test]
fn the_checker_rejects_open_missing_and_truncated_output() {
    let all_blocked: String = VECTORS
        .iter()
        .map(|v| format!("{v}=blocked:EPERM\n"))
        .chain(["done\n".to_string()])
        .collect();
    assert!(problems(&all_blocked).is_empty());
    let open = all_blocked.replace(
        "\nmount_tmpfs=blocked:EPERM",
        "\nmount_tmpfs=OPEN:succeeded",
    );
    assert_eq!(problems(&open), ["mount_tmpfs=OPEN:succeeded"]);
    let truncated = all_blocked.replace("done\n", "");
    assert_eq!(problems(&truncated).len(), 1);
    let na = all_blocked.replace("swapon=blocked:EPERM", "swapon=n/a:whatever");
    assert_eq!(problems(&na), ["swapon=n/a:whatever"]);
    let tty = all_blocked.replace("tiocsti=blocked:EPERM", "tiocsti=n/a:no tty");
    assert!(problems(&tty).is_empty());
}
