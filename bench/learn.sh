#!/usr/bin/env bash
# Learned policies (`rsafe run --learn`, issue 18): for each workload, learn a policy from one
# run, run the workload again under it, and count what each policy allows and what the escape
# probe (tests/support/escape_probe.c) finds open under it.
#
#   bash bench/learn.sh [work dir]        RSAFE=path/to/rsafe to skip the release build
#
# Run as root. Workloads, in a busybox-static root filesystem built here:
#   httpd  busybox httpd on port 80 serving /www/index.html, one `wget` of it, in one container
#   build  `tar` of /src (50 files), `gzip`, `sha256sum` of the archive, written under /tmp/out
# Columns: syscalls the compiled filter allows (whatever the arguments or for some), for the
# learned policy, rsafe's default and Docker's default profile (tests/fixtures/seccomp, with
# rsafe's 8 capabilities); capabilities kept; landlock path rules (read+exec / read+write; the
# default grants the whole image instead); whether the workload's output under the learned
# policy equals the learning run's; escape vectors OPEN (`name=OPEN:` lines of the probe) under
# the default policy and under the learned one. The probe runs from a read-only volume at
# /probe, so the learned policy gets `/probe` added to read_exec (only so it can start).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "bench/learn.sh: run as root" >&2; exit 1; }
WORK="${1:-/tmp/rsafe-bench-learn}"
log() { printf '== %s\n' "$*" >&2; }
for t in busybox cc; do
  command -v "$t" >/dev/null || { echo "bench/learn.sh: $t is missing (bash .ci/setup-debian.sh)" >&2; exit 1; }
done
rm -rf "$WORK"
mkdir -p "$WORK"
if [ -z "${RSAFE:-}" ]; then
  log "build rsafe (release)"
  cargo build --release --locked --quiet
  RSAFE=target/release/rsafe
fi
BIN="$WORK/rsafe"
cp "$RSAFE" "$BIN"
S="$WORK/store"

log "busybox root filesystem"
R="$WORK/rootfs"
for d in bin sbin usr/bin usr/sbin etc tmp proc sys dev root www var/tmp run; do mkdir -p "$R/$d"; done
cp "$(command -v busybox)" "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/www:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\nwww:x:33:\n' >"$R/etc/group"
echo "hello from a learned policy" >"$R/www/index.html"
mkdir -p "$R/src/lib"
for i in $(seq 1 50); do seq 1 "$((i * 40))" >"$R/src/lib/f$i.txt"; done

log "escape probe"
P="$WORK/probe"
mkdir -p "$P"
cc -static -O1 -o "$P/escape" tests/support/escape_probe.c

declare -A CMD
CMD[httpd]='httpd -p 80 -h /www && wget -q -O - http://127.0.0.1:80/index.html'
CMD[build]='mkdir -p /tmp/out && tar -cf - /src | gzip >/tmp/out/a.tgz && sha256sum /tmp/out/a.tgz | cut -c1-16'

count_syscalls() { "$BIN" policy show "$@" --syscalls | grep -cE '^(allow|args) '; }
open_vectors() { # policy → "OPEN/TRIED"
  local out
  out=$("$BIN" --root "$S" run --rm --policy "$1" -v "$P:/probe:ro" "$R" /probe/escape 2>/dev/null || true)
  printf '%s/%s' "$(grep -c '=OPEN:' <<<"$out" || true)" "$(grep -c '=' <<<"$out" || true)"
}
DEFAULT_N=$(count_syscalls default)
DOCKER_N=$(count_syscalls default --seccomp tests/fixtures/seccomp/docker-default.json)
DEFAULT_OPEN=$(open_vectors default)

printf '| workload | syscalls learned / rsafe default / Docker | capabilities kept | landlock rules (ro / rw) | same output under it | escape vectors OPEN (default → learned) |\n'
printf '|---|---|---|---|---|---|\n'
for w in httpd build; do
  OUT="$WORK/$w.toml"
  first=$("$BIN" --root "$S" run --rm --learn "$OUT" "$R" sh -c "${CMD[$w]}" 2>"$WORK/$w.learn.err")
  again=$("$BIN" --root "$S" run --rm --policy "$OUT" "$R" sh -c "${CMD[$w]}" 2>"$WORK/$w.run.err") || true
  same=no
  [ -n "$first" ] && [ "$first" = "$again" ] && same=yes
  n=$(count_syscalls "$OUT")
  caps=$(sed -n '/^keep = \[/,/^\]/p' "$OUT" | grep -o '^ *"[A-Z_]*"' | tr -d ' "' | paste -sd, -)
  ro=$(sed -n '/^read_exec = \[/,/^\]/p' "$OUT" | grep -o '^ *"[^"]*"' | tr -d ' "' | paste -sd' ' -)
  rw=$(sed -n '/^read_write = \[/,/^\]/p' "$OUT" | grep -o '^ *"[^"]*"' | tr -d ' "' | paste -sd' ' -)
  # The probe needs its own directory: a copy of the learned policy with /probe added.
  PROBE_POLICY="$WORK/$w-probe.toml"
  sed 's|^read_exec = \[$|read_exec = [\n    "/probe",|; s|^read_exec = \[\]$|read_exec = ["/probe"]|' "$OUT" >"$PROBE_POLICY"
  cp "$WORK/$w.seccomp.json" "$WORK/$w-probe.seccomp.json"
  learned_open=$(open_vectors "$PROBE_POLICY")
  printf '| %s | %s / %s / %s | %s | %s / %s | %s | %s → %s |\n' "$w" "$n" "$DEFAULT_N" "$DOCKER_N" \
    "${caps:-none}" "${ro:-none}" "${rw:-none}" "$same" "$DEFAULT_OPEN" "$learned_open"
done
