//! What no admission controller checks: secrets written into env values and ConfigMaps, host
//! paths that hand the node over (runtime sockets, `/`, `/proc`, the kubelet's directory), the
//! service-account token mounted by default, images by mutable tag, and missing limits.

use crate::audit::compose::yaml::Node;
use crate::audit::dockerfile::names::{is_literal_secret_value, is_secret_name};
use crate::audit::procs::checks::mounts::host_path_risk;
use crate::audit::secrets::SecretScanner;
use crate::audit::{Evidence, Finding, Rule, Severity};

use super::{Container, Object, Pod, at, bool_of, finding_on};

pub const SECRET_IN_ENV: Rule = Rule {
    id: "k8s.secret-in-env",
    severity: Severity::High,
    title: "Secret written in the manifest",
    description: "An `env` entry whose name says it is a secret has a literal `value:`. Manifests are committed and rendered into CI logs; the value is also readable by anyone who can `get` the pod.",
    remediation: "Put the value in a Secret (created outside the repository, or by a secret manager) and use `valueFrom: {secretKeyRef: …}` or `envFrom`.",
};

pub const RUNTIME_SOCKET_MOUNT: Rule = Rule {
    id: "k8s.runtime-socket-mount",
    severity: Severity::Critical,
    title: "Container runtime socket mounted",
    description: "A hostPath volume mounts the Docker, containerd or CRI-O socket: whoever controls the pod starts privileged containers on the node, read-only mount or not.",
    remediation: "Do not mount the runtime socket; use the Kubernetes API with narrow RBAC, or a dedicated build service.",
};

pub const SENSITIVE_HOST_PATH: Rule = Rule {
    id: "k8s.sensitive-host-path",
    severity: Severity::High,
    title: "Sensitive node path mounted",
    description: "A hostPath volume mounts the node's `/`, `/proc`, `/sys`, `/dev`, `/etc`, `/var/lib/kubelet` (every pod's secrets and tokens) or another sensitive tree: node credentials become readable and, writable, the node changeable. Critical for a writable `/`.",
    remediation: "Mount only the directory the workload needs, read-only, or use a projected/CSI volume.",
};

pub const AUTOMOUNT_TOKEN: Rule = Rule {
    id: "k8s.automount-service-account-token",
    severity: Severity::Info,
    title: "Service account token mounted",
    description: "The pod does not set `automountServiceAccountToken: false`, so its service account's API token is mounted in every container; a compromise of any of them talks to the API server with that account's rights.",
    remediation: "Set `automountServiceAccountToken: false` on pods (or the ServiceAccount) that do not call the Kubernetes API.",
};

pub const IMAGE_LATEST: Rule = Rule {
    id: "k8s.image-latest",
    severity: Severity::Medium,
    title: "Image by :latest or no tag",
    description: "The image has no tag or `:latest`: every node may run a different image, a rollout cannot be reproduced, and the default pull policy becomes Always.",
    remediation: "Pin the image by digest (`image: repo@sha256:…`), or at least a version tag.",
};

pub const IMAGE_NO_DIGEST: Rule = Rule {
    id: "k8s.image-no-digest",
    severity: Severity::Low,
    title: "Image not pinned by digest",
    description: "The image is named by tag only; a tag can be moved (by the publisher or whoever gets its registry credentials) to different content.",
    remediation: "Pin by digest: `image: repo:tag@sha256:…` (Renovate and Dependabot keep digests current).",
};

pub const NO_MEMORY_LIMIT: Rule = Rule {
    id: "k8s.no-memory-limit",
    severity: Severity::Medium,
    title: "No memory limit",
    description: "The container has no `resources.limits.memory`: a leak or an attacker can use the node's memory until other pods are OOM-killed or evicted.",
    remediation: "Set `resources: {limits: {memory: 512Mi}}` (and a request).",
};

