//! Loading images from a path into the store: what `rsafe load` does, and what `rsafe audit` and
//! `rsafe run` do when they are given a path instead of a name.
//!
//! A path is one of
//! - an OCI image layout directory (it has an `oci-layout` file);
//! - an OCI archive (a tar of such a layout: it has `index.json`), including Docker 25+
//!   `docker save` output, which is one;
//! - a legacy `docker save` tarball (it has `manifest.json` and no `index.json`);
//!
//! tar files may be gzip- or zstd-compressed, and `-` reads one from standard input.
//! `PATH:REF` loads one image out of several: the
//! spec is split at the first `:` whose left side exists (so `./layout:app:1.0` is the layout
//! `./layout` and the ref `app:1.0`, as skopeo's `oci:` transport splits it).
//!
//! Naming rules, in order:
//! 1. `--name REPO[:TAG]` (given by the caller) replaces the repository of every loaded image
//!    (keeping each one's tag); with a tag it names the one image loaded.
//! 2. A docker `RepoTags` entry, or an OCI `io.containerd.image.name` annotation, is a full
//!    reference: stored in its familiar form (`docker.io/library/busybox:1` → `busybox:1`).
//! 3. An OCI `org.opencontainers.image.ref.name` is a full reference when it holds `/`, `:` or
//!    `@`; otherwise it is a tag, and the repository is the file or directory name without its
//!    extension (`./busybox-oci.tar` with ref `latest` → `busybox-oci:latest`).
//! 4. An image with no usable name is kept by digest (listed as `<none>`).
//!
//! The load is all or nothing: every image is imported (blobs verified) before any name is
//! written, and when something fails, nothing is named and [`Store::gc`] removes what was
//! copied.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageManifest};

use super::archive::TarArchive;
use super::config::Platform;
use super::digest::Digest;
use super::docker_save::{self, DockerImage};
use super::import::{ImportError, Importer, PlatformChoice, Source, read_index};
use super::layout::{LayoutDir, blob_member};
use super::reference::{Reference, ReferenceError};
use super::store::{MAX_METADATA_BLOB, REF_NAME, Store, StoreError};

/// The spec that means "read an archive from standard input" (`docker save x | rsafe load -`).
pub const STDIN: &str = "-";

/// The annotation containerd, nerdctl and Docker 25+ put on index entries: the full name.
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// Why a load failed; every variant names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{spec}: no such file or directory")]
    NotFound { spec: String },
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(
        "{path}: neither an OCI archive (no index.json) nor a docker save tarball (no manifest.json)"
    )]
    UnknownFormat { path: PathBuf },
    #[error("{path}: holds no images")]
    Empty { path: PathBuf },
    #[error("{path}: no image {reference:?} in it (it has: {available})")]
    NoSuchRef {
        path: PathBuf,
        reference: String,
        available: String,
    },
    #[error("{path}: {reference:?} matches {count} images; pick one by its full name or digest")]
    AmbiguousRef {
        path: PathBuf,
        reference: String,
        count: usize,
    },
    #[error("{path}: two images would both be named {name:?}")]
    DuplicateName { path: PathBuf, name: String },
    #[error("{path}: manifest.json: RepoTags entry {tag:?} is not a valid reference: {source}")]
    BadRepoTag {
        path: PathBuf,
        tag: String,
        source: ReferenceError,
    },
    #[error("invalid --name {name:?}: {why}")]
    BadName { name: String, why: String },
    #[error("--name {name:?} has a tag, so it names one image, but {path} holds {count}")]
    NameNeedsOne {
        name: String,
        path: PathBuf,
        count: usize,
    },
    #[error("{path}: {source}")]
    Store { path: PathBuf, source: StoreError },
}

/// One name written by a load, and what it points at.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The store name (`busybox:latest`), or the digest for an image kept without a name.
    pub name: String,
    /// The manifest (or, with all platforms, index) the name points at.
    pub descriptor: Descriptor,
}

/// How to load: which platforms, and what to call the images.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub platforms: PlatformChoice,
    /// `REPO[:TAG]` overriding the names the archive carries (rule 1 in the module docs).
    pub name: Option<String>,
}

