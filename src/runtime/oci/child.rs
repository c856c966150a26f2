//! The container side of `create`: from the parent's Go to the workload's `execve`, with a
//! wait for `start` in between. See [`super`] for the whole sequence.
//!
//! The first process of the container becomes the workload itself (as under runc and crun):
//! there is no rsafe init in this mode, and no rsafe process stays behind. Whoever called
//! `create` (conmon, the containerd shim) is its parent or subreaper and reaps it.

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::mount::MountAttrFlags;

use super::bundle::{Bundle, MountKind, MountPlan, NsKind};
use crate::runtime::channel::{Channel, ChannelError, Message};
use crate::runtime::container::{ChildError, become_root, step};
use crate::runtime::exec::{self, ExecError, Workload};
use crate::runtime::landlock::FsAccess;
use crate::runtime::mounts::{self, Root};
use crate::runtime::namespaces;
use crate::runtime::rootfs;
use crate::runtime::seccomp::CompiledFilter;
use crate::runtime::spec::{Confinement, ProcessSpec};
use crate::runtime::user::{self, ExecUser};
use crate::runtime::{sys, tty};

/// Everything the container side needs, moved into the child by `clone`.
pub(super) struct ChildConfig {
    pub bundle: Bundle,
    pub confinement: Confinement,
    /// The parent's descriptors the child inherited and must not keep.
    pub host_fds: Vec<RawFd>,
    /// Whether Go carries the root filesystem and bind mounts as trees (root) or the child
    /// opens them (rootless).
    pub trees_from_parent: bool,
    /// The listening socket `start` connects to.
    pub start: OwnedFd,
    /// `--preserve-fds N`: descriptors 3..3+N stay open for the workload.
    pub preserve_fds: u32,
    /// The container's own namespaces (not joined ones): which sysctls it may write.
    pub own: Vec<NsKind>,
    /// The container's state directory, whose empty `rootfs/` the root filesystem is mounted
    /// on. Opened before this process takes its container ids: the caller's runtime root
    /// (containerd's `/run/containerd/...`) may be closed to everyone but host root.
    pub state_dir: PathBuf,
    /// The container's id (for the state document its hooks read).
    pub id: String,
}

/// What the workload needs once the root filesystem is ready.
struct Prepared {
    user: ExecUser,
    seccomp: CompiledFilter,
    /// The start socket's file (`O_PATH`, a socket: no directory to walk out of), watched
    /// while waiting: once unlinked (the state directory removed), nothing can start the
    /// container.
    start_file: OwnedFd,
    /// The seccomp agent, when the bundle notifies syscalls ([`super::notify`]).
    agent: Option<super::notify::Agent>,
}

/// The container's first process: set up and Ready, waiting for `start`, then the workload.
pub(super) fn child_main(cfg: ChildConfig, chan: Channel) -> i32 {
    for fd in &cfg.host_fds {
        let _ = nix::unistd::close(*fd);
    }
    // Until Ready, a failure goes to `create`, which says it (and kills this process).
    let prepared = match prepare(&cfg, &chan)
        .map_err(|e| e.to_string())
        .and_then(outlive_create)
    {
        Ok(p) => p,
        Err(message) => {
            let _ = chan.send(&Message::Failed { code: 125, message }, &[]);
            return 125;
        }
    };
    if chan.send(&Message::Ready, &[]).is_err() {
        return 125;
    }
    // From here a failure is the container's own: on its stderr (the caller's log), exit 125.
    if let Err(why) = await_start(&cfg, &prepared.start_file) {
        if let Some(e) = why {
            eprintln!("rsafe-runtime: {e}");
        }
        return 125;
    }
    drop(cfg.start);
    if let Some(notify) = &cfg.bundle.seccomp_notify
        && let Err(e) = super::notify::install(&notify.syscalls, prepared.agent)
    {
        eprintln!(
            "rsafe-runtime: linux.seccomp.listenerPath {}: send the listener: {e}",
            notify.listener_path.display()
        );
        return 125;
    }
    let err = run_workload(
        &cfg.bundle,
        &cfg.confinement,
        cfg.preserve_fds,
        (&prepared.user, prepared.seccomp),
        &chan,
    );
    eprintln!("rsafe-runtime: {err}");
    err.exit_code()
}

