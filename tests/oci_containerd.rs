//! containerd (Debian's 1.6 and its `io.containerd.runc.v2` shim) with `rsafe-runtime` as the
//! shim's runc binary, driven by `ctr` as a user would: images imported from docker-archive
//! tarballs, `run --rm`, `run -d` / `task kill` / `task delete`, a pod's pair of containers
//! sharing a network (and user) namespace, and `task exec`.
//!
//! Each test owns a containerd on a private root, state and socket under a temporary
//! directory (never the system's /run/containerd or /var/lib/containerd state), in a
//! containerd namespace of its own (so its cgroups, `/<namespace>/<id>`, are its own). The
//! shim's runc root (`--runc-root`) is under that state directory too, so what rsafe-runtime
//! leaves behind is visible. A guard stops everything when the test ends, also when it fails.
//! Two fixed paths remain shared with any system containerd, as containerd 1.6 has them: the
//! shim's socket in /run/containerd/s and ctr's FIFOs in /run/containerd/fifo (one per task,
//! removed with it).
//! Root only: containerd needs it. With RSAFE_TEST_REQUIRE=1 a missing containerd fails.
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::containers::shared_tempdir;

/// The busybox test image as containerd names it after `ctr image import` (User app, 1000).
const BUSYBOX: &str = "docker.io/rsafe/busybox:latest";
/// The same image with User 0:0.
const BUSYBOX_ROOT: &str = "docker.io/rsafe/busybox:root";
/// The Debian minbase test image.
const DEBIAN: &str = "docker.io/rsafe/debian:bookworm";

/// A containerd of the test's own; dropping it ends its tasks, shims and daemon, unmounts its
/// snapshots, removes its cgroups and deletes its directory.
struct Containerd {
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    /// The containerd namespace: the first part of every container's cgroup path.
    ns: String,
    /// A symlink named `rsafe-runtime` to the binary under test.
    runtime: PathBuf,
}

