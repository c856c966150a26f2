//! `rsafe system prune` and `rsafe system df`: everything unused removed in one go, and what
//! the store holds with how much of it a prune would give back, in docker's shapes.
//!
//! df and prune count alike: a container's bytes are its directory's files (writable layer,
//! log, state) as `runtime::prune` counts them, the images' are their blob files, the build
//! cache's the extracted layers' files (rsafe's equivalent of docker's build cache: layers
//! unpacked for `run`, rebuilt from the blobs when needed). The RECLAIMABLE column is what the
//! prune of that row (`-a` for images and volumes) reclaims, as its `Total reclaimed space:`.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;

use anyhow::{Result, anyhow};

use super::Global;
use super::format::{human_size, table};
use super::prune::{self, cancelled, confirm, containers_of, image_digests, print_section};
use crate::image::unpack::{CacheEntry, LayerCache};
use crate::image::{Digest, Store};
use crate::runtime::idmap::IdMap;
use crate::runtime::prune::{self as lib, ContainerUsage, VolumeUsage};
use crate::runtime::state::{Phase, State, remove_tree_as};

/// Manage the store as a whole: prune everything unused, see what it takes up
#[derive(Debug, clap::Args)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub command: SystemCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SystemCommand {
    Prune(SystemPruneArgs),
    Df(DfArgs),
    Restart(super::system_restart::SystemRestartArgs),
}

/// Remove unused data
///
/// All stopped containers, the networks no running container is on, dangling images (-a:
/// every image no container uses) and the extracted layers no image and no container needs
/// (rsafe's build cache); with --volumes the unused anonymous volumes (`rsafe volume prune -a`
/// removes named ones).
#[derive(Debug, clap::Args)]
pub struct SystemPruneArgs {
    /// Every image no container uses, not only dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Prune unused anonymous volumes too.
    #[arg(long)]
    pub volumes: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Show the store's disk usage
///
/// TYPE TOTAL ACTIVE SIZE RECLAIMABLE for images, containers, local volumes and the build
/// cache (extracted layers); with the global -v, each item too.
#[derive(Debug, clap::Args)]
pub struct DfArgs {}

/// Runs `rsafe system …`.
pub fn run(args: SystemArgs, global: &Global) -> Result<i32> {
    match args.command {
        SystemCommand::Prune(args) => system_prune(args, global),
        SystemCommand::Df(_) => df(global),
        SystemCommand::Restart(args) => super::system_restart::run(args, global),
    }
}

/// docker's warning: what `system prune` with these flags removes.
fn warning(args: &SystemPruneArgs) -> String {
    let mut lines = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if args.volumes {
        lines.push("all anonymous volumes not used by at least one container");
    }
    lines.push(match args.all {
        true => "all images without at least one container associated to them",
        false => "all dangling images",
    });
    lines.push("unused build cache");
    let mut text = "This will remove:".to_string();
    for line in lines {
        text.push_str("\n  - ");
        text.push_str(line);
    }
    text.push('\n');
    text
}

fn system_prune(args: SystemPruneArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    if !confirm(&warning(&args), args.force, "system prune")? {
        return Err(cancelled("system prune"));
    }
    let mut failed = Vec::new();
    let containers = prune::prune_containers(&store, None)?;
    failed.extend(containers.failed.iter().cloned());
    let ids: Vec<String> = containers.removed.iter().map(|r| r.name.clone()).collect();
    print_section("Deleted Containers:", &ids);
    let (networks, net_failed) = prune::prune_networks(&store)?;
    failed.extend(net_failed);
    print_section("Deleted Networks:", &networks);
    let mut bytes = containers.bytes();
    if args.volumes {
        let volumes = prune::prune_volumes(&store, false)?;
        let names: Vec<String> = volumes.removed.iter().map(|r| r.name.clone()).collect();
        print_section("Deleted Volumes:", &names);
        failed.extend(volumes.failed.iter().cloned());
        bytes += volumes.bytes();
    }
    let images = prune::prune_images(&store, args.all)?;
    print_section("Deleted Images:", &images.lines);
    bytes += images.bytes;
    let (cache_ids, cache_bytes) = prune_build_cache(&store, &mut failed)?;
    print_section("Deleted build cache objects:", &cache_ids);
    bytes += cache_bytes;
    println!("Total reclaimed space: {}", human_size(bytes));
    Ok(prune::report_failures(&failed))
}

/// Removes the extracted layers no image and no container needs (and what interrupted
/// extractions left); returns their diff_ids and bytes. Those a rootless container's root
/// extracted go as that root, as `rmi` removes them.
fn prune_build_cache(store: &Store, failed: &mut Vec<String>) -> Result<(Vec<String>, u64)> {
    let in_use = lib::layers_in_use(store.root())?;
    let unneeded: Vec<String> = LayerCache::usage(store, &in_use)?
        .into_iter()
        .filter(|e| !e.needed)
        .map(|e| e.diff_id.to_string())
        .collect();
    let stats = LayerCache::gc(store, &in_use)?;
    if !stats.denied.is_empty() {
        let idmap = IdMap::for_this_process();
        for path in &stats.denied {
            if let Err(e) = remove_tree_as(path, &idmap) {
                failed.push(format!(
                    "cannot remove the extracted layer {}: {e}",
                    path.display()
                ));
            }
        }
    }
    Ok((unneeded, stats.bytes))
}

/// One row of `system df`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    kind: &'static str,
    total: usize,
    active: usize,
    size: u64,
    reclaimable: u64,
}

