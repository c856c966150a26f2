//! RBAC in manifests: the grants Kubernetes' own "RBAC good practices" page lists as privilege
//! escalation risks (wildcards, `escalate`, `bind`, `impersonate`, reading Secrets, exec into
//! pods, creating workloads or PersistentVolumes, `nodes/proxy`, CSR approval, token requests,
//! admission webhooks, namespace labels) and bindings that hand a role to `cluster-admin`'s
//! holders or to everyone (`system:anonymous`, `system:unauthenticated`, `system:authenticated`).
//!
//! A rule matches a request exactly as the RBAC authorizer's `evaluation_helpers.go` does:
//! `*` or the exact API group, verb and resource, `*/sub` for a subresource of every resource
//! (`pods/*` matches no subresource). Cluster-scoped resources granted by a `Role` grant
//! nothing (a Role only reaches its namespace) and are not reported.

use std::collections::HashMap;

use crate::audit::compose::yaml::Node;
use crate::audit::{Evidence, Finding, Rule, Severity};

use super::{Object, finding_on};

macro_rules! rbac_rule {
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

rbac_rule!(
    WILDCARD,
    "k8s.rbac.wildcard",
    High,
    "Wildcard RBAC grant",
    "A Role or ClusterRole rule uses `*` for verbs or resources: it grants every current and future resource type (CRDs included) or every verb (escalate, bind, impersonate among them). Critical for a ClusterRole with `*` API groups, resources and verbs (a copy of cluster-admin), high when verbs and resources are both `*`, medium when one is.",
    "List the verbs and resources the subject needs."
);
rbac_rule!(
    ESCALATE,
    "k8s.rbac.escalate",
    High,
    "RBAC escalate verb",
    "`escalate` on roles or clusterroles lets the holder write a role with permissions it does not have, bypassing RBAC's escalation check.",
    "Remove `escalate`; let cluster administrators write roles."
);
rbac_rule!(
    BIND,
    "k8s.rbac.bind",
    High,
    "RBAC bind verb",
    "`bind` on roles or clusterroles lets the holder bind any role (cluster-admin included) to itself, bypassing RBAC's escalation check.",
    "Remove `bind`, or restrict it with `resourceNames` to the roles it may hand out."
);
rbac_rule!(
    IMPERSONATE,
    "k8s.rbac.impersonate",
    High,
    "RBAC impersonate verb",
    "`impersonate` on users, groups, service accounts or user extras lets the holder act as any of them (a `system:masters` member included).",
    "Remove `impersonate`, or restrict it with `resourceNames`."
);
rbac_rule!(
    SECRETS_READ,
    "k8s.rbac.secrets-read",
    High,
    "Secrets readable",
    "`get`, `list` or `watch` on secrets: `list` and `watch` return every Secret's contents too, service-account tokens included. High in a ClusterRole (every namespace when bound cluster-wide), medium in a Role.",
    "Grant `get` on the named Secrets only (`resourceNames`), or mount them into the pod instead."
);
rbac_rule!(
    POD_EXEC,
    "k8s.rbac.pod-exec",
    High,
    "Exec into pods",
    "`create` (or, before v1.31's websocket check, `get`) on pods/exec or pods/attach, or `update`/`patch` on pods/ephemeralcontainers, runs commands in other pods: their service-account tokens and mounted Secrets come with it. High in a ClusterRole, medium in a Role.",
    "Remove exec/attach rights from workloads' roles; give them to people through a break-glass role."
);
rbac_rule!(
    WORKLOAD_CREATE,
    "k8s.rbac.workload-create",
    Medium,
    "Creates workloads",
    "Creating or changing Pods or workload resources (Deployments, DaemonSets, StatefulSets, ReplicaSets, Jobs, CronJobs, ReplicationControllers) implicitly grants every Secret, ConfigMap and volume of the namespace and every service account's API rights; without Pod Security admission, the node too.",
    "Keep it to controllers that need it, and enforce the baseline or restricted Pod Security Standard in their namespaces."
);
rbac_rule!(
    PV_CREATE,
    "k8s.rbac.persistent-volume-create",
    High,
    "Creates PersistentVolumes",
    "Creating PersistentVolumes includes `hostPath` ones: a pod claiming it reads and writes the node's filesystem.",
    "Let a provisioner create volumes; users create PersistentVolumeClaims."
);
rbac_rule!(
    NODES_PROXY,
    "k8s.rbac.nodes-proxy",
    High,
    "Kubelet API through nodes/proxy",
    "Any right on nodes/proxy, `get` included (websocket upgrades need only `get`), reaches the kubelet API: commands in every pod on the node, with no audit log and no admission.",
    "Remove nodes/proxy; monitoring agents read nodes/metrics or nodes/stats instead."
);
rbac_rule!(
    CSR_APPROVAL,
    "k8s.rbac.csr-approval",
    High,
    "Approves certificate signing requests",
    "`update`/`patch` on certificatesigningrequests/approval (with `create` on certificatesigningrequests) issues client certificates with any name, system components' included.",
    "Leave approval to the controller manager or a dedicated approver restricted by signer."
);
rbac_rule!(
    TOKEN_CREATE,
    "k8s.rbac.token-create",
    High,
    "Creates service-account tokens",
    "`create` on serviceaccounts/token issues tokens for existing service accounts: their rights become the holder's. High in a ClusterRole, medium in a Role.",
    "Remove it, or restrict it with `resourceNames` to the accounts concerned."
);
rbac_rule!(
    WEBHOOK_CONFIG,
    "k8s.rbac.webhook-config",
    High,
    "Controls admission webhooks",
    "Writing validatingwebhookconfigurations or mutatingwebhookconfigurations lets the holder read every object admitted to the cluster, and (mutating) change it.",
    "Keep webhook configurations to the installer; a webhook's controller needs only `get` and `update` on its own configuration by `resourceNames`."
);
rbac_rule!(
    NAMESPACE_PATCH,
    "k8s.rbac.namespace-patch",
    Medium,
    "Changes namespaces",
    "`patch`/`update` on namespaces changes their labels: the Pod Security admission level (`pod-security.kubernetes.io/enforce`) and what NetworkPolicies select.",
    "Remove it; namespace labels are the administrators'."
);
rbac_rule!(
    CLUSTER_ADMIN_BINDING,
    "k8s.rbac.cluster-admin-binding",
    High,
    "Bound to cluster-admin",
    "A ClusterRoleBinding to `cluster-admin` gives its subjects every right on the cluster; a RoleBinding to it, every right in the namespace (medium).",
    "Bind a role with the rights the subject needs."
);
rbac_rule!(
    ANONYMOUS_BINDING,
    "k8s.rbac.anonymous-binding",
    High,
    "Role bound to unauthenticated users",
    "A binding names `system:anonymous` or `system:unauthenticated`: anyone who reaches the API server has the role, without credentials. Critical when the role is cluster-admin (or admin/edit) or a wildcard role in the same manifests.",
    "Remove the subject; bind the role to the accounts that need it."
);
rbac_rule!(
    ALL_ACCOUNTS_BINDING,
    "k8s.rbac.all-accounts-binding",
    Medium,
    "Role bound to every account",
    "A binding names `system:authenticated` or `system:serviceaccounts`: every user, or every pod's service account in the cluster, has the role. Critical when the role is cluster-admin (or admin/edit) or a wildcard role in the same manifests.",
    "Bind the role to the accounts that need it."
);
rbac_rule!(
    AGGREGATED_ROLE,
    "k8s.rbac.aggregated-role",
    Info,
    "Aggregated ClusterRole",
    "A ClusterRole with `aggregationRule` gets its rules from every ClusterRole its selectors match, now and later, so its rights are not in the manifest; one labelled `rbac.authorization.k8s.io/aggregate-to-*` adds its rules to admin, edit or view, and so to everyone bound to those.",
    "Review the ClusterRoles the selector matches; keep aggregate-to-view roles read-only without Secrets."
);

/// Every RBAC rule.
pub const RULES: &[Rule] = &[
    WILDCARD,
    ESCALATE,
    BIND,
    IMPERSONATE,
    SECRETS_READ,
    POD_EXEC,
    WORKLOAD_CREATE,
    PV_CREATE,
    NODES_PROXY,
    CSR_APPROVAL,
    TOKEN_CREATE,
    WEBHOOK_CONFIG,
    NAMESPACE_PATCH,
    CLUSTER_ADMIN_BINDING,
    ANONYMOUS_BINDING,
    ALL_ACCOUNTS_BINDING,
    AGGREGATED_ROLE,
];

const CORE: &str = "";
const APPS: &str = "apps";
const BATCH: &str = "batch";
const RBAC: &str = "rbac.authorization.k8s.io";

/// A dangerous grant from the good-practices page: the requests that make it, and whether the
/// resources are cluster-scoped (a Role cannot grant them).
struct Risk {
    rule: &'static Rule,
    /// `(API group, resource[/subresource])` pairs.
    resources: &'static [(&'static str, &'static str)],
    verbs: &'static [&'static str],
    cluster_scoped: bool,
    /// Severity in a Role (namespaced reach) when it differs from the rule's.
    in_role: Option<Severity>,
}

