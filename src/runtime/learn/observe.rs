//! What one notified syscall tells about the workload's needs: its name always; for file
//! calls the path (read from the caller's memory, relative ones resolved against its working
//! directory or the directory descriptor) and the kind of access; for `bind`/`connect` the
//! TCP port; for `socket` whether it is raw; the argument classes of `socket`, `socketpair`,
//! `ioctl`, `clone`, `clone3` (its flags read from the caller's memory) and `unshare`.
//!
//! Which calls are file calls, and what access each implies (landlock's view):
//! - `open`, `openat`, `openat2`, `creat`: read, or write with `O_WRONLY`/`O_RDWR`/`O_CREAT`/
//!   `O_TRUNC` (`creat` always writes); a read-only `O_DIRECTORY` open lists a directory
//!   (landlock's READ_DIR, not READ_FILE); `O_PATH` opens nothing landlock checks; `O_TMPFILE`
//!   makes an unnamed file *in* the directory it names (apt does this in `/tmp`), so that
//!   directory is written into, not its parent;
//! - `execve`, `execveat`: execute;
//! - `mkdir*`, `mknod*`, `unlink*`, `rmdir`, `rename*`, `link*`, `symlink*`: write to the
//!   entry (landlock checks the directory where it is made or removed: [`super::reduce`]
//!   grants writes on directories);
//! - `truncate`: write.
//!
//! A call that can only fail is not kept: making a path that exists (`EEXIST`: `mkdir -p`
//! calls mkdir on every parent), removing or renaming one that does not (`ENOENT`: dpkg
//! unlinks a leftover `/usr.dpkg-tmp` before it unpacks `/usr`). Kept, they would grant a
//! directory the run never wrote: `/` for those two.
//!
//! stat, access, readlink, chdir and the like are not restricted by landlock, so not kept.

use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use super::Observed;
use crate::runtime::seccomp::args::{self, SocketClass};

/// Kinds of access to a path, as landlock distinguishes them in a policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub read: bool,
    /// The entry's content written, or the entry made or removed (a rule on its directory).
    pub write: bool,
    pub execute: bool,
    /// An unnamed entry made inside this directory (`O_TMPFILE`): a rule on the directory
    /// itself.
    pub write_in: bool,
    /// The directory opened to list it (`O_DIRECTORY`): a list-only rule, not a read one.
    pub list: bool,
}

impl Access {
    pub const READ: Access = Access {
        read: true,
        write: false,
        execute: false,
        write_in: false,
        list: false,
    };
    pub const WRITE: Access = Access {
        read: false,
        write: true,
        execute: false,
        write_in: false,
        list: false,
    };
    pub const EXECUTE: Access = Access {
        read: false,
        write: false,
        execute: true,
        write_in: false,
        list: false,
    };
    pub const WRITE_IN: Access = Access {
        read: false,
        write: false,
        execute: false,
        write_in: true,
        list: false,
    };
    pub const LIST: Access = Access {
        read: false,
        write: false,
        execute: false,
        write_in: false,
        list: true,
    };

    /// Every access of either.
    pub fn union(self, other: Access) -> Access {
        Access {
            read: self.read || other.read,
            write: self.write || other.write,
            execute: self.execute || other.execute,
            write_in: self.write_in || other.write_in,
            list: self.list || other.list,
        }
    }
}

/// The calling process's memory and descriptors, as rsafe can read them.
pub trait Caller {
    /// Up to `len` bytes at `addr` (fewer at the end of a mapping); None if unreadable.
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>>;
    /// The working directory, as a container path.
    fn cwd(&self) -> Option<PathBuf>;
    /// What descriptor `fd` refers to, as a container path.
    fn fd_path(&self, fd: i32) -> Option<PathBuf>;
    /// Whether a container path exists now (not following a last symlink).
    fn exists(&self, path: &Path) -> bool;
    /// Whether a signal from the caller to `target` (a pid of the container) is one only
    /// CAP_KILL allows; None when it cannot be told (the target is gone).
    fn signal_needs_kill(&self, target: i32) -> Option<bool>;
}

