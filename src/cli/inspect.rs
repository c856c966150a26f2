//! `rsafe inspect`: a container's configuration and state, or an image's manifest and config,
//! as JSON.
//!
//! A name that is both a container's and an image's means the container, as `docker inspect`
//! resolves it; `--type` forces one or the other. The container document has docker's field
//! names (`Id`, `State.Status`, `Config.Env`, `HostConfig.Memory`, …) as far as rsafe's
//! state has them, and never a secret: environment values that the audit would call secret
//! (by their name or their shape) are shown redacted. Docker prints them whole; but `inspect`
//! output is what gets pasted into CI logs and bug reports, and the values stay in the
//! container's `spec.json` (readable by its owner only) for whoever needs them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::Global;
use crate::audit::dockerfile::names::is_secret_name;
use crate::audit::finding::redact;
use crate::audit::secrets::SecretScanner;
use crate::image::lookup::find;
use crate::image::media::{Kind, classify};
use crate::image::store::Store;
use crate::image::{Image, Platform};
use crate::runtime::clock::rfc3339;
use crate::runtime::policy::Policy;
use crate::runtime::spec::{BindOwnership, MountSpec, NetworkMode, Spec};
use crate::runtime::state::{self, ContainerDir, Phase, State, StateError};
use crate::runtime::{caps, cgroups::Version};

/// Show a container's configuration and state, or an image's manifest and config, as JSON
///
/// A container (by name, id or unique id prefix): docker's document as far as rsafe keeps it,
/// {Id, Name, Created, Path, Args, State{Status, Running, Pid, ExitCode, OOMKilled, StartedAt,
/// FinishedAt}, Image, Config{Image, Cmd, Env, Hostname, User, WorkingDir, Tty, OpenStdin},
/// HostConfig{Binds, Tmpfs, Memory, PidsLimit, NanoCpus, CapAdd, CapDrop, NetworkMode,
/// ReadonlyRootfs, Policy}, EffectiveCaps, Mounts, NetworkSettings{Ports}, OCIConfigPath (podman's:
/// the container's runtime-spec `config.json`, when its spec has one)}. Environment values
/// that look secret are redacted.
///
/// An image: {name, names, digest, mediaType, manifestDigest, manifest, configDigest, config,
/// size}, with the manifest and config as the image has them (plus `index` and `platform` when
/// the name points at a multi-platform index). IMAGE is a name (`busybox` means
/// `busybox:latest`), a digest, or a unique digest prefix.
///
/// A name that is both means the container, as in docker; --type chooses.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Container name, id or id prefix; or image name, digest or digest prefix.
    #[arg(value_name = "CONTAINER|IMAGE")]
    pub image: String,
    /// Only look for this kind of object.
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<ObjectType>,
    /// For a multi-platform image, the platform whose manifest to show. Default: the host's.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<Platform>,
}

/// What `--type` restricts the lookup to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectType {
    Container,
    Image,
}

/// Prints the JSON document.
pub fn run(args: InspectArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    if args.kind != Some(ObjectType::Image) {
        match state::find(store.root(), &args.image) {
            Ok((dir, st)) => {
                let doc = container_doc(&dir, &st)?;
                println!("{}", serde_json::to_string_pretty(&json!([doc]))?);
                return Ok(0);
            }
            Err(StateError::NotFound(_)) if args.kind.is_none() => {}
            Err(StateError::NotFound(_)) => bail!("no such container: {}", args.image),
            Err(e) => return Err(e.into()),
        }
    }
    image_doc(&store, &args)
}

