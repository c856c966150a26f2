//! `rsafe run --gate` and a policy's `gate` key, through the real binary, on the audit fixtures
//! built with umoci (tests/support/audit_images.rs): `leaky` (synthetic secrets added in layer 2
//! and deleted in layer 3, more in its config), `risky` (high and medium findings), and the
//! busybox image's `root` tag (one medium finding: it runs as root).
#[allow(dead_code)]
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rsafe::audit::gate::Verdict;
use sha2::{Digest as _, Sha256};
use support::audit_images::{self, RSA_KEY_BODY, planted_secrets};

const CACHED: &str = "gate: cached verdict";
const AUDITED: &str = "gate: audited";

fn have_tools() -> bool {
    support::have(
        "umoci and skopeo",
        support::tool("umoci") && support::tool("skopeo"),
    ) && run_support::userns_works()
}

/// What one `rsafe` command printed and returned.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `rsafe --root STORE ARGS…` run in `cwd` (where `.rsafeignore` is looked for).
fn rsafe_in(cwd: &Path, store: &Path, args: &[&str]) -> Out {
    let out = support::rsafe(store)
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A store and an empty working directory for one test.
struct Env {
    store: tempfile::TempDir,
    cwd: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            store: support::temp_root(),
            cwd: tempfile::tempdir().unwrap(),
        }
    }

    fn rsafe(&self, args: &[&str]) -> Out {
        rsafe_in(self.cwd.path(), self.store.path(), args)
    }

    /// `rsafe run --rm --verbose ARGS… IMAGE 'echo RAN'`.
    fn run(&self, args: &[&str], image: &str) -> Out {
        let mut all = vec!["run", "--rm", "--verbose"];
        all.extend_from_slice(args);
        all.extend([image, "echo RAN"]);
        self.rsafe(&all)
    }

    fn gate_dir(&self) -> PathBuf {
        self.store.path().join("gate")
    }

    /// The one verdict file of the store.
    fn entry(&self) -> PathBuf {
        let entries: Vec<PathBuf> = fs::read_dir(self.gate_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries[0].clone()
    }
}

fn ran(out: &Out) {
    assert_eq!((out.code, out.stdout.as_str()), (0, "RAN\n"), "{out:?}");
}

fn refused(out: &Out, n: usize, level: &str, image: &str) {
    assert_eq!(out.code, 125, "{out:?}");
    assert!(!out.stdout.contains("RAN"), "the container ran: {out:?}");
    let s = if n == 1 { "" } else { "s" };
    let line = format!(
        "rsafe: refused by the gate: {n} finding{s} at or above {level} in {image} (rsafe audit {image} for details)"
    );
    assert_eq!(out.stderr.lines().last(), Some(line.as_str()), "{out:?}");
}

/// No 8-character window of any planted secret in `text`; the failure names the secret by its
/// index and the offset of the window, never the window itself.
fn assert_redacted(text: &str) {
    let key_body: String = RSA_KEY_BODY.split_whitespace().collect();
    let mut secrets: Vec<String> = planted_secrets().into_iter().map(String::from).collect();
    secrets.push(key_body);
    for (i, secret) in secrets.iter().enumerate() {
        let chars: Vec<char> = secret.chars().collect();
        for (at, window) in chars.windows(8).enumerate() {
            let window: String = window.iter().collect();
            assert!(
                !text.contains(&window),
                "planted secret #{i}: the 8 characters at offset {at} were printed"
            );
        }
    }
}

fn leaky() -> String {
    audit_images::target("leaky")
}

#[test]
fn an_image_with_a_deleted_secret_is_refused_by_path_name_digest_and_archive() {
    if !have_tools() {
        return;
    }
    let env = Env::new();
    let out = env.run(&["--gate", "high"], &leaky());
    refused(&out, 4, "high", &leaky());
    // The table, as `rsafe audit` prints it: the layer that still holds the deleted file.
    assert!(out.stderr.contains("CRITICAL (4)"), "{out:?}");
    assert!(
        out.stderr.contains(
            "layer 2 /root/.aws/credentials:3 (deleted in layer 3, still present in layer 2)"
        ),
        "{out:?}"
    );
    assert_redacted(&out.stdout);
    assert_redacted(&out.stderr);

    // The same image by store name and by digest, once loaded.
    let layout = audit_images::audit_layout();
    let load = env.rsafe(&["load", layout.to_str().unwrap()]);
    assert_eq!(load.code, 0, "{load:?}");
    let (digest, _) = support::registry::layout_entry(&layout, "leaky");
    for name in ["oci-audit:leaky", digest.as_str()] {
        let out = env.run(&["--gate", "critical"], name);
        refused(&out, 4, "critical", name);
        assert!(
            out.stderr.contains(CACHED),
            "one verdict per image: {out:?}"
        );
        assert_redacted(&out.stderr);
    }

    // A `docker save` archive of it (another manifest: docker's format).
    let archive = audit_images::leaky_docker_archive();
    let archive = archive.to_str().unwrap();
    let out = env.run(&["--gate", "high"], archive);
    refused(&out, 4, "high", archive);
    assert_redacted(&out.stderr);

    // Without a gate it runs: what refused it was the gate.
    ran(&env.run(&[], &leaky()));
    ran(&env.run(&["--gate", "off"], &leaky()));
}

