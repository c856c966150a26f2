//! Phase 1 of one lifecycle (README, "One lifecycle for people and for the OCI interface"):
//! the `config.json` `rsafe run` writes for its container describes that container exactly.
//! For each set of `rsafe run` flags, a probe runs through `rsafe run`, and then through
//! `rsafe runtime create/start` of the `config.json` that run wrote, on the same root
//! filesystem (the test plays the runner's part that phase 2 moves into `create`: it mounts
//! the overlay of the layers the config names for `root.path`, and writes the generated
//! `/etc` files it binds). What the probe sees from inside must be the same, section by
//! section; a difference fails naming the case and the field. The differences allowed (one
//! inherent in the two ways of starting, one left for phase 2) are listed in [`ALLOWED`] with
//! their reason. Root's runs and the test user's (rootless, with subordinate ids) are compared.
//!
//! Phase 2a: for an image (`rsafe create IMAGE`), the config runs as it is written, with
//! nothing done by the test ([`standalone_config_runs_under_rsafe_runtime`]): rsafe-runtime
//! mounts the layers its annotations name, which must be the store's own
//! ([`hostile_layer_annotations_are_refused_naming_the_annotation`]). The flag cases above
//! run a directory root filesystem, outside any store: for them the test is still the runner.
//!
//! Runs as root (the runtime's bundle root is an overlay the test mounts); `RSAFE_TEST_REQUIRE=1`
//! makes a missing root a failure rather than a skip.
#[path = "support/run.rs"]
#[allow(dead_code)]
mod run_support;
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use run_support::Caller;
use serde_json::{Value, json};
use support::containers::shared_tempdir;

/// What the probe prints, one `== NAME` section each.
const PROBE: &str = r#"
echo '== status'; grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status
echo '== uid_map'; cat /proc/self/uid_map
echo '== gid_map'; cat /proc/self/gid_map
echo '== id'; id
echo '== mounts'; cat /proc/self/mountinfo
echo '== masked'
for p in /proc/kcore /proc/keys /proc/timer_list /proc/kallsyms /proc/acpi /sys/firmware; do
  if [ -d "$p" ]; then echo "$p dir entries $(ls -A "$p" 2>&1 | wc -l)";
  elif [ -e "$p" ]; then echo "$p bytes $(head -c 4096 "$p" 2>&1 | wc -c)";
  else echo "$p absent"; fi
done
echo '== readonly'; (echo 0 > /proc/sys/kernel/ns_last_pid) 2>&1 | sed 's/^.*: //'
echo '== hostname'; hostname
echo '== file:/etc/hostname'; cat /etc/hostname 2>&1
echo '== file:/etc/hosts'; cat /etc/hosts 2>&1
echo '== file:/etc/resolv.conf'; cat /etc/resolv.conf 2>&1
echo '== ulimit'; ulimit -a
echo '== env'; env | sort
echo '== cwd'; pwd
echo '== seccomp'; unshare -U true 2>&1; echo "unshare -U: $?"
echo '== landlock'; (touch /dev/rsafe-probe && echo created /dev/rsafe-probe) 2>&1
echo '== pid1'; cat /proc/1/comm
echo '== end'
"#;

/// Differences allowed, each with when and why: a section (`pid1`), or the lines of a section
/// that start with a prefix (`ulimit:max user processes`). When: an annotation of the config
/// (`KEY=VALUE`), or `rootless` (the test user's runs).
///
/// - pid 1 is inherent: `rsafe run` keeps rsafe's init as pid 1 (it reaps, forwards signals and
///   records the exit) unless `--init=false`, where a runtime-spec container's first process is
///   the workload (the caller reaps it: runc's contract).
/// - The process limit is phase 2's: where no cgroup takes the pid limit (rootless here),
///   `rsafe run` stands RLIMIT_NPROC in for it, where rsafe-runtime leaves `linux.resources`
///   unapplied and says so in its floor.
const ALLOWED: &[(&str, &str, &str)] = &[
    (
        "pid1",
        "io.github.rsafe.init=true",
        "rsafe run's pid 1 is rsafe's init; an OCI container's first process is the workload",
    ),
    (
        "ulimit:max user processes",
        "rootless",
        "rsafe run's RLIMIT_NPROC stand-in for the pid limit no cgroup takes; rsafe-runtime's is phase 2",
    ),
];

