//! What `rsafe audit TARGET` was pointed at, decided in one documented order so that the same
//! argument always means the same thing and nothing is pulled from a registry by mistake:
//!
//! 1. `--type` wins (the argument is then only checked to be of that kind);
//! 2. `-` is standard input: a manifest stream when it starts with text, else an archive;
//! 3. an existing path is a path: a directory is an OCI layout (it has `oci-layout`), a
//!    directory of Kubernetes manifests, or a build context; a file is recognised by its
//!    content (archive magic, first Dockerfile instruction, compose `services:`, Kubernetes
//!    `apiVersion` + `kind`), then by its name; `PATH:REF` picks one image of an archive or
//!    layout;
//! 4. a name or digest the local store holds is the store image;
//! 5. an argument spelled as a path (`./x`, `/x`, `~/x`, `x.tar`, `x.yaml`, `Dockerfile`, a
//!    `dir/file` under an existing directory) that does not exist is an error, never a pull;
//! 6. a bare digest or image id the store does not hold is an error (digests are local);
//! 7. only then is it a registry reference, pulled into a temporary store.
//!
//! [`Resolution::how`] says which rule decided (`--verbose` prints it).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::audit::compose::yaml::Node;
use crate::audit::{context, k8s};
use crate::image::load;
use crate::image::lookup::{self, LookupError};
use crate::image::reference::Reference;
use crate::image::store::Store;

/// `--type`: what the target is, for an argument whose spelling or content says otherwise
/// (a directory named like a store image, a Dockerfile with no FROM yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetType {
    /// An image in the store (name, digest, id), else pulled from a registry.
    Image,
    /// A `docker save` tarball or OCI archive (`FILE[:REF]`, `-` for stdin).
    Archive,
    /// An OCI image layout directory (`DIR[:REF]`), read in place.
    Layout,
    /// A Dockerfile or Containerfile, whatever its name (`-` for one on stdin).
    Dockerfile,
    /// A compose file, whatever its name.
    Compose,
    /// Kubernetes manifests: a file, a directory, or `-` for a stream on stdin.
    K8s,
    /// A build-context directory.
    Dir,
}

/// What `rsafe audit` was pointed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An OCI image layout directory, read in place (nothing is copied), and the ref to audit
    /// (None: its only one).
    Layout {
        dir: PathBuf,
        reference: Option<String>,
    },
    /// A name, digest or id the local store holds (as typed).
    Stored(String),
    /// An image archive, `FILE[:REF]`, or `-` for one on standard input; loaded into a
    /// temporary store.
    Archive(String),
    /// A registry reference, pulled into a temporary store.
    Remote(String),
    /// A Dockerfile / Containerfile, reviewed before any build.
    Dockerfile(PathBuf),
    /// A compose file.
    Compose(PathBuf),
    /// A build context: a directory that is not an OCI layout.
    Context(PathBuf),
    /// Kubernetes manifests: a file, or a directory of them.
    K8s(PathBuf),
    /// A Kubernetes manifest stream on standard input (`helm template … | rsafe audit -`).
    K8sStdin,
    /// A Dockerfile on standard input (`rsafe audit - < Dockerfile`, as `hadolint -`).
    DockerfileStdin,
}

/// A target and the rule that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub target: Target,
    /// Which rule decided, for `--verbose` (`a compose file, by its content`).
    pub how: String,
    /// Something the user should know even without `--verbose`: the argument also names
    /// something else that was not chosen.
    pub note: Option<String>,
}

/// Why an argument names nothing rsafe can audit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error(
        "{0}: no such file or directory (spelled as a path, so not pulled from a registry{hint})",
        hint = if *.1 { "; --type image if it names an image" } else { "" }
    )]
    NoSuchPath(String, bool),
    #[error("{0}: no such file or directory")]
    Missing(String),
    #[error(
        "{0}: no image with this digest or id in the store (digests are looked up locally, \
         never pulled; pull NAME@sha256:… to fetch one)"
    )]
    UnknownDigest(String),
    /// The second field says why a YAML file could not be told apart (its first YAML error).
    #[error(
        "{0}: not a Dockerfile, compose file, Kubernetes manifest or image archive{why}",
        why = .1.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    Unrecognised(String, Option<String>),
    #[error(
        "{0}: not a regular file or a directory (a pipe or a device); to audit a stream, \
         pipe it to `rsafe audit -`"
    )]
    NotRegular(String),
    #[error("{path}: not {what}")]
    WrongType { path: String, what: &'static str },
    #[error("{0}: cannot read: {1}")]
    Read(String, String),
    #[error("cannot look up {0} in the store: {1}")]
    Lookup(String, String),
    #[error("{0:?} is not on disk, not in the store, and not a valid image reference: {1}")]
    NotReference(String, String),
}

