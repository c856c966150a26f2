#!/usr/bin/env bash
# Anonymous volumes: `run --rm` of an image that declares `VOLUME /var/lib/db` holding FILES
# files (4 KiB each), so each run makes an anonymous volume, copies the image's files into it
# and removes it at the end; against the same run with `--tmpfs /var/lib/db` (no volume, no
# copy), for rsafe and podman (its own storage root, so the host's podman state is untouched).
#
#   bash bench/anonvol.sh [work dir]          FILES=1000 RUNS=10 to change the sizes
#
# Run as root. Installs what is missing with apt-get (busybox-static umoci podman runc
# hyperfine). The image is built with umoci from busybox-static, loaded into rsafe's store and,
# through `rsafe save`, into podman's. podman runs with runc, cgroupfs and --ulimit
# nofile/nproc 1024 (this host refuses podman's default raise, and crun 1.8 a hybrid cgroup
# host). Each tool's store is checked to hold no volume after the runs. Prints the load average
# first (the machine may be shared), then hyperfine's table.
# RSAFE=/path/to/rsafe measures that binary instead of this tree's release build.
#
# Results (release build, 2 shared vCPUs, FILES=1000, 10 runs, three rounds at load average
# 2.7-5.2; podman 4.3.1 with runc, overlay): mean (min) in ms
#   rsafe  run --rm, anonymous volume   50 (37)   1397 (434)   622 (368)
#   rsafe  run --rm --tmpfs             18 (9)      43 (27)     53 (31)
#   podman run --rm, anonymous volume  747 (526)   950 (752)  1053 (860)
#   podman run --rm --tmpfs            334 (251)   364 (307)   398 (320)
# The volume's cost is this disk's: `rm -rf` of the same 1,000 4 KiB files after a sync takes
# 2.7 s here (ext4 mounted with discard), so a round's numbers follow what else writes.
# Nothing was left in either store after any round.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "bench/anonvol.sh: run as root" >&2; exit 1; }
FILES="${FILES:-1000}"
RUNS="${RUNS:-10}"
WORK="${1:-/tmp/rsafe-bench-anonvol}"
log() { printf '== %s\n' "$*" >&2; }

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v umoci >/dev/null || need+=(umoci)
command -v hyperfine >/dev/null || need+=(hyperfine)
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
LAYOUT="$WORK/anonvol-image"
if [ ! -f "$LAYOUT/index.json" ]; then
    log "build the image: VOLUME /var/lib/db with $FILES files"
    rm -rf "$LAYOUT" "$WORK/bundle"
    umoci init --layout "$LAYOUT"
    umoci new --image "$LAYOUT:base"
    umoci unpack --image "$LAYOUT:base" "$WORK/bundle"
    r="$WORK/bundle/rootfs"
    mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/var/lib/db"
    cp /bin/busybox "$r/bin/busybox"
    for tool in sh true; do ln -sf busybox "$r/bin/$tool"; done
    head -c 4096 /dev/urandom >"$WORK/block"
    for i in $(seq "$FILES"); do cp "$WORK/block" "$r/var/lib/db/f$i"; done
    chown -R 999:999 "$r/var/lib/db"
    umoci repack --image "$LAYOUT:base" "$WORK/bundle"
    umoci config --image "$LAYOUT:base" --tag vol --config.volume /var/lib/db \
        --config.cmd /bin/true
    umoci rm --image "$LAYOUT:base"
    umoci gc --layout "$LAYOUT"
    rm -rf "$WORK/bundle"
fi
STORE="$WORK/rsafe-store"
mkdir -p "$STORE"
chmod 755 "$STORE"
"$RSAFE" -q --root "$STORE" load "$LAYOUT" >/dev/null
IMAGE="anonvol-image:vol"
P="podman --root $WORK/podman --runroot $WORK/podman-run --cgroup-manager cgroupfs --events-backend none"
"$RSAFE" -q --root "$STORE" save -o "$WORK/image.tar" "$IMAGE"
$P load -q -i "$WORK/image.tar" >/dev/null
PRUN="$P run --runtime runc --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"

log "load average: $(cut -d' ' -f1-3 /proc/loadavg); FILES=$FILES, $RUNS runs each"
hyperfine -w 2 -r "$RUNS" -N --export-markdown "$WORK/anonvol.md" \
    -n 'rsafe run --rm (anonymous volume)' "$RSAFE --root $STORE run --rm $IMAGE" \
    -n 'rsafe run --rm --tmpfs /var/lib/db' "$RSAFE --root $STORE run --rm --tmpfs /var/lib/db $IMAGE" \
    -n 'podman run --rm (anonymous volume)' "$PRUN --rm $IMAGE" \
    -n 'podman run --rm --tmpfs /var/lib/db' "$PRUN --rm --tmpfs /var/lib/db $IMAGE"
left_rsafe=$("$RSAFE" --root "$STORE" volume ls -q | wc -l)
left_podman=$($P volume ls -q | wc -l)
[ "$left_rsafe" = 0 ] || { echo "rsafe left $left_rsafe volumes" >&2; exit 1; }
[ "$left_podman" = 0 ] || { echo "podman left $left_podman volumes" >&2; exit 1; }
cat "$WORK/anonvol.md"
