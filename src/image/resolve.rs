//! From what a user typed after `rsafe run`, `rsafe audit` or `rsafe unpack` to an opened image:
//! a store name or digest, a path to an archive or layout, or a registry reference to pull.
//! One resolver, so every command accepts the same things in the same order.

use std::path::Path;

use super::config::{Image, ImageError, Platform};
use super::load::{self, LoadError};
use super::lookup::{self, LookupError};
use super::reference::{Reference, ReferenceError};
use super::store::Store;

/// Why an image argument could not be turned into an image.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(
        "{input:?} is not in the store and is not a file, a layout or a valid reference: {source}"
    )]
    Reference {
        input: String,
        source: ReferenceError,
    },
    #[error("{path}: holds {count} images; name one with {path}:REF")]
    Several { path: String, count: usize },
    #[cfg(feature = "registry")]
    #[error(transparent)]
    Pull(#[from] Box<super::registry::RegistryError>),
    #[error("{0:?} is not in the store (and this build has no registry client to pull it)")]
    NoRegistry(String),
}

/// How far the resolver may go to find an image.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    pub platform: Platform,
    /// Pull from a registry when the image is neither in the store nor on disk.
    pub pull: bool,
    /// Plain HTTP to a non-loopback registry (see `rsafe pull --insecure`).
    pub insecure: bool,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            platform: Platform::host(),
            pull: true,
            insecure: false,
        }
    }
}

/// Where the image was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Store,
    Loaded,
    Pulled,
}

/// An image ready to use, with the name it goes by.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    pub image: Image,
    pub origin: Origin,
}

/// Whether the input is spelled as a path (`./x`, `/x`, `../x`, `x/y` that exists): those are
/// always read from disk, even if a store name happens to match.
fn spelled_as_path(input: &str) -> bool {
    input.starts_with('/')
        || input.starts_with("./")
        || input.starts_with("../")
        || (input.contains('/') && Path::new(input).exists())
}

/// Resolves `input` in this order: a path spelled as one (loaded into `store`); a store name,
/// digest or digest prefix; any other existing file or layout; a registry reference (pulled
/// into `store` when `opts.pull`).
pub fn resolve(
    store: &Store,
    input: &str,
    opts: &ResolveOptions,
) -> Result<Resolved, ResolveError> {
    if spelled_as_path(input) && load::is_load_spec(input) {
        return load_one(store, input, opts);
    }
    if let Some(resolved) = resolve_stored(store, input, opts)? {
        return Ok(resolved);
    }
    if load::is_load_spec(input) {
        return load_one(store, input, opts);
    }
    let reference: Reference = input.parse().map_err(|source| ResolveError::Reference {
        input: input.to_string(),
        source,
    })?;
    if !opts.pull {
        return Err(LookupError::NotFound(input.to_string()).into());
    }
    pull(store, &reference, opts)
}

/// The part of [`resolve`] that only reads the store: the image `input` names when it is
/// already there, `None` when it would have to be loaded from a path or pulled. Starts no
/// thread and writes nothing, so a single-threaded caller (the runner) may use it in-process.
pub fn resolve_stored(
    store: &Store,
    input: &str,
    opts: &ResolveOptions,
) -> Result<Option<Resolved>, ResolveError> {
    if spelled_as_path(input) && load::is_load_spec(input) {
        return Ok(None);
    }
    match lookup::find(store, input) {
        Ok(found) => {
            let name = found.display_name();
            let image = Image::from_descriptor(store, &found.descriptor, &opts.platform)?;
            Ok(Some(Resolved {
                name,
                image,
                origin: Origin::Store,
            }))
        }
        Err(LookupError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn load_one(store: &Store, input: &str, opts: &ResolveOptions) -> Result<Resolved, ResolveError> {
    let loaded = load::load_path(store, input, &opts.platform)?;
    let [one] = loaded.as_slice() else {
        return Err(ResolveError::Several {
            path: input.to_string(),
            count: loaded.len(),
        });
    };
    let image = Image::from_descriptor(store, &one.descriptor, &opts.platform)?;
    Ok(Resolved {
        name: one.name.clone(),
        image,
        origin: Origin::Loaded,
    })
}

#[cfg(feature = "registry")]
fn pull(
    store: &Store,
    reference: &Reference,
    opts: &ResolveOptions,
) -> Result<Resolved, ResolveError> {
    let pull_opts = super::registry::PullOptions {
        platform: opts.platform.clone(),
        insecure: opts.insecure,
        ..Default::default()
    };
    let pulled = super::registry::pull(store, reference, &pull_opts, &|_| {}).map_err(Box::new)?;
    let image = Image::from_manifest(store, pulled.manifest.clone())?;
    Ok(Resolved {
        name: pulled.name,
        image,
        origin: Origin::Pulled,
    })
}

#[cfg(not(feature = "registry"))]
fn pull(_: &Store, reference: &Reference, _: &ResolveOptions) -> Result<Resolved, ResolveError> {
    Err(ResolveError::NoRegistry(reference.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_recognised_by_spelling() {
        assert!(spelled_as_path("./app.tar"));
        assert!(spelled_as_path("/srv/app.tar"));
        assert!(spelled_as_path("../layout:app"));
        assert!(!spelled_as_path("busybox:latest"));
        assert!(
            !spelled_as_path("rsafe/busybox:latest"),
            "no such dir here: a name"
        );
    }

    #[test]
    fn unknown_name_without_pull_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let opts = ResolveOptions {
            pull: false,
            ..Default::default()
        };
        let err = resolve(&store, "nosuch:1.0", &opts).unwrap_err();
        assert!(
            matches!(err, ResolveError::Lookup(LookupError::NotFound(_))),
            "{err}"
        );
        let err = resolve(&store, "Not A Ref", &opts).unwrap_err();
        assert!(matches!(err, ResolveError::Reference { .. }), "{err}");
    }
}
