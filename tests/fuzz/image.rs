//! Targets for the image side: tar headers, layers unpacked for real, image archives
//! (`docker save` and OCI), and the JSON documents of an OCI layout.

use std::fs;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use rsafe::audit::secrets::SecretScanner;
use rsafe::audit::{AuditOptions, NoProgress, audit_image};
use rsafe::image::digest::Digest;
use rsafe::image::load::load_path;
use rsafe::image::unpack::tar::TarReader;
use rsafe::image::unpack::{Limits, Ownership, unpack_image};
use rsafe::image::{Image, Platform, Store};

use crate::engine::{Outcome, Rng, Target, one_line_naming, signature};
use crate::hostile_layers::{Compress, put_image};

const TAR_DICT: &[&[u8]] = &[
    b"ustar\x0000",
    b"ustar  \x00",
    b"././@LongLink",
    b"PaxHeaders/",
    b"path=",
    b"linkpath=",
    b"size=",
    b"uid=",
    b"mtime=",
    b"SCHILY.xattr.",
    b"SCHILY.xattr.user.overlay.opaque=",
    b"SCHILY.xattr.security.capability=",
    b"LIBARCHIVE.xattr.",
    b"GNU.sparse.",
    b".wh.",
    b".wh..wh..opq",
    b".wh..wh.plnk",
    b"../",
    b"/etc/passwd",
    b"./",
    b"\x80\x00\x00\x00\x00\x00\x00\x01",
    b"\xff\xff\xff\xff\xff\xff\xff\xff",
    b"77777777777",
    b"00000000000",
    b"0000644\x00",
];

/// The walk of tar headers a reader would take: offsets of each header block.
fn header_offsets(data: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 512 <= data.len() && out.len() < 4096 {
        let block = &data[off..off + 512];
        if block.iter().all(|&b| b == 0) {
            break;
        }
        out.push(off);
        let size = octal(&block[124..136]).unwrap_or(0).min(1 << 24) as usize;
        off += 512 + size.div_ceil(512) * 512;
    }
    out
}

fn octal(field: &[u8]) -> Option<u64> {
    let s: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| (b'0'..=b'7').contains(&b))
        .collect();
    if s.is_empty() {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(&s).ok()?, 8).ok()
}

/// Rewrites the checksum of every header the reader will visit, so most mutated headers get
/// past the checksum check and reach the field parsers (one input in eight is left as it is).
fn fix_tar_checksums(rng: &mut Rng, data: &mut [u8]) {
    if rng.chance(8) {
        return;
    }
    for off in header_offsets(data) {
        let block = &mut data[off..off + 512];
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| b as u32).sum();
        let field = format!("{sum:06o}\0 ");
        block[148..156].copy_from_slice(field.as_bytes());
    }
}

pub const TAR: Target = Target {
    name: "tar-reader",
    corpus: &["tar"],
    extra: &[],
    dict: TAR_DICT,
    iters: 6000,
    max_len: 64 << 10,
    fixup: Some(fix_tar_checksums),
    known: &[],
};

/// The strict tar reader alone: every entry read and its data drained. Properties: offsets
/// only grow, no more entries than headers fit in the input, an entry's size never exceeds
/// the bytes that were there, errors are one line.
pub fn tar_reader(input: &[u8]) -> Outcome {
    let mut reader = TarReader::new(BufReader::with_capacity(4096, input), 1_000_000);
    let mut entries = 0u64;
    let mut copied = 0u64;
    let mut last = 0;
    loop {
        match reader.next_entry() {
            Ok(None) => break,
            Ok(Some(entry)) => {
                entries += 1;
                if entry.offset < last {
                    return Err(format!("entry offset went back: {} < {last}", entry.offset));
                }
                last = entry.offset;
                if entries > input.len() as u64 / 512 + 1 {
                    return Err(format!("{entries} entries from {} bytes", input.len()));
                }
                match reader.copy_data(&mut std::io::sink()) {
                    Ok(n) => copied += n,
                    Err(e) => return Ok(signature("copy error: ", &format!("{e:?}"))),
                }
            }
            Err(e) => {
                let msg = e.problem.to_string();
                one_line_naming(&msg, "")?;
                if e.offset > input.len() as u64 {
                    return Err(format!("error offset {} past the input's end", e.offset));
                }
                return Ok(signature("error: ", &msg));
            }
        }
    }
    if copied > input.len() as u64 {
        return Err(format!(
            "copied {copied} data bytes out of {} input bytes",
            input.len()
        ));
    }
    Ok(format!("ok {}", entries.min(8)))
}

