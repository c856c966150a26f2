//! The Pod Security Standards (baseline and restricted, policy version "latest", Kubernetes
//! v1.30+) as rules, decided the way the pod-security admission controller decides them: the
//! same fields, the same allowed values, the same inheritance between the pod's and the
//! containers' security contexts, and the same Windows exemptions.
//!
//! Each control is one rule whose id names it (`k8s.pss.baseline.host-namespaces`). Baseline
//! violations are failures whatever the level chosen; restricted-only violations are failures
//! (high) with `--pss restricted` and reported low otherwise, so a baseline shop sees what
//! restricted would add without failing CI on it.

use crate::audit::compose::yaml::Node;
use crate::audit::{Evidence, Finding, Rule, Severity};

use super::{Container, Pod, bool_of, container_security, finding_on, int_of};

/// Which Pod Security Standards level counts as a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PssLevel {
    /// Known privilege escalations are failures; restricted's hardening is reported low.
    #[default]
    Baseline,
    /// Every control of the restricted profile is a failure.
    Restricted,
}

macro_rules! pss_rule {
    ($name:ident, $id:literal, $sev:ident, $title:literal, $desc:literal, $fix:literal) => {
        pub const $name: Rule = Rule {
            id: $id,
            severity: Severity::$sev,
            title: $title,
            description: $desc,
            remediation: $fix,
        };
    };
}