/// What a file holds, judged by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Archive,
    Dockerfile,
    Compose,
    K8s,
}

/// How many bytes are read to tell a Dockerfile or an archive (YAML is parsed whole, up to
/// the manifest size limit).
const SNIFF_BYTES: u64 = 64 << 10;

/// Resolves `spec` (see the module documentation for the order). `store` is the user's store
/// when it exists; `stdin_text` is asked only for `-`: the first bytes of standard input when
/// they are text, `None` when they are binary.
pub fn resolve(
    spec: &str,
    forced: Option<TargetType>,
    store: Option<&Store>,
    stdin_text: impl FnOnce() -> Option<String>,
) -> Result<Resolution, TargetError> {
    if let Some(kind) = forced {
        return resolve_forced(spec, kind, store);
    }
    if spec == load::STDIN {
        return Ok(match stdin_text() {
            Some(head) if is_dockerfile(&head) => {
                found(Target::DockerfileStdin, "standard input holds a Dockerfile")
            }
            Some(_) => found(
                Target::K8sStdin,
                "standard input holds text: a manifest stream",
            ),
            None => found(
                Target::Archive(spec.into()),
                "standard input is binary: an image archive",
            ),
        });
    }
    let path = Path::new(spec);
    if path.exists() {
        let mut r = resolve_path(spec)?;
        r.note = shadowed_image(spec, store, path);
        return Ok(r);
    }
    if let Some(r) = resolve_path_with_ref(spec) {
        return Ok(r);
    }
    if let Some(store) = store
        && let Some(name) = stored(store, spec)?
    {
        return Ok(found(
            Target::Stored(spec.into()),
            &format!("the image {name} in the store {}", store.root().display()),
        ));
    }
    if spelled_as_path(spec) {
        let could_be_image =
            !spec.starts_with(['/', '.', '~']) && spec.parse::<Reference>().is_ok();
        return Err(TargetError::NoSuchPath(spec.into(), could_be_image));
    }
    if is_digest(spec) {
        return Err(TargetError::UnknownDigest(spec.into()));
    }
    remote(spec)
}

fn found(target: Target, how: &str) -> Resolution {
    Resolution {
        target,
        how: how.to_string(),
        note: None,
    }
}

/// `--type KIND SPEC`: SPEC must be of that kind.
fn resolve_forced(
    spec: &str,
    kind: TargetType,
    store: Option<&Store>,
) -> Result<Resolution, TargetError> {
    let how = format!(
        "--type {}",
        clap::ValueEnum::to_possible_value(&kind)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    );
    let stdin = spec == load::STDIN;
    let path = PathBuf::from(spec);
    let target = match kind {
        TargetType::Image => {
            if let Some(store) = store
                && stored(store, spec)?.is_some()
            {
                Target::Stored(spec.into())
            } else if is_digest(spec) {
                return Err(TargetError::UnknownDigest(spec.into()));
            } else if spec.starts_with(['/', '.', '~']) {
                return Err(wrong(
                    &path,
                    "an image name (--type archive or layout for a path)",
                ));
            } else {
                return remote(spec).map(|r| Resolution { how, ..r });
            }
        }
        TargetType::Archive if stdin => Target::Archive(spec.into()),
        TargetType::Archive => match load::split_spec(spec) {
            Some((p, _)) if p.is_file() => Target::Archive(spec.into()),
            Some((p, _)) => return Err(wrong(&p, "a file")),
            None => return Err(TargetError::Missing(spec.into())),
        },
        TargetType::Layout => match load::split_spec(spec) {
            Some((dir, reference)) if dir.join("oci-layout").is_file() => {
                Target::Layout { dir, reference }
            }
            Some((p, _)) => return Err(wrong(&p, "an OCI layout (no oci-layout file)")),
            None => return Err(TargetError::Missing(spec.into())),
        },
        TargetType::K8s if stdin => Target::K8sStdin,
        TargetType::K8s => Target::K8s(existing(path)?),
        TargetType::Dockerfile if stdin => Target::DockerfileStdin,
        TargetType::Dockerfile => Target::Dockerfile(existing_file(path)?),
        TargetType::Compose => Target::Compose(existing_file(path)?),
        TargetType::Dir => {
            let dir = existing(path)?;
            if !dir.is_dir() {
                return Err(wrong(&dir, "a directory"));
            }
            Target::Context(dir)
        }
    };
    Ok(Resolution {
        target,
        how,
        note: None,
    })
}

