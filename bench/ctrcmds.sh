#!/usr/bin/env bash
# `rsafe diff` and `rsafe export` next to `podman diff` and `podman export` on the same container:
# the Debian bookworm minbase image (the tests' cached layout, tests/support/debian.rs), run once
# by each tool with a script that deletes /usr/share/doc and /usr/share/locale, writes 2,000
# files under /srv/data and appends to /etc/passwd, then stopped. Root only (podman in a
# private --root under the work directory, runc, overlay).
#
# Prints whether the two diffs list the same paths (and the lines that differ), the archives'
# sizes and entry counts, then hyperfine's times for each command (output to /dev/null) and the
# load average before the runs (the machine may be shared).
# RSAFE=/path/to/rsafe measures that binary instead of building this tree's (release).
# IMAGE=DIR: another OCI layout (its ref below, REF=bookworm by default).
# Needs: podman, runc, hyperfine, tar.
#
# Results (release, podman 4.3.1 + runc, 10 runs, load average 2.6 on 2 shared cores): the same
# 2,008 diff lines; 9,273 export entries against podman's 9,275 (its etc/mtab and
# run/.containerenv), 131,585,024 bytes against 131,586,048; diff 12.4 ± 4.0 ms against
# 82.7 ± 21.8 ms, export 121 ± 15 ms against 680 ± 139 ms. The README has the table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
if [ -z "${RSAFE:-}" ]; then
  cargo build --release --locked -q
  RSAFE=$PWD/target/release/rsafe
fi
IMAGE=${IMAGE:-/var/cache/rsafe-test/debian-bookworm-minbase-v1}
REF=${REF:-bookworm}
RUNS=${RUNS:-10}
W=$(mktemp -d /tmp/rsafe-bench-ctrcmds.XXXXXX)
chmod 755 "$W"
P=(podman --root "$W/podman" --runroot "$W/podman-run" --storage-driver overlay)
R=("$RSAFE" --root "$W/store")
cleanup() {
  "${R[@]}" rm -f c >/dev/null 2>&1 || true
  "${P[@]}" rm -f c >/dev/null 2>&1 || true
  "${P[@]}" system reset -f >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
SCRIPT='rm -rf /usr/share/doc /usr/share/locale; mkdir -p /srv/data; i=0;
  while [ $i -lt 2000 ]; do echo $i > /srv/data/f$i; i=$((i+1)); done; echo x >> /etc/passwd'

"${R[@]}" -q load "$IMAGE:$REF" >/dev/null
"${R[@]}" run --name c "$(basename "$IMAGE"):$REF" sh -c "$SCRIPT"
"${P[@]}" pull -q "oci:$IMAGE:$REF" >/dev/null
# This host refuses podman's default RLIMIT_NOFILE/NPROC raise: ask for what it has.
"${P[@]}" run --runtime runc --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  --name c "oci:$IMAGE:$REF" sh -c "$SCRIPT" 2>/dev/null ||
  "${P[@]}" run --runtime runc --network none --ulimit nofile=1024:1024 \
    --ulimit nproc=1024:1024 --name c "$("${P[@]}" images -q | head -1)" sh -c "$SCRIPT"

# Compared as sets: podman lists a directory after its first changed child (`C /usr/share`
# before `C /usr`), rsafe sorts by path.
echo "== diff: lines (rsafe, podman), then the lines only one prints (< rsafe, > podman)"
"${R[@]}" diff c | sort >"$W/rsafe.diff"
"${P[@]}" diff c | sort >"$W/podman.diff"
echo "$(wc -l <"$W/rsafe.diff") $(wc -l <"$W/podman.diff")"
diff "$W/rsafe.diff" "$W/podman.diff" | grep '^[<>]' | head -20 || true

echo "== export: bytes and entries (rsafe, podman)"
"${R[@]}" export -o "$W/rsafe.tar" c
"${P[@]}" export -o "$W/podman.tar" c
for t in rsafe podman; do
  printf '%s %s bytes, %s entries\n' "$t" "$(stat -c %s "$W/$t.tar")" "$(tar -tf "$W/$t.tar" | wc -l)"
done
echo "entries only one has (first 20; < rsafe, > podman):"
diff <(tar -tf "$W/rsafe.tar" | sed 's|/$||' | sort) <(tar -tf "$W/podman.tar" | sed 's|/$||' | sort) |
  grep '^[<>]' | head -20 || true

echo "== load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -N -w 2 -r "$RUNS" \
  -n "rsafe diff" "${R[*]} diff c" \
  -n "podman diff" "${P[*]} diff c"
hyperfine -w 2 -r "$RUNS" \
  -n "rsafe export" "${R[*]} export c > /dev/null" \
  -n "podman export" "${P[*]} export c > /dev/null"
