//! Argument classes (`[seccomp.args]` of a policy): which socket families and types, ioctl
//! requests and namespace flags the workload may use. A learned policy names the syscalls a
//! run made; these say with what, so `socket` learned from a workload that only talks over
//! AF_UNIX does not also open AF_NETLINK or AF_INET.
//!
//! They are enforced by narrowing the profile's own allow rules ([`restrict_rules`]): each
//! allow rule of a restricted syscall becomes one rule per allowed class, its comparisons
//! combined with the class's (`socket(AF_INET, SOCK_STREAM)` of the profile and the learned
//! `AF_INET/SOCK_STREAM` stay one rule; with only `AF_UNIX` learned it is dropped). A call of
//! another class then meets the profile's default action, which a learned policy reports by
//! name with [`describe_call`]. The narrowed rules never allow what the profile did not.
//!
//! Comparisons follow Docker's default profile and what the kernel reads: the family and
//! the ioctl request are `int` / `unsigned int` in the kernel, so only their low 32 bits are
//! compared (`SCMP_CMP_MASKED_EQ` with `0xffffffff`: glibc may sign-extend a request such as
//! `0x80045430` into the upper half); the socket type without `SOCK_NONBLOCK`/`SOCK_CLOEXEC`
//! (mask `0xf`, the kernel's `SOCK_TYPE_MASK`); namespace flags as `flags & MASK == 0`.
//!
//! `clone3` passes its flags in memory seccomp cannot read: with `clone_namespaces` set it
//! gets ENOSYS, as in Docker's and rsafe's default profiles, and glibc and musl fall back to
//! the filtered `clone`. `socketcall` (i386 only) multiplexes every socket call behind a
//! pointer: with `socket` or `socketpair` set it is not allowed at all.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::profile::{Action, ArgCmp, CmpOp, Rule};

/// The keys of `[seccomp.args]`, in the order they are written.
pub const KEYS: [&str; 4] = ["socket", "socketpair", "ioctl", "clone_namespaces"];

/// Namespace flags `clone(2)` takes (its low byte is the exit signal, so not CLONE_NEWTIME).
pub const CLONE_NAMESPACES: u64 = 0x7e02_0000;
/// Namespace flags `unshare(2)` and `clone3(2)` take: the clone ones and CLONE_NEWTIME.
pub const UNSHARE_NAMESPACES: u64 = CLONE_NAMESPACES | 0x80;
/// The kernel's `SOCK_TYPE_MASK`: the type without SOCK_NONBLOCK and SOCK_CLOEXEC.
pub const SOCK_TYPE_MASK: u64 = 0xf;
const LOW32: u64 = 0xffff_ffff;

/// A socket's family and, when known, its type (without SOCK_NONBLOCK/SOCK_CLOEXEC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketClass {
    pub family: u32,
    /// None: any type (a hand-written `"AF_UNIX"`).
    pub kind: Option<u32>,
}

impl SocketClass {
    /// The class of `socket(family, type, …)` as the kernel reads its arguments.
    pub fn of_call(family: u64, kind: u64) -> SocketClass {
        SocketClass {
            family: family as u32,
            kind: Some((kind & SOCK_TYPE_MASK) as u32),
        }
    }
}

/// The restrictions of one policy; None for a key leaves that syscall as the profile has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgClasses {
    pub socket: Option<BTreeSet<SocketClass>>,
    pub socketpair: Option<BTreeSet<SocketClass>>,
    /// Requests, low 32 bits.
    pub ioctl: Option<BTreeSet<u32>>,
    /// The CLONE_NEW* flags allowed in clone, unshare (and clone3, which gets ENOSYS).
    pub clone_namespaces: Option<u64>,
}

