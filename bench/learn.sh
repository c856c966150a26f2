#!/usr/bin/env bash
# Learned policies (`rsafe run --learn`, issue 18): for each workload, learn a policy from one
# run, run the workload again under it, and count what each policy allows and what the escape
# probe (tests/support/escape_probe.c) finds open under it.
#
#   bash bench/learn.sh [work dir]        RSAFE=path/to/rsafe to skip the release build
#
# Run as root. Workloads, two in a busybox-static root filesystem built here, two in Debian
# bookworm images (below):
#   httpd   busybox httpd on port 80 serving /www/index.html, one `wget` of it, in one container
#   build   `tar` of /src (50 files), `gzip`, `sha256sum` of the archive, written under /tmp/out
#   python  Debian's `python3 -m http.server 8000` in /srv (a read-only volume with one page),
#           one fetch of the page by a python3 urllib client, in one container
#   apt     `apt-get install` of a local .deb (one file and a postinst that writes its state
#           under /var/lib), built here with dpkg-deb and given as a read-only volume at /debs
# The Debian images are tests/support/debian.rs's recipes (mmdebstrap --variant=minbase
# bookworm from the host's mirror, and the same with --include=python3, as one-layer OCI
# layouts made with umoci), taken from its cache (/var/cache/rsafe-test, or $RSAFE_TEST_CACHE)
# when `cargo test --test learn_debian` built them, else built into it here (a few minutes,
# ~70 MB from the mirror).
# Columns: syscalls the compiled filter allows (whatever the arguments or for some), for the
# learned policy, rsafe's default and Docker's default profile (tests/fixtures/seccomp, with
# rsafe's 8 capabilities); capabilities kept; landlock path rules (read+exec / read+write; the
# default grants the whole image instead); whether the workload's output under the learned
# policy equals the learning run's; escape vectors OPEN (`name=OPEN:` lines of the probe) under
# the default policy and under the learned one, in the workload's image. The probe runs from a
# read-only volume at /probe, so the learned policy gets `/probe` added to read_exec (only so it
# can start).
# A second table: the argument classes each policy learned (`[seccomp.args]`: socket
# family/type, socketpair, ioctl requests, namespace flags), and how many of eight argument
# probes (below: AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK sockets, a socketpair, three ioctls)
# get past seccomp under the default policy and under the learned one, from /probe as above;
# between them, how many would without [seccomp.args]: the probes whose syscall the learned
# policy names (the default lets all eight through, and the learned profile keeps its rules).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "bench/learn.sh: run as root" >&2; exit 1; }
WORK="${1:-/tmp/rsafe-bench-learn}"
log() { printf '== %s\n' "$*" >&2; }
for t in busybox cc mmdebstrap umoci dpkg-deb; do
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

