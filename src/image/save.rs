//! Writing images out of the store as one tarball that `docker load`, `podman load`, skopeo and
//! `rsafe load` read (`rsafe save`).
//!
//! Two formats, as `podman save --format` names them:
//! - `docker-archive`, what Docker 25+ writes: `manifest.json` (Config, RepoTags, Layers,
//!   LayerSources), `repositories`, and every blob as `blobs/sha256/<hex>` beside an
//!   `index.json` and `oci-layout`, so the same tar is also an OCI archive. Its layers are
//!   uncompressed tars named by their diff_id (older docker loads nothing else): a compressed
//!   layer is decompressed into an unnamed file in the store's `tmp/` and must hash to the
//!   config's diff_id before it is written.
//! - `oci-archive`: the images' own blobs and manifests as stored (compressed layers stay so),
//!   each named in `index.json` by its full reference.
//!
//! Every blob is verified against its digest while it streams into the tar; a mismatch fails the
//! save (the caller discards what was written). The plan ([`plan`]) resolves every image before a
//! byte is written, so an unknown image writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, MediaType};
use serde_json::{Value, json};

use super::config::{Image, ImageError, LayerInfo, Platform};
use super::digest::{Digest, FinishError, HashingReader, VerifyError};
use super::layer::{DEFAULT_MAX_EXPANDED, LayerError};
use super::load::CONTAINERD_IMAGE_NAME;
use super::lookup::{LookupError, Matched, find};
use super::media::Compression;
use super::reference::Reference;
use super::store::{REF_NAME, Store, StoreError};

/// The tarball's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Docker 25+'s `docker save` (also an OCI archive), uncompressed layers.
    DockerArchive,
    /// An OCI image layout in a tar, blobs as stored.
    OciArchive,
}

/// Why a save failed; each names the image, blob or file involved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("{name}: {source}")]
    Image {
        name: String,
        source: Box<ImageError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("blob {digest}: {source}")]
    Verify { digest: Digest, source: VerifyError },
    #[error(
        "layer {digest} is stored uncompressed but its config says diff_id {diff_id}: refusing to write a layer docker would reject"
    )]
    DiffIdMismatch { digest: Digest, diff_id: Digest },
    #[error("writing the archive: {0}")]
    Write(io::Error),
    #[error("{path}: {source}")]
    Scratch { path: PathBuf, source: io::Error },
    #[error("{path}: {detail}")]
    Output { path: PathBuf, detail: String },
}

type Result<T, E = SaveError> = std::result::Result<T, E>;

/// One image to write, and the names it goes under.
#[derive(Debug, Clone)]
pub struct Planned {
    pub image: Image,
    /// Store names (`busybox:latest`, familiar form); empty for an image saved by digest.
    pub names: Vec<String>,
}

/// What [`plan`] resolved: images in the order first asked for, each once.
#[derive(Debug, Clone)]
pub struct Plan {
    pub format: Format,
    pub images: Vec<Planned>,
}

/// Resolves every input before anything is written: a name, digest or digest prefix as `rmi`
/// takes it (the host's platform out of a multi-platform image), or, as `docker save`, a bare
/// repository (`busybox`) naming every tag of it the store holds. Two inputs naming one image
/// give one image with both names.
pub fn plan(store: &Store, inputs: &[String], format: Format) -> Result<Plan> {
    let mut images: Vec<Planned> = Vec::new();
    for input in inputs {
        for (name, desc) in resolve_input(store, input)? {
            let image =
                Image::from_descriptor(store, &desc, &Platform::host()).map_err(|source| {
                    SaveError::Image {
                        name: name.clone().unwrap_or_else(|| input.clone()),
                        source: Box::new(source),
                    }
                })?;
            let pos = match images
                .iter()
                .position(|p| p.image.manifest_digest == image.manifest_digest)
            {
                Some(pos) => pos,
                None => {
                    images.push(Planned {
                        image,
                        names: Vec::new(),
                    });
                    images.len() - 1
                }
            };
            let names = &mut images[pos].names;
            if let Some(name) = name.filter(|n| !names.contains(n)) {
                names.push(name);
            }
        }
    }
    Ok(Plan { format, images })
}

