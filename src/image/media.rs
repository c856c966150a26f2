//! What a descriptor's media type means to rsafe: index, manifest, config, or a layer with a
//! given compression. OCI and Docker v2 schema 2 types are understood; anything else is refused
//! by name rather than guessed at.

use oci_spec::image::MediaType;

/// Docker's manifest list (the Docker twin of an OCI index).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The role a blob plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Index,
    Manifest,
    Config,
    Layer(Compression),
}

/// A media type rsafe does not handle.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unsupported media type {0:?}")]
pub struct UnsupportedMediaType(pub String);

/// Classifies a media type; unknown types (Docker schema 1, encrypted layers, artifacts) are an
/// error naming the type.
pub fn classify(media_type: &MediaType) -> Result<Kind, UnsupportedMediaType> {
    use Compression::*;
    Ok(match media_type {
        MediaType::ImageIndex => Kind::Index,
        MediaType::ImageManifest => Kind::Manifest,
        MediaType::ImageConfig => Kind::Config,
        MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Kind::Layer(None),
        MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => Kind::Layer(Gzip),
        MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => Kind::Layer(Zstd),
        MediaType::Other(s) => match s.as_str() {
            DOCKER_MANIFEST_LIST => Kind::Index,
            DOCKER_MANIFEST => Kind::Manifest,
            DOCKER_CONFIG => Kind::Config,
            DOCKER_LAYER_GZIP | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Kind::Layer(Gzip)
            }
            "application/vnd.docker.image.rootfs.diff.tar" => Kind::Layer(None),
            "application/vnd.docker.image.rootfs.diff.tar.zstd" => Kind::Layer(Zstd),
            _ => return Err(UnsupportedMediaType(s.clone())),
        },
        other => return Err(UnsupportedMediaType(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_and_docker_types() {
        let k = |s: &str| classify(&MediaType::from(s));
        assert_eq!(
            k("application/vnd.oci.image.layer.v1.tar+zstd"),
            Ok(Kind::Layer(Compression::Zstd))
        );
        assert_eq!(k(DOCKER_LAYER_GZIP), Ok(Kind::Layer(Compression::Gzip)));
        assert_eq!(k(DOCKER_MANIFEST_LIST), Ok(Kind::Index));
        assert_eq!(
            k("application/vnd.oci.image.manifest.v1+json"),
            Ok(Kind::Manifest)
        );
        assert!(k("application/vnd.docker.distribution.manifest.v1+prettyjws").is_err());
        assert!(k("application/vnd.oci.image.layer.v1.tar+encrypted").is_err());
    }
}
