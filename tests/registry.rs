//! `rsafe pull` against real registries: Debian's docker-registry (distribution 2.8) open, with
//! htpasswd (Basic) auth and with token (Bearer) auth, images pushed by skopeo, and a proxy in
//! front that counts blob downloads or tampers with what the registry sends.
mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use base64::Engine as _;
use predicates::prelude::*;
use rsafe::image::{Image, Platform, Store};
use support::registry::{
    Auth, Proxy, Registry, Tamper, TokenServer, busybox_app_layout, busybox_multiarch_layout,
    layout_entry, layout_layers,
};

fn oci(layout: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", layout.display())
}

/// (name, digest) of every image in a store.
fn refs(root: &Path) -> Vec<(String, String)> {
    Store::open_read_only(root)
        .unwrap()
        .refs()
        .unwrap()
        .into_iter()
        .map(|(n, d)| (n, d.digest().to_string()))
        .collect()
}

fn digest_named(root: &Path, name: &str) -> String {
    refs(root)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", refs(root)))
        .1
}

fn has_blob(root: &Path, digest: &str) -> bool {
    root.join("blobs/sha256")
        .join(&digest["sha256:".len()..])
        .exists()
}

fn tmp_is_empty(root: &Path) -> bool {
    fs::read_dir(root.join("tmp")).map_or(true, |mut d| d.next().is_none())
}

/// `rsafe` with a private HOME and no inherited credential locations.
fn rsafe_clean(root: &Path, home: &Path) -> assert_cmd::Command {
    let mut cmd = support::rsafe(root);
    cmd.env("HOME", home)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_CONFIG_HOME");
    cmd
}

