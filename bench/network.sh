#!/usr/bin/env bash
# Throughput through a published port: a 256 MiB file served by busybox httpd inside the
# container, fetched with curl from the host's 127.0.0.1, for
#   rsafe run -p (slirp4netns)            as root and as the test user
#   podman run -p --network slirp4netns   rootless (podman 4.3, Debian 12), same busybox image
#   podman run -p --network pasta         rootless
# Each is fetched RUNS times (default 3); the best MB/s is reported. Then UDP: iperf3 (Debian's,
# installed here if missing) in the container as server, the host's iperf3 sending 1400-byte
# datagrams as fast as it can to 127.0.0.1 for 5 s, through `-p PORT:5201/tcp -p PORT:5201/udp`
# (iperf3's control connection is TCP, on the same port) and with --network host; the best of
# RUNS receiver rates is reported, with that run's loss. Then the start-up time of
# `rsafe run --rm IMAGE true` with --network none, slirp4netns, container:NAME and a named network
# (`rsafe network create`: a bridge and a veth pair, as root) (hyperfine); and as the test user
# with --network none and a named network (the network's holder running, and its first run,
# which starts the holder).
#
#   bash bench/network.sh
# Needs root (it switches to the test user rsafe-test for the rootless runs), podman for the
# podman rows (skipped with a reason when missing), and the busybox OCI layout the tests build
# (target/tmp/fixtures/oci-busybox: run `cargo test --test run` once). Its entrypoint is
# `/bin/sh -c`, so the server's command line is one argument.
#
#   bash bench/network.sh dns
# Only the name server's part (also run at the end of the whole): the start-up of a named
# network's container with the server (this build) and without (BASELINE: a release build
# that has named networks but not the server; default the main checkout's), in one hyperfine
# run; then 1000 lookups of
# a container's name, one after another, from inside another container's network namespace:
# a UDP query to 127.0.0.11 (python3 under nsenter --net; the query is built once, the answer
# only counted) and glibc's getaddrinfo over the same container's hosts file (python3 under
# unshare -m with the file bound over /etc/hosts): median and 99th percentile.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"
USER_NAME=rsafe-test
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked --quiet
RSAFE="$PWD/target/release/rsafe"
LAYOUT="${LAYOUT:-$PWD/target/tmp/fixtures/oci-busybox}"
[ -f "$LAYOUT/index.json" ] || { echo "bench: $LAYOUT is missing: cargo test --test run first" >&2; exit 1; }
WORK=$(mktemp -d /tmp/rsafe-netbench-XXXX)
chmod 755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/www"
head -c $((256 << 20)) /dev/urandom > "$WORK/www/big"
chmod -R a+rX "$WORK/www"
dns_bench() {
  local store="$WORK/store-dns" base="${BASELINE:-/work/main/target/release/rsafe}"
  command -v python3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null; }
  mkdir -p "$store"
  # However it ends: its containers and network go (a bridge left would block the subnet).
  trap "set +e; '$RSAFE' --root '$store' rm -f web asker >/dev/null 2>&1; '$RSAFE' --root '$store' network rm benchdns >/dev/null 2>&1; rm -rf '$WORK'" EXIT
  "$RSAFE" --root "$store" load "$LAYOUT:root" >/dev/null
  "$RSAFE" --root "$store" network create --subnet 10.89.239.0/24 benchdns >/dev/null
  hyperfine -N -w 3 -r "${STARTS:-30}" --export-markdown "$WORK/startup-dns.md" \
    -n "named, no name server ($base)" "$base --root $store run --rm --network benchdns oci-busybox:root true" \
    -n "named, name server (this build)" "$RSAFE --root $store run --rm --network benchdns oci-busybox:root true" >/dev/null
  echo; cat "$WORK/startup-dns.md"; echo
  "$RSAFE" --root "$store" run -d --name web --network benchdns oci-busybox:root "sleep 600" >/dev/null
  "$RSAFE" --root "$store" run -d --name asker --network benchdns oci-busybox:root "sleep 600" >/dev/null
  local pid id
  pid=$("$RSAFE" --root "$store" inspect asker | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print(d["State"]["Pid"])')
  id=$("$RSAFE" --root "$store" inspect asker | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print(d["Id"])')
  cat > "$WORK/lookups.py" <<'PY'
import socket, statistics, struct, sys, time
def report(what, t):
    t = sorted(t)
    print(f"| {what} | {len(t)} | {statistics.median(t)*1e6:.0f} µs | {t[int(len(t)*0.99)]*1e6:.0f} µs |")
t = []
if sys.argv[1] == "dns":
    # A query for "web", type A, class IN (built once; the answer is only waited for).
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x03web\x00" + struct.pack(">HH", 1, 1)
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(2)
    for _ in range(1000):
        a = time.perf_counter(); c.sendto(q, ("127.0.0.11", 53)); c.recv(512); t.append(time.perf_counter() - a)
    report("DNS: UDP to 127.0.0.11 (rsafe's server)", t)
else:
    for _ in range(1000):
        a = time.perf_counter(); socket.getaddrinfo("web", None, socket.AF_INET); t.append(time.perf_counter() - a)
    report("hosts file: glibc getaddrinfo", t)
PY
  printf '| lookup of a container name | lookups | median | p99 |\n|---|---|---|---|\n'
  nsenter --net="/proc/$pid/ns/net" python3 "$WORK/lookups.py" dns
  unshare -m sh -c "mount --bind '$store/networks/benchdns/hosts/$id' /etc/hosts && python3 '$WORK/lookups.py' hosts"
  "$RSAFE" --root "$store" rm -f web asker >/dev/null
  "$RSAFE" --root "$store" network rm benchdns >/dev/null
}
as_user() { setpriv --reuid="$(id -u $USER_NAME)" --regid="$(id -g $USER_NAME)" --init-groups -- env HOME="/home/$USER_NAME" XDG_RUNTIME_DIR="/tmp/xdg-$USER_NAME" "$@"; }
mkdir -p "/tmp/xdg-$USER_NAME" && chown "$USER_NAME" "/tmp/xdg-$USER_NAME" && chmod 700 "/tmp/xdg-$USER_NAME"

if [ "${1:-}" = dns ]; then dns_bench; exit 0; fi

best_mbps() { # $1 = port
  local best=0 s
  for _ in $(seq "$RUNS"); do
    s=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$1/big")
    best=$(echo "if ($s > $best) $s else $best" | bc)
  done
  echo "scale=0; $best / 1000000" | bc
}
wait_port() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; return 1; }

