//! `rsafe rmi`: remove images from the store, then collect the blobs nothing uses any more.

use std::collections::BTreeSet;

use anyhow::{Result, anyhow};

use super::{Global, one_line};
use crate::image::Digest;
use crate::image::lookup::{Matched, find};
use crate::image::unpack::LayerCache;
use crate::runtime::idmap::IdMap;
use crate::runtime::state::remove_tree_as;

/// Remove images, and the blobs no other image uses
///
/// IMAGE is a name, a digest or a digest prefix. Prints `Untagged:` for each name removed and
/// `Deleted:` for each blob removed from disk. Removing by name drops only that name: the image stays while another name points at it.
/// Removing by digest drops every name of that image, which needs `--force` when it has more
/// than one. Extracted layers a container runs on (running or stopped: `rsafe start` needs
/// them) stay until the next `rmi` after that container is removed.
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
    let mut code = 0;
    let mut removed_any = false;
    for input in &args.images {
        match remove(&store, input, args.force) {
            Ok(names) => {
                removed_any = true;
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
    if removed_any {
        for digest in store.gc()?.removed {
            println!("Deleted: {digest}");
        }
        // Extracted layers no remaining image and no container uses go with their blobs.
        let stats = LayerCache::gc(&store, &layers_in_use(&store)?)?;
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
    }
    Ok(code)
}

/// The cached layers containers run on, running or stopped (`rsafe start` needs them again).
fn layers_in_use(store: &crate::image::Store) -> Result<BTreeSet<Digest>> {
    let mut in_use = BTreeSet::new();
    // A dead `--rm` container is removed, as its rsafe would have done, before its layers
    // count as in use.
    crate::runtime::state::sweep(store.root())?;
    for (_, state) in crate::runtime::state::list(store.root())? {
        in_use.extend(
            state
                .layers
                .iter()
                .filter_map(|l| LayerCache::diff_id_of(l)),
        );
    }
    Ok(in_use)
}

/// Removes what `input` names; returns the names that were removed.
fn remove(store: &crate::image::Store, input: &str, force: bool) -> Result<Vec<String>> {
    let found = find(store, input)?;
    match found.matched {
        Matched::Name(name) => {
            store.untag(&name)?;
            Ok(vec![name])
        }
        Matched::Digest => {
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