/// The (name, descriptor) pairs one input stands for. A name that is not a docker reference
/// (a ref name another tool wrote into the layout) is no name to write into an archive.
fn resolve_input(store: &Store, input: &str) -> Result<Vec<(Option<String>, Descriptor)>> {
    if let Ok(reference) = input.parse::<Reference>()
        && reference.tag.is_none()
        && reference.digest.is_none()
    {
        let repository = reference.familiar_repository();
        let tags: Vec<(Option<String>, Descriptor)> = store
            .refs()?
            .into_iter()
            .filter(|(name, _)| {
                name.parse::<Reference>()
                    .is_ok_and(|r| r.tag.is_some() && r.familiar_repository() == repository)
            })
            .map(|(name, desc)| (Some(name), desc))
            .collect();
        if !tags.is_empty() {
            return Ok(tags);
        }
    }
    let found = find(store, input)?;
    let name = match found.matched {
        Matched::Name(name) => name.parse::<Reference>().is_ok().then_some(name),
        Matched::Digest => None,
    };
    Ok(vec![(name, found.descriptor)])
}

/// Writes the archive `plan` describes to `out`; returns `out` (flushed) when every blob was
/// written and verified. A failure leaves `out` holding a partial archive: the caller drops it.
pub fn write<W: Write>(store: &Store, plan: &Plan, out: W) -> Result<W> {
    // Held to the end: a concurrent `rmi`'s gc waits rather than removing a blob being read.
    let _guard = store.write_guard()?;
    let mut tar = Tarball::new(out);
    tar.dir("blobs/")?;
    tar.dir("blobs/sha256/")?;
    let mut written = Vec::with_capacity(plan.images.len());
    for planned in &plan.images {
        let manifest = match plan.format {
            Format::DockerArchive => docker_image(store, &mut tar, &planned.image)?,
            Format::OciArchive => oci_image(store, &mut tar, &planned.image)?,
        };
        written.push(manifest);
    }
    let index = index_json(plan, &written);
    tar.file("index.json", &index)?;
    if plan.format == Format::DockerArchive {
        tar.file("manifest.json", &manifest_json(plan, &written))?;
    }
    tar.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    if plan.format == Format::DockerArchive
        && let Some(repositories) = repositories_json(plan)
    {
        tar.file("repositories", &repositories)?;
    }
    tar.finish()
}

/// What was written for one image: its manifest and the layers it lists, bottom first.
struct Written {
    manifest: Descriptor,
    layers: Vec<Descriptor>,
}

/// An image's blobs for a docker archive: uncompressed layers under their diff_id, the config,
/// and an OCI manifest listing those layers (the stored one when it already does).
fn docker_image<W: Write>(store: &Store, tar: &mut Tarball<W>, image: &Image) -> Result<Written> {
    let mut layers = Vec::with_capacity(image.layers().len());
    for layer in image.layers() {
        let size = match layer.compression {
            Compression::None => {
                if layer.digest != layer.diff_id {
                    return Err(SaveError::DiffIdMismatch {
                        digest: layer.digest.clone(),
                        diff_id: layer.diff_id.clone(),
                    });
                }
                tar.blob_from_store(store, &layer.digest, layer.descriptor.size())?;
                layer.descriptor.size()
            }
            _ => tar.uncompressed_layer(store, image, layer)?,
        };
        layers.push(Descriptor::new(MediaType::ImageLayer, size, &layer.diff_id));
    }
    let config = store.read_blob(&image.config_digest)?;
    tar.blob_bytes(&image.config_digest, &config)?;
    let stored_fits = image.manifest.media_type() == &Some(MediaType::ImageManifest)
        && image.manifest.config().media_type() == &MediaType::ImageConfig
        && image
            .manifest
            .layers()
            .iter()
            .all(|l| l.media_type() == &MediaType::ImageLayer);
    let manifest = if stored_fits {
        store.read_blob(&image.manifest_digest)?
    } else {
        docker_manifest(&image.config_digest, config.len() as u64, &layers)
    };
    let digest = Digest::of_bytes(&manifest);
    tar.blob_bytes(&digest, &manifest)?;
    Ok(Written {
        manifest: Descriptor::new(MediaType::ImageManifest, manifest.len() as u64, &digest),
        layers,
    })
}