fn auth_file(dir: &Path, host: &str, user: &str, pass: &str) -> std::path::PathBuf {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let file = dir.join(format!("auth-{user}-{}.json", pass.len()));
    fs::write(
        &file,
        serde_json::json!({"auths": {host: {"auth": auth}}}).to_string(),
    )
    .unwrap();
    file
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn pulls_by_tag_and_by_digest_with_the_registrys_digest() {
    let Some(reg) = Registry::start(Auth::None) else {
        return;
    };
    reg.push(
        &oci(&support::busybox_layout(), "latest"),
        "rsafe/busybox:1.0",
        &[],
    );
    let expected = reg.inspect_digest("rsafe/busybox:1.0");
    let host = reg.host();

    let root = support::temp_root();
    let name = format!("{host}/rsafe/busybox:1.0");
    support::rsafe(root.path())
        .args(["pull", &name])
        .assert()
        .success()
        .stdout(predicate::str::contains(&expected));
    assert_eq!(digest_named(root.path(), &name), expected);
    // The stored manifest is the registry's bytes, and the whole image opens and verifies.
    let store = Store::open(root.path()).unwrap();
    let image = Image::open(&store, &name, &Platform::host()).unwrap();
    assert_eq!(image.manifest_digest.to_string(), expected);
    assert_eq!(image.layers().len(), 1);
    assert!(tmp_is_empty(root.path()));

    // By digest alone: filed under repo@digest. With tag and digest: under the tag.
    let by_digest = support::temp_root();
    let pinned = format!("{host}/rsafe/busybox@{expected}");
    support::rsafe(by_digest.path())
        .args(["pull", &pinned])
        .assert()
        .success();
    assert_eq!(digest_named(by_digest.path(), &pinned), expected);
    support::rsafe(by_digest.path())
        .args([
            "-q",
            "pull",
            &format!("{host}/rsafe/busybox:1.0@{expected}"),
        ])
        .assert()
        .success()
        .stdout(format!("{expected}\n"));
    assert_eq!(digest_named(by_digest.path(), &name), expected);
}

#[test]
fn docker_schema2_images_pull_with_their_own_digest() {
    let Some(reg) = Registry::start(Auth::None) else {
        return;
    };
    let dest = "rsafe/busybox:v2s2";
    reg.push(
        &oci(&support::busybox_layout(), "root"),
        dest,
        &["--format", "v2s2"],
    );
    let expected = reg.inspect_digest(dest);
    let root = support::temp_root();
    let name = format!("{}/{dest}", reg.host());
    support::rsafe(root.path())
        .args(["pull", &name])
        .assert()
        .success();
    let (_, desc) = Store::open(root.path())
        .unwrap()
        .refs()
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == &name)
        .unwrap();
    assert_eq!(desc.digest().to_string(), expected);
    assert_eq!(
        desc.media_type().to_string(),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let store = Store::open(root.path()).unwrap();
    let image = Image::open(&store, &name, &Platform::host()).unwrap();
    assert_eq!(
        image.config.config().as_ref().unwrap().user().as_deref(),
        Some("0:0")
    );
}

#[test]
fn second_image_fetches_only_its_new_layer() {
    let Some(reg) = Registry::start(Auth::None) else {
        return;
    };
    let app_layout = busybox_app_layout();
    reg.push(&oci(&app_layout, "latest"), "rsafe/busybox:1.0", &[]);
    reg.push(&oci(&app_layout, "app"), "rsafe/busybox:app", &[]);
    let base_layers = layout_layers(&app_layout, "latest");
    let app_layers = layout_layers(&app_layout, "app");
    assert_eq!(base_layers.len(), 1);
    assert_eq!(app_layers.len(), 2);
    assert_eq!(
        app_layers[0], base_layers[0],
        "the fixture shares its base layer"
    );
    let config = |tag: &str| {
        layout_entry(&app_layout, tag).1["config"]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let proxy = Proxy::start(reg.addr(), Tamper::Nothing);
    let root = support::temp_root();
    support::rsafe(root.path())
        .args(["pull", &format!("{}/rsafe/busybox:1.0", proxy.host())])
        .assert()
        .success();
    let first: BTreeSet<String> = proxy.blob_gets().into_iter().collect();
    assert_eq!(
        first,
        BTreeSet::from([config("latest"), base_layers[0].clone()])
    );

    proxy.clear();
    support::rsafe(root.path())
        .args(["pull", &format!("{}/rsafe/busybox:app", proxy.host())])
        .assert()
        .success()
        .stdout(predicate::str::contains("2 blobs fetched"))
        .stdout(predicate::str::contains("1 already present"));
    let mut second = proxy.blob_gets();
    second.sort();
    let mut want = vec![config("app"), app_layers[1].clone()];
    want.sort();
    assert_eq!(second, want, "only the new config and the new layer");

    proxy.clear();
    support::rsafe(root.path())
        .args(["pull", &format!("{}/rsafe/busybox:app", proxy.host())])
        .assert()
        .success();
    assert!(proxy.blob_gets().is_empty(), "{:?}", proxy.seen());
}

#[test]
fn corrupted_blob_is_refused_and_leaves_nothing() {
    let Some(reg) = Registry::start(Auth::None) else {
        return;
    };
    let layout = support::busybox_layout();
    reg.push(&oci(&layout, "latest"), "rsafe/busybox:1.0", &[]);
    let layer = layout_layers(&layout, "latest")[0].clone();
    let proxy = Proxy::start(reg.addr(), Tamper::CorruptBlob(layer.clone()));
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args(["pull", &format!("{}/rsafe/busybox:1.0", proxy.host())])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.starts_with("rsafe: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    assert!(
        err.contains("digest mismatch")
            && err.contains(&layer)
            && err.contains(&format!("{}/rsafe/busybox", proxy.host())),
        "{err}"
    );
    assert!(!has_blob(root.path(), &layer));
    assert!(tmp_is_empty(root.path()));
    assert!(refs(root.path()).is_empty());

    // Nothing was poisoned: the same store pulls the real thing.
    support::rsafe(root.path())
        .args(["pull", &format!("{}/rsafe/busybox:1.0", reg.host())])
        .assert()
        .success();
    assert!(has_blob(root.path(), &layer));
}

#[test]
fn interrupted_download_leaves_nothing() {
    let Some(reg) = Registry::start(Auth::None) else {
        return;
    };
    let layout = support::busybox_layout();
    reg.push(&oci(&layout, "latest"), "rsafe/busybox:1.0", &[]);
    let layer = layout_layers(&layout, "latest")[0].clone();
    let proxy = Proxy::start(reg.addr(), Tamper::TruncateBlob(layer.clone()));
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args(["pull", &format!("{}/rsafe/busybox:1.0", proxy.host())])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(err.contains(&layer) && err.contains("broke off"), "{err}");
    assert!(!has_blob(root.path(), &layer));
    assert!(tmp_is_empty(root.path()));
    assert!(refs(root.path()).is_empty());
}

#[test]
fn manifest_not_matching_the_requested_digest_is_refused() {
    let Some(reg) = Registry::start(Auth::None) else {
        return;
    };
    let layout = support::busybox_layout();
    reg.push(&oci(&layout, "latest"), "rsafe/busybox:1.0", &[]);
    reg.push(&oci(&layout, "root"), "rsafe/busybox:root", &[]);
    let asked = reg.inspect_digest("rsafe/busybox:1.0");
    let served = reg.inspect_digest("rsafe/busybox:root");
    let proxy = Proxy::start(
        reg.addr(),
        Tamper::ServeManifest {
            asked: asked.clone(),
            served: "root".into(),
        },
    );
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args(["pull", &format!("{}/rsafe/busybox@{asked}", proxy.host())])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("digest mismatch") && err.contains(&asked) && err.contains(&served),
        "{err}"
    );
    assert!(refs(root.path()).is_empty());
    assert!(!has_blob(root.path(), &served));
}

#[test]
fn registry_errors_are_one_line_with_the_registry_code() {
    let Some(reg) = Registry::start(Auth::None) else {
        return;
    };
    reg.push(
        &oci(&support::busybox_layout(), "latest"),
        "rsafe/busybox:1.0",
        &[],
    );
    let root = support::temp_root();
    let missing = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    for (image, code) in [
        ("rsafe/busybox:nope", "MANIFEST_UNKNOWN"),
        (
            &format!("rsafe/busybox@{missing}") as &str,
            "MANIFEST_UNKNOWN",
        ),
        ("rsafe/nothing:1", "MANIFEST_UNKNOWN"),
    ] {
        let out = support::rsafe(root.path())
            .args(["pull", &format!("{}/{image}", reg.host())])
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        let repo = image.split([':', '@']).next().unwrap();
        assert!(
            err.starts_with("rsafe: ")
                && err.contains(&format!("{}/{repo}", reg.host()))
                && err.contains("HTTP 404")
                && err.contains(code),
            "{err}"
        );
    }
}

#[test]
fn basic_auth_from_auth_files() {
    let (user, pass) = ("rsafe", "S3cret-basic-Pw");
    let Some(reg) = Registry::start(Auth::Htpasswd { user, pass }) else {
        return;
    };
    reg.push(
        &oci(&support::busybox_layout(), "latest"),
        "rsafe/busybox:1.0",
        &[],
    );
    let host = reg.host();
    let image = format!("{host}/rsafe/busybox:1.0");
    let home = tempfile::tempdir().unwrap();
    let secrets = [
        pass.to_string(),
        "Wrong-pw-123".to_string(),
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")),
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:Wrong-pw-123")),
    ];
    let no_secret = |text: &str| {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "a secret was printed: {text}");
        }
    };

    // No credentials anywhere: refused, and the error says where rsafe looked.
    let root = support::temp_root();
    let out = rsafe_clean(root.path(), home.path())
        .args(["pull", &image])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("UNAUTHORIZED") && err.contains("no credentials for") && err.contains(&host),
        "{err}"
    );

    // Wrong password: UNAUTHORIZED, the password never shown (not even with -v).
    let wrong = auth_file(home.path(), &host, user, "Wrong-pw-123");
    let out = rsafe_clean(root.path(), home.path())
        .args(["-v", "pull", "--authfile"])
        .arg(&wrong)
        .arg(&image)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(err.contains("UNAUTHORIZED") && err.contains("401"), "{err}");
    no_secret(&err);
    no_secret(&String::from_utf8_lossy(&out.stdout));
    assert!(refs(root.path()).is_empty());

    // Right password: from --authfile, from $REGISTRY_AUTH_FILE, from ~/.docker/config.json.
    let right = auth_file(home.path(), &host, user, pass);
    let out = rsafe_clean(root.path(), home.path())
        .args(["-v", "pull", "--authfile"])
        .arg(&right)
        .arg(&image)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("Basic") && err.contains(&right.display().to_string()),
        "{err}"
    );
    no_secret(&err);

    let root = support::temp_root();
    rsafe_clean(root.path(), home.path())
        .env("REGISTRY_AUTH_FILE", &right)
        .args(["pull", &image])
        .assert()
        .success();

    let root = support::temp_root();
    fs::create_dir_all(home.path().join(".docker")).unwrap();
    fs::copy(&right, home.path().join(".docker/config.json")).unwrap();
    rsafe_clean(root.path(), home.path())
        .args(["pull", &image])
        .assert()
        .success();
    assert_eq!(
        digest_named(root.path(), &image),
        reg.inspect_digest("rsafe/busybox:1.0")
    );
}

