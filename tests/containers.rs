//! The everyday container commands as a docker user reaches for them, through the real binary
//! and real containers, as root and as the unprivileged test user: `inspect CONTAINER`,
//! `logs --since/--until/-t` (of `-d` and foreground containers), `stats`, `cp` (of running and
//! stopped containers).
#[path = "support/run.rs"]
#[allow(dead_code)] // shared with tests/run.rs, which uses the rest
mod run_support;
mod support;

use std::path::Path;

use run_support::{Caller, Output, for_each_caller, rsafe_cmd};
use serde_json::Value;
use support::hostile_images::{Layer, OCI_LAYER_GZIP, docker_save, gzip};

/// A fake AWS access key id, fresh for each run: the right shape (`AKIA` + 16 of A–Z, 2–7),
/// never a real credential.
fn fake_key_id() -> String {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut bytes,
    )
    .unwrap();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("AKIA{tail}")
}

/// `rsafe ARGS…` as `caller` on `store`, asserting it succeeded.
fn ok(caller: Caller, store: &Path, args: &[&str]) -> Output {
    let out = rsafe_cmd(caller, store, args);
    assert_eq!(out.code, 0, "{caller:?} rsafe {args:?}: {}", out.stderr);
    out
}

/// `rsafe run -d --name NAME FLAGS… ROOTFS sh -c SCRIPT` as `caller`.
fn run_detached(caller: Caller, store: &Path, name: &str, flags: &[&str], script: &str) {
    let rootfs = caller.rootfs();
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(flags);
    args.extend([rootfs.to_str().unwrap(), "sh", "-c", script]);
    ok(caller, store, &args);
}

