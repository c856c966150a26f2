//! Test support for `rsafe run`: who runs it (root, or the unprivileged test user with or
//! without subordinate id ranges), root filesystems each of them owns, and probe programs
//! that attack the container from inside.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    TEST_USER, busybox_rootfs, fixture, have, is_root, rsafe_bin, sh, source_key, test_user, tool,
};

/// Who starts the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Whoever runs the test suite (root in CI).
    Host,
    /// The unprivileged test user, with the capability bounding set emptied (as
    /// `support::rsafe_as_test_user` does): the set-uid `newuidmap` cannot work, so the
    /// container maps only the user's own id.
    User,
    /// The unprivileged test user as after a login: `newuidmap` works and the
    /// `/etc/subuid` range is mapped too.
    UserWithSubids,
}

impl Caller {
    /// The callers available in this test run: `Host` always, the test user only when the
    /// suite runs as root (who can switch to it).
    pub fn all() -> Vec<Caller> {
        let mut all = vec![Caller::Host];
        if is_root() && test_user().is_some() {
            all.extend([Caller::User, Caller::UserWithSubids]);
        }
        all
    }

    /// `rsafe --root <store>` run by this caller.
    pub fn command(self, store: &Path) -> Command {
        let mut cmd = match self {
            Caller::Host => Command::new(rsafe_bin()),
            Caller::User | Caller::UserWithSubids => {
                let (uid, gid) = test_user().expect("test user");
                let mut cmd = Command::new("setpriv");
                cmd.args([
                    format!("--reuid={uid}"),
                    format!("--regid={gid}"),
                    "--init-groups".to_string(),
                ]);
                if self == Caller::User {
                    // As support::rsafe_as_test_user: no capabilities even for set-uid helpers.
                    cmd.args(["--inh-caps=-all", "--bounding-set=-all"]);
                }
                cmd.arg("--")
                    .arg(rsafe_bin())
                    .env("HOME", format!("/home/{TEST_USER}"))
                    .env_remove("XDG_DATA_HOME");
                cmd
            }
        };
        cmd.env_remove("RSAFE_ROOT").arg("--root").arg(store);
        cmd
    }

    /// A busybox root filesystem this caller owns (so its container can write to it).
    pub fn rootfs(self) -> PathBuf {
        match self {
            Caller::Host => busybox_rootfs(),
            Caller::User | Caller::UserWithSubids => busybox_rootfs_of_test_user(),
        }
    }
}

/// [`busybox_rootfs`] copied and owned by the test user (its `/home/app` by the container's
/// uid 1000 in the subordinate range, as an image extracted for that user would be).
pub fn busybox_rootfs_of_test_user() -> PathBuf {
    let src = busybox_rootfs();
    fixture("rootfs-busybox-test-user", |dest| {
        let (uid, gid) = test_user().expect("test user");
        sh(Command::new("cp").arg("-a").arg(&src).arg(dest));
        sh(Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(dest));
        if let Some(start) = subid_start("/etc/subuid") {
            let app = start + 999;
            sh(Command::new("chown")
                .arg(format!("{app}:{app}"))
                .arg(dest.join("home/app")));
        }
    })
}

/// The first subordinate id of the test user in `file`.
pub fn subid_start(file: &str) -> Option<u32> {
    fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == TEST_USER).then(|| f.next()?.parse().ok())?
    })
}

/// What a container run printed and returned.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `rsafe <args>` (any command) as `caller` on `store`, and collects what happened.
pub fn rsafe_cmd(caller: Caller, store: &Path, args: &[&str]) -> Output {
    let out = caller.command(store).args(args).output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `rsafe run <args>` as `caller` with a fresh store, and collects what happened.
pub fn run(caller: Caller, store: &Path, args: &[&str]) -> Output {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    rsafe_cmd(caller, store, &all)
}

/// Runs `sh -c script` in `caller`'s busybox rootfs with extra `flags`.
pub fn run_sh(caller: Caller, store: &Path, flags: &[&str], script: &str) -> Output {
    let rootfs = caller.rootfs();
    let rootfs = rootfs.to_str().unwrap();
    let mut args: Vec<&str> = flags.to_vec();
    args.extend([rootfs, "--", "/bin/sh", "-c", script]);
    run(caller, store, &args)
}

/// Runs `check` for every caller available here, each with a fresh store.
pub fn for_each_caller(check: impl Fn(Caller, &Path)) {
    if !userns_works() {
        return;
    }
    for caller in Caller::all() {
        let store = Store::new(caller);
        check(caller, store.path());
    }
}

/// A test's store whose containers are removed (`rm -f`) when it goes, a failed test's too:
/// a `-d` container must not go on running after the store holding its state is deleted,
/// and a container `--rm` could not remove (its cgroup still busy) must not leave its
/// cgroup where no `rsafe ps -a` could find it.
pub struct Store {
    caller: Caller,
    dir: tempfile::TempDir,
}

impl Store {
    /// A fresh store for `caller`.
    pub fn new(caller: Caller) -> Store {
        Store {
            caller,
            dir: crate::support::temp_root(),
        }
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let Ok(out) = self
            .caller
            .command(self.dir.path())
            .args(["ps", "-a", "-q"])
            .output()
        else {
            return;
        };
        let ids = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut args = vec!["rm", "-f"];
        args.extend(ids.split_whitespace());
        if args.len() > 2 {
            let _ = self.caller.command(self.dir.path()).args(&args).output();
        }
    }
}

/// Whether this machine lets the test user create user namespaces (and so rsafe run at all).
pub fn userns_works() -> bool {
    have(
        "user namespaces (unshare -Ur)",
        Command::new("unshare")
            .args(["-Ur", "true"])
            .status()
            .is_ok_and(|s| s.success()),
    )
}

/// A copy of `caller`'s rootfs (same owners) whose `/data` is a symlink pointing far above the
/// root, at `/tmp/<name>`: a hostile image trying to have a volume mounted on the host.
pub fn rootfs_with_escaping_symlink(caller: Caller, name: &str) -> PathBuf {
    let base = caller.rootfs();
    let fixture_name = format!(
        "{}-evil-{name}",
        base.file_name().unwrap().to_string_lossy()
    );
    fixture(&fixture_name, |dest| {
        sh(Command::new("cp").arg("-a").arg(&base).arg(dest));
        std::os::unix::fs::symlink(
            format!("../../../../../../../../tmp/{name}"),
            dest.join("data"),
        )
        .unwrap();
    })
}

/// A directory holding a static `escape` program: the classic double-`chroot` escape. It
/// `chroot`s into the subdirectory `x` without changing directory, walks `..` far up from the
/// working directory (which is now outside its root), `chroot`s there, and reports whether
/// the host-only path given as its argument is visible: `ESCAPED` or `CONTAINED`.
pub fn escape_probe() -> Option<PathBuf> {
    if !have("a C compiler with static libc (cc -static)", tool("cc")) {
        return None;
    }
    Some(fixture("probe-escape", |dir| {
        fs::create_dir_all(dir.join("x")).unwrap();
        let src = dir.join("escape.c");
        fs::write(
            &src,
            r#"#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (chroot("x") != 0) { perror("chroot x"); return 3; }
    for (int i = 0; i < 256; i++) chdir("..");
    if (chroot(".") != 0) { perror("chroot ."); return 4; }
    puts(access(argv[1], F_OK) == 0 ? "ESCAPED" : "CONTAINED");
    return 0;
}
"#,
        )
        .unwrap();
        sh(Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(dir.join("escape"))
            .arg(&src));
        fs::remove_file(&src).unwrap();
    }))
}

