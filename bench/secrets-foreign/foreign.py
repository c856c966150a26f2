#!/usr/bin/env python3
"""Secret recall on fixtures other scanners' authors wrote and labelled (bench/secrets-foreign.sh).

  foreign.py prepare CACHE CORPUS     lay the fetched fixtures out as CORPUS/cases/SOURCE/…,
                                      write CORPUS/Dockerfile (`COPY cases /srv/app/`) and
                                      CORPUS/labels.tsv from each source's own convention
  foreign.py score CORPUS TOOL REPORT [--misses]
                                      per-source recall and false reports on negative lines

Labels come from the fixture authors, never from rsafe's team. Each source's convention (what
its own test asserts):

  ripsecrets 0.1.9 (crates.io), src/lib.rs tests `no_false_negatives` / `no_false_positives`:
    test/one_per_line/NAME  every line is one secret (the test counts '\\n' == findings)
    test/one_per_file/NAME  the file holds exactly one secret (findings == 1): a hit anywhere
                            in the file finds it
    test/none               no secret on any line (findings == 0)
  gitleaks 8.16.0 (Debian's orig tarball), detect/detect_test.go `TestFromFiles`:
    testdata/repos/nogit/main.go        one AWS key at StartLine 20, no other finding
    testdata/repos/symlinks/source_file/id_ed25519
                                        one private key (rule apkey, line 1): one per file
    testdata/repos/small/{main.go,README.md,api/api.go}
                                        the working tree of the small repo, whose secrets live
                                        only in its history (the git tests): no finding
  bandit 1.9.4 (PyPI sdist), examples/hardcoded-passwords.py (B105-B107, counted by
  tests/functional/test_functional.py): each `# Possible hardcoded password: 'X'` comment
  labels the next code line that holds 'X' as one secret; `''` and `None` (an empty or absent
  password) label nothing. Lines without such a comment are not labelled either way (bandit
  reports only by count), so they count neither as a miss nor as a false report.
  gitleaks 8.16.0's rule samples (same tarball), cmd/generate/config/rules/*.go, each rule's
  `validate(r, tps, fps)` (the rule must find every tp once and no fp): tps and fps evaluated
  by gitleaks_rules.py as gitleaks' generator test builds them (`secrets.NewSecret(REGEX)`
  from a seeded generator), laid out as gitleaks-rules/tps/RULE (one secret per sample, blank
  line between) and gitleaks-rules/fps/RULE (every line negative).

Fixtures are copied without their test-directory prefix (ripsecrets/one_per_line/aws), so each
file is scanned as a project's own file, not as a vendored test fixture: the scanners' own test
suites scan them that way too.

A report counts by line: a reported line inside a labelled secret's line range finds it; a
reported line on a negative line is a false report. rsafe's `info` findings and its non-secret
rules are not counted (as bench/secrets-corpus/score.py). Output never holds a fixture's value.
"""
import json
import os
import re
import shutil
import sys

import gitleaks_rules

# The unpacked fetches under CACHE, one directory per source.
RIPSECRETS = "ripsecrets-0.1.9"
GITLEAKS = "gitleaks-8.16.0"
BANDIT = "bandit-1.9.4"
GITLEAKS_RULES = "gitleaks-8.16.0/cmd/generate/config/rules"