fn wrong(path: &Path, what: &'static str) -> TargetError {
    TargetError::WrongType {
        path: path.display().to_string(),
        what,
    }
}

fn existing(path: PathBuf) -> Result<PathBuf, TargetError> {
    if path.exists() {
        Ok(path)
    } else {
        Err(TargetError::Missing(path.display().to_string()))
    }
}

fn existing_file(path: PathBuf) -> Result<PathBuf, TargetError> {
    let path = existing(path)?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(wrong(&path, "a file"))
    }
}

/// An argument that exists on disk.
fn resolve_path(spec: &str) -> Result<Resolution, TargetError> {
    let path = PathBuf::from(spec);
    if path.is_dir() {
        return Ok(if path.join("oci-layout").is_file() {
            found(
                Target::Layout {
                    dir: path,
                    reference: None,
                },
                "an OCI layout directory, read in place",
            )
        } else if is_manifest_dir(&path) {
            found(Target::K8s(path), "a directory of Kubernetes manifests")
        } else {
            found(Target::Context(path), "a directory: a build context")
        });
    }
    // A FIFO, socket or device is read twice (sniffed, then audited) and may never end: a
    // pipe without a writer would hang a CI job. Such input comes through `-`.
    if !path.is_file() {
        return Err(TargetError::NotRegular(spec.into()));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let by_content = sniff_file(&path)?;
    let (content, how) = match by_content {
        Some(c) => (c, "by its content"),
        None => match by_name(&name) {
            Some(c) => (c, "by its name"),
            None => return Err(TargetError::Unrecognised(spec.into(), yaml_error(&path))),
        },
    };
    let (target, what) = match content {
        Content::Archive => (Target::Archive(spec.into()), "an image archive"),
        Content::Dockerfile => (Target::Dockerfile(path), "a Dockerfile"),
        Content::Compose => (Target::Compose(path), "a compose file"),
        Content::K8s => (Target::K8s(path), "a Kubernetes manifest"),
    };
    Ok(found(target, &format!("{what}, {how}")))
}

/// `DIR:REF` of a layout, `FILE:REF` of an archive (split as `rsafe load` splits).
fn resolve_path_with_ref(spec: &str) -> Option<Resolution> {
    let (path, reference) = load::split_spec(spec)?;
    reference.as_ref()?;
    if path.join("oci-layout").is_file() {
        return Some(found(
            Target::Layout {
                dir: path,
                reference,
            },
            "one image of an OCI layout directory, read in place",
        ));
    }
    // A file with `:REF` is an archive to pick from; a plain directory named like the image
    // (`./app` for `app:1.0`) is not a path to it.
    path.is_file().then(|| {
        found(
            Target::Archive(spec.into()),
            "one image of an image archive",
        )
    })
}

/// The store's name for `spec`, when the store holds it.
fn stored(store: &Store, spec: &str) -> Result<Option<String>, TargetError> {
    match lookup::find(store, spec) {
        Ok(found) => Ok(Some(found.display_name())),
        Err(LookupError::NotFound(_)) => Ok(None),
        Err(e) => Err(TargetError::Lookup(spec.into(), e.to_string())),
    }
}

/// A note when an existing path also names a store image (`./app` and `app`).
fn shadowed_image(spec: &str, store: Option<&Store>, path: &Path) -> Option<String> {
    let store = store?;
    if spec.contains('/') || spec.parse::<Reference>().is_err() {
        return None;
    }
    let name = stored(store, spec).ok()??;
    let what = if path.is_dir() { "directory" } else { "file" };
    Some(format!(
        "{spec} is a {what} here and the image {name} in the store: auditing the {what} \
         (--type image audits the image)"
    ))
}

fn remote(spec: &str) -> Result<Resolution, TargetError> {
    spec.parse::<Reference>()
        .map_err(|e| TargetError::NotReference(spec.into(), e.to_string()))?;
    Ok(found(
        Target::Remote(spec.into()),
        "not on disk nor in the store: pulled from its registry into a temporary store",
    ))
}

/// Whether `spec` is spelled as a path rather than an image name: those are never pulled.
pub fn spelled_as_path(spec: &str) -> bool {
    const PATH_ENDINGS: &[&str] = &[
        ".tar",
        ".tar.gz",
        ".tgz",
        ".tar.zst",
        ".tar.zstd",
        ".yaml",
        ".yml",
        ".json",
        ".docker",
    ];
    let lower = spec.to_ascii_lowercase();
    let file_name = spec.rsplit('/').next().unwrap_or(spec);
    let under_existing_dir = spec.contains('/')
        && !spec.contains(['@', ':'])
        && spec
            .split('/')
            .next()
            .is_some_and(|first| !first.is_empty() && Path::new(first).is_dir());
    spec.starts_with(['/', '~'])
        || spec.starts_with("./")
        || spec.starts_with("../")
        || spec == "."
        || spec == ".."
        || PATH_ENDINGS.iter().any(|e| lower.ends_with(e))
        || context::is_dockerfile_name(file_name)
        || context::is_compose_name(file_name)
        || under_existing_dir
}

/// A digest (`sha256:…`) or an image id (12 to 64 hex digits, as `rsafe images` shows them):
/// names only the local store can resolve (docker refuses 64 hex digits as a repository name).
pub fn is_digest(spec: &str) -> bool {
    let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match spec.strip_prefix("sha256:") {
        Some(rest) => !rest.is_empty() && rest.len() <= 64 && hex(rest),
        None => (12..=64).contains(&spec.len()) && hex(spec),
    }
}

/// A directory of Kubernetes manifests: no Dockerfile or compose file at its top (that is a
/// build context), and a workload manifest somewhere below.
fn is_manifest_dir(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut yaml = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if context::is_dockerfile_name(&name) || context::is_compose_name(&name) {
            return false;
        }
        if k8s::is_manifest_name(&name) {
            yaml.push(e.path());
        }
    }
    yaml.iter()
        .any(|p| k8s::read_limited(p).is_ok_and(|t| k8s::looks_like_manifest(&t)))
        || ["k8s", "kubernetes", "manifests", "deploy"]
            .iter()
            .any(|sub| dir.join(sub).is_dir() && is_manifest_dir(&dir.join(sub)))
}

