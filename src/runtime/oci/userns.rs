//! Joining a user namespace named by path: Kubernetes pods with `hostUsers: false`, where the
//! sandbox (pause) container owns the pod's user namespace and every app container's bundle
//! names it (`{"type": "user", "path": "/proc/PID/ns/user"}`, with the namespace's own
//! mappings or none).
//!
//! ```text
//! rsafe-runtime create                        joiner (fork)                 container
//! ────────────────────                        ─────────────                 ─────────
//! open the path: a user namespace?
//!   below this runtime's own? (else refused)
//! probe (fork, setns): its uid_map, gid_map,
//!   setgroups; the bundle's mappings must
//!   be the same
//! subreaper; fork ──────────────────────────▶ root: the pod's namespaces,
//!                                               sysctls, then the user one;
//!                                             rootless: user first
//!                                             clone(NEWNS|own kinds) ─────▶ child_main, as for
//!   ◀────────────────── pid ───────────────── exit                          any bundle
//! reap the joiner: the container is now this
//!   process's child (subreaper), as usual
//! ```
//!
//! Why a joiner: `create` itself must stay in the host's user namespace (it opens and
//! id-maps the root filesystem, writes the cgroup), and a process cannot return to a parent
//! user namespace once it left. The container's new namespaces are made by a process already
//! in the joined one, so they belong to it and the container's root has rights over them.
//!
//! rsafe's floor holds: the joined namespace must be below the runtime's own (never the
//! host's initial one, never the runtime's), and none of its uids may be host root (through
//! the runtime's own map: under rootless podman the runtime's root is the user).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

use super::OciError;
use super::bundle::{Bundle, BundleError, NsKind, UserNamespace};
use crate::runtime::idmap::{IdMap, IdRange, MapWriter};

/// Checks the user namespace the bundle names, reads its map into the bundle, and returns
/// it opened (for the joiner); `None` when the bundle joins none.
pub(super) fn resolve(bundle: &mut Bundle) -> Result<Option<OwnedFd>, OciError> {
    let config = bundle.dir.join("config.json");
    let UserNamespace::Joined(joined) = &mut bundle.user_namespace else {
        return Ok(None);
    };
    let invalid = |message: String| BundleError::Invalid {
        path: config.clone(),
        field: joined.field.clone(),
        message,
    };
    let fd = open_user_namespace(&joined.path).map_err(invalid)?;
    let map = probe_map(&fd).map_err(invalid)?;
    let own = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    if let Some(uid) = host_root_uid(&map, &own) {
        return Err(BundleError::Unsupported {
            path: config,
            field: joined.field.clone(),
            why: format!(
                "{}: its uid {uid} is host root ({map}); no user of a container is host root under rsafe",
                joined.path.display()
            ),
        }
        .into());
    }
    if let Some(stated) = &joined.stated
        && let Some(which) = contradiction(stated, &map)
    {
        return Err(BundleError::Invalid {
            path: config,
            field: format!("linux.{which}"),
            message: format!(
                "{stated} contradicts the joined user namespace {} ({map})",
                joined.path.display()
            ),
        }
        .into());
    }
    joined.map = map;
    Ok(Some(fd))
}

/// The uid of the joined namespace (`joined`: its ids outside are this runtime's) that is
/// uid 0 one level up, through this runtime's own `uid_map` (`own`): host root when the
/// runtime runs in the host's namespace. Any uid, not only root: a container uid that is
/// host root owns host root's files on every mount. Mapped to the runtime's own uid 0 is
/// allowed when that is not uid 0 above (rootless podman: the runtime is root of the user's
/// namespace, and gives the container nothing it does not have itself). A runtime nested
/// deeper is judged by its own map only, so a uid 0 one level up is refused though it may not
/// be the host's: the floor errs on the side of refusing.
fn host_root_uid(joined: &IdMap, own: &str) -> Option<u32> {
    let runtime_uid = own.lines().find_map(|l| {
        let mut f = l.split_whitespace().map(|n| n.parse::<u32>().ok());
        let (inside, outside, size) = (f.next()??, f.next()??, f.next()??);
        (outside == 0 && size > 0).then_some(inside)
    })?;
    joined.container_uid(runtime_uid)
}

