//! `rsafe run`: every isolation property checked from inside the container, through the real
//! binary, as root and as an unprivileged user (with and without subordinate id ranges).
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::io::Read;
use std::os::linux::net::SocketAddrExt;
use std::path::Path;
use std::process::{Command, Stdio};

use run_support::{Caller, Output, for_each_caller, rsafe_cmd, run, run_sh};

/// [`for_each_caller`], with the busybox OCI layout (`support::busybox_layout`, built with
/// umoci) loaded into each caller's store first; `check` also gets the layout's path.
fn for_each_caller_with_busybox_image(check: impl Fn(Caller, &Path, &Path)) {
    if !support::have("umoci", support::tool("umoci")) {
        return;
    }
    let layout = support::busybox_layout();
    for_each_caller(|caller, store| {
        let load = rsafe_cmd(caller, store, &["load", layout.to_str().unwrap()]);
        assert_eq!(load.code, 0, "{caller:?}: {load:?}");
        check(caller, store, &layout);
    });
}

fn ok(out: &Output, caller: Caller) {
    assert_eq!(out.code, 0, "{caller:?}: {out:?}");
}

#[test]
fn container_root_is_never_host_root() {
    for_each_caller(|caller, store| {
        let out = run_sh(
            caller,
            store,
            &[],
            "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map",
        );
        ok(&out, caller);
        let mut lines = out.stdout.lines();
        assert_eq!(lines.next(), Some("0"), "{caller:?}");
        assert_eq!(lines.next(), Some("0"), "{caller:?}");
        let maps: Vec<[u64; 3]> = lines
            .map(|l| {
                let f: Vec<u64> = l.split_whitespace().map(|n| n.parse().unwrap()).collect();
                [f[0], f[1], f[2]]
            })
            .collect();
        assert!(!maps.is_empty());
        for [inside, outside, count] in &maps {
            assert!(
                *outside > 0 && outside + count > *outside,
                "{caller:?}: host id 0 is mapped: {maps:?}"
            );
            if *inside == 0 && caller != Caller::Host {
                let (uid, _) = support::test_user().unwrap();
                assert_eq!(*outside, u64::from(uid), "{caller:?}: root is the caller");
            }
        }
        let lines_per_map = maps.len() / 2;
        match caller {
            Caller::UserWithSubids => assert_eq!(lines_per_map, 2, "{maps:?}"),
            Caller::User => assert_eq!(maps, [[0, maps[0][1], 1], [0, maps[1][1], 1]]),
            Caller::Host => {}
        }
    });
}

#[test]
fn pid_namespace_with_init_as_pid_1() {
    for_each_caller(|caller, store| {
        let out = run_sh(
            caller,
            store,
            &[],
            "echo $$; cat /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'",
        );
        ok(&out, caller);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], "2", "{caller:?}: the shell is init's child");
        assert!(lines[1].starts_with("rsafe-init"), "{caller:?}: {lines:?}");
        // init, the shell, ls and grep: nothing of the host.
        let count: u32 = lines[2].trim().parse().unwrap();
        assert!(count <= 4, "{caller:?}: {count} processes visible");

        let out = run_sh(caller, store, &["--init=false"], "echo $$");
        ok(&out, caller);
        assert_eq!(out.stdout.trim(), "1");
    });
}

#[test]
fn init_hides_itself_from_the_container() {
    for_each_caller(|caller, store| {
        let out = run_sh(
            caller,
            store,
            &[],
            "ls /proc/1/fd && echo FD; readlink /proc/1/exe && echo EXE; cat /proc/1/environ && echo ENV; true",
        );
        ok(&out, caller);
        for leak in ["FD", "EXE", "ENV"] {
            assert!(
                !out.stdout.lines().any(|l| l == leak),
                "{caller:?}: /proc/1 {leak} readable: {out:?}"
            );
        }
    });
}

#[test]
fn hostname_is_the_containers() {
    for_each_caller(|caller, store| {
        let out = run_sh(
            caller,
            store,
            &["--hostname", "box"],
            "hostname; echo $HOSTNAME",
        );
        ok(&out, caller);
        assert_eq!(out.stdout, "box\nbox\n");
        let out = run_sh(caller, store, &[], "hostname");
        let name = out.stdout.trim();
        assert_eq!(name.len(), 12, "default hostname is the short id: {name}");
        assert!(name.chars().all(|c| c.is_ascii_hexdigit()));
    });
}

#[test]
fn network_is_loopback_only() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    // Accept and hang up at once, so a client that got through ends promptly.
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let abstract_name = format!("rsafe-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&abstract_name).unwrap();
    let _unix = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    let script = format!(
        "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; \
         if nc -w 2 127.0.0.1 {port} </dev/null; then echo TCP-REACHED; fi; \
         if grep -q {abstract_name} /proc/net/unix; then echo ABSTRACT-SEEN; fi"
    );
    for_each_caller(|caller, store| {
        let out = run_sh(caller, store, &[], &script);
        ok(&out, caller);
        assert_eq!(out.stdout, "lo\n", "{caller:?}: {out:?}");
        // The same probes see the host with --network host: they can fail.
        let out = run_sh(caller, store, &["--network", "host"], &script);
        ok(&out, caller);
        assert!(out.stdout.contains("TCP-REACHED"), "{caller:?}: {out:?}");
        assert!(out.stdout.contains("ABSTRACT-SEEN"), "{caller:?}: {out:?}");
    });
}

#[test]
fn mountinfo_shows_no_host_paths() {
    for_each_caller(|caller, store| {
        let out = run_sh(caller, store, &[], "cat /proc/self/mountinfo");
        ok(&out, caller);
        let rootfs = caller.rootfs();
        for host in [
            store.to_str().unwrap(),
            rootfs.to_str().unwrap(),
            "/tmp/",
            "/work",
        ] {
            assert!(
                !out.stdout.contains(host),
                "{caller:?}: {host} in\n{}",
                out.stdout
            );
        }
        let root_line = out
            .stdout
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .unwrap();
        assert!(root_line.contains(" - overlay "), "{root_line}");
    });
}

#[test]
fn proc_and_sys_are_protected() {
    let script = "[ -e /proc/sysrq-trigger ] && echo HAS-SYSRQ; \
                  echo h > /proc/sysrq-trigger && echo SYSRQ; \
                  echo x > /proc/sys/kernel/hostname && echo PROCSYS; \
                  touch /sys/kernel/x && echo SYS; \
                  for f in /proc/kcore /proc/keys /proc/timer_list; do [ -e $f ] && echo \"masked $f $(wc -c < $f)\"; done; \
                  [ -d /proc/acpi ] && echo \"masked /proc/acpi $(ls /proc/acpi | wc -l)\"; \
                  grep -E ' /proc/sys | /proc/sysrq-trigger | /sys ' /proc/self/mountinfo | cut -d' ' -f5,6";
    for_each_caller(|caller, store| {
        let out = run_sh(caller, store, &[], script);
        ok(&out, caller);
        let lines: Vec<&str> = out.stdout.lines().collect();
        for escaped in ["SYSRQ", "PROCSYS", "SYS"] {
            assert!(
                !lines.contains(&escaped),
                "{caller:?}: write to {escaped} worked: {out:?}"
            );
        }
        let masked: Vec<&&str> = lines.iter().filter(|l| l.starts_with("masked ")).collect();
        assert!(masked.len() >= 2, "{caller:?}: {out:?}");
        for m in masked {
            assert!(m.ends_with(" 0"), "{caller:?}: not empty: {m}");
        }
        let mut read_only = vec!["/sys", "/proc/sys"];
        if lines.contains(&"HAS-SYSRQ") {
            read_only.push("/proc/sysrq-trigger");
        }
        for mount in read_only {
            assert!(
                lines.iter().any(|l| l.starts_with(&format!("{mount} ro,"))),
                "{caller:?}: {mount} not read-only: {out:?}"
            );
        }
        assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    });
}

#[test]
fn device_nodes_cannot_be_made_and_dev_is_minimal() {
    for_each_caller(|caller, store| {
        let out = run_sh(
            caller,
            store,
            &[],
            "mknod /tmp/mem c 1 1 && echo MKNOD; ls /dev | tr '\\n' ' '; echo; echo ok > /dev/null && head -c 4 /dev/zero | wc -c",
        );
        ok(&out, caller);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert!(!lines.contains(&"MKNOD"), "{caller:?}: {out:?}");
        let mut devs: Vec<&str> = lines[0].split_whitespace().collect();
        devs.sort();
        assert_eq!(
            devs,
            [
                "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
                "stdout", "tty", "urandom", "zero"
            ]
        );
        assert_eq!(lines[1], "4");
    });
}

#[test]
fn double_chroot_escape_fails() {
    let Some(probe) = run_support::escape_probe() else {
        return;
    };
    let marker = tempfile::Builder::new()
        .prefix("rsafe-host-only-")
        .tempfile_in("/tmp")
        .unwrap();
    let marker = marker.path().to_str().unwrap().to_string();
    if support::is_root() {
        // The probe works: under plain chroot it escapes.
        let out = Command::new("chroot")
            .arg(&probe)
            .args(["/escape", &marker])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "ESCAPED",
            "{out:?}"
        );
    }
    let volume = format!("{}:/probe:ro", probe.display());
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let out = run(
            caller,
            store,
            &[
                // The escape needs chroot(2), which the default policy drops: give it back,
                // so that what stops the escape is pivot_root, not a missing capability.
                "--cap-add",
                "SYS_CHROOT",
                "-v",
                &volume,
                "-w",
                "/probe",
                rootfs.to_str().unwrap(),
                "/probe/escape",
                &marker,
            ],
        );
        ok(&out, caller);
        assert_eq!(out.stdout.trim(), "CONTAINED", "{caller:?}: {out:?}");
    });
}

#[test]
fn root_filesystem_writable_layer_and_read_only() {
    for_each_caller(|caller, store| {
        let out = run_sh(
            caller,
            store,
            &[],
            "echo new > /etc/new && echo appended >> /etc/passwd && cat /etc/new",
        );
        ok(&out, caller);
        assert_eq!(out.stdout, "new\n");
        // The image itself is untouched.
        assert!(!caller.rootfs().join("etc/new").exists());
        let out = run_sh(
            caller,
            store,
            &["--read-only"],
            "touch /etc/x && echo WROTE; touch /tmp/x && echo WROTE-TMP; true",
        );
        ok(&out, caller);
        assert!(!out.stdout.contains("WROTE"), "{caller:?}: {out:?}");
        assert!(out.stderr.contains("Read-only file system"));
        let out = run_sh(
            caller,
            store,
            &["--read-only", "--tmpfs", "/tmp:size=1m"],
            "echo x > /tmp/x && cat /tmp/x && grep -c ' /tmp .* - tmpfs ' /proc/self/mountinfo",
        );
        ok(&out, caller);
        assert_eq!(out.stdout, "x\n1\n");
    });
}

