//! Anonymous volumes as docker makes them, through the real binary, as root and as the
//! unprivileged test user (with and without subordinate ids): `-v /dst`, `--mount
//! type=volume,target=/dst` and an image's `VOLUME` (an OCI layout built here with
//! `config.Volumes`) each get a volume named by 64 hex digits, seeded with the image's files at
//! that path (owners and modes as the image has them; `volume-nocopy` leaves it empty), written
//! to under `--read-only`, listed by `volume ls` (and its `dangling`, `label` and `name`
//! filters), shown in `inspect`'s Mounts and picked by `ps --filter volume=`. `run --rm` (attached and `-d`) and `rm -v` remove them, plain `rm` keeps
//! them, plain `volume prune` removes the unused ones but never a named volume, the sweep of a
//! killed `run --rm` (`ps -a`) removes its container's, a `run -d` failing before its monitor
//! leaves none, and a mount at a path the image declares replaces its anonymous volume.
#[allow(dead_code)]
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use run_support::{Caller, Output, for_each_caller, rsafe_cmd};
use serde_json::Value;

/// The image [`volume_layout`] makes: user root, `VOLUME /var/lib/db /cache`.
const IMAGE: &str = "oci-busybox-volume:vol";

/// The data directory's owner in the image (a database image's own user).
const DB_IDS: &str = "999:999";

/// An OCI layout (tag `vol`) of the busybox image as root with a database-like data
/// directory: `/var/lib/db` (mode 0750, owned by 999:999) holding `seed.txt`, `conf/db.conf`
/// (0640) and a symlink `current -> conf`, the same tree at `/seed-copy` (no volume there, to
/// compare ownership with), and `config.Volumes` `/var/lib/db` and `/cache/` (which the image
/// does not have: docker makes it).
fn volume_layout() -> PathBuf {
    let base = support::busybox_layout();
    support::fixture("oci-busybox-volume", |l| {
        let work = tempfile::tempdir().unwrap();
        let bundle = work.path().join("bundle");
        support::sh(
            Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", base.display()))
                .arg(l),
        );
        let img = |t: &str| format!("{}:{t}", l.display());
        support::sh(
            Command::new("umoci")
                .args(["unpack", "--image", &img("root")])
                .arg(&bundle),
        );
        let rootfs = bundle.join("rootfs");
        for dir in ["var/lib/db", "seed-copy"] {
            let d = rootfs.join(dir);
            std::fs::create_dir_all(d.join("conf")).unwrap();
            std::fs::write(d.join("seed.txt"), "from the image\n").unwrap();
            std::fs::write(d.join("conf/db.conf"), "port = 5432\n").unwrap();
            std::os::unix::fs::symlink("conf", d.join("current")).unwrap();
            support::sh(Command::new("chown").arg("-R").arg(DB_IDS).arg(&d));
            support::sh(Command::new("chmod").arg("0750").arg(&d));
            support::sh(
                Command::new("chmod")
                    .arg("0640")
                    .arg(d.join("conf/db.conf")),
            );
        }
        support::sh(
            Command::new("umoci")
                .args(["repack", "--image", &img("vol")])
                .args(["--history.created", support::CREATED])
                .args(["--history.created_by", "rsafe-test: a VOLUME's data"])
                .arg(&bundle),
        );
        support::sh(
            Command::new("umoci")
                .args(["config", "--image", &img("vol")])
                .args(["--created", support::CREATED])
                .args(["--history.created", support::CREATED])
                .args([
                    "--config.volume",
                    "/var/lib/db",
                    "--config.volume",
                    "/cache/",
                ]),
        );
        for tag in ["latest", "root"] {
            support::sh(Command::new("umoci").args(["rm", "--image", &img(tag)]));
        }
        support::sh(Command::new("umoci").args(["gc", "--layout"]).arg(l));
    })
}

/// [`for_each_caller`] with the [`IMAGE`] loaded into each caller's store.
fn for_each_caller_with_image(check: impl Fn(Caller, &Path)) {
    if !support::have("umoci", support::tool("umoci")) {
        return;
    }
    let layout = volume_layout();
    for_each_caller(|caller, store| {
        let load = rsafe_cmd(caller, store, &["load", layout.to_str().unwrap()]);
        assert_eq!(load.code, 0, "{caller:?}: {load:?}");
        check(caller, store);
    });
}

