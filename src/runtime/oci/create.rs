//! `create`: the runtime's side, from `config.json` to a container process waiting for
//! `start`. The sequence is drawn in [`super`]; the container's side is [`super::child`].

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;

use super::OciError;
use super::bundle::{Bundle, MountKind, NsKind, UserNamespace};
use super::cgroup;
use super::child::{ChildConfig, child_main};
use super::hooks;
use super::overlay;
use super::reporter::{self, LogTarget};
use super::state::{ContainerDir, Record, RuntimeRoot, Status, rfc3339_now};
use crate::runtime::cgroups::Cgroup;
use crate::runtime::channel::{self, Message};
use crate::runtime::idmap::Caller;
use crate::runtime::launch::{self, ChildGuard};
use crate::runtime::mounts;
use crate::runtime::policy::Policy;
use crate::runtime::seccomp::CompiledFilter;
use crate::runtime::spec::Confinement;
use crate::runtime::{namespaces, sys};

/// `create`'s options besides the id.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    /// Where `rsafe.policy=NAME` finds `NAME.toml` (None: [`DEFAULT_POLICY_DIR`]).
    ///
    /// [`DEFAULT_POLICY_DIR`]: super::bundle::DEFAULT_POLICY_DIR
    pub policy_dir: Option<PathBuf>,
    /// `--log`: a denial reporter's lines go there too ([`super::reporter`]).
    pub log: Option<LogTarget>,
}

/// Creates container `id` from a bundle: its first process exists, confined, in its
/// namespaces and cgroup, waiting for `start`, when this returns. `warn` receives what the
/// caller should log (rsafe's floor, lowered limits).
pub fn create(
    root: &RuntimeRoot,
    id: &str,
    opts: &CreateOptions,
    warn: &mut dyn FnMut(&str),
) -> Result<(), OciError> {
    super::state::check_id(id)?;
    let policy_dir = opts
        .policy_dir
        .as_deref()
        .unwrap_or(Path::new(super::bundle::DEFAULT_POLICY_DIR));
    let mut bundle = Bundle::load(&opts.bundle, policy_dir)?;
    lower_rlimits(&mut bundle);
    let userns = super::userns::resolve(&mut bundle)?;
    for line in &bundle.floor {
        warn(line);
    }
    let dir = root.create(id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir.clone()),
        reporter: None,
        child: None,
        cgroup: None,
    };
    let (mut record, reporting) = launch(&bundle, userns, &dir, opts, &mut cleanup, warn)?;
    // The container said Ready: the reporter forked now is its sibling, never its parent.
    if let Some((channel, files)) = reporting {
        let cgroup = record.cgroup.as_ref();
        let reporter = reporter::spawn(&dir, channel, files, opts.log.as_ref(), cgroup)?;
        cleanup.reporter = Some(ChildGuard::new(Pid::from_raw(reporter.pid)));
        record.reporter = Some(reporter);
    }
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, record.pid)?;
    }
    record.ready = true;
    dir.save(&record)?;
    cleanup.disarm();
    Ok(())
}

/// Kills the half-made container and removes what `create` made, on every error path.
struct Cleanup {
    dir: Option<ContainerDir>,
    /// The denial reporter (it is in the cgroup too).
    reporter: Option<ChildGuard>,
    child: Option<ChildGuard>,
    cgroup: Option<crate::runtime::cgroups::Cgroup>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.dir = None;
        for guard in [&mut self.reporter, &mut self.child].into_iter().flatten() {
            guard.disarm();
        }
        self.cgroup = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // The processes first: their cgroup cannot go while they are in it.
        drop(self.reporter.take());
        drop(self.child.take());
        if let Some(cg) = &self.cgroup {
            let _ = cg.remove_dirs();
        }
        if let Some(dir) = &self.dir {
            let _ = dir.remove();
        }
    }
}

