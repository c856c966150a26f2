//! `rsafe run`: run a command in a container made from a rootfs directory.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;

use super::Global;
use super::gate::{self, Gated};
use super::policy::{OverrideArgs, effective_policy};
use crate::audit::finding::Severity;
use crate::audit::gate::Level;
use crate::audit::procs::checks::mounts::bind_source_risks;
use crate::image::load;
use crate::image::resolve::{self, ResolveOptions};
use crate::image::unpack::{self, LayerCache, Ownership};
use crate::image::{Digest, Image, Store};
use crate::runtime::detach::{self, Detached};
use crate::runtime::helper;
use crate::runtime::idmap::IdMap;
use crate::runtime::learn::writer::{Learned, Run};
use crate::runtime::learn::{self, Recorder};
use crate::runtime::process::{self, Exit, Note, RunError, RunRequest};
use crate::runtime::spec::{
    self, BindOwnership, Confinement, ContainerOptions, ImageDefaults, Limits, MountSpec,
    NetworkMode, NetworkOptions, ProcessOverrides, ProcessSpec, RootfsSpec, Spec, VolumeArg,
};
use crate::runtime::volume::{self, Volumes};

/// Run a command in a new, isolated container
///
/// Its own user, mount, pid, ipc, uts, network, cgroup and time namespaces, an overlay root, a
/// confinement policy (capabilities, seccomp, landlock), and rsafe's init as pid 1. The exit
/// code is the command's (128+N when signal N ended it); 125 when rsafe failed, 126 when the
/// command cannot be executed, 127 when it is not found.
#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Say what was set up and enforced: namespaces, id maps, limits, capabilities, seccomp,
    /// landlock. (The global -v/--verbose, which `-v` = `--volume` displaces here.)
    #[arg(long)]
    pub verbose: bool,
    /// Keep stdin attached (otherwise the container's stdin is /dev/null).
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a terminal (from its own devpts).
    #[arg(short, long)]
    pub tty: bool,
    /// Remove the container and its writable layer when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background: print the container's id once the command runs, and exit.
    /// Its output goes to `rsafe logs`; `rsafe stop` ends it. With -i and -t (`-dit`), its
    /// terminal waits for `rsafe attach`.
    #[arg(short, long)]
    pub detach: bool,
    /// Name the container (for `rsafe ps` and `rsafe rm`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass rsafe's own value).
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file, as docker does: KEY=VALUE lines (the value
    /// taken as is), KEY alone for rsafe's own value, # comments; a malformed line is an error.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory in the container (created when missing).
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User (and group) to run as: name or uid, optionally :group or :gid.
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The container's hostname (default: the first 12 characters of its id).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Replace the image's entrypoint (and drop its Cmd).
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Bind-mount a host path (HOST-PATH:CONTAINER-PATH[:ro][,idmap|,U], the path absolute or
    /// ./…) or a named volume (NAME:CONTAINER-PATH[:ro][,nocopy]; see `rsafe volume`). `idmap`:
    /// an id-mapped mount, the caller's files show as container root's; `U`: chown the host tree
    /// to container root first (podman's; never through a symlink).
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    pub volume: Vec<String>,
    /// Mount in docker's long syntax: type=bind,source=HOST-PATH,target=PATH[,readonly]
    /// [,bind-propagation=rprivate]; type=volume,source=NAME,target=PATH[,readonly]
    /// [,volume-nocopy]; type=tmpfs,target=PATH[,tmpfs-size=64m][,tmpfs-mode=1777] (src, dst,
    /// destination, ro too). Unlike -v, a bind's missing source is an error, as in docker.
    #[arg(long = "mount", value_name = "type=…,source=…,target=…")]
    pub mount: Vec<String>,
    /// Mount every volume and bind of container CONTAINER at the same paths (docker's and
    /// podman's); `:ro` or `:rw` sets them all read-only or read-write, otherwise each keeps
    /// its own. A -v, --mount or --tmpfs of this run at one of those paths takes its place.
    #[arg(long = "volumes-from", value_name = "CONTAINER[:ro|rw]")]
    pub volumes_from: Vec<String>,
    /// Set an rlimit in the container: TYPE=SOFT[:HARD] with docker's names (nofile, nproc,
    /// core, stack, memlock, …; -1 unlimited). A hard limit above rsafe's own is refused: no
    /// process in a user namespace can raise one.
    #[arg(long, value_name = "TYPE=SOFT[:HARD]", value_parser = parse_ulimit)]
    pub ulimit: Vec<spec::Ulimit>,
    /// The size of /dev/shm (e.g. 256m; default 64m, as in docker).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub shm_size: Option<u64>,
    /// An extra supplementary group for the workload: a name from the image's /etc/group or
    /// a gid (repeatable).
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// The signal `rsafe stop` sends first (default SIGTERM).
    #[arg(long, value_name = "SIGNAL", value_parser = parse_stop_signal)]
    pub stop_signal: Option<String>,
    /// Seconds `rsafe stop` waits after the stop signal before SIGKILL, when not given -t
    /// (default 10).
    #[arg(long, value_name = "SECONDS")]
    pub stop_timeout: Option<u64>,
    /// A label KEY=VALUE, shown by `rsafe inspect` as Config.Labels (repeatable).
    #[arg(short, long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub label: Vec<(String, String)>,
    /// Mount a tmpfs: PATH[:size=64m,mode=1777].
    #[arg(long, value_name = "PATH[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Make the root filesystem read-only (no writable layer at all).
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit (e.g. 256m, 1g).
    #[arg(short, long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,
    /// Maximum number of processes and threads.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub pids_limit: Option<u64>,
    /// CPU limit in CPUs (e.g. 1.5).
    #[arg(long, value_name = "N", value_parser = parse_cpus)]
    pub cpus: Option<f64>,
    /// Network: none (own namespace, loopback only), slirp4netns (own namespace with a
    /// user-mode network: outbound, DNS, published ports; the host's loopback unreachable) or
    /// host (default: the policy's; slirp4netns when -p is given), container:NAME (the
    /// running container NAME's network and user namespaces: a pod's sidecar), or the name of
    /// a network made by `rsafe network create` (root: containers on it reach each other by
    /// name; nothing beyond it).
    #[arg(long, value_name = "MODE", value_parser = parse_network)]
    pub network: Option<NetworkArg>,
    /// Publish a container port: [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp], ranges allowed.
    /// Binds 127.0.0.1 unless HOSTIP is given (Docker's default is every address).
    #[arg(short, long = "publish", value_name = "[IP:]HOST:CONTAINER")]
    pub publish: Vec<String>,
    /// Publish every port the image's config exposes (ExposedPorts) on a free port of
    /// 127.0.0.1 that the kernel picks; each is printed.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// A name server for /etc/resolv.conf (repeatable; default: slirp4netns's forwarder).
    #[arg(long, value_name = "IP")]
    pub dns: Vec<std::net::IpAddr>,
    /// A search domain for /etc/resolv.conf (repeatable; default: the host's).
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// An extra /etc/hosts line: NAME:IP (repeatable).
    #[arg(long, value_name = "NAME:IP", value_parser = parse_add_host)]
    pub add_host: Vec<(String, std::net::IpAddr)>,
    /// The confinement policy: a builtin name (default, strict, permissive) or a policy file.
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    pub policy: String,
    #[command(flatten)]
    pub overrides: OverrideArgs,
    /// Refused (exit 125): every capability outside a user namespace, the host's devices, no
    /// seccomp: what rsafe exists not to do. Use --cap-add for what the workload needs.
    #[arg(long)]
    pub privileged: bool,
    /// The pid namespace: private (always; podman's word) or host/container:NAME (refused).
    #[arg(long, value_name = "MODE")]
    pub pid: Option<String>,
    /// The IPC namespace: private (always) or host/container:NAME/shareable/none (refused).
    #[arg(long, value_name = "MODE")]
    pub ipc: Option<String>,
    /// The UTS namespace: private (always) or host (refused).
    #[arg(long, value_name = "MODE")]
    pub uts: Option<String>,
    /// The user namespace: host is refused (container root would be host root).
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,
    /// docker's security options: seccomp=FILE|unconfined (= --seccomp), no-new-privileges
    /// (always on), label=disable and apparmor=unconfined (no LSM profile is applied anyway);
    /// other label, apparmor and systempaths options are refused.
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Restart policy of a -d container: no (default), on-failure[:N] (after a non-zero exit,
    /// N times at most), always or unless-stopped (until `rsafe stop`). Its monitor starts it
    /// again (100 ms, doubling to 10 s, between runs); `inspect` shows RestartCount.
    #[arg(long, value_name = "POLICY", value_parser = parse_restart)]
    pub restart: Option<RestartArg>,
    /// Refused: a host device node in the container is a way into a host driver.
    #[arg(long, value_name = "HOST[:CONTAINER[:PERMS]]")]
    pub device: Vec<String>,
    /// Audit the image first (as `rsafe audit IMAGE` does, with ./.rsafeignore) and refuse to
    /// start it, exit 125, when a finding is at or above SEVERITY (info, low, medium, high,
    /// critical); the findings are printed on stderr. `off`: no gate. Default: the policy's
    /// `gate` key. The verdict is cached in the store per image and rule set. `rsafe start`
    /// restarts a container without a new gate: its run passed it.
    #[arg(long, value_name = "SEVERITY|off", value_parser = super::gate::parse_level)]
    pub gate: Option<Level>,
    /// Fail instead of running when landlock cannot be fully enforced on this kernel.
    #[arg(long)]
    pub require_landlock: bool,
    /// Record what the command uses (syscalls, paths, TCP ports, capabilities, peak memory and
    /// tasks) while it runs under the policy as usual, and write a policy allowing only that
    /// to OUT.toml (and OUT.seccomp.json). An existing OUT.toml is extended. With -d, it is
    /// written when the container ends (`rsafe stop`, or the command's exit), and the line
    /// saying so is in its log.
    #[arg(long, value_name = "OUT.toml")]
    pub learn: Option<PathBuf>,
    /// Run rsafe's init as pid 1 (reaps zombies, forwards signals); false makes the command
    /// pid 1.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub init: bool,
    /// What to run: an image (a store name or digest, an archive or OCI layout path, or a
    /// registry reference, pulled when not in the store), or a plain rootfs directory.
    #[arg(value_name = "IMAGE|ROOTFS")]
    pub target: String,
    /// The command and its arguments.
    #[arg(allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    spec::parse_size(s).map_err(|e| e.to_string())
}

fn parse_ulimit(s: &str) -> Result<spec::Ulimit, String> {
    spec::parse_ulimit(s).map_err(|e| e.to_string())
}

fn parse_stop_signal(s: &str) -> Result<String, String> {
    spec::parse_stop_signal(s).map_err(|e| e.to_string())
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    spec::parse_label(s).map_err(|e| e.to_string())
}

/// `--restart`'s value: a policy, or `no` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartArg(pub Option<spec::RestartPolicy>);

fn parse_restart(s: &str) -> Result<RestartArg, String> {
    spec::parse_restart(s)
        .map(RestartArg)
        .map_err(|e| e.to_string())
}

fn parse_cpus(s: &str) -> Result<f64, String> {
    spec::parse_cpus(s).map_err(|e| e.to_string())
}

/// `--network`: a mode, or another container's network.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkArg {
    Mode(NetworkMode),
    Container(String),
    /// A network of `rsafe network create`.
    Named(String),
}

fn parse_network(s: &str) -> Result<NetworkArg, String> {
    match s {
        "none" => Ok(NetworkArg::Mode(NetworkMode::None)),
        "host" => Ok(NetworkArg::Mode(NetworkMode::Host)),
        "slirp4netns" => Ok(NetworkArg::Mode(NetworkMode::Slirp4netns)),
        _ => match s.strip_prefix("container:") {
            Some("") => Err("container: needs a container's name or id".into()),
            Some(name) => Ok(NetworkArg::Container(name.to_string())),
            None if crate::runtime::netstore::check_name(s).is_ok() => {
                Ok(NetworkArg::Named(s.to_string()))
            }
            None => {
                Err("expected none, slirp4netns, host, container:NAME or a network's name".into())
            }
        },
    }
}

/// `--add-host NAME:IP` (the address may be IPv6: split at the first colon).
fn parse_add_host(s: &str) -> Result<(String, std::net::IpAddr), String> {
    let (name, ip) = s.split_once(':').ok_or("expected NAME:IP")?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !valid {
        return Err(format!("{name:?} is not a host name"));
    }
    let ip = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IP address"))?;
    Ok((name.to_string(), ip))
}

/// The network and its options: `-p` needs a network that can carry it (slirp4netns, chosen
/// when no --network is given).
fn network_for(
    args: &RunArgs,
    policy_network: NetworkMode,
    exposed: &[String],
) -> anyhow::Result<(NetworkMode, NetworkOptions)> {
    let mut ports = Vec::new();
    for p in &args.publish {
        ports.extend(crate::runtime::network::parse_publish(p)?);
    }
    if args.publish_all {
        ports.extend(crate::runtime::network::publish_exposed(exposed)?);
    }
    // Ports belong to the container whose network it is (podman drops them; rsafe says so).
    let (mode, join) = match &args.network {
        Some(NetworkArg::Container(name)) if !ports.is_empty() || args.publish_all => {
            anyhow::bail!(
                "-p with --network container:{name}: publish the port when running {name} (its ports are its network's)"
            )
        }
        Some(NetworkArg::Container(name)) => (Some(NetworkMode::None), Some(name.clone())),
        // Its own namespace, on the bridge; published ports go to its address there.
        Some(NetworkArg::Named(_)) => (None, None),
        Some(NetworkArg::Mode(mode)) => (Some(*mode), None),
        None => (None, None),
    };
    let network = match (mode, ports.is_empty()) {
        _ if matches!(args.network, Some(NetworkArg::Named(_))) => NetworkMode::None,
        (Some(mode), true) => mode,
        (None, true) => policy_network,
        (None | Some(NetworkMode::Slirp4netns), false) => NetworkMode::Slirp4netns,
        (Some(mode @ (NetworkMode::None | NetworkMode::Host)), false) => {
            let mode = if mode == NetworkMode::None {
                "none"
            } else {
                "host"
            };
            anyhow::bail!(
                "-p needs a network that can carry it: --network slirp4netns (or no --network), not {mode}"
            );
        }
    };
    let options = NetworkOptions {
        ports,
        dns: args.dns.clone(),
        dns_search: args.dns_search.clone(),
        hosts: args.add_host.clone(),
        join,
        named: match &args.network {
            Some(NetworkArg::Named(name)) => Some(name.clone()),
            _ => None,
        },
    };
    Ok((network, options))
}

/// `--network NAME`: the network exists (root's is a bridge in the host, a rootless user's one
/// in the network's holder: see `runtime::rootless_net`).
fn check_named_network(name: &str, store_root: &std::path::Path) -> anyhow::Result<()> {
    crate::runtime::netstore::NetStore::new(store_root).get(name)?;
    Ok(())
}

/// Runs the container and returns the workload's exit code.
pub fn run(args: RunArgs, global: &Global) -> anyhow::Result<i32> {
    let store = global.store()?;
    let Prepared {
        request,
        warnings,
        claims,
        policy,
        learned,
    } = prepare(&args, global, &store)?;
    let recorder = request.learn.clone();
    let run_label = learn_label(&request.image, &request.spec.process.args);
    let mut notify = notes_to_stderr(args.verbose || global.verbose);
    for w in warnings {
        notify(Note::Warning(w));
    }
    if let Err(e) = chown_sources(&request.spec.mounts, &request.idmap, &mut notify) {
        claims.release(store.root());
        return Err(e);
    }
    // Where a published port listens is said every time: 127.0.0.1 unless asked otherwise.
    for port in &request.spec.net.ports {
        say(format!("rsafe: publishing {port}"));
    }
    let learning = match (&args.learn, learned, recorder) {
        (Some(out), Some(learned), Some(recorder)) => Some((out.clone(), learned, recorder)),
        _ => None,
    };
    let code = if args.detach {
        run_detached(request, learning, run_label, &policy, notify, claims)?
    } else {
        let result = process::run(request, &mut notify);
        let started = result.is_ok();
        let code = exit_code(result);
        claims.release(store.root());
        if let (Some((out, learned, recorder)), true) = (learning, started) {
            write_learned(&out, learned, &recorder, run_label, &policy)?;
        }
        code
    };
    Ok(code)
}

/// A container as `run` and `create` make it from their flags, checked, before it exists.
pub(super) struct Prepared {
    pub request: RunRequest,
    /// What the user is told before it starts (the policy's, risky binds).
    pub warnings: Vec<String>,
    /// The claims on its volumes: `rsafe volume rm` is refused while they are held, and
    /// [`VolumeHold::release`] lets go of them once the container has ended.
    pub claims: VolumeHold,
    pub policy: crate::runtime::policy::Policy,
    /// `--learn`'s policy file as it was before this run.
    pub learned: Option<Learned>,
}

/// Everything `run` and `create` check and make before the container: the policy, the image
/// (resolved, gated, its layers extracted), the process, mounts, network and limits.
pub(super) fn prepare(args: &RunArgs, global: &Global, store: &Store) -> anyhow::Result<Prepared> {
    let idmap = IdMap::for_this_process();
    let overrides = security_flags(args)?;
    check_ulimits(&args.ulimit)?;
    check_group_add(&args.group_add, &idmap)?;
    let mut policy = effective_policy(&args.policy, &overrides)?;
    // Read (and so checked) before the run: a file that is not a learned policy is refused
    // before anything starts.
    let learned = match &args.learn {
        Some(out) => Some(Learned::read(out)?),
        None => None,
    };
    let gated = gate::threshold(args.gate, policy.gate).map(|threshold| GateRun {
        threshold,
        verbose: args.verbose || global.verbose,
    });
    let PreparedRoot {
        lowers,
        defaults: image_defaults,
        name: image_name,
        exposed,
    } = root_filesystem(store, &args.target, &idmap, global, gated)?;
    let cwd = std::env::current_dir().context("current directory")?;
    let process = process_for(args, &image_defaults)?;
    // The claims are held until the container has ended: `rsafe volume rm` is refused meanwhile.
    let image_volumes = &image_defaults.volumes;
    let MountsMade {
        mounts,
        warnings: mount_warnings,
        hold: claims,
        from_image,
    } = mounts_for(args, &cwd, (&policy.name, image_volumes), &idmap, store)?;
    let checked = network_checked(args, &mut policy, &exposed, store).and_then(|network| {
        let warnings = warnings_for(&policy, mount_warnings, network.0);
        Ok((
            warnings,
            spec_for(args, &policy, lowers, process, mounts, network)?,
        ))
    });
    let (warnings, mut spec) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            // No container: the anonymous volumes made for it go.
            claims.release(store.root());
            return Err(e);
        }
    };
    spec.options.anonymous_volumes = claims.anonymous_names();
    spec.options.image_volumes = from_image;
    let request = RunRequest {
        spec,
        store_root: store.root().to_path_buf(),
        image: image_name,
        name: args.name.clone(),
        remove: args.rm,
        idmap,
        log: None,
        learn: args.learn.as_ref().map(|_| Recorder::new()),
        // In the foreground the output is kept for `rsafe logs` too, as docker keeps it.
        output: process::Output::Tee,
    };
    Ok(Prepared {
        request,
        warnings,
        claims,
        policy,
        learned,
    })
}

