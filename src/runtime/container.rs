//! The container side, from the parent's Go to `execve`: the first process of the new
//! namespaces becomes root of its user namespace, builds the root filesystem, and then either
//! becomes rsafe's init (forking the workload) or, with `--init=false`, the workload itself.
//! See [`super::process`] for the whole sequence and why it is in that order.

use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use ::caps::Capability;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::{ForkResult, Gid, Uid};
use rustix::fs::{Mode, OFlags};

use super::caps;
use super::cgroups::{Fallback, SelfJoin};
use super::channel::{Channel, ChannelError, Message};
use super::exec::{self, ExecError, Workload};
use super::idmap::IdMap;
use super::init;
use super::landlock::FsAccess;
use super::mounts::{self, MountError, Root};
use super::namespaces::{self, NamespaceError};
use super::network;
use super::rootfs::{self, OverlayDirs, RootfsError, SystemMounts};
use super::seccomp::CompiledFilter;
use super::spec::{MountSpec, NetworkMode, Spec};
use super::state::ContainerDir;
use super::sys;
use super::tty::WinSize;
use super::user::{self, UserError};
use std::net::{IpAddr, Ipv4Addr};

/// Everything the container side needs, moved into the child by `clone`.
pub(super) struct ChildConfig {
    pub spec: Spec,
    pub dir: ContainerDir,
    pub idmap: IdMap,
    pub window: Option<WinSize>,
    /// The parent's descriptors the child inherited and must not keep.
    pub host_fds: [RawFd; 2],
    /// Whether Go carries the layer and volume trees (root) or the child opens them (rootless).
    pub trees_from_parent: bool,
    /// `rsafe run --learn`: the workload stacks the learning filter ([`super::learn`]).
    pub learn: bool,
}

/// What the container side has once its root filesystem is ready.
struct Prepared {
    user: user::ExecUser,
    seccomp: CompiledFilter,
    fallback: Option<Fallback>,
}

/// A failure on the container side (of `rsafe run`, and of the OCI runtime's `create`).
#[derive(Debug, thiserror::Error)]
pub(super) enum ChildError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("{what}: {source}")]
    Step { what: String, source: io::Error },
}

impl ChildError {
    fn exit_code(&self) -> i32 {
        match self {
            ChildError::Exec(e) => e.exit_code(),
            _ => 125,
        }
    }
}

/// A failed step of the set-up, named.
pub(super) fn step<E: Into<io::Error>>(what: impl Into<String>) -> impl FnOnce(E) -> ChildError {
    let what = what.into();
    move |e| ChildError::Step {
        what,
        source: e.into(),
    }
}

