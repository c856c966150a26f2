//! `rsafe run`'s container as a runtime-spec bundle: [`to_config`] translates rsafe's
//! [`Spec`] (with what is decided only once the container exists: its id map, hostname, the
//! host paths of its generated `/etc` files, its resolved user) into the `config.json` that
//! [`super::bundle`] reads, describing the same container, field by field. It is the first step
//! of one lifecycle for `rsafe run` and `rsafe-runtime` (README, "One lifecycle"): podman keeps
//! such a file as `userdata/config.json` and hands it to its runtime; rsafe writes it as
//! `containers/<id>/config.json` ([`write_config`]) so that people can read it, and so that
//! `tests/oci_from_spec.rs` can run it through `rsafe-runtime` and compare what a probe sees
//! from inside.
//!
//! Why each choice:
//! - Seccomp: a bundle without `linux.seccomp` gets rsafe's default profile, compiled for the
//!   bundle's capabilities as `run` compiles it (the same filter); an inline profile would get
//!   rsafe's default stacked on it, a different filter. So the default profile is left out,
//!   `unconfined` is `rsafe.policy=permissive`, and any other profile is refused by name.
//! - Capabilities: rsafe keeps one set (bounding = permitted = effective, inheritable and
//!   ambient empty): written as such, [`super::bundle`] reads it back to the same set.
//! - Mounts: in the order and with the options rsafe's own code mounts them (proc, `/dev` and
//!   what is under it, sysfs with its own network, the generated files, then the volumes and
//!   tmpfs mounts); the device nodes and `/dev` links both sides add themselves.
//! - What is the runner's and not the runtime's (rsafe's init as pid 1, a volume seeded from
//!   the image, slirp4netns attached between create and start) is recorded as an
//!   `io.github.rsafe.*` annotation, as podman records its own. So is the overlay of the
//!   image's layers and the container's writable layer, which `rsafe-runtime` mounts itself
//!   ([`super::layered`]), and the generated `/etc` files are written beside the config
//!   (`containers/<id>/etc/`): the config runs as it is, with nothing mounted by hand.
//! - What a bundle cannot say (a named network, joining another container's namespaces, a
//!   per-mount id map, a policy's own landlock rules or masked paths) is an error naming the
//!   flag or field: never a config that quietly describes another container.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::layered;
use crate::runtime::idmap::{IdMap, IdRange};
use crate::runtime::policy::Policy;
use crate::runtime::spec::{BindOwnership, MountSpec, NetworkMode, Spec, UlimitName};
use crate::runtime::state::ContainerDir;
use crate::runtime::user::ExecUser;

/// The runtime-spec version the config says it follows.
const OCI_VERSION: &str = "1.0.2";

/// Why `rsafe run`'s spec cannot become a bundle.
#[derive(Debug, thiserror::Error)]
pub enum FromSpecError {
    /// Something the spec has that a bundle cannot express (`what` names the flag or field).
    #[error("{what}: {why}")]
    Unsupported { what: String, why: String },
    /// The container's user could not be resolved in its image.
    #[error("the container's user: {0}")]
    User(#[from] crate::runtime::user::UserError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn unsupported(what: impl Into<String>, why: impl Into<String>) -> FromSpecError {
    FromSpecError::Unsupported {
        what: what.into(),
        why: why.into(),
    }
}

/// The host paths of the files rsafe generates and binds read-only over the image's; `None`
/// where the container gets none (no `resolv.conf` on a loopback-only network without
/// `--dns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
}

/// What is decided for a container beyond its [`Spec`].
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// `root.path`: the directory the root filesystem is (or will be) mounted on.
    pub root: &'a Path,
    /// The container's id map (its user namespace's `uid_map` and `gid_map`).
    pub idmap: &'a IdMap,
    /// The UTS hostname (the spec's, or the id's first 12 characters).
    pub hostname: &'a str,
    pub etc: &'a EtcFiles,
    /// The user `-u` (or the image) names, with `--group-add`'s groups, resolved in the image.
    pub user: &'a ExecUser,
    /// Whether the kernel has time namespaces (rsafe gives the container one where it does).
    pub time_namespace: bool,
}