pss_rule!(
    HOST_PROCESS,
    "k8s.pss.baseline.host-process",
    Critical,
    "Windows HostProcess container",
    "PSS baseline, HostProcess: `windowsOptions.hostProcess: true` (pod or container) runs the container as a process on the Windows node with the node's privileges.",
    "Remove `hostProcess` (allowed: undefined, false)."
);
pss_rule!(
    HOST_NAMESPACES,
    "k8s.pss.baseline.host-namespaces",
    High,
    "Host namespace shared",
    "PSS baseline, Host Namespaces: `hostNetwork`, `hostPID` or `hostIPC` true shares the node's network stack, process table or IPC with the pod (read other pods' traffic and processes, reach node-local services).",
    "Remove `hostNetwork`, `hostPID`, `hostIPC` (allowed: undefined, false)."
);
pss_rule!(
    PRIVILEGED,
    "k8s.pss.baseline.privileged",
    Critical,
    "Privileged container",
    "PSS baseline, Privileged Containers: `privileged: true` disables most isolation: every capability, every device, no seccomp or AppArmor. Root in it is root on the node.",
    "Remove `securityContext.privileged` (allowed: undefined, false); add the one capability needed instead."
);
pss_rule!(
    CAPABILITIES_BASELINE,
    "k8s.pss.baseline.capabilities",
    High,
    "Capability outside the baseline set added",
    "PSS baseline, Capabilities: only AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID and SYS_CHROOT may be added (the runtime's default set); anything else (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, ALL…) widens what a compromise reaches.",
    "Remove the capability from `capabilities.add`."
);
pss_rule!(
    HOST_PATH_VOLUMES,
    "k8s.pss.baseline.host-path-volumes",
    High,
    "hostPath volume",
    "PSS baseline, HostPath Volumes: `volumes[*].hostPath` mounts a node directory into the pod; it must be forbidden.",
    "Use an emptyDir, a configMap/secret, or a PersistentVolumeClaim instead of hostPath."
);
pss_rule!(
    HOST_PORTS,
    "k8s.pss.baseline.host-ports",
    High,
    "Host port",
    "PSS baseline, Host Ports: `ports[*].hostPort` other than 0 binds a port on the node's interfaces, bypassing Services and network policies.",
    "Remove `hostPort`; expose the port through a Service."
);
pss_rule!(
    APPARMOR,
    "k8s.pss.baseline.apparmor",
    High,
    "AppArmor disabled",
    "PSS baseline, AppArmor: the profile (field `appArmorProfile.type` or annotation `container.apparmor.security.beta.kubernetes.io/*`) may only be RuntimeDefault or Localhost (`runtime/default`, `localhost/*`); Unconfined turns the confinement off.",
    "Remove the override, or set `appArmorProfile: {type: RuntimeDefault}`."
);
pss_rule!(
    SELINUX,
    "k8s.pss.baseline.selinux",
    High,
    "SELinux options outside the baseline",
    "PSS baseline, SELinux: `seLinuxOptions.type` may only be container_t, container_init_t, container_kvm_t or container_engine_t, and `user` and `role` must be unset; other labels escape the container policy.",
    "Remove `seLinuxOptions.user`/`role` and use an allowed type (or none)."
);
pss_rule!(
    PROC_MOUNT,
    "k8s.pss.baseline.proc-mount",
    High,
    "Unmasked /proc",
    "PSS baseline, /proc Mount Type: `procMount` other than Default (Unmasked) exposes the host paths the runtime masks in /proc.",
    "Remove `procMount` (allowed: undefined, Default)."
);
pss_rule!(
    SECCOMP_BASELINE,
    "k8s.pss.baseline.seccomp",
    High,
    "Seccomp disabled",
    "PSS baseline, Seccomp: `seccompProfile.type: Unconfined` (pod or container) turns the syscall filter off.",
    "Use `seccompProfile: {type: RuntimeDefault}` (or a Localhost profile)."
);
pss_rule!(
    SYSCTLS,
    "k8s.pss.baseline.sysctls",
    High,
    "Unsafe sysctl",
    "PSS baseline, Sysctls: only kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.ip_unprivileged_port_start, net.ipv4.tcp_syncookies, net.ipv4.ping_group_range, net.ipv4.ip_local_reserved_ports, net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl and net.ipv4.tcp_keepalive_probes are safe (namespaced, isolated from other pods).",
    "Remove the sysctl from `securityContext.sysctls`."
);
pss_rule!(
    HOST_PROBES,
    "k8s.pss.baseline.host-probes",
    High,
    "Probe or lifecycle hook aimed at another host",
    "PSS baseline (v1.34+), Host Probes / Lifecycle Hooks: `host` in an httpGet or tcpSocket probe or lifecycle handler may only be unset, 127.0.0.1 or ::1; the kubelet makes the request from the node, so any other host turns the pod into a request forger inside the node's network.",
    "Remove `host` (the probe then targets the pod's IP)."
);
pss_rule!(
    GIT_REPO_VOLUME,
    "k8s.pss.baseline.volume-types",
    High,
    "gitRepo volume",
    "PSS baseline (policy v1.31+), Volume Types: a `gitRepo` volume makes the kubelet run git on the node against a repository the pod names (CVE-2024-10220: code execution on the node).",
    "Clone in an init container into an emptyDir instead."
);
pss_rule!(
    ULIMITS,
    "k8s.pss.baseline.ulimits",
    High,
    "Container ulimits set",
    "PSS baseline (v1.37+), ulimits: `securityContext.ulimits` is allowed only by the privileged level.",
    "Remove `securityContext.ulimits`; set limits through `resources`."
);
pss_rule!(
    PROC_MOUNT_RESTRICTED,
    "k8s.pss.restricted.proc-mount",
    Low,
    "Unmasked /proc in a user-namespace pod",
    "PSS restricted, /proc Mount Type: `procMount` must be unset or Default even in a pod with `hostUsers: false` (which baseline lets unmask /proc). Reported high with `--pss restricted`.",
    "Remove `procMount`."
);
pss_rule!(
    CGROUP_OPTIONS,
    "k8s.pss.restricted.cgroup-options",
    Low,
    "Writable cgroup mount",
    "PSS restricted, cgroupOptions: `securityContext.cgroupOptions.mountMode` may only be unset or ReadOnly; a writable cgroup filesystem lets the container change its own limits. Reported high with `--pss restricted`.",
    "Remove `cgroupOptions.mountMode` (or set ReadOnly)."
);
pss_rule!(
    VOLUME_TYPES,
    "k8s.pss.restricted.volume-types",
    Low,
    "Volume type outside the restricted set",
    "PSS restricted, Volume Types: only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and secret volumes are allowed. Reported high with `--pss restricted`.",
    "Use a PersistentVolumeClaim for network storage instead of an inline volume source."
);
pss_rule!(
    PRIVILEGE_ESCALATION,
    "k8s.pss.restricted.privilege-escalation",
    Low,
    "Privilege escalation not disabled",
    "PSS restricted, Privilege Escalation: every container must set `allowPrivilegeEscalation: false` (no_new_privs), or setuid binaries and file capabilities can raise privileges. Windows pods are exempt. Reported high with `--pss restricted`.",
    "Set `securityContext.allowPrivilegeEscalation: false` on every container."
);
pss_rule!(
    RUN_AS_NON_ROOT,
    "k8s.pss.restricted.run-as-non-root",
    Low,
    "Not required to run as non-root",
    "PSS restricted, Running as Non-root: `runAsNonRoot: true` must be set on the pod (and not set false on a container) or on every container. Reported high with `--pss restricted`.",
    "Set `securityContext.runAsNonRoot: true` on the pod."
);
pss_rule!(
    RUN_AS_USER,
    "k8s.pss.restricted.run-as-user",
    Low,
    "Runs as uid 0",
    "PSS restricted, Running as Non-root user: `runAsUser: 0` (pod or container) runs as root. Reported high with `--pss restricted`.",
    "Set `runAsUser` to a non-zero uid, or leave it unset with `runAsNonRoot: true`."
);
pss_rule!(
    SECCOMP_RESTRICTED,
    "k8s.pss.restricted.seccomp",
    Low,
    "Seccomp profile not set",
    "PSS restricted, Seccomp: `seccompProfile.type` must be RuntimeDefault or Localhost, on the pod or on every container. Windows pods are exempt. Reported high with `--pss restricted`.",
    "Set `spec.securityContext.seccompProfile: {type: RuntimeDefault}`."
);
pss_rule!(
    CAPABILITIES_RESTRICTED,
    "k8s.pss.restricted.capabilities",
    Low,
    "Capabilities not dropped",
    "PSS restricted, Capabilities: every container must drop ALL and may add back only NET_BIND_SERVICE. Windows pods are exempt. Reported high with `--pss restricted`.",
    "Set `capabilities: {drop: [ALL]}` (and `add: [NET_BIND_SERVICE]` if a low port is needed)."
);

