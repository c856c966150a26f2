//! `rsafe pause` / `rsafe unpause` through the real binary: a counting container stops
//! counting while paused and goes on once unpaused; `ps -a`, `exec`, `stop`, `kill` and
//! `rm -f` treat a paused container as docker does; rootless (no cgroup on this cgroup v1
//! host) is refused in one line.
#[path = "support/run.rs"]
#[allow(dead_code)] // shared with tests/run.rs, which uses the rest
mod run_support;
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use run_support::{Caller, Output, rsafe_cmd, userns_works};

/// A container printing 1, 2, 3… every 50 ms.
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done";

fn ok(caller: Caller, store: &Path, args: &[&str]) -> Output {
    let out = rsafe_cmd(caller, store, args);
    assert_eq!(out.code, 0, "{caller:?} {args:?}: {out:?}");
    out
}

/// `rsafe run -d --name NAME ROOTFS sh -c SCRIPT`; returns the container's id.
fn start(caller: Caller, store: &Path, name: &str, script: &str) -> String {
    let rootfs = caller.rootfs();
    let rootfs = rootfs.to_str().unwrap();
    let out = ok(
        caller,
        store,
        &["run", "-d", "--name", name, rootfs, "sh", "-c", script],
    );
    out.stdout.trim().to_string()
}

/// The last number the counter printed (from its log).
fn count(caller: Caller, store: &Path, name: &str) -> u64 {
    let out = ok(caller, store, &["logs", name]);
    out.stdout
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or(0)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `ps -a` STATUS of container `name` (columns are two or more spaces apart).
fn status(caller: Caller, store: &Path, name: &str) -> String {
    let out = ok(caller, store, &["ps", "-a"]);
    let columns = |l: &str| -> Vec<String> {
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    let line = out
        .stdout
        .lines()
        .map(columns)
        .find(|c| c.get(1).map(String::as_str) == Some(name));
    let line = line.unwrap_or_else(|| panic!("{name} not in ps -a: {}", out.stdout));
    line.get(5).cloned().unwrap_or_default()
}

/// The container's directory in this host's v1 freezer hierarchy (rsafe makes it below its own
/// freezer cgroup, which is the test's).
fn freezer_dir(id: &str) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        ctrls.split(',').any(|c| c == "freezer").then_some(path)
    })?;
    let dir = Path::new("/sys/fs/cgroup/freezer")
        .join(path.trim_start_matches('/'))
        .join("rsafe")
        .join(id);
    Some(dir)
}

/// Root: only root has cgroups on this host.
fn root_with_a_freezer() -> bool {
    support::have("root", support::is_root())
        && support::have(
            "the v1 freezer hierarchy (/sys/fs/cgroup/freezer)",
            Path::new("/sys/fs/cgroup/freezer/freezer.state").exists()
                || Path::new("/sys/fs/cgroup/freezer/tasks").exists(),
        )
        && userns_works()
}

#[test]
fn a_paused_container_stops_counting_and_goes_on_when_unpaused() {
    if !root_with_a_freezer() {
        return;
    }
    let (caller, store) = (Caller::Host, support::temp_root());
    let store = store.path();
    let id = start(caller, store, "counter", COUNTER);
    wait_for("the counter to count", || {
        count(caller, store, "counter") >= 3
    });
    assert_eq!(ok(caller, store, &["pause", "counter"]).stdout, "counter\n");
    let state = freezer_dir(&id).map(|d| d.join("freezer.state"));
    let state = state.and_then(|f| std::fs::read_to_string(f).ok());
    assert_eq!(state.as_deref().map(str::trim), Some("FROZEN"));
    assert_eq!(status(caller, store, "counter"), "Up (Paused)");
    // docker inspect's State of a paused container.
    let inspect = ok(caller, store, &["inspect", "counter"]).stdout;
    let state = &serde_json::from_str::<serde_json::Value>(&inspect).unwrap()[0]["State"];
    assert_eq!(
        (&state["Status"], &state["Running"], &state["Paused"]),
        (&"paused".into(), &true.into(), &true.into()),
        "{state}"
    );
    let paused_at = count(caller, store, "counter");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        count(caller, store, "counter"),
        paused_at,
        "the counter went on while paused"
    );
    // exec is refused as docker refuses it; a second pause says it already is.
    let exec = rsafe_cmd(caller, store, &["exec", "counter", "true"]);
    assert_eq!(exec.code, 125, "{exec:?}");
    assert_eq!(
        exec.stderr,
        "rsafe: container counter is paused, unpause the container before exec\n"
    );
    let again = rsafe_cmd(caller, store, &["pause", "counter"]);
    assert_eq!(again.code, 125, "{again:?}");
    assert_eq!(again.stderr, "rsafe: container counter is already paused\n");

    assert_eq!(
        ok(caller, store, &["unpause", "counter"]).stdout,
        "counter\n"
    );
    assert_eq!(status(caller, store, "counter"), "Up");
    wait_for("the counter to go on", || {
        count(caller, store, "counter") > paused_at + 2
    });
    let twice = rsafe_cmd(caller, store, &["unpause", "counter"]);
    assert_eq!(twice.code, 125, "{twice:?}");
    assert_eq!(twice.stderr, "rsafe: container counter is not paused\n");

    // stop of a paused container: its SIGTERM is acted on (143), not waited out to SIGKILL.
    ok(caller, store, &["pause", "counter"]);
    ok(caller, store, &["stop", "-t", "30", "counter"]);
    assert_eq!(status(caller, store, "counter"), "Exited (143)");
    ok(caller, store, &["rm", "counter"]);
    assert!(freezer_dir(&id).is_some_and(|d| !d.exists()), "{id}");
}

#[test]
fn kill_and_rm_force_end_a_paused_container() {
    if !root_with_a_freezer() {
        return;
    }
    let (caller, store) = (Caller::Host, support::temp_root());
    let store = store.path();
    start(caller, store, "killed", "exec sleep 1000");
    ok(caller, store, &["pause", "killed"]);
    ok(caller, store, &["kill", "killed"]);
    assert_eq!(ok(caller, store, &["wait", "killed"]).stdout, "137\n");
    ok(caller, store, &["rm", "killed"]);

    let id = start(caller, store, "removed", "exec sleep 1000");
    ok(caller, store, &["pause", "removed"]);
    ok(caller, store, &["rm", "-f", "removed"]);
    let ps = ok(caller, store, &["ps", "-a"]);
    assert!(!ps.stdout.contains("removed"), "{ps:?}");
    assert!(freezer_dir(&id).is_some_and(|d| !d.exists()), "{id}");
}

#[test]
fn rootless_pause_is_refused_in_one_line() {
    if !support::have("root (to run as the test user)", support::is_root())
        || !support::have("the rsafe-test user", support::test_user().is_some())
        || !userns_works()
    {
        return;
    }
    let (caller, store) = (Caller::User, support::temp_root());
    let store = store.path();
    start(caller, store, "mine", "exec sleep 1000");
    let out = rsafe_cmd(caller, store, &["pause", "mine"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("rsafe: cannot pause container mine: it has no cgroup freezer (rootless"),
        "{out:?}"
    );
    // Nothing changed: it runs, and takes an exec.
    assert_eq!(status(caller, store, "mine"), "Up");
    ok(caller, store, &["exec", "mine", "true"]);
    ok(caller, store, &["rm", "-f", "mine"]);
}
