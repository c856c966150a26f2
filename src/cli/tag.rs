//! `rsafe tag`: give an image in the store another name, as `docker tag` and `podman tag` do.

use anyhow::{Result, anyhow};

use super::Global;
use crate::image::Reference;
use crate::image::lookup::find;

/// Give an image another name
///
/// SOURCE is a name, a digest or a digest prefix, as `rmi` and `run` take it. TARGET is a
/// reference, normalized as `pull` normalizes names (`docker.io/library/` is the default
/// repository, `:latest` the default tag). A TARGET that already names an image is moved to
/// SOURCE's (as docker does); the old image keeps its other names, and one left with none is
/// collected by the next `rmi`. A bad TARGET or an unknown SOURCE is one line, exit code 1 (as
/// `rmi`'s and docker's).
#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// The image to name: a name, a digest or a digest prefix.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The new name: `[host[:port]/]repository[:tag]`.
    #[arg(value_name = "TARGET")]
    pub target: String,
}

/// Points TARGET at SOURCE's image, under the store's lock.
pub fn run(args: TagArgs, global: &Global) -> Result<i32> {
    let target = target_name(&args.target)?;
    let store = global.store()?;
    let found = find(&store, &args.source)?;
    store.tag(&target, &found.descriptor)?;
    if global.verbose {
        eprintln!("{target} -> {}", found.digest);
    }
    Ok(0)
}

/// The store name for TARGET, or why it cannot be one: it must parse as a reference, carry no
/// digest (a digest names content, not a tag), and not have a repository of 64 hex digits
/// (docker refuses those: it would read as an image id).
fn target_name(target: &str) -> Result<String> {
    let reference: Reference = target.parse().map_err(|e| anyhow!("target {e}"))?;
    if reference.digest.is_some() {
        return Err(anyhow!(
            "target {target:?}: a tag cannot carry a digest (refusing to create a tag with a digest reference)"
        ));
    }
    let last = reference.repository.rsplit('/').next().unwrap_or("");
    if last.len() == 64 && last.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(anyhow!(
            "target {target:?}: a repository name of 64 hex digits would read as an image id"
        ));
    }
    Ok(reference.store_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_normalized_as_pull_names_them() {
        assert_eq!(target_name("app").unwrap(), "app:latest");
        assert_eq!(target_name("docker.io/library/app:1").unwrap(), "app:1");
        assert_eq!(target_name("docker.io/me/app").unwrap(), "me/app:latest");
        assert_eq!(
            target_name("localhost:5000/app:v2").unwrap(),
            "localhost:5000/app:v2"
        );
    }

    #[test]
    fn bad_targets_are_refused_in_one_line() {
        let hex = "a".repeat(64);
        let digest = format!("app@sha256:{hex}");
        for bad in ["", "App:1", "app:-x", "app:", &digest, &hex] {
            let err = target_name(bad).unwrap_err().to_string();
            assert!(
                !err.contains('\n') && err.contains("target"),
                "{bad}: {err}"
            );
        }
    }
}