/// docker's flags that take the container's isolation away, checked before anything is done:
/// each either means what rsafe does anyway (accepted) or is refused with the reason, never
/// accepted and ignored. Returns the confinement flags with `--security-opt seccomp=…` as
/// `--seccomp`.
fn security_flags(args: &RunArgs) -> anyhow::Result<OverrideArgs> {
    if args.privileged {
        anyhow::bail!(
            "--privileged is refused: it gives the container every capability over the host, every host device and no seccomp, landlock or masked /proc, which is what rsafe exists not to do; add what the workload needs instead (--cap-add CAP, --security-opt seccomp=unconfined)"
        );
    }
    check_restart(args)?;
    if let Some(device) = args.device.first() {
        anyhow::bail!(
            "--device {device} is refused: a host device node is a way into a host kernel driver; the container's /dev has only null, zero, full, random, urandom, tty and its own terminals"
        );
    }
    for (flag, value) in [
        ("--pid", &args.pid),
        ("--ipc", &args.ipc),
        ("--uts", &args.uts),
        ("--userns", &args.userns),
    ] {
        if let Some(value) = value {
            check_namespace_flag(flag, value)?;
        }
    }
    let mut overrides = args.overrides.clone();
    for opt in &args.security_opt {
        if let Some(profile) = security_opt(opt)? {
            match &overrides.seccomp {
                Some(given) if *given != profile => anyhow::bail!(
                    "--security-opt {opt} and --seccomp {given} name two seccomp profiles: give one"
                ),
                _ => overrides.seccomp = Some(profile),
            }
        }
    }
    Ok(overrides)
}

