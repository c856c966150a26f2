//! rsafe's own layered root filesystem, named by the annotations of the `config.json` that
//! `rsafe run`/`create` writes ([`super::from_spec`]): the image's layers
//! (`io.github.rsafe.rootfs.lowers`, bottom first) and the container's writable layer
//! (`.upper`, `.work`). With them, `rsafe-runtime create` of `<store>/containers/<id>` mounts
//! the overlay itself, as `rsafe run` does, so that config runs with nothing done by hand.
//!
//! Why it is strict: an annotation is any bundle author's to write, and the overlay is mounted
//! by the runtime (with root's privileges for root's caller). So the layers must be
//! directories under the `layers/` of the very store whose `containers/` holds the bundle, and
//! the writable layer the bundle directory's own `upper/` and `work/`: no `..`, no symlink at
//! the end, and after resolving every symlink on the way still inside. Anything else is
//! refused with the annotation's name; a bundle cannot mount a host directory through it.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The image's layers, a JSON array of absolute paths, bottom first.
pub const LOWERS: &str = "io.github.rsafe.rootfs.lowers";
/// The container's writable layer.
pub const UPPER: &str = "io.github.rsafe.rootfs.upper";
/// Overlayfs's work directory beside it.
pub const WORK: &str = "io.github.rsafe.rootfs.work";

/// At most this many layers (overlayfs's own limit is 500 lower directories).
const MAX_LAYERS: usize = 500;

/// The overlay a bundle's annotations name, every path checked and resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayeredRoot {
    /// Bottom first, as `rsafe run`'s spec lists them.
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// Why the annotations cannot be used: the annotation's key and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub annotation: &'static str,
    pub why: String,
}

fn refuse(annotation: &'static str, why: impl Into<String>) -> Refused {
    Refused {
        annotation,
        why: why.into(),
    }
}

/// The layered root of the bundle in `bundle_dir`, or `None` when its annotations name none.
pub fn from_annotations(
    bundle_dir: &Path,
    annotations: &BTreeMap<String, String>,
) -> Result<Option<LayeredRoot>, Refused> {
    let (lowers, upper, work) = match (
        annotations.get(LOWERS),
        annotations.get(UPPER),
        annotations.get(WORK),
    ) {
        (None, None, None) => return Ok(None),
        (Some(l), Some(u), Some(w)) => (l, u, w),
        (None, _, _) => return Err(refuse(LOWERS, "missing, while the writable layer is named")),
        (_, None, _) => return Err(refuse(UPPER, "missing, while the layers are named")),
        (_, _, None) => return Err(refuse(WORK, "missing, while the layers are named")),
    };
    let bundle_dir = std::fs::canonicalize(bundle_dir)
        .map_err(|e| refuse(LOWERS, format!("{}: {e}", bundle_dir.display())))?;
    let store = store_of(&bundle_dir).ok_or_else(|| {
        refuse(
            LOWERS,
            format!(
                "the bundle {} is not a container directory of an rsafe store (<store>/containers/<id>)",
                bundle_dir.display()
            ),
        )
    })?;
    let lowers: Vec<String> = serde_json::from_str(lowers)
        .map_err(|e| refuse(LOWERS, format!("not a JSON array of paths: {e}")))?;
    if lowers.is_empty() || lowers.len() > MAX_LAYERS {
        return Err(refuse(
            LOWERS,
            format!("{} layers (1 to {MAX_LAYERS} allowed)", lowers.len()),
        ));
    }
    let layers = store.join("layers");
    let lowers = lowers
        .iter()
        .map(|l| inside(LOWERS, Path::new(l), &layers, false))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(LayeredRoot {
        lowers,
        upper: exactly(UPPER, Path::new(upper), &bundle_dir.join("upper"))?,
        work: exactly(WORK, Path::new(work), &bundle_dir.join("work"))?,
    }))
}

/// The store that owns `bundle_dir` (canonical) when it is `<store>/containers/<id>`.
fn store_of(bundle_dir: &Path) -> Option<PathBuf> {
    let containers = bundle_dir.parent()?;
    (containers.file_name()? == "containers").then(|| containers.parent().map(Path::to_path_buf))?
}

/// `path`, resolved, when it is a directory strictly under `base` (canonical) reached without
/// `..`, `.` or a final symlink (or `base` itself, when `may_be_base`).
fn inside(
    annotation: &'static str,
    path: &Path,
    base: &Path,
    may_be_base: bool,
) -> Result<PathBuf, Refused> {
    let shown = path.display();
    if !path.is_absolute() {
        return Err(refuse(annotation, format!("{shown}: not an absolute path")));
    }
    if path
        .components()
        .any(|c| !matches!(c, Component::RootDir | Component::Normal(_)))
    {
        return Err(refuse(annotation, format!("{shown}: has a `..` or `.`")));
    }
    let meta =
        std::fs::symlink_metadata(path).map_err(|e| refuse(annotation, format!("{shown}: {e}")))?;
    if meta.file_type().is_symlink() {
        return Err(refuse(annotation, format!("{shown}: a symlink")));
    }
    if !meta.is_dir() {
        return Err(refuse(annotation, format!("{shown}: not a directory")));
    }
    let real =
        std::fs::canonicalize(path).map_err(|e| refuse(annotation, format!("{shown}: {e}")))?;
    let under = real.starts_with(base) && (may_be_base || real != base);
    if !under {
        return Err(refuse(
            annotation,
            format!(
                "{shown}: outside {} of the store that holds the bundle",
                base.display()
            ),
        ));
    }
    Ok(real)
}

