//! `docker save` tarballs: `manifest.json` lists each image's config member, its `RepoTags` and
//! its layer members, and the store gets an OCI manifest rsafe writes for them.
//!
//! Both shapes are read: the legacy one (`<hex>.json` config, `<id>/layer.tar` layers, possibly
//! links to `<hex>.tar` as skopeo writes them) and Docker 25+'s (`blobs/sha256/<hex>` members;
//! such a tarball also has an `index.json`, and is then imported as the OCI archive it is).
//!
//! What is verified, since a docker tarball names its layers by path, not by digest:
//! - the config member is named by its digest (`<hex>.json`), and its content must match;
//! - an uncompressed layer must hash to the diff_id the config lists for it (that is what a
//!   diff_id is), so it is stored under that digest only if it matches;
//! - a compressed layer (docker never writes one in the legacy shape, but other tools might)
//!   is decompressed once to check its diff_id, then stored under the digest of its bytes.
//!
//! The manifest uses OCI media types (`application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]`,
//! `…config.v1+json`), not Docker's: the store is an OCI layout that umoci and skopeo read, and
//! umoci refuses Docker media types. The config blob is kept byte for byte, so its digest is
//! still the image ID docker shows.

use std::io::{self, Read};
use std::path::PathBuf;

use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageManifest, ImageManifestBuilder, MediaType,
};

use super::archive::{MemberReader, TarArchive};
use super::digest::{Digest, FinishError, HashingReader, VerifyError};
use super::import::{ImportError, verify_stream};
use super::media::Compression;
use super::store::{MAX_METADATA_BLOB, Store, StoreError};

/// One image as `manifest.json` lists it.
#[derive(Debug, Clone)]
pub struct DockerImage {
    /// The config member, and the digest its name carries.
    pub config_member: String,
    pub config_digest: Digest,
    /// `RepoTags` as written (`docker.io/library/busybox:latest`); empty for an untagged image.
    pub repo_tags: Vec<String>,
    /// Layer members, bottom first.
    pub layers: Vec<String>,
}

