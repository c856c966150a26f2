#!/usr/bin/env bash
# The OCI runtime interface (issue 14, "Measure"): in one hyperfine run, create+start+wait+delete
# of /bin/true from ONE bundle under rsafe-runtime, crun and runc (`RUNTIME run --bundle B ID`
# does all four steps for each of them), then `podman run --rm --network none` of the same root
# filesystem with each of the three as podman's `--runtime`.
#
#   bash bench/oci-runtimes.sh [work dir]      RUNS=40 WARMUP=10 to change the sampling
#
# Run as root. Installs what is missing with apt-get (busybox-static jq hyperfine crun runc podman
# conmon, and libseccomp-dev pkg-config for youki). youki has no Debian 12 package: unless
# YOUKI=/path/to/youki (or YOUKI=none to leave it out) or `youki` is on PATH, the script builds
# youki 0.7.0 from crates.io into the work dir once (`cargo install youki --features
# v1,v2,seccomp`, 2 min 43 s here).
#   bundle  busybox-static as the root filesystem (read-only, as `runc spec` says) and `runc spec`'s
#           config with process.args ["/bin/true"] and no terminal: runc's defaults (pid, net,
#           ipc, uts and mount namespaces; 3 capabilities; no seccomp; no user namespace), which
#           rsafe-runtime tops up with its floor (a user namespace, no_new_privs, its seccomp
#           filter, descriptors closed)
#   state   each runtime keeps its state under the work dir (`--root`), never in /run
#   podman  a private storage root under the work dir; the rootfs imported (`podman import`)
#           once; `--cgroup-manager cgroupfs --events-backend none`, `--ulimit nofile/nproc 1024`
#
# Host quirks (see /work/shared/peers/README.md): crun 1.8 refuses to start on a hybrid cgroup
# host, so every command runs in one private mount namespace with the controller-less
# /sys/fs/cgroup/unified unmounted (podman then drives crun too, and nothing changes for the
# others); root lacks CAP_SYS_RESOURCE, so podman gets --ulimit nofile/nproc 1024.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "bench/oci-runtimes.sh: run as root" >&2; exit 1; }
RUNS="${RUNS:-40}"
WARMUP="${WARMUP:-10}"
WORK="${1:-/tmp/rsafe-bench-oci}"
log() { printf '== %s\n' "$*" >&2; }

need=()
for p in busybox-static:busybox jq:jq hyperfine:hyperfine crun:crun runc:runc podman:podman \
  conmon:conmon pkg-config:pkg-config; do
  command -v "${p#*:}" >/dev/null || need+=("${p%%:*}")
done
[ -f /usr/include/seccomp.h ] || need+=(libseccomp-dev)
if [ "${#need[@]}" -gt 0 ]; then
  log "apt-get install ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
YOUKI="${YOUKI:-$(command -v youki || true)}"
if [ -z "$YOUKI" ]; then
  YOUKI="$WORK/youki/bin/youki"
  if [ ! -x "$YOUKI" ]; then
    log "build youki 0.7.0 (cargo install, once)"
    cargo install --quiet youki --version 0.7.0 --features v1,v2,seccomp --root "$WORK/youki" \
      --target-dir "$WORK/youki/target"
  fi
fi
[ "$YOUKI" = none ] && YOUKI=

log "build rsafe (release)"
cargo build --release --locked --quiet
mkdir -p "$WORK"
cp target/release/rsafe "$WORK/rsafe"
ln -sfn rsafe "$WORK/rsafe-runtime"
RT="$WORK/rsafe-runtime"

B="$WORK/bundle"
if [ ! -f "$B/config.json" ]; then
  log "make the bundle"
  rm -rf "$B"
  mkdir -p "$B/rootfs"/{bin,etc,tmp,proc,sys,dev,root}
  cp /bin/busybox "$B/rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$B/rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$B/rootfs/etc/passwd"
  printf 'root:x:0:\n' > "$B/rootfs/etc/group"
  chmod 1777 "$B/rootfs/tmp"
  runc spec --bundle "$B"
  jq '.process.terminal=false | .process.args=["/bin/true"]' "$B/config.json" > "$B/config.new"
  mv "$B/config.new" "$B/config.json"