/// The hard limits the caller cannot raise are lowered to its own, and said so.
fn lower_rlimits(bundle: &mut Bundle) {
    for (resource, soft, hard) in &mut bundle.rlimits {
        let Ok((_, own_hard)) = nix::sys::resource::getrlimit(*resource) else {
            continue;
        };
        if *hard > own_hard {
            bundle.floor.push(format!(
                "process.rlimits {resource:?}: hard limit {hard} lowered to {own_hard} (this host's; only host root with CAP_SYS_RESOURCE may raise it)"
            ));
            *hard = own_hard;
            *soft = (*soft).min(own_hard);
        }
    }
}

/// `create`'s sequence, from the checks to the container's first process waiting for `start`:
/// the console and start sockets, the namespaces to join, the cgroup and the first record,
/// the clone, what the parent sets up from outside, and the hand-over of mounts, console and
/// filter until the child says Ready. With a filter that reports denials, the parent's end
/// of the channel is returned with what the reporter needs: the listener comes on it.
fn launch(
    bundle: &Bundle,
    userns: Option<OwnedFd>,
    dir: &ContainerDir,
    opts: &CreateOptions,
    cleanup: &mut Cleanup,
    warn: &mut dyn FnMut(&str),
) -> Result<(Record, Option<Reporting>), OciError> {
    let caller = Caller::current();
    let console = open_console(bundle, opts)?;
    let listener = dir.bind_start_socket().map_err(|source| OciError::Io {
        what: format!("start socket {}", dir.start_socket().display()),
        source,
    })?;
    if sys::thread_count().map_err(io_err("count threads"))? != 1 {
        return Err(OciError::Invalid(
            "rsafe-runtime has several threads at create; this is a bug".to_string(),
        ));
    }
    let (own, pod) = sort_namespaces(bundle, userns.is_some())?;
    let cgroup = match &bundle.cgroups_path {
        Some(path) if super::host_root() => Some(cgroup::create(path, &bundle.resources, &dir.id)?),
        _ => None,
    };
    cleanup.cgroup.clone_from(&cgroup);
    let confinement = confinement(bundle);
    let mut record = first_record(bundle, dir, &caller, cgroup, &confinement);
    // Recorded before the clone: a `create` killed from here on leaves a record (and cgroup)
    // that `delete` finds; the child dies with it until Ready.
    dir.save(&record)?;
    let (parent_end, child_end) = channel::pair()?;
    let listener_fd = OwnedFd::from(listener);
    let child_cfg = ChildConfig {
        bundle: bundle.clone(),
        confinement: confinement.clone(),
        host_fds: vec![parent_end.as_fd().as_raw_fd()],
        trees_from_parent: caller.is_root(),
        start: listener_fd
            .try_clone()
            .map_err(io_err("duplicate the start socket"))?,
        preserve_fds: opts.preserve_fds,
        own: own.clone(),
        state_dir: dir.path.clone(),
        id: dir.id.clone(),
    };
    let main = Box::new(move || child_main(child_cfg, child_end));
    let flags = clone_flags(&own);
    let pid = match &userns {
        None => sys::clone_process(flags | libc::CLONE_NEWUSER, main)
            .map_err(namespaces::userns_error)?,
        Some(userns) => {
            let idmap = bundle.user_namespace.idmap();
            let sysctls =
                |inside: bool| write_joined_sysctls(bundle, &own, (!inside).then_some(idmap));
            super::userns::clone_joined(userns, &pod, flags, &sysctls, main)?
        }
    };
    cleanup.child = Some(ChildGuard::new(pid));
    drop(listener_fd);
    drop((userns, pod));
    set_up_from_outside(bundle, &own, pid, &mut record)?;
    record.pid = pid.as_raw();
    record.start_time = crate::runtime::state::process_start_time(pid.as_raw()).unwrap_or(0);
    dir.save(&record)?;
    hooks::run_all(
        &bundle.hooks.create_runtime,
        &record,
        Status::Creating,
        "createRuntime",
    )?;
    let trees = if caller.is_root() {
        host_trees(bundle, &own, pid, &dir.mount_point())?
    } else {
        Vec::new()
    };
    let state_root = dir.path.parent().unwrap_or(Path::new("/"));
    let chosen = reporter::container_filter(state_root, bundle, &confinement)?;
    if let Some(why) = chosen.why_not {
        warn(&why);
        record.floor.push(why);
    }
    hand_over(&parent_end, trees, console, chosen.filter)?;
    Ok((record, chosen.reports.map(|files| (parent_end, files))))
}