/// The container's first process: set up, then become init (or the workload itself).
pub(super) fn container_main(cfg: ChildConfig, chan: Channel) -> i32 {
    for fd in cfg.host_fds {
        let _ = nix::unistd::close(fd);
    }
    let failed = |chan: &Channel, e: ChildError| {
        let code = e.exit_code();
        let _ = chan.send(
            &Message::Failed {
                code,
                message: e.to_string(),
            },
            &[],
        );
        code
    };
    // The network namespace is made here rather than by clone: creating one takes about a
    // millisecond, which this overlaps with the parent's work until Go. The container's user
    // namespace owns it all the same.
    // A container joining another's network (`container:NAME`) was created in it.
    if cfg.spec.network.own_namespace()
        && cfg.spec.net.join.is_none()
        && let Err(e) = namespaces::unshare_network()
    {
        return failed(&chan, e.into());
    }
    let Prepared {
        user,
        seccomp,
        fallback,
    } = match prepare(&cfg, &chan) {
        Ok(prepared) => prepared,
        Err(e) => return failed(&chan, e),
    };
    let workload = Workload {
        process: &cfg.spec.process,
        user: &user,
        setgroups: cfg.idmap.setgroups,
        single_id: cfg.idmap.is_single(),
        fallback,
        hostname: cfg.spec.hostname.as_deref().unwrap_or_default(),
        window: cfg.window,
        confinement: &cfg.spec.confinement,
        seccomp: Some(seccomp),
        landlock_fs: landlock_access(&cfg.spec),
        preserve_fds: 0,
        ulimits: &cfg.spec.options.ulimits,
    };
    let exec = if cfg.learn {
        exec::exec_learning
    } else {
        exec::exec
    };
    if !cfg.spec.init {
        let err = exec(workload, &chan);
        return failed(&chan, err.into());
    }
    // Signals stay blocked from here into the fork; the workload unblocks its own.
    if let Err(e) = init::handled_signals().thread_block() {
        return failed(&chan, step("block signals")(e));
    }
    // SAFETY: this process is single-threaded (a fresh clone of a single-threaded rsafe), so
    // the child may run arbitrary code.
    match unsafe { nix::unistd::fork() } {
        Err(e) => failed(&chan, step("fork the workload")(e)),
        Ok(ForkResult::Child) => {
            let err = exec(workload, &chan);
            let code = failed(&chan, err.into());
            // SAFETY: _exit ends the forked process without running the parent's atexit
            // handlers or flushing buffers it shares with init.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(chan);
            // Init only waits and forwards signals: it keeps CAP_KILL (to signal a workload
            // running as another user) and nothing else, and can never gain more.
            let _ = caps::apply(&[Capability::CAP_KILL]);
            let _ = caps::set_no_new_privs();
            // Init keeps nothing of the host: only stdio stays open.
            let _ = sys::close_from(3);
            init::supervise(child)
        }
    }
}

/// What landlock lets the workload touch besides the policy's own paths: the image read and
/// execute, and the writable places read-write. A writable root is the container's own
/// writable layer, so all of it is; with `--read-only` only tmpfs mounts and read-write
/// volumes are. A policy with `grant_root = false` (a learned one) gets only the writable
/// mounts the command line asked for: the rest comes from its own paths.
pub(super) fn landlock_access(spec: &Spec) -> FsAccess {
    let grant_root = spec.confinement.landlock.grant_root;
    if !spec.rootfs.read_only && grant_root {
        return FsAccess {
            read_exec: Vec::new(),
            read_write: vec![PathBuf::from("/")],
        };
    }
    let writable = spec.mounts.iter().filter_map(|m| match m {
        MountSpec::Bind {
            target,
            read_only: false,
            ..
        }
        | MountSpec::Volume {
            target,
            read_only: false,
            ..
        }
        | MountSpec::Tmpfs { target, .. } => Some(PathBuf::from(target)),
        MountSpec::Bind { .. } | MountSpec::Volume { .. } => None,
    });
    FsAccess {
        read_exec: if grant_root {
            vec![PathBuf::from("/")]
        } else {
            Vec::new()
        },
        read_write: writable.collect(),
    }
}

