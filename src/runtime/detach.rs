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
//!
//! The relay is also the server of `rsafe attach` ([`super::attach`]): the monitor makes the
//! attach socket in the container's directory before `run -d` returns, and hands the relay
//! the container's terminal (`-t`), which the relay then reads instead of the monitor; with
//! `-i` and no terminal the container's stdin is a pipe whose write end the relay keeps. So
//! the output goes to the log whether or not anyone is attached, as docker's does.

use std::io::{self, BufRead, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::ForkResult;

use super::attach::{self, Control, Hub};
use super::logindex::{self, IndexWriter};
use super::process::{self, Exit, Note, Output, RunError, RunRequest};
use super::spec::RestartPolicy;
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
    let containers = state::containers_dir(&req.store_root);
    let io = Stdio {
        tty: req.spec.process.terminal,
        stdin: req.spec.process.stdin,
        containers: containers.clone(),
    };
    detach(
        log,
        IndexAt::AfterStart(containers),
        io,
        |notify, terminal_to| {
            req.output = terminal_to.map_or(Output::Inherited, Output::RelayTerminal);
            let store_root = req.store_root.clone();
            let policy = req.spec.options.restart;
            under_policy(&store_root, policy, notify, |notify| {
                process::run(req, notify)
            })
        },
        notify,
        ended,
    )
}

/// Runs `first` (the container's run or start) and then, if it started, starts it again for
/// as long as its restart policy says ([`restarts`]): `policy` at first, then what its spec
/// says at each end (`rsafe update --restart` changes it meanwhile).
fn under_policy(
    store_root: &Path,
    policy: Option<RestartPolicy>,
    notify: &mut dyn FnMut(Note),
    first: impl FnOnce(&mut dyn FnMut(Note)) -> Result<Exit, RunError>,
) -> Result<Exit, RunError> {
    let mut id = None;
    let result = first(&mut |note| {
        if let Note::Started { id: started } = &note {
            // The count's file gets its block while the store has room (the start had).
            if policy.is_some()
                && let Ok((dir, _)) = state::find(store_root, started)
                && !dir.path.join(RESTART_COUNT).exists()
            {
                let _ = write_restart_count(&dir, 0);
            }
            id = Some(started.clone());
        }
        notify(note)
    });
    match id {
        Some(id) => restarts(store_root, &id, policy, result, notify),
        None => result,
    }
}

/// The file in a container's directory that `rsafe stop` makes: its monitor starts it no
/// more, and it stays there until the next `rsafe start`, saying the user stopped it (docker's
/// "manually stopped", which `unless-stopped` and [`starts_at_boot`] look at).
const STOP_REQUESTED: &str = "stop-requested";
/// How many times the monitor has started the container again (`inspect`'s RestartCount).
const RESTART_COUNT: &str = "restart-count";

/// Tells the container's monitor not to start it again (`rsafe stop` and `rm -f`, before
/// their signal); whether it has such a monitor. Only a container run with `--restart` has a
/// monitor that looks; any other's directory is left as it is: a `--rm` container's may be
/// on its way out, and a file made in it then would stop its removal (or fail the stop).
pub fn request_stop(dir: &state::ContainerDir) -> io::Result<bool> {
    let restarts = dir
        .load_spec(&dir.id)
        .is_ok_and(|spec| spec.options.restart.is_some());
    if restarts {
        std::fs::write(dir.path.join(STOP_REQUESTED), b"")?;
    }
    Ok(restarts)
}

/// Records that the monitor has started the container in `dir` again `count` times. Written
/// in place at a fixed width, never truncated: the file keeps the block it got when the
/// container started ([`under_policy`] writes 0 then), so a restart on a store that filled up
/// since still counts (a truncate and rewrite would need a fresh block).
fn write_restart_count(dir: &state::ContainerDir, count: u32) -> io::Result<()> {
    let text = format!("{count:<10}\n");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(dir.path.join(RESTART_COUNT))?;
    file.write_all(text.as_bytes())?;
    file.set_len(text.len() as u64)
}

