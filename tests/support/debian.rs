//! A real Debian bookworm minbase image, as an OCI layout, for the tests that must show rsafe
//! works on an ordinary distribution image and not only on busybox.
//!
//! Built by real tools: `mmdebstrap --variant=minbase` (from the host's Debian mirror) writes
//! the root filesystem as a tar, `umoci raw add-layer` makes it the image's one gzip layer, and
//! `umoci config` gives it the usual `Cmd ["/bin/bash"]` and `PATH`. Device nodes are left out
//! of the layer (as the official `debian` images do): a container gets its `/dev` from the
//! runtime.
//!
//! The build takes about a minute and downloads ~40 MB, so the layout is cached OUTSIDE the
//! checkout and the build directory, where repeated `cargo test` runs and repeated CI runs on
//! the same machine find it: `$RSAFE_TEST_CACHE` or `/var/cache/rsafe-test` (root), else
//! `~/.cache/rsafe-test`. It is built into a temporary directory beside its final place and
//! renamed into place whole, under an exclusive lock (test binaries run in parallel), and is
//! world-readable so that the unprivileged test user can load it. The directory's name carries
//! a recipe version: change the recipe, bump [`RECIPE`].
//!
//! `SOURCE_DATE_EPOCH` is fixed, so with the same mirror content the layer is the same bytes.
//!
//! A second recipe, [`debian_python3_layout`], is the same with Debian's `python3` included
//! (for workloads minbase has no program for: `python3 -m http.server`), cached the same way.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{CREATED, SOURCE_DATE_EPOCH, have, is_root, required, sh, tool};

/// The recipe's name and version: the cache directory's name.
pub const RECIPE: &str = "debian-bookworm-minbase-v1";
/// The layout's one tag.
pub const TAG: &str = "bookworm";
/// The `created_by` of the image's one layer.
pub const LAYER_CREATED_BY: &str = "mmdebstrap --variant=minbase bookworm";
/// The image's PATH (that of the official `debian` images).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where cached test images live across test runs.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("RSAFE_TEST_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if is_root() {
        return PathBuf::from("/var/cache/rsafe-test");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/rsafe-test")
}

/// The Debian archive the host's apt uses (from `/etc/apt/sources.list` and the `.list` and
/// `.sources` files beside it): the only place the network of a CI machine may reach.
pub fn host_mirror() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    files
        .iter()
        .filter_map(|f| fs::read_to_string(f).ok())
        .flat_map(|text| mirror_uris(&text))
        .find(|uri| uri.trim_end_matches('/').ends_with("/debian"))
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_string())
}

/// The URIs of `deb` lines (one-line format) and `URIs:` fields (deb822 format) in `text`.
fn mirror_uris(text: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("deb ") {
            // `deb [options] URI suite components`
            let rest = match rest.trim_start().strip_prefix('[') {
                Some(opts) => opts.split_once(']').map_or("", |(_, r)| r),
                None => rest,
            };
            uris.extend(rest.split_whitespace().next().map(str::to_string));
        } else if let Some(rest) = line.strip_prefix("URIs:") {
            uris.extend(rest.split_whitespace().map(str::to_string));
        }
    }
    uris
}

/// The OCI layout of Debian bookworm minbase (tag [`TAG`]), built once per machine. None (the
/// test skips) when mmdebstrap, umoci or the mirror is missing and the run does not require
/// them; with `RSAFE_TEST_REQUIRE=1` a missing tool or a failed build fails the test.
pub fn debian_minbase_layout() -> Option<PathBuf> {
    static ONCE: OnceLock<Option<PathBuf>> = OnceLock::new();
    ONCE.get_or_init(|| {
        cached_layout(RECIPE, "the Debian minbase image", |work| {
            build(work, &[], LAYER_CREATED_BY, "rsafe-test-debian-minbase")
        })
    })
    .clone()
}