/// Prints an image's document.
fn image_doc(store: &Store, args: &InspectArgs) -> Result<i32> {
    let found = find(store, &args.image).map_err(|e| match args.kind {
        None => anyhow::anyhow!("no container {:?}, and {e}", args.image),
        Some(_) => e.into(),
    })?;
    let platform = args.platform.clone().unwrap_or_else(Platform::host);
    let image = Image::from_descriptor(store, &found.descriptor, &platform)
        .with_context(|| format!("cannot open image {}", found.display_name()))?;
    let manifest: Value = store.read_json(&image.manifest_digest)?;
    let config: Value = store.read_json(&image.config_digest)?;
    let mut doc = json!({
        "name": found.display_name(),
        "names": found.names,
        "digest": found.digest,
        "mediaType": found.descriptor.media_type().to_string(),
        "manifestDigest": image.manifest_digest,
        "manifest": manifest,
        "configDigest": image.config_digest,
        "config": config,
        "size": image.size(),
    });
    if matches!(classify(found.descriptor.media_type()), Ok(Kind::Index)) {
        let index: Value = store.read_json(&found.digest)?;
        doc["index"] = index;
        doc["platform"] = Value::String(platform.to_string());
    }
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}

/// A container's document, docker's field names (see [`InspectArgs`]).
fn container_doc(dir: &ContainerDir, st: &State) -> Result<Value> {
    let spec = match dir.load_spec(&st.id) {
        Ok(spec) => Some(spec),
        Err(StateError::NoSpec(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let scanner = SecretScanner::builtin().context("load the secret rules")?;
    let (path, args) = match st.command.split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => (String::new(), Vec::new()),
    };
    let mut doc = json!({
        "Id": st.id,
        "Name": format!("/{}", st.name.as_deref().unwrap_or(st.short_id())),
        "Created": rfc3339(UNIX_EPOCH + Duration::from_secs(st.created)),
        "Path": path,
        "Args": args,
        "State": state_doc(dir, st),
        "RestartCount": crate::runtime::detach::restart_count(dir),
        "Image": st.image,
        "Driver": "overlay",
        "Config": Value::Null,
        "HostConfig": Value::Null,
        "Mounts": [],
        "NetworkSettings": {"Ports": ports_doc(st)},
    });
    if let Some(spec) = &spec {
        doc["Config"] = config_doc(st, spec, &scanner);
        doc["HostConfig"] = host_config_doc(st, spec);
        doc["EffectiveCaps"] = json!(cap_names(&spec.confinement.capabilities));
        doc["Mounts"] = mounts_doc(spec);
        if let Some(net) = &spec.net.named {
            doc["NetworkSettings"]["Networks"] = named_networks_doc(dir, net);
        }
    }
    if let Some(why) = &st.damaged {
        doc["State"]["Error"] = json!(why);
    } else if dir.phase(st) == Phase::Dead && dir.exit_unrecorded() {
        // As `wait` and `ps -a` say it: not a killed rsafe.
        doc["State"]["Error"] = json!("its exit could not be recorded: the store is full");
    }
    // podman's name for its userdata/config.json: the container as a runtime-spec bundle.
    let oci_config = dir.path.join("config.json");
    if oci_config.exists() {
        doc["OCIConfigPath"] = json!(oci_config);
    }
    Ok(doc)
}

/// `State`: docker's statuses (`created`, `running`, `exited`, `dead`). StartedAt is the
/// first process's start (from its start time in /proc, within this boot), FinishedAt when the
/// exit was recorded; docker's zero time when unknown.
fn state_doc(dir: &ContainerDir, st: &State) -> Value {
    const ZERO: &str = "0001-01-01T00:00:00Z";
    let phase = dir.phase(st);
    // As docker: a paused container is running and paused, its status "paused".
    let paused = phase == Phase::Up && crate::runtime::pause::is_paused(st);
    let (status, code) = match phase {
        Phase::Created => ("created", 0),
        Phase::Up if paused => ("paused", 0),
        Phase::Up => ("running", 0),
        Phase::Exited(code) => ("exited", code),
        Phase::Dead => ("dead", 0),
    };
    let same_boot = st.boot_id.is_some() && st.boot_id == state::boot_id();
    let started = st
        .pid
        .filter(|_| same_boot)
        .and_then(|(_, ticks)| process_start(ticks))
        .map_or_else(|| ZERO.to_string(), rfc3339);
    let finished = match phase {
        Phase::Exited(_) => std::fs::metadata(dir.state_file())
            .and_then(|m| m.modified())
            .map_or_else(|_| ZERO.to_string(), rfc3339),
        _ => ZERO.to_string(),
    };
    let running = phase == Phase::Up;
    json!({
        "Status": status,
        "Running": running,
        "Paused": paused,
        "Restarting": false,
        "OOMKilled": st.oom_killed,
        "Dead": phase == Phase::Dead,
        "Pid": if running { st.pid.map_or(0, |(p, _)| p) } else { 0 },
        "ExitCode": code,
        "StartedAt": started,
        "FinishedAt": finished,
    })
}

/// When a process that started `ticks` clock ticks after boot started.
fn process_start(ticks: u64) -> Option<SystemTime> {
    let boot = procfs::boot_time_secs().ok()?;
    let per_second = procfs::ticks_per_second().max(1);
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(per_second);
    let since_boot = Duration::from_nanos(u64::try_from(nanos).ok()?);
    Some(UNIX_EPOCH + Duration::from_secs(boot) + since_boot)
}

/// `Config`: what the workload runs with.
fn config_doc(st: &State, spec: &Spec, scanner: &SecretScanner) -> Value {
    let p = &spec.process;
    json!({
        "Hostname": spec.hostname.clone().unwrap_or_else(|| st.short_id().to_string()),
        "User": p.user.clone().unwrap_or_default(),
        "Tty": p.terminal,
        "OpenStdin": p.stdin,
        "Env": p.env.iter().map(|e| redact_env(e, scanner)).collect::<Vec<_>>(),
        "Cmd": p.args,
        "Image": st.image,
        "WorkingDir": p.cwd,
        "Labels": labels_doc(&spec.options.labels, scanner),
    })
}

/// `Config.Labels` (`run -l`): a value that looks secret is redacted, as an environment
/// variable's would be.
fn labels_doc(
    labels: &std::collections::BTreeMap<String, String>,
    scanner: &SecretScanner,
) -> Value {
    let map: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| {
            let shown = redact_env(&format!("{k}={v}"), scanner);
            let value = shown.split_once('=').map_or("", |(_, v)| v).to_string();
            (k.clone(), Value::String(value))
        })
        .collect();
    Value::Object(map)
}

/// `KEY=value`, the value redacted when the key names a secret (`DB_PASSWORD`) or the value
/// has a secret's shape (an `AKIA…` key id under any name).
fn redact_env(entry: &str, scanner: &SecretScanner) -> String {
    let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
    let secret = !value.is_empty() && (is_secret_name(key) || !scanner.scan_text(entry).is_empty());
    match secret {
        true => format!("{key}={}", redact(value)),
        false => entry.to_string(),
    }
}

/// `HostConfig`: limits, mounts as `-v` wrote them, capabilities added to and dropped from the
/// policy's set, the network, the policy.
fn host_config_doc(st: &State, spec: &Spec) -> Value {
    let binds: Vec<String> = spec
        .mounts
        .iter()
        .filter_map(|m| match m {
            MountSpec::Bind {
                source,
                target,
                read_only,
                ownership,
            } => {
                let owned = match ownership {
                    BindOwnership::Host => None,
                    BindOwnership::Idmap => Some("idmap"),
                    BindOwnership::Chown => Some("U"),
                };
                let options: Vec<&str> =
                    read_only.then_some("ro").into_iter().chain(owned).collect();
                Some(bind_text(&source.display().to_string(), target, &options))
            }
            MountSpec::Volume {
                name,
                target,
                read_only,
                ..
            } => Some(bind_text(
                name,
                target,
                if *read_only { &["ro"] } else { &[] },
            )),
            MountSpec::Tmpfs { .. } => None,
        })
        .collect();
    let tmpfs: serde_json::Map<String, Value> = spec
        .mounts
        .iter()
        .filter_map(|m| match m {
            MountSpec::Tmpfs { target, size, mode } => {
                let mut opts = Vec::new();
                if let Some(size) = size {
                    opts.push(format!("size={size}"));
                }
                if let Some(mode) = mode {
                    opts.push(format!("mode={mode:o}"));
                }
                Some((target.clone(), json!(opts.join(","))))
            }
            _ => None,
        })
        .collect();
    let (cap_add, cap_drop) = cap_changes(spec);
    let limits = &spec.limits;
    json!({
        "Binds": binds,
        "Tmpfs": tmpfs,
        "Memory": limits.memory.unwrap_or(0),
        "PidsLimit": limits.pids,
        "NanoCpus": limits.cpus.map_or(0, |c| (c * 1e9).round() as u64),
        "CapAdd": cap_add,
        "CapDrop": cap_drop,
        "NetworkMode": match &spec.net.named {
            Some(net) => net.clone(),
            None => network_mode(spec.net.join.as_deref(), spec.network),
        },
        "ReadonlyRootfs": spec.rootfs.read_only,
        "AutoRemove": st.auto_remove,
        "Init": spec.init,
        "Policy": spec.confinement.policy,
        "Cgroup": st.cgroup.as_ref().map(|cg| cg.dirs.iter().map(|(d, v)| json!({
            "Path": d,
            "Version": match v { Version::V1 => "v1", Version::V2 => "v2" },
        })).collect::<Vec<_>>()),
    })
}

/// `none`, `host`, `slirp4netns`, or `container:NAME` for a container in another's network,
/// as docker writes `HostConfig.NetworkMode`.
fn network_mode(joined: Option<&str>, mode: NetworkMode) -> String {
    match (joined, mode) {
        (Some(owner), _) => format!("container:{owner}"),
        (None, NetworkMode::None) => "none".into(),
        (None, NetworkMode::Host) => "host".into(),
        (None, NetworkMode::Slirp4netns) => "slirp4netns".into(),
    }
}

/// `NetworkSettings.Networks` of a container on named network `net`, as docker shows it:
/// `{"net": {"IPAddress", "IPPrefixLen", "Gateway", "MacAddress", "NetworkID"}}`, the
/// address empty unless it runs (it is leased while it does). `Gateway` is the bridge's
/// address, empty for an `--internal` network's (it has none; see `runtime::bridge`).
fn named_networks_doc(dir: &ContainerDir, net: &str) -> Value {
    let store_root = dir.path.parent().and_then(std::path::Path::parent);
    let nets = store_root.map(crate::runtime::netstore::NetStore::new);
    let def = nets.as_ref().and_then(|n| n.get(net).ok());
    let lease = nets
        .as_ref()
        .and_then(|n| n.lease_of(net, &dir.id).ok().flatten());
    json!({ net: {
        "IPAddress": lease.as_ref().map(|l| l.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": match (&lease, &def) {
            (Some(_), Some(d)) => d.subnet().prefix,
            _ => 0,
        },
        "Gateway": match (&lease, &def) {
            (Some(_), Some(d)) if !d.internal => {
                d.subnet().gateway().to_string()
            }
            _ => String::new(),
        },
        "MacAddress": lease.as_ref().map(|l| l.mac.clone()).unwrap_or_default(),
        "NetworkID": def.map(|d| d.id).unwrap_or_default(),
    }})
}

/// A bind as `-v` wrote it: `SRC:DST[:OPTION,…]`.
fn bind_text(source: &str, target: &str, options: &[&str]) -> String {
    match options {
        [] => format!("{source}:{target}"),
        _ => format!("{source}:{target}:{}", options.join(",")),
    }
}

/// Capabilities the container has beyond its policy's (`CapAdd`) and those of the policy it
/// lacks (`CapDrop`), as `--cap-add`/`--cap-drop` made them; `null` both when the policy is
/// not one rsafe can load again (a file that changed or went).
fn cap_changes(spec: &Spec) -> (Value, Value) {
    let Ok(policy) = Policy::load(&spec.confinement.policy) else {
        return (Value::Null, Value::Null);
    };
    let have = &spec.confinement.capabilities;
    let added: Vec<_> = have
        .iter()
        .filter(|c| !policy.capabilities.contains(c))
        .copied()
        .collect();
    let dropped: Vec<_> = policy
        .capabilities
        .iter()
        .filter(|c| !have.contains(c))
        .copied()
        .collect();
    (json!(cap_names(&added)), json!(cap_names(&dropped)))
}

fn cap_names(caps: &[::caps::Capability]) -> Vec<String> {
    let mut names: Vec<String> = caps
        .iter()
        .map(|c| format!("CAP_{}", caps::short_name(*c)))
        .collect();
    names.sort();
    names
}

/// `Mounts`, docker's list of what is mounted where, with docker's `Driver` (`local`, a
/// volume's only), `Mode` (what docker's daemon records: `ro` for a read-only one, `z`, its
/// default for a `-v` or `--mount` volume, and `""` for a bind or an image's `VOLUME`) and
/// `Propagation` (`rprivate` for a bind, `""` for a volume).
fn mounts_doc(spec: &Spec) -> Value {
    let from_image = |target: &str| spec.options.image_volumes.iter().any(|t| t == target);
    let mounts: Vec<Value> = spec
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Bind {
                source,
                target,
                read_only,
                ..
            } => json!({
                "Type": "bind", "Source": source, "Destination": target,
                "Mode": if *read_only { "ro" } else { "" }, "RW": !read_only,
                "Propagation": "rprivate",
            }),
            MountSpec::Volume {
                name,
                source,
                target,
                read_only,
                ..
            } => json!({
                "Type": "volume", "Name": name, "Source": source, "Destination": target,
                "Driver": "local", "Mode": volume_mode(*read_only, from_image(target)),
                "RW": !read_only, "Propagation": "",
            }),
            MountSpec::Tmpfs { target, .. } => json!({
                "Type": "tmpfs", "Source": "", "Destination": target, "Mode": "", "RW": true,
                "Propagation": "",
            }),
        })
        .collect();
    json!(mounts)
}

