#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Report dependency cycles among the C files of src/.

Usage: include_cycles.py [ROOT]   (ROOT: the source tree, default: this file's ..)

The graph has a node per file under src/ and two kinds of edge:
  - A includes B: a quoted #include in A, resolved relative to A's folder, then
    to src/, then to include/ (angle includes of <vmres/...> resolve to
    include/ too);
  - header H needs C: an inline function of H calls a function that C.c defines
    (a header whose inline code needs a .c file is part of that file's layer),
    unless C is H's own implementation (same name, without an _int suffix).
A cycle means that a file's own inputs depend on it again: a header that a
lower file includes needs that lower file back. Prints every cycle (a strongly
connected set of two or more files) and exits 1, or prints nothing and exits 0.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
# A function definition at the start of a line: "type name(args)\n{"; static
# inline ones are a header's inline code.
DEFN = re.compile(r'^(?:[A-Za-z_][\w \t\*]*?[\s\*])?([A-Za-z_]\w*)\s*\([^;{]*?\)\s*\{', re.M)
CALL = re.compile(r'\b([A-Za-z_]\w*)\s*\(')
COMMENT = re.compile(r'/\*.*?\*/|//[^\n]*', re.S)


def read(path):
    with open(path, encoding='utf-8') as f:
        return COMMENT.sub(' ', f.read())


def bodies(text):
    """(name, body) of each function defined in text."""
    out = []
    for m in DEFN.finditer(text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            if text[i] == '{':
                depth += 1
            elif text[i] == '}':
                depth -= 1
                if depth == 0:
                    break
            i += 1
        out.append((m.group(1), m.group(0).split('\n')[0], text[m.end():i]))
    return out


def own(header, c_file):
    h = os.path.splitext(os.path.basename(header))[0]
    c = os.path.splitext(os.path.basename(c_file))[0]
    return h in (c, c + '_int')


def graph(root):
    src, inc = os.path.join(root, 'src'), os.path.join(root, 'include')
    files = []
    for d, _, names in os.walk(src):
        files += [os.path.normpath(os.path.join(d, n)) for n in names if n.endswith(('.c', '.h'))]
    files.sort()
    texts = {f: read(f) for f in files}
    edges = {f: set() for f in files}
    for f in files:
        for kind, name in INCLUDE.findall(texts[f]):
            bases = [os.path.dirname(f), src, inc] if kind == '"' else [inc]
            for b in bases:
                p = os.path.normpath(os.path.join(b, name))
                if p in edges:
                    edges[f].add(p)
                    break
    # Which .c file defines each external function.
    defined_in = {}
    for f in files:
        if f.endswith('.c'):
            for name, head, _ in bodies(texts[f]):
                if not head.startswith('static'):
                    defined_in[name] = f
    for f in files:
        if not f.endswith('.h'):
            continue
        for _, _, body in bodies(texts[f]):
            for callee in CALL.findall(body):
                c = defined_in.get(callee)
                if c and not own(f, c):
                    edges[f].add(c)
    return edges


def cycles(edges):
    """Strongly connected sets of two or more nodes (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
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
            if len(comp) > 1 or v in edges[v]:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..')
    edges = graph(os.path.normpath(root))
    found = cycles(edges)
    rel = lambda p: os.path.relpath(p, root)
    for comp in found:
        inside = set(comp)
        print('cycle: ' + ', '.join(rel(f) for f in comp))
        for f in comp:
            for t in sorted(edges[f] & inside):
                print(f'  {rel(f)} -> {rel(t)}')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
