//! Seccomp profiles written by others, and the capability conditions of rsafe's own, in real
//! containers through the real binary, as root and as the unprivileged test user.
//!
//! - podman's default profile as Debian installs it (`/usr/share/containers/seccomp.json`
//!   from `golang-github-containers-common`) loads as it is: busybox and Debian workloads run
//!   under it, `/proc/self/status` says the filter is on, and a syscall it denies fails with
//!   the profile's errno (EPERM where a rule says so, ENOSYS by default). Every check has a
//!   control run with rsafe's default profile, which answers differently, so the test fails
//!   when the file was not the profile loaded.
//! - `--cap-add` of a capability rsafe's default profile conditions on (as Docker's does)
//!   unlocks the calls from inside: raw sockets and ping with NET_RAW, mount reaching the
//!   kernel with SYS_ADMIN, ptrace with SYS_PTRACE; without the flag each stays EPERM.
#[path = "support/run.rs"]
#[allow(dead_code)] // shared with tests/run.rs, which uses the rest
mod run_support;
mod support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use run_support::{Caller, Output, run};

/// podman's default profile (installed by .ci/setup-debian.sh).
const PODMAN: &str = "/usr/share/containers/seccomp.json";

fn podman_profile() -> bool {
    support::have(PODMAN, Path::new(PODMAN).exists())
}

/// A copy of `caller`'s busybox rootfs with the static confinement probe at `/probe`.
fn rootfs_with_probe(caller: Caller) -> Option<PathBuf> {
    let probe = run_support::static_probe()?;
    let base = caller.rootfs();
    // The probe's directory name carries the key of its source.
    let key = probe.parent()?.file_name()?.to_string_lossy().into_owned();
    let name = format!("{}-{key}", base.file_name()?.to_string_lossy());
    Some(support::fixture(&name, |dest| {
        support::sh(Command::new("cp").arg("-a").arg(&base).arg(dest));
        fs::copy(&probe, dest.join("probe")).unwrap();
        support::sh(Command::new("chmod").arg("755").arg(dest.join("probe")));
    }))
}

