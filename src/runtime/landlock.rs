//! Landlock: an allowlist of what the container may touch, enforced by the kernel on top of
//! the mount layout, and kept even if the workload finds its way around a mount.
//!
//! Applied in the container after pivot_root, so every path here is a container path:
//! - **filesystem** — read and execute below the runner's `read_exec` paths (the image), and
//!   everything below `read_write` (upper dir, tmpfs, writable volumes, the device nodes the
//!   policy lists). Everything else is refused with EACCES.
//! - **TCP** (ABI ≥ 4) — bind and connect only to the policy's ports, unless it says `any`.
//! - **scopes** (ABI ≥ 6) — no connecting to abstract UNIX sockets and no signals to processes
//!   outside the container's landlock domain.
//!
//! Best effort up to the kernel's ABI: whatever the kernel cannot enforce is reported in the
//! [`LandlockStatus`] the run prints; with `require` (`--require-landlock`) anything short of
//! full enforcement is an error instead, raised before the ruleset is applied.

use std::fmt;
use std::path::{Path, PathBuf};

use ::landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope,
};

/// The newest landlock ABI rsafe has been written and tested against (Linux 6.15). A newer
/// kernel is used at this level; an older one at its own.
pub const TESTED_ABI: u32 = 7;
const TESTED: ABI = ABI::V7;

/// What a policy asks of landlock, beyond the paths the runner grants.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LandlockPolicy {
    /// Extra container paths to read and execute below.
    pub read_exec: Vec<PathBuf>,
    /// Extra container paths to write below (device nodes such as `/dev/null`, `/dev/pts`).
    pub read_write: Vec<PathBuf>,
    /// Directories whose entries may be listed (and every directory below them), but whose
    /// files may not be read or executed: landlock's READ_DIR alone. A learned policy gets
    /// one where the workload only listed a directory (Python lists its working directory at
    /// start-up), where a read rule would have granted every file below it.
    #[serde(default)]
    pub list: Vec<PathBuf>,
    /// TCP ports the container may bind.
    pub tcp_bind: PortAccess,
    /// TCP ports the container may connect to.
    pub tcp_connect: PortAccess,
    /// Refuse connecting to abstract UNIX sockets made outside the container (X11, D-Bus, …
    /// on a host network).
    pub scope_abstract_unix_sockets: bool,
    /// Refuse signals to processes outside the container.
    pub scope_signals: bool,
    /// Whether the runner grants the whole root (the image read+execute, a writable root
    /// read-write). False for learned policies (`rsafe run --learn`): only the paths above, and
    /// the `--tmpfs`/read-write volumes given on the command line, are reachable.
    #[serde(default = "grant_root_default")]
    pub grant_root: bool,
}

/// Policies and saved specs from before `grant_root` existed granted the root.
fn grant_root_default() -> bool {
    true
}

/// Which TCP ports are allowed for bind or connect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PortAccess {
    /// Not restricted by landlock.
    Any,
    /// Only these ports (empty: none at all).
    Only(Vec<u16>),
}

/// The filesystem the runner grants: the image read-only, the writable places read-write.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FsAccess {
    pub read_exec: Vec<PathBuf>,
    pub read_write: Vec<PathBuf>,
}

/// How far one landlock feature is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    Full,
    /// Enforced, but the kernel's ABI leaves out what the text says.
    Partial(&'static str),
    /// The kernel's landlock is too old for it.
    Unsupported {
        needs_abi: u32,
    },
    /// The policy does not ask for it.
    NotRequested,
}

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Full,
    Partial,
    None,
}

/// What landlock enforces (or would enforce) on this kernel, printed by the run and by
/// `rsafe policy show`.
#[derive(Debug, Clone, PartialEq)]
pub struct LandlockStatus {
    /// The kernel's landlock ABI; None when landlock is not built in or not enabled.
    pub kernel_abi: Option<u32>,
    pub fs: Enforcement,
    /// TCP bind/connect rules.
    pub net: Enforcement,
    /// Abstract UNIX socket and signal scoping.
    pub scopes: Enforcement,
    pub level: Level,
    /// Rule paths that do not exist in the container (nothing to grant there).
    pub skipped_paths: Vec<PathBuf>,
}