/// `rsafe ARGS…` as `caller` on `store`, asserting it succeeded.
fn ok(caller: Caller, store: &Path, args: &[&str]) -> Output {
    let out = rsafe_cmd(caller, store, args);
    assert_eq!(out.code, 0, "{caller:?} rsafe {args:?}: {out:?}");
    out
}

/// `rsafe run FLAGS… IMAGE SCRIPT` (the image runs `sh -c SCRIPT`), asserting it succeeded.
fn run_ok(caller: Caller, store: &Path, flags: &[&str], script: &str) -> Output {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend([IMAGE, script]);
    ok(caller, store, &args)
}

/// The store's volumes, by name (`volume ls -q`).
fn volumes(caller: Caller, store: &Path) -> Vec<String> {
    let out = ok(caller, store, &["volume", "ls", "-q"]);
    out.stdout.lines().map(str::to_string).collect()
}

/// Whether `name` is what docker names an anonymous volume: 64 lowercase hex digits.
fn is_anonymous_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The anonymous volumes among the store's.
fn anonymous(caller: Caller, store: &Path) -> Vec<String> {
    let mut all = volumes(caller, store);
    all.retain(|v| is_anonymous_name(v));
    all
}

/// `inspect`'s Mounts of container `name`.
fn mounts(caller: Caller, store: &Path, name: &str) -> Vec<Value> {
    let out = ok(caller, store, &["inspect", name]);
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    json[0]["Mounts"].as_array().cloned().unwrap_or_default()
}

/// The one volume mount of `mounts` at `destination`.
fn mount_at<'a>(mounts: &'a [Value], destination: &str) -> &'a Value {
    let at: Vec<&Value> = mounts
        .iter()
        .filter(|m| m["Destination"] == destination)
        .collect();
    assert_eq!(at.len(), 1, "{destination} in {mounts:?}");
    at[0]
}

