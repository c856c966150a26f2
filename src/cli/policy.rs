//! `rsafe policy list` and `rsafe policy show [NAME|FILE]`: what a run would enforce, on this
//! kernel, with these flags. Also the confinement flags `rsafe run` shares (`OverrideArgs`).
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::runtime::caps::short_name;
use crate::runtime::landlock::{self, LandlockPolicy, LandlockStatus, PortAccess};
use crate::runtime::network;
use crate::runtime::policy::{Overrides, Policy};
use crate::runtime::seccomp;
use crate::runtime::seccomp::args::ArgClasses;

/// `rsafe policy …`
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the builtin policies.
    List,
    /// Print the effective policy: capabilities, seccomp, landlock (and what this kernel
    /// enforces of it), masked paths, limits, network.
    Show(ShowArgs),
    /// Explain in words what B allows that A does not and the reverse: capabilities, syscalls,
    /// landlock paths and ports, masked paths, limits, network. Exit code 0 when they enforce
    /// the same, 1 when they differ, 2 when one cannot be read.
    Diff(DiffArgs),
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// A builtin policy name or a policy file.
    #[arg(value_name = "A")]
    pub a: String,
    /// A builtin policy name or a policy file.
    #[arg(value_name = "B")]
    pub b: String,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A builtin policy name or a policy file.
    #[arg(default_value = "default", value_name = "NAME|FILE")]
    pub policy: String,
    #[command(flatten)]
    pub overrides: OverrideArgs,
    /// Also list, one per line, every syscall the seccomp filter allows (`allow NAME`) or
    /// allows for some arguments only (`args NAME`): to compare profiles with diff.
    #[arg(long)]
    pub syscalls: bool,
    /// The policy as `rsafe run -p SPEC` would apply it: each published TCP container port
    /// is one the workload may bind (added to a landlock bind list). Repeatable.
    #[arg(short, long = "publish", value_name = "[IP:]HOST:CONTAINER")]
    pub publish: Vec<String>,
}

/// The flags that change a policy, shared by `rsafe run` and `rsafe policy show`.
#[derive(Debug, Clone, Default, Args)]
pub struct OverrideArgs {
    /// Keep a capability the policy drops (NET_RAW or CAP_NET_RAW; ALL). Repeatable.
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability the policy keeps (ALL drops every one; --cap-add applies after).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Seccomp profile: a Docker-format JSON file, a builtin name (default), or `unconfined`.
    #[arg(long, value_name = "FILE|unconfined")]
    pub seccomp: Option<String>,
}

impl OverrideArgs {
    /// The flags as library overrides.
    pub fn to_overrides(&self) -> Overrides {
        Overrides {
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            seccomp: self.seccomp.clone(),
        }
    }
}

/// Loads `name_or_path` and applies the flags: the policy a run with them would use.
pub fn effective_policy(name_or_path: &str, flags: &OverrideArgs) -> anyhow::Result<Policy> {
    let mut policy = Policy::load(name_or_path)?;
    policy.apply_overrides(&flags.to_overrides())?;
    Ok(policy)
}

/// Runs `rsafe policy …`.
pub fn run(args: PolicyArgs) -> anyhow::Result<i32> {
    match args.command {
        PolicyCommand::List => {
            for name in Policy::builtin_names() {
                let policy = Policy::load(name)?;
                println!("{name:<12} {}", policy.description);
            }
        }
        PolicyCommand::Show(show) => {
            let mut policy = effective_policy(&show.policy, &show.overrides)?;
            let mut ports = Vec::new();
            for p in &show.publish {
                ports.extend(network::parse_publish(p)?);
            }
            let added = network::allow_published(&mut policy.landlock.tcp_bind, &ports);
            let mut text = render(&policy)?;
            if !added.is_empty() {
                let line = format!(
                    "  TCP bind:     {}\n",
                    ports_text(&policy.landlock.tcp_bind)
                );
                let list: Vec<String> = added.iter().map(u16::to_string).collect();
                let note = format!(
                    "{}  (-p adds a bind rule for {}: a published port is one the workload binds)\n",
                    line.trim_end(),
                    list.join(", ")
                );
                text = text.replacen(&line, &note, 1);
            }
            print!("{text}");
            if show.syscalls {
                print!("{}", syscall_list(&policy)?);
            }
        }
        PolicyCommand::Diff(args) => {
            // As diff(1) and `rsafe audit`: 0 same, 1 different, 2 trouble.
            let compared = Policy::load(&args.a)
                .and_then(|a| Ok((a, Policy::load(&args.b)?)))
                .map_err(anyhow::Error::from)
                .and_then(|(a, b)| diff(&a, &b));
            let lines = match compared {
                Ok(lines) => lines,
                Err(e) => {
                    eprintln!("rsafe: {e:#}");
                    return Ok(2);
                }
            };
            if lines.is_empty() {
                println!("{} and {} enforce the same", args.a, args.b);
                return Ok(0);
            }
            println!("from {} to {}:", args.a, args.b);
            for line in lines {
                println!("  {line}");
            }
            return Ok(1);
        }
    }
    Ok(0)
}