/// Why landlock could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error("landlock is not fully enforced and --require-landlock was given: {status}")]
    NotFullyEnforced { status: Box<LandlockStatus> },
    #[error("cannot open {} for a landlock rule: {source}", path.display())]
    Path {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("landlock {what}: {source}")]
    Ruleset {
        what: &'static str,
        source: ::landlock::RulesetError,
    },
}

impl Default for LandlockPolicy {
    /// Filesystem rules only from the runner, TCP unrestricted, both scopes on.
    fn default() -> Self {
        LandlockPolicy {
            read_exec: Vec::new(),
            read_write: Vec::new(),
            list: Vec::new(),
            tcp_bind: PortAccess::Any,
            tcp_connect: PortAccess::Any,
            scope_abstract_unix_sockets: true,
            scope_signals: true,
            grant_root: true,
        }
    }
}

impl LandlockPolicy {
    fn restricts_net(&self) -> bool {
        self.tcp_bind != PortAccess::Any || self.tcp_connect != PortAccess::Any
    }

    fn wants_scopes(&self) -> bool {
        self.scope_abstract_unix_sockets || self.scope_signals
    }
}

/// The running kernel's landlock ABI version, or None without landlock.
pub fn kernel_abi() -> Option<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer and size 0, this flag only returns the ABI version.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (v > 0).then_some(v as u32)
}

impl LandlockStatus {
    /// What `policy` would get on a kernel with landlock ABI `kernel_abi` (None: no landlock).
    pub fn predict(policy: &LandlockPolicy, kernel_abi: Option<u32>) -> LandlockStatus {
        let abi = kernel_abi.unwrap_or(0).min(TESTED_ABI);
        let fs = match abi {
            0 => Enforcement::Unsupported { needs_abi: 1 },
            1 => Enforcement::Partial(
                "truncation and device ioctls are not restricted (ABI 3, 5); renames and links across directories are always refused (ABI 2)",
            ),
            2 => Enforcement::Partial("truncation and device ioctls are not restricted (ABI 3, 5)"),
            3 | 4 => Enforcement::Partial("device ioctls are not restricted (ABI 5)"),
            _ => Enforcement::Full,
        };
        let needs = |wanted: bool, min: u32| match (wanted, abi >= min) {
            (false, _) => Enforcement::NotRequested,
            (true, true) => Enforcement::Full,
            (true, false) => Enforcement::Unsupported { needs_abi: min },
        };
        let net = needs(policy.restricts_net(), 4);
        let scopes = needs(policy.wants_scopes(), 6);
        let parts = [fs, net, scopes];
        let requested = parts.iter().filter(|e| **e != Enforcement::NotRequested);
        let level = if requested.clone().all(|e| *e == Enforcement::Full) {
            Level::Full
        } else if requested
            .into_iter()
            .any(|e| matches!(e, Enforcement::Full | Enforcement::Partial(_)))
        {
            Level::Partial
        } else {
            Level::None
        };
        LandlockStatus {
            kernel_abi,
            fs,
            net,
            scopes,
            level,
            skipped_paths: Vec::new(),
        }
    }
}

