//! A cache directory inside the store whose entries rsafe acts on only when this user alone
//! could have written them: the compiled seccomp filters (`runtime::seccomp::cache`) and the
//! audit gate's verdicts (`audit::gate`). A cached entry stands for confinement or for a
//! security verdict, so who wrote it matters.
//!
//! - The directory and the entry are owned by the user running rsafe and writable by nobody
//!   else (the rule OpenSSH applies to `~/.ssh`); both are opened without following symlinks
//!   and checked on the open descriptor.
//! - An entry past the size limit is not one of ours.
//! - Entries are written to a private temporary file and renamed into place, so a reader never
//!   sees half an entry; the oldest go when there are more than the limit.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};

/// One cache directory and its limits.
#[derive(Debug, Clone)]
pub struct StoreCache {
    dir: PathBuf,
    /// Entries larger than this are not read.
    max_entry: u64,
    /// Entries kept; the oldest go when a new one is written beyond this.
    max_entries: usize,
}

/// Why an entry was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unread {
    Absent,
    /// It, or its directory, could have been written by someone else (why, with the path).
    Untrusted(String),
    /// Unreadable or too large (why, with the path).
    Damaged(String),
}

/// A failed write: the path it was at, and why.
#[derive(Debug)]
pub struct WriteError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl StoreCache {
    /// The cache at `dir` (nothing is created until the first write).
    pub fn new(dir: PathBuf, max_entry: u64, max_entries: usize) -> StoreCache {
        StoreCache {
            dir,
            max_entry,
            max_entries,
        }
    }

    /// Where entries live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bytes of entry `name`, if it can be trusted.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, Unread> {
        let dir = match open_trusted_dir(&self.dir) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Unread::Absent),
            Err(e) => return Err(Unread::Untrusted(format!("{}: {e}", self.dir.display()))),
        };
        let path = self.dir.join(name);
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = match rustix::fs::openat(&dir, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Err(Unread::Absent),
            Err(e) => return Err(Unread::Untrusted(format!("{}: {e}", path.display()))),
        };
        let file = File::from(fd);
        let meta = file
            .metadata()
            .map_err(|e| Unread::Damaged(format!("{}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(Unread::Untrusted(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        if !trusted(meta.uid(), meta.mode()) {
            return Err(Unread::Untrusted(format!(
                "{} is owned by uid {} with mode {:o}: only the caller's own, unshared entries are read",
                path.display(),
                meta.uid(),
                meta.mode() & 0o7777
            )));
        }
        if meta.len() > self.max_entry {
            return Err(Unread::Damaged(format!(
                "{} is {} bytes",
                path.display(),
                meta.len()
            )));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(self.max_entry)
            .read_to_end(&mut bytes)
            .map_err(|e| Unread::Damaged(format!("{}: {e}", path.display())))?;
        Ok(bytes)
    }

    /// Writes entry `name`, replacing any older one; returns its path. Creates the directory
    /// (mode 0700) when the store has none, and prunes the oldest entries.
    pub fn write(&self, name: &str, body: &[u8]) -> Result<PathBuf, WriteError> {
        let fail = |path: &Path| {
            let path = path.to_path_buf();
            move |source: io::Error| WriteError { path, source }
        };
        match std::fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fail(&self.dir)(e)),
        }
        let dir = open_trusted_dir(&self.dir).map_err(fail(&self.dir))?;
        let tmp = format!(".tmp-{name}-{}", std::process::id());
        let fd = rustix::fs::openat(
            &dir,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| fail(&self.dir.join(&tmp))(e.into()))?;
        let written = File::from(fd).write_all(body);
        let renamed = written.and_then(|()| {
            rustix::fs::renameat(&dir, tmp.as_str(), &dir, name).map_err(Into::into)
        });
        if renamed.is_err() {
            let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
        }
        let path = self.dir.join(name);
        renamed.map_err(fail(&path))?;
        prune(&self.dir, self.max_entries);
        Ok(path)
    }
}

/// This very build of rsafe, as its executable's device, inode, size and times: part of every
/// cache key, so that a rebuilt rsafe (which may compile or check differently under the same
/// version number) never reads an older build's entries. One `stat`; None when the executable
/// cannot be identified (then nothing is cached).
pub fn this_build() -> Option<String> {
    let exe = std::fs::metadata("/proc/self/exe").ok()?;
    Some(format!(
        "{}:{}:{}:{}.{}:{}.{}",
        exe.dev(),
        exe.ino(),
        exe.size(),
        exe.mtime(),
        exe.mtime_nsec(),
        exe.ctime(),
        exe.ctime_nsec()
    ))
}

/// Owned by the user running rsafe, and writable by nobody else.
fn trusted(uid: u32, mode: u32) -> bool {
    uid == rustix::process::geteuid().as_raw() && mode & 0o022 == 0
}

fn open_trusted_dir(path: &Path) -> io::Result<OwnedFd> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let meta = rustix::fs::fstat(&fd)?;
    if !trusted(meta.st_uid, meta.st_mode) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "owned by uid {} with mode {:o}: not this user's alone",
                meta.st_uid,
                meta.st_mode & 0o7777
            ),
        ));
    }
    Ok(fd)
}

/// Keeps the `keep` most recently written entries.
fn prune(dir: &Path, keep: usize) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = read
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if entries.len() <= keep {
        return;
    }
    entries.sort();
    for (_, path) in &entries[..entries.len() - keep] {
        let _ = std::fs::remove_file(path);
    }
}
