#!/usr/bin/env bash
# How long finding (and auditing) the containers of a busy host from /proc takes.
#
# Starts N bubblewrap sandboxes (default 50, each `sleep` under bwrap's pid 1: 2 processes, own
# namespaces) on a busybox rootfs, then times with hyperfine:
#   - the floor: procps `ps` reading every process's pid and mount namespace and cgroup
#     (what any tool must read at least);
#   - `rsafe ps` (grouping, state files, names, secret redaction of commands);
#   - `rsafe audit --running` (every check on every container), when this build has it.
# Needs root (to read every process), bwrap, busybox-static, hyperfine.
# Usage: bash bench/procs.sh [N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N="${1:-50}"
for t in bwrap hyperfine busybox; do
  command -v "$t" >/dev/null || { echo "bench: $t is required (bash .ci/setup-debian.sh)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench: run as root, to inspect every process" >&2; exit 1; }
cargo build --release --quiet
RSAFE="$PWD/target/release/rsafe"

WORK="$(mktemp -d /tmp/rsafe-bench-procs.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/proc" "$WORK/rootfs/dev"
cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
for a in sh sleep; do ln -s busybox "$WORK/rootfs/bin/$a"; done
for _ in $(seq 1 "$N"); do
  bwrap --ro-bind "$WORK/rootfs" / --proc /proc --dev /dev --unshare-all --die-with-parent \
    sleep 3600 </dev/null >/dev/null 2>&1 &
  PIDS+=("$!")
done
sleep 1
echo "processes: $(ls /proc | grep -c '^[0-9]')  containers found: $("$RSAFE" ps 2>/dev/null | tail -n +2 | wc -l)"

CMDS=(-n "procps ps (pid, pidns, mntns, cgroup)" "ps -e -o pid=,pidns=,mntns=,cgroup="
      -n "rsafe ps" "$RSAFE ps")
if "$RSAFE" audit --help 2>/dev/null | grep -q -- '--running'; then
  CMDS+=(-n "rsafe audit --running" "$RSAFE audit --running -q")
fi
hyperfine -N -w 3 -r 30 -i "${CMDS[@]}"