/// A syscall as notified: number and raw arguments.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub nr: i64,
    pub args: [u64; 6],
}

const AT_FDCWD: i32 = -100;
/// PATH_MAX: a longer path is refused by the kernel anyway.
const PATH_MAX: usize = 4096;

/// Records what `call` says into `seen` (the name is the caller's to record).
pub fn record(call: Call, caller: &dyn Caller, seen: &mut Observed) {
    match call.nr {
        libc::SYS_bind | libc::SYS_connect => record_port(call, caller, seen),
        libc::SYS_socket | libc::SYS_socketpair | libc::SYS_ioctl => record_socket(call, seen),
        libc::SYS_clone | libc::SYS_unshare | libc::SYS_clone3 => {
            record_namespaces(call, caller, seen)
        }
        libc::SYS_kill | libc::SYS_tkill | libc::SYS_tgkill | libc::SYS_pidfd_send_signal => {
            record_signal(call, caller, seen)
        }
        _ => record_paths(call, caller, seen),
    }
}

/// The file calls: which paths are read, written or executed (other calls: nothing).
fn record_paths(call: Call, caller: &dyn Caller, seen: &mut Observed) {
    let a = call.args;
    let fd = |i: usize| a[i] as i32;
    let p = Paths { caller };
    match call.nr {
        libc::SYS_open => p.access(seen, AT_FDCWD, a[0], open_access(a[1])),
        libc::SYS_openat => p.access(seen, fd(0), a[1], open_access(a[2])),
        libc::SYS_openat2 => {
            // struct open_how { u64 flags; u64 mode; u64 resolve; }: flags first.
            let flags = caller
                .read(a[2], 8)
                .and_then(|b| {
                    b.get(..8)
                        .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                })
                .unwrap_or(0);
            p.access(seen, fd(0), a[1], open_access(flags))
        }
        libc::SYS_creat | libc::SYS_truncate => p.access(seen, AT_FDCWD, a[0], Access::WRITE),
        libc::SYS_execve => p.access(seen, AT_FDCWD, a[0], Access::EXECUTE),
        libc::SYS_execveat => p.access(seen, fd(0), a[1], Access::EXECUTE),
        libc::SYS_mkdir | libc::SYS_mknod => p.create(seen, AT_FDCWD, a[0]),
        libc::SYS_mkdirat | libc::SYS_mknodat => p.create(seen, fd(0), a[1]),
        libc::SYS_unlink | libc::SYS_rmdir => {
            p.remove(seen, AT_FDCWD, a[0]);
        }
        libc::SYS_unlinkat => {
            p.remove(seen, fd(0), a[1]);
        }
        libc::SYS_rename => p.rename(seen, (AT_FDCWD, a[0]), (AT_FDCWD, a[1])),
        libc::SYS_renameat | libc::SYS_renameat2 => p.rename(seen, (fd(0), a[1]), (fd(2), a[3])),
        libc::SYS_link => {
            p.access(seen, AT_FDCWD, a[0], Access::READ);
            p.create(seen, AT_FDCWD, a[1]);
        }
        libc::SYS_linkat => {
            p.access(seen, fd(0), a[1], Access::READ);
            p.create(seen, fd(2), a[3]);
        }
        libc::SYS_symlink => p.create(seen, AT_FDCWD, a[1]),
        libc::SYS_symlinkat => p.create(seen, fd(1), a[2]),
        _ => {}
    }
}

/// Path arguments read from the caller's memory and recorded with the access they need.
struct Paths<'a> {
    caller: &'a dyn Caller,
}

