//! Runner policies: which capabilities a container keeps, its seccomp profile, landlock rules,
//! masked and read-only paths, default limits and network mode.
//!
//! The builtin policies (`policies/*.toml`) are compiled into the binary, so rsafe works from
//! any directory; `--policy FILE` loads a file instead. A policy file may leave out any field:
//! it then gets the value of the builtin `default` policy, so a file saying only
//! `[capabilities] keep = ["NET_RAW"]` is a complete policy. `rsafe policy show` prints the
//! result.

use crate::bounded;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use ::caps::Capability;
use toml::{Table, Value};

use super::caps;
use super::landlock::{LandlockPolicy, PortAccess};
use super::seccomp::args::ArgClasses;
use super::seccomp::{SeccompError, SeccompProfile};
use crate::audit::Severity;
use crate::audit::gate::Level;

/// The builtin policies: name and TOML text.
const BUILTINS: &[(&str, &str)] = &[
    ("default", include_str!("../../policies/default.toml")),
    ("strict", include_str!("../../policies/strict.toml")),
    ("permissive", include_str!("../../policies/permissive.toml")),
];
const BUILTIN_NAMES: &[&str] = &["default", "strict", "permissive"];

/// More ports than this in one rule is almost surely a mistake ("1-65535" means `"any"`).
const MAX_PORTS: usize = 4096;

/// Everything `rsafe run` enforces besides the image and the command.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `default`, `strict`, … or the file's stem.
    pub name: String,
    /// One line saying what the policy is for.
    pub description: String,
    pub source: PolicySource,
    /// Kept in the bounding, permitted and effective sets; everything else is dropped.
    pub capabilities: Vec<Capability>,
    pub seccomp: SeccompProfile,
    /// `[seccomp] report_denials = true` (written into learned policies): a call the profile
    /// refuses by default is reported by name on stderr, not only as EPERM inside, so the
    /// user sees what a learned policy lacks. Off without the key.
    pub report_denials: bool,
    /// `[seccomp.args]` (written into learned policies): the socket families, ioctl requests
    /// and namespace flags allowed; `seccomp` is already narrowed to them. Empty without the
    /// table: the profile's rules as they are.
    pub seccomp_args: ArgClasses,
    pub landlock: LandlockPolicy,
    /// Paths in the container's /proc and /sys hidden behind an empty mount.
    pub masked_paths: Vec<String>,
    /// Paths in the container's /proc and /sys remounted read-only.
    pub readonly_paths: Vec<String>,
    pub limits: Limits,
    pub network: NetworkMode,
    /// The audit gate (`gate = "high"`): refuse an image with a finding at or above this
    /// severity before it starts. None (`"off"`, or no key) is no gate. `rsafe run --gate`
    /// overrides it.
    pub gate: Option<Severity>,
}

/// Resource limits; None is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<u64>,
    /// Processes and threads.
    pub pids: Option<u64>,
    /// CPUs' worth of time, e.g. 1.5.
    pub cpus: Option<f64>,
}

/// The container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NetworkMode {
    /// Its own network namespace with loopback only.
    None,
    /// The host's network namespace.
    Host,
    /// Its own network namespace with a user-mode network (slirp4netns): outbound TCP and
    /// UDP, DNS, and published ports; the host's loopback stays out of reach.
    Slirp4netns,
}

/// Where a policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    Builtin(&'static str),
    File(PathBuf),
}

/// Command-line changes to a policy: `--cap-add`, `--cap-drop`, `--seccomp`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Capability names (`NET_RAW`, `CAP_NET_RAW`) or `ALL`. Applied after the drops.
    pub cap_add: Vec<String>,
    /// Capability names or `ALL`.
    pub cap_drop: Vec<String>,
    /// `unconfined`, a builtin profile name, or a Docker-format JSON file.
    pub seccomp: Option<String>,
}

/// Why a policy could not be loaded or changed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("no policy named {name:?} and no such file (builtin policies: {})", BUILTIN_NAMES.join(", "))]
    Unknown { name: String },
    #[error("cannot read policy file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: TOML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        origin: PolicySource,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: {field}: {problem}")]
    Field {
        origin: PolicySource,
        field: String,
        problem: String,
    },
    #[error("{origin}: {source}")]
    Seccomp {
        origin: PolicySource,
        source: SeccompError,
    },
    #[error(
        "{flag} {name:?}: unknown capability (names look like NET_BIND_SERVICE or CAP_NET_BIND_SERVICE, or ALL)"
    )]
    Capability { flag: &'static str, name: String },
    #[error("--seccomp {name:?}: {source}")]
    SeccompOverride { name: String, source: SeccompError },
}

impl Policy {
    /// A builtin policy by name, or a policy file. A value containing `/` or ending in `.toml`
    /// is always a file.
    pub fn load(name_or_path: &str) -> Result<Policy, PolicyError> {
        let looks_like_path = name_or_path.contains('/') || name_or_path.ends_with(".toml");
        if !looks_like_path && let Some(policy) = Self::builtin(name_or_path) {
            return policy;
        }
        let path = Path::new(name_or_path);
        if !looks_like_path && !path.exists() {
            return Err(PolicyError::Unknown {
                name: name_or_path.to_string(),
            });
        }
        Self::from_file(path)
    }

