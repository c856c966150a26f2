//! Namespaces a container shares with the host: each shared one is a wall that is not there.
//! Judged on the container's init, whose namespaces are the container's.

use super::Ctx;
use crate::audit::Rule;
use crate::audit::finding::Evidence;
use crate::audit::procs::HostReference;
use crate::audit::procs::process::NsKind;
use crate::audit::procs::rules;

/// The rule for sharing each namespace type (the time namespace guards nothing).
fn rule_for(kind: NsKind) -> Option<&'static Rule> {
    Some(match kind {
        NsKind::Pid => &rules::HOST_PID_NS,
        NsKind::Net => &rules::HOST_NET_NS,
        NsKind::Ipc => &rules::HOST_IPC_NS,
        NsKind::Uts => &rules::HOST_UTS_NS,
        NsKind::Mnt => &rules::HOST_MNT_NS,
        NsKind::User => &rules::HOST_USER_NS,
        NsKind::Cgroup => &rules::HOST_CGROUP_NS,
        NsKind::Time => return None,
    })
}

pub(super) fn check(cx: &mut Ctx<'_>) {
    let c = cx.container;
    let host = c.host();
    let Some(init) = c.init() else {
        return;
    };
    let Some(ns) = init.namespaces else {
        cx.not_inspected(init.pid, "namespaces", init.namespaces_error.as_deref());
        return;
    };
    let whose = match host.reference {
        HostReference::Init | HostReference::KernelThread(_) => "the host's",
        HostReference::Reader(_) => "rsafe's own (pid 1 unreadable)",
    };
    for kind in NsKind::ALL {
        let Some(rule) = rule_for(kind) else { continue };
        if ns.same(&host.namespaces, kind) {
            let inode = ns.get(kind).unwrap_or_default();
            cx.push(rule.finding(
                c.location(Some(init.pid), Some(format!("{kind} namespace"))),
                Some(Evidence::plain(format!(
                    "{kind}:[{inode}] is {whose} {kind} namespace"
                ))),
            ));
        }
    }
}
