#!/usr/bin/env bash
# What reporting a learned policy's denials costs (README "Learned policies"). A static
# program makes N mkdir(2) calls in a loop; its policy is learned from the same program
# making none, so every call is denied. It runs under that policy with
# `report_denials = true` (each call notified, answered EPERM by rsafe's supervisor thread)
# and `= false` (the filter's own EPERM), for N = 0 and N; the difference over N is the cost
# of one reported denial. A second program opens an allowed file N times (openat + close),
# under a policy learned from it opening it once: with `report_denials = true` each open is
# notified too, its path checked against the landlock rules by rsafe and continued; the
# difference over N is what every allowed file call costs under such a policy. Then the same
# mkdir program under rsafe-runtime (`rsafe runtime run --bundle B ID`: create, start, wait,
# delete), from bundles naming each policy with `rsafe.policy=NAME`: with `report_denials =
# true` create also forks the denial reporter that answers the calls. Run as root;
# installs hyperfine and jq with apt-get when missing (gcc and a static libc come with
# .ci/setup-debian.sh's build-essential).
#   bash bench/denials.sh [N]     RSAFE=path/to/rsafe to skip the release build
set -euo pipefail
N=${1:-20000}
cd "$(dirname "$0")/.."
for tool in hyperfine jq; do
    command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$tool" >/dev/null
done
if [ -z "${RSAFE:-}" ]; then
    cargo build --release --locked --quiet
    RSAFE=$PWD/target/release/rsafe
fi
for tool in hyperfine gcc jq; do
    command -v "$tool" >/dev/null || { echo "bench/denials.sh: $tool is required" >&2; exit 2; }
done
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{tmp,proc,sys,dev,data}
echo allowed >"$ROOTFS/data/f"
cat >"$WORK/loop.c" <<'C'
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0;
    for (long i = 0; i < n; i++)
        syscall(SYS_mkdir, "/tmp/x", 0755);
    return 0;
}
C
gcc -O2 -static -o "$ROOTFS/loop" "$WORK/loop.c"
cat >"$WORK/open.c" <<'C'
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0;
    for (long i = 0; i < n; i++) {
        long fd = syscall(SYS_openat, AT_FDCWD, "/data/f", O_RDONLY);
        if (fd < 0)
            return 1;
        close(fd);
    }
    return 0;
}
C
gcc -O2 -static -o "$ROOTFS/open" "$WORK/open.c"
STORE="--root $WORK/store"

$RSAFE $STORE run --rm --learn "$WORK/on.toml" "$ROOTFS" /loop 0 >/dev/null 2>&1
sed 's/^report_denials = true$/report_denials = false/' "$WORK/on.toml" >"$WORK/off.toml"
grep -q 'report_denials = false' "$WORK/off.toml"
$RSAFE $STORE run --rm --learn "$WORK/open-on.toml" "$ROOTFS" /open 1 >/dev/null 2>&1
sed 's/^report_denials = true$/report_denials = false/' "$WORK/open-on.toml" >"$WORK/open-off.toml"

# Each variant is checked once: the denial is reported (or not) and nothing else is denied.
on=$($RSAFE $STORE run --rm --policy "$WORK/on.toml" "$ROOTFS" /loop 3 2>&1)
[ "$on" = "rsafe: denied: mkdir /tmp/x (not in policy)" ] || { echo "unexpected: $on" >&2; exit 1; }
off=$($RSAFE $STORE run --rm --policy "$WORK/off.toml" "$ROOTFS" /loop 3 2>&1)
[ -z "$off" ] || { echo "unexpected: $off" >&2; exit 1; }
for v in open-on open-off; do
    out=$($RSAFE $STORE run --rm --policy "$WORK/$v.toml" "$ROOTFS" /open 3 2>&1)
    [ -z "$out" ] || { echo "unexpected: $out" >&2; exit 1; }
done

run() { echo "$RSAFE $STORE run --rm --policy $WORK/$1.toml $ROOTFS /loop $2"; }
opens() { echo "$RSAFE $STORE run --rm --policy $WORK/$1.toml $ROOTFS /open $2"; }
hyperfine --warmup 2 --runs "${RUNS:-10}" --export-markdown "$WORK/table.md" \
    -n "report_denials = true, 0 calls" "$(run on 0) 2>/dev/null" \
    -n "report_denials = true, $N denied calls" "$(run on "$N") 2>/dev/null" \
    -n "report_denials = false, 0 calls" "$(run off 0)" \
    -n "report_denials = false, $N denied calls" "$(run off "$N")" \
    -n "report_denials = true, $N allowed opens" "$(opens open-on "$N")" \
    -n "report_denials = false, $N allowed opens" "$(opens open-off "$N")"
cat "$WORK/table.md"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

# Under rsafe-runtime: one bundle per policy and call count, the policies by name.
mkdir -p "$WORK/policies" "$WORK/oci-root"
cp "$WORK/on.toml" "$WORK/off.toml" "$WORK"/on.seccomp.json "$WORK/policies/"
bundle() { # NAME POLICY N
    mkdir -p "$WORK/$1"
    $RSAFE runtime spec --bundle "$WORK/$1"
    jq --arg r "$ROOTFS" --arg p "$2" --arg n "$3" \
        '.root = {path: $r, readonly: false} | .process.terminal = false
         | .process.args = ["/loop", $n] | .annotations = {"rsafe.policy": $p}' \
        "$WORK/$1/config.json" >"$WORK/$1/c" && mv "$WORK/$1/c" "$WORK/$1/config.json"
}
for p in on off; do bundle "b-$p-0" "$p" 0; bundle "b-$p-n" "$p" "$N"; done
oci() { echo "$RSAFE runtime --root $WORK/oci-root --policy-dir $WORK/policies run --bundle $WORK/$1 bench"; }
out=$(bundle b-check on 3 && $RSAFE runtime --root "$WORK/oci-root" --policy-dir "$WORK/policies" run --bundle "$WORK/b-check" check 2>&1)
[ "$out" = "rsafe: denied: mkdir /tmp/x (not in policy)" ] || { echo "unexpected: $out" >&2; exit 1; }
hyperfine --warmup 2 --runs "${RUNS:-10}" --export-markdown "$WORK/oci.md" \
    -n "rsafe-runtime, report_denials = true, 0 calls" "$(oci b-on-0) 2>/dev/null" \
    -n "rsafe-runtime, report_denials = false, 0 calls" "$(oci b-off-0)" \
    -n "rsafe-runtime, report_denials = true, $N denied calls" "$(oci b-on-n) 2>/dev/null" \
    -n "rsafe-runtime, report_denials = false, $N denied calls" "$(oci b-off-n)"
cat "$WORK/oci.md"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
