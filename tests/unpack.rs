//! `rsafe unpack` and the extracted-layer cache, on real images (busybox built by umoci) and on
//! layers crafted byte by byte (`support/hostile_layers.rs`): the flattened tree matches umoci's,
//! whiteouts/opaque directories/hard links come out right, the cached layers stacked by a real
//! overlayfs mount (root and unprivileged, in a user namespace) show the same tree, and every
//! hostile layer is refused with one line naming layer, entry and problem while nothing outside
//! the target changes.
//!
//! Runs as root (CI); the rootless cases run rsafe as the unprivileged `rsafe-test` user.
#[path = "support/hostile_layers.rs"]
mod hostile_layers;
mod support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use hostile_layers::{Compress, Tar, put_image};
use rsafe::image::unpack::{LayerCache, Limits, Ownership};
use rsafe::image::{Image, Platform, Store};

/// `find` output for a tree: path, type, mode, and size for files / target for symlinks.
/// Directory sizes are left out (they depend on the filesystem).
fn listing(dir: &Path, owners_and_times: bool) -> Vec<String> {
    let extra = if owners_and_times { "|%U:%G|%T@" } else { "" };
    let out = support::sh(
        Command::new("find")
            .arg(".")
            .args(["(", "-type", "f", "-printf"])
            .arg(format!("%p|f|%m|%s{extra}|%n\\n"))
            .args([")", "-o", "(", "-type", "l", "-printf"])
            .arg(format!("%p|l|%l{extra}\\n"))
            .args([")", "-o", "-printf"])
            .arg(format!("%p|%y|%m{extra}\\n"))
            .current_dir(dir),
    );
    sorted(out.lines())
}

/// Lines in a stable order (for comparing listings with expected trees).
fn sorted<S: ToString>(lines: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut lines: Vec<String> = lines.into_iter().map(|l| l.to_string()).collect();
    lines.sort();
    lines
}

/// A scratch directory with a canary file, where the unpack target lives: a hostile layer that
/// escaped would show up in [`World::snapshot`].
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("rsafe-world-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        fs::write(dir.path().join("canary"), b"canary").unwrap();
        World { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn abs(&self, name: &str) -> String {
        self.path().join(name).display().to_string()
    }

    fn target(&self) -> PathBuf {
        self.path().join("target")
    }

    /// Everything in the world except the target, with file contents.
    fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in walkdir::WalkDir::new(self.path()).sort_by_file_name() {
            let e = e.unwrap();
            if e.path().starts_with(self.target()) {
                continue;
            }
            let content = if e.file_type().is_file() {
                String::from_utf8_lossy(&fs::read(e.path()).unwrap()).into_owned()
            } else {
                String::new()
            };
            out.push(format!(
                "{} {:?} {content}",
                e.path().display(),
                e.file_type()
            ));
        }
        out
    }
}

fn gzip(layers: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Compress)> {
    layers.into_iter().map(|l| (l, Compress::Gzip)).collect()
}

/// Non-lock entries of the layer cache (all ownership keys).
fn cache_contents(store: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(keys) = fs::read_dir(store.join("layers")) else {
        return out;
    };
    for key in keys {
        for e in fs::read_dir(key.unwrap().path()).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if !name.ends_with(".lock") {
                out.push(name);
            }
        }
    }
    out
}

/// Runs `rsafe unpack` on an image made of the layers `build(world)` returns, flattened and then
/// into the layer cache. Both must fail with one line that names the image, a layer digest and
/// every `expect` fragment; nothing outside the target may change, the half-written target must
/// be gone, and the cache must hold nothing.
fn refused(build: impl Fn(&World) -> Vec<(Vec<u8>, Compress)>, args: &[&str], expect: &[&str]) {
    let world = World::new();
    let store = support::temp_root();
    let digests = put_image(store.path(), "evil", &build(&world));
    let before = world.snapshot();
    for into_cache in [false, true] {
        let mut cmd = support::rsafe(store.path());
        cmd.arg("unpack").args(args).arg("evil");
        if into_cache {
            cmd.arg("--layers");
        } else {
            cmd.arg(world.target());
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("rsafe: unpack evil"), "{stderr}");
        assert!(
            digests.iter().any(|d| stderr.contains(&d.to_string())),
            "names the layer: {stderr}"
        );
        for fragment in expect {
            assert!(stderr.contains(fragment), "{stderr:?} lacks {fragment:?}");
        }
        assert_eq!(
            world.snapshot(),
            before,
            "something outside the target changed"
        );
        assert!(!world.target().exists(), "the half-written target was left");
        assert!(out.stdout.is_empty());
    }
    assert_eq!(cache_contents(store.path()), Vec::<String>::new());
}

