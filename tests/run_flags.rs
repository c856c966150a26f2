//! `rsafe run`'s docker flags beyond the basics (`--mount`, the isolation-removing flags,
//! `--security-opt`, …): each either does what docker does, checked from inside the container,
//! or is refused in one line with exit 125. Through the real binary and the busybox image, as
//! root and as an unprivileged user (with and without subordinate id ranges).
#[path = "support/run.rs"]
#[allow(dead_code)] // shared with tests/run.rs, which uses the rest
mod run_support;
mod support;

use std::path::Path;
use std::process::Command;

use run_support::{Caller, Output, for_each_caller, rsafe_cmd};

/// The busybox image with user root (`oci-busybox:root`: Entrypoint `/bin/sh -c`).
const IMAGE: &str = "oci-busybox:root";

/// [`for_each_caller`] with the busybox image loaded into each caller's store.
fn for_each_caller_with_image(check: impl Fn(Caller, &Path)) {
    if !support::have("umoci", support::tool("umoci")) {
        return;
    }
    let layout = support::busybox_layout();
    for_each_caller(|caller, store| {
        let load = rsafe_cmd(caller, store, &["load", layout.to_str().unwrap()]);
        assert_eq!(load.code, 0, "{caller:?}: {load:?}");
        check(caller, store);
    });
}

/// `rsafe run --rm FLAGS… IMAGE SCRIPT` (the image runs `sh -c SCRIPT`).
fn run(caller: Caller, store: &Path, flags: &[&str], script: &str) -> Output {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend([IMAGE, script]);
    rsafe_cmd(caller, store, &args)
}

fn ok(out: &Output, caller: Caller) {
    assert_eq!(out.code, 0, "{caller:?}: {out:?}");
}

/// A refusal: exit 125 and one line on stderr that contains `says`, nothing on stdout (the
/// container never ran).
fn refused(out: &Output, caller: Caller, says: &str) {
    assert_eq!(out.code, 125, "{caller:?}: {out:?}");
    assert_eq!(out.stdout, "", "{caller:?}: {out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{caller:?}: {out:?}");
    assert!(out.stderr.contains(says), "{caller:?}: {out:?}");
}

/// A flag's value refused by the command-line parser: exit 125 (docker's for `run`), the
/// parser's `error:` line naming the flag and saying `says`, then its pointer to `--help`.
fn bad_value(out: &Output, caller: Caller, says: &str) {
    assert_eq!(out.code, 125, "{caller:?}: {out:?}");
    assert_eq!(out.stdout, "", "{caller:?}: {out:?}");
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: invalid value") && first.contains(says),
        "{caller:?}: {out:?}"
    );
}

/// A host directory every caller may write to, holding `in`.
fn host_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in"), "from host\n").unwrap();
    support::sh(Command::new("chmod").arg("-R").arg("a+rwX").arg(dir.path()));
    dir
}

#[test]
fn mount_binds_volumes_and_tmpfs_as_docker_does() {
    for_each_caller_with_image(|caller, store| {
        let dir = host_dir();
        let d = dir.path().display();
        let ro = format!("type=bind,source={d},target=/data,readonly");
        let rw = format!("type=bind,src={d},dst=/rw,bind-propagation=rprivate");
        let out = run(
            caller,
            store,
            &[
                "--mount",
                &ro,
                "--mount",
                &rw,
                "--mount",
                "type=volume,source=vol,target=/v",
                "--mount",
                "type=tmpfs,destination=/scratch,tmpfs-size=1m,tmpfs-mode=1770",
            ],
            "cat /data/in; echo x > /data/ro && echo RO-WROTE; echo y > /rw/out && echo RW-WROTE; \
             echo kept > /v/f; stat -c %a /scratch; grep ' /scratch ' /proc/self/mountinfo | grep -o 'size=[0-9]*k'",
        );
        ok(&out, caller);
        assert_eq!(
            out.stdout, "from host\nRW-WROTE\n1770\nsize=1024k\n",
            "{caller:?}: {out:?}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out")).unwrap(),
            "y\n"
        );
        assert!(!dir.path().join("ro").exists());
        // The named volume outlives the run, and `readonly` holds for it too.
        let out = run(
            caller,
            store,
            &["--mount", "type=volume,src=vol,dst=/v,ro=true"],
            "cat /v/f; echo x > /v/g && echo WROTE; true",
        );
        ok(&out, caller);
        assert_eq!(out.stdout, "kept\n", "{caller:?}: {out:?}");
    });
}

