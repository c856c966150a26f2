//! `rsafe exec`: a process run in a running container is in the container's namespaces and
//! cgroup, on its files, with exactly the confinement of the container's own workload, checked
//! from inside through the real binary, as root and as an unprivileged user (with and without
//! subordinate id ranges).
#[path = "support/run.rs"]
#[allow(dead_code)] // shared with tests/run.rs, which uses the rest
mod run_support;
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// `rsafe run -d --name NAME FLAGS… IMAGE SCRIPT`: a container that runs `script` (by `sh -c`).
fn start(caller: Caller, store: &Path, name: &str, flags: &[&str], script: &str) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(flags);
    args.extend([IMAGE, script]);
    let out = rsafe_cmd(caller, store, &args);
    assert_eq!(out.code, 0, "{caller:?}: {out:?}");
}

/// `rsafe exec ARGS…`.
fn exec(caller: Caller, store: &Path, args: &[&str]) -> Output {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    rsafe_cmd(caller, store, &all)
}

fn ok(out: &Output, caller: Caller) {
    assert_eq!(out.code, 0, "{caller:?}: {out:?}");
}

/// The confinement fields of a `/proc/<pid>/status`.
fn confinement(status: &str) -> HashMap<String, String> {
    const FIELDS: [&str; 8] = [
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
        "Seccomp_filters",
    ];
    let map: HashMap<String, String> = status
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| FIELDS.contains(k))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    assert_eq!(map.len(), FIELDS.len(), "{status}");
    map
}

/// Polls `done` for up to 20 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn exec_gets_exactly_the_confinement_of_the_containers_workload() {
    for_each_caller_with_image(|caller, store| {
        for (name, flags) in [
            ("dflt", &[][..]),
            ("strict", &["--policy", "strict"][..]),
            ("raw", &["--cap-drop", "ALL", "--cap-add", "NET_RAW"][..]),
            ("unconfined", &["--seccomp", "unconfined"][..]),
        ] {
            start(caller, store, name, flags, "sleep 300");
            // pid 2 is the container's workload (pid 1 is rsafe's init).
            let out = exec(
                caller,
                store,
                &[name, "cat", "/proc/self/status", "/proc/2/status"],
            );
            ok(&out, caller);
            let at = out.stdout.find("\nName:").expect("two status files");
            let (mine, workload) = out.stdout.split_at(at);
            assert!(workload.contains("Name:\tsleep"), "{workload}");
            assert_eq!(
                confinement(mine),
                confinement(workload),
                "{caller:?} {flags:?}"
            );
            // The same as a workload `rsafe run` starts with these flags.
            let mut args = vec!["run", "--rm"];
            args.extend_from_slice(flags);
            args.extend([IMAGE, "cat /proc/self/status"]);
            let fresh = rsafe_cmd(caller, store, &args);
            ok(&fresh, caller);
            assert_eq!(
                confinement(mine),
                confinement(&fresh.stdout),
                "{caller:?} {flags:?}"
            );
            ok(&rsafe_cmd(caller, store, &["rm", "-f", name]), caller);
        }
    });
}

