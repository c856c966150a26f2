#!/usr/bin/env bash
# Secret scanners side by side on the same image (issue 4): recall on a leak deleted by a later
# layer, false positives on a clean Debian image, wall time, throughput and peak RSS.
#
# The image is bench/audit.sh's 4-layer Debian bookworm image (built once, cached in $BENCH_DIR):
#   layer 1  Debian bookworm minbase          layer 3  /srv/app/.env (AWS key id + secret key)
#   layer 2  + python3 perl openssl curl ...             and /srv/app/.ssh/id_rsa (deploy key)
#                                              layer 4  `rm` of those
# Peers read directories, not images, so every layer blob is extracted into its own directory
# (layer-1/ … layer-4/, whiteouts skipped): they get their best chance at the deleted files.
# Symlinks, device nodes and fifos are removed after extraction (no content; a symlink to an
# absolute path would make a scanner read the host's file instead).
#
#   rsafe audit          on the image itself (release build), and on a `clean` tag made with
#                        umoci from layers 1–2 of the same layout
#   detect-secrets       scan --all-files (PyPI, venv in $BENCH_DIR/venv)
#   secretlint           + @secretlint/secretlint-rule-preset-recommend (npm, in $PEERS_DIR/npm)
#   ripsecrets           cargo install ripsecrets --root $PEERS_BIN (/tmp/rsafe-peers-bin)
#
# Each peer scans layer-1..4 once. The peers judge each file on its own, so the findings under
# layer-1/ and layer-2/ are exactly what they report on the clean image (layers 1–2): that is
# the false-positive count, and one scan per peer keeps detect-secrets (~20 min) affordable.
# Recall = planted secrets found / 3: the AWS key id (.env line 2), the AWS secret key (.env
# line 3) and the deploy private key (.ssh/id_rsa).
# Throughput = uncompressed bytes / wall time: the image's tar streams for rsafe (.stats.bytes),
# the regular files of the scanned directories for the peers.
#
# Usage: RUNS=1 bash bench/secrets-peers.sh   (RUNS = timed runs per tool; the best wall time and
# the highest peak RSS are reported). SKIP="detect-secrets ripsecrets" leaves peers out;
# PEER_TIMEOUT (default 1800 s) bounds each run.
# Any peer that cannot be installed or run is reported as "skipped: why".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCH_DIR="${BENCH_DIR:-/tmp/rsafe-bench}"
PEERS_DIR="${PEERS_DIR:-/tmp/rsafe-peers}"
PEERS_BIN="${PEERS_BIN:-/tmp/rsafe-peers-bin}"
RUNS="${RUNS:-1}"
PEER_TIMEOUT="${PEER_TIMEOUT:-1800}" # seconds one peer run may take before it is reported as timed out
SKIP="${SKIP:-}"
L="$BENCH_DIR/oci-debian-layers"
OUT="$PEERS_DIR/out"
LAYERS="$PEERS_DIR/layers"
log() { printf '== %s\n' "$*" >&2; }

for t in umoci jq gzip /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "bench: $t is required (bash .ci/setup-debian.sh)" >&2; exit 1; }
done
mkdir -p "$PEERS_DIR" "$OUT"

# The image: built by audit.sh (which also builds rsafe); only build rsafe when it exists.
if [ ! -f "$L/index.json" ]; then
  log "the image is missing: building it with bench/audit.sh (once)"
  RUNS=1 bash bench/audit.sh >/dev/null
fi
log "build rsafe (release)"
cargo build --release --locked --quiet
RSAFE="$PWD/target/release/rsafe"

manifest_blob() { # $1 = tag
  local d
  d=$(jq -r --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]==$t) | .digest' "$L/index.json")
  [ -n "$d" ] && echo "$L/blobs/sha256/${d#sha256:}"
}
MANIFEST=$(manifest_blob bench)
mapfile -t BLOBS < <(jq -r '.layers[].digest' "$MANIFEST" | sed "s|sha256:|$L/blobs/sha256/|")

