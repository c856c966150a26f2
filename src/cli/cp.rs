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
/// leads out. Files written in the container belong to its root user.
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