/// The parent's end of the container's channel and the file calls to predict, for the
/// reporter of a policy that reports its denials.
type Reporting = (
    channel::Channel,
    Option<crate::runtime::learn::paths::FileDenials>,
);

/// The connection to `--console-socket` when the process wants a terminal (which needs one).
fn open_console(bundle: &Bundle, opts: &CreateOptions) -> Result<Option<UnixStream>, OciError> {
    match (&opts.console_socket, bundle.terminal) {
        (None, true) => Err(OciError::Usage(
            "process.terminal is set: --console-socket is required".to_string(),
        )),
        (Some(path), true) => UnixStream::connect(path)
            .map(Some)
            .map_err(|source| OciError::Io {
                what: format!("console socket {}", path.display()),
                source,
            }),
        _ => Ok(None),
    }
}

/// The namespaces the container makes of its own, and those of a pod it joins by path. Joined
/// namespaces are entered here, by the caller with its privileges, and inherited by the child:
/// a namespace owned by another user namespace (a pod's sandbox) could not be joined from
/// inside the container's own. With a joined user namespace (`joined_user`), the joiner enters
/// them ([`super::userns`]), so they are only opened here.
fn sort_namespaces(
    bundle: &Bundle,
    joined_user: bool,
) -> Result<(Vec<NsKind>, Vec<super::userns::PodNamespace>), OciError> {
    let mut own = Vec::new();
    let mut pod = Vec::new();
    for ns in &bundle.namespaces {
        match &ns.path {
            Some(path) if joined_user => pod.push(super::userns::PodNamespace {
                kind: ns.kind,
                path: path.clone(),
                fd: open_namespace(ns.kind, path)?,
            }),
            Some(path) => join(ns.kind, path)?,
            None => own.push(ns.kind),
        }
    }
    Ok((own, pod))
}

/// The container's record as `create` first saves it: no process yet.
fn first_record(
    bundle: &Bundle,
    dir: &ContainerDir,
    caller: &Caller,
    cgroup: Option<Cgroup>,
    confinement: &Confinement,
) -> Record {
    let mut floor = bundle.floor.clone();
    if bundle.cgroups_path.is_some() && cgroup.is_none() {
        floor.push("linux.cgroupsPath and linux.resources: not applied (rootless: this host delegates no cgroup)".to_string());
    }
    Record {
        id: dir.id.clone(),
        pid: 0,
        start_time: 0,
        bundle: bundle.dir.clone(),
        annotations: bundle.annotations.clone(),
        created: rfc3339_now(),
        owner: caller.uid,
        cgroup,
        resources: bundle.resources.clone(),
        floor,
        start_hooks: !bundle.hooks.start_container.is_empty(),
        poststart: bundle.hooks.poststart.clone(),
        poststop: bundle.hooks.poststop.clone(),
        ready: false,
        idmap: bundle.user_namespace.idmap().clone(),
        confinement: confinement.clone(),
        floor_seccomp: bundle.floor_seccomp.clone(),
        policy_seccomp: bundle.policy.as_ref().map(|p| p.policy.seccomp.clone()),
        landlock_fs: super::child::landlock_access(bundle),
        seccomp_notify: bundle.seccomp_notify.clone(),
        reporter: None,
    }
}

/// `clone` flags for the namespaces the container makes: the cgroup namespace is made by the
/// child once it is in its cgroup, the time namespace by the child too (`clone` has no flag for
/// it). A mount namespace always.
fn clone_flags(own: &[NsKind]) -> libc::c_int {
    let mut flags = libc::CLONE_NEWNS;
    for kind in own {
        if !matches!(kind, NsKind::Cgroup | NsKind::Time) {
            flags |= kind.clone_flag();
        }
    }
    flags
}

