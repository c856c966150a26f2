//! `rsafe-runtime` under concurrent use, as a containerd shim per pod or podman's parallel
//! starts drive it: four threads create, start, wait for and delete containers with distinct
//! ids from one bundle (each in a cgroup below one shared parent), and two `create`s race for
//! the same id. Afterwards nothing of any container may be left: state directories, cgroup
//! directories, mounts, processes. Root only (cgroups); with RSAFE_TEST_REQUIRE=1 a non-root
//! run fails.
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::containers::shared_tempdir;

const THREADS: usize = 4;
const PER_THREAD: usize = 5;

/// `rsafe runtime --root ROOT ARGS…`, its stderr captured and its stdout (which a created
/// container inherits) not piped, so that waiting for it never waits for the container.
fn rt(root: &Path, args: &[&str]) -> Output {
    let err = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new(support::rsafe_bin())
        .arg("runtime")
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.reopen().unwrap())
        .status()
        .unwrap();
    Output {
        status,
        stdout: Vec::new(),
        stderr: fs::read(err.path()).unwrap(),
    }
}

fn state(root: &Path, id: &str) -> Value {
    let o = Command::new(support::rsafe_bin())
        .arg("runtime")
        .arg("--root")
        .arg(root)
        .args(["state", id])
        .output()
        .unwrap();
    assert!(o.status.success(), "state {id}: {o:?}");
    serde_json::from_slice(&o.stdout).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether process `pid` has ended (gone, or a zombie its new parent has not reaped yet).
fn ended(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z"))
}

/// One container's whole life; returns its first process's pid.
fn lifecycle(root: &Path, bundle: &Path, id: &str) -> i64 {
    let c = rt(root, &["create", "--bundle", bundle.to_str().unwrap(), id]);
    assert!(c.status.success(), "create {id}: {}", stderr(&c));
    let pid = state(root, id)["pid"].as_i64().unwrap();
    let s = rt(root, &["start", id]);
    assert!(s.status.success(), "start {id}: {}", stderr(&s));
    let deadline = Instant::now() + Duration::from_secs(30);
    while state(root, id)["status"] != "stopped" {
        assert!(Instant::now() < deadline, "{id} never stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    let d = rt(root, &["delete", id]);
    assert!(d.status.success(), "delete {id}: {}", stderr(&d));
    pid
}

/// The mount points of every cgroup hierarchy.
fn hierarchies() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - cgroup"))
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect()
}

#[test]
fn concurrent_lifecycles_and_a_raced_id_leave_nothing_behind() {
    if !support::have("root for cgroups", support::is_root()) {
        return;
    }
    let root = shared_tempdir("rsafe-oci-stress-root-");
    let bundle = shared_tempdir("rsafe-oci-stress-bundle-");
    let spec = rt(
        root.path(),
        &["spec", "--bundle", bundle.path().to_str().unwrap()],
    );
    assert!(spec.status.success(), "{}", stderr(&spec));
    let parent = format!("rsafe-oci-stress-{}", std::process::id());
    let config_path = bundle.path().join("config.json");
    let mut config: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    config["root"] = json!({"path": support::busybox_rootfs(), "readonly": true});
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["true"]);
    fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // Each container its own bundle copy only for its cgroup path (below one shared parent,
    // which concurrent creates make at once).
    let bundle_for = |id: &str| -> PathBuf {
        let dir = bundle.path().join(id);
        fs::create_dir(&dir).unwrap();
        let mut c = config.clone();
        c["linux"]["cgroupsPath"] = json!(format!("/{parent}/{id}"));
        fs::write(dir.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
        dir
    };

    let start = Arc::new(Barrier::new(THREADS + 2));
    let mut workers = Vec::new();
    for t in 0..THREADS {
        let ids: Vec<String> = (0..PER_THREAD).map(|n| format!("stress-{t}-{n}")).collect();
        let bundles: Vec<PathBuf> = ids.iter().map(|id| bundle_for(id)).collect();
        let root = root.path().to_path_buf();
        let start = start.clone();
        workers.push(std::thread::spawn(move || {
            start.wait();
            ids.iter()
                .zip(&bundles)
                .map(|(id, b)| lifecycle(&root, b, id))
                .collect::<Vec<i64>>()
        }));
    }
    // Two creates of one id, at once with the rest: exactly one wins.
    let same = bundle_for("stress-same");
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let (root, same, start) = (root.path().to_path_buf(), same.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                rt(
                    &root,
                    &["create", "--bundle", same.to_str().unwrap(), "stress-same"],
                )
            })
        })
        .collect();
    let mut pids: Vec<i64> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let raced: Vec<Output> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let winners = raced.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        winners,
        1,
        "{:?}",
        raced.iter().map(stderr).collect::<Vec<_>>()
    );
    let loser = raced.iter().find(|o| !o.status.success()).unwrap();
    let err = stderr(loser);
    assert!(
        err.contains("container stress-same already exists") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert_eq!(state(root.path(), "stress-same")["status"], "created");
    pids.push(state(root.path(), "stress-same")["pid"].as_i64().unwrap());
    let d = rt(root.path(), &["delete", "--force", "stress-same"]);
    assert!(d.status.success(), "{}", stderr(&d));
    assert_eq!(pids.len(), THREADS * PER_THREAD + 1);

    // Nothing left: state, processes, mounts, cgroups.
    let left: Vec<String> = fs::read_dir(root.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "state left: {left:?}");
    let list = Command::new(support::rsafe_bin())
        .arg("runtime")
        .arg("--root")
        .arg(root.path())
        .args(["list", "-q"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids.iter().all(|p| ended(*p)) {
        assert!(Instant::now() < deadline, "container processes left");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root_text = root.path().display().to_string();
    assert!(
        !mounts.contains(&root_text),
        "mounts left under {root_text}"
    );
    for h in hierarchies() {
        let dir = h.join(&parent);
        if dir.exists() {
            let children: Vec<_> = fs::read_dir(&dir)
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name())
                .collect();
            // The shared parent is the caller's (as podman's libpod_parent): removed here.
            let _ = fs::remove_dir(&dir);
            assert!(
                children.is_empty(),
                "cgroups left in {}: {children:?}",
                dir.display()
            );
        }
    }
}