/// docker's `--mount` refuses a missing bind source (where `-v` makes it): nothing is created,
/// and the other bad mounts get docker's words, before anything starts.
#[test]
fn bad_mounts_are_refused_in_dockers_words() {
    for_each_caller_with_image(|caller, store| {
        let dir = host_dir();
        let missing = dir.path().join("missing");
        let arg = format!("type=bind,source={},target=/m", missing.display());
        let out = run(caller, store, &["--mount", &arg], "true");
        refused(
            &out,
            caller,
            &format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                missing.display()
            ),
        );
        assert!(!missing.exists(), "{caller:?}");
        let d = dir.path().display();
        for (arg, says) in [
            (
                format!("type=bind,src={d},target=/m,bogus=1"),
                "unexpected key 'bogus' in 'bogus=1'",
            ),
            (format!("type=bind,src={d}"), "target is required"),
            (
                format!("type=bind,src={d},target=/proc"),
                "would replace the container's procfs",
            ),
            (
                format!("type=bind,src={d},target=/m,bind-propagation=rshared"),
                "bind-propagation=rshared is refused",
            ),
            (
                "type=tmpfs,target=/t,volume-nocopy".to_string(),
                "cannot mix 'volume-*' options with mount type 'tmpfs'",
            ),
        ] {
            let out = run(caller, store, &["--mount", &arg], "true");
            refused(&out, caller, says);
        }
    });
}

#[test]
fn flags_that_remove_isolation_are_refused_saying_why() {
    for_each_caller_with_image(|caller, store| {
        for (flags, says) in [
            (
                &["--privileged"][..],
                "--privileged is refused: it gives the container every capability",
            ),
            (
                &["--pid", "host"],
                "--pid host is refused: the container would see every host process",
            ),
            (
                &["--pid=container:x"],
                "--pid container:x is refused: each rsafe container",
            ),
            (
                &["--ipc", "host"],
                "--ipc host is refused: the host's System V shared memory",
            ),
            (
                &["--uts", "host"],
                "--uts host is refused: the container would share the host's hostname",
            ),
            (
                &["--userns", "host"],
                "--userns host is refused: container root would be",
            ),
            (
                &["--device", "/dev/fuse"],
                "--device /dev/fuse is refused: a host device node",
            ),
            (
                &["--restart", "on-failure:2"],
                "--restart is refused: it needs -d",
            ),
            (
                &["-d", "--restart=always"],
                "conflicting options --restart and --rm",
            ),
            (
                &["--security-opt", "label=type:spc_t"],
                "rsafe applies no SELinux label or AppArmor profile",
            ),
            (
                &["--security-opt", "apparmor=docker-default"],
                "rsafe applies no SELinux label or AppArmor profile",
            ),
            (
                &["--security-opt", "no-new-privileges:false"],
                "no_new_privs is always set",
            ),
            (
                &["--security-opt", "systempaths=unconfined"],
                "masked and read-only /proc and /sys paths are the policy's",
            ),
            (&["--security-opt", "bogus"], "unknown option"),
            (
                &[
                    "--security-opt",
                    "seccomp=unconfined",
                    "--seccomp",
                    "default",
                ],
                "name two seccomp profiles",
            ),
        ] {
            let out = run(caller, store, flags, "echo RAN");
            refused(&out, caller, says);
        }
    });
}

/// What rsafe always does, under docker's and podman's names: accepted, and true inside.
#[test]
fn options_that_say_what_rsafe_does_are_accepted() {
    for_each_caller_with_image(|caller, store| {
        let out = run(
            caller,
            store,
            &[
                "--security-opt",
                "no-new-privileges",
                "--security-opt=no-new-privileges:true",
                "--security-opt",
                "label=disable",
                "--security-opt",
                "apparmor=unconfined",
                "--pid",
                "private",
                "--ipc=private",
                "--uts",
                "private",
                "--restart",
                "no",
            ],
            "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; echo $$",
        );
        ok(&out, caller);
        assert_eq!(
            out.stdout, "NoNewPrivs:\t1\nSeccomp:\t2\n2\n",
            "{caller:?}: {out:?}"
        );
    });
}