#[test]
fn root_owned_rootfs_is_id_mapped_for_root() {
    if !support::is_root() || !run_support::userns_works() {
        return;
    }
    let store = support::temp_root();
    let out = run_sh(
        Caller::Host,
        store.path(),
        &[],
        "stat -c '%u:%g' /bin/busybox /root; echo x >> /etc/group && echo COPIED-UP",
    );
    ok(&out, Caller::Host);
    assert_eq!(out.stdout, "0:0\n0:0\nCOPIED-UP\n");
}

#[test]
fn volumes_read_only_and_read_write() {
    for_each_caller(|caller, store| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in"), "from host\n").unwrap();
        support::sh(Command::new("chmod").arg("-R").arg("a+rwX").arg(dir.path()));
        let ro = format!("{}:/data:ro", dir.path().display());
        let rw = format!("{}:/rw", dir.path().display());
        let out = run_sh(
            caller,
            store,
            &["-v", &ro, "-v", &rw],
            "cat /data/in; echo x > /data/ro && echo RO-WROTE; echo y > /rw/out && echo RW-WROTE",
        );
        ok(&out, caller);
        assert_eq!(out.stdout, "from host\nRW-WROTE\n", "{caller:?}: {out:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out")).unwrap(),
            "y\n"
        );
        assert!(!dir.path().join("ro").exists());
    });
}

#[test]
fn named_volumes_persist_and_read_only_is_enforced() {
    for_each_caller(|caller, store| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        // Written by one run (also as another id of the container, where it has one)...
        let out = run_sh(
            caller,
            store,
            &["--rm", "-v", "data:/data"],
            "echo one > /data/f; mkdir /data/d; echo two > /data/d/g; chown -R 1000:1000 /data/d 2>/dev/null; true",
        );
        ok(&out, caller);
        // ... read by the next.
        let out = run_sh(
            caller,
            store,
            &["--rm", "-v", "data:/data"],
            "cat /data/f /data/d/g",
        );
        ok(&out, caller);
        assert_eq!(out.stdout, "one\ntwo\n", "{caller:?}: {out:?}");
        let out = run_sh(
            caller,
            store,
            &["--rm", "-v", "data:/data:ro"],
            "cat /data/f; echo x > /data/new && echo WROTE; true",
        );
        ok(&out, caller);
        assert_eq!(out.stdout, "one\n", "{caller:?}: {out:?}");
        assert!(out.stderr.contains("Read-only file system"), "{out:?}");
        let data = store.join("volumes/data/_data");
        assert!(!data.join("new").exists());
        assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "one\n");

        let ls = rsafe(&["volume", "ls", "-q"]);
        assert_eq!(ls.stdout, "data\n", "{caller:?}: {ls:?}");
        let inspect = rsafe(&["volume", "inspect", "data"]);
        let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
        assert_eq!(json[0]["Mountpoint"], data.to_str().unwrap());

        // A volume a running container mounts is not removed.
        let mut running = caller
            .command(store)
            .args(["run", "--name", "busy", "-v", "data:/data"])
            .arg(caller.rootfs())
            .args(["/bin/sh", "-c", "echo up; sleep 30"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut up = [0u8; 3];
        running.stdout.take().unwrap().read_exact(&mut up).unwrap();
        let rm = rsafe(&["volume", "rm", "data"]);
        assert_eq!(rm.code, 1, "{caller:?}: {rm:?}");
        assert_eq!(
            rm.stderr,
            "rsafe: cannot remove volume data: volume data is in use by container busy (running)\n"
        );
        assert!(rsafe(&["rm", "-f", "busy"]).code == 0);
        running.wait().unwrap();
        let rm = rsafe(&["volume", "rm", "data"]);
        assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");
        assert!(!store.join("volumes/data").exists(), "{caller:?}");
        assert_eq!(rsafe(&["volume", "ls", "-q"]).stdout, "");

        // Names that are neither a volume nor a path: one line each.
        for bad in ["bad name:/x", "a$b:/x", "-v:/x", "~/x:/x"] {
            let out = run_sh(caller, store, &[&format!("--volume={bad}")], "true");
            assert_eq!(out.code, 125, "{bad}: {out:?}");
            assert_eq!(out.stderr.lines().count(), 1, "{bad}: {out:?}");
            assert!(out.stderr.starts_with("rsafe: volume "), "{out:?}");
        }
        for bad in [".hidden", "a/b"] {
            let out = rsafe(&["volume", "create", bad]);
            assert_eq!(out.code, 1, "{out:?}");
            assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
            assert!(out.stderr.contains("volume name"), "{out:?}");
        }
    });
}

#[test]
fn a_new_volume_starts_with_the_images_files() {
    for_each_caller(|caller, store| {
        let rootfs = run_support::rootfs_with_data_dir(caller);
        let rootfs = rootfs.to_str().unwrap();
        let probe = "stat -c '%u:%g %a' /data; cat /data/from-image /data/sub/nested; readlink /data/abs-link; readlink /data/rel-link";
        let plain = run(caller, store, &["--rm", rootfs, "sh", "-c", probe]);
        ok(&plain, caller);
        let out = run(
            caller,
            store,
            &["--rm", "-v", "seeded:/data", rootfs, "sh", "-c", probe],
        );
        ok(&out, caller);
        // Owner, mode, contents and links as the image has them.
        assert_eq!(out.stdout, plain.stdout, "{caller:?}: {out:?}");
        let data = store.join("volumes/seeded/_data");
        // The links were copied as links, not read through on the host or in the container.
        assert_eq!(
            std::fs::read_link(data.join("abs-link")).unwrap(),
            Path::new("/etc/shadow")
        );
        assert!(
            data.join("abs-link")
                .symlink_metadata()
                .unwrap()
                .is_symlink()
        );
        // Extended attributes too.
        let xattr = |path: &Path, name: &str| {
            let mut value = [0u8; 64];
            let n = rustix::fs::getxattr(path, name, &mut value[..]).unwrap_or_else(|e| {
                panic!("{caller:?}: {name} of {}: {e}", path.display());
            });
            String::from_utf8_lossy(&value[..n]).into_owned()
        };
        assert_eq!(xattr(&data.join("from-image"), "user.origin"), "image");
        assert_eq!(xattr(&data.join("sub"), "user.kind"), "directory");
        // Only a volume with nothing in it is filled: what a run left stays as it is.
        let out = run(
            caller,
            store,
            &[
                "--rm",
                "-v",
                "seeded:/data",
                rootfs,
                "sh",
                "-c",
                "rm /data/from-image; echo mine > /data/own",
            ],
        );
        ok(&out, caller);
        let out = run(
            caller,
            store,
            &["--rm", "-v", "seeded:/data", rootfs, "ls", "/data"],
        );
        assert_eq!(
            out.stdout, "abs-link\nown\nrel-link\nsub\n",
            "{caller:?}: {out:?}"
        );
        // nocopy: an empty volume stays empty.
        let out = run(
            caller,
            store,
            &[
                "--rm",
                "-v",
                "bare:/data:nocopy",
                rootfs,
                "ls",
                "-A",
                "/data",
            ],
        );
        ok(&out, caller);
        assert_eq!(out.stdout, "", "{caller:?}: {out:?}");
    });
}

#[test]
fn volume_target_symlink_stays_in_the_container() {
    let name = "rsafe-evil-volume-target";
    let host_target = Path::new("/tmp").join(name);
    if host_target.exists() {
        // Left by something else: the check below could not tell.
        std::fs::remove_dir_all(&host_target).unwrap();
    }
    for_each_caller(|caller, store| {
        let rootfs = run_support::rootfs_with_escaping_symlink(caller, name);
        let src = tempfile::tempdir().unwrap();
        support::sh(Command::new("chmod").arg("a+rwx").arg(src.path()));
        let vol = format!("{}:/data", src.path().display());
        let out = run(
            caller,
            store,
            &[
                "-v",
                &vol,
                rootfs.to_str().unwrap(),
                "/bin/sh",
                "-c",
                &format!("echo x > /data/f; cut -d' ' -f5 /proc/self/mountinfo | grep {name}"),
            ],
        );
        ok(&out, caller);
        // The symlink was followed inside the container's root, not the host's.
        assert_eq!(
            out.stdout.trim(),
            format!("/tmp/{name}"),
            "{caller:?}: {out:?}"
        );
        assert!(
            !host_target.exists(),
            "{caller:?}: mount target created on the host"
        );
        assert_eq!(
            std::fs::read_to_string(src.path().join("f")).unwrap(),
            "x\n"
        );
    });
}

#[test]
fn environment_workdir_and_user() {
    let env_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(env_file.path(), "# settings\nFROM_FILE=file\nBOTH=file\n").unwrap();
    support::sh(Command::new("chmod").arg("a+r").arg(env_file.path()));
    let env_path = env_file.path().to_str().unwrap();
    for_each_caller(|caller, store| {
        let out = run_sh(
            caller,
            store,
            &[
                "-e",
                "K=V",
                "--env-file",
                env_path,
                "-e",
                "BOTH=flag",
                "-w",
                "/srv/app",
            ],
            "echo $K $FROM_FILE $BOTH $HOME; pwd",
        );
        ok(&out, caller);
        assert_eq!(out.stdout, "V file flag /root\n/srv/app\n");

        let out = run_sh(
            caller,
            store,
            &["--user", "1000:1000"],
            "id -u; id -g; echo $HOME",
        );
        if caller == Caller::User {
            // Only root exists in a single-id map; the message says why.
            assert_eq!(out.code, 125, "{out:?}");
            assert!(out.stderr.contains("not mapped"), "{out:?}");
            return;
        }
        ok(&out, caller);
        assert_eq!(
            out.stdout, "1000\n1000\n/home/app\n",
            "HOME from /etc/passwd"
        );
        let out = run_sh(
            caller,
            store,
            &["--user", "app", "-w", "/home/app"],
            "id; touch mine && echo TOUCHED",
        );
        ok(&out, caller);
        assert!(
            out.stdout.starts_with("uid=1000(app) gid=1000(app)"),
            "{out:?}"
        );
        let out = run_sh(caller, store, &["--user", "nosuchuser"], "true");
        assert_eq!(out.code, 125);
        assert!(out.stderr.contains("nosuchuser"), "{out:?}");
    });
}

