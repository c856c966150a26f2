//! `rsafe export`: a container's filesystem as one tar, as `docker export` writes it: the
//! image's layers with the container's writable layer over them, whiteouts applied, read from
//! the layer directories ([`super::layered`]) rather than the container's mount, so that what
//! is mounted over its tree (`/proc`, `/dev`, volumes, the host's files bound in) is never
//! in it, running or stopped.
//!
//! Owners are the container's (its root is 0 in the archive, whatever host id it is).
//! Symlinks are archived as symlinks, never followed; regular files are opened beneath their
//! directory without following anything and archived with the length they had when opened
//! (cut or padded with zeros if a running container changes them meanwhile). Device nodes are
//! left out (an image's layers have none; a container cannot make one), as are sockets;
//! fifos are kept. Names of one inode of one layer are archived as hard links to the first
//! (a file the container copied up is its own inode); extended attributes are not archived.

use std::ffi::OsString;
use std::io::{self, Read, Write};

use super::layered::{self, Dir, Entry, Kind, LayeredError, Stack};

fn write_err(path: &str) -> impl FnOnce(io::Error) -> LayeredError + '_ {
    move |source| LayeredError::Io {
        path: format!("{path}: write to the archive"),
        source,
    }
}

/// Writes the merged tree of `stack` (top layer first) to `out` as a tar, sorted by name within
/// each directory; returns how many entries it has.
pub fn write_tar(stack: &Stack, out: impl Write) -> Result<u64, LayeredError> {
    let mut tar = tar::Builder::new(out);
    let mut seen = Seen::default();
    add_dir(stack, &mut tar, &stack.root()?, "", 0, &mut seen)?;
    let mut out = tar.into_inner().map_err(write_err("/"))?;
    out.flush().map_err(write_err("/"))?;
    Ok(seen.count)
}

/// What has been archived: how many entries, and the first name of each multiply linked file
/// (by layer and inode).
#[derive(Default)]
struct Seen {
    count: u64,
    links: std::collections::HashMap<(usize, u64), String>,
}

impl Seen {
    /// The name `entry`'s inode was archived under, if it has several names and one was.
    fn first_name(&self, entry: &Entry) -> Option<String> {
        (entry.nlink > 1)
            .then(|| self.links.get(&(entry.layer, entry.ino)).cloned())
            .flatten()
    }

    /// `entry` was archived as `rel`.
    fn archived(&mut self, entry: &Entry, rel: &str) {
        self.count += 1;
        if entry.kind == Kind::File && entry.nlink > 1 {
            self.links
                .entry((entry.layer, entry.ino))
                .or_insert_with(|| rel.to_string());
        }
    }
}

fn add_dir<W: Write>(
    stack: &Stack,
    tar: &mut tar::Builder<W>,
    dir: &Dir,
    path: &str,
    depth: usize,
    seen: &mut Seen,
) -> Result<(), LayeredError> {
    if depth > layered::MAX_DEPTH {
        return Err(LayeredError::TooDeep(path.to_string()));
    }
    for (name, entry) in stack.list(dir, path)? {
        let child = layered::join(path, &name);
        // Names in the archive are relative, as docker's (`etc/passwd`).
        let rel = &child[1..];
        let mut h = header(&entry);
        let failed = write_err(&child);
        match entry.kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                tar.append_data(&mut h, format!("{rel}/"), io::empty())
                    .map_err(failed)?;
                seen.archived(&entry, rel);
                if let Some(sub) = stack.child(dir, &name, path)? {
                    add_dir(stack, tar, &sub, &child, depth + 1, seen)?;
                }
            }
            Kind::File if let Some(first) = seen.first_name(&entry) => {
                h.set_entry_type(tar::EntryType::Link);
                tar.append_link(&mut h, rel, &first).map_err(failed)?;
                seen.archived(&entry, rel);
            }
            Kind::File => {
                let Some((file, size)) = stack.open_file(dir, &name, &entry, path)? else {
                    continue; // gone or replaced while exporting
                };
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(size);
                tar.append_data(&mut h, rel, exactly(file, size))
                    .map_err(failed)?;
                seen.archived(&entry, rel);
            }
            Kind::Symlink => {
                let Some(target) = stack.read_link(dir, &name, &entry, path)? else {
                    continue;
                };
                h.set_entry_type(tar::EntryType::Symlink);
                tar.append_link(&mut h, rel, target_path(target))
                    .map_err(failed)?;
                seen.archived(&entry, rel);
            }
            Kind::Fifo => {
                h.set_entry_type(tar::EntryType::Fifo);
                tar.append_data(&mut h, rel, io::empty()).map_err(failed)?;
                seen.archived(&entry, rel);
            }
            Kind::Device | Kind::Socket | Kind::Whiteout => {}
        }
    }
    Ok(())
}

