#!/usr/bin/env bash
# Fault soak: tests/faults.rs with many more kills than CI gives it (RSAFE_FAULT_KILLS per
# caller, default 200 here against 12 in CI), repeated ROUNDS times, as root, the test user and
# the test user with subordinate ids. Each round kills rsafe (foreground and -d monitors) at
# spread moments of start-up, claims ten names twice at once, runs thirty --rm containers at
# once, fills a 4 MiB store, damages a state file, kills a log relay, kills a load mid-blob and
# leaves an rmi's gc undone, kills pulls from a real registry (early and mid-layer), fills a
# 16 MiB store with a pull, a load and a workload's writes (foreground and -d), kills rms of
# containers with 1000 files, then checks that nothing is left that ps -a, rm and gc cannot see
# and remove.
#
#   bash bench/faults.sh                      # 200 kills per caller, 3 rounds
#   RSAFE_FAULT_KILLS=50 ROUNDS=1 bash bench/faults.sh
#
# Needs root (the test user, the tmpfs store); the extraction kills are left to CI's run.
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${RSAFE_FAULT_KILLS:-200}"
rounds="${ROUNDS:-3}"
bin=$(cargo test --test faults --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
start=$(date +%s)
for round in $(seq "$rounds"); do
  echo "== round $round: $kills kills per caller"
  RSAFE_TEST_REQUIRE=1 RSAFE_FAULT_KILLS="$kills" "$bin" --test-threads=1 \
    --skip killed_extractions --skip a_killed_extraction_helper 2>&1 | grep -E '^test |^test result'
done
echo "total: $rounds rounds, $((rounds * kills * 3)) kills, $(( $(date +%s) - start )) s"
