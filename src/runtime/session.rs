//! rsafe's side while a container runs: one `poll` loop over the sync channel (failures, the
//! terminal, what was enforced), a signalfd (signals to forward; SIGCHLD when the container
//! ends; SIGWINCH to resize its terminal), and the terminal's two directions with `-t`.

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
use super::learn::supervisor::Supervisor;
use super::process::{Note, RunError};
use super::tty::{self, RawMode};

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
    /// `-dt`: the log relay, which takes the terminal instead of this loop (it serves
    /// `rsafe attach`).
    pub terminal_to: Option<std::os::unix::net::UnixStream>,
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
            drop(fds);

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
        if self.learn.is_none()
            && self.supervisor.is_none()
            && let Some(listener) = fds.next()
        {
            let supervisor = Supervisor::spawn_reporting(listener)
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
