#!/usr/bin/env bash
# Concurrency soak: WORKERS workers run ROUNDS rounds each on one store, every round one of
# `run --rm`, `run -d` + `stop` + `rm`, `create` + `start` + `rm -f`, `run -d` + `exec` + `rm -f`,
# or a foreground run killed with -9; beside them a killer sends SIGKILL to a random rsafe
# process of the store (a run, its monitor or log relay, a stop, an rm, an exec…) every 0–0.5 s.
# Then `ps -a` and `rm -f` must see and remove every container, and nothing may be left: no
# process (by command line, or by a root inside the store), cgroup (`/sys/fs/cgroup/*/rsafe/ID`
# or `rsafe-ID` of any id the store ever held), mount, container directory, file in `tmp/`,
# or lock held on a file of the store (`/proc/locks`).
#
#   bash bench/soak.sh [ROUNDS] [WORKERS]           (as root; default 200 rounds, 3 workers)
#   SOAK_USER=rsafe-test bash bench/soak.sh 200     (the commands as that user, with its
#                                                    subordinate ids; the checks as root)
#
# RSAFE (default target/debug/rsafe), IMAGE (an OCI layout to load, default the busybox layout
# the tests build under target/tmp/fixtures). Prints what each worker did and how many kills
# landed; exits 1 if anything is left. SKIP_RM=1 leaves one running container, to see that
# the checks find it. SOAK_STORE=DIR soaks that store (made beforehand, kept afterwards).
#   a store 40 KiB from full:  mount -t tmpfs -o size=8m,mode=777 soak /mnt/s; load the image,
#   run it once, fill all but 40 KiB with dd; SOAK_STORE=/mnt/s bash bench/soak.sh 100
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
R=${RSAFE:-$PWD/target/debug/rsafe}
IMAGE=${IMAGE:-$PWD/target/tmp/fixtures/oci-busybox}
ROUNDS=${1:-200}
WORKERS=${2:-3}
# SOAK_STORE: a store of your own (a small tmpfs, to soak a full disk), kept afterwards.
STORE=${SOAK_STORE:-$(mktemp -d /tmp/rsafe-soak-XXXXXX)}
chmod 777 "$STORE"
LOG=$(mktemp -d /tmp/rsafe-soak-log-XXXXXX)
cleanup() {
  [ -n "${SKIP_RM:-}" ] && rs rm -f left >/dev/null
  [ -n "${SOAK_STORE:-}" ] || rm -rf "$STORE"
  rm -rf "$LOG"
}
trap cleanup EXIT
as_user=()
if [ -n "${SOAK_USER:-}" ]; then
  uid=$(id -u "$SOAK_USER") gid=$(id -g "$SOAK_USER")
  as_user=(setpriv "--reuid=$uid" "--regid=$gid" --init-groups -- env "HOME=$(getent passwd "$SOAK_USER" | cut -d: -f6)")
fi
# rsafe on this store; `exec` so that a kill of $! hits rsafe, not a subshell.
rs() { "${as_user[@]}" "$R" --root "$STORE" -q "$@"; }
rsx() { exec "${as_user[@]}" "$R" --root "$STORE" -q "$@"; }
img=$(rs load "$IMAGE" | sed -n '1s/^Loaded image: //p')
[ -n "$img" ] || { echo "soak: cannot load $IMAGE" >&2; exit 2; }
# A random time below $1 ms, in seconds for sleep.
ms() { local r=$((RANDOM % $1)); printf '%d.%03d' $((r / 1000)) $((r % 1000)); }

worker() {
  local w=$1 i n op
  for i in $(seq 1 "$ROUNDS"); do
    n="w$w-$i" op=$((RANDOM % 5))
    echo "$op" >>"$LOG/ops"
    case $op in
      0) rs run --rm "$img" true ;;
      1) rs run -d --name "$n" "$img" 'sleep 30' && rs stop -t 1 "$n" && rs rm "$n" ;;
      2) rs create --name "$n" "$img" 'sleep 1' && rs start "$n" && rs rm -f "$n" ;;
      3) rs run -d --name "$n" "$img" 'sleep 30' && rs exec "$n" true && rs rm -f "$n" ;;
      4) ( rsx run --rm --name "$n" "$img" 'sleep 2' & p=$!
           sleep "$(ms 600)"; kill -9 $p 2>/dev/null; wait $p ) ;;
    esac >/dev/null 2>>"$LOG/errors.$w"
  done
}

# The pids of rsafe processes of this store (their command line names it).
store_pids() { pgrep -f -- "--root $STORE "; }

# Every container id the store holds, recorded while the workers run (for the cgroup check).
sampler() {
  while [ -e "$LOG/running" ]; do
    ls "$STORE/containers" 2>/dev/null >>"$LOG/ids"
    sleep 0.2
  done
}