printf '| runtime | network | MB/s (best of %s) |\n|---|---|---|\n' "$RUNS"
for who in root user; do
  store="$WORK/store-$who"; mkdir -p "$store"; chmod 777 "$store"
  run=("$RSAFE" --root "$store")
  [ "$who" = user ] && run=(as_user "$RSAFE" --root "$store")
  "${run[@]}" load "$LAYOUT:latest" >/dev/null
  id=$("${run[@]}" run -d --rm -p 18180:8000 -v "$WORK/www:/www:ro" oci-busybox:latest "httpd -f -p 8000 -h /www" 2>/dev/null)
  wait_port 18180
  printf '| rsafe (%s) | slirp4netns | %s |\n' "$who" "$(best_mbps 18180)"
  "${run[@]}" stop "$id" >/dev/null
done
# The same, rootless, on an outbound named network (-p goes through rsafe's forwarder to the
# container's address on the holder's bridge; slirp4netns is the network's way out only).
ustore="$WORK/store-user"
as_user "$RSAFE" --root "$ustore" network create --subnet 10.89.245.0/24 benchp >/dev/null
id=$(as_user "$RSAFE" --root "$ustore" run -d --rm --network benchp -p 18183:8000 -v "$WORK/www:/www:ro" oci-busybox:latest "httpd -f -p 8000 -h /www" 2>/dev/null)
wait_port 18183
printf '| rsafe (user) | named network (outbound, rootless) | %s |\n' "$(best_mbps 18183)"
as_user "$RSAFE" --root "$ustore" stop "$id" >/dev/null
as_user "$RSAFE" --root "$ustore" network rm benchp >/dev/null
# UDP through a published port and with the host's network. The container's root filesystem is
# iperf3 and the libraries ldd names (busybox has no iperf3); /tmp is a tmpfs for its buffers.
command -v iperf3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null; }
iroot="$WORK/iperf-root"; mkdir -p "$iroot/tmp" "$iroot/etc"
for f in "$(command -v iperf3)" $(ldd "$(command -v iperf3)" | grep -o '/[^ ]*'); do
  mkdir -p "$iroot$(dirname "$f")"; cp -L "$f" "$iroot$f"
