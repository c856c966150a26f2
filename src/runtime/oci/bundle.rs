//! An OCI bundle's `config.json`, read with the `oci-spec` types and checked into a
//! [`Bundle`]: what rsafe will do, field by field, with rsafe's floor added. A field rsafe
//! cannot honour is refused with its name (`linux.intelRdt is not supported`), never ignored:
//! a caller that asked for something must not get a container without it unnoticed.
//!
//! The floor, whatever the bundle says (see the module documentation of [`super`]): a user
//! namespace (added, with rsafe's id map, when the bundle has none), `no_new_privs`, a seccomp
//! filter (rsafe's default when the bundle has none), every inherited descriptor closed but
//! stdio and `--preserve-fds`. The annotation `rsafe.policy=permissive` is the one way to get
//! less: then a bundle without a seccomp profile runs without one.
//!
//! `rsafe.policy=NAME` (any other value) applies the rsafe policy `NAME.toml` from a fixed
//! directory ([`DEFAULT_POLICY_DIR`], or `rsafe-runtime --policy-dir`), typically one learned
//! by `rsafe run --learn`, and only ever narrows the bundle: capabilities intersected, the
//! policy's seccomp profile stacked on the bundle's filters, its landlock rules added. NAME is
//! a name, never a path: a pod's author sets annotations, the host's administrator the
//! directory.

use crate::bounded;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ::caps::Capability;
use oci_spec::runtime::{
    LinuxIdMapping, LinuxNamespaceType, LinuxSeccomp, Mount, PosixRlimitType, Spec,
};

use nix::sys::resource::Resource;

use crate::runtime::caps;
use crate::runtime::idmap::{IdMap, IdRange, MapWriter};
use crate::runtime::seccomp::SeccompProfile;

/// The annotation through which a bundle may ask for less than rsafe's floor, or name a
/// policy that narrows it.
pub const POLICY_ANNOTATION: &str = "rsafe.policy";

/// Where `rsafe.policy=NAME` finds `NAME.toml` unless `rsafe-runtime --policy-dir` says.
pub const DEFAULT_POLICY_DIR: &str = "/etc/rsafe/policies";

/// A policy a bundle named (`rsafe.policy=NAME`), read from the policy directory.
#[derive(Debug, Clone)]
pub struct NamedPolicy {
    pub name: String,
    pub policy: crate::runtime::policy::Policy,
}

/// Whether `name` may name a policy file: letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit, at most 64 characters. Nothing that could be a path (`..`, `/`).
fn is_policy_name(name: &str) -> bool {
    name.len() <= 64 && crate::runtime::state::is_valid_name(name)
}

/// Why a bundle cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid OCI runtime config: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {field} is not supported by rsafe: {why}")]
    Unsupported {
        path: PathBuf,
        field: String,
        why: String,
    },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

/// The namespaces of the container other than user and mount (which rsafe always makes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub kind: NsKind,
    /// `Some`: join this existing namespace (a Kubernetes pod's sandbox); `None`: a new one.
    pub path: Option<PathBuf>,
}

/// Namespace kinds a bundle may ask for, besides user and mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsKind {
    Pid,
    Network,
    Ipc,
    Uts,
    Cgroup,
    /// Made by the container's first process itself (`clone` cannot), with its offsets.
    Time,
}

impl NsKind {
    /// The `CLONE_NEW*` flag.
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            NsKind::Pid => libc::CLONE_NEWPID,
            NsKind::Network => libc::CLONE_NEWNET,
            NsKind::Ipc => libc::CLONE_NEWIPC,
            NsKind::Uts => libc::CLONE_NEWUTS,
            NsKind::Cgroup => libc::CLONE_NEWCGROUP,
            NsKind::Time => libc::CLONE_NEWTIME,
        }
    }

    /// The runtime-spec name.
    pub fn name(self) -> &'static str {
        match self {
            NsKind::Pid => "pid",
            NsKind::Network => "network",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }
}

/// Where the user namespace's id map comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserNamespace {
    /// The bundle asked for one with these maps.
    Bundle(IdMap),
    /// The bundle asked for none: rsafe adds one with its own map, and the root filesystem and
    /// bind mounts are id-mapped so that files owned by host root are container root's.
    Added(IdMap),
    /// The bundle names an existing user namespace by path (a Kubernetes pod's sandbox with
    /// `hostUsers: false`): the container joins it, and its other new namespaces belong to it.
    Joined(JoinedUser),
}

/// A user namespace to join: the map is the namespace's own, read by `create`
/// ([`super::userns`]); the bundle's mappings, when it gives any, must be the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedUser {
    pub path: PathBuf,
    /// `linux.namespaces[i]`, to name it in errors.
    pub field: String,
    /// `linux.uidMappings`/`gidMappings` when the bundle gives them.
    pub stated: Option<IdMap>,
    /// The namespace's map: empty until `create` has read it.
    pub map: IdMap,
}

impl UserNamespace {
    pub fn idmap(&self) -> &IdMap {
        match self {
            UserNamespace::Bundle(m) | UserNamespace::Added(m) => m,
            UserNamespace::Joined(j) => &j.map,
        }
    }

    /// The namespace to join, when the bundle names one.
    pub fn joined(&self) -> Option<&JoinedUser> {
        match self {
            UserNamespace::Joined(j) => Some(j),
            _ => None,
        }
    }
}

/// One entry of `mounts`, as rsafe makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub destination: String,
    pub kind: MountKind,
    /// `MOUNT_ATTR_*` flags (read-only, nosuid, nodev, noexec, atime).
    pub attrs: u64,
    /// Options passed to the filesystem (`mode=755`, `size=64k`, `newinstance`, ...).
    pub data: Vec<String>,
}

impl MountPlan {
    /// Whether the caller of `create` (host root) makes this mount's tree and sends it to the
    /// container's first process: bind mounts (their sources may be out of the container's
    /// reach), and an mqueue filesystem of a joined IPC namespace (only a process in that
    /// namespace with rights over it, the caller, can mount its queues). In a joined user
    /// namespace the caller is not in the joined IPC namespace, and the container's root, the
    /// namespace's owner, mounts them itself.
    pub fn made_by_parent(&self, own: &[NsKind], joined_user: bool) -> bool {
        match &self.kind {
            MountKind::Bind { .. } => true,
            MountKind::Filesystem(fs) => {
                fs == "mqueue" && !own.contains(&NsKind::Ipc) && !joined_user
            }
            MountKind::Cgroup => false,
        }
    }
}

/// What is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A host path, recursively (`rbind`) or not; the parent opens it (index into the trees).
    Bind { source: PathBuf, recursive: bool },
    /// A new kernel filesystem: `proc`, `sysfs`, `tmpfs`, `devpts`, `mqueue`.
    Filesystem(String),
    /// `cgroup`/`cgroup2`: the container's view of its cgroup.
    Cgroup,
}

/// A hook to run, as the runtime-spec describes it (recorded in the state for `start` and
/// `delete`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hook {
    pub path: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<u32>,
}

/// The hooks rsafe runs: `createRuntime`/`prestart`, `poststart` and `poststop` in the
/// runtime's namespaces, `createContainer` and `startContainer` in the container's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// `createRuntime` and the deprecated `prestart`, in that order.
    pub create_runtime: Vec<Hook>,
    /// Run by the container's first process before `pivot_root` (paths resolve as the
    /// runtime sees them).
    pub create_container: Vec<Hook>,
    /// Run by the container's first process after `start`, before the workload (paths
    /// resolve in the container's root).
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

/// Cgroup limits from `linux.resources` (or `update`'s). A negative limit is "unlimited".
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub pids: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// `devices.allow`/`devices.deny` lines, in order (v1 devices controller).
    pub devices: Vec<(bool, String)>,
}

