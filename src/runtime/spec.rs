//! What to run: everything the runner needs, merged from the image config, the command line
//! and the policy — and nothing about *how* it is isolated.
//!
//! An image is just "a list of lower directories + a config": [`RootfsSpec`] holds the
//! directories (bottom → top; a plain rootfs directory is a list of one) and
//! [`ImageDefaults`] the parts of the config that shape the process. Docker's merge rules apply:
//! arguments replace `Cmd`, `--entrypoint` replaces `Entrypoint` and drops `Cmd`, `-e` and
//! `--env-file` override the image's variables by name. The policy contributes the
//! [`Confinement`], the masked and read-only paths, and default limits and network.

use crate::bounded;
use std::path::{Path, PathBuf};

use ::caps::Capability;

use super::landlock::LandlockPolicy;
use super::policy::Policy;
pub use super::policy::{Limits, NetworkMode};
use super::seccomp::SeccompProfile;

/// The default `PATH` when neither the image nor the flags set one (Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What can be wrong with the request itself (before anything is started).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("no command: give one after the image, or use an image with Entrypoint/Cmd")]
    NoCommand,
    #[error("{path}: {source}")]
    EnvFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: more than {limit} bytes; an environment that large cannot be passed to a \
         program (the kernel's limit for all arguments and variables is 2 MiB at most)"
    )]
    EnvFileTooLarge { path: PathBuf, limit: u64 },
    #[error("{path}:{line}: {detail}")]
    EnvFileLine {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error("environment variable {0:?}: {1}")]
    Env(String, &'static str),
    #[error("{what} {value:?}: {detail}")]
    Invalid {
        what: &'static str,
        value: String,
        detail: String,
    },
}

fn invalid(what: &'static str, value: &str, detail: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        what,
        value: value.to_string(),
        detail: detail.into(),
    }
}

/// `-p`, `--dns`, `--dns-search` and `--add-host`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetworkOptions {
    /// Host ports forwarded into the container (slirp4netns only).
    pub ports: Vec<super::network::PortMapping>,
    /// Name servers for `/etc/resolv.conf` instead of the network's own.
    pub dns: Vec<std::net::IpAddr>,
    /// Search domains for `/etc/resolv.conf` instead of the host's.
    pub dns_search: Vec<String>,
    /// Extra `/etc/hosts` lines: name and address.
    pub hosts: Vec<(String, std::net::IpAddr)>,
    /// `--network container:NAME`: the running container whose user and network namespaces
    /// this one joins (see [`super::netns_join`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<String>,
    /// `--network NAME`: the named network (`rsafe network create`) this container is put on,
    /// through a bridge and a veth pair (see [`super::bridge`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named: Option<String>,
}

/// Everything needed to start one container.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    pub rootfs: RootfsSpec,
    pub process: ProcessSpec,
    /// The UTS namespace's hostname; `None` is the container id's first 12 characters.
    pub hostname: Option<String>,
    /// Volumes and tmpfs mounts, mounted in this order after the standard ones.
    pub mounts: Vec<MountSpec>,
    pub network: NetworkMode,
    /// Published ports, DNS and extra hosts: what the container's network files say.
    #[serde(default)]
    pub net: NetworkOptions,
    pub limits: Limits,
    /// The pid limit is the policy's fork-bomb guard, not one the user asked for: where no
    /// cgroup can take it, its per-user stand-in is said with `--verbose` only.
    #[serde(default)]
    pub pids_limit_from_policy: bool,
    /// Whether rsafe's init is pid 1 (the default) or the workload is.
    pub init: bool,
    /// Paths in `/proc` and `/sys` hidden behind `/dev/null` or an empty read-only tmpfs
    /// (kernel memory, keyrings, timers: host details and host-wide knobs).
    pub masked_paths: Vec<String>,
    /// Paths in `/proc` made read-only (kernel tunables).
    pub readonly_paths: Vec<String>,
    pub confinement: Confinement,
    /// docker's settings beyond the process and its isolation: labels, rlimits, extra groups,
    /// `/dev/shm`'s size, how `stop` ends it. Absent in older saved specs.
    #[serde(default)]
    pub options: ContainerOptions,
}

/// `--label`, `--ulimit`, `--group-add`, `--shm-size`, `--stop-signal` and `--stop-timeout`:
/// kept with the container so that `start`, `stop` and `inspect` see them as `run` set them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainerOptions {
    /// `-l KEY=VALUE`: shown by `inspect` as `Config.Labels`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--ulimit`: set in the workload before it starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    /// `--group-add`: names (from the image's `/etc/group`) or gids, added to the user's
    /// supplementary groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// `--shm-size`: the size of `/dev/shm` in bytes (`None`: docker's 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// `--stop-signal`: what `stop` sends first (`None`: SIGTERM), as `SIGUSR1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `--stop-timeout`: `stop`'s grace in seconds when it is given no `-t` (`None`: 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    /// `--restart` (`None`: no): what the monitor of a `run -d` container does when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartPolicy>,
    /// The anonymous volumes made for it (`-v /dst`, the image's VOLUMEs): what `rm -v` and
    /// `--rm` remove, as docker removes those of its mounts that had no source; a volume
    /// mounted by name stays, even an anonymous one another container made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anonymous_volumes: Vec<String>,
    /// The targets of those made for the image's `VOLUME`s, not asked for by a mount:
    /// `inspect` prints their Mode as docker does for those ("", a `-v`'s being "z").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_volumes: Vec<String>,
}

/// docker's restart policies other than `no`, carried out by a detached container's monitor
/// ([`super::detach`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// `on-failure[:N]`: again after a non-zero exit, N times at most (`None`: no limit).
    OnFailure { max: Option<u32> },
    /// `always`: again after any exit, until `rsafe stop`.
    Always,
    /// `unless-stopped`: as `always` while it runs; `rsafe system restart` (a boot's, for
    /// docker's daemon start) starts it only if `rsafe stop` did not stop it.
    UnlessStopped,
}

impl RestartPolicy {
    /// Whether a run that ended with `code`, after `restarts` restarts, is started again.
    pub fn restarts_after(self, code: i32, restarts: u32) -> bool {
        match self {
            RestartPolicy::OnFailure { max } => code != 0 && max.is_none_or(|m| restarts < m),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }
}

/// Parses `--restart no|on-failure[:N]|always|unless-stopped` (`no` is `None`).
pub fn parse_restart(s: &str) -> Result<Option<RestartPolicy>, SpecError> {
    let bad = || {
        invalid(
            "--restart",
            s,
            "expected no, on-failure[:N], always or unless-stopped",
        )
    };
    match s.split_once(':') {
        None => match s {
            "no" => Ok(None),
            "on-failure" => Ok(Some(RestartPolicy::OnFailure { max: None })),
            "always" => Ok(Some(RestartPolicy::Always)),
            "unless-stopped" => Ok(Some(RestartPolicy::UnlessStopped)),
            _ => Err(bad()),
        },
        Some(("on-failure", n)) => {
            let max = n.parse::<u32>().map_err(|_| bad())?;
            Ok(Some(RestartPolicy::OnFailure { max: Some(max) }))
        }
        Some(_) => Err(bad()),
    }
}

/// One `--ulimit TYPE=SOFT[:HARD]`: the rlimit docker names TYPE (`nofile`, `nproc`, `core`,
/// …), `u64::MAX` for unlimited (docker's -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ulimit {
    pub name: UlimitName,
    pub soft: u64,
    pub hard: u64,
}

/// The rlimits docker's `--ulimit` names (go-units' `ulimitNameMapping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UlimitName {
    Core,
    Cpu,
    Data,
    Fsize,
    Locks,
    Memlock,
    Msgqueue,
    Nice,
    Nofile,
    Nproc,
    Rss,
    Rtprio,
    Rttime,
    Sigpending,
    Stack,
}