impl Paths<'_> {
    /// The path at `ptr` (relative to `dirfd`) needs `access` (nothing recorded for none).
    fn access(&self, seen: &mut Observed, dirfd: i32, ptr: u64, access: Access) {
        if access == Access::default() {
            return;
        }
        if let Some(p) = read_path(self.caller, dirfd, ptr) {
            seen.add_path(p, access);
        }
    }

    /// A call that only creates fails with EEXIST when its path exists (module
    /// documentation): a write is recorded only for a path that does not exist yet.
    fn create(&self, seen: &mut Observed, dirfd: i32, ptr: u64) {
        if let Some(p) = read_path(self.caller, dirfd, ptr)
            && !self.caller.exists(&p)
        {
            seen.add_path(p, Access::WRITE);
        }
    }

    /// A call that removes fails with ENOENT when its path does not exist: a write is
    /// recorded only for one that does (returned).
    fn remove(&self, seen: &mut Observed, dirfd: i32, ptr: u64) -> bool {
        match read_path(self.caller, dirfd, ptr) {
            Some(p) if self.caller.exists(&p) => {
                seen.add_path(p, Access::WRITE);
                true
            }
            _ => false,
        }
    }

    /// The new name is written only when the old one exists (else ENOENT).
    fn rename(&self, seen: &mut Observed, (from_fd, from): (i32, u64), (to_fd, to): (i32, u64)) {
        if self.remove(seen, from_fd, from) {
            self.access(seen, to_fd, to, Access::WRITE);
        }
    }
}

/// `bind` and `connect`: the TCP port, for landlock's port rules.
fn record_port(call: Call, caller: &dyn Caller, seen: &mut Observed) {
    let a = call.args;
    if let Some(port) = inet_port(caller, a[1], a[2]) {
        let set = if call.nr == libc::SYS_bind {
            &mut seen.tcp_bind
        } else {
            &mut seen.tcp_connect
        };
        set.insert(port);
    }
}

/// `socket`, `socketpair` and `ioctl`: the argument classes `[seccomp.args]` narrows to, and
/// whether a raw or packet socket (NET_RAW) was asked for.
fn record_socket(call: Call, seen: &mut Observed) {
    let a = call.args;
    match call.nr {
        libc::SYS_socket => {
            let (family, kind) = (a[0] as i32, a[1] as i32 & 0xf);
            if kind == libc::SOCK_RAW || family == libc::AF_PACKET {
                seen.raw_socket = true;
            }
            seen.sockets.insert(SocketClass::of_call(a[0], a[1]));
        }
        libc::SYS_socketpair => {
            seen.socketpairs.insert(SocketClass::of_call(a[0], a[1]));
        }
        _ => {
            seen.ioctls.insert(a[1] as u32);
        }
    }
}

/// `clone`, `unshare` and `clone3`: the namespaces asked for.
fn record_namespaces(call: Call, caller: &dyn Caller, seen: &mut Observed) {
    let a = call.args;
    match call.nr {
        libc::SYS_clone => seen.namespaces |= a[0] & args::CLONE_NAMESPACES,
        libc::SYS_unshare => seen.namespaces |= a[0] & args::UNSHARE_NAMESPACES,
        _ => {
            // struct clone_args { u64 flags; … }, its size in the second argument.
            let flags = (a[1] >= 8)
                .then(|| caller.read(a[0], 8))
                .flatten()
                .and_then(|b| b.get(..8).and_then(|b| b.try_into().ok()))
                .map_or(0, u64::from_ne_bytes);
            seen.namespaces |= flags & args::UNSHARE_NAMESPACES;
        }
    }
}

/// The kill family: whether a signal went to a process only CAP_KILL may signal.
fn record_signal(call: Call, caller: &dyn Caller, seen: &mut Observed) {
    let a = call.args;
    // Signal 0 only probes; kill(0, …) reaches the caller's own group. A negative pid
    // (another group) or a pidfd names no one process to look at: counted.
    let target = a[0] as i32;
    let signal = if call.nr == libc::SYS_tgkill {
        a[2]
    } else {
        a[1]
    };
    if signal != 0 && target != 0 {
        let one = target > 0 && call.nr != libc::SYS_pidfd_send_signal;
        let needs = !one || caller.signal_needs_kill(target).unwrap_or(true);
        seen.signalled_others |= needs;
    }
}