pub const LAYER: Target = Target {
    name: "layer-unpack",
    corpus: &["tar"],
    extra: &[],
    dict: TAR_DICT,
    iters: 500,
    max_len: 64 << 10,
    fixup: Some(fix_tar_checksums),
    known: &[],
};

/// A scratch directory with a canary beside the unpack target; what an escaping layer would
/// change is everything in it but the target.
fn snapshot(world: &Path, target: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(world).sort_by_file_name() {
        let Ok(e) = e else { continue };
        if e.path().starts_with(target) {
            continue;
        }
        let content = if e.file_type().is_file() {
            fs::read(e.path()).unwrap_or_default()
        } else {
            Vec::new()
        };
        let meta = e.path().symlink_metadata().ok();
        out.push(format!(
            "{} {:?} {:?} {:?}",
            e.path().display(),
            e.file_type(),
            meta.map(|m| std::os::unix::fs::MetadataExt::mode(&m)),
            content
        ));
    }
    out
}

/// A mutated layer unpacked for real into a temporary directory: nothing outside it may
/// change; on an error the half-written target is gone and the error is one line naming the
/// layer; on success every file is below the target.
pub fn layer_unpack(input: &[u8]) -> Outcome {
    let world = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    fs::write(world.path().join("canary"), b"canary").map_err(|e| e.to_string())?;
    fs::create_dir(world.path().join("sibling")).map_err(|e| e.to_string())?;
    let store_root = world.path().join("store");
    let compress = if fnv_parity(input) {
        Compress::Gzip
    } else {
        Compress::None
    };
    let digests = put_image(&store_root, "fuzz", &[(input.to_vec(), compress)]);
    let store = Store::open(&store_root).map_err(|e| e.to_string())?;
    let image = Image::open(&store, "fuzz", &Platform::host()).map_err(|e| e.to_string())?;
    let dest = world.path().join("target");
    let before = snapshot(world.path(), &dest);
    let limits = Limits {
        max_expanded: 16 << 20,
        max_entries: 10_000,
    };
    let result = unpack_image(
        &store,
        &image,
        &dest,
        Ownership::for_current_user(),
        &limits,
    );
    let after = snapshot(world.path(), &dest);
    if before != after {
        let changed: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
        return Err(format!(
            "the unpack changed files outside its target: {changed:?}"
        ));
    }
    match result {
        Ok(stats) => {
            if stats.bytes > input.len() as u64 {
                return Err(format!(
                    "wrote {} bytes from a {}-byte layer",
                    stats.bytes,
                    input.len()
                ));
            }
            Ok(format!("ok {}", stats.entries.min(8)))
        }
        Err(e) => {
            let msg = e.to_string();
            one_line_naming(&msg, &digests[0].to_string())?;
            if dest.exists() {
                return Err(format!("a failed unpack left its target behind: {msg}"));
            }
            Ok(signature("error: ", &msg))
        }
    }
}

fn fnv_parity(input: &[u8]) -> bool {
    input.iter().fold(0u8, |a, &b| a.wrapping_add(b)) % 8 == 0
}

const JSON_DICT: &[&[u8]] = &[
    b"\"schemaVersion\"",
    b"\"mediaType\"",
    b"\"manifests\"",
    b"\"layers\"",
    b"\"config\"",
    b"\"digest\"",
    b"\"size\"",
    b"\"platform\"",
    b"\"annotations\"",
    b"\"architecture\"",
    b"\"os\"",
    b"\"variant\"",
    b"\"rootfs\"",
    b"\"diff_ids\"",
    b"\"history\"",
    b"\"Env\"",
    b"\"User\"",
    b"\"Config\"",
    b"\"RepoTags\"",
    b"\"Layers\"",
    b"\"application/vnd.oci.image.index.v1+json\"",
    b"\"application/vnd.oci.image.manifest.v1+json\"",
    b"\"application/vnd.oci.image.layer.v1.tar+gzip\"",
    b"\"application/vnd.oci.image.layer.v1.tar+zstd\"",
    b"\"application/vnd.docker.distribution.manifest.v1+json\"",
    b"\"sha256:\"",
    b"sha512:",
    b"\"io.containerd.image.name\"",
    b"\"org.opencontainers.image.ref.name\"",
    b"\"vnd.docker.reference.type\"",
    b"null",
    b"true",
    b"[]",
    b"{}",
    b"\"\"",
    b"\\u0000",
    b"\\ud800",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    b"../../",
    b"/etc/passwd",
    b"{{manifest}}",
    b"{{config}}",
    b"{{layer}}",
    b"{{diff_id}}",
    b"{{config_hex}}",
    b"{{layer_id}}",
];

