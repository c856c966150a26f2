//! `rsafe unpack IMAGE DIR`: an image's root filesystem, flattened, written safely to a
//! directory; `rsafe unpack --layers IMAGE`: the image's layers in the shared cache, one
//! directory each, printed bottom first (what `rsafe run` stacks with overlayfs).
//!
//! IMAGE is what `run` and `audit` take: a store name or digest, or an archive or OCI layout
//! on disk (`FILE[:REF]`, `-` for stdin), loaded through the same loader
//! ([`crate::image::resolve`]). For `unpack DIR` the archive goes to a temporary store that is
//! removed afterwards (nothing is added to yours); `--layers` fills your store's layer cache,
//! so the archive is loaded into your store first, as `rsafe run ./app.tar` does.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::Global;
use super::audit::{scratch_dir, target::spelled_as_path};
use crate::image::resolve::{self, ResolveOptions, Resolved};
use crate::image::unpack::{self, DEFAULT_MAX_ENTRIES, LayerCache, Limits, Ownership, UnpackStats};
use crate::image::{Platform, Store, load};

/// Write an image's root filesystem into a directory (all layers applied, whiteouts honoured).
#[derive(Debug, clap::Args)]
pub struct UnpackArgs {
    /// Image: a name or digest in the store (as `rsafe images` lists it), or a `docker save`
    /// tarball, OCI archive or OCI layout (`PATH[:REF]`, `-` for stdin). Never pulled.
    pub image: String,
    /// Directory to write into: created, or an existing empty directory.
    #[arg(required_unless_present = "layers")]
    pub dir: Option<PathBuf>,
    /// Extract into the shared layer cache instead and print the layer directories, bottom
    /// first (overlay lowerdirs).
    #[arg(long, conflicts_with = "dir")]
    pub layers: bool,
    /// Platform to pick from a multi-platform image (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,
    /// Who owns the files: `preserve` (image ids; root's default), `caller` (you, with the
    /// image's owner in the xattr user.rsafe.owner; everyone else's default), or
    /// `shift:UID:GID:COUNT` (image id n becomes UID+n / GID+n).
    #[arg(long, value_name = "MODE")]
    pub ownership: Option<Ownership>,
    /// Refuse a layer that expands past this size (decompression bombs). Suffixes K, M, G, T.
    #[arg(long, value_name = "SIZE", default_value = "64G", value_parser = parse_size)]
    pub max_layer_size: u64,
    /// Refuse a layer with more tar entries than this (inode-exhaustion bombs).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ENTRIES)]
    pub max_entries: u64,
}

/// Runs `rsafe unpack`.
pub fn run(args: UnpackArgs, global: &Global) -> anyhow::Result<i32> {
    let platform = args.platform.clone().unwrap_or_else(Platform::host);
    let ownership = args.ownership.unwrap_or_else(Ownership::for_current_user);
    let limits = Limits {
        max_expanded: args.max_layer_size,
        max_entries: args.max_entries,
    };
    let on_disk = args.image == load::STDIN || load::is_load_spec(&args.image);
    if !on_disk && spelled_as_path(&args.image) {
        bail!("{}: no such file or directory", args.image);
    }
    // `unpack DIR` of an archive reads it through a temporary store, removed when `_scratch`
    // is dropped; everything else uses the user's store.
    let (store, _scratch) = match (&args.dir, on_disk) {
        (Some(_), true) => {
            let root = global.root.clone().unwrap_or_else(Store::default_root);
            let scratch = scratch_dir(&root)?;
            let store = Store::open(scratch.path()).with_context(|| {
                format!(
                    "cannot create a scratch store in {}",
                    scratch.path().display()
                )
            })?;
            (store, Some(scratch))
        }
        _ => (global.store()?, None),
    };
    let opts = ResolveOptions {
        platform,
        pull: false,
        insecure: false,
    };
    let Resolved { image, name, .. } = resolve::resolve(&store, &args.image, &opts)
        .with_context(|| format!("unpack {}", args.image))?;
    let shown = if on_disk { &args.image } else { &name };
    let stats = match &args.dir {
        Some(dir) => {
            let stats = unpack::unpack_image(&store, &image, dir, ownership, &limits)
                .with_context(|| format!("unpack {shown} into {}", dir.display()))?;
            if !global.quiet {
                eprintln!(
                    "unpacked {shown} into {}: {}",
                    dir.display(),
                    summary(&stats)
                );
            }
            stats
        }
        None => {
            let cache = LayerCache::new(&store, ownership);
            let (dirs, stats) = cache
                .ensure_with_stats(&image, &limits)
                .with_context(|| format!("unpack {shown} into the layer cache"))?;
            for dir in &dirs {
                println!("{}", dir.display());
            }
            if !global.quiet {
                eprintln!(
                    "{} layers of {shown} ready ({} extracted now: {})",
                    dirs.len(),
                    stats.layers,
                    summary(&stats)
                );
            }
            stats
        }
    };
    warn(&stats, global);
    Ok(0)
}

fn summary(s: &UnpackStats) -> String {
    format!(
        "{} layers, {} files, {} directories, {} symlinks, {} hard links, {} whiteouts, {}",
        s.layers,
        s.files,
        s.dirs,
        s.symlinks,
        s.hardlinks,
        s.whiteouts,
        human(s.bytes)
    )
}

/// Says what could not be reproduced; never silently.
fn warn(s: &UnpackStats, global: &Global) {
    if s.devices_skipped > 0 {
        eprintln!(
            "rsafe: warning: {} device nodes not created (that needs root)",
            s.devices_skipped
        );
    }
    if s.xattrs_skipped > 0 {
        eprintln!(
            "rsafe: warning: {} extended attributes refused by the filesystem or kernel",
            s.xattrs_skipped
        );
    }
    if s.xattrs_dropped > 0 && global.verbose {
        eprintln!(
            "rsafe: {} extended attributes not applied by policy (overlay/rsafe names, trusted.*, \
             security.* other than capabilities as root)",
            s.xattrs_dropped
        );
    }
}

/// `3.5 MiB`: the sizes of `unpack`'s summary.
fn human(bytes: u64) -> String {
    match super::format::binary_units(bytes) {
        (_, "B") => format!("{bytes} B"),
        (value, unit) => format!("{value:.1} {unit}"),
    }
}

/// `123`, `64G`, `512M`, `10K`, `1T` (binary multiples).
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => {
                    return Err(format!(
                        "invalid size {s:?} (use a number with K, M, G or T)"
                    ));
                }
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {s:?} (use a number with K, M, G or T)"))?;
    n.checked_shl(shift)
        .filter(|v| v >> shift == n)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("64G"), Ok(64 << 30));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(human(1536), "1.5 KiB");
    }
}
