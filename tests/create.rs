//! `rsafe create` as `docker create` and `podman create` behave, through the real binary and
//! real containers, as root and as the unprivileged test user (with and without subordinate
//! ids): the full id on stdout, `Created` in `ps -a` and `inspect`, `start` (detached and
//! attached) through the path a stopped container restarts by, `rm`, `--rm` after the first
//! run; bad input refused in one line with exit 125 and nothing recorded; and a `kill -9` of
//! `create` at any moment leaving nothing that `ps -a` and `rm` cannot see.
#[allow(dead_code)]
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::path::Path;
use std::time::Duration;

use run_support::{Caller, Output, for_each_caller, rsafe_cmd};
use serde_json::Value;

/// `rsafe ARGS…` as `caller` on `store`, asserting it succeeded.
fn ok(caller: Caller, store: &Path, args: &[&str]) -> Output {
    let out = rsafe_cmd(caller, store, args);
    assert_eq!(out.code, 0, "{caller:?} rsafe {args:?}: {}", out.stderr);
    out
}

/// `rsafe create FLAGS… ROOTFS sh -c SCRIPT` as `caller`.
fn create(caller: Caller, store: &Path, flags: &[&str], script: &str) -> Output {
    let rootfs = caller.rootfs();
    let mut args = vec!["create"];
    args.extend_from_slice(flags);
    args.extend([rootfs.to_str().unwrap(), "sh", "-c", script]);
    rsafe_cmd(caller, store, &args)
}

/// The `State` of `inspect NAME`.
fn state_of(caller: Caller, store: &Path, name: &str) -> Value {
    let out = ok(caller, store, &["inspect", name]);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    doc[0]["State"].clone()
}

/// `ps -a`'s line for container `name`, if it has one.
fn ps_line(caller: Caller, store: &Path, name: &str) -> Option<String> {
    let ps = ok(caller, store, &["ps", "-a"]).stdout;
    ps.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .map(str::to_string)
}

/// The container directories of `store`.
fn container_dirs(store: &Path) -> Vec<String> {
    match std::fs::read_dir(store.join("containers")) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_created_container_is_listed_inspected_started_stopped_and_removed() {
    for_each_caller(|caller, store| {
        let out = create(caller, store, &["--name", "web"], "echo up; sleep 60");
        assert_eq!(out.code, 0, "{caller:?}: {}", out.stderr);
        let id = out.stdout.trim().to_string();
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{caller:?}: create printed {:?}, not a full id",
            out.stdout
        );
        assert!(out.stderr.is_empty(), "{caller:?}: {}", out.stderr);
        let line = ps_line(caller, store, "web").expect("ps -a lists it");
        assert!(line.contains("Created"), "{caller:?}: {line}");
        assert!(line.starts_with(&id[..12]), "{caller:?}: {line}");
        let st = state_of(caller, store, "web");
        assert_eq!(st["Status"], "created", "{caller:?}: {st}");
        assert_eq!(st["Running"], false);
        assert_eq!(st["Pid"], 0);
        // Its log is there, empty until it runs (docker's).
        let logs = ok(caller, store, &["logs", "web"]);
        assert!(logs.stdout.is_empty() && logs.stderr.is_empty(), "{logs:?}");
        // Nothing runs yet: not in `ps`, and stop has nothing to stop.
        assert!(!ok(caller, store, &["ps"]).stdout.contains(&id[..12]));
        let kill = rsafe_cmd(caller, store, &["kill", "web"]);
        assert_eq!(kill.code, 1, "{caller:?}: {kill:?}");
        assert!(kill.stderr.contains("is not running"), "{}", kill.stderr);

        // A second container by that name is refused, as run refuses it.
        let again = create(caller, store, &["--name", "web"], "true");
        assert_eq!(again.code, 125, "{caller:?}: {again:?}");
        assert!(again.stderr.contains("already in use"), "{}", again.stderr);
        assert_eq!(again.stderr.lines().count(), 1, "{}", again.stderr);
        assert_eq!(container_dirs(store).len(), 1);

        // docker's start: in the background, the name printed back.
        let started = ok(caller, store, &["start", "web"]);
        assert_eq!(started.stdout.trim(), "web");
        let st = state_of(caller, store, "web");
        assert_eq!(st["Status"], "running", "{caller:?}: {st}");
        let pid = st["Pid"].as_u64().unwrap();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        assert!(ps_line(caller, store, "web").unwrap().contains("Up"));
        wait_for("the log", || {
            ok(caller, store, &["logs", "web"]).stdout.contains("up")
        });
        ok(caller, store, &["stop", "-t", "0", "web"]);
        let line = ps_line(caller, store, "web").unwrap();
        assert!(line.contains("Exited ("), "{caller:?}: {line}");
        ok(caller, store, &["rm", "web"]);
        assert!(ps_line(caller, store, "web").is_none());
        assert!(container_dirs(store).is_empty(), "{caller:?}");
    });
}

