#!/usr/bin/env bash
# Secret-audit precision on trees nobody wrote for rsafe's rules: this host's /usr/share,
# /usr/lib/python3, /etc, the Google Cloud SDK (1.9 GB of Python with vendored auth libraries
# and their tests), the cargo registry's crate sources and secretlint's npm tree. They are
# bind-mounted (in a private mount namespace) into one build context, audited twice:
#
#   distro   `COPY . /`        each tree where a distribution puts it (`usr/share/…`): the
#                              vendored globs of policies/secrets.toml apply (only specific
#                              token formats run)
#   project  `COPY . /srv/app/` the same trees as a project's own directories (`share/…`,
#                              `google-cloud-sdk/…`): every rule runs, except where the
#                              project's own layout says vendored (`node_modules`, `tests/`)
#
# and the high/critical findings are counted per rule, then listed (rule, path, line, redacted
# evidence) for judging by hand, which is how the README's table was made.
#
#   bash bench/secrets-precision.sh [work dir]     RSAFE=path/to/rsafe (default: release build)
#   LIST=0  counts only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "bench/secrets-precision.sh: run as root (bind mounts)" >&2; exit 1; }
WORK="${1:-/tmp/rsafe-bench-precision}"
if [ -z "${RSAFE:-}" ]; then
  cargo build --release --locked --quiet
  RSAFE="$PWD/target/release/rsafe"
fi
CARGO_SRC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ 2>/dev/null | head -1 || true)
NPM_TREE="${PEERS_DIR:-/tmp/rsafe-peers}/npm/node_modules"
declare -A TREES=(
  [usr/share]=/usr/share [usr/lib/python3]=/usr/lib/python3 [etc]=/etc
  [usr/lib/google-cloud-sdk]=/usr/lib/google-cloud-sdk [root/.cargo/registry/src]="$CARGO_SRC"
  [usr/local/lib/node_modules]="$NPM_TREE"
)
rm -rf "$WORK"
mkdir -p "$WORK"
for mode in distro project; do
  ctx="$WORK/$mode"
  mkdir -p "$ctx"
  dest=/
  [ "$mode" = project ] && dest=/srv/app/
  printf 'FROM scratch\nCOPY . %s\n' "$dest" > "$ctx/Dockerfile"
  binds=""
  for rel in "${!TREES[@]}"; do
    src=${TREES[$rel]}
    if [ -z "$src" ] || [ ! -d "$src" ]; then
      echo "== $rel: not on this host, left out" >&2
      continue
    fi
    at=$rel
    [ "$mode" = project ] && at=$(basename "$rel")
    mkdir -p "$ctx/$at"
    binds+="mount --bind '$src' '$ctx/$at' && "
  done
  start=$(date +%s.%N)
  unshare -m bash -c "${binds} '$RSAFE' audit '$ctx' --format json > '$WORK/$mode.json'" || true
  end=$(date +%s.%N)
  files=$(unshare -m bash -c "${binds} find -L '$ctx' -type f | wc -l")
  printf '\n## %s (%s files, %.1f s)\n\n' "$mode" "$files" "$(echo "$end - $start" | bc)"
  python3 - "$WORK/$mode.json" "${LIST:-1}" <<'PY'
import collections, json, sys
findings = json.load(open(sys.argv[1]))["findings"]
high = [f for f in findings if f["severity"] in ("high", "critical")]
count = collections.Counter(f["rule"] for f in high)
print(f"high/critical: {len(high)}")
for rule, n in count.most_common():
    print(f"  {n:4} {rule}")
if sys.argv[2] != "0":
    print()
    for f in sorted(high, key=lambda f: (f["rule"], f["location"].get("path", ""))):
        loc = f["location"]
        ev = (f.get("evidence") or {}).get("excerpt", "")
        print(f'  {f["rule"]}  {loc.get("path", "")}:{loc.get("line", "")}  {ev[:100]}')
PY
done
