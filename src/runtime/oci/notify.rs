//! `SCMP_ACT_NOTIFY` (runtime-spec `linux.seccomp`, "seccomp user notification"): the
//! bundle's notified syscalls wait for an agent, which receives the filter's listener over the
//! UNIX socket at `listenerPath`, with the container process state as payload.
//!
//! ```text
//! container's first process                              agent (listenerPath)
//! before pivot_root: connect(listenerPath) ────────────▶ accept
//! after start, before the workload's last steps:
//!   seccomp(NEW_LISTENER, notify filter)
//!   sendmsg(state JSON, SCM_RIGHTS listener) ───────────▶ recvmsg: fd + state, closes
//!   close; confinement (rsafe's filter, the bundle's)
//!   execve … mkdir() ─ waits ───────────────────────────▶ NOTIF_RECV, NOTIF_SEND (errno, value)
//!
//! rsafe-runtime exec (host)          exec'd process (container)         agent
//! connect(listenerPath) ───────────────────────────────────────────────▶ accept
//! socket pair; join::start ────────▶ seccomp(NEW_LISTENER, notify filter)
//! recvmsg: listener ◀──────────────── sendmsg(SCM_RIGHTS listener)
//! sendmsg(state JSON, listener) ───────────────────────────────────────▶ recvmsg: fd + state
//!                                    confinement, execve … mkdir() ─ waits ▶ NOTIF_SEND
//! ```
//!
//! The bundle's profile allows the notified calls ([`super::bundle`] rewrites their rules) and
//! this filter of their own notifies them; the kernel keeps the stricter verdict of all the
//! filters, so a call rsafe's floor denies stays denied and never reaches the agent. An
//! `exec`'d process's listener goes to the agent too, as runc's and crun's: it is handed back
//! to `rsafe-runtime exec` ([`Relay`]), which alone knows the process's host pid for the
//! state, and which is on the host, where `listenerPath` is.

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use super::bundle::SeccompNotify;
use crate::runtime::fdpass;

const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const RET_USER_NOTIF: u32 = libc::SECCOMP_RET_USER_NOTIF;

/// The connection to the agent and what it gets with the listener.
pub(super) struct Agent {
    socket: OwnedFd,
    payload: Vec<u8>,
}

/// Connects to the agent (with the caller's ids, before `pivot_root`: the socket is a host
/// path) and prepares the container process state: `pid` as the runtime sees it.
pub(super) fn connect(notify: &SeccompNotify, state: &str, pid: i32) -> io::Result<Agent> {
    let socket = std::os::unix::net::UnixStream::connect(&notify.listener_path)?;
    Ok(Agent {
        socket: socket.into(),
        payload: payload(notify, state, pid),
    })
}

/// The runtime-spec "container process state" an agent gets with a listener: the process's
/// `pid` (as the runtime sees it) and the container's `state`.
fn payload(notify: &SeccompNotify, state: &str, pid: i32) -> Vec<u8> {
    serde_json::json!({
        "ociVersion": super::state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": notify.metadata,
        "state": serde_json::from_str::<serde_json::Value>(state).unwrap_or_default(),
    })
    .to_string()
    .into_bytes()
}

/// Installs the notify filter for `syscalls`; with an agent, with a listener sent to it
/// (then closed here: the agent holds the only copy).
pub(super) fn install(syscalls: &[String], agent: Option<Agent>) -> io::Result<()> {
    let Some(agent) = agent else {
        return install_filter(syscalls, false).map(drop);
    };
    let listener = install_filter(syscalls, true)?
        .ok_or_else(|| io::Error::other("seccomp returned no listener"))?;
    send_listener(&agent.socket, &agent.payload, &listener)
}