fn inspect(caller: Caller, store: &Path, args: &[&str]) -> Value {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    let out = ok(caller, store, &all);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn inspect_shows_a_container_as_docker_does_and_never_its_secrets() {
    for_each_caller(|caller, store| {
        let key = fake_key_id();
        let password = format!("pw-{}", &fake_key_id()[4..]);
        let key_env = format!("UPLOAD_ID={key}");
        let password_env = format!("DB_PASSWORD={password}");
        run_detached(
            caller,
            store,
            "web",
            &[
                "-e",
                &key_env,
                "-e",
                &password_env,
                "-e",
                "GREETING=hello",
                "-w",
                "/tmp",
                "--cap-drop",
                "CHOWN",
                "--pids-limit",
                "64",
            ],
            "sleep 60",
        );
        let out = ok(caller, store, &["inspect", "web"]);
        assert!(
            !out.stdout.contains(&key) && !out.stdout.contains(&password),
            "{caller:?}: inspect printed a secret value"
        );
        let doc: Value = serde_json::from_str(&out.stdout).unwrap();
        let c = &doc[0];
        assert_eq!(c["Name"], "/web");
        assert_eq!(c["Id"].as_str().unwrap().len(), 64);
        assert_eq!(c["State"]["Status"], "running", "{caller:?}: {c}");
        assert_eq!(c["State"]["Running"], true);
        let pid = c["State"]["Pid"].as_u64().unwrap();
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "pid {pid}");
        assert_ne!(c["State"]["StartedAt"], "0001-01-01T00:00:00Z");
        assert_eq!(c["Config"]["WorkingDir"], "/tmp");
        assert_eq!(c["Config"]["Cmd"][0], "sh");
        let env: Vec<&str> = c["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(env.contains(&"GREETING=hello"), "{env:?}");
        for name in ["UPLOAD_ID=", "DB_PASSWORD="] {
            let entry = env.iter().find(|e| e.starts_with(name)).unwrap();
            assert!(entry.contains("[redacted"), "{entry}");
        }
        let host = &c["HostConfig"];
        assert_eq!(host["PidsLimit"], 64);
        assert_eq!(host["CapDrop"], serde_json::json!(["CAP_CHOWN"]));
        assert_eq!(host["NetworkMode"], "none");
        assert_eq!(host["Policy"], "default");
        assert!(
            !c["EffectiveCaps"]
                .as_array()
                .unwrap()
                .contains(&"CAP_CHOWN".into())
        );

        ok(caller, store, &["kill", "web"]);
        ok(caller, store, &["wait", "web"]);
        let c = &inspect(caller, store, &["web"])[0];
        assert_eq!(c["State"]["Status"], "exited", "{c}");
        assert_eq!(c["State"]["Running"], false);
        assert_eq!(c["State"]["Pid"], 0);
        assert_eq!(c["State"]["ExitCode"], 137);
        assert_ne!(c["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
        ok(caller, store, &["rm", "web"]);
        let gone = rsafe_cmd(caller, store, &["inspect", "--type", "container", "web"]);
        assert_eq!(gone.code, 1);
        assert_eq!(gone.stderr.trim(), "rsafe: no such container: web");
    });
}

/// A `docker save` archive of a one-layer image named `name`.
fn image_archive(path: &Path, name: &str) {
    let text = "hello\n";
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "etc/motd", text.as_bytes()).unwrap();
    let tar = b.into_inner().unwrap();
    let layer = Layer {
        blob: gzip(&tar),
        tar,
        media_type: OCI_LAYER_GZIP.into(),
    };
    let (tree, _) = docker_save(&[&layer], &[name]);
    tree.write_tar(path);
}

#[test]
fn inspect_prefers_the_container_when_an_image_has_the_same_name() {
    for_each_caller(|caller, store| {
        let work = support::containers::shared_tempdir("rsafe-inspect-");
        let archive = work.path().join("app.tar");
        image_archive(&archive, "app:latest");
        std::fs::set_permissions(
            &archive,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        ok(caller, store, &["load", archive.to_str().unwrap()]);
        // Only the image: its document.
        let image = inspect(caller, store, &["app"]);
        assert_eq!(image["name"], "app:latest", "{image}");
        run_detached(caller, store, "app", &[], "true");
        ok(caller, store, &["wait", "app"]);
        // Both: the container, as docker resolves it; --type chooses.
        let both = inspect(caller, store, &["app"]);
        assert_eq!(both[0]["Name"], "/app", "{both}");
        assert_eq!(both[0]["State"]["ExitCode"], 0);
        let image = inspect(caller, store, &["--type", "image", "app"]);
        assert_eq!(image["name"], "app:latest");
        let container = inspect(caller, store, &["--type", "container", "app"]);
        assert_eq!(container[0]["Name"], "/app");
        let none = rsafe_cmd(caller, store, &["inspect", "nothing-here"]);
        assert_eq!(none.code, 1);
        assert!(
            none.stderr
                .starts_with("rsafe: no container \"nothing-here\", and "),
            "{}",
            none.stderr
        );
        assert_eq!(none.stderr.lines().count(), 1);
        ok(caller, store, &["rm", "app"]);
    });
}

/// (time, text) of each line of `logs -t` output.
fn stamped(out: &str) -> Vec<(String, String)> {
    out.lines()
        .map(|l| {
            let (t, text) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("no time: {l:?}"));
            assert_eq!(t.len(), 30, "{t}");
            assert!(t.ends_with('Z'), "{t}");
            (t.to_string(), text.to_string())
        })
        .collect()
}

#[test]
fn logs_keep_the_bytes_and_know_when_each_line_came() {
    for_each_caller(|caller, store| {
        // Two seconds between the lines, so --since and --until can fall between them.
        let script = "echo early; sleep 2; echo late; printf partial";
        run_detached(caller, store, "lg", &[], script);
        ok(caller, store, &["wait", "lg"]);
        let plain = ok(caller, store, &["logs", "lg"]).stdout;
        assert_eq!(
            plain, "early\nlate\npartial",
            "{caller:?}: byte-exact without -t"
        );
        let lines = stamped(&ok(caller, store, &["logs", "-t", "lg"]).stdout);
        let texts: Vec<&str> = lines.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["early", "late", "partial"]);
        let (early, late) = (&lines[0].0, &lines[1].0);
        assert!(early < late, "{early} {late}");
        // A time between them (the second after early's): RFC 3339 and Unix forms.
        let between = format!("{}Z", &early[..19]);
        let between = bump_second(&between);
        assert!(between.as_str() < late.as_str(), "{between} {late}");
        let since = ok(caller, store, &["logs", "--since", &between, "lg"]).stdout;
        assert_eq!(since, "late\npartial");
        let until = ok(caller, store, &["logs", "--until", &between, "lg"]).stdout;
        assert_eq!(until, "early\n");
        let recent = ok(caller, store, &["logs", "--since", "10m", "-n", "1", "lg"]).stdout;
        assert_eq!(recent, "partial");
        let none = ok(
            caller,
            store,
            &["logs", "--since", "2099-01-01T00:00:00Z", "lg"],
        );
        assert_eq!(none.stdout, "");
        let bad = rsafe_cmd(caller, store, &["logs", "--since", "yesterday", "lg"]);
        assert_eq!(bad.code, 2);
        assert!(
            bad.stderr.contains("\"yesterday\" is not a time"),
            "{}",
            bad.stderr
        );

        // start -d adds to the log and its index; -f -t follows it to the end.
        ok(caller, store, &["start", "-d", "lg"]);
        let followed = ok(caller, store, &["logs", "-f", "-t", "lg"]).stdout;
        // The second run's first line is an entry of its own after `partial`, as in docker.
        let lines = stamped(&followed.replace("partial20", "partial\n20"));
        let texts: Vec<&str> = lines.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            ["early", "late", "partial", "early", "late", "partial"]
        );
        assert!(lines.windows(2).all(|w| w[0].0 <= w[1].0), "{followed}");
        assert_eq!(
            ok(caller, store, &["logs", "lg"]).stdout,
            "early\nlate\npartialearly\nlate\npartial"
        );
        ok(caller, store, &["rm", "lg"]);
    });
}