/// The runtime-spec `config.json` describing the container `rsafe run` starts for `spec`.
pub fn to_config(spec: &Spec, ctx: &Context<'_>) -> Result<Value, FromSpecError> {
    refuse_inexpressible(spec)?;
    let config = json!({
        "ociVersion": OCI_VERSION,
        "process": process(spec, ctx),
        "root": {"path": ctx.root, "readonly": spec.rootfs.read_only},
        "hostname": ctx.hostname,
        "mounts": mounts(spec, ctx),
        "linux": linux(spec, ctx),
        "annotations": annotations(spec),
    });
    Ok(config)
}

/// What rsafe's spec may have that a bundle cannot say, each named by its flag: another
/// container's or a named network, an id-mapped bind mount, and [`refuse_confinement`]'s.
fn refuse_inexpressible(spec: &Spec) -> Result<(), FromSpecError> {
    if let Some(name) = &spec.net.join {
        return Err(unsupported(
            format!("--network container:{name}"),
            "the container is made in another container's user and network namespaces, which a bundle names only by path once that container runs",
        ));
    }
    if let Some(name) = &spec.net.named {
        return Err(unsupported(
            format!("--network {name}"),
            "a named network's veth, bridge and shared hosts file are set up by rsafe's runner, not described by a bundle",
        ));
    }
    for m in &spec.mounts {
        if let MountSpec::Bind {
            source,
            target,
            ownership: BindOwnership::Idmap,
            ..
        } = m
        {
            return Err(unsupported(
                format!("-v {}:{target}:idmap", source.display()),
                "an id-mapped bind mount (rsafe-runtime refuses per-mount id maps)",
            ));
        }
    }
    refuse_confinement(spec)
}

/// The confinement a bundle cannot ask `rsafe-runtime` for: another seccomp profile (one of
/// its own gets the default stacked on it), reported denials, required landlock, landlock
/// rules or masked and read-only paths other than the default policy's.
fn refuse_confinement(spec: &Spec) -> Result<(), FromSpecError> {
    let c = &spec.confinement;
    // Parsed once: the default policy's profile is rsafe's builtin default, the one
    // rsafe-runtime gives a bundle without a profile (a unit test holds them equal).
    let default = Policy::default_policy();
    if !c.seccomp.is_unconfined() && c.seccomp != default.seccomp {
        return Err(unsupported(
            format!("seccomp profile {}", c.seccomp.origin()),
            "a bundle's own profile gets rsafe's default stacked on it, a different filter; only the default profile and unconfined translate to the same one",
        ));
    }
    if c.report_denials {
        return Err(unsupported(
            format!("policy {}: [seccomp] report_denials", c.policy),
            "reporting denials needs the policy named by rsafe.policy=NAME from the runtime's policy directory",
        ));
    }
    if c.require_landlock {
        return Err(unsupported(
            "--require-landlock",
            "rsafe-runtime has no way to be asked for full landlock enforcement",
        ));
    }
    if c.landlock != default.landlock {
        return Err(unsupported(
            format!("policy {}: [landlock]", c.policy),
            "rsafe-runtime applies the default policy's landlock rules, or a policy named by rsafe.policy=NAME from its policy directory",
        ));
    }
    for (field, ours, floor) in [
        ("maskedPaths", &spec.masked_paths, &default.masked_paths),
        (
            "readonlyPaths",
            &spec.readonly_paths,
            &default.readonly_paths,
        ),
    ] {
        if let Some(missing) = floor.iter().find(|p| !ours.contains(p)) {
            return Err(unsupported(
                format!("policy {}: linux.{field}", c.policy),
                format!(
                    "rsafe-runtime always adds the default policy's {missing}, which this policy leaves out"
                ),
            ));
        }
    }
    Ok(())
}

/// `process`: the workload, its user, capabilities (one set), rlimits and no_new_privs.
fn process(spec: &Spec, ctx: &Context<'_>) -> Value {
    let caps: Vec<String> = spec
        .confinement
        .capabilities
        .iter()
        .map(|c| c.to_string())
        .collect();
    let rlimits: Vec<Value> = spec
        .options
        .ulimits
        .iter()
        .map(|u| json!({"type": rlimit_type(u.name), "soft": u.soft, "hard": u.hard}))
        .collect();
    let mut user = json!({"uid": ctx.user.uid, "gid": ctx.user.gid});
    if !ctx.user.groups.is_empty() {
        user["additionalGids"] = json!(ctx.user.groups);
    }
    json!({
        "terminal": spec.process.terminal,
        "user": user,
        "args": spec.process.args,
        "env": spec.process.env,
        "cwd": spec.process.cwd,
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
            "inheritable": [],
            "ambient": [],
        },
        "rlimits": rlimits,
        "noNewPrivileges": true,
    })
}

