//! `rsafe audit` for Kubernetes manifests: the Pod Security Standards decided as the
//! pod-security admission controller decides them ([`pss`]), and what no admission controller
//! looks at — secrets written into env values, host paths that hand over the node, images by
//! mutable tag, missing limits ([`checks`]).
//!
//! Manifests come as multi-document YAML streams (`kubectl apply -f`, `helm template` output)
//! and `List` objects; every workload kind with a pod template is audited, with init and
//! ephemeral containers. The YAML is read by the compose auditor's reader ([`yaml`]), so each
//! finding carries the line of the key that causes it.
#![forbid(unsafe_code)]

pub mod checks;
pub mod pss;
pub mod rbac;

use crate::bounded;
use std::path::{Path, PathBuf};

use crate::audit::compose::yaml::{self, Node, Value};
use crate::audit::secrets::SecretScanner;
use crate::audit::{Finding, Location, Rule};

pub use pss::PssLevel;

/// A manifest larger than this is refused: Kubernetes itself refuses objects past 1.5 MiB
/// (etcd's limit), so a stream of this size is not a set of manifests.
pub const MAX_MANIFEST_BYTES: u64 = crate::bounded::SOURCE;

/// Why manifests could not be audited at all (a bad document is a note, not an error).
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {size} bytes, more than the {max} bytes a manifest stream may have", path.display())]
    TooLarge { path: PathBuf, size: u64, max: u64 },
}

/// Knobs of a manifest audit.
#[derive(Debug, Clone, Copy, Default)]
pub struct K8sOptions {
    /// The Pod Security Standards level whose violations are failures.
    pub pss: PssLevel,
}

/// The findings of a manifest audit, and what was skipped or unreadable (one line each,
/// naming the file and line).
#[derive(Debug, Clone, Default)]
pub struct K8sAudit {
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
    /// Kubernetes objects read (any kind).
    pub objects: usize,
}

/// One YAML document of a stream: its first line in the file and its tree (lines are the
/// file's).
#[derive(Debug, Clone)]
pub struct Document {
    pub line: u32,
    pub root: Option<Node>,
}

/// Splits a YAML stream at its document markers (`---` and `...` at column 0, which end any
/// scalar in YAML 1.2, so the split is exact) and parses each document with positions. A
/// document that does not parse is an `Err` with its message; the others are unaffected.
pub fn documents(text: &str) -> Vec<Result<Document, yaml::YamlError>> {
    split_documents(text)
        .into_iter()
        .map(|(start, doc)| parse_at(&doc, start))
        .collect()
}

/// The documents of a stream as `(first line, text)`, unparsed; blank ones left out.
fn split_documents(text: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 1u32;
    let flush = |current: &mut String, start: u32, out: &mut Vec<_>| {
        if !current.trim().is_empty() {
            out.push((start, std::mem::take(current)));
        }
        current.clear();
    };
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let n = i as u32 + 1;
        let marker = ["---", "..."].iter().find(|m| {
            line.strip_prefix(**m)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
        });
        match marker {
            Some(m) => {
                flush(&mut current, start, &mut out);
                start = n;
                // `--- {a: 1}`: the rest of the line belongs to the next document; keep its
                // columns by blanking the marker.
                if *m == "---" {
                    current.push_str("   ");
                    current.push_str(&line[3..]);
                } else {
                    current.push('\n');
                }
            }
            None => current.push_str(line),
        }
    }
    flush(&mut current, start, &mut out);
    out
}

/// Parses one document whose first line is line `start` of the file.
fn parse_at(text: &str, start: u32) -> Result<Document, yaml::YamlError> {
    let shift = start - 1;
    match yaml::parse(text) {
        Ok(mut root) => {
            if let Some(r) = root.as_mut() {
                shift_lines(r, shift);
            }
            Ok(Document { line: start, root })
        }
        Err(mut e) => {
            e.line += shift;
            Err(e)
        }
    }
}

fn shift_lines(n: &mut Node, by: u32) {
    n.line += by;
    match &mut n.value {
        Value::Scalar { .. } => {}
        Value::Seq(items) => items.iter_mut().for_each(|i| shift_lines(i, by)),
        Value::Map(entries) => {
            for (k, v) in entries {
                shift_lines(k, by);
                shift_lines(v, by);
            }
        }
    }
}