/// The confinement probe (`tests/support/confine_probe.c`) linked statically, so it runs in
/// a busybox root: `probe CHECK...` prints `NAME=RESULT` lines.
pub fn static_probe() -> Option<PathBuf> {
    if !have("a C compiler with static libc (cc -static)", tool("cc")) {
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/confine_probe.c");
    let key = source_key(&fs::read(&src).unwrap());
    let dir = fixture(&format!("probe-confine-static-{key}"), |dir| {
        fs::create_dir_all(dir).unwrap();
        sh(Command::new("cc")
            .args(["-static", "-O1", "-o"])
            .arg(dir.join("probe"))
            .arg(&src));
    });
    Some(dir.join("probe"))
}

/// A copy of `caller`'s rootfs with the static probe at `/probe-suid`, set-uid and owned by the
/// rootfs owner (container root).
pub fn rootfs_with_setuid_probe(caller: Caller) -> Option<PathBuf> {
    let probe = static_probe()?;
    let base = caller.rootfs();
    let name = format!("{}-setuid", base.file_name().unwrap().to_string_lossy());
    Some(fixture(&name, |dest| {
        sh(Command::new("cp").arg("-a").arg(&base).arg(dest));
        let target = dest.join("probe-suid");
        fs::copy(&probe, &target).unwrap();
        let meta = fs::metadata(dest).unwrap();
        use std::os::unix::fs::MetadataExt;
        sh(Command::new("chown")
            .arg(format!("{}:{}", meta.uid(), meta.gid()))
            .arg(&target));
        sh(Command::new("chmod").arg("4755").arg(&target));
    }))
}

/// A copy of `caller`'s rootfs whose `/etc/passwd` is a symlink to `/proc/self/environ`: a
/// hostile image fishing for the runner's environment through the user lookup.
pub fn rootfs_with_passwd_from_environ(caller: Caller) -> PathBuf {
    let base = caller.rootfs();
    let name = format!(
        "{}-passwd-environ",
        base.file_name().unwrap().to_string_lossy()
    );
    fixture(&name, |dest| {
        sh(Command::new("cp").arg("-a").arg(&base).arg(dest));
        fs::remove_file(dest.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/proc/self/environ", dest.join("etc/passwd")).unwrap();
    })
}

/// A copy of `caller`'s rootfs (same owners) whose `/data` holds a file, a directory and
/// symlinks leading out of the root: what a new named volume at `/data` starts as a copy of.
pub fn rootfs_with_data_dir(caller: Caller) -> PathBuf {
    let base = caller.rootfs();
    let name = format!(
        "{}-data-dir-xattrs",
        base.file_name().unwrap().to_string_lossy()
    );
    fixture(&name, |dest| {
        sh(Command::new("cp").arg("-a").arg(&base).arg(dest));
        let data = dest.join("data");
        fs::create_dir_all(data.join("sub")).unwrap();
        fs::write(data.join("from-image"), "image\n").unwrap();
        fs::write(data.join("sub/nested"), "nested\n").unwrap();
        // Extended attributes a new volume's copy keeps.
        rustix::fs::setxattr(
            data.join("from-image"),
            "user.origin",
            b"image",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        rustix::fs::setxattr(
            data.join("sub"),
            "user.kind",
            b"directory",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/shadow", data.join("abs-link")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc", data.join("rel-link")).unwrap();
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(dest).unwrap();
        sh(Command::new("chown")
            .arg("-hR")
            .arg(format!("{}:{}", meta.uid(), meta.gid()))
            .arg(&data));
    })
}
