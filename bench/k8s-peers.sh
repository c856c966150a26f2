#!/usr/bin/env bash
# rsafe's Kubernetes review next to checkov's kubernetes framework on the same manifests: every
# directory of tests/fixtures/k8s/ (a pod per PSS control, the admission controller's own test
# cases, manifests in the shapes of ingress-nginx, cert-manager, kube-prometheus, a helm
# chart's output, and the RBAC risks of the good-practices page).
#
#   bash bench/k8s-peers.sh [OUT_DIR]      (default: target/k8s-peers)
#
# Truth: tests/fixtures/k8s/truth.tsv lists every (file, object, control) that fails, read from
# the Pod Security Standards (policy version latest) and Kubernetes' "RBAC good practices"
# page; every other pair where the control applies (PSS controls on workloads, grant controls on
# Roles/ClusterRoles, binding controls on bindings) is a pass. A tool "fails" an object on a
# control when it reports one of the control's checks on that object: rsafe's rule of the same
# name; for checkov the checks below whose policy is that control, or the nearest to it
# (CKV2_K8S_2, "create on nodes/proxy or pods/exec", counts for whichever of the two fails). A checkov result on a
# binding for a grant check is counted on the role the binding names (its graph checks report
# the binding). A wildcard verdict on a role with a `*`/`*`/`*` rule counts for every grant
# control, for both tools (rsafe reports such a rule once, as critical). Precision = TP / (TP + FP), recall = TP / (TP + FN), per control and overall.
#
# Also times both on a 50 MB stream (the node-exporter DaemonSet fixture repeated; checkov on its
# first megabyte only: it needs 12 GB for that). SKIP_BIG=1 leaves that part out.
#
# checkov comes from PyPI into the peers' venv (bench/peers-venv.sh); --skip-download keeps it
# off the network (its guideline download fails here anyway).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX="$ROOT/tests/fixtures/k8s"
OUT=${1:-$ROOT/target/k8s-peers}
mkdir -p "$OUT"

source "$ROOT/bench/peers-venv.sh"
peers_venv checkov=checkov
PY="$VENV/bin/python"
echo "checkov: $("$VENV/bin/checkov" --version)"

cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml"
RSAFE="$ROOT/target/release/rsafe"