done
chmod -R a+rX "$iroot"
best_udp() { # $1 = port; prints "Gbit/s | loss %" of the best receiver rate
  local best=0 loss=0 json r
  # Until the server answers (a published port's listener is the forwarder's, up before it).
  for _ in $(seq 30); do iperf3 -c 127.0.0.1 -p "$1" -u -b 1M -t 1 >/dev/null 2>&1 && break; sleep 0.2; done
  for _ in $(seq "$RUNS"); do
    json=$(iperf3 -c 127.0.0.1 -p "$1" -u -b 0 -l 1400 -t 5 -J)
    r=$(jq '.end.sum_received.bits_per_second' <<<"$json")
    if [ "$(echo "$r > $best" | bc)" = 1 ]; then
      best=$r; loss=$(jq '.end.sum_received.lost_percent' <<<"$json")
    fi
  done
  printf '%s | %.0f %%' "$(echo "scale=2; $best / 1000000000" | bc)" "$loss"
}
echo; printf '| runtime | UDP path | Gbit/s received (best of %s) | loss |\n|---|---|---|---|\n' "$RUNS"
for who in root user; do
  store="$WORK/store-$who"
  run=("$RSAFE" --root "$store")
  [ "$who" = user ] && run=(as_user "$RSAFE" --root "$store")
  id=$("${run[@]}" run -d --rm --tmpfs /tmp -p 18201:5201/tcp -p 18201:5201/udp "$iroot" -- /usr/bin/iperf3 -s -p 5201 2>"$WORK/run.err") \
    || { echo "bench: rsafe ($who) iperf3 -p: $(tail -1 "$WORK/run.err")" >&2; exit 1; }
  printf '| rsafe (%s) | -p 18201:5201/udp (slirp4netns + forwarder) | %s |\n' "$who" "$(best_udp 18201)"
  "${run[@]}" stop "$id" >/dev/null
  id=$("${run[@]}" run -d --rm --tmpfs /tmp --network host "$iroot" -- /usr/bin/iperf3 -s -p 18202 2>"$WORK/run.err") \
    || { echo "bench: rsafe ($who) iperf3 --network host: $(tail -1 "$WORK/run.err")" >&2; exit 1; }
  printf '| rsafe (%s) | --network host | %s |\n' "$who" "$(best_udp 18202)"
  "${run[@]}" stop "$id" >/dev/null
done
# Start-up cost of each network mode as root, in one hyperfine run: a container joining a
# running one's network (container:NAME) makes no network namespace of its own.
store="$WORK/store-startup"; mkdir -p "$store"
"$RSAFE" --root "$store" load "$LAYOUT:root" >/dev/null
"$RSAFE" --root "$store" run -d --name owner --network slirp4netns oci-busybox:root "sleep 600" >/dev/null 2>&1
"$RSAFE" --root "$store" network create --subnet 10.89.240.0/24 benchnet >/dev/null
hyperfine -N -w 3 -r "${STARTS:-30}" --export-markdown "$WORK/startup.md" \
  -n none "$RSAFE --root $store run --rm --network none oci-busybox:root true" \
  -n slirp4netns "$RSAFE --root $store run --rm --network slirp4netns oci-busybox:root true" \
  -n container:owner "$RSAFE --root $store run --rm --network container:owner oci-busybox:root true" \
  -n named:benchnet "$RSAFE --root $store run --rm --network benchnet oci-busybox:root true" >/dev/null