impl UlimitName {
    const ALL: [(UlimitName, &'static str, nix::sys::resource::Resource); 15] = {
        use nix::sys::resource::Resource as R;
        [
            (UlimitName::Core, "core", R::RLIMIT_CORE),
            (UlimitName::Cpu, "cpu", R::RLIMIT_CPU),
            (UlimitName::Data, "data", R::RLIMIT_DATA),
            (UlimitName::Fsize, "fsize", R::RLIMIT_FSIZE),
            (UlimitName::Locks, "locks", R::RLIMIT_LOCKS),
            (UlimitName::Memlock, "memlock", R::RLIMIT_MEMLOCK),
            (UlimitName::Msgqueue, "msgqueue", R::RLIMIT_MSGQUEUE),
            (UlimitName::Nice, "nice", R::RLIMIT_NICE),
            (UlimitName::Nofile, "nofile", R::RLIMIT_NOFILE),
            (UlimitName::Nproc, "nproc", R::RLIMIT_NPROC),
            (UlimitName::Rss, "rss", R::RLIMIT_RSS),
            (UlimitName::Rtprio, "rtprio", R::RLIMIT_RTPRIO),
            (UlimitName::Rttime, "rttime", R::RLIMIT_RTTIME),
            (UlimitName::Sigpending, "sigpending", R::RLIMIT_SIGPENDING),
            (UlimitName::Stack, "stack", R::RLIMIT_STACK),
        ]
    };

    /// docker's name for it.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(n, _, _)| *n == self)
            .map_or("", |(_, s, _)| s)
    }

    /// The kernel's resource.
    pub fn resource(self) -> nix::sys::resource::Resource {
        Self::ALL
            .iter()
            .find(|(n, _, _)| *n == self)
            .map_or(nix::sys::resource::Resource::RLIMIT_CORE, |(_, _, r)| *r)
    }
}

/// Parses `--ulimit TYPE=SOFT[:HARD]` as docker does (go-units `ParseUlimit`): HARD defaults to
/// SOFT, -1 is unlimited, SOFT above HARD is an error.
pub fn parse_ulimit(s: &str) -> Result<Ulimit, SpecError> {
    let bad = |detail: String| invalid("--ulimit", s, detail);
    let (name, values) = s
        .split_once('=')
        .ok_or_else(|| bad("expected TYPE=SOFT[:HARD]".into()))?;
    let name = UlimitName::ALL
        .iter()
        .find(|(_, n, _)| *n == name)
        .map(|(u, _, _)| *u)
        .ok_or_else(|| {
            bad(format!(
                "invalid ulimit type: {name} (core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)"
            ))
        })?;
    let value = |v: &str| match v.parse::<i64>() {
        Ok(-1) => Ok(u64::MAX),
        Ok(n) if n >= 0 => Ok(n as u64),
        _ => Err(bad(format!(
            "{v:?} is not a limit (a number, or -1 for unlimited)"
        ))),
    };
    let (soft, hard) = match values.split(':').collect::<Vec<_>>().as_slice() {
        [soft] => (value(soft)?, value(soft)?),
        [soft, hard] => (value(soft)?, value(hard)?),
        _ => {
            return Err(bad(
                "too many limit value arguments, can only have up to two, `soft[:hard]`".into(),
            ));
        }
    };
    if soft > hard {
        return Err(bad(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    Ok(Ulimit { name, soft, hard })
}

/// Parses `--stop-signal`: a name with or without `SIG` (`SIGUSR1`, `usr1`) or a number;
/// returns the name, `SIGUSR1`.
pub fn parse_stop_signal(s: &str) -> Result<String, SpecError> {
    use std::str::FromStr;
    let signal = match s.parse::<i32>() {
        Ok(n) => nix::sys::signal::Signal::try_from(n).ok(),
        Err(_) => {
            let upper = s.to_ascii_uppercase();
            let name = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            nix::sys::signal::Signal::from_str(&name).ok()
        }
    };
    match signal {
        Some(nix::sys::signal::Signal::SIGKILL | nix::sys::signal::Signal::SIGSTOP) | None => {
            Err(invalid(
                "--stop-signal",
                s,
                "expected a signal that can be caught, like SIGTERM, SIGINT, SIGQUIT, SIGUSR1 or 15",
            ))
        }
        Some(sig) => Ok(sig.as_str().to_string()),
    }
}

/// Parses `-l KEY=VALUE` (`KEY` alone is an empty value, as in docker).
pub fn parse_label(s: &str) -> Result<(String, String), SpecError> {
    let (key, value) = s.split_once('=').unwrap_or((s, ""));
    if key.is_empty() || key.contains('\0') || value.contains('\0') {
        return Err(invalid(
            "--label",
            s,
            "expected KEY=VALUE with a non-empty KEY",
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// How the workload is confined: what the policy (and `--cap-add`, `--cap-drop`,
/// `--seccomp`) says, applied in the container right before `execve`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Confinement {
    /// The policy's name, for `--verbose`.
    pub policy: String,
    /// Kept in the bounding, permitted and effective sets; everything else is dropped.
    pub capabilities: Vec<Capability>,
    pub seccomp: SeccompProfile,
    /// The policy's `[seccomp] report_denials`: the workload's default-denied calls are
    /// reported by name (see [`super::learn::supervisor`]). Absent in older saved specs.
    #[serde(default)]
    pub report_denials: bool,
    pub landlock: LandlockPolicy,
    /// `--require-landlock`: less than full landlock enforcement is an error.
    pub require_landlock: bool,
}

impl Confinement {
    /// The confinement `policy` describes.
    pub fn from_policy(policy: &Policy, require_landlock: bool) -> Confinement {
        Confinement {
            policy: policy.name.clone(),
            capabilities: policy.capabilities.clone(),
            seccomp: policy.seccomp.clone(),
            report_denials: policy.report_denials,
            landlock: policy.landlock.clone(),
            require_landlock,
        }
    }
}

/// The container's root filesystem.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RootfsSpec {
    /// Read-only lower layers, bottom first: an image's extracted layers or one plain rootfs
    /// directory.
    pub lowers: Vec<PathBuf>,
    /// `--read-only`: no writable upper layer at all.
    pub read_only: bool,
}

/// The workload process.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProcessSpec {
    /// argv; `args[0]` is looked up in the container's `PATH` when it has no slash.
    pub args: Vec<String>,
    /// `KEY=VALUE` strings, unique keys, in a stable order.
    pub env: Vec<String>,
    /// Absolute working directory in the container (created when missing).
    pub cwd: String,
    /// `user[:group]` by name or number, resolved against the container's /etc/passwd and
    /// /etc/group; `None` is root.
    pub user: Option<String>,
    /// `-t`: a terminal.
    pub terminal: bool,
    /// `-i`: keep stdin attached (otherwise it is /dev/null).
    pub stdin: bool,
}

/// How a bind mount's files are owned as the container sees them. When root runs a container,
/// container root is an unprivileged host id, so a host directory owned by the caller is not
/// writable for it without one of the two (as with podman).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BindOwnership {
    /// The host's owners, as the container's id map shows them.
    #[default]
    Host,
    /// `:idmap`: an id-mapped mount through the container's user namespace, so files of the
    /// caller appear as container root's and what container root writes is the caller's on
    /// the host. Nothing on disk changes.
    Idmap,
    /// `:U` (podman's): the source tree is chowned, recursively and never through a symlink,
    /// to the host ids of container root before it is mounted. The change stays on disk.
    Chown,
}

/// A mount the user asked for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MountSpec {
    /// `-v SRC:DST[:ro][,idmap|,U]`: a host file or directory bind-mounted into the container.
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
        /// Who the files appear to belong to (`idmap`, `U`).
        #[serde(default)]
        ownership: BindOwnership,
    },
    /// `-v NAME:DST[:ro]`: the named volume NAME (see [`super::volume`]), a directory under
    /// the store that outlives the container.
    Volume {
        name: String,
        /// The volume's `_data` directory.
        source: PathBuf,
        target: String,
        read_only: bool,
        /// Copy what the image has at `target` into it before mounting it: the volume was
        /// created for this run.
        populate: bool,
    },
    /// `--tmpfs DST[:size=…,mode=…]`: a private, memory-backed, writable directory.
    Tmpfs {
        target: String,
        size: Option<u64>,
        mode: Option<u32>,
    },
}

impl MountSpec {
    /// Where in the container it goes.
    pub fn target(&self) -> &str {
        match self {
            MountSpec::Bind { target, .. }
            | MountSpec::Volume { target, .. }
            | MountSpec::Tmpfs { target, .. } => target,
        }
    }

    /// The host directory or file mounted, for a volume of either kind.
    pub fn host_source(&self) -> Option<&Path> {
        match self {
            MountSpec::Bind { source, .. } | MountSpec::Volume { source, .. } => Some(source),
            MountSpec::Tmpfs { .. } => None,
        }
    }
}

/// A `-v` argument: a host path, or a named volume the caller looks up (or creates) in the
/// store.
#[derive(Debug, Clone, PartialEq)]
pub enum VolumeArg {
    Host(MountSpec),
    Named {
        name: String,
        target: String,
        read_only: bool,
        /// `nocopy`: never copy the image's files into it.
        no_copy: bool,
    },
    /// `-v /dst`, `--mount type=volume,target=/dst` (no source): a new anonymous volume (see
    /// [`super::volume`]) made for this container.
    Anonymous {
        target: String,
        read_only: bool,
        no_copy: bool,
    },
}

/// The parts of an image config that shape the process.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// The config's Volumes (a Dockerfile's `VOLUME`): each gets an anonymous volume unless a
    /// mount of the run covers that path. Cleaned, sorted, without duplicates.
    #[serde(default)]
    pub volumes: Vec<String>,
}

