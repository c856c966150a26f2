//! Seccomp profiles in Docker's JSON format, parsed and validated into typed rules.
//!
//! The format is the one `docker run --security-opt seccomp=FILE` and `podman run
//! --security-opt seccomp=FILE` read, so existing profiles work unchanged: every field of
//! moby's `profiles/seccomp` types and of containers/common's `pkg/seccomp` types.
//! `defaultAction`, `defaultErrnoRet` or podman's `defaultErrno` (a name such as `ENOSYS`, or a
//! number), `architectures` or `archMap`, `flags`, `listenerPath`/`listenerMetadata`, and
//! `syscalls[]` with `names` (or the older `name`), `action`, `errnoRet` or podman's `errno`,
//! `args[{index, value, valueTwo, op}]`, `comment`, and `includes`/`excludes` (`caps`,
//! `arches`, `minKernel`).
//!
//! Meanings are the runtimes': `errno` wins over `errnoRet` (containers/common), and a rule's
//! `SCMP_ACT_ERRNO` without either returns EPERM, whatever `defaultErrnoRet` says (runc and
//! crun apply `defaultErrnoRet` to the default action only).
//!
//! What rsafe cannot honour is refused with the field's name and why (`listenerPath`: user
//! notification). A `comment` is accepted at any level: it only documents. Any other unknown
//! field is an error rather than silently ignored: a typo in a security profile must not weaken
//! it unnoticed.

use crate::bounded;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::SeccompError;

/// The profile rsafe ships, written for this project: an allowlist with EPERM as the default.
const BUILTIN_DEFAULT: &str = include_str!("../../../policies/seccomp/default.json");

/// Names of the profiles compiled into the binary (usable as `--seccomp NAME`).
pub const BUILTIN_PROFILES: &[&str] = &["default"];

/// A seccomp profile: either "unconfined" (no filter at all) or a validated Docker-format profile.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeccompProfile {
    origin: String,
    rules: Option<Profile>,
}

/// A validated Docker-format profile.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// What happens to a syscall no rule matches.
    pub default_action: Action,
    /// Architecture names (`SCMP_ARCH_*`) the filter covers, after `archMap` selection for this
    /// host. Empty means the native architecture only.
    pub architectures: Vec<String>,
    /// `SECCOMP_FILTER_FLAG_*` names passed to seccomp(2).
    pub flags: Vec<FilterFlag>,
    /// The syscall rules, in file order.
    pub syscalls: Vec<Rule>,
}

/// One entry of `syscalls[]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    pub names: Vec<String>,
    pub action: Action,
    /// All must hold (AND); Docker semantics: conditions on the same argument index are ORed.
    pub args: Vec<ArgCmp>,
    /// The rule applies only when every condition here holds.
    pub includes: Condition,
    /// The rule is dropped when any condition here holds.
    pub excludes: Condition,
    pub comment: Option<String>,
}

/// `includes` / `excludes` of a rule.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Condition {
    /// Capability names as Docker writes them (`CAP_SYS_ADMIN`).
    pub caps: Vec<String>,
    /// Go-style architecture names (`amd64`, `x86`, `x32`, `arm64`, …).
    pub arches: Vec<String>,
    /// Kernel version, e.g. `4.8`.
    pub min_kernel: Option<KernelVersion>,
}

/// What seccomp does with a matching syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Action {
    Allow,
    Log,
    Errno(u16),
    Trace(u16),
    Trap,
    KillThread,
    KillProcess,
}

/// An argument comparison: `args[index] op value` (or `args[index] & value == value_two`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArgCmp {
    pub index: u8,
    pub op: CmpOp,
    pub value: u64,
    pub value_two: u64,
}

/// `SCMP_CMP_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

impl CmpOp {
    /// The comparison a Docker-format profile names (`SCMP_CMP_EQ`, …).
    pub fn from_name(name: &str) -> Option<CmpOp> {
        Some(match name {
            "SCMP_CMP_NE" => CmpOp::Ne,
            "SCMP_CMP_LT" => CmpOp::Lt,
            "SCMP_CMP_LE" => CmpOp::Le,
            "SCMP_CMP_EQ" => CmpOp::Eq,
            "SCMP_CMP_GE" => CmpOp::Ge,
            "SCMP_CMP_GT" => CmpOp::Gt,
            "SCMP_CMP_MASKED_EQ" => CmpOp::MaskedEq,
            _ => return None,
        })
    }
}

