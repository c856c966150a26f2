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
        /// docker's filters: `dangling=true|false` (no container, running or stopped, mounts
        /// it), `name=PART`, `label=KEY[=VALUE]` (`com.docker.volume.anonymous` marks the
        /// anonymous ones). Several of one key: any; of different keys: all.
        #[arg(short, long = "filter", value_name = "KEY=VALUE", value_parser = parse_ls_filter)]
        filter: Vec<LsFilter>,
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
        VolumeCommand::Ls { quiet, filter } => {
            let mut all = Vec::new();
            for v in volumes.list()? {
                let dangling = used_by(&v)?.is_empty();
                if selected(&filter, &v, dangling) {
                    all.push(v);
                }
            }
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
                let labels = labels(&v);
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

/// A volume's labels: only docker's mark of an anonymous one (rsafe's volumes take none).
fn labels(v: &Volume) -> std::collections::BTreeMap<&'static str, &'static str> {
    match v.anonymous {
        true => [("com.docker.volume.anonymous", "")].into(),
        false => Default::default(),
    }
}

/// One `volume ls --filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LsFilter {
    /// `dangling=true|false`: no container mounts it (or one does).
    Dangling(bool),
    /// `name=PART`: the name contains PART, as docker matches it.
    Name(String),
    /// `label=KEY` or `label=KEY=VALUE`.
    Label(String, Option<String>),
}

impl LsFilter {
    fn key(&self) -> &'static str {
        match self {
            LsFilter::Dangling(_) => "dangling",
            LsFilter::Name(_) => "name",
            LsFilter::Label(..) => "label",
        }
    }

    fn matches(&self, v: &Volume, dangling: bool) -> bool {
        match self {
            LsFilter::Dangling(want) => dangling == *want,
            LsFilter::Name(part) => v.name.contains(part.as_str()),
            LsFilter::Label(key, value) => labels(v)
                .get(key.as_str())
                .is_some_and(|have| value.as_deref().is_none_or(|want| want == *have)),
        }
    }
}

/// Parses `--filter KEY=VALUE` with docker's keys and values (`dangling` takes `true`,
/// `false`, `1`, `0`); `driver` is refused, rsafe's volumes having only `local`'s directories.
fn parse_ls_filter(s: &str) -> std::result::Result<LsFilter, String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("bad format of filter (expected name=value): {s}"))?;
    match key {
        "dangling" => match value {
            "true" | "1" => Ok(LsFilter::Dangling(true)),
            "false" | "0" => Ok(LsFilter::Dangling(false)),
            _ => Err(format!("invalid filter 'dangling={value}'")),
        },
        "name" => Ok(LsFilter::Name(value.to_string())),
        "label" => Ok(match value.split_once('=') {
            Some((k, v)) => LsFilter::Label(k.to_string(), Some(v.to_string())),
            None => LsFilter::Label(value.to_string(), None),
        }),
        _ => Err(format!(
            "invalid filter '{key}' (dangling, name, label: rsafe's volumes have no driver)"
        )),
    }
}

/// Whether volume `v` passes `filters`: any filter of a key, every key.
fn selected(filters: &[LsFilter], v: &Volume, dangling: bool) -> bool {
    let mut keys: Vec<&str> = filters.iter().map(LsFilter::key).collect();
    keys.dedup();
    keys.iter().all(|key| {
        filters
            .iter()
            .filter(|f| f.key() == *key)
            .any(|f| f.matches(v, dangling))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(name: &str, anonymous: bool) -> Volume {
        Volume {
            name: name.into(),
            dir: std::path::PathBuf::from("/store/volumes").join(name),
            created: 0,
            anonymous,
        }
    }

    #[test]
    fn ls_filters_as_docker_combines_them() {
        let f = |s: &str| parse_ls_filter(s).unwrap();
        let (named, anon) = (volume("pgdata", false), volume(&"ab".repeat(32), true));
        let mark = f("label=com.docker.volume.anonymous");
        assert!(mark.matches(&anon, true) && !mark.matches(&named, true));
        assert!(f("label=com.docker.volume.anonymous=").matches(&anon, true));
        assert!(!f("label=com.docker.volume.anonymous=x").matches(&anon, true));
        assert!(f("name=gda").matches(&named, false));
        assert!(f("dangling=1").matches(&named, true) && !f("dangling=0").matches(&named, true));
        // One key: any of them; different keys: all.
        let pick = [f("name=zz"), f("name=pg"), f("dangling=true")];
        assert!(selected(&pick, &named, true));
        assert!(!selected(&pick, &named, false));
        assert!(!selected(&pick, &anon, true));
        assert!(selected(&[], &anon, false));
        for bad in ["dangling=maybe", "driver=local", "nokey"] {
            assert!(parse_ls_filter(bad).is_err(), "{bad}");
        }
    }
}
