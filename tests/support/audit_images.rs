//! Images for the audit tests, in one OCI layout built by umoci on top of the busybox fixture:
//!
//! | tag       | layers (1-based)                                                              |
//! |-----------|-------------------------------------------------------------------------------|
//! | `leaky`   | 1 busybox · 2 adds /root/.aws/credentials and /root/.ssh/id_rsa · 3 deletes them; Env GITHUB_TOKEN, history with an NPM_TOKEN build arg |
//! | `clean`   | the same steps with a harmless file and harmless config                        |
//! | `risky`   | 1 busybox · 2 a setuid-root copy of busybox, a world-writable dir, `/data -> ../../../../etc` declared as a VOLUME; User root |
//! | `crafted` | 1 busybox · 2 a layer no builder writes (added with `umoci raw add-layer`): `../evil`, /dev/mem, a file with cap_sys_admin, a hard link into layer 1 |
//!
//! [`app_dirs_layout`] is a separate layout (tag `latest`): busybox · 2 the user's files under
//! /usr (`/usr/src/app/{.env,config.py,deploy/id_rsa}`, `/usr/local/bin/deploy.sh`) next to a vendored package under
//! /usr/lib that holds look-alike secrets.
//!
//! The secrets are synthetic: random, valid-looking, belonging to nobody.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{CREATED, busybox_layout, fixture, is_root, sh, tool};

/// A synthetic AWS access key id (the form the secret rules recognise).
pub const AWS_KEY_ID: &str = "AKIA4RSAFEQ7XKZP2M3J";
/// A synthetic AWS secret access key.
pub const AWS_SECRET: &str = "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";
/// A synthetic GitHub token, set in the leaky image's Env.
pub const GITHUB_TOKEN: &str = "ghp_R7sAfE3xQ9mZ2kL8vB4nC6wD1yH5tJ0pU7gF";
/// A synthetic npm token, recorded as a build arg in the leaky image's history.
pub const NPM_TOKEN: &str = "npm_Xq7RsAfE2mZ9kL3vB8nC4wD6yH1tJ5pU0gFa";
/// The body of the synthetic RSA key planted as /root/.ssh/id_rsa.
pub const RSA_KEY_BODY: &str = "MIIEowIBAAKCAQEAu7RsAfEq3Zk9vN1xR7tW2yL9pB4mC6fH0jD5sG8aE1uK7oQx\n\
    Qm4Lr2Tn8Vb1Wc5Xd3Ye6Zf9Ag2Bh4Ci7Dj0Ek3Fl6Gm9Hn2Io5Jp8Kq1Lr4Ms7Nt\n\
    0Ou3Pv6Qw9Rx2Sy5Tz8Ua1Vb4Wc7Xd0Ye3Zf6Ag9Bh2Ci5Dj8Ek1Fl4Gm7Hn0Io3Jp\n";

/// Every secret value planted in the fixtures: none may ever be printed in full.
pub fn planted_secrets() -> Vec<&'static str> {
    vec![AWS_KEY_ID, AWS_SECRET, GITHUB_TOKEN, NPM_TOKEN]
}

fn umoci(args: &[&str]) -> Command {
    let mut c = Command::new("umoci");
    c.args(args);
    c
}

/// Unpacks `layout:from`, lets `edit` change the root filesystem, and commits the change as one
/// new layer tagged `to`, with `created_by` as its history.
fn layer_step(layout: &Path, from: &str, to: &str, created_by: &str, edit: impl FnOnce(&Path)) {
    let image = |t: &str| format!("{}:{t}", layout.display());
    if from != to {
        sh(&mut umoci(&["tag", "--image", &image(from), to]));
    }
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle");
    let mut unpack = umoci(&["unpack", "--image", &image(to)]);
    if !is_root() {
        unpack.arg("--rootless");
    }
    sh(unpack.arg(&bundle));
    edit(&bundle.join("rootfs"));
    sh(umoci(&["repack", "--image", &image(to)])
        .args([
            "--history.created",
            CREATED,
            "--history.created_by",
            created_by,
        ])
        .arg(&bundle));
}

fn config(layout: &Path, tag: &str, args: &[&str]) {
    sh(
        umoci(&["config", "--image", &format!("{}:{tag}", layout.display())])
            .args(["--created", CREATED, "--history.created", CREATED])
            .args(args),
    );
}

fn chmod(mode: &str, path: &Path) {
    sh(Command::new("chmod").arg(mode).arg(path));
}

