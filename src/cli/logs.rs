//! `rsafe logs`: what a container started with `rsafe run -d` printed, like `docker logs`.
//!
//! The log is the bytes the container wrote, as they came (no per-line timestamps: docker's
//! json-file driver keeps one per line, rsafe's relay appends raw output), so `--tail` is
//! offered and `--since`/`--timestamps` are not.
#![forbid(unsafe_code)]

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Global;
use crate::runtime::state;

/// Show the output of a container run with -d
///
/// Its stdout and stderr, and what rsafe said about it (an OOM kill, say), in order. With -f,
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
            "container {} was not started with -d: its output went to the terminal that ran it",
            args.container
        ),
        Err(e) => return Err(e).with_context(|| path.display().to_string()),
    };
    if let Tail::Last(n) = args.tail {
        let start = tail_start(&mut log, n).with_context(|| path.display().to_string())?;
        log.seek(SeekFrom::Start(start))
            .with_context(|| path.display().to_string())?;
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
    fn tail_values() {
        assert_eq!(parse_tail("all"), Ok(Tail::All));
        assert_eq!(parse_tail("25"), Ok(Tail::Last(25)));
        assert!(parse_tail("-1").is_err());
        assert!(parse_tail("ten").is_err());
    }
}
