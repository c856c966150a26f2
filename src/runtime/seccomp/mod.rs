//! Seccomp: which syscalls the container may make.
//!
//! Profiles are Docker's JSON format ([`profile`]); rsafe's own default
//! (`policies/seccomp/default.json`) is an allowlist: EPERM for everything it does not name,
//! ENOSYS for syscalls newer than it, only the x86_64 ABI (i386 and x32 syscalls kill the
//! process). [`compile`] turns a profile into BPF programs with libseccomp *before* the final
//! fork, or [`FilterCache`] reads back what an earlier run compiled; [`CompiledFilter::load`]
//! installs them with nothing but the seccomp(2) syscall, as the very last step before execve.
//! A policy's `[seccomp.args]` ([`args`]) narrows a profile's allow rules to the socket
//! families, ioctl requests and namespace flags a learned workload used.

pub mod args;
pub(crate) mod bpf;
mod cache;
mod compile;
mod profile;

use std::fmt;
use std::path::PathBuf;

pub use bpf::KnownMax;
pub use cache::FilterCache;
pub use compile::compile;
pub use profile::{
    Action, ArgCmp, BUILTIN_PROFILES, CmpOp, Condition, FilterFlag, KernelVersion, Profile, Rule,
    SeccompProfile, errno_by_name, errno_name,
};

/// Why a profile could not be read, compiled or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("cannot read seccomp profile {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no seccomp profile named {name:?} (builtin: default, unconfined; or a path to a Docker-format JSON file)"
    )]
    UnknownProfile { name: String },
    #[error("seccomp profile {origin}: {source}")]
    Json {
        origin: String,
        source: serde_json::Error,
    },
    #[error("seccomp profile {origin}: {field}: {problem}")]
    Invalid {
        origin: String,
        field: String,
        problem: String,
    },
    #[error(
        "seccomp profile {origin}: {syscall} has an unconditional `{unconditional}` rule and conditional allow rules; libseccomp would silently drop the conditional ones, so the profile is refused"
    )]
    Unexpressible {
        origin: String,
        syscall: String,
        unconditional: Action,
    },
    #[error("seccomp profile {origin}: libseccomp failed {what}: {source}")]
    Libseccomp {
        origin: String,
        what: String,
        source: libseccomp::error::SeccompError,
    },
    #[error("seccomp profile {origin}: cannot export the BPF program: {source}")]
    Export {
        origin: String,
        source: std::io::Error,
    },
    #[error(
        "seccomp profile {origin}: the filter has {instructions} BPF instructions, more than the kernel's limit of 4096"
    )]
    TooLarge { origin: String, instructions: usize },
    #[error("seccomp filters are compiled for x86_64 hosts only; this host is {arch}")]
    UnsupportedHost { arch: &'static str },
    #[error("cannot load the seccomp filter: {source}{hint}")]
    Load {
        source: std::io::Error,
        hint: &'static str,
    },
}

/// BPF programs ready to install, with a summary of what they do. Programs are installed in
/// order; the kernel runs all of them on every syscall and keeps the most restrictive verdict.
///
/// Serializable so rsafe can compile it while the container builds its root filesystem and
/// send it over the sync channel: the programs travel as base64 of the kernel's
/// `struct sock_filter` records.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(into = "WireFilter", try_from = "WireFilter")]
pub struct CompiledFilter {
    programs: Vec<Vec<libc::sock_filter>>,
    flags: u32,
    summary: SeccompSummary,
}

