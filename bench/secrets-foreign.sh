#!/usr/bin/env bash
# Secret recall on fixtures written and labelled by OTHER scanners' authors (the brief's item 2),
# next to bench/secrets-recall.sh, whose corpus rsafe's own team generated.
#
# Fetched at bench time from package registries into $CACHE (never committed), versions pinned,
# sha256 checked:
#   ripsecrets 0.1.9    crates.io's .crate           test/one_per_line, one_per_file, none
#   gitleaks 8.16.0     Debian trixie's orig tarball  testdata/repos (nogit, symlinks, small)
#                       (apt-get source --download-only with a private deb-src list in $CACHE;
#                       the host's apt configuration is not touched)
#   bandit 1.9.4        PyPI sdist                    examples/hardcoded-passwords.py
#   gitleaks-rules      the same gitleaks tarball     cmd/generate/config/rules/*.go: every
#                       rule's tps (190, 148 rules) and fps (4), evaluated by
#                       bench/secrets-foreign/gitleaks_rules.py as gitleaks' generator test
#                       builds them (secrets.NewSecret(REGEX) from a seeded generator)
# bench/secrets-foreign/foreign.py documents each source's labelling convention (what its own
# test asserts), lays the fixtures out as $CORPUS/cases/SOURCE/… and scores every report.
# Checked and left out (no labelled fixtures in what the registry ships): secretlint's rule
# packages on npm (built module and src/index.ts only), detect-secrets 1.5.0 and whispers 2.4.0
# on PyPI, credentialdigger 4.15.0 on PyPI (no tests in its sdist); trufflehog3 3.0.10 on PyPI
# (the wheel ships no tests, the sdist does not build with current pip); trufflehog 3.60.0
# (Debian sid source): its 792 detector tests fetch their secrets from a cloud secret store at
# test time, none is written down; gitleaks 8.26.0 (sid's version, with more literal samples):
# its orig tarball is gone from the mirror (404), so 8.16.0 (trixie) is the newest usable.
#
# Tools, as bench/secrets-recall.sh and bench/secrets-peers.sh install and run them:
#   rsafe audit $CORPUS --format json      (Dockerfile `COPY cases /srv/app/`)
#   detect-secrets scan --all-files cases  (venv $BENCH_DIR/venv)
#   secretlint "cases/**/*"                (+ preset-recommend, npm in $PEERS_DIR/npm)
#   ripsecrets --only-matching FILE…       (cargo install --root $PEERS_BIN; every file named)
# A scanner scored on its own fixtures is flattered: ripsecrets on ripsecrets' (its test asserts
# every one), and none of the others on theirs here (gitleaks and bandit are not run).
#
# Usage: bash bench/secrets-foreign.sh     RSAFE=path/to/rsafe (default: release build)
#   SKIP="detect-secrets secretlint ripsecrets"  leave peers out;  MISSES=1  list misses (path:line)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CACHE="${CACHE:-/tmp/rsafe-secrets-foreign}"
CORPUS="$CACHE/corpus"
OUT="$CACHE/reports"
BENCH_DIR="${BENCH_DIR:-/tmp/rsafe-bench}"
PEERS_DIR="${PEERS_DIR:-/tmp/rsafe-peers}"
PEERS_BIN="${PEERS_BIN:-/tmp/rsafe-peers-bin}"
SKIP="${SKIP:-}"
SCORE="python3 bench/secrets-foreign/foreign.py"
log() { printf '== %s\n' "$*" >&2; }
wanted() { [[ " $SKIP " != *" $1 "* ]]; }
mkdir -p "$CACHE/dl" "$OUT"

check() { # FILE SHA256: a fetched file whose digest differs is deleted and the source left out
  if echo "$2  $1" | sha256sum -c --quiet - 2>/dev/null; then return 0; fi
  log "$(basename "$1"): sha256 differs from the pinned one, left out"
  rm -f "$1"
  return 1
}
unpack() { # TARBALL DIR: unpack once into $CACHE
  [ -d "$CACHE/$2" ] || tar -C "$CACHE" -xzf "$1"
}

# ripsecrets: the .crate is a gzip'd tar of the published package, tests included.
f="$CACHE/dl/ripsecrets-0.1.9.crate"
[ -f "$f" ] || curl -sSfL -o "$f" https://static.crates.io/crates/ripsecrets/ripsecrets-0.1.9.crate || log "ripsecrets: download failed"
[ -f "$f" ] && check "$f" f6d49a98d63d41f211b37b4766bd44b3eca5b5099f07e99f8df766f28782dfb4 && unpack "$f" ripsecrets-0.1.9

# gitleaks: Debian packages it (not in bookworm); the orig tarball is upstream's source.
f="$CACHE/dl/gitleaks_8.16.0.orig.tar.gz"
if [ ! -f "$f" ]; then
  A="$CACHE/apt"
  mkdir -p "$A/lists/partial" "$A/cache/archives/partial"
  echo 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main' > "$A/sources.list"
  APTO=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache")
  # Only the orig tarball is needed (the .debian.tar.xz may be gone from the mirror).
  (cd "$CACHE/dl" && apt-get "${APTO[@]}" -qq update && apt-get "${APTO[@]}" -qq source --download-only gitleaks=8.16.0-1) >&2 || true
fi
[ -f "$f" ] && check "$f" 71aace87a76d966a918031588a63127303b375085a39d5b8d2af02105f2118d8 && unpack "$f" gitleaks-8.16.0