/// `--restart`: carried out by a `-d` container's monitor, so refused without `-d` (nothing
/// would restart it), with `--rm` (docker's conflict: the container is gone once it ends) and
/// with `-t` (its terminal goes to the relay once).
fn check_restart(args: &RunArgs) -> anyhow::Result<()> {
    if args.restart.and_then(|r| r.0).is_none() {
        return Ok(());
    }
    let why = if !args.detach {
        "it needs -d: a detached container's monitor is what starts it again"
    } else if args.rm {
        "conflicting options --restart and --rm (the container is removed when it ends)"
    } else if args.tty {
        "it is not supported with -t (the container's terminal is handed to its log relay once)"
    } else {
        return Ok(());
    };
    anyhow::bail!("--restart is refused: {why}")
}

/// `--pid`, `--ipc`, `--uts`, `--userns MODE`: the container's own namespace is what rsafe
/// always makes, so `private` (and docker's empty default) is accepted; sharing the host's is
/// refused saying what the container would get.
fn check_namespace_flag(flag: &str, value: &str) -> anyhow::Result<()> {
    if value.is_empty() || value == "private" {
        return Ok(());
    }
    let why = match (flag, value) {
        ("--pid", "host") => {
            "the container would see every host process, their command lines and environments, and could signal or trace the ones its user owns"
        }
        ("--ipc", "host") => {
            "the host's System V shared memory, semaphores and message queues would be the container's to read and write"
        }
        ("--uts", "host") => {
            "the container would share the host's hostname and domain name and could change them for the whole host"
        }
        ("--userns", "host") => {
            "container root would be the caller's own uid on the host (host root when root runs it): the user namespace is the one isolation rsafe never gives up"
        }
        (_, v) if v.starts_with("container:") => {
            "each rsafe container has namespaces of its own (only --network container:NAME joins another's; rsafe exec runs in one)"
        }
        _ => "rsafe supports only private (the container's own namespace, always made)",
    };
    anyhow::bail!("{flag} {value} is refused: {why}")
}