/// Every PSS rule, baseline then restricted.
pub const RULES: &[Rule] = &[
    HOST_PROCESS,
    HOST_NAMESPACES,
    PRIVILEGED,
    CAPABILITIES_BASELINE,
    HOST_PATH_VOLUMES,
    HOST_PORTS,
    APPARMOR,
    SELINUX,
    PROC_MOUNT,
    SECCOMP_BASELINE,
    SYSCTLS,
    HOST_PROBES,
    GIT_REPO_VOLUME,
    ULIMITS,
    VOLUME_TYPES,
    PROC_MOUNT_RESTRICTED,
    CGROUP_OPTIONS,
    PRIVILEGE_ESCALATION,
    RUN_AS_NON_ROOT,
    RUN_AS_USER,
    SECCOMP_RESTRICTED,
    CAPABILITIES_RESTRICTED,
];

/// Capabilities baseline lets a container add.
pub const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The safe sysctls (baseline, policy version 1.29+).
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// SELinux types baseline allows (policy version 1.31+ added container_engine_t).
pub const SELINUX_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// Volume sources restricted allows.
pub const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// What one check found: the node to point at, and what it says.
struct Hit<'a> {
    node: &'a Node,
    what: String,
}

/// One control's decision for a pod: what violates it.
type Control = for<'p, 'a> fn(&'p Pod<'a>) -> Vec<Hit<'a>>;

/// Decides every control for one pod.
pub fn check(pod: &Pod, file: &str, level: PssLevel) -> Vec<Finding> {
    let restricted_sev = match level {
        PssLevel::Restricted => Severity::High,
        PssLevel::Baseline => Severity::Low,
    };
    let controls: &[(&Rule, Control)] = &[
        (&HOST_PROCESS, host_process),
        (&HOST_NAMESPACES, host_namespaces),
        (&PRIVILEGED, privileged),
        (&CAPABILITIES_BASELINE, capabilities_baseline),
        (&HOST_PATH_VOLUMES, host_path_volumes),
        (&HOST_PORTS, host_ports),
        (&APPARMOR, apparmor),
        (&SELINUX, selinux),
        (&PROC_MOUNT, proc_mount),
        (&SECCOMP_BASELINE, seccomp_baseline),
        (&SYSCTLS, sysctls),
        (&HOST_PROBES, host_probes),
        (&GIT_REPO_VOLUME, git_repo_volumes),
        (&ULIMITS, ulimits),
        (&VOLUME_TYPES, volume_types),
        (&PROC_MOUNT_RESTRICTED, proc_mount_restricted),
        (&CGROUP_OPTIONS, cgroup_options),
        (&PRIVILEGE_ESCALATION, privilege_escalation),
        (&RUN_AS_NON_ROOT, run_as_non_root),
        (&RUN_AS_USER, run_as_user),
        (&SECCOMP_RESTRICTED, seccomp_restricted),
        (&CAPABILITIES_RESTRICTED, capabilities_restricted),
    ];
    let mut out = Vec::new();
    for (rule, control) in controls {
        let severity = if rule.id.starts_with("k8s.pss.restricted.") {
            restricted_sev
        } else {
            rule.severity
        };
        for hit in control(pod) {
            out.push(finding_on(
                rule,
                severity,
                file,
                hit.node,
                format!("{}: {} ({})", rule.title, pod.object.label(), hit.what),
                Some(Evidence::plain(hit.what)),
            ));
        }
    }
    out
}

fn hit<'a>(node: &'a Node, what: impl Into<String>) -> Hit<'a> {
    Hit {
        node,
        what: what.into(),
    }
}

