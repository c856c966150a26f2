//! Descriptors handed to another process over a UNIX socket (`SCM_RIGHTS`), one way for every
//! place of the runner that does it: the sync channel, the attach relay's control socket, the
//! console socket, the seccomp agent, the learning run's exec hook and the name server's
//! helper. Each keeps its own message format; what they share is here, so each gets the same
//! care:
//!
//! - a received descriptor is close-on-exec from the start (`MSG_CMSG_CLOEXEC`): a workload
//!   started by a later `execve` of this process never inherits it;
//! - more descriptors than the receiver takes (`MSG_CTRUNC`, or the cmsg padding's room for a
//!   few extra), or a datagram longer than its buffer (`MSG_TRUNC`), is an error, and the
//!   descriptors that did arrive are closed, not leaked;
//! - `EINTR` is retried on both sides, and on a stream socket a payload the kernel takes in
//!   pieces is sent to its end (the descriptors travel with the first piece);
//! - `MSG_NOSIGNAL`: a peer that is gone is `EPIPE`, never a SIGPIPE that kills the sender.
//!
//! Only `sendmsg` runs on the sending side, and without allocating: a process whose seccomp
//! filter allows that call alone (the learning filter, a denial-reporting one before its
//! listener is handed over) can still send.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The most descriptors one message can carry: the kernel's `SCM_MAX_FD`.
pub const MAX_FDS: usize = 253;

/// Room for the control message of [`MAX_FDS`] descriptors (with the alignment padding rustix
/// asks for); on the stack, a little over 1 KiB.
const SPACE: usize = rustix::cmsg_space!(ScmRights(MAX_FDS));

/// Why a message could not be received whole.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A datagram (`SOCK_SEQPACKET`) longer than the buffer: its tail is lost.
    #[error("a message longer than {0} bytes")]
    TooLong(usize),
    /// More descriptors came with the message than the receiver takes.
    #[error("more than {0} descriptors with one message")]
    TooManyFds(usize),
}

impl From<RecvError> for io::Error {
    fn from(e: RecvError) -> io::Error {
        match e {
            RecvError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// Sends `bytes` with `fds` attached on `sock`. On `SOCK_SEQPACKET` that is one message (the
/// kernel takes it whole or not at all); on `SOCK_STREAM` the bytes may go in several pieces,
/// the descriptors with the first. Descriptors need at least one byte to travel with (a
/// stream drops them with an empty write, and an empty datagram reads as end-of-file).
pub fn send_fds(sock: impl AsFd, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if bytes.is_empty() && !fds.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "descriptors need at least one byte of message to travel with",
        ));
    }
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} descriptors in one message, more than {MAX_FDS}",
                fds.len()
            ),
        ));
    }
    let mut space = [MaybeUninit::<u8>::uninit(); SPACE];
    let mut rights = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !rights.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other(
            "no room for the descriptors' control message",
        ));
    }
    let sock = sock.as_fd();
    send_all(bytes, |rest, first| {
        let mut none = SendAncillaryBuffer::default();
        let control = if first { &mut rights } else { &mut none };
        send_once(sock, rest, control)
    })
}

/// Sends all of `bytes` through `send` (`rest`, whether it is the first call: the one that
/// carries the descriptors); a call that takes nothing of a non-empty rest is an error.
fn send_all(
    bytes: &[u8],
    mut send: impl FnMut(&[u8], bool) -> io::Result<usize>,
) -> io::Result<()> {
    let mut sent = send(bytes, true)?;
    while sent < bytes.len() {
        match send(&bytes[sent..], false)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => sent += n,
        }
    }
    Ok(())
}

/// One `sendmsg`, retried on `EINTR` (which the kernel reports only when nothing was sent).
fn send_once(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    control: &mut SendAncillaryBuffer<'_, '_, '_>,
) -> io::Result<usize> {
    loop {
        match rustix::net::sendmsg(sock, &[IoSlice::new(bytes)], control, SendFlags::NOSIGNAL) {
            Err(Errno::INTR) => continue,
            other => return Ok(other?),
        }
    }
}

