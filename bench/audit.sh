#!/usr/bin/env bash
# How fast `rsafe audit` reads a real multi-layer image, next to
#   - the floor: only decompressing the same layer blobs (gzip -dc > /dev/null), and
#   - detect-secrets (PyPI) scanning the image's final, unpacked root filesystem, when pip can
#     install it. It sees less than rsafe does: files deleted by a later layer are not in the
#     unpacked root, so it cannot find the secret of layer 3 below.
#
# The image (built once with mmdebstrap + umoci, cached in $BENCH_DIR, default /tmp/rsafe-bench):
#   layer 1  Debian bookworm minbase (mmdebstrap)
#   layer 2  + python3, perl, openssl, ca-certificates, curl (a second mmdebstrap, diffed by umoci)
#   layer 3  /srv/app with a .env holding (synthetic) cloud credentials and a deploy key
#   layer 4  `rm` of those — still in layer 3 of the image
#
# Prints MB/s = uncompressed layer bytes (as rsafe reports them) / mean wall time (hyperfine).
# SKIP_PEER=1 leaves detect-secrets out (it takes minutes).
#
# Results (2 shared vCPUs, load average ~5-6 from other builds; details in the README):
#   rsafe audit 0.72-0.75 s wall, 0.72 s CPU, 301-312 MB/s, peak RSS 50 MB (before the reader
#   thread: 0.86 s wall, 0.76 s CPU, 261 MB/s, 64 MB); gzip -dc alone 1.3 s wall, 1.17 s CPU.
# Needs: umoci, mmdebstrap (root, Debian mirror), hyperfine, jq, python3 -m venv for the peer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCH_DIR="${BENCH_DIR:-/tmp/rsafe-bench}"
RUNS="${RUNS:-5}"
CREATED="2023-11-14T22:13:20Z"
L="$BENCH_DIR/oci-debian-layers"
mkdir -p "$BENCH_DIR"
log() { printf '\n== %s\n' "$*" >&2; }

for t in umoci mmdebstrap hyperfine jq; do
  command -v "$t" >/dev/null || { echo "bench: $t is required (bash .ci/setup-debian.sh)" >&2; exit 1; }
done

log "build rsafe (release)"
cargo build --release --locked --quiet
RSAFE="$PWD/target/release/rsafe"
# After the build: cc-based build scripts rerun (and rebuild zstd) when it changes.
export SOURCE_DATE_EPOCH=1700000000

