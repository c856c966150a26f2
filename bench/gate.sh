#!/usr/bin/env bash
# What the audit gate costs a start: `rsafe run --rm IMAGE /bin/true` without a gate, with
# `--gate high` and no cached verdict (every run audits the image: hyperfine's --prepare removes
# <store>/gate before each run, outside the timing), and with `--gate high` and the verdict
# cached, in one hyperfine run per image (issue #18).
#
#   bash bench/gate.sh [work dir]          RUNS=30 WARMUP=10 to change the sampling
#
# Run as root. Images:
#   busybox  one layer, busybox-static, root user (built with umoci, as bench/startup.sh does);
#            one medium finding (image.user-root): passes a high gate
#   debian   Debian bookworm minbase, one 170 MB layer, the layout the test suite builds with
#            mmdebstrap (/var/cache/rsafe-test/debian-bookworm-minbase-v1, or $RSAFE_TEST_CACHE);
#            skipped when it is not there (`cargo test --test run_debian` builds it). One medium
#            and 11 low findings: passes a high gate.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "bench/gate.sh: run as root" >&2; exit 1; }
RUNS="${RUNS:-30}"
WARMUP="${WARMUP:-10}"
WORK="${1:-/tmp/rsafe-bench-gate}"
DEBIAN="${RSAFE_TEST_CACHE:-/var/cache/rsafe-test}/debian-bookworm-minbase-v1"
log() { printf '== %s\n' "$*" >&2; }

for t in umoci hyperfine busybox; do
  command -v "$t" >/dev/null || { echo "bench/gate.sh: $t is missing (bash .ci/setup-debian.sh)" >&2; exit 1; }
done

log "build rsafe (release)"
cargo build --release --locked --quiet
mkdir -p "$WORK"
chmod 755 "$WORK"
BIN="$WORK/rsafe"
cp target/release/rsafe "$BIN"
S="$WORK/store"

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
"$BIN" --root "$S" load --name gate-busybox:latest "$L:bench" >/dev/null
images=(gate-busybox:latest)
if [ -f "$DEBIAN/index.json" ]; then
  "$BIN" --root "$S" load --name gate-debian:latest "$DEBIAN:bookworm" >/dev/null
  images+=(gate-debian:latest)
else
  log "no Debian image at $DEBIAN: busybox only"
fi

# A .rsafeignore in the current directory would change nothing measured, but keep it out.
cd "$WORK"
for image in "${images[@]}"; do
  name="${image%%:*}"
  # Extract the layers and check that the gate passes before timing anything.
  "$BIN" --root "$S" run --rm --gate high "$image" /bin/true
  log "$image (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  hyperfine -N --warmup "$WARMUP" -r "$RUNS" \
    --export-markdown "$WORK/$name.md" --export-json "$WORK/$name.json" \
    -n 'no gate' -n 'gate high, cached verdict' -n 'gate high, no cache (audits)' \
    --prepare true --prepare true --prepare "rm -rf $S/gate" \
    "$BIN --root $S run --rm $image /bin/true" \
    "$BIN --root $S run --rm --gate high $image /bin/true" \
    "$BIN --root $S run --rm --gate high $image /bin/true"
done

log "results: $WORK/*.md"
for image in "${images[@]}"; do
  printf '\n%s\n' "$image"
  cat "$WORK/${image%%:*}.md"
done