/// What a compiled profile does, for `rsafe policy show` and `rsafe run -v`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeccompSummary {
    /// The profile's file, builtin name, or `unconfined`.
    pub origin: String,
    /// No filter at all.
    pub unconfined: bool,
    pub default_action: Option<Action>,
    /// ABIs the filter lets through to its rules (x86_64, and i386/x32 if the profile says so);
    /// syscalls from any other ABI kill the process.
    pub architectures: Vec<String>,
    /// Architectures the profile names that cannot run here (left out of the filter).
    pub ignored_architectures: Vec<String>,
    /// x86_64 syscalls allowed whatever their arguments.
    pub allowed: usize,
    /// x86_64 syscalls allowed only for some argument values (clone, socket, …).
    pub allowed_with_args: usize,
    /// Names allowed (some or all of the time) that exist only on i386 or x32.
    pub allowed_compat_only: usize,
    /// Unconditional rules with an action other than allow or the default (clone3 → ENOSYS).
    pub other_actions: Vec<(String, Action)>,
    /// Conditional denials loaded as the second filter: `ioctl(arg1 & 0xffffffff == 0x5412) → errno EPERM`.
    pub carve_outs: Vec<String>,
    /// Syscalls with two unconditional rules of different actions: (name, the first rule's
    /// action, which applies, a later rule's, which libseccomp ignores as runc and crun do).
    pub overridden: Vec<(String, Action, Action)>,
    /// Syscalls the profile lists with the default action: documentation, nothing to compile.
    pub denied_explicitly: Vec<String>,
    /// Rules left out by `includes`/`excludes` for these capabilities, arch and kernel.
    pub rules_skipped_by_conditions: usize,
    /// Every rule with `includes`/`excludes`, and whether it applied here: what a user needs
    /// to compare profiles and to see what `--cap-add` changes.
    pub conditional_rules: Vec<ConditionalRule>,
    /// The syscalls allowed whatever their arguments, by name (sorted).
    pub allowed_names: Vec<String>,
    /// The syscalls allowed only for some argument values, by name (sorted).
    pub allowed_with_args_names: Vec<String>,
    /// Names libseccomp does not know (newer than the library, or misspelt): ignored.
    pub unknown_names: Vec<String>,
    /// Names that exist, but not on any of the filter's architectures.
    pub absent_on_arches: Vec<String>,
    /// Per ABI, the highest syscall number the profile names; anything above gets ENOSYS.
    pub known_max: KnownMax,
    /// BPF instructions per program.
    pub instructions: Vec<usize>,
}

/// One rule of the profile that has conditions (`includes`/`excludes`), as compiled here.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConditionalRule {
    /// `with CAP_SYS_ADMIN`, `without CAP_AUDIT_WRITE`, `on amd64|x32`, `kernel >= 4.8`, ….
    pub condition: String,
    pub names: Vec<String>,
    pub action: Action,
    /// Whether the rule is part of this filter (its conditions hold for these capabilities,
    /// this arch and this kernel).
    pub applied: bool,
}

impl fmt::Display for ConditionalRule {
    /// `yes  with CAP_SYS_CHROOT: chroot → allow`; long name lists are shortened.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 6;
        let mut names = self.names[..self.names.len().min(SHOWN)].join(", ");
        if self.names.len() > SHOWN {
            names.push_str(&format!(", … ({})", self.names.len()));
        }
        let mark = if self.applied { "yes" } else { "no " };
        write!(f, "{mark}  {}: {names} → {}", self.condition, self.action)
    }
}

impl SeccompSummary {
    fn new(origin: &str, default_action: Action) -> Self {
        SeccompSummary {
            origin: origin.to_string(),
            unconfined: false,
            default_action: Some(default_action),
            architectures: Vec::new(),
            ignored_architectures: Vec::new(),
            allowed: 0,
            allowed_with_args: 0,
            allowed_compat_only: 0,
            other_actions: Vec::new(),
            carve_outs: Vec::new(),
            overridden: Vec::new(),
            denied_explicitly: Vec::new(),
            rules_skipped_by_conditions: 0,
            conditional_rules: Vec::new(),
            allowed_names: Vec::new(),
            allowed_with_args_names: Vec::new(),
            unknown_names: Vec::new(),
            absent_on_arches: Vec::new(),
            known_max: KnownMax::default(),
            instructions: Vec::new(),
        }
    }

    fn unconfined(origin: &str) -> Self {
        SeccompSummary {
            unconfined: true,
            default_action: None,
            ..Self::new(origin, Action::Allow)
        }
    }
}