/// A Kubernetes object: a mapping with `apiVersion` and `kind`.
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub node: &'a Node,
}

impl<'a> Object<'a> {
    /// The object in `node`, if it is one.
    pub fn of(node: &'a Node) -> Option<Object<'a>> {
        node.get("apiVersion")?.as_str()?;
        let kind = node.get("kind")?.as_str()?;
        let name = node
            .path(&["metadata", "name"])
            .or_else(|| node.path(&["metadata", "generateName"]))
            .and_then(Node::as_str)
            .unwrap_or("(unnamed)");
        Some(Object { kind, name, node })
    }

    /// `Kind/name`, as kubectl names objects.
    pub fn label(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// The pod template of a workload: the pod spec and the metadata beside it (annotations).
    pub fn pod(&self) -> Option<Pod<'a>> {
        let template: &[&str] = match self.kind {
            "Pod" => &[],
            "Deployment"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicaSet"
            | "ReplicationController"
            | "Job" => &["spec", "template"],
            "CronJob" => &["spec", "jobTemplate", "spec", "template"],
            "PodTemplate" => &["template"],
            _ => return None,
        };
        let holder = if template.is_empty() {
            self.node
        } else {
            self.node.path(template)?
        };
        let spec = holder.get("spec")?;
        spec.entries()?;
        Some(Pod {
            object: *self,
            spec,
            metadata: holder.get("metadata"),
        })
    }
}

/// Whether a kind is a workload rsafe audits (has a pod template).
pub fn is_workload_kind(kind: &str) -> bool {
    matches!(
        kind,
        "Pod"
            | "Deployment"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicaSet"
            | "ReplicationController"
            | "Job"
            | "CronJob"
            | "PodTemplate"
    )
}

/// Kinds read for something other than a pod (secret scans) or known to hold nothing to audit:
/// not noted as skipped.
fn is_known_kind(kind: &str) -> bool {
    is_workload_kind(kind)
        || matches!(
            kind,
            "ConfigMap"
                | "Secret"
                | "Service"
                | "ServiceAccount"
                | "Namespace"
                | "Ingress"
                | "NetworkPolicy"
                | "PersistentVolumeClaim"
                | "HorizontalPodAutoscaler"
                | "PodDisruptionBudget"
                | "Role"
                | "ClusterRole"
                | "RoleBinding"
                | "ClusterRoleBinding"
                | "Endpoints"
                | "EndpointSlice"
                | "StorageClass"
                | "PriorityClass"
                | "LimitRange"
                | "ResourceQuota"
                | "CustomResourceDefinition"
                | "IngressClass"
                | "ValidatingWebhookConfiguration"
                | "MutatingWebhookConfiguration"
                | "ValidatingAdmissionPolicy"
                | "ValidatingAdmissionPolicyBinding"
                | "APIService"
                | "PersistentVolume"
                | "RuntimeClass"
                | "CSIDriver"
                | "Lease"
        )
}

/// A pod spec and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Pod<'a> {
    pub object: Object<'a>,
    pub spec: &'a Node,
    /// The pod's (or template's) metadata, for the AppArmor annotations.
    pub metadata: Option<&'a Node>,
}

/// Which list of a pod spec a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Container,
    Init,
    Ephemeral,
}

/// A container of a pod.
#[derive(Debug, Clone, Copy)]
pub struct Container<'a> {
    pub kind: ContainerKind,
    pub name: &'a str,
    pub node: &'a Node,
}

impl Container<'_> {
    /// `container app`, `init container setup`, `ephemeral container debug`.
    pub fn label(&self) -> String {
        let what = match self.kind {
            ContainerKind::Container => "container",
            ContainerKind::Init => "init container",
            ContainerKind::Ephemeral => "ephemeral container",
        };
        format!("{what} {}", self.name)
    }
}

