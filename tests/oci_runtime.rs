//! `rsafe-runtime` (runc's command line): the OCI lifecycle driven directly on bundles made
//! here, as root and as the unprivileged test user, with the confinement checked from inside;
//! then podman (as root) using rsafe as its runtime on an image it imported.
#[path = "support/run.rs"]
#[allow(dead_code)]
mod run_support;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use run_support::Caller;
use serde_json::{Value, json};
use support::containers::shared_tempdir;

/// `rsafe runtime --root ROOT ARGS…` as `caller`.
fn rt(caller: Caller, root: &Path, args: &[&str]) -> Command {
    let mut cmd = match caller {
        Caller::Host => Command::new(support::rsafe_bin()),
        Caller::User | Caller::UserWithSubids => {
            let (uid, gid) = support::test_user().expect("test user");
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--init-groups".into(),
            ]);
            if caller == Caller::User {
                c.args(["--inh-caps=-all", "--bounding-set=-all"]);
            }
            c.arg("--").arg(support::rsafe_bin());
            c
        }
    };
    cmd.arg("runtime").arg("--root").arg(root).args(args);
    cmd
}

fn out(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .expect("run rsafe runtime")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A bundle (config from `rsafe runtime spec`, plus `edit`) on `rootfs`, in a directory the
/// test user can use; the container's output goes to `<bundle>/out`.
struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new(caller: Caller, rootfs: &Path, args: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
        let dir = runtime_root("rsafe-oci-bundle-");
        let spec = out(rt(
            Caller::Host,
            dir.path(),
            &["spec", "--bundle", dir.path().to_str().unwrap()],
        ));
        assert!(spec.status.success(), "{}", text(&spec));
        let path = dir.path().join("config.json");
        let mut config: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        config["root"] = json!({"path": rootfs, "readonly": false});
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        // The root filesystems are shared fixtures: writes go to a tmpfs.
        config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}));
        if caller != Caller::Host {
            // runc's rootless spec: a user namespace, no network namespace, no cgroup.
            let ns = config["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "network" && n["type"] != "cgroup");
            ns.push(json!({"type": "user"}));
            let mounts = config["mounts"].as_array_mut().unwrap();
            mounts.retain(|m| m["type"] != "cgroup" && m["type"] != "sysfs");
        }
        edit(&mut config);
        fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let b = Bundle { dir };
        fs::write(b.out_path(), "").unwrap();
        fs::set_permissions(b.out_path(), fs::Permissions::from_mode(0o666)).unwrap();
        b
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    fn out_path(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn output(&self) -> String {
        fs::read_to_string(self.out_path()).unwrap_or_default()
    }

    /// Waits until the container's output contains `what`.
    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let o = self.output();
            if o.contains(what) {
                return o;
            }
            assert!(
                Instant::now() < deadline,
                "no {what:?} in the container's output: {o}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `create` with the container's stdout on the bundle's `out` file and its stderr read back
/// ([`run_create`]).
fn create(caller: Caller, root: &Path, b: &Bundle, id: &str, extra: &[&str]) -> Output {
    let pid_file = format!("{}/pid", b.path());
    let mut args = vec!["create", "--bundle", b.path(), "--pid-file", &pid_file];
    args.extend(extra);
    args.push(id);
    run_create(rt(caller, root, &args), b, id, Stdio::null())
}

/// Runs the `create` command `cmd` of container `id`: its stdout (the container's too) appended
/// to the bundle's `out` file, its stderr (inherited by the container as well, so no pipe: it
/// would never reach end-of-file) to a file read back into the returned output.
fn run_create(mut cmd: Command, b: &Bundle, id: &str, stdin: Stdio) -> Output {
    let file = fs::OpenOptions::new()
        .append(true)
        .open(b.out_path())
        .unwrap();
    let err_path = b.dir.path().join(format!("create-{id}.err"));
    let err = fs::File::create(&err_path).unwrap();
    fs::set_permissions(&err_path, fs::Permissions::from_mode(0o666)).unwrap();
    cmd.stdin(stdin).stdout(file).stderr(err);
    let status = cmd.status().unwrap();
    Output {
        status,
        stdout: Vec::new(),
        stderr: fs::read(&err_path).unwrap(),
    }
}

fn state(caller: Caller, root: &Path, id: &str) -> Value {
    let o = out(rt(caller, root, &["state", id]));
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn wait_status(caller: Caller, root: &Path, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = state(caller, root, id);
        if s["status"] == want {
            return s;
        }
        assert!(Instant::now() < deadline, "{id} never became {want}: {s}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn runtime_root(name: &str) -> tempfile::TempDir {
    let d = shared_tempdir(name);
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o777)).unwrap();
    d
}

/// Every caller: root (no user namespace in the bundle: rsafe adds one) and the test user.
fn callers() -> Vec<Caller> {
    Caller::all()
        .into_iter()
        .filter(|c| *c != Caller::UserWithSubids)
        .collect()
}

#[test]
fn the_lifecycle_runs_and_the_container_is_confined() {
    for caller in callers() {
        let root = runtime_root("rsafe-oci-root-");
        let script = "echo started; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
                      cat /proc/self/uid_map; stat -c 'owner %u' /bin/busybox; hostname; \
                      touch /tmp/w && echo writable; exec sleep 1000";
        let b = Bundle::new(caller, &caller.rootfs(), &["sh", "-c", script], |_| {});
        let id = format!("life-{caller:?}").to_lowercase();
        let c = create(caller, root.path(), &b, &id, &[]);
        assert!(c.status.success(), "{caller:?}: {}", text(&c));
        // Created: the process exists, has run nothing, and its pid is in the pid file.
        let s = state(caller, root.path(), &id);
        assert_eq!(s["status"], "created", "{s}");
        assert_eq!(s["ociVersion"], "1.2.0");
        let pid: i64 = fs::read_to_string(format!("{}/pid", b.path()))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(s["pid"], pid);
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        assert_eq!(b.output(), "", "{caller:?}: ran before start");
        let floor = s["rsafe.floor"].to_string();
        assert!(
            floor.contains("seccomp: rsafe's default profile"),
            "{floor}"
        );

        let st = out(rt(caller, root.path(), &["start", &id]));
        assert!(st.status.success(), "{}", text(&st));
        let o = b.wait_for("writable");
        assert!(o.contains("NoNewPrivs:\t1"), "{caller:?}: {o}");
        assert!(o.contains("Seccomp:\t2"), "{caller:?}: {o}");
        assert!(
            o.lines().any(|l| l == "rsafe"),
            "{caller:?}: the bundle's hostname: {o}"
        );
        assert!(
            o.contains("owner 0"),
            "{caller:?}: the rootfs is container root's: {o}"
        );
        // Container root is never host root.
        let map_line = o
            .lines()
            .find(|l| l.trim_start().starts_with("0 "))
            .unwrap();
        let host: u64 = map_line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_ne!(host, 0, "{caller:?}: {o}");
        if caller == Caller::Host {
            assert!(floor.contains("user namespace: added"), "{floor}");
        }
        let again = out(rt(caller, root.path(), &["start", &id]));
        assert!(!again.status.success(), "a second start must fail");
        assert_eq!(wait_status(caller, root.path(), &id, "running")["pid"], pid);
        exec_has_the_containers_confinement(caller, root.path(), &id, pid);
        let running_delete = out(rt(caller, root.path(), &["delete", &id]));
        assert!(!running_delete.status.success());
        assert!(
            String::from_utf8_lossy(&running_delete.stderr).contains("running"),
            "{}",
            text(&running_delete)
        );

        let k = out(rt(caller, root.path(), &["kill", &id, "KILL"]));
        assert!(k.status.success(), "{}", text(&k));
        let s = wait_status(caller, root.path(), &id, "stopped");
        assert!(s.get("pid").is_none(), "{s}");
        let list = out(rt(caller, root.path(), &["list", "--format", "json"]));
        let list: Value = serde_json::from_slice(&list.stdout).unwrap();
        assert_eq!(list[0]["id"], id.as_str());
        let d = out(rt(caller, root.path(), &["delete", &id]));
        assert!(d.status.success(), "{}", text(&d));
        assert_eq!(
            fs::read_dir(root.path()).unwrap().count(),
            0,
            "{caller:?}: state left behind"
        );
        let gone = out(rt(caller, root.path(), &["state", &id]));
        assert!(
            String::from_utf8_lossy(&gone.stderr).contains("does not exist"),
            "{}",
            text(&gone)
        );
    }
}

/// `exec` into the running container `id` (first process `pid`): the container's namespaces
/// and exactly its confinement; exit codes as runc's; a process.json and `--detach` as
/// podman and the containerd shim pass them.
fn exec_has_the_containers_confinement(caller: Caller, root: &Path, id: &str, pid: i64) {
    let status_of = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .map(|l| l.to_string())
            .unwrap_or_default()
    };
    let container = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let script = "grep -E '^(Cap(Eff|Bnd|Prm)|NoNewPrivs|Seccomp):' /proc/self/status; cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname";
    let e = out(rt(caller, root, &["exec", id, "sh", "-c", script]));
    let t = String::from_utf8_lossy(&e.stdout).to_string();
    assert!(e.status.success(), "{caller:?}: {}", text(&e));
    for key in ["CapEff:", "CapBnd:", "CapPrm:", "NoNewPrivs:", "Seccomp:"] {
        assert_eq!(
            status_of(&t, key),
            status_of(&container, key),
            "{caller:?}: exec's {key} differs from the container's: {t}"
        );
    }
    assert!(
        t.contains("sleep 1000"),
        "{caller:?}: not in the container's pid namespace: {t}"
    );
    assert!(
        t.lines().any(|l| l == "rsafe"),
        "{caller:?}: not in its UTS namespace: {t}"
    );
    let code = out(rt(caller, root, &["exec", id, "sh", "-c", "exit 3"]));
    assert_eq!(code.status.code(), Some(3), "{}", text(&code));
    let missing = out(rt(caller, root, &["exec", id, "no-such-command"]));
    assert_eq!(missing.status.code(), Some(127), "{}", text(&missing));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("executable file not found"),
        "{}",
        text(&missing)
    );
    // Found but not executable: 126 with runc's words (the failure comes after the process
    // said what confines it: the whole channel is read).
    let denied = out(rt(caller, root, &["exec", id, "/etc/passwd"]));
    assert_eq!(denied.status.code(), Some(126), "{}", text(&denied));
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("\"/etc/passwd\": permission denied"),
        "{}",
        text(&denied)
    );
    // podman's and the shim's form: a process.json, detached, with a pid file.
    let dir = shared_tempdir("rsafe-oci-exec-");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let process = dir.path().join("process.json");
    let marker = "/tmp/exec-detached";
    fs::write(&process, json!({"args": ["sh", "-c", format!("echo $$ > {marker}; exec sleep 1000")], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}).to_string()).unwrap();
    let pid_file = dir.path().join("exec.pid");
    // The detached process keeps its stdio: no pipes here (they would never reach EOF).
    let d = rt(
        caller,
        root,
        &[
            "exec",
            "--detach",
            "--process",
            process.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            id,
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .status()
    .unwrap();
    assert!(d.success(), "exec --detach: {d:?}");
    let exec_pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ns = |p: i64, kind: &str| fs::read_link(format!("/proc/{p}/ns/{kind}")).unwrap();
    for kind in ["pid", "mnt", "user", "uts", "ipc"] {
        assert_eq!(
            ns(exec_pid.into(), kind),
            ns(pid, kind),
            "{caller:?}: exec's {kind} namespace"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = out(rt(caller, root, &["exec", id, "cat", marker]));
        if seen.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the detached process never ran: {}",
            text(&seen)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(exec_pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[test]
fn delete_of_a_created_container_kills_its_waiting_process() {
    for caller in callers() {
        let root = runtime_root("rsafe-oci-root-");
        let b = Bundle::new(caller, &caller.rootfs(), &["echo", "never"], |_| {});
        let c = create(caller, root.path(), &b, "waiting", &[]);
        assert!(c.status.success(), "{}", text(&c));
        let pid = state(caller, root.path(), "waiting")["pid"]
            .as_i64()
            .unwrap();
        let d = out(rt(caller, root.path(), &["delete", "waiting"]));
        assert!(d.status.success(), "{}", text(&d));
        let dead = !Path::new(&format!("/proc/{pid}")).exists()
            || fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z");
        assert!(
            dead,
            "{caller:?}: the created container's process survived delete"
        );
        assert_eq!(b.output(), "");
    }
}

/// Whether process `pid` has ended (gone, or a zombie its new parent has not reaped yet).
fn ended(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z"))
}

#[test]
fn a_created_container_exits_when_its_state_directory_is_removed() {
    for caller in callers() {
        let root = runtime_root("rsafe-oci-root-");
        let b = Bundle::new(caller, &caller.rootfs(), &["echo", "never"], |_| {});
        let c = create(caller, root.path(), &b, "orphan", &[]);
        assert!(c.status.success(), "{}", text(&c));
        let pid = state(caller, root.path(), "orphan")["pid"]
            .as_i64()
            .unwrap();
        // It waits for start across its checks while the state is there ...
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            !ended(pid),
            "{caller:?}: a created container gave up waiting"
        );
        // ... and ends once nothing can find it to start or delete it.
        fs::remove_dir_all(root.path().join("orphan")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ended(pid) {
            assert!(
                Instant::now() < deadline,
                "{caller:?}: the orphaned container still waits"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(b.output(), "", "{caller:?}: the workload ran");
    }
}

#[test]
fn delete_force_of_a_created_container_leaves_nothing() {
    if !support::have("root for cgroups", support::is_root()) {
        return;
    }
    let root = runtime_root("rsafe-oci-root-");
    let cgroup = format!("rsafe-oci-force-{}", std::process::id());
    let b = Bundle::new(
        Caller::Host,
        &support::busybox_rootfs(),
        &["echo", "never"],
        |c| c["linux"]["cgroupsPath"] = json!(format!("/{cgroup}")),
    );
    let c = create(Caller::Host, root.path(), &b, "forced", &[]);
    assert!(c.status.success(), "{}", text(&c));
    let pid = state(Caller::Host, root.path(), "forced")["pid"]
        .as_i64()
        .unwrap();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let hierarchies: Vec<PathBuf> = mountinfo
        .lines()
        .filter(|l| l.contains(" - cgroup"))
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect();
    assert!(
        hierarchies.iter().any(|h| h.join(&cgroup).exists()),
        "no cgroup was made"
    );
    let d = out(rt(
        Caller::Host,
        root.path(),
        &["delete", "--force", "forced"],
    ));
    assert!(d.status.success(), "{}", text(&d));
    assert!(
        ended(pid),
        "delete --force left the created container's process"
    );
    for h in &hierarchies {
        assert!(!h.join(&cgroup).exists(), "cgroup left in {}", h.display());
    }
    let root_text = root.path().display().to_string();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&root_text),
        "a mount left under {root_text}"
    );
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    let list = out(rt(Caller::Host, root.path(), &["list", "-q"]));
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "");
    assert_eq!(b.output(), "");
}

#[test]
fn the_linux32_personality_reaches_the_workload() {
    let host = Command::new("uname").arg("-m").output().unwrap();
    let host = String::from_utf8_lossy(&host.stdout).trim().to_string();
    if !support::have("an x86_64 host (LINUX32 is i686)", host == "x86_64") {
        return;
    }
    for caller in callers() {
        let root = runtime_root("rsafe-oci-root-");
        let b = Bundle::new(caller, &caller.rootfs(), &["uname", "-m"], |c| {
            c["linux"]["personality"] = json!({"domain": "LINUX32"});
        });
        let c = create(caller, root.path(), &b, "persona", &[]);
        assert!(c.status.success(), "{caller:?}: {}", text(&c));
        let st = out(rt(caller, root.path(), &["start", "persona"]));
        assert!(st.status.success(), "{}", text(&st));
        assert_eq!(b.wait_for("\n").trim(), "i686", "{caller:?}");
        wait_status(caller, root.path(), "persona", "stopped");
        let d = out(rt(caller, root.path(), &["delete", "persona"]));
        assert!(d.status.success(), "{}", text(&d));
    }
}

/// The workload a policy is learned from in `policy_dir/web.toml` (with `rsafe run --learn`
/// on `caller`'s rootfs): a file read, a listing, an output to /dev/null. The shell's `read`
/// and `echo`, not `cat`: busybox cat copies with sendfile to a regular file (the bundle's
/// stdout here) but not to a pipe (the learning run's), a call the policy would not have.
const LEARNED: &str = "read line </etc/passwd; echo \"$line\"; ls /bin >/dev/null; echo learned";

fn learn_policy(caller: Caller, policy_dir: &Path) {
    let store = support::temp_root();
    let rootfs = caller.rootfs();
    let out_file = policy_dir.join("web.toml");
    let learned = run_support::run(
        caller,
        store.path(),
        &[
            "--rm",
            "--learn",
            out_file.to_str().unwrap(),
            rootfs.to_str().unwrap(),
            "/bin/sh",
            "-c",
            LEARNED,
        ],
    );
    assert_eq!(learned.code, 0, "{caller:?}: {learned:?}");
}

#[test]
fn a_learned_policy_named_by_annotation_narrows_the_bundle() {
    for caller in callers() {
        let policies = runtime_root("rsafe-oci-policies-");
        learn_policy(caller, policies.path());
        let policy_dir = format!("--policy-dir={}", policies.path().display());
        let root = runtime_root("rsafe-oci-root-");
        // The learned workload runs; a directory it never read is refused by landlock
        // (EACCES), a syscall it never made by seccomp (EPERM), although the bundle's own
        // confinement (rsafe's default, a writable root, a tmpfs /tmp) allows both.
        let script = format!("{LEARNED}; ls /root; mkdir /tmp/made; echo end");
        for (id, annotation) in [("narrowed", Some("web")), ("plain", None)] {
            let b = Bundle::new(caller, &caller.rootfs(), &["sh", "-c", &script], |c| {
                if let Some(name) = annotation {
                    c["annotations"] = json!({"rsafe.policy": name});
                }
            });
            let c = create_with(caller, root.path(), &b, id, &policy_dir);
            assert!(c.status.success(), "{caller:?} {id}: {}", text(&c));
            let st = out(rt(caller, root.path(), &["start", id]));
            assert!(st.status.success(), "{}", text(&st));
            let output = b.wait_for("end\n");
            wait_status(caller, root.path(), id, "stopped");
            let err_path = b.dir.path().join(format!("create-{id}.err"));
            let err = fs::read_to_string(&err_path).unwrap_or_default();
            assert!(
                output.contains("root:x:0:0"),
                "{caller:?} {id}: {output} {err}"
            );
            assert!(output.contains("learned\n"), "{caller:?} {id}: {output}");
            match annotation {
                Some(_) => {
                    assert!(
                        err.contains("ls: can't open '/root': Permission denied"),
                        "{caller:?}: {err}"
                    );
                    assert!(
                        err.contains(
                            "mkdir: can't create directory '/tmp/made': Operation not permitted"
                        ),
                        "{caller:?}: {err}"
                    );
                }
                None => assert!(
                    !err.contains("Permission denied") && !err.contains("not permitted"),
                    "{caller:?}: the bundle alone allows both: {err}"
                ),
            }
            let d = out(rt(caller, root.path(), &["delete", id]));
            assert!(d.status.success(), "{}", text(&d));
        }

        // Never a path, and never a policy that is not there: one line naming the
        // annotation, nothing made.
        for bad in ["../web", "/etc/rsafe/policies/web", "web/../web", "nope"] {
            let b = Bundle::new(caller, &caller.rootfs(), &["true"], |c| {
                c["annotations"] = json!({"rsafe.policy": bad});
            });
            let c = create_with(caller, root.path(), &b, "refused", &policy_dir);
            assert_eq!(c.status.code(), Some(1), "{caller:?} {bad}: {}", text(&c));
            let err = String::from_utf8_lossy(&c.stderr);
            assert!(
                err.contains("annotations.rsafe.policy") && err.contains(bad),
                "{caller:?} {bad}: {err}"
            );
            assert_eq!(err.trim().lines().count(), 1, "{caller:?} {bad}: {err}");
            assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
        }
    }
    // `features` says what the annotation takes.
    let root = runtime_root("rsafe-oci-root-");
    let f = out(rt(Caller::Host, root.path(), &["features"]));
    let f: Value = serde_json::from_slice(&f.stdout).unwrap();
    assert_eq!(
        f["annotations"]["io.github.rsafe.policy.annotation"],
        "rsafe.policy"
    );
    let values = f["annotations"]["io.github.rsafe.policy.values"]
        .as_str()
        .unwrap_or_default();
    assert!(values.contains("/etc/rsafe/policies"), "{f}");
}

/// [`create`] with a global flag before the command (`--policy-dir=DIR`).
fn create_with(caller: Caller, root: &Path, b: &Bundle, id: &str, global: &str) -> Output {
    let pid_file = format!("{}/pid", b.path());
    let args = [
        global,
        "create",
        "--bundle",
        b.path(),
        "--pid-file",
        &pid_file,
        id,
    ];
    run_create(rt(caller, root, &args), b, id, Stdio::null())
}

/// The processes whose command line says they are the denial reporter of container `id`
/// (the title rsafe gives it; a reaped or zombie process has none).
fn reporters_of(id: &str) -> Vec<i32> {
    let title = format!("denial reporter of {id}");
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(&title)
        })
        .collect()
}

/// The reporters of `id` once there is one (it takes its title after `create` returned).
fn reporters_seen(id: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = reporters_of(id);
        if !found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until no reporter of `id` is left; whether none is.
fn reporters_gone(id: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reporters_of(id).is_empty() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// `create` with `--policy-dir` and a JSON `--log`, the container's stdin from `stdin`.
fn create_reporting(
    caller: Caller,
    root: &Path,
    b: &Bundle,
    id: &str,
    policy_dir: &Path,
    stdin: Stdio,
) -> Output {
    let log = b.dir.path().join("log.json");
    fs::write(&log, "").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
    let policy_dir = format!("--policy-dir={}", policy_dir.display());
    let log = format!("--log={}", log.display());
    let args = [
        policy_dir.as_str(),
        &log,
        "--log-format=json",
        "create",
        "--bundle",
        b.path(),
        id,
    ];
    run_create(rt(caller, root, &args), b, id, stdin)
}

/// Under `rsafe-runtime`, a learned policy (`report_denials = true`) named by the annotation
/// names its denials on the container's stderr (create's, the container's log under podman or
/// the shim) and in the JSON log, each before the workload's own message; its reporter ends
/// with the container, and a reporter killed mid-run leaves the workload's notified calls
/// failing with ENOSYS and nothing after `delete`.
#[test]
fn a_learned_policy_reports_its_denials_on_the_containers_stderr() {
    for caller in callers() {
        let policies = runtime_root("rsafe-oci-policies-");
        learn_policy(caller, policies.path());
        let root = runtime_root("rsafe-oci-root-");
        let id = format!("reports-{}-{caller:?}", std::process::id());
        let script = format!("{LEARNED}; mkdir /tmp/made; cat /etc/group; echo end");
        let b = Bundle::new(caller, &caller.rootfs(), &["sh", "-c", &script], |c| {
            c["annotations"] = json!({"rsafe.policy": "web"});
        });
        let c = create_reporting(caller, root.path(), &b, &id, policies.path(), Stdio::null());
        assert!(c.status.success(), "{caller:?}: {}", text(&c));
        assert_eq!(reporters_seen(&id).len(), 1, "{caller:?}: {}", text(&c));
        let st = out(rt(caller, root.path(), &["start", &id]));
        assert!(st.status.success(), "{}", text(&st));
        let output = b.wait_for("end\n");
        assert!(output.contains("learned\n"), "{caller:?}: {output}");
        wait_status(caller, root.path(), &id, "stopped");
        assert!(
            reporters_gone(&id),
            "{caller:?}: the reporter outlived its container"
        );
        let err = fs::read_to_string(b.dir.path().join(format!("create-{id}.err"))).unwrap();
        let lines: Vec<&str> = err.lines().collect();
        let at = |line: &str| {
            lines
                .iter()
                .position(|l| *l == line)
                .unwrap_or_else(|| panic!("{caller:?}: no {line:?} in {err}"))
        };
        let mkdir = "rsafe: denied: mkdir /tmp/made (not in policy)";
        let group = "rsafe: denied: openat /etc/group (not in policy)";
        assert!(
            at(mkdir) < at("mkdir: can't create directory '/tmp/made': Operation not permitted"),
            "{caller:?}: {err}"
        );
        assert!(
            at(group) < at("cat: can't open '/etc/group': Permission denied"),
            "{caller:?}: {err}"
        );
        assert_eq!(
            err.matches("rsafe: denied:").count(),
            2,
            "{caller:?}: {err}"
        );
        let log = fs::read_to_string(b.dir.path().join("log.json")).unwrap();
        let logged: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for line in [mkdir, group] {
            assert!(
                logged
                    .iter()
                    .any(|v| v["level"] == "warning" && v["msg"] == line && v["time"].is_string()),
                "{caller:?}: {log}"
            );
        }
        let d = out(rt(caller, root.path(), &["delete", &id]));
        assert!(d.status.success(), "{}", text(&d));

        // kill -9 of the reporter while the container waits on its stdin: its next notified
        // call fails with ENOSYS (never more than the policy), `delete` leaves nothing.
        let id = format!("{id}-killed");
        let script = format!("{LEARNED}; read wait; cat /etc/group; echo after");
        let b = Bundle::new(caller, &caller.rootfs(), &["sh", "-c", &script], |c| {
            c["annotations"] = json!({"rsafe.policy": "web"});
        });
        let (reader, mut writer) = std::io::pipe().unwrap();
        let c = create_reporting(caller, root.path(), &b, &id, policies.path(), reader.into());
        assert!(c.status.success(), "{caller:?}: {}", text(&c));
        let st = out(rt(caller, root.path(), &["start", &id]));
        assert!(st.status.success(), "{}", text(&st));
        b.wait_for("learned\n");
        // An exec'd process's listener goes to the reporter too: its line on exec's stderr.
        let mkdir = ["exec", id.as_str(), "mkdir", "/tmp/by-exec"];
        let e = out(rt(caller, root.path(), &mkdir));
        assert_eq!(e.status.code(), Some(1), "{caller:?}: {}", text(&e));
        let exec_err = String::from_utf8_lossy(&e.stderr);
        let line = exec_err.find("rsafe: denied: mkdir /tmp/by-exec (not in policy)\n");
        let own = exec_err.find("can't create directory '/tmp/by-exec': Operation not permitted");
        assert!(
            matches!((line, own), (Some(l), Some(o)) if l < o),
            "{caller:?}: {}",
            text(&e)
        );
        let reporter = reporters_seen(&id);
        assert_eq!(reporter.len(), 1, "{caller:?}");
        assert!(
            Command::new("kill")
                .args(["-9", &reporter[0].to_string()])
                .status()
                .unwrap()
                .success()
        );
        assert!(reporters_gone(&id), "{caller:?}: kill -9 did not end it");
        // Without its reporter an exec'd process's filter does not notify: EPERM, no line.
        let e = out(rt(caller, root.path(), &mkdir));
        assert_eq!(e.status.code(), Some(1), "{caller:?}: {}", text(&e));
        let exec_err = String::from_utf8_lossy(&e.stderr);
        assert!(
            exec_err.contains("Operation not permitted") && !exec_err.contains("rsafe: denied"),
            "{caller:?}: {}",
            text(&e)
        );
        std::io::Write::write_all(&mut writer, b"go\n").unwrap();
        drop(writer);
        b.wait_for("after\n");
        wait_status(caller, root.path(), &id, "stopped");
        let err = fs::read_to_string(b.dir.path().join(format!("create-{id}.err"))).unwrap();
        assert!(
            err.contains("Function not implemented"),
            "{caller:?}: {err}"
        );
        assert!(!err.contains("rsafe: denied"), "{caller:?}: {err}");
        let d = out(rt(caller, root.path(), &["delete", &id]));
        assert!(d.status.success(), "{}", text(&d));
        assert!(reporters_of(&id).is_empty());
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0, "{caller:?}");
    }
}

/// A bundle with its own seccomp agent (`linux.seccomp.listenerPath`) under a policy that
/// reports its denials: the agent keeps every call it notifies that the policy allows (the
/// reporter's CONTINUE would have skipped it), the denials are the workload's EPERM only,
/// and `state` says why.
#[test]
fn a_seccomp_agent_is_kept_under_a_reporting_policy_which_then_does_not_report() {
    if !support::have(
        "python3 (the test's seccomp agent)",
        support::tool("python3"),
    ) {
        return;
    }
    for caller in callers() {
        let policies = runtime_root("rsafe-oci-policies-");
        learn_policy(caller, policies.path());
        let root = runtime_root("rsafe-oci-root-");
        let agent_dir = runtime_root("rsafe-oci-agent-");
        let (mut agent, socket, report) = start_agent(agent_dir.path());
        let id = format!("agent-reports-{}-{caller:?}", std::process::id());
        let script = format!("{LEARNED}; mkdir /tmp/made; ls /bin >/dev/null; echo end");
        let b = Bundle::new(caller, &caller.rootfs(), &["sh", "-c", &script], |c| {
            c["annotations"] = json!({"rsafe.policy": "web"});
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": socket,
                "syscalls": [{"names": ["getdents64"], "action": "SCMP_ACT_NOTIFY"}]
            });
        });
        let c = create_reporting(caller, root.path(), &b, &id, policies.path(), Stdio::null());
        assert!(c.status.success(), "{caller:?}: {}", text(&c));
        let floor = state(caller, root.path(), &id)["rsafe.floor"].to_string();
        assert!(
            floor.contains("rsafe.policy=web: report_denials: the bundle's seccomp agent"),
            "{caller:?}: {floor}"
        );
        let st = out(rt(caller, root.path(), &["start", &id]));
        assert!(st.status.success(), "{}", text(&st));
        b.wait_for("end\n");
        wait_status(caller, root.path(), &id, "stopped");
        assert!(reporters_of(&id).is_empty(), "{caller:?}");
        let err = fs::read_to_string(b.dir.path().join(format!("create-{id}.err"))).unwrap();
        assert!(
            err.contains("mkdir: can't create directory '/tmp/made': Operation not permitted"),
            "{caller:?}: {err}"
        );
        assert!(!err.contains("rsafe: denied"), "{caller:?}: {err}");
        let _ = agent.kill();
        let _ = agent.wait();
        // The agent was asked for the listings the policy allows.
        let asked = fs::read_to_string(&report).unwrap();
        assert!(
            asked.contains(&format!("nr={}", libc::SYS_getdents64)),
            "{caller:?}: {asked}"
        );
        let d = out(rt(caller, root.path(), &["delete", &id]));
        assert!(d.status.success(), "{}", text(&d));
    }
}

#[test]
fn unsupported_fields_are_refused_by_name_and_leave_nothing() {
    let root = runtime_root("rsafe-oci-root-");
    let b = Bundle::new(Caller::Host, &support::busybox_rootfs(), &["true"], |c| {
        c["linux"]["intelRdt"] = json!({"closID": "x"});
    });
    let c = create(Caller::Host, root.path(), &b, "refused", &[]);
    assert_eq!(c.status.code(), Some(1));
    let err = String::from_utf8_lossy(&c.stderr);
    assert!(
        err.contains("linux.intelRdt") && err.contains("config.json"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);

    let b = Bundle::new(Caller::Host, &support::busybox_rootfs(), &["true"], |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "rshared"]}));
    });
    let c = create(Caller::Host, root.path(), &b, "refused2", &[]);
    let err = String::from_utf8_lossy(&c.stderr);
    assert!(err.contains("mounts[") && err.contains("shared"), "{err}");
    let bad = out(rt(
        Caller::Host,
        root.path(),
        &["create", "--bundle", b.path(), "../escape"],
    ));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid container id"),
        "{}",
        text(&bad)
    );
    let systemd = out(rt(
        Caller::Host,
        root.path(),
        &["--systemd-cgroup", "state", "x"],
    ));
    assert!(String::from_utf8_lossy(&systemd.stderr).contains("--systemd-cgroup"));
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
}

