//! `rsafe attach`: a terminal (or stdin and output) of a container started with `run -d`,
//! joined and left again while the container runs, with no daemon.
//!
//! The detached container's log relay ([`super::detach`]) is the server: it reads everything
//! the container prints (its terminal's master with `-t`, else its output pipe), appends it to
//! the log, and copies it to every attached client; what a client types goes to the terminal
//! or, with `-i` and no `-t`, to the write end of the container's stdin pipe, which the relay
//! holds for the container's whole life (as conmon does for podman). Clients connect to a UNIX
//! socket in the container's directory, mode 0600, and the relay also checks that a client's
//! peer uid is its own: a container's root (another host uid when root runs rsafe) cannot
//! reach it.
//!
//! On the socket, frames: a tag byte, a little-endian u32 length, the payload. The relay says
//! [`Frame::Hello`] first (whether there is a terminal, whether stdin is open), then sends
//! output, and [`Frame::Exit`] with the container's exit code once it has ended and its output
//! is all sent. A client sends input, window sizes and (`--sig-proxy`, without a terminal)
//! signals. The detach keys (docker's ctrl-p ctrl-q by default) are the client's own business:
//! it stops relaying and leaves; the container never sees them.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::fdpass;
use super::tty::{self, RawMode, WinSize};

/// The socket's name in the container's directory.
pub const SOCKET: &str = "attach.sock";

/// The largest frame payload accepted: more is a broken or hostile peer.
const MAX_FRAME: usize = 1 << 20;
/// Output queued for a client that does not read: past this, it is dropped (the container and
/// its log must not wait for a stalled terminal).
const MAX_QUEUED: usize = 8 << 20;

/// What can go wrong attaching.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("the attach socket: {0}")]
    Protocol(String),
    #[error("invalid --detach-keys {keys:?}: {why}")]
    DetachKeys { keys: String, why: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> AttachError {
    let what = what.into();
    move |source| AttachError::Io { what, source }
}

/// One message on the attach socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Relay → client, first: the container's terminal and stdin (`-t`, `-i`).
    Hello { tty: bool, stdin: bool },
    /// Relay → client: what the container printed.
    Output(Vec<u8>),
    /// Relay → client, last: the container ended with this code.
    Exit(i32),
    /// Client → relay: what the user typed.
    Input(Vec<u8>),
    /// Client → relay: the client's terminal size.
    Resize(WinSize),
    /// Client → relay: a signal for the container (`--sig-proxy`).
    Signal(i32),
}

impl Frame {
    /// The frame's bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, payload): (u8, Vec<u8>) = match self {
            Frame::Hello { tty, stdin } => (b'H', vec![u8::from(*tty), u8::from(*stdin)]),
            Frame::Output(b) => (b'O', b.clone()),
            Frame::Exit(code) => (b'X', code.to_le_bytes().to_vec()),
            Frame::Input(b) => (b'I', b.clone()),
            Frame::Resize(ws) => {
                let mut p = ws.rows.to_le_bytes().to_vec();
                p.extend_from_slice(&ws.cols.to_le_bytes());
                (b'R', p)
            }
            Frame::Signal(n) => (b'S', n.to_le_bytes().to_vec()),
        };
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(tag);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    fn decode(tag: u8, p: &[u8]) -> Result<Frame, AttachError> {
        let bad = || AttachError::Protocol(format!("malformed frame {:?}", tag as char));
        let int = |p: &[u8]| p.try_into().map(i32::from_le_bytes).map_err(|_| bad());
        Ok(match tag {
            b'H' if p.len() == 2 => Frame::Hello {
                tty: p[0] != 0,
                stdin: p[1] != 0,
            },
            b'O' => Frame::Output(p.to_vec()),
            b'X' => Frame::Exit(int(p)?),
            b'I' => Frame::Input(p.to_vec()),
            b'R' if p.len() == 4 => Frame::Resize(WinSize {
                rows: u16::from_le_bytes([p[0], p[1]]),
                cols: u16::from_le_bytes([p[2], p[3]]),
            }),
            b'S' => Frame::Signal(int(p)?),
            _ => return Err(bad()),
        })
    }
}