/// Everything from Go to `pivot_root`: returns the workload's resolved user, the seccomp
/// filter the parent compiled meanwhile, and the rlimits standing in for a cgroup. In order:
/// Go (and the v1 cgroups joined), init's own identity, its namespaces' settings, the
/// overlay of the image's layers, what goes on it up to `pivot_root`, then what comes after.
fn prepare(cfg: &ChildConfig, chan: &Channel) -> Result<Prepared, ChildError> {
    let spec = &cfg.spec;
    let go = receive_go(chan)?;
    let mut fds = go.trees.into_iter();
    become_init(cfg, chan)?;
    if namespaces::time_namespace_for_children()? && !spec.init {
        namespaces::join_time_namespace_for_children()?;
    }
    if let Some(name) = &spec.hostname {
        namespaces::set_hostname(name)?;
    }
    if spec.network.own_namespace() && spec.net.join.is_none() {
        namespaces::loopback_up()?;
    }
    mount_layers(cfg, &mut fds)?;
    finish_root(cfg, &mut fds, go.outbound)?;

    let mut user = user::resolve(spec.process.user.as_deref(), Path::new("/etc"))?;
    user::add_groups(&mut user, &spec.options.group_add, Path::new("/etc"))?;
    let seccomp = match chan.expect("waiting for the seccomp filter")? {
        (Message::Seccomp { filter }, _) => *filter,
        (other, _) => {
            return Err(ChannelError::Malformed(format!("expected Seccomp, got {other:?}")).into());
        }
    };
    if go.in_cgroup {
        match chan.expect("waiting for the cgroup")? {
            (Message::InCgroup, _) => {}
            (other, _) => {
                return Err(
                    ChannelError::Malformed(format!("expected InCgroup, got {other:?}")).into(),
                );
            }
        }
    }
    namespaces::enter_cgroup_namespace()?;
    // Docker creates a missing working directory; a read-only root reports it at chdir.
    let _ = std::fs::create_dir_all(&spec.process.cwd);
    Ok(Prepared {
        user,
        seccomp,
        fallback: go.fallback,
    })
}

/// What Go brings, once the v1 cgroups it names are joined.
struct Go {
    /// The layers' and then the volumes' trees (root's caller only).
    trees: Vec<OwnedFd>,
    /// Whether the parent moves this process into a v2 cgroup (InCgroup says when).
    in_cgroup: bool,
    fallback: Option<Fallback>,
    /// On a named network that reaches the outside.
    outbound: bool,
}

/// Receives Go and joins the container's v1 cgroups while this process is the only one to
/// move: its children (the workload) are born inside.
fn receive_go(chan: &Channel) -> Result<Go, ChildError> {
    let (msg, fds) = chan.expect("waiting for the id maps")?;
    let Message::Go {
        lowers,
        volumes,
        cgroup_tasks,
        in_cgroup,
        fallback,
        outbound,
    } = msg
    else {
        return Err(ChannelError::Malformed(format!("expected Go, got {msg:?}")).into());
    };
    if fds.len() != lowers + volumes + cgroup_tasks.len() {
        return Err(ChannelError::Malformed("descriptor count does not match Go".into()).into());
    }
    let mut trees = fds;
    let tasks = trees.split_off(lowers + volumes);
    let tasks = tasks.into_iter().map(std::fs::File::from);
    SelfJoin::new(cgroup_tasks.into_iter().zip(tasks).collect())
        .join()
        .map_err(step("join the container's cgroup"))?;
    Ok(Go {
        trees,
        in_cgroup,
        fallback,
        outbound,
    })
}

/// Init's identity: nothing of rsafe's command line or environment left readable, the
/// container's root, death with its parent (checked not to have happened already), not
/// dumpable (no container process may ptrace init or open /proc/1/{fd,exe,mem}), and a
/// session of its own (the host terminal's job-control signals do not reach the container
/// directly: rsafe forwards them).
fn become_init(cfg: &ChildConfig, chan: &Channel) -> Result<(), ChildError> {
    sys::scrub_process_memory("rsafe-init").map_err(step("scrub the command line"))?;
    let _ = rustix::thread::set_name(c"rsafe-init");
    become_root(&cfg.idmap)?;
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(step("set the parent-death signal"))?;
    if parent_gone(chan) {
        return Err(ChannelError::Closed("starting").into());
    }
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(step("make init non-dumpable"))?;
    nix::unistd::setsid().map_err(step("setsid"))?;
    Ok(())
}

/// A directory of the container's on the host, as an `O_PATH` descriptor.
fn open_dir(path: &Path) -> Result<OwnedFd, ChildError> {
    rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(step(format!("open {}", path.display())))
}