#[test]
fn hooks_get_the_state_and_limits_land_in_the_cgroup() {
    if !support::is_root() {
        return;
    }
    let root = runtime_root("rsafe-oci-root-");
    let marks = shared_tempdir("rsafe-oci-hooks-");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}", marks.path().display())]});
    let cgroup = format!("/rsafe-oci-test/c-{}", std::process::id());
    let b = Bundle::new(
        Caller::Host,
        &support::busybox_rootfs(),
        &["sh", "-c", "echo up; exec sleep 1000"],
        |c| {
            c["hooks"] = json!({"createRuntime": [hook("createRuntime")], "prestart": [hook("prestart")], "poststart": [hook("poststart")], "poststop": [hook("poststop")]});
            c["linux"]["cgroupsPath"] = json!(cgroup);
            c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 77}});
        },
    );
    let c = create(Caller::Host, root.path(), &b, "hooked", &[]);
    assert!(c.status.success(), "{}", text(&c));
    let created: Value =
        serde_json::from_slice(&fs::read(marks.path().join("createRuntime")).unwrap()).unwrap();
    assert_eq!(created["status"], "creating");
    assert_eq!(created["id"], "hooked");
    assert!(created["pid"].as_i64().unwrap() > 0);
    assert!(marks.path().join("prestart").exists());
    let mem = Path::new("/sys/fs/cgroup/memory").join(cgroup.trim_start_matches('/'));
    if mem.exists() {
        assert_eq!(
            fs::read_to_string(mem.join("memory.limit_in_bytes"))
                .unwrap()
                .trim(),
            (64u64 << 20).to_string()
        );
    }
    let pids = Path::new("/sys/fs/cgroup/pids").join(cgroup.trim_start_matches('/'));
    assert_eq!(
        fs::read_to_string(pids.join("pids.max")).unwrap().trim(),
        "77"
    );
    let pid = state(Caller::Host, root.path(), "hooked")["pid"]
        .as_i64()
        .unwrap();
    assert!(
        fs::read_to_string(pids.join("cgroup.procs"))
            .unwrap()
            .contains(&pid.to_string())
    );
    assert!(
        out(rt(Caller::Host, root.path(), &["start", "hooked"]))
            .status
            .success()
    );
    b.wait_for("up");
    let started: Value =
        serde_json::from_slice(&fs::read(marks.path().join("poststart")).unwrap()).unwrap();
    assert_eq!(started["status"], "running");
    // One reading of the cgroup, in runc's `events --stats` shape.
    let ev = out(rt(
        Caller::Host,
        root.path(),
        &["events", "--stats", "hooked"],
    ));
    assert!(ev.status.success(), "{}", text(&ev));
    let ev: Value = serde_json::from_slice(&ev.stdout).unwrap();
    assert_eq!(
        (&ev["type"], &ev["id"]),
        (&json!("stats"), &json!("hooked"))
    );
    assert_eq!(ev["data"]["pids"]["limit"], 77, "{ev}");
    assert!(ev["data"]["pids"]["current"].as_u64() >= Some(1), "{ev}");
    assert!(
        ev["data"]["cpu"]["usage"]["total"].as_u64() > Some(0),
        "{ev}"
    );
    if mem.exists() {
        let usage = &ev["data"]["memory"]["usage"];
        assert_eq!(usage["limit"], 64u64 << 20, "{ev}");
        assert!(usage["usage"].as_u64() > Some(0), "{ev}");
        assert!(ev["data"]["memory"]["raw"]["rss"].is_u64(), "{ev}");
    }
    let ps = out(rt(
        Caller::Host,
        root.path(),
        &["ps", "--format", "json", "hooked"],
    ));
    assert!(
        String::from_utf8_lossy(&ps.stdout).contains(&pid.to_string()),
        "{}",
        text(&ps)
    );
    let d = out(rt(
        Caller::Host,
        root.path(),
        &["delete", "--force", "hooked"],
    ));
    assert!(d.status.success(), "{}", text(&d));
    let stopped: Value =
        serde_json::from_slice(&fs::read(marks.path().join("poststop")).unwrap()).unwrap();
    assert_eq!(stopped["status"], "stopped");
    assert!(!pids.exists(), "the container's cgroup was left behind");
    let gone = out(rt(
        Caller::Host,
        root.path(),
        &["events", "--stats", "hooked"],
    ));
    assert!(!gone.status.success(), "{}", text(&gone));
    // The shared parent, in every hierarchy (another run's container may still be in it).
    for h in fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .filter_map(Result::ok)
    {
        let _ = fs::remove_dir(h.path().join("rsafe-oci-test"));
    }
}