/// How many times the monitor has started the container in `dir` again.
pub fn restart_count(dir: &state::ContainerDir) -> u32 {
    std::fs::read_to_string(dir.path.join(RESTART_COUNT))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether the user stopped the container in `dir` (`rsafe stop`, `rm -f`) since its last
/// `rsafe start`.
pub fn stopped_by_user(dir: &state::ContainerDir) -> bool {
    dir.path.join(STOP_REQUESTED).exists()
}

/// `rsafe start` (and `restart`) of the container in `dir` has started it: it runs under its
/// policy again, with docker's fresh start (no earlier stop, a restart count of 0, the
/// `on-failure:N` budget whole).
fn started_by_user(dir: &state::ContainerDir) {
    let _ = std::fs::remove_file(dir.path.join(STOP_REQUESTED));
    // Best effort: a restart that cannot write its count says so in the log.
    let _ = write_restart_count(dir, 0);
}

/// Whether a stopped container is started again where docker's daemon, starting (after a
/// reboot), would: an `always` one even if the user stopped it, an `unless-stopped` or
/// `on-failure` one only if the user did not, `on-failure` only after a failed last run
/// within its count. `last_exit`: its last run's exit code (`None`: it never ran).
pub fn starts_at_boot(
    policy: RestartPolicy,
    stopped_by_user: bool,
    last_exit: Option<i32>,
    restarts: u32,
) -> bool {
    let Some(code) = last_exit else {
        return false;
    };
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::UnlessStopped | RestartPolicy::OnFailure { .. } => {
            !stopped_by_user && policy.restarts_after(code, restarts)
        }
    }
}

/// The first wait before a restart, doubled after each (docker's), up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);

/// `--restart`: starts container `id` again, as `rsafe start` would, for as long as `policy`
/// says after each end and `rsafe stop` has not asked for its end; returns how the last run
/// ended. A start that fails (the container removed meanwhile) ends the loop with its error.
///
/// The monitor told to end itself (SIGTERM, as at a shutdown) passed it on to the container
/// and starts it no more, without marking it stopped by the user: [`starts_at_boot`] then
/// starts an `unless-stopped` one again, as docker's daemon does after a reboot.
fn restarts(
    store_root: &Path,
    id: &str,
    mut policy: Option<RestartPolicy>,
    mut result: Result<Exit, RunError>,
    notify: &mut dyn FnMut(Note),
) -> Result<Exit, RunError> {
    let mut backoff = FIRST_BACKOFF;
    let mut count = 0;
    while let Ok(exit) = &result {
        let Ok((dir, _)) = state::find(store_root, id) else {
            break;
        };
        // Updated meanwhile? An unreadable spec keeps the policy the container started with.
        if let Ok(spec) = dir.load_spec(id) {
            policy = spec.options.restart;
        }
        let Some(policy) = policy else {
            break;
        };
        if super::session::told_to_end()
            || stopped_by_user(&dir)
            || !policy.restarts_after(exit.code, count)
        {
            break;
        }
        if told_to_end_within(backoff, &dir) || stopped_by_user(&dir) {
            break;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        count += 1;
        if let Err(e) = write_restart_count(&dir, count) {
            notify(Note::Warning(format!(
                "cannot record restart {count} (inspect's RestartCount stays lower): {e}"
            )));
        }
        notify(Note::Info(format!(
            "restarting (restart {count}, policy {policy:?})"
        )));
        // The attach socket and the parent's report were made by the first start.
        result = process::start(store_root, id, None, Output::Inherited, &mut |note| {
            if !matches!(note, Note::Started { .. }) {
                notify(note)
            }
        });
    }
    result
}

/// Waits `wait` between two runs; whether the monitor was told to end meanwhile, or the user
/// stopped the container in `dir` (looked at every 50 ms: `rm -f` waits for the monitor to be
/// gone). The signals stay blocked from the last run (no handler ran), so they wait on a
/// signalfd.
fn told_to_end_within(wait: std::time::Duration, dir: &state::ContainerDir) -> bool {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let mut ending = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        ending.add(s);
    }
    let blocked = SigSet::thread_get_mask().is_ok_and(|m| ending.iter().all(|s| m.contains(s)));
    let fd = match blocked {
        true => SignalFd::with_flags(&ending, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok(),
        false => None,
    };
    let deadline = std::time::Instant::now() + wait;
    loop {
        if let Some(Ok(Some(_))) = fd.as_ref().map(|fd| fd.read_signal()) {
            return true;
        }
        if stopped_by_user(dir) {
            return false;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        let slice = left.min(std::time::Duration::from_millis(50));
        match &fd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                let ms = u16::try_from(slice.as_millis()).unwrap_or(u16::MAX);
                let _ = poll(&mut fds, PollTimeout::from(ms));
            }
            None => std::thread::sleep(slice),
        }
    }
}