/// The host pid of init's first child: the container's workload.
fn workload_pid(store: &Path, name: &str) -> u32 {
    for entry in std::fs::read_dir(store.join("containers")).unwrap() {
        let file = entry.unwrap().path().join("state.json");
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        if state["name"] == name {
            let init = state["pid"][0].as_u64().unwrap();
            let children =
                std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).unwrap();
            return children.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
    panic!("no container {name}");
}

#[test]
fn exec_joins_every_namespace_the_files_and_the_cgroup_of_the_container() {
    // The workload reports what exec writes (in its log). It waits with the shell's own `read`
    // on a fifo, starting no process: in a loop of `sleep`s, busybox starts each by executing
    // itself again through /proc/self/exe, and a `ps` that caught one before it renamed itself
    // saw a process named `exe` (under load, once in a while).
    let workload = "mkfifo /tmp/back; echo from-the-container > /tmp/written; \
                    read -r back < /tmp/back; echo \"$back\"; exec sleep 300";
    let inside = "cmp /proc/self/cgroup /proc/2/cgroup && echo CGROUP; cat /tmp/written; hostname; \
                  ps -o comm > /tmp/ps; sort -u /tmp/ps | tr '\\n' ' '";
    for_each_caller_with_image(|caller, store| {
        start(caller, store, "web", &["--hostname", "webhost"], workload);
        wait_for("the container's file", || {
            exec(caller, store, &["web", "test", "-s", "/tmp/written"]).code == 0
        });
        let out = exec(caller, store, &["web", "sh", "-c", inside]);
        ok(&out, caller);
        assert_eq!(
            out.stdout, "CGROUP\nfrom-the-container\nwebhost\nCOMMAND ps rsafe-init sh ",
            "{caller:?}: {out:?}"
        );
        // The container's processes only (the workload is `sh`, waiting on the fifo).
        // What exec writes, the container's workload sees.
        let out = exec(caller, store, &["web", "sh", "-c", "echo back > /tmp/back"]);
        ok(&out, caller);
        wait_for("the workload to see exec's file", || {
            rsafe_cmd(caller, store, &["logs", "web"]).stdout == "back\n"
        });
        // Every namespace, seen from the host: an exec'd process and the workload. (From
        // inside, landlock keeps each of them from inspecting the other's /proc entries.)
        let secs = match caller {
            Caller::Host => "4101",
            Caller::User => "4102",
            Caller::UserWithSubids => "4103",
        };
        let client = caller
            .command(store)
            .args(["exec", "web", "sleep", secs])
            .spawn()
            .unwrap();
        wait_for("the exec'd process", || {
            processes(&["sleep", secs]).len() == 1
        });
        let exec_pid = processes(&["sleep", secs])[0];
        let work_pid = workload_pid(store, "web");
        for ns in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
            let link = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
            assert_eq!(link(exec_pid), link(work_pid), "{caller:?}: {ns}");
            let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
            assert_ne!(link(exec_pid), host, "{caller:?}: {ns} is the host's");
        }
        let root = |pid: u32| {
            std::fs::read_dir(format!("/proc/{pid}/root/tmp"))
                .unwrap()
                .count()
        };
        assert_eq!(root(exec_pid), root(work_pid), "{caller:?}");
        ok(&rsafe_cmd(caller, store, &["rm", "-f", "web"]), caller);
        let _ = client.wait_with_output();
    });
}

#[test]
fn landlock_denies_exec_what_it_denies_the_container() {
    let write = "echo x > /scratch/ok && echo SCRATCH; echo x > /dev/shm/f && echo SHM; true";
    for_each_caller_with_image(|caller, store| {
        // /dev/shm is writable, but the strict policy gives landlock no rule for it.
        let flags = ["--read-only", "--tmpfs", "/scratch"];
        start(
            caller,
            store,
            "strict",
            &[&flags[..], &["--policy", "strict"]].concat(),
            "sleep 300",
        );
        start(caller, store, "control", &flags, "sleep 300");
        let out = exec(caller, store, &["strict", "sh", "-c", write]);
        ok(&out, caller);
        assert_eq!(out.stdout, "SCRATCH\n", "{caller:?}: {out:?}");
        assert!(out.stderr.contains("Permission denied"), "{out:?}");
        let out = exec(caller, store, &["control", "sh", "-c", write]);
        assert_eq!(
            out.stdout, "SCRATCH\nSHM\n",
            "{caller:?}: the control: {out:?}"
        );
        ok(
            &rsafe_cmd(caller, store, &["rm", "-f", "strict", "control"]),
            caller,
        );
    });
}

