//! The shared extracted-layer cache: each layer extracted once, keyed by diff_id, ready to be
//! stacked as overlayfs lowerdirs.
//!
//! Layout: `<store>/layers/<ownership key>/<diff_id hex>/` (mode 0700 down to the key dir:
//! with [`Ownership::Shift`] the files belong to a subordinate id range and may be setuid, so
//! no other host user may reach them). Beside each layer directory lies `<hex>.lock`.
//!
//! An entry is created by extracting into `.tmp-<hex>-…` in the same directory, verifying the
//! layer, `syncfs`, and renaming into place with `RENAME_NOREPLACE`: it is never partially
//! visible, survives a crash whole or not at all, and a failed verification leaves nothing.
//! Concurrent `ensure` calls (threads or processes) serialise per layer on the lock file, so a
//! layer is extracted once; should a lock ever be lost (gc removed it), the no-replace rename
//! still lets exactly one extraction win.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustix::fs::{CWD, FlockOperation, RenameFlags};
use rustix::io::Errno;

use super::apply::{self, Applier, Mode};
use super::owner::Owners;
use super::target::{self, Deferred, Target};
use super::whiteout::{OPAQUE, XATTR_OPAQUE};
use super::{Limits, Ownership, UnpackError, UnpackStats};
use crate::image::config::{Image, LayerInfo};
use crate::image::digest::Digest;
use crate::image::prefetch::Prefetch;
use crate::image::store::Store;

/// Extracted layers under one [`Ownership`].
#[derive(Debug, Clone)]
pub struct LayerCache {
    store: Store,
    ownership: Ownership,
    dir: PathBuf,
}

/// What [`LayerCache::gc`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CacheGcStats {
    /// Layer directories removed (over all ownership keys).
    pub layers: u64,
    /// Bytes of file data in them.
    pub bytes: u64,
    /// Leftovers of interrupted extractions removed.
    pub stale: u64,
    /// Unused layer directories this process may not remove: extracted inside a rootless
    /// container's user namespace, so owned by the caller's subordinate ids. They are already
    /// out of the cache's way (renamed to `.tmp-<diff_id>-gcN`); the caller removes them as that
    /// namespace's root (`rsafe rmi` does), or a later gc as stale leftovers.
    pub denied: Vec<PathBuf>,
}

fn layers_root(store: &Store) -> PathBuf {
    store.root().join("layers")
}

impl LayerCache {
    /// The cache for `ownership` in `store` (`<store>/layers/<ownership key>/`).
    pub fn new(store: &Store, ownership: Ownership) -> LayerCache {
        LayerCache {
            store: store.clone(),
            ownership,
            dir: layers_root(store).join(ownership.cache_key()),
        }
    }

