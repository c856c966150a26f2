#!/usr/bin/env bash
# The install routes, as a Debian user takes them: builds the .deb with cargo-deb, installs it
# with `apt-get install ./rsafe_*.deb`, runs the installed /usr/bin/rsafe (version, the
# rsafe-runtime link, an audit of the bundled example, a run of it as root and as the
# unprivileged test user, an installed policy file), removes it with `dpkg -r` and checks that
# nothing `dpkg -L` listed is left. Then `cargo install --path .` into a scratch root.
# Needs root (apt-get, dpkg). Called by tests/run.sh; prints "deb-check: N passed, 0 failed".
# RSAFE_DEB_PROFILE (default release, what a user builds) picks the cargo profile of the
# packaged binary: tests/run.sh sets dev, which packages the build the test suite makes anyway
# instead of a second, release build of everything (10m43s of CPU here); the package's
# layout, links, Depends and removal are the same.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "deb-check: needs root (apt-get install, dpkg -r)" >&2; exit 1; }
bash .ci/setup-debian.sh
# cargo-deb, pinned: the package's layout (links, assets, Depends) is what this check tests.
# Installed here, not in setup-debian.sh: only this check needs it (the quickstart does not).
CARGO_DEB_VERSION=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  echo "deb-check: cargo install cargo-deb $CARGO_DEB_VERSION" >&2
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" --quiet
fi
passed=0
ok() { passed=$((passed + 1)); echo "deb-check: ok: $*"; }
fail() { echo "deb-check: FAILED: $*" >&2; exit 1; }