# The clean image: layers 1–2 of the same image, tagged `clean` in the same layout (umoci).
if [ -z "$(manifest_blob clean)" ]; then
  log "tag clean = layers 1-2 (umoci new + raw add-layer)"
  CONFIG="$L/blobs/sha256/$(jq -r '.config.digest' "$MANIFEST" | cut -d: -f2)"
  umoci new --image "$L:clean"
  for i in 0 1; do
    tmp="$PEERS_DIR/layer.tar"
    gzip -dc "${BLOBS[$i]}" > "$tmp"
    umoci raw add-layer --image "$L:clean" \
      --history.created "$(jq -r ".history[$i].created" "$CONFIG")" \
      --history.created_by "$(jq -r ".history[$i].created_by" "$CONFIG")" "$tmp"
    rm -f "$tmp"
  done
  umoci config --image "$L:clean" --config.user 1000:1000 --config.cmd /bin/bash
fi

# Every layer in its own directory.
if [ ! -f "$LAYERS/.done" ]; then
  log "extract ${#BLOBS[@]} layers to $LAYERS/layer-N"
  rm -rf "$LAYERS"
  for i in "${!BLOBS[@]}"; do
    d="$LAYERS/layer-$((i + 1))"
    mkdir -p "$d"
    tar -C "$d" -xzf "${BLOBS[$i]}" --no-same-owner --no-same-permissions --exclude='.wh.*' --exclude='*/.wh.*'
    find "$d" -mindepth 1 ! -type f ! -type d -delete
    chmod -R u+rwX "$d"
  done
  touch "$LAYERS/.done"
fi
SCAN_BYTES=$(find "$LAYERS" -type f ! -name .done -printf '%s\n' | awk '{s+=$1} END {print s}')
IMAGE_BYTES=$(jq -r '.stats.bytes' < <("$RSAFE" audit "$L:bench" --format json -q 2>/dev/null || true))
[ -n "$IMAGE_BYTES" ] && [ "$IMAGE_BYTES" != null ] || IMAGE_BYTES=$SCAN_BYTES

# timed NAME CMD...: runs CMD $RUNS times (output to $OUT/NAME.out, any exit status kept in
# $OUT/NAME.rc), records the best wall time and the largest peak RSS.
timed() {
  local name="$1"; shift
  local best="" rss=0 r t0 t1 wall kb
  for ((r = 0; r < RUNS; r++)); do
    t0=$(date +%s.%N)
    set +e
    timeout "$PEER_TIMEOUT" /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
    echo $? > "$OUT/$name.rc"
    set -e
    t1=$(date +%s.%N)
    wall=$(echo "$t1 - $t0" | bc -l)
    kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/$name.time")
    if [ -z "$best" ] || [ "$(echo "$wall < $best" | bc -l)" = 1 ]; then best=$wall; fi
    [ "${kb:-0}" -gt "$rss" ] && rss=$kb
  done
  printf '%s %s\n' "$best" "$rss" > "$OUT/$name.perf"
}

# ROWS: tool | recall | clean findings | wall | MB/s | RSS
ROWS=()
row() { # tool found clean-fp wall rss bytes note
  local mbs
  mbs=$(echo "scale=1; $6 / 1000000 / $4" | bc -l)
  ROWS+=("| $1 | $2/3 | $3 | $(printf '%.1f' "$4") s | $mbs | $(($5 / 1024)) MB | $7 |")
}
timed_out() { [ "$(cat "$OUT/$1.rc")" = 124 ] && skipped "$1" "did not finish in $PEER_TIMEOUT s (PEER_TIMEOUT)"; }
skipped() { ROWS+=("| $1 | — | — | — | — | — | skipped: $2 |"); log "$1 skipped: $2"; }
wanted() { [[ " $SKIP " != *" $1 "* ]]; }

# Recall from "path line" pairs on stdin (paths relative to the layer directories).
recall() {
  awk '
    $1 ~ /layer-3\/srv\/app\/\.env$/ && $2 == 2 { id = 1 }
    $1 ~ /layer-3\/srv\/app\/\.env$/ && $2 == 3 { key = 1 }
    $1 ~ /layer-3\/srv\/app\/\.ssh\/id_rsa$/     { pk = 1 }
    END { print id + key + pk }'
}
# Findings on the clean image from "path line" pairs: anything under layer-1/ or layer-2/.
clean_fp() { grep -cE '(^|/)layer-[12]/' || true; }