fn is_true(n: Option<&Node>) -> bool {
    n.and_then(bool_of) == Some(true)
}

fn host_process<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    let mut out = Vec::new();
    if let Some(n) = pod.security(&["windowsOptions", "hostProcess"])
        && is_true(Some(n))
    {
        out.push(hit(n, "pod hostProcess: true"));
    }
    for c in pod.containers() {
        if let Some(n) = container_security(&c, &["windowsOptions", "hostProcess"])
            && is_true(Some(n))
        {
            out.push(hit(n, format!("{} hostProcess: true", c.label())));
        }
    }
    out
}

fn host_namespaces<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter_map(|k| {
            let n = pod.spec.get(k)?;
            is_true(Some(n)).then(|| hit(n, format!("{k}: true")))
        })
        .collect()
}

fn privileged<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    pod.containers()
        .into_iter()
        .filter_map(|c| {
            let n = container_security(&c, &["privileged"])?;
            is_true(Some(n)).then(|| hit(n, format!("{} privileged: true", c.label())))
        })
        .collect()
}

/// The scalar items of a sequence.
fn strings(n: Option<&Node>) -> Vec<(&Node, &str)> {
    n.and_then(Node::items)
        .unwrap_or(&[])
        .iter()
        .filter_map(|i| Some((i, i.as_str()?)))
        .collect()
}

fn capabilities_baseline<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    let mut out = Vec::new();
    for c in pod.containers() {
        for (n, cap) in strings(container_security(&c, &["capabilities", "add"])) {
            if !BASELINE_CAPABILITIES.contains(&cap) {
                out.push(hit(n, format!("{} adds {cap}", c.label())));
            }
        }
    }
    out
}

/// `(name, volume node)` of every volume.
fn volumes<'a>(pod: &Pod<'a>) -> Vec<(&'a str, &'a Node)> {
    pod.spec
        .get("volumes")
        .and_then(Node::items)
        .unwrap_or(&[])
        .iter()
        .map(|v| {
            (
                v.get("name").and_then(Node::as_str).unwrap_or("(unnamed)"),
                v,
            )
        })
        .collect()
}

fn host_path_volumes<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    volumes(pod)
        .into_iter()
        .filter_map(|(name, v)| {
            let (k, hp) = v.get_entry("hostPath")?;
            if hp.is_null() {
                return None;
            }
            let path = hp.get("path").and_then(Node::as_str).unwrap_or("?");
            Some(hit(k, format!("volume {name} hostPath {path}")))
        })
        .collect()
}

fn host_ports<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    let mut out = Vec::new();
    for c in pod.containers() {
        for p in c.node.get("ports").and_then(Node::items).unwrap_or(&[]) {
            if let Some(n) = p.get("hostPort")
                && int_of(n).is_some_and(|v| v != 0)
            {
                let port = n.as_str().unwrap_or("?");
                out.push(hit(n, format!("{} hostPort {port}", c.label())));
            }
        }
    }
    out
}

/// The AppArmor annotation prefix (deprecated since v1.30, still decided).
const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

fn apparmor<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    let mut out = Vec::new();
    let bad_type = |n: Option<&Node>| {
        n.and_then(Node::as_str)
            .is_some_and(|t| !matches!(t, "RuntimeDefault" | "Localhost"))
    };
    if let Some(n) = pod.security(&["appArmorProfile", "type"])
        && bad_type(Some(n))
    {
        out.push(hit(
            n,
            format!("pod appArmorProfile {}", n.as_str().unwrap_or("")),
        ));
    }
    for c in pod.containers() {
        let n = container_security(&c, &["appArmorProfile", "type"]);
        if let Some(n) = n
            && bad_type(Some(n))
        {
            let t = n.as_str().unwrap_or("");
            out.push(hit(n, format!("{} appArmorProfile {t}", c.label())));
        }
    }
    let annotations = pod.metadata.and_then(|m| m.get("annotations"));
    for (k, v) in annotations.and_then(Node::entries).unwrap_or(&[]) {
        let (Some(key), Some(value)) = (k.as_str(), v.as_str()) else {
            continue;
        };
        if key.starts_with(APPARMOR_ANNOTATION)
            && !(value.is_empty() || value == "runtime/default" || value.starts_with("localhost/"))
        {
            out.push(hit(k, format!("annotation {key}: {value}")));
        }
    }
    out
}