impl Resources {
    /// These limits with `newer`'s on top (`update`: what it does not name stays).
    pub fn merged(&self, newer: &Resources) -> Resources {
        Resources {
            memory: newer.memory.or(self.memory),
            memory_swap: newer.memory_swap.or(self.memory_swap),
            pids: newer.pids.or(self.pids),
            cpu_shares: newer.cpu_shares.or(self.cpu_shares),
            cpu_quota: newer.cpu_quota.or(self.cpu_quota),
            cpu_period: newer.cpu_period.or(self.cpu_period),
            cpuset_cpus: newer.cpuset_cpus.clone().or(self.cpuset_cpus.clone()),
            cpuset_mems: newer.cpuset_mems.clone().or(self.cpuset_mems.clone()),
            devices: if newer.devices.is_empty() {
                self.devices.clone()
            } else {
                newer.devices.clone()
            },
        }
    }
}

/// Checks `update --resources` (a runtime-spec `linux.resources` object, read from `path`) as
/// a bundle's: what rsafe cannot apply is refused by name.
pub fn check_resources(
    resources: &oci_spec::runtime::LinuxResources,
    path: &Path,
    bundle_dir: &Path,
) -> Result<Resources, BundleError> {
    let checker = Checker {
        path: path.to_path_buf(),
        dir: bundle_dir.to_path_buf(),
    };
    checker.refuse_unsupported_resources(resources)?;
    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_resources(Some(resources.clone()));
    linux.set_devices(None);
    checker.resources(&linux)
}

/// The device rules runc adds to every container: mknod of any node (harmless: rsafe's user
/// namespace cannot make nodes), null, zero, full, random, urandom, tty, console, ptmx, the
/// pty slaves and tun.
const DEFAULT_ALLOWED_DEVICES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// A bundle's seccomp user notification: the syscalls whose calls wait for an agent, which
/// gets the listener over `listener_path` (runtime-spec `linux.seccomp.listenerPath`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeccompNotify {
    pub listener_path: PathBuf,
    /// `listenerMetadata`, passed to the agent as is.
    pub metadata: String,
    /// x86_64 syscall names (unknown ones are left out, as libseccomp does).
    pub syscalls: Vec<String>,
}

/// At most this many syscalls may be notified (the filter's jumps are 8-bit).
const MAX_NOTIFIED: usize = 200;

/// One clock's offset in a new time namespace: `monotonic` or `boottime`, seconds,
/// nanoseconds.
pub type TimeOffset = (String, i64, u32);

/// An rlimit to set: resource, soft, hard.
pub type Rlimit = (nix::sys::resource::Resource, u64, u64);

/// A bundle checked and turned into what rsafe does.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory (absolute).
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    /// rsafe's own layered root ([`super::layered`]): when set, `create` mounts the overlay
    /// of these layers and the bundle's writable layer instead of binding `rootfs`.
    pub layered: Option<super::layered::LayeredRoot>,
    pub readonly_root: bool,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub terminal: bool,
    pub capabilities: Vec<Capability>,
    pub rlimits: Vec<Rlimit>,
    pub oom_score_adj: Option<i32>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub namespaces: Vec<Namespace>,
    pub user_namespace: UserNamespace,
    pub mounts: Vec<MountPlan>,
    /// Device nodes to bind from the host: (container path, host path).
    pub devices: Vec<(String, PathBuf)>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub sysctl: BTreeMap<String, String>,
    pub seccomp: SeccompProfile,
    /// rsafe's default profile, stacked on a bundle's own (both must allow a call), unless
    /// the bundle is permissive.
    pub floor_seccomp: Option<SeccompProfile>,
    /// The profile's `SCMP_ACT_NOTIFY` rules and where their listener goes
    /// ([`super::notify`]); the profile itself allows those calls.
    pub seccomp_notify: Option<SeccompNotify>,
    pub cgroups_path: Option<String>,
    pub resources: Resources,
    /// `linux.timeOffsets`: (clock, seconds, nanoseconds) written to a new time namespace's
    /// `timens_offsets` before the container's first process enters it.
    pub time_offsets: Vec<TimeOffset>,
    /// `linux.personality`: the persona set before the workload (`PER_LINUX` 0 or
    /// `PER_LINUX32` 8, as runc supports).
    pub personality: Option<u64>,
    pub hooks: Hooks,
    pub annotations: BTreeMap<String, String>,
    /// The policy `rsafe.policy=NAME` named: it narrows the container ([`NamedPolicy`]).
    pub policy: Option<NamedPolicy>,
    /// Where the bundle got less or more than it asked for (shown by `state` and the log).
    pub floor: Vec<String>,
}