/// Whether a detached container's monitor (or its log relay) is still there: they hold the
/// container's log locked, shared, while they live.
pub fn monitor_alive(dir: &state::ContainerDir) -> bool {
    std::fs::File::open(dir.log_file())
        .is_ok_and(|log| matches!(log.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

/// What a detached container's terminal and stdin are, and where its directory is (for the
/// attach socket).
#[derive(Debug)]
struct Stdio {
    /// `-t`: its terminal goes to the relay.
    tty: bool,
    /// `-i`: attach clients may type; without `-t` its stdin is a pipe from the relay.
    stdin: bool,
    containers: PathBuf,
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
/// to its log (made now if its earlier runs were attached), under its `--restart` policy as
/// `run -d` does (the stop of an earlier `rsafe stop` forgotten).
pub fn start_detached(
    store_root: &Path,
    name_or_id: &str,
    notify: impl FnMut(Note),
    ended: impl FnOnce(Result<Exit, RunError>) -> i32,
) -> Result<Detached, RunError> {
    let (dir, _) = state::find(store_root, name_or_id)?;
    // As it was made: `run -dit`'s container starts with its terminal and stdin again, and
    // under its restart policy, as docker's and podman's `start` do.
    let spec = dir.load_spec(name_or_id)?;
    let policy = spec.options.restart;
    let io = Stdio {
        tty: spec.process.terminal,
        stdin: spec.process.stdin,
        containers: state::containers_dir(store_root),
    };
    let io_stdin = io.stdin;
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
        io,
        |notify, terminal_to| {
            let stdin = if io_stdin { None } else { Some(false) };
            let output = terminal_to.map_or(Output::Inherited, Output::RelayTerminal);
            under_policy(store_root, policy, notify, |notify| {
                process::start(store_root, name_or_id, stdin, output, &mut |note| {
                    if let Note::Started { .. } = note {
                        started_by_user(&dir);
                    }
                    notify(note)
                })
            })
        },
        notify,
        ended,
    )
}

/// Forks the monitor, which runs `run` (the container, to its end) with its output going to
/// `log`; returns once the workload runs or could not start.
fn detach(
    log: std::fs::File,
    index: IndexAt,
    io: Stdio,
    run: impl FnOnce(&mut dyn FnMut(Note), Option<UnixStream>) -> Result<Exit, RunError>,
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
            let code = monitor(run, log, index, io, write, &mut notify, ended);
            std::process::exit(code)
        }
    }
}

/// The monitor: detaches from the caller, runs the container to its end, and tells the
/// waiting parent (through `report`) when the workload started, or why it did not.
fn monitor(
    run: impl FnOnce(&mut dyn FnMut(Note), Option<UnixStream>) -> Result<Exit, RunError>,
    log: std::fs::File,
    index: IndexAt,
    io: Stdio,
    report: OwnedFd,
    notify: &mut dyn FnMut(Note),
    ended: impl FnOnce(Result<Exit, RunError>) -> i32,
) -> i32 {
    let mut report = Some(std::fs::File::from(report));
    let detached = (|| -> io::Result<(nix::unistd::Pid, UnixStream)> {
        nix::unistd::setsid()?;
        // `-i` without `-t`: the container's stdin (inherited from here) is a pipe from the
        // relay, which passes on what attach clients type.
        let (stdin, stdin_pipe) = if io.stdin && !io.tty {
            let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            (std::fs::File::from(r), Some(w))
        } else {
            (std::fs::File::open("/dev/null")?, None)
        };
        nix::unistd::dup2_stdin(&stdin)?;
        drop(stdin);
        let hub = (io.tty, io.stdin, stdin_pipe);
        let (relay, output, control) = spawn_relay(&log, index, report.as_ref(), hub)?;
        nix::unistd::dup2_stdout(&output)?;
        nix::unistd::dup2_stderr(&output)?;
        Ok((relay, control))
    })();
    let (relay, control) = match detached {
        Ok(relay) => relay,
        Err(e) => {
            if let Some(mut r) = report.take() {
                let _ = writeln!(r, "failed 125 detach from the terminal: {e}");
            }
            return 125;
        }
    };
    let terminal_to = io.tty.then(|| control.try_clone().ok()).flatten();
    let result = run(
        &mut |note| {
            if let Note::Ended = note {
                drain_relay(&control);
            }
            if let Note::Started { id } = &note {
                let dir = io.containers.join(id);
                // Made before `run -d` returns, so that `rsafe attach` right after finds it.
                let listener = match attach::listen(&dir) {
                    Ok(l) => Some(OwnedFd::from(l)),
                    Err(e) => {
                        notify(Note::Warning(format!("rsafe attach will not work: {e}")));
                        None
                    }
                };
                let _ = attach::send_control(&control, Control::Started(id.clone(), listener));
                if let Some(mut r) = report.take() {
                    // The parent returns on this line; the pipe closes with it.
                    let _ = writeln!(r, "started {id}");
                }
            }
            notify(note);
        },
        terminal_to,
    );
    if let (Some(mut r), Err(e)) = (report.take(), &result) {
        let message = e.to_string().replace('\n', " ");
        let _ = writeln!(r, "failed {} {message}", e.exit_code());
    }
    say_if_relay_killed(relay, &log);
    drop(log);
    let code = ended(result);
    // What `rsafe attach` returns; the relay tells its clients once the output is all out.
    let _ = attach::send_control(&control, Control::Exit(code));
    code
}

/// Has the relay take in what the ended container wrote ([`Control::Drain`]) and waits for
/// its answer, 2 s at most (a relay that is gone or stuck does not hold the exit back).
fn drain_relay(control: &UnixStream) {
    if attach::send_control(control, Control::Drain).is_err() {
        return;
    }
    let mut fds = [PollFd::new(control.as_fd(), PollFlags::POLLIN)];
    if matches!(poll(&mut fds, PollTimeout::from(2000u16)), Ok(n) if n > 0) {
        let mut answer = [0u8; 16];
        let _ = io::Read::read(&mut &*control, &mut answer);
    }
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

/// Forks the relay that appends what comes through a pipe (and the terminal, once the
/// monitor hands it over) to `log`, keeps its line index and serves `rsafe attach`; returns
/// its pid, the pipe's write end and the control socket to it. The relay ends when every
/// writer has (the container, and the monitor). `hub`: the container's `-t`, `-i`, and the
/// write end of its stdin pipe.
fn spawn_relay(
    log: &std::fs::File,
    index: IndexAt,
    report: Option<&std::fs::File>,
    hub: (bool, bool, Option<OwnedFd>),
) -> io::Result<(nix::unistd::Pid, OwnedFd, UnixStream)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (control, relay_end) = attach::control_pair()?;
    let (tty, stdin, stdin_pipe) = hub;
    // SAFETY: the monitor is single-threaded (a fresh fork of a single-threaded rsafe), so the
    // child may run arbitrary code.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok((child, write, control)),
        ForkResult::Child => {
            drop(write);
            drop(control);
            // Not a writer of the line `rsafe run -d` waits for: it must see the monitor's end.
            if let Some(r) = report {
                let _ = nix::unistd::close(r.as_raw_fd());
            }
            // Nor of the caller's output: `$(rsafe run -d …)` must end with `rsafe run`.
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                let _ = nix::unistd::dup2_stdout(&null);
                let _ = nix::unistd::dup2_stderr(&null);
            }
            let hub = Hub::new(tty, stdin, stdin_pipe);
            let code = match relay(std::fs::File::from(read), log, index, relay_end, hub) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            std::process::exit(code)
        }
    }
}