const FAMILIES: &[(&str, u32)] = &[
    ("AF_UNSPEC", 0),
    ("AF_UNIX", 1),
    ("AF_INET", 2),
    ("AF_AX25", 3),
    ("AF_IPX", 4),
    ("AF_APPLETALK", 5),
    ("AF_NETROM", 6),
    ("AF_BRIDGE", 7),
    ("AF_ATMPVC", 8),
    ("AF_X25", 9),
    ("AF_INET6", 10),
    ("AF_ROSE", 11),
    ("AF_DECnet", 12),
    ("AF_NETBEUI", 13),
    ("AF_SECURITY", 14),
    ("AF_KEY", 15),
    ("AF_NETLINK", 16),
    ("AF_PACKET", 17),
    ("AF_ASH", 18),
    ("AF_ECONET", 19),
    ("AF_ATMSVC", 20),
    ("AF_RDS", 21),
    ("AF_SNA", 22),
    ("AF_IRDA", 23),
    ("AF_PPPOX", 24),
    ("AF_WANPIPE", 25),
    ("AF_LLC", 26),
    ("AF_IB", 27),
    ("AF_MPLS", 28),
    ("AF_CAN", 29),
    ("AF_TIPC", 30),
    ("AF_BLUETOOTH", 31),
    ("AF_IUCV", 32),
    ("AF_RXRPC", 33),
    ("AF_ISDN", 34),
    ("AF_PHONET", 35),
    ("AF_IEEE802154", 36),
    ("AF_CAIF", 37),
    ("AF_ALG", 38),
    ("AF_NFC", 39),
    ("AF_VSOCK", 40),
    ("AF_KCM", 41),
    ("AF_QIPCRTR", 42),
    ("AF_SMC", 43),
    ("AF_XDP", 44),
    ("AF_MCTP", 45),
];

const TYPES: &[(&str, u32)] = &[
    ("SOCK_STREAM", 1),
    ("SOCK_DGRAM", 2),
    ("SOCK_RAW", 3),
    ("SOCK_RDM", 4),
    ("SOCK_SEQPACKET", 5),
    ("SOCK_DCCP", 6),
    ("SOCK_PACKET", 10),
];

/// x86_64 ioctl requests by name: terminals, descriptors, a few network and file ones.
const IOCTLS: &[(&str, u32)] = &[
    ("FIBMAP", 0x1),
    ("FIGETBSZ", 0x2),
    ("TCGETS", 0x5401),
    ("TCSETS", 0x5402),
    ("TCSETSW", 0x5403),
    ("TCSETSF", 0x5404),
    ("TCGETA", 0x5405),
    ("TCSETA", 0x5406),
    ("TCSETAW", 0x5407),
    ("TCSETAF", 0x5408),
    ("TCSBRK", 0x5409),
    ("TCXONC", 0x540a),
    ("TCFLSH", 0x540b),
    ("TIOCEXCL", 0x540c),
    ("TIOCNXCL", 0x540d),
    ("TIOCSCTTY", 0x540e),
    ("TIOCGPGRP", 0x540f),
    ("TIOCSPGRP", 0x5410),
    ("TIOCOUTQ", 0x5411),
    ("TIOCSTI", 0x5412),
    ("TIOCGWINSZ", 0x5413),
    ("TIOCSWINSZ", 0x5414),
    ("TIOCMGET", 0x5415),
    ("TIOCMBIS", 0x5416),
    ("TIOCMBIC", 0x5417),
    ("TIOCMSET", 0x5418),
    ("TIOCGSOFTCAR", 0x5419),
    ("TIOCSSOFTCAR", 0x541a),
    ("FIONREAD", 0x541b),
    ("TIOCLINUX", 0x541c),
    ("TIOCCONS", 0x541d),
    ("TIOCGSERIAL", 0x541e),
    ("TIOCSSERIAL", 0x541f),
    ("TIOCPKT", 0x5420),
    ("FIONBIO", 0x5421),
    ("TIOCNOTTY", 0x5422),
    ("TIOCSETD", 0x5423),
    ("TIOCGETD", 0x5424),
    ("TCSBRKP", 0x5425),
    ("TIOCSBRK", 0x5427),
    ("TIOCCBRK", 0x5428),
    ("TIOCGSID", 0x5429),
    ("TCGETS2", 0x802c_542a),
    ("TCSETS2", 0x402c_542b),
    ("TCSETSW2", 0x402c_542c),
    ("TCSETSF2", 0x402c_542d),
    ("TIOCGPTN", 0x8004_5430),
    ("TIOCSPTLCK", 0x4004_5431),
    ("TIOCGDEV", 0x8004_5432),
    ("TIOCSIG", 0x4004_5436),
    ("TIOCVHANGUP", 0x5437),
    ("TIOCGPKT", 0x8004_5438),
    ("TIOCGPTLCK", 0x8004_5439),
    ("TIOCGEXCL", 0x8004_5440),
    ("TIOCGPTPEER", 0x5441),
    ("FIONCLEX", 0x5450),
    ("FIOCLEX", 0x5451),
    ("FIOASYNC", 0x5452),
    ("TIOCSERCONFIG", 0x5453),
    ("TIOCSERGWILD", 0x5454),
    ("TIOCSERSWILD", 0x5455),
    ("TIOCGLCKTRMIOS", 0x5456),
    ("TIOCSLCKTRMIOS", 0x5457),
    ("TIOCSERGSTRUCT", 0x5458),
    ("TIOCSERGETLSR", 0x5459),
    ("FIOQSIZE", 0x5460),
    ("SIOCGIFNAME", 0x8910),
    ("SIOCGIFCONF", 0x8912),
    ("SIOCGIFFLAGS", 0x8913),
    ("SIOCSIFFLAGS", 0x8914),
    ("SIOCGIFADDR", 0x8915),
    ("SIOCGIFNETMASK", 0x891b),
    ("SIOCGIFMTU", 0x8921),
    ("SIOCGIFHWADDR", 0x8927),
    ("SIOCGIFINDEX", 0x8933),
    ("FS_IOC_GETFLAGS", 0x8008_6601),
    ("FS_IOC_SETFLAGS", 0x4008_6602),
    ("FS_IOC_GETVERSION", 0x8008_7601),
    // dpkg asks for a file's extents before unpacking over it.
    ("FS_IOC_FIEMAP", 0xc020_660b),
    ("FIDEDUPERANGE", 0xc018_9436),
    ("FICLONE", 0x4004_9409),
    ("FICLONERANGE", 0x4020_940d),
    ("BLKGETSIZE64", 0x8008_1272),
    ("RNDGETENTCNT", 0x8004_5200),
];

