//! Secrets in a container's process environments (`/proc/PID/environ`) and command lines
//! (`/proc/PID/cmdline`, readable by every user of the host), found by the secret engine and
//! reported redacted, once per secret however many processes inherited it.
//!
//! The runtime's supervisor (rsafe's init, bubblewrap's pid 1) is skipped: its environment is
//! the caller's on the host, not something the container was given.

use std::collections::BTreeMap;

use super::Ctx;
use crate::audit::finding::Finding;
use crate::audit::procs::process::split_nul;
use crate::audit::secrets::SecretScanner;

pub(super) fn check(cx: &mut Ctx<'_>, scanner: &SecretScanner) {
    let c = cx.container;
    let proc_root = &c.host().proc_root;
    // (rule, fingerprint, where) → the finding at the first process that has it. Children
    // inherit their parent's environment: one secret, one finding. The location's detail
    // stays `env NAME` (what an ignore file matches), whichever processes share it.
    let mut found: BTreeMap<(String, String, String), Finding> = BTreeMap::new();
    for p in c.processes.iter().filter(|p| Some(p.pid) != c.supervisor) {
        let environ = match std::fs::read(p.dir(proc_root).join("environ")) {
            Ok(bytes) => split_nul(&bytes),
            Err(e) => {
                cx.not_inspected(p.pid, "environment", Some(&e.to_string()));
                continue;
            }
        };
        let mut sources = vec![(environ.join("\n"), Source::Environ(&environ))];
        if !p.cmdline.is_empty() {
            sources.push((p.cmdline.join(" "), Source::Cmdline));
        }
        for (text, source) in &sources {
            for hit in scanner.scan_text(text) {
                let detail = source.describe(hit.line);
                let fingerprint = hit.evidence.fingerprint.clone().unwrap_or_default();
                found
                    .entry((hit.rule_id.clone(), fingerprint, detail.clone()))
                    .or_insert_with(|| hit.into_finding(c.location(Some(p.pid), Some(detail))));
            }
        }
    }
    for finding in found.into_values() {
        cx.push(finding);
    }
}

/// Where scanned text came from, to name the variable a hit is in.
enum Source<'a> {
    /// Entries joined by newlines.
    Environ(&'a [String]),
    Cmdline,
}

impl Source<'_> {
    /// `env NAME` for the entry holding 1-based `line`, or `cmdline`.
    fn describe(&self, line: Option<u32>) -> String {
        match self {
            Source::Cmdline => "cmdline".into(),
            Source::Environ(entries) => {
                let name = line.and_then(|l| {
                    let mut start = 1u32;
                    entries.iter().find_map(|e| {
                        let lines = 1 + e.matches('\n').count() as u32;
                        let hit = (start..start + lines).contains(&l);
                        start += lines;
                        hit.then(|| e.split_once('=').map_or(e.as_str(), |(k, _)| k))
                    })
                });
                match name {
                    Some(n) => format!("env {n}"),
                    None => "env".into(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_variable_of_a_line() {
        let env = vec![
            "A=1".to_owned(),
            "MULTI=x\ny".to_owned(),
            "AWS_SECRET_ACCESS_KEY=zzz".to_owned(),
        ];
        let s = Source::Environ(&env);
        assert_eq!(s.describe(Some(1)), "env A");
        assert_eq!(s.describe(Some(3)), "env MULTI");
        assert_eq!(s.describe(Some(4)), "env AWS_SECRET_ACCESS_KEY");
        assert_eq!(s.describe(None), "env");
        assert_eq!(Source::Cmdline.describe(Some(1)), "cmdline");
    }
}
