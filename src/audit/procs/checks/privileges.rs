//! What a container's processes may do to the host if they get out: host root, capabilities
//! beyond Docker's default set, no_new_privs, seccomp.
//!
//! Capabilities are judged only for processes in the host's user namespace: inside a user
//! namespace of its own, a capability covers only what that namespace owns. Landlock is not
//! checked: the kernel does not expose a process's landlock domain in procfs, and this audit
//! does not claim what it cannot see.

use caps::Capability;

use super::{Ctx, pid_list};
use crate::audit::finding::{Evidence, Severity};
use crate::audit::procs::Process;
use crate::audit::procs::process::{NsKind, SeccompMode, container_uid};
use crate::audit::procs::rules;

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DOCKER_DEFAULT: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

fn mask(caps: &[Capability]) -> u64 {
    caps.iter().fold(0, |m, c| m | c.bitmask())
}

/// Capability names of the bits in `set` (`CAP_<n>` for numbers this build does not know).
pub fn cap_names(set: u64) -> Vec<String> {
    let known = caps::all();
    (0..64)
        .filter(|bit| set & (1u64 << bit) != 0)
        .map(|bit| {
            known
                .iter()
                .find(|c| u32::from(c.index()) == bit)
                .map_or_else(|| format!("CAP_{bit}"), |c| c.to_string())
        })
        .collect()
}

/// Capabilities beyond the default for evidence: every one of them named, or, for a process
/// that holds all there are, just that.
fn describe_caps(extra: u64, default: u64) -> String {
    let all = caps::all().iter().fold(0u64, |m, c| m | c.bitmask());
    if extra & all == all & !default {
        format!(
            "every capability ({} beyond Docker's default, as --privileged)",
            extra.count_ones()
        )
    } else {
        cap_names(extra).join(", ")
    }
}

/// The capabilities a process holds or gets back by exec: root regains its whole bounding set
/// on every execve.
fn usable_now(p: &Process) -> u64 {
    let held = p.caps.effective | p.caps.permitted | p.caps.ambient;
    if p.uid.effective == 0 || p.uid.real == 0 {
        held | p.caps.bounding
    } else {
        held
    }
}

pub(super) fn check(cx: &mut Ctx<'_>) {
    let t = Tally::of(cx);
    let c = cx.container;
    let default = mask(DOCKER_DEFAULT);
    if let Some(&first) = t.root.first() {
        let how = how_root(cx, first);
        cx.push(rules::ROOT.finding(
            c.location(Some(first), None),
            Some(Evidence::plain(format!("{}: {how}", pid_list(&t.root)))),
        ));
    }
    if let Some(&first) = t.admin.first() {
        cx.push(rules::CAP_SYS_ADMIN.finding(
            c.location(Some(first), None),
            Some(Evidence::plain(format!(
                "{} hold CAP_SYS_ADMIN in the host's user namespace",
                pid_list(&t.admin)
            ))),
        ));
    }
    if let Some(&first) = t.extra.first() {
        cx.push(rules::CAPABILITIES.finding(
            c.location(Some(first), None),
            Some(Evidence::plain(format!(
                "{}: {}",
                pid_list(&t.extra),
                describe_caps(t.extra_caps, default)
            ))),
        ));
    }
    if let Some(&first) = t.bounding.first() {
        cx.push(rules::BOUNDING_SET.finding(
            c.location(Some(first), None),
            Some(Evidence::plain(format!(
                "{}: bounding set allows {}",
                pid_list(&t.bounding),
                cap_names(t.bounding_caps).join(", ")
            ))),
        ));
    }
    if let Some(&first) = t.no_nnp.first() {
        cx.push(rules::NO_NEW_PRIVS.finding_at(
            t.no_nnp_severity,
            c.location(Some(first), None),
            Some(Evidence::plain(format!(
                "{}: NoNewPrivs 0",
                pid_list(&t.no_nnp)
            ))),
        ));
    }
    if let Some(&first) = t.no_seccomp.first() {
        cx.push(rules::SECCOMP.finding_at(
            t.seccomp_severity,
            c.location(Some(first), None),
            Some(Evidence::plain(format!(
                "{}: Seccomp 0",
                pid_list(&t.no_seccomp)
            ))),
        ));
    }
}