/// What is wrong with one `seLinuxOptions`, if anything.
fn selinux_problem(opts: &Node) -> Option<(&Node, String)> {
    if let Some(t) = opts.get("type")
        && let Some(v) = t.as_str()
        && !v.is_empty()
        && !SELINUX_TYPES.contains(&v)
    {
        return Some((t, format!("type {v}")));
    }
    for key in ["user", "role"] {
        if let Some(n) = opts.get(key)
            && n.as_str().is_some_and(|v| !v.is_empty())
        {
            return Some((n, format!("{key} {}", n.as_str().unwrap_or(""))));
        }
    }
    None
}

fn selinux<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    let mut out = Vec::new();
    if let Some(opts) = pod.security(&["seLinuxOptions"])
        && let Some((n, what)) = selinux_problem(opts)
    {
        out.push(hit(n, format!("pod seLinuxOptions {what}")));
    }
    for c in pod.containers() {
        if let Some(opts) = container_security(&c, &["seLinuxOptions"])
            && let Some((n, what)) = selinux_problem(opts)
        {
            out.push(hit(n, format!("{} seLinuxOptions {what}", c.label())));
        }
    }
    out
}

/// Containers whose `procMount` is set to anything but Default.
fn unmasked_proc<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    pod.containers()
        .into_iter()
        .filter_map(|c| {
            let n = container_security(&c, &["procMount"])?;
            let v = n.as_str()?;
            (v != "Default" && !v.is_empty())
                .then(|| hit(n, format!("{} procMount {v}", c.label())))
        })
        .collect()
}

/// Baseline: unmasked /proc is allowed in a user-namespace pod (policy v1.35+).
fn proc_mount<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    if pod.in_user_namespace() {
        return Vec::new();
    }
    unmasked_proc(pod)
}

/// Restricted: never, user namespace or not. Reported only where baseline let it through, as
/// a pod failing baseline's control fails this one too.
fn proc_mount_restricted<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    if !pod.in_user_namespace() {
        return Vec::new();
    }
    unmasked_proc(pod)
}

/// `host` of the probes and lifecycle handlers (httpGet, tcpSocket) of every container.
fn host_probes<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    let mut out = Vec::new();
    let handlers = [
        &["livenessProbe"][..],
        &["readinessProbe"],
        &["startupProbe"],
        &["lifecycle", "postStart"],
        &["lifecycle", "preStop"],
    ];
    for c in pod.containers() {
        for path in handlers {
            let Some(handler) = c.node.path(path) else {
                continue;
            };
            for action in ["httpGet", "tcpSocket"] {
                let Some(n) = handler.path(&[action, "host"]) else {
                    continue;
                };
                let host = n.as_str().unwrap_or("");
                if !matches!(host, "" | "127.0.0.1" | "::1") {
                    let what = format!("{} {} {action} host {host}", c.label(), path.join("."));
                    out.push(hit(n, what));
                }
            }
        }
    }
    out
}

fn git_repo_volumes<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    volumes(pod)
        .into_iter()
        .filter_map(|(name, v)| {
            let (k, val) = v.get_entry("gitRepo")?;
            (!val.is_null()).then(|| hit(k, format!("volume {name} is gitRepo")))
        })
        .collect()
}

fn ulimits<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    pod.containers()
        .into_iter()
        .filter_map(|c| {
            let n = container_security(&c, &["ulimits"])?;
            (!n.is_null()).then(|| hit(n, format!("{} sets ulimits", c.label())))
        })
        .collect()
}

fn cgroup_options<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    pod.containers()
        .into_iter()
        .filter_map(|c| {
            let n = container_security(&c, &["cgroupOptions", "mountMode"])?;
            let mode = n.as_str()?;
            (mode != "ReadOnly")
                .then(|| hit(n, format!("{} cgroupOptions.mountMode {mode}", c.label())))
        })
        .collect()
}

fn seccomp_baseline<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    let mut out = Vec::new();
    if let Some(n) = pod.security(&["seccompProfile", "type"])
        && n.as_str() == Some("Unconfined")
    {
        out.push(hit(n, "pod seccompProfile Unconfined"));
    }
    for c in pod.containers() {
        if let Some(n) = container_security(&c, &["seccompProfile", "type"])
            && n.as_str() == Some("Unconfined")
        {
            out.push(hit(n, format!("{} seccompProfile Unconfined", c.label())));
        }
    }
    out
}

fn sysctls<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    let list = pod.security(&["sysctls"]).and_then(Node::items);
    list.unwrap_or(&[])
        .iter()
        .filter_map(|s| {
            let n = s.get("name")?;
            let name = n.as_str()?;
            (!SAFE_SYSCTLS.contains(&name)).then(|| hit(n, format!("sysctl {name}")))
        })
        .collect()
}