/// One `--security-opt`: the seccomp profile it names (`seccomp=FILE|unconfined`, or docker's
/// old `seccomp:…`), nothing for the options rsafe already honours, an error for the rest.
fn security_opt(opt: &str) -> anyhow::Result<Option<String>> {
    let (key, value) = opt
        .split_once('=')
        .or_else(|| opt.split_once(':'))
        .unwrap_or((opt, ""));
    let refuse = |why: &str| anyhow::anyhow!("--security-opt {opt} is refused: {why}");
    match (key, value) {
        ("seccomp", "") => Err(refuse(
            "seccomp= needs a profile: a JSON file or unconfined",
        )),
        ("seccomp", profile) => Ok(Some(profile.to_string())),
        ("no-new-privileges", "" | "true") => Ok(None),
        ("no-new-privileges", "false") => Err(refuse(
            "no_new_privs is always set: no set-uid or file-capability program in the container gains privileges",
        )),
        ("label", "disable") | ("apparmor", "unconfined") => Ok(None),
        ("label" | "apparmor", _) => Err(refuse(
            "rsafe applies no SELinux label or AppArmor profile (it confines with capabilities, seccomp and landlock), so there is none to set; label=disable and apparmor=unconfined are accepted as what it does",
        )),
        ("systempaths", "unconfined") | ("mask" | "unmask", _) => Err(refuse(
            "the masked and read-only /proc and /sys paths are the policy's (masked_paths, readonly_paths in a policy file)",
        )),
        _ => Err(refuse(
            "unknown option (seccomp=…, no-new-privileges, label=disable, apparmor=unconfined)",
        )),
    }
}

/// The process from the image's defaults and the flags (`--entrypoint`, the command, `-e`,
/// `--env-file`, `-w`, `-u`, `-t`, `-i`), and `--hostname` checked.
fn process_for(args: &RunArgs, image_defaults: &ImageDefaults) -> anyhow::Result<ProcessSpec> {
    let flags = ProcessOverrides {
        entrypoint: args.entrypoint.clone(),
        args: args.command.clone(),
        env: args.env.clone(),
        env_files: args.env_file.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        terminal: args.tty,
        stdin: args.interactive,
    };
    let process = spec::merge_process(image_defaults, &flags, &|k| std::env::var(k).ok())?;
    if let Some(h) = &args.hostname {
        spec::check_hostname(h)?;
    }
    Ok(process)
}

/// The network ([`network_for`]), a named one checked to exist, and its published ports
/// added to the ports `policy` lets the workload bind.
fn network_checked(
    args: &RunArgs,
    policy: &mut crate::runtime::policy::Policy,
    exposed: &[String],
    store: &Store,
) -> anyhow::Result<(NetworkMode, NetworkOptions)> {
    let (network, net) = network_for(args, policy.network, exposed)?;
    if let Some(name) = &net.named {
        check_named_network(name, store.root())?;
    }
    // A published port is one the workload may bind, whatever the policy's landlock list.
    crate::runtime::network::allow_published(&mut policy.landlock.tcp_bind, &net.ports);
    Ok((network, net))
}

/// What the user is told before the container starts: the policy's warnings, the host binds'
/// and the host's network when the policy did not ask for it.
fn warnings_for(
    policy: &crate::runtime::policy::Policy,
    mount_warnings: Vec<String>,
    network: NetworkMode,
) -> Vec<String> {
    let mut warnings = policy.warnings();
    warnings.extend(mount_warnings);
    if network == NetworkMode::Host && policy.network != NetworkMode::Host {
        warnings.push("the container shares the host's network (--network host)".to_string());
    }
    warnings
}

/// The container's spec: its layers, process, mounts and network as checked, its limits
/// from the flags and `policy`, and `policy`'s paths and confinement.
fn spec_for(
    args: &RunArgs,
    policy: &crate::runtime::policy::Policy,
    lowers: Vec<PathBuf>,
    process: ProcessSpec,
    mounts: Vec<MountSpec>,
    (network, net): (NetworkMode, NetworkOptions),
) -> anyhow::Result<Spec> {
    let limits = limits_for(args, policy)?;
    Ok(Spec {
        rootfs: RootfsSpec {
            lowers,
            read_only: args.read_only,
        },
        process,
        hostname: args.hostname.clone(),
        mounts,
        network,
        net,
        limits,
        pids_limit_from_policy: args.pids_limit.is_none(),
        init: args.init,
        masked_paths: policy.masked_paths.clone(),
        readonly_paths: policy.readonly_paths.clone(),
        confinement: Confinement::from_policy(policy, args.require_landlock),
        options: ContainerOptions {
            labels: args.label.iter().cloned().collect(),
            ulimits: args.ulimit.clone(),
            group_add: args.group_add.clone(),
            shm_size: args.shm_size,
            stop_signal: args.stop_signal.clone(),
            stop_timeout: args.stop_timeout,
            restart: args.restart.and_then(|r| r.0),
            anonymous_volumes: Vec::new(),
            image_volumes: Vec::new(),
        },
    })
}

/// `--ulimit`: a hard limit above rsafe's own cannot be set in the container (raising one takes
/// CAP_SYS_RESOURCE in the host's user namespace, which no container process has), so it is
/// refused rather than lowered behind the user's back.
fn check_ulimits(ulimits: &[spec::Ulimit]) -> anyhow::Result<()> {
    for u in ulimits {
        let (_, own_hard) = nix::sys::resource::getrlimit(u.name.resource())
            .with_context(|| format!("read rsafe's own {} limit", u.name.as_str()))?;
        if u.hard > own_hard {
            let shown = |n: u64| match n {
                u64::MAX => "unlimited".to_string(),
                n => n.to_string(),
            };
            anyhow::bail!(
                "--ulimit {}: hard limit {} is above rsafe's own, {}: a process in the container's user namespace cannot raise it (raise rsafe's hard limit first, e.g. ulimit -H)",
                u.name.as_str(),
                shown(u.hard),
                shown(own_hard)
            );
        }
    }
    Ok(())
}

/// `--group-add` needs `setgroups(2)`, which a rootless container mapping only the caller's
/// id may not call: refused there rather than dropped.
fn check_group_add(groups: &[String], idmap: &IdMap) -> anyhow::Result<()> {
    if !groups.is_empty() && !idmap.setgroups {
        anyhow::bail!(
            "--group-add {}: supplementary groups cannot be set in a rootless container without a subordinate id range (/etc/subuid, /etc/subgid): the kernel denies setgroups there",
            groups.join(",")
        );
    }
    Ok(())
}

/// The container's mounts from `-v`, `--mount` and `--tmpfs`, then an anonymous volume for
/// each of the image's `VOLUME`s (`image_volumes`) no mount covers; the warnings its host
/// binds deserve (a risky source, or one its root cannot write), and the claims on its volumes.
/// What was made before a failure is let go of (its anonymous volumes removed).
fn mounts_for(
    args: &RunArgs,
    cwd: &std::path::Path,
    (policy_name, image_volumes): (&str, &[String]),
    idmap: &IdMap,
    store: &Store,
) -> anyhow::Result<MountsMade> {
    let mut made = MountsMade::default();
    match made_mounts(
        &mut made,
        args,
        cwd,
        (policy_name, image_volumes),
        idmap,
        store,
    ) {
        Ok(()) => Ok(made),
        Err(e) => {
            made.hold.release(store.root());
            Err(e)
        }
    }
}