#[test]
fn bearer_tokens_anonymous_and_with_credentials() {
    let pusher = ("pusher", "Push-pw-41");
    // A public repository: anonymous callers may pull.
    let Some(public) = TokenServer::start(&[pusher], true) else {
        return;
    };
    let Some(reg) = Registry::start(Auth::Token {
        server: &public,
        pusher,
    }) else {
        return;
    };
    reg.push(
        &oci(&support::busybox_layout(), "latest"),
        "rsafe/busybox:1.0",
        &[],
    );
    let home = tempfile::tempdir().unwrap();
    public.clear();
    let root = support::temp_root();
    rsafe_clean(root.path(), home.path())
        .args(["pull", &format!("{}/rsafe/busybox:1.0", reg.host())])
        .assert()
        .success();
    let issued = public.issued();
    assert_eq!(
        issued.len(),
        1,
        "one token serves the whole pull: {issued:?}"
    );
    assert!(issued[0].granted && issued[0].user.is_none());
    assert_eq!(issued[0].scopes, vec!["repository:rsafe/busybox:pull"]);

    // A private repository: the token service wants a user name and password.
    let reader = ("reader", "Read-pw-77");
    let Some(private) = TokenServer::start(&[pusher, reader], false) else {
        return;
    };
    let Some(reg) = Registry::start(Auth::Token {
        server: &private,
        pusher,
    }) else {
        return;
    };
    reg.push(
        &oci(&support::busybox_layout(), "latest"),
        "rsafe/busybox:1.0",
        &[],
    );
    let image = format!("{}/rsafe/busybox:1.0", reg.host());
    let root = support::temp_root();

    let out = rsafe_clean(root.path(), home.path())
        .args(["pull", &image])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("token for repository:rsafe/busybox:pull")
            && err.contains("HTTP 401")
            && err.contains("no credentials for"),
        "{err}"
    );

    let wrong = auth_file(home.path(), &reg.host(), reader.0, "Not-the-pw-5");
    let out = rsafe_clean(root.path(), home.path())
        .args(["-v", "pull", "--authfile"])
        .arg(&wrong)
        .arg(&image)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("HTTP 401") && err.contains("incorrect username or password"),
        "{err}"
    );
    assert!(
        !err.contains("Not-the-pw-5") && !err.contains(reader.1),
        "{err}"
    );

    private.clear();
    let right = auth_file(home.path(), &reg.host(), reader.0, reader.1);
    let out = rsafe_clean(root.path(), home.path())
        .args(["-v", "pull", "--authfile"])
        .arg(&right)
        .arg(&image)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("Bearer") && err.contains(&private.realm()),
        "{err}"
    );
    assert!(!err.contains(reader.1), "{err}");
    let issued = private.issued();
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0].user.as_deref(), Some("reader"));
    assert_eq!(
        digest_named(root.path(), &image),
        reg.inspect_digest("rsafe/busybox:1.0")
    );
}

