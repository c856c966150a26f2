//! rsafe's side while a container runs: one `poll` loop over the sync channel (failures, the
//! terminal, what was enforced), a signalfd (signals to forward; SIGCHLD when the container
//! ends; SIGWINCH to resize its terminal), and the terminal's two directions with `-t`. In the
//! foreground the output also goes to the container's log ([`Tee`]).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::channel::{Channel, ChannelError, Message};
use super::learn::Recorder;
use super::learn::paths::FileDenials;
use super::learn::supervisor::Supervisor;
use super::logindex::Appender;
use super::process::{Note, RunError};
use super::tty::{self, RawMode};

/// Whether this process was itself told to end (SIGTERM, SIGINT, SIGHUP or SIGQUIT), which it
/// passed on to its container: a detached container's monitor then starts it no more, as
/// docker's daemon stopping (a shutdown) ends its containers without a restart.
static TOLD_TO_END: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// See [`TOLD_TO_END`].
pub(super) fn told_to_end() -> bool {
    TOLD_TO_END.load(std::sync::atomic::Ordering::Relaxed)
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> RunError {
    move |source| RunError::Io {
        what: what.to_string(),
        source,
    }
}

/// The parent's side while the container runs: messages, signals and the terminal.
pub(super) struct Session {
    /// The container's id, for [`Note::Started`].
    pub id: String,
    pub chan: Option<Channel>,
    pub signals: SignalFd,
    pub child: Pid,
    pub terminal: Option<OwnedFd>,
    pub relay_stdin: bool,
    pub raw: Option<RawMode>,
    /// The first failure the container reported: exit code and message.
    pub failure: Option<(i32, String)>,
    /// `--learn`: where the learning supervisor records the workload's calls.
    pub learn: Option<Recorder>,
    /// The learning supervisor, once the workload sent its listener.
    pub supervisor: Option<Supervisor>,
    /// Under a policy reporting its denials: the file calls it also notifies, for the
    /// supervisor to name the paths landlock will refuse.
    pub files: Option<FileDenials>,
    /// `rsafe exec` into a container being learned: where the process's learning listener
    /// goes (the container's learning run), instead of a supervisor here.
    pub learn_forward: Option<super::learn::exec_hook::ExecClient>,
    /// `-dt`: the log relay, which takes the terminal instead of this loop (it serves
    /// `rsafe attach`).
    pub terminal_to: Option<std::os::unix::net::UnixStream>,
    /// In the foreground: the log the output is added to (and, without a terminal, the pipes
    /// that are the container's stdout and stderr).
    pub tee: Option<Tee>,
}

impl Session {
    /// Runs until the container's first process ends; returns how it ended.
    pub fn run(&mut self, notify: &mut dyn FnMut(Note)) -> Result<WaitStatus, RunError> {
        let stdin = io::stdin();
        loop {
            let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            let chan_at = self.chan.as_ref().map(|c| {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let term_at = self.terminal.as_ref().map(|t| {
                fds.push(PollFd::new(t.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let stdin_at = (self.terminal.is_some() && self.relay_stdin).then(|| {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let tee_at = self.tee.as_ref().map(|t| t.poll_fds(&mut fds));
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(io_err("poll")(e.into())),
            }
            let ready = |i: Option<usize>| {
                i.and_then(|i| fds[i].revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (sig_ready, chan_ready, term_ready, stdin_ready) = (
                ready(Some(0)),
                ready(chan_at),
                ready(term_at),
                ready(stdin_at),
            );
            let tee_ready = tee_at.map(|(at, n)| {
                let mut r = [false; 2];
                for (i, slot) in r.iter_mut().enumerate().take(n) {
                    *slot = ready(Some(at + i));
                }
                r
            });
            drop(fds);

            if let (Some(tee), Some(ready)) = (&mut self.tee, tee_ready) {
                tee.copy_ready(ready);
            }
            if chan_ready {
                self.read_message(notify)?;
            }
            if term_ready {
                self.copy_terminal_output();
            }
            if stdin_ready {
                self.copy_stdin();
            }
            if sig_ready && let Some(status) = self.handle_signals()? {
                self.drain(notify)?;
                if let Some(supervisor) = self.supervisor.take() {
                    supervisor.finish();
                }
                return Ok(status);
            }
        }
    }

    fn read_message(&mut self, notify: &mut dyn FnMut(Note)) -> Result<(), RunError> {
        let Some(chan) = &self.chan else {
            return Ok(());
        };
        match chan.recv()? {
            None => {
                // The workload has started: from now on the host terminal is the container's.
                // (Raw mode waits until here so that rsafe's own messages, `--verbose` ones
                // included, still print on a normal terminal.)
                self.chan = None;
                if self.failure.is_none() {
                    notify(Note::Started {
                        id: self.id.clone(),
                    });
                }
                if self.terminal.is_some() && self.relay_stdin && self.failure.is_none() {
                    self.raw = RawMode::enter().map_err(io_err("raw mode"))?;
                }
            }
            Some((Message::Failed { code, message }, _)) => {
                self.failure.get_or_insert((code, message));
            }
            Some((Message::Confined { lines, warnings }, _)) => {
                for l in lines {
                    notify(Note::Info(l));
                }
                for w in warnings {
                    notify(Note::Warning(w));
                }
            }
            Some((Message::Learning { program }, fds)) => self.start_learning(&program, fds)?,
            Some((Message::Terminal, fds)) => match (fds.into_iter().next(), &self.terminal_to) {
                (Some(master), Some(relay)) => {
                    super::attach::send_control(relay, super::attach::Control::Terminal(master))
                        .map_err(io_err("hand the terminal to the log relay"))?;
                }
                (Some(master), None) => self.terminal = Some(master),
                (None, _) => {}
            },
            Some((other, _)) => {
                return Err(ChannelError::Malformed(format!("unexpected {other:?}")).into());
            }
        }
        Ok(())
    }

    /// Starts answering the learning filter's notifications (the workload waits in its first
    /// notified call until then). Without `--learn`, the listener is a learned policy's
    /// filter notifying its denials ([`Supervisor::spawn_reporting`]).
    fn start_learning(&mut self, program: &Path, fds: Vec<OwnedFd>) -> Result<(), RunError> {
        let mut fds = fds.into_iter();
        if let Some(client) = self.learn_forward.take() {
            let listener = fds.next().ok_or_else(|| {
                ChannelError::Malformed("a learning message without its listener".into())
            })?;
            return client
                .hand_over(program, listener)
                .map_err(io_err("hand the process to the container's learning run"));
        }
        if self.learn.is_none()
            && self.supervisor.is_none()
            && let Some(listener) = fds.next()
        {
            let supervisor = Supervisor::spawn_reporting(listener, self.files.take())
                .map_err(io_err("start reporting the policy's denials"))?;
            self.supervisor = Some(supervisor);
            return Ok(());
        }
        let (Some(recorder), Some(listener)) = (&self.learn, fds.next()) else {
            return Err(
                ChannelError::Malformed("a learning listener nobody asked for".into()).into(),
            );
        };
        recorder.lock().add_path(
            super::learn::observe::normalise(program),
            super::learn::Access::EXECUTE,
        );
        let supervisor = Supervisor::spawn(listener, recorder.clone())
            .map_err(io_err("start the learning supervisor"))?;
        self.supervisor = Some(supervisor);
        Ok(())
    }

    /// Handles pending signals; returns the child's status once it has ended.
    fn handle_signals(&mut self) -> Result<Option<WaitStatus>, RunError> {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match sig {
                Signal::SIGCHLD => match waitpid(self.child, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) => {}
                    Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                        return Ok(Some(status));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(io_err("wait for the container")(e.into())),
                },
                Signal::SIGWINCH if self.terminal.is_some() => {
                    if let (Some(t), Some(size)) =
                        (&self.terminal, tty::window_size(io::stdin().as_fd()))
                    {
                        let _ = tty::set_window_size(t.as_fd(), size);
                    }
                }
                other => {
                    if matches!(
                        other,
                        Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP | Signal::SIGQUIT
                    ) {
                        TOLD_TO_END.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    let _ = kill(self.child, other);
                }
            }
        }
        Ok(None)
    }

    /// After the container ended: the last messages and terminal output.
    fn drain(&mut self, notify: &mut dyn FnMut(Note)) -> Result<(), RunError> {
        self.relay_stdin = false;
        while self.chan.is_some() {
            self.read_message(notify)?;
        }
        while self.terminal.is_some() {
            self.copy_terminal_output();
        }
        if let Some(tee) = &mut self.tee {
            tee.drain();
        }
        self.raw = None;
        Ok(())
    }

    fn copy_terminal_output(&mut self) {
        let Some(t) = &self.terminal else { return };
        let mut buf = [0u8; 16 * 1024];
        match nix::unistd::read(t, &mut buf) {
            Ok(n) if n > 0 => {
                let mut out = io::stdout().lock();
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
                if let Some(tee) = &mut self.tee {
                    tee.log(0, &buf[..n]);
                }
            }
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
            // EIO: every slave descriptor is closed — the container is gone.
            _ => self.terminal = None,
        }
    }

    fn copy_stdin(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        match io::stdin().lock().read(&mut buf) {
            Ok(n) if n > 0 => {
                if let Some(t) = &self.terminal {
                    let _ = nix::unistd::write(t, &buf[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => self.relay_stdin = false,
        }
    }
}

/// A foreground container's output on its way to rsafe's stdout and stderr, and to the
/// container's log (with its index, as the `-d` relay keeps them).
#[derive(Debug)]
pub(super) struct Tee {
    log: Appender,
    /// Without a terminal: the pipes that are the container's stdout and stderr, each `None`
    /// once it has ended, or once rsafe's own stream closed (`rsafe run … | head`: then the
    /// container's next write gets SIGPIPE, as it would writing to the closed pipe itself).
    pipes: [Option<std::fs::File>; 2],
}

impl Tee {
    /// Adds to `log` (its index at `index`); `pipes`, without a terminal: the read ends of the
    /// container's stdout and stderr. The log is locked (shared) while the container runs, for
    /// `rsafe logs -f`.
    pub fn new(log: &std::fs::File, index: &Path, pipes: Option<[OwnedFd; 2]>) -> io::Result<Tee> {
        let log = log.try_clone()?;
        log.lock_shared()?;
        let pipes = match pipes {
            Some([out, err]) => [Some(out.into()), Some(err.into())],
            None => [None, None],
        };
        Ok(Tee {
            log: Appender::new(log, Some(index))?,
            pipes,
        })
    }

    /// Adds the open pipes to `fds`: where they start and how many.
    fn poll_fds<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) -> (usize, usize) {
        let at = fds.len();
        for p in self.pipes.iter().flatten() {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        (at, fds.len() - at)
    }

    /// Copies from the pipes found ready (in [`Tee::poll_fds`]'s order).
    fn copy_ready(&mut self, ready: [bool; 2]) {
        let open: Vec<usize> = (0..2).filter(|i| self.pipes[*i].is_some()).collect();
        for (slot, stream) in open.into_iter().enumerate() {
            if ready[slot] {
                self.copy(stream);
            }
        }
    }

    /// One read from pipe `stream` (0 stdout, 1 stderr): to rsafe's own, then to the log.
    fn copy(&mut self, stream: usize) {
        let Some(pipe) = &mut self.pipes[stream] else {
            return;
        };
        let mut buf = [0u8; 64 * 1024];
        let n = match pipe.read(&mut buf) {
            Ok(0) => {
                self.pipes[stream] = None;
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(_) => {
                self.pipes[stream] = None;
                return;
            }
        };
        let written = match stream {
            0 => write_all(io::stdout().as_fd(), &buf[..n]),
            _ => write_all(io::stderr().as_fd(), &buf[..n]),
        };
        if !written {
            self.pipes[stream] = None;
        }
        self.log(stream as u8, &buf[..n]);
    }

    /// Adds a chunk of output to the log. A log that cannot be written (a full disk) must not
    /// stop the container: the terminal still gets everything.
    fn log(&mut self, stream: u8, chunk: &[u8]) {
        let _ = self.log.append(stream, chunk, std::time::SystemTime::now());
    }

    /// After the container ended: what is left in the pipes (its processes are gone, so they
    /// end; a second without anything ends the wait all the same).
    fn drain(&mut self) {
        while self.pipes.iter().any(Option::is_some) {
            let mut fds = Vec::new();
            let (_, n) = self.poll_fds(&mut fds);
            let found = poll(&mut fds, PollTimeout::from(1000u16)).unwrap_or(0);
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            if found == 0 {
                self.pipes = [None, None];
                return;
            }
            let mut r = [false; 2];
            r[..n].copy_from_slice(&ready[..n]);
            self.copy_ready(r);
        }
    }
}

/// Writes all of `bytes` to rsafe's stdout or stderr; `false` once it is closed (EPIPE) or
/// broken.
fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::NONE);
            }
            Err(_) => return false,
        }
    }
    true
}