# --- rsafe: the image itself, and the clean tag.
log "rsafe audit ($RUNS runs)"
timed rsafe "$RSAFE" audit "$L:bench" --format json -q
"$RSAFE" audit "$L:clean" --format json -q > "$OUT/rsafe-clean.json"
RSAFE_FOUND=$(jq -r '.findings[] | select(.location.kind == "image_file") |
    "layer-\(.location.layer.index + 1)/\(.location.path | ltrimstr("/")) \(.location.line // 0)"' \
  "$OUT/rsafe.out" | recall)
RSAFE_CLEAN=$(jq '[.findings[] | select(.severity == "high" or .severity == "critical")] | length' "$OUT/rsafe-clean.json")
RSAFE_CLEAN_ALL=$(jq '.findings | length' "$OUT/rsafe-clean.json")
read -r w k < "$OUT/rsafe.perf"
row "rsafe audit (image)" "$RSAFE_FOUND" "$RSAFE_CLEAN high+critical ($RSAFE_CLEAN_ALL in all)" "$w" "$k" "$IMAGE_BYTES" \
  "reads the image; $(jq -r '[.findings[] | select(.rule | startswith("secret.")) | .location.layer.removed_in] | map(select(. != null)) | length' "$OUT/rsafe.out") secret findings marked deleted in a later layer"

# --- detect-secrets
if wanted detect-secrets; then
  DS="$BENCH_DIR/venv/bin/detect-secrets"
  if [ ! -x "$DS" ]; then
    { python3 -m venv "$BENCH_DIR/venv" && "$BENCH_DIR/venv/bin/pip" install --quiet detect-secrets; } >&2 || true
  fi
  if [ -x "$DS" ]; then
    log "detect-secrets scan --all-files ($RUNS runs; slow)"
    (cd "$LAYERS" && timed detect-secrets "$DS" scan --all-files .)
    if jq -e .results "$OUT/detect-secrets.out" >/dev/null 2>&1; then
      pairs() { jq -r '.results | to_entries[] | .key as $f | .value[] | "\($f) \(.line_number)"' "$OUT/detect-secrets.out"; }
      read -r w k < "$OUT/detect-secrets.perf"
      row "detect-secrets $("$DS" --version)" "$(pairs | recall)" "$(pairs | clean_fp)" "$w" "$k" "$SCAN_BYTES" \
        "$(pairs | wc -l) results in $(jq '.results | length' "$OUT/detect-secrets.out") files"
    elif ! timed_out detect-secrets; then
      skipped detect-secrets "no JSON report (exit $(cat "$OUT/detect-secrets.rc"): $(tail -1 "$OUT/detect-secrets.err"))"
    fi
  else
    skipped detect-secrets "pip install detect-secrets failed"
  fi
fi

# --- secretlint
if wanted secretlint; then
  NPM_DIR="$PEERS_DIR/npm"
  if [ ! -x "$NPM_DIR/node_modules/.bin/secretlint" ] && command -v npm >/dev/null; then
    mkdir -p "$NPM_DIR"
    [ -f "$NPM_DIR/package.json" ] || echo '{"private": true}' > "$NPM_DIR/package.json"
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --silent secretlint @secretlint/secretlint-rule-preset-recommend) >&2 || true
  fi
  if [ -x "$NPM_DIR/node_modules/.bin/secretlint" ]; then
    echo '{"rules":[{"id":"@secretlint/secretlint-rule-preset-recommend"}]}' > "$PEERS_DIR/secretlintrc.json"
    log "secretlint ($RUNS runs)"
    # --secretlintignore /dev/null: the layers are not a git checkout; scan everything, dotfiles too.
    (cd "$LAYERS" && timed secretlint "$NPM_DIR/node_modules/.bin/secretlint" "**/*" --format json \
       --secretlintrc "$PEERS_DIR/secretlintrc.json" --secretlintignore /dev/null)
    if jq -e 'type == "array"' "$OUT/secretlint.out" >/dev/null 2>&1; then
      pairs() { jq -r '.[] | .filePath as $f | .messages[] | "\($f) \(.loc.start.line)"' "$OUT/secretlint.out"; }
      read -r w k < "$OUT/secretlint.perf"
      row "secretlint $("$NPM_DIR/node_modules/.bin/secretlint" --version) (preset-recommend)" "$(pairs | recall)" "$(pairs | clean_fp)" "$w" "$k" "$SCAN_BYTES" \
        "$(pairs | wc -l) messages in $(jq '[.[] | select(.messages | length > 0)] | length' "$OUT/secretlint.out") files"
    elif ! timed_out secretlint; then
      skipped secretlint "no JSON report (exit $(cat "$OUT/secretlint.rc"): $(tail -1 "$OUT/secretlint.err" | cut -c1-120))"
    fi
  else
    skipped secretlint "npm install secretlint failed or npm missing"
  fi
