//! `rsafe top`, `rename`, `diff` and `export` through the real binary on real containers, as
//! root and as the unprivileged test user (with and without subordinate ids): what a docker
//! user types and what docker prints for it.
#[path = "support/run.rs"]
#[allow(dead_code)] // shared with tests/run.rs, which uses the rest
mod run_support;
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use run_support::{Caller, Output, for_each_caller, rsafe_cmd};
use support::hostile_images::{Layer, OCI_LAYER_GZIP, docker_save, gzip};

/// `rsafe ARGS…` as `caller` on `store`, asserting it succeeded.
fn ok(caller: Caller, store: &Path, args: &[&str]) -> Output {
    let out = rsafe_cmd(caller, store, args);
    assert_eq!(out.code, 0, "{caller:?} rsafe {args:?}: {}", out.stderr);
    out
}

/// `rsafe run -d --name NAME FLAGS… IMAGE sh -c 'SCRIPT; touch /ready; exec sleep 1000'` as
/// `caller`, returned once `/ready` exists in it.
fn run_until_ready(caller: Caller, store: &Path, name: &str, image: &str, script: &str) {
    let script = format!("{script}; touch /ready; exec sleep 1000");
    ok(
        caller,
        store,
        &["run", "-d", "--name", name, image, "/bin/sh", "-c", &script],
    );
    let ready = || rsafe_cmd(caller, store, &["exec", name, "test", "-e", "/ready"]).code == 0;
    for _ in 0..100 {
        if ready() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{caller:?}: container {name} never got ready");
}

/// What the container of [`diff_lists_adds_changes_and_deletes_as_docker_does`] does to the
/// busybox root: adds, changes, deletes a file and a whole directory, replaces a directory
/// (`rm -rf`, `mkdir`: overlayfs makes it opaque) with a file in it, plants a symlink out.
const CHANGES: &str = "echo new > /etc/added; echo changed >> /etc/passwd; rm /etc/group; \
    rm -rf /var; rm -rf /usr && mkdir -p /usr/bin && echo t > /usr/bin/tool; \
    ln -s /etc/shadow /root/evil";

/// docker's answer for [`CHANGES`] (worked out from overlayfs's rules, not from rsafe).
const EXPECTED: &[&str] = &[
    "C /etc",
    "A /etc/added",
    "D /etc/group",
    "C /etc/passwd",
    "A /ready",
    "C /root",
    "A /root/evil",
    "C /usr",
    "C /usr/bin",
    "A /usr/bin/tool",
    "D /usr/sbin",
    "D /var",
];

#[test]
fn diff_lists_adds_changes_and_deletes_as_docker_does() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        run_until_ready(caller, store, "dif", rootfs.to_str().unwrap(), CHANGES);
        let running = ok(caller, store, &["diff", "dif"]).stdout;
        assert_eq!(running.lines().collect::<Vec<_>>(), EXPECTED, "{caller:?}");
        ok(caller, store, &["stop", "-t", "1", "dif"]);
        let stopped = ok(caller, store, &["diff", "dif"]).stdout;
        assert_eq!(stopped, running, "{caller:?}: stopped");
        let json: serde_json::Value =
            serde_json::from_str(&ok(caller, store, &["diff", "--format", "json", "dif"]).stdout)
                .unwrap();
        let of = |kind: &str| -> Vec<String> {
            json[kind]
                .as_array()
                .unwrap_or(&Vec::new())
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let letters = |l: char| -> Vec<String> {
            EXPECTED
                .iter()
                .filter(|e| e.starts_with(l))
                .map(|e| e[2..].to_string())
                .collect()
        };
        assert_eq!(of("added"), letters('A'));
        assert_eq!(of("changed"), letters('C'));
        assert_eq!(of("deleted"), letters('D'));
        let bad = rsafe_cmd(caller, store, &["diff", "--format", "yaml", "dif"]);
        assert_eq!((bad.code, bad.stderr.lines().count()), (1, 1), "{bad:?}");
        let none = rsafe_cmd(caller, store, &["diff", "nosuch"]);
        assert_eq!(none.stderr.trim(), "rsafe: no container \"nosuch\"");
    });
}