/// Frames out of a byte stream that arrives in pieces.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// Adds bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, AttachError> {
        let Some(header) = self.buf.get(..5) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_FRAME {
            return Err(AttachError::Protocol(format!("a frame of {len} bytes")));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let frame = Frame::decode(self.buf[0], &self.buf[5..5 + len])?;
        self.buf.drain(..5 + len);
        Ok(Some(frame))
    }
}

/// Docker's `--detach-keys` format: comma-separated keys, each `ctrl-X` (X one of a–z, `@`,
/// `[`, `\`, `]`, `^`, `_`) or a single character. Returns the bytes the sequence is.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, AttachError> {
    let fail = |why: &str| AttachError::DetachKeys {
        keys: keys.to_string(),
        why: why.to_string(),
    };
    let mut seq = Vec::new();
    for key in keys.split(',') {
        let byte = match key.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => match c.as_bytes()[0].to_ascii_lowercase() {
                b @ b'a'..=b'z' => b - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(fail(&format!("{key:?} is not a control key"))),
            },
            _ if key.len() == 1 => key.as_bytes()[0],
            _ => {
                return Err(fail(&format!(
                    "{key:?} is neither ctrl-X nor one character"
                )));
            }
        };
        seq.push(byte);
    }
    Ok(seq)
}

/// Finds the detach sequence in typed input, across reads: what to pass on now, and whether
/// the sequence was completed. A partial match is held back (as docker holds a lone ctrl-p)
/// and passed on whole if the next byte does not continue it.
#[derive(Debug)]
pub struct DetachKeys {
    seq: Vec<u8>,
    matched: usize,
}

impl DetachKeys {
    pub fn new(seq: Vec<u8>) -> DetachKeys {
        DetachKeys { seq, matched: 0 }
    }