fi

# --- ripsecrets
if wanted ripsecrets; then
  RS="$PEERS_BIN/bin/ripsecrets"
  if [ ! -x "$RS" ]; then
    cargo install --quiet --locked ripsecrets --root "$PEERS_BIN" >&2 || true
  fi
  if [ -x "$RS" ]; then
    log "ripsecrets ($RUNS runs)"
    # Walking a directory, ripsecrets skips hidden files (.env, .ssh/) like ripgrep does, so
    # every file is named on its command line instead (find | xargs): its best chance. The
    # default walk is run once too, for the note. ripsecrets prints `path:line:matched text`;
    # only path and line are kept (never the secret).
    (cd "$LAYERS" && "$RS" layer-3 | sed -nE 's/^([^:]*):([0-9]+):.*/\1 \2/p' > "$OUT/ripsecrets-walk.pairs") || true
    (cd "$LAYERS" && timed ripsecrets sh -c 'find . -type f ! -name .done -print0 | xargs -0 "$0" --only-matching' "$RS")
    rc=$(cat "$OUT/ripsecrets.rc")
    # xargs exits 123 when an invocation exited 1 (= secrets found).
    if [ "$rc" = 0 ] || [ "$rc" = 1 ] || [ "$rc" = 123 ]; then
      sed -nE 's/^([^:]*):([0-9]+):.*/\1 \2/p' "$OUT/ripsecrets.out" > "$OUT/ripsecrets.pairs"
      : > "$OUT/ripsecrets.out"
      read -r w k < "$OUT/ripsecrets.perf"
      row "ripsecrets $("$RS" --version | awk '{print $2}')" "$(recall < "$OUT/ripsecrets.pairs")" "$(clean_fp < "$OUT/ripsecrets.pairs")" "$w" "$k" "$SCAN_BYTES" \
        "$(wc -l < "$OUT/ripsecrets.pairs") matches; every file named (find | xargs): walking the directory it skips dotfiles and finds $(recall < "$OUT/ripsecrets-walk.pairs")/3"
    elif ! timed_out ripsecrets; then
      skipped ripsecrets "exit $rc: $(tail -1 "$OUT/ripsecrets.err" | cut -c1-120)"
    fi
  else
    skipped ripsecrets "cargo install ripsecrets failed"
  fi
fi

echo
echo "Image: ${#BLOBS[@]} layers, $((IMAGE_BYTES / 1000000)) MB of tar streams; peers scan $((SCAN_BYTES / 1000000)) MB of files in layer-1..${#BLOBS[@]}/ ($RUNS run(s), best wall time)."
echo
echo "| tool | planted secrets found | findings on the clean image (layers 1–2) | wall | MB/s | peak RSS | notes |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "rsafe on the clean image (tag clean = layers 1–2):"
jq -r '.findings[] | "- \(.severity) \(.rule) \(.location.path // .location.field // "") (layer \((.location.layer.index // -1) + 1))"' "$OUT/rsafe-clean.json" |
  sort | uniq -c | sed 's/^ *//'
