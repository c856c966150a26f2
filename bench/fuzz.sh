#!/usr/bin/env bash
# Fuzz soak: every target of tests/fuzz/ for a fixed time each (default 30 s; the CI run is a
# fixed execution count instead), then a table of executions, outcomes and findings per target.
#
#   bash bench/fuzz.sh            # 30 s per target (about 11 minutes on 2 cores)
#   SECONDS_PER_TARGET=5 bash bench/fuzz.sh
#   RSAFE_FUZZ_SEED=7 bash bench/fuzz.sh   # another deterministic mutation sequence
#
# Failing inputs land in target/fuzz-crashes/<target>/. The test binary is the debug build
# (dependencies at opt-level 2), as in CI, so the numbers are comparable with the README.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${SECONDS_PER_TARGET:-30}"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
# The test binary is run directly (not through cargo), so other builds are not blocked on
# cargo's lock for the length of the soak.
bin=$(cargo test --test fuzz --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
start=$(date +%s)
status=0
# One test at a time: each target gets its own time budget.
RSAFE_FUZZ_SECONDS="$secs" RSAFE_FUZZ_REPORT="$report" \
  "$bin" --test-threads=1 --nocapture 2>&1 \
  | grep -aE '^fuzz |^  |^test result' || status=$?
end=$(date +%s)
echo
echo "| target | executions | seconds | exec/s | distinct outcomes | new failures | open-finding inputs |"
echo "|---|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '{ printf "| %s | %d | %s | %.0f | %d | %d | %d |\n", $1, $2, $3, $2/($3>0?$3:1), $4, $5, $6 }' "$report"
awk -F'\t' '{ e += $2 } END { printf "\ntotal: %d executions in '"$((end - start))"' s wall\n", e }' "$report"
exit "$status"
