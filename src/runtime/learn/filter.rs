//! The learning filter: a second seccomp program, stacked on the policy's as the workload's
//! very last step before `execve`, that hands every syscall to rsafe as a user notification.
//!
//! It never weakens the policy. The kernel runs every stacked filter and keeps the most
//! restrictive verdict (KILL > TRAP > ERRNO > USER_NOTIF > TRACE > LOG > ALLOW), so a syscall
//! the policy's filter denies is denied before rsafe hears of it, and one it allows is
//! notified, recorded and continued. The one exception is `sendmsg` on the sync channel: the
//! workload sends the listener over it right after loading, and rsafe cannot answer a
//! notification before it has the listener. That descriptor is close-on-exec, so after
//! `execve` the exception only matters if the workload reuses its number for a socket of its
//! own (then its `sendmsg` there is allowed by the policy's filter and not recorded).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::runtime::seccomp::{self, SeccompError, bpf};

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// `offsetof(struct seccomp_data, args[0])`, the low 32 bits on little-endian x86_64.
const OFF_ARG0: u32 = 16;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The program: allow `sendmsg(channel, …)` on x86_64, notify everything else.
pub fn program(channel: RawFd) -> Vec<libc::sock_filter> {
    vec![
        insn(BPF_LD_W_ABS, 0, 0, bpf::OFF_ARCH),
        insn(BPF_JEQ_K, 0, 5, bpf::AUDIT_ARCH_X86_64),
        insn(BPF_LD_W_ABS, 0, 0, bpf::OFF_NR),
        insn(BPF_JEQ_K, 0, 3, libc::SYS_sendmsg as u32),
        insn(BPF_LD_W_ABS, 0, 0, OFF_ARG0),
        insn(BPF_JEQ_K, 0, 1, channel as u32),
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_USER_NOTIF),
    ]
}

/// Installs the learning filter on the calling thread (no_new_privs must be set) and returns
/// the notification listener.
pub fn load(channel: RawFd) -> Result<OwnedFd, SeccompError> {
    let rc = seccomp::install(
        &program(channel),
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32,
    );
    if rc < 0 {
        return Err(SeccompError::Load {
            source: io::Error::last_os_error(),
            hint: " (the learning filter needs SECCOMP_FILTER_FLAG_NEW_LISTENER, Linux 5.0)",
        });
    }
    // SAFETY: with NEW_LISTENER, rc is the listener descriptor the kernel just opened for
    // this process; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::seccomp::bpf::eval::{SyscallData, evaluate};

    fn verdict(nr: i64, arch: u32, arg0: u64) -> Option<u32> {
        let data = SyscallData {
            nr: nr as u32,
            arch,
            args: [arg0, 0, 0, 0, 0, 0],
        };
        evaluate(&program(7), &data)
    }

    #[test]
    fn everything_is_notified_but_sendmsg_on_the_channel() {
        let notify = Some(libc::SECCOMP_RET_USER_NOTIF);
        assert_eq!(verdict(libc::SYS_openat, bpf::AUDIT_ARCH_X86_64, 7), notify);
        assert_eq!(verdict(libc::SYS_execve, bpf::AUDIT_ARCH_X86_64, 0), notify);
        assert_eq!(
            verdict(libc::SYS_sendmsg, bpf::AUDIT_ARCH_X86_64, 3),
            notify
        );
        assert_eq!(
            verdict(libc::SYS_sendmsg, bpf::AUDIT_ARCH_X86_64, 7),
            Some(libc::SECCOMP_RET_ALLOW)
        );
        // Another ABI is the policy filter's business (it kills); never let through here.
        assert_eq!(verdict(libc::SYS_sendmsg, bpf::AUDIT_ARCH_I386, 7), notify);
    }

    #[test]
    fn stacked_on_the_default_policy_a_denied_call_stays_denied() {
        use crate::runtime::seccomp::{SeccompProfile, bpf::eval::evaluate_stack, compile};
        let policy = compile(&SeccompProfile::builtin_default(), &[]).unwrap();
        let mut stack = policy.programs().to_vec();
        stack.push(program(7));
        let run = |nr: i64, args: [u64; 6]| {
            let data = SyscallData {
                nr: nr as u32,
                arch: bpf::AUDIT_ARCH_X86_64,
                args,
            };
            evaluate_stack(&stack, &data).map(|v| v & 0xffff_0000)
        };
        // Allowed by the policy: notified (and then continued by rsafe).
        assert_eq!(
            run(libc::SYS_openat, [0; 6]),
            Some(libc::SECCOMP_RET_USER_NOTIF)
        );
        // Denied by the policy: still EPERM, never notified.
        for nr in [libc::SYS_mount, libc::SYS_kexec_load, libc::SYS_bpf] {
            assert_eq!(run(nr, [0; 6]), Some(bpf::SECCOMP_RET_ERRNO), "nr {nr}");
        }
        // Allowed only for some arguments: clone with CLONE_NEWUSER stays denied.
        let newuser = libc::CLONE_NEWUSER as u64;
        assert_eq!(
            run(libc::SYS_clone, [newuser, 0, 0, 0, 0, 0]),
            Some(bpf::SECCOMP_RET_ERRNO)
        );
    }
}