impl Row {
    /// The cells: reclaimable with its share of the size, as docker prints it (`212B (100%)`).
    fn cells(&self) -> Vec<String> {
        let share = match self.size {
            0 => String::new(),
            size => format!(" ({}%)", self.reclaimable * 100 / size),
        };
        vec![
            self.kind.to_string(),
            self.total.to_string(),
            self.active.to_string(),
            human_size(self.size),
            format!("{}{share}", human_size(self.reclaimable)),
        ]
    }
}

/// An image as df weighs it.
struct ImageUsage {
    digest: Digest,
    names: Vec<String>,
    /// Bytes of the blobs it reaches (shared ones counted in each image).
    bytes: u64,
    containers: usize,
}

/// What `system df` reports, gathered once.
struct Usage {
    images: Vec<ImageUsage>,
    /// Bytes of every blob file in the store.
    blob_bytes: u64,
    /// Bytes of the blobs that the images containers use reach: what `image prune -a` keeps.
    kept_blob_bytes: u64,
    containers: Vec<ContainerUsage>,
    volumes: Vec<VolumeUsage>,
    cache: Vec<CacheEntry>,
}

fn gather(store: &Store) -> Result<Usage> {
    let states = containers_of(store)?;
    let sizes: std::collections::BTreeMap<Digest, u64> = store.blob_sizes()?.into_iter().collect();
    let bytes_of =
        |blobs: &BTreeSet<Digest>| -> u64 { blobs.iter().filter_map(|d| sizes.get(d)).sum() };
    let entries = store.entries()?;
    let mut images = Vec::new();
    let mut used_roots = Vec::new();
    for digest in image_digests(store)? {
        let found = crate::image::lookup::find(store, &digest.to_string())?;
        let users = users_of(store, &found, &states);
        let roots: Vec<_> = entries
            .iter()
            .filter(|(_, d)| d.digest() == found.descriptor.digest())
            .map(|(_, d)| d.clone())
            .take(1)
            .collect();
        if users > 0 {
            used_roots.extend(roots.iter().cloned());
        }
        images.push(ImageUsage {
            bytes: bytes_of(&store.reachable_from(roots)?.blobs),
            names: found.names,
            containers: users,
            digest,
        });
    }
    let kept_blob_bytes = bytes_of(&store.reachable_from(used_roots)?.blobs);
    let in_use = lib::layers_in_use(store.root())?;
    Ok(Usage {
        images,
        blob_bytes: sizes.values().sum(),
        kept_blob_bytes,
        containers: lib::container_usage(store.root())?,
        volumes: lib::volume_usage(store.root())?,
        cache: LayerCache::usage(store, &in_use)?,
    })
}

/// How many containers use the image `found` (`rmi`'s rule, one container at a time).
fn users_of(store: &Store, found: &crate::image::lookup::Found, states: &[State]) -> usize {
    states
        .iter()
        .filter(|s| super::rmi::user_of(store, found, std::slice::from_ref(*s)).is_some())
        .count()
}

