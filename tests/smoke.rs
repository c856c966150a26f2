//! The fixture builders themselves work (and the binary starts).
mod support;

#[test]
fn version_and_help() {
    let root = support::temp_root();
    support::rsafe(root.path())
        .arg("--version")
        .assert()
        .success();
}

#[test]
fn busybox_fixtures_build() {
    if !support::have(
        "umoci and skopeo",
        support::tool("umoci") && support::tool("skopeo"),
    ) {
        return;
    }
    let layout = support::busybox_layout();
    assert!(layout.join("index.json").is_file());
    assert!(support::busybox_docker_archive().is_file());
    assert!(support::busybox_oci_archive().is_file());
}