#[test]
fn a_created_container_starts_attached_with_its_exit_code_and_starts_again() {
    for_each_caller(|caller, store| {
        let script = "echo run >> /count; wc -l < /count; exit 7";
        let id = create(caller, store, &["-e", "X=1"], script).stdout;
        let id = id.trim();
        let first = rsafe_cmd(caller, store, &["start", "-a", id]);
        assert_eq!(first.code, 7, "{caller:?}: {first:?}");
        assert_eq!(first.stdout.trim(), "1");
        let line = ok(caller, store, &["ps", "-a"]).stdout;
        assert!(line.contains("Exited (7)"), "{caller:?}: {line}");
        // Started again as any stopped container is, on the same writable layer.
        let second = rsafe_cmd(caller, store, &["start", "-a", id]);
        assert_eq!(second.code, 7, "{caller:?}: {second:?}");
        assert_eq!(second.stdout.trim(), "2");
        ok(caller, store, &["rm", id]);
    });
}

#[test]
fn rm_removes_a_created_container_and_rm_flag_removes_it_after_its_first_run() {
    for_each_caller(|caller, store| {
        let id = create(caller, store, &["--name", "never"], "true").stdout;
        let removed = ok(caller, store, &["rm", "never"]);
        assert_eq!(removed.stdout.trim(), id.trim());
        assert!(container_dirs(store).is_empty(), "{caller:?}");

        // --rm: kept while created (docker's), removed when its first run ends.
        let out = create(caller, store, &["--rm", "--name", "once"], "echo ran");
        assert_eq!(out.code, 0, "{caller:?}: {}", out.stderr);
        assert!(ps_line(caller, store, "once").unwrap().contains("Created"));
        // A sweep (which removes dead --rm containers) leaves a created one alone.
        ok(caller, store, &["ps", "-a"]);
        assert!(ps_line(caller, store, "once").is_some());
        let ran = rsafe_cmd(caller, store, &["start", "-a", "once"]);
        assert_eq!(ran.code, 0, "{caller:?}: {ran:?}");
        assert_eq!(ran.stdout.trim(), "ran");
        assert!(ps_line(caller, store, "once").is_none(), "{caller:?}");
        assert!(container_dirs(store).is_empty(), "{caller:?}");

        // Detached too: gone once it has ended.
        create(caller, store, &["--rm", "--name", "bg"], "sleep 0.2");
        ok(caller, store, &["start", "bg"]);
        wait_for("the --rm container's removal", || {
            container_dirs(store).is_empty()
        });
    });
}

#[test]
fn bad_input_is_one_line_exit_125_and_nothing_is_recorded() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let missing = store.join("no-such-image");
        let missing = missing.to_str().unwrap();
        let cases: &[(&[&str], &str)] = &[
            (&["create", missing, "true"], "no-such-image"),
            (
                &["create", "--name", "a/b", rootfs, "true"],
                "container name",
            ),
            (&["create", "--memory", "1k", rootfs, "true"], "--memory"),
            (&["create", "-d", rootfs, "true"], "-d is run's"),
            (&["create", "--learn", "x.toml", rootfs, "true"], "--learn"),
            (&["create", "--policy", "nope", rootfs, "true"], "nope"),
            (
                &["create", "-v", "/no/such/dir:/x", rootfs, "true"],
                "/no/such/dir",
            ),
            (&["create", "--bogus", rootfs], "--bogus"),
            (
                &["create", "--network", "container:ghost", rootfs, "true"],
                "ghost",
            ),
        ];
        for (args, says) in cases {
            let out = rsafe_cmd(caller, store, args);
            assert_eq!(out.code, 125, "{caller:?} {args:?}: {out:?}");
            assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
            assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
            if !args.contains(&"--bogus") {
                // clap's usage error has its own few lines; rsafe's own are one.
                assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
            }
            assert!(container_dirs(store).is_empty(), "{caller:?} {args:?}");
        }
        let ps = ok(caller, store, &["ps", "-a", "-q"]);
        assert!(ps.stdout.trim().is_empty(), "{caller:?}: {}", ps.stdout);
    });
}