/// `tar -tvf FILE` as (type+mode, owner, name, link target) per entry.
fn listing(tar: &Path) -> Vec<(String, String, String, Option<String>)> {
    let out = Command::new("tar").arg("-tvf").arg(tar).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let rest = f[5..].join(" ");
            let (name, link) = match rest.split_once(" -> ") {
                Some((n, t)) => (n.to_string(), Some(t.to_string())),
                None => (rest, None),
            };
            (f[0].to_string(), f[1].to_string(), name, link)
        })
        .collect()
}

#[test]
fn export_writes_the_merged_tree_with_the_containers_owners_and_links_as_links() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        run_until_ready(caller, store, "exp", rootfs.to_str().unwrap(), CHANGES);
        let out = support::containers::shared_tempdir("rsafe-export-");
        chmod_777(out.path());
        let file = out.path().join("exp.tar");
        ok(
            caller,
            store,
            &["export", "-o", file.to_str().unwrap(), "exp"],
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "a container's files may hold secrets");
        let entries = listing(&file);
        let names: BTreeSet<&str> = entries.iter().map(|e| e.2.as_str()).collect();
        for present in [
            "etc/added",
            "etc/passwd",
            "usr/bin/tool",
            "bin/busybox",
            "proc/",
        ] {
            assert!(names.contains(present), "{caller:?}: {present} missing");
        }
        for gone in ["etc/group", "var/", "var/tmp/", "usr/sbin/"] {
            assert!(!names.contains(gone), "{caller:?}: {gone} exported");
        }
        // Nothing from the mounts over the tree: /proc is the image's empty directory.
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("proc/") && *n != "proc/")
        );
        let evil = entries.iter().find(|e| e.2 == "root/evil").unwrap();
        assert!(evil.0.starts_with('l'), "{evil:?}");
        assert_eq!(evil.3.as_deref(), Some("/etc/shadow"));
        // The container's root is 0 in the archive, whatever host id it is.
        let added = entries.iter().find(|e| e.2 == "etc/added").unwrap();
        assert_eq!(added.1, "0/0", "{caller:?}");
        assert!(!entries.iter().any(|e| e.0.starts_with(['c', 'b'])));

        // Round trip: unpacked, the changed files and not the deleted ones.
        let unpacked = out.path().join("root");
        std::fs::create_dir(&unpacked).unwrap();
        let tar_x = Command::new("tar")
            .arg("-xf")
            .arg(&file)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .unwrap();
        assert!(tar_x.success());
        let read = |p: &str| std::fs::read_to_string(unpacked.join(p)).unwrap();
        assert_eq!(read("etc/added"), "new\n");
        assert!(read("etc/passwd").ends_with("changed\n"));
        assert_eq!(read("usr/bin/tool"), "t\n");
        assert!(!unpacked.join("etc/group").exists() && !unpacked.join("var").exists());
        assert_eq!(
            std::fs::read_link(unpacked.join("root/evil")).unwrap(),
            Path::new("/etc/shadow")
        );

        // The same archive on stdout (a pipe), of the stopped container.
        ok(caller, store, &["stop", "-t", "1", "exp"]);
        let piped = caller
            .command(store)
            .args(["export", "exp"])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert!(piped.status.success());
        let again = out.path().join("again.tar");
        std::fs::write(&again, &piped.stdout).unwrap();
        let names_again: Vec<String> = listing(&again).into_iter().map(|e| e.2).collect();
        let names_first: Vec<String> = entries.iter().map(|e| e.2.clone()).collect();
        assert_eq!(names_again, names_first, "{caller:?}");
    });
}

fn chmod_777(path: &Path) {
    Command::new("chmod").arg("777").arg(path).status().unwrap();
}

