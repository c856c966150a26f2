#!/usr/bin/env bash
# The latency of a new process in a running container: `rsafe exec NAME true` (a `run -d`
# busybox container) and `rsafe-runtime exec ID true` (a created and started bundle), each
# under two rsafe binaries (before and after a change of the exec path), with `runc exec` of
# the same bundle for reference. One hyperfine run, as root; installs what is missing with
# apt-get (hyperfine jq busybox-static runc).
#
#   bash bench/exec.sh RSAFE_BEFORE RSAFE_AFTER [work dir]    RUNS=40 WARMUP=5 to change it
#
# Each binary runs its own container (its own store and runtime root under the work dir);
# every container is removed at the end.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/exec.sh: run as root" >&2; exit 1; }
BEFORE=$(realpath "$1") AFTER=$(realpath "$2")
WORK="${3:-/tmp/rsafe-bench-exec}"
RUNS="${RUNS:-40}" WARMUP="${WARMUP:-5}"
need=()
for p in hyperfine:hyperfine jq:jq busybox-static:busybox runc:runc; do
  command -v "${p#*:}" >/dev/null || need+=("${p%%:*}")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "== apt-get install ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
rm -rf "$WORK"
mkdir -p "$WORK/bundle/rootfs"/{bin,etc,tmp,proc,sys,dev,root}
B="$WORK/bundle"
cp "$(command -v busybox)" "$B/rootfs/bin/busybox"
for a in $(busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$B/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$B/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$B/rootfs/etc/group"
chmod 1777 "$B/rootfs/tmp"
(cd "$B" && "$AFTER" runtime spec)
jq '.process.terminal=false | .process.args=["/bin/sleep","1000"]' "$B/config.json" > "$B/c.json"
mv "$B/c.json" "$B/config.json"

cleanup() {
  for v in before after; do
    bin=$BEFORE; [ $v = after ] && bin=$AFTER
    "$bin" --root "$WORK/store-$v" rm -f bench >/dev/null 2>&1 || true
    "$bin" runtime --root "$WORK/rt-$v" delete --force bench >/dev/null 2>&1 || true
  done
  command -v runc >/dev/null && runc --root "$WORK/rt-runc" delete --force bench >/dev/null 2>&1
  true
}
trap cleanup EXIT

cmds=()
for v in before after; do
  bin=$BEFORE; [ $v = after ] && bin=$AFTER
  "$bin" --root "$WORK/store-$v" run -d --name bench "$B/rootfs" sleep 1000 >/dev/null
  "$bin" runtime --root "$WORK/rt-$v" create --bundle "$B" bench </dev/null >/dev/null
  "$bin" runtime --root "$WORK/rt-$v" start bench
  # Both must work, or hyperfine would time a failure.
  [ "$("$bin" --root "$WORK/store-$v" exec bench echo ok)" = ok ]
  [ "$("$bin" runtime --root "$WORK/rt-$v" exec bench echo ok)" = ok ]
  cmds+=(-n "rsafe exec ($v)" "$bin --root $WORK/store-$v exec bench true")
  cmds+=(-n "rsafe-runtime exec ($v)" "$bin runtime --root $WORK/rt-$v exec bench true")
done
if command -v runc >/dev/null; then
  runc --root "$WORK/rt-runc" create --bundle "$B" bench </dev/null >/dev/null
  runc --root "$WORK/rt-runc" start bench
  cmds+=(-n "runc exec" "runc --root $WORK/rt-runc exec bench true")
fi
echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs" >&2
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" -u millisecond "${cmds[@]}"