/// A volume's `Mode` as docker's daemon records it: the `ro` given, `z` (its default on Linux
/// for a local volume a mount asked for), `""` for an image's `VOLUME` (no mount asked).
fn volume_mode(read_only: bool, from_image: bool) -> &'static str {
    match (read_only, from_image) {
        (true, _) => "ro",
        (false, true) => "",
        (false, false) => "z",
    }
}

/// `NetworkSettings.Ports`: `{"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}`.
fn ports_doc(st: &State) -> Value {
    let mut ports = serde_json::Map::new();
    for p in &st.ports {
        // `HOST:PORT -> CPORT/PROTO`, the mapping as `ps` shows it.
        let text = p.to_string();
        let key = text.rsplit(" -> ").next().unwrap_or_default().to_string();
        let binding = json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()});
        match ports.get_mut(&key) {
            Some(Value::Array(list)) => list.push(binding),
            _ => {
                ports.insert(key, json!([binding]));
            }
        }
    }
    Value::Object(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_are_written_as_v_wrote_them() {
        assert_eq!(bind_text("/src", "/dst", &[]), "/src:/dst");
        assert_eq!(bind_text("/src", "/dst", &["ro"]), "/src:/dst:ro");
        assert_eq!(
            bind_text("/src", "/dst", &["ro", "idmap"]),
            "/src:/dst:ro,idmap"
        );
    }

    #[test]
    fn a_joined_network_is_container_name() {
        assert_eq!(network_mode(None, NetworkMode::None), "none");
        assert_eq!(network_mode(None, NetworkMode::Slirp4netns), "slirp4netns");
        assert_eq!(
            network_mode(Some("app"), NetworkMode::None),
            "container:app"
        );
    }
}
