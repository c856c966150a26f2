//! Real enforcement of the confinement layer, without the runner: each test spawns busybox or
//! the C probe with a `pre_exec` hook that applies rsafe's capability drop, no_new_privs,
//! landlock and seccomp exactly as the container child does, then looks from inside.
//!
//! Every check has a control run without the protection under test, so a test fails when the
//! protection is missing rather than when the machine happens to refuse the call anyway.
//! Needs root (to drop capabilities, switch users and make a setuid binary); the
//! unprivileged cases switch to the test user inside the hook.
mod support;

use std::collections::HashMap;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::free_port;

use caps::Capability;
use nix::unistd::{Gid, Uid};
use rsafe::runtime::caps as rcaps;
use rsafe::runtime::landlock::{self, FsAccess, LandlockPolicy, Level, PortAccess};
use rsafe::runtime::seccomp::{self, CompiledFilter, SeccompProfile};
use support::confine::{probe, results, setuid_probe};

const BUSYBOX: &str = "/bin/busybox";
/// The exit code of a child whose confinement step failed (the message is on its stderr).
const STEP_FAILED: i32 = 120;

/// What the pre_exec hook does, in the container child's order.
#[derive(Default)]
struct Steps {
    /// setgroups([]), setresgid, setresuid to this (uid, gid) first.
    user: Option<(u32, u32)>,
    /// PR_SET_KEEPCAPS before switching user, as the runner does for a non-root workload.
    keep_caps: bool,
    caps: Option<Vec<Capability>>,
    no_new_privs: bool,
    landlock: Option<(FsAccess, LandlockPolicy)>,
    require_landlock: bool,
    seccomp: Option<CompiledFilter>,
}

impl Steps {
    /// Everything rsafe applies: no capabilities, no_new_privs, landlock (read everywhere,
    /// write only below `writable`) and the default seccomp profile.
    fn full(writable: &Path) -> Steps {
        Steps {
            caps: Some(Vec::new()),
            no_new_privs: true,
            landlock: Some((fs_access(writable), LandlockPolicy::default())),
            seccomp: Some(default_filter(&[])),
            ..Steps::default()
        }
    }
}

fn fs_access(writable: &Path) -> FsAccess {
    FsAccess {
        read_exec: vec![PathBuf::from("/")],
        read_write: vec![writable.to_path_buf()],
    }
}

fn default_filter(caps: &[Capability]) -> CompiledFilter {
    seccomp::compile(&SeccompProfile::builtin_default(), caps).expect("default profile compiles")
}