const WORKLOADS: &[(&str, &str)] = &[
    (CORE, "pods"),
    (CORE, "replicationcontrollers"),
    (APPS, "deployments"),
    (APPS, "daemonsets"),
    (APPS, "statefulsets"),
    (APPS, "replicasets"),
    (BATCH, "jobs"),
    (BATCH, "cronjobs"),
];

const RISKS: &[Risk] = &[
    Risk {
        rule: &ESCALATE,
        resources: &[(RBAC, "roles"), (RBAC, "clusterroles")],
        verbs: &["escalate"],
        cluster_scoped: false,
        in_role: None,
    },
    Risk {
        rule: &BIND,
        resources: &[(RBAC, "roles"), (RBAC, "clusterroles")],
        verbs: &["bind"],
        cluster_scoped: false,
        in_role: None,
    },
    Risk {
        rule: &IMPERSONATE,
        resources: &[
            (CORE, "users"),
            (CORE, "groups"),
            ("authentication.k8s.io", "uids"),
            ("authentication.k8s.io", "userextras/scopes"),
        ],
        verbs: &["impersonate"],
        cluster_scoped: true,
        in_role: None,
    },
    // A Role reaches the service accounts of its namespace.
    Risk {
        rule: &IMPERSONATE,
        resources: &[(CORE, "serviceaccounts")],
        verbs: &["impersonate"],
        cluster_scoped: false,
        in_role: Some(Severity::Medium),
    },
    Risk {
        rule: &SECRETS_READ,
        resources: &[(CORE, "secrets")],
        verbs: &["get", "list", "watch"],
        cluster_scoped: false,
        in_role: Some(Severity::Medium),
    },
    Risk {
        rule: &POD_EXEC,
        resources: &[(CORE, "pods/exec"), (CORE, "pods/attach")],
        verbs: &["create", "get"],
        cluster_scoped: false,
        in_role: Some(Severity::Medium),
    },
    Risk {
        rule: &POD_EXEC,
        resources: &[(CORE, "pods/ephemeralcontainers")],
        verbs: &["update", "patch"],
        cluster_scoped: false,
        in_role: Some(Severity::Medium),
    },
    Risk {
        rule: &WORKLOAD_CREATE,
        resources: WORKLOADS,
        verbs: &["create", "update", "patch"],
        cluster_scoped: false,
        in_role: None,
    },
    Risk {
        rule: &PV_CREATE,
        resources: &[(CORE, "persistentvolumes")],
        verbs: &["create"],
        cluster_scoped: true,
        in_role: None,
    },
    Risk {
        rule: &NODES_PROXY,
        resources: &[(CORE, "nodes/proxy")],
        verbs: &["get", "create", "update", "patch", "delete"],
        cluster_scoped: true,
        in_role: None,
    },
    Risk {
        rule: &CSR_APPROVAL,
        resources: &[("certificates.k8s.io", "certificatesigningrequests/approval")],
        verbs: &["update", "patch"],
        cluster_scoped: true,
        in_role: None,
    },
    Risk {
        rule: &TOKEN_CREATE,
        resources: &[(CORE, "serviceaccounts/token")],
        verbs: &["create"],
        cluster_scoped: false,
        in_role: Some(Severity::Medium),
    },
    Risk {
        rule: &WEBHOOK_CONFIG,
        resources: &[
            (
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
            ),
            (
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
            ),
        ],
        verbs: &["create", "update", "patch"],
        cluster_scoped: true,
        in_role: None,
    },
    Risk {
        rule: &NAMESPACE_PATCH,
        resources: &[(CORE, "namespaces")],
        verbs: &["patch", "update"],
        cluster_scoped: false,
        in_role: None,
    },
];