#[test]
fn user_environment_workdir_and_exit_codes() {
    for_each_caller_with_image(|caller, store| {
        start(caller, store, "box", &["-e", "FROM_RUN=1"], "sleep 300");
        let env_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(env_file.path(), "# a comment\nFROM_FILE=2\nFROM_RUN=3\n").unwrap();
        let chmod = Command::new("chmod")
            .arg("644")
            .arg(env_file.path())
            .status();
        assert!(chmod.unwrap().success());
        let script = "echo $FROM_RUN $FROM_FILE $ADDED; pwd; id -u";
        let out = exec(caller, store, &["box", "sh", "-c", script]);
        assert_eq!(
            out.stdout, "1\n/\n0\n",
            "{caller:?}: the container's own: {out:?}"
        );
        let file = env_file.path().to_str().unwrap();
        let out = exec(
            caller,
            store,
            &[
                "--env-file",
                file,
                "-e",
                "ADDED=x y",
                "-w",
                "/tmp",
                "box",
                "sh",
                "-c",
                script,
            ],
        );
        assert_eq!(out.stdout, "3 2 x y\n/tmp\n0\n", "{caller:?}: {out:?}");
        if caller != Caller::User {
            let out = exec(
                caller,
                store,
                &[
                    "-u",
                    "1000",
                    "box",
                    "sh",
                    "-c",
                    "id; grep CapEff /proc/self/status",
                ],
            );
            assert_eq!(
                out.stdout, "uid=1000(app) gid=1000(app)\nCapEff:\t0000000000000000\n",
                "{caller:?}: {out:?}"
            );
        } else {
            // A single-id map has no uid 1000: the same failure as `run --user 1000`.
            let out = exec(caller, store, &["-u", "1000", "box", "id"]);
            assert_eq!(out.code, 125, "{out:?}");
            assert!(out.stderr.contains("not mapped"), "{out:?}");
        }
        for (args, code, says) in [
            (&["box", "sh", "-c", "exit 3"][..], 3, ""),
            (&["box", "true"][..], 0, ""),
            (&["box", "/etc/passwd"][..], 126, "exec /etc/passwd"),
            (&["box", "no-such-command"][..], 127, "not found in PATH"),
            (&["box", "/no/such/file"][..], 127, "exec /no/such/file"),
            (
                &["-w", "/no/such/dir", "box", "true"][..],
                125,
                "/no/such/dir",
            ),
            (
                &["--privileged", "box", "true"][..],
                125,
                "--privileged is refused",
            ),
            (
                &["no-such-box", "true"][..],
                125,
                "no container \"no-such-box\"",
            ),
            (&["box"][..], 125, "COMMAND"),
        ] {
            let out = exec(caller, store, args);
            assert_eq!(out.code, code, "{caller:?} {args:?}: {out:?}");
            assert!(out.stderr.contains(says), "{caller:?} {args:?}: {out:?}");
        }
        ok(
            &rsafe_cmd(caller, store, &["stop", "-t", "0", "box"]),
            caller,
        );
        let out = exec(caller, store, &["box", "true"]);
        assert_eq!(out.code, 125, "{out:?}");
        assert_eq!(
            out.stderr, "rsafe: container box is not running\n",
            "{caller:?}"
        );
        ok(&rsafe_cmd(caller, store, &["rm", "box"]), caller);
    });
}

