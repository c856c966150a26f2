//! Images crafted byte by byte: small valid OCI layouts and docker save tarballs, and the hostile
//! variants of them the loader must refuse (missing blobs, wrong digests, unknown media types,
//! `../` members, truncation, oversized metadata, duplicates, links out of the archive).
//!
//! An image is built as a [`Tree`]: the members of a layout or archive, in order, as bytes.
//! Tests mutate the tree (or the JSON before it is serialized), then write it as a directory or
//! a tar file with [`Tree::write_dir`] / [`Tree::write_tar`], which write names exactly as
//! given, `../` included (into the tar only; the directory writer refuses them).
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a `sha256:` digest.
pub fn hex_of(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// A tar holding regular files (a layer's content).
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A descriptor for `bytes`.
pub fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

/// One member of a layout or archive.
#[derive(Debug, Clone)]
pub enum Node {
    File(Vec<u8>),
    Symlink(String),
    Fifo,
}

/// The members of a layout or archive, in order (duplicates allowed, for the hostile cases).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub entries: Vec<(String, Node)>,
}

impl Tree {
    /// Sets `name` to `bytes`, replacing an existing member of that name.
    pub fn put(&mut self, name: &str, bytes: &[u8]) -> &mut Self {
        self.remove(name);
        self.entries
            .push((name.to_string(), Node::File(bytes.to_vec())));
        self
    }

    /// Adds a member even if one of that name exists.
    pub fn push(&mut self, name: &str, node: Node) -> &mut Self {
        self.entries.push((name.to_string(), node));
        self
    }

    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.entries.retain(|(n, _)| n != name);
        self
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries.iter().find_map(|(n, node)| match node {
            Node::File(b) if n == name => Some(&b[..]),
            _ => None,
        })
    }

    /// Writes the members under `dir` (a layout directory).
    pub fn write_dir(&self, dir: &Path) {
        for (name, node) in &self.entries {
            assert!(
                !name.starts_with('/') && !name.split('/').any(|p| p == ".."),
                "a layout directory cannot hold {name}"
            );
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            match node {
                Node::File(bytes) => fs::write(&path, bytes).unwrap(),
                Node::Symlink(target) => std::os::unix::fs::symlink(target, &path).unwrap(),
                Node::Fifo => nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap(),
            }
        }
        support_chmod(dir);
    }

    /// Writes the members as a tar file, names byte for byte as given.
    pub fn write_tar(&self, path: &Path) {
        let mut b = tar::Builder::new(Vec::new());
        for (name, node) in &self.entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            let raw = &mut h.as_old_mut().name;
            assert!(name.len() <= raw.len(), "member name too long: {name}");
            raw[..name.len()].copy_from_slice(name.as_bytes());
            match node {
                Node::File(bytes) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(bytes.len() as u64);
                    h.set_cksum();
                    b.append(&h, &bytes[..]).unwrap();
                }
                Node::Symlink(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    let link = &mut h.as_old_mut().linkname;
                    link[..target.len()].copy_from_slice(target.as_bytes());
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
                Node::Fifo => {
                    h.set_entry_type(tar::EntryType::Fifo);
                    h.set_size(0);
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
            }
        }
        fs::write(path, b.into_inner().unwrap()).unwrap();
        support_chmod(path);
    }
}

fn support_chmod(path: &Path) {
    super::sh(
        std::process::Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(path),
    );
}

/// A layer: the tar and the blob stored for it (compressed or not).
#[derive(Debug, Clone)]
pub struct Layer {
    pub tar: Vec<u8>,
    pub blob: Vec<u8>,
    pub media_type: String,
}

impl Layer {
    pub fn gzip(files: &[(&str, &[u8])]) -> Layer {
        let tar = tar_of(files);
        Layer {
            blob: gzip(&tar),
            tar,
            media_type: OCI_LAYER_GZIP.into(),
        }
    }

    pub fn plain(files: &[(&str, &[u8])]) -> Layer {
        let tar = tar_of(files);
        Layer {
            blob: tar.clone(),
            tar,
            media_type: OCI_LAYER.into(),
        }
    }

    pub fn diff_id(&self) -> String {
        sha256(&self.tar)
    }

    pub fn descriptor(&self) -> Value {
        descriptor(&self.media_type, &self.blob)
    }
}

/// An image config for these layers: User `tiny`, Entrypoint `/hello`, one history entry per
/// layer and one empty-layer entry.
pub fn config_json(arch: &str, layers: &[&Layer]) -> Value {
    let mut history: Vec<Value> = layers
        .iter()
        .enumerate()
        .map(|(i, _)| json!({"created": "2023-11-14T22:13:20Z", "created_by": format!("COPY layer{i} /")}))
        .collect();
    history.push(
        json!({"created": "2023-11-14T22:13:20Z", "created_by": "USER tiny", "empty_layer": true}),
    );
    json!({
        "created": "2023-11-14T22:13:20Z",
        "architecture": arch,
        "os": "linux",
        "config": {"User": "tiny", "Entrypoint": ["/hello"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id()).collect::<Vec<_>>()},
        "history": history,
    })
}

/// An OCI layout under construction: blobs and index entries.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub blobs: Vec<Vec<u8>>,
    pub index: Vec<Value>,
}

/// What [`Layout::image`] made.
#[derive(Debug, Clone)]
pub struct Made {
    pub manifest: Value,
    pub manifest_bytes: Vec<u8>,
    pub config_bytes: Vec<u8>,
}

