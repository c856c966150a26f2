//! Layer tars crafted byte by byte (with `tar::Header`'s low-level API, so names the `tar`
//! crate's own builder would refuse — `..`, absolute, NUL, megabyte-long — can be written), and
//! images made of them, written into a store (an OCI image layout) by code.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use rsafe::image::Store;
use rsafe::image::digest::Digest;

/// Builds a tar archive entry by entry.
#[derive(Default)]
pub struct Tar {
    out: Vec<u8>,
}

/// Fixed mtime for crafted entries.
pub const MTIME: u64 = 1_700_000_000;

fn header(name: &[u8], typeflag: u8, size: u64, mode: u32, uid: u64, gid: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    assert!(name.len() <= 100, "use long_name or pax for long names");
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_mut_bytes()[156] = typeflag;
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(MTIME);
    h.set_cksum();
    h
}

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    fn push(mut self, h: tar::Header, data: &[u8]) -> Tar {
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.resize(self.out.len() + pad, 0);
        self
    }

    /// Any entry, name bytes written as given (≤ 100 bytes).
    pub fn raw(self, name: &[u8], typeflag: u8, data: &[u8], mode: u32) -> Tar {
        let h = header(name, typeflag, data.len() as u64, mode, 0, 0);
        self.push(h, data)
    }

    pub fn dir(self, name: &str) -> Tar {
        self.dir_mode(name, 0o755)
    }

    pub fn dir_mode(self, name: &str, mode: u32) -> Tar {
        self.raw(name.as_bytes(), b'5', b"", mode)
    }

    pub fn file(self, name: &str, data: &[u8]) -> Tar {
        self.file_owned(name, data, 0o644, 0, 0)
    }

    pub fn file_owned(self, name: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> Tar {
        let h = header(name.as_bytes(), b'0', data.len() as u64, mode, uid, gid);
        self.push(h, data)
    }

    pub fn symlink(self, name: &str, target: &str) -> Tar {
        let mut h = header(name.as_bytes(), b'2', 0, 0o777, 0, 0);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.push(h, b"")
    }

    pub fn hardlink(self, name: &str, target: &str) -> Tar {
        let mut h = header(name.as_bytes(), b'1', 0, 0o644, 0, 0);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.push(h, b"")
    }

    /// A device node (`b'3'` character, `b'4'` block) or fifo (`b'6'`).
    pub fn node(self, name: &str, typeflag: u8, major: u32, minor: u32) -> Tar {
        let mut h = header(name.as_bytes(), typeflag, 0, 0o666, 0, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.push(h, b"")
    }

    /// A PAX extended header (binary-safe records) describing the next entry.
    pub fn pax(self, records: &[(&str, &[u8])]) -> Tar {
        let mut body = Vec::new();
        for (k, v) in records {
            let rest = k.len() + v.len() + 3;
            let mut len = rest + rest.to_string().len();
            if len.to_string().len() != rest.to_string().len() {
                len += 1;
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        let h = header(b"PaxHeaders/entry", b'x', body.len() as u64, 0o644, 0, 0);
        self.push(h, &body)
    }

    /// A GNU long-name record (the name plus its NUL) naming the next entry.
    pub fn long_name(self, name: &[u8]) -> Tar {
        let mut data = name.to_vec();
        data.push(0);
        let h = header(b"././@LongLink", b'L', data.len() as u64, 0o644, 0, 0);
        self.push(h, &data)
    }

    /// The archive with its end-of-archive marker.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.resize(self.out.len() + 1024, 0);
        self.out
    }

    /// The archive so far, cut after `len` bytes (no end marker).
    pub fn truncated(self, len: usize) -> Vec<u8> {
        let mut out = self.out;
        out.truncate(len);
        out
    }
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compress {
    None,
    Gzip,
    Zstd,
}

impl Compress {
    fn apply(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Compress::None => tar.to_vec(),
            Compress::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(tar).unwrap();
                e.finish().unwrap()
            }
            Compress::Zstd => zstd::encode_all(tar, 19).unwrap(),
        }
    }

    fn media_type(self) -> &'static str {
        match self {
            Compress::None => "application/vnd.oci.image.layer.v1.tar",
            Compress::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compress::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Writes an image made of `layers` (tar bytes, bottom first) into the store at `root` under
/// `name`, and returns the layer blob digests. The config's diff_ids are the digests of the
/// tars as given, so truncated or odd archives still verify: the unpacker must catch them by
/// reading them, not by a digest mismatch.
pub fn put_image(root: &Path, name: &str, layers: &[(Vec<u8>, Compress)]) -> Vec<Digest> {
    let store = Store::open(root).unwrap();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    let mut digests = Vec::new();
    for (tar, compress) in layers {
        let blob = compress.apply(tar);
        let digest = store.put_bytes(&blob).unwrap();
        descriptors.push(serde_json::json!({
            "mediaType": compress.media_type(),
            "digest": digest.to_string(),
            "size": blob.len(),
        }));
        diff_ids.push(Digest::of_bytes(tar).to_string());
        digests.push(digest);
    }
    let platform = rsafe::image::Platform::host();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = store.put_bytes(&config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": descriptors,
    }))
    .unwrap();
    let manifest_digest = store.put_bytes(&manifest).unwrap();
    let desc: oci_spec::image::Descriptor = serde_json::from_value(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest.to_string(),
        "size": manifest.len(),
    }))
    .unwrap();
    store.tag(name, &desc).unwrap();
    digests
}
