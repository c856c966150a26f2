//! `rsafe run -d`: a container that outlives the command that started it, with no daemon.
//!
//! rsafe forks. The child becomes the container's monitor, as `rsafe run` is for an attached
//! container (it holds the container's lock, forwards signals, records the exit, removes the
//! container with `--rm`): it leaves the caller's session, reads stdin from `/dev/null`, and
//! writes its stdout and stderr, which the container inherits, to the container's log
//! (`containers/<id>/log`, for `rsafe logs`). The parent waits on a pipe until the workload
//! runs (its `execve` succeeded) or could not start, and returns either the container's id or
//! the reason, so `rsafe run -d` fails like `rsafe run` would.
//!
//! The container never holds its log file: its stdout and stderr (and the monitor's) are a
//! pipe to a relay process that appends to the log, as conmon does for podman. A workload
//! holding the file could rewrite or truncate it, rsafe's own lines about it included. The log
//! stays locked (a shared `flock`) while anything can still write to it, which is what
//! `rsafe logs -f` follows. The relay also records when each line came in the log's index
//! ([`super::logindex`]), for `rsafe logs -t/--since/--until`; a `run -d` container's
//! directory (where the index goes) is made after the relay starts, so the monitor tells the
//! relay the container's id once it runs.

use std::io::{self, BufRead, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::unistd::ForkResult;

use super::logindex::{self, IndexWriter};
use super::process::{self, Exit, Note, RunError, RunRequest};
use super::state;
use super::sys;

/// How a detached start went, as the command that asked for it learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detached {
    /// The workload runs; the container's full id.
    Started(String),
    /// It could not start: the exit code `rsafe run` would have given (125, 126, 127) and why.
    Failed { code: i32, message: String },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> RunError {
    move |source| RunError::Io {
        what: what.to_string(),
        source,
    }
}

/// `rsafe run -d`: runs `req` detached (see the module documentation). `notify` and `ended`
/// are the monitor's: what it says goes to the container's log, and `ended` reports how the
/// container ended there (an OOM kill, say) and gives the monitor's exit code.
pub fn run_detached(
    mut req: RunRequest,
    notify: impl FnMut(Note),
    ended: impl FnOnce(Result<Exit, RunError>) -> i32,
) -> Result<Detached, RunError> {
    let log = state::new_log(&req.store_root)?;
    req.log = Some(log.try_clone().map_err(io_err("the container's log"))?);
    let index = IndexAt::AfterStart(state::containers_dir(&req.store_root));
    detach(
        log,
        index,
        |notify| process::run(req, notify),
        notify,
        ended,
    )
}

/// Where the relay keeps the log's line index.
#[derive(Debug)]
enum IndexAt {
    /// This file (the container's directory exists).
    File(PathBuf),
    /// In the directory, under this containers directory, of the container whose id the
    /// monitor sends once the workload runs.
    AfterStart(PathBuf),
}

/// `rsafe start -d`: starts the stopped container `name_or_id` detached, its output appended
/// to its log (made now if its earlier runs were attached).
pub fn start_detached(
    store_root: &Path,
    name_or_id: &str,
    notify: impl FnMut(Note),
    ended: impl FnOnce(Result<Exit, RunError>) -> i32,
) -> Result<Detached, RunError> {
    let (dir, _) = state::find(store_root, name_or_id)?;
    let path = dir.log_file();
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| RunError::Io {
            what: path.display().to_string(),
            source,
        })?;
    detach(
        log,
        IndexAt::File(logindex::index_file(&dir)),
        |notify| process::start(store_root, name_or_id, false, notify),
        notify,
        ended,
    )
}

