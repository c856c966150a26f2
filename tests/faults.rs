//! Fault injection: rsafe killed with SIGKILL at spread moments of start-up, extraction and
//! exit; runs started by the dozen at once; one name claimed twice at the same moment; a store
//! that fills up; a state file that is damaged. After each, nothing may be left that `ps -a`,
//! `rm` and gc cannot see and remove: no container directory, cgroup, process, mount or
//! temporary tree, and no name held twice. Every case runs as root, as the unprivileged test
//! user, and as the test user with subordinate ids.
//!
//! The kills here are a few seconds' worth, for CI; `bench/faults.sh` runs the same tests with
//! more kills (`RSAFE_FAULT_KILLS`).
#[allow(dead_code)]
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use run_support::{Caller, Output, for_each_caller, rsafe_cmd};

/// The container `id`'s init (from its `state.json`) and that init's parent: the container's
/// rsafe, or its `-d` monitor. None once it has no live init, or its pid is another process's
/// now (its start time differs): a killed run's pid reused by another test's container must
/// not get that container's monitor killed.
fn init_and_monitor(store: &Path, id: &str) -> Option<(i64, i64)> {
    let text =
        std::fs::read_to_string(store.join("containers").join(id).join("state.json")).ok()?;
    let state: serde_json::Value = serde_json::from_str(&text).ok()?;
    let init = state["pid"][0].as_i64()?;
    let started = state["pid"][1].as_i64()?;
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    // Fields 4 (the parent) and 22 (the start time), counted from field 3.
    let ppid = fields.get(1)?.parse().ok()?;
    let start: i64 = fields.get(19)?.parse().ok()?;
    (start == started).then_some((init, ppid))
}

fn kill9(pid: i64) -> bool {
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// How many kills each caller gets in [`kills_at_any_moment_leave_nothing_unseen`].
fn kills() -> u64 {
    std::env::var("RSAFE_FAULT_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// `rsafe run ARGS` as `caller`, started and not waited for.
fn spawn_run(caller: Caller, store: &Path, args: &[&str]) -> Child {
    caller
        .command(store)
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn output(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The container directories of the store (their 64-hex-digit ids).
fn container_dirs(store: &Path) -> BTreeSet<String> {
    std::fs::read_dir(store.join("containers"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 64)
                .collect()
        })
        .unwrap_or_default()
}

/// `ps -a` rows as (short id, name, status), cut at the header's column positions.
fn ps_rows(caller: Caller, store: &Path) -> Vec<(String, String, String)> {
    let ps = rsafe_cmd(caller, store, &["ps", "-a"]);
    assert_eq!(ps.code, 0, "{caller:?}: {ps:?}");
    let mut lines = ps.stdout.lines();
    // Columns by character (a truncated image or command ends in a multi-byte '…').
    let header: Vec<char> = lines.next().unwrap_or("").chars().collect();
    let at = |col: &str| {
        let col: Vec<char> = col.chars().collect();
        header
            .windows(col.len())
            .position(|w| w == col.as_slice())
            .unwrap_or_else(|| panic!("no {col:?} column in {ps:?}"))
    };
    let (name, image, status, ports) = (at("NAME"), at("IMAGE"), at("STATUS"), at("PORTS"));
    let cut = |l: &[char], from: usize, to: usize| {
        l.get(from..to.min(l.len()))
            .unwrap_or_default()
            .iter()
            .collect::<String>()
            .trim()
            .to_string()
    };
    lines
        .map(|l| l.chars().collect::<Vec<char>>())
        .map(|l| {
            (
                cut(&l, 0, name),
                cut(&l, name, image),
                cut(&l, status, ports),
            )
        })
        .collect()
}

/// Everything rsafe could have left of the containers `ids` of `store`: their directories,
/// cgroups named after them, processes whose command line names the store (rsafe, its helpers,
/// monitors and log relays, the containers' inits), and mounts of the store's paths.
fn leftovers(store: &Path, ids: &BTreeSet<String>) -> Vec<String> {
    let mut left: Vec<String> = container_dirs(store)
        .into_iter()
        .map(|d| format!("directory containers/{d}"))
        .collect();
    let walk = walkdir::WalkDir::new("/sys/fs/cgroup")
        .max_depth(8)
        .same_file_system(false);
    for entry in walk.into_iter().filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy();
        let id = name.strip_prefix("rsafe-").unwrap_or(&name);
        if entry.file_type().is_dir() && ids.contains(id) {
            left.push(format!("cgroup {}", entry.path().display()));
        }
    }
    let needle = store.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            left.push(format!("process {pid}: {cmdline}"));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let below = format!("{needle}/");
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&below))
            .map(|l| format!("mount {l}")),
    );
    left
}

/// Waits for the processes of killed runs to be gone: a container's init dies with its rsafe,
/// and its processes with it; an extraction helper with its rsafe, once the kernel lets it (a
/// `syncfs` on a busy disk holds a SIGKILL for seconds). Fails, naming them, after 60 s.
fn settle(store: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let processes: Vec<String> = leftovers(store, &BTreeSet::new())
            .into_iter()
            .filter(|l| l.starts_with("process "))
            .collect();
        if processes.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "still running: {processes:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes every container `ps -a` shows, then asserts that nothing at all is left.
fn remove_all_and_check(caller: Caller, store: &Path, ids: &BTreeSet<String>) {
    for (id, _, _) in ps_rows(caller, store) {
        let rm = rsafe_cmd(caller, store, &["rm", "-f", &id]);
        assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");
    }
    let left = leftovers(store, ids);
    assert!(left.is_empty(), "{caller:?}: left behind: {left:#?}");
}

/// rsafe is killed with SIGKILL at spread moments from its start to its container's run or end,
/// foreground and `-d`, with and without `--rm`, with a cgroup limit: every directory it made
/// is in `ps -a` (a dead `--rm` one swept), and `rm` removes all of it, cgroups included.
#[test]
fn kills_at_any_moment_leave_nothing_unseen() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let n = kills();
        let mut all_ids = BTreeSet::new();
        for k in 0..n {
            let name = format!("k{k}");
            let mut args = vec!["--pids-limit", "64"];
            // Named runs write their state as soon as their directory exists; unnamed ones
            // only once their cgroup is made, the widest window for a directory without state.
            if k % 2 == 0 {
                args.extend(["--name", &name]);
            }
            match k % 3 {
                0 => args.push("--rm"),
                1 => {}
                _ => args.extend(["-d", "--rm"]),
            }
            // Every fourth run ends at once: its kill lands while rsafe records the exit or
            // removes the container.
            let command: &[&str] = if k % 4 == 3 {
                &["/bin/true"]
            } else {
                &["/bin/sleep", "3"]
            };
            args.push(rootfs);
            args.push("--");
            args.extend(command);
            let mut child = spawn_run(caller, store, &args);
            // From before the clone to after the workload started (10–30 ms here).
            std::thread::sleep(Duration::from_micros(k * 40_000 / n.max(1)));
            let _ = child.kill();
            let _ = child.wait();
            all_ids.extend(container_dirs(store));
        }
        // The `-d` runs whose monitor survived the kill of `rsafe run`: their monitors too.
        for id in container_dirs(store) {
            if let Some((_, monitor)) = init_and_monitor(store, &id) {
                kill9(monitor);
            }
        }
        settle(store);
        all_ids.extend(container_dirs(store));
        // Every directory is listed: dead `--rm` ones are swept by this very `ps -a`, the rest
        // are shown, with their names, and none as Up.
        let rows = ps_rows(caller, store);
        eprintln!("{caller:?}: after {n} kills, ps -a shows {rows:?}");
        let listed: BTreeSet<String> = rows.iter().map(|(id, _, _)| id.clone()).collect();
        let dirs: BTreeSet<String> = container_dirs(store)
            .iter()
            .map(|d| d[..12].to_string())
            .collect();
        assert_eq!(listed, dirs, "{caller:?}: {rows:?}");
        for (id, name, status) in &rows {
            assert!(
                status == "Dead" || status.starts_with("Exited"),
                "{caller:?}: {id} {name} {status}"
            );
        }
        let names: Vec<&String> = rows
            .iter()
            .map(|(_, n, _)| n)
            .filter(|n| !n.is_empty())
            .collect();
        let unique: BTreeSet<&&String> = names.iter().collect();
        assert_eq!(
            names.len(),
            unique.len(),
            "{caller:?}: a name twice: {rows:?}"
        );
        remove_all_and_check(caller, store, &all_ids);
    });
}