impl Containerd {
    /// Starts containerd, or returns None (and says why) when not root or containerd is missing
    /// and the run does not require it.
    fn start() -> Option<Containerd> {
        let found = support::tool("containerd") && support::tool("ctr");
        if !support::have("containerd and ctr", found) {
            return None;
        }
        if !support::is_root() {
            assert!(!support::required(), "containerd tests need root");
            eprintln!("skipping: containerd needs root");
            return None;
        }
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = shared_tempdir("rsafe-ctrd-");
        let d = dir.path();
        let runtime = d.join("rsafe-runtime");
        std::os::unix::fs::symlink(support::rsafe_bin(), &runtime).unwrap();
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n",
            d = d.display()
        );
        fs::write(d.join("config.toml"), config).unwrap();
        let log = fs::File::create(d.join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let mut c = Containerd {
            dir,
            daemon: Some(daemon),
            ns: format!("rsafe-{}-{n}", std::process::id()),
            runtime,
        };
        c.wait_ready();
        Some(c)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn socket(&self) -> PathBuf {
        self.path().join("containerd.sock")
    }

    /// Where the shim tells rsafe-runtime to keep its state (`--root <this>/<namespace>`).
    fn runc_root(&self) -> PathBuf {
        self.path().join("state/rsafe-runc")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path().join("containerd.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.daemon.as_mut().and_then(|d| d.try_wait().unwrap()) {
                panic!("containerd exited ({status}): {}", self.log());
            }
            if self.socket().exists() && self.ctr(&["version"]).output().unwrap().status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "containerd not ready in 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctr -a SOCKET -n NAMESPACE ARGS…`
    fn ctr(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a")
            .arg(self.socket())
            .args(["-n", &self.ns])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn ctr_out(&self, args: &[&str]) -> Output {
        self.ctr(args).output().expect("run ctr")
    }

    /// `ctr run` with rsafe-runtime as the shim's runc binary and its root under our state.
    fn run(&self, flags: &[&str], image: &str, id: &str, cmd: &[&str]) -> Output {
        let mut c = self.ctr(&["run"]);
        c.arg("--runc-binary")
            .arg(&self.runtime)
            .arg("--runc-root")
            .arg(self.runc_root())
            .args(flags)
            .args([image, id])
            .args(cmd);
        c.output().expect("run ctr run")
    }

    fn import(&self, archive: &Path) {
        let o = self.ctr_out(&["image", "import", archive.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "import {}: {}",
            archive.display(),
            text(&o)
        );
    }

    /// `ctr task ls` as (id, pid, status) rows.
    fn tasks(&self) -> Vec<(String, u32, String)> {
        let o = self.ctr_out(&["task", "ls"]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((
                    f.first()?.to_string(),
                    f.get(1)?.parse().ok()?,
                    f.get(2)?.to_string(),
                ))
            })
            .collect()
    }

    /// Waits until task `id` has `status`; returns its pid.
    fn wait_task(&self, id: &str, status: &str) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let tasks = self.tasks();
            if let Some((_, pid, _)) = tasks.iter().find(|(i, _, s)| i == id && s == status) {
                return *pid;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never {status}: {tasks:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The cgroup directories of container `id` (`<hierarchy>/<namespace>/<id>`) that exist.
    fn cgroups_of(&self, id: &str) -> Vec<PathBuf> {
        cgroup_hierarchies()
            .into_iter()
            .map(|h| h.join(&self.ns).join(id))
            .filter(|p| p.exists())
            .collect()
    }

    /// What rsafe-runtime keeps in its root for this namespace.
    fn runtime_state(&self) -> Vec<String> {
        fs::read_dir(self.runc_root().join(&self.ns))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts that container `id` left no runtime state, cgroup or containerd record.
    fn assert_gone(&self, id: &str) {
        let state = self.runtime_state();
        assert!(
            !state.iter().any(|s| s == id),
            "rsafe-runtime state of {id} left under {}: {state:?}",
            self.runc_root().display()
        );
        assert_eq!(self.cgroups_of(id), Vec::<PathBuf>::new(), "cgroups left");
        let ls = self.ctr_out(&["container", "ls", "-q"]);
        assert!(
            !String::from_utf8_lossy(&ls.stdout).lines().any(|l| l == id),
            "container {id} still listed"
        );
    }

    /// Best-effort end of everything this containerd started (used by Drop).
    fn clean_up(&mut self) {
        for (id, _, _) in self.tasks_quiet() {
            let _ = self.ctr_out(&["task", "kill", "-s", "KILL", &id]);
            let _ = self.ctr_out(&["task", "delete", "--force", &id]);
        }
        let ls = self.ctr_out(&["container", "ls", "-q"]);
        for id in String::from_utf8_lossy(&ls.stdout).lines() {
            let _ = self.ctr_out(&["container", "rm", id]);
        }
        if let Some(mut d) = self.daemon.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &d.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while d.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        // Shims of this daemon (their command line names its socket) and what their
        // containers still run (the pids in our namespace's cgroups).
        let socket = self.socket().to_string_lossy().into_owned();
        let mut pids = processes_with_arg(&socket);
        for h in cgroup_hierarchies() {
            pids.extend(pids_under(&h.join(&self.ns)));
        }
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        std::thread::sleep(Duration::from_millis(100));
        for h in cgroup_hierarchies() {
            remove_cgroup_tree(&h.join(&self.ns));
        }
        for m in mounts_under(self.path()) {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
    }

    /// `tasks` without panicking (the daemon may be gone).
    fn tasks_quiet(&self) -> Vec<(String, u32, String)> {
        match self.ctr_out(&["task", "ls", "-q"]) {
            o if o.status.success() => String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| (l.to_string(), 0, String::new()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.clean_up();
    }
}

/// The mounted cgroup hierarchies (v1 controllers and the v2 unified tree, or v2 alone).
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    fs::read_dir(root)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("cgroup.procs").exists())
                .collect()
        })
        .unwrap_or_default()
}

/// Pids in the cgroup `dir` and every cgroup below it.
fn pids_under(dir: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(d) = fs::read_dir(dir) {
        for e in d.flatten().filter(|e| e.path().is_dir()) {
            pids.extend(pids_under(&e.path()));
        }
    }
    pids
}

/// Removes the (emptied) cgroup `dir`, children first.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(d) = fs::read_dir(dir) {
        for e in d.flatten().filter(|e| e.path().is_dir()) {
            remove_cgroup_tree(&e.path());
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Pids of processes one of whose arguments is `arg`.
fn processes_with_arg(arg: &str) -> Vec<u32> {
    let Ok(d) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    d.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
        })
        .collect()
}

/// Mount points at or under `dir`, deepest (latest) first.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == dir || p.starts_with(&format!("{dir}/")))
        .map(str::to_string)
        .collect();
    points.reverse();
    points
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The busybox image with User 0:0 as a docker-archive tagged `rsafe/busybox:root`.
fn busybox_root_archive() -> PathBuf {
    support::busybox_converted(
        "root",
        "docker-archive",
        "busybox-root-docker.tar",
        ":rsafe/busybox:root",
    )
}

/// The host-side uid that container uid 0 maps to, from a `/proc/self/uid_map` in `out`.
fn mapped_root(out: &str) -> Option<u64> {
    out.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            ["0", host, _len] => host.parse().ok(),
            _ => None,
        }
    })
}

#[test]
fn ctr_run_rm_gives_output_exit_code_and_a_confined_container() {
    let Some(c) = Containerd::start() else {
        return;
    };
    c.import(&support::busybox_docker_archive());
    c.import(&busybox_root_archive());

    // The image's user (app, 1000), in a user namespace whose root is not host root, with
    // no_new_privs and a seccomp filter.
    let o = c.run(
        &["--rm"],
        BUSYBOX,
        "c1",
        &[
            "sh",
            "-c",
            "id; cat /proc/self/uid_map; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
        ],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("uid=1000(app) gid=1000(app)"), "{t}");
    let host = mapped_root(&t).unwrap_or_else(|| panic!("no uid_map line for 0: {t}"));
    assert_ne!(host, 0, "container root is host root: {t}");
    assert!(t.contains("NoNewPrivs:\t1"), "{t}");
    assert!(t.contains("Seccomp:\t2"), "{t}");

    // The image's files are container root's, and its root filesystem is writable.
    let o = c.run(
        &["--rm"],
        BUSYBOX_ROOT,
        "c2",
        &[
            "sh",
            "-c",
            "id -u; stat -c 'owner %u' /bin/busybox /etc/passwd; touch /x && stat -c 'new %u' /x",
        ],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "0\nowner 0\nowner 0\nnew 0\n",
        "{t}"
    );

    // The workload's exit code is ctr's.
    for code in [3, 0, 42] {
        let o = c.run(
            &["--rm"],
            BUSYBOX,
            &format!("exit{code}"),
            &["sh", "-c", &format!("exit {code}")],
        );
        assert_eq!(o.status.code(), Some(code), "{}", text(&o));
    }
    // A command the image does not have: ctr fails, naming it.
    let o = c.run(&["--rm"], BUSYBOX, "missing", &["/no/such/program"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("/no/such/program"), "{}", text(&o));

    for id in ["c1", "c2", "exit3", "exit0", "exit42", "missing"] {
        c.assert_gone(id);
    }
}

#[test]
fn ctr_run_rm_runs_debian() {
    let Some(layout) = support::debian::debian_minbase_layout() else {
        return;
    };
    let Some(c) = Containerd::start() else {
        return;
    };
    let archive = support::convert_layout(
        &layout,
        support::debian::TAG,
        "docker-archive",
        "debian-minbase-docker.tar",
        ":rsafe/debian:bookworm",
    );
    c.import(&archive);
    let script = "apt-get --version | head -n 1; \
                  echo installed $(grep -c '^Status: install ok installed' /var/lib/dpkg/status); \
                  echo listed $(dpkg -l | grep -c '^ii'); \
                  echo written > /var/tmp/w && cat /var/tmp/w; \
                  touch /var/lib/dpkg/rsafe && stat -c 'var owner %u' /var/lib/dpkg/rsafe; \
                  stat -c 'apt owner %u' /usr/bin/apt-get";
    let o = c.run(&["--rm"], DEBIAN, "deb", &["sh", "-c", script]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("apt 2."), "{t}");
    let count = |what: &str| -> usize {
        t.lines()
            .find_map(|l| l.strip_prefix(what)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {what:?} line: {t}"))
    };
    // dpkg reads its database: every installed package is listed (minbase has dozens).
    assert!(count("installed ") > 50, "{t}");
    assert_eq!(count("listed "), count("installed "), "{t}");
    assert!(t.contains("\nwritten\n"), "{t}");
    assert!(t.contains("var owner 0"), "{t}");
    assert!(t.contains("apt owner 0"), "{t}");
    c.assert_gone("deb");
}

#[test]
fn ctr_run_detached_then_kill_delete_rm_leaves_nothing() {
    let Some(c) = Containerd::start() else {
        return;
    };
    c.import(&support::busybox_docker_archive());
    let log = c.path().join("d1.log");
    let uri = format!("file://{}", log.display());
    let o = c.run(
        &["-d", "--log-uri", &uri],
        BUSYBOX,
        "d1",
        &[
            "sh",
            "-c",
            "echo hello-from-d; trap 'echo got-term; exit 7' TERM; while true; do sleep 0.1; done",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let pid = c.wait_task("d1", "RUNNING");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("hello-from-d")
    {
        assert!(Instant::now() < deadline, "no output in {}", log.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The task is in containerd's cgroup, /<namespace>/<id>.
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("/{}/d1", c.ns);
    assert!(
        cgroup.lines().all(|l| l.ends_with(&want)),
        "{pid}: {cgroup}"
    );
    assert!(!c.cgroups_of("d1").is_empty());
    assert_eq!(c.runtime_state(), vec!["d1".to_string()]);
    // The shim's pause/resume are rsafe-runtime's (the cgroup freezer).
    let o = c.ctr_out(&["task", "pause", "d1"]);
    assert!(o.status.success(), "{}", text(&o));
    c.wait_task("d1", "PAUSED");
    let o = c.ctr_out(&["task", "resume", "d1"]);
    assert!(o.status.success(), "{}", text(&o));
    c.wait_task("d1", "RUNNING");

    // SIGTERM (ctr's default) reaches the trap; its exit status is the task's.
    let o = c.ctr_out(&["task", "kill", "d1"]);
    assert!(o.status.success(), "{}", text(&o));
    c.wait_task("d1", "STOPPED");
    assert!(
        fs::read_to_string(&log).unwrap().contains("got-term"),
        "{}",
        fs::read_to_string(&log).unwrap()
    );
    let o = c.ctr_out(&["task", "delete", "d1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("exit code 7"),
        "{}",
        text(&o)
    );
    let o = c.ctr_out(&["container", "rm", "d1"]);
    assert!(o.status.success(), "{}", text(&o));
    c.assert_gone("d1");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the task's process {pid} is still there"
    );
}

/// Starts the pod's first container (an httpd on 127.0.0.1:8080 answering `pod-ok`) and
/// returns its pid.
fn start_pause(c: &Containerd) -> u32 {
    let o = c.run(
        &["-d"],
        BUSYBOX,
        "pause",
        &[
            "sh",
            "-c",
            "echo pod-ok > /tmp/index.html; exec httpd -f -p 127.0.0.1:8080 -h /tmp",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    c.wait_task("pause", "RUNNING")
}

/// The namespace link of `pid` (`net:[4026…]`).
fn ns_of(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_pods_second_container_joins_the_first_ones_network_and_uts() {
    let Some(c) = Containerd::start() else {
        return;
    };
    c.import(&support::busybox_docker_archive());
    let pid = start_pause(&c).to_string();
    let net = format!("network:/proc/{pid}/ns/net");
    let uts = format!("uts:/proc/{pid}/ns/uts");
    let script = "readlink /proc/self/ns/net; readlink /proc/self/ns/uts; \
                  for i in $(seq 100); do wget -q -O - http://127.0.0.1:8080/index.html && exit 0; \
                  sleep 0.1; done; exit 1";
    let o = c.run(
        &["--rm", "--with-ns", &net, "--with-ns", &uts],
        BUSYBOX,
        "app",
        &["sh", "-c", script],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    assert_eq!(
        lines,
        vec![ns_of(&pid, "net").as_str(), &ns_of(&pid, "uts"), "pod-ok"],
        "{t}"
    );
    // Not the host's network namespace.
    assert_ne!(ns_of(&pid, "net"), ns_of("self", "net"));
    c.assert_gone("app");
}

/// Kubernetes `hostUsers: false`, as ctr can ask for it: the app container names the pod's
/// user namespace (the one rsafe gave the first container) and its network namespace by
/// path. It is in that user namespace (same uid_map), its image's files are its root's (the
/// snapshot, host root's, is id-mapped with the joined namespace), it reaches the pod's
/// server, and it is confined.
#[test]
fn a_pods_second_container_joins_the_first_ones_user_namespace() {
    let Some(c) = Containerd::start() else {
        return;
    };
    c.import(&support::busybox_docker_archive());
    let pid = start_pause(&c).to_string();
    let user = format!("user:/proc/{pid}/ns/user");
    let net = format!("network:/proc/{pid}/ns/net");
    let script = "readlink /proc/self/ns/user; cat /proc/self/uid_map; stat -c 'owner %u' /bin/busybox; \
                  grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; \
                  for i in $(seq 100); do wget -q -O - http://127.0.0.1:8080/index.html && exit 0; \
                  sleep 0.1; done; exit 1";
    let o = c.run(
        &["--rm", "--with-ns", &user, "--with-ns", &net],
        BUSYBOX,
        "app",
        &["sh", "-c", script],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let pod_map = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let expected = format!(
        "{} {} owner 0 NoNewPrivs: 1 Seccomp: 2 pod-ok",
        ns_of(&pid, "user"),
        words(&pod_map)
    );
    assert_eq!(words(&stdout), expected, "{t}");
    assert_ne!(ns_of(&pid, "user"), ns_of("self", "user"));
    c.assert_gone("app");
}

/// A container that joins a pod's IPC namespace (`--with-ns ipc:…`, as every Kubernetes
/// container joins its sandbox's) gets that namespace's message queues at /dev/mqueue: the
/// caller of `create` mounts them (it is in the namespace). This failed once, when the host's
/// /dev/mqueue was bound instead ("bind /dev/mqueue: No such file or directory" here).
/// The second container must see the first one's IPC namespace and message queues.
#[test]
fn a_pods_second_container_joins_the_first_ones_ipc() {
    let Some(c) = Containerd::start() else {
        return;
    };
    c.import(&support::busybox_docker_archive());
    let pid = start_pause(&c).to_string();
    let ipc = format!("ipc:/proc/{pid}/ns/ipc");
    let o = c.run(
        &["--rm", "--with-ns", &ipc],
        BUSYBOX,
        "app",
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/ipc; ls /dev/mqueue && echo mqueue-ok",
        ],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    assert_eq!(lines, vec![ns_of(&pid, "ipc").as_str(), "mqueue-ok"], "{t}");
    c.assert_gone("app");
}

/// `ctr task exec`: a second process in the running task, with the task's namespaces and
/// confinement, its output and exit code given back to ctr.
#[test]
fn ctr_task_exec_runs_a_process_in_the_task() {
    let Some(c) = Containerd::start() else {
        return;
    };
    c.import(&support::busybox_docker_archive());
    let o = c.run(&["-d"], BUSYBOX, "t1", &["sleep", "1000"]);
    assert!(o.status.success(), "{}", text(&o));
    let pid = c.wait_task("t1", "RUNNING").to_string();
    let script = "id -u; readlink /proc/self/ns/net; readlink /proc/self/ns/mnt; \
                  readlink /proc/self/ns/user; cat /proc/self/uid_map; \
                  grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; exit 4";
    let o = c.ctr_out(&["task", "exec", "--exec-id", "e1", "t1", "sh", "-c", script]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    let want = format!(
        "1000\n{}\n{}\n{}\n",
        ns_of(&pid, "net"),
        ns_of(&pid, "mnt"),
        ns_of(&pid, "user")
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with(&want), "{t}");
    assert_eq!(
        mapped_root(&t),
        mapped_root(&fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap()),
        "{t}"
    );
    assert!(
        t.contains("NoNewPrivs:\t1") && t.contains("Seccomp:\t2"),
        "{t}"
    );
    // The exec'd process is gone; the task runs on.
    assert_eq!(c.wait_task("t1", "RUNNING").to_string(), pid);
    let o = c.ctr_out(&["task", "kill", "-s", "KILL", "t1"]);
    assert!(o.status.success(), "{}", text(&o));
    c.wait_task("t1", "STOPPED");
    assert!(c.ctr_out(&["task", "delete", "t1"]).status.success());
    assert!(c.ctr_out(&["container", "rm", "t1"]).status.success());
    c.assert_gone("t1");
}

/// The shim's `SystemdCgroup = true` (runc's `--systemd-cgroup`) is refused in one line that
/// names the cgroup manager to use, and leaves nothing behind.
#[test]
fn systemd_cgroups_are_refused_in_one_line() {
    let Some(c) = Containerd::start() else {
        return;
    };
    c.import(&support::busybox_docker_archive());
    let o = c.run(
        &[
            "--rm",
            "--runc-systemd-cgroup",
            "--cgroup",
            "system.slice:rsafe:sd1",
        ],
        BUSYBOX,
        "sd1",
        &["true"],
    );
    let t = text(&o);
    assert_ne!(o.status.code(), Some(0), "{t}");
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{t}");
    assert!(
        lines[0].contains("--systemd-cgroup is not supported") && lines[0].contains("cgroupfs"),
        "{t}"
    );
    c.assert_gone("sd1");
}