/// `events ARGS…` running, its stdout read line by line on a thread.
struct EventStream {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl EventStream {
    fn start(caller: Caller, root: &Path, args: &[&str]) -> EventStream {
        let mut all = vec!["events"];
        all.extend(args);
        let mut child = rt(caller, root, &all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(stdout).map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        EventStream { child, lines }
    }

    /// The next line.
    fn next_line(&self, what: &str) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no event while waiting for {what}"))
    }

    /// The next event, as JSON (every line must be one).
    fn next(&self, what: &str) -> Value {
        let line = self.next_line(what);
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Events up to the first of type `kind`, which is returned.
    fn until(&self, kind: &str) -> Value {
        loop {
            let e = self.next(kind);
            if e["type"] == kind {
                return e;
            }
        }
    }

    /// Its exit status, stderr and the lines not read yet, once it has ended by itself (20 s
    /// at most).
    fn ended(mut self) -> (std::process::ExitStatus, String, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut err)
                    .unwrap();
                // The reader thread ends at end-of-file: the channel disconnects.
                let rest = self.lines.iter().collect();
                return (status, err, rest);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("events did not end");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `events --interval 200ms` (runc's stream): stats lines with the container's process count
/// (and, with a cgroup, its memory) every interval, until the container is killed and
/// deleted; then it ends by itself, exit 0. SIGTERM ends another stream cleanly (exit 0, whole
/// lines); a stopped container is refused, and an interval that is no duration too.
#[test]
fn events_stream_stats_until_the_container_is_gone() {
    for caller in callers() {
        let root = runtime_root("rsafe-oci-root-");
        let cgroup = format!("/rsafe-oci-events-{}", std::process::id());
        let b = Bundle::new(
            caller,
            &caller.rootfs(),
            &["sh", "-c", "echo up; exec sleep 1000"],
            |c| {
                if caller == Caller::Host {
                    c["linux"]["cgroupsPath"] = json!(cgroup);
                    c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}});
                }
            },
        );
        let c = create(caller, root.path(), &b, "streamed", &[]);
        assert!(c.status.success(), "{caller:?}: {}", text(&c));
        let st = out(rt(caller, root.path(), &["start", "streamed"]));
        assert!(st.status.success(), "{}", text(&st));
        b.wait_for("up");
        let stream = EventStream::start(caller, root.path(), &["--interval", "200ms", "streamed"]);
        let other = EventStream::start(caller, root.path(), &["--interval", "300ms", "streamed"]);
        // runc's key order (its own tests match the line's start).
        let first = stream.next_line("stats");
        assert!(
            first.starts_with(r#"{"type":"stats","id":"streamed","data":{"#),
            "{first}"
        );
        for _ in 0..2 {
            let e = stream.next("stats");
            assert_eq!(
                (&e["type"], &e["id"]),
                (&json!("stats"), &json!("streamed"))
            );
            assert!(e["data"]["pids"]["current"].as_u64() >= Some(1), "{e}");
            if caller == Caller::Host {
                let usage = &e["data"]["memory"]["usage"];
                assert_eq!(usage["limit"], 64u64 << 20, "{e}");
                assert!(usage["usage"].as_u64() > Some(0), "{e}");
            }
        }
        // Its first line comes after it blocked SIGTERM: from then on, the signal ends it
        // between whole lines, exit 0.
        other.next("stats");
        let term = Command::new("kill")
            .args(["-TERM", &other.child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let (status, err, rest) = other.ended();
        assert!(status.success(), "{caller:?}: SIGTERM: {status:?} {err}");
        assert!(err.is_empty(), "{caller:?}: {err}");
        for line in rest {
            let e: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(e["type"], "stats", "{line}");
        }
        let k = out(rt(caller, root.path(), &["kill", "streamed", "KILL"]));
        assert!(k.status.success(), "{}", text(&k));
        wait_status(caller, root.path(), "streamed", "stopped");
        let stopped = out(rt(caller, root.path(), &["events", "streamed"]));
        assert!(
            !stopped.status.success() && text(&stopped).contains("is not running"),
            "{}",
            text(&stopped)
        );
        let d = out(rt(caller, root.path(), &["delete", "streamed"]));
        assert!(d.status.success(), "{}", text(&d));
        let (status, err, rest) = stream.ended();
        assert!(status.success(), "{caller:?}: {status:?} {err}");
        assert!(err.is_empty(), "{caller:?}: {err}");
        for line in rest {
            let e: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(e["type"], "stats", "{line}");
        }
        for (args, says) in [
            (&["streamed"][..], "container streamed does not exist"),
            (
                &["--interval", "0", "x"][..],
                "duration interval must be greater than 0",
            ),
            (&["--interval", "5", "x"][..], "not a duration"),
        ] {
            let o = out(rt(caller, root.path(), &[&["events"][..], args].concat()));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                !o.status.success() && err.contains(says),
                "{args:?}: {}",
                text(&o)
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
}

/// An OOM kill in the container's memory cgroup (v1 here: an eventfd on
/// `memory.oom_control`) is an `{"type":"oom","id":…}` line of the stream, which goes on while
/// the container runs. The stream is started on the created container, before anything runs.
#[test]
fn events_report_an_oom_kill_in_the_containers_memory_cgroup() {
    if !support::have("root for a memory cgroup", support::is_root()) {
        return;
    }
    let root = runtime_root("rsafe-oci-root-");
    let cgroup = format!("/rsafe-oci-oom-{}", std::process::id());
    // dd's 64 MiB buffer in a 32 MiB cgroup: the OOM killer ends dd, the shell goes on.
    let script =
        "echo up; dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd=$?; exec sleep 1000";
    let b = Bundle::new(
        Caller::Host,
        &support::busybox_rootfs(),
        &["sh", "-c", script],
        |c| {
            c["linux"]["cgroupsPath"] = json!(cgroup);
            c["linux"]["resources"] = json!({"memory": {"limit": 32 << 20, "swap": 32 << 20}});
        },
    );
    let c = create(Caller::Host, root.path(), &b, "oomed", &[]);
    assert!(c.status.success(), "{}", text(&c));
    let stream = EventStream::start(Caller::Host, root.path(), &["--interval", "200ms", "oomed"]);
    // Its first reading comes after its OOM watch is set up.
    stream.until("stats");
    let st = out(rt(Caller::Host, root.path(), &["start", "oomed"]));
    assert!(st.status.success(), "{}", text(&st));
    let o = b.wait_for("dd=");
    assert!(o.contains("dd=137"), "dd was not OOM-killed: {o}");
    let e = stream.until("oom");
    assert_eq!(e, json!({"type": "oom", "id": "oomed"}));
    assert_eq!(
        state(Caller::Host, root.path(), "oomed")["status"],
        "running"
    );
    let d = out(rt(
        Caller::Host,
        root.path(),
        &["delete", "--force", "oomed"],
    ));
    assert!(d.status.success(), "{}", text(&d));
    let (status, err, _) = stream.ended();
    assert!(status.success(), "{status:?} {err}");
}

/// Whether the output file stays the same for a while (the container makes no progress).
fn output_is_still(b: &Bundle) -> bool {
    let before = b.output();
    std::thread::sleep(Duration::from_millis(400));
    b.output() == before
}

#[test]
fn pause_freezes_the_container_and_a_sigkill_thaws_it() {
    if !support::have("root for the cgroup freezer", support::is_root()) {
        return;
    }
    let root = runtime_root("rsafe-oci-root-");
    let cgroup = format!("/rsafe-oci-pause-{}", std::process::id());
    let ticker = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.02; done";
    let b = Bundle::new(
        Caller::Host,
        &support::busybox_rootfs(),
        &["sh", "-c", ticker],
        |c| c["linux"]["cgroupsPath"] = json!(cgroup),
    );
    let rt_ok = |args: &[&str]| {
        let o = out(rt(Caller::Host, root.path(), args));
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    };
    let c = create(Caller::Host, root.path(), &b, "frozen", &[]);
    assert!(c.status.success(), "{}", text(&c));
    rt_ok(&["start", "frozen"]);
    b.wait_for("tick 3");
    rt_ok(&["pause", "frozen"]);
    assert_eq!(
        state(Caller::Host, root.path(), "frozen")["status"],
        "paused"
    );
    let list = out(rt(Caller::Host, root.path(), &["list"]));
    assert!(text(&list).contains("paused"), "{}", text(&list));
    let freezer = Path::new("/sys/fs/cgroup/freezer").join(cgroup.trim_start_matches('/'));
    let v2_root = match Path::new("/sys/fs/cgroup/unified").exists() {
        true => Path::new("/sys/fs/cgroup/unified"),
        false => Path::new("/sys/fs/cgroup"),
    };
    let unified = v2_root.join(cgroup.trim_start_matches('/'));
    if freezer.exists() {
        assert_eq!(
            fs::read_to_string(freezer.join("freezer.state"))
                .unwrap()
                .trim(),
            "FROZEN"
        );
    } else {
        assert_eq!(
            fs::read_to_string(unified.join("cgroup.freeze"))
                .unwrap()
                .trim(),
            "1"
        );
    }
    assert!(output_is_still(&b), "a paused container kept running");
    for (args, says) in [
        (vec!["start", "frozen"], "paused"),
        (vec!["delete", "frozen"], "paused"),
        (vec!["pause", "frozen"], "paused"),
    ] {
        let o = out(rt(Caller::Host, root.path(), &args));
        assert!(!o.status.success(), "{args:?} of a paused container");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(says) && err.trim().lines().count() == 1,
            "{err}"
        );
    }
    // A signal other than SIGKILL waits for resume (as runc): the container stays paused.
    rt_ok(&["kill", "frozen", "CONT"]);
    assert_eq!(
        state(Caller::Host, root.path(), "frozen")["status"],
        "paused"
    );
    rt_ok(&["resume", "frozen"]);
    assert_eq!(
        state(Caller::Host, root.path(), "frozen")["status"],
        "running"
    );
    let resumed_at = b.output().len();
    b.wait_for(&format!("tick {}", b.output().lines().count() + 3));
    assert!(b.output().len() > resumed_at);
    let o = out(rt(Caller::Host, root.path(), &["resume", "frozen"]));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not paused"),
        "{}",
        text(&o)
    );

    rt_ok(&["pause", "frozen"]);
    rt_ok(&["kill", "frozen", "KILL"]);
    wait_status(Caller::Host, root.path(), "frozen", "stopped");
    rt_ok(&["delete", "frozen"]);
    assert!(!freezer.exists() && !unified.exists(), "cgroup left behind");
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);

    // delete --force of a paused container kills it.
    let c = create(Caller::Host, root.path(), &b, "frozen2", &[]);
    assert!(c.status.success(), "{}", text(&c));
    rt_ok(&["start", "frozen2"]);
    let pid = state(Caller::Host, root.path(), "frozen2")["pid"]
        .as_i64()
        .unwrap();
    rt_ok(&["pause", "frozen2"]);
    rt_ok(&["delete", "--force", "frozen2"]);
    let dead = fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z"));
    assert!(dead, "delete --force left the paused container's process");
    assert!(!freezer.exists(), "cgroup left behind");
}

fn ns_of(pid: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn container_hooks_run_in_the_containers_namespaces() {
    for caller in callers() {
        let root = runtime_root("rsafe-oci-root-");
        let marks = runtime_root("rsafe-oci-marks-");
        let m = marks.path().display().to_string();
        let hook = |script: String| json!({"path": "/bin/sh", "args": ["sh", "-c", script]});
        let probe = |dir: &str, kind: &str| {
            format!(
                "cat > {dir}/{kind}.json; readlink /proc/self/ns/mnt > {dir}/{kind}.ns; hostname >> {dir}/{kind}.ns"
            )
        };
        let b = Bundle::new(
            caller,
            &caller.rootfs(),
            &["sh", "-c", "ls /marks; echo ran; exec sleep 1000"],
            |c| {
                c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/marks", "type": "bind", "source": m, "options": ["rbind", "rw"]}));
                // createContainer: before pivot_root, paths as the runtime sees them;
                // startContainer: in the container's root.
                c["hooks"] = json!({
                    "createContainer": [hook(probe(&m, "createContainer"))],
                    "startContainer": [hook(probe("/marks", "startContainer"))],
                });
            },
        );
        let c = create(caller, root.path(), &b, "hooked", &[]);
        assert!(c.status.success(), "{caller:?}: {}", text(&c));
        let pid = state(caller, root.path(), "hooked")["pid"]
            .as_i64()
            .unwrap()
            .to_string();
        let read_json = |kind: &str| -> Value {
            serde_json::from_slice(&fs::read(marks.path().join(format!("{kind}.json"))).unwrap())
                .unwrap()
        };
        let created = read_json("createContainer");
        assert_eq!(created["status"], "creating", "{created}");
        assert_eq!(created["id"], "hooked");
        assert_eq!(created["bundle"], b.path());
        let ns = fs::read_to_string(marks.path().join("createContainer.ns")).unwrap();
        assert_eq!(ns.lines().next(), Some(ns_of(&pid).as_str()), "{caller:?}");
        assert_ne!(ns_of(&pid), ns_of("self"));
        assert_eq!(
            ns.lines().nth(1),
            Some("rsafe"),
            "{caller:?}: the container's UTS"
        );
        assert!(!marks.path().join("startContainer.json").exists());

        let st = out(rt(caller, root.path(), &["start", "hooked"]));
        assert!(st.status.success(), "{}", text(&st));
        // The hook ran before the workload (which lists its marks).
        let o = b.wait_for("ran");
        assert!(o.contains("startContainer.json"), "{caller:?}: {o}");
        let started = read_json("startContainer");
        assert_eq!(started["status"], "created", "{started}");
        assert_eq!(
            started["pid"], 1,
            "the pid as the container sees it: {started}"
        );
        let ns = fs::read_to_string(marks.path().join("startContainer.ns")).unwrap();
        assert_eq!(ns.lines().next(), Some(ns_of(&pid).as_str()));
        let d = out(rt(caller, root.path(), &["delete", "--force", "hooked"]));
        assert!(d.status.success(), "{}", text(&d));

        // A failing startContainer hook: start fails naming it; the workload never runs.
        let failing = |kind: &str| {
            Bundle::new(caller, &caller.rootfs(), &["echo", "workload-ran"], |c| {
                c["hooks"] = json!({ kind: [hook("echo broken >&2; exit 3".into())] });
            })
        };
        let b = failing("startContainer");
        let c = create(caller, root.path(), &b, "badstart", &[]);
        assert!(c.status.success(), "{}", text(&c));
        let st = out(rt(caller, root.path(), &["start", "badstart"]));
        assert_eq!(st.status.code(), Some(1), "{}", text(&st));
        let err = String::from_utf8_lossy(&st.stderr);
        assert!(
            err.contains("hooks.startContainer[0]") && err.contains("broken"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        wait_status(caller, root.path(), "badstart", "stopped");
        assert!(!b.output().contains("workload-ran"));
        let d = out(rt(caller, root.path(), &["delete", "badstart"]));
        assert!(d.status.success(), "{}", text(&d));

        // A failing createContainer hook: create fails naming it and leaves nothing.
        let b = failing("createContainer");
        let c = create(caller, root.path(), &b, "badcreate", &[]);
        assert_eq!(c.status.code(), Some(1), "{}", text(&c));
        let err = String::from_utf8_lossy(&c.stderr);
        assert!(
            err.contains("hooks.createContainer[0]") && err.contains("broken"),
            "{err}"
        );
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0, "{caller:?}");
    }
}

/// `delete --force ID` when dropped: a test that panics leaves no container behind (the
/// delete at a test's end is checked; this one, after it, finds nothing and is harmless).
struct ForceDelete<'a>(&'a Path, &'static str);

impl Drop for ForceDelete<'_> {
    fn drop(&mut self) {
        let _ = rt(Caller::Host, self.0, &["delete", "--force", self.1])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn update_changes_the_limits_by_flags_and_resources_json() {
    if !support::have("root for cgroups", support::is_root()) {
        return;
    }
    let root = runtime_root("rsafe-oci-root-");
    let cgroup = format!("/rsafe-oci-update-{}", std::process::id());
    let b = Bundle::new(
        Caller::Host,
        &support::busybox_rootfs(),
        &["sleep", "1000"],
        |c| {
            c["linux"]["cgroupsPath"] = json!(cgroup);
            c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}, "pids": {"limit": 77}});
        },
    );
    let c = create(Caller::Host, root.path(), &b, "limits", &[]);
    assert!(c.status.success(), "{}", text(&c));
    // A failed assertion below must not leave the container and its cgroups on the host.
    let _cleanup = ForceDelete(root.path(), "limits");
    let dir = |h: &str| {
        Path::new("/sys/fs/cgroup")
            .join(h)
            .join(cgroup.trim_start_matches('/'))
    };
    let read = |h: &str, f: &str| {
        fs::read_to_string(dir(h).join(f))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let v1 = dir("pids").exists();
    let (mem, pids) = match v1 {
        true => (("memory", "memory.limit_in_bytes"), ("pids", "pids.max")),
        false => (("", "memory.max"), ("", "pids.max")),
    };
    let update = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = rt(Caller::Host, root.path(), args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            // A refusal that does not read stdin (`-r - --memory …`) may have exited already:
            // the write then fails with EPIPE, and the exit status is what is checked.
            let _ = std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes());
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    };
    // runc's flags, with sizes in docker's units; what is not named stays.
    let o = update(
        &["update", "--memory", "96m", "--cpu-share", "512", "limits"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read(mem.0, mem.1), (96u64 << 20).to_string());
    assert_eq!(read(pids.0, pids.1), "77");
    if v1 {
        assert_eq!(read("cpu", "cpu.shares"), "512");
    }
    // containerd's runc shim (go-runc's Update, what the CRI's UpdateContainerResources
    // reaches): `update --resources=- ID`, the document on stdin as json.Encoder writes it.
    let o = update(
        &["update", "--resources=-", "limits"],
        Some("{\"pids\":{\"limit\":44}}\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read(pids.0, pids.1), "44");
    // A resources document on stdin, and in a file.
    let o = update(
        &["update", "--resources", "-", "limits"],
        Some(r#"{"pids": {"limit": 33}}"#),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read(pids.0, pids.1), "33");
    assert_eq!(read(mem.0, mem.1), (96u64 << 20).to_string());
    let file = b.dir.path().join("resources.json");
    fs::write(
        &file,
        r#"{"memory": {"limit": -1}, "cpu": {"quota": 50000, "period": 100000}}"#,
    )
    .unwrap();
    let o = update(&["update", "-r", file.to_str().unwrap(), "limits"], None);
    assert!(o.status.success(), "{}", text(&o));
    if v1 {
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(mem.0, mem.1), "9223372036854771712");
    } else {
        assert_eq!(read("", "memory.max"), "max");
    }
    // The recorded limits survive: a later update of one limit keeps the others.
    let o = update(&["update", "--pids-limit", "-1", "limits"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read(pids.0, pids.1), "max");
    if v1 {
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    }
    for (args, stdin, says) in [
        (
            vec!["update", "--blkio-weight", "300", "limits"],
            None,
            "--blkio-weight",
        ),
        (
            vec!["update", "--memory", "lots", "limits"],
            None,
            "--memory",
        ),
        (
            vec!["update", "-r", "-", "limits"],
            Some(r#"{"blockIO": {"weight": 300}}"#),
            "linux.resources.blockIO",
        ),
        (
            vec!["update", "-r", "-", "limits"],
            Some("{not json"),
            "<stdin>",
        ),
        (
            vec!["update", "-r", "-", "--memory", "1m", "limits"],
            Some("{}"),
            "not both",
        ),
        (
            vec!["update", "--memory", "1m", "nosuch"],
            None,
            "does not exist",
        ),
    ] {
        let o = update(&args, stdin);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(says) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        read(pids.0, pids.1),
        "max",
        "a refused update changed a limit"
    );
    let d = out(rt(
        Caller::Host,
        root.path(),
        &["delete", "--force", "limits"],
    ));
    assert!(d.status.success(), "{}", text(&d));
    assert!(
        !dir("pids").exists() && !dir("memory").exists(),
        "cgroup left behind"
    );
}

#[test]
fn pause_without_a_cgroup_is_refused_in_one_line() {
    let caller = Caller::User;
    if !support::have("root and the test user", Caller::all().contains(&caller)) {
        return;
    }
    let root = runtime_root("rsafe-oci-root-");
    let b = Bundle::new(caller, &caller.rootfs(), &["sleep", "1000"], |_| {});
    let c = create(caller, root.path(), &b, "nofreezer", &[]);
    assert!(c.status.success(), "{}", text(&c));
    let p = out(rt(caller, root.path(), &["pause", "nofreezer"]));
    assert_eq!(p.status.code(), Some(1), "{}", text(&p));
    let err = String::from_utf8_lossy(&p.stderr);
    assert!(
        err.contains("cannot pause container nofreezer") && err.contains("no cgroup freezer"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(state(caller, root.path(), "nofreezer")["status"], "created");
    let u = out(rt(
        caller,
        root.path(),
        &["update", "--memory", "64m", "nofreezer"],
    ));
    let err = String::from_utf8_lossy(&u.stderr);
    assert!(
        !u.status.success() && err.contains("has no cgroup") && err.trim().lines().count() == 1,
        "{}",
        text(&u)
    );
    let d = out(rt(caller, root.path(), &["delete", "nofreezer"]));
    assert!(d.status.success(), "{}", text(&d));
}

#[test]
fn a_create_killed_half_way_leaves_nothing_delete_cannot_remove() {
    let root = runtime_root("rsafe-oci-root-");
    let b = Bundle::new(Caller::Host, &support::busybox_rootfs(), &["true"], |c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"]}]});
    });
    let pid_file = format!("{}/pid", b.path());
    let mut child = rt(
        Caller::Host,
        root.path(),
        &[
            "create",
            "--bundle",
            b.path(),
            "--pid-file",
            &pid_file,
            "killed",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // The hook runs once the container's process exists: kill create then.
    let s = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let o = out(rt(Caller::Host, root.path(), &["state", "killed"]));
            if o.status.success() {
                let s: Value = serde_json::from_slice(&o.stdout).unwrap();
                if s["pid"].as_i64().unwrap_or(0) > 0 {
                    break s;
                }
            }
            assert!(Instant::now() < deadline, "create never got to its hook");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    assert_eq!(s["status"], "creating");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    // The container's process dies with create (it had not said Ready).
    let s = wait_status(Caller::Host, root.path(), "killed", "stopped");
    assert_eq!(s["id"], "killed");
    let d = out(rt(Caller::Host, root.path(), &["delete", "killed"]));
    assert!(d.status.success(), "{}", text(&d));
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    let _ = Command::new("pkill").args(["-f", "sleep 30"]).status();
}

#[test]
fn the_terminal_goes_to_the_console_socket() {
    use std::os::unix::net::UnixListener;
    let root = runtime_root("rsafe-oci-root-");
    let b = Bundle::new(
        Caller::Host,
        &support::busybox_rootfs(),
        &["sh", "-c", "tty; echo tty-ok; sleep 1"],
        |c| {
            c["process"]["terminal"] = json!(true);
        },
    );
    let sock = b.dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        recvmsg(
            &conn,
            &mut [std::io::IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::empty(),
        )
        .unwrap();
        let fd = control
            .drain()
            .find_map(|m| match m {
                RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            })
            .expect("a descriptor");
        fs::File::from(fd)
    });
    let c = create(
        Caller::Host,
        root.path(),
        &b,
        "tty",
        &["--console-socket", sock.to_str().unwrap()],
    );
    assert!(c.status.success(), "{}", text(&c));
    let mut master = receiver.join().unwrap();
    assert!(
        out(rt(Caller::Host, root.path(), &["start", "tty"]))
            .status
            .success()
    );
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&got).contains("tty-ok") && Instant::now() < deadline {
        let mut buf = [0u8; 256];
        match std::io::Read::read(&mut master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.contains("/dev/pts/0") && got.contains("tty-ok"),
        "{got}"
    );
    let _ = out(rt(Caller::Host, root.path(), &["delete", "--force", "tty"]));
}

/// `linux.timeOffsets` with a new time namespace: the container's boot-time clock (what
/// `/proc/uptime` shows) is ten years ahead of the host's, its monotonic clock a week, and a
/// process `exec`'d into it sees the same clocks.
#[test]
fn time_offsets_move_the_containers_clocks() {
    if !support::have(
        "time namespaces (Linux 5.6+)",
        Path::new("/proc/self/ns/time").exists(),
    ) {
        return;
    }
    const BOOT: f64 = 10.0 * 365.0 * 86400.0;
    let uptime = |text: &str| -> f64 {
        text.split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no uptime in {text:?}"))
    };
    for caller in callers() {
        let root = runtime_root("rsafe-oci-root-");
        let script =
            "cat /proc/uptime; cat /proc/self/timens_offsets; echo offsets-done; exec sleep 1000";
        let b = Bundle::new(caller, &caller.rootfs(), &["sh", "-c", script], |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({
                "boottime": {"secs": BOOT as i64, "nanosecs": 0},
                "monotonic": {"secs": 7 * 86400, "nanosecs": 500}
            });
        });
        let c = create(caller, root.path(), &b, "timens", &[]);
        assert!(c.status.success(), "{caller:?}: {}", text(&c));
        let st = out(rt(caller, root.path(), &["start", "timens"]));
        assert!(st.status.success(), "{}", text(&st));
        let o = b.wait_for("offsets-done");
        let host = uptime(&fs::read_to_string("/proc/uptime").unwrap());
        let inside = uptime(&o);
        assert!(
            inside >= BOOT && inside <= BOOT + host + 1.0,
            "{caller:?}: uptime {inside} with the host's {host}: {o}"
        );
        assert!(
            o.lines()
                .any(|l| l.split_whitespace().eq(["monotonic", "604800", "500"])),
            "{caller:?}: {o}"
        );
        let pid = state(caller, root.path(), "timens")["pid"]
            .as_i64()
            .unwrap();
        assert_ne!(
            ns_link(pid, "time"),
            ns_link(std::process::id().into(), "time")
        );
        let e = out(rt(
            caller,
            root.path(),
            &["exec", "timens", "cat", "/proc/uptime"],
        ));
        assert!(e.status.success(), "{}", text(&e));
        let seen = uptime(&String::from_utf8_lossy(&e.stdout));
        assert!(seen >= BOOT, "{caller:?}: exec's uptime {seen}");
        let d = out(rt(caller, root.path(), &["delete", "--force", "timens"]));
        assert!(d.status.success(), "{}", text(&d));
    }
}

/// [`SECCOMP_AGENT`] started in `dir`, listening: the process, its socket and the file it
/// writes what it was asked to.
fn start_agent(dir: &Path) -> (std::process::Child, PathBuf, PathBuf) {
    let socket = dir.join("agent.sock");
    let report = dir.join("report");
    fs::write(dir.join("agent.py"), SECCOMP_AGENT).unwrap();
    let agent = Command::new("python3")
        .arg(dir.join("agent.py"))
        .args([&socket, &report])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the agent never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    (agent, socket, report)
}

/// A seccomp agent (python3, as such agents are small daemons of their own): accepts
/// connections on `argv[1]`, receives a listener and a container process state on each (the
/// state written as a line of `argv[2]`), and answers every notification of every listener
/// with EXDEV, writing `nr=N` lines, until it has been idle for 30 s (or is killed).
const SECCOMP_AGENT: &str = r#"
import fcntl, os, select, socket, struct, sys
path, report = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
os.chmod(path, 0o777)
srv.listen(8)
out = open(report, "a")
poller = select.poll()
poller.register(srv.fileno(), select.POLLIN)
RECV, SEND, EXDEV = 0xC0502100, 0xC0182101, 18
def answer(fd):
    buf = bytearray(80)
    try:
        fcntl.ioctl(fd, RECV, buf, True)
    except OSError:
        return
    nid, pid, flags, nr = struct.unpack_from("<QIIi", buf)
    out.write(f"nr={nr}\n")
    out.flush()
    try:
        fcntl.ioctl(fd, SEND, bytearray(struct.pack("<QqiI", nid, 0, -EXDEV, 0)), True)
    except OSError:
        pass
while True:
    events = poller.poll(30000)
    if not events:
        break
    for fd, ev in events:
        if fd == srv.fileno():
            conn, _ = srv.accept()
            msg, fds, _, _ = socket.recv_fds(conn, 65536, 1)
            conn.close()
            out.write(msg.decode() + "\n")
            out.flush()
            for listener in fds:
                poller.register(listener, select.POLLIN)
        elif ev & select.POLLIN:
            answer(fd)
        else:
            # Every process of the filter is gone.
            poller.unregister(fd)
            os.close(fd)
"#;

/// `SCMP_ACT_NOTIFY` with `listenerPath`: the agent gets the listener with the container
/// process state (its `listenerMetadata`, the container's id and host pid) and answers the
/// container's `mkdir` with an errno of its choice, which the container sees; an exec'd
/// process's listener reaches it too, with that process's pid. A notified call that rsafe's
/// floor denies (`mount`) stays denied and never reaches the agent.
#[test]
fn a_seccomp_agent_answers_the_containers_notified_calls() {
    if !support::have(
        "python3 (the test's seccomp agent)",
        support::tool("python3"),
    ) {
        return;
    }
    for caller in callers() {
        let root = runtime_root("rsafe-oci-root-");
        let agent_dir = runtime_root("rsafe-oci-agent-");
        let (mut agent, socket, report) = start_agent(agent_dir.path());
        let script = "mkdir /tmp/notified 2>&1; echo mkdir=$?; mount -t tmpfs none /mnt 2>&1; \
                      echo mount=$?; test -d /tmp/notified || echo not-made; echo done; exec sleep 1000";
        let b = Bundle::new(caller, &caller.rootfs(), &["sh", "-c", script], |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": socket,
                "listenerMetadata": "rsafe-test-agent",
                "syscalls": [{"names": ["mkdir", "mkdirat", "mount"], "action": "SCMP_ACT_NOTIFY"}]
            });
        });
        let c = create(caller, root.path(), &b, "notified", &[]);
        assert!(c.status.success(), "{caller:?}: {}", text(&c));
        let pid = state(caller, root.path(), "notified")["pid"]
            .as_i64()
            .unwrap();
        let st = out(rt(caller, root.path(), &["start", "notified"]));
        assert!(st.status.success(), "{}", text(&st));
        let o = b.wait_for("done");
        assert!(
            o.contains("Invalid cross-device link") && o.contains("mkdir=1"),
            "{caller:?}: the agent's errno: {o}"
        );
        assert!(o.contains("not-made"), "{caller:?}: mkdir ran: {o}");
        assert!(
            o.contains("mount=1") && o.matches("cross-device").count() == 1,
            "{caller:?}: {o}"
        );
        // An exec'd process's listener goes to the agent too (runc's and crun's way), with
        // its own pid and the container's state: its mkdir gets the agent's answer.
        let exec_pid_file = b.dir.path().join("exec.pid");
        let e = out(rt(
            caller,
            root.path(),
            &[
                "exec",
                "--pid-file",
                exec_pid_file.to_str().unwrap(),
                "notified",
                "mkdir",
                "/tmp/by-exec",
            ],
        ));
        assert_eq!(e.status.code(), Some(1), "{}", text(&e));
        assert!(
            String::from_utf8_lossy(&e.stderr).contains("Invalid cross-device link"),
            "{caller:?}: the agent's errno for the exec'd mkdir: {}",
            text(&e)
        );
        let exec_pid: i64 = fs::read_to_string(&exec_pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _ = agent.kill();
        let _ = agent.wait();
        let r = fs::read_to_string(&report).unwrap();
        let (states, nrs): (Vec<&str>, Vec<&str>) = r.lines().partition(|l| l.starts_with('{'));
        let states: Vec<Value> = states
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            states.len(),
            2,
            "{caller:?}: the container's and exec's: {r}"
        );
        for (got, want_pid) in states.iter().zip([pid, exec_pid]) {
            assert_eq!(got["metadata"], "rsafe-test-agent", "{got}");
            assert_eq!(got["fds"], json!(["seccompFd"]), "{got}");
            assert_eq!(got["pid"], want_pid, "{got}");
            assert_eq!(got["state"]["id"], "notified", "{got}");
            assert_eq!(got["state"]["pid"], pid, "{got}");
            assert_eq!(got["state"]["status"], "running", "{got}");
            assert_eq!(got["state"]["bundle"], b.path(), "{got}");
        }
        assert!(
            nrs.iter().all(|l| *l == format!("nr={}", libc::SYS_mkdir)
                || *l == format!("nr={}", libc::SYS_mkdirat)),
            "{caller:?}: only mkdir reaches the agent (mount is the floor's): {nrs:?}"
        );
        assert!(
            nrs.len() >= 2,
            "{caller:?}: the container's and exec's mkdir: {r}"
        );
        // Without an agent, exec fails in one line before the process starts.
        let lone = out(rt(caller, root.path(), &["exec", "notified", "true"]));
        let err = String::from_utf8_lossy(&lone.stderr);
        assert!(
            !lone.status.success()
                && err.contains("linux.seccomp.listenerPath")
                && err.lines().count() == 1,
            "{caller:?}: {}",
            text(&lone)
        );
        let d = out(rt(caller, root.path(), &["delete", "--force", "notified"]));
        assert!(d.status.success(), "{}", text(&d));
    }
}

/// The namespace link of `pid` (`user:[4026…]`).
fn ns_link(pid: i64, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

/// Kubernetes `hostUsers: false`: the pod's sandbox owns a user namespace and the app
/// container's bundle names it, with the sandbox's network, IPC and UTS namespaces, by path.
/// The app container is in the same user namespace (same uid_map), reaches the sandbox's
/// server on the pod's loopback, and both are confined.
#[test]
fn a_second_container_joins_the_first_ones_user_namespace_by_path() {
    for caller in callers() {
        let root = runtime_root("rsafe-oci-root-");
        let serve =
            "echo pod-ok > /tmp/index.html; echo up; exec httpd -f -p 127.0.0.1:8080 -h /tmp";
        let sandbox = Bundle::new(caller, &caller.rootfs(), &["sh", "-c", serve], |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            for kind in ["user", "network"] {
                if !ns.iter().any(|n| n["type"] == kind) {
                    ns.push(json!({"type": kind}));
                }
            }
        });
        let c = create(caller, root.path(), &sandbox, "sandbox", &[]);
        assert!(c.status.success(), "{caller:?}: {}", text(&c));
        let st = out(rt(caller, root.path(), &["start", "sandbox"]));
        assert!(st.status.success(), "{}", text(&st));
        sandbox.wait_for("up");
        let pod = state(caller, root.path(), "sandbox")["pid"]
            .as_i64()
            .unwrap();
        let script = "cat /proc/self/uid_map; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
                      for i in $(seq 100); do wget -q -O - http://127.0.0.1:8080/index.html && exit 0; \
                      sleep 0.1; done; exit 1";
        let pod_ns = |kind: &str, file: &str| json!({"type": kind, "path": format!("/proc/{pod}/ns/{file}")});
        let app = Bundle::new(caller, &caller.rootfs(), &["sh", "-c", script], |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| {
                !["user", "network", "ipc", "uts"].contains(&n["type"].as_str().unwrap())
            });
            ns.extend([
                pod_ns("user", "user"),
                pod_ns("network", "net"),
                pod_ns("ipc", "ipc"),
                pod_ns("uts", "uts"),
            ]);
            let caps = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
            c["process"]["capabilities"] =
                json!({"bounding": caps, "permitted": caps, "effective": caps});
            // The sandbox's hostname is the pod's.
            c.as_object_mut().unwrap().remove("hostname");
        });
        let c = create(caller, root.path(), &app, "app", &[]);
        assert!(c.status.success(), "{caller:?}: {}", text(&c));
        let app_pid = state(caller, root.path(), "app")["pid"].as_i64().unwrap();
        for kind in ["user", "net", "ipc", "uts"] {
            assert_eq!(
                ns_link(app_pid, kind),
                ns_link(pod, kind),
                "{caller:?}: {kind}"
            );
        }
        for kind in ["pid", "mnt"] {
            assert_ne!(
                ns_link(app_pid, kind),
                ns_link(pod, kind),
                "{caller:?}: {kind}"
            );
        }
        assert_ne!(
            ns_link(pod, "user"),
            ns_link(std::process::id().into(), "user")
        );
        let st = out(rt(caller, root.path(), &["start", "app"]));
        assert!(st.status.success(), "{}", text(&st));
        let o = app.wait_for("pod-ok");
        let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        let pod_map = fs::read_to_string(format!("/proc/{pod}/uid_map")).unwrap();
        assert!(
            words(&o).starts_with(&words(&pod_map)),
            "{caller:?}: {o} vs {pod_map}"
        );
        assert!(o.contains("CapEff:\t0000000000000420"), "{caller:?}: {o}");
        assert!(
            o.contains("NoNewPrivs:\t1") && o.contains("Seccomp:\t2"),
            "{caller:?}: {o}"
        );
        let pod_status = fs::read_to_string(format!("/proc/{pod}/status")).unwrap();
        assert!(pod_status.contains("NoNewPrivs:\t1") && pod_status.contains("Seccomp:\t2"));
        wait_status(caller, root.path(), "app", "stopped");
        for id in ["app", "sandbox"] {
            let d = out(rt(caller, root.path(), &["delete", "--force", id]));
            assert!(d.status.success(), "{}", text(&d));
        }
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }
}

/// A user namespace named by path that is not one, is the host's, or whose map the bundle's
/// mappings contradict: `create` refuses in one line naming the field and leaves nothing.
#[test]
fn a_user_namespace_path_that_breaks_the_floor_is_refused() {
    let root = runtime_root("rsafe-oci-root-");
    let sandbox = Bundle::new(
        Caller::Host,
        &support::busybox_rootfs(),
        &["sleep", "1000"],
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
        },
    );
    let c = create(Caller::Host, root.path(), &sandbox, "sandbox", &[]);
    assert!(c.status.success(), "{}", text(&c));
    let pod = state(Caller::Host, root.path(), "sandbox")["pid"]
        .as_i64()
        .unwrap();
    let other = Value::Array(vec![json!({"containerID": 0, "hostID": 12345, "size": 1})]);
    for (path, mappings, want) in [
        (
            format!("/proc/{pod}/ns/net"),
            None,
            "is not a user namespace",
        ),
        (
            // The test's own: the host's (pid 1's may be closed to it).
            format!("/proc/{}/ns/user", std::process::id()),
            None,
            "the host's initial user namespace",
        ),
        ("/etc/hostname".to_string(), None, "is not a namespace"),
        (
            format!("/proc/{pod}/ns/user"),
            Some(other),
            "linux.uidMappings",
        ),
    ] {
        let b = Bundle::new(Caller::Host, &support::busybox_rootfs(), &["true"], |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user", "path": path}));
            if let Some(m) = &mappings {
                c["linux"]["uidMappings"] = m.clone();
                c["linux"]["gidMappings"] = m.clone();
            }
        });
        let c = create(Caller::Host, root.path(), &b, "refused", &[]);
        assert_eq!(c.status.code(), Some(1), "{path}: {}", text(&c));
        let err = String::from_utf8_lossy(&c.stderr);
        assert!(
            err.contains(want) && err.contains("config.json"),
            "{path}: {err}"
        );
        if mappings.is_some() {
            assert!(err.contains("contradicts"), "{err}");
        } else {
            assert!(err.contains("linux.namespaces["), "{err}");
        }
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        let left: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("sandbox")]);
    }
    let d = out(rt(
        Caller::Host,
        root.path(),
        &["delete", "--force", "sandbox"],
    ));
    assert!(d.status.success(), "{}", text(&d));
    if support::is_root() {
        a_namespace_mapping_host_root_to_any_uid_is_refused(root.path());
    }
}

/// A user namespace below the runtime's whose uid 1000 is host root (and root unmapped: the
/// old check only looked at root): refused by name, nothing made.
fn a_namespace_mapping_host_root_to_any_uid_is_refused(root: &Path) {
    let mut holder = Command::new("unshare")
        .args([
            "--map-users=0,1000,1",
            "--map-groups=0,1000,1",
            "sleep",
            "1000",
        ])
        .spawn()
        .unwrap();
    let path = format!("/proc/{}/ns/user", holder.id());
    let map_path = format!("/proc/{}/uid_map", holder.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    // Its map as seen from here once unshare wrote it (before, the host's identity map).
    while !fs::read_to_string(&map_path).is_ok_and(|m| m.split_whitespace().eq(["1000", "0", "1"]))
    {
        assert!(
            Instant::now() < deadline,
            "unshare never mapped its namespace"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let b = Bundle::new(Caller::Host, &support::busybox_rootfs(), &["true"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user", "path": path}));
    });
    let c = create(Caller::Host, root, &b, "hostroot", &[]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(c.status.code(), Some(1), "{}", text(&c));
    let err = String::from_utf8_lossy(&c.stderr);
    assert!(
        err.contains("its uid 1000 is host root") && err.contains("config.json"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!root.join("hostroot").exists(), "{err}");
}

#[test]
fn the_same_binary_answers_as_rsafe_runtime() {
    let dir = shared_tempdir("rsafe-oci-link-");
    let link = dir.path().join("rsafe-runtime");
    std::os::unix::fs::symlink(support::rsafe_bin(), &link).unwrap();
    let v = Command::new(&link).arg("--version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&v.stdout).starts_with("rsafe-runtime "),
        "{v:?}"
    );
    let f = Command::new(&link).arg("features").output().unwrap();
    let f: Value = serde_json::from_slice(&f.stdout).unwrap();
    assert_eq!(f["ociVersionMax"], "1.2.0");
    let userns = f["annotations"]["io.github.rsafe.floor.userns"]
        .as_str()
        .unwrap();
    assert!(userns.contains("none of its uids is host root"), "{f}");
    assert!(
        f["annotations"]["io.github.rsafe.events"].is_string(),
        "{f}"
    );
    let namespaces = f["linux"]["namespaces"].as_array().unwrap();
    assert!(namespaces.contains(&json!("time")), "{f}");
    let actions = f["linux"]["seccomp"]["actions"].as_array().unwrap();
    assert!(actions.contains(&json!("SCMP_ACT_NOTIFY")), "{f}");
    for (args, says) in [
        (
            &["checkpoint", "x"][..],
            "checkpoint: not supported by rsafe-runtime: CRIU saves a container's seccomp filters but not its landlock domain",
        ),
        (
            &["restore", "x"][..],
            "restore: not supported by rsafe-runtime: CRIU saves a container's seccomp filters but not its landlock domain",
        ),
    ] {
        let o = Command::new(&link).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}: {o:?}");
        assert!(
            err.starts_with(&format!("rsafe-runtime: {says}")),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

/// For podman as root: rsafe linked in `dir` as `rsafe-runtime` (the name it answers runc's
/// command line to) and the busybox test rootfs imported as `localhost/NAME:PID`.
fn podman_image(dir: &Path, name: &str) -> (PathBuf, String) {
    let link = dir.join("rsafe-runtime");
    std::os::unix::fs::symlink(support::rsafe_bin(), &link).unwrap();
    let image = format!("localhost/{name}:{}", std::process::id());
    let tar = dir.join("rootfs.tar");
    support::sh(
        Command::new("tar")
            .arg("-C")
            .arg(support::busybox_rootfs())
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    );
    support::sh(Command::new("podman").arg("import").arg(&tar).arg(&image));
    (link, image)
}

/// podman as root, with rsafe as its runtime: the image's files are container root's (an
/// id-mapped overlay), the container is confined, and run -d / logs / stop / rm work.
#[test]
fn podman_runs_images_through_rsafe_runtime() {
    if !support::is_root() || !support::have("podman", support::tool("podman")) {
        return;
    }
    let dir = shared_tempdir("rsafe-oci-podman-");
    let (link, image) = podman_image(dir.path(), "rsafe-oci-test");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--runtime")
            .arg(&link)
            .args(["--cgroup-manager", "cgroupfs"])
            .args(args);
        c.stdin(Stdio::null()).output().unwrap()
    };
    let limits = [
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ];
    let rm_cidfile = dir.path().join("rm.cid");
    let rm_cidfile_arg = rm_cidfile.to_string_lossy().to_string();
    let mut run = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--cidfile",
        &rm_cidfile_arg,
    ];
    run.extend(limits);
    run.extend([image.as_str(), "sh", "-c", "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; cat /proc/self/uid_map; touch /new && stat -c 'owner %u' /new /bin/busybox"]);
    let o = podman(&run);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("NoNewPrivs:\t1") && t.contains("Seccomp:\t2"),
        "{t}"
    );
    assert!(t.contains("0 1000000000"), "{t}");
    assert_eq!(t.matches("owner 0").count(), 2, "{t}");

    let name = format!("rsafe-oci-d-{}", std::process::id());
    let mut run_d = vec!["run", "-d", "--network", "none", "--name", name.as_str()];
    run_d.extend(limits);
    run_d.extend([
        image.as_str(),
        "sh",
        "-c",
        "echo hello-from-d; trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let o = podman(&run_d);
    assert!(o.status.success(), "{}", text(&o));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&podman(&["logs", &name]).stdout).contains("hello-from-d") {
        assert!(
            Instant::now() < deadline,
            "no output from the detached container"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let e = podman(&[
        "exec",
        &name,
        "sh",
        "-c",
        "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; exit 4",
    ]);
    assert_eq!(e.status.code(), Some(4), "{}", text(&e));
    assert!(
        String::from_utf8_lossy(&e.stdout).contains("NoNewPrivs:\t1"),
        "{}",
        text(&e)
    );
    let missing = podman(&["exec", &name, "no-such-command"]);
    assert_eq!(missing.status.code(), Some(127), "{}", text(&missing));
    let status = || {
        let o = podman(&["inspect", "--format", "{{.State.Status}}", &name]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let p = podman(&["pause", &name]);
    assert!(p.status.success(), "{}", text(&p));
    assert_eq!(status(), "paused");
    let u = podman(&["unpause", &name]);
    assert!(u.status.success(), "{}", text(&u));
    assert_eq!(status(), "running");
    // podman update passes `update --resources FILE ID`.
    let u = podman(&["update", "--memory", "96m", "--cpu-shares", "512", &name]);
    assert!(u.status.success(), "{}", text(&u));
    let id = podman(&["inspect", "--format", "{{.Id}}", &name]);
    let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
    for (file, want) in [
        (
            "memory/libpod_parent/libpod-ID/memory.limit_in_bytes",
            "100663296",
        ),
        ("cpu/libpod_parent/libpod-ID/cpu.shares", "512"),
    ] {
        let path = Path::new("/sys/fs/cgroup").join(file.replace("ID", &id));
        if let Ok(got) = fs::read_to_string(&path) {
            assert_eq!(got.trim(), want, "{}", path.display());
        }
    }
    let stop = podman(&["stop", "-t", "10", &name]);
    assert!(stop.status.success(), "{}", text(&stop));
    assert!(String::from_utf8_lossy(&podman(&["logs", &name]).stdout).contains("got-term"));
    let inspect = podman(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), "0");
    assert!(podman(&["rm", &name]).status.success());
    let _ = Command::new("podman").args(["rmi", &image]).output();
    // Only this test's two containers: other tests drive podman with the same runtime root
    // at the same time.
    let rm_id = fs::read_to_string(&rm_cidfile).unwrap();
    for id in [rm_id.trim(), id.as_str()] {
        assert!(!id.is_empty());
        let state = Path::new("/run/rsafe-runtime").join(id);
        assert!(
            !state.exists(),
            "podman's container left state: {}",
            state.display()
        );
    }
}

/// podman as root with a learned policy named by `--annotation rsafe.policy=web` (the policy
/// directory given by `--runtime-flag policy-dir=…`): the denial line is in podman's output
/// (conmon's copy of the container's stderr, where the reporter writes), before mkdir's own
/// message, `run --rm` returns (conmon waits for the container's stdout, which the reporter
/// does not hold) and no reporter is left; `podman exec` into a `run -d` container prints
/// its process's line, and `rm -f` leaves no reporter.
#[test]
fn podman_shows_a_reporting_policys_denials() {
    if !support::is_root() || !support::have("podman", support::tool("podman")) {
        return;
    }
    let dir = shared_tempdir("rsafe-oci-podman-denials-");
    let (link, image) = podman_image(dir.path(), "rsafe-oci-denials");
    let policies = runtime_root("rsafe-oci-policies-");
    learn_policy(Caller::Host, policies.path());
    let cidfile = dir.path().join("cid");
    let script = format!("{LEARNED}; mkdir /tmp/made; echo end");
    let policy_flag = format!("policy-dir={}", policies.path().display());
    let mut run = Command::new("podman");
    run.arg("--runtime")
        .arg(&link)
        .args(["--runtime-flag", &policy_flag])
        .args([
            "--cgroup-manager",
            "cgroupfs",
            "run",
            "--rm",
            "--network",
            "none",
        ])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(["--annotation", "rsafe.policy=web", "--cidfile"])
        .arg(&cidfile)
        .args([image.as_str(), "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = run.spawn().unwrap();
    // A guard against a hang, not a measure: podman run --rm must end by itself.
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("podman run --rm did not return");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let t = text(&o);
    // podman exec (conmon calls `exec --detach`): the exec'd process's line on its output.
    let name = format!("rsafe-oci-denials-{}", std::process::id());
    let waiting = format!("{LEARNED}; read wait");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--runtime")
            .arg(&link)
            .args([
                "--runtime-flag",
                &policy_flag,
                "--cgroup-manager",
                "cgroupfs",
            ])
            .args(args);
        c.stdin(Stdio::null()).output().unwrap()
    };
    let d = podman(&[
        "run",
        "-d",
        "-i",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--annotation",
        "rsafe.policy=web",
        "--name",
        &name,
        &image,
        "sh",
        "-c",
        &waiting,
    ]);
    assert!(d.status.success(), "{}", text(&d));
    let e = podman(&["exec", &name, "mkdir", "/tmp/by-exec"]);
    let long_id = podman(&["inspect", "--format", "{{.Id}}", &name]);
    let long_id = String::from_utf8_lossy(&long_id.stdout).trim().to_string();
    let _ = podman(&["rm", "-f", "-t", "0", &name]);
    assert!(
        !long_id.is_empty() && reporters_gone(&long_id),
        "podman rm -f left a reporter"
    );
    // With a terminal (process.terminal, the console socket) the lines go to the workload's
    // terminal: conmon's log, so `podman logs` has them, and `exec -t`'s output.
    let tty_name = format!("{name}-tty");
    let script = format!("{LEARNED}; mkdir /tmp/made; echo end; read wait");
    let d = podman(&[
        "run",
        "-d",
        "-t",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--annotation",
        "rsafe.policy=web",
        "--name",
        &tty_name,
        &image,
        "sh",
        "-c",
        &script,
    ]);
    assert!(d.status.success(), "{}", text(&d));
    let started = Instant::now();
    let logs = loop {
        let l = podman(&["logs", &tty_name]);
        let l = String::from_utf8_lossy(&l.stdout).to_string();
        if l.contains("end\r\n") || started.elapsed() > Duration::from_secs(30) {
            break l;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let tty_exec = podman(&["exec", "-t", &tty_name, "mkdir", "/tmp/by-exec"]);
    let _ = podman(&["rm", "-f", "-t", "0", &tty_name]);
    let _ = Command::new("podman").args(["rmi", &image]).output();
    let line = "rsafe: denied: mkdir /tmp/made (not in policy)\r\nmkdir: can't create";
    assert!(
        logs.contains(line),
        "podman logs of a -t container: {logs:?}"
    );
    assert!(
        String::from_utf8_lossy(&tty_exec.stdout)
            .contains("rsafe: denied: mkdir /tmp/by-exec (not in policy)\r\n"),
        "podman exec -t: {}",
        text(&tty_exec)
    );
    assert_eq!(e.status.code(), Some(1), "{}", text(&e));
    assert!(
        text(&e).contains("rsafe: denied: mkdir /tmp/by-exec (not in policy)"),
        "{}",
        text(&e)
    );
    let line = "rsafe: denied: mkdir /tmp/made (not in policy)";
    let own = "mkdir: can't create directory '/tmp/made': Operation not permitted";
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(t.contains("learned\n") && t.contains("end\n"), "{t}");
    match (stderr.find(line), stderr.find(own)) {
        (Some(a), Some(b)) => assert!(a < b, "{t}"),
        _ => panic!("no denial line before mkdir's own on podman's stderr: {t}"),
    }
    assert_eq!(o.status.code(), Some(0), "{t}");
    let cid = fs::read_to_string(&cidfile).unwrap_or_default();
    assert!(!cid.trim().is_empty(), "{t}");
    assert!(
        reporters_gone(cid.trim()),
        "a reporter outlived podman's container"
    );
}

/// Rootless podman (the test user, its subordinate ids) with rsafe as its runtime: rsafe-runtime
/// runs as root of podman's user namespace, nests a user namespace of the ids that one has,
/// keeps its state under `$XDG_RUNTIME_DIR`, and leaves cgroups alone (said in `state`).
#[test]
fn rootless_podman_runs_images_through_rsafe_runtime() {
    if !support::is_root() || !support::have("podman", support::tool("podman")) {
        return;
    }
    let Some((uid, gid)) = support::test_user() else {
        return;
    };
    let dir = runtime_root("rsafe-oci-rootless-");
    let link = dir.path().join("bin/rsafe-runtime");
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(support::rsafe_bin(), &link).unwrap();
    let xdg = dir.path().join("xdg");
    fs::create_dir(&xdg).unwrap();
    support::sh(Command::new("chown").arg(format!("{uid}:{gid}")).arg(&xdg));
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
    let tar = dir.path().join("rootfs.tar");
    support::sh(
        Command::new("tar")
            .arg("-C")
            .arg(support::busybox_rootfs())
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    );
    fs::set_permissions(&tar, fs::Permissions::from_mode(0o644)).unwrap();
    let image = format!("localhost/rsafe-oci-rootless:{}", std::process::id());
    let as_user = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--init-groups".into(),
            "--".into(),
        ])
        .arg("podman")
        .arg("--runtime")
        .arg(&link)
        .args(["--cgroup-manager", "cgroupfs"])
        .args(args)
        .env("XDG_RUNTIME_DIR", &xdg)
        .env("HOME", format!("/home/{}", support::TEST_USER))
        .current_dir("/")
        .stdin(Stdio::null());
        c.output().unwrap()
    };
    let imported = as_user(&["import", tar.to_str().unwrap(), &image]);
    assert!(imported.status.success(), "{}", text(&imported));
    let o = as_user(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; cat /proc/self/uid_map; touch /x && echo wrote",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("NoNewPrivs:\t1") && t.contains("Seccomp:\t2") && t.contains("wrote"),
        "{t}"
    );
    // A learned policy named by annotation reports its denials rootless too: the line on
    // podman's stderr before mkdir's own message, and no reporter left once run --rm returns.
    let policies = dir.path().join("policies");
    fs::create_dir(&policies).unwrap();
    learn_policy(Caller::Host, &policies);
    fs::set_permissions(policies.join("web.toml"), fs::Permissions::from_mode(0o644)).unwrap();
    let policy_flag = format!("policy-dir={}", policies.display());
    let script = format!("{LEARNED}; mkdir /tmp/made; echo end");
    let cidfile = xdg.join("denials.cid");
    let o = as_user(&[
        "--runtime-flag",
        &policy_flag,
        "run",
        "--rm",
        "--network",
        "none",
        "--annotation",
        "rsafe.policy=web",
        "--cidfile",
        cidfile.to_str().unwrap(),
        &image,
        "sh",
        "-c",
        &script,
    ]);
    let t = text(&o);
    let line = t.find("rsafe: denied: mkdir /tmp/made (not in policy)");
    let own = t.find("mkdir: can't create directory '/tmp/made'");
    assert!(
        matches!((line, own), (Some(l), Some(m)) if l < m),
        "rootless: the denial line before mkdir's own message: {t}"
    );
    assert!(t.contains("end"), "rootless: {t}");
    let cid = fs::read_to_string(&cidfile).unwrap_or_default();
    assert!(
        !cid.trim().is_empty() && reporters_gone(cid.trim()),
        "rootless podman run --rm left a reporter"
    );
    let name = format!("rsafe-oci-rl-{}", std::process::id());
    let d = as_user(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        &image,
        "sleep",
        "1000",
    ]);
    assert!(d.status.success(), "{}", text(&d));
    let e = as_user(&[
        "exec",
        &name,
        "sh",
        "-c",
        "grep -c . /proc/self/uid_map; exit 5",
    ]);
    assert_eq!(e.status.code(), Some(5), "{}", text(&e));
    let rm = as_user(&["rm", "-f", "-t", "0", &name]);
    assert!(rm.status.success(), "{}", text(&rm));
    let _ = as_user(&["rmi", &image]);
    let left = fs::read_dir(xdg.join("rsafe-runtime"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        left, 0,
        "rootless podman's containers left state in $XDG_RUNTIME_DIR/rsafe-runtime"
    );
}
