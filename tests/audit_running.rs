//! The running-container audit against real containers started on this machine (runc, crun,
//! bubblewrap, unshare), found from /proc alone. Every case has a clean counterpart started
//! the same way without the weakness, so a test fails when a check misses it or when it fires
//! on everything. Containers are stopped by pid when each test ends (guards in
//! `support::containers`).
//!
//! Needs root for runc and crun and to read other users' processes; the rootless cases switch
//! to the test user through setpriv.
mod support;

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;

use rsafe::audit::finding::{Finding, Severity};
use rsafe::audit::procs::{self, Container, Runtime, Target, audit_containers, select};
use rsafe::audit::secrets::SecretScanner;
use support::containers::{
    Oci, OciConfig, Started, as_test_user, bwrap, bwrap_on_tmpfs, oci_container, s, shared_tempdir,
    spawn,
};
use support::{have, is_root, tool};

/// Finds the container of `started`'s workload and audits it.
fn audit(started: &Started) -> (Container, Vec<Finding>) {
    let discovery = procs::discover(Path::new("/proc")).expect("discover");
    let container = select(&discovery, &Target::Pid(started.workload))
        .unwrap_or_else(|e| panic!("{}: {e}", started.what))
        .remove(0);
    let scanner = SecretScanner::builtin().expect("builtin secret rules");
    let findings = audit_containers(std::slice::from_ref(&container), &scanner);
    (container, findings)
}

fn rules(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule.as_str()).collect()
}

fn find<'a>(findings: &'a [Finding], rule: &str) -> Option<&'a Finding> {
    findings.iter().find(|f| f.rule == rule)
}

fn evidence(f: &Finding) -> &str {
    f.evidence.as_ref().map_or("", |e| e.excerpt.as_str())
}

fn root_only(what: &str) -> bool {
    have(&format!("root (for {what})"), is_root())
}

#[test]
fn runc_as_host_root_with_added_capabilities_and_no_seccomp() {
    if !root_only("runc") || !have("runc", Oci::Runc.available()) {
        return;
    }
    let weak = OciConfig {
        add_caps: vec!["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"],
        ..OciConfig::default()
    };
    let (bad, id) = oci_container(Oci::Runc, &weak);
    let (c, f) = audit(&bad);
    assert_eq!((c.runtime, c.id.as_str()), (Runtime::Runc, id.as_str()));
    assert_eq!(c.init_pid, bad.workload);
    assert_eq!(c.host_uid, 0);
    let r = rules(&f);
    for rule in [
        "container.root",
        "container.cap-sys-admin",
        "container.capabilities",
        "container.seccomp-disabled",
        "container.host-namespace.user",
        "container.limits.memory",
        "container.limits.pids",
    ] {
        assert!(r.contains(&rule), "{rule} missing for {}: {f:#?}", bad.what);
    }
    let caps = find(&f, "container.capabilities").unwrap();
    assert!(evidence(caps).contains("CAP_SYS_PTRACE"), "{caps:?}");
    assert!(evidence(find(&f, "container.root").unwrap()).contains("no user namespace"));
    assert_eq!(
        find(&f, "container.seccomp-disabled").unwrap().severity,
        Severity::High
    );
    assert_eq!(
        find(&f, "container.cap-sys-admin").unwrap().severity,
        Severity::Critical
    );
    // runc's own namespaces are there: pid, net, ipc, uts, mnt are not the host's.
    for ns in ["pid", "net", "ipc", "uts", "mnt"] {
        assert!(
            !r.contains(&format!("container.host-namespace.{ns}").as_str()),
            "{ns}: {f:#?}"
        );
    }

    // The same container in a user namespace, with seccomp, default capabilities and limits.
    let clean = OciConfig {
        userns: true,
        cgroupns: true,
        seccomp: true,
        limits: true,
        ..OciConfig::default()
    };
    let (good, _) = oci_container(Oci::Runc, &clean);
    let (c, f) = audit(&good);
    assert_eq!(c.host_uid, 100000);
    assert_eq!(
        c.user.as_deref(),
        Some("root"),
        "container root, host 100000"
    );
    let r = rules(&f);
    for rule in [
        "container.root",
        "container.cap-sys-admin",
        "container.capabilities",
        "container.seccomp-disabled",
        "container.no-new-privs",
        "container.limits.memory",
        "container.limits.pids",
    ] {
        assert!(!r.contains(&rule), "{rule} on the clean container: {f:#?}");
    }
    assert!(
        !r.iter().any(|r| r.starts_with("container.host-namespace.")),
        "{f:#?}"
    );
}