/// What the parent sets up from outside the new process: its id map (unless it joined a user
/// namespace, whose map is given), its cgroup, its OOM score (left, and said, where lowering
/// it takes a privilege this caller lacks) and the sysctls of namespaces it made.
fn set_up_from_outside(
    bundle: &Bundle,
    own: &[NsKind],
    pid: Pid,
    record: &mut Record,
) -> Result<(), OciError> {
    let idmap = bundle.user_namespace.idmap();
    if bundle.user_namespace.joined().is_none() {
        idmap.write(pid.as_raw())?;
    }
    if let Some(cg) = &record.cgroup {
        cgroup::add(cg, pid.as_raw())?;
    }
    if let Some(adj) = bundle.oom_score_adj {
        let path = format!("/proc/{pid}/oom_score_adj");
        // Lowering it takes the host's CAP_SYS_RESOURCE: without it, the value stays (said).
        if let Err(e) = std::fs::write(&path, adj.to_string()) {
            if super::host_root() {
                return Err(io_err("process.oomScoreAdj")(e));
            }
            record
                .floor
                .push(format!("process.oomScoreAdj {adj}: not set ({e})"));
        }
    }
    if bundle.user_namespace.joined().is_none() {
        write_joined_sysctls(bundle, own, Some(idmap))?;
    }
    Ok(())
}

/// Sends the child the host's mount trees and the console, then its seccomp filter, and waits
/// for Ready (or the reason it failed).
fn hand_over(
    parent_end: &channel::Channel,
    trees: Vec<OwnedFd>,
    console: Option<UnixStream>,
    filter: CompiledFilter,
) -> Result<(), OciError> {
    let mut fds: Vec<BorrowedFd<'_>> = trees.iter().map(|t| t.as_fd()).collect();
    if let Some(c) = &console {
        fds.push(c.as_fd());
    }
    parent_end.send(
        &Message::BundleGo {
            trees: trees.len(),
            console: console.is_some(),
        },
        &fds,
    )?;
    drop(fds);
    drop((trees, console));
    // A child that failed meanwhile has its own message (read below) saying why.
    launch::send_filter(parent_end, filter)?;
    match parent_end.recv()? {
        Some((Message::Ready, _)) => Ok(()),
        Some((Message::Failed { message, .. }, _)) => Err(OciError::Container(message)),
        Some((other, _)) => Err(OciError::Invalid(format!("unexpected message {other:?}"))),
        None => Err(OciError::Container(
            "the container's first process exited during create".to_string(),
        )),
    }
}

/// rsafe's default confinement with the bundle's capabilities and seccomp profile: landlock
/// (scoped signals and abstract sockets, device paths) and the policy's masked paths stay.
///
/// A policy the bundle names (`rsafe.policy=NAME`) narrows it: only the capabilities both
/// give, its landlock rules and ports instead of the default's (the whole root unless it says
/// `grant_root = false`, as a learned one does: [`super::child::landlock_access`]), and its
/// seccomp profile stacked on the bundle's ([`reporter::container_filter`]).
fn confinement(bundle: &Bundle) -> Confinement {
    let mut c = Confinement::from_policy(&Policy::default_policy(), false);
    c.policy = "oci bundle (rsafe default landlock)".to_string();
    c.capabilities = bundle.capabilities.clone();
    c.seccomp = bundle.seccomp.clone();
    if let Some(named) = &bundle.policy {
        c.policy = format!("oci bundle + policy {}", named.name);
        c.capabilities
            .retain(|cap| named.policy.capabilities.contains(cap));
        c.landlock = named.policy.landlock.clone();
    }
    c
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> OciError {
    move |source| OciError::Io {
        what: what.to_string(),
        source,
    }
}

/// Opens the namespace at `path`.
fn open_namespace(kind: NsKind, path: &Path) -> Result<OwnedFd, OciError> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| OciError::Io {
            what: format!("{} namespace {}", kind.name(), path.display()),
            source,
        })
}

/// Enters the namespace at `path` (this process; the child inherits it).
fn join(kind: NsKind, path: &Path) -> Result<(), OciError> {
    let file = open_namespace(kind, path)?;
    let flag = nix::sched::CloneFlags::from_bits_retain(kind.clone_flag());
    nix::sched::setns(file.as_fd(), flag).map_err(|e| OciError::Io {
        what: format!("join the {} namespace {}", kind.name(), path.display()),
        source: e.into(),
    })
}