/// Restricts the calling thread (and everything it executes) to `fs` plus `policy`; sets
/// no_new_privs. Call after pivot_root and the capability drop, before seccomp.
pub fn apply(
    fs: &FsAccess,
    policy: &LandlockPolicy,
    require: bool,
) -> Result<LandlockStatus, LandlockError> {
    let mut status = LandlockStatus::predict(policy, kernel_abi());
    if require && status.level != Level::Full {
        return Err(LandlockError::NotFullyEnforced {
            status: Box::new(status),
        });
    }
    if status.kernel_abi.is_none() {
        return Ok(status);
    }
    let err = |what| move |source| LandlockError::Ruleset { what, source };
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(TESTED))
        .map_err(err("cannot handle filesystem access"))?;
    let mut net = BitFlags::<AccessNet>::EMPTY;
    if policy.tcp_bind != PortAccess::Any {
        net |= AccessNet::BindTcp;
    }
    if policy.tcp_connect != PortAccess::Any {
        net |= AccessNet::ConnectTcp;
    }
    if !net.is_empty() {
        ruleset = ruleset
            .handle_access(net)
            .map_err(err("cannot handle TCP access"))?;
    }
    let mut scopes = BitFlags::<Scope>::EMPTY;
    if policy.scope_abstract_unix_sockets {
        scopes |= Scope::AbstractUnixSocket;
    }
    if policy.scope_signals {
        scopes |= Scope::Signal;
    }
    if !scopes.is_empty() {
        ruleset = ruleset.scope(scopes).map_err(err("cannot scope"))?;
    }
    let mut created = ruleset.create().map_err(err("cannot create the ruleset"))?;
    created = add_path_rules(created, fs, policy, &mut status)?;
    for (ports, access) in [
        (&policy.tcp_bind, AccessNet::BindTcp),
        (&policy.tcp_connect, AccessNet::ConnectTcp),
    ] {
        if let PortAccess::Only(ports) = ports {
            for &port in ports {
                created = created
                    .add_rule(NetPort::new(port, access))
                    .map_err(err("cannot add a port rule"))?;
            }
        }
    }
    let outcome = created
        .restrict_self()
        .map_err(err("cannot restrict the process"))?;
    match outcome.ruleset {
        RulesetStatus::FullyEnforced => {}
        RulesetStatus::PartiallyEnforced if status.level == Level::Full => {
            status.level = Level::Partial
        }
        RulesetStatus::PartiallyEnforced => {}
        RulesetStatus::NotEnforced => status.level = Level::None,
    }
    if require && status.level != Level::Full {
        return Err(LandlockError::NotFullyEnforced {
            status: Box::new(status),
        });
    }
    Ok(status)
}

/// The access one kind of path rule grants: read+execute, everything, or listing only (also
/// what the denial supervisor checks paths against: [`crate::runtime::learn::paths`]).
pub(crate) fn path_rules<'a>(
    fs: &'a FsAccess,
    policy: &'a LandlockPolicy,
) -> impl Iterator<Item = (&'a PathBuf, BitFlags<AccessFs>)> {
    let read_exec = fs.read_exec.iter().chain(&policy.read_exec);
    let read_write = fs.read_write.iter().chain(&policy.read_write);
    read_exec
        .map(|p| (p, AccessFs::from_read(TESTED)))
        .chain(read_write.map(|p| (p, AccessFs::from_all(TESTED))))
        .chain(policy.list.iter().map(|p| (p, AccessFs::ReadDir.into())))
}

/// Adds the filesystem rules of `fs` and `policy`; a path absent from the container is noted
/// in `status` and skipped.
fn add_path_rules(
    mut created: RulesetCreated,
    fs: &FsAccess,
    policy: &LandlockPolicy,
    status: &mut LandlockStatus,
) -> Result<RulesetCreated, LandlockError> {
    for (path, access) in path_rules(fs, policy) {
        let Some((fd, is_dir)) = open_rule_path(path)? else {
            status.skipped_paths.push(path.clone());
            continue;
        };
        // Directory-only rights (listing, creating, removing) make no sense on a file and the
        // kernel refuses them there; a list rule on a file grants nothing at all.
        let access = if is_dir {
            access
        } else {
            access & AccessFs::from_file(TESTED)
        };
        if access.is_empty() {
            status.skipped_paths.push(path.clone());
            continue;
        }
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|source| LandlockError::Ruleset {
                what: "cannot add a path rule",
                source,
            })?;
    }
    Ok(created)
}

/// Opens a rule path; None when it does not exist in the container.
fn open_rule_path(path: &Path) -> Result<Option<(PathFd, bool)>, LandlockError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LandlockError::Path {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let fd = PathFd::new(path).map_err(|e| LandlockError::Path {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(Some((fd, meta.is_dir())))
}

impl fmt::Display for PortAccess {
    /// `any`, `none`, or ports with runs folded: `80, 443, 8000-8010`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports = match self {
            PortAccess::Any => return f.write_str("any"),
            PortAccess::Only(ports) if ports.is_empty() => return f.write_str("none"),
            PortAccess::Only(ports) => ports,
        };
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let mut parts = Vec::new();
        let mut i = 0;
        while i < sorted.len() {
            let start = sorted[i];
            let mut end = start;
            while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
                i += 1;
                end = sorted[i];
            }
            parts.push(if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            });
            i += 1;
        }
        f.write_str(&parts.join(", "))
    }
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Enforcement::Full => f.write_str("enforced"),
            Enforcement::Partial(what) => write!(f, "partly enforced: {what}"),
            Enforcement::Unsupported { needs_abi } => {
                write!(f, "NOT enforced (needs ABI {needs_abi})")
            }
            Enforcement::NotRequested => f.write_str("not requested"),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Full => "fully enforced",
            Level::Partial => "PARTIALLY enforced",
            Level::None => "NOT enforced",
        })
    }
}