/// One entry of a role's `rules:` list.
struct PolicyRule<'a> {
    node: &'a Node,
    groups: Vec<(&'a Node, &'a str)>,
    resources: Vec<(&'a Node, &'a str)>,
    verbs: Vec<(&'a Node, &'a str)>,
    /// `resourceNames` given: the grant reaches only the named objects.
    named: Vec<&'a str>,
}

fn strings(n: Option<&Node>) -> Vec<(&Node, &str)> {
    n.and_then(Node::items)
        .unwrap_or(&[])
        .iter()
        .filter_map(|i| Some((i, i.as_str()?)))
        .collect()
}

impl<'a> PolicyRule<'a> {
    fn of(node: &'a Node) -> PolicyRule<'a> {
        PolicyRule {
            node,
            groups: strings(node.get("apiGroups")),
            resources: strings(node.get("resources")),
            verbs: strings(node.get("verbs")),
            named: strings(node.get("resourceNames"))
                .into_iter()
                .map(|(_, s)| s)
                .collect(),
        }
    }

    /// The verb node granting `verb`, as the authorizer's VerbMatches decides.
    fn verb(&self, verb: &str) -> Option<&'a Node> {
        self.verbs
            .iter()
            .find(|(_, v)| *v == "*" || *v == verb)
            .map(|(n, _)| *n)
    }