/// `SECCOMP_FILTER_FLAG_*` a profile may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FilterFlag {
    Tsync,
    Log,
    SpecAllow,
}

/// A kernel release as `major.minor.patch`, compared numerically.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct KernelVersion(pub u32, pub u32, pub u32);

impl SeccompProfile {
    /// Parses a Docker-format profile. `origin` names the file in every error.
    pub fn from_json(bytes: &[u8], origin: &Path) -> Result<SeccompProfile, SeccompError> {
        Self::parse(bytes, origin.display().to_string())
    }

    /// Reads and parses a profile file.
    pub fn from_file(path: &Path) -> Result<SeccompProfile, SeccompError> {
        let bytes = bounded::read_file(path, bounded::CONFIG).map_err(|e| SeccompError::Read {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        Self::from_json(&bytes, path)
    }

    /// rsafe's own allowlist (`policies/seccomp/default.json`, compiled into the binary).
    pub fn builtin_default() -> SeccompProfile {
        match Self::parse(
            BUILTIN_DEFAULT.as_bytes(),
            "builtin seccomp profile default".into(),
        ) {
            Ok(profile) => profile,
            // The embedded file is checked by a unit test; reaching this is a build defect.
            Err(err) => panic!("the embedded default seccomp profile is invalid: {err}"),
        }
    }

    /// A builtin profile by name (see [`BUILTIN_PROFILES`]), or `unconfined`.
    pub fn builtin(name: &str) -> Option<SeccompProfile> {
        match name {
            "default" => Some(Self::builtin_default()),
            "unconfined" => Some(Self::unconfined()),
            _ => None,
        }
    }

    /// No seccomp filter at all (`--seccomp unconfined`): the runner must warn about it.
    pub fn unconfined() -> SeccompProfile {
        SeccompProfile {
            origin: "unconfined".into(),
            rules: None,
        }
    }

    /// `unconfined`, a builtin profile name, or a path to a JSON file. A value containing `/`
    /// or ending in `.json` is always a path.
    pub fn resolve(name_or_path: &str) -> Result<SeccompProfile, SeccompError> {
        let looks_like_path = name_or_path.contains('/') || name_or_path.ends_with(".json");
        match Self::builtin(name_or_path) {
            Some(profile) if !looks_like_path => Ok(profile),
            _ if looks_like_path || Path::new(name_or_path).exists() => {
                Self::from_file(Path::new(name_or_path))
            }
            _ => Err(SeccompError::UnknownProfile {
                name: name_or_path.to_string(),
            }),
        }
    }

    /// Where the profile came from (file path, builtin name, or `unconfined`), for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// True when no filter is to be loaded.
    pub fn is_unconfined(&self) -> bool {
        self.rules.is_none()
    }

    /// The parsed rules; None when unconfined.
    pub fn profile(&self) -> Option<&Profile> {
        self.rules.as_ref()
    }

    /// The same profile with its allow rules narrowed to `classes` (a policy's
    /// `[seccomp.args]`, see [`super::args`]); its origin stays, so messages still name the
    /// file. Unconfined stays unconfined: there is no filter to narrow.
    pub fn restricted(
        &self,
        classes: &super::args::ArgClasses,
    ) -> Result<SeccompProfile, SeccompError> {
        let Some(p) = &self.rules else {
            return Ok(self.clone());
        };
        if classes.is_empty() {
            return Ok(self.clone());
        }
        let syscalls = super::args::restrict_rules(&p.syscalls, classes).map_err(|problem| {
            SeccompError::Invalid {
                origin: self.origin.clone(),
                field: "[seccomp.args]".into(),
                problem,
            }
        })?;
        Ok(SeccompProfile {
            origin: self.origin.clone(),
            rules: Some(Profile {
                syscalls,
                ..p.clone()
            }),
        })
    }

    fn parse(bytes: &[u8], origin: String) -> Result<SeccompProfile, SeccompError> {
        let raw: RawProfile =
            serde_json::from_slice(bytes).map_err(|source| SeccompError::Json {
                origin: origin.clone(),
                source,
            })?;
        let invalid = |field: String, problem: String| SeccompError::Invalid {
            origin: origin.clone(),
            field,
            problem,
        };
        let profile = raw
            .validate()
            .map_err(|(field, problem)| invalid(field, problem))?;
        Ok(SeccompProfile {
            origin,
            rules: Some(profile),
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Allow => f.write_str("allow"),
            Action::Log => f.write_str("log"),
            Action::Errno(n) => write!(f, "errno {}", errno_name(*n)),
            Action::Trace(n) => write!(f, "trace {n}"),
            Action::Trap => f.write_str("trap (SIGSYS)"),
            Action::KillThread => f.write_str("kill thread"),
            Action::KillProcess => f.write_str("kill process"),
        }
    }
}

/// `EPERM` for 1, `ENOSYS` for 38, …, or the number: how rules and probes name errnos.
pub fn errno_name(n: u16) -> String {
    match nix::errno::Errno::from_raw(i32::from(n)) {
        nix::errno::Errno::UnknownErrno => n.to_string(),
        known => format!("{known:?}"),
    }
}

/// The number of an errno named as podman's profiles do (`EPERM`, `ENOSYS`, also the aliases
/// `EWOULDBLOCK`, `EDEADLOCK`, `ENOTSUP`), or None.
pub fn errno_by_name(name: &str) -> Option<u16> {
    let alias = match name {
        "EWOULDBLOCK" => Some(libc::EWOULDBLOCK),
        "EDEADLOCK" => Some(libc::EDEADLOCK),
        "ENOTSUP" => Some(libc::ENOTSUP),
        _ => None,
    };
    if let Some(n) = alias {
        return u16::try_from(n).ok();
    }
    (1..=255u16).find(|&n| errno_name(n) == name)
}

/// containers/common's `errno`/`defaultErrno`: a name or a decimal number.
fn parse_errno(text: &str, field: &str) -> Result<u32, FieldError> {
    if let Ok(n) = text.parse::<u32>() {
        return Ok(n);
    }
    errno_by_name(text).map(u32::from).ok_or_else(|| {
        (
            field.to_string(),
            format!("{text:?} is not an errno name (EPERM, ENOSYS, …) or number"),
        )
    })
}

impl KernelVersion {
    /// Parses `6.18.44-fc-v669`, `4.8`, `5`: leading numeric components, the rest ignored.
    pub fn parse(text: &str) -> Option<KernelVersion> {
        let numeric_end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let mut parts = text[..numeric_end].split('.').filter(|p| !p.is_empty());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        Some(KernelVersion(major, minor, patch))
    }
}

// ---- the JSON as written ------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProfile {
    default_action: String,
    default_errno_ret: Option<u32>,
    /// containers/common: an errno name or number; wins over `defaultErrnoRet`.
    default_errno: Option<String>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<RawArchMap>>,
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
    /// Only meaningful with `listenerPath`, which is refused.
    #[serde(rename = "listenerMetadata")]
    _listener_metadata: Option<String>,
    syscalls: Option<Vec<RawSyscall>>,
    /// Documentation only, at any level.
    #[serde(rename = "comment")]
    _comment: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
    #[serde(rename = "comment")]
    _comment: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSyscall {
    name: Option<String>,
    names: Option<Vec<String>>,
    action: String,
    errno_ret: Option<u32>,
    /// containers/common: an errno name or number; wins over `errnoRet`.
    errno: Option<String>,
    args: Option<Vec<RawArg>>,
    comment: Option<String>,
    includes: Option<RawCondition>,
    excludes: Option<RawCondition>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
    #[serde(rename = "comment")]
    _comment: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCondition {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
    #[serde(rename = "comment")]
    _comment: Option<serde_json::Value>,
}

/// A validation failure: the JSON path of the field and what is wrong with it.
type FieldError = (String, String);

/// Architectures this host can run: the native x86_64 ABI and the two compat ABIs.
const HOST_ARCH: &str = "SCMP_ARCH_X86_64";
const KNOWN_ARCHES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

impl RawProfile {
    fn validate(self) -> Result<Profile, FieldError> {
        let (default_errno, errno_field) = match &self.default_errno {
            Some(name) => (Some(parse_errno(name, "defaultErrno")?), "defaultErrno"),
            None => (self.default_errno_ret, "defaultErrnoRet"),
        };
        let default_action = parse_action(
            &self.default_action,
            default_errno,
            "defaultAction",
            errno_field,
        )?;
        if self.listener_path.is_some() {
            return Err((
                "listenerPath".into(),
                "seccomp user notification is not supported by rsafe: it has no agent to pass the listener to, and a notified syscall would wait forever".into(),
            ));
        }
        let architectures = match (self.architectures, self.arch_map) {
            (Some(a), Some(m)) if !a.is_empty() && !m.is_empty() => {
                return Err((
                    "architectures".into(),
                    "both `architectures` and `archMap` are given; use one".into(),
                ));
            }
            (Some(list), _) if !list.is_empty() => {
                for (i, arch) in list.iter().enumerate() {
                    check_arch(arch, format!("architectures[{i}]"))?;
                }
                list
            }
            (_, Some(map)) => {
                let mut selected = Vec::new();
                for (i, entry) in map.iter().enumerate() {
                    check_arch(&entry.architecture, format!("archMap[{i}].architecture"))?;
                    let subs = entry.sub_architectures.as_deref().unwrap_or_default();
                    for (j, sub) in subs.iter().enumerate() {
                        check_arch(sub, format!("archMap[{i}].subArchitectures[{j}]"))?;
                    }
                    if entry.architecture == HOST_ARCH && selected.is_empty() {
                        selected.push(entry.architecture.clone());
                        selected.extend(subs.iter().cloned());
                    }
                }
                selected
            }
            _ => Vec::new(),
        };
        let mut flags = Vec::new();
        for (i, flag) in self.flags.unwrap_or_default().iter().enumerate() {
            flags.push(match flag.as_str() {
                "SECCOMP_FILTER_FLAG_TSYNC" => FilterFlag::Tsync,
                "SECCOMP_FILTER_FLAG_LOG" => FilterFlag::Log,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => FilterFlag::SpecAllow,
                other => {
                    return Err((
                        format!("flags[{i}]"),
                        format!("unknown seccomp flag {other:?}"),
                    ));
                }
            });
        }
        let mut syscalls = Vec::new();
        for (i, raw) in self.syscalls.unwrap_or_default().into_iter().enumerate() {
            syscalls.push(raw.validate(&format!("syscalls[{i}]"))?);
        }
        Ok(Profile {
            default_action,
            architectures,
            flags,
            syscalls,
        })
    }
}

impl RawSyscall {
    fn validate(self, at: &str) -> Result<Rule, FieldError> {
        let names = match (self.name, self.names) {
            (Some(_), Some(names)) if !names.is_empty() => {
                return Err((
                    format!("{at}.name"),
                    "both `name` and `names` are given".into(),
                ));
            }
            (Some(name), _) => vec![name],
            (None, Some(names)) if !names.is_empty() => names,
            _ => return Err((format!("{at}.names"), "no syscall names".into())),
        };
        if let Some(j) = names.iter().position(|n| n.is_empty()) {
            return Err((format!("{at}.names[{j}]"), "empty syscall name".into()));
        }
        // containers/common: `errno` wins over `errnoRet`. runc and crun: a rule's ERRNO with
        // neither is EPERM (defaultErrnoRet is the default action's only).
        let (errno, errno_field) = match &self.errno {
            Some(name) => {
                let field = format!("{at}.errno");
                (Some(parse_errno(name, &field)?), field)
            }
            None => (self.errno_ret, format!("{at}.errnoRet")),
        };
        let action = parse_action(&self.action, errno, &format!("{at}.action"), &errno_field)?;
        let mut args = Vec::new();
        for (j, arg) in self.args.unwrap_or_default().iter().enumerate() {
            let field = format!("{at}.args[{j}]");
            if arg.index > 5 {
                return Err((
                    format!("{field}.index"),
                    format!("argument index {} out of range 0..=5", arg.index),
                ));
            }
            let Some(op) = CmpOp::from_name(&arg.op) else {
                return Err((
                    format!("{field}.op"),
                    format!("unknown comparison {:?}", arg.op),
                ));
            };
            args.push(ArgCmp {
                index: arg.index as u8,
                op,
                value: arg.value,
                value_two: arg.value_two,
            });
        }
        let includes = self
            .includes
            .unwrap_or_default()
            .validate(&format!("{at}.includes"))?;
        let excludes = self
            .excludes
            .unwrap_or_default()
            .validate(&format!("{at}.excludes"))?;
        Ok(Rule {
            names,
            action,
            args,
            includes,
            excludes,
            comment: self.comment,
        })
    }
}

impl RawCondition {
    fn validate(self, at: &str) -> Result<Condition, FieldError> {
        let min_kernel = match self.min_kernel {
            None => None,
            Some(text) if text.is_empty() => None,
            Some(text) => Some(KernelVersion::parse(&text).ok_or_else(|| {
                (
                    format!("{at}.minKernel"),
                    format!("{text:?} is not a kernel version like 5.8"),
                )
            })?),
        };
        Ok(Condition {
            caps: self.caps.unwrap_or_default(),
            arches: self.arches.unwrap_or_default(),
            min_kernel,
        })
    }
}

fn check_arch(name: &str, field: String) -> Result<(), FieldError> {
    if KNOWN_ARCHES.contains(&name) {
        Ok(())
    } else {
        Err((
            field,
            format!("unknown architecture {name:?} (expected SCMP_ARCH_*)"),
        ))
    }
}

fn parse_action(
    name: &str,
    errno_ret: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<Action, FieldError> {
    let small = |default: u16| -> Result<u16, FieldError> {
        match errno_ret {
            None => Ok(default),
            Some(n) if n <= 4095 => Ok(n as u16),
            Some(n) => Err((
                errno_field.to_string(),
                format!("{n} is not an errno value (0..=4095)"),
            )),
        }
    };
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_ERRNO" => Action::Errno(small(libc::EPERM as u16)?),
        "SCMP_ACT_TRACE" => Action::Trace(small(libc::EPERM as u16)?),
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_NOTIFY" => {
            return Err((
                field.to_string(),
                "SCMP_ACT_NOTIFY is not supported by rsafe: it has no agent to answer the notification, and the syscall would wait forever".into(),
            ));
        }
        other => return Err((field.to_string(), format!("unknown action {other:?}"))),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn parse(json: &str) -> Result<SeccompProfile, SeccompError> {
        SeccompProfile::from_json(json.as_bytes(), Path::new("/etc/test/profile.json"))
    }

    fn rules(profile: &SeccompProfile) -> &Profile {
        profile.profile().unwrap()
    }

    /// A Docker-style profile with archMap, includes/excludes on caps, arches and minKernel,
    /// masked and plain argument comparisons, errnoRet, the legacy `name` field and comments.
    const DOCKER_STYLE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}
        ],
        "syscalls": [
            {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"name": "chroot", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]},
             "comment": "legacy single name"},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}}
        ]
    }"#;

    #[test]
    fn docker_style_profile_parses_with_every_field() {
        let profile = parse(DOCKER_STYLE).unwrap();
        let p = rules(&profile);
        assert_eq!(p.default_action, Action::Errno(1));
        assert_eq!(
            p.architectures,
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        );
        assert_eq!(p.syscalls.len(), 7);
        assert_eq!(
            p.syscalls[1].includes.min_kernel,
            Some(KernelVersion(4, 8, 0))
        );
        assert_eq!(
            p.syscalls[3].args,
            [ArgCmp {
                index: 0,
                op: CmpOp::MaskedEq,
                value: 2114060288,
                value_two: 0
            }]
        );
        assert_eq!(p.syscalls[3].excludes.caps, ["CAP_SYS_ADMIN"]);
        assert_eq!(p.syscalls[3].excludes.arches, ["s390", "s390x"]);
        assert_eq!(p.syscalls[4].action, Action::Errno(38));
        assert_eq!(p.syscalls[5].names, ["chroot"]);
        assert_eq!(p.syscalls[5].comment.as_deref(), Some("legacy single name"));
        assert_eq!(p.syscalls[6].includes.arches, ["amd64", "x32"]);
    }

    #[test]
    fn errno_defaults_follow_runc() {
        // defaultErrnoRet is the default action's; a rule's ERRNO without errnoRet is EPERM
        // (runc's getAction, crun likewise), as is TRACE's.
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":13,
            "syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO"},
                        {"names":["b"],"action":"SCMP_ACT_TRACE"},
                        {"names":["c"],"action":"SCMP_ACT_ERRNO","errnoRet":22}]}"#,
        )
        .unwrap();
        assert_eq!(rules(&p).default_action, Action::Errno(13));
        assert_eq!(rules(&p).syscalls[0].action, Action::Errno(1));
        assert_eq!(rules(&p).syscalls[1].action, Action::Trace(1));
        assert_eq!(rules(&p).syscalls[2].action, Action::Errno(22));
        let p = parse(r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#).unwrap();
        assert_eq!(rules(&p).default_action, Action::Errno(1));
        assert!(rules(&p).architectures.is_empty());
    }

    #[test]
    fn podman_errno_names_win_over_numbers() {
        // containers/common's getErrno: `errno` (a name or a number) wins over `errnoRet`.
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"defaultErrno":"ENOSYS",
            "syscalls":[
              {"names":["a"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"errno":"EINVAL"},
              {"names":["b"],"action":"SCMP_ACT_ERRNO","errno":"13"},
              {"names":["c"],"action":"SCMP_ACT_ERRNO","errno":"EWOULDBLOCK"},
              {"names":["d"],"action":"SCMP_ACT_ERRNO","errnoRet":95}]}"#,
        )
        .unwrap();
        let p = rules(&p);
        assert_eq!(p.default_action, Action::Errno(libc::ENOSYS as u16));
        assert_eq!(p.syscalls[0].action, Action::Errno(libc::EINVAL as u16));
        assert_eq!(p.syscalls[1].action, Action::Errno(13));
        assert_eq!(p.syscalls[2].action, Action::Errno(libc::EAGAIN as u16));
        assert_eq!(p.syscalls[3].action, Action::Errno(libc::EOPNOTSUPP as u16));
    }

    #[test]
    fn errno_names_round_trip() {
        for (n, name) in [
            (libc::EPERM, "EPERM"),
            (libc::ENOSYS, "ENOSYS"),
            (libc::EAFNOSUPPORT, "EAFNOSUPPORT"),
            (libc::EHWPOISON, "EHWPOISON"),
        ] {
            assert_eq!(errno_name(n as u16), name);
            assert_eq!(errno_by_name(name), Some(n as u16));
        }
        assert_eq!(errno_name(4000), "4000");
        assert_eq!(errno_by_name("ENOTSUP"), Some(libc::EOPNOTSUPP as u16));
        assert_eq!(errno_by_name("EPREM"), None);
    }

    #[test]
    fn comments_are_accepted_at_every_level() {
        let p = parse(
            r#"{"comment":"top","defaultAction":"SCMP_ACT_ERRNO",
            "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":[],"comment":"x"}],
            "syscalls":[{"names":["socket"],"action":"SCMP_ACT_ALLOW","comment":"rule",
              "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ","comment":"AF_UNIX"}],
              "includes":{"comment":"always"},"excludes":{"caps":[],"comment":"never"}}]}"#,
        )
        .unwrap();
        assert_eq!(rules(&p).syscalls[0].comment.as_deref(), Some("rule"));
    }

    /// podman's default profile as Debian installs it (`golang-github-containers-common`,
    /// in .ci/setup-debian.sh), parsed; None (the test skips) when it is missing and the run
    /// does not require it. Shared with the compiler's tests.
    pub(crate) fn podman_default_profile() -> Option<SeccompProfile> {
        const PODMAN_DEFAULT: &str = "/usr/share/containers/seccomp.json";
        let path = Path::new(PODMAN_DEFAULT);
        if !path.exists() {
            let require = std::env::var("RSAFE_TEST_REQUIRE").is_ok_and(|v| v == "1");
            assert!(
                !require,
                "{PODMAN_DEFAULT} is required (RSAFE_TEST_REQUIRE=1)"
            );
            eprintln!("skipping: {PODMAN_DEFAULT} is missing");
            return None;
        }
        Some(SeccompProfile::from_file(path).unwrap())
    }

    /// podman's default profile must load as it is.
    #[test]
    fn podmans_installed_default_profile_loads() {
        let Some(profile) = podman_default_profile() else {
            return;
        };
        let p = rules(&profile);
        assert_eq!(p.default_action, Action::Errno(libc::ENOSYS as u16));
        assert_eq!(
            p.architectures,
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        );
        // Every rule with `"errno": "EPERM"` (and the audit socket's EINVAL) as podman means it.
        let userfaultfd = p
            .syscalls
            .iter()
            .find(|r| r.names.iter().any(|n| n == "userfaultfd"))
            .unwrap();
        assert_eq!(userfaultfd.action, Action::Errno(libc::EPERM as u16));
        assert!(p.syscalls.iter().any(|r| r.names == ["socket"]
            && r.action == Action::Errno(libc::EINVAL as u16)
            && r.excludes.caps == ["CAP_AUDIT_WRITE"]));
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let cases = [
            (
                r#"{"defaultAction":"SCMP_ACT_NOPE"}"#,
                "defaultAction",
                "unknown action",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","args":[{"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
                "syscalls[0].args[0].index",
                "out of range",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW"},{"names":["y"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":1,"op":"EQ"}]}]}"#,
                "syscalls[1].args[0].op",
                "unknown comparison",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","x86"]}"#,
                "architectures[1]",
                "unknown architecture",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_ALLOW"}]}"#,
                "syscalls[0].names",
                "no syscall names",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","errnoRet":99999}]}"#,
                "syscalls[0].errnoRet",
                "not an errno",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"new"}}]}"#,
                "syscalls[0].includes.minKernel",
                "not a kernel version",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/x.sock"}"#,
                "listenerPath",
                "not supported",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrno":"ENOSYSS"}"#,
                "defaultErrno",
                "not an errno name",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","errno":"99999"}]}"#,
                "syscalls[0].errno",
                "not an errno value",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_NOTIFY"}]}"#,
                "syscalls[0].action",
                "SCMP_ACT_NOTIFY is not supported",
            ),
        ];
        for (json, field, problem) in cases {
            let err = parse(json).unwrap_err().to_string();
            assert!(err.contains("/etc/test/profile.json"), "{err}");
            assert!(err.contains(field), "{err} should name {field}");
            assert!(err.contains(problem), "{err} should say {problem}");
        }
    }

    #[test]
    fn unknown_fields_and_bad_json_are_errors_with_a_position() {
        let err = parse(r#"{"defaultAction":"SCMP_ACT_ALLOW","sycalls":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/etc/test/profile.json") && err.contains("sycalls"),
            "{err}"
        );
        let err = parse("{\n\"defaultAction\": }").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn builtin_and_unconfined_resolve() {
        assert!(
            SeccompProfile::resolve("unconfined")
                .unwrap()
                .is_unconfined()
        );
        let default = SeccompProfile::resolve("default").unwrap();
        assert!(!default.is_unconfined());
        assert_eq!(default, SeccompProfile::builtin_default());
        let err = SeccompProfile::resolve("no-such-profile")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no-such-profile"), "{err}");
        let err = SeccompProfile::resolve("/nonexistent/p.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/p.json"), "{err}");
    }

    #[test]
    fn builtin_default_is_an_x86_64_only_eperm_allowlist() {
        let profile = SeccompProfile::builtin_default();
        let p = rules(&profile);
        assert_eq!(p.default_action, Action::Errno(libc::EPERM as u16));
        assert_eq!(p.architectures, ["SCMP_ARCH_X86_64"]);
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(
            KernelVersion::parse("6.18.44-fc-v669"),
            Some(KernelVersion(6, 18, 44))
        );
        assert_eq!(KernelVersion::parse("4.8"), Some(KernelVersion(4, 8, 0)));
        assert_eq!(KernelVersion::parse("5"), Some(KernelVersion(5, 0, 0)));
        assert_eq!(KernelVersion::parse("x"), None);
        assert!(KernelVersion(6, 1, 0) > KernelVersion(5, 19, 99));
    }
}
