#!/usr/bin/env bash
# `system df` and `container prune -f` over N stopped containers: rsafe against podman (its
# `--rootfs` containers in a private storage root, so the host's podman state is untouched).
#
#   bash bench/prune.sh [work dir]          N=100 ROUNDS=3 to change the sizes
#
# Run as root. Installs what is missing with apt-get (busybox-static podman). Each round makes
# N containers per tool that ran `true` and exited (rsafe: `run`; podman: `run`), times one
# `system df`, then one `container prune -f`, and checks that the store is empty after. The
# root filesystem is busybox-static's, copied once. Host quirks (as in bench/startup.sh): root
# lacks CAP_SYS_RESOURCE, so podman gets --ulimit nofile/nproc 1024; everything runs in a
# private mount namespace with the controller-less /sys/fs/cgroup/unified unmounted (crun 1.8
# refuses a hybrid cgroup host otherwise). Prints one line per tool and round (ms),
# and the load average first (the machine may be shared).
# RSAFE=/path/to/rsafe measures that binary instead of this tree's release build.
#
# Results (release build, 2 shared vCPUs, load average 1.1 at the start, N=100, 3 rounds; podman
# 4.3 with crun, vfs storage): system df rsafe 15/11/12 ms, podman 74/98/68 ms; container prune
# -f rsafe 86/74/74 ms, podman 735/1527/630 ms. Nothing left after any prune.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "bench/prune.sh: run as root" >&2; exit 1; }
N="${N:-100}"
ROUNDS="${ROUNDS:-3}"
WORK="${1:-/tmp/rsafe-bench-prune}"
log() { printf '== %s\n' "$*" >&2; }

need=()
command -v podman >/dev/null || need+=(podman)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ "${#need[@]}" -gt 0 ]; then
    apt-get install -y "${need[@]}" >/dev/null
fi
if [ -z "${RSAFE:-}" ]; then
    cargo build --release --locked --quiet
    RSAFE="$PWD/target/release/rsafe"
fi

mkdir -p "$WORK"
chmod 755 "$WORK"
ROOTFS="$WORK/rootfs"
if [ ! -x "$ROOTFS/bin/sh" ]; then
    mkdir -p "$ROOTFS/bin" "$ROOTFS/proc" "$ROOTFS/dev" "$ROOTFS/sys" "$ROOTFS/tmp" "$ROOTFS/etc"
    cp /bin/busybox "$ROOTFS/bin/busybox"
    for tool in sh true sleep; do ln -sf busybox "$ROOTFS/bin/$tool"; done
fi
STORE="$WORK/rsafe-store"
PODMAN=(podman --root "$WORK/podman" --runroot "$WORK/podman-run" --storage-driver vfs)

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

make_rsafe() {
    for _ in $(seq "$N"); do "$RSAFE" --root "$STORE" run "$ROOTFS" /bin/true; done
}
make_podman() {
    for _ in $(seq "$N"); do
        "${PODMAN[@]}" run --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
            --rootfs "$ROOTFS" /bin/true >/dev/null
    done
}

if [ -z "${IN_NS:-}" ] && mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
    exec unshare -m --propagation private env IN_NS=1 RSAFE="$RSAFE" N="$N" ROUNDS="$ROUNDS" \
        bash -c 'umount /sys/fs/cgroup/unified 2>/dev/null || true; exec bash "$0" "$1"' \
        "${BASH_SOURCE[0]}" "$WORK"
fi

log "load average: $(cut -d' ' -f1-3 /proc/loadavg); N=$N containers, $ROUNDS rounds"
printf '%-8s %-6s %12s %14s\n' tool round "df ms" "prune ms"
for round in $(seq "$ROUNDS"); do
    make_rsafe
    t=$(date +%s%N); "$RSAFE" --root "$STORE" system df >/dev/null; df_ms=$(ms "$t")
    t=$(date +%s%N); "$RSAFE" --root "$STORE" container prune -f >/dev/null; prune_ms=$(ms "$t")
    left=$("$RSAFE" --root "$STORE" ps -a -q | wc -l)
    [ "$left" = 0 ] || { echo "rsafe left $left containers" >&2; exit 1; }
    printf '%-8s %-6s %12s %14s\n' rsafe "$round" "$df_ms" "$prune_ms"

    make_podman
    t=$(date +%s%N); "${PODMAN[@]}" system df >/dev/null; df_ms=$(ms "$t")
    t=$(date +%s%N); "${PODMAN[@]}" container prune -f >/dev/null; prune_ms=$(ms "$t")
    left=$("${PODMAN[@]}" ps -a -q | wc -l)
    [ "$left" = 0 ] || { echo "podman left $left containers" >&2; exit 1; }
    printf '%-8s %-6s %12s %14s\n' podman "$round" "$df_ms" "$prune_ms"
done