/// Loads everything `spec` names into `store`: a `docker save` tarball, an OCI archive, an OCI
/// layout dir, or `path:ref` for one ref out of a layout holding several. Returns the stored
/// names. Indexes are resolved to `platform`.
pub fn load_path(store: &Store, spec: &str, platform: &Platform) -> Result<Vec<Loaded>, LoadError> {
    load_path_with(
        store,
        spec,
        &LoadOptions {
            platforms: PlatformChoice::One(platform.clone()),
            name: None,
        },
    )
}

/// [`load_path`] with every option.
pub fn load_path_with(
    store: &Store,
    spec: &str,
    options: &LoadOptions,
) -> Result<Vec<Loaded>, LoadError> {
    let (path, selector) = if spec == STDIN {
        (PathBuf::from(STDIN), None)
    } else {
        split_spec(spec).ok_or_else(|| LoadError::NotFound {
            spec: spec.to_string(),
        })?
    };
    let opened = Opened::open(&path, store)?;
    let mut candidates = opened.candidates(&path)?;
    if candidates.is_empty() {
        return Err(LoadError::Empty { path });
    }
    if let Some(selector) = &selector {
        candidates = select(candidates, selector, &path)?;
    }
    if let Some(name) = &options.name {
        rename(&mut candidates, name, &path)?;
    }
    let mut seen = HashSet::new();
    for name in candidates.iter().flat_map(|c| &c.names) {
        if !seen.insert(name.as_str()) {
            return Err(LoadError::DuplicateName {
                path,
                name: name.clone(),
            });
        }
    }

    let guard = store.write_guard().map_err(|source| LoadError::Store {
        path: path.clone(),
        source,
    })?;
    let result = import_and_name(store, &opened, &candidates, &options.platforms, &path);
    drop(guard);
    match result {
        Ok((loaded, replaced)) => {
            if replaced {
                // A name moved to another image: the old one may now be unreferenced.
                store
                    .gc()
                    .map_err(|source| LoadError::Store { path, source })?;
            }
            Ok(loaded)
        }
        Err(e) => {
            // Nothing was named; what was copied is unreferenced and goes. A failure here is
            // secondary to the one being reported.
            let _ = store.gc();
            Err(e)
        }
    }
}

/// Splits `spec` into a path that exists and an optional ref: the whole spec if it exists,
/// else at the first `:` whose left side exists. `None` when no such path exists.
pub fn split_spec(spec: &str) -> Option<(PathBuf, Option<String>)> {
    if Path::new(spec).exists() {
        return Some((PathBuf::from(spec), None));
    }
    spec.match_indices(':').find_map(|(i, _)| {
        let (path, reference) = (&spec[..i], &spec[i + 1..]);
        (!path.is_empty() && Path::new(path).exists()).then(|| {
            (
                PathBuf::from(path),
                Some(reference.to_string()).filter(|r| !r.is_empty()),
            )
        })
    })
}

/// Whether `spec` names something [`load_path`] can read: a file, or a directory with an
/// `oci-layout` file (a plain directory is not an image; `rsafe run` treats it as a rootfs).
pub fn is_load_spec(spec: &str) -> bool {
    split_spec(spec).is_some_and(|(path, _)| path.is_file() || path.join("oci-layout").is_file())
}

enum Opened {
    Layout(LayoutDir),
    Archive(TarArchive),
}

/// One image the source offers, before it is imported.
struct Candidate<'a> {
    root: Root<'a>,
    /// Store names it will get (none: kept by digest).
    names: Vec<String>,
    /// Other strings a `PATH:REF` may pick it by (the raw names the source carries).
    aliases: Vec<String>,
    /// Its digest (manifest or index; for a docker save image, the config, i.e. its image ID).
    digest: Option<Digest>,
}

enum Root<'a> {
    Oci(Box<Descriptor>),
    Docker(&'a TarArchive, DockerImage),
}

impl Opened {
    fn open(path: &Path, store: &Store) -> Result<Opened, LoadError> {
        if path == Path::new(STDIN) {
            Ok(Opened::Archive(
                TarArchive::from_stream(std::io::stdin().lock(), path, &store.tmp_dir())
                    .map_err(ImportError::from)?,
            ))
        } else if path.is_dir() {
            Ok(Opened::Layout(
                LayoutDir::open(path).map_err(ImportError::from)?,
            ))
        } else {
            Ok(Opened::Archive(
                TarArchive::open(path, &store.tmp_dir()).map_err(ImportError::from)?,
            ))
        }
    }

