//! `run --network NAME` for a rootless user: each named network has a *holder*, a small
//! long-lived process (`rsafe network hold NAME`) in a user namespace U0 of the user's and a
//! network namespace N0 owned by U0, with the network's bridge in N0. Each container on the
//! network gets its own user namespace Uc nested under U0, its network namespace owned by Uc,
//! and a veth pair between its `eth0` and the bridge in N0.
//!
//! ```text
//! rsafe run (rootless)          holder (U0, N0)          helper         container init (Uc)
//! lock networks; no live holder recorded:
//! fork ─▶ clone(NEWUSER|NEWNET) ▶ waits
//! newuidmap/newgidmap U0: the caller's map (uid, subordinate range)
//! record pid, start, U0/N0 inodes
//! go ───────────────────────────▶ setsid, no IPv6 in N0,
//!                                 exec rsafe network hold
//! bridge rsafe<id> in N0 (ip, after setns U0, N0)
//! fork ──────────────────────────────────────────────▶ setns(U0)
//!                                                      clone(NEWUSER|…|PARENT) ▶ unshare(NEWNET)
//! fork ──────────────────────────────────────────────▶ setns(U0); write Uc's maps
//! lease 10.89.0.2; hosts files (super::netstore)
//! ip link add rsv<id> type veth peer eth0 netns <init>   (setns U0, N0)
//! ip addr add 10.89.0.2/24 dev eth0 …                    (setns U0, container netns)
//! Go ───────────────────────────────────────────────────────────────────────▶ …
//! ```
//!
//! The kernel rules this rests on (user_namespaces(7), setns(2), checked on this machine):
//! - A process whose effective uid owns a user namespace, and is in that namespace's parent,
//!   has every capability in it and in all its descendants. So the rootless rsafe may
//!   `setns` into U0 (and directly into a Uc), and from U0 into N0 and into a container's
//!   network namespace: this is how the veth pairs are made and `eth0` configured.
//! - A `uid_map` may only be written by a process in the namespace's parent (or the namespace
//!   itself). `newuidmap` runs in the host's namespace, so it can map U0 but not a Uc, whose
//!   parent is U0 (it fails with EPERM). A Uc's maps are written by a helper that joined U0,
//!   which has CAP_SETUID there; the ids it writes are U0's, so the container's host-id map is
//!   translated through U0's map (the same plan of the caller's uid and subordinate range, so
//!   every id a container maps exists in U0).
//! - Capabilities in a user namespace hold over it and its descendants only. Container root
//!   has all of them in its Uc and none in U0 (its parent) or in a sibling Uc: it cannot enter
//!   N0 or another container's namespaces, and container root is still the caller, never host
//!   root (tested from inside: `/proc/self/uid_map`, a refused `nsenter`).
//!
//! Why nested namespaces and not podman's one user namespace shared by all the user's
//! containers: in podman's, each container's root is root of the very namespace that owns the
//! other containers' namespaces (and the network's), so `CAP_SYS_ADMIN` in one container
//! (`--cap-add`, a kernel bug reached from it) is power over all of them. Nested, a container's
//! capabilities stop at its own namespaces, as they do for root's containers and for rootless
//! containers without a network.
//!
//! The holder is started on a network's first use and ended by `rsafe network rm`. Its record
//! (`<store>/networks/NAME/holder`, written under the networks' lock) names its pid and start
//! time and the inodes of U0 and N0: a holder killed with -9 (or a reboot) is seen as gone even
//! when its pid has been reused, and the next run starts a new one. Containers still running
//! under a killed holder have lost their network (their veth ends went with N0); the run that
//! restarts the holder says so. The holder is not a child of rsafe (it is reparented at once,
//! and in its own session, so a terminal's Ctrl-C does not reach it) and holds no descriptor
//! of its starter.
//!
//! The way out (a network not `--internal`, as rootless podman connects its rootless-netns):
//! slirp4netns, started by rsafe right after the holder (`--configure`: `tap0` 10.0.2.100 in
//! N0 with the default route; `--disable-host-loopback`), the host side of a user-mode network
//! since the host's nft and `ip_forward` are root's. N0 forwards (its own `ip_forward`, set by
//! the holder), its bridge has the gateway address, and its own nftables masquerade the
//! subnet out of `tap0` and drop what goes to N0 itself, to the host (slirp4netns connects
//! from the host, so a host service on 0.0.0.0 would be reached through any host address) or
//! in from `tap0` (see [`super::nat`]). slirp4netns lives as long as the holder: its
//! `--exit-fd` is the read end of a pipe whose only write end the holder keeps open through
//! its `exec` (rsafe's copy closes once slirp4netns runs), so the holder's end, kill -9
//! included, ends it. It is recorded (pid, start) in the holder's record; a holder recorded
//! without a live one (slirp4netns killed, or rsafe killed between the holder's start and
//! slirp4netns's) is ended and replaced by the next run. An internal network's N0 has no
//! uplink, no address on its bridge, no route and no rules, and nothing listens there.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use nix::unistd::{ForkResult, Pid};

