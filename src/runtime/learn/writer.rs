//! The learned policy on disk: a policy TOML in the `policies/*.toml` format and a
//! Docker-format seccomp profile beside it (`OUT.seccomp.json`, named by the TOML's
//! `[seccomp] profile`), both saying for each entry which run first needed it.
//!
//! A second `--learn` into the same file extends it (union): the file's values are read back
//! with the ordinary policy parser, and which run needed each entry from its comments (`#
//! run N`) and the profile's rule comments (`run N: …`); an entry whose comment was removed by
//! hand is kept and attributed to "an earlier run".
//!
//! The profile is the learning run's own profile cut down to the syscalls seen: each allow
//! rule keeps its argument conditions and `includes`/`excludes` (so `clone` stays without
//! namespace flags), and every rule that denies stays as it was. A learned profile is never
//! more permissive than the one it was learned under. Its allow rules for `socket`,
//! `socketpair`, `ioctl`, `clone`, `unshare` and `clone3` are then narrowed to the argument
//! classes the runs used (`[seccomp.args]`, [`crate::runtime::seccomp::args`]), one rule per
//! class commented with the run that first needed it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Observed;
use super::capabilities::{self, Verdict};
use super::reduce::{self, Rules};
use crate::runtime::caps::short_name;
use crate::runtime::landlock::PortAccess;
use crate::runtime::policy::{NetworkMode, Policy, PolicyError};
use crate::runtime::seccomp::args;
use crate::runtime::seccomp::{ArgCmp, CmpOp};

/// The builtin profile's JSON, to cut down.
const BUILTIN_DEFAULT_JSON: &str = include_str!("../../../policies/seccomp/default.json");
/// Peak memory is written times this (and rounded up to MiB): room for inputs larger than the
/// learning run's without making the limit meaningless.
pub const MEMORY_HEADROOM: f64 = 1.5;
/// The smallest memory limit written: above Docker's 6 MiB floor, with room for a shell.
pub const MIN_MEMORY: u64 = 16 << 20;
/// Peak tasks are written times this, and at least [`MIN_PIDS`].
pub const PIDS_HEADROOM: u64 = 2;
pub const MIN_PIDS: u64 = 16;

/// Syscalls rsafe's own start-up makes under the policy's filter before the workload runs,
/// which the learning filter (loaded after it) cannot see: `seccomp` installs the rest of the
/// filter stack, `sendmsg` reports a failed `execve` to rsafe, `execve` starts the workload.
pub const RUNTIME_SYSCALLS: &[&str] = &["execve", "seccomp", "sendmsg"];

/// Why a learned policy could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error("{path}: not a learned policy to extend: {source}", path = path.display())]
    Existing {
        path: PathBuf,
        source: Box<PolicyError>,
    },
    #[error("{}: {problem}", path.display())]
    Profile { path: PathBuf, problem: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One learning run: when, and what ran (image and command, redacted by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub when: String,
    pub what: String,
}

/// A learned policy: every entry with the number (1-based; 0: unknown) of the run that first
/// needed it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Learned {
    pub runs: Vec<Run>,
    pub syscalls: BTreeMap<String, usize>,
    pub read_exec: BTreeMap<PathBuf, usize>,
    pub read_write: BTreeMap<PathBuf, usize>,
    /// Directories only listed (landlock READ_DIR alone).
    pub list: BTreeMap<PathBuf, usize>,
    pub tcp_bind: BTreeMap<u16, usize>,
    pub tcp_connect: BTreeMap<u16, usize>,
    /// `[seccomp.args]`: key (`socket`, `ioctl`, …) → entry (`AF_UNIX/SOCK_STREAM`, `TCGETS`,
    /// `CLONE_NEWNET`) → run. A key that is absent is not restricted: an earlier file without
    /// it (a policy written before rsafe learned arguments, or by hand) stays as it was.
    pub args: BTreeMap<String, BTreeMap<String, usize>>,
    /// Short capability name → (run, `used: …` or `unverified`).
    pub capabilities: BTreeMap<String, (usize, String)>,
    /// Capabilities of the latest run's policy that no run used.
    pub dropped: Vec<String>,
    /// (limit, run that set it, why).
    pub memory: Option<(u64, usize, String)>,
    pub pids: Option<(u64, usize, String)>,
}

/// What a learned file's comments say ran: `subject` (the image, or `exec NAME:`) and the
/// command, each word longer than 24 characters or holding `=` redacted (it may be a
/// credential).
pub fn label(subject: &str, command: &[String]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|w| {
            if w.chars().count() > 24 || w.contains('=') {
                crate::audit::finding::redact(w)
            } else {
                w.replace(['\n', '\r'], " ")
            }
        })
        .collect();
    format!("{subject} {}", words.join(" "))
}

/// `OUT.toml` → `OUT.seccomp.json`, in the same directory.
pub fn profile_path(policy: &Path) -> PathBuf {
    let stem = policy
        .file_stem()
        .map_or_else(|| "learned".into(), |s| s.to_string_lossy().into_owned());
    policy.with_file_name(format!("{stem}.seccomp.json"))
}