/// What a file holds by its content; `None` when nothing matches.
fn sniff_file(path: &Path) -> Result<Option<Content>, TargetError> {
    let read_err = |e: std::io::Error| TargetError::Read(path.display().to_string(), e.to_string());
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(SNIFF_BYTES).read_to_end(&mut head))
        .map_err(read_err)?;
    if is_archive(&head) {
        return Ok(Some(Content::Archive));
    }
    if head.contains(&0) {
        return Ok(None);
    }
    if is_dockerfile(&String::from_utf8_lossy(&head)) {
        return Ok(Some(Content::Dockerfile));
    }
    // YAML (and JSON) is parsed whole. A file past the manifest limit is judged by its
    // beginning: manifests go to the manifest reader, which says the file is too large.
    let text = match k8s::read_limited(path) {
        Ok(text) => text,
        Err(k8s::K8sError::TooLarge { .. }) => {
            let head = String::from_utf8_lossy(&head);
            return Ok(sniff_yaml(&head).filter(|c| *c == Content::K8s));
        }
        Err(_) => return Ok(None),
    };
    Ok(sniff_yaml(&text))
}

/// The first YAML error of a text file that was recognised as nothing: a compose file or
/// manifest too deep or with an alias bomb is invalid YAML, and saying so beats "not a …".
fn yaml_error(path: &Path) -> Option<String> {
    let text = k8s::read_limited(path).ok()?;
    if text.contains('\0') {
        return None;
    }
    k8s::documents(&text).into_iter().find_map(|d| {
        let e = d.err()?;
        Some(format!(
            "invalid YAML at {}:{}: {}",
            e.line, e.column, e.message
        ))
    })
}