/// A header with `entry`'s mode, owner (the container's ids) and time, no user or group names.
fn header(entry: &Entry) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(entry.mode);
    h.set_uid(u64::from(entry.uid));
    h.set_gid(u64::from(entry.gid));
    h.set_mtime(entry.mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// `file`'s first `size` bytes, padded with zeros if it has fewer now: the header said `size`.
fn exactly(file: std::fs::File, size: u64) -> impl Read {
    file.take(size).chain(io::repeat(0)).take(size)
}

fn target_path(target: OsString) -> std::path::PathBuf {
    std::path::PathBuf::from(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::idmap::IdMap;
    use crate::runtime::layered::Owners;

    #[test]
    fn the_merged_tree_with_links_as_links_and_whiteouts_applied() {
        let tmp = tempfile::tempdir().unwrap();
        let (upper, lower) = (tmp.path().join("upper"), tmp.path().join("lower"));
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("old/deep")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "root").unwrap();
        std::fs::write(lower.join("etc/gone"), "x").unwrap();
        // Two names of one inode: the second is archived as a hard link to the first.
        std::fs::hard_link(lower.join("etc/passwd"), lower.join("etc/pw-link")).unwrap();
        std::fs::write(lower.join("etc/x1"), "same").unwrap();
        std::fs::hard_link(lower.join("etc/x1"), lower.join("etc/x2")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", lower.join("etc/link")).unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "root:changed").unwrap();
        for gone in ["etc/gone", "old"] {
            std::fs::write(upper.join(gone), "").unwrap();
            rustix::fs::setxattr(
                upper.join(gone),
                "user.overlay.whiteout",
                b"",
                rustix::fs::XattrFlags::empty(),
            )
            .unwrap();
        }
        nix::unistd::mkfifo(
            &upper.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let stack = Stack::open(
            &[(upper, Owners::AsIs), (lower, Owners::AsIs)],
            &IdMap::for_this_process(),
        )
        .unwrap();
        let mut bytes = Vec::new();
        assert_eq!(write_tar(&stack, &mut bytes).unwrap(), 7);
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            let link = entry.link_name().unwrap().map(|l| l.display().to_string());
            seen.push((name, entry.header().entry_type(), body, link));
        }
        use tar::EntryType::*;
        let want = [
            ("etc/", Directory, "", None),
            ("etc/link", Symlink, "", Some("/etc/shadow")),
            ("etc/passwd", Regular, "root:changed", None),
            // Its other name is the image's file, not the copy the container changed.
            ("etc/pw-link", Regular, "root", None),
            ("etc/x1", Regular, "same", None),
            ("etc/x2", Link, "", Some("etc/x1")),
            ("fifo", Fifo, "", None),
        ];
        let got: Vec<_> = seen
            .iter()
            .map(|(n, t, b, l)| (n.as_str(), *t, b.as_str(), l.as_deref()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_file_that_shrinks_while_archived_keeps_the_length_its_header_says() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, "abc").unwrap();
        let mut out = Vec::new();
        exactly(std::fs::File::open(&path).unwrap(), 5)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"abc\0\0");
    }
}