/// The runtime-spec name of the rlimit `--ulimit` calls `name`.
fn rlimit_type(name: UlimitName) -> String {
    format!("RLIMIT_{}", name.as_str().to_ascii_uppercase())
}

/// `mounts`, in the order rsafe mounts them, with its options.
fn mounts(spec: &Spec, ctx: &Context<'_>) -> Vec<Value> {
    let fs = |dest: &str, typ: &str, opts: &[&str]| json!({"destination": dest, "type": typ, "source": typ, "options": opts});
    let mut pts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    // As `run`: the tty group only where the id map has a group 5.
    if ctx.idmap.host_gid(5).is_some() {
        pts.push("gid=5");
    }
    let shm_size = format!("size={}", spec.options.shm_size.unwrap_or(64 << 20));
    let mut out = vec![
        fs("/proc", "proc", &["nosuid", "nodev", "noexec"]),
        fs(
            "/dev",
            "tmpfs",
            &["nosuid", "noexec", "mode=755", "size=65536k"],
        ),
        fs("/dev/pts", "devpts", &pts),
        fs(
            "/dev/shm",
            "tmpfs",
            &["nosuid", "nodev", "noexec", "mode=1777", &shm_size],
        ),
        fs("/dev/mqueue", "mqueue", &["nosuid", "nodev", "noexec"]),
    ];
    if spec.network.own_namespace() {
        out.push(fs("/sys", "sysfs", &["nosuid", "nodev", "noexec", "ro"]));
    }
    let generated = [
        ("/etc/hostname", ctx.etc.hostname.as_ref()),
        ("/etc/hosts", ctx.etc.hosts.as_ref()),
        ("/etc/resolv.conf", ctx.etc.resolv_conf.as_ref()),
    ];
    for (dest, source) in generated {
        if let Some(source) = source {
            out.push(json!({
                "destination": dest,
                "type": "bind",
                "source": source,
                "options": ["bind", "ro", "nosuid", "nodev", "noexec"],
            }));
        }
    }
    out.extend(spec.mounts.iter().map(user_mount));
    out
}

/// A `-v` or `--tmpfs` mount as rsafe makes it: volumes recursive, never set-uid or devices.
fn user_mount(m: &MountSpec) -> Value {
    match m {
        MountSpec::Bind {
            source,
            target,
            read_only,
            ..
        }
        | MountSpec::Volume {
            source,
            target,
            read_only,
            ..
        } => json!({
            "destination": target,
            "type": "bind",
            "source": source,
            "options": ["rbind", "nosuid", "nodev", if *read_only { "ro" } else { "rw" }],
        }),
        MountSpec::Tmpfs { target, size, mode } => {
            let mut opts = vec![
                "nosuid".to_string(),
                "nodev".to_string(),
                format!("mode={:o}", mode.unwrap_or(0o1777)),
            ];
            opts.extend(size.map(|s| format!("size={s}")));
            json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts})
        }
    }
}

/// `linux`: namespaces, the id map, masked and read-only paths, the cgroup limits.
fn linux(spec: &Spec, ctx: &Context<'_>) -> Value {
    let mut namespaces = vec!["pid", "ipc", "uts", "mount", "user", "cgroup"];
    if spec.network.own_namespace() {
        namespaces.push("network");
    }
    if ctx.time_namespace {
        namespaces.push("time");
    }
    let ranges = |rs: &[IdRange]| -> Vec<Value> {
        rs.iter()
            .map(|r| json!({"containerID": r.container, "hostID": r.host, "size": r.size}))
            .collect()
    };
    let mut linux = json!({
        "namespaces": namespaces.iter().map(|t| json!({"type": t})).collect::<Vec<_>>(),
        "uidMappings": ranges(&ctx.idmap.uids),
        "gidMappings": ranges(&ctx.idmap.gids),
        "maskedPaths": spec.masked_paths,
        "readonlyPaths": spec.readonly_paths,
    });
    if let Some(resources) = resources(spec) {
        linux["resources"] = resources;
    }
    linux
}

