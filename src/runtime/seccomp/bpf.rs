//! Classic BPF as seccomp uses it: the instruction encoding, the ENOSYS prefix rsafe puts in
//! front of libseccomp's program, and (for tests) an evaluator that runs a program on a
//! syscall the way the kernel does.
//!
//! # The ENOSYS prefix
//! An allowlist denies what it does not name. For syscalls that existed when the profile was
//! written that is right (EPERM: "you may not"), but for syscalls *newer* than the profile it
//! is wrong: libc probes new syscalls and falls back to older ones only on ENOSYS ("the kernel
//! does not have this"). glibc's `clone3` → `clone`, `fchmodat2` → `fchmodat` and `statx` →
//! `fstatat` all work this way. So, per architecture, rsafe finds the highest syscall number
//! the profile names (any rule, any action — "what the profile knows") and puts this in front
//! of libseccomp's filter:
//!
//! ```text
//!   ld  arch
//!   jeq AUDIT_ARCH_X86_64, x86_64, next_arch
//! x86_64:
//!   ld  nr
//!   jge 0x40000000, x32, native        ; the x32 ABI shares the arch token, nr has bit 30
//! native: jgt MAX_X86_64, enosys, libseccomp
//! x32:    jgt MAX_X32, enosys, libseccomp   (only if the profile allows x32; else libseccomp's
//!                                            bad-arch action handles it)
//! next_arch: jeq AUDIT_ARCH_I386 … the same for i386 when the profile allows it
//! enosys: ret ERRNO(ENOSYS)
//! libseccomp: <libseccomp's program, which starts by loading the arch itself>
//! ```
//! This is what runc does too ("-ENOSYS stub", libcontainer/seccomp/patchbpf).

/// One BPF instruction, the kernel's `struct sock_filter`.
pub type Insn = libc::sock_filter;

/// Offsets into `struct seccomp_data`.
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// Syscall numbers of the x32 ABI carry this bit (`__X32_SYSCALL_BIT`).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

/// The kernel's limit on one filter program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

// Opcode parts (linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_K: u16 = 0x00;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// Per-architecture "highest syscall number the profile knows" for the ENOSYS prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KnownMax {
    /// Native x86_64 numbers.
    pub x86_64: Option<u32>,
    /// x32 numbers (with [`X32_SYSCALL_BIT`]); None when the profile does not allow x32.
    pub x32: Option<u32>,
    /// i386 numbers; None when the profile does not allow i386.
    pub i386: Option<u32>,
}

/// Where a prefix jump goes.
#[derive(Clone, Copy)]
enum Target {
    /// The next instruction.
    Next,
    /// Skip this many instructions.
    Skip(u8),
    /// The final `ret ERRNO(ENOSYS)`.
    Enosys,
    /// The first instruction after the prefix: libseccomp's program.
    Libseccomp,
}

/// Builds the ENOSYS prefix described in the module docs. Every path ends either in
/// `ret ERRNO(ENOSYS)` or by falling through to the instruction right after the prefix.
pub fn enosys_prefix(max: KnownMax) -> Vec<Insn> {
    use Target::*;
    let ld = |off| (BPF_LD | BPF_W | BPF_ABS, Next, Next, off);
    let jgt = |k| (BPF_JMP | BPF_JGT | BPF_K, Enosys, Libseccomp, k);
    let mut code: Vec<(u16, Target, Target, u32)> = vec![ld(OFF_ARCH)];
    if let Some(native_max) = max.x86_64 {
        let block = match max.x32 {
            Some(x32_max) => vec![
                ld(OFF_NR),
                (BPF_JMP | BPF_JGE | BPF_K, Skip(1), Next, X32_SYSCALL_BIT),
                jgt(native_max),
                jgt(x32_max),
            ],
            None => vec![
                ld(OFF_NR),
                (BPF_JMP | BPF_JGE | BPF_K, Libseccomp, Next, X32_SYSCALL_BIT),
                jgt(native_max),
            ],
        };
        code.push((
            BPF_JMP | BPF_JEQ | BPF_K,
            Next,
            Skip(block.len() as u8),
            AUDIT_ARCH_X86_64,
        ));
        code.extend(block);
    }
    if let Some(i386_max) = max.i386 {
        let block = vec![ld(OFF_NR), jgt(i386_max)];
        code.push((
            BPF_JMP | BPF_JEQ | BPF_K,
            Next,
            Skip(block.len() as u8),
            AUDIT_ARCH_I386,
        ));
        code.extend(block);
    }
    // No allowed arch matched: libseccomp applies its bad-arch action.
    code.push((BPF_JMP | BPF_JA, Libseccomp, Next, 0));

    let enosys_at = code.len();
    let mut out = Vec::with_capacity(enosys_at + 1);
    for (pc, (op, jt, jf, k)) in code.into_iter().enumerate() {
        // Jump offsets count from the instruction after the jump.
        let offset = |t: Target| -> u32 {
            match t {
                Next => 0,
                Skip(n) => u32::from(n),
                Enosys => (enosys_at - pc - 1) as u32,
                Libseccomp => (enosys_at - pc) as u32,
            }
        };
        if op == BPF_JMP | BPF_JA {
            out.push(insn(op, 0, 0, offset(jt)));
        } else {
            // The prefix is at most a dozen instructions: every offset fits a u8.
            out.push(insn(op, offset(jt) as u8, offset(jf) as u8, k));
        }
    }
    out.push(insn(
        BPF_RET | BPF_K,
        0,
        0,
        SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
    ));
    out
}

