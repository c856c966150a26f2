//! The local image store: a content-addressed OCI image layout on disk.
//!
//! The store *is* an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`), so umoci and
//! `skopeo inspect oci:<root>:<ref>` read it as they read any layout. Images are named by the
//! `org.opencontainers.image.ref.name` annotation of their entry in `index.json`.
//!
//! Invariants:
//! - a file under `blobs/sha256/` always hashes to its name: blobs are streamed into `tmp/`,
//!   verified, and only then renamed into place (a failed or interrupted write leaves nothing);
//! - `index.json` is replaced atomically (write + rename) under an exclusive lock on `lock`;
//! - a writer (load, pull) holds a [`WriteGuard`] (shared lock on `gc.lock`) from its first blob
//!   until its names are written; [`Store::gc`] takes that lock exclusively, so it never
//!   collects the blobs of an image that is still arriving;
//! - an entry of `index.json` without a ref name is an image kept by digest only (docker's
//!   `<none>`): it keeps its blobs alive until it is removed by digest;
//! - rsafe's own bookkeeping lives beside the layout (`tmp/`, `layers/`, `containers/`,
//!   `volumes/`, `seccomp-cache/`), never inside `blobs/`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType};

use super::media::{Kind, classify};

use super::digest::{Digest, DigestError, FinishError, HashingReader, VerifyError};

/// The annotation that names an image in an OCI layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Manifests, indexes and configs are small; anything larger is refused before it is parsed.
pub const MAX_METADATA_BLOB: u64 = 8 << 20;

/// What can go wrong in the store; every variant names the file or digest involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error("blob {0} is not in the store")]
    MissingBlob(Digest),
    #[error("blob {digest}: {source}")]
    Verify { digest: Digest, source: VerifyError },
    #[error(
        "blob {digest} is {size} bytes, more than the {limit} allowed for a manifest or config"
    )]
    TooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("no image named {0:?} in the store")]
    UnknownRef(String),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A handle on a store directory. Cheap to clone; all state is on disk.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Held while `index.json` is read-modified-written; released on drop.
pub struct StoreLock {
    _file: File,
}

/// Held by a writer from its first blob until its names are written, so that [`Store::gc`]
/// (which waits for every guard to be dropped) cannot collect blobs nothing names *yet*.
/// Released on drop. Do not call [`Store::gc`] while holding one: it would wait for itself.
pub struct WriteGuard {
    _file: File,
}

/// Directories in `tmp/` (an audit's scratch store) untouched for this long are leftovers of a
/// killed audit and are removed by gc.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(3600);

/// A file in `tmp/` holds its writer's lock from a moment after it is made until it is renamed
/// into place or removed; one unlocked for longer than this has lost its writer (a `kill -9` of
/// `load` or `pull` mid-blob), whatever its age.
const UNLOCKED_TMP: std::time::Duration = std::time::Duration::from_secs(60);

/// A new file in `tmp/`, locked (shared) for as long as it is open: [`Store::remove_dead_tmp`]
/// tells a live writer's file from a dead one's by that lock.
fn locked_tmp(store: &Store) -> Result<tempfile::NamedTempFile> {
    let tmp = tempfile::NamedTempFile::new_in(store.tmp_dir()).map_err(io_err(&store.tmp_dir()))?;
    tmp.as_file().lock_shared().map_err(io_err(tmp.path()))?;
    Ok(tmp)
}