/// A `-d --rm` container whose monitor is killed dies with it, and is removed by the next
/// command that lists containers, as its monitor would have done; one without `--rm` stays,
/// as Dead, until `rm`.
#[test]
fn a_killed_monitor_leaves_its_rm_container_to_the_next_ps() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        for (name, rm) in [("gone", true), ("kept", false)] {
            let mut args = vec!["-d", "--name", name];
            if rm {
                args.push("--rm");
            }
            args.extend([rootfs, "--", "/bin/sleep", "30"]);
            let out = run_support::run(caller, store, &args);
            assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        }
        let mut ids = BTreeSet::new();
        for id in container_dirs(store) {
            let (_, monitor) = init_and_monitor(store, &id).unwrap();
            assert!(kill9(monitor), "{caller:?}");
            ids.insert(id);
        }
        settle(store);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut rows = ps_rows(caller, store);
        while rows.len() != 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            rows = ps_rows(caller, store);
        }
        assert_eq!(rows.len(), 1, "{caller:?}: {rows:?}");
        assert_eq!(
            (rows[0].1.as_str(), rows[0].2.as_str()),
            ("kept", "Dead"),
            "{caller:?}"
        );
        remove_all_and_check(caller, store, &ids);
    });
}

/// Ten pairs of runs claim ten names at the same moment: exactly one of each pair gets it, the
/// other fails with exit 125 and says the name is in use, with and without `--rm`. Then thirty
/// `--rm` runs at once all succeed and leave nothing.
#[test]
fn names_are_claimed_once_under_concurrency() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let mut children = Vec::new();
        for k in 0..10 {
            let name = format!("r{k}");
            for _ in 0..2 {
                let mut args = vec!["--name", &name];
                if k % 2 == 0 {
                    args.push("--rm");
                }
                // Long enough that the pair overlaps: a --rm winner that ended would rightly
                // give its name back.
                args.extend([rootfs, "--", "/bin/sleep", "1"]);
                children.push((name.clone(), spawn_run(caller, store, &args)));
            }
        }
        let outs: Vec<(String, Output)> =
            children.into_iter().map(|(n, c)| (n, output(c))).collect();
        for k in 0..10 {
            let name = format!("r{k}");
            let pair: Vec<&Output> = outs
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, o)| o)
                .collect();
            let won = pair.iter().filter(|o| o.code == 0).count();
            assert_eq!(won, 1, "{caller:?}: {name}: {pair:?}");
            let lost = pair.iter().find(|o| o.code != 0).unwrap();
            assert_eq!(lost.code, 125, "{caller:?}: {lost:?}");
            assert!(
                lost.stderr
                    .contains(&format!("the container name \"{name}\" is already in use")),
                "{caller:?}: {lost:?}"
            );
        }
        let rows = ps_rows(caller, store);
        let kept: BTreeSet<&str> = rows.iter().map(|(_, n, _)| n.as_str()).collect();
        assert_eq!(
            kept,
            BTreeSet::from(["r1", "r3", "r5", "r7", "r9"]),
            "{caller:?}: {rows:?}"
        );
        let ids: BTreeSet<String> = container_dirs(store);
        remove_all_and_check(caller, store, &ids);

        let runs: Vec<Child> = (0..30)
            .map(|_| {
                spawn_run(
                    caller,
                    store,
                    &["--rm", "--pids-limit", "64", rootfs, "--", "/bin/true"],
                )
            })
            .collect();
        for out in runs.into_iter().map(output) {
            assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        }
        assert!(ps_rows(caller, store).is_empty(), "{caller:?}");
        remove_all_and_check(caller, store, &BTreeSet::new());
    });
}

/// A store that fills up while a kept container runs still records its exit (the room was
/// reserved when it started); a damaged `state.json` blocks no other run and is listed, Dead,
/// until `rm`.
#[test]
fn a_full_store_keeps_the_exit_and_a_damaged_state_blocks_nothing() {
    if !support::is_root() {
        eprintln!("skipping: mounting a small tmpfs store needs root");
        assert!(
            !support::required(),
            "RSAFE_TEST_REQUIRE=1: this test needs root"
        );
        return;
    }
    for_each_caller(|caller, big_store| {
        let _ = big_store;
        let mnt = tempfile::Builder::new()
            .prefix("rsafe-full-")
            .tempdir_in("/tmp")
            .unwrap();
        let store = mnt.path();
        let mount = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m,mode=777", "rsafe-full"])
            .arg(store)
            .status()
            .unwrap();
        assert!(mount.success());
        let unmount = Unmount(store.to_path_buf());
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let fill = "dd if=/dev/zero of=/fill bs=64k 2>/dev/null; exit 7";
        let out = run_support::run(
            caller,
            store,
            &["--name", "full", rootfs, "--", "/bin/sh", "-c", fill],
        );
        assert_eq!(out.code, 7, "{caller:?}: {out:?}");
        assert!(!out.stderr.contains("cannot record"), "{caller:?}: {out:?}");
        let rows = ps_rows(caller, store);
        assert_eq!(rows.len(), 1, "{caller:?}: {rows:?}");
        assert_eq!(
            (rows[0].1.as_str(), rows[0].2.as_str()),
            ("full", "Exited (7)"),
            "{caller:?}"
        );
        let rm = rsafe_cmd(caller, store, &["rm", "full"]);
        assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");

        // A state file cut short (a crash, a full disk on another tool's write).
        let out = run_support::run(
            caller,
            store,
            &["--name", "broken", rootfs, "--", "/bin/true"],
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let broken: String = container_dirs(store).into_iter().next().unwrap();
        let file = store.join("containers").join(&broken).join("state.json");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, &text[..text.len() / 2]).unwrap();
        let out = run_support::run(
            caller,
            store,
            &["--rm", "--name", "next", rootfs, "--", "/bin/true"],
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let rows = ps_rows(caller, store);
        assert_eq!(rows.len(), 1, "{caller:?}: {rows:?}");
        assert_eq!(
            (rows[0].0.as_str(), rows[0].2.as_str()),
            (&broken[..12], "Dead"),
            "{caller:?}"
        );
        remove_all_and_check(caller, store, &BTreeSet::from([broken]));
        drop(unmount);
    });
}

/// Unmounts the test's tmpfs store, whatever happens.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The `-d` log relay killed while the container writes: the container's next write ends it
/// with SIGPIPE, and the log says so instead of just stopping.
#[test]
fn a_killed_log_relay_is_said_in_the_log() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let ticks = "while :; do echo tick; sleep 0.05; done";
        let out = run_support::run(
            caller,
            store,
            &[
                "-d", "--name", "ticks", rootfs, "--", "/bin/sh", "-c", ticks,
            ],
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let id = out.stdout.trim().to_string();
        let (init, monitor) = init_and_monitor(store, &id).unwrap();
        // The relay: the monitor's other child.
        let children =
            std::fs::read_to_string(format!("/proc/{monitor}/task/{monitor}/children")).unwrap();
        let relay: Vec<&str> = children
            .split_whitespace()
            .filter(|c| *c != init.to_string())
            .collect();
        assert_eq!(relay.len(), 1, "{caller:?}: {children}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(kill9(relay[0].parse().unwrap()), "{caller:?}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rows = ps_rows(caller, store);
        while !rows.iter().any(|r| r.2.starts_with("Exited")) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            rows = ps_rows(caller, store);
        }
        assert_eq!(rows[0].2, "Exited (141)", "{caller:?}: {rows:?}");
        let logs = rsafe_cmd(caller, store, &["logs", "ticks"]);
        assert_eq!(logs.code, 0, "{caller:?}: {logs:?}");
        let lines: Vec<&str> = logs.stdout.lines().collect();
        assert!(
            lines.len() > 1 && lines[0] == "tick",
            "{caller:?}: {logs:?}"
        );
        let last = lines.last().unwrap();
        assert!(
            last.starts_with(&format!(
                "rsafe: the log relay (pid {}) was killed by SIGKILL",
                relay[0]
            )),
            "{caller:?}: {logs:?}"
        );
        remove_all_and_check(caller, store, &BTreeSet::from([id]));
    });
}