if [ ! -f "$L/index.json" ]; then
  log "build the image (once): mmdebstrap bookworm minbase + packages, umoci layers"
  WORK="$(mktemp -d "$BENCH_DIR/build.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
  MIRROR="$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  [ -n "$MIRROR" ] || MIRROR="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  [ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
  debootstrap_tar() { # $1 = output tar, rest = extra mmdebstrap args
    local out="$1"; shift
    mmdebstrap --variant=minbase --mode=root --format=tar --quiet \
      --customize-hook='rm -rf "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/*' \
      "$@" bookworm "$out" "$MIRROR"
  }
  debootstrap_tar "$WORK/base.tar"
  debootstrap_tar "$WORK/full.tar" --include=python3,perl,openssl,ca-certificates,curl
  rm -rf "$L.tmp"
  umoci init --layout "$L.tmp"
  umoci new --image "$L.tmp:img"
  step() { # $1 = created_by; the bundle's rootfs is edited by the caller between unpack and repack
    umoci repack --image "$L.tmp:img" --history.created "$CREATED" --history.created_by "$1" "$WORK/b"
    rm -rf "$WORK/b"
  }
  umoci unpack --image "$L.tmp:img" "$WORK/b"
  tar -C "$WORK/b/rootfs" --numeric-owner -xpf "$WORK/base.tar"
  step "mmdebstrap --variant=minbase bookworm"
  umoci unpack --image "$L.tmp:img" "$WORK/b"
  find "$WORK/b/rootfs" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  tar -C "$WORK/b/rootfs" --numeric-owner -xpf "$WORK/full.tar"
  step "RUN apt-get install -y python3 perl openssl ca-certificates curl"
  umoci unpack --image "$L.tmp:img" "$WORK/b"
  mkdir -p "$WORK/b/rootfs/srv/app/.ssh"
  printf 'APP_ENV=production\nAWS_ACCESS_KEY_ID=AKIA4RSAFEBENCH7XKZP\nAWS_SECRET_ACCESS_KEY=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\n' \
    > "$WORK/b/rootfs/srv/app/.env"
  printf -- '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu7RsAfEq3Zk9vN1xR7tW2yL9pB4mC6fH0jD5sG8aE1uK7oQx\nQm4Lr2Tn8Vb1Wc5Xd3Ye6Zf9Ag2Bh4Ci7Dj0Ek3Fl6Gm9Hn2Io5Jp8Kq1Lr4Ms7Nt\n-----END RSA PRIVATE KEY-----\n' \
    > "$WORK/b/rootfs/srv/app/.ssh/id_rsa"
  step "COPY . /srv/app"
  umoci unpack --image "$L.tmp:img" "$WORK/b"
  rm -rf "$WORK/b/rootfs/srv/app/.env" "$WORK/b/rootfs/srv/app/.ssh"
  step "RUN rm -rf /srv/app/.env /srv/app/.ssh"
  umoci config --image "$L.tmp:img" --tag bench --created "$CREATED" --history.created "$CREATED" \
    --config.user 1000:1000 --config.cmd /bin/bash
  umoci rm --image "$L.tmp:img"
  umoci gc --layout "$L.tmp"
  mv "$L.tmp" "$L"
fi
IMAGE="$L:bench"

log "what rsafe reads"
"$RSAFE" audit "$IMAGE" --format json -q > "$BENCH_DIR/rsafe.json"
BYTES=$(jq '.stats.bytes' "$BENCH_DIR/rsafe.json")
LAYERS=$(jq '.stats.layers' "$BENCH_DIR/rsafe.json")
COMPRESSED=$(jq '[.layers[].size] | add' "$L/blobs/sha256/$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="bench") | .digest' "$L/index.json" | cut -d: -f2)")
echo "$LAYERS layers, $((COMPRESSED / 1000000)) MB compressed, $((BYTES / 1000000)) MB uncompressed"
echo "rsafe found: $(jq -r '[.findings[] | "\(.rule) \(.location.path // .location.field)"] | join("; ")' "$BENCH_DIR/rsafe.json")"

LAYER_BLOBS=$(jq -r '.layers[].digest' "$L/blobs/sha256/$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="bench") | .digest' "$L/index.json" | cut -d: -f2)" | sed "s|sha256:|$L/blobs/sha256/|" | tr '\n' ' ')

log "timing (hyperfine, $RUNS runs each)"
CMDS=(
  -n "floor: gzip -dc of the layers" "cat $LAYER_BLOBS | gzip -dc > /dev/null"
  -n "rsafe audit (all cores)" "$RSAFE audit $IMAGE -q --format json > /dev/null"
  -n "rsafe audit (1 thread)" "RAYON_NUM_THREADS=1 $RSAFE audit $IMAGE -q --format json > /dev/null"
)

PEER=""
if [ -n "${SKIP_PEER:-}" ]; then
  echo "SKIP_PEER is set: compared with the floor only" >&2
elif [ ! -x "$BENCH_DIR/venv/bin/detect-secrets" ]; then
  python3 -m venv "$BENCH_DIR/venv" 2>/dev/null &&
    "$BENCH_DIR/venv/bin/pip" install --quiet detect-secrets 2>/dev/null || true
fi
if [ -z "${SKIP_PEER:-}" ] && [ -x "$BENCH_DIR/venv/bin/detect-secrets" ]; then
  ROOTFS="$BENCH_DIR/bundle/rootfs"
  if [ ! -d "$ROOTFS" ]; then
    umoci unpack --image "$IMAGE" "$BENCH_DIR/bundle" >/dev/null
  fi
  ROOTFS_BYTES=$(du -sb --apparent-size "$ROOTFS" | cut -f1)
  PEER="detect-secrets scan --all-files (final rootfs, $((ROOTFS_BYTES / 1000000)) MB)"
  PEER_CMD=(-n "$PEER" "cd $ROOTFS && $BENCH_DIR/venv/bin/detect-secrets scan --all-files . > $BENCH_DIR/detect-secrets.json")
elif [ -z "${SKIP_PEER:-}" ]; then
  echo "detect-secrets could not be installed from PyPI: compared with the floor only" >&2
fi

hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$BENCH_DIR/hyperfine.json" \
  "${CMDS[@]}" >&2
if [ -n "$PEER" ]; then
  # Python is slow here: one run shows the order of magnitude.
  hyperfine --style basic --runs 1 --export-json "$BENCH_DIR/hyperfine-peer.json" "${PEER_CMD[@]}" >&2
fi

log "results (wall time is noisy on a shared machine; CPU time = user + system)"
printf '%-58s %9s %9s %9s %11s\n' "command" "wall s" "cpu s" "MB/s" "MB/cpu-s"
for f in "$BENCH_DIR/hyperfine.json" ${PEER:+"$BENCH_DIR/hyperfine-peer.json"}; do
  jq -r --argjson bytes "$BYTES" --argjson rootfs "${ROOTFS_BYTES:-0}" '.results[] |
    ((if (.command | startswith("detect-secrets")) then $rootfs else $bytes end) / 1e6) as $mb |
    [.command, (.mean * 100 | round / 100), ((.user + .system) * 100 | round / 100),
     ($mb / .mean * 10 | round / 10), ($mb / (.user + .system) * 10 | round / 10)]
    | @tsv' "$f" | while IFS=$'\t' read -r name wall cpu mbs mbcpu; do
      printf '%-58s %9s %9s %9s %11s\n' "$name" "$wall" "$cpu" "$mbs" "$mbcpu"
    done
done
echo
echo "rsafe secret findings: $(jq '[.findings[] | select(.rule | startswith("secret."))] | length' "$BENCH_DIR/rsafe.json")" \
     "($(jq -r '[.findings[] | select(.rule | startswith("secret.")) | "\(.location.path) deleted in layer \(.location.layer.removed_in + 1)"] | unique | join(", ")' "$BENCH_DIR/rsafe.json"))"
if [ -n "$PEER" ]; then
  echo "detect-secrets: $(jq '[.results[] | length] | add // 0' "$BENCH_DIR/detect-secrets.json") results" \
       "in $(jq '.results | length' "$BENCH_DIR/detect-secrets.json") files of the final rootfs," \
       "$(jq '[.results | keys[] | select(startswith("srv/app"))] | length' "$BENCH_DIR/detect-secrets.json") in srv/app" \
       "(the leak is deleted from the final rootfs; it is only in layer 3)"
fi
