#!/usr/bin/env bash
# Breaks rsafe on purpose: kill -9 of `run`, `exec` and `stop` at random moments, with several
# containers starting and stopping at once; then `ps -a` and `rm -f` must see and remove every
# container, and nothing may be left: no process, cgroup, mount or state directory.
#
#   bash bench/chaos.sh [ROUNDS]        (as root, or as an unprivileged user)
#
# RSAFE (the binary, default target/debug/rsafe), IMAGE (an OCI layout to load, default the
# busybox layout the tests build under target/tmp/fixtures). Exits 1 if anything is left;
# SKIP_RM=1 leaves the containers, to see that the check finds them.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
R=${RSAFE:-$PWD/target/debug/rsafe}
IMAGE=${IMAGE:-$PWD/target/tmp/fixtures/oci-busybox}
ROUNDS=${1:-10}
RSAFE_ROOT=$(mktemp -d /tmp/rsafe-chaos-XXXXXX)
chmod o+x "$RSAFE_ROOT"
trap 'rm -rf "$RSAFE_ROOT"' EXIT
# The store on every command line: a process left behind is found by it.
rs() { "$R" --root "$RSAFE_ROOT" "$@"; }
# The same, replacing the (sub)shell it runs in: `rsx CMD & kill -9 $!` must hit rsafe itself, not
# a subshell whose rsafe would go on unharmed (what this script killed before).
rsx() { exec "$R" --root "$RSAFE_ROOT" "$@"; }
rs -q load "$IMAGE" >/dev/null || { echo "chaos: cannot load $IMAGE" >&2; exit 2; }
img=$(rs images | awk 'NR==2 {print $1":"$2}')
ms() { printf '0.%03d' $((RANDOM % $1)); }
for i in $(seq 1 "$ROUNDS"); do
  # A foreground run killed at a random moment of its start or its run.
  ( rsx -q run --name "fg$i" "$img" 'sleep 2' >/dev/null 2>&1 & p=$!
    sleep "$(ms 400)"; kill -9 $p 2>/dev/null; wait $p 2>/dev/null ) &
  # A detached one; an exec into it killed, then a stop killed half-way.
  ( rs -q run -d --name "bg$i" "$img" 'sleep 30' >/dev/null 2>&1
    sleep "$(ms 300)"
    rsx -q exec "bg$i" 'sleep 5' >/dev/null 2>&1 & e=$!
    sleep "$(ms 500)"; kill -9 $e 2>/dev/null
    rsx -q stop -t 1 "bg$i" >/dev/null 2>&1 & s=$!
    sleep "$(ms 90)"; kill -9 $s 2>/dev/null; wait ) 2>/dev/null &
  wait
done
echo "containers seen by ps -a: $(rs ps -a -q | wc -l)"
ids=$(rs ps -a -q)
[ -n "$ids" ] && [ -z "${SKIP_RM:-}" ] && rs -q rm -f $ids >/dev/null
left=0
say() { echo "chaos: left behind: $*"; left=1; }
[ -z "$(rs ps -a -q)" ] || say "containers in ps -a after rm -f"
[ -z "$(ls -A "$RSAFE_ROOT/containers" 2>/dev/null)" ] || say "state directories"
grep -q "$RSAFE_ROOT" /proc/self/mountinfo && say "mounts under the store"
# Processes of this store (their command line names it: `--root STORE`, a pattern its own grep does not match). A killed rsafe's helpers end by
# their parent-death signal, a moment later: give them 5 s.
alive() {
  for p in /proc/[0-9]*; do
    cat "$p/cmdline" 2>/dev/null | tr '\0' ' ' | grep -q -- "--root[ ]$RSAFE_ROOT" &&
      echo "${p#/proc/}: $(cat "$p/cmdline" 2>/dev/null | tr '\0' ' ')"
  done
}
for _ in $(seq 50); do [ -z "$(alive)" ] && break; sleep 0.1; done
while read -r line; do [ -n "$line" ] && say "process $line"; done <<< "$(alive)"
[ $left = 0 ] && echo "chaos: $ROUNDS rounds, nothing left"
exit $left
