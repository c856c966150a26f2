//! The sync channel between rsafe (the parent, on the host) and the container's processes.
//!
//! A `SOCK_SEQPACKET` socket pair: every message arrives whole, descriptors can travel with it
//! (`SCM_RIGHTS`), and end-of-file tells the parent that the last container-side holder is gone.
//! That last point carries the protocol: the container end is close-on-exec, so once init has
//! closed its copy and the workload's `execve` succeeded, the parent reads EOF — "started".
//!
//! ```text
//! parent                                   container (init, then workload)
//!   clone ───────────────────────────────▶ waits for Go
//!   writes id maps,
//!   clones host trees (root only)
//!   Go [+ layer/volume mounts] ──────────▶ mounts, pivot_root
//!   compiles the seccomp filter
//!   Seccomp{filter} ─────────────────────▶ (kept for the workload)
//!   moves the child into its cgroup
//!   InCgroup ────────────────────────────▶ cgroup namespace, forks the workload
//!                          ◀──────────────── Terminal [+ pty master]     (with -t)
//!                          ◀──────────────── Learning [+ listener]       (with --learn)
//!                          ◀──────────────── Confined{...}               (what was enforced)
//!                          ◀──────────────── Failed{code, message}       (on any error)
//!   EOF = workload exec'd  ◀──────────────── (close-on-exec at execve)
//! ```

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use std::path::PathBuf;

use super::cgroups::Fallback;
use super::fdpass::{self, RecvError};
use super::seccomp::CompiledFilter;
use nix::sys::socket::{SockFlag, SockType, socketpair};

/// Messages are JSON documents; anything longer is a protocol error. The largest is a seccomp
/// filter at the kernel's limit (two programs of 4096 instructions, base64: ~110 KiB); a
/// datagram must also fit the socket's send buffer (`net.core.wmem_default`, 208 KiB).
const MAX_MESSAGE: usize = 160 * 1024;
/// No message carries more descriptors than this (the kernel's SCM_MAX_FD is 253).
pub const MAX_FDS: usize = 250;

/// What travels over the channel.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Message {
    /// Parent → child: the id maps are written; go on. When the parent is root it made the
    /// mounts of host paths itself (it can reach every path; the child, an unprivileged host
    /// uid, may not): `lowers` detached trees of the lower layers, bottom first, then `volumes`
    /// trees of the bind mounts, in order, ride along as descriptors. After them come the
    /// `tasks` files of the container's v1 cgroups, named by `cgroup_tasks`, for the child to
    /// join them itself ([`crate::runtime::cgroups::SelfJoin`]). `in_cgroup` says whether an
    /// [`Message::InCgroup`] follows (v2); `fallback` carries the rlimits standing in for
    /// limits no cgroup could take.
    Go {
        lowers: usize,
        volumes: usize,
        cgroup_tasks: Vec<PathBuf>,
        in_cgroup: bool,
        fallback: Option<Fallback>,
        /// On a named network that reaches the outside: `/etc/resolv.conf` names the host's
        /// resolvers (those not on its loopback).
        #[serde(default)]
        outbound: bool,
    },
    /// Parent → child: the child is now in the container's cgroup. Moving a process into a
    /// cgroup can take milliseconds (an RCU grace period), so the parent does it while the
    /// child builds the root filesystem; the child waits for this before it enters its cgroup
    /// namespace (rooted at its cgroup *then*) and starts the workload.
    InCgroup,
    /// Parent → child: the seccomp filter for the workload. libseccomp takes milliseconds to
    /// compile a profile, so the parent does it while the child builds the root filesystem.
    Seccomp { filter: Box<CompiledFilter> },
    /// Child → parent: the master side of the container's terminal (with -t), as a descriptor.
    Terminal,
    /// Child → parent (`rsafe run --learn`): the learning filter's notification listener, as
    /// a descriptor ([`crate::runtime::learn`]), and the program about to be executed (its
    /// path cannot always be read from the caller's memory: before `execve` that memory is
    /// rsafe's own, not dumpable).
    Learning { program: PathBuf },
    /// Child → parent: the confinement applied to the workload, one line per mechanism (for
    /// `--verbose`), and what fell short of the policy (always shown).
    Confined {
        lines: Vec<String>,
        warnings: Vec<String>,
    },
    /// Parent → child (OCI runtime `create`): the id maps are written; go on. `trees`
    /// detached trees ride along when the parent is root (the bundle's root filesystem, then
    /// its bind mounts in order), then the console socket when `console`.
    BundleGo { trees: usize, console: bool },
    /// Child → parent (OCI runtime `create`): set up, waiting for `start`.
    Ready,
    /// Child → parent: the container could not be started; `code` is the exit code to use (125
    /// rsafe's failure, 126 cannot execute, 127 not found).
    Failed { code: i32, message: String },
}