    /// The resource node matching `group`/`resource`, as APIGroupMatches and ResourceMatches
    /// decide (`*`, exact, or `*/subresource`).
    fn resource(&self, group: &str, resource: &str) -> Option<&'a Node> {
        if !self.groups.iter().any(|(_, g)| *g == "*" || *g == group) {
            return None;
        }
        let sub = resource.split_once('/').map(|(_, s)| s);
        self.resources
            .iter()
            .find(|(_, r)| {
                *r == "*" || *r == resource || sub.is_some_and(|s| r.strip_prefix("*/") == Some(s))
            })
            .map(|(n, _)| *n)
    }

    fn has(list: &[(&Node, &str)], s: &str) -> bool {
        list.iter().any(|(_, v)| *v == s)
    }

    /// `*` API groups, resources and verbs: every right.
    fn is_everything(&self) -> bool {
        Self::has(&self.groups, "*")
            && Self::has(&self.resources, "*")
            && Self::has(&self.verbs, "*")
    }
}

/// The rules of a Role or ClusterRole.
fn policy_rules<'a>(obj: &Object<'a>) -> Vec<PolicyRule<'a>> {
    obj.node
        .get("rules")
        .and_then(Node::items)
        .unwrap_or(&[])
        .iter()
        .map(PolicyRule::of)
        .collect()
}

/// What a role in the same manifests amounts to, for judging bindings to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolePower {
    /// `*`/`*`/`*` in a rule: the same as cluster-admin in its scope.
    pub everything: bool,
}

/// Roles of a manifest stream by `(kind, namespace, name)`; a binding's `roleRef` is looked up
/// here (a RoleBinding's Role is in the binding's namespace).
#[derive(Debug, Default)]
pub struct RoleIndex {
    roles: HashMap<(String, String, String), RolePower>,
}

impl RoleIndex {
    /// Records `obj` if it is a Role or ClusterRole.
    pub fn add(&mut self, obj: &Object) {
        if !matches!(obj.kind, "Role" | "ClusterRole") {
            return;
        }
        let everything = policy_rules(obj).iter().any(PolicyRule::is_everything);
        let ns = if obj.kind == "Role" {
            namespace(obj)
        } else {
            ""
        };
        self.roles.insert(
            (obj.kind.to_string(), ns.to_string(), obj.name.to_string()),
            RolePower { everything },
        );
    }

    fn get(&self, kind: &str, ns: &str, name: &str) -> Option<RolePower> {
        let ns = if kind == "Role" { ns } else { "" };
        self.roles
            .get(&(kind.to_string(), ns.to_string(), name.to_string()))
            .copied()
    }
}