/// What [`ALLOWED`] lets differ for `caller`'s container with this config.
fn allowed(caller: Caller, config: &Value) -> Vec<&'static str> {
    ALLOWED
        .iter()
        .filter(|(_, when, _)| match when.split_once('=') {
            Some((key, value)) => config["annotations"][key] == json!(value),
            None => *when == "rootless" && caller != Caller::Host,
        })
        .map(|(what, _, _)| *what)
        .collect()
}

/// A case: its name and `rsafe run` flags (`{dir}` is replaced by a host directory).
const CASES: &[(&str, &[&str])] = &[
    ("default", &[]),
    ("read-only", &["--read-only"]),
    (
        "volumes",
        &["-v", "{dir}:/data:ro", "-v", "probevol:/cache"],
    ),
    ("tmpfs", &["--tmpfs", "/scratch:size=1m,mode=700"]),
    (
        "caps",
        &["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"],
    ),
    (
        "ulimit",
        &["--ulimit", "nofile=100:200", "--ulimit", "core=0"],
    ),
    ("user", &["-u", "1000:1000"]),
    ("network-none", &["--network", "none"]),
    ("network-host", &["--network", "host"]),
    (
        "env-workdir",
        &["-e", "PROBE_VAR=one two", "-w", "/work/dir"],
    ),
    ("hostname", &["--hostname", "probe-host"]),
    ("no-init", &["--init=false"]),
    (
        "user-groups",
        &["-u", "app", "--group-add", "27", "--shm-size", "1m"],
    ),
    ("seccomp-unconfined", &["--seccomp", "unconfined"]),
    ("cap-sys-admin", &["--cap-add", "SYS_ADMIN"]),
    (
        "dns-hosts",
        &[
            "--dns",
            "192.0.2.53",
            "--dns-search",
            "example.test",
            "--add-host",
            "db:192.0.2.7",
        ],
    ),
    (
        "limits",
        &["--memory", "64m", "--pids-limit", "100", "--cpus", "0.5"],
    ),
];

#[test]
fn run_and_its_exported_bundle_look_the_same_from_inside() {
    if !support::have(
        "root (the bundle's root is an overlay mount)",
        support::is_root(),
    ) {
        return;
    }
    let mut failures = Vec::new();
    for caller in callers() {
        failures.extend(equivalence(caller));
    }
    assert!(
        failures.is_empty(),
        "rsafe run and rsafe-runtime differ:\n{}",
        failures.join("\n")
    );
}

/// Root, and the test user with its subordinate ids and without them (its uid alone: rootless
/// `rsafe run` and rootless `rsafe-runtime`) where this machine lets it make user namespaces.
fn callers() -> Vec<Caller> {
    let mut callers = vec![Caller::Host];
    if support::test_user().is_some()
        && support::have(
            "user namespaces for the test user",
            run_support::userns_works(),
        )
    {
        callers.extend([Caller::UserWithSubids, Caller::User]);
    }
    callers
}

/// Every case through `caller`'s `rsafe run` and `rsafe runtime`: the differences found.
fn equivalence(caller: Caller) -> Vec<String> {
    let rootfs = caller.rootfs();
    let host_dir = shared_tempdir("rsafe-fromspec-data-");
    fs::write(host_dir.path().join("file"), "data\n").unwrap();
    let mut failures = Vec::new();
    for (name, flags) in CASES {
        if caller == Caller::User && flags.contains(&"-u") {
            // A single-id map has only root: rsafe run refuses another user, as it should.
            continue;
        }
        let flags: Vec<String> = flags
            .iter()
            .map(|f| f.replace("{dir}", host_dir.path().to_str().unwrap()))
            .collect();
        let store = support::temp_root();
        let (run_out, config) = through_run(caller, store.path(), &flags, &rootfs);
        // The probe saw something: a comparison of two empty outputs would prove nothing.
        for (section, want) in [
            ("status", "NoNewPrivs:\t1"),
            ("uid_map", " 0 "),
            ("mounts", " / / "),
            ("seccomp", "unshare -U: "),
        ] {
            let got = run_out.get(section).map_or("", String::as_str);
            assert!(got.contains(want), "{name}: rsafe run's {section}: {got:?}");
        }
        let oci_out = through_runtime(caller, name, &config, &run_out);
        let case = format!("{caller:?} {name}");
        failures.extend(compare(
            &case,
            &run_out,
            &oci_out,
            &allowed(caller, &config),
        ));
        let rm = caller
            .command(store.path())
            .args(["rm", "-f", "probe"])
            .output();
        assert!(rm.unwrap().status.success(), "{case}: rsafe rm");
    }
    failures
}

