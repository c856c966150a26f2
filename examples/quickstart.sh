#!/usr/bin/env bash
# From a fresh Debian 12 machine to rsafe's main job on a bundled example image:
# install what is needed, build rsafe, build a real (leaky) example image, load it, look at its
# history, audit it, and run it in the sandbox.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/setup-debian.sh
cargo build --release --locked
RSAFE=target/release/rsafe
export RSAFE_ROOT="${RSAFE_ROOT:-$PWD/examples/out/store}"
bash examples/build-leaky-image.sh
set -x
$RSAFE load examples/out/leaky-app.tar
$RSAFE images
$RSAFE history leaky-app:1.0
$RSAFE audit leaky-app:1.0 || true
# The same image as a CI gate: exit 1 because something high or critical is in it.
$RSAFE audit examples/out/leaky-app.tar --format json --fail-on high > examples/out/leaky-app.audit.json || echo "gate: exit $? (findings at or above high)"
# Run it in the sandbox: container root is an unprivileged host id, seccomp and landlock are on.
$RSAFE run --rm --verbose leaky-app:1.0 /bin/sh -c 'id; cat /proc/self/uid_map; grep -E "NoNewPrivs|Seccomp:" /proc/self/status'