killer() {
  local pids victim
  while [ -e "$LOG/running" ]; do
    sleep "$(ms 500)"
    mapfile -t pids < <(store_pids)
    [ ${#pids[@]} -gt 0 ] || continue
    victim=${pids[$((RANDOM % ${#pids[@]}))]}
    tr '\0' ' ' 2>/dev/null <"/proc/$victim/cmdline" | awk '{print $5}' >>"$LOG/victims" &&
      kill -9 "$victim" 2>/dev/null
  done
}

start=$(date +%s)
touch "$LOG/running" "$LOG/victims" "$LOG/ids" "$LOG/ops"
sampler &
killer &
for w in $(seq "$WORKERS"); do worker "$w" & done
wait $(jobs -p | tail -n "$WORKERS")
rm -f "$LOG/running"
wait
secs=$(($(date +%s) - start))

count() { grep -cx "$1" "$LOG/ops"; }
echo "soak: $WORKERS workers x $ROUNDS rounds as ${SOAK_USER:-$(id -un)} in ${secs} s: run --rm $(count 0)," \
  "run -d+stop+rm $(count 1), create+start+rm -f $(count 2), run -d+exec+rm -f $(count 3), killed run $(count 4)"
echo "soak: $(wc -l <"$LOG/victims") kills: $(sort "$LOG/victims" | uniq -c | sort -rn | awk '{printf "%s %s, ", $2, $1}')"
echo "soak: $(cat "$LOG"/errors.* | grep -vc ' Killed ') error lines from the workers (the kills'), most common:"
cat "$LOG"/errors.* | grep -v ' Killed ' | sed -E 's/[0-9a-f]{12,64}/ID/g; s/w[0-9]+-[0-9]+/NAME/g' | sort | uniq -c | sort -rn | head -8

echo "soak: containers seen by ps -a: $(rs ps -a -q | wc -l)"
ids=$(rs ps -a -q)
[ -n "$ids" ] && rs rm -f $ids >/dev/null
# SKIP_RM=1: one running container left on purpose, which every check below must report.
[ -n "${SKIP_RM:-}" ] && rs run -d --name left "$img" 'sleep 60' >/dev/null
left=0
say() { echo "soak: left behind: $*"; left=1; }
[ -z "$(rs ps -a -q)" ] || say "containers in ps -a after rm -f"
for d in "$STORE"/containers/*; do [ -e "$d" ] && say "directory ${d#"$STORE"/}"; done
for f in "$STORE"/tmp/*; do [ -e "$f" ] && say "tmp file ${f#"$STORE"/}"; done
grep "$STORE/" /proc/self/mountinfo | while read -r m; do echo "soak: left behind: mount $m"; done
grep -q "$STORE/" /proc/self/mountinfo && left=1
# A killed rsafe's helpers end by their parent-death signal a moment later: give them 5 s.
for _ in $(seq 50); do [ -z "$(store_pids)" ] && break; sleep 0.1; done
for p in $(store_pids); do say "process $p: $(tr '\0' ' ' <"/proc/$p/cmdline")"; done
for p in /proc/[0-9]*; do
  case $(readlink "$p/root" 2>/dev/null) in "$STORE"/*) say "process ${p#/proc/} rooted in the store: $(tr '\0' ' ' <"$p/cmdline")" ;; esac
done
ls "$STORE/containers" 2>/dev/null >>"$LOG/ids"
sort -u "$LOG/ids" >"$LOG/ids.u"
while read -r cg; do
  id=${cg##*/}; id=${id#rsafe-}
  grep -qx "$id" "$LOG/ids.u" && say "cgroup $cg"
done < <(find /sys/fs/cgroup -maxdepth 8 -type d \( -path '*/rsafe/*' -o -name 'rsafe-*' \) 2>/dev/null)
# /proc/locks names a file as MAJOR:MINOR:INODE (hex device numbers).
d=$(stat -c %d "$STORE")
dev=$(printf '%02x:%02x' $(((d >> 8) & 0xfff)) $(((d & 0xff) | ((d >> 12) & 0xfff00))))
inodes=$(find "$STORE" -xdev -printf "$dev:%i\n" 2>/dev/null | sort -u)
grep -v -- '->' /proc/locks | while read -r _ _ _ _ pid file _; do
  grep -qx "$file" <<<"$inodes" && echo "soak: left behind: lock held by $pid on $file"
done | tee "$LOG/locks"
[ -s "$LOG/locks" ] && left=1
echo "soak: $(sort -u "$LOG/ids" | wc -l) containers made"
[ $left = 0 ] && echo "soak: nothing left"
exit $left