/// The log and its index, as the relay writes them.
struct LogOut<'a> {
    log: &'a std::fs::File,
    index: IndexAt,
    writer: IndexWriter,
    /// Output the log could not take (its disk full), and why: said in the log as soon as it
    /// takes a write again.
    lost: Option<(u64, String)>,
    /// Whether the log's last byte is not a newline (a note then starts a line of its own).
    mid_line: bool,
}

impl LogOut<'_> {
    /// Indexes a chunk of output (its line starts, with the time it came), appends it to the
    /// log, and copies it to attached clients. The relay is the log's only writer while it
    /// lives, so the log's size is where the chunk goes.
    ///
    /// What the log cannot take (its disk full) is counted and dropped, not fatal: a relay
    /// that stopped reading would leave the workload's writes to block once the pipe is full,
    /// and a relay that exited would end it with SIGPIPE. The loss is said in the log once it
    /// takes a write again (the workload or someone freed space).
    fn append(&mut self, chunk: &[u8], hub: &mut Hub) -> io::Result<()> {
        self.say_lost();
        // Nothing goes in after a lost chunk and before its note: the note says where.
        let written = match self.lost {
            Some(_) => Err((0, None)),
            None => self.write(chunk).map_err(|(n, e)| (n, Some(e))),
        };
        if let Err((done, e)) = written {
            let missing = (chunk.len() - done) as u64;
            match (&mut self.lost, e) {
                (Some((bytes, _)), _) => *bytes += missing,
                (lost, Some(e)) => *lost = Some((missing, e.to_string())),
                (_, None) => {}
            }
        }
        hub.broadcast(chunk);
        Ok(())
    }

    /// Writes the note of the output lost so far, if any and if the log takes it now.
    fn say_lost(&mut self) {
        if let Some((bytes, why)) = self.lost.take() {
            let note = format!(
                "{}rsafe: {bytes} bytes of the container's output were lost: cannot write the log: {why}\n",
                if self.mid_line { "\n" } else { "" }
            );
            if let Err((_, e)) = self.write(note.as_bytes()) {
                self.lost = Some((bytes, e.to_string()));
            }
        }
    }

    /// Appends `bytes` to the log and indexes what went in; on an error, how much did.
    fn write(&mut self, bytes: &[u8]) -> Result<(), (usize, io::Error)> {
        let offset = self.log.metadata().map_err(|e| (0, e))?.len();
        let mut log = self.log;
        let mut done = 0;
        let mut failure = None;
        while done < bytes.len() {
            match log.write(&bytes[done..]) {
                Ok(0) => {
                    failure = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let went_in = &bytes[..done];
        self.writer
            .note(offset, went_in, std::time::SystemTime::now());
        let _ = self.writer.flush();
        if let Some(&last) = went_in.last() {
            self.mid_line = last != b'\n';
        }
        failure.map_or(Ok(()), |e| Err((done, e)))
    }

    /// The container's id has come: a `run -d` container's index goes in its directory.
    fn started(&mut self, id: &str) {
        let is_id = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if let (IndexAt::AfterStart(containers), true) = (&self.index, is_id)
            && !self.writer.is_attached()
        {
            // Best effort: without an index the log is still kept, only without times.
            let _ = self.writer.attach(&containers.join(id).join("log.idx"));
        }
    }
}

/// The relay's loop over the container's output (pipe and terminal), the monitor's control
/// messages and the attach clients, until the output has ended.
fn relay(
    from: std::fs::File,
    log: &std::fs::File,
    index: IndexAt,
    control: UnixStream,
    hub: Hub,
) -> io::Result<()> {
    // Each run's output starts an entry, even after a last line without its newline (as
    // docker's json-file starts a new entry): `logs -t` gives it its own time.
    let mut out = LogOut {
        log,
        index,
        writer: IndexWriter::new(true),
        lost: None,
        mid_line: false,
    };
    if let IndexAt::File(path) = &out.index {
        // Best effort, as above.
        let _ = out.writer.attach(path);
    }
    let mut relay = Relay {
        buf: vec![0u8; 64 << 10],
        exit: None,
        control: Some(control),
        terminal: None,
        pipe: Some(from),
        out,
        hub,
    };
    while relay.pipe.is_some() || relay.terminal.is_some() {
        relay.step()?;
    }
    // Output lost to a full disk is said at the end too, if there is room now.
    relay.out.say_lost();
    // The monitor has exited (the pipe's last writer): what it said last is queued.
    while let Some(c) = &relay.control {
        match attach::recv_control(c) {
            Ok(Some(msg)) => relay.on_control(msg),
            _ => relay.control = None,
        }
    }
    relay.hub.finish(relay.exit);
    Ok(())
}

/// What [`relay`]'s loop reads from and writes to; a source is `None` once it has ended.
/// (Fields in the order they are dropped on an error: the sources, then the log, then the
/// attach clients.)
struct Relay<'a> {
    buf: Vec<u8>,
    /// The workload's exit code, once the monitor has said it.
    exit: Option<i32>,
    control: Option<UnixStream>,
    terminal: Option<OwnedFd>,
    pipe: Option<std::fs::File>,
    out: LogOut<'a>,
    hub: Hub,
}

/// Where each source sits in one poll's descriptors (the hub's: first and how many).
struct Slots {
    pipe: Option<usize>,
    terminal: Option<usize>,
    control: Option<usize>,
    hub: (usize, usize),
}

impl Relay<'_> {
    /// One poll, and what was ready handled: the monitor's message, then output from the
    /// pipe and the terminal, then the attach clients.
    fn step(&mut self) -> io::Result<()> {
        let Some((ready, at)) = self.poll()? else {
            return Ok(());
        };
        let is = |at: Option<usize>| at.is_some_and(|i| !ready[i].is_empty());
        if is(at.control) {
            match self.control.as_ref().map(attach::recv_control) {
                Some(Ok(Some(msg))) => self.on_control(msg),
                _ => self.control = None,
            }
        }
        if is(at.pipe) {
            self.read_pipe()?;
        }
        if is(at.terminal) {
            self.read_terminal()?;
        }
        let (hub_at, hub_n) = at.hub;
        self.hub.handle(&ready[hub_at..hub_at + hub_n]);
        Ok(())
    }

    /// Waits for any source; what each descriptor got, or none when the poll was interrupted
    /// or timed out (then the terminal is given up).
    fn poll(&mut self) -> io::Result<Option<(Vec<PollFlags>, Slots)>> {
        let mut fds = Vec::new();
        let pipe = poll_in(self.pipe.as_ref().map(|p| p.as_fd()), &mut fds);
        let terminal = poll_in(self.terminal.as_ref().map(|t| t.as_fd()), &mut fds);
        let control = poll_in(self.control.as_ref().map(|c| c.as_fd()), &mut fds);
        let hub_at = fds.len();
        let hub_n = self.hub.poll_fds(&mut fds);
        // Once the monitor is gone, so are the container's processes: its terminal only has
        // what they wrote last, if anything.
        let timeout = match self.pipe {
            Some(_) => PollTimeout::NONE,
            None => PollTimeout::from(1000u16),
        };
        let n = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let ready: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if n == 0 {
            self.terminal = None;
            return Ok(None);
        }
        let at = Slots {
            pipe,
            terminal,
            control,
            hub: (hub_at, hub_n),
        };
        Ok(Some((ready, at)))
    }

    /// Output from the pipe (the container's stdout and stderr without a terminal).
    fn read_pipe(&mut self) -> io::Result<()> {
        let Some(p) = &mut self.pipe else {
            return Ok(());
        };
        match p.read(&mut self.buf) {
            Ok(0) => self.pipe = None,
            Ok(n) => self.out.append(&self.buf[..n], &mut self.hub)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The container has ended (the monitor asks before it records the exit): everything
    /// already in the pipe and the terminal is appended to the log, then the monitor is
    /// answered. Nothing is waited for: what is there now is all the workload wrote.
    fn drain(&mut self) {
        let pending = |fd: Option<std::os::fd::BorrowedFd<'_>>| {
            let Some(fd) = fd else { return false };
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
                && fds[0]
                    .revents()
                    .is_some_and(|r| r.contains(PollFlags::POLLIN))
        };
        // Bounded: a process left in the container that keeps writing cannot hold it here.
        for _ in 0..1024 {
            let (pipe, terminal) = (
                pending(self.pipe.as_ref().map(|p| p.as_fd())),
                pending(self.terminal.as_ref().map(|t| t.as_fd())),
            );
            if !pipe && !terminal {
                break;
            }
            let read = match pipe {
                true => self.read_pipe(),
                false => self.read_terminal(),
            };
            if read.is_err() {
                break;
            }
        }
        if let Some(c) = &self.control {
            let _ = std::io::Write::write_all(&mut &*c, b"drained");
        }
    }

    /// Output from the container's terminal.
    fn read_terminal(&mut self) -> io::Result<()> {
        let Some(t) = &self.terminal else {
            return Ok(());
        };
        match nix::unistd::read(t, &mut self.buf) {
            Ok(n) if n > 0 => self.out.append(&self.buf[..n], &mut self.hub)?,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            // EIO: every slave descriptor is closed — the container is gone.
            _ => self.terminal = None,
        }
        Ok(())
    }

    /// A message from the monitor ([`on_control`]); [`Relay::drain`] for `Drain`.
    fn on_control(&mut self, msg: Control) {
        if let Control::Drain = msg {
            return self.drain();
        }
        on_control(
            msg,
            &mut self.out,
            &mut self.hub,
            &mut self.terminal,
            &mut self.exit,
        );
    }
}

/// Polls `fd` for input, if there is one; its place in `fds`.
fn poll_in<'a>(
    fd: Option<std::os::fd::BorrowedFd<'a>>,
    fds: &mut Vec<PollFd<'a>>,
) -> Option<usize> {
    fd.map(|fd| {
        fds.push(PollFd::new(fd, PollFlags::POLLIN));
        fds.len() - 1
    })
}

