//! Everyday use as a docker or trivy user expects it, through the real binary: what
//! `rsafe audit TARGET` resolves TARGET to (the store before a registry, never a pull for a
//! path or a digest that is not there, files recognised by their content, `--type`), the audit
//! table fitted to the terminal's width, and `rsafe unpack` of an archive.
//!
//! Images are crafted byte by byte (`support/hostile_images.rs`): no tool, no network.
mod support;

use std::fs;
use std::path::Path;

use rsafe::report::json::JsonReport;
use support::hostile_images::{Layer, OCI_LAYER_GZIP, docker_save, gzip};

/// `rsafe --root ROOT ARGS…` run in `cwd`: (exit code, stdout, stderr).
fn rsafe_in(root: &Path, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = support::rsafe(root);
    cmd.current_dir(cwd).args(args).env_remove("COLUMNS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A gzip layer holding `/etc/motd` with `text`, owned by root as a builder writes it.
fn motd_layer(text: &str) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "etc/motd", text.as_bytes()).unwrap();
    let tar = b.into_inner().unwrap();
    Layer {
        blob: gzip(&tar),
        tar,
        media_type: OCI_LAYER_GZIP.into(),
    }
}

/// A `docker save` tarball of a one-layer image named `names`, written to `path`.
fn write_archive(path: &Path, names: &[&str]) {
    let layer = motd_layer("hello from the store image\n");
    let (tree, _) = docker_save(&[&layer], names);
    tree.write_tar(path);
}

/// A store holding `leaky-app:1.0` and `leaky-app:latest`; returns (store, image digest).
fn store_with_leaky_app() -> (tempfile::TempDir, String) {
    let root = support::temp_root();
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("app.tar");
    write_archive(&tar, &["leaky-app:1.0", "leaky-app:latest"]);
    let (code, _, err) = rsafe_in(root.path(), work.path(), &["load", "app.tar"], &[]);
    assert_eq!(code, 0, "load: {err}");
    let (_, json, _) = rsafe_in(
        root.path(),
        work.path(),
        &["audit", "leaky-app:1.0", "-f", "json"],
        &[],
    );
    let digest = parse(&json).target.digest.expect("an image has a digest");
    (root, digest)
}

fn parse(json: &str) -> JsonReport {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// The only line of `stderr`, which must start with `rsafe: `.
fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("rsafe: "), "{stderr}");
    lines[0]
}