/// The image's `VOLUME`s become anonymous volumes holding a copy of the image's files there,
/// with the image's owners and modes (as the container sees the image's own copy of the tree),
/// writable under `--read-only`; they are listed, inspected and filtered on as docker's are,
/// outlive a plain `rm` and go with the next plain `volume prune`.
#[test]
fn an_image_volume_is_an_anonymous_volume_seeded_from_the_image() {
    for_each_caller_with_image(|caller, store| {
        let script = "set -e; cd /var/lib/db; cat seed.txt; cat current/db.conf; \
            stat -c '%u:%g %a %n' . seed.txt conf/db.conf; \
            cd /seed-copy; stat -c '%u:%g %a %n' . seed.txt conf/db.conf; \
            echo written > /var/lib/db/new.txt; echo cached > /cache/x; ls -A /cache; \
            if touch /elsewhere 2>/dev/null; then echo root-writable; fi";
        let out = run_ok(caller, store, &["--name", "db", "--read-only"], script);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 9, "{caller:?}: {out:?}");
        assert_eq!(
            lines[..2],
            ["from the image", "port = 5432"],
            "{caller:?}: {out:?}"
        );
        // The volume's tree has the owners and modes the image's own copy shows.
        let volume_stat: Vec<&str> = lines[2..5]
            .iter()
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        let image_stat: Vec<&str> = lines[5..8]
            .iter()
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        assert_eq!(volume_stat, image_stat, "{caller:?}: {out:?}");
        let modes = |l: &[&str]| -> Vec<String> {
            l.iter()
                .map(|l| l.split(' ').nth(1).unwrap_or("").to_string())
                .collect()
        };
        assert_eq!(
            modes(&lines[2..5]),
            ["750", "644", "640"],
            "{caller:?}: {out:?}"
        );
        assert_eq!(
            modes(&lines[5..8]),
            modes(&lines[2..5]),
            "{caller:?}: {out:?}"
        );
        if caller != Caller::User {
            // Only the caller's own id is mapped without subordinate ids: 999 is nobody then.
            assert!(
                volume_stat.iter().all(|s| *s == DB_IDS),
                "{caller:?}: {out:?}"
            );
        }
        assert_eq!(lines[8..], ["x"], "{caller:?}: {out:?}");

        let anon = anonymous(caller, store);
        assert_eq!(anon.len(), 2, "{caller:?}: {anon:?}");
        assert_eq!(
            volumes(caller, store),
            anon,
            "{caller:?}: only anonymous ones"
        );
        let mounts = mounts(caller, store, "db");
        for (dst, content) in [("/var/lib/db", "new.txt"), ("/cache", "x")] {
            let m = mount_at(&mounts, dst);
            assert_eq!(m["Type"], "volume", "{caller:?}: {m}");
            assert_eq!(m["RW"], true, "{caller:?}: {m}");
            let name = m["Name"].as_str().unwrap();
            assert!(anon.iter().any(|a| a == name), "{caller:?}: {m}");
            let source = Path::new(m["Source"].as_str().unwrap());
            assert!(source.join(content).is_file(), "{caller:?}: {m}");
            let ps = ok(
                caller,
                store,
                &["ps", "-a", "-q", "--filter", &format!("volume={name}")],
            );
            assert_eq!(ps.stdout.lines().count(), 1, "{caller:?}: {ps:?}");
        }
        // Plain rm keeps them (docker's, without -v); a plain prune then takes them, and
        // never a named volume.
        ok(caller, store, &["volume", "create", "named"]);
        let ls = |filters: &[&str]| {
            let mut args = vec!["volume", "ls", "-q"];
            for f in filters {
                args.extend(["--filter", f]);
            }
            ok(caller, store, &args).stdout
        };
        assert_eq!(ls(&["dangling=true"]), "named\n", "{caller:?}");
        assert_eq!(ls(&["dangling=false"]), format!("{}\n", anon.join("\n")));
        let anonymous_mark = "label=com.docker.volume.anonymous";
        assert_eq!(ls(&[anonymous_mark]), ls(&["dangling=false"]), "{caller:?}");
        assert_eq!(ls(&[anonymous_mark, "dangling=true"]), "", "{caller:?}");
        assert_eq!(
            ls(&["name=amed", &format!("name={}", anon[0])])
                .lines()
                .count(),
            2
        );
        let inspect = ok(caller, store, &["volume", "inspect", &anon[0], "named"]);
        let inspect: Value = serde_json::from_str(&inspect.stdout).unwrap();
        assert_eq!(inspect[0]["Anonymous"], true, "{caller:?}: {inspect}");
        let docker_mark = &inspect[0]["Labels"]["com.docker.volume.anonymous"];
        assert_eq!(docker_mark, "", "{caller:?}: {inspect}");
        assert_eq!(inspect[1]["Anonymous"], false, "{caller:?}: {inspect}");
        assert_eq!(
            inspect[1]["Labels"],
            serde_json::json!({}),
            "{caller:?}: {inspect}"
        );
        ok(caller, store, &["rm", "db"]);
        assert_eq!(anonymous(caller, store), anon, "{caller:?}");
        let prune = ok(caller, store, &["volume", "prune", "-f"]);
        for name in &anon {
            assert!(
                prune.stdout.contains(name.as_str()),
                "{caller:?}: {prune:?}"
            );
        }
        assert_eq!(volumes(caller, store), ["named"], "{caller:?}: {prune:?}");
    });
}

