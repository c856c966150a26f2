#!/usr/bin/env bash
# `rsafe load` against `skopeo copy` into an OCI layout, for a 200 MB single-layer image in each
# input format, and a repeated load of an image the store already holds.
# Needs: cargo, umoci, skopeo, hyperfine. Usage: bash bench/load.sh [work dir]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
RSAFE="$PWD/target/release/rsafe"
WORK="${1:-$(mktemp -d /tmp/rsafe-bench-load.XXXXXX)}"
cd "$WORK"
if [ ! -f big-docker.tar ]; then
  umoci init --layout lay
  umoci new --image lay:base
  umoci unpack --image lay:base bundle >/dev/null
  head -c 200M /dev/urandom > bundle/rootfs/random.bin
  for i in $(seq 1 2000); do echo "file $i" > "bundle/rootfs/f$i"; done
  umoci repack --image lay:base bundle >/dev/null
  umoci config --image lay:base --tag latest --config.user 1000
  umoci rm --image lay:base && umoci gc --layout lay && rm -rf bundle
  skopeo copy -q oci:lay:latest docker-archive:big-docker.tar:bench/big:latest
  skopeo copy -q oci:lay:latest oci-archive:big-oci.tar:latest
fi
hyperfine -w 1 -r 5 --prepare "rm -rf $WORK/store" \
  -n "rsafe load docker save" "$RSAFE --root $WORK/store load big-docker.tar" \
  -n "rsafe load oci archive" "$RSAFE --root $WORK/store load big-oci.tar" \
  -n "rsafe load oci layout" "$RSAFE --root $WORK/store load lay" \
  -n "skopeo copy docker-archive: -> oci:" "skopeo copy -q docker-archive:big-docker.tar oci:$WORK/store:x" \
  -n "skopeo copy oci: -> oci:" "skopeo copy -q oci:lay:latest oci:$WORK/store:x"
"$RSAFE" --root "$WORK/store" load big-docker.tar >/dev/null
hyperfine -w 1 -r 10 -n "rsafe load, already stored" "$RSAFE --root $WORK/store load big-docker.tar"
