//! `rsafe load`: images from a docker save tarball, an OCI archive or an OCI layout into the store.

use std::io::IsTerminal;

use anyhow::{Result, bail};

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
///
/// With no PATH and no `-i`, the archive is read from standard input, as `docker load` and
/// `podman load` do (`rsafe load < app.tar`); a terminal there is refused.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Archive or layout to load: PATH or PATH:REF (several may be given); `-` reads an
    /// archive from standard input.
    #[arg(value_name = "PATH[:REF]")]
    pub inputs: Vec<String>,
    /// The archive to load, as `docker load -i`/`--input` (the same as a PATH; may be
    /// repeated).
    #[arg(short = 'i', long = "input", value_name = "PATH[:REF]")]
    pub input: Vec<String>,
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
    let inputs = inputs(args.input, args.inputs, std::io::stdin().is_terminal())?;
    let store = global.store()?;
    let options = LoadOptions {
        platforms: if args.all_platforms {
            PlatformChoice::All
        } else {
            PlatformChoice::One(args.platform.unwrap_or_else(Platform::host))
        },
        name: args.name,
    };
    for input in &inputs {
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

/// What to load: `-i` inputs, then the positional ones; none means standard input, unless it is
/// a terminal (nothing would ever come).
fn inputs(
    flagged: Vec<String>,
    positional: Vec<String>,
    stdin_is_tty: bool,
) -> Result<Vec<String>> {
    let all: Vec<String> = flagged.into_iter().chain(positional).collect();
    match (all.is_empty(), stdin_is_tty) {
        (false, _) => Ok(all),
        (true, false) => Ok(vec!["-".to_string()]),
        (true, true) => bail!(
            "no archive to load: give one (`rsafe load -i app.tar`) or pipe it in (`rsafe load < app.tar`)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_come_from_flags_paths_or_stdin() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            inputs(s(&["a.tar"]), s(&["b.tar"]), true).unwrap(),
            s(&["a.tar", "b.tar"])
        );
        assert_eq!(inputs(vec![], vec![], false).unwrap(), s(&["-"]));
        let err = inputs(vec![], vec![], true).unwrap_err().to_string();
        assert!(err.contains("rsafe load -i"), "{err}");
    }
}