/// Receives one message into `buf` and the descriptors that came with it, at most `max_fds`
/// of them (more is [`RecvError::TooManyFds`], with those that arrived closed): `(0, [])` at
/// end-of-file. Each descriptor is close-on-exec. On a stream socket a message is what one
/// `recvmsg` returns: the caller reassembles its own framing.
pub fn recv_fds(
    sock: impl AsFd,
    buf: &mut [u8],
    max_fds: usize,
) -> Result<(usize, Vec<OwnedFd>), RecvError> {
    let max_fds = max_fds.min(MAX_FDS);
    let mut space = [MaybeUninit::<u8>::uninit(); SPACE];
    let room = rustix::cmsg_space!(ScmRights(max_fds));
    let mut control = RecvAncillaryBuffer::new(&mut space[..room]);
    let got = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match rustix::net::recvmsg(&sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Err(Errno::INTR) => continue,
            other => break other.map_err(io::Error::from)?,
        }
    };
    let fds: Vec<OwnedFd> = control
        .drain()
        .filter_map(|message| match message {
            RecvAncillaryMessage::ScmRights(fds) => Some(fds),
            _ => None,
        })
        .flatten()
        .collect();
    // The buffer's alignment padding can hold a few more than asked for: those count too.
    if got.flags.contains(ReturnFlags::CTRUNC) || fds.len() > max_fds {
        return Err(RecvError::TooManyFds(max_fds));
    }
    if got.flags.contains(ReturnFlags::TRUNC) {
        return Err(RecvError::TooLong(buf.len()));
    }
    Ok((got.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use rustix::net::{AddressFamily, SocketFlags, SocketType};

    fn seqpacket() -> (OwnedFd, OwnedFd) {
        rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap()
    }

    /// `(device, inode)` of the file behind `fd`: the same file whoever's descriptor it is.
    fn identity(fd: impl AsFd) -> (u64, u64) {
        let stat = rustix::fs::fstat(fd).unwrap();
        (stat.st_dev, stat.st_ino)
    }

    /// A pipe whose write end is passed around: the read end sees end-of-file only once every
    /// copy of the write end, here and received, is closed.
    fn pipe() -> (std::fs::File, OwnedFd) {
        use nix::fcntl::OFlag;
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).unwrap();
        (std::fs::File::from(r), w)
    }

    fn all_closed(read_end: &mut std::fs::File) -> bool {
        matches!(read_end.read(&mut [0u8; 1]), Ok(0))
    }

    #[test]
    fn bytes_alone_round_trip() {
        let (a, b) = seqpacket();
        send_fds(&a, b"hello", &[]).unwrap();
        let mut buf = [0u8; 16];
        let (n, fds) = recv_fds(&b, &mut buf, 4).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert!(fds.is_empty());
    }

    #[test]
    fn one_descriptor_arrives_close_on_exec() {
        let (a, b) = seqpacket();
        // Not close-on-exec on this side: the flag on the received one is the receiver's.
        let file = std::fs::File::open("/dev/null").unwrap();
        rustix::io::fcntl_setfd(&file, rustix::io::FdFlags::empty()).unwrap();
        send_fds(&a, b"t", &[file.as_fd()]).unwrap();
        let mut buf = [0u8; 4];
        let (n, fds) = recv_fds(&b, &mut buf, 1).unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"t"[..], 1));
        assert_ne!(fds[0].as_raw_fd(), file.as_raw_fd());
        assert_eq!(identity(&fds[0]), identity(&file));
        let flags = rustix::io::fcntl_getfd(&fds[0]).unwrap();
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC), "{flags:?}");
    }

    #[test]
    fn several_descriptors_keep_their_order() {
        let (a, b) = seqpacket();
        let files: Vec<std::fs::File> = ["/dev/null", "/dev/zero", "/proc/self/stat"]
            .iter()
            .map(|p| std::fs::File::open(p).unwrap())
            .collect();
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
        send_fds(&a, b"three", &borrowed).unwrap();
        let (n, fds) = recv_fds(&b, &mut [0u8; 8], 3).unwrap();
        assert_eq!(n, 5);
        let got: Vec<_> = fds.iter().map(identity).collect();
        let sent: Vec<_> = files.iter().map(identity).collect();
        assert_eq!(got, sent);
    }

    #[test]
    fn the_kernel_limit_is_the_limit() {
        let (a, b) = seqpacket();
        let file = std::fs::File::open("/dev/null").unwrap();
        let many = vec![file.as_fd(); MAX_FDS];
        send_fds(&a, b"m", &many).unwrap();
        let (_, fds) = recv_fds(&b, &mut [0u8; 1], MAX_FDS).unwrap();
        assert_eq!(fds.len(), MAX_FDS);
        let too_many = vec![file.as_fd(); MAX_FDS + 1];
        let err = send_fds(&a, b"m", &too_many).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }

    #[test]
    fn more_descriptors_than_taken_is_an_error_and_closes_them() {
        // 2 for 1 fits the buffer's padding; 5 for 1 does not (MSG_CTRUNC): both refused.
        for sent in [2, 5] {
            let (a, b) = seqpacket();
            let (mut read_end, write_end) = pipe();
            let copies = vec![write_end.as_fd(); sent];
            send_fds(&a, b"x", &copies).unwrap();
            drop(write_end);
            let err = recv_fds(&b, &mut [0u8; 4], 1).unwrap_err();
            assert!(matches!(err, RecvError::TooManyFds(1)), "{sent}: {err}");
            assert!(
                all_closed(&mut read_end),
                "{sent}: a received copy is still open"
            );
        }
    }

    #[test]
    fn a_datagram_longer_than_the_buffer_is_an_error_and_closes_its_descriptor() {
        let (a, b) = seqpacket();
        let (mut read_end, write_end) = pipe();
        send_fds(&a, b"longer than four", &[write_end.as_fd()]).unwrap();
        drop(write_end);
        let err = recv_fds(&b, &mut [0u8; 4], 1).unwrap_err();
        assert!(matches!(err, RecvError::TooLong(4)), "{err}");
        assert!(all_closed(&mut read_end));
        let io: io::Error = err.into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_closed_peer_reads_as_end_of_file_and_refuses_sends() {
        let (a, b) = seqpacket();
        drop(a);
        let (n, fds) = recv_fds(&b, &mut [0u8; 4], 1).unwrap();
        assert_eq!((n, fds.len()), (0, 0));
        // MSG_NOSIGNAL: EPIPE, not a SIGPIPE that would end this test binary.
        let file = std::fs::File::open("/dev/null").unwrap();
        let err = send_fds(&b, b"x", &[file.as_fd()]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    }

    #[test]
    fn descriptors_need_a_byte_to_travel_with() {
        let (a, _b) = seqpacket();
        let file = std::fs::File::open("/dev/null").unwrap();
        let err = send_fds(&a, b"", &[file.as_fd()]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }

    #[test]
    fn a_stream_gets_all_of_a_payload_larger_than_its_buffer() {
        let (a, b) = UnixStream::pair().unwrap();
        rustix::net::sockopt::set_socket_send_buffer_size(&a, 4096).unwrap();
        let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let file = std::fs::File::open("/dev/null").unwrap();
        let expected = payload.clone();
        let reader = std::thread::spawn(move || {
            let mut first = [0u8; 4096];
            let (n, fds) = recv_fds(&b, &mut first, 1).unwrap();
            let mut got = first[..n].to_vec();
            (&b).read_to_end(&mut got).unwrap();
            (got, fds)
        });
        send_fds(&a, &payload, &[file.as_fd()]).unwrap();
        drop(a);
        let (got, fds) = reader.join().unwrap();
        assert!(
            got == expected,
            "{} bytes of {} arrived",
            got.len(),
            expected.len()
        );
        assert_eq!(
            fds.iter().map(identity).collect::<Vec<_>>(),
            [identity(&file)]
        );
    }

    #[test]
    fn a_short_write_sends_the_rest_without_the_descriptors() {
        let mut calls: Vec<(Vec<u8>, bool)> = Vec::new();
        send_all(b"0123456789", |rest, first| {
            let n = rest.len().min(4);
            calls.push((rest[..n].to_vec(), first));
            Ok(n)
        })
        .unwrap();
        let expected: Vec<(Vec<u8>, bool)> = vec![
            (b"0123".to_vec(), true),
            (b"4567".to_vec(), false),
            (b"89".to_vec(), false),
        ];
        assert_eq!(calls, expected);
        let err = send_all(b"01", |_, first| Ok(usize::from(first))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
    }
}
