//! Safe layer extraction: an image's layers written to disk, flattened into one root
//! filesystem ([`unpack_image`], `rsafe unpack`) or one directory per layer for overlayfs
//! ([`LayerCache`], what `rsafe run` stacks).
//!
//! A layer is hostile input. Extraction:
//! - resolves every name through descriptors with `openat2(RESOLVE_BENEATH |
//!   RESOLVE_NO_SYMLINKS | …)` ([`target`]), so no name, symlink, hard link or whiteout can
//!   reach outside the target — the kernel checks, not string comparisons;
//! - refuses `..`, absolute names, NUL bytes, names past PATH_MAX, writing through a symlink
//!   the layer itself created, hard links to anything but a file of the same layer, and
//!   whiteouts naming `.`/`..` ([`entry`], [`apply`]);
//! - reads the tar with a strict reader that caps extension records and entry count
//!   ([`tar`]); the layer stream caps the expanded size and verifies digest and diff_id;
//! - on any error, removes everything it wrote: a half-extracted layer is never left behind,
//!   and a cache entry only appears (by atomic rename) once its layer verified.
//!
//! Ownership ([`Ownership`]) and whiteout encodings ([`whiteout`]) are explained in their
//! modules.

mod apply;
mod cache;
pub mod entry;
mod owner;
pub mod tar;
mod target;
pub mod whiteout;

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use apply::MAX_NAME_BYTES;
pub use cache::{CacheEntry, CacheGcStats, LayerCache};
pub use entry::{EntryName, NAME_MAX, PATH_MAX};
pub use owner::{OWNER_XATTR, Ownership};

use super::config::{Image, ImageError};
use super::digest::Digest;
use super::layer::{DEFAULT_MAX_EXPANDED, LayerError};
use super::store::{Store, StoreError};
use crate::image::prefetch::Prefetch;
use apply::{Applier, Mode};
use owner::Owners;
use target::{Deferred, Target};

/// Default cap on the number of tar headers in one layer (`--max-entries`): real layers have
/// tens of thousands of files; two million empty files is already an inode-exhaustion attack.
pub const DEFAULT_MAX_ENTRIES: u64 = 2_000_000;

/// Caps against decompression and entry-count bombs, per layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes one layer may expand to (`--max-layer-size`, default 64 GiB).
    pub max_expanded: u64,
    /// Tar headers one layer may hold (`--max-entries`, default [`DEFAULT_MAX_ENTRIES`]).
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_expanded: DEFAULT_MAX_EXPANDED,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// What an extraction did (summed over layers).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UnpackStats {
    /// Layers extracted (cache hits not counted).
    pub layers: u64,
    /// Tar entries read.
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Fifos and device nodes.
    pub specials: u64,
    pub whiteouts: u64,
    /// File data written.
    pub bytes: u64,
    /// Device nodes not created because that needs root.
    pub devices_skipped: u64,
    /// Image xattrs refused by policy (overlay/rsafe namespaces, `trusted.*`, capabilities
    /// when not root, …).
    pub xattrs_dropped: u64,
    /// Xattrs the filesystem or kernel refused.
    pub xattrs_skipped: u64,
}

impl UnpackStats {
    fn add(&mut self, o: &UnpackStats) {
        self.layers += o.layers;
        self.entries += o.entries;
        self.files += o.files;
        self.dirs += o.dirs;
        self.symlinks += o.symlinks;
        self.hardlinks += o.hardlinks;
        self.specials += o.specials;
        self.whiteouts += o.whiteouts;
        self.bytes += o.bytes;
        self.devices_skipped += o.devices_skipped;
        self.xattrs_dropped += o.xattrs_dropped;
        self.xattrs_skipped += o.xattrs_skipped;
    }
}