/// [`mounts_for`]'s work, into `made`.
fn made_mounts(
    made: &mut MountsMade,
    args: &RunArgs,
    cwd: &std::path::Path,
    (policy_name, image_volumes): (&str, &[String]),
    idmap: &IdMap,
    store: &Store,
) -> anyhow::Result<()> {
    let volumes = Volumes::of_store(store.root());
    let ctx = MountContext {
        policy_name,
        idmap,
        volumes: &volumes,
    };
    for v in &args.volume {
        made.add(&ctx, ("-v", v), spec::parse_volume(v, cwd)?)?;
    }
    for m in &args.mount {
        let parsed = spec::parse_mount(m, cwd)?;
        if let VolumeArg::Host(MountSpec::Bind { source, .. }) = &parsed {
            check_mount_source(m, source)?;
        }
        made.add(&ctx, ("--mount", m), parsed)?;
    }
    for t in &args.tmpfs {
        made.mounts.push(spec::parse_tmpfs(t)?);
    }
    check_duplicate_targets(&made.mounts)?;
    for from in &args.volumes_from {
        add_volumes_from(made, &ctx, from, store)?;
    }
    // docker's: an image's VOLUME gets its anonymous volume unless the run mounts something
    // (a bind, a volume, a tmpfs) at that very path.
    for target in image_volumes {
        let covered = made
            .mounts
            .iter()
            .any(|m| spec::normalize_container_path(m.target()) == *target);
        if covered {
            continue;
        }
        spec::check_mount_target("the image's VOLUME", target)?;
        let anonymous = VolumeArg::Anonymous {
            target: target.clone(),
            read_only: false,
            no_copy: false,
        };
        made.add(&ctx, ("the image's VOLUME", target), anonymous)?;
        made.from_image.push(target.clone());
    }
    parents_first(&mut made.mounts);
    Ok(())
}

/// Puts a parent before what is mounted inside it (an image's `/var/lib/db` before the run's
/// `-v /var/lib/db/sub`), which would otherwise be hidden under it: docker's (and podman's)
/// order, by path depth, the given order kept among equals.
fn parents_first(mounts: &mut [MountSpec]) {
    mounts.sort_by_key(|m| {
        spec::normalize_container_path(m.target())
            .matches('/')
            .count()
    });
}

/// Two mounts of the run at one path (`-v /d -v data:/d/`): docker's daemon refuses them with
/// this line rather than let one hide the other. (podman 4.3 takes a repeated anonymous one.)
fn check_duplicate_targets(mounts: &[MountSpec]) -> anyhow::Result<()> {
    let mut seen = std::collections::HashSet::new();
    for m in mounts {
        let target = spec::normalize_container_path(m.target());
        if !seen.insert(target.clone()) {
            anyhow::bail!(
                "Duplicate mount point: {target} (two of -v, --mount and --tmpfs mount there)"
            );
        }
    }
    Ok(())
}

/// `--volumes-from CONTAINER[:ro|rw]`: adds the volumes (by name) and binds of CONTAINER's
/// spec at their paths, read-only or read-write as the mode says (else as they are there),
/// through the checks of `-v`; its tmpfs mounts are its own, as in docker. A path the run
/// mounts already (its own flags', or an earlier `--volumes-from`) keeps that mount.
fn add_volumes_from(
    made: &mut MountsMade,
    ctx: &MountContext<'_>,
    arg: &str,
    store: &Store,
) -> anyhow::Result<()> {
    let (name, read_only) = parse_volumes_from(arg)?;
    let (dir, _) = crate::runtime::state::find(store.root(), name)
        .map_err(|_| anyhow::anyhow!("--volumes-from {arg}: no such container: {name}"))?;
    let spec = dir
        .load_spec(name)
        .with_context(|| format!("--volumes-from {arg}"))?;
    for mount in spec.mounts {
        let target = spec::normalize_container_path(mount.target());
        let covered = made
            .mounts
            .iter()
            .any(|m| spec::normalize_container_path(m.target()) == target);
        let parsed = match mount {
            _ if covered => continue,
            MountSpec::Bind {
                source,
                target,
                read_only: was,
                ownership,
            } => VolumeArg::Host(MountSpec::Bind {
                source,
                target,
                read_only: read_only.unwrap_or(was),
                ownership,
            }),
            MountSpec::Volume {
                name,
                target,
                read_only: was,
                ..
            } => {
                // Mounted, not made again: one removed since (`volume rm` after its `rm`) is
                // said rather than made afresh, named by the other's anonymous name.
                ctx.volumes
                    .get(&name)
                    .with_context(|| format!("--volumes-from {arg}: volume {name}"))?;
                VolumeArg::Named {
                    name,
                    target,
                    read_only: read_only.unwrap_or(was),
                    no_copy: false,
                }
            }
            MountSpec::Tmpfs { .. } => continue,
        };
        made.add(ctx, ("--volumes-from", arg), parsed)?;
    }
    Ok(())
}

/// `CONTAINER[:ro|rw]`: the container, and the mode forced on its mounts (`None`: each keeps
/// its own). A container name has no `:`, so the last one starts the mode.
fn parse_volumes_from(arg: &str) -> anyhow::Result<(&str, Option<bool>)> {
    let (name, mode) = match arg.rsplit_once(':') {
        Some((name, "ro")) => (name, Some(true)),
        Some((name, "rw")) => (name, Some(false)),
        Some((_, mode)) => {
            anyhow::bail!("--volumes-from {arg}: the mode {mode:?} is not ro or rw")
        }
        None => (arg, None),
    };
    if name.is_empty() {
        anyhow::bail!("--volumes-from {arg}: no container named");
    }
    Ok((name, mode))
}

/// `--mount type=bind`'s source must exist (docker's daemon refuses it with this line; `-v`
/// would have made it).
fn check_mount_source(arg: &str, source: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::metadata(source) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "--mount {arg:?}: invalid mount config for type \"bind\": bind source path does not exist: {}",
            source.display()
        ),
        Err(e) => anyhow::bail!("--mount {arg:?}: {}: {e}", source.display()),
    }
}

/// What the checks of a host bind or a named volume need.
struct MountContext<'a> {
    policy_name: &'a str,
    idmap: &'a IdMap,
    volumes: &'a Volumes,
}

/// The mounts made so far, their warnings and the claims on their volumes.
#[derive(Default)]
struct MountsMade {
    mounts: Vec<MountSpec>,
    warnings: Vec<String>,
    hold: VolumeHold,
    /// The targets of the image's `VOLUME`s given an anonymous volume.
    from_image: Vec<String>,
}

/// The claims on a new container's volumes, those on the anonymous volumes made for it apart.
/// Let go of with [`VolumeHold::release`]; merely dropped (the `run -d` caller, whose monitor
/// keeps its copies) it lets go of the claims and removes nothing.
#[derive(Debug, Default)]
pub(super) struct VolumeHold {
    claims: Vec<volume::VolumeClaim>,
    anonymous: Vec<volume::VolumeClaim>,
}

impl VolumeHold {
    /// The anonymous volumes made for the container.
    fn anonymous_names(&self) -> Vec<String> {
        self.anonymous
            .iter()
            .map(|c| c.name().to_string())
            .collect()
    }

