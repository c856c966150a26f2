//! `rsafe audit` for Compose files (the Compose Specification, including the 2.x and 3.x file
//! formats): what each service is allowed to do to the host.
//!
//! A compose file is where "run it as a container" quietly turns into "run it as root on the
//! host": `privileged`, added capabilities, disabled seccomp/AppArmor, host namespaces, the
//! Docker socket or `/` mounted into the container. It is also where passwords get written in
//! plain text (`MYSQL_ROOT_PASSWORD: somewordpress`), and where the memory and process limits
//! that stop one container from taking the host down are usually missing.
//!
//! Findings carry the line of the key that causes them, also when it comes from an anchor
//! merged with `<<: *default` (see [`yaml`]).
#![forbid(unsafe_code)]

pub mod env;
pub mod yaml;

use crate::bounded;
use std::path::{Path, PathBuf};

use crate::audit::dockerfile::names::{is_literal_secret_value, is_secret_name};
use crate::audit::dockerfile::{dedupe, finding, merge_secret_hits, scan_text_at};
use crate::audit::secrets::SecretScanner;
use crate::audit::{Evidence, Finding, Location, Rule, Severity};

use env::{Interpolated, interpolate, interpolate_with, parse_env_file};
use yaml::Node;

/// Why a compose file could not be audited.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot read {}: {source}", shown(path))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: invalid YAML: {message}", path.display())]
    Yaml {
        path: PathBuf,
        line: u32,
        column: u32,
        message: String,
    },
    #[error("{}:{line}: not a compose file: {message}", path.display())]
    NotCompose {
        path: PathBuf,
        line: u32,
        message: String,
    },
}

/// A path as an error shows it: the compose file names it (`include:`, `env_file:`), so it is
/// the author's text: control characters escaped, and cut past what a real path can be.
fn shown(path: &Path) -> String {
    const MAX: usize = 512;
    let escaped: String = path
        .display()
        .to_string()
        .chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect();
    match escaped.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped,
    }
}

pub const PRIVILEGED: Rule = Rule {
    id: "compose.privileged",
    severity: Severity::Critical,
    title: "Privileged container",
    description: "`privileged: true` gives the container every capability, all host devices, and no seccomp, AppArmor or SELinux confinement. Root in such a container is root on the host (mount the host disk, load kernel modules).",
    remediation: "Remove `privileged`. Grant only the specific capability or device the service needs (`cap_add: [NET_BIND_SERVICE]`, `devices: [/dev/fuse]`).",
};

pub const DANGEROUS_CAPABILITY: Rule = Rule {
    id: "compose.dangerous-capability",
    severity: Severity::High,
    title: "Dangerous capability added",
    description: "`cap_add` grants a capability that breaks container isolation: SYS_ADMIN (mounts, namespaces: most escapes), SYS_MODULE (kernel modules), SYS_PTRACE (read other processes' memory), DAC_READ_SEARCH (open_by_handle_at: read any host file), NET_ADMIN (reconfigure and sniff networking), SYS_RAWIO, BPF, ALL…",
    remediation: "Drop the capability; find the narrow one the service needs, or do the privileged part outside the container. Prefer `cap_drop: [ALL]` plus the minimum.",
};

pub const SECURITY_OPT_DISABLED: Rule = Rule {
    id: "compose.security-opt-disabled",
    severity: Severity::High,
    title: "Kernel confinement disabled",
    description: "`security_opt` turns off a confinement layer: `seccomp:unconfined` (every syscall reachable, incl. the ones used in kernel exploits), `apparmor:unconfined`, `label:disable` (SELinux), `systempaths=unconfined` (/proc and /sys unmasked), or `no-new-privileges:false`.",
    remediation: "Remove the option. If a syscall is missing, use a custom seccomp profile that adds only it; set `no-new-privileges:true`.",
};

pub const HOST_NAMESPACE: Rule = Rule {
    id: "compose.host-namespace",
    severity: Severity::High,
    title: "Host namespace shared",
    description: "The service shares a namespace with the host: `network_mode: host` (host interfaces and localhost-only services), `pid: host` (see and signal host processes, read their environment), `ipc: host`, `uts: host`, `userns_mode: host` (container root is host root), `cgroup: host`.",
    remediation: "Remove the setting; publish ports with `ports:` instead of host networking, and share namespaces only between containers (`service:name`).",
};

pub const DOCKER_SOCKET_MOUNT: Rule = Rule {
    id: "compose.docker-socket-mount",
    severity: Severity::Critical,
    title: "Container runtime socket mounted",
    description: "The Docker (or containerd, CRI-O, Podman) API socket is mounted into the container. Whoever controls the container can start a privileged container with the host's `/` mounted: it is root on the host, read-only mount or not.",
    remediation: "Do not mount the socket. If a tool really needs the API, put a filtering proxy in front of it that allows only the calls it needs, or use rootless Docker.",
};

pub const SENSITIVE_HOST_MOUNT: Rule = Rule {
    id: "compose.sensitive-host-mount",
    severity: Severity::High,
    title: "Sensitive host path mounted",
    description: "A bind mount exposes a sensitive host path: `/`, `/etc`, `/root`, `/home`, `/proc`, `/sys`, `/boot`, `/dev`, `/var/lib/docker`… The container can read host credentials (shadow, SSH keys, kubeconfigs) and, when writable, change the host.",
    remediation: "Mount only the specific directory the service needs, read-only (`:ro`), or use a named volume.",
};