#[test]
fn exit_codes() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let code = |args: &[&str]| {
            let mut all = vec![rootfs];
            all.extend(args);
            run(caller, store, &all)
        };
        assert_eq!(code(&["true"]).code, 0);
        assert_eq!(code(&["sh", "-c", "exit 3"]).code, 3);
        assert_eq!(code(&["sh", "-c", "kill -9 $$"]).code, 137);
        // pid 1 itself: its namespace cannot even SIGKILL it, but its own exit code is passed on.
        assert_eq!(
            run(
                caller,
                store,
                &["--init=false", rootfs, "sh", "-c", "exit 9"]
            )
            .code,
            9
        );
        let missing = code(&["no-such-command"]);
        assert_eq!(missing.code, 127, "{missing:?}");
        assert!(
            missing.stderr.contains("no-such-command: not found"),
            "{missing:?}"
        );
        let not_exec = code(&["/etc/passwd"]);
        assert_eq!(not_exec.code, 126, "{not_exec:?}");
        let not_dir = run(caller, store, &["/nonexistent-rootfs", "true"]);
        assert_eq!(not_dir.code, 125);
        assert!(not_dir.stderr.starts_with("rsafe: "), "{not_dir:?}");
    });
}

/// The container's first process exists before its directory does (rsafe makes the directory
/// while the process makes its network namespace): when the directory cannot be made, the run
/// fails with the reason, and that process is gone, killed rather than left waiting.
#[test]
fn a_run_that_cannot_make_its_directory_leaves_no_process_behind() {
    use std::os::unix::fs::PermissionsExt;
    for_each_caller(|caller, store| {
        if caller == Caller::Host && support::is_root() {
            // Root writes through any mode: nothing here makes the directory fail.
            return;
        }
        let containers = store.join("containers");
        ok(&run_sh(caller, store, &["--rm"], "true"), caller);
        std::fs::set_permissions(&containers, std::fs::Permissions::from_mode(0o555)).unwrap();
        let out = run_sh(caller, store, &["--rm"], "echo never");
        std::fs::set_permissions(&containers, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
        assert!(
            out.stderr.contains("Permission denied"),
            "{caller:?}: {out:?}"
        );
        assert_eq!(out.stdout, "", "{caller:?}: {out:?}");
        assert_eq!(
            std::fs::read_dir(&containers).unwrap().count(),
            0,
            "{caller:?}"
        );
        // No process of that run is left: before Go, the container's first process still has
        // rsafe's command line, store path included.
        let leftover: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| {
                let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                cmdline
                    .contains(store.to_str().unwrap())
                    .then(|| format!("{pid}: {cmdline}"))
            })
            .collect();
        assert!(leftover.is_empty(), "{caller:?}: {leftover:?}");
    });
}

#[test]
fn rm_removes_the_container_and_its_writable_layer() {
    for_each_caller(|caller, store| {
        let containers = store.join("containers");
        let count = || std::fs::read_dir(&containers).map_or(0, |d| d.count());
        let out = run_sh(caller, store, &["--rm"], "echo x > /written");
        ok(&out, caller);
        assert_eq!(count(), 0, "{caller:?}");
        // Also when the files belong to another id of the container.
        let out = run_sh(
            caller,
            store,
            &["--rm"],
            "mkdir -p /d/e && touch /d/e/f && chown -R 1000:1000 /d 2>/dev/null; chmod 700 /d; true",
        );
        ok(&out, caller);
        assert_eq!(count(), 0, "{caller:?}");
        let out = run_sh(
            caller,
            store,
            &["--name", "kept"],
            "echo x > /written; exit 4",
        );
        assert_eq!(out.code, 4);
        let dir = std::fs::read_dir(&containers)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert_eq!(
            std::fs::read_to_string(dir.join("upper/written")).unwrap(),
            "x\n"
        );
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap())
                .unwrap();
        assert_eq!(state["status"], "exited");
        assert_eq!(state["code"], 4);
        assert_eq!(state["name"], "kept");
        let dup = run_sh(caller, store, &["--name", "kept"], "true");
        assert_eq!(dup.code, 125);
        assert!(dup.stderr.contains("is already in use"), "{dup:?}");
    });
}

/// Root, user namespaces, and a memory controller (v1 or v2) to put limits in; required in CI.
fn root_with_memory_cgroup() -> bool {
    if !support::is_root() || !run_support::userns_works() {
        return false;
    }
    let memory = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.contains("memory"));
    support::have("a memory cgroup controller", memory)
}

#[test]
fn cgroup_limits_as_root() {
    if !root_with_memory_cgroup() {
        return;
    }
    let store = support::temp_root();
    let store = store.path();
    // 64 MiB cannot hold a 100 MB buffer: the OOM killer ends it with SIGKILL.
    let out = run_sh(
        Caller::Host,
        store,
        &["--memory", "64m"],
        "dd if=/dev/zero of=/dev/null bs=100M count=1",
    );
    assert_eq!(out.code, 137, "{out:?}");
    let out = run_sh(
        Caller::Host,
        store,
        &["--memory", "256m"],
        "dd if=/dev/zero of=/dev/null bs=100M count=1",
    );
    assert_eq!(out.code, 0, "{out:?}");
    // A fork bomb stops at the pids limit.
    let bomb =
        "i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; set -- /proc/[0-9]*; echo $#";
    let out = run_sh(
        Caller::Host,
        store,
        &["--pids-limit", "10", "--cpus", "0.5"],
        bomb,
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("can't fork"), "{out:?}");
    let out = run_sh(Caller::Host, store, &[], bomb);
    ok(&out, Caller::Host);
    assert!(out.stdout.trim().parse::<u32>().unwrap() > 40);
    assert!(!out.stderr.contains("warning"), "{out:?}");
    // The cgroups a run made are gone after it, and were real while it ran. (Checked by the
    // run's own state: other tests start containers with cgroups at the same time.)
    let out = run_sh(
        Caller::Host,
        store,
        &[
            "--name",
            "limited",
            "--memory",
            "64m",
            "--pids-limit",
            "10",
            "--cpus",
            "1",
        ],
        "cat /proc/self/cgroup",
    );
    ok(&out, Caller::Host);
    assert!(
        out.stdout.lines().any(|l| l.ends_with(":pids:/")),
        "cgroup namespace: {out:?}"
    );
    let state = state_of(store, "limited");
    let dirs = state["cgroup"]["dirs"].as_array().unwrap();
    // memory, pids, cpu, and the v1 freezer (for `rsafe pause`) where that hierarchy is.
    let freezer = Path::new("/sys/fs/cgroup/freezer/tasks").exists();
    assert_eq!(dirs.len(), 3 + usize::from(freezer), "{state}");
    let in_freezer = |d: &serde_json::Value| d[0].as_str().unwrap().contains("/freezer/");
    assert_eq!(dirs.iter().any(in_freezer), freezer, "{state}");
    for d in dirs {
        let path = d[0].as_str().unwrap();
        assert!(path.contains(state["id"].as_str().unwrap()), "{path}");
        assert!(!Path::new(path).exists(), "{path} left behind");
    }
}

#[test]
fn oom_kill_is_reported_in_words() {
    if !root_with_memory_cgroup() {
        return;
    }
    let store = support::temp_root();
    let store = store.path();
    const OOM_LINE: &str = "rsafe: killed: out of memory (limit 64 MiB)\n";
    // The workload itself (dd, exec'd by sh) and the end of a pipeline the shell waits for.
    for script in [
        "dd if=/dev/zero of=/dev/null bs=100M count=1",
        "head -c 200m /dev/zero | tail",
    ] {
        let out = run_sh(Caller::Host, store, &["--rm", "--memory", "64m"], script);
        assert_eq!(out.code, 137, "{script}: {out:?}");
        assert_eq!(
            out.stderr
                .lines()
                .filter(|l| l.starts_with("rsafe:"))
                .count(),
            1,
            "{script}: {out:?}"
        );
        assert!(out.stderr.contains(OOM_LINE), "{script}: {out:?}");
    }
    // 137 from an ordinary SIGKILL, under the same limit: no OOM claimed.
    let out = run_sh(
        Caller::Host,
        store,
        &["--rm", "--memory", "64m"],
        "kill -9 $$",
    );
    assert_eq!(out.code, 137, "{out:?}");
    assert!(!out.stderr.contains("out of memory"), "{out:?}");
    // A killed child the workload survives: its own exit code, and a warning.
    let out = run_sh(
        Caller::Host,
        store,
        &["--rm", "--memory", "64m"],
        "head -c 200m /dev/zero | tail; exit 3",
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains(
            "rsafe: warning: out of memory (limit 64 MiB): the kernel killed 1 process in the container"
        ),
        "{out:?}"
    );
    assert!(!out.stderr.contains("rsafe: killed"), "{out:?}");
    // A kept container remembers it: `ps -a` says why it ended.
    for (name, script) in [
        ("oom", "head -c 200m /dev/zero | tail"),
        ("kill9", "kill -9 $$"),
    ] {
        let out = run_sh(
            Caller::Host,
            store,
            &["--name", name, "--memory", "64m"],
            script,
        );
        assert_eq!(out.code, 137, "{out:?}");
    }
    let ps = rsafe_cmd(Caller::Host, store, &["ps", "-a"]);
    let line = |name: &str| {
        ps.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} not in {ps:?}"))
            .to_string()
    };
    assert!(
        line("oom").contains("Exited (137, out of memory)"),
        "{ps:?}"
    );
    assert!(line("kill9").contains("Exited (137)"), "{ps:?}");
    assert!(!line("kill9").contains("out of memory"), "{ps:?}");
}

/// The `state.json` of the container named `name`.
fn state_of(store: &Path, name: &str) -> serde_json::Value {
    for entry in std::fs::read_dir(store.join("containers")).unwrap() {
        let file = entry.unwrap().path().join("state.json");
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        if state["name"] == name {
            return state;
        }
    }
    panic!("no container {name} in {}", store.display());
}

/// Rootless here (no writable cgroup) each limit says on every run, without --verbose, what
/// it does instead, with its own controller's reason: the pid limit per user (RLIMIT_NPROC),
/// memory and CPU not at all. No RLIMIT_AS: it would kill Go and Java runtimes at start.
#[test]
fn rootless_limits_say_what_they_do_instead() {
    if !support::is_root() || !run_support::userns_works() || support::test_user().is_none() {
        return;
    }
    let store = support::temp_root();
    let bomb = "i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; echo UNLIMITED";
    let out = run_sh(
        Caller::User,
        store.path(),
        &["--pids-limit", "10", "--memory", "64m", "--cpus", "1"],
        bomb,
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("can't fork"), "{out:?}");
    for said in [
        "rsafe: warning: pids limit 10 is enforced per user, not for the whole container: no writable pids cgroup (cannot create /sys/fs/cgroup/pids/",
        "each user in the container may have 10 processes (RLIMIT_NPROC)",
        "rsafe: warning: memory limit 64 MiB is NOT enforced: no writable memory cgroup (cannot create /sys/fs/cgroup/memory/",
        "rsafe: warning: cpu limit 1 is NOT enforced: no writable cpu cgroup (cannot create /sys/fs/cgroup/cpu",
    ] {
        assert!(out.stderr.contains(said), "missing {said:?}: {out:?}");
    }
    // No address-space cap stands in for memory: a 1 GiB reservation (what Go's runtime
    // makes at start) and a 100 MB allocation both work under --memory 64m.
    let out = run_sh(
        Caller::User,
        store.path(),
        &["--memory", "64m"],
        "ulimit -v; dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null && echo allocated",
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "unlimited\nallocated\n", "{out:?}");
    // The policy's own pid limit (a fork-bomb guard, not asked for) is said with --verbose.
    let out = run_sh(Caller::User, store.path(), &[], "true");
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    let out = run_sh(Caller::User, store.path(), &["--verbose"], "true");
    assert!(
        out.stderr
            .contains("rsafe: policy pids limit 4096 is enforced per user"),
        "{out:?}"
    );
}

