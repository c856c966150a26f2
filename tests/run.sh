#!/usr/bin/env bash
# The whole test suite, as CI runs it: system packages, format, lints, the .deb install check,
# then every test with every kernel feature and tool required (a missing one fails instead of
# skipping).
# Rootless behaviour is tested from inside the suite by running rsafe as the user rsafe-test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/setup-debian.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# The install routes (.deb built, installed, run, removed; cargo install --path .), with the
# dev profile: the build the tests use anyway (a release build would add ~11 min of CPU).
RSAFE_DEB_PROFILE=dev bash .ci/deb-check.sh
# Every test binary runs even after one fails, so one CI run shows every failure.
RSAFE_TEST_REQUIRE=1 cargo test --locked --no-fail-fast
# Nothing of rsafe left on the host, and the host's device nodes as they were.
bash .ci/host-check.sh