pub const ARCHIVE: Target = Target {
    name: "image-archive",
    corpus: &["archive"],
    extra: &[],
    dict: JSON_DICT,
    iters: 400,
    max_len: 64 << 10,
    fixup: Some(fix_tar_checksums),
    known: &[],
};

/// A whole `docker save` or OCI archive, mutated, loaded as `rsafe load` does, and audited
/// when it loads. Errors are one line naming the archive.
pub fn image_archive(input: &[u8]) -> Outcome {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("image.tar");
    fs::write(&path, input).map_err(|e| e.to_string())?;
    load_and_audit(dir.path(), &path)
}

/// Loads `path` into a fresh store under `dir` and audits what loaded.
fn load_and_audit(dir: &Path, path: &Path) -> Outcome {
    let store = Store::open(dir.join("store")).map_err(|e| e.to_string())?;
    let spec = path.display().to_string();
    let loaded = match load_path(&store, &spec, &Platform::host()) {
        Ok(l) => l,
        Err(e) => {
            let msg = e.to_string();
            one_line_naming(&msg, &spec)?;
            return Ok(signature("load error: ", &msg.replace(&spec, "")));
        }
    };
    let scanner = scanner();
    let mut sig = format!("loaded {}", loaded.len().min(4));
    for l in loaded.iter().take(2) {
        let image = match Image::open(&store, &l.name, &Platform::host()) {
            Ok(i) => i,
            Err(e) => {
                one_line_naming(&e.to_string(), "")?;
                sig.push_str(&signature(" open error: ", &e.to_string()));
                continue;
            }
        };
        let options = AuditOptions {
            max_layer_expanded: 16 << 20,
            ..AuditOptions::default()
        };
        match audit_image(&store, &image, scanner, &options, &NoProgress) {
            Ok(audit) => {
                let json = serde_json::to_string(&audit.findings).map_err(|e| e.to_string())?;
                crate::no_fake_secret(&json)?;
                sig.push_str(&format!(" findings {}", audit.findings.len().min(8)));
            }
            Err(e) => {
                one_line_naming(&e.to_string(), "")?;
                sig.push_str(&signature(" audit error: ", &e.to_string()));
            }
        }
    }
    Ok(sig)
}

/// The builtin secret scanner, compiled once.
pub fn scanner() -> &'static SecretScanner {
    static SCANNER: std::sync::OnceLock<SecretScanner> = std::sync::OnceLock::new();
    SCANNER.get_or_init(|| SecretScanner::builtin().expect("builtin secret rules"))
}

/// The fixed blobs the layout targets put around the document being fuzzed.
struct Fixed {
    layer: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

fn fixed() -> &'static Fixed {
    static FIXED: std::sync::OnceLock<Fixed> = std::sync::OnceLock::new();
    FIXED.get_or_init(|| {
        let layer = fs::read(crate::engine::repo().join("tests/fuzz-corpus/tar/ustar-basic.tar"))
            .expect("layer seed");
        let platform = Platform::host();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {"User": "1000"},
            "rootfs": {"type": "layers", "diff_ids": [Digest::of_bytes(&layer).to_string()]},
        }))
        .expect("config");
        let manifest = fill(
            &fs::read(crate::engine::repo().join("tests/fuzz-corpus/oci-manifest/oci.json"))
                .expect("manifest seed"),
            &[],
            &layer,
            &config,
        );
        Fixed {
            layer,
            config,
            manifest,
        }
    })
}

/// Replaces the corpus placeholders with the real digests and sizes of the fixed blobs (and
/// `manifest`, when the document being filled is an index).
fn fill(doc: &[u8], manifest: &[u8], layer: &[u8], config: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(doc);
    let d = |b: &[u8]| Digest::of_bytes(b);
    let layer_digest = d(layer);
    let config_digest = d(config);
    text.replace("{{manifest}}", &d(manifest).to_string())
        .replace("{{manifest_size}}", &manifest.len().to_string())
        .replace("{{config}}", &config_digest.to_string())
        .replace("{{config_size}}", &config.len().to_string())
        .replace("{{layer}}", &layer_digest.to_string())
        .replace("{{layer_size}}", &layer.len().to_string())
        .replace("{{diff_id}}", &layer_digest.to_string())
        .replace("{{config_hex}}", config_digest.hex())
        .replace("{{layer_hex}}", layer_digest.hex())
        .replace("{{layer_id}}", layer_digest.hex())
        .into_bytes()
}

