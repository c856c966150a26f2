#!/usr/bin/env bash
# Start-up latency: `rsafe run --rm IMAGE /bin/true` on a cached image against crun, runc,
# bubblewrap and podman (all from Debian), in one hyperfine run (issue #3). Then the same for an
# unprivileged user (rsafe-test): rsafe, bwrap and runc --rootless.
#
#   bash bench/startup.sh [work dir]        RUNS=50 WARMUP=20 to change the sampling
#
# Run as root. Installs what is missing with apt-get (busybox-static umoci jq hyperfine crun
# runc bubblewrap podman). The image is a one-layer busybox-static image built with umoci in an
# OCI layout; every runtime starts the same image:
#   rsafe   `rsafe load` into its store once; each run makes an overlay with a fresh writable
#           layer, removed again by --rm
#   crun, runc   a bundle made once with `umoci unpack` (the root filesystem is used in place:
#           no writable layer to create or remove); `crun spec`/umoci's default config
#   bwrap   the same unpacked root filesystem, read-only, --unshare-all
#   podman  `podman pull oci:…` into a private storage root once; `run --rm --network none`
#
# Host quirks (see /work/shared/peers/README.md): crun 1.8 refuses to start on a hybrid cgroup
# host, so as root every command runs in one private mount namespace with the controller-less
# /sys/fs/cgroup/unified unmounted (changes nothing for the others); root lacks CAP_SYS_RESOURCE,
# so podman gets --ulimit nofile/nproc 1024 (its default nofile limit cannot be set here).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "bench/startup.sh: run as root" >&2; exit 1; }
RUNS="${RUNS:-40}"
WARMUP="${WARMUP:-20}"
WORK="${1:-/tmp/rsafe-bench-startup}"
log() { printf '== %s\n' "$*" >&2; }

need=()
for p in busybox-static:busybox umoci:umoci jq:jq hyperfine:hyperfine crun:crun runc:runc \
  bubblewrap:bwrap podman:podman uidmap:newuidmap; do
  command -v "${p#*:}" >/dev/null || need+=("${p%%:*}")
done
if [ "${#need[@]}" -gt 0 ]; then
  log "apt-get install ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
id rsafe-test >/dev/null 2>&1 || bash .ci/setup-debian.sh >/dev/null

log "build rsafe (release)"
cargo build --release --locked --quiet
mkdir -p "$WORK"
chmod 755 "$WORK"
BIN="$WORK/rsafe"
cp target/release/rsafe "$BIN"

# The image: busybox-static as the only layer, root user, in an OCI layout (umoci).
L="$WORK/oci"
if [ ! -f "$L/index.json" ]; then
  log "build the busybox image (umoci)"
  r="$WORK/bundle-build"
  rm -rf "$r" "$L"
  umoci init --layout "$L"
  umoci new --image "$L:bench"
  umoci unpack --image "$L:bench" "$r" >/dev/null
  mkdir -p "$r/rootfs"/{bin,etc,tmp,proc,sys,dev,root}
  cp /bin/busybox "$r/rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$r/rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/rootfs/etc/passwd"
  printf 'root:x:0:\n' > "$r/rootfs/etc/group"
  chmod 1777 "$r/rootfs/tmp"
  umoci repack --image "$L:bench" "$r" >/dev/null
  umoci config --image "$L:bench" --config.user 0:0 --config.cmd /bin/true \
    --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin >/dev/null
  umoci gc --layout "$L"
  rm -rf "$r"
fi
chmod -R a+rX "$L"

bundle() { # bundle DIR [--rootless]: an OCI runtime bundle of the image, running /bin/true
  local d="$1"; shift
  [ -f "$d/config.json" ] && return
  rm -rf "$d"
  umoci unpack "$@" --image "$L:bench" "$d" >/dev/null
  jq '.process.terminal=false | .process.args=["/bin/true"]' "$d/config.json" > "$d/config.new"
  mv "$d/config.new" "$d/config.json"
}
bundle "$WORK/bundle"

log "load the image into rsafe's store and podman's"
"$BIN" --root "$WORK/store" load --name rsafe-bench:latest "$L:bench" >/dev/null
P="podman --root $WORK/podman/root --runroot $WORK/podman/run --cgroup-manager cgroupfs --events-backend none"
$P image exists localhost/bench:latest 2>/dev/null ||
  $P pull -q "oci:$L:bench" >/dev/null 2>&1 || $P pull "oci:$L:bench"
PODMAN_IMAGE=$($P images --format '{{.ID}}' | head -1)
UL="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"

log "root: one hyperfine run (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
unshare -m --propagation private bash -c "
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  hyperfine -N --warmup $WARMUP -r $RUNS --export-markdown '$WORK/root.md' --export-json '$WORK/root.json' \
    -n '/bin/true (floor)' '/bin/true' \
    -n 'rsafe run --rm IMAGE' '$BIN --root $WORK/store run --rm rsafe-bench:latest /bin/true' \
    -n 'rsafe run --rm --read-only IMAGE' '$BIN --root $WORK/store run --rm --read-only rsafe-bench:latest /bin/true' \
    -n 'bwrap --unshare-all' 'bwrap --unshare-all --die-with-parent --ro-bind $WORK/bundle/rootfs / --proc /proc --dev /dev /bin/true' \
    -n 'crun run' 'crun run --bundle $WORK/bundle bench-crun' \
    -n 'runc run' 'runc run --bundle $WORK/bundle bench-runc' \
    -n 'podman run --rm --network none' '$P run --rm --network none $UL $PODMAN_IMAGE /bin/true'
"

log "rootless (rsafe-test): rsafe, bwrap, runc --rootless"
U="$WORK/user"
mkdir -p "$U"
chown rsafe-test: "$U"
as_user() { setpriv --reuid=rsafe-test --regid=rsafe-test --init-groups -- env HOME=/home/rsafe-test "$@"; }
as_user "$BIN" --root "$U/store" load --name rsafe-bench:latest "$L:bench" >/dev/null
[ -f "$U/bundle/config.json" ] || as_user bash -c "$(declare -f bundle); L='$L'; bundle '$U/bundle' --rootless"
as_user hyperfine -N --warmup "$WARMUP" -r "$RUNS" --export-markdown "$U/rootless.md" --export-json "$U/rootless.json" \
  -n '/bin/true (floor)' '/bin/true' \
  -n 'rsafe run --rm IMAGE' "$BIN --root $U/store run --rm rsafe-bench:latest /bin/true" \
  -n 'bwrap --unshare-all' "bwrap --unshare-all --die-with-parent --ro-bind $U/bundle/rootfs / --proc /proc --dev /dev /bin/true" \
  -n 'runc --rootless run' "runc --root $U/runc run --bundle $U/bundle bench-runc"
cp "$U/rootless.md" "$WORK/rootless.md"

log "results: $WORK/root.md $WORK/rootless.md"
cat "$WORK/root.md" "$WORK/rootless.md"