/// What an open with `flags` does, for landlock.
fn open_access(flags: u64) -> Access {
    let flags = flags as i32;
    if flags & libc::O_PATH != 0 {
        return Access::default();
    }
    if flags & libc::O_TMPFILE == libc::O_TMPFILE {
        return Access::WRITE_IN;
    }
    let writes =
        flags & libc::O_ACCMODE != libc::O_RDONLY || flags & (libc::O_CREAT | libc::O_TRUNC) != 0;
    if writes {
        Access::WRITE
    } else {
        read_access(flags)
    }
}

/// What a read-only open with `flags` needs: listing for a directory opened as one
/// (`O_DIRECTORY`, as `opendir` and Python's `os.listdir` open it), reading otherwise. A
/// directory opened without the flag counts as a read: larger, never smaller.
fn read_access(flags: i32) -> Access {
    if flags & libc::O_DIRECTORY != 0 {
        Access::LIST
    } else {
        Access::READ
    }
}

/// The NUL-terminated path at `ptr`, made absolute and normalised (lexically: `.` and `..`
/// removed, as landlock rules need a plain path).
fn read_path(caller: &dyn Caller, dirfd: i32, ptr: u64) -> Option<PathBuf> {
    resolve(caller, dirfd, &read_raw(caller, ptr)?)
}

/// The NUL-terminated string at `ptr` as the caller gave it (at most PATH_MAX bytes).
pub(super) fn read_raw(caller: &dyn Caller, ptr: u64) -> Option<Vec<u8>> {
    if ptr == 0 {
        return None;
    }
    let mut bytes = Vec::new();
    // Read page-sized pieces: a path near the end of a mapping must not fail as a whole.
    while bytes.len() < PATH_MAX {
        let addr = ptr + bytes.len() as u64;
        let room = 4096 - (addr % 4096) as usize;
        let chunk = caller.read(addr, room)?;
        if chunk.is_empty() {
            return None;
        }
        if let Some(end) = chunk.iter().position(|b| *b == 0) {
            bytes.extend_from_slice(&chunk[..end]);
            return Some(bytes);
        }
        bytes.extend_from_slice(&chunk);
    }
    None
}

fn resolve(caller: &dyn Caller, dirfd: i32, bytes: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let raw = Path::new(std::ffi::OsStr::from_bytes(bytes));
    let full = if raw.is_absolute() {
        raw.to_path_buf()
    } else {
        let base = if dirfd == AT_FDCWD {
            caller.cwd()?
        } else {
            caller.fd_path(dirfd)?
        };
        if raw.as_os_str().is_empty() {
            base // AT_EMPTY_PATH: the descriptor itself
        } else {
            base.join(raw)
        }
    };
    Some(normalise(&full))
}

/// `/a/./b/../c` → `/a/c`; never above `/`.
pub fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The port of an AF_INET/AF_INET6 `sockaddr` at `ptr` (`len` bytes). The socket's type is
/// not checked: a UDP port is kept too, which only makes the TCP list larger.
fn inet_port(caller: &dyn Caller, ptr: u64, len: u64) -> Option<u16> {
    if len < 4 || ptr == 0 {
        return None;
    }
    let b = caller.read(ptr, 4)?;
    let family = i32::from(u16::from_ne_bytes([*b.first()?, *b.get(1)?]));
    (family == libc::AF_INET || family == libc::AF_INET6).then(|| u16::from_be_bytes([b[2], b[3]]))
}

/// A process of the container, read through the host's `/proc/PID`. Its links (`cwd`,
/// `fd/N`) name paths in the container's mount namespace, whose root is the container's root.
pub struct ProcCaller {
    pub pid: u32,
    mem: Option<std::fs::File>,
}

impl ProcCaller {
    /// Opens `/proc/PID/mem` (None inside when the process is gone or not readable).
    pub fn open(pid: u32) -> ProcCaller {
        ProcCaller {
            pid,
            mem: std::fs::File::open(format!("/proc/{pid}/mem")).ok(),
        }
    }
}

