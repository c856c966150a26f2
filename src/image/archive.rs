//! An image archive (`docker save` tarball or OCI archive) as a read-only map of its members.
//!
//! The archive is never extracted. One pass over the tar headers (seeking past the data) records
//! where each member's bytes are; afterwards a member is read in place with positioned reads, so
//! a layer goes from the archive straight through [`Store::put_blob`](super::store::Store) and
//! the order of members in the file does not matter (`manifest.json` may come last).
//!
//! Member names are only ever keys in that map, never paths on disk: names that are absolute,
//! climb with `..`, are not UTF-8 or appear twice make the archive invalid. Symbolic and hard
//! links between members (skopeo's `<id>/layer.tar -> ../<hex>.tar`) are followed inside the map
//! only, and a link that leaves the archive is an error.
//!
//! A gzip- or zstd-compressed archive (`docker save | gzip`) or one read from a pipe cannot be
//! read in place; it is spooled once into an anonymous temporary file (in a directory the caller
//! picks, the store's `tmp/`), decompressed, bounded by [`MAX_DECOMPRESSED`].

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Most members an archive may have: image archives have a handful per image; millions of tiny
/// members are an attack on memory, not an image.
pub const MAX_MEMBERS: usize = 100_000;

/// Largest size a compressed archive may expand to before it is refused as a bomb.
pub const MAX_DECOMPRESSED: u64 = 64 << 30;

/// Links followed in a row before a chain is called a loop.
const MAX_LINK_HOPS: usize = 16;

/// Why an archive could not be read; each variant names the archive file.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a valid tar archive: {source}")]
    Tar { path: PathBuf, source: io::Error },
    #[error("{path}: not a tar archive (no tar header at the start)")]
    NotTar { path: PathBuf },
    #[error("{path}: member name {member:?} {why}; refusing the archive")]
    UnsafeName {
        path: PathBuf,
        member: String,
        why: &'static str,
    },
    #[error("{path}: member {member:?} appears twice; refusing the ambiguous archive")]
    Duplicate { path: PathBuf, member: String },
    #[error("{path}: truncated: member {member:?} ends past the end of the file")]
    Truncated { path: PathBuf, member: String },
    #[error("{path}: more than {limit} members; refusing")]
    TooManyMembers { path: PathBuf, limit: usize },
    #[error("{path}: decompresses to more than {limit} bytes; refusing (decompression bomb?)")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{path}: member {member:?} is a link to {target:?}, {why}")]
    BadLink {
        path: PathBuf,
        member: String,
        target: String,
        why: &'static str,
    },
    #[error("{path}: member {member:?} is not a regular file")]
    NotAFile { path: PathBuf, member: String },
    #[error("{path}: member {member:?} is {size} bytes, more than the {limit} allowed for it")]
    MemberTooLarge {
        path: PathBuf,
        member: String,
        size: u64,
        limit: u64,
    },
}

#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Symlink(String),
    Hardlink(String),
    Other,
}

/// A tar file indexed by member name. See the module docs for what is refused.
#[derive(Debug)]
pub struct TarArchive {
    path: PathBuf,
    file: File,
    members: HashMap<String, Member>,
}

/// How the start of a file says it is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outer {
    Tar,
    Gzip,
    Zstd,
}