use super::idmap::{IdMap, IdRange};
use super::netstore::{HolderRecord, NetStore};
use super::network::NetworkError;
use super::{helper, state, sys};

/// The namespaces of a network's holder, open: where its bridge and the host ends of its veth
/// pairs are (see [`super::bridge::Place`]).
#[derive(Debug)]
pub struct HolderNs {
    /// The holder's pid, to read its network namespace's interfaces (`/proc/PID/net/dev`).
    pub pid: i32,
    /// U0 and N0.
    pub user: File,
    pub net: File,
    /// Whether N0 has its way out, slirp4netns's [`UPLINK`] (the network is not internal).
    pub uplink: bool,
}

impl HolderNs {
    /// Another handle on the same namespaces.
    pub fn try_clone(&self) -> io::Result<HolderNs> {
        Ok(HolderNs {
            pid: self.pid,
            user: self.user.try_clone()?,
            net: self.net.try_clone()?,
            uplink: self.uplink,
        })
    }
}

/// slirp4netns's interface in N0, the way out of a rootless network that reaches the outside.
pub const UPLINK: &str = "tap0";

/// slirp4netns's network as N0 sees it (`tap0` is 10.0.2.100, its gateway 10.0.2.2 the host's
/// loopback, 10.0.2.3 its DNS forwarder): host services, never a container's destination.
pub const UPLINK_NET: &str = "10.0.2.0/24";

/// A rootless network's live holder, for one container's start.
#[derive(Debug)]
pub struct Holder {
    ns: HolderNs,
    record: HolderRecord,
    /// Whether this run had to start it while containers of a former one (killed) still run.
    pub restarted: bool,
}

fn named(what: impl std::fmt::Display) -> NetworkError {
    NetworkError::Named(what.to_string())
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> NetworkError + '_ {
    move |source| NetworkError::Io {
        what: what.to_string(),
        source,
    }
}

impl Holder {
    /// Network `network`'s holder, started if it has none alive (its U0 mapped by `idmap`,
    /// the caller's plan). Call with rsafe single-threaded.
    pub fn ensure(store_root: &Path, network: &str, idmap: &IdMap) -> Result<Holder, NetworkError> {
        let store = NetStore::new(store_root);
        let _lock = store.lock().map_err(named)?;
        let uplink = !store.get(network).map_err(named)?.internal;
        let old = store.holder(network).map_err(named)?;
        if let Some(record) = &old
            && let Some(ns) = open(record)
        {
            if !uplink || uplink_alive(record) {
                return Ok(Holder {
                    ns: HolderNs { uplink, ..ns },
                    record: record.clone(),
                    restarted: false,
                });
            }
            // Its slirp4netns is gone (killed, or rsafe was killed before it started): its
            // containers have no way out, and a new holder gets one.
            stop(record);
        }
        let holder = start(network, idmap, uplink, |record| {
            store.set_holder(network, record).map_err(named)
        })?;
        // Containers that ran under the old one lost their network with it: say so.
        let stranded = old.is_some() && !store.reclaim(network).map_err(named)?.is_empty();
        Ok(Holder {
            restarted: stranded,
            ..holder
        })
    }