/// How a root process is host root: no user namespace, or one that maps uid 0 to it.
fn how_root(cx: &Ctx<'_>, pid: u32) -> String {
    let c = cx.container;
    let host = c.host();
    match c.process(pid) {
        Some(p) if host.shares(p, NsKind::User) => {
            "no user namespace: uid 0 in the container is uid 0 on the host".to_owned()
        }
        _ => match container_uid(&host.proc_root, pid, 0) {
            Some(u) => format!("the user namespace maps container uid {u} to host uid 0"),
            None => "host uid 0 inside a user namespace".to_owned(),
        },
    }
}

/// The container's processes sorted by what each rule reports, with the severity the worst
/// of them earns. rsafe's own supervisor is root on purpose and is left out of the rest.
struct Tally {
    root: Vec<u32>,
    admin: Vec<u32>,
    extra: Vec<u32>,
    extra_caps: u64,
    bounding: Vec<u32>,
    bounding_caps: u64,
    no_nnp: Vec<u32>,
    no_nnp_severity: Severity,
    no_seccomp: Vec<u32>,
    seccomp_severity: Severity,
}

impl Tally {
    fn of(cx: &Ctx<'_>) -> Self {
        let c = cx.container;
        let host = c.host();
        let mut t = Tally {
            root: Vec::new(),
            admin: Vec::new(),
            extra: Vec::new(),
            extra_caps: 0,
            bounding: Vec::new(),
            bounding_caps: 0,
            no_nnp: Vec::new(),
            no_nnp_severity: Severity::Low,
            no_seccomp: Vec::new(),
            seccomp_severity: Severity::Medium,
        };
        for p in &c.processes {
            let in_host_userns = host.shares(p, NsKind::User);
            if p.uid.effective == 0 || p.uid.real == 0 {
                t.root.push(p.pid);
            }
            if Some(p.pid) == c.supervisor {
                continue;
            }
            if in_host_userns {
                t.capabilities(p);
            }
            if p.no_new_privs == Some(false) {
                t.no_nnp.push(p.pid);
                if in_host_userns && p.uid.effective != 0 {
                    t.no_nnp_severity = Severity::Medium;
                }
            }
            if p.seccomp == Some(SeccompMode::Disabled) {
                t.no_seccomp.push(p.pid);
                if in_host_userns {
                    t.seccomp_severity = Severity::High;
                }
            }
        }
        t
    }

    /// Capabilities of a process in the host's user namespace (elsewhere they cover only what
    /// its namespace owns).
    fn capabilities(&mut self, p: &Process) {
        let default = mask(DOCKER_DEFAULT);
        let sys_admin = Capability::CAP_SYS_ADMIN.bitmask();
        let now = usable_now(p);
        if now & sys_admin != 0 {
            self.admin.push(p.pid);
        }
        // CAP_SYS_ADMIN has a rule of its own.
        if now & !default & !sys_admin != 0 {
            self.extra.push(p.pid);
            self.extra_caps |= now & !default;
        }
        let regain = p.caps.bounding & !default & !now;
        if p.no_new_privs == Some(false) && regain != 0 && !self.root.contains(&p.pid) {
            self.bounding.push(p.pid);
            self.bounding_caps |= regain;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_capability_bits() {
        assert_eq!(
            cap_names(Capability::CAP_SYS_ADMIN.bitmask() | Capability::CAP_CHOWN.bitmask()),
            vec!["CAP_CHOWN", "CAP_SYS_ADMIN"]
        );
        assert_eq!(cap_names(1 << 63), vec!["CAP_63"]);
        // runc's default spec: AUDIT_WRITE, KILL, NET_BIND_SERVICE: nothing beyond Docker's.
        assert_eq!(0x2000_0420 & !mask(DOCKER_DEFAULT), 0);
        assert_eq!(mask(DOCKER_DEFAULT), 0xa80425fb);
        let all = caps::all().iter().fold(0u64, |m, c| m | c.bitmask());
        let default = mask(DOCKER_DEFAULT);
        assert!(describe_caps(all & !default, default).starts_with("every capability"));
        assert_eq!(
            describe_caps(Capability::CAP_BPF.bitmask(), default),
            "CAP_BPF"
        );
    }
}
