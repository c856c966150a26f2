//! Turning a Docker-format profile into BPF programs with libseccomp, ready to load.
//!
//! Three things go beyond handing each rule to libseccomp:
//! - **Carve-outs.** libseccomp silently drops a conditional rule on a syscall that also has an
//!   unconditional rule ("allow ioctl, but EPERM for TIOCSTI" loses the TIOCSTI part), and it
//!   refuses rules whose action equals the default. So conditional rules whose action is not
//!   ALLOW go into a second filter whose default is ALLOW. The kernel runs every installed
//!   filter and keeps the most restrictive verdict, so a conditional denial always wins over an
//!   allow — the meaning such rules are written with.
//! - **ENOSYS for syscalls newer than the profile** (see [`super::bpf`]).
//! - **Docker's `includes`/`excludes`** (kept capabilities, host arch `amd64`, kernel version),
//!   and runc's rule that conditions on the same argument are alternatives (OR), not all
//!   required: libseccomp rejects such rules outright.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use ::caps::Capability;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use super::bpf::{self, Insn, KnownMax};
use super::profile::{Action, ArgCmp, CmpOp, Condition, FilterFlag, KernelVersion, Profile, Rule};
use super::{CompiledFilter, ConditionalRule, SeccompError, SeccompProfile, SeccompSummary};

/// Docker's name for this host's architecture in `includes.arches` / `excludes.arches`.
const HOST_GO_ARCH: &str = "amd64";

/// What the profile's rules were compiled against: the kept capabilities and the kernel.
struct Context {
    caps: Vec<String>,
    kernel: Option<KernelVersion>,
}

/// One libseccomp rule: an action and the comparisons that must all hold.
#[derive(Debug, Clone, PartialEq)]
struct SimpleRule {
    action: Action,
    args: Vec<ArgCmp>,
}

/// Compiles `profile` for a container keeping `caps_kept`. Call this before the last fork:
/// libseccomp allocates, [`CompiledFilter::load`] does not.
///
/// The profile's rules that apply here (its conditions on capabilities, kernel and
/// architecture) are gathered per syscall, planned ([`plan_syscall`]) into a main filter and,
/// for argument carve-outs the main filter cannot express, a restricting one stacked on it;
/// both are exported as BPF and checked against the kernel's size limit.
pub fn compile(
    profile: &SeccompProfile,
    caps_kept: &[Capability],
) -> Result<CompiledFilter, SeccompError> {
    let Some(p) = profile.profile() else {
        return Ok(CompiledFilter {
            programs: Vec::new(),
            flags: 0,
            summary: SeccompSummary::unconfined(profile.origin()),
        });
    };
    if ScmpArch::native() != ScmpArch::X8664 {
        return Err(SeccompError::UnsupportedHost {
            arch: std::env::consts::ARCH,
        });
    }
    let ctx = Context {
        caps: caps_kept.iter().map(|c| c.to_string()).collect(),
        kernel: kernel_version(),
    };
    let origin = profile.origin().to_string();
    let mut summary = SeccompSummary::new(&origin, p.default_action);
    let arches = architectures(p, &mut summary);
    // "What the profile knows": every name in every rule, whatever its action or conditions.
    summary.known_max = known_max(p, &arches);
    let by_name = rules_by_name(p, &ctx, &mut summary);
    let mut filters = Filters {
        main: new_filter(p.default_action, ScmpAction::KillProcess, &arches, &origin)?,
        restrict: new_filter(Action::Allow, ScmpAction::Allow, &arches, &origin)?,
        restrict_rules: 0,
    };
    for (name, rules) in &by_name {
        filters.add_syscall(name, rules, p, &arches, &origin, &mut summary)?;
    }
    let programs = filters.export(p.default_action, &origin, &mut summary)?;
    Ok(CompiledFilter {
        programs,
        flags: filter_flags(p),
        summary,
    })
}

/// The architectures filtered: x86_64 always; i386 and x32 only when the profile names them.
/// Other architectures cannot run on this host and are left out (and listed as ignored).
fn architectures(p: &Profile, summary: &mut SeccompSummary) -> Vec<ScmpArch> {
    let mut arches = vec![ScmpArch::X8664];
    for name in &p.architectures {
        let arch = match name.as_str() {
            "SCMP_ARCH_X86_64" => ScmpArch::X8664,
            "SCMP_ARCH_X86" => ScmpArch::X86,
            "SCMP_ARCH_X32" => ScmpArch::X32,
            other => {
                summary.ignored_architectures.push(other.to_string());
                continue;
            }
        };
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    summary.architectures = arches.iter().map(|a| arch_label(*a).to_string()).collect();
    arches
}

/// The rules that apply here, per syscall name, in file order (a rule testing one argument
/// twice becomes one rule per test, as runc does); conditional rules are recorded in the
/// summary whether they applied or not.
fn rules_by_name<'p>(
    p: &'p Profile,
    ctx: &Context,
    summary: &mut SeccompSummary,
) -> BTreeMap<&'p str, Vec<SimpleRule>> {
    let mut by_name: BTreeMap<&str, Vec<SimpleRule>> = BTreeMap::new();
    for rule in &p.syscalls {
        let applies = ctx.applies(rule);
        if let Some(condition) = describe_condition(rule) {
            summary.conditional_rules.push(ConditionalRule {
                condition,
                names: rule.names.clone(),
                action: rule.action,
                applied: applies,
            });
        }
        if !applies {
            summary.rules_skipped_by_conditions += 1;
            continue;
        }
        for args in split_same_index(&rule.args) {
            for name in &rule.names {
                let simple = SimpleRule {
                    action: rule.action,
                    args: args.clone(),
                };
                let list = by_name.entry(name.as_str()).or_default();
                if !list.contains(&simple) {
                    list.push(simple);
                }
            }
        }
    }
    by_name
}

/// The two libseccomp filters a profile becomes: the main one (the profile's default action),
/// and the restricting one (default allow) holding carve-outs.
struct Filters {
    main: ScmpFilterContext,
    restrict: ScmpFilterContext,
    restrict_rules: usize,
}

impl Filters {
    /// Adds syscall `name`'s rules as [`plan_syscall`] plans them, and says so in `summary`
    /// (names unknown to libseccomp or absent on these architectures are listed, not added).
    fn add_syscall(
        &mut self,
        name: &str,
        rules: &[SimpleRule],
        p: &Profile,
        arches: &[ScmpArch],
        origin: &str,
        summary: &mut SeccompSummary,
    ) -> Result<(), SeccompError> {
        let Some(syscall) = resolve(name, arches) else {
            if ScmpSyscall::from_name(name).is_err() {
                summary.unknown_names.push(name.to_string());
            } else {
                summary.absent_on_arches.push(name.to_string());
            }
            return Ok(());
        };
        let plan = plan_syscall(name, rules, p.default_action, origin)?;
        // Counted for x86_64, the ABI every container runs; names that exist only for
        // i386/x32 are counted apart.
        let native = ScmpSyscall::from_name_by_arch(name, ScmpArch::X8664)
            .is_ok_and(|s| s.as_raw_syscall() >= 0);
        if let Some(action) = plan.unconditional {
            add(&mut self.main, name, syscall, action, &[], origin)?;
            match action {
                Action::Allow if !native => summary.allowed_compat_only += 1,
                Action::Allow => {
                    summary.allowed += 1;
                    summary.allowed_names.push(name.to_string());
                }
                _ => summary.other_actions.push((name.to_string(), action)),
            }
        } else if !plan.conditional_allows.is_empty() {
            if native {
                summary.allowed_with_args += 1;
                summary.allowed_with_args_names.push(name.to_string());
            } else {
                summary.allowed_compat_only += 1;
            }
        }
        if plan.redundant_denial {
            summary.denied_explicitly.push(name.to_string());
        }
        for &ignored in &plan.overridden {
            let kept = plan.unconditional.unwrap_or(p.default_action);
            summary.overridden.push((name.to_string(), kept, ignored));
        }
        for rule in &plan.conditional_allows {
            add(
                &mut self.main,
                name,
                syscall,
                rule.action,
                &rule.args,
                origin,
            )?;
        }
        for rule in &plan.carve_outs {
            add(
                &mut self.restrict,
                name,
                syscall,
                rule.action,
                &rule.args,
                origin,
            )?;
            summary.carve_outs.push(format!(
                "{name}({}) → {}",
                describe(&rule.args),
                rule.action
            ));
            self.restrict_rules += 1;
        }
        Ok(())
    }

    /// The BPF programs, in load order: the main filter (behind the ENOSYS prefix for
    /// syscalls newer than the profile, unless it allows or logs by default), then the
    /// restricting one if it has rules. Each must fit the kernel's limit.
    fn export(
        &self,
        default_action: Action,
        origin: &str,
        summary: &mut SeccompSummary,
    ) -> Result<Vec<Vec<Insn>>, SeccompError> {
        let mut programs = Vec::new();
        let mut main_program = export(&self.main, origin)?;
        if !matches!(default_action, Action::Allow | Action::Log) {
            let mut with_prefix = bpf::enosys_prefix(summary.known_max);
            with_prefix.append(&mut main_program);
            main_program = with_prefix;
        }
        programs.push(main_program);
        if self.restrict_rules > 0 {
            programs.push(export(&self.restrict, origin)?);
        }
        for program in &programs {
            if program.len() > bpf::MAX_INSNS {
                return Err(SeccompError::TooLarge {
                    origin: origin.to_string(),
                    instructions: program.len(),
                });
            }
        }
        summary.instructions = programs.iter().map(Vec::len).collect();
        Ok(programs)
    }
}

