//! Which file calls landlock will refuse, predicted by the denial supervisor so that a learned
//! policy's file denials are reported by name (`rsafe: denied: openat /etc/shadow (not in
//! policy)`), not only as the workload's EACCES.
//!
//! Landlock has no notification to answer, and its audit records are out of reach rootless
//! (README, "Denials are reported by name"). So under `report_denials` the policy's seccomp
//! filter also notifies the calls in [`FILE_CALLS`] that its profile allows
//! ([`crate::runtime::seccomp::CompiledFilter::notifying_calls`]); the supervisor reads the
//! path, resolves it as the workload sees it ([`resolve`]: its working directory or directory
//! descriptor, symlinks followed inside the container's root, never into the host), works out
//! what landlock will ask of it ([`needs`]) and checks that against the policy's rules with
//! landlock's semantics ([`Resolved::refused`]), then answers
//! `SECCOMP_USER_NOTIF_FLAG_CONTINUE`. CONTINUE is safe here, unlike for a denial, because the
//! supervisor only predicts: the call then runs as it would have without the notification, and
//! landlock in the kernel is still what refuses it. A wrong prediction (another thread rewrote
//! the path after it was read, a rename's REFER subtleties, a file the supervisor may not look
//! at) can only make a line wrong or missing, never let a call through.
//!
//! Landlock semantics: a rule is tied to the file or directory its path opened (symlinks
//! followed) and covers everything below a directory; the rights a path has are the union of
//! the rules on it and on every directory above it. Opening needs READ_FILE / WRITE_FILE (a
//! directory READ_DIR), O_TRUNC also TRUNCATE; execve READ_FILE and EXECUTE; making or removing
//! an entry needs MAKE_* / REMOVE_* on the directory it is in; moving or linking an entry to
//! another directory also REFER on both, and the new place may not grant more than the old.
//! Only what the kernel's landlock ABI handles is checked.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ::landlock::{ABI, Access, AccessFs, BitFlags};
use rustix::fs::{FileType, Mode, OFlags};

use super::observe::{self, Call, Caller};
use crate::runtime::landlock::{self, FsAccess, LandlockPolicy};
use crate::runtime::seccomp::CompiledFilter;

/// The calls landlock checks against the path they name, when it is named: opens
/// (`open`, `openat`, `openat2`, `creat`), execs (`execve`, `execveat`), making, removing,
/// renaming and linking entries (`mkdir*`, `mknod*`, `unlink*`, `rmdir`, `rename*`, `link*`,
/// `symlink*`) and `truncate`. Not: calls on a descriptor already open (`read`, `write`,
/// `ftruncate`, `ioctl`: landlock decided when it was opened), and calls landlock does not
/// restrict (`stat`, `access`, `chdir`, `chmod`, `chown`, `readlink`, …), which would only
/// cost a round trip each.
pub const FILE_CALLS: &[i64] = &[
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_creat,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_mkdir,
    libc::SYS_mkdirat,
    libc::SYS_mknod,
    libc::SYS_mknodat,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_rmdir,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_link,
    libc::SYS_linkat,
    libc::SYS_symlink,
    libc::SYS_symlinkat,
    libc::SYS_truncate,
];

/// The landlock path rules a workload runs under, as given (container paths, not resolved).
#[derive(Debug, Clone)]
pub struct FileRules {
    rules: Vec<(PathBuf, BitFlags<AccessFs>)>,
    handled: BitFlags<AccessFs>,
    /// Landlock ABI 1 refuses every move or link to another directory.
    reparent_refused: bool,
}

/// The rules with their paths resolved in the container, ready to check paths against.
#[derive(Debug, Clone)]
pub struct Resolved {
    rules: Vec<(PathBuf, BitFlags<AccessFs>)>,
    handled: BitFlags<AccessFs>,
    reparent_refused: bool,
}

/// One access a call asks of landlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The path the line names: the file itself, symlinks resolved.
    pub shown: PathBuf,
    /// Where landlock looks: the file, or the directory an entry is made in or removed from.
    pub at: PathBuf,
    pub rights: BitFlags<AccessFs>,
    /// A move or link from this other directory (REFER).
    pub from: Option<PathBuf>,
}

