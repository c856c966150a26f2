//! Copying an image from an OCI layout (a directory or an archive's members) into the store,
//! verifying every blob on the way.
//!
//! The walk starts at one descriptor of the source's `index.json` and goes down: index →
//! manifest(s) → config and layers. Nothing is trusted before it is checked:
//! - a descriptor's digest must be `sha256:<64 hex>`, its media type one rsafe understands
//!   (an unknown layer type is an error naming it, not a guess);
//! - manifests, indexes and configs are read whole only up to [`MAX_METADATA_BLOB`], checked
//!   against the descriptor's digest and size, and parsed;
//! - layers stream through [`Store::put_blob`], which checks digest and size before the blob
//!   becomes visible.
//!
//! Blobs are written bottom-up (layers, config, manifest, index), so a manifest in the store
//! always has its config and layers beside it; naming the image is the caller's last step.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use super::archive::{ArchiveError, TarArchive};
use super::config::{Platform, select_platform};
use super::digest::{Digest, DigestError, FinishError, HashingReader, VerifyError};
use super::layout::{LayoutDir, LayoutError, blob_member};
use super::media::{Kind, classify};
use super::store::{MAX_METADATA_BLOB, Store, StoreError};

/// The annotation docker/buildx put on an index entry that is an attestation, not an image.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// Indexes nested deeper than this are refused (a cycle would otherwise never end).
const MAX_INDEX_DEPTH: usize = 4;

/// Why an image could not be imported; every variant names the source file or directory.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{path}: {source}")]
    Store { path: PathBuf, source: StoreError },
    #[error("{path}: {source}")]
    Digest { path: PathBuf, source: DigestError },
    #[error("{path}: blob {digest} ({what}) is missing")]
    MissingBlob {
        path: PathBuf,
        what: String,
        digest: Digest,
    },
    #[error("{path}: {what}: {source}")]
    Verify {
        path: PathBuf,
        what: String,
        digest: Digest,
        source: VerifyError,
    },
    #[error("{path}: {what} is not valid: {source}")]
    Json {
        path: PathBuf,
        what: String,
        source: serde_json::Error,
    },
    #[error(
        "{path}: blob {digest} ({what}) has media type {media_type:?}, which rsafe does not handle"
    )]
    MediaType {
        path: PathBuf,
        what: String,
        digest: Digest,
        media_type: String,
    },
    #[error("{path}: blob {digest} ({what}) is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        path: PathBuf,
        what: String,
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error(
        "{path}: index {digest} has no image for platform {platform} (it has: {available}); pick one with --platform, or load --all-platforms"
    )]
    NoPlatform {
        path: PathBuf,
        digest: Digest,
        /// `os/arch[/variant]` (a string keeps the error small).
        platform: String,
        available: String,
    },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

/// Which manifests of a multi-platform index to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformChoice {
    /// Only the manifest for this platform; the stored name points at that manifest.
    One(Platform),
    /// Every manifest and the index itself; the stored name points at the index.
    All,
}

/// An opened file of a source: the reader and its size.
pub type SourceFile<'a> = (Box<dyn Read + 'a>, u64);

/// Where the importer reads an OCI layout from: a directory or a tar archive's members.
pub trait Source {
    /// The file or directory, for error messages.
    fn path(&self) -> &Path;
    /// Reads a small file whole, refusing one over `limit`; `None` if it is absent.
    fn read_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, ImportError>;
    /// Opens a file for streaming: the reader and its size; `None` if it is absent.
    fn open_file(&self, name: &str) -> Result<Option<SourceFile<'_>>, ImportError>;
}

impl Source for TarArchive {
    fn path(&self) -> &Path {
        TarArchive::path(self)
    }
    fn read_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, ImportError> {
        Ok(self.read_member(name, limit)?)
    }
    fn open_file(&self, name: &str) -> Result<Option<SourceFile<'_>>, ImportError> {
        Ok(self
            .open_member(name)?
            .map(|(r, size)| (Box::new(r) as Box<dyn Read>, size)))
    }
}

impl Source for LayoutDir {
    fn path(&self) -> &Path {
        LayoutDir::path(self)
    }
    fn read_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, ImportError> {
        Ok(LayoutDir::read_file(self, name, limit)?)
    }
    fn open_file(&self, name: &str) -> Result<Option<SourceFile<'_>>, ImportError> {
        Ok(LayoutDir::open_file(self, name)?.map(|(f, size)| (Box::new(f) as Box<dyn Read>, size)))
    }
}