/// `--security-opt seccomp=…` is `--seccomp`: a profile file denies what it says inside the
/// container, `unconfined` loads none (with the warning).
#[test]
fn security_opt_seccomp_is_the_seccomp_flag() {
    for_each_caller_with_image(|caller, store| {
        let dir = host_dir();
        let profile = dir.path().join("no-mkdir.json");
        std::fs::write(
            &profile,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        support::sh(Command::new("chmod").arg("a+r").arg(&profile));
        let opt = format!("seccomp={}", profile.display());
        let out = run(
            caller,
            store,
            &["--security-opt", &opt],
            "mkdir /made 2>&1 && echo MADE; touch /file && echo TOUCHED",
        );
        ok(&out, caller);
        assert!(!out.stdout.contains("MADE"), "{caller:?}: {out:?}");
        assert!(
            out.stdout.contains("Operation not permitted") && out.stdout.contains("TOUCHED"),
            "{caller:?}: {out:?}"
        );
        let out = run(
            caller,
            store,
            &["--security-opt", "seccomp=unconfined"],
            "grep '^Seccomp:' /proc/self/status",
        );
        ok(&out, caller);
        assert_eq!(out.stdout, "Seccomp:\t0\n", "{caller:?}: {out:?}");
        assert!(
            out.stderr.contains("seccomp is unconfined"),
            "{caller:?}: {out:?}"
        );
    });
}

/// `--cap-add ALL` does what docker's does inside the container's user namespace: every
/// capability there (CapEff is the whole bounding set, CAP_SYS_ADMIN among them), said in a
/// warning before it starts; the default keeps far fewer.
#[test]
fn cap_add_all_keeps_every_capability_with_a_warning() {
    for_each_caller_with_image(|caller, store| {
        let caps = "grep -E '^Cap(Eff|Bnd):' /proc/self/status | cut -f2";
        let out = run(caller, store, &["--cap-add", "ALL"], caps);
        ok(&out, caller);
        let lines: Vec<u64> = out
            .stdout
            .lines()
            .map(|l| u64::from_str_radix(l, 16).unwrap())
            .collect();
        let (eff, bnd) = (lines[0], lines[1]);
        assert_eq!(eff, bnd, "{caller:?}: {out:?}");
        assert_ne!(eff & (1 << 21), 0, "CAP_SYS_ADMIN {caller:?}: {out:?}");
        assert!(
            out.stderr.contains("SYS_ADMIN") && out.stderr.contains("warning"),
            "{caller:?}: {out:?}"
        );
        let out = run(caller, store, &[], caps);
        ok(&out, caller);
        let eff = u64::from_str_radix(out.stdout.lines().next().unwrap(), 16).unwrap();
        assert_eq!(eff & (1 << 21), 0, "{caller:?}: {out:?}");
    });
}

/// `--ulimit` sets the rlimits docker names, seen by `ulimit` inside; a hard limit above
/// rsafe's own is refused (no process in a user namespace could raise it), a bad one gets
/// docker's words.
#[test]
fn ulimits_are_set_inside_and_refused_above_rsafes_own() {
    for_each_caller_with_image(|caller, store| {
        let out = run(
            caller,
            store,
            &[
                "--ulimit",
                "nofile=512:1024",
                "--ulimit",
                "core=0",
                "--ulimit",
                "stack=-1",
            ],
            "ulimit -Sn; ulimit -Hn; ulimit -c; ulimit -s",
        );
        ok(&out, caller);
        assert_eq!(
            out.stdout, "512\n1024\n0\nunlimited\n",
            "{caller:?}: {out:?}"
        );
        let out = run(caller, store, &["--ulimit", "nofile=2:1"], "true");
        bad_value(
            &out,
            caller,
            "soft limit must be less than or equal to hard limit: 2 > 1",
        );
        let out = run(caller, store, &["--ulimit", "files=1"], "true");
        bad_value(&out, caller, "invalid ulimit type: files");
        // The callers all share this process's hard limit (setpriv keeps it).
        let own = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        if let Some(own) = own {
            let arg = format!("nofile=1024:{}", own + 1);
            let out = run(caller, store, &["--ulimit", &arg], "true");
            refused(
                &out,
                caller,
                &format!(
                    "--ulimit nofile: hard limit {} is above rsafe's own, {own}",
                    own + 1
                ),
            );
        }
    });
}

#[test]
fn shm_size_is_dev_shms_size() {
    for_each_caller_with_image(|caller, store| {
        let size = "df -k /dev/shm | tail -1 | awk '{print $2}'";
        let out = run(caller, store, &["--shm-size", "1m"], size);
        ok(&out, caller);
        assert_eq!(out.stdout, "1024\n", "{caller:?}: {out:?}");
        let out = run(caller, store, &[], size);
        ok(&out, caller);
        assert_eq!(out.stdout, "65536\n", "docker's 64m {caller:?}: {out:?}");
    });
}

/// `--group-add` by name (the image's /etc/group) and by gid, seen by `id -G`; a rootless
/// container without subordinate ids cannot call setgroups, so it is refused there.
#[test]
fn group_add_adds_supplementary_groups() {
    for_each_caller_with_image(|caller, store| {
        let flags = ["--group-add", "app", "--group-add", "4242", "-u", "nobody"];
        let out = run(caller, store, &flags, "id -G");
        if caller == Caller::User {
            refused(
                &out,
                caller,
                "--group-add app,4242: supplementary groups cannot be set",
            );
            return;
        }
        ok(&out, caller);
        assert_eq!(out.stdout, "65534 1000 4242\n", "{caller:?}: {out:?}");
        let out = run(caller, store, &["--group-add", "nosuchgroup"], "id -G");
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
        assert!(
            out.stderr.contains("unable to find group nosuchgroup"),
            "{caller:?}: {out:?}"
        );
    });
}

/// `--stop-signal` and `--stop-timeout` are kept with the container and used by `stop`: a
/// workload that exits on SIGUSR1 ends on it (its log says so) without being killed; one that
/// ignores SIGTERM is killed after its own timeout, which `stop` names.
#[test]
fn stop_uses_the_containers_stop_signal_and_timeout() {
    for_each_caller_with_image(|caller, store| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let trap = "trap 'echo got USR1; exit 0' USR1; echo ready; while true; do sleep 0.1; done";
        let out = rsafe(&[
            "run",
            "-d",
            "--name",
            "usr1",
            "--stop-signal",
            "USR1",
            IMAGE,
            trap,
        ]);
        ok(&out, caller);
        wait_for_log(caller, store, "usr1", "ready");
        let out = rsafe(&["stop", "usr1"]);
        ok(&out, caller);
        assert!(!out.stderr.contains("killed"), "{caller:?}: {out:?}");
        let logs = rsafe(&["logs", "usr1"]);
        assert!(logs.stdout.contains("got USR1"), "{caller:?}: {logs:?}");
        let inspect = rsafe(&["inspect", "usr1"]);
        assert!(
            inspect.stdout.contains("\"ExitCode\": 0"),
            "{caller:?}: {inspect:?}"
        );

        let stubborn = "trap '' TERM; echo ready; while true; do sleep 0.1; done";
        let flags = [
            "run",
            "-d",
            "--name",
            "stubborn",
            "--stop-timeout",
            "1",
            IMAGE,
            stubborn,
        ];
        ok(&rsafe(&flags), caller);
        wait_for_log(caller, store, "stubborn", "ready");
        let out = rsafe(&["stop", "stubborn"]);
        ok(&out, caller);
        assert!(
            out.stderr
                .contains("stubborn did not end within 1s of SIGTERM: killed"),
            "{caller:?}: {out:?}"
        );
        let out = rsafe(&["run", "--rm", "--stop-signal", "KILL", IMAGE, "true"]);
        bad_value(&out, caller, "expected a signal that can be caught");
    });
}