/// The OCI manifest docker writes for a saved image: OCI config and uncompressed layer types.
fn docker_manifest(config: &Digest, config_size: u64, layers: &[Descriptor]) -> Vec<u8> {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MediaType::ImageManifest.to_string(),
        "config": {
            "mediaType": MediaType::ImageConfig.to_string(),
            "digest": config.to_string(),
            "size": config_size,
        },
        "layers": layers.iter().map(|l| json!({
            "mediaType": l.media_type().to_string(),
            "digest": l.digest().to_string(),
            "size": l.size(),
        })).collect::<Vec<_>>(),
    });
    manifest.to_string().into_bytes()
}

/// An image's blobs for an OCI archive: everything as stored.
fn oci_image<W: Write>(store: &Store, tar: &mut Tarball<W>, image: &Image) -> Result<Written> {
    for layer in image.layers() {
        tar.blob_from_store(store, &layer.digest, layer.descriptor.size())?;
    }
    let config = store.read_blob(&image.config_digest)?;
    tar.blob_bytes(&image.config_digest, &config)?;
    let manifest = store.read_blob(&image.manifest_digest)?;
    tar.blob_bytes(&image.manifest_digest, &manifest)?;
    let media_type = image
        .manifest
        .media_type()
        .clone()
        .unwrap_or(MediaType::ImageManifest);
    Ok(Written {
        manifest: Descriptor::new(media_type, manifest.len() as u64, &image.manifest_digest),
        layers: image
            .layers()
            .iter()
            .map(|l| l.descriptor.clone())
            .collect(),
    })
}

/// `docker.io/library/busybox:latest` for the store name `busybox:latest`.
fn full_name(reference: &Reference) -> String {
    let registry = reference
        .registry
        .as_deref()
        .unwrap_or(super::reference::DOCKER_HUB);
    let tag = reference.tag_or_latest().unwrap_or("latest");
    format!("{registry}/{}:{tag}", reference.remote_repository())
}

/// `index.json`: one entry per name (docker's: `io.containerd.image.name` the full reference,
/// the ref name its tag; an OCI archive's ref name is the full reference, as podman writes it),
/// and an unnamed entry for an image saved by digest.
fn index_json(plan: &Plan, written: &[Written]) -> Vec<u8> {
    let mut manifests = Vec::new();
    for (planned, w) in plan.images.iter().zip(written) {
        let platform = json!({
            "architecture": planned.image.config.architecture().to_string(),
            "os": planned.image.config.os().to_string(),
        });
        let entry = |annotations: Option<Value>| {
            let mut e = json!({
                "mediaType": w.manifest.media_type().to_string(),
                "digest": w.manifest.digest().to_string(),
                "size": w.manifest.size(),
                "platform": platform,
            });
            if let Some(a) = annotations {
                e["annotations"] = a;
            }
            e
        };
        let references: Vec<Reference> = planned
            .names
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        if references.is_empty() {
            manifests.push(entry(None));
        }
        for r in &references {
            let full = full_name(r);
            let ref_name = match plan.format {
                Format::DockerArchive => r.tag_or_latest().unwrap_or("latest").to_string(),
                Format::OciArchive => full.clone(),
            };
            manifests.push(entry(Some(
                json!({ CONTAINERD_IMAGE_NAME: full, REF_NAME: ref_name }),
            )));
        }
    }
    json!({
        "schemaVersion": 2,
        "mediaType": MediaType::ImageIndex.to_string(),
        "manifests": manifests,
    })
    .to_string()
    .into_bytes()
}

