//! Real containers for the running-container audit (`tests/audit_running.rs`): runc, crun,
//! bubblewrap and unshare, started on this machine. Each is held by a [`Started`] guard that
//! kills its processes by pid and removes the runtime's state when dropped, also when a test
//! fails half-way.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::{busybox_rootfs, sh, tool};

/// How long a container may take to show its workload (the machine is shared and busy).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running container, stopped when dropped.
pub struct Started {
    /// What was started, for assertion messages.
    pub what: String,
    /// The workload's host pid (`sleep`): the process the audit is pointed at.
    pub workload: u32,
    /// The process the test spawned (bwrap, unshare, sh), if it stays around.
    launcher: Option<Child>,
    /// Commands that remove the runtime's state after the processes are gone.
    cleanup: Vec<Command>,
    _bundle: Option<tempfile::TempDir>,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.workload as i32), Signal::SIGKILL);
        if let Some(child) = &mut self.launcher {
            // A runtime whose workload died exits on its own and cleans up after itself
            // (rsafe run --rm removes its container); give it a moment before killing it.
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for cmd in &mut self.cleanup {
            let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// A unique container id for this test process.
fn unique_id(kind: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "rsafe-procs-{kind}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// How an OCI container (runc, crun) is configured, starting from `runc spec`'s defaults
/// (new pid, net, ipc, uts and mount namespaces; no user namespace; no seccomp; runc's three
/// default capabilities; no limits).
#[derive(Debug, Clone, Default)]
pub struct OciConfig {
    /// Map container ids 0..65536 to host 100000.. in a user namespace of its own.
    pub userns: bool,
    /// Also give the container a cgroup namespace.
    pub cgroupns: bool,
    /// Capabilities added to every set (`CAP_SYS_ADMIN`, …).
    pub add_caps: Vec<&'static str>,
    /// A seccomp filter (allow all but a few calls: enough for `Seccomp: 2`).
    pub seccomp: bool,
    /// 256 MiB memory and 128 pids.
    pub limits: bool,
    pub env: Vec<String>,
    /// Mount /sys and /sys/fs/cgroup read-write, as `--privileged` does.
    pub rw_sys: bool,
    /// Bind mounts (host path, container path, read-write); the container path must exist
    /// in the busybox rootfs (it is shared and never written to).
    pub binds: Vec<(&'static str, &'static str, bool)>,
}

/// Writes a bundle whose root is the shared busybox rootfs (read-only) and whose process is
/// `sleep 1000`.
fn oci_bundle(cfg: &OciConfig) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rsafe-procs-bundle-")
        .tempdir()
        .unwrap();
    sh(Command::new("runc")
        .arg("spec")
        .arg("--bundle")
        .arg(dir.path()));
    let path = dir.path().join("config.json");
    let mut spec: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    spec["root"] = json!({"path": busybox_rootfs(), "readonly": true});
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["sleep", "1000"]);
    for e in &cfg.env {
        spec["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!(e));
    }
    for set in ["bounding", "effective", "permitted"] {
        let caps = spec["process"]["capabilities"][set].as_array_mut().unwrap();
        caps.extend(cfg.add_caps.iter().map(|c| json!(c)));
    }
    let linux = &mut spec["linux"];
    if cfg.userns {
        linux["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        linux["uidMappings"] = map.clone();
        linux["gidMappings"] = map;
        // A v1 cgroupfs cannot be mounted from a user namespace; drop runc's /sys/fs/cgroup.
        let mounts = spec["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
    }
    let mounts = spec["mounts"].as_array_mut().unwrap();
    if cfg.rw_sys {
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" || m["destination"] == "/sys/fs/cgroup" {
                let opts = m["options"].as_array_mut().unwrap();
                opts.retain(|o| o != "ro");
                opts.push(json!("rw"));
            }
        }
    }
    for (host, container, rw) in &cfg.binds {
        mounts.push(json!({
            "destination": container,
            "type": "bind",
            "source": host,
            "options": ["rbind", if *rw { "rw" } else { "ro" }],
        }));
    }
    let linux = &mut spec["linux"];
    if cfg.cgroupns {
        linux["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
    }
    if cfg.seccomp {
        linux["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            "syscalls": [{"names": ["keyctl", "add_key", "request_key"], "action": "SCMP_ACT_ERRNO"}]
        });
    }
    if cfg.limits {
        linux["resources"]["memory"] = json!({"limit": 256 << 20});
        linux["resources"]["pids"] = json!({"limit": 128});
    }
    fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    dir
}

/// Which OCI runtime to start a bundle with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oci {
    Runc,
    Crun,
}

impl Oci {
    pub fn name(self) -> &'static str {
        match self {
            Oci::Runc => "runc",
            Oci::Crun => "crun",
        }
    }

    /// Whether this runtime can run here. crun 1.8 refuses hybrid cgroups, so it runs in a
    /// mount namespace where the v2 hierarchy is unmounted; that needs `unshare`.
    pub fn available(self) -> bool {
        tool(self.name()) && (self == Oci::Runc || tool("unshare"))
    }

    /// `runtime args…`, wrapped for crun as above.
    fn command(self, args: &[&str]) -> Command {
        match self {
            Oci::Runc => {
                let mut c = Command::new("runc");
                c.args(args);
                c
            }
            Oci::Crun => {
                let mut c = Command::new("unshare");
                c.args(["-m", "sh", "-c"])
                    .arg(
                        "umount /sys/fs/cgroup/unified 2>/dev/null; \
                         umount -l /sys/fs/cgroup/unified 2>/dev/null; exec crun \"$@\"",
                    )
                    .arg("crun")
                    .args(args);
                c
            }
        }
    }
}

