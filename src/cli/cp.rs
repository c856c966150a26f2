//! `rsafe cp`: copy files between a container (running or stopped) and the host, as `docker cp`
//! does
//! (see [`crate::runtime::copy`] for how neither side follows a symlink out).
#![forbid(unsafe_code)]

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::Global;
use crate::runtime::copy;
use crate::runtime::state;

/// Copy files between a container (running or stopped) and the host
///
/// One of SRC and DEST is CONTAINER:PATH, the other a host path. SRC is a file, a symlink
/// (copied as a symlink) or a directory (copied whole; `DIR/.` copies its contents). DEST, if
/// it is an existing directory, receives the copy under SRC's name; otherwise it is the
/// copy's name. Paths in the container are resolved inside its root: a symlink in it never
/// leads out. Files written in the container belong to its root user. As with docker, `-` as
/// DEST writes the copy to stdout as a tar stream, and `-` as SRC extracts a tar stream from
/// stdin into the directory CONTAINER:PATH.
#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// CONTAINER:PATH or a host path.
    #[arg(value_name = "SRC")]
    pub src: String,
    /// CONTAINER:PATH or a host path.
    #[arg(value_name = "DEST")]
    pub dest: String,
}

pub fn run(args: CpArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    match (container_path(&args.src), container_path(&args.dest)) {
        (Some((name, src)), None) if args.dest == "-" => {
            let (dir, st) = state::find(store.root(), name)?;
            let staging = staging()?;
            copy::copy_out((&dir, &st), name, src, staging.path())
                .with_context(|| format!("cannot copy {} to stdout", args.src))?;
            write_tar(staging.path(), std::io::stdout().lock())
                .with_context(|| format!("cannot copy {} to stdout", args.src))?;
        }
        (None, Some((name, dest))) if args.src == "-" => {
            let (dir, st) = state::find(store.root(), name)?;
            let staging = staging()?;
            let mut archive = tar::Archive::new(std::io::stdin().lock());
            archive.set_preserve_permissions(true);
            // Entries that climb out (`..`, absolute links) are skipped by the tar crate.
            archive
                .unpack(staging.path())
                .context("cannot read the tar stream on stdin")?;
            copy::copy_in((&dir, &st), name, &staging.path().join("."), dest)
                .with_context(|| format!("cannot copy stdin to {}", args.dest))?;
        }
        (Some((name, src)), None) => {
            let (dir, st) = state::find(store.root(), name)?;
            copy::copy_out((&dir, &st), name, src, Path::new(&args.dest))
                .with_context(|| format!("cannot copy {} to {}", args.src, args.dest))?;
        }
        (None, Some((name, dest))) => {
            let (dir, st) = state::find(store.root(), name)?;
            copy::copy_in((&dir, &st), name, Path::new(&args.src), dest)
                .with_context(|| format!("cannot copy {} to {}", args.src, args.dest))?;
        }
        (Some(_), Some(_)) => {
            bail!("copying between containers is not supported: one side must be a host path")
        }
        (None, None) => bail!("one of SRC and DEST must be CONTAINER:PATH"),
    }
    Ok(0)
}

/// A private directory (mode 0700) for a tar stream's files on their way, removed when
/// dropped: the same copy code then serves `-` as it serves a host path.
fn staging() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(".rsafe-cp-")
        .tempdir()
        .context("cannot make a staging directory for the tar stream")
}

/// The entries of `dir` (the copy under its own name, or a directory's contents) as a tar
/// stream on `out`, symlinks as symlinks.
fn write_tar(dir: &Path, out: impl std::io::Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let (path, name) = (entry.path(), entry.file_name());
        if entry.file_type()?.is_dir() {
            tar.append_dir_all(&name, &path)?;
        } else {
            tar.append_path_with_name(&path, &name)?;
        }
    }
    tar.into_inner()?.flush()?;
    Ok(())
}

/// `NAME:/path` → (`NAME`, `/path`): a colon before any slash, as docker tells a container
/// path from a host one (`./a:b` is a host file).
fn container_path(arg: &str) -> Option<(&str, &str)> {
    let (name, path) = arg.split_once(':')?;
    (!name.is_empty() && !name.contains('/')).then_some((name, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_as_docker_tells_them() {
        assert_eq!(
            container_path("web:/etc/hosts"),
            Some(("web", "/etc/hosts"))
        );
        assert_eq!(container_path("web:rel"), Some(("web", "rel")));
        assert_eq!(container_path("./a:b"), None);
        assert_eq!(container_path("/tmp/x"), None);
        assert_eq!(container_path(":x"), None);
    }
}