    /// `(bytes to send, detach now)`.
    pub fn scan(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.seq.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.seq[self.matched] {
                self.matched += 1;
                if self.matched == self.seq.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.seq[..self.matched]);
            self.matched = usize::from(b == self.seq[0]);
            if self.matched == 0 {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// `/proc/self/fd/N/NAME`: a path to `NAME` in the directory `dir` short enough for a socket
/// address (108 bytes), whatever the store's own path length.
fn short_path(dir: BorrowedFd<'_>, name: &str) -> String {
    format!("/proc/self/fd/{}/{name}", dir.as_raw_fd())
}

fn open_dir(dir: &Path) -> Result<OwnedFd, AttachError> {
    rustix::fs::open(
        dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| io_err(dir.display().to_string())(e.into()))
}

/// The monitor's side: the container directory's attach socket, made anew (a stale one from an
/// earlier run is replaced) and readable by its owner only.
pub fn listen(container_dir: &Path) -> Result<UnixListener, AttachError> {
    let dir = open_dir(container_dir)?;
    let path = short_path(dir.as_fd(), SOCKET);
    let what = || container_dir.join(SOCKET).display().to_string();
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(what())(e)),
        _ => {}
    }
    let listener = UnixListener::bind(&path).map_err(io_err(what()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(what()))?;
    listener.set_nonblocking(true).map_err(io_err(what()))?;
    Ok(listener)
}

/// What the monitor tells its log relay, on a socket pair.
#[derive(Debug)]
pub enum Control {
    /// The container runs with this id; the attach socket, when it could be made.
    Started(String, Option<OwnedFd>),
    /// The container's terminal (`-t`): the relay reads it, writes input to it, sizes it.
    Terminal(OwnedFd),
    /// How the container ended: the code `rsafe attach` returns.
    Exit(i32),
    /// The container has ended: take in what is left in its output, then answer (one
    /// datagram back), before the monitor records the exit.
    Drain,
}

/// The monitor's and the relay's ends of their control socket (datagrams: one message each).
pub fn control_pair() -> io::Result<(UnixStream, UnixStream)> {
    let (a, b) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((UnixStream::from(a), UnixStream::from(b)))
}

/// Sends `msg` to the relay.
pub fn send_control(to: &UnixStream, msg: Control) -> io::Result<()> {
    let (text, fd) = match msg {
        Control::Started(id, fd) => (format!("started {id}"), fd),
        Control::Terminal(fd) => ("terminal".to_string(), Some(fd)),
        Control::Exit(code) => (format!("exit {code}"), None),
        Control::Drain => ("drain".to_string(), None),
    };
    let fds: Vec<BorrowedFd<'_>> = fd.iter().map(|f| f.as_fd()).collect();
    fdpass::send_fds(to, text.as_bytes(), &fds)
}

/// Receives one message from the monitor; `None` at its end (or on a message it cannot be).
pub fn recv_control(from: &UnixStream) -> io::Result<Option<Control>> {
    let mut buf = [0u8; 256];
    let (len, fds) = fdpass::recv_fds(from, &mut buf, 1)?;
    let fd = fds.into_iter().next();
    let text = String::from_utf8_lossy(&buf[..len]).into_owned();
    Ok(match (text.split_once(' '), fd) {
        _ if len == 0 => None,
        (Some(("started", id)), fd) => Some(Control::Started(id.to_string(), fd)),
        (Some(("exit", code)), _) => code.parse().ok().map(Control::Exit),
        (None, Some(fd)) if text == "terminal" => Some(Control::Terminal(fd)),
        (None, None) if text == "drain" => Some(Control::Drain),
        _ => None,
    })
}

/// The relay's attach server: the listening socket, the attached clients, and where their
/// input goes.
#[derive(Debug)]
pub struct Hub {
    listener: Option<UnixListener>,
    clients: Vec<Client>,
    tty: bool,
    /// Input: the terminal's master with `-t` (given later, [`Hub::set_terminal`]), the stdin
    /// pipe with `-i` alone; with neither, what clients type is dropped.
    input: Option<OwnedFd>,
    stdin: bool,
    /// The monitor, which passes a signal on to the container as it does its own.
    monitor: Option<OwnedFd>,
    uid: u32,
}

#[derive(Debug)]
struct Client {
    stream: UnixStream,
    reader: FrameReader,
    queued: Vec<u8>,
}

impl Hub {
    /// A hub for a container with a terminal (`tty`) and stdin (`stdin`: the pipe's write end
    /// without a terminal). Signals go to this process's parent, the monitor.
    pub fn new(tty: bool, stdin: bool, stdin_pipe: Option<OwnedFd>) -> Hub {
        let monitor = rustix::process::getppid().and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        });
        Hub {
            listener: None,
            clients: Vec::new(),
            tty,
            input: stdin_pipe,
            stdin,
            monitor,
            uid: rustix::process::geteuid().as_raw(),
        }
    }

    /// Starts accepting clients on `listener`.
    pub fn listen(&mut self, listener: UnixListener) {
        self.listener = Some(listener);
    }

    /// The container's terminal: input goes there, and window sizes.
    pub fn set_terminal(&mut self, master: &OwnedFd) {
        if self.stdin {
            self.input = master.try_clone().ok();
        }
        self.tty = true;
    }

    /// Stops accepting clients (the container has ended).
    pub fn close_listener(&mut self) {
        self.listener = None;
    }