/// Once `wait` has returned, `logs` has everything the container wrote, its last line too:
/// the monitor has its log relay take in the rest of the output before it records the exit
/// (a burst just before the end used to lose its tail to a `logs` run right after `wait`).
#[test]
fn logs_have_all_the_output_once_wait_returns() {
    for_each_caller(|caller, store| {
        for round in 0..6 {
            let name = format!("burst{round}");
            run_detached(caller, store, &name, &[], "seq 1 30000; echo last");
            ok(caller, store, &["wait", &name]);
            let logs = ok(caller, store, &["logs", &name]).stdout;
            let lines: Vec<&str> = logs.lines().collect();
            assert_eq!(
                (lines.len(), lines.last()),
                (30001, Some(&"last")),
                "{caller:?} round {round}"
            );
            ok(caller, store, &["rm", &name]);
        }
    });
}

#[test]
fn logs_keep_what_a_foreground_container_printed_and_it_still_reaches_the_terminal() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let root = rootfs.to_str().unwrap();
        // stdout and stderr stay apart on the way to the caller, both go to the log.
        let script = "echo out; echo err >&2; printf tail; exit 2";
        let out = rsafe_cmd(
            caller,
            store,
            &["run", "--name", "fg", root, "sh", "-c", script],
        );
        assert_eq!(out.code, 2, "{caller:?}: {}", out.stderr);
        assert_eq!(out.stdout, "out\ntail", "{caller:?}");
        assert_eq!(out.stderr, "err\n", "{caller:?}");
        // In the order rsafe read the two pipes (as docker's two copiers, not the order the
        // container wrote across them).
        let logs = ok(caller, store, &["logs", "fg"]).stdout;
        assert_eq!(logs.len(), "out\nerr\ntail".len(), "{caller:?}: {logs:?}");
        let stamped_logs = ok(caller, store, &["logs", "-t", "fg"]).stdout;
        let lines = stamped(&stamped_logs.replace("tail20", "tail\n20"));
        let mut texts: Vec<&str> = lines.iter().map(|(_, t)| t.as_str()).collect();
        texts.sort();
        assert_eq!(
            texts,
            ["err", "out", "tail"],
            "{caller:?}: {stamped_logs:?}"
        );
        // A foreground `start` adds to it, its first line an entry of its own.
        let again = rsafe_cmd(caller, store, &["start", "-a", "fg"]);
        assert_eq!(again.code, 2, "{}", again.stderr);
        let logs = ok(caller, store, &["logs", "-t", "fg"]).stdout;
        assert_eq!(
            stamped(&logs.replace("tail20", "tail\n20")).len(),
            6,
            "{logs}"
        );

        // A --rm container's log is there while it runs (`logs -f` follows it to its end)
        // and goes with it.
        let mut running = caller.command(store);
        running
            .args(["run", "--rm", "--name", "rm1", root, "sh", "-c"])
            .arg("echo first; while [ ! -e /go ]; do sleep 0.1; done; echo second")
            .stdout(std::process::Stdio::piped());
        let running = running.spawn().unwrap();
        let mut seen = String::new();
        for _ in 0..300 {
            seen = rsafe_cmd(caller, store, &["logs", "rm1"]).stdout;
            if seen == "first\n" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(seen, "first\n", "{caller:?}");
        let mut follow = caller.command(store);
        follow
            .args(["logs", "-f", "rm1"])
            .stdout(std::process::Stdio::piped());
        let follow = follow.spawn().unwrap();
        ok(caller, store, &["exec", "rm1", "touch", "/go"]);
        let followed = follow.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&followed.stdout), "first\nsecond\n");
        let ran = running.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&ran.stdout), "first\nsecond\n");
        let gone = rsafe_cmd(caller, store, &["logs", "rm1"]);
        assert_eq!(gone.code, 1, "{caller:?}: removed with its container");

        // A reader that goes away (`rsafe run … | head -c 10`) ends the writer with SIGPIPE,
        // as the closed pipe itself would: the log does not grow without end.
        let mut yes = caller.command(store);
        yes.args(["run", "--name", "yes", root, "yes"])
            .stdout(std::process::Stdio::piped());
        let mut yes = yes.spawn().unwrap();
        let mut ten = [0u8; 10];
        std::io::Read::read_exact(yes.stdout.as_mut().unwrap(), &mut ten).unwrap();
        drop(yes.stdout.take());
        let status = yes.wait().unwrap();
        assert_eq!(status.code(), Some(128 + 13), "{caller:?}: SIGPIPE");
        ok(caller, store, &["rm", "fg", "yes"]);
    });
}

