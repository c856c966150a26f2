//! When each line of a container's log was written: a sidecar index beside the log
//! (`containers/<id>/log.idx`), for `rsafe logs -t/--since/--until`.
//!
//! The log itself stays the bytes the container wrote (so `rsafe logs` without these flags
//! prints exactly them, and `--tail` reads it backwards as before). Docker's json-file driver
//! instead wraps every line in JSON with its time; a sidecar keeps the log byte-exact and costs
//! 16 bytes a line. The log relay, the only writer while the container runs, records each line
//! start (its offset in the log and the time the relay read it, Unix nanoseconds, both
//! little-endian u64) before it writes the line, so a reader never finds a line the index
//! does not know yet.
#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::state::ContainerDir;

/// One index record: 16 bytes.
const RECORD: usize = 16;

/// Where the index of `dir`'s log is.
pub fn index_file(dir: &ContainerDir) -> PathBuf {
    dir.path.join("log.idx")
}

/// The relay's side: turns chunks written to the log into line-start records.
#[derive(Debug)]
pub struct IndexWriter {
    /// The index, once its container's directory is known (a `run -d` container's is made
    /// after its relay starts); records wait in `pending` until then.
    file: Option<std::fs::File>,
    pending: Vec<u8>,
    /// Whether the next byte written to the log starts a line.
    at_line_start: bool,
}

impl IndexWriter {
    /// A writer whose first chunk starts an entry when `at_line_start` (a new run's output
    /// always does), or continues the log's last line.
    pub fn new(at_line_start: bool) -> IndexWriter {
        IndexWriter {
            file: None,
            pending: Vec::new(),
            at_line_start,
        }
    }

    /// Opens (appending, mode 0600, like the log) the index at `path` and writes what waited.
    pub fn attach(&mut self, path: &Path) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        self.file = Some(file);
        self.flush()
    }

    /// Whether [`IndexWriter::attach`] has been done.
    pub fn is_attached(&self) -> bool {
        self.file.is_some()
    }

    /// Records the lines that `chunk`, about to be written at `offset` in the log at `now`,
    /// starts.
    pub fn note(&mut self, offset: u64, chunk: &[u8], now: SystemTime) {
        let nanos = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let mut push = |at: u64| {
            self.pending.extend_from_slice(&at.to_le_bytes());
            self.pending.extend_from_slice(&nanos.to_le_bytes());
        };
        if chunk.is_empty() {
            return;
        }
        if self.at_line_start {
            push(offset);
        }
        for (i, b) in chunk.iter().enumerate() {
            if *b == b'\n' && i + 1 < chunk.len() {
                push(offset + i as u64 + 1);
            }
        }
        self.at_line_start = chunk.last() == Some(&b'\n');
    }

    /// Writes the pending records, if the index is open.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(file) = &mut self.file
            && !self.pending.is_empty()
        {
            file.write_all(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }
}

/// The entry starts of an index (lines, and each run's first output even when the last run
/// ended without a newline): (offset in the log, when it was written), in log order. A
/// missing index (a log written before rsafe kept one) is empty; a torn last record is
/// ignored.
pub fn read_index(path: &Path) -> io::Result<Vec<(u64, SystemTime)>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(bytes
        .chunks_exact(RECORD)
        .map(|r| {
            let word = |i: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&r[i..i + 8]);
                u64::from_le_bytes(w)
            };
            (word(0), UNIX_EPOCH + Duration::from_nanos(word(8)))
        })
        .collect())
}

/// When the line starting at `offset` was written: its record, or the last record before it
/// (a line the relay read in the same chunk as an earlier one); `None` before the first.
pub fn time_of(index: &[(u64, SystemTime)], offset: u64) -> Option<SystemTime> {
    let after = index.partition_point(|(o, _)| *o <= offset);
    after.checked_sub(1).map(|i| index[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn records_every_line_start_once_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.idx");
        let mut w = IndexWriter::new(true);
        w.note(0, b"one\ntw", at(10));
        // Waits until the index is known, then writes in order.
        w.attach(&path).unwrap();
        w.note(6, b"o\nthree\n", at(11));
        w.note(14, b"", at(12));
        w.note(14, b"four", at(13));
        w.flush().unwrap();
        let index = read_index(&path).unwrap();
        assert_eq!(
            index,
            vec![(0, at(10)), (4, at(10)), (8, at(11)), (14, at(13))]
        );
        assert_eq!(time_of(&index, 4), Some(at(10)));
        assert_eq!(time_of(&index, 9), Some(at(11)));
        assert_eq!(read_index(&dir.path().join("none")).unwrap(), vec![]);
    }

    #[test]
    fn a_log_that_did_not_end_a_line_continues_it() {
        let mut w = IndexWriter::new(false);
        w.note(100, b"rest\nnext\n", at(1));
        assert_eq!(w.pending.len(), RECORD, "only `next` starts a line");
        assert_eq!(time_of(&[(5, at(1))], 4), None);
    }
}