/// Opens `path` and checks that it is a user namespace below this process's own: not the
/// host's initial one, not the runtime's own, not one of their ancestors.
fn open_user_namespace(path: &Path) -> Result<OwnedFd, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let fd = OwnedFd::from(file);
    // SAFETY: NS_GET_NSTYPE takes no argument and reads or writes no memory.
    let kind = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) };
    if kind < 0 {
        return Err(format!(
            "{} is not a namespace ({})",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    if kind != libc::CLONE_NEWUSER {
        return Err(format!("{} is not a user namespace", path.display()));
    }
    // SAFETY: NS_GET_PARENT takes no argument; it returns a new descriptor or -1.
    let parent = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_PARENT) };
    if parent < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EPERM) => format!(
                "{} is the host's initial user namespace or not below this runtime's own: rsafe's floor is a user namespace of the container's, never the host's",
                path.display()
            ),
            _ => format!("{}: its parent namespace: {e}", path.display()),
        });
    }
    // SAFETY: a descriptor the ioctl just returned, owned by nothing else.
    drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(parent) });
    Ok(fd)
}

/// The joined namespace's map as the runtime sees it: a short-lived fork enters it and reads
/// its own `uid_map`, `gid_map` and `setgroups` (ids outside are the parent namespace's, the
/// runtime's own).
fn probe_map(userns: &OwnedFd) -> Result<IdMap, String> {
    let (read, write) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: rsafe-runtime is single-threaded at create (checked before), so the child may
    // run arbitrary code.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(read);
            let report = nix::sched::setns(userns.as_fd(), CloneFlags::CLONE_NEWUSER)
                .map_err(|e| format!("!join it: {e}"))
                .and_then(|()| {
                    ["uid_map", "gid_map", "setgroups"]
                        .iter()
                        .map(|f| std::fs::read_to_string(format!("/proc/self/{f}")))
                        .collect::<Result<Vec<_>, _>>()
                        .map(|parts| parts.join("\0"))
                        .map_err(|e| format!("!read its maps: {e}"))
                })
                .unwrap_or_else(|e| e);
            let _ = std::fs::File::from(write).write_all(report.as_bytes());
            // SAFETY: _exit ends the fork without running the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(write);
            let mut text = String::new();
            let read_result = std::fs::File::from(read).read_to_string(&mut text);
            let _ = waitpid(child, None);
            read_result.map_err(|e| format!("read the namespace's maps: {e}"))?;
            parse_report(&text)
        }
    }
}

/// The probe's report: `uid_map\0gid_map\0setgroups`, or `!error`.
fn parse_report(text: &str) -> Result<IdMap, String> {
    if let Some(err) = text.strip_prefix('!') {
        return Err(err.to_string());
    }
    let mut parts = text.split('\0');
    let (uids, gids, setgroups) = match (parts.next(), parts.next(), parts.next()) {
        (Some(u), Some(g), Some(s)) => (parse_map(u), parse_map(g), s.trim()),
        _ => return Err("the namespace's maps could not be read".to_string()),
    };
    match (uids, gids) {
        (Some(uids), Some(gids)) if !uids.is_empty() && !gids.is_empty() => Ok(IdMap {
            uids,
            gids,
            writer: MapWriter::Direct,
            setgroups: setgroups == "allow",
        }),
        _ => Err("the user namespace has no uid_map or gid_map yet".to_string()),
    }
}

/// `inside outside count` lines.
fn parse_map(text: &str) -> Option<Vec<IdRange>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace().map(|n| n.parse::<u32>().ok());
            Some(IdRange {
                container: f.next()??,
                host: f.next()??,
                size: f.next()??,
            })
        })
        .collect()
}

/// Which mappings (`uidMappings` or `gidMappings`) of the bundle differ from the joined
/// namespace's, if any (the order of lines does not matter).
fn contradiction(stated: &IdMap, actual: &IdMap) -> Option<&'static str> {
    let sorted = |r: &[IdRange]| {
        let mut v: Vec<(u32, u32, u32)> = r.iter().map(|r| (r.container, r.host, r.size)).collect();
        v.sort_unstable();
        v
    };
    if sorted(&stated.uids) != sorted(&actual.uids) {
        return Some("uidMappings");
    }
    (sorted(&stated.gids) != sorted(&actual.gids)).then_some("gidMappings")
}