/// Waits (10 s at most) until container `name`'s log has `line`.
fn wait_for_log(caller: Caller, store: &Path, name: &str, line: &str) {
    for _ in 0..200 {
        if rsafe_cmd(caller, store, &["logs", name])
            .stdout
            .contains(line)
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{caller:?}: {name} never logged {line:?}");
}

/// `-l`/`--label` is kept with the container and shown by `inspect` as `Config.Labels`, a
/// secret-looking value redacted there as an environment value would be.
#[test]
fn labels_are_shown_by_inspect() {
    for_each_caller_with_image(|caller, store| {
        let fake = format!("not-a-real-{}", "password");
        let secret = format!("DB_PASSWORD={fake}");
        let out = rsafe_cmd(
            caller,
            store,
            &[
                "run",
                "--name",
                "labelled",
                "-l",
                "team=infra",
                "--label",
                "flag",
                "-l",
                &secret,
                IMAGE,
                "true",
            ],
        );
        ok(&out, caller);
        let out = rsafe_cmd(caller, store, &["inspect", "labelled"]);
        ok(&out, caller);
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let labels = &doc[0]["Config"]["Labels"];
        assert_eq!(labels["team"], "infra", "{caller:?}: {labels}");
        assert_eq!(labels["flag"], "", "{caller:?}: {labels}");
        assert!(labels["DB_PASSWORD"].is_string(), "{caller:?}: {labels}");
        assert!(
            !out.stdout.contains(&fake),
            "{caller:?}: the label's value was shown"
        );
    });
}

/// `--restart on-failure:2`: a workload that exits 1 runs three times (the log has three
/// lines, `inspect` says RestartCount 2 and exit code 1); `always` is started again after a
/// clean exit until `rsafe stop`, which it then stays stopped after.
#[test]
fn restart_policies_are_carried_out_by_the_monitor() {
    for_each_caller_with_image(|caller, store| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let flags = [
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            IMAGE,
        ];
        ok(
            &rsafe(&[&flags[..], &["echo run; exit 1"]].concat()),
            caller,
        );
        let doc = wait_for_state(caller, store, "flaky", |doc| {
            doc["State"]["Status"] == "exited" && doc["RestartCount"] == 2
        });
        assert_eq!(doc["State"]["ExitCode"], 1, "{caller:?}: {doc}");
        // The relay may write the last run's line a moment after its exit is recorded.
        wait_for_logs(caller, store, "flaky", 3);
        let logs = rsafe(&["logs", "flaky"]);
        assert_eq!(logs.stdout, "run\nrun\nrun\n", "{caller:?}: {logs:?}");
        // Ended for good: still three runs a moment later.
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert_eq!(
            rsafe(&["logs", "flaky"]).stdout,
            "run\nrun\nrun\n",
            "{caller:?}"
        );

        let flags = ["run", "-d", "--name", "again", "--restart", "always", IMAGE];
        ok(
            &rsafe(&[&flags[..], &["echo run; sleep 0.2"]].concat()),
            caller,
        );
        wait_for_state(caller, store, "again", |doc| doc["RestartCount"] == 2);
        ok(&rsafe(&["stop", "again"]), caller);
        let stopped = rsafe(&["logs", "again"]).stdout.lines().count();
        std::thread::sleep(std::time::Duration::from_millis(800));
        let doc = inspect(caller, store, "again");
        assert_eq!(doc["State"]["Status"], "exited", "{caller:?}: {doc}");
        let runs = rsafe(&["logs", "again"]).stdout.lines().count();
        assert_eq!(runs, stopped, "{caller:?}: started again after stop");

        // rm -f of a container that restarts: it is gone, and not started again.
        let flags = ["run", "-d", "--name", "gone", "--restart", "always", IMAGE];
        ok(
            &rsafe(&[&flags[..], &["echo run; sleep 0.3"]].concat()),
            caller,
        );
        wait_for_state(caller, store, "gone", |doc| doc["RestartCount"] == 1);
        wait_for_state(caller, store, "gone", |doc| {
            doc["State"]["Status"] == "running"
        });
        ok(&rsafe(&["rm", "-f", "gone"]), caller);
        std::thread::sleep(std::time::Duration::from_millis(800));
        let ps = rsafe(&["ps", "-a"]);
        assert!(!ps.stdout.contains("gone"), "{caller:?}: {ps:?}");
    });
}