impl ImageDefaults {
    /// Takes Entrypoint, Cmd, Env, WorkingDir and User from an OCI image config.
    pub fn from_oci(config: Option<&oci_spec::image::Config>) -> ImageDefaults {
        let Some(c) = config else {
            return ImageDefaults::default();
        };
        ImageDefaults {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            working_dir: c.working_dir().clone().filter(|w| !w.is_empty()),
            user: c.user().clone().filter(|u| !u.is_empty()),
            volumes: image_volumes(c.volumes().as_deref().unwrap_or_default()),
        }
    }
}

/// The image's `VOLUME` paths as docker mounts them: cleaned (`/data/` and `/data/.` are
/// `/data`), each once, in order. A path [`check_mount_target`] refuses (`/`, `/proc`...) is
/// kept, so that the run fails naming it, as docker's daemon refuses it; a relative one is
/// taken from `/`.
fn image_volumes(paths: &[String]) -> Vec<String> {
    let mut out: Vec<String> = paths
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| normalize_container_path(p))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What the command line says about the process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessOverrides {
    /// `--entrypoint`: replaces the image's entrypoint and drops its Cmd.
    pub entrypoint: Option<String>,
    /// Arguments after the image: replace Cmd.
    pub args: Vec<String>,
    /// `-e KEY=VALUE` or `-e KEY` (taken from rsafe's own environment).
    pub env: Vec<String>,
    /// `--env-file`: `KEY=VALUE` lines, `#` comments; applied before `-e`.
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub terminal: bool,
    pub stdin: bool,
}

/// Merges image defaults and command-line overrides into the process to run. `host_env`
/// answers `-e KEY` without a value.
pub fn merge_process(
    image: &ImageDefaults,
    flags: &ProcessOverrides,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<ProcessSpec, SpecError> {
    let mut args = match &flags.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => image.entrypoint.clone(),
    };
    if !flags.args.is_empty() {
        args.extend(flags.args.iter().cloned());
    } else if flags.entrypoint.is_none() {
        args.extend(image.cmd.iter().cloned());
    }
    if args.is_empty() || args[0].is_empty() {
        return Err(SpecError::NoCommand);
    }

    let mut env = Env::default();
    for kv in &image.env {
        env.set_pair(kv)?;
    }
    for path in &flags.env_files {
        for (line, entry) in read_env_file(path)? {
            env.set_flag(&entry, host_env)
                .map_err(|e| SpecError::EnvFileLine {
                    path: path.clone(),
                    line,
                    detail: e.to_string(),
                })?;
        }
    }
    for entry in &flags.env {
        env.set_flag(entry, host_env)?;
    }
    if env.get("PATH").is_none() {
        env.set("PATH", DEFAULT_PATH);
    }
    if flags.terminal && env.get("TERM").is_none() {
        env.set("TERM", "xterm");
    }

    let cwd = flags
        .workdir
        .clone()
        .or_else(|| image.working_dir.clone())
        .unwrap_or_else(|| "/".to_string());
    container_path("working directory", &cwd)?;
    let user = flags.user.clone().or_else(|| image.user.clone());
    Ok(ProcessSpec {
        args,
        env: env.into_strings(),
        cwd,
        user,
        terminal: flags.terminal,
        stdin: flags.stdin,
    })
}

/// An ordered environment with unique keys.
#[derive(Debug, Default)]
struct Env(Vec<(String, String)>);

impl Env {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.0.push((key.to_string(), value.to_string())),
        }
    }

    /// `KEY=VALUE` from an image config.
    fn set_pair(&mut self, kv: &str) -> Result<(), SpecError> {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        check_env(k, v)?;
        self.set(k, v);
        Ok(())
    }

    /// `KEY=VALUE`, or `KEY` to copy rsafe's own value (skipped when unset, as Docker does).
    fn set_flag(
        &mut self,
        entry: &str,
        host_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), SpecError> {
        match entry.split_once('=') {
            Some((k, v)) => {
                check_env(k, v)?;
                self.set(k, v);
            }
            None => {
                check_env(entry, "")?;
                if let Some(v) = host_env(entry) {
                    check_env(entry, &v)?;
                    self.set(entry, &v);
                }
            }
        }
        Ok(())
    }

    fn into_strings(self) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

fn check_env(key: &str, value: &str) -> Result<(), SpecError> {
    if key.is_empty() {
        return Err(SpecError::Env(key.into(), "empty name"));
    }
    if key.contains('\0') || value.contains('\0') {
        return Err(SpecError::Env(key.into(), "contains a NUL byte"));
    }
    Ok(())
}

/// The most an env file may hold: four times what `execve` takes for all arguments and
/// variables together (2 MiB at most), to leave room for comments.
const MAX_ENV_FILE: u64 = 8 << 20;

/// The longest `KEY=VALUE` string `execve` takes (`MAX_ARG_STRLEN`, 32 pages).
const MAX_ENV_LINE: usize = 128 << 10;