#[test]
fn a_store_image_is_found_though_a_folder_has_its_name() {
    let (root, digest) = store_with_leaky_app();
    let cwd = tempfile::tempdir().unwrap();
    fs::create_dir(cwd.path().join("leaky-app")).unwrap();
    fs::write(
        cwd.path().join("leaky-app/Dockerfile"),
        "FROM leaky-app:1.0\n",
    )
    .unwrap();
    let run = |args: &[&str]| rsafe_in(root.path(), cwd.path(), args, &[]);

    // `leaky-app:1.0` is no path (`./leaky-app` has no image in it): the store has it.
    let (code, out, err) = run(&["-v", "audit", "leaky-app:1.0", "-f", "json"]);
    assert_eq!(code, 0, "{err}");
    let report = parse(&out);
    assert_eq!(report.target.kind, "image");
    assert_eq!(report.target.name, "leaky-app:1.0");
    assert_eq!(report.target.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(
        err.trim(),
        format!(
            "rsafe: audit target leaky-app:1.0: the image leaky-app:1.0 in the store {}",
            root.path().display()
        )
    );

    // The digest and a short id are store images too.
    let hex = digest.strip_prefix("sha256:").unwrap();
    for spec in [digest.as_str(), &hex[..12]] {
        let (code, out, err) = run(&["audit", spec, "-f", "json"]);
        assert_eq!(code, 0, "{spec}: {err}");
        assert_eq!(parse(&out).target.name, "leaky-app:1.0", "{spec}");
    }

    // An existing path is a path, and the shadowed image is named, with the way to reach it.
    let (code, out, err) = run(&["audit", "leaky-app", "-f", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(parse(&out).target.kind, "directory");
    assert_eq!(
        one_line(&err),
        "rsafe: note: leaky-app is a directory here and the image leaky-app:latest in the store: \
         auditing the directory (--type image audits the image)"
    );
    let (code, out, err) = run(&["audit", "--type", "image", "leaky-app", "-f", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(parse(&out).target.digest.as_deref(), Some(digest.as_str()));
}

#[test]
fn a_path_or_digest_that_is_not_there_is_an_error_never_a_pull() {
    let root = support::temp_root();
    let cwd = tempfile::tempdir().unwrap();
    fs::create_dir(cwd.path().join("deploy")).unwrap();
    let zeros = format!("sha256:{}", "0".repeat(64));
    let cases = [
        (
            "./app.tar",
            "no such file or directory (spelled as a path, so not pulled from a registry)",
        ),
        (
            "app.tar",
            "no such file or directory (spelled as a path, so not pulled from a registry; --type image if it names an image)",
        ),
        (
            "my-stack.yml",
            "no such file or directory (spelled as a path, so not pulled from a registry; --type image if it names an image)",
        ),
        (
            "deploy/app",
            "no such file or directory (spelled as a path, so not pulled from a registry; --type image if it names an image)",
        ),
        (
            "Containerfile.prod",
            "no such file or directory (spelled as a path, so not pulled from a registry)",
        ),
        (
            zeros.as_str(),
            "no image with this digest or id in the store (digests are looked up locally, never pulled; pull NAME@sha256:… to fetch one)",
        ),
        (
            "3f2a9c1b7d4e",
            "no image with this digest or id in the store (digests are looked up locally, never pulled; pull NAME@sha256:… to fetch one)",
        ),
    ];
    for (spec, why) in cases {
        let (code, out, err) = rsafe_in(root.path(), cwd.path(), &["audit", spec], &[]);
        assert_eq!(code, 2, "{spec}: {err}");
        assert_eq!(one_line(&err), format!("rsafe: {spec}: {why}"));
        assert!(out.is_empty(), "{spec}: {out}");
    }
    // Nothing was written: not the store, not the working directory.
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    let names: Vec<_> = fs::read_dir(cwd.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["deploy"]);
}

const COMPOSE: &str =
    "name: shop\nservices:\n  web:\n    image: nginx:1.25\n    privileged: true\n";
const DOCKERFILE: &str = "# syntax=docker/dockerfile:1\n\n# base\nFROM --platform=$BUILDPLATFORM alpine:3.19 AS base\nRUN apk add curl\n";
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      hostNetwork: true\n      containers:\n      - name: web\n        image: nginx:1.25\n";
const POD_JSON: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
 "spec": {"hostPID": true, "containers": [{"name": "c", "image": "busybox:1.36"}]}}"#;

#[test]
fn files_are_recognised_by_their_content_not_their_name() {
    let root = support::temp_root();
    let cwd = tempfile::tempdir().unwrap();
    let d = cwd.path();
    fs::write(d.join("my-stack.yml"), COMPOSE).unwrap();
    fs::write(d.join("build.docker"), DOCKERFILE).unwrap();
    fs::write(d.join("app.yaml"), DEPLOYMENT).unwrap();
    fs::write(d.join("deploy.json"), POD_JSON).unwrap();
    fs::write(d.join("notes.txt"), "from os import path\n").unwrap();
    write_archive(&d.join("image.bin"), &["shop/web:2.0"]);
    let cases = [
        (
            "my-stack.yml",
            "compose",
            "a compose file, by its content",
            "compose.privileged",
        ),
        (
            "build.docker",
            "dockerfile",
            "a Dockerfile, by its content",
            "dockerfile.user-root",
        ),
        (
            "app.yaml",
            "kubernetes",
            "a Kubernetes manifest, by its content",
            "k8s.pss.baseline.host-namespaces",
        ),
        (
            "deploy.json",
            "kubernetes",
            "a Kubernetes manifest, by its content",
            "k8s.pss.baseline.host-namespaces",
        ),
        ("image.bin", "image", "an image archive, by its content", ""),
    ];
    for (file, kind, how, rule) in cases {
        let (code, out, err) = rsafe_in(root.path(), d, &["-v", "audit", file, "-f", "json"], &[]);
        assert_eq!(code, 0, "{file}: {err}");
        assert_eq!(one_line(&err), format!("rsafe: audit target {file}: {how}"));
        let report = parse(&out);
        assert_eq!(report.target.kind, kind, "{file}");
        let rules: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
        if rule.is_empty() {
            // The crafted image holds nothing to report: that it was opened is the point.
            assert!(report.target.digest.is_some(), "{file}");
        } else {
            assert!(rules.contains(&rule), "{file}: {rules:?}");
        }
    }
    let (code, _, err) = rsafe_in(root.path(), d, &["audit", "notes.txt"], &[]);
    assert_eq!(code, 2);
    assert_eq!(
        one_line(&err),
        "rsafe: notes.txt: not a Dockerfile, compose file, Kubernetes manifest or image archive"
    );
}

#[test]
fn type_forces_the_kind_and_refuses_what_is_not_of_it() {
    let root = support::temp_root();
    let cwd = tempfile::tempdir().unwrap();
    let d = cwd.path();
    // Compose content in a file named like a Dockerfile: the name loses to --type.
    fs::write(d.join("Dockerfile"), COMPOSE).unwrap();
    let (code, out, err) = rsafe_in(
        root.path(),
        d,
        &["audit", "--type", "compose", "Dockerfile", "-f", "json"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(parse(&out).target.kind, "compose");
    fs::create_dir(d.join("ctx")).unwrap();
    fs::write(d.join("ctx/Dockerfile"), DOCKERFILE).unwrap();
    let (code, out, err) = rsafe_in(
        root.path(),
        d,
        &["audit", "--type", "dir", "ctx", "-f", "json"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(parse(&out).target.kind, "directory");
    for (args, line) in [
        (&["--type", "dockerfile", "."][..], "rsafe: .: not a file"),
        (
            &["--type", "layout", "."][..],
            "rsafe: .: not an OCI layout (no oci-layout file)",
        ),
        (
            &["--type", "archive", "gone.tar"][..],
            "rsafe: gone.tar: no such file or directory",
        ),
    ] {
        let (code, _, err) = rsafe_in(root.path(), d, &[&["audit"][..], args].concat(), &[]);
        assert_eq!(code, 2, "{args:?}");
        assert_eq!(one_line(&err), line);
    }
    let (code, _, err) = rsafe_in(root.path(), d, &["audit", "--type", "movie", "x"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("possible values: image, archive, layout, dockerfile, compose, k8s, dir"),
        "{err}"
    );
}

#[test]
fn the_table_fits_the_width_and_json_keeps_every_character() {
    let root = support::temp_root();
    let cwd = tempfile::tempdir().unwrap();
    let deep = cwd
        .path()
        .join("services/payments/deployment/production/eu-west/containers");
    fs::create_dir_all(&deep).unwrap();
    let key = "AKIA4RSAFEQ7XKZP2M3J";
    fs::write(
        deep.join("Dockerfile"),
        format!("FROM alpine:3.19\nENV AWS_ACCESS_KEY_ID={key}\nCOPY . /app\n"),
    )
    .unwrap();
    let file = "services/payments/deployment/production/eu-west/containers/Dockerfile";
    for width in [60usize, 80, 100] {
        let (code, table, err) = rsafe_in(
            root.path(),
            cwd.path(),
            &["audit", file],
            &[("COLUMNS", &width.to_string())],
        );
        assert_eq!(code, 0, "{err}");
        let summary = table.lines().last().unwrap_or_default().to_string();
        for line in table.lines().filter(|l| **l != summary) {
            assert!(line.chars().count() <= width, "{width}: {line:?}\n{table}");
        }
        assert!(table.contains("  services/paymen"), "{table}");
        assert!(
            table.contains("Dockerfile:2:5"),
            "the end of the path is kept: {table}"
        );
        assert!(table.contains("…"), "a path cut in the middle: {table}");
        assert!(
            table.contains("\n      → "),
            "the fix under the finding: {table}"
        );
        assert!(!table.contains(&key[4..12]), "{table}");
    }
    // Without a terminal or COLUMNS every line is whole, as before.
    let (_, table, _) = rsafe_in(root.path(), cwd.path(), &["audit", file], &[]);
    assert!(table.contains(&format!("{file}:2:5")), "{table}");
    assert!(table.lines().any(|l| l.chars().count() > 100), "{table}");
    let (_, json, _) = rsafe_in(
        root.path(),
        cwd.path(),
        &["audit", file, "-f", "json"],
        &[("COLUMNS", "60")],
    );
    let report = parse(&json);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.location.to_string().starts_with(&format!("{file}:2"))),
        "{json}"
    );
}

#[test]
fn unpack_takes_an_archive_as_run_and_audit_do() {
    let root = support::temp_root();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    write_archive(&w.join("app.tar"), &["shop/web:2.0"]);
    let (code, _, err) = rsafe_in(root.path(), w, &["unpack", "app.tar", "rootfs"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        fs::read_to_string(w.join("rootfs/etc/motd")).unwrap(),
        "hello from the store image\n"
    );
    assert!(
        err.starts_with("unpacked app.tar into rootfs: 1 layers, 1 files"),
        "{err}"
    );
    // Nothing was added to the store: the archive went through a temporary one.
    let (_, images, _) = rsafe_in(root.path(), w, &["images"], &[]);
    assert!(!images.contains("shop/web"), "{images}");
    let tmp = root.path().join("tmp");
    assert!(!tmp.exists() || fs::read_dir(&tmp).unwrap().count() == 0);

    // `PATH:REF` picks one image of an archive holding two.
    let layer = motd_layer("second image\n");
    let (tree, _) = docker_save(&[&layer], &["shop/api:1.0"]);
    tree.write_tar(&w.join("api.tar"));
    let (code, _, err) = rsafe_in(
        root.path(),
        w,
        &["unpack", "api.tar:shop/api:1.0", "api"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        fs::read_to_string(w.join("api/etc/motd")).unwrap(),
        "second image\n"
    );

    // --layers fills the store's cache, so the archive is loaded into the store (as run does).
    let (code, out, err) = rsafe_in(root.path(), w, &["unpack", "--layers", "app.tar"], &[]);
    assert_eq!(code, 0, "{err}");
    let dirs: Vec<&str> = out.lines().collect();
    assert_eq!(dirs.len(), 1, "{out}");
    assert!(Path::new(dirs[0]).join("etc/motd").is_file(), "{out}");
    let (_, images, _) = rsafe_in(root.path(), w, &["images"], &[]);
    assert!(images.contains("shop/web"), "{images}");

    // A missing archive is one line, and no target is made.
    let (code, _, err) = rsafe_in(root.path(), w, &["unpack", "./gone.tar", "out"], &[]);
    assert_eq!(code, 1);
    assert_eq!(
        one_line(&err),
        "rsafe: ./gone.tar: no such file or directory"
    );
    assert!(!w.join("out").exists());
}

#[test]
fn logs_tail_shows_the_last_lines() {
    if !support::have("root (rsafe run -d as root)", support::is_root()) {
        return;
    }
    let root = support::temp_root();
    let cwd = tempfile::tempdir().unwrap();
    let rootfs = support::busybox_rootfs();
    let run = |args: &[&str]| rsafe_in(root.path(), cwd.path(), args, &[]);
    let script = "for i in 1 2 3 4 5; do echo line$i; done; printf partial";
    let (code, _, err) = run(&[
        "run",
        "-d",
        "--name",
        "five",
        rootfs.to_str().unwrap(),
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["wait", "five"]);
    assert_eq!((code, out.trim()), (0, "0"), "{err}");
    for (tail, want) in [
        ("2", "line5\npartial"),
        ("1", "partial"),
        ("0", ""),
        ("all", "line1\nline2\nline3\nline4\nline5\npartial"),
        ("99", "line1\nline2\nline3\nline4\nline5\npartial"),
    ] {
        let (code, out, err) = run(&["logs", "--tail", tail, "five"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, want, "--tail {tail}");
    }
    // -f starts from the tail too, and ends with the container.
    let (code, out, err) = run(&["logs", "-f", "-n", "3", "five"]);
    assert_eq!((code, out.as_str()), (0, "line4\nline5\npartial"), "{err}");
    let (code, _, err) = run(&["logs", "--tail", "ten", "five"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("\"ten\" is not a number of lines (or `all`)"),
        "{err}"
    );
    assert_eq!(run(&["rm", "five"]).0, 0);
}

/// Every file a user names (policy, seccomp profile, ignore file, manifest) is read with a
/// limit: `/dev/zero` fails at once with one line naming it, where it used to fill memory
/// (8 GB in 16 s for `audit --type k8s /dev/zero`).
#[test]
fn an_endless_file_is_refused_not_read_into_memory() {
    let root = support::temp_root();
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = dir.path().join("Dockerfile");
    fs::write(&dockerfile, "FROM busybox\n").unwrap();
    let df = dockerfile.to_str().unwrap();
    for (args, code) in [
        (&["policy", "show", "/dev/zero"][..], 1),
        (&["policy", "show", "--seccomp", "/dev/zero"], 1),
        (&["audit", "--ignore-file", "/dev/zero", df], 2),
        (&["audit", "--type", "k8s", "/dev/zero"], 2),
    ] {
        let out = support::rsafe(root.path())
            .args(args)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("/dev/zero") && stderr.contains("more than"),
            "{args:?}: {stderr}"
        );
    }
}

/// `rsafe --root store run …` with a relative store: the runner changes directory and mount
/// namespace while it still uses the store's paths, and failed with `rsafe: : No such file or
/// directory`; the root is made absolute once, before any command.
#[test]
fn a_relative_store_root_works_for_run() {
    let work = tempfile::tempdir().unwrap();
    let layout = support::busybox_layout();
    let rsafe = || {
        let mut cmd = assert_cmd::Command::new(support::rsafe_bin());
        cmd.current_dir(work.path()).env_remove("RSAFE_ROOT");
        cmd
    };
    rsafe()
        .args(["--root", "store", "load"])
        .arg(format!("{}:latest", layout.display()))
        .assert()
        .success();
    let out = rsafe()
        .args([
            "--root",
            "store",
            "run",
            "--rm",
            "oci-busybox:latest",
            "echo in-container",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in-container\n");
    assert!(work.path().join("store/index.json").is_file());
}

/// The rule that resolved the target is in the JSON and SARIF reports (`target.resolved`), as
/// `rsafe -v audit` says it on stderr.
#[test]
fn reports_say_how_the_target_was_resolved() {
    let root = support::temp_root();
    let dir = tempfile::tempdir().unwrap();
    let stack = dir.path().join("my-stack.yml");
    fs::write(&stack, "services:\n  web:\n    image: nginx:1.25\n").unwrap();
    let json = |format: &str| -> serde_json::Value {
        let out = support::rsafe(root.path())
            .args(["audit", "--format", format])
            .arg(&stack)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(
        json("json")["target"]["resolved"],
        "a compose file, by its content"
    );
    assert_eq!(
        json("sarif")["runs"][0]["properties"]["target"]["resolved"],
        "a compose file, by its content"
    );
}

/// `rsafe images | head`: a command that only prints ends by SIGPIPE when its reader is gone,
/// as `ls` does, and never panics on the write.
#[test]
fn a_printing_command_ends_quietly_when_its_reader_goes() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let (root, _) = store_with_leaky_app();
    for args in [
        &["inspect", "leaky-app:1.0"][..],
        &["images"],
        &["history", "leaky-app:1.0"],
        &["rules"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(support::rsafe_bin())
            .env_remove("RSAFE_ROOT")
            .arg("--root")
            .arg(root.path())
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