/// `linux.resources` for `--memory` (no swap beyond it, as `run` sets), the pid limit and
/// `--cpus` (a quota per rsafe's period); `None` without limits.
fn resources(spec: &Spec) -> Option<Value> {
    let l = &spec.limits;
    let mut r = serde_json::Map::new();
    if let Some(bytes) = l.memory {
        r.insert("memory".into(), json!({"limit": bytes, "swap": bytes}));
    }
    if let Some(pids) = l.pids {
        r.insert("pids".into(), json!({"limit": pids}));
    }
    if let Some(cpus) = l.cpus {
        r.insert(
            "cpu".into(),
            json!({
                "quota": crate::runtime::cgroups::cpu_quota(cpus),
                "period": crate::runtime::cgroups::CPU_PERIOD_US,
            }),
        );
    }
    (!r.is_empty()).then_some(Value::Object(r))
}

/// The annotation prefix of what rsafe's runner does around the runtime.
pub const ANNOTATION_PREFIX: &str = "io.github.rsafe.";

/// The runner's part, recorded: the policy (`rsafe.policy=permissive` when seccomp is
/// unconfined, which is what makes rsafe-runtime load none), the image's layers, init, the
/// network attached between create and start, volumes seeded from the image, published ports,
/// the stop signal (podman's key). What only rsafe's own commands read (labels, the stop
/// timeout, the restart policy, `-i`) stays in `spec.json`.
fn annotations(spec: &Spec) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let key = |k: &str| format!("{ANNOTATION_PREFIX}{k}");
    if spec.confinement.seccomp.is_unconfined() {
        a.insert(
            super::bundle::POLICY_ANNOTATION.to_string(),
            "permissive".to_string(),
        );
    }
    a.insert(key("policy"), spec.confinement.policy.clone());
    let lowers: Vec<String> = spec
        .rootfs
        .lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    a.insert(layered::LOWERS.to_string(), Value::from(lowers).to_string());
    a.insert(key("init"), spec.init.to_string());
    a.insert(
        key("network"),
        match spec.network {
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
            NetworkMode::Slirp4netns => "slirp4netns",
        }
        .to_string(),
    );
    let seeded: Vec<&str> = spec
        .mounts
        .iter()
        .filter_map(|m| match m {
            MountSpec::Volume {
                populate: true,
                target,
                ..
            } => Some(target.as_str()),
            _ => None,
        })
        .collect();
    if !seeded.is_empty() {
        a.insert(key("volumes.seeded"), seeded.join(","));
    }
    // podman's key for the signal its `stop` sends first.
    if let Some(signal) = &spec.options.stop_signal {
        a.insert(
            "org.opencontainers.image.stopSignal".to_string(),
            signal.clone(),
        );
    }
    if !spec.net.ports.is_empty() {
        let ports: Vec<String> = spec.net.ports.iter().map(|p| p.to_string()).collect();
        a.insert(key("ports"), ports.join(","));
    }
    a
}

/// Whether `run` binds a generated `/etc/resolv.conf` into the container (the same rule as
/// its container side): with the host's network or slirp4netns, or loopback only with
/// `--dns`. (A named network's is refused by [`to_config`].)
pub fn gets_resolv_conf(spec: &Spec) -> bool {
    match spec.network {
        NetworkMode::Host | NetworkMode::Slirp4netns => true,
        NetworkMode::None => !spec.net.dns.is_empty(),
    }
}

/// The container's user as its image names it: `-u` (or the image's `User`) and
/// `--group-add`, resolved in the image's `/etc/passwd` and `/etc/group` (the topmost layer
/// that has each, read inside that layer's root, so a symlink in the image never leads to a
/// host file).
pub fn resolve_user(spec: &Spec) -> Result<ExecUser, FromSpecError> {
    let passwd = read_in_layers(&spec.rootfs.lowers, "/etc/passwd")?;
    let group = read_in_layers(&spec.rootfs.lowers, "/etc/group")?;
    let mut user = crate::runtime::user::resolve_in(spec.process.user.as_deref(), &passwd, &group)?;
    crate::runtime::user::add_groups_in(&mut user, &spec.options.group_add, &group)?;
    Ok(user)
}