#[test]
fn runc_with_privileged_style_mounts() {
    if !root_only("runc") || !have("runc", Oci::Runc.available()) {
        return;
    }
    let (bad, _) = oci_container(
        Oci::Runc,
        &OciConfig {
            rw_sys: true,
            binds: vec![("/dev", "/run", true), ("/etc", "/home/app", true)],
            ..OciConfig::default()
        },
    );
    let (_, f) = audit(&bad);
    let r = rules(&f);
    for rule in [
        "container.mount.proc-sys-rw",
        "container.mount.cgroup-rw",
        "container.mount.host-dev",
        "container.mount.sensitive-host-path",
    ] {
        assert!(r.contains(&rule), "{rule} missing: {f:#?}");
    }
    let etc = find(&f, "container.mount.sensitive-host-path").unwrap();
    assert_eq!(etc.severity, Severity::High);
    assert!(
        evidence(etc).contains("host /etc at /home/app (rw)"),
        "{etc:?}"
    );
    let cgroup = find(&f, "container.mount.cgroup-rw").unwrap();
    assert_eq!(cgroup.severity, Severity::High, "cgroup v1: release_agent");

    // runc's defaults: sysfs and cgroups read-only, a /dev of its own, no host directory.
    let (good, _) = oci_container(Oci::Runc, &OciConfig::default());
    let (_, f) = audit(&good);
    let mounts: Vec<&str> = rules(&f)
        .into_iter()
        .filter(|r| r.starts_with("container.mount.") || *r == "container.device")
        .collect();
    assert!(mounts.is_empty(), "{mounts:?}: {f:#?}");
}

#[test]
fn crun_as_host_root_with_added_capabilities() {
    if !root_only("crun") || !have("crun and unshare", Oci::Crun.available()) {
        return;
    }
    let (bad, id) = oci_container(
        Oci::Crun,
        &OciConfig {
            add_caps: vec!["CAP_SYS_ADMIN"],
            ..OciConfig::default()
        },
    );
    let (c, f) = audit(&bad);
    assert_eq!((c.runtime, c.id.as_str()), (Runtime::Crun, id.as_str()));
    let r = rules(&f);
    for rule in [
        "container.root",
        "container.cap-sys-admin",
        "container.seccomp-disabled",
    ] {
        assert!(r.contains(&rule), "{rule} missing: {f:#?}");
    }

    let (good, _) = oci_container(
        Oci::Crun,
        &OciConfig {
            userns: true,
            seccomp: true,
            ..OciConfig::default()
        },
    );
    let (_, f) = audit(&good);
    let r = rules(&f);
    for rule in [
        "container.root",
        "container.cap-sys-admin",
        "container.seccomp-disabled",
    ] {
        assert!(!r.contains(&rule), "{rule} on the clean container: {f:#?}");
    }
}