def prepare(cache, corpus):
    cases = os.path.join(corpus, "cases")
    if os.path.isdir(cases):
        shutil.rmtree(cases)
    labels = []  # (path, first, last, label, source, name)

    def copy(src, dst):
        full = os.path.join(cases, dst)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        shutil.copyfile(src, full)
        with open(full, encoding="utf-8", errors="replace") as f:
            return f.read().split("\n")

    def n_lines(lines):
        return len(lines) - (1 if lines and lines[-1] == "" else 0)

    def negative(dst, lines, source):
        for i, line in enumerate(lines[: n_lines(lines)], 1):
            if line.strip():
                labels.append((dst, i, i, "clean", source, ""))

    rs = os.path.join(cache, RIPSECRETS, "test")
    if os.path.isdir(rs):
        for name in sorted(os.listdir(os.path.join(rs, "one_per_line"))):
            dst = f"ripsecrets/one_per_line/{name}"
            lines = copy(os.path.join(rs, "one_per_line", name), dst)
            for i, line in enumerate(lines[: n_lines(lines)], 1):
                if line.strip():
                    labels.append((dst, i, i, "secret", "ripsecrets", name))
        for name in sorted(os.listdir(os.path.join(rs, "one_per_file"))):
            dst = f"ripsecrets/one_per_file/{name}"
            lines = copy(os.path.join(rs, "one_per_file", name), dst)
            labels.append((dst, 1, max(1, n_lines(lines)), "secret", "ripsecrets", name))
        lines = copy(os.path.join(rs, "none"), "ripsecrets/none")
        negative("ripsecrets/none", lines, "ripsecrets")

    gl = os.path.join(cache, GITLEAKS, "testdata", "repos")
    if os.path.isdir(gl):
        dst = "gitleaks/nogit/main.go"
        lines = copy(os.path.join(gl, "nogit", "main.go"), dst)
        for i, line in enumerate(lines[: n_lines(lines)], 1):
            if line.strip():
                labels.append((dst, i, i, "secret" if i == 20 else "clean", "gitleaks", "aws"))
        dst = "gitleaks/symlinks/id_ed25519"
        lines = copy(os.path.join(gl, "symlinks", "source_file", "id_ed25519"), dst)
        labels.append((dst, 1, n_lines(lines), "secret", "gitleaks", "private-key"))
        for rel in ("main.go", "README.md", "api/api.go"):
            dst = f"gitleaks/small/{rel}"
            negative(dst, copy(os.path.join(gl, "small", rel), dst), "gitleaks")

    bd = os.path.join(cache, BANDIT, "examples", "hardcoded-passwords.py")
    if os.path.isfile(bd):
        dst = "bandit/hardcoded-passwords.py"
        lines = copy(bd, dst)
        want = None
        for i, line in enumerate(lines, 1):
            m = re.match(r"\s*# Possible hardcoded password: (.*)$", line)
            if m:
                v = m.group(1).strip()
                want = v[1:-1] if len(v) > 2 and v[0] == v[-1] == "'" else None
                continue
            if want and line.lstrip()[:1] not in ("#", "") and want in line:
                labels.append((dst, i, i, "secret", "bandit", "password"))
                want = None

    rules = os.path.join(cache, GITLEAKS_RULES)
    if os.path.isdir(rules):
        labels.extend(lay_out_rule_samples(gitleaks_rules.samples(rules), cases))

    with open(os.path.join(corpus, "Dockerfile"), "w") as f:
        f.write("FROM scratch\nCOPY cases /srv/app/\n")
    with open(os.path.join(corpus, "labels.tsv"), "w") as f:
        f.write("path\tfirst_line\tlast_line\tlabel\tsource\tname\n")
        for row in labels:
            f.write("\t".join(map(str, row)) + "\n")
    count = {}
    for row in labels:
        count[(row[4], row[3])] = count.get((row[4], row[3]), 0) + 1
    print(" ".join(f"{s}/{k}={n}" for (s, k), n in sorted(count.items())), file=sys.stderr)


def lay_out_rule_samples(samples, cases):
    """gitleaks' rule samples: gitleaks-rules/tps/RULE holds the rule's true positives, one
    after the other with a blank line between (each labelled a secret over its own lines), and
    gitleaks-rules/fps/RULE its false positives (every non-blank line negative)."""
    files = {}
    for rule, kind, text in samples:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", rule)
        files.setdefault((kind, name), []).append(text.rstrip("\n"))
    labels = []
    for (kind, name), texts in sorted(files.items()):
        dst = f"gitleaks-rules/{kind}s/{name}"
        full = os.path.join(cases, dst)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        line = 1
        for text in texts:
            n = text.count("\n") + 1
            if kind == "tp":
                labels.append((dst, line, line + n - 1, "secret", "gitleaks-rules", name))
            else:
                for i, l in enumerate(text.split("\n")):
                    if l.strip():
                        labels.append((dst, line + i, line + i, "clean", "gitleaks-rules", name))
            line += n + 1
        with open(full, "w", encoding="utf-8") as f:
            f.write("\n\n".join(texts) + "\n")
    return labels


