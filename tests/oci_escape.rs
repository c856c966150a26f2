//! The escape probe of `tests/escape.rs`, started by a real client: podman (as root) with
//! `rsafe-runtime` as its runtime, on an image imported from the probe's root filesystem. Issue
//! 14 asks for "the same vectors blocked as under `rsafe run`": the vectors left open there are
//! compared with those left open by `rsafe run` (same probe, same bait, default policy), and any
//! vector open only under podman fails the test unless it is one of [`KNOWN_PODMAN_ONLY`], each
//! of which podman's own bundle causes (with the reason beside it). Plain podman (runc) runs the
//! same probe: rsafe-runtime must leave open nothing runc blocks, and the output lists every
//! vector under all three.
#[path = "support/escape.rs"]
#[allow(dead_code)] // Bait::dir is for tests/escape.rs's control run
mod escape_support;
#[path = "support/run.rs"]
#[allow(dead_code)] // shared with tests/run.rs, which uses the rest
mod run_support;
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use escape_support::{Bait, VECTORS, results};
use run_support::{Caller, run};
use support::containers::shared_tempdir;

/// Vectors open under podman + rsafe-runtime but not under `rsafe run`, and why: what podman
/// puts in the bundle it hands to the runtime, not something rsafe-runtime loosens. Any other
/// difference fails the test; one of these that closes fails it too (so the list stays true).
///
/// podman's own seccomp profile (`/usr/share/containers/seccomp.json`) allows `unshare`,
/// `clone` with any flags, `keyctl` and `process_vm_readv`; rsafe-runtime stacks its default
/// filter on a bundle's profile (a call must pass both), which closes those four.
const KNOWN_PODMAN_ONLY: &[(&str, &str)] = &[(
    "mountinfo_host_paths",
    "podman bind-mounts /etc/hosts, /etc/hostname and /run/.containerenv from files under \
     /run/containers/storage/overlay-containers/<id>/userdata: a bind mount's line in \
     mountinfo shows its source's path (runc shows the same; rsafe run writes these files \
     on a scratch tmpfs instead)",
)];

/// Vectors open under podman + rsafe-runtime because of a bug in rsafe-runtime, each with the
/// `#[ignore]`d test that fails until it is fixed. The comparison leaves them out (and fails
/// once one closes, so that its test is un-ignored and it leaves this list).
const RSAFE_RUNTIME_BUGS: &[(&str, &str)] = &[];

/// podman's limits: root lacks CAP_SYS_RESOURCE here, so its default nofile cannot be set.
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// What one run of the probe reported: every vector's result, in the probe's order.
#[derive(Debug)]
struct Report {
    /// Who started the container, for messages.
    what: &'static str,
    results: Vec<(String, String)>,
}

impl Report {
    /// Parses the probe's output; an incomplete output (a vector missing, no `done`) is an
    /// error naming who ran it, since a probe that died half-way blocks nothing.
    fn parse(what: &'static str, stdout: &str) -> Result<Report, String> {
        let results = results(stdout);
        let printed: Vec<&str> = results.iter().map(|(k, _)| k.as_str()).collect();
        let mut expected = VECTORS.to_vec();
        expected.push("done");
        if printed != expected {
            return Err(format!(
                "{what}: the probe printed {printed:?}, expected every vector then done"
            ));
        }
        Ok(Report { what, results })
    }

    /// The vectors not blocked (open, or not tried), as tests/escape.rs counts them: TIOCSTI
    /// without any terminal is not applicable, not open.
    fn open(&self) -> BTreeSet<&str> {
        self.results
            .iter()
            .filter(|(k, v)| k != "done" && !v.starts_with("blocked:"))
            .filter(|(k, v)| !(k == "tiocsti" && v.starts_with("n/a:")))
            .map(|(k, _)| k.as_str())
            .collect()
    }

    fn result(&self, vector: &str) -> &str {
        self.results
            .iter()
            .find(|(k, _)| k == vector)
            .map_or("(not printed)", |(_, v)| v.as_str())
    }
}

/// The problems with `podman`'s report against `baseline`'s (`rsafe run`): vectors open only
/// under podman that are not known, and known ones that are no longer open.
fn differences(baseline: &Report, podman: &Report, known: &[(&str, &str)]) -> Vec<String> {
    let base = baseline.open();
    let extra: BTreeSet<&str> = podman.open().difference(&base).copied().collect();
    let known_names: BTreeSet<&str> = known.iter().map(|(k, _)| *k).collect();
    let mut problems: Vec<String> = extra
        .difference(&known_names)
        .map(|v| {
            format!(
                "{v} is open under {} ({}) but blocked under {} ({})",
                podman.what,
                podman.result(v),
                baseline.what,
                baseline.result(v)
            )
        })
        .collect();
    problems.extend(known_names.difference(&extra).map(|v| {
        format!(
            "{v} is listed as open only under {} but is not ({}: {}, {}: {}): update the list \
             (and un-ignore its test if it is a bug)",
            podman.what,
            podman.what,
            podman.result(v),
            baseline.what,
            baseline.result(v)
        )
    }));
    problems
}

