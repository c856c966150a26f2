//! Which of the policy's capabilities a learning run gave evidence for.
//!
//! A capability check happens inside the kernel and is not visible to a seccomp supervisor, so
//! the evidence is the syscalls that can need it. A capability is **dropped** only when every
//! syscall that could ever need it was absent from the run (no `chown`-family call: no
//! CAP_CHOWN), **kept as used** when such a call (or argument) was seen, and **kept as
//! unverified** when its uses cannot be told from syscalls (CAP_DAC_OVERRIDE may be needed by
//! any open). The mapping:
//!
//! | capability | evidence of use |
//! |---|---|
//! | CHOWN | chown, fchown, lchown, fchownat |
//! | FOWNER | chmod family, utime family, setxattr family, chown family |
//! | FSETID | chmod family, chown family |
//! | SETUID | setuid, setreuid, setresuid, setfsuid |
//! | SETGID | setgid, setregid, setresgid, setfsgid, setgroups |
//! | KILL | kill, tkill, tgkill with a real signal to a process whose real and saved uid are neither the sender's real nor effective uid (the kernel's rule, uids read from the container's `/proc`); a process group, a pidfd, or a target gone before it was looked at |
//! | NET_BIND_SERVICE | bind to a port below 1024 |
//! | NET_RAW | socket with SOCK_RAW or AF_PACKET |
//! | SYS_CHROOT | chroot |
//! | MKNOD | mknod, mknodat |
//! | SETFCAP | setxattr family |
//! | SETPCAP | capset, prctl |
//! | everything else | unverified: kept |

use ::caps::Capability;

use super::Observed;

/// What the run says about one capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Seen used: the evidence (`chown`, `bind to port 80`).
    Used(String),
    /// Its uses cannot be observed with syscalls: kept.
    Unverified,
    /// None of the calls that could need it was made.
    Unused,
}

const CHOWN: &[&str] = &["chown", "fchown", "lchown", "fchownat"];
const CHMOD: &[&str] = &["chmod", "fchmod", "fchmodat", "fchmodat2"];
const UTIME: &[&str] = &["utime", "utimes", "utimensat", "futimesat"];
const XATTR: &[&str] = &["setxattr", "lsetxattr", "fsetxattr", "setxattrat"];
const SETUID: &[&str] = &["setuid", "setreuid", "setresuid", "setfsuid"];
const SETGID: &[&str] = &["setgid", "setregid", "setresgid", "setfsgid", "setgroups"];

/// The verdict for `cap` given what the run saw.
pub fn verdict(cap: Capability, seen: &Observed) -> Verdict {
    let any = |lists: &[&[&str]]| -> Verdict {
        let used = lists
            .iter()
            .flat_map(|l| l.iter())
            .find(|name| seen.syscalls.contains(**name));
        match used {
            Some(name) => Verdict::Used(format!("{name}()")),
            None => Verdict::Unused,
        }
    };
    match cap {
        Capability::CAP_CHOWN => any(&[CHOWN]),
        Capability::CAP_FOWNER => any(&[CHMOD, UTIME, XATTR, CHOWN]),
        Capability::CAP_FSETID => any(&[CHMOD, CHOWN]),
        Capability::CAP_SETUID => any(&[SETUID]),
        Capability::CAP_SETGID => any(&[SETGID]),
        Capability::CAP_SYS_CHROOT => any(&[&["chroot"]]),
        Capability::CAP_MKNOD => any(&[&["mknod", "mknodat"]]),
        Capability::CAP_SETFCAP => any(&[XATTR]),
        Capability::CAP_SETPCAP => any(&[&["capset", "prctl"]]),
        Capability::CAP_KILL if seen.signalled_others => {
            Verdict::Used("a signal to another user's process".into())
        }
        Capability::CAP_KILL => Verdict::Unused,
        Capability::CAP_NET_BIND_SERVICE => match seen.tcp_bind.iter().find(|p| **p < 1024) {
            Some(port) => Verdict::Used(format!("bind to port {port}")),
            None => Verdict::Unused,
        },
        Capability::CAP_NET_RAW if seen.raw_socket => Verdict::Used("a raw socket".into()),
        Capability::CAP_NET_RAW => Verdict::Unused,
        _ => Verdict::Unverified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_follow_the_calls_that_need_them() {
        let mut seen = Observed::default();
        assert_eq!(verdict(Capability::CAP_CHOWN, &seen), Verdict::Unused);
        assert_eq!(verdict(Capability::CAP_SETUID, &seen), Verdict::Unused);
        assert_eq!(
            verdict(Capability::CAP_DAC_OVERRIDE, &seen),
            Verdict::Unverified
        );
        seen.syscalls.insert("fchownat".into());
        seen.tcp_bind.insert(8080);
        assert_eq!(
            verdict(Capability::CAP_CHOWN, &seen),
            Verdict::Used("fchownat()".into())
        );
        assert_eq!(
            verdict(Capability::CAP_NET_BIND_SERVICE, &seen),
            Verdict::Unused
        );
        seen.tcp_bind.insert(80);
        assert_eq!(
            verdict(Capability::CAP_NET_BIND_SERVICE, &seen),
            Verdict::Used("bind to port 80".into())
        );
    }
}