    /// Lets go of the claims once the container has ended, or was never made: each anonymous
    /// volume made for it that no container mounts any more (its `--rm` container removed, or
    /// none made) is removed, as docker leaves none behind then; one a kept container mounts
    /// stays for `rm -v` or `volume prune`.
    pub(super) fn release(self, store_root: &std::path::Path) {
        drop(self.claims);
        let volumes = Volumes::of_store(store_root);
        let idmap = IdMap::for_this_process();
        for claim in self.anonymous {
            let name = claim.name().to_string();
            if let Err(e) = volumes.remove_claimed(store_root, claim, &idmap) {
                say(format!(
                    "rsafe: warning: cannot remove anonymous volume {name}: {e}"
                ));
            }
        }
    }
}

impl MountsMade {
    /// Adds the mount `parsed` of `flag` (`-v` or `--mount`, and its argument): a host bind with
    /// its checks, or the named volume claimed and made when missing.
    fn add(
        &mut self,
        ctx: &MountContext<'_>,
        flag: (&'static str, &str),
        parsed: VolumeArg,
    ) -> anyhow::Result<()> {
        let mount = match parsed {
            VolumeArg::Host(mount) => {
                let risks = risky_bind(flag, &mount, ctx.policy_name)?;
                check_chown(flag, &mount)?;
                // A risky source gets its warning, not advice on how to write to it.
                if risks.is_empty() {
                    self.warnings
                        .extend(unwritable_bind_hint(flag, &mount, ctx.idmap));
                }
                self.warnings.extend(risks);
                mount
            }
            VolumeArg::Anonymous {
                target,
                read_only,
                no_copy,
            } => {
                let (volume, claim) = ctx
                    .volumes
                    .create_anonymous(volume::root_owner(ctx.idmap))
                    .with_context(|| format!("{} {}: anonymous volume", flag.0, flag.1))?;
                self.hold.anonymous.push(claim);
                MountSpec::Volume {
                    source: volume.data(),
                    populate: !no_copy,
                    name: volume.name,
                    target,
                    read_only,
                }
            }
            VolumeArg::Named {
                name,
                target,
                read_only,
                no_copy,
            } => {
                self.hold.claims.push(
                    ctx.volumes
                        .claim(&name)
                        .with_context(|| format!("volume {name}"))?,
                );
                let (volume, _) = ctx
                    .volumes
                    .ensure(&name, volume::root_owner(ctx.idmap))
                    .with_context(|| format!("volume {name}"))?;
                MountSpec::Volume {
                    source: volume.data(),
                    populate: !no_copy && volume.is_empty()?,
                    name,
                    target,
                    read_only,
                }
            }
        };
        self.mounts.push(mount);
        Ok(())
    }
}

/// The flags' limits over the policy's; `--learn` adds a memory limit (so that the peak can be
/// read) where none is set.
fn limits_for(args: &RunArgs, policy: &crate::runtime::policy::Policy) -> anyhow::Result<Limits> {
    if let Some(bytes) = args.memory {
        check_memory(bytes)?;
    }
    Ok(Limits {
        memory: args
            .memory
            .or(policy.limits.memory)
            .or_else(|| args.learn.as_ref().and_then(|_| learning_memory_limit())),
        pids: args.pids_limit.or(policy.limits.pids),
        cpus: args.cpus.or(policy.limits.cpus),
    })
}

/// `run -d`: the monitor keeps the volume claims (its copies of them) for the container's life
/// and then lets go of them ([`VolumeHold::release`]: a `--rm` container's anonymous volumes
/// go), and with `--learn` the recorder: it writes the policy when the container ends, and says so
/// in the container's log.
fn run_detached(
    request: RunRequest,
    learning: Option<(PathBuf, Learned, Recorder)>,
    run_label: String,
    policy: &crate::runtime::policy::Policy,
    notify: impl FnMut(Note),
    hold: VolumeHold,
) -> anyhow::Result<i32> {
    let learning = match learning {
        Some((out, learned, recorder)) => {
            let out = std::path::absolute(&out).with_context(|| out.display().to_string())?;
            Some((out, learned, recorder))
        }
        None => None,
    };
    let store_root = request.store_root.clone();
    // The monitor's copy lets go of the claims once the container ends; the caller's, if the
    // detach fails before its fork (no monitor, no container), does it here.
    let hold = std::cell::Cell::new(Some(hold));
    let ended = |result: Result<Exit, RunError>| {
        let started = result.is_ok();
        let code = exit_code(result);
        if let Some(hold) = hold.take() {
            hold.release(&store_root);
        }
        match learning {
            Some((out, learned, recorder)) if started => {
                match write_learned(&out, learned, &recorder, run_label, policy) {
                    Ok(()) => code,
                    Err(e) => {
                        say(format!("rsafe: {e:#}"));
                        125
                    }
                }
            }
            _ => code,
        }
    };
    match detach::run_detached(request, notify, ended) {
        Ok(outcome) => Ok(detached_code(outcome)),
        Err(e) => {
            if let Some(hold) = hold.take() {
                hold.release(&store_root);
            }
            Err(e.into())
        }
    }
}

/// `--learn` without a memory limit: the machine's memory, so that the container gets a
/// memory cgroup whose peak can be read (the limit itself changes nothing). Root only: a
/// rootless run on cgroup v1 has no memory cgroup and would fall back to an rlimit.
fn learning_memory_limit() -> Option<u64> {
    if !nix::unistd::Uid::effective().is_root() {
        return None;
    }
    crate::runtime::stats::host_memory()
}

/// What the learned file's comments say ran: the image and the command, redacted
/// ([`learn::writer::label`]).
fn learn_label(image: &str, command: &[String]) -> String {
    learn::writer::label(image, command)
}

/// Adds the run to the learned policy at `out` and says what was written.
fn write_learned(
    out: &std::path::Path,
    mut learned: Learned,
    recorder: &Recorder,
    what: String,
    policy: &crate::runtime::policy::Policy,
) -> anyhow::Result<()> {
    let seen = recorder.snapshot();
    let now = crate::runtime::oci::state::rfc3339_now();
    let when = format!("{}Z", now.get(..19).unwrap_or(&now));
    learned.add_run(
        Run {
            when: when.clone(),
            what,
        },
        &seen,
        policy,
    );
    // Each `rsafe exec` into the container, as a run of its own.
    for (label, exec) in &seen.execs {
        let run = Run {
            when: when.clone(),
            what: label.clone(),
        };
        learned.add_run(run, exec, policy);
    }
    learned.write(out, policy)?;
    say(format!(
        "rsafe: learned {} syscalls, {} argument classes, {} landlock rules, {} capabilities over {} run(s) ({} calls seen){} → {} and {}",
        learned.syscalls.len(),
        learned.arg_class_count(),
        learned.path_rules(),
        learned.capabilities.len(),
        learned.runs.len(),
        seen.notifications,
        if seen.paths_truncated {
            "; too many paths, the rest were not kept"
        } else {
            ""
        },
        out.display(),
        learn::writer::profile_path(out).display()
    ));
    Ok(())
}

/// The smallest `--memory` accepted: Docker's floor (6 MiB). Below it the container is
/// OOM-killed as it starts (its init and shell alone need more), which looks like a crash.
const MIN_MEMORY: u64 = 6 << 20;

fn check_memory(bytes: u64) -> anyhow::Result<()> {
    if bytes < MIN_MEMORY {
        anyhow::bail!(
            "--memory {bytes} bytes is below the minimum of 6 MiB (as in docker): the container would be killed for lack of memory as it starts"
        );
    }
    Ok(())
}

/// Policies that refuse the bind mounts others only warn about.
const POLICIES_REFUSING_RISKY_MOUNTS: &[&str] = &["strict"];

/// The warnings for `-v ARG` (bind-mounting `mount`) that the running-container audit would
/// rate high or critical (the host's `/`, a runtime socket, the host's `/proc`, `/sys` or
/// `/dev`, a sensitive host directory), one line each; an error instead under the strict
/// policy. Said before the container starts, so nobody learns it from `rsafe audit` later.
fn risky_bind(
    (flag, arg): (&str, &str),
    mount: &MountSpec,
    policy: &str,
) -> anyhow::Result<Vec<String>> {
    let MountSpec::Bind {
        source, read_only, ..
    } = mount
    else {
        return Ok(Vec::new());
    };
    let risks: Vec<String> = bind_source_risks(source, *read_only)
        .into_iter()
        .filter(|r| r.severity >= Severity::High)
        .map(|r| format!("{} ({}, {})", r.what, r.rule.id, r.severity))
        .collect();
    if let Some(first) = risks.first()
        && POLICIES_REFUSING_RISKY_MOUNTS.contains(&policy)
    {
        anyhow::bail!("{flag} {arg:?} exposes {first}: the {policy} policy refuses it");
    }
    Ok(risks
        .into_iter()
        .map(|r| format!("{flag} {arg} exposes {r}"))
        .collect())
}

/// `-v SRC:DST:U` chowns SRC's tree on the host: refused where the running-container audit
/// rates the source high or critical as a writable mount (the host's `/`, `/etc`, `/usr`, a
/// whole home directory, a runtime socket…), whatever `ro` says, since a chown is a write.
fn check_chown((flag, arg): (&str, &str), mount: &MountSpec) -> anyhow::Result<()> {
    let MountSpec::Bind {
        source,
        ownership: BindOwnership::Chown,
        ..
    } = mount
    else {
        return Ok(());
    };
    if let Some(r) = bind_source_risks(source, false)
        .into_iter()
        .find(|r| r.severity >= Severity::High)
    {
        anyhow::bail!(
            "{flag} {arg:?}: U would chown {} ({}, {}) to the container's root: refused",
            r.what.trim_end_matches(" (rw)"),
            r.rule.id,
            r.severity
        );
    }
    Ok(())
}

/// Gives each `:U` source to the host ids of container root, just before the container starts.
pub(super) fn chown_sources(
    mounts: &[MountSpec],
    idmap: &IdMap,
    notify: &mut dyn FnMut(Note),
) -> anyhow::Result<()> {
    let owner = volume::root_owner(idmap);
    for mount in mounts {
        if let MountSpec::Bind {
            source,
            ownership: BindOwnership::Chown,
            ..
        } = mount
        {
            let n = volume::chown_tree(source, owner)?;
            notify(Note::Info(format!(
                "-v {}:U: {n} entries given to host uid {} gid {} (container root)",
                source.display(),
                owner.0,
                owner.1
            )));
        }
    }
    Ok(())
}

/// When root runs a container, container root is an unprivileged host id: a writable bind of
/// a host directory or file it does not own (and that is not writable for everyone) gives the workload
/// "Permission denied" on every write. Said before it starts, with the two ways out.
fn unwritable_bind_hint(
    (flag, arg): (&str, &str),
    mount: &MountSpec,
    idmap: &IdMap,
) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let MountSpec::Bind {
        source,
        read_only: false,
        ownership: BindOwnership::Host,
        ..
    } = mount
    else {
        return None;
    };
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let root = volume::root_owner(idmap).0;
    let meta = std::fs::metadata(source).ok()?;
    // Sockets and devices have their own warnings (risky_bind); this is about data.
    let data = meta.is_dir() || meta.is_file();
    if !data || meta.uid() == root || meta.mode() & 0o002 != 0 {
        return None;
    }
    Some(format!(
        "{flag} {arg}: {} belongs to host uid {} but container root is host uid {root}, so writes to it from the container get \"Permission denied\"; {}add :idmap (an id-mapped mount: the owner shows as container root) or :U (chown the tree to container root)",
        source.display(),
        meta.uid(),
        if flag == "-v" {
            ""
        } else {
            "mount it with -v and "
        }
    ))
}