impl fmt::Display for SeccompSummary {
    /// Several lines, each starting with two spaces, for `rsafe policy show`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unconfined {
            return writeln!(
                f,
                "  UNCONFINED: no seccomp filter, every syscall is allowed"
            );
        }
        self.fmt_actions(f)?;
        writeln!(
            f,
            "  ABIs:         {}; any other ABI kills the process",
            self.abis()
        )?;
        if !self.ignored_architectures.is_empty() {
            writeln!(
                f,
                "  ignored:      {} (cannot run here)",
                self.ignored_architectures.join(", ")
            )?;
        }
        self.fmt_conditions(f)?;
        if !self.unknown_names.is_empty() {
            writeln!(
                f,
                "  unknown:      {} (not known to libseccomp, ignored)",
                self.unknown_names.join(", ")
            )?;
        }
        if !self.absent_on_arches.is_empty() {
            writeln!(
                f,
                "  absent:       {} names do not exist on these ABIs",
                self.absent_on_arches.len()
            )?;
        }
        let sizes: Vec<String> = self.instructions.iter().map(usize::to_string).collect();
        writeln!(f, "  BPF:          {} instructions", sizes.join(" + "))
    }
}

impl SeccompSummary {
    /// The profile, its default action and what each rule does: allowed counts, other
    /// actions, carve-outs, overridden duplicates and explicit denials.
    fn fmt_actions(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = self
            .default_action
            .map_or_else(String::new, |a| a.to_string());
        writeln!(f, "  profile:      {}", self.origin)?;
        writeln!(f, "  default:      {default}")?;
        let compat = if self.allowed_compat_only > 0 {
            format!(
                "; and {} names of the i386/x32 ABIs",
                self.allowed_compat_only
            )
        } else {
            String::new()
        };
        writeln!(
            f,
            "  allowed:      {} x86_64 syscalls, {} more only for some arguments{compat}",
            self.allowed, self.allowed_with_args
        )?;
        for (name, action) in &self.other_actions {
            writeln!(f, "  {:<13} {action}", format!("{name}:"))?;
        }
        for carve_out in &self.carve_outs {
            writeln!(
                f,
                "  carve-out:    {carve_out} (second filter, wins over allow)"
            )?;
        }
        for (name, kept, ignored) in &self.overridden {
            writeln!(
                f,
                "  {:<13} {kept} (a later rule's {ignored} is ignored: the first unconditional rule wins, as in libseccomp)",
                format!("{name}:")
            )?;
        }
        if !self.denied_explicitly.is_empty() {
            writeln!(
                f,
                "  denied:       {} syscalls listed explicitly",
                self.denied_explicitly.len()
            )?;
        }
        Ok(())
    }

    /// The filter's ABIs, each with the number above which it answers ENOSYS (unless the
    /// default action lets unknown calls through anyway).
    fn abis(&self) -> String {
        let no_enosys_prefix = matches!(self.default_action, Some(Action::Allow | Action::Log));
        if no_enosys_prefix {
            return self.architectures.join(", ");
        }
        let mut abis = Vec::new();
        for arch in &self.architectures {
            let max = match arch.as_str() {
                "x86_64" => self.known_max.x86_64,
                "x32" => self.known_max.x32.map(|n| n & !bpf::X32_SYSCALL_BIT),
                _ => self.known_max.i386,
            };
            match max {
                Some(n) => abis.push(format!("{arch} (ENOSYS above nr {n})")),
                None => abis.push(arch.clone()),
            }
        }
        abis.join(", ")
    }

    /// The rules with `includes`/`excludes`, one line each, saying whether they apply here.
    fn fmt_conditions(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conditional_rules.is_empty() {
            return Ok(());
        }
        let applied = self.conditional_rules.iter().filter(|r| r.applied).count();
        writeln!(
            f,
            "  conditions:   {applied} of {} conditional rules apply here; left out: {} rule(s) (includes/excludes on capabilities, arch, kernel)",
            self.conditional_rules.len(),
            self.rules_skipped_by_conditions
        )?;
        for rule in &self.conditional_rules {
            writeln!(f, "    {rule}")?;
        }
        Ok(())
    }
}

