#!/usr/bin/env bash
# Three seccomp profiles side by side, as rsafe compiles them for x86_64: rsafe's default
# (policies/seccomp/default.json), podman's default (/usr/share/containers/seccomp.json from
# golang-github-containers-common) and Docker's default (moby/profiles, vendored in
# tests/fixtures/seccomp/docker-default.json). Counts come from `rsafe policy show --seccomp
# FILE --syscalls`, the same compilation a run loads: syscalls allowed whatever their
# arguments ("allow"), allowed only for some argument values ("args"), and then, per profile,
# the syscalls it denies outright that one of the others allows (fully or by argument).
#
# Two capability sets, since all three profiles condition rules on capabilities:
#   same  rsafe's default set for all three (CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID
#         SETUID NET_BIND_SERVICE): the profiles alone
#   own   each runtime's default set: rsafe's; podman's containers.conf default_capabilities
#         (+ SETFCAP SETPCAP SYS_CHROOT); Docker's (podman's + AUDIT_WRITE MKNOD NET_RAW)
#
# Results (this host: Debian 12, libseccomp 2.5.4, containers-common 0.50.1): see the README's
# seccomp section; the script prints the table and the lists.
# RSAFE=/path/to/rsafe measures that binary instead of building this tree's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PODMAN=/usr/share/containers/seccomp.json
DOCKER=tests/fixtures/seccomp/docker-default.json
[ -f "$PODMAN" ] || { echo "bench: $PODMAN is missing (bash .ci/setup-debian.sh)" >&2; exit 1; }
if [ -z "${RSAFE:-}" ]; then
  cargo build --locked --quiet
  RSAFE=target/debug/rsafe
fi
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

PODMAN_CAPS=(--cap-add SETFCAP --cap-add SETPCAP --cap-add SYS_CHROOT)
DOCKER_CAPS=("${PODMAN_CAPS[@]}" --cap-add AUDIT_WRITE --cap-add MKNOD --cap-add NET_RAW)

# list NAME PROFILE CAPFLAGS…: the `allow NAME` / `args NAME` lines into $OUT/NAME
list() {
  local name="$1" profile="$2"
  shift 2
  "$RSAFE" policy show --seccomp "$profile" "$@" --syscalls \
    | sed -n '/^syscalls:$/,$p' | tail -n +2 > "$OUT/$name"
}

report() {
  local set="$1"
  printf '\n%-8s %-7s %6s %6s %6s\n' "caps" "profile" "allow" "args" "total"
  for p in rsafe podman docker; do
    local allow args
    allow=$(grep -c '^allow ' "$OUT/$p" || true)
    args=$(grep -c '^args ' "$OUT/$p" || true)
    printf '%-8s %-7s %6d %6d %6d\n' "$set" "$p" "$allow" "$args" $((allow + args))
  done
  for p in rsafe podman docker; do
    local others=()
    for q in rsafe podman docker; do [ "$q" = "$p" ] || others+=("$q"); done
    cut -d' ' -f2 "$OUT/$p" | sort > "$OUT/$p.names"
    cat "$OUT/${others[0]}" "$OUT/${others[1]}" | cut -d' ' -f2 | sort -u > "$OUT/$p.others"
    local denied
    denied=$(comm -13 "$OUT/$p.names" "$OUT/$p.others" | tr '\n' ' ')
    printf '  %s denies, %s or %s allows (%d): %s\n' "$p" "${others[0]}" "${others[1]}" \
      "$(wc -w <<< "$denied")" "$denied"
  done
}

list rsafe default
list podman "$PODMAN"
list docker "$DOCKER"
report same

list rsafe default
list podman "$PODMAN" "${PODMAN_CAPS[@]}"
list docker "$DOCKER" "${DOCKER_CAPS[@]}"
report own