/// What the relay does on a message from the monitor.
fn on_control(
    msg: Control,
    out: &mut LogOut<'_>,
    hub: &mut Hub,
    terminal: &mut Option<OwnedFd>,
    exit: &mut Option<i32>,
) {
    match msg {
        Control::Started(id, listener) => {
            out.started(&id);
            if let Some(l) = listener {
                hub.listen(UnixListener::from(l));
            }
        }
        Control::Terminal(master) => {
            hub.set_terminal(&master);
            *terminal = Some(master);
        }
        Control::Exit(code) => {
            *exit = Some(code);
            hub.close_listener();
        }
        // The relay's own to answer ([`Relay::drain`]): it reads its sources.
        Control::Drain => {}
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
    fn boot_starts_as_dockers_daemon() {
        use RestartPolicy::*;
        let thrice = OnFailure { max: Some(3) };
        // (policy, stopped by the user, last exit, restarts) → started.
        let cases = [
            (Always, true, Some(0), 0, true),
            (Always, false, Some(143), 9, true),
            (Always, false, None, 0, false),
            (UnlessStopped, true, Some(143), 0, false),
            (UnlessStopped, false, Some(143), 0, true),
            (UnlessStopped, false, Some(0), 0, true),
            (thrice, false, Some(1), 2, true),
            (thrice, false, Some(1), 3, false),
            (thrice, false, Some(0), 0, false),
            (thrice, true, Some(1), 0, false),
        ];
        for (policy, by_user, last, restarts, want) in cases {
            assert_eq!(
                starts_at_boot(policy, by_user, last, restarts),
                want,
                "{policy:?} stopped by user {by_user}, exit {last:?}, {restarts} restarts"
            );
        }
    }

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