#[test]
fn the_threshold_decides_and_is_not_part_of_the_cache_key() {
    if !have_tools() {
        return;
    }
    let env = Env::new();
    let root_image = format!("{}:root", support::busybox_layout().display());
    // One medium finding (image.user-root): runs under a critical or high gate.
    let out = env.run(&["--gate", "critical"], &root_image);
    ran(&out);
    assert!(out.stderr.contains(AUDITED), "{out:?}");
    assert!(
        out.stderr
            .contains("gate: passed: no finding at or above critical (1 below it, 0 accepted"),
        "{out:?}"
    );
    let out = env.run(&["--gate", "high"], &root_image);
    ran(&out);
    assert!(out.stderr.contains(CACHED), "{out:?}");
    // ... and is refused at medium, from the same cached verdict.
    let out = env.run(&["--gate", "medium"], &root_image);
    refused(&out, 1, "medium", &root_image);
    assert!(out.stderr.contains(CACHED), "{out:?}");
    assert!(out.stderr.contains("image.user-root"), "{out:?}");

    // risky: two high findings and three medium ones.
    let risky = audit_images::target("risky");
    ran(&env.run(&["--gate", "critical"], &risky));
    refused(&env.run(&["--gate", "high"], &risky), 2, "high", &risky);
    refused(&env.run(&["--gate", "low"], &risky), 5, "low", &risky);
}

#[test]
fn a_damaged_cached_verdict_is_audited_again_never_a_pass() {
    if !have_tools() {
        return;
    }
    let env = Env::new();
    let out = env.run(&["--gate", "high"], &leaky());
    refused(&out, 4, "high", &leaky());
    assert!(out.stderr.contains(AUDITED), "{out:?}");
    let out = env.run(&["--gate", "high"], &leaky());
    refused(&out, 4, "high", &leaky());
    assert!(
        out.stderr.contains(CACHED),
        "the second run reads the cache: {out:?}"
    );
    assert!(!out.stderr.contains(AUDITED), "{out:?}");

    let entry = env.entry();
    let meta = fs::metadata(&entry).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(env.gate_dir()).unwrap().mode() & 0o777, 0o700);
    let good = fs::read(&entry).unwrap();
    // The cache holds the redacted evidence only, like every report.
    assert_redacted(&String::from_utf8_lossy(&good));
    let mut doc: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let damage = |bytes: &[u8], label: &str| {
        fs::write(&entry, bytes).unwrap();
        let out = env.run(&["--gate", "high"], &leaky());
        refused(&out, 4, "high", &leaky());
        assert!(
            out.stderr.contains("cached verdict damaged") && out.stderr.contains(AUDITED),
            "{label}: {out:?}"
        );
        // The audit wrote a good entry back.
        assert_eq!(fs::read(&entry).unwrap(), good, "{label}");
    };
    damage(&good[..good.len() / 2], "truncated");
    damage(b"", "empty");
    doc["verdict"]["findings"] = serde_json::json!([]);
    damage(doc.to_string().as_bytes(), "findings removed");
}

/// The leaky image's entry rewritten as a pass (no findings), with a checksum that matches:
/// what another user with write access to the cache could plant.
fn planted_pass(entry: &Path) -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_slice(&fs::read(entry).unwrap()).unwrap();
    let mut verdict: Verdict = serde_json::from_value(doc["verdict"].clone()).unwrap();
    verdict.findings.clear();
    let sum = hex::encode(Sha256::digest(serde_json::to_vec(&verdict).unwrap()));
    doc["verdict"] = serde_json::to_value(&verdict).unwrap();
    doc["sha256"] = serde_json::Value::String(sum);
    doc.to_string().into_bytes()
}