impl<'a> Pod<'a> {
    /// Every container: `containers`, `initContainers`, `ephemeralContainers` (the lists the
    /// admission controller visits).
    pub fn containers(&self) -> Vec<Container<'a>> {
        let lists = [
            ("containers", ContainerKind::Container),
            ("initContainers", ContainerKind::Init),
            ("ephemeralContainers", ContainerKind::Ephemeral),
        ];
        let mut out = Vec::new();
        for (key, kind) in lists {
            for node in self.spec.get(key).and_then(Node::items).unwrap_or(&[]) {
                let name = node
                    .get("name")
                    .and_then(Node::as_str)
                    .unwrap_or("(unnamed)");
                out.push(Container { kind, name, node });
            }
        }
        out
    }

    /// `spec.securityContext.<path>`.
    pub fn security(&self, path: &[&str]) -> Option<&'a Node> {
        self.spec.get("securityContext")?.path(path)
    }

    /// Whether the pod says it runs on Windows (`spec.os.name: windows`): the standard exempts
    /// such pods from the Linux-only restricted controls.
    pub fn is_windows(&self) -> bool {
        self.spec.path(&["os", "name"]).and_then(Node::as_str) == Some("windows")
    }

    /// Whether the pod runs in a user namespace (`spec.hostUsers: false`): admission then lets
    /// it run as uid 0 inside and unmask /proc at baseline (KEP-127).
    pub fn in_user_namespace(&self) -> bool {
        self.spec.get("hostUsers").and_then(bool_of) == Some(false)
    }
}

/// `securityContext.<path>` of a container.
pub fn container_security<'a>(c: &Container<'a>, path: &[&str]) -> Option<&'a Node> {
    c.node.get("securityContext")?.path(path)
}

/// A YAML boolean as Kubernetes' YAML reader (YAML 1.1 through sigs.k8s.io/yaml) takes it.
pub fn bool_of(n: &Node) -> Option<bool> {
    if matches!(&n.value, Value::Scalar { quoted: true, .. }) {
        return None;
    }
    match n.as_str()?.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "y" => Some(true),
        "false" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
}

/// An integer scalar.
pub fn int_of(n: &Node) -> Option<i64> {
    n.as_str()?.trim().parse().ok()
}

/// Where a node is in `path`.
pub fn at(path: &str, n: &Node) -> Location {
    Location::File {
        path: path.to_string(),
        line: Some(n.line),
        column: Some(n.column),
    }
}

/// A finding of `rule` on `obj` at `node`, its title naming the object and what is wrong.
pub fn finding_on(
    rule: &Rule,
    severity: crate::audit::Severity,
    file: &str,
    node: &Node,
    title: String,
    evidence: Option<crate::audit::Evidence>,
) -> Finding {
    let mut f = rule.finding_at(severity, at(file, node), evidence);
    f.title = title;
    f
}

/// Every rule of the manifest audit, for `rsafe rules` and reports.
pub fn rules() -> impl Iterator<Item = &'static Rule> {
    pss::RULES.iter().chain(checks::RULES).chain(rbac::RULES)
}

/// Whether a kind is audited for its RBAC rules or bindings.
pub fn is_rbac_kind(kind: &str) -> bool {
    matches!(
        kind,
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
    )
}

/// Whether `text` holds at least one Kubernetes workload or RBAC object (a document with
/// `apiVersion` and such a `kind`, or a `List` of them): how `rsafe audit` tells a manifest
/// from other YAML.
pub fn looks_like_manifest(text: &str) -> bool {
    if !(text.contains("apiVersion") && text.contains("kind")) {
        return false;
    }
    fn has_workload(n: &Node) -> bool {
        match Object::of(n) {
            Some(o) if is_workload_kind(o.kind) || is_rbac_kind(o.kind) => true,
            Some(_) => n
                .get("items")
                .and_then(Node::items)
                .is_some_and(|items| items.iter().any(has_workload)),
            None => false,
        }
    }
    // Parsed one at a time, stopping at the first: a large stream is recognised by its head.
    split_documents(text).iter().any(|(start, doc)| {
        doc.contains("kind")
            && parse_at(doc, *start).is_ok_and(|d| d.root.as_ref().is_some_and(has_workload))
    })
}

/// Audits a manifest stream read from `file` (a path or `-`).
pub fn audit_text(
    text: &str,
    file: &str,
    scanner: &SecretScanner,
    options: &K8sOptions,
) -> K8sAudit {
    let docs = documents(text);
    // Bindings are judged by the roles they bind: index the stream's roles first.
    let mut roles = rbac::RoleIndex::default();
    for root in docs.iter().filter_map(|d| d.as_ref().ok()?.root.as_ref()) {
        index_roles(root, &mut roles);
    }
    audit_documents(docs, file, scanner, options, &roles)
}