    /// Reads a policy file; fields it leaves out come from the builtin `default` policy.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let text = bounded::read_text(path, bounded::CONFIG).map_err(|e| PolicyError::Read {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        let name = path
            .file_stem()
            .map_or_else(|| "policy".into(), |s| s.to_string_lossy().into_owned());
        let base = Self::default_policy();
        parse(
            &text,
            name,
            PolicySource::File(path.to_path_buf()),
            Some(&base),
        )
    }

    /// The names `--policy` accepts without a path.
    pub fn builtin_names() -> &'static [&'static str] {
        BUILTIN_NAMES
    }

    /// The builtin `default` policy: what `rsafe run` uses without `--policy`.
    pub fn default_policy() -> Policy {
        match Self::builtin("default") {
            Some(Ok(policy)) => policy,
            // The builtin files are parsed by a unit test; reaching this is a build defect.
            Some(Err(err)) => panic!("the builtin default policy is invalid: {err}"),
            None => panic!("the builtin default policy is missing"),
        }
    }

    fn builtin(name: &str) -> Option<Result<Policy, PolicyError>> {
        let (name, text) = BUILTINS.iter().find(|(n, _)| *n == name)?;
        Some(parse(
            text,
            name.to_string(),
            PolicySource::Builtin(name),
            None,
        ))
    }

    /// Applies `--cap-drop` (first; `ALL` empties the list), `--cap-add` (then; `ALL` keeps
    /// every capability) and `--seccomp`.
    pub fn apply_overrides(&mut self, overrides: &Overrides) -> Result<(), PolicyError> {
        for name in &overrides.cap_drop {
            if name.eq_ignore_ascii_case("ALL") {
                self.capabilities.clear();
            } else {
                let cap = parse_flag_capability("--cap-drop", name)?;
                self.capabilities.retain(|c| *c != cap);
            }
        }
        for name in &overrides.cap_add {
            if name.eq_ignore_ascii_case("ALL") {
                self.capabilities = ::caps::all().into_iter().collect();
            } else {
                let cap = parse_flag_capability("--cap-add", name)?;
                if !self.capabilities.contains(&cap) {
                    self.capabilities.push(cap);
                }
            }
        }
        self.capabilities.sort_by_key(|c| c.index());
        if let Some(name) = &overrides.seccomp {
            // The policy's argument classes narrow the replacing profile too.
            let err = |source| PolicyError::SeccompOverride {
                name: name.clone(),
                source,
            };
            self.seccomp = SeccompProfile::resolve(name)
                .and_then(|p| p.restricted(&self.seccomp_args))
                .map_err(err)?;
        }
        Ok(())
    }

    /// Things a person starting a container with this policy should be told on stderr.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.seccomp.is_unconfined() {
            warnings
                .push("seccomp is unconfined: the container may make every syscall".to_string());
        }
        const POWERFUL: &[Capability] = &[
            Capability::CAP_SYS_ADMIN,
            Capability::CAP_NET_ADMIN,
            Capability::CAP_SYS_PTRACE,
            Capability::CAP_SYS_MODULE,
            Capability::CAP_SYS_RAWIO,
            Capability::CAP_BPF,
            Capability::CAP_PERFMON,
            Capability::CAP_DAC_READ_SEARCH,
        ];
        let powerful: Vec<String> = self
            .capabilities
            .iter()
            .filter(|c| POWERFUL.contains(c))
            .map(|c| caps::short_name(*c))
            .collect();
        if !powerful.is_empty() {
            warnings.push(format!(
                "the container keeps {}: powerful inside its user namespace and a common first step of kernel exploits",
                powerful.join(", ")
            ));
        }
        if self.network == NetworkMode::Host {
            warnings
                .push("the container shares the host's network (network mode host)".to_string());
        }
        warnings
    }
}

fn parse_flag_capability(flag: &'static str, name: &str) -> Result<Capability, PolicyError> {
    caps::parse_name(name).ok_or_else(|| PolicyError::Capability {
        flag,
        name: name.to_string(),
    })
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicySource::Builtin(name) => write!(f, "builtin policy {name}"),
            PolicySource::File(path) => write!(f, "policy {}", path.display()),
        }
    }
}

impl NetworkMode {
    /// Whether the container gets a network namespace of its own (all but `host`).
    pub fn own_namespace(self) -> bool {
        self != NetworkMode::Host
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkMode::None => "none (own network namespace, loopback only)",
            NetworkMode::Host => "host (the host's network)",
            NetworkMode::Slirp4netns => {
                "slirp4netns (own network namespace, user-mode network, host loopback unreachable)"
            }
        })
    }
}

impl fmt::Display for Limits {
    /// `memory 1 GiB, pids 512, cpus 1` with `unlimited` where unset.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let memory = self
            .memory
            .map_or_else(|| "unlimited".to_string(), format_bytes);
        let pids = self
            .pids
            .map_or_else(|| "unlimited".to_string(), |p| p.to_string());
        let cpus = self
            .cpus
            .map_or_else(|| "unlimited".to_string(), |c| c.to_string());
        write!(f, "memory {memory}, pids {pids}, cpus {cpus}")
    }
}