/// `2026-01-02T15:04:05Z` one second later (the test runs far from midnight wraps of the
/// minute only by chance: carry through seconds, minutes and hours).
fn bump_second(t: &str) -> String {
    let (h, m, s): (u32, u32, u32) = (
        t[11..13].parse().unwrap(),
        t[14..16].parse().unwrap(),
        t[17..19].parse().unwrap(),
    );
    let total = (h * 3600 + m * 60 + s + 1).min(86_399);
    format!(
        "{}{:02}:{:02}:{:02}Z",
        &t[..11],
        total / 3600,
        total % 3600 / 60,
        total % 60
    )
}

#[test]
fn stats_reads_cpu_memory_and_pids_from_the_container() {
    for_each_caller(|caller, store| {
        run_detached(
            caller,
            store,
            "busy",
            &["--memory", "64m"],
            "while :; do :; done",
        );
        run_detached(caller, store, "done", &[], "true");
        ok(caller, store, &["wait", "done"]);
        let out = ok(
            caller,
            store,
            &["stats", "--no-stream", "--format", "json", "busy"],
        );
        let row: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(row["Name"], "busy");
        // A busy loop, on a host however loaded: well above an idle container's 0.
        let cpu = row["CPUPerc"].as_f64().unwrap();
        assert!(cpu > 5.0, "{caller:?}: CPU {cpu}% for a busy loop");
        assert!(row["PIDs"].as_u64().unwrap() >= 1, "{row}");
        match row["MemUsage"].as_u64() {
            // With a memory cgroup: its usage, under the --memory limit.
            Some(usage) => {
                assert_eq!(row["MemLimit"], 64 << 20, "{row}");
                assert!(usage > 0 && usage < 64 << 20, "{row}");
            }
            // Without (rootless on cgroup v1): said, not made up.
            None => {
                assert_ne!(caller, Caller::Host, "root has cgroups here: {row}");
                assert_eq!(row["Note"], "no cgroup: rootless on cgroup v1", "{row}");
            }
        }
        let table = ok(caller, store, &["stats", "--no-stream", "-a"]).stdout;
        let mut lines = table.lines();
        let header: Vec<&str> = lines.next().unwrap().split("   ").map(str::trim).collect();
        assert!(
            header.starts_with(&["CONTAINER ID", "NAME", "CPU %"]),
            "{table}"
        );
        let done = lines.clone().find(|l| l.contains(" done ")).unwrap();
        assert!(done.contains("not running"), "{table}");
        let busy = lines.find(|l| l.contains(" busy ")).unwrap();
        assert!(busy.contains('%'), "{table}");
        // Only running ones without -a.
        let running = ok(caller, store, &["stats", "--no-stream"]).stdout;
        assert!(!running.contains(" done "), "{running}");
        let missing = rsafe_cmd(caller, store, &["stats", "--no-stream", "nope"]);
        assert_eq!(
            (missing.code, missing.stderr.trim()),
            (1, "rsafe: no container \"nope\"")
        );
        ok(caller, store, &["rm", "-f", "busy", "done"]);
    });
}