pub const WRITABLE_HOST_MOUNT: Rule = Rule {
    id: "compose.writable-host-mount",
    severity: Severity::Low,
    title: "Host directory mounted read-write",
    description: "A host directory is bind-mounted read-write. A compromised container can plant files the host (or other containers, or a developer's editor and git hooks) will later use, and a path traversal in the application now reaches that host directory.",
    remediation: "Add `:ro` (or `read_only: true` in the long syntax) unless the service must write there; prefer named volumes for data.",
};

pub const DEVICES: Rule = Rule {
    id: "compose.devices",
    severity: Severity::Medium,
    title: "Host devices passed in",
    description: "`devices:` gives the container direct access to host device nodes (disks, /dev/mem, GPUs, USB). Raw block devices expose the host's filesystems; others expose kernel driver attack surface.",
    remediation: "Remove the devices the service does not strictly need; never pass raw disks or memory devices.",
};

pub const NO_MEMORY_LIMIT: Rule = Rule {
    id: "compose.no-memory-limit",
    severity: Severity::Medium,
    title: "No memory limit",
    description: "The service has no memory limit (`mem_limit` or `deploy.resources.limits.memory`). A leak, a bug or an attacker can consume all host memory until the kernel OOM killer kills other services (or the host becomes unresponsive).",
    remediation: "Set a limit that fits the service: `mem_limit: 512m` (2.x / Compose spec) or `deploy: resources: limits: memory: 512M`.",
};

pub const NO_PIDS_LIMIT: Rule = Rule {
    id: "compose.no-pids-limit",
    severity: Severity::Low,
    title: "No process limit",
    description: "The service has no process limit (`pids_limit` or `deploy.resources.limits.pids`): a fork bomb in the container exhausts the host's process table.",
    remediation: "Set `pids_limit: 256` (or `deploy: resources: limits: pids: 256`).",
};

pub const USER_ROOT: Rule = Rule {
    id: "compose.user-root",
    severity: Severity::Medium,
    title: "Service runs as root",
    description: "`user: root` (or `0`) overrides the image's user and runs the service as uid 0 in the container.",
    remediation: "Run as an unprivileged uid: `user: \"10001:10001\"`, and make the files it writes owned by that uid.",
};

pub const SECRET_IN_ENVIRONMENT: Rule = Rule {
    id: "compose.secret-in-environment",
    severity: Severity::High,
    title: "Secret written in the compose file",
    description: "A variable whose name says it is a secret is given a literal value in `environment:`. The compose file is committed and shared; the value is also visible to anyone who can `docker inspect` the container.",
    remediation: "Use Compose secrets (`secrets:` with a file, mounted at /run/secrets/… and read through `*_FILE` variables, as the official MySQL/Postgres/WordPress images support), or interpolate from an untracked `.env` (`MYSQL_PASSWORD: ${MYSQL_PASSWORD:?}`).",
};

pub const SECRET_IN_ENV_FILE: Rule = Rule {
    id: "compose.secret-in-env-file",
    severity: Severity::High,
    title: "Secret in an env_file",
    description: "An `env_file` referenced by the compose file holds a secret-named variable with a literal value. Env files tend to be committed next to the compose file, and the value ends up in the container's environment, visible to `docker inspect` and to every process in it.",
    remediation: "Keep env files with secrets out of version control (and out of build contexts), or better use Compose `secrets:` files and `*_FILE` variables.",
};

pub const SECRET_BUILD_ARG: Rule = Rule {
    id: "compose.secret-build-arg",
    severity: Severity::High,
    title: "Secret passed as a build argument",
    description: "`build.args` passes a secret-named value to the build. Build arguments are recorded in the image history of every RUN that sees them.",
    remediation: "Use build secrets: `build: secrets: [npm_token]` with a top-level `secrets:` entry, and `RUN --mount=type=secret,id=npm_token` in the Dockerfile.",
};

pub const READ_ONLY_ROOTFS: Rule = Rule {
    id: "compose.read-only-rootfs",
    severity: Severity::Info,
    title: "Root filesystem writable",
    description: "`read_only` is not set, so the container can modify its own image filesystem: an attacker can replace binaries or drop tools, and the change persists until the container is recreated.",
    remediation: "Set `read_only: true` and give the service `tmpfs:` mounts or volumes for the paths it writes.",
};

pub const NO_NEW_PRIVILEGES: Rule = Rule {
    id: "compose.no-new-privileges-missing",
    severity: Severity::Low,
    title: "no-new-privileges not set",
    description: "The service does not set `security_opt: [no-new-privileges:true]`, so a process in it can gain privileges through setuid/setgid binaries or file capabilities (`su`, `sudo`, `ping` in older images): a foothold as the application user becomes root in the container.",
    remediation: "Add `security_opt: [\"no-new-privileges:true\"]` to the service (or set it daemon-wide with `\"no-new-privileges\": true` in daemon.json).",
};

pub const CAP_DROP_ALL: Rule = Rule {
    id: "compose.cap-drop-all-missing",
    severity: Severity::Info,
    title: "Capabilities not dropped",
    description: "The service does not drop all capabilities (`cap_drop: [ALL]`), so it keeps the runtime's default set (CHOWN, DAC_OVERRIDE, FOWNER, SETUID, SETGID, NET_RAW, …), more than most services use; each one widens what a compromise can do.",
    remediation: "Add `cap_drop: [ALL]` and give back only what the service needs with `cap_add` (for example `NET_BIND_SERVICE`, or `CHOWN`, `SETUID`, `SETGID` for images whose entrypoint drops root).",
};