#[test]
fn a_failed_export_leaves_no_file() {
    for_each_caller(|caller, store| {
        let work = support::containers::shared_tempdir("rsafe-export-fail-");
        chmod_777(work.path());
        // A container whose image directory went away: its layers cannot be read.
        let rootfs = work.path().join("rootfs");
        let copied = Command::new("cp")
            .arg("-a")
            .arg(caller.rootfs())
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(copied.success());
        ok(
            caller,
            store,
            &["run", "--name", "lost", rootfs.to_str().unwrap(), "true"],
        );
        std::fs::remove_dir_all(&rootfs).unwrap();
        let file = work.path().join("lost.tar");
        let out = rsafe_cmd(
            caller,
            store,
            &["export", "-o", file.to_str().unwrap(), "lost"],
        );
        assert_eq!(out.code, 1, "{caller:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr
                .starts_with("rsafe: cannot export container lost")
        );
        let left: Vec<PathBuf> = std::fs::read_dir(work.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "{caller:?}: left {left:?}");
        let none = rsafe_cmd(
            caller,
            store,
            &["export", "-o", file.to_str().unwrap(), "nosuch"],
        );
        assert_eq!(none.code, 1);
        assert!(!file.exists());
        if caller == Caller::Host {
            // stdout a terminal (script's pseudo-terminal): refused before anything is read.
            let line = format!(
                "{} --root {} export lost",
                support::rsafe_bin().display(),
                store.display()
            );
            let out = Command::new("script")
                .args(["-qec", &line, "/dev/null"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(1), "{text}");
            assert!(
                text.contains("refusing to write an archive to a terminal"),
                "{text}"
            );
        }
    });
}

/// A ustar header of `kind`, owned by root (uid and gid fields filled in: rsafe refuses empty
/// ones).
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// A two-layer image: busybox, `/etc/a`, `/etc/b`, `/old/x`; the second layer deletes
/// `/etc/b` (a whiteout) and replaces `/old` (opaque) with `/old/y`.
fn layered_image(path: &Path) {
    let mut base = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, name: &str| {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    };
    let file = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8], mode: u32| {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    for d in ["bin/", "etc/", "old/", "tmp/", "proc/", "dev/", "sys/"] {
        dir(&mut base, d);
    }
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static");
    file(&mut base, "bin/busybox", &busybox, 0o755);
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    base.append_link(&mut h, "bin/sh", "busybox").unwrap();
    file(&mut base, "etc/a", b"a\n", 0o644);
    file(&mut base, "etc/b", b"b\n", 0o644);
    file(&mut base, "old/x", b"x\n", 0o644);
    let mut top = tar::Builder::new(Vec::new());
    dir(&mut top, "etc/");
    dir(&mut top, "old/");
    file(&mut top, "etc/.wh.b", b"", 0o644);
    file(&mut top, "old/.wh..wh..opq", b"", 0o644);
    file(&mut top, "old/y", b"y\n", 0o644);
    let layer = |b: tar::Builder<Vec<u8>>| {
        let tar = b.into_inner().unwrap();
        Layer {
            blob: gzip(&tar),
            tar,
            media_type: OCI_LAYER_GZIP.into(),
        }
    };
    let (l1, l2) = (layer(base), layer(top));
    let (tree, _) = docker_save(&[&l1, &l2], &["layered:1"]);
    tree.write_tar(path);
}

#[test]
fn the_images_own_whiteouts_are_neither_changes_nor_exported() {
    let work = support::containers::shared_tempdir("rsafe-layered-");
    chmod_777(work.path());
    let archive = work.path().join("layered.tar");
    layered_image(&archive);
    Command::new("chmod")
        .arg("644")
        .arg(&archive)
        .status()
        .unwrap();
    for_each_caller(|caller, store| {
        ok(caller, store, &["-q", "load", archive.to_str().unwrap()]);
        let script = "/bin/busybox rm /etc/a; echo z > /old/z";
        let args = [
            "run",
            "--name",
            "lay",
            "--user",
            "0:0",
            "--entrypoint",
            "/bin/sh",
            "layered:1",
            "-c",
            script,
        ];
        ok(caller, store, &args);
        let diff = ok(caller, store, &["diff", "lay"]).stdout;
        assert_eq!(
            diff.lines().collect::<Vec<_>>(),
            ["C /etc", "D /etc/a", "C /old", "A /old/z"],
            "{caller:?}"
        );
        let file = work.path().join(format!("{caller:?}.tar"));
        ok(
            caller,
            store,
            &["export", "-o", file.to_str().unwrap(), "lay"],
        );
        let names: Vec<String> = listing(&file)
            .into_iter()
            .map(|e| e.2)
            .filter(|n| !n.starts_with("bin/") && !n.ends_with('/'))
            .collect();
        // The empty mount points rsafe made are there, as docker's init layer's files are.
        let want = ["etc/hostname", "etc/hosts", "old/y", "old/z"];
        assert_eq!(names, want, "{caller:?}");
    });
}

#[test]
fn top_shows_the_containers_processes_and_only_them() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let script = "sleep 1001 & true";
        run_until_ready(caller, store, "tp", rootfs.to_str().unwrap(), script);
        ok(caller, store, &["exec", "-d", "tp", "sleep", "1002"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let out = ok(caller, store, &["top", "tp"]).stdout;
        let mut lines = out.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        let cmds: BTreeSet<String> = lines
            .map(|l| l.split_whitespace().skip(7).collect::<Vec<_>>().join(" "))
            .collect();
        for want in ["sleep 1000", "sleep 1001", "sleep 1002"] {
            assert!(cmds.contains(want), "{caller:?}: {want} missing from {out}");
        }
        // Nothing of the host's: only the container's init besides.
        assert_eq!(cmds.len(), 4, "{caller:?}: {out}");
        // With ps options; the uid is the host's one for the container's root.
        let custom = ok(caller, store, &["top", "tp", "-o", "uid,pid,comm"]).stdout;
        let mut lines = custom.lines();
        assert_eq!(
            lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
            ["UID", "PID", "COMMAND"]
        );
        let root_uid = container_root_host_uid(caller, store, "tp");
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows.len(), 4, "{custom}");
        for row in &rows {
            assert_eq!(row[0], root_uid.to_string(), "{caller:?}: {custom}");
        }
        let no_pid = rsafe_cmd(caller, store, &["top", "tp", "-o", "comm"]);
        assert_eq!(no_pid.code, 125);
        assert!(no_pid.stderr.contains("no PID column"), "{no_pid:?}");
        ok(caller, store, &["stop", "-t", "1", "tp"]);
        let stopped = rsafe_cmd(caller, store, &["top", "tp"]);
        assert_eq!(stopped.code, 125, "{stopped:?}");
        assert_eq!(stopped.stderr, "rsafe: container tp is not running\n");
        assert_eq!(stopped.stdout, "");
    });
}

