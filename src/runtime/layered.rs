//! A container's file tree read straight from its layer directories, as overlayfs would show
//! it, without mounting anything: what `rsafe diff` compares and `rsafe export` archives, for a
//! running container (whose mount lives in its own namespace) and a stopped one alike.
//!
//! A [`Stack`] is a list of layer directories, top first. A name in a directory is decided by
//! the topmost layer that has it: a whiteout there deletes it, a non-directory hides the layers
//! below, a directory merges with the directories of the layers below down to (and including)
//! the first opaque one. Whiteouts are 0/0 character devices (what overlayfs writes in an upper
//! layer) or empty regular files carrying `user.overlay.whiteout` (what rsafe's layer cache
//! writes, Linux 6.7's "xwhiteouts"); opaque directories carry `user.overlay.opaque` = `y`. The
//! `trusted.overlay.` spellings are honoured too: only the host's root can set them, and root
//! reads them.
//!
//! Nothing is ever followed: each directory is opened from its parent's descriptor with
//! `O_NOFOLLOW` beneath it, so a symlink the workload planted is read as a symlink.
//!
//! Owners are reported as the container sees them ([`Owners`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use super::idmap::IdMap;

/// What can go wrong reading the layers.
#[derive(Debug, thiserror::Error)]
pub enum LayeredError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{0}: nested too deep")]
    TooDeep(String),
}

type Result<T> = std::result::Result<T, LayeredError>;

fn io_err(path: &str) -> impl FnOnce(rustix::io::Errno) -> LayeredError + '_ {
    move |e| LayeredError::Io {
        path: path.to_string(),
        source: e.into(),
    }
}

/// Deeper than any real tree: a bound on the recursion, not a limit anyone meets.
pub const MAX_DEPTH: usize = 512;

/// How the ids on a layer's disk become the ids the container sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// Already the container's: read from inside its user namespace (rootless), or a layer
    /// root's container gets as an id-mapped mount (a root-owned rootfs directory).
    AsIs,
    /// Host ids of the container's range, mapped back through its [`IdMap`]; an id outside it
    /// is `nobody` (65534), as the kernel shows it.
    Host,
}

/// One layer directory.
#[derive(Debug)]
struct Layer {
    dir: OwnedFd,
    owners: Owners,
}

/// Layers, top first, and the map their host ids are read through.
#[derive(Debug)]
pub struct Stack {
    layers: Vec<Layer>,
    idmap: IdMap,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Fifo,
    /// A character or block device that is not a whiteout.
    Device,
    Socket,
    /// Deletes the name from the layers below.
    Whiteout,
}

/// A name in a merged directory, as its topmost layer has it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    /// Index in the stack of the layer it comes from.
    pub layer: usize,
    /// Permission bits (with set-uid, set-gid, sticky).
    pub mode: u32,
    /// As the container sees them.
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    /// The inode and its link count in its layer: names of one inode of one layer are hard
    /// links of each other.
    pub ino: u64,
    pub nlink: u64,
    /// Whether it is a directory marked opaque (the layers below it are hidden).
    pub opaque: bool,
}

/// A directory of the merged tree: its directory in each layer that contributes, top first.
#[derive(Debug)]
pub struct Dir {
    parts: Vec<(usize, OwnedFd)>,
}

impl Stack {
    /// Opens `layers` (directories, top first); `owners[i]` says how layer `i`'s ids read.
    pub fn open(layers: &[(PathBuf, Owners)], idmap: &IdMap) -> Result<Stack> {
        let open = |(path, owners): &(PathBuf, Owners)| {
            let shown = path.display().to_string();
            let dir = rustix::fs::open(
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_err(&shown))?;
            Ok(Layer {
                dir,
                owners: *owners,
            })
        };
        Ok(Stack {
            layers: layers.iter().map(open).collect::<Result<_>>()?,
            idmap: idmap.clone(),
        })
    }

