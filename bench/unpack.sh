#!/usr/bin/env bash
# Unpack speed: `rsafe unpack` (release build) against `umoci unpack` and `umoci raw unpack`
# on a three-layer Debian bookworm image (~170 MB uncompressed, ~9k entries), in one hyperfine
# run, as root. Prints a markdown table (also saved as $CACHE/unpack.md).
#
# `rsafe unpack --layers` is the runner's path: each layer into its own cache directory, the
# layers extracted in parallel, synced and renamed into place.
#
# The image is built once into $RSAFE_BENCH_CACHE (default /var/tmp/rsafe-bench):
#   mmdebstrap --variant=minbase bookworm (from the host's apt sources), then with umoci:
#   layer 1 = everything but /usr/share, layer 2 = /usr/share,
#   layer 3 = /usr/share/doc deleted (whiteouts) + /opt/app (3000 generated files, one 8 MB file).
# The OCI layout it lands in is directly an rsafe store (the store *is* an OCI layout).
#
# Usage: bench/unpack.sh [RUNS]     (needs root, mmdebstrap, umoci, hyperfine)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS="${1:-10}"
CACHE="${RSAFE_BENCH_CACHE:-/var/tmp/rsafe-bench}"
[ "$(id -u)" = 0 ] || { echo "bench/unpack.sh: run as root (both tools then keep ownership)" >&2; exit 1; }
for t in mmdebstrap umoci hyperfine; do
  command -v "$t" >/dev/null || { echo "bench/unpack.sh: $t is missing (bash .ci/setup-debian.sh)" >&2; exit 1; }
done

cargo build --release --quiet
RSAFE="$PWD/target/release/rsafe"
LAYOUT="$CACHE/layout"
mkdir -p "$CACHE"

if [ ! -f "$LAYOUT/.complete" ]; then
  echo "building the benchmark image in $CACHE (once)..." >&2
  rm -rf "$LAYOUT" "$CACHE/bundle"
  [ -f "$CACHE/debian.tar" ] || mmdebstrap --variant=minbase --quiet bookworm "$CACHE/debian.tar.tmp"
  [ -f "$CACHE/debian.tar" ] || mv "$CACHE/debian.tar.tmp" "$CACHE/debian.tar"
  export SOURCE_DATE_EPOCH=1700000000
  umoci init --layout "$LAYOUT"
  umoci new --image "$LAYOUT:bench"
  # Each layer: a fresh bundle from the current tag, changed, repacked (umoci diffs the bundle
  # against the image it was unpacked from).
  ROOTFS="$CACHE/bundle/rootfs"
  layer() {
    rm -rf "$CACHE/bundle"
    umoci unpack --image "$LAYOUT:bench" "$CACHE/bundle" >/dev/null
    "$@"
    umoci repack --image "$LAYOUT:bench" --history.created_by "$*" "$CACHE/bundle"
  }
  base() { tar -C "$ROOTFS" --exclude ./usr/share -xf "$CACHE/debian.tar"; }
  share() { tar -C "$ROOTFS" -xf "$CACHE/debian.tar" ./usr/share; }
  app() {
    rm -rf "$ROOTFS"/usr/share/doc/*
    for d in $(seq 0 29); do
      mkdir -p "$ROOTFS/opt/app/mod$d"
      for f in $(seq 0 99); do
        printf 'module %d file %d\n%s\n' "$d" "$f" "$(seq "$f" $((f + 40)))" >"$ROOTFS/opt/app/mod$d/f$f.txt"
      done
    done
    find "$ROOTFS/usr/bin" -type f -exec cat {} + 2>/dev/null | head -c 8M >"$ROOTFS/opt/app/blob.bin" || true
  }
  layer base
  layer share
  layer app
  umoci gc --layout "$LAYOUT"
  rm -rf "$CACHE/bundle"
  touch "$LAYOUT/.complete"
fi

# Where the runs write: tmpfs by default, so the table measures the tools and not this
# machine's shared disk (RSAFE_BENCH_WORK=/var/tmp/... to measure on disk). The layout is copied
# there too: rsafe's store is the layout itself, and `--layers` writes its cache into it.
WORK="${RSAFE_BENCH_WORK:-/dev/shm/rsafe-bench}"
rm -rf "$WORK"
mkdir -p "$WORK/out"
cp -a "$LAYOUT" "$WORK/store"
STORE="$WORK/store"
OUT="$WORK/out"
manifest="$STORE/blobs/sha256/$(jq -r '.manifests[0].digest' "$STORE/index.json" | cut -d: -f2)"
echo "image: $(jq -r '.layers | length' "$manifest") layers, $(jq -r '[.layers[].size] | add' "$manifest") bytes compressed," \
  "$(tar -tf "$CACHE/debian.tar" | wc -l) entries in the base; output in $WORK ($(findmnt -no FSTYPE -T "$WORK" | head -1))" >&2
# Outputs are moved aside, not deleted, between runs: ext4 without a journal (as on this VM)
# skips inodes freed in the last 60 s when allocating, so a run right after deleting the last
# run's 9k files spends most of its time in the kernel's inode allocator (perf: recently_deleted).
TRASH="$WORK/trash"
mkdir -p "$TRASH"
aside="d=\$(mktemp -d -p $TRASH); mv $OUT \$d/; mkdir $OUT; [ ! -e $STORE/layers ] || mv $STORE/layers \$d/; sync"
hyperfine --warmup 1 --runs "$RUNS" --style basic \
  --prepare "$aside" \
  -n "rsafe unpack" "$RSAFE --root $STORE -q unpack bench $OUT/rsafe" \
  -n "rsafe unpack --layers" "$RSAFE --root $STORE -q unpack --layers bench" \
  -n "umoci unpack" "umoci unpack --image $STORE:bench $OUT/umoci" \
  -n "umoci raw unpack" "umoci raw unpack --image $STORE:bench $OUT/umoci-raw" \
  --export-markdown "$CACHE/unpack.md" >&2
rm -rf "$WORK"
cat "$CACHE/unpack.md"