impl Bundle {
    /// Reads `<dir>/config.json` and checks it; a policy it names is read from `policy_dir`.
    pub fn load(dir: &Path, policy_dir: &Path) -> Result<Bundle, BundleError> {
        let dir = std::path::absolute(dir).map_err(|source| BundleError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("config.json");
        let bytes = bounded::read_file(&path, bounded::CONFIG).map_err(|e| BundleError::Read {
            path: path.clone(),
            source: e.into(),
        })?;
        let spec: Spec = serde_json::from_slice(&bytes).map_err(|e| BundleError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // Root of a user namespace that is not the host's (rootless podman runs its runtime
        // there) may map only the ids that namespace has.
        let own_map = match (
            nix::unistd::geteuid().is_root(),
            crate::runtime::idmap::nested_identity(),
        ) {
            (true, Some(nested)) => nested,
            _ => IdMap::for_this_process(),
        };
        Checker { path, dir }.check(&spec, &own_map, policy_dir)
    }
}

/// A runtime-spec `process` checked: what rsafe runs (the container's own, or `exec`'s).
#[derive(Debug, Clone)]
pub struct CheckedProcess {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// One set: see [`Checker::capabilities`].
    pub capabilities: Vec<Capability>,
    pub rlimits: Vec<Rlimit>,
}

/// Checks an `exec` process (`--process FILE`, named by `path`) as the container's own.
pub fn check_process(
    process: &oci_spec::runtime::Process,
    path: &Path,
    bundle_dir: &Path,
) -> Result<CheckedProcess, BundleError> {
    Checker {
        path: path.to_path_buf(),
        dir: bundle_dir.to_path_buf(),
    }
    .process(process)
}

/// What [`Checker::isolation`] checked of `linux`: the fields that separate the container
/// from the host (what rsafe's floor adds to them is noted in the caller's `floor`).
struct Isolation {
    namespaces: Vec<Namespace>,
    time_offsets: Vec<TimeOffset>,
    user_namespace: UserNamespace,
    seccomp: SeccompProfile,
    seccomp_notify: Option<SeccompNotify>,
}

/// rsafe's default profile, stacked on a bundle's own profile unless the bundle is
/// permissive (noted in `floor`); none when the bundle has no profile (it gets rsafe's as its
/// own).
fn floor_seccomp(
    linux: &oci_spec::runtime::Linux,
    permissive: bool,
    floor: &mut Vec<String>,
) -> Option<SeccompProfile> {
    (linux.seccomp().is_some() && !permissive).then(|| {
        floor.push("seccomp: the bundle's profile with rsafe's default stacked on it (a call must pass both)".to_string());
        SeccompProfile::builtin_default()
    })
}

/// Checks one config; `path` names it in every error.
struct Checker {
    path: PathBuf,
    dir: PathBuf,
}

impl Checker {
    fn unsupported(&self, field: impl Into<String>, why: impl Into<String>) -> BundleError {
        BundleError::Unsupported {
            path: self.path.clone(),
            field: field.into(),
            why: why.into(),
        }
    }

    fn invalid(&self, field: impl Into<String>, message: impl Into<String>) -> BundleError {
        BundleError::Invalid {
            path: self.path.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// The whole config, group by group in a fixed order (so a config with two faults is
    /// always refused for the same one): the policy annotation, hostname, root, the fields
    /// refused outright, process, the isolation in `linux`, mounts, what `linux` gives the
    /// container, hooks.
    fn check(
        &self,
        spec: &Spec,
        own_map: &IdMap,
        policy_dir: &Path,
    ) -> Result<Bundle, BundleError> {
        let annotations: BTreeMap<String, String> = spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let (permissive, policy) = self.policy_annotation(&annotations, policy_dir)?;
        let mut floor = Vec::new();
        if spec.domainname().is_some() && spec.hostname().is_none() {
            return Err(self.invalid("domainname", "set without hostname"));
        }
        let layered = super::layered::from_annotations(&self.dir, &annotations)
            .map_err(|r| self.invalid(format!("annotations.{}", r.annotation), r.why))?;
        let (rootfs, readonly_root) = self.root(spec, layered.is_some())?;
        let process = spec.process().as_ref().ok_or_else(|| {
            self.invalid("process", "missing (rsafe runs no process-less containers)")
        })?;
        let linux = spec.linux().clone().unwrap_or_default();
        self.refuse_unsupported(spec)?;

        let checked = self.process(process)?;
        if process.no_new_privileges() != Some(true) {
            floor.push("noNewPrivileges: set (rsafe always sets no_new_privs)".to_string());
        }
        let user = process.user();
        let isolation = self.isolation(&linux, own_map, permissive, &mut floor)?;
        let (mounts, mount_floor) = self.mounts(spec.mounts().as_deref().unwrap_or_default())?;
        floor.extend(mount_floor);
        Ok(Bundle {
            dir: self.dir.clone(),
            rootfs,
            layered,
            readonly_root,
            args: checked.args,
            env: checked.env,
            cwd: checked.cwd,
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
            terminal: process.terminal().unwrap_or(false),
            capabilities: checked.capabilities,
            rlimits: checked.rlimits,
            oom_score_adj: process.oom_score_adj(),
            hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
            domainname: spec.domainname().clone().filter(|d| !d.is_empty()),
            namespaces: isolation.namespaces,
            user_namespace: isolation.user_namespace,
            mounts,
            devices: self.devices(&linux)?,
            masked_paths: linux.masked_paths().clone().unwrap_or_default(),
            readonly_paths: linux.readonly_paths().clone().unwrap_or_default(),
            sysctl: linux
                .sysctl()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            floor_seccomp: floor_seccomp(&linux, permissive, &mut floor),
            seccomp: isolation.seccomp,
            seccomp_notify: isolation.seccomp_notify,
            cgroups_path: linux
                .cgroups_path()
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            resources: self.resources(&linux)?,
            time_offsets: isolation.time_offsets,
            personality: self.personality(&linux)?,
            hooks: self.hooks(spec)?,
            annotations,
            policy,
            floor,
        })
    }

    /// Whether the annotations make the bundle permissive, and the policy they name.
    fn policy_annotation(
        &self,
        annotations: &BTreeMap<String, String>,
        policy_dir: &Path,
    ) -> Result<(bool, Option<NamedPolicy>), BundleError> {
        match annotations.get(POLICY_ANNOTATION).map(String::as_str) {
            None | Some("default") => Ok((false, None)),
            Some("permissive") => Ok((true, None)),
            Some(name) => Ok((false, Some(self.named_policy(name, policy_dir)?))),
        }
    }

    /// `root`: the root filesystem's directory (relative to the bundle unless absolute), which
    /// must exist unless the overlay of a layered root is mounted instead (`rsafe run`'s mount
    /// point exists only in its container's namespace), and whether it is read-only.
    fn root(&self, spec: &Spec, layered: bool) -> Result<(PathBuf, bool), BundleError> {
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| self.invalid("root", "missing"))?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            self.dir.join(root.path())
        };
        if !layered && !rootfs.is_dir() {
            return Err(self.invalid(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        Ok((rootfs, root.readonly().unwrap_or(false)))
    }

    /// The namespaces, time offsets, user namespace and seccomp profile of `linux`, each with
    /// what rsafe's floor adds to it noted in `floor`.
    fn isolation(
        &self,
        linux: &oci_spec::runtime::Linux,
        own_map: &IdMap,
        permissive: bool,
        floor: &mut Vec<String>,
    ) -> Result<Isolation, BundleError> {
        let namespaces = self.namespaces(linux)?;
        let time_offsets = self.time_offsets(linux, &namespaces)?;
        let user_namespace = self.user_namespace(linux, own_map, floor)?;
        let (seccomp, seccomp_notify) =
            self.seccomp(linux.seccomp().as_ref(), permissive, floor)?;
        Ok(Isolation {
            namespaces,
            time_offsets,
            user_namespace,
            seccomp,
            seccomp_notify,
        })
    }

    /// The policy `rsafe.policy=NAME` names: `NAME.toml` in `dir`, or a one-line refusal
    /// naming the annotation (not a name, no such policy, not a policy).
    fn named_policy(&self, name: &str, dir: &Path) -> Result<NamedPolicy, BundleError> {
        let field = format!("annotations.{POLICY_ANNOTATION}");
        if !is_policy_name(name) {
            return Err(self.invalid(
                field,
                format!(
                    "{name:?} is not \"default\", \"permissive\" or a policy name (letters, digits, '.', '_', '-'; never a path: policies come only from {})",
                    dir.display()
                ),
            ));
        }
        let file = dir.join(format!("{name}.toml"));
        if !file.is_file() {
            return Err(self.invalid(
                field,
                format!(
                    "{name:?}: no such policy ({} does not exist)",
                    file.display()
                ),
            ));
        }
        let policy = crate::runtime::policy::Policy::from_file(&file)
            .map_err(|e| self.invalid(field, format!("{name:?}: {e}")))?;
        Ok(NamedPolicy {
            name: name.to_string(),
            policy,
        })
    }

    fn process(&self, process: &oci_spec::runtime::Process) -> Result<CheckedProcess, BundleError> {
        let args = process.args().clone().unwrap_or_default();
        if args.is_empty() {
            return Err(self.invalid("process.args", "empty"));
        }
        let cwd = process.cwd().to_string_lossy().into_owned();
        if !cwd.starts_with('/') {
            return Err(self.invalid("process.cwd", format!("{cwd:?} is not absolute")));
        }
        if process
            .apparmor_profile()
            .as_ref()
            .is_some_and(|s| !s.is_empty())
        {
            return Err(self.unsupported(
                "process.apparmorProfile",
                "this host has no AppArmor; rsafe confines with seccomp and landlock",
            ));
        }
        Ok(CheckedProcess {
            args,
            env: process.env().clone().unwrap_or_default(),
            cwd,
            capabilities: self.capabilities(process.capabilities().as_ref())?,
            rlimits: self.rlimits(process.rlimits().as_deref().unwrap_or_default())?,
        })
    }

    /// Fields rsafe does not implement: each is named, with why.
    fn refuse_unsupported(&self, spec: &Spec) -> Result<(), BundleError> {
        let process = spec.process().as_ref();
        let linux = spec.linux().as_ref();
        let checks: [(&str, bool, &str); 9] = [
            (
                "process.selinuxLabel",
                process.is_some_and(|p| p.selinux_label().as_ref().is_some_and(|s| !s.is_empty())),
                "this host has no SELinux",
            ),
            (
                "process.scheduler",
                process.is_some_and(|p| p.scheduler().is_some()),
                "scheduler policies are not applied",
            ),
            (
                "process.ioPriority",
                process.is_some_and(|p| p.io_priority().is_some()),
                "I/O priorities are not applied",
            ),
            (
                "process.execCPUAffinity",
                process.is_some_and(|p| p.exec_cpu_affinity().is_some()),
                "CPU affinity is not applied",
            ),
            (
                "linux.intelRdt",
                linux.is_some_and(|l| l.intel_rdt().is_some()),
                "no resctrl support",
            ),
            (
                "linux.memoryPolicy",
                linux.is_some_and(|l| l.memory_policy().is_some()),
                "NUMA memory policies are not applied",
            ),
            (
                "linux.netDevices",
                linux.is_some_and(|l| l.net_devices().as_ref().is_some_and(|t| !t.is_empty())),
                "network devices are not moved into containers",
            ),
            (
                "linux.mountLabel",
                linux.is_some_and(|l| l.mount_label().as_ref().is_some_and(|s| !s.is_empty())),
                "this host has no SELinux",
            ),
            (
                "linux.rootfsPropagation",
                linux.is_some_and(|l| {
                    l.rootfs_propagation()
                        .as_deref()
                        .is_some_and(|p| p.contains("shared"))
                }),
                "mounts never propagate from a container back to the host",
            ),
        ];
        for (field, set, why) in checks {
            if set {
                return Err(self.unsupported(field, why));
            }
        }
        if let Some(r) = linux.and_then(|l| l.resources().as_ref()) {
            self.refuse_unsupported_resources(r)?;
        }
        Ok(())
    }

    /// The parts of `linux.resources` rsafe's cgroup code does not write.
    fn refuse_unsupported_resources(
        &self,
        r: &oci_spec::runtime::LinuxResources,
    ) -> Result<(), BundleError> {
        let more: [(&str, bool); 5] = [
            ("linux.resources.blockIO", r.block_io().is_some()),
            (
                "linux.resources.hugepageLimits",
                r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()),
            ),
            ("linux.resources.network", r.network().is_some()),
            (
                "linux.resources.rdma",
                r.rdma().as_ref().is_some_and(|v| !v.is_empty()),
            ),
            (
                "linux.resources.unified",
                r.unified().as_ref().is_some_and(|v| !v.is_empty()),
            ),
        ];
        for (field, set) in more {
            if set {
                return Err(self.unsupported(field, "not applied by rsafe's cgroup code"));
            }
        }
        Ok(())
    }

    fn namespaces(&self, linux: &oci_spec::runtime::Linux) -> Result<Vec<Namespace>, BundleError> {
        let mut out = Vec::new();
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            let field = || format!("linux.namespaces[{i}]");
            let kind = match ns.typ() {
                LinuxNamespaceType::Pid => NsKind::Pid,
                LinuxNamespaceType::Network => NsKind::Network,
                LinuxNamespaceType::Ipc => NsKind::Ipc,
                LinuxNamespaceType::Uts => NsKind::Uts,
                LinuxNamespaceType::Cgroup => NsKind::Cgroup,
                LinuxNamespaceType::Time => {
                    if ns.path().is_none() && !crate::runtime::namespaces::time_supported() {
                        return Err(self.unsupported(
                            field(),
                            "this kernel has no time namespaces (Linux 5.6 or later)",
                        ));
                    }
                    NsKind::Time
                }
                LinuxNamespaceType::Mount => {
                    if ns.path().is_some() {
                        return Err(self.unsupported(
                            format!("{}.path", field()),
                            "joining another mount namespace would share its root; rsafe always makes its own",
                        ));
                    }
                    continue;
                }
                LinuxNamespaceType::User => {
                    if ns.path().as_ref().is_some_and(|p| !p.is_absolute()) {
                        return Err(self.invalid(format!("{}.path", field()), "not absolute"));
                    }
                    continue;
                }
            };
            if out.iter().any(|n: &Namespace| n.kind == kind) {
                return Err(
                    self.invalid(field(), format!("{} namespace listed twice", kind.name()))
                );
            }
            if let Some(p) = ns.path()
                && !p.is_absolute()
            {
                return Err(self.invalid(format!("{}.path", field()), "not absolute"));
            }
            out.push(Namespace {
                kind,
                path: ns.path().clone(),
            });
        }
        Ok(out)
    }

    fn user_namespace(
        &self,
        linux: &oci_spec::runtime::Linux,
        own_map: &IdMap,
        floor: &mut Vec<String>,
    ) -> Result<UserNamespace, BundleError> {
        let user = linux
            .namespaces()
            .iter()
            .flatten()
            .enumerate()
            .find(|(_, n)| n.typ() == LinuxNamespaceType::User);
        let listed = user.is_some();
        let uids = linux.uid_mappings().as_deref().unwrap_or_default();
        let gids = linux.gid_mappings().as_deref().unwrap_or_default();
        if let Some((i, ns)) = user
            && let Some(path) = ns.path()
        {
            return self.joined_user(i, path, uids, gids);
        }
        if !listed {
            if !uids.is_empty() || !gids.is_empty() {
                return Err(self.invalid(
                    "linux.uidMappings",
                    "mappings without a user namespace in linux.namespaces",
                ));
            }
            floor.push(format!(
                "user namespace: added (the bundle has none), {own_map}; the root filesystem and bind mounts are id-mapped"
            ));
            return Ok(UserNamespace::Added(own_map.clone()));
        }
        if uids.is_empty() || gids.is_empty() {
            // runc's rootless containers map the caller only; a user namespace without maps is
            // the same as rsafe's own for this caller.
            return Ok(UserNamespace::Bundle(own_map.clone()));
        }
        let stated = self.stated_map(uids, gids)?;
        if stated.uids == own_map.uids && stated.gids == own_map.gids {
            // The caller's own map, written as the caller writes it (a single id without
            // the set-uid helpers: directly, with setgroups denied, as runc does).
            return Ok(UserNamespace::Bundle(own_map.clone()));
        }
        Ok(UserNamespace::Bundle(stated))
    }

    /// `linux.uidMappings`/`gidMappings` as a map; container root may not be host root.
    fn stated_map(
        &self,
        uids: &[LinuxIdMapping],
        gids: &[LinuxIdMapping],
    ) -> Result<IdMap, BundleError> {
        let ranges = |m: &[LinuxIdMapping]| -> Vec<IdRange> {
            m.iter()
                .map(|r| IdRange {
                    container: r.container_id(),
                    host: r.host_id(),
                    size: r.size(),
                })
                .collect()
        };
        let map = IdMap {
            uids: ranges(uids),
            gids: ranges(gids),
            writer: if nix::unistd::geteuid().is_root() {
                MapWriter::Direct
            } else {
                MapWriter::Helpers
            },
            setgroups: true,
        };
        if map.host_uid(0).is_some_and(|h| h == 0) {
            return Err(self.unsupported(
                "linux.uidMappings",
                "container root mapped to host root: container root is never host root under rsafe",
            ));
        }
        Ok(map)
    }

    /// A user namespace named by path (entry `i`): joined, with the bundle's mappings (if
    /// any, both) to be checked against the namespace's own at `create`.
    fn joined_user(
        &self,
        i: usize,
        path: &Path,
        uids: &[LinuxIdMapping],
        gids: &[LinuxIdMapping],
    ) -> Result<UserNamespace, BundleError> {
        let stated = match (uids.is_empty(), gids.is_empty()) {
            (true, true) => None,
            (false, false) => Some(self.stated_map(uids, gids)?),
            (true, false) => {
                return Err(self.invalid(
                    "linux.uidMappings",
                    "missing while linux.gidMappings is given",
                ));
            }
            (false, true) => {
                return Err(self.invalid(
                    "linux.gidMappings",
                    "missing while linux.uidMappings is given",
                ));
            }
        };
        Ok(UserNamespace::Joined(JoinedUser {
            path: path.to_path_buf(),
            field: format!("linux.namespaces[{i}].path"),
            stated,
            map: IdMap {
                uids: Vec::new(),
                gids: Vec::new(),
                writer: MapWriter::Direct,
                setgroups: false,
            },
        }))
    }

    fn seccomp(
        &self,
        seccomp: Option<&LinuxSeccomp>,
        permissive: bool,
        floor: &mut Vec<String>,
    ) -> Result<(SeccompProfile, Option<SeccompNotify>), BundleError> {
        let Some(s) = seccomp else {
            if permissive {
                floor.push(format!(
                    "seccomp: none (the bundle has none and {POLICY_ANNOTATION}=permissive)"
                ));
                return Ok((SeccompProfile::unconfined(), None));
            }
            floor.push("seccomp: rsafe's default profile (the bundle has none)".to_string());
            return Ok((SeccompProfile::builtin_default(), None));
        };
        let mut json =
            serde_json::to_value(s).map_err(|e| self.invalid("linux.seccomp", e.to_string()))?;
        let notify = self.split_notify(&mut json)?;
        let json =
            serde_json::to_vec(&json).map_err(|e| self.invalid("linux.seccomp", e.to_string()))?;
        let profile = SeccompProfile::from_json(&json, &self.path.join("linux.seccomp"))
            .map_err(|e| self.invalid("linux.seccomp", e.to_string()))?;
        Ok((profile, notify))
    }

    /// Takes the `SCMP_ACT_NOTIFY` rules and the listener out of a seccomp profile (JSON):
    /// the profile then allows those calls and a filter of their own notifies them (the
    /// kernel keeps the stricter verdict: a call the profile or rsafe's floor denies stays
    /// denied).
    fn split_notify(
        &self,
        json: &mut serde_json::Value,
    ) -> Result<Option<SeccompNotify>, BundleError> {
        const NOTIFY: &str = "SCMP_ACT_NOTIFY";
        let Some(obj) = json.as_object_mut() else {
            return Ok(None);
        };
        let path = obj.remove("listenerPath");
        let metadata = obj.remove("listenerMetadata");
        if obj.get("defaultAction").and_then(|a| a.as_str()) == Some(NOTIFY) {
            return Err(self.unsupported(
                "linux.seccomp.defaultAction",
                "SCMP_ACT_NOTIFY as the default would notify every call, the runtime's own last ones too; name the syscalls to notify",
            ));
        }
        let mut syscalls = Vec::new();
        for (i, rule) in obj
            .get_mut("syscalls")
            .and_then(|s| s.as_array_mut())
            .into_iter()
            .flatten()
            .enumerate()
        {
            if rule.get("action").and_then(|a| a.as_str()) != Some(NOTIFY) {
                continue;
            }
            if rule
                .get("args")
                .and_then(|a| a.as_array())
                .is_some_and(|a| !a.is_empty())
            {
                return Err(self.unsupported(
                    format!("linux.seccomp.syscalls[{i}].args"),
                    "SCMP_ACT_NOTIFY rules with argument conditions",
                ));
            }
            let names = rule.get("names").and_then(|n| n.as_array());
            syscalls.extend(
                names
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.as_str())
                    .filter(|n| {
                        libseccomp::ScmpSyscall::from_name_by_arch(n, libseccomp::ScmpArch::X8664)
                            .is_ok_and(|s| s.as_raw_syscall() >= 0)
                    })
                    .map(str::to_string),
            );
            rule["action"] = serde_json::Value::from("SCMP_ACT_ALLOW");
        }
        syscalls.sort();
        syscalls.dedup();
        if syscalls.is_empty() {
            return Ok(None);
        }
        if syscalls.len() > MAX_NOTIFIED {
            return Err(self.unsupported(
                "linux.seccomp.syscalls",
                format!("more than {MAX_NOTIFIED} syscalls with SCMP_ACT_NOTIFY"),
            ));
        }
        let listener_path = match path.as_ref().and_then(|p| p.as_str()) {
            Some(p) if Path::new(p).is_absolute() => PathBuf::from(p),
            Some(_) => return Err(self.invalid("linux.seccomp.listenerPath", "not absolute")),
            None => {
                return Err(self.invalid(
                    "linux.seccomp.listenerPath",
                    "missing: SCMP_ACT_NOTIFY needs the agent's socket",
                ));
            }
        };
        Ok(Some(SeccompNotify {
            listener_path,
            metadata: metadata
                .as_ref()
                .and_then(|m| m.as_str())
                .unwrap_or_default()
                .to_string(),
            syscalls,
        }))
    }

    fn capabilities(
        &self,
        caps: Option<&oci_spec::runtime::LinuxCapabilities>,
    ) -> Result<Vec<Capability>, BundleError> {
        let Some(c) = caps else {
            return Ok(Vec::new());
        };
        let convert = |set: &Option<oci_spec::runtime::Capabilities>, name: &str| {
            set.iter()
                .flatten()
                .map(|cap| {
                    let text = cap.to_string();
                    caps::parse_name(&text).ok_or_else(|| {
                        self.invalid(
                            format!("process.capabilities.{name}"),
                            format!("unknown capability {text}"),
                        )
                    })
                })
                .collect::<Result<Vec<Capability>, _>>()
        };
        let bounding = convert(c.bounding(), "bounding")?;
        let permitted = convert(c.permitted(), "permitted")?;
        let effective = convert(c.effective(), "effective")?;
        let ambient = convert(c.ambient(), "ambient")?;
        // rsafe keeps one set (bounding = permitted = effective): a capability in all three,
        // or ambient (granted to a non-root user's process) and bounding. Inheritable is
        // always emptied: nothing executed inherits a capability it was not given.
        let mut keep: Vec<Capability> = bounding
            .iter()
            .filter(|c| (permitted.contains(c) && effective.contains(c)) || ambient.contains(c))
            .copied()
            .collect();
        keep.sort_by_key(|c| c.index());
        keep.dedup();
        Ok(keep)
    }

    fn rlimits(
        &self,
        rlimits: &[oci_spec::runtime::PosixRlimit],
    ) -> Result<Vec<Rlimit>, BundleError> {
        rlimits
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let resource = match r.typ() {
                    PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
                    PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
                    PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
                    PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
                    PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
                    PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
                    PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
                    PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
                    PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
                    PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
                    PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
                    PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
                    PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
                    PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
                    PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
                    PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
                };
                if r.soft() > r.hard() {
                    return Err(self.invalid(
                        format!("process.rlimits[{i}]"),
                        format!("soft limit {} above hard limit {}", r.soft(), r.hard()),
                    ));
                }
                Ok((resource, r.soft(), r.hard()))
            })
            .collect()
    }