/// A prefix that answers `SECCOMP_RET_USER_NOTIF` for the native x86_64 syscalls `nrs` and
/// falls through to the program after it for everything else (other ABIs, x32 numbers, other
/// calls): a denial-reporting filter's way of hearing of calls its profile allows, which the
/// supervisor then lets continue ([`crate::runtime::learn::paths`]).
///
/// ```text
///   ld [arch]; jeq AUDIT_ARCH_X86_64, 0, rest
///   ld [nr];   jeq nr1, notify, 0; …; jeq nrN, notify, 0
///   ja rest
/// notify: ret USER_NOTIF
/// rest:   (the program)
/// ```
///
/// At most 250 numbers, so that every jump fits its u8 offset.
pub fn notify_prefix(nrs: &[u32]) -> Vec<Insn> {
    let nrs = &nrs[..nrs.len().min(250)];
    let n = nrs.len();
    let mut out = Vec::with_capacity(n + 5);
    out.push(insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, OFF_ARCH));
    // To `rest`, at n + 5: offsets count from the next instruction.
    out.push(insn(
        BPF_JMP | BPF_JEQ | BPF_K,
        0,
        (n + 3) as u8,
        AUDIT_ARCH_X86_64,
    ));
    out.push(insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, OFF_NR));
    for (i, nr) in nrs.iter().enumerate() {
        // This jump is at 3 + i, `notify` at n + 4.
        out.push(insn(BPF_JMP | BPF_JEQ | BPF_K, (n - i) as u8, 0, *nr));
    }
    out.push(insn(BPF_JMP | BPF_JA, 0, 0, 1));
    out.push(insn(BPF_RET | BPF_K, 0, 0, libc::SECCOMP_RET_USER_NOTIF));
    out
}