# A Debian layout of tests/support/debian.rs's recipe NAME (extra mmdebstrap options after it),
# from its cache or built into it the same way; sets LAYOUT to `layout:tag`. (Not called in a
# $(…): set -e does not reach into one.)
CACHE="${RSAFE_TEST_CACHE:-/var/cache/rsafe-test}"
debian_layout() {
  local name="$1" created_by="$2" title="$3"; shift 3
  local layout="$CACHE/$name"
  if [ ! -f "$layout/index.json" ]; then
    log "build $name (mmdebstrap $*)"
    mkdir -p "$CACHE"
    local tmp mirror
    tmp=$(mktemp -d "$CACHE/.$name.tmp-XXXXXX")
    # The host's Debian archive, as tests/support/debian.rs's host_mirror() finds it.
    mirror=$({ grep -hoE '^deb +(\[[^]]*\] +)?[^ ]+/debian/? ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      | awk '{print $NF}'; grep -hoE '^URIs: .*/debian/?$' /etc/apt/sources.list.d/*.sources | awk '{print $2}'; } \
      2>/dev/null | head -n1 || true)
    SOURCE_DATE_EPOCH=1700000000 mmdebstrap --variant=minbase --format=tar --quiet --mode=root "$@" \
      --customize-hook='rm -f "$1"/etc/resolv.conf "$1"/etc/hostname' \
      bookworm "$tmp/rootfs.tar" "${mirror:-http://deb.debian.org/debian}" </dev/null
    tar --delete --wildcards -f "$tmp/rootfs.tar" './dev/?*'
    local created=2023-11-14T22:13:20Z image="$tmp/oci:bookworm"
    umoci init --layout "$tmp/oci"
    umoci new --image "$image"
    SOURCE_DATE_EPOCH=1700000000 umoci raw add-layer --image "$image" --history.created "$created" \
      --history.created_by "$created_by" "$tmp/rootfs.tar"
    umoci config --image "$image" --created "$created" --history.created "$created" \
      --history.created_by 'CMD ["/bin/bash"]' --config.cmd /bin/bash \
      --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --config.label "org.opencontainers.image.title=$title"
    umoci gc --layout "$tmp/oci"
    chmod -R a+rX "$tmp/oci"
    mv "$tmp/oci" "$layout"
    rm -rf "$tmp"
  fi
  LAYOUT="$layout:bookworm"
}
log "Debian images"
debian_layout debian-bookworm-minbase-v1 "mmdebstrap --variant=minbase bookworm" rsafe-test-debian-minbase
"$BIN" --root "$S" load "$LAYOUT" >/dev/null
debian_layout debian-bookworm-python3-v1 "mmdebstrap --variant=minbase --include=python3 bookworm" \
  rsafe-test-debian-python3 --include=python3
"$BIN" --root "$S" load "$LAYOUT" >/dev/null

log "a local .deb and a page to serve"
mkdir -p "$WORK/pkg/DEBIAN" "$WORK/pkg/usr/share/rsafe-hello" "$WORK/debs" "$WORK/www"
printf 'Package: rsafe-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: rsafe <rsafe@example.invalid>\nDescription: one file and a postinst (bench/learn.sh)\n' \
  >"$WORK/pkg/DEBIAN/control"
printf '#!/bin/sh\nset -e\nmkdir -p /var/lib/rsafe-hello\necho "postinst $1" > /var/lib/rsafe-hello/state\n' \
  >"$WORK/pkg/DEBIAN/postinst"
chmod 755 "$WORK/pkg/DEBIAN/postinst"
echo "hello from a package" >"$WORK/pkg/usr/share/rsafe-hello/greeting"
dpkg-deb --root-owner-group --build "$WORK/pkg" "$WORK/debs/rsafe-hello_1.0_all.deb" >/dev/null
echo "hello from python3 -m http.server" >"$WORK/www/index.html"

log "escape probe"
P="$WORK/probe"
mkdir -p "$P"
cc -static -O1 -o "$P/escape" tests/support/escape_probe.c
# The argument probe: NAME=OPEN when seccomp let the call through (it succeeded, or the kernel
# itself refused it with another errno than EPERM), NAME=closed when it was refused with EPERM.
cat >"$WORK/argprobe.c" <<'C'
#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>
static void say(const char *name, int rc) { printf("%s=%s\n", name, rc >= 0 || errno != EPERM ? "OPEN" : "closed"); }
static void sock(const char *name, int family, int type, int protocol) {
    int fd = socket(family, type | SOCK_CLOEXEC, protocol);
    say(name, fd);
    if (fd >= 0) close(fd);
}
int main(void) {
    sock("socket_unix_stream", AF_UNIX, SOCK_STREAM, 0);
    sock("socket_inet_stream", AF_INET, SOCK_STREAM, 0);
    sock("socket_inet6_dgram", AF_INET6, SOCK_DGRAM, 0);
    sock("socket_netlink_route", AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    int pair[2];
    say("socketpair_unix", socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair));
    int n; struct winsize ws; struct termios t;
    errno = 0; say("ioctl_fionread", ioctl(1, FIONREAD, &n));
    errno = 0; say("ioctl_tiocgwinsz", ioctl(1, TIOCGWINSZ, &ws));
    errno = 0; say("ioctl_tcgets", ioctl(1, TCGETS, &t));
    return 0;
}
C
cc -static -O1 -o "$P/argprobe" "$WORK/argprobe.c"

declare -A CMD IMG FLAGS SHELL_OF
SHELL_OF=([httpd]=sh [build]=sh [python]=bash [apt]=bash)
IMG[httpd]="$R"; FLAGS[httpd]=""
CMD[httpd]='httpd -p 80 -h /www && wget -q -O - http://127.0.0.1:80/index.html'
IMG[build]="$R"; FLAGS[build]=""
CMD[build]='mkdir -p /tmp/out && tar -cf - /src | gzip >/tmp/out/a.tgz && sha256sum /tmp/out/a.tgz | cut -c1-16'
IMG[python]=debian-bookworm-python3-v1:bookworm; FLAGS[python]="-v $WORK/www:/srv:ro -w /srv"
CMD[python]='python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 &
  for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null && break; sleep 0.1; done
  python3 -c "import urllib.request as u; print(u.urlopen(\"http://127.0.0.1:8000/index.html\").read().decode(), end=\"\")"'
IMG[apt]=debian-bookworm-minbase-v1:bookworm; FLAGS[apt]="-v $WORK/debs:/debs:ro"
CMD[apt]='apt-get install -y -q /debs/rsafe-hello_1.0_all.deb >/tmp/apt.log 2>&1 || cat /tmp/apt.log
  cat /usr/share/rsafe-hello/greeting /var/lib/rsafe-hello/state; dpkg-query -W -f="\${Status}\n" rsafe-hello'

count_syscalls() { "$BIN" policy show "$@" --syscalls | grep -cE '^(allow|args) '; }
open_vectors() { # policy image → "OPEN/TRIED"
  local out
  out=$("$BIN" --root "$S" run --rm --policy "$1" -v "$P:/probe:ro" "$2" /probe/escape 2>/dev/null || true)
  printf '%s/%s' "$(grep -c '=OPEN:' <<<"$out" || true)" "$(grep -c '=' <<<"$out" || true)"
}
open_args() { # policy image → "OPEN/TRIED"
  local out
  out=$("$BIN" --root "$S" run --rm --policy "$1" -v "$P:/probe:ro" "$2" /probe/argprobe 2>/dev/null || true)
  printf '%s/%s' "$(grep -c '=OPEN$' <<<"$out" || true)" "$(grep -c '=' <<<"$out" || true)"
}
# `[seccomp.args] KEY` of a learned policy, entries joined by spaces ("none": an empty list).
arg_entries() {
  local list
  list=$(sed -n "/^\[seccomp.args\]/,/^\[landlock\]/p" "$1" | sed -n "/^$2 = \[\$/,/^\]/p" | grep -o '^ *"[^"]*"' | tr -d ' "' | paste -sd' ' -)
  printf '%s' "${list:-none}"
}
# Argument probes whose syscall (4 socket, 1 socketpair, 3 ioctl) policy $1 names.
by_name() {
  local names n=0
  names=$("$BIN" policy show "$1" --syscalls | awk '/^(allow|args) /{print $2}')
  grep -qx socket <<<"$names" && n=$((n + 4))
  grep -qx socketpair <<<"$names" && n=$((n + 1))
  grep -qx ioctl <<<"$names" && n=$((n + 3))
  printf '%s/8' "$n"
}
DEFAULT_N=$(count_syscalls default)
DOCKER_N=$(count_syscalls default --seccomp tests/fixtures/seccomp/docker-default.json)
declare -A DEFAULT_OPEN DEFAULT_ARGS
ARG_ROWS=""

printf '| workload | syscalls learned / rsafe default / Docker | capabilities kept | landlock rules (ro / rw) | same output under it | escape vectors OPEN (default → learned) |\n'
printf '|---|---|---|---|---|---|\n'
for w in ${WORKLOADS:-httpd build python apt}; do
  OUT="$WORK/$w.toml"
  img="${IMG[$w]}"
  [ -n "${DEFAULT_OPEN[$img]:-}" ] || DEFAULT_OPEN[$img]=$(open_vectors default "$img")
  # shellcheck disable=SC2086 # FLAGS are words
  first=$("$BIN" --root "$S" run --rm --learn "$OUT" ${FLAGS[$w]} "$img" "${SHELL_OF[$w]}" -c "${CMD[$w]}" 2>"$WORK/$w.learn.err")
  # shellcheck disable=SC2086
  again=$("$BIN" --root "$S" run --rm --policy "$OUT" ${FLAGS[$w]} "$img" "${SHELL_OF[$w]}" -c "${CMD[$w]}" 2>"$WORK/$w.run.err") || true
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
  learned_open=$(open_vectors "$PROBE_POLICY" "$img")
  printf '| %s | %s / %s / %s | %s | %s / %s | %s | %s → %s |\n' "$w" "$n" "$DEFAULT_N" "$DOCKER_N" \
    "${caps:-none}" "${ro:-none}" "${rw:-none}" "$same" "${DEFAULT_OPEN[$img]}" "$learned_open"
  [ -n "${DEFAULT_ARGS[$img]:-}" ] || DEFAULT_ARGS[$img]=$(open_args default "$img")
  ioctls=$(arg_entries "$OUT" ioctl)
  n_ioctl=$([ "$ioctls" = none ] && echo 0 || wc -w <<<"$ioctls")
  ARG_ROWS+=$(printf '| %s | %s | %s | %s: %s | %s | %s → %s → %s |' "$w" "$(arg_entries "$OUT" socket)" \
    "$(arg_entries "$OUT" socketpair)" "$n_ioctl" "$ioctls" "$(arg_entries "$OUT" clone_namespaces)" \
    "${DEFAULT_ARGS[$img]}" "$(by_name "$OUT")" "$(open_args "$PROBE_POLICY" "$img")")$'\n'
done
printf '\n| workload | socket (family/type) | socketpair | ioctl requests | namespace flags | argument probes OPEN (default → learned names only → with args) |\n'
printf '|---|---|---|---|---|---|\n'
printf '%s' "$ARG_ROWS"