    fn source(&self) -> &dyn Source {
        match self {
            Opened::Layout(l) => l,
            Opened::Archive(a) => a,
        }
    }

    fn candidates(&self, path: &Path) -> Result<Vec<Candidate<'_>>, LoadError> {
        let stem = repository_from_path(path);
        match self {
            Opened::Archive(archive) if !archive.contains("index.json") => {
                let images = docker_save::read_manifest(archive)?.ok_or_else(|| {
                    LoadError::UnknownFormat {
                        path: path.to_path_buf(),
                    }
                })?;
                images
                    .into_iter()
                    .map(|image| docker_candidate(archive, image, path))
                    .collect()
            }
            _ => {
                let docker = match self {
                    Opened::Archive(a) => docker_save::read_manifest(a)?.unwrap_or_default(),
                    Opened::Layout(_) => Vec::new(),
                };
                let index = read_index(self.source())?;
                Ok(index
                    .manifests()
                    .iter()
                    .map(|d| oci_candidate(d, stem.as_deref(), self.source(), &docker))
                    .collect())
            }
        }
    }
}

fn docker_candidate<'a>(
    archive: &'a TarArchive,
    image: DockerImage,
    path: &Path,
) -> Result<Candidate<'a>, LoadError> {
    let names = image
        .repo_tags
        .iter()
        .map(|tag| {
            tag.parse::<Reference>()
                .map(|r| r.store_name())
                .map_err(|source| LoadError::BadRepoTag {
                    path: path.to_path_buf(),
                    tag: tag.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Candidate {
        names,
        aliases: image.repo_tags.clone(),
        digest: Some(image.config_digest.clone()),
        root: Root::Docker(archive, image),
    })
}

fn oci_candidate<'a>(
    desc: &Descriptor,
    stem: Option<&str>,
    source: &dyn Source,
    docker: &[DockerImage],
) -> Candidate<'a> {
    let annotation = |key: &str| desc.annotations().as_ref().and_then(|a| a.get(key));
    let ref_name = annotation(REF_NAME);
    let full_name = annotation(CONTAINERD_IMAGE_NAME);
    let mut names: Vec<String> = full_name
        .and_then(|full| full.parse::<Reference>().ok())
        .map(|r| r.store_name())
        .into_iter()
        .collect();
    if names.is_empty() {
        names = docker_tags_for(desc, source, docker);
    }
    if names.is_empty() {
        names = ref_name
            .and_then(|r| name_for_ref(r, stem))
            .into_iter()
            .collect();
    }
    Candidate {
        names,
        aliases: [ref_name, full_name]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
        digest: Digest::try_from(desc.digest()).ok(),
        root: Root::Oci(Box::new(desc.clone())),
    }
}

/// Rule 3 of the module docs.
fn name_for_ref(ref_name: &str, stem: Option<&str>) -> Option<String> {
    let full = if ref_name.contains(['/', ':', '@']) {
        ref_name.to_string()
    } else {
        format!("{}:{ref_name}", stem?)
    };
    full.parse::<Reference>().ok().map(|r| r.store_name())
}

/// A Docker 25+ tarball whose index.json entry carries no name: its manifest.json RepoTags, by
/// the config digest both point at. Unreadable manifests are left to the import to report.
fn docker_tags_for(desc: &Descriptor, source: &dyn Source, docker: &[DockerImage]) -> Vec<String> {
    if docker.is_empty() {
        return Vec::new();
    }
    let config_digest = Digest::try_from(desc.digest())
        .ok()
        .and_then(|d| source.read_file(&blob_member(&d), MAX_METADATA_BLOB).ok()?)
        .and_then(|bytes| serde_json::from_slice::<ImageManifest>(&bytes).ok())
        .and_then(|m| Digest::try_from(m.config().digest()).ok());
    docker
        .iter()
        .filter(|image| Some(&image.config_digest) == config_digest.as_ref())
        .flat_map(|image| &image.repo_tags)
        .filter_map(|tag| tag.parse::<Reference>().ok().map(|r| r.store_name()))
        .collect()
}