/// Polls `done` for up to 10 s (a `-d` container's monitor removes it after it ends).
fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `run --rm`, attached and `-d`, and a `create --rm` container once started (attached and
/// not), leave no anonymous volume (`-v /dst`, `--mount type=volume,target=`, the image's); a
/// named one stays.
#[test]
fn a_removed_run_leaves_no_anonymous_volume_and_keeps_named_ones() {
    for_each_caller_with_image(|caller, store| {
        let flags = [
            "--rm",
            "-v",
            "/extra",
            "--mount",
            "type=volume,target=/m",
            "-v",
            "keep:/k",
        ];
        let out = run_ok(
            caller,
            store,
            &flags,
            "grep -c -e ' /extra ' -e ' /m ' -e ' /k ' -e ' /var/lib/db ' -e ' /cache ' /proc/mounts; echo k > /k/f",
        );
        assert_eq!(out.stdout, "5\n", "{caller:?}: {out:?}");
        assert_eq!(volumes(caller, store), ["keep"], "{caller:?}");

        let id = ok(
            caller,
            store,
            &["run", "-d", "--rm", "-v", "/extra", IMAGE, "sleep 1"],
        );
        assert!(!id.stdout.trim().is_empty(), "{caller:?}: {id:?}");
        assert_eq!(anonymous(caller, store).len(), 3, "{caller:?}");
        eventually(&format!("{caller:?}: run -d --rm left its volumes"), || {
            volumes(caller, store) == ["keep"]
        });

        let create = [
            "create", "--rm", "--name", "later", "-v", "/extra", IMAGE, "true",
        ];
        ok(caller, store, &create);
        assert_eq!(anonymous(caller, store).len(), 3, "{caller:?}");
        ok(caller, store, &["start", "-a", "later"]);
        assert_eq!(volumes(caller, store), ["keep"], "{caller:?}");
        ok(caller, store, &create);
        ok(caller, store, &["start", "later"]);
        eventually(
            &format!("{caller:?}: start (detached) left its volumes"),
            || volumes(caller, store) == ["keep"],
        );
        assert!(store.join("volumes/keep/_data/f").is_file(), "{caller:?}");
    });
}

/// `rm -v` removes the anonymous volumes made for the container, not a named one, nor an
/// anonymous one it mounts by name (docker keeps those) or another container still mounts;
/// plain `rm` removes none.
#[test]
fn rm_v_takes_the_containers_own_anonymous_volumes_only() {
    for_each_caller_with_image(|caller, store| {
        run_ok(
            caller,
            store,
            &["--name", "a", "-v", "keep:/k", "-v", "/extra"],
            "true",
        );
        let a_mounts = mounts(caller, store, "a");
        let name_at = |at: &str| {
            mount_at(&a_mounts, at)["Name"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let (extra, db) = (name_at("/extra"), name_at("/var/lib/db"));
        // docker's Driver, Mode and Propagation: a mount's volume "z", an image's VOLUME "".
        for (at, mode) in [("/k", "z"), ("/extra", "z"), ("/var/lib/db", "")] {
            let m = mount_at(&a_mounts, at);
            let got = (&m["Driver"], &m["Mode"], &m["Propagation"]);
            assert_eq!(
                got,
                (&"local".into(), &mode.into(), &"".into()),
                "{caller:?}: {m}"
            );
        }
        // b mounts a's /extra volume by name, besides its own image volumes.
        let shared = format!("{extra}:/shared");
        run_ok(caller, store, &["--name", "b", "-v", &shared], "true");
        assert_eq!(anonymous(caller, store).len(), 5, "{caller:?}");

        let rm = ok(caller, store, &["rm", "-v", "a"]);
        assert_eq!(rm.stderr, "", "{caller:?}: {rm:?}");
        let left = volumes(caller, store);
        assert!(!left.contains(&db), "{caller:?}: {left:?}");
        assert!(
            left.contains(&extra),
            "{caller:?}: b still mounts it: {left:?}"
        );
        assert!(left.iter().any(|v| v == "keep"), "{caller:?}: {left:?}");
        assert_eq!(left.len(), 4, "{caller:?}: {left:?}");

        ok(caller, store, &["rm", "-v", "b"]);
        let mut want = vec!["keep".to_string(), extra.clone()];
        want.sort();
        assert_eq!(
            volumes(caller, store),
            want,
            "{caller:?}: b mounted {extra} by name"
        );
        // Nothing uses it now: a plain prune takes it, and keeps the named one.
        ok(caller, store, &["volume", "prune", "-f"]);
        assert_eq!(volumes(caller, store), ["keep"], "{caller:?}");
        let locks: Vec<String> = std::fs::read_dir(store.join("volumes/.locks"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(locks, ["keep"], "{caller:?}: removed volumes' lock files");
    });
}

/// A named volume, a bind or a tmpfs at a path the image declares replaces its anonymous
/// volume (a new named one is seeded from the image as the anonymous one would be), and one
/// inside it is mounted on top of it;
/// `volume-nocopy` leaves an anonymous volume empty; two mounts at one path and bad paths are
/// refused in one line, leaving no volume.
#[test]
fn a_mount_at_a_declared_path_replaces_its_anonymous_volume() {
    for_each_caller_with_image(|caller, store| {
        let out = run_ok(
            caller,
            store,
            &["--rm", "-v", "fresh:/var/lib/db/", "--tmpfs", "/cache"],
            "cat /var/lib/db/seed.txt; grep -c ' /cache tmpfs ' /proc/mounts",
        );
        assert_eq!(out.stdout, "from the image\n1\n", "{caller:?}: {out:?}");
        assert_eq!(volumes(caller, store), ["fresh"], "{caller:?}");

        let host = tempfile::Builder::new()
            .prefix("rsafe-anonvol-")
            .tempdir_in("/tmp")
            .unwrap();
        support::sh(Command::new("chmod").arg("777").arg(host.path()));
        let bind = format!("{}:/var/lib/db", host.path().display());
        let out = run_ok(
            caller,
            store,
            &["--name", "bound", "-v", &bind],
            "ls -A /var/lib/db; echo mine > /var/lib/db/f",
        );
        assert_eq!(
            out.stdout, "",
            "{caller:?}: a bind is never seeded: {out:?}"
        );
        assert!(host.path().join("f").is_file(), "{caller:?}");
        let m = mounts(caller, store, "bound");
        let bind = mount_at(&m, "/var/lib/db");
        assert_eq!(bind["Type"], "bind", "{caller:?}");
        // docker's: no Driver for a bind, its Mode "" and its propagation rprivate.
        let got = (bind.get("Driver"), &bind["Mode"], &bind["Propagation"]);
        assert_eq!(
            got,
            (None, &"".into(), &"rprivate".into()),
            "{caller:?}: {bind}"
        );
        assert_eq!(mount_at(&m, "/cache")["Type"], "volume", "{caller:?}");
        ok(caller, store, &["rm", "-v", "bound"]);
        assert_eq!(volumes(caller, store), ["fresh"], "{caller:?}");

        // A mount inside a declared path goes on top of its volume, not under it.
        let nested = ["--name", "nest", "-v", "/var/lib/db/sub"];
        run_ok(caller, store, &nested, "echo s > /var/lib/db/sub/f");
        let m = mounts(caller, store, "nest");
        let source = |at: &str| PathBuf::from(mount_at(&m, at)["Source"].as_str().unwrap());
        assert!(
            source("/var/lib/db/sub").join("f").is_file(),
            "{caller:?}: {m:?}"
        );
        assert!(
            !source("/var/lib/db").join("sub/f").exists(),
            "{caller:?}: {m:?}"
        );
        ok(caller, store, &["rm", "-v", "nest"]);
        let out = run_ok(
            caller,
            store,
            &[
                "--rm",
                "--mount",
                "type=volume,target=/var/lib/db,volume-nocopy",
            ],
            "ls -A /var/lib/db | wc -l",
        );
        assert_eq!(out.stdout.trim(), "0", "{caller:?}: {out:?}");

        let twice = ["run", "--rm", "-v", "/d", "-v", "fresh:/d/", IMAGE, "true"];
        let twice = rsafe_cmd(caller, store, &twice);
        assert_eq!(twice.code, 125, "{caller:?}: {twice:?}");
        assert_eq!(twice.stderr.lines().count(), 1, "{caller:?}: {twice:?}");
        let says = "Duplicate mount point: /d";
        assert!(twice.stderr.contains(says), "{caller:?}: {twice:?}");
        for bad in ["relative", "/proc"] {
            let out = rsafe_cmd(caller, store, &["run", "--rm", "-v", bad, IMAGE, "true"]);
            assert_eq!(out.code, 125, "{caller:?} {bad}: {out:?}");
            assert_eq!(out.stderr.lines().count(), 1, "{caller:?} {bad}: {out:?}");
        }
        // No refused run left a volume behind, nor a create refused after its volumes were
        // made (its name taken).
        ok(caller, store, &["create", "--name", "taken", IMAGE, "true"]);
        let before = volumes(caller, store);
        let again = ["create", "--name", "taken", "-v", "/x", IMAGE, "true"];
        let again = rsafe_cmd(caller, store, &again);
        assert_eq!(again.code, 125, "{caller:?}: {again:?}");
        assert_eq!(again.stderr.lines().count(), 1, "{caller:?}: {again:?}");
        assert_eq!(volumes(caller, store), before, "{caller:?}");
        ok(caller, store, &["rm", "-v", "taken"]);
        assert_eq!(volumes(caller, store), ["fresh"], "{caller:?}");
    });
}

/// A `run --rm` whose rsafe is killed (SIGKILL) cannot remove its container or volumes: the
/// next sweep of dead `--rm` containers (here `ps -a`) removes the container, as its rsafe
/// would have, and its anonymous volumes with it, as docker's auto-remove does; while the
/// container runs a plain `volume prune` keeps them. Killed as soon as `ps -a` lists the
/// container (it may still be setting up) and once its workload runs.
#[test]
fn a_killed_run_rm_is_swept_with_its_anonymous_volumes() {
    for_each_caller_with_image(|caller, store| {
        for running in [false, true] {
            let mut cmd = caller.command(store);
            cmd.args(["run", "--rm", "-v", "/extra", IMAGE, "sleep 1234"]);
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let mut child = cmd.spawn().unwrap();
            let ps = if running { "ps" } else { "ps -a" };
            eventually(&format!("{caller:?}: never in {ps}"), || {
                let args: &[&str] = if running {
                    &["ps", "-q"]
                } else {
                    &["ps", "-a", "-q"]
                };
                rsafe_cmd(caller, store, args).stdout.lines().count() == 1
            });
            if running {
                let anon = anonymous(caller, store);
                assert_eq!(anon.len(), 3, "{caller:?}");
                ok(caller, store, &["volume", "prune", "-f"]);
                assert_eq!(
                    anonymous(caller, store),
                    anon,
                    "{caller:?}: pruned while running"
                );
            }
            // setpriv execs rsafe: the child is rsafe itself.
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
            child.wait().unwrap();
            // Its cgroup may take a moment to empty after the kill: until then the container
            // stays (Dead), and so do its volumes.
            eventually(
                &format!("{caller:?} {ps}: the dead container stays"),
                || ok(caller, store, &["ps", "-a", "-q"]).stdout.is_empty(),
            );
            assert_eq!(
                volumes(caller, store),
                Vec::<String>::new(),
                "{caller:?} killed once in {ps}: the sweep left its volumes"
            );
        }
    });
}

/// The parent pid of process `pid` (from `/proc/PID/stat`, after the command's parentheses).
fn parent_of(pid: i64) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(1).unwrap().parse().unwrap()
}

/// A `run -d --rm` whose monitor is killed (SIGKILL) is swept as the attached one is: `ps -a`
/// removes the dead container and its anonymous volumes.
#[test]
fn a_run_d_rm_whose_monitor_is_killed_is_swept_with_its_anonymous_volumes() {
    for_each_caller_with_image(|caller, store| {
        let run = ["run", "-d", "--rm", "-v", "/extra", IMAGE, "sleep 1234"];
        let id = ok(caller, store, &run).stdout.trim().to_string();
        assert_eq!(anonymous(caller, store).len(), 3, "{caller:?}");
        let inspect = ok(caller, store, &["inspect", &id]).stdout;
        let inspect: Value = serde_json::from_str(&inspect).unwrap();
        let pid = inspect[0]["State"]["Pid"].as_i64().unwrap();
        // The container's first process is the monitor's child.
        let monitor = nix::unistd::Pid::from_raw(parent_of(pid));
        nix::sys::signal::kill(monitor, nix::sys::signal::Signal::SIGKILL).unwrap();
        eventually(&format!("{caller:?}: the dead container stays"), || {
            ok(caller, store, &["ps", "-a", "-q"]).stdout.is_empty()
        });
        assert_eq!(
            volumes(caller, store),
            Vec::<String>::new(),
            "{caller:?}: the sweep left its volumes"
        );
    });
}

/// A `run -d` that fails in rsafe itself before the container's monitor is forked (here the
/// store's `containers/` cannot be written: immutable as root, read-only to the test user)
/// leaves none of the anonymous volumes it made, as a failed `docker run` leaves none.
#[test]
fn a_run_d_failing_before_its_monitor_leaves_no_anonymous_volume() {
    for_each_caller_with_image(|caller, store| {
        ok(caller, store, &["create", "--name", "made", IMAGE, "true"]);
        ok(caller, store, &["rm", "-v", "made"]);
        assert_eq!(volumes(caller, store), Vec::<String>::new(), "{caller:?}");
        let containers = store.join("containers");
        let (lock, unlock) = match caller {
            Caller::Host => (["chattr", "+i"], ["chattr", "-i"]),
            _ => (["chmod", "0555"], ["chmod", "0755"]),
        };
        support::sh(Command::new(lock[0]).arg(lock[1]).arg(&containers));
        let out = rsafe_cmd(caller, store, &["run", "-d", "-v", "/extra", IMAGE, "true"]);
        support::sh(Command::new(unlock[0]).arg(unlock[1]).arg(&containers));
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{caller:?}: {out:?}");
        assert!(out.stderr.contains("containers"), "{caller:?}: {out:?}");
        assert_eq!(
            volumes(caller, store),
            Vec::<String>::new(),
            "{caller:?}: the failed run -d left its volumes"
        );
    });
}

/// `--volumes-from CONTAINER[:ro|rw]` (docker's, podman's): every volume (named, anonymous,
/// the image's) and bind of CONTAINER at the same paths, each as read-only as it was there,
/// or all as the mode says; not its tmpfs; a mount of the run at one of those paths wins; the
/// image's `VOLUME`s it covers get no volume of their own; `rm -v` of the borrower keeps the
/// lender's volumes. A missing container or a bad mode: 125, one line, no volume left.
#[test]
fn volumes_from_mounts_the_other_containers_volumes_and_binds() {
    for_each_caller_with_image(|caller, store| {
        let host = tempfile::Builder::new()
            .prefix("rsafe-anonvol-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::write(host.path().join("f"), "host\n").unwrap();
        support::sh(Command::new("chmod").arg("755").arg(host.path()));
        let bind = format!("{}:/h:ro", host.path().display());
        let src = [
            "--name", "src", "-v", "/extra", "-v", "keep:/k", "-v", &bind,
        ];
        let src: Vec<&str> = src.into_iter().chain(["--tmpfs", "/t"]).collect();
        run_ok(
            caller,
            store,
            &src,
            "echo e > /extra/e; echo k > /k/k; echo d > /var/lib/db/d",
        );
        let before = volumes(caller, store);
        assert_eq!(before.len(), 4, "{caller:?}: {before:?}");
        let opts = "for p in /extra /k /h /var/lib/db /cache /t; do \
            grep \" $p \" /proc/mounts | cut -d' ' -f4 | cut -d, -f1 | sed \"s|^|$p |\"; done";
        let read = format!("cat /extra/e /k/k /h/f /var/lib/db/d; {opts}");
        let out = run_ok(caller, store, &["--rm", "--volumes-from", "src"], &read);
        let want = "e\nk\nhost\nd\n/extra rw\n/k rw\n/h ro\n/var/lib/db rw\n/cache rw\n";
        assert_eq!(out.stdout, want, "{caller:?}: {out:?}");
        assert_eq!(volumes(caller, store), before, "{caller:?}: volumes made");

        let out = run_ok(caller, store, &["--rm", "--volumes-from", "src:ro"], opts);
        let ro = "/extra ro\n/k ro\n/h ro\n/var/lib/db ro\n/cache ro\n";
        assert_eq!(out.stdout, ro, "{caller:?}: {out:?}");
        // The run's own -v at /k wins: a fresh anonymous volume, gone with --rm.
        let own = ["--rm", "-v", "/k", "--volumes-from", "src:rw"];
        let out = run_ok(caller, store, &own, "ls -A /k; echo $(ls /extra)");
        assert_eq!(out.stdout, "e\n", "{caller:?}: {out:?}");
        assert_eq!(volumes(caller, store), before, "{caller:?}");

        ok(
            caller,
            store,
            &[
                "create",
                "--name",
                "b",
                "--volumes-from",
                "src",
                IMAGE,
                "true",
            ],
        );
        let lent = mounts(caller, store, "src");
        let borrowed = mounts(caller, store, "b");
        for at in ["/extra", "/k", "/var/lib/db"] {
            let name = |m: &[Value]| mount_at(m, at)["Name"].clone();
            assert_eq!(name(&borrowed), name(&lent), "{caller:?} {at}");
        }
        ok(caller, store, &["rm", "-v", "b"]);
        assert_eq!(
            volumes(caller, store),
            before,
            "{caller:?}: rm -v took the lender's"
        );

        for (from, says) in [
            ("nosuch", "no such container: nosuch"),
            ("src:z", "is not ro or rw"),
        ] {
            let args = [
                "run",
                "--rm",
                "-v",
                "/x",
                "--volumes-from",
                from,
                IMAGE,
                "true",
            ];
            let out = rsafe_cmd(caller, store, &args);
            assert_eq!(out.code, 125, "{caller:?} {from}: {out:?}");
            assert_eq!(out.stderr.lines().count(), 1, "{caller:?} {from}: {out:?}");
            assert!(out.stderr.contains(says), "{caller:?} {from}: {out:?}");
            assert_eq!(volumes(caller, store), before, "{caller:?} {from}");
        }
    });
}