/// Forks the monitor, which runs `run` (the container, to its end) with its output going to
/// `log`; returns once the workload runs or could not start.
fn detach(
    log: std::fs::File,
    index: IndexAt,
    run: impl FnOnce(&mut dyn FnMut(Note)) -> Result<Exit, RunError>,
    mut notify: impl FnMut(Note),
    ended: impl FnOnce(Result<Exit, RunError>) -> i32,
) -> Result<Detached, RunError> {
    // Held by every copy of this open file (the monitor's, the relay's) until the last closes.
    log.lock_shared()
        .map_err(io_err("lock the container's log"))?;
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| io_err("pipe")(e.into()))?;
    if sys::thread_count().map_err(io_err("count threads"))? != 1 {
        return Err(RunError::Invalid(
            "rsafe has several threads before detaching; this is a bug".to_string(),
        ));
    }
    // SAFETY: rsafe is single-threaded here (image preparation ran in a helper process), so
    // the child may run arbitrary code.
    match unsafe { nix::unistd::fork() }.map_err(|e| io_err("fork the monitor")(e.into()))? {
        ForkResult::Parent { child } => {
            drop(write);
            let outcome = read_outcome(read);
            if outcome.is_none() {
                // The monitor died before it could say: reap it, it will not report.
                let _ = nix::sys::wait::waitpid(child, None);
            }
            Ok(outcome.unwrap_or_else(|| Detached::Failed {
                code: 125,
                message: "the container's monitor ended before the container started".into(),
            }))
        }
        ForkResult::Child => {
            drop(read);
            let code = monitor(run, log, index, write, &mut notify, ended);
            std::process::exit(code)
        }
    }
}

/// The monitor: detaches from the caller, runs the container to its end, and tells the
/// waiting parent (through `report`) when the workload started, or why it did not.
fn monitor(
    run: impl FnOnce(&mut dyn FnMut(Note)) -> Result<Exit, RunError>,
    log: std::fs::File,
    index: IndexAt,
    report: OwnedFd,
    notify: &mut dyn FnMut(Note),
    ended: impl FnOnce(Result<Exit, RunError>) -> i32,
) -> i32 {
    let mut report = Some(std::fs::File::from(report));
    let detached = (|| -> io::Result<(nix::unistd::Pid, Option<std::fs::File>)> {
        nix::unistd::setsid()?;
        let null = std::fs::File::open("/dev/null")?;
        nix::unistd::dup2_stdin(&null)?;
        let (relay, output, id_to_relay) = spawn_relay(&log, index, report.as_ref())?;
        nix::unistd::dup2_stdout(&output)?;
        nix::unistd::dup2_stderr(&output)?;
        Ok((relay, id_to_relay))
    })();
    let (relay, mut id_to_relay) = match detached {
        Ok(relay) => relay,
        Err(e) => {
            if let Some(mut r) = report.take() {
                let _ = writeln!(r, "failed 125 detach from the terminal: {e}");
            }
            return 125;
        }
    };
    let result = run(&mut |note| {
        if let Note::Started { id } = &note {
            if let Some(mut to_relay) = id_to_relay.take() {
                let _ = writeln!(to_relay, "{id}");
            }
            if let Some(mut r) = report.take() {
                // The parent returns on this line; the pipe closes with it.
                let _ = writeln!(r, "started {id}");
            }
        }
        notify(note);
    });
    if let (Some(mut r), Err(e)) = (report.take(), &result) {
        let message = e.to_string().replace('\n', " ");
        let _ = writeln!(r, "failed {} {message}", e.exit_code());
    }
    say_if_relay_killed(relay, &log);
    drop(log);
    ended(result)
}

/// A relay killed while the container ran (it holds the only reading end of the container's
/// output pipe) leaves the container's next write to end it with SIGPIPE, and the log would
/// stop without a word: the monitor says so in the log itself (written through its own copy of
/// the log's open file, at its end).
fn say_if_relay_killed(relay: nix::unistd::Pid, mut log: &std::fs::File) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    if let Ok(WaitStatus::Signaled(_, signal, _)) = waitpid(relay, Some(WaitPidFlag::WNOHANG)) {
        let _ = writeln!(
            log,
            "rsafe: the log relay (pid {relay}) was killed by {signal}: output the container wrote after that is lost, and a write to its closed output ends the workload with SIGPIPE"
        );
    }
}