impl Usage {
    fn rows(&self) -> Vec<Row> {
        let sum = |it: &mut dyn Iterator<Item = u64>| it.sum::<u64>();
        vec![
            Row {
                kind: "Images",
                total: self.images.len(),
                active: self.images.iter().filter(|i| i.containers > 0).count(),
                size: self.blob_bytes,
                reclaimable: self.blob_bytes.saturating_sub(self.kept_blob_bytes),
            },
            Row {
                kind: "Containers",
                total: self.containers.len(),
                active: self.containers.iter().filter(|c| !c.prunable).count(),
                size: sum(&mut self.containers.iter().map(|c| c.bytes)),
                reclaimable: sum(&mut self
                    .containers
                    .iter()
                    .filter(|c| c.prunable)
                    .map(|c| c.bytes)),
            },
            Row {
                kind: "Local Volumes",
                total: self.volumes.len(),
                active: self.volumes.iter().filter(|v| v.links > 0).count(),
                size: sum(&mut self.volumes.iter().map(|v| v.bytes)),
                reclaimable: sum(&mut self
                    .volumes
                    .iter()
                    .filter(|v| v.links == 0)
                    .map(|v| v.bytes)),
            },
            Row {
                kind: "Build Cache",
                total: self.cache.len(),
                active: self.cache.iter().filter(|e| e.needed).count(),
                size: sum(&mut self.cache.iter().map(|e| e.bytes)),
                reclaimable: sum(&mut self.cache.iter().filter(|e| !e.needed).map(|e| e.bytes)),
            },
        ]
    }
}

/// `rsafe system df [-v]`.
fn df(global: &Global) -> Result<i32> {
    let store = global.store()?;
    let usage = gather(&store).map_err(|e| anyhow!("system df: {}", super::one_line(&e)))?;
    let rows: Vec<Vec<String>> = usage.rows().iter().map(Row::cells).collect();
    print!(
        "{}",
        table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows)
    );
    if global.verbose {
        print!("{}", verbose(&usage));
    }
    Ok(0)
}

/// `df -v`'s per-item tables.
fn verbose(usage: &Usage) -> String {
    let images: Vec<Vec<String>> = usage
        .images
        .iter()
        .map(|i| {
            vec![
                if i.names.is_empty() {
                    "<none>".to_string()
                } else {
                    i.names.join(",")
                },
                i.digest.short().to_string(),
                human_size(i.bytes),
                i.containers.to_string(),
            ]
        })
        .collect();
    let containers: Vec<Vec<String>> = usage
        .containers
        .iter()
        .map(|c| {
            vec![
                c.state.short_id().to_string(),
                c.state.image.clone(),
                super::format::truncate(&c.state.command.join(" "), 20),
                human_size(c.bytes),
                phase_text(c.phase),
                c.state.name.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let volumes: Vec<Vec<String>> = usage
        .volumes
        .iter()
        .map(|v| vec![v.name.clone(), v.links.to_string(), human_size(v.bytes)])
        .collect();
    let cache: Vec<Vec<String>> = usage
        .cache
        .iter()
        .map(|e| {
            vec![
                e.diff_id.short().to_string(),
                human_size(e.bytes),
                e.needed.to_string(),
            ]
        })
        .collect();
    format!(
        "\nImages space usage:\n\n{}\nContainers space usage:\n\n{}\nLocal Volumes space usage:\n\n{}\nBuild cache usage: {}\n\n{}",
        table(&["NAME", "IMAGE ID", "SIZE", "CONTAINERS"], &images),
        table(
            &[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "SIZE",
                "STATUS",
                "NAMES"
            ],
            &containers
        ),
        table(&["VOLUME NAME", "LINKS", "SIZE"], &volumes),
        human_size(usage.cache.iter().map(|e| e.bytes).sum()),
        table(&["CACHE ID", "SIZE", "IN USE"], &cache),
    )
}

fn phase_text(phase: Phase) -> String {
    match phase {
        Phase::Up => "Up".into(),
        Phase::Created => "Created".into(),
        Phase::Exited(code) => format!("Exited ({code})"),
        Phase::Dead => "Dead".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_lists_what_the_flags_remove() {
        let args = |all, volumes| SystemPruneArgs {
            all,
            volumes,
            force: false,
        };
        assert_eq!(
            warning(&args(false, false)),
            "This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n"
        );
        let all = warning(&args(true, true));
        assert!(all.contains("  - all anonymous volumes not used by at least one container\n"));
        assert!(all.contains("  - all images without at least one container associated to them\n"));
    }

    #[test]
    fn rows_print_reclaimable_with_its_share() {
        let row = Row {
            kind: "Containers",
            total: 2,
            active: 1,
            size: 4000,
            reclaimable: 1000,
        };
        assert_eq!(row.cells(), ["Containers", "2", "1", "4kB", "1kB (25%)"]);
        let empty = Row {
            kind: "Build Cache",
            total: 0,
            active: 0,
            size: 0,
            reclaimable: 0,
        };
        assert_eq!(empty.cells()[4], "0B");
    }
}