#[test]
fn cp_copies_both_ways_and_never_follows_a_symlink_out_of_the_container() {
    for_each_caller(|caller, store| {
        let script = "mkdir -p /data/sub && echo hi > /data/a && echo deep > /data/sub/b \
                      && ln -s /etc/shadow /data/evil && ln -s ../../../../../../etc /data/up \
                      && cp /bin/busybox /data/suid && chmod 4755 /data/suid \
                      && touch /ready && sleep 120";
        run_detached(caller, store, "cpx", &[], script);
        let ready = || rsafe_cmd(caller, store, &["exec", "cpx", "test", "-e", "/ready"]).code == 0;
        for _ in 0..100 {
            if ready() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(ready(), "{caller:?}: the container never got ready");
        let host = support::containers::shared_tempdir("rsafe-cp-");
        std::process::Command::new("chmod")
            .arg("777")
            .arg(host.path())
            .status()
            .unwrap();
        let h = |p: &str| host.path().join(p);
        let hs = |p: &str| h(p).to_str().unwrap().to_string();

        // Out: a directory whole, its symlinks as symlinks; `/.` its contents; a new name.
        ok(caller, store, &["cp", "cpx:/data", &hs("")]);
        assert_eq!(std::fs::read_to_string(h("data/sub/b")).unwrap(), "deep\n");
        assert_eq!(
            std::fs::read_link(h("data/evil")).unwrap(),
            Path::new("/etc/shadow")
        );
        // A container's set-uid file is not set-uid on the host (it would be the caller's).
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(h("data/suid"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755, "{mode:o}");
        ok(caller, store, &["cp", "cpx:/data/.", &hs("flat")]);
        assert_eq!(std::fs::read_to_string(h("flat/a")).unwrap(), "hi\n");
        // `up` leads above the root: resolved inside it, the container's /etc/passwd.
        ok(caller, store, &["cp", "cpx:/data/up/passwd", &hs("pw")]);
        let theirs = std::fs::read_to_string(caller.rootfs().join("etc/passwd")).unwrap();
        assert_eq!(std::fs::read_to_string(h("pw")).unwrap(), theirs);
        // `evil` means the container's /etc/shadow (it has none), never the host's.
        let out = rsafe_cmd(caller, store, &["cp", "cpx:/data/evil/x", &hs("x")]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(!h("x").exists());
        let out = rsafe_cmd(
            caller,
            store,
            &["cp", "cpx:/proc/self/root/etc/passwd", &hs("y")],
        );
        assert_eq!(out.code, 1, "a magic link: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

        // In: through `up/` into the container's /etc, as the container's root.
        let name = format!("rsafe-cp-{}.txt", &fake_key_id()[4..]);
        std::fs::write(h(&name), "from the host\n").unwrap();
        std::process::Command::new("chmod")
            .arg("644")
            .arg(h(&name))
            .status()
            .unwrap();
        ok(caller, store, &["cp", &hs(&name), "cpx:/data/up/"]);
        let inside = format!("/etc/{name}");
        let got = ok(caller, store, &["exec", "cpx", "cat", &inside]).stdout;
        assert_eq!(got, "from the host\n");
        let owner = ok(
            caller,
            store,
            &["exec", "cpx", "stat", "-c", "%u:%g", &inside],
        )
        .stdout;
        assert_eq!(owner.trim(), "0:0", "the container's root owns it");
        assert!(
            !Path::new(&inside).exists(),
            "{caller:?}: written on the host's /etc"
        );
        // Onto `evil` (-> /etc/shadow): refused, the host's shadow untouched.
        let shadow = std::fs::read("/etc/shadow").ok();
        let out = rsafe_cmd(caller, store, &["cp", &hs(&name), "cpx:/data/evil"]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert_eq!(std::fs::read("/etc/shadow").ok(), shadow);
        // A host destination that is a symlink is not followed either.
        std::os::unix::fs::symlink("/etc", h("hostlink")).unwrap();
        let out = rsafe_cmd(caller, store, &["cp", "cpx:/data/a", &hs("hostlink")]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(!Path::new("/etc/a").exists() || caller != Caller::Host);
        let bad = rsafe_cmd(caller, store, &["cp", "/tmp/x", "/tmp/y"]);
        assert_eq!(
            bad.stderr.trim(),
            "rsafe: one of SRC and DEST must be CONTAINER:PATH"
        );
        ok(caller, store, &["rm", "-f", "cpx"]);
    });
}

/// `rsafe cp NAME:PATH -` and `rsafe cp - NAME:DIR`, docker's tar streams on stdout and stdin.
#[test]
fn cp_streams_a_tar_to_stdout_and_extracts_one_from_stdin() {
    use std::io::Write;
    for_each_caller(|caller, store| {
        let script = "mkdir -p /data/sub && echo deep > /data/sub/b && ln -s /etc/shadow /data/evil \
                      && touch /ready && sleep 120";
        run_detached(caller, store, "cpt", &[], script);
        let ready = || rsafe_cmd(caller, store, &["exec", "cpt", "test", "-e", "/ready"]).code == 0;
        for _ in 0..100 {
            if ready() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(ready(), "{caller:?}: the container never got ready");

        let out = caller
            .command(store)
            .args(["cp", "cpt:/data", "-"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{caller:?}: {out:?}");
        let mut archive = tar::Archive::new(&out.stdout[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let kind = entry.header().entry_type();
            if path == "data/evil" {
                assert!(kind.is_symlink(), "{caller:?}: {kind:?}");
                let target = entry.link_name().unwrap().unwrap();
                assert_eq!(target, Path::new("/etc/shadow"), "{caller:?}");
            }
            if path == "data/sub/b" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
                assert_eq!(text, "deep\n", "{caller:?}");
            }
            seen.push(path);
        }
        for want in ["data", "data/sub/b", "data/evil"] {
            assert!(
                seen.iter().any(|p| p.trim_end_matches('/') == want),
                "{caller:?}: {want} in {seen:?}"
            );
        }

        // In: a tar made here, extracted into the container's /tmp.
        let mut tar = tar::Builder::new(Vec::new());
        let body = b"from-stdin\n";
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "in/x", &body[..]).unwrap();
        let bytes = tar.into_inner().unwrap();
        let mut child = caller
            .command(store)
            .args(["cp", "-", "cpt:/tmp"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let done = child.wait_with_output().unwrap();
        assert!(done.status.success(), "{caller:?}: {done:?}");
        let cat = rsafe_cmd(caller, store, &["exec", "cpt", "cat", "/tmp/in/x"]);
        assert_eq!(cat.stdout, "from-stdin\n", "{caller:?}: {cat:?}");

        // Not a tar: one line, exit 1, nothing written.
        let mut child = caller
            .command(store)
            .args(["cp", "-", "cpt:/tmp"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&[b'x'; 1024])
            .unwrap();
        let bad = child.wait_with_output().unwrap();
        assert_eq!(bad.status.code(), Some(1), "{caller:?}: {bad:?}");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{caller:?}: {stderr}");
        assert!(
            stderr.contains("tar stream on stdin"),
            "{caller:?}: {stderr}"
        );
        ok(caller, store, &["rm", "-f", "cpt"]);
    });
}

#[test]
fn cp_copies_out_of_and_into_a_stopped_container_inside_its_root() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let root = rootfs.to_str().unwrap();
        let script = "mkdir -p /data/sub; echo hi > /data/a; echo deep > /data/sub/b; \
                      ln -sfn /etc/shadow /data/evil; ln -sfn ../../../../../../etc /data/up; \
                      cat /data/incoming 2>/dev/null; true";
        ok(
            caller,
            store,
            &["run", "--name", "cps", root, "sh", "-c", script],
        );
        let host = support::containers::shared_tempdir("rsafe-cps-");
        std::process::Command::new("chmod")
            .arg("777")
            .arg(host.path())
            .status()
            .unwrap();
        let h = |p: &str| host.path().join(p);
        let hs = |p: &str| h(p).to_str().unwrap().to_string();

        // Out: the writable layer's files, a symlink as a symlink, the image's files under it.
        ok(caller, store, &["cp", "cps:/data", &hs("")]);
        assert_eq!(std::fs::read_to_string(h("data/sub/b")).unwrap(), "deep\n");
        assert_eq!(
            std::fs::read_link(h("data/evil")).unwrap(),
            Path::new("/etc/shadow")
        );
        // `up` leads above the root: resolved inside it, the image's /etc/passwd.
        ok(caller, store, &["cp", "cps:/data/up/passwd", &hs("pw")]);
        let theirs = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
        assert_eq!(std::fs::read_to_string(h("pw")).unwrap(), theirs);
        // `evil` means the container's /etc/shadow (it has none), never the host's.
        let out = rsafe_cmd(caller, store, &["cp", "cps:/data/evil/x", &hs("x")]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(!h("x").exists());

        // In: a file the next start sees, owned by the container's root.
        std::fs::write(h("incoming"), "from the host\n").unwrap();
        std::process::Command::new("chmod")
            .arg("644")
            .arg(h("incoming"))
            .status()
            .unwrap();
        ok(caller, store, &["cp", &hs("incoming"), "cps:/data/"]);
        // Onto `evil` (-> /etc/shadow): refused, the host's shadow untouched.
        let shadow = std::fs::read("/etc/shadow").ok();
        let out = rsafe_cmd(caller, store, &["cp", &hs("incoming"), "cps:/data/evil"]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert_eq!(std::fs::read("/etc/shadow").ok(), shadow);
        // Through `up/`: the container's /etc, not the host's.
        let name = format!("rsafe-cps-{}.txt", &fake_key_id()[4..]);
        std::fs::copy(h("incoming"), h(&name)).unwrap();
        ok(caller, store, &["cp", &hs(&name), "cps:/data/up/"]);
        assert!(
            !Path::new("/etc").join(&name).exists(),
            "{caller:?}: written on the host's /etc"
        );
        // Nothing of the helper's mount is left where the host sees it.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(support::containers::s(store)), "{mounts}");

        let again = ok(caller, store, &["start", "-a", "cps"]).stdout;
        assert_eq!(again, "from the host\n", "{caller:?}");
        ok(
            caller,
            store,
            &["cp", &format!("cps:/etc/{name}"), &hs("back")],
        );
        assert_eq!(
            std::fs::read_to_string(h("back")).unwrap(),
            "from the host\n"
        );
        // The written file belongs to the container's root, as the files it wrote itself.
        let upper = std::fs::read_dir(store.join("containers"))
            .unwrap()
            .map(|e| e.unwrap().path().join("upper"))
            .find(|u| u.join("data/incoming").exists())
            .expect("the container's writable layer");
        use std::os::unix::fs::MetadataExt;
        let uid = |p: &Path| std::fs::symlink_metadata(p).unwrap().uid();
        assert_eq!(
            uid(&upper.join("data/incoming")),
            uid(&upper.join("data/a"))
        );
        ok(caller, store, &["rm", "cps"]);
    });
}

/// A stopped container of a stored image (its layers in the store's `layers/`, which only the
/// store's owner may search): root's layers are shifted into the container's id range, and the
/// copy helper, the container's root, is a host id of that range. `cp` failed here with
/// "layers/shift-…: Permission denied" as root, both ways.
#[test]
fn cp_reaches_a_stopped_container_of_a_stored_image() {
    let layout = support::busybox_layout();
    let image = format!("{}:root", layout.display());
    for_each_caller(|caller, store| {
        ok(caller, store, &["-q", "load", &image]);
        let script = "mkdir -p /srv/d; echo deep > /srv/d/g; cat /srv/incoming 2>/dev/null; true";
        let img = "oci-busybox:root";
        ok(caller, store, &["run", "--name", "cpl", img, script]);
        let host = support::containers::shared_tempdir("rsafe-cpl-");
        std::process::Command::new("chmod")
            .arg("777")
            .arg(host.path())
            .status()
            .unwrap();
        let h = |p: &str| host.path().join(p);
        let hs = |p: &str| h(p).to_str().unwrap().to_string();

        // Out: what the container wrote, and a file of the image's layer under it.
        ok(caller, store, &["cp", "cpl:/srv/d", &hs("")]);
        assert_eq!(std::fs::read_to_string(h("d/g")).unwrap(), "deep\n");
        ok(caller, store, &["cp", "cpl:/etc/passwd", &hs("pw")]);
        let image_passwd = caller.rootfs().join("etc/passwd");
        assert_eq!(
            std::fs::read_to_string(h("pw")).unwrap(),
            std::fs::read_to_string(image_passwd).unwrap()
        );
        // In: the next start sees it.
        std::fs::write(h("incoming"), "from the host\n").unwrap();
        std::process::Command::new("chmod")
            .arg("644")
            .arg(h("incoming"))
            .status()
            .unwrap();
        ok(caller, store, &["cp", &hs("incoming"), "cpl:/srv/"]);
        let again = ok(caller, store, &["start", "-a", "cpl"]).stdout;
        assert_eq!(again, "from the host\n", "{caller:?}");
        // The helper's mounts went with it; the image's layer was only read.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(support::containers::s(store)), "{mounts}");
        ok(caller, store, &["rm", "cpl"]);
        ok(
            caller,
            store,
            &["run", "--rm", img, "test ! -e /srv/incoming"],
        );
    });
}