/// A compose file or Kubernetes manifests, by their YAML.
pub fn sniff_yaml(text: &str) -> Option<Content> {
    let docs = k8s::documents(text);
    let roots = || docs.iter().filter_map(|d| d.as_ref().ok()?.root.as_ref());
    if roots().any(|r| k8s::Object::of(r).is_some()) {
        return Some(Content::K8s);
    }
    let compose_key = |r: &Node| r.get("services").is_some() && r.entries().is_some();
    roots()
        .next()
        .filter(|r| compose_key(r))
        .map(|_| Content::Compose)
}

/// A tar (the `ustar` magic at 257), gzip or zstd stream.
pub fn is_archive(head: &[u8]) -> bool {
    const GZIP: &[u8] = &[0x1f, 0x8b];
    const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
    head.starts_with(GZIP)
        || head.starts_with(ZSTD)
        || head.get(257..262).is_some_and(|m| m == b"ustar")
}

/// A Dockerfile: its first instruction, after blank lines, comments and parser directives, is
/// `FROM [--flag…] IMAGE [AS NAME]` or `ARG NAME[=VALUE]…` (the only instruction allowed before
/// the first `FROM`). The shape is checked, not just the word: `from os import path` is Python.
pub fn is_dockerfile(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(line) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return false;
    };
    let mut words = line.split_whitespace().filter(|w| *w != "\\");
    let first = words.next().unwrap_or_default();
    let rest: Vec<&str> = words.collect();
    if first.eq_ignore_ascii_case("FROM") {
        let args: Vec<&str> = rest
            .into_iter()
            .skip_while(|w| w.starts_with("--"))
            .collect();
        match args.as_slice() {
            [] | [_] => true,
            [_, r#as, _] => r#as.eq_ignore_ascii_case("AS"),
            _ => false,
        }
    } else if first.eq_ignore_ascii_case("ARG") {
        rest.iter().all(|w| {
            let name = w.split('=').next().unwrap_or_default();
            name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }) && !rest.is_empty()
    } else {
        false
    }
}