/// The entries of an env file with their line numbers, read as Docker reads `--env-file`
/// (docker/cli `opts/envfile.go`): a UTF-8 byte-order mark at the start is dropped, leading
/// whitespace is dropped, blank lines and lines starting with `#` are skipped; `KEY=VALUE`
/// passes the value through untouched (quotes, trailing spaces and a `#` are part of it), `KEY`
/// alone takes rsafe's own value. A name with a space or tab in it (`KEY = v`, `export KEY=v`),
/// an empty name and a line that is not UTF-8 are errors naming the line, as in Docker: never
/// silently dropped.
///
/// The file is read up to [`MAX_ENV_FILE`] bytes, so `/dev/zero` fails at once, while a pipe
/// (`--env-file <(vault …)`) is read to its end as Docker reads it. A line longer than the
/// kernel's limit for one variable (`MAX_ARG_STRLEN`) is an error naming the line.
fn read_env_file(path: &Path) -> Result<Vec<(usize, String)>, SpecError> {
    let bytes = bounded::read_file(path, MAX_ENV_FILE).map_err(|e| match e {
        bounded::ReadError::TooLarge { limit } => SpecError::EnvFileTooLarge {
            path: path.to_path_buf(),
            limit,
        },
        bounded::ReadError::Io(source) => SpecError::EnvFile {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line_no = i + 1;
        let bad = |detail: String| SpecError::EnvFileLine {
            path: path.to_path_buf(),
            line: line_no,
            detail,
        };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_ENV_LINE {
            return Err(bad(format!(
                "longer than {MAX_ENV_LINE} bytes, the kernel's limit for one variable"
            )));
        }
        let line = std::str::from_utf8(raw)
            .map_err(|_| bad("not valid UTF-8".into()))?
            .trim_start_matches(char::is_whitespace);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split_once('=').map_or(line, |(k, _)| k);
        if name.is_empty() {
            return Err(bad("no variable name before '='".into()));
        }
        if name.contains([' ', '\t']) {
            let hint = if name.starts_with("export ") {
                " (docker does not take `export`: remove it)"
            } else {
                ""
            };
            return Err(bad(format!(
                "variable name {name:?} contains whitespace{hint}"
            )));
        }
        out.push((line_no, line.to_string()));
    }
    Ok(out)
}

/// Checks a path inside the container: absolute, no NUL. (Where it really leads is resolved
/// later, inside the container's root, never by string.)
pub fn container_path(what: &'static str, path: &str) -> Result<(), SpecError> {
    if !path.starts_with('/') {
        return Err(invalid(
            what,
            path,
            "must be an absolute path in the container",
        ));
    }
    if path.contains('\0') {
        return Err(invalid(what, path, "contains a NUL byte"));
    }
    Ok(())
}

/// Files below `/proc` a mount may replace: the ones lxcfs emulates, as runc allows (every
/// other target inside `/proc` is refused there too).
const PROC_FILES_MOUNTABLE: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// `path` with empty, `.` and `..` components resolved as the kernel would from `/` (lexically:
/// the container's symlinks are resolved later, inside its root).
pub fn normalize_container_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Refuses a mount target (`flag` is `-v` or `--tmpfs`) that would hide or replace the
/// container's `/`, `/proc`, `/sys` or `/dev` (the kernel's views and the device nodes rsafe
/// sets up), or a file inside `/proc` other than those lxcfs emulates: runc refuses the same
/// (so docker and podman do), and a mount there silently means something else.
pub fn check_mount_target(flag: &'static str, target: &str) -> Result<(), SpecError> {
    let norm = normalize_container_path(target);
    let why = match norm.as_str() {
        "/" => "would replace the container's root filesystem",
        "/proc" => "would replace the container's procfs",
        "/sys" => "would replace the container's sysfs",
        "/dev" => "would replace the container's /dev (its device nodes and terminals)",
        p if p.starts_with("/proc/") && !PROC_FILES_MOUNTABLE.contains(&p) => {
            "is inside /proc (only the files lxcfs emulates, like /proc/meminfo, may be replaced)"
        }
        _ => return Ok(()),
    };
    Err(SpecError::Invalid {
        what: flag,
        value: target.to_string(),
        detail: format!("the target {norm} {why}"),
    })
}

/// Checks a hostname: 1–64 characters of letters, digits, `-` and `.`.
pub fn check_hostname(name: &str) -> Result<(), SpecError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "hostname",
            name,
            "1-64 characters of letters, digits, '-' and '.'",
        ))
    }
}

/// Parses a byte size: `512`, `64k`, `256m`, `1g` (binary units, optional trailing `b`).
pub fn parse_size(s: &str) -> Result<u64, SpecError> {
    let lower = s.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches('b');
    let (num, mult) = match digits.chars().last() {
        Some('k') => (&digits[..digits.len() - 1], 1u64 << 10),
        Some('m') => (&digits[..digits.len() - 1], 1 << 20),
        Some('g') => (&digits[..digits.len() - 1], 1 << 30),
        Some('t') => (&digits[..digits.len() - 1], 1 << 40),
        _ => (digits, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| invalid("size", s, "expected a positive number with k, m, g or t"))
}

/// Parses `--cpus`: a positive number of CPUs, at most 1024.
pub fn parse_cpus(s: &str) -> Result<f64, SpecError> {
    s.parse::<f64>()
        .ok()
        .filter(|c| c.is_finite() && *c >= 0.01 && *c <= 1024.0)
        .ok_or_else(|| invalid("cpus", s, "expected a number of CPUs like 0.5 or 2"))
}

/// Parses `-v SRC:DST[:OPTIONS]`, options `ro`, `rw`, and `idmap` or `U` for a host path
/// ([`BindOwnership`]), `nocopy` for a volume. SRC is a host path when it is absolute or starts with `.`
/// (made absolute against `cwd`), and otherwise the name of a volume, as with Docker.
pub fn parse_volume(s: &str, cwd: &Path) -> Result<VolumeArg, SpecError> {
    let parts: Vec<&str> = s.split(':').collect();
    if let [dst] = parts.as_slice() {
        // `-v /dst`: docker's anonymous volume.
        container_path("volume target", dst)?;
        check_mount_target("-v", dst)?;
        return Ok(VolumeArg::Anonymous {
            target: dst.to_string(),
            read_only: false,
            no_copy: false,
        });
    }
    let (src, dst, opts) = match parts.as_slice() {
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => {
            return Err(invalid(
                "volume",
                s,
                "expected HOST-PATH:CONTAINER-PATH[:ro], NAME:CONTAINER-PATH[:ro] or CONTAINER-PATH",
            ));
        }
    };
    let named = !(src.starts_with('/') || src.starts_with('.'));
    if named && !super::volume::is_valid_name(src) {
        return Err(invalid(
            "volume",
            s,
            "a volume name is letters, digits, '_', '.', '-' (starting with a letter or digit); a host path is absolute or starts with ./",
        ));
    }
    container_path("volume target", dst)?;
    check_mount_target("-v", dst)?;
    let (mut read_only, mut no_copy) = (false, false);
    let mut ownership = BindOwnership::Host;
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        let owned = match opt {
            "ro" => {
                read_only = true;
                continue;
            }
            "rw" => {
                read_only = false;
                continue;
            }
            "nocopy" if named => {
                no_copy = true;
                continue;
            }
            "idmap" if !named => BindOwnership::Idmap,
            "U" if !named => BindOwnership::Chown,
            "idmap" | "U" => {
                return Err(invalid(
                    "volume",
                    s,
                    format!(
                        "{opt} is for host paths: a named volume already belongs to the container's root"
                    ),
                ));
            }
            _ => {
                return Err(invalid(
                    "volume",
                    s,
                    format!(
                        "unknown option {opt:?} ({})",
                        if named {
                            "ro, rw, nocopy"
                        } else {
                            "ro, rw, idmap, U"
                        }
                    ),
                ));
            }
        };
        if ownership != BindOwnership::Host && ownership != owned {
            return Err(invalid("volume", s, "idmap and U exclude each other"));
        }
        ownership = owned;
    }
    if named {
        return Ok(VolumeArg::Named {
            name: src.to_string(),
            target: dst.to_string(),
            read_only,
            no_copy,
        });
    }
    Ok(VolumeArg::Host(MountSpec::Bind {
        source: cwd.join(src),
        target: dst.to_string(),
        read_only,
        ownership,
    }))
}

/// Parses `--tmpfs DST[:size=64m,mode=1777]`.
pub fn parse_tmpfs(s: &str) -> Result<MountSpec, SpecError> {
    let (dst, opts) = s.split_once(':').unwrap_or((s, ""));
    container_path("tmpfs target", dst)?;
    check_mount_target("--tmpfs", dst)?;
    let (mut size, mut mode) = (None, None);
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("size", v)) => size = Some(parse_size(v)?),
            Some(("mode", v)) => {
                mode = Some(
                    u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| invalid("tmpfs mode", v, "expected octal like 1777"))?,
                )
            }
            _ => {
                return Err(invalid(
                    "tmpfs",
                    s,
                    format!("unknown option {opt:?} (size, mode)"),
                ));
            }
        }
    }
    Ok(MountSpec::Tmpfs {
        target: dst.to_string(),
        size,
        mode,
    })
}

/// The fields of a `--mount` value, split as docker splits it (a CSV record: a field in double
/// quotes may hold a comma, `""` is a quote inside one).
fn mount_fields(s: &str) -> Result<Vec<String>, SpecError> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err(invalid("--mount", s, "a quote is not closed"));
    }
    fields.push(field);
    Ok(fields)
}