impl FileRules {
    /// The rules of `fs` and `policy` as the kernel with landlock ABI `kernel_abi` enforces
    /// them. None when landlock can refuse no file access: no landlock, or a rule on `/` that
    /// grants everything (a policy that grants the whole root).
    pub fn new(
        fs: &FsAccess,
        policy: &LandlockPolicy,
        kernel_abi: Option<u32>,
    ) -> Option<FileRules> {
        let abi = kernel_abi?.min(landlock::TESTED_ABI);
        let handled = AccessFs::from_all(ABI::from(abi as i32));
        let rules: Vec<(PathBuf, BitFlags<AccessFs>)> = landlock::path_rules(fs, policy)
            .map(|(p, a)| (p.clone(), a))
            .collect();
        let everything = rules
            .iter()
            .any(|(p, a)| p == Path::new("/") && a.contains(handled));
        (!everything && !handled.is_empty()).then_some(FileRules {
            rules,
            handled,
            reparent_refused: abi < 2,
        })
    }

    /// The rules resolved under `root` as landlock opened them in the container (symlinks
    /// followed; a rule on a file grants only file rights; an absent path grants nothing).
    pub fn resolve_in(&self, root: BorrowedFd<'_>) -> Resolved {
        let file_rights = AccessFs::from_file(ABI::V7);
        let rules = self
            .rules
            .iter()
            .filter_map(|(path, access)| {
                let found = resolve(root, path.as_os_str().as_bytes(), Path::new("/"), true)?;
                let access = match found.kind? {
                    FileType::Directory => *access,
                    _ => *access & file_rights,
                };
                Some((found.path, access))
            })
            .collect();
        Resolved {
            rules,
            handled: self.handled,
            reparent_refused: self.reparent_refused,
        }
    }
}

impl Resolved {
    /// The rights landlock grants at `path` (resolved): the union of the rules on it and on
    /// every directory above it.
    pub fn granted(&self, path: &Path) -> BitFlags<AccessFs> {
        self.rules
            .iter()
            .filter(|(rule, _)| path.starts_with(rule))
            .fold(BitFlags::EMPTY, |all, (_, access)| all | *access)
    }

    /// The first of `needs` landlock refuses, if any.
    pub fn refused<'a>(&self, needs: &'a [Need]) -> Option<&'a Need> {
        needs.iter().find(|n| !self.allows(n))
    }

    fn allows(&self, need: &Need) -> bool {
        let granted = self.granted(&need.at);
        if !granted.contains(need.rights & self.handled) {
            return false;
        }
        let Some(from) = &need.from else {
            return true;
        };
        if self.reparent_refused {
            return false;
        }
        // REFER on both sides, and nothing more granted where the entry goes than where it
        // was (landlock's rule: the destination has at least the source's restrictions).
        let source = self.granted(from);
        let refer = BitFlags::from(AccessFs::Refer);
        let rest = self.handled & !refer;
        source.contains(refer) && granted.contains(refer) && source.contains(granted & rest)
    }
}

/// What a denial-reporting supervisor needs to name file denials: the calls its filter
/// notifies although the profile allows them (to be answered CONTINUE), and the landlock
/// rules to check their paths against.
#[derive(Debug, Clone)]
pub struct FileDenials {
    pub calls: Vec<i64>,
    pub rules: FileRules,
}

impl FileDenials {
    /// `filter`, a denial-reporting one ([`CompiledFilter::notifying_denials`]), also
    /// notifying the [`FILE_CALLS`] its profile allows, with what the supervisor needs to
    /// answer them. The filter unchanged and None when there is nothing to predict: it does
    /// not report denials, landlock is not in this kernel, or `fs` and `policy` grant the
    /// whole root (a policy that is not a learned one). Only such policies pay the cost (a
    /// round trip to rsafe per file call).
    pub fn prepare(
        filter: CompiledFilter,
        fs: &FsAccess,
        policy: &LandlockPolicy,
    ) -> (CompiledFilter, Option<FileDenials>) {
        let rules = match FileRules::new(fs, policy, landlock::kernel_abi()) {
            Some(rules) if filter.reports_denials() => rules,
            _ => return (filter, None),
        };
        let (filter, calls) = filter.notifying_calls(FILE_CALLS);
        let files = (!calls.is_empty()).then_some(FileDenials { calls, rules });
        (filter, files)
    }
}

/// A path resolved inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The container path, every symlink resolved (the last only if followed).
    pub path: PathBuf,
    /// What it is; None when the last component does not exist (its directory does).
    pub kind: Option<FileType>,
}

/// The kernel's limit on symlinks followed in one lookup (ELOOP past it).
const MAX_SYMLINKS: usize = 40;