/// The roles of a manifest stream, for judging bindings kept in other files of a directory
/// (kube-prometheus keeps each ClusterRole and its binding in files of their own). Only a
/// stream that names a role kind is parsed.
fn index_text(text: &str, roles: &mut rbac::RoleIndex) {
    if !text.contains("Role") {
        return;
    }
    for doc in documents(text).iter().filter_map(|d| d.as_ref().ok()) {
        if let Some(root) = &doc.root {
            index_roles(root, roles);
        }
    }
}

/// Audits parsed documents of `file`, bindings judged with `roles`.
fn audit_documents(
    docs: Vec<Result<Document, yaml::YamlError>>,
    file: &str,
    scanner: &SecretScanner,
    options: &K8sOptions,
    roles: &rbac::RoleIndex,
) -> K8sAudit {
    let mut audit = K8sAudit::default();
    let ctx = Context {
        file,
        scanner,
        options,
        roles,
    };
    for doc in docs {
        match doc {
            Err(e) => audit.notes.push(format!(
                "{file}:{}:{}: invalid YAML, document skipped: {}",
                e.line, e.column, e.message
            )),
            Ok(Document { root: None, .. }) => {}
            Ok(Document {
                root: Some(root),
                line,
            }) => audit_node(&root, line, &ctx, &mut audit),
        }
    }
    crate::audit::dockerfile::dedupe(&mut audit.findings);
    audit
}

/// What every document of a stream is audited with.
struct Context<'a> {
    file: &'a str,
    scanner: &'a SecretScanner,
    options: &'a K8sOptions,
    roles: &'a rbac::RoleIndex,
}

/// Records the roles of a document (and of a `List`'s items).
fn index_roles(node: &Node, roles: &mut rbac::RoleIndex) {
    let Some(obj) = Object::of(node) else { return };
    match node.get("items").and_then(Node::items) {
        Some(items) if obj.kind.ends_with("List") => {
            items.iter().for_each(|i| index_roles(i, roles));
        }
        _ => roles.add(&obj),
    }
}

/// Audits one document's object, and the items of a `List`.
fn audit_node(node: &Node, line: u32, ctx: &Context, audit: &mut K8sAudit) {
    let Context {
        file,
        scanner,
        options,
        roles,
    } = *ctx;
    let Some(obj) = Object::of(node) else {
        audit.notes.push(format!(
            "{file}:{}: not a Kubernetes object (no apiVersion and kind), skipped",
            node.line.max(line)
        ));
        return;
    };
    audit.objects += 1;
    if let Some(items) = node.get("items").and_then(Node::items)
        && obj.kind.ends_with("List")
    {
        for item in items {
            audit_node(item, item.line, ctx, audit);
        }
        return;
    }
    if let Some(pod) = obj.pod() {
        audit.findings.extend(pss::check(&pod, file, options.pss));
        audit
            .findings
            .extend(checks::check_pod(&pod, file, scanner));
    } else if is_workload_kind(obj.kind) {
        audit.notes.push(format!(
            "{file}:{}: {} has no pod spec, skipped",
            node.line,
            obj.label()
        ));
    } else if !is_known_kind(obj.kind) {
        audit.notes.push(format!(
            "{file}:{}: {} is not a kind rsafe audits (custom resource?), skipped",
            node.line,
            obj.label()
        ));
    }
    audit
        .findings
        .extend(checks::check_object(&obj, file, scanner));
    audit.findings.extend(rbac::check(&obj, file, roles));
}