/// A namespace the joiner enters besides the user one.
pub(super) struct PodNamespace {
    pub kind: NsKind,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// Makes the container's first process inside the joined user namespace `userns`, through a
/// joiner (see the module documentation): it enters `pod` (the other namespaces named by
/// path) and runs `in_pod` there (the joined namespaces' sysctls: `true` when the joiner is
/// already in the user namespace, `false` when it is still host root), then clones `main`
/// with `flags`. Returns the container's pid, a child of this process once this returns.
pub(super) fn clone_joined(
    userns: &OwnedFd,
    pod: &[PodNamespace],
    flags: libc::c_int,
    in_pod: &dyn Fn(bool) -> Result<(), OciError>,
    main: Box<dyn FnOnce() -> i32>,
) -> Result<Pid, OciError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |e: nix::Error| OciError::Io {
            what,
            source: e.into(),
        }
    };
    // The container is re-parented here when the joiner exits, as if cloned by this process.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(|e| {
        OciError::Io {
            what: "become a subreaper".into(),
            source: e.into(),
        }
    })?;
    let (read, write) = nix::unistd::pipe().map_err(io("pipe"))?;
    // SAFETY: rsafe-runtime is single-threaded at create (checked before), so the child may
    // run arbitrary code.
    match unsafe { nix::unistd::fork() }.map_err(io("fork"))? {
        ForkResult::Child => {
            drop(read);
            let mut inherited: Vec<RawFd> = pod.iter().map(|p| p.fd.as_raw_fd()).collect();
            inherited.extend([userns.as_raw_fd(), write.as_raw_fd()]);
            let report = match joiner(userns, pod, flags, in_pod, inherited, main) {
                Ok(pid) => pid.to_string(),
                Err(e) => format!("!{e}"),
            };
            let _ = std::fs::File::from(write).write_all(report.as_bytes());
            // SAFETY: _exit ends the fork without running the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(main);
            drop(write);
            let mut text = String::new();
            let read_result = std::fs::File::from(read).read_to_string(&mut text);
            let _ = waitpid(child, None);
            read_result.map_err(|source| OciError::Io {
                what: "read the joiner's report".into(),
                source,
            })?;
            if let Some(err) = text.strip_prefix('!') {
                return Err(OciError::Container(err.to_string()));
            }
            text.trim()
                .parse()
                .map(Pid::from_raw)
                .map_err(|_| OciError::Container("the joiner exited without a pid".into()))
        }
    }
}

