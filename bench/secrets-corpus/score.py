#!/usr/bin/env python3
"""Scores one scanner's report against the corpus labels written by gen.py.

Usage: score.py CORPUS_DIR TOOL REPORT [--misses]
TOOL is rsafe (`rsafe audit CORPUS_DIR --format json`), detect-secrets (`detect-secrets scan
--all-files` run in CORPUS_DIR) or secretlint (`secretlint --format json` run in CORPUS_DIR).

A reported line is a hit for a labelled secret when it falls in the secret's line range (a
private key spans lines). A reported line inside no secret or filler range is a false positive.
Lines, not findings, are counted, so a tool that reports one line twice is not penalised or
rewarded. rsafe findings of severity `info` are not counted as reports (rsafe's way of saying
"public by design"), and only its `secret.*` rules are scored.

Prints one JSON object: recall (all labelled secrets, fillers included), recall_realistic
(fillers excluded), precision, counts, per-class recall; with --misses, the missed and
falsely reported (path, line, class, provider): never a value.
"""
import csv
import json
import os
import sys


def reported_lines(corpus, tool, report):
    with open(report) as f:
        text = f.read()
    out = set()
    if tool == "rsafe":
        doc = json.loads(text)
        for f in doc.get("findings", []):
            if not f["rule"].startswith("secret.") or f["severity"] == "info":
                continue
            loc = f["location"]
            path = loc.get("path", "")
            out.add((rel(corpus, path), loc.get("line") or 1))
    elif tool == "detect-secrets":
        doc = json.loads(text)
        for path, results in doc.get("results", {}).items():
            for res in results:
                out.add((rel(corpus, path), res["line_number"]))
    elif tool == "secretlint":
        doc = json.loads(text) if text.strip() else []
        for fr in doc:
            for m in fr.get("messages", []):
                out.add((rel(corpus, fr["filePath"]), m["loc"]["start"]["line"]))
    else:
        raise SystemExit(f"unknown tool {tool}")
    return out


def rel(corpus, path):
    corpus = os.path.abspath(corpus)
    p = os.path.abspath(os.path.join(corpus, path)) if not os.path.isabs(path) else path
    return os.path.relpath(p, corpus)


def main():
    corpus, tool, report = sys.argv[1:4]
    show = "--misses" in sys.argv
    labels = list(csv.DictReader(open(os.path.join(corpus, "labels.tsv")), delimiter="\t"))
    lines = reported_lines(corpus, tool, report)
    by_file = {}
    for l in labels:
        by_file.setdefault(l["path"], []).append(l)
    positives = [l for l in labels if l["label"] in ("secret", "filler")]
    found = []
    missed = []
    for l in positives:
        lo, hi = int(l["first_line"]), int(l["last_line"])
        hit = any(p == l["path"] and lo <= n <= hi for p, n in lines)
        (found if hit else missed).append(l)
    fps = []
    for p, n in sorted(lines):
        inside = any(l["label"] in ("secret", "filler") and int(l["first_line"]) <= n <= int(l["last_line"]) for l in by_file.get(p, []))
        if not inside:
            fps.append((p, n))
    real = [l for l in positives if l["label"] == "secret"]
    real_found = [l for l in found if l["label"] == "secret"]
    classes = {}
    for l in positives:
        c = classes.setdefault(l["class"], [0, 0])
        c[1] += 1
        c[0] += l in found
    tp_lines = len(lines) - len(fps)
    result = {
        "tool": tool,
        "secrets": len(positives),
        "realistic": len(real),
        "clean_lines": sum(1 for l in labels if l["label"] == "clean"),
        "found": len(found),
        "recall": round(len(found) / len(positives), 3),
        "recall_realistic": round(len(real_found) / len(real), 3),
        "reported_lines": len(lines),
        "false_positive_lines": len(fps),
        "precision": round(tp_lines / len(lines), 3) if lines else 1.0,
        "per_class": {k: f"{v[0]}/{v[1]}" for k, v in sorted(classes.items())},
    }
    if show:
        result["missed"] = [f'{l["path"]}:{l["first_line"]} {l["class"]} {l["provider"]}' for l in missed]
        result["false_positives"] = [f"{p}:{n}" for p, n in fps]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