/// One line per vector: its result under each run (results shortened to their first word).
fn table(reports: &[&Report]) -> String {
    let short = |v: &str| v.split(':').next().unwrap_or(v).to_string();
    let mut out = format!(
        "{:28} {}\n",
        "vector",
        reports
            .iter()
            .map(|r| r.what)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    for v in VECTORS {
        let cells: Vec<String> = reports.iter().map(|r| short(r.result(v))).collect();
        out.push_str(&format!("{v:28} {}\n", cells.join(" | ")));
    }
    let counts: Vec<String> = reports
        .iter()
        .map(|r| format!("{} open", r.open().len()))
        .collect();
    out.push_str(&format!("{:28} {}\n", "total", counts.join(" | ")));
    out
}

/// The probe's rootfs imported into podman's (root) storage, removed again when dropped.
struct Image {
    name: String,
}

impl Image {
    fn import(rootfs: &Path, dir: &Path) -> Image {
        // One per test: removing an image that a parallel test's container uses breaks it.
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("localhost/rsafe-oci-escape:{}-{n}", std::process::id());
        let tar = dir.join("rootfs.tar");
        support::sh(
            Command::new("tar")
                .arg("-C")
                .arg(rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        support::sh(Command::new("podman").arg("import").arg(&tar).arg(&name));
        Image { name }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rmi", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// podman's storage directories (graph root and run root): host paths that show in a
/// container's mountinfo if podman's mounts leak them, as the rsafe store does for rsafe run.
fn podman_storage_paths() -> Vec<PathBuf> {
    let out = support::sh(Command::new("podman").args([
        "info",
        "--format",
        "{{.Store.GraphRoot}}\n{{.Store.RunRoot}}",
    ]));
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| PathBuf::from(l.trim()))
        .collect()
}

/// `podman --runtime RUNTIME run --rm --network none -e … IMAGE /probe [VECTOR…]`; its stdout, or a
/// failure naming the runtime with what podman said.
fn podman_probe(
    runtime: &Path,
    image: &Image,
    env: &[String],
    vectors: &[&str],
) -> Result<String, String> {
    let mut cmd = Command::new("podman");
    cmd.arg("--runtime")
        .arg(runtime)
        .args(["--cgroup-manager", "cgroupfs", "run", "--rm"])
        .args(["--network", "none"])
        .args(ULIMITS);
    for e in env {
        cmd.args(["-e", e]);
    }
    cmd.args([image.name.as_str(), "/probe"]).args(vectors);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "podman --runtime {} run failed ({:?}): {}\n{stdout}",
            runtime.display(),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

/// rsafe-runtime's state directory as root: its default `--root`, where podman's calls keep
/// their containers (the counterpart of `rsafe run`'s store).
const RUNTIME_ROOT: &str = "/run/rsafe-runtime";

/// What the podman tests need: root, podman, runc, user namespaces and the probe; then the
/// probe's rootfs imported into podman and a `rsafe-runtime` link to the binary under test.
struct Setup {
    rootfs: PathBuf,
    image: Image,
    link: PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Option<Setup> {
        if !support::have("root (podman as root)", support::is_root())
            || !support::have("podman", support::tool("podman"))
            || !support::have("runc (podman's plain runtime here)", support::tool("runc"))
            || !run_support::userns_works()
        {
            return None;
        }
        let probe = escape_support::probe()?;
        let rootfs = escape_support::rootfs_with_probe(Caller::Host, &probe);
        let dir = shared_tempdir("rsafe-oci-escape-");
        let link = dir.path().join("rsafe-runtime");
        std::os::unix::fs::symlink(support::rsafe_bin(), &link).unwrap();
        let image = Image::import(&rootfs, dir.path());
        Some(Setup {
            rootfs,
            image,
            link,
            _dir: dir,
        })
    }
}

/// The bait's environment as `-e` values, with `host_paths` for the mountinfo check.
fn env_values(bait: &Bait, host_paths: &[&Path]) -> Vec<String> {
    bait.env(host_paths)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

#[test]
fn podman_with_rsafe_runtime_blocks_what_rsafe_run_blocks() {
    let Some(setup) = Setup::new() else {
        return;
    };
    // The same bait and the same environment for all three; the host paths are rsafe's store,
    // the fixtures (where the rootfs lives), rsafe-runtime's state and podman's storage.
    let bait = Bait::new();
    let store = support::temp_root();
    let fixtures = support::fixtures_dir();
    let podman_paths = podman_storage_paths();
    let mut host_paths: Vec<&Path> = vec![store.path(), &fixtures, Path::new(RUNTIME_ROOT)];
    host_paths.extend(podman_paths.iter().map(PathBuf::as_path));
    let env = env_values(&bait, &host_paths);

    let mut args = vec!["--rm", "--policy", "default"];
    for e in &env {
        args.extend(["-e", e.as_str()]);
    }
    args.extend([setup.rootfs.to_str().unwrap(), "--", "/probe"]);
    let out = run(Caller::Host, store.path(), &args);
    assert_eq!(out.code, 0, "rsafe run of the probe failed: {out:?}");
    let rsafe = Report::parse("rsafe run", &out.stdout).unwrap();

    let ours = podman_probe(&setup.link, &setup.image, &env, &[]).unwrap();
    let ours = Report::parse("podman+rsafe-runtime", &ours).unwrap();
    let runc = podman_probe(Path::new("runc"), &setup.image, &env, &[]).unwrap();
    let runc = Report::parse("podman+runc", &runc).unwrap();

    eprintln!("{}", table(&[&rsafe, &ours, &runc]));
    let explained: Vec<(&str, &str)> = KNOWN_PODMAN_ONLY
        .iter()
        .chain(RSAFE_RUNTIME_BUGS)
        .copied()
        .collect();
    let mut problems = differences(&rsafe, &ours, &explained);
    // The same bundle under runc: rsafe-runtime's floor may only close vectors, never open one.
    problems.extend(ours.open().difference(&runc.open()).map(|v| {
        format!(
            "{v} is open under {} ({}) but blocked under {} ({})",
            ours.what,
            ours.result(v),
            runc.what,
            runc.result(v)
        )
    }));
    assert!(
        problems.is_empty(),
        "podman with rsafe-runtime is not as confined as rsafe run:\n{}",
        problems.join("\n")
    );
}

/// Was a bug: rsafe-runtime's root overlay (src/runtime/oci/overlay.rs, `idmapped_overlay`) named
/// its id-mapped layers by their staging paths under the runtime's state directory, so the
/// container's /proc/self/mountinfo shows `lowerdir=/run/rsafe-runtime/<id>/rootfs/l0`,
/// `upperdir=…/rootfs/uw/rsafe/upper`, `workdir=…`: host paths, where `rsafe run` names its
/// layers `/proc/self/fd/N` and the same probe finds none. (Fixed: the re-mounted overlay
/// names its layers by descriptor too.)
#[test]
fn the_root_overlay_names_no_runtime_state_directory() {
    let Some(setup) = Setup::new() else {
        return;
    };
    let bait = Bait::new();
    let env = env_values(&bait, &[Path::new(RUNTIME_ROOT)]);
    let out = podman_probe(&setup.link, &setup.image, &env, &["mountinfo_host_paths"]).unwrap();
    let lines = results(&out);
    assert_eq!(lines.len(), 2, "{out}");
    let (vector, result) = &lines[0];
    assert_eq!(vector, "mountinfo_host_paths", "{out}");
    assert!(
        result.starts_with("blocked:"),
        "the container's mountinfo names a host path: {result}"
    );
}

#[test]
fn the_comparison_names_new_and_stale_differences() {
    let report = |what, open: &[&str]| {
        let stdout: String = VECTORS
            .iter()
            .map(|v| {
                let r = if open.contains(v) {
                    "OPEN:succeeded"
                } else {
                    "blocked:EPERM"
                };
                format!("{v}={r}\n")
            })
            .chain(["done\n".to_string()])
            .collect();
        Report::parse(what, &stdout).unwrap()
    };
    let base = report("rsafe run", &["write_sysfs"]);
    // Open in both: not a difference.
    assert!(differences(&base, &report("podman", &["write_sysfs"]), &[]).is_empty());
    // Open only under podman: named, with both results.
    let new = differences(
        &base,
        &report("podman", &["write_sysfs", "mount_tmpfs"]),
        &[],
    );
    assert_eq!(new.len(), 1, "{new:?}");
    assert!(
        new[0].starts_with("mount_tmpfs is open under podman (OPEN:succeeded)"),
        "{new:?}"
    );
    // Known and open: accepted; known but closed: the list is stale.
    let known = [("mount_tmpfs", "a reason")];
    let podman = report("podman", &["mount_tmpfs"]);
    assert!(differences(&base, &podman, &known).is_empty());
    let stale = differences(&base, &report("podman", &[]), &known);
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert!(stale[0].contains("update the list"), "{stale:?}");
    // A truncated report is refused, naming who ran it.
    let err = Report::parse("podman", "inherited_fds=blocked:x\n").unwrap_err();
    assert!(err.starts_with("podman: the probe printed"), "{err}");
    // TIOCSTI without a terminal is not open; any other n/a is.
    let stdout: String = VECTORS
        .iter()
        .map(|v| match *v {
            "tiocsti" => "tiocsti=n/a:no tty\n".to_string(),
            "swapon" => "swapon=n/a:x\n".to_string(),
            _ => format!("{v}=blocked:EPERM\n"),
        })
        .chain(["done\n".to_string()])
        .collect();
    let report = Report::parse("x", &stdout).unwrap();
    assert_eq!(report.open().into_iter().collect::<Vec<_>>(), ["swapon"]);
}