/// The joiner's work: namespaces, sysctls, the clone. Root (of this runtime's namespace)
/// enters the pod's namespaces first, which may belong to another user namespace than the
/// joined one; an unprivileged caller has rights only through the joined namespace, so enters
/// it first.
fn joiner(
    userns: &OwnedFd,
    pod: &[PodNamespace],
    flags: libc::c_int,
    in_pod: &dyn Fn(bool) -> Result<(), OciError>,
    inherited: Vec<RawFd>,
    main: Box<dyn FnOnce() -> i32>,
) -> Result<Pid, String> {
    let join_user = || {
        nix::sched::setns(userns.as_fd(), CloneFlags::CLONE_NEWUSER)
            .map_err(|e| format!("join the user namespace: {e}"))
    };
    let root = nix::unistd::geteuid().is_root();
    if !root {
        join_user()?;
    }
    for ns in pod {
        let flag = CloneFlags::from_bits_retain(ns.kind.clone_flag());
        nix::sched::setns(ns.fd.as_fd(), flag).map_err(|e| {
            format!(
                "join the {} namespace {}: {e}",
                ns.kind.name(),
                ns.path.display()
            )
        })?;
    }
    in_pod(!root).map_err(|e| e.to_string())?;
    if root {
        join_user()?;
    }
    // The container keeps none of the joiner's descriptors.
    let main: Box<dyn FnOnce() -> i32> = Box::new(move || {
        for fd in inherited {
            let _ = nix::unistd::close(fd);
        }
        main()
    });
    crate::runtime::sys::clone_process(flags, main)
        .map_err(|e| format!("create the container's process in the joined user namespace: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probes_report_is_the_namespaces_map() {
        let map = parse_report(
            "         0    1000000      65536\n\0         0    1000000      65536\n\0allow\n",
        )
        .unwrap();
        assert_eq!(map.host_uid(0), Some(1_000_000));
        assert_eq!(map.host_gid(65535), Some(1_065_535));
        assert!(map.setgroups);
        let single = parse_report("0 1001 1\n\x000 1001 1\n\x00deny\n").unwrap();
        assert!(!single.setgroups && single.is_single());
        let err = parse_report("!join it: EPERM").unwrap_err();
        assert_eq!(err, "join it: EPERM");
        assert!(
            parse_report("\0\0allow")
                .unwrap_err()
                .contains("no uid_map")
        );
        assert!(parse_report("0 x 1\n\x000 1 1\x00allow").is_err());
    }

    #[test]
    fn no_uid_of_a_joined_namespace_may_be_host_root() {
        let map = |text: &str| parse_report(&format!("{text}\0{text}\0allow\n")).unwrap();
        let host = "0 0 4294967295\n";
        // The runtime in the host's namespace (identity map): any uid mapped to 0 is refused.
        assert_eq!(host_root_uid(&map("0 1000000 65536\n"), host), None);
        assert_eq!(host_root_uid(&map("0 0 1\n"), host), Some(0));
        assert_eq!(host_root_uid(&map("1000 0 1\n"), host), Some(1000));
        assert_eq!(
            host_root_uid(&map("0 100000 1000\n1000 0 1\n"), host),
            Some(1000)
        );
        // Rootless podman: the runtime is root of a namespace whose 0 is the user (1000), so a
        // joined namespace mapping the runtime's own root is no host root.
        let rootless = "0 1000 1\n1 100000 65536\n";
        assert_eq!(host_root_uid(&map("0 0 65537\n"), rootless), None);
        // A runtime whose own map reaches uid 0 above: refused through it.
        assert_eq!(host_root_uid(&map("0 5 10\n"), "7 0 1\n"), Some(2));
    }

    #[test]
    fn stated_mappings_must_be_the_namespaces() {
        let ranges = |lines: &[(u32, u32, u32)]| -> Vec<IdRange> {
            lines
                .iter()
                .map(|&(container, host, size)| IdRange {
                    container,
                    host,
                    size,
                })
                .collect()
        };
        let map = |u: &[(u32, u32, u32)], g: &[(u32, u32, u32)]| IdMap {
            uids: ranges(u),
            gids: ranges(g),
            writer: MapWriter::Direct,
            setgroups: true,
        };
        let actual = map(&[(0, 1000, 1), (1, 100000, 65535)], &[(0, 1000, 1)]);
        let reordered = map(&[(1, 100000, 65535), (0, 1000, 1)], &[(0, 1000, 1)]);
        assert_eq!(contradiction(&reordered, &actual), None);
        let shifted = map(&[(0, 1001, 1), (1, 100000, 65535)], &[(0, 1000, 1)]);
        assert_eq!(contradiction(&shifted, &actual), Some("uidMappings"));
        let gids = map(&[(0, 1000, 1), (1, 100000, 65535)], &[(0, 1000, 2)]);
        assert_eq!(contradiction(&gids, &actual), Some("gidMappings"));
    }

    #[test]
    fn only_a_user_namespace_below_this_one_may_be_joined() {
        let err = open_user_namespace(Path::new("/proc/self/ns/net")).unwrap_err();
        assert!(err.ends_with("is not a user namespace"), "{err}");
        let err = open_user_namespace(Path::new("/proc/self/ns/user")).unwrap_err();
        assert!(err.contains("initial user namespace or not below"), "{err}");
        let err = open_user_namespace(Path::new("/etc/hostname")).unwrap_err();
        assert!(err.contains("is not a namespace"), "{err}");
    }
}