/// The overlay of the image's layers and the writable layer on the container's `rootfs/`. The
/// writable layer lives on the host's disk; the mount points go on a scratch tmpfs over the
/// container's directory (hiding upper/ and work/, opened just before). Root's caller sends
/// each layer as a tree (`fds`), attached under `lower/` first.
fn mount_layers(
    cfg: &ChildConfig,
    fds: &mut std::vec::IntoIter<OwnedFd>,
) -> Result<(), ChildError> {
    let (spec, dir) = (&cfg.spec, &cfg.dir);
    rootfs::make_private()?;
    let (upper, work) = (open_dir(&dir.upper())?, open_dir(&dir.work())?);
    let mut mount_points = vec!["rootfs".to_string()];
    if cfg.trees_from_parent {
        mount_points.push("lower".to_string());
        mount_points.extend((0..spec.rootfs.lowers.len()).map(|i| format!("lower/{i}")));
    }
    let mount_points: Vec<&str> = mount_points.iter().map(String::as_str).collect();
    rootfs::cover_with_scratch(&open_dir(&dir.path)?, &mount_points)?;
    let mut lower_fds = Vec::new();
    for (i, path) in spec.rootfs.lowers.iter().enumerate() {
        if cfg.trees_from_parent {
            let stage = dir.lower().join(i.to_string());
            let tree = fds.next().ok_or(ChannelError::Closed("receiving layers"))?;
            mounts::attach(&tree, &open_dir(&stage)?).map_err(step(format!("attach layer {i}")))?;
            lower_fds.push(open_dir(&stage)?);
        } else {
            lower_fds.push(open_dir(path)?);
        }
    }
    rootfs::mount_overlay(
        &OverlayDirs {
            lowers: &lower_fds,
            upper: &upper,
            work: &work,
        },
        &open_dir(&dir.rootfs())?,
    )?;
    Ok(())
}

/// On the overlay, up to and through `pivot_root`: /proc, /sys, /dev and the rest of the
/// system mounts, the generated /etc files (a named network's hosts file over them), the
/// user's volumes (trees in `fds` from root's caller), masked and read-only paths, and a
/// read-only root if asked.
fn finish_root(
    cfg: &ChildConfig,
    fds: &mut std::vec::IntoIter<OwnedFd>,
    outbound: bool,
) -> Result<(), ChildError> {
    let (spec, dir) = (&cfg.spec, &cfg.dir);
    let root = Root::open(&dir.rootfs())?;
    rootfs::mount_system(
        &root,
        &SystemMounts {
            own_network: spec.network.own_namespace(),
            tty_gid: cfg.idmap.host_gid(5).map(|_| 5),
            masked_paths: &spec.masked_paths,
            readonly_paths: &spec.readonly_paths,
            shm_size: spec.options.shm_size,
        },
    )?;
    generated_files(spec, &root, &open_dir(&dir.path)?, outbound)?;
    if let Some(net) = &spec.net.named {
        // A named network's hosts file, kept current by rsafe (over the one just made).
        let store_root = dir
            .path
            .parent()
            .and_then(Path::parent)
            .unwrap_or(&dir.path);
        let hosts = super::netstore::NetStore::new(store_root).hosts_path(net, &dir.id);
        rootfs::mount_shared(&root, "/etc/hosts", &hosts)?;
    }
    let trees: Vec<Option<OwnedFd>> = spec
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Bind { .. } | MountSpec::Volume { .. } if cfg.trees_from_parent => {
                fds.next()
            }
            _ => None,
        })
        .collect();
    mounts::mount_user(&root, &spec.mounts, trees)?;
    rootfs::protect_paths(&root, &spec.masked_paths, &spec.readonly_paths)?;
    if spec.rootfs.read_only {
        rootfs::seal_read_only(&root)?;
    }
    rootfs::pivot(&root)?;
    Ok(())
}

