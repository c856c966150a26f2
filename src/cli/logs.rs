//! `rsafe logs`: what a container printed (run with `-d` or in the foreground), like
//! `docker logs`.
//!
//! The log is the bytes the container wrote, as they came, so plain `rsafe logs` prints
//! exactly them. When each line came is in a sidecar index the log relay keeps
//! ([`crate::runtime::logindex`]): `-t` prefixes each line with it, `--since`/`--until` select
//! by it. Lines of a log written before rsafe kept an index have no time: `-t` prints them
//! bare, `--since`/`--until` leave them out.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use super::Global;
use crate::runtime::clock::{self, rfc3339};
use crate::runtime::logindex::{self, index_file, read_index};
use crate::runtime::state;

/// Show the output of a container
///
/// Its stdout and stderr (with -d, and what rsafe said about it: an OOM kill, say), in order. With -f,
/// keeps printing what comes until the container ends.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Follow the output until the container ends.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines (`all`: every line), as `docker logs --tail`; with -f, then what
    /// comes.
    #[arg(short = 'n', long, value_name = "N", default_value = "all", value_parser = parse_tail)]
    pub tail: Tail,
    /// Only lines written at or after this time: RFC 3339 (`2026-01-02T15:04:05Z`), a Unix
    /// time, or a duration back from now (`10m`, `1h30m`), as `docker logs --since`.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<SystemTime>,
    /// Only lines written before this time (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<SystemTime>,
    /// Prefix each line with when it was written (RFC 3339, nanoseconds, UTC).
    #[arg(short, long)]
    pub timestamps: bool,
    /// The container's name or id (a unique prefix of an id is enough).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn run(args: LogsArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let (dir, _) = state::find(store.root(), &args.container)?;
    let path = dir.log_file();
    let mut log = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
            "container {} has no log: it last ran before rsafe kept the output of foreground runs",
            args.container
        ),
        Err(e) => return Err(e).with_context(|| path.display().to_string()),
    };
    if let Tail::Last(n) = args.tail {
        let start = tail_start(&mut log, n).with_context(|| path.display().to_string())?;
        log.seek(SeekFrom::Start(start))
            .with_context(|| path.display().to_string())?;
    }
    if args.timestamps || args.since.is_some() || args.until.is_some() {
        let index = index_file(&dir);
        return timed(&args, &mut log, &path, &index);
    }
    let mut out = io::stdout().lock();
    let mut copy = |log: &mut std::fs::File| -> Result<()> {
        let mut buf = Vec::new();
        log.read_to_end(&mut buf)
            .with_context(|| path.display().to_string())?;
        // A closed pipe (`rsafe logs x | head`) ends the command quietly.
        if out.write_all(&buf).and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
        Ok(())
    };
    copy(&mut log)?;
    if args.follow {
        // Until nothing can write to it any more: the container, its monitor and the relay
        // that writes the log hold a shared lock on it while they live.
        while being_written(&log) {
            std::thread::sleep(Duration::from_millis(100));
            copy(&mut log)?;
        }
        copy(&mut log)?;
    }
    Ok(0)
}

/// `--since`/`--until` values, relative to now.
fn parse_time(s: &str) -> Result<SystemTime, String> {
    clock::parse_instant(s, SystemTime::now()).map_err(|e| e.to_string())
}

/// Which lines, and how: the `-t`, `--since`, `--until` part of the arguments.
#[derive(Debug, Clone, Copy)]
struct LineFilter {
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    timestamps: bool,
}

impl LineFilter {
    /// Whether a line written at `time` (`None`: unknown) is shown.
    fn keeps(&self, time: Option<SystemTime>) -> bool {
        match time {
            Some(t) => self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u),
            None => self.since.is_none() && self.until.is_none(),
        }
    }
}