    /// Adds the hub's descriptors to `fds`; returns how many (for [`Hub::handle`]).
    pub fn poll_fds<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) -> usize {
        let start = fds.len();
        if let Some(l) = &self.listener {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
        }
        for c in &self.clients {
            let mut flags = PollFlags::POLLIN;
            if !c.queued.is_empty() {
                flags |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.stream.as_fd(), flags));
        }
        fds.len() - start
    }

    /// Acts on what poll found ready (`ready`: the revents of [`Hub::poll_fds`]'s entries).
    pub fn handle(&mut self, ready: &[PollFlags]) {
        let mut ready = ready.iter();
        if self.listener.is_some() && ready.next().is_some_and(|r| !r.is_empty()) {
            self.accept();
        }
        let mut gone = Vec::new();
        for i in 0..self.clients.len() {
            let Some(r) = ready.next() else { break };
            if r.is_empty() {
                continue;
            }
            let ok = (!r.contains(PollFlags::POLLOUT) || self.clients[i].flush())
                && (!r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                    || self.read_client(i));
            if !ok {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            self.clients.remove(i);
        }
    }

    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            // Only the container's owner: the socket's mode says so too.
            let peer =
                nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials);
            if peer.map(|c| c.uid()).ok() != Some(self.uid) || stream.set_nonblocking(true).is_err()
            {
                continue;
            }
            let mut client = Client {
                stream,
                reader: FrameReader::default(),
                queued: Vec::new(),
            };
            let hello = Frame::Hello {
                tty: self.tty,
                stdin: self.stdin,
            };
            client.queue(&hello.encode());
            if client.flush() {
                self.clients.push(client);
            }
        }
    }

    /// Reads what client `i` sent and acts on it; `false` once it is gone.
    fn read_client(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 16 * 1024];
        let n = match self.clients[i].stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return true;
            }
            Err(_) => return false,
        };
        self.clients[i].reader.push(&buf[..n]);
        loop {
            match self.clients[i].reader.next_frame() {
                Ok(Some(frame)) => self.act(frame),
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }

    fn act(&mut self, frame: Frame) {
        match frame {
            Frame::Input(bytes) => {
                if let Some(input) = &self.input {
                    write_all_fd(input.as_fd(), &bytes);
                }
            }
            Frame::Resize(size) if self.tty => {
                if let Some(t) = &self.input {
                    let _ = tty::set_window_size(t.as_fd(), size);
                }
            }
            Frame::Signal(n) => {
                let sig = Signal::try_from(n).ok().filter(|s| forwardable(*s));
                if let (Some(sig), Some(monitor)) = (sig, &self.monitor)
                    && let Some(sig) = rustix::process::Signal::from_named_raw(sig as i32)
                {
                    let _ = rustix::process::pidfd_send_signal(monitor, sig);
                }
            }
            _ => {}
        }
    }

    /// Copies output to every client.
    pub fn broadcast(&mut self, bytes: &[u8]) {
        if self.clients.is_empty() {
            return;
        }
        let frame = Frame::Output(bytes.to_vec()).encode();
        self.clients.retain_mut(|c| {
            c.queue(&frame);
            c.queued.len() <= MAX_QUEUED && c.flush()
        });
    }

    /// The container ended with `code` (`None`: unknown) and its output is all out: tells each
    /// client, waiting at most a few seconds for slow ones.
    pub fn finish(mut self, code: Option<i32>) {
        self.listener = None;
        if let Some(code) = code {
            let frame = Frame::Exit(code).encode();
            for c in &mut self.clients {
                c.queue(&frame);
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while self.clients.iter().any(|c| !c.queued.is_empty())
            && std::time::Instant::now() < deadline
        {
            let mut fds: Vec<PollFd<'_>> = self
                .clients
                .iter()
                .map(|c| PollFd::new(c.stream.as_fd(), PollFlags::POLLOUT))
                .collect();
            let _ = poll(&mut fds, PollTimeout::from(100u16));
            drop(fds);
            self.clients.retain_mut(|c| c.flush());
        }
    }
}

impl Client {
    fn queue(&mut self, bytes: &[u8]) {
        self.queued.extend_from_slice(bytes);
    }

    /// Writes what it can of the queue; `false` if the client is gone.
    fn flush(&mut self) -> bool {
        while !self.queued.is_empty() {
            match (&self.stream).write(&self.queued) {
                Ok(0) => return false,
                Ok(n) => {
                    self.queued.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

/// The signals a client may have passed on: those the monitor forwards of its own.
fn forwardable(sig: Signal) -> bool {
    matches!(
        sig,
        Signal::SIGHUP
            | Signal::SIGINT
            | Signal::SIGQUIT
            | Signal::SIGTERM
            | Signal::SIGUSR1
            | Signal::SIGUSR2
    )
}

/// Writes all of `bytes` to `fd` (a terminal or pipe), giving up on an error.
fn write_all_fd(fd: BorrowedFd<'_>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(1000u16));
            }
            Err(_) => return,
        }
    }
}

/// How `rsafe attach` attaches.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// The detach sequence's bytes (empty: none).
    pub detach_keys: Vec<u8>,
    /// `--no-stdin`: output only.
    pub no_stdin: bool,
    /// `--sig-proxy`: signals rsafe receives go to the container (without a terminal only, as
    /// in docker: with one, ctrl-c is a byte the terminal turns into SIGINT).
    pub sig_proxy: bool,
}

/// How an attachment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container ended with this code.
    Exited(i32),
    /// The user typed the detach keys; the container runs on.
    Detached,
}

/// The client: connects to the attach socket in `container_dir` and relays this process's
/// stdin and stdout until the container ends or the user detaches.
pub fn attach(container_dir: &Path, opts: &AttachOptions) -> Result<Ended, AttachError> {
    let dir = open_dir(container_dir)?;
    let what = || container_dir.join(SOCKET).display().to_string();
    let stream = UnixStream::connect(short_path(dir.as_fd(), SOCKET)).map_err(io_err(what()))?;
    let mut reader = FrameReader::default();
    let (tty, stdin) = loop {
        match reader.next_frame()? {
            Some(Frame::Hello { tty, stdin }) => break (tty, stdin),
            Some(other) => {
                return Err(AttachError::Protocol(format!("{other:?} before hello")));
            }
            None => read_into(&stream, &mut reader, what)?,
        }
    };
    let relay_stdin = stdin && !opts.no_stdin;
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGWINCH);
    if opts.sig_proxy && !tty {
        for s in super::process::PASSED_ON {
            signals.add(s);
        }
    }
    signals
        .thread_block()
        .map_err(|e| io_err("block signals")(e.into()))?;
    let signalfd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| io_err("signalfd")(e.into()))?;
    let _raw = if tty && relay_stdin {
        RawMode::enter().map_err(io_err("raw mode"))?
    } else {
        None
    };
    let mut client = ClientLoop {
        stream,
        reader,
        signals: signalfd,
        tty,
        stdin_open: relay_stdin,
        keys: DetachKeys::new(opts.detach_keys.clone()),
    };
    client.resize()?;
    client.run(what)
}