    /// Its namespaces, for the bridge and the veth pairs.
    pub fn ns(&self) -> io::Result<HolderNs> {
        self.ns.try_clone()
    }

    /// Creates a container's first process with `flags` (which include `CLONE_NEWUSER`): in a
    /// new user namespace under U0, a child of rsafe (as [`sys::clone_process`] makes it).
    /// Call with rsafe single-threaded.
    pub fn clone_under(
        &self,
        flags: libc::c_int,
        main: Box<dyn FnOnce() -> i32>,
    ) -> io::Result<Pid> {
        let join = || {
            setns(self.ns.user.as_fd(), CloneFlags::CLONE_NEWUSER)
                .map_err(|e| format!("join the network's user namespace: {e}"))
        };
        helper::clone_after(join, flags, main)
    }

    /// Writes the maps of process `pid`'s user namespace (a child of U0): `idmap`'s host ids
    /// as U0 sees them, by a helper in U0 (the only place the kernel takes them from).
    pub fn write_map(&self, idmap: &IdMap, pid: i32) -> Result<(), NetworkError> {
        let untranslated = |kind: &str| {
            named(format!(
                "the network's user namespace does not map the container's {kind}s (did /etc/sub{kind} change since it started? rsafe network rm and create it again)"
            ))
        };
        let uids = through(&self.record.uids, &idmap.uids).ok_or_else(|| untranslated("uid"))?;
        let gids = through(&self.record.gids, &idmap.gids).ok_or_else(|| untranslated("gid"))?;
        let text = |ranges: &[IdRange]| -> String {
            ranges
                .iter()
                .map(|r| format!("{} {} {}\n", r.container, r.host, r.size))
                .collect()
        };
        let (uid_map, gid_map) = (text(&uids), text(&gids));
        let deny = !idmap.setgroups;
        let user = &self.ns.user;
        let written = helper::in_subprocess(|| {
            setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)
                .map_err(|e| format!("join the network's user namespace: {e}"))?;
            let proc = format!("/proc/{pid}");
            let write = |file: &str, text: &str| {
                std::fs::write(format!("{proc}/{file}"), text)
                    .map_err(|e| format!("{proc}/{file}: {e}"))
            };
            if deny {
                write("setgroups", "deny")?;
            }
            write("uid_map", &uid_map)?;
            write("gid_map", &gid_map)
        });
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(named(format!("the container's id map: {why}"))),
            Err(e) => Err(named(format!("the container's id map: {e}"))),
        }
    }
}

/// `ranges` (host ids) as ids of a namespace whose map is `outer`: each range must lie within
/// one of `outer`'s. `None` if one does not.
pub fn through(outer: &[IdRange], ranges: &[IdRange]) -> Option<Vec<IdRange>> {
    ranges
        .iter()
        .map(|r| {
            let (start, end) = (u64::from(r.host), u64::from(r.host) + u64::from(r.size));
            let o = outer.iter().find(|o| {
                u64::from(o.host) <= start && end <= u64::from(o.host) + u64::from(o.size)
            })?;
            Some(IdRange {
                container: r.container,
                host: o.container + (r.host - o.host),
                size: r.size,
            })
        })
        .collect()
}

/// The namespace inode of `/proc/PID/ns/KIND` as opened.
fn ns_inode(file: &File) -> io::Result<u64> {
    Ok(file.metadata()?.ino())
}

/// The recorded holder's namespaces, if it is still the process that was recorded: same pid
/// and start time, and the very namespaces (a reused pid has other ones).
fn open(record: &HolderRecord) -> Option<HolderNs> {
    let pid = record.pid;
    if !state::process_alive(pid, record.start) {
        return None;
    }
    let user = File::open(format!("/proc/{pid}/ns/user")).ok()?;
    let net = File::open(format!("/proc/{pid}/ns/net")).ok()?;
    let same = ns_inode(&user).ok()? == record.user_ns && ns_inode(&net).ok()? == record.net_ns;
    // Opened while it was that process: it is the holder's if it still is.
    (same && state::process_alive(pid, record.start)).then_some(HolderNs {
        pid,
        user,
        net,
        uplink: record.uplink.is_some(),
    })
}

