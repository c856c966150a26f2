#!/usr/bin/env bash
# Installs what rsafe builds and tests with on Debian 12, and creates the unprivileged test user.
# Idempotent; needs root (or sudo). Used by the README's first command and by tests/run.sh.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
PKGS=(
  build-essential pkg-config libseccomp-dev   # build: libseccomp for the seccomp filters
  uidmap                                      # newuidmap/newgidmap: subuid ranges for rootless runs
  slirp4netns                                 # run --network slirp4netns and -p (user-mode network)
  iproute2                                    # run --network NAME: bridges and veth pairs (ip); rootless tests use lsns (util-linux)
  nftables                                    # run --network NAME as root: outbound masquerade and isolation rules (nft)
  iptables                                    # tests/network_named.rs: a docker-like FORWARD DROP policy (iptables-nft)
  umoci skopeo busybox-static                 # tests: build real OCI layouts and docker-archive tarballs
  docker-registry apache2-utils openssl       # tests: a real OCI distribution registry (+ htpasswd, test CA and token keys)
  crun runc bubblewrap                        # tests and bench: peer runtimes
  podman conmon containerd                    # tests and bench: real clients of rsafe-runtime (podman --runtime, containerd's runc shim)
  openssh-client                              # tests: real SSH keys for the secret scanner
  golang-github-containers-common             # tests and bench: podman's default seccomp profile (/usr/share/containers/seccomp.json)
  mmdebstrap                                  # tests and bench: the Debian minbase image (cached in /var/cache/rsafe-test)
  hyperfine zstd jq curl ca-certificates
  time bc                                     # bench/secrets-peers.sh: peak RSS (/usr/bin/time -v), arithmetic
  python3                                     # tests/oci_runtime.rs: the seccomp agent (SCM_RIGHTS, seccomp ioctls)
  procps                                      # rsafe top runs ps (tests/container_cmds.rs)
)
missing=()
for p in "${PKGS[@]}"; do
  [[ "$p" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The unprivileged user the rootless tests run as, with a subordinate id range.
if ! id rsafe-test >/dev/null 2>&1; then
  $SUDO useradd -m -s /bin/sh rsafe-test
fi
grep -q '^rsafe-test:' /etc/subuid 2>/dev/null || echo 'rsafe-test:200000:65536' | $SUDO tee -a /etc/subuid >/dev/null
grep -q '^rsafe-test:' /etc/subgid 2>/dev/null || echo 'rsafe-test:200000:65536' | $SUDO tee -a /etc/subgid >/dev/null
# slirp4netns opens /dev/net/tun inside the container's user namespace, where only the "other"
# bits count: Debian's udev makes it 0666, a host without udev (this CI's VM) leaves it 0600.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  $SUDO chmod 666 /dev/net/tun
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
