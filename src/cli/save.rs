//! `rsafe save`: images out of the store into one tarball, as `docker save` and `podman save`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Result, anyhow};

use super::Global;
use crate::image::save::{Format, OutputFile, plan, write};

/// Save images to a tarball that docker, podman, skopeo and `rsafe load` load
///
/// IMAGE is a name, a digest or a digest prefix (as `rmi` takes it), or a bare repository
/// (`busybox`), which saves every tag of it, as `docker save` does. Several images share their
/// common layers once. A multi-platform image is saved for the host's platform.
///
/// `docker-archive` (the default) is Docker 25+'s `docker save` tarball, which is also an OCI
/// archive: uncompressed layers, each checked against its diff_id. `oci-archive` keeps the blobs
/// and manifests as stored (same image digests).
///
/// Without `-o`, the tarball goes to standard output, which must not be a terminal. With `-o`,
/// FILE appears (replacing an old one) only once the archive is whole: a failed or killed save
/// leaves none. An unknown image is one line naming it, exit code 1, and nothing is written.
#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// Names, digests or digest prefixes.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The tarball's format.
    #[arg(long, value_enum, default_value_t = SaveFormat::DockerArchive)]
    pub format: SaveFormat,
}

/// The formats podman's `save --format` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SaveFormat {
    DockerArchive,
    OciArchive,
}

/// Resolves every image, then writes the tarball.
pub fn run(args: SaveArgs, global: &Global) -> Result<i32> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(anyhow!(
            "cowardly refusing to save to a terminal: use -o FILE or redirect standard output"
        ));
    }
    let store = global.store()?;
    let format = match args.format {
        SaveFormat::DockerArchive => Format::DockerArchive,
        SaveFormat::OciArchive => Format::OciArchive,
    };
    let plan = plan(&store, &args.images, format)?;
    match &args.output {
        Some(path) => {
            let mut file = OutputFile::create(path)?;
            write(&store, &plan, file.file())?;
            file.persist()?;
        }
        None => {
            let stdout = std::io::stdout().lock();
            write(&store, &plan, stdout)?.flush()?;
        }
    }
    if global.verbose {
        for planned in &plan.images {
            eprintln!(
                "saved {} ({})",
                planned.image.manifest_digest,
                planned.names.join(", ")
            );
        }
    }
    Ok(0)
}