/// The repository an archive's bare tags are filed under: the file or directory name without
/// extension, lowercased, with characters a repository cannot hold turned into `-`.
fn repository_from_path(path: &Path) -> Option<String> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .or_else(|| {
            path.canonicalize()
                .ok()?
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })?;
    let mut stem = file_name.to_lowercase();
    for ext in [".tar.gz", ".tar.zst", ".tgz", ".tar", ".oci"] {
        if let Some(s) = stem.strip_suffix(ext) {
            stem = s.to_string();
            break;
        }
    }
    let cleaned: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let candidate = format!("{cleaned}:latest");
    candidate
        .parse::<Reference>()
        .ok()
        .filter(|r| r.registry.is_none() && !r.repository.contains('/'))
        .map(|r| r.repository)
}

fn select<'a>(
    candidates: Vec<Candidate<'a>>,
    selector: &str,
    path: &Path,
) -> Result<Vec<Candidate<'a>>, LoadError> {
    let normalized = selector.parse::<Reference>().ok().map(|r| r.store_name());
    let digest = selector.parse::<Digest>().ok();
    let matches = |c: &Candidate| {
        c.aliases.iter().any(|a| a == selector)
            || c.names.iter().any(|n| n == selector)
            || normalized.as_ref().is_some_and(|n| c.names.contains(n))
            || digest.is_some() && c.digest == digest
    };
    let available = candidates
        .iter()
        .map(|c| {
            c.aliases
                .first()
                .or(c.names.first())
                .cloned()
                .or_else(|| c.digest.as_ref().map(Digest::to_string))
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(", ");
    let chosen: Vec<Candidate<'a>> = candidates.into_iter().filter(matches).collect();
    match chosen.len() {
        0 => Err(LoadError::NoSuchRef {
            path: path.to_path_buf(),
            reference: selector.to_string(),
            available,
        }),
        1 => Ok(chosen),
        count => Err(LoadError::AmbiguousRef {
            path: path.to_path_buf(),
            reference: selector.to_string(),
            count,
        }),
    }
}

/// Rule 1 of the module docs.
fn rename(candidates: &mut [Candidate<'_>], name: &str, path: &Path) -> Result<(), LoadError> {
    let bad = |why: String| LoadError::BadName {
        name: name.to_string(),
        why,
    };
    let reference: Reference = name
        .parse()
        .map_err(|e: ReferenceError| bad(e.to_string()))?;
    if reference.digest.is_some() {
        return Err(bad("a name cannot carry a digest".into()));
    }
    if reference.tag.is_some() {
        if candidates.len() != 1 {
            return Err(LoadError::NameNeedsOne {
                name: name.to_string(),
                path: path.to_path_buf(),
                count: candidates.len(),
            });
        }
        candidates[0].names = vec![reference.store_name()];
        return Ok(());
    }
    let repository = reference.familiar_repository();
    for candidate in candidates {
        let mut tags: Vec<String> = candidate
            .names
            .iter()
            .filter_map(|n| n.parse::<Reference>().ok()?.tag)
            .collect();
        if tags.is_empty() {
            tags.push("latest".into());
        }
        candidate.names = tags.iter().map(|t| format!("{repository}:{t}")).collect();
    }
    Ok(())
}

/// Imports every candidate, then names them. Returns what was loaded, and whether a name
/// that pointed at another image was moved (so the old one may need collecting).
fn import_and_name(
    store: &Store,
    opened: &Opened,
    candidates: &[Candidate<'_>],
    platforms: &PlatformChoice,
    path: &Path,
) -> Result<(Vec<Loaded>, bool), LoadError> {
    let mut imported = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let descriptor = match &candidate.root {
            Root::Docker(archive, image) => docker_save::import(store, archive, image)?,
            Root::Oci(desc) => Importer::new(store, opened.source(), platforms).import(desc)?,
        };
        imported.push(descriptor);
    }
    let store_err = |source| LoadError::Store {
        path: path.to_path_buf(),
        source,
    };
    let mut loaded = Vec::new();
    let mut replaced = false;
    for (candidate, descriptor) in candidates.iter().zip(imported) {
        if candidate.names.is_empty() {
            store.keep_unnamed(&descriptor).map_err(store_err)?;
            loaded.push(Loaded {
                name: descriptor.digest().to_string(),
                descriptor,
            });
            continue;
        }
        for name in &candidate.names {
            replaced |= store
                .resolve(name)
                .is_ok_and(|old| old.digest() != descriptor.digest());
            store.tag(name, &descriptor).map_err(store_err)?;
            loaded.push(Loaded {
                name: name.clone(),
                descriptor: descriptor.clone(),
            });
        }
    }
    Ok((loaded, replaced))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_split_at_the_first_colon_after_an_existing_path() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("lay:out");
        std::fs::create_dir(&layout).unwrap();
        let plain = dir.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        let s = |x: &Path, rest: &str| format!("{}{rest}", x.display());
        assert_eq!(split_spec(&s(&plain, "")), Some((plain.clone(), None)));
        assert_eq!(
            split_spec(&s(&plain, ":app:1.0")),
            Some((plain.clone(), Some("app:1.0".into())))
        );
        assert_eq!(split_spec(&s(&layout, "")), Some((layout.clone(), None)));
        assert_eq!(
            split_spec(&s(&layout, ":latest")),
            Some((layout.clone(), Some("latest".into())))
        );
        assert_eq!(split_spec(&s(&plain, "x:latest")), None);
    }

    #[test]
    fn bare_ref_names_take_the_file_name_as_repository() {
        let stem = |p: &str| repository_from_path(Path::new(p));
        assert_eq!(stem("/x/busybox-oci.tar").as_deref(), Some("busybox-oci"));
        assert_eq!(stem("./My App.tar.gz").as_deref(), Some("my-app"));
        assert_eq!(stem("/x/oci-layout").as_deref(), Some("oci-layout"));
        assert_eq!(stem("/x/___.tar"), None);
        assert_eq!(
            name_for_ref("latest", Some("busybox-oci")).as_deref(),
            Some("busybox-oci:latest")
        );
        assert_eq!(name_for_ref("latest", None), None);
        assert_eq!(
            name_for_ref("docker.io/library/alpine:3", Some("x")).as_deref(),
            Some("alpine:3")
        );
        assert_eq!(name_for_ref("Not/Valid:1", Some("x")), None);
    }

    fn candidate(names: &[&str], aliases: &[&str]) -> Candidate<'static> {
        Candidate {
            root: Root::Oci(Box::new(Descriptor::new(
                oci_spec::image::MediaType::ImageManifest,
                1,
                &Digest::of_bytes(names.join(",").as_bytes()),
            ))),
            names: names.iter().map(|s| s.to_string()).collect(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            digest: Some(Digest::of_bytes(names.join(",").as_bytes())),
        }
    }

    #[test]
    fn selection_by_raw_ref_normalized_name_or_digest() {
        let path = Path::new("x.tar");
        let all = || {
            vec![
                candidate(&["x:latest"], &["latest"]),
                candidate(&["busybox:1"], &["docker.io/library/busybox:1"]),
            ]
        };
        let pick = |sel: &str| select(all(), sel, path).map(|c| c[0].names.clone());
        assert_eq!(pick("latest").unwrap(), ["x:latest"]);
        assert_eq!(pick("busybox:1").unwrap(), ["busybox:1"]);
        assert_eq!(pick("docker.io/busybox:1").unwrap(), ["busybox:1"]);
        let d = Digest::of_bytes(b"busybox:1");
        assert_eq!(pick(&d.to_string()).unwrap(), ["busybox:1"]);
        let err = pick("nope").unwrap_err().to_string();
        assert!(err.contains("latest, docker.io/library/busybox:1"), "{err}");
    }

    #[test]
    fn name_option_replaces_repository_or_names_one_image() {
        let path = Path::new("x.tar");
        let mut two = vec![
            candidate(&["x:latest"], &[]),
            candidate(&["x:root", "y:2"], &[]),
        ];
        rename(&mut two, "app", path).unwrap();
        assert_eq!(two[0].names, ["app:latest"]);
        assert_eq!(two[1].names, ["app:root", "app:2"]);
        assert!(matches!(
            rename(&mut two, "app:1.0", path),
            Err(LoadError::NameNeedsOne { count: 2, .. })
        ));
        let mut one = vec![candidate(&[], &[])];
        rename(&mut one, "docker.io/library/app:1.0", path).unwrap();
        assert_eq!(one[0].names, ["app:1.0"]);
        assert!(matches!(
            rename(&mut one, "Bad Name", path),
            Err(LoadError::BadName { .. })
        ));
    }
}