/// The profile's `flags` as seccomp(2) filter flags.
fn filter_flags(p: &Profile) -> u32 {
    p.flags.iter().fold(0u32, |acc, f| {
        acc | match f {
            FilterFlag::Tsync => libc::SECCOMP_FILTER_FLAG_TSYNC as u32,
            FilterFlag::Log => libc::SECCOMP_FILTER_FLAG_LOG as u32,
            FilterFlag::SpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32,
        }
    })
}

/// How one syscall's rules become libseccomp rules.
#[derive(Debug, Default)]
struct SyscallPlan {
    /// An unconditional rule for the main filter (never the default action).
    unconditional: Option<Action>,
    /// Conditional ALLOW rules for the main filter.
    conditional_allows: Vec<SimpleRule>,
    /// Conditional non-ALLOW rules for the second (default-ALLOW) filter.
    carve_outs: Vec<SimpleRule>,
    /// The profile names this syscall with the default action and no conditions.
    redundant_denial: bool,
    /// Later unconditional rules with another action, ignored as libseccomp ignores them.
    overridden: Vec<Action>,
}

fn plan_syscall(
    name: &str,
    rules: &[SimpleRule],
    default: Action,
    origin: &str,
) -> Result<SyscallPlan, SeccompError> {
    let mut plan = SyscallPlan::default();
    let mut unconditional: Option<Action> = None;
    for rule in rules.iter().filter(|r| r.args.is_empty()) {
        match unconditional {
            // libseccomp keeps the first unconditional rule and ignores later ones for the
            // same syscall, and runc and crun add rules in file order: podman's default
            // profile relies on it (setns is allowed, then "denied without CAP_SYS_ADMIN").
            Some(first) if first != rule.action => plan.overridden.push(rule.action),
            Some(_) => {}
            None => unconditional = Some(rule.action),
        }
    }
    if unconditional == Some(default) {
        plan.redundant_denial = true;
    } else {
        plan.unconditional = unconditional;
    }
    for rule in rules.iter().filter(|r| !r.args.is_empty()) {
        if rule.action != Action::Allow {
            plan.carve_outs.push(rule.clone());
            continue;
        }
        match plan.unconditional {
            // Already allowed for every argument.
            Some(Action::Allow) => {}
            Some(other) => {
                return Err(SeccompError::Unexpressible {
                    origin: origin.to_string(),
                    syscall: name.to_string(),
                    unconditional: other,
                });
            }
            None => plan.conditional_allows.push(rule.clone()),
        }
    }
    Ok(plan)
}

impl Context {
    /// Docker's includes/excludes semantics (moby profiles/seccomp/seccomp_linux.go).
    fn applies(&self, rule: &Rule) -> bool {
        let excluded = |c: &Condition| {
            c.arches.iter().any(|a| a == HOST_GO_ARCH)
                || c.caps.iter().any(|cap| self.caps.contains(cap))
                || c.min_kernel
                    .is_some_and(|min| self.kernel.is_some_and(|k| k >= min))
        };
        let included = |c: &Condition| {
            (c.arches.is_empty() || c.arches.iter().any(|a| a == HOST_GO_ARCH))
                && c.caps.iter().all(|cap| self.caps.contains(cap))
                && c.min_kernel
                    .is_none_or(|min| self.kernel.is_some_and(|k| k >= min))
        };
        !excluded(&rule.excludes) && included(&rule.includes)
    }
}

/// A rule's `includes`/`excludes` for people (`with CAP_SYS_ADMIN, on amd64|x32`), or None
/// when it has none.
fn describe_condition(rule: &Rule) -> Option<String> {
    let mut parts = Vec::new();
    let (inc, exc) = (&rule.includes, &rule.excludes);
    if !inc.caps.is_empty() {
        parts.push(format!("with {}", inc.caps.join(" and ")));
    }
    if !exc.caps.is_empty() {
        parts.push(format!("without {}", exc.caps.join(" or ")));
    }
    if !inc.arches.is_empty() {
        parts.push(format!("on {}", inc.arches.join("|")));
    }
    if !exc.arches.is_empty() {
        parts.push(format!("not on {}", exc.arches.join("|")));
    }
    if let Some(KernelVersion(a, b, c)) = inc.min_kernel {
        parts.push(format!("kernel >= {a}.{b}.{c}"));
    }
    if let Some(KernelVersion(a, b, c)) = exc.min_kernel {
        parts.push(format!("kernel < {a}.{b}.{c}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// runc: when several conditions test the same argument, each becomes a rule of its own.
fn split_same_index(args: &[ArgCmp]) -> Vec<Vec<ArgCmp>> {
    let mut seen = [0u8; 6];
    for a in args {
        seen[usize::from(a.index)] += 1;
    }
    if seen.iter().all(|&n| n <= 1) {
        vec![args.to_vec()]
    } else {
        args.iter().map(|a| vec![*a]).collect()
    }
}

fn known_max(p: &Profile, arches: &[ScmpArch]) -> KnownMax {
    let max_on = |arch: ScmpArch| -> Option<u32> {
        p.syscalls
            .iter()
            .flat_map(|r| r.names.iter())
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
            .map(|s| s.as_raw_syscall())
            .filter(|&nr| nr >= 0)
            .map(|nr| nr as u32)
            .max()
    };
    KnownMax {
        x86_64: max_on(ScmpArch::X8664).or(Some(0)),
        x32: arches
            .contains(&ScmpArch::X32)
            .then(|| max_on(ScmpArch::X32).unwrap_or(bpf::X32_SYSCALL_BIT)),
        i386: arches
            .contains(&ScmpArch::X86)
            .then(|| max_on(ScmpArch::X86).unwrap_or(0)),
    }
}

/// The syscall to hand libseccomp, if it exists on at least one of the filter's arches.
fn resolve(name: &str, arches: &[ScmpArch]) -> Option<ScmpSyscall> {
    let exists = arches.iter().any(|&arch| {
        ScmpSyscall::from_name_by_arch(name, arch).is_ok_and(|s| s.as_raw_syscall() >= 0)
    });
    if !exists {
        return None;
    }
    ScmpSyscall::from_name(name).ok()
}

/// `arg1 & 0xffffffff == 0x5412, arg0 == 2`: a rule's conditions for people.
fn describe(args: &[ArgCmp]) -> String {
    let one = |a: &ArgCmp| {
        let op = match a.op {
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ge => ">=",
            CmpOp::Gt => ">",
            CmpOp::MaskedEq => {
                return format!("arg{} & {:#x} == {:#x}", a.index, a.value, a.value_two);
            }
        };
        format!("arg{} {op} {:#x}", a.index, a.value)
    };
    args.iter().map(one).collect::<Vec<_>>().join(", ")
}

fn arch_label(arch: ScmpArch) -> &'static str {
    match arch {
        ScmpArch::X86 => "i386",
        ScmpArch::X32 => "x32",
        _ => "x86_64",
    }
}

fn to_scmp(action: Action) -> ScmpAction {
    match action {
        Action::Allow => ScmpAction::Allow,
        Action::Log => ScmpAction::Log,
        Action::Errno(n) => ScmpAction::Errno(i32::from(n)),
        Action::Trace(n) => ScmpAction::Trace(n),
        Action::Trap => ScmpAction::Trap,
        Action::KillThread => ScmpAction::KillThread,
        Action::KillProcess => ScmpAction::KillProcess,
    }
}

fn to_compare(a: &ArgCmp) -> ScmpArgCompare {
    let index = u32::from(a.index);
    match a.op {
        CmpOp::Ne => ScmpArgCompare::new(index, ScmpCompareOp::NotEqual, a.value),
        CmpOp::Lt => ScmpArgCompare::new(index, ScmpCompareOp::Less, a.value),
        CmpOp::Le => ScmpArgCompare::new(index, ScmpCompareOp::LessOrEqual, a.value),
        CmpOp::Eq => ScmpArgCompare::new(index, ScmpCompareOp::Equal, a.value),
        CmpOp::Ge => ScmpArgCompare::new(index, ScmpCompareOp::GreaterEqual, a.value),
        CmpOp::Gt => ScmpArgCompare::new(index, ScmpCompareOp::Greater, a.value),
        // Docker: `value` is the mask and `valueTwo` the expected result.
        CmpOp::MaskedEq => {
            ScmpArgCompare::new(index, ScmpCompareOp::MaskedEqual(a.value), a.value_two)
        }
    }
}

fn libseccomp_error(
    origin: &str,
    what: String,
) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    let origin = origin.to_string();
    move |source| SeccompError::Libseccomp {
        origin,
        what,
        source,
    }
}

fn new_filter(
    default: Action,
    bad_arch: ScmpAction,
    arches: &[ScmpArch],
    origin: &str,
) -> Result<ScmpFilterContext, SeccompError> {
    let err = |what: &str| libseccomp_error(origin, what.to_string());
    let mut ctx = ScmpFilterContext::new(to_scmp(default)).map_err(err("creating a filter"))?;
    ctx.set_act_badarch(bad_arch)
        .map_err(err("setting the bad-architecture action"))?;
    // A binary tree of syscall numbers instead of a linear list: fewer instructions per call.
    ctx.set_ctl_optimize(2)
        .map_err(err("enabling binary-tree optimisation"))?;
    for &arch in arches {
        if !ctx
            .is_arch_present(arch)
            .map_err(err("checking an architecture"))?
        {
            ctx.add_arch(arch).map_err(err("adding an architecture"))?;
        }
    }
    Ok(ctx)
}

fn add(
    ctx: &mut ScmpFilterContext,
    name: &str,
    syscall: ScmpSyscall,
    action: Action,
    args: &[ArgCmp],
    origin: &str,
) -> Result<(), SeccompError> {
    let compares: Vec<ScmpArgCompare> = args.iter().map(to_compare).collect();
    ctx.add_rule_conditional(to_scmp(action), syscall, &compares)
        .map_err(libseccomp_error(
            origin,
            format!("adding the rule for {name}"),
        ))?;
    Ok(())
}

/// libseccomp 2.5 has no in-memory export, so the program goes through an anonymous file: a
/// memfd, never a file on disk (on a filesystem mounted with `discard`, freeing a temporary
/// file's blocks cost milliseconds per container start).
fn export(ctx: &ScmpFilterContext, origin: &str) -> Result<Vec<Insn>, SeccompError> {
    let io_err = |source| SeccompError::Export {
        origin: origin.to_string(),
        source,
    };
    let mut file = std::fs::File::from(
        rustix::fs::memfd_create(c"rsafe-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| io_err(e.into()))?,
    );
    ctx.export_bpf(&file)
        .map_err(libseccomp_error(origin, "exporting the BPF program".into()))?;
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io_err)?;
    bpf::decode(&bytes).ok_or_else(|| {
        io_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "truncated BPF instruction",
        ))
    })
}