fn namespace<'a>(obj: &Object<'a>) -> &'a str {
    obj.node
        .path(&["metadata", "namespace"])
        .and_then(Node::as_str)
        .unwrap_or("")
}

/// The RBAC findings of one object (roles and bindings; other kinds give none).
pub fn check(obj: &Object, file: &str, index: &RoleIndex) -> Vec<Finding> {
    match obj.kind {
        "Role" | "ClusterRole" => check_role(obj, file),
        "RoleBinding" | "ClusterRoleBinding" => check_binding(obj, file, index),
        _ => Vec::new(),
    }
}

fn check_role(obj: &Object, file: &str) -> Vec<Finding> {
    let cluster = obj.kind == "ClusterRole";
    let label = obj.label();
    let mut out = aggregation(obj, file);
    for rule in policy_rules(obj) {
        if let Some(f) = wildcard(&rule, cluster, &label, file) {
            let everything = rule.is_everything();
            out.push(f);
            if everything {
                // `*` groups, resources and verbs: every risk below is this one finding.
                continue;
            }
        }
        // One finding per rule and risk (pods/exec and pods/ephemeralcontainers are one risk).
        let mut seen = Vec::new();
        for risk in RISKS {
            if (risk.cluster_scoped && !cluster) || seen.contains(&risk.rule.id) {
                continue;
            }
            if let Some(f) = risk_finding(risk, &rule, cluster, &label, file) {
                seen.push(risk.rule.id);
                out.push(f);
            }
        }
    }
    out
}

/// The aggregation note: an `aggregationRule`, or an `aggregate-to-*` label.
fn aggregation(obj: &Object, file: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let label = obj.label();
    if obj.kind != "ClusterRole" {
        return out;
    }
    if let Some((k, _)) = obj.node.get_entry("aggregationRule") {
        out.push(finding_on(
            &AGGREGATED_ROLE,
            AGGREGATED_ROLE.severity,
            file,
            k,
            format!(
                "{}: {label} takes its rules from the ClusterRoles its selectors match",
                AGGREGATED_ROLE.title
            ),
            None,
        ));
    }
    let labels = obj
        .node
        .path(&["metadata", "labels"])
        .and_then(Node::entries);
    for (k, v) in labels.unwrap_or(&[]) {
        let Some(target) = k
            .as_str()
            .and_then(|k| k.strip_prefix("rbac.authorization.k8s.io/aggregate-to-"))
        else {
            continue;
        };
        if v.as_str() == Some("true") {
            out.push(finding_on(
                &AGGREGATED_ROLE,
                AGGREGATED_ROLE.severity,
                file,
                k,
                format!(
                    "{}: {label} adds its rules to the {target} ClusterRole",
                    AGGREGATED_ROLE.title
                ),
                Some(Evidence::plain(format!("aggregate-to-{target}"))),
            ));
        }
    }
    out
}

fn wildcard(rule: &PolicyRule, cluster: bool, label: &str, file: &str) -> Option<Finding> {
    let verbs = PolicyRule::has(&rule.verbs, "*");
    let resources = PolicyRule::has(&rule.resources, "*");
    let (severity, what) = match (verbs, resources) {
        (false, false) => return None,
        _ if rule.is_everything() && cluster && rule.named.is_empty() => (
            Severity::Critical,
            "every verb on every resource of every API group",
        ),
        (true, true) => (Severity::High, "every verb on every resource"),
        (true, false) => (Severity::Medium, "every verb"),
        (false, true) => (Severity::Medium, "every resource"),
    };
    let at = if verbs {
        rule.verbs.iter().find(|(_, v)| *v == "*")
    } else {
        rule.resources.iter().find(|(_, r)| *r == "*")
    };
    Some(finding_on(
        &WILDCARD,
        severity,
        file,
        at.map(|(n, _)| *n).unwrap_or(rule.node),
        format!("{}: {label} grants {what}", WILDCARD.title),
        Some(Evidence::plain(what)),
    ))
}