impl Caller for ProcCaller {
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        let n = self.mem.as_ref()?.read_at(&mut buf, addr).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    fn cwd(&self) -> Option<PathBuf> {
        container_link(std::fs::read_link(format!("/proc/{}/cwd", self.pid)).ok()?)
    }

    fn fd_path(&self, fd: i32) -> Option<PathBuf> {
        container_link(std::fs::read_link(format!("/proc/{}/fd/{fd}", self.pid)).ok()?)
    }

    fn exists(&self, path: &Path) -> bool {
        self.open_inside(path, rustix::fs::OFlags::PATH).is_some()
    }

    fn signal_needs_kill(&self, target: i32) -> Option<bool> {
        let own = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        // The container's own /proc: `target` is a pid of its namespace.
        let fd = self.open_inside(
            Path::new(&format!("/proc/{target}/status")),
            rustix::fs::OFlags::RDONLY,
        )?;
        let mut theirs = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut theirs).ok()?;
        Some(kill_needs_cap(uids(&own)?, uids(&theirs)?))
    }
}

impl ProcCaller {
    /// Opens a container path with `flags`, resolved inside the container's root: an absolute
    /// symlink there must not make rsafe look at a host path. The last component is not
    /// followed.
    fn open_inside(&self, path: &Path, flags: rustix::fs::OFlags) -> Option<OwnedFd> {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        let root = rustix::fs::open(
            format!("/proc/{}/root", self.pid),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let inside = path.strip_prefix("/").unwrap_or(path);
        let inside = if inside.as_os_str().is_empty() {
            Path::new(".")
        } else {
            inside
        };
        rustix::fs::openat2(
            &root,
            inside,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .ok()
    }
}

/// The real, effective, saved and filesystem uid of a `/proc/PID/status` text.
fn uids(status: &str) -> Option<[u32; 4]> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_whitespace().map(|n| n.parse::<u32>().ok());
    Some([ids.next()??, ids.next()??, ids.next()??, ids.next()??])
}

/// The kernel's rule (`kill_ok_by_cred`): a signal needs CAP_KILL unless the sender's real or
/// effective uid is the target's real or saved uid.
fn kill_needs_cap(sender: [u32; 4], target: [u32; 4]) -> bool {
    let [real, effective, ..] = sender;
    let [t_real, _, t_saved, _] = target;
    ![real, effective]
        .iter()
        .any(|id| *id == t_real || *id == t_saved)
}

/// A `/proc` link target that is a path (not `socket:[…]`, not ` (deleted)`).
fn container_link(target: PathBuf) -> Option<PathBuf> {
    let text = target.to_str()?;
    (target.is_absolute() && !text.ends_with(" (deleted)")).then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Memory as a map of addresses to NUL-terminated strings or raw bytes.
    struct Fake {
        mem: HashMap<u64, Vec<u8>>,
        cwd: PathBuf,
        fds: HashMap<i32, PathBuf>,
    }

    impl Caller for Fake {
        fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
            let (base, bytes) = self
                .mem
                .iter()
                .find(|(b, v)| addr >= **b && addr < **b + v.len() as u64)?;
            let start = (addr - base) as usize;
            Some(bytes[start..bytes.len().min(start + len)].to_vec())
        }
        fn cwd(&self) -> Option<PathBuf> {
            Some(self.cwd.clone())
        }
        fn fd_path(&self, fd: i32) -> Option<PathBuf> {
            self.fds.get(&fd).cloned()
        }
        fn exists(&self, path: &Path) -> bool {
            path == Path::new("/etc/passwd") || path == Path::new("/tmp")
        }
        /// Pid 42 is another user's process, 7 the caller's own; others are gone.
        fn signal_needs_kill(&self, target: i32) -> Option<bool> {
            match target {
                42 => Some(true),
                7 => Some(false),
                _ => None,
            }
        }
    }