#[test]
fn a_verdict_planted_by_another_user_is_not_trusted() {
    if !have_tools() {
        return;
    }
    if !support::have("root (to plant files as another user)", support::is_root()) {
        return;
    }
    let env = Env::new();
    refused(&env.run(&["--gate", "high"], &leaky()), 4, "high", &leaky());
    let entry = env.entry();
    let pass = planted_pass(&entry);
    let plant = |uid: u32, mode: u32| {
        fs::remove_file(&entry).unwrap();
        fs::write(&entry, &pass).unwrap();
        fs::set_permissions(&entry, fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&entry, Some(uid), None).unwrap();
    };
    for (uid, mode, label) in [
        (65534, 0o600, "another user's"),
        (0, 0o666, "world-writable"),
    ] {
        plant(uid, mode);
        let out = env.run(&["--gate", "high"], &leaky());
        refused(&out, 4, "high", &leaky());
        assert!(
            out.stderr.contains("cached verdict not trusted") && out.stderr.contains(AUDITED),
            "{label}: {out:?}"
        );
    }
    // A cache directory someone else owns.
    plant(0, 0o600);
    std::os::unix::fs::chown(env.gate_dir(), Some(65534), None).unwrap();
    let out = env.run(&["--gate", "high"], &leaky());
    refused(&out, 4, "high", &leaky());
    assert!(out.stderr.contains("not trusted"), "{out:?}");
    assert!(out.stderr.contains("cannot cache the verdict"), "{out:?}");
    std::os::unix::fs::chown(env.gate_dir(), Some(0), None).unwrap();

    // The control: the same entry as the caller would have written it is believed. The cache
    // is as trustworthy as the store, which is the caller's own.
    plant(0, 0o600);
    let out = env.run(&["--gate", "high"], &leaky());
    ran(&out);
    assert!(out.stderr.contains(CACHED), "{out:?}");
}

#[test]
fn an_unwritable_cache_means_an_audit_at_every_start() {
    if !have_tools() {
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    let store = support::temp_root();
    let as_user = || {
        let mut cmd = support::rsafe_as_test_user(store.path())?;
        cmd.current_dir(cwd.path());
        Some(cmd)
    };
    if !support::have("the test user (as root)", as_user().is_some()) {
        return;
    }
    // The test user's own store, its gate directory made read-only by its owner.
    let run = || {
        let out = as_user()
            .unwrap()
            .args([
                "run",
                "--rm",
                "--verbose",
                "--gate",
                "high",
                &leaky(),
                "true",
            ])
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let out = run();
    refused(&out, 4, "high", &leaky());
    let gate = store.path().join("gate");
    for e in fs::read_dir(&gate).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    fs::set_permissions(&gate, fs::Permissions::from_mode(0o500)).unwrap();
    for _ in 0..2 {
        let out = run();
        refused(&out, 4, "high", &leaky());
        assert!(out.stderr.contains(AUDITED), "{out:?}");
        let said = out.stderr.matches("cannot cache the verdict").count();
        assert_eq!(said, 1, "said once per run: {out:?}");
        assert!(out.stderr.contains("audited at every start"), "{out:?}");
        assert_redacted(&out.stderr);
    }
    assert_eq!(fs::read_dir(&gate).unwrap().count(), 0);
}

#[test]
fn the_ignore_file_applies_to_the_cached_verdict() {
    if !have_tools() {
        return;
    }
    let env = Env::new();
    refused(&env.run(&["--gate", "high"], &leaky()), 4, "high", &leaky());
    let ignore = env.cwd.path().join(".rsafeignore");
    fs::write(&ignore, "secret.*   # synthetic secrets of a test image\n").unwrap();
    let out = env.run(&["--gate", "high"], &leaky());
    ran(&out);
    assert!(out.stderr.contains(CACHED), "no new audit: {out:?}");
    assert!(out.stderr.contains("4 accepted by .rsafeignore"), "{out:?}");
    // Accepting only some of them is not enough.
    fs::write(&ignore, "secret.file.*   # test keys\n").unwrap();
    refused(&env.run(&["--gate", "high"], &leaky()), 2, "high", &leaky());
    // A broken ignore file stops the run: silently ignoring it could let anything through.
    fs::write(&ignore, "secret.*\n").unwrap();
    let out = env.run(&["--gate", "high"], &leaky());
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr
            .contains("cannot use the ignore file: .rsafeignore:1: missing reason"),
        "{out:?}"
    );
}

#[test]
fn the_policys_gate_key_and_the_flag_that_overrides_it() {
    if !have_tools() {
        return;
    }
    let env = Env::new();
    let policy = env.cwd.path().join("gated.toml");
    fs::write(&policy, "gate = \"high\"\n").unwrap();
    let policy = policy.to_str().unwrap();
    refused(
        &env.run(&["--policy", policy], &leaky()),
        4,
        "high",
        &leaky(),
    );
    ran(&env.run(&["--policy", policy, "--gate", "off"], &leaky()));
    let risky = audit_images::target("risky");
    refused(&env.run(&["--policy", policy], &risky), 2, "high", &risky);
    ran(&env.run(&["--policy", policy, "--gate", "critical"], &risky));
    // The builtin policies have no gate.
    ran(&env.run(&["--policy", "strict"], &leaky()));

    let bad = env.cwd.path().join("bad.toml");
    fs::write(&bad, "gate = \"severe\"\n").unwrap();
    let out = env.run(&["--policy", bad.to_str().unwrap()], &leaky());
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("gate: \"severe\" is not a gate level"),
        "{out:?}"
    );
    let out = env.run(&["--gate", "loud"], &leaky());
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr
            .contains("off, info, low, medium, high or critical"),
        "{out:?}"
    );
}