fn volume_types<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    let mut out = Vec::new();
    for (name, v) in volumes(pod) {
        for (k, val) in v.entries().unwrap_or(&[]) {
            let Some(key) = k.as_str() else { continue };
            // gitRepo is baseline's (reported once, by the stricter level's rule).
            if key == "name"
                || key == "gitRepo"
                || val.is_null()
                || RESTRICTED_VOLUMES.contains(&key)
            {
                continue;
            }
            out.push(hit(k, format!("volume {name} is {key}")));
        }
    }
    out
}

fn privilege_escalation<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    if pod.is_windows() {
        return Vec::new();
    }
    pod.containers()
        .into_iter()
        .filter_map(|c| {
            let n = container_security(&c, &["allowPrivilegeEscalation"]);
            match n.and_then(bool_of) {
                Some(false) => None,
                Some(true) => Some(hit(
                    n.unwrap_or(c.node),
                    format!("{} allowPrivilegeEscalation: true", c.label()),
                )),
                None => Some(hit(
                    c.node,
                    format!("{} does not set allowPrivilegeEscalation: false", c.label()),
                )),
            }
        })
        .collect()
}

fn run_as_non_root<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    let mut out = Vec::new();
    // Root in a user namespace is not root on the node (KEP-127).
    if pod.in_user_namespace() {
        return out;
    }
    let pod_level = pod.security(&["runAsNonRoot"]);
    let pod_true = match pod_level.and_then(bool_of) {
        Some(true) => true,
        Some(false) => {
            out.push(hit(
                pod_level.unwrap_or(pod.spec),
                "pod runAsNonRoot: false",
            ));
            false
        }
        None => false,
    };
    for c in pod.containers() {
        let n = container_security(&c, &["runAsNonRoot"]);
        match n.and_then(bool_of) {
            Some(true) => {}
            Some(false) => out.push(hit(
                n.unwrap_or(c.node),
                format!("{} runAsNonRoot: false", c.label()),
            )),
            None if !pod_true => out.push(hit(
                c.node,
                format!(
                    "{} does not set runAsNonRoot: true, nor does the pod",
                    c.label()
                ),
            )),
            None => {}
        }
    }
    out
}

fn run_as_user<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    let mut out = Vec::new();
    if pod.in_user_namespace() {
        return out;
    }
    if let Some(n) = pod.security(&["runAsUser"])
        && int_of(n) == Some(0)
    {
        out.push(hit(n, "pod runAsUser: 0"));
    }
    for c in pod.containers() {
        if let Some(n) = container_security(&c, &["runAsUser"])
            && int_of(n) == Some(0)
        {
            out.push(hit(n, format!("{} runAsUser: 0", c.label())));
        }
    }
    out
}

fn valid_seccomp(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

fn seccomp_restricted<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    if pod.is_windows() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let pod_type = pod.security(&["seccompProfile", "type"]);
    let pod_ok = match pod_type.and_then(Node::as_str) {
        Some(t) if valid_seccomp(t) => true,
        Some(t) => {
            out.push(hit(
                pod_type.unwrap_or(pod.spec),
                format!("pod seccompProfile {t}"),
            ));
            false
        }
        None => false,
    };
    for c in pod.containers() {
        let n = container_security(&c, &["seccompProfile", "type"]);
        match n.and_then(Node::as_str) {
            Some(t) if valid_seccomp(t) => {}
            Some(t) => out.push(hit(
                n.unwrap_or(c.node),
                format!("{} seccompProfile {t}", c.label()),
            )),
            None if !pod_ok => out.push(hit(
                c.node,
                format!("{} sets no seccompProfile, nor does the pod", c.label()),
            )),
            None => {}
        }
    }
    out
}

fn capabilities_restricted<'a>(pod: &Pod<'a>) -> Vec<Hit<'a>> {
    if pod.is_windows() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in pod.containers() {
        out.extend(container_capabilities_restricted(&c));
    }
    out
}