    fn fake() -> Fake {
        let mut mem = HashMap::new();
        mem.insert(0x1000, b"/etc/passwd\0".to_vec());
        mem.insert(0x2000, b"lib/../x.txt\0".to_vec());
        mem.insert(0x3000, b"newdir\0".to_vec());
        // sockaddr_in for port 8080 (network order), family AF_INET in host order.
        let mut sin = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        sin.extend_from_slice(&8080u16.to_be_bytes());
        sin.extend_from_slice(&[127, 0, 0, 1]);
        mem.insert(0x4000, sin);
        // A path that crosses a page boundary.
        let mut long = b"/usr/share/".to_vec();
        long.extend_from_slice(b"doc/readme\0");
        mem.insert(0x4ff8, long);
        mem.insert(0x6000, b"/tmp\0".to_vec());
        Fake {
            mem,
            cwd: PathBuf::from("/work"),
            fds: [(5, PathBuf::from("/var/lib"))].into_iter().collect(),
        }
    }

    fn seen(calls: &[Call]) -> Observed {
        let f = fake();
        let mut o = Observed::default();
        for c in calls {
            record(*c, &f, &mut o);
        }
        o
    }

    fn call(nr: i64, args: [u64; 6]) -> Call {
        Call { nr, args }
    }

    #[test]
    fn opens_are_read_or_write_by_flags() {
        let cwd = AT_FDCWD as u32 as u64;
        let o = seen(&[
            call(
                libc::SYS_openat,
                [cwd, 0x1000, libc::O_RDONLY as u64, 0, 0, 0],
            ),
            call(
                libc::SYS_openat,
                [
                    cwd,
                    0x2000,
                    (libc::O_WRONLY | libc::O_CREAT) as u64,
                    0,
                    0,
                    0,
                ],
            ),
            call(libc::SYS_openat, [5, 0x3000, libc::O_PATH as u64, 0, 0, 0]),
            call(libc::SYS_open, [0x4ff8, libc::O_RDONLY as u64, 0, 0, 0, 0]),
        ]);
        assert_eq!(o.paths[Path::new("/etc/passwd")], Access::READ);
        assert_eq!(o.paths[Path::new("/work/x.txt")], Access::WRITE);
        assert_eq!(o.paths[Path::new("/usr/share/doc/readme")], Access::READ);
        // O_PATH: nothing landlock checks.
        assert!(!o.paths.contains_key(Path::new("/var/lib/newdir")));
    }

    #[test]
    fn entries_made_or_removed_are_writes() {
        let o = seen(&[
            call(libc::SYS_mkdirat, [5, 0x3000, 0o755, 0, 0, 0]),
            // mkdir of an existing path fails with EEXIST: nothing to grant.
            call(libc::SYS_mkdir, [0x6000, 0o755, 0, 0, 0, 0]),
            call(libc::SYS_unlink, [0x1000, 0, 0, 0, 0, 0]),
            call(libc::SYS_execve, [0x1000, 0, 0, 0, 0, 0]),
        ]);
        assert_eq!(o.paths[Path::new("/var/lib/newdir")], Access::WRITE);
        assert!(!o.paths.contains_key(Path::new("/tmp")), "{o:?}");
        assert_eq!(
            o.paths[Path::new("/etc/passwd")],
            Access::WRITE.union(Access::EXECUTE)
        );
    }

    #[test]
    fn removing_or_renaming_what_is_not_there_writes_nothing() {
        // /work/x.txt does not exist: unlink and rename fail with ENOENT.
        let o = seen(&[
            call(libc::SYS_unlink, [0x2000, 0, 0, 0, 0, 0]),
            call(libc::SYS_rename, [0x2000, 0x3000, 0, 0, 0, 0]),
            call(libc::SYS_unlinkat, [5, 0x3000, 0, 0, 0, 0]),
        ]);
        assert!(o.paths.is_empty(), "{o:?}");
        // /etc/passwd exists: renaming it writes both names.
        let o = seen(&[call(libc::SYS_renameat2, [0, 0x1000, 5, 0x3000, 0, 0])]);
        assert_eq!(o.paths[Path::new("/etc/passwd")], Access::WRITE);
        assert_eq!(o.paths[Path::new("/var/lib/newdir")], Access::WRITE);
    }

