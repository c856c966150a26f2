//! When each line of a container's log was written: a sidecar index beside the log
//! (`containers/<id>/log.idx`), for `rsafe logs -t/--since/--until`.
//!
//! The log itself stays the bytes the container wrote (so `rsafe logs` without these flags
//! prints exactly them, and `--tail` reads it backwards as before). Docker's json-file driver
//! instead wraps every line in JSON with its time; a sidecar keeps the log byte-exact and costs
//! 16 bytes per chunk read. The writer (the `-d` log relay, or rsafe itself in the foreground),
//! the only one while the container runs, records the first line start of each chunk it reads
//! (its offset in the log and the time it read it, Unix nanoseconds, both little-endian u64)
//! before it writes the chunk, so a reader never finds a line the index does not know yet. The
//! lines after it in the same chunk came at the same time: a line's time is that of the last
//! record at or before it. One record a line would make `yes`'s 100 MB of output an 800 MB
//! index; one a chunk (64 KiB at most) makes it 25 KB.
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

    /// Records the first line that `chunk`, about to be written at `offset` in the log at
    /// `now`, starts (the others in it share its time).
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
        } else if let Some(i) = chunk.iter().position(|b| *b == b'\n')
            && i + 1 < chunk.len()
        {
            push(offset + i as u64 + 1);
        }
        self.at_line_start = chunk.last() == Some(&b'\n');
    }

    /// Makes the next chunk start an entry of its own even if the log's last line has no
    /// newline yet (output from the other stream: stdout's `tail` then stderr's `err`).
    pub fn start_entry(&mut self) {
        self.at_line_start = true;
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

/// A log and its index, appended to by their one writer.
#[derive(Debug)]
pub struct Appender {
    log: std::fs::File,
    /// The log's size: where the next chunk goes.
    offset: u64,
    index: IndexWriter,
    /// Which stream the last chunk came from.
    stream: u8,
}

impl Appender {
    /// Appends to `log` (its index at `index`, or later through [`Appender::index_at`]); the
    /// first chunk starts an entry of its own.
    pub fn new(log: std::fs::File, index: Option<&Path>) -> io::Result<Appender> {
        let offset = log.metadata()?.len();
        let mut writer = IndexWriter::new(true);
        if let Some(path) = index {
            writer.attach(path)?;
        }
        Ok(Appender {
            log,
            offset,
            index: writer,
            stream: 0,
        })
    }

    /// Opens the index once its place is known (records wait until then).
    pub fn index_at(&mut self, path: &Path) -> io::Result<()> {
        self.index.attach(path)
    }

    /// Indexes `chunk` (read at `now` from `stream`: 0 stdout or a terminal, 1 stderr) and
    /// appends it to the log. A chunk from the other stream than the last starts an entry.
    pub fn append(&mut self, stream: u8, chunk: &[u8], now: SystemTime) -> io::Result<()> {
        if stream != self.stream {
            self.index.start_entry();
            self.stream = stream;
        }
        self.index.note(self.offset, chunk, now);
        // Best effort: without its index the log is still kept, only without times.
        let _ = self.index.flush();
        self.log.write_all(chunk)?;
        self.offset += chunk.len() as u64;
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
    fn records_one_line_start_a_chunk_across_chunks() {
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
        // `tw` shares `one`'s record; `three` starts the second chunk's first line.
        assert_eq!(index, vec![(0, at(10)), (8, at(11)), (14, at(13))]);
        assert_eq!(time_of(&index, 4), Some(at(10)));
        assert_eq!(time_of(&index, 9), Some(at(11)));
        assert_eq!(read_index(&dir.path().join("none")).unwrap(), vec![]);
    }

    #[test]
    fn the_other_stream_starts_an_entry_mid_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let file = std::fs::File::create(&log).unwrap();
        let mut a = Appender::new(file, Some(&dir.path().join("log.idx"))).unwrap();
        a.append(0, b"out\ntail", at(1)).unwrap();
        a.append(0, b" more", at(2)).unwrap();
        a.append(1, b"err\n", at(3)).unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"out\ntail moreerr\n");
        let index = read_index(&dir.path().join("log.idx")).unwrap();
        // `tail` shares `out`'s record, ` more` continues its line; `err` starts an entry
        // inside it.
        assert_eq!(index, vec![(0, at(1)), (13, at(3))]);
    }

    #[test]
    fn a_log_that_did_not_end_a_line_continues_it() {
        let mut w = IndexWriter::new(false);
        w.note(100, b"rest\nnext\nmore\n", at(1));
        assert_eq!(
            w.pending.len(),
            RECORD,
            "`next` starts a line, `more` shares its time"
        );
        assert_eq!(w.pending[..8], 105u64.to_le_bytes());
        assert_eq!(time_of(&[(5, at(1))], 4), None);
    }
}
