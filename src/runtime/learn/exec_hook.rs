//! `rsafe exec` into a container that is being learned (`rsafe run --learn`, in the foreground
//! or with `-d`): the exec'd process is recorded too, and the written policy has what it used
//! as a run of its own (`# run 2: … exec NAME: CMD`), so a command run beside the workload
//! (a health check, a migration, a debugging shell) does not have its needs lost, nor mixed
//! into the workload's without a word.
//!
//! The run that learns (`rsafe run`, or the monitor of `run -d`) serves `learn.sock` in the
//! container's directory once the container runs ([`ExecHook`]): mode 0600, and a peer whose
//! uid is not the server's own is dropped. `rsafe exec` connects before it starts anything
//! ([`connect`]): a connection means the container is being learned, and the process stacks
//! the learning filter last, as the workload did. The listener it sends back comes over to
//! the learning run with the exec's label and program in one message ([`ExecClient::hand_over`]);
//! that run answers it with a supervisor of its own, recording into a recorder of its own,
//! and says `ok`. The process waits in its first notified call until then. When the container
//! ends, [`ExecHook::finish`] stops taking execs and adds each exec's observations to the run's
//! ([`super::Observed::execs`]).
//!
//! What rsafe reads of an exec'd process is advisory exactly as the workload's is (module
//! documentation of [`super`]); the exec'd process runs under the container's policy whatever
//! happens here: if nobody answers its listener, its calls fail with ENOSYS.

use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::socket::{getsockopt, sockopt};

use super::observe::normalise;
use super::supervisor::Supervisor;
use super::{Access, Recorder};

/// The socket's name in the container's directory.
pub const SOCKET: &str = "learn.sock";

/// The longest message taken: a path (PATH_MAX) and a label, with room to spare.
const MAX_MESSAGE: usize = 8192;
/// The longest label kept, in characters: it is one comment line of the policy.
const MAX_LABEL: usize = 200;
/// How long either side waits for the other's message: a peer that says nothing is dropped.
/// Generous: `rsafe exec` connects before it enters the container, and on a loaded machine
/// the process may take seconds to reach its hand-over.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The learning run's side: the socket and the thread that takes execs.
pub struct ExecHook {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Exec>>>,
    path: PathBuf,
    run: Recorder,
}

/// One exec'd process being recorded.
struct Exec {
    label: String,
    recorder: Recorder,
    supervisor: Supervisor,
}

impl ExecHook {
    /// Serves `learn.sock` in `container_dir` (a stale one is replaced); execs' observations
    /// go to `run` when [`ExecHook::finish`] is called. Starts a thread: call only once the
    /// container's process has been made.
    pub fn start(container_dir: &Path, run: Recorder) -> io::Result<ExecHook> {
        let path = container_dir.join(SOCKET);
        let dir = open_dir(container_dir)?;
        let short = short_path(&dir);
        match std::fs::remove_file(&short) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(&short)?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rsafe-learn-exec".into())
            .spawn(move || take_execs(&listener, &flag))?;
        Ok(ExecHook {
            stop,
            thread: Some(thread),
            path,
            run,
        })
    }

    /// Stops taking execs, removes the socket, waits for each exec's supervisor (its processes
    /// are gone with the container) and adds what each exec used to the run's observations.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let execs = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        let _ = std::fs::remove_file(&self.path);
        for exec in execs {
            exec.supervisor.finish();
            let seen = exec.recorder.snapshot();
            self.run.lock().execs.push((exec.label, seen));
        }
    }
}

impl Drop for ExecHook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The thread: accepts connections until told to stop, taking one exec from each.
fn take_execs(listener: &UnixListener, stop: &AtomicBool) -> Vec<Exec> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let me = nix::unistd::Uid::effective().as_raw();
    let mut execs = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        while let Ok((stream, _)) = listener.accept() {
            // Only the container's owner (the socket's mode says so too).
            let peer = getsockopt(&stream, sockopt::PeerCredentials).map(|c| c.uid());
            if peer.ok() != Some(me) {
                continue;
            }
            if let Some(exec) = take_one(&stream) {
                execs.push(exec);
            }
        }
    }
    execs
}

/// Reads one exec's message and starts recording it; says `ok` once its supervisor runs.
fn take_one(stream: &UnixStream) -> Option<Exec> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(TIMEOUT)).ok()?;
    let (text, listener) = receive(stream).ok()?;
    let (program, label) = parse(&text)?;
    let listener = listener?;
    let recorder = Recorder::new();
    recorder
        .lock()
        .add_path(normalise(&program), Access::EXECUTE);
    let supervisor = Supervisor::spawn(listener, recorder.clone()).ok()?;
    let mut reply = stream;
    let _ = reply.write_all(b"ok\n");
    Some(Exec {
        label,
        recorder,
        supervisor,
    })
}

/// `exec\0PROGRAM\0LABEL\n` → (program, label); None for anything else.
fn parse(text: &[u8]) -> Option<(PathBuf, String)> {
    use std::os::unix::ffi::OsStrExt as _;
    let body = text.strip_prefix(b"exec\0")?.strip_suffix(b"\n")?;
    let mut parts = body.splitn(2, |b| *b == 0);
    let program = Path::new(std::ffi::OsStr::from_bytes(parts.next()?));
    let label = String::from_utf8_lossy(parts.next()?);
    if !program.is_absolute() {
        return None;
    }
    Some((program.to_path_buf(), one_line(&label)))
}