/// The probe's sections through `rsafe run FLAGS ROOTFS`, and the `config.json` it wrote.
fn through_run(caller: Caller, store: &Path, flags: &[String], rootfs: &Path) -> (Sections, Value) {
    let out = caller
        .command(store)
        .args(["run", "--name", "probe"])
        .args(flags)
        .arg(rootfs)
        .args(["/bin/sh", "-c", PROBE])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{caller:?}: rsafe run {flags:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let containers = store.join("containers");
    let config = fs::read_dir(&containers)
        .unwrap()
        .map(|e| e.unwrap().path().join("config.json"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("rsafe run {flags:?}: no config.json under {containers:?}"));
    let mode = fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "config.json holds the environment: owner only");
    let config = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    (sections(&stdout), config)
}

/// The runner's part for `config`: an overlay of its layers on a fresh writable layer owned by
/// container root, mounted nosuid,nodev as rsafe's is, and the
/// generated `/etc` files with what `rsafe run`'s probe read in them. Unmounted on drop.
struct RunnerRoot {
    dir: tempfile::TempDir,
    merged: PathBuf,
}

impl RunnerRoot {
    fn new(config: &mut Value, run: &Sections) -> RunnerRoot {
        let dir = shared_tempdir("rsafe-fromspec-bundle-");
        let lowers: Vec<String> = serde_json::from_str(
            config["annotations"]["io.github.rsafe.rootfs.lowers"]
                .as_str()
                .expect("the layers' annotation"),
        )
        .unwrap();
        let merged = dir.path().join("merged");
        let (upper, work) = (dir.path().join("upper"), dir.path().join("work"));
        for d in [&merged, &upper, &work] {
            fs::create_dir(d).unwrap();
        }
        let host_root = config["linux"]["uidMappings"][0]["hostID"]
            .as_u64()
            .unwrap() as u32;
        let host_root_gid = config["linux"]["gidMappings"][0]["hostID"]
            .as_u64()
            .unwrap() as u32;
        for d in [&upper, &work] {
            std::os::unix::fs::chown(d, Some(host_root), Some(host_root_gid)).unwrap();
        }
        // Each layer as rsafe's store extracts an image's for this id map: owned by the host
        // ids the container's ids map to. A layer owned by host root (rsafe run id-maps its
        // mount) is copied so; one already container root's (a rootless caller's) is used.
        let shifted: Vec<String> = lowers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                use std::os::unix::fs::MetadataExt;
                if fs::metadata(l).unwrap().uid() == host_root {
                    return l.clone();
                }
                let copy = dir.path().join(format!("lower{i}"));
                support::sh(Command::new("cp").arg("-a").arg(l).arg(&copy));
                shift_owners(&copy, host_root, host_root_gid);
                copy.display().to_string()
            })
            .collect();
        // overlayfs takes the topmost layer first.
        let lowerdir: Vec<&str> = shifted.iter().rev().map(String::as_str).collect();
        // As rsafe's: writable while it is set up, sealed read-only by `root.readonly`.
        let options = format!(
            "nosuid,nodev,lowerdir={},upperdir={},workdir={}",
            lowerdir.join(":"),
            upper.display(),
            work.display()
        );
        support::sh(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o", &options])
                .arg(&merged),
        );
        config["root"]["path"] = json!(merged);
        // The test is the runner here: rsafe-runtime must bind `merged`, not mount the layers.
        let annotations = config["annotations"].as_object_mut().unwrap();
        for key in LAYERED {
            annotations.remove(*key);
        }
        for m in config["mounts"].as_array_mut().unwrap() {
            let dest = m["destination"].as_str().unwrap().to_string();
            if let Some(file) = dest.strip_prefix("/etc/") {
                let content = run
                    .get(&format!("file:{dest}"))
                    .unwrap_or_else(|| panic!("no {dest} in rsafe run's output"));
                let path = dir.path().join(format!("etc-{file}"));
                fs::write(&path, content).unwrap();
                m["source"] = json!(path);
            }
        }
        fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
        RunnerRoot { dir, merged }
    }
}

/// Adds `uid`/`gid` to the owner of every file under `path` (symlinks themselves).
fn shift_owners(path: &Path, uid: u32, gid: u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path).unwrap();
    std::os::unix::fs::lchown(path, Some(meta.uid() + uid), Some(meta.gid() + gid)).unwrap();
    if meta.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            shift_owners(&entry.unwrap().path(), uid, gid);
        }
    } else if meta.is_file() {
        // chown drops set-uid and set-gid bits: put the mode back.
        fs::set_permissions(path, meta.permissions()).unwrap();
    }
}