/// Forks the relay that appends what comes through a pipe to `log` and keeps its line index;
/// returns its pid, the pipe's write end and, for an index placed after the start, the pipe
/// that tells the relay the container's id. The relay ends when every writer has (the
/// container, and the monitor).
fn spawn_relay(
    log: &std::fs::File,
    index: IndexAt,
    report: Option<&std::fs::File>,
) -> io::Result<(nix::unistd::Pid, OwnedFd, Option<std::fs::File>)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (id_read, id_write) = match index {
        IndexAt::AfterStart(_) => {
            let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
            (Some(r), Some(std::fs::File::from(w)))
        }
        IndexAt::File(_) => (None, None),
    };
    // SAFETY: the monitor is single-threaded (a fresh fork of a single-threaded rsafe), so the
    // child may run arbitrary code.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok((child, write, id_write)),
        ForkResult::Child => {
            drop(write);
            drop(id_write);
            // Not a writer of the line `rsafe run -d` waits for: it must see the monitor's end.
            if let Some(r) = report {
                let _ = nix::unistd::close(r.as_raw_fd());
            }
            // Nor of the caller's output: `$(rsafe run -d …)` must end with `rsafe run`.
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                let _ = nix::unistd::dup2_stdout(&null);
                let _ = nix::unistd::dup2_stderr(&null);
            }
            let learn = id_read.map(|r| IdPipe {
                pipe: std::fs::File::from(r),
                got: Vec::new(),
            });
            let code = match relay(std::fs::File::from(read), log, index, learn) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            std::process::exit(code)
        }
    }
}

/// The relay's loop: each chunk read from the container's output is indexed (its line starts,
/// with the time it came) and then appended to the log. The relay is the log's only writer
/// while it lives, so the log's size is where the chunk goes.
fn relay(
    mut from: std::fs::File,
    mut log: &std::fs::File,
    index: IndexAt,
    mut learn: Option<IdPipe>,
) -> io::Result<()> {
    // Each run's output starts an entry, even after a last line without its newline (as
    // docker's json-file starts a new entry): `logs -t` gives it its own time.
    let mut writer = IndexWriter::new(true);
    if let IndexAt::File(path) = &index {
        // Best effort: without an index the log is still kept, only without times.
        let _ = writer.attach(path);
    }
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let (IndexAt::AfterStart(containers), Some(pipe)) = (&index, &mut learn)
            && !writer.is_attached()
            && let Some(id) = pipe.id(false)
        {
            let _ = writer.attach(&containers.join(id).join("log.idx"));
        }
        let offset = log.metadata()?.len();
        writer.note(offset, &buf[..n], std::time::SystemTime::now());
        let _ = writer.flush();
        log.write_all(&buf[..n])?;
    }
    if let (IndexAt::AfterStart(containers), Some(pipe)) = (&index, &mut learn)
        && !writer.is_attached()
        && let Some(id) = pipe.id(true)
    {
        let _ = writer.attach(&containers.join(id).join("log.idx"));
    }
    Ok(())
}

/// The pipe on which the monitor sends the container's id to the relay.
struct IdPipe {
    pipe: std::fs::File,
    got: Vec<u8>,
}

impl IdPipe {
    /// The id, once its line has come (a container id: 64 hex digits). `wait`: block until
    /// it comes or the monitor is gone.
    fn id(&mut self, wait: bool) -> Option<String> {
        if wait {
            let _ = nix::fcntl::fcntl(&self.pipe, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()));
        }
        let mut chunk = [0u8; 128];
        while !self.got.contains(&b'\n') {
            match self.pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let line = self.got.split(|b| *b == b'\n').next()?;
        let id = std::str::from_utf8(line).ok()?;
        (self.got.contains(&b'\n') && id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| id.to_string())
    }
}

/// The monitor's one line: `started <id>` or `failed <code> <message>`. `None` if it wrote
/// neither.
fn read_outcome(read: OwnedFd) -> Option<Detached> {
    let mut line = String::new();
    io::BufReader::new(std::fs::File::from(read))
        .read_line(&mut line)
        .ok()?;
    parse_outcome(line.trim_end())
}

fn parse_outcome(line: &str) -> Option<Detached> {
    if let Some(id) = line.strip_prefix("started ") {
        return Some(Detached::Started(id.to_string()));
    }
    let (code, message) = line.strip_prefix("failed ")?.split_once(' ')?;
    Some(Detached::Failed {
        code: code.parse().ok()?,
        message: message.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_parse() {
        assert_eq!(
            parse_outcome("started abc"),
            Some(Detached::Started("abc".into()))
        );
        assert_eq!(
            parse_outcome("failed 127 x: not found"),
            Some(Detached::Failed {
                code: 127,
                message: "x: not found".into()
            })
        );
        assert_eq!(parse_outcome(""), None);
        assert_eq!(parse_outcome("failed nope"), None);
    }
}