    #[test]
    fn an_unnamed_temporary_file_writes_in_its_directory() {
        let cwd = AT_FDCWD as u32 as u64;
        let tmpfile = (libc::O_TMPFILE | libc::O_RDWR) as u64;
        let o = seen(&[
            call(libc::SYS_openat, [cwd, 0x6000, tmpfile, 0o600, 0, 0]),
            // O_DIRECTORY alone (a directory opened to list it) is not a temporary file.
            call(
                libc::SYS_openat,
                [cwd, 0x1000, libc::O_DIRECTORY as u64, 0, 0, 0],
            ),
        ]);
        assert_eq!(o.paths[Path::new("/tmp")], Access::WRITE_IN);
        assert_eq!(o.paths[Path::new("/etc/passwd")], Access::LIST);
    }

    #[test]
    fn a_directory_opened_as_one_is_listed_not_read() {
        let cwd = AT_FDCWD as u32 as u64;
        let opendir =
            (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_DIRECTORY) as u64;
        // Through openat2, struct open_how's flags are read from memory.
        let mut f = fake();
        let mut how = opendir.to_ne_bytes().to_vec();
        how.extend_from_slice(&[0; 16]);
        f.mem.insert(0x7000, how);
        let mut o = Observed::default();
        for c in [
            call(libc::SYS_open, [0x6000, opendir, 0, 0, 0, 0]),
            call(libc::SYS_openat2, [cwd, 0x2000, 0x7000, 24, 0, 0]),
        ] {
            record(c, &f, &mut o);
        }
        assert_eq!(o.paths[Path::new("/tmp")], Access::LIST);
        assert_eq!(o.paths[Path::new("/work/x.txt")], Access::LIST);
        // A directory opened without the flag is a read (larger, never smaller); asking to
        // write it, or to create, is a write whatever O_DIRECTORY says.
        let o = seen(&[
            call(libc::SYS_open, [0x6000, libc::O_RDONLY as u64, 0, 0, 0, 0]),
            call(
                libc::SYS_openat,
                [
                    cwd,
                    0x1000,
                    (libc::O_DIRECTORY | libc::O_CREAT) as u64,
                    0,
                    0,
                    0,
                ],
            ),
        ]);
        assert_eq!(o.paths[Path::new("/tmp")], Access::READ);
        assert_eq!(o.paths[Path::new("/etc/passwd")], Access::WRITE);
    }

    #[test]
    fn ports_raw_sockets_and_signals() {
        let o = seen(&[
            call(libc::SYS_bind, [3, 0x4000, 16, 0, 0, 0]),
            call(libc::SYS_connect, [3, 0x4000, 16, 0, 0, 0]),
            call(libc::SYS_connect, [3, 0x1000, 16, 0, 0, 0]), // not inet: '/e'
            call(
                libc::SYS_socket,
                [libc::AF_INET as u64, libc::SOCK_RAW as u64, 1, 0, 0, 0],
            ),
            call(libc::SYS_kill, [42, 0, 0, 0, 0, 0]),
        ]);
        assert_eq!(o.tcp_bind.iter().copied().collect::<Vec<_>>(), [8080]);
        assert_eq!(o.tcp_connect.iter().copied().collect::<Vec<_>>(), [8080]);
        assert!(o.raw_socket);
        assert!(!o.signalled_others, "signal 0 only probes");
        let o = seen(&[call(libc::SYS_kill, [42, 15, 0, 0, 0, 0])]);
        assert!(o.signalled_others);
    }