pub const NO_CPU_LIMIT: Rule = Rule {
    id: "k8s.no-cpu-limit",
    severity: Severity::Low,
    title: "No CPU limit",
    description: "The container has no `resources.limits.cpu`: it can take all the node's CPU from its neighbours (unless a LimitRange sets a default).",
    remediation: "Set `resources: {limits: {cpu: 500m}}`, or a namespace LimitRange.",
};

/// Every beyond-admission rule.
pub const RULES: &[Rule] = &[
    SECRET_IN_ENV,
    RUNTIME_SOCKET_MOUNT,
    SENSITIVE_HOST_PATH,
    AUTOMOUNT_TOKEN,
    IMAGE_LATEST,
    IMAGE_NO_DIGEST,
    NO_MEMORY_LIMIT,
    NO_CPU_LIMIT,
];

/// The checks of one pod.
pub fn check_pod(pod: &Pod, file: &str, scanner: &SecretScanner) -> Vec<Finding> {
    let mut out = host_paths(pod, file);
    let label = pod.object.label();
    match pod.spec.get("automountServiceAccountToken") {
        Some(n) if bool_of(n) == Some(false) => {}
        n => out.push(finding_on(
            &AUTOMOUNT_TOKEN,
            AUTOMOUNT_TOKEN.severity,
            file,
            n.unwrap_or(pod.spec),
            format!("{}: {label}", AUTOMOUNT_TOKEN.title),
            None,
        )),
    }
    for c in pod.containers() {
        out.extend(env_secrets(&c, &label, file, scanner));
        out.extend(image(&c, &label, file));
        if c.kind != super::ContainerKind::Ephemeral {
            out.extend(limits(&c, &label, file));
        }
    }
    out
}

/// The secret rules over the values of any object's `data` (ConfigMap) that are text.
pub fn check_object(obj: &Object, file: &str, scanner: &SecretScanner) -> Vec<Finding> {
    let entries = |field: &str| obj.node.get(field).and_then(Node::entries).unwrap_or(&[]);
    let mut out = Vec::new();
    match obj.kind {
        "ConfigMap" => {
            for (k, v) in entries("data") {
                let Some(text) = v.as_str() else { continue };
                let key = k.as_str().unwrap_or("");
                out.extend(scan_at(scanner, &format!("{key}={text}"), file, v));
            }
        }
        // A Secret committed with its values: `data:` values go through the secret engine's
        // Kubernetes rule (base64 that decodes to a credential, reported with its key),
        // `stringData:` values through the engine as `KEY=value`, like an environment.
        "Secret" => {
            for (k, v) in entries("data") {
                let Some(text) = v.as_str() else { continue };
                let key = k.as_str().unwrap_or("");
                let manifest = format!("kind: Secret\ndata:\n  {key}: {text}\n");
                out.extend(scan_at(scanner, &manifest, file, v));
            }
            for (k, v) in entries("stringData") {
                let Some(text) = v.as_str() else { continue };
                let key = k.as_str().unwrap_or("");
                out.extend(scan_at(scanner, &format!("{key}={text}"), file, v));
            }
        }
        _ => {}
    }
    out
}

/// Secret-engine hits in `text`, placed at `node` (the first line of a block scalar is
/// counted from the node's line).
fn scan_at(scanner: &SecretScanner, text: &str, file: &str, node: &Node) -> Vec<Finding> {
    scanner
        .scan_text(text)
        .into_iter()
        .map(|hit| hit.into_finding(at(file, node)))
        .collect()
}

fn env_secrets(c: &Container, label: &str, file: &str, scanner: &SecretScanner) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in c.node.get("env").and_then(Node::items).unwrap_or(&[]) {
        let (Some(name), Some(v)) = (e.get("name").and_then(Node::as_str), e.get("value")) else {
            continue;
        };
        let Some(value) = v.as_str() else { continue };
        let engine = scan_at(scanner, &format!("{name}={value}"), file, v);
        if engine.is_empty() && is_secret_name(name) && is_literal_secret_value(value) {
            out.push(finding_on(
                &SECRET_IN_ENV,
                SECRET_IN_ENV.severity,
                file,
                v,
                format!("{label}: {} sets {name} to a literal secret", c.label()),
                Some(Evidence::secret(value)),
            ));
        }
        out.extend(engine);
    }
    out
}