/// What changes from `a` to `b`, one sentence per difference (none: they enforce the same).
pub fn diff(a: &Policy, b: &Policy) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let names =
        |p: &Policy| -> Vec<String> { p.capabilities.iter().map(|c| short_name(*c)).collect() };
    changes(
        &mut out,
        "capabilities",
        "keeps",
        "drops",
        &names(a),
        &names(b),
    );
    seccomp_changes(&mut out, a, b)?;
    arg_changes(&mut out, &a.seccomp_args, &b.seccomp_args);
    landlock_path_changes(&mut out, &a.landlock, &b.landlock);
    landlock_net_changes(&mut out, &a.landlock, &b.landlock);
    other_changes(&mut out, a, b);
    Ok(out)
}

/// The syscalls each compiled profile allows (compiled as a run would, so a capability's
/// conditional rules count), or that one of them is unconfined.
fn seccomp_changes(out: &mut Vec<String>, a: &Policy, b: &Policy) -> anyhow::Result<()> {
    let (fa, fb) = (compile_seccomp(a)?, compile_seccomp(b)?);
    let (sa, sb) = (fa.summary(), fb.summary());
    match (sa.unconfined, sb.unconfined) {
        (false, true) => out.push("seccomp: B is unconfined (every syscall allowed)".into()),
        (true, false) => out.push("seccomp: B filters syscalls; A is unconfined".into()),
        _ => {
            let all = |s: &seccomp::SeccompSummary| -> Vec<String> {
                let mut v = s.allowed_names.clone();
                v.extend(s.allowed_with_args_names.iter().cloned());
                v
            };
            let (na, nb) = (all(sa), all(sb));
            if na != nb {
                out.push(format!(
                    "syscalls: A allows {}, B allows {}",
                    na.len(),
                    nb.len()
                ));
            }
            changes(out, "syscalls", "allows", "refuses", &na, &nb);
        }
    }
    Ok(())
}

/// Landlock's filesystem side: the whole image or not, then each access's granted paths.
fn landlock_path_changes(out: &mut Vec<String>, la: &LandlockPolicy, lb: &LandlockPolicy) {
    if la.grant_root != lb.grant_root {
        out.push(if lb.grant_root {
            "landlock: B grants the whole image (and a writable root); A only its listed paths".into()
        } else {
            "landlock: B grants only its listed paths, not the whole image; A grants the whole image".into()
        });
    }
    let shown = |v: &[std::path::PathBuf]| -> Vec<String> {
        v.iter().map(|p| p.display().to_string()).collect()
    };
    for (what, pa, pb) in [
        ("landlock read+exec", &la.read_exec, &lb.read_exec),
        ("landlock read+write", &la.read_write, &lb.read_write),
        ("landlock list-only", &la.list, &lb.list),
    ] {
        changes(
            out,
            what,
            "grants",
            "no longer grants",
            &shown(pa),
            &shown(pb),
        );
    }
}

/// Landlock's TCP ports and scopes (abstract UNIX sockets, signals).
fn landlock_net_changes(out: &mut Vec<String>, la: &LandlockPolicy, lb: &LandlockPolicy) {
    for (what, pa, pb) in [
        ("TCP bind", &la.tcp_bind, &lb.tcp_bind),
        ("TCP connect", &la.tcp_connect, &lb.tcp_connect),
    ] {
        if pa != pb {
            out.push(format!(
                "landlock {what}: A {}, B {}",
                ports_text(pa),
                ports_text(pb)
            ));
        }
    }
    for (what, xa, xb) in [
        (
            "abstract UNIX socket scoping",
            la.scope_abstract_unix_sockets,
            lb.scope_abstract_unix_sockets,
        ),
        ("signal scoping", la.scope_signals, lb.scope_signals),
    ] {
        if xa != xb {
            out.push(format!(
                "landlock {what}: {}",
                if xb {
                    "on in B, off in A"
                } else {
                    "off in B, on in A"
                }
            ));
        }
    }
}