#[derive(serde::Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Reads `manifest.json`; `None` when the archive has none (it is not a docker save tarball).
pub fn read_manifest(archive: &TarArchive) -> Result<Option<Vec<DockerImage>>, ImportError> {
    let path = archive.path().to_path_buf();
    let Some(bytes) = archive.read_member("manifest.json", MAX_METADATA_BLOB)? else {
        return Ok(None);
    };
    let entries: Vec<ManifestEntry> =
        serde_json::from_slice(&bytes).map_err(|source| ImportError::Json {
            path: path.clone(),
            what: "manifest.json".into(),
            source,
        })?;
    entries
        .into_iter()
        .map(|e| {
            let config_digest =
                digest_in_name(&e.config).ok_or_else(|| ImportError::Invalid {
                    path: path.clone(),
                    detail: format!(
                        "manifest.json: config member {:?} is not named by its digest (<hex>.json or blobs/sha256/<hex>)",
                        e.config
                    ),
                })?;
            Ok(DockerImage {
                config_member: normalize_member(&e.config),
                config_digest,
                repo_tags: e.repo_tags.unwrap_or_default(),
                layers: e.layers.iter().map(|l| normalize_member(l)).collect(),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Copies `image` (config and layers) into the store and writes an OCI manifest for it.
/// Returns the manifest's descriptor. The caller holds the store's write guard.
pub fn import(
    store: &Store,
    archive: &TarArchive,
    image: &DockerImage,
) -> Result<Descriptor, ImportError> {
    let path = archive.path().to_path_buf();
    let config_bytes = read_config(store, archive, image)?;
    let config: ImageConfiguration =
        serde_json::from_slice(&config_bytes).map_err(|source| ImportError::Json {
            path: path.clone(),
            what: format!("config {}", image.config_member),
            source,
        })?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != image.layers.len() {
        return Err(ImportError::Invalid {
            path,
            detail: format!(
                "manifest.json lists {} layers for {} but its config lists {} diff_ids",
                image.layers.len(),
                image.config_member,
                diff_ids.len()
            ),
        });
    }
    let mut layers = Vec::with_capacity(diff_ids.len());
    for (member, diff_id) in image.layers.iter().zip(diff_ids) {
        let diff_id: Digest = diff_id.parse().map_err(|source| ImportError::Digest {
            path: path.clone(),
            source,
        })?;
        layers.push(import_layer(store, archive, member, &diff_id)?);
    }
    let config_desc = Descriptor::new(
        MediaType::ImageConfig,
        config_bytes.len() as u64,
        &image.config_digest,
    );
    let manifest: ImageManifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_desc)
        .layers(layers)
        .build()
        .map_err(|e| ImportError::Invalid {
            path: path.clone(),
            detail: format!("cannot build a manifest for {}: {e}", image.config_member),
        })?;
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|source| ImportError::Json {
        path: path.clone(),
        what: format!("the manifest written for {}", image.config_member),
        source,
    })?;
    let store_err = |source| ImportError::Store {
        path: path.clone(),
        source,
    };
    store.put_bytes(&config_bytes).map_err(store_err)?;
    let digest = store.put_bytes(&manifest_bytes).map_err(store_err)?;
    Ok(Descriptor::new(
        MediaType::ImageManifest,
        manifest_bytes.len() as u64,
        &digest,
    ))
}

fn read_config(
    store: &Store,
    archive: &TarArchive,
    image: &DockerImage,
) -> Result<Vec<u8>, ImportError> {
    let digest = &image.config_digest;
    let path = archive.path().to_path_buf();
    // The archive's copy is checked even when the store has the config: a tampered member is
    // refused, not hidden by the stored one.
    let bytes = match archive.read_member(&image.config_member, MAX_METADATA_BLOB)? {
        Some(bytes) => bytes,
        None if store.has_blob(digest) => {
            return store
                .read_blob(digest)
                .map_err(|source| ImportError::Store {
                    path: path.clone(),
                    source,
                });
        }
        None => {
            return Err(ImportError::MissingBlob {
                path: path.clone(),
                what: format!("config member {:?}", image.config_member),
                digest: digest.clone(),
            });
        }
    };
    digest
        .verify_bytes(&bytes)
        .map_err(|source| ImportError::Verify {
            path,
            what: format!("config member {:?}", image.config_member),
            digest: digest.clone(),
            source,
        })?;
    Ok(bytes)
}

/// One layer member into the store as a blob, checked against the config's diff_id.
fn import_layer(
    store: &Store,
    archive: &TarArchive,
    member: &str,
    diff_id: &Digest,
) -> Result<Descriptor, ImportError> {
    let layer = LayerMember {
        archive,
        member,
        diff_id,
        path: archive.path().to_path_buf(),
        what: format!("layer member {member:?}"),
    };
    let (mut reader, size) = layer.open()?;
    let compression = sniff(&mut reader).map_err(|e| layer.io_err(e))?;
    let digest = match compression {
        // An uncompressed layer *is* its diff_id's content: put_blob checks it.
        Compression::None => diff_id.clone(),
        Compression::Gzip | Compression::Zstd => layer.compressed_digest(compression)?,
    };
    layer.store(store, &digest, compression, size)?;
    let media_type = match compression {
        Compression::None => MediaType::ImageLayer,
        Compression::Gzip => MediaType::ImageLayerGzip,
        Compression::Zstd => MediaType::ImageLayerZstd,
    };
    Ok(Descriptor::new(media_type, size, &digest))
}

/// One layer member of a `docker save` archive being imported: the member is opened once per
/// pass (sniff, hash, store), and every error names the archive and the member.
struct LayerMember<'a> {
    archive: &'a TarArchive,
    member: &'a str,
    diff_id: &'a Digest,
    path: PathBuf,
    what: String,
}

impl LayerMember<'_> {
    /// The member from its start, with its size; missing is an error naming the diff_id.
    fn open(&self) -> Result<(MemberReader<'_>, u64), ImportError> {
        self.archive
            .open_member(self.member)?
            .ok_or_else(|| ImportError::MissingBlob {
                path: self.path.clone(),
                what: self.what.clone(),
                digest: self.diff_id.clone(),
            })
    }

    /// A read error of the member, as the store would report it.
    fn io_err(&self, source: io::Error) -> ImportError {
        ImportError::Store {
            path: self.path.clone(),
            source: StoreError::Io {
                path: PathBuf::from(self.member),
                source,
            },
        }
    }

    /// The member's content does not have `digest`.
    fn verify_err(&self, digest: &Digest, source: VerifyError) -> ImportError {
        ImportError::Verify {
            path: self.path.clone(),
            what: self.what.clone(),
            digest: digest.clone(),
            source,
        }
    }

    /// A compressed layer's blob digest, after checking that it decompresses to the config's
    /// diff_id and matches a digest its member name spells (`blobs/sha256/…`).
    fn compressed_digest(&self, compression: Compression) -> Result<Digest, ImportError> {
        let (reader, _) = self.open()?;
        let (digest, actual_diff_id) =
            digests_of(reader, compression).map_err(|e| self.io_err(e))?;
        if &actual_diff_id != self.diff_id {
            return Err(self.verify_err(
                self.diff_id,
                VerifyError::Mismatch {
                    expected: self.diff_id.clone(),
                    actual: actual_diff_id,
                },
            ));
        }
        if let Some(named) = digest_in_name(self.member)
            && named != digest
        {
            return Err(self.verify_err(
                &named,
                VerifyError::Mismatch {
                    expected: named.clone(),
                    actual: digest,
                },
            ));
        }
        Ok(digest)
    }

    /// Puts the member into the store as blob `digest`, or, when the store has it already,
    /// still checks an uncompressed member (a compressed one was hashed whole before).
    fn store(
        &self,
        store: &Store,
        digest: &Digest,
        compression: Compression,
        size: u64,
    ) -> Result<(), ImportError> {
        if store.has_blob(digest) {
            // Nothing is written, but the member is still checked: an uncompressed layer is
            // verified only here (a compressed one was hashed whole above).
            if matches!(compression, Compression::None) {
                let (reader, _) = self.open()?;
                verify_stream(reader, digest, size).map_err(|e| match e {
                    FinishError::Verify(source) => self.verify_err(digest, source),
                    FinishError::Io(source) => self.io_err(source),
                })?;
            }
            return Ok(());
        }
        let (reader, _) = self.open()?;
        store
            .put_blob(reader, digest, Some(size))
            .map_err(|e| match e {
                StoreError::Verify { source, .. } => self.verify_err(digest, source),
                source => ImportError::Store {
                    path: self.path.clone(),
                    source,
                },
            })?;
        Ok(())
    }
}

/// How a layer member is compressed, from its first bytes.
fn sniff(reader: &mut impl Read) -> io::Result<Compression> {
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < magic.len() {
        match reader.read(&mut magic[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    })
}

/// (digest of the bytes, digest of the decompressed bytes) in one read.
fn digests_of(reader: impl Read, compression: Compression) -> io::Result<(Digest, Digest)> {
    let mut compressed = HashingReader::new(reader);
    let mut plain = match compression {
        Compression::Gzip => HashingReader::new(Box::new(flate2::read::MultiGzDecoder::new(
            &mut compressed,
        )) as Box<dyn Read>),
        _ => HashingReader::new(
            Box::new(zstd::stream::read::Decoder::new(&mut compressed)?) as Box<dyn Read>
        ),
    };
    io::copy(&mut plain, &mut io::sink())?;
    let (diff_id, _, decoder) = plain.digest();
    drop(decoder);
    io::copy(&mut compressed, &mut io::sink())?;
    let (digest, _, _) = compressed.digest();
    Ok((digest, diff_id))
}

/// The digest a member's name carries: `<hex>.json`, `<hex>.tar`, or `blobs/sha256/<hex>`.
fn digest_in_name(member: &str) -> Option<Digest> {
    let member = normalize_member(member);
    let hex = match member.strip_prefix("blobs/sha256/") {
        Some(hex) => hex,
        None => member
            .strip_suffix(".json")
            .or_else(|| member.strip_suffix(".tar"))?,
    };
    format!("sha256:{hex}").parse().ok()
}

/// Member names in manifest.json are written as the tar has them; compare them canonically.
fn normalize_member(name: &str) -> String {
    name.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_taken_from_member_names() {
        let hex = "75c4a5d0f339ed52e35f3d876fed833de91afa03f0907609f2791a4a63d20b94";
        for name in [
            format!("{hex}.json"),
            format!("./{hex}.tar"),
            format!("blobs/sha256/{hex}"),
        ] {
            assert_eq!(digest_in_name(&name).unwrap().hex(), hex, "{name}");
        }
        assert!(digest_in_name("0c7af82a/layer.tar").is_none());
        assert!(digest_in_name("config.json").is_none());
        assert!(digest_in_name(&format!("blobs/sha512/{hex}")).is_none());
    }

    #[test]
    fn compressed_layers_yield_both_digests() {
        use std::io::Write;
        let tar = b"pretend this is a tar".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(sniff(&mut &gz[..]).unwrap(), Compression::Gzip);
        let (digest, diff_id) = digests_of(&gz[..], Compression::Gzip).unwrap();
        assert_eq!(digest, Digest::of_bytes(&gz));
        assert_eq!(diff_id, Digest::of_bytes(&tar));
        assert_eq!(sniff(&mut &tar[..]).unwrap(), Compression::None);
    }
}