/// The message and the descriptor sent with it (read up to its newline).
fn receive(stream: &UnixStream) -> io::Result<(Vec<u8>, Option<OwnedFd>)> {
    let mut text = Vec::new();
    let mut fd = None;
    while !text.ends_with(b"\n") && text.len() < MAX_MESSAGE {
        let mut buf = [0u8; 1024];
        let (n, received) = crate::runtime::fdpass::recv_fds(stream, &mut buf, 1)?;
        if let Some(owned) = received.into_iter().next() {
            fd.get_or_insert(owned);
        }
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    Ok((text, fd))
}

/// `rsafe exec`'s side: a connection to the learning run of one container.
#[derive(Debug)]
pub struct ExecClient {
    stream: UnixStream,
    label: String,
}

/// Connects to the learning run of the container in `container_dir`: None when the container
/// is not being learned (no socket, or nobody serving it: a run that ended). `label` names
/// the exec in the policy's comments (redacted by the caller, as a run's label is).
pub fn connect(container_dir: &Path, label: &str) -> io::Result<Option<ExecClient>> {
    let dir = match open_dir(container_dir) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match UnixStream::connect(short_path(&dir)) {
        Ok(stream) => Ok(Some(ExecClient {
            stream,
            label: one_line(label),
        })),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ECONNREFUSED)) => Ok(None),
        Err(e) => Err(e),
    }
}

impl ExecClient {
    /// Sends the exec'd process's learning listener and the program it is about to run, and
    /// waits for the learning run to say it answers it.
    pub fn hand_over(self, program: &Path, listener: OwnedFd) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt as _;
        let mut text = b"exec\0".to_vec();
        text.extend_from_slice(program.as_os_str().as_bytes());
        text.push(0);
        text.extend_from_slice(self.label.as_bytes());
        text.push(b'\n');
        if text.len() > MAX_MESSAGE {
            return Err(io::Error::other("the program's path is too long"));
        }
        crate::runtime::fdpass::send_fds(&self.stream, &text, &[listener.as_fd()])?;
        drop(listener);
        self.stream.set_read_timeout(Some(TIMEOUT))?;
        let mut reply = [0u8; 3];
        let mut stream = &self.stream;
        stream.read_exact(&mut reply).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("the container's learning run did not take the process: {e}"),
            )
        })?;
        if &reply != b"ok\n" {
            return Err(io::Error::other(
                "the container's learning run did not take the process",
            ));
        }
        Ok(())
    }
}

/// `label` on one line, cut to [`MAX_LABEL`] characters.
fn one_line(label: &str) -> String {
    let line: String = label
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_LABEL)
        .collect();
    line
}

/// The container's directory as a descriptor, for [`short_path`].
fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(
        dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// `/proc/self/fd/N/learn.sock`: short enough for a socket address (108 bytes) whatever the
/// store's path length.
fn short_path(dir: &OwnedFd) -> String {
    format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_a_program_and_a_label() {
        let (program, label) = parse(b"exec\0/bin/sh\0exec web: sh -c id\n").unwrap();
        assert_eq!(program, Path::new("/bin/sh"));
        assert_eq!(label, "exec web: sh -c id");
        for bad in [
            &b"exec\0bin/sh\0x\n"[..],
            b"exec\0/bin/sh\n",
            b"run\0/bin/sh\0x\n",
            b"exec\0/bin/sh\0x",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(one_line("a\nb\x1b"), "a b ");
        assert_eq!(one_line(&"x".repeat(500)).len(), MAX_LABEL);
    }

    #[test]
    fn no_socket_means_not_learning() {
        let dir = tempfile::tempdir().unwrap();
        assert!(connect(dir.path(), "x").unwrap().is_none());
        assert!(connect(&dir.path().join("gone"), "x").unwrap().is_none());
        // A socket nobody serves (a learning run that was killed): not learning either.
        let path = dir.path().join(SOCKET);
        drop(UnixListener::bind(&path).unwrap());
        assert!(connect(dir.path(), "x").unwrap().is_none());
    }

    #[test]
    fn an_exec_handed_over_is_added_to_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let run = Recorder::new();
        let hook = ExecHook::start(dir.path(), run.clone()).unwrap();
        let mode = std::fs::metadata(dir.path().join(SOCKET)).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        let client = connect(dir.path(), "exec web: id").unwrap().unwrap();
        // A pipe whose writer is gone polls as hung up (and never readable), as a listener
        // whose processes are gone does: its supervisor ends at once.
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(write);
        client.hand_over(Path::new("/usr/bin/id"), read).unwrap();
        hook.finish();
        let seen = run.snapshot();
        assert!(!dir.path().join(SOCKET).exists());
        assert_eq!(seen.execs.len(), 1);
        let (label, exec) = &seen.execs[0];
        assert_eq!(label, "exec web: id");
        assert_eq!(
            exec.paths.get(Path::new("/usr/bin/id")),
            Some(&Access::EXECUTE)
        );
    }
}