/// `512 MiB`, `1 GiB`, `1000 bytes`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: &[(&str, u64)] = &[
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= *size && bytes.is_multiple_of(*size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

/// Parses `512MiB`, `512M`, `1g`, `100k`, `1048576`: binary units, as Docker reads them.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..digits].parse().ok()?;
    let unit = text[digits..].trim().to_ascii_lowercase();
    let factor: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

// ---- parsing -----------------------------------------------------------------------------

/// A field's dotted path and what is wrong with it.
type FieldError = (String, String);

fn parse(
    text: &str,
    name: String,
    source: PolicySource,
    base: Option<&Policy>,
) -> Result<Policy, PolicyError> {
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = e
            .span()
            .map_or((0, 0), |span| line_column(text, span.start));
        PolicyError::Syntax {
            origin: source.clone(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    let field_err = |(field, problem): FieldError| PolicyError::Field {
        origin: source.clone(),
        field,
        problem,
    };
    let doc = Doc { base };
    let read = doc.read(&table, &source).map_err(|e| match e {
        ReadError::Field(f) => field_err(f),
        ReadError::Seccomp(source_err) => PolicyError::Seccomp {
            origin: source.clone(),
            source: source_err,
        },
    })?;
    Ok(Policy {
        name,
        source,
        ..read
    })
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

enum ReadError {
    Field(FieldError),
    Seccomp(SeccompError),
}

impl From<FieldError> for ReadError {
    fn from(e: FieldError) -> Self {
        ReadError::Field(e)
    }
}

/// Reads a policy document; a missing field falls back to `base`, or is an error without one.
struct Doc<'a> {
    base: Option<&'a Policy>,
}

impl Doc<'_> {
    fn read(&self, root: &Table, source: &PolicySource) -> Result<Policy, ReadError> {
        let sections = [
            "capabilities",
            "seccomp",
            "landlock",
            "paths",
            "limits",
            "network",
        ];
        check_keys(
            root,
            "",
            &[&["description", "gate"], &sections[..]].concat(),
        )?;
        let empty = Table::new();
        let section = |key: &str| -> Result<&Table, FieldError> {
            match root.get(key) {
                None => Ok(&empty),
                Some(Value::Table(t)) => Ok(t),
                Some(other) => Err((
                    key.to_string(),
                    format!("expected a table, found {}", other.type_str()),
                )),
            }
        };
        let description = match opt_str(root, "description", "")? {
            Some(text) => text.to_string(),
            None => self.fallback("description", self.base.map(|b| b.description.clone()))?,
        };
        let seccomp_t = section("seccomp")?;
        check_keys(seccomp_t, "seccomp", &["profile", "report_denials", "args"])?;
        let seccomp = match opt_str(seccomp_t, "profile", "seccomp")? {
            Some(name) => resolve_seccomp(name, source)?,
            None => self.fallback("seccomp.profile", self.base.map(|b| b.seccomp.clone()))?,
        };
        let seccomp_args = match seccomp_t.get("args") {
            Some(t) => read_seccomp_args(t, &seccomp)?,
            None => self
                .base
                .map(|b| b.seccomp_args.clone())
                .unwrap_or_default(),
        };
        let seccomp = seccomp
            .restricted(&seccomp_args)
            .map_err(ReadError::Seccomp)?;
        // Optional even in builtin policies (none of them reports).
        let report_denials = opt_bool(seccomp_t, "report_denials", "seccomp")?
            .unwrap_or_else(|| self.base.is_some_and(|b| b.report_denials));
        let (masked_paths, readonly_paths) = self.paths(section("paths")?)?;
        Ok(Policy {
            name: String::new(),
            description,
            source: source.clone(),
            capabilities: self.capabilities(section("capabilities")?)?,
            seccomp,
            report_denials,
            seccomp_args,
            landlock: self.landlock(section("landlock")?)?,
            masked_paths,
            readonly_paths,
            limits: self.limits(section("limits")?)?,
            network: self.network(section("network")?)?,
            gate: read_gate(root, self.base)?,
        })
    }

    /// `[capabilities] keep = [...]`: names checked, duplicates dropped, in the kernel's order.
    fn capabilities(&self, t: &Table) -> Result<Vec<Capability>, FieldError> {
        check_keys(t, "capabilities", &["keep"])?;
        let Some(names) = opt_str_list(t, "keep", "capabilities")? else {
            return self.fallback(
                "capabilities.keep",
                self.base.map(|b| b.capabilities.clone()),
            );
        };
        let mut caps = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let cap = caps::parse_name(name).ok_or_else(|| {
                (
                    format!("capabilities.keep[{i}]"),
                    format!("unknown capability {name:?}"),
                )
            })?;
            if !caps.contains(&cap) {
                caps.push(cap);
            }
        }
        caps.sort_by_key(|c| c.index());
        Ok(caps)
    }

    /// `[landlock]`: paths, TCP ports and scopes; `grant_root` is optional even in builtin
    /// policies (every one of them grants the root).
    fn landlock(&self, ll: &Table) -> Result<LandlockPolicy, FieldError> {
        check_keys(
            ll,
            "landlock",
            &[
                "read_exec",
                "read_write",
                "list",
                "tcp_bind",
                "tcp_connect",
                "scope_abstract_unix_sockets",
                "scope_signals",
                "grant_root",
            ],
        )?;
        let bl = self.base.map(|b| &b.landlock);
        let paths = |key: &str, base: Option<&Vec<PathBuf>>| -> Result<Vec<PathBuf>, FieldError> {
            match opt_paths(ll, key, "landlock")? {
                Some(p) => Ok(p.into_iter().map(PathBuf::from).collect()),
                None => self.fallback(&format!("landlock.{key}"), base.cloned()),
            }
        };
        let ports = |key: &str, base: Option<&PortAccess>| -> Result<PortAccess, FieldError> {
            match opt_ports(ll, key)? {
                Some(p) => Ok(p),
                None => self.fallback(&format!("landlock.{key}"), base.cloned()),
            }
        };
        let flag = |key: &str, base: Option<bool>| -> Result<bool, FieldError> {
            match opt_bool(ll, key, "landlock")? {
                Some(b) => Ok(b),
                None => self.fallback(&format!("landlock.{key}"), base),
            }
        };
        Ok(LandlockPolicy {
            read_exec: paths("read_exec", bl.map(|b| &b.read_exec))?,
            read_write: paths("read_write", bl.map(|b| &b.read_write))?,
            list: list_rules(ll, bl)?,
            tcp_bind: ports("tcp_bind", bl.map(|b| &b.tcp_bind))?,
            tcp_connect: ports("tcp_connect", bl.map(|b| &b.tcp_connect))?,
            scope_abstract_unix_sockets: flag(
                "scope_abstract_unix_sockets",
                bl.map(|b| b.scope_abstract_unix_sockets),
            )?,
            scope_signals: flag("scope_signals", bl.map(|b| b.scope_signals))?,
            grant_root: match opt_bool(ll, "grant_root", "landlock")? {
                Some(b) => b,
                None => bl.is_none_or(|b| b.grant_root),
            },
        })
    }

    /// `[paths] masked`, `readonly`.
    fn paths(&self, t: &Table) -> Result<(Vec<String>, Vec<String>), FieldError> {
        check_keys(t, "paths", &["masked", "readonly"])?;
        let masked = match opt_paths(t, "masked", "paths")? {
            Some(p) => p,
            None => self.fallback("paths.masked", self.base.map(|b| b.masked_paths.clone()))?,
        };
        let readonly = match opt_paths(t, "readonly", "paths")? {
            Some(p) => p,
            None => self.fallback(
                "paths.readonly",
                self.base.map(|b| b.readonly_paths.clone()),
            )?,
        };
        Ok((masked, readonly))
    }

    /// `[limits] memory`, `pids`, `cpus`, each checked for its unit.
    fn limits(&self, t: &Table) -> Result<Limits, FieldError> {
        check_keys(t, "limits", &["memory", "pids", "cpus"])?;
        let bl = self.base.map(|b| b.limits).unwrap_or_default();
        Ok(Limits {
            memory: read_limit(
                t,
                "memory",
                bl.memory,
                |v| match v {
                    Value::Integer(n) if *n > 0 => Some(*n as u64),
                    Value::String(s) => parse_bytes(s).filter(|n| *n > 0),
                    _ => None,
                },
                "a size like \"512MiB\" or \"2G\"",
            )?,
            pids: read_limit(
                t,
                "pids",
                bl.pids,
                |v| match v {
                    Value::Integer(n) if *n > 0 => Some(*n as u64),
                    _ => None,
                },
                "a positive integer",
            )?,
            cpus: read_limit(
                t,
                "cpus",
                bl.cpus,
                |v| match v {
                    Value::Float(x) if *x > 0.0 && x.is_finite() => Some(*x),
                    Value::Integer(n) if *n > 0 => Some(*n as f64),
                    _ => None,
                },
                "a positive number like 1.5",
            )?,
        })
    }

    /// `[network] mode`.
    fn network(&self, t: &Table) -> Result<NetworkMode, FieldError> {
        check_keys(t, "network", &["mode"])?;
        match opt_str(t, "mode", "network")? {
            Some("none") => Ok(NetworkMode::None),
            Some("host") => Ok(NetworkMode::Host),
            Some("slirp4netns") => Ok(NetworkMode::Slirp4netns),
            Some(other) => Err((
                "network.mode".into(),
                format!("{other:?} is not a network mode (none, slirp4netns or host)"),
            )),
            None => self.fallback("network.mode", self.base.map(|b| b.network)),
        }
    }

    fn fallback<T>(&self, field: &str, value: Option<T>) -> Result<T, FieldError> {
        value.ok_or_else(|| {
            (
                field.to_string(),
                "missing (builtin policies must set every field)".into(),
            )
        })
    }
}

/// `[landlock] list`: directories that may only be listed. Optional even in builtin policies
/// (none of them has one) and in policies written before the key existed: the base policy's,
/// else none.
fn list_rules(ll: &Table, base: Option<&LandlockPolicy>) -> Result<Vec<PathBuf>, FieldError> {
    Ok(match opt_paths(ll, "list", "landlock")? {
        Some(p) => p.into_iter().map(PathBuf::from).collect(),
        None => base.map(|b| b.list.clone()).unwrap_or_default(),
    })
}

/// The top-level `gate` key: `"off"` or a severity name; without it, the base policy's (no gate
/// for the builtin ones, which need not say so).
fn read_gate(root: &Table, base: Option<&Policy>) -> Result<Option<Severity>, FieldError> {
    match opt_str(root, "gate", "")? {
        Some(text) => text.parse::<Level>().map(Level::threshold).map_err(|_| {
            (
                "gate".to_string(),
                format!("{text:?} is not a gate level (off, info, low, medium, high or critical)"),
            )
        }),
        None => Ok(base.and_then(|b| b.gate)),
    }
}

/// `[seccomp.args]`: each key a list of entries ([`ArgClasses::set`]); the profile must filter.
fn read_seccomp_args(value: &Value, profile: &SeccompProfile) -> Result<ArgClasses, FieldError> {
    let Value::Table(t) = value else {
        return Err((
            "seccomp.args".into(),
            format!("expected a table, found {}", value.type_str()),
        ));
    };
    if profile.is_unconfined() {
        return Err((
            "seccomp.args".into(),
            "needs a seccomp profile to narrow (this one is unconfined)".into(),
        ));
    }
    let mut classes = ArgClasses::default();
    for key in t.keys() {
        let values = opt_str_list(t, key, "seccomp.args")?.unwrap_or_default();
        classes.set(key, &values).map_err(|(i, problem)| {
            let field = join("seccomp.args", key);
            match i {
                Some(i) => (format!("{field}[{i}]"), problem),
                None => (field, problem),
            }
        })?;
    }
    Ok(classes)
}

/// A seccomp profile named in a policy: builtin names anywhere, files only from policy files
/// and relative to them.
fn resolve_seccomp(name: &str, source: &PolicySource) -> Result<SeccompProfile, ReadError> {
    let looks_like_path = name.contains('/') || name.ends_with(".json");
    if !looks_like_path {
        return SeccompProfile::builtin(name).ok_or_else(|| {
            ReadError::Field((
                "seccomp.profile".into(),
                format!("no builtin seccomp profile {name:?} (builtin: default, unconfined; or a .json file)"),
            ))
        });
    }
    match source {
        PolicySource::Builtin(_) => Err(ReadError::Field((
            "seccomp.profile".into(),
            "builtin policies may only name builtin profiles".into(),
        ))),
        PolicySource::File(policy_file) => {
            let dir = policy_file.parent().unwrap_or(Path::new("."));
            SeccompProfile::from_file(&dir.join(name)).map_err(ReadError::Seccomp)
        }
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn check_keys(table: &Table, at: &str, allowed: &[&str]) -> Result<(), FieldError> {
    match table.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err((
            join(at, key),
            format!("unknown field (expected one of: {})", allowed.join(", ")),
        )),
    }
}

fn opt_str<'t>(table: &'t Table, key: &str, at: &str) -> Result<Option<&'t str>, FieldError> {
    match table.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err((
            join(at, key),
            format!("expected a string, found {}", other.type_str()),
        )),
    }
}