/// `logs` with line times: from where `--tail` starts, line by line, each looked up in the
/// index; with -f, then what comes (a line is printed once it is whole, or at the end).
fn timed(args: &LogsArgs, log: &mut std::fs::File, path: &Path, index: &Path) -> Result<i32> {
    let filter = LineFilter {
        since: args.since,
        until: args.until,
        timestamps: args.timestamps,
    };
    let what = || path.display().to_string();
    let mut offset = log.stream_position().with_context(what)?;
    let mut out = io::stdout().lock();
    loop {
        let ending = !args.follow || !being_written(log);
        let times = read_index(index).with_context(|| index.display().to_string())?;
        offset = print_lines(log, offset, &times, filter, ending, &mut out).with_context(what)?;
        if ending {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Prints the lines of `log` from `offset` on that `filter` keeps (the last one only if
/// `ending` or whole); returns where the next unprinted line starts.
fn print_lines(
    log: &mut std::fs::File,
    mut offset: u64,
    times: &[(u64, SystemTime)],
    filter: LineFilter,
    ending: bool,
    out: &mut impl Write,
) -> io::Result<u64> {
    log.seek(SeekFrom::Start(offset))?;
    let mut reader = io::BufReader::new(log);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || (!ending && line.last() != Some(&b'\n')) {
            return Ok(offset);
        }
        // An entry that starts inside the line (a run's first output after a last line without
        // its newline) is printed on its own, with its own time, as docker's json-file does.
        let starts = times
            .iter()
            .map(|(o, _)| *o)
            .filter(|o| *o > offset && *o < offset + n as u64);
        let mut cuts: Vec<usize> = starts.map(|o| (o - offset) as usize).collect();
        cuts.push(n);
        let mut from = 0;
        for cut in cuts {
            let time = logindex::time_of(times, offset + from as u64);
            if filter.keeps(time) {
                print_entry(
                    out,
                    filter.timestamps.then_some(time).flatten(),
                    &line[from..cut],
                );
            }
            from = cut;
        }
        offset += n as u64;
    }
}

/// Prints one entry, after its time when given. A closed pipe (`rsafe logs -t x | head`) ends
/// the command quietly.
fn print_entry(out: &mut impl Write, time: Option<SystemTime>, bytes: &[u8]) {
    let written = match time {
        Some(t) => write!(out, "{} ", rfc3339(t)).and_then(|()| out.write_all(bytes)),
        None => out.write_all(bytes),
    };
    if written.and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

fn being_written(log: &std::fs::File) -> bool {
    matches!(log.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// How much of the log `--tail` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    All,
    Last(u64),
}

/// `all` or a number of lines.
fn parse_tail(s: &str) -> Result<Tail, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(Tail::All);
    }
    s.parse()
        .map(Tail::Last)
        .map_err(|_| format!("{s:?} is not a number of lines (or `all`)"))
}

/// The offset where the last `n` lines of `log` start (a last line without its newline
/// counts), read backwards from the end in blocks: a long log is not read whole.
fn tail_start(log: &mut (impl Read + Seek), n: u64) -> io::Result<u64> {
    const BLOCK: u64 = 64 << 10;
    let end = log.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(end);
    }
    // The newline that ends the file ends its last line; it starts no line after it.
    let mut newlines_wanted = n + 1;
    let mut pos = end;
    let mut buf = vec![0; BLOCK as usize];
    let mut first_block = true;
    while pos > 0 {
        let len = BLOCK.min(pos);
        pos -= len;
        let chunk = &mut buf[..len as usize];
        log.seek(SeekFrom::Start(pos))?;
        log.read_exact(chunk)?;
        for (i, b) in chunk.iter().enumerate().rev() {
            if *b != b'\n' {
                continue;
            }
            if first_block && pos + i as u64 == end - 1 {
                continue;
            }
            newlines_wanted -= 1;
            if newlines_wanted == 1 {
                return Ok(pos + i as u64 + 1);
            }
        }
        first_block = false;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(text: &str, n: u64) -> String {
        let mut c = io::Cursor::new(text.as_bytes().to_vec());
        let start = tail_start(&mut c, n).unwrap() as usize;
        text[start..].to_string()
    }

    #[test]
    fn tail_counts_lines_from_the_end() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(
            tail("a\nb\nc", 2),
            "b\nc",
            "a last line without its newline counts"
        );
        assert_eq!(tail("a\nb\nc\n", 3), "a\nb\nc\n");
        assert_eq!(tail("a\nb\nc\n", 10), "a\nb\nc\n");
        assert_eq!(tail("a\nb\n", 0), "");
        assert_eq!(tail("", 5), "");
        assert_eq!(tail("\n\n\n", 2), "\n\n", "empty lines are lines");
    }

    #[test]
    fn tail_reads_across_blocks() {
        let line = format!("{}\n", "x".repeat(1000));
        let text: String = (0..200).map(|i| format!("{i} {line}")).collect();
        let got = tail(&text, 150);
        assert_eq!(got.lines().count(), 150);
        assert!(got.starts_with("50 x"), "{}", &got[..10]);
    }

    #[test]
    fn lines_are_selected_and_stamped_by_their_index_times() {
        use std::time::UNIX_EPOCH;
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "old\nmid\nnew\npart").unwrap();
        let times = [(4, at(20)), (8, at(30)), (12, at(30))];
        let run = |filter: LineFilter, ending: bool| {
            let mut log = std::fs::File::open(&path).unwrap();
            let mut out = Vec::new();
            let next = print_lines(&mut log, 0, &times, filter, ending, &mut out).unwrap();
            (String::from_utf8(out).unwrap(), next)
        };
        let run_on = |times: &[(u64, SystemTime)], filter| {
            let mut log = std::fs::File::open(&path).unwrap();
            let mut out = Vec::new();
            print_lines(&mut log, 0, times, filter, true, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let plain = LineFilter {
            since: None,
            until: None,
            timestamps: true,
        };
        assert_eq!(
            run(plain, true).0,
            "old\n1970-01-01T00:00:20.000000000Z mid\n\
             1970-01-01T00:00:30.000000000Z new\n1970-01-01T00:00:30.000000000Z part",
            "a line before the index has no time"
        );
        assert_eq!(
            run(plain, false).1,
            12,
            "a partial line waits while following"
        );
        let since = LineFilter {
            since: Some(at(25)),
            timestamps: false,
            ..plain
        };
        assert_eq!(run(since, true).0, "new\npart");
        let until = LineFilter {
            until: Some(at(30)),
            timestamps: false,
            ..plain
        };
        assert_eq!(
            run(until, true).0,
            "mid\n",
            "until is exclusive; unknown times are out"
        );
        // An entry starting inside a line (a second run's output after a last line without
        // its newline) is printed on its own, with its own time.
        let times = [(0, at(1)), (8, at(2)), (9, at(3))];
        assert_eq!(
            run_on(&times, plain),
            "1970-01-01T00:00:01.000000000Z old\n\
             1970-01-01T00:00:01.000000000Z mid\n\
             1970-01-01T00:00:02.000000000Z n\
             1970-01-01T00:00:03.000000000Z ew\n\
             1970-01-01T00:00:03.000000000Z part"
        );
    }

    #[test]
    fn tail_values() {
        assert_eq!(parse_tail("all"), Ok(Tail::All));
        assert_eq!(parse_tail("25"), Ok(Tail::Last(25)));
        assert!(parse_tail("-1").is_err());
        assert!(parse_tail("ten").is_err());
    }
}