/// `manifest.json`, as Docker 25+ writes it: per image its config and layer members, its tags,
/// and a LayerSources entry for every layer.
fn manifest_json(plan: &Plan, written: &[Written]) -> Vec<u8> {
    let items: Vec<Value> = plan
        .images
        .iter()
        .zip(written)
        .map(|(planned, w)| {
            let member = |d: &Digest| format!("blobs/sha256/{}", d.hex());
            let sources: serde_json::Map<String, Value> = w
                .layers
                .iter()
                .map(|l| {
                    let d = l.digest().to_string();
                    let source = json!({
                        "mediaType": l.media_type().to_string(),
                        "size": l.size(),
                        "digest": d,
                    });
                    (d, source)
                })
                .collect();
            json!({
                "Config": member(&planned.image.config_digest),
                "RepoTags": repo_tags(planned),
                "Layers": w.layers.iter().filter_map(|l| Digest::try_from(l.digest()).ok()).map(|d| member(&d)).collect::<Vec<_>>(),
                "LayerSources": sources,
            })
        })
        .collect();
    let mut bytes = Value::Array(items).to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// The familiar names docker writes in RepoTags (null when there are none, as docker's).
fn repo_tags(planned: &Planned) -> Value {
    let tags: Vec<String> = planned
        .names
        .iter()
        .filter_map(|n| n.parse::<Reference>().ok())
        .map(|r| r.store_name())
        .collect();
    if tags.is_empty() {
        Value::Null
    } else {
        json!(tags)
    }
}

/// The legacy `repositories` file: repository → tag → top layer's diff_id hex. None when no
/// image has a name (docker then writes none).
fn repositories_json(plan: &Plan) -> Option<Vec<u8>> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for planned in &plan.images {
        let Some(top) = planned.image.layers().last() else {
            continue;
        };
        for r in planned
            .names
            .iter()
            .filter_map(|n| n.parse::<Reference>().ok())
        {
            let tag = r.tag_or_latest().unwrap_or("latest").to_string();
            repos
                .entry(r.familiar_repository())
                .or_default()
                .insert(tag, top.diff_id.hex().to_string());
        }
    }
    if repos.is_empty() {
        return None;
    }
    let mut bytes = serde_json::to_vec(&repos).ok()?;
    bytes.push(b'\n');
    Some(bytes)
}

/// The tar being written: members in docker's shape (owner 0, mode 0644/0755, time 0), each
/// blob once however many images list it.
struct Tarball<W: Write> {
    builder: tar::Builder<BufWriter<W>>,
    blobs: BTreeSet<Digest>,
}

impl<W: Write> Tarball<W> {
    fn new(out: W) -> Self {
        let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, out));
        builder.mode(tar::HeaderMode::Deterministic);
        Tarball {
            builder,
            blobs: BTreeSet::new(),
        }
    }

    fn header(path: &str, size: u64, kind: tar::EntryType) -> Result<tar::Header> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_path(path).map_err(SaveError::Write)?;
        header.set_size(size);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        Ok(header)
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        let header = Self::header(path, 0, tar::EntryType::Directory)?;
        self.builder
            .append(&header, io::empty())
            .map_err(SaveError::Write)
    }

    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let header = Self::header(path, bytes.len() as u64, tar::EntryType::Regular)?;
        self.builder
            .append(&header, bytes)
            .map_err(SaveError::Write)
    }

    /// Appends `size` bytes of `reader` as `blobs/sha256/<digest>`. The caller verifies.
    fn append_blob(&mut self, digest: &Digest, size: u64, reader: impl Read) -> Result<()> {
        let header = Self::header(
            &format!("blobs/sha256/{}", digest.hex()),
            size,
            tar::EntryType::Regular,
        )?;
        self.builder
            .append(&header, reader.take(size))
            .map_err(SaveError::Write)
    }

    /// A blob held in memory (config, manifest), already verified or made here.
    fn blob_bytes(&mut self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        if self.blobs.insert(digest.clone()) {
            self.append_blob(digest, bytes.len() as u64, bytes)?;
        }
        Ok(())
    }

    /// A blob streamed from the store, verified against digest and size as it goes.
    fn blob_from_store(&mut self, store: &Store, digest: &Digest, size: u64) -> Result<()> {
        if self.blobs.contains(digest) {
            return Ok(());
        }
        let mut reader = HashingReader::new(store.open_blob(digest)?);
        self.append_blob(digest, size, &mut reader)?;
        reader
            .finish(digest, Some(size))
            .map_err(|e| verify_error(digest, e))?;
        self.blobs.insert(digest.clone());
        Ok(())
    }

    /// A compressed layer, decompressed into an unnamed file in the store's `tmp/` (nothing is
    /// left there if the save is killed) and checked against its diff_id, then appended under
    /// the diff_id. Returns its uncompressed size.
    fn uncompressed_layer(
        &mut self,
        store: &Store,
        image: &Image,
        layer: &LayerInfo,
    ) -> Result<u64> {
        let staged = stage_uncompressed(store, image, layer)?;
        let size = staged.metadata().map_err(SaveError::Write)?.len();
        if self.blobs.insert(layer.diff_id.clone()) {
            self.append_blob(&layer.diff_id, size, io::BufReader::new(staged))?;
        }
        Ok(size)
    }

    /// Ends the tar and returns the output, flushed.
    fn finish(self) -> Result<W> {
        let buffered = self.builder.into_inner().map_err(SaveError::Write)?;
        buffered
            .into_inner()
            .map_err(|e| SaveError::Write(e.into_error()))
    }
}