/// Pids of host processes whose command line is exactly `argv`.
fn processes(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn exec_processes_end_with_their_client_or_the_container_and_leave_nothing() {
    for_each_caller_with_image(|caller, store| {
        start(caller, store, "host", &[], "sleep 300");
        // A unique command line per caller: the callers' containers run one after the other,
        // but other test binaries may run sleeps of their own.
        let secs = match caller {
            Caller::Host => "4001",
            Caller::User => "4002",
            Caller::UserWithSubids => "4003",
        };
        // kill -9 of the client: its process dies with it (parent-death signal).
        let mut client = caller
            .command(store)
            .args(["exec", "host", "sleep", secs])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("the exec'd process", || {
            processes(&["sleep", secs]).len() == 1
        });
        client.kill().unwrap();
        client.wait().unwrap();
        wait_for("the exec'd process to die with its client", || {
            processes(&["sleep", secs]).is_empty()
        });
        // Only the workload still runs: the killed process is gone, or a zombie until the
        // host's init, which adopted it with its client, reaps it.
        let out = exec(caller, store, &["host", "ps", "-o", "stat,comm"]);
        let running: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| !l.trim_start().starts_with('Z'))
            .collect();
        assert_eq!(running.len(), 4, "{caller:?}: {out:?}");
        assert!(running[2].ends_with(" sleep"), "{caller:?}: {out:?}");

        // -d: the process runs in the container after exec returns, adopted by its init.
        let out = exec(caller, store, &["-d", "host", "sleep", secs]);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, ""),
            "{caller:?}: {out:?}"
        );
        let out = exec(caller, store, &["host", "ps", "-o", "ppid,comm"]);
        let adopted = out.stdout.lines().filter(|l| l.trim() == "1 sleep").count();
        assert_eq!(
            adopted, 2,
            "{caller:?}: the workload and exec -d's: {out:?}"
        );
        // A foreground one too; then rm -f ends both with the container's pid namespace.
        let client = caller
            .command(store)
            .args(["exec", "host", "sleep", secs])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("both exec'd processes", || {
            processes(&["sleep", secs]).len() == 2
        });
        let dir = store.join("containers");
        let state = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(state.join("state.json")).unwrap())
                .unwrap();
        ok(&rsafe_cmd(caller, store, &["rm", "-f", "host"]), caller);
        let out = client.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(137), "{caller:?}: {out:?}");
        assert!(processes(&["sleep", secs]).is_empty(), "{caller:?}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{caller:?}");
        // Its cgroup (root's containers have one, for the policy's pid limit) is gone too.
        for d in state["cgroup"]["dirs"].as_array().into_iter().flatten() {
            let path = d[0].as_str().unwrap();
            assert!(!Path::new(path).exists(), "{caller:?}: {path} is left");
        }
        if caller == Caller::Host && support::is_root() {
            assert!(
                !state["cgroup"].is_null(),
                "root's container has a cgroup: {state}"
            );
        }
    });
}

/// A command line for `sh -c` (test paths have no quotes in them).
fn shell_words(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| format!("'{}'", a.to_string_lossy())));
    let env: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| {
            Some(format!(
                "{}='{}'",
                k.to_string_lossy(),
                v?.to_string_lossy()
            ))
        })
        .collect();
    format!("env {} {}", env.join(" "), words.join(" "))
}

#[test]
fn tty_gives_exec_a_terminal_of_the_containers_devpts() {
    if !support::have("script (util-linux)", support::tool("script")) {
        return;
    }
    for_each_caller_with_image(|caller, store| {
        start(caller, store, "term", &[], "sleep 300");
        let line = format!(
            "stty cols 91 rows 33; {} exec -it term /bin/sh",
            shell_words(&caller.command(store))
        );
        let mut script = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        script
            .stdin
            .take()
            .unwrap()
            .write_all(b"echo T=$(tty) S=$(stty size) E=$TERM; exit 5\n")
            .unwrap();
        let out = script.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        // The container's devpts: its own numbering, so exec's is pts/0 (the workload has none).
        assert!(
            stdout.contains("T=/dev/pts/0 S=33 91 E=xterm"),
            "{caller:?}: {stdout}"
        );
        assert_eq!(out.status.code(), Some(5), "{caller:?}: {stdout}");
        ok(&rsafe_cmd(caller, store, &["rm", "-f", "term"]), caller);
    });
}