#[test]
fn redirected_blob_downloads_do_not_carry_credentials() {
    let (user, pass) = ("rsafe", "Redirect-pw-3");
    let Some(reg) = Registry::start(Auth::Htpasswd { user, pass }) else {
        return;
    };
    reg.push(
        &oci(&support::busybox_layout(), "latest"),
        "rsafe/busybox:1.0",
        &[],
    );
    let proxy = Proxy::start(reg.addr(), Tamper::RedirectBlobs);
    let home = tempfile::tempdir().unwrap();
    let creds = auth_file(home.path(), &proxy.host(), user, pass);
    let root = support::temp_root();
    let image = format!("{}/rsafe/busybox:1.0", proxy.host());
    let out = rsafe_clean(root.path(), home.path())
        .args(["pull", "--authfile"])
        .arg(&creds)
        .arg(&image)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let seen = proxy.seen();
    let at_registry: Vec<_> = seen
        .iter()
        .filter(|s| !s.at_storage && s.path.contains("/blobs/"))
        .collect();
    let at_storage: Vec<_> = seen.iter().filter(|s| s.at_storage).collect();
    assert_eq!(at_registry.len(), 2, "{seen:?}");
    assert!(at_registry.iter().all(|s| s.authorization), "{seen:?}");
    assert_eq!(at_storage.len(), 2, "{seen:?}");
    assert!(
        at_storage.iter().all(|s| !s.authorization),
        "Authorization leaked to the redirect target: {seen:?}"
    );
    assert_eq!(
        digest_named(root.path(), &image),
        reg.inspect_digest("rsafe/busybox:1.0")
    );
}