/// [`CompiledFilter`] as it crosses the sync channel.
#[derive(serde::Serialize, serde::Deserialize)]
struct WireFilter {
    programs: Vec<String>,
    flags: u32,
    summary: SeccompSummary,
}

impl From<CompiledFilter> for WireFilter {
    fn from(f: CompiledFilter) -> WireFilter {
        use base64::Engine as _;
        WireFilter {
            programs: f
                .programs
                .iter()
                .map(|p| base64::engine::general_purpose::STANDARD.encode(bpf::encode(p)))
                .collect(),
            flags: f.flags,
            summary: f.summary,
        }
    }
}

impl TryFrom<WireFilter> for CompiledFilter {
    type Error = String;
    fn try_from(w: WireFilter) -> Result<CompiledFilter, String> {
        use base64::Engine as _;
        let programs = w
            .programs
            .iter()
            .map(|p| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(p)
                    .map_err(|e| format!("seccomp program: {e}"))?;
                match bpf::decode(&bytes) {
                    Some(insns) if !insns.is_empty() && insns.len() <= bpf::MAX_INSNS => Ok(insns),
                    _ => Err(format!(
                        "seccomp program: {} bytes is not 1 to {} instructions",
                        bytes.len(),
                        bpf::MAX_INSNS
                    )),
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(CompiledFilter {
            programs,
            flags: w.flags,
            summary: w.summary,
        })
    }
}

impl PartialEq for CompiledFilter {
    fn eq(&self, other: &CompiledFilter) -> bool {
        self.flags == other.flags
            && self.summary == other.summary
            && self.programs.len() == other.programs.len()
            && self
                .programs
                .iter()
                .zip(&other.programs)
                .all(|(a, b)| bpf::encode(a) == bpf::encode(b))
    }
}

impl CompiledFilter {
    /// What the filter does.
    pub fn summary(&self) -> &SeccompSummary {
        &self.summary
    }

    /// `self` and then `other`, installed together: a call passes only if both filters allow
    /// it (the kernel keeps the most restrictive verdict). The summary stays `self`'s, its
    /// origin naming both.
    pub fn stacked(mut self, other: CompiledFilter) -> CompiledFilter {
        if !other.is_unconfined() {
            self.summary.origin = format!("{} + {}", self.summary.origin, other.summary.origin);
            self.summary
                .instructions
                .extend(other.summary.instructions.iter().copied());
        }
        self.programs.extend(other.programs);
        self.flags |= other.flags;
        self
    }

    /// The BPF programs, in installation order: for tests that evaluate a stack of filters.
    #[cfg(test)]
    pub(crate) fn programs(&self) -> &[Vec<libc::sock_filter>] {
        &self.programs
    }

    /// True when nothing will be loaded (`--seccomp unconfined`).
    pub fn is_unconfined(&self) -> bool {
        self.programs.is_empty()
    }

    /// Installs the programs with seccomp(2). Call last, right before execve: afterwards the
    /// calls the runner still needs (mount, setns, …) are gone. Needs `no_new_privs` (or
    /// CAP_SYS_ADMIN). Does not allocate; dropping `self` frees the programs.
    pub fn load(self) -> Result<(), SeccompError> {
        for program in &self.programs {
            // Bounded by MAX_INSNS (4096) in compile().
            let rc = install(program, self.flags);
            if rc != 0 {
                let source = if rc > 0 {
                    std::io::Error::other(format!("thread {rc} could not be synchronised"))
                } else {
                    std::io::Error::last_os_error()
                };
                let hint = if source.raw_os_error() == Some(libc::EACCES) {
                    " (set no_new_privs first, or hold CAP_SYS_ADMIN)"
                } else {
                    ""
                };
                return Err(SeccompError::Load { source, hint });
            }
        }
        Ok(())
    }
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, program): the raw return value (negative with errno
/// set; with TSYNC a thread id; with NEW_LISTENER the listener descriptor). `program` holds
/// at most 4096 instructions (the kernel's BPF_MAXINSNS).
pub(crate) fn install(program: &[libc::sock_filter], flags: u32) -> libc::c_long {
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel copies the
    // instructions and validates them before installing.
    unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    }
}