def rel(corpus, path):
    corpus = os.path.abspath(corpus)
    cases = os.path.join(corpus, "cases")
    p = path if os.path.isabs(path) else os.path.abspath(os.path.join(corpus, path))
    r = os.path.relpath(p, cases)
    if r.startswith(".."):  # rsafe names the context path (cases/…), peers run in CORPUS
        r = os.path.relpath(p, corpus)
        r = r[len("cases/"):] if r.startswith("cases/") else r
    return r


def reported_lines(corpus, tool, report):
    with open(report, encoding="utf-8", errors="replace") as f:
        text = f.read()
    out = set()
    if tool == "rsafe":
        for f in json.loads(text).get("findings", []):
            if not f["rule"].startswith("secret.") or f["severity"] == "info":
                continue
            loc = f["location"]
            out.add((rel(corpus, loc.get("path", "")), loc.get("line") or 1))
    elif tool == "detect-secrets":
        for path, results in json.loads(text).get("results", {}).items():
            for res in results:
                out.add((rel(corpus, path), res["line_number"]))
    elif tool == "secretlint":
        for fr in json.loads(text) if text.strip() else []:
            for m in fr.get("messages", []):
                out.add((rel(corpus, fr["filePath"]), m["loc"]["start"]["line"]))
    elif tool == "ripsecrets":  # path:line:… (the match is never read)
        for line in text.splitlines():
            m = re.match(r"^([^:]+):(\d+):", line)
            if m:
                out.add((rel(corpus, m.group(1)), int(m.group(2))))
    else:
        raise SystemExit(f"foreign.py: unknown tool {tool}")
    return out


def per_rule(rows, lines):
    """gitleaks' own verdict per rule: every tp found, and no fp reported."""
    tps, fps = {}, {}
    for r in rows:
        if r["source"] != "gitleaks-rules":
            continue
        lo, hi = int(r["first"]), int(r["last"])
        hit = any(p == r["path"] and lo <= n <= hi for p, n in lines)
        book = tps if r["label"] == "secret" else fps
        book[r["name"]] = book.get(r["name"], True) and (hit if book is tps else not hit)
    return {"rules": len(tps), "every_tp_found": sum(tps.values()),
            "rules_with_fps": len(fps), "no_fp_reported": sum(fps.values())}


def score(corpus, tool, report, misses):
    with open(os.path.join(corpus, "labels.tsv")) as f:
        rows = [dict(zip(["path", "first", "last", "label", "source", "name"], l.rstrip("\n").split("\t"))) for l in list(f)[1:]]
    lines = reported_lines(corpus, tool, report)
    per = {}
    missed, false = [], []
    for r in rows:
        s = per.setdefault(r["source"], {"secrets": 0, "found": 0, "negative_lines": 0, "false_lines": 0})
        lo, hi = int(r["first"]), int(r["last"])
        hit = any(p == r["path"] and lo <= n <= hi for p, n in lines)
        if r["label"] == "secret":
            s["secrets"] += 1
            s["found"] += hit
            if not hit:
                missed.append(f'{r["path"]}:{lo} {r["name"]}')
        else:
            s["negative_lines"] += 1
            s["false_lines"] += hit
            if hit:
                false.append(f'{r["path"]}:{lo}')
    total = {k: sum(s[k] for s in per.values()) for k in ("secrets", "found", "negative_lines", "false_lines")}
    out = {"tool": tool, "total": total, "per_source": per, "gitleaks_rules": per_rule(rows, lines)}
    if misses:
        out["missed"] = missed
        out["false_reports"] = false
    print(json.dumps(out, indent=1))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 5 and sys.argv[1] == "score":
        score(sys.argv[2], sys.argv[3], sys.argv[4], "--misses" in sys.argv)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