impl Store {
    /// Where the store lives when neither `--root` nor `RSAFE_ROOT` says: `/var/lib/rsafe` for
    /// root, `$XDG_DATA_HOME/rsafe` (or `~/.local/share/rsafe`) for everyone else.
    pub fn default_root() -> PathBuf {
        if rustix::process::geteuid().is_root() {
            return PathBuf::from("/var/lib/rsafe");
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("rsafe");
        }
        if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(h).join(".local/share/rsafe");
        }
        PathBuf::from("/tmp/rsafe-").join(rustix::process::geteuid().as_raw().to_string())
    }

    /// Opens the store at `root`, creating an empty OCI layout there if it does not exist yet.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let store = Store { root: root.into() };
        for dir in [store.blobs_dir(), store.tmp_dir()] {
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        let layout = store.root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&store, &layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = store.index_path();
        if !index.exists() {
            let _lock = store.lock()?;
            if !index.exists() {
                store.write_index(&empty_index())?;
            }
        }
        Ok(store)
    }

    /// Opens an existing OCI image layout without creating or changing anything in it: for
    /// reading a layout the user pointed at (`rsafe audit ./layout`, `rsafe load ./layout`).
    pub fn open_read_only(root: impl Into<PathBuf>) -> Result<Store> {
        let store = Store { root: root.into() };
        let layout = store.root.join("oci-layout");
        let bytes = fs::read(&layout).map_err(io_err(&layout))?;
        let header: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                path: layout.clone(),
                source,
            })?;
        if header.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(StoreError::Invalid {
                path: layout,
                detail: "imageLayoutVersion is not \"1.0.0\"".into(),
            });
        }
        store.index()?;
        Ok(store)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    /// Scratch space on the same filesystem as the blobs, so finished files can be renamed in.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Where a blob lives (whether or not it is there yet).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Whether the store already holds this blob (so a pull or load can skip it).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Takes the store's exclusive lock (for read-modify-write of `index.json` and for gc).
    pub fn lock(&self) -> Result<StoreLock> {
        let file = self.lock_file("lock")?;
        file.lock().map_err(io_err(&self.root.join("lock")))?;
        Ok(StoreLock { _file: file })
    }

    /// Announces a writer: blobs written while the guard lives survive a concurrent
    /// [`Store::gc`] until they are named. Many writers may hold one at once.
    /// What killed writers left in `tmp/` goes first (a killed `load` of a large image leaves
    /// hundreds of megabytes there); failing to remove it does not stop this writer.
    pub fn write_guard(&self) -> Result<WriteGuard> {
        let _ = self.remove_dead_tmp();
        let file = self.lock_file("gc.lock")?;
        file.lock_shared()
            .map_err(io_err(&self.root.join("gc.lock")))?;
        Ok(WriteGuard { _file: file })
    }

    fn lock_file(&self, name: &str) -> Result<File> {
        let path = self.root.join(name);
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))
    }

    /// Streams `reader` into the store as blob `expected`, verifying digest (and size when
    /// known) before the blob becomes visible. If the blob is already present nothing is read.
    /// With a known size, at most one byte more than promised is read, so a source that never
    /// ends (a FIFO, `/dev/zero`) cannot fill the disk.
    pub fn put_blob(&self, reader: impl Read, expected: &Digest, size: Option<u64>) -> Result<()> {
        if self.has_blob(expected) {
            return Ok(());
        }
        let tmp = locked_tmp(self)?;
        let limit = size.map_or(u64::MAX, |s| s.saturating_add(1));
        let mut hashing = HashingReader::new(reader.take(limit));
        let mut out = io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        io::copy(&mut hashing, &mut out).map_err(io_err(tmp.path()))?;
        out.flush().map_err(io_err(tmp.path()))?;
        drop(out);
        hashing.finish(expected, size).map_err(|e| match e {
            FinishError::Io(source) => StoreError::Io {
                path: tmp.path().to_path_buf(),
                source,
            },
            FinishError::Verify(source) => StoreError::Verify {
                digest: expected.clone(),
                source,
            },
        })?;
        self.persist(tmp, expected)
    }

    /// Stores bytes rsafe produced itself (a manifest or config it wrote) and returns their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of_bytes(bytes);
        if !self.has_blob(&digest) {
            let mut tmp = locked_tmp(self)?;
            tmp.write_all(bytes).map_err(io_err(tmp.path()))?;
            self.persist(tmp, &digest)?;
        }
        Ok(digest)
    }

    fn persist(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> Result<()> {
        let dest = self.blob_path(digest);
        // Blobs are immutable and shared by every user of the store: world-readable, read-only.
        set_mode(tmp.path(), 0o444)?;
        tmp.persist(&dest).map_err(|e| StoreError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        Ok(())
    }

    /// Opens a blob for streaming. The caller verifies while reading ([`HashingReader`]); the
    /// store already verified it on the way in.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::MissingBlob(digest.clone())
            } else {
                StoreError::Io { path, source: e }
            }
        })
    }

    /// Reads a small blob (manifest, index, config) whole and re-verifies it: these are parsed
    /// and trusted, so they are checked on every use, and refused past [`MAX_METADATA_BLOB`].
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let file = self.open_blob(digest)?;
        let size = file
            .metadata()
            .map_err(io_err(&self.blob_path(digest)))?
            .len();
        if size > MAX_METADATA_BLOB {
            return Err(StoreError::TooLarge {
                digest: digest.clone(),
                size,
                limit: MAX_METADATA_BLOB,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(MAX_METADATA_BLOB + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&self.blob_path(digest)))?;
        digest
            .verify_bytes(&bytes)
            .map_err(|source| StoreError::Verify {
                digest: digest.clone(),
                source,
            })?;
        Ok(bytes)
    }

    /// Reads and parses a JSON blob (manifest, index or config).
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, digest: &Digest) -> Result<T> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            path: self.blob_path(digest),
            source,
        })
    }

    /// The store's `index.json`.
    pub fn index(&self) -> Result<ImageIndex> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json { path, source })
    }

    fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(index).map_err(|source| StoreError::Json {
            path: self.index_path(),
            source,
        })?;
        write_atomic(self, &self.index_path(), &bytes)
    }

    /// Every image entry, named or not: (ref name, manifest or index descriptor), in index
    /// order. An entry without a name is an image kept by digest only.
    pub fn entries(&self) -> Result<Vec<(Option<String>, Descriptor)>> {
        Ok(self
            .index()?
            .manifests()
            .iter()
            .map(|d| (ref_name(d).map(str::to_string), d.clone()))
            .collect())
    }

    /// Every named image: (ref name, manifest or index descriptor), in index order.
    pub fn refs(&self) -> Result<Vec<(String, Descriptor)>> {
        Ok(self
            .index()?
            .manifests()
            .iter()
            .filter_map(|d| ref_name(d).map(|n| (n.to_string(), d.clone())))
            .collect())
    }

    /// The descriptor an image name points at.
    pub fn resolve(&self, name: &str) -> Result<Descriptor> {
        self.refs()?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d)
            .ok_or_else(|| StoreError::UnknownRef(name.to_string()))
    }

    /// Points `name` at `desc` (replacing what it pointed at before). The blobs `desc` reaches
    /// must already be in the store. A digest-only entry for the same digest is superseded.
    pub fn tag(&self, name: &str, desc: &Descriptor) -> Result<()> {
        if !self.has_blob(&Digest::try_from(desc.digest())?) {
            return Err(StoreError::MissingBlob(Digest::try_from(desc.digest())?));
        }
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let mut manifests: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| {
                let unnamed_twin = ref_name(d).is_none() && d.digest() == desc.digest();
                ref_name(d) != Some(name) && !unnamed_twin
            })
            .cloned()
            .collect();
        let mut named = desc.clone();
        let mut annotations = named.annotations().clone().unwrap_or_default();
        annotations.insert(REF_NAME.to_string(), name.to_string());
        named.set_annotations(Some(annotations));
        manifests.push(named);
        index.set_manifests(manifests);
        self.write_index(&index)
    }

    /// Keeps `desc` in the store without a name (an image loaded from an archive that names
    /// none), unless an entry for the same digest exists already. Its blobs must be present.
    pub fn keep_unnamed(&self, desc: &Descriptor) -> Result<()> {
        let digest = Digest::try_from(desc.digest())?;
        if !self.has_blob(&digest) {
            return Err(StoreError::MissingBlob(digest));
        }
        let _lock = self.lock()?;
        let mut index = self.index()?;
        if index
            .manifests()
            .iter()
            .any(|d| d.digest() == desc.digest())
        {
            return Ok(());
        }
        let mut unnamed = desc.clone();
        if let Some(mut annotations) = unnamed.annotations().clone() {
            annotations.remove(REF_NAME);
            unnamed.set_annotations((!annotations.is_empty()).then_some(annotations));
        }
        let mut manifests = index.manifests().clone();
        manifests.push(unnamed);
        index.set_manifests(manifests);
        self.write_index(&index)
    }

    /// Removes every entry (named or not) pointing at `digest` and returns them; the blobs stay
    /// until [`Store::gc`]. Removing nothing is not an error (the result is empty).
    pub fn remove_digest(&self, digest: &Digest) -> Result<Vec<Descriptor>> {
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let (removed, kept): (Vec<Descriptor>, Vec<Descriptor>) = index
            .manifests()
            .iter()
            .cloned()
            .partition(|d| Digest::try_from(d.digest()).is_ok_and(|x| &x == digest));
        if !removed.is_empty() {
            index.set_manifests(kept);
            self.write_index(&index)?;
        }
        Ok(removed)
    }

    /// Removes the name `name`; the blobs stay until [`Store::gc`].
    pub fn untag(&self, name: &str) -> Result<Descriptor> {
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let found = index
            .manifests()
            .iter()
            .find(|d| ref_name(d) == Some(name))
            .cloned()
            .ok_or_else(|| StoreError::UnknownRef(name.to_string()))?;
        let manifests = index
            .manifests()
            .iter()
            .filter(|d| ref_name(d) != Some(name))
            .cloned()
            .collect();
        index.set_manifests(manifests);
        self.write_index(&index)?;
        Ok(found)
    }

    /// Every blob reachable from `index.json` (indexes, manifests, configs, layers), and the
    /// diff_ids of every layer those images use (the keys of the extracted-layer cache).
    pub fn reachable(&self) -> Result<Reachable> {
        self.reachable_from(self.index()?.manifests().clone())
    }

    /// Every blob reachable from the image entries `roots` (manifests or indexes), and the
    /// diff_ids of their layers: what those images keep ([`Store::reachable`] for them all).
    /// `rsafe system df` weighs the images containers use with it.
    pub fn reachable_from(&self, roots: Vec<Descriptor>) -> Result<Reachable> {
        let mut reach = Reachable::default();
        let mut todo = roots;
        while let Some(desc) = todo.pop() {
            let digest = Digest::try_from(desc.digest())?;
            if !reach.blobs.insert(digest.clone()) || !self.has_blob(&digest) {
                continue;
            }
            let kind = classify(desc.media_type()).map_err(|e| StoreError::Invalid {
                path: self.blob_path(&digest),
                detail: e.to_string(),
            })?;
            match kind {
                Kind::Index => {
                    let idx: ImageIndex = self.read_json(&digest)?;
                    todo.extend(idx.manifests().iter().cloned());
                }
                Kind::Manifest => {
                    let m: ImageManifest = self.read_json(&digest)?;
                    let config_digest = Digest::try_from(m.config().digest())?;
                    reach.blobs.insert(config_digest.clone());
                    for l in m.layers() {
                        reach.blobs.insert(Digest::try_from(l.digest())?);
                    }
                    // Only the diff_ids are wanted, and an artifact's config (an attestation's,
                    // a signature's) need not be an image config: read it loosely, so that such
                    // a manifest can never make gc fail.
                    if self.has_blob(&config_digest) {
                        let config: serde_json::Value = self.read_json(&config_digest)?;
                        let diff_ids = config
                            .pointer("/rootfs/diff_ids")
                            .and_then(|v| v.as_array())
                            .into_iter()
                            .flatten();
                        for d in diff_ids {
                            if let Some(d) = d.as_str().and_then(|s| s.parse::<Digest>().ok()) {
                                reach.diff_ids.insert(d);
                            }
                        }
                    }
                }
                Kind::Config | Kind::Layer(_) => {
                    return Err(StoreError::Invalid {
                        path: self.index_path(),
                        detail: format!(
                            "{digest} has media type {}, not a manifest or index",
                            desc.media_type()
                        ),
                    });
                }
            }
        }
        Ok(reach)
    }

    /// Every blob file in the store, with its size: what [`Store::gc`] chooses from.
    pub fn blob_sizes(&self) -> Result<Vec<(Digest, u64)>> {
        let dir = self.blobs_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let digest = entry
                .file_name()
                .to_str()
                .and_then(|n| format!("sha256:{n}").parse::<Digest>().ok());
            if let (Some(digest), Ok(meta)) = (digest, entry.metadata()) {
                out.push((digest, meta.len()));
            }
        }
        Ok(out)
    }

    /// Deletes every blob no entry of `index.json` reaches, and stale files in `tmp/`. Waits for
    /// every [`WriteGuard`] to be dropped first. Returns what was freed.
    pub fn gc(&self) -> Result<GcStats> {
        let gc_lock = self.lock_file("gc.lock")?;
        gc_lock.lock().map_err(io_err(&self.root.join("gc.lock")))?;
        let _lock = self.lock()?;
        let reach = self.reachable()?;
        let mut stats = GcStats::default();
        let dir = self.blobs_dir();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            let keep = name
                .to_str()
                .and_then(|n| format!("sha256:{n}").parse::<Digest>().ok())
                .is_some_and(|d| reach.blobs.contains(&d));
            if !keep {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
                stats.blobs += 1;
                stats.bytes += len;
                if let Some(d) = name
                    .to_str()
                    .and_then(|n| format!("sha256:{n}").parse::<Digest>().ok())
                {
                    stats.removed.push(d);
                }
            }
        }
        stats.removed.sort();
        self.remove_dead_tmp()?;
        Ok(stats)
    }

    /// Removes what killed writers left in `tmp/`: files no writer holds locked (for longer
    /// than [`UNLOCKED_TMP`], the moment between making one and locking it), and an audit's
    /// scratch directory nothing touched for [`STALE_TMP`].
    pub fn remove_dead_tmp(&self) -> Result<()> {
        let dir = self.tmp_dir();
        let now = std::time::SystemTime::now();
        let older = |m: &fs::Metadata, than| {
            m.modified()
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > than))
        };
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let path = entry.path();
            if meta.is_file() && older(&meta, UNLOCKED_TMP) && !locked(&path) {
                // Gone meanwhile (another gc): nothing left to do.
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&path)(e)),
                    _ => {}
                }
            } else if meta.is_dir()
                && older(&meta, STALE_TMP)
                && untouched_since(&path, now - STALE_TMP)
            {
                // The scratch store of an audit that was killed (`audit-*`).
                fs::remove_dir_all(&path).map_err(io_err(&path))?;
            }
        }
        Ok(())
    }
}