/// `path`, resolved, when it is `want` (the bundle's own `upper/` or `work/`).
fn exactly(annotation: &'static str, path: &Path, want: &Path) -> Result<PathBuf, Refused> {
    let real = inside(annotation, path, want, true)?;
    match real == want {
        true => Ok(real),
        false => Err(refuse(
            annotation,
            format!(
                "{}: not the bundle's own {}",
                path.display(),
                want.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with one layer and one container directory; the container's bundle path.
    fn store() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let layer = root.join("layers/sha256-aa/rootfs");
        let bundle = root.join("containers/c1");
        for d in [&layer, &bundle.join("upper"), &bundle.join("work")] {
            std::fs::create_dir_all(d).unwrap();
        }
        (tmp, layer, bundle)
    }

    fn annotations(lowers: &[&Path], bundle: &Path) -> BTreeMap<String, String> {
        let lowers: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        BTreeMap::from([
            (LOWERS.to_string(), serde_json::to_string(&lowers).unwrap()),
            (
                UPPER.to_string(),
                bundle.join("upper").display().to_string(),
            ),
            (WORK.to_string(), bundle.join("work").display().to_string()),
        ])
    }

    #[test]
    fn the_stores_own_layers_and_writable_layer_are_accepted() {
        let (_tmp, layer, bundle) = store();
        let got = from_annotations(&bundle, &annotations(&[&layer], &bundle)).unwrap();
        assert_eq!(
            got,
            Some(LayeredRoot {
                lowers: vec![layer],
                upper: bundle.join("upper"),
                work: bundle.join("work"),
            })
        );
        assert_eq!(from_annotations(&bundle, &BTreeMap::new()), Ok(None));
    }

    #[test]
    fn a_layer_outside_the_store_is_refused_by_the_annotations_name() {
        let (tmp, layer, bundle) = store();
        let outside = tempfile::tempdir().unwrap();
        let dotdot = layer.join("../../../containers");
        let link = tmp.path().join("layers/link");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        let inner_link = tmp.path().join("layers/inner");
        std::os::unix::fs::symlink(&layer, &inner_link).unwrap();
        for (hostile, why) in [
            (outside.path(), "outside"),
            (Path::new("/"), "outside"),
            (Path::new("/etc"), "outside"),
            (dotdot.as_path(), "`..`"),
            (link.as_path(), "symlink"),
            (inner_link.as_path(), "symlink"),
            (&tmp.path().join("layers"), "outside"),
            (&bundle.join("upper"), "outside"),
        ] {
            let e = from_annotations(&bundle, &annotations(&[&layer, hostile], &bundle))
                .expect_err(&hostile.display().to_string());
            assert_eq!(e.annotation, LOWERS, "{hostile:?}");
            assert!(e.why.contains(why), "{hostile:?}: {e:?}");
        }
    }

    #[test]
    fn the_writable_layer_must_be_the_bundles_own() {
        let (tmp, layer, bundle) = store();
        let other = tmp.path().join("containers/c2");
        for d in ["upper", "work"] {
            std::fs::create_dir_all(other.join(d)).unwrap();
        }
        let mut a = annotations(&[&layer], &bundle);
        a.insert(UPPER.into(), other.join("upper").display().to_string());
        let e = from_annotations(&bundle, &a).unwrap_err();
        assert_eq!(e.annotation, UPPER);
        let mut a = annotations(&[&layer], &bundle);
        a.insert(WORK.into(), "/tmp".into());
        assert_eq!(from_annotations(&bundle, &a).unwrap_err().annotation, WORK);
        let mut a = annotations(&[&layer], &bundle);
        a.remove(WORK);
        assert_eq!(from_annotations(&bundle, &a).unwrap_err().annotation, WORK);
    }

    #[test]
    fn a_bundle_outside_a_stores_containers_gets_no_layers() {
        let (tmp, layer, _) = store();
        let elsewhere = tmp.path().join("bundle");
        for d in ["upper", "work"] {
            std::fs::create_dir_all(elsewhere.join(d)).unwrap();
        }
        let e = from_annotations(&elsewhere, &annotations(&[&layer], &elsewhere)).unwrap_err();
        assert_eq!(e.annotation, LOWERS);
        assert!(e.why.contains("not a container directory"), "{e:?}");
        let (_t2, layer2, bundle2) = store();
        let mut a = annotations(&[&layer2], &bundle2);
        a.insert(LOWERS.into(), "not json".into());
        assert_eq!(
            from_annotations(&bundle2, &a).unwrap_err().annotation,
            LOWERS
        );
    }
}