fn read_into(
    mut stream: &UnixStream,
    reader: &mut FrameReader,
    what: impl Fn() -> String,
) -> Result<(), AttachError> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                return Err(AttachError::Protocol(
                    "the container's relay closed it without a word (did the container end?)"
                        .to_string(),
                ));
            }
            Ok(n) => {
                reader.push(&buf[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(what())(e)),
        }
    }
}

/// The client's poll loop over the socket, stdin and signals.
struct ClientLoop {
    stream: UnixStream,
    reader: FrameReader,
    signals: SignalFd,
    tty: bool,
    stdin_open: bool,
    keys: DetachKeys,
}

impl ClientLoop {
    fn send(&self, frame: &Frame) -> Result<(), AttachError> {
        (&self.stream)
            .write_all(&frame.encode())
            .map_err(io_err("the attach socket"))
    }

    fn resize(&self) -> Result<(), AttachError> {
        let size = tty::window_size(io::stdin().as_fd())
            .or_else(|| tty::window_size(io::stdout().as_fd()));
        match (self.tty, size) {
            (true, Some(size)) => self.send(&Frame::Resize(size)),
            _ => Ok(()),
        }
    }

    fn run(&mut self, what: impl Fn() -> String) -> Result<Ended, AttachError> {
        let stdin = io::stdin();
        loop {
            let mut fds = vec![
                PollFd::new(self.stream.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            ];
            if self.stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(io_err("poll")(e.into())),
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            if ready[0] {
                read_into(&self.stream, &mut self.reader, &what)?;
                if let Some(code) = self.output()? {
                    return Ok(Ended::Exited(code));
                }
            }
            if ready[1] {
                self.signals()?;
            }
            if ready.get(2) == Some(&true) && self.input()? {
                return Ok(Ended::Detached);
            }
        }
    }

    /// Prints the output frames that came; the exit code once the container has ended.
    fn output(&mut self) -> Result<Option<i32>, AttachError> {
        let mut out = io::stdout().lock();
        while let Some(frame) = self.reader.next_frame()? {
            match frame {
                Frame::Output(bytes) => {
                    // A closed stdout (`rsafe attach x | head`) only stops the printing.
                    let _ = out.write_all(&bytes).and_then(|()| out.flush());
                }
                Frame::Exit(code) => return Ok(Some(code)),
                other => {
                    return Err(AttachError::Protocol(format!("unexpected {other:?}")));
                }
            }
        }
        Ok(None)
    }

    fn signals(&mut self) -> Result<(), AttachError> {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGWINCH) => self.resize()?,
                Ok(sig) => self.send(&Frame::Signal(sig as i32))?,
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Relays what was typed; `true` once the detach keys were.
    fn input(&mut self) -> Result<bool, AttachError> {
        let mut buf = [0u8; 16 * 1024];
        let n = match io::stdin().lock().read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(io_err("stdin")(e)),
        };
        if n == 0 {
            // The container's stdin stays open for the next client (docker's default for a
            // container started with -d).
            self.stdin_open = false;
            return Ok(false);
        }
        let (send, detach) = self.keys.scan(&buf[..n]);
        if !send.is_empty() {
            self.send(&Frame::Input(send))?;
        }
        Ok(detach)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_the_wire_in_pieces() {
        let frames = [
            Frame::Hello {
                tty: true,
                stdin: false,
            },
            Frame::Output(b"hi\r\n".to_vec()),
            Frame::Resize(WinSize { rows: 24, cols: 80 }),
            Frame::Signal(15),
            Frame::Input(Vec::new()),
            Frame::Exit(-3),
        ];
        let wire: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let mut r = FrameReader::default();
        let mut got = Vec::new();
        for b in wire {
            r.push(&[b]);
            while let Some(f) = r.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn hostile_frames_are_refused() {
        let mut r = FrameReader::default();
        r.push(&[b'O', 0xff, 0xff, 0xff, 0x7f]);
        assert!(r.next_frame().is_err(), "a 2 GiB frame");
        let mut r = FrameReader::default();
        r.push(&[b'Z', 0, 0, 0, 0]);
        assert!(r.next_frame().is_err(), "an unknown tag");
        let mut r = FrameReader::default();
        r.push(&[b'X', 1, 0, 0, 0, 7]);
        assert!(r.next_frame().is_err(), "a one-byte exit code");
    }

    #[test]
    fn detach_keys_parse_as_docker_documents_them() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), [1, b'x']);
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_").unwrap(),
            [0, 27, 28, 29, 30, 31]
        );
        assert_eq!(parse_detach_keys("ctrl-P").unwrap(), [16]);
        for bad in ["ctrl-1", "ctrl-", "ab", "", "ctrl-p,,ctrl-q"] {
            assert!(parse_detach_keys(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn detach_keys_are_found_across_reads_and_held_only_while_they_match() {
        let mut k = DetachKeys::new(vec![16, 17]);
        assert_eq!(k.scan(b"ls\r"), (b"ls\r".to_vec(), false));
        // A lone ctrl-p waits for the next byte.
        assert_eq!(k.scan(&[16]), (vec![], false));
        // Not ctrl-q: both go on.
        assert_eq!(k.scan(b"a"), (vec![16, b'a'], false));
        // ctrl-p ctrl-p ctrl-q: the first goes on, the rest detaches.
        assert_eq!(k.scan(&[16, 16, 17]), (vec![16], true));
        let mut k = DetachKeys::new(vec![16, 17]);
        assert_eq!(k.scan(&[b'x', 16]), (vec![b'x'], false));
        assert_eq!(k.scan(&[17]), (vec![], true));
        let mut none = DetachKeys::new(Vec::new());
        assert_eq!(none.scan(&[16, 17]), (vec![16, 17], false));
    }

    #[test]
    fn control_messages_carry_their_descriptor() {
        let (a, b) = control_pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        send_control(&a, Control::Terminal(OwnedFd::from(file))).unwrap();
        send_control(&a, Control::Started("ab12".into(), None)).unwrap();
        send_control(&a, Control::Exit(3)).unwrap();
        assert!(matches!(
            recv_control(&b).unwrap(),
            Some(Control::Terminal(_))
        ));
        assert!(matches!(
            recv_control(&b).unwrap(),
            Some(Control::Started(id, None)) if id == "ab12"
        ));
        assert!(matches!(recv_control(&b).unwrap(), Some(Control::Exit(3))));
        drop(a);
        assert!(recv_control(&b).unwrap().is_none());
    }
}