/// What a file is by its name alone (for content that matched nothing, such as a Dockerfile
/// whose first instruction is wrong: its audit then says what is wrong).
fn by_name(name: &str) -> Option<Content> {
    if context::is_dockerfile_name(name) {
        Some(Content::Dockerfile)
    } else if context::is_compose_name(name) {
        Some(Content::Compose)
    } else {
        let lower = name.to_ascii_lowercase();
        [".tar", ".tar.gz", ".tgz", ".tar.zst"]
            .iter()
            .any(|e| lower.ends_with(e))
            .then_some(Content::Archive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &[u8]) -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn resolved(spec: &str, forced: Option<TargetType>) -> Result<Resolution, TargetError> {
        resolve(spec, forced, None, || -> Option<String> {
            panic!("stdin is not asked for {spec}")
        })
    }

    #[test]
    fn dockerfiles_by_their_first_instruction() {
        assert!(is_dockerfile(
            "# syntax=docker/dockerfile:1\n# escape=`\n\nFROM alpine\n"
        ));
        assert!(is_dockerfile(
            "\u{feff}from --platform=$BUILDPLATFORM golang:1.22 AS build\n"
        ));
        assert!(is_dockerfile("ARG BASE=debian:12\nFROM ${BASE}\n"));
        assert!(is_dockerfile("ARG A B=1\n"));
        assert!(is_dockerfile("FROM \\\n  alpine\n"));
        assert!(!is_dockerfile("from os import path\n"), "Python");
        assert!(!is_dockerfile("from: somewhere\n"), "YAML");
        assert!(
            !is_dockerfile("RUN echo\nFROM alpine\n"),
            "FROM must come first"
        );
        assert!(!is_dockerfile("ARG 1x=2\n"));
        assert!(!is_dockerfile("# only a comment\n"));
        assert!(!is_dockerfile(""));
    }

    #[test]
    fn yaml_kinds_by_their_keys() {
        let compose = "x-common: &c {restart: always}\nservices:\n  web: {image: nginx}\n";
        assert_eq!(sniff_yaml(compose), Some(Content::Compose));
        assert_eq!(
            sniff_yaml(r#"{"services": {"db": {"image": "postgres"}}}"#),
            Some(Content::Compose)
        );
        let k8s = "# a comment\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n";
        assert_eq!(
            sniff_yaml(k8s),
            Some(Content::K8s),
            "any object, not only workloads"
        );
        assert_eq!(
            sniff_yaml(r#"{"apiVersion": "apps/v1", "kind": "Deployment"}"#),
            Some(Content::K8s)
        );
        assert_eq!(sniff_yaml("name: CI\non: push\njobs: {}\n"), None);
        assert_eq!(sniff_yaml("- services\n- x\n"), None);
        assert_eq!(sniff_yaml("services: [\n"), None, "invalid YAML");
    }

    #[test]
    fn archives_by_their_magic() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(0);
        h.set_cksum();
        b.append_data(&mut h, "manifest.json", &[][..]).unwrap();
        assert!(is_archive(&b.into_inner().unwrap()));
        assert!(is_archive(&[0x1f, 0x8b, 8, 0]));
        assert!(is_archive(&[0x28, 0xb5, 0x2f, 0xfd, 0]));
        assert!(!is_archive(b"FROM alpine\n"));
    }

    #[test]
    fn path_spellings_and_digests() {
        for p in [
            "./app",
            "/srv/x",
            "../x",
            "~/app.tar",
            "app.tar",
            "x.TGZ",
            "deploy.json",
            "stack.yml",
            "Dockerfile",
            "build/Containerfile.prod",
            "docker-compose.yaml",
            "src/nosuch",
        ] {
            assert!(spelled_as_path(p), "{p}");
        }
        for p in [
            "busybox",
            "app:1.0",
            "registry.example/app:1.0",
            "nosuchdir/app",
        ] {
            assert!(!spelled_as_path(p), "{p}");
        }
        assert!(is_digest("sha256:abc"));
        assert!(is_digest(&"a".repeat(64)));
        assert!(is_digest("0123456789ab"));
        assert!(!is_digest("cafe"), "short hex words are names");
        assert!(!is_digest("sha256:xyz"));
        assert!(!is_digest(&"a".repeat(65)));
    }

    #[test]
    fn files_are_recognised_by_content_then_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let stack = write(d, "my-stack.yml", b"services:\n  web:\n    image: nginx\n");
        assert_eq!(
            resolved(&stack, None).unwrap().target,
            Target::Compose(stack.clone().into())
        );
        let df = write(d, "build.docker", b"# syntax=x\nFROM alpine\n");
        let r = resolved(&df, None).unwrap();
        assert_eq!(r.target, Target::Dockerfile(df.clone().into()));
        assert_eq!(r.how, "a Dockerfile, by its content");
        let bad = write(d, "Containerfile.prod", b"RUN nothing first\n");
        let r = resolved(&bad, None).unwrap();
        assert_eq!(r.target, Target::Dockerfile(bad.clone().into()));
        assert_eq!(r.how, "a Dockerfile, by its name");
        let manifest = write(d, "deploy.json", br#"{"apiVersion":"v1","kind":"Pod"}"#);
        assert_eq!(
            resolved(&manifest, None).unwrap().target,
            Target::K8s(manifest.clone().into())
        );
        let notes = write(d, "notes.txt", b"hello\n");
        assert_eq!(
            resolved(&notes, None).unwrap_err().to_string(),
            format!(
                "{notes}: not a Dockerfile, compose file, Kubernetes manifest or image archive"
            )
        );
        // YAML too deep to read is said to be that, not "nothing".
        let deep = format!("services:\n  a:\n    labels: {}\n", "[".repeat(100_000));
        let deep = write(d, "stack.yml", deep.as_bytes());
        let e = resolved(&deep, None).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{deep}: not a Dockerfile, compose file, Kubernetes manifest or image archive \
                 (invalid YAML at 3:"
            )) && e.ends_with("recursion limit exceeded)"),
            "{e}"
        );
        let binary = write(d, "blob.bin", b"\0\x01\x02");
        assert!(matches!(
            resolved(&binary, None),
            Err(TargetError::Unrecognised(_, None))
        ));
    }

    #[test]
    fn directories_and_archives_with_refs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ctx = d.join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        let spec = ctx.display().to_string();
        assert_eq!(
            resolved(&spec, None).unwrap().target,
            Target::Context(ctx.clone())
        );
        write(d, "layout-oci", b"");
        let layout = d.join("layout");
        std::fs::create_dir(&layout).unwrap();
        write(&layout, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        let spec = format!("{}:v2", layout.display());
        assert_eq!(
            resolved(&spec, None).unwrap().target,
            Target::Layout {
                dir: layout.clone(),
                reference: Some("v2".into())
            }
        );
        let tarball = write(d, "app.tar", &[0x1f, 0x8b, 8, 0]);
        let spec = format!("{tarball}:app:1.0");
        assert_eq!(
            resolved(&spec, None).unwrap().target,
            Target::Archive(spec.clone())
        );
        // A plain directory named like an image is not a path to it.
        let spec = format!("{}:1.0", ctx.display());
        assert!(matches!(
            resolved(&spec, None),
            Err(TargetError::NoSuchPath(..))
        ));
    }

    #[test]
    fn nothing_spelled_as_a_path_or_digest_is_ever_pulled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let missing = dir.path().join("app.tar").display().to_string();
        for spec in [missing.as_str(), "./app.tar", "stack.yaml", "Dockerfile"] {
            let err = resolve(spec, None, Some(&store), || None).unwrap_err();
            assert!(matches!(err, TargetError::NoSuchPath(..)), "{spec}: {err}");
        }
        for spec in ["sha256:0123abcd", "0123456789abcdef"] {
            let err = resolve(spec, None, Some(&store), || None).unwrap_err();
            assert_eq!(err, TargetError::UnknownDigest(spec.into()));
        }
        let r = resolve("app:1.0", None, Some(&store), || None).unwrap();
        assert_eq!(r.target, Target::Remote("app:1.0".into()));
        let err = resolve("Not A Ref", None, Some(&store), || None).unwrap_err();
        assert!(matches!(err, TargetError::NotReference(..)), "{err}");
    }

    #[test]
    fn type_forces_the_kind_and_checks_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let yaml = write(d, "x.yaml", b"services: {}\n");
        let forced = |spec: &str, kind| resolved(spec, Some(kind));
        assert_eq!(
            forced(&yaml, TargetType::K8s).unwrap().target,
            Target::K8s(yaml.clone().into())
        );
        assert_eq!(forced(&yaml, TargetType::K8s).unwrap().how, "--type k8s");
        assert!(matches!(
            forced(&yaml, TargetType::Dir),
            Err(TargetError::WrongType { .. })
        ));
        assert!(matches!(
            forced(&yaml, TargetType::Layout),
            Err(TargetError::WrongType { .. })
        ));
        let spec = d.display().to_string();
        assert!(matches!(
            forced(&spec, TargetType::Dockerfile),
            Err(TargetError::WrongType { .. })
        ));
        assert_eq!(
            forced(&spec, TargetType::Dir).unwrap().target,
            Target::Context(d.into())
        );
        let gone = d.join("gone").display().to_string();
        assert_eq!(
            forced(&gone, TargetType::Compose).unwrap_err(),
            TargetError::Missing(gone.clone())
        );
        assert_eq!(
            forced("-", TargetType::K8s).unwrap().target,
            Target::K8sStdin
        );
        assert_eq!(
            forced("-", TargetType::Dockerfile).unwrap().target,
            Target::DockerfileStdin
        );
        assert_eq!(
            forced("-", TargetType::Archive).unwrap().target,
            Target::Archive("-".into())
        );
        assert!(matches!(
            forced("./app", TargetType::Image),
            Err(TargetError::WrongType { .. })
        ));
        assert_eq!(
            forced("app:1.0", TargetType::Image).unwrap().target,
            Target::Remote("app:1.0".into())
        );
    }

    #[test]
    fn stdin_is_told_by_its_first_bytes() {
        assert_eq!(
            resolve("-", None, None, || Some(
                "apiVersion: v1\nkind: Pod\n".into()
            ))
            .unwrap()
            .target,
            Target::K8sStdin
        );
        assert_eq!(
            resolve("-", None, None, || Some(
                "# syntax=docker/dockerfile:1\nFROM a\n".into()
            ))
            .unwrap()
            .target,
            Target::DockerfileStdin
        );
        assert_eq!(
            resolve("-", None, None, || None).unwrap().target,
            Target::Archive("-".into())
        );
    }
}