/// The most an account file may hold here (as the container side reads it).
const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// The text of `path` in the topmost of `lowers` where it resolves (a symlink is followed
/// inside its own layer: an approximation of the overlay's merged view that never leaves the
/// layers); empty when none has it, or the topmost entry is not a regular file (an overlay
/// whiteout).
fn read_in_layers(lowers: &[PathBuf], path: &str) -> Result<String, FromSpecError> {
    use std::os::fd::AsRawFd;
    for layer in lowers.iter().rev() {
        let io = |source| FromSpecError::Io {
            what: format!("{} in {}", path, layer.display()),
            source,
        };
        let root = crate::runtime::mounts::Root::open(layer).map_err(|e| FromSpecError::Io {
            what: format!("layer {}", layer.display()),
            source: std::io::Error::other(e.to_string()),
        })?;
        let fd = match root.resolve(path) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(e)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| io(e.into()))?;
        if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Ok(String::new());
        }
        // The resolved file itself, reopened through its descriptor.
        let bytes = crate::bounded::read_file(
            Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd())),
            MAX_ACCOUNT_FILE,
        )
        .map_err(|e| io(e.into()))?;
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    Ok(String::new())
}

/// Where the generated files are on the host: in the container's directory (`etc-hostname`,
/// `etc-hosts`, `etc-resolv.conf`, the names `rsafe run`'s container side gives them on the
/// scratch tmpfs that hides this directory in its namespace; no directory of their own: a
/// block less for `create` on a nearly full store), written by [`write_etc_files`] for
/// `rsafe-runtime` to bind. (`--read-only` seals the root after they are mounted, so it gets
/// them too.)
pub fn etc_files(dir: &ContainerDir, spec: &Spec) -> EtcFiles {
    EtcFiles {
        hostname: Some(dir.path.join("etc-hostname")),
        hosts: Some(dir.path.join("etc-hosts")),
        resolv_conf: gets_resolv_conf(spec).then(|| dir.path.join("etc-resolv.conf")),
    }
}

/// Writes the files of [`etc_files`] with what `rsafe run`'s container side generates for
/// them (world-readable, in the container's directory that any host id may enter: the
/// container's root reads them through the bind), each whole or, on failure, named.
fn write_etc_files(etc: &EtcFiles, spec: &Spec, hostname: &str) -> Result<(), FromSpecError> {
    use std::os::unix::fs::PermissionsExt;
    let (hosts, resolv) = crate::runtime::container::etc_contents(spec, hostname, false);
    let hostname = format!("{hostname}\n");
    let files = [
        (&etc.hostname, Some(hostname)),
        (&etc.hosts, Some(hosts)),
        (&etc.resolv_conf, resolv),
    ];
    for (path, content) in files {
        let (Some(path), Some(content)) = (path, content) else {
            continue;
        };
        let io_at = |source| FromSpecError::Io {
            what: path.display().to_string(),
            source,
        };
        std::fs::write(path, content).map_err(io_at)?;
        // Whatever the umask: the container's root is another host id.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).map_err(io_at)?;
    }
    Ok(())
}