/// Docker's booleans (Go's `strconv.ParseBool`).
fn parse_go_bool(key: &str, value: &str, s: &str) -> Result<bool, SpecError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(invalid(
            "--mount",
            s,
            format!("invalid value for {key}: {value}"),
        )),
    }
}

/// What a `--mount` value says, before the mount is made of it.
#[derive(Debug, Default)]
struct MountFields {
    kind: Option<String>,
    source: Option<String>,
    target: Option<String>,
    read_only: bool,
    /// Which type's own options were given (`bind`, `volume`, `tmpfs`), for docker's
    /// "cannot mix" error.
    options_of: Vec<&'static str>,
    no_copy: bool,
    size: Option<u64>,
    mode: Option<u32>,
    /// `bind-recursive=readonly`, which docker takes only with `readonly`.
    recursive_read_only: bool,
}

impl MountFields {
    /// Reads one `key=value` (or bare flag) field, as docker's `opts/mount.go` does: keys are
    /// case-insensitive, a bare field other than the boolean flags is an error, an unknown key
    /// is an error. Options rsafe cannot honour are refused saying why, never dropped.
    fn read(&mut self, field: &str, s: &str, cwd: &Path) -> Result<(), SpecError> {
        let bad = |detail: String| invalid("--mount", s, detail);
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        match (key.as_str(), value) {
            ("readonly" | "ro", None) => self.read_only = true,
            ("readonly" | "ro", Some(v)) => self.read_only = parse_go_bool(&key, v, s)?,
            ("volume-nocopy", v) => {
                self.options_of.push("volume");
                self.no_copy = v.map_or(Ok(true), |v| parse_go_bool(&key, v, s))?;
            }
            (_, None) => {
                return Err(bad(format!(
                    "invalid field '{field}' must be a key=value pair"
                )));
            }
            ("type", Some(v)) => self.kind = Some(v.to_ascii_lowercase()),
            ("source" | "src", Some(v)) => {
                self.source = Some(if v == "." || v.starts_with("./") {
                    cwd.join(v).display().to_string()
                } else {
                    v.to_string()
                })
            }
            ("target" | "dst" | "destination", Some(v)) => self.target = Some(v.to_string()),
            // macOS file sharing's; docker takes it and does nothing with it on Linux either.
            ("consistency", Some(_)) => {}
            ("bind-propagation", Some(v)) => {
                self.options_of.push("bind");
                match v.to_ascii_lowercase().as_str() {
                    "private" | "rprivate" => {}
                    "shared" | "rshared" | "slave" | "rslave" => {
                        return Err(bad(format!(
                            "bind-propagation={v} is refused: a container's mounts are private to it (rprivate), so that nothing it mounts reaches the host and nothing the host mounts later appears in it"
                        )));
                    }
                    _ => return Err(bad(format!("invalid value for {key}: {v}"))),
                }
            }
            ("bind-recursive", Some(v)) => {
                self.options_of.push("bind");
                match v {
                    "enabled" => {}
                    // What a read-only bind is here anyway: every mount below it read-only.
                    "readonly" => self.recursive_read_only = true,
                    _ => {
                        return Err(bad(format!(
                            "bind-recursive={v} is not supported: a bind mount takes the mounts below its source with it, all read-only when it is (enabled, readonly)"
                        )));
                    }
                }
            }
            ("bind-nonrecursive", Some(_)) => {
                return Err(bad(
                    "bind-nonrecursive is deprecated, use bind-recursive=disabled instead (which rsafe does not support)".into(),
                ));
            }
            ("volume-driver", Some(v)) => {
                self.options_of.push("volume");
                if v != "local" {
                    return Err(bad(format!(
                        "volume-driver={v} is not supported: rsafe's volumes are local directories under its store"
                    )));
                }
            }
            ("volume-label" | "volume-opt" | "volume-subpath", Some(_)) => {
                return Err(bad(format!(
                    "{key} is not supported: rsafe's volumes are plain local directories (see `rsafe volume`)"
                )));
            }
            ("tmpfs-size", Some(v)) => {
                self.options_of.push("tmpfs");
                self.size =
                    Some(parse_size(v).map_err(|_| bad(format!("invalid value for {key}: {v}")))?);
            }
            ("tmpfs-mode", Some(v)) => {
                self.options_of.push("tmpfs");
                self.mode = Some(
                    u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| bad(format!("invalid value for {key}: {v}")))?,
                );
            }
            (_, Some(_)) => return Err(bad(format!("unexpected key '{key}' in '{field}'"))),
        }
        Ok(())
    }
}

