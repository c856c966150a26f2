//! `rsafe rmi`: remove images from the store, then collect the blobs nothing uses any more.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Result, anyhow};

use super::{Global, one_line};
use crate::image::lookup::{Found, Matched, find};
use crate::image::unpack::LayerCache;
use crate::image::{Digest, Image, Platform, Store};
use crate::runtime::idmap::IdMap;
use crate::runtime::state::{State, remove_tree_as};

/// Remove images, and the blobs no other image uses
///
/// IMAGE is a name, a digest or a digest prefix. Prints `Untagged:` for each name removed and
/// `Deleted:` for each blob removed from disk. Removing by name drops only that name: the image stays while another name points at it.
/// Removing by digest drops every name of that image, which needs `--force` when it has more
/// than one. As in docker, an image a container (running or stopped) uses is refused: its
/// last name without `--force`, its digest without `--force` when the container is stopped
/// and even with it when the container runs. Extracted layers a container runs on stay until
/// the next `rmi` after that container is removed.
#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    /// Names, digests or digest prefixes.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Remove an image given by digest even when several names point at it.
    #[arg(long, short)]
    pub force: bool,
}

/// Removes each image in turn; one that cannot be removed is reported and the rest still go
/// (exit code 1 then).
pub fn run(args: RmiArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    // A dead `--rm` container is removed, as its rsafe would have done, before it counts.
    crate::runtime::state::sweep(store.root())?;
    let containers: Vec<State> = crate::runtime::state::list(store.root())?
        .into_iter()
        .map(|(_, state)| state)
        .collect();
    let mut code = 0;
    for input in &args.images {
        match remove(&store, input, args.force, &containers) {
            Ok(names) => {
                for name in names {
                    println!("Untagged: {name}");
                }
            }
            Err(err) => {
                eprintln!("rsafe: {}", one_line(&err));
                code = 1;
            }
        }
    }
    // Collected even when nothing was removed now: an `rmi` killed between its untagging and
    // this gc left blobs and layers no image names, and running it again must finish the job
    // (its images are gone by then, so it removes nothing).
    for digest in store.gc()?.removed {
        println!("Deleted: {digest}");
    }
    // Extracted layers no remaining image and no container uses go with their blobs.
    let stats = LayerCache::gc(&store, &layers_in_use(&containers))?;
    // Those a rootless container's root extracted (owned by subordinate ids) go as that
    // root, in a user namespace with the same map.
    if !stats.denied.is_empty() {
        let idmap = IdMap::for_this_process();
        for path in &stats.denied {
            if let Err(e) = remove_tree_as(path, &idmap) {
                eprintln!(
                    "rsafe: cannot remove the extracted layer {}: {e}",
                    path.display()
                );
                code = 1;
            }
        }
    }
    Ok(code)
}

/// The cached layers containers run on, running or stopped (`rsafe start` needs them again).
fn layers_in_use(containers: &[State]) -> BTreeSet<Digest> {
    containers
        .iter()
        .flat_map(|state| state.layers.iter())
        .filter_map(|l| LayerCache::diff_id_of(l))
        .collect()
}

/// The first container that uses the image `found` names, running ones first: one run from a
/// name or digest that still leads to it, or, when what it was run from leads nowhere any more
/// (the name was removed with `--force`), one whose layers are that image's.
pub(crate) fn user_of<'a>(
    store: &Store,
    found: &Found,
    containers: &'a [State],
) -> Option<&'a State> {
    let diff_ids: Vec<String> = Image::from_descriptor(store, &found.descriptor, &Platform::host())
        .map(|image| image.config.rootfs().diff_ids().clone())
        .unwrap_or_default();
    let uses = |state: &&State| match find(store, &state.image) {
        Ok(ran) => ran.digest == found.digest,
        Err(_) => runs_on(&state.layers, &diff_ids),
    };
    let mut users: Vec<&State> = containers.iter().filter(uses).collect();
    users.sort_by_key(|s| !s.is_alive());
    users.first().copied()
}

/// Whether a container's layer directories are an image's (`diff_ids`, bottom first): the
/// same top layer, and nothing the image lacks (the cache may drop layers an upper one hides).
fn runs_on(layers: &[PathBuf], diff_ids: &[String]) -> bool {
    let ids: Vec<String> = layers
        .iter()
        .filter_map(|l| LayerCache::diff_id_of(l).map(|d| d.to_string()))
        .collect();
    !ids.is_empty()
        && ids.len() == layers.len()
        && ids.last() == diff_ids.last()
        && ids.iter().all(|id| diff_ids.contains(id))
}

/// How `rmi` names a container: its name and short id.
fn container_label(state: &State) -> String {
    let id: String = state.id.chars().take(12).collect();
    let status = if state.is_alive() {
        "running"
    } else {
        "stopped"
    };
    match &state.name {
        Some(name) => format!("{status} container {name} ({id})"),
        None => format!("{status} container {id}"),
    }
}

/// Removes what `input` names; returns the names that were removed. Refuses, as docker does,
/// to remove an image's last name while a container uses it (unless `force`), and its digest
/// while a container uses it (unless `force` and the container is stopped).
fn remove(store: &Store, input: &str, force: bool, containers: &[State]) -> Result<Vec<String>> {
    let found = find(store, input)?;
    let user = user_of(store, &found, containers);
    match found.matched {
        Matched::Name(name) => {
            if let Some(user) = user.filter(|_| !force && found.names.len() == 1) {
                return Err(anyhow!(
                    "conflict: unable to remove {name} (must force): the {} uses it; use --force to remove the name (the container keeps its layers)",
                    container_label(user)
                ));
            }
            store.untag(&name)?;
            Ok(vec![name])
        }
        Matched::Digest => {
            if let Some(user) = user {
                let running = user.is_alive();
                if running || !force {
                    return Err(anyhow!(
                        "conflict: unable to delete {} ({}): image is being used by {}",
                        found.digest,
                        if running {
                            "cannot be forced"
                        } else {
                            "must be forced"
                        },
                        container_label(user)
                    ));
                }
            }
            if found.names.len() > 1 && !force {
                return Err(anyhow!(
                    "image {} has {} names ({}); remove them by name, or use --force",
                    found.digest,
                    found.names.len(),
                    found.names.join(", ")
                ));
            }
            store.remove_digest(&found.digest)?;
            Ok(found.names)
        }
    }
}