    /// The directory holding this ownership's layers.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the layer with `diff_id` is (or will be) extracted.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(diff_id.hex())
    }

    /// The diff_id a layer directory holds, from its name (the inverse of
    /// [`LayerCache::layer_dir`]); `None` for anything else (a plain rootfs, a leftover).
    pub fn diff_id_of(layer_dir: &Path) -> Option<Digest> {
        diff_id_of_hex(layer_dir.file_name()?.to_str()?)
    }

    /// Extracts the image's layers that are not cached yet (in parallel) and returns the layer
    /// directories bottom → top, ready as overlay lowerdirs (reverse for `lowerdir=`).
    ///
    /// The list is the *effective* stack: a layer that occurs twice is kept only at its top
    /// position (overlayfs refuses a lowerdir twice, and the top copy covers the lower one),
    /// and the layers below a layer whose root is opaque are dropped (overlayfs ignores an
    /// opaque mark on a layer root).
    pub fn ensure(&self, image: &Image, limits: &Limits) -> Result<Vec<PathBuf>, UnpackError> {
        self.ensure_with_stats(image, limits).map(|(dirs, _)| dirs)
    }

    /// [`LayerCache::ensure`], also saying what was extracted (zero layers when all were cached).
    pub fn ensure_with_stats(
        &self,
        image: &Image,
        limits: &Limits,
    ) -> Result<(Vec<PathBuf>, UnpackStats), UnpackError> {
        let owners = Owners::new(self.ownership);
        owners.check()?;
        self.create_dirs()?;
        let mut seen = HashSet::new();
        let missing: Vec<&LayerInfo> = image
            .layers()
            .iter()
            .filter(|l| seen.insert(l.diff_id.clone()) && !self.layer_dir(&l.diff_id).is_dir())
            .collect();
        let results: Vec<Result<UnpackStats, UnpackError>> = missing
            .par_iter()
            .map(|layer| self.extract(image, layer, &owners, limits))
            .collect();
        let mut stats = UnpackStats::default();
        for result in results {
            stats.add(&result?);
        }
        Ok((self.stack(image)?, stats))
    }

    /// The layer directories bottom → top, as [`LayerCache::ensure`] returns them, when every
    /// layer is cached already; `None` when one has yet to be extracted. Only looks: no thread,
    /// no lock, nothing written (a layer directory exists only once complete: it is renamed
    /// into place).
    pub fn cached(&self, image: &Image) -> Result<Option<Vec<PathBuf>>, UnpackError> {
        if image
            .layers()
            .iter()
            .any(|l| !self.layer_dir(&l.diff_id).is_dir())
        {
            return Ok(None);
        }
        self.stack(image).map(Some)
    }

    fn stack(&self, image: &Image) -> Result<Vec<PathBuf>, UnpackError> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for layer in image.layers() {
            let dir = self.layer_dir(&layer.diff_id);
            if root_is_opaque(&dir)? {
                dirs.clear();
            }
            dirs.retain(|d| *d != dir);
            dirs.push(dir);
        }
        Ok(dirs)
    }

    fn create_dirs(&self) -> Result<(), UnpackError> {
        for dir in [layers_root(&self.store), self.dir.clone()] {
            match DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(UnpackError::io(&dir)(e)),
            }
        }
        Ok(())
    }

    fn lock(&self, diff_id: &Digest) -> Result<File, UnpackError> {
        let path = self.dir.join(format!("{}.lock", diff_id.hex()));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(UnpackError::io(&path))?;
        rustix::fs::flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| UnpackError::io(&path)(e.into()))?;
        Ok(file)
    }

    fn extract(
        &self,
        image: &Image,
        layer: &LayerInfo,
        owners: &Owners,
        limits: &Limits,
    ) -> Result<UnpackStats, UnpackError> {
        let dest = self.layer_dir(&layer.diff_id);
        let _lock = self.lock(&layer.diff_id)?;
        // Under the layer's lock no other extraction of it runs: any temporary tree of it is
        // what a killed one left (tens of MB each), gone before a new one starts.
        self.remove_stale(&layer.diff_id);
        if dest.is_dir() {
            return Ok(UnpackStats::default());
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{}-", layer.diff_id.hex()))
            .tempdir_in(&self.dir)
            .map_err(UnpackError::io(&self.dir))?
            .keep();
        let result = self.fill(&tmp, image, layer, owners, limits);
        let result = result.and_then(|stats| {
            match rustix::fs::renameat_with(CWD, &tmp, CWD, &dest, RenameFlags::NOREPLACE) {
                Ok(()) => Ok(stats),
                // Another extraction won the race: theirs is as good as ours.
                Err(Errno::EXIST | Errno::NOTEMPTY) => {
                    let _ = target::remove_tree(CWD, tmp.as_os_str().as_bytes());
                    Ok(UnpackStats::default())
                }
                Err(e) => Err(UnpackError::io(&dest)(e.into())),
            }
        });
        if result.is_err() {
            let _ = target::remove_tree(CWD, tmp.as_os_str().as_bytes());
        }
        result
    }

    /// Removes `.tmp-<diff_id>-…` trees of interrupted extractions of this layer. Only under
    /// its lock. Best effort: what cannot be removed here is gc's.
    fn remove_stale(&self, diff_id: &Digest) {
        let prefix = format!(".tmp-{}-", diff_id.hex());
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            if entry.file_name().as_bytes().starts_with(prefix.as_bytes()) {
                let _ = target::remove_tree(CWD, entry.path().as_os_str().as_bytes());
            }
        }
    }

    fn fill(
        &self,
        dir: &Path,
        image: &Image,
        layer: &LayerInfo,
        owners: &Owners,
        limits: &Limits,
    ) -> Result<UnpackStats, UnpackError> {
        let mut target = Target::open(dir).map_err(UnpackError::io(dir))?;
        apply::init_root(&target, owners).map_err(UnpackError::io(dir))?;
        let stream = image.open_layer(&self.store, layer, limits.max_expanded)?;
        let prefetch =
            Prefetch::spawn(stream, layer.digest.clone()).map_err(UnpackError::io(dir))?;
        let mut deferred = Deferred::default();
        let mut stats = UnpackStats::default();
        Applier::new(
            &mut target,
            Mode::Overlay,
            owners,
            &mut deferred,
            &mut stats,
        )
        .apply(prefetch, layer, limits)?;
        deferred
            .apply(&target)
            .map_err(|(path, source)| UnpackError::Io {
                path: dir.join(std::ffi::OsStr::from_bytes(&path)),
                source,
            })?;
        let root =
            target::open_dir_for_metadata(target.root(), b"").map_err(UnpackError::io(dir))?;
        rustix::fs::syncfs(root.as_fd()).map_err(|e| UnpackError::io(dir)(e.into()))?;
        stats.layers = 1;
        Ok(stats)
    }

    /// Removes every cached layer (under every ownership key) whose diff_id no image in the
    /// store uses any more and that is not `in_use` (by a container, whose image may be gone),
    /// and leftovers of interrupted extractions. Holds the store lock. `rsafe rmi` calls this
    /// after [`Store::gc`].
    pub fn gc(store: &Store, in_use: &BTreeSet<Digest>) -> Result<CacheGcStats, UnpackError> {
        let _lock = store.lock()?;
        let mut keep = store.reachable()?.diff_ids;
        keep.extend(in_use.iter().cloned());
        let mut stats = CacheGcStats::default();
        let root = layers_root(store);
        let keys = match fs::read_dir(&root) {
            Ok(keys) => keys,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(stats),
            Err(e) => return Err(UnpackError::io(&root)(e)),
        };
        for key in keys {
            let key = key.map_err(UnpackError::io(&root))?.path();
            if key.is_dir() {
                gc_key(&key, &keep, &mut stats)?;
            }
        }
        Ok(stats)
    }
}