#[test]
fn signals_to_the_client_reach_the_process() {
    for_each_caller_with_image(|caller, store| {
        start(caller, store, "sig", &[], "sleep 300");
        let trap = "trap 'echo got-term; exit 7' TERM; echo ready; sleep 100 >/dev/null & wait";
        let mut client = caller
            .command(store)
            .args(["exec", "sig", "sh", "-c", trap])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = client.stdout.take().unwrap();
        let mut first = [0u8; 6];
        std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
        assert_eq!(&first, b"ready\n", "{caller:?}");
        let pid = rustix::process::Pid::from_raw(client.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let status = client.wait().unwrap();
        let rest = std::io::read_to_string(stdout).unwrap();
        assert_eq!(
            (status.code(), rest.as_str()),
            (Some(7), "got-term\n"),
            "{caller:?}"
        );
        ok(&rsafe_cmd(caller, store, &["rm", "-f", "sig"]), caller);
    });
}

/// An exec'd process gets the container's `--ulimit` rlimits and `--group-add` groups, as
/// docker's does: what a workload `run` with the same flags sees, and with `-u` the user's
/// own groups plus the added one. A rootless container without subordinate ids refuses
/// `--group-add` at `run` (tests/run_flags.rs), so there only the rlimits are checked.
#[test]
fn exec_gets_the_containers_ulimits_and_added_groups() {
    for_each_caller_with_image(|caller, store| {
        let mut flags = vec!["--ulimit", "nofile=512:1024", "--ulimit", "core=0"];
        if caller != Caller::User {
            flags.extend(["--group-add", "4242"]);
        }
        start(caller, store, "lim", &flags, "sleep 300");
        let script = "ulimit -Sn; ulimit -Hn; ulimit -c; id -G";
        let out = exec(caller, store, &["lim", "sh", "-c", script]);
        ok(&out, caller);
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(&flags);
        args.extend([IMAGE, script]);
        let fresh = rsafe_cmd(caller, store, &args);
        ok(&fresh, caller);
        assert_eq!(out.stdout, fresh.stdout, "{caller:?}: {out:?}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[..3], ["512", "1024", "0"], "{caller:?}: {out:?}");
        let groups: Vec<&str> = lines[3].split(' ').collect();
        assert_eq!(groups[0], "0", "{caller:?}: {out:?}");
        assert_eq!(
            groups.contains(&"4242"),
            caller != Caller::User,
            "{caller:?}: {out:?}"
        );
        if caller != Caller::User {
            // busybox's nobody is in no group of its own: its gid and the added one.
            let out = exec(caller, store, &["-u", "nobody", "lim", "id", "-G"]);
            ok(&out, caller);
            assert_eq!(out.stdout, "65534 4242\n", "{caller:?}: {out:?}");
        }
        ok(&rsafe_cmd(caller, store, &["rm", "-f", "lim"]), caller);
    });
}

/// `exec` racing its container's end (the workload killed while three execs start, at spread
/// moments) either runs (0), is ended with the container (137), or says the one line docker
/// means: the container is not running; never how the way in failed on it (a fork into a pid
/// namespace whose init exited: ENOMEM; a namespace file gone: ENOENT).
#[test]
fn exec_racing_the_containers_end_says_it_is_not_running() {
    for_each_caller_with_image(|caller, store| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let want = "rsafe: container dying is not running";
        let mut failures = 0;
        for round in 0..30u64 {
            match round {
                0 => start(caller, store, "dying", &[], "sleep 300"),
                _ => ok(&rsafe(&["start", "dying"]), caller),
            }
            let workload = workload_pid(store, "dying");
            let execs: Vec<_> = (0..3)
                .map(|_| {
                    caller
                        .command(store)
                        .args(["exec", "dying", "true"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            std::thread::sleep(Duration::from_millis(round % 10 * 4));
            let killed = Command::new("kill")
                .args(["-9", &workload.to_string()])
                .status()
                .unwrap();
            assert!(killed.success(), "{caller:?}: kill {workload}");
            for child in execs {
                let out = child.wait_with_output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                let code = out.status.code();
                match code {
                    Some(0 | 137) => assert!(stderr.is_empty(), "{caller:?}: {stderr}"),
                    Some(125) => {
                        failures += 1;
                        assert_eq!(stderr.trim_end(), want, "{caller:?} round {round}");
                    }
                    _ => panic!("{caller:?} round {round}: {code:?} {stderr}"),
                }
            }
            // The kill ends the run: its exit recorded, the container can be started again.
            let waited = rsafe(&["wait", "dying"]);
            ok(&waited, caller);
            assert_eq!(waited.stdout, "137\n", "{caller:?}: {waited:?}");
        }
        // The race was run: some execs came too late (and every one of them said so).
        assert!(failures > 0, "{caller:?}: no exec met the container's end");
        ok(&rsafe(&["rm", "-f", "dying"]), caller);
    });
}
