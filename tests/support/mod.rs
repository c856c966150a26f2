//! Shared test support: real fixture images built by real tools (umoci, skopeo, busybox-static),
//! the `rsafe` binary under test with a throwaway store, and an unprivileged test user.
//!
//! Fixtures are built once per `cargo test` run (guarded by a lock file, since several test
//! binaries may build them) under `CARGO_TARGET_TMPDIR`, and are world-readable so that the
//! unprivileged test user can use them too.
#![allow(dead_code)]

pub mod audit_images;
pub mod hostile_images;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub mod confine;
pub mod containers;
pub mod debian;
pub mod registry;

/// Fixed build time: image digests are the same on every run.
pub const SOURCE_DATE_EPOCH: &str = "1700000000";
pub const CREATED: &str = "2023-11-14T22:13:20Z";
/// The unprivileged user rootless tests run as (created by `.ci/run`, or here when root).
pub const TEST_USER: &str = "rsafe-test";

/// Runs a command and panics with its output if it fails.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the test run demands every kernel feature and tool (CI sets `RSAFE_TEST_REQUIRE=1`).
pub fn required() -> bool {
    std::env::var("RSAFE_TEST_REQUIRE").is_ok_and(|v| v == "1")
}

/// Returns false (and says so) when `what` is missing and the run does not require it; panics
/// when it is missing and required. Use: `if !support::have("umoci", found) { return; }`.
pub fn have(what: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if required() {
        panic!("{what} is required (RSAFE_TEST_REQUIRE=1) but missing");
    }
    eprintln!("skipping: {what} is missing");
    false
}