WORK="$(mktemp -d /tmp/rsafe-deb-check.XXXXXX)"
chmod 755 "$WORK"
cleanup() {
  dpkg -s rsafe >/dev/null 2>&1 && dpkg -r rsafe >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
if dpkg -s rsafe >/dev/null 2>&1; then
  echo "deb-check: removing an rsafe package left installed" >&2
  dpkg -r rsafe >/dev/null
fi
[ ! -e /usr/bin/rsafe ] || fail "/usr/bin/rsafe exists and belongs to no package: not overwriting it"

# Build. cargo-deb builds the profile's binary and strips it.
PROFILE="${RSAFE_DEB_PROFILE:-release}"
rm -f target/debian/rsafe_*.deb
cargo deb --locked --profile "$PROFILE"
DEB="$(ls target/debian/rsafe_*.deb)"
dpkg-deb -f "$DEB" Depends | grep -q 'libseccomp2' || fail "$DEB: Depends lacks libseccomp2: $(dpkg-deb -f "$DEB" Depends)"
ok "built $DEB ($PROFILE profile; Depends: $(dpkg-deb -f "$DEB" Depends); Recommends: $(dpkg-deb -f "$DEB" Recommends))"

# Install as a user would, dependencies resolved by apt.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$DEB" >/dev/null
dpkg -L rsafe > "$WORK/files"
for f in /usr/bin/rsafe /usr/bin/rsafe-runtime /usr/share/rsafe/policies/default.toml \
  /usr/share/rsafe/policies/seccomp/default.json /usr/share/doc/rsafe/README.md; do
  grep -qx "$f" "$WORK/files" || fail "dpkg -L rsafe does not list $f"
done
[ "$(readlink /usr/bin/rsafe-runtime)" = rsafe ] || fail "/usr/bin/rsafe-runtime is not a link to rsafe"
ok "installed: $(wc -l < "$WORK/files") paths, rsafe-runtime -> rsafe"

version="$(/usr/bin/rsafe --version)"
grep -q "^rsafe $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" <<< "$version" \
  || fail "/usr/bin/rsafe --version printed: $version"
runtime="$(/usr/bin/rsafe-runtime --version)"
grep -q '^rsafe-runtime ' <<< "$runtime" || fail "rsafe-runtime --version printed: $runtime (not the runtime's command line)"
ok "$version; the link answers as the runtime: $runtime"

# The bundled example image (examples/build-leaky-image.sh: synthetic credentials).
OUT="$WORK/example" bash examples/build-leaky-image.sh >/dev/null
TAR="$WORK/example/leaky-app.tar"
set +e
/usr/bin/rsafe audit "$TAR" --format json --fail-on high > "$WORK/audit.json"
code=$?
set -e
[ "$code" = 1 ] || fail "rsafe audit $TAR --fail-on high exited $code, not 1"
jq -e '[.findings[].rule] | index("secret.aws-secret-access-key")' "$WORK/audit.json" >/dev/null \
  || fail "rsafe audit $TAR: no secret.aws-secret-access-key finding"
ok "audit of the example: exit 1, $(jq '.findings | length' "$WORK/audit.json") findings"

# Run as root: container root is an unprivileged host id.
export RSAFE_ROOT="$WORK/store-root"
/usr/bin/rsafe load "$TAR" >/dev/null
out="$(/usr/bin/rsafe run --rm leaky-app:1.0 /bin/sh -c 'id -u; cat /proc/self/uid_map')"
[ "$(head -1 <<< "$out")" = 0 ] || fail "rsafe run as root: id -u printed $(head -1 <<< "$out")"
awk 'NR==2 {exit !($1 == 0 && $2 != 0)}' <<< "$out" || fail "rsafe run as root: container root is host root: $out"
ok "run as root: container root is host uid $(awk 'NR==2 {print $2}' <<< "$out")"

# An installed policy file works as --policy FILE.
out="$(/usr/bin/rsafe run --rm --policy /usr/share/rsafe/policies/strict.toml leaky-app:1.0 /bin/sh -c 'grep ^CapEff /proc/self/status')"
grep -q '^CapEff:' <<< "$out" || fail "rsafe run --policy /usr/share/rsafe/policies/strict.toml: $out"
ok "run with --policy /usr/share/rsafe/policies/strict.toml"
unset RSAFE_ROOT

# Rootless, as the test user with its own store.
user=rsafe-test
uid="$(id -u "$user")"
gid="$(id -g "$user")"
as_user() {
  setpriv --reuid="$uid" --regid="$gid" --init-groups --inh-caps=-all --bounding-set=-all -- \
    env -u RSAFE_ROOT HOME="/home/$user" /usr/bin/rsafe --root "$WORK/store-user" "$@"
}
install -d -o "$uid" -g "$gid" "$WORK/store-user"
as_user load "$TAR" >/dev/null
out="$(as_user run --rm leaky-app:1.0 /bin/sh -c 'id -u; cat /proc/self/uid_map')"
[ "$(head -1 <<< "$out")" = 0 ] || fail "rootless rsafe run: id -u printed $(head -1 <<< "$out")"
awk -v uid="$uid" 'NR==2 {exit !($1 == 0 && $2 == uid)}' <<< "$out" \
  || fail "rootless rsafe run: container root is not the caller ($uid): $out"
ok "rootless run as $user: container root is host uid $uid"

# Removal leaves none of the package's files (directories shared with other packages stay).
dpkg -r rsafe >/dev/null
left=()
while read -r f; do
  case "$f" in /. | /usr | /usr/bin | /usr/share | /usr/share/doc) continue ;; esac
  if [ -e "$f" ] || [ -L "$f" ]; then left+=("$f"); fi
done < "$WORK/files"
[ "${#left[@]}" = 0 ] || fail "dpkg -r rsafe left: ${left[*]}"
ok "dpkg -r rsafe removed all $(wc -l < "$WORK/files") paths"

# cargo install --path . (reuses the profile's build above, in target/).
cargo install --locked --path . --profile "$PROFILE" --root "$WORK/cargo-root" --quiet
"$WORK/cargo-root/bin/rsafe" --version | grep -q '^rsafe ' || fail "cargo install --path .: no working rsafe"
ok "cargo install --path . --root DIR: $("$WORK/cargo-root/bin/rsafe" --version)"

echo "deb-check: $passed passed, 0 failed"