/// `/etc/hostname` and `/etc/hosts` (always) and `/etc/resolv.conf` (slirp4netns, the host's
/// network, a named network or a container joining one: the name server in the namespace,
/// see [`super::dns`]; or `--dns`): written by rsafe on `scratch`, bound read-only. The host's
/// own resolver settings are read here, before `pivot_root`. (`outbound` chose the host's
/// servers for a named network before it had the name server; a named network is matched
/// first now.)
fn generated_files(
    spec: &Spec,
    root: &Root,
    scratch: &OwnedFd,
    outbound: bool,
) -> Result<(), ChildError> {
    let hostname = spec.hostname.as_deref().unwrap_or_default();
    rootfs::mount_hostname(root, scratch, hostname)?;
    let (hosts, resolv) = etc_contents(spec, hostname, outbound);
    rootfs::mount_generated(root, scratch, "/etc/hosts", &hosts)?;
    if let Some(resolv) = resolv {
        rootfs::mount_generated(root, scratch, "/etc/resolv.conf", &resolv)?;
    }
    Ok(())
}

/// What [`generated_files`] puts in `/etc/hosts` and `/etc/resolv.conf` (none when the
/// container gets none) for a container named `hostname`: also what `rsafe create` writes
/// beside its `config.json` ([`super::oci::from_spec`]), so both ways see the same files.
pub(crate) fn etc_contents(
    spec: &Spec,
    hostname: &str,
    outbound: bool,
) -> (String, Option<String>) {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    match spec.network {
        // The host's network: the host's resolvers and names, as docker does (an image ships
        // no resolv.conf, and without one nothing resolves).
        NetworkMode::Host => {
            let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            for (name, ip) in &spec.net.hosts {
                hosts.push_str(&format!("{ip}\t{name}\n"));
            }
            let resolv = match spec.net.dns.is_empty() && spec.net.dns_search.is_empty() {
                true => host_resolv,
                false => network::resolv_conf(&host_resolv, &spec.net.dns, &spec.net.dns_search),
            };
            (hosts, Some(resolv))
        }
        NetworkMode::Slirp4netns => (
            rootfs::hosts_file(
                hostname,
                IpAddr::V4(network::CONTAINER_ADDR),
                &spec.net.hosts,
            ),
            Some(network::resolv_conf(
                &host_resolv,
                &spec.net.dns,
                &spec.net.dns_search,
            )),
        ),
        // Loopback only (or a named network without a way out): no name server can be
        // reached unless one is given. A named network that reaches the outside gets the
        // host's resolvers, as docker's bridge does.
        NetworkMode::None => (
            rootfs::hosts_file(
                hostname,
                IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1)),
                &spec.net.hosts,
            ),
            // A named network's (or a container's joining one): rsafe's server in the
            // namespace (super::dns), which forwards to `--dns` when given.
            if spec.net.named.is_some() || spec.net.dns == [IpAddr::V4(super::dns::ADDR)] {
                Some(network::named_resolv_conf(
                    &host_resolv,
                    &spec.net.dns_search,
                ))
            } else if !spec.net.dns.is_empty() {
                Some(network::resolv_conf(
                    &host_resolv,
                    &spec.net.dns,
                    &spec.net.dns_search,
                ))
            } else if outbound {
                Some(network::outbound_resolv_conf(
                    &host_resolv,
                    &spec.net.dns_search,
                ))
            } else {
                None
            },
        ),
    }
}

/// Takes uid and gid 0 of the new user namespace (and drops the caller's supplementary
/// groups where the namespace allows `setgroups`).
pub(super) fn become_root(idmap: &IdMap) -> Result<(), ChildError> {
    if idmap.setgroups {
        nix::unistd::setgroups(&[]).map_err(step("drop supplementary groups"))?;
    }
    let (gid, uid) = (Gid::from_raw(0), Uid::from_raw(0));
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(step("become root of the user namespace (gid)"))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(step("become root of the user namespace"))?;
    Ok(())
}

/// Whether rsafe died before the parent-death signal was armed (then it never comes).
pub(super) fn parent_gone(chan: &Channel) -> bool {
    let mut fds = [PollFd::new(chan.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP))
}