impl Drop for RunnerRoot {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.merged).status();
    }
}

/// The probe's sections through `rsafe runtime create` and `start` of `config` (the bundle
/// written by [`RunnerRoot`]), its output read from a file until the end marker.
fn through_runtime(caller: Caller, name: &str, config: &Value, run: &Sections) -> Sections {
    let mut config = config.clone();
    let bundle = RunnerRoot::new(&mut config, run);
    run_bundle(caller, name, bundle.dir.path())
}

/// The annotations of rsafe's layered root, which rsafe-runtime mounts itself.
const LAYERED: &[&str] = &[
    "io.github.rsafe.rootfs.lowers",
    "io.github.rsafe.rootfs.upper",
    "io.github.rsafe.rootfs.work",
];

/// `rsafe runtime` as `caller`, with the state root `root`.
fn runtime(caller: Caller, root: &Path) -> Command {
    let mut c = match caller {
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
                // As its rsafe run: no set-uid helper works, the map is its uid alone.
                c.args(["--inh-caps=-all", "--bounding-set=-all"]);
            }
            c.arg("--").arg(support::rsafe_bin());
            c
        }
    };
    c.arg("runtime").arg("--root").arg(root);
    c
}

/// The probe's sections through `rsafe runtime create`, `start`, `state` and `delete` of the
/// bundle in `bundle_dir`, its output read from a file until the end marker.
fn run_bundle(caller: Caller, name: &str, bundle_dir: &Path) -> Sections {
    let state_root = shared_tempdir("rsafe-fromspec-root-");
    fs::set_permissions(state_root.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let outputs = shared_tempdir("rsafe-fromspec-out-");
    let out_path = outputs.path().join("out");
    let err_path = outputs.path().join("err");
    let id = format!("fromspec-{name}");
    let rt = |args: &[&str]| {
        let mut c = runtime(caller, state_root.path());
        c.args(args);
        c
    };
    let status = rt(&["create", "--bundle", bundle_dir.to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    let err = || fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "{name}: rsafe runtime create: {}", err());
    let start = rt(&["start", &id]).output().unwrap();
    assert!(
        start.status.success(),
        "{name}: rsafe runtime start: {}",
        String::from_utf8_lossy(&start.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let output = loop {
        let o = fs::read_to_string(&out_path).unwrap_or_default();
        if o.contains("== end") {
            break o;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: the runtime's probe never finished: {o}\n{}",
            err()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let state = rt(&["state", &id]).output().unwrap();
    let state: Value = serde_json::from_slice(&state.stdout)
        .unwrap_or_else(|e| panic!("{name}: rsafe runtime state: {e}: {state:?}"));
    assert_eq!(state["id"], json!(id), "{name}: state");
    let deleted = rt(&["delete", "--force", &id]).output().unwrap();
    assert!(
        deleted.status.success(),
        "{name}: rsafe runtime delete: {}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    sections(&output)
}

type Sections = BTreeMap<String, String>;

/// `== NAME` sections of the probe's output.
fn sections(output: &str) -> Sections {
    let mut out = Sections::new();
    let mut current: Option<String> = None;
    for line in output.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            current = Some(name.to_string());
            out.insert(name.to_string(), String::new());
        } else if let Some(name) = &current {
            let text = out.get_mut(name).unwrap();
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// A mountinfo line as both sides should agree on it: mount point, per-mount options, type,
/// and the filesystem's own options without what names host paths or ids. The root's
/// filesystem options (the overlay's layer paths) and the generated `/etc` files' filesystem
/// (rsafe's scratch tmpfs, the bundle's host files: the runner's choice of where to keep
/// them) are left out: only where they are mounted and how.
///
/// Sorted by mount point, stably (mounts stacked on one point keep their order): since Linux
/// 6.8 mountinfo lists a namespace's mounts by their creation, and rsafe-runtime's parent
/// clones its bind trees before the container mounts the rest, where `rsafe run` mounts the
/// device nodes under `/dev` before `/dev/pts`.
fn normalise_mounts(mountinfo: &str) -> String {
    let mut lines: Vec<String> = mountinfo.lines().map(normalise_mount).collect();
    lines.sort_by(|a, b| a.split(' ').next().cmp(&b.split(' ').next()));
    lines.concat()
}

/// The files rsafe generates and binds over the image's.
const GENERATED: &[&str] = &["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];

fn normalise_mount(line: &str) -> String {
    let fields: Vec<&str> = line.split(' ').collect();
    let Some(sep) = fields.iter().position(|f| *f == "-") else {
        return format!("{line}\n");
    };
    let (point, opts) = (fields[4], fields[5]);
    let generated = GENERATED.contains(&point);
    let (fstype, super_opts) = match (point, generated) {
        (_, true) => ("(generated)", ""),
        ("/", _) => (fields[sep + 1], ""),
        _ => (fields[sep + 1], fields.get(sep + 3).copied().unwrap_or("")),
    };
    format!("{point} {opts} {fstype} {super_opts}\n")
}

/// Every section that differs between the two, named with the case, as lines for the
/// failure message (the `allowed` sections are skipped).
fn compare(case: &str, run: &Sections, oci: &Sections, allowed: &[&str]) -> Vec<String> {
    let mut failures = Vec::new();
    let names: std::collections::BTreeSet<&String> = run.keys().chain(oci.keys()).collect();
    for name in names {
        if allowed.contains(&name.as_str()) {
            continue;
        }
        let ignored: Vec<&str> = allowed
            .iter()
            .filter_map(|a| a.strip_prefix(name.as_str())?.strip_prefix(':'))
            .collect();
        let without = |text: String| -> String {
            text.lines()
                .filter(|l| !ignored.iter().any(|p| l.starts_with(p)))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let (mut a, mut b) = (
            run.get(name).cloned().unwrap_or_default(),
            oci.get(name).cloned().unwrap_or_default(),
        );
        if name == "mounts" {
            a = normalise_mounts(&a);
            b = normalise_mounts(&b);
        }
        (a, b) = (without(a), without(b));
        if a != b {
            failures.push(format!(
                "[{case}] {name}:\n  rsafe run:\n{}  rsafe-runtime:\n{}",
                indent(&a),
                indent(&b)
            ));
        }
    }
    // The probe ran to its end on both sides, and a difference is in a section both have.
    for (side, s) in [("rsafe run", run), ("rsafe-runtime", oci)] {
        if !s.contains_key("end") {
            failures.push(format!("[{case}] {side}: the probe did not finish"));
        }
    }
    failures
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn mounts_are_compared_by_point_options_and_filesystem() {
    let a = "75 46 0:43 / / rw,nosuid,nodev,relatime - overlay overlay rw,lowerdir=/a\n\
             88 75 0:42 /etc-hosts /etc/hosts ro,nosuid - tmpfs none rw,size=64k\n\
             85 77 0:48 / /dev/shm rw,nosuid - tmpfs none rw,size=65536k\n";
    let b = "12 1 0:99 / / rw,nosuid,nodev,relatime - overlay overlay rw,lowerdir=/b\n\
             13 12 8:1 /tmp/x/etc-hosts /etc/hosts ro,nosuid - ext4 /dev/sda1 rw\n\
             15 12 0:50 / /dev/shm rw,nosuid - tmpfs none rw,size=65536k\n";
    assert_eq!(normalise_mounts(a), normalise_mounts(b));
    let c = b.replace("/dev/shm rw,nosuid", "/dev/shm rw,nosuid,nodev");
    assert_ne!(normalise_mounts(a), normalise_mounts(&c));
    let d = b.replace("size=65536k", "size=1m");
    assert_ne!(normalise_mounts(a), normalise_mounts(&d));
    let e = b.replace("/etc/hosts ro,nosuid", "/etc/hosts rw,nosuid");
    assert_ne!(normalise_mounts(a), normalise_mounts(&e));
    // Creation order does not matter; the order of mounts stacked on one point does.
    let lines: Vec<&str> = b.lines().collect();
    let reordered = format!("{}\n{}\n{}\n", lines[2], lines[0], lines[1]);
    assert_eq!(normalise_mounts(a), normalise_mounts(&reordered));
    let stacked =
        "1 0 0:1 / /x rw - tmpfs none rw,size=1k\n2 1 0:2 / /x ro - tmpfs none rw,size=2k\n";
    let swapped =
        "2 1 0:2 / /x ro - tmpfs none rw,size=2k\n1 0 0:1 / /x rw - tmpfs none rw,size=1k\n";
    assert_ne!(normalise_mounts(stacked), normalise_mounts(swapped));
}

#[test]
fn a_difference_is_named_by_case_and_field() {
    let run = sections("== status\nSeccomp:\t2\n== pid1\nrsafe-init\n== end\n");
    let same = sections("== status\nSeccomp:\t2\n== pid1\nsh\n== end\n");
    assert!(compare("c", &run, &same, &["pid1"]).is_empty());
    assert_eq!(compare("c", &run, &same, &[]).len(), 1);
    let other = sections("== status\nSeccomp:\t0\n== pid1\nsh\n== end\n");
    let f = compare("c", &run, &other, &["pid1"]);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].starts_with("[c] status:"), "{f:?}");
    let limits = sections("== ulimit\nopen files (-n) 10\nmax user processes (-u) 4096\n== end\n");
    let other_limits =
        sections("== ulimit\nopen files (-n) 10\nmax user processes (-u) 9\n== end\n");
    assert!(compare("c", &limits, &other_limits, &["ulimit:max user processes"]).is_empty());
    assert_eq!(compare("c", &limits, &other_limits, &[]).len(), 1);
    let more = sections("== ulimit\nopen files (-n) 11\nmax user processes (-u) 9\n== end\n");
    assert_eq!(
        compare("c", &limits, &more, &["ulimit:max user processes"]).len(),
        1
    );
    let cut = sections("== status\nSeccomp:\t2\n");
    assert!(
        compare("c", &run, &cut, &["pid1"])
            .iter()
            .any(|l| l.contains("did not finish"))
    );
}

#[test]
fn create_writes_the_config_and_says_why_it_cannot() {
    if !support::have("root (:idmap binds are root's)", support::is_root()) {
        return;
    }
    let rootfs = support::busybox_rootfs();
    let store = support::temp_root();
    let made = support::rsafe(store.path())
        .args(["create", "--name", "made"])
        .arg(&rootfs)
        .args(["/bin/echo", "hi"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let id = String::from_utf8_lossy(&made.stdout).trim().to_string();
    let dir = store.path().join("containers").join(&id);
    let config: Value =
        serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["args"], json!(["/bin/echo", "hi"]));
    assert_eq!(config["root"]["path"], json!(dir.join("rootfs")));
    assert_eq!(config["hostname"], json!(&id[..12]));
    assert_eq!(config["process"]["noNewPrivileges"], json!(true));
    let inspect = support::rsafe(store.path())
        .args(["inspect", "made"])
        .output()
        .unwrap();
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspect[0]["OCIConfigPath"], json!(dir.join("config.json")));

    // An id-mapped bind mount has no bundle form: no file, and --verbose says why.
    let host_dir = shared_tempdir("rsafe-fromspec-idmap-");
    let volume = format!("{}:/data:idmap", host_dir.path().display());
    let refused = support::rsafe(store.path())
        .args(["create", "--verbose", "--name", "idmapped", "-v", &volume])
        .arg(&rootfs)
        .arg("true")
        .output()
        .unwrap();
    assert!(refused.status.success(), "{refused:?}");
    let id = String::from_utf8_lossy(&refused.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("config.json: not written: -v ")
            && stderr.contains(":/data:idmap: an id-mapped bind mount"),
        "{stderr}"
    );
    let dir = store.path().join("containers").join(&id);
    assert!(!dir.join("config.json").exists());
    let inspect = support::rsafe(store.path())
        .args(["inspect", &id])
        .output()
        .unwrap();
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert!(inspect[0].get("OCIConfigPath").is_none(), "{inspect}");
}

/// The probe's sections that a plain runtime-spec runtime gives as rsafe does: what the config
/// says (ids, capabilities, no_new_privs, hostname, files, rlimits, cwd, masked and read-only
/// paths, which mount points). Not rsafe's floor on top of it (seccomp, landlock), nor the
/// `HOSTNAME` rsafe's exec adds as docker does.
const PEER_SECTIONS: &[&str] = &[
    "status",
    "uid_map",
    "gid_map",
    "id",
    "masked",
    "readonly",
    "hostname",
    "file:/etc/hostname",
    "file:/etc/hosts",
    "file:/etc/resolv.conf",
    "ulimit",
    "env",
    "cwd",
    "mounts",
];

/// A section as [`PEER_SECTIONS`] compares it.
fn peer_view(section: &str, text: &str) -> String {
    let keep = |l: &&str| match section {
        "status" => l.starts_with("Cap") || l.starts_with("NoNewPrivs"),
        "env" => !l.starts_with("HOSTNAME="),
        _ => true,
    };
    let mut lines: Vec<String> = text.lines().filter(keep).map(str::to_string).collect();
    if section == "mounts" {
        lines = lines
            .iter()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .collect();
        lines.sort();
    }
    lines.join("\n")
}

/// `crun run` of the bundle (crun 1.8 refuses this host's hybrid cgroups: it runs where the
/// v2 hierarchy is unmounted, as tests/support/containers.rs runs it).
fn through_crun(name: &str, config: &Value, run: &Sections) -> Sections {
    let mut config = config.clone();
    let bundle = RunnerRoot::new(&mut config, run);
    let state_root = shared_tempdir("rsafe-fromspec-crun-");
    // Not /dev/null: crun (as runc) chowns a user-namespaced container's stdio to its root,
    // which would give the host's /dev/null to a subordinate id (.ci/host-check.sh checks).
    let stdin = state_root.path().join("stdin");
    fs::write(&stdin, "").unwrap();
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(
            "umount /sys/fs/cgroup/unified 2>/dev/null; \
             umount -l /sys/fs/cgroup/unified 2>/dev/null; exec crun \"$@\"",
        )
        .arg("crun")
        .arg("--root")
        .arg(state_root.path())
        .args(["run", "-b", bundle.dir.path().to_str().unwrap()])
        .arg(format!("fromspec-crun-{name}"))
        .stdin(fs::File::open(&stdin).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: crun run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    sections(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn crun_runs_the_exported_config_as_the_same_container_without_rsafes_floor() {
    if !support::have(
        "root (the bundle's root is an overlay mount)",
        support::is_root(),
    ) || !support::have(
        "crun and unshare",
        support::tool("crun") && support::tool("unshare"),
    ) {
        return;
    }
    let rootfs = support::busybox_rootfs();
    let host_dir = shared_tempdir("rsafe-fromspec-data-");
    let mut failures = Vec::new();
    for (name, flags) in CASES {
        let flags: Vec<String> = flags
            .iter()
            .map(|f| f.replace("{dir}", host_dir.path().to_str().unwrap()))
            .collect();
        let store = support::temp_root();
        let (run_out, config) = through_run(Caller::Host, store.path(), &flags, &rootfs);
        let crun_out = through_crun(name, &config, &run_out);
        for section in PEER_SECTIONS {
            let a = peer_view(section, run_out.get(*section).map_or("", String::as_str));
            let b = peer_view(section, crun_out.get(*section).map_or("", String::as_str));
            if a != b {
                failures.push(format!(
                    "[{name}] {section}:\n  rsafe run:\n{}\n  crun:\n{}",
                    indent(&a),
                    indent(&b)
                ));
            }
        }
        if !crun_out.contains_key("end") {
            failures.push(format!("[{name}] crun: the probe did not finish"));
        }
        let rm = support::rsafe(store.path())
            .args(["rm", "-f", "probe"])
            .output();
        assert!(rm.unwrap().status.success(), "{name}: rsafe rm");
    }
    assert!(
        failures.is_empty(),
        "rsafe run and crun on its config.json differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_learning_run_writes_no_config_and_says_why() {
    if !run_support::userns_works() {
        return;
    }
    let store = support::temp_root();
    let out_dir = shared_tempdir("rsafe-fromspec-learn-");
    let learned = out_dir.path().join("learned.toml");
    let run = support::rsafe(store.path())
        .args(["run", "--verbose", "--name", "learner", "--learn"])
        .arg(&learned)
        .arg(support::busybox_rootfs())
        .arg("true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("config.json: not written: --learn stacks a notifying seccomp filter"),
        "{stderr}"
    );
    let containers = store.path().join("containers");
    for entry in fs::read_dir(&containers).unwrap() {
        assert!(!entry.unwrap().path().join("config.json").exists());
    }
}

/// Phase 2a: the `config.json` that `rsafe create IMAGE` writes runs under `rsafe runtime
/// create/start/state/delete` with nothing done by the test (rsafe-runtime mounts the image's
/// layers and the container's writable layer from its annotations, and binds the `/etc` files
/// `create` wrote beside it), and the probe sees what it sees under `rsafe run` of the same
/// image and flags. Root and the test user, with and without subordinate ids.
#[test]
fn standalone_config_runs_under_rsafe_runtime() {
    if !support::have(
        "root (the test user's runs are made with setpriv)",
        support::is_root(),
    ) {
        return;
    }
    let layout = support::busybox_layout();
    let mut failures = Vec::new();
    for caller in callers() {
        let store = support::temp_root();
        let load = caller
            .command(store.path())
            .args(["-q", "load"])
            .arg(&layout)
            .output()
            .unwrap();
        assert!(load.status.success(), "{caller:?}: rsafe load: {load:?}");
        for (name, flags) in STANDALONE_CASES {
            let with = |cmd: &str, n: &str| {
                let out = caller
                    .command(store.path())
                    .args([cmd, "--name", n, "--hostname", "probe-host"])
                    .args(*flags)
                    .args(["oci-busybox:root", PROBE])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{caller:?} {name}: rsafe {cmd}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            let run = sections(&with("run", &format!("ran-{name}")));
            assert!(
                run.contains_key("end"),
                "{caller:?} {name}: rsafe run: {run:?}"
            );
            let id = with("create", &format!("made-{name}")).trim().to_string();
            let bundle = store.path().join("containers").join(&id);
            let config: Value =
                serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
            for key in LAYERED {
                assert!(
                    config["annotations"][key].is_string(),
                    "{caller:?} {name}: no {key} in {}",
                    config["annotations"]
                );
            }
            let oci = run_bundle(caller, name, &bundle);
            let case = format!("{caller:?} standalone {name}");
            failures.extend(compare(&case, &run, &oci, &allowed(caller, &config)));
            // The workload wrote through the overlay into the container's own writable layer.
            assert!(
                bundle.join("upper/etc").is_dir(),
                "{case}: nothing in {}",
                bundle.join("upper").display()
            );
        }
    }
    assert!(
        failures.is_empty(),
        "rsafe run and rsafe-runtime of rsafe create's config differ:\n{}",
        failures.join("\n")
    );
}

/// Flags for [`standalone_config_runs_under_rsafe_runtime`]: the default, a read-only root and
/// the host's network (the three ways of `/etc/resolv.conf`: none, none, the host's).
const STANDALONE_CASES: &[(&str, &[&str])] = &[
    ("default", &[]),
    ("read-only", &["--read-only"]),
    ("network-host", &["--network", "host"]),
];

/// A bundle whose layer annotation leads out of its store (another directory, `..`, a symlink)
/// is refused with one line naming the annotation, and no container is left.
#[test]
fn hostile_layer_annotations_are_refused_naming_the_annotation() {
    if !support::have(
        "root (root's runtime mounts the layers)",
        support::is_root(),
    ) {
        return;
    }
    let store = support::temp_root();
    let load = support::rsafe(store.path())
        .args(["-q", "load"])
        .arg(support::busybox_layout())
        .output()
        .unwrap();
    assert!(load.status.success(), "rsafe load: {load:?}");
    let made = support::rsafe(store.path())
        .args(["create", "oci-busybox:root", "true"])
        .output()
        .unwrap();
    assert!(made.status.success(), "rsafe create: {made:?}");
    let id = String::from_utf8_lossy(&made.stdout).trim().to_string();
    let bundle = store.path().join("containers").join(&id);
    let config_path = bundle.join("config.json");
    let config: Value = serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    let key = "io.github.rsafe.rootfs.lowers";
    let layers: Vec<String> =
        serde_json::from_str(config["annotations"][key].as_str().unwrap()).unwrap();
    let link = store.path().join("layers/rsafe-test-link");
    std::os::unix::fs::symlink("/", &link).unwrap();
    let outside = shared_tempdir("rsafe-fromspec-hostile-");
    let dotdot = format!("{}/../../containers/{id}", layers[0]);
    for hostile in [
        outside.path().to_str().unwrap(),
        "/",
        dotdot.as_str(),
        link.to_str().unwrap(),
    ] {
        let mut c = config.clone();
        let mut lowers = layers.clone();
        lowers.push(hostile.to_string());
        c["annotations"][key] = json!(serde_json::to_string(&lowers).unwrap());
        fs::write(&config_path, serde_json::to_vec(&c).unwrap()).unwrap();
        let root = shared_tempdir("rsafe-fromspec-root-");
        let out = runtime(Caller::Host, root.path())
            .args(["create", "--bundle"])
            .arg(&bundle)
            .arg("hostile")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{hostile}: created: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{hostile}: {stderr}");
        assert!(
            stderr.contains(&format!("annotations.{key}")) && stderr.contains(hostile),
            "{hostile}: {stderr}"
        );
        assert_eq!(
            fs::read_dir(root.path()).unwrap().count(),
            0,
            "{hostile}: create left something in its state root"
        );
    }
}
