#!/usr/bin/env python3
"""include_graph: checks the layout rules about includes (README, "What is in
the box") over proto/, common/, agents/, manager/ and prints each violation:

  - no cycle among headers (a .h including, through others, itself);
  - no cycle among modules, a module being a .c/.h pair with one name; a
    private header shared by the files of one component (NAME_internal.h) is
    not a module of its own, so including it adds no edge;
  - dependencies point one way: agents, manager -> common -> proto; proto
    includes nothing from common/agents/manager, common nothing from
    agents/manager, and agents and manager nothing from each other;
  - no source file over MAX_LINES lines.

Exit status 1 when something is printed."""
import os
import re
import sys

DIRS = ["proto", "common", "agents", "manager"]
LAYER = {"proto": 0, "common": 1, "agents": 2, "manager": 2}
MAX_LINES = 800

root = sys.argv[1] if len(sys.argv) > 1 else "."
where = {}  # file name -> dir
for d in DIRS:
    for f in sorted(os.listdir(os.path.join(root, d))):
        if f.endswith((".c", ".h")):
            where[f] = d

def includes(f):
    text = open(os.path.join(root, where[f], f), encoding="utf-8").read()
    return [i for i in re.findall(r'^#include "([^"]+)"', text, re.M) if i in where]

def find_cycles(graph):
    seen, out = set(), []
    def dfs(n, stack):
        for m in sorted(graph.get(n, ())):
            if m in stack:
                out.append(stack[stack.index(m):] + [m])
            elif m not in seen:
                seen.add(m)
                dfs(m, stack + [m])
    for n in sorted(graph):
        if n not in seen:
            seen.add(n)
            dfs(n, [n])
    return out

bad = []
hgraph = {f: set(i for i in includes(f) if i.endswith(".h")) for f in where if f.endswith(".h")}
for c in find_cycles(hgraph):
    bad.append("header cycle: " + " -> ".join(c))

module = lambda f: f.rsplit(".", 1)[0]
mgraph = {}
for f in where:
    for i in includes(f):
        if i.endswith("_internal.h") or module(i) == module(f):
            continue
        mgraph.setdefault(module(f), set()).add(module(i))
for c in find_cycles(mgraph):
    bad.append("module cycle: " + " -> ".join(c))

for f, d in sorted(where.items()):
    for i in includes(f):
        di = where[i]
        if LAYER[di] > LAYER[d] or (LAYER[di] == LAYER[d] == 2 and di != d):
            bad.append(f"{d}/{f} includes {di}/{i}: dependencies point agents, manager -> common -> proto")
    n = sum(1 for _ in open(os.path.join(root, d, f), encoding="utf-8"))
    if n > MAX_LINES:
        bad.append(f"{d}/{f}: {n} lines (over {MAX_LINES}; split it by concern)")

for b in bad:
    print(b)
sys.exit(1 if bad else 0)
