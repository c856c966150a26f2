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
