//! Anonymous volumes as docker makes them, through the real binary, as root and as the
//! unprivileged test user (with and without subordinate ids): `-v /dst`, `--mount
//! type=volume,target=/dst` and an image's `VOLUME` (an OCI layout built here with
//! `config.Volumes`) each get a volume named by 64 hex digits, seeded with the image's files at
//! that path (owners and modes as the image has them; `volume-nocopy` leaves it empty), written
//! to under `--read-only`, listed by `volume ls`, shown in `inspect`'s Mounts and picked by `ps
//! --filter volume=`. `run --rm` (attached and `-d`) and `rm -v` remove them, plain `rm` keeps
//! them, plain `volume prune` removes the unused ones (a killed `run --rm`'s too) but never a
//! named volume, and a mount at a path the image declares replaces its anonymous volume.
#[allow(dead_code)]
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

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