#[test]
fn platform_selection_from_an_index() {
    let Some(reg) = Registry::start(Auth::None) else {
        return;
    };
    let layout = busybox_multiarch_layout();
    reg.push(&oci(&layout, "multi"), "rsafe/multi:1", &["--all"]);
    let (index, _) = layout_entry(&layout, "multi");
    assert_eq!(
        reg.raw_digest("rsafe/multi:1"),
        index,
        "the registry keeps the index"
    );
    let (amd64, _) = layout_entry(&layout, "latest");
    let (arm64, _) = layout_entry(&layout, "arm64");
    let (native, other, other_platform) = match Platform::host().architecture.as_str() {
        "arm64" => (arm64, amd64, "linux/amd64"),
        _ => (amd64, arm64, "linux/arm64"),
    };
    let image = format!("{}/rsafe/multi:1", reg.host());

    let root = support::temp_root();
    support::rsafe(root.path())
        .args(["pull", &image])
        .assert()
        .success();
    assert_eq!(digest_named(root.path(), &image), native);
    assert!(!has_blob(root.path(), &other), "only the host's manifest");

    let root = support::temp_root();
    support::rsafe(root.path())
        .args(["pull", "--platform", other_platform, &image])
        .assert()
        .success();
    assert_eq!(digest_named(root.path(), &image), other);
    let store = Store::open(root.path()).unwrap();
    let opened = Image::open(&store, &image, &other_platform.parse().unwrap()).unwrap();
    assert_eq!(
        opened.config.architecture().to_string(),
        other_platform.trim_start_matches("linux/")
    );

    // By the index's digest: still the host's manifest.
    let root = support::temp_root();
    let pinned = format!("{}/rsafe/multi@{index}", reg.host());
    support::rsafe(root.path())
        .args(["pull", &pinned])
        .assert()
        .success();
    assert_eq!(digest_named(root.path(), &pinned), native);

    let out = support::rsafe(root.path())
        .args(["pull", "--platform", "linux/s390x", &image])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("linux/s390x") && err.contains("linux/amd64, linux/arm64"),
        "{err}"
    );

    // --all-platforms keeps the index and every image in it.
    let root = support::temp_root();
    support::rsafe(root.path())
        .args(["pull", "--all-platforms", &image])
        .assert()
        .success();
    assert_eq!(digest_named(root.path(), &image), index);
    assert!(has_blob(root.path(), &native) && has_blob(root.path(), &other));
    let store = Store::open(root.path()).unwrap();
    for platform in ["linux/amd64", "linux/arm64"] {
        Image::open(&store, &image, &platform.parse().unwrap()).unwrap();
    }
}

#[test]
fn rootless_pull_as_an_unprivileged_user() {
    let Some(reg) = Registry::start(Auth::None) else {
        return;
    };
    reg.push(
        &oci(&support::busybox_layout(), "latest"),
        "rsafe/busybox:1.0",
        &[],
    );
    let root = support::temp_root();
    // As root, switch to the test user; as anyone else, this run is rootless already.
    let (mut cmd, uid) = if support::is_root() {
        let Some(cmd) = support::rsafe_as_test_user(root.path()) else {
            support::have("the unprivileged test user", false);
            return;
        };
        (cmd, support::test_user().unwrap().0)
    } else {
        (
            support::rsafe(root.path()),
            rustix::process::geteuid().as_raw(),
        )
    };
    let image = format!("{}/rsafe/busybox:1.0", reg.host());
    cmd.args(["pull", &image]).assert().success();
    let expected = reg.inspect_digest("rsafe/busybox:1.0");
    assert_eq!(digest_named(root.path(), &image), expected);
    use std::os::unix::fs::MetadataExt;
    let blob = root
        .path()
        .join("blobs/sha256")
        .join(&expected["sha256:".len()..]);
    assert_eq!(fs::metadata(blob).unwrap().uid(), uid);
}