/// `rsafe start` and `rsafe restart` run a container under its `--restart` policy again, as
/// docker's and podman's do, with docker's fresh start: `on-failure:1` that spent its one
/// restart gets it back (two more runs, RestartCount 1 again); `always`, stopped, keeps
/// restarting after `start` and after `restart`, until the next `stop`.
#[test]
fn restart_policy_is_kept_by_start_and_restart() {
    for_each_caller_with_image(|caller, store| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let runs = |name: &str| rsafe(&["logs", name]).stdout.lines().count();
        let flags = ["run", "-d", "--name", "once", "--restart", "on-failure:1"];
        ok(
            &rsafe(&[&flags[..], &[IMAGE, "echo run; exit 1"]].concat()),
            caller,
        );
        wait_for_state(caller, store, "once", |doc| {
            doc["State"]["Status"] == "exited" && doc["RestartCount"] == 1
        });
        wait_for_logs(caller, store, "once", 2);
        ok(&rsafe(&["start", "once"]), caller);
        wait_for_logs(caller, store, "once", 4);
        let doc = wait_for_state(caller, store, "once", |doc| {
            doc["State"]["Status"] == "exited" && doc["RestartCount"] == 1
        });
        assert_eq!(doc["State"]["ExitCode"], 1, "{caller:?}: {doc}");
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert_eq!(
            runs("once"),
            4,
            "{caller:?}: more than one restart after start"
        );

        let flags = ["run", "-d", "--name", "again", "--restart", "always"];
        ok(
            &rsafe(&[&flags[..], &[IMAGE, "echo run; sleep 0.2"]].concat()),
            caller,
        );
        wait_for_logs(caller, store, "again", 2);
        for how in ["start", "restart"] {
            ok(&rsafe(&["stop", "again"]), caller);
            let stopped = runs("again");
            ok(&rsafe(&[how, "again"]), caller);
            // The run `start` made, and two the policy made after it.
            wait_for_logs(caller, store, "again", stopped + 3);
        }
        ok(&rsafe(&["stop", "again"]), caller);
        let stopped = runs("again");
        std::thread::sleep(std::time::Duration::from_millis(800));
        assert_eq!(
            runs("again"),
            stopped,
            "{caller:?}: started again after stop"
        );
    });
}