/// One extracted layer, as [`LayerCache::usage`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub diff_id: Digest,
    /// Bytes of file data in it (what [`LayerCache::gc`] counts when it removes it).
    pub bytes: u64,
    /// An image of the store or a container needs it: [`LayerCache::gc`] keeps it.
    pub needed: bool,
}

impl LayerCache {
    /// Every extracted layer (under every ownership key) with its size, and whether
    /// [`LayerCache::gc`] with the same `in_use` would keep it: `rsafe system df`'s build cache.
    pub fn usage(store: &Store, in_use: &BTreeSet<Digest>) -> Result<Vec<CacheEntry>, UnpackError> {
        let mut keep = store.reachable()?.diff_ids;
        keep.extend(in_use.iter().cloned());
        let root = layers_root(store);
        let keys = match fs::read_dir(&root) {
            Ok(keys) => keys,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(UnpackError::io(&root)(e)),
        };
        let mut out = Vec::new();
        for key in keys {
            let key = key.map_err(UnpackError::io(&root))?.path();
            let Ok(entries) = fs::read_dir(&key) else {
                continue;
            };
            for entry in entries.filter_map(|e| e.ok()) {
                let Some(diff_id) = entry.file_name().to_str().and_then(diff_id_of_hex) else {
                    continue; // a lock file, a leftover of an extraction
                };
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(CacheEntry {
                        needed: keep.contains(&diff_id),
                        bytes: tree_bytes(&entry.path()),
                        diff_id,
                    });
                }
            }
        }
        Ok(out)
    }
}

fn gc_key(
    dir: &Path,
    keep: &BTreeSet<Digest>,
    stats: &mut CacheGcStats,
) -> Result<(), UnpackError> {
    let names: Vec<String> = fs::read_dir(dir)
        .map_err(UnpackError::io(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    let unused = |hex: &str| diff_id_of_hex(hex).is_some_and(|d| !keep.contains(&d));
    for name in &names {
        let (hex, stale) = match name.strip_prefix(".tmp-") {
            Some(rest) => (rest.get(..64).unwrap_or(""), true),
            None if name.ends_with(".lock") => continue,
            None => (name.as_str(), false),
        };
        if !stale && !unused(hex) {
            continue;
        }
        // A held lock means an extraction is running: its temp dir is not stale.
        let lock_path = dir.join(format!("{hex}.lock"));
        let lock = File::options().write(true).open(&lock_path).ok();
        if let Some(lock) = &lock
            && !try_lock(lock)
        {
            continue;
        }
        let mut path = dir.join(name);
        if stale {
            stats.stale += 1;
        } else {
            stats.layers += 1;
            stats.bytes += tree_bytes(&path);
            // Out of the cache first, under the lock: an extraction that comes next finds no
            // half-removed layer, whatever happens to the removal.
            let gone = (0u32..)
                .map(|n| dir.join(format!(".tmp-{hex}-gc{n}")))
                .find(|p| !p.exists())
                .unwrap_or_else(|| dir.join(format!(".tmp-{hex}-gc")));
            fs::rename(&path, &gone).map_err(UnpackError::io(&path))?;
            path = gone;
        }
        match target::remove_tree(CWD, path.as_os_str().as_bytes()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => stats.denied.push(path),
            Err(e) => return Err(UnpackError::io(&path)(e)),
        }
    }
    // Lock files of layers that are gone and unused (taken first, so no extraction holds one).
    for name in &names {
        let Some(hex) = name.strip_suffix(".lock") else {
            continue;
        };
        let path = dir.join(name);
        if unused(hex)
            && !dir.join(hex).exists()
            && let Ok(lock) = File::options().write(true).open(&path)
            && try_lock(&lock)
        {
            let _ = fs::remove_file(&path);
        }
    }
    Ok(())
}

/// A layer directory's name is its diff_id's hex digits.
fn diff_id_of_hex(hex: &str) -> Option<Digest> {
    format!("sha256:{hex}").parse().ok()
}

/// Takes an exclusive lock if nobody holds one (released when the file is closed).
fn try_lock(file: &File) -> bool {
    rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive).is_ok()
}

fn tree_bytes(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .follow_links(false)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Whether a cached layer's root carries the opaque mark (see [`super::whiteout`]).
fn root_is_opaque(dir: &Path) -> Result<bool, UnpackError> {
    let mut value = [0u8; 8];
    match rustix::fs::lgetxattr(dir, XATTR_OPAQUE, &mut value[..]) {
        Ok(n) => Ok(&value[..n] == OPAQUE),
        Err(Errno::NODATA) => Ok(false),
        Err(e) => Err(UnpackError::io(dir)(e.into())),
    }
}