#[test]
fn a_gate_refuses_create_as_it_refuses_run() {
    if !(support::tool("umoci") && support::tool("skopeo") && run_support::userns_works()) {
        return;
    }
    let store = support::temp_root();
    let leaky = support::audit_images::target("leaky");
    let out = rsafe_cmd(
        Caller::Host,
        store.path(),
        &["create", "--gate", "high", &leaky, "true"],
    );
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("refused by the gate"), "{}", out.stderr);
    assert!(container_dirs(store.path()).is_empty());
    // The same image is created (and runs) without a gate: what refused it was the gate.
    let out = rsafe_cmd(
        Caller::Host,
        store.path(),
        &["create", "--gate", "off", &leaky, "true"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let id = out.stdout.trim();
    let ran = rsafe_cmd(Caller::Host, store.path(), &["start", "-a", id]);
    assert_eq!(ran.code, 0, "{ran:?}");
    ok(Caller::Host, store.path(), &["rm", id]);
}

#[test]
fn kill_9_of_create_at_any_moment_leaves_nothing_ps_and_rm_cannot_see() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        for i in 0..12u64 {
            let name = format!("k{i}");
            let mut child = caller
                .command(store)
                .args(["create", "--name", &name, "-v", "vol:/data"])
                .arg(&rootfs)
                .args(["true"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // From before the store is opened to after the container is recorded.
            std::thread::sleep(Duration::from_millis(i * 4));
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            child.wait().unwrap();
        }
        let ids = ok(caller, store, &["ps", "-a", "-q"]).stdout;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        let dirs = container_dirs(store);
        assert_eq!(
            ids.len(),
            dirs.len(),
            "{caller:?}: ps -a lists {ids:?}, the store has {dirs:?}"
        );
        if !ids.is_empty() {
            let mut args = vec!["rm"];
            args.extend(&ids);
            ok(caller, store, &args);
        }
        assert!(container_dirs(store).is_empty(), "{caller:?}");
        // Any name a killed create held is free again.
        for i in 0..12 {
            let out = create(caller, store, &["--name", &format!("k{i}")], "true");
            assert_eq!(out.code, 0, "{caller:?} k{i}: {}", out.stderr);
        }
    });
}

#[test]
fn a_volume_is_seeded_at_the_first_start_and_only_while_it_is_empty() {
    for_each_caller(|caller, store| {
        let rootfs = run_support::rootfs_with_data_dir(caller);
        let rootfs = rootfs.to_str().unwrap();
        let create_with = |name: &str, script: &str| {
            let args = [
                "create",
                "--name",
                name,
                "-v",
                "seeded:/data",
                rootfs,
                "sh",
                "-c",
                script,
            ];
            let out = rsafe_cmd(caller, store, &args);
            assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        };
        let data = store.join("volumes/seeded/_data");
        // Both are created while the volume is empty.
        create_with(
            "first",
            "rm /data/from-image; echo mine > /data/own; ls /data",
        );
        create_with("second", "ls /data");
        // Nothing is copied until a container starts.
        assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0, "{caller:?}");
        let first = rsafe_cmd(caller, store, &["start", "-a", "first"]);
        assert_eq!(first.code, 0, "{caller:?}: {first:?}");
        assert_eq!(first.stdout, "abs-link\nown\nrel-link\nsub\n", "{caller:?}");
        // The volume has files now: the second container's first start leaves them be.
        let second = rsafe_cmd(caller, store, &["start", "-a", "second"]);
        assert_eq!(second.code, 0, "{caller:?}: {second:?}");
        assert_eq!(second.stdout, first.stdout, "{caller:?}");
        // Nor is it seeded again when the first starts again.
        let again = rsafe_cmd(caller, store, &["start", "-a", "first"]);
        assert!(again.stdout.contains("own"), "{caller:?}: {again:?}");
        assert!(!data.join("from-image").exists(), "{caller:?}");
        ok(caller, store, &["rm", "first", "second"]);
    });
}