impl Learned {
    /// The learned policy at `path`, or an empty one when there is no file yet.
    pub fn read(path: &Path) -> Result<Learned, LearnError> {
        if !path.exists() {
            return Ok(Learned::default());
        }
        let policy = Policy::from_file(path).map_err(|e| LearnError::Existing {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        let text = std::fs::read_to_string(path).map_err(|source| LearnError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        let notes = Provenance::scan(&text);
        let mut l = Learned {
            runs: notes.runs.clone(),
            ..Learned::default()
        };
        let run_of = |key: &str, value: &str| notes.run(key, value);
        for cap in &policy.capabilities {
            let name = short_name(*cap);
            let (run, note) = notes
                .entries
                .get(&("capabilities.keep".to_string(), name.clone()))
                .cloned()
                .unwrap_or((0, "kept".into()));
            l.capabilities.insert(name, (run, note));
        }
        for p in &policy.landlock.read_exec {
            let v = p.display().to_string();
            l.read_exec
                .insert(p.clone(), run_of("landlock.read_exec", &v));
        }
        for p in &policy.landlock.read_write {
            let v = p.display().to_string();
            l.read_write
                .insert(p.clone(), run_of("landlock.read_write", &v));
        }
        for p in &policy.landlock.list {
            let v = p.display().to_string();
            l.list.insert(p.clone(), run_of("landlock.list", &v));
        }
        for (ports, key, into) in [
            (
                &policy.landlock.tcp_bind,
                "landlock.tcp_bind",
                &mut l.tcp_bind,
            ),
            (
                &policy.landlock.tcp_connect,
                "landlock.tcp_connect",
                &mut l.tcp_connect,
            ),
        ] {
            if let PortAccess::Only(list) = ports {
                for port in list {
                    into.insert(*port, run_of(key, &port.to_string()));
                }
            }
        }
        let limit = |key: &str, value: Option<u64>| {
            value.map(|v| {
                let (run, note) = notes
                    .entries
                    .get(&(key.to_string(), String::new()))
                    .cloned()
                    .unwrap_or((0, String::new()));
                (v, run, note)
            })
        };
        for (key, entries) in policy.seccomp_args.entries() {
            let Some(entries) = entries else { continue };
            let full = format!("seccomp.args.{key}");
            let learned = entries.iter().map(|e| (e.clone(), run_of(&full, e)));
            l.args.insert(key.to_string(), learned.collect());
        }
        l.memory = limit("limits.memory", policy.limits.memory);
        l.pids = limit("limits.pids", policy.limits.pids);
        l.syscalls = read_profile_names(&profile_path(path))?;
        Ok(l)
    }

    /// Adds what one run observed under `policy` (the policy it ran under), as run number
    /// `self.runs.len() + 1`.
    pub fn add_run(&mut self, run: Run, seen: &Observed, policy: &Policy) {
        if self.runs.is_empty() {
            // A new file: every argument class is learned (a key with no entry allows none).
            for key in args::KEYS {
                self.args.entry(key.to_string()).or_default();
            }
        }
        self.runs.push(run);
        let n = self.runs.len();
        self.add_args(seen, n);
        for name in &seen.syscalls {
            self.syscalls.entry(name.clone()).or_insert(n);
        }
        for name in RUNTIME_SYSCALLS {
            self.syscalls.entry(name.to_string()).or_insert(n);
        }
        let rules = reduce::reduce(&seen.paths);
        for p in rules.read_exec {
            self.read_exec.entry(p).or_insert(n);
        }
        for p in rules.read_write {
            self.read_write.entry(p).or_insert(n);
        }
        for p in rules.list {
            self.list.entry(p).or_insert(n);
        }
        self.simplify_paths();
        for port in &seen.tcp_bind {
            self.tcp_bind.entry(*port).or_insert(n);
        }
        for port in &seen.tcp_connect {
            self.tcp_connect.entry(*port).or_insert(n);
        }
        self.dropped.clear();
        for cap in &policy.capabilities {
            let name = short_name(*cap);
            let note = match capabilities::verdict(*cap, seen) {
                Verdict::Used(evidence) => format!("used: {evidence}"),
                Verdict::Unverified => "unverified (not observable from syscalls)".to_string(),
                Verdict::Unused => {
                    if !self.capabilities.contains_key(&name) {
                        self.dropped.push(name);
                    }
                    continue;
                }
            };
            self.capabilities.entry(name).or_insert((n, note));
        }
        if let Some(peak) = seen.peak_memory {
            let limit = memory_limit(peak);
            if self.memory.as_ref().is_none_or(|(old, ..)| limit > *old) {
                let why = format!("peak {} × {MEMORY_HEADROOM}", human(peak));
                self.memory = Some((limit, n, why));
            }
        }
        if let Some(peak) = seen.peak_pids {
            let limit = (peak * PIDS_HEADROOM).max(MIN_PIDS);
            if self.pids.as_ref().is_none_or(|(old, ..)| limit > *old) {
                let why = format!("peak {peak} × {PIDS_HEADROOM}, at least {MIN_PIDS}");
                self.pids = Some((limit, n, why));
            }
        }
    }

    /// Adds run `n`'s argument classes to the keys this file restricts.
    fn add_args(&mut self, seen: &Observed, n: usize) {
        let sockets = |s: &BTreeSet<args::SocketClass>| -> Vec<String> {
            s.iter().map(|c| args::socket_name(*c)).collect()
        };
        let observed = [
            ("socket", sockets(&seen.sockets)),
            ("socketpair", sockets(&seen.socketpairs)),
            (
                "ioctl",
                seen.ioctls.iter().map(|r| args::ioctl_name(*r)).collect(),
            ),
            ("clone_namespaces", args::namespace_names(seen.namespaces)),
        ];
        for (key, entries) in observed {
            if let Some(learned) = self.args.get_mut(key) {
                for e in entries {
                    learned.entry(e).or_insert(n);
                }
            }
        }
    }

    /// The restrictions the file's `[seccomp.args]` states (entries this writer rendered).
    fn arg_classes(&self) -> Result<args::ArgClasses, String> {
        let mut classes = args::ArgClasses::default();
        for (key, entries) in &self.args {
            let list: Vec<String> = entries.keys().cloned().collect();
            classes
                .set(key, &list)
                .map_err(|(_, problem)| format!("[seccomp.args] {key}: {problem}"))?;
        }
        Ok(classes)
    }

    /// How many landlock path rules the policy has (read+exec, read-write and list-only).
    pub fn path_rules(&self) -> usize {
        self.read_exec.len() + self.read_write.len() + self.list.len()
    }

    /// How many `[seccomp.args]` classes the file allows (socket family/type pairs, ioctl
    /// requests, namespace flags), for the summary line: the narrowing a reader cannot see in
    /// the syscall count.
    pub fn arg_class_count(&self) -> usize {
        self.args.values().map(BTreeMap::len).sum()
    }

    /// Drops path rules another covers, keeping each survivor's run.
    fn simplify_paths(&mut self) {
        let rules = reduce::simplify(Rules {
            read_exec: self.read_exec.keys().cloned().collect(),
            read_write: self.read_write.keys().cloned().collect(),
            list: self.list.keys().cloned().collect(),
        });
        self.read_exec.retain(|p, _| rules.read_exec.contains(p));
        self.read_write.retain(|p, _| rules.read_write.contains(p));
        self.list.retain(|p, _| rules.list.contains(p));
    }

    /// Writes the TOML to `path` and the profile beside it. `policy` is the latest run's: its
    /// seccomp profile is the one cut down, and its masked paths, scopes and network are kept.
    pub fn write(&self, path: &Path, policy: &Policy) -> Result<(), LearnError> {
        let json_path = profile_path(path);
        let profile = self.profile(policy, &json_path)?;
        let json = serde_json::to_string_pretty(&profile).map_err(|e| LearnError::Profile {
            path: json_path.clone(),
            problem: e.to_string(),
        })?;
        write_file(&json_path, &(json + "\n"))?;
        write_file(path, &self.render(policy, &json_path))
    }

    /// The policy TOML: the header comment, then one section at a time.
    pub fn render(&self, policy: &Policy, json_path: &Path) -> String {
        let mut out = String::new();
        self.render_header(&mut out);
        self.render_capabilities(&mut out);
        self.render_seccomp(&mut out, json_path);
        self.render_seccomp_args(&mut out);
        self.render_landlock(&mut out, policy);
        render_paths(&mut out, policy);
        self.render_limits(&mut out, policy);
        render_network(&mut out, policy);
        out
    }

    /// The comment naming the runs and the `description`.
    fn render_header(&self, out: &mut String) {
        let n = self.runs.len();
        let _ = writeln!(
            out,
            "# rsafe policy learned by `rsafe run --learn` from {n} run{}:",
            if n == 1 { "" } else { "s" }
        );
        for (i, run) in self.runs.iter().enumerate() {
            let _ = writeln!(out, "# run {}: {} {}", i + 1, run.when, run.what);
        }
        out.push_str(
            "# Each entry says which run first needed it. Run the workload again with --learn\n\
             # into this file to extend it; run it with --policy to enforce it.\n",
        );
        let what = self.runs.last().map_or("", |r| r.what.as_str());
        let _ = writeln!(
            out,
            "description = {}\n",
            toml_str(&format!("Learned from {n} run(s), the latest: {what}"))
        );
    }

    /// `[capabilities]`: those kept, each with its run and why, and a comment naming those
    /// dropped.
    fn render_capabilities(&self, out: &mut String) {
        out.push_str("[capabilities]\n");
        out.push_str("keep = [\n");
        for (name, (run, note)) in &self.capabilities {
            let _ = writeln!(out, "    {}, # {}; {note}", toml_str(name), run_label(*run));
        }
        out.push_str("]\n");
        if !self.dropped.is_empty() {
            let _ = writeln!(
                out,
                "# Dropped (no run made a call that needs them): {}",
                self.dropped.join(", ")
            );
        }
    }

    /// `[seccomp]`: the profile written beside the TOML, named relative to it.
    fn render_seccomp(&self, out: &mut String, json_path: &Path) {
        let json_name = json_path
            .file_name()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let _ = writeln!(
            out,
            "\n[seccomp]\n# {} syscalls, each profile rule naming the run that first needed it.\nprofile = {}\n\
             # A call the profile does not name is reported on stderr as well as refused\n\
             # (`rsafe: denied: mkdir (not in policy)`).\nreport_denials = true\n",
            self.syscalls.len(),
            toml_str(&json_name)
        );
    }

    /// `[seccomp.args]`, when any class was learned: one list per key of [`args::KEYS`].
    fn render_seccomp_args(&self, out: &mut String) {
        if self.args.is_empty() {
            return;
        }
        out.push_str(
            "[seccomp.args]\n# The argument classes the runs used (socket family/type, ioctl request, namespace\n\
             # flags): a call with another is refused and reported like a syscall not in policy.\n",
        );
        // In the order of args::KEYS (socket first), not alphabetical.
        let rank = |k: &str| args::KEYS.iter().position(|x| *x == k);
        let mut keys: Vec<&String> = self.args.keys().collect();
        keys.sort_by_key(|k| rank(k));
        for key in keys {
            list(out, key, &self.args[key], |e| toml_str(e));
        }
        out.push('\n');
    }

    /// `[landlock]`: the learned paths and ports, and `policy`'s scopes.
    fn render_landlock(&self, out: &mut String, policy: &Policy) {
        out.push_str("[landlock]\n");
        out.push_str(
            "# Only these paths: not the whole image (paths are reduced to directories, see\n\
             # README \"Learned policies\").\ngrant_root = false\n",
        );
        list(out, "read_exec", &self.read_exec, |p| {
            toml_str(&p.display().to_string())
        });
        list(out, "read_write", &self.read_write, |p| {
            toml_str(&p.display().to_string())
        });
        out.push_str("# Directories only listed: their entries' names, not their files.\n");
        list(out, "list", &self.list, |p| {
            toml_str(&p.display().to_string())
        });
        list(out, "tcp_bind", &self.tcp_bind, u16::to_string);
        list(out, "tcp_connect", &self.tcp_connect, u16::to_string);
        let ll = &policy.landlock;
        let _ = writeln!(
            out,
            "scope_abstract_unix_sockets = {}\nscope_signals = {}\n",
            ll.scope_abstract_unix_sockets, ll.scope_signals
        );
    }

    /// `[limits]`: the measured peaks with their headroom, else `policy`'s pids; its cpus.
    fn render_limits(&self, out: &mut String, policy: &Policy) {
        out.push_str("[limits]\n");
        match &self.memory {
            Some((bytes, run, why)) => {
                let _ = writeln!(
                    out,
                    "memory = \"{}MiB\" # {}; {why}",
                    bytes >> 20,
                    run_label(*run)
                );
            }
            None => out.push_str("# memory: not measured (no memory cgroup for this user)\n"),
        }
        match (&self.pids, policy.limits.pids) {
            (Some((pids, run, why)), _) => {
                let _ = writeln!(out, "pids = {pids} # {}; {why}", run_label(*run));
            }
            (None, Some(pids)) => {
                let _ = writeln!(out, "pids = {pids} # not measured: the policy's");
            }
            (None, None) => {}
        }
        if let Some(cpus) = policy.limits.cpus {
            let _ = writeln!(out, "cpus = {cpus} # the policy's (not learned)");
        }
    }

    /// The seccomp profile: `policy`'s cut down to the learned syscalls (module documentation).
    fn profile(&self, policy: &Policy, json_path: &Path) -> Result<Value, LearnError> {
        let bad = |problem: String| LearnError::Profile {
            path: json_path.to_path_buf(),
            problem,
        };
        let origin = policy.seccomp.origin();
        let mut base: Value = if policy.seccomp.is_unconfined() {
            json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": libc::EPERM,
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}],
            })
        } else {
            let text = if origin.starts_with("builtin seccomp profile") {
                BUILTIN_DEFAULT_JSON.to_string()
            } else {
                std::fs::read_to_string(origin)
                    .map_err(|e| bad(format!("cannot read the base profile {origin}: {e}")))?
            };
            serde_json::from_str(&text).map_err(|e| bad(format!("base profile {origin}: {e}")))?
        };
        let rules = match base.get_mut("syscalls").map(Value::take) {
            Some(Value::Array(rules)) => rules,
            _ => Vec::new(),
        };
        let mut out = Vec::new();
        let mut placed = BTreeSet::new();
        for rule in rules {
            cut_rule(rule, &self.syscalls, &self.runs, &mut out, &mut placed);
        }
        // Unconfined base: one allow rule per run for everything seen.
        if policy.seccomp.is_unconfined() {
            out.retain(|r| r["names"].as_array().is_some_and(|n| !n.is_empty()));
            for (run, names) in by_run(self.syscalls.iter().filter(|(n, _)| !placed.contains(*n))) {
                out.push(json!({
                    "names": names,
                    "action": "SCMP_ACT_ALLOW",
                    "comment": self.rule_comment(run, None),
                }));
            }
        }
        let classes = self.arg_classes().map_err(&bad)?;
        let out = self.narrow_rules(out, &classes).map_err(bad)?;
        if let Some(obj) = base.as_object_mut() {
            obj.insert(
                "comment".into(),
                json!(format!(
                    "learned by rsafe run --learn from {} run(s); the base profile was {origin}",
                    self.runs.len()
                )),
            );
            obj.insert("syscalls".into(), Value::Array(out));
        }
        Ok(base)
    }

    /// The cut-down rules narrowed to the learned argument classes ([`args::narrow`]): each
    /// allow rule of `socket`, `ioctl`, `clone`, … becomes one rule per class, commented with
    /// the run that first needed the class.
    fn narrow_rules(
        &self,
        rules: Vec<Value>,
        classes: &args::ArgClasses,
    ) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        for mut rule in rules {
            let action = rule["action"].as_str().unwrap_or_default().to_string();
            let names: Vec<String> = rule["names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect();
            let (narrowed, kept): (Vec<String>, Vec<String>) =
                names.into_iter().partition(|n| classes.restricts(n));
            // Only objects are indexed for writing below (indexing another value panics).
            if !rule.is_object()
                || !matches!(action.as_str(), "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG")
                || narrowed.is_empty()
            {
                out.push(rule);
                continue;
            }
            let cmp = json_args(&rule["args"])?;
            let original = rule["comment"]
                .as_str()
                .map(|c| base_comment(c).to_string());
            for name in narrowed {
                let run = self.syscalls.get(&name).copied().unwrap_or(0);
                let one = |rule: &Value, action: Value, args: &[ArgCmp], what: String| {
                    let mut copy = rule.clone();
                    copy["names"] = json!([name]);
                    copy["action"] = action;
                    if args.is_empty() {
                        if let Some(o) = copy.as_object_mut() {
                            o.remove("args");
                        }
                    } else {
                        copy["args"] = args_json(args);
                    }
                    let base = original
                        .as_deref()
                        .map_or(String::new(), |o| format!("; base rule: {o}"));
                    copy["comment"] = json!(format!("{what}{base}"));
                    copy
                };
                match args::narrow(&name, &cmp, classes)? {
                    args::Narrowed::Dropped => {}
                    args::Narrowed::Enosys => {
                        let what = format!(
                            "{}{ARGS_MARK}: ENOSYS, its flags are in memory seccomp cannot read; glibc falls back to clone",
                            self.rule_comment(run, None)
                        );
                        let mut r = one(&rule, json!("SCMP_ACT_ERRNO"), &[], what);
                        r["errnoRet"] = json!(libc::ENOSYS);
                        out.push(r);
                    }
                    args::Narrowed::Rules(list) => {
                        let key = if matches!(name.as_str(), "clone" | "unshare") {
                            "clone_namespaces"
                        } else {
                            name.as_str()
                        };
                        for (label, cmp) in list {
                            let learned = self.args.get(key).and_then(|e| e.get(&label)).copied();
                            let what = format!(
                                "{} — {name} {label}{ARGS_MARK}",
                                self.rule_comment(learned.unwrap_or(run), None)
                            );
                            out.push(one(&rule, json!(action), &cmp, what));
                        }
                    }
                }
            }
            if let Some(o) = rule.as_object_mut() {
                o.insert("names".into(), json!(kept));
            }
            if rule["names"].as_array().is_some_and(|n| !n.is_empty()) {
                out.push(rule);
            }
        }
        Ok(out)
    }

    fn rule_comment(&self, run: usize, original: Option<&str>) -> String {
        rule_comment(&self.runs, run, original)
    }
}

