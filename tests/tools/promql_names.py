#!/usr/bin/env python3
"""promql_names.py FILE...: prints, one per line and sorted, every metric name
used by the PromQL expressions of Prometheus rule files (.yml: groups[].rules[]
.expr) and Grafana dashboards (.json: every "expr" string), so a test can
check them against a real scrape. Exits 2 on an unreadable file."""
import json
import re
import sys

import yaml

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool",
            "offset", "group_left", "group_right", "inf", "nan", "atan2"}


def exprs_of(path):
    with open(path, encoding="utf-8") as f:
        if path.endswith(".json"):
            doc = json.load(f)
        else:
            doc = yaml.safe_load(f)
    if path.endswith(".json"):
        out = []

        def walk(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k == "expr" and isinstance(v, str):
                        out.append(v)
                    else:
                        walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(doc)
        return out
    return [r["expr"] for g in doc.get("groups", []) for r in g.get("rules", []) if "expr" in r]


def names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # strings
    e = re.sub(r"\{[^}]*\}", " ", e)                                   # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                                  # ranges, subqueries
    # label lists of by/without/on/ignoring/group_left/group_right
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)                                 # Grafana variables
    found = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        found.add(word)
    return found


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = set()
    for path in argv[1:]:
        try:
            for expr in exprs_of(path):
                out |= names(expr)
        except (OSError, ValueError, yaml.YAMLError) as err:
            print(f"promql_names: {path}: {err}", file=sys.stderr)
            return 2
    for n in sorted(out):
        print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