#[test]
fn a_rootfs_directory_is_refused_by_the_gate() {
    if !have_tools() {
        return;
    }
    let env = Env::new();
    let rootfs = support::busybox_rootfs();
    let rootfs = rootfs.to_str().unwrap();
    let out = env.rsafe(&["run", "--rm", "--gate", "high", rootfs, "/bin/true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "the gate audits images, and {rootfs} is a directory"
        )),
        "{out:?}"
    );
    let out = env.rsafe(&["run", "--rm", "--gate", "off", rootfs, "/bin/true"]);
    assert_eq!(out.code, 0, "{out:?}");
}

/// The extracted layer directories of `store` (`<store>/layers/<ownership>/<diff_id hex>`),
/// whatever ownership they were extracted for.
fn extracted_layers(store: &Path) -> Vec<PathBuf> {
    let Ok(kinds) = fs::read_dir(store.join("layers")) else {
        return Vec::new();
    };
    let mut layers = Vec::new();
    for kind in kinds {
        let kind = kind.unwrap().path();
        if !kind.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&kind).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() && name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                layers.push(path);
            }
        }
    }
    layers
}

#[test]
fn a_refused_image_is_never_extracted() {
    if !have_tools() {
        return;
    }
    let archive = audit_images::leaky_docker_archive();
    let root_image = format!("{}:root", support::busybox_layout().display());
    run_support::for_each_caller(|caller, store| {
        // The store is the working directory: no `.rsafeignore` there, and every caller may
        // enter it. `-v` (global) says what was audited and what extracted.
        let gated = |gate: &str, image: &str| {
            let out = caller
                .command(store)
                .current_dir(store)
                .args(["-v", "run", "--rm", "--gate", gate, image, "echo RAN"])
                .output()
                .unwrap();
            Out {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        };
        // The synthetic keys of layer 2, by layout path and by `docker save` archive (loaded
        // into the store first: its blobs are what the gate reads).
        for image in [leaky(), archive.to_str().unwrap().to_string()] {
            let out = gated("high", &image);
            refused(&out, 4, "high", &image);
            assert!(out.stderr.contains(AUDITED), "{caller:?}: {out:?}");
            assert!(!out.stderr.contains("extracted"), "{caller:?}: {out:?}");
            assert_redacted(&out.stderr);
            let layers = extracted_layers(store);
            assert!(
                layers.is_empty(),
                "{caller:?}: {image} was refused, yet layers were extracted: {layers:?}"
            );
        }
        // The control: an image the gate lets through is extracted, after its audit, and runs.
        let out = gated("critical", &root_image);
        ran(&out);
        let audited = out.stderr.find(AUDITED);
        let extracted = out.stderr.find("rsafe: extracted 1 layer(s)");
        assert!(
            audited.is_some() && extracted.is_some() && audited < extracted,
            "{caller:?}: audit, then extraction: {out:?}"
        );
        assert_eq!(extracted_layers(store).len(), 1, "{caller:?}");
        // Cached verdict and cached layers: no helper process at all, and it still runs.
        let out = gated("critical", &root_image);
        ran(&out);
        assert!(out.stderr.contains(CACHED), "{caller:?}: {out:?}");
        assert!(!out.stderr.contains("extracted"), "{caller:?}: {out:?}");
    });
}