/// The exit code of `run -d` or `start -d`, after printing the container's id (it runs) or why
/// it could not start.
pub(super) fn detached_code(outcome: Detached) -> i32 {
    match outcome {
        Detached::Started(id) => {
            println!("{id}");
            0
        }
        Detached::Failed { code, message } => {
            say(format!("rsafe: {message}"));
            code
        }
    }
}

/// Prints what the runner tells the user: warnings always, the rest with `verbose`. Never
/// panics on a closed stderr (`rsafe run … 2>&1 | head`): the container must still be waited
/// for and cleaned up.
pub(super) fn notes_to_stderr(verbose: bool) -> impl FnMut(Note) {
    move |note| match note {
        Note::Warning(w) => say(format!("rsafe: warning: {w}")),
        Note::Info(i) if verbose => say(format!("rsafe: {i}")),
        Note::Info(_) | Note::Started { .. } | Note::Ended => {}
    }
}

fn say(line: String) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The exit code of a container run, after saying how it ended when that needs words (an OOM
/// kill) or why it could not run.
pub(super) fn exit_code(result: Result<Exit, RunError>) -> i32 {
    match result {
        Ok(exit) => {
            if let Some(line) = exit.report() {
                say(format!("rsafe: {line}"));
            }
            exit.code
        }
        Err(e) => {
            // The container's own failure codes (126, 127) are the result, not rsafe's 125.
            say(format!("rsafe: {e}"));
            e.exit_code()
        }
    }
}

/// The gate a run is under: its threshold, and whether to say what it did.
#[derive(Debug, Clone, Copy)]
struct GateRun {
    threshold: Severity,
    verbose: bool,
}

/// The lower layers, image defaults and display name for `target`: a plain directory (not an
/// OCI layout) is a rootfs of its own; anything else is an image, resolved (loaded or pulled
/// into the store when needed), put through the gate when one is in force, and only then
/// extracted into the shared layer cache with the ids this container maps (see
/// [`layer_ownership`]): the gate audits the store's verified blobs, so a refused image never
/// has a file of it written out. Loading, pulling and extracting run in helper processes (they
/// are parallel, and rsafe itself must stay single-threaded to start the container); an image
/// already in the store with its layers cached needs none.
fn root_filesystem(
    store: &Store,
    target: &str,
    idmap: &IdMap,
    global: &Global,
    gated: Option<GateRun>,
) -> anyhow::Result<PreparedRoot> {
    let path = PathBuf::from(target);
    if path.is_dir() && !load::is_load_spec(target) {
        if let Some(gated) = gated {
            let directory = Gated {
                typed: target,
                manifest: None,
            };
            gate::enforce(store, gated.threshold, &directory, gated.verbose)?;
        }
        let rootfs = path.canonicalize().with_context(|| target.to_string())?;
        return Ok(PreparedRoot {
            lowers: vec![rootfs],
            defaults: ImageDefaults::default(),
            name: target.to_string(),
            exposed: Vec::new(),
        });
    }
    let (name, image) = stored_image(store, target)?;
    if let Some(gated) = gated {
        let manifest = image.manifest_digest.to_string();
        let gated_image = Gated {
            typed: target,
            manifest: Some(&manifest),
        };
        gate::enforce(store, gated.threshold, &gated_image, gated.verbose)?;
    }
    let lowers = image_layers(store, &name, &image, idmap, global.verbose)?;
    Ok(PreparedRoot::of_image(name, &image, lowers))
}

/// The image `target` names, in the store: read in this process when it is there already
/// (no thread, nothing written), else loaded from its path or pulled by a helper process,
/// which hands back its display name and manifest digest. Nothing is extracted.
fn stored_image(store: &Store, target: &str) -> anyhow::Result<(String, Image)> {
    if let Ok(Some(resolved)) = resolve::resolve_stored(store, target, &ResolveOptions::default()) {
        return Ok((resolved.name, resolved.image));
    }
    let work = || {
        let resolved = resolve::resolve(store, target, &ResolveOptions::default())
            .with_context(|| format!("image {target}"))
            .map_err(|e| super::one_line(&e))?;
        Ok((resolved.name, resolved.image.manifest_digest.to_string()))
    };
    let (name, manifest) = helper::in_subprocess(work)
        .context("image preparation")?
        .map_err(|message| anyhow::anyhow!(message))?;
    let digest: Digest = manifest
        .parse()
        .with_context(|| format!("the manifest digest of {target}"))?;
    let image = Image::from_manifest(store, digest).with_context(|| format!("image {target}"))?;
    Ok((name, image))
}

/// The image's layer directories, bottom first: from the layer cache when all are there (no
/// helper process: forking one and starting its thread pool was ~4 ms of every container
/// start), else extracted by a helper first.
fn image_layers(
    store: &Store,
    name: &str,
    image: &Image,
    idmap: &IdMap,
    verbose: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let ownership = layer_ownership(idmap);
    if let Ok(Some(lowers)) = LayerCache::new(store, ownership).cached(image) {
        return Ok(lowers);
    }
    let work =
        || extract_layers(store, name, image, ownership, verbose).map_err(|e| super::one_line(&e));
    let extracted = if ownership == Ownership::Preserve {
        // Extracted as the container's root, inside its user namespace: the image's ids land
        // on the host ids the container maps them to (only root may chown to them otherwise).
        helper::as_container_root(idmap, work)
    } else {
        helper::in_subprocess(work)
    }
    .context("image preparation")?;
    extracted.map_err(|message| anyhow::anyhow!(message))
}

/// The root filesystem a container is made from.
#[derive(Debug)]
struct PreparedRoot {
    /// Lower layers, bottom first.
    lowers: Vec<PathBuf>,
    defaults: ImageDefaults,
    /// What `rsafe ps` shows.
    name: String,
    /// The config's ExposedPorts (`80/tcp`), for `-P`.
    exposed: Vec<String>,
}

impl PreparedRoot {
    /// An image's root: its layers (cache directories, bottom first) and its config's defaults.
    fn of_image(name: String, image: &Image, lowers: Vec<PathBuf>) -> PreparedRoot {
        let config = image.config.config().as_ref();
        PreparedRoot {
            lowers,
            defaults: ImageDefaults::from_oci(config),
            exposed: config
                .and_then(|c| c.exposed_ports().clone())
                .unwrap_or_default(),
            name,
        }
    }
}

/// Extracts the layers of `image` that are not in the cache yet (in parallel: run in a helper).
fn extract_layers(
    store: &Store,
    name: &str,
    image: &Image,
    ownership: Ownership,
    verbose: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let cache = LayerCache::new(store, ownership);
    let (lowers, stats) = cache
        .ensure_with_stats(image, &unpack::Limits::default())
        .with_context(|| format!("extract the layers of {name}"))?;
    if verbose && stats.layers > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "rsafe: extracted {} layer(s) of {name} into {}",
            stats.layers,
            cache.dir().display()
        );
        if stats.devices_skipped > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "rsafe: skipped {} device node(s) of the image: only the host's root may make them (the container's /dev comes from rsafe)",
                stats.devices_skipped
            );
        }
    }
    Ok(lowers)
}