/// What is wrong with a layer entry or the archive around it.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("absolute name (layer entries are relative to the layer root)")]
    Absolute,
    #[error("name climbs out of the layer with \"..\"")]
    DotDot,
    #[error("name contains a NUL byte")]
    Nul,
    #[error("name is {0} bytes, longer than PATH_MAX ({PATH_MAX})")]
    NameTooLong(usize),
    #[error("a name component is {0} bytes, longer than NAME_MAX ({NAME_MAX})")]
    ComponentTooLong(usize),
    #[error("the layer root can only be a directory")]
    RootNotDirectory,
    #[error("whiteout names {0:?}, which would delete a directory itself or its parent")]
    BadWhiteout(String),
    #[error("symlink target is empty")]
    EmptyLinkTarget,
    #[error("symlink target is {0} bytes, longer than PATH_MAX")]
    LinkTooLong(usize),
    #[error("writes through the symlink {0} that this layer created")]
    ThroughSymlink(EntryName),
    #[error("writes below {0}, which this layer made a non-directory")]
    ParentNotDirectory(EntryName),
    #[error("hard link target {target}: {reason}")]
    HardLink {
        target: EntryName,
        reason: Box<Problem>,
    },
    #[error("not a file this layer created")]
    NotInLayer,
    #[error("is a directory")]
    IsDirectory,
    #[error("character device 0/0 is an overlayfs whiteout, not a layer entry")]
    OverlayWhiteoutDevice,
    #[error("the layer's names need more than {limit} bytes of memory")]
    NameBudget { limit: usize },
    #[error("archive is truncated")]
    Truncated,
    #[error("header checksum mismatch (not a tar archive, or corrupt)")]
    Checksum,
    #[error("invalid {0} field")]
    BadField(&'static str),
    #[error("malformed PAX record")]
    MalformedPax,
    #[error("{what} of {size} bytes is over the limit of {limit}")]
    ExtensionTooLarge {
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("two {0}s for one entry")]
    DuplicateExtension(&'static str),
    #[error("extension header not followed by an entry")]
    DanglingExtension,
    #[error("a header-only entry claims {size} bytes of data")]
    HeaderOnlyWithData { size: u64 },
    #[error("more than {limit} tar headers (entry-count bomb? see --max-entries)")]
    TooManyEntries { limit: u64 },
    #[error("unsupported {0}")]
    Unsupported(String),
    #[error("read: {0}")]
    Read(io::Error),
    #[error("{op}: {source}")]
    Io { op: &'static str, source: io::Error },
}

impl Problem {
    fn io(op: &'static str, e: impl Into<io::Error>) -> Problem {
        Problem::Io {
            op,
            source: e.into(),
        }
    }
}

/// Why an unpack failed. Every variant names the layer, entry or path involved.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer {layer}: entry {entry}: {problem}")]
    Entry {
        layer: Digest,
        entry: EntryName,
        problem: Problem,
    },
    #[error("layer {layer}: tar stream at byte {offset}: {problem}")]
    Archive {
        layer: Digest,
        offset: u64,
        problem: Problem,
    },
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}: exists and is not an empty directory")]
    DestinationNotEmpty(PathBuf),
    #[error("ownership {0} needs root (unprivileged users get --ownership caller)")]
    NeedsRoot(Ownership),
}

impl UnpackError {
    fn from_tar(layer: &Digest, e: tar::TarError) -> UnpackError {
        match e.entry {
            Some(name) => UnpackError::Entry {
                layer: layer.clone(),
                entry: EntryName(name),
                problem: e.problem,
            },
            None => UnpackError::Archive {
                layer: layer.clone(),
                offset: e.offset,
                problem: e.problem,
            },
        }
    }

    fn io(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
        move |source| UnpackError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes `image`'s root filesystem into `dest` (created if missing; if it exists it must be an
/// empty directory): every layer applied bottom to top, whiteouts honoured. Each layer is
/// verified as it streams; on any error everything written is removed again (and `dest`
/// itself, when this call created it).
pub fn unpack_image(
    store: &Store,
    image: &Image,
    dest: &Path,
    ownership: Ownership,
    limits: &Limits,
) -> Result<UnpackStats, UnpackError> {
    let owners = Owners::new(ownership);
    owners.check()?;
    let created = prepare_destination(dest)?;
    let result = flatten(store, image, dest, &owners, limits);
    if result.is_err() {
        let name = dest.as_os_str().as_bytes();
        if created {
            let _ = target::remove_tree(rustix::fs::CWD, name);
        } else if let Ok(t) = Target::open(dest)
            && let Ok(fd) = target::open_dir_for_metadata(t.root(), b"")
        {
            let _ = target::clear_dir(std::os::fd::AsFd::as_fd(&fd));
        }
    }
    result
}

fn flatten(
    store: &Store,
    image: &Image,
    dest: &Path,
    owners: &Owners,
    limits: &Limits,
) -> Result<UnpackStats, UnpackError> {
    let mut target = Target::open(dest).map_err(UnpackError::io(dest))?;
    apply::init_root(&target, owners).map_err(UnpackError::io(dest))?;
    // Directory modes and times wait for the last layer: a later layer may write into a
    // directory an earlier one made read-only.
    let mut deferred = Deferred::default();
    let mut stats = UnpackStats::default();
    for layer in image.layers() {
        let stream = image.open_layer(store, layer, limits.max_expanded)?;
        let prefetch =
            Prefetch::spawn(stream, layer.digest.clone()).map_err(UnpackError::io(dest))?;
        let mut layer_stats = UnpackStats::default();
        Applier::new(
            &mut target,
            Mode::Flatten,
            owners,
            &mut deferred,
            &mut layer_stats,
        )
        .apply(prefetch, layer, limits)?;
        layer_stats.layers = 1;
        stats.add(&layer_stats);
    }
    deferred
        .apply(&target)
        .map_err(|(path, source)| UnpackError::Io {
            path: dest.join(std::ffi::OsStr::from_bytes(&path)),
            source,
        })?;
    Ok(stats)
}

/// Creates `dest`, or checks that the existing one is an empty directory. True if created.
fn prepare_destination(dest: &Path) -> Result<bool, UnpackError> {
    match fs::create_dir(dest) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(dest).map_err(UnpackError::io(dest))?;
            let empty = meta.is_dir()
                && fs::read_dir(dest)
                    .map_err(UnpackError::io(dest))?
                    .next()
                    .is_none();
            if empty {
                Ok(false)
            } else {
                Err(UnpackError::DestinationNotEmpty(dest.to_path_buf()))
            }
        }
        Err(e) => Err(UnpackError::Io {
            path: dest.to_path_buf(),
            source: e,
        }),
    }
}