#[test]
fn https_registry_is_verified_against_its_ca() {
    let Some(ca) = support::registry::TestCa::new() else {
        return;
    };
    let Some(reg) = Registry::start_tls(Auth::None, &ca) else {
        return;
    };
    reg.push(
        &oci(&support::busybox_layout(), "latest"),
        "rsafe/busybox:1.0",
        &[],
    );
    let image = format!("{}/rsafe/busybox:1.0", reg.host());

    // The built-in roots do not know the test CA: refused (and plain HTTP does not answer).
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args(["pull", &image])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("https:") && err.contains("UnknownIssuer"),
        "{err}"
    );
    assert!(refs(root.path()).is_empty());

    let out = support::rsafe(root.path())
        .args(["-v", "pull", "--cert-dir"])
        .arg(ca.ca_dir())
        .arg(&image)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("registry answered at https://{}", reg.host()))
            && err.contains("ca.crt"),
        "{err}"
    );
    assert_eq!(
        digest_named(root.path(), &image),
        reg.inspect_digest("rsafe/busybox:1.0")
    );
}

/// Pulls `name` from a lying registry into a fresh store, expects a failure told in one
/// `rsafe: ` line holding every piece of `said`, and nothing kept: no name, nothing in `tmp/`,
/// and no blob but whole ones fetched beside the bad one (`bad`, never kept), which gc removes.
fn refused_leaving_nothing(name: &str, said: &[&str], bad: Option<&str>) {
    let root = support::temp_root();
    let out = support::rsafe(root.path())
        .args(["pull", name])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("rsafe: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    for piece in said {
        assert!(err.contains(piece), "no {piece:?} in {err}");
    }
    assert!(refs(root.path()).is_empty());
    assert!(tmp_is_empty(root.path()), "{err}");
    let blobs: Vec<String> = fs::read_dir(root.path().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    match bad {
        None => assert!(blobs.is_empty(), "{blobs:?}"),
        Some(bad) => {
            assert!(!has_blob(root.path(), bad), "{blobs:?}");
            for blob in &blobs {
                let bytes = fs::read(root.path().join("blobs/sha256").join(blob)).unwrap();
                assert_eq!(support::registry::sha256(&bytes), format!("sha256:{blob}"));
            }
        }
    }
}

/// A manifest one byte past the 8 MiB limit is refused, announced by its `Content-Length`
/// (before a byte of it is read) or not (once the limit is reached), and a registry that
/// redirects a manifest to itself is given up after five hops: one line each, nothing kept.
#[test]
fn oversized_manifests_and_redirect_loops_are_refused_leaving_nothing() {
    let Some(reg) = Registry::start(Auth::None) else {
        return;
    };
    reg.push(
        &oci(&support::busybox_layout(), "latest"),
        "rsafe/busybox:1.0",
        &[],
    );
    for announced in [true, false] {
        let proxy = Proxy::start(reg.addr(), Tamper::HugeManifest { announced });
        let name = format!("{}/rsafe/busybox:1.0", proxy.host());
        refused_leaving_nothing(
            &name,
            &["manifest 1.0", "past the 8388608 allowed for a manifest"],
            None,
        );
    }
    let proxy = Proxy::start(reg.addr(), Tamper::RedirectLoop);
    let name = format!("{}/rsafe/busybox:1.0", proxy.host());
    refused_leaving_nothing(&name, &["manifest 1.0", "more than 5 redirects"], None);
    let manifest_gets = proxy
        .seen()
        .iter()
        .filter(|s| s.path.contains("/manifests/"))
        .count();
    assert_eq!(manifest_gets, 6, "{:?}", proxy.seen());
}

/// A blob sent without a length that never ends is cut off past the size its manifest gives,
/// in one line saying so; nothing is kept and the disk is not filled.
#[test]
fn an_endless_blob_is_cut_at_its_size_leaving_nothing() {
    let Some(reg) = Registry::start(Auth::None) else {
        return;
    };
    let layout = support::busybox_layout();
    reg.push(&oci(&layout, "latest"), "rsafe/busybox:1.0", &[]);
    let layer = layout_layers(&layout, "latest")[0].clone();
    let proxy = Proxy::start(reg.addr(), Tamper::EndlessBlob(layer.clone()));
    let name = format!("{}/rsafe/busybox:1.0", proxy.host());
    refused_leaving_nothing(&name, &[&layer, "more than the"], Some(&layer));
}