/// The running kernel's version, for `minKernel`.
fn kernel_version() -> Option<KernelVersion> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    KernelVersion::parse(release.trim())
}

/// The errno a denial-reporting filter's notified calls are answered with: the default of
/// every profile rsafe learns (Docker's `SCMP_ACT_ERRNO` without `defaultErrnoRet`).
pub const REPORTED_ERRNO: i32 = libc::EPERM;

const NEW_LISTENER: u32 = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
const TSYNC: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC as u32;

impl CompiledFilter {
    /// Why [`Self::notifying_denials`] would leave this filter as it is, or None when it can
    /// report. It can when its default is `errno EPERM` (a KILL default keeps killing, another
    /// errno keeps its own answer) and it allows the calls the workload makes between loading
    /// it and handing its listener to rsafe: `sendmsg`, and `seccomp` when further programs
    /// follow. One of those notified would wait for an answer forever, from a supervisor that
    /// has no listener yet.
    pub fn why_not_reporting(&self) -> Option<String> {
        let default = self.summary.default_action;
        if self.is_unconfined() || default != Some(Action::Errno(REPORTED_ERRNO as u16)) {
            let default = default.map_or_else(|| "unconfined".to_string(), |a| a.to_string());
            return Some(format!(
                "the profile's default is {default}, not errno EPERM"
            ));
        }
        let needs: &[&str] = if self.programs.len() > 1 {
            &["sendmsg", "seccomp"]
        } else {
            &["sendmsg"]
        };
        let missing: Vec<&str> = needs
            .iter()
            .copied()
            .filter(|n| !self.summary.allowed_names.iter().any(|a| a == n))
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "the profile does not allow {}, which hands the listener to rsafe",
                missing.join(" and ")
            )
        })
    }

    /// The same filter, but where its main program answers `errno EPERM` because the profile
    /// does not allow a call (its default action) it returns `SECCOMP_RET_USER_NOTIF`, and it
    /// is installed with a listener: rsafe's supervisor then reports the call by name and
    /// answers EPERM itself ([`crate::runtime::learn::supervisor`]). A notify filter stacked
    /// on the policy's would never hear of these calls, since the kernel's ERRNO beats
    /// USER_NOTIF. Every other verdict stays: allows, other errnos (the ENOSYS answer for
    /// syscalls newer than the profile), KILL for other ABIs, and the carve-out program (its
    /// ERRNO still beats the notification). The default's `RET` instructions are the only
    /// `RET errno EPERM` in the main program: libseccomp refuses a rule whose action is the
    /// default's. Unchanged when [`Self::why_not_reporting`] says why.
    pub fn notifying_denials(mut self) -> CompiledFilter {
        if self.why_not_reporting().is_some() {
            return self;
        }
        let ret_k = (libc::BPF_RET | libc::BPF_K) as u16;
        let deny = bpf::SECCOMP_RET_ERRNO | REPORTED_ERRNO as u32;
        if let Some(main) = self.programs.first_mut() {
            for insn in main.iter_mut().filter(|i| i.code == ret_k && i.k == deny) {
                insn.k = libc::SECCOMP_RET_USER_NOTIF;
            }
        }
        self.flags |= NEW_LISTENER;
        self
    }

    /// A denial-reporting filter ([`Self::notifying_denials`]) that also notifies the x86_64
    /// calls `nrs` which its profile allows whatever their arguments (the others in `nrs`
    /// keep their verdict), through a prefix on the main program ([`bpf::notify_prefix`]).
    /// Returns the numbers it notifies: the supervisor must answer those with CONTINUE, the
    /// verdict the profile gives them, and every other notification with EPERM. Nothing
    /// changes (an empty list) for a filter that does not report denials, or when the prefix
    /// would take the program past the kernel's 4096 instructions.
    pub fn notifying_calls(mut self, nrs: &[i64]) -> (CompiledFilter, Vec<i64>) {
        if !self.reports_denials() {
            return (self, Vec::new());
        }
        let allowed = |nr: i64| {
            let name = ScmpSyscall::from(nr as i32).get_name_by_arch(ScmpArch::X8664);
            name.is_ok_and(|n| self.summary.allowed_names.contains(&n))
        };
        let chosen: Vec<i64> = nrs.iter().copied().filter(|nr| allowed(*nr)).collect();
        let numbers: Vec<u32> = chosen.iter().map(|nr| *nr as u32).collect();
        let prefix = bpf::notify_prefix(&numbers);
        let Some(main) = self.programs.first_mut() else {
            return (self, Vec::new());
        };
        if chosen.is_empty() || main.len() + prefix.len() > bpf::MAX_INSNS {
            return (self, Vec::new());
        }
        let mut program = prefix;
        program.append(main);
        *main = program;
        if let Some(count) = self.summary.instructions.first_mut() {
            *count = main.len();
        }
        (self, chosen)
    }

    /// Whether this filter came from [`Self::notifying_denials`]: load it with
    /// [`Self::load_reporting`], which returns the listener rsafe must answer.
    pub fn reports_denials(&self) -> bool {
        self.flags & NEW_LISTENER != 0
    }

    /// [`Self::load`] for a denial-reporting filter. The main program is installed first, with
    /// the listener (without TSYNC, which the kernel refuses with a listener; the caller is
    /// single-threaded before `execve`), then the rest in their order, so every verdict is
    /// what [`Self::load`] would give but the notified ones. The listener is close-on-exec
    /// (the kernel opens it so): the workload never holds it after `execve`, so it cannot
    /// answer its own calls. Until rsafe answers, a notified call waits; once no one holds the
    /// listener the kernel fails it with ENOSYS: never more than the policy allows. Borrows:
    /// the programs are freed only after the listener is with rsafe (a `free` that gives
    /// memory back makes syscalls, which would wait for the supervisor).
    pub fn load_reporting(&self) -> Result<OwnedFd, SeccompError> {
        let mut listener = None;
        for (i, program) in self.programs.iter().enumerate() {
            let flags = if i == 0 {
                (self.flags & !TSYNC) | NEW_LISTENER
            } else {
                self.flags & !NEW_LISTENER
            };
            let rc = super::install(program, flags);
            if rc < 0 || (i > 0 && rc != 0) {
                return Err(SeccompError::Load {
                    source: std::io::Error::last_os_error(),
                    hint: " (reporting denials needs SECCOMP_FILTER_FLAG_NEW_LISTENER, Linux 5.0)",
                });
            }
            if i == 0 {
                // SAFETY: with NEW_LISTENER, a non-negative rc is the listener descriptor the
                // kernel just opened for this process; nothing else owns it.
                listener = Some(unsafe { OwnedFd::from_raw_fd(rc as RawFd) });
            }
        }
        listener.ok_or_else(|| SeccompError::Load {
            source: std::io::Error::other("the filter has no program"),
            hint: "",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::seccomp::bpf::eval::{
        SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS, SyscallData, evaluate_stack,
    };
    use crate::runtime::seccomp::bpf::{
        AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, SECCOMP_RET_ERRNO, X32_SYSCALL_BIT,
    };
    use std::path::Path;

    const EPERM: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    fn nr(name: &str) -> u32 {
        ScmpSyscall::from_name_by_arch(name, ScmpArch::X8664)
            .unwrap()
            .as_raw_syscall() as u32
    }

    /// The verdict of the compiled filter stack for an x86_64 syscall.
    fn verdict(filter: &CompiledFilter, name: &str, args: [u64; 6]) -> u32 {
        let data = SyscallData {
            nr: nr(name),
            arch: AUDIT_ARCH_X86_64,
            args,
        };
        evaluate_stack(&filter.programs, &data).expect("a program the evaluator understands")
    }

    fn default_filter(caps: &[Capability]) -> CompiledFilter {
        compile(&SeccompProfile::builtin_default(), caps).unwrap()
    }

    /// Every syscall the issue says must be blocked, and a set of argument vectors to try each
    /// with (zeros, all ones, and a few typical values), so an argument filter cannot hide an
    /// allow.
    const MUST_BLOCK: &[&str] = &[
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "open_by_handle_at",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "mount",
        "umount2",
        "pivot_root",
        "fsopen",
        "fsmount",
        "fsconfig",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "setns",
        "ptrace",
        "reboot",
        "swapon",
        "swapoff",
        "syslog",
        "settimeofday",
        "clock_settime",
        "adjtimex",
        "process_vm_readv",
        "process_vm_writev",
        "quotactl",
        "acct",
        "lookup_dcookie",
        "nfsservctl",
        "uselib",
        "name_to_handle_at",
    ];

    fn arg_vectors() -> Vec<[u64; 6]> {
        vec![
            [0; 6],
            [u64::MAX; 6],
            [1, 1, 1, 1, 1, 1],
            [0xffff_ffff; 6],
            [2, 3, 0, 0, 0, 0],
        ]
    }

    #[test]
    fn must_block_syscalls_are_never_allowed_whatever_the_arguments() {
        for caps in [
            &[][..],
            &[Capability::CAP_CHOWN, Capability::CAP_NET_BIND_SERVICE][..],
        ] {
            let filter = default_filter(caps);
            for name in MUST_BLOCK {
                for args in arg_vectors() {
                    let v = verdict(&filter, name, args);
                    assert_eq!(v, EPERM, "{name}{args:?} must be EPERM, got {v:#x}");
                }
            }
        }
    }

    #[test]
    fn must_block_syscalls_are_named_so_they_never_get_enosys() {
        let profile = SeccompProfile::builtin_default();
        let named: Vec<&str> = profile
            .profile()
            .unwrap()
            .syscalls
            .iter()
            .flat_map(|r| r.names.iter().map(String::as_str))
            .collect();
        for name in MUST_BLOCK {
            assert!(
                named.contains(name),
                "{name} should be listed in the default profile"
            );
        }
    }

    #[test]
    fn vm86_exists_only_on_i386_which_the_default_profile_kills() {
        assert!(
            ScmpSyscall::from_name_by_arch("vm86", ScmpArch::X8664)
                .unwrap()
                .as_raw_syscall()
                < 0
        );
        let filter = default_filter(&[]);
        assert_eq!(filter.summary().architectures, ["x86_64"]);
        let vm86 = ScmpSyscall::from_name_by_arch("vm86", ScmpArch::X86)
            .unwrap()
            .as_raw_syscall();
        let data = SyscallData {
            nr: vm86 as u32,
            arch: AUDIT_ARCH_I386,
            args: [0; 6],
        };
        assert_eq!(
            evaluate_stack(&filter.programs, &data),
            Some(SECCOMP_RET_KILL_PROCESS)
        );
        // i386 getpid through int 0x80 is killed too: the whole ABI is refused.
        let data = SyscallData {
            nr: 20,
            arch: AUDIT_ARCH_I386,
            args: [0; 6],
        };
        assert_eq!(
            evaluate_stack(&filter.programs, &data),
            Some(SECCOMP_RET_KILL_PROCESS)
        );
        // So is x32 (same arch token, syscall numbers with bit 30).
        let data = SyscallData {
            nr: X32_SYSCALL_BIT | 39,
            arch: AUDIT_ARCH_X86_64,
            args: [0; 6],
        };
        assert_eq!(
            evaluate_stack(&filter.programs, &data),
            Some(SECCOMP_RET_KILL_PROCESS)
        );
    }

    #[test]
    fn ordinary_syscalls_are_allowed() {
        let filter = default_filter(&[]);
        for name in [
            "read",
            "write",
            "openat",
            "execve",
            "mmap",
            "futex",
            "getpid",
            "exit_group",
            "rt_sigaction",
            "epoll_wait",
            "bind",
            "listen",
            "accept4",
            "statx",
            "getrandom",
            "fchmodat2",
            "rseq",
            "wait4",
            "pipe2",
        ] {
            assert_eq!(verdict(&filter, name, [0; 6]), SECCOMP_RET_ALLOW, "{name}");
        }
    }

    #[test]
    fn clone_unshare_and_clone3_are_filtered_by_namespace_flags() {
        let filter = default_filter(&[]);
        let thread_flags = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(
            verdict(&filter, "clone", [thread_flags, 0, 0, 0, 0, 0]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            verdict(&filter, "clone", [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
            SECCOMP_RET_ALLOW
        );
        for ns in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWCGROUP,
        ] {
            let flags = ns as u64 | libc::SIGCHLD as u64;
            assert_eq!(
                verdict(&filter, "clone", [flags, 0, 0, 0, 0, 0]),
                EPERM,
                "clone {ns:#x}"
            );
            assert_eq!(
                verdict(&filter, "unshare", [ns as u64, 0, 0, 0, 0, 0]),
                EPERM,
                "unshare {ns:#x}"
            );
        }
        assert_eq!(
            verdict(
                &filter,
                "unshare",
                [libc::CLONE_NEWTIME as u64, 0, 0, 0, 0, 0]
            ),
            EPERM
        );
        assert_eq!(
            verdict(
                &filter,
                "unshare",
                [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0]
            ),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(verdict(&filter, "clone3", [0; 6]), ENOSYS);
    }

    #[test]
    fn tiocsti_and_tioclinux_are_carved_out_of_ioctl_even_with_high_bits_set() {
        let filter = default_filter(&[]);
        assert_eq!(
            filter.programs.len(),
            2,
            "the carve-outs need the second filter"
        );
        let tiocsti = libc::TIOCSTI;
        let tioclinux = 0x541C;
        assert_eq!(
            verdict(&filter, "ioctl", [0, libc::TCGETS, 0, 0, 0, 0]),
            SECCOMP_RET_ALLOW
        );
        for cmd in [
            tiocsti,
            tioclinux,
            (1 << 32) | tiocsti,
            u64::MAX << 32 | tioclinux,
        ] {
            assert_eq!(
                verdict(&filter, "ioctl", [0, cmd, 0, 0, 0, 0]),
                EPERM,
                "ioctl {cmd:#x}"
            );
        }
    }

    #[test]
    fn sockets_allow_unix_inet_and_route_netlink_but_not_raw_or_packet() {
        let filter = default_filter(&[]);
        let sock = |domain: i32, ty: i32, proto: i32| {
            verdict(
                &filter,
                "socket",
                [domain as u64, ty as u64, proto as u64, 0, 0, 0],
            )
        };
        let nonblock = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        assert_eq!(sock(libc::AF_UNIX, libc::SOCK_STREAM, 0), SECCOMP_RET_ALLOW);
        assert_eq!(
            sock(libc::AF_INET, libc::SOCK_STREAM | nonblock, 0),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(sock(libc::AF_INET6, libc::SOCK_DGRAM, 0), SECCOMP_RET_ALLOW);
        assert_eq!(
            sock(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE
            ),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            sock(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
            EPERM
        );
        assert_eq!(sock(libc::AF_INET6, libc::SOCK_RAW | nonblock, 0), EPERM);
        assert_eq!(sock(libc::AF_PACKET, libc::SOCK_RAW, 0x300), EPERM);
        assert_eq!(sock(libc::AF_PACKET, libc::SOCK_DGRAM, 0), EPERM);
        assert_eq!(
            sock(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_NETFILTER),
            EPERM
        );
        assert_eq!(sock(libc::AF_VSOCK, libc::SOCK_STREAM, 0), EPERM);
        assert_eq!(
            verdict(&filter, "socketpair", [libc::AF_UNIX as u64, 1, 0, 0, 0, 0]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            verdict(&filter, "socketpair", [libc::AF_INET as u64, 1, 0, 0, 0, 0]),
            EPERM
        );
    }

    #[test]
    fn personality_allows_only_safe_personas() {
        let filter = default_filter(&[]);
        for ok in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(
                verdict(&filter, "personality", [ok, 0, 0, 0, 0, 0]),
                SECCOMP_RET_ALLOW,
                "{ok:#x}"
            );
        }
        // READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, PER_BSD.
        for bad in [0x0400000u64, 0x0040000, 0x6] {
            assert_eq!(
                verdict(&filter, "personality", [bad, 0, 0, 0, 0, 0]),
                EPERM,
                "{bad:#x}"
            );
        }
    }

    #[test]
    fn syscalls_newer_than_the_profile_get_enosys_and_known_unlisted_ones_eperm() {
        let filter = default_filter(&[]);
        let max = filter.summary().known_max.x86_64.unwrap();
        assert!(max >= nr("fchmodat2"), "fchmodat2 is named, max {max}");
        let data = |n: u32| SyscallData {
            nr: n,
            arch: AUDIT_ARCH_X86_64,
            args: [0; 6],
        };
        assert_eq!(
            evaluate_stack(&filter.programs, &data(max + 1)),
            Some(ENOSYS)
        );
        assert_eq!(evaluate_stack(&filter.programs, &data(1000)), Some(ENOSYS));
        // `sysfs` is older than the profile and not listed: EPERM, not ENOSYS.
        assert_eq!(verdict(&filter, "sysfs", [0; 6]), EPERM);
    }

    #[test]
    fn capability_conditions_follow_docker() {
        let without = default_filter(&[]);
        let with = default_filter(&[Capability::CAP_SYS_CHROOT]);
        assert_eq!(verdict(&without, "chroot", [0; 6]), EPERM);
        assert_eq!(verdict(&with, "chroot", [0; 6]), SECCOMP_RET_ALLOW);
    }

    /// Every capability rsafe's default profile conditions on, and the calls it unlocks: the
    /// syscalls of Docker's rule for that capability, plus raw and packet sockets for NET_RAW
    /// (which Docker leaves to the capability alone).
    const CAP_UNLOCKS: &[(Capability, &[&str])] = &[
        (
            Capability::CAP_SYS_ADMIN,
            &[
                "bpf",
                "clone",
                "clone3",
                "fanotify_init",
                "fsconfig",
                "fsmount",
                "fsopen",
                "fspick",
                "lookup_dcookie",
                "mount",
                "mount_setattr",
                "move_mount",
                "open_tree",
                "perf_event_open",
                "quotactl",
                "quotactl_fd",
                "setdomainname",
                "sethostname",
                "setns",
                "syslog",
                "umount2",
                "unshare",
            ],
        ),
        (Capability::CAP_SYS_BOOT, &["reboot"]),
        (Capability::CAP_SYS_CHROOT, &["chroot"]),
        (
            Capability::CAP_SYS_MODULE,
            &["delete_module", "finit_module", "init_module"],
        ),
        (Capability::CAP_SYS_PACCT, &["acct"]),
        (
            Capability::CAP_SYS_PTRACE,
            &[
                "kcmp",
                "pidfd_getfd",
                "process_madvise",
                "process_vm_readv",
                "process_vm_writev",
                "ptrace",
            ],
        ),
        (Capability::CAP_SYS_RAWIO, &["ioperm", "iopl"]),
        (
            Capability::CAP_SYS_TIME,
            &["adjtimex", "clock_adjtime", "clock_settime", "settimeofday"],
        ),
        (Capability::CAP_SYS_TTY_CONFIG, &["vhangup"]),
        (
            Capability::CAP_SYS_NICE,
            &[
                "get_mempolicy",
                "mbind",
                "set_mempolicy",
                "set_mempolicy_home_node",
            ],
        ),
        (Capability::CAP_SYSLOG, &["syslog"]),
        (Capability::CAP_BPF, &["bpf"]),
        (Capability::CAP_PERFMON, &["perf_event_open"]),
        (Capability::CAP_DAC_READ_SEARCH, &["open_by_handle_at"]),
        (Capability::CAP_NET_RAW, &["socket"]),
    ];

    #[test]
    fn the_capability_table_is_every_condition_of_the_default_profile() {
        let profile = SeccompProfile::builtin_default();
        let mut in_profile: Vec<String> = profile
            .profile()
            .unwrap()
            .syscalls
            .iter()
            .flat_map(|r| r.includes.caps.iter().chain(&r.excludes.caps).cloned())
            .collect();
        in_profile.sort();
        in_profile.dedup();
        let mut in_table: Vec<String> = CAP_UNLOCKS.iter().map(|(c, _)| c.to_string()).collect();
        in_table.sort();
        assert_eq!(in_profile, in_table);
    }

    /// Whether `name` (with `args`) is unlocked by some capability in `caps`.
    fn unlocked_by(caps: &[Capability], name: &str) -> bool {
        CAP_UNLOCKS
            .iter()
            .any(|(c, names)| caps.contains(c) && names.contains(&name))
    }

    #[test]
    fn each_capability_unlocks_exactly_its_calls() {
        let all: Vec<Capability> = CAP_UNLOCKS.iter().map(|(c, _)| *c).collect();
        let namespaces = (libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::SIGCHLD) as u64;
        for (cap, names) in CAP_UNLOCKS {
            let with = default_filter(&[*cap]);
            let others: Vec<Capability> = all.iter().copied().filter(|c| c != cap).collect();
            let without = default_filter(&others);
            for name in names.iter().filter(|n| **n != "socket") {
                for args in [[0; 6], [namespaces, 0, 0, 0, 0, 0], [u64::MAX; 6]] {
                    assert_eq!(
                        verdict(&with, name, args),
                        SECCOMP_RET_ALLOW,
                        "{name}{args:?} with {cap}"
                    );
                    if !unlocked_by(&others, name)
                        && !matches!(*name, "clone" | "unshare" | "clone3")
                    {
                        assert_eq!(
                            verdict(&without, name, args),
                            EPERM,
                            "{name}{args:?} with every other capability but {cap}"
                        );
                    }
                }
            }
            // The namespace flags stay filtered unless SYS_ADMIN is kept.
            let clone_ns = verdict(&without, "clone", [namespaces, 0, 0, 0, 0, 0]);
            let unshare_ns = verdict(&without, "unshare", [namespaces, 0, 0, 0, 0, 0]);
            let clone3 = verdict(&without, "clone3", [0; 6]);
            if *cap == Capability::CAP_SYS_ADMIN {
                assert_eq!((clone_ns, unshare_ns, clone3), (EPERM, EPERM, ENOSYS));
            } else {
                assert_eq!(
                    (clone_ns, unshare_ns, clone3),
                    (SECCOMP_RET_ALLOW, SECCOMP_RET_ALLOW, SECCOMP_RET_ALLOW)
                );
            }
        }
    }

    #[test]
    fn net_raw_unlocks_raw_and_packet_sockets_and_nothing_else() {
        let with = default_filter(&[Capability::CAP_NET_RAW]);
        let without = default_filter(&[Capability::CAP_NET_ADMIN, Capability::CAP_SYS_ADMIN]);
        let sock = |f: &CompiledFilter, d: i32, t: i32, p: i32| {
            verdict(f, "socket", [d as u64, t as u64, p as u64, 0, 0, 0])
        };
        let cloexec = libc::SOCK_CLOEXEC;
        for (d, t, p) in [
            (libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
            (
                libc::AF_INET6,
                libc::SOCK_RAW | cloexec,
                libc::IPPROTO_ICMPV6,
            ),
            (libc::AF_PACKET, libc::SOCK_RAW, 0x300),
            (libc::AF_PACKET, libc::SOCK_DGRAM, 0),
        ] {
            assert_eq!(sock(&with, d, t, p), SECCOMP_RET_ALLOW, "{d} {t} {p}");
            assert_eq!(sock(&without, d, t, p), EPERM, "{d} {t} {p}");
        }
        for (d, t, p) in [
            (libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_NETFILTER),
            (libc::AF_VSOCK, libc::SOCK_STREAM, 0),
            (libc::AF_BLUETOOTH, libc::SOCK_RAW, 0),
        ] {
            assert_eq!(sock(&with, d, t, p), EPERM, "{d} {t} {p}");
        }
    }

    /// Docker's default profile (moby/profiles, vendored with its license note).
    const DOCKER_DEFAULT: &str =
        include_str!("../../../tests/fixtures/seccomp/docker-default.json");

    fn docker_filter(caps: &[Capability]) -> CompiledFilter {
        let p =
            SeccompProfile::from_json(DOCKER_DEFAULT.as_bytes(), Path::new("docker-default.json"))
                .unwrap();
        compile(&p, caps).unwrap()
    }

    #[test]
    fn docker_default_loads_and_follows_its_capability_conditions() {
        let plain = docker_filter(&[]);
        let s = plain.summary();
        assert_eq!(s.architectures, ["x86_64", "i386", "x32"]);
        assert_eq!(verdict(&plain, "mount", [0; 6]), EPERM);
        assert_eq!(verdict(&plain, "clone3", [0; 6]), ENOSYS);
        assert_eq!(
            verdict(&plain, "ptrace", [0; 6]),
            SECCOMP_RET_ALLOW,
            "minKernel 4.8"
        );
        assert_eq!(
            verdict(&plain, "socket", [40, 1, 0, 0, 0, 0]),
            EPERM,
            "AF_VSOCK"
        );
        assert_eq!(
            verdict(&plain, "socket", [2, 3, 1, 0, 0, 0]),
            SECCOMP_RET_ALLOW
        );
        // libseccomp 2.5 does not know Docker's newest names; they are reported, not fatal.
        for name in &s.unknown_names {
            assert!(ScmpSyscall::from_name(name).is_err(), "{name}");
        }
        let admin = docker_filter(&[Capability::CAP_SYS_ADMIN]);
        assert_eq!(verdict(&admin, "mount", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(&admin, "clone3", [0; 6]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn each_capability_unlocks_in_rsafe_what_it_unlocks_in_docker() {
        // Docker's calls rsafe leaves out on purpose: lsm_* are unknown to libseccomp 2.5;
        // umount, stime and clock_settime64 exist only for i386, which rsafe's default kills.
        let left_out = [
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "umount",
            "stime",
            "clock_settime64",
        ];
        let docker =
            SeccompProfile::from_json(DOCKER_DEFAULT.as_bytes(), Path::new("d.json")).unwrap();
        for rule in &docker.profile().unwrap().syscalls {
            for cap in &rule.includes.caps {
                let (_, ours) = CAP_UNLOCKS
                    .iter()
                    .find(|(c, _)| c.to_string() == *cap)
                    .unwrap_or_else(|| panic!("Docker conditions on {cap}; rsafe does not"));
                for name in rule
                    .names
                    .iter()
                    .filter(|n| !left_out.contains(&n.as_str()))
                {
                    assert!(
                        ours.contains(&name.as_str()),
                        "{cap} unlocks {name} in Docker"
                    );
                }
            }
        }
    }

    /// podman's default profile as Debian installs it, compiled for `caps`.
    fn podman_filter(caps: &[Capability]) -> Option<CompiledFilter> {
        let profile = crate::runtime::seccomp::profile::tests::podman_default_profile()?;
        Some(compile(&profile, caps).unwrap())
    }

    #[test]
    fn podman_default_compiles_with_its_errnos_and_conditions() {
        // podman's own default capabilities (containers.conf `default_capabilities`).
        let podman_caps = [
            Capability::CAP_CHOWN,
            Capability::CAP_DAC_OVERRIDE,
            Capability::CAP_FOWNER,
            Capability::CAP_FSETID,
            Capability::CAP_KILL,
            Capability::CAP_NET_BIND_SERVICE,
            Capability::CAP_SETFCAP,
            Capability::CAP_SETGID,
            Capability::CAP_SETPCAP,
            Capability::CAP_SETUID,
            Capability::CAP_SYS_CHROOT,
        ];
        let Some(plain) = podman_filter(&podman_caps) else {
            return;
        };
        let s = plain.summary();
        // x86_64, with podman's capabilities: 310 syscalls, and personality and socket by
        // argument. chroot is the 310th (CAP_SYS_CHROOT); without it, 309.
        assert_eq!((s.allowed, s.allowed_with_args), (310, 2), "{s}");
        assert_eq!(verdict(&plain, "chroot", [0; 6]), SECCOMP_RET_ALLOW);
        let rsafe_caps = podman_filter(&podman_caps[..10]).unwrap();
        assert_eq!(rsafe_caps.summary().allowed, 309);
        assert_eq!(verdict(&rsafe_caps, "chroot", [0; 6]), EPERM);
        assert_eq!(s.allowed_with_args_names, ["personality", "socket"]);
        assert_eq!(verdict(&plain, "userfaultfd", [0; 6]), EPERM);
        assert_eq!(
            verdict(&plain, "io_uring_setup", [0; 6]),
            ENOSYS,
            "defaultErrno"
        );
        assert_eq!(verdict(&plain, "bpf", [0; 6]), EPERM);
        assert_eq!(verdict(&plain, "keyctl", [0; 6]), SECCOMP_RET_ALLOW);
        let einval = SECCOMP_RET_ERRNO | libc::EINVAL as u32;
        let audit = [
            libc::AF_NETLINK as u64,
            3,
            libc::NETLINK_AUDIT as u64,
            0,
            0,
            0,
        ];
        assert_eq!(verdict(&plain, "socket", audit), einval);
        assert_eq!(
            verdict(&plain, "socket", [2, 1, 0, 0, 0, 0]),
            SECCOMP_RET_ALLOW
        );
        let applied: Vec<&str> = s
            .conditional_rules
            .iter()
            .filter(|r| r.applied)
            .map(|r| r.condition.as_str())
            .collect();
        assert!(applied.contains(&"without CAP_SYS_ADMIN"), "{applied:?}");
        assert!(applied.contains(&"on amd64|x32"), "{applied:?}");
        assert!(!applied.contains(&"with CAP_SYS_ADMIN"), "{applied:?}");

        let Some(more) = podman_filter(&[Capability::CAP_SYS_ADMIN, Capability::CAP_AUDIT_WRITE])
        else {
            return;
        };
        assert_eq!(verdict(&more, "bpf", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(&more, "socket", audit), SECCOMP_RET_ALLOW);
    }

    fn compile_json(json: &str, caps: &[Capability]) -> Result<CompiledFilter, SeccompError> {
        let p = SeccompProfile::from_json(json.as_bytes(), Path::new("/p.json")).unwrap();
        compile(&p, caps)
    }

    #[test]
    fn docker_style_includes_excludes_and_same_index_or() {
        let json = r#"{
          "defaultAction": "SCMP_ACT_ERRNO",
          "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
          "syscalls": [
            {"names": ["read", "exit_group", "chown32"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["kexec_load"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
            {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["sync_file_range2"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["ppc64le"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
            {"names": ["not_a_syscall"], "action": "SCMP_ACT_ALLOW"}
          ]
        }"#;
        let plain = compile_json(json, &[]).unwrap();
        assert_eq!(plain.summary().architectures, ["x86_64", "i386", "x32"]);
        assert_eq!(verdict(&plain, "ptrace", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(&plain, "kexec_load", [0; 6]), EPERM);
        assert_eq!(verdict(&plain, "bpf", [0; 6]), EPERM);
        assert_eq!(verdict(&plain, "clone3", [0; 6]), ENOSYS);
        assert_eq!(verdict(&plain, "arch_prctl", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(&plain, "mkdir", [0; 6]), EPERM);
        assert_eq!(
            verdict(&plain, "personality", [0, 0, 0, 0, 0, 0]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            verdict(&plain, "personality", [8, 0, 0, 0, 0, 0]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(verdict(&plain, "personality", [9, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            verdict(&plain, "socket", [2, 1, 0, 0, 0, 0]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(verdict(&plain, "socket", [40, 1, 0, 0, 0, 0]), EPERM);
        assert_eq!(plain.summary().unknown_names, ["not_a_syscall"]);
        assert_eq!(plain.summary().rules_skipped_by_conditions, 5);
        // i386 is allowed by this profile: its syscalls go through the filter, not the kill.
        let i386_chown32 = ScmpSyscall::from_name_by_arch("chown32", ScmpArch::X86)
            .unwrap()
            .as_raw_syscall();
        let data = SyscallData {
            nr: i386_chown32 as u32,
            arch: AUDIT_ARCH_I386,
            args: [0; 6],
        };
        assert_eq!(
            evaluate_stack(&plain.programs, &data),
            Some(SECCOMP_RET_ALLOW)
        );

        let admin = compile_json(json, &[Capability::CAP_SYS_ADMIN]).unwrap();
        assert_eq!(verdict(&admin, "bpf", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(&admin, "clone3", [0; 6]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn the_first_of_two_unconditional_rules_wins_as_in_libseccomp() {
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
            {"names":["read","setns"],"action":"SCMP_ACT_ALLOW"},
            {"names":["read"],"action":"SCMP_ACT_KILL_PROCESS"},
            {"names":["setns","bpf"],"action":"SCMP_ACT_ERRNO","errno":"EPERM"},
            {"names":["bpf"],"action":"SCMP_ACT_ALLOW"}]}"#;
        let filter = compile_json(json, &[]).unwrap();
        assert_eq!(verdict(&filter, "read", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(&filter, "setns", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(&filter, "bpf", [0; 6]), EPERM);
        assert_eq!(
            filter.summary().overridden,
            [
                ("bpf".to_string(), Action::Errno(1), Action::Allow),
                ("read".to_string(), Action::Allow, Action::KillProcess),
                ("setns".to_string(), Action::Allow, Action::Errno(1)),
            ]
        );
        let text = filter.summary().to_string();
        assert!(
            text.contains("  setns:        allow (a later rule's errno EPERM is ignored"),
            "{text}"
        );
    }

    #[test]
    fn unexpressible_rules_are_errors() {
        let dropped = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
            {"names":["clone3"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#;
        let err = compile_json(dropped, &[]).unwrap_err().to_string();
        assert!(err.contains("clone3"), "{err}");
    }

    #[test]
    fn allow_by_default_profiles_get_no_enosys_prefix() {
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["keyctl"],"action":"SCMP_ACT_ERRNO"}]}"#;
        let filter = compile_json(json, &[]).unwrap();
        assert_eq!(verdict(&filter, "keyctl", [0; 6]), EPERM);
        assert_eq!(verdict(&filter, "read", [0; 6]), SECCOMP_RET_ALLOW);
        let data = SyscallData {
            nr: 1000,
            arch: AUDIT_ARCH_X86_64,
            args: [0; 6],
        };
        assert_eq!(
            evaluate_stack(&filter.programs, &data),
            Some(SECCOMP_RET_ALLOW)
        );
    }

    #[test]
    fn a_compiled_filter_crosses_the_sync_channel_intact() {
        let filter = default_filter(&[]);
        let json = serde_json::to_vec(&filter).unwrap();
        let back: CompiledFilter = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, filter);
        assert_eq!(back.programs.len(), 2, "main filter and carve-outs");
        for (a, b) in back.programs.iter().zip(&filter.programs) {
            assert_eq!(bpf::encode(a), bpf::encode(b));
        }
        // Well under the channel's message limit even with every summary field filled in.
        assert!(json.len() < 64 * 1024, "{} bytes", json.len());
        // A truncated or empty program is refused, not loaded.
        let mut wire: serde_json::Value = serde_json::from_slice(&json).unwrap();
        wire["programs"][0] = serde_json::Value::String("AAAA".into());
        assert!(serde_json::from_value::<CompiledFilter>(wire.clone()).is_err());
        wire["programs"][0] = serde_json::Value::String(String::new());
        assert!(serde_json::from_value::<CompiledFilter>(wire).is_err());
    }

    /// The default profile narrowed to a learned workload's classes, for these capabilities.
    fn narrowed_default(caps: &[Capability], with_docker: bool) -> CompiledFilter {
        use crate::runtime::seccomp::args::ArgClasses;
        let mut classes = ArgClasses::default();
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        classes
            .set(
                "socket",
                &list(&["AF_UNIX/SOCK_STREAM", "AF_INET/SOCK_DGRAM"]),
            )
            .unwrap();
        classes.set("socketpair", &list(&["AF_UNIX"])).unwrap();
        classes
            .set("ioctl", &list(&["TCGETS", "TIOCGPTN"]))
            .unwrap();
        classes.set("clone_namespaces", &[]).unwrap();
        let base = if with_docker {
            SeccompProfile::from_json(DOCKER_DEFAULT.as_bytes(), Path::new("d.json")).unwrap()
        } else {
            SeccompProfile::builtin_default()
        };
        compile(&base.restricted(&classes).unwrap(), caps).unwrap()
    }

    #[test]
    fn argument_classes_allow_only_what_was_learned() {
        let sock = |family: i32, kind: i32| {
            [
                family as u64,
                (kind | libc::SOCK_CLOEXEC) as u64,
                0,
                0,
                0,
                0,
            ]
        };
        let all_caps: Vec<Capability> = ::caps::all().into_iter().collect();
        let default_caps = crate::runtime::policy::Policy::default_policy().capabilities;
        for (caps, docker) in [
            (&default_caps[..], false),
            (&all_caps[..], false),
            (&default_caps[..], true),
            (&all_caps[..], true),
        ] {
            let f = narrowed_default(caps, docker);
            let at = format!("{} caps, docker {docker}", caps.len());
            let v = |name: &str, args| verdict(&f, name, args);
            assert_eq!(
                v("socket", sock(libc::AF_UNIX, libc::SOCK_STREAM)),
                SECCOMP_RET_ALLOW,
                "{at}"
            );
            assert_eq!(
                v("socket", sock(libc::AF_INET, libc::SOCK_DGRAM)),
                SECCOMP_RET_ALLOW,
                "{at}"
            );
            for denied in [
                sock(libc::AF_UNIX, libc::SOCK_DGRAM),
                sock(libc::AF_INET, libc::SOCK_STREAM),
                sock(libc::AF_INET6, libc::SOCK_DGRAM),
                sock(libc::AF_NETLINK, libc::SOCK_RAW),
                sock(libc::AF_PACKET, libc::SOCK_RAW),
                sock(libc::AF_INET, libc::SOCK_RAW),
                sock(libc::AF_VSOCK, libc::SOCK_STREAM),
            ] {
                assert_eq!(v("socket", denied), EPERM, "{at}: {denied:?}");
            }
            assert_eq!(
                v("socketpair", sock(libc::AF_UNIX, libc::SOCK_DGRAM)),
                SECCOMP_RET_ALLOW,
                "{at}"
            );
            assert_eq!(
                v("socketpair", sock(libc::AF_INET, libc::SOCK_STREAM)),
                EPERM,
                "{at}"
            );
            // The request's low 32 bits, whatever glibc put above them.
            let ioctl = |req: u64| [0, req, 0, 0, 0, 0];
            assert_eq!(v("ioctl", ioctl(0x5401)), SECCOMP_RET_ALLOW, "{at}");
            assert_eq!(
                v("ioctl", ioctl(0xffff_ffff_8004_5430)),
                SECCOMP_RET_ALLOW,
                "{at}"
            );
            assert_eq!(v("ioctl", ioctl(0x5413)), EPERM, "{at}: TIOCGWINSZ");
            assert_eq!(v("ioctl", ioctl(0x1_0000_5413)), EPERM, "{at}");
            if !docker {
                // rsafe's TIOCSTI carve-out still answers first.
                assert_eq!(v("ioctl", ioctl(0x5412)), EPERM, "{at}");
            }
            // No namespace: even with CAP_SYS_ADMIN, whose rule allowed any flags.
            let sigchld = libc::SIGCHLD as u64;
            assert_eq!(
                v("clone", [sigchld, 0, 0, 0, 0, 0]),
                SECCOMP_RET_ALLOW,
                "{at}"
            );
            let newuser = libc::CLONE_NEWUSER as u64 | sigchld;
            assert_eq!(v("clone", [newuser, 0, 0, 0, 0, 0]), EPERM, "{at}");
            assert_eq!(
                v("unshare", [libc::CLONE_NEWNET as u64, 0, 0, 0, 0, 0]),
                EPERM,
                "{at}"
            );
            if !docker || caps.contains(&Capability::CAP_SYS_ADMIN) {
                // Docker allows unshare only with CAP_SYS_ADMIN; rsafe without flags.
                let files = [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0];
                assert_eq!(v("unshare", files), SECCOMP_RET_ALLOW, "{at}");
            }
            assert_eq!(v("clone3", [0; 6]), ENOSYS, "{at}");
            // Other calls are as before.
            assert_eq!(v("read", [0; 6]), SECCOMP_RET_ALLOW, "{at}");
        }
        // Under report_denials a refused class is notified, so rsafe can name it.
        let reporting = narrowed_default(&default_caps, false).notifying_denials();
        assert!(reporting.reports_denials());
        let packet = sock(libc::AF_PACKET, libc::SOCK_RAW);
        assert_eq!(
            verdict(&reporting, "socket", packet),
            libc::SECCOMP_RET_USER_NOTIF
        );
    }

    #[test]
    fn argument_classes_hold_for_the_i386_abi_too() {
        use crate::runtime::seccomp::args::ArgClasses;
        // A profile that lets i386 programs run: socket through the direct call (nr 359) and
        // the multiplexed socketcall (nr 102), whose arguments seccomp cannot see.
        let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["socket", "socketcall", "ioctl", "read"], "action": "SCMP_ACT_ALLOW"}]}"#;
        let base = SeccompProfile::from_json(json.as_bytes(), Path::new("/i.json")).unwrap();
        let mut classes = ArgClasses::default();
        classes.set("socket", &["AF_UNIX".to_string()]).unwrap();
        classes.set("ioctl", &["TCGETS".to_string()]).unwrap();
        let f = compile(&base.restricted(&classes).unwrap(), &[]).unwrap();
        let i386 = |nr: u32, args: [u64; 6]| {
            let data = SyscallData {
                nr,
                arch: AUDIT_ARCH_I386,
                args,
            };
            evaluate_stack(&f.programs, &data).unwrap()
        };
        let (socket_nr, socketcall_nr, ioctl_nr, read_nr) = (359, 102, 54, 3);
        let unrestricted = compile(&base, &[]).unwrap();
        let call = [1, 0x1000, 0, 0, 0, 0]; // socketcall(SYS_SOCKET, args)
        let data = |nr| SyscallData {
            nr,
            arch: AUDIT_ARCH_I386,
            args: call,
        };
        assert_eq!(
            evaluate_stack(&unrestricted.programs, &data(socketcall_nr)),
            Some(SECCOMP_RET_ALLOW)
        );
        // Narrowed, socketcall is no longer allowed: the family is behind its pointer. (The
        // direct i386 socket, nr 359, gets ENOSYS either way: libseccomp names it with a
        // pseudo number, so the profile's known maximum stays below it.)
        assert_ne!(i386(socketcall_nr, call), SECCOMP_RET_ALLOW);
        assert_ne!(i386(socket_nr, [1, 1, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_ne!(i386(socket_nr, [2, 1, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(i386(ioctl_nr, [0, 0x5401, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(i386(ioctl_nr, [0, 0x5413, 0, 0, 0, 0]), EPERM);
        assert_eq!(i386(read_nr, [0; 6]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn unconfined_compiles_to_nothing() {
        let filter = compile(&SeccompProfile::unconfined(), &[]).unwrap();
        assert!(filter.programs.is_empty());
        assert!(filter.is_unconfined());
    }

    #[test]
    fn summary_counts_the_default_profile() {
        let s = default_filter(&[]).summary().clone();
        assert!(s.allowed > 250, "{}", s.allowed);
        assert!(
            s.allowed_with_args >= 5,
            "clone unshare personality socket socketpair"
        );
        assert_eq!(s.other_actions, [("clone3".to_string(), Action::Errno(38))]);
        assert_eq!(s.carve_outs.len(), 2);
        assert!(s.denied_explicitly.contains(&"keyctl".to_string()));
        assert!(s.unknown_names.is_empty(), "{:?}", s.unknown_names);
        assert!(s.absent_on_arches.is_empty(), "{:?}", s.absent_on_arches);
        assert_eq!(s.instructions.len(), 2);
    }

    /// A learned-style profile: a few calls allowed, one refused with another errno, and
    /// ioctl carved out by argument (a second program), EPERM by default.
    fn learned_like(hand_over: &str) -> CompiledFilter {
        let json = format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {{"names": ["read", "write", "ioctl", "fcntl", "close", "exit_group"], "action": "SCMP_ACT_ALLOW"}},
                {{"names": [{hand_over}], "action": "SCMP_ACT_ALLOW"}},
                {{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{{"index": 1, "value": 21522, "op": "SCMP_CMP_EQ"}}]}},
                {{"names": ["unlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30}},
                {{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{{"index": 0, "value": 268435456, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}}]}}
            ]}}"#
        );
        let p = SeccompProfile::from_json(json.as_bytes(), Path::new("/l.json")).unwrap();
        compile(&p, &[]).unwrap()
    }

    const HAND_OVER: &str = r#""sendmsg", "seccomp""#;

    #[test]
    fn notifying_denials_changes_only_the_default_answer() {
        let plain = learned_like(HAND_OVER);
        assert_eq!(plain.why_not_reporting(), None);
        assert!(!plain.reports_denials());
        let f = learned_like(HAND_OVER).notifying_denials();
        assert!(f.reports_denials());
        assert_eq!(f.programs.len(), 2, "main and carve-out");
        assert_eq!(f.programs[0].len(), plain.programs[0].len());
        assert_eq!(
            f.programs[1], plain.programs[1],
            "the carve-out is untouched"
        );
        let notify = libc::SECCOMP_RET_USER_NOTIF;
        // Not in the profile: was EPERM, now notified (rsafe reports it and answers EPERM).
        for name in ["mkdir", "mkdirat", "openat", "mount", "socket", "unshare"] {
            assert_eq!(verdict(&plain, name, [0; 6]), EPERM, "{name}");
            assert_eq!(verdict(&f, name, [0; 6]), notify, "{name}");
        }
        // Allowed only for some arguments: the others are denials, notified too.
        let newuser = libc::CLONE_NEWUSER as u64;
        assert_eq!(verdict(&f, "clone", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(&f, "clone", [newuser, 0, 0, 0, 0, 0]), notify);
        // Allowed stays allowed; explicit denials and the carve-out keep their own errno.
        assert_eq!(verdict(&f, "read", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(&f, "ioctl", [0, 1, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(
            verdict(&f, "ioctl", [0, 21522, 0, 0, 0, 0]),
            SECCOMP_RET_ERRNO | 13
        );
        assert_eq!(verdict(&f, "unlinkat", [0; 6]), SECCOMP_RET_ERRNO | 30);
        // Newer than the profile: still ENOSYS; another ABI: still killed.
        let beyond = SyscallData {
            nr: 1000,
            arch: AUDIT_ARCH_X86_64,
            args: [0; 6],
        };
        assert_eq!(evaluate_stack(&f.programs, &beyond), Some(ENOSYS));
        let i386 = SyscallData {
            nr: 5,
            arch: AUDIT_ARCH_I386,
            args: [0; 6],
        };
        assert_eq!(
            evaluate_stack(&f.programs, &i386),
            Some(SECCOMP_RET_KILL_PROCESS)
        );
    }

    #[test]
    fn notified_calls_are_only_the_ones_the_profile_allows_whatever_their_arguments() {
        let hand_over = format!("{HAND_OVER}, \"openat\", \"execve\"");
        let plain = learned_like(&hand_over);
        let nrs = [
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_unlinkat,
            libc::SYS_mkdir,
            libc::SYS_clone,
        ];
        // Not reporting denials: nothing is notified.
        let (same, none) = learned_like(&hand_over).notifying_calls(&nrs);
        assert!(none.is_empty());
        assert_eq!(same.programs[0], plain.programs[0]);

        let (f, chosen) = learned_like(&hand_over)
            .notifying_denials()
            .notifying_calls(&nrs);
        // unlinkat has its own errno, mkdir is not allowed, clone only for some arguments.
        assert_eq!(chosen, [libc::SYS_openat, libc::SYS_execve]);
        assert_eq!(f.summary.instructions[0], f.programs[0].len());
        let notify = libc::SECCOMP_RET_USER_NOTIF;
        assert_eq!(verdict(&plain, "openat", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(&f, "openat", [0; 6]), notify);
        assert_eq!(verdict(&f, "execve", [0; 6]), notify);
        // The rest as notifying_denials left it.
        assert_eq!(verdict(&f, "mkdir", [0; 6]), notify);
        assert_eq!(verdict(&f, "read", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(&f, "unlinkat", [0; 6]), SECCOMP_RET_ERRNO | 30);
        assert_eq!(verdict(&f, "clone", [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(
            verdict(&f, "ioctl", [0, 21522, 0, 0, 0, 0]),
            SECCOMP_RET_ERRNO | 13
        );
        // openat's number under another ABI, or as x32, is not openat: what it was.
        for (arch, number) in [
            (AUDIT_ARCH_I386, libc::SYS_openat as u32),
            (AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | libc::SYS_openat as u32),
        ] {
            let data = SyscallData {
                nr: number,
                arch,
                args: [0; 6],
            };
            assert_ne!(evaluate_stack(&f.programs, &data), Some(notify));
            assert_eq!(
                evaluate_stack(&f.programs, &data),
                evaluate_stack(
                    &learned_like(&hand_over).notifying_denials().programs,
                    &data
                )
            );
        }
    }

    #[test]
    fn the_default_profile_reports_what_it_denies_by_default_only() {
        let plain = default_filter(&[]);
        let f = default_filter(&[]).notifying_denials();
        assert!(f.reports_denials());
        let notify = libc::SECCOMP_RET_USER_NOTIF;
        for name in MUST_BLOCK {
            let before = verdict(&plain, name, [0; 6]);
            let after = verdict(&f, name, [0; 6]);
            if before == EPERM {
                assert_eq!(after, notify, "{name}");
            } else {
                assert_eq!(after, before, "{name}");
            }
        }
        assert_eq!(verdict(&f, "read", [0; 6]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn a_profile_without_the_hand_over_calls_is_not_reported() {
        for (names, missing) in [
            (r#""seccomp""#, "sendmsg"),
            // Two programs: the second is installed with seccomp(2) under the first.
            (r#""sendmsg""#, "seccomp"),
        ] {
            let f = learned_like(names);
            let why = f.why_not_reporting().unwrap();
            assert!(why.contains(missing), "{why}");
            let f = f.notifying_denials();
            assert!(!f.reports_denials());
            assert_eq!(verdict(&f, "mkdir", [0; 6]), EPERM);
        }
        // One program: seccomp(2) is not needed after the listener.
        let json = r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "sendmsg"], "action": "SCMP_ACT_ALLOW"}]}"#;
        let p = SeccompProfile::from_json(json.as_bytes(), Path::new("/n.json")).unwrap();
        assert!(
            compile(&p, &[])
                .unwrap()
                .notifying_denials()
                .reports_denials()
        );
    }

    #[test]
    fn a_default_other_than_eperm_is_not_reported() {
        for (default, kept) in [
            (r#""SCMP_ACT_KILL_PROCESS""#, SECCOMP_RET_KILL_PROCESS),
            (r#""SCMP_ACT_KILL""#, 0),
            (r#""SCMP_ACT_ERRNO", "defaultErrnoRet": 38"#, ENOSYS),
        ] {
            let json = format!(
                r#"{{"defaultAction": {default},
                "syscalls": [{{"names": ["read", "sendmsg", "seccomp"], "action": "SCMP_ACT_ALLOW"}}]}}"#
            );
            let p = SeccompProfile::from_json(json.as_bytes(), Path::new("/k.json")).unwrap();
            let f = compile(&p, &[]).unwrap();
            assert!(f.why_not_reporting().unwrap().contains("not errno EPERM"));
            let f = f.notifying_denials();
            assert!(!f.reports_denials(), "{default}");
            assert_eq!(verdict(&f, "mkdir", [0; 6]), kept, "{default}");
        }
        let unconfined = compile(&SeccompProfile::unconfined(), &[]).unwrap();
        assert!(!unconfined.notifying_denials().reports_denials());
    }

    /// Loads the reporting filter in a forked child that then closes the listener: with
    /// nobody to answer (rsafe's supervisor gone), a call the policy denies fails with
    /// ENOSYS and is never made; and the listener is close-on-exec, so a workload never
    /// holds it. Exit codes: 0 as expected, 1 the denied mkdir succeeded, 2 another errno,
    /// 3 the listener survives execve, 10/11 setup failed.
    #[test]
    fn without_a_supervisor_a_denied_call_fails_and_is_not_made() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("made");
        let target_c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()).unwrap();
        let filter = learned_like(HAND_OVER).notifying_denials();
        assert!(filter.reports_denials());
        // SAFETY: fork in a threaded test binary: the child only makes raw syscalls on
        // memory prepared before the fork (no allocation, no lock, no drop) and ends in _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let code = denied_without_supervisor(&filter, &target_c);
            // SAFETY: ends the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above; `status` outlives the call.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "see the test's comment");
        assert!(!target.exists());
    }

    /// The forked child of the test above; returns its exit code.
    fn denied_without_supervisor(filter: &CompiledFilter, target: &std::ffi::CStr) -> i32 {
        use std::os::fd::IntoRawFd;
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return 10;
        }
        let Ok(listener) = filter.load_reporting() else {
            return 11;
        };
        let fd = listener.into_raw_fd();
        // SAFETY: fcntl and close on the descriptor this process owns.
        let cloexec = unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC != 0;
        // SAFETY: as above; nothing else uses `fd`.
        unsafe { libc::close(fd) };
        if !cloexec {
            return 3;
        }
        // SAFETY: a NUL-terminated path that outlives the call.
        let rc = unsafe { libc::syscall(libc::SYS_mkdir, target.as_ptr(), 0o755) };
        // SAFETY: reads this thread's errno.
        let errno = unsafe { *libc::__errno_location() };
        match (rc, errno) {
            (-1, libc::ENOSYS) => 0,
            (0, _) => 1,
            _ => 2,
        }
    }
}