/// Runs `program args` with `steps` applied between fork and exec.
fn run(program: &Path, args: &[&str], steps: Steps) -> Output {
    let mut steps = steps;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    let hook = move || -> std::io::Result<()> {
        if let Err(message) = apply(&mut steps) {
            let _ = nix::unistd::write(
                std::io::stderr(),
                format!("confine step: {message}\n").as_bytes(),
            );
            // SAFETY: _exit ends the forked child without running the parent's atexit handlers.
            unsafe { libc::_exit(STEP_FAILED) };
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec. It calls rsafe's confinement
    // functions (syscalls; landlock and the error path allocate, which glibc's fork handlers
    // make safe in the child of a multi-threaded test process) and never returns to Rust
    // code that the parent's other threads might have left locked.
    unsafe { cmd.pre_exec(hook) };
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

fn apply(steps: &mut Steps) -> Result<(), String> {
    if let Some((uid, gid)) = steps.user {
        if steps.keep_caps {
            nix::sys::prctl::set_keepcaps(true).map_err(|e| format!("keepcaps: {e}"))?;
        }
        nix::unistd::setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
        let gid = Gid::from_raw(gid);
        nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("setresgid: {e}"))?;
        let uid = Uid::from_raw(uid);
        nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("setresuid: {e}"))?;
    }
    if let Some(keep) = &steps.caps {
        rcaps::apply(keep).map_err(|e| e.to_string())?;
    }
    if steps.no_new_privs {
        rcaps::set_no_new_privs().map_err(|e| e.to_string())?;
    }
    if let Some((fs, policy)) = &steps.landlock {
        let status =
            landlock::apply(fs, policy, steps.require_landlock).map_err(|e| e.to_string())?;
        if steps.require_landlock && status.level != Level::Full {
            return Err(format!("require_landlock returned {status}"));
        }
    }
    if let Some(filter) = steps.seccomp.take() {
        filter.load().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn stdout_map(out: &Output) -> HashMap<String, String> {
    assert!(
        out.status.code() != Some(STEP_FAILED),
        "a confinement step failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    results(&out.stdout)
}

/// The /proc/self/status fields of busybox `cat`, as "Name" → value.
fn proc_status(out: &Output) -> HashMap<String, String> {
    assert!(
        out.status.success(),
        "cat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn needs_root() -> bool {
    support::have(
        "root (to drop capabilities and switch users)",
        support::is_root(),
    ) && support::have("busybox-static", Path::new(BUSYBOX).exists())
}

fn writable_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rsafe-confine-")
        .tempdir_in("/tmp")
        .unwrap();
    support::sh(Command::new("chmod").arg("777").arg(dir.path()));
    dir
}

#[test]
fn full_confinement_shows_in_proc_status() {
    if !needs_root() {
        return;
    }
    let dir = writable_dir();
    let status = proc_status(&run(
        Path::new(BUSYBOX),
        &["cat", "/proc/self/status"],
        Steps::full(dir.path()),
    ));
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status[set], "0000000000000000", "{set}");
    }
    assert_eq!(status["NoNewPrivs"], "1");
    assert_eq!(status["Seccomp"], "2");
    // The allowlist and the carve-out filter (TIOCSTI/TIOCLINUX).
    assert_eq!(status["Seccomp_filters"], "2");

    // Control: the same process without the steps is fully privileged.
    let control = proc_status(&run(
        Path::new(BUSYBOX),
        &["cat", "/proc/self/status"],
        Steps::default(),
    ));
    assert_ne!(control["CapEff"], "0000000000000000");
    assert_eq!(control["Seccomp"], "0");
}

#[test]
fn kept_capabilities_are_exactly_the_policy_list() {
    if !needs_root() {
        return;
    }
    let keep = vec![Capability::CAP_CHOWN, Capability::CAP_NET_BIND_SERVICE];
    let mask = format!(
        "{:016x}",
        Capability::CAP_CHOWN.bitmask() | Capability::CAP_NET_BIND_SERVICE.bitmask()
    );
    let steps = Steps {
        caps: Some(keep),
        ..Steps::default()
    };
    let status = proc_status(&run(
        Path::new(BUSYBOX),
        &["cat", "/proc/self/status"],
        steps,
    ));
    assert_eq!(status["CapBnd"], mask);
    assert_eq!(
        status["CapPrm"], mask,
        "root gets the bounding set back at execve"
    );
    assert_eq!(status["CapEff"], mask);
    assert_eq!(status["CapInh"], "0000000000000000");
    assert_eq!(status["CapAmb"], "0000000000000000");
}

#[test]
fn capabilities_drop_after_switching_to_a_non_root_user_with_keepcaps() {
    if !needs_root() {
        return;
    }
    let steps = Steps {
        user: Some((65534, 65534)),
        keep_caps: true,
        caps: Some(vec![Capability::CAP_NET_BIND_SERVICE]),
        no_new_privs: true,
        ..Steps::default()
    };
    let status = proc_status(&run(
        Path::new(BUSYBOX),
        &["cat", "/proc/self/status"],
        steps,
    ));
    assert_eq!(status["Uid"].split_whitespace().next(), Some("65534"));
    assert_eq!(
        status["CapBnd"],
        format!("{:016x}", Capability::CAP_NET_BIND_SERVICE.bitmask())
    );
    // A non-root program gets nothing at execve: no inheritable, no ambient capabilities.
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status[set], "0000000000000000", "{set}");
    }
}

#[test]
fn capability_drop_without_privilege_fails_loudly() {
    if !needs_root() {
        return;
    }
    // Switched user without keepcaps: no CAP_SETPCAP, so the bounding set cannot be emptied.
    let steps = Steps {
        user: Some((65534, 65534)),
        caps: Some(Vec::new()),
        ..Steps::default()
    };
    let out = run(Path::new(BUSYBOX), &["true"], steps);
    assert_eq!(out.status.code(), Some(STEP_FAILED));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bounding set") && stderr.contains("CAP_SETPCAP"),
        "{stderr}"
    );
}