/// Writes an OCI layout with the given documents (each blob under its own digest).
fn write_layout(dir: &Path, index: &[u8], blobs: &[&[u8]]) -> std::io::Result<PathBuf> {
    let layout = dir.join("layout");
    fs::create_dir_all(layout.join("blobs/sha256"))?;
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    fs::write(layout.join("index.json"), index)?;
    for blob in blobs {
        fs::write(
            layout
                .join("blobs/sha256")
                .join(Digest::of_bytes(blob).hex()),
            blob,
        )?;
    }
    Ok(layout)
}

fn layout_target(name: &'static str, dir: &'static str) -> Target {
    Target {
        name,
        corpus: match dir {
            "oci-index" => &["oci-index"],
            "oci-manifest" => &["oci-manifest"],
            _ => &["oci-config"],
        },
        extra: &[],
        dict: JSON_DICT,
        iters: 600,
        max_len: 16 << 10,
        fixup: None,
        known: &[],
    }
}

/// Which document of the layout is the fuzzed one.
#[derive(Clone, Copy)]
pub enum Doc {
    Index,
    Manifest,
    Config,
}

pub fn layout_targets() -> [(Target, Doc); 3] {
    [
        (layout_target("oci-index", "oci-index"), Doc::Index),
        (layout_target("oci-manifest", "oci-manifest"), Doc::Manifest),
        (layout_target("oci-config", "oci-config"), Doc::Config),
    ]
}

/// An OCI layout whose index, manifest or config is the mutated input (placeholders filled,
/// and the documents above it re-pointed at its digest, so it gets past verification to the
/// parsers), loaded and audited.
pub fn oci_layout(doc: Doc, input: &[u8]) -> Outcome {
    let f = fixed();
    let index_seed =
        fs::read(crate::engine::repo().join("tests/fuzz-corpus/oci-index/single.json"))
            .map_err(|e| e.to_string())?;
    let (index, blobs): (Vec<u8>, Vec<Vec<u8>>) = match doc {
        Doc::Index => (
            fill(input, &f.manifest, &f.layer, &f.config),
            vec![f.manifest.clone(), f.config.clone(), f.layer.clone()],
        ),
        Doc::Manifest => {
            let manifest = fill(input, &[], &f.layer, &f.config);
            let index = fill(&index_seed, &manifest, &f.layer, &f.config);
            (index, vec![manifest, f.config.clone(), f.layer.clone()])
        }
        Doc::Config => {
            let config = fill(input, &[], &f.layer, &[]);
            let manifest_seed =
                fs::read(crate::engine::repo().join("tests/fuzz-corpus/oci-manifest/oci.json"))
                    .map_err(|e| e.to_string())?;
            let manifest = fill(&manifest_seed, &[], &f.layer, &config);
            let index = fill(&index_seed, &manifest, &f.layer, &config);
            (index, vec![manifest, config, f.layer.clone()])
        }
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
    let layout = write_layout(dir.path(), &index, &refs).map_err(|e| e.to_string())?;
    load_and_audit(dir.path(), &layout)
}

pub const DOCKER_SAVE: Target = Target {
    name: "docker-save-manifest",
    corpus: &["docker-save-manifest"],
    extra: &[],
    dict: JSON_DICT,
    iters: 600,
    max_len: 16 << 10,
    fixup: None,
    known: &[],
};

/// A `docker save` tarball whose `manifest.json` is the mutated input (placeholders filled),
/// with the config and layer members under both the legacy and the Docker 25 names.
pub fn docker_save_manifest(input: &[u8]) -> Outcome {
    let f = fixed();
    let manifest = fill(input, &[], &f.layer, &f.config);
    let config_hex = Digest::of_bytes(&f.config).hex().to_string();
    let layer_hex = Digest::of_bytes(&f.layer).hex().to_string();
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| -> std::io::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        builder.append_data(&mut h, name, data)
    };
    let io = |e: std::io::Error| e.to_string();
    add("manifest.json", &manifest).map_err(io)?;
    add(&format!("{config_hex}.json"), &f.config).map_err(io)?;
    add(&format!("{layer_hex}/layer.tar"), &f.layer).map_err(io)?;
    add(&format!("{layer_hex}.tar"), &f.layer).map_err(io)?;
    add(&format!("blobs/sha256/{config_hex}"), &f.config).map_err(io)?;
    add(&format!("blobs/sha256/{layer_hex}"), &f.layer).map_err(io)?;
    let bytes = builder.into_inner().map_err(io)?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("save.tar");
    fs::File::create(&path)
        .and_then(|mut file| file.write_all(&bytes))
        .map_err(io)?;
    load_and_audit(dir.path(), &path)
}