#[test]
fn bwrap_uid_1000_is_host_root_when_root_runs_it_and_not_otherwise() {
    if !root_only("bwrap as two users") || !have("bwrap", tool("bwrap")) {
        return;
    }
    let mut cmd = bwrap();
    cmd.args(["--uid", "1000", "--gid", "1000", "sleep", "1000"]);
    let Some(rootless_cmd) = as_test_user(&cmd) else {
        assert!(!support::required(), "the test user is required");
        return;
    };

    // Run by root, bubblewrap maps sandbox uid 1000 to the caller: host root.
    let by_root = spawn("bwrap --uid 1000 (by root)", cmd);
    let (c, f) = audit(&by_root);
    assert_eq!(c.runtime, Runtime::Bwrap);
    assert_eq!((c.uid, c.host_uid), (Some(1000), 0));
    let root = find(&f, "container.root").unwrap_or_else(|| panic!("{f:#?}"));
    assert!(
        evidence(root).contains("maps container uid 1000 to host uid 0"),
        "{root:?}"
    );
    // Its own user namespace: capabilities there are not host capabilities.
    assert!(find(&f, "container.cap-sys-admin").is_none(), "{f:#?}");

    // Run by an unprivileged user, the same sandbox is that user on the host.
    let rootless = spawn("bwrap --uid 1000 (by the test user)", rootless_cmd);
    let (c, f) = audit(&rootless);
    let (test_uid, _) = support::test_user().unwrap();
    assert_eq!((c.uid, c.host_uid), (Some(1000), test_uid));
    assert_eq!(
        c.user.as_deref(),
        Some("app"),
        "busybox's passwd names uid 1000"
    );
    assert!(find(&f, "container.root").is_none(), "{f:#?}");
    for ns in ["pid", "net", "ipc", "uts", "mnt", "user"] {
        let rule = format!("container.host-namespace.{ns}");
        assert!(find(&f, &rule).is_none(), "{rule}: {f:#?}");
    }

    // The test user sees its own sandbox with a rootless `rsafe ps` (pid 1 is not readable
    // for it, so its own namespaces stand for the host's), and root's not at all.
    let mut ps = support::rsafe_as_test_user(Path::new("/tmp")).unwrap();
    let out = ps.args(["ps", "--format", "json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pids_of = |c: &serde_json::Value| -> Vec<u64> {
        c["pids"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_u64())
            .collect()
    };
    let containers = listing["containers"].as_array().unwrap();
    let own = containers
        .iter()
        .find(|c| pids_of(c).contains(&u64::from(rootless.workload)))
        .unwrap_or_else(|| panic!("its own sandbox is missing: {listing:#}"));
    assert_eq!(own["runtime"], "bwrap");
    assert_eq!(own["host_uid"], test_uid);
    assert!(
        !containers
            .iter()
            .any(|c| pids_of(c).contains(&u64::from(by_root.workload))),
        "root's sandbox is not the test user's to see: {listing:#}"
    );
}

#[test]
fn unshare_sharing_the_host_network() {
    if !root_only("unshare") || !have("unshare", tool("unshare")) {
        return;
    }
    let shared = spawn("unshare -m -p", {
        let mut c = Command::new("unshare");
        c.args(["-m", "-p", "--fork", "--kill-child", "--mount-proc"])
            .args(["sleep", "1000"]);
        c
    });
    let (c, f) = audit(&shared);
    assert_eq!(c.runtime, Runtime::Unshare);
    assert_ne!(c.init_pid, 0);
    assert!(c.pids.contains(&shared.workload));
    let r = rules(&f);
    for rule in [
        "container.host-namespace.net",
        "container.host-namespace.ipc",
        "container.host-namespace.uts",
        "container.host-namespace.user",
    ] {
        assert!(r.contains(&rule), "{rule} missing: {f:#?}");
    }
    assert!(!r.contains(&"container.host-namespace.pid"), "{f:#?}");
    // Without pivot_root its root is the host's.
    assert!(r.contains(&"container.mount.host-root"), "{f:#?}");

    let private = spawn("unshare -m -p -n -i -u", {
        let mut c = Command::new("unshare");
        c.args([
            "-m",
            "-p",
            "-n",
            "-i",
            "-u",
            "--fork",
            "--kill-child",
            "--mount-proc",
        ])
        .args(["sleep", "1000"]);
        c
    });
    let (_, f) = audit(&private);
    let r = rules(&f);
    for rule in [
        "container.host-namespace.net",
        "container.host-namespace.ipc",
        "container.host-namespace.uts",
        "container.host-namespace.pid",
    ] {
        assert!(!r.contains(&rule), "{rule} on the private one: {f:#?}");
    }
}

/// A synthetic AWS key pair, random each run (never a real credential, never an allowlisted
/// documentation example).
fn synthetic_aws_keys() -> (String, String) {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ u64::from(std::process::id());
    let mut next = |alphabet: &[u8]| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        alphabet[(seed % alphabet.len() as u64) as usize] as char
    };
    let id_chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let secret_chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let id: String = "AKIA"
        .chars()
        .chain((0..16).map(|_| next(id_chars)))
        .collect();
    let secret: String = (0..40).map(|_| next(secret_chars)).collect();
    (id, secret)
}

