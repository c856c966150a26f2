#!/usr/bin/env bash
# `rsafe audit` on a ~1 GB image made mostly of ONE big layer: the case where a reader that
# inflates, hashes and scans a layer on a single thread leaves the other cores idle, and where
# buffering file contents would show in the peak RSS.
#
# The image (built once with umoci, cached in $BENCH_DIR, default /tmp/rsafe-bench):
#   layer 1  Debian bookworm minbase: layer 1 of bench/audit.sh's image (run that script once first)
#   layer 2  real files of this host, ~860 MB: /usr/lib/x86_64-linux-gnu, /usr/lib/python3.11,
#            /usr/share/doc, /usr/share/perl — plus /var/www/app/.env with (synthetic) AWS
#            credentials, last in the layer's tar stream
# The content (and so the compression ratio and the mix of text and binaries) is whatever this
# host has in those directories: compare runs on the same host only.
#
# Prints, per run: wall and CPU (user + system) seconds, MB/s (uncompressed layer bytes, the
# `.stats.bytes` of the JSON report, per wall second and per CPU second) and the peak RSS
# (/usr/bin/time %M), and the load average before the runs (the machine may be shared).
# RSAFE=/path/to/rsafe measures that binary instead of building this tree's.
#
# Results (2 shared vCPUs, AMD EPYC; load average 4.6-5.5 from other builds, so the audit got about
# one core and wall ~ CPU; 382 MB compressed, 1,032 MB uncompressed, 5 runs each, alternating):
#   before (main at e9118ae: one thread inflated, hashed and walked each layer): 3.09 s wall,
#     2.87 s CPU, 334 MB/s, peak RSS 96 MB; busiest thread 2.07 s (72% of the CPU)
#   after (reader thread per layer; diff_id hashed on the tar side; one 16 MiB budget for
#     queued file contents): 2.62 s wall, 2.75 s CPU, 394 MB/s, peak RSS 60 MB; busiest thread
#     1.45 s (53%), so on 2 idle cores the wall time cannot drop below 1.45 s (710 MB/s)
#   This script's own run of the "after" build (load 4.8): 2.32-2.90 s, 356-445 MB/s, 51-61 MB.
#   Floor: `gzip -dc` of the same blobs takes 5.5 s CPU. The profile is in the README.
# Needs: umoci, jq, GNU time (/usr/bin/time), the image of bench/audit.sh in $BENCH_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCH_DIR="${BENCH_DIR:-/tmp/rsafe-bench}"
RUNS="${RUNS:-5}"
CREATED="2023-11-14T22:13:20Z"
BASE="$BENCH_DIR/oci-debian-layers"
L="$BENCH_DIR/oci-large"
log() { printf '\n== %s\n' "$*" >&2; }

for t in umoci jq /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "bench: $t is required (bash .ci/setup-debian.sh)" >&2; exit 1; }
done
[ -f "$BASE/index.json" ] || { echo "bench: run bench/audit.sh once first (it builds $BASE)" >&2; exit 1; }

if [ -z "${RSAFE:-}" ]; then
  log "build rsafe (release)"
  cargo build --release --locked --quiet
  RSAFE="$PWD/target/release/rsafe"
fi
# After the build: cc-based build scripts rerun (and rebuild zstd) when it changes.
export SOURCE_DATE_EPOCH=1700000000

manifest_of() { # $1 = layout, $2 = tag
  jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]==$t) | .digest' \
    "$1/index.json" | cut -d: -f2
}

if [ ! -f "$L/index.json" ]; then
  log "build the image (once): Debian minbase + a big layer of this host's files"
  WORK="$(mktemp -d "$BENCH_DIR/build.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
  BASE_LAYER=$(jq -r '.layers[0].digest' "$BASE/blobs/sha256/$(manifest_of "$BASE" bench)" | cut -d: -f2)
  rm -rf "$L.tmp"
  umoci init --layout "$L.tmp"
  umoci new --image "$L.tmp:img"
  step() { # $1 = created_by; the bundle's rootfs is edited by the caller between unpack and repack
    umoci repack --image "$L.tmp:img" --history.created "$CREATED" --history.created_by "$1" "$WORK/b"
    rm -rf "$WORK/b"
  }
  umoci unpack --image "$L.tmp:img" "$WORK/b"
  tar -C "$WORK/b/rootfs" --numeric-owner -xpzf "$BASE/blobs/sha256/$BASE_LAYER"
  step "mmdebstrap --variant=minbase bookworm"
  umoci unpack --image "$L.tmp:img" "$WORK/b"
  tar -C / -cf - usr/lib/x86_64-linux-gnu usr/lib/python3.11 usr/share/doc usr/share/perl 2>/dev/null |
    tar -C "$WORK/b/rootfs" -xpf - --keep-directory-symlink
  mkdir -p "$WORK/b/rootfs/var/www/app"
  printf 'APP_ENV=production\nAWS_ACCESS_KEY_ID=AKIA4RSAFELARGE7XKZP\nAWS_SECRET_ACCESS_KEY=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\n' \
    > "$WORK/b/rootfs/var/www/app/.env"
  step "COPY --from=host /usr/lib /usr/share /var/www/app"
  umoci config --image "$L.tmp:img" --tag large --created "$CREATED" --history.created "$CREATED" \
    --config.user 1000:1000 --config.cmd /bin/bash
  umoci rm --image "$L.tmp:img"
  umoci gc --layout "$L.tmp"
  mv "$L.tmp" "$L"
fi
IMAGE="$L:large"

log "what rsafe reads"
"$RSAFE" audit "$IMAGE" --format json -q > "$BENCH_DIR/rsafe-large.json" || [ $? -eq 1 ]
BYTES=$(jq '.stats.bytes' "$BENCH_DIR/rsafe-large.json")
MANIFEST="$L/blobs/sha256/$(manifest_of "$L" large)"
COMPRESSED=$(jq '[.layers[].size] | add' "$MANIFEST")
echo "$(jq '.stats.layers' "$BENCH_DIR/rsafe-large.json") layers," \
  "$((COMPRESSED / 1000000)) MB compressed, $((BYTES / 1000000)) MB uncompressed," \
  "$(jq '.stats.files_read' "$BENCH_DIR/rsafe-large.json") files read for content"
echo "rsafe secret findings: $(jq -r '[.findings[] | select(.rule | startswith("secret.")) | "\(.rule) \(.location.path)"] | join("; ")' "$BENCH_DIR/rsafe-large.json")"

log "timing ($RUNS runs; load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-4s %8s %8s %9s %11s %9s\n' run "wall s" "cpu s" "MB/s" "MB/cpu-s" "RSS MB"
for i in $(seq "$RUNS"); do
  /usr/bin/time -f '%e %U %S %M' -o "$BENCH_DIR/time-large.txt" \
    "$RSAFE" audit "$IMAGE" -q --format json > /dev/null || [ $? -eq 1 ]
  read -r wall user sys rss < "$BENCH_DIR/time-large.txt"
  awk -v i="$i" -v b="$BYTES" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" 'BEGIN {
    printf "%-4s %8.2f %8.2f %9.1f %11.1f %9.1f\n", i, w, u + s, b / 1e6 / w, b / 1e6 / (u + s), r / 1024 }'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
