//! `rsafe diff`: the files a container added, changed and deleted, as `docker diff` and
//! `podman diff` list them (see [`crate::runtime::diff`]).
#![forbid(unsafe_code)]

use std::io::Write;

use anyhow::{Context, Result, bail};

use super::Global;
use crate::runtime::diff::{self, Change, ChangeKind};
use crate::runtime::layered::Source;
use crate::runtime::state::{self, ContainerDir, State};

/// Inspect changes to files or directories on a container's filesystem
///
/// One line per changed path, sorted by path: `A` added, `C` changed, `D` deleted, as docker
/// prints them. Running and stopped containers alike, read from the container's writable
/// layer against its image's layers.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The container's name or id (a unique prefix of the id is enough).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// `json`: `{"changed": [...], "added": [...], "deleted": [...]}`, as `podman diff
    /// --format json` prints it.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

pub fn run(args: DiffArgs, global: &Global) -> Result<i32> {
    let json = match args.format.as_deref() {
        None | Some("table") => false,
        Some("json") => true,
        Some(other) => bail!("--format {other:?}: use json (or leave it out for A/C/D lines)"),
    };
    let store = global.store()?;
    let (dir, st) = state::find(store.root(), &args.container)?;
    let source = source(&dir, &st, &args.container)?;
    let mount_points = mount_points(&dir, &st);
    let changes = source
        .read(|s| {
            let (upper, lower) = (s.upper_stack(), s.lower_stack());
            let (upper, lower) = (upper.map_err(err)?, lower.map_err(err)?);
            diff::changes(&upper, &lower, &mount_points).map_err(err)
        })
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("cannot read the layers of container {}", args.container))?;
    let mut out = std::io::stdout().lock();
    match json {
        true => writeln!(out, "{}", as_json(&changes))?,
        false => {
            for c in &changes {
                writeln!(out, "{} {}", c.kind.letter(), c.path)?;
            }
        }
    }
    Ok(0)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The container's layers: its writable layer over the image's (as recorded when it ran, or
/// in its saved spec for a container recorded before `layers` was).
pub(crate) fn source(dir: &ContainerDir, st: &State, name: &str) -> Result<Source> {
    if let Some(why) = &st.damaged {
        bail!("container {name} has no usable state ({why}): rsafe rm it");
    }
    let lowers = match st.layers.is_empty() {
        false => st.layers.clone(),
        true => dir.load_spec(name)?.rootfs.lowers,
    };
    Ok(Source::new(dir.upper(), &lowers, &st.idmap))
}

/// Where rsafe mounted things for the container (`-v`, `--tmpfs`): empty stubs it made there
/// are not the workload's.
fn mount_points(dir: &ContainerDir, st: &State) -> Vec<String> {
    let name = st.name.as_deref().unwrap_or(&st.id);
    dir.load_spec(name)
        .map(|spec| spec.mounts.iter().map(|m| m.target().to_string()).collect())
        .unwrap_or_default()
}

/// podman's shape: the paths of each kind, in order, empty kinds left out.
fn as_json(changes: &[Change]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (key, kind) in [
        ("changed", ChangeKind::Changed),
        ("added", ChangeKind::Added),
        ("deleted", ChangeKind::Deleted),
    ] {
        let paths: Vec<&str> = changes
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.path.as_str())
            .collect();
        if !paths.is_empty() {
            out.insert(key.into(), paths.into());
        }
    }
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_as_podman_prints_it() {
        let c = |kind, path: &str| Change {
            kind,
            path: path.into(),
        };
        let v = as_json(&[
            c(ChangeKind::Changed, "/etc"),
            c(ChangeKind::Added, "/etc/new"),
            c(ChangeKind::Changed, "/etc/passwd"),
        ]);
        assert_eq!(
            v,
            serde_json::json!({"changed": ["/etc", "/etc/passwd"], "added": ["/etc/new"]})
        );
    }
}
