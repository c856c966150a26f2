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
//! ```
//!
//! The bundle's profile allows the notified calls ([`super::bundle`] rewrites their rules) and
//! this filter of their own notifies them; the kernel keeps the stricter verdict of all the
//! filters, so a call rsafe's floor denies stays denied and never reaches the agent. An
//! `exec`'d process gets the notify filter without a listener: its notified calls fail with
//! ENOSYS (rsafe sends no second listener).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::bundle::SeccompNotify;

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
    let payload = serde_json::json!({
        "ociVersion": super::state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": notify.metadata,
        "state": serde_json::from_str::<serde_json::Value>(state).unwrap_or_default(),
    });
    Ok(Agent {
        socket: socket.into(),
        payload: payload.to_string().into_bytes(),
    })
}

/// Installs the notify filter for `syscalls`; with an agent, with a listener sent to it
/// (then closed here: the agent holds the only copy).
pub(super) fn install(syscalls: &[String], agent: Option<Agent>) -> io::Result<()> {
    let program = program(syscalls);
    let flags = if agent.is_some() {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32
    } else {
        0
    };
    let rc = crate::runtime::seccomp::install(&program, flags);
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let Some(agent) = agent else {
        return Ok(());
    };
    let fd = i32::try_from(rc).map_err(|_| io::Error::other("seccomp returned no listener"))?;
    // SAFETY: with NEW_LISTENER, seccomp(2) returned a new descriptor owned by nothing else.
    let listener = unsafe { OwnedFd::from_raw_fd(fd) };
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [listener.as_raw_fd()];
    sendmsg::<()>(
        agent.socket.as_raw_fd(),
        &[io::IoSlice::new(&agent.payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
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