/// Everything outside capabilities, seccomp and landlock: masked and read-only paths, limits,
/// network and the audit gate.
fn other_changes(out: &mut Vec<String>, a: &Policy, b: &Policy) {
    changes(
        out,
        "masked paths",
        "masks",
        "unmasks",
        &a.masked_paths,
        &b.masked_paths,
    );
    changes(
        out,
        "read-only paths",
        "protects",
        "leaves writable",
        &a.readonly_paths,
        &b.readonly_paths,
    );
    if a.limits != b.limits {
        out.push(format!("limits: A {}, B {}", a.limits, b.limits));
    }
    if a.network != b.network {
        out.push(format!("network: A {}, B {}", a.network, b.network));
    }
    if a.gate != b.gate {
        let gate = |g: Option<crate::audit::finding::Severity>| {
            g.map_or_else(|| "off".to_string(), |s| s.to_string())
        };
        out.push(format!(
            "audit gate: A {}, B {}",
            gate(a.gate),
            gate(b.gate)
        ));
    }
}

/// `[seccomp.args]` differences: `seccomp args: B also allows socket AF_NETLINK/SOCK_RAW`,
/// `… B no longer allows ioctl TIOCGWINSZ`, or a key restricted in one policy only.
fn arg_changes(out: &mut Vec<String>, a: &ArgClasses, b: &ArgClasses) {
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    for ((key, ea), (_, eb)) in a.entries().into_iter().zip(b.entries()) {
        match (ea, eb) {
            (Some(ea), Some(eb)) => {
                let only = |x: &[String], y: &[String]| -> Vec<String> {
                    x.iter().filter(|i| !y.contains(i)).cloned().collect()
                };
                let (added, removed) = (only(&eb, &ea), only(&ea, &eb));
                if !added.is_empty() {
                    out.push(format!(
                        "seccomp args: B also allows {key} {}",
                        added.join(", ")
                    ));
                }
                if !removed.is_empty() {
                    out.push(format!(
                        "seccomp args: B no longer allows {key} {}",
                        removed.join(", ")
                    ));
                }
            }
            (None, Some(eb)) => out.push(format!(
                "seccomp args: B restricts {key} to {}; A to nothing but its profile's rules",
                list(&eb)
            )),
            (Some(ea), None) => out.push(format!(
                "seccomp args: B leaves {key} to its profile's rules; A restricts it to {}",
                list(&ea)
            )),
            (None, None) => {}
        }
    }
}

/// `what: B <adds> X, Y` and `what: B <removes> Z` for the items only in one list.
fn changes(
    out: &mut Vec<String>,
    what: &str,
    adds: &str,
    removes: &str,
    a: &[String],
    b: &[String],
) {
    let only = |x: &[String], y: &[String]| -> Vec<String> {
        let mut v: Vec<String> = x.iter().filter(|i| !y.contains(i)).cloned().collect();
        v.sort();
        v.dedup();
        v
    };
    let list = |v: &[String]| {
        const SHOWN: usize = 40;
        let mut text = v[..v.len().min(SHOWN)].join(", ");
        if v.len() > SHOWN {
            text.push_str(&format!(", … ({} in all)", v.len()));
        }
        text
    };
    let added = only(b, a);
    let removed = only(a, b);
    if !added.is_empty() {
        out.push(format!(
            "{what}: B {adds} {} that A does not: {}",
            added.len(),
            list(&added)
        ));
    }
    if !removed.is_empty() {
        out.push(format!(
            "{what}: B {removes} {} that A {adds}: {}",
            removed.len(),
            list(&removed)
        ));
    }
}

/// The text of `rsafe policy show`.
pub fn render(policy: &Policy) -> anyhow::Result<String> {
    let mut out = String::new();
    let w = &mut out;
    writeln!(w, "policy {} ({})", policy.name, policy.source)?;
    writeln!(w, "  {}", policy.description)?;
    render_capabilities(w, policy)?;
    render_seccomp(w, policy)?;
    render_landlock(w, &policy.landlock)?;

    writeln!(w, "\nmasked:         {}", policy.masked_paths.join(" "))?;
    writeln!(w, "read-only:      {}", policy.readonly_paths.join(" "))?;
    writeln!(w, "limits:         {}", policy.limits)?;
    writeln!(w, "network:        {}", policy.network)?;
    let gate = policy.gate.map_or_else(
        || "off (rsafe run --gate SEVERITY turns it on)".to_string(),
        |s| format!("{s}: images with a finding at or above it are refused"),
    );
    writeln!(w, "audit gate:     {gate}")?;
    for warning in policy.warnings() {
        writeln!(w, "warning: {warning}")?;
    }
    Ok(out)
}