fn opt_bool(table: &Table, key: &str, at: &str) -> Result<Option<bool>, FieldError> {
    match table.get(key) {
        None => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(*b)),
        Some(other) => Err((
            join(at, key),
            format!("expected true or false, found {}", other.type_str()),
        )),
    }
}

fn opt_str_list(table: &Table, key: &str, at: &str) -> Result<Option<Vec<String>>, FieldError> {
    let field = join(at, key);
    match table.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err((
                    format!("{field}[{i}]"),
                    format!("expected a string, found {}", other.type_str()),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err((
            field,
            format!("expected a list of strings, found {}", other.type_str()),
        )),
    }
}

/// A list of absolute container paths without `..`.
fn opt_paths(table: &Table, key: &str, at: &str) -> Result<Option<Vec<String>>, FieldError> {
    let Some(list) = opt_str_list(table, key, at)? else {
        return Ok(None);
    };
    for (i, path) in list.iter().enumerate() {
        let p = Path::new(path);
        if !p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
            return Err((
                format!("{}[{i}]", join(at, key)),
                format!("{path:?} is not an absolute container path without .."),
            ));
        }
    }
    Ok(Some(list))
}

/// `"any"`, or a list of ports and `"LOW-HIGH"` ranges.
fn opt_ports(table: &Table, key: &str) -> Result<Option<PortAccess>, FieldError> {
    let field = join("landlock", key);
    let items = match table.get(key) {
        None => return Ok(None),
        Some(Value::String(s)) if s == "any" => return Ok(Some(PortAccess::Any)),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err((
                field,
                format!(
                    "expected \"any\" or a list of ports, found {}",
                    other.type_str()
                ),
            ));
        }
    };
    let mut ports: Vec<u16> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let bad = |what: String| (format!("{field}[{i}]"), what);
        let (low, high) = match item {
            Value::Integer(n) => {
                let port =
                    u16::try_from(*n).map_err(|_| bad(format!("{n} is not a port (0..=65535)")))?;
                (port, port)
            }
            Value::String(s) => {
                let parse = |p: &str| p.trim().parse::<u16>().ok();
                match s.split_once('-').map(|(a, b)| (parse(a), parse(b))) {
                    Some((Some(a), Some(b))) if a <= b => (a, b),
                    _ => return Err(bad(format!("{s:?} is not a port range like \"8000-8100\""))),
                }
            }
            other => {
                return Err(bad(format!(
                    "expected a port or \"LOW-HIGH\", found {}",
                    other.type_str()
                )));
            }
        };
        ports.extend(low..=high);
        if ports.len() > MAX_PORTS {
            return Err(bad(format!(
                "more than {MAX_PORTS} ports; use \"any\" to leave TCP unrestricted"
            )));
        }
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(Some(PortAccess::Only(ports)))
}