fn host_paths(pod: &Pod, file: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let label = pod.object.label();
    for v in pod.spec.get("volumes").and_then(Node::items).unwrap_or(&[]) {
        let Some(path_node) = v.path(&["hostPath", "path"]) else {
            continue;
        };
        let Some(path) = path_node.as_str() else {
            continue;
        };
        let name = v.get("name").and_then(Node::as_str).unwrap_or("");
        let read_only = mounted_read_only(pod, name);
        let trimmed = match path.trim_end_matches('/') {
            "" => "/",
            p => p,
        };
        let kubelet = trimmed == "/var/lib/kubelet" || trimmed.starts_with("/var/lib/kubelet/");
        let (rule, severity, what) = match host_path_risk(trimmed, read_only) {
            Some(r) if r.rule.id.ends_with("runtime-socket") => {
                (&RUNTIME_SOCKET_MOUNT, RUNTIME_SOCKET_MOUNT.severity, r.what)
            }
            Some(r) => (&SENSITIVE_HOST_PATH, r.severity, r.what),
            None if kubelet => (
                &SENSITIVE_HOST_PATH,
                Severity::High,
                format!("host {trimmed}, the kubelet's pod secrets and tokens"),
            ),
            None => continue,
        };
        out.push(finding_on(
            rule,
            severity,
            file,
            path_node,
            format!("{}: {label} volume {name} mounts {what}", rule.title),
            Some(Evidence::plain(path)),
        ));
    }
    out
}

/// Whether every mount of volume `name` is read-only (and there is at least one).
fn mounted_read_only(pod: &Pod, name: &str) -> bool {
    let mounts: Vec<&Node> = pod
        .containers()
        .iter()
        .flat_map(|c| {
            c.node
                .get("volumeMounts")
                .and_then(Node::items)
                .unwrap_or(&[])
        })
        .filter(|m| m.get("name").and_then(Node::as_str) == Some(name))
        .collect();
    !mounts.is_empty()
        && mounts
            .iter()
            .all(|m| m.get("readOnly").and_then(bool_of) == Some(true))
}

/// The tag of an image reference (`None` when it has none), and whether it has a digest.
fn tag_and_digest(image: &str) -> (Option<&str>, bool) {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    (last.split_once(':').map(|(_, t)| t), digest)
}

fn image(c: &Container, label: &str, file: &str) -> Vec<Finding> {
    let Some(n) = c.node.get("image") else {
        return Vec::new();
    };
    let Some(image) = n.as_str() else {
        return Vec::new();
    };
    let (tag, digest) = tag_and_digest(image);
    let rule = match (tag, digest) {
        (_, true) => return Vec::new(),
        (None | Some("latest"), false) => &IMAGE_LATEST,
        (Some(_), false) => &IMAGE_NO_DIGEST,
    };
    vec![finding_on(
        rule,
        rule.severity,
        file,
        n,
        format!("{}: {label} {} uses {image}", rule.title, c.label()),
        Some(Evidence::plain(image)),
    )]
}