/// A tar member header with a raw name (the tar crate refuses to write `..` through its API).
fn raw_header(name: &[u8], kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

/// The crafted layer: what no builder writes but a hostile image can carry.
fn crafted_layer(dest: &Path) {
    let busybox = fs::read("/bin/busybox").unwrap();
    let mut b = tar::Builder::new(fs::File::create(dest).unwrap());
    // A member that climbs out of the root.
    let evil = b"escaped the root\n";
    b.append(
        &raw_header(
            b"../evil",
            tar::EntryType::Regular,
            0o644,
            evil.len() as u64,
        ),
        &evil[..],
    )
    .unwrap();
    // /dev/mem: kernel memory.
    let mut mem = raw_header(b"dev/mem", tar::EntryType::Char, 0o640, 0);
    mem.set_device_major(1).unwrap();
    mem.set_device_minor(1).unwrap();
    mem.set_cksum();
    b.append(&mem, &[][..]).unwrap();
    // A binary with file capabilities: vfs_cap_data v2, effective, permitted = cap_sys_admin.
    let mut cap = Vec::new();
    for w in [0x0200_0001u32, 1 << 21, 0, 0, 0] {
        cap.extend_from_slice(&w.to_le_bytes());
    }
    b.append_pax_extensions([("SCHILY.xattr.security.capability", &cap[..])])
        .unwrap();
    b.append(
        &raw_header(
            b"usr/bin/netadmin",
            tar::EntryType::Regular,
            0o755,
            busybox.len() as u64,
        ),
        &busybox[..],
    )
    .unwrap();
    // A hard link to a file of layer 1.
    let mut link = raw_header(b"usr/bin/sh-hard", tar::EntryType::Link, 0o755, 0);
    link.set_link_name("bin/busybox").unwrap();
    link.set_cksum();
    b.append(&link, &[][..]).unwrap();
    b.finish().unwrap();
}

/// The audit fixture layout (see the module docs for its tags).
pub fn audit_layout() -> PathBuf {
    static ONCE: OnceLock<PathBuf> = OnceLock::new();
    ONCE.get_or_init(|| {
        let base = busybox_layout();
        fixture("oci-audit", |l| {
            assert!(tool("umoci"), "umoci is required (apt-get install umoci)");
            sh(Command::new("cp").arg("-a").arg(&base).arg(l));

            // leaky: secrets added in layer 2, deleted in layer 3, more in the config.
            layer_step(l, "latest", "leaky", "COPY credentials id_rsa /root/", |r| {
                fs::create_dir_all(r.join("root/.aws")).unwrap();
                fs::create_dir_all(r.join("root/.ssh")).unwrap();
                fs::write(
                    r.join("root/.aws/credentials"),
                    format!(
                        "[default]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n"
                    ),
                )
                .unwrap();
                fs::write(
                    r.join("root/.ssh/id_rsa"),
                    format!(
                        "-----BEGIN RSA PRIVATE KEY-----\n{RSA_KEY_BODY}-----END RSA PRIVATE KEY-----\n"
                    ),
                )
                .unwrap();
                chmod("600", &r.join("root/.ssh/id_rsa"));
            });
            layer_step(
                l,
                "leaky",
                "leaky",
                "RUN rm -rf /root/.aws /root/.ssh/id_rsa",
                |r| {
                    fs::remove_dir_all(r.join("root/.aws")).unwrap();
                    fs::remove_file(r.join("root/.ssh/id_rsa")).unwrap();
                },
            );
            config(
                l,
                "leaky",
                &[
                    "--config.env",
                    &format!("GITHUB_TOKEN={GITHUB_TOKEN}"),
                    "--history.created_by",
                    &format!("|1 NPM_TOKEN={NPM_TOKEN} /bin/sh -c npm ci"),
                ],
            );

            // clean: the same shape, nothing secret.
            layer_step(l, "latest", "clean", "COPY notes.txt /root/", |r| {
                fs::write(r.join("root/notes.txt"), "nothing to see here\n").unwrap();
            });
            layer_step(l, "clean", "clean", "RUN rm /root/notes.txt", |r| {
                fs::remove_file(r.join("root/notes.txt")).unwrap();
            });
            config(
                l,
                "clean",
                &[
                    "--config.env",
                    "GREETING=hello",
                    "--history.created_by",
                    "|1 VERSION=1.2.3 /bin/sh -c make",
                ],
            );

            // risky: privilege and traversal on the final file system.
            layer_step(
                l,
                "latest",
                "risky",
                "COPY helper /usr/local/bin/ && mkdir /srv/drop && ln -s ../../../../etc /data",
                |r| {
                    fs::create_dir_all(r.join("usr/local/bin")).unwrap();
                    fs::copy("/bin/busybox", r.join("usr/local/bin/helper")).unwrap();
                    chmod("4755", &r.join("usr/local/bin/helper"));
                    fs::create_dir_all(r.join("srv/drop")).unwrap();
                    chmod("0777", &r.join("srv/drop"));
                    std::os::unix::fs::symlink("../../../../etc", r.join("data")).unwrap();
                },
            );
            config(
                l,
                "risky",
                &["--config.volume", "/data", "--config.user", "root"],
            );

            // crafted: a layer written by hand.
            let work = tempfile::tempdir().unwrap();
            let layer = work.path().join("crafted.tar");
            crafted_layer(&layer);
            sh(umoci(&[
                "raw",
                "add-layer",
                "--image",
                &format!("{}:latest", l.display()),
                "--tag",
                "crafted",
                "--history.created",
                CREATED,
                "--history.created_by",
                "ADD crafted.tar /",
            ])
            .arg(&layer));
            sh(umoci(&["gc", "--layout"]).arg(l));
        })
    })
    .clone()
}

/// A password for a database that does not exist, in the app-dirs image's deploy script.
pub const DEPLOY_PASSWORD: &str = "Vb7qRsAfE2mZ9kLx";

/// An image whose app lives where official images put it (/usr/src/app, the node and python
/// WORKDIR) and in /usr/local, beside a distribution package with look-alike secrets: the first
/// must be reported, the second must not. Built by umoci on a copy of the busybox layout.
pub fn app_dirs_layout() -> PathBuf {
    static ONCE: OnceLock<PathBuf> = OnceLock::new();
    ONCE.get_or_init(|| {
        let base = busybox_layout();
        fixture("oci-audit-appdirs", |l| {
            assert!(tool("umoci"), "umoci is required (apt-get install umoci)");
            sh(Command::new("cp").arg("-a").arg(&base).arg(l));
            layer_step(l, "latest", "latest", "COPY . /usr/src/app", |r| {
                let app = r.join("usr/src/app");
                fs::create_dir_all(&app).unwrap();
                fs::write(
                    app.join(".env"),
                    format!(
                        "# production\nAWS_ACCESS_KEY_ID={AWS_KEY_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"
                    ),
                )
                .unwrap();
                fs::write(
                    app.join("config.py"),
                    format!("DB_PASSWORD = '{DEPLOY_PASSWORD}'\n"),
                )
                .unwrap();
                fs::create_dir_all(app.join("deploy")).unwrap();
                fs::write(
                    app.join("deploy/id_rsa"),
                    format!(
                        "-----BEGIN RSA PRIVATE KEY-----\n{RSA_KEY_BODY}-----END RSA PRIVATE KEY-----\n"
                    ),
                )
                .unwrap();
                let bin = r.join("usr/local/bin");
                fs::create_dir_all(&bin).unwrap();
                fs::write(
                    bin.join("deploy.sh"),
                    format!("#!/bin/sh\nexport DB_PASSWORD='{DEPLOY_PASSWORD}'\nexec app\n"),
                )
                .unwrap();
                let pkg = r.join("usr/lib/python3/dist-packages/pkg");
                fs::create_dir_all(&pkg).unwrap();
                fs::write(
                    pkg.join("settings.py"),
                    format!("DB_PASSWORD = '{DEPLOY_PASSWORD}'\n"),
                )
                .unwrap();
            });
            sh(umoci(&["gc", "--layout"]).arg(l));
        })
    })
    .clone()
}

/// `oci:<audit layout>:<tag>`-style target argument for `rsafe audit`.
pub fn target(tag: &str) -> String {
    format!("{}:{tag}", audit_layout().display())
}

/// The `leaky` image as a `docker save` tarball (skopeo `docker-archive:`), tagged
/// `rsafe/leaky:1.0`.
pub fn leaky_docker_archive() -> PathBuf {
    super::convert_layout(
        &audit_layout(),
        "leaky",
        "docker-archive",
        "leaky.tar",
        ":rsafe/leaky:1.0",
    )
}
