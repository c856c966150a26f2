//! An image in the store, opened: its manifest, its config (Entrypoint, Env, User, history…) and
//! its layers, each with the history entry that made it. This is what `run`, `audit`, `unpack`,
//! `inspect` and `history` all start from.

use oci_spec::image::{Descriptor, History, ImageConfiguration, ImageIndex, ImageManifest};

use super::digest::{Digest, DigestError};
use super::layer::{self, Expect, LayerError, LayerStream};
use super::media::{self, Compression, Kind, UnsupportedMediaType};
use super::store::{Store, StoreError};

/// Why an image could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error("manifest {digest}: {source}")]
    Media {
        digest: Digest,
        source: UnsupportedMediaType,
    },
    #[error("manifest {digest}: {detail}")]
    Invalid { digest: Digest, detail: String },
    #[error("index {digest} has no manifest for platform {platform} (it has: {available})")]
    NoPlatform {
        digest: Digest,
        platform: Platform,
        available: String,
    },
    #[error(transparent)]
    Layer(#[from] LayerError),
}

/// An OS/architecture pair (with optional variant) for picking a manifest out of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on, in OCI terms (`linux/amd64`, `linux/arm64`…).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    fn matches(&self, p: &oci_spec::image::Platform) -> bool {
        p.os().to_string() == self.os
            && p.architecture().to_string() == self.architecture
            && match (&self.variant, p.variant()) {
                (None, _) => true,
                (Some(v), Some(pv)) => v == pv,
                (Some(_), None) => false,
            }
    }
}

impl std::str::FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform {
                    os: os.to_string(),
                    architecture: arch.to_string(),
                    variant: Some(variant.to_string()),
                })
            }
            _ => Err(format!(
                "invalid platform {s:?} (expected os/arch[/variant])"
            )),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Picks the manifest for `platform` out of an index (OCI index or Docker manifest list).
pub fn select_platform<'a>(
    index: &'a ImageIndex,
    index_digest: &Digest,
    platform: &Platform,
) -> Result<&'a Descriptor, ImageError> {
    index
        .manifests()
        .iter()
        .find(|d| d.platform().as_ref().is_some_and(|p| platform.matches(p)))
        .ok_or_else(|| ImageError::NoPlatform {
            digest: index_digest.clone(),
            platform: platform.clone(),
            available: index
                .manifests()
                .iter()
                .filter_map(|d| d.platform().as_ref())
                .map(|p| format!("{}/{}", p.os(), p.architecture()))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// One layer of an image, with what is known about it.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    /// 0-based position, bottom first.
    pub index: usize,
    pub descriptor: Descriptor,
    pub digest: Digest,
    pub compression: Compression,
    /// The uncompressed digest from the config, the key of the extracted-layer cache.
    pub diff_id: Digest,
    /// The history entry that produced this layer (history entries with `empty_layer` skipped).
    pub history: Option<History>,
}

/// An image opened from the store: manifest and config parsed and verified.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
    layers: Vec<LayerInfo>,
}

impl Image {
    /// Opens the image `name` (a store ref name) for `platform`.
    pub fn open(store: &Store, name: &str, platform: &Platform) -> Result<Image, ImageError> {
        let desc = store.resolve(name)?;
        Image::from_descriptor(store, &desc, platform)
    }

    /// Opens the image a descriptor points at: a manifest, or an index to pick `platform` from.
    pub fn from_descriptor(
        store: &Store,
        desc: &Descriptor,
        platform: &Platform,
    ) -> Result<Image, ImageError> {
        let mut digest = Digest::try_from(desc.digest())?;
        let mut media_type = desc.media_type().clone();
        // Indexes may nest (an index of indexes); a small bound keeps a cycle from looping.
        for _ in 0..4 {
            match media::classify(&media_type).map_err(|source| ImageError::Media {
                digest: digest.clone(),
                source,
            })? {
                Kind::Index => {
                    let index: ImageIndex = store.read_json(&digest)?;
                    let chosen = select_platform(&index, &digest, platform)?;
                    media_type = chosen.media_type().clone();
                    digest = Digest::try_from(chosen.digest())?;
                }
                Kind::Manifest => return Image::from_manifest(store, digest),
                Kind::Config | Kind::Layer(_) => {
                    return Err(ImageError::Invalid {
                        digest,
                        detail: format!("{media_type} is not a manifest or index"),
                    });
                }
            }
        }
        Err(ImageError::Invalid {
            digest,
            detail: "indexes nested too deep".into(),
        })
    }

    /// Opens the image whose manifest is blob `digest`.
    pub fn from_manifest(store: &Store, digest: Digest) -> Result<Image, ImageError> {
        let manifest: ImageManifest = store.read_json(&digest)?;
        let config_digest = Digest::try_from(manifest.config().digest())?;
        let config: ImageConfiguration = store.read_json(&config_digest)?;
        let invalid = |detail: String| ImageError::Invalid {
            digest: digest.clone(),
            detail,
        };
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(invalid(format!(
                "{} layers but the config lists {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
            )));
        }
        let mut history = config
            .history()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|h| !h.empty_layer().unwrap_or(false));
        let mut layers = Vec::with_capacity(diff_ids.len());
        for (index, (desc, diff_id)) in manifest.layers().iter().zip(diff_ids).enumerate() {
            let layer_digest = Digest::try_from(desc.digest())?;
            let compression = match media::classify(desc.media_type()) {
                Ok(Kind::Layer(c)) => c,
                Ok(_) => {
                    return Err(invalid(format!(
                        "layer {layer_digest} has media type {}, not a layer",
                        desc.media_type()
                    )));
                }
                Err(source) => {
                    return Err(ImageError::Media {
                        digest: layer_digest,
                        source,
                    });
                }
            };
            layers.push(LayerInfo {
                index,
                descriptor: desc.clone(),
                digest: layer_digest,
                compression,
                diff_id: diff_id.parse()?,
                history: history.next().cloned(),
            });
        }
        Ok(Image {
            manifest_digest: digest,
            manifest,
            config_digest,
            config,
            layers,
        })
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    /// Total compressed size of the layers (what `rsafe images` shows).
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.descriptor.size()).sum()
    }

    /// Streams layer `layer` as a decompressed tar, verified against digest, size and diff_id as
    /// it is read (see [`LayerStream::finish`]), expanding to at most `max_expanded` bytes.
    pub fn open_layer(
        &self,
        store: &Store,
        layer: &LayerInfo,
        max_expanded: u64,
    ) -> Result<LayerStream, ImageError> {
        let file = store.open_blob(&layer.digest)?;
        Ok(LayerStream::new(
            file,
            layer.compression,
            Expect {
                digest: layer.digest.clone(),
                size: Some(layer.descriptor.size()),
                diff_id: Some(layer.diff_id.clone()),
                max_expanded,
            },
        )?)
    }
}

/// Re-exported default for callers that do not take a `--max-layer-size` flag.
pub use layer::DEFAULT_MAX_EXPANDED;