/// A finding when `rule` grants one of `risk`'s verbs on one of its resources.
fn risk_finding(
    risk: &Risk,
    rule: &PolicyRule,
    cluster: bool,
    label: &str,
    file: &str,
) -> Option<Finding> {
    let (resource, verb, node) = risk.resources.iter().find_map(|(group, res)| {
        rule.resource(group, res)?;
        let (verb, node) = risk.verbs.iter().find_map(|v| Some((*v, rule.verb(v)?)))?;
        Some((*res, verb, node))
    })?;
    let severity = match risk.in_role {
        Some(s) if !cluster => s,
        _ => risk.rule.severity,
    };
    let mut what = format!("{verb} {resource}");
    if !rule.named.is_empty() {
        // Only the named objects, as the good practices advise (`get` on one Secret, `bind` on
        // the roles one may hand out), unless a name is itself the whole cluster.
        let powerful: Vec<&str> = rule
            .named
            .iter()
            .copied()
            .filter(|n| POWERFUL_NAMES.contains(n))
            .collect();
        if powerful.is_empty() {
            return None;
        }
        what.push_str(&format!(" (resourceNames {})", powerful.join(", ")));
    }
    Some(finding_on(
        risk.rule,
        severity,
        file,
        node,
        format!("{}: {label} grants {what}", risk.rule.title),
        Some(Evidence::plain(what)),
    ))
}

/// Names that keep a narrowed grant dangerous: the built-in roles that hand over a namespace or
/// the cluster, and the group that bypasses RBAC.
const POWERFUL_NAMES: &[&str] = &["cluster-admin", "admin", "edit", "system:masters"];

/// Built-in ClusterRoles that hand over a namespace or the cluster.
fn is_admin_role(kind: &str, name: &str) -> bool {
    kind == "ClusterRole" && matches!(name, "cluster-admin" | "admin" | "edit")
}