fn limits(c: &Container, label: &str, file: &str) -> Vec<Finding> {
    let limits = c.node.path(&["resources", "limits"]);
    [(&NO_MEMORY_LIMIT, "memory"), (&NO_CPU_LIMIT, "cpu")]
        .into_iter()
        .filter(|(_, key)| limits.and_then(|l| l.get(key)).is_none())
        .map(|(rule, _)| {
            finding_on(
                rule,
                rule.severity,
                file,
                c.node,
                format!("{}: {label} {}", rule.title, c.label()),
                None,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Location;
    use crate::audit::compose::yaml;

    fn run(text: &str) -> Vec<Finding> {
        let scanner = SecretScanner::builtin().unwrap();
        let root = yaml::parse(text).unwrap().unwrap();
        let obj = Object::of(&root).unwrap();
        let mut out = check_object(&obj, "m.yaml", &scanner);
        if let Some(pod) = obj.pod() {
            out.extend(check_pod(&pod, "m.yaml", &scanner));
        }
        out
    }

    #[test]
    fn secret_objects_are_read_for_their_values() {
        // base64 of a synthetic password, and a plain one under stringData.
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ntype: Opaque\ndata:\n  password: WnE4djJMbVg5clRiNE5jVw==\n  empty: ''\nstringData:\n  DB_PASSWORD: Hk29sLq8VwQmZ3\n";
        let found: Vec<(String, u32)> = run(text)
            .iter()
            .map(|f| {
                let Location::File { line, .. } = &f.location else {
                    panic!("{f:?}")
                };
                (f.rule.to_string(), line.unwrap_or(0))
            })
            .collect();
        assert_eq!(
            found,
            [
                ("secret.kubernetes-secret".to_string(), 6),
                ("secret.generic-password".to_string(), 9)
            ],
            "{found:?}"
        );
        // A ConfigMap's base64-looking value is not a Secret's.
        let config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  features: WnE4djJMbVg5clRiNE5jVw==\n";
        assert!(run(config).is_empty());
    }

    #[test]
    fn image_references() {
        assert_eq!(tag_and_digest("nginx"), (None, false));
        assert_eq!(tag_and_digest("localhost:5000/app"), (None, false));
        assert_eq!(
            tag_and_digest("localhost:5000/app:1.2"),
            (Some("1.2"), false)
        );
        assert_eq!(tag_and_digest("app:1@sha256:ab"), (Some("1"), true));
    }

    #[test]
    fn host_paths_env_secrets_token_images_and_limits() {
        let password = format!("{}{}", "Zq8-vT4p", "Lm2xR7wK");
        let text = format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  volumes:
  - {{name: sock, hostPath: {{path: /var/run/docker.sock}}}}
  - {{name: root, hostPath: {{path: /}}}}
  - {{name: kubelet, hostPath: {{path: /var/lib/kubelet/}}}}
  - {{name: data, hostPath: {{path: /data/app}}}}
  containers:
  - name: app
    image: nginx
    env:
    - {{name: DB_PASSWORD, value: {password}}}
    - {{name: LOG_LEVEL, value: debug}}
    resources: {{limits: {{memory: 1Gi}}}}
    volumeMounts: [{{name: root, mountPath: /host, readOnly: true}}]
"
        );
        let f = run(&text);
        let got: Vec<String> = f
            .iter()
            .map(|f| format!("{} {} {}", f.rule, f.severity, f.location))
            .collect();
        assert_eq!(
            got,
            [
                "k8s.runtime-socket-mount critical m.yaml:6:35",
                "k8s.sensitive-host-path high m.yaml:7:35",
                "k8s.sensitive-host-path high m.yaml:8:38",
                "k8s.automount-service-account-token info m.yaml:5:10",
                "secret.generic-password high m.yaml:14:34",
                "k8s.image-latest medium m.yaml:12:12",
                "k8s.no-cpu-limit low m.yaml:11:9",
            ],
            "{got:#?}"
        );
        for finding in &f {
            let shown = format!("{finding:?}");
            assert!(
                !shown.contains(&password[4..12]),
                "leaked in {}",
                finding.rule
            );
        }
    }

    #[test]
    fn pinned_limited_tokenless_pods_are_clean() {
        let text = "apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      automountServiceAccountToken: false
      containers:
      - name: app
        image: registry.example/app:1.4@sha256:0123
        env: [{name: PASSWORD_FILE, value: /run/secrets/db}]
        resources: {limits: {memory: 128Mi, cpu: 100m}}
";
        assert_eq!(run(text), Vec::new());
    }
}