#[test]
fn init_forwards_signals_and_reaps_orphans() {
    if !run_support::userns_works() {
        return;
    }
    for caller in Caller::all() {
        let store = support::temp_root();
        let rootfs = caller.rootfs();
        let mut proc = caller
            .command(store.path())
            .arg("run")
            .arg(&rootfs)
            .args(["/bin/sh", "-c", "trap 'echo TERM; exit 42' TERM; (sleep 0.1 &); echo ready; while :; do sleep 0.1; done"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = proc.stdout.take().unwrap();
        let mut buf = [0u8; 6];
        stdout.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ready\n");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let zombies = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "ps -o stat= --ppid $(pgrep -P {} | head -1) 2>/dev/null | grep -c Z",
                    proc.id()
                ),
            ])
            .output()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(proc.id() as i32);
        // setpriv execs rsafe in place, so the pid is rsafe's either way.
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = proc.wait().unwrap();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        assert_eq!(status.code(), Some(42), "{caller:?}: {rest}");
        assert_eq!(rest, "TERM\n");
        assert_eq!(
            String::from_utf8_lossy(&zombies.stdout).trim(),
            "0",
            "{caller:?}: zombies"
        );
    }
}

#[test]
fn tty_gives_the_container_its_own_terminal() {
    if !support::have("script (util-linux)", support::tool("script"))
        || !run_support::userns_works()
    {
        return;
    }
    for caller in Caller::all() {
        let store = support::temp_root();
        let rootfs = caller.rootfs();
        let rsafe_cmd = caller.command(store.path());
        let line = format!(
            "stty cols 91 rows 33; {} run -it {} /bin/sh",
            shell_words(&rsafe_cmd),
            rootfs.display()
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
        assert!(
            stdout.contains("T=/dev/pts/0 S=33 91 E=xterm"),
            "{caller:?}: {stdout}"
        );
        assert_eq!(out.status.code(), Some(5), "{caller:?}: {stdout}");
    }
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

/// `/proc/self/status` fields of a shell in the container.
fn status(
    caller: Caller,
    store: &Path,
    flags: &[&str],
) -> std::collections::HashMap<String, String> {
    let out = run_sh(caller, store, flags, "cat /proc/self/status");
    ok(&out, caller);
    out.stdout
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn capabilities_no_new_privs_and_seccomp_from_inside() {
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID NET_BIND_SERVICE: the default policy.
    let default_caps = format!("{:016x}", 0b100_1111_1011);
    for_each_caller(|caller, store| {
        let st = status(caller, store, &[]);
        assert_eq!(st["CapEff"], default_caps, "{caller:?}");
        assert_eq!(st["CapBnd"], default_caps, "{caller:?}");
        assert_eq!(st["CapInh"], "0000000000000000");
        assert_eq!(st["CapAmb"], "0000000000000000");
        assert_eq!(st["NoNewPrivs"], "1");
        assert_eq!(st["Seccomp"], "2");
        let st = status(caller, store, &["--policy", "strict"]);
        assert_eq!(st["CapEff"], "0000000000000000", "{caller:?}");
        assert_eq!(st["CapBnd"], "0000000000000000", "{caller:?}");
        let st = status(
            caller,
            store,
            &["--cap-drop", "ALL", "--cap-add", "NET_RAW"],
        );
        assert_eq!(st["CapEff"], format!("{:016x}", 1u64 << 13), "{caller:?}");
        if caller != Caller::User {
            let st = status(caller, store, &["--user", "1000"]);
            assert_eq!(
                st["CapEff"], "0000000000000000",
                "{caller:?}: non-root keeps nothing"
            );
            assert_eq!(st["CapPrm"], "0000000000000000", "{caller:?}");
        }
        let st = status(caller, store, &["--seccomp", "unconfined"]);
        assert_eq!(st["Seccomp"], "0", "{caller:?}: the control run");
    });
}

#[test]
fn nested_user_namespaces_and_dangerous_syscalls_are_refused() {
    let Some(probe) = run_support::static_probe() else {
        return;
    };
    let volume = format!("{}:/probe:ro", probe.parent().unwrap().display());
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let checks = [
            "unshare_user",
            "clone_newuser",
            "keyctl",
            "bpf",
            "ptrace",
            "fork",
        ];
        let mut args = vec![
            "-v",
            volume.as_str(),
            rootfs.to_str().unwrap(),
            "/probe/probe",
        ];
        args.extend(checks);
        let out = run(caller, store, &args);
        ok(&out, caller);
        let results: std::collections::HashMap<&str, &str> = out
            .stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .collect();
        for denied in ["unshare_user", "clone_newuser", "keyctl", "bpf", "ptrace"] {
            assert_eq!(
                results.get(denied),
                Some(&"EPERM"),
                "{caller:?}: {denied}: {out:?}"
            );
        }
        assert_eq!(results.get("fork"), Some(&"OK"), "{caller:?}: {out:?}");
        // The control: without seccomp, a nested user namespace is possible.
        let mut args = vec!["--seccomp", "unconfined"];
        args.extend([
            "-v",
            volume.as_str(),
            rootfs.to_str().unwrap(),
            "/probe/probe",
            "unshare_user",
        ]);
        let out = run(caller, store, &args);
        assert_eq!(out.stdout.trim(), "unshare_user=OK", "{caller:?}: {out:?}");
    });
}

/// The compiled-filter cache (`<store>/seccomp-cache`): a later run loads what the first
/// compiled, and confines just the same; an entry anyone but the caller could have written is
/// never loaded, however it got there.
#[test]
fn seccomp_filters_come_from_the_cache_only_when_the_caller_wrote_it() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(probe) = run_support::static_probe() else {
        return;
    };
    let volume = format!("{}:/probe:ro", probe.parent().unwrap().display());
    const FROM_CACHE: &str = "compiled filter read from the store's cache";
    // One BPF instruction, `ret SECCOMP_RET_ALLOW`: the loosest filter there is.
    const ALLOW_ALL: &str = "BgAAAAAA/38=";
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let probe = || {
            let args = [
                "--verbose",
                "-v",
                volume.as_str(),
                rootfs.to_str().unwrap(),
                "/probe/probe",
                "keyctl",
            ];
            run(caller, store, &args)
        };
        let keyctl = |label: &str| {
            let out = probe();
            ok(&out, caller);
            assert_eq!(
                out.stdout.trim(),
                "keyctl=EPERM",
                "{caller:?} {label}: {out:?}"
            );
            out.stderr.contains(FROM_CACHE)
        };
        assert!(!keyctl("first run"), "nothing to read yet");
        assert!(
            keyctl("second run"),
            "{caller:?}: the second run reads the cache"
        );

        let dir = store.join("seccomp-cache");
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700, "{caller:?}");
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1, "{caller:?}: {entries:?}");
        let entry = &entries[0];
        let mut loose: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry).unwrap()).unwrap();
        loose["filter"]["programs"] = serde_json::json!([ALLOW_ALL]);
        let plant = |mode: u32, uid: u32| {
            std::fs::remove_file(entry).unwrap();
            std::fs::write(entry, loose.to_string()).unwrap();
            std::fs::set_permissions(entry, std::fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::chown(entry, Some(uid), None).unwrap();
        };

        // Writable by others: ignored (keyctl still refused), compiled again, rewritten 0600.
        plant(0o666, meta.uid());
        assert!(!keyctl("entry writable by others"));
        let rewritten = std::fs::metadata(entry).unwrap();
        assert_eq!(rewritten.mode() & 0o777, 0o600, "{caller:?}");
        assert!(keyctl("after the rewrite"));

        // Owned by another user.
        if support::is_root() {
            plant(0o600, 65534);
            assert!(!keyctl("entry owned by another user"));
        }

        // A symlink in the entry's place, to a loose entry the caller owns.
        let elsewhere = store.join("elsewhere.json");
        std::fs::write(&elsewhere, loose.to_string()).unwrap();
        std::os::unix::fs::chown(&elsewhere, Some(meta.uid()), None).unwrap();
        std::fs::remove_file(entry).unwrap();
        std::os::unix::fs::symlink(&elsewhere, entry).unwrap();
        assert!(!keyctl("symlinked entry"));

        // The control: the same loose entry, planted as the caller would write it, is loaded.
        // The cache is exactly as trustworthy as the store, which is the caller's own.
        plant(0o600, meta.uid());
        let out = probe();
        assert!(out.stderr.contains(FROM_CACHE), "{caller:?}: {out:?}");
        assert_ne!(out.stdout.trim(), "keyctl=EPERM", "{caller:?}: {out:?}");
    });
}

#[test]
fn setuid_binaries_do_not_escalate() {
    for_each_caller(|caller, store| {
        if caller == Caller::User {
            return; // only root exists in its single-id map: nobody to escalate from
        }
        let Some(rootfs) = run_support::rootfs_with_setuid_probe(caller) else {
            return;
        };
        let rootfs = rootfs.to_str().unwrap();
        let out = run(
            caller,
            store,
            &["--user", "1000", rootfs, "/probe-suid", "euid"],
        );
        ok(&out, caller);
        assert_eq!(out.stdout.trim(), "euid=1000", "{caller:?}: {out:?}");
        // The control: the same binary as root of the container does run as root, so the
        // set-uid bit is there and only no_new_privs holds it back.
        let out = run(caller, store, &[rootfs, "/probe-suid", "euid"]);
        assert_eq!(out.stdout.trim(), "euid=0", "{caller:?}: {out:?}");
    });
}