/// Whether a writer holds the file at `path` locked (see [`locked_tmp`]). A file that cannot be
/// opened counts as held: it is left alone.
fn locked(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return true;
    };
    !matches!(file.try_lock(), Ok(()))
}

/// Whether nothing in the tree at `dir` was modified after `since`: a directory in `tmp/` whose
/// own time is old may still be in use by a long-running writer deeper down.
fn untouched_since(dir: &Path, since: std::time::SystemTime) -> bool {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .all(|e| {
            e.ok()
                .and_then(|e| e.metadata().ok())
                .and_then(|m| m.modified().ok())
                .is_some_and(|t| t <= since)
        })
}

/// What [`Store::reachable`] found.
#[derive(Debug, Default)]
pub struct Reachable {
    pub blobs: BTreeSet<Digest>,
    pub diff_ids: BTreeSet<Digest>,
}

/// What [`Store::gc`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcStats {
    pub blobs: u64,
    pub bytes: u64,
    /// The digests of the removed blobs, sorted (what `rsafe rmi` prints as `Deleted:`).
    pub removed: Vec<Digest>,
}

/// The ref name an index entry carries, if any.
pub fn ref_name(desc: &Descriptor) -> Option<&str> {
    desc.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .map(String::as_str)
}

fn empty_index() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()
        .expect("an index with schema version and empty manifests is always valid")
}

