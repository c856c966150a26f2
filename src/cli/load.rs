//! `rsafe load`: images from a docker save tarball, an OCI archive or an OCI layout into the store.

use anyhow::Result;

use super::Global;
use crate::image::Platform;
use crate::image::import::PlatformChoice;
use crate::image::load::{LoadOptions, load_path_with};

/// Load images from a docker save tarball, an OCI archive or an OCI image layout
///
/// Loads from a `docker save` tarball (legacy or Docker 25+, optionally gzip- or
/// zstd-compressed), an OCI archive, or an OCI image layout directory. Every blob is checked against its digest before it is stored; if anything fails, nothing is
/// named and what was copied is collected again.
///
/// PATH may be `PATH:REF` to load one image out of several (REF is a ref name, a full name or a
/// digest); the spec is split at the first `:` whose left side exists, like skopeo's `oci:`.
///
/// Names: a docker tarball's RepoTags and a containerd/Docker 25+ `io.containerd.image.name`
/// are used as they are (`docker.io/library/busybox:1` is stored as `busybox:1`). An OCI ref
/// name that is a bare tag (`latest`) is filed under the archive's file name without extension
/// (`./app.tar` → `app:latest`). `--name` overrides the repository. An image without any name is
/// kept by digest (listed as `<none>`).
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Archive or layout to load: PATH or PATH:REF (several may be given); `-` reads an
    /// archive from standard input.
    #[arg(required = true, value_name = "PATH[:REF]")]
    pub inputs: Vec<String>,
    /// From a multi-platform image, load the manifest for this platform (os/arch[/variant]).
    /// Default: the host's.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<Platform>,
    /// Load every platform of a multi-platform image (the name then points at its index).
    #[arg(long, conflicts_with = "platform")]
    pub all_platforms: bool,
    /// Store the images under this repository instead of the names the archive carries
    /// (their tags are kept); with a tag (`app:1.0`), the one image loaded gets exactly it.
    #[arg(long, value_name = "REPO[:TAG]")]
    pub name: Option<String>,
}

/// Loads each input in turn; stops at the first failure (earlier inputs stay loaded).
pub fn run(args: LoadArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let options = LoadOptions {
        platforms: if args.all_platforms {
            PlatformChoice::All
        } else {
            PlatformChoice::One(args.platform.unwrap_or_else(Platform::host))
        },
        name: args.name,
    };
    for input in &args.inputs {
        for loaded in load_path_with(&store, input, &options)? {
            if loaded.name == loaded.descriptor.digest().to_string() {
                println!("Loaded image digest: {}", loaded.name);
            } else {
                println!("Loaded image: {}", loaded.name);
            }
            if global.verbose {
                eprintln!(
                    "  {} {} ({} bytes)",
                    loaded.descriptor.media_type(),
                    loaded.descriptor.digest(),
                    loaded.descriptor.size()
                );
            }
        }
    }
    Ok(0)
}