/// `rsafe kill` with SIGKILL (or the stop signal) stops an `always` container for good, as
/// podman's and docker's kill do; another signal that ends the workload (SIGHUP here) is an
/// exit like any other, and the policy starts it again.
#[test]
fn restart_is_not_done_after_kill() {
    for_each_caller_with_image(|caller, store| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let flags = ["run", "-d", "--name", "k", "--restart", "always", IMAGE];
        ok(
            &rsafe(&[&flags[..], &["echo run; sleep 300"]].concat()),
            caller,
        );
        wait_for_logs(caller, store, "k", 1);
        ok(&rsafe(&["kill", "-s", "HUP", "k"]), caller);
        wait_for_state(caller, store, "k", |doc| {
            doc["RestartCount"] == 1 && doc["State"]["Status"] == "running"
        });
        ok(&rsafe(&["kill", "k"]), caller);
        wait_for_state(caller, store, "k", |doc| doc["State"]["Status"] == "exited");
        std::thread::sleep(std::time::Duration::from_millis(800));
        let doc = inspect(caller, store, "k");
        assert_eq!(doc["State"]["Status"], "exited", "{caller:?}: {doc}");
        assert_eq!(doc["RestartCount"], 1, "{caller:?}: {doc}");
    });
}

/// `rm -f` of an `always` container at any moment of its restarts (a workload that exits at
/// once: starts and backoffs in turn) removes it: no 'is being started: try again', no
/// directory removed under a start, nothing left for `ps -a`.
#[test]
fn restart_rm_f_at_any_moment_of_the_restarts() {
    for_each_caller_with_image(|caller, store| {
        for round in 0..12u64 {
            let name = format!("r{round}");
            let flags = ["run", "-d", "--name", &name, "--restart", "always", IMAGE];
            ok(
                &rsafe_cmd(caller, store, &[&flags[..], &["true"]].concat()),
                caller,
            );
            std::thread::sleep(std::time::Duration::from_millis(round * 67 % 800));
            ok(&rsafe_cmd(caller, store, &["rm", "-f", &name]), caller);
        }
        let left = rsafe_cmd(caller, store, &["ps", "-aq"]);
        assert_eq!(left.stdout, "", "{caller:?}: {left:?}");
    });
}