/// The host uid the container `name`'s root is: the owner of its writable layer.
fn container_root_host_uid(caller: Caller, store: &Path, name: &str) -> u32 {
    use std::os::unix::fs::MetadataExt;
    let json: serde_json::Value =
        serde_json::from_str(&ok(caller, store, &["inspect", name]).stdout).unwrap();
    let id = json[0]["Id"]
        .as_str()
        .or(json["Id"].as_str())
        .unwrap()
        .to_string();
    std::fs::metadata(store.join("containers").join(id).join("upper"))
        .unwrap()
        .uid()
}

#[test]
fn a_renamed_running_container_is_found_by_its_new_name_by_every_command() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        run_until_ready(caller, store, "old", rootfs.to_str().unwrap(), "echo hello");
        ok(
            caller,
            store,
            &["run", "--name", "taken", rootfs.to_str().unwrap(), "true"],
        );
        ok(caller, store, &["rename", "old", "new"]);
        let names: BTreeSet<String> = ps_names(caller, store).into_iter().collect();
        assert_eq!(
            names,
            BTreeSet::from(["new".into(), "taken".into()]),
            "{caller:?}"
        );
        assert_eq!(ok(caller, store, &["logs", "new"]).stdout, "hello\n");
        assert_eq!(
            ok(caller, store, &["exec", "new", "echo", "in"]).stdout,
            "in\n"
        );
        let gone = rsafe_cmd(caller, store, &["exec", "old", "true"]);
        assert_ne!(gone.code, 0);
        // Taken (by a stopped container), invalid, the same name: one line each.
        for (to, says) in [
            ("taken", "already in use"),
            ("bad/name", "use letters"),
            ("new", "already named"),
        ] {
            let out = rsafe_cmd(caller, store, &["rename", "new", to]);
            assert_eq!(out.code, 1, "{to}: {out:?}");
            assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
            assert!(out.stderr.contains(says), "{to}: {}", out.stderr);
        }
        ok(caller, store, &["stop", "-t", "1", "new"]);
        // The exit recorded by the container's monitor kept the new name.
        let ps = ok(caller, store, &["ps", "-a"]).stdout;
        let row = ps
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some("new"));
        assert!(row.is_some_and(|r| r.contains("Exited")), "{ps}");
        ok(caller, store, &["rename", "new", "old"]);
        ok(caller, store, &["start", "old"]);
        ok(caller, store, &["stop", "-t", "1", "old"]);
    });
}