/// Who owns an image's files on disk so that the container sees them as the image says:
/// - root's container (one range, ids 0..n on host ids h..h+n): the ids shifted into it;
/// - a rootless container with a subordinate range: the image's ids as they are, written from
///   inside the container's user namespace (so on the host they are the ids it maps them to);
/// - a rootless container with only the caller's id: everything the caller's, the image's
///   owners kept in an xattr.
fn layer_ownership(idmap: &IdMap) -> Ownership {
    match (idmap.uids.as_slice(), idmap.gids.as_slice()) {
        ([u], [g]) if u.container == 0 && g.container == 0 && u.size > 1 && u.size == g.size => {
            Ownership::Shift {
                uid: u.host,
                gid: g.host,
                count: u.size,
            }
        }
        _ if !idmap.is_single() => Ownership::Preserve,
        _ => Ownership::Caller,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::idmap::{IdRange, MapWriter};

    #[test]
    fn volumes_from_takes_a_container_and_ro_or_rw() {
        assert_eq!(parse_volumes_from("db").unwrap(), ("db", None));
        assert_eq!(parse_volumes_from("db:ro").unwrap(), ("db", Some(true)));
        assert_eq!(parse_volumes_from("db:rw").unwrap(), ("db", Some(false)));
        for bad in ["db:z", "db:", ":ro", ""] {
            assert!(parse_volumes_from(bad).is_err(), "{bad}");
        }
    }

    fn map(ranges: &[(u32, u32, u32)]) -> IdMap {
        let r: Vec<IdRange> = ranges
            .iter()
            .map(|&(container, host, size)| IdRange {
                container,
                host,
                size,
            })
            .collect();
        IdMap {
            uids: r.clone(),
            gids: r,
            writer: MapWriter::Direct,
            setgroups: true,
        }
    }

    fn tmpfs(target: &str) -> MountSpec {
        MountSpec::Tmpfs {
            target: target.into(),
            size: None,
            mode: None,
        }
    }

    #[test]
    fn mounts_go_parents_first_and_one_path_is_mounted_once() {
        let mut mounts: Vec<MountSpec> = ["/a/b/c", "/z", "/a/b", "/y/", "/a//b/./d"]
            .into_iter()
            .map(tmpfs)
            .collect();
        parents_first(&mut mounts);
        let order: Vec<&str> = mounts.iter().map(MountSpec::target).collect();
        assert_eq!(order, ["/z", "/y/", "/a/b", "/a/b/c", "/a//b/./d"]);
        assert!(check_duplicate_targets(&mounts).is_ok());
        mounts.push(tmpfs("/a/b/"));
        let err = check_duplicate_targets(&mounts).unwrap_err().to_string();
        assert!(err.starts_with("Duplicate mount point: /a/b "), "{err}");
    }

    #[test]
    fn a_network_is_a_mode_a_container_or_a_named_network() {
        assert_eq!(
            parse_network("none"),
            Ok(NetworkArg::Mode(NetworkMode::None))
        );
        assert_eq!(
            parse_network("container:web"),
            Ok(NetworkArg::Container("web".into()))
        );
        assert_eq!(
            parse_network("backend_1"),
            Ok(NetworkArg::Named("backend_1".into()))
        );
        for bad in ["-x", "a/b", "", "container:"] {
            assert!(parse_network(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn memory_has_dockers_floor() {
        assert!(check_memory(6 << 20).is_ok());
        assert!(check_memory(1 << 30).is_ok());
        for low in [1, 4096, (6 << 20) - 1] {
            let err = check_memory(low).unwrap_err().to_string();
            assert!(err.contains("below the minimum of 6 MiB"), "{err}");
        }
    }

    #[test]
    fn layer_ownership_follows_the_id_map() {
        assert_eq!(
            layer_ownership(&map(&[(0, 1_000_000_000, 65536)])),
            Ownership::Shift {
                uid: 1_000_000_000,
                gid: 1_000_000_000,
                count: 65536
            }
        );
        assert_eq!(
            layer_ownership(&map(&[(0, 1000, 1), (1, 100_000, 65535)])),
            Ownership::Preserve
        );
        assert_eq!(layer_ownership(&map(&[(0, 1000, 1)])), Ownership::Caller);
    }
}