fn verify_error(digest: &Digest, e: FinishError) -> SaveError {
    match e {
        FinishError::Io(source) => SaveError::Write(source),
        FinishError::Verify(source) => SaveError::Verify {
            digest: digest.clone(),
            source,
        },
    }
}

/// Decompresses `layer` into an unnamed temporary file in the store's `tmp/`, verifying digest,
/// size and diff_id; returns the file rewound.
fn stage_uncompressed(store: &Store, image: &Image, layer: &LayerInfo) -> Result<File> {
    if layer.compression == Compression::None {
        return Err(SaveError::DiffIdMismatch {
            digest: layer.digest.clone(),
            diff_id: layer.diff_id.clone(),
        });
    }
    let dir = store.tmp_dir();
    let scratch = |source| SaveError::Scratch {
        path: dir.clone(),
        source,
    };
    let mut file = tempfile::tempfile_in(&dir).map_err(scratch)?;
    let mut stream = image
        .open_layer(store, layer, DEFAULT_MAX_EXPANDED)
        .map_err(|source| SaveError::Image {
            name: image.manifest_digest.to_string(),
            source: Box::new(source),
        })?;
    {
        let mut out = BufWriter::with_capacity(1 << 20, &mut file);
        let mut buf = vec![0; 1 << 20];
        // A read error is the stream's, reported typed by `finish`; a write error is the disk's.
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.write_all(&buf[..n]).map_err(scratch)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        out.flush().map_err(scratch)?;
    }
    stream.finish()?;
    file.rewind().map_err(scratch)?;
    Ok(file)
}

/// Where `-o FILE` is written until the archive is whole: an unnamed (`O_TMPFILE`) file in
/// FILE's directory, given FILE's name by [`OutputFile::persist`], so that a save that fails or
/// is killed leaves nothing. Where the filesystem has no unnamed files, a hidden named one
/// beside FILE (removed on failure, left by a kill).
pub struct OutputFile {
    file: Pending,
    dest: PathBuf,
}

enum Pending {
    Unnamed(File),
    Named(tempfile::NamedTempFile),
}

impl OutputFile {
    /// Prepares to write `dest` (replacing it, as `docker save -o` does, when it exists).
    pub fn create(dest: &Path) -> Result<OutputFile> {
        if dest.is_dir() {
            return Err(SaveError::Output {
                path: dest.to_path_buf(),
                detail: "is a directory".into(),
            });
        }
        let dir = parent_dir(dest);
        let cannot = |e: io::Error| SaveError::Output {
            path: dir.to_path_buf(),
            detail: format!("cannot write a file here: {e}"),
        };
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
        let file = match rustix::fs::open(dir, flags, Mode::from_raw_mode(0o644)) {
            Ok(fd) => Pending::Unnamed(File::from(fd)),
            Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::ISDIR => {
                return OutputFile::named(dest);
            }
            Err(e) => return Err(cannot(e.into())),
        };
        Ok(OutputFile {
            file,
            dest: dest.to_path_buf(),
        })
    }

    /// The fallback where unnamed files are not supported: a hidden named file beside `dest`.
    fn named(dest: &Path) -> Result<OutputFile> {
        let dir = parent_dir(dest);
        let named = tempfile::Builder::new()
            .prefix(".rsafe-save-")
            .tempfile_in(dir)
            .map_err(|e| SaveError::Output {
                path: dir.to_path_buf(),
                detail: format!("cannot write a file here: {e}"),
            })?;
        Ok(OutputFile {
            file: Pending::Named(named),
            dest: dest.to_path_buf(),
        })
    }

    /// The file to write the archive to.
    pub fn file(&mut self) -> &mut File {
        match &mut self.file {
            Pending::Unnamed(f) => f,
            Pending::Named(f) => f.as_file_mut(),
        }
    }