fi

# Every runtime must run the bundle, exit with the workload's code and leave no state behind;
# a runtime that failed would otherwise be timed failing fast.
check() { # check NAME STATE_DIR RUNTIME: `RUNTIME --root STATE_DIR run` of a bundle exiting 3
  local name="$1" state="$2" rt="$3"   # returns 3 and leaves nothing in STATE_DIR
  local c="$WORK/check"
  rm -rf "$c"; mkdir -p "$c"
  jq --arg r "$B/rootfs" '.root.path=$r | .process.args=["/bin/sh","-c","exit 3"]' \
    "$B/config.json" > "$c/config.json"
  local code=0
  "$rt" --root "$state" run --bundle "$c" bench-check >/dev/null 2>&1 || code=$?
  [ "$code" = 3 ] || { echo "bench/oci-runtimes.sh: $name run exited $code, not 3" >&2; exit 1; }
  [ -z "$(ls -A "$state")" ] || { echo "bench/oci-runtimes.sh: $name left state in $state" >&2; exit 1; }
}

P="podman --root $WORK/podman/root --runroot $WORK/podman/run --cgroup-manager cgroupfs --events-backend none"
if ! $P image exists localhost/rsafe-bench-oci:latest 2>/dev/null; then
  log "import the rootfs into podman's storage"
  tar -C "$B/rootfs" -cf "$WORK/rootfs.tar" .
  $P import -q "$WORK/rootfs.tar" localhost/rsafe-bench-oci:latest >/dev/null
fi
UL="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
PR="$P run --rm --network none $UL"
IMG=localhost/rsafe-bench-oci:latest

declare -a cmds=(
  -n 'rsafe-runtime run' "$RT --root $WORK/state/rsafe run --bundle $B bench-rsafe"
  -n 'crun run' "crun --root $WORK/state/crun run --bundle $B bench-crun"
  -n 'runc run' "runc --root $WORK/state/runc run --bundle $B bench-runc"
)
if [ -n "$YOUKI" ]; then
  cmds+=(-n 'youki run' "$YOUKI --root $WORK/state/youki run --bundle $B bench-youki")
fi
cmds+=(
  -n 'podman run --runtime rsafe-runtime' "$PR --runtime $RT $IMG /bin/true"
  -n 'podman run --runtime crun' "$PR --runtime $(command -v crun) $IMG /bin/true"
  -n 'podman run --runtime runc' "$PR --runtime $(command -v runc) $IMG /bin/true"
)
if [ -n "$YOUKI" ]; then
  cmds+=(-n 'podman run --runtime youki' "$PR --runtime $YOUKI $IMG /bin/true")
fi

log "one hyperfine run as root (load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs)"
export WORK B
unshare -m --propagation private bash -c "
  set -e
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  $(declare -f check)
  check rsafe-runtime $WORK/state/rsafe $RT
  check crun $WORK/state/crun crun
  check runc $WORK/state/runc runc
  ${YOUKI:+check youki $WORK/state/youki $YOUKI}
  for r in $RT $(command -v crun) $(command -v runc) $YOUKI; do
    $PR --runtime \$r $IMG /bin/true || { echo \"bench/oci-runtimes.sh: podman --runtime \$r failed\" >&2; exit 1; }
  done
  hyperfine -N --warmup $WARMUP -r $RUNS --export-markdown '$WORK/oci.md' --export-json '$WORK/oci.json' \"\$@\"
" bash "${cmds[@]}"

log "results: $WORK/oci.md (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
# mean ± σ and relative to rsafe-runtime run, per the JSON (hyperfine's own table is relative
# to the fastest).
jq -r '
  def ms: (. * 10000 | round / 10 | tostring) as $s
    | if ($s | contains(".")) then $s else $s + ".0" end;
  (.results[0].mean) as $base
  | "| command | mean ms ± σ | min ms | × rsafe-runtime run |",
    "|---|---|---|---|",
    (.results[] | "| `\(.command)` | \(.mean | ms) ± \(.stddev | ms) | \(.min | ms) | \(.mean / $base * 100 | round / 100) |")
' "$WORK/oci.json"