/// `capabilities:`: how many are kept, in which sets, and their names.
fn render_capabilities(w: &mut String, policy: &Policy) -> std::fmt::Result {
    let caps: Vec<String> = policy.capabilities.iter().map(|c| short_name(*c)).collect();
    writeln!(
        w,
        "\ncapabilities: {} kept (bounding, permitted, effective); inheritable and ambient empty; no_new_privs",
        caps.len()
    )?;
    writeln!(
        w,
        "  {}",
        if caps.is_empty() {
            "(none)".to_string()
        } else {
            caps.join(" ")
        }
    )
}

/// `seccomp:`: the compiled filter's summary, how denials show and the argument table.
fn render_seccomp(w: &mut String, policy: &Policy) -> anyhow::Result<()> {
    let filter = compile_seccomp(policy)?;
    writeln!(w, "\nseccomp:")?;
    write!(w, "{}", filter.summary())?;
    writeln!(
        w,
        "  denials:      {}",
        if policy.report_denials {
            "reported by name on stderr (report_denials = true)"
        } else {
            "the workload's errno only (report_denials = false)"
        }
    )?;
    if let Some(classes) = seccomp::args::summary(&policy.seccomp_args) {
        writeln!(w, "  arguments:    only {classes} ([seccomp.args])")?;
    }
    Ok(())
}

/// `landlock:`: what this kernel enforces of it, the granted paths, ports and scopes.
fn render_landlock(w: &mut String, ll: &LandlockPolicy) -> std::fmt::Result {
    let status = LandlockStatus::predict(ll, landlock::kernel_abi());
    let paths = |extra: &[std::path::PathBuf], runner: &str| {
        let mut all = vec![runner.to_string()];
        all.extend(extra.iter().map(|p| p.display().to_string()));
        all.join(", ")
    };
    let mut scopes = Vec::new();
    if ll.scope_abstract_unix_sockets {
        scopes.push("abstract UNIX sockets");
    }
    if ll.scope_signals {
        scopes.push("signals");
    }
    writeln!(w, "\nlandlock:")?;
    writeln!(w, "  this kernel:  {status}")?;
    let (image, writable) = if ll.grant_root {
        (
            "the image (from the runner)",
            "writable mounts (from the runner)",
        )
    } else {
        (
            "not the image (grant_root = false)",
            "--tmpfs and read-write volumes",
        )
    };
    writeln!(w, "  read+exec:    {}", paths(&ll.read_exec, image))?;
    writeln!(w, "  read+write:   {}", paths(&ll.read_write, writable))?;
    if !ll.list.is_empty() {
        let list: Vec<String> = ll.list.iter().map(|p| p.display().to_string()).collect();
        writeln!(w, "  list only:    {}", list.join(", "))?;
    }
    writeln!(w, "  TCP bind:     {}", ports_text(&ll.tcp_bind))?;
    writeln!(w, "  TCP connect:  {}", ports_text(&ll.tcp_connect))?;
    let scopes = if scopes.is_empty() {
        "none".to_string()
    } else {
        format!("{} stay inside the container", scopes.join(" and "))
    };
    writeln!(w, "  scoped:       {scopes}")
}

/// The policy's seccomp profile compiled for its capabilities, as a run would.
fn compile_seccomp(policy: &Policy) -> anyhow::Result<seccomp::CompiledFilter> {
    seccomp::compile(&policy.seccomp, &policy.capabilities).with_context(|| {
        format!(
            "cannot compile the seccomp profile of policy {}",
            policy.name
        )
    })
}

/// `rsafe policy show --syscalls`: `allow NAME` and `args NAME` lines after a `syscalls:`
/// header, sorted by name, for the native ABI's view of the filter.
pub fn syscall_list(policy: &Policy) -> anyhow::Result<String> {
    let filter = compile_seccomp(policy)?;
    let summary = filter.summary();
    let mut out = String::from("\nsyscalls:\n");
    if summary.unconfined {
        out.push_str("  (unconfined: every syscall is allowed)\n");
        return Ok(out);
    }
    let mut lines: Vec<(&str, &str)> = summary
        .allowed_names
        .iter()
        .map(|n| (n.as_str(), "allow"))
        .chain(
            summary
                .allowed_with_args_names
                .iter()
                .map(|n| (n.as_str(), "args")),
        )
        .collect();
    lines.sort();
    for (name, how) in lines {
        writeln!(out, "{how} {name}")?;
    }
    Ok(out)
}

fn ports_text(access: &PortAccess) -> String {
    match access {
        PortAccess::Any => "any port (not restricted by landlock)".to_string(),
        PortAccess::Only(p) if p.is_empty() => "none".to_string(),
        only => format!("only {only}"),
    }
}