/// `[paths]`: `policy`'s masked and read-only paths, kept as they were.
fn render_paths(out: &mut String, policy: &Policy) {
    out.push_str("[paths]\n");
    let strs = |v: &[String]| v.iter().map(|s| toml_str(s)).collect::<Vec<_>>().join(", ");
    let _ = writeln!(out, "masked = [{}]", strs(&policy.masked_paths));
    let _ = writeln!(out, "readonly = [{}]\n", strs(&policy.readonly_paths));
}

/// `[network]`: `policy`'s mode, kept as it was.
fn render_network(out: &mut String, policy: &Policy) {
    let mode = match policy.network {
        NetworkMode::None => "none",
        NetworkMode::Host => "host",
        NetworkMode::Slirp4netns => "slirp4netns",
    };
    let _ = writeln!(out, "\n[network]\nmode = \"{mode}\"");
}

fn rule_comment(runs: &[Run], run: usize, original: Option<&str>) -> String {
    let who = match run.checked_sub(1).and_then(|i| runs.get(i)) {
        Some(r) => format!("run {run}: {}", r.what),
        None => "run ?: an earlier run".to_string(),
    };
    match original {
        Some(text) => format!("{who} — {text}"),
        None => who,
    }
}

/// One rule of the base profile, cut down: an allowing rule is split per run into the learned
/// names it covers (none: dropped); any other rule is kept as it is.
fn cut_rule(
    mut rule: Value,
    learned: &BTreeMap<String, usize>,
    runs: &[Run],
    out: &mut Vec<Value>,
    placed: &mut BTreeSet<String>,
) {
    let action = rule["action"].as_str().unwrap_or_default().to_string();
    if action != "SCMP_ACT_ALLOW" && action != "SCMP_ACT_LOG" {
        out.push(rule);
        return;
    }
    let mut names: Vec<String> = Vec::new();
    if let Some(list) = rule.get("names").and_then(Value::as_array) {
        names.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    if let Some(name) = rule.get("name").and_then(Value::as_str) {
        names.push(name.to_string());
    }
    let original = rule
        .get("comment")
        .and_then(Value::as_str)
        .map(|s| strip_run_prefix(s).to_string())
        .filter(|s| !s.is_empty());
    let Some(obj) = rule.as_object_mut() else {
        return;
    };
    obj.remove("name");
    let kept = names.iter().filter_map(|n| learned.get_key_value(n));
    for (run, names) in by_run(kept) {
        placed.extend(names.iter().cloned());
        let mut copy = obj.clone();
        copy.insert("names".into(), json!(names));
        copy.insert(
            "comment".into(),
            json!(rule_comment(runs, run, original.as_deref())),
        );
        out.push(Value::Object(copy));
    }
}

/// What a narrowed rule's comment says after its class (`… ([seccomp.args])`).
const ARGS_MARK: &str = " ([seccomp.args])";

/// The base profile's own comment inside one this writer wrote (a rule narrowed again).
fn base_comment(comment: &str) -> &str {
    match comment.split_once("; base rule: ") {
        Some((_, base)) => base,
        None => strip_run_prefix(comment),
    }
}

/// A Docker profile rule's `args` as comparisons (the base profile was validated when its
/// policy was read; an unknown operator here is a profile edited since).
fn json_args(value: &Value) -> Result<Vec<ArgCmp>, String> {
    let mut out = Vec::new();
    for a in value.as_array().into_iter().flatten() {
        let name = a["op"].as_str().unwrap_or_default();
        let Some(op) = CmpOp::from_name(name) else {
            return Err(format!("unknown comparison {name:?}"));
        };
        let index = a["index"]
            .as_u64()
            .and_then(|i| u8::try_from(i).ok())
            .filter(|i| *i < 6)
            .ok_or_else(|| format!("argument index {} is not 0 to 5", a["index"]))?;
        out.push(ArgCmp {
            index,
            op,
            value: a["value"].as_u64().unwrap_or(0),
            value_two: a["valueTwo"].as_u64().unwrap_or(0),
        });
    }
    Ok(out)
}

/// Comparisons in Docker's shape (`{"index", "value", "valueTwo", "op": "SCMP_CMP_…"}`).
fn args_json(args: &[ArgCmp]) -> Value {
    let op = |op: CmpOp| match op {
        CmpOp::Ne => "SCMP_CMP_NE",
        CmpOp::Lt => "SCMP_CMP_LT",
        CmpOp::Le => "SCMP_CMP_LE",
        CmpOp::Eq => "SCMP_CMP_EQ",
        CmpOp::Ge => "SCMP_CMP_GE",
        CmpOp::Gt => "SCMP_CMP_GT",
        CmpOp::MaskedEq => "SCMP_CMP_MASKED_EQ",
    };
    Value::Array(
        args.iter()
            .map(|a| json!({"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": op(a.op)}))
            .collect(),
    )
}

/// A rule comment without the `run N: … — ` this writer put before the base's own comment.
fn strip_run_prefix(comment: &str) -> &str {
    if comment.starts_with("run ") {
        return comment.split_once(" — ").map_or("", |(_, rest)| rest);
    }
    comment
}

/// Names grouped by the run that first needed them, runs in order.
fn by_run<'a>(
    items: impl Iterator<Item = (&'a String, &'a usize)>,
) -> BTreeMap<usize, Vec<String>> {
    let mut groups: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (name, run) in items {
        groups.entry(*run).or_default().push(name.clone());
    }
    groups
}