/// Reads and checks the source's `oci-layout` and `index.json`: the images it offers.
pub fn read_index(source: &dyn Source) -> Result<ImageIndex, ImportError> {
    let path = source.path().to_path_buf();
    if let Some(bytes) = source.read_file("oci-layout", MAX_METADATA_BLOB)? {
        let header: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| ImportError::Json {
                path: path.clone(),
                what: "oci-layout".into(),
                source,
            })?;
        if header.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(ImportError::Invalid {
                path,
                detail: "oci-layout: imageLayoutVersion is not \"1.0.0\"".into(),
            });
        }
    }
    let bytes = source
        .read_file("index.json", MAX_METADATA_BLOB)?
        .ok_or_else(|| ImportError::Invalid {
            path: path.clone(),
            detail: "index.json is missing".into(),
        })?;
    serde_json::from_slice(&bytes).map_err(|source| ImportError::Json {
        path,
        what: "index.json".into(),
        source,
    })
}

/// Copies images from one source into one store.
pub struct Importer<'a> {
    store: &'a Store,
    source: &'a dyn Source,
    platforms: &'a PlatformChoice,
}

impl<'a> Importer<'a> {
    pub fn new(
        store: &'a Store,
        source: &'a dyn Source,
        platforms: &'a PlatformChoice,
    ) -> Importer<'a> {
        Importer {
            store,
            source,
            platforms,
        }
    }

    fn path(&self) -> PathBuf {
        self.source.path().to_path_buf()
    }

    /// Imports the image `desc` (an entry of the source's index.json) and returns the
    /// descriptor a name should point at: the manifest, or the index with
    /// [`PlatformChoice::All`]. The caller holds the store's write guard.
    pub fn import(&self, desc: &Descriptor) -> Result<Descriptor, ImportError> {
        self.import_at(desc, 0)
    }

    fn import_at(&self, desc: &Descriptor, depth: usize) -> Result<Descriptor, ImportError> {
        let digest = self.digest(desc.digest())?;
        match self.kind(desc, &digest, "image")? {
            Kind::Manifest => {
                self.import_manifest(desc, &digest)?;
                Ok(bare_descriptor(desc))
            }
            Kind::Index if depth >= MAX_INDEX_DEPTH => Err(ImportError::Invalid {
                path: self.path(),
                detail: format!("index {digest}: indexes nested too deep"),
            }),
            Kind::Index => {
                let bytes = self.read_metadata(desc, &digest, "index")?;
                let index: ImageIndex = self.parse(&bytes, format!("index {digest}"))?;
                self.check_own_media_type(index.media_type().as_ref(), desc, &digest, "index")?;
                match self.platforms {
                    PlatformChoice::One(platform) => {
                        let chosen = select_image(&index, &digest, platform).map_err(
                            |(platform, available)| ImportError::NoPlatform {
                                path: self.path(),
                                digest: digest.clone(),
                                platform: platform.to_string(),
                                available,
                            },
                        )?;
                        let mut picked = self.import_at(chosen, depth + 1)?;
                        picked.set_platform(chosen.platform().clone());
                        Ok(picked)
                    }
                    PlatformChoice::All => {
                        for child in index.manifests() {
                            if is_attestation(child) {
                                self.import_attestation(child)?;
                            } else {
                                self.import_at(child, depth + 1)?;
                            }
                        }
                        self.put_metadata(&bytes)?;
                        Ok(bare_descriptor(desc))
                    }
                }
            }
            Kind::Config | Kind::Layer(_) => Err(ImportError::Invalid {
                path: self.path(),
                detail: format!(
                    "{digest} has media type {}, which is not an image (manifest or index)",
                    desc.media_type()
                ),
            }),
        }
    }

    fn import_manifest(&self, desc: &Descriptor, digest: &Digest) -> Result<(), ImportError> {
        let what = format!("manifest {digest}");
        // Checked against the descriptor even when the store has it: the descriptor (size,
        // media type) is what the store's index.json will carry.
        let bytes = self.read_metadata(desc, digest, "manifest")?;
        let manifest: ImageManifest = self.parse(&bytes, what.clone())?;
        self.check_own_media_type(manifest.media_type().as_ref(), desc, digest, "manifest")?;
        let config_desc = manifest.config();
        let config_digest = self.digest(config_desc.digest())?;
        let config_what = format!("config of {what}");
        if self.kind(config_desc, &config_digest, &config_what)? != Kind::Config {
            return Err(ImportError::Invalid {
                path: self.path(),
                detail: format!(
                    "{what}: config {config_digest} has media type {}, not an image config",
                    config_desc.media_type()
                ),
            });
        }
        let config_bytes = self.read_metadata(config_desc, &config_digest, &config_what)?;
        let config: ImageConfiguration =
            self.parse(&config_bytes, format!("config {config_digest}"))?;
        if config.rootfs().diff_ids().len() != manifest.layers().len() {
            return Err(ImportError::Invalid {
                path: self.path(),
                detail: format!(
                    "{what} has {} layers but its config lists {} diff_ids",
                    manifest.layers().len(),
                    config.rootfs().diff_ids().len()
                ),
            });
        }
        for (i, layer) in manifest.layers().iter().enumerate() {
            let layer_digest = self.digest(layer.digest())?;
            let layer_what = format!("layer {} of {what}", i + 1);
            match self.kind(layer, &layer_digest, &layer_what)? {
                Kind::Layer(_) => {}
                _ => {
                    return Err(ImportError::Invalid {
                        path: self.path(),
                        detail: format!(
                            "{layer_what} (blob {layer_digest}) has media type {}, not a layer",
                            layer.media_type()
                        ),
                    });
                }
            }
            self.copy_blob(layer, &layer_digest, &layer_what)?;
        }
        self.put_metadata(&config_bytes)?;
        self.put_metadata(&bytes)?;
        Ok(())
    }

    /// A buildx attestation (SBOM, provenance) rides along in an index: its blobs are copied
    /// verified by digest but not interpreted (their media types are not image layers), and it
    /// is skipped when the source does not carry all of them (docker save often drops them).
    fn import_attestation(&self, desc: &Descriptor) -> Result<(), ImportError> {
        let digest = self.digest(desc.digest())?;
        let what = format!("attestation manifest {digest}");
        if !self.available(&digest)? {
            return Ok(());
        }
        let bytes = self.read_metadata(desc, &digest, "attestation manifest")?;
        let manifest: ImageManifest = self.parse(&bytes, what.clone())?;
        let blobs: Vec<&Descriptor> = std::iter::once(manifest.config())
            .chain(manifest.layers())
            .collect();
        for blob in &blobs {
            if !self.available(&self.digest(blob.digest())?)? {
                return Ok(());
            }
        }
        for blob in blobs {
            self.copy_blob(
                blob,
                &self.digest(blob.digest())?,
                &format!("blob of {what}"),
            )?;
        }
        self.put_metadata(&bytes)?;
        Ok(())
    }

    fn available(&self, digest: &Digest) -> Result<bool, ImportError> {
        Ok(self.store.has_blob(digest) || self.source.open_file(&blob_member(digest))?.is_some())
    }

    /// Streams a blob from the source into the store, checked against the descriptor's digest
    /// and size. When the store already has the blob, the source's copy is still read and
    /// checked (nothing is written): an archive whose member does not hold what its manifest
    /// names is refused, even though the stored, verified blob would be the one used. A source
    /// without the member claims nothing, and the stored blob serves.
    pub fn copy_blob(
        &self,
        desc: &Descriptor,
        digest: &Digest,
        what: &str,
    ) -> Result<(), ImportError> {
        let member = blob_member(digest);
        let what = format!("{what}, member {member}");
        let stored = self.store.has_blob(digest);
        let Some((reader, size)) = self.source.open_file(&member)? else {
            return if stored {
                Ok(())
            } else {
                Err(self.missing(&what, digest))
            };
        };
        if size != desc.size() {
            return Err(ImportError::Verify {
                path: self.path(),
                what,
                digest: digest.clone(),
                source: VerifyError::Size {
                    digest: digest.clone(),
                    expected: desc.size(),
                    actual: size,
                },
            });
        }
        if stored {
            return verify_stream(reader, digest, size).map_err(|e| match e {
                FinishError::Verify(source) => ImportError::Verify {
                    path: self.path(),
                    what,
                    digest: digest.clone(),
                    source,
                },
                FinishError::Io(source) => ImportError::Store {
                    path: self.path(),
                    source: StoreError::Io {
                        path: PathBuf::from(member),
                        source,
                    },
                },
            });
        }
        self.store
            .put_blob(reader, digest, Some(desc.size()))
            .map_err(|e| self.store_error(e, &what, digest))
    }

    /// Reads a manifest, index or config: from the store when it has it (verified there),
    /// else from the source, checked against the descriptor before anything parses it.
    fn read_metadata(
        &self,
        desc: &Descriptor,
        digest: &Digest,
        what: &str,
    ) -> Result<Vec<u8>, ImportError> {
        if desc.size() > MAX_METADATA_BLOB {
            return Err(ImportError::TooLarge {
                path: self.path(),
                what: what.to_string(),
                digest: digest.clone(),
                size: desc.size(),
                limit: MAX_METADATA_BLOB,
            });
        }
        // The source's copy when it has one, even if the store has the blob: what an archive
        // says is checked against what it holds. The store's copy is verified where it is read.
        let member = blob_member(digest);
        let bytes = match self.source.read_file(&member, MAX_METADATA_BLOB)? {
            Some(bytes) => bytes,
            None if self.store.has_blob(digest) => self
                .store
                .read_blob(digest)
                .map_err(|e| self.store_error(e, what, digest))?,
            None => return Err(self.missing(what, digest)),
        };
        let verify = |source| ImportError::Verify {
            path: self.path(),
            what: format!("{what}, member {member}"),
            digest: digest.clone(),
            source,
        };
        if bytes.len() as u64 != desc.size() {
            return Err(verify(VerifyError::Size {
                digest: digest.clone(),
                expected: desc.size(),
                actual: bytes.len() as u64,
            }));
        }
        digest.verify_bytes(&bytes).map_err(verify)?;
        Ok(bytes)
    }

    fn put_metadata(&self, bytes: &[u8]) -> Result<Digest, ImportError> {
        self.store
            .put_bytes(bytes)
            .map_err(|source| ImportError::Store {
                path: self.path(),
                source,
            })
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        bytes: &[u8],
        what: String,
    ) -> Result<T, ImportError> {
        serde_json::from_slice(bytes).map_err(|source| ImportError::Json {
            path: self.path(),
            what,
            source,
        })
    }

    fn digest(&self, d: &oci_spec::image::Digest) -> Result<Digest, ImportError> {
        Digest::try_from(d).map_err(|source| ImportError::Digest {
            path: self.path(),
            source,
        })
    }

    fn kind(&self, desc: &Descriptor, digest: &Digest, what: &str) -> Result<Kind, ImportError> {
        classify(desc.media_type()).map_err(|e| ImportError::MediaType {
            path: self.path(),
            what: what.to_string(),
            digest: digest.clone(),
            media_type: e.0,
        })
    }

    /// A manifest or index that states its own media type must agree with the descriptor that
    /// pointed at it (otherwise one blob could be read as two different things).
    fn check_own_media_type(
        &self,
        own: Option<&oci_spec::image::MediaType>,
        desc: &Descriptor,
        digest: &Digest,
        what: &str,
    ) -> Result<(), ImportError> {
        match own {
            Some(own) if own != desc.media_type() => Err(ImportError::Invalid {
                path: self.path(),
                detail: format!(
                    "{what} {digest} says it is {own}, but was referenced as {}",
                    desc.media_type()
                ),
            }),
            _ => Ok(()),
        }
    }

    fn missing(&self, what: &str, digest: &Digest) -> ImportError {
        ImportError::MissingBlob {
            path: self.path(),
            what: what.to_string(),
            digest: digest.clone(),
        }
    }

    fn store_error(&self, e: StoreError, what: &str, digest: &Digest) -> ImportError {
        match e {
            StoreError::Verify { source, .. } => ImportError::Verify {
                path: self.path(),
                what: what.to_string(),
                digest: digest.clone(),
                source,
            },
            source => ImportError::Store {
                path: self.path(),
                source,
            },
        }
    }
}

