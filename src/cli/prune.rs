//! `rsafe container prune`, `image prune`, `volume prune` and `network prune`: remove what
//! nothing uses, in docker's words (`WARNING! …`, `Deleted Containers:`, `Total reclaimed
//! space:`). `rsafe system prune` runs them in turn (see `system.rs`).
//!
//! Without `-f` a prune asks on the terminal first. With stdin not a terminal it refuses in one
//! line instead of reading an answer from it (docker reads one, and an empty pipe cancels):
//! a script says `-f`.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};

use super::Global;
use super::format::human_size;
use crate::image::lookup::find;
use crate::image::{Digest, Store};
use crate::runtime::netstore::{HolderRecord, NetworkDef};
use crate::runtime::prune::{self, Report};
use crate::runtime::state::{self, State};
use crate::runtime::{bridge, nat, rootless_net};

/// Manage containers (`rsafe container prune`; the other container commands are top-level)
#[derive(Debug, clap::Args)]
pub struct ContainerArgs {
    #[command(subcommand)]
    pub command: ContainerCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ContainerCommand {
    Prune(ContainerPruneArgs),
}

/// Remove all stopped containers
///
/// Exited, created (never started) and dead ones (their rsafe was killed), with their
/// writable layers. A running container, and one being created or started meanwhile, is never
/// touched.
#[derive(Debug, clap::Args)]
pub struct ContainerPruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// `until=DURATION|TIMESTAMP`: only containers created before then (`24h`, `1h30m`, unix
    /// seconds or RFC 3339), as docker's.
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// Manage images (`rsafe image prune`; the other image commands are top-level)
#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    Prune(ImagePruneArgs),
}

