#!/bin/sh
# The cost of keeping a foreground container's output in its log: a 100 MB stream through
# `rsafe run` (busybox `yes`, 4 KiB writes) into `head`, against the same pipe on the host.
# Usage: bench/tee.sh RSAFE_BEFORE RSAFE_AFTER ROOTFS   (two rsafe binaries, a busybox rootfs)
set -eu
before=$1 after=$2 rootfs=$3
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
hyperfine -N --warmup 1 --runs 8 -u millisecond \
  "sh -c '$before --root $store run --rm $rootfs yes | head -c 100M >/dev/null'" \
  "sh -c '$after --root $store run --rm $rootfs yes | head -c 100M >/dev/null'" \
  "sh -c '/bin/busybox yes | head -c 100M >/dev/null'"