/// From here the container outlives `create`: no parent-death signal, and the caller
/// (conmon, the shim) reaps it.
fn outlive_create(prepared: Prepared) -> Result<Prepared, String> {
    rustix::process::set_parent_process_death_signal(None)
        .map_err(|e| format!("clear the parent-death signal: {e}"))?;
    Ok(prepared)
}

/// Waits for `start`, then runs the startContainer hooks, in the container, before the
/// workload: `start` waits for them and reports a failure (then the workload never runs). The
/// error is what to say on the container's stderr: nothing when `start` was told (or is gone).
fn await_start(cfg: &ChildConfig, start_file: &OwnedFd) -> Result<(), Option<String>> {
    let mut conn = wait_for_start(&cfg.start, start_file)
        .map_err(|e| Some(format!("waiting for start: {e}")))?;
    let hooks = run_hooks(cfg, &cfg.bundle.hooks.start_container, "startContainer");
    let reply = match &hooks {
        Ok(()) => "1".to_string(),
        Err(e) => format!("0{e}"),
    };
    match io::Write::write_all(&mut conn, reply.as_bytes()) {
        Ok(()) => hooks.map_err(|_| None),
        Err(_) => Err(None),
    }
}

/// The bundle's process, as `user` and confined (`seccomp` loaded last), by `execve`: returns
/// only why it could not.
fn run_workload(
    bundle: &Bundle,
    confinement: &Confinement,
    preserve_fds: u32,
    (user, seccomp): (&ExecUser, CompiledFilter),
    chan: &Channel,
) -> ExecError {
    let process = ProcessSpec {
        args: bundle.args.clone(),
        env: bundle.env.clone(),
        cwd: bundle.cwd.clone(),
        user: None,
        // The terminal (with `process.terminal`) is already this process's stdio.
        terminal: false,
        stdin: true,
    };
    let workload = Workload {
        process: &process,
        user,
        setgroups: bundle.user_namespace.idmap().setgroups,
        single_id: bundle.user_namespace.idmap().is_single(),
        fallback: None,
        hostname: bundle.hostname.as_deref().unwrap_or_default(),
        window: None,
        confinement,
        seccomp: Some(seccomp),
        landlock_fs: landlock_access(bundle),
        preserve_fds,
        ulimits: &[],
    };
    exec::exec(workload, chan)
}

/// Runs the container-side hooks `hooks` with the state document (the pid as the container
/// sees it, as runc does: `createContainer` before `pivot_root`, `startContainer` after).
fn run_hooks(
    cfg: &ChildConfig,
    hooks: &[super::bundle::Hook],
    kind: &str,
) -> Result<(), super::OciError> {
    if hooks.is_empty() {
        return Ok(());
    }
    let status = match kind {
        "createContainer" => super::state::Status::Creating,
        _ => super::state::Status::Created,
    };
    let state = super::hooks::state_document(
        &cfg.id,
        std::process::id() as i32,
        &cfg.bundle.dir,
        &cfg.bundle.annotations,
        status,
    );
    super::hooks::run_with_state(hooks, &state, kind)
}