fn write_atomic(store: &Store, dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = locked_tmp(store)?;
    tmp.write_all(bytes).map_err(io_err(tmp.path()))?;
    set_mode(tmp.path(), 0o644)?;
    tmp.persist(dest).map_err(|e| StoreError::Io {
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::DescriptorBuilder;

    fn manifest_desc(store: &Store) -> Descriptor {
        let layer = b"not really a tar";
        let layer_d = store.put_bytes(layer).unwrap();
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_d = store.put_bytes(config).unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_d.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_d.to_string(), "size": layer.len()}]
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let d = store.put_bytes(&bytes).unwrap();
        DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(oci_spec::image::Digest::try_from(d.to_string()).unwrap())
            .size(bytes.len() as u64)
            .build()
            .unwrap()
    }

    #[test]
    fn gc_removes_scratch_dirs_of_killed_audits_but_not_busy_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let old = std::time::SystemTime::now() - 2 * STALE_TMP;
        let age = |p: &Path| {
            File::open(p).unwrap().set_modified(old).unwrap();
        };
        for name in ["audit-killed", "audit-busy"] {
            let blobs = store.tmp_dir().join(name).join("blobs");
            fs::create_dir_all(&blobs).unwrap();
            fs::write(blobs.join("part"), b"x").unwrap();
        }
        // Killed: nothing in it moved for two hours. Busy: its top directory is old, but a
        // writer deeper down touched a file just now.
        let killed = store.tmp_dir().join("audit-killed");
        age(&killed.join("blobs/part"));
        age(&killed.join("blobs"));
        age(&killed);
        let busy = store.tmp_dir().join("audit-busy");
        age(&busy.join("blobs"));
        age(&busy);
        store.gc().unwrap();
        assert!(!killed.exists());
        assert!(busy.join("blobs/part").exists());
    }

    #[test]
    fn a_tmp_file_without_its_writers_lock_goes_at_once_a_held_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let past = std::time::SystemTime::now() - 2 * UNLOCKED_TMP;
        // A killed writer's half blob (its lock went with it), a live writer's (held, and old:
        // a slow download), and one made a moment ago, not yet locked.
        let dead = locked_tmp(&store).unwrap();
        let live = locked_tmp(&store).unwrap();
        let fresh = store.tmp_dir().join("fresh");
        fs::write(&fresh, b"x").unwrap();
        let (file, dead_path) = dead.keep().unwrap();
        drop(file);
        File::open(&dead_path).unwrap().set_modified(past).unwrap();
        live.as_file().set_modified(past).unwrap();
        store.remove_dead_tmp().unwrap();
        assert!(!dead_path.exists());
        assert!(live.path().exists());
        assert!(fresh.exists());
        // gc applies the same rule, and a writer's guard sweeps before it writes.
        drop(live);
        File::open(&fresh).unwrap().set_modified(past).unwrap();
        drop(store.write_guard().unwrap());
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn put_blob_refuses_content_that_does_not_match() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let claimed = Digest::of_bytes(b"good");
        let err = store.put_blob(&b"evil"[..], &claimed, None).unwrap_err();
        assert!(matches!(err, StoreError::Verify { .. }), "{err}");
        assert!(!store.has_blob(&claimed));
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        store.put_blob(&b"good"[..], &claimed, Some(4)).unwrap();
        assert_eq!(store.read_blob(&claimed).unwrap(), b"good");
    }

    #[test]
    fn tag_untag_and_gc() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let desc = manifest_desc(&store);
        let stray = store.put_bytes(b"unreferenced").unwrap();
        store.tag("app:1.0", &desc).unwrap();
        store.tag("app:latest", &desc).unwrap();
        assert_eq!(store.refs().unwrap().len(), 2);
        assert_eq!(store.gc().unwrap().blobs, 1);
        assert!(!store.has_blob(&stray));
        store.untag("app:1.0").unwrap();
        assert_eq!(store.gc().unwrap().blobs, 0);
        store.untag("app:latest").unwrap();
        assert_eq!(store.gc().unwrap().blobs, 3);
        assert!(matches!(
            store.resolve("app:latest"),
            Err(StoreError::UnknownRef(_))
        ));
    }

    #[test]
    fn put_blob_stops_reading_an_endless_source() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let claimed = Digest::of_bytes(&[0u8; 10]);
        let err = store
            .put_blob(io::repeat(0), &claimed, Some(10))
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Verify {
                    source: VerifyError::Size { actual: 11, .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn unnamed_entries_keep_blobs_until_removed_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let desc = manifest_desc(&store);
        let digest = Digest::try_from(desc.digest()).unwrap();
        store.keep_unnamed(&desc).unwrap();
        store.keep_unnamed(&desc).unwrap();
        assert_eq!(store.entries().unwrap().len(), 1);
        assert!(store.refs().unwrap().is_empty());
        assert_eq!(store.gc().unwrap().blobs, 0);
        // Naming it supersedes the digest-only entry; keeping it unnamed then changes nothing.
        store.tag("app:1.0", &desc).unwrap();
        store.keep_unnamed(&desc).unwrap();
        assert_eq!(store.entries().unwrap().len(), 1);
        assert_eq!(store.remove_digest(&digest).unwrap().len(), 1);
        assert!(store.entries().unwrap().is_empty());
        let stats = store.gc().unwrap();
        assert_eq!(stats.blobs, 3);
        assert!(stats.removed.contains(&digest));
    }

    #[test]
    fn gc_waits_for_writers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let guard = store.write_guard().unwrap();
        let arriving = store.put_bytes(b"blob of an image not yet named").unwrap();
        let gc = {
            let store = store.clone();
            std::thread::spawn(move || store.gc().unwrap())
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            store.has_blob(&arriving),
            "gc ran while a writer held its guard"
        );
        drop(guard);
        assert_eq!(gc.join().unwrap().removed, vec![arriving.clone()]);
        assert!(!store.has_blob(&arriving));
    }

    #[test]
    fn index_that_is_not_json_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fs::write(dir.path().join("index.json"), b"{nope").unwrap();
        let err = store.refs().unwrap_err().to_string();
        assert!(
            err.contains("index.json") && err.contains("not valid JSON"),
            "{err}"
        );
    }
}