/// Whether an executable is on PATH.
pub fn tool(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The shared fixture directory for this test run.
pub fn fixtures_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A short key of `source` (FNV-1a) for fixture names, so a fixture built from an edited
/// source (a probe program) is built afresh.
pub fn source_key(source: &[u8]) -> String {
    let hash = source.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Builds `name` under the fixture dir once: `build` gets a fresh path to fill. A lock file keeps
/// concurrent test binaries from building the same fixture twice.
pub fn fixture(name: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let dir = fixtures_dir();
    let dest = dir.join(name);
    let lock = File::create(dir.join(format!(".{name}.lock"))).unwrap();
    lock.lock().unwrap();
    if !dest.exists() {
        let tmp = dir.join(format!(".{name}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        let _ = fs::remove_file(&tmp);
        build(&tmp);
        fs::rename(&tmp, &dest).unwrap();
        sh(Command::new("chmod").args(["-R", "a+rX"]).arg(&dest));
    }
    dest
}

/// A busybox-static root filesystem with users root, app (1000) and nobody.
pub fn busybox_rootfs() -> PathBuf {
    fixture("rootfs-busybox", |r| {
        assert!(
            Path::new("/bin/busybox").exists(),
            "busybox-static is required (apt-get install busybox-static)"
        );
        for d in [
            "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "root",
            "home/app", "var/tmp", "run",
        ] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", r.join("bin/busybox")).unwrap();
        let list = sh(Command::new("/bin/busybox").arg("--list"));
        for applet in list.lines().filter(|a| *a != "busybox") {
            let _ = std::os::unix::fs::symlink("busybox", r.join("bin").join(applet));
        }
        fs::write(
            r.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        fs::write(
            r.join("etc/group"),
            "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n",
        )
        .unwrap();
        fs::write(r.join("etc/hostname"), "rsafe-busybox\n").unwrap();
        sh(Command::new("chmod")
            .arg("1777")
            .arg(r.join("tmp"))
            .arg(r.join("var/tmp")));
        sh(Command::new("chmod").arg("700").arg(r.join("root")));
        if is_root() {
            sh(Command::new("chown")
                .arg("1000:1000")
                .arg(r.join("home/app")));
        }
    })
}

/// An OCI image layout built with umoci from [`busybox_rootfs`], with two tags:
/// `latest` (User app, Entrypoint `/bin/sh -c`, Cmd `id`) and `root` (User 0:0).
pub fn busybox_layout() -> PathBuf {
    static ONCE: OnceLock<PathBuf> = OnceLock::new();
    ONCE.get_or_init(|| {
        let rootfs = busybox_rootfs();
        fixture("oci-busybox", |l| {
            assert!(tool("umoci"), "umoci is required (apt-get install umoci)");
            let work = tempfile::tempdir().unwrap();
            let bundle = work.path().join("bundle");
            let img = |t: &str| format!("{}:{t}", l.display());
            sh(Command::new("umoci").args(["init", "--layout"]).arg(l));
            sh(Command::new("umoci").args(["new", "--image", &img("base")]));
            sh(Command::new("umoci")
                .args(["unpack", "--image", &img("base")])
                .arg(&bundle));
            sh(Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", rootfs.display()))
                .arg(bundle.join("rootfs")));
            sh(Command::new("umoci")
                .args(["repack", "--image", &img("base")])
                .args(["--history.created", CREATED])
                .args(["--history.created_by", "rsafe-test: busybox-static rootfs"])
                .arg(&bundle));
            sh(Command::new("umoci")
                .args(["config", "--image", &img("base"), "--tag", "latest"])
                .args([
                    "--created",
                    CREATED,
                    "--history.created",
                    CREATED,
                    "--author",
                    "rsafe",
                ])
                .args(["--config.user", "app"])
                .args([
                    "--config.entrypoint",
                    "/bin/sh",
                    "--config.entrypoint",
                    "-c",
                ])
                .args(["--config.cmd", "id"])
                .args([
                    "--config.env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                ])
                .args([
                    "--config.env",
                    "HOME=/home/app",
                    "--config.env",
                    "RSAFE_FIXTURE=busybox",
                ])
                .args(["--config.workingdir", "/home/app"])
                .args([
                    "--config.label",
                    "org.opencontainers.image.title=rsafe-busybox",
                ]));
            sh(Command::new("umoci")
                .args(["config", "--image", &img("latest"), "--tag", "root"])
                .args(["--created", CREATED, "--history.created", CREATED])
                .args(["--config.user", "0:0", "--config.workingdir", "/"])
                .args(["--clear", "config.env"])
                .args([
                    "--config.env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                ])
                .args(["--config.env", "HOME=/root"]));
            sh(Command::new("umoci").args(["rm", "--image", &img("base")]));
            sh(Command::new("umoci").args(["gc", "--layout"]).arg(l));
        })
    })
    .clone()
}

/// Copies `oci:<busybox layout>:<tag>` to another transport with skopeo (e.g.
/// `docker-archive:` or `oci-archive:`), once, and returns the file.
pub fn busybox_converted(tag: &str, transport: &str, file_name: &str, dest_ref: &str) -> PathBuf {
    convert_layout(&busybox_layout(), tag, transport, file_name, dest_ref)
}

/// Copies `oci:<layout>:<tag>` to `<transport>:<file><dest_ref>` with skopeo, once per
/// `file_name` (the fixture's key), and returns the file.
pub fn convert_layout(
    layout: &Path,
    tag: &str,
    transport: &str,
    file_name: &str,
    dest_ref: &str,
) -> PathBuf {
    let dir = fixture(&format!("{file_name}.d"), |d| {
        assert!(
            tool("skopeo"),
            "skopeo is required (apt-get install skopeo)"
        );
        fs::create_dir_all(d).unwrap();
        sh(Command::new("skopeo")
            .arg("copy")
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!(
                "{transport}:{}{dest_ref}",
                d.join(file_name).display()
            )));
    });
    dir.join(file_name)
}

/// `docker save`-format tarball of `busybox:latest`, tagged `rsafe/busybox:latest`.
pub fn busybox_docker_archive() -> PathBuf {
    busybox_converted(
        "latest",
        "docker-archive",
        "busybox-docker.tar",
        ":rsafe/busybox:latest",
    )
}

/// OCI archive (a tarred OCI layout) of `busybox:latest`, ref name `latest`.
pub fn busybox_oci_archive() -> PathBuf {
    busybox_converted("latest", "oci-archive", "busybox-oci.tar", ":latest")
}

/// The `rsafe` binary, copied to a world-readable place so the unprivileged test user can run
/// it even when the checkout lives under a private home directory. One fixed place per build
/// directory (replaced atomically by each test binary), so repeated runs do not pile up copies.
pub fn rsafe_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = PathBuf::from(env!("CARGO_BIN_EXE_rsafe"));
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            src.hash(&mut h);
            h.finish()
        };
        let dir = PathBuf::from(format!("/tmp/rsafe-test-bin-{key:016x}"));
        fs::create_dir_all(&dir).unwrap();
        let tmp = tempfile::Builder::new()
            .prefix(".rsafe-")
            .tempfile_in(&dir)
            .unwrap();
        fs::copy(&src, tmp.path()).unwrap();
        sh(Command::new("chmod").arg("755").arg(&dir).arg(tmp.path()));
        let dest = dir.join("rsafe");
        tmp.persist(&dest).unwrap();
        dest
    })
    .clone()
}

/// A throwaway store directory (world-writable parent so the test user may use it too).
pub fn temp_root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rsafe-store-")
        .tempdir_in("/tmp")
        .unwrap();
    sh(Command::new("chmod").arg("777").arg(dir.path()));
    dir
}

/// `rsafe` with `--root` set to `root`, quiet, and no inherited RSAFE_* settings.
pub fn rsafe(root: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(rsafe_bin());
    cmd.env_remove("RSAFE_ROOT").arg("--root").arg(root);
    cmd
}

/// (uid, gid) of the unprivileged test user, creating the user when running as root.
pub fn test_user() -> Option<(u32, u32)> {
    let lookup = || {
        let out = Command::new("id").args(["-u", TEST_USER]).output().ok()?;
        let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        let out = Command::new("id").args(["-g", TEST_USER]).output().ok()?;
        let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        Some((uid, gid))
    };
    if let Some(ids) = lookup() {
        return Some(ids);
    }
    if is_root() {
        let _ = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", TEST_USER])
            .status();
    }
    lookup()
}

/// `rsafe` run as the unprivileged test user (through `setpriv`), with `--root` set to `root`
/// and HOME pointing at a private directory. None when there is no such user (not root).
pub fn rsafe_as_test_user(root: &Path) -> Option<assert_cmd::Command> {
    let (uid, gid) = test_user()?;
    if !is_root() {
        return None;
    }
    let mut cmd = assert_cmd::Command::new("setpriv");
    cmd.args([
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--init-groups".to_string(),
        "--inh-caps=-all".to_string(),
        "--bounding-set=-all".to_string(),
    ])
    .arg("--")
    .arg(rsafe_bin())
    .arg("--root")
    .arg(root)
    .env_remove("RSAFE_ROOT")
    .env("HOME", format!("/home/{TEST_USER}"))
    .env_remove("XDG_DATA_HOME");
    Some(cmd)
}

/// A TCP port nothing listens on right now on the host's loopback (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