/// The layout of `recipe` in [`cache_root`], made by `build` (into `work/oci`) when it is not
/// there yet, under an exclusive lock, and renamed into place whole.
fn cached_layout(
    recipe: &str,
    what: &str,
    build: impl FnOnce(&Path) -> Result<(), String>,
) -> Option<PathBuf> {
    if !have("mmdebstrap", tool("mmdebstrap")) || !have("umoci", tool("umoci")) {
        return None;
    }
    let root = cache_root();
    let layout = root.join(recipe);
    if layout.join("index.json").exists() {
        return Some(layout);
    }
    fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    sh(Command::new("chmod").arg("755").arg(&root));
    let lock = File::create(root.join(format!(".{recipe}.lock"))).unwrap();
    lock.lock().unwrap();
    if layout.join("index.json").exists() {
        return Some(layout);
    }
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{recipe}.tmp-"))
        .tempdir_in(&root)
        .unwrap();
    let started = std::time::Instant::now();
    match build(tmp.path()) {
        Ok(()) => {}
        Err(why) if !required() => {
            eprintln!("skipping: cannot build {what}: {why}");
            return None;
        }
        Err(why) => panic!("cannot build {what} (RSAFE_TEST_REQUIRE=1): {why}"),
    }
    let built = tmp.path().join("oci");
    sh(Command::new("chmod").args(["-R", "a+rX"]).arg(&built));
    fs::rename(&built, &layout).unwrap();
    eprintln!(
        "built {} in {:.1} s",
        layout.display(),
        started.elapsed().as_secs_f64()
    );
    Some(layout)
}

/// `oci-layout-path:tag` of [`debian_minbase_layout`], as `rsafe load/run/audit` take it.
pub fn debian_minbase_image() -> Option<String> {
    debian_minbase_layout().map(|l| format!("{}:{TAG}", l.display()))
}

/// The recipe of [`debian_python3_layout`] (its cache directory's name).
pub const PYTHON3_RECIPE: &str = "debian-bookworm-python3-v1";
/// The `created_by` of its one layer.
pub const PYTHON3_CREATED_BY: &str = "mmdebstrap --variant=minbase --include=python3 bookworm";

/// Debian bookworm minbase with Debian's `python3` (the interpreter and its standard library:
/// `http.server` is not in `python3-minimal`), tag [`TAG`], for workloads the minbase image
/// has no program for. Built like [`debian_minbase_layout`], by mmdebstrap with
/// `--include=python3`: apt resolves the dependencies and dpkg installs them and runs their
/// maintainer scripts, as `apt-get install python3` in a Dockerfile would; one layer (mmdebstrap
/// writes a whole root filesystem, not a layer on top of another). Cached beside it; ~30 MB
/// more to download.
pub fn debian_python3_layout() -> Option<PathBuf> {
    static ONCE: OnceLock<Option<PathBuf>> = OnceLock::new();
    ONCE.get_or_init(|| {
        cached_layout(PYTHON3_RECIPE, "the Debian python3 image", |work| {
            build(
                work,
                &["--include=python3"],
                PYTHON3_CREATED_BY,
                "rsafe-test-debian-python3",
            )
        })
    })
    .clone()
}

/// `oci-layout-path:tag` of [`debian_python3_layout`].
pub fn debian_python3_image() -> Option<String> {
    debian_python3_layout().map(|l| format!("{}:{TAG}", l.display()))
}

