#!/usr/bin/env bash
# Start-up latency of running /bin/true in a busybox root filesystem: rsafe run against
# bubblewrap and crun, with hyperfine. Run as root; the rootless half runs as the user
# rsafe-test (created by .ci/setup-debian.sh).
# Needs: cargo, busybox-static, bubblewrap, crun, hyperfine, setpriv.
# Usage: bash bench/startup.sh [work dir]      (RUNS=50 WARMUP=5 to change the sampling)
#
# crun 1.8 refuses to start on a hybrid cgroup host ("cgroups in hybrid mode not supported");
# as root every command therefore runs in one private mount namespace with the controller-less
# /sys/fs/cgroup/unified unmounted, which changes nothing for rsafe or bwrap.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
RUNS="${RUNS:-30}"
WARMUP="${WARMUP:-3}"
WORK="${1:-$(mktemp -d /tmp/rsafe-bench-startup.XXXXXX)}"
mkdir -p "$WORK"
chmod 755 "$WORK"
BIN="$WORK/rsafe"
cp target/release/rsafe "$BIN"

rootfs() { # rootfs DIR: a busybox-static root filesystem
  local r="$1"
  mkdir -p "$r"/{bin,etc,tmp,proc,sys,dev,root}
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"
  printf 'root:x:0:\n' > "$r/etc/group"
  chmod 1777 "$r/tmp"
}
[ -d "$WORK/rootfs" ] || rootfs "$WORK/rootfs"

# An OCI bundle for crun around the same root filesystem.
if [ ! -f "$WORK/bundle/config.json" ]; then
  mkdir -p "$WORK/bundle"
  (cd "$WORK/bundle" && crun spec)
  sed -i -e 's|"terminal": true|"terminal": false|' \
    -e 's|"rootfs"|"'"$WORK"'/rootfs"|' \
    -e 's|"sh"|"/bin/true"|' "$WORK/bundle/config.json"
fi

echo "== root"
unshare -m --propagation private bash -c "
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  hyperfine -N --warmup $WARMUP -r $RUNS --export-markdown '$WORK/root.md' \
    -n '/bin/true (floor)' '/bin/true' \
    -n 'rsafe run --rm' '$BIN --root $WORK/store run --rm $WORK/rootfs /bin/true' \
    -n 'rsafe run --rm --network host' '$BIN --root $WORK/store run --rm --network host $WORK/rootfs /bin/true' \
    -n 'bwrap --unshare-all' 'bwrap --unshare-all --die-with-parent --ro-bind $WORK/rootfs / --proc /proc --dev /dev /bin/true' \
    -n 'crun run' 'crun run --bundle $WORK/bundle bench-crun'
"

echo "== rootless (rsafe-test)"
mkdir -p "$WORK/user"
[ -d "$WORK/user/rootfs" ] || { cp -a "$WORK/rootfs" "$WORK/user/rootfs"; }
chown -R rsafe-test: "$WORK/user"
setpriv --reuid=rsafe-test --regid=rsafe-test --init-groups -- env HOME=/home/rsafe-test \
  hyperfine -N --warmup "$WARMUP" -r "$RUNS" --export-markdown "$WORK/user/rootless.md" \
    -n '/bin/true (floor)' '/bin/true' \
    -n 'rsafe run --rm' "$BIN --root $WORK/user/store run --rm $WORK/user/rootfs /bin/true" \
    -n 'bwrap --unshare-all' "bwrap --unshare-all --die-with-parent --ro-bind $WORK/user/rootfs / --proc /proc --dev /dev /bin/true"
cp "$WORK/user/rootless.md" "$WORK/rootless.md"
echo "results: $WORK/root.md $WORK/rootless.md"
