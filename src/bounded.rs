//! Reading a file a user named, with a size limit.
//!
//! A policy, a seccomp profile, an ignore file or a manifest is small, but the path comes from
//! a command line, a compose file or a CI job: `/dev/zero`, a FIFO fed forever or a 40 GB log
//! named by mistake must fail with one line, not fill the machine's memory. `metadata().len()`
//! cannot tell (a device or a pipe says 0), so the read itself is bounded.
#![forbid(unsafe_code)]

use std::io::{self, Read};
use std::path::Path;

/// The most a configuration file may hold: policies, seccomp profiles, ignore files, rule
/// files, bundle and process documents are kilobytes; 16 MiB is far past any of them.
pub const CONFIG: u64 = 16 << 20;

/// The most a source file reviewed whole may hold (Dockerfiles, compose files, manifest
/// streams): `helm template` of a large chart is a few MiB.
pub const SOURCE: u64 = 64 << 20;

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("more than {limit} bytes, far more than such a file holds (is it the right file?)")]
    TooLarge { limit: u64 },
}

impl From<ReadError> for io::Error {
    /// For error types that carry an `io::Error`: the limit becomes an `InvalidData` error
    /// whose message says it.
    fn from(e: ReadError) -> io::Error {
        match e {
            ReadError::Io(e) => e,
            too_large => io::Error::new(io::ErrorKind::InvalidData, too_large.to_string()),
        }
    }
}

/// The bytes of `path`, at most `limit` of them (more is an error, found by reading one byte
/// past the limit). A pipe is read to its end.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// [`read_file`] for text: invalid UTF-8 is an `InvalidData` error, as `fs::read_to_string`'s.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_file(path, limit)?).map_err(|_| {
        ReadError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_large_files_stop_at_the_limit() {
        assert!(matches!(
            read_file(Path::new("/dev/zero"), 1 << 20),
            Err(ReadError::TooLarge { limit }) if limit == 1 << 20
        ));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_file(&f, 5).unwrap(), b"12345");
        assert!(matches!(read_file(&f, 4), Err(ReadError::TooLarge { .. })));
        let e = io::Error::from(read_file(&f, 4).unwrap_err());
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            e.to_string(),
            "more than 4 bytes, far more than such a file holds (is it the right file?)"
        );
        std::fs::write(&f, b"\xff").unwrap();
        assert_eq!(
            io::Error::from(read_text(&f, 4).unwrap_err()).kind(),
            io::ErrorKind::InvalidData
        );
        assert_eq!(
            io::Error::from(read_file(&dir.path().join("nope"), 4).unwrap_err()).kind(),
            io::ErrorKind::NotFound
        );
    }
}