#[test]
fn landlock_confines_writes_and_tcp_to_the_policy() {
    let write = "echo x > /scratch/ok && echo SCRATCH; echo x > /dev/shm/f && echo SHM; true";
    let listen = "timeout 1 nc -l -p 5000; echo rc=$?";
    for_each_caller(|caller, store| {
        // /dev/shm is a writable mount, but the strict policy gives landlock no rule for it.
        let flags = ["--read-only", "--tmpfs", "/scratch", "--policy", "strict"];
        let out = run_sh(caller, store, &flags, write);
        ok(&out, caller);
        assert_eq!(out.stdout, "SCRATCH\n", "{caller:?}: {out:?}");
        assert!(out.stderr.contains("Permission denied"), "{out:?}");
        let out = run_sh(
            caller,
            store,
            &["--read-only", "--tmpfs", "/scratch"],
            write,
        );
        assert_eq!(
            out.stdout, "SCRATCH\nSHM\n",
            "{caller:?}: the control: {out:?}"
        );
        // TCP: strict allows no bind at all; default lets nc listen until timeout kills it.
        let out = run_sh(caller, store, &["--policy", "strict"], listen);
        assert_eq!(out.stdout.trim(), "rc=1", "{caller:?}: {out:?}");
        let out = run_sh(caller, store, &[], listen);
        assert_eq!(
            out.stdout.trim(),
            "rc=143",
            "{caller:?}: the control: {out:?}"
        );
    });
}