/// A limit: absent → `base`, `"unlimited"` → None, otherwise `parse` must accept it.
fn read_limit<T: Copy>(
    table: &Table,
    key: &str,
    base: Option<T>,
    parse: impl Fn(&Value) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, FieldError> {
    match table.get(key) {
        None => Ok(base),
        Some(Value::String(s)) if s == "unlimited" => Ok(None),
        Some(value) => parse(value).map(Some).ok_or_else(|| {
            (
                join("limits", key),
                format!("expected {expected} or \"unlimited\", found {value}"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_text(text: &str) -> Result<Policy, PolicyError> {
        let base = Policy::default_policy();
        parse(
            text,
            "test".into(),
            PolicySource::File("/etc/rsafe/test.toml".into()),
            Some(&base),
        )
    }

    #[test]
    fn builtin_policies_parse_and_are_complete() {
        for name in Policy::builtin_names() {
            let policy = Policy::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&policy.name, name);
            assert!(!policy.description.is_empty());
            assert!(
                !policy.seccomp.is_unconfined(),
                "{name} must confine syscalls"
            );
            assert!(
                policy.masked_paths.iter().any(|p| p == "/proc/kcore"),
                "{name}"
            );
            assert!(
                policy.readonly_paths.iter().any(|p| p == "/proc/sys"),
                "{name}"
            );
        }
    }

    #[test]
    fn default_policy_is_short_and_loopback_only() {
        let p = Policy::default_policy();
        let names: Vec<String> = p
            .capabilities
            .iter()
            .map(|c| caps::short_name(*c))
            .collect();
        assert_eq!(
            names,
            [
                "CHOWN",
                "DAC_OVERRIDE",
                "FOWNER",
                "FSETID",
                "KILL",
                "SETGID",
                "SETUID",
                "NET_BIND_SERVICE"
            ]
        );
        assert_eq!(p.network, NetworkMode::None);
        assert_eq!(p.limits.pids, Some(4096));
        assert_eq!(p.limits.memory, None);
        assert!(p.landlock.read_write.contains(&PathBuf::from("/dev/null")));
        for masked in [
            "/proc/kcore",
            "/proc/keys",
            "/proc/timer_list",
            "/proc/sched_debug",
            "/proc/acpi",
            "/proc/scsi",
            "/proc/sysrq-trigger",
            "/proc/config.gz",
            "/proc/kallsyms",
            "/sys/firmware",
        ] {
            assert!(p.masked_paths.iter().any(|m| m == masked), "{masked}");
        }
        for ro in ["/proc/sys", "/proc/irq", "/proc/bus", "/proc/fs"] {
            assert!(p.readonly_paths.iter().any(|m| m == ro), "{ro}");
        }
        assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    }

    #[test]
    fn strict_policy_has_no_capabilities_and_no_tcp() {
        let p = Policy::load("strict").unwrap();
        assert!(p.capabilities.is_empty());
        assert_eq!(p.landlock.tcp_bind, PortAccess::Only(vec![]));
        assert_eq!(p.landlock.tcp_connect, PortAccess::Only(vec![]));
        assert_eq!(
            p.limits,
            Limits {
                memory: Some(1 << 30),
                pids: Some(512),
                cpus: Some(1.0)
            }
        );
    }

    #[test]
    fn the_gate_key_sets_the_audit_gate() {
        for name in Policy::builtin_names() {
            assert_eq!(Policy::load(name).unwrap().gate, None, "{name}: no gate");
        }
        assert_eq!(
            from_text("gate = \"high\"\n").unwrap().gate,
            Some(Severity::High)
        );
        assert_eq!(
            from_text("gate = \"Critical\"\n[limits]\npids = 10\n")
                .unwrap()
                .gate,
            Some(Severity::Critical)
        );
        assert_eq!(from_text("gate = \"off\"\n").unwrap().gate, None);
        assert_eq!(from_text("description = \"x\"\n").unwrap().gate, None);
        let err = from_text("gate = \"severe\"\n").unwrap_err().to_string();
        assert!(
            err.ends_with(
                "gate: \"severe\" is not a gate level (off, info, low, medium, high or critical)"
            ),
            "{err}"
        );
        let err = from_text("gate = 3\n").unwrap_err().to_string();
        assert!(
            err.ends_with("gate: expected a string, found integer"),
            "{err}"
        );
        let err = from_text("[network]\ngate = \"high\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("network.gate"), "{err}");
    }

    #[test]
    fn a_file_may_give_only_some_fields() {
        let p = from_text(
            "[capabilities]\nkeep = [\"cap_net_raw\", \"CHOWN\"]\n[limits]\nmemory = \"512M\"\n",
        )
        .unwrap();
        assert_eq!(
            p.capabilities,
            [Capability::CAP_CHOWN, Capability::CAP_NET_RAW]
        );
        assert_eq!(p.limits.memory, Some(512 << 20));
        assert_eq!(p.limits.pids, Some(4096), "from the default policy");
        assert_eq!(p.name, "test");
        let d = Policy::default_policy();
        assert_eq!(
            (p.seccomp, p.landlock, p.network),
            (d.seccomp, d.landlock, d.network)
        );
    }

    #[test]
    fn grant_root_is_on_unless_a_policy_turns_it_off() {
        for name in Policy::builtin_names() {
            assert!(Policy::load(name).unwrap().landlock.grant_root, "{name}");
        }
        assert!(from_text("").unwrap().landlock.grant_root);
        let learned = from_text("[landlock]\ngrant_root = false\n").unwrap();
        assert!(!learned.landlock.grant_root);
        let e = from_text("[landlock]\ngrant_root = \"no\"\n").unwrap_err();
        assert!(e.to_string().contains("landlock.grant_root"), "{e}");
        // A saved spec from before the field existed still loads, granting the root.
        let mut json = serde_json::to_value(&learned.landlock).unwrap();
        json.as_object_mut().unwrap().remove("grant_root");
        let old: LandlockPolicy = serde_json::from_value(json).unwrap();
        assert!(old.grant_root);
    }

    #[test]
    fn list_rules_are_optional_and_checked_like_other_paths() {
        for name in Policy::builtin_names() {
            assert!(
                Policy::load(name).unwrap().landlock.list.is_empty(),
                "{name}"
            );
        }
        // Policies from before the key (learned or not) have none.
        let older = from_text(
            "[landlock]
grant_root = false
read_exec = [\"/usr\"]
",
        )
        .unwrap();
        assert!(older.landlock.list.is_empty());
        let p = from_text(
            "[landlock]
list = [\"/\", \"/srv/www\"]
",
        )
        .unwrap();
        assert_eq!(
            p.landlock.list,
            [PathBuf::from("/"), PathBuf::from("/srv/www")]
        );
        let e = from_text(
            "[landlock]
list = [\"srv\"]
",
        )
        .unwrap_err();
        assert!(e.to_string().contains("landlock.list[0]"), "{e}");
        // A saved spec from before the field existed still loads, listing nothing.
        let mut json = serde_json::to_value(&p.landlock).unwrap();
        json.as_object_mut().unwrap().remove("list");
        let old: LandlockPolicy = serde_json::from_value(json).unwrap();
        assert!(old.list.is_empty());
    }

    #[test]
    fn report_denials_is_off_unless_a_policy_turns_it_on() {
        for name in Policy::builtin_names() {
            assert!(!Policy::load(name).unwrap().report_denials, "{name}");
        }
        assert!(!from_text("").unwrap().report_denials);
        assert!(
            from_text(
                "[seccomp]
report_denials = true
"
            )
            .unwrap()
            .report_denials
        );
        let e = from_text(
            "[seccomp]
report_denials = 1
",
        )
        .unwrap_err();
        assert!(e.to_string().contains("seccomp.report_denials"), "{e}");
        // A saved spec from before the field existed still loads, not reporting.
        let c = crate::runtime::spec::Confinement::from_policy(&Policy::default_policy(), false);
        let mut json = serde_json::to_value(&c).unwrap();
        json.as_object_mut().unwrap().remove("report_denials");
        let old: crate::runtime::spec::Confinement = serde_json::from_value(json).unwrap();
        assert!(!old.report_denials);
    }

    #[test]
    fn seccomp_args_narrow_the_profile_and_name_their_errors() {
        for name in Policy::builtin_names() {
            assert!(
                Policy::load(name).unwrap().seccomp_args.is_empty(),
                "{name}"
            );
        }
        let p = from_text(
            "[seccomp.args]\nsocket = [\"AF_UNIX/SOCK_STREAM\"]\nioctl = [\"TCGETS\", \"0x5413\"]\nclone_namespaces = []\n",
        )
        .unwrap();
        assert_eq!(
            crate::runtime::seccomp::args::summary(&p.seccomp_args).as_deref(),
            Some("socket AF_UNIX/SOCK_STREAM; ioctl TCGETS, TIOCGWINSZ; clone_namespaces none")
        );
        // The profile itself is narrowed: one socket rule left of the default's, ioctl only
        // for its two requests, clone3 ENOSYS whatever the capabilities.
        let rules = &p.seccomp.profile().unwrap().syscalls;
        let of = |name: &str| -> Vec<&crate::runtime::seccomp::Rule> {
            rules
                .iter()
                .filter(|r| r.names.iter().any(|n| n == name))
                .collect()
        };
        let sockets: Vec<_> = of("socket")
            .into_iter()
            .filter(|r| r.includes.caps.is_empty())
            .collect();
        assert_eq!(sockets.len(), 1, "{sockets:?}");
        assert_eq!(
            of("ioctl").len(),
            2 + 2,
            "two requests and the two carve-outs"
        );
        assert!(
            of("clone3")
                .iter()
                .all(|r| r.action == crate::runtime::seccomp::Action::Errno(libc::ENOSYS as u16))
        );
        // Without the table nothing changes.
        let d = Policy::default_policy();
        assert_eq!(from_text("[seccomp]\n").unwrap().seccomp, d.seccomp);
        let cases = [
            (
                "[seccomp.args]\nsocket = [\"AF_UNIX\", \"AF_FOO\"]\n",
                "seccomp.args.socket[1]",
                "not an address family",
            ),
            (
                "[seccomp.args]\nioctl = \"TCGETS\"\n",
                "seccomp.args.ioctl",
                "expected a list",
            ),
            (
                "[seccomp.args]\nbind = []\n",
                "seccomp.args.bind",
                "unknown field",
            ),
            (
                "[seccomp]\nprofile = \"unconfined\"\n[seccomp.args]\nioctl = []\n",
                "seccomp.args",
                "unconfined",
            ),
        ];
        for (text, field, problem) in cases {
            let err = from_text(text).unwrap_err().to_string();
            assert!(err.contains("/etc/rsafe/test.toml"), "{err}");
            assert!(err.contains(field), "{err} should name {field}");
            assert!(err.contains(problem), "{err} should say {problem}");
        }
    }

    #[test]
    fn ports_and_limits_parse() {
        let p = from_text(
            "[landlock]\ntcp_bind = [80, \"8000-8002\", 80]\ntcp_connect = \"any\"\n[limits]\npids = \"unlimited\"\ncpus = 2\n",
        )
        .unwrap();
        assert_eq!(
            p.landlock.tcp_bind,
            PortAccess::Only(vec![80, 8000, 8001, 8002])
        );
        assert_eq!(p.landlock.tcp_connect, PortAccess::Any);
        assert_eq!(p.limits.pids, None);
        assert_eq!(p.limits.cpus, Some(2.0));
    }

    #[test]
    fn field_errors_name_the_file_and_the_field() {
        let cases = [
            (
                "[capabilities]\nkeep = [\"CHOWN\", \"NET_BIND\"]\n",
                "capabilities.keep[1]",
                "unknown capability",
            ),
            (
                "[capabilities]\nkeep = \"CHOWN\"\n",
                "capabilities.keep",
                "expected a list",
            ),
            (
                "[capabilities]\nkepp = []\n",
                "capabilities.kepp",
                "unknown field",
            ),
            (
                "[network]\nmode = \"bridge\"\n",
                "network.mode",
                "not a network mode",
            ),
            (
                "[landlock]\ntcp_bind = [70000]\n",
                "landlock.tcp_bind[0]",
                "not a port",
            ),
            (
                "[landlock]\ntcp_bind = [\"1-65535\"]\n",
                "landlock.tcp_bind[0]",
                "more than 4096",
            ),
            (
                "[landlock]\ntcp_connect = \"all\"\n",
                "landlock.tcp_connect",
                "expected \"any\"",
            ),
            (
                "[landlock]\nread_write = [\"tmp\"]\n",
                "landlock.read_write[0]",
                "absolute",
            ),
            (
                "[paths]\nmasked = [\"/proc/../etc\"]\n",
                "paths.masked[0]",
                "absolute",
            ),
            (
                "[limits]\nmemory = \"lots\"\n",
                "limits.memory",
                "expected a size",
            ),
            ("[limits]\npids = 0\n", "limits.pids", "positive"),
            (
                "[landlock]\nscope_signals = \"yes\"\n",
                "landlock.scope_signals",
                "true or false",
            ),
            (
                "[seccomp]\nprofile = \"nope\"\n",
                "seccomp.profile",
                "no builtin seccomp profile",
            ),
            ("landlock = 1\n", "landlock", "expected a table"),
            ("colour = \"blue\"\n", "colour", "unknown field"),
        ];
        for (text, field, problem) in cases {
            let err = from_text(text).unwrap_err().to_string();
            assert!(err.contains("/etc/rsafe/test.toml"), "{err}");
            assert!(err.contains(field), "{err} should name {field}");
            assert!(err.contains(problem), "{err} should say {problem}");
        }
    }

    #[test]
    fn syntax_errors_give_the_line_on_one_line() {
        let err = from_text("[capabilities]\nkeep = [\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/etc/rsafe/test.toml") && err.contains("line"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn seccomp_files_are_relative_to_the_policy_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.json"),
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let policy_file = dir.path().join("p.toml");
        std::fs::write(&policy_file, "[seccomp]\nprofile = \"mine.json\"\n").unwrap();
        let p = Policy::load(policy_file.to_str().unwrap()).unwrap();
        assert_eq!(p.name, "p");
        assert!(p.seccomp.origin().ends_with("mine.json"));

        std::fs::write(&policy_file, "[seccomp]\nprofile = \"missing.json\"\n").unwrap();
        let err = Policy::load(policy_file.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("p.toml") && err.contains("missing.json"),
            "{err}"
        );
    }

    #[test]
    fn unknown_names_and_missing_files_are_errors() {
        let err = Policy::load("laxx").unwrap_err().to_string();
        assert!(
            err.contains("laxx") && err.contains("default, strict, permissive"),
            "{err}"
        );
        let err = Policy::load("/nonexistent/p.toml").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/p.toml"), "{err}");
    }

    #[test]
    fn overrides_drop_then_add() {
        let mut p = Policy::default_policy();
        let o = Overrides {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["NET_BIND_SERVICE".into(), "CAP_CHOWN".into()],
            seccomp: Some("unconfined".into()),
        };
        p.apply_overrides(&o).unwrap();
        assert_eq!(
            p.capabilities,
            [Capability::CAP_CHOWN, Capability::CAP_NET_BIND_SERVICE]
        );
        assert!(p.seccomp.is_unconfined());
        assert!(p.warnings().iter().any(|w| w.contains("unconfined")));

        let mut p = Policy::default_policy();
        p.apply_overrides(&Overrides {
            cap_drop: vec!["chown".into()],
            cap_add: vec!["SYS_ADMIN".into()],
            seccomp: None,
        })
        .unwrap();
        assert!(!p.capabilities.contains(&Capability::CAP_CHOWN));
        assert!(p.warnings().iter().any(|w| w.contains("SYS_ADMIN")));

        let mut p = Policy::default_policy();
        let err = p
            .apply_overrides(&Overrides {
                cap_add: vec!["NET_BIND".into()],
                ..Overrides::default()
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--cap-add") && err.contains("NET_BIND"),
            "{err}"
        );
        let err = p
            .apply_overrides(&Overrides {
                seccomp: Some("/nonexistent.json".into()),
                ..Overrides::default()
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--seccomp") && err.contains("/nonexistent.json"),
            "{err}"
        );
    }

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("2g"), Some(2 << 30));
        assert_eq!(parse_bytes("100k"), Some(100 << 10));
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("1.5G"), None);
        assert_eq!(parse_bytes("99999999999999T"), None);
        assert_eq!(format_bytes(1 << 30), "1 GiB");
        assert_eq!(format_bytes(1000), "1000 bytes");
    }
}