# bandit: its sdist ships examples/ and the functional test that counts on them.
f="$CACHE/dl/bandit-1.9.4.tar.gz"
# pip of the peers' venv (bench/secrets-recall.sh's), so that no pip is needed on the host.
[ -x "$BENCH_DIR/venv/bin/pip" ] || python3 -m venv "$BENCH_DIR/venv" >&2 || true
[ -f "$f" ] || "$BENCH_DIR/venv/bin/pip" download --quiet --no-deps --no-binary :all: -d "$CACHE/dl" bandit==1.9.4 >&2 ||
  log "bandit: download failed"
[ -f "$f" ] && check "$f" b589e5de2afe70bd4d53fa0c1da6199f4085af666fde00e8a034f152a52cd628 && unpack "$f" bandit-1.9.4

$SCORE prepare "$CACHE" "$CORPUS"

if [ -z "${RSAFE:-}" ]; then
  log "build rsafe (release)"
  cargo build --release --locked --quiet
  RSAFE="$PWD/target/release/rsafe"
fi

RESULTS=()
scored() { # TOOL REPORT
  $SCORE score "$CORPUS" "$1" "$2" ${MISSES:+--misses} > "$OUT/$1.score.json"
  RESULTS+=("$OUT/$1.score.json")
  [ -z "${MISSES:-}" ] || jq -c '{tool, missed, false_reports}' "$OUT/$1.score.json" >&2
}

log "rsafe"
"$RSAFE" audit "$CORPUS" --format json > "$OUT/rsafe.json" 2> "$OUT/rsafe.err" || true
scored rsafe "$OUT/rsafe.json"

if wanted detect-secrets; then
  DS="$BENCH_DIR/venv/bin/detect-secrets"
  [ -x "$DS" ] || { python3 -m venv "$BENCH_DIR/venv" && "$BENCH_DIR/venv/bin/pip" install --quiet detect-secrets==1.5.0; } >&2 || true
  if [ -x "$DS" ]; then
    log "detect-secrets"
    (cd "$CORPUS" && "$DS" scan --all-files cases > "$OUT/detect-secrets.json" 2> "$OUT/detect-secrets.err") || true
    scored detect-secrets "$OUT/detect-secrets.json"
  else log "detect-secrets: pip install failed, left out"; fi
fi

if wanted secretlint; then
  NPM_DIR="$PEERS_DIR/npm"
  if [ ! -x "$NPM_DIR/node_modules/.bin/secretlint" ] && command -v npm >/dev/null; then
    mkdir -p "$NPM_DIR"
    [ -f "$NPM_DIR/package.json" ] || echo '{"private": true}' > "$NPM_DIR/package.json"
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --silent secretlint @secretlint/secretlint-rule-preset-recommend) >&2 || true
  fi
  if [ -x "$NPM_DIR/node_modules/.bin/secretlint" ]; then
    echo '{"rules":[{"id":"@secretlint/secretlint-rule-preset-recommend"}]}' > "$PEERS_DIR/secretlintrc.json"
    log "secretlint"
    (cd "$CORPUS" && "$NPM_DIR/node_modules/.bin/secretlint" "cases/**/*" --format json \
      --secretlintrc "$PEERS_DIR/secretlintrc.json" --secretlintignore /dev/null > "$OUT/secretlint.json" 2> "$OUT/secretlint.err") || true
    scored secretlint "$OUT/secretlint.json"
  else log "secretlint: npm install failed, left out"; fi
fi

if wanted ripsecrets; then
  RS="$PEERS_BIN/bin/ripsecrets"
  [ -x "$RS" ] || cargo install --quiet --locked ripsecrets --root "$PEERS_BIN" >&2 || true
  if [ -x "$RS" ]; then
    log "ripsecrets"
    # Every file named on the command line (a directory walk skips dotfiles); only path:line kept.
    (cd "$CORPUS" && find cases -type f -print0 | xargs -0 "$RS" --only-matching |
      sed -nE 's/^([^:]*:[0-9]+):.*/\1:/p' > "$OUT/ripsecrets.txt") || true
    scored ripsecrets "$OUT/ripsecrets.txt"
  else log "ripsecrets: cargo install failed, left out"; fi
fi

echo
echo "Recall on other scanners' labelled fixtures (found/labelled), and false reports on their negative lines:"
python3 - "${RESULTS[@]}" <<'PY'
import json, sys
res = [json.load(open(p)) for p in sys.argv[1:]]
sources = sorted(res[0]["per_source"]) if res else []
print("| tool | " + " | ".join(sources) + " | total | recall | false reports on negative lines |")
print("|---" * (len(sources) + 4) + "|")
for r in res:
    cells = [f'{r["per_source"][s]["found"]}/{r["per_source"][s]["secrets"]}' for s in sources]
    t = r["total"]
    print(f'| {r["tool"]} | ' + " | ".join(cells)
          + f' | {t["found"]}/{t["secrets"]} | {t["found"] / t["secrets"]:.2f} | {t["false_lines"]} of {t["negative_lines"]} |')
print()
print("gitleaks' rule samples judged per rule, as its validate() does:")
print("| tool | rules whose every tp is found | rules with fps none of which is reported |")
print("|---|---|---|")
for r in res:
    g = r["gitleaks_rules"]
    print(f'| {r["tool"]} | {g["every_tp_found"]}/{g["rules"]} | {g["no_fp_reported"]}/{g["rules_with_fps"]} |')
PY