/// Parses docker's long mount syntax, `--mount type=bind|volume|tmpfs,source=…,target=…[,…]`
/// (`src`, `dst`, `destination`; `readonly`/`ro`; `bind-propagation`, `volume-nocopy`,
/// `tmpfs-size`, `tmpfs-mode`), with docker's errors: an unknown key, a bare field, a missing
/// target, another type's options. The type defaults to `volume`, as in docker. The result
/// is what the same `-v` or `--tmpfs` would give (the same target checks); whether a bind's
/// source exists is the caller's to check (`--mount` refuses a missing one where `-v`'s
/// source would be made).
pub fn parse_mount(s: &str, cwd: &Path) -> Result<VolumeArg, SpecError> {
    let mut m = MountFields::default();
    for field in mount_fields(s)? {
        m.read(&field, s, cwd)?;
    }
    let kind = m.kind.clone().unwrap_or_else(|| "volume".to_string());
    let bad = |detail: String| invalid("--mount", s, detail);
    let Some(target) = m.target.clone().filter(|t| !t.is_empty()) else {
        return Err(bad("target is required".into()));
    };
    if m.recursive_read_only && !m.read_only {
        return Err(bad(
            "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction"
                .into(),
        ));
    }
    if let Some(other) = m.options_of.iter().find(|o| **o != kind) {
        return Err(bad(format!(
            "cannot mix '{other}-*' options with mount type '{kind}'"
        )));
    }
    container_path("mount target", &target)?;
    check_mount_target("--mount", &target)?;
    let config = |detail: &str| {
        bad(format!(
            "invalid mount config for type \"{kind}\": {detail}"
        ))
    };
    match kind.as_str() {
        "bind" => {
            let source = m.source.filter(|s| !s.is_empty());
            let source = source.ok_or_else(|| config("field Source must not be empty"))?;
            if !source.starts_with('/') {
                return Err(config(&format!(
                    "invalid mount path: '{source}' mount path must be absolute"
                )));
            }
            Ok(VolumeArg::Host(MountSpec::Bind {
                source: PathBuf::from(source),
                target,
                read_only: m.read_only,
                ownership: BindOwnership::Host,
            }))
        }
        "volume" => {
            let Some(name) = m.source.filter(|s| !s.is_empty()) else {
                return Ok(VolumeArg::Anonymous {
                    target,
                    read_only: m.read_only,
                    no_copy: m.no_copy,
                });
            };
            if !super::volume::is_valid_name(&name) {
                return Err(config(&format!(
                    "{name:?} is not a volume name: letters, digits, '_', '.', '-', starting with a letter or digit (a host path is type=bind)"
                )));
            }
            Ok(VolumeArg::Named {
                name,
                target,
                read_only: m.read_only,
                no_copy: m.no_copy,
            })
        }
        "tmpfs" => {
            if m.source.is_some_and(|s| !s.is_empty()) {
                return Err(config("field Source must not be specified"));
            }
            if m.read_only {
                return Err(config(
                    "a read-only tmpfs is not supported: it would stay empty (rsafe's tmpfs mounts are writable)",
                ));
            }
            Ok(VolumeArg::Host(MountSpec::Tmpfs {
                target,
                size: m.size,
                mode: m.mode,
            }))
        }
        other => Err(bad(format!(
            "mount type {other:?} is not supported (bind, volume, tmpfs)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageDefaults {
        ImageDefaults {
            entrypoint: vec!["/bin/sh".into(), "-c".into()],
            cmd: vec!["id".into()],
            env: vec!["PATH=/bin".into(), "A=image".into(), "B=image".into()],
            working_dir: Some("/home/app".into()),
            user: Some("app".into()),
            volumes: Vec::new(),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn image_config_alone() {
        let p = merge_process(&image(), &ProcessOverrides::default(), &no_env).unwrap();
        assert_eq!(p.args, ["/bin/sh", "-c", "id"]);
        assert_eq!(p.env, ["PATH=/bin", "A=image", "B=image"]);
        assert_eq!(p.cwd, "/home/app");
        assert_eq!(p.user.as_deref(), Some("app"));
    }

    #[test]
    fn arguments_replace_cmd_and_entrypoint_replaces_both() {
        let flags = ProcessOverrides {
            args: vec!["echo hi".into()],
            ..Default::default()
        };
        let p = merge_process(&image(), &flags, &no_env).unwrap();
        assert_eq!(p.args, ["/bin/sh", "-c", "echo hi"]);
        let flags = ProcessOverrides {
            entrypoint: Some("/bin/true".into()),
            ..Default::default()
        };
        assert_eq!(
            merge_process(&image(), &flags, &no_env).unwrap().args,
            ["/bin/true"]
        );
        let flags = ProcessOverrides {
            entrypoint: Some(String::new()),
            ..Default::default()
        };
        assert!(matches!(
            merge_process(&image(), &flags, &no_env),
            Err(SpecError::NoCommand)
        ));
        assert!(matches!(
            merge_process(
                &ImageDefaults::default(),
                &ProcessOverrides::default(),
                &no_env
            ),
            Err(SpecError::NoCommand)
        ));
    }

    #[test]
    fn env_precedence_image_then_file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("env");
        std::fs::write(
            &file,
            "# comment\n\n  B=file\nC=file=with=equals\nFROM_HOST\n",
        )
        .unwrap();
        let flags = ProcessOverrides {
            args: vec!["x".into()],
            env: vec!["A=flag".into(), "D".into(), "UNSET".into()],
            env_files: vec![file],
            workdir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            terminal: true,
            ..Default::default()
        };
        let host = |k: &str| match k {
            "D" => Some("host".to_string()),
            "FROM_HOST" => Some("h".to_string()),
            _ => None,
        };
        let p = merge_process(&image(), &flags, &host).unwrap();
        assert_eq!(
            p.env,
            [
                "PATH=/bin",
                "A=flag",
                "B=file",
                "C=file=with=equals",
                "FROM_HOST=h",
                "D=host",
                "TERM=xterm"
            ]
        );
        assert_eq!(p.cwd, "/srv");
        assert_eq!(p.user.as_deref(), Some("1000:1000"));
    }

    /// The env file `text` read as `--env-file`, with `FROM_HOST` set in rsafe's environment.
    fn env_file(text: &[u8]) -> Result<Vec<String>, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.env");
        std::fs::write(&file, text).unwrap();
        let flags = ProcessOverrides {
            args: vec!["x".into()],
            env_files: vec![file],
            ..Default::default()
        };
        let host = |k: &str| (k == "FROM_HOST").then(|| "h".to_string());
        merge_process(&ImageDefaults::default(), &flags, &host)
            .map(|p| {
                p.env
                    .into_iter()
                    .filter(|e| !e.starts_with("PATH="))
                    .collect()
            })
            .map_err(|e| {
                e.to_string()
                    .replace(&dir.path().display().to_string(), "DIR")
            })
    }

    #[test]
    fn env_files_are_read_as_docker_reads_them() {
        assert_eq!(
            env_file(
                b"\xEF\xBB\xBFA=1\r\n\t  B=two words \n  # comment\n#C=3\n\n   \nD=\"q\" # x\nE=\nF==g\nFROM_HOST\nUNSET\n\xC2\xA0G=nbsp"
            )
            .unwrap(),
            [
                "A=1",
                "B=two words ",
                "D=\"q\" # x",
                "E=",
                "F==g",
                "FROM_HOST=h",
                "G=nbsp"
            ]
        );
        for (text, err) in [
            (
                &b"A=1\nexport K=v\n"[..],
                "DIR/app.env:2: variable name \"export K\" contains whitespace (docker does not take `export`: remove it)",
            ),
            (
                b"K =v",
                "DIR/app.env:1: variable name \"K \" contains whitespace",
            ),
            (
                b"\n\nK\tX=v",
                "DIR/app.env:3: variable name \"K\\tX\" contains whitespace",
            ),
            (
                b"K ",
                "DIR/app.env:1: variable name \"K \" contains whitespace",
            ),
            (b"#\n=v", "DIR/app.env:2: no variable name before '='"),
            (b"A=1\nB=\xff\n", "DIR/app.env:2: not valid UTF-8"),
        ] {
            assert_eq!(env_file(text).unwrap_err(), err);
        }
        let long = format!("A=1\nK={}\n", "v".repeat(MAX_ENV_LINE));
        assert_eq!(
            env_file(long.as_bytes()).unwrap_err(),
            "DIR/app.env:2: longer than 131072 bytes, the kernel's limit for one variable"
        );
    }

    /// `/dev/zero` fails at once instead of filling memory; a pipe is read to its end.
    #[test]
    fn env_files_are_bounded_and_pipes_are_read() {
        let read = |path: &str| {
            let flags = ProcessOverrides {
                args: vec!["x".into()],
                env_files: vec![path.into()],
                ..Default::default()
            };
            merge_process(&ImageDefaults::default(), &flags, &|_| None).map(|p| p.env)
        };
        assert!(matches!(
            read("/dev/zero"),
            Err(SpecError::EnvFileTooLarge { limit, .. }) if limit == MAX_ENV_FILE
        ));
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("env");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, "TOKEN_FILE=/run/secrets/t\n"))
        };
        let env = read(fifo.to_str().unwrap()).unwrap();
        writer.join().unwrap().unwrap();
        assert!(
            env.contains(&"TOKEN_FILE=/run/secrets/t".to_string()),
            "{env:?}"
        );
    }

    #[test]
    fn default_path_and_bad_env() {
        let flags = ProcessOverrides {
            args: vec!["x".into()],
            ..Default::default()
        };
        let p = merge_process(&ImageDefaults::default(), &flags, &no_env).unwrap();
        assert_eq!(p.env, [format!("PATH={DEFAULT_PATH}")]);
        assert_eq!(p.cwd, "/");
        let flags = ProcessOverrides {
            args: vec!["x".into()],
            env: vec!["=v".into()],
            ..Default::default()
        };
        assert!(merge_process(&ImageDefaults::default(), &flags, &no_env).is_err());
        let flags = ProcessOverrides {
            args: vec!["x".into()],
            workdir: Some("relative".into()),
            ..Default::default()
        };
        assert!(merge_process(&ImageDefaults::default(), &flags, &no_env).is_err());
    }

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("256m").unwrap(), 256 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("2gb").unwrap(), 2 << 30);
        for bad in ["", "m", "-1m", "0", "1x", "99999999999999999999t"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_cpus("1.5").unwrap(), 1.5);
        for bad in ["0", "-1", "nan", "inf", "x", "2000"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn volumes() {
        let cwd = Path::new("/work");
        assert_eq!(
            parse_volume("./data:/data:ro", cwd).unwrap(),
            VolumeArg::Host(MountSpec::Bind {
                source: "/work/./data".into(),
                target: "/data".into(),
                read_only: true,
                ownership: BindOwnership::Host
            })
        );
        assert_eq!(
            parse_volume("/host/dir:/cache", cwd).unwrap(),
            VolumeArg::Host(MountSpec::Bind {
                source: "/host/dir".into(),
                target: "/cache".into(),
                read_only: false,
                ownership: BindOwnership::Host
            })
        );
        for (arg, ownership) in [
            ("/h:/d:idmap", BindOwnership::Idmap),
            ("/h:/d:ro,idmap", BindOwnership::Idmap),
            ("/h:/d:U", BindOwnership::Chown),
            ("/h:/d:U,U", BindOwnership::Chown),
        ] {
            assert!(
                matches!(parse_volume(arg, cwd).unwrap(), VolumeArg::Host(MountSpec::Bind { ownership: o, .. }) if o == ownership),
                "{arg}"
            );
        }
        for (bad, says) in [
            ("/h:/d:idmap,U", "exclude each other"),
            ("/h:/d:u", "ro, rw, idmap, U"),
            ("v:/d:idmap", "for host paths"),
            ("v:/d:U", "for host paths"),
        ] {
            let err = parse_volume(bad, cwd).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert_eq!(
            parse_volume("pg-data.1:/var/lib/db:ro", cwd).unwrap(),
            VolumeArg::Named {
                name: "pg-data.1".into(),
                target: "/var/lib/db".into(),
                read_only: true,
                no_copy: false
            }
        );
        assert!(matches!(
            parse_volume("v:/d:nocopy", cwd).unwrap(),
            VolumeArg::Named { no_copy: true, .. }
        ));
        assert!(parse_volume("/host:/d:nocopy", cwd).is_err());
        // One path: docker's anonymous volume.
        assert_eq!(
            parse_volume("/var/lib/db", cwd).unwrap(),
            VolumeArg::Anonymous {
                target: "/var/lib/db".into(),
                read_only: false,
                no_copy: false
            }
        );
        for bad in [
            "rel",
            "",
            "/proc",
            "/a:rel",
            "/a:/b:bogus",
            "/a:/b:ro:x",
            "named:rel",
            "-x:/data",
            "bad name:/data",
            "a$b:/data",
            "~/d:/data",
            ":/data",
        ] {
            assert!(parse_volume(bad, cwd).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_and_hostname() {
        assert_eq!(
            parse_tmpfs("/tmp:size=64m,mode=1777").unwrap(),
            MountSpec::Tmpfs {
                target: "/tmp".into(),
                size: Some(64 << 20),
                mode: Some(0o1777)
            }
        );
        assert!(parse_tmpfs("tmp").is_err());
        assert!(parse_tmpfs("/tmp:mode=99").is_err());
        assert!(parse_tmpfs("/tmp:uid=0").is_err());
        assert!(check_hostname("box-1.local").is_ok());
        for bad in ["", "a b", "x/y", &"a".repeat(65)] {
            assert!(check_hostname(bad).is_err());
        }
    }

    #[test]
    fn targets_hiding_the_kernel_views_or_the_root_are_refused() {
        let cwd = Path::new("/work");
        for bad in [
            "/",
            "//",
            "/.",
            "/proc",
            "/proc/",
            "//proc",
            "/./proc",
            "/dev/../proc",
            "/sys",
            "/sys/",
            "/dev",
            "/dev/.",
            "/x/../../dev",
            "/proc/sys/kernel",
            "/proc/1/root",
            "/proc/self/mem",
        ] {
            let err = parse_volume(&format!("/h:{bad}"), cwd)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("-v \""), "{bad}: {err}");
            assert!(
                err.contains("would replace") || err.contains("is inside /proc"),
                "{bad}: {err}"
            );
            let err = parse_tmpfs(bad).unwrap_err().to_string();
            assert!(err.starts_with("--tmpfs \""), "{bad}: {err}");
        }
        for fine in [
            "/dev/shm",
            "/sys/fs/x",
            "/procfs",
            "/devices",
            "/system",
            "/proc/meminfo",
            "/proc/./uptime",
            "/srv/proc",
            "/dev/../data",
        ] {
            assert!(parse_volume(&format!("/h:{fine}"), cwd).is_ok(), "{fine}");
            assert!(parse_tmpfs(fine).is_ok(), "{fine}");
        }
        assert_eq!(normalize_container_path("/a/./b//../c/"), "/a/c");
        assert_eq!(normalize_container_path("/../.."), "/");
    }

    #[test]
    fn mounts_in_dockers_long_syntax() {
        let cwd = Path::new("/work");
        let bind = |source: &str, target: &str, read_only| {
            VolumeArg::Host(MountSpec::Bind {
                source: source.into(),
                target: target.into(),
                read_only,
                ownership: BindOwnership::Host,
            })
        };
        for (arg, want) in [
            ("type=bind,source=/h,target=/d", bind("/h", "/d", false)),
            ("type=bind,src=/h,dst=/d,readonly", bind("/h", "/d", true)),
            (
                "Type=BIND,Source=/h,Destination=/d,ro=true",
                bind("/h", "/d", true),
            ),
            (
                "type=bind,src=./data,target=/d,ro=0",
                bind("/work/./data", "/d", false),
            ),
            (
                "type=bind,src=/h,target=/d,bind-propagation=rprivate",
                bind("/h", "/d", false),
            ),
            (
                "\"type=bind\",\"src=/a,b\",target=/d",
                bind("/a,b", "/d", false),
            ),
            (
                "type=bind,src=/h,target=/d,consistency=cached",
                bind("/h", "/d", false),
            ),
            (
                "type=bind,source=/h,target=/d,bind-recursive=enabled",
                bind("/h", "/d", false),
            ),
            (
                "type=bind,source=/h,target=/d,bind-recursive=readonly,readonly,bind-propagation=rprivate",
                bind("/h", "/d", true),
            ),
        ] {
            assert_eq!(parse_mount(arg, cwd).unwrap(), want, "{arg}");
        }
        assert_eq!(
            parse_mount("source=cache,target=/c,volume-nocopy", cwd).unwrap(),
            VolumeArg::Named {
                name: "cache".into(),
                target: "/c".into(),
                read_only: false,
                no_copy: true
            }
        );
        // No source: an anonymous volume, with its options.
        assert_eq!(
            parse_mount("type=volume,target=/d,readonly,volume-nocopy", cwd).unwrap(),
            VolumeArg::Anonymous {
                target: "/d".into(),
                read_only: true,
                no_copy: true
            }
        );
        assert_eq!(
            parse_mount("type=volume,src=db,dst=/var/lib/db,readonly", cwd).unwrap(),
            VolumeArg::Named {
                name: "db".into(),
                target: "/var/lib/db".into(),
                read_only: true,
                no_copy: false
            }
        );
        // docker/cli's TestMountOptSetTmpfsNoError: 1m and 1MB are both 1 MiB, 0700 and 700 alike.
        for arg in [
            "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=0700",
            "type=tmpfs,target=/t,tmpfs-size=1MB,tmpfs-mode=700",
        ] {
            assert_eq!(
                parse_mount(arg, cwd).unwrap(),
                VolumeArg::Host(MountSpec::Tmpfs {
                    target: "/t".into(),
                    size: Some(1 << 20),
                    mode: Some(0o700)
                }),
                "{arg}"
            );
        }
        assert_eq!(
            parse_mount("type=tmpfs,target=/run,tmpfs-size=64m,tmpfs-mode=1770", cwd).unwrap(),
            VolumeArg::Host(MountSpec::Tmpfs {
                target: "/run".into(),
                size: Some(64 << 20),
                mode: Some(0o1770)
            })
        );
    }

    /// Docker's messages (docker/cli `opts/mount.go`, the daemon's mount validation) where it
    /// has one; rsafe's reason where it refuses what docker takes.
    #[test]
    fn bad_mounts_say_what_docker_says() {
        let cwd = Path::new("/work");
        for (arg, says) in [
            (
                "type=bind,src=/h,target=/d,bogus=1",
                "unexpected key 'bogus' in 'bogus=1'",
            ),
            (
                "type=bind,src=/h,target=/d,rw",
                "invalid field 'rw' must be a key=value pair",
            ),
            (
                "type=bind,src=/h,target=/d,",
                "invalid field '' must be a key=value pair",
            ),
            ("type=bind,src=/h", "target is required"),
            (
                "type=bind,target=/d",
                "invalid mount config for type \"bind\": field Source must not be empty",
            ),
            (
                "type=bind,src=rel,target=/d",
                "'rel' mount path must be absolute",
            ),
            (
                "type=bind,src=/h,target=/d,ro=maybe",
                "invalid value for ro: maybe",
            ),
            (
                "type=bind,src=/h,target=/d,volume-nocopy",
                "cannot mix 'volume-*' options with mount type 'bind'",
            ),
            (
                "type=volume,src=v,target=/d,tmpfs-size=1m",
                "cannot mix 'tmpfs-*' options with mount type 'volume'",
            ),
            (
                "type=tmpfs,target=/d,bind-propagation=rprivate",
                "cannot mix 'bind-*' options with mount type 'tmpfs'",
            ),
            (
                "type=tmpfs,src=/h,target=/d",
                "field Source must not be specified",
            ),
            (
                "type=tmpfs,target=/d,tmpfs-mode=99",
                "invalid value for tmpfs-mode: 99",
            ),
            (
                "type=tmpfs,target=/d,tmpfs-size=lots",
                "invalid value for tmpfs-size: lots",
            ),
            (
                "type=tmpfs,target=/d,readonly",
                "a read-only tmpfs is not supported",
            ),
            ("type=volume,src=/abs,target=/d", "is not a volume name"),
            (
                "type=npipe,src=x,target=/d",
                "mount type \"npipe\" is not supported",
            ),
            (
                "type=bind,src=/h,target=/d,bind-propagation=rshared",
                "bind-propagation=rshared is refused",
            ),
            (
                "type=bind,src=/h,target=/d,bind-propagation=sideways",
                "invalid value for bind-propagation",
            ),
            (
                "type=volume,src=v,target=/d,volume-driver=nfs",
                "volume-driver=nfs is not supported",
            ),
            (
                "type=volume,src=v,target=/d,volume-opt=o=addr",
                "volume-opt is not supported",
            ),
            ("type=bind,src=/h,target=rel", "must be an absolute path"),
            ("type=bind,src=\"/h,target=/d", "a quote is not closed"),
            // docker/cli opts/mount_test.go's TestMountOptErrors, message for message.
            ("type=tmpfs", "target is required"),
            ("type=volume,source=/foo", "target is required"),
            (
                "type=volume,target=/foo,bogus=foo",
                "unexpected key 'bogus' in 'bogus=foo'",
            ),
            (
                "type=volume, src=/foo,target=/foo",
                "unexpected key ' src' in ' src=/foo'",
            ),
            (
                "type=volume,src =/foo,target=/foo",
                "unexpected key 'src ' in 'src =/foo'",
            ),
            (
                "type=volume,target=/foo,bogus",
                "invalid field 'bogus' must be a key=value pair",
            ),
            (
                "type=volume,target=/foo,readonly=no",
                "invalid value for readonly: no",
            ),
            (
                "type=volume,target=/foo,readonly=",
                "invalid value for readonly: ",
            ),
            (
                "type=tmpfs,target=/foo,tmpfs-size=foo",
                "invalid value for tmpfs-size: foo",
            ),
            (
                "type=tmpfs,target=/foo,tmpfs-mode=foo",
                "invalid value for tmpfs-mode: foo",
            ),
            (
                "type=volume,target=/foo,source=/foo,bind-propagation=rprivate",
                "cannot mix 'bind-*' options with mount type 'volume'",
            ),
            (
                "type=bind,target=/foo,source=/foo,volume-nocopy=true",
                "cannot mix 'volume-*' options with mount type 'bind'",
            ),
            (
                "type=bind,source=/foo,target=/bar,bind-recursive=readonly",
                "option 'bind-recursive=readonly' requires 'readonly'",
            ),
            (
                "type=bind,source=/foo,target=/bar,bind-recursive=writable,readonly",
                "bind-recursive=writable is not supported",
            ),
        ] {
            let err = parse_mount(arg, cwd).unwrap_err().to_string();
            assert!(
                err.starts_with("--mount \"") || err.starts_with("mount target"),
                "{arg}: {err}"
            );
            assert!(err.contains(says), "{arg}: {err}");
        }
        for target in ["/", "/proc", "/sys/", "/dev", "/proc/self/mem"] {
            let err = parse_mount(&format!("type=tmpfs,target={target}"), cwd)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("would replace") || err.contains("is inside /proc"),
                "{err}"
            );
        }
    }

    #[test]
    fn ulimits_as_docker_parses_them() {
        let u = |name, soft, hard| Ulimit { name, soft, hard };
        assert_eq!(
            parse_ulimit("nofile=1024").unwrap(),
            u(UlimitName::Nofile, 1024, 1024)
        );
        assert_eq!(
            parse_ulimit("nofile=512:2048").unwrap(),
            u(UlimitName::Nofile, 512, 2048)
        );
        assert_eq!(
            parse_ulimit("core=-1").unwrap(),
            u(UlimitName::Core, u64::MAX, u64::MAX)
        );
        assert_eq!(
            parse_ulimit("nproc=10:-1").unwrap(),
            u(UlimitName::Nproc, 10, u64::MAX)
        );
        assert_eq!(UlimitName::Sigpending.as_str(), "sigpending");
        for (bad, says) in [
            ("nofile", "TYPE=SOFT[:HARD]"),
            ("files=1", "invalid ulimit type: files"),
            (
                "nofile=2:1",
                "soft limit must be less than or equal to hard limit: 2 > 1",
            ),
            ("nofile=1:2:3", "too many limit value arguments"),
            ("nofile=x", "is not a limit"),
            ("nofile=-2", "is not a limit"),
        ] {
            let err = parse_ulimit(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("no").unwrap(), None);
        let on_failure = |max| Some(RestartPolicy::OnFailure { max });
        assert_eq!(parse_restart("on-failure").unwrap(), on_failure(None));
        assert_eq!(parse_restart("on-failure:2").unwrap(), on_failure(Some(2)));
        assert_eq!(
            parse_restart("always").unwrap(),
            Some(RestartPolicy::Always)
        );
        for bad in [
            "",
            "sometimes",
            "always:2",
            "on-failure:x",
            "on-failure:-1",
            "no:1",
        ] {
            assert!(parse_restart(bad).is_err(), "{bad}");
        }
        let twice = RestartPolicy::OnFailure { max: Some(2) };
        assert!(twice.restarts_after(1, 0) && twice.restarts_after(1, 1));
        assert!(!twice.restarts_after(1, 2) && !twice.restarts_after(0, 0));
        assert!(RestartPolicy::Always.restarts_after(0, 100));
    }

    #[test]
    fn stop_signals_and_labels() {
        for (arg, want) in [
            ("SIGUSR1", "SIGUSR1"),
            ("usr1", "SIGUSR1"),
            ("15", "SIGTERM"),
            ("SIGQUIT", "SIGQUIT"),
        ] {
            assert_eq!(parse_stop_signal(arg).unwrap(), want, "{arg}");
        }
        for bad in ["SIGKILL", "9", "SIGNOPE", "0", "", "STOP"] {
            assert!(parse_stop_signal(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_label("a.b=c=d").unwrap(),
            ("a.b".into(), "c=d".into())
        );
        assert_eq!(parse_label("flag").unwrap(), ("flag".into(), String::new()));
        assert!(parse_label("=v").is_err());
    }

    #[test]
    fn oci_config_defaults() {
        let config: oci_spec::image::Config = serde_json::from_str(
            r#"{"User":"app","Entrypoint":["/bin/sh","-c"],"Cmd":["id"],"Env":["A=1"],"WorkingDir":""}"#,
        )
        .unwrap();
        let d = ImageDefaults::from_oci(Some(&config));
        assert_eq!(d.entrypoint, ["/bin/sh", "-c"]);
        assert_eq!(d.cmd, ["id"]);
        assert_eq!(d.working_dir, None);
        assert_eq!(d.user.as_deref(), Some("app"));
        assert!(d.volumes.is_empty());
        assert_eq!(ImageDefaults::from_oci(None), ImageDefaults::default());
        // A Dockerfile's VOLUME lines, as a builder writes them: cleaned, once each.
        let config: oci_spec::image::Config = serde_json::from_str(
            r#"{"Cmd":["id"],"Volumes":{"/var/lib/db/":{},"/cache":{},"/cache/.":{},"/a//b/../c":{},"":{}}}"#,
        )
        .unwrap();
        let d = ImageDefaults::from_oci(Some(&config));
        assert_eq!(d.volumes, ["/a/c", "/cache", "/var/lib/db"]);
    }
}