    #[test]
    fn argument_classes_are_recorded() {
        let mut mem = HashMap::new();
        // struct clone_args: flags first.
        let flags = (libc::CLONE_NEWUSER | libc::CLONE_NEWNET) as u64;
        mem.insert(0x7000, flags.to_ne_bytes().to_vec());
        let f = Fake {
            mem,
            cwd: PathBuf::from("/"),
            fds: HashMap::new(),
        };
        let mut o = Observed::default();
        let cloexec = libc::SOCK_CLOEXEC as u64;
        for c in [
            call(libc::SYS_socket, [1, 1 | cloexec, 0, 0, 0, 0]),
            call(libc::SYS_socket, [10, 2, 0, 0, 0, 0]),
            call(libc::SYS_socketpair, [1, 5 | cloexec, 0, 0, 0, 0]),
            call(libc::SYS_ioctl, [0, 0x5401, 0, 0, 0, 0]),
            call(libc::SYS_ioctl, [0, 0xffff_ffff_8004_5430, 0, 0, 0, 0]),
            // clone(SIGCHLD): no namespace; the signal's bits are not a flag.
            call(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
            call(libc::SYS_unshare, [libc::CLONE_NEWNS as u64, 0, 0, 0, 0, 0]),
            call(libc::SYS_clone3, [0x7000, 88, 0, 0, 0, 0]),
            // A size too small to hold the flags: nothing read.
            call(libc::SYS_clone3, [0x7000, 4, 0, 0, 0, 0]),
        ] {
            record(c, &f, &mut o);
        }
        let names = |s: &std::collections::BTreeSet<SocketClass>| {
            s.iter().map(|c| args::socket_name(*c)).collect::<Vec<_>>()
        };
        assert_eq!(
            names(&o.sockets),
            ["AF_UNIX/SOCK_STREAM", "AF_INET6/SOCK_DGRAM"]
        );
        assert_eq!(names(&o.socketpairs), ["AF_UNIX/SOCK_SEQPACKET"]);
        assert_eq!(
            o.ioctls.iter().copied().collect::<Vec<_>>(),
            [0x5401, 0x8004_5430]
        );
        assert_eq!(
            args::namespace_names(o.namespaces),
            ["CLONE_NEWNS", "CLONE_NEWUSER", "CLONE_NEWNET"]
        );
        assert!(!o.raw_socket);
    }

    #[test]
    fn a_signal_needs_cap_kill_only_across_users() {
        let (own, gone, group) = (7u64, 99u64, (-42i64) as u64);
        let own_user = seen(&[
            call(libc::SYS_kill, [own, 15, 0, 0, 0, 0]),
            call(libc::SYS_tgkill, [own, own, 2, 0, 0, 0]),
        ]);
        assert!(
            !own_user.signalled_others,
            "the caller's own user's process"
        );
        for c in [
            call(libc::SYS_tkill, [42, 9, 0, 0, 0, 0]),
            call(libc::SYS_kill, [gone, 15, 0, 0, 0, 0]),
            call(libc::SYS_kill, [group, 15, 0, 0, 0, 0]),
            call(libc::SYS_pidfd_send_signal, [own, 15, 0, 0, 0, 0]),
        ] {
            assert!(seen(&[c]).signalled_others, "{c:?}");
        }
    }

    #[test]
    fn the_kernels_rule_for_signals() {
        let status = "Name:\tapt-get\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        let root = uids(status).unwrap();
        let apt = [42, 42, 42, 42];
        assert!(kill_needs_cap(root, apt), "root signalling _apt");
        assert!(!kill_needs_cap(apt, apt));
        // A process that dropped to 42 but kept 0 as its saved uid is root's to signal.
        assert!(!kill_needs_cap(root, [42, 42, 0, 42]));
        // The sender's effective uid counts too (a set-uid sender).
        assert!(!kill_needs_cap([1000, 42, 42, 42], apt));
        assert_eq!(uids("Name:\tx\n"), None);
    }

    #[test]
    fn unreadable_memory_records_nothing() {
        let o = seen(&[call(libc::SYS_openat, [0, 0x9000, 0, 0, 0, 0])]);
        assert!(o.paths.is_empty());
    }

    #[test]
    fn normalising_never_climbs_above_root() {
        assert_eq!(
            normalise(Path::new("/../../etc/./x")),
            PathBuf::from("/etc/x")
        );
        assert_eq!(normalise(Path::new("/a/b/..")), PathBuf::from("/a"));
    }
}