"$RSAFE" --root "$store" rm -f owner >/dev/null
"$RSAFE" --root "$store" network rm benchnet >/dev/null
echo; cat "$WORK/startup.md"; echo
# The same as the test user: --network none and a named network, each container's user namespace
# nested under the network holder's (started by the warm-up runs), in one hyperfine run; then a
# network's first run, which starts its holder (the network removed and made again before each).
# benchnet is --internal, benchout reaches the outside (slirp4netns in its holder, started with
# the holder by the warm-up runs).
ustore="$WORK/store-startup-user"; mkdir -p "$ustore"; chmod 777 "$ustore"
user_rsafe="setpriv --reuid=$(id -u $USER_NAME) --regid=$(id -g $USER_NAME) --init-groups -- env HOME=/home/$USER_NAME $RSAFE --root $ustore"
$user_rsafe load "$LAYOUT:latest" >/dev/null
$user_rsafe network create --internal --subnet 10.89.241.0/24 benchnet >/dev/null
$user_rsafe network create --subnet 10.89.243.0/24 benchout >/dev/null
hyperfine -N -w 3 -r "${STARTS:-30}" --export-markdown "$WORK/startup-user.md" \
  -n "none (rootless)" "$user_rsafe run --rm --network none oci-busybox:latest true" \
  -n "named:benchnet (rootless, internal)" "$user_rsafe run --rm --network benchnet oci-busybox:latest true" \
  -n "named:benchout (rootless, outbound)" "$user_rsafe run --rm --network benchout oci-busybox:latest true" >/dev/null
$user_rsafe network rm benchnet benchout >/dev/null
hyperfine -N -w 1 -r "${STARTS:-30}" --export-markdown "$WORK/startup-holder.md" \
  --prepare "sh -c '$user_rsafe network rm fresh >/dev/null 2>&1; $user_rsafe network create --internal --subnet 10.89.242.0/24 fresh >/dev/null'" \
  -n "named, first run (rootless: holder started)" "$user_rsafe run --rm --network fresh oci-busybox:latest true" >/dev/null
$user_rsafe network rm fresh >/dev/null
hyperfine -N -w 1 -r "${STARTS:-30}" --export-markdown "$WORK/startup-holder-out.md" \
  --prepare "sh -c '$user_rsafe network rm freshout >/dev/null 2>&1; $user_rsafe network create --subnet 10.89.244.0/24 freshout >/dev/null'" \
  -n "named outbound, first run (rootless: holder and slirp4netns started)" "$user_rsafe run --rm --network freshout oci-busybox:latest true" >/dev/null
$user_rsafe network rm freshout >/dev/null
cat "$WORK/startup-user.md" "$WORK/startup-holder.md" "$WORK/startup-holder-out.md"; echo
if command -v podman >/dev/null; then
  # The image by the id the pull prints: the user's store holds other tests' images, and the
  # first one listed need not be this busybox (its entrypoint, /bin/sh -c, is what runs httpd).
  image=$(as_user podman pull -q "oci:$LAYOUT:latest" 2>"$WORK/podman.err" | tail -1) || image=""
  [ -n "$image" ] || { echo "bench: podman pull oci:$LAYOUT: $(tail -1 "$WORK/podman.err")" >&2; image=none; }
  # crun 1.8 refuses this hybrid-cgroup host ("cgroups in hybrid mode not supported"): runc,
  # without cgroups (rootless podman has none here either). podman 4.3 predates pasta.
  for net in slirp4netns pasta; do
    if as_user podman --runtime runc --cgroup-manager cgroupfs run -d --rm --name "bench-$net" --network "$net" -p 127.0.0.1:18181:8000 \
        -v "$WORK/www:/www:ro" "$image" "httpd -f -p 8000 -h /www" >/dev/null 2>"$WORK/podman.err" \
        && wait_port 18181; then
      printf '| podman 4.3 rootless | %s | %s |\n' "$net" "$(best_mbps 18181)"
    else
      printf '| podman 4.3 rootless | %s | failed: %s |\n' "$net" "$(tail -1 "$WORK/podman.err")"
    fi
    as_user podman rm -f "bench-$net" >/dev/null 2>&1 || true
  done
else
  echo "| podman | — | skipped: not installed |"
fi
dns_bench
