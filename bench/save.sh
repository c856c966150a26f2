#!/usr/bin/env bash
# `rsafe save` against `podman save` and `skopeo copy` of the same 1 GiB image (two gzip layers:
# 512 MiB of random bytes, 512 MiB of base64 text), to a file on the same disk, in both formats.
# rsafe reads its store (an OCI layout of the gzip blobs); podman its vfs storage (the layers
# unpacked); skopeo the OCI layout the image was built as.
# Needs root (podman's storage), cargo, umoci, skopeo, podman, hyperfine.
# Usage: bash bench/save.sh [work dir]   (RSAFE=/path/to/rsafe: that binary, no build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${RSAFE:-}" ]; then
  cargo build --release --quiet
  RSAFE="$PWD/target/release/rsafe"
fi
WORK="${1:-$(mktemp -d /tmp/rsafe-bench-save.XXXXXX)}"
cd "$WORK"
PODMAN=(podman --root "$WORK/podman" --runroot "$WORK/podman-run" --storage-driver vfs)
if [ ! -d lay ]; then
  umoci init --layout lay
  umoci new --image lay:base
  umoci unpack --image lay:base bundle >/dev/null
  head -c 512M /dev/urandom > bundle/rootfs/random.bin
  umoci repack --image lay:base bundle >/dev/null
  { base64 /dev/urandom || true; } | head -c 512M > bundle/rootfs/text.b64
  umoci repack --image lay:base bundle >/dev/null
  umoci config --image lay:base --tag latest --config.user 1000
  umoci rm --image lay:base && umoci gc --layout lay && rm -rf bundle
fi
rm -rf store
"$RSAFE" --root store load lay:latest --name bench/big:latest >/dev/null
"${PODMAN[@]}" rmi -a -f >/dev/null 2>&1 || true
skopeo copy -q oci:lay:latest docker-archive:seed.tar:bench/big:latest
"${PODMAN[@]}" load -q -i seed.tar >/dev/null && rm seed.tar
du -sh lay store
hyperfine -w 1 -r 5 --prepare "rm -f $WORK/out.tar" \
  -n "rsafe save (docker-archive)" "$RSAFE --root $WORK/store save -o $WORK/out.tar bench/big" \
  -n "podman save (docker-archive)" "${PODMAN[*]} save -q -o $WORK/out.tar bench/big" \
  -n "skopeo copy oci: -> docker-archive:" "skopeo copy -q oci:lay:latest docker-archive:$WORK/out.tar:bench/big:latest" \
  -n "rsafe save --format oci-archive" "$RSAFE --root $WORK/store save --format oci-archive -o $WORK/out.tar bench/big" \
  -n "podman save --format oci-archive" "${PODMAN[*]} save -q --format oci-archive -o $WORK/out.tar bench/big" \
  -n "skopeo copy oci: -> oci-archive:" "skopeo copy -q oci:lay:latest oci-archive:$WORK/out.tar:latest"
rm -f out.tar