/// Blocks until `start` connects (the runtime-spec's "wait for start"), then reads its one
/// byte; the connection is returned for the answer. A `delete` of a created container kills
/// this process instead.
///
/// Every second it looks at the start socket's file: when that is gone with no connection
/// waiting (its state directory was removed, so no `start` or `delete` can find it), the
/// container exits rather than wait forever. `start` unlinks the socket only after it
/// connected, so its connection is always seen first.
fn wait_for_start(
    listener: &OwnedFd,
    start_file: &OwnedFd,
) -> io::Result<std::os::unix::net::UnixStream> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let listener = std::os::unix::net::UnixListener::from(listener.try_clone()?);
    let pending = |timeout: PollTimeout| -> io::Result<bool> {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    };
    let (mut conn, _) = loop {
        if !pending(PollTimeout::from(1000u16))? {
            let removed = rustix::fs::fstat(start_file).is_ok_and(|st| st.st_nlink == 0);
            if removed && !pending(PollTimeout::ZERO)? {
                return Err(io::Error::other(
                    "the container's state directory was removed; nothing can start it",
                ));
            }
            continue;
        }
        match listener.accept() {
            Ok(c) => break c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    let mut byte = [0u8; 1];
    conn.read_exact(&mut byte)?;
    Ok(conn)
}

/// Landlock's file rules: a writable root is all read-write (the bundle's rootfs is the
/// container's own), a read-only one read and execute, with writable mounts read-write. Under
/// a named policy with `grant_root = false` (a learned one) only the writable mounts: the rest
/// comes from the policy's own paths. `/dev` is not one of them (as under `rsafe run`): its
/// device nodes, `/dev/pts`, `/dev/shm` and `/dev/mqueue` are the policy's paths, and nothing
/// new is made in it.
pub(super) fn landlock_access(b: &Bundle) -> FsAccess {
    let grant_root = b
        .policy
        .as_ref()
        .is_none_or(|p| p.policy.landlock.grant_root);
    if !b.readonly_root && grant_root {
        return FsAccess {
            read_exec: Vec::new(),
            read_write: vec![PathBuf::from("/")],
        };
    }
    let writable = b
        .mounts
        .iter()
        .filter(|m| m.attrs & libc::MOUNT_ATTR_RDONLY == 0 && m.destination != "/dev")
        .filter(|m| {
            matches!(&m.kind, MountKind::Bind { .. })
                || m.kind == MountKind::Filesystem("tmpfs".into())
        })
        .map(|m| PathBuf::from(&m.destination));
    FsAccess {
        read_exec: match grant_root {
            true => vec![PathBuf::from("/")],
            false => Vec::new(),
        },
        read_write: writable.collect(),
    }
}

/// Go to `pivot_root`: the container's root filesystem, as the bundle describes it. In order:
/// what the parent sends (mount trees, console), the container's ids, its namespaces' settings,
/// its root filesystem up to `pivot_root`, then the process's own settings and its filter.
fn prepare(cfg: &ChildConfig, chan: &Channel) -> Result<Prepared, ChildError> {
    let b = &cfg.bundle;
    // Still the caller's host ids (until become_root): the state directory is reachable.
    let state_dir = rustix::fs::open(
        &cfg.state_dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(step(format!("open {}", cfg.state_dir.display())))?;
    let start_file = rustix::fs::openat(
        &state_dir,
        "start.sock",
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(step(format!("open {}/start.sock", cfg.state_dir.display())))?;
    let (trees, console) = receive_trees(chan)?;
    let agent = become_the_container(cfg)?;
    set_up_namespaces(cfg)?;
    build_root(cfg, state_dir, trees)?;
    if let Some(socket) = console {
        attach_console(&socket)?;
    }
    let mut user = user::resolve(Some(&format!("{}:{}", b.uid, b.gid)), Path::new("/etc"))?;
    user.groups = b.additional_gids.clone();
    if let Some(mask) = b.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    for (resource, soft, hard) in &b.rlimits {
        set_rlimit(*resource, *soft, *hard)?;
    }
    let seccomp = match chan.expect("waiting for the seccomp filter")? {
        (Message::Seccomp { filter }, _) => *filter,
        (other, _) => {
            return Err(ChannelError::Malformed(format!("expected Seccomp, got {other:?}")).into());
        }
    };
    // runc creates a missing working directory; a read-only root reports it at chdir.
    let _ = std::fs::create_dir_all(&b.cwd);
    Ok(Prepared {
        user,
        seccomp,
        start_file,
        agent,
    })
}

/// The parent's BundleGo: the mount trees it made (root filesystem first, when it makes them)
/// and the console socket's connection, if any.
fn receive_trees(chan: &Channel) -> Result<(Vec<OwnedFd>, Option<OwnedFd>), ChildError> {
    let (msg, fds) = chan.expect("waiting for the id maps")?;
    let Message::BundleGo { trees, console } = msg else {
        return Err(ChannelError::Malformed(format!("expected BundleGo, got {msg:?}")).into());
    };
    if fds.len() != trees + usize::from(console) {
        return Err(
            ChannelError::Malformed("descriptor count does not match BundleGo".into()).into(),
        );
    }
    let mut fds = fds.into_iter();
    let trees: Vec<OwnedFd> = fds.by_ref().take(trees).collect();
    let console = if console { fds.next() } else { None };
    Ok((trees, console))
}

/// What must happen with the caller's ids (the agent's socket is a host path; the time
/// namespace's offsets are this process's to write only while it is dumpable), then the
/// container's ids, the parent-death signal, non-dumpable, a session of its own.
fn become_the_container(cfg: &ChildConfig) -> Result<Option<super::notify::Agent>, ChildError> {
    let b = &cfg.bundle;
    let _ = sys::scrub_process_memory("rsafe-runtime-init");
    let agent = match &b.seccomp_notify {
        Some(n) => Some(connect_agent(cfg, n)?),
        None => None,
    };
    if cfg.own.contains(&NsKind::Time) {
        enter_time_namespace(&b.time_offsets)?;
    }
    become_root(b.user_namespace.idmap())?;
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(step("set the parent-death signal"))?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(step("make the container's first process non-dumpable"))?;
    nix::unistd::setsid().map_err(step("setsid"))?;
    Ok(agent)
}

/// The settings of the namespaces the container made: host and domain name, loopback, the
/// cgroup namespace (entered now that the parent moved this process into its cgroup, so that
/// it is the root), sysctls, personality.
fn set_up_namespaces(cfg: &ChildConfig) -> Result<(), ChildError> {
    let b = &cfg.bundle;
    if cfg.own.contains(&NsKind::Uts) {
        if let Some(name) = &b.hostname {
            namespaces::set_hostname(name)?;
        }
        if let Some(domain) = &b.domainname {
            set_domainname(domain)?;
        }
    }
    if cfg.own.contains(&NsKind::Network) {
        namespaces::loopback_up()?;
    }
    if cfg.own.contains(&NsKind::Cgroup) {
        namespaces::enter_cgroup_namespace()?;
    }
    write_sysctls(cfg)?;
    if let Some(persona) = b.personality {
        set_personality(persona)?;
    }
    Ok(())
}

/// The root filesystem up to and through `pivot_root`: a tree of the bundle's rootfs (made
/// and id-mapped by the parent when it can, else cloned here) on the state directory's
/// `rootfs/`, the bundle's mounts, devices and `/dev` links, masked and read-only paths, a
/// read-only root if asked, and the createContainer hooks in the container's namespaces.
fn build_root(
    cfg: &ChildConfig,
    state_dir: OwnedFd,
    trees: Vec<OwnedFd>,
) -> Result<(), ChildError> {
    let b = &cfg.bundle;
    let open_at = |dir: &OwnedFd, name: &str| -> Result<OwnedFd, ChildError> {
        rustix::fs::openat(
            dir,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(step(format!("open {}/{name}", cfg.state_dir.display())))
    };
    rootfs::make_private()?;
    let mut trees = trees.into_iter();
    let root = match &b.layered {
        Some(layered) => mount_layered(cfg, layered, &open_at, &state_dir, &mut trees)?,
        None => {
            let rootfs_tree = if cfg.trees_from_parent {
                trees
                    .next()
                    .ok_or_else(|| ChannelError::Malformed("no root filesystem tree".into()))?
            } else {
                mounts::clone_host_tree(&b.rootfs)
                    .map_err(step(format!("root filesystem {}", b.rootfs.display())))?
            };
            mounts::attach(&rootfs_tree, &open_at(&state_dir, "rootfs")?)
                .map_err(step("mount the root filesystem"))?;
            drop(rootfs_tree);
            // Looked up again by name, the mount point now leads into the mount on it.
            Root::from_fd(open_at(&state_dir, "rootfs")?)
        }
    };
    drop(state_dir);
    let joined = b.user_namespace.joined().is_some();
    for m in &b.mounts {
        let tree = match m.made_by_parent(&cfg.own, joined) && cfg.trees_from_parent {
            true => Some(
                trees
                    .next()
                    .ok_or(ChannelError::Closed("receiving mounts"))?,
            ),
            false => None,
        };
        mount_one(&root, m, tree, cfg)?;
    }
    bind_devices(&root, b)?;
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ] {
        // The image's own (a /dev from the root filesystem) stays.
        let _ = root.symlink(target, link);
    }
    rootfs::protect_paths(
        &root,
        &cfg.confinement_masked(),
        &cfg.confinement_readonly(),
    )?;
    if b.readonly_root {
        rootfs::seal_read_only(&root)?;
    }
    run_hooks(cfg, &b.hooks.create_container, "createContainer").map_err(|e| ChildError::Step {
        what: "in the container's namespaces".into(),
        source: io::Error::other(e.to_string()),
    })?;
    rootfs::pivot(&root)?;
    Ok(())
}

/// rsafe's layered root ([`super::layered`]) as `rsafe run` mounts it: a scratch tmpfs on
/// the state directory's `rootfs/` holds the mount points (`merged`, and `lower/<i>` for the
/// layers root's caller sent as trees; a rootless caller's are opened by path, already its
/// container root's), and the overlay of the layers and the writable layer goes on `merged`,
/// the root from here on.
fn mount_layered(
    cfg: &ChildConfig,
    layered: &super::layered::LayeredRoot,
    open_at: &dyn Fn(&OwnedFd, &str) -> Result<OwnedFd, ChildError>,
    state_dir: &OwnedFd,
    trees: &mut std::vec::IntoIter<OwnedFd>,
) -> Result<Root, ChildError> {
    let open_path = |path: &Path| {
        rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(step(format!("open {}", path.display())))
    };
    let (upper, work) = (open_path(&layered.upper)?, open_path(&layered.work)?);
    let count = layered.lowers.len();
    let mut points = vec!["merged".to_string()];
    if cfg.trees_from_parent {
        points.push("lower".to_string());
        points.extend((0..count).map(|i| format!("lower/{i}")));
    }
    let points: Vec<&str> = points.iter().map(String::as_str).collect();
    rootfs::cover_with_scratch(&open_at(state_dir, "rootfs")?, &points)?;
    // Looked up again by name, `rootfs` now leads into the scratch tmpfs.
    let scratch = open_at(state_dir, "rootfs")?;
    let mut lowers = Vec::with_capacity(count);
    for (i, path) in layered.lowers.iter().enumerate() {
        if cfg.trees_from_parent {
            let stage = format!("lower/{i}");
            let tree = trees
                .next()
                .ok_or(ChannelError::Closed("receiving layers"))?;
            mounts::attach(&tree, &open_at(&scratch, &stage)?)
                .map_err(step(format!("attach layer {}", path.display())))?;
            lowers.push(open_at(&scratch, &stage)?);
        } else {
            lowers.push(open_path(path)?);
        }
    }
    rootfs::mount_overlay(
        &rootfs::OverlayDirs {
            lowers: &lowers,
            upper: &upper,
            work: &work,
        },
        &open_at(&scratch, "merged")?,
    )?;
    Ok(Root::from_fd(open_at(&scratch, "merged")?))
}

/// Connects to the seccomp agent at `listenerPath`, with the state it will get (this
/// process's pid as the runtime sees it: the host's /proc is still mounted here).
fn connect_agent(
    cfg: &ChildConfig,
    n: &super::bundle::SeccompNotify,
) -> Result<super::notify::Agent, ChildError> {
    let what = || format!("linux.seccomp.listenerPath {}", n.listener_path.display());
    let pid: i32 = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| step(what())(io::Error::other("no pid in /proc/self")))?;
    let state = super::hooks::state_document(
        &cfg.id,
        pid,
        &cfg.bundle.dir,
        &cfg.bundle.annotations,
        super::state::Status::Running,
    );
    super::notify::connect(n, &state, pid).map_err(step(what()))
}

impl ChildConfig {
    /// The bundle's masked paths and rsafe's (the default policy's) together.
    fn confinement_masked(&self) -> Vec<String> {
        union(
            &self.bundle.masked_paths,
            &crate::runtime::policy::Policy::default_policy().masked_paths,
        )
    }

    fn confinement_readonly(&self) -> Vec<String> {
        union(
            &self.bundle.readonly_paths,
            &crate::runtime::policy::Policy::default_policy().readonly_paths,
        )
    }
}

fn union(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = a.to_vec();
    for p in b {
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

/// Sysctls of the container's own namespaces (the parent writes those of joined ones).
fn write_sysctls(cfg: &ChildConfig) -> Result<(), ChildError> {
    for (key, value) in &cfg.bundle.sysctl {
        let Some(ns) = super::sysctl_namespace(key) else {
            continue;
        };
        if !cfg.own.contains(&ns) {
            continue;
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).map_err(step(format!("sysctl {key}")))?;
    }
    Ok(())
}

const NOSUID_NODEV_NOEXEC: u64 =
    libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;

/// One entry of `mounts`, on its destination inside `root`.
fn mount_one(
    root: &Root,
    m: &MountPlan,
    tree: Option<OwnedFd>,
    cfg: &ChildConfig,
) -> Result<(), ChildError> {
    let dest = &m.destination;
    let fail = |what: &str| step(format!("{what} {dest}"));
    let attrs = MountAttrFlags::from_bits_retain(m.attrs as u32);
    let (tree, dir) = match &m.kind {
        MountKind::Bind { source, recursive } => {
            let tree = match tree {
                Some(t) => t,
                None => mounts::clone_host_tree_with(source, *recursive)
                    .map_err(step(format!("bind mount source {}", source.display())))?,
            };
            // A set-uid file or device node on a bind mount is honoured only when asked for.
            let attrs = m.attrs | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
            sys::set_mount_attrs(tree.as_fd(), attrs, None, true)
                .map_err(fail("mount options of"))?;
            let dir = rustix::fs::fstat(&tree)
                .map_err(|e| fail("stat")(io::Error::from(e)))?
                .st_mode
                & libc::S_IFMT
                == libc::S_IFDIR;
            (tree, dir)
        }
        MountKind::Filesystem(fstype) => match tree {
            Some(t) => (t, true),
            None => (filesystem(fstype, m, cfg)?, true),
        },
        MountKind::Cgroup => {
            // A v1 hierarchy cannot be mounted in a user namespace, and a bind of the host's
            // would show every host cgroup: an empty read-only tmpfs stands in.
            let t = mounts::new_filesystem(
                "tmpfs",
                &["size=4k", "mode=555"],
                MountAttrFlags::from_bits_retain(
                    (NOSUID_NODEV_NOEXEC | libc::MOUNT_ATTR_RDONLY) as u32,
                ),
            )?;
            (t, true)
        }
    };
    let _ = attrs;
    let target = if dir {
        root.mkdir_all(dest)?
    } else {
        root.touch(dest)?
    };
    mounts::attach(&tree, &target).map_err(fail("mount on"))?;
    Ok(())
}

/// A new kernel filesystem, or the host's when this container may not make one (sysfs in a
/// joined network namespace, mqueue in a joined IPC namespace: bound read-only instead).
fn filesystem(fstype: &str, m: &MountPlan, cfg: &ChildConfig) -> Result<OwnedFd, ChildError> {
    let borrowed = match fstype {
        "sysfs" if !cfg.own.contains(&NsKind::Network) => Some("/sys"),
        // In a joined user namespace this process owns the joined IPC namespace's queues.
        "mqueue"
            if !cfg.own.contains(&NsKind::Ipc) && cfg.bundle.user_namespace.joined().is_none() =>
        {
            Some("/dev/mqueue")
        }
        _ => None,
    };
    if let Some(host) = borrowed {
        let tree =
            mounts::clone_host_tree(Path::new(host)).map_err(step(format!("bind {host}")))?;
        sys::set_mount_attrs(
            tree.as_fd(),
            m.attrs | NOSUID_NODEV_NOEXEC | libc::MOUNT_ATTR_RDONLY,
            None,
            true,
        )
        .map_err(step(format!("make {host} read-only")))?;
        return Ok(tree);
    }
    let gid_mapped = |opt: &str| match opt.strip_prefix("gid=").and_then(|g| g.parse::<u32>().ok())
    {
        // devpts' gid=5 needs a mapped group 5 (a single-id rootless map has none).
        Some(g) => cfg.bundle.user_namespace.idmap().host_gid(g).is_some(),
        None => true,
    };
    let data: Vec<&str> = m
        .data
        .iter()
        .map(String::as_str)
        .filter(|o| gid_mapped(o))
        .collect();
    let mut attrs = m.attrs;
    if fstype == "proc" || fstype == "sysfs" {
        attrs |= NOSUID_NODEV_NOEXEC;
    }
    Ok(mounts::new_filesystem(
        fstype,
        &data,
        MountAttrFlags::from_bits_retain(attrs as u32),
    )?)
}

/// The runtime-spec's default devices and the bundle's, bound from the host (a user namespace
/// cannot make device nodes).
fn bind_devices(root: &Root, b: &Bundle) -> Result<(), ChildError> {
    let defaults = rootfs::DEVICES
        .iter()
        .map(|d| (format!("/dev/{d}"), PathBuf::from(format!("/dev/{d}"))));
    for (path, host) in defaults.chain(b.devices.iter().cloned()) {
        let tree = match mounts::clone_host_tree_with(&host, false) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(step(format!("bind device {}", host.display()))(e)),
        };
        let target = root.touch(&path)?;
        mounts::attach(&tree, &target).map_err(step(format!("bind device {path}")))?;
    }
    Ok(())
}

/// `process.terminal`: a new pty of the container's devpts, its master sent to the console
/// socket (as runc does: the pty's name as data, the descriptor as SCM_RIGHTS), its slave this
/// process's controlling terminal and stdio.
pub(in crate::runtime) fn attach_console(socket: &OwnedFd) -> Result<(), ChildError> {
    let (master, slave) = tty::open_pty(None).map_err(step("open the container's terminal"))?;
    let name = nix::unistd::ttyname(&slave)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    crate::runtime::fdpass::send_fds(socket, name.as_bytes(), &[master.as_fd()])
        .map_err(step("send the terminal to the console socket"))?;
    drop(master);
    tty::attach_stdio(&slave).map_err(step("attach the terminal"))?;
    Ok(())
}

/// Sets an rlimit, lowered to the current hard limit where raising it is not allowed (only
/// the host's root may raise a hard limit, and container root is not; `create` says so).
pub(in crate::runtime) fn set_rlimit(
    resource: nix::sys::resource::Resource,
    soft: u64,
    hard: u64,
) -> Result<(), ChildError> {
    let (_, cur_hard) = nix::sys::resource::getrlimit(resource).map_err(step("read an rlimit"))?;
    let hard = hard.min(cur_hard);
    nix::sys::resource::setrlimit(resource, soft.min(hard), hard)
        .map_err(step(format!("set rlimit {resource:?}")))
}

/// `linux.personality`: the execution domain the workload inherits across `execve` (set
/// here, before the seccomp filter, which may refuse `personality(2)` to the workload).
fn set_personality(persona: u64) -> Result<(), ChildError> {
    // SAFETY: personality(2) takes a flag word and reads or writes no memory.
    if unsafe { libc::personality(persona as libc::c_ulong) } < 0 {
        return Err(step("set the personality")(io::Error::last_os_error()));
    }
    Ok(())
}

/// A new time namespace with `offsets`, entered by this process: made for its children
/// (`unshare` cannot do otherwise), offsets written while no process is in it yet (root of
/// the container's user namespace, which owns it, has CAP_SYS_TIME over it), then joined.
fn enter_time_namespace(offsets: &[super::bundle::TimeOffset]) -> Result<(), ChildError> {
    if !namespaces::time_namespace_for_children()? {
        return Err(step("linux.namespaces time")(io::Error::other(
            "this kernel has no time namespaces",
        )));
    }
    let text: String = offsets
        .iter()
        .map(|(clock, secs, nanos)| format!("{clock} {secs} {nanos}\n"))
        .collect();
    if !text.is_empty() {
        // One write per line: the kernel reads one record at a time.
        for line in text.lines() {
            std::fs::write("/proc/self/timens_offsets", format!("{line}\n"))
                .map_err(step(format!("linux.timeOffsets: write {line:?}")))?;
        }
    }
    namespaces::join_time_namespace_for_children()?;
    Ok(())
}

/// `domainname`: the UTS namespace's NIS domain name (no wrapper in nix or rustix's enabled
/// features).
fn set_domainname(name: &str) -> Result<(), ChildError> {
    // SAFETY: setdomainname reads `len` bytes from a pointer into a live string.
    if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } < 0 {
        return Err(step("set the domain name")(io::Error::last_os_error()));
    }
    Ok(())
}