/// What can go wrong on the channel.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("sync channel: {0}")]
    Io(#[from] io::Error),
    #[error("sync channel: malformed message: {0}")]
    Malformed(String),
    #[error("sync channel: the other side closed it while {0}")]
    Closed(&'static str),
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Creates the two ends: `(parent, child)`. Both are close-on-exec.
pub fn pair() -> Result<(Channel, Channel), ChannelError> {
    let (a, b) = socketpair(
        nix::sys::socket::AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Sends `msg` with `fds` attached.
    pub fn send(&self, msg: &Message, fds: &[BorrowedFd<'_>]) -> Result<(), ChannelError> {
        let bytes = serde_json::to_vec(msg).map_err(|e| ChannelError::Malformed(e.to_string()))?;
        fdpass::send_fds(&self.fd, &bytes, fds)?;
        Ok(())
    }

    /// Receives one message and the descriptors attached to it; `None` at end-of-file.
    pub fn recv(&self) -> Result<Option<(Message, Vec<OwnedFd>)>, ChannelError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let (len, fds) = loop {
            match fdpass::recv_fds(&self.fd, &mut buf, MAX_FDS) {
                Ok(got) => break got,
                // The other side closed with a message of ours unread (a child that failed
                // before reading InCgroup). The kernel reports that once, ahead of what the
                // other side had sent; reading again returns that, then end-of-file.
                Err(RecvError::Io(e)) if e.raw_os_error() == Some(libc::ECONNRESET) => continue,
                Err(RecvError::TooLong(_)) => {
                    return Err(ChannelError::Malformed("message too long".into()));
                }
                Err(e) => return Err(ChannelError::Io(e.into())),
            }
        };
        if len == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..len])
            .map_err(|e| ChannelError::Malformed(e.to_string()))?;
        Ok(Some((msg, fds)))
    }

    /// Receives one message; end-of-file is an error naming what was awaited.
    pub fn expect(&self, awaiting: &'static str) -> Result<(Message, Vec<OwnedFd>), ChannelError> {
        self.recv()?.ok_or(ChannelError::Closed(awaiting))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Channel> for OwnedFd {
    fn from(c: Channel) -> OwnedFd {
        c.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_descriptors_round_trip() {
        let (a, b) = pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        let go = Message::Go {
            lowers: 1,
            volumes: 1,
            cgroup_tasks: Vec::new(),
            in_cgroup: false,
            fallback: None,
            outbound: true,
        };
        a.send(&go, &[file.as_fd(), file.as_fd()]).unwrap();
        let (msg, fds) = b.recv().unwrap().unwrap();
        assert_eq!(msg, go);
        assert_eq!(fds.len(), 2);
        b.send(
            &Message::Failed {
                code: 127,
                message: "x: not found".into(),
            },
            &[],
        )
        .unwrap();
        assert!(matches!(
            a.recv().unwrap(),
            Some((Message::Failed { code: 127, .. }, f)) if f.is_empty()
        ));
        // Closing with a message unread still reads as the end, after what was sent.
        a.send(&Message::Terminal, &[]).unwrap();
        b.send(&Message::Terminal, &[]).unwrap();
        drop(b);
        assert!(matches!(a.recv().unwrap(), Some((Message::Terminal, _))));
        assert!(a.recv().unwrap().is_none());
        assert!(matches!(
            a.expect("testing"),
            Err(ChannelError::Closed("testing"))
        ));
    }
}