const NAMESPACES: &[(&str, u64)] = &[
    ("CLONE_NEWTIME", 0x80),
    ("CLONE_NEWNS", 0x2_0000),
    ("CLONE_NEWCGROUP", 0x0200_0000),
    ("CLONE_NEWUTS", 0x0400_0000),
    ("CLONE_NEWIPC", 0x0800_0000),
    ("CLONE_NEWUSER", 0x1000_0000),
    ("CLONE_NEWPID", 0x2000_0000),
    ("CLONE_NEWNET", 0x4000_0000),
];

fn name_of<T: Copy + PartialEq>(table: &[(&'static str, T)], value: T) -> Option<&'static str> {
    table.iter().find(|(_, v)| *v == value).map(|(n, _)| *n)
}

fn value_of<T: Copy>(table: &[(&str, T)], name: &str) -> Option<T> {
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// A decimal or `0x` hexadecimal number.
fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// `AF_INET/SOCK_STREAM`, `AF_UNIX` (any type), `45/SOCK_DGRAM` (a family without a name).
pub fn socket_name(c: SocketClass) -> String {
    let mut out = name_of(FAMILIES, c.family).map_or_else(|| c.family.to_string(), String::from);
    if let Some(kind) = c.kind {
        out.push('/');
        out.push_str(&name_of(TYPES, kind).map_or_else(|| kind.to_string(), String::from));
    }
    out
}

/// Reads what [`socket_name`] writes (names or numbers).
pub fn parse_socket(text: &str) -> Result<SocketClass, String> {
    let (family, kind) = match text.split_once('/') {
        Some((f, k)) => (f, Some(k)),
        None => (text, None),
    };
    let family = value_of(FAMILIES, family)
        .or_else(|| number(family).and_then(|n| u32::try_from(n).ok()))
        .ok_or_else(|| format!("{family:?} is not an address family (AF_UNIX, AF_INET, …)"))?;
    let kind = match kind {
        None => None,
        Some(k) => Some(
            value_of(TYPES, k)
                .or_else(|| number(k).filter(|n| *n <= SOCK_TYPE_MASK).map(|n| n as u32))
                .ok_or_else(|| {
                    format!("{k:?} is not a socket type (SOCK_STREAM, SOCK_DGRAM, …)")
                })?,
        ),
    };
    Ok(SocketClass { family, kind })
}

/// `TCGETS`, or `0x8004ab01` for a request without a name here.
pub fn ioctl_name(request: u32) -> String {
    name_of(IOCTLS, request).map_or_else(|| format!("{request:#x}"), String::from)
}

/// Reads what [`ioctl_name`] writes: a name or a number (its low 32 bits must hold it).
pub fn parse_ioctl(text: &str) -> Result<u32, String> {
    value_of(IOCTLS, text)
        .or_else(|| number(text).and_then(|n| u32::try_from(n).ok()))
        .ok_or_else(|| {
            format!("{text:?} is not an ioctl request (a name like TCGETS, or a number)")
        })
}

/// The names of the CLONE_NEW* flags in `bits`.
pub fn namespace_names(bits: u64) -> Vec<String> {
    NAMESPACES
        .iter()
        .filter(|(_, v)| bits & v != 0)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// One CLONE_NEW* flag by name.
pub fn parse_namespace(text: &str) -> Result<u64, String> {
    value_of(NAMESPACES, text)
        .ok_or_else(|| format!("{text:?} is not a namespace flag (CLONE_NEWNET, CLONE_NEWUSER, …)"))
}

/// Every entry parsed, or the index of the first that is not one and why.
fn parse_all<T: Ord>(
    values: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<BTreeSet<T>, (Option<usize>, String)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| parse(v).map_err(|e| (Some(i), e)))
        .collect()
}

impl ArgClasses {
    /// Whether nothing is restricted (a hand-written policy without `[seccomp.args]`).
    pub fn is_empty(&self) -> bool {
        *self == ArgClasses::default()
    }

    /// Each key with its entries as written in a policy (None: not restricted).
    pub fn entries(&self) -> Vec<(&'static str, Option<Vec<String>>)> {
        let sockets = |s: &Option<BTreeSet<SocketClass>>| {
            s.as_ref()
                .map(|s| s.iter().map(|c| socket_name(*c)).collect())
        };
        vec![
            ("socket", sockets(&self.socket)),
            ("socketpair", sockets(&self.socketpair)),
            (
                "ioctl",
                self.ioctl
                    .as_ref()
                    .map(|s| s.iter().map(|r| ioctl_name(*r)).collect()),
            ),
            (
                "clone_namespaces",
                self.clone_namespaces.map(namespace_names),
            ),
        ]
    }

    /// Sets `key` from the entries of a policy; Err(index of the bad entry, problem).
    pub fn set(&mut self, key: &str, values: &[String]) -> Result<(), (Option<usize>, String)> {
        match key {
            "socket" => self.socket = Some(parse_all(values, parse_socket)?),
            "socketpair" => self.socketpair = Some(parse_all(values, parse_socket)?),
            "ioctl" => self.ioctl = Some(parse_all(values, parse_ioctl)?),
            "clone_namespaces" => {
                let flags = parse_all(values, parse_namespace)?;
                self.clone_namespaces = Some(flags.into_iter().fold(0, |a, b| a | b));
            }
            _ => {
                return Err((
                    None,
                    format!("unknown field (expected one of: {})", KEYS.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// Whether `name`'s allow rules are narrowed (or, for clone3 and socketcall, replaced).
    pub fn restricts(&self, name: &str) -> bool {
        match name {
            "socket" => self.socket.is_some(),
            "socketpair" => self.socketpair.is_some(),
            "socketcall" => self.socket.is_some() || self.socketpair.is_some(),
            "ioctl" => self.ioctl.is_some(),
            "clone" | "unshare" | "clone3" => self.clone_namespaces.is_some(),
            _ => false,
        }
    }

    /// The allowed classes of `name` as comparisons (each list: all must hold), with the
    /// entry each stands for; None when `name` is not narrowed this way.
    pub fn alternatives(&self, name: &str) -> Option<Vec<(String, Vec<ArgCmp>)>> {
        let masked = |index: u8, mask: u64, value: u64| ArgCmp {
            index,
            op: CmpOp::MaskedEq,
            value: mask,
            value_two: value,
        };
        let sockets = |set: &BTreeSet<SocketClass>| {
            set.iter()
                .map(|c| {
                    let mut cmp = vec![masked(0, LOW32, u64::from(c.family))];
                    if let Some(kind) = c.kind {
                        cmp.push(masked(1, SOCK_TYPE_MASK, u64::from(kind)));
                    }
                    (socket_name(*c), cmp)
                })
                .collect()
        };
        let namespaces = |allowed: u64, all: u64| {
            let denied = all & !allowed;
            let names = namespace_names(allowed & all);
            let label = if names.is_empty() {
                "no namespace flags".to_string()
            } else {
                format!("namespace flags {} only", names.join("|"))
            };
            let cmp = if denied == 0 {
                vec![]
            } else {
                vec![masked(0, denied, 0)]
            };
            vec![(label, cmp)]
        };
        match name {
            "socket" => self.socket.as_ref().map(sockets),
            "socketpair" => self.socketpair.as_ref().map(sockets),
            "ioctl" => self.ioctl.as_ref().map(|set| {
                set.iter()
                    .map(|r| (ioctl_name(*r), vec![masked(1, LOW32, u64::from(*r))]))
                    .collect()
            }),
            "clone" => self
                .clone_namespaces
                .map(|a| namespaces(a, CLONE_NAMESPACES)),
            "unshare" => self
                .clone_namespaces
                .map(|a| namespaces(a, UNSHARE_NAMESPACES)),
            _ => None,
        }
    }
}

/// What an allow rule of one restricted syscall becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Narrowed {
    /// Nothing allowed: the name leaves the rule (socketcall).
    Dropped,
    /// The call answered ENOSYS instead (clone3).
    Enosys,
    /// One rule per allowed class: the entry and the combined comparisons.
    Rules(Vec<(String, Vec<ArgCmp>)>),
}

/// Narrows one allow rule of `name` (comparisons `args`, Docker semantics: the same index
/// twice is OR) to `classes`. Err: the rule compares an argument in a way that cannot be
/// combined with a class in one libseccomp rule.
pub fn narrow(name: &str, args: &[ArgCmp], classes: &ArgClasses) -> Result<Narrowed, String> {
    match name {
        "socketcall" => return Ok(Narrowed::Dropped),
        "clone3" => return Ok(Narrowed::Enosys),
        _ => {}
    }
    let Some(alternatives) = classes.alternatives(name) else {
        return Ok(Narrowed::Rules(vec![(String::new(), args.to_vec())]));
    };
    let mut out: Vec<(String, Vec<ArgCmp>)> = Vec::new();
    for original in or_split(args) {
        for (label, alt) in &alternatives {
            if let Some(both) =
                combine(&original, alt).map_err(|problem| format!("{name} ({label}): {problem}"))?
                && !out.iter().any(|(_, a)| *a == both)
            {
                out.push((label.clone(), both));
            }
        }
    }
    Ok(Narrowed::Rules(out))
}

/// Docker's rule: comparisons on the same index are alternatives, each a rule of its own.
fn or_split(args: &[ArgCmp]) -> Vec<Vec<ArgCmp>> {
    let mut seen = [0u8; 6];
    for a in args {
        if let Some(n) = seen.get_mut(usize::from(a.index)) {
            *n += 1;
        }
    }
    if seen.iter().all(|&n| n <= 1) {
        vec![args.to_vec()]
    } else {
        args.iter().map(|a| vec![*a]).collect()
    }
}

/// `rule` AND `class` as one list with at most one comparison per index; None when no
/// value satisfies both. `class` holds only masked comparisons.
fn combine(rule: &[ArgCmp], class: &[ArgCmp]) -> Result<Option<Vec<ArgCmp>>, String> {
    let mut out = rule.to_vec();
    for c in class {
        let (mask, value) = (c.value, c.value_two & c.value);
        let Some(pos) = out.iter().position(|r| r.index == c.index) else {
            out.push(*c);
            continue;
        };
        let r = out[pos];
        let (rmask, rvalue) = match r.op {
            CmpOp::MaskedEq => (r.value, r.value_two),
            CmpOp::Eq => (u64::MAX, r.value),
            _ => {
                // An ordering or !=: decidable when the class fixes the argument, which a
                // 32-bit masked value does for an argument the caller passes zero-extended.
                if mask != LOW32 && mask != u64::MAX {
                    return Err(format!(
                        "the profile compares arg{} with {:?}, which cannot be combined with a mask of {mask:#x}",
                        c.index, r.op
                    ));
                }
                if !holds(r, value) {
                    return Ok(None);
                }
                out[pos] = ArgCmp {
                    index: c.index,
                    op: CmpOp::Eq,
                    value,
                    value_two: 0,
                };
                continue;
            }
        };
        if rvalue & !rmask != 0 || (rvalue ^ value) & rmask & mask != 0 {
            return Ok(None);
        }
        out[pos] = ArgCmp {
            index: c.index,
            op: CmpOp::MaskedEq,
            value: rmask | mask,
            value_two: rvalue | value,
        };
    }
    out.sort_by_key(|a| a.index);
    Ok(Some(out))
}

/// Whether `value` satisfies the comparison `r` (not a masked one).
fn holds(r: ArgCmp, value: u64) -> bool {
    match r.op {
        CmpOp::Ne => value != r.value,
        CmpOp::Lt => value < r.value,
        CmpOp::Le => value <= r.value,
        CmpOp::Eq => value == r.value,
        CmpOp::Ge => value >= r.value,
        CmpOp::Gt => value > r.value,
        CmpOp::MaskedEq => value & r.value == r.value_two,
    }
}

/// The profile's rules narrowed to `classes` ([`narrow`] for every allow rule naming a
/// restricted syscall; everything else as it was). Err: the syscall and why.
pub fn restrict_rules(rules: &[Rule], classes: &ArgClasses) -> Result<Vec<Rule>, String> {
    let mut out = Vec::new();
    for rule in rules {
        let allows = matches!(rule.action, Action::Allow | Action::Log);
        let (narrowed, kept): (Vec<&String>, Vec<&String>) =
            rule.names.iter().partition(|n| classes.restricts(n));
        if !allows || narrowed.is_empty() {
            out.push(rule.clone());
            continue;
        }
        if !kept.is_empty() {
            out.push(Rule {
                names: kept.into_iter().cloned().collect(),
                ..rule.clone()
            });
        }
        for name in narrowed {
            let one = |action, args, what: &str| Rule {
                names: vec![name.clone()],
                action,
                args,
                includes: rule.includes.clone(),
                excludes: rule.excludes.clone(),
                comment: Some(what.to_string()),
            };
            match narrow(name, &rule.args, classes)? {
                Narrowed::Dropped => {}
                Narrowed::Enosys => out.push(one(
                    Action::Errno(libc::ENOSYS as u16),
                    vec![],
                    "[seccomp.args] clone_namespaces: clone3's flags cannot be filtered",
                )),
                Narrowed::Rules(list) => {
                    for (label, args) in list {
                        out.push(one(rule.action, args, &format!("[seccomp.args] {label}")));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The class of a call to one of the restricted syscalls, for a denial's line: `AF_PACKET/
/// SOCK_RAW`, `TIOCSTI`, `CLONE_NEWUSER|CLONE_NEWNS`; None for other syscalls. Only
/// families, types, requests and flags: never an address, buffer or path.
pub fn describe_call(nr: i64, args: &[u64; 6]) -> Option<String> {
    let flags = |bits: u64, all: u64| {
        let names = namespace_names(bits & all);
        if names.is_empty() {
            "no namespace flags".to_string()
        } else {
            names.join("|")
        }
    };
    match nr {
        libc::SYS_socket | libc::SYS_socketpair => {
            Some(socket_name(SocketClass::of_call(args[0], args[1])))
        }
        libc::SYS_ioctl => Some(ioctl_name(args[1] as u32)),
        libc::SYS_clone => Some(flags(args[0], CLONE_NAMESPACES)),
        libc::SYS_unshare => Some(flags(args[0], UNSHARE_NAMESPACES)),
        _ => None,
    }
}

/// `socket AF_UNIX/SOCK_STREAM, AF_INET/SOCK_DGRAM; ioctl TCGETS; clone_namespaces none`, for
/// `rsafe policy show` (None: nothing restricted).
pub fn summary(classes: &ArgClasses) -> Option<String> {
    let mut out = String::new();
    for (key, entries) in classes.entries() {
        let Some(entries) = entries else { continue };
        if !out.is_empty() {
            out.push_str("; ");
        }
        let list = if entries.is_empty() {
            "none".to_string()
        } else {
            entries.join(", ")
        };
        let _ = write!(out, "{key} {list}");
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn masked(index: u8, mask: u64, value: u64) -> ArgCmp {
        ArgCmp {
            index,
            op: CmpOp::MaskedEq,
            value: mask,
            value_two: value,
        }
    }

    #[test]
    fn names_round_trip_and_match_libc() {
        for (name, value) in [
            ("TCGETS", libc::TCGETS),
            ("TIOCGWINSZ", libc::TIOCGWINSZ),
            ("FIONREAD", libc::FIONREAD),
            ("FIOCLEX", libc::FIOCLEX),
            ("FIONCLEX", libc::FIONCLEX),
            ("TIOCGPTN", libc::TIOCGPTN),
            ("TIOCSPTLCK", libc::TIOCSPTLCK),
            ("TIOCSTI", libc::TIOCSTI),
            ("TCGETS2", libc::TCGETS2),
        ] {
            assert_eq!(parse_ioctl(name), Ok(value as u32), "{name}");
            assert_eq!(ioctl_name(value as u32), name);
        }
        assert_eq!(ioctl_name(0xc004_ab01), "0xc004ab01");
        assert_eq!(parse_ioctl("0xc004ab01"), Ok(0xc004_ab01));
        assert!(parse_ioctl("0x1ffffffff").is_err());
        assert!(parse_ioctl("TCGETZ").is_err());
        for (name, value) in [
            ("AF_UNIX", libc::AF_UNIX),
            ("AF_INET", libc::AF_INET),
            ("AF_INET6", libc::AF_INET6),
            ("AF_NETLINK", libc::AF_NETLINK),
            ("AF_PACKET", libc::AF_PACKET),
            ("AF_VSOCK", libc::AF_VSOCK),
            ("AF_ALG", libc::AF_ALG),
        ] {
            assert_eq!(value_of(FAMILIES, name), Some(value as u32));
        }
        let c = SocketClass::of_call(
            libc::AF_INET6 as u64,
            (libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) as u64,
        );
        assert_eq!(socket_name(c), "AF_INET6/SOCK_DGRAM");
        assert_eq!(parse_socket("AF_INET6/SOCK_DGRAM"), Ok(c));
        assert_eq!(parse_socket("99/7").map(socket_name).as_deref(), Ok("99/7"));
        assert_eq!(
            parse_socket("AF_UNIX"),
            Ok(SocketClass {
                family: 1,
                kind: None
            })
        );
        assert!(parse_socket("AF_UNIXX").is_err());
        assert!(parse_socket("AF_INET/SOCK_WHAT").is_err());
        assert_eq!(
            namespace_names(libc::CLONE_NEWUSER as u64 | libc::CLONE_NEWNS as u64),
            ["CLONE_NEWNS", "CLONE_NEWUSER"]
        );
        let all = NAMESPACES.iter().fold(0, |a, (_, v)| a | v);
        assert_eq!(all, UNSHARE_NAMESPACES);
        assert_eq!(CLONE_NAMESPACES, UNSHARE_NAMESPACES & !0x80);
    }

    #[test]
    fn set_reads_every_key_and_names_the_bad_entry() {
        let mut c = ArgClasses::default();
        assert!(c.is_empty());
        c.set("socket", &strings(&["AF_UNIX/SOCK_STREAM", "AF_INET"]))
            .unwrap();
        c.set("ioctl", &strings(&["TCGETS", "0x5413"])).unwrap();
        c.set("clone_namespaces", &[]).unwrap();
        assert!(!c.is_empty());
        assert_eq!(
            c.entries(),
            vec![
                ("socket", Some(strings(&["AF_UNIX/SOCK_STREAM", "AF_INET"]))),
                ("socketpair", None),
                ("ioctl", Some(strings(&["TCGETS", "TIOCGWINSZ"]))),
                ("clone_namespaces", Some(vec![])),
            ]
        );
        assert_eq!(
            c.set("ioctl", &strings(&["TCGETS", "nope"])).unwrap_err().0,
            Some(1)
        );
        assert!(c.set("bind", &[]).unwrap_err().1.contains("unknown field"));
        assert_eq!(
            summary(&c).as_deref(),
            Some(
                "socket AF_UNIX/SOCK_STREAM, AF_INET; ioctl TCGETS, TIOCGWINSZ; clone_namespaces none"
            )
        );
    }

    #[test]
    fn masked_comparisons_combine_exactly() {
        let rule = [masked(0, LOW32, 2), masked(1, 0xf, 1)]; // AF_INET, SOCK_STREAM
        assert_eq!(
            combine(&rule, &[masked(0, LOW32, 2), masked(1, 0xf, 1)]),
            Ok(Some(rule.to_vec()))
        );
        assert_eq!(combine(&rule, &[masked(0, LOW32, 1)]), Ok(None));
        assert_eq!(
            combine(&rule, &[masked(0, LOW32, 2), masked(1, 0xf, 2)]),
            Ok(None)
        );
        // The family alone: the rule's type comparison stays.
        assert_eq!(
            combine(&rule, &[masked(0, LOW32, 2)]),
            Ok(Some(rule.to_vec()))
        );
        // Namespace masks add up.
        assert_eq!(
            combine(
                &[masked(0, CLONE_NAMESPACES, 0)],
                &[masked(0, 0x1000_0000, 0)]
            ),
            Ok(Some(vec![masked(0, CLONE_NAMESPACES, 0)]))
        );
        assert_eq!(
            combine(&[], &[masked(1, LOW32, 0x5401)]),
            Ok(Some(vec![masked(1, LOW32, 0x5401)]))
        );
    }

    #[test]
    fn docker_style_orderings_are_decided_for_a_fixed_value() {
        let lt = ArgCmp {
            index: 0,
            op: CmpOp::Lt,
            value: 12,
            value_two: 0,
        };
        let eq = |v| ArgCmp {
            index: 0,
            op: CmpOp::Eq,
            value: v,
            value_two: 0,
        };
        assert_eq!(
            combine(&[lt], &[masked(0, LOW32, 1)]),
            Ok(Some(vec![eq(1)]))
        );
        assert_eq!(combine(&[lt], &[masked(0, LOW32, 16)]), Ok(None));
        assert_eq!(
            combine(&[eq(16)], &[masked(0, LOW32, 16)]),
            Ok(Some(vec![masked(0, u64::MAX, 16)]))
        );
        assert!(combine(&[lt], &[masked(0, 0x80, 0)]).is_err());
    }

    #[test]
    fn narrowing_clone3_and_socketcall() {
        let mut c = ArgClasses::default();
        c.set("clone_namespaces", &strings(&["CLONE_NEWNET"]))
            .unwrap();
        assert_eq!(narrow("clone3", &[], &c), Ok(Narrowed::Enosys));
        assert_eq!(
            narrow("clone", &[], &c),
            Ok(Narrowed::Rules(vec![(
                "namespace flags CLONE_NEWNET only".into(),
                vec![masked(0, CLONE_NAMESPACES & !0x4000_0000, 0)]
            )]))
        );
        assert_eq!(narrow("socketcall", &[], &c), Ok(Narrowed::Dropped));
        // An unrestricted name is left as it is.
        assert_eq!(
            narrow("read", &[], &c),
            Ok(Narrowed::Rules(vec![(String::new(), vec![])]))
        );
    }

    #[test]
    fn calls_are_described_by_class_only() {
        let mut a = [0u64; 6];
        a[0] = libc::AF_PACKET as u64;
        a[1] = (libc::SOCK_RAW | libc::SOCK_CLOEXEC) as u64;
        assert_eq!(
            describe_call(libc::SYS_socket, &a).as_deref(),
            Some("AF_PACKET/SOCK_RAW")
        );
        // glibc sign-extends a request with the top bit set: the low 32 bits name it.
        a[1] = 0xffff_ffff_8004_5430;
        assert_eq!(
            describe_call(libc::SYS_ioctl, &a).as_deref(),
            Some("TIOCGPTN")
        );
        a[0] = (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64;
        assert_eq!(
            describe_call(libc::SYS_clone, &a).as_deref(),
            Some("CLONE_NEWUSER")
        );
        a[0] = libc::CLONE_FILES as u64;
        assert_eq!(
            describe_call(libc::SYS_unshare, &a).as_deref(),
            Some("no namespace flags")
        );
        assert_eq!(describe_call(libc::SYS_read, &a), None);
    }
}