/// The NAME column of `ps -a`.
fn ps_names(caller: Caller, store: &Path) -> Vec<String> {
    let ps = ok(caller, store, &["ps", "-a"]).stdout;
    ps.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect()
}

#[test]
fn eight_concurrent_renames_to_one_name_have_one_winner() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        for i in 0..8 {
            let name = format!("c{i}");
            ok(
                caller,
                store,
                &["create", "--name", &name, rootfs.to_str().unwrap(), "true"],
            );
        }
        let children: Vec<_> = (0..8)
            .map(|i| {
                caller
                    .command(store)
                    .args(["rename", &format!("c{i}"), "winner"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let won: Vec<usize> = (0..8).filter(|i| outs[*i].status.success()).collect();
        assert_eq!(won.len(), 1, "{caller:?}: {outs:?}");
        for (i, out) in outs.iter().enumerate().filter(|(i, _)| *i != won[0]) {
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1));
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(
                err.starts_with(&format!("rsafe: cannot rename c{i} to winner")),
                "{err}"
            );
        }
        // No torn state: every container still listed, each name once.
        let mut names = ps_names(caller, store);
        names.sort();
        let mut want: Vec<String> = (0..8)
            .filter(|i| *i != won[0])
            .map(|i| format!("c{i}"))
            .collect();
        want.push("winner".into());
        want.sort();
        assert_eq!(names, want, "{caller:?}");
    });
}

#[test]
fn a_renamed_container_on_a_named_network_is_known_by_its_new_name() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        ok(caller, store, &["network", "create", "cmds"]);
        let on_net = |name: &str| {
            let script = "touch /ready; exec sleep 1000";
            ok(
                caller,
                store,
                &[
                    "run",
                    "-d",
                    "--network",
                    "cmds",
                    "--name",
                    name,
                    rootfs,
                    "sh",
                    "-c",
                    script,
                ],
            );
        };
        on_net("web");
        on_net("client");
        ok(caller, store, &["rename", "web", "front"]);
        let hosts = ok(caller, store, &["exec", "client", "cat", "/etc/hosts"]).stdout;
        let names: Vec<&str> = hosts.split_whitespace().collect();
        assert!(names.contains(&"front"), "{caller:?}: {hosts}");
        assert!(!names.contains(&"web"), "{caller:?}: {hosts}");
        // The name server answers from the same file.
        let line = hosts
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == "front"));
        let ip = line.and_then(|l| l.split_whitespace().next()).unwrap();
        let looked = ok(
            caller,
            store,
            &["exec", "client", "nslookup", "front", "127.0.0.11"],
        );
        assert!(
            looked.stdout.contains(&format!("Address: {ip}")),
            "{caller:?}: {}",
            looked.stdout
        );
        for name in ["front", "client"] {
            ok(caller, store, &["rm", "-f", name]);
        }
        ok(caller, store, &["network", "rm", "cmds"]);
    });
}