/// Audits a manifest file, or every `.yaml`/`.yml`/`.json` manifest below a directory (files
/// that hold no Kubernetes object are left out without a note).
pub fn audit_path(
    path: &Path,
    scanner: &SecretScanner,
    options: &K8sOptions,
) -> Result<K8sAudit, K8sError> {
    let mut files = Vec::new();
    if path.is_dir() {
        collect_yaml(path, &mut files)?;
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    // Two passes: the roles of every file first (read again below rather than kept, so a
    // large directory is not held in memory whole), then each file audited against them.
    let mut manifests = Vec::new();
    let mut roles = rbac::RoleIndex::default();
    for f in files {
        let text = read_limited(&f)?;
        if path.is_dir() && !looks_like_manifest(&text) {
            continue;
        }
        index_text(&text, &mut roles);
        manifests.push(f);
    }
    let mut audit = K8sAudit::default();
    for f in manifests {
        let text = read_limited(&f)?;
        let file = f.display().to_string();
        let one = audit_documents(documents(&text), &file, scanner, options, &roles);
        audit.findings.extend(one.findings);
        audit.notes.extend(one.notes);
        audit.objects += one.objects;
    }
    Ok(audit)
}

/// Reads a file, refusing one past [`MAX_MANIFEST_BYTES`].
pub fn read_limited(path: &Path) -> Result<String, K8sError> {
    let read = |source| K8sError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    let too_large = |size| K8sError::TooLarge {
        path: path.to_path_buf(),
        size,
        max: MAX_MANIFEST_BYTES,
    };
    if size > MAX_MANIFEST_BYTES {
        return Err(too_large(size));
    }
    // A device or pipe says 0 bytes: the read itself stops past the limit.
    let bytes = match bounded::read_file(path, MAX_MANIFEST_BYTES) {
        Ok(bytes) => bytes,
        Err(bounded::ReadError::TooLarge { .. }) => return Err(too_large(MAX_MANIFEST_BYTES + 1)),
        Err(bounded::ReadError::Io(e)) => return Err(read(e)),
    };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The YAML and JSON files below `dir`, hidden directories left out.
fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), K8sError> {
    let read = |source| K8sError::Read {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        let p = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let ft = entry.file_type().map_err(read)?;
        if ft.is_dir() {
            collect_yaml(&p, out)?;
        } else if ft.is_file() && is_manifest_name(&name) {
            out.push(p);
        }
    }
    Ok(())
}

/// `.yaml`, `.yml` or `.json`: the names manifests are kept under.
pub fn is_manifest_name(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.to_ascii_lowercase().ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_split_at_markers_with_file_lines() {
        let text =
            "# c\n---\napiVersion: v1\nkind: Pod\n---\n--- {apiVersion: v1, kind: List}\n...\n";
        let docs: Vec<Document> = documents(text).into_iter().map(|d| d.unwrap()).collect();
        assert_eq!(docs.len(), 3);
        assert!(
            docs[0].root.is_none(),
            "a comment alone is an empty document"
        );
        let docs = &docs[1..];
        let first = docs[0].root.as_ref().unwrap();
        assert_eq!(first.get("kind").unwrap().line, 4);
        let second = docs[1].root.as_ref().unwrap();
        assert_eq!(second.get("kind").unwrap().as_str(), Some("List"));
        assert_eq!(second.get("kind").unwrap().line, 6);
    }

    #[test]
    fn a_bad_document_does_not_hide_the_others() {
        let text = "a: [\n---\napiVersion: v1\nkind: Pod\n";
        let docs = documents(text);
        assert_eq!(docs.len(), 2);
        assert!(docs[0].is_err());
        assert!(docs[1].is_ok());
    }

    #[test]
    fn block_scalars_holding_dashes_stay_whole() {
        let text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  x: |\n    ---\n    y\n";
        let docs = documents(text);
        assert_eq!(docs.len(), 1);
        let root = docs[0].as_ref().unwrap().root.clone().unwrap();
        assert_eq!(
            root.path(&["data", "x"]).unwrap().as_str(),
            Some("---\ny\n")
        );
    }

    #[test]
    fn workloads_are_recognised_by_content() {
        assert!(looks_like_manifest(
            "apiVersion: batch/v1\nkind: CronJob\nspec: {}\n"
        ));
        assert!(looks_like_manifest(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n"
        ));
        assert!(!looks_like_manifest("services:\n  web:\n    image: x\n"));
        assert!(!looks_like_manifest("apiVersion: v1\nkind: Service\n"));
    }

    #[test]
    fn pod_templates_of_every_workload_kind() {
        let spec = "spec: {containers: [{name: c, image: x}]}";
        for (kind, wrap) in [
            ("Pod", spec.to_string()),
            ("Deployment", format!("spec: {{template: {{{spec}}}}}")),
            ("Job", format!("spec: {{template: {{{spec}}}}}")),
            (
                "CronJob",
                format!("spec: {{jobTemplate: {{spec: {{template: {{{spec}}}}}}}}}"),
            ),
        ] {
            let text = format!("apiVersion: v1\nkind: {kind}\n{wrap}\n");
            let root = yaml::parse(&text).unwrap().unwrap();
            let obj = Object::of(&root).unwrap();
            let pod = obj.pod().unwrap_or_else(|| panic!("{kind}"));
            assert_eq!(pod.containers()[0].name, "c", "{kind}");
        }
    }
}