/// Sysctls of joined namespaces, written by the caller (which is in them, with its
/// privileges) or the joiner. `net.ipv4.ping_group_range` names groups: the container's are
/// translated to the host ids they are (`translate`), unless written from inside the
/// container's user namespace.
fn write_joined_sysctls(
    bundle: &Bundle,
    own: &[NsKind],
    translate: Option<&crate::runtime::idmap::IdMap>,
) -> Result<(), OciError> {
    for (key, value) in &bundle.sysctl {
        let Some(ns) = super::sysctl_namespace(key) else {
            return Err(OciError::Invalid(format!(
                "linux.sysctl.{key}: not a namespaced sysctl; a container may not change the host's"
            )));
        };
        if own.contains(&ns) {
            continue;
        }
        let value = if let Some(idmap) = translate
            && key == "net.ipv4.ping_group_range"
        {
            translate_group_range(value, idmap).ok_or_else(|| {
                OciError::Invalid(format!(
                    "linux.sysctl.{key}: {value:?} is not a mapped gid range"
                ))
            })?
        } else {
            value.clone()
        };
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, &value).map_err(|source| OciError::Io {
            what: format!("linux.sysctl.{key}"),
            source,
        })?;
    }
    Ok(())
}

fn translate_group_range(value: &str, idmap: &crate::runtime::idmap::IdMap) -> Option<String> {
    let mut parts = value.split_whitespace().map(|p| p.parse::<u32>().ok());
    let (lo, hi) = (parts.next()??, parts.next()??);
    Some(format!("{} {}", idmap.host_gid(lo)?, idmap.host_gid(hi)?))
}

/// Root's container gets its root filesystem and bind mounts as detached trees, id-mapped
/// when rsafe added the user namespace (files of host root are container root's): an overlay
/// root is mounted again from id-mapped layers ([`overlay`]); a bind source whose filesystem
/// cannot be id-mapped (procfs, device nodes) is mounted as it is.
fn host_trees(
    bundle: &Bundle,
    own: &[NsKind],
    pid: Pid,
    staging: &Path,
) -> Result<Vec<OwnedFd>, OciError> {
    let userns = std::fs::File::open(format!("/proc/{pid}/ns/user"))
        .map_err(io_err("open the container's user namespace"))?;
    let idmapped = idmapped_trees(bundle);
    let joined = bundle.user_namespace.joined().is_some();
    let mut trees = match &bundle.layered {
        Some(layered) => layer_trees(layered, bundle.user_namespace.idmap(), userns.as_fd())?,
        None => vec![rootfs_tree(bundle, idmapped, userns.as_fd(), staging)?],
    };
    for m in bundle
        .mounts
        .iter()
        .filter(|m| m.made_by_parent(own, joined))
    {
        let MountKind::Bind { source, recursive } = &m.kind else {
            // An mqueue filesystem of the joined IPC namespace this process is in.
            let attrs = m.attrs
                | libc::MOUNT_ATTR_NOSUID
                | libc::MOUNT_ATTR_NODEV
                | libc::MOUNT_ATTR_NOEXEC;
            let tree = mounts::new_filesystem(
                "mqueue",
                &[],
                rustix::mount::MountAttrFlags::from_bits_retain(attrs as u32),
            )
            .map_err(|e| OciError::Invalid(format!("mount {}: {e}", m.destination)))?;
            trees.push(tree);
            continue;
        };
        let tree = mounts::clone_host_tree_with(source, *recursive).map_err(|source_err| {
            OciError::Io {
                what: format!("mount source {}", source.display()),
                source: source_err,
            }
        })?;
        if idmapped {
            match sys::set_mount_attrs(
                tree.as_fd(),
                libc::MOUNT_ATTR_IDMAP,
                Some(userns.as_fd()),
                *recursive,
            ) {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {}
                Err(e) => {
                    return Err(OciError::Io {
                        what: format!("id-map {}", source.display()),
                        source: e,
                    });
                }
            }
        }
        trees.push(tree);
    }
    Ok(trees)
}