/// The temporary trees of the layer cache (`layers/<map>/.tmp-<diff_id>-…`).
fn temporary_layer_trees(store: &Path) -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new(store.join("layers"))
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .map(|e| e.into_path())
        .collect()
}

/// Starts `rsafe run --rm IMAGE true` and kills it with SIGKILL once it is extracting the
/// image's layer (its temporary tree exists).
fn kill_during_extraction(caller: Caller, store: &Path, image: &str) {
    let mut child = spawn_run(caller, store, &["--rm", image, "true"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while temporary_layer_trees(store).is_empty() {
        assert!(Instant::now() < deadline, "{caller:?}: no extraction seen");
        assert!(
            child.try_wait().unwrap().is_none(),
            "{caller:?}: ended first"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    child.wait().unwrap();
    settle(store);
}

/// rsafe killed while it extracts the Debian image's 170 MB layer takes its extraction helper
/// along (nothing goes on writing unseen), and the tree it leaves is removed by the next run
/// of the image, or by `rmi`.
#[test]
fn killed_extractions_leave_no_temporary_tree() {
    let Some(image) = support::debian::debian_minbase_image() else {
        return;
    };
    for_each_caller(|caller, store| {
        // Root's layers are shifted into its range, those of a user with subordinate ids are
        // owned by them (removed as the container's root): the two ways a tree is owned. The
        // single-id user's are the caller's own, the easy case (minutes of CI spared).
        if caller == Caller::User {
            return;
        }
        let load = rsafe_cmd(caller, store, &["load", &image]);
        assert_eq!(load.code, 0, "{caller:?}: {load:?}");
        let name = load
            .stdout
            .trim()
            .trim_start_matches("Loaded image: ")
            .to_string();
        kill_during_extraction(caller, store, &name);
        let left = temporary_layer_trees(store);
        assert_eq!(left.len(), 1, "{caller:?}: {left:?}");
        // No helper extracts on: the tree stays as the kill left it.
        let size = || walkdir::WalkDir::new(&left[0]).into_iter().count();
        let before = size();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(size(), before, "{caller:?}: the extraction went on");
        let out = run_support::run(caller, store, &["--rm", &name, "true"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert!(temporary_layer_trees(store).is_empty(), "{caller:?}");
        if caller == Caller::Host {
            // Extract again (rmi removes the cached layer), kill, and let rmi collect it.
            let rmi = rsafe_cmd(caller, store, &["rmi", &name]);
            assert_eq!(rmi.code, 0, "{caller:?}: {rmi:?}");
            let load = rsafe_cmd(caller, store, &["load", &image]);
            assert_eq!(load.code, 0, "{caller:?}: {load:?}");
            kill_during_extraction(caller, store, &name);
            assert_eq!(temporary_layer_trees(store).len(), 1, "{caller:?}");
            let rmi = rsafe_cmd(caller, store, &["rmi", &name]);
            assert_eq!(rmi.code, 0, "{caller:?}: {rmi:?}");
            assert!(temporary_layer_trees(store).is_empty(), "{caller:?}");
        }
    });
}

/// The half-written blobs in the store's `tmp/` (a writer's named temporary files).
fn tmp_files(store: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(store.join("tmp"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// `rsafe load` killed while it copies the Debian image's 170 MB layer: no image is named, and
/// the half blob it left in `tmp/` (its writer's lock gone with it) is removed by the next
/// writer once a minute has passed, not after an hour and only by an `rmi` as before. A live
/// writer's file of any age is left alone (the store's unit tests).
#[test]
fn a_killed_load_leaves_no_image_and_its_half_blob_goes_with_the_next_load() {
    let Some(image) = support::debian::debian_minbase_image() else {
        return;
    };
    let small = support::busybox_layout();
    for_each_caller(|caller, store| {
        let mut child = caller
            .command(store)
            .args(["-q", "load", &image])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let big = |p: &std::path::PathBuf| std::fs::metadata(p).is_ok_and(|m| m.len() > 1 << 20);
        while !tmp_files(store).iter().any(big) {
            assert!(Instant::now() < deadline, "{caller:?}: no blob seen");
            assert!(
                child.try_wait().unwrap().is_none(),
                "{caller:?}: load ended first"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let images = rsafe_cmd(caller, store, &["images", "-q"]);
        assert_eq!((images.code, images.stdout.as_str()), (0, ""), "{caller:?}");
        let left = tmp_files(store);
        assert!(!left.is_empty(), "{caller:?}");
        // A minute later (the files' times moved back), the next writer removes them.
        let past = std::time::SystemTime::now() - Duration::from_secs(120);
        for f in &left {
            std::fs::File::open(f).unwrap().set_modified(past).unwrap();
        }
        let load = rsafe_cmd(caller, store, &["-q", "load", small.to_str().unwrap()]);
        assert_eq!(load.code, 0, "{caller:?}: {load:?}");
        assert_eq!(
            tmp_files(store),
            Vec::<std::path::PathBuf>::new(),
            "{caller:?}"
        );
    });
}

/// Files under `dir` at `depth` (blobs under `blobs/sha256`, extracted layers under
/// `layers/<ownership>`), lock files aside.
fn entries_at(dir: &Path, depth: usize) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(depth)
        .max_depth(depth)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect()
}

/// `rmi` killed after it untagged the last image and before its gc (the index names nothing,
/// the blobs and the extracted layer are still there): running the same `rmi` again says the
/// image is gone and removes them. Before, only an `rmi` that removed an image ran the gc, and
/// with no image left nothing could.
#[test]
fn an_rmi_killed_before_its_gc_is_finished_by_running_it_again() {
    let layout = support::busybox_layout();
    for_each_caller(|caller, store| {
        let load = rsafe_cmd(caller, store, &["-q", "load", layout.to_str().unwrap()]);
        assert_eq!(load.code, 0, "{caller:?}: {load:?}");
        let out = run_support::run(caller, store, &["--rm", "oci-busybox:root", "true"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert!(
            !entries_at(&store.join("layers"), 2).is_empty(),
            "{caller:?}"
        );
        // What the kill leaves: both names untagged, nothing collected.
        let index = store.join("index.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
        json["manifests"] = serde_json::json!([]);
        std::fs::write(&index, json.to_string()).unwrap();
        let rmi = rsafe_cmd(caller, store, &["rmi", "oci-busybox:root"]);
        assert_eq!(rmi.code, 1, "{caller:?}: {rmi:?}");
        assert_eq!(rmi.stderr.lines().count(), 1, "{caller:?}: {rmi:?}");
        assert!(
            rmi.stdout.contains("Deleted: sha256:"),
            "{caller:?}: {rmi:?}"
        );
        let blobs = entries_at(&store.join("blobs/sha256"), 1);
        assert_eq!(blobs, Vec::<String>::new(), "{caller:?}");
        let layers = entries_at(&store.join("layers"), 2);
        assert_eq!(layers, Vec::<String>::new(), "{caller:?}");
    });
}

/// Every blob of the store hashes to its name (`sha256sum`: a debug build's hashing of the
/// 120 MiB layer would take long).
fn blobs_verify(caller: Caller, store: &Path) {
    let dir = store.join("blobs/sha256");
    for name in entries_at(&dir, 1) {
        let out = Command::new("sha256sum")
            .arg(dir.join(&name))
            .output()
            .unwrap();
        let sum = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            sum.split_whitespace().next(),
            Some(name.as_str()),
            "{caller:?}: a blob that is not what it is named"
        );
    }
}

/// `rsafe pull NAME` as `caller`, started and not waited for.
fn spawn_pull(caller: Caller, store: &Path, name: &str) -> Child {
    caller
        .command(store)
        .args(["-q", "pull", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The files of `tmp/` made older than a killed writer's minute of grace.
fn age_tmp_files(store: &Path) {
    let past = std::time::SystemTime::now() - Duration::from_secs(120);
    for f in tmp_files(store) {
        std::fs::File::open(&f).unwrap().set_modified(past).unwrap();
    }
}

/// What `images -q` lists.
fn image_ids(caller: Caller, store: &Path) -> String {
    let images = rsafe_cmd(caller, store, &["images", "-q"]);
    assert_eq!(images.code, 0, "{caller:?}: {images:?}");
    images.stdout
}

/// A registry on 127.0.0.1 (Debian's docker-registry) holding busybox plus a 120 MiB layer of
/// random bytes, as `HOST/rsafe/big:1`.
fn big_image_registry() -> Option<(support::registry::Registry, String)> {
    use support::registry::{Auth, Registry, busybox_big_layout};
    let reg = Registry::start(Auth::None)?;
    let layout = busybox_big_layout();
    reg.push(&format!("oci:{}:big", layout.display()), "rsafe/big:1", &[]);
    let name = format!("{}/rsafe/big:1", reg.host());
    Some((reg, name))
}

/// `rsafe pull` from a real registry killed with SIGKILL: at spread moments of its first 60 ms
/// (the ping, the manifest, the first blobs), then in the middle of the 120 MiB layer. After
/// each kill `images` lists nothing and every blob is whole; the next pull (a minute on)
/// removes the half blob and finishes, verified. A kill after the blobs and before the name
/// (the index as it leaves it) costs the next pull no download, and the blobs nothing names
/// are collected by `rmi`'s gc. Three pulls of the same image at once all succeed.
#[test]
fn killed_pulls_leave_no_half_image_and_the_next_pull_finishes() {
    let Some((_reg, name)) = big_image_registry() else {
        return;
    };
    for_each_caller(|caller, store| {
        let n = kills();
        for k in 0..n {
            let mut child = spawn_pull(caller, store, &name);
            std::thread::sleep(Duration::from_micros(k * 60_000 / n.max(1)));
            let _ = child.kill();
            let _ = child.wait();
            assert_eq!(image_ids(caller, store), "", "{caller:?}: after kill {k}");
            blobs_verify(caller, store);
        }
        // Mid-blob: the layer's temporary file past 1 MiB.
        let mut child = spawn_pull(caller, store, &name);
        let deadline = Instant::now() + Duration::from_secs(60);
        let big = |p: &std::path::PathBuf| std::fs::metadata(p).is_ok_and(|m| m.len() > 1 << 20);
        while !tmp_files(store).iter().any(big) {
            assert!(Instant::now() < deadline, "{caller:?}: no blob seen");
            assert!(
                child.try_wait().unwrap().is_none(),
                "{caller:?}: pull ended first"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(image_ids(caller, store), "", "{caller:?}");
        assert!(!tmp_files(store).is_empty(), "{caller:?}");
        blobs_verify(caller, store);
        age_tmp_files(store);
        let pull = rsafe_cmd(caller, store, &["pull", &name]);
        assert_eq!(pull.code, 0, "{caller:?}: {pull:?}");
        assert_eq!(
            tmp_files(store),
            Vec::<std::path::PathBuf>::new(),
            "{caller:?}"
        );
        blobs_verify(caller, store);
        assert_eq!(image_ids(caller, store).lines().count(), 1, "{caller:?}");

        // After the blobs, before the name: the index as that kill leaves it.
        let index = store.join("index.json");
        let named = std::fs::read_to_string(&index).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&named).unwrap();
        json["manifests"] = serde_json::json!([]);
        std::fs::write(&index, json.to_string()).unwrap();
        assert_eq!(image_ids(caller, store), "", "{caller:?}");
        let pull = rsafe_cmd(caller, store, &["pull", &name]);
        assert_eq!(pull.code, 0, "{caller:?}: {pull:?}");
        assert!(
            pull.stdout
                .contains(": 0 blobs fetched (0 B), 3 already present"),
            "{caller:?}: {pull:?}"
        );
        std::fs::write(&index, json.to_string()).unwrap();
        let rmi = rsafe_cmd(caller, store, &["rmi", &name]);
        assert_eq!(rmi.code, 1, "{caller:?}: {rmi:?}");
        let blobs = entries_at(&store.join("blobs/sha256"), 1);
        assert_eq!(blobs, Vec::<String>::new(), "{caller:?}");

        // Three at once, into the emptied store.
        let pulls: Vec<Child> = (0..3)
            .map(|_| {
                caller
                    .command(store)
                    .args(["-q", "pull", &name])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for out in pulls.into_iter().map(output) {
            assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        }
        assert_eq!(image_ids(caller, store).lines().count(), 1, "{caller:?}");
        assert_eq!(
            tmp_files(store),
            Vec::<std::path::PathBuf>::new(),
            "{caller:?}"
        );
        blobs_verify(caller, store);
    });
}

/// A tmpfs of `size` mounted for the test (mode 777, so every caller can use it as its store),
/// unmounted when dropped.
fn small_store(size: &str) -> (tempfile::TempDir, Unmount) {
    let mnt = tempfile::Builder::new()
        .prefix("rsafe-full-")
        .tempdir_in("/tmp")
        .unwrap();
    let mount = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=777"),
            "rsafe-full",
        ])
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(mount.success());
    let unmount = Unmount(mnt.path().to_path_buf());
    (mnt, unmount)
}

/// Whether this test may mount tmpfs stores (root), said when it may not.
fn can_mount() -> bool {
    if !support::is_root() {
        eprintln!("skipping: mounting a small tmpfs store needs root");
        assert!(
            !support::required(),
            "RSAFE_TEST_REQUIRE=1: this test needs root"
        );
    }
    support::is_root()
}

/// KiB used on the filesystem at `path`.
fn used_kib(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-k", "--output=used"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

/// A 16 MiB store too small for the 120 MiB layer: `pull` and `load` each fail in one line
/// naming the store's file and `No space left on device`, with exit 1; nothing is named,
/// `tmp/` is empty and the space is free again (no half blob anywhere).
#[test]
fn a_full_store_refuses_pull_and_load_in_one_line_leaving_nothing() {
    if !can_mount() {
        return;
    }
    let Some((_reg, name)) = big_image_registry() else {
        return;
    };
    let layout = support::registry::busybox_big_layout();
    let layout = format!("{}:big", layout.display());
    for_each_caller(|caller, _| {
        let (mnt, _unmount) = small_store("16m");
        let store = mnt.path();
        for args in [["pull", &name], ["load", &layout]] {
            let before = used_kib(store);
            let out = rsafe_cmd(caller, store, &args);
            assert_eq!(out.code, 1, "{caller:?}: {out:?}");
            let err = out.stderr.trim_end();
            assert_eq!(err.lines().count(), 1, "{caller:?}: {out:?}");
            assert!(
                err.starts_with("rsafe: ")
                    && err.contains(&format!("{}/", store.display()))
                    && err.contains("No space left on device"),
                "{caller:?}: {out:?}"
            );
            assert_eq!(image_ids(caller, store), "", "{caller:?}");
            assert_eq!(
                tmp_files(store),
                Vec::<std::path::PathBuf>::new(),
                "{caller:?}"
            );
            blobs_verify(caller, store);
            // What is left is the whole blobs fetched beside the layer, if any (busybox's).
            let kept: u64 = entries_at(&store.join("blobs/sha256"), 1)
                .iter()
                .map(|b| {
                    std::fs::metadata(store.join("blobs/sha256").join(b))
                        .unwrap()
                        .len()
                })
                .sum();
            assert!(
                used_kib(store) < before + kept / 1024 + 64,
                "{caller:?}: {args:?}: {} KiB used, {before} before, {kept} bytes of blobs",
                used_kib(store)
            );
        }
    });
}

/// The writable layer's filesystem (the store, a 16 MiB tmpfs) filled by the workload: its
/// write fails with ENOSPC, which it sees and reports itself, and its exit code is kept. In
/// the foreground and with `-d`: the log relay of a `-d` container that cannot write its log
/// keeps taking the output (the workload is not killed by SIGPIPE once the pipe is full), says
/// in the log how much was lost once it can write again, and goes on. `rm` gives all the
/// space back.
#[test]
fn a_full_writable_layer_fails_the_write_and_rm_frees_it() {
    if !can_mount() {
        return;
    }
    let layout = support::busybox_layout();
    for_each_caller(|caller, _| {
        let (mnt, _unmount) = small_store("16m");
        let store = mnt.path();
        let load = rsafe_cmd(caller, store, &["-q", "load", layout.to_str().unwrap()]);
        assert_eq!(load.code, 0, "{caller:?}: {load:?}");
        let fill = "dd if=/dev/zero of=/fill bs=64k; echo dd=$? >&2; exit 3";
        // A first run extracts the layer: what is used after it is what the image needs.
        let out = run_support::run(caller, store, &["--rm", "oci-busybox:root", "true"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let before = used_kib(store);
        let out = run_support::run(caller, store, &["--name", "fg", "oci-busybox:root", fill]);
        assert_eq!(out.code, 3, "{caller:?}: {out:?}");
        assert!(
            out.stderr
                .contains("dd: error writing '/fill': No space left on device")
                && out.stderr.contains("dd=1"),
            "{caller:?}: {out:?}"
        );
        assert!(used_kib(store) > 15 << 10, "{caller:?}");
        let rm = rsafe_cmd(caller, store, &["rm", "fg"]);
        assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");
        assert!(used_kib(store) <= before + 64, "{caller:?}");

        // Detached: 200 KB of output while the disk is full (three pipes' worth), then room.
        let noisy = "echo before; dd if=/dev/zero of=/fill bs=64k 2>/dev/null; \
                     i=0; while [ $i -lt 10000 ]; do echo line $i of the full disk; i=$((i+1)); done; \
                     rm /fill; echo after; exit 3";
        let out = run_support::run(
            caller,
            store,
            &["-d", "--name", "bg", "oci-busybox:root", noisy],
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let wait = rsafe_cmd(caller, store, &["wait", "bg"]);
        assert_eq!(wait.stdout.trim(), "3", "{caller:?}: {wait:?}");
        let logs = rsafe_cmd(caller, store, &["logs", "bg"]);
        assert_eq!(logs.code, 0, "{caller:?}: {logs:?}");
        let lines: Vec<&str> = logs.stdout.lines().collect();
        assert_eq!(lines.first(), Some(&"before"), "{caller:?}: {logs:?}");
        assert_eq!(lines.last(), Some(&"after"), "{caller:?}: {lines:?}");
        assert!(
            lines.iter().any(|l| l.starts_with("rsafe: ")
                && l.contains("bytes of the container's output were lost")
                && l.contains("No space left on device")),
            "{caller:?}: {lines:?}"
        );
        let ids = container_dirs(store);
        let rm = rsafe_cmd(caller, store, &["rm", "bg"]);
        assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");
        assert!(used_kib(store) <= before + 64, "{caller:?}");
        let left = leftovers(store, &ids);
        assert!(left.is_empty(), "{caller:?}: left behind: {left:#?}");
    });
}

/// `rm` killed with SIGKILL at spread moments (1–150 ms in) of removing a stopped container
/// whose writable layer holds 1000 files its user `app` wrote (owned by a subordinate id for
/// the test user with a range), and `rm -f` of a running one: every container is still in
/// `ps -a` or gone whole, and a second `rm -f` removes the rest, leaving no directory,
/// cgroup, process or mount.
#[test]
fn killed_rms_are_finished_by_the_next_rm() {
    let layout = support::busybox_layout();
    for_each_caller(|caller, store| {
        let load = rsafe_cmd(caller, store, &["-q", "load", layout.to_str().unwrap()]);
        assert_eq!(load.code, 0, "{caller:?}: {load:?}");
        let files = "mkdir /home/app/d && cd /home/app/d && i=0; \
                     while [ $i -lt 1000 ]; do echo $i >f$i; i=$((i+1)); done";
        // The single-id user has no id for the image's user `app`: its files are its own.
        let image = match caller {
            Caller::User => "oci-busybox:root",
            _ => "oci-busybox:latest",
        };
        let n = kills();
        let mut ids = BTreeSet::new();
        for k in 0..n {
            let name = format!("rm{k}");
            let (args, rm): (Vec<&str>, &[&str]) = if k % 2 == 0 {
                (vec!["--name", &name, image, files], &["rm"])
            } else {
                let run = vec!["-d", "--name", &name, image, "sleep 30"];
                (run, &["rm", "-f"])
            };
            let out = run_support::run(caller, store, &args);
            assert_eq!(out.code, 0, "{caller:?}: {out:?}");
            ids.extend(container_dirs(store));
            let mut rm = caller
                .command(store)
                .args(rm)
                .arg(&name)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_micros(1_000 + k * 150_000 / n.max(1)));
            let _ = rm.kill();
            let _ = rm.wait();
        }
        // The killed rms' processes are gone with them; the containers' monitors live on.
        std::thread::sleep(Duration::from_millis(500));
        let listed: BTreeSet<String> = ps_rows(caller, store)
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        let dirs: BTreeSet<String> = container_dirs(store)
            .iter()
            .map(|d| d[..12].to_string())
            .collect();
        assert_eq!(listed, dirs, "{caller:?}");
        eprintln!(
            "{caller:?}: {} of {n} containers left by the killed rms",
            dirs.len()
        );
        for id in listed {
            let rm = rsafe_cmd(caller, store, &["rm", "-f", &id]);
            assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");
        }
        settle(store);
        let left = leftovers(store, &ids);
        assert!(left.is_empty(), "{caller:?}: left behind: {left:#?}");
    });
}

/// The extraction helper killed with SIGKILL (what the OOM killer or a stray `kill -9` does)
/// while it extracts the Debian image's 170 MB layer: `run` fails with 125 in one line saying
/// which process was killed by what (it said `Signaled(Pid(N), SIGKILL, false)`), and the next
/// run extracts the layer anew and leaves no temporary tree.
#[test]
fn a_killed_extraction_helper_is_said_in_words() {
    let Some(image) = support::debian::debian_minbase_image() else {
        return;
    };
    for_each_caller(|caller, store| {
        // The helper is the same code for each caller; the one with subordinate ids runs it as
        // the container's root, root and the single-id user as themselves.
        if caller == Caller::User {
            return;
        }
        let load = rsafe_cmd(caller, store, &["-q", "load", &image]);
        assert_eq!(load.code, 0, "{caller:?}: {load:?}");
        let name = load.stdout.trim().trim_start_matches("Loaded image: ");
        let child = spawn_run(caller, store, &["--rm", name, "true"]);
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(60);
        while temporary_layer_trees(store).is_empty() {
            assert!(Instant::now() < deadline, "{caller:?}: no extraction seen");
            std::thread::sleep(Duration::from_millis(5));
        }
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        let helpers: Vec<i64> = children
            .split_whitespace()
            .map(|c| c.parse().unwrap())
            .collect();
        assert_eq!(helpers.len(), 1, "{caller:?}: {children}");
        assert!(kill9(helpers[0]), "{caller:?}");
        let out = output(child);
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
        assert_eq!(
            out.stderr,
            format!(
                "rsafe: image preparation: helper process (pid {}) was killed by SIGKILL\n",
                helpers[0]
            ),
            "{caller:?}"
        );
        settle(store);
        let out = run_support::run(caller, store, &["--rm", name, "true"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert!(temporary_layer_trees(store).is_empty(), "{caller:?}");
    });
}

/// `flock DIR/.lock sh -c SCRIPT`: a prune-like holder of a container's start lock
/// (`ContainerDir::lock` takes the same flock), started and not waited for; returns once it
/// holds the lock.
fn hold_start_lock(dir: &Path, script: &str) -> Child {
    let ready = dir.parent().unwrap().with_file_name("start-lock-held");
    let _ = std::fs::remove_file(&ready);
    let script = format!("touch {}; {script}", ready.display());
    let child = Command::new("flock")
        .arg(dir.join(".lock"))
        .args(["sh", "-c", &script])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        assert!(
            Instant::now() < deadline,
            "flock never took {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::remove_file(&ready).unwrap();
    child
}

/// `start` while another rsafe holds the container's start lock (as `container prune` does
/// while it removes it) is not "still running": a holder that removes the container gives
/// docker's no such container, one that lets go gives a normal start, one that keeps it is
/// named, with the lock file; never "still running".
#[test]
fn start_against_a_held_start_lock_says_what_holds_it() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let made = rsafe(&["create", "--name", "held", rootfs, "true"]);
        assert_eq!(made.code, 0, "{caller:?}: {made:?}");
        let id = made.stdout.trim().to_string();
        let dir = store.join("containers").join(&id);
        // Held for longer than start waits: named, with its lock file, and nothing started.
        let mut holder = hold_start_lock(&dir, "sleep 4");
        let out = rsafe(&["start", "held"]);
        let want = format!(
            "rsafe: container held is being started or removed by another rsafe command (it holds {}): try again once it is done",
            dir.join(".lock").display()
        );
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
        assert_eq!(out.stderr.trim_end(), want, "{caller:?}: {out:?}");
        assert!(holder.wait().unwrap().success());
        // Let go within start's wait: the start goes on, and the run ends as it should.
        let mut holder = hold_start_lock(&dir, "sleep 0.5");
        let out = rsafe(&["start", "-a", "held"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert!(holder.wait().unwrap().success());
        // Removed by the holder, as prune removes it: no such container.
        let aside = store.join("containers").join(format!(".prune-{id}"));
        let script = format!("sleep 0.5; mv {} {}", dir.display(), aside.display());
        let mut holder = hold_start_lock(&dir, &script);
        let out = rsafe(&["start", "held"]);
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
        assert_eq!(
            out.stderr.trim_end(),
            "rsafe: no container \"held\"",
            "{caller:?}: {out:?}"
        );
        assert!(holder.wait().unwrap().success());
        assert!(!out.stderr.contains("still running"), "{caller:?}: {out:?}");
        // Moved back: the store's own prune would have finished it.
        std::fs::rename(&aside, &dir).unwrap();
        let rm = rsafe(&["rm", "held"]);
        assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");
    });
}

/// Fills the store's filesystem with one file (`fill` in the store's root) so that `free_kib`
/// KiB remain.
fn fill_to(store: &Path, free_kib: u64) {
    let fill = store.join("fill");
    let _ = std::fs::remove_file(&fill);
    let out = Command::new("df")
        .args(["-k", "--output=avail"])
        .arg(store)
        .output()
        .unwrap();
    let avail: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap();
    let count = avail.saturating_sub(free_kib);
    let dd = Command::new("dd")
        .args(["if=/dev/zero", "bs=1k", "status=none"])
        .arg(format!("of={}", fill.display()))
        .arg(format!("count={count}"))
        .status()
        .unwrap();
    assert!(dd.success());
}

/// A `run` that cannot record its container (an 8 MiB store with the image loaded, filled
/// so that 0 to 40 KiB remain: its spec, its state or the room for its exit cannot be
/// written) leaves nothing, as docker leaves nothing when it cannot create a container: one
/// line naming the store's file and ENOSPC, exit 125, no directory, and its name free for the
/// next run. Named in the foreground and unnamed with `-d`; a run that fits records its exit
/// on the store still that full, and is removed again.
#[test]
fn a_run_that_cannot_record_its_container_leaves_nothing() {
    if !can_mount() {
        return;
    }
    let layout = support::busybox_layout();
    for_each_caller(|caller, _| {
        let (mnt, _unmount) = small_store("8m");
        let store = mnt.path();
        let load = rsafe_cmd(caller, store, &["-q", "load", layout.to_str().unwrap()]);
        assert_eq!(load.code, 0, "{caller:?}: {load:?}");
        // The layer extracted first: what the runs below need besides their own files.
        let out = run_support::run(caller, store, &["--rm", "oci-busybox:root", "true"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let (mut failed, mut files) = (0, BTreeSet::new());
        for free in (0..=40).step_by(4) {
            for flags in [&["--name", "c"][..], &["-d"][..]] {
                fill_to(store, free);
                let mut args = flags.to_vec();
                args.extend(["oci-busybox:root", "true"]);
                let out = run_support::run(caller, store, &args);
                if out.code == 0 {
                    // A run that started records its exit, the store still as full as it
                    // found it.
                    for (id, _, _) in ps_rows(caller, store) {
                        let wait = rsafe_cmd(caller, store, &["wait", &id]);
                        assert_eq!(
                            wait.stdout, "0\n",
                            "{caller:?} {free} KiB {flags:?}: {wait:?}"
                        );
                        let rm = rsafe_cmd(caller, store, &["rm", &id]);
                        assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");
                    }
                    let _ = std::fs::remove_file(store.join("fill"));
                    continue;
                }
                let _ = std::fs::remove_file(store.join("fill"));
                failed += 1;
                assert_eq!(out.code, 125, "{caller:?} {free} KiB {flags:?}: {out:?}");
                let err = out.stderr.trim_end();
                let prefix = format!("rsafe: {}/containers/", store.display());
                assert!(
                    err.lines().count() == 1
                        && err.starts_with(&prefix)
                        && err.ends_with("No space left on device (os error 28)"),
                    "{caller:?} {free} KiB {flags:?}: {out:?}"
                );
                let file = err[prefix.len()..].split(':').next().unwrap_or_default();
                files.insert(file.rsplit('/').next().unwrap_or_default().to_string());
                assert_eq!(
                    ps_rows(caller, store),
                    vec![],
                    "{caller:?} {free} KiB {flags:?}: {out:?}"
                );
                assert_eq!(container_dirs(store), BTreeSet::new(), "{caller:?}");
            }
        }
        // Every record failed somewhere in the sweep: the spec (named or not), the state with
        // the first process (an unnamed run writes it after its spec) and the room kept for
        // its exit. The runtime-spec config.json, written once the container starts, fails it
        // no more than a warning.
        let want: BTreeSet<String> = [".spec.json.tmp", ".state.json.tmp", ".state.json.next"]
            .map(String::from)
            .into();
        assert_eq!(files, want, "{caller:?}: {failed} runs failed");
        // The name is free again, and the store works once there is room.
        let out = run_support::run(caller, store, &["--name", "c", "oci-busybox:root", "true"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let rm = rsafe_cmd(caller, store, &["rm", "c"]);
        assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");
    });
}

/// The workload of the `exit_` tests: runs until SIGUSR1, then says so (a write the full
/// store's log cannot take, for a `-d` container) and exits 3.
const UNTIL_USR1: &str = "trap 'echo bye; exit 3' USR1; while :; do sleep 0.1; done";

/// Fills the store's filesystem to its last block: a `fill` file in its root written until
/// ENOSPC.
fn fill_up(store: &Path) {
    let fill = store.join("fill");
    // dd fails at ENOSPC, which is the point.
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k", "status=none"])
        .arg(format!("of={}", fill.display()))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let out = Command::new("df")
        .args(["-k", "--output=avail"])
        .arg(store)
        .output()
        .unwrap();
    let avail = String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .map(|l| l.trim().to_string());
    assert_eq!(avail.as_deref(), Some("0"), "the store is not full");
}

/// `state.json`'s first process (pid, start time) of container `name`, once its state says it
/// runs with one.
fn running_pid(store: &Path, name: &str) -> Option<(i64, i64)> {
    let containers = std::fs::read_dir(store.join("containers")).ok()?;
    containers.flatten().find_map(|entry| {
        let text = std::fs::read_to_string(entry.path().join("state.json")).ok()?;
        let state: serde_json::Value = serde_json::from_str(&text).ok()?;
        let pid = &state["pid"];
        (state["name"] == name && state["status"] == "running")
            .then(|| Some((pid[0].as_i64()?, pid[1].as_i64()?)))
            .flatten()
    })
}

/// Whether a `sleep` runs under process `init`: [`UNTIL_USR1`] is in its loop, its trap set.
fn sleeps_under(init: i64) -> bool {
    let parents: Vec<(i64, i64, String)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i64 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let (head, tail) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_string();
            let ppid = tail.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid, comm))
        })
        .collect();
    let parent = |pid: i64| parents.iter().find(|p| p.0 == pid).map(|p| p.1);
    parents.iter().filter(|p| p.2 == "sleep").any(|p| {
        let mut at = p.1;
        for _ in 0..8 {
            if at == init {
                return true;
            }
            match parent(at) {
                Some(up) if up > 1 => at = up,
                _ => return false,
            }
        }
        false
    })
}

/// Waits (up to 20 s) until container `name` runs [`UNTIL_USR1`]'s loop with a first process
/// other than `not`; returns that first process.
fn wait_running(store: &Path, name: &str, not: Option<(i64, i64)>) -> (i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match running_pid(store, name) {
            Some(pid) if Some(pid) != not && sleeps_under(pid.0) => return pid,
            _ if Instant::now() > deadline => panic!("{name} never ran (again)"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// With the store full, ends container `name` (SIGUSR1 to [`UNTIL_USR1`]) and asks `wait` for
/// its exit while the fill is still there.
fn end_on_full_store(caller: Caller, store: &Path, name: &str) -> Output {
    wait_running(store, name, None);
    fill_up(store);
    let kill = rsafe_cmd(caller, store, &["kill", "-s", "USR1", name]);
    assert_eq!(kill.code, 0, "{caller:?}: {kill:?}");
    rsafe_cmd(caller, store, &["wait", name])
}

/// What every `exit_` test checks last, the fill still there: `ps -a` says the container
/// exited with `code`; then, with room again, it is removed.
fn exited_then_removed(caller: Caller, store: &Path, name: &str, code: i32) {
    let rows = ps_rows(caller, store);
    let want = format!("Exited ({code})");
    assert!(
        rows.iter().any(|(_, n, s)| n == name && *s == want),
        "{caller:?}: {rows:?}"
    );
    std::fs::remove_file(store.join("fill")).unwrap();
    let rm = rsafe_cmd(caller, store, &["rm", "-f", name]);
    assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");
}

/// A foreground `run` whose store fills up (to its last block) while the container runs
/// records its exit: `wait` says 3 and `ps -a` `Exited (3)` while the store is still full.
#[test]
fn exit_of_a_foreground_run_is_recorded_on_a_full_store() {
    if !can_mount() {
        return;
    }
    for_each_caller(|caller, _| {
        let (mnt, _unmount) = small_store("8m");
        let store = mnt.path();
        let rootfs = caller.rootfs();
        let run = spawn_run(
            caller,
            store,
            &[
                "--name",
                "c",
                rootfs.to_str().unwrap(),
                "sh",
                "-c",
                UNTIL_USR1,
            ],
        );
        let wait = end_on_full_store(caller, store, "c");
        let run = output(run);
        assert_eq!(run.code, 3, "{caller:?}: {run:?}");
        assert!(!run.stderr.contains("cannot record"), "{caller:?}: {run:?}");
        assert_eq!(wait.stdout, "3\n", "{caller:?}: {wait:?}");
        exited_then_removed(caller, store, "c", 3);
    });
}

/// A `run -d` container's monitor records the exit on a store that filled up meanwhile, its
/// log unable to take the workload's last line.
#[test]
fn exit_of_a_detached_run_is_recorded_on_a_full_store() {
    if !can_mount() {
        return;
    }
    for_each_caller(|caller, _| {
        let (mnt, _unmount) = small_store("8m");
        let store = mnt.path();
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let run = run_support::run(
            caller,
            store,
            &["-d", "--name", "c", rootfs, "sh", "-c", UNTIL_USR1],
        );
        assert_eq!(run.code, 0, "{caller:?}: {run:?}");
        let wait = end_on_full_store(caller, store, "c");
        assert_eq!(wait.stdout, "3\n", "{caller:?}: {wait:?}");
        exited_then_removed(caller, store, "c", 3);
    });
}

/// A `run --rm` container (foreground and `-d`) on a store that filled up meanwhile is
/// removed when it ends, as on any store: `wait` says so, and nothing is left, Dead or not.
#[test]
fn exit_of_an_rm_run_on_a_full_store_removes_it() {
    if !can_mount() {
        return;
    }
    for_each_caller(|caller, _| {
        let (mnt, _unmount) = small_store("8m");
        let store = mnt.path();
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        for detach in [false, true] {
            let mut args = vec!["--rm", "--name", "c", rootfs, "sh", "-c", UNTIL_USR1];
            let run = match detach {
                true => {
                    args.insert(0, "-d");
                    let run = run_support::run(caller, store, &args);
                    assert_eq!(run.code, 0, "{caller:?}: {run:?}");
                    None
                }
                false => Some(spawn_run(caller, store, &args)),
            };
            let wait = end_on_full_store(caller, store, "c");
            if let Some(run) = run {
                let run = output(run);
                assert_eq!(run.code, 3, "{caller:?}: {run:?}");
            }
            // `wait` found it running, then removed; or already removed.
            assert!(
                wait.stdout == "3\n"
                    || wait.stderr.contains("no container")
                    || wait.stderr.contains("was removed when it ended (--rm)"),
                "{caller:?} -d {detach}: {wait:?}"
            );
            assert_eq!(ps_rows(caller, store), vec![], "{caller:?} -d {detach}");
            std::fs::remove_file(store.join("fill")).unwrap();
        }
    });
}

/// `create` then `start` (detached, as docker's) on a store that fills up while it runs: the
/// exit is recorded.
#[test]
fn exit_of_a_created_and_started_container_is_recorded_on_a_full_store() {
    if !can_mount() {
        return;
    }
    for_each_caller(|caller, _| {
        let (mnt, _unmount) = small_store("8m");
        let store = mnt.path();
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let made = rsafe_cmd(
            caller,
            store,
            &["create", "--name", "c", rootfs, "sh", "-c", UNTIL_USR1],
        );
        assert_eq!(made.code, 0, "{caller:?}: {made:?}");
        let start = rsafe_cmd(caller, store, &["start", "c"]);
        assert_eq!(start.code, 0, "{caller:?}: {start:?}");
        let wait = end_on_full_store(caller, store, "c");
        assert_eq!(wait.stdout, "3\n", "{caller:?}: {wait:?}");
        exited_then_removed(caller, store, "c", 3);
    });
}

/// A `--restart on-failure:1` container whose store fills up while it runs: its exit is
/// recorded, the monitor starts it again on the full store (the state's save keeps the room
/// it found), and the second exit is recorded too.
#[test]
fn exit_of_a_restarting_container_is_recorded_on_a_full_store() {
    if !can_mount() {
        return;
    }
    for_each_caller(|caller, _| {
        let (mnt, _unmount) = small_store("8m");
        let store = mnt.path();
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let args = [
            "-d",
            "--restart",
            "on-failure:1",
            "--name",
            "c",
            rootfs,
            "sh",
            "-c",
            UNTIL_USR1,
        ];
        let run = run_support::run(caller, store, &args);
        assert_eq!(run.code, 0, "{caller:?}: {run:?}");
        let first = wait_running(store, "c", None);
        fill_up(store);
        let kill = rsafe_cmd(caller, store, &["kill", "-s", "USR1", "c"]);
        assert_eq!(kill.code, 0, "{caller:?}: {kill:?}");
        wait_running(store, "c", Some(first));
        let kill = rsafe_cmd(caller, store, &["kill", "-s", "USR1", "c"]);
        assert_eq!(kill.code, 0, "{caller:?}: {kill:?}");
        let wait = rsafe_cmd(caller, store, &["wait", "c"]);
        assert_eq!(wait.stdout, "3\n", "{caller:?}: {wait:?}");
        exited_then_removed(caller, store, "c", 3);
    });
}

/// A `--restart on-failure:3` container restarted twice on a store that filled up after its
/// start: `inspect`'s RestartCount says 2 while the store is still full (the count's file got
/// its block at the start and is written in place; it was 0 before, the first restart's new
/// file having no room).
#[test]
fn exit_restart_count_on_a_full_store_is_kept() {
    if !can_mount() {
        return;
    }
    for_each_caller(|caller, _| {
        let (mnt, _unmount) = small_store("8m");
        let store = mnt.path();
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let args = [
            "-d",
            "--restart",
            "on-failure:3",
            "--name",
            "c",
            rootfs,
            "sh",
            "-c",
            UNTIL_USR1,
        ];
        let run = run_support::run(caller, store, &args);
        assert_eq!(run.code, 0, "{caller:?}: {run:?}");
        let mut last = wait_running(store, "c", None);
        fill_up(store);
        for _ in 0..2 {
            let kill = rsafe_cmd(caller, store, &["kill", "-s", "USR1", "c"]);
            assert_eq!(kill.code, 0, "{caller:?}: {kill:?}");
            last = wait_running(store, "c", Some(last));
        }
        let out = rsafe_cmd(caller, store, &["inspect", "c"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(doc[0]["RestartCount"], 2, "{caller:?}: {}", doc[0]);
        std::fs::remove_file(store.join("fill")).unwrap();
        let rm = rsafe_cmd(caller, store, &["rm", "-f", "c"]);
        assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");
    });
}

/// `rsafe stop` of a running container on a store that filled up meanwhile returns once the
/// exit (143: SIGTERM) is recorded.
#[test]
fn exit_of_a_stopped_container_is_recorded_on_a_full_store() {
    if !can_mount() {
        return;
    }
    for_each_caller(|caller, _| {
        let (mnt, _unmount) = small_store("8m");
        let store = mnt.path();
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let run = run_support::run(
            caller,
            store,
            &["-d", "--name", "c", rootfs, "sh", "-c", UNTIL_USR1],
        );
        assert_eq!(run.code, 0, "{caller:?}: {run:?}");
        wait_running(store, "c", None);
        fill_up(store);
        let stop = rsafe_cmd(caller, store, &["stop", "-t", "5", "c"]);
        assert_eq!(stop.code, 0, "{caller:?}: {stop:?}");
        let wait = rsafe_cmd(caller, store, &["wait", "c"]);
        assert_eq!(wait.stdout, "143\n", "{caller:?}: {wait:?}");
        exited_then_removed(caller, store, "c", 143);
    });
}

/// An exit that truly cannot be recorded (the room kept for it taken away, as a container
/// started by an older rsafe has none, and the store full) is said as that: `wait` names the
/// full store, not a killed rsafe, and so do `ps -a`'s STATUS and `inspect`'s State.Error.
#[test]
fn exit_that_cannot_be_recorded_says_the_store_is_full() {
    if !can_mount() {
        return;
    }
    for_each_caller(|caller, _| {
        let (mnt, _unmount) = small_store("8m");
        let store = mnt.path();
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let run = run_support::run(
            caller,
            store,
            &["-d", "--name", "c", rootfs, "sh", "-c", UNTIL_USR1],
        );
        assert_eq!(run.code, 0, "{caller:?}: {run:?}");
        wait_running(store, "c", None);
        let id = container_dirs(store).into_iter().next().unwrap();
        std::fs::remove_file(store.join("containers").join(&id).join(".state.json.tmp")).unwrap();
        let wait = end_on_full_store(caller, store, "c");
        assert_eq!(wait.code, 1, "{caller:?}: {wait:?}");
        assert_eq!(
            wait.stderr.trim_end(),
            "rsafe: container c ended, but its exit could not be recorded: the store is full",
            "{caller:?}: {wait:?}"
        );
        // `ps -a` and `inspect` say it too (docker's Dead with an Error), not a bare Dead.
        let rows = ps_rows(caller, store);
        let want = "Dead (exit not recorded: the store is full)";
        assert!(
            rows.iter().any(|(_, n, s)| n == "c" && s == want),
            "{caller:?}: {rows:?}"
        );
        let out = rsafe_cmd(caller, store, &["inspect", "c"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let st = &doc[0]["State"];
        assert_eq!(st["Status"], "dead", "{caller:?}: {st}");
        assert_eq!(
            st["Error"], "its exit could not be recorded: the store is full",
            "{caller:?}: {st}"
        );
        std::fs::remove_file(store.join("fill")).unwrap();
        let rm = rsafe_cmd(caller, store, &["rm", "-f", "c"]);
        assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");
    });
}

/// How a run is started in [`exit_of_a_run_started_on_a_nearly_full_store_is_recorded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Start {
    /// `run` in the foreground, unnamed (its state is written after its spec).
    Foreground,
    /// `run --name` in the foreground (its state is written before its spec).
    Named,
    /// `run -d`.
    Detached,
    /// `create`, then `start` (detached).
    Created,
}

/// Starts `true` as `how` says; the last command's output.
fn start_true(caller: Caller, store: &Path, rootfs: &str, how: Start) -> Output {
    let flags: &[&str] = match how {
        Start::Foreground | Start::Created => &[],
        Start::Named => &["--name", "c"],
        Start::Detached => &["-d"],
    };
    let mut args = flags.to_vec();
    args.extend([rootfs, "true"]);
    if how != Start::Created {
        return run_support::run(caller, store, &args);
    }
    args.insert(0, "create");
    let made = rsafe_cmd(caller, store, &args);
    if made.code != 0 {
        return made;
    }
    rsafe_cmd(caller, store, &["start", made.stdout.trim()])
}

/// Runs started on a store left with 0 to 52 KiB free (every count of free pages from 0 to 13,
/// so also the one where the state fits and the room for its exit does not) either fail,
/// leaving nothing, or record their exit on the store still that full: `wait` says 0, never
/// that the rsafe was killed. The foreground, named, `-d` and `create` + `start`.
#[test]
fn exit_of_a_run_started_on_a_nearly_full_store_is_recorded() {
    if !can_mount() {
        return;
    }
    for_each_caller(|caller, _| {
        let (mnt, _unmount) = small_store("8m");
        let store = mnt.path();
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        // The store made, as every store that has run a container.
        let out = run_support::run(caller, store, &["--rm", rootfs, "true"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        ps_rows(caller, store);
        let hows = [
            Start::Foreground,
            Start::Named,
            Start::Detached,
            Start::Created,
        ];
        let mut outcomes = std::collections::BTreeMap::new();
        // `create` writes the generated /etc files beside its config.json (phase 2a): it
        // starts from 48 KiB free.
        for free in (0..=52).step_by(4) {
            for how in hows {
                fill_to(store, free);
                let out = start_true(caller, store, rootfs, how);
                let what = format!("{caller:?} {how:?} {free} KiB: {out:?}");
                if out.code == 0 {
                    let rows = ps_rows(caller, store);
                    assert_eq!(rows.len(), 1, "{what}: {rows:?}");
                    let wait = rsafe_cmd(caller, store, &["wait", &rows[0].0]);
                    assert_eq!(wait.stdout, "0\n", "{what}: {wait:?}");
                    let rm = rsafe_cmd(caller, store, &["rm", &rows[0].0]);
                    assert_eq!(rm.code, 0, "{what}: {rm:?}");
                } else {
                    assert_eq!(out.code, 125, "{what}");
                    assert!(out.stderr.contains("No space left on device"), "{what}");
                    assert_eq!(ps_rows(caller, store), vec![], "{what}");
                }
                assert_eq!(container_dirs(store), BTreeSet::new(), "{what}");
                std::fs::remove_file(store.join("fill")).unwrap();
                outcomes
                    .entry(how)
                    .or_insert_with(BTreeSet::new)
                    .insert(out.code);
            }
        }
        // Each way both failed (nearly nothing free) and started (52 KiB free).
        for how in hows {
            assert_eq!(
                outcomes[&how],
                BTreeSet::from([0, 125]),
                "{caller:?} {how:?}"
            );
        }
    });
}