/// The kernel's in-memory form of a program (native-endian `struct sock_filter` records), the
/// inverse of [`decode`].
pub fn encode(program: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for i in program {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.extend_from_slice(&[i.jt, i.jf]);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// Decodes libseccomp's exported program (native-endian `struct sock_filter` records).
pub fn decode(bytes: &[u8]) -> Option<Vec<Insn>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

/// Runs programs the way the kernel does, so tests can check what a compiled profile decides
/// for any syscall and arguments without loading it.
#[cfg(test)]
pub mod eval {
    use super::*;

    pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
    pub const SECCOMP_RET_KILL_THREAD: u32 = 0x0000_0000;
    pub const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
    pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ACTION_FULL: u32 = 0xffff_0000;
    const BPF_ALU: u16 = 0x04;
    const BPF_AND: u16 = 0x50;
    const BPF_JSET: u16 = 0x40;

    /// A syscall as a seccomp filter sees it, for evaluating programs in tests and `policy show`.
    #[derive(Debug, Clone, Copy)]
    pub struct SyscallData {
        pub nr: u32,
        pub arch: u32,
        pub args: [u64; 6],
    }

    /// Runs a seccomp program on one syscall like the kernel does and returns its verdict
    /// (`SECCOMP_RET_*` with data). Only the instructions libseccomp and the prefix emit are
    /// accepted; anything else returns None.
    pub fn evaluate(program: &[Insn], data: &SyscallData) -> Option<u32> {
        let word = |off: u32| -> Option<u32> {
            match off {
                OFF_NR => Some(data.nr),
                OFF_ARCH => Some(data.arch),
                16..=63 if off.is_multiple_of(4) => {
                    let arg = data.args[((off - 16) / 8) as usize];
                    Some(if (off - 16).is_multiple_of(8) {
                        arg as u32
                    } else {
                        (arg >> 32) as u32
                    })
                }
                _ => None,
            }
        };
        let mut acc: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = program.get(pc)?;
            pc += 1;
            let k = i.k;
            match i.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => acc = word(k)?,
                c if c == BPF_ALU | BPF_AND | BPF_K => acc &= k,
                c if c == BPF_RET | BPF_K => return Some(k),
                c if c == BPF_JMP | BPF_JA => pc += k as usize,
                c if c & 0x07 == BPF_JMP && c & 0x08 == BPF_K => {
                    let taken = match c & 0xf0 {
                        BPF_JEQ => acc == k,
                        BPF_JGT => acc > k,
                        BPF_JGE => acc >= k,
                        BPF_JSET => acc & k != 0,
                        _ => return None,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                _ => return None,
            }
        }
    }

    /// The kernel's rule for several filters: every filter runs, and the verdict with the lowest
    /// action value wins (KILL_PROCESS < KILL_THREAD < TRAP < ERRNO < TRACE < LOG < ALLOW). Among
    /// equal actions the most recently installed filter's verdict is kept; `programs` is in
    /// installation order.
    pub fn evaluate_stack(programs: &[Vec<Insn>], data: &SyscallData) -> Option<u32> {
        // ACTION_ONLY() in kernel/seccomp.c: a signed compare, so KILL_PROCESS (0x80000000) is lowest.
        let action_only = |v: u32| (v & SECCOMP_RET_ACTION_FULL) as i32;
        let mut verdict = SECCOMP_RET_ALLOW;
        for program in programs.iter().rev() {
            let v = evaluate(program, data)?;
            if action_only(v) < action_only(verdict) {
                verdict = v;
            }
        }
        Some(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::eval::*;
    use super::*;

    fn call(arch: u32, nr: u32) -> SyscallData {
        SyscallData {
            nr,
            arch,
            args: [0; 6],
        }
    }

    const FALL_THROUGH: u32 = 0xdead_0000;

    /// The prefix followed by a marker instruction standing in for libseccomp's program.
    fn with_marker(max: KnownMax) -> Vec<Insn> {
        let mut p = enosys_prefix(max);
        p.push(insn(BPF_RET | BPF_K, 0, 0, FALL_THROUGH));
        p
    }

    #[test]
    fn numbers_above_the_known_maximum_get_enosys_and_the_rest_fall_through() {
        let p = with_marker(KnownMax {
            x86_64: Some(456),
            x32: None,
            i386: None,
        });
        let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(evaluate(&p, &call(AUDIT_ARCH_X86_64, 457)), Some(enosys));
        assert_eq!(
            evaluate(&p, &call(AUDIT_ARCH_X86_64, 0x3fff_ffff)),
            Some(enosys)
        );
        assert_eq!(
            evaluate(&p, &call(AUDIT_ARCH_X86_64, 456)),
            Some(FALL_THROUGH)
        );
        assert_eq!(
            evaluate(&p, &call(AUDIT_ARCH_X86_64, 0)),
            Some(FALL_THROUGH)
        );
        // x32 is not allowed: left to libseccomp's bad-arch action, never ENOSYS.
        assert_eq!(
            evaluate(&p, &call(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 900)),
            Some(FALL_THROUGH)
        );
        // i386 is not allowed: left to libseccomp.
        assert_eq!(
            evaluate(&p, &call(AUDIT_ARCH_I386, 900)),
            Some(FALL_THROUGH)
        );
    }

    #[test]
    fn compat_arches_get_their_own_maximum_when_allowed() {
        let p = with_marker(KnownMax {
            x86_64: Some(456),
            x32: Some(X32_SYSCALL_BIT | 456),
            i386: Some(462),
        });
        let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(
            evaluate(&p, &call(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 457)),
            Some(enosys)
        );
        assert_eq!(
            evaluate(&p, &call(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 12)),
            Some(FALL_THROUGH)
        );
        assert_eq!(evaluate(&p, &call(AUDIT_ARCH_I386, 463)), Some(enosys));
        assert_eq!(
            evaluate(&p, &call(AUDIT_ARCH_I386, 462)),
            Some(FALL_THROUGH)
        );
        assert_eq!(evaluate(&p, &call(0x1234, 1)), Some(FALL_THROUGH));
    }

    #[test]
    fn the_most_restrictive_filter_wins_and_ties_go_to_the_newest() {
        let ret = |k| vec![insn(BPF_RET | BPF_K, 0, 0, k)];
        let data = call(AUDIT_ARCH_X86_64, 1);
        let eperm = SECCOMP_RET_ERRNO | 1;
        let eacces = SECCOMP_RET_ERRNO | 13;
        assert_eq!(
            evaluate_stack(&[ret(SECCOMP_RET_ALLOW), ret(eperm)], &data),
            Some(eperm)
        );
        assert_eq!(
            evaluate_stack(&[ret(eperm), ret(SECCOMP_RET_ALLOW)], &data),
            Some(eperm)
        );
        assert_eq!(
            evaluate_stack(&[ret(eperm), ret(eacces)], &data),
            Some(eacces)
        );
        assert_eq!(
            evaluate_stack(&[ret(SECCOMP_RET_KILL_PROCESS), ret(eperm)], &data),
            Some(SECCOMP_RET_KILL_PROCESS)
        );
        assert_eq!(
            evaluate_stack(&[ret(SECCOMP_RET_KILL_THREAD), ret(SECCOMP_RET_LOG)], &data),
            Some(SECCOMP_RET_KILL_THREAD)
        );
    }
}