    fn devices(
        &self,
        linux: &oci_spec::runtime::Linux,
    ) -> Result<Vec<(String, PathBuf)>, BundleError> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let mut out = Vec::new();
        for (i, d) in linux.devices().iter().flatten().enumerate() {
            let field = format!("linux.devices[{i}]");
            let path = d.path().to_string_lossy().into_owned();
            // A user namespace cannot make device nodes: the host's node is bound instead, so
            // it must exist with the same numbers.
            let meta = std::fs::metadata(d.path()).map_err(|e| {
                self.unsupported(
                    &field,
                    format!("{path}: {e} on the host (a user namespace cannot make device nodes; rsafe binds the host's)"),
                )
            })?;
            let rdev = meta.rdev();
            let numbers = (libc::major(rdev) as i64, libc::minor(rdev) as i64);
            let kind_ok = meta.file_type().is_char_device() || meta.file_type().is_block_device();
            if !kind_ok || numbers != (d.major(), d.minor()) {
                return Err(self.unsupported(
                    &field,
                    format!(
                        "{path} on the host is not device {}:{} (a user namespace cannot make device nodes; rsafe binds the host's)",
                        d.major(),
                        d.minor()
                    ),
                ));
            }
            out.push((path.clone(), PathBuf::from(path)));
        }
        Ok(out)
    }

    /// `linux.timeOffsets`: only for a new time namespace (an existing one's offsets are
    /// fixed once a process is in it), `monotonic` and `boottime` only.
    fn time_offsets(
        &self,
        linux: &oci_spec::runtime::Linux,
        namespaces: &[Namespace],
    ) -> Result<Vec<TimeOffset>, BundleError> {
        let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) else {
            return Ok(Vec::new());
        };
        let own_time = namespaces
            .iter()
            .any(|n| n.kind == NsKind::Time && n.path.is_none());
        if !own_time {
            return Err(self.invalid(
                "linux.timeOffsets",
                "needs a new time namespace in linux.namespaces (no path: a joined one's offsets are fixed)",
            ));
        }
        let mut out = Vec::new();
        for (clock, offset) in offsets {
            let field = format!("linux.timeOffsets.{clock}");
            if clock != "monotonic" && clock != "boottime" {
                return Err(self.invalid(
                    field,
                    "not a clock of time namespaces (monotonic, boottime)",
                ));
            }
            let nanos = offset.nanosecs().unwrap_or(0);
            if nanos >= 1_000_000_000 {
                return Err(
                    self.invalid(field, format!("nanosecs {nanos} is not below one second"))
                );
            }
            out.push((clock.clone(), offset.secs().unwrap_or(0), nanos));
        }
        out.sort();
        Ok(out)
    }

    fn personality(&self, linux: &oci_spec::runtime::Linux) -> Result<Option<u64>, BundleError> {
        let Some(p) = linux.personality() else {
            return Ok(None);
        };
        if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(self.unsupported(
                "linux.personality.flags",
                "personality flags are not set (the LINUX and LINUX32 domains are)",
            ));
        }
        Ok(Some(match p.domain() {
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0,
            oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 8,
        }))
    }

    fn resources(&self, linux: &oci_spec::runtime::Linux) -> Result<Resources, BundleError> {
        let Some(r) = linux.resources() else {
            return Ok(Resources::default());
        };
        let mut out = Resources::default();
        if let Some(m) = r.memory() {
            out.memory = m.limit().filter(|l| *l != 0);
            out.memory_swap = m.swap().filter(|l| *l != 0);
            if m.kernel().is_some() || m.kernel_tcp().is_some() {
                return Err(self.unsupported(
                    "linux.resources.memory.kernel",
                    "kernel memory limits are deprecated and not applied",
                ));
            }
        }
        out.pids = r.pids().as_ref().map(|p| p.limit()).filter(|l| *l != 0);
        if let Some(c) = r.cpu() {
            out.cpu_shares = c.shares().filter(|s| *s > 0);
            out.cpu_quota = c.quota().filter(|q| *q != 0);
            out.cpu_period = c.period().filter(|p| *p > 0);
            out.cpuset_cpus = c.cpus().clone().filter(|s| !s.is_empty());
            out.cpuset_mems = c.mems().clone().filter(|s| !s.is_empty());
            if c.realtime_runtime().is_some_and(|v| v != 0)
                || c.realtime_period().is_some_and(|v| v != 0)
            {
                return Err(self.unsupported(
                    "linux.resources.cpu.realtimeRuntime",
                    "real-time scheduling is not given to containers",
                ));
            }
        }
        for d in r.devices().iter().flatten() {
            let typ = d.typ().map_or("a".to_string(), |t| t.as_str().to_string());
            let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
            let line = if typ == "a" {
                "a".to_string()
            } else {
                format!(
                    "{typ} {}:{} {}",
                    num(d.major()),
                    num(d.minor()),
                    d.access().clone().unwrap_or_else(|| "rwm".into())
                )
            };
            out.devices.push((d.allow(), line));
        }
        if !out.devices.is_empty() {
            // As runc: the devices every container has (and the bundle's own) stay usable
            // after the bundle's rules, which usually begin by denying everything.
            for line in DEFAULT_ALLOWED_DEVICES {
                out.devices.push((true, line.to_string()));
            }
            for d in linux.devices().iter().flatten() {
                let typ = if d.typ() == oci_spec::runtime::LinuxDeviceType::B {
                    "b"
                } else {
                    "c"
                };
                out.devices
                    .push((true, format!("{typ} {}:{} rwm", d.major(), d.minor())));
            }
        }
        Ok(out)
    }

    fn hooks(&self, spec: &Spec) -> Result<Hooks, BundleError> {
        let Some(h) = spec.hooks() else {
            return Ok(Hooks::default());
        };
        let convert = |list: &Option<Vec<oci_spec::runtime::Hook>>, name: &str| {
            list.iter()
                .flatten()
                .enumerate()
                .map(|(i, hook)| {
                    if !hook.path().is_absolute() {
                        return Err(self.invalid(format!("hooks.{name}[{i}].path"), "not absolute"));
                    }
                    Ok(Hook {
                        path: hook.path().clone(),
                        args: hook.args().clone().unwrap_or_default(),
                        env: hook.env().clone().unwrap_or_default(),
                        timeout: hook
                            .timeout()
                            .and_then(|t| u32::try_from(t).ok())
                            .filter(|t| *t > 0),
                    })
                })
                .collect::<Result<Vec<Hook>, _>>()
        };
        #[allow(deprecated)]
        let prestart = convert(h.prestart(), "prestart")?;
        let mut create_runtime = convert(h.create_runtime(), "createRuntime")?;
        create_runtime.extend(prestart);
        Ok(Hooks {
            create_runtime,
            create_container: convert(h.create_container(), "createContainer")?,
            start_container: convert(h.start_container(), "startContainer")?,
            poststart: convert(h.poststart(), "poststart")?,
            poststop: convert(h.poststop(), "poststop")?,
        })
    }

    fn mounts(&self, mounts: &[Mount]) -> Result<(Vec<MountPlan>, Vec<String>), BundleError> {
        let mut out = Vec::new();
        let mut floor = Vec::new();
        for (i, m) in mounts.iter().enumerate() {
            let field = format!("mounts[{i}]");
            let destination = m.destination().to_string_lossy().into_owned();
            if !destination.starts_with('/') {
                return Err(self.invalid(
                    format!("{field}.destination"),
                    format!("{destination:?} is not absolute"),
                ));
            }
            if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
                return Err(self.unsupported(
                    format!("{field}.uidMappings"),
                    "per-mount id maps are not supported (rsafe id-maps bind mounts itself when it adds the user namespace)",
                ));
            }
            let options = m.options().clone().unwrap_or_default();
            let parsed = parse_options(&options)
                .map_err(|o| self.unsupported(format!("{field}.options"), format!("{o:?}")))?;
            if parsed.propagation_to_host {
                return Err(self.unsupported(
                    format!("{field}.options"),
                    "shared propagation: mounts never propagate from a container back to the host",
                ));
            }
            let typ = m.typ().clone().unwrap_or_default();
            let kind = if parsed.bind.is_some() || typ == "bind" {
                let source = m.source().clone().ok_or_else(|| {
                    self.invalid(format!("{field}.source"), "a bind mount needs a source")
                })?;
                let source = if source.is_absolute() {
                    source
                } else {
                    self.dir.join(source)
                };
                MountKind::Bind {
                    source,
                    recursive: parsed.bind.unwrap_or(false),
                }
            } else {
                match typ.as_str() {
                    "proc" | "sysfs" | "tmpfs" | "devpts" | "mqueue" => {
                        MountKind::Filesystem(typ.clone())
                    }
                    "cgroup" | "cgroup2" => MountKind::Cgroup,
                    other => {
                        return Err(self.unsupported(
                            format!("{field}.type"),
                            format!("{other:?}: rsafe mounts proc, sysfs, tmpfs, devpts, mqueue, cgroup and bind mounts"),
                        ));
                    }
                }
            };
            if parsed.slave {
                floor.push(format!("{destination}: private instead of slave propagation (host mounts made later are not seen)"));
            }
            out.push(MountPlan {
                destination,
                kind,
                attrs: parsed.attrs,
                data: parsed.data,
            });
        }
        Ok((out, floor))
    }
}