impl TarArchive {
    /// Indexes the archive at `path`. A compressed archive is first decompressed into an
    /// anonymous file under `scratch` (removed when the archive is dropped).
    pub fn open(path: &Path, scratch: &Path) -> Result<TarArchive, ArchiveError> {
        let mut file = File::open(path).map_err(|source| ArchiveError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut magic = [0u8; 4];
        let n = file
            .read_at(&mut magic, 0)
            .map_err(|source| ArchiveError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let file = match sniff(&magic[..n]) {
            Outer::Tar => file,
            compressed => spool(&mut file, compressed, path, scratch)?,
        };
        TarArchive::index(path, file)
    }

    /// Reads an archive from a stream (`rsafe load -`): it is spooled, decompressed if need be,
    /// into an anonymous file under `scratch`, since members are read in any order. `name` is
    /// what errors call it.
    pub fn from_stream(
        mut stream: impl Read,
        name: &Path,
        scratch: &Path,
    ) -> Result<TarArchive, ArchiveError> {
        let mut magic = [0u8; 4];
        let mut n = 0;
        while n < magic.len() {
            match stream.read(&mut magic[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ArchiveError::Io {
                        path: name.to_path_buf(),
                        source,
                    });
                }
            }
        }
        let outer = sniff(&magic[..n]);
        let mut whole = io::Cursor::new(magic[..n].to_vec()).chain(stream);
        let file = spool(&mut whole, outer, name, scratch)?;
        TarArchive::index(name, file)
    }

    fn index(path: &Path, file: File) -> Result<TarArchive, ArchiveError> {
        let mut header = [0u8; 512];
        let n = file
            .read_at(&mut header, 0)
            .map_err(|source| ArchiveError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if n < header.len() || &header[257..262] != b"ustar" {
            return Err(ArchiveError::NotTar {
                path: path.to_path_buf(),
            });
        }
        let members = index_members(path, &file)?;
        Ok(TarArchive {
            path: path.to_path_buf(),
            file,
            members,
        })
    }

    /// The archive file (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a member of that name exists (of any type).
    pub fn contains(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// Opens member `name` for reading, following links inside the archive. `None` when there is
    /// no such member. Returns the reader and the member's size.
    pub fn open_member(&self, name: &str) -> Result<Option<(MemberReader<'_>, u64)>, ArchiveError> {
        let Some((offset, size)) = self.resolve(name)? else {
            return Ok(None);
        };
        Ok(Some((
            MemberReader {
                file: &self.file,
                pos: offset,
                end: offset + size,
            },
            size,
        )))
    }

    /// Reads a small member (a manifest or config) whole, refusing one larger than `limit`.
    pub fn read_member(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, ArchiveError> {
        let Some((mut reader, size)) = self.open_member(name)? else {
            return Ok(None);
        };
        if size > limit {
            return Err(ArchiveError::MemberTooLarge {
                path: self.path.clone(),
                member: name.to_string(),
                size,
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| ArchiveError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(Some(bytes))
    }

    /// Follows links from `name` to a regular member: its data offset and size.
    fn resolve(&self, name: &str) -> Result<Option<(u64, u64)>, ArchiveError> {
        let mut current = name.to_string();
        for _ in 0..MAX_LINK_HOPS {
            let Some(member) = self.members.get(&current) else {
                return Ok(None);
            };
            let bad_link = |target: &str, why| ArchiveError::BadLink {
                path: self.path.clone(),
                member: current.clone(),
                target: target.to_string(),
                why,
            };
            current = match member {
                Member::File { offset, size } => return Ok(Some((*offset, *size))),
                Member::Other => {
                    return Err(ArchiveError::NotAFile {
                        path: self.path.clone(),
                        member: current,
                    });
                }
                Member::Symlink(target) => {
                    let dir = current.rsplit_once('/').map_or("", |(d, _)| d);
                    resolve_link(dir, target).map_err(|why| bad_link(target, why))?
                }
                Member::Hardlink(target) => {
                    resolve_link("", target).map_err(|why| bad_link(target, why))?
                }
            };
        }
        Err(ArchiveError::BadLink {
            path: self.path.clone(),
            member: name.to_string(),
            target: current,
            why: "and links keep pointing to links (a loop?)",
        })
    }
}

/// A member's bytes, read in place with positioned reads (several may be open at once).
pub struct MemberReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive ended inside a member",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

fn sniff(magic: &[u8]) -> Outer {
    match magic {
        [0x1f, 0x8b, ..] => Outer::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Outer::Zstd,
        _ => Outer::Tar,
    }
}

/// Copies `input` (decompressing it as `outer` says) into an anonymous file under `scratch`,
/// refusing more than [`MAX_DECOMPRESSED`] bytes, and returns it rewound.
fn spool(
    input: &mut dyn Read,
    outer: Outer,
    path: &Path,
    scratch: &Path,
) -> Result<File, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut plain = tempfile::tempfile_in(scratch).map_err(|source| ArchiveError::Io {
        path: scratch.to_path_buf(),
        source,
    })?;
    let decoder: Box<dyn Read + '_> = match outer {
        Outer::Tar => Box::new(input),
        Outer::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(input))),
        Outer::Zstd => Box::new(zstd::stream::read::Decoder::new(input).map_err(io_err)?),
    };
    let copied = io::copy(&mut decoder.take(MAX_DECOMPRESSED + 1), &mut plain).map_err(io_err)?;
    if copied > MAX_DECOMPRESSED {
        return Err(ArchiveError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_DECOMPRESSED,
        });
    }
    plain.seek(SeekFrom::Start(0)).map_err(io_err)?;
    Ok(plain)
}

fn index_members(path: &Path, file: &File) -> Result<HashMap<String, Member>, ArchiveError> {
    let tar_err = |source| ArchiveError::Tar {
        path: path.to_path_buf(),
        source,
    };
    let len = file
        .metadata()
        .map_err(|source| ArchiveError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut archive = tar::Archive::new(file);
    let mut members = HashMap::new();
    for entry in archive.entries_with_seek().map_err(tar_err)? {
        let entry = entry.map_err(tar_err)?;
        let raw = entry.path_bytes();
        let name = normalize(&raw).map_err(|why| ArchiveError::UnsafeName {
            path: path.to_path_buf(),
            member: String::from_utf8_lossy(&raw).into_owned(),
            why,
        })?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || name.is_empty() {
            continue;
        }
        let link_target = || -> Result<String, ArchiveError> {
            let target = entry
                .link_name_bytes()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            String::from_utf8(target).map_err(|_| ArchiveError::UnsafeName {
                path: path.to_path_buf(),
                member: name.clone(),
                why: "has a link target that is not UTF-8",
            })
        };
        let member = if kind.is_file() || kind.is_contiguous() {
            let offset = entry.raw_file_position();
            let size = entry.size();
            if offset.checked_add(size).is_none_or(|end| end > len) {
                return Err(ArchiveError::Truncated {
                    path: path.to_path_buf(),
                    member: name,
                });
            }
            Member::File { offset, size }
        } else if kind.is_symlink() {
            Member::Symlink(link_target()?)
        } else if kind.is_hard_link() {
            Member::Hardlink(link_target()?)
        } else {
            Member::Other
        };
        if members.len() >= MAX_MEMBERS {
            return Err(ArchiveError::TooManyMembers {
                path: path.to_path_buf(),
                limit: MAX_MEMBERS,
            });
        }
        if members.insert(name.clone(), member).is_some() {
            return Err(ArchiveError::Duplicate {
                path: path.to_path_buf(),
                member: name,
            });
        }
    }
    Ok(members)
}

/// The canonical key for a member name: `./` and empty components dropped; absolute names and
/// `..` refused (an image archive has no reason to carry them).
fn normalize(raw: &[u8]) -> Result<String, &'static str> {
    let name = std::str::from_utf8(raw).map_err(|_| "is not UTF-8")?;
    if name.starts_with('/') {
        return Err("is absolute");
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("climbs out with \"..\""),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a link target against the directory holding the link (`""` for the archive root,
/// which is what hard link targets are relative to). `..` may climb inside the archive only.
fn resolve_link(dir: &str, target: &str) -> Result<String, &'static str> {
    if target.starts_with('/') {
        return Err("an absolute path outside the archive");
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts
                    .pop()
                    .ok_or("which climbs out of the archive with \"..\"")?;
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> tempfile::NamedTempFile {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let bytes = b.into_inner().unwrap();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&bytes).unwrap();
        f
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // Written raw so that hostile names reach the reader exactly as given.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        b.append_link(&mut h, name, target).unwrap();
    }

    fn open(f: &tempfile::NamedTempFile) -> Result<TarArchive, ArchiveError> {
        TarArchive::open(f.path(), &std::env::temp_dir())
    }

    fn read(a: &TarArchive, name: &str) -> Option<Vec<u8>> {
        a.read_member(name, 1 << 20).unwrap()
    }

    #[test]
    fn members_are_read_in_place_and_links_followed_inside() {
        let f = tar_with(|b| {
            file(b, "./blobs/abc.tar", b"layer bytes");
            link(
                b,
                tar::EntryType::Symlink,
                "id/layer.tar",
                "../blobs/abc.tar",
            );
            link(b, tar::EntryType::Link, "hard.tar", "blobs/abc.tar");
            file(b, "manifest.json", b"[]");
        });
        let a = open(&f).unwrap();
        assert_eq!(read(&a, "blobs/abc.tar").unwrap(), b"layer bytes");
        assert_eq!(read(&a, "id/layer.tar").unwrap(), b"layer bytes");
        assert_eq!(read(&a, "hard.tar").unwrap(), b"layer bytes");
        assert_eq!(read(&a, "manifest.json").unwrap(), b"[]");
        assert!(read(&a, "missing").is_none());
        assert!(matches!(
            a.read_member("blobs/abc.tar", 3),
            Err(ArchiveError::MemberTooLarge { .. })
        ));
    }

    #[test]
    fn compressed_archives_are_read_too() {
        let plain = tar_with(|b| file(b, "index.json", b"{}"));
        let bytes = std::fs::read(plain.path()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        for compressed in [
            gz.finish().unwrap(),
            zstd::encode_all(&bytes[..], 3).unwrap(),
        ] {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(&compressed).unwrap();
            assert_eq!(read(&open(&f).unwrap(), "index.json").unwrap(), b"{}");
        }
    }

    #[test]
    fn streams_are_spooled() {
        let plain = tar_with(|b| file(b, "manifest.json", b"[]"));
        let bytes = std::fs::read(plain.path()).unwrap();
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&bytes).unwrap();
            e.finish().unwrap()
        };
        for input in [bytes, gz] {
            let a =
                TarArchive::from_stream(&input[..], Path::new("-"), &std::env::temp_dir()).unwrap();
            assert_eq!(read(&a, "manifest.json").unwrap(), b"[]");
        }
        assert!(matches!(
            TarArchive::from_stream(&b"no"[..], Path::new("-"), &std::env::temp_dir()),
            Err(ArchiveError::NotTar { .. })
        ));
    }

    #[test]
    fn hostile_names_are_refused() {
        for name in ["../escape", "/etc/passwd", "a/../../b"] {
            let f = tar_with(|b| file(b, name, b"x"));
            let err = open(&f).unwrap_err();
            assert!(
                matches!(err, ArchiveError::UnsafeName { .. }),
                "{name}: {err}"
            );
        }
        let f = tar_with(|b| {
            file(b, "index.json", b"{}");
            file(b, "./index.json", b"{\"evil\":1}");
        });
        assert!(matches!(open(&f), Err(ArchiveError::Duplicate { .. })));
    }

    #[test]
    fn links_leaving_the_archive_or_looping_are_errors() {
        let f = tar_with(|b| {
            link(b, tar::EntryType::Symlink, "out", "../../etc/shadow");
            link(b, tar::EntryType::Symlink, "abs", "/etc/shadow");
            link(b, tar::EntryType::Symlink, "a", "b");
            link(b, tar::EntryType::Symlink, "b", "a");
        });
        let a = open(&f).unwrap();
        for name in ["out", "abs", "a"] {
            assert!(
                matches!(a.open_member(name), Err(ArchiveError::BadLink { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn truncated_and_non_tar_files_are_errors() {
        let f = tar_with(|b| file(b, "blob", &[7u8; 4096]));
        let bytes = std::fs::read(f.path()).unwrap();
        let mut cut = tempfile::NamedTempFile::new().unwrap();
        cut.write_all(&bytes[..2048]).unwrap();
        assert!(matches!(open(&cut), Err(ArchiveError::Truncated { .. })));
        let mut junk = tempfile::NamedTempFile::new().unwrap();
        junk.write_all(&[b'x'; 1024]).unwrap();
        assert!(matches!(open(&junk), Err(ArchiveError::NotTar { .. })));
    }

    #[test]
    fn link_resolution_is_lexical_and_bounded() {
        assert_eq!(resolve_link("a/b", "../c").unwrap(), "a/c");
        assert_eq!(resolve_link("", "./x//y").unwrap(), "x/y");
        assert!(resolve_link("a", "../../x").is_err());
        assert_eq!(normalize(b"./blobs//sha256/x").unwrap(), "blobs/sha256/x");
    }
}
