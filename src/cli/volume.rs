//! `rsafe volume ls|create|rm|inspect`: named volumes, like `docker volume`.
#![forbid(unsafe_code)]

use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::Global;
use super::format::{seconds_ago, table};
use crate::runtime::idmap::IdMap;
use crate::runtime::volume::{self, Volume, Volumes};

/// Manage volumes (`rsafe run -v NAME:/dst`, and the anonymous ones of `-v /dst`)
///
/// A volume is a directory under the store, `<store>/volumes/NAME/_data`, owned by the
/// container's root and kept across runs. `rsafe run -v NAME:/dst` creates it on first use, with
/// a copy of what the image has at /dst. `-v /dst`, `--mount type=volume,target=/dst` and an
/// image's VOLUME make an anonymous one, named by 64 hex digits, which `run --rm`, `rm -v` and
/// a plain `volume prune` remove.
#[derive(Debug, Args)]
pub struct VolumeArgs {
    #[command(subcommand)]
    pub command: VolumeCommand,
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// List the volumes: name, when made, the containers that mount them.
    Ls {
        /// Only the names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Create a volume (nothing happens if it exists).
    Create {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Remove volumes and their data; a volume a container mounts is refused.
    Rm {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Print a volume's details as JSON.
    Inspect {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    Prune(super::prune::VolumePruneArgs),
}

/// `inspect`'s JSON (Docker's field names).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Details {
    name: String,
    mountpoint: String,
    /// Seconds since the epoch.
    created_at: u64,
    /// Names (or short ids) of the containers that mount it.
    used_by: Vec<String>,
    /// An anonymous volume (`-v /dst`, an image's VOLUME), as podman says it.
    anonymous: bool,
    /// docker's mark of an anonymous volume, `com.docker.volume.anonymous`, so that scripts
    /// written for either find it.
    labels: std::collections::BTreeMap<&'static str, &'static str>,
}

/// Runs `rsafe volume …`.
pub fn run(args: VolumeArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let volumes = Volumes::of_store(store.root());
    let used_by = |v: &Volume| -> Result<Vec<String>> {
        Ok(volumes
            .users(store.root(), &v.name)?
            .iter()
            .map(|s| s.name.clone().unwrap_or_else(|| s.short_id().to_string()))
            .collect())
    };
    match args.command {
        VolumeCommand::Ls { quiet } => {
            let all = volumes.list()?;
            if quiet {
                for v in &all {
                    println!("{}", v.name);
                }
                return Ok(0);
            }
            let now = SystemTime::now();
            let mut rows = Vec::new();
            for v in &all {
                rows.push(vec![
                    v.name.clone(),
                    seconds_ago(i64::try_from(v.created).unwrap_or(i64::MAX), now),
                    used_by(v)?.join(","),
                ]);
            }
            print!("{}", table(&["VOLUME NAME", "CREATED", "USED BY"], &rows));
        }
        VolumeCommand::Create { name } => {
            let owner = volume::root_owner(&IdMap::for_this_process());
            volumes
                .ensure(&name, owner)
                .with_context(|| format!("cannot create volume {name}"))?;
            println!("{name}");
        }
        VolumeCommand::Rm { names } => {
            let idmap = IdMap::for_this_process();
            for name in &names {
                volumes
                    .remove(store.root(), name, &idmap)
                    .with_context(|| format!("cannot remove volume {name}"))?;
                println!("{name}");
            }
        }
        VolumeCommand::Inspect { names } => {
            let mut out = Vec::new();
            for name in &names {
                let v = volumes.get(name)?;
                let labels = match v.anonymous {
                    true => [("com.docker.volume.anonymous", "")].into(),
                    false => Default::default(),
                };
                out.push(Details {
                    mountpoint: v.data().display().to_string(),
                    created_at: v.created,
                    used_by: used_by(&v)?,
                    anonymous: v.anonymous,
                    labels,
                    name: v.name,
                });
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        VolumeCommand::Prune(args) => return super::prune::volumes(args, global),
    }
    Ok(0)
}