/// Mount options split into what they are.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    attrs: u64,
    data: Vec<String>,
    /// `Some(recursive)` for `bind`/`rbind`.
    bind: Option<bool>,
    propagation_to_host: bool,
    slave: bool,
}

/// Splits `options` as runc does: flags become mount attributes, the rest is passed to the
/// filesystem. Returns the first option rsafe cannot honour.
fn parse_options(options: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    for opt in options {
        let (set, clear): (u64, u64) = match opt.as_str() {
            "ro" => (libc::MOUNT_ATTR_RDONLY, 0),
            "rw" => (0, libc::MOUNT_ATTR_RDONLY),
            "nosuid" => (libc::MOUNT_ATTR_NOSUID, 0),
            "nodev" => (libc::MOUNT_ATTR_NODEV, 0),
            "noexec" => (libc::MOUNT_ATTR_NOEXEC, 0),
            "suid" => (0, libc::MOUNT_ATTR_NOSUID),
            "dev" => (0, libc::MOUNT_ATTR_NODEV),
            "exec" => (0, libc::MOUNT_ATTR_NOEXEC),
            "noatime" => (libc::MOUNT_ATTR_NOATIME, 0),
            "strictatime" => (libc::MOUNT_ATTR_STRICTATIME, 0),
            "nodiratime" => (libc::MOUNT_ATTR_NODIRATIME, 0),
            "relatime" | "norelatime" | "atime" | "diratime" | "defaults" | "async" => (0, 0),
            "bind" => {
                o.bind = Some(o.bind.unwrap_or(false));
                (0, 0)
            }
            "rbind" => {
                o.bind = Some(true);
                (0, 0)
            }
            "private" | "rprivate" | "unbindable" | "runbindable" => (0, 0),
            "slave" | "rslave" => {
                o.slave = true;
                (0, 0)
            }
            "shared" | "rshared" => {
                o.propagation_to_host = true;
                (0, 0)
            }
            "idmap" | "ridmap" | "tmpcopyup" | "copy-symlink" | "src-nofollow" => {
                return Err(opt.clone());
            }
            // rro, rnosuid, ... (recursive attributes): bind mounts are recursive here anyway.
            r if r.starts_with('r') && matches!(&r[1..], "ro" | "nosuid" | "nodev" | "noexec") => {
                let flag = match &r[1..] {
                    "ro" => libc::MOUNT_ATTR_RDONLY,
                    "nosuid" => libc::MOUNT_ATTR_NOSUID,
                    "nodev" => libc::MOUNT_ATTR_NODEV,
                    _ => libc::MOUNT_ATTR_NOEXEC,
                };
                (flag, 0)
            }
            data => {
                o.data.push(data.to_string());
                (0, 0)
            }
        };
        o.attrs = (o.attrs | set) & !clear;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle_with(config: serde_json::Value) -> (tempfile::TempDir, Result<Bundle, BundleError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let path = dir.path().join("config.json");
        let spec: Spec = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let own = super::super::test_root_map();
        let result = Checker {
            path,
            dir: dir.path().to_path_buf(),
        }
        .check(&spec, &own, Path::new(DEFAULT_POLICY_DIR));
        (dir, result)
    }

    #[test]
    fn a_bundle_stating_the_callers_own_map_gets_the_callers_writer() {
        // A rootless caller without subordinate ids: its uid alone, setgroups denied.
        let single = IdRange {
            container: 0,
            host: 1001,
            size: 1,
        };
        let own = IdMap {
            uids: vec![single],
            gids: vec![single],
            writer: MapWriter::Direct,
            setgroups: false,
        };
        let mut config = minimal();
        config["linux"]["namespaces"] = json!([{"type": "user"}, {"type": "mount"}]);
        let mapping = json!([{"containerID": 0, "hostID": 1001, "size": 1}]);
        config["linux"]["uidMappings"] = mapping.clone();
        config["linux"]["gidMappings"] = mapping;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let spec: Spec = serde_json::from_value(config).unwrap();
        let b = Checker {
            path: dir.path().join("config.json"),
            dir: dir.path().to_path_buf(),
        }
        .check(&spec, &own, Path::new(DEFAULT_POLICY_DIR))
        .unwrap();
        assert_eq!(b.user_namespace, UserNamespace::Bundle(own));
    }

    fn minimal() -> serde_json::Value {
        json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    #[test]
    fn a_bundle_without_user_namespace_gets_one_and_the_default_seccomp() {
        let (_d, b) = bundle_with(minimal());
        let b = b.unwrap();
        assert!(matches!(b.user_namespace, UserNamespace::Added(_)));
        assert_eq!(
            b.seccomp.origin(),
            SeccompProfile::builtin_default().origin()
        );
        assert!(
            b.floor
                .iter()
                .any(|f| f.starts_with("user namespace: added"))
        );
        assert!(
            b.floor
                .iter()
                .any(|f| f.starts_with("seccomp: rsafe's default"))
        );
        assert!(b.floor.iter().any(|f| f.starts_with("noNewPrivileges")));
        assert_eq!(
            b.namespaces,
            vec![Namespace {
                kind: NsKind::Pid,
                path: None
            }]
        );
    }

    #[test]
    fn permissive_annotation_is_the_only_way_to_no_seccomp() {
        let mut c = minimal();
        c["annotations"] = json!({"rsafe.policy": "permissive"});
        let (_d, b) = bundle_with(c);
        assert!(b.unwrap().seccomp.is_unconfined());
        let mut c = minimal();
        c["annotations"] = json!({"rsafe.policy": "off"});
        let (_d, b) = bundle_with(c);
        assert!(
            b.unwrap_err()
                .to_string()
                .contains("annotations.rsafe.policy")
        );
    }

    #[test]
    fn a_policy_is_named_never_given_by_path() {
        for good in ["web", "web.v2", "app_1-x", "0"] {
            assert!(is_policy_name(good), "{good}");
        }
        for bad in [
            "", "..", "../x", "/etc/x", "a/b", ".hidden", "-x", "web toml", "wéb", "x\n",
        ] {
            assert!(!is_policy_name(bad), "{bad:?}");
        }
        assert!(!is_policy_name(&"a".repeat(65)));
        // Through the annotation: the name is read from the policy directory, a path is
        // refused whatever it points at.
        let policies = tempfile::tempdir().unwrap();
        std::fs::write(
            policies.path().join("web.toml"),
            "[capabilities]\nkeep = [\"CHOWN\"]\n",
        )
        .unwrap();
        let check = |value: &str| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("rootfs")).unwrap();
            let mut c = minimal();
            c["annotations"] = json!({"rsafe.policy": value});
            let spec: Spec = serde_json::from_value(c).unwrap();
            Checker {
                path: dir.path().join("config.json"),
                dir: dir.path().to_path_buf(),
            }
            .check(&spec, &super::super::test_root_map(), policies.path())
        };
        let named = check("web").unwrap().policy.unwrap();
        assert_eq!(named.name, "web");
        assert_eq!(named.policy.capabilities, [Capability::CAP_CHOWN]);
        let web = policies.path().join("web.toml");
        for bad in ["../web", web.to_str().unwrap(), "nope"] {
            let e = check(bad).unwrap_err().to_string();
            assert!(e.contains("annotations.rsafe.policy"), "{e}");
            assert!(e.contains(&format!("{bad:?}")), "{e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn a_bundles_own_seccomp_profile_gets_rsafes_stacked_on_it() {
        let mut c = minimal();
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]});
        let (_d, b) = bundle_with(c.clone());
        let b = b.unwrap();
        assert!(!b.seccomp.is_unconfined());
        assert_eq!(
            b.floor_seccomp.as_ref().map(|p| p.origin().to_string()),
            Some(SeccompProfile::builtin_default().origin().to_string())
        );
        assert!(
            b.floor.iter().any(|f| f.contains("stacked")),
            "{:?}",
            b.floor
        );
        c["annotations"] = json!({"rsafe.policy": "permissive"});
        let (_d, b) = bundle_with(c);
        assert!(b.unwrap().floor_seccomp.is_none());
    }

    #[test]
    fn an_update_names_what_changes_and_keeps_the_rest() {
        let created = Resources {
            memory: Some(64 << 20),
            pids: Some(77),
            cpuset_cpus: Some("0".into()),
            devices: vec![(false, "a".into())],
            ..Resources::default()
        };
        let doc: oci_spec::runtime::LinuxResources =
            serde_json::from_value(json!({"memory": {"limit": -1}, "cpu": {"shares": 512}}))
                .unwrap();
        let update = check_resources(&doc, Path::new("r.json"), Path::new("/")).unwrap();
        let merged = created.merged(&update);
        assert_eq!(merged.memory, Some(-1), "-1 is unlimited, not unset");
        assert_eq!(merged.cpu_shares, Some(512));
        assert_eq!(merged.pids, Some(77));
        assert_eq!(merged.cpuset_cpus.as_deref(), Some("0"));
        assert_eq!(merged.devices, created.devices);
        let doc: oci_spec::runtime::LinuxResources =
            serde_json::from_value(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}))
                .unwrap();
        let err = check_resources(&doc, Path::new("r.json"), Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("r.json") && err.contains("linux.resources.hugepageLimits"),
            "{err}"
        );
    }

    #[test]
    fn unsupported_fields_are_named() {
        for (patch, field) in [
            (
                json!({"linux": {"intelRdt": {"closID": "x"}}}),
                "linux.intelRdt",
            ),
            (
                json!({"linux": {"personality": {"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]}}}),
                "linux.personality.flags",
            ),
            (
                json!({"linux": {"namespaces": [{"type": "mount", "path": "/proc/1/ns/mnt"}]}}),
                "linux.namespaces[0].path",
            ),
            (
                json!({"mounts": [{"destination": "/x", "type": "overlay", "source": "overlay"}]}),
                "mounts[0].type",
            ),
            (
                json!({"mounts": [{"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rshared"]}]}),
                "mounts[0].options",
            ),
            (
                json!({"hooks": {"startContainer": [{"path": "bin/true"}]}}),
                "hooks.startContainer[0].path",
            ),
            (
                json!({"linux": {"namespaces": [{"type": "user"}], "uidMappings": [{"containerID": 0, "hostID": 0, "size": 1}], "gidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]}}),
                "linux.uidMappings",
            ),
        ] {
            let mut c = minimal();
            for (k, v) in patch.as_object().unwrap() {
                if k == "linux" {
                    for (lk, lv) in v.as_object().unwrap() {
                        c["linux"][lk] = lv.clone();
                    }
                } else {
                    c[k] = v.clone();
                }
            }
            let (_d, b) = bundle_with(c);
            let err = b.unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
            assert!(err.contains("config.json"), "{err}");
        }
    }

    #[test]
    fn joined_namespaces_keep_their_paths() {
        let mut c = minimal();
        c["linux"]["namespaces"] =
            json!([{"type": "network", "path": "/run/netns/x"}, {"type": "uts"}]);
        let (_d, b) = bundle_with(c);
        let b = b.unwrap();
        assert_eq!(
            b.namespaces[0],
            Namespace {
                kind: NsKind::Network,
                path: Some("/run/netns/x".into())
            }
        );
        assert_eq!(b.namespaces[1].path, None);
    }

    #[test]
    fn a_user_namespace_named_by_path_is_joined_with_the_mappings_to_check() {
        let mut c = minimal();
        c["linux"]["namespaces"] =
            json!([{"type": "pid"}, {"type": "user", "path": "/proc/7/ns/user"}]);
        let (_d, b) = bundle_with(c.clone());
        let b = b.unwrap();
        let joined = b.user_namespace.joined().unwrap();
        assert_eq!(joined.path, Path::new("/proc/7/ns/user"));
        assert_eq!(joined.field, "linux.namespaces[1].path");
        assert_eq!(joined.stated, None);
        assert!(b.user_namespace.idmap().uids.is_empty(), "read at create");
        assert!(
            !b.floor
                .iter()
                .any(|f| f.starts_with("user namespace: added"))
        );
        let mapping = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["uidMappings"] = mapping.clone();
        c["linux"]["gidMappings"] = mapping;
        let (_d, b) = bundle_with(c.clone());
        let stated = b
            .unwrap()
            .user_namespace
            .joined()
            .unwrap()
            .stated
            .clone()
            .unwrap();
        assert_eq!(stated.host_uid(0), Some(200000));
        c["linux"]["gidMappings"] = json!([]);
        let (_d, b) = bundle_with(c.clone());
        assert!(
            b.unwrap_err()
                .to_string()
                .contains("linux.gidMappings: missing")
        );
        c["linux"]["namespaces"] = json!([{"type": "user", "path": "proc/7/ns/user"}]);
        let (_d, b) = bundle_with(c);
        let err = b.unwrap_err().to_string();
        assert!(
            err.contains("linux.namespaces[0].path: not absolute"),
            "{err}"
        );
    }

    #[test]
    fn time_offsets_need_a_new_time_namespace() {
        let mut c = minimal();
        let offsets =
            json!({"boottime": {"secs": 86400, "nanosecs": 5}, "monotonic": {"secs": -3}});
        c["linux"]["timeOffsets"] = offsets.clone();
        let (_d, b) = bundle_with(c.clone());
        let err = b.unwrap_err().to_string();
        assert!(
            err.contains("linux.timeOffsets: needs a new time namespace"),
            "{err}"
        );
        c["linux"]["namespaces"] = json!([{"type": "time", "path": "/proc/7/ns/time"}]);
        let (_d, b) = bundle_with(c.clone());
        assert!(b.unwrap_err().to_string().contains("linux.timeOffsets"));
        if !crate::runtime::namespaces::time_supported() {
            return;
        }
        c["linux"]["namespaces"] = json!([{"type": "time"}]);
        let (_d, b) = bundle_with(c.clone());
        let b = b.unwrap();
        assert_eq!(
            b.time_offsets,
            vec![
                ("boottime".to_string(), 86400, 5),
                ("monotonic".to_string(), -3, 0)
            ]
        );
        assert_eq!(b.namespaces[0].kind, NsKind::Time);
        c["linux"]["timeOffsets"] = json!({"realtime": {"secs": 1}});
        let (_d, b) = bundle_with(c.clone());
        assert!(
            b.unwrap_err()
                .to_string()
                .contains("linux.timeOffsets.realtime")
        );
        c["linux"]["timeOffsets"] = json!({"boottime": {"nanosecs": 1_000_000_000u32}});
        let (_d, b) = bundle_with(c);
        assert!(b.unwrap_err().to_string().contains("not below one second"));
    }

    #[test]
    fn notified_syscalls_get_their_own_filter_and_the_profile_allows_them() {
        let mut c = minimal();
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "listenerPath": "/run/agent.sock",
            "listenerMetadata": "probe",
            "syscalls": [
                {"names": ["mkdir", "mkdirat", "no_such_call"], "action": "SCMP_ACT_NOTIFY"},
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"}
            ]
        });
        let (_d, b) = bundle_with(c.clone());
        let b = b.unwrap();
        let n = b.seccomp_notify.unwrap();
        assert_eq!(n.listener_path, Path::new("/run/agent.sock"));
        assert_eq!(n.metadata, "probe");
        assert_eq!(n.syscalls, vec!["mkdir", "mkdirat"]);
        let rules = b.seccomp.profile().unwrap();
        assert!(
            rules
                .syscalls
                .iter()
                .any(|r| r.names.contains(&"mkdir".to_string())
                    && r.action == crate::runtime::seccomp::Action::Allow),
            "{rules:?}"
        );
        let mut no_listener = c.clone();
        no_listener["linux"]["seccomp"]
            .as_object_mut()
            .unwrap()
            .remove("listenerPath");
        let (_d, b) = bundle_with(no_listener);
        assert!(
            b.unwrap_err()
                .to_string()
                .contains("linux.seccomp.listenerPath: missing")
        );
        let mut args = c.clone();
        args["linux"]["seccomp"]["syscalls"][0]["args"] =
            json!([{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]);
        let (_d, b) = bundle_with(args);
        assert!(
            b.unwrap_err()
                .to_string()
                .contains("linux.seccomp.syscalls[0].args")
        );
        c["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_NOTIFY");
        let (_d, b) = bundle_with(c);
        assert!(
            b.unwrap_err()
                .to_string()
                .contains("linux.seccomp.defaultAction")
        );
    }

    #[test]
    fn capabilities_are_one_set() {
        let mut c = minimal();
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "inheritable": ["CAP_CHOWN"]
        });
        let (_d, b) = bundle_with(c);
        assert_eq!(
            b.unwrap().capabilities,
            vec![Capability::CAP_CHOWN, Capability::CAP_KILL]
        );
    }

    #[test]
    fn mount_options_split_like_runc() {
        let o = parse_options(&[
            "nosuid".into(),
            "noexec".into(),
            "mode=755".into(),
            "size=65536k".into(),
            "ro".into(),
        ])
        .unwrap();
        assert_eq!(
            o.attrs,
            libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOEXEC | libc::MOUNT_ATTR_RDONLY
        );
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(o.bind, None);
        let o = parse_options(&["rbind".into(), "ro".into(), "rw".into()]).unwrap();
        assert_eq!((o.bind, o.attrs), (Some(true), 0));
        assert_eq!(parse_options(&["idmap".into()]).unwrap_err(), "idmap");
    }

    #[test]
    fn podman_mounts_are_understood() {
        let mut c = minimal();
        c["mounts"] = json!([
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "/etc/hosts", "options": ["bind", "rprivate"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"]}
        ]);
        let (_d, b) = bundle_with(c);
        let b = b.unwrap();
        assert_eq!(b.mounts.len(), 6);
        assert_eq!(
            b.mounts[3].data,
            vec!["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
        );
        assert_eq!(
            b.mounts[4].kind,
            MountKind::Bind {
                source: "/etc/hosts".into(),
                recursive: false
            }
        );
        assert_eq!(b.mounts[5].kind, MountKind::Cgroup);
    }
}