/// Remove unused images
///
/// Dangling images (kept by digest only, no name) that no container uses; with -a every image
/// no container (running or stopped) uses. Then the blobs nothing reaches any more. Extracted
/// layers are the layer cache's: `rsafe system prune` removes those no image needs.
#[derive(Debug, clap::Args)]
pub struct ImagePruneArgs {
    /// Every image no container uses, not only dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Remove unused volumes
///
/// As docker 23+: the anonymous volumes (`-v /dst`, an image's VOLUME) no container (running
/// or stopped) mounts; -a every such volume, named ones (`-v NAME:/dst`) too.
#[derive(Debug, clap::Args)]
pub struct VolumePruneArgs {
    /// Every unused volume, not only anonymous ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Remove all unused networks
///
/// Networks no running container is on (as `network rm` allows), with their bridges and
/// rules, or their rootless holders.
#[derive(Debug, clap::Args)]
pub struct NetworkPruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Asks `WARNING! {warning}` on the terminal unless `force`; refuses without a terminal.
/// `what` (`container prune`) names the command in the refusal.
pub(crate) fn confirm(warning: &str, force: bool, what: &str) -> Result<bool> {
    if force {
        return Ok(true);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("{what}: stdin is not a terminal to confirm on: use -f to remove without asking");
    }
    let mut out = std::io::stdout().lock();
    write!(
        out,
        "WARNING! {warning}\nAre you sure you want to continue? [y/N] "
    )?;
    out.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// The error of a prune whose question was answered no (docker's words).
pub(crate) fn cancelled(what: &str) -> anyhow::Error {
    anyhow!("{what} has been cancelled")
}

/// Prints `{title}` and one line each, then a blank line (nothing when there are none).
pub(crate) fn print_section(title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    println!("{title}");
    for line in lines {
        println!("{line}");
    }
    println!();
}

/// Reports each failure on stderr; the exit code: 1 if any.
pub(crate) fn report_failures(failed: &[String]) -> i32 {
    for line in failed {
        eprintln!("rsafe: {}", super::one_line(&anyhow!("{line}")));
    }
    i32::from(!failed.is_empty())
}

/// `rsafe container prune`.
pub fn containers(args: ContainerPruneArgs, global: &Global) -> Result<i32> {
    let until = until_filter(&args.filter, SystemTime::now())?;
    let store = global.store()?;
    if !confirm(
        "This will remove all stopped containers.",
        args.force,
        "container prune",
    )? {
        return Err(cancelled("container prune"));
    }
    let report = prune_containers(&store, until)?;
    let ids: Vec<String> = report.removed.iter().map(|r| r.name.clone()).collect();
    print_section("Deleted Containers:", &ids);
    println!("Total reclaimed space: {}", human_size(report.bytes()));
    Ok(report_failures(&report.failed))
}

/// Removes the stopped containers, then the address leases killed runs left.
pub(crate) fn prune_containers(store: &Store, until: Option<u64>) -> Result<Report> {
    let report = prune::prune_containers(store.root(), until)?;
    crate::runtime::netstore::NetStore::new(store.root()).reclaim_all()?;
    Ok(report)
}

/// The time `--filter until=…` gives, in seconds since the epoch; other filters are refused.
fn until_filter(filters: &[String], now: SystemTime) -> Result<Option<u64>> {
    let mut until = None;
    for filter in filters {
        let Some((key, value)) = filter.split_once('=') else {
            bail!("--filter {filter:?}: expected KEY=VALUE (until=24h)");
        };
        if key != "until" {
            bail!("--filter {key}: not a filter of rsafe's prune (it takes until=…)");
        }
        until = Some(parse_until(value, now).ok_or_else(|| {
            anyhow!(
                "--filter until={value:?}: not a duration (24h, 1h30m, 90s) nor a time (unix seconds, RFC 3339)"
            )
        })?);
    }
    Ok(until)
}

/// An `until=` value as seconds since the epoch: a time or a duration back from `now`, in the
/// forms `logs --since` takes ([`crate::runtime::clock::parse_instant`], docker's one parser).
fn parse_until(value: &str, now: SystemTime) -> Option<u64> {
    let instant = crate::runtime::clock::parse_instant(value, now).ok()?;
    Some(instant.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

/// `rsafe image prune`.
pub fn images(args: ImagePruneArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let warning = match args.all {
        true => "This will remove all images without at least one container associated to them.",
        false => "This will remove all dangling images.",
    };
    if !confirm(warning, args.force, "image prune")? {
        return Err(cancelled("image prune"));
    }
    let report = prune_images(&store, args.all)?;
    print_section("Deleted Images:", &report.lines);
    println!("Total reclaimed space: {}", human_size(report.bytes));
    Ok(0)
}

/// What an image prune removed: `untagged: NAME` and `deleted: DIGEST` lines, and the bytes
/// of the blobs that went.
pub(crate) struct ImageReport {
    pub lines: Vec<String>,
    pub bytes: u64,
}

/// The containers of the store, running or stopped (a dead `--rm` one swept first).
pub(crate) fn containers_of(store: &Store) -> Result<Vec<State>> {
    state::sweep(store.root())?;
    Ok(state::list(store.root())?
        .into_iter()
        .map(|(_, s)| s)
        .collect())
}

/// The digests of the store's images, each once, in index order.
pub(crate) fn image_digests(store: &Store) -> Result<Vec<Digest>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (_, desc) in store.entries()? {
        let digest = Digest::try_from(desc.digest())?;
        if seen.insert(digest.clone()) {
            out.push(digest);
        }
    }
    Ok(out)
}

/// Removes the dangling images (with `all`, every image) no container uses, then the blobs
/// nothing reaches (also those an earlier killed `rmi` left).
pub(crate) fn prune_images(store: &Store, all: bool) -> Result<ImageReport> {
    let containers = containers_of(store)?;
    let mut lines = Vec::new();
    for digest in image_digests(store)? {
        let found = find(store, &digest.to_string())?;
        if (!all && !found.names.is_empty())
            || super::rmi::user_of(store, &found, &containers).is_some()
        {
            continue;
        }
        for name in &found.names {
            lines.push(format!("untagged: {name}"));
        }
        store.remove_digest(&digest)?;
    }
    let gc = store.gc()?;
    lines.extend(gc.removed.iter().map(|d| format!("deleted: {d}")));
    Ok(ImageReport {
        lines,
        bytes: gc.bytes,
    })
}

/// `rsafe volume prune`.
pub fn volumes(args: VolumePruneArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let warning = match args.all {
        true => "This will remove all local volumes not used by at least one container.",
        false => "This will remove anonymous local volumes not used by at least one container.",
    };
    if !confirm(warning, args.force, "volume prune")? {
        return Err(cancelled("volume prune"));
    }
    let report = prune_volumes(&store, args.all)?;
    let names: Vec<String> = report.removed.iter().map(|r| r.name.clone()).collect();
    print_section("Deleted Volumes:", &names);
    println!("Total reclaimed space: {}", human_size(report.bytes()));
    Ok(report_failures(&report.failed))
}

/// The unused anonymous volumes, and with `all` the unused named ones too (docker 23+'s
/// `volume prune` and `volume prune -a`); a note says how to remove the named ones when a plain
/// prune kept some.
pub(crate) fn prune_volumes(store: &Store, all: bool) -> Result<Report> {
    let report = prune::prune_volumes(store.root(), all)?;
    if all {
        return Ok(report);
    }
    let unused = prune::volume_usage(store.root())?
        .iter()
        .filter(|v| v.links == 0 && !v.anonymous)
        .count();
    if unused > 0 {
        eprintln!("rsafe: note: {unused} unused named volume(s) kept: only -a removes named ones");
    }
    Ok(report)
}

/// `rsafe network prune`.
pub fn networks(args: NetworkPruneArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    if !confirm(
        "This will remove all custom networks not used by at least one container.",
        args.force,
        "network prune",
    )? {
        return Err(cancelled("network prune"));
    }
    let (names, failed) = prune_networks(&store)?;
    print_section("Deleted Networks:", &names);
    Ok(report_failures(&failed))
}

/// Removes the networks no running container is on, with what was made for them; returns
/// their names and what could not be undone.
pub(crate) fn prune_networks(store: &Store) -> Result<(Vec<String>, Vec<String>)> {
    let root = nix::unistd::geteuid().is_root();
    let mut names = Vec::new();
    let mut failed = Vec::new();
    for (def, holder) in prune::prune_networks(store.root())? {
        if let Err(e) = tear_down(&def, holder.as_ref(), root) {
            failed.push(super::one_line(&e));
        }
        names.push(def.name);
    }
    Ok((names, failed))
}

/// What `network rm` removes after the network's record: a rootless network's holder (its
/// bridge, namespaces, rules and slirp4netns go with it), or root's bridge and nft rules.
fn tear_down(def: &NetworkDef, holder: Option<&HolderRecord>, root: bool) -> Result<()> {
    match holder {
        Some(holder) => rootless_net::stop(holder),
        None if root => {
            bridge::remove_bridge(&def.network_interface)
                .with_context(|| format!("network {}'s bridge", def.name))?;
            nat::remove(def).with_context(|| format!("network {}'s nft rules", def.name))?;
        }
        // A rootless network never used: nothing was made for it.
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_durations_and_times_and_nothing_else() {
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let until = |f: &[&str]| {
            let f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
            until_filter(&f, now)
        };
        assert_eq!(until(&[]).unwrap(), None);
        assert_eq!(until(&["until=1h"]).unwrap(), Some(1_000_000 - 3600));
        assert_eq!(until(&["until=500"]).unwrap(), Some(500));
        assert_eq!(until(&["until=1970-01-02T00:00:00Z"]).unwrap(), Some(86400));
        for bad in ["until=soon", "label=a=b", "until", "dangling=true"] {
            let err = until(&[bad]).unwrap_err().to_string();
            assert!(err.starts_with("--filter"), "{bad}: {err}");
        }
    }
}