    /// The merged root directory. (overlayfs ignores an opaque mark on a layer's root.)
    pub fn root(&self) -> Result<Dir> {
        let parts = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| Ok((i, reopen_dir(l.dir.as_fd(), ".", "/")?)))
            .collect::<Result<_>>()?;
        Ok(Dir { parts })
    }

    /// The names of `dir` as the merged tree has them, whiteouts included (they say a name of
    /// the layers below is gone), sorted by name.
    pub fn list(&self, dir: &Dir, path: &str) -> Result<BTreeMap<OsString, Entry>> {
        let mut out = BTreeMap::new();
        for (layer, fd) in &dir.parts {
            for name in read_names(fd, path)? {
                if out.contains_key(&name) {
                    continue;
                }
                if let Some(entry) = self.entry(*layer, fd.as_fd(), &name, path)? {
                    out.insert(name, entry);
                }
            }
        }
        Ok(out)
    }

    /// The merged directory `name` of `dir`, or `None` when the name is not a directory there.
    pub fn child(&self, dir: &Dir, name: &OsString, path: &str) -> Result<Option<Dir>> {
        let mut parts = Vec::new();
        for (layer, fd) in &dir.parts {
            let Some(entry) = self.entry(*layer, fd.as_fd(), name, path)? else {
                continue;
            };
            if entry.kind != Kind::Dir {
                break; // a whiteout or a file hides the layers below
            }
            // Replaced by a non-directory or removed since it was listed (a running
            // container): what is there now is read, or nothing.
            match reopen_dir(fd.as_fd(), name, path) {
                Ok(dir) => parts.push((*layer, dir)),
                Err(LayeredError::Io { source, .. })
                    if matches!(
                        source.raw_os_error(),
                        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            }
            if entry.opaque {
                break;
            }
        }
        Ok((!parts.is_empty()).then_some(Dir { parts }))
    }

    /// `name` in layer `layer`'s directory `dir`, if it is there.
    fn entry(
        &self,
        layer: usize,
        dir: BorrowedFd<'_>,
        name: &OsString,
        path: &str,
    ) -> Result<Option<Entry>> {
        let shown = join(path, name);
        let st = match rustix::fs::statat(dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(None), // gone meanwhile
            Err(e) => return Err(io_err(&shown)(e)),
        };
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Kind::Dir,
            FileType::RegularFile if st.st_size == 0 && self.xattr(dir, name, "whiteout") => {
                Kind::Whiteout
            }
            FileType::RegularFile => Kind::File,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Fifo,
            FileType::CharacterDevice if st.st_rdev == 0 => Kind::Whiteout,
            FileType::CharacterDevice | FileType::BlockDevice => Kind::Device,
            FileType::Socket | FileType::Unknown => Kind::Socket,
        };
        let opaque = kind == Kind::Dir && self.opaque(dir, name);
        let (uid, gid) = self.owner(layer, st.st_uid, st.st_gid);
        Ok(Some(Entry {
            kind,
            layer,
            mode: st.st_mode & 0o7777,
            uid,
            gid,
            mtime: st.st_mtime,
            size: st.st_size.max(0) as u64,
            ino: st.st_ino,
            nlink: st.st_nlink,
            opaque,
        }))
    }

    /// Ids on layer `layer`'s disk as the container sees them.
    fn owner(&self, layer: usize, uid: u32, gid: u32) -> (u32, u32) {
        const NOBODY: u32 = 65534;
        match self.layers[layer].owners {
            Owners::AsIs => (uid, gid),
            Owners::Host => (
                self.idmap.container_uid(uid).unwrap_or(NOBODY),
                self.idmap.container_gid(gid).unwrap_or(NOBODY),
            ),
        }
    }

    fn opaque(&self, dir: BorrowedFd<'_>, name: &OsString) -> bool {
        let mut value = [0u8; 4];
        ["user.overlay.opaque", "trusted.overlay.opaque"]
            .iter()
            .any(|x| read_xattr(dir, name, x, &mut value).is_some_and(|v| v == b"y"))
    }

    /// Whether `name` carries `{user,trusted}.overlay.<what>`.
    fn xattr(&self, dir: BorrowedFd<'_>, name: &OsString, what: &str) -> bool {
        let mut value = [0u8; 64];
        ["user", "trusted"]
            .iter()
            .any(|ns| read_xattr(dir, name, &format!("{ns}.overlay.{what}"), &mut value).is_some())
    }

    /// Opens regular file `name` of the merged directory `dir` for reading, from the layer
    /// `entry` came from, and checks it is still the file `entry` describes (a running
    /// container may have replaced it); with its size now.
    pub fn open_file(
        &self,
        dir: &Dir,
        name: &OsString,
        entry: &Entry,
        path: &str,
    ) -> Result<Option<(std::fs::File, u64)>> {
        let Some((_, fd)) = dir.parts.iter().find(|(l, _)| *l == entry.layer) else {
            return Ok(None);
        };
        let shown = join(path, name);
        let file = match super::sys::openat2(
            fd,
            &name.to_string_lossy(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(f) => f,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io_err(&shown)(e)),
        };
        let st = rustix::fs::fstat(&file).map_err(io_err(&shown))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Ok(None);
        }
        Ok(Some((std::fs::File::from(file), st.st_size.max(0) as u64)))
    }

    /// The target of symlink `name` in the layer `entry` came from.
    pub fn read_link(
        &self,
        dir: &Dir,
        name: &OsString,
        entry: &Entry,
        path: &str,
    ) -> Result<Option<OsString>> {
        let Some((_, fd)) = dir.parts.iter().find(|(l, _)| *l == entry.layer) else {
            return Ok(None);
        };
        match rustix::fs::readlinkat(fd, name.as_os_str(), Vec::new()) {
            Ok(target) => Ok(Some(OsString::from_vec(target.into_bytes()))),
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::INVAL) => Ok(None),
            Err(e) => Err(io_err(&join(path, name))(e)),
        }
    }
}