/// Runs `cmd`; Err with its output when it cannot run or fails.
fn try_sh(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Builds the layout into `work/oci` (mmdebstrap's tar is made and dropped in `work`), with
/// `extra` mmdebstrap options (`--include=…`), the layer's `created_by` and the image's title.
fn build(work: &Path, extra: &[&str], created_by: &str, title: &str) -> Result<(), String> {
    let tar = work.join("rootfs.tar");
    let mode = if is_root() { "root" } else { "unshare" };
    // resolv.conf and hostname are the host's: not part of an image, and they would make the
    // layer differ between machines.
    try_sh(
        Command::new("mmdebstrap")
            .args(["--variant=minbase", "--format=tar", "--quiet"])
            .args(extra)
            .arg(format!("--mode={mode}"))
            .arg("--customize-hook=rm -f \"$1\"/etc/resolv.conf \"$1\"/etc/hostname")
            .arg("bookworm")
            .arg(&tar)
            .arg(host_mirror()),
    )?;
    // Device nodes are the runtime's business; keep the empty /dev directory.
    try_sh(
        Command::new("tar")
            .args(["--delete", "--wildcards", "-f"])
            .arg(&tar)
            .arg("./dev/?*"),
    )?;
    let layout = work.join("oci");
    let image = format!("{}:{TAG}", layout.display());
    try_sh(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    )?;
    try_sh(Command::new("umoci").args(["new", "--image", &image]))?;
    try_sh(
        Command::new("umoci")
            .args(["raw", "add-layer", "--image", &image])
            .args(["--history.created", CREATED])
            .args(["--history.created_by", created_by])
            .arg(&tar),
    )?;
    try_sh(
        Command::new("umoci")
            .args(["config", "--image", &image])
            .args(["--created", CREATED, "--history.created", CREATED])
            .args(["--history.created_by", "CMD [\"/bin/bash\"]"])
            .args(["--config.cmd", "/bin/bash"])
            .args(["--config.env", &format!("PATH={PATH}")])
            .args([
                "--config.label",
                &format!("org.opencontainers.image.title={title}"),
            ]),
    )?;
    try_sh(Command::new("umoci").args(["gc", "--layout"]).arg(&layout))?;
    fs::remove_file(&tar).map_err(|e| format!("{}: {e}", tar.display()))
}

/// A synthetic AWS access key id planted in [`debian_leaky_layout`] (not AWS's documented
/// example, which the rules allow).
pub const LEAKED_KEY_ID: &str = "AKIAZ7RSAFEDEB3NQ5VW";
/// The synthetic secret access key beside it.
pub const LEAKED_SECRET: &str = "Wn4tRsAfEdEb9kX2vL7pQ3mZ8cB5yH1jF6gD0sKa";
/// The planted file.
pub const LEAKED_PATH: &str = "/root/.aws/credentials";
/// History of the layer that adds it, and of the one that deletes it.
pub const LEAK_CREATED_BY: &str = "COPY credentials /root/.aws/credentials";
pub const UNLEAK_CREATED_BY: &str = "RUN rm /root/.aws/credentials";

/// The mistake the auditor exists for, on a real base: tag `leaky` is the Debian minbase layer,
/// then a layer adding `/root/.aws/credentials` with an access key, then a layer deleting it
/// again with a whiteout (`root/.aws/.wh.credentials`). The final filesystem has no secret; the
/// image still ships it in layer 2. Both layers are written by code and added with
/// `umoci raw add-layer`. Built per test run under the fixture dir, on a copy of the cached
/// base.
pub fn debian_leaky_layout() -> Option<PathBuf> {
    static ONCE: OnceLock<Option<PathBuf>> = OnceLock::new();
    ONCE.get_or_init(|| {
        let base = debian_minbase_layout()?;
        // Keyed by the base image too: a rebuilt base makes a new leaky image.
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(base.join("index.json")).unwrap()).unwrap();
        let digest = index["manifests"][0]["digest"].as_str().unwrap();
        let key = &digest.trim_start_matches("sha256:")[..12];
        Some(super::fixture(&format!("{RECIPE}-leaky-{key}"), |l| {
            sh(Command::new("cp").arg("-a").arg(&base).arg(l));
            let work = tempfile::tempdir().unwrap();
            let add = work.path().join("add.tar");
            let credentials = format!(
                "[default]\naws_access_key_id = {LEAKED_KEY_ID}\naws_secret_access_key = {LEAKED_SECRET}\n"
            );
            write_layer(
                &add,
                &[
                    ("root/.aws/", None, 0o700),
                    ("root/.aws/credentials", Some(credentials.as_bytes()), 0o600),
                ],
            );
            let delete = work.path().join("delete.tar");
            write_layer(
                &delete,
                &[
                    ("root/.aws/", None, 0o700),
                    ("root/.aws/.wh.credentials", Some(&b""[..]), 0o600),
                ],
            );
            let image = |t: &str| format!("{}:{t}", l.display());
            sh(Command::new("umoci")
                .args(["raw", "add-layer", "--image", &image(TAG), "--tag", "leaky"])
                .args(["--history.created", CREATED])
                .args(["--history.created_by", LEAK_CREATED_BY])
                .arg(&add));
            sh(Command::new("umoci")
                .args(["raw", "add-layer", "--image", &image("leaky")])
                .args(["--history.created", CREATED])
                .args(["--history.created_by", UNLEAK_CREATED_BY])
                .arg(&delete));
            sh(Command::new("umoci").args(["gc", "--layout"]).arg(l));
        }))
    })
    .clone()
}

/// The device nodes, directories and links `mmdebstrap` puts in `/dev` of a minbase root
/// filesystem (what [`debian_minbase_layout`] leaves out): what a Debian image built by a tool
/// that keeps them carries.
const MMDEBSTRAP_DEV: &[(&str, u32, u32)] = &[
    ("dev/console", 5, 1),
    ("dev/full", 1, 7),
    ("dev/null", 1, 3),
    ("dev/ptmx", 5, 2),
    ("dev/random", 1, 8),
    ("dev/tty", 5, 0),
    ("dev/urandom", 1, 9),
    ("dev/zero", 1, 5),
];

/// Tag `devices`: the Debian minbase image plus a layer with `/dev` as mmdebstrap writes it
/// (character devices, `pts/` and `shm/`, the `fd` and `std*` links), written by code and
/// added with `umoci raw add-layer`. An unprivileged user can make none of those devices.
pub fn debian_with_devices_image() -> Option<String> {
    static ONCE: OnceLock<Option<PathBuf>> = OnceLock::new();
    let layout = ONCE.get_or_init(|| {
        let base = debian_minbase_layout()?;
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(base.join("index.json")).unwrap()).unwrap();
        let digest = index["manifests"][0]["digest"].as_str().unwrap();
        let key = &digest.trim_start_matches("sha256:")[..12];
        Some(super::fixture(&format!("{RECIPE}-devices-{key}"), |l| {
            sh(Command::new("cp").arg("-a").arg(&base).arg(l));
            let work = tempfile::tempdir().unwrap();
            let layer = work.path().join("dev.tar");
            write_dev_layer(&layer);
            sh(Command::new("umoci")
                .args(["raw", "add-layer", "--image"])
                .arg(format!("{}:{TAG}", l.display()))
                .args(["--tag", "devices"])
                .args(["--history.created", CREATED])
                .args(["--history.created_by", "mmdebstrap /dev"])
                .arg(&layer));
            sh(Command::new("umoci").args(["gc", "--layout"]).arg(l));
        }))
    });
    layout.as_ref().map(|l| format!("{}:devices", l.display()))
}