/// `stop`, `kill` and `restart` of an `always` container at any moment of its restarts (a
/// workload that exits at once: starts and backoffs in turn), as docker's: each exits 0, and
/// once `stop` or `kill` returns the container is stopped and stays so (its monitor does not
/// start it again: same StartedAt 2 s later); after `restart` a `stop` does the same. Before
/// the fix a stop landing while the monitor was starting it again left it running.
#[test]
fn restart_stop_kill_and_restart_at_any_moment_of_the_restarts() {
    for_each_caller_with_image(|caller, store| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let mut stopped = Vec::new();
        for round in 0..12u64 {
            for how in ["stop", "kill", "restart"] {
                let name = format!("{how}{round}");
                let flags = ["run", "-d", "--name", &name, "--restart", "always", IMAGE];
                ok(&rsafe(&[&flags[..], &["true"]].concat()), caller);
                std::thread::sleep(std::time::Duration::from_millis(round * 67 % 800));
                let out = match how {
                    "stop" => rsafe(&["stop", "-t", "1", &name]),
                    "kill" => rsafe(&["kill", &name]),
                    _ => rsafe(&["restart", "-t", "1", &name]),
                };
                ok(&out, caller);
                if how == "restart" {
                    std::thread::sleep(std::time::Duration::from_millis(round * 41 % 300));
                    ok(&rsafe(&["stop", "-t", "1", &name]), caller);
                }
                // kill returns at once (docker's): the end is recorded soon after.
                let doc = match how {
                    "kill" => {
                        wait_for_state(caller, store, &name, |d| d["State"]["Status"] == "exited")
                    }
                    _ => inspect(caller, store, &name),
                };
                assert_eq!(doc["State"]["Status"], "exited", "{caller:?} {how}: {doc}");
                stopped.push((name, doc["State"]["StartedAt"].clone()));
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        for (name, started) in &stopped {
            let doc = inspect(caller, store, name);
            assert_eq!(doc["State"]["Status"], "exited", "{caller:?}: {doc}");
            assert_eq!(&doc["State"]["StartedAt"], started, "{caller:?}: {doc}");
        }
        for (name, _) in &stopped {
            ok(&rsafe(&["rm", "-f", name]), caller);
        }
    });
}

/// `rsafe update --restart`, as docker's: a container run without a policy gets `always`
/// (its next start restarts it), a running one's monitor follows `no` from its next exit on;
/// a `--rm` container is refused in one line, exit 1, and so is an unknown policy.
#[test]
fn restart_policy_is_changed_by_update() {
    for_each_caller_with_image(|caller, store| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let runs = |name: &str| rsafe(&["logs", name]).stdout.lines().count();
        let flags = ["run", "-d", "--name", "up", IMAGE, "echo run; sleep 0.2"];
        ok(&rsafe(&flags), caller);
        wait_for_state(caller, store, "up", |doc| {
            doc["State"]["Status"] == "exited"
        });
        let out = rsafe(&["update", "--restart", "always", "up"]);
        ok(&out, caller);
        assert_eq!(out.stdout, "up\n", "{caller:?}: {out:?}");
        ok(&rsafe(&["start", "up"]), caller);
        wait_for_logs(caller, store, "up", 4);
        ok(&rsafe(&["update", "--restart", "no", "up"]), caller);
        wait_for_state(caller, store, "up", |doc| {
            doc["State"]["Status"] == "exited"
        });
        let ended = runs("up");
        std::thread::sleep(std::time::Duration::from_millis(800));
        let doc = inspect(caller, store, "up");
        assert_eq!(doc["State"]["Status"], "exited", "{caller:?}: {doc}");
        assert_eq!(runs("up"), ended, "{caller:?}: restarted after update no");

        let flags = ["run", "-d", "--rm", "--name", "gone", IMAGE, "sleep 30"];
        ok(&rsafe(&flags), caller);
        let out = rsafe(&["update", "--restart", "always", "gone"]);
        assert_eq!(out.code, 1, "{caller:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{caller:?}: {out:?}");
        assert!(out.stderr.contains("--rm"), "{caller:?}: {out:?}");
        let out = rsafe(&["update", "--restart", "sometimes", "up"]);
        assert_ne!(out.code, 0, "{caller:?}: {out:?}");
        assert!(out.stderr.contains("expected no, on-failure"), "{out:?}");
        ok(&rsafe(&["rm", "-f", "gone"]), caller);
    });
}

