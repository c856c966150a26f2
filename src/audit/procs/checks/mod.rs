//! The checks run on each container, one module per concern:
//!
//! - [`privileges`]: host root, capabilities, no_new_privs, seccomp;
//! - [`namespaces`]: namespaces shared with the host;
//! - [`mounts`]: host filesystems, runtime sockets, devices, propagation, escaping symlinks;
//! - [`fds`]: directory descriptors and working directories outside the container's view;
//! - [`environ`]: secrets in the processes' environment and command line;
//! - [`limits`]: memory and pids cgroup limits.
//!
//! A check that could not read what it needs says so with a `container.not-inspected`
//! finding rather than passing silently.

mod environ;
mod fds;
mod limits;
pub mod mounts;
mod namespaces;
mod privileges;

use std::collections::BTreeMap;

use crate::audit::finding::{Evidence, Finding};
use crate::audit::secrets::SecretScanner;

use super::Container;
use super::rules;

pub use privileges::{DOCKER_DEFAULT, cap_names};

/// Audits each container; findings come most severe first, then by container.
pub fn audit_containers(containers: &[Container], scanner: &SecretScanner) -> Vec<Finding> {
    let mut findings: Vec<Finding> = containers
        .iter()
        .flat_map(|c| audit_container(c, scanner))
        .collect();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.location.to_string().cmp(&b.location.to_string()))
    });
    findings
}

/// Every check on one container.
pub fn audit_container(container: &Container, scanner: &SecretScanner) -> Vec<Finding> {
    let mut cx = Ctx {
        container,
        findings: Vec::new(),
        unread: BTreeMap::new(),
    };
    privileges::check(&mut cx);
    namespaces::check(&mut cx);
    mounts::check(&mut cx);
    fds::check(&mut cx);
    environ::check(&mut cx, scanner);
    limits::check(&mut cx);
    cx.finish()
}

/// What the checks of one container share: the container, the findings so far, and what
/// could not be read.
pub(crate) struct Ctx<'a> {
    container: &'a Container,
    findings: Vec<Finding>,
    /// What could not be read → (pids, first reason).
    unread: BTreeMap<String, (Vec<u32>, String)>,
}

impl Ctx<'_> {
    fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }

    /// Notes that `what` of process `pid` could not be read.
    fn not_inspected(&mut self, pid: u32, what: &str, why: Option<&str>) {
        let entry = self
            .unread
            .entry(what.to_owned())
            .or_insert_with(|| (Vec::new(), why.unwrap_or("unreadable").to_owned()));
        entry.0.push(pid);
    }

    fn finish(mut self) -> Vec<Finding> {
        let c = self.container;
        for (what, (pids, why)) in std::mem::take(&mut self.unread) {
            self.findings.push(rules::NOT_INSPECTED.finding(
                c.location(pids.first().copied(), Some(what.clone())),
                Some(Evidence::plain(format!(
                    "{what} of {}: {why}",
                    pid_list(&pids)
                ))),
            ));
        }
        self.findings
    }
}

/// Pids for evidence: `pid 5`, `pids 5, 6, 7`, at most eight shown.
pub fn pid_list(pids: &[u32]) -> String {
    const SHOWN: usize = 8;
    let list: Vec<String> = pids.iter().take(SHOWN).map(u32::to_string).collect();
    let more = pids.len().saturating_sub(SHOWN);
    let more = if more > 0 {
        format!(" (+{more} more)")
    } else {
        String::new()
    };
    match pids.len() {
        1 => format!("pid {}", list[0]),
        _ => format!("pids {}{more}", list.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_lists() {
        assert_eq!(pid_list(&[5]), "pid 5");
        assert_eq!(pid_list(&[5, 6]), "pids 5, 6");
        let many: Vec<u32> = (1..=10).collect();
        assert_eq!(pid_list(&many), "pids 1, 2, 3, 4, 5, 6, 7, 8 (+2 more)");
    }
}