/// The allowed names of a profile this writer wrote, with the run each rule comment names.
fn read_profile_names(path: &Path) -> Result<BTreeMap<String, usize>, LearnError> {
    let bad = |problem: String| LearnError::Profile {
        path: path.to_path_buf(),
        problem,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(bad(e.to_string())),
    };
    let doc: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut names = BTreeMap::new();
    for rule in doc["syscalls"].as_array().into_iter().flatten() {
        let action = rule["action"].as_str().unwrap_or_default();
        if action != "SCMP_ACT_ALLOW" && action != "SCMP_ACT_LOG" {
            continue;
        }
        let run = rule["comment"]
            .as_str()
            .and_then(|c| c.strip_prefix("run "))
            .and_then(|c| c.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        for name in rule["names"].as_array().into_iter().flatten() {
            if let Some(name) = name.as_str() {
                let e = names.entry(name.to_string()).or_insert(run);
                *e = (*e).min(run);
            }
        }
    }
    Ok(names)
}

/// Run numbers and notes from a learned TOML's comments.
#[derive(Debug, Default)]
struct Provenance {
    runs: Vec<Run>,
    /// (`section.key`, value as written without quotes; "" for a scalar key) → (run, note).
    entries: BTreeMap<(String, String), (usize, String)>,
}

impl Provenance {
    fn scan(text: &str) -> Provenance {
        let mut p = Provenance::default();
        let (mut section, mut key) = (String::new(), String::new());
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("# run ") {
                if let Some((_, body)) = rest.split_once(": ") {
                    let (when, what) = body.split_once(' ').unwrap_or((body, ""));
                    p.runs.push(Run {
                        when: when.to_string(),
                        what: what.to_string(),
                    });
                }
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
                continue;
            }
            let (code, comment) = line.split_once(" # ").unwrap_or((line, ""));
            if let Some((k, v)) = code.split_once(" = ") {
                key = k.trim().to_string();
                if !v.trim_start().starts_with('[') && !comment.is_empty() {
                    let full = format!("{section}.{key}");
                    p.entries.insert((full, String::new()), parse_note(comment));
                }
                continue;
            }
            let value = code.trim().trim_end_matches(',').trim_matches('"');
            if !comment.is_empty() && !value.is_empty() {
                let full = format!("{section}.{key}");
                p.entries
                    .insert((full, value.to_string()), parse_note(comment));
            }
        }
        p
    }

    fn run(&self, key: &str, value: &str) -> usize {
        self.entries
            .get(&(key.to_string(), value.to_string()))
            .map_or(0, |(run, _)| *run)
    }
}