/// Installs the filter; with `listener`, returns its listener.
fn install_filter(syscalls: &[String], listener: bool) -> io::Result<Option<OwnedFd>> {
    let program = program(syscalls);
    let flags = match listener {
        true => libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32,
        false => 0,
    };
    let rc = crate::runtime::seccomp::install(&program, flags);
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if !listener {
        return Ok(None);
    }
    let fd = i32::try_from(rc).map_err(|_| io::Error::other("seccomp returned no listener"))?;
    // SAFETY: with NEW_LISTENER, seccomp(2) returned a new descriptor owned by nothing else.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `payload` with `listener` attached (SCM_RIGHTS) on `socket`, all of it however many
/// pieces the stream takes it in.
fn send_listener(socket: &OwnedFd, payload: &[u8], listener: &OwnedFd) -> io::Result<()> {
    fdpass::send_fds(socket, payload, &[listener.as_fd()])
}

/// An `exec`'d process's listener on its way to the agent: the process sends it back on a
/// socket pair ([`Relay::install`], in the process), and the caller, which knows the
/// process's host pid, passes it on with the state ([`Relay::forward`]). runc's parent does
/// the same (`procSeccomp`).
pub(super) struct Relay {
    syscalls: Vec<String>,
    /// Connected before the process is started: an agent that is not there fails `exec`
    /// before anything runs in the container.
    agent: OwnedFd,
    /// The process's end (close-on-exec: gone at its `execve`, or when it fails).
    process_end: Option<OwnedFd>,
    caller_end: OwnedFd,
}

impl Relay {
    /// Connects to the agent (from the host, where `listenerPath` is) and makes the pair.
    pub(super) fn connect(notify: &SeccompNotify) -> io::Result<Relay> {
        let agent = std::os::unix::net::UnixStream::connect(&notify.listener_path)?;
        let (process_end, caller_end) = std::os::unix::net::UnixStream::pair()?;
        Ok(Relay {
            syscalls: notify.syscalls.clone(),
            agent: agent.into(),
            process_end: Some(process_end.into()),
            caller_end: caller_end.into(),
        })
    }

    /// In the exec'd process: the notify filter, its listener sent back to the caller.
    pub(super) fn install(&self) -> io::Result<()> {
        let end = self
            .process_end
            .as_ref()
            .ok_or_else(|| io::Error::other("the listener's way back is closed"))?;
        let listener = install_filter(&self.syscalls, true)?
            .ok_or_else(|| io::Error::other("seccomp returned no listener"))?;
        send_listener(end, b"l", &listener)
    }

    /// In the caller once the process is started: its listener, received, goes to the agent
    /// with `state` (the container's) and the process's `pid`. `Ok(false)`: the process ended
    /// before it had a listener (its failure comes on the join channel).
    pub(super) fn forward(
        mut self,
        notify: &SeccompNotify,
        state: &str,
        pid: i32,
    ) -> io::Result<bool> {
        // Only the process's copy is left: end-of-file once it is gone.
        drop(self.process_end.take());
        let Some(listener) = receive_fd(&self.caller_end)? else {
            return Ok(false);
        };
        send_listener(&self.agent, &payload(notify, state, pid), &listener)?;
        Ok(true)
    }
}

/// The descriptor of the next message on `socket`; `None` at end-of-file.
fn receive_fd(socket: &OwnedFd) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let (_, fds) = fdpass::recv_fds(socket, &mut byte, 1)?;
    Ok(fds.into_iter().next())
}

/// The filter: x86_64 calls of `syscalls` notify, everything else passes to the other
/// filters (which judge the architecture).
fn program(syscalls: &[String]) -> Vec<libc::sock_filter> {
    let numbers: Vec<u32> = syscalls
        .iter()
        .filter_map(|n| {
            libseccomp::ScmpSyscall::from_name_by_arch(n, libseccomp::ScmpArch::X8664).ok()
        })
        .filter_map(|s| u32::try_from(s.as_raw_syscall()).ok())
        .collect();
    let n = numbers.len();
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: usize, jf: usize| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        // Bounded by MAX_NOTIFIED (200) in the bundle check.
        jt: jt as u8,
        jf: jf as u8,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    // seccomp_data: nr at 0, arch at 4.
    let mut p = vec![
        stmt(load, 4),
        jump(crate::runtime::seccomp::bpf::AUDIT_ARCH_X86_64, 0, n + 1),
        stmt(load, 0),
    ];
    for (i, nr) in numbers.iter().enumerate() {
        p.push(jump(*nr, n - i, 0));
    }
    p.push(stmt(ret, RET_ALLOW));
    p.push(stmt(ret, RET_USER_NOTIF));
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::seccomp::bpf::eval::{SyscallData, evaluate};

    #[test]
    fn only_the_named_x86_64_calls_notify() {
        let p = program(&["mkdir".to_string(), "mkdirat".to_string()]);
        let call = |nr: libc::c_long, arch: u32| {
            evaluate(
                &p,
                &SyscallData {
                    nr: nr as u32,
                    arch,
                    args: [0; 6],
                },
            )
        };
        let x86_64 = crate::runtime::seccomp::bpf::AUDIT_ARCH_X86_64;
        assert_eq!(call(libc::SYS_mkdir, x86_64), Some(RET_USER_NOTIF));
        assert_eq!(call(libc::SYS_mkdirat, x86_64), Some(RET_USER_NOTIF));
        assert_eq!(call(libc::SYS_read, x86_64), Some(RET_ALLOW));
        // i386's mkdir is 39 (x86_64's getpid): another ABI is the other filters' to judge.
        assert_eq!(
            call(
                libc::SYS_mkdir,
                crate::runtime::seccomp::bpf::AUDIT_ARCH_I386
            ),
            Some(RET_ALLOW)
        );
    }
}