/// Writes `config.json` beside the container's `spec.json` (mode 0600: it has the
/// environment): the bundle of [`to_config`], with the root where rsafe mounts it and the
/// generated files where rsafe writes them. When the spec cannot be expressed, no file is
/// written and the reason is returned, for `--verbose`; an I/O error is an error.
pub fn write_config(
    dir: &ContainerDir,
    spec: &Spec,
    idmap: &IdMap,
) -> Result<Option<String>, FromSpecError> {
    let path = dir.path.join("config.json");
    let short: String = dir.id.chars().take(12).collect();
    let hostname = spec.hostname.as_deref().unwrap_or(&short);
    let etc = etc_files(dir, spec);
    let config = resolve_user(spec).and_then(|user| {
        let ctx = Context {
            root: &dir.rootfs(),
            idmap,
            hostname,
            etc: &etc,
            user: &user,
            time_namespace: crate::runtime::namespaces::time_supported(),
        };
        to_config(spec, &ctx)
    });
    let mut config = match config {
        Ok(c) => c,
        Err(e @ (FromSpecError::Unsupported { .. } | FromSpecError::User(_))) => {
            return Ok(Some(format!("{}: not written: {e}", path.display())));
        }
        Err(e) => return Err(e),
    };
    // The writable layer, so that rsafe-runtime mounts the layered root itself.
    for (key, sub) in [(layered::UPPER, dir.upper()), (layered::WORK, dir.work())] {
        config["annotations"][key] = json!(sub);
    }
    // Before the config that names them: a config never binds a file that is not there.
    write_etc_files(&etc, spec, hostname)?;
    // Each failure names the file it failed on (written whole to a temporary, then renamed).
    let tmp = dir.path.join(".config.json.tmp");
    let io_at = |file: &Path| {
        let what = file.display().to_string();
        move |source| FromSpecError::Io { what, source }
    };
    let bytes = serde_json::to_vec_pretty(&config).map_err(|e| io_at(&path)(e.into()))?;
    let written = (|| {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_at(&tmp))?;
        file.write_all(&bytes).map_err(io_at(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_at(&path))
    })();
    if written.is_err() {
        // A full store: nothing half-written stays beside the container's records.
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::oci::bundle::{Bundle, MountKind, NsKind, UserNamespace};
    use crate::runtime::seccomp::SeccompProfile;
    use crate::runtime::spec::{
        Confinement, Limits, ProcessSpec, RootfsSpec, Ulimit, parse_ulimit,
    };
    use ::caps::Capability;

    fn spec() -> Spec {
        let policy = Policy::default_policy();
        Spec {
            rootfs: RootfsSpec {
                lowers: vec!["/layers/a".into()],
                read_only: false,
            },
            process: ProcessSpec {
                args: vec!["/bin/sh".into(), "-c".into(), "id".into()],
                env: vec!["PATH=/bin".into(), "A=b".into()],
                cwd: "/work".into(),
                user: None,
                terminal: false,
                stdin: false,
            },
            hostname: None,
            mounts: Vec::new(),
            network: policy.network,
            net: Default::default(),
            limits: policy.limits,
            pids_limit_from_policy: true,
            init: true,
            masked_paths: policy.masked_paths.clone(),
            readonly_paths: policy.readonly_paths.clone(),
            confinement: Confinement::from_policy(&policy, false),
            options: Default::default(),
        }
    }

    fn user() -> ExecUser {
        ExecUser {
            uid: 1000,
            gid: 1000,
            groups: vec![27],
            home: "/home/app".into(),
        }
    }

    /// The config of `spec`, and what `rsafe-runtime` makes of it (a bundle in a temporary
    /// directory whose `rootfs/` is the root).
    fn round_trip(spec: &Spec) -> (Value, Bundle) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir(&root).unwrap();
        let etc = EtcFiles {
            hostname: Some("/c/etc-hostname".into()),
            hosts: Some("/c/etc-hosts".into()),
            resolv_conf: None,
        };
        let map = crate::runtime::oci::test_root_map();
        let u = user();
        let ctx = Context {
            root: &root,
            idmap: &map,
            hostname: "web",
            etc: &etc,
            user: &u,
            time_namespace: false,
        };
        let config = to_config(spec, &ctx).unwrap();
        // Not in a store: the root is `rootfs/`, not the layers (see `layered`).
        let mut bare = config.clone();
        bare["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(layered::LOWERS);
        std::fs::write(dir.path().join("config.json"), bare.to_string()).unwrap();
        let bundle = Bundle::load(dir.path(), Path::new("/nonexistent")).unwrap();
        (config, bundle)
    }

    fn refusal(spec: &Spec) -> String {
        let map = crate::runtime::oci::test_root_map();
        let etc = EtcFiles {
            hostname: None,
            hosts: None,
            resolv_conf: None,
        };
        let u = user();
        let ctx = Context {
            root: Path::new("/r"),
            idmap: &map,
            hostname: "h",
            etc: &etc,
            user: &u,
            time_namespace: false,
        };
        match to_config(spec, &ctx) {
            Err(e @ FromSpecError::Unsupported { .. }) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_default_run_reads_back_as_the_same_container() {
        let spec = spec();
        let (config, b) = round_trip(&spec);
        assert_eq!(b.args, spec.process.args);
        assert_eq!(b.env, spec.process.env);
        assert_eq!(b.cwd, "/work");
        assert_eq!(
            (b.uid, b.gid, b.additional_gids.clone()),
            (1000, 1000, vec![27])
        );
        assert_eq!(b.capabilities, spec.confinement.capabilities);
        assert_eq!(b.hostname.as_deref(), Some("web"));
        assert!(!b.readonly_root);
        // No profile in the bundle: rsafe-runtime compiles rsafe's default, and stacks nothing.
        assert!(config["linux"].get("seccomp").is_none());
        assert_eq!(b.seccomp, SeccompProfile::builtin_default());
        assert!(b.floor_seccomp.is_none());
        assert!(b.policy.is_none());
        // The user namespace is the bundle's own, with rsafe's map (not one added).
        match &b.user_namespace {
            UserNamespace::Bundle(m) => {
                assert_eq!(m.uids, crate::runtime::oci::test_root_map().uids);
                assert_eq!(m.gids, crate::runtime::oci::test_root_map().gids);
            }
            other => panic!("user namespace {other:?}"),
        }
        let kinds: Vec<NsKind> = b.namespaces.iter().map(|n| n.kind).collect();
        assert_eq!(
            kinds,
            [
                NsKind::Pid,
                NsKind::Ipc,
                NsKind::Uts,
                NsKind::Cgroup,
                NsKind::Network
            ]
        );
        assert_eq!(b.masked_paths, spec.masked_paths);
        assert_eq!(b.readonly_paths, spec.readonly_paths);
        assert_eq!(b.resources.pids, Some(4096));
        assert_eq!(b.resources.memory, None);
        let dests: Vec<&str> = b.mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/etc/hostname",
                "/etc/hosts"
            ]
        );
        let hosts = &b.mounts[7];
        assert_eq!(
            hosts.kind,
            MountKind::Bind {
                source: "/c/etc-hosts".into(),
                recursive: false
            }
        );
        let ro = libc::MOUNT_ATTR_RDONLY
            | libc::MOUNT_ATTR_NOSUID
            | libc::MOUNT_ATTR_NODEV
            | libc::MOUNT_ATTR_NOEXEC;
        assert_eq!(hosts.attrs, ro);
        // /dev keeps device nodes usable (no nodev), as rsafe's own /dev.
        assert_eq!(
            b.mounts[1].attrs,
            libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOEXEC
        );
        assert!(b.mounts[2].data.contains(&"gid=5".to_string()));
        assert_eq!(config["annotations"]["io.github.rsafe.init"], "true");
        assert_eq!(
            config["annotations"]["io.github.rsafe.rootfs.lowers"],
            "[\"/layers/a\"]"
        );
    }

    #[test]
    fn flags_become_their_bundle_fields() {
        let mut s = spec();
        s.rootfs.read_only = true;
        s.network = NetworkMode::Host;
        s.confinement.capabilities = vec![Capability::CAP_NET_BIND_SERVICE];
        s.options.ulimits = vec![
            parse_ulimit("nofile=100:200").unwrap(),
            Ulimit {
                name: UlimitName::Core,
                soft: 0,
                hard: u64::MAX,
            },
        ];
        s.options.shm_size = Some(1 << 20);
        s.options.stop_signal = Some("SIGUSR1".into());
        s.limits = Limits {
            memory: Some(64 << 20),
            pids: Some(10),
            cpus: Some(1.5),
        };
        s.mounts = vec![
            MountSpec::Bind {
                source: "/srv/data".into(),
                target: "/data".into(),
                read_only: true,
                ownership: BindOwnership::Host,
            },
            MountSpec::Volume {
                name: "cache".into(),
                source: "/store/volumes/cache/_data".into(),
                target: "/cache".into(),
                read_only: false,
                populate: true,
            },
            MountSpec::Tmpfs {
                target: "/scratch".into(),
                size: Some(1 << 20),
                mode: Some(0o700),
            },
        ];
        let (config, b) = round_trip(&s);
        assert!(b.readonly_root);
        assert_eq!(b.capabilities, vec![Capability::CAP_NET_BIND_SERVICE]);
        assert!(!b.namespaces.iter().any(|n| n.kind == NsKind::Network));
        assert!(!b.mounts.iter().any(|m| m.destination == "/sys"));
        use nix::sys::resource::Resource;
        assert_eq!(
            b.rlimits,
            vec![
                (Resource::RLIMIT_NOFILE, 100, 200),
                (Resource::RLIMIT_CORE, 0, u64::MAX)
            ]
        );
        let shm = b
            .mounts
            .iter()
            .find(|m| m.destination == "/dev/shm")
            .unwrap();
        assert!(shm.data.contains(&"size=1048576".to_string()));
        assert_eq!(b.resources.memory, Some(64 << 20));
        assert_eq!(b.resources.memory_swap, Some(64 << 20));
        assert_eq!(b.resources.pids, Some(10));
        assert_eq!(b.resources.cpu_quota, Some(150_000));
        assert_eq!(b.resources.cpu_period, Some(100_000));
        let user: Vec<_> = b.mounts.iter().rev().take(3).rev().collect();
        assert_eq!(
            user[0].kind,
            MountKind::Bind {
                source: "/srv/data".into(),
                recursive: true
            }
        );
        assert_ne!(user[0].attrs & libc::MOUNT_ATTR_RDONLY, 0);
        assert_eq!(user[1].attrs & libc::MOUNT_ATTR_RDONLY, 0);
        assert_eq!(user[2].kind, MountKind::Filesystem("tmpfs".into()));
        assert_eq!(user[2].data, ["mode=700", "size=1048576"]);
        assert_eq!(
            user[2].attrs,
            libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV
        );
        assert_eq!(
            config["annotations"]["io.github.rsafe.volumes.seeded"],
            "/cache"
        );
        assert_eq!(config["annotations"]["io.github.rsafe.network"], "host");
        assert_eq!(
            config["annotations"]["org.opencontainers.image.stopSignal"],
            "SIGUSR1"
        );
    }

    #[test]
    fn the_default_policys_profile_is_the_bundles_default() {
        assert_eq!(
            Policy::default_policy().seccomp,
            SeccompProfile::builtin_default()
        );
    }

    #[test]
    fn unconfined_seccomp_is_the_permissive_annotation() {
        let mut s = spec();
        s.confinement.seccomp = SeccompProfile::unconfined();
        let (config, b) = round_trip(&s);
        assert_eq!(config["annotations"]["rsafe.policy"], "permissive");
        assert!(b.seccomp.is_unconfined());
        assert!(b.floor_seccomp.is_none());
    }

    #[test]
    fn what_a_bundle_cannot_say_is_refused_by_name() {
        let mut s = spec();
        s.net.join = Some("db".into());
        assert!(refusal(&s).starts_with("--network container:db: "));

        let mut s = spec();
        s.net.named = Some("backend".into());
        assert!(refusal(&s).starts_with("--network backend: "));

        let mut s = spec();
        s.mounts.push(MountSpec::Bind {
            source: "/srv".into(),
            target: "/srv".into(),
            read_only: false,
            ownership: BindOwnership::Idmap,
        });
        assert!(refusal(&s).starts_with("-v /srv:/srv:idmap: "));

        let mut s = spec();
        let json = br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#;
        s.confinement.seccomp =
            SeccompProfile::from_json(json, Path::new("/p/tight.json")).unwrap();
        assert!(refusal(&s).starts_with("seccomp profile /p/tight.json: "));

        let mut s = spec();
        s.confinement.landlock.grant_root = !s.confinement.landlock.grant_root;
        assert!(refusal(&s).starts_with("policy default: [landlock]: "));

        let mut s = spec();
        s.masked_paths.retain(|p| p != "/proc/kcore");
        let why = refusal(&s);
        assert!(
            why.starts_with("policy default: linux.maskedPaths: "),
            "{why}"
        );
        assert!(why.contains("/proc/kcore"), "{why}");

        let mut s = spec();
        s.confinement.require_landlock = true;
        assert!(refusal(&s).starts_with("--require-landlock: "));
    }

    #[test]
    fn the_user_is_read_inside_each_layer_topmost_first() {
        let dir = tempfile::tempdir().unwrap();
        let (low, high) = (dir.path().join("low"), dir.path().join("high"));
        for l in [&low, &high] {
            std::fs::create_dir_all(l.join("etc")).unwrap();
        }
        std::fs::write(
            low.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(low.join("etc/group"), "web:x:33:\nlog:x:4:web\n").unwrap();
        // The upper layer's group file leads out of the layer (to the host's shadow file):
        // resolved inside the layer, it is missing there, and the lower layer's counts.
        std::os::unix::fs::symlink("/../../../../../../etc/shadow", high.join("etc/group"))
            .unwrap();
        std::fs::write(high.join("etc/passwd"), "web:x:33:33::/srv:/bin/sh\n").unwrap();
        let mut s = spec();
        s.rootfs.lowers = vec![low.clone(), high.clone()];
        s.process.user = Some("web".into());
        s.options.group_add = vec!["log".into(), "99".into()];
        let u = resolve_user(&s).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (33, 33, "/srv"));
        assert_eq!(u.groups, [4, 99]);

        s.process.user = Some("nobody".into());
        assert!(matches!(resolve_user(&s), Err(FromSpecError::User(_))));
    }
}