/// Whether the recorded holder's slirp4netns still runs.
fn uplink_alive(record: &HolderRecord) -> bool {
    record
        .uplink
        .is_some_and(|(pid, start)| state::process_alive(pid, start))
}

/// Starts a holder for `network`: see the module documentation. `save` records it, before it
/// goes past its first step. Returns once it runs `rsafe network hold`.
fn start(
    network: &str,
    idmap: &IdMap,
    uplink: bool,
    save: impl Fn(&HolderRecord) -> Result<(), NetworkError>,
) -> Result<Holder, NetworkError> {
    let Starting {
        pid,
        go,
        ready,
        exit,
    } = clone_holder(network, uplink)?;
    let started = (|| {
        idmap.write(pid).map_err(named)?;
        // Recorded before it may go on: a holder is never left running unrecorded (if rsafe
        // dies before Go, the holder reads end-of-file and ends).
        let (mut record, mut ns) = record_of(pid, idmap)?;
        save(&record)?;
        File::from(go)
            .write_all(b"g")
            .map_err(io_err("start the network's holder"))?;
        // End of file: it has run `exec` (the pipe is close-on-exec); anything else is why not.
        let mut said = String::new();
        let _ = File::from(ready).read_to_string(&mut said);
        if !said.is_empty() {
            return Err(named(format!("the network's holder: {said}")));
        }
        // Its way out, which ends with it (its end of `exit` closes). If rsafe dies before
        // this is recorded, the next run finds a holder without it and replaces the holder.
        if let Some(exit) = exit {
            record.uplink = Some(start_uplink(pid, exit)?);
            save(&record)?;
            ns.uplink = true;
        }
        Ok(Holder {
            ns,
            record,
            restarted: false,
        })
    })();
    if started.is_err() {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    started
}

/// A holder's first process, waiting for its go: its pid, the pipe to let it go on, the pipe
/// that ends when it has exec'd (or says why it could not).
struct Starting {
    pid: i32,
    go: OwnedFd,
    ready: OwnedFd,
    /// With an uplink: the read end of the pipe whose write end only the holder keeps, for
    /// slirp4netns's `--exit-fd`.
    exit: Option<OwnedFd>,
}

/// Creates the holder's first process in new user and network namespaces, through a starter
/// process that ends at once (so the holder is not rsafe's child). Call with rsafe
/// single-threaded.
fn clone_holder(network: &str, uplink: bool) -> Result<Starting, NetworkError> {
    let c = |s: &str| CString::new(s).map_err(|_| named(format!("{s:?}: a NUL byte")));
    // This very binary, even if its file has been replaced or removed since rsafe started.
    let path = c("/proc/self/exe")?;
    let argv = [c("rsafe")?, c("network")?, c("hold")?, c(network)?];
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from);
    let (pid_read, pid_write) = pipe().map_err(io_err("pipe"))?;
    let (go_read, go_write) = pipe().map_err(io_err("pipe"))?;
    let (ready_read, ready_write) = pipe().map_err(io_err("pipe"))?;
    let (exit_read, exit_write) = match uplink {
        true => pipe()
            .map(|(r, w)| (Some(r), Some(w)))
            .map_err(io_err("pipe"))?,
        false => (None, None),
    };
    // SAFETY: rsafe is single-threaded here (the caller's contract), so the forked starter is
    // a complete copy; it leaves only through `_exit`.
    let starter = match unsafe { nix::unistd::fork() }.map_err(|e| io_err("fork")(e.into()))? {
        ForkResult::Child => {
            drop((pid_read, go_write, ready_read, exit_read));
            let main =
                Box::new(move || holder_main((go_read, ready_write), exit_write, &path, &argv));
            let said = match sys::clone_process(libc::CLONE_NEWUSER | libc::CLONE_NEWNET, main) {
                Ok(pid) => format!("pid {pid}"),
                Err(e) => format!("clone(CLONE_NEWUSER|CLONE_NEWNET): {e}"),
            };
            let _ = File::from(pid_write).write_all(said.as_bytes());
            // SAFETY: ends the starter without running the parent's exit handlers; the holder
            // it made is reparented.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => child,
    };
    drop((pid_write, go_read, ready_write, exit_write));
    let _ = nix::sys::wait::waitpid(starter, None);
    // One short answer (atomic in a pipe), not read to EOF: the holder has a copy of the write
    // end until its exec.
    let mut buf = [0u8; 512];
    let n = File::from(pid_read).read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    match answer.strip_prefix("pid ").map(str::parse::<i32>) {
        Some(Ok(pid)) => Ok(Starting {
            pid,
            go: go_write,
            ready: ready_read,
            exit: exit_read,
        }),
        _ => Err(named(format!("start the network's holder: {answer}"))),
    }
}

/// The record of the holder `pid` just started, and its namespaces.
fn record_of(pid: i32, idmap: &IdMap) -> Result<(HolderRecord, HolderNs), NetworkError> {
    let start =
        state::process_start_time(pid).ok_or_else(|| named("the network's holder ended"))?;
    let user = File::open(format!("/proc/{pid}/ns/user"))
        .map_err(io_err("the holder's user namespace"))?;
    let net = File::open(format!("/proc/{pid}/ns/net"))
        .map_err(io_err("the holder's network namespace"))?;
    let record = HolderRecord {
        pid,
        start,
        user_ns: ns_inode(&user).map_err(io_err("the holder's user namespace"))?,
        net_ns: ns_inode(&net).map_err(io_err("the holder's network namespace"))?,
        uids: idmap.uids.clone(),
        gids: idmap.gids.clone(),
        uplink: None,
    };
    let ns = HolderNs {
        pid,
        user,
        net,
        uplink: false,
    };
    Ok((record, ns))
}

/// Starts slirp4netns for holder `holder`'s N0, as `--network slirp4netns` does for a
/// container ([`super::network`]: `tap0` configured with a default route, the host's loopback
/// refused with `--disable-host-loopback`), waits until it is ready and returns its pid and start
/// time. It is not rsafe's child (a starter forks it and ends, as for the holder), is in a
/// session of its own, and ends when `exit` reads end-of-file: when the holder, the only
/// process left with the pipe's write end, is gone. Call with rsafe single-threaded.
fn start_uplink(holder: i32, exit: OwnedFd) -> Result<(i32, u64), NetworkError> {
    super::network::tun_usable()?;
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from);
    let (ready_read, ready_write) = pipe().map_err(io_err("pipe"))?;
    let (pid_read, pid_write) = pipe().map_err(io_err("pipe"))?;
    // What it says goes to an unnamed file: read back if it fails, never a pipe to fill.
    let log = tempfile::tempfile().map_err(io_err("slirp4netns's log"))?;
    let mut cmd = std::process::Command::new("slirp4netns");
    cmd.args(super::network::SLIRP4NETNS_FLAGS)
        .arg(format!("--userns-path=/proc/{holder}/ns/user"))
        .arg(holder.to_string())
        .arg(UPLINK)
        .env_clear()
        .envs(env_pairs())
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log.try_clone().map_err(io_err("slirp4netns's log"))?);
    let (ready_fd, exit_fd) = (ready_write.as_raw_fd(), exit.as_raw_fd());
    // SAFETY: between fork and exec only async-signal-safe calls: dup2 and setsid.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::dup2(ready_fd, 3) < 0 || libc::dup2(exit_fd, 4) < 0 || libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // SAFETY: rsafe is single-threaded here (the caller's contract), so the forked starter is
    // a complete copy; it leaves only through `_exit`.
    let starter = match unsafe { nix::unistd::fork() }.map_err(|e| io_err("fork")(e.into()))? {
        ForkResult::Child => {
            drop((ready_read, pid_read));
            let said = match cmd.spawn() {
                Ok(child) => format!("pid {}", child.id()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => "not installed".to_string(),
                Err(e) => format!("start slirp4netns: {e}"),
            };
            let _ = File::from(pid_write).write_all(said.as_bytes());
            // SAFETY: ends the starter without running the parent's exit handlers; the
            // slirp4netns it started is reparented.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => child,
    };
    drop((ready_write, pid_write, exit));
    let _ = nix::sys::wait::waitpid(starter, None);
    let mut answer = String::new();
    let _ = File::from(pid_read).read_to_string(&mut answer);
    let pid = match answer.strip_prefix("pid ").map(str::parse::<i32>) {
        Some(Ok(pid)) => pid,
        _ if answer == "not installed" => return Err(NetworkError::NotInstalled),
        _ => return Err(NetworkError::Slirp(answer)),
    };
    let start = state::process_start_time(pid);
    let mut byte = [0u8; 1];
    let ready = File::from(ready_read).read(&mut byte);
    match (ready, start) {
        (Ok(1), Some(start)) => Ok((pid, start)),
        _ => Err(NetworkError::Slirp(format!(
            "the network's uplink: {}",
            super::network::last_line(log)
        ))),
    }
}

/// The holder's first steps, in U0 and N0: wait for U0's maps, leave rsafe's session, no IPv6
/// in N0 (so the bridge and veths get no link-local address), nothing of rsafe's kept open or
/// inherited but `exit` (the write end of slirp4netns's exit pipe, kept through `exec` for as
/// long as the holder lives), then `rsafe network hold`. With an uplink N0 forwards, and its
/// interfaces answer ARP for their own addresses only; without, for none. A failure is
/// written to `ready`.
fn holder_main(
    (go, ready): (OwnedFd, OwnedFd),
    exit: Option<OwnedFd>,
    path: &CString,
    argv: &[CString],
) -> i32 {
    let mut ready = File::from(ready);
    let mut byte = [0u8; 1];
    if !matches!(File::from(go).read(&mut byte), Ok(1)) {
        return 1;
    }
    let steps = || -> Result<(), String> {
        nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
        // Nothing of its starter's: no directory kept busy, no signal blocked (`kill PID` ends
        // it as it would any process).
        nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
        nix::sys::signal::SigSet::all()
            .thread_unblock()
            .map_err(|e| format!("unblock signals: {e}"))?;
        for key in [
            "ipv6/conf/all/disable_ipv6",
            "ipv6/conf/default/disable_ipv6",
        ] {
            std::fs::write(format!("/proc/sys/net/{key}"), "1")
                .map_err(|e| format!("/proc/sys/net/{key}: {e}"))?;
        }
        let (arp_ignore, forward) = if exit.is_some() {
            ("1", "1")
        } else {
            ("8", "0")
        };
        for (key, value) in [
            ("ipv4/conf/all/arp_ignore", arp_ignore),
            ("ipv4/conf/default/arp_ignore", arp_ignore),
            ("ipv4/ip_forward", forward),
        ] {
            std::fs::write(format!("/proc/sys/net/{key}"), value)
                .map_err(|e| format!("/proc/sys/net/{key}: {e}"))?;
        }
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("/dev/null: {e}"))?;
        nix::unistd::dup2_stdin(&null)
            .and_then(|()| nix::unistd::dup2_stdout(&null))
            .and_then(|()| nix::unistd::dup2_stderr(&null))
            .map_err(|e| format!("dup2: {e}"))?;
        drop(null);
        sys::cloexec_from(3).map_err(|e| format!("close_range: {e}"))?;
        if let Some(exit) = &exit {
            nix::fcntl::fcntl(
                exit,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map_err(|e| format!("keep the uplink's exit pipe: {e}"))?;
        }
        Err(sys::execve(path, argv, &env()).to_string())
    };
    if let Err(why) = steps() {
        let _ = ready.write_all(why.as_bytes());
    }
    127
}

/// The holder's environment: none of rsafe's (it may hold anything of the caller's).
fn env() -> Vec<CString> {
    vec![CString::from(c"PATH=/usr/sbin:/usr/bin:/sbin:/bin")]
}

/// [`env`] for `Command` (slirp4netns's).
fn env_pairs() -> [(&'static str, &'static str); 1] {
    [("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")]
}

/// `rsafe network hold`: the holder's whole life once started, keeping U0 and N0 alive until
/// it is killed. Refused in the host's user namespace (run by hand, it would hold nothing).
pub fn hold() -> Result<std::convert::Infallible, NetworkError> {
    let map =
        std::fs::read_to_string("/proc/self/uid_map").map_err(io_err("/proc/self/uid_map"))?;
    let whole = map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"];
    if whole {
        return Err(named(
            "rsafe network hold is the holder of a rootless network, started by rsafe run itself",
        ));
    }
    loop {
        nix::unistd::pause();
    }
}

/// Ends a recorded holder (`rsafe network rm`), if it is still that process, and waits (5
/// seconds at most) until it is gone, with N0, its bridge and any veth left in it.
pub fn stop(record: &HolderRecord) {
    let Ok(pidfd) = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(record.pid).unwrap_or(rustix::process::Pid::INIT),
        rustix::process::PidfdFlags::empty(),
    ) else {
        return;
    };
    // The pidfd names the process that had the pid when it was opened: if that is the
    // holder now, it was then.
    if open(record).is_none() {
        return;
    }
    let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while state::process_alive(record.pid, record.start) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Its slirp4netns follows once its exit pipe has closed (it polls it).
    if let Some((pid, start)) = record.uplink {
        while state::process_alive(pid, start) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(container: u32, host: u32, size: u32) -> IdRange {
        IdRange {
            container,
            host,
            size,
        }
    }

    #[test]
    fn host_ids_are_translated_into_the_holders_namespace() {
        let u0 = [r(0, 1001, 1), r(1, 100_000, 65_536)];
        // The caller's own plan: the identity of U0's ids.
        assert_eq!(
            through(&u0, &[r(0, 1001, 1), r(1, 100_000, 65_535)]),
            Some(vec![r(0, 0, 1), r(1, 1, 65_535)])
        );
        // A range inside U0's subordinate one.
        assert_eq!(through(&u0, &[r(0, 100_010, 10)]), Some(vec![r(0, 11, 10)]));
        // Ids U0 does not map (another range, or past the end): refused.
        assert_eq!(through(&u0, &[r(0, 1002, 1)]), None);
        assert_eq!(through(&u0, &[r(1, 100_000, 65_537)]), None);
        assert_eq!(
            through(&[r(0, u32::MAX, 1)], &[r(0, u32::MAX, 1)]),
            Some(vec![r(0, 0, 1)])
        );
    }

    #[test]
    fn a_holder_is_recognised_by_its_namespaces_not_its_pid_alone() {
        let pid = std::process::id() as i32;
        let ino =
            |kind: &str| ns_inode(&File::open(format!("/proc/self/ns/{kind}")).unwrap()).unwrap();
        let record = HolderRecord {
            pid,
            start: state::process_start_time(pid).unwrap(),
            user_ns: ino("user"),
            net_ns: ino("net"),
            uids: Vec::new(),
            gids: Vec::new(),
            uplink: None,
        };
        let ns = open(&record).expect("the live process with its namespaces");
        assert_eq!(ns.pid, pid);
        // The same pid and start time with other namespaces: a pid reused (or a record of
        // another boot) is not the holder.
        for other in [
            HolderRecord {
                user_ns: record.user_ns + 1,
                ..record.clone()
            },
            HolderRecord {
                net_ns: record.net_ns + 1,
                ..record.clone()
            },
            HolderRecord {
                start: record.start + 1,
                ..record.clone()
            },
        ] {
            assert!(open(&other).is_none(), "{other:?}");
        }
    }
}