# --- both tools on every fixture directory ---------------------------------------------------
: > "$OUT/rsafe.tsv"
start=$(date +%s.%N)
for dir in "$FIX"/*/; do
    "$RSAFE" audit --format json "$dir" 2> /dev/null | "$PY" -c '
import json, os, sys
fix = sys.argv[1]
for f in json.load(sys.stdin)["findings"]:
    loc = f["location"]
    print(os.path.relpath(loc["path"], fix), loc["line"], f["rule"], sep="\t")
' "$FIX" >> "$OUT/rsafe.tsv"
done
end=$(date +%s.%N)
echo "rsafe:   $(echo "$end - $start" | bc) s for all fixture directories"

start=$(date +%s.%N)
"$VENV/bin/checkov" -d "$FIX" --framework kubernetes --skip-download --quiet --compact -o json \
    > "$OUT/checkov.json" 2> "$OUT/checkov.err" || true
end=$(date +%s.%N)
echo "checkov: $(echo "$end - $start" | bc) s for all fixture directories"
"$PY" - "$OUT/checkov.json" "$FIX" > "$OUT/checkov.tsv" <<'PY'
import json, os, sys
data = json.load(open(sys.argv[1]))
for rep in data if isinstance(data, list) else [data]:
    for r in rep.get("results", {}).get("failed_checks", []):
        path = os.path.relpath(r["file_abs_path"], sys.argv[2])
        print(path, r["file_line_range"][0], r["check_id"], r["resource"], sep="\t")
PY

# --- verdicts per control ---------------------------------------------------------------------
"$PY" - "$FIX" "$OUT" <<'PY' | tee "$OUT/table.md"
import collections, os, re, sys, yaml

fix, out = sys.argv[1], sys.argv[2]
PSS_B = ["host-process", "host-namespaces", "privileged", "capabilities", "host-path-volumes",
         "host-ports", "apparmor", "selinux", "proc-mount", "seccomp", "sysctls", "host-probes",
         "volume-types", "ulimits"]
PSS_R = ["volume-types", "proc-mount", "cgroup-options", "privilege-escalation",
         "run-as-non-root", "run-as-user", "seccomp", "capabilities"]
GRANTS = ["wildcard", "escalate", "bind", "impersonate", "secrets-read", "pod-exec",
          "workload-create", "persistent-volume-create", "nodes-proxy", "csr-approval",
          "token-create", "webhook-config", "namespace-patch"]
BINDINGS = ["cluster-admin-binding", "anonymous-binding", "all-accounts-binding"]
CONTROLS = ([f"pss.baseline.{c}" for c in PSS_B] + [f"pss.restricted.{c}" for c in PSS_R]
            + [f"rbac.{c}" for c in GRANTS + BINDINGS])
CHECKOV = {
    "pss.baseline.host-namespaces": ["CKV_K8S_17", "CKV_K8S_18", "CKV_K8S_19"],
    "pss.baseline.privileged": ["CKV_K8S_16"],
    "pss.baseline.capabilities": ["CKV_K8S_39"],
    "pss.baseline.host-path-volumes": ["CKV_K8S_27"],
    "pss.baseline.host-ports": ["CKV_K8S_26"],
    "pss.restricted.privilege-escalation": ["CKV_K8S_20"],
    "pss.restricted.run-as-non-root": ["CKV_K8S_23"],
    "pss.restricted.seccomp": ["CKV_K8S_31"],
    "pss.restricted.capabilities": ["CKV_K8S_25", "CKV_K8S_28", "CKV_K8S_37"],
    "rbac.wildcard": ["CKV_K8S_49"],
    "rbac.escalate": ["CKV_K8S_158"],
    "rbac.bind": ["CKV_K8S_157"],
    "rbac.impersonate": ["CKV2_K8S_3"],
    "rbac.secrets-read": ["CKV2_K8S_5"],
    "rbac.pod-exec": ["CKV2_K8S_2"],
    "rbac.nodes-proxy": ["CKV2_K8S_2"],
    "rbac.csr-approval": ["CKV_K8S_156"],
    "rbac.webhook-config": ["CKV_K8S_155"],
}
WORKLOADS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
             "ReplicationController", "Job", "CronJob", "PodTemplate"}

# Objects: (file, Kind/name) with their line ranges; a List's items are objects of their own.
objects = {}      # (file, label) -> (kind, first, last, doc)
def add(file, doc, first, last):
    if not isinstance(doc, dict) or "kind" not in doc:
        return
    label = f"{doc['kind']}/{(doc.get('metadata') or {}).get('name', '(unnamed)')}"
    objects[(file, label)] = (doc["kind"], first, last, doc)
for dirpath, _, names in os.walk(fix):
    for name in sorted(names):
        if not name.endswith((".yaml", ".yml")):
            continue
        path = os.path.join(dirpath, name)
        file = os.path.relpath(path, fix)
        lines = open(path).read().split("\n")
        marks = [i + 1 for i, l in enumerate(lines) if re.match(r"^---(\s|$)", l)] + [len(lines) + 1]
        first = 1
        for end in marks:
            text = "\n".join(lines[first - 1:end - 1])
            try:
                doc = yaml.safe_load(text)
            except yaml.YAMLError:
                doc = None
            if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List"):
                starts = [first + i for i, l in enumerate(lines[first - 1:end - 1]) if re.match(r"^- ", l)]
                for s, e in zip(starts, starts[1:] + [end]):
                    add(file, (doc.get("items") or [None])[starts.index(s)], s, e - 1)
            else:
                add(file, doc, first, end - 1)
            first = end

def owner(file, line):
    for (f, label), (kind, a, b, _) in objects.items():
        if f == file and a <= line <= b:
            return label
    return None

def applies(kind, control):
    if control.startswith("pss."):
        return kind in WORKLOADS
    if control.split(".", 1)[1] in BINDINGS:
        return kind in ("RoleBinding", "ClusterRoleBinding")
    return kind in ("Role", "ClusterRole")

truth = set()
for line in open(os.path.join(fix, "truth.tsv")):
    if line.strip() and not line.startswith("#"):
        file, label, control = line.rstrip("\n").split("\t")[:3]
        assert (file, label) in objects, f"truth names an unknown object: {file} {label}"
        assert control in CONTROLS, f"truth names an unknown control: {control}"
        truth.add((file, label, control))

said = {"rsafe": set(), "checkov": set()}
for line in open(os.path.join(out, "rsafe.tsv")):
    file, at, rule = line.rstrip("\n").split("\t")
    control = rule.removeprefix("k8s.")
    if control in CONTROLS and (label := owner(file, int(at))):
        said["rsafe"].add((file, label, control))
by_check = collections.defaultdict(list)
for control, checks in CHECKOV.items():
    for c in checks:
        by_check[c].append(control)
for line in open(os.path.join(out, "checkov.tsv")):
    file, at, check, _ = line.rstrip("\n").split("\t")
    label = owner(file, int(at))
    if label is None:
        continue
    controls = by_check.get(check, [])
    for control in controls:
        target = label
        if control.startswith("rbac.") and label.split("/")[0] in ("RoleBinding", "ClusterRoleBinding"):
            ref = objects[(file, label)][3].get("roleRef") or {}
            target = f"{ref.get('kind')}/{ref.get('name')}"
            if (file, target) not in objects:
                continue
        # A check standing for two controls (CKV2_K8S_2: pods/exec or nodes/proxy) is counted
        # for those of them that fail, and as one false verdict when neither does.
        if len(controls) > 1:
            failing = [c for c in controls if (file, target, c) in truth]
            if control not in failing and (failing or control != controls[0]):
                continue
        said["checkov"].add((file, target, control))

# A `*` verbs/resources/groups rule grants every risk: a tool's wildcard verdict on such a role
# stands for each grant control, for both tools alike (rsafe reports it once, as critical).
def everything(doc):
    return any((r.get("apiGroups") or []) == ["*"] and (r.get("resources") or []) == ["*"]
               and (r.get("verbs") or []) == ["*"] for r in doc.get("rules") or [])
for tool in said:
    for f, l, c in list(said[tool]):
        if c == "rbac.wildcard" and everything(objects[(f, l)][3]):
            said[tool].update((f, l, f"rbac.{g}") for g in GRANTS)

pairs = [(f, l, c) for (f, l), (kind, *_ ) in objects.items() for c in CONTROLS if applies(kind, c)]
def score(tool, controls):
    tp = fp = fn = 0
    for f, l, c in pairs:
        if c not in controls:
            continue
        t, s = (f, l, c) in truth, (f, l, c) in said[tool]
        tp += t and s; fp += s and not t; fn += t and not s
    return tp, fp, fn
def pr(tp, fp, fn, covered=True):
    if not covered:
        return "—", "no check"
    p = f"{tp / (tp + fp):.2f}" if tp + fp else "—"
    r = f"{tp / (tp + fn):.2f}" if tp + fn else "—"
    return p, r

print(f"{len(objects)} objects, {len(pairs)} (object, control) pairs, {len(truth)} failing\n")
print("| control | failing | rsafe TP/FP/FN | rsafe P / R | checkov checks | checkov TP/FP/FN | checkov P / R |")
print("|---|---|---|---|---|---|---|")
for c in CONTROLS:
    n = sum(1 for f, l, cc in truth if cc == c)
    r = score("rsafe", {c}); k = score("checkov", {c})
    checks = ", ".join(CHECKOV.get(c, [])) or "—"
    rp, rr = pr(*r); kp, kr = pr(*k, covered=c in CHECKOV or k[0] + k[1] > 0)
    if c not in CHECKOV and k[0] + k[1]:
        checks = "(CKV_K8S_49 on `*` roles)"
    print(f"| {c} | {n} | {r[0]}/{r[1]}/{r[2]} | {rp} / {rr} | {checks} | {k[0]}/{k[1]}/{k[2]} | {kp} / {kr} |")
for name, group in [("PSS", [c for c in CONTROLS if c.startswith("pss.")]),
                    ("RBAC", [c for c in CONTROLS if c.startswith("rbac.")]),
                    ("all", CONTROLS)]:
    r = score("rsafe", set(group)); k = score("checkov", set(group))
    print(f"| **{name}** | {r[0] + r[2]} | {r[0]}/{r[1]}/{r[2]} | {' / '.join(pr(*r))} | | {k[0]}/{k[1]}/{k[2]} | {' / '.join(pr(*k))} |")

with open(os.path.join(out, "disagreements.txt"), "w") as d:
    for tool in said:
        for f, l, c in sorted(set(pairs)):
            t, s = (f, l, c) in truth, (f, l, c) in said[tool]
            if t != s:
                print(tool, "FN" if t else "FP", f, l, c, sep="\t", file=d)
PY
echo "(each wrong verdict: $OUT/disagreements.txt)"

[[ -z ${SKIP_BIG:-} ]] || exit 0

# --- a 50 MB stream ---------------------------------------------------------------------------
BIG="$OUT/big.yaml"
"$PY" - "$FIX/node-exporter/daemonset.yaml" "$BIG" <<'PY'
import sys
doc = open(sys.argv[1]).read()
with open(sys.argv[2], "w") as out:
    size, i = 0, 0
    while size < 50_000_000:
        d = doc.replace("name: node-exporter", f"name: node-exporter-{i}", 1) + "\n---\n"
        out.write(d); size += len(d); i += 1
PY
mb=$(( $(stat -c %s "$BIG") / 1000000 ))
/usr/bin/time -f "%e s, %M KB peak RSS" "$RSAFE" audit --format json "$BIG" > /dev/null 2> "$OUT/big-rsafe.time" || true
echo "rsafe on a ${mb} MB stream: $(tail -1 "$OUT/big-rsafe.time")"
head -c 1000000 "$BIG" | sed '$d' > "$OUT/big1.yaml"
/usr/bin/time -f "%e s, %M KB peak RSS" "$VENV/bin/checkov" -f "$OUT/big1.yaml" --framework kubernetes \
    --skip-download --quiet --compact -o json > /dev/null 2> "$OUT/big-checkov.time" || true
echo "checkov on its first 1 MB (5 MB took 322 s and 24 GB of memory): $(tail -1 "$OUT/big-checkov.time")"