impl Made {
    pub fn digest(&self) -> String {
        self.manifest["digest"].as_str().unwrap().to_string()
    }
}

impl Layout {
    pub fn blob(&mut self, bytes: &[u8]) {
        self.blobs.push(bytes.to_vec());
    }

    /// Adds the blobs of an image (layers, config, manifest); returns the manifest descriptor.
    pub fn image(&mut self, arch: &str, layers: &[&Layer]) -> Made {
        let config = serde_json::to_vec(&config_json(arch, layers)).unwrap();
        self.image_with_config(&config, layers)
    }

    pub fn image_with_config(&mut self, config: &[u8], layers: &[&Layer]) -> Made {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": layers.iter().map(|l| l.descriptor()).collect::<Vec<_>>(),
        });
        let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
        for l in layers {
            self.blob(&l.blob);
        }
        self.blob(config);
        self.blob(&manifest_bytes);
        Made {
            manifest: descriptor(OCI_MANIFEST, &manifest_bytes),
            manifest_bytes,
            config_bytes: config.to_vec(),
        }
    }

    /// Adds an index entry for `desc`, named `ref_name` when given.
    pub fn entry(&mut self, desc: &Value, annotations: &[(&str, &str)]) {
        let mut entry = desc.clone();
        if !annotations.is_empty() {
            entry["annotations"] = annotations
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        self.index.push(entry);
    }

    /// The layout's members: oci-layout, index.json, blobs/sha256/*.
    pub fn tree(&self) -> Tree {
        let mut t = Tree::default();
        t.put("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.index});
        t.put("index.json", &serde_json::to_vec(&index).unwrap());
        for blob in &self.blobs {
            t.put(&format!("blobs/sha256/{}", hex_of(&sha256(blob))), blob);
        }
        t
    }
}

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The smallest useful image: one gzip layer with `/hello`, ref name `latest`.
pub fn tiny() -> (Layout, Made, Layer) {
    let layer = Layer::gzip(&[("hello", b"hello from a tiny image\n")]);
    let mut layout = Layout::default();
    let made = layout.image(host_arch(), &[&layer]);
    layout.entry(&made.manifest, &[(REF_NAME, "latest")]);
    (layout, made, layer)
}

/// The host's architecture as OCI names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A multi-platform image: an index (ref `multi`) of an amd64 and an arm64 manifest, each with
/// its own layer. Returns the layout and (index, amd64, arm64) descriptors.
pub fn multi_platform() -> (Layout, Value, Made, Made) {
    let mut layout = Layout::default();
    let amd = Layer::gzip(&[("arch", b"amd64\n")]);
    let arm = Layer::gzip(&[("arch", b"arm64\n")]);
    let amd64 = layout.image("amd64", &[&amd]);
    let arm64 = layout.image("arm64", &[&arm]);
    let with_platform = |made: &Made, arch: &str| {
        let mut d = made.manifest.clone();
        d["platform"] = json!({"os": "linux", "architecture": arch});
        d
    };
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [with_platform(&amd64, "amd64"), with_platform(&arm64, "arm64")],
    });
    let index_bytes = serde_json::to_vec(&index).unwrap();
    layout.blob(&index_bytes);
    let index_desc = descriptor(OCI_INDEX, &index_bytes);
    layout.entry(&index_desc, &[(REF_NAME, "multi")]);
    (layout, index_desc, amd64, arm64)
}

/// A legacy `docker save` tarball of `layers`: `<hex>.json` config, `<id>/layer.tar` members
/// (regular files, as docker before 25 wrote them), manifest.json with `repo_tags`.
pub fn docker_save(layers: &[&Layer], repo_tags: &[&str]) -> (Tree, String) {
    let config = serde_json::to_vec(&config_json(host_arch(), layers)).unwrap();
    let config_digest = sha256(&config);
    let mut t = Tree::default();
    t.put(&format!("{}.json", hex_of(&config_digest)), &config);
    let mut layer_members = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let member = format!("{:064x}/layer.tar", i + 1);
        t.put(&format!("{:064x}/VERSION", i + 1), b"1.0");
        t.put(&member, &l.blob);
        layer_members.push(member);
    }
    let manifest = json!([{
        "Config": format!("{}.json", hex_of(&config_digest)),
        "RepoTags": repo_tags,
        "Layers": layer_members,
    }]);
    t.put("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    (t, config_digest)
}

/// A Docker 25+ `docker save` tarball: an OCI layout plus a manifest.json pointing into it.
/// The index entry carries `io.containerd.image.name` when `containerd_name` is given.
pub fn docker25_save(repo_tag: &str, containerd_name: Option<&str>) -> (Tree, Made) {
    let layer = Layer::plain(&[("hello", b"hello from docker 25\n")]);
    let mut layout = Layout::default();
    let made = layout.image(host_arch(), &[&layer]);
    let mut annotations = vec![(REF_NAME, "1.0")];
    if let Some(name) = containerd_name {
        annotations.push(("io.containerd.image.name", name));
    }
    layout.entry(&made.manifest, &annotations);
    let mut t = layout.tree();
    let manifest = json!([{
        "Config": format!("blobs/sha256/{}", hex_of(&sha256(&made.config_bytes))),
        "RepoTags": [repo_tag],
        "Layers": [format!("blobs/sha256/{}", hex_of(&sha256(&layer.blob)))],
    }]);
    t.put("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    (t, made)
}