/// Reads `reader` to its end (at most one byte past `size`) and checks it is `size` bytes
/// hashing to `digest`, keeping nothing: an archive's copy of a blob the store already has.
pub(super) fn verify_stream(
    reader: impl Read,
    digest: &Digest,
    size: u64,
) -> Result<(), FinishError> {
    HashingReader::new(reader.take(size.saturating_add(1)))
        .finish(digest, Some(size))
        .map(drop)
}

/// The image entries of an index for `platform`, skipping attestations; as
/// [`select_platform`], but the error is returned as (platform, what the index has).
fn select_image<'i>(
    index: &'i ImageIndex,
    digest: &Digest,
    platform: &Platform,
) -> Result<&'i Descriptor, (Platform, String)> {
    let mut images = index.clone();
    images.set_manifests(
        index
            .manifests()
            .iter()
            .filter(|d| !is_attestation(d))
            .cloned()
            .collect(),
    );
    let chosen = select_platform(&images, digest, platform).map_err(|e| match e {
        super::config::ImageError::NoPlatform {
            platform,
            available,
            ..
        } => (platform, available),
        other => (platform.clone(), other.to_string()),
    })?;
    index
        .manifests()
        .iter()
        .find(|d| d.digest() == chosen.digest() && d.platform() == chosen.platform())
        .ok_or_else(|| (platform.clone(), String::new()))
}

fn is_attestation(desc: &Descriptor) -> bool {
    desc.annotations()
        .as_ref()
        .and_then(|a| a.get(REFERENCE_TYPE))
        .is_some_and(|t| t == "attestation-manifest")
}

/// The descriptor the store's index.json gets: media type, digest and size only (the source's
/// annotations name things in the source, not in the store).
pub fn bare_descriptor(desc: &Descriptor) -> Descriptor {
    let mut bare = desc.clone();
    bare.set_annotations(None);
    bare.set_urls(None);
    bare.set_data(None);
    bare
}