impl fmt::Display for LandlockStatus {
    /// One line: `landlock ABI 7: fully enforced (filesystem enforced; TCP enforced; scopes enforced)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kernel_abi {
            None => write!(
                f,
                "landlock unavailable (not built into this kernel or not enabled at boot: add `landlock` to the lsm= kernel parameter): {}",
                self.level
            )?,
            Some(abi) if abi > TESTED_ABI => write!(
                f,
                "landlock ABI {abi} (used at ABI {TESTED_ABI}): {}",
                self.level
            )?,
            Some(abi) => write!(f, "landlock ABI {abi}: {}", self.level)?,
        }
        write!(
            f,
            " (filesystem {}; TCP bind/connect {}; scopes {})",
            self.fs, self.net, self.scopes
        )?;
        if !self.skipped_paths.is_empty() {
            let paths: Vec<String> = self
                .skipped_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            write!(f, "; absent, no rule: {}", paths.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restrictive() -> LandlockPolicy {
        LandlockPolicy {
            tcp_bind: PortAccess::Only(vec![8080]),
            tcp_connect: PortAccess::Only(vec![]),
            ..LandlockPolicy::default()
        }
    }

    #[test]
    fn prediction_follows_the_kernel_abi() {
        let p = restrictive();
        let full = LandlockStatus::predict(&p, Some(7));
        assert_eq!(
            (full.fs, full.net, full.scopes, full.level),
            (
                Enforcement::Full,
                Enforcement::Full,
                Enforcement::Full,
                Level::Full
            )
        );
        let newer = LandlockStatus::predict(&p, Some(9));
        assert_eq!(newer.level, Level::Full);
        assert!(
            newer.to_string().contains("ABI 9 (used at ABI 7)"),
            "{newer}"
        );

        let v5 = LandlockStatus::predict(&p, Some(5));
        assert_eq!(v5.scopes, Enforcement::Unsupported { needs_abi: 6 });
        assert_eq!(v5.level, Level::Partial);
        let v3 = LandlockStatus::predict(&p, Some(3));
        assert!(matches!(v3.fs, Enforcement::Partial(_)));
        assert_eq!(v3.net, Enforcement::Unsupported { needs_abi: 4 });

        let none = LandlockStatus::predict(&p, None);
        assert_eq!(none.level, Level::None);
        assert!(none.to_string().contains("landlock unavailable"), "{none}");
        assert!(none.to_string().contains("NOT enforced"), "{none}");
    }

    #[test]
    fn features_not_asked_for_do_not_make_it_partial() {
        let p = LandlockPolicy {
            scope_abstract_unix_sockets: false,
            scope_signals: false,
            ..LandlockPolicy::default()
        };
        let s = LandlockStatus::predict(&p, Some(5));
        assert_eq!(
            (s.net, s.scopes, s.level),
            (
                Enforcement::NotRequested,
                Enforcement::NotRequested,
                Level::Full
            )
        );
    }

    #[test]
    fn port_lists_print_folded() {
        assert_eq!(PortAccess::Any.to_string(), "any");
        assert_eq!(PortAccess::Only(vec![]).to_string(), "none");
        assert_eq!(
            PortAccess::Only(vec![8001, 80, 8000, 443, 8002, 80]).to_string(),
            "80, 443, 8000-8002"
        );
    }

    #[test]
    fn this_kernel_reports_an_abi() {
        // The development and CI machines run landlock ABI 7; elsewhere this only checks the call.
        if let Some(abi) = kernel_abi() {
            assert!(abi >= 1);
        }
    }
}