/// Where a container's layers are and how their owners read: what [`Source::read`] hands to
/// the work done on them.
#[derive(Debug, Clone)]
pub struct Source {
    /// The writable layer.
    pub upper: (PathBuf, Owners),
    /// The image's layers, top first.
    pub lowers: Vec<(PathBuf, Owners)>,
    pub idmap: IdMap,
}

impl Source {
    /// The layers of the container whose writable layer is `upper`, run on `lowers` (bottom
    /// first, as [`super::state::State::layers`] has them) with `idmap`.
    pub fn new(upper: PathBuf, lowers: &[PathBuf], idmap: &IdMap) -> Source {
        let rootless = !rustix::process::geteuid().is_root();
        let lower_owners = |p: &PathBuf| {
            use std::os::unix::fs::MetadataExt;
            // Root's container gets a layer owned by an id outside its range id-mapped (see
            // `process::layer_trees`): its ids on disk are the container's.
            let mapped =
                std::fs::symlink_metadata(p).is_ok_and(|m| idmap.container_uid(m.uid()).is_some());
            match rootless || !mapped {
                true => Owners::AsIs,
                false => Owners::Host,
            }
        };
        Source {
            upper: (upper, if rootless { Owners::AsIs } else { Owners::Host }),
            lowers: lowers
                .iter()
                .rev()
                .map(|p| (p.clone(), lower_owners(p)))
                .collect(),
            idmap: idmap.clone(),
        }
    }

    /// Runs `work` where the layers can be read whole and their ids read as the container's:
    /// here for root, as root of a user namespace mapped like the container for anyone else
    /// (whose writable layer holds files of the subordinate ids it cannot open itself). `work`'s
    /// `Err` is the whole message.
    pub fn read<T>(
        &self,
        work: impl FnOnce(&Source) -> std::result::Result<T, String>,
    ) -> std::result::Result<T, String>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        if rustix::process::geteuid().is_root() {
            return work(self);
        }
        super::helper::as_container_root(&self.idmap, || work(self)).map_err(|e| e.to_string())?
    }

    /// The writable layer alone.
    pub fn upper_stack(&self) -> Result<Stack> {
        Stack::open(std::slice::from_ref(&self.upper), &self.idmap)
    }

    /// The image's layers: the container's tree before it ran.
    pub fn lower_stack(&self) -> Result<Stack> {
        Stack::open(&self.lowers, &self.idmap)
    }

    /// The container's tree as it sees it: its writable layer over the image's.
    pub fn merged_stack(&self) -> Result<Stack> {
        let mut all = vec![self.upper.clone()];
        all.extend(self.lowers.iter().cloned());
        Stack::open(&all, &self.idmap)
    }
}

/// `/path/name`.
pub fn join(path: &str, name: &OsString) -> String {
    let name = name.to_string_lossy();
    match path {
        "" | "/" => format!("/{name}"),
        p => format!("{p}/{name}"),
    }
}

/// Directory `name` under `dir`, opened for reading without following a symlink.
fn reopen_dir(dir: BorrowedFd<'_>, name: impl AsRef<Path>, path: &str) -> Result<OwnedFd> {
    let name = name.as_ref().to_string_lossy().into_owned();
    super::sys::openat2(
        dir,
        &name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| io_err(path)(e))
}

/// The names in directory `dir` (`.` and `..` left out).
fn read_names(dir: &OwnedFd, path: &str) -> Result<Vec<OsString>> {
    let shown = if path.is_empty() { "/" } else { path };
    let iter = rustix::fs::Dir::read_from(dir).map_err(io_err(shown))?;
    let mut names = Vec::new();
    for entry in iter {
        let entry = entry.map_err(io_err(shown))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name.to_vec()));
        }
    }
    Ok(names)
}