/// `rsafe system restart` (a boot unit's, for docker's daemon start): `always` containers are
/// started even when `rsafe stop` stopped them, `unless-stopped` ones only when it did not
/// (here their monitor was told to end, as at a shutdown: the container ends and is not
/// restarted), containers without a policy never; each printed. podman's `start --all
/// --filter restart-policy=…` starts those of the policy, whoever stopped them.
#[test]
fn restart_unless_stopped_differs_from_always_at_system_restart() {
    for_each_caller_with_image(|caller, store| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        for (name, policy) in [
            ("al", "always"),
            ("us", "unless-stopped"),
            ("us-down", "unless-stopped"),
            ("plain", "no"),
        ] {
            let flags = ["run", "-d", "--name", name, "--restart", policy, IMAGE];
            ok(&rsafe(&[&flags[..], &["sleep 300"]].concat()), caller);
        }
        for name in ["al", "us", "plain"] {
            ok(&rsafe(&["stop", "-t", "1", name]), caller);
        }
        let pid = inspect(caller, store, "us-down")["State"]["Pid"]
            .as_u64()
            .expect("us-down runs");
        let monitor = rsafe_ancestor(pid as u32).expect("the container's monitor");
        let killed = Command::new("kill")
            .args(["-TERM", &monitor.to_string()])
            .status();
        assert!(killed.is_ok_and(|s| s.success()), "{caller:?}");
        wait_for_state(caller, store, "us-down", |doc| {
            doc["State"]["Status"] == "exited"
        });
        std::thread::sleep(std::time::Duration::from_millis(800));
        let doc = inspect(caller, store, "us-down");
        assert_eq!(doc["State"]["Status"], "exited", "{caller:?}: {doc}");
        assert_eq!(doc["RestartCount"], 0, "{caller:?}: {doc}");

        let out = rsafe(&["system", "restart"]);
        ok(&out, caller);
        let mut started: Vec<&str> = out.stdout.lines().collect();
        started.sort();
        assert_eq!(started, ["al", "us-down"], "{caller:?}: {out:?}");
        for (name, status) in [
            ("al", "running"),
            ("us-down", "running"),
            ("us", "exited"),
            ("plain", "exited"),
        ] {
            let doc = inspect(caller, store, name);
            assert_eq!(doc["State"]["Status"], status, "{caller:?} {name}: {doc}");
        }
        // Nothing more to start: the running ones are left alone.
        let again = rsafe(&["system", "restart"]);
        ok(&again, caller);
        assert_eq!(again.stdout, "", "{caller:?}: {again:?}");

        // podman-restart.service's way: start --all by policy, whoever stopped them.
        for name in ["al", "us-down"] {
            ok(&rsafe(&["stop", "-t", "1", name]), caller);
        }
        let podman = rsafe(&["start", "--all", "--filter", "restart-policy=always"]);
        ok(&podman, caller);
        assert_eq!(podman.stdout, "al\n", "{caller:?}: {podman:?}");
        let filter = ["--filter", "restart-policy=unless-stopped"];
        let podman = rsafe(&[&["start", "--all"][..], &filter].concat());
        ok(&podman, caller);
        let mut started: Vec<&str> = podman.stdout.lines().collect();
        started.sort();
        assert_eq!(started, ["us", "us-down"], "{caller:?}: {podman:?}");
        let listed = rsafe(&["ps", "-a", "--format", "json", "-f", "restart-policy=no"]);
        ok(&listed, caller);
        let names: Vec<serde_json::Value> = listed
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["Names"].clone())
            .collect();
        assert_eq!(names, ["plain"], "{caller:?}: {listed:?}");
    });
}

/// The nearest ancestor of process `pid` that is rsafe (a container's monitor).
fn rsafe_ancestor(pid: u32) -> Option<u32> {
    let mut at = pid;
    for _ in 0..8 {
        let status = std::fs::read_to_string(format!("/proc/{at}/status")).ok()?;
        let ppid: u32 = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))?
            .trim()
            .parse()
            .ok()?;
        let exe = std::fs::read_link(format!("/proc/{ppid}/exe")).ok()?;
        if exe.file_name().is_some_and(|n| n == "rsafe") {
            return Some(ppid);
        }
        at = ppid;
    }
    None
}

/// Waits (20 s at most) until container `name`'s log has `lines` lines at least.
fn wait_for_logs(caller: Caller, store: &Path, name: &str, lines: usize) {
    let mut got = 0;
    for _ in 0..400 {
        got = rsafe_cmd(caller, store, &["logs", name])
            .stdout
            .lines()
            .count();
        if got >= lines {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{caller:?}: {name}'s log never got {lines} lines (it has {got})");
}

/// `rsafe inspect NAME`'s document.
fn inspect(caller: Caller, store: &Path, name: &str) -> serde_json::Value {
    let out = rsafe_cmd(caller, store, &["inspect", name]);
    ok(&out, caller);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    doc[0].clone()
}

/// Waits (20 s at most) until container `name`'s inspect document satisfies `done`.
fn wait_for_state(
    caller: Caller,
    store: &Path,
    name: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut doc = serde_json::Value::Null;
    for _ in 0..400 {
        doc = inspect(caller, store, name);
        if done(&doc) {
            return doc;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{caller:?}: {name} never got there: {doc}");
}
