//! `rsafe run --gate SEVERITY` (or a policy's `gate` key): the image is audited before the
//! container starts, and refused (exit 125) when a finding the ignore file does not accept is at
//! or above SEVERITY; those findings are printed on stderr as `rsafe audit` prints them, then
//! one line saying why nothing ran. The verdict comes from the store's cache when this rsafe
//! build has audited this image before ([`crate::audit::gate`]); otherwise the audit runs in a
//! helper process (it starts threads, and rsafe must stay single-threaded to start the
//! container) and its verdict is cached for the next run.
#![forbid(unsafe_code)]

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};

use super::audit::DEFAULT_IGNORE_FILE;
use crate::audit::Severity;
use crate::audit::gate::{self, Decision, Level, Miss, RuleSetVersion, Verdict, VerdictCache};
use crate::audit::ignore::IgnoreList;
use crate::image::{Digest, Store};
use crate::report::{self, Report, Style};
use crate::runtime::helper;

/// clap's parser for `--gate`: `off` or a severity name.
pub fn parse_level(s: &str) -> Result<Level, String> {
    s.parse().map_err(|e: gate::GateError| e.to_string())
}

/// The threshold in force: the flag when given (`off` included), else the policy's key.
pub fn threshold(flag: Option<Level>, policy: Option<Severity>) -> Option<Severity> {
    match flag {
        Some(level) => level.threshold(),
        None => policy,
    }
}

/// The image a run is about to start.
pub struct Gated<'a> {
    /// What the user typed (`busybox:latest`, `./app.tar`, a digest): what the refusal names,
    /// and what `rsafe audit` is told to look at.
    pub typed: &'a str,
    /// `sha256:…` of the image manifest in the store; None for a plain rootfs directory.
    pub manifest: Option<&'a str>,
}

/// Lets the run go on when the image passes the gate at `threshold`; an error (exit 125) after
/// printing the blocking findings otherwise, or when no verdict can be had. `./.rsafeignore`
/// applies, as in `rsafe audit`.
pub fn enforce(
    store: &Store,
    threshold: Severity,
    image: &Gated,
    verbose: bool,
) -> anyhow::Result<()> {
    let typed = image.typed;
    let Some(manifest) = image.manifest else {
        bail!(
            "the gate audits images, and {typed} is a directory: run it with --gate off (or a policy without a gate)"
        );
    };
    let manifest: Digest = manifest
        .parse()
        .with_context(|| format!("gate: the manifest digest of {typed}"))?;
    let ignores = load_ignores(Path::new(DEFAULT_IGNORE_FILE))?;
    let verdict = verdict(store, &manifest, typed, verbose)?;
    let decision = verdict.decide(threshold, &ignores);
    if decision.passes() {
        note(
            verbose,
            format!(
                "gate: passed: no finding at or above {threshold} ({} below it, {} accepted by {DEFAULT_IGNORE_FILE})",
                decision.below, decision.ignored
            ),
        );
        return Ok(());
    }
    print_blocking(typed, &verdict, &decision);
    let n = decision.blocking.len();
    bail!(
        "refused by the gate: {n} finding{} at or above {threshold} in {typed} (rsafe audit {typed} for details)",
        if n == 1 { "" } else { "s" }
    )
}

/// `./.rsafeignore` when it exists; a broken one is an error, as in `rsafe audit`.
fn load_ignores(path: &Path) -> anyhow::Result<IgnoreList> {
    if !path.is_file() {
        return Ok(IgnoreList::default());
    }
    IgnoreList::load(path).context("gate: cannot use the ignore file")
}

/// The image's verdict: cached, or audited now (and cached when the store allows).
fn verdict(
    store: &Store,
    manifest: &Digest,
    typed: &str,
    verbose: bool,
) -> anyhow::Result<Verdict> {
    let cache = VerdictCache::in_store(store.root());
    let rules = RuleSetVersion::current();
    if let Some(rules) = &rules {
        match cache.get(manifest, rules) {
            Ok(verdict) => {
                let path = cache.entry_path(manifest, rules);
                note(verbose, format!("gate: cached verdict {}", path.display()));
                return Ok(verdict);
            }
            Err(Miss::Absent) => {}
            Err(miss) => note(verbose, format!("gate: {miss}; auditing the image again")),
        }
    }
    let started = Instant::now();
    let verdict = helper::in_subprocess(|| gate::audit(store, manifest).map_err(|e| e.to_string()))
        .context("gate: image audit")?
        .map_err(|message| anyhow!("gate: cannot audit {typed}: {message}"))?;
    let audited = format!(
        "gate: audited {typed} in {:.2} s: {} finding(s)",
        started.elapsed().as_secs_f64(),
        verdict.findings.len()
    );
    match rules.map(|rules| cache.put(&rules, &verdict)) {
        Some(Ok(path)) => note(
            verbose,
            format!("{audited}; verdict cached in {}", path.display()),
        ),
        Some(Err(e)) => note(
            verbose,
            format!(
                "{audited}; cannot cache the verdict ({e}): the image is audited at every start"
            ),
        ),
        None => note(
            verbose,
            format!(
                "{audited}; this rsafe build cannot be identified (/proc/self/exe), so the verdict is not cached"
            ),
        ),
    }
    Ok(verdict)
}

/// The blocking findings as `rsafe audit`'s table, on stderr (stdout is the workload's).
fn print_blocking(typed: &str, verdict: &Verdict, decision: &Decision) {
    let report = Report {
        target: report::Target {
            kind: "image".into(),
            name: typed.to_string(),
            digest: Some(verdict.manifest.clone()),
            platform: Some(verdict.platform.clone()),
            resolved: None,
        },
        findings: decision.blocking.clone(),
        ignored: decision.ignored,
        below_threshold: 0,
        rules: Vec::new(),
        stats: Some(verdict.stats),
        elapsed: None,
    };
    let stderr = std::io::stderr();
    let color = stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut out = stderr.lock();
    let _ = report::render_styled(report::Format::Table, &report, &mut out, Style { color });
    let _ = out.flush();
}

/// One `rsafe: …` line on stderr with `verbose`; never fails (a closed stderr must not stop
/// the run).
fn note(verbose: bool, line: String) {
    if verbose {
        let _ = writeln!(std::io::stderr(), "rsafe: {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_overrides_the_policy() {
        let high = Some(Severity::High);
        assert_eq!(threshold(None, None), None);
        assert_eq!(threshold(None, high), high);
        assert_eq!(threshold(Some(Level::Off), high), None);
        assert_eq!(
            threshold(Some(Level::At(Severity::Critical)), high),
            Some(Severity::Critical)
        );
        assert_eq!(
            threshold(Some(Level::At(Severity::Low)), None),
            Some(Severity::Low)
        );
        assert_eq!(parse_level("off"), Ok(Level::Off));
        let err = parse_level("loud").unwrap_err();
        assert!(
            err.contains("off, info, low, medium, high or critical"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_is_refused_not_waved_through() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let gated = Gated {
            typed: "/srv/rootfs",
            manifest: None,
        };
        let err = enforce(&store, Severity::High, &gated, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/srv/rootfs is a directory"), "{err}");
    }

    #[test]
    fn a_broken_ignore_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(".rsafeignore");
        assert!(load_ignores(&path).unwrap().entries.is_empty());
        std::fs::write(&path, "secret.*\n").unwrap();
        let err = format!("{:#}", load_ignores(&path).unwrap_err());
        assert!(err.contains("missing reason"), "{err}");
        std::fs::write(&path, "secret.*  # test fixtures\n").unwrap();
        assert_eq!(load_ignores(&path).unwrap().entries.len(), 1);
    }
}