/// Extended attribute `xattr` of `name` in `dir`, into `buf`; `None` when it has none (or it
/// cannot be read: a rootless reader never sees `trusted.*`). Read through an `O_PATH`
/// descriptor of the entry itself, never a path that could be swapped for a symlink.
fn read_xattr<'b>(
    dir: BorrowedFd<'_>,
    name: &OsString,
    xattr: &str,
    buf: &'b mut [u8],
) -> Option<&'b [u8]> {
    let fd = rustix::fs::openat(
        dir,
        name.as_os_str(),
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let via = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let n = rustix::fs::getxattr(via.as_str(), xattr, &mut *buf).ok()?;
    Some(&buf[..n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::idmap::{IdRange, MapWriter};

    fn idmap() -> IdMap {
        let r = IdRange {
            container: 0,
            host: 100_000,
            size: 65536,
        };
        IdMap {
            uids: vec![r],
            gids: vec![r],
            writer: MapWriter::Direct,
            setgroups: true,
        }
    }

    /// Whether this filesystem takes `user.*` xattrs (tmpfs before 6.6 does not).
    fn user_xattrs(dir: &Path) -> bool {
        let probe = dir.join(".probe");
        std::fs::write(&probe, "").unwrap();
        let ok = rustix::fs::setxattr(&probe, "user.probe", b"1", rustix::fs::XattrFlags::empty())
            .is_ok();
        std::fs::remove_file(&probe).unwrap();
        ok
    }

    fn set(path: &Path, name: &str, value: &[u8]) {
        rustix::fs::setxattr(path, name, value, rustix::fs::XattrFlags::empty()).unwrap();
    }

    fn names(stack: &Stack, dir: &Dir) -> Vec<(String, Kind)> {
        stack
            .list(dir, "/")
            .unwrap()
            .into_iter()
            .map(|(n, e)| (n.to_string_lossy().into_owned(), e.kind))
            .collect()
    }

    #[test]
    fn the_top_layer_decides_and_opaque_directories_hide_the_layers_below() {
        let tmp = tempfile::tempdir().unwrap();
        if !user_xattrs(tmp.path()) {
            panic!("{}: no user.* xattrs", tmp.path().display());
        }
        let (upper, lower) = (tmp.path().join("upper"), tmp.path().join("lower"));
        for d in ["d/sub", "gone", "opq"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
        }
        std::fs::write(lower.join("d/kept"), "k").unwrap();
        std::fs::write(lower.join("d/sub/x"), "x").unwrap();
        std::fs::write(lower.join("opq/old"), "o").unwrap();
        std::fs::write(lower.join("f"), "lower").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", lower.join("link")).unwrap();
        for d in ["d", "opq"] {
            std::fs::create_dir_all(upper.join(d)).unwrap();
        }
        std::fs::write(upper.join("f"), "upper!").unwrap();
        // An xwhiteout deletes `gone`, a 0/0 device can't be made unprivileged: xattr form.
        std::fs::write(upper.join("gone"), "").unwrap();
        set(&upper.join("gone"), "user.overlay.whiteout", b"");
        set(&upper.join("opq"), "user.overlay.opaque", b"y");
        std::fs::write(upper.join("opq/new"), "n").unwrap();
        // An opaque mark the overlay ignores elsewhere: "x" only says it holds xwhiteouts.
        set(&upper.join("d"), "user.overlay.opaque", b"x");
        let stack = Stack::open(&[(upper, Owners::AsIs), (lower, Owners::Host)], &idmap()).unwrap();
        let root = stack.root().unwrap();
        let top = names(&stack, &root);
        assert_eq!(
            top,
            [
                ("d".to_string(), Kind::Dir),
                ("f".into(), Kind::File),
                ("gone".into(), Kind::Whiteout),
                ("link".into(), Kind::Symlink),
                ("opq".into(), Kind::Dir),
            ]
        );
        let listed = stack.list(&root, "/").unwrap();
        assert_eq!(listed[&OsString::from("f")].layer, 0);
        assert_eq!(listed[&OsString::from("f")].size, 6);
        assert!(stack.child(&root, &"gone".into(), "/").unwrap().is_none());
        assert!(stack.child(&root, &"f".into(), "/").unwrap().is_none());
        let opq = stack.child(&root, &"opq".into(), "/").unwrap().unwrap();
        assert_eq!(names(&stack, &opq), [("new".to_string(), Kind::File)]);
        let d = stack.child(&root, &"d".into(), "/").unwrap().unwrap();
        assert_eq!(
            names(&stack, &d),
            [("kept".to_string(), Kind::File), ("sub".into(), Kind::Dir)]
        );
        let link = &listed[&OsString::from("link")];
        assert_eq!(
            stack.read_link(&root, &"link".into(), link, "/").unwrap(),
            Some("/etc/shadow".into())
        );
        // The lower layer's host ids are outside the map: nobody, as the kernel shows them.
        assert_eq!((link.uid, link.gid), (65534, 65534));
    }
}