#[test]
fn secret_in_the_environment_is_reported_redacted() {
    if !root_only("reading another process's environment") || !have("bwrap", tool("bwrap")) {
        return;
    }
    let (key_id, secret) = synthetic_aws_keys();
    let (_, argv_secret) = synthetic_aws_keys();
    let mut cmd = bwrap();
    cmd.args(["--setenv", "AWS_ACCESS_KEY_ID", &key_id])
        .args(["--setenv", "AWS_SECRET_ACCESS_KEY", &secret])
        .args(["--setenv", "HOME", "/root"])
        // A shell that stays (not exec) with a secret on its command line, the workload below.
        .args(["sh", "-c", "sleep 1000; true"])
        .arg(format!("aws_secret_access_key={argv_secret}"));
    let leaky = spawn("bwrap with AWS keys in its environment and argv", cmd);
    let (c, f) = audit(&leaky);
    let hit = f
        .iter()
        .find(|f| {
            f.location
                .to_string()
                .ends_with("env AWS_SECRET_ACCESS_KEY")
        })
        .unwrap_or_else(|| panic!("no environment secret: {f:#?}"));
    assert_eq!(hit.rule, "secret.aws-secret-access-key");
    assert_eq!(hit.severity, Severity::Critical);
    assert!(find(&f, "secret.aws-access-key-id").is_some(), "{f:#?}");
    let in_argv = f
        .iter()
        .find(|f| f.rule.starts_with("secret.") && f.location.to_string().ends_with("cmdline"))
        .unwrap_or_else(|| panic!("no command-line secret: {f:#?}"));
    assert_eq!(in_argv.rule, "secret.aws-secret-access-key");
    // Never the value, in any form the library hands out or the CLI prints.
    let json = serde_json::to_string(&f).unwrap();
    let debug = format!("{f:?}");
    for text in [&json, &debug] {
        for value in [&secret, &argv_secret] {
            assert!(!text.contains(value.as_str()), "secret leaked: {text}");
            assert!(!text.contains(&value[4..]), "secret leaked: {text}");
        }
    }
    let ps = support::rsafe(Path::new("/tmp"))
        .args(["ps", "--format", "json"])
        .output()
        .unwrap();
    let ps_out = String::from_utf8_lossy(&ps.stdout);
    assert!(ps_out.contains(&c.id), "ps lists it: {ps_out}");
    assert!(
        ps_out.contains("[redacted]"),
        "ps shows the command: {ps_out}"
    );
    for value in [&secret, &argv_secret] {
        assert!(
            !ps_out.contains(&value[4..]),
            "ps leaked a secret: {ps_out}"
        );
    }

    // The same through the CLI: `rsafe audit pid:N` routes to the running-container audit,
    // reports through the shared gate, and never prints the value.
    let cli = support::rsafe(Path::new("/tmp"))
        .args(["audit", "--format", "json", "--fail-on", "critical"])
        .arg(format!("pid:{}", leaky.workload))
        .output()
        .unwrap();
    let cli_out = String::from_utf8_lossy(&cli.stdout);
    assert_eq!(
        cli.status.code(),
        Some(1),
        "critical secret gates: {cli_out}"
    );
    let json: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(json["target"]["kind"], "container");
    assert!(
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "secret.aws-secret-access-key"),
        "{cli_out}"
    );
    for value in [&secret, &argv_secret] {
        assert!(
            !cli_out.contains(&value[4..]),
            "audit leaked a secret: {cli_out}"
        );
    }

    let mut cmd = bwrap();
    cmd.args(["--setenv", "AWS_REGION", "eu-west-1"])
        .args(["--setenv", "HOME", "/root", "sleep", "1000"]);
    let clean = spawn("bwrap without secrets", cmd);
    let (_, f) = audit(&clean);
    assert!(!f.iter().any(|f| f.rule.starts_with("secret.")), "{f:#?}");
}