/// [`MMDEBSTRAP_DEV`] as a layer tar, with mmdebstrap's modes and owners (`tty` group 5 on
/// the terminals).
fn write_dev_layer(dest: &Path) {
    let header = |path: &str, kind: tar::EntryType, mode: u32, gid: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(gid);
        h.set_size(0);
        h.set_mtime(SOURCE_DATE_EPOCH.parse().unwrap());
        h
    };
    let mut entries = vec![
        header("dev/", tar::EntryType::Directory, 0o755, 0),
        header("dev/pts/", tar::EntryType::Directory, 0o755, 0),
        header("dev/shm/", tar::EntryType::Directory, 0o1777, 0),
    ];
    for (link, target) in [
        ("dev/fd", "/proc/self/fd"),
        ("dev/stdin", "/proc/self/fd/0"),
        ("dev/stdout", "/proc/self/fd/1"),
        ("dev/stderr", "/proc/self/fd/2"),
    ] {
        let mut h = header(link, tar::EntryType::Symlink, 0o777, 0);
        h.set_link_name(target).unwrap();
        entries.push(h);
    }
    for (path, major, minor) in MMDEBSTRAP_DEV {
        let terminal = matches!(*path, "dev/console" | "dev/ptmx" | "dev/tty");
        let mut h = header(
            path,
            tar::EntryType::Char,
            0o666,
            if terminal { 5 } else { 0 },
        );
        h.set_device_major(*major).unwrap();
        h.set_device_minor(*minor).unwrap();
        entries.push(h);
    }
    let mut tar = tar::Builder::new(File::create(dest).unwrap());
    for mut h in entries {
        h.set_cksum();
        tar.append(&h, std::io::empty()).unwrap();
    }
    tar.finish().unwrap();
}

/// Writes an uncompressed layer tar of `(path, contents, mode)` entries: a directory when
/// `contents` is None (paths ending in `/`), else a regular file. Owned by root, fixed times.
fn write_layer(dest: &Path, entries: &[(&str, Option<&[u8]>, u32)]) {
    let mut tar = tar::Builder::new(File::create(dest).unwrap());
    for (path, contents, mode) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_path(path).unwrap();
        header.set_mode(*mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(SOURCE_DATE_EPOCH.parse().unwrap());
        match contents {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_cksum();
                tar.append(&header, std::io::empty()).unwrap();
            }
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                header.set_cksum();
                tar.append(&header, *data).unwrap();
            }
        }
    }
    tar.finish().unwrap();
}