/// Starts `sleep 1000` detached in a fresh bundle with `runtime`; returns the guard and the
/// container id.
pub fn oci_container(runtime: Oci, cfg: &OciConfig) -> (Started, String) {
    let bundle = oci_bundle(cfg);
    let id = unique_id(runtime.name());
    let pid_file = bundle.path().join("pid");
    let bundle_path = bundle.path().to_str().unwrap().to_owned();
    let pid_path = pid_file.to_str().unwrap().to_owned();
    // A detached container keeps the runtime's stdio: a pipe here would never reach EOF.
    // Files, not /dev/null: runc 1.1 chowns a user-namespaced container's stdio to its root
    // (host 100000), the host's /dev/null included.
    let log = bundle.path().join("run.log");
    let input = bundle.path().join("run.in");
    fs::write(&input, b"").unwrap();
    let status = runtime
        .command(&[
            "run",
            "-d",
            "--bundle",
            &bundle_path,
            "--pid-file",
            &pid_path,
            &id,
        ])
        .stdin(fs::File::open(&input).unwrap())
        .stdout(fs::File::create(bundle.path().join("run.out")).unwrap())
        .stderr(fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    let cleanup = vec![runtime.command(&["delete", "-f", &id])];
    let pid: Option<u32> = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let Some(pid) = pid.filter(|_| status.success()) else {
        for mut c in cleanup {
            let _ = c.status();
        }
        panic!(
            "{} run {id} failed: {}",
            runtime.name(),
            fs::read_to_string(&log).unwrap_or_default()
        );
    };
    (
        Started {
            what: format!("{} {id}", runtime.name()),
            workload: pid,
            launcher: None,
            cleanup,
            _bundle: Some(bundle),
        },
        id,
    )
}

/// Spawns `cmd` (whose workload is `sleep 1000`, somewhere below it) and waits for the sleep.
pub fn spawn(what: &str, mut cmd: Command) -> Started {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let root = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(pid) = find_descendant(root, "sleep") {
            return Started {
                what: what.to_owned(),
                workload: pid,
                launcher: Some(child),
                cleanup: Vec::new(),
                _bundle: None,
            };
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("{what} exited ({status}) before its workload started: {err}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: no workload after {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process named `comm` below `root` (itself included).
pub fn find_descendant(root: u32, comm: &str) -> Option<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut comms: HashMap<u32, String> = HashMap::new();
    for entry in fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 2..]
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse().ok());
        comms.insert(pid, stat[open + 1..close].to_owned());
        if let Some(ppid) = ppid {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        if comms.get(&pid).is_some_and(|c| c == comm) {
            return Some(pid);
        }
        queue.extend(children.get(&pid).into_iter().flatten());
    }
    None
}

/// `bwrap` with the busybox rootfs as a read-only root, its own /proc and /dev, every
/// namespace unshared, an empty environment, and dying with the test.
pub fn bwrap() -> Command {
    let mut c = Command::new("bwrap");
    c.arg("--ro-bind")
        .arg(busybox_rootfs())
        .arg("/")
        .args(["--proc", "/proc", "--dev", "/dev"])
        .args(["--unshare-all", "--die-with-parent", "--clearenv"]);
    c
}

/// `bwrap` on an empty tmpfs root with busybox's /bin and /etc bound read-only, so that mount
/// points can be created anywhere (`/host`, `/var/run/docker.sock`).
pub fn bwrap_on_tmpfs() -> Command {
    let rootfs = busybox_rootfs();
    let mut c = Command::new("bwrap");
    c.args(["--tmpfs", "/"])
        .arg("--ro-bind")
        .arg(rootfs.join("bin"))
        .arg("/bin")
        .arg("--ro-bind")
        .arg(rootfs.join("etc"))
        .arg("/etc")
        .args(["--proc", "/proc", "--dev", "/dev"])
        .args(["--unshare-all", "--die-with-parent", "--clearenv"]);
    c
}

/// `cmd` run as the unprivileged test user through setpriv (None when there is no such user
/// or the caller is not root).
pub fn as_test_user(cmd: &Command) -> Option<Command> {
    let (uid, gid) = super::test_user()?;
    if !super::is_root() {
        return None;
    }
    let mut c = Command::new("setpriv");
    c.args([
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--init-groups".to_owned(),
        "--inh-caps=-all".to_owned(),
        "--bounding-set=-all".to_owned(),
        "--".to_owned(),
    ])
    .arg(cmd.get_program())
    .args(cmd.get_args())
    .current_dir("/");
    Some(c)
}

/// A directory every user can enter, for bind sources and sockets.
pub fn shared_tempdir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap();
    sh(Command::new("chmod").arg("755").arg(dir.path()));
    dir
}

/// A path as a `&str` for command arguments.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The rootfs path, for callers that bind parts of it.
pub fn rootfs() -> PathBuf {
    busybox_rootfs()
}