/// Every compose rule, for `rsafe rules`.
pub const RULES: &[Rule] = &[
    PRIVILEGED,
    DANGEROUS_CAPABILITY,
    SECURITY_OPT_DISABLED,
    HOST_NAMESPACE,
    DOCKER_SOCKET_MOUNT,
    SENSITIVE_HOST_MOUNT,
    WRITABLE_HOST_MOUNT,
    DEVICES,
    NO_MEMORY_LIMIT,
    NO_PIDS_LIMIT,
    USER_ROOT,
    SECRET_IN_ENVIRONMENT,
    SECRET_IN_ENV_FILE,
    SECRET_BUILD_ARG,
    READ_ONLY_ROOTFS,
    NO_NEW_PRIVILEGES,
    CAP_DROP_ALL,
];

/// A parsed compose file.
#[derive(Debug, Clone)]
pub struct ComposeFile {
    pub path: PathBuf,
    /// The file's text (for the secret rules).
    pub text: String,
    pub root: Node,
}

/// A service's image build, for the build-context audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRef {
    pub service: String,
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile.
    pub dockerfile: PathBuf,
}

impl ComposeFile {
    /// The directory relative paths are resolved against.
    pub fn dir(&self) -> &Path {
        self.path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    /// `(name, key node, service node)` for every service.
    pub fn services(&self) -> impl Iterator<Item = (&str, &Node, &Node)> {
        self.root
            .get("services")
            .and_then(Node::entries)
            .unwrap_or(&[])
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?, k, v)))
    }

    /// The `env_file`s a service reads (string, list of strings, or list of `{path: …}`),
    /// resolved against the compose file's directory.
    pub fn service_env_files(&self, svc: &Node) -> Vec<PathBuf> {
        let Some(ef) = svc.get("env_file") else {
            return Vec::new();
        };
        let names: Vec<&str> = match (ef.as_str(), ef.items()) {
            (Some(p), _) => vec![p],
            (None, Some(items)) => items
                .iter()
                .filter_map(|it| {
                    it.as_str()
                        .or_else(|| it.get("path").and_then(Node::as_str))
                })
                .collect(),
            _ => Vec::new(),
        };
        names
            .into_iter()
            .map(|n| self.dir().join(interpolate(n).text))
            .collect()
    }

    /// The compose files a top-level `include:` names (`- path`, `- path: x`,
    /// `- path: [a, b]`), resolved against this file's directory; remote includes are skipped.
    pub fn includes(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for item in self
            .root
            .get("include")
            .and_then(Node::items)
            .unwrap_or(&[])
        {
            let names: Vec<&str> = match (item.as_str(), item.get("path")) {
                (Some(p), _) => vec![p],
                (None, Some(p)) => match (p.as_str(), p.items()) {
                    (Some(one), _) => vec![one],
                    (None, Some(many)) => many.iter().filter_map(Node::as_str).collect(),
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            for n in names {
                let i = interpolate(n);
                if i.has_unresolved() || i.text.contains("://") || i.text.starts_with("oci:") {
                    continue;
                }
                out.push(self.dir().join(i.text));
            }
        }
        out
    }

    /// Every `env_file` of every service.
    pub fn env_file_paths(&self) -> Vec<PathBuf> {
        self.services()
            .flat_map(|(_, _, svc)| self.service_env_files(svc))
            .collect()
    }

    /// The local builds (`build:` with a directory context) of every service.
    pub fn builds(&self) -> Vec<BuildRef> {
        let mut out = Vec::new();
        for (name, _, svc) in self.services() {
            let Some(build) = svc.get("build") else {
                continue;
            };
            let (context, dockerfile) = match build.as_str() {
                Some(ctx) => (ctx.to_string(), None),
                None => (
                    build
                        .get("context")
                        .and_then(Node::as_str)
                        .unwrap_or(".")
                        .to_string(),
                    build
                        .get("dockerfile")
                        .and_then(Node::as_str)
                        .map(str::to_string),
                ),
            };
            let ctx = interpolate(&context);
            if ctx.has_unresolved() || ctx.text.contains("://") || ctx.text.starts_with("git@") {
                continue;
            }
            let context_dir = self.dir().join(&ctx.text);
            let dockerfile = context_dir.join(dockerfile.as_deref().unwrap_or("Dockerfile"));
            out.push(BuildRef {
                service: name.to_string(),
                context: context_dir,
                dockerfile,
            });
        }
        out
    }
}

/// Reads and parses a compose file.
pub fn load(path: &Path) -> Result<ComposeFile, ComposeError> {
    let bytes = bounded::read_file(path, bounded::SOURCE).map_err(|e| ComposeError::Read {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let root = yaml::parse(&text)
        .map_err(|e| ComposeError::Yaml {
            path: path.to_path_buf(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?
        .ok_or_else(|| ComposeError::NotCompose {
            path: path.to_path_buf(),
            line: 1,
            message: "the file is empty".into(),
        })?;
    if root.entries().is_none() {
        return Err(ComposeError::NotCompose {
            path: path.to_path_buf(),
            line: root.line,
            message: "the top level must be a mapping with a `services:` key".into(),
        });
    }
    if let Some(services) = root.get("services")
        && services.entries().is_none()
        && !services.is_null()
    {
        return Err(ComposeError::NotCompose {
            path: path.to_path_buf(),
            line: services.line,
            message: "`services:` must be a mapping of service names to definitions".into(),
        });
    }
    Ok(ComposeFile {
        path: path.to_path_buf(),
        text: text.into_owned(),
        root,
    })
}

/// Audits a compose file (and the `env_file`s it references): the compose rules, and the secret
/// rules over the file and its env files.
///
/// Files named by a top-level `include:` are audited too (each once, however often included).
pub fn audit_compose(path: &Path, scanner: &SecretScanner) -> Result<Vec<Finding>, ComposeError> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let mut queue = vec![path.to_path_buf()];
    while let Some(next) = queue.pop() {
        let key = next.canonicalize().unwrap_or_else(|_| next.clone());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let file = load(&next)?;
        out.extend(audit_loaded(&file, scanner));
        let mut includes = file.includes();
        includes.reverse();
        queue.extend(includes);
    }
    Ok(out)
}

/// Runs every compose rule and the secret rules on a loaded file.
pub fn audit_loaded(file: &ComposeFile, scanner: &SecretScanner) -> Vec<Finding> {
    let mut out = check(file, scanner);
    out.extend(scan_text_at(
        scanner,
        &file.text,
        &file.path.display().to_string(),
    ));
    merge_secret_hits(&mut out);
    dedupe(&mut out);
    out
}

/// The compose rules.
fn check(file: &ComposeFile, scanner: &SecretScanner) -> Vec<Finding> {
    let mut out = Vec::new();
    let display = file.path.display().to_string();
    let at = |n: &Node| Location::File {
        path: display.clone(),
        line: Some(n.line),
        column: Some(n.column),
    };
    let bind_volumes = named_bind_volumes(&file.root);
    // Compose interpolates from the project's `.env`: a mount source written `${SOCKET}` is the
    // path `.env` gives (supabase's `${DOCKER_SOCKET_LOCATION}`).
    let dotenv = std::fs::read(file.dir().join(".env"))
        .map(|b| parse_env_file(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    let lookup = |name: &str| {
        dotenv
            .iter()
            .rev()
            .find(|e| e.key == name)
            .map(|e| e.value.clone())
    };
    // Each env file once, with the services that read it.
    let mut env_users: Vec<(PathBuf, Vec<&str>)> = Vec::new();
    for (name, key, svc) in file.services() {
        if svc.entries().is_none() {
            continue;
        }
        service(name, key, svc, &bind_volumes, &lookup, &at, &mut out);
        for path in file.service_env_files(svc) {
            match env_users.iter_mut().find(|(p, _)| *p == path) {
                Some((_, names)) => names.push(name),
                None => env_users.push((path, vec![name])),
            }
        }
    }
    for (path, services) in &env_users {
        env_file(path, services, scanner, &mut out);
    }
    out
}

/// The rules of one service, in the order its findings are reported.
fn service(
    name: &str,
    key: &Node,
    svc: &Node,
    bind_volumes: &[(String, String)],
    lookup: &dyn Fn(&str) -> Option<String>,
    at: &dyn Fn(&Node) -> Location,
    out: &mut Vec<Finding>,
) {
    let privileged = svc.get("privileged").filter(|p| p.is_true());
    if let Some(p) = privileged {
        out.push(finding(
            &PRIVILEGED,
            format!("Service {name} runs privileged"),
            at(p),
            Some(Evidence::plain("privileged: true")),
        ));
    }
    capabilities(name, svc, at, out);
    security_opts(name, svc, at, out);
    namespaces(name, svc, at, out);
    volumes(name, svc, bind_volumes, lookup, at, out);
    devices(name, svc, at, out);
    limits(name, key, svc, at, out);
    user_root(name, svc, at, out);
    if privileged.is_none() {
        hardening(name, key, svc, at, out);
    }
    environment(name, svc, at, out);
    build_args(name, svc, at, out);
    if !svc.get("read_only").is_some_and(Node::is_true) {
        out.push(finding(
            &READ_ONLY_ROOTFS,
            format!("Service {name} has a writable root filesystem"),
            at(key),
            None,
        ));
    }
}

/// `devices:`: host devices handed to the service (short or long syntax).
fn devices(name: &str, svc: &Node, at: &dyn Fn(&Node) -> Location, out: &mut Vec<Finding>) {
    let Some(devices) = svc.get("devices").and_then(Node::items) else {
        return;
    };
    if devices.is_empty() {
        return;
    }
    let list: Vec<&str> = devices
        .iter()
        .filter_map(|d| {
            d.as_str()
                .or_else(|| d.get("source").and_then(Node::as_str))
        })
        .collect();
    out.push(finding(
        &DEVICES,
        format!("Service {name} gets host devices: {}", list.join(", ")),
        at(&devices[0]),
        Some(Evidence::plain(list.join(", "))),
    ));
}

/// `user:` naming root (by name or uid 0), after interpolation.
fn user_root(name: &str, svc: &Node, at: &dyn Fn(&Node) -> Location, out: &mut Vec<Finding>) {
    let Some(user) = svc.get("user").and_then(|u| u.as_str().map(|s| (u, s))) else {
        return;
    };
    let text = interpolate(user.1).text;
    if crate::audit::dockerfile::stages::is_root_user(&text) {
        out.push(finding(
            &USER_ROOT,
            format!("Service {name} runs as root (user: {text})"),
            at(user.0),
            Some(Evidence::plain(format!("user: {text}"))),
        ));
    }
}

/// The hardening Compose leaves off by default: `no-new-privileges` and `cap_drop: [ALL]`.
fn hardening(
    name: &str,
    key: &Node,
    svc: &Node,
    at: &dyn Fn(&Node) -> Location,
    out: &mut Vec<Finding>,
) {
    let opts = svc.get("security_opt").and_then(Node::items).unwrap_or(&[]);
    let nnp = opts.iter().filter_map(Node::as_str).any(|o| {
        let lower = o.trim().to_ascii_lowercase();
        match lower.split_once([':', '=']) {
            Some((k, v)) => k == "no-new-privileges" && v == "true",
            None => lower == "no-new-privileges",
        }
    });
    if !nnp {
        out.push(finding(
            &NO_NEW_PRIVILEGES,
            format!("Service {name} does not set no-new-privileges:true"),
            at(key),
            None,
        ));
    }
    let drops_all = svc
        .get("cap_drop")
        .and_then(Node::items)
        .unwrap_or(&[])
        .iter()
        .filter_map(Node::as_str)
        .any(|c| matches!(c.trim().to_ascii_uppercase().as_str(), "ALL" | "CAP_ALL"));
    if !drops_all {
        out.push(finding(
            &CAP_DROP_ALL,
            format!("Service {name} keeps the default capabilities (no cap_drop: [ALL])"),
            at(key),
            None,
        ));
    }
}

fn capabilities(name: &str, svc: &Node, at: &dyn Fn(&Node) -> Location, out: &mut Vec<Finding>) {
    const DANGEROUS: &[&str] = &[
        "ALL",
        "SYS_ADMIN",
        "SYS_MODULE",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_BOOT",
        "SYS_TIME",
        "DAC_READ_SEARCH",
        "DAC_OVERRIDE",
        "NET_ADMIN",
        "BPF",
        "PERFMON",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "SYSLOG",
        "LINUX_IMMUTABLE",
        "SETFCAP",
    ];
    for cap in svc.get("cap_add").and_then(Node::items).unwrap_or(&[]) {
        let Some(text) = cap.as_str() else { continue };
        let upper = text.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if DANGEROUS.contains(&bare) {
            out.push(finding(
                &DANGEROUS_CAPABILITY,
                format!("Service {name} adds capability {bare}"),
                at(cap),
                Some(Evidence::plain(format!("cap_add: {text}"))),
            ));
        }
    }
}

fn security_opts(name: &str, svc: &Node, at: &dyn Fn(&Node) -> Location, out: &mut Vec<Finding>) {
    for opt in svc.get("security_opt").and_then(Node::items).unwrap_or(&[]) {
        let Some(text) = opt.as_str() else { continue };
        let lower = text.trim().to_ascii_lowercase();
        let (key, value) = lower.split_once([':', '=']).unwrap_or((lower.as_str(), ""));
        let what = match (key, value) {
            ("seccomp", "unconfined") => "seccomp is disabled",
            ("apparmor", "unconfined") => "AppArmor is disabled",
            ("label", "disable") => "SELinux labelling is disabled",
            ("systempaths", "unconfined") => "/proc and /sys paths are unmasked",
            ("no-new-privileges", "false") => {
                "setuid binaries can gain privileges (no-new-privileges:false)"
            }
            _ => continue,
        };
        out.push(finding(
            &SECURITY_OPT_DISABLED,
            format!("Service {name}: {what}"),
            at(opt),
            Some(Evidence::plain(format!("security_opt: {text}"))),
        ));
    }
}

fn namespaces(name: &str, svc: &Node, at: &dyn Fn(&Node) -> Location, out: &mut Vec<Finding>) {
    for key in ["network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup"] {
        if let Some(v) = svc.get(key)
            && v.as_str()
                .is_some_and(|s| interpolate(s).text.eq_ignore_ascii_case("host"))
        {
            out.push(finding(
                &HOST_NAMESPACE,
                format!("Service {name} shares the host's namespace: {key}: host"),
                at(v),
                Some(Evidence::plain(format!("{key}: host"))),
            ));
        }
    }
}

fn limits(
    name: &str,
    key: &Node,
    svc: &Node,
    at: &dyn Fn(&Node) -> Location,
    out: &mut Vec<Finding>,
) {
    let set = |n: Option<&Node>| n.is_some_and(|n| !n.is_null());
    let has_memory =
        set(svc.get("mem_limit")) || set(svc.path(&["deploy", "resources", "limits", "memory"]));
    let has_pids =
        set(svc.get("pids_limit")) || set(svc.path(&["deploy", "resources", "limits", "pids"]));
    if !has_memory {
        out.push(finding(
            &NO_MEMORY_LIMIT,
            format!("Service {name} has no memory limit"),
            at(key),
            None,
        ));
    }
    if !has_pids {
        out.push(finding(
            &NO_PIDS_LIMIT,
            format!("Service {name} has no process (pids) limit"),
            at(key),
            None,
        ));
    }
}

/// Top-level named volumes that are really bind mounts (`driver_opts: {o: bind, device: /x}`):
/// name → host path.
fn named_bind_volumes(root: &Node) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in root.get("volumes").and_then(Node::entries).unwrap_or(&[]) {
        let (Some(name), Some(opts)) = (k.as_str(), v.get("driver_opts")) else {
            continue;
        };
        let is_bind = opts
            .get("o")
            .and_then(Node::as_str)
            .is_some_and(|o| o.split(',').any(|x| x.trim() == "bind"));
        if let (true, Some(device)) = (is_bind, opts.get("device").and_then(Node::as_str)) {
            out.push((name.to_string(), device.to_string()));
        }
    }
    out
}

/// A bind mount seen in a service.
struct Mount<'a> {
    node: &'a Node,
    source: String,
    target: String,
    read_only: bool,
}

/// A service's host mounts: the runtime socket, sensitive host paths, and host paths mounted
/// read-write.
fn volumes(
    name: &str,
    svc: &Node,
    named_binds: &[(String, String)],
    lookup: &dyn Fn(&str) -> Option<String>,
    at: &dyn Fn(&Node) -> Location,
    out: &mut Vec<Finding>,
) {
    let mounts = svc
        .get("volumes")
        .and_then(Node::items)
        .unwrap_or(&[])
        .iter()
        .filter_map(Mount::of);
    for m in mounts {
        let src = interpolate_with(&m.source, lookup);
        let mut host = src.text.clone();
        // A named volume that binds a host directory (`driver_opts: {o: bind, device: …}`).
        if let Some((_, device)) = named_binds.iter().find(|(n, _)| *n == host) {
            host = device.clone();
        }
        if is_host_path(&host) {
            host_mount(name, &m, &normalize_host_path(&host), at, out);
        }
    }
}

impl<'a> Mount<'a> {
    /// One `volumes:` entry, short (`src:target[:mode]`) or long syntax (`type: bind|volume`).
    fn of(v: &'a Node) -> Option<Self> {
        if let Some(short) = v.as_str() {
            let parts: Vec<&str> = short.split(':').collect();
            let (source, target, mode) = match parts.as_slice() {
                [target] => (String::new(), target.to_string(), ""),
                [source, target] => (source.to_string(), target.to_string(), ""),
                [source, target, mode, ..] => (source.to_string(), target.to_string(), *mode),
                [] => return None,
            };
            return Some(Mount {
                node: v,
                source,
                target,
                read_only: mode.split(',').any(|m| m == "ro"),
            });
        }
        v.entries()?;
        let kind = v.get("type").and_then(Node::as_str).unwrap_or("volume");
        if !matches!(kind, "bind" | "volume") {
            return None;
        }
        let text = |key: &str| v.get(key).and_then(Node::as_str).unwrap_or("").to_string();
        Some(Mount {
            node: v,
            source: text("source"),
            target: text("target"),
            read_only: v.get("read_only").is_some_and(Node::is_true),
        })
    }
}

/// The finding for one host path mounted into service `name`, the worst that applies.
fn host_mount(
    name: &str,
    m: &Mount,
    host: &str,
    at: &dyn Fn(&Node) -> Location,
    out: &mut Vec<Finding>,
) {
    let mode = if m.read_only {
        "read-only"
    } else {
        "read-write"
    };
    let evidence = Some(Evidence::plain(format!(
        "{}:{}{}",
        m.source,
        m.target,
        if m.read_only { ":ro" } else { "" }
    )));
    let (rule, title) = if let Some(socket) = runtime_socket_dir(host) {
        (
            &DOCKER_SOCKET_MOUNT,
            format!(
                "Service {name} mounts {host} ({mode}), which holds the container runtime socket {socket}"
            ),
        )
    } else if is_runtime_socket(host) {
        (
            &DOCKER_SOCKET_MOUNT,
            format!("Service {name} mounts the container runtime socket {host} ({mode})"),
        )
    } else if let Some(why) = sensitive_host_path(host, m.read_only) {
        (
            &SENSITIVE_HOST_MOUNT,
            format!("Service {name} mounts {why} {host} ({mode})"),
        )
    } else if !m.read_only {
        (
            &WRITABLE_HOST_MOUNT,
            format!(
                "Service {name} mounts host path {host} read-write at {}",
                m.target
            ),
        )
    } else {
        return;
    };
    out.push(finding(rule, title, at(m.node), evidence));
}

/// A short-syntax source that is a host path rather than a named volume.
fn is_host_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

/// `~`, `$HOME` → `/home/<user>`; `./x` stays relative; redundant slashes removed.
fn normalize_host_path(path: &str) -> String {
    let p = if let Some(rest) = path.strip_prefix('~') {
        format!("/home/user{rest}")
    } else {
        path.to_string()
    };
    if p.starts_with('/') {
        crate::audit::context::dockerignore::clean(&p)
    } else {
        p
    }
}

fn is_runtime_socket(path: &str) -> bool {
    const SOCKETS: &[&str] = &[
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/run/containerd/containerd.sock",
        "/var/run/containerd/containerd.sock",
        "/var/run/crio/crio.sock",
        "/run/crio/crio.sock",
        "/run/podman/podman.sock",
        "/var/run/podman/podman.sock",
        "/run/user/1000/docker.sock",
    ];
    SOCKETS.contains(&path) || (path.ends_with("/docker.sock") && path.starts_with("/run/user/"))
}

/// A directory (other than `/`) that holds a runtime socket: mounting `/var/run` or `/run`
/// gives the container `docker.sock` as surely as mounting the socket itself.
fn runtime_socket_dir(path: &str) -> Option<&'static str> {
    const SOCKETS: &[&str] = &[
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/run/containerd/containerd.sock",
        "/var/run/containerd/containerd.sock",
        "/run/crio/crio.sock",
        "/var/run/crio/crio.sock",
        "/run/podman/podman.sock",
        "/var/run/podman/podman.sock",
    ];
    if path == "/" {
        return None;
    }
    let dir = format!("{}/", path.trim_end_matches('/'));
    SOCKETS.iter().copied().find(|s| s.starts_with(&dir))
}

/// Why a host path is sensitive, or `None`.
fn sensitive_host_path(path: &str, read_only: bool) -> Option<&'static str> {
    if path == "/" {
        return Some("the host root filesystem");
    }
    const ANY_MODE: &[(&str, &str)] = &[
        ("/proc", "host procfs"),
        ("/sys", "host sysfs"),
        ("/root", "root's home directory"),
        ("/boot", "the host boot partition"),
        ("/dev", "host devices"),
        ("/var/lib/docker", "Docker's data directory"),
        ("/var/lib/containerd", "containerd's data directory"),
        ("/var/lib/kubelet", "the kubelet's data directory"),
        ("/etc/kubernetes", "Kubernetes credentials"),
        ("/etc/shadow", "host password hashes"),
        ("/etc/gshadow", "host password hashes"),
        ("/etc/sudoers", "host sudo configuration"),
        ("/etc/ssh", "host SSH keys"),
        ("/etc/docker", "Docker daemon configuration"),
        ("/etc/ssl/private", "host TLS private keys"),
    ];
    if let Some(why) = home_path(path) {
        return Some(why);
    }
    for (prefix, why) in ANY_MODE {
        if path == *prefix || path.starts_with(&format!("{prefix}/")) {
            // Read-only /sys/fs/cgroup is what monitoring agents need; still host info, but less.
            return Some(why);
        }
    }
    // /etc as a whole, or any of it writable; single read-only files like /etc/localtime are fine.
    if path == "/etc" || (!read_only && path.starts_with("/etc/")) {
        return Some("host configuration");
    }
    for top in [
        "/usr", "/bin", "/sbin", "/lib", "/lib64", "/var/run", "/run", "/var/log", "/opt",
    ] {
        if path == top || (!read_only && path.starts_with(&format!("{top}/"))) {
            return Some("a host system directory");
        }
    }
    None
}

/// `/home`, a whole home directory, or a dot-directory in one (`~/.ssh`, `~/.aws`, `~/.config`):
/// credentials and shell start-up files. A data directory under a home (`~/minecraft_data`)
/// is an ordinary host directory.
fn home_path(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/home")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [] => Some("the host's home directories"),
        [_] => Some("a home directory"),
        [_, sub, ..] if sub.starts_with('.') => {
            Some("a home directory's dot-directory (credentials, shell start-up files)")
        }
        _ => None,
    }
}

fn environment(name: &str, svc: &Node, at: &dyn Fn(&Node) -> Location, out: &mut Vec<Finding>) {
    let Some(env) = svc.get("environment") else {
        return;
    };
    let mut pairs: Vec<(String, Option<String>, &Node)> = Vec::new();
    if let Some(entries) = env.entries() {
        for (k, v) in entries {
            if let Some(key) = k.as_str() {
                pairs.push((
                    key.to_string(),
                    (!v.is_null()).then(|| v.as_str().unwrap_or("").to_string()),
                    k,
                ));
            }
        }
    } else if let Some(items) = env.items() {
        for item in items {
            if let Some(text) = item.as_str() {
                match text.split_once('=') {
                    Some((k, v)) => pairs.push((k.to_string(), Some(v.to_string()), item)),
                    None => pairs.push((text.to_string(), None, item)),
                }
            }
        }
    }
    for (key, value, node) in pairs {
        let Some(value) = value else { continue };
        if let Some(secret) = literal_secret(&key, &value) {
            out.push(finding(
                &SECRET_IN_ENVIRONMENT,
                format!("Service {name} sets {key} to a literal secret"),
                at(node),
                Some(Evidence::secret(&secret)),
            ));
        }
    }
}

/// The literal secret a `KEY=value` pair writes down, after Compose interpolation: the value
/// itself, or the default of `${VAR:-default}`; `None` for values that come from elsewhere.
fn literal_secret(key: &str, value: &str) -> Option<String> {
    if !is_secret_name(key) {
        return None;
    }
    let i: Interpolated = interpolate(value);
    if i.has_unresolved() {
        return None;
    }
    is_literal_secret_value(&i.text).then_some(i.text)
}

/// The secrets in one env file, reported once whatever the number of services that read it.
fn env_file(path: &Path, services: &[&str], scanner: &SecretScanner, out: &mut Vec<Finding>) {
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    let display = path.display().to_string();
    for hit in scanner.scan_file(&display, &bytes) {
        out.push(hit.into_finding(Location::File {
            path: display.clone(),
            line: None,
            column: None,
        }));
    }
    let readers = match services {
        [one] => format!("service {one}"),
        many => format!("services {}", many.join(", ")),
    };
    for entry in parse_env_file(&String::from_utf8_lossy(&bytes)) {
        if let Some(secret) = literal_secret(&entry.key, &entry.value) {
            out.push(finding(
                &SECRET_IN_ENV_FILE,
                format!(
                    "env_file of {readers} sets {} to a literal secret",
                    entry.key
                ),
                Location::File {
                    path: display.clone(),
                    line: Some(entry.line),
                    column: Some(1),
                },
                Some(Evidence::secret(&secret)),
            ));
        }
    }
}

fn build_args(name: &str, svc: &Node, at: &dyn Fn(&Node) -> Location, out: &mut Vec<Finding>) {
    let Some(args) = svc.path(&["build", "args"]) else {
        return;
    };
    let mut pairs: Vec<(String, String, &Node)> = Vec::new();
    if let Some(entries) = args.entries() {
        for (k, v) in entries {
            if let (Some(key), Some(val)) = (k.as_str(), v.as_str()) {
                pairs.push((key.to_string(), val.to_string(), k));
            }
        }
    } else if let Some(items) = args.items() {
        for it in items {
            if let Some((k, v)) = it.as_str().and_then(|t| t.split_once('=')) {
                pairs.push((k.to_string(), v.to_string(), it));
            }
        }
    }
    for (key, value, node) in pairs {
        if let Some(secret) = literal_secret(&key, &value) {
            out.push(finding(
                &SECRET_BUILD_ARG,
                format!("Service {name} passes {key} to the build as a build argument"),
                at(node),
                Some(Evidence::secret(&secret)),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_paths_are_shown_short_and_printable() {
        let long = Path::new("/x").join("a\x1b[2J".repeat(400));
        let err = ComposeError::Read {
            path: long,
            source: std::io::Error::other("File name too long"),
        }
        .to_string();
        assert!(err.len() < 700, "{} bytes", err.len());
        assert!(!err.chars().any(|c| c.is_control()), "{err:?}");
        assert!(
            err.contains("a\\u{1b}[2J") && err.ends_with("…: File name too long"),
            "{err}"
        );
    }

    /// Random YAML-shaped text (anchors, merges, flow and block styles, multibyte characters)
    /// never panics the YAML reader or the rules.
    #[test]
    fn arbitrary_input_never_panics() {
        const TOKENS: &[&str] = &[
            "services:\n",
            "  web:\n",
            "    ",
            "  ",
            "- ",
            "privileged: ",
            "true",
            "yes",
            "\n",
            "volumes:\n",
            "/:/host",
            "/var/run/docker.sock:/s:ro",
            "&a ",
            "*a",
            "<<: ",
            "[",
            "]",
            "{",
            "}",
            ",",
            ": ",
            "'",
            "\"",
            "environment:\n",
            "PASSWORD=x",
            "A_TOKEN: ${T:-d}",
            "cap_add: [ALL]",
            "---\n",
            "...\n",
            "é",
            "#c\n",
            "!!str ",
            "? ",
            "|\n",
            ">-\n",
            "security_opt: [seccomp:unconfined]",
            "user: 0",
            "deploy: {resources: {limits: {}}}",
        ];
        let scanner = SecretScanner::builtin().unwrap();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let n = (next() % 40) as usize;
            let text: String = (0..n)
                .map(|_| TOKENS[(next() % TOKENS.len() as u64) as usize])
                .collect();
            if let Ok(Some(root)) = yaml::parse(&text) {
                let file = ComposeFile {
                    path: PathBuf::from("/nonexistent/compose.yaml"),
                    text: text.clone(),
                    root,
                };
                let _ = audit_loaded(&file, &scanner);
                let _ = file.builds();
            }
        }
    }

    #[test]
    fn sensitive_paths() {
        assert_eq!(
            sensitive_host_path("/", true),
            Some("the host root filesystem")
        );
        assert!(sensitive_host_path("/etc", true).is_some());
        assert!(sensitive_host_path("/etc/localtime", true).is_none());
        assert!(sensitive_host_path("/etc/nginx/conf.d", false).is_some());
        assert!(sensitive_host_path("/home/alice/.ssh", true).is_some());
        assert!(sensitive_host_path("/srv/data", false).is_none());
        // A data directory under a home is not the home directory.
        assert!(sensitive_host_path(&normalize_host_path("~/minecraft_data"), false).is_none());
        assert!(sensitive_host_path(&normalize_host_path("~"), true).is_some());
        assert!(sensitive_host_path(&normalize_host_path("~/.aws/"), true).is_some());
        assert!(sensitive_host_path("/home", true).is_some());
        assert!(sensitive_host_path("/homework/x", false).is_none());
        assert!(sensitive_host_path("/var/log", true).is_some());
        assert!(
            is_runtime_socket("/var/run/docker.sock")
                && is_runtime_socket("/run/user/1001/docker.sock")
        );
        assert_eq!(
            normalize_host_path("/var//run/./docker.sock"),
            "/var/run/docker.sock"
        );
        assert_eq!(normalize_host_path("~/.aws"), "/home/user/.aws");
        assert_eq!(runtime_socket_dir("/var/run"), Some("/var/run/docker.sock"));
        assert_eq!(
            runtime_socket_dir("/run/containerd"),
            Some("/run/containerd/containerd.sock")
        );
        assert_eq!(runtime_socket_dir("/"), None);
        assert_eq!(runtime_socket_dir("/var/run/docker.sock"), None);
    }

    #[test]
    fn literal_secrets_after_interpolation() {
        assert_eq!(
            literal_secret("MYSQL_PASSWORD", "wordpress").as_deref(),
            Some("wordpress")
        );
        assert_eq!(literal_secret("DB_PASSWORD", "${DB_PASSWORD}"), None);
        assert_eq!(
            literal_secret("DB_PASSWORD", "${DB_PASSWORD:?set it}"),
            None
        );
        assert_eq!(
            literal_secret("DB_PASSWORD", "${DB_PASSWORD:-changeme}").as_deref(),
            Some("changeme")
        );
        assert_eq!(literal_secret("MYSQL_RANDOM_ROOT_PASSWORD", "1"), None);
        assert_eq!(literal_secret("WORDPRESS_DB_HOST", "db"), None);
        assert_eq!(literal_secret("DB_PASSWORD_FILE", "/run/secrets/db"), None);
    }
}