/// Resolves `raw` (absolute, or relative to the container path `base`) the way the kernel
/// would for the workload, under `root` (the container's root: `/proc/PID/root`). One
/// component at a time from the directory above it (`openat(…, O_PATH | O_NOFOLLOW)`, never a
/// path with a `/`), so nothing is opened but directory entries and nothing outside `root` is
/// reached: `..` and absolute symlinks stop at `root`, and a symlink's text is read, never
/// followed by the kernel (a `/proc` magic link is text like any other). None when the kernel
/// would fail the lookup before landlock is asked (a missing directory, a loop, a file used as
/// a directory) or the supervisor may not look.
pub fn resolve(root: BorrowedFd<'_>, raw: &[u8], base: &Path, follow_last: bool) -> Option<Found> {
    let mut pending: VecDeque<Vec<u8>> = VecDeque::new();
    if raw.first() != Some(&b'/') {
        let base = base.as_os_str().as_bytes();
        pending.extend(base.split(|b| *b == b'/').map(<[u8]>::to_vec));
    }
    pending.extend(raw.split(|b| *b == b'/').map(<[u8]>::to_vec));
    let mut links = 0;
    let mut stack: Vec<(Vec<u8>, OwnedFd)> = Vec::new();
    while let Some(name) = pending.pop_front() {
        match name.as_slice() {
            b"" | b"." => continue,
            b".." => {
                stack.pop();
                continue;
            }
            _ => {}
        }
        let last = pending.iter().all(|c| c.is_empty() || c == b".");
        let dir = stack.last().map_or(root, |(_, fd)| fd.as_fd());
        let fd = match rustix::fs::openat(
            dir,
            OsStr::from_bytes(&name),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) if last => {
                return Some(Found {
                    path: joined(&stack, Some(&name)),
                    kind: None,
                });
            }
            Err(_) => return None,
        };
        let kind = FileType::from_raw_mode(rustix::fs::fstat(&fd).ok()?.st_mode);
        if kind == FileType::Symlink && (!last || follow_last) {
            links += 1;
            if links > MAX_SYMLINKS {
                return None;
            }
            let target = rustix::fs::readlinkat(&fd, "", Vec::new()).ok()?;
            let target = target.as_bytes();
            if target.first() == Some(&b'/') {
                stack.clear();
            }
            for part in target.split(|b| *b == b'/').rev() {
                pending.push_front(part.to_vec());
            }
            continue;
        }
        if !last && kind != FileType::Directory {
            return None;
        }
        stack.push((name, fd));
        if last {
            return Some(Found {
                path: joined(&stack, None),
                kind: Some(kind),
            });
        }
    }
    // Nothing left but `.`, `..` or slashes: a directory on the stack, or the root.
    Some(Found {
        path: joined(&stack, None),
        kind: Some(FileType::Directory),
    })
}

/// `/` and the names on the stack (and `extra`), as a container path.
fn joined(stack: &[(Vec<u8>, OwnedFd)], extra: Option<&[u8]>) -> PathBuf {
    let mut path = PathBuf::from("/");
    for name in stack.iter().map(|(n, _)| n.as_slice()).chain(extra) {
        path.push(OsStr::from_bytes(name));
    }
    path
}

const AT_FDCWD: i32 = -100;

/// How one notified call's paths are found: its caller's memory and directories, under the
/// container's root.
struct Lookup<'a> {
    caller: &'a dyn Caller,
    root: BorrowedFd<'a>,
}

impl Lookup<'_> {
    /// The path at `ptr`, relative to `dirfd` (or the working directory), resolved. An empty
    /// path is the descriptor itself only with `empty_ok` (AT_EMPTY_PATH); the kernel refuses
    /// it otherwise.
    fn at(&self, dirfd: i32, ptr: u64, follow: bool, empty_ok: bool) -> Option<Found> {
        let raw = observe::read_raw(self.caller, ptr)?;
        if raw.is_empty() && !empty_ok {
            return None;
        }
        let base = if raw.first() == Some(&b'/') {
            PathBuf::from("/")
        } else if dirfd == AT_FDCWD {
            self.caller.cwd()?
        } else {
            self.caller.fd_path(dirfd)?
        };
        resolve(self.root, &raw, &base, follow)
    }
}

/// The directory a resolved path is in.
fn parent(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new("/")).to_path_buf()
}