    /// Makes the written archive `dest`: synced, then named (an unnamed file is linked under a
    /// temporary name beside it first) and renamed over it, so that `dest` is either the old
    /// file or the whole new one.
    pub fn persist(mut self) -> Result<()> {
        let dest = self.dest.clone();
        let output = |detail: String| SaveError::Output {
            path: dest.clone(),
            detail,
        };
        self.file().sync_all().map_err(|e| output(e.to_string()))?;
        match self.file {
            Pending::Named(named) => named
                .persist(&dest)
                .map(drop)
                .map_err(|e| output(e.error.to_string())),
            Pending::Unnamed(ref file) => {
                let tmp = link_beside(file, &dest).map_err(|e| output(e.to_string()))?;
                std::fs::rename(&tmp, &dest).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    output(e.to_string())
                })
            }
        }
    }
}

/// The directory a path is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Gives the unnamed `file` a hidden name beside `dest` (`.NAME.rsafe-save-PID`); returns it.
fn link_beside(file: &File, dest: &Path) -> io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    let name = dest
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".rsafe-save-{}", std::process::id()));
    let tmp = parent_dir(dest).join(tmp_name);
    // Left by a save of this pid killed between link and rename: it is no one's.
    let _ = std::fs::remove_file(&tmp);
    let proc_fd = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(
        rustix::fs::CWD,
        proc_fd.as_str(),
        rustix::fs::CWD,
        &tmp,
        rustix::fs::AtFlags::SYMLINK_FOLLOW,
    )
    .map_err(|e| io::Error::other(format!("cannot link the written archive: {e}")))?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::Descriptor;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, bytes) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *bytes).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Stores an image of `layers` (tar, compressed?) and names it `name`; returns its diff_ids.
    fn image(store: &Store, name: &str, layers: &[(Vec<u8>, bool)], diff_ids: Option<Vec<String>>) {
        let mut descs = Vec::new();
        let mut ids = Vec::new();
        for (tar, compressed) in layers {
            let (blob, media) = if *compressed {
                (gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip")
            } else {
                (tar.clone(), "application/vnd.oci.image.layer.v1.tar")
            };
            let d = store.put_bytes(&blob).unwrap();
            descs.push(json!({"mediaType": media, "digest": d.to_string(), "size": blob.len()}));
            ids.push(Digest::of_bytes(tar).to_string());
        }
        let config = json!({
            "architecture": Platform::host().architecture, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids.unwrap_or(ids)},
        })
        .to_string();
        let config_d = store.put_bytes(config.as_bytes()).unwrap();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_d.to_string(), "size": config.len()},
            "layers": descs,
        })
        .to_string();
        let d = store.put_bytes(manifest.as_bytes()).unwrap();
        let desc = Descriptor::new(MediaType::ImageManifest, manifest.len() as u64, &d);
        store.tag(name, &desc).unwrap();
    }

    fn members(archive: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut a = tar::Archive::new(archive);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let mut bytes = Vec::new();
                e.read_to_end(&mut bytes).unwrap();
                (path, bytes)
            })
            .collect()
    }

    fn save(store: &Store, inputs: &[&str], format: Format) -> Result<Vec<u8>> {
        let inputs: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        let plan = plan(store, &inputs, format)?;
        write(store, &plan, Vec::new())
    }

    #[test]
    fn docker_archive_decompresses_layers_and_lists_them_by_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let base = tar_of(&[("base", b"base layer")]);
        let top = tar_of(&[("top", b"top layer")]);
        image(
            &store,
            "app:1",
            &[(base.clone(), true), (top.clone(), false)],
            None,
        );
        let out = save(&store, &["app:1"], Format::DockerArchive).unwrap();
        let m = members(&out);
        for tar in [&base, &top] {
            let member = format!("blobs/sha256/{}", Digest::of_bytes(tar).hex());
            assert_eq!(m.get(&member), Some(tar), "{member}");
        }
        let manifest: Value = serde_json::from_slice(&m["manifest.json"]).unwrap();
        assert_eq!(manifest[0]["RepoTags"], json!(["app:1"]));
        assert_eq!(manifest[0]["Layers"].as_array().unwrap().len(), 2);
        let repositories: Value = serde_json::from_slice(&m["repositories"]).unwrap();
        assert_eq!(
            repositories["app"]["1"],
            json!(Digest::of_bytes(&top).hex())
        );
        let index: Value = serde_json::from_slice(&m["index.json"]).unwrap();
        let entry = &index["manifests"][0];
        assert_eq!(
            entry["annotations"][CONTAINERD_IMAGE_NAME],
            "docker.io/library/app:1"
        );
        assert_eq!(entry["annotations"][REF_NAME], "1");
        // The manifest the index names is in the tar and lists the uncompressed layers.
        let hex = entry["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let oci: Value = serde_json::from_slice(&m[&format!("blobs/sha256/{hex}")]).unwrap();
        assert_eq!(
            oci["layers"][0]["digest"],
            json!(Digest::of_bytes(&base).to_string())
        );
        assert_eq!(
            oci["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar"
        );
        // Nothing staged is left in the store's tmp/.
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_layer_that_does_not_match_its_diff_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = tar_of(&[("x", b"x")]);
        let lie = vec![Digest::of_bytes(b"something else").to_string()];
        image(&store, "gz:1", &[(layer.clone(), true)], Some(lie.clone()));
        image(&store, "plain:1", &[(layer, false)], Some(lie));
        let err = save(&store, &["gz:1"], Format::DockerArchive).unwrap_err();
        assert!(
            matches!(err, SaveError::Layer(LayerError::DiffId { .. })),
            "{err}"
        );
        let err = save(&store, &["plain:1"], Format::DockerArchive).unwrap_err();
        assert!(matches!(err, SaveError::DiffIdMismatch { .. }), "{err}");
    }

    #[test]
    fn shared_blobs_are_written_once_and_a_repository_saves_every_tag() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let base = (tar_of(&[("base", b"shared")]), true);
        image(
            &store,
            "app:1",
            &[base.clone(), (tar_of(&[("a", b"1")]), true)],
            None,
        );
        image(
            &store,
            "app:2",
            &[base.clone(), (tar_of(&[("a", b"2")]), true)],
            None,
        );
        image(&store, "other:1", &[base], None);
        for format in [Format::DockerArchive, Format::OciArchive] {
            let out = save(&store, &["app", "other:1", "app:1"], format).unwrap();
            let mut names = Vec::new();
            let mut a = tar::Archive::new(&out[..]);
            for e in a.entries().unwrap() {
                names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
            }
            let unique: BTreeSet<&String> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "{format:?}: {names:?}");
            // 3 layers + 3 configs + 3 manifests, the two directories, index.json, oci-layout
            // (and manifest.json, repositories).
            let expected = if format == Format::DockerArchive {
                15
            } else {
                13
            };
            assert_eq!(names.len(), expected, "{format:?}: {names:?}");
            let index: Value = serde_json::from_slice(&members(&out)["index.json"]).unwrap();
            assert_eq!(index["manifests"].as_array().unwrap().len(), 3);
        }
    }

    #[test]
    fn oci_archive_keeps_the_stored_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        image(&store, "app:1", &[(tar_of(&[("a", b"a")]), true)], None);
        let stored = store.resolve("app:1").unwrap();
        let out = save(&store, &["app:1"], Format::OciArchive).unwrap();
        let m = members(&out);
        let index: Value = serde_json::from_slice(&m["index.json"]).unwrap();
        assert_eq!(index["manifests"][0]["digest"], stored.digest().to_string());
        assert_eq!(
            index["manifests"][0]["annotations"][REF_NAME],
            "docker.io/library/app:1"
        );
        assert!(!m.contains_key("manifest.json"));
    }

    #[test]
    fn an_unknown_image_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        image(&store, "app:1", &[(tar_of(&[("a", b"a")]), false)], None);
        let inputs = vec!["app:1".to_string(), "nope:2".to_string()];
        let err = plan(&store, &inputs, Format::DockerArchive).unwrap_err();
        assert!(err.to_string().contains("nope:2"), "{err}");
    }

    #[test]
    fn an_output_file_appears_only_when_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.tar");
        let mut out = OutputFile::create(&dest).unwrap();
        out.file().write_all(b"half").unwrap();
        drop(out);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        std::fs::write(&dest, b"old").unwrap();
        let mut out = OutputFile::create(&dest).unwrap();
        out.file().write_all(b"new").unwrap();
        out.persist().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = OutputFile::create(dir.path()).err().unwrap();
        assert!(err.to_string().contains("is a directory"), "{err}");
        // Where unnamed files are not supported: a hidden file, gone on failure too.
        let mut out = OutputFile::named(&dest).unwrap();
        out.file().write_all(b"half").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        drop(out);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut out = OutputFile::named(&dest).unwrap();
        out.file().write_all(b"newer").unwrap();
        out.persist().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"newer");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