/// `NAME=RESULT` lines (the probe's, and `Seccomp=` from the status line) as a map.
fn results(out: &Output) -> HashMap<String, String> {
    out.stdout
        .lines()
        .filter_map(|l| {
            let l = l.replace("Seccomp:\t", "Seccomp=");
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Runs the probe's `checks` in `caller`'s busybox with `flags`, after printing the seccomp
/// mode from `/proc/self/status`.
fn probe(caller: Caller, rootfs: &Path, flags: &[&str], checks: &str) -> HashMap<String, String> {
    let store = support::temp_root();
    probe_in(caller, store.path(), rootfs, flags, checks)
}

/// [`probe`] with the store given: runs in one store share its compiled-filter cache.
fn probe_in(
    caller: Caller,
    store: &Path,
    rootfs: &Path,
    flags: &[&str],
    checks: &str,
) -> HashMap<String, String> {
    let script = format!("grep ^Seccomp: /proc/self/status; /probe {checks}");
    let mut args = vec!["--rm"];
    args.extend_from_slice(flags);
    args.extend([rootfs.to_str().unwrap(), "--", "/bin/sh", "-c", &script]);
    let out = run(caller, store, &args);
    assert_eq!(out.code, 0, "{caller:?} {flags:?}: {out:?}");
    results(&out)
}

#[track_caller]
fn expect(got: &HashMap<String, String>, want: &[(&str, &str)], context: &str) {
    for (name, value) in want {
        assert_eq!(
            got.get(*name).map(String::as_str),
            Some(*value),
            "{context}: {name} in {got:?}"
        );
    }
}

#[test]
fn podmans_default_profile_confines_busybox_with_its_own_errnos() {
    if !podman_profile() || !run_support::userns_works() {
        return;
    }
    let checks = "userfaultfd io_uring keyctl unshare_user tcp_socket";
    for caller in Caller::all() {
        let Some(rootfs) = rootfs_with_probe(caller) else {
            return;
        };
        let podman = probe(caller, &rootfs, &["--seccomp", PODMAN], checks);
        // userfaultfd: podman's explicit EPERM rule; io_uring: not listed, so its ENOSYS
        // default; keyctl and unshare: podman allows them, leaving the rest to the kernel.
        expect(
            &podman,
            &[
                ("Seccomp", "2"),
                ("userfaultfd", "EPERM"),
                ("io_uring", "ENOSYS"),
                ("keyctl", "OK"),
                ("tcp_socket", "OK"),
            ],
            &format!("{caller:?} podman"),
        );
        assert_ne!(
            podman.get("unshare_user").map(String::as_str),
            Some("EPERM")
        );
        // The control: rsafe's default denies all of them with EPERM.
        let default = probe(caller, &rootfs, &[], checks);
        expect(
            &default,
            &[
                ("Seccomp", "2"),
                ("userfaultfd", "EPERM"),
                ("io_uring", "EPERM"),
                ("keyctl", "EPERM"),
                ("unshare_user", "EPERM"),
                ("tcp_socket", "OK"),
            ],
            &format!("{caller:?} default"),
        );
    }
}

#[test]
fn each_capability_the_default_profile_conditions_on_unlocks_its_calls_inside() {
    if !run_support::userns_works() {
        return;
    }
    let checks = "raw_socket packet_socket mount_nouser ptrace clone_newuser";
    for caller in Caller::all() {
        let Some(rootfs) = rootfs_with_probe(caller) else {
            return;
        };
        // One store for all runs, SYS_ADMIN first: the compiled-filter cache is keyed by the
        // kept capabilities, so the runs after it must not get its filter (mount_nouser would
        // then be the kernel's EINVAL, which no capability check comes before).
        let store = support::temp_root();
        let admin = probe_in(
            caller,
            store.path(),
            &rootfs,
            &["--cap-add", "SYS_ADMIN"],
            checks,
        );
        let none = probe_in(caller, store.path(), &rootfs, &[], checks);
        expect(
            &none,
            &[
                ("raw_socket", "EPERM"),
                ("packet_socket", "EPERM"),
                ("mount_nouser", "EPERM"),
                ("ptrace", "EPERM"),
                ("clone_newuser", "EPERM"),
            ],
            &format!("{caller:?} no --cap-add"),
        );
        let raw = probe_in(
            caller,
            store.path(),
            &rootfs,
            &["--cap-add", "NET_RAW"],
            checks,
        );
        expect(
            &raw,
            &[
                ("raw_socket", "OK"),
                ("packet_socket", "OK"),
                ("mount_nouser", "EPERM"),
                ("ptrace", "EPERM"),
            ],
            &format!("{caller:?} --cap-add NET_RAW"),
        );
        // MS_NOUSER is the kernel's EINVAL: the call got through the filter.
        expect(
            &admin,
            &[
                ("raw_socket", "EPERM"),
                ("mount_nouser", "EINVAL"),
                ("ptrace", "EPERM"),
            ],
            &format!("{caller:?} --cap-add SYS_ADMIN"),
        );
        assert_ne!(
            admin.get("clone_newuser").map(String::as_str),
            Some("EPERM"),
            "{caller:?} --cap-add SYS_ADMIN: {admin:?}"
        );
        let ptrace = probe_in(
            caller,
            store.path(),
            &rootfs,
            &["--cap-add", "SYS_PTRACE"],
            checks,
        );
        expect(
            &ptrace,
            &[("ptrace", "OK"), ("mount_nouser", "EPERM")],
            &format!("{caller:?} --cap-add SYS_PTRACE"),
        );
    }
}

#[test]
fn ping_works_with_net_raw_and_only_then() {
    if !run_support::userns_works() {
        return;
    }
    for caller in Caller::all() {
        let store = support::temp_root();
        let ping = "ping -c 1 -W 2 127.0.0.1";
        let with = run_support::run_sh(
            caller,
            store.path(),
            &["--rm", "--cap-add", "NET_RAW"],
            ping,
        );
        assert_eq!(with.code, 0, "{caller:?}: {with:?}");
        assert!(with.stdout.contains("1 packets received"), "{with:?}");
        let without = run_support::run_sh(caller, store.path(), &["--rm"], ping);
        assert_ne!(without.code, 0, "{caller:?}: {without:?}");
    }
}

/// Loads the cached Debian image into a fresh store of `caller`; None when unavailable.
fn debian_store(caller: Caller) -> Option<tempfile::TempDir> {
    let layout = support::debian::debian_minbase_image()?;
    let store = support::temp_root();
    let load = caller
        .command(store.path())
        .args(["load", &layout])
        .output()
        .unwrap();
    assert!(load.status.success(), "{caller:?}: {load:?}");
    Some(store)
}

#[test]
fn podmans_default_profile_confines_a_debian_workload() {
    if !podman_profile() || !run_support::userns_works() {
        return;
    }
    let image = format!("{}:{}", support::debian::RECIPE, support::debian::TAG);
    // perl's syscall(): userfaultfd (323) and io_uring_setup (425) on x86_64; `$!+0` is errno.
    let script = "grep ^Seccomp: /proc/self/status; \
        perl -e 'syscall(323, 0); print qq{userfaultfd=}, 0+$!, qq{\\n}; \
                 syscall(425, 1, 0); print qq{io_uring=}, 0+$!, qq{\\n}'; \
        dpkg-query -W -f='dpkg=${Status}\\n' dpkg";
    for caller in [Caller::Host, Caller::User] {
        if !Caller::all().contains(&caller) {
            continue;
        }
        let Some(store) = debian_store(caller) else {
            return;
        };
        let mut outputs = Vec::new();
        for flags in [&["--seccomp", PODMAN][..], &[][..]] {
            let mut args = vec!["--rm"];
            args.extend_from_slice(flags);
            args.extend([image.as_str(), "bash", "-c", script]);
            let out = run(caller, store.path(), &args);
            assert_eq!(out.code, 0, "{caller:?} {flags:?}: {out:?}");
            outputs.push(results(&out));
        }
        let eperm = libc::EPERM.to_string();
        let enosys = libc::ENOSYS.to_string();
        let installed = "install ok installed";
        expect(
            &outputs[0],
            &[
                ("Seccomp", "2"),
                ("userfaultfd", &eperm),
                ("io_uring", &enosys),
                ("dpkg", installed),
            ],
            &format!("{caller:?} podman"),
        );
        expect(
            &outputs[1],
            &[
                ("Seccomp", "2"),
                ("userfaultfd", &eperm),
                ("io_uring", &eperm),
                ("dpkg", installed),
            ],
            &format!("{caller:?} default"),
        );
    }
}
