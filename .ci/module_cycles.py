#!/usr/bin/env python3
"""Fails when a crate's modules import each other in a cycle.

Usage: module_cycles.py SRC_DIR...  (e.g. crdt-model/src node/src cli/src)

A module is a file (`a/b.rs` or `a/b/mod.rs` is `a::b`); it depends on another when its
code (comments and `#[cfg(test)] mod tests` left out) names a path into it through
`crate::`, `super::` or `self::`, serde `with = "..."` paths included. Cycles are looked
for twice: between files, and between the crate's top-level modules (a child module
using its parent is not a cycle). The layering this keeps is in docs/ARCHITECTURE.md.
"""
import glob
import os
import re
import sys


def modules(root):
    out = {}
    for f in glob.glob(os.path.join(root, "**", "*.rs"), recursive=True):
        parts = os.path.relpath(f, root)[:-3].split(os.sep)
        if parts[-1] in ("mod", "lib", "main"):
            parts = parts[:-1]
        out["::".join(parts) or "crate"] = f
    return out


def resolve(mods, path, cur):
    segs = path.split("::")
    here = [] if cur == "crate" else cur.split("::")
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    elif segs[0] == "self":
        base, segs = here, segs[1:]
    elif segs[0] == "super":
        base, segs = here[:-1], segs[1:]
        while segs and segs[0] == "super":
            base, segs = base[:-1], segs[1:]
    else:
        return None
    for i in range(len(segs), -1, -1):
        cand = "::".join(base + segs[:i]) or "crate"
        if cand in mods:
            return cand
    return None


def related(a, b):
    return a == b or a.startswith(b + "::") or b.startswith(a + "::")


def edges_of(root):
    mods = modules(root)
    edges = {m: set() for m in mods}
    for m, f in mods.items():
        src = open(f, encoding="utf-8").read()
        src = re.split(r"#\[cfg\(test\)\]\s*mod tests", src)[0]
        src = re.sub(r"//[^\n]*", "", src)
        paths = re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", src)
        for prefix, group in re.findall(r"\b(crate|super|self)::\{([^;]*?)\}", src, re.S):
            paths += [prefix + "::" + p for p in re.findall(r"\w+(?:::\w+)*", group)]
        for p in paths:
            t = resolve(mods, p, m)
            if t and not related(t, m) and t != "crate":
                edges[m].add(t)
    return edges


def cycles(edges):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    bad = False
    for root in sys.argv[1:]:
        edges = edges_of(root)
        top = {}
        for m, ts in edges.items():
            for t in ts:
                a, b = m.split("::")[0], t.split("::")[0]
                if a != b:
                    top.setdefault(a, set()).add(b)
        for level, e in (("file", edges), ("top-level module", top)):
            for c in cycles(e):
                bad = True
                print(f"{root}: {level} import cycle: {' <-> '.join(c)}")
        if not bad:
            print(f"{root}: no import cycles ({len(edges)} modules)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