#[test]
fn ps_lists_and_rm_removes_containers() {
    for_each_caller(|caller, store| {
        let rsafe = |args: &[&str]| {
            let out = rsafe_cmd(caller, store, args);
            (out.code, out.stdout, out.stderr)
        };
        let out = run_sh(caller, store, &["--name", "ended-4"], "exit 4");
        assert_eq!(out.code, 4);
        let rootfs = caller.rootfs();
        let mut running = caller
            .command(store)
            .args(["run", "--name", "busy"])
            .arg(&rootfs)
            .args(["/bin/sh", "-c", "echo up; sleep 30"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut up = [0u8; 3];
        running.stdout.take().unwrap().read_exact(&mut up).unwrap();

        // `ps` lists what runs on the host (any runtime), the running rsafe container by name;
        // `ps -a` lists the store's containers, the exited one too.
        let (code, ps, _) = rsafe(&["ps"]);
        assert_eq!(code, 0);
        assert!(
            ps.lines()
                .any(|l| l.starts_with("rsafe") && l.contains("busy")),
            "{caller:?}: {ps}"
        );
        // (A name no command line holds: `ps` lists every runtime's containers, whose commands
        // may say `done`.)
        assert!(!ps.contains("ended-4"), "{ps}");
        let (_, all, _) = rsafe(&["ps", "-a"]);
        assert!(
            all.lines().any(|l| l.contains("busy") && l.ends_with("Up")),
            "{caller:?}: {all}"
        );
        assert!(
            all.lines()
                .any(|l| l.contains("ended-4") && l.ends_with("Exited (4)")),
            "{all}"
        );

        let (code, _, err) = rsafe(&["rm", "busy"]);
        assert_eq!(code, 1);
        assert!(err.contains("is running"), "{err}");
        let (code, _, err) = rsafe(&["rm", "-f", "busy", "ended-4"]);
        assert_eq!(code, 0, "{caller:?}: {err}");
        assert_eq!(running.wait().unwrap().code(), Some(137), "{caller:?}");
        let (_, all, _) = rsafe(&["ps", "-a"]);
        assert_eq!(
            all.lines().count(),
            1,
            "{caller:?}: only the header is left: {all}"
        );
        assert_eq!(
            std::fs::read_dir(store.join("containers")).unwrap().count(),
            0
        );
        let (code, _, err) = rsafe(&["rm", "nosuch"]);
        assert_eq!(code, 1);
        assert!(err.contains("no container"), "{err}");
    });
}

#[test]
fn start_runs_a_stopped_container_again_on_its_writable_layer() {
    for_each_caller(|caller, store| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let out = run_sh(
            caller,
            store,
            &["--name", "c1", "--memory", "64m", "-e", "GREETING=hi"],
            "echo x >> /f; wc -l < /f; echo $GREETING",
        );
        ok(&out, caller);
        assert_eq!(out.stdout, "1\nhi\n", "{caller:?}: {out:?}");
        // The same command, environment and writable layer: attached with -a (its output and
        // exit code), and in the background by default, as docker and podman start (the name
        // printed, the output in the log).
        let out = rsafe(&["start", "-a", "c1"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(out.stdout, "2\nhi\n", "{caller:?}: {out:?}");
        let out = rsafe(&["start", "c1"]);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, "c1\n"),
            "{caller:?}: {out:?}"
        );
        assert_eq!(rsafe(&["wait", "c1"]).stdout, "0\n", "{caller:?}");
        let logs = rsafe(&["logs", "c1"]);
        assert!(logs.stdout.ends_with("3\nhi\n"), "{caller:?}: {logs:?}");
        let (_, all, _) = {
            let o = rsafe(&["ps", "-a"]);
            (o.code, o.stdout, o.stderr)
        };
        assert!(
            all.lines()
                .any(|l| l.contains("c1") && l.ends_with("Exited (0)")),
            "{caller:?}: {all}"
        );

        // The workload's exit code; a second start of a running container is refused.
        let out = run_sh(
            caller,
            store,
            &["--name", "c2"],
            "if [ -e /second ]; then echo up; sleep 30; fi; touch /second; exit 7",
        );
        assert_eq!(out.code, 7, "{caller:?}: {out:?}");
        let mut running = caller
            .command(store)
            .args(["start", "-a", "c2"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut up = [0u8; 3];
        running.stdout.take().unwrap().read_exact(&mut up).unwrap();
        let ps = rsafe(&["ps"]);
        assert!(
            ps.stdout
                .lines()
                .any(|l| l.starts_with("rsafe") && l.contains("c2")),
            "{caller:?}: {ps:?}"
        );
        let again = rsafe(&["start", "c2"]);
        assert_eq!(again.code, 125, "{caller:?}: {again:?}");
        assert_eq!(again.stderr, "rsafe: container c2 is still running\n");
        assert_eq!(rsafe(&["rm", "-f", "c2"]).code, 0);
        assert_eq!(running.wait().unwrap().code(), Some(137), "{caller:?}");

        // rm leaves nothing behind: no state directory, no cgroup, no mount.
        let state = state_of(store, "c1");
        let rm = rsafe(&["rm", "c1"]);
        assert_eq!(rm.code, 0, "{caller:?}: {rm:?}");
        assert_eq!(
            std::fs::read_dir(store.join("containers")).unwrap().count(),
            0,
            "{caller:?}"
        );
        for d in state["cgroup"]["dirs"].as_array().into_iter().flatten() {
            assert!(
                !Path::new(d[0].as_str().unwrap()).exists(),
                "{caller:?}: {d}"
            );
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(store.to_str().unwrap()),
            "{caller:?}: {mounts}"
        );
        let out = rsafe(&["start", "c1"]);
        assert_eq!(out.code, 125);
        assert_eq!(out.stderr, "rsafe: no container \"c1\"\n");
        // A --rm container is gone once it stops: nothing to start.
        let out = run_sh(caller, store, &["--rm", "--name", "gone"], "true");
        ok(&out, caller);
        assert_eq!(rsafe(&["start", "gone"]).code, 125);
    });
}

/// `run -d`: the id once the command runs, its output in `rsafe logs`, `rsafe stop` ending it
/// with SIGTERM (then SIGKILL), and the exit recorded or, with `--rm`, the container removed.
#[test]
fn detached_containers_log_stop_and_report_failures() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        // The trap is set before the first line the test waits for: a SIGTERM sent on seeing
        // it must find the trap there.
        let script = "trap 'echo bye; exit 3' TERM; echo hello; readlink /proc/self/fd/2; while :; do sleep 0.1; done";
        let out = run(
            caller,
            store,
            &["-d", "--name", "web", rootfs, "sh", "-c", script],
        );
        ok(&out, caller);
        let id = out.stdout.trim().to_string();
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{caller:?}: {out:?}"
        );
        assert_eq!(state_of(store, "web")["status"], "running", "{caller:?}");
        // The output is the log's, not the terminal's; the log is the owner's alone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !rsafe(&["logs", "web"]).stdout.contains("hello") {
            assert!(
                std::time::Instant::now() < deadline,
                "{caller:?}: no output"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let log = store.join("containers").join(&id).join("log");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let stop = rsafe(&["stop", "web"]);
        ok(&stop, caller);
        let state = state_of(store, "web");
        assert_eq!(state["status"], "exited", "{caller:?}: {state}");
        assert_eq!(state["code"], 3, "{caller:?}: {state}");
        // The container writes through a pipe: it never holds its log file, so it can neither
        // rewrite nor truncate it.
        let logs = rsafe(&["logs", "web"]).stdout;
        let lines: Vec<&str> = logs.lines().collect();
        assert_eq!(lines.len(), 3, "{caller:?}: {logs}");
        assert_eq!((lines[0], lines[2]), ("hello", "bye"), "{caller:?}: {logs}");
        assert!(lines[1].starts_with("pipe:["), "{caller:?}: {logs}");
        // Stopping a stopped container changes nothing.
        ok(&rsafe(&["stop", "web"]), caller);
        // `start -d` runs it again in the background; its output is added to the log. As
        // docker's start, it prints the container as it was named.
        let again = rsafe(&["start", "-d", "web"]);
        ok(&again, caller);
        assert_eq!(again.stdout, "web\n", "{caller:?}: {again:?}");
        assert_eq!(state_of(store, "web")["status"], "running", "{caller:?}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while rsafe(&["logs", "web"]).stdout.matches("hello").count() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "{caller:?}: no output"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        ok(&rsafe(&["stop", "web"]), caller);
        assert_eq!(state_of(store, "web")["code"], 3, "{caller:?}");
        assert_eq!(
            rsafe(&["logs", "web"]).stdout.matches("bye").count(),
            2,
            "{caller:?}"
        );
        ok(&rsafe(&["rm", "web"]), caller);
        assert!(!log.exists());

        // A command that ignores SIGTERM is killed after the grace period; --rm removes it.
        let out = run(
            caller,
            store,
            &[
                "-d",
                "--rm",
                rootfs,
                "sh",
                "-c",
                "trap '' TERM; while :; do sleep 0.1; done",
            ],
        );
        ok(&out, caller);
        let id = out.stdout.trim().to_string();
        let stop = rsafe(&["stop", "-t", "1", &id]);
        ok(&stop, caller);
        assert!(stop.stderr.contains("killed"), "{caller:?}: {stop:?}");
        assert!(
            !store.join("containers").join(&id).exists(),
            "{caller:?}: --rm"
        );

        // A command that cannot start fails `run -d` itself, as it would `run`.
        let out = run(caller, store, &["-d", "--rm", rootfs, "/no/such/command"]);
        assert_eq!(out.code, 127, "{caller:?}: {out:?}");
        assert_eq!(out.stdout, "", "{caller:?}: {out:?}");
        assert!(
            out.stderr.contains("/no/such/command"),
            "{caller:?}: {out:?}"
        );
        // -d with stdin or a terminal: kept for `rsafe attach` (tests/attach.rs).
        let out = run(caller, store, &["-d", "-i", "--rm", rootfs, "true"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        // A container run in the foreground keeps its output too (tests/containers.rs).
        ok(
            &run(caller, store, &["--name", "fg", rootfs, "echo", "fg"]),
            caller,
        );
        let logs = rsafe(&["logs", "fg"]);
        assert_eq!(logs.stdout, "fg\n", "{caller:?}: {logs:?}");
    });
}

#[test]
fn the_runners_environment_never_reaches_the_container() {
    // Shaped like a passwd line for root, so a lookup that read it would take HOME from it.
    let secret = "x:x:0:0:x:/LEAKED-SECRET:/bin/sh";
    for_each_caller(|caller, store| {
        let rootfs = run_support::rootfs_with_passwd_from_environ(caller);
        let out = caller
            .command(store)
            .env("RSAFE_TEST_SECRET", secret)
            .args(["run"])
            .arg(&rootfs)
            .args(["/bin/sh", "-c", "echo HOME=$HOME; cat /proc/1/environ; env"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Init cannot even open its own /proc/self/environ from the container (the file of a
        // non-dumpable process belongs to the host's root), so the run may end right there;
        // either way nothing of the secret appears.
        match out.status.code() {
            Some(0) => assert!(stdout.starts_with("HOME=/\n"), "{caller:?}: {stdout}"),
            Some(125) => assert!(stderr.contains("/etc/passwd"), "{caller:?}: {stderr}"),
            other => panic!("{caller:?}: exit {other:?}: {stdout} {stderr}"),
        }
        assert!(
            !stdout.contains("LEAKED") && !stderr.contains("LEAKED"),
            "{caller:?}: {stdout} {stderr}"
        );
    });
}

#[test]
fn the_container_dies_with_rsafe() {
    if !run_support::userns_works() {
        return;
    }
    for caller in Caller::all() {
        let store = support::temp_root();
        let mut proc = caller
            .command(store.path())
            .args(["run", "--name", "killed"])
            .arg(caller.rootfs())
            .args(["/bin/sh", "-c", "echo up; sleep 60"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut up = [0u8; 3];
        proc.stdout.take().unwrap().read_exact(&mut up).unwrap();
        let children = |pid: u32| -> Vec<u32> {
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        };
        let init = children(proc.id());
        assert_eq!(
            init.len(),
            1,
            "{caller:?}: rsafe has one child, the container's init"
        );
        let workload = children(init[0]);
        assert_eq!(workload.len(), 1, "{caller:?}");
        proc.kill().unwrap();
        proc.wait().unwrap();
        let gone = |pid: u32| !Path::new(&format!("/proc/{pid}")).exists();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !(gone(init[0]) && gone(workload[0])) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            gone(init[0]) && gone(workload[0]),
            "{caller:?}: the container outlived rsafe"
        );
        // rsafe could not clean up after SIGKILL: ps calls the container Dead, rm cleans up.
        let state = state_of(store.path(), "killed");
        let ps = caller
            .command(store.path())
            .args(["ps", "-a"])
            .output()
            .unwrap();
        let ps = String::from_utf8_lossy(&ps.stdout).into_owned();
        assert!(
            ps.lines()
                .any(|l| l.contains("killed") && l.ends_with("Dead")),
            "{caller:?}: {ps}"
        );
        let rm = caller
            .command(store.path())
            .args(["rm", "killed"])
            .output()
            .unwrap();
        assert!(rm.status.success(), "{caller:?}: {rm:?}");
        for d in state["cgroup"]["dirs"].as_array().into_iter().flatten() {
            assert!(
                !Path::new(d[0].as_str().unwrap()).exists(),
                "{caller:?}: {d}"
            );
        }
        assert_eq!(
            std::fs::read_dir(store.path().join("containers"))
                .unwrap()
                .count(),
            0
        );
    }
}

#[test]
fn images_run_with_their_config() {
    for_each_caller_with_busybox_image(|caller, store, layout| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        // Entrypoint `/bin/sh -c`, Cmd `id`, User app, WorkingDir /home/app, Env.
        let out = rsafe(&["run", "--rm", "oci-busybox:latest"]);
        if caller == Caller::User {
            // A single-id map has no uid 1000 for the image's user.
            assert_eq!(out.code, 125, "{out:?}");
            assert!(out.stderr.contains("not mapped"));
        } else {
            assert_eq!(
                out.stdout, "uid=1000(app) gid=1000(app)\n",
                "{caller:?}: {out:?}"
            );
            let out = rsafe(&[
                "run",
                "--rm",
                "oci-busybox:latest",
                "echo $HOME $RSAFE_FIXTURE; pwd; touch mine && echo OK",
            ]);
            assert_eq!(
                out.stdout, "/home/app busybox\n/home/app\nOK\n",
                "{caller:?}: {out:?}"
            );
        }
        // The image's files belong to the container's root, and copy-up works.
        let out = rsafe(&[
            "run",
            "--rm",
            "oci-busybox:root",
            "stat -c %u:%g /bin/busybox /etc/passwd; echo x >> /etc/passwd && echo COPIED",
        ]);
        assert_eq!(out.stdout, "0:0\n0:0\nCOPIED\n", "{caller:?}: {out:?}");
        // --entrypoint replaces the image's, arguments its Cmd.
        let out = rsafe(&[
            "run",
            "--rm",
            "--entrypoint",
            "/bin/echo",
            "oci-busybox:root",
            "a",
            "b",
        ]);
        assert_eq!(out.stdout, "a b\n", "{caller:?}: {out:?}");
        // A layout path works too, without loading it first; a missing image is rsafe's failure.
        let out = rsafe(&["run", "--rm", &format!("{}:root", layout.display()), "true"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let out = rsafe(&["run", "--rm", "./no/such/image"]);
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
    });
}

#[test]
fn rmi_keeps_the_layers_a_stopped_container_needs() {
    for_each_caller_with_busybox_image(|caller, store, _| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let out = rsafe(&[
            "run",
            "--name",
            "keep",
            "oci-busybox:root",
            "echo run >> /f",
        ]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        // As in docker, the image a container uses keeps its last name without --force (the
        // other image, on the same layers, goes).
        let rmi = rsafe(&["rmi", "oci-busybox:root", "oci-busybox:latest"]);
        assert_eq!(rmi.code, 1, "{caller:?}: {rmi:?}");
        assert!(
            rmi.stdout
                .starts_with("Untagged: oci-busybox:latest\nDeleted: ")
                && !rmi.stdout.contains("oci-busybox:root"),
            "{caller:?}: {rmi:?}"
        );
        assert!(
            rmi.stderr.contains("stopped container keep ("),
            "{caller:?}: {rmi:?}"
        );
        // With --force every name of the image goes, and with them its blobs and (were it not
        // for the container) its extracted layers.
        let rmi = rsafe(&["rmi", "--force", "oci-busybox:root"]);
        assert_eq!(rmi.code, 0, "{caller:?}: {rmi:?}");
        assert!(rmi.stdout.contains("Deleted: sha256:"), "{rmi:?}");
        let out = rsafe(&["start", "-a", "keep"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let out = rsafe(&["start", "-a", "keep"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(rsafe(&["rm", "keep"]).code, 0);
    });
}

#[test]
fn a_container_whose_rsafe_was_killed_starts_again_with_what_it_wrote() {
    // First run: writes a line and waits to be cut off. Started again: shows that line and ends.
    const SCRIPT: &str =
        "cat /f 2>/dev/null; echo run >> /f; [ $(wc -l < /f) -ge 2 ] && exit 0; exec sleep 60";
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let mut child = caller
            .command(store)
            .args(["run", "--name", "cut", rootfs.to_str().unwrap(), "--"])
            .args(["/bin/sh", "-c", SCRIPT])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the workload has written, then SIGKILL rsafe itself: no cleanup runs,
        // the container dies with it (parent-death signal), the writable layer stays unsynced.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let written = std::fs::read_dir(store.join("containers"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|c| std::fs::metadata(c.path().join("upper/f")).is_ok_and(|m| m.len() > 0));
            if written {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{caller:?}: never wrote"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // The container goes with rsafe (its parent-death signal).
        loop {
            let ps = rsafe_cmd(caller, store, &["ps", "-a"]);
            if ps.stdout.contains("Dead") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{caller:?}: {ps:?}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = rsafe_cmd(caller, store, &["start", "-a", "cut"]);
        // The same command runs again on the same writable layer: the first run's line is there.
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(out.stdout, "run\n", "{caller:?}: {out:?}");
        assert_eq!(rsafe_cmd(caller, store, &["rm", "cut"]).code, 0);
    });
}

#[test]
fn rmi_removes_layers_a_rootless_container_extracted_with_subordinate_ids() {
    use support::hostile_images::{Layer, Layout, OCI_LAYER_GZIP, REF_NAME, gzip, host_arch};
    // One layer with a directory of image user 1000 holding a file: extracted for a rootless
    // caller with subordinate ids, it belongs to host uid (subuid base + 999), which the caller
    // itself cannot empty.
    let mut tar = tar::Builder::new(Vec::new());
    let mut entry = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        tar.append_data(&mut h, path, data).unwrap();
    };
    entry("data/", tar::EntryType::Directory, 0o755, b"");
    entry("data/f", tar::EntryType::Regular, 0o644, b"x\n");
    let tar = tar.into_inner().unwrap();
    let layer = Layer {
        blob: gzip(&tar),
        tar,
        media_type: OCI_LAYER_GZIP.into(),
    };
    let mut layout = Layout::default();
    let made = layout.image(host_arch(), &[&layer]);
    layout.entry(&made.manifest, &[(REF_NAME, "owned")]);
    let dir = support::containers::shared_tempdir("rsafe-owned-layer");
    layout.tree().write_dir(dir.path());
    for_each_caller(|caller, store| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let load = rsafe(&["load", "--name", "owned:1", dir.path().to_str().unwrap()]);
        assert_eq!(load.code, 0, "{caller:?}: {load:?}");
        // Nothing to run in it (127), but its layer is extracted into the cache first.
        let out = rsafe(&["run", "--rm", "--user", "0", "owned:1", "/nothing"]);
        assert_eq!(out.code, 127, "{caller:?}: {out:?}");
        let layer_dirs = || -> Vec<std::path::PathBuf> {
            std::fs::read_dir(store.join("layers"))
                .unwrap()
                .flatten()
                .filter(|k| k.path().is_dir())
                .flat_map(|k| std::fs::read_dir(k.path()).unwrap().flatten())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        };
        assert_eq!(layer_dirs().len(), 1, "{caller:?}");
        let rmi = rsafe(&["rmi", "owned:1"]);
        assert_eq!(rmi.code, 0, "{caller:?}: {rmi:?}");
        assert_eq!(layer_dirs(), Vec::<std::path::PathBuf>::new(), "{caller:?}");
    });
}

/// Every place the workload can write to is mounted nosuid and nodev (its writable layer, a
/// tmpfs, a volume), so a set-uid file or device node it makes there is never honoured; and
/// `/etc/hostname` says what `uname -n` says, read-only, as in docker and podman.
#[test]
fn writable_mounts_are_nosuid_nodev_and_the_hostname_agrees() {
    for_each_caller(|caller, store| {
        let script = "uname -n; cat /etc/hostname; \
            for m in / /data /scratch /etc/hostname; do \
              awk -v m=$m '$5 == m { print m, $6 }' /proc/self/mountinfo; done; \
            echo other > /etc/hostname || echo refused";
        let out = run_sh(
            caller,
            store,
            &[
                "-v",
                "data:/data",
                "--tmpfs",
                "/scratch",
                "--hostname",
                "web",
            ],
            script,
        );
        ok(&out, caller);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(&lines[..2], ["web", "web"], "{caller:?}: {out:?}");
        for (line, path) in lines[2..6]
            .iter()
            .zip(["/", "/data", "/scratch", "/etc/hostname"])
        {
            let (mount, opts) = line.split_once(' ').unwrap();
            assert_eq!(mount, path, "{caller:?}: {out:?}");
            let opts: Vec<&str> = opts.split(',').collect();
            assert!(
                opts.contains(&"nosuid") && opts.contains(&"nodev"),
                "{caller:?}: {line}"
            );
        }
        assert!(lines[5].contains("ro,"), "{caller:?}: {out:?}");
        assert_eq!(lines[6], "refused", "{caller:?}: {out:?}");
        // Without --hostname, both are the container id's first 12 characters.
        let out = run_sh(caller, store, &[], "uname -n; cat /etc/hostname");
        ok(&out, caller);
        let names: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(names.len(), 2, "{caller:?}: {out:?}");
        assert_eq!(names[0], names[1], "{caller:?}: {out:?}");
        assert_eq!(names[0].len(), 12, "{caller:?}: {out:?}");
    });
}

/// `-v` and `--tmpfs` targets that would hide or replace the container's `/`, `/proc`, `/sys`
/// or `/dev` (however the path is spelled), or a file inside `/proc`, are refused before
/// anything starts, with one line naming the flag, as runc (so docker and podman) refuses them.
/// Targets below `/dev` still work.
#[test]
fn mounts_over_the_root_and_the_kernel_views_are_refused() {
    for_each_caller(|caller, store| {
        let cases = [
            ("/", "root filesystem"),
            ("/proc/", "procfs"),
            ("//proc", "procfs"),
            ("/./proc", "procfs"),
            ("/dev/../proc", "procfs"),
            ("/sys", "sysfs"),
            ("/dev", "/dev"),
            ("/proc/sys/kernel", "inside /proc"),
        ];
        for (target, why) in cases {
            for (flag, value) in [("-v", format!("/tmp:{target}")), ("--tmpfs", target.into())] {
                let out = run_sh(caller, store, &[flag, &value], "echo RAN");
                assert_eq!(out.code, 125, "{caller:?} {flag} {value}: {out:?}");
                assert!(!out.stdout.contains("RAN"), "{caller:?}: {out:?}");
                let lines: Vec<&str> = out.stderr.lines().collect();
                assert_eq!(lines.len(), 1, "{caller:?} {flag} {value}: {out:?}");
                assert!(
                    lines[0].starts_with(&format!("rsafe: {flag} \"")) && lines[0].contains(why),
                    "{caller:?} {flag} {value}: {out:?}"
                );
            }
        }
        let out = run_sh(
            caller,
            store,
            &["--tmpfs", "/dev/shm:size=1m", "-v", "/tmp:/dev/data:ro"],
            "awk '$5 == \"/dev/shm\" || $5 == \"/dev/data\" { print $5 }' /proc/self/mountinfo",
        );
        ok(&out, caller);
        // rsafe's own /dev/shm, the --tmpfs over it, and the volume.
        let mut seen: Vec<&str> = out.stdout.lines().collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            ["/dev/data", "/dev/shm", "/dev/shm"],
            "{caller:?}: {out:?}"
        );
    });
}

/// Bind mounts the running-container audit rates high or critical (the host's `/`, a runtime
/// socket, the host's `/proc`, `/sys`, `/dev`, a sensitive host directory) are said on stderr,
/// one line each, before the container starts; the strict policy refuses them (exit 125).
/// An everyday bind mount says nothing.
#[test]
fn risky_bind_mounts_are_said_and_refused_by_the_strict_policy() {
    let dir = support::containers::shared_tempdir("rsafe-risky-binds");
    let socket = dir.path().join("docker.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::fs::create_dir(dir.path().join("plain")).unwrap();
    let sock_arg = format!("{}:/run/docker.sock", socket.display());
    let plain_arg = format!("{}:/data:ro", dir.path().join("plain").display());
    for_each_caller(|caller, store| {
        let cases = [
            (
                "/:/host:ro",
                "the host's / (ro) (container.mount.host-root, high)",
            ),
            (
                sock_arg.as_str(),
                "a runtime's API socket (rw) (container.mount.runtime-socket, critical)",
            ),
            ("/proc:/hostproc:ro", "(container.mount.proc-sys-rw, high)"),
            (
                "/etc:/hostetc",
                "(container.mount.sensitive-host-path, high)",
            ),
        ];
        for (volume, said) in cases {
            let out = run_sh(caller, store, &["-v", volume], "echo RAN");
            ok(&out, caller);
            assert_eq!(out.stdout, "RAN\n", "{caller:?}: {out:?}");
            let warnings: Vec<&str> = out.stderr.lines().collect();
            assert_eq!(warnings.len(), 1, "{caller:?} {volume}: {out:?}");
            assert!(
                warnings[0].starts_with(&format!("rsafe: warning: -v {volume} exposes "))
                    && warnings[0].ends_with(said),
                "{caller:?} {volume}: {out:?}"
            );
            let out = run_sh(
                caller,
                store,
                &["-v", volume, "--policy", "strict"],
                "echo RAN",
            );
            assert_eq!(out.code, 125, "{caller:?} {volume}: {out:?}");
            assert!(out.stdout.is_empty(), "{caller:?}: {out:?}");
            assert_eq!(out.stderr.lines().count(), 1, "{caller:?}: {out:?}");
            assert!(
                out.stderr.contains(said) && out.stderr.contains("the strict policy refuses it"),
                "{caller:?} {volume}: {out:?}"
            );
        }
        for quiet in [plain_arg.as_str(), "/etc/hostname:/x:ro"] {
            let out = run_sh(
                caller,
                store,
                &["-v", quiet, "--policy", "strict"],
                "echo RAN",
            );
            ok(&out, caller);
            // (The strict policy's limits may be said, where no cgroup can take them.)
            assert!(
                !out.stderr.contains("exposes"),
                "{caller:?} {quiet}: {out:?}"
            );
        }
    });
}

/// `--memory` below Docker's 6 MiB floor is refused with one line (exit 125) instead of a
/// container OOM-killed as it starts; the floor itself runs.
#[test]
fn memory_below_dockers_floor_is_refused() {
    for_each_caller(|caller, store| {
        for low in ["1", "4m", "6143k"] {
            let out = run_sh(caller, store, &["--memory", low], "echo RAN");
            assert_eq!(out.code, 125, "{caller:?} {low}: {out:?}");
            assert!(out.stdout.is_empty(), "{caller:?}: {out:?}");
            assert_eq!(out.stderr.lines().count(), 1, "{caller:?}: {out:?}");
            assert!(
                out.stderr.starts_with("rsafe: --memory ")
                    && out.stderr.contains("below the minimum of 6 MiB"),
                "{caller:?} {low}: {out:?}"
            );
        }
        let out = run_sh(caller, store, &["--memory", "6m"], "echo RAN");
        ok(&out, caller);
        assert_eq!(out.stdout, "RAN\n", "{caller:?}: {out:?}");
    });
}

/// `--env-file` reads what Docker reads (comments, blank lines, leading whitespace, values
/// passed through untouched, `KEY` alone taking rsafe's own value) and reports what Docker
/// refuses (`export K=v`, a name with whitespace) as `FILE:LINE: why`, exit 125, never
/// dropping it silently.
#[test]
fn env_files_are_read_as_docker_reads_them() {
    let dir = support::containers::shared_tempdir("rsafe-env-file");
    let good = dir.path().join("good.env");
    std::fs::write(
        &good,
        "# settings\n\n  GREETING=hello world \nQUOTED=\"as is\"\nTERM_FROM_HOST\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.env");
    std::fs::write(&bad, "A=1\n# ok\nexport B=2\n").unwrap();
    for_each_caller(|caller, store| {
        let mut cmd = caller.command(store);
        cmd.env("TERM_FROM_HOST", "xterm-test").args([
            "run",
            "--env-file",
            good.to_str().unwrap(),
            caller.rootfs().to_str().unwrap(),
            "--",
            "/bin/sh",
            "-c",
            "echo \"[$GREETING]\" \"[$QUOTED]\" \"[$TERM_FROM_HOST]\"",
        ]);
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{caller:?}: {out:?}");
        assert_eq!(
            stdout, "[hello world ] [\"as is\"] [xterm-test]\n",
            "{caller:?}: {out:?}"
        );
        let out = run_sh(
            caller,
            store,
            &["--env-file", bad.to_str().unwrap()],
            "echo RAN",
        );
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{caller:?}: {out:?}");
        assert_eq!(
            out.stderr,
            format!(
                "rsafe: {}:3: variable name \"export B\" contains whitespace (docker does not take `export`: remove it)\n",
                bad.display()
            ),
            "{caller:?}"
        );
    });
}

/// A bad flag of `run` or `start` exits 125, as docker's and podman's do and as `run --help`
/// says (the workload's own codes stay unambiguous); other commands keep clap's 2, and
/// `--help` is 0.
#[test]
fn bad_run_flags_exit_125() {
    for_each_caller(|caller, store| {
        for (args, code) in [
            (&["run", "--bogus", "img"][..], 125),
            (&["run", "--memory", "lots", "img"], 125),
            (&["run"], 125),
            (&["start", "--bogus", "name"], 125),
            (&["images", "--bogus"], 2),
            (&["audit", "--bogus", "x"], 2),
        ] {
            let out = rsafe_cmd(caller, store, args);
            assert_eq!(out.code, code, "{caller:?} {args:?}: {out:?}");
            assert!(out.stderr.starts_with("error: "), "{caller:?}: {out:?}");
        }
        let out = rsafe_cmd(caller, store, &["run", "--help"]);
        ok(&out, caller);
        assert!(out.stdout.contains("125 when rsafe failed"), "{out:?}");
    });
}

/// `rmi` of an image a container uses is refused as docker refuses it, naming the container:
/// its last name without `--force` (with it, the name goes and the container runs on), its
/// digest while the container runs even with `--force`, and without `--force` once stopped.
#[test]
fn rmi_refuses_an_image_a_container_uses() {
    for_each_caller_with_busybox_image(|caller, store, _| {
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let inspect = rsafe(&["inspect", "oci-busybox:root"]);
        let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
        let digest = json["digest"].as_str().unwrap().to_string();
        let prefix = &digest[7..19];
        let out = rsafe(&[
            "run",
            "-d",
            "--name",
            "busy",
            "oci-busybox:root",
            "sleep 60",
        ]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let rmi = rsafe(&["rmi", "oci-busybox:root"]);
        assert_eq!(rmi.code, 1, "{caller:?}: {rmi:?}");
        assert_eq!(rmi.stdout, "", "{caller:?}: {rmi:?}");
        assert!(
            rmi.stderr.starts_with("rsafe: conflict: unable to remove oci-busybox:root (must force): the running container busy (")
                && rmi.stderr.lines().count() == 1,
            "{caller:?}: {rmi:?}"
        );
        for args in [&["rmi", prefix][..], &["rmi", "--force", prefix]] {
            let rmi = rsafe(args);
            assert_eq!(rmi.code, 1, "{caller:?}: {rmi:?}");
            assert!(
                rmi.stderr.contains(
                    "(cannot be forced): image is being used by running container busy ("
                ),
                "{caller:?}: {rmi:?}"
            );
        }
        // Another name of the same image can go: the image keeps one.
        assert_eq!(
            rsafe(&[
                "load",
                "--name",
                "second:1",
                &format!("{}:root", support::busybox_layout().display())
            ])
            .code,
            0
        );
        let rmi = rsafe(&["rmi", "second:1"]);
        assert_eq!(rmi.stdout, "Untagged: second:1\n", "{caller:?}: {rmi:?}");
        // With --force the last name goes; the container runs on, on its layers.
        let rmi = rsafe(&["rmi", "--force", "oci-busybox:root"]);
        assert_eq!(rmi.code, 0, "{caller:?}: {rmi:?}");
        assert!(
            rmi.stdout.starts_with("Untagged: oci-busybox:root\n"),
            "{rmi:?}"
        );
        let ps = rsafe(&["ps", "-a"]);
        assert!(
            ps.stdout
                .lines()
                .any(|l| l.contains("busy") && l.contains("Up")),
            "{caller:?}: {ps:?}"
        );
        assert_eq!(rsafe(&["stop", "-t", "0", "busy"]).code, 0);
        // Stopped, by digest (loaded again): refused without --force, removed with it.
        let layout = support::busybox_layout();
        assert_eq!(
            rsafe(&["load", &format!("{}:root", layout.display())]).code,
            0
        );
        let rmi = rsafe(&["rmi", prefix]);
        assert_eq!(rmi.code, 1, "{caller:?}: {rmi:?}");
        assert!(
            rmi.stderr
                .contains("(must be forced): image is being used by stopped container busy ("),
            "{caller:?}: {rmi:?}"
        );
        let rmi = rsafe(&["rmi", "--force", prefix]);
        assert_eq!(rmi.code, 0, "{caller:?}: {rmi:?}");
        let out = rsafe(&["start", "-d", "busy"]);
        assert_eq!(out.code, 0, "{caller:?}: the layers stayed: {out:?}");
        assert_eq!(rsafe(&["stop", "-t", "0", "busy"]).code, 0);
        assert_eq!(rsafe(&["rm", "busy"]).code, 0);
    });
}

/// `rsafe kill [-s SIG]` signals a running container (SIGKILL by default; the workload's
/// trap sees the signal it was sent), and `rsafe wait` prints the exit code once it has
/// ended, as `docker kill` and `docker wait` do. Killing a container that is not running, or
/// waiting for one that does not exist, is an error.
#[test]
fn kill_signals_and_wait_prints_the_exit_code() {
    for_each_caller(|caller, store| {
        let rootfs = caller.rootfs();
        let rootfs = rootfs.to_str().unwrap();
        let rsafe = |args: &[&str]| rsafe_cmd(caller, store, args);
        let trap = "trap 'exit 3' TERM; while :; do sleep 0.1; done";
        let out = run(
            caller,
            store,
            &[
                "-d", "--name", "trapper", rootfs, "--", "/bin/sh", "-c", trap,
            ],
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let out = rsafe(&["kill", "-s", "term", "trapper"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(out.stdout, "trapper\n", "{caller:?}: {out:?}");
        let out = rsafe(&["wait", "trapper"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        assert_eq!(out.stdout, "3\n", "{caller:?}: {out:?}");
        // Ended: wait answers at once, kill refuses.
        assert_eq!(rsafe(&["wait", "trapper"]).stdout, "3\n");
        let out = rsafe(&["kill", "trapper"]);
        assert_eq!(out.code, 1, "{caller:?}: {out:?}");
        assert_eq!(
            out.stderr, "rsafe: container trapper is not running\n",
            "{caller:?}"
        );

        let out = run(
            caller,
            store,
            &["-d", "--name", "sleeper", rootfs, "--", "/bin/sleep", "60"],
        );
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let out = rsafe(&["kill", "sleeper"]);
        assert_eq!(out.code, 0, "{caller:?}: {out:?}");
        let out = rsafe(&["wait", "sleeper", "trapper"]);
        assert_eq!(out.stdout, "137\n3\n", "{caller:?}: {out:?}");

        let out = rsafe(&["wait", "nosuch"]);
        assert_eq!(out.code, 1, "{caller:?}: {out:?}");
        assert!(out.stderr.contains("nosuch"), "{caller:?}: {out:?}");
        let out = rsafe(&["kill", "-s", "NOPE", "sleeper"]);
        assert_eq!(out.code, 2, "{caller:?}: {out:?}");
        // As docker's: a name that fails is said, the others are still done, exit 1.
        let out = rsafe(&["rm", "trapper", "nosuch", "sleeper"]);
        assert_eq!(out.code, 1, "{caller:?}: {out:?}");
        assert_eq!(out.stdout.lines().count(), 2, "{caller:?}: {out:?}");
        assert_eq!(out.stderr, "rsafe: no container \"nosuch\"\n", "{caller:?}");
        assert!(rsafe(&["ps", "-a", "-q"]).stdout.is_empty(), "{caller:?}");
    });
}

/// `-v SRC:DST:idmap` and `-v SRC:DST:U` on a host directory owned by the caller, and the
/// hint a plain bind gets when root runs the container: container root is then an
/// unprivileged host id that cannot write there. `idmap` leaves the disk alone (a file made
/// by container root is the caller's on the host); `U` gives the tree to container root's host
/// id without following the symlink in it; `U` on the host's `/` is refused.
#[test]
fn bind_mounts_owned_by_the_callers_files_idmap_and_u() {
    use std::os::unix::fs::MetadataExt;
    for_each_caller(|caller, store| {
        let caller_ids = match caller {
            Caller::Host => (
                nix::unistd::getuid().as_raw(),
                nix::unistd::getgid().as_raw(),
            ),
            Caller::User | Caller::UserWithSubids => support::test_user().unwrap(),
        };
        let top = tempfile::tempdir().unwrap();
        let owned_dir = |name: &str| {
            let dir = top.path().join(name);
            std::fs::create_dir_all(dir.join("sub")).unwrap();
            std::fs::write(dir.join("sub/file"), "host\n").unwrap();
            support::sh(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{}:{}", caller_ids.0, caller_ids.1))
                    .arg(top.path()),
            );
            support::sh(Command::new("chmod").arg("755").arg(top.path()).arg(&dir));
            dir
        };
        let owner = |p: &Path| {
            let m = std::fs::symlink_metadata(p).unwrap();
            (m.uid(), m.gid())
        };
        let probe =
            "touch /d/new && echo WROTE; stat -c %u /d /d/sub/file; head -1 /proc/self/uid_map";

        // Plain: as root, container root cannot write, and rsafe says why before it starts.
        let plain = owned_dir("plain");
        let arg = format!("{}:/d", plain.display());
        let out = run_sh(caller, store, &["-v", &arg], probe);
        ok(&out, caller);
        if caller == Caller::Host {
            assert!(!out.stdout.contains("WROTE"), "{out:?}");
            assert!(
                out.stderr.contains("add :idmap") && out.stderr.contains(":U"),
                "{out:?}"
            );
        } else {
            // Rootless, the caller is container root: nothing to fix, nothing said.
            assert!(
                out.stdout.starts_with("WROTE\n0\n0\n"),
                "{caller:?}: {out:?}"
            );
            assert!(!out.stderr.contains(":idmap"), "{caller:?}: {out:?}");
        }

        // idmap: the caller's files are container root's; what it makes is the caller's.
        let mapped = owned_dir("mapped");
        let arg = format!("{}:/d:idmap", mapped.display());
        let out = run_sh(caller, store, &["-v", &arg], probe);
        ok(&out, caller);
        assert!(
            out.stdout.starts_with("WROTE\n0\n0\n"),
            "{caller:?}: {out:?}"
        );
        assert!(out.stderr.is_empty(), "{caller:?}: {out:?}");
        assert_eq!(owner(&mapped.join("new")), caller_ids, "{caller:?}");
        assert_eq!(owner(&mapped.join("sub/file")), caller_ids, "{caller:?}");

        // U: the tree is given to container root's host ids; the link's target is not.
        let chowned = owned_dir("chowned");
        let outside = top.path().join("outside");
        std::fs::write(&outside, "not in the tree\n").unwrap();
        std::os::unix::fs::symlink(&outside, chowned.join("sub/link")).unwrap();
        support::sh(
            Command::new("chown")
                .arg("-h")
                .arg(format!("{}:{}", caller_ids.0, caller_ids.1))
                .arg(chowned.join("sub/link")),
        );
        let outside_owner = owner(&outside);
        let arg = format!("{}:/d:U", chowned.display());
        let out = run_sh(caller, store, &["-v", &arg], probe);
        ok(&out, caller);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[..3], ["WROTE", "0", "0"], "{caller:?}: {out:?}");
        let root_host: u32 = lines[3].split_whitespace().nth(1).unwrap().parse().unwrap();
        if caller == Caller::Host {
            assert_ne!(root_host, 0);
        } else {
            assert_eq!(root_host, caller_ids.0);
        }
        for p in ["", "sub", "sub/file", "sub/link", "new"] {
            assert_eq!(owner(&chowned.join(p)).0, root_host, "{caller:?} {p}");
        }
        assert_eq!(
            owner(&outside),
            outside_owner,
            "{caller:?}: the link was followed"
        );

        // U on the host's / is refused before anything is changed.
        let out = run_sh(caller, store, &["-v", "/:/host:U"], "true");
        assert_eq!(out.code, 125, "{caller:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{caller:?}: {out:?}");
        assert!(out.stderr.contains("refused"), "{caller:?}: {out:?}");
        assert_eq!(owner(Path::new("/")).0, 0);
    });
}