fn check_binding(obj: &Object, file: &str, index: &RoleIndex) -> Vec<Finding> {
    let mut out = Vec::new();
    let label = obj.label();
    let role_ref = obj.node.get("roleRef");
    let kind = role_ref
        .and_then(|r| r.get("kind"))
        .and_then(Node::as_str)
        .unwrap_or("");
    let name_node = role_ref.and_then(|r| r.get("name"));
    let name = name_node.and_then(Node::as_str).unwrap_or("");
    let power = index.get(kind, namespace(obj), name).unwrap_or_default();
    let overpowered = is_admin_role(kind, name) || power.everything;
    if kind == "ClusterRole"
        && name == "cluster-admin"
        && let Some(n) = name_node
    {
        let severity = if obj.kind == "ClusterRoleBinding" {
            Severity::High
        } else {
            Severity::Medium
        };
        out.push(finding_on(
            &CLUSTER_ADMIN_BINDING,
            severity,
            file,
            n,
            format!("{}: {label}", CLUSTER_ADMIN_BINDING.title),
            Some(Evidence::plain("roleRef ClusterRole cluster-admin")),
        ));
    }
    for subject in obj
        .node
        .get("subjects")
        .and_then(Node::items)
        .unwrap_or(&[])
    {
        let s_kind = subject.get("kind").and_then(Node::as_str).unwrap_or("");
        let Some(s_name_node) = subject.get("name") else {
            continue;
        };
        let s_name = s_name_node.as_str().unwrap_or("");
        let rule = match (s_kind, s_name) {
            ("User", "system:anonymous") | ("Group", "system:unauthenticated") => {
                &ANONYMOUS_BINDING
            }
            ("Group", "system:authenticated") | ("Group", "system:serviceaccounts") => {
                &ALL_ACCOUNTS_BINDING
            }
            _ => continue,
        };
        let severity = if overpowered {
            Severity::Critical
        } else {
            rule.severity
        };
        out.push(finding_on(
            rule,
            severity,
            file,
            s_name_node,
            format!("{}: {label} gives {kind} {name} to {s_name}", rule.title),
            Some(Evidence::plain(format!("{s_kind} {s_name}"))),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::compose::yaml;

    /// `(rule, severity, line)` of every finding in a one- or multi-document stream.
    fn run(text: &str) -> Vec<(String, Severity, u32)> {
        let docs: Vec<Node> = crate::audit::k8s::documents(text)
            .into_iter()
            .filter_map(|d| d.ok()?.root)
            .collect();
        let mut index = RoleIndex::default();
        for d in &docs {
            index.add(&Object::of(d).unwrap());
        }
        docs.iter()
            .flat_map(|d| check(&Object::of(d).unwrap(), "r.yaml", &index))
            .map(|f| {
                let line = match f.location {
                    crate::audit::Location::File { line, .. } => line.unwrap_or(0),
                    _ => 0,
                };
                (f.rule, f.severity, line)
            })
            .collect()
    }

    fn role(kind: &str, rules: &str) -> String {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata: {{name: r, namespace: ns}}\nrules:\n{rules}"
        )
    }

    fn ids(text: &str) -> Vec<String> {
        run(text).into_iter().map(|(id, _, _)| id).collect()
    }

    #[test]
    fn matching_follows_the_authorizer() {
        let n = yaml::parse(
            "{apiGroups: [''], resources: ['pods/*', '*/exec', secrets], verbs: [get]}",
        )
        .unwrap()
        .unwrap();
        let r = PolicyRule::of(&n);
        assert!(
            r.resource("", "pods/exec").is_some(),
            "*/exec matches pods/exec"
        );
        assert!(
            r.resource("", "pods/attach").is_none(),
            "pods/* matches no subresource"
        );
        assert!(
            r.resource("apps", "secrets").is_none(),
            "the API group must match"
        );
        assert!(r.verb("get").is_some() && r.verb("list").is_none());
    }

    #[test]
    fn the_good_practices_risks_are_found_with_their_lines() {
        let text = role(
            "ClusterRole",
            "- apiGroups: ['']
  resources: [secrets]
  verbs: [list]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  verbs: [bind, escalate]
- apiGroups: ['']
  resources: [nodes/proxy, persistentvolumes, serviceaccounts/token]
  verbs: [get, create]
- apiGroups: [certificates.k8s.io]
  resources: [certificatesigningrequests/approval]
  verbs: [update]
- apiGroups: [admissionregistration.k8s.io]
  resources: [mutatingwebhookconfigurations]
  verbs: [patch]
- apiGroups: ['', apps]
  resources: [users, deployments, pods/exec, namespaces]
  verbs: [impersonate, create, patch]
",
        );
        let got = run(&text);
        let want = [
            ("k8s.rbac.secrets-read", Severity::High, 7),
            ("k8s.rbac.escalate", Severity::High, 10),
            ("k8s.rbac.bind", Severity::High, 10),
            ("k8s.rbac.pv-create", Severity::High, 13),
            ("k8s.rbac.nodes-proxy", Severity::High, 13),
            ("k8s.rbac.csr-approval", Severity::High, 16),
            ("k8s.rbac.token-create", Severity::High, 13),
            ("k8s.rbac.webhook-config", Severity::High, 19),
            ("k8s.rbac.impersonate", Severity::High, 22),
            ("k8s.rbac.pod-exec", Severity::High, 22),
            ("k8s.rbac.workload-create", Severity::Medium, 22),
            ("k8s.rbac.namespace-patch", Severity::Medium, 22),
        ];
        let mut got_sorted: Vec<_> = got.clone();
        got_sorted.sort();
        let mut want: Vec<_> = want
            .iter()
            .map(|(r, s, l)| (r.replace("pv-create", "persistent-volume-create"), *s, *l))
            .collect();
        want.sort();
        assert_eq!(got_sorted, want, "{got:#?}");
    }

    #[test]
    fn a_role_cannot_grant_cluster_scoped_resources_and_reaches_one_namespace() {
        let text = role(
            "Role",
            "- apiGroups: ['']\n  resources: [nodes/proxy, persistentvolumes, secrets]\n  verbs: [get, create]\n",
        );
        assert_eq!(
            run(&text),
            [("k8s.rbac.secrets-read".to_string(), Severity::Medium, 7)]
        );
    }

    #[test]
    fn wildcards_by_reach() {
        let all = "- apiGroups: ['*']\n  resources: ['*']\n  verbs: ['*']\n";
        assert_eq!(
            run(&role("ClusterRole", all)),
            [("k8s.rbac.wildcard".to_string(), Severity::Critical, 7)]
        );
        assert_eq!(
            run(&role("Role", all)),
            [("k8s.rbac.wildcard".to_string(), Severity::High, 7)]
        );
        let verbs = "- apiGroups: ['']\n  resources: [configmaps]\n  verbs: ['*']\n";
        assert_eq!(ids(&role("Role", verbs)), ["k8s.rbac.wildcard"]);
        let read_all = "- apiGroups: ['']\n  resources: ['*']\n  verbs: [get, list]\n";
        // `get` on `*` includes nodes/proxy and pods/exec: the authorizer matches them.
        assert_eq!(
            ids(&role("ClusterRole", read_all)),
            [
                "k8s.rbac.wildcard",
                "k8s.rbac.secrets-read",
                "k8s.rbac.pod-exec",
                "k8s.rbac.nodes-proxy"
            ]
        );
        let fine =
            "- apiGroups: ['']\n  resources: [configmaps, pods]\n  verbs: [get, list, watch]\n";
        assert!(run(&role("ClusterRole", fine)).is_empty());
    }

    #[test]
    fn resource_names_narrow_the_grant_unless_they_name_the_cluster() {
        let bind = |names: &str| {
            role(
                "ClusterRole",
                &format!(
                    "- apiGroups: [rbac.authorization.k8s.io]\n  resources: [clusterroles]\n  verbs: [bind]\n  resourceNames: [{names}]\n"
                ),
            )
        };
        assert_eq!(run(&bind("view")), []);
        assert_eq!(
            run(&bind("view, cluster-admin")),
            [("k8s.rbac.bind".to_string(), Severity::High, 7)]
        );
        let secret = "- apiGroups: ['']\n  resources: [secrets]\n  verbs: [get, update]\n  resourceNames: [webhook-ca]\n";
        assert_eq!(run(&role("Role", secret)), []);
    }

    #[test]
    fn bindings_to_cluster_admin_and_to_everyone() {
        let text = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: Group, name: system:unauthenticated, apiGroup: rbac.authorization.k8s.io}
- {kind: ServiceAccount, name: app, namespace: ns}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: v, namespace: ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: Group, name: system:authenticated}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: all, namespace: ns}
rules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: w, namespace: ns}
roleRef: {kind: Role, name: all}
subjects: [{kind: User, name: system:anonymous}]
";
        let got = run(text);
        assert_eq!(
            got,
            [
                (
                    "k8s.rbac.cluster-admin-binding".to_string(),
                    Severity::High,
                    4
                ),
                (
                    "k8s.rbac.anonymous-binding".to_string(),
                    Severity::Critical,
                    6
                ),
                (
                    "k8s.rbac.all-accounts-binding".to_string(),
                    Severity::Medium,
                    13
                ),
                ("k8s.rbac.wildcard".to_string(), Severity::High, 18),
                (
                    "k8s.rbac.anonymous-binding".to_string(),
                    Severity::Critical,
                    24
                ),
            ],
            "{got:#?}"
        );
    }

    #[test]
    fn aggregation_is_noted() {
        let text = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: monitoring-view
  labels:
    rbac.authorization.k8s.io/aggregate-to-view: 'true'
rules: [{apiGroups: [monitoring.coreos.com], resources: [prometheuses], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: monitoring}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {rbac.example.com/aggregate-to-monitoring: 'true'}}]
rules: []
";
        assert_eq!(
            run(text),
            [
                ("k8s.rbac.aggregated-role".to_string(), Severity::Info, 6),
                ("k8s.rbac.aggregated-role".to_string(), Severity::Info, 12),
            ]
        );
    }

    #[test]
    fn a_core_group_wildcard_role_names_each_risk_once() {
        // gitlab-runner's chart default: every verb on every core resource of the namespace.
        let text = role(
            "Role",
            "- apiGroups: ['']\n  resources: ['*']\n  verbs: ['*']\n",
        );
        let mut got: Vec<(String, Severity)> =
            run(&text).into_iter().map(|(id, s, _)| (id, s)).collect();
        got.sort();
        let want = [
            ("k8s.rbac.impersonate", Severity::Medium),
            ("k8s.rbac.namespace-patch", Severity::Medium),
            ("k8s.rbac.pod-exec", Severity::Medium),
            ("k8s.rbac.secrets-read", Severity::Medium),
            ("k8s.rbac.token-create", Severity::Medium),
            ("k8s.rbac.wildcard", Severity::High),
            ("k8s.rbac.workload-create", Severity::Medium),
        ];
        let want: Vec<(String, Severity)> = want.iter().map(|(r, s)| (r.to_string(), *s)).collect();
        assert_eq!(got, want);
    }
}