fn container_capabilities_restricted<'a>(c: &Container<'a>) -> Vec<Hit<'a>> {
    let mut out = Vec::new();
    let drop = container_security(c, &["capabilities", "drop"]);
    if !strings(drop).iter().any(|(_, cap)| *cap == "ALL") {
        out.push(hit(
            drop.unwrap_or(c.node),
            format!("{} does not drop ALL", c.label()),
        ));
    }
    for (n, cap) in strings(container_security(c, &["capabilities", "add"])) {
        if cap != "NET_BIND_SERVICE" {
            out.push(hit(n, format!("{} adds {cap}", c.label())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::compose::yaml;
    use crate::audit::k8s::Object;

    /// The rule ids a pod spec (YAML under `spec:`) violates at `level`, with their severity.
    fn violations(spec: &str, level: PssLevel) -> Vec<(String, Severity)> {
        let text = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n{spec}");
        let root = yaml::parse(&text).unwrap().unwrap();
        let pod = Object::of(&root).unwrap().pod().unwrap();
        check(&pod, "pod.yaml", level)
            .into_iter()
            .map(|f| (f.rule, f.severity))
            .collect()
    }

    fn ids(spec: &str) -> Vec<String> {
        violations(spec, PssLevel::Baseline)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    const RESTRICTED_OK: &str = "  securityContext:
    runAsNonRoot: true
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: c
    image: x
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
";

    #[test]
    fn a_restricted_pod_passes_every_control() {
        assert_eq!(ids(RESTRICTED_OK), Vec::<String>::new());
    }

    #[test]
    fn a_minimal_pod_passes_baseline_and_fails_four_restricted_controls() {
        let v = violations("  containers: [{name: c, image: x}]\n", PssLevel::Baseline);
        let mut got: Vec<&str> = v.iter().map(|(id, _)| id.as_str()).collect();
        got.sort();
        assert_eq!(
            got,
            [
                "k8s.pss.restricted.capabilities",
                "k8s.pss.restricted.privilege-escalation",
                "k8s.pss.restricted.run-as-non-root",
                "k8s.pss.restricted.seccomp",
            ]
        );
        assert!(v.iter().all(|(_, s)| *s == Severity::Low));
        let v = violations(
            "  containers: [{name: c, image: x}]\n",
            PssLevel::Restricted,
        );
        assert!(v.iter().all(|(_, s)| *s == Severity::High));
    }

    #[test]
    fn baseline_controls_fail_on_their_fields() {
        let cases = [
            ("  hostPID: true\n", "host-namespaces"),
            ("  hostNetwork: yes\n", "host-namespaces"),
            (
                "  securityContext: {windowsOptions: {hostProcess: true}}\n",
                "host-process",
            ),
            (
                "  volumes: [{name: h, hostPath: {path: /}}]\n",
                "host-path-volumes",
            ),
            (
                "  securityContext: {sysctls: [{name: kernel.msgmax, value: '1'}]}\n",
                "sysctls",
            ),
            (
                "  securityContext: {seccompProfile: {type: Unconfined}}\n",
                "seccomp",
            ),
            (
                "  securityContext: {seLinuxOptions: {type: spc_t}}\n",
                "selinux",
            ),
            (
                "  securityContext: {seLinuxOptions: {user: system_u}}\n",
                "selinux",
            ),
            (
                "  securityContext: {appArmorProfile: {type: Unconfined}}\n",
                "apparmor",
            ),
        ];
        for (spec, control) in cases {
            let spec = format!("{spec}  containers: [{{name: c, image: x}}]\n");
            let got = ids(&spec);
            assert!(
                got.contains(&format!("k8s.pss.baseline.{control}")),
                "{spec}: {got:?}"
            );
        }
        let container_cases = [
            ("privileged: true", "privileged"),
            ("capabilities: {add: [SYS_ADMIN]}", "capabilities"),
            ("procMount: Unmasked", "proc-mount"),
            ("seccompProfile: {type: Unconfined}", "seccomp"),
            ("seLinuxOptions: {role: sysadm_r}", "selinux"),
            ("appArmorProfile: {type: Unconfined}", "apparmor"),
            ("windowsOptions: {hostProcess: true}", "host-process"),
        ];
        for (sc, control) in container_cases {
            for list in ["containers", "initContainers", "ephemeralContainers"] {
                let spec =
                    format!("  {list}: [{{name: c, image: x, securityContext: {{{sc}}}}}]\n");
                let got = ids(&spec);
                assert!(
                    got.contains(&format!("k8s.pss.baseline.{control}")),
                    "{spec}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn baseline_allowed_values_pass() {
        let spec = "  hostNetwork: false
  securityContext:
    sysctls: [{name: net.ipv4.tcp_keepalive_time, value: '60'}]
    seLinuxOptions: {type: container_init_t, level: 's0:c123,c456'}
    appArmorProfile: {type: Localhost, localhostProfile: k8s-apparmor-example}
  containers:
  - name: c
    image: x
    ports: [{containerPort: 80, hostPort: 0}]
    securityContext:
      privileged: false
      procMount: Default
      capabilities: {add: [CHOWN, NET_BIND_SERVICE, SYS_CHROOT]}
      seccompProfile: {type: Localhost, localhostProfile: p.json}
";
        let got: Vec<String> = ids(spec)
            .into_iter()
            .filter(|id| id.starts_with("k8s.pss.baseline."))
            .collect();
        assert_eq!(got, Vec::<String>::new());
    }

    #[test]
    fn apparmor_annotations_are_decided_too() {
        let text = "apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    metadata:
      annotations:
        container.apparmor.security.beta.kubernetes.io/a: localhost/prof
        container.apparmor.security.beta.kubernetes.io/b: unconfined
    spec:
      containers: [{name: a, image: x}, {name: b, image: x}]
";
        let root = yaml::parse(text).unwrap().unwrap();
        let pod = Object::of(&root).unwrap().pod().unwrap();
        let f: Vec<Finding> = check(&pod, "d.yaml", PssLevel::Baseline)
            .into_iter()
            .filter(|f| f.rule == APPARMOR.id)
            .collect();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].location.to_string(), "d.yaml:9:9");
    }

    #[test]
    fn run_as_non_root_inherits_from_the_pod_as_admission_does() {
        let rule = "k8s.pss.restricted.run-as-non-root".to_string();
        let c = |sc: &str| format!("  containers: [{{name: c, image: x{sc}}}]\n");
        // Pod true, container unset: allowed.
        let spec = format!("  securityContext: {{runAsNonRoot: true}}\n{}", c(""));
        assert!(!ids(&spec).contains(&rule));
        // Pod unset, container true: allowed.
        assert!(!ids(&c(", securityContext: {runAsNonRoot: true}")).contains(&rule));
        // Pod true, container false: fails.
        let spec = format!(
            "  securityContext: {{runAsNonRoot: true}}\n{}",
            c(", securityContext: {runAsNonRoot: false}")
        );
        assert!(ids(&spec).contains(&rule));
        // Pod false, container true: still fails (the pod sets it false explicitly).
        let spec = format!(
            "  securityContext: {{runAsNonRoot: false}}\n{}",
            c(", securityContext: {runAsNonRoot: true}")
        );
        assert!(ids(&spec).contains(&rule));
    }

    #[test]
    fn seccomp_inherits_and_windows_pods_are_exempt() {
        let rule = "k8s.pss.restricted.seccomp".to_string();
        let spec = "  securityContext: {seccompProfile: {type: RuntimeDefault}}\n  containers: [{name: c, image: x}]\n";
        assert!(!ids(spec).contains(&rule));
        let spec = "  containers: [{name: c, image: x, securityContext: {seccompProfile: {type: Localhost}}}]\n";
        assert!(!ids(spec).contains(&rule));
        let spec = "  os: {name: windows}\n  containers: [{name: c, image: x}]\n";
        let got = ids(spec);
        assert_eq!(got, ["k8s.pss.restricted.run-as-non-root"], "{got:?}");
    }

    #[test]
    fn restricted_capabilities_need_drop_all_and_allow_only_net_bind_service() {
        let rule = "k8s.pss.restricted.capabilities".to_string();
        let c = |caps: &str| {
            format!(
                "  containers: [{{name: c, image: x, securityContext: {{capabilities: {caps}}}}}]\n"
            )
        };
        assert!(ids(&c("{drop: [NET_RAW]}")).contains(&rule));
        assert!(ids(&c("{drop: [ALL], add: [CHOWN]}")).contains(&rule));
        assert!(!ids(&c("{drop: [ALL], add: [NET_BIND_SERVICE]}")).contains(&rule));
    }

    #[test]
    fn restricted_volumes_and_uid_zero() {
        let spec = "  securityContext: {runAsUser: 0}
  volumes:
  - {name: a, configMap: {name: x}}
  - {name: b, nfs: {server: s, path: /}}
  - {name: c}
  containers: [{name: c, image: x, securityContext: {runAsUser: 0}}]
";
        let got = ids(spec);
        let count = |id: &str| got.iter().filter(|g| *g == id).count();
        assert_eq!(count("k8s.pss.restricted.volume-types"), 1);
        assert_eq!(count("k8s.pss.restricted.run-as-user"), 2);
    }

    #[test]
    fn ulimits_and_writable_cgroups_fail_and_read_only_cgroups_pass() {
        let c = |sc: &str| {
            format!("  containers: [{{name: c, image: x, securityContext: {{{sc}}}}}]\n")
        };
        let got = ids(&c("ulimits: [{name: nofile, soft: 1024, hard: 2048}]"));
        assert!(
            got.contains(&"k8s.pss.baseline.ulimits".to_string()),
            "{got:?}"
        );
        let got = ids(&c("cgroupOptions: {mountMode: ReadWrite}"));
        assert!(
            got.contains(&"k8s.pss.restricted.cgroup-options".to_string()),
            "{got:?}"
        );
        let got = ids(&c("cgroupOptions: {mountMode: ReadOnly}"));
        assert!(
            !got.iter().any(|id| id.ends_with("cgroup-options")),
            "{got:?}"
        );
    }
}