#[test]
fn nested_user_namespaces_are_refused() {
    if !needs_root() {
        return;
    }
    let dir = writable_dir();
    let control = run(
        Path::new(BUSYBOX),
        &["unshare", "-U", "true"],
        Steps::default(),
    );
    assert!(
        control.status.success(),
        "control: {}",
        String::from_utf8_lossy(&control.stderr)
    );
    let out = run(
        Path::new(BUSYBOX),
        &["unshare", "-U", "true"],
        Steps::full(dir.path()),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
}

#[test]
fn dangerous_syscalls_fail_with_eperm() {
    let Some(probe) = probe() else { return };
    if !needs_root() {
        return;
    }
    let dir = writable_dir();
    // unshare_user last: once it succeeds (control run) the probe sits in an unmapped user
    // namespace where creating another one fails.
    let checks = [
        "keyctl",
        "add_key",
        "bpf",
        "ptrace",
        "userfaultfd",
        "io_uring",
        "syslog",
        "clone_newuser",
        "packet_socket",
        "raw_socket",
        "personality",
        "tiocsti",
        "tiocsti_high",
        "unshare_user",
    ];
    let control = stdout_map(&run(&probe, &checks, Steps::default()));
    // Root without confinement may do these (the control proves the probe can succeed).
    for name in [
        "keyctl",
        "add_key",
        "ptrace",
        "unshare_user",
        "clone_newuser",
        "packet_socket",
        "raw_socket",
        "personality",
    ] {
        assert_eq!(control[name], "OK", "control {name}");
    }
    assert_eq!(
        control["tiocsti"], "ENOTTY",
        "stdin is /dev/null, not a terminal"
    );
    assert_eq!(
        control["tiocsti_high"], "ENOTTY",
        "the kernel ignores the high bits"
    );

    let confined = stdout_map(&run(&probe, &checks, Steps::full(dir.path())));
    for name in checks {
        assert_eq!(confined[name], "EPERM", "confined {name}");
    }
}

#[test]
fn the_filter_keeps_ordinary_calls_and_only_the_x86_64_abi() {
    let Some(probe) = probe() else { return };
    if !needs_root() {
        return;
    }
    let dir = writable_dir();
    let checks = [
        "fork",
        "unshare_files",
        "tcp_socket",
        "clone3",
        "mseal",
        "x32",
        "i386",
    ];
    let control = stdout_map(&run(&probe, &checks, Steps::default()));
    assert_eq!(control["clone3"], "OK");
    let confined = stdout_map(&run(&probe, &checks, Steps::full(dir.path())));
    assert_eq!(confined["fork"], "OK");
    assert_eq!(confined["unshare_files"], "OK");
    assert_eq!(confined["tcp_socket"], "OK");
    // clone3 cannot be argument-filtered: ENOSYS sends libc back to clone.
    assert_eq!(confined["clone3"], "ENOSYS");
    // mseal (Linux 6.10) is newer than the profile: ENOSYS, so libc would fall back.
    if control["mseal"] != "ENOSYS" {
        assert_eq!(confined["mseal"], "ENOSYS");
    }
    // Syscalls through the i386 or x32 ABI kill the process (SIGSYS = 31).
    assert_eq!(confined["x32"], "SIGNAL31");
    assert_eq!(confined["i386"], "SIGNAL31");
    assert_ne!(control["i386"], "SIGNAL31");
}

#[test]
fn landlock_allows_writes_only_below_read_write_paths() {
    let Some(probe) = probe() else { return };
    if !needs_root() {
        return;
    }
    let allowed = writable_dir();
    let denied = writable_dir();
    let allowed_file = allowed.path().join("ok");
    let denied_file = denied.path().join("no");
    let write_denied = format!("echo x > {}", denied_file.display());
    let write_allowed = format!("echo x > {}", allowed_file.display());

    let out = run(
        Path::new(BUSYBOX),
        &["sh", "-c", &write_denied],
        Steps::full(allowed.path()),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    assert!(!denied_file.exists());
    let out = run(
        Path::new(BUSYBOX),
        &["sh", "-c", &write_allowed],
        Steps::full(allowed.path()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&allowed_file).unwrap(), "x\n");

    let w_ok = format!("write:{}", allowed.path().join("probe").display());
    let w_no = format!("write:{}", denied.path().join("probe").display());
    let r = "read:/etc/passwd";
    let confined = stdout_map(&run(
        &probe,
        &[&w_ok, &w_no, r],
        Steps::full(allowed.path()),
    ));
    assert_eq!(confined[&w_ok], "OK");
    assert_eq!(confined[&w_no], "EACCES");
    assert_eq!(confined[r], "OK");
}

#[test]
fn landlock_limits_tcp_bind_and_connect_to_the_policy_ports() {
    let Some(probe) = probe() else { return };
    if !needs_root() {
        return;
    }
    let dir = writable_dir();
    let (bind_ok, bind_no, connect_ok, connect_no) =
        (free_port(), free_port(), free_port(), free_port());
    let policy = LandlockPolicy {
        tcp_bind: PortAccess::Only(vec![bind_ok]),
        tcp_connect: PortAccess::Only(vec![connect_ok]),
        ..LandlockPolicy::default()
    };
    let steps = Steps {
        landlock: Some((fs_access(dir.path()), policy)),
        ..Steps::full(dir.path())
    };
    let checks = [
        format!("bind:{bind_ok}"),
        format!("bind:{bind_no}"),
        format!("connect:{connect_ok}"),
        format!("connect:{connect_no}"),
    ];
    let args: Vec<&str> = checks.iter().map(String::as_str).collect();
    let r = stdout_map(&run(&probe, &args, steps));
    assert_eq!(r[&checks[0]], "OK");
    assert_eq!(r[&checks[1]], "EACCES");
    // Allowed, and nobody listens: the kernel's own answer.
    assert_eq!(r[&checks[2]], "ECONNREFUSED");
    assert_eq!(r[&checks[3]], "EACCES");
}

#[test]
fn landlock_scopes_signals_and_abstract_sockets_to_the_container() {
    let Some(probe) = probe() else { return };
    if !needs_root() {
        return;
    }
    let dir = writable_dir();
    let mut outside = Command::new(BUSYBOX).args(["sleep", "60"]).spawn().unwrap();
    let name = format!("rsafe-confine-{}", std::process::id());
    let _listener =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let checks = [format!("kill:{}", outside.id()), format!("abstract:{name}")];
    let args: Vec<&str> = checks.iter().map(String::as_str).collect();

    let control = stdout_map(&run(&probe, &args, Steps::default()));
    let confined = stdout_map(&run(&probe, &args, Steps::full(dir.path())));
    outside.kill().unwrap();
    outside.wait().unwrap();
    for check in &checks {
        assert_eq!(control[check], "OK", "control {check}");
        assert_eq!(confined[check], "EPERM", "confined {check}");
    }
}

#[test]
fn require_landlock_succeeds_on_a_kernel_with_every_feature() {
    if !needs_root() {
        return;
    }
    let full = landlock::kernel_abi().is_some_and(|abi| abi >= landlock::TESTED_ABI);
    if !support::have("landlock ABI 7", full) {
        return;
    }
    let dir = writable_dir();
    let steps = Steps {
        require_landlock: true,
        ..Steps::full(dir.path())
    };
    let out = run(Path::new(BUSYBOX), &["true"], steps);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_new_privs_keeps_a_setuid_root_binary_unprivileged() {
    if !needs_root() {
        return;
    }
    let Some(suid) = setuid_probe() else { return };
    let nobody = || Steps {
        user: Some((65534, 65534)),
        ..Steps::default()
    };
    let control = stdout_map(&run(&suid, &["euid"], nobody()));
    assert_eq!(
        control["euid"], "0",
        "without no_new_privs the setuid bit works (nosuid mount?)"
    );
    let confined = stdout_map(&run(
        &suid,
        &["euid"],
        Steps {
            no_new_privs: true,
            ..nobody()
        },
    ));
    assert_eq!(confined["euid"], "65534");
}

#[test]
fn an_unprivileged_user_gets_seccomp_and_landlock_too() {
    let Some(probe) = probe() else { return };
    if !needs_root() {
        return;
    }
    let Some((uid, gid)) = support::test_user() else {
        support::have("the rsafe-test user", false);
        return;
    };
    let allowed = writable_dir();
    let denied = writable_dir();
    let w_ok = format!("write:{}", allowed.path().join("f").display());
    let w_no = format!("write:{}", denied.path().join("f").display());
    // No capability step: an unprivileged process outside a user namespace cannot drop its
    // bounding set (see capability_drop_without_privilege_fails_loudly).
    let steps = Steps {
        user: Some((uid, gid)),
        caps: None,
        ..Steps::full(allowed.path())
    };
    let r = stdout_map(&run(
        &probe,
        &["status", "keyctl", "unshare_user", &w_ok, &w_no],
        steps,
    ));
    assert_eq!(r["Seccomp"], "2");
    assert_eq!(r["NoNewPrivs"], "1");
    assert_eq!(r["keyctl"], "EPERM");
    assert_eq!(r["unshare_user"], "EPERM");
    assert_eq!(r[&w_ok], "OK");
    assert_eq!(r[&w_no], "EACCES");
}

#[test]
fn seccomp_needs_no_new_privs_when_unprivileged() {
    if !needs_root() {
        return;
    }
    let steps = Steps {
        user: Some((65534, 65534)),
        seccomp: Some(default_filter(&[])),
        ..Steps::default()
    };
    let out = run(Path::new(BUSYBOX), &["true"], steps);
    assert_eq!(out.status.code(), Some(STEP_FAILED));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no_new_privs"), "{stderr}");
}
