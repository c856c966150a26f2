//! `rsafe tag` and `rsafe save` from the command line: names moved and removed one at a time,
//! eight tags of one name racing, and archives read back by `rsafe load`, podman and skopeo;
//! a save killed mid-write, shared layers written once, bad input refused in one line. As root
//! and as the unprivileged test user.
mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::hostile_images::{self as h, Layer, Layout, REF_NAME};

// ---------------------------------------------------------------------------------------------
// helpers

/// Runs `rsafe --root <root> <args>`, asserts success, returns stdout.
fn ok(root: &Path, args: &[&str]) -> String {
    let out = support::rsafe(root).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "rsafe {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `rsafe --root <root> <args>`, asserts exit code 1 and one line on stderr; returns it.
fn fails(root: &Path, args: &[&str]) -> String {
    let out = support::rsafe(root).args(args).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "rsafe {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "rsafe {args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "rsafe {args:?} wrote to stdout");
    stderr
}

/// name → digest, as `rsafe images --format json` lists them, sorted.
fn listed(root: &Path) -> Vec<(String, String)> {
    let rows: Vec<Value> =
        serde_json::from_str(&ok(root, &["images", "--format", "json"])).unwrap();
    let mut v: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("<none>").to_string(),
                r["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// `rsafe inspect`'s document for an image.
fn inspect(root: &Path, image: &str) -> Value {
    serde_json::from_str(&ok(root, &["inspect", image])).unwrap()
}

/// A directory anyone may read and write (the test user's saves go there too).
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rsafe-save-")
        .tempdir_in("/tmp")
        .unwrap();
    support::sh(Command::new("chmod").arg("777").arg(dir.path()));
    dir
}

/// Writes `layout` as a directory under `dir` and loads it into `root`.
fn load_layout(root: &Path, dir: &Path, layout: &Layout) {
    let path = dir.join(format!("layout-{}", layout.index.len()));
    let _ = fs::remove_dir_all(&path);
    layout.tree().write_dir(&path);
    ok(root, &["load", path.to_str().unwrap()]);
}

/// An image of `layers` named `name` (a full ref name, so `load` keeps it).
fn add_image(layout: &mut Layout, name: &str, layers: &[&Layer]) {
    let made = layout.image(h::host_arch(), layers);
    layout.entry(&made.manifest, &[(REF_NAME, name)]);
}

/// The tar members of an archive, in order.
fn members(path: &Path) -> Vec<String> {
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// One member's bytes.
fn member(path: &Path, name: &str) -> Vec<u8> {
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == name {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("{} has no member {name}", path.display());
}

/// The leaky image of the audit fixture (secrets added, deleted, in the config), loaded as
/// `leaky:1.0`.
fn load_leaky(root: &Path) {
    let layout = support::audit_images::audit_layout();
    ok(
        root,
        &[
            "load",
            "--name",
            "leaky:1.0",
            &format!("{}:leaky", layout.display()),
        ],
    );
}

/// What `audit` found in an image, without what names the store or a layer blob (those differ
/// between an image and its docker-archive copy, whose layers are stored uncompressed).
fn findings(root: &Path, image: &str) -> Vec<Value> {
    let out = support::rsafe(root)
        .args(["audit", "--format", "json", image])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "audit {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut findings: Vec<Value> = report["findings"].as_array().unwrap().clone();
    for f in &mut findings {
        strip_digests(f);
    }
    findings
}

fn strip_digests(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !k.contains("digest"));
            map.values_mut().for_each(strip_digests);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_digests),
        Value::String(s) if s.starts_with("sha256:") => *s = "sha256:…".into(),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// tag

#[test]
fn tag_adds_a_name_moves_an_existing_one_and_rmi_removes_only_it() {
    let root = support::temp_root();
    let dir = shared_dir();
    let mut layout = Layout::default();
    add_image(
        &mut layout,
        "app:1",
        &[&Layer::gzip(&[("a", b"image one\n")])],
    );
    add_image(
        &mut layout,
        "other:1",
        &[&Layer::gzip(&[("b", b"image two\n")])],
    );
    load_layout(root.path(), dir.path(), &layout);
    let digest = |name: &str| inspect(root.path(), name)["digest"].clone();
    let (one, two) = (digest("app:1"), digest("other:1"));

    ok(root.path(), &["tag", "app:1", "docker.io/library/web"]);
    let short = &one.as_str().unwrap()["sha256:".len()..][..12];
    ok(root.path(), &["tag", short, "localhost:5000/team/web:v2"]);
    let names = listed(root.path());
    let of = |n: &str| names.iter().find(|(name, _)| name == n).map(|(_, d)| d);
    assert_eq!(of("web:latest"), one.as_str().map(str::to_string).as_ref());
    assert_eq!(of("localhost:5000/team/web:v2"), of("app:1"));
    let table = ok(root.path(), &["images"]);
    assert!(
        table.contains("web ") && table.contains(&one.as_str().unwrap()[7..19]),
        "{table}"
    );

    // Re-tagging moves the name; the image it left keeps its own.
    ok(root.path(), &["tag", "other:1", "web"]);
    assert_eq!(digest("web"), two);
    assert_eq!(digest("app:1"), one);

    // rmi of the new name removes that name only.
    let out = ok(root.path(), &["rmi", "web"]);
    assert!(out.contains("Untagged: web:latest"), "{out}");
    assert!(!out.contains("Deleted:"), "{out}");
    assert_eq!(digest("other:1"), two);
    assert_eq!(listed(root.path()).len(), 3);
}

#[test]
fn tag_refuses_bad_targets_and_unknown_sources_in_one_line() {
    let root = support::temp_root();
    let dir = shared_dir();
    let mut layout = Layout::default();
    add_image(&mut layout, "app:1", &[&Layer::gzip(&[("a", b"a\n")])]);
    load_layout(root.path(), dir.path(), &layout);
    let before = fs::read(root.path().join("index.json")).unwrap();
    let hex = "0".repeat(64);
    let with_digest = format!("web@sha256:{hex}");
    for bad in ["Web:1", "web:-1", "web:", &with_digest, &hex, "a//b"] {
        let line = fails(root.path(), &["tag", "app:1", bad]);
        assert!(line.starts_with("rsafe: target"), "{bad}: {line}");
    }
    let line = fails(root.path(), &["tag", "nope:1", "web:1"]);
    assert!(line.contains("\"nope:1\""), "{line}");
    assert_eq!(fs::read(root.path().join("index.json")).unwrap(), before);
    // A usage error is clap's, as for the other image commands.
    let out = support::rsafe(root.path())
        .args(["tag", "app:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn eight_concurrent_tags_of_one_name_leave_one_whole_index() {
    let root = support::temp_root();
    let dir = shared_dir();
    let mut layout = Layout::default();
    for i in 0..8 {
        let content = format!("image {i}\n");
        add_image(
            &mut layout,
            &format!("img{i}:1"),
            &[&Layer::gzip(&[("id", content.as_bytes())])],
        );
    }
    load_layout(root.path(), dir.path(), &layout);
    let sources: Vec<(String, String)> = listed(root.path());
    assert_eq!(sources.len(), 8);
    for round in 0..5 {
        let children: Vec<_> = (0..8)
            .map(|i| {
                let mut cmd = Command::new(support::rsafe_bin());
                cmd.arg("--root")
                    .arg(root.path())
                    .args(["tag", &format!("img{i}:1"), "shared:x"])
                    .env_remove("RSAFE_ROOT")
                    .stderr(Stdio::piped());
                cmd.spawn().unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let index: Value =
            serde_json::from_slice(&fs::read(root.path().join("index.json")).unwrap()).unwrap();
        let entries = index["manifests"].as_array().unwrap();
        let shared: Vec<&Value> = entries
            .iter()
            .filter(|e| e["annotations"][REF_NAME] == "shared:x")
            .collect();
        assert_eq!(shared.len(), 1, "round {round}: {index}");
        assert_eq!(entries.len(), 9, "round {round}: {index}");
        let winner = shared[0]["digest"].as_str().unwrap();
        assert!(
            sources.iter().any(|(_, d)| d == winner),
            "round {round}: {winner}"
        );
        let mut now = listed(root.path());
        now.retain(|(n, _)| n != "shared:x");
        assert_eq!(now, sources, "round {round}");
    }
}

// ---------------------------------------------------------------------------------------------
// save

#[test]
fn save_round_trips_through_rsafe_load_with_the_same_image_and_findings() {
    let root = support::temp_root();
    let dir = shared_dir();
    load_leaky(root.path());
    let original = inspect(root.path(), "leaky:1.0");
    let expected = findings(root.path(), "leaky:1.0");
    assert!(!expected.is_empty());
    for format in ["docker-archive", "oci-archive"] {
        let file = dir.path().join(format!("leaky-{format}.tar"));
        let file = file.to_str().unwrap();
        ok(
            root.path(),
            &["save", "--format", format, "-o", file, "leaky:1.0"],
        );
        let second = support::temp_root();
        let out = ok(second.path(), &["load", file]);
        assert!(out.contains("Loaded image: leaky:1.0"), "{format}: {out}");
        let copy = inspect(second.path(), "leaky:1.0");
        // The image id (config digest) is kept by both; the OCI archive keeps the manifest too,
        // the docker archive lists the layers uncompressed, under their diff_ids.
        assert_eq!(copy["configDigest"], original["configDigest"], "{format}");
        assert_eq!(copy["config"], original["config"], "{format}");
        if format == "oci-archive" {
            assert_eq!(copy["manifestDigest"], original["manifestDigest"]);
        } else {
            let diff_ids = &original["config"]["rootfs"]["diff_ids"];
            let layers: Vec<Value> = copy["manifest"]["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["digest"].clone())
                .collect();
            assert_eq!(&Value::from(layers), diff_ids);
        }
        assert_eq!(findings(second.path(), "leaky:1.0"), expected, "{format}");
    }
}

#[test]
fn saved_archives_are_what_docker_25_writes_and_skopeo_reads() {
    if !support::have("skopeo", support::tool("skopeo")) {
        return;
    }
    let root = support::temp_root();
    let dir = shared_dir();
    load_leaky(root.path());
    ok(root.path(), &["tag", "leaky:1.0", "rsafe/leaky:2"]);
    let original = inspect(root.path(), "leaky:1.0");
    let config = original["configDigest"].as_str().unwrap();
    let docker = dir.path().join("leaky.tar");
    ok(
        root.path(),
        &["save", "-o", docker.to_str().unwrap(), "rsafe/leaky:2"],
    );
    let names = members(&docker);
    for wanted in [
        "blobs/",
        "blobs/sha256/",
        "index.json",
        "manifest.json",
        "oci-layout",
        "repositories",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted}: {names:?}");
    }
    let manifest: Value = serde_json::from_slice(&member(&docker, "manifest.json")).unwrap();
    assert_eq!(
        manifest[0]["Config"],
        format!("blobs/sha256/{}", h::hex_of(config))
    );
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["rsafe/leaky:2"])
    );
    let index: Value = serde_json::from_slice(&member(&docker, "index.json")).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "docker.io/rsafe/leaky:2"
    );
    // Every layer member is an uncompressed tar hashing to its diff_id.
    let diff_ids = original["config"]["rootfs"]["diff_ids"].as_array().unwrap();
    for (layer, diff_id) in manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(diff_ids)
    {
        let bytes = member(&docker, layer.as_str().unwrap());
        assert_eq!(h::sha256(&bytes), diff_id.as_str().unwrap());
    }

    let skopeo = |reference: String| -> Value {
        serde_json::from_str(&support::sh(
            Command::new("skopeo")
                .args(["inspect", "--raw"])
                .arg(&reference),
        ))
        .unwrap_or_else(|e| panic!("skopeo inspect --raw {reference}: {e}"))
    };
    let raw = skopeo(format!("docker-archive:{}", docker.display()));
    assert_eq!(raw["config"]["digest"], config);
    let info: Value = serde_json::from_str(&support::sh(
        Command::new("skopeo")
            .args(["inspect"])
            .arg(format!("docker-archive:{}", docker.display())),
    ))
    .unwrap();
    assert_eq!(info["Layers"], Value::from(diff_ids.clone()));
    assert_eq!(info["Labels"], original["config"]["config"]["Labels"]);

    let oci = dir.path().join("leaky-oci.tar");
    ok(
        root.path(),
        &[
            "save",
            "--format",
            "oci-archive",
            "-o",
            oci.to_str().unwrap(),
            "leaky:1.0",
        ],
    );
    let raw = skopeo(format!("oci-archive:{}", oci.display()));
    assert_eq!(raw["config"]["digest"], config);
    let info: Value = serde_json::from_str(&support::sh(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}", oci.display())),
    ))
    .unwrap();
    assert_eq!(info["Digest"], original["manifestDigest"]);
}

#[test]
fn podman_loads_both_formats_with_the_same_image_id_and_tags() {
    if !support::is_root() || !support::have("podman", support::tool("podman")) {
        return;
    }
    let root = support::temp_root();
    let dir = shared_dir();
    load_leaky(root.path());
    ok(root.path(), &["tag", "leaky:1.0", "localhost/leaky:podman"]);
    let config = inspect(root.path(), "leaky:1.0")["configDigest"]
        .as_str()
        .unwrap()
        .to_string();
    for format in ["docker-archive", "oci-archive"] {
        let file = dir.path().join(format!("{format}.tar"));
        ok(
            root.path(),
            &[
                "save",
                "--format",
                format,
                "-o",
                file.to_str().unwrap(),
                "localhost/leaky:podman",
            ],
        );
        let storage = tempfile::tempdir().unwrap();
        let podman = || {
            let mut cmd = Command::new("podman");
            cmd.arg("--root")
                .arg(storage.path().join("root"))
                .arg("--runroot")
                .arg(storage.path().join("run"))
                .args(["--storage-driver", "vfs"]);
            cmd
        };
        let out = support::sh(podman().args(["load", "-i"]).arg(&file));
        assert!(out.contains("localhost/leaky:podman"), "{format}: {out}");
        let seen: Value = serde_json::from_str(&support::sh(podman().args([
            "image",
            "inspect",
            "localhost/leaky:podman",
        ])))
        .unwrap();
        assert_eq!(seen[0]["Id"], h::hex_of(&config), "{format}");
        assert_eq!(
            seen[0]["RepoTags"],
            serde_json::json!(["localhost/leaky:podman"]),
            "{format}"
        );
        let _ = podman().args(["system", "reset", "--force"]).output();
    }
}

#[test]
fn two_images_sharing_a_base_layer_write_it_once() {
    let root = support::temp_root();
    let dir = shared_dir();
    let base = Layer::gzip(&[("base", b"the shared base layer\n")]);
    let mut layout = Layout::default();
    add_image(
        &mut layout,
        "app:1",
        &[&base, &Layer::gzip(&[("app", b"one\n")])],
    );
    add_image(
        &mut layout,
        "api:1",
        &[&base, &Layer::plain(&[("api", b"two\n")])],
    );
    load_layout(root.path(), dir.path(), &layout);
    for format in ["docker-archive", "oci-archive"] {
        let file = dir.path().join(format!("both-{format}.tar"));
        ok(
            root.path(),
            &[
                "save",
                "--format",
                format,
                "-o",
                file.to_str().unwrap(),
                "app:1",
                "api:1",
            ],
        );
        let names = members(&file);
        let base_blob = match format {
            "docker-archive" => base.diff_id(),
            _ => h::sha256(&base.blob),
        };
        let base_member = format!("blobs/sha256/{}", h::hex_of(&base_blob));
        assert_eq!(
            names.iter().filter(|n| **n == base_member).count(),
            1,
            "{format}: {names:?}"
        );
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{format}: {names:?}");
        let second = support::temp_root();
        ok(second.path(), &["load", file.to_str().unwrap()]);
        let loaded: Vec<String> = listed(second.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(loaded, ["api:1", "app:1"], "{format}");
    }
}

#[test]
fn save_refuses_unknown_images_and_terminals_writing_nothing() {
    let root = support::temp_root();
    let dir = shared_dir();
    let mut layout = Layout::default();
    add_image(&mut layout, "app:1", &[&Layer::gzip(&[("a", b"a\n")])]);
    load_layout(root.path(), dir.path(), &layout);
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let file = out_dir.join("x.tar");
    let line = fails(
        root.path(),
        &["save", "-o", file.to_str().unwrap(), "app:1", "ghost:2"],
    );
    assert!(line.contains("\"ghost:2\""), "{line}");
    assert_eq!(fs::read_dir(&out_dir).unwrap().count(), 0);
    let line = fails(
        root.path(),
        &["save", "-o", out_dir.to_str().unwrap(), "app:1"],
    );
    assert!(line.contains("is a directory"), "{line}");
    let line = fails(
        root.path(),
        &["save", "-o", "/nonexistent/dir/x.tar", "app:1"],
    );
    assert!(line.contains("/nonexistent/dir"), "{line}");
    // Standard output a terminal: `script` gives the command one.
    if support::have("script", support::tool("script")) {
        let cmd = format!(
            "{} --root {} save app:1; echo rc=$?",
            support::rsafe_bin().display(),
            root.path().display()
        );
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("cowardly refusing to save to a terminal") && text.contains("rc=1"),
            "{text}"
        );
        assert!(
            text.len() < 300,
            "binary on the terminal: {} bytes",
            text.len()
        );
    }
    // Redirected standard output gets the archive.
    let piped = support::rsafe(root.path())
        .args(["save", "app:1"])
        .output()
        .unwrap();
    assert!(piped.status.success());
    let to_stdout = dir.path().join("stdout.tar");
    fs::write(&to_stdout, &piped.stdout).unwrap();
    assert!(members(&to_stdout).iter().any(|m| m == "manifest.json"));
}

/// A layout holding `big:1`: one gzip layer of a 100 MB file of incompressible bytes, built
/// once per test run.
fn big_layout() -> PathBuf {
    support::fixture("oci-big-100m", |dir| {
        let mut data = vec![0u8; 100 << 20];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for chunk in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let tar = h::tar_of(&[("big.bin", &data)]);
        drop(data);
        let mut gz = Command::new("gzip")
            .arg("-1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = gz.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&tar).map(|_| tar));
        let blob = gz.wait_with_output().unwrap().stdout;
        let tar = writer.join().unwrap().unwrap();
        let layer = Layer {
            tar,
            blob,
            media_type: h::OCI_LAYER_GZIP.into(),
        };
        let mut layout = Layout::default();
        add_image(&mut layout, "big:1", &[&layer]);
        layout.tree().write_dir(dir);
    })
}

/// The size of the file `pid` has open whose path starts with `under` (an unnamed file shows
/// as `DIR/#inode (deleted)`), if any.
fn open_file_size(pid: u32, under: &Path) -> Option<u64> {
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    fds.filter_map(Result::ok).find_map(|fd| {
        let target = fs::read_link(fd.path()).ok()?;
        target
            .starts_with(under)
            .then(|| fs::metadata(fd.path()).ok().map(|m| m.len()))
            .flatten()
    })
}

/// Starts `save -o FILE big:1` and kills it (SIGKILL) once the file it has open under `watch`
/// holds more than 8 MB; returns whether it was caught mid-write.
fn kill_save_mid_write(root: &Path, file: &Path, watch: &Path) -> bool {
    let mut child = Command::new(support::rsafe_bin())
        .arg("--root")
        .arg(root)
        .args(["save", "-o"])
        .arg(file)
        .arg("big:1")
        .env_remove("RSAFE_ROOT")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut caught = false;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if open_file_size(child.id(), watch).is_some_and(|n| n > 8 << 20) {
            child.kill().unwrap();
            caught = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait().unwrap();
    caught
}

#[test]
fn a_killed_save_leaves_no_file_and_nothing_in_the_stores_tmp() {
    let root = support::temp_root();
    let dir = shared_dir();
    ok(
        root.path(),
        &["load", &format!("{}:big:1", big_layout().display())],
    );
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let file = out_dir.join("big.tar");
    let tmp = root.path().join("tmp");
    // Killed while the gzip layer is decompressed into the store's tmp/, then while the archive
    // is written beside FILE.
    for (what, watch) in [("staging", &tmp), ("writing", &out_dir)] {
        assert!(
            kill_save_mid_write(root.path(), &file, watch),
            "{what}: the save ended before it could be killed"
        );
        assert_eq!(
            fs::read_dir(&out_dir).unwrap().count(),
            0,
            "{what}: something left beside FILE"
        );
        assert_eq!(
            fs::read_dir(&tmp).unwrap().count(),
            0,
            "{what}: something left in the store's tmp/"
        );
    }
    // An old FILE stays whole until a save replaces it.
    fs::write(&file, b"the previous archive").unwrap();
    assert!(kill_save_mid_write(root.path(), &file, &out_dir));
    assert_eq!(fs::read(&file).unwrap(), b"the previous archive");
    ok(
        root.path(),
        &["save", "-o", file.to_str().unwrap(), "big:1"],
    );
    assert_eq!(fs::read_dir(&out_dir).unwrap().count(), 1);
    let second = support::temp_root();
    ok(second.path(), &["load", file.to_str().unwrap()]);
    assert_eq!(
        inspect(second.path(), "big:1")["configDigest"],
        inspect(root.path(), "big:1")["configDigest"]
    );
}

#[test]
fn rootless_tag_save_and_load_round_trip() {
    let user = support::rsafe_as_test_user(Path::new("/nonexistent")).is_some();
    if !support::have("root and the rsafe-test user", user) {
        return;
    }
    let dir = shared_dir();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let mut layout = Layout::default();
    add_image(
        &mut layout,
        "app:1",
        &[&Layer::gzip(&[("a", b"rootless\n")])],
    );
    let layout_dir = dir.path().join("layout");
    layout.tree().write_dir(&layout_dir);
    let file = dir.path().join("app.tar");
    let as_user = |root: &Path, args: &[&str]| {
        let out = support::rsafe_as_test_user(root)
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    as_user(&one, &["load", layout_dir.to_str().unwrap()]);
    as_user(&one, &["tag", "app:1", "app:copy"]);
    as_user(&one, &["save", "-o", file.to_str().unwrap(), "app:copy"]);
    let (uid, _) = support::test_user().unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&file).unwrap().uid(), uid);
    let out = as_user(&two, &["load", file.to_str().unwrap()]);
    assert!(out.contains("Loaded image: app:copy"), "{out}");
    let config = |root: &Path| {
        serde_json::from_str::<Value>(&as_user(root, &["inspect", "app:copy"])).unwrap()
            ["configDigest"]
            .clone()
    };
    assert_eq!(config(&one), config(&two));
    assert_eq!(fs::read_dir(one.join("tmp")).unwrap().count(), 0);
}
