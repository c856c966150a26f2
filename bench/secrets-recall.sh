#!/usr/bin/env bash
# Secret-detection breadth (issue 12): recall and precision of rsafe, detect-secrets and
# secretlint (preset-recommend) on the labelled corpus of bench/secrets-corpus/gen.py
# (fake, well-formed tokens of ~190 providers in .env, YAML, JSON, INI, properties, XML, shell,
# source code, Kubernetes Secret and .npmrc shapes, plus look-alikes that are not secrets).
#
#   rsafe audit CORPUS --format json    (the corpus has a Dockerfile `COPY cases /srv/app/`, so
#                                         every file is scanned as one the image ships)
#   detect-secrets scan --all-files     (PyPI, venv in $BENCH_DIR/venv, as bench/secrets-peers.sh)
#   secretlint "cases/**/*"             (+ @secretlint/secretlint-rule-preset-recommend, npm in
#                                         $PEERS_DIR/npm, as bench/secrets-peers.sh)
#
# bench/secrets-corpus/score.py turns each report into recall (all secrets; and "realistic",
# without filler fixtures such as `ghp_AAAA…`), precision (reported lines inside a labelled
# secret / all reported lines) and per-class recall. Also prints the single-file start-up time
# of `rsafe audit` (hyperfine when installed, else the best of 20 runs).
#
# Usage: bash bench/secrets-recall.sh [CORPUS_DIR]   (default /tmp/rsafe-secrets-corpus)
#   RSAFE=path/to/rsafe   use that binary instead of building the release one
#   SKIP="detect-secrets secretlint"   leave peers out;  MISSES=1  list misses (never values)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CORPUS="${1:-/tmp/rsafe-secrets-corpus}"
BENCH_DIR="${BENCH_DIR:-/tmp/rsafe-bench}"
PEERS_DIR="${PEERS_DIR:-/tmp/rsafe-peers}"
SKIP="${SKIP:-}"
OUT="$CORPUS-reports"  # outside the corpus: rsafe audits the whole directory
log() { printf '== %s\n' "$*" >&2; }
wanted() { [[ " $SKIP " != *" $1 "* ]]; }
score() { python3 bench/secrets-corpus/score.py "$CORPUS" "$1" "$2" ${MISSES:+--misses}; }

python3 bench/secrets-corpus/gen.py "$CORPUS"
mkdir -p "$OUT"
if [ -z "${RSAFE:-}" ]; then
  log "build rsafe (release)"
  cargo build --release --locked --quiet
  RSAFE="$PWD/target/release/rsafe"
fi

ROWS=()
row() { # name score-json seconds
  ROWS+=("$(jq -r --arg n "$1" --arg s "$3" \
    '"| \($n) | \(.recall) (\(.found)/\(.secrets)) | \(.recall_realistic) | \(.precision) (\(.false_positive_lines) false of \(.reported_lines) lines) | \($s) s |"' <<<"$2")")
  jq -c '{tool, per_class}' <<<"$2" >&2
}
timed() { # OUT_FILE CMD... → prints wall seconds
  local t0 t1
  t0=$(date +%s.%N)
  "${@:2}" > "$1" 2> "$1.err" || true
  t1=$(date +%s.%N)
  printf '%.2f' "$(echo "$t1 - $t0" | bc -l)"
}

log "rsafe"
s=$(timed "$OUT/rsafe.json" "$RSAFE" audit "$CORPUS" --format json)
row "rsafe $("$RSAFE" --version | awk '{print $2}')" "$(score rsafe "$OUT/rsafe.json")" "$s"

if wanted detect-secrets; then
  DS="$BENCH_DIR/venv/bin/detect-secrets"
  if [ ! -x "$DS" ]; then
    { python3 -m venv "$BENCH_DIR/venv" && "$BENCH_DIR/venv/bin/pip" install --quiet detect-secrets; } >&2 || true
  fi
  if [ -x "$DS" ]; then
    log "detect-secrets"
    s=$(cd "$CORPUS" && timed "$OUT/detect-secrets.json" "$DS" scan --all-files cases)
    row "detect-secrets $("$DS" --version)" "$(score detect-secrets "$OUT/detect-secrets.json")" "$s"
  else
    ROWS+=("| detect-secrets | skipped: pip install failed | | | |")
  fi
fi

if wanted secretlint; then
  NPM_DIR="$PEERS_DIR/npm"
  if [ ! -x "$NPM_DIR/node_modules/.bin/secretlint" ] && command -v npm >/dev/null; then
    mkdir -p "$NPM_DIR"
    [ -f "$NPM_DIR/package.json" ] || echo '{"private": true}' > "$NPM_DIR/package.json"
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --silent secretlint @secretlint/secretlint-rule-preset-recommend) >&2 || true
  fi
  if [ -x "$NPM_DIR/node_modules/.bin/secretlint" ]; then
    echo '{"rules":[{"id":"@secretlint/secretlint-rule-preset-recommend"}]}' > "$PEERS_DIR/secretlintrc.json"
    log "secretlint"
    s=$(cd "$CORPUS" && timed "$OUT/secretlint.json" "$NPM_DIR/node_modules/.bin/secretlint" "cases/**/*" --format json \
      --secretlintrc "$PEERS_DIR/secretlintrc.json" --secretlintignore /dev/null)
    row "secretlint $("$NPM_DIR/node_modules/.bin/secretlint" --version) (preset-recommend)" "$(score secretlint "$OUT/secretlint.json")" "$s"
  else
    ROWS+=("| secretlint | skipped: npm install failed | | | |")
  fi
fi

# Start-up: one small file audited on its own (the rules are loaded for every run).
echo 'FROM scratch' > "$OUT/Dockerfile"
if command -v hyperfine >/dev/null; then
  startup=$(hyperfine -N --warmup 3 --runs 30 --export-json "$OUT/startup.json" "$RSAFE audit $OUT/Dockerfile" >/dev/null 2>&1 &&
    jq -r '.results[0] | "\(.mean * 1000 | . * 10 | round / 10) ms mean, \(.min * 1000 | . * 10 | round / 10) ms min"' "$OUT/startup.json")
else
  best=""
  for _ in $(seq 20); do
    t0=$(date +%s%N); "$RSAFE" audit "$OUT/Dockerfile" >/dev/null 2>&1 || true; t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000 ))
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
  done
  startup="$(echo "scale=1; $best / 1000" | bc) ms (best of 20)"
fi

echo
echo "Corpus: $(find "$CORPUS/cases" -type f | wc -l) files; $(awk -F'\t' '$4=="secret"' "$CORPUS/labels.tsv" | wc -l) realistic secrets, $(awk -F'\t' '$4=="filler"' "$CORPUS/labels.tsv" | wc -l) filler fixtures, $(awk -F'\t' '$4=="clean"' "$CORPUS/labels.tsv" | wc -l) look-alike lines."
echo
echo "| tool | recall (all) | recall (realistic) | precision | wall |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "rsafe audit of a one-line Dockerfile (start-up): $startup"
