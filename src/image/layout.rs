//! An OCI image layout directory the user points at (`rsafe load ./layout`), read without
//! trusting it.
//!
//! Every file is opened relative to the layout's own directory with `openat2(RESOLVE_BENEATH)`:
//! a symlink inside the layout may point elsewhere inside it, but never out (a hostile
//! `blobs/sha256/<hash of /etc/shadow> -> /etc/shadow` is refused by the kernel, not by string
//! checks). Only regular files are read, and they are opened non-blocking, so a FIFO planted as a
//! blob cannot hang the load. Content is checked against digests by the importer, not here.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::digest::Digest;

/// Why a layout directory could not be read; each variant names the layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not an OCI image layout (no oci-layout file)")]
    NotALayout { path: PathBuf },
    #[error("{path}: {file} is not a regular file")]
    NotAFile { path: PathBuf, file: String },
    #[error("{path}: {file} leads outside the layout (through a symlink or ..); refusing")]
    Escapes { path: PathBuf, file: String },
    #[error("{path}: {file} is {size} bytes, more than the {limit} allowed for it")]
    TooLarge {
        path: PathBuf,
        file: String,
        size: u64,
        limit: u64,
    },
}

/// An opened layout directory.
#[derive(Debug)]
pub struct LayoutDir {
    path: PathBuf,
    dir: OwnedFd,
}

impl LayoutDir {
    /// Opens the layout at `path`; it must contain an `oci-layout` file (its content is checked
    /// by the importer).
    pub fn open(path: &Path) -> Result<LayoutDir, LayoutError> {
        let dir = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| LayoutError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        let layout = LayoutDir {
            path: path.to_path_buf(),
            dir,
        };
        if layout.open_file("oci-layout")?.is_none() {
            return Err(LayoutError::NotALayout {
                path: path.to_path_buf(),
            });
        }
        Ok(layout)
    }

    /// The layout directory (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `name` (relative to the layout) for reading: `None` if it does not exist.
    pub fn open_file(&self, name: &str) -> Result<Option<(File, u64)>, LayoutError> {
        let opened = rustix::fs::openat2(
            &self.dir,
            name,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        );
        let fd = match opened {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::XDEV) => {
                return Err(LayoutError::Escapes {
                    path: self.path.clone(),
                    file: name.to_string(),
                });
            }
            Err(e) => {
                return Err(LayoutError::Io {
                    path: self.path.join(name),
                    source: e.into(),
                });
            }
        };
        let file = File::from(fd);
        let meta = file.metadata().map_err(|source| LayoutError::Io {
            path: self.path.join(name),
            source,
        })?;
        if !meta.is_file() {
            return Err(LayoutError::NotAFile {
                path: self.path.clone(),
                file: name.to_string(),
            });
        }
        Ok(Some((file, meta.len())))
    }

    /// Reads a small file whole (index.json, oci-layout, a manifest), refusing one over `limit`.
    pub fn read_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, LayoutError> {
        let Some((file, size)) = self.open_file(name)? else {
            return Ok(None);
        };
        if size > limit {
            return Err(LayoutError::TooLarge {
                path: self.path.clone(),
                file: name.to_string(),
                size,
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| LayoutError::Io {
                path: self.path.join(name),
                source,
            })?;
        Ok(Some(bytes))
    }
}

/// Where a blob lives inside any OCI layout (directory or archive).
pub fn blob_member(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn layout() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        dir
    }

    #[test]
    fn reads_files_and_links_inside() {
        let dir = layout();
        fs::write(dir.path().join("blobs/sha256/real"), b"data").unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("blobs/sha256/alias")).unwrap();
        let l = LayoutDir::open(dir.path()).unwrap();
        assert_eq!(
            l.read_file("blobs/sha256/alias", 10).unwrap().unwrap(),
            b"data"
        );
        assert!(l.read_file("blobs/sha256/none", 10).unwrap().is_none());
        assert!(matches!(
            l.read_file("blobs/sha256/real", 2),
            Err(LayoutError::TooLarge { .. })
        ));
    }

    #[test]
    fn refuses_escapes_fifos_and_non_layouts() {
        let dir = layout();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("blobs/sha256/out")).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("blobs/sha256/fifo"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        let l = LayoutDir::open(dir.path()).unwrap();
        assert!(matches!(
            l.open_file("blobs/sha256/out"),
            Err(LayoutError::Escapes { .. })
        ));
        assert!(matches!(
            l.open_file("../etc/passwd"),
            Err(LayoutError::Escapes { .. })
        ));
        assert!(matches!(
            l.open_file("blobs/sha256/fifo"),
            Err(LayoutError::NotAFile { .. })
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            LayoutDir::open(empty.path()),
            Err(LayoutError::NotALayout { .. })
        ));
    }
}