/// `run 2; used: chown()` → (2, "used: chown()").
fn parse_note(comment: &str) -> (usize, String) {
    let (head, note) = comment.split_once("; ").unwrap_or((comment, ""));
    let run = head
        .strip_prefix("run ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (run, note.to_string())
}

fn run_label(run: usize) -> String {
    if run == 0 {
        "an earlier run".to_string()
    } else {
        format!("run {run}")
    }
}

/// A TOML list, one entry a line with its run.
fn list<K>(out: &mut String, key: &str, entries: &BTreeMap<K, usize>, show: impl Fn(&K) -> String) {
    if entries.is_empty() {
        let _ = writeln!(out, "{key} = []");
        return;
    }
    let _ = writeln!(out, "{key} = [");
    for (k, run) in entries {
        let _ = writeln!(out, "    {}, # {}", show(k), run_label(*run));
    }
    out.push_str("]\n");
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

fn memory_limit(peak: u64) -> u64 {
    let raw = (peak as f64 * MEMORY_HEADROOM) as u64;
    let mib = raw.div_ceil(1 << 20) << 20;
    mib.max(MIN_MEMORY)
}

fn human(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename, so a
/// failed run never leaves half a policy.
fn write_file(path: &Path, text: &str) -> Result<(), LearnError> {
    let err = |source| LearnError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(err)?;
    // A policy is no secret: readable like the builtin ones (the temporary file is 0600).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644)).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::learn::Access;

    fn run(what: &str) -> Run {
        Run {
            when: "2026-12-07T03:00:00Z".into(),
            what: what.into(),
        }
    }

    fn observed(syscalls: &[&str], paths: &[(&str, Access)], bind: &[u16]) -> Observed {
        let mut o = Observed {
            syscalls: syscalls.iter().map(|s| s.to_string()).collect(),
            ..Observed::default()
        };
        for (p, a) in paths {
            o.add_path(PathBuf::from(p), *a);
        }
        o.tcp_bind = bind.iter().copied().collect();
        o.peak_memory = Some(40 << 20);
        o.peak_pids = Some(3);
        o
    }

    fn first(dir: &Path) -> (PathBuf, Learned) {
        let out = dir.join("learned.toml");
        let mut l = Learned::read(&out).unwrap();
        assert_eq!(l, Learned::default(), "no file yet: empty");
        let seen = observed(
            &["openat", "read", "write", "fchownat", "clone"],
            &[
                ("/etc/passwd", Access::READ),
                ("/usr/lib/libc.so", Access::READ),
                ("/bin/sh", Access::EXECUTE),
                ("/tmp/out", Access::WRITE),
                // Its working directory, listed only.
                ("/", Access::LIST),
            ],
            &[80],
        );
        l.add_run(run("busybox sh -c first"), &seen, &Policy::default_policy());
        l.write(&out, &Policy::default_policy()).unwrap();
        (out, l)
    }

    #[test]
    fn the_written_file_is_a_policy_the_parser_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let (out, _) = first(dir.path());
        let p = Policy::from_file(&out).unwrap();
        let names: Vec<String> = p.capabilities.iter().map(|c| short_name(*c)).collect();
        // fchownat: CHOWN, FOWNER, FSETID used; bind to 80: NET_BIND_SERVICE; DAC_OVERRIDE
        // unverified; SETUID, SETGID, KILL dropped.
        assert_eq!(
            names,
            [
                "CHOWN",
                "DAC_OVERRIDE",
                "FOWNER",
                "FSETID",
                "NET_BIND_SERVICE"
            ]
        );
        assert!(!p.landlock.grant_root);
        assert!(p.report_denials, "a learned policy reports its denials");
        let paths = |v: &[PathBuf]| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            paths(&p.landlock.read_exec),
            ["/bin", "/etc/passwd", "/usr"]
        );
        assert_eq!(paths(&p.landlock.read_write), ["/tmp"]);
        assert_eq!(paths(&p.landlock.list), ["/"]);
        assert_eq!(p.landlock.tcp_bind, PortAccess::Only(vec![80]));
        assert_eq!(p.landlock.tcp_connect, PortAccess::Only(vec![]));
        // 40 MiB × 1.5; 3 tasks × 2, at least 16.
        assert_eq!(p.limits.memory, Some(60 << 20));
        assert_eq!(p.limits.pids, Some(16));
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("\"CHOWN\", # run 1; used: fchownat()"),
            "{text}"
        );
        assert!(text.contains("# run 1: 2026-12-07T03:00:00Z busybox sh -c first"));
        assert!(
            text.contains("Dropped (no run made a call that needs them): KILL"),
            "{text}"
        );
    }

    #[test]
    fn the_profile_is_the_base_cut_down_with_its_argument_conditions() {
        let dir = tempfile::tempdir().unwrap();
        let (out, _) = first(dir.path());
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(profile_path(&out)).unwrap()).unwrap();
        let rules = json["syscalls"].as_array().unwrap();
        let allowed: BTreeSet<&str> = rules
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
            .flat_map(|r| r["names"].as_array().unwrap())
            .filter_map(Value::as_str)
            .collect();
        let want: BTreeSet<&str> = [
            "clone", "execve", "fchownat", "openat", "read", "seccomp", "sendmsg", "write",
        ]
        .into();
        assert_eq!(allowed, want);
        // clone is allowed only without namespace flags, as in the base profile.
        let clone_args: Vec<&Value> = rules
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == "clone"))
            .map(|r| &r["args"])
            .collect();
        assert!(clone_args.iter().any(|a| a.is_array()), "{clone_args:?}");
        // Denials of the base stay.
        assert!(rules.iter().any(|r| {
            r["action"] == "SCMP_ACT_ERRNO"
                && r["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| n == "kexec_load")
        }));
        assert!(rules.iter().all(|r| {
            r["action"] != "SCMP_ACT_ALLOW"
                || r["comment"]
                    .as_str()
                    .unwrap()
                    .starts_with("run 1: busybox sh -c first")
        }));
        // And it loads as a profile.
        crate::runtime::seccomp::SeccompProfile::from_file(&profile_path(&out)).unwrap();
    }

    #[test]
    fn a_second_run_extends_the_file_and_keeps_who_needed_what_first() {
        let dir = tempfile::tempdir().unwrap();
        let (out, one) = first(dir.path());
        let mut l = Learned::read(&out).unwrap();
        assert_eq!(l.runs, one.runs);
        assert_eq!(l.syscalls, one.syscalls);
        assert_eq!(l.read_exec, one.read_exec);
        assert_eq!(l.capabilities, one.capabilities);
        let seen = observed(
            &["openat", "mkdir", "setuid"],
            &[
                ("/var/lib/app/db", Access::WRITE),
                ("/etc/hosts", Access::READ),
                ("/srv", Access::LIST),
            ],
            &[8080],
        );
        l.add_run(
            run("busybox sh -c second"),
            &seen,
            &Policy::default_policy(),
        );
        l.write(&out, &Policy::default_policy()).unwrap();
        let l = Learned::read(&out).unwrap();
        assert_eq!(l.runs.len(), 2);
        assert_eq!(l.syscalls["openat"], 1);
        assert_eq!(l.syscalls["mkdir"], 2);
        assert_eq!(l.read_exec[Path::new("/etc/passwd")], 1);
        assert_eq!(l.read_exec[Path::new("/etc/hosts")], 2);
        assert_eq!(l.read_write[Path::new("/var/lib")], 2);
        // /srv is below the first run's list rule on /.
        assert_eq!(
            l.list.iter().collect::<Vec<_>>(),
            [(&PathBuf::from("/"), &1)]
        );
        assert_eq!(l.tcp_bind.keys().copied().collect::<Vec<_>>(), [80, 8080]);
        assert_eq!(l.capabilities["SETUID"].0, 2);
        assert_eq!(l.capabilities["CHOWN"].0, 1);
        let p = Policy::from_file(&out).unwrap();
        assert_eq!(p.landlock.tcp_bind, PortAccess::Only(vec![80, 8080]));
    }

    #[test]
    fn entries_without_a_run_comment_are_kept_as_from_an_earlier_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("hand.toml");
        std::fs::write(
            &out,
            "[landlock]\ngrant_root = false\nread_exec = [\"/opt\"]\ntcp_bind = [443]\n",
        )
        .unwrap();
        let mut l = Learned::read(&out).unwrap();
        assert_eq!(l.read_exec[Path::new("/opt")], 0);
        l.add_run(
            run("x"),
            &observed(&["read"], &[], &[]),
            &Policy::default_policy(),
        );
        let text = l.render(&Policy::default_policy(), &profile_path(&out));
        assert!(text.contains("\"/opt\", # an earlier run"), "{text}");
        assert!(text.contains("443, # an earlier run"), "{text}");
    }

    #[test]
    fn a_file_that_is_not_a_policy_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("notes.toml");
        std::fs::write(&out, "this is not toml = = \n").unwrap();
        let e = Learned::read(&out).unwrap_err().to_string();
        assert!(
            e.contains("notes.toml") && e.contains("not a learned policy"),
            "{e}"
        );
    }

    fn socket(family: i32, kind: i32) -> args::SocketClass {
        args::SocketClass::of_call(family as u64, kind as u64)
    }

    /// The profile's allow rules for `name`: (comment, args).
    fn allow_rules(json: &Value, name: &str) -> Vec<(String, Value)> {
        json["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
            .map(|r| {
                (
                    r["comment"].as_str().unwrap().to_string(),
                    r["args"].clone(),
                )
            })
            .collect()
    }

    #[test]
    fn argument_classes_are_written_merged_and_exported_as_docker_args() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("learned.toml");
        let mut one = observed(&["socket", "ioctl", "clone", "read"], &[], &[]);
        one.sockets.insert(socket(libc::AF_UNIX, libc::SOCK_STREAM));
        one.ioctls.extend([0x5401, 0xc004_ab01]);
        let mut l = Learned::default();
        l.add_run(run("first"), &one, &Policy::default_policy());
        // The summary line's count: one socket class and two ioctl requests; the empty
        // socketpair and clone_namespaces keys restrict without adding a class.
        assert_eq!(l.arg_class_count(), 3);
        l.write(&out, &Policy::default_policy()).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("[seccomp.args]"), "{text}");
        assert!(text.contains("\"AF_UNIX/SOCK_STREAM\", # run 1"), "{text}");
        assert!(text.contains("\"TCGETS\", # run 1"), "{text}");
        assert!(text.contains("\"0xc004ab01\", # run 1"), "{text}");
        assert!(text.contains("clone_namespaces = []"), "{text}");
        assert!(text.contains("socketpair = []"), "{text}");

        // Read back by the policy parser: the enforced profile is narrowed.
        let p = Policy::from_file(&out).unwrap();
        assert_eq!(
            args::summary(&p.seccomp_args).as_deref(),
            Some(
                "socket AF_UNIX/SOCK_STREAM; socketpair none; ioctl TCGETS, 0xc004ab01; clone_namespaces none"
            )
        );
        // The JSON: socket only for AF_UNIX stream, in Docker's shape (the family's low 32
        // bits, the type without its flags); ioctl for the two requests, masked as Docker
        // masks TIOCSTI; clone without namespace flags.
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(profile_path(&out)).unwrap()).unwrap();
        let sockets = allow_rules(&json, "socket");
        assert_eq!(sockets.len(), 1, "{sockets:?}");
        assert_eq!(
            sockets[0].1,
            json!([
                {"index": 0, "value": 0xffff_ffffu64, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"},
                {"index": 1, "value": 15, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"},
            ])
        );
        assert!(
            sockets[0].0.starts_with("run 1: first — socket AF_UNIX/SOCK_STREAM ([seccomp.args]); base rule: socket(AF_UNIX"),
            "{sockets:?}"
        );
        let ioctls: Vec<Value> = allow_rules(&json, "ioctl")
            .into_iter()
            .map(|r| r.1)
            .collect();
        assert_eq!(
            ioctls,
            [
                json!([{"index": 1, "value": 0xffff_ffffu64, "valueTwo": 0x5401, "op": "SCMP_CMP_MASKED_EQ"}]),
                json!([{"index": 1, "value": 0xffff_ffffu64, "valueTwo": 0xc004_ab01u64, "op": "SCMP_CMP_MASKED_EQ"}]),
            ]
        );
        // Both clone rules (without CAP_SYS_ADMIN, and Docker's rule for it, which allowed any
        // flags) now refuse every namespace flag.
        let clone = allow_rules(&json, "clone");
        assert_eq!(clone.len(), 2, "{clone:?}");
        for (_, args) in &clone {
            assert_eq!(args[0]["value"], json!(args::CLONE_NAMESPACES), "{clone:?}");
        }
        // It loads, and compiles.
        let profile =
            crate::runtime::seccomp::SeccompProfile::from_file(&profile_path(&out)).unwrap();
        crate::runtime::seccomp::compile(&profile, &p.capabilities).unwrap();

        // A second run adds AF_INET6 and a request: both attributed to it, run 1's kept.
        let mut l = Learned::read(&out).unwrap();
        assert_eq!(l.args["socket"]["AF_UNIX/SOCK_STREAM"], 1);
        let mut two = observed(&["socket"], &[], &[]);
        two.sockets.insert(socket(libc::AF_INET6, libc::SOCK_DGRAM));
        two.sockets.insert(socket(libc::AF_UNIX, libc::SOCK_STREAM));
        two.ioctls.insert(0x5413);
        l.add_run(run("second"), &two, &Policy::default_policy());
        l.write(&out, &Policy::default_policy()).unwrap();
        let l = Learned::read(&out).unwrap();
        let socket_runs: Vec<(&str, usize)> = l.args["socket"]
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(
            socket_runs,
            [("AF_INET6/SOCK_DGRAM", 2), ("AF_UNIX/SOCK_STREAM", 1)]
        );
        assert_eq!(l.args["ioctl"]["TIOCGWINSZ"], 2);
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(profile_path(&out)).unwrap()).unwrap();
        let comments: Vec<String> = allow_rules(&json, "socket")
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(comments.len(), 2, "{comments:?}");
        assert!(
            comments
                .iter()
                .any(|c| c.starts_with("run 2: second — socket AF_INET6/SOCK_DGRAM")),
            "{comments:?}"
        );
    }

    #[test]
    fn learning_again_under_a_narrowed_profile_keeps_its_rules_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("again.toml");
        let mut seen = observed(&["socket", "ioctl", "clone"], &[], &[]);
        seen.sockets
            .insert(socket(libc::AF_UNIX, libc::SOCK_STREAM));
        seen.ioctls.insert(0x5401);
        let mut l = Learned::default();
        l.add_run(run("first"), &seen, &Policy::default_policy());
        l.write(&out, &Policy::default_policy()).unwrap();
        let before: Value =
            serde_json::from_str(&std::fs::read_to_string(profile_path(&out)).unwrap()).unwrap();
        // The second run is made under the learned policy (its narrowed profile the base).
        let under = Policy::from_file(&out).unwrap();
        let mut l = Learned::read(&out).unwrap();
        l.add_run(run("second"), &seen, &under);
        l.write(&out, &under).unwrap();
        let after: Value =
            serde_json::from_str(&std::fs::read_to_string(profile_path(&out)).unwrap()).unwrap();
        for name in ["socket", "ioctl", "clone"] {
            let args = |v: &Value| -> Vec<Value> {
                allow_rules(v, name).into_iter().map(|r| r.1).collect()
            };
            assert_eq!(args(&after), args(&before), "{name}");
            for (comment, _) in allow_rules(&after, name) {
                assert_eq!(comment.matches("base rule:").count(), 1, "{comment}");
                assert!(comment.starts_with("run 1: first"), "{comment}");
            }
        }
    }

    #[test]
    fn a_file_without_argument_classes_stays_unrestricted_when_extended() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("old.toml");
        std::fs::write(
            &out,
            "# run 1: 2026-12-01T00:00:00Z an old run\n[landlock]\ngrant_root = false\n",
        )
        .unwrap();
        let mut l = Learned::read(&out).unwrap();
        let mut seen = observed(&["socket"], &[], &[]);
        seen.sockets.insert(socket(libc::AF_UNIX, libc::SOCK_DGRAM));
        l.add_run(run("x"), &seen, &Policy::default_policy());
        assert!(l.args.is_empty());
        let text = l.render(&Policy::default_policy(), &profile_path(&out));
        assert!(!text.contains("[seccomp.args]"), "{text}");
    }

    #[test]
    fn limits_have_headroom_and_a_floor() {
        assert_eq!(memory_limit(1 << 20), MIN_MEMORY);
        assert_eq!(memory_limit(100 << 20), 150 << 20);
        assert_eq!(memory_limit((100 << 20) + 1), 151 << 20);
    }
}
