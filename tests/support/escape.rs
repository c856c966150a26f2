//! Test support for `tests/escape.rs`: the hostile probe (`escape_probe.c`, linked statically),
//! root filesystems that carry it, and the host-side bait it must not reach: a host-only
//! marker file, a 127.0.0.1 TCP listener and an abstract UNIX socket.

use std::fs;
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run_support::Caller;
use crate::support::{fixture, have, sh, source_key, tool};

const PROBE_SOURCE: &str = include_str!("escape_probe.c");

/// Every vector the probe tries, in its order: a vector that stops printing fails the test.
pub const VECTORS: &[&str] = &[
    "inherited_fds",
    "userns_unshare",
    "userns_clone",
    "userns_mount_tmpfs",
    "setns_proc1",
    "mount_tmpfs",
    "umount_proc",
    "open_tree",
    "fsopen_tmpfs",
    "pivot_root",
    "keyctl_join_session",
    "add_key",
    "bpf_prog_load",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "init_module",
    "finit_module",
    "kexec_load",
    "reboot",
    "swapon",
    "syslog_read_all",
    "settimeofday",
    "clock_settime",
    "name_to_handle_at",
    "open_by_handle_at",
    "ptrace_attach_pid1",
    "process_vm_readv_pid1",
    "mknod_block_device",
    "socket_af_packet",
    "socket_raw_icmp",
    "tiocsti",
    "write_sysrq_trigger",
    "write_core_pattern",
    "write_sysfs",
    "read_kcore",
    "write_proc1_exe",
    "readlink_proc1_exe",
    "mountinfo_host_paths",
    "double_chroot",
    "mount_cgroup_v1",
    "cgroup_release_agent",
    "capset_sys_admin",
    "ambient_raise_sys_admin",
    "connect_host_tcp",
    "connect_host_abstract_unix",
];

/// Whether `cc -static` can link against glibc here (libc.a from libc6-dev).
fn static_libc() -> bool {
    Command::new("cc")
        .arg("-print-file-name=libc.a")
        .output()
        .is_ok_and(|o| Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_absolute())
}

/// The compiled static probe, or None (after `have` said so) without `cc` and static glibc.
pub fn probe() -> Option<PathBuf> {
    if !have(
        "a C compiler with static glibc (cc -static) for the escape probe",
        tool("cc") && static_libc(),
    ) {
        return None;
    }
    let dir = fixture(
        &format!("escape-probe-{}", source_key(PROBE_SOURCE.as_bytes())),
        |dir| {
            fs::create_dir_all(dir).unwrap();
            let src = dir.join("escape_probe.c");
            fs::write(&src, PROBE_SOURCE).unwrap();
            sh(Command::new("cc")
                .args(["-static", "-O1", "-Wall", "-Werror", "-o"])
                .arg(dir.join("probe"))
                .arg(&src));
        },
    );
    Some(dir.join("probe"))
}

/// A copy of `caller`'s rootfs (same owners) with the probe at `/probe`. Copied rather than
/// bind-mounted, so the container's mount table holds only what rsafe itself mounted.
pub fn rootfs_with_probe(caller: Caller, probe: &Path) -> PathBuf {
    let base = caller.rootfs();
    let name = format!(
        "{}-escape-{}",
        base.file_name().unwrap().to_string_lossy(),
        source_key(PROBE_SOURCE.as_bytes())
    );
    fixture(&name, |dest| {
        sh(Command::new("cp").arg("-a").arg(&base).arg(dest));
        fs::copy(probe, dest.join("probe")).unwrap();
        sh(Command::new("chmod").arg("755").arg(dest.join("probe")));
    })
}

/// Host-side targets the probe must not reach, alive as long as this value.
pub struct Bait {
    dir: tempfile::TempDir,
    tcp: TcpListener,
    abstract_name: String,
    _unix: UnixListener,
}

impl Bait {
    pub fn new() -> Bait {
        let dir = tempfile::Builder::new()
            .prefix("rsafe-escape-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::write(dir.path().join("host-only-marker"), "host\n").unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        // Unique per bait: the tests of this binary run in parallel.
        let abstract_name = format!(
            "rsafe-escape-{}",
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let unix =
            UnixListener::bind_addr(&SocketAddr::from_abstract_name(&abstract_name).unwrap())
                .unwrap();
        Bait {
            dir,
            tcp,
            abstract_name,
            _unix: unix,
        }
    }

    /// The probe's environment as `KEY=VALUE` pairs.
    pub fn env(&self, host_paths: &[&Path]) -> Vec<(String, String)> {
        let mut paths = vec![self.dir.path().display().to_string()];
        paths.extend(host_paths.iter().map(|p| p.display().to_string()));
        vec![
            (
                "ESCAPE_MARKER".into(),
                self.dir
                    .path()
                    .join("host-only-marker")
                    .display()
                    .to_string(),
            ),
            (
                "ESCAPE_TCP_PORT".into(),
                self.tcp.local_addr().unwrap().port().to_string(),
            ),
            ("ESCAPE_ABSTRACT".into(), self.abstract_name.clone()),
            ("ESCAPE_HOST_PATHS".into(), paths.join(":")),
        ]
    }

    /// A directory of the host for the control run's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The probe's `name=result` lines, in order; `done` (if printed) as ("done", "").
pub fn results(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}
