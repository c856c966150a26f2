//! The image store from the command line: `rsafe load` of every format (real images made by
//! umoci and skopeo, and images crafted byte by byte), `images`, `inspect`, `history`, `rmi`,
//! the round trip through skopeo and umoci, hostile archives and layouts, and a rootless store.
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::hostile_images::{self as h, Layer, Layout, Node, REF_NAME, Tree};

// ---------------------------------------------------------------------------------------------
// helpers

fn tools() -> bool {
    support::have(
        "umoci and skopeo",
        support::tool("umoci") && support::tool("skopeo"),
    )
}

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

fn images(root: &Path) -> Vec<Value> {
    serde_json::from_str(&ok(root, &["images", "--format", "json"])).unwrap()
}

/// name → digest, as `rsafe images` lists them.
fn listed(root: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = images(root)
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap_or("<none>").to_string(),
                i["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn inspect(root: &Path, args: &[&str]) -> Value {
    let mut all = vec!["inspect"];
    all.extend(args);
    serde_json::from_str(&ok(root, &all)).unwrap()
}

fn blobs(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(root.join("blobs/sha256"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn skopeo_digest(transport_ref: &str) -> String {
    let out = support::sh(Command::new("skopeo").args(["inspect", transport_ref]));
    let v: Value = serde_json::from_str(&out).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

/// A world-readable scratch directory (the unprivileged user reads fixtures from it too).
fn scratch() -> tempfile::TempDir {
    support::temp_root()
}

/// Loading `spec` fails with one line on stderr that names `names_file` and says each of
/// `expect`; the store holds no image, no blob and no partial file afterwards.
fn refused(spec: &str, names_file: &Path, expect: &[&str]) {
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args(["load", spec])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "loading {spec} succeeded: {stderr}");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.starts_with("rsafe: "), "{stderr}");
    assert!(
        stderr.contains(&names_file.display().to_string()),
        "error does not name {}: {stderr}",
        names_file.display()
    );
    for e in expect {
        assert!(stderr.contains(e), "error lacks {e:?}: {stderr}");
    }
    assert!(listed(root.path()).is_empty(), "an image was named");
    assert!(
        blobs(root.path()).is_empty(),
        "blobs were left: {:?}",
        blobs(root.path())
    );
    if let Ok(tmp) = fs::read_dir(root.path().join("tmp")) {
        assert_eq!(tmp.count(), 0, "a partial blob was left in tmp/");
    }
}

/// Writes `tree` as a tar in a fresh directory and checks [`refused`].
fn refused_tar(tree: &Tree, expect: &[&str]) {
    let dir = scratch();
    let file = dir.path().join("hostile.tar");
    tree.write_tar(&file);
    refused(file.to_str().unwrap(), &file, expect);
}

/// Writes `tree` as a layout directory and checks [`refused`].
fn refused_dir(tree: &Tree, expect: &[&str]) {
    let dir = scratch();
    let layout = dir.path().join("hostile-layout");
    tree.write_dir(&layout);
    refused(layout.to_str().unwrap(), &layout, expect);
}

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", h::hex_of(digest))
}

// ---------------------------------------------------------------------------------------------
// loading real images made by umoci and skopeo

#[test]
fn docker_save_tarball_loads_under_its_repo_tag() {
    if !tools() {
        return;
    }
    let root = support::temp_root();
    let archive = support::busybox_docker_archive();
    let out = ok(root.path(), &["load", archive.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: rsafe/busybox:latest\n");

    let list = listed(root.path());
    assert_eq!(list.len(), 1);
    let (name, digest) = &list[0];
    assert_eq!(name, "rsafe/busybox:latest");
    let store_ref = format!("oci:{}:rsafe/busybox:latest", root.path().display());
    assert_eq!(&skopeo_digest(&store_ref), digest);

    let doc = inspect(root.path(), &["rsafe/busybox"]);
    assert_eq!(doc["name"], "rsafe/busybox:latest");
    assert_eq!(doc["digest"], json!(digest));
    assert_eq!(doc["config"]["config"]["User"], "app");
    assert_eq!(
        doc["config"]["config"]["Entrypoint"],
        json!(["/bin/sh", "-c"])
    );
    // The config is kept byte for byte: its digest is the name docker gave its file.
    let config_member = support::sh(
        Command::new("tar")
            .args(["-tf"])
            .arg(&archive)
            .args(["--wildcards", "*.json"]),
    );
    let config_member = config_member
        .lines()
        .find(|l| *l != "manifest.json")
        .unwrap();
    assert_eq!(
        doc["configDigest"],
        json!(format!(
            "sha256:{}",
            config_member.trim_end_matches(".json")
        ))
    );
    // An uncompressed docker layer is stored as an OCI tar layer whose digest is its diff_id.
    let layer = &doc["manifest"]["layers"][0];
    assert_eq!(layer["mediaType"], h::OCI_LAYER);
    assert_eq!(layer["digest"], doc["config"]["rootfs"]["diff_ids"][0]);
}

#[test]
fn oci_archive_keeps_its_manifest_digest_and_takes_the_file_name() {
    if !tools() {
        return;
    }
    let root = support::temp_root();
    let archive = support::busybox_oci_archive();
    let out = ok(root.path(), &["load", archive.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: busybox-oci:latest\n");
    let source = skopeo_digest(&format!("oci-archive:{}:latest", archive.display()));
    assert_eq!(listed(root.path()), [("busybox-oci:latest".into(), source)]);
}

#[test]
fn layout_loads_every_tag_and_shares_the_base_layer() {
    if !tools() {
        return;
    }
    let root = support::temp_root();
    let layout = support::busybox_layout();
    let out = ok(root.path(), &["load", layout.to_str().unwrap()]);
    assert_eq!(
        out,
        "Loaded image: oci-busybox:latest\nLoaded image: oci-busybox:root\n"
    );
    for (name, digest) in listed(root.path()) {
        let tag = name.rsplit(':').next().unwrap();
        assert_eq!(
            digest,
            skopeo_digest(&format!("oci:{}:{tag}", layout.display()))
        );
    }
    // latest and root differ only in config: one layer, two configs, two manifests.
    assert_eq!(blobs(root.path()).len(), 5);
    let latest = inspect(root.path(), &["oci-busybox"]);
    let root_image = inspect(root.path(), &["oci-busybox:root"]);
    assert_eq!(
        latest["manifest"]["layers"][0]["digest"],
        root_image["manifest"]["layers"][0]["digest"]
    );
    assert_eq!(root_image["config"]["config"]["User"], "0:0");
}

#[test]
fn one_ref_out_of_a_layout_and_renaming() {
    if !tools() {
        return;
    }
    let layout = support::busybox_layout();
    let root = support::temp_root();
    let out = ok(
        root.path(),
        &["load", &format!("{}:root", layout.display())],
    );
    assert_eq!(out, "Loaded image: oci-busybox:root\n");
    assert_eq!(listed(root.path()).len(), 1);

    let root = support::temp_root();
    let out = ok(
        root.path(),
        &["load", "--name", "app", layout.to_str().unwrap()],
    );
    assert_eq!(out, "Loaded image: app:latest\nLoaded image: app:root\n");
    let out = ok(
        root.path(),
        &[
            "load",
            "--name",
            "registry.example.com/team/app:2.0",
            &format!("{}:latest", layout.display()),
        ],
    );
    assert_eq!(out, "Loaded image: registry.example.com/team/app:2.0\n");

    let dir = scratch();
    let err = support::rsafe(dir.path())
        .args(["load", &format!("{}:nope", layout.display())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        stderr.contains("no image \"nope\"") && stderr.contains("latest, root"),
        "{stderr}"
    );
}

#[test]
fn zstd_layers_load_and_keep_their_digest() {
    if !tools() {
        return;
    }
    let layout = support::busybox_layout();
    let zstd = support::fixture("oci-busybox-zstd", |d| {
        support::sh(
            Command::new("skopeo")
                .args(["copy", "--dest-compress", "--dest-compress-format", "zstd"])
                .arg(format!("oci:{}:latest", layout.display()))
                .arg(format!("oci:{}:zstd", d.display())),
        );
    });
    let root = support::temp_root();
    ok(root.path(), &["load", zstd.to_str().unwrap()]);
    let doc = inspect(root.path(), &["oci-busybox-zstd:zstd"]);
    assert_eq!(
        doc["manifest"]["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(
        doc["digest"],
        json!(skopeo_digest(&format!("oci:{}:zstd", zstd.display())))
    );
}

#[test]
fn compressed_docker_tarball_loads() {
    if !tools() {
        return;
    }
    let dir = scratch();
    let gz = dir.path().join("busybox.tar.gz");
    let bytes = fs::read(support::busybox_docker_archive()).unwrap();
    fs::write(&gz, h::gzip(&bytes)).unwrap();
    let root = support::temp_root();
    let out = ok(root.path(), &["load", gz.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: rsafe/busybox:latest\n");
    assert!(
        fs::read_dir(root.path().join("tmp")).unwrap().count() == 0,
        "the decompressed copy was left behind"
    );

    // `docker save x | gzip | rsafe load -`
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args(["load", "-"])
        .pipe_stdin(&gz)
        .unwrap()
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: rsafe/busybox:latest\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);

    // docker's and podman's forms: `load -i FILE`, and `load < FILE` with no argument.
    let root = support::temp_root();
    let out = ok(root.path(), &["load", "-i", gz.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: rsafe/busybox:latest\n");
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .arg("load")
        .pipe_stdin(&gz)
        .unwrap()
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: rsafe/busybox:latest\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// images, inspect, history, rmi

#[test]
fn images_table_and_quiet_listing() {
    if !tools() {
        return;
    }
    let root = support::temp_root();
    ok(
        root.path(),
        &["load", support::busybox_layout().to_str().unwrap()],
    );
    let table = ok(root.path(), &["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY") && lines[0].contains("DIGEST"),
        "{table}"
    );
    assert_eq!(lines.len(), 3, "{table}");
    let latest = lines.iter().find(|l| l.contains(" latest ")).unwrap();
    let digest = &listed(root.path())
        .into_iter()
        .find(|(n, _)| n == "oci-busybox:latest")
        .unwrap()
        .1;
    assert!(latest.starts_with("oci-busybox"), "{latest}");
    assert!(latest.contains(&digest[7..19]), "{latest}");
    assert!(
        latest.contains("MB") && latest.contains("years ago"),
        "{latest}"
    );

    let quiet = ok(root.path(), &["-q", "images"]);
    assert_eq!(quiet.lines().count(), 2);
    let filtered = ok(root.path(), &["images", "oci-busybox:root"]);
    assert_eq!(filtered.lines().count(), 2, "{filtered}");
    let none = ok(root.path(), &["images", "alpine"]);
    assert_eq!(none.lines().count(), 1, "{none}");
}

#[test]
fn history_pairs_entries_with_layers() {
    if !tools() {
        return;
    }
    let root = support::temp_root();
    ok(
        root.path(),
        &["load", support::busybox_layout().to_str().unwrap()],
    );
    let table = ok(root.path(), &["history", "oci-busybox"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].contains("CREATED BY") && lines[0].contains("EMPTY LAYER"));
    assert!(
        lines[1].contains("umoci config") && lines[1].contains(" yes "),
        "{table}"
    );
    assert!(
        lines[2].contains("rsafe-test: busybox-static rootfs"),
        "{table}"
    );
    let rows: Value = serde_json::from_str(&ok(
        root.path(),
        &["history", "--format", "json", "oci-busybox"],
    ))
    .unwrap();
    let doc = inspect(root.path(), &["oci-busybox"]);
    assert_eq!(
        rows[0]["layer"]["digest"],
        doc["manifest"]["layers"][0]["digest"]
    );
    assert_eq!(rows[1]["empty_layer"], true);
    assert_eq!(rows[1]["layer"], Value::Null);
}

#[test]
fn rmi_untags_then_collects_unused_blobs() {
    if !tools() {
        return;
    }
    let root = support::temp_root();
    ok(
        root.path(),
        &["load", support::busybox_layout().to_str().unwrap()],
    );
    let root_digest = inspect(root.path(), &["oci-busybox:root"])["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let out = ok(root.path(), &["rmi", "oci-busybox:latest"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Untagged: oci-busybox:latest");
    // latest's manifest and config go; the layer stays, root uses it.
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("Deleted: ")).count(),
        2
    );
    assert_eq!(blobs(root.path()).len(), 3);

    let out = ok(root.path(), &["rmi", &root_digest[7..19]]);
    assert!(out.starts_with("Untagged: oci-busybox:root\n"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("Deleted: ")).count(),
        3
    );
    assert!(blobs(root.path()).is_empty());
    assert!(listed(root.path()).is_empty());

    let err = support::rsafe(root.path())
        .args(["rmi", "oci-busybox:root"])
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&err.stderr).contains("no image \"oci-busybox:root\""));
}

#[test]
fn rmi_by_digest_of_an_image_with_several_names_needs_force() {
    let dir = scratch();
    let (layout, made, _) = h::tiny();
    let mut layout = layout;
    layout.entry(&made.manifest, &[(REF_NAME, "second")]);
    let path = dir.path().join("tiny");
    layout.tree().write_dir(&path);
    let root = support::temp_root();
    ok(root.path(), &["load", path.to_str().unwrap()]);
    let digest = made.digest();
    let err = support::rsafe(root.path())
        .args(["rmi", &digest])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("--force"),
        "{err:?}"
    );
    assert_eq!(listed(root.path()).len(), 2);
    let out = ok(root.path(), &["rmi", "--force", &digest]);
    assert!(out.contains("Untagged: tiny:latest") && out.contains("Untagged: tiny:second"));
    assert!(blobs(root.path()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// crafted images: formats and naming

#[test]
fn loading_twice_is_idempotent() {
    let dir = scratch();
    let (layout, _, _) = h::tiny();
    let path = dir.path().join("tiny");
    layout.tree().write_dir(&path);
    let root = support::temp_root();
    ok(root.path(), &["load", path.to_str().unwrap()]);
    let index = fs::read(root.path().join("index.json")).unwrap();
    let before = blobs(root.path());
    let out = ok(root.path(), &["load", path.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: tiny:latest\n");
    assert_eq!(fs::read(root.path().join("index.json")).unwrap(), index);
    assert_eq!(blobs(root.path()), before);
}

/// Loads `good`, then `tampered` (the same image with one member's bytes changed, the manifest
/// still naming the original digest) into the same store: the second load is refused in one
/// line naming the archive and `member`, exit code 1, and the store is as the first load left it.
fn tampered_copy_refused(good: &Path, tampered: &Path, member: &str, expect: &[&str]) {
    let root = support::temp_root();
    ok(root.path(), &["load", good.to_str().unwrap()]);
    let index = fs::read(root.path().join("index.json")).unwrap();
    let before = blobs(root.path());
    let out = support::rsafe(root.path())
        .args(["load", tampered.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains("Loaded image"), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    let named = tampered.display().to_string();
    for e in [named.as_str(), member].iter().chain(expect) {
        assert!(stderr.contains(e), "error lacks {e:?}: {stderr}");
    }
    assert_eq!(fs::read(root.path().join("index.json")).unwrap(), index);
    assert_eq!(blobs(root.path()), before);
    if let Ok(tmp) = fs::read_dir(root.path().join("tmp")) {
        assert_eq!(tmp.count(), 0, "a partial blob was left in tmp/");
    }
}

#[test]
fn a_tampered_copy_of_an_image_the_store_has_is_refused() {
    let dir = scratch();
    let (layout, made, layer) = h::tiny();
    let flip_last = |bytes: &[u8]| {
        let mut evil = bytes.to_vec();
        let last = evil.len() - 1;
        evil[last] ^= 0xff;
        evil
    };

    // An OCI archive and an OCI layout whose layer blob changed, same size, same name.
    let good = dir.path().join("tiny.tar");
    layout.tree().write_tar(&good);
    let member = blob_name(&h::sha256(&layer.blob));
    let mut tree = layout.tree();
    tree.put(&member, &flip_last(&layer.blob));
    let evil = dir.path().join("tiny-tampered.tar");
    tree.write_tar(&evil);
    let layer_digest = h::sha256(&layer.blob);
    let expect = ["digest mismatch", h::hex_of(&layer_digest)];
    tampered_copy_refused(&good, &evil, &member, &expect);
    let evil_dir = dir.path().join("tiny-tampered");
    tree.write_dir(&evil_dir);
    tampered_copy_refused(&good, &evil_dir, &member, &expect);

    // Its config blob changed instead.
    let member = blob_name(&h::sha256(&made.config_bytes));
    let mut tree = layout.tree();
    tree.put(&member, &flip_last(&made.config_bytes));
    let evil = dir.path().join("tiny-config.tar");
    tree.write_tar(&evil);
    tampered_copy_refused(&good, &evil, &member, &["config", "digest mismatch"]);

    // A legacy docker save tarball: its uncompressed layer, then its config.
    let plain = Layer::plain(&[("x", b"original")]);
    let (tree, config_digest) = h::docker_save(&[&plain], &["saved:1"]);
    let good = dir.path().join("saved.tar");
    tree.write_tar(&good);
    let member = format!("{:064x}/layer.tar", 1);
    let mut evil_tree = tree.clone();
    evil_tree.put(&member, &flip_last(tree.get(&member).unwrap()));
    let evil = dir.path().join("saved-layer.tar");
    evil_tree.write_tar(&evil);
    tampered_copy_refused(
        &good,
        &evil,
        &member,
        &["digest mismatch", &plain.diff_id()],
    );
    let manifest: Value = serde_json::from_slice(tree.get("manifest.json").unwrap()).unwrap();
    let member = manifest[0]["Config"].as_str().unwrap().to_string();
    let mut evil_tree = tree.clone();
    evil_tree.put(&member, &flip_last(tree.get(&member).unwrap()));
    let evil = dir.path().join("saved-config.tar");
    evil_tree.write_tar(&evil);
    tampered_copy_refused(&good, &evil, &member, &["digest mismatch", &config_digest]);
}

#[test]
fn multi_platform_index_loads_one_platform_or_all() {
    let dir = scratch();
    let (layout, index, amd64, arm64) = h::multi_platform();
    let path = dir.path().join("multi");
    layout.tree().write_dir(&path);
    let spec = path.to_str().unwrap();

    let root = support::temp_root();
    ok(root.path(), &["load", "--platform", "linux/arm64", spec]);
    assert_eq!(
        listed(root.path()),
        [("multi:multi".into(), arm64.digest())]
    );
    assert_eq!(blobs(root.path()).len(), 3, "only arm64's blobs");

    if h::host_arch() == "amd64" {
        let root = support::temp_root();
        ok(root.path(), &["load", spec]);
        assert_eq!(
            listed(root.path()),
            [("multi:multi".into(), amd64.digest())]
        );
    }

    let root = support::temp_root();
    ok(root.path(), &["load", "--all-platforms", spec]);
    let index_digest = index["digest"].as_str().unwrap().to_string();
    assert_eq!(
        listed(root.path()),
        [("multi:multi".into(), index_digest.clone())]
    );
    assert_eq!(blobs(root.path()).len(), 7);
    let doc = inspect(root.path(), &["multi:multi", "--platform", "linux/arm64"]);
    assert_eq!(doc["digest"], json!(index_digest));
    assert_eq!(doc["manifestDigest"], json!(arm64.digest()));
    assert_eq!(doc["config"]["architecture"], "arm64");
    assert_eq!(doc["index"]["manifests"].as_array().unwrap().len(), 2);
    let store_ref = format!("oci:{}:multi:multi", root.path().display());
    if support::have("skopeo", support::tool("skopeo")) {
        let raw = support::sh(Command::new("skopeo").args(["inspect", "--raw", &store_ref]));
        assert_eq!(h::sha256(raw.as_bytes()), index_digest);
    }

    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args(["load", "--platform", "linux/s390x", spec])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("linux/s390x") && stderr.contains("linux/amd64, linux/arm64"),
        "{stderr}"
    );
    assert!(blobs(root.path()).is_empty());
}

#[test]
fn legacy_docker_save_with_layer_directories() {
    let dir = scratch();
    let base = Layer::plain(&[("base", b"shared base\n")]);
    let top = Layer::plain(&[("top", b"app\n")]);
    let (tree, config_digest) =
        h::docker_save(&[&base, &top], &["example.com/app:1.0", "app:latest"]);
    let file = dir.path().join("legacy.tar");
    tree.write_tar(&file);
    let root = support::temp_root();
    let out = ok(root.path(), &["load", file.to_str().unwrap()]);
    assert_eq!(
        out,
        "Loaded image: example.com/app:1.0\nLoaded image: app:latest\n"
    );
    let doc = inspect(root.path(), &["example.com/app:1.0"]);
    assert_eq!(doc["configDigest"], json!(config_digest));
    assert_eq!(doc["config"]["config"]["User"], "tiny");
    let layers: Vec<&str> = doc["manifest"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(layers, [base.diff_id(), top.diff_id()]);
    // One manifest, one config, two layers, named twice.
    assert_eq!(blobs(root.path()).len(), 4);
    // And the layout the store is stays readable by umoci.
    if support::have("umoci", support::tool("umoci")) {
        let names = support::sh(
            Command::new("umoci")
                .args(["ls", "--layout"])
                .arg(root.path()),
        );
        assert_eq!(names, "example.com/app:1.0\napp:latest\n");
    }
}

#[test]
fn docker25_tarball_is_read_as_the_oci_archive_it_is() {
    let dir = scratch();
    let (tree, made) = h::docker25_save(
        "docker.io/library/tiny:1.0",
        Some("docker.io/library/tiny:1.0"),
    );
    let file = dir.path().join("d25.tar");
    tree.write_tar(&file);
    let root = support::temp_root();
    assert_eq!(
        ok(root.path(), &["load", file.to_str().unwrap()]),
        "Loaded image: tiny:1.0\n"
    );
    // The original manifest is kept (not rewritten from manifest.json).
    assert_eq!(listed(root.path()), [("tiny:1.0".into(), made.digest())]);

    // Without the containerd annotation, manifest.json's RepoTags still name it.
    let (tree, _) = h::docker25_save("example.com/other:2", None);
    let file = dir.path().join("d25-plain.tar");
    tree.write_tar(&file);
    let root = support::temp_root();
    assert_eq!(
        ok(root.path(), &["load", file.to_str().unwrap()]),
        "Loaded image: example.com/other:2\n"
    );
}

#[test]
fn unnamed_images_are_kept_by_digest() {
    let dir = scratch();
    let (mut layout, made, _) = h::tiny();
    layout.index.clear();
    layout.entry(&made.manifest, &[]);
    let path = dir.path().join("unnamed");
    layout.tree().write_dir(&path);
    let root = support::temp_root();
    let out = ok(root.path(), &["load", path.to_str().unwrap()]);
    assert_eq!(out, format!("Loaded image digest: {}\n", made.digest()));
    let table = ok(root.path(), &["images"]);
    assert!(
        table.lines().nth(1).unwrap().starts_with("<none>"),
        "{table}"
    );
    let prefix = &made.digest()[7..15];
    assert_eq!(
        inspect(root.path(), &[prefix])["config"]["config"]["User"],
        "tiny"
    );
    let history = ok(root.path(), &["history", prefix]);
    assert!(history.contains("COPY layer0 /"), "{history}");
    let out = ok(root.path(), &["rmi", prefix]);
    assert!(out.contains("Deleted: "), "{out}");
    assert!(blobs(root.path()).is_empty());
}

#[test]
fn a_name_moved_to_another_image_frees_the_old_one() {
    let dir = scratch();
    let root = support::temp_root();
    for content in [&b"one\n"[..], b"two\n"] {
        let layer = Layer::gzip(&[("file", content)]);
        let mut layout = Layout::default();
        let made = layout.image(h::host_arch(), &[&layer]);
        layout.entry(&made.manifest, &[(REF_NAME, "latest")]);
        let path = dir.path().join("app");
        let _ = fs::remove_dir_all(&path);
        layout.tree().write_dir(&path);
        ok(root.path(), &["load", path.to_str().unwrap()]);
    }
    assert_eq!(listed(root.path()).len(), 1);
    assert_eq!(
        blobs(root.path()).len(),
        3,
        "the first image's blobs were kept"
    );
}

// ---------------------------------------------------------------------------------------------
// round trip and rootless

#[test]
fn skopeo_and_umoci_read_the_store() {
    if !tools() {
        return;
    }
    let root = support::temp_root();
    ok(
        root.path(),
        &["load", support::busybox_docker_archive().to_str().unwrap()],
    );
    ok(
        root.path(),
        &["load", support::busybox_layout().to_str().unwrap()],
    );
    let names = support::sh(
        Command::new("umoci")
            .args(["ls", "--layout"])
            .arg(root.path()),
    );
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "oci-busybox:latest",
            "oci-busybox:root",
            "rsafe/busybox:latest"
        ]
    );
    for (name, digest) in listed(root.path()) {
        assert_eq!(
            skopeo_digest(&format!("oci:{}:{name}", root.path().display())),
            digest
        );
    }
    let work = scratch();
    let bundle = work.path().join("bundle");
    let mut unpack = Command::new("umoci");
    unpack.arg("unpack").args([
        "--image",
        &format!("{}:rsafe/busybox:latest", root.path().display()),
    ]);
    if !support::is_root() {
        unpack.arg("--rootless");
    }
    support::sh(unpack.arg(&bundle));
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    let config: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["args"], json!(["/bin/sh", "-c", "id"]));
}

#[test]
fn unprivileged_user_keeps_a_store_of_their_own() {
    if !tools() {
        return;
    }
    let archive = support::busybox_oci_archive();
    let parent = support::temp_root();
    let root = parent.path().join("store");
    let as_user = || support::rsafe_as_test_user(&root);
    let Some(mut load) = as_user() else {
        support::have("root, to run as the unprivileged test user", false);
        return;
    };
    let out = load
        .args(["load", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (uid, _) = support::test_user().unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(root.join("index.json")).unwrap().uid(), uid);
    let out = as_user().unwrap().arg("images").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("busybox-oci"), "{table}");
    let out = as_user()
        .unwrap()
        .args(["history", "busybox-oci"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = as_user()
        .unwrap()
        .args(["rmi", "busybox-oci"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Untagged: busybox-oci:latest"),
        "{out:?}"
    );
    assert!(blobs(&root).is_empty());
}

// ---------------------------------------------------------------------------------------------
// hostile archives and layouts: one-line error naming the file, nothing kept

#[test]
fn hostile_manifest_pointing_to_a_missing_blob() {
    let (layout, _, layer) = h::tiny();
    let mut tree = layout.tree();
    tree.remove(&blob_name(&h::sha256(&layer.blob)));
    refused_dir(&tree, &["(layer 1 of manifest sha256:", "is missing"]);
    refused_tar(&tree, &["is missing"]);
}

#[test]
fn hostile_digest_with_the_wrong_algorithm_or_length() {
    let (mut layout, made, _) = h::tiny();
    let mut entry = made.manifest.clone();
    entry["digest"] = json!(format!("sha512:{}", "ab".repeat(64)));
    layout.index = vec![entry];
    refused_tar(&layout.tree(), &["sha512", "unsupported algorithm"]);
    let mut entry = made.manifest.clone();
    entry["digest"] = json!("sha256:abcd");
    layout.index = vec![entry];
    refused_tar(
        &layout.tree(),
        &["index.json is not valid", "digest length"],
    );
}

#[test]
fn hostile_index_that_is_not_json() {
    let (layout, _, _) = h::tiny();
    let mut tree = layout.tree();
    tree.put("index.json", b"{\"manifests\": [ nope");
    refused_dir(&tree, &["index.json is not valid"]);
    refused_tar(&tree, &["index.json is not valid"]);
}

#[test]
fn hostile_blob_whose_content_does_not_match_its_name() {
    let (layout, _, layer) = h::tiny();
    let mut tree = layout.tree();
    let name = blob_name(&h::sha256(&layer.blob));
    let mut evil = layer.blob.clone();
    let last = evil.len() - 1;
    evil[last] ^= 0xff;
    tree.put(&name, &evil);
    refused_tar(
        &tree,
        &["digest mismatch", h::hex_of(&h::sha256(&layer.blob))],
    );
    // Same bytes count but changed, or a different length: both caught.
    tree.put(&name, b"short");
    refused_dir(&tree, &["size mismatch"]);
}

#[test]
fn hostile_metadata_blob_that_does_not_match() {
    let (layout, made, _) = h::tiny();
    let mut tree = layout.tree();
    let config_name = blob_name(&h::sha256(&made.config_bytes));
    let mut evil = made.config_bytes.clone();
    let pos = evil.windows(4).position(|w| w == b"tiny").unwrap();
    evil[pos..pos + 4].copy_from_slice(b"root");
    tree.put(&config_name, &evil);
    refused_tar(&tree, &["config", "digest mismatch"]);
}

#[test]
fn hostile_descriptor_lying_about_an_image_the_store_already_has() {
    let dir = scratch();
    let (layout, made, _) = h::tiny();
    let path = dir.path().join("tiny");
    layout.tree().write_dir(&path);
    let root = support::temp_root();
    ok(root.path(), &["load", path.to_str().unwrap()]);
    let index_before = fs::read(root.path().join("index.json")).unwrap();

    let mut lying = layout.clone();
    let mut entry = made.manifest.clone();
    entry["size"] = json!(made.manifest_bytes.len() + 1);
    entry["annotations"] = json!({REF_NAME: "other"});
    lying.index = vec![entry];
    let evil = dir.path().join("lying");
    lying.tree().write_dir(&evil);
    let out = support::rsafe(root.path())
        .args(["load", evil.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("size mismatch"), "{stderr}");
    assert_eq!(
        fs::read(root.path().join("index.json")).unwrap(),
        index_before
    );
}

#[test]
fn hostile_unknown_layer_media_type() {
    let mut layer = Layer::gzip(&[("x", b"x")]);
    layer.media_type = "application/vnd.example.encrypted+gzip".into();
    let mut layout = Layout::default();
    let made = layout.image(h::host_arch(), &[&layer]);
    layout.entry(&made.manifest, &[(REF_NAME, "latest")]);
    refused_tar(
        &layout.tree(),
        &["application/vnd.example.encrypted+gzip", "does not handle"],
    );
}

#[test]
fn hostile_member_names_climbing_out_or_absolute() {
    let dir = scratch();
    let sentinel = dir.path().join("escaped");
    let (layout, _, _) = h::tiny();
    for name in ["../escaped", &sentinel.display().to_string()[..]] {
        let mut tree = layout.tree();
        tree.push(name, Node::File(b"written outside".to_vec()));
        let file = dir.path().join("sub").join("evil.tar");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        tree.write_tar(&file);
        let root = support::temp_root();
        let out = support::rsafe(root.path())
            .current_dir(file.parent().unwrap())
            .args(["load", file.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("refusing the archive") && stderr.contains(&file.display().to_string()),
            "{stderr}"
        );
        assert!(!sentinel.exists(), "a member was written outside");
        assert!(blobs(root.path()).is_empty());
    }
}

#[test]
fn hostile_truncated_archive() {
    let dir = scratch();
    let (layout, _, _) = h::tiny();
    let file = dir.path().join("full.tar");
    layout.tree().write_tar(&file);
    let bytes = fs::read(&file).unwrap();
    let cut = dir.path().join("cut.tar");
    // Cut inside the last blob's data (the manifest, written last): its header promises more.
    fs::write(&cut, &bytes[..bytes.len() - 1024 - 200]).unwrap();
    refused(cut.to_str().unwrap(), &cut, &["truncated"]);
}

#[test]
fn hostile_oversized_manifest_and_config() {
    let big = 9usize << 20;
    // A config padded with 9 MiB of JSON whitespace: valid JSON, too large to be trusted.
    let layer = Layer::gzip(&[("x", b"x")]);
    let mut config = serde_json::to_vec(&h::config_json(h::host_arch(), &[&layer])).unwrap();
    config.extend(std::iter::repeat_n(b' ', big));
    let mut layout = Layout::default();
    let made = layout.image_with_config(&config, &[&layer]);
    layout.entry(&made.manifest, &[(REF_NAME, "latest")]);
    refused_tar(&layout.tree(), &["config", "more than the 8388608"]);

    let (mut layout, made, _) = h::tiny();
    let mut manifest = made.manifest_bytes.clone();
    manifest.extend(std::iter::repeat_n(b' ', big));
    layout.blob(&manifest);
    layout.index = vec![h::descriptor(h::OCI_MANIFEST, &manifest)];
    refused_dir(&layout.tree(), &["manifest", "more than the 8388608"]);
}

#[test]
fn hostile_duplicate_members() {
    let (layout, _, _) = h::tiny();
    let mut tree = layout.tree();
    tree.push(
        "./index.json",
        Node::File(b"{\"schemaVersion\":2,\"manifests\":[]}".to_vec()),
    );
    refused_tar(&tree, &["\"index.json\" appears twice"]);
}

#[test]
fn hostile_links_out_of_the_archive_or_layout() {
    let layer = Layer::plain(&[("x", b"x")]);
    let (mut tree, _) = h::docker_save(&[&layer], &["evil:1"]);
    let member = format!("{:064x}/layer.tar", 1);
    tree.remove(&member);
    tree.push(&member, Node::Symlink("../../../../etc/passwd".into()));
    refused_tar(&tree, &["is a link to", "climbs out of the archive"]);

    let (layout, _, layer) = h::tiny();
    let mut tree = layout.tree();
    let name = blob_name(&h::sha256(&layer.blob));
    tree.remove(&name);
    tree.push(&name, Node::Symlink("/etc/passwd".into()));
    refused_dir(&tree, &["leads outside the layout"]);
    tree.remove(&name);
    tree.push(&name, Node::Fifo);
    refused_dir(&tree, &["is not a regular file"]);
}

#[test]
fn hostile_docker_layer_that_is_not_its_diff_id() {
    let layer = Layer::plain(&[("x", b"x")]);
    let (mut tree, _) = h::docker_save(&[&layer], &["evil:1"]);
    let member = format!("{:064x}/layer.tar", 1);
    tree.put(&member, &h::tar_of(&[("x", b"swapped")]));
    refused_tar(
        &tree,
        &["layer member", "digest mismatch", &layer.diff_id()],
    );

    let (mut tree, _) = h::docker_save(&[&layer], &["evil:1"]);
    let manifest: Value = serde_json::from_slice(tree.get("manifest.json").unwrap()).unwrap();
    let config = manifest[0]["Config"].as_str().unwrap().to_string();
    let bytes = tree.get(&config).unwrap().to_vec();
    tree.remove(&config).put("config.json", &bytes);
    let mut manifest = manifest;
    manifest[0]["Config"] = json!("config.json");
    tree.put("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    refused_tar(&tree, &["not named by its digest"]);
}

#[test]
fn hostile_second_image_leaves_nothing_of_the_first() {
    let (mut layout, _, _) = h::tiny();
    let broken = Layer::gzip(&[("y", b"y")]);
    let made = layout.image(h::host_arch(), &[&broken]);
    layout.entry(&made.manifest, &[(REF_NAME, "broken")]);
    let mut tree = layout.tree();
    tree.remove(&blob_name(&h::sha256(&broken.blob)));
    refused_tar(&tree, &["is missing"]);
}

#[test]
fn not_an_image_at_all() {
    let dir = scratch();
    let tar = dir.path().join("plain.tar");
    let mut tree = Tree::default();
    tree.put("etc/passwd", b"root:x:0:0::/:/bin/sh\n");
    tree.write_tar(&tar);
    refused(tar.to_str().unwrap(), &tar, &["neither an OCI archive"]);
    let text = dir.path().join("notes.txt");
    fs::write(&text, "just text").unwrap();
    refused(text.to_str().unwrap(), &text, &["not a tar archive"]);
    let plain_dir: PathBuf = dir.path().join("rootfs");
    fs::create_dir(&plain_dir).unwrap();
    refused(
        plain_dir.to_str().unwrap(),
        &plain_dir,
        &["not an OCI image layout"],
    );
}