#[test]
fn names_with_dot_dot_are_refused() {
    refused(
        |_| {
            gzip(vec![
                Tar::new()
                    .file("ok", b"1")
                    .raw(b"../escape", b'0', b"x", 0o644)
                    .finish(),
            ])
        },
        &[],
        &[r#"entry "../escape""#, "climbs out"],
    );
    refused(
        |_| {
            gzip(vec![
                Tar::new()
                    .raw(b"a/../../escape", b'0', b"x", 0o644)
                    .finish(),
            ])
        },
        &[],
        &[r#""a/../../escape""#, "climbs out"],
    );
}

#[test]
fn absolute_names_are_refused() {
    refused(
        |w| {
            gzip(vec![
                Tar::new()
                    .raw(w.abs("pwned").as_bytes(), b'0', b"x", 0o644)
                    .finish(),
            ])
        },
        &[],
        &["pwned\"", "absolute name"],
    );
}

#[test]
fn writing_through_a_symlink_is_refused() {
    refused(
        |w| {
            gzip(vec![
                Tar::new()
                    .symlink("link", &w.abs(""))
                    .file("link/pwned", b"x")
                    .finish(),
            ])
        },
        &[],
        &[
            r#"entry "link/pwned""#,
            r#"writes through the symlink "link""#,
        ],
    );
}

#[test]
fn a_symlink_chain_cannot_climb_out() {
    refused(
        |_| {
            gzip(vec![
                Tar::new()
                    .symlink("d1", ".")
                    .symlink("d2", "d1/../../../../../../..")
                    .dir("d2/x/")
                    .finish(),
            ])
        },
        &[],
        &[r#"entry "d2/x/""#, r#"symlink "d2""#],
    );
}

#[test]
fn a_directory_replaced_by_a_symlink_redirects_nothing() {
    refused(
        |w| {
            gzip(vec![
                Tar::new()
                    .dir("d/")
                    .file("d/ok", b"ok")
                    .symlink("d", &w.abs(""))
                    .file("d/pwned", b"x")
                    .finish(),
            ])
        },
        &[],
        &[r#"entry "d/pwned""#, r#"symlink "d""#],
    );
}

#[test]
fn hard_links_cannot_reach_outside() {
    refused(
        |_| gzip(vec![Tar::new().hardlink("h", "../canary").finish()]),
        &[],
        &[r#"hard link target "../canary""#, "climbs out"],
    );
    refused(
        |w| gzip(vec![Tar::new().hardlink("h", &w.abs("canary")).finish()]),
        &[],
        &["hard link target", "absolute name"],
    );
    refused(
        |w| {
            gzip(vec![
                Tar::new()
                    .symlink("s", &w.abs(""))
                    .hardlink("h", "s/canary")
                    .finish(),
            ])
        },
        &[],
        &[
            r#"hard link target "s/canary""#,
            "not a file this layer created",
        ],
    );
}

#[test]
fn whiteouts_naming_dot_or_dot_dot_are_refused() {
    refused(
        |_| gzip(vec![Tar::new().raw(b".wh...", b'0', b"", 0o644).finish()]),
        &[],
        &[r#"entry ".wh...""#, r#"whiteout names "..""#],
    );
    refused(
        |_| {
            gzip(vec![
                Tar::new()
                    .dir("a/")
                    .raw(b"a/.wh..", b'0', b"", 0o644)
                    .finish(),
            ])
        },
        &[],
        &[r#"entry "a/.wh..""#, r#"whiteout names ".""#],
    );
}

#[test]
fn decompression_bombs_stop_at_the_cap() {
    for compress in [Compress::Gzip, Compress::Zstd] {
        refused(
            |_| {
                vec![(
                    Tar::new().file("zeros", &vec![0u8; 32 << 20]).finish(),
                    compress,
                )]
            },
            &["--max-layer-size", "1M"],
            &["expands past the limit of 1048576 bytes"],
        );
    }
}

#[test]
fn entry_count_bombs_stop_at_the_cap() {
    refused(
        |_| {
            let tar = (0..50).fold(Tar::new(), |t, i| t.file(&format!("f{i}"), b""));
            gzip(vec![tar.finish()])
        },
        &["--max-entries", "10"],
        &["more than 10 tar headers"],
    );
}

#[test]
fn truncated_archives_are_refused() {
    refused(
        |_| {
            gzip(vec![
                Tar::new().file("big", &[7u8; 100_000]).truncated(50_000),
            ])
        },
        &[],
        &[r#"entry "big""#, "truncated"],
    );
}

#[test]
fn names_with_nul_or_huge_lengths_are_refused() {
    refused(
        |_| {
            gzip(vec![
                Tar::new().pax(&[("path", b"a\0b")]).file("x", b"").finish(),
            ])
        },
        &[],
        &["NUL"],
    );
    refused(
        |_| {
            gzip(vec![
                Tar::new().long_name(b"inner\0nul").file("x", b"").finish(),
            ])
        },
        &[],
        &["NUL"],
    );
    refused(
        |_| {
            gzip(vec![
                Tar::new()
                    .long_name(&vec![b'a'; 2 << 20])
                    .file("x", b"")
                    .finish(),
            ])
        },
        &[],
        &["GNU long name of 2097153 bytes is over the limit"],
    );
    refused(
        |_| {
            let long = "dir/".repeat(1300);
            gzip(vec![
                Tar::new()
                    .pax(&[("path", long.as_bytes())])
                    .file("x", b"")
                    .finish(),
            ])
        },
        &[],
        &["5200 bytes", "longer than PATH_MAX"],
    );
}

#[test]
fn overlay_whiteout_devices_are_refused() {
    refused(
        |_| gzip(vec![Tar::new().node("w", b'3', 0, 0).finish()]),
        &[],
        &[r#"entry "w""#, "overlayfs whiteout"],
    );
}

/// Unpacks `layers` flattened (as the current user) and returns the target's listing.
fn unpack_ok(world: &World, store: &Path, layers: &[(Vec<u8>, Compress)]) -> Vec<String> {
    put_image(store, "img", layers);
    support::rsafe(store)
        .args(["unpack", "img"])
        .arg(world.target())
        .assert()
        .success();
    listing(&world.target(), false)
}

#[test]
fn later_duplicates_win_and_a_file_may_replace_a_directory() {
    let world = World::new();
    let store = support::temp_root();
    let tar = Tar::new()
        .file("f", b"one")
        .file("f", b"two")
        .dir("d/")
        .file("d/x", b"x")
        .file("d", b"now a file")
        .finish();
    let list = unpack_ok(&world, store.path(), &gzip(vec![tar]));
    assert_eq!(list, sorted([".|d|755", "./d|f|644|10|1", "./f|f|644|3|1"]));
    assert_eq!(fs::read(world.target().join("f")).unwrap(), b"two");
}

#[test]
fn a_lower_layer_symlink_is_replaced_by_a_directory_not_followed() {
    let world = World::new();
    let store = support::temp_root();
    let before = world.snapshot();
    let layers = gzip(vec![
        Tar::new().symlink("lib", &world.abs("")).finish(),
        Tar::new().file("lib/pwned", b"x").finish(),
    ]);
    let list = unpack_ok(&world, store.path(), &layers);
    assert_eq!(
        list,
        sorted([".|d|755", "./lib|d|755", "./lib/pwned|f|644|1|1"])
    );
    assert_eq!(world.snapshot(), before);
}

/// Three layers, one of each compression: deletions, an opaque directory, a directory turned
/// into a file, a whiteout undone, hard links, and special modes and owners.
fn multi_layer() -> Vec<(Vec<u8>, Compress)> {
    let l1 = Tar::new()
        .dir("etc/")
        .file("etc/keep", b"keep")
        .file("etc/gone", b"gone")
        .dir("etc/gonedir/")
        .file("etc/gonedir/f", b"f")
        .dir("opq/")
        .file("opq/old", b"old")
        .dir("opq/sub/")
        .file("opq/sub/deep", b"deep")
        .dir("usr/")
        .dir("usr/lib/")
        .file("usr/lib/libc", b"libc")
        .symlink("lib", "usr/lib")
        .dir("bin/")
        .file_owned("bin/tool", b"tool", 0o755, 0, 0)
        .file_owned("suid", b"su", 0o4755, 0, 0)
        .dir_mode("sticky/", 0o1777)
        .file_owned("owned", b"app", 0o640, 1000, 1000)
        .finish();
    let l2 = Tar::new()
        .raw(b"etc/.wh.gone", b'0', b"", 0o644)
        .raw(b"etc/.wh.gonedir", b'0', b"", 0o644)
        .file("etc/keep", b"keep2")
        .dir("opq/")
        .raw(b"opq/.wh..wh..opq", b'0', b"", 0o644)
        .file("opq/new", b"new")
        .dir("opq/sub/")
        .file("opq/sub/fresh", b"fresh")
        .file("bin/one", b"same")
        .hardlink("bin/two", "bin/one")
        .finish();
    let l3 = Tar::new()
        .file("etc/gone", b"back")
        .raw(b"opq/.wh.sub", b'0', b"", 0o644)
        .file("opq/sub", b"now a file")
        .raw(b"usr/lib/.wh.libc", b'0', b"", 0o644)
        .finish();
    vec![
        (l1, Compress::Gzip),
        (l2, Compress::Zstd),
        (l3, Compress::None),
    ]
}

const MULTI_LAYER_TREE: &[&str] = &[
    ".|d|755",
    "./bin|d|755",
    "./bin/one|f|644|4|2",
    "./bin/tool|f|755|4|1",
    "./bin/two|f|644|4|2",
    "./etc|d|755",
    "./etc/gone|f|644|4|1",
    "./etc/keep|f|644|5|1",
    "./lib|l|usr/lib",
    "./opq|d|755",
    "./opq/new|f|644|3|1",
    "./opq/sub|f|644|10|1",
    "./owned|f|640|3|1",
    "./sticky|d|1777",
    "./suid|f|4755|2|1",
    "./usr|d|755",
    "./usr/lib|d|755",
];

#[test]
fn multi_layer_image_applies_whiteouts_opaque_dirs_and_hard_links() {
    let world = World::new();
    let store = support::temp_root();
    let list = unpack_ok(&world, store.path(), &multi_layer());
    assert_eq!(list, sorted(MULTI_LAYER_TREE));
    let t = world.target();
    assert_eq!(fs::read(t.join("etc/keep")).unwrap(), b"keep2");
    assert_eq!(fs::read(t.join("etc/gone")).unwrap(), b"back");
    let one = fs::metadata(t.join("bin/one")).unwrap();
    assert_eq!(one.ino(), fs::metadata(t.join("bin/two")).unwrap().ino());
    if support::is_root() {
        let owned = fs::metadata(t.join("owned")).unwrap();
        assert_eq!((owned.uid(), owned.gid()), (1000, 1000));
    }
    // A second opinion: umoci applies the same layers the same way (it reads no zstd).
    if support::have("umoci", support::tool("umoci")) && support::is_root() {
        let all_gzip: Vec<_> = multi_layer()
            .into_iter()
            .map(|(t, _)| (t, Compress::Gzip))
            .collect();
        put_image(store.path(), "img-gzip", &all_gzip);
        let bundle = world.path().join("bundle");
        support::sh(
            Command::new("umoci")
                .args(["raw", "unpack", "--image"])
                .arg(format!("{}:img-gzip", store.path().display()))
                .arg(&bundle),
        );
        // The layers do not list the root, so its mtime is arbitrary (umoci: 0, rsafe: now).
        let below_root = |dir: &Path| -> Vec<String> {
            listing(dir, true)
                .into_iter()
                .filter(|l| !l.starts_with(".|"))
                .collect()
        };
        assert_eq!(below_root(&bundle), below_root(&t));
    }
}

#[test]
fn busybox_matches_umoci() {
    if !support::have("umoci", support::tool("umoci")) || !support::is_root() {
        return;
    }
    let world = World::new();
    let store = support::temp_root();
    support::sh(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", support::busybox_layout().display()))
            .arg(store.path()),
    );
    support::rsafe(store.path())
        .args(["unpack", "latest"])
        .arg(world.target())
        .assert()
        .success();
    let bundle = world.path().join("bundle");
    support::sh(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:latest", store.path().display()))
            .arg(&bundle),
    );
    let ours = listing(&world.target(), true);
    assert!(ours.len() > 250, "busybox has its applets: {}", ours.len());
    assert_eq!(ours, listing(&bundle.join("rootfs"), true));
}

#[test]
fn shift_ownership_moves_ids_into_the_range() {
    if !support::is_root() {
        return;
    }
    let world = World::new();
    let store = support::temp_root();
    put_image(store.path(), "img", &multi_layer());
    support::rsafe(store.path())
        .args(["unpack", "--ownership", "shift:100000:200000:65536", "img"])
        .arg(world.target())
        .assert()
        .success();
    let t = world.target();
    let owner = |p: &str| {
        let m = fs::symlink_metadata(t.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("owned"), (101_000, 201_000));
    assert_eq!(owner("etc/keep"), (100_000, 200_000));
    assert_eq!(owner("lib"), (100_000, 200_000));
    assert_eq!(owner(""), (100_000, 200_000));
    // chown before chmod: the setuid bit survives the shift.
    assert_eq!(
        fs::metadata(t.join("suid")).unwrap().mode() & 0o7777,
        0o4755
    );
}

#[test]
fn device_nodes_are_created_by_root_and_skipped_with_a_warning_otherwise() {
    let layers = gzip(vec![
        Tar::new()
            .dir("dev/")
            .node("dev/null", b'3', 1, 3)
            .node("pipe", b'6', 0, 0)
            .finish(),
    ]);
    let world = World::new();
    let store = support::temp_root();
    put_image(store.path(), "img", &layers);
    if support::is_root() {
        support::rsafe(store.path())
            .args(["unpack", "img"])
            .arg(world.target())
            .assert()
            .success();
        let null = fs::metadata(world.target().join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
        fs::remove_dir_all(world.target()).unwrap();
    }
    let Some(mut cmd) = support::rsafe_as_test_user(store.path()) else {
        return;
    };
    let out = cmd
        .args(["unpack", "img"])
        .arg(world.target())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 device nodes not created (that needs root)"),
        "{stderr}"
    );
    assert!(!world.target().join("dev/null").exists());
    assert!(
        fs::metadata(world.target().join("pipe"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

fn owner_record(path: &Path) -> String {
    let mut buf = [0u8; 64];
    let n = rustix::fs::lgetxattr(path, "user.rsafe.owner", &mut buf[..]).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn unprivileged_unpack_owns_everything_and_records_the_image_owner() {
    let Some((uid, _)) = support::test_user() else {
        return;
    };
    let world = World::new();
    let store = support::temp_root();
    put_image(store.path(), "img", &multi_layer());
    let Some(mut cmd) = support::rsafe_as_test_user(store.path()) else {
        return;
    };
    cmd.args(["unpack", "img"])
        .arg(world.target())
        .assert()
        .success();
    let t = world.target();
    assert_eq!(listing(&t, false), sorted(MULTI_LAYER_TREE));
    for p in ["", "owned", "suid", "sticky", "bin/tool"] {
        assert_eq!(fs::symlink_metadata(t.join(p)).unwrap().uid(), uid, "{p}");
    }
    assert_eq!(owner_record(&t.join("owned")), "1000:1000");
    assert_eq!(owner_record(&t.join("suid")), "0:0");
    assert_eq!(owner_record(&t.join("sticky")), "0:0");
    // The setuid bit is kept: on a file the caller owns it grants nothing new.
    assert_eq!(
        fs::metadata(t.join("suid")).unwrap().mode() & 0o7777,
        0o4755
    );
}

#[test]
fn unprivileged_unpack_of_busybox() {
    if !support::have("umoci", support::tool("umoci")) {
        return;
    }
    let Some((uid, _)) = support::test_user() else {
        return;
    };
    let world = World::new();
    let store = support::temp_root();
    support::sh(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", support::busybox_layout().display()))
            .arg(store.path()),
    );
    support::sh(
        Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(store.path()),
    );
    let Some(mut cmd) = support::rsafe_as_test_user(store.path()) else {
        return;
    };
    cmd.args(["unpack", "latest"])
        .arg(world.target())
        .assert()
        .success();
    let app = world.target().join("home/app");
    assert_eq!(fs::metadata(&app).unwrap().uid(), uid);
    assert_eq!(owner_record(&app), "1000:1000");
    assert!(world.target().join("bin/sh").is_symlink());
}

// ---- The layer cache ----

fn open(store: &Path, name: &str) -> (Store, Image) {
    let store = Store::open(store).unwrap();
    let image = Image::open(&store, name, &Platform::host()).unwrap();
    (store, image)
}

#[test]
fn a_second_ensure_does_no_work() {
    let root = support::temp_root();
    let digests = put_image(root.path(), "img", &multi_layer());
    let (store, image) = open(root.path(), "img");
    let cache = LayerCache::new(&store, Ownership::Caller);
    let (dirs, stats) = cache.ensure_with_stats(&image, &Limits::default()).unwrap();
    assert_eq!(dirs.len(), 3);
    assert_eq!(stats.layers, 3);
    // Without the blobs, any extraction would fail: the second call must not need them.
    for d in &digests {
        fs::remove_file(store.blob_path(d)).unwrap();
    }
    let (again, stats) = cache.ensure_with_stats(&image, &Limits::default()).unwrap();
    assert_eq!(again, dirs);
    assert_eq!(stats.layers, 0);
}

#[test]
fn concurrent_ensures_extract_each_layer_once() {
    let root = support::temp_root();
    put_image(root.path(), "img", &multi_layer());
    let (store, image) = open(root.path(), "img");
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    LayerCache::new(&store, Ownership::Caller)
                        .ensure_with_stats(&image, &Limits::default())
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.windows(2).all(|w| w[0].0 == w[1].0));
    assert_eq!(results.iter().map(|r| r.1.layers).sum::<u64>(), 3);
    let mut left = cache_contents(root.path());
    left.sort();
    let mut expected: Vec<String> = image
        .layers()
        .iter()
        .map(|l| l.diff_id.hex().to_string())
        .collect();
    expected.sort();
    assert_eq!(left, expected, "no temp dirs left behind");
}

#[test]
fn a_layer_that_fails_verification_leaves_no_cache_entry() {
    let root = support::temp_root();
    let digests = put_image(root.path(), "img", &multi_layer());
    let (store, image) = open(root.path(), "img");
    // Same length, different bytes: found only by hashing while extracting.
    let blob = store.blob_path(&digests[2]);
    let mut bytes = fs::read(&blob).unwrap();
    bytes[600] ^= 0xff;
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&blob, &bytes).unwrap();
    let err = LayerCache::new(&store, Ownership::Caller)
        .ensure(&image, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&digests[2].to_string()), "{err}");
    let left = cache_contents(root.path());
    assert_eq!(left.len(), 2, "only the two good layers: {left:?}");
    assert!(left.iter().all(|n| !n.starts_with(".tmp")), "{left:?}");
}

#[test]
fn gc_removes_layers_no_image_uses() {
    let root = support::temp_root();
    put_image(root.path(), "img", &multi_layer());
    put_image(
        root.path(),
        "other",
        &gzip(vec![Tar::new().file("only", b"x").finish()]),
    );
    let (store, image) = open(root.path(), "img");
    let (_, other) = open(root.path(), "other");
    let cache = LayerCache::new(&store, Ownership::Caller);
    cache.ensure(&image, &Limits::default()).unwrap();
    let kept = cache.ensure(&other, &Limits::default()).unwrap();
    assert_eq!(
        LayerCache::gc(&store, &Default::default()).unwrap().layers,
        0
    );
    store.untag("img").unwrap();
    let stats = LayerCache::gc(&store, &Default::default()).unwrap();
    assert_eq!(stats.layers, 3);
    assert!(stats.bytes > 0);
    assert!(kept[0].is_dir());
    assert_eq!(cache_contents(root.path()).len(), 1);
}

#[test]
fn an_opaque_layer_root_drops_the_layers_below_from_the_stack() {
    let root = support::temp_root();
    put_image(
        root.path(),
        "img",
        &gzip(vec![
            Tar::new().file("old", b"old").finish(),
            Tar::new()
                .raw(b".wh..wh..opq", b'0', b"", 0o644)
                .file("new", b"new")
                .finish(),
            Tar::new().file("top", b"top").finish(),
        ]),
    );
    let (store, image) = open(root.path(), "img");
    let dirs = LayerCache::new(&store, Ownership::Caller)
        .ensure(&image, &Limits::default())
        .unwrap();
    assert_eq!(dirs.len(), 2);
    assert!(dirs[0].join("new").is_file() && dirs[1].join("top").is_file());
}

// ---- Overlay mounts of the cache ----

/// Mounts `lowers` (bottom first) with a fresh upper dir in a new user and mount namespace,
/// prints the merged tree with the `listing` format, and appends to an image file (overlay
/// copy-up, which fails with EOVERFLOW when a lower file's owner is unmapped). `prefix` runs
/// first (e.g. to fill `$LOWER` from rsafe's output).
fn overlay_script(prefix: &str) -> String {
    format!(
        r#"set -e
{prefix}
W=$(mktemp -d)
mkdir "$W/u" "$W/w" "$W/m"
unshare -Urm sh -c "mount -t overlay overlay -o userxattr,lowerdir=$LOWER,upperdir=$W/u,workdir=$W/w $W/m && cd $W/m && \
  find . \( -type f -printf '%p|f|%m|%s|%n\n' \) -o \( -type l -printf '%p|l|%l\n' \) -o -printf '%p|%y|%m\n' && \
  echo appended >> etc/keep && echo copy-up-ok"
rm -rf "$W"
"#
    )
}

fn overlay_works() -> bool {
    let probe = r#"set -e; W=$(mktemp -d); mkdir $W/l $W/u $W/w $W/m
unshare -Urm sh -c "mount -t overlay overlay -o userxattr,lowerdir=$W/l,upperdir=$W/u,workdir=$W/w $W/m"
rm -rf $W"#;
    support::tool("unshare")
        && Command::new("sh")
            .args(["-c", probe])
            .output()
            .is_ok_and(|o| o.status.success())
}

fn check_overlay_output(out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = sorted(stdout.lines().filter(|l| l.starts_with('.')));
    assert_eq!(lines, sorted(MULTI_LAYER_TREE));
    assert!(stdout.contains("copy-up-ok"), "{stdout}");
}

#[test]
fn cached_layers_stack_to_the_same_tree_in_an_overlay_mount() {
    if !support::have("overlayfs in a user namespace", overlay_works()) {
        return;
    }
    let root = support::temp_root();
    put_image(root.path(), "img", &multi_layer());
    let (store, image) = open(root.path(), "img");
    let dirs = LayerCache::new(&store, Ownership::for_current_user())
        .ensure(&image, &Limits::default())
        .unwrap();
    let lower: Vec<String> = dirs.iter().rev().map(|d| d.display().to_string()).collect();
    let script = overlay_script(&format!("LOWER={}", lower.join(":")));
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    check_overlay_output(&out);
}

#[test]
fn an_unprivileged_user_builds_and_mounts_the_cache() {
    if !support::have("overlayfs in a user namespace", overlay_works()) || !support::is_root() {
        return;
    }
    let Some((uid, gid)) = support::test_user() else {
        return;
    };
    let root = support::temp_root();
    put_image(root.path(), "img", &multi_layer());
    let bin = support::rsafe_bin();
    let prefix = format!(
        "LOWER=$({} --root {} -q unpack --layers img | tac | paste -sd:)",
        bin.display(),
        root.path().display()
    );
    let out = Command::new("setpriv")
        .args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--init-groups".into(),
        ])
        .args(["--", "sh", "-c", &overlay_script(&prefix)])
        .env("HOME", format!("/home/{}", support::TEST_USER))
        .env_remove("RSAFE_ROOT")
        .output()
        .unwrap();
    check_overlay_output(&out);
    // Every cached file belongs to the user, the image's owner recorded beside it.
    let layer_dirs = root.path().join("layers");
    for e in walkdir::WalkDir::new(&layer_dirs) {
        let e = e.unwrap();
        assert_eq!(e.metadata().unwrap().uid(), uid, "{}", e.path().display());
    }
}

#[test]
fn rmi_removes_the_extracted_layers_no_image_uses() {
    let root = support::temp_root();
    put_image(root.path(), "img", &multi_layer());
    support::rsafe(root.path())
        .args(["unpack", "--layers", "img"])
        .assert()
        .success();
    assert_eq!(cache_contents(root.path()).len(), 3);
    support::rsafe(root.path())
        .args(["rmi", "img"])
        .assert()
        .success();
    assert_eq!(cache_contents(root.path()), Vec::<String>::new());
}