#[test]
fn host_root_runtime_socket_and_writable_host_dir_mounts() {
    if !root_only("bwrap mounts") || !have("bwrap", tool("bwrap")) {
        return;
    }
    // A real (fake-daemon) socket named like docker's, and a directory holding escaping links.
    let sock_dir = shared_tempdir("rsafe-procs-sock-");
    let sock = sock_dir.path().join("docker.sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    let data = shared_tempdir("rsafe-procs-data-");
    std::os::unix::fs::symlink("/etc/shadow", data.path().join("shadow")).unwrap();
    std::fs::create_dir(data.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("../../../root", data.path().join("sub/up")).unwrap();
    std::os::unix::fs::symlink("../shadow", data.path().join("sub/inside")).unwrap();

    let mut cmd = bwrap_on_tmpfs();
    cmd.args(["--bind", "/", "/host"])
        .args(["--bind", s(&sock), "/var/run/docker.sock"])
        .args(["--bind", s(data.path()), "/data"])
        .args(["sleep", "1000"]);
    let exposed = spawn("bwrap -v /:/host + docker.sock + rw /data", cmd);
    let (_, f) = audit(&exposed);
    let root = find(&f, "container.mount.host-root").unwrap_or_else(|| panic!("{f:#?}"));
    assert_eq!(root.severity, Severity::Critical);
    assert!(
        root.location.to_string().contains("mount /host"),
        "{root:?}"
    );
    let socket = find(&f, "container.mount.runtime-socket").unwrap_or_else(|| panic!("{f:#?}"));
    assert!(
        evidence(socket).contains("/var/run/docker.sock"),
        "{socket:?}"
    );
    let rw = find(&f, "container.mount.host-dir-rw").unwrap_or_else(|| panic!("{f:#?}"));
    assert!(rw.location.to_string().contains("mount /data"), "{rw:?}");
    let links = find(&f, "container.mount.symlink-escape").unwrap_or_else(|| panic!("{f:#?}"));
    assert!(
        evidence(links).contains("/data/shadow -> /etc/shadow"),
        "{links:?}"
    );
    assert!(
        evidence(links).contains("/data/sub/up -> ../../../root"),
        "{links:?}"
    );
    assert!(!evidence(links).contains("inside"), "{links:?}");
    // The host's /proc, /sys and cgroups below /host are covered by the host-root finding.
    assert!(find(&f, "container.mount.cgroup-rw").is_none(), "{f:#?}");

    // The same container with the data directory read-only and nothing else of the host.
    let mut cmd = bwrap_on_tmpfs();
    cmd.args(["--ro-bind", s(data.path()), "/data"])
        .args(["sleep", "1000"]);
    let confined = spawn("bwrap with a read-only /data", cmd);
    let (_, f) = audit(&confined);
    let mounts: Vec<&str> = rules(&f)
        .into_iter()
        .filter(|r| r.starts_with("container.mount.") || *r == "container.device")
        .collect();
    assert!(mounts.is_empty(), "{mounts:?}: {f:#?}");
}

#[test]
fn directory_descriptor_of_the_host_leaked_into_the_container() {
    if !root_only("reading another process's descriptors") || !have("bwrap", tool("bwrap")) {
        return;
    }
    let launch = |leak: bool| {
        let mut inner = bwrap();
        inner.args(["sleep", "1000"]);
        let line = std::iter::once(inner.get_program())
            .chain(inner.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ");
        let script = if leak {
            format!("exec 3</ && exec {line}")
        } else {
            format!("exec {line}")
        };
        let mut sh = Command::new("sh");
        sh.args(["-c", &script]);
        sh
    };
    let leaky = spawn("bwrap holding the host's / as fd 3", launch(true));
    let (_, f) = audit(&leaky);
    let leak = find(&f, "container.fd-outside-root").unwrap_or_else(|| panic!("{f:#?}"));
    assert_eq!(leak.severity, Severity::Critical);
    assert!(evidence(leak).contains("fd 3"), "{leak:?}");
    assert!(evidence(leak).contains("directory / "), "{leak:?}");

    let clean = spawn("bwrap without inherited descriptors", launch(false));
    let (_, f) = audit(&clean);
    assert!(find(&f, "container.fd-outside-root").is_none(), "{f:#?}");
}

/// Whether this build of rsafe has `rsafe run` (the runner lands on its own branch).
fn rsafe_can_run() -> bool {
    Command::new(support::rsafe_bin())
        .args(["run", "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn rsafe_run_default_policy_has_nothing_high_but_a_host_root_volume_does() {
    if !root_only("rsafe run as root") {
        return;
    }
    if !rsafe_can_run() {
        eprintln!("skipping: this rsafe has no `run` command yet");
        return;
    }
    let store = support::temp_root();
    let rootfs = support::containers::rootfs();
    let run = |name: &str, extra: &[&str]| {
        let mut c = Command::new(support::rsafe_bin());
        c.arg("--root")
            .arg(store.path())
            .args(["run", "--rm", "--name", name])
            .args(extra)
            .arg(&rootfs)
            .args(["sleep", "1000"]);
        c
    };
    let default = spawn("rsafe run (default policy)", run("audit-default", &[]));
    let (c, f) = audit(&default);
    assert_eq!(c.runtime, Runtime::Rsafe, "{c:?}");
    assert_eq!(c.name.as_deref(), Some("audit-default"));
    assert_ne!(
        c.host_uid, 0,
        "rsafe maps container root to an unprivileged host id"
    );
    let high: Vec<&Finding> = f.iter().filter(|f| f.severity >= Severity::High).collect();
    assert!(high.is_empty(), "{high:#?}");
    assert!(find(&f, "container.seccomp-disabled").is_none(), "{f:#?}");

    let exposed = spawn(
        "rsafe run --volume /:/host",
        run("audit-exposed", &["--volume", "/:/host"]),
    );
    let (c, f) = audit(&exposed);
    assert_eq!(c.name.as_deref(), Some("audit-exposed"));
    let root = find(&f, "container.mount.host-root").unwrap_or_else(|| panic!("{f:#?}"));
    assert!(
        root.location.to_string().contains("mount /host"),
        "{root:?}"
    );
}

#[test]
fn ps_lists_real_containers_and_says_what_it_cannot_see() {
    if !root_only("runc") || !have("runc", Oci::Runc.available()) {
        return;
    }
    let (started, id) = oci_container(Oci::Runc, &OciConfig::default());
    let out = support::rsafe(Path::new("/tmp"))
        .args(["ps", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = listing["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not listed: {listing:#}"));
    assert_eq!(row["runtime"], "runc");
    assert_eq!(row["pid"], started.workload);
    assert_eq!(row["host_uid"], 0);
    assert!(row["command"].as_str().unwrap().starts_with("sleep 1000"));

    let table = support::rsafe(Path::new("/tmp"))
        .arg("ps")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("RUNTIME"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("runc") && l.contains(&id)),
        "{text}"
    );

    // An unprivileged user cannot look into root's container: ps says so instead of hiding it.
    if let Some(cmd) = support::rsafe_as_test_user(Path::new("/tmp")) {
        let mut cmd = cmd;
        let out = cmd.arg("ps").output().unwrap();
        assert!(out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stdout.contains(&id), "{stdout}");
        // Another user's container (a pid namespace of its own) is named; the rest of
        // other users' processes are counted only with -v.
        assert!(
            stderr.contains("in containers rsafe may not inspect")
                && stderr.contains("run as root to see every container"),
            "{stderr}"
        );
    }
}

#[test]
fn ps_says_when_procfs_hides_other_users_processes() {
    if !root_only("mounting a procfs") || !have("unshare", tool("unshare")) {
        return;
    }
    let Some((uid, gid)) = support::test_user() else {
        assert!(!support::required(), "the test user is required");
        return;
    };
    let mnt = shared_tempdir("rsafe-procs-hidepid-");
    // A private mount namespace with a procfs that hides other users' processes, read by the
    // test user: nothing of root's can be listed, and ps must say why.
    let script = format!(
        "mount -t proc -o hidepid=invisible proc {dir} && exec setpriv --reuid={uid} \
         --regid={gid} --init-groups {rsafe} ps --proc {dir}",
        dir = s(mnt.path()),
        rsafe = s(&support::rsafe_bin()),
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("hidepid=invisible: other users' processes are invisible"),
        "{stderr}"
    );
}

#[test]
fn selecting_targets() {
    let discovery = procs::discover(Path::new("/proc")).unwrap();
    let me = std::process::id();
    match select(&discovery, &Target::Pid(me)) {
        Err(procs::ProcsError::NotInContainer(p)) => assert_eq!(p, me),
        // Unless the test suite itself runs in a container.
        Ok(found) => assert!(found[0].pids.contains(&me)),
        Err(e) => panic!("{e}"),
    }
    assert!(matches!(
        select(&discovery, &Target::Pid(u32::MAX)),
        Err(procs::ProcsError::NoSuchProcess(_))
    ));
    assert!(matches!(
        select(
            &discovery,
            &Target::Container("no-such-container-here".into())
        ),
        Err(procs::ProcsError::NoSuchContainer(_))
    ));
}