/// The right to make an entry of `kind`.
fn make(kind: FileType) -> AccessFs {
    match kind {
        FileType::Directory => AccessFs::MakeDir,
        FileType::Symlink => AccessFs::MakeSym,
        FileType::Fifo => AccessFs::MakeFifo,
        FileType::Socket => AccessFs::MakeSock,
        FileType::CharacterDevice => AccessFs::MakeChar,
        FileType::BlockDevice => AccessFs::MakeBlock,
        FileType::RegularFile | FileType::Unknown => AccessFs::MakeReg,
    }
}

/// The right to remove an entry of `kind`.
fn remove(kind: FileType) -> AccessFs {
    match kind {
        FileType::Directory => AccessFs::RemoveDir,
        _ => AccessFs::RemoveFile,
    }
}

fn need(shown: &Path, at: &Path, rights: impl Into<BitFlags<AccessFs>>) -> Need {
    Need {
        shown: shown.to_path_buf(),
        at: at.to_path_buf(),
        rights: rights.into(),
        from: None,
    }
}

/// What `call` asks of landlock, its paths read from `caller` and resolved under `root`;
/// empty for a call landlock does not check, or one the kernel fails before asking it (a
/// missing file, an entry that exists already).
pub fn needs(call: Call, caller: &dyn Caller, root: BorrowedFd<'_>) -> Vec<Need> {
    let l = Lookup { caller, root };
    let a = call.args;
    let fd = |i: usize| a[i] as i32;
    let flag = |i: usize, f: i32| a[i] as i32 & f != 0;
    match call.nr {
        libc::SYS_open => open(&l, AT_FDCWD, a[0], a[1] as i32),
        libc::SYS_openat => open(&l, fd(0), a[1], a[2] as i32),
        libc::SYS_openat2 => {
            // struct open_how { u64 flags; u64 mode; u64 resolve; }: flags first.
            let flags = caller
                .read(a[2], 8)
                .and_then(|b| b.get(..8).and_then(|b| b.try_into().ok()))
                .map_or(0, u64::from_ne_bytes);
            open(&l, fd(0), a[1], flags as i32)
        }
        libc::SYS_creat => open(
            &l,
            AT_FDCWD,
            a[0],
            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
        ),
        libc::SYS_execve => exec(l.at(AT_FDCWD, a[0], true, false)),
        libc::SYS_execveat => exec(l.at(
            fd(0),
            a[1],
            !flag(4, libc::AT_SYMLINK_NOFOLLOW),
            flag(4, libc::AT_EMPTY_PATH),
        )),
        libc::SYS_mkdir => create(l.at(AT_FDCWD, a[0], false, false), AccessFs::MakeDir),
        libc::SYS_mkdirat => create(l.at(fd(0), a[1], false, false), AccessFs::MakeDir),
        libc::SYS_mknod => create(l.at(AT_FDCWD, a[0], false, false), node(a[1])),
        libc::SYS_mknodat => create(l.at(fd(0), a[1], false, false), node(a[2])),
        libc::SYS_symlink => create(l.at(AT_FDCWD, a[1], false, false), AccessFs::MakeSym),
        libc::SYS_symlinkat => create(l.at(fd(1), a[2], false, false), AccessFs::MakeSym),
        libc::SYS_unlink => unlink(l.at(AT_FDCWD, a[0], false, false), false),
        libc::SYS_rmdir => unlink(l.at(AT_FDCWD, a[0], false, false), true),
        libc::SYS_unlinkat => unlink(l.at(fd(0), a[1], false, false), flag(2, libc::AT_REMOVEDIR)),
        libc::SYS_rename => rename(
            l.at(AT_FDCWD, a[0], false, false),
            l.at(AT_FDCWD, a[1], false, false),
            0,
        ),
        libc::SYS_renameat => rename(
            l.at(fd(0), a[1], false, false),
            l.at(fd(2), a[3], false, false),
            0,
        ),
        libc::SYS_renameat2 => rename(
            l.at(fd(0), a[1], false, false),
            l.at(fd(2), a[3], false, false),
            a[4] as u32,
        ),
        libc::SYS_link => link(
            l.at(AT_FDCWD, a[0], false, false),
            l.at(AT_FDCWD, a[1], false, false),
        ),
        libc::SYS_linkat => link(
            l.at(
                fd(0),
                a[1],
                flag(4, libc::AT_SYMLINK_FOLLOW),
                flag(4, libc::AT_EMPTY_PATH),
            ),
            l.at(fd(2), a[3], false, false),
        ),
        libc::SYS_truncate => match l.at(AT_FDCWD, a[0], true, false) {
            Some(Found {
                path,
                kind: Some(FileType::RegularFile),
            }) => vec![need(&path, &path, AccessFs::Truncate)],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// An open with `flags` of the path at `ptr`.
fn open(l: &Lookup<'_>, dirfd: i32, ptr: u64, flags: i32) -> Vec<Need> {
    if flags & libc::O_PATH != 0 {
        return Vec::new(); // landlock checks nothing for O_PATH
    }
    let follow = flags & libc::O_NOFOLLOW == 0;
    let Some(found) = l.at(dirfd, ptr, follow, false) else {
        return Vec::new();
    };
    let mut rights = BitFlags::<AccessFs>::EMPTY;
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => rights |= AccessFs::ReadFile,
        libc::O_WRONLY => rights |= AccessFs::WriteFile,
        _ => rights |= AccessFs::ReadFile | AccessFs::WriteFile,
    }
    let path = &found.path;
    if flags & libc::O_TMPFILE == libc::O_TMPFILE {
        // An unnamed file in the directory named, opened there.
        return match found.kind {
            Some(FileType::Directory) => vec![need(path, path, rights)],
            _ => Vec::new(),
        };
    }
    match found.kind {
        None if flags & libc::O_CREAT != 0 => {
            let dir = parent(path);
            vec![need(path, &dir, rights | AccessFs::MakeReg)]
        }
        None | Some(FileType::Symlink) => Vec::new(), // ENOENT, ELOOP
        Some(_) if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 => Vec::new(),
        Some(FileType::Directory) if flags & libc::O_ACCMODE == libc::O_RDONLY => {
            vec![need(path, path, AccessFs::ReadDir)]
        }
        Some(FileType::Directory) => Vec::new(), // EISDIR
        Some(kind) => {
            if flags & libc::O_TRUNC != 0 && kind == FileType::RegularFile {
                rights |= AccessFs::Truncate;
            }
            vec![need(path, path, rights)]
        }
    }
}

fn exec(found: Option<Found>) -> Vec<Need> {
    match found {
        Some(Found {
            path,
            kind: Some(kind),
        }) if kind != FileType::Directory && kind != FileType::Symlink => {
            vec![need(&path, &path, AccessFs::ReadFile | AccessFs::Execute)]
        }
        _ => Vec::new(),
    }
}

/// The kind of node `mknod` makes with `mode` (0 is a regular file).
fn node(mode: u64) -> AccessFs {
    match FileType::from_raw_mode(mode as rustix::fs::RawMode) {
        FileType::Unknown => AccessFs::MakeReg,
        kind => make(kind),
    }
}

/// Making an entry: only when it does not exist yet (EEXIST).
fn create(found: Option<Found>, right: AccessFs) -> Vec<Need> {
    match found {
        Some(Found { path, kind: None }) => vec![need(&path, &parent(&path), right)],
        _ => Vec::new(),
    }
}

fn unlink(found: Option<Found>, dir: bool) -> Vec<Need> {
    match found {
        Some(Found {
            path,
            kind: Some(kind),
        }) if (kind == FileType::Directory) == dir => {
            vec![need(&path, &parent(&path), remove(kind))]
        }
        _ => Vec::new(),
    }
}

/// `RENAME_NOREPLACE` and `RENAME_EXCHANGE` (linux/fs.h).
const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;

fn rename(from: Option<Found>, to: Option<Found>, flags: u32) -> Vec<Need> {
    let (Some(from), Some(to)) = (from, to) else {
        return Vec::new();
    };
    let Some(kind) = from.kind else {
        return Vec::new();
    };
    let exchange = flags & RENAME_EXCHANGE != 0;
    if (to.kind.is_some() && flags & RENAME_NOREPLACE != 0) || (exchange && to.kind.is_none()) {
        return Vec::new();
    }
    let (from_dir, to_dir) = (parent(&from.path), parent(&to.path));
    let moved = (from_dir != to_dir).then(|| from_dir.clone());
    let mut out = vec![
        need(&from.path, &from_dir, remove(kind)),
        Need {
            from: moved,
            ..need(&to.path, &to_dir, make(kind))
        },
    ];
    if let Some(other) = to.kind {
        out.push(need(&to.path, &to_dir, remove(other)));
        if exchange {
            out.push(Need {
                from: (from_dir != to_dir).then(|| to_dir.clone()),
                ..need(&from.path, &from_dir, make(other))
            });
        }
    }
    out
}

fn link(from: Option<Found>, to: Option<Found>) -> Vec<Need> {
    match (from, to) {
        (
            Some(Found {
                path: from,
                kind: Some(kind),
            }),
            Some(Found {
                path: to,
                kind: None,
            }),
        ) if kind != FileType::Directory => {
            let (from_dir, to_dir) = (parent(&from), parent(&to));
            vec![Need {
                from: (from_dir != to_dir).then_some(from_dir),
                ..need(&to, &to_dir, make(kind))
            }]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::landlock::PortAccess;
    use std::collections::HashMap;
    use std::os::unix::fs::symlink;

    /// A container tree in a temporary directory:
    /// /etc/passwd /etc/shadow /bin/sh /usr/lib/x.so /lib → usr/lib /tmp/ /root/secret
    /// /srv/site/index.html /data/ (a directory only listed), /tmp/to-shadow → /etc/shadow,
    /// /tmp/up → ../../../../etc (climbing above the root stops there).
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in [
            "etc", "bin", "usr/lib", "tmp", "root", "srv/site", "data/sub",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "etc/passwd",
            "etc/shadow",
            "bin/sh",
            "usr/lib/x.so",
            "root/secret",
            "srv/site/index.html",
            "data/sub/f",
        ] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/etc/shadow", root.join("tmp/to-shadow")).unwrap();
        symlink("../../../../etc", root.join("tmp/up")).unwrap();
        symlink("loop", root.join("tmp/loop")).unwrap();
        dir
    }

    fn root_fd(dir: &tempfile::TempDir) -> OwnedFd {
        rustix::fs::open(
            dir.path(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    /// A learned-style policy: read+exec /bin /etc/passwd /lib, read-write /tmp, list /data.
    fn rules(root: BorrowedFd<'_>, abi: u32) -> Resolved {
        let policy = LandlockPolicy {
            read_exec: vec!["/bin".into(), "/etc/passwd".into(), "/lib".into()],
            read_write: vec!["/tmp".into()],
            list: vec!["/data".into(), "/nonexistent".into()],
            tcp_bind: PortAccess::Any,
            tcp_connect: PortAccess::Any,
            grant_root: false,
            ..LandlockPolicy::default()
        };
        FileRules::new(&FsAccess::default(), &policy, Some(abi))
            .unwrap()
            .resolve_in(root)
    }

    fn found(root: BorrowedFd<'_>, path: &str) -> Option<Found> {
        resolve(root, path.as_bytes(), Path::new("/srv"), true)
    }

    #[test]
    fn paths_resolve_inside_the_root_with_symlinks_followed_there() {
        let dir = tree();
        let fd = root_fd(&dir);
        let root = fd.as_fd();
        let path = |p: &str| found(root, p).map(|f| f.path);
        assert_eq!(path("/etc/passwd"), Some("/etc/passwd".into()));
        // Relative to the base, with `..` and `.` taken as the kernel takes them.
        assert_eq!(
            path("site/./index.html"),
            Some("/srv/site/index.html".into())
        );
        assert_eq!(path("../etc/shadow"), Some("/etc/shadow".into()));
        // An absolute symlink is the container's path, not the host's.
        assert_eq!(path("/tmp/to-shadow"), Some("/etc/shadow".into()));
        // `..` from a symlink's target, not lexically: /lib is /usr/lib, its `..` is /usr.
        assert_eq!(path("/lib/../lib/x.so"), Some("/usr/lib/x.so".into()));
        assert_eq!(path("/lib/.."), Some("/usr".into()));
        // Climbing above the root stops at it.
        assert_eq!(path("/tmp/up/passwd"), Some("/etc/passwd".into()));
        assert_eq!(path("/../../etc/passwd"), Some("/etc/passwd".into()));
        // A last symlink not followed is itself.
        let link = resolve(root, b"/tmp/to-shadow", Path::new("/"), false).unwrap();
        assert_eq!(
            (link.path.as_path(), link.kind),
            (Path::new("/tmp/to-shadow"), Some(FileType::Symlink))
        );
        // A missing last component: its directory's path; a missing directory: nothing.
        assert_eq!(
            found(root, "/tmp/new"),
            Some(Found {
                path: "/tmp/new".into(),
                kind: None
            })
        );
        assert_eq!(found(root, "/nope/new"), None);
        assert_eq!(found(root, "/etc/passwd/x"), None, "ENOTDIR");
        assert_eq!(found(root, "/tmp/loop"), None, "ELOOP");
        assert_eq!(
            found(root, "/").map(|f| (f.path, f.kind)),
            Some(("/".into(), Some(FileType::Directory)))
        );
    }

    #[test]
    fn a_rule_on_a_directory_covers_everything_below_it_and_a_file_rule_only_the_file() {
        let dir = tree();
        let fd = root_fd(&dir);
        let r = rules(fd.as_fd(), 7);
        let read: BitFlags<AccessFs> = AccessFs::ReadFile.into();
        assert!(r.granted(Path::new("/bin/sh")).contains(read));
        assert!(r.granted(Path::new("/bin/deep/below/x")).contains(read));
        assert!(r.granted(Path::new("/etc/passwd")).contains(read));
        assert!(!r.granted(Path::new("/etc/shadow")).contains(read));
        assert!(!r.granted(Path::new("/etc")).contains(AccessFs::ReadDir));
        // The /lib rule is on what landlock opened: /usr/lib.
        assert!(r.granted(Path::new("/usr/lib/x.so")).contains(read));
        assert!(!r.granted(Path::new("/usr")).contains(AccessFs::ReadDir));
        // A component-wise prefix, not a string one.
        assert!(r.granted(Path::new("/binary")).is_empty());
        assert!(r.granted(Path::new("/tmp")).contains(AccessFs::MakeDir));
    }

    fn opened(r: &Resolved, root: BorrowedFd<'_>, path: &str, flags: i32) -> Option<String> {
        let needs = open_in(root, path, flags);
        r.refused(&needs).map(|n| n.shown.display().to_string())
    }

    /// The needs of `openat(AT_FDCWD, path, flags)` by a caller in /srv.
    fn open_in(root: BorrowedFd<'_>, path: &str, flags: i32) -> Vec<Need> {
        let caller = Fake::with(&[path]);
        let call = Call {
            nr: libc::SYS_openat,
            args: [AT_FDCWD as u64, 0x1000, flags as u64, 0, 0, 0],
        };
        needs(call, &caller, root)
    }

    #[test]
    fn reading_needs_a_read_rule_listing_a_list_rule_and_writing_a_write_rule() {
        let dir = tree();
        let fd = root_fd(&dir);
        let root = fd.as_fd();
        let r = rules(root, 7);
        let rd = libc::O_RDONLY;
        assert_eq!(opened(&r, root, "/etc/passwd", rd), None);
        assert_eq!(
            opened(&r, root, "/etc/shadow", rd).as_deref(),
            Some("/etc/shadow")
        );
        // Through a symlink: named by its target.
        assert_eq!(
            opened(&r, root, "/tmp/to-shadow", rd).as_deref(),
            Some("/etc/shadow")
        );
        // A list-only rule lists, below it too, but reads nothing.
        let dirflags = rd | libc::O_DIRECTORY;
        assert_eq!(opened(&r, root, "/data", dirflags), None);
        assert_eq!(opened(&r, root, "/data/sub", dirflags), None);
        assert_eq!(
            opened(&r, root, "/data/sub/f", rd).as_deref(),
            Some("/data/sub/f")
        );
        // A read rule on a file does not list its directory; a directory never listed is
        // refused whatever the flags say.
        assert_eq!(opened(&r, root, "/etc", rd).as_deref(), Some("/etc"));
        assert_eq!(
            opened(&r, root, "/root", dirflags).as_deref(),
            Some("/root")
        );
        // Writing needs a write rule: /etc/passwd is read-only, /tmp is not.
        assert_eq!(
            opened(&r, root, "/etc/passwd", libc::O_WRONLY).as_deref(),
            Some("/etc/passwd")
        );
        let create = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
        assert_eq!(opened(&r, root, "/tmp/new", create), None);
        assert_eq!(
            opened(&r, root, "/etc/new", create).as_deref(),
            Some("/etc/new")
        );
        // Failing before landlock is asked: nothing to say.
        assert_eq!(open_in(root, "/etc/missing", rd), []);
        assert_eq!(open_in(root, "/etc/shadow", libc::O_PATH), []);
        assert_eq!(open_in(root, "/tmp/to-shadow", rd | libc::O_NOFOLLOW), []);
        // O_TRUNC needs TRUNCATE from ABI 3 on, not before.
        let need = &open_in(root, "/bin/sh", libc::O_WRONLY | libc::O_TRUNC)[0];
        assert!(need.rights.contains(AccessFs::Truncate));
        assert_eq!(need.at, Path::new("/bin/sh"));
    }

    #[test]
    fn executing_needs_execute_and_read_and_making_an_entry_needs_its_directory() {
        let dir = tree();
        let fd = root_fd(&dir);
        let root = fd.as_fd();
        let r = rules(root, 7);
        let caller = Fake::with(&["/bin/sh", "/root/secret", "/etc/x", "/tmp/x", "/etc/passwd"]);
        let run = |nr: i64, args: [u64; 6]| {
            let needs = needs(Call { nr, args }, &caller, root);
            r.refused(&needs).map(|n| n.shown.display().to_string())
        };
        assert_eq!(run(libc::SYS_execve, [0x1000, 0, 0, 0, 0, 0]), None);
        assert_eq!(
            run(libc::SYS_execve, [0x2000, 0, 0, 0, 0, 0]).as_deref(),
            Some("/root/secret")
        );
        // A list rule reads nothing: no exec below it either.
        let data = Fake::with(&["/data/sub/f"]);
        let exec = needs(
            Call {
                nr: libc::SYS_execve,
                args: [0x1000, 0, 0, 0, 0, 0],
            },
            &data,
            root,
        );
        assert!(r.refused(&exec).is_some());
        assert_eq!(
            run(libc::SYS_mkdir, [0x3000, 0o755, 0, 0, 0, 0]).as_deref(),
            Some("/etc/x")
        );
        assert_eq!(run(libc::SYS_mkdir, [0x4000, 0o755, 0, 0, 0, 0]), None);
        // mkdir of what exists fails with EEXIST before landlock: nothing.
        assert_eq!(run(libc::SYS_mkdir, [0x5000, 0o755, 0, 0, 0, 0]), None);
        let at = AT_FDCWD as u64;
        assert_eq!(
            run(libc::SYS_unlinkat, [at, 0x5000, 0, 0, 0, 0]).as_deref(),
            Some("/etc/passwd")
        );
        // A rename out of /tmp into /etc: refused at /etc (no MAKE_REG, no REFER).
        std::fs::write(dir.path().join("tmp/x"), "x").unwrap();
        assert_eq!(
            run(libc::SYS_renameat, [at, 0x4000, at, 0x3000, 0, 0]).as_deref(),
            Some("/etc/x")
        );
        assert_eq!(run(libc::SYS_truncate, [0x4000, 0, 0, 0, 0, 0]), None);
        assert_eq!(
            run(libc::SYS_truncate, [0x5000, 0, 0, 0, 0, 0]).as_deref(),
            Some("/etc/passwd")
        );
        // ABI 2 does not handle TRUNCATE: nothing to refuse there.
        let abi2 = rules(root, 2);
        let t = needs(
            Call {
                nr: libc::SYS_truncate,
                args: [0x5000, 0, 0, 0, 0, 0],
            },
            &caller,
            root,
        );
        assert_eq!(abi2.refused(&t), None);
    }

    #[test]
    fn a_policy_granting_the_whole_root_or_no_landlock_predicts_nothing() {
        let all = FsAccess {
            read_exec: Vec::new(),
            read_write: vec!["/".into()],
        };
        assert!(FileRules::new(&all, &LandlockPolicy::default(), Some(7)).is_none());
        let image = FsAccess {
            read_exec: vec!["/".into()],
            read_write: Vec::new(),
        };
        assert!(FileRules::new(&image, &LandlockPolicy::default(), Some(7)).is_some());
        assert!(FileRules::new(&image, &LandlockPolicy::default(), None).is_none());
    }

    /// Paths at 0x1000, 0x2000, …, working directory /srv.
    struct Fake {
        mem: HashMap<u64, Vec<u8>>,
    }

    impl Fake {
        fn with(paths: &[&str]) -> Fake {
            let mem = paths
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let mut bytes = p.as_bytes().to_vec();
                    bytes.push(0);
                    ((i as u64 + 1) * 0x1000, bytes)
                })
                .collect();
            Fake { mem }
        }
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
            Some(PathBuf::from("/srv"))
        }
        fn fd_path(&self, _fd: i32) -> Option<PathBuf> {
            None
        }
        fn exists(&self, _path: &Path) -> bool {
            false
        }
        fn signal_needs_kill(&self, _target: i32) -> Option<bool> {
            None
        }
    }
}