/// rsafe's image layers as root's `rsafe run` sends them ([`super::layered`]): each a
/// read-only tree, id-mapped into the container's user namespace when its owner is none of
/// the container's ids (a root store's layers are host root's), bottom first. The container
/// side mounts their overlay with its writable layer.
fn layer_trees(
    layered: &super::layered::LayeredRoot,
    idmap: &crate::runtime::idmap::IdMap,
    userns: BorrowedFd<'_>,
) -> Result<Vec<OwnedFd>, OciError> {
    use std::os::unix::fs::MetadataExt;
    let mut trees = Vec::new();
    for path in &layered.lowers {
        let what = || format!("layer {}", path.display());
        let owner = std::fs::metadata(path)
            .map_err(|source| OciError::Io {
                what: what(),
                source,
            })?
            .uid();
        let tree = mounts::clone_host_tree(path).map_err(|source| OciError::Io {
            what: what(),
            source,
        })?;
        let mut attrs = libc::MOUNT_ATTR_RDONLY;
        let mut via = None;
        if idmap.container_uid(owner).is_none() {
            attrs |= libc::MOUNT_ATTR_IDMAP;
            via = Some(userns);
        }
        sys::set_mount_attrs(tree.as_fd(), attrs, via, true).map_err(|source| OciError::Io {
            what: format!("id-map {}", what()),
            source,
        })?;
        trees.push(tree);
    }
    Ok(trees)
}

/// Whether the root filesystem and bind mounts are id-mapped with the container's user
/// namespace: when rsafe added it, and in a joined one when the root filesystem's owner is
/// not one of its ids (a snapshot owned by host root; one already shifted into the
/// namespace's range, as containerd's remapping snapshotters make, is used as it is).
fn idmapped_trees(bundle: &Bundle) -> bool {
    use std::os::unix::fs::MetadataExt;
    match &bundle.user_namespace {
        UserNamespace::Added(m) => !m.is_identity(),
        UserNamespace::Joined(j) => {
            !j.map.is_identity()
                && std::fs::metadata(&bundle.rootfs)
                    .is_ok_and(|meta| j.map.container_uid(meta.uid()).is_none())
        }
        UserNamespace::Bundle(_) => false,
    }
}

fn rootfs_tree(
    bundle: &Bundle,
    idmapped: bool,
    userns: BorrowedFd<'_>,
    staging: &Path,
) -> Result<OwnedFd, OciError> {
    let what = || format!("root filesystem {}", bundle.rootfs.display());
    if idmapped
        && let Some(layers) = overlay::layers_at(&bundle.rootfs).map_err(|source| OciError::Io {
            what: what(),
            source,
        })?
    {
        let map = bundle.user_namespace.idmap();
        let root = (map.host_uid(0).unwrap_or(0), map.host_gid(0).unwrap_or(0));
        return overlay::idmapped_overlay(&layers, userns, root, staging).map_err(|source| {
            OciError::Io {
                what: what(),
                source,
            }
        });
    }
    let tree =
        mounts::clone_host_tree_with(&bundle.rootfs, true).map_err(|source| OciError::Io {
            what: what(),
            source,
        })?;
    if idmapped {
        sys::set_mount_attrs(tree.as_fd(), libc::MOUNT_ATTR_IDMAP, Some(userns), true).map_err(|source| OciError::Io {
            what: format!("id-map the {} (its filesystem cannot be id-mapped: give the bundle a user namespace, e.g. podman --userns=auto)", what()),
            source,
        })?;
    }
    Ok(tree)
}

/// Writes the pid file atomically: the caller reads it as soon as `create` returns.
pub(super) fn write_pid_file(path: &Path, pid: i32) -> Result<(), OciError> {
    let tmp = path.with_extension("rsafe-tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| OciError::Io {
            what: format!("pid file {}", path.display()),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_group_range_names_the_containers_groups_as_host_ids() {
        let map = super::super::test_root_map();
        assert_eq!(
            translate_group_range("0 0", &map).as_deref(),
            Some("1000000000 1000000000")
        );
        assert_eq!(translate_group_range("0 70000", &map), None);
        assert_eq!(translate_group_range("x", &map), None);
    }
}
